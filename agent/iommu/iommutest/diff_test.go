package iommutest_test

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/emulated"
	"github.com/iommu-agent/iommu-agent/agent/iommu/iommutest"
)

const diffPage = 4096

// diffConfig is what hwtests/TestDifferential uses, but for the pool.
func diffConfig() iommutest.GenConfig {
	return iommutest.GenConfig{
		Base: 0x100000, Pages: 64, PoolPages: 64, PageSize: diffPage,
		Copy: true, Allow: true, Attach: true, Other: true,
		Edges: []iommu.IOVA{0xfee00000, 0xfef00000, 1 << 48},
	}
}

// emulatedSpace is an IOAS of a fresh emulated iommufd with one device
// attached, as the guest test sets it up.
func emulatedSpace(t *testing.T) *emulated.AddressSpace {
	return emulatedSide(t, nil).Space.(*emulated.AddressSpace)
}

// emulatedSide is emulatedSpace with its attachment and a second IOAS to
// copy into; with wrap, the space is wrapped and there is no second IOAS
// (the emulator copies only from its own type).
func emulatedSide(t *testing.T, wrap func(*emulated.AddressSpace) iommu.AddressSpace) *iommutest.Side {
	t.Helper()
	dev := iommu.Device{BDF: "0000:00:03.0", Group: 3}
	b, err := emulated.New(emulated.Options{Devices: []iommu.Device{dev}, NoDirtyTracking: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	as, err := b.NewIOAS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at, err := as.AttachDevice(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if wrap == nil {
		other, err := b.NewIOAS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return &iommutest.Side{Space: as, Attachment: at, Other: other}
	}
	return &iommutest.Side{Space: wrap(as), Attachment: at}
}

// alone drops s's second space, to compare it with a wrapped side that has
// none.
func alone(s *iommutest.Side) *iommutest.Side {
	s.Other = nil
	return s
}

// pagePool returns n page-aligned bytes.
func pagePool(n int) []byte {
	b := make([]byte, n+diffPage)
	off := (diffPage - int(uintptr(unsafe.Pointer(&b[0]))%diffPage)) % diffPage
	return b[off : off+n : off+n]
}

func TestDiffEmulatedAgrees(t *testing.T) {
	ctx := context.Background()
	c := diffConfig()
	pool := pagePool(int(c.PoolPages * diffPage))
	for _, seed := range []uint64{1, 2, 3} {
		ops := iommutest.Generate(seed, 5000, c)
		if !slices.EqualFunc(ops, iommutest.Generate(seed, 5000, c), func(a, b iommutest.Op) bool { return a.String() == b.String() }) {
			t.Fatalf("seed %d: Generate is not deterministic", seed)
		}
		rep := iommutest.Diff(ctx, emulatedSide(t, nil), emulatedSide(t, nil), pool, ops, 100, 5)
		if rep.Ops != len(ops) || rep.StateChecks != len(ops)/100+1 {
			t.Errorf("seed %d: %d ops, %d state checks", seed, rep.Ops, rep.StateChecks)
		}
		// A side without Mappings is checked by the areas its results imply.
		opq := iommutest.Diff(ctx, emulatedSide(t, func(as *emulated.AddressSpace) iommu.AddressSpace { return &opaque{as} }), alone(emulatedSide(t, nil)), pool, ops, 100, 5)
		if opq.StateChecks == 0 {
			t.Errorf("seed %d: no state check from bookkeeping", seed)
		}
		rep.Count += opq.Count
		rep.Divergences = append(rep.Divergences, opq.Divergences...)
		for _, d := range rep.Divergences {
			t.Errorf("seed %d: %v", seed, d)
		}
		if rep.Count != 0 {
			t.Errorf("seed %d: %d divergences between two emulators", seed, rep.Count)
		}
	}
}

// TestDiffGeneratorCovers: every kind of operation, valid and invalid, is
// drawn, so a kernel run exercises the error paths too.
func TestDiffGeneratorCovers(t *testing.T) {
	ctx := context.Background()
	c := diffConfig()
	pool := pagePool(int(c.PoolPages * diffPage))
	ops := iommutest.Generate(7, 20000, c)
	kinds := map[iommutest.OpKind]int{}
	for _, o := range ops {
		kinds[o.Kind]++
	}
	for k := iommutest.OpMapFixed; k <= iommutest.OpAttach; k++ {
		if kinds[k] == 0 {
			t.Errorf("no %v drawn", k)
		}
	}
	errnos := map[syscall.Errno]int{}
	rep := iommutest.Diff(ctx, emulatedSide(t, func(as *emulated.AddressSpace) iommu.AddressSpace { return &counting{as, errnos} }), alone(emulatedSide(t, nil)), pool, ops, 0, 1)
	if rep.Count != 0 {
		t.Fatalf("%d divergences: %v", rep.Count, rep.Divergences)
	}
	if got := rep.Errnos[iommutest.OpUnmap][syscall.ENOENT]; got == 0 {
		t.Errorf("Report.Errnos has no unmap ENOENT: %v", rep.Errnos)
	}
	for _, e := range []syscall.Errno{0, syscall.EINVAL, syscall.EEXIST, syscall.ENOENT, syscall.EOVERFLOW, syscall.ENOSPC} {
		if errnos[e] < 10 {
			t.Errorf("%d results with errno %d (%v): %v", errnos[e], int(e), e, errnos)
		}
	}
	t.Logf("errnos of map and unmap: %v", errnos)
}

// counting counts the errnos of Map and Unmap.
type counting struct {
	*emulated.AddressSpace
	errnos map[syscall.Errno]int
}

func (c *counting) Map(ctx context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	iova, err := c.AddressSpace.Map(ctx, m)
	c.count(err)
	return iova, err
}

func (c *counting) Unmap(ctx context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	n, err := c.AddressSpace.Unmap(ctx, iova, length)
	c.count(err)
	return n, err
}

// Copy copies from the inner space when asked to copy from c itself.
func (c *counting) Copy(ctx context.Context, src iommu.AddressSpace, srcIOVA iommu.IOVA, length uint64, dst iommu.Mapping) (iommu.IOVA, error) {
	if src == iommu.AddressSpace(c) {
		src = c.AddressSpace
	}
	return c.AddressSpace.Copy(ctx, src, srcIOVA, length, dst)
}

func (c *counting) count(err error) {
	var e syscall.Errno
	errors.As(err, &e)
	c.errnos[e]++
}

// TestDiffFindsBugs: a backend one rule off is caught, with the operation
// and both answers.
func TestDiffFindsBugs(t *testing.T) {
	ctx := context.Background()
	c := diffConfig()
	pool := pagePool(int(c.PoolPages * diffPage))
	ops := iommutest.Generate(1, 2000, c)
	for name, wrong := range map[string]func(*emulated.AddressSpace) iommu.AddressSpace{
		"unmap of nothing is 0 bytes": func(as *emulated.AddressSpace) iommu.AddressSpace { return type1ish{as} },
		"chosen IOVA one page up":     func(as *emulated.AddressSpace) iommu.AddressSpace { return shifted{as} },
	} {
		t.Run(name, func(t *testing.T) {
			rep := iommutest.Diff(ctx, alone(emulatedSide(t, nil)), emulatedSide(t, wrong), pool, ops, 50, 3)
			if rep.Count == 0 || len(rep.Divergences) == 0 {
				t.Fatalf("no divergence over %d ops", rep.Ops)
			}
			if len(rep.Divergences) > 3 {
				t.Errorf("%d divergences kept, max 3", len(rep.Divergences))
			}
			d := rep.Divergences[0]
			t.Logf("%d divergences, first: %v", rep.Count, d)
			if d.Op.String() != ops[d.Index].String() && d.Op.Kind.String() != "state" {
				t.Errorf("divergence at %d reports op %v, the op was %v", d.Index, d.Op, ops[d.Index])
			}
		})
	}
}

// type1ish answers an unmap of nothing with 0 bytes, as type1v2 does.
type type1ish struct{ *emulated.AddressSpace }

func (w type1ish) Unmap(ctx context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	n, err := w.AddressSpace.Unmap(ctx, iova, length)
	if errors.Is(err, syscall.ENOENT) && n == 0 {
		return 0, nil
	}
	return n, err
}

// shifted picks chosen IOVAs a page above the emulator's.
type shifted struct{ *emulated.AddressSpace }

func (w shifted) Map(ctx context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	if m.Fixed {
		return w.AddressSpace.Map(ctx, m)
	}
	iova, err := w.AddressSpace.Map(ctx, m)
	if err != nil {
		return iova, err
	}
	if _, err := w.AddressSpace.Unmap(ctx, iova, uint64(len(m.Mem))); err != nil {
		return 0, err
	}
	m.IOVA, m.Fixed = iova+diffPage, true
	return w.AddressSpace.Map(ctx, m)
}

// opaque hides the emulator's Mappings, as a kernel backend has none.
type opaque struct{ as *emulated.AddressSpace }

func (o *opaque) Attach(ctx context.Context, dev iommu.Device) (iommu.Attachment, error) {
	return o.as.Attach(ctx, dev)
}

func (o *opaque) Map(ctx context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	return o.as.Map(ctx, m)
}

func (o *opaque) Unmap(ctx context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	return o.as.Unmap(ctx, iova, length)
}

func (o *opaque) Ranges(ctx context.Context) ([]iommu.Range, uint64, error) {
	return o.as.Ranges(ctx)
}

func (o *opaque) Close() error { return o.as.Close() }

func (o *opaque) AllowIOVAs(ctx context.Context, allowed []iommu.Range) error {
	return o.as.AllowIOVAs(ctx, allowed)
}

func (o *opaque) Copy(ctx context.Context, src iommu.AddressSpace, srcIOVA iommu.IOVA, length uint64, dst iommu.Mapping) (iommu.IOVA, error) {
	if src == iommu.AddressSpace(o) {
		src = o.as
	}
	return o.as.Copy(ctx, src, srcIOVA, length, dst)
}

// TestDiffRegressions holds the emulator to the kernel's recorded answers
// on every divergence the guest found.
func TestDiffRegressions(t *testing.T) {
	ctx := context.Background()
	pool := pagePool(64 * diffPage)
	for _, reg := range iommutest.Regressions() {
		t.Run(reg.Name, func(t *testing.T) {
			if len(reg.Ops) != len(reg.Errnos) {
				t.Fatalf("%d ops, %d errnos", len(reg.Ops), len(reg.Errnos))
			}
			as := emulatedSpace(t)
			for i, o := range reg.Ops {
				if r := iommutest.Apply(ctx, as, pool, o); r.Errno() != reg.Errnos[i] || (r.Err == nil) != (reg.Errnos[i] == 0) {
					t.Errorf("op %d %v: %v, the kernel said errno %d (%v)", i, o, r, int(reg.Errnos[i]), reg.Errnos[i])
				}
			}
		})
	}
}
