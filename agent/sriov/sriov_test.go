//go:build !hwtests

// Fixture tests: the guest has no testdata; guest_test.go runs there.

package sriov_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/agent/sriov/sriovtest"
	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

const (
	pfBDF  = "0000:01:00.0" // igb in the fixtures
	vf0BDF = "0000:01:10.0"
	vf1BDF = "0000:01:10.2"
	eduBDF = "0000:00:01.0" // no SR-IOV
)

func newHost(t *testing.T, fixture string) (*sriovtest.Host, *sriov.Manager) {
	t.Helper()
	h := sriovtest.NewHost(t, "testdata/"+fixture)
	m, err := sriov.New(sriov.Options{FS: h.FS, Writer: h.Kernel, Links: h.Links})
	if err != nil {
		t.Fatal(err)
	}
	return h, m
}

// tree captures the fake host's files, to prove a refusal changed nothing.
func tree(t *testing.T, h *sriovtest.Host) string {
	t.Helper()
	a, err := sysfstest.Snapshot(h.Root, "", "")
	if err != nil {
		t.Fatal(err)
	}
	numvfs, err := os.ReadFile(h.FS.Path("bus", "pci", "devices", pfBDF, "sriov_numvfs"))
	if err != nil {
		t.Fatal(err)
	}
	return string(txtar.Format(a)) + "numvfs " + string(numvfs)
}

func addrs(vfs []sriov.VF) []string {
	var s []string
	for _, v := range vfs {
		s = append(s, v.Address.String())
	}
	return s
}

func TestListNoVFs(t *testing.T) {
	t.Parallel()
	_, m := newHost(t, "igb.txtar")
	pfs, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(pfs) != 1 {
		t.Fatalf("List: %d PFs, want the igb: %+v", len(pfs), pfs)
	}
	pf := pfs[0]
	if pf.Address.String() != pfBDF || pf.Driver != "igb" || pf.Link != "eth0" || pf.TotalVFs != 7 || pf.NumVFs != 0 ||
		len(pf.VFs) != 0 || pf.Group == nil || *pf.Group != 4 || pf.DriversAutoprobe == nil || !*pf.DriversAutoprobe {
		t.Errorf("List: %+v", pf)
	}
}

func TestListVFs(t *testing.T) {
	t.Parallel()
	_, m := newHost(t, "igb-2vfs.txtar")
	pfs, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(pfs) != 1 || len(pfs[0].VFs) != 2 {
		t.Fatalf("List: %+v", pfs)
	}
	for i, vf := range pfs[0].VFs {
		want := []string{vf0BDF, vf1BDF}[i]
		if vf.Address.String() != want || vf.Index != i || vf.PF.String() != pfBDF || vf.Group == nil || *vf.Group != 5+i || vf.Config == nil {
			t.Errorf("vf %d: %+v", i, vf)
			continue
		}
		if !vf.Config.MAC.IsZero() || !vf.Config.SpoofChk || vf.Config.Trust {
			t.Errorf("vf %d config %+v, want igb's fresh VF", i, *vf.Config)
		}
	}
	// Without netlink the topology is still there, without configs.
	fs, err := sysfs.New(sysfstest.Build(t, "testdata/igb-2vfs.txtar") + "/sys")
	if err != nil {
		t.Fatal(err)
	}
	bare, err := sriov.New(sriov.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	pfs, err = bare.List()
	if err != nil || len(pfs) != 1 || len(pfs[0].VFs) != 2 || pfs[0].VFs[0].Config != nil {
		t.Errorf("List without netlink: %+v %v", pfs, err)
	}
}

func TestEnableDisable(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb.txtar")
	before := tree(t, h)
	vfs, err := m.Enable(pfBDF, 2, sriov.EnableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := addrs(vfs); !slices.Equal(got, []string{vf0BDF, vf1BDF}) {
		t.Fatalf("Enable 2: VFs %v", got)
	}
	groups := map[int]bool{4: true} // the PF's
	for _, vf := range vfs {
		if vf.Group == nil || groups[*vf.Group] {
			t.Errorf("vf %s: group %v, want one of its own", vf.Address, vf.Group)
			continue
		}
		groups[*vf.Group] = true
		d, err := h.FS.Device(vf.Address)
		if err != nil || d.PhysFn == nil || d.PhysFn.String() != pfBDF || d.Device != 0x10ca {
			t.Errorf("vf %s: %+v, %v", vf.Address, d, err)
		}
	}
	// The same count again writes nothing.
	if _, err := m.Enable(pfBDF, 2, sriov.EnableOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(pfBDF, sriov.DisableOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(pfBDF, sriov.DisableOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bus/pci/devices/0000:01:00.0/sriov_numvfs=2",
		"bus/pci/devices/0000:01:00.0/sriov_numvfs=0",
	}
	if got := h.Kernel.Writes(); !slices.Equal(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}
	if after := tree(t, h); after != before {
		t.Errorf("enable then disable left the tree changed:\n%s", after)
	}
}

func TestEnableChangesCountThroughZero(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb-2vfs.txtar")
	vfs, err := m.Enable(pfBDF, 3, sriov.EnableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vfs) != 3 || vfs[2].Address.String() != "0000:01:10.4" {
		t.Errorf("VFs %v", addrs(vfs))
	}
	want := []string{
		"bus/pci/devices/0000:01:00.0/sriov_numvfs=0",
		"bus/pci/devices/0000:01:00.0/sriov_numvfs=3",
	}
	if got := h.Kernel.Writes(); !slices.Equal(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}
}

func TestEnableRollsBack(t *testing.T) {
	t.Parallel()
	// Two VFs made by the fake kernel, so the tree compares whole (the
	// fixture's VFs have BARs the fake does not model).
	h, m := newHost(t, "igb.txtar")
	if _, err := m.Enable(pfBDF, 2, sriov.EnableOptions{}); err != nil {
		t.Fatal(err)
	}
	h.Kernel.FailNumVFs = map[int]error{5: syscall.ENOMEM}
	no := false
	before := tree(t, h)
	_, err := m.Enable(pfBDF, 5, sriov.EnableOptions{Autoprobe: &no})
	if !errors.Is(err, syscall.ENOMEM) || !strings.Contains(err.Error(), "put back") {
		t.Fatalf("Enable with a failing write: %v", err)
	}
	want := []string{
		"bus/pci/devices/0000:01:00.0/sriov_numvfs=2",
		"bus/pci/devices/0000:01:00.0/sriov_drivers_autoprobe=0",
		"bus/pci/devices/0000:01:00.0/sriov_numvfs=0",
		"bus/pci/devices/0000:01:00.0/sriov_numvfs=5",
		"bus/pci/devices/0000:01:00.0/sriov_numvfs=2",
		"bus/pci/devices/0000:01:00.0/sriov_drivers_autoprobe=1",
	}
	if got := h.Kernel.Writes(); !slices.Equal(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}
	if after := tree(t, h); after != before {
		t.Errorf("rollback left the tree changed:\n%s", diffLines(before, after))
	}
}

func TestEnableAutoprobe(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb.txtar")
	no := false
	if _, err := m.Enable(pfBDF, 1, sriov.EnableOptions{Autoprobe: &no}); err != nil {
		t.Fatal(err)
	}
	pf, err := m.PF(pfBDF)
	if err != nil {
		t.Fatal(err)
	}
	if pf.DriversAutoprobe == nil || *pf.DriversAutoprobe || pf.NumVFs != 1 {
		t.Errorf("PF after enable with autoprobe off: %+v", pf)
	}
	if got := h.Kernel.Writes(); len(got) != 2 || !strings.HasSuffix(got[0], "sriov_drivers_autoprobe=0") {
		t.Errorf("writes %q: autoprobe must come before the VFs", got)
	}
}

func TestInUseRefuses(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb-2vfs.txtar")
	before := tree(t, h)
	leased := func(vf sriov.VF) bool { return vf.Address.String() == vf1BDF }
	err := m.Disable(pfBDF, sriov.DisableOptions{InUse: leased})
	if !errors.Is(err, sriov.ErrInUse) || !strings.Contains(err.Error(), vf1BDF) {
		t.Errorf("Disable with a leased VF: %v", err)
	}
	if _, err := m.Enable(pfBDF, 4, sriov.EnableOptions{InUse: leased}); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("Enable 4 with a leased VF: %v", err)
	}
	if w := h.Kernel.Writes(); len(w) != 0 || tree(t, h) != before {
		t.Errorf("refusals wrote %q", w)
	}
}

// TestBadRequestsChangeNothing: each is refused with a clear error before
// any write or netlink request.
func TestBadRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	mac := func(s string) *sriov.MAC { m, _ := sriov.ParseMAC(s); return &m }
	vlan := 10
	cases := []struct {
		name string
		do   func(m *sriov.Manager) error
		is   error
		says string
	}{
		{"enable malformed", func(m *sriov.Manager) error { _, err := m.Enable("01:00.x", 1, sriov.EnableOptions{}); return err }, sysfs.ErrAddress, "malformed"},
		{"enable above total", func(m *sriov.Manager) error { _, err := m.Enable(pfBDF, 8, sriov.EnableOptions{}); return err }, sriov.ErrInvalid, "only 7"},
		{"enable zero", func(m *sriov.Manager) error { _, err := m.Enable(pfBDF, 0, sriov.EnableOptions{}); return err }, sriov.ErrInvalid, "disable"},
		{"enable negative", func(m *sriov.Manager) error { _, err := m.Enable(pfBDF, -1, sriov.EnableOptions{}); return err }, sriov.ErrInvalid, "1 to 7"},
		{"enable not SR-IOV", func(m *sriov.Manager) error { _, err := m.Enable(eduBDF, 1, sriov.EnableOptions{}); return err }, sriov.ErrNotCapable, "sriov_totalvfs"},
		{"enable absent", func(m *sriov.Manager) error { _, err := m.Enable("0000:09:00.0", 1, sriov.EnableOptions{}); return err }, sysfs.ErrNoDevice, "0000:09:00.0"},
		{"enable a VF", func(m *sriov.Manager) error { _, err := m.Enable(vf0BDF, 1, sriov.EnableOptions{}); return err }, sriov.ErrNotCapable, vf0BDF},
		{"disable not SR-IOV", func(m *sriov.Manager) error { return m.Disable(eduBDF, sriov.DisableOptions{}) }, sriov.ErrNotCapable, eduBDF},
		{"disable malformed", func(m *sriov.Manager) error { return m.Disable("pf", sriov.DisableOptions{}) }, sriov.ErrInvalid, "pf"},
		{"set malformed", func(m *sriov.Manager) error { _, err := m.Set("0000:01:10", sriov.Settings{VLAN: &vlan}); return err }, sysfs.ErrAddress, "0000:01:10"},
		{"set a PF", func(m *sriov.Manager) error { _, err := m.Set(pfBDF, sriov.Settings{VLAN: &vlan}); return err }, sriov.ErrNotVF, "physfn"},
		{"set multicast mac", func(m *sriov.Manager) error {
			_, err := m.Set(vf0BDF, sriov.Settings{MAC: mac("01:00:5e:00:00:01")})
			return err
		}, sriov.ErrInvalid, "not unicast"},
		{"set broadcast mac", func(m *sriov.Manager) error {
			_, err := m.Set(vf0BDF, sriov.Settings{MAC: mac("ff:ff:ff:ff:ff:ff")})
			return err
		}, sriov.ErrInvalid, "not unicast"},
		{"set zero mac", func(m *sriov.Manager) error {
			_, err := m.Set(vf0BDF, sriov.Settings{MAC: mac("00:00:00:00:00:00")})
			return err
		}, sriov.ErrInvalid, "zero"},
		{"set nothing", func(m *sriov.Manager) error { _, err := m.Set(vf0BDF, sriov.Settings{}); return err }, sriov.ErrInvalid, "nothing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h, m := newHost(t, "igb-2vfs.txtar")
			before := tree(t, h)
			err := c.do(m)
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("err %v, want %v saying %q", err, c.is, c.says)
			}
			if w, calls := h.Kernel.Writes(), h.Links.Calls(); len(w)+len(calls) != 0 {
				t.Errorf("refused request wrote %q, sent %q", w, calls)
			}
			if tree(t, h) != before {
				t.Error("refused request changed the tree")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSetAll(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb-2vfs.txtar")
	s, err := sriov.ParseSettings([]string{"mac=52:54:00:ab:cd:01", "vlan=10", "qos=3", "trust=on", "spoofchk=off", "state=enable", "min_rate=10", "max_rate=100"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Set(vf1BDF, s)
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	want := sriov.Config{MAC: *s.MAC, VLAN: 10, QoS: 3, Trust: true, SpoofChk: false, State: sriov.LinkEnable, MinRate: 10, MaxRate: 100}
	if r.After != want || r.VF.Index != 1 || r.Link != "eth0" || len(r.Results) != 8 {
		t.Errorf("report %+v", r)
	}
	calls := []string{
		"eth0 vf 1 mac=52:54:00:ab:cd:01", "eth0 vf 1 vlan=10,qos=3", "eth0 vf 1 spoofchk=false",
		"eth0 vf 1 trust=true", "eth0 vf 1 state=1", "eth0 vf 1 rate=10-100",
	}
	if got := h.Links.Calls(); !slices.Equal(got, calls) {
		t.Errorf("calls %q, want %q", got, calls)
	}
	_, c, err := m.Config(vf0BDF)
	if err != nil || c != (sriov.Config{SpoofChk: true}) {
		t.Errorf("vf 0 changed too: %+v %v", c, err)
	}
}

// TestSetReportsRefusals is igb under QEMU: no link state, no rate without
// carrier, and a driver that drops trust silently.
func TestSetReportsRefusals(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb-2vfs.txtar")
	h.Links.Refuse = map[string]error{"state": syscall.EOPNOTSUPP, "rate": syscall.EINVAL}
	h.Links.Ignore = map[string]bool{"trust": true}
	r, err := m.Set(vf0BDF, sriov.Settings{
		MAC: ptr(sriov.MAC{0x52, 0x54, 0, 1, 2, 3}), VLAN: ptr(7), Trust: ptr(true),
		State: ptr(sriov.LinkDisable), MaxRate: ptr(100),
	})
	if err == nil || r == nil {
		t.Fatalf("Set with refusals: %v, report %v", err, r)
	}
	got := map[sriov.Attr]error{}
	for _, res := range r.Results {
		got[res.Attr] = res.Err
	}
	if got[sriov.AttrMAC] != nil || got[sriov.AttrVLAN] != nil {
		t.Errorf("accepted attributes reported refused: %v", got)
	}
	if !errors.Is(got[sriov.AttrState], syscall.EOPNOTSUPP) || !errors.Is(got[sriov.AttrMaxRate], syscall.EINVAL) {
		t.Errorf("refusals lost their errno: %v", got)
	}
	if !errors.Is(got[sriov.AttrTrust], sriov.ErrNotApplied) {
		t.Errorf("silently dropped trust: %v", got[sriov.AttrTrust])
	}
	if !errors.Is(err, syscall.EOPNOTSUPP) || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Set's error does not carry every errno: %v", err)
	}
	if r.After.VLAN != 7 || r.After.QoS != 0 || r.After.MAC != (sriov.MAC{0x52, 0x54, 0, 1, 2, 3}) {
		t.Errorf("after %+v", r.After)
	}
}

func TestSetVLANKeepsQoS(t *testing.T) {
	t.Parallel()
	_, m := newHost(t, "igb-2vfs.txtar")
	if _, err := m.Set(vf0BDF, sriov.Settings{VLAN: ptr(10), QoS: ptr(5)}); err != nil {
		t.Fatal(err)
	}
	r, err := m.Set(vf0BDF, sriov.Settings{VLAN: ptr(20)})
	if err != nil || r.After.VLAN != 20 || r.After.QoS != 5 {
		t.Errorf("vlan alone: %+v %v", r, err)
	}
	r, err = m.Set(vf0BDF, sriov.Settings{MaxRate: ptr(300)})
	if err != nil || r.After.MaxRate != 300 || r.After.MinRate != 0 {
		t.Errorf("max_rate alone: %+v %v", r, err)
	}
}

func TestSaveRestore(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb-2vfs.txtar")
	// As igb: link state is refused, so Restore must not ask for it when it
	// did not change.
	h.Links.Refuse = map[string]error{"state": syscall.EOPNOTSUPP}
	snap, err := m.Save(vf0BDF)
	if err != nil {
		t.Fatal(err)
	}
	if snap.VF != vf0BDF || !snap.Config.MAC.IsZero() {
		t.Fatalf("snapshot %+v", snap)
	}
	if r, err := m.Restore(snap); r != nil || err != nil {
		t.Errorf("Restore of an unchanged VF: %+v %v", r, err)
	}
	s, _ := sriov.ParseSettings([]string{"mac=02:00:00:00:00:01", "vlan=100", "qos=1", "trust=on", "spoofchk=off", "max_rate=50"})
	if _, err := m.Set(vf0BDF, s); err != nil {
		t.Fatal(err)
	}
	n := len(h.Links.Calls())
	r, err := m.Restore(snap)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if r.After != snap.Config {
		t.Errorf("restored %+v, saved %+v", r.After, snap.Config)
	}
	for _, c := range h.Links.Calls()[n:] {
		if strings.Contains(c, "state=") {
			t.Errorf("Restore asked for an unchanged link state: %s", c)
		}
	}
}

func TestBindVF(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb.txtar")
	vfs, err := m.Enable(pfBDF, 2, sriov.EnableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.FS.Bind(vfs[0].Address.String())
	if err != nil {
		t.Fatal(err)
	}
	vf, err := m.VF(vf0BDF)
	if err != nil || vf.Driver != sysfs.VFIOPCI || vf.Index != 0 {
		t.Fatalf("VF after bind: %+v %v", vf, err)
	}
	onVFIO := func(vf sriov.VF) bool { return vf.Driver == sysfs.VFIOPCI }
	if err := m.Disable(pfBDF, sriov.DisableOptions{InUse: onVFIO}); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("Disable with a VF on vfio-pci: %v", err)
	}
	if err := h.FS.Release(b); err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(pfBDF, sriov.DisableOptions{InUse: onVFIO}); err != nil {
		t.Errorf("Disable after release: %v", err)
	}
}

// diffLines lists the lines only one of a and b has.
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

func TestSetNeedsLinkAndVF(t *testing.T) {
	t.Parallel()
	h, m := newHost(t, "igb-2vfs.txtar")
	snap, err := m.Save(vf1BDF)
	if err != nil {
		t.Fatal(err)
	}
	// The PF's driver gone: no netdev to speak through.
	if err := os.RemoveAll(h.FS.Path("bus", "pci", "devices", pfBDF, "net")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Set(vf0BDF, sriov.Settings{VLAN: ptr(1)}); !errors.Is(err, sriov.ErrNoLink) {
		t.Errorf("Set without the PF's netdev: %v", err)
	}
	// The VF gone: Restore says so.
	h2, m2 := newHost(t, "igb.txtar")
	if _, err := m2.Enable(pfBDF, 1, sriov.EnableOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Restore(snap); !errors.Is(err, sysfs.ErrNoDevice) {
		t.Errorf("Restore of a VF that is gone: %v", err)
	}
	if calls := append(h.Links.Calls(), h2.Links.Calls()...); len(calls) != 0 {
		t.Errorf("sent %q", calls)
	}
}
