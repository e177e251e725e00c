package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/emulated"
	"github.com/iommu-agent/iommu-agent/ioctl/smmuv3"
)

// The nested demo's layout: guest memory (16 pages) at IPA nestIPA holds
// the CD, the stage-1 tables and the data pages; stage-1 VAs start at
// nestVA.
const (
	nestIPA  = 0x1000000
	nestVA   = 0x200000
	nestVSID = 8
	nestASID = 1
	pg       = 4096
)

// demoNested walks what a VMM does for a guest that owns stage 1, on the
// emulated SMMUv3 (the same calls work on the cdev backend of a host whose
// SMMUv3 nests): a nesting parent over the address space holding guest
// memory, a vIOMMU, a vDEVICE, an event queue, a nested HWPT whose vSTE
// points at a CD and tables in guest memory; then DMA through both stages,
// a stale walk until the guest's TLBI, and faults coming back as events.
func demoNested(ctx context.Context, w io.Writer) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	start := time.Now()
	dev := iommu.Device{BDF: "0000:00:01.0", Group: 1}
	b, err := emulated.New(emulated.Options{IOMMU: emulated.SMMUv3, Devices: []iommu.Device{dev}})
	if err != nil {
		return err
	}
	defer b.Close()
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		return err
	}
	at, err := as.Attach(ctx, dev)
	if err != nil {
		return err
	}
	guest := make([]byte, 16*pg)
	if _, err := as.Map(ctx, iommu.Mapping{Mem: guest, IOVA: nestIPA, Fixed: true, Perm: iommu.Read | iommu.Write}); err != nil {
		return err
	}
	p("iommu-agent demo -nested: nested translation on the emulated SMMUv3 (%s)", dev.BDF)
	p("\n1. stage 2, the VMM's: guest memory, 16 pages, mapped at IPA %#x in an address space (IOAS)", nestIPA)

	n := at.(iommu.Nester)
	parent, err := n.NewHWPT(ctx, as, iommu.NestParent)
	if err != nil {
		return err
	}
	v, err := n.NewVIOMMU(ctx, parent)
	if err != nil {
		return err
	}
	vd, err := v.NewVDevice(ctx, at, nestVSID)
	if err != nil {
		return err
	}
	q, err := v.NewEventQueue(ctx, 64)
	if err != nil {
		return err
	}
	p("2. nesting parent HWPT %d over it, vIOMMU %d, the device as virtual StreamID %d, an event queue",
		parent.ID(), v.ID(), vd.VirtID())

	// The guest's side: tables in pages 1-3, data from page 8.
	tb, err := smmuv3.NewTables(guest[pg:4*pg], nestIPA+pg, 39)
	if err != nil {
		return err
	}
	data := func(i int) ([]byte, uint64) { return guest[(8+i)*pg : (9+i)*pg], nestIPA + uint64(8+i)*pg }
	_, ipa0 := data(0)
	_, ipa1 := data(1)
	_, ipa2 := data(2)
	for _, m := range []struct {
		va, ipa uint64
		perm    smmuv3.Perm
	}{{nestVA, ipa0, smmuv3.Read | smmuv3.Write}, {nestVA + pg, ipa1, smmuv3.Read}} {
		if err := tb.Map(m.va, m.ipa, m.perm); err != nil {
			return err
		}
	}
	cd, err := smmuv3.CD{ASID: nestASID, TTB0: tb.Root(), T0SZ: tb.T0SZ(), IPS: 2, MAIR: 0xff}.Words()
	if err != nil {
		return err
	}
	for i, word := range cd {
		binary.LittleEndian.PutUint64(guest[8*i:], word)
	}
	ste, err := smmuv3.VSTE(smmuv3.ConfigS1Trans, nestIPA)
	if err != nil {
		return err
	}
	s1, err := v.NewNested(ctx, at, iommu.SMMUv3STE(ste))
	if err != nil {
		return err
	}
	if err := n.AttachHWPT(ctx, s1); err != nil {
		return err
	}
	p("3. stage 1, the guest's: a CD (ASID %d) at IPA %#x, 4 KiB-granule tables at IPA %#x mapping", nestASID, nestIPA, tb.Root())
	p("   VA %#x -> IPA %#x (rw) and VA %#x -> IPA %#x (read-only); nested HWPT %d with %v, attached", nestVA, ipa0, nestVA+pg, ipa1, s1.ID(), iommu.SMMUv3STE(ste))

	e := at.(*emulated.Attachment).DMA()
	write := func(va uint64, msg string) error {
		copy(e.Buffer(), msg)
		return e.WriteToRAM(va, 0, len(msg))
	}
	where := func(msg string) string {
		for i := range 8 {
			if d, ipa := data(i); bytes.HasPrefix(d, []byte(msg)) {
				return fmt.Sprintf("IPA %#x (data page %d)", ipa, i)
			}
		}
		return "nowhere"
	}
	msg := "through both stages"
	if err := write(nestVA, msg); err != nil {
		return err
	}
	p("\n4. the device writes %q to VA %#x: it lands at %s", msg, nestVA, where(msg))

	if _, err := tb.Unmap(nestVA); err != nil {
		return err
	}
	if err := tb.Map(nestVA, ipa2, smmuv3.Read|smmuv3.Write); err != nil {
		return err
	}
	msg = "before the guest's TLBI"
	if err := write(nestVA, msg); err != nil {
		return err
	}
	p("5. the guest points VA %#x at IPA %#x; %q still lands at %s: the walk is cached", nestVA, ipa2, msg, where(msg))
	if _, err := v.Invalidate(ctx, iommu.SMMUv3Commands{smmuv3.TLBINHVA(nestASID, nestVA, true)}); err != nil {
		return err
	}
	msg = "after the guest's TLBI"
	if err := write(nestVA, msg); err != nil {
		return err
	}
	p("   CMD_TLBI_NH_VA through the vIOMMU; %q lands at %s", msg, where(msg))

	p("\n6. faults the guest sees, from the event queue:")
	for _, f := range []struct {
		what string
		va   uint64
	}{{"a write to the read-only page", nestVA + pg}, {"a write to a VA stage 1 does not map", nestVA + 5*pg}} {
		err := write(f.va, "blocked")
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		evs, rerr := q.Read(rctx)
		cancel()
		if rerr != nil {
			return fmt.Errorf("%s: no event: %w (the DMA said %v)", f.what, rerr, err)
		}
		for _, ev := range evs {
			if ev.Lost {
				p("   (events lost before #%d)", ev.Sequence)
				continue
			}
			dec, derr := smmuv3.DecodeEvent(ev.Record)
			if derr != nil {
				return derr
			}
			p("   %s: event #%d %v", f.what, ev.Sequence, dec)
		}
	}

	if err := as.Close(); err != nil {
		return err
	}
	p("\n7. closing the address space destroys the nested HWPT, vDEVICE, event queue, vIOMMU and parent: %d objects, %d bytes pinned left",
		b.Objects(), b.Pinned())
	p("\ndone in %v. On a host whose SMMUv3 nests (probe -hwinfo says so), the cdev backend takes the same calls,", time.Since(start).Round(time.Microsecond))
	p("which a VMM makes for a guest that drives its own vSMMU.")
	return nil
}
