//go:build linux

package cdev

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
)

// Nesting setup steps, as FailStep sees them.
const (
	StepHWPT    = "hwpt"    // IOMMU_HWPT_ALLOC, paging or nested
	StepVIOMMU  = "viommu"  // IOMMU_VIOMMU_ALLOC
	StepVDevice = "vdevice" // IOMMU_VDEVICE_ALLOC
	StepVEventQ = "veventq" // IOMMU_VEVENTQ_ALLOC
)

var (
	_ iommu.Nester     = (*Attachment)(nil)
	_ iommu.HWPT       = (*HWPT)(nil)
	_ iommu.VIOMMU     = (*VIOMMU)(nil)
	_ iommu.VDevice    = (*VDevice)(nil)
	_ iommu.EventQueue = (*EventQueue)(nil)
)

// object is a nesting object allocated through the backend. Each sits,
// directly or through others, on one IOAS: closing that address space
// destroys its objects first, newest first, since the kernel refuses to
// destroy an IOAS a HWPT still holds (EBUSY).
type object struct {
	b    *Backend
	id   iommufd.ID
	kind string
	as   *AddressSpace
	dev  *Attachment // a vDEVICE's device
	file *os.File    // a vEVENTQ's
	gone bool        // destroyed; guarded by b.mu
}

// newObject records an object allocated by the kernel. b.mu is held.
func (b *Backend) newObject(id iommufd.ID, kind string, as *AddressSpace) *object {
	o := &object{b: b, id: id, kind: kind, as: as}
	b.objects = append(b.objects, o)
	return o
}

// liveLocked refuses an object already destroyed as the kernel refuses
// its ID (ENOENT), without passing the ID on: the kernel reuses the IDs
// of destroyed objects, so a stale one could name another. b.mu is held.
func (o *object) liveLocked(op string) error {
	if o.gone {
		return fmt.Errorf("%s: %s %d was destroyed: %w", op, o.kind, o.id, iommu.Wrap(unix.ENOENT))
	}
	return nil
}

// destroyLocked is IOMMU_DESTROY. b.mu is held.
func (o *object) destroyLocked() error {
	if o.gone {
		return fmt.Errorf("destroy %s %d: %w", o.kind, o.id, iommu.Wrap(unix.ENOENT))
	}
	if o.file != nil {
		o.file.Close()
		o.file = nil
	}
	if err := o.b.fd.Destroy(o.id); err != nil {
		return fmt.Errorf("destroy %s %d: %w", o.kind, o.id, iommu.Wrap(err))
	}
	o.gone = true
	for i, p := range o.b.objects {
		if p == o {
			o.b.objects = append(o.b.objects[:i], o.b.objects[i+1:]...)
			break
		}
	}
	return nil
}

// Destroy is IOMMU_DESTROY: the kernel refuses an object in use (EBUSY),
// and one already destroyed is ENOENT.
func (o *object) Destroy() error {
	o.b.mu.Lock()
	defer o.b.mu.Unlock()
	if o.b.closed {
		return fmt.Errorf("destroy %s %d: backend %w", o.kind, o.id, iommu.ErrClosed)
	}
	return o.destroyLocked()
}

// destroyObjectsLocked destroys every object on as, newest first. b.mu is
// held and as's devices are detached.
func (as *AddressSpace) destroyObjectsLocked() []error {
	var errs []error
	for i := len(as.b.objects) - 1; i >= 0; i-- {
		if o := as.b.objects[i]; o.as == as {
			errs = append(errs, o.destroyLocked())
		}
	}
	return errs
}

// destroyVDevicesLocked destroys a's vDEVICEs, before its cdev closes:
// since Linux 6.17 unbinding destroys them, before that a vDEVICE kept
// the unbind waiting. b.mu is held.
func (a *Attachment) destroyVDevicesLocked() []error {
	var errs []error
	for i := len(a.b.objects) - 1; i >= 0; i-- {
		if o := a.b.objects[i]; o.dev == a {
			errs = append(errs, o.destroyLocked())
		}
	}
	return errs
}

// HWPT is a paging HWPT over an IOAS, or a nested HWPT over a vIOMMU.
type HWPT struct{ *object }

// ID is the HWPT's object ID, for QEMU or calls the interface lacks.
func (h *HWPT) ID() uint32 { return uint32(h.id) }

// VIOMMU is a vIOMMU over a nesting parent.
type VIOMMU struct {
	*object
	typ iommufd.VIOMMUType
}

// ID is the vIOMMU's object ID.
func (v *VIOMMU) ID() uint32 { return uint32(v.id) }

// VDevice is a device's virtual ID in a vIOMMU.
type VDevice struct {
	*object
	virtID uint64
}

// VirtID implements iommu.VDevice.
func (v *VDevice) VirtID() uint64 { return v.virtID }

// EventQueue is a vEVENTQ.
type EventQueue struct {
	*object
	recordSize int
	buf        []byte
}

// usableLocked checks a is bound and its backend open. b.mu is held.
func (a *Attachment) usableLocked(op string) error {
	if a.b.closed {
		return fmt.Errorf("%s: backend %w", op, iommu.ErrClosed)
	}
	if a.detached {
		return fmt.Errorf("%s: %s is detached: %w", op, a.dev.BDF, iommu.ErrClosed)
	}
	return nil
}

// NewHWPT implements iommu.Nester with IOMMU_HWPT_ALLOC over an IOAS.
func (a *Attachment) NewHWPT(ctx context.Context, space iommu.AddressSpace, flags iommu.HWPTFlags) (iommu.HWPT, error) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	op := fmt.Sprintf("allocate a HWPT (flags %#x) for %s", uint32(flags), a.dev.BDF)
	if err := a.usableLocked(op); err != nil {
		return nil, err
	}
	as, ok := space.(*AddressSpace)
	if !ok || as.b != b {
		return nil, fmt.Errorf("%s: not an IOAS of this iommufd: %w", op, iommu.ErrInvalid)
	}
	if as.closed {
		return nil, fmt.Errorf("%s: address space %w", op, iommu.ErrClosed)
	}
	var f iommufd.HWPTAllocFlags
	if flags&iommu.NestParent != 0 {
		f |= iommufd.HWPTAllocNestParent
	}
	if flags&iommu.DirtyTracking != 0 {
		f |= iommufd.HWPTAllocDirtyTracking
	}
	if rest := flags &^ (iommu.NestParent | iommu.DirtyTracking); rest != 0 {
		f |= iommufd.HWPTAllocFlags(rest) // the kernel judges flags it knows and we do not
	}
	err := b.opts.step(StepHWPT)
	var id iommufd.ID
	if err == nil {
		id, err = b.fd.HWPTAlloc(a.devID, as.ioas, iommufd.HWPTOptions{Flags: f})
	}
	if err != nil {
		return nil, fmt.Errorf("%s over IOAS %d: %w", op, as.ioas, iommu.Wrap(err))
	}
	return &HWPT{b.newObject(id, "HWPT", as)}, nil
}

// viommuType is the vIOMMU type of a's IOMMU, from its hw info.
func (a *Attachment) viommuType() (iommufd.VIOMMUType, error) {
	info, err := a.b.fd.GetHWInfo(a.devID)
	if err != nil {
		return 0, iommu.Wrap(err)
	}
	switch info.Type {
	case iommufd.HWInfoTypeARMSMMUv3, iommufd.HWInfoTypeTegra241CMDQV:
		return iommufd.VIOMMUTypeARMSMMUv3, nil
	}
	return 0, &iommu.UnsupportedError{Feature: "a vIOMMU for an IOMMU of hw info type " + hwInfoType(info.Type), Err: unix.EOPNOTSUPP}
}

// NewVIOMMU implements iommu.Nester with IOMMU_VIOMMU_ALLOC, of the type
// the device's IOMMU reports (ARM_SMMUV3 on an SMMUv3).
func (a *Attachment) NewVIOMMU(ctx context.Context, parent iommu.HWPT) (iommu.VIOMMU, error) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	op := "allocate a vIOMMU for " + a.dev.BDF
	if err := a.usableLocked(op); err != nil {
		return nil, err
	}
	p, ok := parent.(*HWPT)
	if !ok || p.b != b {
		return nil, fmt.Errorf("%s: parent is not a HWPT of this iommufd: %w", op, iommu.ErrInvalid)
	}
	if err := p.liveLocked(op); err != nil {
		return nil, err
	}
	typ, err := a.viommuType()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	err = b.opts.step(StepVIOMMU)
	var id iommufd.ID
	if err == nil {
		id, err = b.fd.VIOMMUAlloc(a.devID, p.id, typ, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("%s over HWPT %d: %w", op, p.id, iommu.Wrap(err))
	}
	return &VIOMMU{object: b.newObject(id, "vIOMMU", p.as), typ: typ}, nil
}

// AttachHWPT implements iommu.Nester with VFIO_DEVICE_ATTACH_IOMMUFD_PT on
// the HWPT, replacing the device's current page table. The device then
// counts as attached to the IOAS under h: closing that address space
// detaches it.
func (a *Attachment) AttachHWPT(ctx context.Context, hwpt iommu.HWPT) error {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	op := "attach " + a.dev.BDF + " to a HWPT"
	if err := a.usableLocked(op); err != nil {
		return err
	}
	h, ok := hwpt.(*HWPT)
	if !ok || h.b != b {
		return fmt.Errorf("%s: not a HWPT of this iommufd: %w", op, iommu.ErrInvalid)
	}
	if err := h.liveLocked(op); err != nil {
		return err
	}
	if err := b.opts.step(StepAttach); err != nil {
		return fmt.Errorf("attach %s to HWPT %d: %w", a.dev.BDF, h.id, iommu.Wrap(err))
	}
	got, err := a.vdev.AttachIOMMUFDPT(uint32(h.id))
	if err != nil {
		err = fmt.Errorf("attach %s to HWPT %d: %w", a.dev.BDF, h.id, iommu.Wrap(err))
		if h.as == a.as {
			return errors.Join(err, a.restoreReservedLocked())
		}
		return err
	}
	// The kernel moved the whole iommu_group.
	from := a.as
	for _, s := range b.bound {
		if s == a || (s.dev.Group == a.dev.Group && s.as == from) {
			delete(s.as.attached, s)
			s.as, s.hwpt, s.explicit = h.as, iommufd.ID(got), true
			s.as.attached[s] = struct{}{}
		}
	}
	return nil
}

// restoreReservedLocked puts the reserved regions of a's group back into
// its IOAS after the kernel refused to replace its page table with another
// on the same IOAS. Linux (7.3 at least) drops them there on that error:
// iommufd_device_do_replace enforces reservations only for a new IOAS but,
// when the driver refuses, removes the group's from the new HWPT's IOAS,
// which is the old one's. The device stays attached with its interrupt
// window mappable (hwtests' TestFailedReplaceDropsMSIWindow pins it). A
// detach and an attach to the same page table enforce them again; the
// device's DMA is blocked in between. b.mu is held.
func (a *Attachment) restoreReservedLocked() error {
	var errs []error
	for _, s := range a.b.bound {
		if s.dev.Group != a.dev.Group || s.as != a.as {
			continue
		}
		target := uint32(s.as.ioas) // the automatic HWPT goes with the detach
		if s.explicit {
			target = uint32(s.hwpt)
		}
		if err := s.vdev.DetachIOMMUFDPT(); err != nil {
			errs = append(errs, fmt.Errorf("restore the reserved regions of %s: detach: %w", s.dev.BDF, iommu.Wrap(err)))
			continue
		}
		got, err := s.vdev.AttachIOMMUFDPT(target)
		if err != nil {
			errs = append(errs, fmt.Errorf("restore the reserved regions of %s: attach to %d again (its DMA stays blocked): %w", s.dev.BDF, target, iommu.Wrap(err)))
			continue
		}
		s.hwpt = iommufd.ID(got)
	}
	return errors.Join(errs...)
}

// attachmentOf checks v lives and dev is a live attachment of its
// backend. b.mu is held.
func (v *VIOMMU) attachmentOf(op string, dev iommu.Attachment) (*Attachment, error) {
	a, ok := dev.(*Attachment)
	if !ok || a.b != v.b {
		return nil, fmt.Errorf("%s: not a device of this iommufd: %w", op, iommu.ErrInvalid)
	}
	if err := a.usableLocked(op); err != nil {
		return nil, err
	}
	return a, v.liveLocked(op)
}

// NewVDevice implements iommu.VIOMMU with IOMMU_VDEVICE_ALLOC.
func (v *VIOMMU) NewVDevice(ctx context.Context, dev iommu.Attachment, virtID uint64) (iommu.VDevice, error) {
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	op := fmt.Sprintf("allocate vDEVICE %#x in vIOMMU %d", virtID, v.id)
	a, err := v.attachmentOf(op, dev)
	if err != nil {
		return nil, err
	}
	err = b.opts.step(StepVDevice)
	var id iommufd.ID
	if err == nil {
		id, err = b.fd.VDeviceAlloc(v.id, a.devID, virtID)
	}
	if err != nil {
		return nil, fmt.Errorf("%s for %s: %w", op, a.dev.BDF, iommu.Wrap(err))
	}
	o := b.newObject(id, "vDEVICE", v.as)
	o.dev = a
	return &VDevice{object: o, virtID: virtID}, nil
}

// NewNested implements iommu.VIOMMU with IOMMU_HWPT_ALLOC over the vIOMMU.
func (v *VIOMMU) NewNested(ctx context.Context, dev iommu.Attachment, s1 iommu.Stage1) (iommu.HWPT, error) {
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	op := fmt.Sprintf("allocate a nested HWPT in vIOMMU %d with %v", v.id, s1)
	a, err := v.attachmentOf(op, dev)
	if err != nil {
		return nil, err
	}
	var data iommufd.HWPTData
	switch s := s1.(type) {
	case iommu.SMMUv3STE:
		data = iommufd.ARMSMMUv3STE(s)
	default:
		return nil, &iommu.UnsupportedError{Feature: fmt.Sprintf("stage-1 data %T", s1), Err: unix.EOPNOTSUPP}
	}
	err = b.opts.step(StepHWPT)
	var id iommufd.ID
	if err == nil {
		id, err = b.fd.HWPTAlloc(a.devID, v.id, iommufd.HWPTOptions{Data: data})
	}
	if err != nil {
		return nil, fmt.Errorf("%s for %s: %w", op, a.dev.BDF, iommu.Wrap(err))
	}
	return &HWPT{b.newObject(id, "nested HWPT", v.as)}, nil
}

// Invalidate implements iommu.VIOMMU with IOMMU_HWPT_INVALIDATE on the
// vIOMMU.
func (v *VIOMMU) Invalidate(ctx context.Context, cmds iommu.Invalidation) (int, error) {
	var entries iommufd.InvalidateEntries
	switch c := cmds.(type) {
	case iommu.SMMUv3Commands:
		entries = iommufd.ARMSMMUv3Invalidations(c)
	default:
		return 0, &iommu.UnsupportedError{Feature: fmt.Sprintf("invalidation commands %T", cmds), Err: unix.EOPNOTSUPP}
	}
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, fmt.Errorf("invalidate through vIOMMU %d: backend %w", v.id, iommu.ErrClosed)
	}
	if err := v.liveLocked("invalidate"); err != nil {
		return 0, err
	}
	n, err := b.fd.Invalidate(v.id, entries)
	if err != nil {
		return int(n), fmt.Errorf("invalidate through vIOMMU %d: command %d of %d: %w", v.id, n, cmds.Len(), iommu.Wrap(err))
	}
	return int(n), nil
}

// NewEventQueue implements iommu.VIOMMU with IOMMU_VEVENTQ_ALLOC.
func (v *VIOMMU) NewEventQueue(ctx context.Context, depth uint32) (iommu.EventQueue, error) {
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	op := fmt.Sprintf("allocate a vEVENTQ of depth %d in vIOMMU %d", depth, v.id)
	if b.closed {
		return nil, fmt.Errorf("%s: backend %w", op, iommu.ErrClosed)
	}
	if err := v.liveLocked(op); err != nil {
		return nil, err
	}
	var (
		typ  iommufd.VEventQType
		size int
	)
	switch v.typ {
	case iommufd.VIOMMUTypeARMSMMUv3:
		typ, size = iommufd.VEventQTypeARMSMMUv3, int(unsafe.Sizeof(uapi.IOMMUVEventARMSMMUv3{}))
	default:
		return nil, &iommu.UnsupportedError{Feature: fmt.Sprintf("event queues of vIOMMU type %d", v.typ), Err: unix.EOPNOTSUPP}
	}
	err := b.opts.step(StepVEventQ)
	var (
		id iommufd.ID
		f  *os.File
	)
	if err == nil {
		id, f, err = b.fd.VEventQAlloc(v.id, typ, depth)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, iommu.Wrap(err))
	}
	o := b.newObject(id, "vEVENTQ", v.as)
	o.file = f
	return &EventQueue{object: o, recordSize: size}, nil
}

// eventWait bounds one poll(2) of an empty queue, so Read sees ctx end.
const eventWait = 50 * time.Millisecond

// Read implements iommu.EventQueue: it reads the vEVENTQ's file (an empty
// queue reads 0 bytes) and, while it is empty, polls it for POLLIN until
// ctx is done.
func (q *EventQueue) Read(ctx context.Context) ([]iommu.Event, error) {
	hdr := int(unsafe.Sizeof(uapi.IOMMUFDVEventHeader{}))
	if q.buf == nil {
		q.buf = make([]byte, 256*(hdr+q.recordSize))
	}
	for {
		q.b.mu.Lock()
		f, closed := q.file, q.b.closed
		q.b.mu.Unlock()
		if f == nil || closed {
			return nil, fmt.Errorf("read vEVENTQ %d: %w", q.id, iommu.ErrClosed)
		}
		n, err := f.Read(q.buf)
		if n > 0 {
			return splitEvents(q.buf[:n], hdr, q.recordSize)
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, unix.EAGAIN) {
			return nil, fmt.Errorf("read vEVENTQ %d: %w", q.id, iommu.Wrap(err))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := pollIn(f, eventWait); err != nil {
			return nil, fmt.Errorf("poll vEVENTQ %d: %w", q.id, err)
		}
	}
}

// pollIn waits up to d for f to be readable.
func pollIn(f *os.File, d time.Duration) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, perr = unix.Poll(fds, int(d/time.Millisecond))
		if errors.Is(perr, unix.EINTR) {
			perr = nil
		}
	})
	return errors.Join(err, perr)
}

// splitEvents splits one read of a vEVENTQ: each entry is a struct
// iommufd_vevent_header (host order), then a record unless the header
// says events were lost.
func splitEvents(b []byte, hdr, rec int) ([]iommu.Event, error) {
	var out []iommu.Event
	for len(b) > 0 {
		if len(b) < hdr {
			return out, fmt.Errorf("vEVENTQ read: %d bytes left, a truncated header", len(b))
		}
		e := iommu.Event{Sequence: binary.NativeEndian.Uint32(b[4:])}
		flags := binary.NativeEndian.Uint32(b)
		b = b[hdr:]
		if flags&uapi.IOMMU_VEVENTQ_FLAG_LOST_EVENTS != 0 {
			e.Lost = true
			out = append(out, e)
			continue
		}
		if len(b) < rec {
			return out, fmt.Errorf("vEVENTQ read: %d bytes left, a truncated %d-byte record", len(b), rec)
		}
		e.Record = append([]byte(nil), b[:rec]...)
		b = b[rec:]
		out = append(out, e)
	}
	return out, nil
}
