package sysfs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// fakeUevents is a UeventReader fed by the test: no socket needed.
type fakeUevents struct {
	ch        chan fakeMsg
	closed    chan struct{}
	closeOnce sync.Once
}

type fakeMsg struct {
	b   []byte
	err error
}

func newFakeUevents() *fakeUevents {
	return &fakeUevents{ch: make(chan fakeMsg), closed: make(chan struct{})}
}

func (f *fakeUevents) ReadUevent(buf []byte) (int, error) {
	select {
	case m := <-f.ch:
		return copy(buf, m.b), m.err
	case <-f.closed:
		return 0, os.ErrClosed
	}
}

func (f *fakeUevents) Close() error {
	f.closeOnce.Do(func() { close(f.closed) })
	return nil
}

// uevent builds a kernel datagram as lib/kobject_uevent.c lays it out.
func uevent(action, devpath string, env ...string) []byte {
	fields := append([]string{action + "@" + devpath, "ACTION=" + action, "DEVPATH=" + devpath}, env...)
	return []byte(strings.Join(fields, "\x00") + "\x00")
}

// watchFixture runs a watcher over bridge-group.txtar and returns the tree's
// FS (writes go to the fake kernel), the watcher, the datagram feed and the
// events it emits.
func watchFixture(t *testing.T) (*sysfs.FS, *sysfs.Watcher, *fakeUevents, chan sysfs.Event) {
	t.Helper()
	f, _ := open(t, "bridge-group.txtar")
	src := newFakeUevents()
	w, err := sysfs.NewWatcher(f, src)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan sysfs.Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx, func(e sysfs.Event) { events <- e }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
		select {
		case <-src.closed:
		default:
			t.Error("Run returned without closing its reader")
		}
	})
	return f, w, src, events
}

func next(t *testing.T, events chan sysfs.Event) sysfs.Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return sysfs.Event{}
}

// current fails unless the watcher's inventory is what a fresh read gives.
func current(t *testing.T, f *sysfs.FS, w *sysfs.Watcher) {
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
		t.Errorf("watcher devices\n%+v\nwant\n%+v", got, devs)
	}
	if got := w.Groups(); !reflect.DeepEqual(got, groups) {
		t.Errorf("watcher groups\n%+v\nwant\n%+v", got, groups)
	}
}

func TestWatchBindUnbind(t *testing.T) {
	t.Parallel()
	f, w, src, events := watchFixture(t)
	const edu = "/devices/pci0000:00/0000:00:03.0/0000:02:01.0"
	b, err := f.Bind("0000:02:01.0")
	if err != nil {
		t.Fatal(err)
	}
	src.ch <- fakeMsg{b: uevent("bind", edu, "SUBSYSTEM=pci", "DRIVER=vfio-pci", "PCI_SLOT_NAME=0000:02:01.0", "SEQNUM=41")}
	e := next(t, events)
	if e.Kind != sysfs.EventBind || e.Address.String() != "0000:02:01.0" || e.Driver != "vfio-pci" ||
		e.Device.Driver != "vfio-pci" || e.Seqnum != 41 || !reflect.DeepEqual(e.Groups, []int{5}) || e.Err != nil {
		t.Errorf("bind event %+v", e)
	}
	current(t, f, w)
	if err := f.Release(b); err != nil {
		t.Fatal(err)
	}
	src.ch <- fakeMsg{b: uevent("unbind", edu, "SUBSYSTEM=pci", "DRIVER=vfio-pci", "SEQNUM=42")}
	if e := next(t, events); e.Kind != sysfs.EventUnbind || e.Device.Driver != "" {
		t.Errorf("unbind event %+v", e)
	}
	current(t, f, w)
}

// Remove then add: the device and its group leave the inventory and come
// back, each re-read alone.
func TestWatchRemoveAdd(t *testing.T) {
	t.Parallel()
	f, w, src, events := watchFixture(t)
	sys := f.Path()
	const bdf = "0000:00:05.0" // alone in group 7
	dev := filepath.Join(sys, "devices", "pci0000:00", bdf)
	moved := filepath.Join(t.TempDir(), bdf)
	for _, p := range []string{filepath.Join(sys, "bus", "pci", "devices", bdf), filepath.Join(sys, "bus", "pci", "drivers", "vfio-pci", bdf)} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(dev, moved); err != nil {
		t.Fatal(err)
	}
	group := filepath.Join(sys, "kernel", "iommu_groups", "7")
	if err := os.RemoveAll(group); err != nil {
		t.Fatal(err)
	}
	src.ch <- fakeMsg{b: uevent("unbind", "/devices/pci0000:00/"+bdf, "SUBSYSTEM=pci", "DRIVER=vfio-pci")}
	if e := next(t, events); e.Kind != sysfs.EventUnbind || e.Device.Driver != "vfio-pci" || e.Err != nil {
		t.Errorf("unbind of a vanished device %+v: want the last known state, no error", e)
	}
	src.ch <- fakeMsg{b: uevent("remove", "/devices/pci0000:00/"+bdf, "SUBSYSTEM=pci")}
	e := next(t, events)
	if e.Kind != sysfs.EventRemove || e.Device.Address.String() != bdf || !reflect.DeepEqual(e.Groups, []int{7}) {
		t.Errorf("remove event %+v", e)
	}
	current(t, f, w)

	// The kernel's rescan brings it back, unbound, in a new group 8.
	if err := os.Rename(moved, dev); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		filepath.Join(dev, "iommu_group"):                                 "../../../kernel/iommu_groups/8",
		filepath.Join(sys, "bus", "pci", "devices", bdf):                  "../../../devices/pci0000:00/" + bdf,
		filepath.Join(sys, "kernel", "iommu_groups", "8", "devices", bdf): "../../../../devices/pci0000:00/" + bdf,
	} {
		os.Remove(link)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dev, "driver")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sys, "kernel", "iommu_groups", "8", "type"), []byte("DMA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src.ch <- fakeMsg{b: uevent("add", "/devices/pci0000:00/"+bdf, "SUBSYSTEM=pci")}
	e = next(t, events)
	if e.Kind != sysfs.EventAdd || e.Device.IOMMUGroup == nil || *e.Device.IOMMUGroup != 8 || e.Device.Driver != "" {
		t.Errorf("add event %+v", e)
	}
	current(t, f, w)
}

// What is no PCI uevent is ignored, udev's messages too; garbage is
// reported; lost uevents cause a rescan.
func TestWatchNoise(t *testing.T) {
	t.Parallel()
	f, w, src, events := watchFixture(t)
	src.ch <- fakeMsg{b: []byte("libudev\x00\xfe\xed\xca\xfe bind@/devices/pci0000:00/0000:00:05.0\x00SUBSYSTEM=pci\x00")}
	src.ch <- fakeMsg{b: uevent("add", "/module/vfio_pci", "SUBSYSTEM=module")}
	src.ch <- fakeMsg{b: uevent("add", "/bus/pci/drivers/vfio-pci", "SUBSYSTEM=drivers")}
	src.ch <- fakeMsg{b: uevent("change", "/devices/pci0000:00/0000:00:05.0", "SUBSYSTEM=pci")}
	src.ch <- fakeMsg{b: []byte("garbage")}
	if e := next(t, events); e.Kind != sysfs.EventMalformed || !errors.Is(e.Err, sysfs.ErrUevent) {
		t.Errorf("garbage gave %+v, want a malformed event first", e)
	}
	// A device appeared while uevents were lost: the rescan finds it.
	sys := f.Path()
	if err := os.Remove(filepath.Join(sys, "devices", "pci0000:00", "0000:00:05.0", "driver")); err != nil {
		t.Fatal(err)
	}
	src.ch <- fakeMsg{err: fmt.Errorf("receive uevent: %w", syscall.ENOBUFS)}
	if e := next(t, events); e.Kind != sysfs.EventRescan || e.Err != nil {
		t.Errorf("ENOBUFS gave %+v, want a clean rescan", e)
	}
	current(t, f, w)
}

// A read error other than ENOBUFS ends Run with it.
func TestWatchReadError(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "bridge-group.txtar")
	src := newFakeUevents()
	w, err := sysfs.NewWatcher(f, src)
	if err != nil {
		t.Fatal(err)
	}
	go func() { src.ch <- fakeMsg{err: syscall.EBADF} }()
	if err := w.Run(context.Background(), func(sysfs.Event) {}); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Run = %v, want EBADF", err)
	}
}

func TestParseUevent(t *testing.T) {
	t.Parallel()
	u, err := sysfs.ParseUevent(uevent("bind", "/devices/pci0000:00/0000:00:03.0", "SUBSYSTEM=pci", "DRIVER=vfio-pci", "SEQNUM=1234", "MODALIAS=pci:v00001234d000011E8sv*", "EMPTY="))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := u.PCIAddress()
	if u.Action != "bind" || u.DevPath != "/devices/pci0000:00/0000:00:03.0" || u.Subsystem != "pci" || u.Seqnum != 1234 ||
		u.Env["DRIVER"] != "vfio-pci" || u.Env["EMPTY"] != "" || !ok || a.String() != "0000:00:03.0" {
		t.Errorf("ParseUevent = %+v, %v %v", u, a, ok)
	}
	for _, bad := range []string{
		"", "add", "@/devices", "add@devices", "add@/devices/../x", "add@/d\x00novalue", "add@/d\x00=v",
		"add@/d\x00ACTION=remove", "add@/d\x00DEVPATH=/e", "add@/d\x00SEQNUM=-1", "add@/d\x00SEQNUM=+1",
	} {
		if u, err := sysfs.ParseUevent([]byte(bad)); !errors.Is(err, sysfs.ErrUevent) {
			t.Errorf("ParseUevent(%q) = %+v, %v; want ErrUevent", bad, u, err)
		}
	}
	if _, err := sysfs.ParseUevent([]byte("libudev\x00anything")); !errors.Is(err, sysfs.ErrNotKernel) {
		t.Errorf("udev message: %v, want ErrNotKernel", err)
	}
}
