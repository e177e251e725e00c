//go:build hwtests && linux

package cdev

import (
	"context"
	"errors"
	"fmt"
	"math"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/hwtests/edu"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
)

const (
	page    = 4096
	srcIOVA = 0x100000 // edu reads from here ...
	dstIOVA = 0x101000 // ... and writes back here
)

var rw = iommu.Read | iommu.Write

func TestBackendEdu(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	before := hwtest.ReadPins(t)
	fds := hwtest.OpenFDs(t)

	b, err := Open(ctx, Options{})
	hwtest.Need(t, "open iommufd backend", err)
	defer b.Close()
	if b.Flavour() != iommu.IOMMUFD {
		t.Fatalf("Flavour = %q", b.Flavour())
	}
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rs, align, err := as.Ranges(ctx); err != nil || align != 1 || len(rs) != 1 || rs[0].Start != 0 || rs[0].Last != math.MaxUint64 {
		t.Errorf("fresh IOAS ranges %v, alignment %d, %v; want everything at 1", rs, align, err)
	}
	at, err := as.Attach(ctx, dev)
	hwtest.Need(t, "attach edu", err)
	a := at.(*Attachment)
	if a.Device().Cdev == "" || a.DeviceID() == 0 || a.HWPT() == 0 || a.HWPT() == as.(*AddressSpace).ID() {
		t.Errorf("attachment %+v, device ID %d, HWPT %d: want the cdev, a device ID and the kernel's HWPT", a.Device(), a.DeviceID(), a.HWPT())
	}
	rs, align, err := as.Ranges(ctx)
	if err != nil || align != page || !inRanges(rs, srcIOVA, 2*page) {
		t.Fatalf("ranges after attach %v, alignment %#x, %v; want 4 KiB with %#x usable", rs, align, err, srcIOVA)
	}
	t.Logf("IOVA ranges with edu attached: %v", rs)
	// VT-d reports its cap/ecap; an SMMUv3 and AMD-Vi on 6.12 report NONE
	// (the ARM_SMMUV3 type is 6.13's; hwtests' TestHWInfo pins them).
	info, err := a.HWInfo(ctx)
	switch kind := hwtest.IOMMUKind(t); kind {
	case hwtest.VTD:
		if err != nil || info.Type != "intel-vtd" || len(info.Data) == 0 {
			t.Errorf("HWInfo = %q (%d bytes), %v; want intel-vtd", info.Type, len(info.Data), err)
		}
	case hwtest.SMMUv3:
		if err != nil || (info.Type != "none" || len(info.Data) != 0) && info.Type != "arm-smmuv3" {
			t.Errorf("HWInfo = %q (%d bytes), %v; want none (6.12) or arm-smmuv3", info.Type, len(info.Data), err)
		}
	case hwtest.AMDVi:
		// 6.12's amd_iommu has no hw_info op: NONE (hwtests' TestHWInfo).
		if err != nil || info.Type != "none" || len(info.Data) != 0 {
			t.Errorf("HWInfo = %q (%d bytes), %v; want none", info.Type, len(info.Data), err)
		}
	default:
		t.Errorf("no HWInfo expectation for %s: got %q (%d bytes), %v", kind, info.Type, len(info.Data), err)
	}

	mem := hwtest.DMABuffer(t, 2*page)
	iova, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw})
	if err != nil || iova != srcIOVA {
		t.Fatalf("Map = %#x, %v", iova, err)
	}
	if got := hwtest.ReadPins(t); got.Pin-before.Pin != 2*page/1024 || got.Lck != before.Lck {
		t.Errorf("pins %+v after an 8 KiB map, %+v before: want VmPin +8 kB", got, before)
	}
	e := hwtest.OpenEdu(t, a.VFIODevice())
	hwtest.RoundTrip(t, e, mem, srcIOVA, dstIOVA)
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA + page, Fixed: true, Perm: rw}); !errors.Is(err, iommu.ErrExists) {
		t.Errorf("overlapping Map = %v; want ErrExists", err)
	}

	mem2 := hwtest.DMABuffer(t, 2*page)
	auto, err := as.Map(ctx, iommu.Mapping{Mem: mem2, Perm: rw})
	if err != nil || !inRanges(rs, uint64(auto), 2*page) {
		t.Fatalf("Map at a kernel-chosen IOVA = %#x, %v", auto, err)
	}
	t.Logf("kernel chose IOVA %#x", auto)
	if uint64(auto)+2*page <= edu.MaxIOVA {
		hwtest.RoundTrip(t, e, mem2, uint64(auto), uint64(auto)+page)
	}

	// Unmap keeps iommufd's answers: nothing there, or a cut, is ENOENT.
	if n, err := as.Unmap(ctx, 0x700000, page); n != 0 || !errors.Is(err, iommu.ErrNotFound) || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Unmap of nothing = %d, %v; want ENOENT as ErrNotFound", n, err)
	}
	if n, err := as.Unmap(ctx, srcIOVA, page); n != 0 || !errors.Is(err, iommu.ErrNotFound) {
		t.Errorf("Unmap cutting a mapping = %d, %v; want ErrNotFound", n, err)
	}

	// Dirty tracking is asked of the kernel's automatic HWPT.
	err = as.(iommu.DirtyTracker).SetDirtyTracking(ctx, true)
	t.Logf("SetDirtyTracking on the automatic HWPT: %v", err)
	if err != nil && !errors.Is(err, iommu.ErrNotSupported) {
		t.Errorf("SetDirtyTracking = %v; want nil or ErrNotSupported", err)
	}

	// Copy from a second IOAS. That IOAS has no device, hence no domain,
	// so its map pins nothing; the copy into the attached IOAS pins the
	// pages once, for its domain.
	as2, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mem3 := hwtest.DMABuffer(t, 2*page)
	pinned := hwtest.ReadPins(t)
	if _, err := as2.Map(ctx, iommu.Mapping{Mem: mem3, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	if got := hwtest.ReadPins(t); got != pinned {
		t.Errorf("pins %+v after a map into an IOAS without a device, %+v before: want none", got, pinned)
	}
	const copyIOVA = 0x400000
	if got, err := as.(iommu.Copier).Copy(ctx, as2, srcIOVA, 2*page, iommu.Mapping{IOVA: copyIOVA, Fixed: true, Perm: rw}); err != nil || got != copyIOVA {
		t.Fatalf("Copy = %#x, %v", got, err)
	}
	if got := hwtest.ReadPins(t); got.Pin-pinned.Pin != 2*page/1024 {
		t.Errorf("pins %+v after Copy into the attached IOAS, %+v before: want VmPin +8 kB", got, pinned)
	}
	hwtest.RoundTrip(t, e, mem3, copyIOVA, copyIOVA+page)

	// AllowIOVAs steers the kernel's choice.
	allowed := []iommu.Range{{Start: 0x800000, Last: 0x8fffff}}
	if err := as.(iommu.IOVAAllower).AllowIOVAs(ctx, allowed); err != nil {
		t.Fatal(err)
	}
	mem4 := hwtest.DMABuffer(t, page)
	if got, err := as.Map(ctx, iommu.Mapping{Mem: mem4, Perm: iommu.Read}); err != nil || !allowed[0].Contains(got, page) {
		t.Errorf("Map with allowed %v = %#x, %v", allowed, got, err)
	}
	if err := as.(iommu.IOVAAllower).AllowIOVAs(ctx, nil); err != nil {
		t.Errorf("clearing the allowed list: %v", err)
	}

	// Unmap(0, MaxUint64) takes everything.
	if n, err := as.Unmap(ctx, 0, math.MaxUint64); err != nil || n != 7*page {
		t.Errorf("Unmap all = %d, %v; want %d", n, err, 7*page)
	}

	// Attaching to another IOAS replaces: the same Attachment moves, and
	// DMA goes through the new IOAS.
	at2, err := as2.Attach(ctx, dev)
	if err != nil || at2 != at {
		t.Fatalf("Attach to a second IOAS = %v, %v; want the same attachment", at2, err)
	}
	hwtest.RoundTrip(t, e, mem3, srcIOVA, srcIOVA+page)
	if err := as.Close(); err != nil {
		t.Errorf("Close of the IOAS the device left: %v", err)
	}
	if err := as.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); !errors.Is(err, iommu.ErrClosed) {
		t.Errorf("Map on a closed IOAS = %v; want ErrClosed", err)
	}

	if err := a.Detach(ctx); err != nil {
		t.Errorf("Detach: %v", err)
	}
	if err := a.Detach(ctx); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	// Unbound by the Detach: another iommufd may take the device.
	other, err := Open(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	oas, err := other.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oas.Attach(ctx, dev); err != nil {
		t.Errorf("Attach to another iommufd after Detach: %v", err)
	}
	if err := other.Close(); err != nil {
		t.Errorf("Close of the other backend: %v", err)
	}

	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := hwtest.ReadPins(t); got != before {
		t.Errorf("pins %+v after Close, %+v before Open", got, before)
	}
	if got := hwtest.OpenFDs(t); got != fds {
		t.Errorf("%d fds open after Close, %d before Open", got, fds)
	}
}

// TestRLimitProcess maps with per-process accounting: the kernel charges
// the process's locked memory instead of the user's pinned count.
func TestRLimitProcess(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	before := hwtest.ReadPins(t)
	b, err := Open(ctx, Options{RLimitMode: iommufd.RLimitProcess})
	hwtest.Need(t, "open iommufd backend", err)
	defer b.Close()
	if mode, err := b.IOMMUFD().RLimitMode(); err != nil || mode != iommufd.RLimitProcess {
		t.Fatalf("RLIMIT_MODE = %d, %v; want per process", mode, err)
	}
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at, err := as.Attach(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	mem := hwtest.DMABuffer(t, 2*page)
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	got := hwtest.ReadPins(t)
	t.Logf("per-process accounting, 8 KiB mapped: VmPin %+d kB, VmLck %+d kB", int64(got.Pin-before.Pin), int64(got.Lck-before.Lck))
	if (got.Pin-before.Pin)+(got.Lck-before.Lck) != 2*page/1024 {
		t.Errorf("pins %+v after an 8 KiB map, %+v before: want 8 kB charged", got, before)
	}
	hwtest.RoundTrip(t, hwtest.OpenEdu(t, at.(*Attachment).VFIODevice()), mem, srcIOVA, dstIOVA)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hwtest.ReadPins(t); got != before {
		t.Errorf("pins %+v after Close, %+v before", got, before)
	}
}

// TestFailNth fails each kernel step of the setup (open, rlimit, IOAS,
// open cdev, bind, attach) in turn, as iommufd_fail_nth does: after each,
// nothing is left open, bound or pinned, and the next setup works.
func TestFailNth(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	mem := hwtest.DMABuffer(t, 2*page)

	// setup runs every step; failAt < 0 fails none and records them.
	setup := func(failAt int) (steps []string, err error) {
		injected := fmt.Errorf("injected at step %d: %w", failAt, syscall.EIO)
		fail := func(step string) error {
			steps = append(steps, step)
			if len(steps)-1 == failAt {
				return injected
			}
			return nil
		}
		b, err := Open(ctx, Options{RLimitMode: iommufd.RLimitProcess, FailStep: fail})
		if err != nil {
			return steps, err
		}
		defer b.Close()
		as, err := b.NewAddressSpace(ctx)
		if err != nil {
			return steps, err
		}
		at, err := as.Attach(ctx, dev)
		if err != nil {
			if len(b.bound) != 0 || len(as.(*AddressSpace).attached) != 0 {
				t.Errorf("failed Attach left %d bound devices", len(b.bound))
			}
			return steps, err
		}
		if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
			return steps, err
		}
		hwtest.RoundTrip(t, hwtest.OpenEdu(t, at.(*Attachment).VFIODevice()), mem, srcIOVA, dstIOVA)
		return steps, b.Close()
	}

	hwtest.SweepSetup(t, setup)
}

// TestFailNthNested fails each kernel step of the nested setup in turn
// (open, IOAS, cdev, bind, attach, nesting parent, vIOMMU, vDEVICE,
// vEVENTQ, nested HWPT, attach to it), and unwinds what was built the way
// a VMM would: every object destroyed, newest first, and each destroy must
// succeed; then nothing is open or pinned and the next setup's DMA lands.
// Where the IOMMU does not nest, the nesting parent is EOPNOTSUPP
// (hwtests' TestNestingObjects pins why, per lane).
func TestFailNthNested(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	mem := hwtest.DMABuffer(t, 2*page)
	{
		b, err := Open(ctx, Options{})
		hwtest.Need(t, "open the iommufd backend", err)
		as, err := b.NewAddressSpace(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at, err := as.Attach(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		info, err := at.(iommu.HWInfoer).HWInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Type != "arm-smmuv3" {
			_, err := at.(iommu.Nester).NewHWPT(ctx, as, iommu.NestParent)
			if !errors.Is(err, iommu.ErrNotSupported) {
				t.Errorf("%s: a nesting parent: %v, want not supported", info.Type, err)
			}
			b.Close()
			return
		}
		b.Close()
	}

	setup := func(failAt int) (steps []string, err error) {
		injected := fmt.Errorf("injected at step %d: %w", failAt, syscall.EIO)
		done := false // the teardown's steps are not the sweep's
		fail := func(step string) error {
			if done {
				return nil
			}
			steps = append(steps, step)
			if len(steps)-1 == failAt {
				return injected
			}
			return nil
		}
		b, err := Open(ctx, Options{FailStep: fail})
		if err != nil {
			return steps, err
		}
		defer func() {
			if cerr := b.Close(); cerr != nil {
				t.Errorf("close the backend: %v", cerr)
			}
		}()
		var built []interface{ Destroy() error }
		unwind := func(err error) ([]string, error) {
			for i := len(built) - 1; i >= 0; i-- {
				if derr := built[i].Destroy(); derr != nil {
					t.Errorf("unwinding after %v: %v", err, derr)
				}
			}
			return steps, err
		}
		as, err := b.NewAddressSpace(ctx)
		if err != nil {
			return steps, err
		}
		at, err := as.Attach(ctx, dev)
		if err != nil {
			return steps, err
		}
		if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
			return steps, err
		}
		n := at.(iommu.Nester)
		parent, err := n.NewHWPT(ctx, as, iommu.NestParent)
		if err != nil {
			return unwind(err)
		}
		built = append(built, parent)
		v, err := n.NewVIOMMU(ctx, parent)
		if err != nil {
			return unwind(err)
		}
		built = append(built, v)
		vd, err := v.NewVDevice(ctx, at, 8)
		if err != nil {
			return unwind(err)
		}
		built = append(built, vd)
		q, err := v.NewEventQueue(ctx, 16)
		if err != nil {
			return unwind(err)
		}
		built = append(built, q)
		// Bypass: stage 2 alone, so the DMA below needs no stage-1 tables
		// (iommutest's nesting cases walk those).
		nested, err := v.NewNested(ctx, at, iommu.SMMUv3STE{1 | 4<<1, 0})
		if err != nil {
			return unwind(err)
		}
		built = append(built, nested)
		if err := n.AttachHWPT(ctx, nested); err != nil {
			return unwind(err)
		}
		hwtest.RoundTrip(t, hwtest.OpenEdu(t, at.(*Attachment).VFIODevice()), mem, srcIOVA, dstIOVA)
		// Back to the IOAS, so the nested HWPT can go.
		done = true
		if _, err := as.Attach(ctx, dev); err != nil {
			t.Errorf("back to the IOAS: %v", err)
		}
		return unwind(nil)
	}
	hwtest.SweepSetup(t, setup)
}

func inRanges(rs []iommu.Range, start, length uint64) bool {
	for _, r := range rs {
		if r.Contains(iommu.IOVA(start), length) {
			return true
		}
	}
	return false
}

// TestSameGroup attaches two functions of one iommu_group: they share the
// kernel's HWPT, and the group cannot be split over two IOASes or two
// iommufds (the group rule).
func TestSameGroup(t *testing.T) {
	ctx := context.Background()
	p, ok := hwtest.NeedPair(t, true)
	if !ok {
		return
	}
	for _, d := range p {
		hwtest.BindVFIO(t, d)
	}
	before := hwtest.ReadPins(t)
	b, err := Open(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var atts [2]*Attachment
	for i, d := range p {
		at, err := as.Attach(ctx, d)
		if err != nil {
			t.Fatalf("attach %s: %v", d.BDF, err)
		}
		atts[i] = at.(*Attachment)
	}
	if atts[0].HWPT() != atts[1].HWPT() {
		t.Errorf("group siblings on HWPTs %d and %d; want one", atts[0].HWPT(), atts[1].HWPT())
	}
	mem := hwtest.DMABuffer(t, 2*page)
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	for _, a := range atts {
		hwtest.RoundTrip(t, hwtest.OpenEdu(t, a.VFIODevice()), mem, srcIOVA, dstIOVA)
	}
	if got := hwtest.ReadPins(t); got.Pin-before.Pin != 2*page/1024 {
		t.Errorf("pins %+v for an 8 KiB map seen by two devices, %+v before: want VmPin +8 kB", got, before)
	}

	// Moving one sibling to another IOAS (replace) moves the whole group.
	as2, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mem2 := hwtest.DMABuffer(t, 2*page)
	if _, err := as2.Map(ctx, iommu.Mapping{Mem: mem2, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	if _, err := as2.Attach(ctx, p[1]); err != nil {
		t.Fatalf("moving one group sibling to another IOAS: %v", err)
	}
	if atts[0].HWPT() != atts[1].HWPT() || atts[0].as != as2 {
		t.Errorf("after the move: HWPTs %d, %d; want the whole group on IOAS %d's", atts[0].HWPT(), atts[1].HWPT(), as2.(*AddressSpace).ID())
	}
	for _, a := range atts {
		hwtest.RoundTrip(t, hwtest.OpenEdu(t, a.VFIODevice()), mem2, srcIOVA, dstIOVA)
	}

	// Detach one sibling: the other keeps DMA. Attaching it afresh to
	// another IOAS than its sibling's splits the group: EINVAL, and the
	// failed attach leaves it unbound.
	if err := atts[0].Detach(ctx); err != nil {
		t.Fatal(err)
	}
	hwtest.RoundTrip(t, hwtest.OpenEdu(t, atts[1].VFIODevice()), mem2, srcIOVA, dstIOVA)
	_, err = as.Attach(ctx, p[0])
	t.Logf("attaching a sibling to another IOAS than the group's: %v", err)
	if !errors.Is(err, iommu.ErrInvalid) {
		t.Errorf("attaching a sibling to another IOAS than the group's = %v; want EINVAL", err)
	}
	if len(b.bound) != 1 {
		t.Errorf("%d devices bound after the failed attach, want 1", len(b.bound))
	}
	// Nor may the sibling bind to a second iommufd while this one owns
	// the group.
	other, err := Open(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	oas, err := other.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = oas.Attach(ctx, p[0])
	t.Logf("binding a sibling to a second iommufd: %v", err)
	if !errors.Is(err, iommu.ErrPermission) {
		t.Errorf("binding a sibling to a second iommufd = %v; want EPERM", err)
	}
	if err := other.Close(); err != nil {
		t.Errorf("Close of the second backend: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hwtest.ReadPins(t); got != before {
		t.Errorf("pins %+v after Close, %+v before", got, before)
	}
}

// TestConcurrentMapUnmap maps and unmaps from several goroutines on one
// IOAS while the device is attached; every call must succeed and leave
// nothing mapped.
func TestConcurrentMapUnmap(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	b, err := Open(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hwtest.ConcurrentMapUnmap(t, b, dev)
}

// TestFailTeardown fails each teardown step (detach, destroy) of a Close:
// the error is reported, and once the backend is closed nothing is left
// open or pinned and the next setup works.
func TestFailTeardown(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	mem := hwtest.DMABuffer(t, 2*page)
	before, fds := hwtest.ReadPins(t), hwtest.OpenFDs(t)
	for _, step := range []string{StepDetach, StepDestroy, ""} {
		tearing := false
		b, err := Open(ctx, Options{FailStep: func(s string) error {
			if tearing && s == step {
				return fmt.Errorf("injected at %s: %w", s, syscall.EIO)
			}
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		as, err := b.NewAddressSpace(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at, err := as.Attach(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
			t.Fatal(err)
		}
		hwtest.RoundTrip(t, hwtest.OpenEdu(t, at.(*Attachment).VFIODevice()), mem, srcIOVA, dstIOVA)
		tearing = true
		err = as.Close()
		if got := errors.Is(err, syscall.EIO); got != (step != "") {
			t.Errorf("Close failing at %q = %v", step, err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("backend Close after failing at %q: %v", step, err)
		}
		if got := hwtest.OpenFDs(t); got != fds {
			t.Errorf("after failing at %q: %d fds open, %d before", step, got, fds)
		}
		if got := hwtest.ReadPins(t); got != before {
			t.Errorf("after failing at %q: pins %+v, %+v before", step, got, before)
		}
	}
}
