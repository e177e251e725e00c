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
