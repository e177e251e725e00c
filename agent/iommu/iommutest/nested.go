package iommutest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/ioctl/smmuv3"
)

// The nesting cases hold a backend to the kernel's nesting on an SMMUv3
// (drivers/iommu/iommufd/viommu.c, hw_pagetable.c, eventq.c and
// arm-smmu-v3-iommufd.c): a nesting parent over an address space, a
// vIOMMU, a vDEVICE, an event queue and nested HWPTs whose vSTE aborts,
// bypasses stage 1 or points at a CD and stage-1 tables the case builds in
// memory mapped into the address space, which the IOMMU walks through
// stage 2.
//
// What the cases do not pin: whether a walk is cached before an
// invalidation (the architecture allows both; QEMU caches and the emulated
// model does too, hwtests pins QEMU's), and how many event records one
// faulting DMA makes (QEMU's edu moves a page in several transactions).

// RunNesting runs the nesting cases over fresh targets from newTarget.
// Devices[0] must sit behind an SMMUv3 whose driver nests (the emulated
// SMMUv3 model, or a kernel with ARM_SMMU_V3_IOMMUFD and a coherent
// SMMU), and DMA must be set.
func RunNesting(t *testing.T, newTarget func(t *testing.T) Target) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, tg Target)
	}{
		{"Objects", testNestObjects},
		{"Misuse", testNestMisuse},
		{"Stage1DMA", testStage1DMA},
		{"Stage1Faults", testStage1Faults},
		{"Stage2Fault", testStage2Fault},
		{"Invalidation", testNestInvalidation},
		{"Teardown", testNestTeardown},
		{"TeardownOrders", testNestTeardownOrders},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := target(t, newTarget)
			if tg.DMA == nil {
				t.Fatal("the nesting cases need a DMA engine")
			}
			c.fn(t, tg)
		})
	}
}

// The nested layout, in 4 KiB pages of one buffer mapped at the IPA base:
// the CD at page 0, one stage-1 table set at pages 1-3 and another at 4-6,
// data pages from 8. Stage-1 VAs start at nestVA, an address nothing in
// the address space maps, so a DMA that skipped stage 1 would fault.
const (
	s1Page     = 4096
	nestPages  = 16
	nestData   = 8
	nestVA     = 0x200000
	nestASID   = 1
	nestVSID   = 8
	mairNormal = 0xff // attribute 0: normal memory, write-back
)

var (
	errIO   = want{iommu.ErrInvalid, syscall.EIO} // the driver's data is bad
	errBusy = want{iommu.ErrBusy, syscall.EBUSY}
)

// nest is a device attached to an address space with the nesting objects
// over it.
type nest struct {
	tg     Target
	s      *space
	n      iommu.Nester
	base   iommu.IOVA // the IPA of mem
	mem    []byte
	parent iommu.HWPT
	v      iommu.VIOMMU
	vd     iommu.VDevice
	evq    iommu.EventQueue
	e      DMAEngine
}

// newNest attaches Devices[0], maps the layout buffer and allocates the
// nesting parent, the vIOMMU, the vDEVICE and the event queue.
func newNest(t *testing.T, tg Target) *nest {
	t.Helper()
	ctx := context.Background()
	s := attached(t, tg, tg.Devices[0])
	n, ok := s.att.(iommu.Nester)
	if !ok {
		t.Fatalf("attachment %T does not nest", s.att)
	}
	size := alignUp(nestPages*s1Page, s.unit)
	x := &nest{tg: tg, s: s, n: n, mem: tg.Alloc(t, int(size)), e: dmaEngine(t, tg, s.att)}
	x.base = s.window(t, tg, size)
	s.mapFixed(t, x.mem, x.base)
	var err error
	if x.parent, err = n.NewHWPT(ctx, s.as, iommu.NestParent); err != nil {
		t.Fatalf("nesting parent: %v", err)
	}
	if x.v, err = n.NewVIOMMU(ctx, x.parent); err != nil {
		t.Fatalf("vIOMMU over the nesting parent: %v", err)
	}
	if x.vd, err = x.v.NewVDevice(ctx, s.att, nestVSID); err != nil {
		t.Fatalf("vDEVICE %d: %v", nestVSID, err)
	}
	if got := x.vd.VirtID(); got != nestVSID {
		t.Errorf("vDEVICE virtual ID %d, want %d", got, nestVSID)
	}
	if x.evq, err = x.v.NewEventQueue(ctx, 64); err != nil {
		t.Fatalf("event queue: %v", err)
	}
	return x
}

// page returns layout page i and its IPA.
func (x *nest) page(i int) ([]byte, uint64) {
	return x.mem[i*s1Page : (i+1)*s1Page], uint64(x.base) + uint64(i*s1Page)
}

// tables starts an empty stage-1 table set in pages first..first+2.
func (x *nest) tables(t *testing.T, first int) *smmuv3.Tables {
	t.Helper()
	_, ipa := x.page(first)
	tb, err := smmuv3.NewTables(x.mem[first*s1Page:(first+3)*s1Page], ipa, 39)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// writeCD writes the CD of asid over tb at page 0.
func (x *nest) writeCD(t *testing.T, asid uint16, tb *smmuv3.Tables) {
	t.Helper()
	cd, err := smmuv3.CD{ASID: asid, TTB0: tb.Root(), T0SZ: tb.T0SZ(), IPS: 2, MAIR: mairNormal}.Words()
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range cd {
		binary.LittleEndian.PutUint64(x.mem[8*i:], w)
	}
}

// stage1 allocates a nested HWPT whose vSTE points at the CD and attaches
// the device to it.
func (x *nest) stage1(t *testing.T) iommu.HWPT {
	t.Helper()
	ste, err := smmuv3.VSTE(smmuv3.ConfigS1Trans, uint64(x.base))
	if err != nil {
		t.Fatal(err)
	}
	h := x.nested(t, ste)
	x.attach(t, h)
	return h
}

func (x *nest) nested(t *testing.T, ste [2]uint64) iommu.HWPT {
	t.Helper()
	h, err := x.v.NewNested(context.Background(), x.s.att, iommu.SMMUv3STE(ste))
	if err != nil {
		t.Fatalf("nested HWPT with vSTE %#x: %v", ste, err)
	}
	return h
}

func (x *nest) attach(t *testing.T, h iommu.HWPT) {
	t.Helper()
	if err := x.n.AttachHWPT(context.Background(), h); err != nil {
		t.Fatalf("attach to HWPT %d: %v", h.ID(), err)
	}
}

func (x *nest) invalidate(t *testing.T, cmds ...[2]uint64) {
	t.Helper()
	n, err := x.v.Invalidate(context.Background(), iommu.SMMUv3Commands(cmds))
	if err != nil || n != len(cmds) {
		t.Fatalf("invalidate %#x: %d handled, %v", cmds, n, err)
	}
}

// load fills the engine's buffer with a fresh pattern, read through VA
// page 15, which every layout maps to the buffer's last page.
func (x *nest) load(t *testing.T, seed uint64) []byte {
	t.Helper()
	src, _ := x.page(nestPages - 1)
	for i := range src {
		src[i] = byte(uint64(i)*7 + seed)
	}
	if err := x.e.ReadFromRAM(nestVA+15*s1Page, 0, dmaSize); err != nil {
		t.Fatalf("DMA read from VA %#x to load the engine: %v", nestVA+15*s1Page, err)
	}
	return bytes.Clone(src[:dmaSize])
}

// write has the device write a fresh pattern to va and reports whether it
// landed in hit; miss must stay clean either way.
func (x *nest) write(t *testing.T, va uint64, hit, miss []byte) bool {
	t.Helper()
	want := x.load(t, va>>12)
	clear(hit)
	clear(miss)
	err := x.e.WriteToRAM(va, 0, dmaSize)
	if !bytes.Equal(miss, make([]byte, len(miss))) {
		t.Fatalf("the DMA to VA %#x wrote a page it must not (engine said %v)", va, err)
	}
	landed := bytes.Equal(hit[:dmaSize], want)
	if landed && err != nil {
		t.Fatalf("the DMA to VA %#x landed but the engine said %v", va, err)
	}
	return landed
}

// events collects the event queue's entries: it waits up to first for
// one, then until the queue stays quiet for 300 ms (the kernel delivers
// them from the SMMU's event interrupt, after the DMA).
func (x *nest) events(t *testing.T, first time.Duration) []iommu.Event {
	t.Helper()
	var all []iommu.Event
	deadline := time.Now().Add(10 * time.Second)
	for wait := first; time.Now().Before(deadline); wait = 300 * time.Millisecond {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		evs, err := x.evq.Read(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("read events: %v", err)
		}
		all = append(all, evs...)
	}
	return all
}

// none checks the queue stays empty.
func (x *nest) none(t *testing.T, what string) {
	t.Helper()
	if evs := x.events(t, 300*time.Millisecond); len(evs) != 0 {
		t.Errorf("%s: %d events, want none", what, len(evs))
	}
}

// checkFaults wants at least one event, every one a stage-1 record of id
// for the vSID at an address inside the page at va. Lost-events entries
// are fine: a device may fault once per transaction, more than the queue
// holds (QEMU's edu moves a page in 4-byte writes).
func checkFaults(t *testing.T, evs []iommu.Event, id uint8, va uint64, write bool) {
	t.Helper()
	n := 0
	for _, ev := range evs {
		if ev.Lost {
			continue
		}
		n++
		e, err := smmuv3.DecodeEvent(ev.Record)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != id || e.SID != nestVSID || e.Stage2 || e.Read == write || e.Addr&^(s1Page-1) != va {
			t.Errorf("event %v, want id %#x, vSID %d, stage 1, write %t, VA in the page at %#x", e, id, nestVSID, write, va)
		}
	}
	if n == 0 {
		t.Fatalf("no event record for the stage-1 fault at VA %#x (%d entries)", va, len(evs))
	}
}

func testNestObjects(t *testing.T, tg Target) {
	ctx := context.Background()
	x := newNest(t, tg)

	// A second vDEVICE for the device, or a second queue of the type.
	_, err := x.v.NewVDevice(ctx, x.s.att, nestVSID+1)
	expect(t, "a second vDEVICE for the device", err, errExists)
	_, err = x.v.NewEventQueue(ctx, 16)
	expect(t, "a second event queue", err, errExists)

	// The parent alone is a plain stage 2.
	x.attach(t, x.parent)
	_, ipa := x.page(nestData)
	roundTrip(t, x.e, x.mem[nestData*s1Page:], x.mem[(nestData+1)*s1Page:], iommu.IOVA(ipa), iommu.IOVA(ipa+s1Page))

	// Bypass: stage 2 alone translates.
	bypass := x.nested(t, [2]uint64{1 | uint64(smmuv3.ConfigBypass)<<1, 0})
	x.attach(t, bypass)
	roundTrip(t, x.e, x.mem[nestData*s1Page:], x.mem[(nestData+1)*s1Page:], iommu.IOVA(ipa), iommu.IOVA(ipa+s1Page))

	// Abort: nothing lands, and a vSTE without V is an abort too.
	for _, ste := range [][2]uint64{{1 | uint64(smmuv3.ConfigAbort)<<1, 0}, {0, 0}} {
		abort := x.nested(t, ste)
		x.attach(t, abort)
		dst := x.mem[(nestData+1)*s1Page : (nestData+2)*s1Page]
		for i := range dst {
			dst[i] = 0xa5
		}
		err := x.e.WriteToRAM(ipa+s1Page, 0, dmaSize)
		if !bytes.Equal(dst, bytes.Repeat([]byte{0xa5}, s1Page)) {
			t.Errorf("a DMA under vSTE %#x reached memory (engine said %v)", ste, err)
		}
		expect(t, "destroy an attached nested HWPT", abort.Destroy(), errBusy)
		x.attach(t, bypass)
		expect(t, "destroy a detached nested HWPT", abort.Destroy(), ok)
		expect(t, "destroy it twice", abort.Destroy(), errNotFound)
	}

	// In use: the parent holds the vIOMMU's stage 2; the vIOMMU holds
	// its vDEVICE, queue and nested HWPTs.
	expect(t, "destroy the nesting parent under a vIOMMU", x.parent.Destroy(), errBusy)
	expect(t, "destroy the vIOMMU under a nested HWPT", x.v.Destroy(), errBusy)
	if _, err := x.s.as.Attach(ctx, tg.Devices[0]); err != nil {
		t.Fatalf("back to the address space: %v", err)
	}
	for _, o := range []struct {
		what string
		d    interface{ Destroy() error }
	}{{"bypass HWPT", bypass}, {"event queue", x.evq}, {"vDEVICE", x.vd}, {"vIOMMU", x.v}, {"nesting parent", x.parent}} {
		expect(t, "destroy the "+o.what, o.d.Destroy(), ok)
	}
	roundTrip(t, x.e, x.mem[nestData*s1Page:], x.mem[(nestData+1)*s1Page:], iommu.IOVA(ipa), iommu.IOVA(ipa+s1Page))
}

func testNestMisuse(t *testing.T, tg Target) {
	ctx := context.Background()
	x := newNest(t, tg)

	// viommu.c: a vIOMMU needs a nesting parent.
	plain, err := x.n.NewHWPT(ctx, x.s.as, 0)
	if err != nil {
		t.Fatalf("a plain paging HWPT: %v", err)
	}
	_, err = x.n.NewVIOMMU(ctx, plain)
	expect(t, "a vIOMMU over a HWPT that is not a nesting parent", err, errInvalid)
	// A nested HWPT is not paging: the kernel finds no such paging
	// object.
	bypass := x.nested(t, [2]uint64{1 | uint64(smmuv3.ConfigBypass)<<1, 0})
	_, err = x.n.NewVIOMMU(ctx, bypass)
	expect(t, "a vIOMMU over a nested HWPT", err, errNotFound)

	// arm_smmu_validate_vste: reserved Config values and bits outside
	// the nesting-allowed fields are EIO.
	for _, ste := range [][2]uint64{
		{1 | 7<<1, 0}, // Config 0b111
		{1 | 6<<1, 0}, // Config 0b110: stage 2 only, the host's
		{1 | uint64(smmuv3.ConfigBypass)<<1 | 1<<52, 0}, // bit 52: between S1ContextPtr and S1CDMax
		{1 | uint64(smmuv3.ConfigBypass)<<1, 1 << 63},   // word 1 bit 63: not a stage-1 field
	} {
		_, err := x.v.NewNested(ctx, x.s.att, iommu.SMMUv3STE(ste))
		expect(t, "a nested HWPT with vSTE "+iommu.SMMUv3STE(ste).String(), err, errIO)
	}

	// eventq.c: a depth of 0 is EINVAL.
	_, err = x.v.NewEventQueue(ctx, 0)
	expect(t, "an event queue of depth 0", err, errInvalid)

	// A stage-1 HWPT needs the device's vDEVICE to attach
	// (arm_smmu_attach_prepare_vmaster); abort and bypass do not.
	ste, err := smmuv3.VSTE(smmuv3.ConfigS1Trans, uint64(x.base))
	if err != nil {
		t.Fatal(err)
	}
	s1 := x.nested(t, ste)
	if err := x.vd.Destroy(); err != nil {
		t.Fatalf("destroy the vDEVICE: %v", err)
	}
	expect(t, "attach a stage-1 HWPT without a vDEVICE", x.n.AttachHWPT(ctx, s1), errNotFound)
	// The refused attach leaves the device where it was, its reserved
	// windows still out of the ranges (Linux 7.3 drops them; the cdev
	// backend puts them back).
	x.reservedHeld(t, "after the refused attach")
	expect(t, "attach a bypass HWPT without a vDEVICE", x.n.AttachHWPT(ctx, bypass), ok)
	x.reservedHeld(t, "on the bypass HWPT")
	x.attach(t, x.parent)
	expect(t, "attach a stage-1 HWPT without a vDEVICE, from the parent", x.n.AttachHWPT(ctx, s1), errNotFound)
	x.reservedHeld(t, "after the refused attach from the parent")
	_, ipa := x.page(nestData)
	roundTrip(t, x.e, x.mem[nestData*s1Page:], x.mem[(nestData+1)*s1Page:], iommu.IOVA(ipa), iommu.IOVA(ipa+s1Page))
}

// reservedHeld checks the target's reserved windows are out of the
// address space's ranges and refuse a map.
func (x *nest) reservedHeld(t *testing.T, when string) {
	t.Helper()
	rs, _ := ranges(t, x.s.as)
	for _, res := range x.tg.Reserved {
		for _, r := range rs {
			if r.Start <= res.Last && res.Start <= r.Last {
				t.Errorf("%s: range %v overlaps the reserved window %v", when, r, res)
			}
		}
		start := alignUp(uint64(res.Start), x.s.unit)
		if start+x.s.unit-1 > uint64(res.Last) {
			continue
		}
		_, err := x.s.as.Map(context.Background(), iommu.Mapping{Mem: x.mem[:x.s.unit], IOVA: iommu.IOVA(start), Fixed: true, Perm: iommu.Read | iommu.Write})
		expect(t, fmt.Sprintf("%s: Map inside reserved window %v", when, res), err, errInvalid)
	}
}

// layout builds the first table set with VA page i mapped to data page i
// for i < 7 (page 2 read-only, page 3 not mapped) and VA page 15 to the
// buffer's last page, and attaches the device to a stage-1 HWPT over it.
func (x *nest) layout(t *testing.T) (*smmuv3.Tables, iommu.HWPT) {
	t.Helper()
	tb := x.tables(t, 1)
	for i := range 7 {
		perm := smmuv3.Read | smmuv3.Write
		switch i {
		case 2:
			perm = smmuv3.Read
		case 3:
			continue
		}
		_, ipa := x.page(nestData + i)
		if err := tb.Map(nestVA+uint64(i)*s1Page, ipa, perm); err != nil {
			t.Fatal(err)
		}
	}
	_, last := x.page(nestPages - 1)
	if err := tb.Map(nestVA+15*s1Page, last, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	x.writeCD(t, nestASID, tb)
	return tb, x.stage1(t)
}

func testStage1DMA(t *testing.T, tg Target) {
	x := newNest(t, tg)
	tb, _ := x.layout(t)
	p0, _ := x.page(nestData)
	p1, _ := x.page(nestData + 1)
	if !x.write(t, nestVA, p0, p1) {
		t.Fatalf("the DMA to VA %#x did not land on data page 0", nestVA)
	}
	if !x.write(t, nestVA+s1Page, p1, p0) {
		t.Fatalf("the DMA to VA %#x did not land on data page 1", nestVA+s1Page)
	}

	// The same VA mapped elsewhere, once the walk is invalidated.
	if _, err := tb.Unmap(nestVA); err != nil {
		t.Fatal(err)
	}
	p5, ipa5 := x.page(nestData + 5)
	if err := tb.Map(nestVA, ipa5, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	x.invalidate(t, smmuv3.TLBINHVA(nestASID, nestVA, true))
	if !x.write(t, nestVA, p5, p0) {
		t.Fatalf("after TLBI_NH_VA the DMA to VA %#x did not land on data page 5", nestVA)
	}
	x.none(t, "DMA that translated")
}

func testStage1Faults(t *testing.T, tg Target) {
	x := newNest(t, tg)
	x.layout(t)
	p2, _ := x.page(nestData + 2)
	for i := range p2 {
		p2[i] = 0x3c
	}
	x.load(t, 1)
	x.none(t, "DMA that translated")

	// A write to the read-only page: F_PERMISSION.
	va := uint64(nestVA + 2*s1Page)
	err := x.e.WriteToRAM(va, 0, dmaSize)
	if !bytes.Equal(p2, bytes.Repeat([]byte{0x3c}, s1Page)) {
		t.Fatalf("a DMA write to read-only VA %#x changed the page (engine said %v)", va, err)
	}
	checkFaults(t, x.events(t, 5*time.Second), smmuv3.EventPermission, va, true)
	// Reading it is allowed.
	if err := x.e.ReadFromRAM(va, 0, dmaSize); err != nil {
		t.Fatalf("DMA read from read-only VA %#x: %v", va, err)
	}
	x.none(t, "a read of a read-only page")

	// The page stage 1 does not map: F_TRANSLATION, either way.
	va = nestVA + 3*s1Page
	x.e.WriteToRAM(va, 0, dmaSize) // the engine may say it faulted
	checkFaults(t, x.events(t, 5*time.Second), smmuv3.EventTranslation, va, true)
	x.e.ReadFromRAM(va, 0, dmaSize)
	checkFaults(t, x.events(t, 5*time.Second), smmuv3.EventTranslation, va, false)
}

func testStage2Fault(t *testing.T, tg Target) {
	x := newNest(t, tg)
	tb, _ := x.layout(t)
	// Stage 1 points at an IPA stage 2 does not map: just past the
	// buffer.
	hole := uint64(x.base) + uint64(len(x.mem))
	va := uint64(nestVA + 4*s1Page)
	if _, err := tb.Unmap(va); err != nil {
		t.Fatal(err)
	}
	if err := tb.Map(va, hole, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	x.invalidate(t, smmuv3.TLBINHASID(nestASID))
	before := bytes.Clone(x.mem)
	err := x.e.WriteToRAM(va, 0, dmaSize)
	if !bytes.Equal(before, x.mem) {
		t.Fatalf("a DMA to VA %#x over unmapped IPA %#x wrote the buffer (engine said %v)", va, hole, err)
	}
	// The host owns stage 2: its faults are not the guest's to see
	// (arm_smmu_handle_event forwards stage-1 faults only).
	x.none(t, "a stage-2 fault")
	// The walk still works for the pages stage 2 maps.
	p0, _ := x.page(nestData)
	if !x.write(t, nestVA, p0, nil) {
		t.Fatal("after a stage-2 fault the DMA to the first VA did not land")
	}
}

func testNestInvalidation(t *testing.T, tg Target) {
	ctx := context.Background()
	x := newNest(t, tg)
	x.layout(t)

	// An empty batch: the SMMUv3 driver copies the whole array in and
	// refuses one of none (iommu_copy_struct_from_full_user_array).
	n, err := x.v.Invalidate(ctx, iommu.SMMUv3Commands(nil))
	expect(t, "an empty batch", err, errInvalid)
	if n != 0 {
		t.Errorf("an empty batch: %d handled", n)
	}
	cfgi, err := smmuv3.CFGICD(nestVSID, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := smmuv3.CFGICD(nestVSID+1, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what    string
		cmds    [][2]uint64
		handled int
		w       want
	}{
		{"TLBI_NH_ASID, TLBI_NH_VA, CFGI_CD", [][2]uint64{smmuv3.TLBINHASID(nestASID), smmuv3.TLBINHVA(nestASID, nestVA, true), cfgi}, 3, ok},
		{"an unknown opcode second", [][2]uint64{smmuv3.TLBINHASID(nestASID), {0xff, 0}}, 1, errIO},
		{"CFGI_CD of a vSID no vDEVICE has", [][2]uint64{cfgi, cfgi, unknown, cfgi}, 2, errIO},
		{"a RES0 bit in TLBI_NH_ASID", [][2]uint64{smmuv3.TLBINHASID(nestASID), {smmuv3.TLBINHASID(nestASID)[0] | 1<<8, 0}}, 1, errIO},
	} {
		n, err := x.v.Invalidate(ctx, iommu.SMMUv3Commands(c.cmds))
		expect(t, c.what, err, c.w)
		if n != c.handled {
			t.Errorf("%s: %d handled, want %d", c.what, n, c.handled)
		}
	}

	// A new CD over a second table set, and a new ASID, seen after
	// CFGI_CD.
	tb2 := x.tables(t, 4)
	p6, ipa6 := x.page(nestData + 6)
	_, last := x.page(nestPages - 1)
	for _, m := range []struct{ va, ipa uint64 }{{nestVA, ipa6}, {nestVA + 15*s1Page, last}} {
		if err := tb2.Map(m.va, m.ipa, smmuv3.Read|smmuv3.Write); err != nil {
			t.Fatal(err)
		}
	}
	x.writeCD(t, nestASID+1, tb2)
	x.invalidate(t, cfgi)
	p0, _ := x.page(nestData)
	if !x.write(t, nestVA, p6, p0) {
		t.Fatal("after CFGI_CD the DMA did not go through the new CD's tables")
	}
}

func testNestTeardown(t *testing.T, tg Target) {
	base := tg.Pinned()
	x := newNest(t, tg)
	x.layout(t)
	p0, _ := x.page(nestData)
	if !x.write(t, nestVA, p0, nil) {
		t.Fatal("the stage-1 DMA did not land")
	}
	// Closing the address space with every object alive and the device
	// attached through them leaves nothing: no pins, and a new setup
	// works.
	if err := x.s.as.Close(); err != nil {
		t.Fatalf("close the address space under the nesting objects: %v", err)
	}
	checkPinned(t, tg, "after closing the address space", base, 0)
	for _, o := range []struct {
		what string
		d    interface{ Destroy() error }
	}{{"vIOMMU", x.v}, {"nesting parent", x.parent}} {
		if err := o.d.Destroy(); err == nil {
			t.Errorf("destroy the %s after its address space closed: succeeded", o.what)
		}
	}
	y := newNest(t, tg)
	y.layout(t)
	q0, _ := y.page(nestData)
	if !y.write(t, nestVA, q0, nil) {
		t.Fatal("the stage-1 DMA of a second setup did not land")
	}
}

// testNestTeardownOrders takes the nested setup apart in every one of the
// 720 orders of its six steps (the device back to the address space, and
// destroying the nested HWPT, the event queue, the vDEVICE, the vIOMMU and
// the nesting parent), retrying what is refused: a step is EBUSY exactly
// while something the kernel counts as a user of it lives (the parent's
// vIOMMU; the vIOMMU's vDEVICE, queue and nested HWPT; the nested HWPT's
// attached device), and every order ends with nothing left.
func testNestTeardownOrders(t *testing.T, tg Target) {
	ctx := context.Background()
	base := tg.Pinned()
	x := newNest(t, tg)
	// newNest's objects go in the first round; every round after builds
	// its own.
	const (
		detach = iota
		nestedHWPT
		queue
		vdevice
		viommu
		parent
		steps
	)
	names := [steps]string{"move the device back", "destroy the nested HWPT", "destroy the event queue", "destroy the vDEVICE", "destroy the vIOMMU", "destroy the nesting parent"}
	// users[i] are the steps that must come first for step i to succeed.
	users := [steps][]int{nestedHWPT: {detach}, viommu: {nestedHWPT, queue, vdevice}, parent: {viommu}}
	bypass := iommu.SMMUv3STE{1 | uint64(smmuv3.ConfigBypass)<<1, 0}
	orders, busy := 0, 0
	permute([]int{0, 1, 2, 3, 4, 5}, func(order []int) {
		if t.Failed() {
			return
		}
		var objs [steps]interface{ Destroy() error }
		if orders > 0 {
			var err error
			if x.parent, err = x.n.NewHWPT(ctx, x.s.as, iommu.NestParent); err != nil {
				t.Fatalf("order %d: nesting parent: %v", orders, err)
			}
			if x.v, err = x.n.NewVIOMMU(ctx, x.parent); err != nil {
				t.Fatalf("order %d: vIOMMU: %v", orders, err)
			}
			if x.vd, err = x.v.NewVDevice(ctx, x.s.att, nestVSID); err != nil {
				t.Fatalf("order %d: vDEVICE: %v", orders, err)
			}
			if x.evq, err = x.v.NewEventQueue(ctx, 4); err != nil {
				t.Fatalf("order %d: event queue: %v", orders, err)
			}
		}
		h, err := x.v.NewNested(ctx, x.s.att, bypass)
		if err != nil {
			t.Fatalf("order %d: nested HWPT: %v", orders, err)
		}
		x.attach(t, h)
		objs[nestedHWPT], objs[queue], objs[vdevice], objs[viommu], objs[parent] = h, x.evq, x.vd, x.v, x.parent
		orders++
		var done [steps]bool
		for round := 0; round < steps; round++ {
			for _, i := range order {
				if done[i] {
					continue
				}
				inUse := false
				for _, u := range users[i] {
					inUse = inUse || !done[u]
				}
				var err error
				if i == detach {
					_, err = x.s.as.Attach(ctx, tg.Devices[0])
				} else {
					err = objs[i].Destroy()
				}
				if inUse {
					busy++
					expect(t, fmt.Sprintf("order %v: %s while in use", order, names[i]), err, errBusy)
					continue
				}
				expect(t, fmt.Sprintf("order %v: %s", order, names[i]), err, ok)
				done[i] = err == nil
			}
		}
		for i, d := range done {
			if !d {
				t.Errorf("order %v: %s never succeeded", order, names[i])
			}
		}
	})
	t.Logf("%d orders, %d refusals (EBUSY) on the way", orders, busy)
	if err := x.s.as.Close(); err != nil {
		t.Fatalf("close the address space: %v", err)
	}
	checkPinned(t, tg, "after every order", base, 0)
}

// permute calls f with every permutation of a (Heap's algorithm).
func permute(a []int, f func([]int)) {
	var gen func(k int)
	gen = func(k int) {
		if k <= 1 {
			f(a)
			return
		}
		gen(k - 1)
		for i := 0; i < k-1; i++ {
			if k%2 == 0 {
				a[i], a[k-1] = a[k-1], a[i]
			} else {
				a[0], a[k-1] = a[k-1], a[0]
			}
			gen(k - 1)
		}
	}
	gen(len(a))
}
