package sysfs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"syscall"
)

// UeventReader yields kernel uevent datagrams, one per call, into buf. The
// netlink socket (OpenUevents) is one; tests feed datagrams without a
// socket. A reader returns an error wrapping syscall.ENOBUFS when the
// kernel dropped uevents, and any error once closed. Close must wake a
// blocked ReadUevent.
type UeventReader interface {
	ReadUevent(buf []byte) (int, error)
	Close() error
}

// EventKind says what a watcher saw happen.
type EventKind uint8

// Event kinds. Add, Remove, Bind and Unbind follow the kernel's actions of
// the same names on a PCI device; Rescan follows lost uevents.
const (
	EventAdd       EventKind = iota + 1 // a PCI device appeared
	EventRemove                         // a PCI device is gone
	EventBind                           // a driver took the device
	EventUnbind                         // its driver let it go
	EventRescan                         // uevents were lost: the whole inventory was read again
	EventMalformed                      // a datagram that is no uevent; Err says why
)

func (k EventKind) String() string {
	switch k {
	case EventAdd:
		return "add"
	case EventRemove:
		return "remove"
	case EventBind:
		return "bind"
	case EventUnbind:
		return "unbind"
	case EventRescan:
		return "rescan"
	case EventMalformed:
		return "malformed"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one change to the inventory, sent after the inventory took it in.
type Event struct {
	Kind    EventKind
	Address Address // the device; zero for Rescan and Malformed
	Device  Device  // as read after the event; for Remove, as last known
	Driver  string  // DRIVER of a bind uevent (an unbind one carries none)
	Groups  []int   // iommu_groups read again because of this event
	Seqnum  uint64  // the uevent's SEQNUM
	Err     error   // what could not be read; the inventory keeps what could
}

// Watcher keeps an inventory of PCI devices and iommu_groups current by
// re-reading only what each kernel uevent touches. Its devices are what
// Scan reads (ids, driver, group, topology: what uevents change); read
// Details fresh where BARs, NUMA node or SR-IOV matter. Those are not
// settled when the add uevent comes: pci_rescan_bus adds a device, and
// its add uevent goes out, before it assigns the bus's BARs (seen in the
// guest: an edu's BAR moved after the watcher had read it).
type Watcher struct {
	fs  *FS
	src UeventReader

	mu     sync.Mutex
	devs   map[Address]Device
	groups map[int]Group
}

// NewWatcher reads the whole inventory of f once and returns a watcher that
// keeps it current from src. Open src first (OpenUevents), so no uevent
// falls between the read and the subscription. A read error comes with the
// watcher, which holds what could be read.
func NewWatcher(f *FS, src UeventReader) (*Watcher, error) {
	w := &Watcher{fs: f, src: src}
	return w, w.rescan()
}

func (w *Watcher) rescan() error {
	devs, derr := w.fs.Scan()
	groups, gerr := w.fs.Groups()
	dm := make(map[Address]Device, len(devs))
	for _, d := range devs {
		dm[d.Address] = d
	}
	gm := make(map[int]Group, len(groups))
	for _, g := range groups {
		gm[g.Number] = g
	}
	w.mu.Lock()
	w.devs, w.groups = dm, gm
	w.mu.Unlock()
	return errors.Join(derr, gerr)
}

// Devices returns the inventory's PCI devices by address.
func (w *Watcher) Devices() []Device {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Collect(maps.Values(w.devs))
	slices.SortFunc(out, func(x, y Device) int { return compareAddress(x.Address, y.Address) })
	return out
}

// Groups returns the inventory's iommu_groups by number.
func (w *Watcher) Groups() []Group {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Collect(maps.Values(w.groups))
	slices.SortFunc(out, func(x, y Group) int { return x.Number - y.Number })
	return out
}

// Run applies uevents to the inventory and calls emit (from Run's
// goroutine) after each change, until ctx is done; then it closes the
// reader and returns nil. A read error other than lost uevents ends it.
func (w *Watcher) Run(ctx context.Context, emit func(Event)) error {
	stop := context.AfterFunc(ctx, func() { w.src.Close() })
	defer stop()
	defer w.src.Close()
	buf := make([]byte, maxUevent)
	for {
		n, err := w.src.ReadUevent(buf)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, syscall.ENOBUFS) {
			emit(Event{Kind: EventRescan, Err: w.rescan()})
			continue
		}
		if err != nil {
			return fmt.Errorf("watch uevents: %w", err)
		}
		u, err := ParseUevent(buf[:n])
		if errors.Is(err, ErrNotKernel) {
			continue
		}
		if err != nil {
			emit(Event{Kind: EventMalformed, Err: err})
			continue
		}
		if ev, ok := w.Apply(u); ok {
			emit(ev)
		}
	}
}

// Apply takes one uevent into the inventory; ok is false for uevents that
// are no add, remove, bind or unbind of a PCI device. Run calls it; it is
// exported for callers with uevents of their own.
func (w *Watcher) Apply(u Uevent) (ev Event, ok bool) {
	a, isPCI := u.PCIAddress()
	if !isPCI {
		return Event{}, false
	}
	ev = Event{Address: a, Seqnum: u.Seqnum, Driver: u.Env["DRIVER"]}
	switch u.Action {
	case "add":
		ev.Kind = EventAdd
	case "remove":
		ev.Kind = EventRemove
	case "bind":
		ev.Kind = EventBind
	case "unbind":
		ev.Kind = EventUnbind
	default:
		return Event{}, false
	}
	var errs []error
	w.mu.Lock()
	old, had := w.devs[a]
	w.mu.Unlock()

	var groups []int
	if had && old.IOMMUGroup != nil {
		groups = append(groups, *old.IOMMUGroup)
	}
	if ev.Kind == EventRemove {
		ev.Device = old
		w.mu.Lock()
		delete(w.devs, a)
		w.mu.Unlock()
	} else {
		d, err := w.fs.ScanDevice(a)
		switch {
		case errors.Is(err, ErrNoDevice):
			// Gone again before we looked: its remove uevent follows.
			d, err = old, nil
		case err != nil:
			errs = append(errs, err)
		}
		ev.Device = d
		if d.Address == a {
			w.mu.Lock()
			w.devs[a] = d
			w.mu.Unlock()
		}
		if d.IOMMUGroup != nil && !slices.Contains(groups, *d.IOMMUGroup) {
			groups = append(groups, *d.IOMMUGroup)
		}
	}
	for _, n := range groups {
		g, err := w.fs.Group(n)
		w.mu.Lock()
		switch {
		case errors.Is(err, ErrNoGroup):
			delete(w.groups, n) // its last device left
		default:
			if err != nil {
				errs = append(errs, err)
			}
			w.groups[n] = g
		}
		w.mu.Unlock()
	}
	ev.Groups = groups
	ev.Err = errors.Join(errs...)
	return ev, true
}
