package sysfs_test

import (
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

// BenchmarkDevices discovers issue 5's synthetic host: 4,096 devices in
// 1,024 groups. hwtests/ghwbench (a module of its own, so ghw stays out of
// go.mod) runs the same discovery against ghw's in one run.
func BenchmarkDevices(b *testing.B) {
	f, err := sysfs.New(sysfstest.Synthetic(b, 4096, 1024))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		devs, err := f.Devices()
		if err != nil || len(devs) != 4096 {
			b.Fatalf("%d devices, %v", len(devs), err)
		}
	}
}

// BenchmarkScan is BenchmarkDevices with what list reads: see FS.Scan.
func BenchmarkScan(b *testing.B) {
	f, err := sysfs.New(sysfstest.Synthetic(b, 4096, 1024))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		devs, err := f.Scan()
		if err != nil || len(devs) != 4096 {
			b.Fatalf("%d devices, %v", len(devs), err)
		}
	}
}

func BenchmarkGroupsAndViability(b *testing.B) {
	f, err := sysfs.New(sysfstest.Synthetic(b, 4096, 1024))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		groups, err := f.Groups()
		if err != nil || len(groups) != 1024 {
			b.Fatalf("%d groups, %v", len(groups), err)
		}
		for _, g := range groups {
			if v, err := f.Viability(g.Number); err != nil || v.Viable {
				b.Fatalf("group %d: %v, %v", g.Number, v, err)
			}
		}
	}
}

func TestSynthetic(t *testing.T) {
	t.Parallel()
	f, err := sysfs.New(sysfstest.Synthetic(t, 64, 16))
	if err != nil {
		t.Fatal(err)
	}
	devs, err := f.Devices()
	if err != nil || len(devs) != 64 || *devs[63].IOMMUGroup != 15 || devs[4].Driver != "e1000e" {
		t.Fatalf("Devices() = %d, %v", len(devs), err)
	}
	groups, err := f.Groups()
	if err != nil || len(groups) != 16 || len(groups[0].Devices) != 4 {
		t.Fatalf("Groups() = %d, %v", len(groups), err)
	}
}
