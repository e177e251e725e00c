//go:build hwtests && linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/hostcheck"
)

// These run the CLI against the guest's real /sys, /proc and /dev: the
// VT-d guest of go run ./hwtests/vm/cmd/hwtests, where edu is present.

func guestRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	t.Logf("iommu-agent %s: err %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	return out.String(), err
}

// eduGroups returns the groups holding an edu (1234:11e8) and their units.
func eduGroups(t *testing.T, inv Inventory) []InvGroup {
	t.Helper()
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
		t.Fatal("list says no IOMMU in the VT-d guest")
	}
	inv := guestInventory(t)
	if !inv.IOMMUPresent || len(inv.IOMMUs) == 0 || inv.IOMMUs[0].Kind != "intel-vt-d" || inv.IOMMUs[0].VTD == nil {
		t.Fatalf("list --json: units %+v, want the emulated VT-d", inv.IOMMUs)
	}
	// edu has no kernel driver, so its group is viable unless a sibling
	// (the e1000 of -devices bridge:edu,e1000) holds a DMA driver.
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
		"firmware": true, "IOMMU": true, "interrupt remapping": true,
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
	// initramfs: live modules, so "loaded", read from initstate.
	byName := map[string]Finding{}
	for _, f := range fs {
		byName[f.Check] = f
	}
	for _, m := range []string{"vfio", "vfio_pci", "iommufd", "vfio_iommu_type1"} {
		if f := byName["module "+m]; f.State != hostcheck.Loaded || !strings.Contains(f.Source, "initstate: live") {
			t.Errorf("module %s: state %q from %q, want loaded from initstate", m, f.State, f.Source)
		}
	}
	// The driver follows the lane's unit: dmar0 (VT-d) or ivhd0 (AMD-Vi),
	// both bool options, so built in.
	driver := "intel-iommu"
	if strings.Contains(byName["IOMMU"].Detail, "ivhd") {
		driver = "amd-iommu"
	}
	if f := byName["IOMMU driver"]; f.Status != Pass || f.State != hostcheck.BuiltIn || !strings.Contains(f.Detail, driver) {
		t.Errorf("IOMMU driver: %+v, want %s built in", f, driver)
	}
	// QEMU's IOMMUs with intremap=on and a split irqchip: the kernel
	// remaps, and /proc/interrupts says so.
	if f := byName["interrupt remapping"]; !strings.Contains(f.Detail, "IR-") {
		t.Errorf("interrupt remapping: %q names no IR- chip", f.Detail)
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

	// A module the Debian kernel builds (kvm-amd.ko.xz in modules.dep) whose
	// file the initramfs does not carry: not installed, never "modprobe".
	h, err := hostcheck.New(hostcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := h.Module("kvm_amd", "CONFIG_KVM_AMD"); c.State != hostcheck.NotInstalled {
		t.Errorf("kvm_amd: %+v, want not-installed (listed in modules.dep, no file)", c)
	}
	if c := h.Module("vfio_pci_core", "CONFIG_VFIO_PCI_CORE"); c.State != hostcheck.Loaded {
		t.Errorf("vfio_pci_core: %+v, want loaded", c)
	}
	t.Logf("guest kernel %s: config %q, builtin %q, dep %q; missing %q", h.Kernel.Release, h.Kernel.ConfigSource, h.Kernel.BuiltinSource, h.Kernel.DepSource, h.Kernel.Missing)
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
