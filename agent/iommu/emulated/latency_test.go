package emulated

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/internal/latency"
)

// TestLatency: with Options.Latency every Map and Unmap is counted under
// the flavour's operation and this process, failures with 0 bytes.
func TestLatency(t *testing.T) {
	ctx := context.Background()
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			rec := latency.NewRecorder("emulated", time.Hour, 0)
			b := newBackend(t, Options{Flavour: f, Latency: rec})
			asi, err := b.NewAddressSpace(ctx)
			if err != nil {
				t.Fatal(err)
			}
			const n = 7
			p := mem(t, pageSize, pageSize)
			for range n {
				if _, err := asi.Map(ctx, fixed(p, 0x100000)); err != nil {
					t.Fatal(err)
				}
				if _, err := asi.Map(ctx, fixed(p, 0x100000)); err == nil {
					t.Fatal("overlapping map succeeded")
				}
				if _, err := asi.Unmap(ctx, 0x100000, pageSize); err != nil {
					t.Fatal(err)
				}
			}
			mapOp, unmapOp := latency.IOASMap, latency.IOASUnmap
			if f != iommu.IOMMUFD {
				mapOp, unmapOp = latency.Type1Map, latency.Type1Unmap
			}
			s, err := rec.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Hists) != 2 {
				t.Errorf("keys %v, want 2", s.Hists)
			}
			for k, h := range s.Hists {
				if k.PID != uint32(os.Getpid()) || k.Comm == "" {
					t.Errorf("key %+v", k)
				}
				switch k.Op {
				case mapOp:
					if h.Count != 2*n || h.Bytes != n*pageSize {
						t.Errorf("%s: count %d bytes %d, want %d %d", k.Op, h.Count, h.Bytes, 2*n, n*pageSize)
					}
				case unmapOp:
					if h.Count != n || h.Bytes != n*pageSize {
						t.Errorf("%s: count %d bytes %d, want %d %d", k.Op, h.Count, h.Bytes, n, n*pageSize)
					}
				default:
					t.Errorf("unexpected op %s", k.Op)
				}
			}
		})
	}
}
