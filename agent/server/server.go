//go:build linux

// Package server is iommu-agent's daemon: it leases iommu_groups to clients on
// a unix socket (package proto), under a Policy checked against the peer's
// SO_PEERCRED, with every lease persisted so that a restarted agent can undo
// or re-adopt what a crashed one did.
//
// A lease is always a whole iommu_group (the group rule of the design origin:
// a group is usable only when all of it is on vfio-pci or driverless). Asking
// for a device whose group holds other endpoints is refused with a pointer to
// the group. Acquire binds the group to vfio-pci (when the server drives a
// sysfs tree), then either opens /dev/iommu and the devices' VFIO cdevs and
// sends them (mode fds), or opens an address space and attaches the devices
// in the agent (mode broker: map, unmap and dma requests follow).
//
// When a connection closes, its broker leases end (their address space lives
// in the agent). Its fds leases end too unless the policy rule keeps them; a
// lease whose cdevs some process still holds is never unbound under it (the
// kernel would block the unbind until the fds close) but kept as an orphan
// and released by the orphan check once nobody holds them.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/cdev"
	"github.com/iommu-agent/iommu-agent/agent/iommu/emulated"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/internal/latency"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/sysfs"
	"golang.org/x/sys/unix"
)

// Backend names.
const (
	BackendEmulated = "emulated"
	BackendIOMMUFD  = "iommufd"
)

// Options configures a Server. Zero values take the defaults named.
type Options struct {
	// Backend is BackendEmulated (broker leases on the pure-Go IOMMU) or
	// BackendIOMMUFD (fds leases of the real /dev/iommu, and broker leases
	// through NewBroker).
	Backend string
	// Sysfs is the tree the agent binds groups in. Nil on the emulated
	// backend means no drivers change: the devices are Devices.
	Sysfs *sysfs.FS
	// SRIOV configures the SR-IOV VFs acquires ask to (proto.VFConfig) and
	// restores them, over the same tree as Sysfs. Nil: a VF is leased
	// like any device and a VFConfig is refused as unsupported.
	SRIOV *sriov.Manager
	// Devices are the emulated machine's functions when Sysfs is nil.
	Devices []iommu.Device
	// NewBroker opens the IOMMU behind one broker lease. Nil: on the
	// emulated backend an emulated instance on the server's machine, on
	// iommufd a fresh /dev/iommu through agent/iommu/cdev.
	NewBroker func(ctx context.Context) (iommu.Backend, error)
	// EmulatedOptions are passed to emulated.New for broker leases (the
	// Machine is the server's); for the latency recorder, memlock limits.
	EmulatedOptions emulated.Options
	// Latency, when set, times the map and unmap of every emulated broker
	// lease and is exported with the metrics (label source="emulated").
	Latency *latency.Recorder
	// IOMMUPath is /dev/iommu, DevDir /dev/vfio/devices (fds leases).
	IOMMUPath, DevDir string
	// RLimitProcess sets IOMMU_OPTION_RLIMIT_MODE to per-process on the
	// iommufd handed out, so each VMM's pins count against its own
	// RLIMIT_MEMLOCK (as libvirt and KubeVirt do); needs CAP_SYS_RESOURCE.
	RLimitProcess bool
	Policy        *Policy
	// StateDir holds one file per lease.
	StateDir string
	// ProcRoot is /proc, for peers' groups and start times and for
	// finding who holds a cdev.
	ProcRoot string
	Log      *slog.Logger
	// OrphanCheck is how often orphaned fds leases are looked at; 10 s.
	OrphanCheck time.Duration
	// Effect, when set, is called before every write to the state dir;
	// an error fails the write. Crash tests use it (with sysfs.WithWriter)
	// to stop a server's effects at a chosen point, as kill -9 would.
	Effect func(what string) error
	// UnhealthyAfter is how long accept may keep failing (EMFILE and the
	// like, retried with backoff) before /healthz fails; 5 s.
	UnhealthyAfter time.Duration
}

// Server is the daemon. Create it with New, run it with Serve.
type Server struct {
	o       Options
	lim     Limits
	log     *slog.Logger
	st      *store
	m       *metrics
	machine *emulated.Machine
	serving atomic.Bool
	// noMapFile is set once the kernel answered IOMMU_IOAS_MAP_FILE with
	// ENOTTY (before Linux 6.13): broker maps mmap the memfd from then on.
	noMapFile atomic.Bool
	accept    acceptHealth
	inFlight  chan struct{} // one token per frame being read and handled
	closeOnce sync.Once
	refusals  every      // rate of the refused-connection log line
	probeMu   sync.Mutex // one group-creating probe at a time (probeGroup)

	mu       sync.Mutex
	leases   map[string]*lease // by ID
	groups   map[int]string    // group → lease ID, also while acquiring
	conns    map[*session]struct{}
	nconns   int            // admitted connections, sessions or starting
	uidConns map[uint32]int // sessions by peer uid
	uidMaps  map[uint32]*mapUse
	maps     int // memfd mappings over all leases
	wg       sync.WaitGroup
}

// mapUse is what a uid's (or a lease's) memfd mappings hold.
type mapUse struct {
	n     int
	bytes uint64
}

// lease is one held group.
type lease struct {
	rec  *record
	rule *Rule
	sess *session // nil: orphan

	mu   sync.Mutex // serialises ops on the address space
	be   iommu.Backend
	as   iommu.AddressSpace
	atts map[string]iommu.Attachment
	maps []memMap
	use  mapUse // of maps, charged to the owner's uid too
}

// memMap is one broker mapping of a client's memfd: mem is the agent's
// own mapping of it, nil when the kernel pinned the file's pages by
// descriptor (IOMMU_IOAS_MAP_FILE).
type memMap struct {
	iova   iommu.IOVA
	length uint64
	mem    []byte
}

// New opens the state dir and reconciles it with the host: leases whose
// cdevs a process still holds are re-adopted as orphans, everything else a
// previous agent left is released and its drivers restored.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Backend == "" {
		o.Backend = BackendEmulated
	}
	if o.Backend != BackendEmulated && o.Backend != BackendIOMMUFD {
		return nil, fmt.Errorf("backend %q: want %s or %s", o.Backend, BackendEmulated, BackendIOMMUFD)
	}
	if o.Backend == BackendIOMMUFD && o.Sysfs == nil {
		return nil, errors.New("backend iommufd needs a sysfs tree")
	}
	if o.StateDir == "" {
		return nil, errors.New("no state dir")
	}
	if o.IOMMUPath == "" {
		o.IOMMUPath = iommufd.DefaultPath
	}
	if o.DevDir == "" {
		o.DevDir = "/dev/vfio/devices"
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.OrphanCheck < 0 {
		return nil, fmt.Errorf("orphan check every %s: want a positive interval", o.OrphanCheck)
	}
	if o.OrphanCheck == 0 {
		o.OrphanCheck = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Effect == nil {
		o.Effect = func(string) error { return nil }
	}
	if o.UnhealthyAfter == 0 {
		o.UnhealthyAfter = 5 * time.Second
	}
	if err := o.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	lim := o.Policy.limits()
	// Connections must run out before fds do: at EMFILE nobody, root
	// included, gets in, and memfds and lease fds fail too. Beside its
	// connections the agent needs the fds of the frames in flight (up to
	// MaxFDs each), of its leases and of its own files.
	var nofile unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile) == nil {
		reserve := min(uint64(lim.MaxInFlight*proto.MaxFDs+256), nofile.Cur/2)
		if room := nofile.Cur - reserve; room < uint64(lim.MaxConns) {
			o.Log.Warn("RLIMIT_NOFILE is low for max_conns: capping connections below it", "nofile", nofile.Cur, "max_conns", lim.MaxConns, "capped", room)
			lim.MaxConns = max(int(room), 1)
		}
	}
	s := &Server{
		o:        o,
		lim:      lim,
		log:      o.Log,
		m:        newMetrics(o.Backend),
		inFlight: make(chan struct{}, lim.MaxInFlight),
		refusals: every{period: 10 * time.Second},
		leases:   map[string]*lease{},
		groups:   map[int]string{},
		conns:    map[*session]struct{}{},
		uidConns: map[uint32]int{},
		uidMaps:  map[uint32]*mapUse{},
	}
	s.accept.log.period = 10 * time.Second
	if o.Latency != nil {
		if err := s.m.reg.Register(latency.NewCollector(o.Latency)); err != nil {
			return nil, err
		}
	}
	st, err := openStore(o.StateDir, o.Effect)
	if err != nil {
		return nil, err
	}
	s.st = st
	ok := false
	defer func() {
		if !ok {
			st.close()
		}
	}()
	if o.Backend == BackendIOMMUFD && o.NewBroker == nil {
		o.NewBroker = func(ctx context.Context) (iommu.Backend, error) {
			return cdev.Open(ctx, cdev.Options{Path: o.IOMMUPath, SysfsRoot: o.Sysfs.Path(), DevDir: o.DevDir})
		}
		s.o.NewBroker = o.NewBroker
	}
	if o.Backend == BackendEmulated && o.NewBroker == nil {
		devs := o.Devices
		if o.Sysfs != nil {
			if devs, err = s.sysfsDevices(); err != nil {
				return nil, err
			}
		}
		if s.machine, err = emulated.NewMachine(devs...); err != nil {
			return nil, err
		}
	}
	if err := s.reconcile(ctx); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Close releases the state dir's lock, for the next agent. Serve does it
// when it returns; Close is for a Server that is never served. It is
// idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.st.close() })
	return err
}

// Acceptor is what Serve accepts connections from: a *Listener, or any
// *net.UnixListener of Network "unixpacket".
type Acceptor interface {
	AcceptUnix() (*net.UnixConn, error)
	Close() error
}

// Serve accepts connections on ln until ctx ends or ln is closed, then
// closes every connection (ending their broker leases; fds leases stay,
// persisted, for the next agent to re-adopt), releases the state dir and
// returns. Any other accept error (EMFILE, ENFILE, ENOBUFS, ENOMEM,
// ECONNABORTED...) is retried with a backoff, as net/http does, logged
// (not on every retry) and counted; /healthz fails while it lasts.
func (s *Server) Serve(ctx context.Context, ln Acceptor) error {
	defer s.Close()
	s.serving.Store(true)
	defer s.serving.Store(false)
	// Closing ln ends Accept. Serve returns only once ln is closed: a
	// Close that runs on the AfterFunc goroutine may still be releasing
	// the socket when Accept has already failed.
	lnClosed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { ln.Close(); close(lnClosed) })
	defer func() {
		if stop() {
			ln.Close()
		} else {
			<-lnClosed
		}
	}()
	s.wg.Add(1)
	go s.orphanLoop(ctx)
	var err error
	var delay time.Duration
	for {
		var c *net.UnixConn
		c, err = ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.acceptFailed(err, delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			continue
		}
		if delay != 0 {
			delay = 0
			s.acceptRecovered()
		}
		s.admit(ctx, c)
	}
	s.mu.Lock()
	for sess := range s.conns {
		sess.c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Server) orphanLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.o.OrphanCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.ReleaseOrphans(ctx)
		}
	}
}

// ReleaseOrphans releases every orphaned fds lease whose cdevs no process
// holds any more.
func (s *Server) ReleaseOrphans(ctx context.Context) {
	s.mu.Lock()
	var orphans []*lease
	for _, l := range s.leases {
		if l.sess == nil {
			orphans = append(orphans, l)
		}
	}
	s.mu.Unlock()
	for _, l := range orphans {
		if err := s.release(ctx, l, false); err == nil {
			s.log.Info("orphan released", "lease", l.rec.ID, "group", l.rec.Group)
		}
	}
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return "L" + hex.EncodeToString(b[:])
}

// sysfsDevices are the tree's endpoints that an IOMMU translates.
func (s *Server) sysfsDevices() ([]iommu.Device, error) {
	ds, err := s.o.Sysfs.Devices()
	if err != nil && len(ds) == 0 {
		return nil, err
	}
	var out []iommu.Device
	for _, d := range ds {
		if d.IOMMUGroup == nil || d.IsBridge() {
			continue
		}
		out = append(out, iommu.Device{BDF: d.Address.String(), Group: *d.IOMMUGroup})
	}
	return out, nil
}

// errGroupless is groupOf's answer for an endpoint without an iommu_group
// on a host with an IOMMU unit, which acquire turns into a probe.
type errGroupless struct{ bdf, unit string }

func (e *errGroupless) Error() string {
	return fmt.Sprintf("%s has no iommu_group yet: the IOMMU (%s) gives a device its group at its first driver probe", e.bdf, e.unit)
}

func (e *errGroupless) Unwrap() error { return sysfs.ErrNoGroup }

// groupless reports an endpoint without an iommu_group on a host with an
// IOMMU unit, nil for anything else.
func (s *Server) groupless(bdf string) *errGroupless {
	if s.o.Sysfs == nil {
		return nil
	}
	a, err := sysfs.ParseAddress(bdf)
	if err != nil {
		return nil
	}
	d, err := s.o.Sysfs.Device(a)
	if err != nil || d.IOMMUGroup != nil || d.IsBridge() {
		return nil
	}
	units, _ := s.o.Sysfs.IOMMUs()
	if len(units) == 0 {
		return nil
	}
	return &errGroupless{bdf: bdf, unit: units[0].Name}
}

// probeGroup gives the endpoint of g its iommu_group, for an acquire of
// it by address. An SMMUv3 described by a device tree (Debian's 6.12
// arm64) creates a PCI device's group only at its first driver probe, so a
// device no driver has claimed (rescanned, a fresh SR-IOV VF) has none.
// The agent leases groups, checked against the policy and the group rule,
// so it first makes the group: sysfs.Bind hands the device to vfio-pci,
// whose probe creates the group, and refuses (rolled back) a group that is
// not viable; the release puts the device back as it was, now in its
// group, which the kernel keeps. The acquire then goes on as for any
// device. Only a peer the policy gives this very device (or every device)
// makes the agent probe it, and a record covers the probe, so an agent
// that dies in it is undone by the next one.
func (s *Server) probeGroup(sess *session, g *errGroupless) error {
	if _, err := s.o.Policy.allow(sess.peer, -1, []string{g.bdf}); err != nil {
		msg := err.Error()
		if pe, ok := errors.AsType[*proto.Error](err); ok {
			msg = pe.Message
		}
		return &proto.Error{Code: proto.CodeDenied, Message: fmt.Sprintf("%v, which only a rule for this device may have made: %s", g, msg)}
	}
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if s.groupless(g.bdf) == nil {
		return nil // a probe before this one made it
	}
	a, err := sysfs.ParseAddress(g.bdf)
	if err != nil {
		return err
	}
	orig, err := s.originals([]string{a.String()})
	if err != nil {
		return err
	}
	rec := &record{ID: newID(), State: stateBinding, Mode: proto.ModeFDs, Group: -1, Devices: []string{a.String()},
		Restore: orig, Owner: sess.peer, Created: time.Now().UTC(), persist: len(orig) > 0}
	if err := s.save(rec); err != nil {
		return err
	}
	b, err := s.o.Sysfs.Bind(a.String())
	if err == nil {
		err = s.o.Sysfs.Release(b)
	}
	s.m.binds.WithLabelValues("probe", map[bool]string{true: "ok", false: "error"}[err == nil]).Inc()
	if rerr := s.restore(rec); rerr != nil {
		s.log.Error("restore after a group probe", "device", g.bdf, "err", rerr)
		return errors.Join(err, rerr) // the record stays: reconcile retries
	}
	if rerr := s.remove(rec); rerr != nil {
		s.log.Error("remove probe record", "device", g.bdf, "err", rerr)
	}
	switch {
	case errors.Is(err, sysfs.ErrNotViable):
		return &proto.Error{Code: proto.CodeNotViable, Message: err.Error()}
	case errors.Is(err, sysfs.ErrNoGroup):
		return &proto.Error{Code: proto.CodeNotFound, Message: err.Error()}
	case err != nil:
		return err
	}
	s.log.Info("iommu_group created by a probe", "device", g.bdf, "uid", sess.peer.UID)
	return nil
}

// groupOf resolves an acquire's target to a group and its endpoints.
func (s *Server) groupOf(req *proto.Request) (int, []string, error) {
	if (req.Device == "") == (req.Group == nil) {
		return 0, nil, &proto.Error{Code: proto.CodeInvalid, Message: "acquire wants exactly one of device and group"}
	}
	group := -1
	if req.Group != nil {
		group = *req.Group
	}
	var want string
	if req.Device != "" {
		a, err := sysfs.ParseAddress(req.Device)
		if err != nil {
			return 0, nil, &proto.Error{Code: proto.CodeInvalid, Message: err.Error()}
		}
		want = a.String()
	}
	var devs []iommu.Device
	if s.o.Sysfs != nil {
		var err error
		if devs, err = s.sysfsDevices(); err != nil {
			return 0, nil, err
		}
	} else {
		devs = s.o.Devices
	}
	if want != "" {
		i := slices.IndexFunc(devs, func(d iommu.Device) bool { return d.BDF == want })
		if i < 0 {
			if g := s.groupless(want); g != nil {
				return 0, nil, g
			}
			return 0, nil, &proto.Error{Code: proto.CodeNotFound, Message: fmt.Sprintf("no device %s behind an IOMMU", want)}
		}
		group = devs[i].Group
	}
	var members []string
	for _, d := range devs {
		if d.Group == group {
			members = append(members, d.BDF)
		}
	}
	sort.Strings(members)
	if len(members) == 0 {
		return 0, nil, &proto.Error{Code: proto.CodeNotFound, Message: fmt.Sprintf("no iommu_group %d with endpoints", group)}
	}
	if want != "" && len(members) > 1 {
		return 0, nil, &proto.Error{Code: proto.CodeNotViable, Message: fmt.Sprintf(
			"%s shares iommu_group %d with %v: a group is leased whole, acquire group %d", want, group, members, group)}
	}
	return group, members, nil
}

// originals records what binding group will change: its endpoints not on
// vfio-pci yet, as sysfs.BindGroup leaves the others alone.
func (s *Server) originals(members []string) ([]sysfs.Original, error) {
	if s.o.Sysfs == nil {
		return nil, nil
	}
	var out []sysfs.Original
	for _, m := range members {
		a, err := sysfs.ParseAddress(m)
		if err != nil {
			return nil, err
		}
		d, err := s.o.Sysfs.Device(a)
		if err != nil {
			return nil, err
		}
		if d.Driver == sysfs.VFIOPCI {
			continue
		}
		out = append(out, sysfs.Original{Address: a, Driver: d.Driver, Override: d.DriverOverride})
	}
	return out, nil
}

// cdevOf finds a bound device's VFIO cdev, as the kernel names it in
// bus/pci/devices/BDF/vfio-dev.
func (s *Server) cdevOf(bdf string) (string, error) {
	ents, err := os.ReadDir(s.o.Sysfs.Path("bus", "pci", "devices", bdf, "vfio-dev"))
	if err != nil {
		return "", fmt.Errorf("%s has no VFIO cdev (CONFIG_VFIO_DEVICE_CDEV?): %w", bdf, err)
	}
	for _, e := range ents {
		return filepath.Join(s.o.DevDir, e.Name()), nil
	}
	return "", fmt.Errorf("%s: vfio-dev is empty", bdf)
}

// acquire leases req's group to sess. fds, when returned, are the caller's
// to send and close. vf is what became of req.VF's attributes, also when
// the acquire failed on one.
func (s *Server) acquire(ctx context.Context, sess *session, req *proto.Request) (*proto.Lease, []string, []int, []proto.VFResult, error) {
	group, members, err := s.groupOf(req)
	if g, ok := errors.AsType[*errGroupless](err); ok {
		if err := s.probeGroup(sess, g); err != nil {
			return nil, nil, nil, nil, err
		}
		group, members, err = s.groupOf(req)
	}
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rule, err := s.o.Policy.allow(sess.peer, group, members)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	mode := req.Mode
	if mode == "" {
		mode = proto.ModeBroker
		if s.o.Backend == BackendIOMMUFD {
			mode = proto.ModeFDs
		}
	}
	switch {
	case mode != proto.ModeFDs && mode != proto.ModeBroker:
		return nil, nil, nil, nil, &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf("mode %q", mode)}
	case mode == proto.ModeFDs && s.o.Backend != BackendIOMMUFD:
		return nil, nil, nil, nil, &proto.Error{Code: proto.CodeUnsupported, Message: "the emulated IOMMU has no kernel fds to hand over: use mode broker"}
	}
	if req.Memlock > rule.Memlock {
		return nil, nil, nil, nil, &proto.Error{Code: proto.CodeDenied, Message: fmt.Sprintf("memlock %d bytes: policy allows at most %d", req.Memlock, rule.Memlock)}
	}
	vfs, err := s.vfsOf(members)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var vfSet sriov.Settings
	var vfRequired []sriov.Attr
	if req.VF != nil {
		switch {
		case s.o.SRIOV == nil:
			return nil, nil, nil, nil, &proto.Error{Code: proto.CodeUnsupported, Message: "this agent configures no SR-IOV VFs (no netlink)"}
		case len(members) != 1 || len(vfs) != 1:
			return nil, nil, nil, nil, &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf("vf config is for a lease of one SR-IOV VF, not of %v", members)}
		}
		if vfSet, vfRequired, err = vfSettings(req.VF); err != nil {
			return nil, nil, nil, nil, err
		}
	}

	id := newID()
	s.mu.Lock()
	if holder, ok := s.groups[group]; ok {
		s.mu.Unlock()
		return nil, nil, nil, nil, &proto.Error{Code: proto.CodeBusy, Message: fmt.Sprintf("iommu_group %d is leased (%s)", group, holder)}
	}
	s.groups[group] = id
	s.mu.Unlock()
	committed := false
	defer func() {
		if !committed {
			s.mu.Lock()
			delete(s.groups, group)
			s.mu.Unlock()
		}
	}()

	restore, err := s.originals(members)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rec := &record{ID: id, State: stateBinding, Mode: mode, Group: group, Devices: members,
		Restore: restore, Owner: sess.peer, Created: time.Now().UTC()}
	if req.VF != nil {
		snap, err := s.o.SRIOV.Save(vfs[0])
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("save vf config: %w", err)
		}
		rec.VFs = []sriov.Snapshot{snap}
	}
	// A lease that changes nothing on the host and hands nothing out (a
	// broker lease of devices already on vfio-pci, or emulated ones) has
	// nothing to undo or re-adopt after a crash, so it costs no fsync. A
	// VF's lease is always written: its record is what keeps sriov
	// disable from removing the VF under the lease (VFInUse).
	rec.persist = len(restore) > 0 || mode == proto.ModeFDs || len(vfs) > 0
	if err := s.save(rec); err != nil {
		return nil, nil, nil, nil, err
	}
	undo := func() { // back to where we started; the record goes last
		if err := s.restore(rec); err != nil {
			s.log.Error("restore after failed acquire", "lease", id, "group", group, "err", err)
			return // keep the record: reconcile retries
		}
		if err := s.remove(rec); err != nil {
			s.log.Error("remove lease record", "lease", id, "err", err)
		}
	}
	var vfResults []proto.VFResult
	if req.VF != nil {
		if vfResults, err = s.configureVF(vfs[0], vfSet, vfRequired); err != nil {
			undo()
			return nil, nil, nil, vfResults, err
		}
	}
	if s.o.Sysfs != nil && len(restore) > 0 {
		if _, err := s.o.Sysfs.BindGroup(group); err != nil {
			s.m.binds.WithLabelValues("bind", "error").Inc()
			undo() // BindGroup rolled back; this removes the record
			return nil, nil, nil, vfResults, &proto.Error{Code: proto.CodeNotViable, Message: err.Error()}
		}
		s.m.binds.WithLabelValues("bind", "ok").Inc()
	}

	l := &lease{rec: rec, rule: rule, sess: sess}
	var names []string
	var fds []int
	closeFDs := func() { proto.CloseFDs(fds); fds = nil }
	if mode == proto.ModeFDs {
		names, fds, err = s.openFDs(rec)
	} else {
		err = s.openBroker(ctx, l)
	}
	if err == nil && req.Memlock > 0 {
		err = s.setMemlock(sess.peer, req.Memlock)
	}
	if err == nil {
		rec.State = stateActive
		err = s.save(rec)
	}
	if err != nil {
		closeFDs()
		s.closeLease(l)
		undo()
		return nil, nil, nil, vfResults, err
	}
	s.mu.Lock()
	s.leases[id] = l
	sess.leases[id] = l
	committed = true
	s.mu.Unlock()
	s.m.leases.WithLabelValues(mode).Inc()
	s.log.Info("lease acquired", "lease", id, "mode", mode, "group", group, "devices", members, "vfs", vfs, "uid", sess.peer.UID, "pid", sess.peer.PID)
	pl := l.proto()
	return &pl, names, fds, vfResults, nil
}

// openFDs opens what QEMU's -object iommufd,fd= and -device vfio-pci,fd=
// take: a fresh iommufd (its options set) and each device's cdev, unbound:
// the VMM does BIND_IOMMUFD and the attach itself.
func (s *Server) openFDs(rec *record) (names []string, fds []int, err error) {
	defer func() {
		if err != nil {
			proto.CloseFDs(fds)
		}
	}()
	f, err := os.OpenFile(s.o.IOMMUPath, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if s.o.RLimitProcess {
		ifd, err := iommufd.NewFD(f)
		if err != nil {
			return nil, nil, err
		}
		err = ifd.SetRLimitMode(iommufd.RLimitProcess) // the option lives on the open file, shared with f
		ifd.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("iommufd rlimit mode: %w", err)
		}
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("dup %s: %w", s.o.IOMMUPath, err)
	}
	fds = append(fds, fd)
	names = append(names, "iommufd")
	rec.Cdevs = nil
	for _, bdf := range rec.Devices {
		path, err := s.cdevOf(bdf)
		if err != nil {
			return nil, nil, err
		}
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", path, err)
		}
		fds = append(fds, fd)
		names = append(names, "vfio:"+bdf)
		rec.Cdevs = append(rec.Cdevs, path)
	}
	return names, fds, nil
}

func (s *Server) openBroker(ctx context.Context, l *lease) error {
	var be iommu.Backend
	var err error
	if s.o.NewBroker != nil {
		be, err = s.o.NewBroker(ctx)
	} else {
		eo := s.o.EmulatedOptions
		eo.Machine = s.machine
		if s.o.Latency != nil {
			eo.Latency = s.o.Latency
		}
		be, err = emulated.New(eo)
	}
	if err != nil {
		return err
	}
	l.be = be
	if l.as, err = be.NewAddressSpace(ctx); err != nil {
		return err
	}
	l.atts = map[string]iommu.Attachment{}
	for _, bdf := range l.rec.Devices {
		dev := iommu.Device{BDF: bdf, Group: l.rec.Group}
		if s.o.Sysfs != nil && s.o.Backend == BackendIOMMUFD {
			if dev.Cdev, err = s.cdevOf(bdf); err != nil {
				return err
			}
		}
		at, err := l.as.Attach(ctx, dev)
		if err != nil {
			return err
		}
		l.atts[bdf] = at
	}
	return nil
}

// setMemlock raises the peer's RLIMIT_MEMLOCK, which only a process with
// CAP_SYS_RESOURCE may do: what a VMM needs to pin guest RAM.
func (s *Server) setMemlock(peer Peer, bytes uint64) error {
	pid := peer.PID
	if st, err := startTime(s.o.ProcRoot, pid); err != nil || st != peer.Start {
		return &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf("pid %d is no longer the process that connected", pid)}
	}
	var old unix.Rlimit
	if err := unix.Prlimit(int(pid), unix.RLIMIT_MEMLOCK, nil, &old); err != nil {
		return fmt.Errorf("read memlock of pid %d: %w", pid, err)
	}
	lim := unix.Rlimit{Cur: bytes, Max: max(bytes, old.Max)}
	if err := unix.Prlimit(int(pid), unix.RLIMIT_MEMLOCK, &lim, nil); err != nil {
		if errors.Is(err, unix.EPERM) {
			// The agent's own setup, not the client's request: say what
			// the client can do now and what the operator must fix.
			s.log.Error("raise memlock: the agent lacks CAP_SYS_RESOURCE", "pid", pid, "bytes", bytes, "hard", old.Max)
			return &proto.Error{Code: proto.CodeUnsupported, Message: fmt.Sprintf(
				"this agent cannot raise RLIMIT_MEMLOCK above the hard limit %d (it lacks CAP_SYS_RESOURCE): acquire without memlock and raise it in the VMM's unit, or run the agent with CAP_SYS_RESOURCE", old.Max)}
		}
		return fmt.Errorf("set memlock of pid %d to %d: %w", pid, bytes, err)
	}
	return nil
}

// closeLease ends l's address space and its memfd mappings.
func (s *Server) closeLease(l *lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.as != nil {
		l.as.Close()
	}
	if l.be != nil {
		l.be.Close()
	}
	for _, m := range l.maps {
		if m.mem != nil {
			unix.Munmap(m.mem)
		}
		s.uncharge(l, m.length)
	}
	l.maps = nil
	l.as, l.be = nil, nil
}

func (l *lease) proto() proto.Lease {
	return proto.Lease{ID: l.rec.ID, Mode: l.rec.Mode, Group: l.rec.Group, Devices: l.rec.Devices,
		UID: l.rec.Owner.UID, PID: l.rec.Owner.PID, Orphan: l.sess == nil}
}

// release ends l. explicit is a client's request: for fds leases it fails
// with busy while the cdevs are open; otherwise a held lease becomes an
// orphan.
func (s *Server) release(ctx context.Context, l *lease, explicit bool) error {
	rec := l.rec
	if rec.Mode == proto.ModeFDs {
		if pids := holders(s.o.ProcRoot, rec.Cdevs); len(pids) > 0 {
			if explicit {
				return &proto.Error{Code: proto.CodeBusy, Message: fmt.Sprintf("lease %s: %v still open by pids %v: close them first", rec.ID, rec.Cdevs, pids)}
			}
			s.mu.Lock()
			if l.sess != nil {
				delete(l.sess.leases, rec.ID)
				l.sess = nil
			}
			s.mu.Unlock()
			return &proto.Error{Code: proto.CodeBusy, Message: "still open"}
		}
	}
	s.mu.Lock()
	if s.leases[rec.ID] != l { // released meanwhile
		s.mu.Unlock()
		return &proto.Error{Code: proto.CodeNotFound, Message: "lease " + rec.ID + " is gone"}
	}
	delete(s.leases, rec.ID)
	if l.sess != nil {
		delete(l.sess.leases, rec.ID)
	}
	s.mu.Unlock()
	s.m.leases.WithLabelValues(rec.Mode).Dec()

	rec.State = stateReleasing
	err := s.save(rec)
	s.closeLease(l)
	if err == nil {
		err = s.restore(rec)
	}
	if err == nil {
		err = s.remove(rec)
	}
	if err != nil {
		// The record stays and keeps the group: the next reconcile
		// finishes the job; the group is not handed out half restored.
		s.log.Error("release", "lease", rec.ID, "group", rec.Group, "err", err)
		return err
	}
	s.mu.Lock()
	delete(s.groups, rec.Group)
	s.mu.Unlock()
	s.log.Info("lease released", "lease", rec.ID, "group", rec.Group)
	return nil
}

func (s *Server) save(rec *record) error {
	if !rec.persist {
		return nil
	}
	return s.st.save(rec)
}

func (s *Server) remove(rec *record) error {
	if !rec.persist {
		return nil
	}
	return s.st.remove(rec.ID)
}

// restore undoes what rec changed: VF configs first, so the VF's own
// driver, bound back after, starts from them (igbvf reads its MAC at probe).
func (s *Server) restore(rec *record) error {
	if err := s.restoreVFs(rec); err != nil {
		return err
	}
	if s.o.Sysfs == nil || len(rec.Restore) == 0 {
		return nil
	}
	if err := s.o.Sysfs.Release(&sysfs.Binding{Devices: rec.Restore}); err != nil {
		s.m.binds.WithLabelValues("restore", "error").Inc()
		return err
	}
	s.m.binds.WithLabelValues("restore", "ok").Inc()
	return nil
}

// reconcile takes over the state dir: a record of an fds lease whose cdevs
// some process holds is re-adopted (an orphan until its owner's uid releases
// it or nobody holds it); every other record is undone.
func (s *Server) reconcile(ctx context.Context) error {
	recs, err := s.st.load()
	if err != nil {
		s.log.Error("state dir", "err", err)
	}
	var errs []error
	for _, rec := range recs {
		if rec.State == stateActive && rec.Mode == proto.ModeFDs {
			if pids := holders(s.o.ProcRoot, rec.Cdevs); len(pids) > 0 {
				l := &lease{rec: rec}
				s.leases[rec.ID] = l
				s.groups[rec.Group] = rec.ID
				s.m.leases.WithLabelValues(rec.Mode).Inc()
				s.m.reconciled.WithLabelValues("adopted").Inc()
				s.log.Info("lease re-adopted", "lease", rec.ID, "group", rec.Group, "holders", pids)
				continue
			}
		}
		err := s.restore(rec)
		if err == nil {
			err = s.st.remove(rec.ID)
		}
		if err != nil {
			s.groups[rec.Group] = rec.ID // not handed out half restored
			errs = append(errs, fmt.Errorf("lease %s: %w", rec.ID, err))
			continue
		}
		s.m.reconciled.WithLabelValues("released").Inc()
		s.log.Info("stale lease released", "lease", rec.ID, "state", rec.State, "group", rec.Group)
	}
	s.warnStrays()
	return errors.Join(errs...)
}

// warnStrays logs devices on vfio-pci that no lease owns: bound by an admin
// or another tool, they are not the agent's to give back, but an operator
// looking for a leak should see them.
func (s *Server) warnStrays() {
	if s.o.Sysfs == nil {
		return
	}
	owned := map[string]bool{}
	for _, l := range s.leases {
		for _, d := range l.rec.Devices {
			owned[d] = true
		}
	}
	ds, _ := s.o.Sysfs.Devices()
	for _, d := range ds {
		if d.Driver == sysfs.VFIOPCI && !owned[d.Address.String()] {
			s.log.Warn("device on vfio-pci without a lease; left alone", "device", d.Address.String(), "driver_override", d.DriverOverride)
		}
	}
}

// Leases returns every lease, for status and tests.
func (s *Server) Leases() []proto.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]proto.Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l.proto())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
