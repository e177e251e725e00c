//go:build !hwtests

// The guest runs this package's test binary without sysfs/testdata, so the
// fixture tests stay out of the hwtests build; guest_test.go covers the real tree.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

// fixture unpacks a sysfs/testdata fixture and returns its root.
func fixture(t *testing.T, name string) string {
	t.Helper()
	return sysfstest.Build(t, filepath.Join("..", "..", "sysfs", "testdata", name))
}

func runOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), err
}

func TestListWithoutIOMMU(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	out, err := runOut(t, "list", "-sysfs", root)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "No IOMMU:") || !strings.Contains(out, "go run ./hwtests/vm/cmd/hwtests") {
		t.Errorf("list on a host without IOMMU, want one line saying so and suggesting the guest:\n%s", out)
	}

	out, err = runOut(t, "list", "--json", "-sysfs", root)
	if err != nil {
		t.Fatal(err)
	}
	var inv Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	want := Inventory{IOMMUs: []InventoryUnit{}, OtherGroups: []InvGroup{}, UngroupedDevices: []InvDevice{}}
	if !reflect.DeepEqual(inv, want) {
		t.Errorf("list --json = %+v, want %+v", inv, want)
	}
}

func TestListCaptured(t *testing.T) {
	t.Parallel()
	root := fixture(t, "vtd-guest-captured.txtar")
	out, err := runOut(t, "list", "-sysfs", filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	// The tree in order: unit, its registers, each group with its regions
	// and devices; edu (1234:11e8) alone and viable in group 1.
	want := []string{
		"dmar0 (intel-vt-d)\n",
		"  cap 0x00d2008c222f0686 ecap 0x0000000000f00f4a: 48-bit, interrupt remapping\n",
		"  ecap: QI IR PT\n",
		"  group 0 (DMA): viable\n    reserved 0xfee00000-0xfeefffff msi\n    0000:00:00.0 8086:29c0 class 060000 no driver\n",
		"  group 1 (DMA): viable\n    reserved 0xfee00000-0xfeefffff msi\n    0000:00:01.0 1234:11e8 class 00ff00 no driver\n",
		"  group 2 (DMA): NOT viable: unbind 0000:00:02.0 on virtio-pci\n",
		"  group 4 (DMA): viable\n    reserved 0x0-0xffffff direct-relaxable\n    reserved 0xfee00000-0xfeefffff msi\n" +
			"    0000:00:1f.0 8086:2918 class 060100 no driver\n",
	}
	at := 0
	for _, w := range want {
		i := strings.Index(out[at:], w)
		if i < 0 {
			t.Fatalf("list output lacks, in order, %q:\n%s", w, out)
		}
		at += i + len(w)
	}
	if strings.Contains(out, "No IOMMU") || strings.Contains(out, "without an iommu_group") {
		t.Errorf("list output:\n%s", out)
	}
}

func TestListJSON(t *testing.T) {
	t.Parallel()
	root := fixture(t, "bridge-group.txtar")
	out, err := runOut(t, "list", "--json", "-sysfs", filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	var inv Inventory
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		t.Fatal(err)
	}
	msi := []InvRegion{{Start: "0xfee00000", End: "0xfeefffff", Type: "msi"}}
	none := []InvPort{}
	ppb := InvPort{Address: "0000:00:03.0", Type: "PCIe-to-PCI bridge", ACSKnown: true}
	rp := InvPort{Address: "0000:00:04.0", Type: "root port", ACSKnown: true} // without ACS
	edu := func(a, drv string, up ...InvPort) InvDevice {
		return InvDevice{Address: a, Vendor: "1234", Device: "11e8", Class: "00ff00", Driver: drv, Upstream: append([]InvPort{}, up...)}
	}
	want := Inventory{
		IOMMUPresent: true,
		IOMMUs: []InventoryUnit{{
			Name: "dmar0", Kind: "intel-vt-d",
			VTD: &InvVTD{
				Cap: "0x00d2008c222f0686", ECap: "0x0000000000f00f4a", AddressWidth: 48, InterruptRemapping: true,
				CapNames: []string{"CM", "PSI", "DWD", "DRD"}, ECapNames: []string{"QI", "IR", "PT"},
			},
			Groups: []InvGroup{
				{Number: 0, Type: "DMA", Viable: true, Blockers: []InvMember{}, ReservedRegions: msi,
					Devices: []InvDevice{{Address: "0000:00:00.0", Vendor: "8086", Device: "29c0", Class: "060000", Upstream: none}}},
				{Number: 5, Type: "DMA", Blockers: []InvMember{{Address: "0000:02:02.0", Driver: "e1000"}}, ReservedRegions: msi,
					Devices: []InvDevice{
						{Address: "0000:00:03.0", Vendor: "1b36", Device: "000e", Class: "060400", Bridge: true, Port: &ppb, Upstream: none},
						edu("0000:02:01.0", "", ppb),
						{Address: "0000:02:02.0", Vendor: "8086", Device: "100e", Class: "020000", Driver: "e1000", Upstream: []InvPort{ppb}},
					},
					SharedBecause: []string{"0000:00:03.0 is a PCIe-to-PCI bridge: the conventional PCI devices behind it reach the IOMMU with its requester id, so it and all below it share one group"}},
				{Number: 6, Type: "DMA", Viable: true, Blockers: []InvMember{}, ReservedRegions: msi,
					Devices: []InvDevice{
						{Address: "0000:00:04.0", Vendor: "1b36", Device: "000c", Class: "060400", Driver: "pcieport", Bridge: true, Port: &rp, Upstream: none},
						edu("0000:03:00.0", "", rp),
					},
					SharedBecause: []string{"0000:00:04.0 (root port) has no ACS capability: devices below it can reach each other peer to peer unseen by the IOMMU"}},
				{Number: 7, Type: "DMA", Viable: true, Blockers: []InvMember{}, ReservedRegions: msi,
					Devices: []InvDevice{edu("0000:00:05.0", "vfio-pci")}},
			},
		}},
		OtherGroups:      []InvGroup{},
		UngroupedDevices: []InvDevice{edu("0000:00:06.0", "")},
	}
	if !reflect.DeepEqual(inv, want) {
		got, _ := json.MarshalIndent(inv, "", " ")
		t.Errorf("list --json:\n%s", got)
	}
	// The key names are the contract: pin a few literally.
	for _, k := range []string{`"iommu_present": true`, `"interrupt_remapping": true`, `"reserved_regions": [`, `"ungrouped_devices": [`, `"blockers": []`,
		`"shared_because": [`, `"upstream": [`, `"acs_known": true`, `"acs": null`} {
		if !strings.Contains(out, k) {
			t.Errorf("list --json lacks %s", k)
		}
	}
}

// A device without an iommu_group is explained by whether an IOMMU unit
// exists: under one it may get its group at a bind (SMMUv3), without one
// nothing translates it.
func TestListUngrouped(t *testing.T) {
	t.Parallel()
	sys := filepath.Join(fixture(t, "bridge-group.txtar"), "sys")
	out, err := runOut(t, "list", "-sysfs", sys)
	if err != nil || !strings.Contains(out, "devices without an iommu_group yet") || !strings.Contains(out, "iommu-agent bind BDF") {
		t.Errorf("list with a unit: %v\n%s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(sys, "class", "iommu")); err != nil {
		t.Fatal(err)
	}
	out, _ = runOut(t, "list", "-sysfs", sys)
	if !strings.Contains(out, "no IOMMU translates their DMA") || strings.Contains(out, "iommu-agent bind BDF") {
		t.Errorf("list without a unit:\n%s", out)
	}
}

func TestListBrokenTree(t *testing.T) {
	t.Parallel()
	root := fixture(t, "broken.txtar")
	out, err := runOut(t, "list", "-sysfs", filepath.Join(root, "sys"))
	if err == nil || !strings.Contains(err.Error(), "could not be read") {
		t.Errorf("list on a broken tree: err %v", err)
	}
	// What could be read is still listed, with what could not.
	for _, w := range []string{"dmar0 (intel-vt-d)", "group 1 (DMA)", "could not read:", `reserved_regions line 0: "garbage"`} {
		if !strings.Contains(out, w) {
			t.Errorf("list output lacks %q:\n%s", w, out)
		}
	}
}

// A group whose devices/ cannot be read is NOT viable, and its device is
// still listed, under it; so is a device whose group is gone.
func TestListUnreadableGroup(t *testing.T) {
	t.Parallel()
	root := filepath.Join(fixture(t, "vtd-guest-captured.txtar"), "sys")
	members := filepath.Join(root, "kernel", "iommu_groups", "1", "devices")
	if err := os.RemoveAll(members); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("devices", members); err != nil { // a loop: ELOOP
		t.Fatal(err)
	}
	// Group 4 is gone, though 0000:00:1f.0's link still names it.
	if err := os.RemoveAll(filepath.Join(root, "kernel", "iommu_groups", "4")); err != nil {
		t.Fatal(err)
	}
	out, err := runOut(t, "list", "-sysfs", root)
	if err == nil {
		t.Error("list: no error")
	}
	for _, w := range []string{"group 1 (DMA): NOT viable", "0000:00:01.0 1234:11e8", "group 4 (type unknown): NOT viable", "0000:00:1f.0 8086:2918"} {
		if !strings.Contains(out, w) {
			t.Errorf("list output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "group 1 (DMA): viable") {
		t.Errorf("group 1 viable:\n%s", out)
	}

	out, _ = runOut(t, "list", "--json", "-sysfs", root)
	var inv Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, u := range inv.IOMMUs {
		for _, g := range append(u.Groups, inv.OtherGroups...) {
			for _, d := range g.Devices {
				listed[d.Address] = true
			}
			if (g.Number == 1 || g.Number == 4) && (g.Viable || len(g.Errors) == 0) {
				t.Errorf("group %d: viable %v, errors %q", g.Number, g.Viable, g.Errors)
			}
		}
	}
	for _, d := range inv.UngroupedDevices {
		listed[d.Address] = true
	}
	for _, a := range []string{"0000:00:00.0", "0000:00:01.0", "0000:00:02.0", "0000:00:03.0", "0000:00:1f.0", "0000:00:1f.2", "0000:00:1f.3"} {
		if !listed[a] {
			t.Errorf("%s missing from list --json", a)
		}
	}
}

// list stops at a cancelled context (SIGINT, SIGTERM) with its error.
func TestListCancelled(t *testing.T) {
	t.Parallel()
	root := filepath.Join(fixture(t, "vtd-guest-captured.txtar"), "sys")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"list", "-sysfs", root}, &out, &out); !errors.Is(err, context.Canceled) {
		t.Errorf("list with a cancelled context: %v\n%s", err, out.String())
	}
}

// A 100 MiB reserved_regions and a FIFO as uevent: list answers at once,
// with a short error.
func TestListHostileFiles(t *testing.T) {
	t.Parallel()
	root := filepath.Join(fixture(t, "vtd-guest-captured.txtar"), "sys")
	if err := os.Truncate(filepath.Join(root, "kernel", "iommu_groups", "1", "reserved_regions"), 100<<20); err != nil {
		t.Fatal(err)
	}
	uevent := filepath.Join(root, "devices", "pci0000:00", "0000:00:02.0", "uevent")
	if err := os.Remove(uevent); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(uevent, 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runOut(t, "list", "-sysfs", root)
		done <- result{out, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("list still blocked after 30s")
	}
	if r.err == nil || len(r.out) > 16<<10 {
		t.Errorf("list: %v, %d bytes of output", r.err, len(r.out))
	}
	for _, w := range []string{"reserved_regions", "uevent", "0000:00:02.0"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("list output lacks %q:\n%.4000s", w, r.out)
		}
	}
}

func TestListAMDAndSMMUv3(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for rel, v := range map[string]string{
		"class/iommu/ivhd0/amd-iommu/cap":      "1f03000f\n",
		"class/iommu/ivhd0/amd-iommu/features": "29d3:0\n",
	} {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"class/iommu/ivhd0/devices", "class/iommu/smmu3.0x0000000009050000/devices"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runOut(t, "list", "-sysfs", root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ivhd0 (amd-vi)\n",
		"  cap 0x1f03000f EFR 0x00000000000029d3 EFR2 0x0000000000000000: 6-level host page tables, guest translation, 1-bit PASIDs\n",
		"  cap:  IOTLB HTTUNNEL NPCACHE EFRSUP CAPEXT\n", "  efr:  PREFETCH PPR GT IA GA HE\n",
		"smmu3.0x0000000009050000 (arm-smmu-v3)\n  registers: IOMMU_GET_HW_INFO only"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	out, err = runOut(t, "list", "--json", "-sysfs", root)
	if err != nil {
		t.Fatal(err)
	}
	var inv Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	want := &InvAMD{Cap: "0x1f03000f", EFR: "0x00000000000029d3", EFR2: "0x0000000000000000", HostLevels: 6,
		GuestTranslation: true, PASIDBits: 1, CapNames: []string{"IOTLB", "HTTUNNEL", "NPCACHE", "EFRSUP", "CAPEXT"},
		EFRNames: []string{"PREFETCH", "PPR", "GT", "IA", "GA", "HE"}, EFR2Names: []string{}}
	if len(inv.IOMMUs) != 2 || !reflect.DeepEqual(inv.IOMMUs[0].AMD, want) || inv.IOMMUs[1].RegistersFrom == "" || inv.IOMMUs[0].RegistersFrom != "" {
		t.Errorf("list --json units %+v", inv.IOMMUs)
	}
}
