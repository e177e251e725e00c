//go:build hwtests && linux

package hwtests

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/cdev"
	"github.com/iommu-agent/iommu-agent/agent/iommu/emulated"
	"github.com/iommu-agent/iommu-agent/agent/iommu/iommutest"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
)

// Differential run: seeds × opsPerSeed operations, the areas compared every
// checkEvery operations.
var diffSeeds = []uint64{1, 2, 3, 4}

const (
	diffOpsPerSeed = 25000
	diffCheckEvery = 100
	diffPoolPages  = 64
)

// TestDifferential runs the same random operations, valid and invalid, on
// the kernel's iommufd (an IOAS with edu attached) and on the emulator
// (iommufd flavour, one device, no dirty tracking, as QEMU's VT-d and
// SMMUv3 give an automatic HWPT, the interrupt window and other regions
// the kernel reserves for the device, and the IOMMU's aperture), over one
// memfd pool both map, and wants every answer alike: IOVA, bytes, ranges,
// errno, invalidation commands handled. On an SMMUv3 that nests (the own
// kernel's lane) a quarter of the operations are nesting ones: HWPTs,
// vIOMMUs, vDEVICEs, nested HWPTs, event queues, attach, invalidation,
// destroy.
func TestDifferential(t *testing.T) {
	ctx := context.Background()
	pd := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, pd)
	dev := iommu.Device{BDF: pd.BDF, Group: pd.Group, Cdev: cdevPath(t, pd)}

	kb, err := cdev.Open(ctx, cdev.Options{})
	hwtest.Need(t, "open the iommufd backend", err)
	t.Cleanup(func() { kb.Close() })
	kas, err := kb.NewAddressSpace(ctx)
	if err != nil {
		t.Fatalf("kernel IOAS: %v", err)
	}
	kat, err := kas.Attach(ctx, dev)
	if err != nil {
		t.Fatalf("attach %s: %v", dev.BDF, err)
	}

	msi := hwtest.MSIWindow(t, dev)
	// The group's other reserved regions (AMD-Vi: the HyperTransport
	// range) and the domain's aperture: 48 bits on VT-d's and SMMUv3's
	// four-level tables, all 64 on AMD-Vi's v1 table (the kernel's IOVA
	// ranges run to 0xffffffffffffffff there).
	var resv []iommu.Range
	for _, r := range hwtest.ReservedRegions(t, dev.Group) {
		if r.Type != "msi" && r.Type != "direct-relaxable" {
			resv = append(resv, r.Range)
		}
	}
	var aperture iommu.IOVA
	if hwtest.IOMMUKind(t) == hwtest.AMDVi {
		aperture = math.MaxUint64
	}
	// Where the IOMMU nests (an SMMUv3 under the own kernel), the
	// emulator models it and the run adds the nesting operations.
	model, nest := emulated.VTd, false
	if info, err := kat.(iommu.HWInfoer).HWInfo(ctx); err != nil {
		t.Fatalf("hw info: %v", err)
	} else if info.Type == "arm-smmuv3" {
		model, nest = emulated.SMMUv3, true
	}
	eb, err := emulated.New(emulated.Options{IOMMU: model, Devices: []iommu.Device{dev}, NoDirtyTracking: true, MSIWindow: msi,
		Reserved: resv, ApertureLast: aperture})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eb.Close() })
	eas, err := eb.NewIOAS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eat, err := eas.AttachDevice(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}

	// A 2 MiB-aligned pool: the kernel aligns a chosen IOVA like the user
	// address, so offsets into the pool reach every alignment up to that.
	buf := hwtest.DMABuffer(t, 4<<20)
	off := (2<<20 - int(uintptr(unsafe.Pointer(&buf[0]))&(2<<20-1))) & (2<<20 - 1)
	pool := buf[off : off+diffPoolPages*4096 : off+diffPoolPages*4096]
	cfg := iommutest.GenConfig{
		Base: 0x100000, Pages: 64, PoolPages: diffPoolPages, PageSize: 4096,
		Copy: true, Allow: true, Attach: true, Other: true, Nest: nest,
		// The interrupt window's edges and the ends of 39- and 48-bit
		// apertures.
		Edges: []iommu.IOVA{msi.Start, msi.Last + 1, 1 << 39, 1 << 48},
	}
	for _, r := range resv {
		cfg.Edges = append(cfg.Edges, r.Start, r.Last+1)
	}
	// A second IOAS on each side, for IOAS_COPY between two.
	kother, err := kb.NewAddressSpace(ctx)
	if err != nil {
		t.Fatalf("kernel IOAS: %v", err)
	}
	eother, err := eb.NewIOAS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kside := &iommutest.Side{Space: kas, Attachment: kat, Other: kother}
	eside := &iommutest.Side{Space: eas, Attachment: eat, Other: eother}
	reset := []iommutest.Op{{Kind: iommutest.OpNestReset, Nest: &iommutest.NestOp{}}, {Kind: iommutest.OpUnmapAll}, {Kind: iommutest.OpUnmapAll, Other: true}, {Kind: iommutest.OpAllow}, {Kind: iommutest.OpAttach}}
	total, found := 0, 0
	start := time.Now()
	// The divergences found before, with the kernel's recorded answers.
	for _, reg := range iommutest.Regressions() {
		for i, o := range append(slices.Clone(reset), reg.Ops...) {
			ra := iommutest.Apply(ctx, kas, pool, o)
			rb := iommutest.Apply(ctx, eas, pool, o)
			total++
			if !ra.Same(rb) {
				found++
				t.Errorf("regression %q op %d %v: kernel %v, emulator %v", reg.Name, i, o, ra, rb)
			}
			if j := i - len(reset); j >= 0 && ra.Errno() != reg.Errnos[j] {
				t.Errorf("regression %q op %d %v: kernel %v, recorded errno %d", reg.Name, j, o, ra, int(reg.Errnos[j]))
			}
		}
	}
	// make test runs two seeds where the IOMMU does not nest, all four
	// where it does (the nesting operations' 100,000); make test-long
	// runs all four everywhere.
	seeds := diffSeeds
	if !nest && !hwtest.Long() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		// Every seed starts from an empty IOAS with no allowed list and
		// edu attached.
		ops := append(slices.Clone(reset), iommutest.Generate(seed, diffOpsPerSeed, cfg)...)
		rep := iommutest.Diff(ctx, kside, eside, pool, ops, diffCheckEvery, 20)
		total += rep.Ops
		found += rep.Count
		t.Logf("seed %d: %d ops, %d state checks, %d divergences", seed, rep.Ops, rep.StateChecks, rep.Count)
		for k, e := range rep.Errnos {
			t.Logf("seed %d: kernel %v: %v", seed, k, e)
		}
		for _, d := range rep.Divergences {
			t.Errorf("seed %d: %v (A kernel, B emulator)", seed, d)
		}
	}
	t.Logf("differential: %d ops in %v, %d divergences (seeds %v, nesting %t)", total, time.Since(start).Round(time.Millisecond), found, seeds, nest)
}
