package emulated

import (
	"context"
	"fmt"
	"syscall"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// The edu device's DMA engine, as hwtests/edu drives it: a 4 KiB buffer at
// device address 0x40000 and a 28-bit DMA mask.
const (
	EduBufferAddr = 0x40000
	EduBufferSize = 4096
	EduDMAMask    = 1<<28 - 1
)

// Fault is a DMA the IOMMU blocked, as VT-d's fault recording registers
// report it.
type Fault struct {
	BDF    string
	IOVA   iommu.IOVA
	Write  bool // the device wrote memory
	Reason string
}

func (f *Fault) Error() string {
	dir := "read"
	if f.Write {
		dir = "write"
	}
	return fmt.Sprintf("DMA fault: %s %s at iova %#x: %s", f.BDF, dir, uint64(f.IOVA), f.Reason)
}

// Unwrap makes a fault match EFAULT.
func (f *Fault) Unwrap() error { return syscall.EFAULT }

// DMA is an edu-like engine whose reads and writes of host memory go
// through the IOMMU: a blocked DMA leaves memory untouched and records a
// Fault.
type DMA struct {
	at  *Attachment
	buf [EduBufferSize]byte
}

// DMA returns the device's engine.
func (at *Attachment) DMA() *DMA { return &at.dma }

// Buffer is the device's internal buffer (BAR0 at EduBufferAddr).
func (d *DMA) Buffer() []byte { return d.buf[:] }

// ReadFromRAM copies n bytes at iova into the buffer at off: the device
// reads memory, which needs Read permission.
func (d *DMA) ReadFromRAM(iova uint64, off, n int) error {
	return d.run(iova, off, n, false)
}

// WriteToRAM copies n bytes of the buffer at off to iova: the device
// writes memory, which needs Write permission and marks pages dirty.
func (d *DMA) WriteToRAM(iova uint64, off, n int) error {
	return d.run(iova, off, n, true)
}

func (d *DMA) run(iova uint64, off, n int, write bool) error {
	if off < 0 || n <= 0 || off+n > EduBufferSize {
		return fmt.Errorf("edu: buffer range %d+%d outside its %d bytes: %w", off, n, EduBufferSize, syscall.EINVAL)
	}
	if iova+uint64(n)-1 > EduDMAMask || iova+uint64(n)-1 < iova {
		return fmt.Errorf("edu: bus address %#x+%d beyond edu's 28-bit DMA mask: %w", iova, n, syscall.EINVAL)
	}
	b := d.at.b
	b.mu.Lock()
	defer b.mu.Unlock()
	as := d.at.as
	fault := func(at uint64, reason string) error {
		f := Fault{BDF: d.at.dev.BDF, IOVA: iommu.IOVA(at), Write: write, Reason: reason}
		b.faults = append(b.faults, f)
		return &f
	}
	if b.closed || as == nil || !as.domain {
		return fault(iova, "device not attached: DMA blocked")
	}
	if h := d.at.hwpt; h != nil && h.viommu != nil {
		return d.runNested(h, iova, off, n, write)
	}
	need := iommu.Read
	if write {
		need = iommu.Write
	}
	// Check every page first: the emulated IOMMU blocks the whole DMA.
	for cur, end := iova, iova+uint64(n); cur < end; {
		mem, perm, ok := as.pt.translate(cur)
		if !ok {
			return fault(cur, "not present")
		}
		if perm&need == 0 {
			return fault(cur, "permission denied")
		}
		cur += uint64(len(mem))
	}
	done := 0
	for done < n {
		cur := iova + uint64(done)
		e, lvl := as.pt.lookup(cur)
		mem := e.mem[cur&(levelSize(lvl)-1):]
		var c int
		if write {
			c = copy(mem, d.buf[off+done:off+n])
			if as.dirty && d.at.hwpt == nil {
				e.dirty = true
			}
		} else {
			c = copy(d.buf[off+done:off+n], mem)
		}
		done += c
	}
	return nil
}

// SetDirtyTracking implements iommu.DirtyTracker: IOMMU_HWPT_SET_DIRTY_TRACKING
// on iommufd (the IOAS's HWPT: not supported with no device attached, as
// the cdev backend reports it), the DIRTY_PAGES start and stop of
// type1v2; the compat container has none (ENOTTY).
func (as *AddressSpace) SetDirtyTracking(ctx context.Context, enable bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("set dirty tracking"); err != nil {
		return err
	}
	switch {
	case b.flavour == iommu.Compat:
		return errnoErr("dirty tracking on compat", syscall.ENOTTY)
	case !as.hasAuto():
		return &iommu.UnsupportedError{Feature: fmt.Sprintf("dirty tracking on IOAS %d with no device attached", as.id)}
	case b.noDirty && b.flavour == iommu.IOMMUFD:
		return errnoErr("set dirty tracking: the HWPT has no dirty ops", syscall.EOPNOTSUPP)
	}
	if enable && b.flavour == iommu.IOMMUFD {
		// iopt_clear_dirty_data: a clean snapshot to start from.
		for _, a := range as.areas {
			as.clearDirty(a.iova, a.length)
		}
	}
	as.dirty = enable
	return nil
}

func (as *AddressSpace) clearDirty(iova, length uint64) {
	for cur := iova; cur-iova < length; {
		e, lvl := as.pt.lookup(cur)
		if e == nil {
			cur += pageSize
			continue
		}
		e.dirty = false
		cur = cur&^(levelSize(lvl)-1) + levelSize(lvl)
	}
}

// ReadDirty implements iommu.DirtyTracker (IOMMU_HWPT_GET_DIRTY_BITMAP).
// Type1v2 without a vendor driver pinning pages reports every mapped page
// dirty, as the kernel does.
func (as *AddressSpace) ReadDirty(ctx context.Context, iova iommu.IOVA, length, pgSize uint64, keep bool) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := as.usable("read dirty"); err != nil {
		return nil, err
	}
	if b.flavour == iommu.Compat {
		return nil, errnoErr("dirty tracking on compat", syscall.ENOTTY)
	}
	if !as.hasAuto() {
		return nil, &iommu.UnsupportedError{Feature: fmt.Sprintf("dirty tracking on IOAS %d with no device attached", as.id)}
	}
	if b.noDirty && b.flavour == iommu.IOMMUFD {
		return nil, errnoErr("read dirty: the HWPT has no dirty ops", syscall.EOPNOTSUPP)
	}
	if keep && b.flavour == iommu.Type1v2 {
		// VFIO_IOMMU_DIRTY_PAGES GET_BITMAP always clears.
		return nil, &iommu.UnsupportedError{Feature: "reading type1 dirty bits without clearing them"}
	}
	start := uint64(iova)
	last := start + length - 1
	switch {
	case length == 0 || last < start:
		return nil, errnoErr("read dirty: range wraps", syscall.EOVERFLOW)
	case start&(as.alignment-1) != 0 || (last+1)&(as.alignment-1) != 0:
		return nil, errnoErr("read dirty: range not aligned to the IOMMU page", syscall.EINVAL)
	case pgSize == 0 || pgSize&(pgSize-1) != 0:
		return nil, errnoErr("read dirty: bad page size", syscall.EINVAL)
	case start&(pgSize-1) != 0 || (last+1)&(pgSize-1) != 0:
		return nil, errnoErr("read dirty: range not aligned to the page size", syscall.EINVAL)
	}
	if b.flavour == iommu.Type1v2 {
		if !as.dirty {
			return nil, errnoErr("read dirty: tracking not started", syscall.EINVAL)
		}
		if pgSize != pageSize {
			return nil, errnoErr("read dirty: page size is not the IOMMU's", syscall.EINVAL)
		}
	}
	if err := b.step("allocate dirty bitmap"); err != nil {
		return nil, fmt.Errorf("read dirty: %w", err)
	}
	npages := length / pgSize
	bitmap := make([]uint64, (npages+63)/64)
	for i := as.firstArea(start); i < len(as.areas) && as.areas[i].iova <= last; i++ {
		a := as.areas[i]
		lo, hi := max(a.iova, start), min(a.last(), last)
		for cur := lo &^ (pageSize - 1); cur <= hi && cur >= lo&^(pageSize-1); cur += pageSize {
			dirty := b.flavour == iommu.Type1v2
			if e, _ := as.pt.lookup(cur); e != nil && e.dirty {
				dirty = true
			}
			if dirty {
				bit := (max(cur, start) - start) / pgSize
				bitmap[bit/64] |= 1 << (bit % 64)
			}
		}
		if !keep && b.flavour == iommu.IOMMUFD {
			as.clearDirty(lo&^(pageSize-1), hi-lo&^(pageSize-1)+1)
		}
	}
	return bitmap, nil
}
