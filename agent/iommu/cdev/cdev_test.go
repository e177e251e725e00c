//go:build linux

package cdev

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
)

func TestOpenMissingNodeIsUnsupported(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "iommu")})
	var ue *iommu.UnsupportedError
	if !errors.As(err, &ue) || !errors.Is(err, iommu.ErrNotSupported) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing node = %v; want an *iommu.UnsupportedError keeping ENOENT", err)
	}
}

// /dev/null opens like a device node and answers every ioctl with ENOTTY:
// the error paths run without root or an IOMMU.
func TestNotIOMMUFD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("rlimit", func(t *testing.T) {
		_, err := Open(ctx, Options{Path: os.DevNull, RLimitMode: iommufd.RLimitProcess})
		if !errors.Is(err, unix.ENOTTY) || !errors.Is(err, iommu.ErrNotSupported) {
			t.Fatalf("Open with RLimitProcess on /dev/null = %v; want ENOTTY as not supported", err)
		}
	})
	t.Run("ioas", func(t *testing.T) {
		b, err := Open(ctx, Options{Path: os.DevNull})
		if err != nil {
			t.Fatal(err)
		}
		if b.Flavour() != iommu.IOMMUFD {
			t.Errorf("Flavour = %q", b.Flavour())
		}
		if _, err := b.NewAddressSpace(ctx); !errors.Is(err, unix.ENOTTY) {
			t.Errorf("NewAddressSpace on /dev/null = %v; want ENOTTY", err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		if _, err := b.NewAddressSpace(ctx); !errors.Is(err, iommu.ErrClosed) {
			t.Errorf("NewAddressSpace after Close = %v; want ErrClosed", err)
		}
	})
}

func TestFailStepUnwinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	injected := errors.New("injected")
	fail := func(at string) func(string) error {
		return func(step string) error {
			if step == at {
				return injected
			}
			return nil
		}
	}
	for _, step := range []string{StepOpen, StepRLimit} {
		_, err := Open(ctx, Options{Path: os.DevNull, RLimitMode: iommufd.RLimitProcess, FailStep: fail(step)})
		if !errors.Is(err, injected) {
			t.Errorf("Open failing at %s = %v", step, err)
		}
	}
	// Attach on a stand-in IOAS: the cdev is /dev/null, so without
	// injection the bind fails with ENOTTY. Every path must close the
	// cdev (TestMain checks) and leave nothing bound.
	for _, step := range []string{StepOpenCdev, StepBind, StepAttach, ""} {
		b, err := Open(ctx, Options{Path: os.DevNull, FailStep: fail(step)})
		if err != nil {
			t.Fatal(err)
		}
		as := &AddressSpace{b: b, ioas: 1, attached: make(map[*Attachment]struct{})}
		b.spaces[as] = struct{}{}
		_, err = as.Attach(ctx, iommu.Device{BDF: "0000:00:01.0", Cdev: os.DevNull})
		switch {
		case step == "" || step == StepAttach:
			if !errors.Is(err, unix.ENOTTY) {
				t.Errorf("Attach failing at %q = %v; want the bind's ENOTTY", step, err)
			}
		case !errors.Is(err, injected):
			t.Errorf("Attach failing at %s = %v", step, err)
		}
		if len(b.bound) != 0 || len(as.attached) != 0 {
			t.Errorf("failed Attach at %q left %d bound, %d attached", step, len(b.bound), len(as.attached))
		}
		// The stand-in IOAS cannot be destroyed on /dev/null.
		if err := b.Close(); !errors.Is(err, unix.ENOTTY) {
			t.Errorf("Close = %v; want the IOAS destroy's ENOTTY", err)
		}
		if _, err := as.Map(ctx, iommu.Mapping{}); !errors.Is(err, iommu.ErrClosed) {
			t.Errorf("Map after Close = %v; want ErrClosed", err)
		}
		if _, err := as.Unmap(ctx, 0, 4096); !errors.Is(err, iommu.ErrClosed) {
			t.Errorf("Unmap after Close = %v; want ErrClosed", err)
		}
		if err := as.Close(); err != nil {
			t.Errorf("second AddressSpace Close = %v", err)
		}
	}
}

// tree builds a fake sysfs: entries ending in "@" are symlinks to value,
// others directories (value empty) or files.
func tree(t *testing.T, entries map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, value := range entries {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case name[len(name)-1] == '@':
			err = os.Symlink(value, p[:len(p)-1])
		case value == "":
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, []byte(value), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFindCdev(t *testing.T) {
	t.Parallel()
	const dev = "bus/pci/devices/0000:00:01.0/"
	const vfioDriver = "../../../bus/pci/drivers/vfio-pci"
	for _, tc := range []struct {
		name    string
		tree    map[string]string
		want    string
		wantErr error
	}{
		{"vfio-pci", map[string]string{dev + "vfio-dev/vfio3": "", dev + "driver@": vfioDriver}, "/dev/vfio/devices/vfio3", nil},
		{"no device", map[string]string{"bus/pci/devices/0000:00:02.0/vendor": "0x1234"}, "", iommu.ErrNotFound},
		{"host driver", map[string]string{dev + "driver@": "../../../bus/pci/drivers/e1000"}, "", iommu.ErrInvalid},
		{"no driver", map[string]string{dev + "vendor": "0x1234"}, "", iommu.ErrInvalid},
		{"kernel without cdev", map[string]string{dev + "driver@": vfioDriver}, "", iommu.ErrNotSupported},
		{"two cdevs", map[string]string{dev + "vfio-dev/vfio3": "", dev + "vfio-dev/vfio4": ""}, "", iommu.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := findCdev(tree(t, tc.tree), "/dev/vfio/devices", "0000:00:01.0")
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("findCdev = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestAttachFindsCdevInSysfs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := tree(t, map[string]string{"bus/pci/devices/0000:00:01.0/vendor": "0x1234"})
	b, err := Open(ctx, Options{Path: os.DevNull, SysfsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	as := &AddressSpace{b: b, ioas: 1, attached: make(map[*Attachment]struct{})}
	if _, err := as.Attach(ctx, iommu.Device{BDF: "0000:00:01.0"}); !errors.Is(err, iommu.ErrInvalid) {
		t.Errorf("Attach of a device without a VFIO driver = %v; want ErrInvalid", err)
	}
	if _, err := as.Attach(ctx, iommu.Device{BDF: "0000:00:09.0"}); !errors.Is(err, iommu.ErrNotFound) {
		t.Errorf("Attach of a missing device = %v; want ErrNotFound", err)
	}
}

func TestHWInfoType(t *testing.T) {
	t.Parallel()
	for typ, want := range map[iommufd.HWInfoType]string{
		iommufd.HWInfoTypeNone: "none", iommufd.HWInfoTypeIntelVTD: "intel-vtd",
		iommufd.HWInfoTypeARMSMMUv3: "arm-smmuv3", 99: "type-99",
	} {
		if got := hwInfoType(typ); got != want {
			t.Errorf("hwInfoType(%d) = %q, want %q", typ, got, want)
		}
	}
}

// TestConcurrentUseAndClose races Map, Unmap, Ranges and Attach with Close
// on a stand-in IOAS, for -race: the kernel calls fail (ENOTTY), the Go
// state must not race, and after Close every call says ErrClosed.
func TestConcurrentUseAndClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := Open(ctx, Options{Path: os.DevNull})
	if err != nil {
		t.Fatal(err)
	}
	as := &AddressSpace{b: b, ioas: 1, attached: make(map[*Attachment]struct{})}
	b.spaces[as] = struct{}{}
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				as.Map(ctx, iommu.Mapping{IOVA: 0x1000, Fixed: true})
				as.Unmap(ctx, 0x1000, 0x1000)
				as.Ranges(ctx)
				as.Attach(ctx, iommu.Device{BDF: "0000:00:01.0", Cdev: os.DevNull})
			}
		}()
	}
	b.Close()
	for range 4 {
		<-done
	}
	if _, err := as.Map(ctx, iommu.Mapping{}); !errors.Is(err, iommu.ErrClosed) {
		t.Errorf("Map after Close = %v; want ErrClosed", err)
	}
}
