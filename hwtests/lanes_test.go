//go:build hwtests && linux

package hwtests

// Where the IOMMUs of the harness's lanes really differ, each pinned per
// lane or per IOMMU so the other tests can take the difference from the
// kernel instead of assuming VT-d.

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
)

// TestGroupAtBoot pins when a PCI device gets its iommu_group
// (hwtest.GroupsAtProbe says why per lane). VT-d, AMD-Vi and the own 7.3
// kernel on the SMMUv3 put every device in a group when the IOMMU
// initialises. The arm64-smmuv3 lane (an SMMUv3 described by a device
// tree, Debian's 6.12) creates the group only when a driver first probes
// the device, so a device no driver has ever claimed has none: the host
// bridge at 0000:00:00.0, which nothing binds on any machine, shows it.
// hwtest.FindEdu copes by probing edu once.
func TestGroupAtBoot(t *testing.T) {
	const bridge = "0000:00:00.0"
	dir := filepath.Join(sysPCI, "devices", bridge)
	if _, err := os.Stat(dir); err != nil {
		hwtest.Need(t, "the host bridge "+bridge, err)
	}
	_, err := os.Readlink(filepath.Join(dir, "iommu_group"))
	hasGroup := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if hwtest.Lane() == "" {
		t.Skipf("no expectation for this machine (not a harness lane): the host bridge %s has a group: %v", bridge, hasGroup)
	}
	atProbe := hwtest.GroupsAtProbe(t)
	if _, err := os.Readlink(filepath.Join(dir, "driver")); err == nil {
		t.Fatalf("%s has a driver: it cannot show when groups appear", bridge)
	}
	if hasGroup == atProbe {
		t.Errorf("%s (no driver) has an iommu_group: %v; lane %s creates groups %s", bridge, hasGroup, hwtest.Lane(),
			map[bool]string{true: "at driver probe", false: "at boot"}[atProbe])
	}
	// Either way, a device with a driver has its group.
	entries, err := os.ReadDir(filepath.Join(sysPCI, "devices"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		d := filepath.Join(sysPCI, "devices", e.Name())
		if _, err := os.Readlink(filepath.Join(d, "driver")); err != nil {
			continue
		}
		if _, err := os.Readlink(filepath.Join(d, "iommu_group")); err != nil {
			t.Errorf("%s has a driver but no iommu_group: %v", e.Name(), err)
		}
	}
}

// TestReservedRegions pins the interrupt window each IOMMU reserves in
// every domain, as the group's reserved_regions shows it: x86's
// 0xfee00000-0xfeefffff on VT-d and AMD-Vi (the "msi" type: hardware
// handles MSIs there), the software MSI window an SMMUv3 driver maps the
// ITS doorbell through (MSI_IOVA_BASE 0x8000000, 1 MiB). On the arm64 lane
// it lies inside edu's 28-bit DMA reach, so tests keep their IOVAs below
// 128 MiB.
func TestReservedRegions(t *testing.T) {
	dev := hwtest.FindEdu(t)[0]
	want := map[hwtest.Kind]iommu.Range{
		hwtest.VTD:    {Start: 0xfee00000, Last: 0xfeefffff},
		hwtest.AMDVi:  {Start: 0xfee00000, Last: 0xfeefffff},
		hwtest.SMMUv3: {Start: 0x8000000, Last: 0x80fffff},
	}
	kind := hwtest.IOMMUKind(t)
	rs := hwtest.ReservedRegions(t, dev.Group)
	t.Logf("%s group %d reserved_regions: %v", kind, dev.Group, rs)
	if got := hwtest.MSIWindow(t, dev); got != want[kind] {
		t.Errorf("%s: msi window %v, want %v", kind, got, want[kind])
	}
}
