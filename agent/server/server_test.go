//go:build linux && !hwtests

package server_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/sys/unix"
)

// me is a policy letting this test process lease anything.
func me() *server.Policy {
	return &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, All: true, Memlock: 1 << 30}}}
}

func edus(n int) []iommu.Device {
	var ds []iommu.Device
	for i := range n {
		a := sysfs.Address{Bus: uint8(i / 32), Device: uint8(i % 32)}
		ds = append(ds, iommu.Device{BDF: a.String(), Group: i + 1})
	}
	return ds
}

// start runs a server with o until the test ends and returns its socket.
func start(t testing.TB, o server.Options) (string, *server.Server) {
	t.Helper()
	if o.StateDir == "" {
		o.StateDir = filepath.Join(t.TempDir(), "state")
	}
	if o.Policy == nil {
		o.Policy = me()
	}
	srv, err := server.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sock, _ := serve(t, srv)
	return sock, srv
}

// dial connects to sock until the test ends.
func dial(t testing.TB, sock string) *client.Client {
	t.Helper()
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fakeHost is a fake sysfs tree the Kernel writer plays the kernel on, with
// regular files standing in for /dev/iommu and the VFIO cdevs.
type fakeHost struct {
	sys    string
	fs     *sysfs.FS
	k      *sysfstest.Kernel
	iommu  string
	devDir string
}

func newFakeHost(t testing.TB, fixture string) *fakeHost {
	t.Helper()
	root := sysfstest.Build(t, filepath.Join("..", "..", "sysfs", "testdata", fixture))
	h := &fakeHost{sys: filepath.Join(root, "sys"), k: &sysfstest.Kernel{Root: filepath.Join(root, "sys")}}
	h.iommu = filepath.Join(root, "dev", "iommu")
	h.devDir = filepath.Join(root, "dev", "vfio", "devices")
	os.MkdirAll(h.devDir, 0o755)
	os.WriteFile(h.iommu, nil, 0o600)
	devs, _ := os.ReadDir(filepath.Join(h.sys, "bus", "pci", "devices"))
	for i, d := range devs {
		name := "vfio" + string(rune('0'+i))
		os.MkdirAll(filepath.Join(h.sys, "bus", "pci", "devices", d.Name(), "vfio-dev", name), 0o755)
		os.WriteFile(filepath.Join(h.devDir, name), nil, 0o600)
	}
	var err error
	h.fs, err = sysfs.New(h.sys, sysfs.WithWriter(h.k))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// drivers is each device's driver and override: the host state a lease
// changes and a release must restore.
func (h *fakeHost) drivers(t testing.TB) map[string]string {
	t.Helper()
	ds, err := h.fs.Devices()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, d := range ds {
		m[d.Address.String()] = d.Driver + "/" + d.DriverOverride
	}
	return m
}

func TestBrokerDMA(t *testing.T) {
	t.Parallel()
	sock, srv := start(t, server.Options{Devices: edus(2)})
	c := dial(t, sock)
	if c.Hello.Backend != server.BackendEmulated || c.Hello.UID != uint32(os.Getuid()) {
		t.Fatalf("hello = %+v", c.Hello)
	}
	devs, groups, err := c.List()
	if err != nil || len(devs) != 2 || len(groups) != 2 {
		t.Fatalf("List = %v %v %v", devs, groups, err)
	}
	a, err := c.AcquireDevice(devs[0].BDF, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Lease.Mode != proto.ModeBroker || len(a.Files) != 0 {
		t.Fatalf("lease %+v files %d", a.Lease, len(a.Files))
	}
	if _, err := c.AcquireDevice(devs[0].BDF, client.AcquireOptions{}); !errors.Is(err, proto.ErrBusy) {
		t.Errorf("second acquire: %v, want busy", err)
	}
	f, mem, err := client.NewMemfd("test", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	iova, err := c.Map(a.Lease.ID, f, 0, 1<<16, 0x100000, true, "rw")
	if err != nil || iova != 0x100000 {
		t.Fatalf("Map = %#x, %v", iova, err)
	}
	msg := []byte("written by the emulated device")
	if err := c.DMAWrite(a.Lease.ID, "", iova+0x10, msg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mem[0x10:0x10+len(msg)], msg) {
		t.Errorf("memory holds %q", mem[0x10:0x10+len(msg)])
	}
	copy(mem[0x200:], "read by it")
	got, err := c.DMARead(a.Lease.ID, "", iova+0x200, 10)
	if err != nil || string(got) != "read by it" {
		t.Errorf("DMARead = %q, %v", got, err)
	}
	if err := c.DMAWrite(a.Lease.ID, "", 0x900000, msg); !errors.Is(err, proto.ErrFault) {
		t.Errorf("DMA to an unmapped IOVA: %v, want fault", err)
	}
	if n, err := c.Unmap(a.Lease.ID, iova, 1<<16); err != nil || n != 1<<16 {
		t.Errorf("Unmap = %d, %v", n, err)
	}
	if err := c.DMAWrite(a.Lease.ID, "", iova, msg); !errors.Is(err, proto.ErrFault) {
		t.Errorf("DMA after unmap: %v, want fault", err)
	}
	if err := c.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
	if l := srv.Leases(); len(l) != 0 {
		t.Errorf("leases after release: %v", l)
	}
}

func TestMapRefusesUnsealedMemfd(t *testing.T) {
	t.Parallel()
	sock, _ := start(t, server.Options{Devices: edus(1)})
	c := dial(t, sock)
	a, err := c.AcquireGroup(1, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "mem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(1 << 16)
	if _, err := c.Map(a.Lease.ID, f, 0, 1<<16, 0, false, "rw"); !errors.Is(err, proto.ErrInvalid) {
		t.Errorf("map of an unsealed file: %v, want invalid", err)
	}
}

func TestGroupRule(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "vtd-guest.txtar")
	before := h.drivers(t)
	sock, _ := start(t, server.Options{Sysfs: h.fs})
	c := dial(t, sock)
	// 00:1f.2 shares group 3 with the LPC and SMBus functions.
	_, err := c.AcquireDevice("0000:00:1f.2", client.AcquireOptions{})
	if !errors.Is(err, proto.ErrNotViable) || !strings.Contains(err.Error(), "acquire group 3") {
		t.Fatalf("device of a shared group: %v", err)
	}
	a, err := c.AcquireGroup(3, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Lease.Devices, []string{"0000:00:1f.0", "0000:00:1f.2", "0000:00:1f.3"}) {
		t.Errorf("group lease devices %v", a.Lease.Devices)
	}
	for _, d := range a.Lease.Devices {
		if got := h.drivers(t)[d]; got != "vfio-pci/vfio-pci" {
			t.Errorf("%s while leased: %s", d, got)
		}
	}
	if err := c.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
	if after := h.drivers(t); !mapsEqual(before, after) {
		t.Errorf("drivers after release %v, want %v", after, before)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	foreign := &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid()) + 4242}, All: true}}}
	sock, _ := start(t, server.Options{Devices: edus(2), Policy: foreign})
	c := dial(t, sock)
	if _, err := c.AcquireGroup(1, client.AcquireOptions{}); !errors.Is(err, proto.ErrDenied) || !strings.Contains(err.Error(), "no policy rule") {
		t.Errorf("foreign uid: %v, want denied", err)
	}
	only2 := &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, Groups: []int{2}}}}
	sock, _ = start(t, server.Options{Devices: edus(2), Policy: only2})
	c = dial(t, sock)
	if _, err := c.AcquireGroup(1, client.AcquireOptions{}); !errors.Is(err, proto.ErrDenied) {
		t.Errorf("group 1: %v, want denied", err)
	}
	if _, err := c.AcquireGroup(2, client.AcquireOptions{Memlock: 1 << 20}); !errors.Is(err, proto.ErrDenied) {
		t.Errorf("memlock beyond the rule: %v, want denied", err)
	}
	if _, err := c.AcquireGroup(2, client.AcquireOptions{}); err != nil {
		t.Errorf("group 2: %v", err)
	}
	for _, bad := range []string{`{"rules":[{"uids":[1]}]}`, `{"rules":[{"all":true}]}`, `{"rules":[{"uids":[1],"devices":["zz"]}]}`, `{"rulez":[]}`} {
		if _, err := server.ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("ParsePolicy(%s) accepted", bad)
		}
	}
}

// TestFDsLease hands out the fake /dev/iommu and cdev, re-adopts the lease in
// a new server while the client holds them, and refuses to unbind under them.
func TestFDsLease(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "vtd-guest.txtar")
	before := h.drivers(t)
	state := filepath.Join(t.TempDir(), "state")
	o := server.Options{Backend: server.BackendIOMMUFD, Sysfs: h.fs, IOMMUPath: h.iommu, DevDir: h.devDir, StateDir: state,
		Policy: &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, All: true, KeepOnDisconnect: true}}}}
	srv1, err := server.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sock, stop := serve(t, srv1)
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.AcquireDevice("0000:01:00.0", client.AcquireOptions{}) // igb, group 4
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !slices.Equal(a.Names, []string{"iommufd", "vfio:0000:01:00.0"}) || len(a.Files) != 2 {
		t.Fatalf("names %v, %d files", a.Names, len(a.Files))
	}
	if err := c.Release(a.Lease.ID); !errors.Is(err, proto.ErrBusy) {
		t.Errorf("release while the cdev is open: %v, want busy", err)
	}
	c.Close()                      // kept by policy: the VMM holds the fds
	if err := stop(); err != nil { // one agent at a time on a state dir
		t.Fatal(err)
	}

	// A new agent on the same state re-adopts it.
	o2 := o
	sock2, srv2 := start(t, o2)
	if l := srv2.Leases(); len(l) != 1 || l[0].ID != a.Lease.ID || !l[0].Orphan {
		t.Fatalf("re-adopted leases: %+v", l)
	}
	if got := h.drivers(t)["0000:01:00.0"]; got != "vfio-pci/vfio-pci" {
		t.Errorf("igb while re-adopted: %s", got)
	}
	a.Close()
	c2 := dial(t, sock2)
	if err := c2.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
	if after := h.drivers(t); !mapsEqual(before, after) {
		t.Errorf("drivers after release %v, want %v", after, before)
	}
}

// TestOrphan: a client that disconnects while its VMM still holds the cdev
// leaves an orphan the agent does not unbind under it; once nobody holds the
// cdev, the orphan check releases it.
func TestOrphan(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "vtd-guest.txtar")
	before := h.drivers(t)
	sock, srv := start(t, server.Options{Backend: server.BackendIOMMUFD, Sysfs: h.fs, IOMMUPath: h.iommu, DevDir: h.devDir})
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.AcquireGroup(4, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, func() bool { l := srv.Leases(); return len(l) == 1 && l[0].Orphan })
	srv.ReleaseOrphans(context.Background())
	if l := srv.Leases(); len(l) != 1 {
		t.Fatalf("orphan released while its cdev is open: %v", l)
	}
	a.Close()
	srv.ReleaseOrphans(context.Background())
	if l := srv.Leases(); len(l) != 0 {
		t.Fatalf("orphan kept after its cdev closed: %v", l)
	}
	if after := h.drivers(t); !mapsEqual(before, after) {
		t.Errorf("drivers after the orphan's release %v, want %v", after, before)
	}
}

// TestMemlock: the agent sets the peer's RLIMIT_MEMLOCK on request (here to
// its current value, so the test process keeps what it had).
func TestMemlock(t *testing.T) {
	t.Parallel()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		t.Fatal(err)
	}
	p := &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, All: true, Memlock: lim.Cur}}}
	sock, _ := start(t, server.Options{Devices: edus(1), Policy: p})
	c := dial(t, sock)
	if _, err := c.AcquireGroup(1, client.AcquireOptions{Memlock: lim.Cur}); err != nil {
		t.Fatalf("memlock %d: %v", lim.Cur, err)
	}
	var now syscall.Rlimit
	syscall.Getrlimit(unix.RLIMIT_MEMLOCK, &now)
	if now != lim {
		t.Errorf("memlock %+v, want %+v", now, lim)
	}
}

// TestMemlockWithoutCapability: an agent without CAP_SYS_RESOURCE cannot
// raise a hard limit; the client hears that and what to do, not internal.
func TestMemlockWithoutCapability(t *testing.T) {
	t.Parallel()
	if hasCapSysResource(t) {
		t.Skip("this process holds CAP_SYS_RESOURCE: the agent could raise the limit")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max == unix.RLIM_INFINITY {
		t.Skip("hard RLIMIT_MEMLOCK is unlimited: nothing to raise")
	}
	want := lim.Max + 1<<20
	p := &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, All: true, Memlock: want}}}
	sock, srv := start(t, server.Options{Devices: edus(1), Policy: p})
	c := dial(t, sock)
	_, err := c.AcquireGroup(1, client.AcquireOptions{Memlock: want})
	if !errors.Is(err, proto.ErrUnsupported) || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
		t.Fatalf("memlock %d over the hard limit %d: %v, want unsupported naming CAP_SYS_RESOURCE", want, lim.Max, err)
	}
	if l := srv.Leases(); len(l) != 0 {
		t.Errorf("leases after the refused acquire: %v", l)
	}
}

// hasCapSysResource reads CapEff of this process.
func hasCapSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

// A device without an iommu_group on a host with an IOMMU (SMMUv3 creates
// a PCI device's group at its first driver probe) is acquired by address:
// the agent probes it to create its group, then leases that group as any
// other, and the release leaves the device as it was, in its new group.
func TestAcquireGroupless(t *testing.T) {
	t.Parallel()
	const edu = "0000:00:06.0" // no group in bridge-group.txtar
	fds := func(h *fakeHost, p *server.Policy) *client.Client {
		t.Helper()
		sock, _ := start(t, server.Options{Backend: server.BackendIOMMUFD, Sysfs: h.fs, IOMMUPath: h.iommu, DevDir: h.devDir, Policy: p})
		return dial(t, sock)
	}
	h := newFakeHost(t, "bridge-group.txtar")
	h.k.GroupOnProbe = map[string]int{edu: 9}
	before := h.drivers(t)
	c := fds(h, nil)
	a, err := c.AcquireDevice(edu, client.AcquireOptions{})
	if err != nil || a.Lease.Group != 9 {
		t.Fatalf("acquire of a group-less device: %+v, %v; want group 9", a, err)
	}
	if got := h.drivers(t)[edu]; got != "vfio-pci/vfio-pci" {
		t.Errorf("while leased: %s", got)
	}
	a.Close()
	if err := c.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
	if after := h.drivers(t); !mapsEqual(before, after) {
		t.Errorf("after release %v, want %v", after, before)
	}
	d, err := h.fs.Device(sysfs.Address{Device: 6})
	if err != nil || d.IOMMUGroup == nil || *d.IOMMUGroup != 9 {
		t.Errorf("after release: %+v, %v; want its group 9 kept", d, err)
	}

	for _, tc := range []struct {
		name   string
		probe  map[string]int // GroupOnProbe
		policy *server.Policy
		is     error
		text   string
	}{
		// The probe joins group 5, where e1000 is bound: not viable.
		{"not viable", map[string]int{edu: 5}, nil, proto.ErrNotViable, "0000:02:02.0 bound to e1000"},
		// An IOMMU that groups at boot: vfio-pci refuses it, no group.
		{"no group comes", nil, nil, proto.ErrNotFound, "still has no iommu_group"},
		// A rule by group cannot cover a group that does not exist yet.
		{"policy by group", map[string]int{edu: 9}, &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, Groups: []int{9}}}},
			proto.ErrDenied, "no iommu_group yet"},
	} {
		h := newFakeHost(t, "bridge-group.txtar")
		h.k.GroupOnProbe = tc.probe
		before := h.drivers(t)
		_, err := fds(h, tc.policy).AcquireDevice(edu, client.AcquireOptions{})
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v; want %v saying %q", tc.name, err, tc.is, tc.text)
		}
		if after := h.drivers(t); !mapsEqual(before, after) {
			t.Errorf("%s: after the refused acquire %v, want %v", tc.name, after, before)
		}
		if tc.policy != nil && len(h.k.Writes()) != 0 {
			t.Errorf("%s: a denied peer made the agent write %q", tc.name, h.k.Writes())
		}
	}

	// Without an IOMMU unit the device is not behind one.
	n := newFakeHost(t, "bridge-group.txtar")
	os.RemoveAll(filepath.Join(n.sys, "class", "iommu"))
	_, err = fds(n, nil).AcquireDevice(edu, client.AcquireOptions{})
	if !errors.Is(err, proto.ErrNotFound) || !strings.Contains(err.Error(), "no device "+edu+" behind an IOMMU") || len(n.k.Writes()) != 0 {
		t.Errorf("acquire without an IOMMU unit: %v, writes %q", err, n.k.Writes())
	}
}

// TestAcquireGrouplessRollback fails each write of the group-creating
// probe in turn: the device ends as it was and no record is left.
func TestAcquireGrouplessRollback(t *testing.T) {
	t.Parallel()
	const edu = "0000:00:06.0"
	for step := 1; step <= 4; step++ { // override, probe; unbind, clear override
		h := newFakeHost(t, "bridge-group.txtar")
		h.k.GroupOnProbe = map[string]int{edu: 9}
		h.k.FailAt = step
		before := h.drivers(t)
		state := filepath.Join(t.TempDir(), "state")
		sock, _ := start(t, server.Options{Backend: server.BackendIOMMUFD, Sysfs: h.fs, IOMMUPath: h.iommu, DevDir: h.devDir, StateDir: state})
		_, err := dial(t, sock).AcquireDevice(edu, client.AcquireOptions{})
		if err == nil {
			t.Errorf("step %d: acquire succeeded (writes %q)", step, h.k.Writes())
			continue
		}
		if after := h.drivers(t); !mapsEqual(before, after) {
			t.Errorf("step %d: %v; after %v, want %v (writes %q)", step, err, after, before, h.k.Writes())
		}
		if recs, _ := filepath.Glob(filepath.Join(state, "*.lease")); len(recs) != 0 {
			t.Errorf("step %d: records left %v", step, recs)
		}
	}
}
