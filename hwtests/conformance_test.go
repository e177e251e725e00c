//go:build hwtests && linux

package hwtests

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/cdev"
	"github.com/iommu-agent/iommu-agent/agent/iommu/iommutest"
	"github.com/iommu-agent/iommu-agent/agent/iommu/type1"
	"github.com/iommu-agent/iommu-agent/hwtests/edu"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// TestConformance holds the kernel backends to the suite the emulated one
// passes in plain go test, with edu doing the DMA. The two-device memlock
// cases need `-devices edu,edu`; the default run has one edu and the suite
// skips them, saying why.
func TestConformance(t *testing.T) {
	devs := hwtest.FindEdu(t)
	if listed := eduListed(); len(devs) < listed {
		t.Fatalf("HWTESTS_DEVICES lists %d edu, the guest has %d", listed, len(devs))
	}
	if len(devs) < 2 {
		t.Logf("one edu: the two-device memlock cases skip (run the harness with -devices edu,edu)")
	}
	var devices []iommu.Device
	for _, d := range devs {
		hwtest.BindVFIO(t, d)
		devices = append(devices, iommu.Device{BDF: d.BDF, Group: d.Group, Cdev: cdevPath(t, d)})
	}
	// The interrupt window the IOMMU reserves: x86's on VT-d, the
	// software MSI window on an SMMUv3.
	reserved := []iommu.Range{hwtest.MSIWindow(t, devices[0])}

	target := func(t *testing.T, b iommu.Backend, pinned string) iommutest.Target {
		return iommutest.Target{
			Backend: b,
			Devices: devices,
			Alloc:   hwtest.DMABuffer,
			DMA: func(t *testing.T, a iommu.Attachment) iommutest.DMAEngine {
				return openEdu(t, vfioDevice(t, a))
			},
			Pinned:   func() uint64 { return procStatusKB(t, pinned) * 1024 },
			DMALimit: edu.MaxIOVA,
			Reserved: reserved,
		}
	}
	t.Run("iommufd", func(t *testing.T) {
		iommutest.Run(t, func(t *testing.T) iommutest.Target {
			b, err := cdev.Open(context.Background(), cdev.Options{})
			hwtest.Need(t, "open the iommufd backend", err)
			return target(t, b, "VmPin")
		})
	})
	// The nesting cases need an SMMUv3 that nests: the own kernel's lane.
	// Elsewhere a nesting parent is EOPNOTSUPP (TestNestingObjects pins
	// why, per lane), and the cases do not apply.
	t.Run("iommufd-nesting", func(t *testing.T) {
		if lane := hwtest.Lane(); noNestingLane(lane) {
			b, err := cdev.Open(context.Background(), cdev.Options{})
			hwtest.Need(t, "open the iommufd backend", err)
			defer b.Close()
			as, err := b.NewAddressSpace(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			at, err := as.Attach(context.Background(), devices[0])
			if err != nil {
				t.Fatal(err)
			}
			_, err = at.(iommu.Nester).NewHWPT(context.Background(), as, iommu.NestParent)
			if !errors.Is(err, iommu.ErrNotSupported) || !errors.Is(err, unix.EOPNOTSUPP) {
				t.Errorf("lane %s: a nesting parent: %v, want EOPNOTSUPP", lane, err)
			}
			return
		}
		iommutest.RunNesting(t, func(t *testing.T) iommutest.Target {
			b, err := cdev.Open(context.Background(), cdev.Options{})
			hwtest.Need(t, "open the iommufd backend", err)
			return target(t, b, "VmPin")
		})
	})
	// The legacy container is type1v2, or iommufd's compat container in the
	// harness's -modules compat boot: name the subtest after what ran.
	legacy := "type1"
	if os.Getenv("HWTESTS_MODULES") == "compat" {
		legacy = "compat"
	}
	t.Run(legacy, func(t *testing.T) {
		iommutest.Run(t, func(t *testing.T) iommutest.Target {
			b, err := type1.Open(context.Background(), type1.Options{})
			hwtest.Need(t, "open the type1 backend", err)
			t.Logf("container flavour %s", b.Flavour())
			// The compat container charges like iommufd.
			if b.Flavour() == iommu.Compat {
				return target(t, b, "VmPin")
			}
			return target(t, b, "VmLck")
		})
	})
}

// vfioDevice is the device fd behind a kernel backend's attachment.
func vfioDevice(t *testing.T, a iommu.Attachment) *vfio.Device {
	t.Helper()
	switch a := a.(type) {
	case *cdev.Attachment:
		return a.VFIODevice()
	case *type1.Attachment:
		return a.VFIODevice()
	}
	t.Fatalf("attachment %T has no VFIO device", a)
	return nil
}

// eduListed counts the edu functions the harness put in the guest.
func eduListed() int {
	n := 0
	for _, d := range strings.Split(os.Getenv("HWTESTS_DEVICES"), ",") {
		if kind, _, _ := strings.Cut(d, "@"); kind == "edu" {
			n++
		}
	}
	return n
}
