package iommutest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"syscall"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// The differential test: one random operation sequence applied to two
// address spaces (the kernel's and the emulator's) that must answer alike,
// result by result and errno by errno.

// OpKind is what an Op does.
type OpKind int

// Operation kinds.
const (
	OpMapFixed  OpKind = iota // Map at Op.IOVA
	OpMapChosen               // Map, the backend picks the IOVA
	OpUnmap                   // Unmap [Op.IOVA, Op.IOVA+Op.Length)
	OpUnmapAll                // Unmap(0, MaxUint64)
	OpRanges                  // Ranges
	OpCopy                    // Copier.Copy from the space itself
	OpAllow                   // IOVAAllower.AllowIOVAs(Op.Allowed)
	OpDetach                  // detach the side's device, if attached
	OpAttach                  // attach it again, if detached
	opState                   // a state comparison, not an operation
)

var opNames = [...]string{"map-fixed", "map-chosen", "unmap", "unmap-all", "ranges", "copy", "allow-iovas", "detach", "attach", "state"}

func (k OpKind) String() string {
	if k > opState && int(k-opState-1) < len(nestOpNames) {
		return nestOpNames[k-opState-1]
	}
	if k < 0 || int(k) >= len(opNames) {
		return fmt.Sprintf("op(%d)", int(k))
	}
	return opNames[k]
}

// Op is one operation. Mem is Pool[MemOff:MemOff+MemLen] of the pool both
// sides share, so both map the same host addresses: the kernel picks IOVAs
// by the user address's alignment, and the emulator must see the same one.
type Op struct {
	Kind           OpKind
	IOVA           iommu.IOVA // map-fixed, unmap; copy: the source
	Length         uint64     // unmap, copy
	MemOff, MemLen uint64     // map
	Perm           iommu.Perm // map, copy
	DstIOVA        iommu.IOVA // copy
	Fixed          bool       // copy: DstIOVA is fixed
	// Other makes a copy go into the Side's Other space (from Space),
	// and an unmap-all empty Other.
	Other   bool
	Allowed []iommu.Range
	Nest    *NestOp // the nesting operations'
}

func (o Op) String() string {
	switch o.Kind {
	case OpMapFixed, OpMapChosen:
		return fmt.Sprintf("%v iova=%#x mem=+%#x len=%#x perm=%d", o.Kind, uint64(o.IOVA), o.MemOff, o.MemLen, o.Perm)
	case OpUnmap:
		return fmt.Sprintf("unmap iova=%#x len=%#x", uint64(o.IOVA), o.Length)
	case OpCopy:
		return fmt.Sprintf("copy src=%#x len=%#x dst=%#x fixed=%v perm=%d other=%v", uint64(o.IOVA), o.Length, uint64(o.DstIOVA), o.Fixed, o.Perm, o.Other)
	case OpUnmapAll:
		if o.Other {
			return "unmap-all other"
		}
	case OpAllow:
		return fmt.Sprintf("allow-iovas %v", o.Allowed)
	}
	if o.Nest != nil {
		return o.nestString()
	}
	return o.Kind.String()
}

// GenConfig shapes the operations: most land in a window of Pages pages at
// Base, the rest probe the edges (outside the usable ranges, wrapping,
// misaligned, reserved).
type GenConfig struct {
	Base      iommu.IOVA
	Pages     uint64 // window size in pages
	PoolPages uint64 // the shared pool's size in pages
	PageSize  uint64
	Copy      bool // both sides implement iommu.Copier
	Allow     bool // both sides implement iommu.IOVAAllower
	Attach    bool // both sides have a device to detach and attach again
	Other     bool // both sides have a second space to copy into
	// Nest adds nesting operations: both sides' attachments are
	// iommu.Nesters on an SMMUv3 that nests.
	Nest bool
	// Edges are IOVAs worth probing (reserved windows, aperture end).
	Edges []iommu.IOVA
}

// Generate returns n operations drawn from seed; the same seed and config
// give the same operations.
func Generate(seed uint64, n int, c GenConfig) []Op {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ps := c.PageSize
	pages := func(max uint64) uint64 { return 1 + r.Uint64N(max) }
	iova := func() iommu.IOVA {
		switch r.IntN(20) {
		case 0:
			if len(c.Edges) > 0 {
				e := c.Edges[r.IntN(len(c.Edges))]
				return e - iommu.IOVA(r.Uint64N(4)*ps)
			}
			return 0
		case 1:
			return iommu.IOVA(math.MaxUint64 - r.Uint64N(4)*ps) // wraps
		case 2:
			return iommu.IOVA(1) << (40 + r.IntN(24)) // beyond any aperture
		case 3:
			return c.Base + iommu.IOVA(r.Uint64N(c.Pages)*ps+1+r.Uint64N(ps-1)) // misaligned
		}
		return c.Base + iommu.IOVA(r.Uint64N(c.Pages)*ps)
	}
	length := func() uint64 {
		switch r.IntN(16) {
		case 0:
			return 0
		case 1:
			return pages(8)*ps + 1 + r.Uint64N(ps-1) // misaligned
		case 2:
			return math.MaxUint64 - r.Uint64N(2)
		}
		return pages(min(16, c.Pages)) * ps
	}
	perm := func() iommu.Perm {
		if r.IntN(16) == 0 {
			return 0
		}
		return iommu.Perm(1 + r.IntN(3))
	}
	mem := func() (off, n uint64) {
		n = pages(min(16, c.PoolPages)) * ps
		off = r.Uint64N(c.PoolPages-n/ps+1) * ps
		switch r.IntN(16) {
		case 0: // misaligned host address
			if off+n < c.PoolPages*ps {
				off += 8 << r.IntN(8)
			}
		case 1: // misaligned length
			n -= 1 + r.Uint64N(ps-1)
		}
		return off, n
	}
	// Unmaps and copies often aim at what an earlier fixed map asked for:
	// exactly, cutting it, or spanning it and its neighbour.
	var recent []iommu.Range
	target := func() (iommu.IOVA, uint64, bool) {
		if len(recent) == 0 || r.IntN(2) == 0 {
			return 0, 0, false
		}
		a := recent[r.IntN(len(recent))]
		switch r.IntN(4) {
		case 0: // cut: a page off either end
			if a.Len() > ps {
				if r.IntN(2) == 0 {
					return a.Start + iommu.IOVA(ps), a.Len() - ps, true
				}
				return a.Start, a.Len() - ps, true
			}
		case 1: // spanning into the next pages
			return a.Start, a.Len() + pages(8)*ps, true
		}
		return a.Start, a.Len(), true
	}
	ng := &nestGen{r: r, c: c}
	ops := make([]Op, 0, n)
	for len(ops) < n {
		if c.Nest && r.IntN(4) == 0 {
			ops = append(ops, ng.next())
			continue
		}
		var o Op
		switch k := r.IntN(100); {
		case k < 35:
			o.Kind = OpMapFixed
			o.IOVA = iova()
			o.MemOff, o.MemLen = mem()
			o.Perm = perm()
			if o.MemLen > 0 {
				recent = append(recent, iommu.Range{Start: o.IOVA, Last: o.IOVA + iommu.IOVA(o.MemLen) - 1})
				if len(recent) > 16 {
					recent = recent[1:]
				}
			}
		case k < 45:
			o.Kind = OpMapChosen
			o.IOVA = iova() // ignored, but must stay so
			o.MemOff, o.MemLen = mem()
			o.Perm = perm()
		case k < 80:
			o.Kind = OpUnmap
			var ok bool
			if o.IOVA, o.Length, ok = target(); !ok {
				o.IOVA, o.Length = iova(), length()
			}
		case k < 83:
			o.Kind = OpUnmapAll
			o.Other = c.Other && r.IntN(2) == 0
		case k < 88:
			o.Kind = OpRanges
		case k < 92:
			if !c.Copy {
				continue
			}
			o.Kind = OpCopy
			var ok bool
			if o.IOVA, o.Length, ok = target(); !ok {
				o.IOVA, o.Length = iova(), length()
			}
			o.DstIOVA, o.Fixed, o.Perm = iova(), r.IntN(2) == 0, perm()
			o.Other = c.Other && r.IntN(3) == 0
		case k < 97:
			if !c.Allow {
				continue
			}
			o.Kind = OpAllow
			for range r.IntN(3) {
				s := iova()
				e := s + iommu.IOVA(length()) - 1
				if r.IntN(8) != 0 && e >= s {
					e = s + iommu.IOVA(pages(c.Pages)*ps) - 1
				}
				o.Allowed = append(o.Allowed, iommu.Range{Start: s, Last: e})
			}
		default:
			// Rare: on the kernel, an attach binds the cdev again.
			if !c.Attach || r.IntN(4) != 0 {
				continue
			}
			o.Kind = OpDetach
			if k >= 98 {
				o.Kind = OpAttach
			}
		}
		ops = append(ops, o)
	}
	return ops
}

// Result is what one side answered.
type Result struct {
	IOVA      iommu.IOVA
	N         uint64 // bytes unmapped
	Ranges    []iommu.Range
	Alignment uint64
	Err       error
}

// Errno is the errno in r.Err, 0 when there is none.
func (r Result) Errno() syscall.Errno {
	var e syscall.Errno
	errors.As(r.Err, &e)
	return e
}

func (r Result) String() string {
	s := ""
	if r.IOVA != 0 {
		s += fmt.Sprintf("iova=%#x ", uint64(r.IOVA))
	}
	if r.N != 0 {
		s += fmt.Sprintf("n=%#x ", r.N)
	}
	if r.Ranges != nil || r.Alignment != 0 {
		s += fmt.Sprintf("ranges=%v align=%#x ", r.Ranges, r.Alignment)
	}
	if r.Err != nil {
		s += fmt.Sprintf("err=%v (errno %d)", r.Err, int(r.Errno()))
	}
	if s == "" {
		return "ok"
	}
	return s
}

// Same reports whether r and o agree: values, ranges, and errors by errno.
func (r Result) Same(o Result) bool {
	return r.IOVA == o.IOVA && r.N == o.N && slices.Equal(r.Ranges, o.Ranges) &&
		r.Alignment == o.Alignment && (r.Err == nil) == (o.Err == nil) && r.Errno() == o.Errno()
}

// Divergence is one operation the sides answered differently. A state
// divergence (the areas after operation Index differ) has Op.Kind "state"
// and the areas in the Results' Ranges.
type Divergence struct {
	Index int
	Op    Op
	A, B  Result
}

func (d Divergence) String() string {
	return fmt.Sprintf("op %d %v: A %v, B %v", d.Index, d.Op, d.A, d.B)
}

// Report is what Diff found.
type Report struct {
	Ops         int          // operations applied to each side
	StateChecks int          // comparisons of the areas
	Count       int          // divergences found
	Divergences []Divergence // the first of them
	// Errnos counts side A's answers per operation kind and errno (0
	// for success), to show which paths a run took.
	Errnos map[OpKind]map[syscall.Errno]int
}

// Mapper is implemented by address spaces that can list their areas (the
// emulator's Mappings).
type Mapper interface {
	Mappings() []iommu.Range
}

// Diff applies ops to a and b with memory from pool, compares every result,
// and every checkEvery operations (and at the end) compares the areas:
// a side's own Mappings when it has them, otherwise the areas its results
// imply: successful maps and copies add one, unmaps remove what they
// cover, and an unmap refused with ENOENT removes the whole areas below
// the first cut, as iopt_unmap_iova_range does. An error of unknown effect
// loses that bookkeeping until the next successful unmap-all. Only the
// first max divergences are kept; Report.Count has them all.
func Diff(ctx context.Context, a, b *Side, pool []byte, ops []Op, checkEvery, max int) Report {
	rep := Report{Errnos: map[OpKind]map[syscall.Errno]int{}}
	sides := [2]*side{{Side: a}, {Side: b}}
	diverge := func(d Divergence) {
		rep.Count++
		if len(rep.Divergences) < max {
			rep.Divergences = append(rep.Divergences, d)
		}
	}
	check := func(i int) {
		ma, okA := sides[0].areas()
		mb, okB := sides[1].areas()
		if !okA || !okB {
			return
		}
		rep.StateChecks++
		if !slices.Equal(ma, mb) {
			diverge(Divergence{Index: i, Op: Op{Kind: opState}, A: Result{Ranges: ma}, B: Result{Ranges: mb}})
		}
	}
	for i, o := range ops {
		ra := sides[0].apply(ctx, o, pool)
		rb := sides[1].apply(ctx, o, pool)
		rep.Ops++
		if rep.Errnos[o.Kind] == nil {
			rep.Errnos[o.Kind] = map[syscall.Errno]int{}
		}
		rep.Errnos[o.Kind][ra.Errno()]++
		if !ra.Same(rb) {
			diverge(Divergence{Index: i, Op: o, A: ra, B: rb})
		}
		if checkEvery > 0 && (i+1)%checkEvery == 0 {
			check(i)
		}
	}
	check(len(ops) - 1)
	return rep
}

// Side is one address space under Diff. Attachment, when set, is a device
// of it, which detach and attach operations take out and put back
// (attached devices narrow the usable ranges); Diff leaves the current
// one here, and whether it is Detached, for the next run.
type Side struct {
	Space      iommu.AddressSpace
	Attachment iommu.Attachment
	Detached   bool
	// Other is a second space of the same backend that copies go into.
	Other iommu.AddressSpace

	slots []nestSlot // what the nesting operations allocated
}

// side is one Side and the areas its results imply.
type side struct {
	*Side
	book  []iommu.Range // sorted
	stale bool
}

func (s *side) areas() ([]iommu.Range, bool) {
	if m, ok := s.Space.(Mapper); ok {
		return m.Mappings(), true
	}
	return slices.Clone(s.book), !s.stale
}

func (s *side) add(iova iommu.IOVA, n uint64) {
	s.book = append(s.book, iommu.Range{Start: iova, Last: iova + iommu.IOVA(n) - 1})
	slices.SortFunc(s.book, func(x, y iommu.Range) int {
		switch {
		case x.Start < y.Start:
			return -1
		case x.Start > y.Start:
			return 1
		}
		return 0
	})
}

// addCopy adds a copy of [src, src+n) at dst: one area for each source
// area it takes pages from, as iopt_get_pages hands iopt_map_pages one
// element per area.
func (s *side) addCopy(src iommu.IOVA, n uint64, dst iommu.IOVA) {
	last := src + iommu.IOVA(n) - 1
	var pieces []iommu.Range
	for _, a := range s.book {
		if a.Last < src || a.Start > last {
			continue
		}
		pieces = append(pieces, iommu.Range{Start: max(a.Start, src), Last: min(a.Last, last)})
	}
	for _, p := range pieces {
		s.add(dst+(p.Start-src), p.Len())
	}
}

// unmapBook removes the areas inside [start, last] in IOVA order up to
// the first one the range would cut, as iopt_unmap_iova_range does before
// it answers ENOENT.
func (s *side) unmapBook(start, last uint64) {
	for i := 0; i < len(s.book); {
		a := s.book[i]
		if uint64(a.Last) < start || uint64(a.Start) > last {
			i++
			continue
		}
		if uint64(a.Start) < start || uint64(a.Last) > last {
			return
		}
		s.book = slices.Delete(s.book, i, i+1)
	}
}

// Apply applies o to as alone, copying from as itself.
func Apply(ctx context.Context, as iommu.AddressSpace, pool []byte, o Op) Result {
	return (&side{Side: &Side{Space: as}}).apply(ctx, o, pool)
}

func (s *side) apply(ctx context.Context, o Op, pool []byte) Result {
	if !o.Other || (o.Kind != OpUnmapAll && o.Kind != OpCopy) {
		return s.applySelf(ctx, o, pool)
	}
	var r Result
	switch {
	case s.Other == nil:
		// a side without Other answers nothing
	case o.Kind == OpUnmapAll:
		r.N, r.Err = s.Other.Unmap(ctx, 0, math.MaxUint64)
	default:
		c, ok := s.Other.(iommu.Copier)
		if !ok {
			r.Err = iommu.ErrNotSupported
			break
		}
		r.IOVA, r.Err = c.Copy(ctx, s.Space, o.IOVA, o.Length, iommu.Mapping{IOVA: o.DstIOVA, Fixed: o.Fixed, Perm: o.Perm})
	}
	return r
}

// applySelf applies the operations on Space alone.
func (s *side) applySelf(ctx context.Context, o Op, pool []byte) Result {
	var r Result
	switch o.Kind {
	case OpMapFixed, OpMapChosen:
		m := iommu.Mapping{Mem: pool[o.MemOff : o.MemOff+o.MemLen], IOVA: o.IOVA, Fixed: o.Kind == OpMapFixed, Perm: o.Perm}
		r.IOVA, r.Err = s.Space.Map(ctx, m)
		if r.Err == nil {
			s.add(r.IOVA, o.MemLen)
		}
	case OpUnmap, OpUnmapAll:
		iova, n := o.IOVA, o.Length
		if o.Kind == OpUnmapAll {
			iova, n = 0, math.MaxUint64
		}
		r.N, r.Err = s.Space.Unmap(ctx, iova, n)
		switch {
		case r.Err == nil && o.Kind == OpUnmapAll:
			s.book, s.stale = nil, false
		case r.Err == nil || r.Errno() == syscall.ENOENT:
			s.unmapBook(uint64(iova), uint64(iova)+n-1)
		case r.Errno() != syscall.EINVAL && r.Errno() != syscall.EOVERFLOW:
			// EINVAL (length 0) and EOVERFLOW come before any
			// change (iopt_unmap_iova); anything else is unknown.
			s.stale = true
		}
	case OpRanges:
		r.Ranges, r.Alignment, r.Err = s.Space.Ranges(ctx)
	case OpCopy:
		c, ok := s.Space.(iommu.Copier)
		if !ok {
			r.Err = iommu.ErrNotSupported
			break
		}
		r.IOVA, r.Err = c.Copy(ctx, s.Space, o.IOVA, o.Length, iommu.Mapping{IOVA: o.DstIOVA, Fixed: o.Fixed, Perm: o.Perm})
		if r.Err == nil {
			s.addCopy(o.IOVA, o.Length, r.IOVA)
		}
	case OpAllow:
		al, ok := s.Space.(iommu.IOVAAllower)
		if !ok {
			r.Err = iommu.ErrNotSupported
			break
		}
		r.Err = al.AllowIOVAs(ctx, o.Allowed)
	case OpDetach:
		// Only a transition is applied; detaching a detached device
		// (or one the side does not have) answers nothing.
		if s.Attachment != nil && !s.Detached {
			r.Err = s.Attachment.Detach(ctx)
			s.Detached = r.Err == nil
		}
	case OpAttach:
		if s.Attachment != nil && s.Detached {
			var at iommu.Attachment
			if at, r.Err = s.Space.Attach(ctx, s.Attachment.Device()); r.Err == nil {
				s.Attachment, s.Detached = at, false
			}
		}
	default:
		if o.Nest != nil {
			r = s.applyNest(ctx, o)
		}
	}
	return r
}

// Regression is an operation list on which the emulator once diverged from
// the kernel, with the errnos the kernel answered (0 for success), so the
// emulator is held to them without a guest and the guest re-checks them.
type Regression struct {
	Name   string
	Ops    []Op
	Errnos []syscall.Errno
}

// Regressions returns the divergences found so far, oldest first.
func Regressions() []Regression {
	return []Regression{{
		// Differential seed 1, op 229 (Linux 6.12, QEMU VT-d):
		// iommufd_ioas_load_iovas refuses a list whose ranges overlap,
		// and a range with start >= last; the emulator took both.
		Name: "allow-iovas overlapping or one byte",
		Ops: []Op{
			{Kind: OpAllow, Allowed: []iommu.Range{{Start: 0x134000, Last: 0x13cfff}, {Start: 0x11d000, Last: 0x156fff}}},
			{Kind: OpAllow, Allowed: []iommu.Range{{Start: 0x200000, Last: 0x200000}}},
			{Kind: OpAllow, Allowed: []iommu.Range{{Start: 0x100000, Last: 0x1fffff}, {Start: 0x200000, Last: 0x2fffff}}},
			{Kind: OpAllow, Allowed: []iommu.Range{{Start: 0x100000, Last: 0x1fffff}, {Start: 0x1ff000, Last: 0x2fffff}}},
			{Kind: OpMapChosen, MemOff: 0, MemLen: 0x4000, Perm: iommu.Read},
			{Kind: OpUnmapAll},
			{Kind: OpAllow, Allowed: []iommu.Range{{Start: 0x200000, Last: 0x200001}}},
			{Kind: OpAllow},
		},
		Errnos: []syscall.Errno{syscall.EINVAL, syscall.EINVAL, 0, syscall.EINVAL, 0, 0, 0, 0},
	}}
}
