//go:build hwtests && linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/hostcheck"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
)

// These run the CLI against the guest's real /sys, /proc and /dev: the
// guest of go run ./hwtests/vm/cmd/hwtests in every lane, where edu is
// present; what differs per IOMMU is expected per hwtest.IOMMUKind.

func guestRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	t.Logf("iommu-agent %s: err %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	return out.String(), err
}

// eduGroups returns the groups holding an edu (1234:11e8) and their units.
// In the guest, an edu without a group yet (an SMMUv3 with a device tree
// groups a device at its first driver probe) is given one by FindEdu, and
// the inventory read again, so a test does not depend on one that ran
// before it.
func eduGroups(t *testing.T, inv Inventory) []InvGroup {
	t.Helper()
	if gs := findEduGroups(inv); len(gs) > 0 || os.Getenv("HWTESTS_STRICT") != "1" {
		return eduGroupsOrSkip(t, gs)
	}
	hwtest.FindEdu(t)
	return eduGroupsOrSkip(t, findEduGroups(guestInventory(t)))
}

func findEduGroups(inv Inventory) []InvGroup {
	var gs []InvGroup
	for _, u := range inv.IOMMUs {
		for _, g := range u.Groups {
			for _, d := range g.Devices {
				if d.Vendor == "1234" && d.Device == "11e8" {
					gs = append(gs, g)
					break
				}
			}
		}
	}
	return gs
}

func eduGroupsOrSkip(t *testing.T, gs []InvGroup) []InvGroup {
	t.Helper()
	if len(gs) == 0 {
		if os.Getenv("HWTESTS_STRICT") == "1" {
			t.Fatal("list shows no edu device (QEMU -device edu)")
		}
		t.Skip("no edu device")
	}
	return gs
}

func guestInventory(t *testing.T) Inventory {
	t.Helper()
	out, err := guestRun(t, "list", "--json")
	if err != nil {
		t.Fatalf("list --json: %v", err)
	}
	var inv Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestGuestList(t *testing.T) {
	out, err := guestRun(t, "list")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if strings.Contains(out, "No IOMMU") {
		t.Fatal("list says no IOMMU in a guest with one")
	}
	inv := guestInventory(t)
	// The unit's kind and name follow the lane's IOMMU; only VT-d has its
	// cap/ecap registers in sysfs to decode.
	kind := map[hwtest.Kind]string{hwtest.VTD: "intel-vt-d", hwtest.AMDVi: "amd-vi", hwtest.SMMUv3: "arm-smmu-v3"}
	prefix := map[hwtest.Kind]string{hwtest.VTD: "dmar", hwtest.AMDVi: "ivhd", hwtest.SMMUv3: "smmu3.0x"}
	k := hwtest.IOMMUKind(t)
	if !inv.IOMMUPresent || len(inv.IOMMUs) == 0 || inv.IOMMUs[0].Kind != kind[k] || !strings.HasPrefix(inv.IOMMUs[0].Name, prefix[k]) {
		t.Fatalf("list --json: units %+v, want the emulated %s (%s, %s*)", inv.IOMMUs, k, kind[k], prefix[k])
	}
	// VT-d and AMD-Vi put their registers in sysfs (intel-iommu/cap,ecap;
	// amd-iommu/cap,features), decoded here; an SMMUv3 has none there, and
	// list says where they are instead.
	u := inv.IOMMUs[0]
	if decoded := u.VTD != nil; decoded != (k == hwtest.VTD) {
		t.Errorf("unit %s: VT-d registers decoded %v, want %v on %s", u.Name, decoded, k == hwtest.VTD, k)
	}
	if decoded := u.AMD != nil; decoded != (k == hwtest.AMDVi) {
		t.Errorf("unit %s: AMD-Vi registers decoded %v, want %v on %s", u.Name, decoded, k == hwtest.AMDVi, k)
	}
	if a := u.AMD; a != nil {
		// QEMU's amd-iommu: capability ID 0Fh, EFRSup, and an EFR with
		// PPR and GT (QEMU's AMDVI_EXT_FEATURES).
		if !strings.HasSuffix(a.Cap, "0f") || !slices.Contains(a.CapNames, "EFRSUP") || !slices.Contains(a.EFRNames, "PPR") || !a.GuestTranslation {
			t.Errorf("unit %s: AMD-Vi %+v, want cap ID 0f with EFRSUP, EFR with PPR and GT", u.Name, a)
		}
		if !strings.Contains(out, "  efr:  ") {
			t.Errorf("list does not print %s's EFR names", u.Name)
		}
	}
	if (u.RegistersFrom != "") != (k == hwtest.SMMUv3) || k == hwtest.SMMUv3 && !strings.Contains(out, "registers: IOMMU_GET_HW_INFO only") {
		t.Errorf("unit %s: registers_from %q on %s", u.Name, u.RegistersFrom, k)
	}
	// edu has no kernel driver, so its group is viable unless a sibling
	// (the e1000 of -devices bridge:edu,e1000) holds a DMA driver. On an
	// SMMUv3 with a device tree an edu no driver probed yet has no group:
	// FindEdu has vfio-pci probe it once, whatever test ran before.
	if hwtest.Strict() {
		hwtest.FindEdu(t)
		if out, err = guestRun(t, "list"); err != nil {
			t.Fatalf("list: %v", err)
		}
		inv = guestInventory(t)
	}
	for _, g := range eduGroups(t, inv) {
		var blockers []InvMember
		for _, d := range g.Devices {
			if d.Driver != "" && d.Driver != "vfio-pci" && d.Driver != "pci-stub" && !(d.Bridge && d.Driver == "pcieport") {
				blockers = append(blockers, InvMember{Address: d.Address, Driver: d.Driver})
			}
		}
		if g.Viable != (len(blockers) == 0) || len(g.Blockers) != len(blockers) {
			t.Errorf("edu's group %d: viable %v, blockers %+v; its drivers say blockers %+v", g.Number, g.Viable, g.Blockers, blockers)
		}
		if g.Viable && !strings.Contains(out, "group "+itoa(g.Number)+" ("+g.Type+"): viable\n") {
			t.Errorf("list does not show group %d viable", g.Number)
		}
		for _, b := range blockers {
			if !strings.Contains(out, b.Address+" on "+b.Driver) {
				t.Errorf("list does not name blocker %s on %s", b.Address, b.Driver)
			}
		}
	}
}

func TestGuestCheck(t *testing.T) {
	guestRun(t, "check") // logged for the record; its verdict is judged below
	out, _ := guestRun(t, "check", "--json")
	var fs []Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatal(err)
	}
	must := map[string]bool{
		"firmware": true, "IOMMU": true, "IOMMU features": true, "IOMMU parameters": true, "interrupt remapping": true,
		"module vfio": true, "module vfio_pci": true, "module iommufd": true, "module vfio_iommu_type1": true,
		"/dev/iommu": true, "/dev/vfio/vfio": true,
	}
	for _, f := range fs {
		if must[f.Check] {
			delete(must, f.Check)
			if f.Status != Pass {
				t.Errorf("%s: %s %s (fix: %s)", f.Check, f.Status, f.Detail, f.Fix)
			}
		}
	}
	for c := range must {
		t.Errorf("check has no %q finding", c)
	}

	// The harness loads vfio, vfio_pci, iommufd and type1 from the
	// initramfs: live modules, so "loaded", read from initstate. The own
	// kernel's lanes build them in and have no modules at all: built in,
	// from a /sys/module entry without initstate.
	byName := map[string]Finding{}
	for _, f := range fs {
		byName[f.Check] = f
	}
	for _, m := range []string{"vfio", "vfio_pci", "iommufd", "vfio_iommu_type1"} {
		f := byName["module "+m]
		if hwtest.BuiltIn() {
			if f.State != hostcheck.BuiltIn || !strings.Contains(f.Source, "without initstate") {
				t.Errorf("module %s: state %q from %q, want built-in, /sys/module without initstate", m, f.State, f.Source)
			}
			if strings.Contains(f.Fix, "modprobe") {
				t.Errorf("module %s: the fix %q says modprobe on a kernel without modules", m, f.Fix)
			}
			continue
		}
		if f.State != hostcheck.Loaded || !strings.Contains(f.Source, "initstate: live") {
			t.Errorf("module %s: state %q from %q, want loaded from initstate", m, f.State, f.Source)
		}
	}
	// The driver follows the lane's unit: intel-iommu and amd-iommu are
	// bool options; Debian builds arm_smmu_v3 in too (=y in its arm64
	// config), so all three are built in. Interrupt isolation: QEMU's x86
	// IOMMUs with intremap=on and a split irqchip remap, and
	// /proc/interrupts shows IR- chips; on the arm64 virt machine MSIs go
	// through the GICv3 ITS, which isolates them per device (ITS- chips).
	k := hwtest.IOMMUKind(t)
	driver, isolation := map[hwtest.Kind]string{hwtest.VTD: "intel-iommu", hwtest.AMDVi: "amd-iommu", hwtest.SMMUv3: "arm_smmu_v3"}[k],
		map[hwtest.Kind]string{hwtest.VTD: "IR-", hwtest.AMDVi: "IR-", hwtest.SMMUv3: "GICv3 ITS"}[k]
	if f := byName["IOMMU driver"]; f.Status != Pass || f.State != hostcheck.BuiltIn || !strings.Contains(f.Detail, driver) {
		t.Errorf("IOMMU driver: %+v, want %s built in on %s", f, driver, k)
	}
	if f := byName["interrupt remapping"]; !strings.Contains(f.Detail, isolation) {
		t.Errorf("interrupt remapping: %q does not name %s, the isolation of %s", f.Detail, isolation, k)
	}
	// The firmware's table by name and contents (/init runs as root, so
	// they are readable): QEMU's q35 has a DMAR for intel-iommu and an
	// IVRS for amd-iommu; the arm64 virt machine describes its SMMUv3 in
	// the IORT under UEFI/ACPI, else in the device tree.
	fw := byName["firmware"].Detail
	switch k {
	case hwtest.VTD:
		if !strings.Contains(fw, "ACPI DMAR table present") || !strings.Contains(fw, "DMAR: ") || !strings.Contains(fw, "DRHD") || !strings.Contains(fw, "INTR_REMAP") {
			t.Errorf("firmware: %q, want the DMAR with its DRHD and INTR_REMAP", fw)
		}
	case hwtest.AMDVi:
		if !strings.Contains(fw, "ACPI IVRS table present") || !strings.Contains(fw, "IVRS: IVHD blocks of type") {
			t.Errorf("firmware: %q, want the IVRS with its IVHD blocks", fw)
		}
	case hwtest.SMMUv3:
		if !strings.Contains(fw, "SMMUv3") || !(strings.Contains(fw, "IORT: ") || strings.Contains(fw, "arm,smmu-v3")) {
			t.Errorf("firmware: %q, want an IORT SMMUv3 node or the device tree's arm,smmu-v3", fw)
		}
	}
	feat := byName["IOMMU features"].Detail
	if want := map[hwtest.Kind]string{hwtest.VTD: "interrupt remapping yes", hwtest.AMDVi: "PRI yes", hwtest.SMMUv3: "probe -hwinfo"}[k]; !strings.Contains(feat, want) {
		t.Errorf("IOMMU features: %q lacks %q on %s", feat, want, k)
	}
	if p := byName["IOMMU parameters"]; p.Status != Pass || !strings.Contains(p.Detail, "default domain") {
		t.Errorf("IOMMU parameters: %+v", p)
	}
	if hwtest.BuiltIn() {
		checkGuestNoModules(t, byName)
		return
	}
	// /lib/modules/RELEASE holds modules.dep only: the guest has neither
	// modules.builtin nor a kernel config, and the report says so rather
	// than guess. The rebuilt vfio has CONFIG_VFIO_DEVICE_CDEV, which
	// /proc/devices shows (the vfio-dev major) with no config to read.
	if f := byName["platform"]; !strings.Contains(f.Detail, "/modules.dep") || !strings.Contains(f.Detail, "no modules.builtin") || !strings.Contains(f.Detail, "no kernel config") {
		t.Errorf("platform: %q, want modules.dep read and modules.builtin, config unread", f.Detail)
	}
	if f := byName["VFIO device cdev"]; f.Status != Pass || f.State != hostcheck.BuiltIn || !strings.Contains(f.Source, "/proc/devices") {
		t.Errorf("VFIO device cdev: %+v, want built-in from /proc/devices", f)
	}

	// A module the Debian kernel builds (in modules.dep) whose file the
	// initramfs does not carry: not installed, never "modprobe".
	checkModuleStates(t, hostcheck.NotInstalled, "listed in modules.dep, no file", hostcheck.Loaded)
}

// checkModuleStates asks hostcheck about a driver of the guest
// architecture's own that the guest lacks (kvm-amd on x86_64, the SPE PMU
// driver on arm64, whose KVM is built in), wanting lacking (for why), and
// about vfio_pci_core, wanting vfioCore.
func checkModuleStates(t *testing.T, lacking hostcheck.State, why string, vfioCore hostcheck.State) {
	t.Helper()
	h, err := hostcheck.New(hostcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mod, config := "kvm_amd", "CONFIG_KVM_AMD"
	if runtime.GOARCH == "arm64" {
		mod, config = "arm_spe_pmu", "CONFIG_ARM_SPE_PMU"
	}
	if c := h.Module(mod, config); c.State != lacking {
		t.Errorf("%s: %+v, want %s (%s)", mod, c, lacking, why)
	}
	if c := h.Module("vfio_pci_core", "CONFIG_VFIO_PCI_CORE"); c.State != vfioCore {
		t.Errorf("vfio_pci_core: %+v, want %s", c, vfioCore)
	}
	t.Logf("guest kernel %s: config %q, builtin %q, dep %q, no modules %q; missing %q", h.Kernel.Release, h.Kernel.ConfigSource,
		h.Kernel.BuiltinSource, h.Kernel.DepSource, h.Kernel.NoModulesSource, h.Kernel.Missing)
}

// checkGuestNoModules: the own kernel's lanes build everything in, have
// no module support and no /lib/modules, and offer their config in
// /proc/config.gz; check reads it there and never says modprobe.
func checkGuestNoModules(t *testing.T, byName map[string]Finding) {
	t.Helper()
	f := byName["platform"]
	if !strings.Contains(f.Detail, "config from /proc/config.gz") || !strings.Contains(f.Detail, "no module support") ||
		strings.Contains(f.Detail, "modules.dep") || strings.Contains(f.Detail, "modules.builtin") {
		t.Errorf("platform: %q, want the config from /proc/config.gz, no module support, no modules files missed", f.Detail)
	}
	if f := byName["VFIO device cdev"]; f.Status != Pass || f.State != hostcheck.BuiltIn || !strings.Contains(f.Source, "CONFIG_VFIO_DEVICE_CDEV=y") {
		t.Errorf("VFIO device cdev: %+v, want built-in from the config", f)
	}
	for _, f := range byName {
		if strings.Contains(f.Fix, "modprobe") {
			t.Errorf("%s: the fix %q says modprobe on a kernel without modules", f.Check, f.Fix)
		}
	}
	// The config decides: a driver left out is absent, one built in is.
	checkModuleStates(t, hostcheck.Absent, "not set in the config", hostcheck.BuiltIn)
}

func TestGuestBindUnbind(t *testing.T) {
	if os.Getenv("HWTESTS_STRICT") != "1" {
		t.Skip("rebinds devices: runs in the guest only")
	}
	g := eduGroups(t, guestInventory(t))[0]
	state := filepath.Join(t.TempDir(), "bindings.json")
	n := itoa(g.Number)
	if _, err := guestRun(t, "bind", "-state", state, "group", n); err != nil {
		t.Fatalf("bind group %s: %v", n, err)
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			guestRun(t, "unbind", "-state", state, "group", n)
		}
	})
	for _, gg := range eduGroups(t, guestInventory(t)) {
		if gg.Number != g.Number {
			continue
		}
		for _, d := range gg.Devices {
			if !d.Bridge && d.Driver != "vfio-pci" {
				t.Errorf("after bind group %s: %s on %q", n, d.Address, d.Driver)
			}
		}
	}
	if _, err := guestRun(t, "unbind", "-state", state, "group", n); err != nil {
		t.Fatalf("unbind group %s: %v", n, err)
	}
	restored = true
	for _, gg := range eduGroups(t, guestInventory(t)) {
		if gg.Number != g.Number {
			continue
		}
		for i, d := range gg.Devices {
			if d.Driver != g.Devices[i].Driver {
				t.Errorf("after unbind group %s: %s on %q, was %q", n, d.Address, d.Driver, g.Devices[i].Driver)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestGuestBindGroupless removes a driverless edu and finds it again by a
// bus rescan: a fresh device, grouped as at boot. On the arm64-smmuv3 lane
// it has no iommu_group (SMMUv3 with a device tree groups at the first
// driver probe), and `iommu-agent bind BDF` is what gives it one; on VT-d
// and AMD-Vi it has its group at once and bind is the usual one. Either
// way unbind leaves it driverless, in the group it has now.
func TestGuestBindGroupless(t *testing.T) {
	if os.Getenv("HWTESTS_STRICT") != "1" {
		t.Skip("removes and rebinds devices: runs in the guest only")
	}
	const pci = "/sys/bus/pci"
	var bdf string // the last driverless edu, grouped or not
	ents, err := os.ReadDir(filepath.Join(pci, "devices"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		dir := filepath.Join(pci, "devices", e.Name())
		v, _ := os.ReadFile(filepath.Join(dir, "vendor"))
		d, _ := os.ReadFile(filepath.Join(dir, "device"))
		_, bound := os.Readlink(filepath.Join(dir, "driver"))
		if strings.TrimSpace(string(v)) == "0x1234" && strings.TrimSpace(string(d)) == "0x11e8" && bound != nil {
			bdf = e.Name()
		}
	}
	if bdf == "" {
		t.Fatal("no driverless edu to remove")
	}
	write := func(path, v string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(v), 0o200); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(pci, "devices", bdf, "remove"), "1")
	write(filepath.Join(pci, "rescan"), "1")
	if _, err := os.Stat(filepath.Join(pci, "devices", bdf)); err != nil {
		t.Fatalf("%s after the rescan: %v", bdf, err)
	}
	_, err = os.Readlink(filepath.Join(pci, "devices", bdf, "iommu_group"))
	hasGroup := err == nil
	atProbe := hwtest.GroupsAtProbe(t)
	if hasGroup == atProbe {
		t.Fatalf("rescanned %s has an iommu_group: %v; %s groups at driver probe: %v", bdf, hasGroup, hwtest.IOMMUKind(t), atProbe)
	}
	if !hasGroup {
		// The agent does not lease it yet, and says what creates its group.
		inv := guestInventory(t)
		found := false
		for _, d := range inv.UngroupedDevices {
			found = found || d.Address == bdf
		}
		if !found {
			t.Errorf("list --json: %s not among the ungrouped devices %+v", bdf, inv.UngroupedDevices)
		}
	}
	state := filepath.Join(t.TempDir(), "bindings.json")
	if out, err := guestRun(t, "bind", "-state", state, bdf); err != nil {
		t.Fatalf("bind %s: %v\n%s", bdf, err, out)
	}
	link, err := os.Readlink(filepath.Join(pci, "devices", bdf, "iommu_group"))
	if err != nil {
		t.Fatalf("%s after bind: no iommu_group: %v", bdf, err)
	}
	drv, _ := os.Readlink(filepath.Join(pci, "devices", bdf, "driver"))
	if filepath.Base(drv) != "vfio-pci" {
		t.Errorf("%s after bind: driver %q", bdf, drv)
	}
	group := filepath.Base(link)
	if _, err := os.Stat("/dev/vfio/devices"); err == nil {
		ents, _ := os.ReadDir(filepath.Join(pci, "devices", bdf, "vfio-dev"))
		if len(ents) != 1 {
			t.Errorf("%s after bind: vfio-dev %v, want its cdev", bdf, ents)
		}
	}
	if _, err := guestRun(t, "unbind", "-state", state, bdf); err != nil {
		t.Fatalf("unbind %s: %v", bdf, err)
	}
	if _, err := os.Readlink(filepath.Join(pci, "devices", bdf, "driver")); err == nil {
		t.Errorf("%s after unbind: still has a driver", bdf)
	}
	if l, err := os.Readlink(filepath.Join(pci, "devices", bdf, "iommu_group")); err != nil || filepath.Base(l) != group {
		t.Errorf("%s after unbind: group %q, %v; want group %s kept", bdf, l, err, group)
	}
	t.Logf("rescanned %s: group at rescan %v; bind gave group %s, kept after unbind", bdf, hasGroup, group)
}

// TestGuestProbeHWInfo binds edu's group to vfio-pci and runs probe
// -hwinfo, which reads IOMMU_GET_HW_INFO through the edu's cdev. What the
// kernel reports is per IOMMU and kernel: VT-d's registers, the same as
// sysfs; on 6.12, type NONE for SMMUv3 (its iommufd part is compiled out)
// and AMD-Vi (no hw_info op), each explained; on a later kernel built with
// the drivers' iommufd parts, the SMMUv3 IDRs (or AMD EFRs) by name.
func TestGuestProbeHWInfo(t *testing.T) {
	if os.Getenv("HWTESTS_STRICT") != "1" {
		t.Skip("rebinds devices: runs in the guest only")
	}
	hwtest.FindEdu(t) // gives a never-probed edu its group on SMMUv3
	g := eduGroups(t, guestInventory(t))[0]
	state := filepath.Join(t.TempDir(), "bindings.json")
	n := itoa(g.Number)
	if _, err := guestRun(t, "bind", "-state", state, "group", n); err != nil {
		t.Fatalf("bind group %s: %v", n, err)
	}
	t.Cleanup(func() { guestRun(t, "unbind", "-state", state, "group", n) })

	out, err := guestRun(t, "probe", "-hwinfo")
	if err != nil {
		t.Fatalf("probe -hwinfo: %v", err)
	}
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	old := strings.HasPrefix(string(rel), "6.12.")
	k := hwtest.IOMMUKind(t)
	want := []string{"hw info (IOMMU_GET_HW_INFO through "}
	switch {
	case k == hwtest.VTD:
		want = append(want, "type 1, 24 bytes", "(same as sysfs)", "facts: address width 48-bit", "interrupt remapping yes")
	case k == hwtest.SMMUv3 && old:
		want = append(want, "Arm SMMUv3", "type 0, 0 bytes", "the kernel reports no hardware info (type NONE)", "CONFIG_ARM_SMMU_V3_IOMMUFD")
	case k == hwtest.SMMUv3:
		// The own kernel's lane: the upgraded IORT declares CANWBS, so
		// the vIOMMU is allowed.
		want = append(want, "type 2, 40 bytes", "SMMUv3.", "stages S1+S2", "TTF AArch64", "COHACC yes", "SID ", "OAS ", "granules ",
			"nesting (built and destroyed on a private iommufd): nesting parent yes; vIOMMU ARM_SMMUV3 yes; vEVENTQ yes")
	case k == hwtest.AMDVi && old:
		want = append(want, "AMD-Vi cap=", "facts (sysfs amd-iommu/cap,features): host page tables", "type 0, 0 bytes", "(type NONE)", "after 6.12")
	case k == hwtest.AMDVi:
		want = append(want, "type 4, 16 bytes", "AMD-Vi cap=0x0 EFR=")
	}
	if k != hwtest.SMMUv3 || old {
		// 6.12's drivers have no nesting parent on these IOMMUs (QEMU's
		// VT-d lacks the nesting capability without scalable mode).
		want = append(want, "nesting (built and destroyed on a private iommufd): nesting parent no (IOMMU_HWPT_ALLOC: ", "(operation not supported)); vIOMMU not tried")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("probe -hwinfo on %s (kernel %s) lacks %q", k, strings.TrimSpace(string(rel)), w)
		}
	}
}
