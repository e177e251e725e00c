//go:build linux

package type1

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

func TestOpenMissingNodeIsUnsupported(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), Options{ContainerPath: filepath.Join(t.TempDir(), "vfio")})
	var ue *iommu.UnsupportedError
	if !errors.As(err, &ue) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing node = %v; want an *iommu.UnsupportedError keeping ENOENT", err)
	}
}

// /dev/null opens like a device node and answers every ioctl with ENOTTY.
func TestOpenNotAContainer(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), Options{ContainerPath: os.DevNull})
	if !errors.Is(err, iommu.ErrNotSupported) || !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("Open of /dev/null = %v; want not supported, keeping ENOTTY", err)
	}
	c, err := vfio.OpenContainer(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if f := probeFlavour(c); f != iommu.Type1v2 {
		t.Errorf("probeFlavour(/dev/null) = %q, want type1v2", f)
	}
}

// standIn is a Backend over /dev/null with one address space, and group 7
// a temporary file: every setup step past the opens fails with ENOTTY.
func standIn(t *testing.T, failStep func(string) error) (*Backend, *AddressSpace) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "7"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := &Backend{
		opts:    Options{ContainerPath: os.DevNull, GroupDir: dir, FailStep: failStep},
		flavour: iommu.Type1v2,
		spaces:  make(map[*AddressSpace]struct{}),
		groups:  make(map[int]*group),
	}
	as, err := b.NewAddressSpace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return b, as.(*AddressSpace)
}

func TestFailStepUnwinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	injected := errors.New("injected")
	for _, step := range []string{StepOpenGroup, StepGroupStatus, StepSetContainer, StepSetIOMMU, StepDeviceFD, ""} {
		b, as := standIn(t, func(s string) error {
			if s == step {
				return injected
			}
			return nil
		})
		_, err := as.Attach(ctx, iommu.Device{BDF: "0000:00:01.0", Group: 7})
		switch step {
		case StepOpenGroup, StepGroupStatus:
			if !errors.Is(err, injected) {
				t.Errorf("Attach failing at %s = %v", step, err)
			}
		default: // the group status ioctl fails first
			if !errors.Is(err, unix.ENOTTY) {
				t.Errorf("Attach failing at %q = %v; want GET_STATUS's ENOTTY", step, err)
			}
		}
		if len(b.groups) != 0 || len(as.groups) != 0 {
			t.Errorf("failed Attach at %q left groups %v %v", step, b.groups, as.groups)
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if _, err := as.Map(ctx, iommu.Mapping{}); !errors.Is(err, iommu.ErrClosed) {
			t.Errorf("Map after Close = %v; want ErrClosed", err)
		}
		if _, err := as.Attach(ctx, iommu.Device{BDF: "0000:00:01.0", Group: 7}); !errors.Is(err, iommu.ErrClosed) {
			t.Errorf("Attach after Close = %v; want ErrClosed", err)
		}
	}
}

func TestMapWithoutIOMMU(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, as := standIn(t, nil)
	defer b.Close()
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: 0x100000, Fixed: true, Perm: iommu.Read}); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("Map = %v; want the kernel's errno", err)
	}
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, Perm: iommu.Read}); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("Map at a chosen IOVA = %v; want GET_INFO's errno", err)
	}
	if _, err := as.Map(ctx, iommu.Mapping{IOVA: 0x100000, Fixed: true, Perm: iommu.Read}); !errors.Is(err, iommu.ErrInvalid) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("Map of nothing = %v; want type1's EINVAL", err)
	}
	if len(as.maps) != 0 {
		t.Errorf("failed maps recorded: %v", as.maps)
	}
}

func TestPickIOVA(t *testing.T) {
	t.Parallel()
	const page = 4096
	vtd := []iommu.Range{{Start: 0, Last: 0xfedfffff}, {Start: 0xfef00000, Last: 1<<48 - 1}}
	for _, tc := range []struct {
		name    string
		ranges  []iommu.Range
		maps    []span
		length  uint64
		want    uint64
		wantErr error
	}{
		{"empty", vtd, nil, 2 * page, 0, nil},
		{"after a map", vtd, []span{{0, page}}, 2 * page, 2 * page, nil},
		{"aligned to its size", vtd, []span{{0, page}}, 1 << 21, 1 << 21, nil},
		{"skips a hole too small", vtd, []span{{0, page}, {2 * page, page}}, 2 * page, 4 * page, nil},
		{"fits a hole", vtd, []span{{0, page}, {4 * page, page}}, 2 * page, 2 * page, nil},
		{"next range", vtd, []span{{0, 0xfee00000}}, 1 << 20, 0xfef00000, nil},
		{"range start unaligned", []iommu.Range{{Start: 0x1000, Last: 0xffffff}}, nil, 1 << 20, 1 << 20, nil},
		{"cap 1 GiB", []iommu.Range{{Start: 1 << 30, Last: 1<<40 - 1}}, nil, 1 << 34, 1 << 30, nil},
		{"full", []iommu.Range{{Start: 0, Last: 2*page - 1}}, []span{{0, page}}, 2 * page, 0, iommu.ErrNoSpace},
		{"top of 64 bits", []iommu.Range{{Start: 0, Last: math.MaxUint64}}, []span{{0, math.MaxUint64 - page + 1}}, page, math.MaxUint64 - page + 1, nil},
		{"zero length", vtd, nil, 0, 0, iommu.ErrInvalid},
		{"not page sized", vtd, nil, 100, 0, iommu.ErrInvalid},
	} {
		got, err := pickIOVA(tc.ranges, page, tc.maps, tc.length)
		if tc.wantErr != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSPC) {
			t.Errorf("%s: pickIOVA error %v carries no errno", tc.name, err)
		}
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%s: pickIOVA = %#x, %v; want %#x, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestConcurrentUseAndClose races Map, Unmap, Ranges and Attach with Close
// on a stand-in container, for -race.
func TestConcurrentUseAndClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, as := standIn(t, nil)
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				as.Map(ctx, iommu.Mapping{IOVA: 0x1000, Fixed: true})
				as.Map(ctx, iommu.Mapping{})
				as.Unmap(ctx, 0x1000, 0x1000)
				as.Ranges(ctx)
				as.Attach(ctx, iommu.Device{BDF: "0000:00:01.0", Group: 7})
			}
		}()
	}
	b.Close()
	for range 4 {
		<-done
	}
	if _, err := as.Unmap(ctx, 0, 4096); !errors.Is(err, iommu.ErrClosed) {
		t.Errorf("Unmap after Close = %v; want ErrClosed", err)
	}
}
