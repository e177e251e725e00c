package emulated

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// The VT-d model: 48-bit second stage, 4 KiB pages, the interrupt window
// every device reserves.
const (
	msiStart = 0xfee00000
	msiLast  = 0xfeefffff
	// type1's dma_entry_limit default: MAP_DMA past it is ENOSPC.
	dmaEntryLimit = 65535
)

// resv is a reserved IOVA interval; owner is the attachment whose device
// reserved it, nil for the domain's aperture.
type resv struct {
	start, last uint64
	owner       *Attachment
	dom         uint32 // the HWPT whose aperture ends below it; 0 for type1's container
	kept        bool   // the test channel's: outlives domains and devices
}

func sortResv(r []resv) {
	slices.SortFunc(r, func(a, b resv) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
}

// pages is one IOMMU_IOAS_MAP's memory (the kernel's iopt_pages): COPY
// shares it, so its pages are pinned and charged once however many areas
// use it.
type pages struct {
	mem      []byte
	writable bool
	base     uint64   // host address of the first page mem touches
	pins     []uint32 // per host page: areas in a domain that use it
	refs     int      // areas using it
}

// hostPages is the index range of pg.pins that [off, off+length) touches.
func (pg *pages) hostPages(off, length uint64) (first, last uint64) {
	a := addrOf(pg.mem) + off
	return (a - pg.base) / pageSize, (a + length - 1 - pg.base) / pageSize
}

// area is one mapping (the kernel's iopt_area).
type area struct {
	iova, length uint64
	pg           *pages
	off          uint64 // into pg.mem
	perm         iommu.Perm
	filled       bool // in the page table, pages pinned
}

func (a *area) last() uint64    { return a.iova + a.length - 1 }
func (a *area) mem() []byte     { return a.pg.mem[a.off : a.off+a.length : a.off+a.length] }
func (a *area) pageOff() uint64 { return (addrOf(a.pg.mem) + a.off) % pageSize }

// AddressSpace is an IOAS (iommufd) or a container (type1, compat). It
// implements iommu.AddressSpace, iommu.Copier, iommu.IOVAAllower and
// iommu.DirtyTracker.
type AddressSpace struct {
	b      *Backend
	id     uint32
	closed bool
	// domain says a HWPT maps the areas: on iommufd while the automatic
	// HWPT (a device attached to the IOAS) or an explicit paging HWPT
	// exists. Every domain of an IOAS maps the same areas (iopt fills
	// each alike), so they share one page table and one pin per page.
	domain    bool
	ndomains  int
	autoID    uint32 // the automatic HWPT's ID while autoDevs > 0
	autoDevs  int    // devices attached through the automatic HWPT
	hwpts     []*HWPT
	alignment uint64
	areas     []*area // sorted by iova, non-overlapping
	reserved  []resv  // sorted by start
	allowed   []iommu.Range
	attached  []*Attachment
	pt        pageTable
	dirty     bool
	noHuge    bool // IOMMU_OPTION_HUGE_PAGES 0: PAGE_SIZE alignment, 4 KiB leaves only
}

var (
	_ iommu.AddressSpace = (*AddressSpace)(nil)
	_ iommu.Copier       = (*AddressSpace)(nil)
	_ iommu.IOVAAllower  = (*AddressSpace)(nil)
	_ iommu.DirtyTracker = (*AddressSpace)(nil)
)

// ID is the object ID the kernel would have given the IOAS.
func (as *AddressSpace) ID() uint32 { return as.id }

func (as *AddressSpace) usable(op string) error {
	if as.b.closed {
		return closedErr(op)
	}
	if as.closed {
		if as.b.flavour == iommu.IOMMUFD {
			return fmt.Errorf("%s: ioas %d: %w: %w", op, as.id, iommu.ErrClosed, syscall.ENOENT)
		}
		return closedErr(op)
	}
	return nil
}

// Mappings returns the areas as inclusive ranges, in IOVA order.
func (as *AddressSpace) Mappings() []iommu.Range {
	as.b.mu.RLock()
	defer as.b.mu.RUnlock()
	r := make([]iommu.Range, len(as.areas))
	for i, a := range as.areas {
		r[i] = iommu.Range{Start: iommu.IOVA(a.iova), Last: iommu.IOVA(a.last())}
	}
	return r
}

// Translate returns the host memory iova maps to, from iova to the end of
// its page-table entry, and the entry's permissions: what the IOMMU does
// for a device's DMA. It does not allocate.
func (as *AddressSpace) Translate(iova iommu.IOVA) ([]byte, iommu.Perm, bool) {
	as.b.mu.RLock()
	mem, perm, ok := as.pt.translate(uint64(iova))
	as.b.mu.RUnlock()
	return mem, perm, ok
}

// firstArea returns the index of the first area ending at or after iova.
func (as *AddressSpace) firstArea(iova uint64) int {
	return sort.Search(len(as.areas), func(i int) bool { return as.areas[i].last() >= iova })
}

func (as *AddressSpace) areaHit(start, last uint64) bool {
	i := as.firstArea(start)
	return i < len(as.areas) && as.areas[i].iova <= last
}

func (as *AddressSpace) reservedHit(start, last uint64) bool {
	for _, r := range as.reserved {
		if r.start <= last && start <= r.last {
			return true
		}
	}
	return false
}

func (as *AddressSpace) allowedHit(start, last uint64) bool {
	for _, r := range as.allowed {
		if uint64(r.Start) <= last && start <= uint64(r.Last) {
			return true
		}
	}
	return false
}

// usableRanges is the complement of the reserved regions.
func (as *AddressSpace) usableRanges() []iommu.Range {
	var out []iommu.Range
	next := uint64(0)
	done := false
	for _, r := range as.reserved {
		if r.start > next {
			out = append(out, iommu.Range{Start: iommu.IOVA(next), Last: iommu.IOVA(r.start - 1)})
		}
		if r.last == maxU64 {
			done = true
			break
		}
		if r.last+1 > next {
			next = r.last + 1
		}
	}
	if !done {
		out = append(out, iommu.Range{Start: iommu.IOVA(next), Last: iommu.IOVA(maxU64)})
	}
	return out
}

// Ranges implements iommu.AddressSpace (IOMMU_IOAS_IOVA_RANGES).
func (as *AddressSpace) Ranges(ctx context.Context) ([]iommu.Range, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	as.b.mu.RLock()
	defer as.b.mu.RUnlock()
	if err := as.usable("iova ranges"); err != nil {
		return nil, 0, err
	}
	return as.usableRanges(), as.alignment, nil
}

// checkIOVA is iopt_check_iova: a fixed IOVA must be aligned, not wrap,
// avoid reserved ranges (EINVAL) and existing areas (EEXIST).
func (as *AddressSpace) checkIOVA(iova, length uint64) error {
	if iova&(as.alignment-1) != 0 {
		return errnoErr(fmt.Sprintf("iova %#x not aligned to %#x", iova, as.alignment), syscall.EINVAL)
	}
	last := iova + length - 1
	if last < iova {
		return errnoErr(fmt.Sprintf("iova %#x+%#x wraps", iova, length), syscall.EOVERFLOW)
	}
	if as.reservedHit(iova, last) {
		return errnoErr(fmt.Sprintf("iova %#x+%#x hits a reserved range", iova, length), syscall.EINVAL)
	}
	if as.areaHit(iova, last) {
		return errnoErr(fmt.Sprintf("iova %#x+%#x overlaps a mapping", iova, length), syscall.EEXIST)
	}
	return nil
}

// allocIOVA is iopt_alloc_iova: the first hole in the allowed ranges that
// avoids reserved ranges and areas, aligned to the smaller of length
// rounded up to a power of two and the alignment of the host address,
// at most 2 MiB (HPAGE_SIZE), keeping the host address's page offset.
// IOVA 0 and the last page are never chosen.
func (as *AddressSpace) allocIOVA(addr, length uint64) (uint64, error) {
	if length == 0 || length >= maxU64/2 {
		return 0, errnoErr("allocate iova", syscall.EOVERFLOW)
	}
	pageOff := addr % pageSize
	align := uint64(1) << bits.Len64(length-1) // roundup_pow_of_two
	if addr != 0 {
		align = min(align, uint64(1)<<bits.TrailingZeros64(addr))
	}
	const hpage = 2 << 20
	align = min(align, hpage)
	if align < as.alignment {
		return 0, errnoErr(fmt.Sprintf("allocate iova: alignment %#x below the IOAS's %#x", align, as.alignment), syscall.EINVAL)
	}
	fit := func(start, last uint64) (uint64, bool) {
		s := start + align - 1
		if s < start {
			return 0, false
		}
		s = s&^(align-1) | pageOff
		if s >= last || last-s < length-1 {
			return 0, false
		}
		return s, true
	}
	lo, hi := uint64(pageSize), maxU64-pageSize
	spans := []iommu.Range{{Start: iommu.IOVA(lo), Last: iommu.IOVA(hi)}}
	if len(as.allowed) > 0 {
		spans = mergeRanges(as.allowed, lo, hi)
	}
	used := as.usedIntervals()
	for _, sp := range spans {
		start, ok := fit(uint64(sp.Start), uint64(sp.Last))
		if !ok {
			continue
		}
		last := uint64(sp.Last)
		// holes of used within [start, last]
		cur := start
		for _, u := range used {
			if u.last < cur {
				continue
			}
			if u.start > last {
				break
			}
			if u.start > cur {
				if s, ok := fit(cur, u.start-1); ok {
					return s, nil
				}
			}
			if u.last >= last {
				cur = last + 1
				break
			}
			cur = u.last + 1
		}
		if cur <= last && cur != 0 {
			if s, ok := fit(cur, last); ok {
				return s, nil
			}
		}
	}
	return 0, errnoErr(fmt.Sprintf("allocate iova for %#x bytes", length), syscall.ENOSPC)
}

type interval struct{ start, last uint64 }

// usedIntervals merges reserved ranges and areas, sorted.
func (as *AddressSpace) usedIntervals() []interval {
	u := make([]interval, 0, len(as.reserved)+len(as.areas))
	for _, r := range as.reserved {
		u = append(u, interval{r.start, r.last})
	}
	for _, a := range as.areas {
		u = append(u, interval{a.iova, a.last()})
	}
	slices.SortFunc(u, func(a, b interval) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	return u
}

// mergeRanges sorts and merges overlapping ranges, clipped to [lo, hi], as
// the kernel's span iterator over the allowed tree sees them.
func mergeRanges(in []iommu.Range, lo, hi uint64) []iommu.Range {
	r := slices.Clone(in)
	slices.SortFunc(r, func(a, b iommu.Range) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	var out []iommu.Range
	for _, x := range r {
		s, l := max(uint64(x.Start), lo), min(uint64(x.Last), hi)
		if s > l {
			continue
		}
		if n := len(out); n > 0 && uint64(out[n-1].Last) != maxU64 && s <= uint64(out[n-1].Last)+1 {
			out[n-1].Last = iommu.IOVA(max(uint64(out[n-1].Last), l))
			continue
		}
		out = append(out, iommu.Range{Start: iommu.IOVA(s), Last: iommu.IOVA(l)})
	}
	return out
}

// pin pins the host pages under a, charging those no other area in a
// domain holds yet: a page is pinned and charged once however many areas
// share its iopt_pages (COPY, two devices on one IOAS).
func (b *Backend) pin(a *area) error {
	pg := a.pg
	first, last := pg.hostPages(a.off, a.length)
	var fresh uint64
	for i := first; i <= last; i++ {
		if pg.pins[i] == 0 {
			fresh++
		}
	}
	if fresh > 0 {
		if err := b.step("pin pages"); err != nil {
			return err
		}
		if err := b.charge(fresh * pageSize); err != nil {
			return err
		}
	}
	for i := first; i <= last; i++ {
		pg.pins[i]++
	}
	return nil
}

func (b *Backend) unpin(a *area) {
	pg := a.pg
	first, last := pg.hostPages(a.off, a.length)
	var freed uint64
	for i := first; i <= last; i++ {
		pg.pins[i]--
		if pg.pins[i] == 0 {
			freed++
		}
	}
	if freed > 0 {
		b.uncharge(freed * pageSize)
	}
}

// fill pins a's pages and loads it into the page table.
func (as *AddressSpace) fill(a *area) error {
	b := as.b
	if err := b.pin(a); err != nil {
		return err
	}
	if err := as.pt.mapRange(a.iova, a.mem(), a.perm, !as.noHuge, b.step); err != nil {
		b.unpin(a)
		return err
	}
	a.filled = true
	return nil
}

func (as *AddressSpace) unfill(a *area) {
	if !a.filled {
		return
	}
	as.pt.unmapRange(a.iova, a.length)
	as.b.unpin(a)
	as.flushParents()
	a.filled = false
}

func (b *Backend) newPages(mem []byte, writable bool) *pages {
	var pg *pages
	if n := len(b.pagesPool); n > 0 {
		pg = b.pagesPool[n-1]
		b.pagesPool = b.pagesPool[:n-1]
	} else {
		pg = new(pages)
	}
	start := addrOf(mem) &^ (pageSize - 1)
	end := (addrOf(mem) + uint64(len(mem)) + pageSize - 1) &^ (pageSize - 1)
	n := int((end - start) / pageSize)
	pins := pg.pins[:0]
	if cap(pins) < n {
		pins = make([]uint32, n)
	}
	pins = pins[:n]
	clear(pins)
	*pg = pages{mem: mem, writable: writable, base: start, pins: pins}
	return pg
}

func (b *Backend) putPages(pg *pages) {
	pg.refs--
	if pg.refs == 0 {
		*pg = pages{pins: pg.pins[:0]}
		b.pagesPool = append(b.pagesPool, pg)
	}
}

func (b *Backend) newArea(pg *pages, off, iova, length uint64, perm iommu.Perm) *area {
	var a *area
	if n := len(b.areaPool); n > 0 {
		a = b.areaPool[n-1]
		b.areaPool = b.areaPool[:n-1]
	} else {
		a = new(area)
	}
	*a = area{iova: iova, length: length, pg: pg, off: off, perm: perm}
	pg.refs++
	return a
}

func (as *AddressSpace) insert(a *area) {
	i := as.firstArea(a.iova)
	as.areas = slices.Insert(as.areas, i, a)
}

// remove unfills a, takes it out of the list and frees it.
func (as *AddressSpace) remove(i int) uint64 {
	a := as.areas[i]
	as.unfill(a)
	as.areas = slices.Delete(as.areas, i, i+1)
	n := a.length
	as.b.putPages(a.pg)
	*a = area{}
	as.b.areaPool = append(as.b.areaPool, a)
	return n
}

// Map implements iommu.AddressSpace (IOMMU_IOAS_MAP, VFIO_IOMMU_MAP_DMA).
func (as *AddressSpace) Map(ctx context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	if r := as.b.lat; r != nil {
		start := time.Now()
		iova, err := as.doMap(ctx, m)
		var n uint64
		if err == nil {
			n = uint64(len(m.Mem))
		}
		r.Observe(as.b.latMap, as.b.pid, as.b.comm, time.Since(start), n)
		return iova, err
	}
	return as.doMap(ctx, m)
}

func (as *AddressSpace) doMap(ctx context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("map"); err != nil {
		return 0, err
	}
	if b.flavour == iommu.Type1v2 {
		return as.mapType1(m)
	}
	return as.mapIOAS(m)
}

// mapIOAS follows iommufd_ioas_map and iopt_map_user_pages; the compat
// container's MAP_DMA takes the same path with a fixed IOVA.
func (as *AddressSpace) mapIOAS(m iommu.Mapping) (iommu.IOVA, error) {
	b := as.b
	iova, length, addr := uint64(m.IOVA), uint64(len(m.Mem)), addrOf(m.Mem)
	if iova == maxU64 || length == maxU64 {
		return 0, errnoErr("map", syscall.EOVERFLOW)
	}
	if m.Perm&(iommu.Read|iommu.Write) == 0 && b.flavour == iommu.IOMMUFD {
		// iommufd_ioas_map refuses it; iommufd_vfio_map_dma does not
		// check and maps the range inaccessible.
		return 0, errnoErr("map: neither read nor write", syscall.EINVAL)
	}
	if length == 0 {
		return 0, errnoErr("map: length 0", syscall.EINVAL)
	}
	if err := b.step("allocate pages"); err != nil {
		return 0, fmt.Errorf("map: %w", err)
	}
	if err := b.step("allocate area"); err != nil {
		return 0, fmt.Errorf("map: %w", err)
	}
	if length&(as.alignment-1) != 0 {
		return 0, errnoErr(fmt.Sprintf("map: length %#x not aligned to %#x", length, as.alignment), syscall.EINVAL)
	}
	if m.Fixed {
		if err := as.checkIOVA(iova, length); err != nil {
			return 0, fmt.Errorf("map: %w", err)
		}
	} else {
		var err error
		if iova, err = as.allocIOVA(addr, length); err != nil {
			return 0, fmt.Errorf("map: %w", err)
		}
	}
	if (addr%pageSize)&(as.alignment-1) != 0 {
		return 0, errnoErr("map: host address not aligned to the IOAS", syscall.EINVAL)
	}
	return as.finishMap(m, iova)
}

// mapType1 follows vfio_dma_do_map (Linux 6.12).
func (as *AddressSpace) mapType1(m iommu.Mapping) (iommu.IOVA, error) {
	iova, length, addr := uint64(m.IOVA), uint64(len(m.Mem)), addrOf(m.Mem)
	if m.Perm&(iommu.Read|iommu.Write) == 0 {
		return 0, errnoErr("map dma: neither read nor write", syscall.EINVAL)
	}
	if length == 0 || (length|addr)&(pageSize-1) != 0 || (m.Fixed && iova&(pageSize-1) != 0) {
		return 0, errnoErr("map dma: size, iova or vaddr not page aligned", syscall.EINVAL)
	}
	if m.Fixed {
		if iova+length-1 < iova {
			// 6.12's type1 says EINVAL; newer kernels EOVERFLOW.
			return 0, errnoErr("map dma: range wraps", syscall.EINVAL)
		}
		if as.areaHit(iova, iova+length-1) {
			return 0, errnoErr("map dma: overlaps a mapping", syscall.EEXIST)
		}
	}
	if len(as.areas) >= dmaEntryLimit {
		return 0, errnoErr("map dma: dma_entry_limit", syscall.ENOSPC)
	}
	if m.Fixed {
		if as.reservedHit(iova, iova+length-1) {
			return 0, errnoErr("map dma: outside the IOVA ranges", syscall.EINVAL)
		}
	} else {
		// type1 has no kernel-chosen IOVA; the emulator picks like iommufd.
		var err error
		if iova, err = as.allocIOVA(addr, length); err != nil {
			return 0, fmt.Errorf("map dma: %w", err)
		}
	}
	if err := as.b.step("allocate vfio_dma"); err != nil {
		return 0, fmt.Errorf("map dma: %w", err)
	}
	return as.finishMap(m, iova)
}

func (as *AddressSpace) finishMap(m iommu.Mapping, iova uint64) (iommu.IOVA, error) {
	b := as.b
	pg := b.newPages(m.Mem, m.Perm&iommu.Write != 0)
	a := b.newArea(pg, 0, iova, uint64(len(m.Mem)), m.Perm&(iommu.Read|iommu.Write))
	as.insert(a)
	if as.domain {
		if err := as.fill(a); err != nil {
			as.remove(as.firstArea(iova))
			return 0, fmt.Errorf("map: %w", err)
		}
	}
	return iommu.IOVA(iova), nil
}

// Unmap implements iommu.AddressSpace with each flavour's rules:
// iommufd and compat refuse to cut an area (ENOENT, after unmapping the
// whole areas below it, as iopt_unmap_iova_range does); type1v2 refuses a
// cut up front (EINVAL). Unmapping nothing is ENOENT on iommufd, 0 bytes
// on type1v2 and compat.
func (as *AddressSpace) Unmap(ctx context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	if r := as.b.lat; r != nil {
		start := time.Now()
		n, err := as.doUnmap(ctx, iova, length)
		r.Observe(as.b.latUnmap, as.b.pid, as.b.comm, time.Since(start), n)
		return n, err
	}
	return as.doUnmap(ctx, iova, length)
}

func (as *AddressSpace) doUnmap(ctx context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("unmap"); err != nil {
		return 0, err
	}
	start := uint64(iova)
	if start == 0 && length == maxU64 {
		var n uint64
		for len(as.areas) > 0 {
			n += as.remove(len(as.areas) - 1)
		}
		return n, nil
	}
	if b.flavour == iommu.Type1v2 {
		return as.unmapType1(start, length)
	}
	if start == maxU64 || length == maxU64 {
		return 0, errnoErr("unmap", syscall.EOVERFLOW)
	}
	if length == 0 {
		return 0, errnoErr("unmap: length 0", syscall.EINVAL)
	}
	last := start + length - 1
	if last < start {
		return 0, errnoErr(fmt.Sprintf("unmap %#x+%#x wraps", start, length), syscall.EOVERFLOW)
	}
	var n uint64
	for {
		i := as.firstArea(start)
		if i == len(as.areas) || as.areas[i].iova > last {
			break
		}
		if a := as.areas[i]; a.iova < start || a.last() > last {
			return 0, errnoErr(fmt.Sprintf("unmap %#x+%#x would cut %#x+%#x", start, length, a.iova, a.length), syscall.ENOENT)
		}
		n += as.remove(i)
	}
	if n == 0 && b.flavour == iommu.IOMMUFD {
		// The compat container answers 0 bytes like type1 since
		// afb47765f923 (Linux 6.18, backported to stable).
		return 0, errnoErr(fmt.Sprintf("unmap %#x+%#x: nothing mapped", start, length), syscall.ENOENT)
	}
	return n, nil
}

// unmapType1 follows vfio_dma_do_unmap for type1v2 (Linux 6.12).
func (as *AddressSpace) unmapType1(start, length uint64) (uint64, error) {
	if length == 0 || (start|length)&(pageSize-1) != 0 || start+length-1 < start {
		return 0, errnoErr(fmt.Sprintf("unmap dma %#x+%#x", start, length), syscall.EINVAL)
	}
	last := start + length - 1
	i := as.firstArea(start)
	if i < len(as.areas) && as.areas[i].iova < start {
		return 0, errnoErr("unmap dma: would bisect a mapping", syscall.EINVAL)
	}
	j := as.firstArea(last)
	if j < len(as.areas) && as.areas[j].iova <= last && as.areas[j].last() > last {
		return 0, errnoErr("unmap dma: would bisect a mapping", syscall.EINVAL)
	}
	var n uint64
	for i < len(as.areas) && as.areas[i].last() <= last {
		n += as.remove(i)
	}
	return n, nil
}

// AllowIOVAs implements iommu.IOVAAllower (IOMMU_IOAS_ALLOW_IOVAS); only
// iommufd has it.
func (as *AddressSpace) AllowIOVAs(ctx context.Context, allowed []iommu.Range) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("allow iovas"); err != nil {
		return err
	}
	if b.flavour != iommu.IOMMUFD {
		return errnoErr("allow iovas on "+string(b.flavour), syscall.ENOTTY)
	}
	// iommufd_ioas_load_iovas: start must be below last, and the ranges
	// may not overlap one another.
	for i, r := range allowed {
		if r.Start >= r.Last {
			return errnoErr(fmt.Sprintf("allow iovas: %v is empty or one byte", r), syscall.EINVAL)
		}
		for _, o := range allowed[:i] {
			if o.Start <= r.Last && r.Start <= o.Last {
				return errnoErr(fmt.Sprintf("allow iovas: %v overlaps %v", r, o), syscall.EINVAL)
			}
		}
	}
	if len(allowed) > 0 {
		if err := b.step("allocate allowed ranges"); err != nil {
			return fmt.Errorf("allow iovas: %w", err)
		}
	}
	for _, r := range allowed {
		if as.reservedHit(uint64(r.Start), uint64(r.Last)) {
			return errnoErr(fmt.Sprintf("allow iovas: %v intersects a reserved range", r), syscall.EADDRINUSE)
		}
	}
	as.allowed = slices.Clone(allowed)
	return nil
}

// Copy implements iommu.Copier (IOMMU_IOAS_COPY): src's pages are mapped
// again without a new pin. dst.Mem is ignored; dst.IOVA, Fixed and Perm
// apply.
func (as *AddressSpace) Copy(ctx context.Context, src iommu.AddressSpace, srcIOVA iommu.IOVA, length uint64, dst iommu.Mapping) (iommu.IOVA, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("copy"); err != nil {
		return 0, err
	}
	if b.flavour != iommu.IOMMUFD {
		return 0, errnoErr("copy on "+string(b.flavour), syscall.ENOTTY)
	}
	from := uint64(srcIOVA)
	if length == maxU64 || from == maxU64 || uint64(dst.IOVA) == maxU64 {
		return 0, errnoErr("copy", syscall.EOVERFLOW)
	}
	if dst.Perm&(iommu.Read|iommu.Write) == 0 {
		return 0, errnoErr("copy: neither read nor write", syscall.EINVAL)
	}
	s, ok := src.(*AddressSpace)
	if !ok || s.b != b || s.closed {
		return 0, errnoErr("copy: source IOAS not in this iommufd", syscall.ENOENT)
	}
	if length == 0 {
		return 0, errnoErr("copy: length 0", syscall.EINVAL)
	}
	last := from + length - 1
	if last < from {
		return 0, errnoErr("copy: source wraps", syscall.EOVERFLOW)
	}
	// iopt_get_pages: the source must be covered by contiguous areas.
	type piece struct {
		pg          *pages
		off, length uint64
	}
	var pieces []piece
	cur, covered := from, false
	for i := s.firstArea(from); i < len(s.areas) && cur <= last; i++ {
		a := s.areas[i]
		if a.iova > cur {
			break
		}
		if err := b.step("allocate pages list"); err != nil {
			return 0, fmt.Errorf("copy: %w", err)
		}
		end := min(a.last(), last)
		pieces = append(pieces, piece{a.pg, a.off + (cur - a.iova), end - cur + 1})
		if end == last {
			covered = true
			break
		}
		cur = end + 1
	}
	if !covered {
		return 0, errnoErr(fmt.Sprintf("copy: %#x+%#x not fully mapped in the source", from, length), syscall.ENOENT)
	}
	for range pieces {
		if err := b.step("allocate area"); err != nil {
			return 0, fmt.Errorf("copy: %w", err)
		}
	}
	if length&(as.alignment-1) != 0 {
		return 0, errnoErr("copy: length not aligned to the IOAS", syscall.EINVAL)
	}
	iova := uint64(dst.IOVA)
	if dst.Fixed {
		if err := as.checkIOVA(iova, length); err != nil {
			return 0, fmt.Errorf("copy: %w", err)
		}
	} else {
		var err error
		if iova, err = as.allocIOVA(addrOf(pieces[0].pg.mem)+pieces[0].off, length); err != nil {
			return 0, fmt.Errorf("copy: %w", err)
		}
	}
	for _, p := range pieces {
		if dst.Perm&iommu.Write != 0 && !p.pg.writable {
			return 0, errnoErr("copy: write to pages mapped read-only", syscall.EPERM)
		}
		if ((addrOf(p.pg.mem)+p.off)%pageSize)&(as.alignment-1) != 0 {
			return 0, errnoErr("copy: page offset not aligned to the IOAS", syscall.EINVAL)
		}
	}
	var made []*area
	at := iova
	for _, p := range pieces {
		a := b.newArea(p.pg, p.off, at, p.length, dst.Perm&(iommu.Read|iommu.Write))
		as.insert(a)
		made = append(made, a)
		at += p.length
	}
	if as.domain {
		for _, a := range made {
			if err := as.fill(a); err != nil {
				for _, a := range made {
					as.remove(as.firstArea(a.iova))
				}
				return 0, fmt.Errorf("copy: %w", err)
			}
		}
	}
	return iommu.IOVA(iova), nil
}

// Close implements iommu.AddressSpace: it detaches every device, unmaps
// everything and drops the pins, as the kernel backends do (detach, then
// IOMMU_DESTROY or closing the container). Idempotent.
func (as *AddressSpace) Close() error {
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if as.closed || b.closed {
		return nil
	}
	as.teardown()
	b.spaces = slices.DeleteFunc(b.spaces, func(x *AddressSpace) bool { return x == as })
	return nil
}

// Destroy is IOMMU_DESTROY of the IOAS on its own: EBUSY while a device is
// attached or a paging HWPT sits on it (each holds a reference), otherwise
// Close.
func (as *AddressSpace) Destroy() error {
	b := as.b
	b.mu.Lock()
	busy := !as.closed && (len(as.attached) > 0 || len(as.hwpts) > 0)
	b.mu.Unlock()
	if busy {
		return errnoErr(fmt.Sprintf("destroy ioas %d: devices attached or HWPTs on it", as.id), syscall.EBUSY)
	}
	return as.Close()
}

// teardown detaches everything, destroys the HWPTs over the IOAS and
// what sits on them, unmaps everything and frees the IOAS.
func (as *AddressSpace) teardown() {
	for len(as.attached) > 0 {
		as.detach(as.attached[len(as.attached)-1])
	}
	for len(as.hwpts) > 0 {
		as.hwpts[len(as.hwpts)-1].teardown()
	}
	for len(as.areas) > 0 {
		as.remove(len(as.areas) - 1)
	}
	if as.domain && as.b.flavour != iommu.IOMMUFD {
		as.dropDomain(0)
	}
	delete(as.b.objects, as.id)
	as.closed = true
}

// addDomain is iopt_table_add_domain for HWPT id over the IOAS (the
// automatic one the first attach creates, or an explicit paging HWPT)
// whose domain translates IOVAs up to last: the range above it becomes
// reserved for as long as the domain lives (EADDRINUSE if mapped or
// allowed). The first domain needs page-aligned areas (EADDRINUSE
// otherwise) and pins and maps them; later ones share the page table.
func (as *AddressSpace) addDomain(id uint32, last uint64) error {
	if last != maxU64 && (as.areaHit(last+1, maxU64) || as.allowedHit(last+1, maxU64)) {
		return errnoErr(fmt.Sprintf("add domain: mappings or allowed IOVAs above the aperture's end %#x", last), syscall.EADDRINUSE)
	}
	if as.ndomains == 0 {
		for _, a := range as.areas {
			if (a.iova|a.length|a.pageOff())&(pageSize-1) != 0 {
				return errnoErr(fmt.Sprintf("add domain: mapping %#x+%#x not page aligned", a.iova, a.length), syscall.EADDRINUSE)
			}
		}
		for i, a := range as.areas {
			if err := as.fill(a); err != nil {
				for _, a := range as.areas[:i] {
					as.unfill(a)
				}
				return err
			}
		}
		as.domain, as.alignment = true, pageSize
	}
	as.ndomains++
	if last != maxU64 {
		as.reserved = append(as.reserved, resv{start: last + 1, last: maxU64, dom: id})
		sortResv(as.reserved)
	}
	return nil
}

// dropDomain is iopt_table_remove_domain for HWPT id: its aperture's
// reservation goes, and the last domain going unmaps and unpins the areas.
func (as *AddressSpace) dropDomain(id uint32) {
	as.reserved = slices.DeleteFunc(as.reserved, func(r resv) bool { return r.dom == id && r.owner == nil && !r.kept })
	as.ndomains--
	if as.ndomains > 0 {
		return
	}
	for _, a := range as.areas {
		as.unfill(a)
	}
	as.domain, as.ndomains, as.alignment = false, 0, 1
	if as.noHuge {
		as.alignment = pageSize
	}
}

// getAuto attaches one more device through the automatic HWPT, which the
// first one allocates (iommufd_device_auto_get_domain).
func (as *AddressSpace) getAuto() error {
	if as.autoDevs > 0 {
		as.autoDevs++
		return nil
	}
	b := as.b
	id, err := b.newID("hwpt")
	if err != nil {
		return err
	}
	if err := as.addDomain(id, b.aperture); err != nil {
		delete(b.objects, id)
		return err
	}
	as.autoID, as.autoDevs = id, 1
	return nil
}

// putAuto detaches a device from the automatic HWPT; the last one frees
// it, and its dirty tracking with it.
func (as *AddressSpace) putAuto() {
	as.autoDevs--
	if as.autoDevs > 0 {
		return
	}
	delete(as.b.objects, as.autoID)
	as.dropDomain(as.autoID)
	as.autoID, as.dirty = 0, false
}

// hasAuto says whether the HWPT the IOAS's own dirty tracking works on
// exists: the automatic one on iommufd, the container's domain otherwise.
func (as *AddressSpace) hasAuto() bool {
	return as.b.flavour != iommu.IOMMUFD || as.autoDevs > 0
}

// AddReserved reserves [start, last] as IOMMU_TEST_OP_ADD_RESERVED does
// (iopt_reserve_iova): EADDRINUSE if an area or the allowed list
// intersects it. The reservation lasts as long as the IOAS.
func (as *AddressSpace) AddReserved(start, last iommu.IOVA) error {
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("add reserved"); err != nil {
		return err
	}
	if start > last {
		return errnoErr("add reserved: empty range", syscall.EINVAL)
	}
	if as.areaHit(uint64(start), uint64(last)) || as.allowedHit(uint64(start), uint64(last)) {
		return errnoErr(fmt.Sprintf("add reserved %#x-%#x: in use", uint64(start), uint64(last)), syscall.EADDRINUSE)
	}
	if err := b.step("allocate reserved range"); err != nil {
		return fmt.Errorf("add reserved: %w", err)
	}
	as.reserved = append(as.reserved, resv{start: uint64(start), last: uint64(last), kept: true})
	sortResv(as.reserved)
	return nil
}

// SetHugePages is IOMMU_OPTION_HUGE_PAGES: off
// makes PAGE_SIZE the IOAS's alignment and maps 4 KiB leaves only. It is
// refused while a domain already maps areas (EINVAL) or when an area is
// not page aligned (EADDRINUSE); iommufd only.
func (as *AddressSpace) SetHugePages(ctx context.Context, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("huge pages option"); err != nil {
		return err
	}
	if b.flavour != iommu.IOMMUFD {
		return errnoErr("huge pages option on "+string(b.flavour), syscall.ENOTTY)
	}
	if on {
		as.noHuge = false
		if !as.domain {
			as.alignment = 1
		}
		return nil
	}
	if as.noHuge {
		return nil
	}
	if as.domain && len(as.areas) > 0 {
		return errnoErr("disable huge pages: a domain maps areas", syscall.EINVAL)
	}
	for _, a := range as.areas {
		if (a.iova|a.length|a.pageOff())&(pageSize-1) != 0 {
			return errnoErr(fmt.Sprintf("disable huge pages: area %#x+%#x not page aligned", a.iova, a.length), syscall.EADDRINUSE)
		}
	}
	as.noHuge, as.alignment = true, pageSize
	return nil
}

// Attachment is a device attached to an AddressSpace. It implements
// iommu.Attachment and iommu.HWInfoer.
type Attachment struct {
	b *Backend
	// as is the IOAS the device's DMA ends in (stage 2 under a nested
	// HWPT); nil once detached.
	as *AddressSpace
	// hwpt is the explicit HWPT the device is attached to, nil for the
	// IOAS's automatic one.
	hwpt *HWPT
	dev  iommu.Device
	id   uint32
	dma  DMA
	// vdev is the device's vDEVICE, if any (one per device).
	vdev *VDevice
	// vmaster is the virtual StreamID the SMMU reports events under, set
	// when the device attaches to a nested HWPT while it has a vDEVICE
	// there (arm_smmu_attach_prepare_vmaster); it outlives the vDEVICE.
	vmaster *vmaster
	// cd is the SMMU's configuration cache for the device's stream: the
	// CD fetched under the current STE until CFGI_CD or a new STE.
	cd *cachedCD
}

var (
	_ iommu.Attachment = (*Attachment)(nil)
	_ iommu.HWInfoer   = (*Attachment)(nil)
	_ iommu.Nester     = (*Attachment)(nil)
)

// Device implements iommu.Attachment.
func (at *Attachment) Device() iommu.Device { return at.dev }

// Attach implements iommu.AddressSpace: bind and attach on iommufd, the
// group's SET_CONTAINER on type1 and compat. The group rule holds: every
// device of a group attaches to the same address space (another one is
// EINVAL) and one backend instance owns the group (EPERM on iommufd, EBUSY
// for the single-open group fd otherwise).
func (as *AddressSpace) Attach(ctx context.Context, dev iommu.Device) (iommu.Attachment, error) {
	return as.AttachDevice(ctx, dev)
}

// AttachDevice is Attach returning the concrete type.
func (as *AddressSpace) AttachDevice(ctx context.Context, dev iommu.Device) (*Attachment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("attach"); err != nil {
		return nil, err
	}
	d, ok := b.machine.device(dev.BDF)
	if !ok {
		return nil, errnoErr("attach "+dev.BDF+": no such device", syscall.ENOENT)
	}
	if at, bound := b.bound[d.BDF]; bound {
		if at.hwpt == nil {
			return nil, errnoErr("attach "+d.BDF+": already attached", syscall.EINVAL)
		}
		// On an explicit HWPT: attaching to an IOAS replaces it with
		// the IOAS's automatic HWPT (iommufd_device_replace).
		if err := at.replace(as, nil); err != nil {
			return nil, fmt.Errorf("attach %s: %w", d.BDF, err)
		}
		return at, nil
	}
	sibling := false
	for _, o := range b.bound {
		if o.dev.Group == d.Group {
			if o.as != as || o.hwpt != nil {
				// iommufd_group_do_attach: the group's domain is another.
				return nil, errnoErr(fmt.Sprintf("attach %s: group %d is attached to another address space or HWPT", d.BDF, d.Group), syscall.EINVAL)
			}
			sibling = true
		}
	}
	if !sibling {
		if err := b.machine.claim(d.Group, b); err != nil {
			return nil, fmt.Errorf("attach %s: %w", d.BDF, err)
		}
	}
	undo := func() {
		if !sibling {
			b.machine.release(d.Group, b)
		}
	}
	at := &Attachment{b: b, as: as, dev: d}
	at.dma.at = at
	if b.flavour == iommu.IOMMUFD {
		id, err := b.newID("device")
		if err != nil {
			undo()
			return nil, fmt.Errorf("attach %s: bind: %w", d.BDF, err)
		}
		at.id = id
		// iopt_table_enforce_dev_resv_regions: the interrupt window and
		// the device's other reserved regions.
		for _, r := range append([]resv{b.msi}, b.devResv...) {
			if as.areaHit(r.start, r.last) || as.allowedHit(r.start, r.last) {
				delete(b.objects, id)
				undo()
				return nil, errnoErr(fmt.Sprintf("attach %s: reserved region %#x-%#x is in use", d.BDF, r.start, r.last), syscall.EADDRINUSE)
			}
		}
		if err := as.getAuto(); err != nil {
			delete(b.objects, id)
			undo()
			return nil, fmt.Errorf("attach %s: %w", d.BDF, err)
		}
		as.reserveFor(at)
	}
	as.attached = append(as.attached, at)
	b.bound[d.BDF] = at
	return at, nil
}

// Detach implements iommu.Attachment; the last device leaving an iommufd
// IOAS frees its HWPT and unpins its pages. Idempotent.
func (at *Attachment) Detach(ctx context.Context) error {
	b := at.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if at.as == nil {
		return nil
	}
	at.as.detach(at)
	return nil
}

func (as *AddressSpace) detach(at *Attachment) {
	b := as.b
	as.attached = slices.DeleteFunc(as.attached, func(x *Attachment) bool { return x == at })
	as.reserved = slices.DeleteFunc(as.reserved, func(r resv) bool { return r.owner == at })
	delete(b.bound, at.dev.BDF)
	if at.id != 0 {
		delete(b.objects, at.id)
	}
	switch {
	case at.hwpt != nil:
		at.hwpt.leave(at)
	case b.flavour == iommu.IOMMUFD:
		as.putAuto()
	}
	// Unbinding revokes the device's vDEVICE; its ID stays taken, so a
	// later IOMMU_DESTROY of it is ENOENT (iommufd_device_remove_vdev's
	// tombstone).
	if v := at.vdev; v != nil {
		v.destroy()
	}
	at.hwpt, at.vmaster, at.cd = nil, nil, nil
	sibling := false
	for _, o := range b.bound {
		if o.dev.Group == at.dev.Group {
			sibling = true
		}
	}
	if !sibling {
		b.machine.release(at.dev.Group, b)
	}
	at.as = nil
}

// QEMU's intel-iommu registers (x-scalable-mode off, aw-bits 48), as the
// guest's sysfs shows them.
const (
	vtdCap  = 0x00d2008c222f0686
	vtdECap = 0x0000000000f00f4a
)

// HWInfo implements iommu.HWInfoer (IOMMU_GET_HW_INFO): struct
// iommu_hw_info_vtd with QEMU's VT-d registers. iommufd only.
func (at *Attachment) HWInfo(ctx context.Context) (iommu.HWInfo, error) {
	if err := ctx.Err(); err != nil {
		return iommu.HWInfo{}, err
	}
	b := at.b
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return iommu.HWInfo{}, closedErr("hw info")
	}
	if b.flavour != iommu.IOMMUFD {
		return iommu.HWInfo{}, errnoErr("hw info on "+string(b.flavour), syscall.ENOTTY)
	}
	if at.as == nil {
		return iommu.HWInfo{}, errnoErr("hw info: device not bound", syscall.ENOENT)
	}
	if b.model == SMMUv3 {
		return iommu.HWInfo{Type: "arm-smmuv3", Data: smmuHWInfo()}, nil
	}
	data := make([]byte, 24)
	putLE(data[8:], vtdCap)
	putLE(data[16:], vtdECap)
	return iommu.HWInfo{Type: "intel-vtd", Data: data}, nil
}

// reserveFor enforces at's device reserved regions in as
// (iopt_table_enforce_dev_resv_regions); the caller checked they are free.
func (as *AddressSpace) reserveFor(at *Attachment) {
	b := as.b
	as.reserved = append(as.reserved, resv{start: b.msi.start, last: b.msi.last, owner: at})
	for _, r := range b.devResv {
		as.reserved = append(as.reserved, resv{start: r.start, last: r.last, owner: at})
	}
	sortResv(as.reserved)
}

// resvFree says whether the device reserved regions can be enforced in
// as: no area or allowed range may intersect them (EADDRINUSE).
func (as *AddressSpace) resvFree(bdf string) error {
	b := as.b
	for _, r := range append([]resv{b.msi}, b.devResv...) {
		if as.areaHit(r.start, r.last) || as.allowedHit(r.start, r.last) {
			return errnoErr(fmt.Sprintf("attach %s: reserved region %#x-%#x is in use", bdf, r.start, r.last), syscall.EADDRINUSE)
		}
	}
	return nil
}

func putLE(p []byte, v uint64) {
	for i := range 8 {
		p[i] = byte(v >> (8 * i))
	}
}
