package emulated

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
	"github.com/iommu-agent/iommu-agent/ioctl/smmuv3"
)

// The layout of hwtests/nested_test.go: one buffer mapped at nestBase
// holds the CD (page 0), two table sets (pages 1-3 and 4-6) and the data
// pages (8-15); a decoy mapped at the VAs themselves catches a stage 1
// that is not walked.
const (
	nestBase  = 0x1000000
	nestPages = 16
	nestVA    = 0x200000
	nestASID  = 1
	nestUnIPA = 0x3000000 // an IPA the IOAS does not map
	virtSID   = 8
)

// vSTE words as the guest test writes them.
var (
	vsteAbort  = iommu.SMMUv3STE{1, 0}
	vsteBypass = iommu.SMMUv3STE{1 | 4<<1, 0}
)

type nestedSetup struct {
	b      *Backend
	as     *AddressSpace
	at     *Attachment
	parent iommu.HWPT
	viommu iommu.VIOMMU
	vdev   iommu.VDevice
	evq    iommu.EventQueue
	hwpt   iommu.HWPT // the stage-1 nested HWPT the device is attached to
	mem    []byte
	decoy  []byte
	tables *smmuv3.Tables
}

func (n *nestedSetup) data(i int) ([]byte, uint64) {
	off := (8 + i) * pageSize
	return n.mem[off : off+pageSize], nestBase + uint64(off)
}

func smmuBackend(t testing.TB) *Backend {
	return newBackend(t, Options{IOMMU: SMMUv3, NoDirtyTracking: true})
}

// newNested builds the guest test's setup: everything up to a device
// attached to a stage-1 nested HWPT over tables that map nothing yet.
func newNested(t testing.TB, b *Backend) *nestedSetup {
	t.Helper()
	n, err := buildNested(b, mem(t, nestPages*pageSize, pageSize), mem(t, 8*pageSize, pageSize))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// buildNested is newNested's steps, stopping at the first error (the
// fail-nth sweep injects one in each).
func buildNested(b *Backend, buf, decoy []byte) (*nestedSetup, error) {
	return buildNestedSteps(b, buf, decoy, func(_ string, op func() error) error { return op() })
}

// buildNestedSteps is buildNested with each backend call made through
// run.
func buildNestedSteps(b *Backend, buf, decoy []byte, run func(name string, op func() error) error) (*nestedSetup, error) {
	ctx := context.Background()
	n := &nestedSetup{b: b, mem: buf, decoy: decoy}
	var err error
	if n.tables, err = smmuv3.NewTables(n.mem[pageSize:4*pageSize], nestBase+pageSize, 39); err != nil {
		return n, err
	}
	if err := n.writeCD(nestASID, n.tables); err != nil {
		return n, err
	}
	ste, err := smmuv3.VSTE(smmuv3.ConfigS1Trans, nestBase)
	if err != nil {
		return n, err
	}
	steps := []struct {
		name string
		op   func() error
	}{
		{"ioas alloc", func() (e error) { n.as, e = b.NewIOAS(ctx); return }},
		{"map the layout", func() error { _, e := n.as.Map(ctx, fixed(n.mem, nestBase)); return e }},
		{"map the decoy", func() error { _, e := n.as.Map(ctx, fixed(n.decoy, nestVA)); return e }},
		{"attach", func() (e error) { n.at, e = n.as.AttachDevice(ctx, eduA); return }},
		{"nesting parent", func() (e error) { n.parent, e = n.at.NewHWPT(ctx, n.as, iommu.NestParent); return }},
		{"vIOMMU", func() (e error) { n.viommu, e = n.at.NewVIOMMU(ctx, n.parent); return }},
		{"vDEVICE", func() (e error) { n.vdev, e = n.viommu.NewVDevice(ctx, n.at, virtSID); return }},
		{"vEVENTQ", func() (e error) { n.evq, e = n.viommu.NewEventQueue(ctx, 64); return }},
		{"nested HWPT", func() (e error) { n.hwpt, e = n.viommu.NewNested(ctx, n.at, iommu.SMMUv3STE(ste)); return }},
		{"attach to the nested HWPT", func() error { return n.at.AttachHWPT(ctx, n.hwpt) }},
	}
	for _, s := range steps {
		if err := run(s.name, s.op); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (n *nestedSetup) writeCD(asid uint16, tables *smmuv3.Tables) error {
	cd, err := smmuv3.CD{ASID: asid, TTB0: tables.Root(), T0SZ: tables.T0SZ(), IPS: 2, MAIR: 0xff}.Words()
	if err != nil {
		return err
	}
	for i, w := range cd {
		binary.LittleEndian.PutUint64(n.mem[8*i:], w)
	}
	return nil
}

func (n *nestedSetup) invalidate(t *testing.T, cmds ...[2]uint64) {
	t.Helper()
	done, err := n.viommu.Invalidate(context.Background(), iommu.SMMUv3Commands(cmds))
	if err != nil || done != len(cmds) {
		t.Fatalf("invalidate %#x: %d handled, %v", cmds, done, err)
	}
}

// events reads what the queue holds now.
func (n *nestedSetup) events(t *testing.T) []smmuv3.VEvent {
	t.Helper()
	return readEvents(t, n.evq)
}

func readEvents(t *testing.T, q iommu.EventQueue) []smmuv3.VEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	evs, err := q.Read(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatalf("read vEVENTQ: %v", err)
	}
	var out []smmuv3.VEvent
	for _, e := range evs {
		v := smmuv3.VEvent{Sequence: e.Sequence}
		if e.Lost {
			v.Flags = 1
		} else {
			d, err := smmuv3.DecodeEvent(e.Record)
			if err != nil {
				t.Fatal(err)
			}
			v.Event = d
		}
		out = append(out, v)
	}
	return out
}

// dmaLands has the device write its buffer (holding want) to va and
// checks it landed in hit and not in miss.
func (n *nestedSetup) dmaLands(t *testing.T, va uint64, want, hit, miss []byte, when string) {
	t.Helper()
	clear(hit)
	clear(miss)
	if err := n.at.DMA().WriteToRAM(va, 0, pageSize); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if !bytes.Equal(hit, want) || bytes.Equal(miss, want) {
		t.Fatalf("%s: the DMA to VA %#x did not land where expected (hit %v, miss written %v)", when, va, bytes.Equal(hit, want), bytes.Equal(miss, want))
	}
}

func fillPattern(p []byte, seed byte) []byte {
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return bytes.Clone(p)
}

func checkEvent(t *testing.T, evs []smmuv3.VEvent, id uint8, va uint64, read bool) {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("%d vEVENTs (%v), want one for VA %#x", len(evs), evs, va)
	}
	e := evs[0].Event
	if evs[0].Flags != 0 || e.ID != id || e.SID != virtSID || e.Stage2 || e.Addr != va || e.Read != read {
		t.Errorf("vEVENT %v, want event %#x for VA %#x from vSID %d in stage 1 (read %v)", e, id, va, virtSID, read)
	}
}

// TestNestingHWInfo: the SMMUv3 model reports QEMU's smmuv3 registers and
// reserves Linux's software MSI window.
func TestNestingHWInfo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	as := newSpace(t, b)
	at := attach(t, as, eduA)
	info, err := at.HWInfo(ctx)
	if err != nil || info.Type != "arm-smmuv3" {
		t.Fatalf("HWInfo: %+v, %v", info, err)
	}
	s, err := hwinfo.DecodeSMMUv3(info.Data)
	if err != nil {
		t.Fatal(err)
	}
	i0, i1, i3, i5 := s.IDR0(), s.IDR1(), s.IDR3(), s.IDR5()
	if !i0.S1P() || !i0.S2P() || !i0.ASID16() || i0.ATS() || i1.SSIDSIZE() != 0 || !i3.RIL() || i3.FWB() || i5.OAS() != smmuOASBits || i5.DS() {
		t.Errorf("not QEMU's smmuv3: %v", s)
	}
	ranges, _, err := as.Ranges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		if r.Contains(smmuMSIStart, 1) || r.Contains(smmuMSILast, 1) {
			t.Errorf("the SMMUv3 MSI window is usable: %v", ranges)
		}
	}
}

// TestNestingVTd: the VT-d model is Debian 6.12 on QEMU's intel-iommu
// (hwtests/nesting_test.go pinNoNesting): plain paging HWPTs work, a
// nesting parent is EOPNOTSUPP, there is no vIOMMU ioctl; the legacy
// flavours have no HWPT ioctls at all.
func TestNestingVTd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{NoDirtyTracking: true})
	as := newSpace(t, b)
	p := mem(t, 2*pageSize, pageSize)
	mustMap(t, as, fixed(p, 0x100000))
	at := attach(t, as, eduA)
	// intel_iommu_domain_alloc_paging_flags: no ecap NEST.
	_, err := at.NewHWPT(ctx, as, iommu.NestParent)
	checkErr(t, "VT-d NEST_PARENT", err, syscall.EOPNOTSUPP)
	// iommufd_hwpt_paging_alloc: no IOMMU_CAP_DIRTY_TRACKING.
	_, err = at.NewHWPT(ctx, as, iommu.DirtyTracking)
	checkErr(t, "VT-d DIRTY_TRACKING without the capability", err, syscall.EOPNOTSUPP)
	h, err := at.NewHWPT(ctx, as, 0)
	if err != nil {
		t.Fatalf("paging HWPT: %v", err)
	}
	_, err = at.NewVIOMMU(ctx, h)
	var ue *iommu.UnsupportedError
	if !errors.As(err, &ue) || ue.MinKernel != "6.13" || !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("VIOMMU_ALLOC on 6.12: %v, want unsupported (6.13)", err)
	}
	if err := at.AttachHWPT(ctx, h); err != nil {
		t.Fatalf("attach to the paging HWPT: %v", err)
	}
	copy(p, "through the paging HWPT")
	if err := at.DMA().ReadFromRAM(0x100000, 0, 23); err != nil || string(at.DMA().Buffer()[:23]) != "through the paging HWPT" {
		t.Errorf("DMA through the paging HWPT: %v", err)
	}
	checkErr(t, "destroy the attached paging HWPT", h.Destroy(), syscall.EBUSY)
	checkErr(t, "destroy the IOAS under a HWPT", as.Destroy(), syscall.EBUSY)
	// Attaching to the IOAS moves the device back to its automatic HWPT.
	if back, err := as.AttachDevice(ctx, eduA); err != nil || back != at {
		t.Fatalf("back to the IOAS: %v, %v", back, err)
	}
	checkErr(t, "destroy the unused paging HWPT", h.Destroy(), 0)
	checkErr(t, "destroy it again", h.Destroy(), syscall.ENOENT)
	if err := at.DMA().ReadFromRAM(0x100000, 0, 8); err != nil {
		t.Errorf("DMA through the automatic HWPT: %v", err)
	}
	at.Detach(ctx)
	as.Close()
	if b.Objects() != 0 || b.Pinned() != 0 {
		t.Errorf("%d objects, %d pinned after the teardown", b.Objects(), b.Pinned())
	}

	for _, f := range []iommu.Flavour{iommu.Type1v2, iommu.Compat} {
		b := newBackend(t, Options{Flavour: f, IOMMU: SMMUv3})
		as := newSpace(t, b)
		at := attach(t, as, eduA)
		var n iommu.Nester = at
		_, err := n.NewHWPT(ctx, as, 0)
		checkErr(t, string(f)+" HWPT alloc", err, syscall.ENOTTY)
		if !errors.Is(err, iommu.ErrNotSupported) {
			t.Errorf("%s: %v is not ErrNotSupported", f, err)
		}
		checkErr(t, string(f)+" attach HWPT", n.AttachHWPT(ctx, nil), syscall.ENOTTY)
	}
}

// TestNestingObjects follows the guest's TestNestingObjects: the objects,
// a bypass vSTE (stage 2 alone), an abort vSTE (nothing lands, no event),
// then the teardown in the kernel's order.
func TestNestingObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	as := newSpace(t, b)
	p := mem(t, 2*pageSize, pageSize)
	mustMap(t, as, fixed(p, 0x100000))
	at := attach(t, as, eduA)
	other := attach(t, as, eduB)
	parent, err := at.NewHWPT(ctx, as, iommu.NestParent)
	if err != nil {
		t.Fatal(err)
	}
	if err := at.AttachHWPT(ctx, parent); err != nil {
		t.Fatal(err)
	}
	roundTrip := func(when string) {
		t.Helper()
		want := fillPattern(p[:pageSize], byte(len(when)))
		clear(p[pageSize:])
		dma := at.DMA()
		if err := dma.ReadFromRAM(0x100000, 0, pageSize); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if err := dma.WriteToRAM(0x101000, 0, pageSize); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if !bytes.Equal(p[pageSize:], want) {
			t.Fatalf("%s: the round trip did not land", when)
		}
	}
	roundTrip("nesting parent")

	v, err := at.NewVIOMMU(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	vd, err := v.NewVDevice(ctx, at, virtSID)
	if err != nil {
		t.Fatal(err)
	}
	// iommufd_vdevice_alloc_ioctl: idev->vdev is set (EEXIST), and
	// xa_insert of a taken virtual ID (EBUSY, returned as EEXIST).
	_, err = v.NewVDevice(ctx, at, virtSID+1)
	checkErr(t, "a second vDEVICE for the device", err, syscall.EEXIST)
	_, err = v.NewVDevice(ctx, other, virtSID)
	checkErr(t, "another device's vDEVICE with a taken virtual ID", err, syscall.EEXIST)
	q, err := v.NewEventQueue(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	// iommufd_veventq_alloc: one per type (EEXIST), depth 1..2^19 (EINVAL).
	_, err = v.NewEventQueue(ctx, 16)
	checkErr(t, "a second vEVENTQ", err, syscall.EEXIST)
	for _, d := range []uint32{0, 1<<19 + 1} {
		_, err = v.NewEventQueue(ctx, d)
		checkErr(t, fmt.Sprintf("vEVENTQ of depth %d", d), err, syscall.EINVAL)
	}
	bypass, err := v.NewNested(ctx, at, vsteBypass)
	if err != nil {
		t.Fatal(err)
	}
	abort, err := v.NewNested(ctx, at, vsteAbort)
	if err != nil {
		t.Fatal(err)
	}
	// arm_smmu_validate_vste: a reserved Config is EIO.
	_, err = v.NewNested(ctx, at, iommu.SMMUv3STE{1 | 7<<1, 0})
	checkErr(t, "a vSTE with Config 0b111", err, syscall.EIO)

	if err := at.AttachHWPT(ctx, bypass); err != nil {
		t.Fatal(err)
	}
	roundTrip("bypass vSTE")
	if err := at.AttachHWPT(ctx, abort); err != nil {
		t.Fatal(err)
	}
	faults := len(b.Faults())
	fillPattern(at.DMA().Buffer(), 0xa5)
	clear(p[pageSize:])
	var f *Fault
	if err := at.DMA().WriteToRAM(0x101000, 0, pageSize); !errors.As(err, &f) {
		t.Errorf("DMA under an abort vSTE: %v, want a fault", err)
	}
	if !bytes.Equal(p[pageSize:], make([]byte, pageSize)) {
		t.Error("DMA under an abort vSTE reached memory")
	}
	if evs := readEvents(t, q); len(evs) != 0 || len(b.Faults()) != faults {
		t.Errorf("an abort STE reported %v, host faults %v", evs, b.Faults()[faults:])
	}

	if err := at.AttachHWPT(ctx, parent); err != nil {
		t.Fatal(err)
	}
	roundTrip("back on the parent")
	checkErr(t, "destroy the vIOMMU while its nested HWPTs live", v.Destroy(), syscall.EBUSY)
	checkErr(t, "destroy the parent while the vIOMMU lives", parent.Destroy(), syscall.EBUSY)
	for _, h := range []iommu.HWPT{bypass, abort} {
		checkErr(t, "destroy a nested HWPT", h.Destroy(), 0)
	}
	checkErr(t, "destroy the vEVENTQ", q.Destroy(), 0)
	checkErr(t, "destroy the vDEVICE", vd.Destroy(), 0)
	checkErr(t, "destroy the vIOMMU", v.Destroy(), 0)
	checkErr(t, "destroy the vIOMMU again", v.Destroy(), syscall.ENOENT)
	at.Detach(ctx)
	checkErr(t, "destroy the parent", parent.Destroy(), 0)
	other.Detach(ctx)
	if _, err := as.Unmap(ctx, 0x100000, 2*pageSize); err != nil {
		t.Error(err)
	}
	checkErr(t, "destroy the IOAS", as.Destroy(), 0)
	if b.Objects() != 0 || b.Pinned() != 0 {
		t.Errorf("%d objects, %d pinned after the teardown", b.Objects(), b.Pinned())
	}
}

// TestNestingErrnos: each misuse with the errno the kernel gives it, in
// the kernel's order of checks.
func TestNestingErrnos(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	as := newSpace(t, b)
	at := attach(t, as, eduA)
	other := newBackend(t, Options{IOMMU: SMMUv3})
	otherAt := attach(t, newSpace(t, other), eduA)
	plain, err := at.NewHWPT(ctx, as, 0)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := at.NewHWPT(ctx, as, iommu.NestParent)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := otherAt.NewHWPT(ctx, otherAt.as, iommu.NestParent)
	if err != nil {
		t.Fatal(err)
	}
	v, err := at.NewVIOMMU(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := smmuv3.VSTE(smmuv3.ConfigS1Trans, nestBase)
	nested, err := v.NewNested(ctx, at, iommu.SMMUv3STE(s1))
	if err != nil {
		t.Fatal(err)
	}
	gone, _ := at.NewHWPT(ctx, as, 0)
	gone.Destroy()
	type stage1 struct{ iommu.SMMUv3STE }

	for _, c := range []struct {
		what string
		err  func() error
		want syscall.Errno
	}{
		// hw_pagetable.c iommufd_hwpt_paging_alloc: flags beyond
		// NEST_PARENT, DIRTY_TRACKING, FAULT_ID_VALID and PASID.
		{"HWPT flags 1<<7", func() error { _, e := at.NewHWPT(ctx, as, 1<<7); return e }, syscall.EOPNOTSUPP},
		// iommufd_hwpt_paging_alloc: DIRTY_TRACKING without
		// IOMMU_CAP_DIRTY_TRACKING (QEMU's smmuv3 has no HTTU).
		{"dirty tracking without HTTU", func() error { _, e := at.NewHWPT(ctx, as, iommu.DirtyTracking); return e }, syscall.EOPNOTSUPP},
		// iommufd_hwpt_alloc: a pt_id that is no object is EINVAL.
		{"HWPT over a foreign IOAS", func() error { _, e := at.NewHWPT(ctx, otherAt.as, 0); return e }, syscall.EINVAL},
		// viommu.c iommufd_viommu_alloc_ioctl: iommufd_get_hwpt_paging
		// of a nested HWPT or a destroyed one is ENOENT; a paging HWPT
		// that is not a nesting parent EINVAL.
		{"vIOMMU over a plain paging HWPT", func() error { _, e := at.NewVIOMMU(ctx, plain); return e }, syscall.EINVAL},
		{"vIOMMU over a nested HWPT", func() error { _, e := at.NewVIOMMU(ctx, nested); return e }, syscall.ENOENT},
		{"vIOMMU over a destroyed HWPT", func() error { _, e := at.NewVIOMMU(ctx, gone); return e }, syscall.ENOENT},
		{"vIOMMU over another iommufd's parent", func() error { _, e := at.NewVIOMMU(ctx, foreign); return e }, syscall.ENOENT},
		// viommu.c iommufd_vdevice_alloc_ioctl: another iommufd's
		// device is not found.
		{"vDEVICE for a foreign device", func() error { _, e := v.NewVDevice(ctx, otherAt, 1); return e }, syscall.ENOENT},
		// iommu_copy_struct_from_user: another driver's data type.
		{"nested HWPT with foreign stage-1 data", func() error { _, e := v.NewNested(ctx, at, stage1{}); return e }, syscall.EINVAL},
		// arm-smmu-v3-iommufd.c arm_smmu_validate_vste, EIO for invalid
		// STE data: bits outside the NESTING_ALLOWED masks, Config, EATS.
		{"vSTE word 0 bit 56 (between S1ContextPtr and S1CDMax)", func() error {
			_, e := v.NewNested(ctx, at, iommu.SMMUv3STE{1 | 5<<1 | 1<<56, 0})
			return e
		}, syscall.EIO},
		{"vSTE word 1 bit 8 (S1CSH+2)", func() error { _, e := v.NewNested(ctx, at, iommu.SMMUv3STE{1 | 4<<1, 1 << 8}); return e }, syscall.EIO},
		{"vSTE Config 6 (stage 2)", func() error { _, e := v.NewNested(ctx, at, iommu.SMMUv3STE{1 | 6<<1, 0}); return e }, syscall.EIO},
		{"vSTE Config 1 (reserved)", func() error { _, e := v.NewNested(ctx, at, iommu.SMMUv3STE{1 | 1<<1, 0}); return e }, syscall.EIO},
		{"vSTE EATS 2 (split-stage ATS)", func() error { _, e := v.NewNested(ctx, at, iommu.SMMUv3STE{1 | 5<<1, 2 << 28}); return e }, syscall.EIO},
		// A vSTE without V is zeroed whatever else it says: an abort.
		{"vSTE without V and junk", func() error { _, e := v.NewNested(ctx, at, iommu.SMMUv3STE{0xfe, 0xffff}); return e }, 0},
		{"vSTE stage 1, EATS 1, S1DSS, S1STALLD", func() error {
			_, e := v.NewNested(ctx, at, iommu.SMMUv3STE{s1[0], s1[1] | 1<<28 | 2 | 1<<27})
			return e
		}, 0},
		// arm_vsmmu_attach_prepare (iommufd_viommu_get_vdev_id): a
		// stage-1 nested HWPT needs the device's vDEVICE.
		{"attach stage 1 without a vDEVICE", func() error { return at.AttachHWPT(ctx, nested) }, syscall.ENOENT},
		// The pt_id names no HWPT.
		{"attach a destroyed HWPT", func() error { return at.AttachHWPT(ctx, gone) }, syscall.ENOENT},
		{"attach another iommufd's HWPT", func() error { return at.AttachHWPT(ctx, foreign) }, syscall.ENOENT},
		{"destroy a HWPT twice", gone.Destroy, syscall.ENOENT},
		{"destroy the parent under a vIOMMU", parent.Destroy, syscall.EBUSY},
		{"destroy the vIOMMU under a nested HWPT", v.Destroy, syscall.EBUSY},
		{"destroy the IOAS under HWPTs", as.Destroy, syscall.EBUSY},
	} {
		checkErr(t, c.what, c.err(), c.want)
	}

	// Abort and bypass attach without a vDEVICE (the GBPA case); the
	// stage-1 HWPT once the vDEVICE exists.
	for _, ste := range []iommu.SMMUv3STE{vsteAbort, vsteBypass} {
		h, err := v.NewNested(ctx, at, ste)
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, fmt.Sprintf("attach %v without a vDEVICE", ste), at.AttachHWPT(ctx, h), 0)
		checkErr(t, "destroy the attached nested HWPT", h.Destroy(), syscall.EBUSY)
	}
	vd, err := v.NewVDevice(ctx, at, virtSID)
	if err != nil {
		t.Fatal(err)
	}
	checkErr(t, "attach stage 1 with a vDEVICE", at.AttachHWPT(ctx, nested), 0)
	// iommufd_vdevice_destroy: nothing holds a vDEVICE.
	checkErr(t, "destroy the vDEVICE of an attached device", vd.Destroy(), 0)
	checkErr(t, "destroy it again", vd.Destroy(), syscall.ENOENT)
	_, err = v.Invalidate(ctx, iommu.SMMUv3Commands{cfgiCD(t, virtSID)})
	checkErr(t, "CFGI_CD for the destroyed vDEVICE's vSID", err, syscall.EIO)

	// A destroyed vIOMMU: its pt_id is no object (EINVAL for
	// HWPT_ALLOC), not found for the others.
	at.Detach(ctx)
	v2, err := at.NewVIOMMU(ctx, parent)
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("vIOMMU for a detached device: %v, %v", v2, err)
	}
	at = attach(t, as, eduA)
	vv, err := at.NewVIOMMU(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	vv.Destroy()
	_, err = vv.NewNested(ctx, at, vsteAbort)
	checkErr(t, "nested HWPT over a destroyed vIOMMU (cdev's answer; the kernel's would be EINVAL)", err, syscall.ENOENT)
	_, err = vv.NewVDevice(ctx, at, 1)
	checkErr(t, "vDEVICE on a destroyed vIOMMU", err, syscall.ENOENT)
	_, err = vv.NewEventQueue(ctx, 1)
	checkErr(t, "vEVENTQ on a destroyed vIOMMU", err, syscall.ENOENT)
	_, err = vv.Invalidate(ctx, iommu.SMMUv3Commands{})
	checkErr(t, "invalidate on a destroyed vIOMMU", err, syscall.ENOENT)
}

func cfgiCD(t testing.TB, vsid uint32) [2]uint64 {
	c, err := smmuv3.CFGICD(vsid, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNestedStage1 follows the guest's TestNestedStage1 on the emulated
// SMMUv3, with what QEMU's smmuv3 was seen to do: walks cached until
// TLBI_NH_ASID or TLBI_NH_VA, the CD until CFGI_CD, stage-1 faults
// forwarded with the VA and the vSID, a stage-2 fault the host's.
func TestNestedStage1(t *testing.T) {
	t.Parallel()
	b := smmuBackend(t)
	n := newNested(t, b)
	src, srcIPA := n.data(0)
	dst, dstIPA := n.data(1)
	other, otherIPA := n.data(2)
	ro, roIPA := n.data(3)
	for _, m := range []struct {
		va, ipa uint64
		perm    smmuv3.Perm
	}{
		{nestVA, srcIPA, smmuv3.Read | smmuv3.Write},
		{nestVA + pageSize, dstIPA, smmuv3.Read | smmuv3.Write},
		{nestVA + 2*pageSize, roIPA, smmuv3.Read},
		{nestVA + 4*pageSize, nestUnIPA, smmuv3.Read | smmuv3.Write},
	} {
		if err := n.tables.Map(m.va, m.ipa, m.perm); err != nil {
			t.Fatal(err)
		}
	}
	copy(n.decoy, bytes.Repeat([]byte{0xde}, len(n.decoy)))
	decoy := bytes.Clone(n.decoy)
	dma := n.at.DMA()

	want := fillPattern(src, 1)
	if err := dma.ReadFromRAM(nestVA, 0, pageSize); err != nil {
		t.Fatal(err)
	}
	n.dmaLands(t, nestVA+pageSize, want, dst, other, "first DMA")
	if !bytes.Equal(n.decoy, decoy) {
		t.Fatal("the decoy at the VA itself was written: stage 1 was not walked")
	}

	// A repointed PTE is not seen until TLBI_NH_ASID.
	if err := n.tables.Map(nestVA+pageSize, otherIPA, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	n.dmaLands(t, nestVA+pageSize, want, dst, other, "repointed, before TLBI")
	// A TLBI for another ASID or another page changes nothing.
	n.invalidate(t, smmuv3.TLBINHASID(nestASID+1), smmuv3.TLBINHVA(nestASID, nestVA, true))
	n.dmaLands(t, nestVA+pageSize, want, dst, other, "after TLBIs for others")
	n.invalidate(t, smmuv3.TLBINHASID(nestASID))
	n.dmaLands(t, nestVA+pageSize, want, other, dst, "after TLBI_NH_ASID")

	// TLBI_NH_VA does it for one page.
	if err := n.tables.Map(nestVA+pageSize, dstIPA, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	n.dmaLands(t, nestVA+pageSize, want, other, dst, "repointed back, before TLBI_NH_VA")
	n.invalidate(t, smmuv3.TLBINHVA(nestASID, nestVA+pageSize, true))
	n.dmaLands(t, nestVA+pageSize, want, dst, other, "after TLBI_NH_VA")

	// A new CD (ASID 2, the second table set mapping the VA to data page
	// 4) is not fetched until CFGI_CD names the vSID.
	fourth, fourthIPA := n.data(4)
	t2, err := smmuv3.NewTables(n.mem[4*pageSize:7*pageSize], nestBase+4*pageSize, 39)
	if err != nil {
		t.Fatal(err)
	}
	if err := t2.Map(nestVA+pageSize, fourthIPA, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	if err := n.writeCD(2, t2); err != nil {
		t.Fatal(err)
	}
	n.dmaLands(t, nestVA+pageSize, want, dst, fourth, "new CD, before CFGI_CD")
	n.invalidate(t, cfgiCD(t, virtSID))
	n.dmaLands(t, nestVA+pageSize, want, fourth, dst, "after CFGI_CD")
	if err := n.writeCD(nestASID, n.tables); err != nil {
		t.Fatal(err)
	}
	n.invalidate(t, cfgiCD(t, virtSID), smmuv3.TLBINHASID(nestASID))
	n.dmaLands(t, nestVA+pageSize, want, dst, fourth, "first CD again")

	// A read-only stage-1 page: F_PERMISSION for the VA and vSID.
	roBefore := fillPattern(ro, 3)
	var f *Fault
	if err := dma.WriteToRAM(nestVA+2*pageSize, 0, 64); !errors.As(err, &f) {
		t.Errorf("write to a read-only stage-1 page: %v", err)
	}
	if !bytes.Equal(ro, roBefore) {
		t.Error("DMA wrote a read-only stage-1 page")
	}
	checkEvent(t, n.events(t), smmuv3.EventPermission, nestVA+2*pageSize, false)
	if err := dma.ReadFromRAM(nestVA+2*pageSize, 0, 64); err != nil {
		t.Errorf("read of a read-only stage-1 page: %v", err)
	}

	// An unmapped VA: F_TRANSLATION; a read says so in RnW.
	if err := dma.ReadFromRAM(nestVA+3*pageSize+0x40, 0, 64); !errors.As(err, &f) {
		t.Errorf("read of an unmapped VA: %v", err)
	}
	checkEvent(t, n.events(t), smmuv3.EventTranslation, nestVA+3*pageSize+0x40, true)

	// Stage 1 to an IPA the IOAS does not map: the host's fault, not
	// forwarded.
	faults := len(b.Faults())
	if err := dma.WriteToRAM(nestVA+4*pageSize, 0, 64); !errors.As(err, &f) {
		t.Errorf("write to an IPA stage 2 lacks: %v", err)
	}
	if evs := n.events(t); len(evs) != 0 {
		t.Errorf("a stage-2 fault reached the vEVENTQ: %v", evs)
	}
	if fs := b.Faults()[faults:]; len(fs) != 1 || fs[0].IOVA != nestUnIPA || !fs[0].Write {
		t.Errorf("host faults %v, want one write at IPA %#x", fs, nestUnIPA)
	}

	// A DMA across the end of a writable page into the read-only one:
	// QEMU's DMA goes page by page, so the first part lands and the
	// second reports its own fault.
	clear(dst)
	want = fillPattern(dma.Buffer()[:128], 9)
	if err := dma.WriteToRAM(nestVA+2*pageSize-64, 0, 128); !errors.As(err, &f) || f.IOVA != nestVA+2*pageSize {
		t.Errorf("DMA over a writable and a read-only page: %v", err)
	}
	if !bytes.Equal(dst[pageSize-64:], want[:64]) {
		t.Error("the writable part of a half-faulting DMA was not written")
	}
	if !bytes.Equal(ro, roBefore) {
		t.Error("the read-only part of a half-faulting DMA was written")
	}
	checkEvent(t, n.events(t), smmuv3.EventPermission, nestVA+2*pageSize, false)
}

// TestNestedWalkFaults: what goes wrong before or during the walk, and
// who hears of it.
func TestNestedWalkFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name    string
		prepare func(t *testing.T, n *nestedSetup)
		event   uint8 // 0: none forwarded
		host    bool  // a host fault recorded
	}{
		{"access flag clear", func(t *testing.T, n *nestedSetup) {
			_, ipa := n.data(0)
			n.tables.Map(nestVA, ipa, smmuv3.Read|smmuv3.Write)
			// The L3 table is the third page of the set; clear AF.
			off := 3*pageSize + int(nestVA>>12&511)*8
			d := binary.LittleEndian.Uint64(n.mem[off:])
			binary.LittleEndian.PutUint64(n.mem[off:], d&^(1<<10))
		}, smmuv3.EventAccess, false},
		{"CD not valid", func(t *testing.T, n *nestedSetup) {
			binary.LittleEndian.PutUint64(n.mem, binary.LittleEndian.Uint64(n.mem)&^(1<<31))
		}, smmuv3.EventBadCD, false},
		{"CD with a 64 KiB granule", func(t *testing.T, n *nestedSetup) {
			binary.LittleEndian.PutUint64(n.mem, binary.LittleEndian.Uint64(n.mem)|1<<6)
		}, smmuv3.EventBadCD, false},
		{"CD with EPD0", func(t *testing.T, n *nestedSetup) {
			binary.LittleEndian.PutUint64(n.mem, binary.LittleEndian.Uint64(n.mem)|1<<14)
		}, smmuv3.EventTranslation, false},
		{"CD without R records nothing", func(t *testing.T, n *nestedSetup) {
			binary.LittleEndian.PutUint64(n.mem, binary.LittleEndian.Uint64(n.mem)&^(1<<45))
		}, 0, false},
		{"TTB0 at an IPA stage 2 lacks", func(t *testing.T, n *nestedSetup) {
			binary.LittleEndian.PutUint64(n.mem[8:], nestUnIPA)
		}, 0, true},
		{"stage 1 output beyond the CD's 40-bit IPS", func(t *testing.T, n *nestedSetup) {
			n.tables.Map(nestVA, 1<<41, smmuv3.Read|smmuv3.Write)
		}, smmuv3.EventAddrSize, false},
		{"CD at an IPA stage 2 lacks", func(t *testing.T, n *nestedSetup) {
			ste, _ := smmuv3.VSTE(smmuv3.ConfigS1Trans, nestUnIPA)
			h, err := n.viommu.NewNested(ctx, n.at, iommu.SMMUv3STE(ste))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.at.AttachHWPT(ctx, h); err != nil {
				t.Fatal(err)
			}
		}, 0, true},
		{"S1CDMax set (QEMU: one CD only)", func(t *testing.T, n *nestedSetup) {
			ste, _ := smmuv3.VSTE(smmuv3.ConfigS1Trans, nestBase)
			h, err := n.viommu.NewNested(ctx, n.at, iommu.SMMUv3STE{ste[0] | 1<<59, ste[1]})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.at.AttachHWPT(ctx, h); err != nil {
				t.Fatal(err)
			}
		}, smmuv3.EventBadSTE, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := smmuBackend(t)
			n := newNested(t, b)
			c.prepare(t, n)
			var f *Fault
			if err := n.at.DMA().WriteToRAM(nestVA, 0, 64); !errors.As(err, &f) {
				t.Fatalf("DMA: %v, want a fault", err)
			}
			evs := n.events(t)
			if c.event == 0 && len(evs) != 0 {
				t.Errorf("events %v, want none", evs)
			}
			if c.event != 0 {
				checkEvent(t, evs, c.event, nestVA, false)
			}
			if got := len(b.Faults()) > 0; got != c.host {
				t.Errorf("host faults %v, want some: %v", b.Faults(), c.host)
			}
		})
	}
}

// TestNestedEventRouting: without a vEVENTQ a stage-1 fault is the host's
// to log; a destroyed vDEVICE's device keeps reporting under the vSID the
// attach saw.
func TestNestedEventRouting(t *testing.T) {
	t.Parallel()
	b := smmuBackend(t)
	n := newNested(t, b)
	checkErr(t, "destroy the vEVENTQ", n.evq.Destroy(), 0)
	if _, err := n.evq.Read(context.Background()); !errors.Is(err, iommu.ErrClosed) {
		t.Errorf("read of a destroyed vEVENTQ: %v", err)
	}
	if err := n.at.DMA().WriteToRAM(nestVA, 0, 8); err == nil {
		t.Fatal("DMA to an unmapped VA succeeded")
	}
	if fs := b.Faults(); len(fs) != 1 || fs[0].IOVA != nestVA {
		t.Errorf("host faults %v, want the stage-1 fault at %#x logged", fs, nestVA)
	}
	q, err := n.viommu.NewEventQueue(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	n.evq = q
	checkErr(t, "destroy the vDEVICE", n.vdev.Destroy(), 0)
	if err := n.at.DMA().WriteToRAM(nestVA, 0, 8); err == nil {
		t.Fatal("DMA to an unmapped VA succeeded")
	}
	checkEvent(t, n.events(t), smmuv3.EventTranslation, nestVA, false)
}

// TestEventQueueLost: past its depth the queue drops events and a
// lost-events header with the next sequence number takes the tail.
func TestEventQueueLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	n := newNested(t, b)
	n.evq.Destroy()
	q, err := n.viommu.NewEventQueue(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	n.evq = q
	fault := func(k int) {
		t.Helper()
		for i := range k {
			n.at.DMA().WriteToRAM(nestVA+uint64(i)*pageSize, 0, 8)
		}
	}
	fault(5)
	evs := n.events(t)
	if len(evs) != 3 || evs[0].Sequence != 0 || evs[1].Sequence != 1 || evs[2].Flags != 1 || evs[2].Sequence != 4 {
		t.Fatalf("events %+v, want sequences 0 and 1 and a lost-events header with 4", evs)
	}
	if evs[1].Event.Addr != nestVA+pageSize {
		t.Errorf("second event %v", evs[1].Event)
	}
	fault(1)
	if evs := n.events(t); len(evs) != 1 || evs[0].Flags != 0 || evs[0].Sequence != 5 {
		t.Errorf("after the read: %+v, want one event with sequence 5", evs)
	}

	// Read waits for an event, and gives up with its context.
	got := make(chan []iommu.Event, 1)
	go func() {
		evs, _ := q.Read(ctx)
		got <- evs
	}()
	time.Sleep(10 * time.Millisecond)
	fault(1)
	if evs := <-got; len(evs) != 1 {
		t.Errorf("a waiting Read returned %v", evs)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := q.Read(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read of an empty queue: %v", err)
	}
	// Closing the backend wakes a waiting reader.
	done := make(chan error, 1)
	go func() { _, err := q.Read(ctx); done <- err }()
	time.Sleep(10 * time.Millisecond)
	b.Close()
	if err := <-done; !errors.Is(err, iommu.ErrClosed) {
		t.Errorf("Read across Close: %v", err)
	}
}

// TestInvalidateErrnos: arm_vsmmu_cache_invalidate and
// arm_vsmmu_validate_user_cmd with QEMU's smmuv3 (16-bit ASIDs,
// RANGE_INV, no DS, no ATS, no substreams): each bad command is EIO and
// the count is its index.
func TestInvalidateErrnos(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	n := newNested(t, b)
	ok := smmuv3.TLBINHASID(nestASID)
	cfgi := cfgiCD(t, virtSID)
	cfgiSSID, _ := smmuv3.CFGICD(virtSID, 1, true)
	for _, c := range []struct {
		what string
		cmd  [2]uint64
		bad  bool
	}{
		{"TLBI_NH_ASID", ok, false},
		{"TLBI_NH_ASID 0xffff", smmuv3.TLBINHASID(0xffff), false},
		{"TLBI_NH_ASID with VMID (replaced)", [2]uint64{0x11 | 5<<32, 0}, false},
		{"TLBI_NH_ASID with a word-1 bit", [2]uint64{0x11, 1}, true},
		{"TLBI_NH_VA", smmuv3.TLBINHVA(nestASID, nestVA, true), false},
		{"TLBI_NH_VA range: TG 4K, NUM 3, TTL 3", [2]uint64{0x12 | 3<<12, nestVA | 1<<10 | 3<<8}, false},
		{"TLBI_NH_VA NUM without TG", [2]uint64{0x12 | 3<<12, nestVA}, true},
		{"TLBI_NH_VA TTL without TG", [2]uint64{0x12, nestVA | 3<<8}, true},
		{"TLBI_NH_VA TG, NUM, SCALE and TTL 0", [2]uint64{0x12, nestVA | 1<<10}, true},
		{"TLBI_NH_VA TG 16K with TTL 1 (needs DS)", [2]uint64{0x12 | 1<<12, nestVA | 2<<10 | 1<<8}, true},
		{"TLBI_NH_VA SCALE bit 25 (needs DS)", [2]uint64{0x12 | 1<<25, nestVA | 1<<10}, true},
		{"TLBI_NH_VAA with an ASID", [2]uint64{0x13 | 1<<48, nestVA}, true},
		{"TLBI_NH_VAA", [2]uint64{0x13, nestVA | 1}, false},
		{"TLBI_NH_ALL", [2]uint64{0x10, 0}, false},
		{"TLBI_NH_ALL with an ASID", [2]uint64{0x10 | 1<<48, 0}, true},
		{"TLBI_NSNH_ALL", [2]uint64{0x30, 0}, false},
		{"TLBI_NSNH_ALL with a VMID", [2]uint64{0x30 | 1<<32, 0}, true},
		{"CFGI_CD", cfgi, false},
		{"CFGI_CD_ALL", [2]uint64{0x06 | virtSID<<32, 0}, false},
		{"CFGI_CD_ALL with leaf", [2]uint64{0x06 | virtSID<<32, 1}, true},
		{"CFGI_CD with an SSID (no substreams)", cfgiSSID, true},
		{"CFGI_CD with SSV", [2]uint64{cfgi[0] | 1<<11, cfgi[1]}, true},
		{"CFGI_CD for an unknown vSID", cfgiCD(t, virtSID+1), true},
		{"ATC_INV (no ATS)", [2]uint64{0x40 | virtSID<<32, 0}, true},
		{"CFGI_STE (a host command)", [2]uint64{0x03 | virtSID<<32, 0}, true},
		{"TLBI_S12_VMALL (a host command)", [2]uint64{0x28, 0}, true},
		{"CMD_SYNC", [2]uint64{0x46, 0}, true},
	} {
		done, err := n.viommu.Invalidate(ctx, iommu.SMMUv3Commands{ok, ok, c.cmd, ok})
		if c.bad {
			checkErr(t, c.what, err, syscall.EIO)
			if done != 2 {
				t.Errorf("%s: %d handled, want 2 (the failed command's index)", c.what, done)
			}
		} else if err != nil || done != 4 {
			t.Errorf("%s: %d handled, %v", c.what, done, err)
		}
	}
	// iommu_copy_struct_from_full_user_array: entry_num 0 is EINVAL.
	done, err := n.viommu.Invalidate(ctx, iommu.SMMUv3Commands{})
	checkErr(t, "no commands", err, syscall.EINVAL)
	if done != 0 {
		t.Errorf("no commands: %d handled", done)
	}
	done, err = n.viommu.Invalidate(ctx, iommu.SMMUv3Commands(make([][2]uint64, 1<<19+1)))
	checkErr(t, "2^19+1 commands", err, syscall.EINVAL)
	if done != 0 {
		t.Errorf("2^19+1 commands: %d handled", done)
	}
	_, err = n.viommu.Invalidate(ctx, otherInvalidation{})
	checkErr(t, "another driver's commands", err, syscall.EINVAL)

	// The kernel issues converted commands in batches of 63: a bad
	// command leaves the good ones before it in its batch unissued.
	_, ipa := n.data(0)
	_, ipa2 := n.data(1)
	n.tables.Map(nestVA, ipa, smmuv3.Read|smmuv3.Write)
	if err := n.at.DMA().WriteToRAM(nestVA, 0, 8); err != nil {
		t.Fatal(err)
	}
	n.tables.Map(nestVA, ipa2, smmuv3.Read|smmuv3.Write)
	lands := func(want uint64) {
		t.Helper()
		p0, _ := n.data(0)
		p1, _ := n.data(1)
		clear(p0)
		clear(p1)
		fillPattern(n.at.DMA().Buffer()[:8], 0x11)
		n.at.DMA().WriteToRAM(nestVA, 0, 8)
		hit := p0
		if want == ipa2 {
			hit = p1
		}
		if !bytes.Equal(hit[:8], n.at.DMA().Buffer()[:8]) {
			t.Errorf("the DMA did not land at IPA %#x", want)
		}
	}
	bad := [2]uint64{0x46, 0}
	done, err = n.viommu.Invalidate(ctx, iommu.SMMUv3Commands{ok, bad})
	checkErr(t, "TLBI then a bad command", err, syscall.EIO)
	if done != 1 {
		t.Errorf("TLBI then a bad command: %d handled", done)
	}
	lands(ipa) // the TLBI counted as handled was never issued
	cmds := make(iommu.SMMUv3Commands, 64)
	for i := range cmds {
		cmds[i] = smmuv3.TLBINHASID(0x100 + uint16(i))
	}
	cmds[62], cmds[63] = ok, bad // 62: the first batch's last
	done, err = n.viommu.Invalidate(ctx, cmds)
	if done != 63 || !errors.Is(err, syscall.EIO) {
		t.Errorf("a bad 64th command: %d handled, %v", done, err)
	}
	lands(ipa2) // the first batch was issued
}

type otherInvalidation struct{ iommu.SMMUv3Commands }

// TestNestedTeardown takes the setup apart in the guest test's orders:
// each leaves no object and no pin.
func TestNestedTeardown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, o := range []struct {
		name string
		down func(t *testing.T, n *nestedSetup)
	}{
		{"kernel order", func(t *testing.T, n *nestedSetup) {
			// The interface has no detach that keeps the device bound;
			// moving it back to the IOAS stands for the guest test's
			// DETACH_IOMMUFD_PT.
			if _, err := n.as.AttachDevice(ctx, eduA); err != nil {
				t.Fatal(err)
			}
			for _, d := range []struct {
				what string
				fn   func() error
			}{{"nested HWPT", n.hwpt.Destroy}, {"vEVENTQ", n.evq.Destroy}, {"vDEVICE", n.vdev.Destroy},
				{"vIOMMU", n.viommu.Destroy}, {"nesting parent", n.parent.Destroy}, {"detach", func() error { return n.at.Detach(ctx) }},
				{"IOAS", n.as.Destroy}} {
				checkErr(t, "destroy the "+d.what, d.fn(), 0)
			}
		}},
		{"close the backend first", func(t *testing.T, n *nestedSetup) {
			n.b.Close()
			if _, err := n.evq.Read(ctx); !errors.Is(err, iommu.ErrClosed) {
				t.Errorf("read after close: %v", err)
			}
		}},
		{"close the IOAS first", func(t *testing.T, n *nestedSetup) {
			checkErr(t, "close the IOAS", n.as.Close(), 0)
			checkErr(t, "destroy the vIOMMU after", n.viommu.Destroy(), syscall.ENOENT)
		}},
		{"detach the device first", func(t *testing.T, n *nestedSetup) {
			checkErr(t, "detach", n.at.Detach(ctx), 0)
			checkErr(t, "destroy the nested HWPT", n.hwpt.Destroy(), 0)
			checkErr(t, "destroy the vEVENTQ", n.evq.Destroy(), 0)
			// iommufd_device_remove_vdev tombstones the vDEVICE.
			checkErr(t, "destroy the vDEVICE after the unbind", n.vdev.Destroy(), syscall.ENOENT)
			checkErr(t, "destroy the vIOMMU", n.viommu.Destroy(), 0)
			checkErr(t, "destroy the parent", n.parent.Destroy(), 0)
			checkErr(t, "destroy the IOAS", n.as.Destroy(), 0)
		}},
		{"objects in use refuse", func(t *testing.T, n *nestedSetup) {
			for _, c := range []struct {
				what string
				fn   func() error
			}{{"vIOMMU", n.viommu.Destroy}, {"nesting parent", n.parent.Destroy}, {"IOAS", n.as.Destroy}, {"attached nested HWPT", n.hwpt.Destroy}} {
				checkErr(t, "destroy the "+c.what+" in use", c.fn(), syscall.EBUSY)
			}
			n.b.Close()
		}},
	} {
		t.Run(o.name, func(t *testing.T) {
			t.Parallel()
			b := smmuBackend(t)
			n := newNested(t, b)
			_, srcIPA := n.data(0)
			dst, dstIPA := n.data(1)
			n.tables.Map(nestVA, srcIPA, smmuv3.Read|smmuv3.Write)
			n.tables.Map(nestVA+pageSize, dstIPA, smmuv3.Read|smmuv3.Write)
			n.dmaLands(t, nestVA+pageSize, fillPattern(n.at.DMA().Buffer()[:pageSize], 5), dst, n.decoy[pageSize:2*pageSize], "before the teardown")
			o.down(t, n)
			if b.Objects() != 0 || b.Pinned() != 0 {
				t.Errorf("%d objects, %d pinned after the teardown", b.Objects(), b.Pinned())
			}
			if err := checkInvariants(b); err != nil {
				t.Error(err)
			}
			if !b.closed {
				// The next setup on the same backend works.
				n := newNested(t, b)
				dst, dstIPA := n.data(1)
				n.tables.Map(nestVA, dstIPA, smmuv3.Read|smmuv3.Write)
				n.dmaLands(t, nestVA, fillPattern(n.at.DMA().Buffer()[:pageSize], 6), dst, n.decoy[:pageSize], "the next setup")
			}
		})
	}
}

// nestedSnapshot adds the nesting state to snapshot.
func nestedSnapshot(b *Backend) string {
	s := snapshot(b)
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, as := range b.spaces {
		s += fmt.Sprintf("ioas %d: ndomains %d auto %d/%d hwpts %d\n", as.id, as.ndomains, as.autoID, as.autoDevs, len(as.hwpts))
		for _, h := range as.hwpts {
			s += fmt.Sprintf(" hwpt %d devs %d viommus %d\n", h.id, len(h.devs), len(h.viommus))
			for _, v := range h.viommus {
				s += fmt.Sprintf("  viommu %d vdevs %d nested %d evq %v\n", v.id, len(v.vdevs), len(v.nested), v.evq != nil)
			}
		}
	}
	bdfs := slices.Sorted(maps.Keys(b.bound))
	for _, bdf := range bdfs {
		at := b.bound[bdf]
		var hw uint32
		if at.hwpt != nil {
			hw = at.hwpt.id
		}
		s += fmt.Sprintf("%s on ioas %d hwpt %d vdev %v vmaster %v\n", bdf, at.as.id, hw, at.vdev != nil, at.vmaster != nil)
	}
	return s
}

// TestNestedFailNth injects ENOMEM in each allocation of the nested setup
// in turn: the failed step leaves the state as it was, Close leaves no
// object or pin, and the setup then succeeds and works.
func TestNestedFailNth(t *testing.T) {
	t.Parallel()
	buf, decoy := mem(t, nestPages*pageSize, pageSize), mem(t, 8*pageSize, pageSize)
	n := 1
	for ; n < 200; n++ {
		b := newBackend(t, Options{IOMMU: SMMUv3, NoDirtyTracking: true})
		b.FailNth(n)
		setup, err := buildNestedSteps(b, buf, decoy, func(name string, op func() error) error {
			before := nestedSnapshot(b)
			err := op()
			if err == nil {
				return nil
			}
			if !errors.Is(err, syscall.ENOMEM) {
				t.Fatalf("N=%d, %s: %v, want only the injected ENOMEM", n, name, err)
			}
			if after := nestedSnapshot(b); after != before {
				t.Fatalf("N=%d: %s failed but changed state:\nbefore %s\nafter  %s", n, name, before, after)
			}
			return err
		})
		left := b.FailNthLeft()
		b.FailNth(0)
		if err == nil && left == 0 {
			t.Fatalf("N=%d: the failure was injected but nothing failed", n)
		}
		if e := checkInvariants(b); e != nil {
			t.Fatalf("N=%d: %v", n, e)
		}
		if err == nil {
			_, ipa := setup.data(0)
			setup.tables.Map(nestVA, ipa, smmuv3.Read|smmuv3.Write)
			if e := setup.at.DMA().WriteToRAM(nestVA, 0, 8); e != nil {
				t.Fatalf("N=%d: DMA through the finished setup: %v", n, e)
			}
		}
		b.Close()
		if b.Objects() != 0 || b.Pinned() != 0 {
			t.Fatalf("N=%d: after Close %d objects, %d pinned", n, b.Objects(), b.Pinned())
		}
		if left > 0 {
			break
		}
	}
	if n < 10 || n >= 200 {
		t.Fatalf("sweep ended at N=%d", n)
	}
	t.Logf("nested fail-nth sweep: %d injection sites", n-1)
}

// TestNestedFailNthNoTrace: each nesting call that fails with the
// injected ENOMEM leaves the backend as it found it.
func TestNestedFailNthNoTrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	n := newNested(t, b)
	other := attach(t, n.as, eduB)
	steps := []struct {
		name string
		op   func() error
	}{
		{"paging HWPT", func() error { _, e := n.at.NewHWPT(ctx, n.as, 0); return e }},
		{"nesting parent", func() error { _, e := n.at.NewHWPT(ctx, n.as, iommu.NestParent); return e }},
		{"vIOMMU", func() error { _, e := n.at.NewVIOMMU(ctx, n.parent); return e }},
		{"vDEVICE", func() error { _, e := n.viommu.NewVDevice(ctx, other, virtSID+1); return e }},
		{"nested HWPT", func() error { _, e := n.viommu.NewNested(ctx, other, vsteBypass); return e }},
		{"invalidate", func() error { _, e := n.viommu.Invalidate(ctx, iommu.SMMUv3Commands{smmuv3.TLBINHASID(1)}); return e }},
		{"attach back to the IOAS", func() error { _, e := n.as.AttachDevice(ctx, eduA); return e }},
	}
	for _, s := range steps {
		for k := 1; ; k++ {
			before := nestedSnapshot(b)
			b.FailNth(k)
			err := s.op()
			left := b.FailNthLeft()
			b.FailNth(0)
			if left > 0 {
				if err != nil {
					t.Fatalf("%s: %v without an injected failure", s.name, err)
				}
				break
			}
			if !errors.Is(err, syscall.ENOMEM) {
				t.Fatalf("%s, failure %d: %v, want ENOMEM", s.name, k, err)
			}
			if after := nestedSnapshot(b); after != before {
				t.Fatalf("%s failed at %d but changed state:\nbefore %s\nafter  %s", s.name, k, before, after)
			}
		}
	}
}

// FuzzInvalidate: any batch of commands is handled whole or fails with
// EIO at the first command validateCmd or the vSID lookup refuses, never
// panics, and the model keeps its invariants.
func FuzzInvalidate(f *testing.F) {
	f.Add(uint64(0x11|1<<48), uint64(0), uint64(0x12|1<<12), uint64(nestVA|1<<10|1<<8), uint64(0x05|virtSID<<32), uint64(1))
	f.Add(uint64(0x40), uint64(0), uint64(0x30), uint64(0), uint64(0x13|1<<48), uint64(0))
	b, err := New(Options{IOMMU: SMMUv3, Devices: []iommu.Device{eduA}})
	if err != nil {
		f.Fatal(err)
	}
	n, err := buildNested(b, mem(f, nestPages*pageSize, pageSize), mem(f, 8*pageSize, pageSize))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a0, a1, b0, b1, c0, c1 uint64) {
		cmds := iommu.SMMUv3Commands{{a0, a1}, {b0, b1}, {c0, c1}}
		done, err := n.viommu.Invalidate(context.Background(), cmds)
		want := len(cmds)
		for i, c := range cmds {
			if validateCmd(c) != nil {
				want = i
				break
			}
			if op := c[0] & 0xff; op == smmuv3.OpCFGICD || op == smmuv3.OpCFGICDAll {
				if c[0]>>32 != virtSID {
					want = i
					break
				}
			}
		}
		if done != want || (err == nil) != (want == len(cmds)) || (err != nil && !errors.Is(err, syscall.EIO)) {
			t.Fatalf("%#x: %d handled, %v; want %d", cmds, done, err, want)
		}
		for _, c := range cmds[:want] {
			if c[0]&(1<<11) != 0 || c[0]&0xff == 0x40 {
				t.Fatalf("%#x accepted: SSV or ATC_INV on an SMMU without substreams or ATS", c)
			}
		}
		if err := n.at.DMA().WriteToRAM(nestVA, 0, 8); err == nil {
			t.Fatal("DMA through empty tables succeeded")
		}
	})
}

// TestNestParentAperture: a nesting parent on the SMMUv3 model is a
// stage-2 domain translating 44-bit IPAs (QEMU's IDR5.OAS), so while one
// exists the IOAS ends there (iopt_table_add_domain reserves above each
// domain's aperture_end); the 48-bit stage-1 domains stay as they were.
// What the differential run on the own 7.3 lane saw.
func TestNestParentAperture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	as := newSpace(t, b)
	at := attach(t, as, eduA)
	last := func() iommu.IOVA {
		t.Helper()
		r, _, err := as.Ranges(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r[len(r)-1].Last
	}
	if got := last(); got != 1<<48-1 {
		t.Fatalf("with the automatic (stage-1) HWPT the IOAS ends at %#x", uint64(got))
	}
	plain, err := at.NewHWPT(ctx, as, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := last(); got != 1<<48-1 {
		t.Errorf("with a stage-1 paging HWPT the IOAS ends at %#x", uint64(got))
	}
	p := mem(t, pageSize, pageSize)
	mustMap(t, as, fixed(p, 1<<45))
	// iopt_reserve_iova: a mapping above the new domain's aperture.
	_, err = at.NewHWPT(ctx, as, iommu.NestParent)
	checkErr(t, "a nesting parent over a mapping above 44 bits", err, syscall.EADDRINUSE)
	if _, err := as.Unmap(ctx, 1<<45, pageSize); err != nil {
		t.Fatal(err)
	}
	parent, err := at.NewHWPT(ctx, as, iommu.NestParent)
	if err != nil {
		t.Fatal(err)
	}
	if got := last(); got != 1<<44-1 {
		t.Errorf("with a nesting parent the IOAS ends at %#x, want 44 bits", uint64(got))
	}
	checkErr(t, "a fixed map above 44 bits", mapErr(as, fixed(p, 1<<45)), syscall.EINVAL)
	checkErr(t, "destroy the nesting parent", parent.Destroy(), 0)
	if got := last(); got != 1<<48-1 {
		t.Errorf("after the nesting parent the IOAS ends at %#x, want 48 bits again", uint64(got))
	}
	checkErr(t, "destroy the stage-1 HWPT", plain.Destroy(), 0)
	mustMap(t, as, fixed(p, 1<<45))
}

// TestNestingGroup: AttachHWPT moves the whole iommu_group, as the
// kernel's replace does; a sibling cannot join the IOAS's automatic HWPT
// while the group sits on another.
func TestNestingGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	as := newSpace(t, b)
	a0 := attach(t, as, fn0)
	a1 := attach(t, as, fn1)
	h, err := a0.NewHWPT(ctx, as, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a0.AttachHWPT(ctx, h); err != nil {
		t.Fatal(err)
	}
	if a1.hwpt != h {
		t.Errorf("the sibling stayed on the automatic HWPT")
	}
	a1.Detach(ctx)
	_, err = as.AttachDevice(ctx, fn1)
	checkErr(t, "a sibling onto the automatic HWPT", err, syscall.EINVAL)
	checkErr(t, "destroy the group's HWPT", h.Destroy(), syscall.EBUSY)
	a0.Detach(ctx)
	checkErr(t, "destroy the HWPT", h.Destroy(), 0)
	if b.Objects() != 1 || b.Pinned() != 0 { // the IOAS
		t.Errorf("%d objects, %d pinned", b.Objects(), b.Pinned())
	}
}

// TestFailedReplaceKeepsReservations: a replace the driver refuses (a
// stage-1 nested HWPT without a vDEVICE) leaves the device attached where
// it was with its reserved regions. Linux 7.3 drops them
// (iommufd_device_do_replace's err_unresv, pinned in hwtests'
// TestFailedReplaceDropsMSIWindow); the cdev backend restores them, and the
// emulator answers as the interface does.
func TestFailedReplaceKeepsReservations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	as := newSpace(t, b)
	at := attach(t, as, eduA)
	parent, err := at.NewHWPT(ctx, as, iommu.NestParent)
	if err != nil {
		t.Fatal(err)
	}
	v, err := at.NewVIOMMU(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := smmuv3.VSTE(smmuv3.ConfigS1Trans, nestBase)
	h, err := v.NewNested(ctx, at, iommu.SMMUv3STE(s1))
	if err != nil {
		t.Fatal(err)
	}
	before := nestedSnapshot(b)
	checkErr(t, "attach stage 1 without a vDEVICE", at.AttachHWPT(ctx, h), syscall.ENOENT)
	if after := nestedSnapshot(b); after != before {
		t.Errorf("the refused replace changed state:\nbefore %s\nafter  %s", before, after)
	}
	p := mem(t, pageSize, pageSize)
	checkErr(t, "map the MSI window after the refused replace", mapErr(as, fixed(p, smmuMSIStart)), syscall.EINVAL)
}

// TestNestedUnmapFlushesWalks: a change to the nesting parent's stage 2
// (an unmap in the IOAS) makes the driver flush every stage-1 walk of
// the parent's VMID (INV_TYPE_S2_VMID_S1_CLEAR, a TLBI_NH_ALL), so a
// stale walk goes without the guest's TLBI.
func TestNestedUnmapFlushesWalks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := smmuBackend(t)
	n := newNested(t, b)
	dst, dstIPA := n.data(1)
	other, otherIPA := n.data(2)
	want := fillPattern(n.at.DMA().Buffer()[:pageSize], 7)
	n.tables.Map(nestVA, dstIPA, smmuv3.Read|smmuv3.Write)
	n.dmaLands(t, nestVA, want, dst, other, "first")
	n.tables.Map(nestVA, otherIPA, smmuv3.Read|smmuv3.Write)
	n.dmaLands(t, nestVA, want, dst, other, "repointed, cached")
	mustMap(t, n.as, fixed(mem(t, pageSize, pageSize), 0x4000000))
	n.dmaLands(t, nestVA, want, dst, other, "after a map in stage 2")
	if _, err := n.as.Unmap(ctx, 0x4000000, pageSize); err != nil {
		t.Fatal(err)
	}
	n.dmaLands(t, nestVA, want, other, dst, "after an unmap in stage 2")
}

// TestWalkCacheScopes: which invalidations drop a cached walk of VA
// nestVA+pageSize under ASID 1, QEMU's smmuv3 semantics: by ASID, by VA
// (one page, or a range of NUM+1 << SCALE granules when TG is set), by VA
// for every ASID, everything; a CFGI drops the CD, not the walk.
func TestWalkCacheScopes(t *testing.T) {
	t.Parallel()
	va := uint64(nestVA + pageSize)
	for _, c := range []struct {
		name  string
		cmd   [2]uint64
		drops bool
	}{
		{"TLBI_NH_ASID", smmuv3.TLBINHASID(nestASID), true},
		{"TLBI_NH_ASID of another ASID", smmuv3.TLBINHASID(nestASID + 1), false},
		{"TLBI_NH_VA", smmuv3.TLBINHVA(nestASID, va, true), true},
		{"TLBI_NH_VA of the page before", smmuv3.TLBINHVA(nestASID, va-pageSize, true), false},
		{"TLBI_NH_VA of another ASID", smmuv3.TLBINHVA(nestASID+1, va, false), false},
		{"TLBI_NH_VA range of 2 pages from the one before", [2]uint64{smmuv3.OpTLBINHVA | 1<<12 | nestASID<<48, (va - pageSize) | 1<<10 | 3<<8}, true},
		{"TLBI_NH_VA range of 1 page before (TTL only)", [2]uint64{smmuv3.OpTLBINHVA | nestASID<<48, (va - pageSize) | 1<<10 | 3<<8}, false},
		{"TLBI_NH_VA range of 2 16 KiB granules below", [2]uint64{smmuv3.OpTLBINHVA | 1<<12 | nestASID<<48, (va - 5*pageSize) | 2<<10 | 3<<8}, true},
		{"TLBI_NH_VAA", [2]uint64{smmuv3.OpTLBINHVAA, va}, true},
		{"TLBI_NH_ALL", [2]uint64{smmuv3.OpTLBINHAll, 0}, true},
		{"TLBI_NSNH_ALL", [2]uint64{0x30, 0}, true},
		{"CFGI_CD", cfgiCD(t, virtSID), false},
		{"CFGI_CD_ALL", [2]uint64{smmuv3.OpCFGICDAll | virtSID<<32, 0}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := newNested(t, smmuBackend(t))
			dst, dstIPA := n.data(1)
			other, otherIPA := n.data(2)
			want := fillPattern(n.at.DMA().Buffer()[:pageSize], 4)
			n.tables.Map(va, dstIPA, smmuv3.Read|smmuv3.Write)
			n.dmaLands(t, va, want, dst, other, "first")
			n.tables.Map(va, otherIPA, smmuv3.Read|smmuv3.Write)
			n.invalidate(t, c.cmd)
			hit, miss := dst, other
			if c.drops {
				hit, miss = other, dst
			}
			n.dmaLands(t, va, want, hit, miss, "after "+c.name)
		})
	}
}

// TestWalkCacheBlock: a 2 MiB block is cached as one entry; a TLBI_NH_VA
// of any page inside it drops it.
func TestWalkCacheBlock(t *testing.T) {
	t.Parallel()
	b := smmuBackend(t)
	n := newNested(t, b)
	// L2[1] of the first table set (page 2): a block for VAs 0x200000-
	// 0x3fffff onto the 2 MiB of IPA at 0x1000000 (the layout buffer is
	// only 64 KiB of it: DMA to the data pages lands, beyond faults).
	n.tables.Map(0x600000, nestBase, smmuv3.Read) // makes the L2 table
	l2 := 2*pageSize + 1*8
	binary.LittleEndian.PutUint64(n.mem[l2:], nestBase|1|1<<10|3<<8|1<<6)
	dst, dstIPA := n.data(1)
	va := nestVA + (dstIPA - nestBase)
	want := fillPattern(n.at.DMA().Buffer()[:pageSize], 8)
	n.dmaLands(t, va, want, dst, n.decoy[:pageSize], "through the block")
	binary.LittleEndian.PutUint64(n.mem[l2:], 0) // unmapped, but cached
	n.dmaLands(t, va, want, dst, n.decoy[:pageSize], "through the cached block")
	n.invalidate(t, smmuv3.TLBINHVA(nestASID, nestVA+0x100000, true))
	var f *Fault
	if err := n.at.DMA().WriteToRAM(va, 0, 8); !errors.As(err, &f) {
		t.Errorf("DMA after a TLBI inside the block: %v, want a fault", err)
	}
	checkEvent(t, n.events(t), smmuv3.EventTranslation, va, false)
}
