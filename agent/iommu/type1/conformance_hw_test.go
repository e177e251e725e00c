//go:build hwtests && linux

package type1

import (
	"context"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/iommutest"
	"github.com/iommu-agent/iommu-agent/hwtests/edu"
)

// TestConformance holds the backend to the suite the emulated IOMMU passes,
// with edu as the DMA device.
func TestConformance(t *testing.T) {
	devs := findEdu(t)
	for _, d := range devs {
		bindVFIO(t, d)
	}
	iommutest.Run(t, func(t *testing.T) iommutest.Target {
		b, err := Open(context.Background(), Options{})
		need(t, "open type1 backend", err)
		return iommutest.Target{
			Backend: b,
			Devices: devs,
			Alloc:   dmaBuffer,
			DMA: func(t *testing.T, a iommu.Attachment) iommutest.DMAEngine {
				return openEdu(t, a.(*Attachment).VFIODevice())
			},
			Pinned:   func() uint64 { p := readPins(t); return (p.pin + p.lck) * 1024 },
			DMALimit: edu.MaxIOVA,
			Reserved: []iommu.Range{{Start: 0xfee00000, Last: 0xfeefffff}},
		}
	})
}
