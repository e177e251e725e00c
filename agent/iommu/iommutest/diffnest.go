package iommutest

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/ioctl/smmuv3"
)

// The differential test's nesting operations (GenConfig.Nest): HWPTs,
// vIOMMUs, vDEVICEs, nested HWPTs, event queues, attaching the device to
// HWPTs, invalidations and destroys, valid and not, over an SMMUv3 that
// nests. Every object an operation allocates takes the next slot of the
// side's list, nil when the allocation failed, so the sides' slots line up
// while their answers agree; operations name objects by slot.

// Nesting operation kinds, after the address-space ones.
const (
	OpNewHWPT    OpKind = iota + opState + 1 // Nester.NewHWPT over Space (Other when Op.Other), Op.Flags
	OpNewVIOMMU                              // Nester.NewVIOMMU over slot Op.Slot
	OpNewVDevice                             // vIOMMU Op.Slot: NewVDevice(Op.VirtID)
	OpNewNested                              // vIOMMU Op.Slot: NewNested(Op.STE)
	OpNewEventQ                              // vIOMMU Op.Slot: NewEventQueue(Op.Depth)
	OpAttachHWPT                             // Nester.AttachHWPT(slot Op.Slot)
	OpInvalidate                             // vIOMMU Op.Slot: Invalidate(Op.Cmds)
	OpDestroy                                // slot Op.Slot's Destroy
	OpNestReset                              // the device back on Space, every object destroyed, slots cleared
)

var nestOpNames = [...]string{"new-hwpt", "new-viommu", "new-vdevice", "new-nested", "new-eventq", "attach-hwpt", "invalidate", "destroy", "nest-reset"}

// NestOp is the nesting part of an Op.
type NestOp struct {
	Slot   int
	Flags  iommu.HWPTFlags
	VirtID uint64
	STE    iommu.SMMUv3STE
	Depth  uint32
	Cmds   iommu.SMMUv3Commands
}

func (o Op) nestString() string {
	n := o.Nest
	switch o.Kind {
	case OpNewHWPT:
		return fmt.Sprintf("new-hwpt flags=%#x other=%v", uint32(n.Flags), o.Other)
	case OpNewVIOMMU, OpAttachHWPT, OpDestroy:
		return fmt.Sprintf("%v slot=%d", o.Kind, n.Slot)
	case OpNewVDevice:
		return fmt.Sprintf("new-vdevice slot=%d virt=%#x", n.Slot, n.VirtID)
	case OpNewNested:
		return fmt.Sprintf("new-nested slot=%d %v", n.Slot, n.STE)
	case OpNewEventQ:
		return fmt.Sprintf("new-eventq slot=%d depth=%d", n.Slot, n.Depth)
	case OpInvalidate:
		return fmt.Sprintf("invalidate slot=%d cmds=%#x", n.Slot, [][2]uint64(n.Cmds))
	}
	return o.Kind.String()
}

// nestGen draws nesting operations; slots counts the slots the ops so far
// allocate on either side.
type nestGen struct {
	r     *rand.Rand
	c     GenConfig
	slots int
}

// slot picks an earlier slot, the recent ones more often; -1 when none.
func (g *nestGen) slot() int {
	if g.slots == 0 {
		return -1
	}
	if g.r.IntN(2) == 0 {
		return g.slots - 1 - g.r.IntN(min(g.slots, 4))
	}
	return g.r.IntN(g.slots)
}

// vsid is a virtual StreamID: mostly a few small ones, so vDEVICEs collide
// and CFGI_CD finds them or not.
func (g *nestGen) vsid() uint64 {
	if g.r.IntN(16) == 0 {
		return g.r.Uint64N(1 << 32)
	}
	return uint64(1 + g.r.IntN(4))
}

// ste is a vSTE: abort, bypass or stage 1 over an IPA in the window, or
// one with bits the kernel refuses, or not valid at all.
func (g *nestGen) ste() iommu.SMMUv3STE {
	r := g.r
	cfg := []smmuv3.Config{smmuv3.ConfigAbort, smmuv3.ConfigBypass, smmuv3.ConfigS1Trans}[r.IntN(3)]
	cd := uint64(g.c.Base) + r.Uint64N(g.c.Pages)*g.c.PageSize
	var s [2]uint64
	if cfg == smmuv3.ConfigS1Trans {
		s, _ = smmuv3.VSTE(cfg, cd)
	} else {
		s, _ = smmuv3.VSTE(cfg, 0)
	}
	switch r.IntN(10) {
	case 0: // any bit of either word
		s[r.IntN(2)] ^= 1 << r.IntN(64)
	case 1: // any Config
		s[0] = s[0]&^(7<<1) | uint64(r.IntN(8))<<1
	case 2: // not valid: the rest is ignored
		s[0] &^= 1
		s[1] = r.Uint64()
	case 3: // EATS, S1DSS and the cacheability fields
		s[1] = r.Uint64() & (3<<28 | 3 | 0xff<<2)
	}
	return iommu.SMMUv3STE(s)
}

// cmd is one invalidation command, valid or not.
func (g *nestGen) cmd() [2]uint64 {
	r := g.r
	asid := uint16(r.IntN(4))
	va := nestVA + r.Uint64N(16)*s1Page
	var c [2]uint64
	switch r.IntN(9) {
	case 0:
		c = smmuv3.TLBINHASID(asid)
	case 1:
		c = smmuv3.TLBINHVA(asid, va, r.IntN(2) == 0)
	case 2:
		c = [2]uint64{smmuv3.OpTLBINHVAA, va}
	case 3:
		c = [2]uint64{smmuv3.OpTLBINHAll, 0}
	case 4:
		c = [2]uint64{0x30, 0} // TLBI_NSNH_ALL
	case 5:
		c, _ = smmuv3.CFGICD(uint32(g.vsid()), 0, r.IntN(2) == 0)
	case 6:
		c = [2]uint64{smmuv3.OpCFGICDAll | g.vsid()<<32, 0}
	case 7:
		c = [2]uint64{0x40 | g.vsid()<<32, 0} // ATC_INV
	default:
		c = [2]uint64{uint64(r.IntN(256)), r.Uint64()} // any opcode
	}
	if r.IntN(8) == 0 { // a stray bit
		c[r.IntN(2)] ^= 1 << r.IntN(64)
	}
	return c
}

// next draws one nesting operation.
func (g *nestGen) next() Op {
	r := g.r
	o := Op{Nest: &NestOp{Slot: g.slot()}}
	switch k := r.IntN(100); {
	case k < 14:
		o.Kind = OpNewHWPT
		o.Other = g.c.Other && r.IntN(6) == 0
		o.Nest.Flags = []iommu.HWPTFlags{0, iommu.NestParent, iommu.NestParent, iommu.DirtyTracking, iommu.NestParent | iommu.DirtyTracking, 1 << 7}[r.IntN(6)]
	case k < 26:
		o.Kind = OpNewVIOMMU
	case k < 38:
		o.Kind = OpNewVDevice
		o.Nest.VirtID = g.vsid()
	case k < 54:
		o.Kind = OpNewNested
		o.Nest.STE = g.ste()
	case k < 60:
		o.Kind = OpNewEventQ
		o.Nest.Depth = []uint32{0, 1, 16, 1 << 19, 1<<19 + 1}[r.IntN(5)]
	case k < 72:
		o.Kind = OpAttachHWPT
	case k < 86:
		o.Kind = OpInvalidate
		for range r.IntN(5) {
			o.Nest.Cmds = append(o.Nest.Cmds, g.cmd())
		}
	case k < 99:
		o.Kind = OpDestroy
	default:
		o.Kind = OpNestReset
	}
	switch o.Kind {
	case OpNewHWPT, OpNewVIOMMU, OpNewVDevice, OpNewNested, OpNewEventQ:
		g.slots++
	case OpNestReset:
		g.slots = 0
	}
	return o
}

// nestSlot is an object a nesting operation allocated.
type nestSlot struct {
	kind OpKind
	obj  interface{ Destroy() error }
}

// hwpt returns slot i as a HWPT, if it holds one.
func (s *side) hwpt(i int) (iommu.HWPT, bool) {
	if i < 0 || i >= len(s.slots) || s.slots[i].obj == nil {
		return nil, false
	}
	switch s.slots[i].kind {
	case OpNewHWPT, OpNewNested:
		return s.slots[i].obj.(iommu.HWPT), true
	}
	return nil, false
}

// viommu returns slot i as a vIOMMU, if it holds one.
func (s *side) viommu(i int) (iommu.VIOMMU, bool) {
	if i < 0 || i >= len(s.slots) || s.slots[i].obj == nil || s.slots[i].kind != OpNewVIOMMU {
		return nil, false
	}
	return s.slots[i].obj.(iommu.VIOMMU), true
}

// applyNest applies a nesting operation. One that names a slot holding no
// object of the kind it needs, or needs the device while it is detached,
// answers nothing on either side.
func (s *side) applyNest(ctx context.Context, o Op) Result {
	var r Result
	n := o.Nest
	nester, _ := s.Attachment.(iommu.Nester)
	live := nester != nil && !s.Detached
	add := func(kind OpKind, obj interface{ Destroy() error }, err error) {
		r.Err = err
		if err != nil {
			obj = nil
		}
		s.slots = append(s.slots, nestSlot{kind: kind, obj: obj})
	}
	switch o.Kind {
	case OpNewHWPT:
		if !live {
			add(o.Kind, nil, nil)
			break
		}
		space := s.Space
		if o.Other && s.Other != nil {
			space = s.Other
		}
		h, err := nester.NewHWPT(ctx, space, n.Flags)
		add(o.Kind, h, err)
	case OpNewVIOMMU:
		p, ok := s.hwpt(n.Slot)
		if !live || !ok {
			add(o.Kind, nil, nil)
			break
		}
		v, err := nester.NewVIOMMU(ctx, p)
		add(o.Kind, v, err)
	case OpNewVDevice, OpNewNested, OpNewEventQ:
		v, ok := s.viommu(n.Slot)
		if !ok || (!live && o.Kind != OpNewEventQ) {
			add(o.Kind, nil, nil)
			break
		}
		switch o.Kind {
		case OpNewVDevice:
			vd, err := v.NewVDevice(ctx, s.Attachment, n.VirtID)
			add(o.Kind, vd, err)
		case OpNewNested:
			h, err := v.NewNested(ctx, s.Attachment, n.STE)
			add(o.Kind, h, err)
		default:
			q, err := v.NewEventQueue(ctx, n.Depth)
			add(o.Kind, q, err)
		}
	case OpAttachHWPT:
		if h, ok := s.hwpt(n.Slot); live && ok {
			r.Err = nester.AttachHWPT(ctx, h)
		}
	case OpInvalidate:
		if v, ok := s.viommu(n.Slot); ok {
			var k int
			k, r.Err = v.Invalidate(ctx, n.Cmds)
			r.N = uint64(k)
		}
	case OpDestroy:
		if n.Slot >= 0 && n.Slot < len(s.slots) && s.slots[n.Slot].obj != nil {
			r.Err = s.slots[n.Slot].obj.Destroy()
		}
	case OpNestReset:
		if s.Attachment != nil && !s.Detached {
			if at, err := s.Space.Attach(ctx, s.Attachment.Device()); err == nil {
				s.Attachment = at
			}
		}
		for i := len(s.slots) - 1; i >= 0; i-- {
			if o := s.slots[i].obj; o != nil {
				o.Destroy() // destroyed before, or refused: both sides alike
			}
		}
		s.slots = nil
	}
	return r
}
