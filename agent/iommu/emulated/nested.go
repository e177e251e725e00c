package emulated

import (
	"context"
	"fmt"
	"math"
	"slices"
	"syscall"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// Nesting, as iommufd builds it (drivers/iommu/iommufd/hw_pagetable.c,
// viommu.c, eventq.c) over the SMMUv3 driver's iommufd part
// (arm-smmu-v3-iommufd.c), with the errnos and refcounts of Linux 7.3:
//
//   - a paging HWPT holds its IOAS; a vIOMMU holds its nesting parent; a
//     vDEVICE, a nested HWPT and the vEVENTQ each hold their vIOMMU; an
//     attached device holds its HWPT. IOMMU_DESTROY of a held object is
//     EBUSY and leaves it; of a destroyed one ENOENT.
//   - the VT-d model is Debian 6.12 on QEMU's intel-iommu: paging HWPTs,
//     but NEST_PARENT is EOPNOTSUPP and the vIOMMU ioctl does not exist.
//   - the type1v2 and compat flavours have no HWPT ioctls: ENOTTY, which
//     iommu.Wrap makes ErrNotSupported. Their attachments are the same
//     Go type, so they are Nesters that always say no, as the type1
//     backend's would if it were asked.

// HWPT is a hardware page table: a paging HWPT over an IOAS or a nested
// HWPT over a vIOMMU. It implements iommu.HWPT.
type HWPT struct {
	b         *Backend
	id        uint32
	destroyed bool
	devs      []*Attachment // attached devices

	// Paging HWPTs.
	as        *AddressSpace
	flags     iommu.HWPTFlags
	viommus   []*VIOMMU // on this nesting parent
	walkCache walkCache // the nesting parent's: its VMID tags the stage-1 TLB

	// Nested HWPTs.
	viommu *VIOMMU
	ste    [2]uint64 // the validated vSTE, EATS cleared
}

var _ iommu.HWPT = (*HWPT)(nil)

// ID implements iommu.HWPT.
func (h *HWPT) ID() uint32 { return h.id }

// ioas is where the HWPT's DMA ends: its own IOAS, or its parent's.
func (h *HWPT) ioas() *AddressSpace {
	if h.viommu != nil {
		return h.viommu.parent.as
	}
	return h.as
}

func (h *HWPT) users() int { return len(h.devs) + len(h.viommus) }

// destroyObject is IOMMU_DESTROY for every nesting object, with the
// kernel's order of checks: the backend open (else closed), the object
// live (else ENOENT), nothing using it (busy, when set, says what does:
// EBUSY). b.mu is taken here.
func (b *Backend) destroyObject(kind string, id uint32, destroyed *bool, busy func() string, destroy func()) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return closedErr("destroy " + kind)
	case *destroyed:
		return errnoErr(fmt.Sprintf("destroy %s %d", kind, id), syscall.ENOENT)
	}
	if busy != nil {
		if why := busy(); why != "" {
			return errnoErr(fmt.Sprintf("destroy %s %d: %s", kind, id, why), syscall.EBUSY)
		}
	}
	destroy()
	return nil
}

// Destroy implements iommu.HWPT (IOMMU_DESTROY).
func (h *HWPT) Destroy() error {
	return h.b.destroyObject("hwpt", h.id, &h.destroyed, func() string {
		if h.users() == 0 {
			return ""
		}
		return fmt.Sprintf("%d devices attached, %d vIOMMUs on it", len(h.devs), len(h.viommus))
	}, h.destroy)
}

// destroy frees an unused HWPT.
func (h *HWPT) destroy() {
	b := h.b
	if v := h.viommu; v != nil {
		v.nested = slices.DeleteFunc(v.nested, func(x *HWPT) bool { return x == h })
	} else {
		h.as.hwpts = slices.DeleteFunc(h.as.hwpts, func(x *HWPT) bool { return x == h })
		h.as.dropDomain(h.id)
		h.walkCache.flush(func(walkKey) bool { return true })
	}
	delete(b.objects, h.id)
	h.destroyed = true
}

// teardown detaches the HWPT's devices and destroys what sits on it, then
// the HWPT: closing the IOAS or the iommufd.
func (h *HWPT) teardown() {
	for len(h.devs) > 0 {
		at := h.devs[len(h.devs)-1]
		at.as.detach(at)
	}
	for len(h.viommus) > 0 {
		h.viommus[len(h.viommus)-1].teardown()
	}
	h.destroy()
}

func (h *HWPT) leave(at *Attachment) {
	h.devs = slices.DeleteFunc(h.devs, func(x *Attachment) bool { return x == at })
}

// NewHWPT implements iommu.Nester (IOMMU_HWPT_ALLOC over an IOAS), in
// iommufd_hwpt_alloc's and iommufd_hwpt_paging_alloc's order: the device
// (ENOENT), the IOAS (EINVAL), the flags (EOPNOTSUPP), dirty tracking
// (EOPNOTSUPP without the capability), then the driver: VT-d without
// nesting refuses NEST_PARENT, SMMUv3 NEST_PARENT with DIRTY_TRACKING
// (arm_smmu_domain_alloc_paging_flags), both EOPNOTSUPP.
func (at *Attachment) NewHWPT(ctx context.Context, as iommu.AddressSpace, flags iommu.HWPTFlags) (iommu.HWPT, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := at.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := at.nesting("hwpt alloc"); err != nil {
		return nil, err
	}
	ioas, ok := as.(*AddressSpace)
	if !ok || ioas.b != b || ioas.closed {
		return nil, errnoErr(fmt.Sprintf("hwpt alloc: %v is not an IOAS of this iommufd", as), syscall.EINVAL)
	}
	if flags&^(iommu.NestParent|iommu.DirtyTracking) != 0 {
		return nil, errnoErr(fmt.Sprintf("hwpt alloc: flags %#x", uint32(flags)), syscall.EOPNOTSUPP)
	}
	if flags&iommu.DirtyTracking != 0 && b.noDirty {
		return nil, errnoErr("hwpt alloc: the IOMMU cannot track dirty pages", syscall.EOPNOTSUPP)
	}
	id, err := b.newID("hwpt")
	if err != nil {
		return nil, fmt.Errorf("hwpt alloc: %w", err)
	}
	fail := func(err error) (iommu.HWPT, error) {
		delete(b.objects, id)
		return nil, fmt.Errorf("hwpt alloc: %w", err)
	}
	switch {
	case b.model == VTd && flags&iommu.NestParent != 0:
		// intel_iommu_domain_alloc_paging_flags: no ecap NEST.
		return fail(errnoErr("nesting parent on a VT-d without nesting", syscall.EOPNOTSUPP))
	case b.model == SMMUv3 && flags == iommu.NestParent|iommu.DirtyTracking:
		return fail(errnoErr("a dirty-tracking nesting parent", syscall.EOPNOTSUPP))
	}
	if err := b.step("allocate domain"); err != nil {
		return fail(err)
	}
	last := b.aperture
	if b.model == SMMUv3 && flags&iommu.NestParent != 0 {
		// A nesting parent is a stage-2 domain: its input is an IPA,
		// 44 bits on QEMU's smmuv3 (IDR5.OAS), not the 48-bit VA of
		// the stage-1 domains.
		last = min(last, smmuS2ApertureEnd)
	}
	if err := ioas.addDomain(id, last); err != nil {
		return fail(err)
	}
	h := &HWPT{b: b, id: id, as: ioas, flags: flags}
	ioas.hwpts = append(ioas.hwpts, h)
	return h, nil
}

// nesting checks the attachment can use the HWPT ioctls at all.
func (at *Attachment) nesting(op string) error {
	b := at.b
	switch {
	case b.closed:
		return closedErr(op)
	case b.flavour != iommu.IOMMUFD:
		return errnoErr(op+" on "+string(b.flavour), syscall.ENOTTY)
	case at.as == nil:
		return errnoErr(op+": device "+at.dev.BDF+" not bound", syscall.ENOENT)
	}
	return nil
}

// NewVIOMMU implements iommu.Nester (IOMMU_VIOMMU_ALLOC of type
// ARM_SMMUV3): parent must be a paging HWPT of this iommufd (ENOENT) made
// with NestParent (EINVAL).
func (at *Attachment) NewVIOMMU(ctx context.Context, parent iommu.HWPT) (iommu.VIOMMU, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := at.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := at.nesting("viommu alloc"); err != nil {
		return nil, err
	}
	if b.model != SMMUv3 {
		return nil, &iommu.UnsupportedError{Feature: "vIOMMU (IOMMU_VIOMMU_ALLOC)", MinKernel: "6.13", Err: syscall.ENOTTY}
	}
	p, ok := parent.(*HWPT)
	if !ok || p.b != b || p.destroyed || p.viommu != nil {
		return nil, errnoErr(fmt.Sprintf("viommu alloc: %v is not a paging HWPT of this iommufd", parent), syscall.ENOENT)
	}
	if p.flags&iommu.NestParent == 0 {
		return nil, errnoErr(fmt.Sprintf("viommu alloc: hwpt %d is not a nesting parent", p.id), syscall.EINVAL)
	}
	id, err := b.newID("viommu")
	if err != nil {
		return nil, fmt.Errorf("viommu alloc: %w", err)
	}
	v := &VIOMMU{b: b, id: id, parent: p, vdevs: make(map[uint64]*VDevice)}
	p.viommus = append(p.viommus, v)
	return v, nil
}

// AttachHWPT implements iommu.Nester: IOMMU's replace of the device's
// domain, for every device of its iommu_group as the kernel does. The
// device reserved regions move to the HWPT's IOAS (EADDRINUSE if mapped
// there); a stage-1 nested HWPT needs the device's vDEVICE on its vIOMMU
// (ENOENT, arm_smmu_attach_prepare_vmaster), abort and bypass do not.
func (at *Attachment) AttachHWPT(ctx context.Context, h iommu.HWPT) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := at.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := at.nesting("attach hwpt"); err != nil {
		return err
	}
	hw, ok := h.(*HWPT)
	if !ok || hw.b != b || hw.destroyed {
		return errnoErr(fmt.Sprintf("attach %s: %v is not a HWPT of this iommufd", at.dev.BDF, h), syscall.ENOENT)
	}
	if err := at.replace(nil, hw); err != nil {
		return fmt.Errorf("attach %s to hwpt %d: %w", at.dev.BDF, hw.id, err)
	}
	return nil
}

// replace moves the device's group to h, or to target's automatic HWPT
// when h is nil.
func (at *Attachment) replace(target *AddressSpace, h *HWPT) error {
	b := at.b
	if h != nil {
		target = h.ioas()
	}
	if h == at.hwpt && target == at.as {
		return nil
	}
	var group []*Attachment
	for _, o := range b.bound {
		if o.dev.Group == at.dev.Group {
			group = append(group, o)
		}
	}
	slices.SortFunc(group, func(x, y *Attachment) int { return int(x.id) - int(y.id) })
	for _, g := range group {
		if g.as != target {
			if err := target.resvFree(g.dev.BDF); err != nil {
				return err
			}
		}
	}
	// A replace the driver refuses leaves everything as it was. The
	// kernel does not quite: iommufd_device_do_replace's err_unresv takes
	// the group's reserved regions out of the target IOAS, which within
	// one IOAS is the old one, leaving the interrupt window mappable; the
	// cdev backend puts them back (detach and attach again), and the
	// emulator answers as the interface does.
	vms := make([]*vmaster, len(group))
	if h != nil && h.viommu != nil {
		cfg := steConfig(h.ste)
		for i, g := range group {
			v := g.vdev
			if v == nil || v.viommu != h.viommu {
				if cfg == cfgS1 {
					return errnoErr(fmt.Sprintf("%s has no vDEVICE on viommu %d for a stage-1 nested HWPT", g.dev.BDF, h.viommu.id), syscall.ENOENT)
				}
				continue
			}
			if err := b.step("allocate vmaster"); err != nil {
				return err
			}
			vms[i] = &vmaster{viommu: h.viommu, vsid: v.virtID}
		}
	}
	// Join the new domain before leaving the old, so a move within one
	// IOAS never unmaps it in between.
	if h == nil {
		for range group {
			if err := target.getAuto(); err != nil {
				return err // only the first can fail: it allocates
			}
		}
	} else {
		h.devs = append(h.devs, group...)
	}
	for i, g := range group {
		old := g.as
		if g.hwpt != nil {
			g.hwpt.leave(g)
		} else {
			old.putAuto()
		}
		if old != target {
			old.attached = slices.DeleteFunc(old.attached, func(x *Attachment) bool { return x == g })
			old.reserved = slices.DeleteFunc(old.reserved, func(r resv) bool { return r.owner == g })
			target.attached = append(target.attached, g)
			target.reserveFor(g)
		}
		g.as, g.hwpt, g.vmaster, g.cd = target, h, vms[i], nil
	}
	return nil
}

// VIOMMU is an SMMUv3 vIOMMU over a nesting parent. It implements
// iommu.VIOMMU.
type VIOMMU struct {
	b         *Backend
	id        uint32
	destroyed bool
	parent    *HWPT
	vdevs     map[uint64]*VDevice // by virtual StreamID
	nested    []*HWPT
	evq       *EventQueue
}

var _ iommu.VIOMMU = (*VIOMMU)(nil)

// ID implements iommu.VIOMMU.
func (v *VIOMMU) ID() uint32 { return v.id }

func (v *VIOMMU) users() int {
	n := len(v.vdevs) + len(v.nested)
	if v.evq != nil {
		n++
	}
	return n
}

// Destroy implements iommu.VIOMMU (IOMMU_DESTROY).
func (v *VIOMMU) Destroy() error {
	return v.b.destroyObject("viommu", v.id, &v.destroyed, func() string {
		if v.users() == 0 {
			return ""
		}
		return fmt.Sprintf("%d vDEVICEs, %d nested HWPTs, event queue %v", len(v.vdevs), len(v.nested), v.evq != nil)
	}, v.destroy)
}

func (v *VIOMMU) destroy() {
	p := v.parent
	p.viommus = slices.DeleteFunc(p.viommus, func(x *VIOMMU) bool { return x == v })
	delete(v.b.objects, v.id)
	v.destroyed = true
}

// teardown destroys everything on the vIOMMU, then the vIOMMU.
func (v *VIOMMU) teardown() {
	for len(v.nested) > 0 {
		v.nested[len(v.nested)-1].teardown()
	}
	if v.evq != nil {
		v.evq.destroy()
	}
	for _, vd := range v.vdevs {
		vd.destroy()
	}
	v.destroy()
}

// lookup returns the live vIOMMU or ENOENT.
func (v *VIOMMU) usable(op string) error {
	switch {
	case v.b.closed:
		return closedErr(op)
	case v.destroyed:
		return errnoErr(fmt.Sprintf("%s: viommu %d destroyed", op, v.id), syscall.ENOENT)
	}
	return nil
}

// boundAttachment returns dev as one of this iommufd's bound devices.
func (b *Backend) boundAttachment(op string, dev iommu.Attachment) (*Attachment, error) {
	at, ok := dev.(*Attachment)
	if !ok || at.b != b || at.as == nil {
		return nil, errnoErr(fmt.Sprintf("%s: %v is not a device bound to this iommufd", op, dev), syscall.ENOENT)
	}
	return at, nil
}

// NewVDevice implements iommu.VIOMMU (IOMMU_VDEVICE_ALLOC), in
// iommufd_vdevice_alloc_ioctl's order: the vIOMMU and the device
// (ENOENT), a vDEVICE the device already has, here or on another vIOMMU
// (EEXIST), the object, then the virtual ID taken (EEXIST). The device
// need not be attached to anything.
func (v *VIOMMU) NewVDevice(ctx context.Context, dev iommu.Attachment, virtID uint64) (iommu.VDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := v.usable("vdevice alloc"); err != nil {
		return nil, err
	}
	at, err := b.boundAttachment("vdevice alloc", dev)
	if err != nil {
		return nil, err
	}
	if at.vdev != nil {
		return nil, errnoErr(fmt.Sprintf("vdevice alloc: %s already has vDEVICE %d", at.dev.BDF, at.vdev.id), syscall.EEXIST)
	}
	id, err := b.newID("vdevice")
	if err != nil {
		return nil, fmt.Errorf("vdevice alloc: %w", err)
	}
	if err := b.step("insert virtual ID"); err != nil {
		delete(b.objects, id)
		return nil, fmt.Errorf("vdevice alloc: %w", err)
	}
	if _, taken := v.vdevs[virtID]; taken {
		delete(b.objects, id)
		return nil, errnoErr(fmt.Sprintf("vdevice alloc: virtual ID %#x taken on viommu %d", virtID, v.id), syscall.EEXIST)
	}
	vd := &VDevice{b: b, id: id, viommu: v, at: at, virtID: virtID}
	v.vdevs[virtID] = vd
	at.vdev = vd
	return vd, nil
}

// NewNested implements iommu.VIOMMU (IOMMU_HWPT_ALLOC over the vIOMMU)
// with an SMMUv3 vSTE, validated as arm_smmu_validate_vste does: a vSTE
// without V is zeroed (an abort STE); bits outside
// STRTAB_STE_0/1_NESTING_ALLOWED, a Config other than abort, bypass or
// stage 1, or an EATS other than 0 or 1 are EIO.
func (v *VIOMMU) NewNested(ctx context.Context, dev iommu.Attachment, s1 iommu.Stage1) (iommu.HWPT, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, closedErr("nested hwpt alloc")
	}
	if _, err := b.boundAttachment("nested hwpt alloc", dev); err != nil {
		return nil, err
	}
	if v.destroyed {
		// The kernel answers EINVAL for a pt_id that names nothing
		// (iommufd_hwpt_alloc), but it reuses IDs, so the cdev backend
		// refuses a destroyed vIOMMU itself, ENOENT as for every other
		// destroyed object; the emulator answers as the interface does.
		return nil, errnoErr(fmt.Sprintf("nested hwpt alloc: viommu %d destroyed", v.id), syscall.ENOENT)
	}
	id, err := b.newID("hwpt")
	if err != nil {
		return nil, fmt.Errorf("nested hwpt alloc: %w", err)
	}
	fail := func(err error) (iommu.HWPT, error) {
		delete(b.objects, id)
		return nil, fmt.Errorf("nested hwpt alloc: %w", err)
	}
	ste, ok := s1.(iommu.SMMUv3STE)
	if !ok {
		// iommu_copy_struct_from_user: another driver's data type.
		return fail(errnoErr(fmt.Sprintf("stage-1 data %v is not an SMMUv3 vSTE", s1), syscall.EINVAL))
	}
	words, err := validateVSTE(ste)
	if err != nil {
		return fail(err)
	}
	if err := b.step("allocate nested domain"); err != nil {
		return fail(err)
	}
	h := &HWPT{b: b, id: id, viommu: v, ste: words}
	v.nested = append(v.nested, h)
	return h, nil
}

// NewEventQueue implements iommu.VIOMMU (IOMMU_VEVENTQ_ALLOC of type
// ARM_SMMUV3): depth 0 or above 2^19 is EINVAL (checked before the
// vIOMMU), a second queue EEXIST.
func (v *VIOMMU) NewEventQueue(ctx context.Context, depth uint32) (iommu.EventQueue, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, closedErr("veventq alloc")
	}
	if depth == 0 || depth > veventqMaxDepth {
		return nil, errnoErr(fmt.Sprintf("veventq alloc: depth %d", depth), syscall.EINVAL)
	}
	if err := v.usable("veventq alloc"); err != nil {
		return nil, err
	}
	if v.evq != nil {
		return nil, errnoErr(fmt.Sprintf("veventq alloc: viommu %d has one", v.id), syscall.EEXIST)
	}
	id, err := b.newID("veventq")
	if err != nil {
		return nil, fmt.Errorf("veventq alloc: %w", err)
	}
	if err := b.step("get unused fd"); err != nil {
		delete(b.objects, id)
		return nil, fmt.Errorf("veventq alloc: %w", err)
	}
	q := &EventQueue{b: b, id: id, viommu: v, depth: depth}
	v.evq = q
	return q, nil
}

// veventqMaxDepth is VEVENTQ_MAX_DEPTH.
const veventqMaxDepth = 1 << 19

// VDevice is a device's virtual StreamID on a vIOMMU. It implements
// iommu.VDevice.
type VDevice struct {
	b      *Backend
	id     uint32
	viommu *VIOMMU
	at     *Attachment
	virtID uint64
	// destroyed by IOMMU_DESTROY, the vIOMMU's teardown or the device's
	// unbind (the kernel's tombstone: IOMMU_DESTROY is ENOENT after it).
	destroyed bool
}

var _ iommu.VDevice = (*VDevice)(nil)

// VirtID implements iommu.VDevice.
func (vd *VDevice) VirtID() uint64 { return vd.virtID }

// ID is the object ID.
func (vd *VDevice) ID() uint32 { return vd.id }

// Destroy implements iommu.VDevice (IOMMU_DESTROY). Nothing holds a
// vDEVICE: it goes even while its device is attached to a stage-1 nested
// HWPT, whose events keep the virtual StreamID the attach saw, while
// CFGI_CD for it becomes EIO.
func (vd *VDevice) Destroy() error {
	return vd.b.destroyObject("vdevice", vd.id, &vd.destroyed, nil, vd.destroy)
}

// destroy takes the vDEVICE out of its vIOMMU and its device.
func (vd *VDevice) destroy() {
	if vd.destroyed {
		return
	}
	delete(vd.viommu.vdevs, vd.virtID)
	if vd.at.vdev == vd {
		vd.at.vdev = nil
	}
	delete(vd.b.objects, vd.id)
	vd.destroyed = true
}

// EventQueue is a vIOMMU's vEVENTQ. It implements iommu.EventQueue.
type EventQueue struct {
	b         *Backend
	id        uint32
	viommu    *VIOMMU
	destroyed bool
	depth     uint32
	entries   []iommu.Event
	nevents   uint32 // entries that are events, not the lost-events header
	seq       uint32
	wake      chan struct{} // closed when entries arrive or the queue goes
}

var _ iommu.EventQueue = (*EventQueue)(nil)

// ID is the object ID.
func (q *EventQueue) ID() uint32 { return q.id }

// report queues rec as iommufd_viommu_report_event does: past depth the
// event is dropped and the lost-events header, with the next sequence
// number, takes the tail; a new event replaces a header still at the
// tail (the gap in the sequence says what was lost).
func (q *EventQueue) report(rec []byte) {
	if n := len(q.entries); n > 0 && q.entries[n-1].Lost {
		q.entries = q.entries[:n-1]
	}
	e := iommu.Event{Lost: true}
	if q.nevents < q.depth {
		e = iommu.Event{Record: rec}
		q.nevents++
	}
	e.Sequence = q.seq
	q.seq = (q.seq + 1) & math.MaxInt32
	q.entries = append(q.entries, e)
	q.signal()
}

func (q *EventQueue) signal() {
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
}

// Read implements iommu.EventQueue.
func (q *EventQueue) Read(ctx context.Context) ([]iommu.Event, error) {
	b := q.b
	for {
		b.mu.Lock()
		if b.closed || q.destroyed {
			b.mu.Unlock()
			return nil, closedErr("read veventq")
		}
		if len(q.entries) > 0 {
			out := q.entries
			q.entries, q.nevents = nil, 0
			b.mu.Unlock()
			return out, nil
		}
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		wake := q.wake
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Destroy implements iommu.EventQueue: the file and the object go.
func (q *EventQueue) Destroy() error {
	return q.b.destroyObject("veventq", q.id, &q.destroyed, nil, q.destroy)
}

func (q *EventQueue) destroy() {
	q.viommu.evq = nil
	q.entries = nil
	delete(q.b.objects, q.id)
	q.destroyed = true
	q.signal()
}

// vmaster is what the SMMU driver knows of a device attached to a nested
// HWPT with a vDEVICE: the vIOMMU to report its events to and under which
// virtual StreamID.
type vmaster struct {
	viommu *VIOMMU
	vsid   uint64
}
