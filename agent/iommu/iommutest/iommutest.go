// Package iommutest is the conformance suite every iommu.Backend passes:
// the emulated one in plain go test, cdev and type1 in the guest with edu
// as the DMA device. It is shaped like golang.org/x/net/nettest.TestConn:
// the caller supplies a constructor, every case gets a fresh Target, and
// cases run as subtests.
//
// Expectations are the kernel's (iommufd.h, vfio_iommu_type1.c). Where the
// kernel's paths differ, the case asks Backend.Flavour():
//
//	                         iommufd        type1v2       compat
//	unmap of nothing         ENOENT         0 bytes       0 bytes
//	unmap cutting a mapping  ENOENT         EINVAL        ENOENT
//
// Errors are matched with errors.Is on both the sentinel and the errno,
// never on message text.
package iommutest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// Target is one backend with the devices and memory a case needs.
type Target struct {
	Backend iommu.Backend
	// Devices may be attached by the cases; at least one. The memlock
	// case needs two to show shared and separate address spaces.
	Devices []iommu.Device
	// Alloc returns size bytes a device may reach: memfd memory for the
	// kernel backends, anything for the emulated one. It is released when
	// the test ends.
	Alloc func(t *testing.T, size int) []byte
	// DMA returns the DMA engine of an attached device, nil when the
	// target has none.
	DMA func(t *testing.T, a iommu.Attachment) DMAEngine
	// Pinned is the bytes this process has charged against its memlock
	// limit: VmPin for iommufd, VmLck for type1, a counter for emulated.
	Pinned func() uint64

	// Optional.

	// DMALimit is the first IOVA the DMA engine cannot reach (edu masks
	// addresses to 28 bits); 0 means no limit.
	DMALimit uint64
	// Reserved are windows the IOMMU keeps out of Ranges once a device is
	// attached, such as the x86 MSI window 0xfee00000-0xfeefffff.
	Reserved []iommu.Range
}

// DMAEngine moves data between host memory (by IOVA) and a device-side
// buffer of at least one page: the method set of hwtests/edu.Device.
type DMAEngine interface {
	ReadFromRAM(iova uint64, off, n int) error
	WriteToRAM(iova uint64, off, n int) error
}

// dmaSize is what one DMA moves: edu's whole buffer.
const dmaSize = 4096

// Run runs every case over fresh targets from newTarget. Cases run one
// after another: Pinned is process-wide on the kernel backends. Callers
// may run several Run calls in parallel when their Pinned are separate.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, tg Target)
	}{
		{"DMARoundTrip", testDMARoundTrip},
		{"FixedAndChosenIOVA", testFixedAndChosenIOVA},
		{"Alignment", testAlignment},
		{"Overlap", testOverlap},
		{"PartialUnmap", testPartialUnmap},
		{"UnmapAll", testUnmapAll},
		{"UnmapNothing", testUnmapNothing},
		{"Ranges", testRanges},
		{"AllowIOVAs", testAllowIOVAs},
		{"Copy", testCopy},
		{"MemlockAccounting", testMemlock},
		{"Concurrent", testConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, target(t, newTarget))
		})
	}
	t.Run("CloseReleases", func(t *testing.T) {
		testCloseReleases(t, target(t, newTarget), newTarget)
	})
}

// target builds a Target, checks it is usable and closes its backend when
// the test ends.
func target(t *testing.T, newTarget func(t *testing.T) Target) Target {
	t.Helper()
	tg := newTarget(t)
	if tg.Backend == nil || len(tg.Devices) == 0 || tg.Alloc == nil || tg.Pinned == nil {
		t.Fatalf("incomplete target: backend %v, %d devices, Alloc set %t, Pinned set %t",
			tg.Backend, len(tg.Devices), tg.Alloc != nil, tg.Pinned != nil)
	}
	t.Cleanup(func() {
		if err := tg.Backend.Close(); err != nil {
			t.Errorf("close backend: %v", err)
		}
	})
	return tg
}

// want is an expected outcome: success when sentinel is nil.
type want struct {
	sentinel error
	errno    syscall.Errno
}

var ok = want{}

func (w want) String() string {
	if w.sentinel == nil {
		return "success"
	}
	return fmt.Sprintf("%v (%v)", w.sentinel, w.errno.Error())
}

func (w want) match(err error) bool {
	if w.sentinel == nil {
		return err == nil
	}
	return errors.Is(err, w.sentinel) && errors.Is(err, w.errno)
}

var (
	errInvalid  = want{iommu.ErrInvalid, syscall.EINVAL}
	errExists   = want{iommu.ErrExists, syscall.EEXIST}
	errNotFound = want{iommu.ErrNotFound, syscall.ENOENT}
	errNoSpace  = want{iommu.ErrNoSpace, syscall.ENOSPC}
)

// flavourWants are the outcomes that differ between the kernel's paths.
type flavourWants struct {
	// unmapNothing: IOMMU_IOAS_UNMAP fails (iopt_unmap_iova_range finds
	// no area); type1 reports 0 bytes (vfio_dma_do_unmap). The compat
	// container answered ENOENT until upstream afb47765f923 "iommufd: Make
	// vfio_compats unmap succeed if the range is already empty" (6.18,
	// in 6.12-stable since November 2025), which gave it type1's 0 bytes.
	unmapNothing want
	// unmapCut: bisecting a mapping (rows 22, 46).
	unmapCut want
}

func wantsFor(t *testing.T, f iommu.Flavour) flavourWants {
	t.Helper()
	switch f {
	case iommu.IOMMUFD:
		return flavourWants{unmapNothing: errNotFound, unmapCut: errNotFound}
	case iommu.Type1v2:
		return flavourWants{unmapNothing: ok, unmapCut: errInvalid}
	case iommu.Compat:
		return flavourWants{unmapNothing: ok, unmapCut: errNotFound}
	}
	t.Fatalf("unknown flavour %q", f)
	return flavourWants{}
}

// space is an address space with Devices[0] attached, and what it reports.
type space struct {
	as     iommu.AddressSpace
	att    iommu.Attachment
	ranges []iommu.Range
	align  uint64
	unit   uint64 // the mapping granule: alignment, at least a CPU page
}

func newSpace(t *testing.T, tg Target) iommu.AddressSpace {
	t.Helper()
	as, err := tg.Backend.NewAddressSpace(context.Background())
	if err != nil {
		t.Fatalf("NewAddressSpace: %v", err)
	}
	t.Cleanup(func() {
		if err := as.Close(); err != nil {
			t.Errorf("close address space: %v", err)
		}
	})
	return as
}

func attach(t *testing.T, as iommu.AddressSpace, dev iommu.Device) iommu.Attachment {
	t.Helper()
	a, err := as.Attach(context.Background(), dev)
	if err != nil {
		t.Fatalf("Attach %s: %v", dev.BDF, err)
	}
	// Backends may fill in what they learn (the cdev path); the function
	// itself must not change.
	if got := a.Device(); got.BDF != dev.BDF || got.Group != dev.Group {
		t.Errorf("attachment reports device %+v, want %+v", got, dev)
	}
	return a
}

func attached(t *testing.T, tg Target, dev iommu.Device) *space {
	t.Helper()
	as := newSpace(t, tg)
	s := &space{as: as, att: attach(t, as, dev)}
	s.ranges, s.align = ranges(t, as)
	if s.align < 2 {
		t.Fatalf("alignment %d with a device attached: the IOMMU's page size is missing", s.align)
	}
	s.unit = max(s.align, uint64(os.Getpagesize()))
	return s
}

func ranges(t *testing.T, as iommu.AddressSpace) ([]iommu.Range, uint64) {
	t.Helper()
	rs, align, err := as.Ranges(context.Background())
	if err != nil {
		t.Fatalf("Ranges: %v", err)
	}
	if len(rs) == 0 {
		t.Fatal("Ranges reports no usable IOVA")
	}
	if align == 0 || align&(align-1) != 0 {
		t.Fatalf("alignment %#x is not a power of two", align)
	}
	for i, r := range rs {
		if r.Last < r.Start || i > 0 && r.Start <= rs[i-1].Last {
			t.Fatalf("ranges %v are not sorted and disjoint", rs)
		}
	}
	return rs, align
}

// window returns an aligned IOVA w with [w, w+size) inside one range,
// at or above 1 MiB and within the DMA engine's reach, for cases to place
// fixed mappings in.
func (s *space) window(t *testing.T, tg Target, size uint64) iommu.IOVA {
	t.Helper()
	// 1 MiB alignment first, so chosen maps inside the window can get
	// the natural alignment the kernel gives them (row 17).
	for _, a := range []uint64{max(1<<20, s.unit), s.unit} {
		for _, r := range s.ranges {
			w := alignUp(max(uint64(r.Start), 1<<20), a)
			if w < uint64(r.Start) || !r.Contains(iommu.IOVA(w), size) {
				continue
			}
			if tg.DMALimit != 0 && w+size > tg.DMALimit {
				continue
			}
			return iommu.IOVA(w)
		}
	}
	t.Fatalf("no %#x-byte window in %v below %#x", size, s.ranges, tg.DMALimit)
	return 0
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

func (s *space) mapFixed(t *testing.T, mem []byte, iova iommu.IOVA) {
	t.Helper()
	got, err := s.as.Map(context.Background(), iommu.Mapping{Mem: mem, IOVA: iova, Fixed: true, Perm: iommu.Read | iommu.Write})
	if err != nil || got != iova {
		t.Fatalf("Map %#x bytes at fixed %#x = %#x, %v", len(mem), uint64(iova), uint64(got), err)
	}
}

func (s *space) unmap(t *testing.T, iova iommu.IOVA, length, wantN uint64) {
	t.Helper()
	n, err := s.as.Unmap(context.Background(), iova, length)
	if err != nil || n != wantN {
		t.Fatalf("Unmap(%#x, %#x) = %#x, %v; want %#x bytes", uint64(iova), length, n, err, wantN)
	}
}

// expect checks err against w, naming op in the failure.
func expect(t *testing.T, op string, err error, w want) {
	t.Helper()
	if !w.match(err) {
		t.Errorf("%s: got %v, want %v", op, err, w)
	}
}

func checkPinned(t *testing.T, tg Target, what string, base, delta uint64) {
	t.Helper()
	if got := tg.Pinned(); got != base+delta {
		t.Errorf("%s: pinned %d bytes, want %d (baseline %d + %d)", what, got, base+delta, base, delta)
	}
}

// roundTrip has the device read a random page at src and write it back at
// dst, and checks every byte arrived in dstMem.
func roundTrip(t *testing.T, e DMAEngine, srcMem, dstMem []byte, src, dst iommu.IOVA) {
	t.Helper()
	want := make([]byte, dmaSize)
	for i := range want {
		want[i] = byte(rand.Uint32())
	}
	copy(srcMem, want)
	clear(dstMem[:dmaSize])
	if err := e.ReadFromRAM(uint64(src), 0, dmaSize); err != nil {
		t.Fatalf("DMA read from %#x: %v", uint64(src), err)
	}
	if err := e.WriteToRAM(uint64(dst), 0, dmaSize); err != nil {
		t.Fatalf("DMA write to %#x: %v", uint64(dst), err)
	}
	if got := dstMem[:dmaSize]; !bytes.Equal(got, want) {
		bad, first := 0, -1
		for i := range got {
			if got[i] != want[i] {
				bad++
				if first < 0 {
					first = i
				}
			}
		}
		t.Fatalf("DMA round trip %#x -> %#x: %d bytes differ, first at %d (%#x, want %#x)",
			uint64(src), uint64(dst), bad, first, got[first], want[first])
	}
}

func dmaEngine(t *testing.T, tg Target, a iommu.Attachment) DMAEngine {
	t.Helper()
	if tg.DMA == nil {
		return nil
	}
	return tg.DMA(t, a)
}

func testDMARoundTrip(t *testing.T, tg Target) {
	s := attached(t, tg, tg.Devices[0])
	e := dmaEngine(t, tg, s.att)
	if e == nil {
		t.Skip("the target has no DMA device")
	}
	u := s.unit
	iova := s.window(t, tg, 2*u)
	mem := tg.Alloc(t, int(2*u))
	s.mapFixed(t, mem, iova)
	roundTrip(t, e, mem[:u], mem[u:], iova, iova+iommu.IOVA(u))
	s.unmap(t, iova, 2*u, 2*u)

	// Unmapped, the memory is out of the device's reach.
	for i := range mem {
		mem[i] = 0x5a
	}
	err := e.WriteToRAM(uint64(iova+iommu.IOVA(u)), 0, dmaSize)
	if !bytes.Equal(mem, bytes.Repeat([]byte{0x5a}, len(mem))) {
		t.Fatalf("a DMA write to unmapped %#x changed the memory (engine said %v)", uint64(iova)+u, err)
	}
}

func testFixedAndChosenIOVA(t *testing.T, tg Target) {
	ctx := context.Background()
	s := attached(t, tg, tg.Devices[0])
	u := s.unit
	fixed := s.window(t, tg, 2*u)
	mem := tg.Alloc(t, int(6*u))
	s.mapFixed(t, mem[:2*u], fixed)

	// Without Fixed, IOVA is ignored: the occupied one must not be used.
	var chosen []iommu.IOVA
	for i := range 2 {
		m := mem[(2+2*i)*int(u) : (4+2*i)*int(u)]
		iova, err := s.as.Map(ctx, iommu.Mapping{Mem: m, IOVA: fixed, Perm: iommu.Read | iommu.Write})
		if err != nil {
			t.Fatalf("Map %#x bytes at a chosen IOVA: %v", len(m), err)
		}
		if uint64(iova)%s.align != 0 || !inRanges(s.ranges, iova, 2*u) {
			t.Errorf("chosen IOVA %#x is misaligned (%#x) or outside %v", uint64(iova), s.align, s.ranges)
		}
		for _, other := range append([]iommu.IOVA{fixed}, chosen...) {
			if overlaps(iova, other, 2*u) {
				t.Errorf("chosen IOVA %#x overlaps the mapping at %#x", uint64(iova), uint64(other))
			}
		}
		chosen = append(chosen, iova)
	}
	if e := dmaEngine(t, tg, s.att); e != nil {
		roundTrip(t, e, mem[:u], mem[u:], fixed, fixed+iommu.IOVA(u))
		iova := chosen[0]
		if tg.DMALimit == 0 || uint64(iova)+2*u <= tg.DMALimit {
			roundTrip(t, e, mem[2*u:3*u], mem[3*u:], iova, iova+iommu.IOVA(u))
		} else {
			t.Logf("chosen IOVA %#x is beyond the DMA engine's reach %#x: no DMA through it", uint64(iova), tg.DMALimit)
		}
	}
	for _, iova := range append(chosen, fixed) {
		s.unmap(t, iova, 2*u, 2*u)
	}
}

func inRanges(rs []iommu.Range, iova iommu.IOVA, length uint64) bool {
	for _, r := range rs {
		if r.Contains(iova, length) {
			return true
		}
	}
	return false
}

func overlaps(a, b iommu.IOVA, length uint64) bool {
	return uint64(a) < uint64(b)+length && uint64(b) < uint64(a)+length
}

// testAlignment: IOVA and length must be multiples of the alignment
// (iopt_map_pages and vfio_dma_do_map both say EINVAL).
func testAlignment(t *testing.T, tg Target) {
	ctx := context.Background()
	s := attached(t, tg, tg.Devices[0])
	u := s.unit
	iova := s.window(t, tg, 2*u)
	mem := tg.Alloc(t, int(2*u))
	rw := iommu.Read | iommu.Write
	half := iommu.IOVA(s.align / 2)

	_, err := s.as.Map(ctx, iommu.Mapping{Mem: mem[:u], IOVA: iova + half, Fixed: true, Perm: rw})
	expect(t, "Map at a misaligned IOVA", err, errInvalid)
	_, err = s.as.Map(ctx, iommu.Mapping{Mem: mem[:u+s.align/2], IOVA: iova, Fixed: true, Perm: rw})
	expect(t, "Map of a misaligned length", err, errInvalid)
	_, err = s.as.Map(ctx, iommu.Mapping{Mem: mem[:u+s.align/2], Perm: rw})
	expect(t, "Map of a misaligned length at a chosen IOVA", err, errInvalid)
	_, err = s.as.Map(ctx, iommu.Mapping{Mem: mem[:0], IOVA: iova, Fixed: true, Perm: rw})
	expect(t, "Map of nothing", err, errInvalid)

	// Nothing was left behind: the aligned map fits where they failed.
	s.mapFixed(t, mem, iova)
	s.unmap(t, iova, 2*u, 2*u)
}

// testOverlap: a fixed map over any part of an existing one is EEXIST.
func testOverlap(t *testing.T, tg Target) {
	ctx := context.Background()
	s := attached(t, tg, tg.Devices[0])
	u := s.unit
	base := s.window(t, tg, 6*u) + iommu.IOVA(u) // room for a page each side
	mem := tg.Alloc(t, int(6*u))
	s.mapFixed(t, mem[:4*u], base)
	for _, c := range []struct {
		name  string
		start iommu.IOVA
		pages uint64
	}{
		{"same", base, 4},
		{"inside", base + iommu.IOVA(u), 1},
		{"head", base - iommu.IOVA(u), 2},
		{"tail", base + iommu.IOVA(3*u), 2},
		{"around", base - iommu.IOVA(u), 6},
	} {
		_, err := s.as.Map(ctx, iommu.Mapping{Mem: mem[:c.pages*u], IOVA: c.start, Fixed: true, Perm: iommu.Read})
		expect(t, fmt.Sprintf("Map over the mapping (%s, %#x+%#x)", c.name, uint64(c.start), c.pages*u), err, errExists)
	}
	s.unmap(t, base, 4*u, 4*u)
}

// testPartialUnmap: an unmap that would cut a mapping fails and leaves it
// whole; one over whole mappings with holes between succeeds (rows 22,
// 23, 46).
func testPartialUnmap(t *testing.T, tg Target) {
	ctx := context.Background()
	fw := wantsFor(t, tg.Backend.Flavour())
	s := attached(t, tg, tg.Devices[0])
	u := s.unit
	w := s.window(t, tg, 8*u)
	mem := tg.Alloc(t, int(4*u))
	a, b := w+iommu.IOVA(u), w+iommu.IOVA(5*u) // two 2-page mappings, a hole between
	s.mapFixed(t, mem[:2*u], a)
	s.mapFixed(t, mem[2*u:], b)
	for _, c := range []struct {
		name   string
		iova   iommu.IOVA
		length uint64
	}{
		{"head", a, u},
		{"tail", a + iommu.IOVA(u), u},
		{"across the start", a - iommu.IOVA(u), 2 * u},
		{"across the end", a + iommu.IOVA(u), 2 * u},
	} {
		n, err := s.as.Unmap(ctx, c.iova, c.length)
		expect(t, fmt.Sprintf("Unmap cutting a mapping (%s, %#x+%#x) on %s", c.name, uint64(c.iova), c.length, tg.Backend.Flavour()), err, fw.unmapCut)
		if n != 0 {
			t.Errorf("Unmap cutting a mapping (%s) reports %#x bytes", c.name, n)
		}
	}
	// Both whole, with the hole and margins around them: the sum.
	s.unmap(t, w, 8*u, 4*u)
}

// testUnmapAll: Unmap(0, MaxUint64) removes every mapping and releases the
// pins, and succeeds on an empty space too (row 24; type1 UNMAP_FLAG_ALL).
func testUnmapAll(t *testing.T, tg Target) {
	s := attached(t, tg, tg.Devices[0])
	base := tg.Pinned()
	u := s.unit
	w := s.window(t, tg, 8*u)
	mem := tg.Alloc(t, int(4*u))
	s.mapFixed(t, mem[:u], w)
	s.mapFixed(t, mem[u:3*u], w+iommu.IOVA(2*u))
	s.mapFixed(t, mem[3*u:], w+iommu.IOVA(7*u))
	checkPinned(t, tg, "after three maps", base, 4*u)
	s.unmap(t, 0, math.MaxUint64, 4*u)
	checkPinned(t, tg, "after unmapping all", base, 0)
	s.unmap(t, 0, math.MaxUint64, 0)
	s.mapFixed(t, mem, w)
	s.unmap(t, w, 4*u, 4*u)
}

// testUnmapNothing: unmapping where nothing is mapped (rows 21, 47).
func testUnmapNothing(t *testing.T, tg Target) {
	ctx := context.Background()
	fw := wantsFor(t, tg.Backend.Flavour())
	s := attached(t, tg, tg.Devices[0])
	u := s.unit
	w := s.window(t, tg, 4*u)
	n, err := s.as.Unmap(ctx, w, u)
	expect(t, fmt.Sprintf("Unmap of an empty space on %s", tg.Backend.Flavour()), err, fw.unmapNothing)
	if n != 0 {
		t.Errorf("Unmap of an empty space reports %#x bytes", n)
	}
	mem := tg.Alloc(t, int(u))
	s.mapFixed(t, mem, w)
	n, err = s.as.Unmap(ctx, w+iommu.IOVA(2*u), 2*u)
	expect(t, fmt.Sprintf("Unmap of a hole on %s", tg.Backend.Flavour()), err, fw.unmapNothing)
	if n != 0 {
		t.Errorf("Unmap of a hole reports %#x bytes", n)
	}
	s.unmap(t, w, u, u)
}

// testRanges: attached devices take their reserved windows out of the
// ranges, and a fixed map outside the ranges is EINVAL (rows 16, 28, 43).
func testRanges(t *testing.T, tg Target) {
	ctx := context.Background()
	s := attached(t, tg, tg.Devices[0])
	u := s.unit
	for _, res := range tg.Reserved {
		for _, r := range s.ranges {
			if r.Start <= res.Last && res.Start <= r.Last {
				t.Errorf("range %v overlaps the reserved window %v", r, res)
			}
		}
	}
	mem := tg.Alloc(t, int(2*u))
	try := func(what string, iova iommu.IOVA, length uint64) {
		t.Helper()
		_, err := s.as.Map(ctx, iommu.Mapping{Mem: mem[:length], IOVA: iova, Fixed: true, Perm: iommu.Read | iommu.Write})
		expect(t, fmt.Sprintf("Map %s (%#x+%#x)", what, uint64(iova), length), err, errInvalid)
	}
	for _, res := range tg.Reserved {
		if start := alignUp(uint64(res.Start), u); start+u-1 <= uint64(res.Last) {
			try("inside reserved window "+res.String(), iommu.IOVA(start), u)
		}
	}
	for i, r := range s.ranges {
		if uint64(r.Last) > math.MaxUint64-2*u {
			continue // the top of the address space: overflow, not range
		}
		end := iommu.IOVA(alignUp(uint64(r.Last)+1, u))
		try("across the end of range "+r.String(), end-iommu.IOVA(u), 2*u)
		if i+1 == len(s.ranges) {
			try("beyond the last range "+r.String(), end, u)
		}
	}
	// The bounds themselves are usable.
	first := s.ranges[0]
	if start := alignUp(max(uint64(first.Start), uint64(u)), u); first.Contains(iommu.IOVA(start), u) {
		s.mapFixed(t, mem[:u], iommu.IOVA(start))
		s.unmap(t, iommu.IOVA(start), u, u)
	}
	// Detach is idempotent.
	if err := s.att.Detach(ctx); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if err := s.att.Detach(ctx); err != nil {
		t.Errorf("second Detach: %v", err)
	}
}

// testAllowIOVAs: IOMMU_IOAS_ALLOW_IOVAS (rows 17, 29-31).
func testAllowIOVAs(t *testing.T, tg Target) {
	ctx := context.Background()
	probe := newSpace(t, tg)
	if _, ok := probe.(iommu.IOVAAllower); !ok {
		t.Skipf("the %s backend's address space does not implement iommu.IOVAAllower (ALLOW_IOVAS is iommufd's)", tg.Backend.Flavour())
	}
	s := attached(t, tg, tg.Devices[0])
	al := s.as.(iommu.IOVAAllower)
	u := s.unit
	w := s.window(t, tg, 4*u)
	mem := tg.Alloc(t, int(6*u))

	t.Run("ChosenInside", func(t *testing.T) {
		if err := al.AllowIOVAs(ctx, []iommu.Range{{Start: w, Last: w + iommu.IOVA(4*u) - 1}}); err != nil {
			t.Fatalf("AllowIOVAs(%#x+%#x): %v", uint64(w), 4*u, err)
		}
		var got []iommu.IOVA
		for i := range 2 {
			iova, err := s.as.Map(ctx, iommu.Mapping{Mem: mem[2*i*int(u) : 2*(i+1)*int(u)], Perm: iommu.Read})
			if err != nil {
				t.Fatalf("chosen Map %d inside the allowed range: %v", i, err)
			}
			if iova < w || uint64(iova)+2*u > uint64(w)+4*u {
				t.Errorf("chosen IOVA %#x outside the allowed %#x+%#x", uint64(iova), uint64(w), 4*u)
			}
			got = append(got, iova)
		}
		_, err := s.as.Map(ctx, iommu.Mapping{Mem: mem[4*u:], Perm: iommu.Read})
		expect(t, "chosen Map with the allowed range full", err, errNoSpace)
		// Cleared, the whole ranges are open to chosen maps again.
		if err := al.AllowIOVAs(ctx, nil); err != nil {
			t.Fatalf("AllowIOVAs(nil): %v", err)
		}
		iova, err := s.as.Map(ctx, iommu.Mapping{Mem: mem[4*u:], Perm: iommu.Read})
		if err != nil {
			t.Fatalf("chosen Map after clearing the allowed list: %v", err)
		}
		for _, iova := range append(got, iova) {
			s.unmap(t, iova, 2*u, 2*u)
		}
	})

	t.Run("ReservedConflict", func(t *testing.T) {
		if len(tg.Reserved) == 0 {
			t.Skip("the target names no reserved window")
		}
		res := tg.Reserved[0]
		err := al.AllowIOVAs(ctx, []iommu.Range{res})
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("AllowIOVAs over reserved %v: got %v, want EADDRINUSE", res, err)
		}
		// An attach that would take an allowed range away fails.
		other := newSpace(t, tg)
		if err := other.(iommu.IOVAAllower).AllowIOVAs(ctx, []iommu.Range{res}); err != nil {
			t.Fatalf("AllowIOVAs(%v) with no device attached: %v", res, err)
		}
		if err := s.att.Detach(ctx); err != nil {
			t.Fatalf("Detach: %v", err)
		}
		if a, err := other.Attach(ctx, tg.Devices[0]); !errors.Is(err, syscall.EADDRINUSE) {
			if err == nil {
				a.Detach(ctx)
			}
			t.Errorf("Attach under an allowed range over reserved %v: got %v, want EADDRINUSE", res, err)
		}
		// The device is free for its first space again.
		s.att = attach(t, s.as, tg.Devices[0])
	})
}

// testCopy: IOMMU_IOAS_COPY maps what another space maps without pinning
// the pages again (rows 32, 50).
func testCopy(t *testing.T, tg Target) {
	ctx := context.Background()
	src := attached(t, tg, tg.Devices[0])
	dst := newSpace(t, tg)
	cp, ok := dst.(iommu.Copier)
	if !ok {
		t.Skipf("the %s backend's address space does not implement iommu.Copier (IOAS_COPY is iommufd's)", tg.Backend.Flavour())
	}
	if len(tg.Devices) > 1 {
		// With a domain on both sides the shared pages must still be
		// charged once.
		attach(t, dst, tg.Devices[1])
	}
	base := tg.Pinned()
	u := src.unit
	x := src.window(t, tg, 4*u)
	y := x + iommu.IOVA(2*u) // distinct from x, so a mix-up shows
	mem := tg.Alloc(t, int(2*u))
	src.mapFixed(t, mem, x)
	checkPinned(t, tg, "after the source map", base, 2*u)

	rw := iommu.Read | iommu.Write
	got, err := cp.Copy(ctx, src.as, x, 2*u, iommu.Mapping{IOVA: y, Fixed: true, Perm: rw})
	if err != nil || got != y {
		t.Fatalf("Copy %#x+%#x to fixed %#x = %#x, %v", uint64(x), 2*u, uint64(y), uint64(got), err)
	}
	checkPinned(t, tg, "after the copy", base, 2*u)

	_, err = cp.Copy(ctx, src.as, x, 2*u, iommu.Mapping{IOVA: y + iommu.IOVA(u), Fixed: true, Perm: rw})
	expect(t, "Copy over the copy", err, errExists)
	_, err = cp.Copy(ctx, src.as, x+iommu.IOVA(2*u), u, iommu.Mapping{Perm: rw})
	expect(t, "Copy of unmapped source", err, errNotFound)
	_, err = cp.Copy(ctx, src.as, x, 3*u, iommu.Mapping{Perm: rw})
	expect(t, "Copy of a source running past its mapping", err, errNotFound)
	sub, err := cp.Copy(ctx, src.as, x+iommu.IOVA(u), u, iommu.Mapping{Perm: rw})
	if err != nil {
		t.Fatalf("Copy of the second page of the source: %v", err)
	}
	dstS := &space{as: dst, unit: u}
	dstS.unmap(t, sub, u, u)

	// Move the device to the copy and drop the source: the copy alone
	// keeps the memory mapped and pinned.
	if err := src.att.Detach(ctx); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	att := attach(t, dst, tg.Devices[0])
	src.unmap(t, x, 2*u, 2*u)
	checkPinned(t, tg, "with only the copy mapped", base, 2*u)
	if e := dmaEngine(t, tg, att); e != nil {
		roundTrip(t, e, mem[:u], mem[u:], y, y+iommu.IOVA(u))
	}
	dstS.unmap(t, y, 2*u, 2*u)
	checkPinned(t, tg, "after unmapping the copy", base, 0)
}

// testMemlock: what the memlock limit is charged. The seed's complaint:
// the same pages mapped into two address spaces (two type1 containers, or
// two IOASes) are charged twice; one address space shared by two devices
// charges them once.
func testMemlock(t *testing.T, tg Target) {
	t.Run("OneDevice", func(t *testing.T) {
		s := attached(t, tg, tg.Devices[0])
		base := tg.Pinned()
		u := s.unit
		w := s.window(t, tg, 4*u)
		mem := tg.Alloc(t, int(4*u))
		s.mapFixed(t, mem, w)
		checkPinned(t, tg, "after a map", base, 4*u)
		s.unmap(t, w, 4*u, 4*u)
		checkPinned(t, tg, "after the unmap", base, 0)
	})
	two := func(t *testing.T) {
		if len(tg.Devices) < 2 {
			t.Skipf("needs two devices, the target has %d", len(tg.Devices))
		}
	}
	t.Run("SharedSpace", func(t *testing.T) {
		two(t)
		s := attached(t, tg, tg.Devices[0])
		attach(t, s.as, tg.Devices[1])
		base := tg.Pinned()
		u := s.unit
		w := s.window(t, tg, 4*u)
		mem := tg.Alloc(t, int(4*u))
		s.mapFixed(t, mem, w)
		checkPinned(t, tg, "one space, two devices", base, 4*u)
		s.unmap(t, w, 4*u, 4*u)
		checkPinned(t, tg, "after the unmap", base, 0)
	})
	t.Run("SeparateSpaces", func(t *testing.T) {
		two(t)
		s0 := attached(t, tg, tg.Devices[0])
		s1 := attached(t, tg, tg.Devices[1])
		base := tg.Pinned()
		u := max(s0.unit, s1.unit)
		w := s0.window(t, tg, 4*u)
		mem := tg.Alloc(t, int(4*u))
		s0.mapFixed(t, mem, w)
		s1.mapFixed(t, mem, w)
		checkPinned(t, tg, "the same pages in two spaces", base, 8*u)
		s0.unmap(t, w, 4*u, 4*u)
		checkPinned(t, tg, "after unmapping one", base, 4*u)
		s1.unmap(t, w, 4*u, 4*u)
		checkPinned(t, tg, "after unmapping both", base, 0)
	})
}

// testCloseReleases: closing an address space or the backend releases
// every mapping and pin, and the device can be attached again (row 12).
func testCloseReleases(t *testing.T, tg Target, newTarget func(t *testing.T) Target) {
	ctx := context.Background()
	base := tg.Pinned()
	s := attached(t, tg, tg.Devices[0])
	u := s.unit
	w := s.window(t, tg, 2*u)
	mem := tg.Alloc(t, int(2*u))
	s.mapFixed(t, mem, w)
	checkPinned(t, tg, "mapped", base, 2*u)
	if err := s.as.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkPinned(t, tg, "after closing the address space", base, 0)
	if err := s.as.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err := s.as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: w, Fixed: true, Perm: iommu.Read})
	if !errors.Is(err, iommu.ErrClosed) {
		t.Errorf("Map on a closed address space: got %v, want ErrClosed", err)
	}
	if err := s.att.Detach(ctx); err != nil {
		t.Errorf("Detach after Close: %v", err)
	}

	// The device is free again; then the backend's Close releases it all.
	s2 := attached(t, tg, tg.Devices[0])
	s2.mapFixed(t, mem, w)
	if e := dmaEngine(t, tg, s2.att); e != nil {
		roundTrip(t, e, mem[:u], mem[u:], w, w+iommu.IOVA(u))
	}
	checkPinned(t, tg, "mapped again", base, 2*u)
	if err := tg.Backend.Close(); err != nil {
		t.Fatalf("close backend: %v", err)
	}
	checkPinned(t, tg, "after closing the backend", base, 0)
	if err := tg.Backend.Close(); err != nil {
		t.Errorf("second backend Close: %v", err)
	}
	_, err = s2.as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: w, Fixed: true, Perm: iommu.Read})
	if !errors.Is(err, iommu.ErrClosed) {
		t.Errorf("Map after the backend closed: got %v, want ErrClosed", err)
	}

	// A new backend gets the device: the old one let go of it.
	tg2 := target(t, newTarget)
	s3 := attached(t, tg2, tg2.Devices[0])
	s3.mapFixed(t, mem, w)
	if e := dmaEngine(t, tg2, s3.att); e != nil {
		roundTrip(t, e, mem[:u], mem[u:], w, w+iommu.IOVA(u))
	}
	s3.unmap(t, w, 2*u, 2*u)
}

// testConcurrent: Map, Unmap and Ranges from several goroutines at once;
// run it under -race. Fixed and chosen maps run in separate phases, so a
// chosen IOVA cannot take a worker's fixed slot. Goroutines racing for one
// IOVA: exactly one wins.
func testConcurrent(t *testing.T, tg Target) {
	ctx := context.Background()
	s := attached(t, tg, tg.Devices[0])
	base := tg.Pinned()
	u := s.unit
	const workers, rounds = 4, 50
	w := s.window(t, tg, (workers+1)*2*u)
	mems := make([][]byte, workers)
	for i := range mems {
		mems[i] = tg.Alloc(t, int(2*u))
	}
	phase := func(work func(i int) error) {
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				if err := work(i); err != nil {
					t.Errorf("worker %d: %v", i, err)
				}
			})
		}
		wg.Wait()
	}
	phase(func(i int) error {
		mine := w + iommu.IOVA(uint64(i)*2*u)
		for r := range rounds {
			if _, err := s.as.Map(ctx, iommu.Mapping{Mem: mems[i], IOVA: mine, Fixed: true, Perm: iommu.Read | iommu.Write}); err != nil {
				return fmt.Errorf("round %d: Map at %#x: %w", r, uint64(mine), err)
			}
			if _, _, err := s.as.Ranges(ctx); err != nil {
				return fmt.Errorf("round %d: Ranges: %w", r, err)
			}
			if n, err := s.as.Unmap(ctx, mine, 2*u); err != nil || n != 2*u {
				return fmt.Errorf("round %d: Unmap(%#x) = %#x, %v", r, uint64(mine), n, err)
			}
		}
		return nil
	})
	phase(func(i int) error {
		for r := range rounds {
			iova, err := s.as.Map(ctx, iommu.Mapping{Mem: mems[i], Perm: iommu.Read})
			if err != nil {
				return fmt.Errorf("round %d: chosen Map: %w", r, err)
			}
			if n, err := s.as.Unmap(ctx, iova, 2*u); err != nil || n != 2*u {
				return fmt.Errorf("round %d: Unmap(chosen %#x) = %#x, %v", r, uint64(iova), n, err)
			}
		}
		return nil
	})
	contested := w + iommu.IOVA(workers*2*u)
	var (
		mu   sync.Mutex
		wins int
	)
	phase(func(i int) error {
		_, err := s.as.Map(ctx, iommu.Mapping{Mem: mems[i], IOVA: contested, Fixed: true, Perm: iommu.Read})
		switch {
		case err == nil:
			mu.Lock()
			wins++
			mu.Unlock()
		case !errExists.match(err):
			return fmt.Errorf("contested Map: got %v, want success or %v", err, errExists)
		}
		return nil
	})
	if wins != 1 {
		t.Errorf("%d goroutines mapped the contested IOVA, want 1", wins)
	}
	checkPinned(t, tg, "with the contested mapping", base, 2*u)
	s.unmap(t, 0, math.MaxUint64, 2*u)
	checkPinned(t, tg, "after the concurrent run", base, 0)
}
