package sysfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Synthetic builds a large regular tree under t.TempDir() for benchmarks:
// devices PCI functions (8 per slot, 32 slots per bus, domain 0) spread
// evenly over groups iommu_groups, every fourth bound to e1000e, each with
// the files a real endpoint has that sysfs reads, plus modalias and
// revision for other tools' discovery. It returns the sysfs root.
func Synthetic(t testing.TB, devices, groups int) string {
	t.Helper()
	if devices <= 0 || groups <= 0 || groups > devices || devices > 256*256 {
		t.Fatalf("sysfstest.Synthetic(%d, %d): want 0 < groups <= devices <= 65536", devices, groups)
	}
	root := t.TempDir()
	if err := synthetic(root, devices, groups); err != nil {
		t.Fatalf("sysfstest.Synthetic: %v", err)
	}
	return root
}

func synthetic(root string, devices, groups int) error {
	zero := "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
	resource := fmt.Sprintf("0x%016x 0x%016x 0x%016x\n", 0xf0000000, 0xf0000fff, 0x40200) + strings.Repeat(zero, 12)
	per := (devices + groups - 1) / groups
	mk := func(p string, data string) error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(data), 0o644)
	}
	ln := func(target, p string) error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.Symlink(target, p)
	}
	for g := range groups {
		dir := filepath.Join(root, "kernel", "iommu_groups", fmt.Sprint(g))
		if err := mk(filepath.Join(dir, "type"), "DMA\n"); err != nil {
			return err
		}
		if err := mk(filepath.Join(dir, "reserved_regions"), "0x00000000fee00000 0x00000000feefffff msi\n"); err != nil {
			return err
		}
	}
	for i := range devices {
		bdf := fmt.Sprintf("0000:%02x:%02x.%x", i/256, i/8%32, i%8)
		g := i / per
		dev := filepath.Join(root, "devices", "pci0000:00", bdf)
		drv := "" // uevent's DRIVER line, as the kernel writes it for a bound device
		if i%4 == 0 {
			drv = "DRIVER=e1000e\n"
		}
		for name, v := range map[string]string{
			"vendor": "0x8086\n", "device": "0x10d3\n", "subsystem_vendor": "0x8086\n", "subsystem_device": "0x0000\n",
			"class": "0x020000\n", "numa_node": "-1\n", "driver_override": "(null)\n", "resource": resource,
			"uevent": drv + "PCI_CLASS=20000\nPCI_ID=8086:10D3\nPCI_SUBSYS_ID=8086:0000\nPCI_SLOT_NAME=" + bdf + "\nMODALIAS=pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00\n",
			// Not read by sysfs, but other tools (ghw) read the ids from here.
			"modalias": "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00\n", "revision": "0x00\n",
		} {
			if err := mk(filepath.Join(dev, name), v); err != nil {
				return err
			}
		}
		if err := ln(fmt.Sprintf("../../../kernel/iommu_groups/%d", g), filepath.Join(dev, "iommu_group")); err != nil {
			return err
		}
		if i%4 == 0 {
			if err := ln("../../../bus/pci/drivers/e1000e", filepath.Join(dev, "driver")); err != nil {
				return err
			}
		}
		if err := ln("../../../devices/pci0000:00/"+bdf, filepath.Join(root, "bus", "pci", "devices", bdf)); err != nil {
			return err
		}
		if err := ln("../../../../devices/pci0000:00/"+bdf, filepath.Join(root, "kernel", "iommu_groups", fmt.Sprint(g), "devices", bdf)); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(root, "bus", "pci", "drivers", "e1000e"), 0o755)
}

// SyntheticScan builds a large tree with only the files list reads, for
// benchmarks at the scale of a host with 100,000 devices: per device the
// uevent (ids and driver), the iommu_group, driver and bus/pci/devices
// links and its link in one IOMMU unit (class/iommu/dmar0); per group its
// type, reserved_regions and devices/ links. devices PCI functions (8 per
// slot, 32 slots per bus, 256 buses per domain, then the next domain) are
// spread evenly over groups iommu_groups, every fourth bound to e1000e. It
// returns the sysfs root.
func SyntheticScan(t testing.TB, devices, groups int) string {
	t.Helper()
	if devices <= 0 || groups <= 0 || groups > devices || devices > 1<<24 {
		t.Fatalf("sysfstest.SyntheticScan(%d, %d): want 0 < groups <= devices <= 1<<24", devices, groups)
	}
	root := t.TempDir()
	if err := syntheticScan(root, devices, groups); err != nil {
		t.Fatalf("sysfstest.SyntheticScan: %v", err)
	}
	return root
}

func syntheticScan(root string, devices, groups int) error {
	per := (devices + groups - 1) / groups
	for _, d := range []string{"bus/pci/devices", "bus/pci/drivers/e1000e", "kernel/iommu_groups", "devices/virtual/iommu/dmar0/devices", "class/iommu"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Symlink("../../devices/virtual/iommu/dmar0", filepath.Join(root, "class/iommu/dmar0")); err != nil {
		return err
	}
	unit := filepath.Join(root, "devices/virtual/iommu/dmar0/devices")
	for g := range groups {
		dir := filepath.Join(root, "kernel", "iommu_groups", fmt.Sprint(g))
		if err := os.MkdirAll(filepath.Join(dir, "devices"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "type"), []byte("DMA\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "reserved_regions"), []byte("0x00000000fee00000 0x00000000feefffff msi\n"), 0o644); err != nil {
			return err
		}
	}
	hosts := map[int]bool{}
	for i := range devices {
		dom := i >> 16
		bdf := fmt.Sprintf("%04x:%02x:%02x.%x", dom, i>>8&0xff, i>>3&0x1f, i&7)
		host := fmt.Sprintf("pci%04x:00", dom)
		if !hosts[dom] {
			if err := os.Mkdir(filepath.Join(root, "devices", host), 0o755); err != nil {
				return err
			}
			hosts[dom] = true
		}
		g := i / per
		dev := filepath.Join(root, "devices", host, bdf)
		if err := os.Mkdir(dev, 0o755); err != nil {
			return err
		}
		drv := ""
		if i%4 == 0 {
			drv = "DRIVER=e1000e\n"
			if err := os.Symlink("../../../bus/pci/drivers/e1000e", filepath.Join(dev, "driver")); err != nil {
				return err
			}
		}
		uevent := drv + "PCI_CLASS=20000\nPCI_ID=8086:10D3\nPCI_SUBSYS_ID=8086:0000\nPCI_SLOT_NAME=" + bdf + "\n"
		if err := os.WriteFile(filepath.Join(dev, "uevent"), []byte(uevent), 0o644); err != nil {
			return err
		}
		for _, l := range [][2]string{
			{fmt.Sprintf("../../../kernel/iommu_groups/%d", g), filepath.Join(dev, "iommu_group")},
			{"../../../devices/" + host + "/" + bdf, filepath.Join(root, "bus", "pci", "devices", bdf)},
			{"../../../../devices/" + host + "/" + bdf, filepath.Join(root, "kernel", "iommu_groups", fmt.Sprint(g), "devices", bdf)},
			{"../../../../../devices/" + host + "/" + bdf, filepath.Join(unit, bdf)},
		} {
			if err := os.Symlink(l[0], l[1]); err != nil {
				return err
			}
		}
	}
	return nil
}
