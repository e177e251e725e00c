//go:build linux && !hwtests

package server_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/agent/sriov/sriovtest"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

const (
	pfBDF  = "0000:01:00.0" // the igb of agent/sriov's fixtures
	vf0BDF = "0000:01:10.0"
	vf1BDF = "0000:01:10.2"
	eduBDF = "0000:00:01.0"
)

// vfHost is the igb with two VFs, its fake kernel and netlink, and an
// SR-IOV manager over them.
func vfHost(t *testing.T) (*sriovtest.Host, *sriov.Manager) {
	t.Helper()
	h := sriovtest.NewHost(t, filepath.Join("..", "sriov", "testdata", "igb-2vfs.txtar"))
	m, err := sriov.New(sriov.Options{FS: h.FS, Writer: h.Kernel, Links: h.Links})
	if err != nil {
		t.Fatal(err)
	}
	return h, m
}

// vfState is what a VF lease changes: each VF's config and every device's
// driver and override.
func vfState(t *testing.T, fs *sysfs.FS, m *sriov.Manager) map[string]string {
	t.Helper()
	ds, err := fs.Devices()
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]string{}
	for _, d := range ds {
		st[d.Address.String()] = d.Driver + "/" + d.DriverOverride
	}
	for _, vf := range []string{vf0BDF, vf1BDF} {
		_, c, err := m.Config(vf)
		if err != nil {
			t.Fatal(err)
		}
		st[vf+" config"] = strings.Join([]string{c.MAC.String(), c.Value(sriov.AttrVLAN), c.Value(sriov.AttrQoS),
			c.Value(sriov.AttrSpoofChk), c.Value(sriov.AttrTrust), c.State.String()}, " ")
	}
	return st
}

func diffState(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %q, want %q", what, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: new %s = %q", what, k, got[k])
		}
	}
}

func records(t *testing.T, state string) []string {
	t.Helper()
	recs, err := filepath.Glob(filepath.Join(state, "*.lease"))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func ptr[T any](v T) *T { return &v }

func TestVFLease(t *testing.T) {
	t.Parallel()
	h, m := vfHost(t)
	want := vfState(t, h.FS, m)
	state := filepath.Join(t.TempDir(), "state")
	sock, srv := start(t, server.Options{Sysfs: h.FS, SRIOV: m, StateDir: state})
	c := dial(t, sock)
	if c.Hello.Version != proto.Version {
		t.Fatalf("hello %+v", c.Hello)
	}
	a, err := c.AcquireDevice(vf0BDF, client.AcquireOptions{VF: &proto.VFConfig{
		MAC: "52:54:00:12:34:56", VLAN: ptr(10), Trust: ptr(true), Required: []string{"mac", "vlan"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.VF) != 3 {
		t.Fatalf("VF results %+v, want mac, vlan, trust", a.VF)
	}
	for _, r := range a.VF {
		if !r.OK || r.Want != r.Got {
			t.Errorf("result %+v", r)
		}
	}
	_, cfg, err := m.Config(vf0BDF)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MAC.String() != "52:54:00:12:34:56" || cfg.VLAN != 10 || !cfg.Trust || !cfg.SpoofChk {
		t.Errorf("vf0 config while leased: %+v", cfg)
	}
	addr, _ := sysfs.ParseAddress(vf0BDF)
	d, err := h.FS.Device(addr)
	if err != nil || d.Driver != sysfs.VFIOPCI {
		t.Errorf("vf0 while leased: driver %q, %v", d.Driver, err)
	}
	// The record holds the config to restore, and keeps sriov disable off.
	recs := records(t, state)
	if len(recs) != 1 {
		t.Fatalf("records %v", recs)
	}
	b, _ := os.ReadFile(recs[0])
	if !strings.Contains(string(b), `"vfs"`) || !strings.Contains(string(b), `"mac": "00:00:00:00:00:00"`) {
		t.Errorf("record lacks the saved VF config:\n%s", b)
	}
	held, err := server.LeasedDevices(state)
	if err != nil || held[vf0BDF] != a.Lease.ID || len(held) != 1 {
		t.Errorf("LeasedDevices = %v, %v", held, err)
	}
	refusedWhileLeased(t, m, pfBDF, state)
	if ls := srv.Leases(); len(ls) != 1 || ls[0].Devices[0] != vf0BDF {
		t.Errorf("Leases %+v", ls)
	}

	if err := c.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
	diffState(t, "after release", vfState(t, h.FS, m), want)
	if recs := records(t, state); len(recs) != 0 {
		t.Errorf("records after release: %v", recs)
	}
	inUse, err := server.VFInUse(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(pfBDF, sriov.DisableOptions{InUse: inUse}); err != nil {
		t.Errorf("Disable after release: %v", err)
	}
}

// A VF leased without a config is still persisted (so disable sees it) and
// comes back to its driver; one whose connection drops is restored too.
func TestVFLeaseDisconnect(t *testing.T) {
	t.Parallel()
	h, m := vfHost(t)
	want := vfState(t, h.FS, m)
	state := filepath.Join(t.TempDir(), "state")
	sock, srv := start(t, server.Options{Sysfs: h.FS, SRIOV: m, StateDir: state})
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireDevice(vf1BDF, client.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	if held, err := server.LeasedDevices(state); err != nil || held[vf1BDF] == "" {
		t.Errorf("VF lease without config not in the state dir: %v %v", held, err)
	}
	if _, err := c.AcquireDevice(vf0BDF, client.AcquireOptions{VF: &proto.VFConfig{MAC: "52:54:00:00:00:01", SpoofChk: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for range 5000 { // the record goes last
		if len(srv.Leases()) == 0 && len(records(t, state)) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if ls := srv.Leases(); len(ls) != 0 {
		t.Fatalf("leases after disconnect: %+v", ls)
	}
	diffState(t, "after disconnect", vfState(t, h.FS, m), want)
}

func TestVFRefused(t *testing.T) {
	t.Parallel()
	h, m := vfHost(t)
	h.Links.Refuse = map[string]error{"trust": syscall.EOPNOTSUPP}
	want := vfState(t, h.FS, m)
	state := filepath.Join(t.TempDir(), "state")
	sock, _ := start(t, server.Options{Sysfs: h.FS, SRIOV: m, StateDir: state})
	c := dial(t, sock)

	// Required and refused: the MAC applied before trust goes back too.
	_, err := c.AcquireDevice(vf0BDF, client.AcquireOptions{VF: &proto.VFConfig{
		MAC: "52:54:00:12:34:56", Trust: ptr(true), Required: []string{"trust"}}})
	var vfe *client.VFError
	if !errors.Is(err, proto.ErrRefused) || !errors.As(err, &vfe) {
		t.Fatalf("acquire with a refused required attribute: %v, want refused with results", err)
	}
	if len(vfe.Results) != 2 || !vfe.Results[0].OK || vfe.Results[1].Attr != "trust" || vfe.Results[1].OK ||
		vfe.Results[1].Errno != int(syscall.EOPNOTSUPP) {
		t.Errorf("results %+v", vfe.Results)
	}
	diffState(t, "after refused acquire", vfState(t, h.FS, m), want)
	if recs := records(t, state); len(recs) != 0 {
		t.Errorf("records after refused acquire: %v", recs)
	}
	if !strings.Contains(strings.Join(h.Links.Calls(), "\n"), "mac=00:00:00:00:00:00") {
		t.Errorf("the MAC was not put back: %v", h.Links.Calls())
	}

	// Not required: the lease goes ahead and says what was refused.
	a, err := c.AcquireDevice(vf0BDF, client.AcquireOptions{VF: &proto.VFConfig{
		MAC: "52:54:00:12:34:56", Trust: ptr(true), Required: []string{"mac"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.VF) != 2 || !a.VF[0].OK || a.VF[1].OK || !strings.Contains(a.VF[1].Error, "operation not supported") {
		t.Errorf("results %+v", a.VF)
	}
	if err := c.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
	diffState(t, "after release", vfState(t, h.FS, m), want)
}

func TestVFBadRequest(t *testing.T) {
	t.Parallel()
	h, m := vfHost(t)
	want := vfState(t, h.FS, m)
	writes := len(h.Kernel.Writes())
	state := filepath.Join(t.TempDir(), "state")
	sock, _ := start(t, server.Options{Sysfs: h.FS, SRIOV: m, StateDir: state})
	c := dial(t, sock)
	for _, tc := range []struct {
		name string
		bdf  string
		vf   proto.VFConfig
		code proto.Code
	}{
		{"multicast MAC", vf0BDF, proto.VFConfig{MAC: "01:00:5e:00:00:01"}, proto.CodeInvalid},
		{"malformed MAC", vf0BDF, proto.VFConfig{MAC: "52-54-00-12-34-56"}, proto.CodeInvalid},
		{"VLAN out of range", vf0BDF, proto.VFConfig{VLAN: ptr(4096)}, proto.CodeInvalid},
		{"bad state", vf0BDF, proto.VFConfig{State: "up"}, proto.CodeInvalid},
		{"empty config", vf0BDF, proto.VFConfig{}, proto.CodeInvalid},
		{"required not set", vf0BDF, proto.VFConfig{VLAN: ptr(5), Required: []string{"mac"}}, proto.CodeInvalid},
		{"not a VF", eduBDF, proto.VFConfig{VLAN: ptr(5)}, proto.CodeInvalid},
		{"the PF", pfBDF, proto.VFConfig{VLAN: ptr(5)}, proto.CodeInvalid},
	} {
		_, err := c.AcquireDevice(tc.bdf, client.AcquireOptions{VF: &tc.vf})
		if !errors.Is(err, &proto.Error{Code: tc.code}) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	diffState(t, "after bad requests", vfState(t, h.FS, m), want)
	if n := len(h.Kernel.Writes()); n != writes || len(h.Links.Calls()) != 0 || len(records(t, state)) != 0 {
		t.Errorf("bad requests wrote: %v, netlink %v, records %v", h.Kernel.Writes()[writes:], h.Links.Calls(), records(t, state))
	}

	// Without SR-IOV netlink the agent leases VFs but configures none.
	sock2, _ := start(t, server.Options{Sysfs: h.FS})
	c2 := dial(t, sock2)
	if _, err := c2.AcquireDevice(vf0BDF, client.AcquireOptions{VF: &proto.VFConfig{VLAN: ptr(5)}}); !errors.Is(err, &proto.Error{Code: proto.CodeUnsupported}) {
		t.Errorf("vf config without SRIOV: %v, want unsupported", err)
	}
}

func TestVFPolicy(t *testing.T) {
	t.Parallel()
	h, m := vfHost(t)
	want := vfState(t, h.FS, m)
	policy := &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, Devices: []string{vf1BDF}}}}
	sock, _ := start(t, server.Options{Sysfs: h.FS, SRIOV: m, Policy: policy})
	c := dial(t, sock)
	if _, err := c.AcquireDevice(vf0BDF, client.AcquireOptions{VF: &proto.VFConfig{VLAN: ptr(5)}}); !errors.Is(err, proto.ErrDenied) {
		t.Errorf("acquire of a VF the policy does not name: %v, want denied", err)
	}
	diffState(t, "after denied acquire", vfState(t, h.FS, m), want)
	a, err := c.AcquireDevice(vf1BDF, client.AcquireOptions{VF: &proto.VFConfig{VLAN: ptr(5)}})
	if err != nil {
		t.Fatalf("acquire of the VF the policy names: %v", err)
	}
	if err := c.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
	diffState(t, "after release", vfState(t, h.FS, m), want)
}

// killLinks refuses every netlink change once the kill switch has fired,
// as a dead agent sends none.
type killLinks struct {
	sriov.LinkOps
	k *killSwitch
}

// after makes the change set once the kill switch lets effect what through.
func (l killLinks) after(what string, set func() error) error {
	if err := l.k.effect(what); err != nil {
		return err
	}
	return set()
}

func (l killLinks) LinkSetVfHardwareAddr(link netlink.Link, vf int, hw net.HardwareAddr) error {
	return l.after("mac", func() error { return l.LinkOps.LinkSetVfHardwareAddr(link, vf, hw) })
}

func (l killLinks) LinkSetVfVlanQos(link netlink.Link, vf, vlan, qos int) error {
	return l.after("vlan", func() error { return l.LinkOps.LinkSetVfVlanQos(link, vf, vlan, qos) })
}

func (l killLinks) LinkSetVfSpoofchk(link netlink.Link, vf int, check bool) error {
	return l.after("spoofchk", func() error { return l.LinkOps.LinkSetVfSpoofchk(link, vf, check) })
}

func (l killLinks) LinkSetVfTrust(link netlink.Link, vf int, state bool) error {
	return l.after("trust", func() error { return l.LinkOps.LinkSetVfTrust(link, vf, state) })
}

func (l killLinks) LinkSetVfState(link netlink.Link, vf int, state uint32) error {
	return l.after("state", func() error { return l.LinkOps.LinkSetVfState(link, vf, state) })
}

func (l killLinks) LinkSetVfRate(link netlink.Link, vf, minRate, maxRate int) error {
	return l.after("rate", func() error { return l.LinkOps.LinkSetVfRate(link, vf, minRate, maxRate) })
}

// TestVFCrash kills the agent at every durable effect of a VF lease's
// acquire and release (state-dir writes, sysfs writes, netlink changes),
// among them right after the VF's config and before its bind, and checks
// that the next agent's reconcile puts the config and the driver back.
func TestVFCrash(t *testing.T) {
	t.Parallel()
	h, m := vfHost(t)
	want := vfState(t, h.FS, m)
	state := filepath.Join(t.TempDir(), "state")
	cfg := &proto.VFConfig{MAC: "52:54:00:12:34:56", VLAN: ptr(10), Trust: ptr(true), Required: []string{"mac", "vlan", "trust"}}
	var order []string // the effects of a cycle without a kill
	cycle := func(at int) (effects int, acquired bool) {
		k := &killSwitch{w: h.Kernel, at: at}
		fs, err := sysfs.New(h.Root, sysfs.WithWriter(k))
		if err != nil {
			t.Fatal(err)
		}
		km, err := sriov.New(sriov.Options{FS: fs, Writer: k, Links: killLinks{LinkOps: h.Links, k: k}})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(context.Background(), server.Options{Sysfs: fs, SRIOV: km, StateDir: state, Policy: me(), Effect: k.effect})
		if err != nil {
			t.Fatalf("kill at %d: start: %v", at, err)
		}
		k.mu.Lock()
		k.n = 0
		k.mu.Unlock()
		sock, stop := serve(t, srv)
		c := dial(t, sock)
		a, err := c.AcquireDevice(vf0BDF, client.AcquireOptions{VF: cfg})
		if err == nil {
			acquired = true
			if err := c.Release(a.Lease.ID); err != nil && !strings.Contains(err.Error(), errKilled.Error()) {
				t.Fatalf("kill at %d: release: %v", at, err)
			}
		} else if !strings.Contains(err.Error(), errKilled.Error()) {
			t.Fatalf("kill at %d: acquire: %v", at, err)
		}
		k.mu.Lock()
		k.killed = true
		effects = k.n
		if at == 0 {
			order = k.seen
		}
		k.mu.Unlock()
		c.Close()
		stop()
		return effects, acquired
	}
	full, ok := cycle(0)
	if !ok {
		t.Fatal("a cycle without a kill failed")
	}
	diffState(t, "after a cycle", vfState(t, h.FS, m), want)
	// The sweep below passes the moment between the VF's config and its
	// bind: the last netlink change of the acquire, then a sysfs write.
	var short []string
	for _, e := range order {
		short = append(short, strings.TrimPrefix(e, h.Root+"/"))
	}
	t.Logf("durable effects per VF acquire+release: %d: %v", full, short)
	i := slices.Index(order, "trust")
	if i < 0 || i+1 >= len(order) || !strings.HasPrefix(order[i+1], h.Root) {
		t.Fatalf("no kill point between the VF's config and its bind in %v", short)
	}
	for at := 1; at < full; at++ {
		cycle(at)
		// A fresh agent on the same state dir and host reconciles.
		srv, err := server.New(context.Background(), server.Options{Sysfs: h.FS, SRIOV: m, StateDir: state, Policy: me()})
		if err != nil {
			t.Fatalf("kill at effect %d of %d: reconcile: %v", at, full, err)
		}
		if ls := srv.Leases(); len(ls) != 0 {
			t.Fatalf("kill at %d: re-adopted %+v", at, ls)
		}
		if recs := records(t, state); len(recs) != 0 {
			t.Fatalf("kill at %d: records left %v", at, recs)
		}
		diffState(t, "kill at effect "+strconv.Itoa(at), vfState(t, h.FS, m), want)
		srv.Close() // never served: the next cycle's agent locks the state dir
	}
}

// TestVFReadopt: a VMM holds a VF's fds through an agent restart; the new
// agent re-adopts the lease with its saved config, and once the VMM lets
// go the orphan check restores the config and the driver.
func TestVFReadopt(t *testing.T) {
	t.Parallel()
	h, m := vfHost(t)
	dev := t.TempDir()
	iommuPath, devDir := filepath.Join(dev, "iommu"), filepath.Join(dev, "vfio")
	os.MkdirAll(devDir, 0o755)
	os.WriteFile(iommuPath, nil, 0o600)
	os.WriteFile(filepath.Join(devDir, "vfio0"), nil, 0o600)
	if err := os.MkdirAll(filepath.Join(h.Root, "bus", "pci", "devices", vf0BDF, "vfio-dev", "vfio0"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := vfState(t, h.FS, m)
	state := filepath.Join(t.TempDir(), "state")
	o := server.Options{Backend: server.BackendIOMMUFD, Sysfs: h.FS, SRIOV: m, StateDir: state, Policy: me(),
		IOMMUPath: iommuPath, DevDir: devDir}

	srv, err := server.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sock, stop := serve(t, srv)
	c := dial(t, sock)
	a, err := c.AcquireDevice(vf0BDF, client.AcquireOptions{Mode: proto.ModeFDs, VF: &proto.VFConfig{MAC: "52:54:00:12:34:56", VLAN: ptr(7)}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	leased := vfState(t, h.FS, m)
	if leased[vf0BDF+" config"] == want[vf0BDF+" config"] || leased[vf0BDF] != "vfio-pci/vfio-pci" {
		t.Fatalf("leased vf: %q on %q", leased[vf0BDF+" config"], leased[vf0BDF])
	}
	// The agent goes away; the VMM keeps the fds.
	c.Close()
	stop()

	srv2, err := server.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	if ls := srv2.Leases(); len(ls) != 1 || ls[0].ID != a.Lease.ID || !ls[0].Orphan {
		t.Fatalf("after restart: leases %+v, want %s re-adopted", ls, a.Lease.ID)
	}
	diffState(t, "re-adopted", vfState(t, h.FS, m), leased)
	srv2.ReleaseOrphans(context.Background())
	if len(srv2.Leases()) != 1 {
		t.Fatal("orphan released while its VMM holds the fds")
	}
	a.Close() // the VMM exits
	srv2.ReleaseOrphans(context.Background())
	if ls := srv2.Leases(); len(ls) != 0 {
		t.Fatalf("leases after the orphan check: %+v", ls)
	}
	diffState(t, "after the orphan check", vfState(t, h.FS, m), want)
	if recs := records(t, state); len(recs) != 0 {
		t.Errorf("records left: %v", recs)
	}
}
