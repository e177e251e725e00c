//go:build hwtests && linux

package guest_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/tools/txtar"
)

// The same flags as the hwtests package: the guest sets HWTESTS_STRICT=1.
var (
	destructive = flag.Bool("destructive", false, "allow rebinding devices to vfio-pci (implied by HWTESTS_STRICT=1)")
	snapshot    = flag.Bool("snapshot", false, "log a txtar snapshot of this host's sysfs")
)

func strict() bool { return os.Getenv("HWTESTS_STRICT") == "1" }

// guestEdu finds QEMU's edu devices on the live host; without one the test
// skips, or fails in the guest. A driverless edu without an iommu_group is
// probed once first (probeGroup), so every edu returned has its group.
func guestEdu(t *testing.T, f *sysfs.FS) []sysfs.Device {
	t.Helper()
	devs, err := f.Devices()
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	var edus []sysfs.Device
	for _, d := range devs {
		if d.Vendor == 0x1234 && d.Device == 0x11e8 {
			if d.IOMMUGroup == nil && d.Driver == "" {
				probeGroup(t, f, d.Address)
				if d, err = f.Device(d.Address); err != nil {
					t.Fatal(err)
				}
			}
			edus = append(edus, d)
		}
	}
	if len(edus) == 0 {
		if strict() {
			t.Fatal("no edu device (QEMU -device edu)")
		}
		t.Skip("no edu device")
	}
	return edus
}

// probeGroup has vfio-pci probe the driverless device a and lets it go
// again. On an SMMUv3 described by a device tree (the harness's
// arm64-smmuv3 lane, Debian 6.12) a PCI device gets its iommu_group only
// when a driver first probes it (of_dma_configure in really_probe), and
// sysfs.Bind refuses a group-less device; VT-d and AMD-Vi group every
// device at boot. hwtests' TestGroupAtBoot pins that per lane.
func probeGroup(t *testing.T, f *sysfs.FS, a sysfs.Address) {
	t.Helper()
	if !*destructive && !strict() {
		t.Skipf("%v has no iommu_group until a driver probes it (SMMUv3 with a device tree): run with -destructive to let the test probe it", a)
	}
	dev := f.Path("bus", "pci", "devices", a.String())
	for _, w := range [][2]string{
		{filepath.Join(dev, "driver_override"), sysfs.VFIOPCI},
		{f.Path("bus", "pci", "drivers_probe"), a.String()},
		{filepath.Join(dev, "driver", "unbind"), a.String()},
		{filepath.Join(dev, "driver_override"), "\n"},
	} {
		if err := os.WriteFile(w[0], []byte(w[1]), 0o200); err != nil {
			t.Fatalf("probe %v for its iommu_group: write %q to %s: %v", a, w[1], w[0], err)
		}
	}
	t.Logf("%v had no iommu_group before a driver probed it; vfio-pci probed it once", a)
}

// msiWindow is the interrupt window each IOMMU reserves in every group:
// x86's on VT-d and AMD-Vi, the software MSI window on an SMMUv3.
func msiWindow(k sysfs.Kind) (start, end uint64, ok bool) {
	switch k {
	case sysfs.KindVTD, sysfs.KindAMDVi:
		return 0xfee00000, 0xfeefffff, true
	case sysfs.KindSMMUv3:
		return 0x8000000, 0x80fffff, true
	}
	return 0, 0, false
}

func TestGuestDiscovery(t *testing.T) {
	f, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	edus := guestEdu(t, f)
	units, err := f.IOMMUs()
	if err != nil {
		t.Fatalf("IOMMUs: %v", err)
	}
	if len(units) == 0 {
		t.Fatal("no IOMMU under class/iommu")
	}
	for _, u := range units {
		t.Logf("iommu %s kind %s devices %v", u.Name, u.Kind, u.Devices)
		if u.Kind == sysfs.KindVTD && (u.VTD == nil || !u.VTD.Cap.CM()) {
			t.Errorf("%s: VT-d registers %v, want caching mode (QEMU caching-mode=on)", u.Name, u.VTD)
		}
	}
	groups, err := f.Groups()
	if err != nil {
		t.Fatalf("Groups: %v", err)
	}
	msiStart, msiEnd, ok := msiWindow(units[0].Kind)
	if !ok {
		t.Fatalf("no MSI window known for %s", units[0].Kind)
	}
	for _, e := range edus {
		if e.IOMMUGroup == nil {
			t.Fatalf("edu %s: no iommu_group", e.Address)
		}
		i := slices.IndexFunc(groups, func(g sysfs.Group) bool { return g.Number == *e.IOMMUGroup })
		if i < 0 || !slices.Contains(groups[i].Devices, e.Address.String()) {
			t.Fatalf("edu %s: group %d does not list it", e.Address, *e.IOMMUGroup)
		}
		g := groups[i]
		if !slices.ContainsFunc(g.ReservedRegions, func(r sysfs.ReservedRegion) bool {
			return r.Type == "msi" && r.Start == msiStart && r.End == msiEnd
		}) {
			t.Errorf("group %d reserved regions %+v: no %s MSI window %#x-%#x", g.Number, g.ReservedRegions, units[0].Kind, msiStart, msiEnd)
		}
		v, err := f.Viability(g.Number)
		if err != nil {
			t.Fatalf("Viability(%d): %v", g.Number, err)
		}
		t.Logf("%s: %v", e.Address, v)
		// Cross-check the verdict against the members' drivers as read by Devices.
		blocked := false
		for _, name := range g.Devices {
			a, err := sysfs.ParseAddress(name)
			if err != nil {
				t.Fatal(err)
			}
			d, err := f.Device(a)
			if err != nil {
				t.Fatal(err)
			}
			switch d.Driver {
			case "", "vfio-pci", "pci-stub":
			case "pcieport":
				blocked = blocked || !d.IsBridge()
			default:
				blocked = true
			}
		}
		if v.Viable == blocked {
			t.Errorf("group %d: viable %v, but members' drivers say blocked %v", g.Number, v.Viable, blocked)
		}
	}
	c, err := f.Cmdline()
	if err != nil || len(c) == 0 {
		t.Errorf("Cmdline = %q, %v", c, err)
	}
	for _, name := range []string{"vfio", "vfio_pci", "vfio_iommu_type1"} {
		if m, err := f.Module(name); err != nil || !m.Present {
			t.Errorf("Module(%s) = %+v, %v", name, m, err)
		}
	}
	if *snapshot {
		a, err := sysfstest.Snapshot("/sys", "/proc", "snapshot\n")
		if err != nil {
			t.Error(err)
		}
		t.Logf("snapshot:\n%s", txtar.Format(a))
	}
}

// TestGuestBindRelease moves every edu to vfio-pci through the real kernel
// and back, checking the driver links and the VFIO group node.
func TestGuestBindRelease(t *testing.T) {
	if !*destructive && !strict() {
		t.Skip("rebinds devices: run with -destructive")
	}
	f, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range guestEdu(t, f) {
		bdf := e.Address.String()
		b, err := f.Bind(bdf)
		if err != nil {
			t.Fatalf("Bind(%s): %v", bdf, err)
		}
		d, err := f.Device(e.Address)
		if err != nil || d.Driver != sysfs.VFIOPCI {
			t.Fatalf("%s after Bind: driver %q, %v", bdf, d.Driver, err)
		}
		if _, err := os.Stat(f.Path("bus", "pci", "devices", bdf, "vfio-dev")); err != nil {
			t.Errorf("%s: no vfio-dev after Bind: %v", bdf, err)
		}
		if err := f.Release(b); err != nil {
			t.Fatalf("Release(%s): %v", bdf, err)
		}
		d, err = f.Device(e.Address)
		if err != nil || d.Driver != e.Driver || d.DriverOverride != e.DriverOverride {
			t.Errorf("%s after Release: driver %q override %q, want %q %q (%v)", bdf, d.Driver, d.DriverOverride, e.Driver, e.DriverOverride, err)
		}
	}
}

// failingWriter writes to the real sysfs, except that its FailAt-th write
// fails without reaching the kernel: a bind broken half way, for real.
type failingWriter struct {
	failAt, n int
}

var errInjected = errors.New("injected write failure")

func (w *failingWriter) WriteAttr(path, value string) error {
	w.n++
	if w.n == w.failAt {
		return errInjected
	}
	fd, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fd.Write([]byte(value))
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return err
}

// drivers maps each member of group n to its driver and override.
func drivers(t *testing.T, f *sysfs.FS, n int) map[string][2]string {
	t.Helper()
	g, err := f.Group(n)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][2]string{}
	for _, name := range g.Devices {
		a, err := sysfs.ParseAddress(name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := f.Device(a)
		if err != nil {
			t.Fatal(err)
		}
		m[name] = [2]string{d.Driver, d.DriverOverride}
	}
	return m
}

// TestGuestBindGroup binds each edu's whole group through the real kernel,
// which makes it viable (with -devices bridge:edu,e1000 that means taking
// the e1000 off its driver), releases it, and then breaks the bind at every
// write in turn: each time every driver must be as it was.
func TestGuestBindGroup(t *testing.T) {
	if !*destructive && !strict() {
		t.Skip("rebinds devices: run with -destructive")
	}
	f, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	edus := guestEdu(t, f)
	done := map[int]bool{}
	for _, e := range edus {
		n := *e.IOMMUGroup
		if done[n] {
			continue
		}
		done[n] = true
		before := drivers(t, f, n)
		v0, err := f.Viability(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("before: %v, members %v", v0, before)

		b, err := f.BindGroup(n)
		if err != nil {
			t.Fatalf("BindGroup(%d): %v", n, err)
		}
		if v, err := f.Viability(n); err != nil || !v.Viable {
			t.Errorf("after BindGroup(%d): %v, %v", n, v, err)
		}
		if err := f.Release(b); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if got := drivers(t, f, n); !maps.Equal(got, before) {
			t.Fatalf("after Release %v, want %v", got, before)
		}

		// Count the writes of a clean bind, then fail each in turn.
		count := &failingWriter{}
		fc, err := sysfs.New(f.Path(), sysfs.WithWriter(count))
		if err != nil {
			t.Fatal(err)
		}
		b, err = fc.BindGroup(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Release(b); err != nil {
			t.Fatal(err)
		}
		for step := 1; step <= count.n; step++ {
			ff, err := sysfs.New(f.Path(), sysfs.WithWriter(&failingWriter{failAt: step}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ff.BindGroup(n); !errors.Is(err, errInjected) {
				t.Errorf("step %d of %d: BindGroup error %v, want the injected one", step, count.n, err)
			}
			if got := drivers(t, f, n); !maps.Equal(got, before) {
				t.Fatalf("step %d of %d: after rollback %v, want %v", step, count.n, got, before)
			}
		}
		t.Logf("group %d: rollback checked at each of %d writes", n, count.n)
	}
}

// TestGuestHotplug watches the real kernel's uevents while each edu is bound
// to vfio-pci and released, then removed and found again by a bus rescan:
// each step brings its event, and afterwards the watcher's inventory is
// what a fresh read of sysfs gives. The host ends as it began.
func TestGuestHotplug(t *testing.T) {
	if !*destructive && !strict() {
		t.Skip("rebinds and removes devices: run with -destructive")
	}
	f, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	src, err := sysfs.OpenUevents()
	if err != nil {
		t.Fatal(err)
	}
	w, err := sysfs.NewWatcher(f, src)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	events := make(chan sysfs.Event, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(e sysfs.Event) { events <- e }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// await returns at the event of kind k for device a, logging the rest.
	await := func(k sysfs.EventKind, a sysfs.Address) sysfs.Event {
		t.Helper()
		timeout := time.After(60 * time.Second) // TCG is slow
		for {
			select {
			case e := <-events:
				t.Logf("event %v %v driver %q groups %v seqnum %d err %v", e.Kind, e.Address, e.Driver, e.Groups, e.Seqnum, e.Err)
				if e.Kind == k && e.Address == a {
					return e
				}
			case <-timeout:
				t.Fatalf("no %v event for %v", k, a)
			}
		}
	}
	write := func(path, v string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(v), 0o200); err != nil {
			t.Fatal(err)
		}
	}
	// current fails unless the watcher holds what sysfs says now.
	current := func(when string) {
		t.Helper()
		devs, err := f.Scan()
		if err != nil {
			t.Fatal(err)
		}
		groups, err := f.Groups()
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Devices(); !reflect.DeepEqual(got, devs) {
			t.Errorf("%s: watcher devices\n%+v\nsysfs\n%+v", when, got, devs)
		}
		if got := w.Groups(); !reflect.DeepEqual(got, groups) {
			t.Errorf("%s: watcher groups\n%+v\nsysfs\n%+v", when, got, groups)
		}
	}
	before, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range guestEdu(t, f) {
		b, err := f.Bind(e.Address.String())
		if err != nil {
			t.Fatalf("Bind(%v): %v", e.Address, err)
		}
		if ev := await(sysfs.EventBind, e.Address); ev.Driver != sysfs.VFIOPCI || ev.Device.Driver != sysfs.VFIOPCI {
			t.Errorf("bind event: driver %q, device's driver %q", ev.Driver, ev.Device.Driver)
		}
		current("after bind")
		if err := f.Release(b); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if ev := await(sysfs.EventUnbind, e.Address); ev.Device.Driver != e.Driver {
			t.Errorf("unbind event: device's driver %q, want %q", ev.Device.Driver, e.Driver)
		}

		write(f.Path("bus", "pci", "devices", e.Address.String(), "remove"), "1")
		await(sysfs.EventRemove, e.Address)
		if slices.ContainsFunc(w.Devices(), func(d sysfs.Device) bool { return d.Address == e.Address }) {
			t.Errorf("%v still in the inventory after its removal", e.Address)
		}
		current("after remove")
		write(f.Path("bus", "pci", "rescan"), "1")
		ev := await(sysfs.EventAdd, e.Address)
		if ev.Device.Vendor != 0x1234 {
			t.Errorf("add event: device %+v", ev.Device)
		}
		// A rescanned device is grouped as at boot: at once on VT-d and
		// AMD-Vi, at its first driver probe on the arm64-smmuv3 lane
		// (probeGroup), which then brings it back.
		if atProbe := os.Getenv("HWTESTS_LANE") == "arm64-smmuv3"; (ev.Device.IOMMUGroup == nil) != atProbe {
			t.Errorf("add event: device %v has group %v; lane %q groups at driver probe: %v", ev.Device.Address, ev.Device.IOMMUGroup, os.Getenv("HWTESTS_LANE"), atProbe)
		} else if atProbe {
			probeGroup(t, f, e.Address)
			await(sysfs.EventBind, e.Address)
			await(sysfs.EventUnbind, e.Address)
		}
	}
	current("after rescan")
	devs, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	// The same devices with the same drivers and groups as before.
	key := func(ds []sysfs.Device) []string {
		var out []string
		for _, d := range ds {
			g := -1
			if d.IOMMUGroup != nil {
				g = *d.IOMMUGroup
			}
			out = append(out, fmt.Sprintf("%v %04x:%04x %q %d", d.Address, d.Vendor, d.Device, d.Driver, g))
		}
		return out
	}
	if got, want := key(devs), key(before); !slices.Equal(got, want) {
		t.Errorf("host after the test\n%q\nbefore\n%q", got, want)
	}
}

// On the real kernel, Scan's ids and drivers (from uevent) and Details give
// what Devices reads from the separate files and links.
func TestGuestScanMatchesDevices(t *testing.T) {
	f, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	want, err := f.Devices()
	if err != nil || len(want) == 0 {
		t.Fatalf("Devices: %d, %v", len(want), err)
	}
	got, err := f.Scan()
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	for i := range got {
		if got[i].Driver == "" && got[i].Address == want[i].Address && want[i].Driver != "" {
			t.Errorf("%s: Scan has no driver, Devices %q", got[i].Address, want[i].Driver)
		}
		if err := f.Details(&got[i]); err != nil {
			t.Errorf("Details %s: %v", got[i].Address, err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Scan+Details:\n%+v\nDevices:\n%+v", got, want)
	}
}

// TestGuestBridgeAlias pins what two devices behind one PCIe-to-PCI bridge
// (-devices bridge:edu,e1000) become. Both reach the IOMMU with the
// bridge's requester ID. VT-d and AMD-Vi put them in one iommu_group,
// which TestGuestBindGroup binds as a whole. The SMMUv3 driver refuses a
// second device with a StreamID already taken ("stream N already in tree
// from dev ..." in 6.12, "Aliasing StreamID ... unsupported" in 7.3, from
// arm_smmu_insert_master), so the device the
// SMMU probes first holds the StreamID and the other never gets a group:
// on Debian's 6.12 (device tree, groups at driver probe) that is the
// e1000, probed by its driver at boot, and edu is refused when vfio-pci
// probes it; on the own 7.3 kernel, which probes every device when the
// SMMU registers, in bus order, it is edu (02:01.0), and the e1000 is
// refused at boot yet still bound to its driver. Either way the
// bridge-group cases cannot run on an SMMUv3.
func TestGuestBridgeAlias(t *testing.T) {
	f, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	devs, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	var edu, nic *sysfs.Device
	for i, d := range devs {
		switch {
		case d.Vendor == 0x1234 && d.Device == 0x11e8 && d.Address.Bus != 0:
			edu = &devs[i]
		case d.Vendor == 0x8086 && d.Device == 0x100e && d.Address.Bus != 0:
			nic = &devs[i]
		}
	}
	if edu == nil || nic == nil || edu.Address.Bus != nic.Address.Bus {
		// The other boots have no bridge: say so, as NeedPair does.
		if !strict() {
			t.Skip("needs edu and an e1000 behind one PCIe-to-PCI bridge (-devices bridge:edu,e1000)")
		}
		t.Logf("this guest lacks edu and an e1000 behind one bridge (-devices bridge:edu,e1000)")
		return
	}
	lane := os.Getenv("HWTESTS_LANE")
	if !strings.HasPrefix(lane, "arm64-smmuv3") {
		if nic.IOMMUGroup == nil {
			t.Fatalf("e1000 %v (driver %q) has no iommu_group", nic.Address, nic.Driver)
		}
		if edu.IOMMUGroup == nil || *edu.IOMMUGroup != *nic.IOMMUGroup {
			t.Errorf("edu %v group %v, e1000 %v group %d: want one group behind the bridge", edu.Address, edu.IOMMUGroup, nic.Address, *nic.IOMMUGroup)
		}
		return
	}
	holder, refused := nic, edu
	if lane == "arm64-smmuv3-7.3" {
		holder, refused = edu, nic
		if nic.Driver != "e1000" {
			t.Errorf("e1000 %v: driver %q, want e1000 (bound without a group)", nic.Address, nic.Driver)
		}
	}
	if holder.IOMMUGroup == nil {
		t.Fatalf("%v (driver %q) has no iommu_group; on lane %s it holds the bridge's StreamID", holder.Address, holder.Driver, lane)
	}
	if refused.IOMMUGroup != nil {
		t.Fatalf("%v has iommu_group %d besides %v's %d: want the SMMU to refuse the aliased StreamID", refused.Address, *refused.IOMMUGroup, holder.Address, *holder.IOMMUGroup)
	}
	if refused == edu {
		if edu.Driver != "" {
			t.Fatalf("edu %v: driver %q before any probe; want none", edu.Address, edu.Driver)
		}
		probeVFIO(t, f, edu)
	}
	klogAlias(t, refused.Address.String(), holder.Address.String())
}

// probeVFIO has vfio-pci probe the device; the SMMU refuses its aliased
// StreamID, so it ends with neither a driver nor a group.
func probeVFIO(t *testing.T, f *sysfs.FS, edu *sysfs.Device) {
	t.Helper()
	if !*destructive && !strict() {
		t.Skip("probes a device: run with -destructive")
	}
	dev := f.Path("bus", "pci", "devices", edu.Address.String())
	if err := os.WriteFile(filepath.Join(dev, "driver_override"), []byte(sysfs.VFIOPCI), 0o200); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(dev, "driver_override"), []byte("\n"), 0o200); err != nil {
			t.Error(err)
		}
	})
	// drivers_probe reports no error when the driver's probe fails.
	if err := os.WriteFile(f.Path("bus", "pci", "drivers_probe"), []byte(edu.Address.String()), 0o200); err != nil {
		t.Fatal(err)
	}
	after, err := f.Device(edu.Address)
	if err != nil {
		t.Fatal(err)
	}
	if after.Driver != "" || after.IOMMUGroup != nil {
		t.Fatalf("edu %v behind the bridge: driver %q group %v after a vfio-pci probe; want the SMMU to refuse its aliased StreamID", edu.Address, after.Driver, after.IOMMUGroup)
	}
}

// klogAlias finds the SMMUv3 driver's refusal of refused's StreamID, held
// by holder, in the kernel log.
func klogAlias(t *testing.T, refused, holder string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	n, err := syscall.Klogctl(3, buf) // SYSLOG_ACTION_READ_ALL
	if err != nil {
		t.Fatalf("read the kernel log: %v", err)
	}
	// 6.12 says "stream N already in tree from dev HOLDER" (EINVAL);
	// 7.3 "Aliasing StreamID 0xN (from HOLDER) unsupported, expect DMA
	// to be broken" (ENODEV).
	want, from := refused+": stream ", "already in tree from dev "+holder
	if os.Getenv("HWTESTS_LANE") == "arm64-smmuv3-7.3" {
		want, from = refused+": Aliasing StreamID ", "(from "+holder+") unsupported"
	}
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		if strings.Contains(line, want) && strings.Contains(line, from) {
			t.Logf("kernel: %s", line)
			return
		}
	}
	t.Errorf("no kernel line %q... %q", want, from)
}
