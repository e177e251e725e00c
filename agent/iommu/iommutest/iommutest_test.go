package iommutest_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/iommutest"
)

// TestSuiteOnFake runs the suite over a small in-test backend with the
// kernel's semantics for what the suite checks, so the suite itself is
// tested before the real backends exist. It is not the emulator: no page
// tables, one lock, a linear scan.
func TestSuiteOnFake(t *testing.T) {
	for _, f := range []iommu.Flavour{iommu.IOMMUFD, iommu.Type1v2, iommu.Compat} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			iommutest.Run(t, func(t *testing.T) iommutest.Target { return fakeTarget(f) })
		})
	}
}

func fakeTarget(f iommu.Flavour) iommutest.Target {
	b := &fakeBackend{flavour: f, owner: map[string]*fakeSpace{}}
	return iommutest.Target{
		Backend: b,
		Devices: []iommu.Device{{BDF: "0000:00:03.0", Group: 3}, {BDF: "0000:00:04.0", Group: 4}},
		Alloc:   func(t *testing.T, size int) []byte { return make([]byte, size) },
		DMA: func(t *testing.T, a iommu.Attachment) iommutest.DMAEngine {
			return &fakeDMA{b: b, dev: a.Device().BDF}
		},
		Pinned:   b.Pinned,
		Reserved: []iommu.Range{msi},
	}
}

// TestSuiteCatchesBrokenBackends: the suite fails a backend that answers
// with the other flavour's errno, or keeps pins after Close. The broken
// runs happen in a child process, whose failure is the expected outcome.
func TestSuiteCatchesBrokenBackends(t *testing.T) {
	for _, c := range []struct{ breakage, failingCase string }{
		{"lie", "UnmapNothing"},
		{"leak", "CloseReleases"},
	} {
		t.Run(c.breakage, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenFake$", "-test.v")
			cmd.Env = append(os.Environ(), "IOMMUTEST_BROKEN="+c.breakage)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a backend with breakage %q:\n%s", c.breakage, out)
			}
			if want := "--- FAIL: TestBrokenFake/" + c.failingCase; !strings.Contains(string(out), want) {
				t.Fatalf("no %q in the child's output:\n%s", want, out)
			}
		})
	}
}

// TestBrokenFake is the child of TestSuiteCatchesBrokenBackends.
func TestBrokenFake(t *testing.T) {
	breakage := os.Getenv("IOMMUTEST_BROKEN")
	if breakage == "" {
		t.Skip("only run by TestSuiteCatchesBrokenBackends")
	}
	iommutest.Run(t, func(t *testing.T) iommutest.Target {
		tg := fakeTarget(iommu.IOMMUFD)
		b := tg.Backend.(*fakeBackend)
		b.lie = breakage == "lie"
		b.leakOnClose = breakage == "leak"
		return tg
	})
}

var msi = iommu.Range{Start: 0xfee00000, Last: 0xfeefffff}

const (
	page   = 4096
	vtdTop = 1<<48 - 1
)

func errno(op string, e syscall.Errno) error { return iommu.Wrap(fmt.Errorf("fake %s: %w", op, e)) }

var errClosed = fmt.Errorf("fake: %w", iommu.ErrClosed)

// pages is one pinned object: a Map makes one, a Copy shares it, so the
// kernel's "pinned once per object" accounting can be followed.
type pages struct{ size uint64 }

type area struct {
	iova  uint64
	mem   []byte
	perm  iommu.Perm
	pages *pages
}

func (a *area) last() uint64 { return a.iova + uint64(len(a.mem)) - 1 }

type fakeBackend struct {
	flavour     iommu.Flavour
	lie         bool // answer unmap-of-nothing as type1v2 does
	leakOnClose bool

	mu     sync.Mutex
	closed bool
	spaces []*fakeSpace
	owner  map[string]*fakeSpace // device -> the space it is attached to
	leaked uint64
}

func (b *fakeBackend) Flavour() iommu.Flavour { return b.flavour }

func (b *fakeBackend) NewAddressSpace(context.Context) (iommu.AddressSpace, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	s := &fakeSpace{b: b}
	b.spaces = append(b.spaces, s)
	if b.flavour == iommu.IOMMUFD {
		return &fakeIOAS{s}, nil
	}
	return s, nil
}

func (b *fakeBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.spaces {
		s.closeLocked()
	}
	b.spaces = nil
	b.closed = true
	return nil
}

// Pinned charges each pages object once if any space holding it has a
// device attached: iommufd pins when it fills a domain, and type1 cannot
// map without one.
func (b *fakeBackend) Pinned() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[*pages]bool{}
	n := b.leaked
	for _, s := range b.spaces {
		if s.devices() == 0 {
			continue
		}
		for _, a := range s.areas {
			if !seen[a.pages] {
				seen[a.pages] = true
				n += a.pages.size
			}
		}
	}
	return n
}

type fakeSpace struct {
	b       *fakeBackend
	closed  bool
	areas   []*area // sorted by iova
	allowed []iommu.Range
}

func (s *fakeSpace) devices() int {
	n := 0
	for _, o := range s.b.owner {
		if o == s {
			n++
		}
	}
	return n
}

func (s *fakeSpace) closeLocked() {
	if s.closed {
		return
	}
	if s.b.leakOnClose && s.devices() > 0 {
		for _, a := range s.areas {
			s.b.leaked += uint64(len(a.mem))
		}
	}
	for d, o := range s.b.owner {
		if o == s {
			delete(s.b.owner, d)
		}
	}
	s.areas = nil
	s.closed = true
}

func (s *fakeSpace) Close() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.closeLocked()
	return nil
}

// ranges are VT-d's with 48 address bits and the MSI window once a device
// is attached, everything before.
func (s *fakeSpace) rangesLocked() ([]iommu.Range, uint64) {
	if s.devices() == 0 && s.b.flavour == iommu.IOMMUFD {
		return []iommu.Range{{Start: 0, Last: math.MaxUint64}}, 1
	}
	return []iommu.Range{{Start: 0, Last: msi.Start - 1}, {Start: msi.Last + 1, Last: vtdTop}}, page
}

func (s *fakeSpace) Ranges(context.Context) ([]iommu.Range, uint64, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return nil, 0, errClosed
	}
	r, a := s.rangesLocked()
	return r, a, nil
}

func (s *fakeSpace) Attach(_ context.Context, dev iommu.Device) (iommu.Attachment, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if s.b.owner[dev.BDF] != nil {
		return nil, errno("attach", syscall.EBUSY)
	}
	for _, r := range s.allowed {
		if r.Start <= msi.Last && msi.Start <= r.Last || uint64(r.Last) > vtdTop {
			return nil, fmt.Errorf("fake attach: %w", syscall.EADDRINUSE)
		}
	}
	for _, a := range s.areas {
		if a.iova <= uint64(msi.Last) && uint64(msi.Start) <= a.last() || a.last() > vtdTop || (a.iova|uint64(len(a.mem)))%page != 0 {
			return nil, errno("attach", syscall.EINVAL)
		}
	}
	s.b.owner[dev.BDF] = s
	return &fakeAttachment{s: s, dev: dev}, nil
}

func (s *fakeSpace) inRangesLocked(iova, length uint64) bool {
	rs, _ := s.rangesLocked()
	for _, r := range rs {
		if r.Contains(iommu.IOVA(iova), length) {
			return true
		}
	}
	return false
}

func (s *fakeSpace) overlapsLocked(iova, last uint64) bool {
	for _, a := range s.areas {
		if a.iova <= last && iova <= a.last() {
			return true
		}
	}
	return false
}

// chooseLocked is the kernel's first fit from PAGE_SIZE, aligned to the
// length's power of two (capped by the memory's own alignment, which is a
// page here), inside the allowed list when there is one.
func (s *fakeSpace) chooseLocked(length uint64) (uint64, error) {
	rs, _ := s.rangesLocked()
	if len(s.allowed) > 0 {
		rs = s.allowed
	}
	align := uint64(1)
	for align < length && align < 1<<20 {
		align <<= 1
	}
	for _, r := range rs {
		for iova := max(uint64(r.Start)+align-1, page) &^ (align - 1); iova >= uint64(r.Start) && iova+length-1 <= uint64(r.Last) && iova+length > iova; iova += align {
			if s.inRangesLocked(iova, length) && !s.overlapsLocked(iova, iova+length-1) {
				return iova, nil
			}
		}
	}
	return 0, errno("map", syscall.ENOSPC)
}

func (s *fakeSpace) Map(_ context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.mapLocked(m, &pages{size: uint64(len(m.Mem))})
}

func (s *fakeSpace) mapLocked(m iommu.Mapping, p *pages) (iommu.IOVA, error) {
	if s.closed {
		return 0, errClosed
	}
	_, align := s.rangesLocked()
	length := uint64(len(m.Mem))
	if length == 0 || length%align != 0 || m.Perm == 0 {
		return 0, errno("map", syscall.EINVAL)
	}
	iova := uint64(m.IOVA)
	if m.Fixed {
		if iova%align != 0 {
			return 0, errno("map", syscall.EINVAL)
		}
		if iova+length-1 < iova {
			return 0, errno("map", syscall.EOVERFLOW)
		}
		if !s.inRangesLocked(iova, length) {
			return 0, errno("map", syscall.EINVAL)
		}
		if s.overlapsLocked(iova, iova+length-1) {
			return 0, errno("map", syscall.EEXIST)
		}
	} else {
		var err error
		if iova, err = s.chooseLocked(length); err != nil {
			return 0, err
		}
	}
	s.areas = append(s.areas, &area{iova: iova, mem: m.Mem, perm: m.Perm, pages: p})
	sort.Slice(s.areas, func(i, j int) bool { return s.areas[i].iova < s.areas[j].iova })
	return iommu.IOVA(iova), nil
}

func (s *fakeSpace) Unmap(_ context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	if iova == 0 && length == math.MaxUint64 {
		var n uint64
		for _, a := range s.areas {
			n += uint64(len(a.mem))
		}
		s.areas = nil
		return n, nil
	}
	start, last := uint64(iova), uint64(iova)+length-1
	if length == 0 || last < start {
		return 0, errno("unmap", syscall.EINVAL)
	}
	flavour := s.b.flavour
	if flavour != iommu.IOMMUFD {
		_, align := s.rangesLocked()
		if (start|length)%align != 0 {
			return 0, errno("unmap", syscall.EINVAL)
		}
	}
	var hit []*area
	for _, a := range s.areas {
		if a.iova > last || a.last() < start {
			continue
		}
		if a.iova < start || a.last() > last {
			if flavour == iommu.Type1v2 {
				return 0, errno("unmap", syscall.EINVAL)
			}
			// iommufd removes the areas before the cut one; the suite
			// never asks for that.
			return 0, errno("unmap", syscall.ENOENT)
		}
		hit = append(hit, a)
	}
	if len(hit) == 0 && flavour == iommu.IOMMUFD && !s.b.lie {
		return 0, errno("unmap", syscall.ENOENT)
	}
	var n uint64
	kept := s.areas[:0]
	for _, a := range s.areas {
		if a.iova >= start && a.last() <= last {
			n += uint64(len(a.mem))
			continue
		}
		kept = append(kept, a)
	}
	s.areas = kept
	return n, nil
}

// fakeIOAS adds iommufd's optional capabilities.
type fakeIOAS struct{ *fakeSpace }

func (s *fakeIOAS) AllowIOVAs(_ context.Context, allowed []iommu.Range) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return errClosed
	}
	for _, r := range allowed {
		if !s.inRangesLocked(uint64(r.Start), r.Len()) {
			return fmt.Errorf("fake allow_iovas: %w", syscall.EADDRINUSE)
		}
	}
	s.allowed = append([]iommu.Range(nil), allowed...)
	return nil
}

func (s *fakeIOAS) Copy(_ context.Context, src iommu.AddressSpace, srcIOVA iommu.IOVA, length uint64, dst iommu.Mapping) (iommu.IOVA, error) {
	from, ok := src.(*fakeIOAS)
	if !ok || from.b != s.b {
		return 0, errno("copy", syscall.ENOENT)
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if from.closed {
		return 0, errClosed
	}
	start := uint64(srcIOVA)
	for _, a := range from.areas {
		// One source area only: the suite copies no more.
		if a.iova <= start && start+length-1 <= a.last() && start+length > start {
			off := start - a.iova
			dst.Mem = a.mem[off : off+length]
			return s.mapLocked(dst, a.pages)
		}
	}
	return 0, errno("copy", syscall.ENOENT)
}

type fakeAttachment struct {
	s   *fakeSpace
	dev iommu.Device
}

func (a *fakeAttachment) Device() iommu.Device { return a.dev }

func (a *fakeAttachment) Detach(context.Context) error {
	a.s.b.mu.Lock()
	defer a.s.b.mu.Unlock()
	if a.s.b.owner[a.dev.BDF] == a.s {
		delete(a.s.b.owner, a.dev.BDF)
	}
	return nil
}

// fakeDMA is an edu-like engine translating through the device's space.
type fakeDMA struct {
	b   *fakeBackend
	dev string
	buf [page]byte
}

var errFault = errors.New("fake DMA: IOMMU fault")

func (d *fakeDMA) translate(iova uint64, n int, perm iommu.Perm) []byte {
	s := d.b.owner[d.dev]
	if s == nil {
		return nil
	}
	for _, a := range s.areas {
		if a.iova <= iova && iova+uint64(n)-1 <= a.last() && a.perm&perm != 0 {
			return a.mem[iova-a.iova : iova-a.iova+uint64(n)]
		}
	}
	return nil
}

func (d *fakeDMA) ReadFromRAM(iova uint64, off, n int) error {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	m := d.translate(iova, n, iommu.Read)
	if m == nil {
		return errFault
	}
	copy(d.buf[off:off+n], m)
	return nil
}

func (d *fakeDMA) WriteToRAM(iova uint64, off, n int) error {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	m := d.translate(iova, n, iommu.Write)
	if m == nil {
		return errFault
	}
	copy(m, d.buf[off:off+n])
	return nil
}
