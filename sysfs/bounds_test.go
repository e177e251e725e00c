package sysfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/tools/txtar"
)

// host is a small tree for the hostile cases: edu 0000:00:01.0 alone in
// group 1, an e1000 0000:00:02.0 in group 2, both translated by dmar0.
const host = `
-- sys/bus/pci/devices/0000:00:01.0@ --
../../../devices/pci0000:00/0000:00:01.0
-- sys/devices/pci0000:00/0000:00:01.0/uevent --
PCI_CLASS=FF00
PCI_ID=1234:11E8
PCI_SUBSYS_ID=1AF4:1100
PCI_SLOT_NAME=0000:00:01.0
-- sys/devices/pci0000:00/0000:00:01.0/class --
0x00ff00
-- sys/devices/pci0000:00/0000:00:01.0/resource --
0x00000000fea00000 0x00000000feafffff 0x0000000000040200
-- sys/devices/pci0000:00/0000:00:01.0/iommu_group@ --
../../../kernel/iommu_groups/1
-- sys/kernel/iommu_groups/1/devices/0000:00:01.0@ --
../../../../devices/pci0000:00/0000:00:01.0
-- sys/kernel/iommu_groups/1/type --
DMA
-- sys/kernel/iommu_groups/1/reserved_regions --
0x00000000fee00000 0x00000000feefffff msi
-- sys/bus/pci/devices/0000:00:02.0@ --
../../../devices/pci0000:00/0000:00:02.0
-- sys/devices/pci0000:00/0000:00:02.0/uevent --
DRIVER=e1000
PCI_CLASS=20000
PCI_ID=8086:100E
PCI_SUBSYS_ID=1AF4:1100
PCI_SLOT_NAME=0000:00:02.0
-- sys/devices/pci0000:00/0000:00:02.0/class --
0x020000
-- sys/devices/pci0000:00/0000:00:02.0/driver@ --
../../../bus/pci/drivers/e1000
-- sys/devices/pci0000:00/0000:00:02.0/iommu_group@ --
../../../kernel/iommu_groups/2
-- sys/kernel/iommu_groups/2/devices/0000:00:02.0@ --
../../../../devices/pci0000:00/0000:00:02.0
-- sys/kernel/iommu_groups/2/type --
DMA
-- sys/bus/pci/drivers/e1000/ --
-- sys/class/iommu/dmar0@ --
../../devices/virtual/iommu/dmar0
-- sys/devices/virtual/iommu/dmar0/devices/0000:00:01.0@ --
../../../../pci0000:00/0000:00:01.0
-- sys/devices/virtual/iommu/dmar0/devices/0000:00:02.0@ --
../../../../pci0000:00/0000:00:02.0
`

// hostile unpacks host, lets breakage change it and returns the sysfs
// root.
func hostile(t *testing.T, breakage func(root string) error) string {
	t.Helper()
	dir := t.TempDir()
	if err := sysfstest.Unpack(dir, txtar.Parse([]byte(host))); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "sys")
	if breakage != nil {
		if err := breakage(root); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// replace puts a symlink to target where rel was.
func replace(root, rel, target string) error {
	p := filepath.Join(root, rel)
	if err := os.RemoveAll(p); err != nil {
		return err
	}
	return os.Symlink(target, p)
}

// within runs f, failing the test rather than hanging the suite when f
// blocks (a FIFO opened for reading waits for a writer forever).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still blocked after 20s", what)
	}
}

// A 100 MiB reserved_regions (sparse: NUL bytes, no newline) is refused at
// the cap: a short error naming the file and the cap, little memory.
func TestReservedRegionsCapped(t *testing.T) {
	root := hostile(t, func(root string) error {
		return os.Truncate(filepath.Join(root, "kernel/iommu_groups/1/reserved_regions"), 100<<20)
	})
	f, err := sysfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	groups, err := f.Groups()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, sysfs.ErrTooLarge) || !strings.Contains(err.Error(), "reserved_regions") || !strings.Contains(err.Error(), "1048576") {
		t.Errorf("Groups error %.300q, want ErrTooLarge naming reserved_regions and the cap", err)
	}
	if err != nil && len(err.Error()) > 1024 {
		t.Errorf("error of %d bytes", len(err.Error()))
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("Groups allocated %d MiB", got>>20)
	}
	if len(groups) != 2 || groups[0].ReservedRegions != nil || len(groups[0].Devices) != 1 {
		t.Errorf("groups %+v", groups)
	}
}

// Files that are no regular file are refused, without reading or
// blocking: a link to /dev/zero, a FIFO, a directory. The device or group
// is still listed, with the error.
func TestNotRegularRefused(t *testing.T) {
	t.Parallel()
	fifo := func(rel string) func(string) error {
		return func(root string) error {
			p := filepath.Join(root, rel)
			if err := os.Remove(p); err != nil {
				return err
			}
			return syscall.Mkfifo(p, 0o644)
		}
	}
	zero := func(rel string) func(string) error {
		return func(root string) error { return replace(root, rel, "/dev/zero") }
	}
	dir := func(rel string) func(string) error {
		return func(root string) error {
			p := filepath.Join(root, rel)
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o755)
		}
	}
	const uevent = "devices/pci0000:00/0000:00:01.0/uevent"
	for _, c := range []struct {
		name     string
		breakage func(string) error
		want     string // in the error
	}{
		{"uevent FIFO", fifo(uevent), "uevent"},
		{"uevent /dev/zero", zero(uevent), "uevent"},
		{"uevent directory", dir(uevent), "uevent"},
		{"class /dev/zero", func(root string) error {
			// Without uevent the ids come from their own files.
			if err := os.Remove(filepath.Join(root, uevent)); err != nil {
				return err
			}
			return replace(root, "devices/pci0000:00/0000:00:01.0/class", "/dev/zero")
		}, "class"},
		{"reserved_regions /dev/zero", zero("kernel/iommu_groups/1/reserved_regions"), "reserved_regions"},
		{"reserved_regions FIFO", fifo("kernel/iommu_groups/1/reserved_regions"), "reserved_regions"},
		{"type FIFO", fifo("kernel/iommu_groups/1/type"), "type"},
		{"resource /dev/zero", zero("devices/pci0000:00/0000:00:01.0/resource"), "resource"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := sysfs.New(hostile(t, c.breakage))
			if err != nil {
				t.Fatal(err)
			}
			var devs []sysfs.Device
			var groups []sysfs.Group
			var derr, gerr error
			within(t, "Devices and Groups", func() {
				devs, derr = f.Devices()
				groups, gerr = f.Groups()
			})
			err = errors.Join(derr, gerr)
			if !errors.Is(err, sysfs.ErrNotRegular) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want ErrNotRegular naming %s", err, c.want)
			}
			if len(devs) != 2 || len(groups) != 2 {
				t.Errorf("%d devices, %d groups; want each listed", len(devs), len(groups))
			}
		})
	}
}

// Links whose target leaves the root are errors for their device, which
// is still listed; nothing outside the root is read.
func TestLinkEscapes(t *testing.T) {
	t.Parallel()
	// outside holds what an escaping link would find: a device's files.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "uevent"), []byte("PCI_CLASS=FF00\nPCI_ID=dead:beef\nPCI_SUBSYS_ID=1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const dev = "devices/pci0000:00/0000:00:01.0"
	for _, c := range []struct {
		name, rel, target string
	}{
		{"iommu_group absolute", dev + "/iommu_group", "/etc/1"},
		{"iommu_group above root", dev + "/iommu_group", "../../../../../../../../../../../../etc/1"},
		{"driver above root", dev + "/driver", "../../../../../../../../../../../../../../bus/pci/drivers/e1000"},
		{"bus link outside", "bus/pci/devices/0000:00:01.0", outside},
		{"bus link above root", "bus/pci/devices/0000:00:01.0", "../../../../../../../../../../.." + outside},
		{"device dir outside", "devices/pci0000:00/0000:00:01.0", outside},
		{"group member outside", "kernel/iommu_groups/1/devices/0000:00:01.0", outside},
		{"unit outside", "class/iommu/dmar0", outside},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			root := hostile(t, func(root string) error { return replace(root, c.rel, c.target) })
			f, err := sysfs.New(root)
			if err != nil {
				t.Fatal(err)
			}
			devs, derr := f.Devices()
			_, gerr := f.Groups()
			_, uerr := f.IOMMUs()
			v, verr := f.Viability(1)
			err = errors.Join(derr, gerr, uerr, verr)
			if !errors.Is(err, sysfs.ErrEscapes) {
				t.Errorf("error %v, want ErrEscapes", err)
			}
			if len(devs) != 2 || devs[0].Address.String() != "0000:00:01.0" {
				t.Errorf("devices %+v, want both listed", devs)
			}
			if devs[0].Vendor == 0xdead || devs[0].Driver != "" {
				t.Errorf("read from outside the root: %+v", devs[0])
			}
			if c.rel == dev+"/iommu_group" && devs[0].IOMMUGroup != nil {
				t.Errorf("group %d from a link leaving the root", *devs[0].IOMMUGroup)
			}
			if strings.HasPrefix(c.rel, "kernel/") && (verr == nil || v.Viable) {
				t.Errorf("Viability(1) = %v, %v with a member outside the root", v, verr)
			}
		})
	}
}

// Names from links, directory entries and uevent are refused when they
// carry control characters, separators or absurd lengths.
func TestNamesRefused(t *testing.T) {
	t.Parallel()
	const dev = "devices/pci0000:00/0000:00:02.0"
	for _, c := range []struct {
		name     string
		breakage func(string) error
		want     string
	}{
		{"driver link with escape", func(root string) error {
			if err := os.WriteFile(filepath.Join(root, dev, "uevent"), []byte("PCI_CLASS=20000\n"), 0o644); err != nil {
				return err
			}
			return replace(root, dev+"/driver", "../../../bus/pci/drivers/e1000\x1b[2J")
		}, "driver"},
		{"uevent DRIVER with newline escape", func(root string) error {
			return os.WriteFile(filepath.Join(root, dev, "uevent"), []byte("DRIVER=e1000\x1b[31m\nPCI_CLASS=20000\nPCI_ID=8086:100E\nPCI_SUBSYS_ID=1AF4:1100\n"), 0o644)
		}, "DRIVER"},
		{"uevent DRIVER dotdot", func(root string) error {
			return os.WriteFile(filepath.Join(root, dev, "uevent"), []byte("DRIVER=..\nPCI_CLASS=20000\nPCI_ID=8086:100E\nPCI_SUBSYS_ID=1AF4:1100\n"), 0o644)
		}, "DRIVER"},
		{"long driver", func(root string) error {
			return os.WriteFile(filepath.Join(root, dev, "uevent"), []byte("DRIVER="+strings.Repeat("e", 3000)+"\nPCI_CLASS=20000\nPCI_ID=8086:100E\nPCI_SUBSYS_ID=1AF4:1100\n"), 0o644)
		}, "DRIVER"},
		{"group link long number", func(root string) error {
			return replace(root, dev+"/iommu_group", "../../../kernel/iommu_groups/"+strings.Repeat("9", 200))
		}, "iommu_group"},
		{"group link not to iommu_groups", func(root string) error {
			return replace(root, dev+"/iommu_group", "../../../bus/2")
		}, "iommu_group"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := sysfs.New(hostile(t, c.breakage))
			if err != nil {
				t.Fatal(err)
			}
			devs, err := f.Devices()
			if !errors.Is(err, sysfs.ErrName) || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 1024 {
				t.Errorf("error %.2000q, want ErrName naming %s, short", err, c.want)
			}
			if len(devs) != 2 || strings.ContainsAny(devs[1].Driver, "\x1b/.") || len(devs[1].Driver) > 128 {
				t.Errorf("devices %+v", devs)
			}
		})
	}
	// A member of a group whose name is no name.
	root := hostile(t, func(root string) error {
		return os.Symlink("../../../../devices/pci0000:00/0000:00:01.0", filepath.Join(root, "kernel/iommu_groups/1/devices/bad\nname"))
	})
	f, err := sysfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := f.Groups()
	if !errors.Is(err, sysfs.ErrName) || len(groups) != 2 || groups[0].DevicesErr == nil {
		t.Errorf("Groups() = %+v, %v; want group 1 with DevicesErr", groups, err)
	}
	devs, _ := f.Devices()
	if v, ok := sysfs.ViabilityOf(groups[0], devs); !ok || v.Viable {
		t.Errorf("ViabilityOf(group 1) = %v, %v; want not viable", v, ok)
	}
	if v, err := f.Viability(1); err == nil || v.Viable {
		t.Errorf("Viability(1) = %v, %v; want not viable", v, err)
	}
}

// A group whose devices/ cannot be read is not viable: its membership is
// unknown.
func TestUnreadableMembersNotViable(t *testing.T) {
	t.Parallel()
	const members = "kernel/iommu_groups/1/devices"
	for _, c := range []struct {
		name     string
		breakage func(string) error
	}{
		{"link loop", func(root string) error { return replace(root, members, "devices") }},
		{"a file", func(root string) error {
			if err := os.RemoveAll(filepath.Join(root, members)); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(root, members), nil, 0o644)
		}},
		{"dangling", func(root string) error { return replace(root, members, "gone") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := sysfs.New(hostile(t, c.breakage))
			if err != nil {
				t.Fatal(err)
			}
			devs, err := f.Devices()
			if err != nil {
				t.Fatal(err)
			}
			groups, err := f.Groups()
			if err == nil || len(groups) != 2 || groups[0].Number != 1 || groups[0].DevicesErr == nil {
				t.Fatalf("Groups() = %+v, %v; want group 1 with its error", groups, err)
			}
			if v, ok := sysfs.ViabilityOf(groups[0], devs); !ok || v.Viable {
				t.Errorf("ViabilityOf(group 1) = %v, %v; want not viable", v, ok)
			}
			if v, err := f.Viability(1); err == nil || v.Viable {
				t.Errorf("Viability(1) = %v, %v; want not viable", v, err)
			}
		})
	}
}

// Scan and Groups stop at a cancelled context.
func TestScanContextCancelled(t *testing.T) {
	t.Parallel()
	f, err := sysfs.New(sysfstest.Synthetic(t, 256, 64))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.ScanContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ScanContext(cancelled) error %v", err)
	}
	if _, err := f.DevicesContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("DevicesContext(cancelled) error %v", err)
	}
	if _, err := f.GroupsContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("GroupsContext(cancelled) error %v", err)
	}
}
