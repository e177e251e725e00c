package iommutest_test

import (
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/emulated"
	"github.com/iommu-agent/iommu-agent/agent/iommu/iommutest"
)

// TestEmulated holds the emulated IOMMU to the suite in every flavour, the
// way the guest holds cdev and type1 to it.
func TestEmulated(t *testing.T) {
	for _, f := range []iommu.Flavour{iommu.IOMMUFD, iommu.Type1v2, iommu.Compat} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			iommutest.Run(t, func(t *testing.T) iommutest.Target {
				return emulatedTarget(t, emulated.Options{Flavour: f}, iommu.Range{Start: 0xfee00000, Last: 0xfeefffff})
			})
		})
	}
}

// TestEmulatedNesting holds the emulated SMMUv3 model to the nesting
// cases, the way the own 7.3 lane holds cdev to them.
func TestEmulatedNesting(t *testing.T) {
	t.Parallel()
	iommutest.RunNesting(t, func(t *testing.T) iommutest.Target {
		return emulatedTarget(t, emulated.Options{IOMMU: emulated.SMMUv3, NoDirtyTracking: true}, iommu.Range{Start: 0x8000000, Last: 0x80fffff})
	})
}

// emulatedTarget is an emulated backend made with o over two edu-like
// devices in groups of their own, whose devices reserve msi.
func emulatedTarget(t *testing.T, o emulated.Options, msi iommu.Range) iommutest.Target {
	devs := []iommu.Device{{BDF: "0000:00:03.0", Group: 3}, {BDF: "0000:00:04.0", Group: 4}}
	o.Devices = devs
	b, err := emulated.New(o)
	if err != nil {
		t.Fatalf("emulated.New(%+v): %v", o, err)
	}
	return iommutest.Target{
		Backend: b,
		Devices: devs,
		Alloc:   func(t *testing.T, size int) []byte { return make([]byte, size) },
		DMA: func(t *testing.T, a iommu.Attachment) iommutest.DMAEngine {
			return a.(*emulated.Attachment).DMA()
		},
		Pinned:   b.Pinned,
		DMALimit: emulated.EduDMAMask + 1,
		Reserved: []iommu.Range{msi},
	}
}
