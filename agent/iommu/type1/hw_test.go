//go:build hwtests && linux

package type1

import (
	"context"
	"errors"
	"fmt"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"math"
	"os"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

const (
	page    = 4096
	srcIOVA = 0x100000 // edu reads from here ...
	dstIOVA = 0x101000 // ... and writes back here
)

var rw = iommu.Read | iommu.Write

// wantFlavour is what the guest's module build serves at /dev/vfio/vfio:
// the compat build has no vfio_iommu_type1.
func wantFlavour() iommu.Flavour {
	if _, err := os.Stat("/sys/module/vfio_iommu_type1"); err != nil {
		return iommu.Compat
	}
	return iommu.Type1v2
}

// charged is how many kB of pins the two counters gained: type1 charges
// VmLck, the compat container (iommufd) VmPin.
func charged(now, before hwtest.Pins) int64 {
	return int64(now.Pin-before.Pin) + int64(now.Lck-before.Lck)
}

func TestBackendEdu(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	before := hwtest.ReadPins(t)
	fds := hwtest.OpenFDs(t)

	b, err := Open(ctx, Options{})
	hwtest.Need(t, "open type1 backend", err)
	defer b.Close()
	flavour := b.Flavour()
	t.Logf("flavour %s", flavour)
	if want := wantFlavour(); flavour != want {
		t.Fatalf("Flavour = %q; the module build says %q", flavour, want)
	}
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mem := hwtest.DMABuffer(t, 2*page)

	// Before any group the container has no IOMMU model: the kernel's
	// answer stands.
	_, err = as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw})
	t.Logf("Map before any attach: %v", err)
	if err == nil {
		t.Fatal("Map before any attach succeeded")
	}
	_, _, err = as.Ranges(ctx)
	t.Logf("Ranges before any attach: %v", err)
	if err == nil {
		t.Error("Ranges before any attach succeeded")
	}

	at, err := as.Attach(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	a := at.(*Attachment)
	if _, err := as.Attach(ctx, dev); !errors.Is(err, iommu.ErrExists) {
		t.Errorf("second Attach of the device = %v; want ErrExists", err)
	}
	as2, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as2.Attach(ctx, dev); !errors.Is(err, iommu.ErrBusy) {
		t.Errorf("Attach into a second container = %v; want ErrBusy", err)
	}
	if err := as2.Close(); err != nil {
		t.Errorf("Close of the empty container: %v", err)
	}
	rs, align, err := as.Ranges(ctx)
	if err != nil || align != page || !inRanges(rs, srcIOVA, 2*page) {
		t.Fatalf("ranges %v, alignment %#x, %v; want 4 KiB with %#x usable", rs, align, err, srcIOVA)
	}
	t.Logf("IOVA ranges: %v", rs)

	if iova, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil || iova != srcIOVA {
		t.Fatalf("Map = %#x, %v", iova, err)
	}
	now := hwtest.ReadPins(t)
	t.Logf("8 KiB mapped: VmPin %+d kB, VmLck %+d kB", int64(now.Pin-before.Pin), int64(now.Lck-before.Lck))
	if charged(now, before) != 2*page/1024 {
		t.Errorf("pins %+v after an 8 KiB map, %+v before", now, before)
	}
	e := hwtest.OpenEdu(t, a.VFIODevice())
	hwtest.RoundTrip(t, e, mem, srcIOVA, dstIOVA)
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA + page, Fixed: true, Perm: rw}); !errors.Is(err, iommu.ErrExists) {
		t.Errorf("overlapping Map = %v; want ErrExists", err)
	}

	// The backend picks IOVAs itself on type1.
	mem2 := hwtest.DMABuffer(t, 2*page)
	auto, err := as.Map(ctx, iommu.Mapping{Mem: mem2, Perm: rw})
	if err != nil || !inRanges(rs, uint64(auto), 2*page) || (auto < srcIOVA+2*page && srcIOVA < auto+2*page) {
		t.Fatalf("Map at a chosen IOVA = %#x, %v", auto, err)
	}
	t.Logf("backend chose IOVA %#x", auto)
	hwtest.RoundTrip(t, e, mem2, uint64(auto), uint64(auto)+page)

	// Unmap keeps the kernel's answers, which differ per flavour.
	n, err := as.Unmap(ctx, 0x700000, page)
	t.Logf("Unmap of nothing: %d, %v", n, err)
	if n != 0 || err != nil { // compat too, unlike IOMMU_IOAS_UNMAP
		t.Errorf("%s Unmap of nothing = %d, %v; want 0 bytes", flavour, n, err)
	}
	n, err = as.Unmap(ctx, srcIOVA, page)
	t.Logf("Unmap cutting a mapping: %d, %v", n, err)
	switch flavour {
	case iommu.Type1v2:
		if !errors.Is(err, iommu.ErrInvalid) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("type1v2 Unmap cutting a mapping = %d, %v; want EINVAL", n, err)
		}
	case iommu.Compat:
		if !errors.Is(err, iommu.ErrNotFound) || !errors.Is(err, syscall.ENOENT) {
			t.Errorf("compat Unmap cutting a mapping = %d, %v; want ENOENT", n, err)
		}
	}

	// Dirty logging: type1 reports every pinned page dirty; compat has none.
	dt := as.(iommu.DirtyTracker)
	err = dt.SetDirtyTracking(ctx, true)
	t.Logf("SetDirtyTracking: %v", err)
	switch flavour {
	case iommu.Type1v2:
		if err != nil {
			t.Fatalf("SetDirtyTracking = %v", err)
		}
		hwtest.RoundTrip(t, e, mem, srcIOVA, dstIOVA)
		bm, err := dt.ReadDirty(ctx, srcIOVA, 2*page, page, false)
		if err != nil || len(bm) != 1 || bm[0]&0b10 == 0 {
			t.Errorf("ReadDirty = %b, %v; want the DMA-written page dirty", bm, err)
		}
		t.Logf("dirty bitmap after the DMA: %b", bm)
		if err := dt.SetDirtyTracking(ctx, false); err != nil {
			t.Errorf("stop dirty tracking: %v", err)
		}
	case iommu.Compat:
		if !errors.Is(err, iommu.ErrNotSupported) {
			t.Errorf("compat SetDirtyTracking = %v; want ErrNotSupported", err)
		}
	}

	if n, err := as.Unmap(ctx, 0, math.MaxUint64); err != nil || n != 4*page {
		t.Errorf("Unmap all = %d, %v; want %d", n, err, 4*page)
	}
	if got := hwtest.ReadPins(t); got != before {
		t.Errorf("pins %+v after unmapping all, %+v before", got, before)
	}

	// The last device out takes the group out. type1 drops the container's
	// mappings and IOMMU model; the compat container's IOAS keeps the
	// mapping, unpinned while no domain needs it. The next Attach sets the
	// IOMMU again.
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	if err := a.Detach(ctx); err != nil {
		t.Errorf("Detach: %v", err)
	}
	if err := a.Detach(ctx); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if got := hwtest.ReadPins(t); got != before {
		t.Errorf("pins %+v after the last group left, %+v before", got, before)
	}
	_, err = as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw})
	t.Logf("Map after the last group left: %v", err)
	if err == nil {
		t.Error("Map after the last group left succeeded")
	}
	at, err = as.Attach(ctx, dev)
	if err != nil {
		t.Fatalf("Attach after Detach: %v", err)
	}
	_, err = as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw})
	switch flavour {
	case iommu.Type1v2:
		if err != nil {
			t.Fatalf("type1 Map after re-attach: the old mapping should be gone: %v", err)
		}
	case iommu.Compat:
		if !errors.Is(err, iommu.ErrExists) {
			t.Fatalf("compat Map after re-attach = %v; want ErrExists, the IOAS kept the mapping", err)
		}
	}
	if got := charged(hwtest.ReadPins(t), before); got != 2*page/1024 {
		t.Errorf("%d kB charged after re-attach with one 8 KiB mapping", got)
	}
	hwtest.RoundTrip(t, hwtest.OpenEdu(t, at.(*Attachment).VFIODevice()), mem, srcIOVA, dstIOVA)

	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); !errors.Is(err, iommu.ErrClosed) {
		t.Errorf("Map after Close = %v; want ErrClosed", err)
	}
	if got := hwtest.ReadPins(t); got != before {
		t.Errorf("pins %+v after Close, %+v before Open", got, before)
	}
	if got := hwtest.OpenFDs(t); got != fds {
		t.Errorf("%d fds open after Close, %d before Open", got, fds)
	}
}

// TestTwoGroups puts two edu functions, each its own group, into one
// container, then into two: one container pins the shared pages once, two
// containers pin them twice (the accounting iommufd's shared IOAS fixes).
func TestTwoGroups(t *testing.T) {
	ctx := context.Background()
	p, ok := hwtest.NeedPair(t, false)
	if !ok {
		return
	}
	devs := p[:]
	for _, d := range devs[:2] {
		hwtest.BindVFIO(t, d)
	}
	before := hwtest.ReadPins(t)
	b, err := Open(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mem := hwtest.DMABuffer(t, 2*page)

	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var atts []*Attachment
	for _, d := range devs[:2] {
		at, err := as.Attach(ctx, d)
		if err != nil {
			t.Fatalf("attach %s: %v", d.BDF, err)
		}
		atts = append(atts, at.(*Attachment))
	}
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	for _, a := range atts {
		hwtest.RoundTrip(t, hwtest.OpenEdu(t, a.VFIODevice()), mem, srcIOVA, dstIOVA)
	}
	if got := charged(hwtest.ReadPins(t), before); got != 2*page/1024 {
		t.Errorf("one container, two groups: %d kB charged for an 8 KiB map, want 8", got)
	}
	// Move the second group into a container of its own.
	if err := atts[1].Detach(ctx); err != nil {
		t.Fatal(err)
	}
	as2, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at2, err := as2.Attach(ctx, devs[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as2.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	hwtest.RoundTrip(t, hwtest.OpenEdu(t, at2.(*Attachment).VFIODevice()), mem, srcIOVA, dstIOVA)
	got := charged(hwtest.ReadPins(t), before)
	t.Logf("two containers, the same 8 KiB mapped in each: %d kB charged", got)
	if b.Flavour() == iommu.Type1v2 && got != 2*2*page/1024 {
		t.Errorf("two type1 containers: %d kB charged, want 16 (each container charges)", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hwtest.ReadPins(t); got != before {
		t.Errorf("pins %+v after Close, %+v before", got, before)
	}
}

// TestFailNth fails each kernel step of the setup (open container, open
// group, status, set container, set IOMMU, device fd) in turn: after each,
// nothing is left open, in a container or pinned, and the next setup works.
func TestFailNth(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	mem := hwtest.DMABuffer(t, 2*page)

	setup := func(failAt int) (steps []string, err error) {
		injected := fmt.Errorf("injected at step %d: %w", failAt, syscall.EIO)
		fail := func(step string) error {
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
		defer b.Close()
		as, err := b.NewAddressSpace(ctx)
		if err != nil {
			return steps, err
		}
		at, err := as.Attach(ctx, dev)
		if err != nil {
			if len(b.groups) != 0 || len(as.(*AddressSpace).groups) != 0 {
				t.Errorf("failed Attach left groups %v", b.groups)
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

func inRanges(rs []iommu.Range, start, length uint64) bool {
	for _, r := range rs {
		if r.Contains(iommu.IOVA(start), length) {
			return true
		}
	}
	return false
}

// TestSameGroup attaches two functions of one iommu_group: they share the
// group in the container, and the group leaves only with its last device.
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
	if len(b.groups) != 1 || atts[0].g != atts[1].g {
		t.Errorf("two devices of group %d opened %d groups", p[0].Group, len(b.groups))
	}
	mem := hwtest.DMABuffer(t, 2*page)
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	for _, a := range atts {
		hwtest.RoundTrip(t, hwtest.OpenEdu(t, a.VFIODevice()), mem, srcIOVA, dstIOVA)
	}
	if got := charged(hwtest.ReadPins(t), before); got != 2*page/1024 {
		t.Errorf("%d kB charged for an 8 KiB map seen by two devices, want 8", got)
	}
	// The group is in this container: a sibling cannot go elsewhere.
	as2, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := atts[1].Detach(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := as2.Attach(ctx, p[1]); !errors.Is(err, iommu.ErrBusy) {
		t.Errorf("attaching a sibling into a second container = %v; want ErrBusy", err)
	}
	// The first device keeps the group and its mapping.
	hwtest.RoundTrip(t, hwtest.OpenEdu(t, atts[0].VFIODevice()), mem, srcIOVA, dstIOVA)
	if err := atts[0].Detach(ctx); err != nil {
		t.Fatal(err)
	}
	if len(b.groups) != 0 {
		t.Errorf("groups %v still open after the last device left", b.groups)
	}
	// Now the group may join the second container.
	at, err := as2.Attach(ctx, p[1])
	if err != nil {
		t.Fatalf("attach into the second container after the group left the first: %v", err)
	}
	if _, err := as2.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
		t.Fatal(err)
	}
	hwtest.RoundTrip(t, hwtest.OpenEdu(t, at.(*Attachment).VFIODevice()), mem, srcIOVA, dstIOVA)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hwtest.ReadPins(t); got != before {
		t.Errorf("pins %+v after Close, %+v before", got, before)
	}
}

// TestConcurrentMapUnmap maps at backend-chosen IOVAs and unmaps from
// several goroutines on one container.
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

// TestFailTeardown fails VFIO_GROUP_UNSET_CONTAINER in a Close: the error
// is reported, the group is closed anyway, and nothing is left open or
// pinned; the group can join a container again.
func TestFailTeardown(t *testing.T) {
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	mem := hwtest.DMABuffer(t, 2*page)
	before, fds := hwtest.ReadPins(t), hwtest.OpenFDs(t)
	for _, step := range []string{StepUnsetContainer, ""} {
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
			t.Fatalf("attach after failing at %q: %v", step, err)
		}
		if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: srcIOVA, Fixed: true, Perm: rw}); err != nil {
			t.Fatal(err)
		}
		hwtest.RoundTrip(t, hwtest.OpenEdu(t, at.(*Attachment).VFIODevice()), mem, srcIOVA, dstIOVA)
		tearing = true
		err = b.Close()
		if got := errors.Is(err, syscall.EIO); got != (step != "") {
			t.Errorf("Close failing at %q = %v", step, err)
		}
		if got := hwtest.OpenFDs(t); got != fds {
			t.Errorf("after failing at %q: %d fds open, %d before", step, got, fds)
		}
		if got := hwtest.ReadPins(t); got != before {
			t.Errorf("after failing at %q: pins %+v, %+v before", step, got, before)
		}
	}
}
