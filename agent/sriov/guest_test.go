//go:build hwtests && linux

package sriov_test

// These run on a real kernel: the hwtests guest with an igb (82576, QEMU
// emulates its SR-IOV) behind a PCIe root port, so each VF gets an
// iommu_group of its own:
//
//	go run ./hwtests/vm/cmd/hwtests -devices igb -pkgs ./agent/sriov -ioctl-coverage off
//
// The host ends as it began: no VFs, the PF on igb, nothing on vfio-pci,
// the PF's link down.

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// hostState is what the test must leave as it found.
type hostState struct {
	NumVFs    int
	Autoprobe bool
	PFDriver  string
	OnVFIO    []string
	LinkUp    bool
}

func readHostState(t *testing.T, fs *sysfs.FS, pf sriov.PF) hostState {
	t.Helper()
	d, err := fs.Device(pf.Address)
	if err != nil {
		t.Fatal(err)
	}
	s := hostState{NumVFs: d.SRIOV.NumVFs, PFDriver: d.Driver}
	if d.SRIOV.DriversAutoprobe != nil {
		s.Autoprobe = *d.SRIOV.DriversAutoprobe
	}
	vfio, _ := os.ReadDir(fs.Path("bus", "pci", "drivers", sysfs.VFIOPCI))
	for _, e := range vfio {
		if _, err := sysfs.ParseAddress(e.Name()); err == nil {
			s.OnVFIO = append(s.OnVFIO, e.Name())
		}
	}
	if pf.Link != "" {
		b, err := os.ReadFile(fs.Path("class", "net", pf.Link, "flags"))
		if err != nil {
			t.Fatal(err)
		}
		flags, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
		if err != nil {
			t.Fatal(err)
		}
		s.LinkUp = flags&syscall.IFF_UP != 0
	}
	return s
}

// guestPF finds the igb PF and a Manager on the real host. A guest the
// harness booted without igb (HWTESTS_DEVICES) skips: the other boots of
// make guest run every package. Elsewhere the test changes the host's
// SR-IOV and bindings, so it wants -destructive.
func guestPF(t *testing.T) (*sysfs.FS, *sriov.Manager, *netlink.Handle, sriov.PF) {
	t.Helper()
	if devs, ok := os.LookupEnv("HWTESTS_DEVICES"); ok && !strings.Contains(","+devs, ",igb@") {
		t.Skipf("this guest has no igb (HWTESTS_DEVICES=%s); run with -devices igb", devs)
	}
	if f := flag.Lookup("destructive"); !hwtest.Strict() && (f == nil || f.Value.String() != "true") {
		t.Skip("enables VFs and rebinds one: run with -destructive")
	}
	fs, err := sysfs.Default()
	hwtest.Need(t, "sysfs", err)
	h, err := sriov.NewNetlink()
	hwtest.Need(t, "netlink", err)
	t.Cleanup(h.Close)
	m, err := sriov.New(sriov.Options{FS: fs, Links: h})
	if err != nil {
		t.Fatal(err)
	}
	pfs, err := m.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, pf := range pfs {
		if pf.Vendor == 0x8086 && pf.Device == 0x10c9 {
			if pf.Link == "" || pf.Driver != "igb" {
				t.Fatalf("igb PF %s: driver %q, netdev %q", pf.Address, pf.Driver, pf.Link)
			}
			return fs, m, h, pf
		}
	}
	hwtest.Need(t, "igb PF (QEMU -device igb behind a root port)", os.ErrNotExist)
	return nil, nil, nil, sriov.PF{}
}

func TestGuestSRIOV(t *testing.T) {
	fs, m, nl, pf := guestPF(t)
	begin := readHostState(t, fs, pf)
	t.Logf("PF %s %s netdev %s group %v: %d of %d VFs, host %+v", pf.Address, pf.Driver, pf.Link, *pf.Group, pf.NumVFs, pf.TotalVFs, begin)
	if begin.NumVFs != 0 {
		t.Fatalf("PF starts with %d VFs", begin.NumVFs)
	}
	var binding *sysfs.Binding
	t.Cleanup(func() {
		// Whatever failed, leave the guest as it began.
		if binding != nil {
			if err := fs.Release(binding); err != nil {
				t.Errorf("cleanup release: %v", err)
			}
		}
		if err := m.Disable(pf.Address.String(), sriov.DisableOptions{}); err != nil {
			t.Errorf("cleanup disable: %v", err)
		}
		if l, err := nl.LinkByName(pf.Link); err == nil && !begin.LinkUp {
			if err := nl.LinkSetDown(l); err != nil {
				t.Errorf("cleanup link down: %v", err)
			}
		}
		end := readHostState(t, fs, pf)
		if !slices.Equal(end.OnVFIO, begin.OnVFIO) || end.NumVFs != begin.NumVFs || end.PFDriver != begin.PFDriver ||
			end.Autoprobe != begin.Autoprobe || end.LinkUp != begin.LinkUp {
			t.Errorf("host ends as %+v, began as %+v", end, begin)
		} else {
			t.Logf("host ends as it began: %+v", end)
		}
	})

	// Bad requests change nothing.
	var other string
	devs, _ := fs.Devices()
	for _, d := range devs {
		if d.SRIOV == nil && d.PhysFn == nil {
			other = d.Address.String()
			break
		}
	}
	bad := []struct {
		what string
		err  error
		is   error
	}{
		{"enable above total", second(m.Enable(pf.Address.String(), pf.TotalVFs+1, sriov.EnableOptions{})), sriov.ErrInvalid},
		{"enable malformed", second(m.Enable("0000:01:00", 1, sriov.EnableOptions{})), sysfs.ErrAddress},
		{"enable " + other, second(m.Enable(other, 1, sriov.EnableOptions{})), sriov.ErrNotCapable},
		{"disable " + other, m.Disable(other, sriov.DisableOptions{}), sriov.ErrNotCapable},
	}
	for _, b := range bad {
		if !errors.Is(b.err, b.is) {
			t.Errorf("%s: %v, want %v", b.what, b.err, b.is)
		} else {
			t.Logf("%s: refused: %v", b.what, b.err)
		}
	}
	if s := readHostState(t, fs, pf); s.NumVFs != 0 {
		t.Fatalf("a refused request changed the PF: %+v", s)
	}

	t0 := time.Now()
	vfs, err := m.Enable(pf.Address.String(), 2, sriov.EnableOptions{})
	if err != nil {
		t.Fatalf("Enable 2: %v", err)
	}
	t.Logf("Enable 2 took %s", time.Since(t0).Round(time.Millisecond))
	groups := map[int]string{*pf.Group: "the PF"}
	for i, vf := range vfs {
		link, err := os.Readlink(fs.Path("bus", "pci", "devices", pf.Address.String(), "virtfn"+strconv.Itoa(i)))
		if err != nil || filepath.Base(link) != vf.Address.String() {
			t.Errorf("vf %d %s: virtfn%d link %q %v", i, vf.Address, i, link, err)
		}
		phys, err := os.Readlink(fs.Path("bus", "pci", "devices", vf.Address.String(), "physfn"))
		if err != nil || filepath.Base(phys) != pf.Address.String() {
			t.Errorf("vf %s: physfn %q %v", vf.Address, phys, err)
		}
		// No driver has probed a fresh VF: VT-d and AMD-Vi give it its
		// group at once, an SMMUv3 at the first probe (the Bind below).
		if atProbe := hwtest.GroupsAtProbe(t); (vf.Group == nil) != atProbe {
			t.Errorf("vf %s has iommu_group %v; groups at driver probe: %v", vf.Address, vf.Group, atProbe)
			continue
		} else if atProbe {
			t.Logf("vf %d: %s %04x:%04x no group yet, driver %q", vf.Index, vf.Address, vf.Vendor, vf.Device, vf.Driver)
			continue
		}
		if who, ok := groups[*vf.Group]; ok {
			t.Errorf("vf %s shares iommu_group %d with %s", vf.Address, *vf.Group, who)
		}
		groups[*vf.Group] = vf.Address.String()
		t.Logf("vf %d: %s %04x:%04x group %d driver %q", vf.Index, vf.Address, vf.Vendor, vf.Device, *vf.Group, vf.Driver)
	}
	if got := vfAddrs(vfs); !slices.Equal(got, []string{"0000:01:10.0", "0000:01:10.2"}) {
		t.Errorf("VFs %v, want 0000:01:10.0 and 0000:01:10.2 (igb: offset 0x80, stride 2)", got)
	}
	if len(vfs) != 2 {
		t.FailNow()
	}
	// The kernel's own refusals, which sriovtest.Kernel models: another
	// non-zero count is EBUSY, above sriov_totalvfs ERANGE.
	numvfs := fs.Path("bus", "pci", "devices", pf.Address.String(), "sriov_numvfs")
	for _, w := range []struct {
		value string
		errno syscall.Errno
	}{{"3", syscall.EBUSY}, {strconv.Itoa(pf.TotalVFs + 1), syscall.ERANGE}} {
		if err := os.WriteFile(numvfs, []byte(w.value), 0); !errors.Is(err, w.errno) {
			t.Errorf("write %s to sriov_numvfs with 2 VFs: %v, want %v", w.value, err, w.errno)
		}
	}
	if s := readHostState(t, fs, pf); s.NumVFs != 2 {
		t.Fatalf("refused writes changed the count: %+v", s)
	}
	vf := vfs[0].Address.String()

	// Bad settings are refused before netlink and change nothing.
	_, c0, err := m.Config(vf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vf %s fresh: %+v", vf, c0)
	for _, mac := range []sriov.MAC{{0x01, 0, 0x5e, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {}} {
		if _, err := m.Set(vf, sriov.Settings{MAC: &mac}); !errors.Is(err, sriov.ErrInvalid) {
			t.Errorf("Set mac %s: %v", mac, err)
		}
	}
	if _, c, _ := m.Config(vf); c != c0 {
		t.Errorf("refused settings changed the VF: %+v -> %+v", c0, c)
	}

	snap, err := m.Save(vf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sriov.ParseSettings([]string{"mac=52:54:00:aa:bb:01", "vlan=100", "qos=3", "trust=on", "spoofchk=off"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Set(vf, s)
	logReport(t, r)
	if err != nil {
		t.Errorf("Set mac/vlan/qos/trust/spoofchk: %v", err)
	}
	want := sriov.Config{MAC: *s.MAC, VLAN: 100, QoS: 3, Trust: true, SpoofChk: false, State: c0.State, MinRate: c0.MinRate, MaxRate: c0.MaxRate}
	if _, c, err := m.Config(vf); err != nil || c != want {
		t.Errorf("read back %+v, %v; want %+v", c, err, want)
	}

	// What igb refuses, each with its errno.
	refusals := []struct {
		words []string
		errno syscall.Errno
	}{
		{[]string{"state=enable"}, syscall.EOPNOTSUPP}, // igb has no ndo_set_vf_link_state
		{[]string{"max_rate=100"}, syscall.EINVAL},     // no carrier: link speed unknown
	}
	for _, rf := range refusals {
		s, err := sriov.ParseSettings(rf.words)
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.Set(vf, s)
		logReport(t, r)
		if !errors.Is(err, rf.errno) || r == nil || len(r.Results) != 1 || !errors.Is(r.Results[0].Err, rf.errno) {
			t.Errorf("Set %v: %v, want %v per attribute", rf.words, err, rf.errno)
		}
	}

	// With carrier, igb takes a max rate but no min rate.
	l, err := nl.LinkByName(pf.Link)
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	if !waitCarrier(fs, pf.Link) {
		t.Fatalf("%s has no carrier after link up", pf.Link)
	}
	s, _ = sriov.ParseSettings([]string{"max_rate=100"})
	r, err = m.Set(vf, s)
	logReport(t, r)
	if err != nil {
		t.Errorf("Set max_rate=100 with carrier: %v", err)
	}
	s, _ = sriov.ParseSettings([]string{"min_rate=10"})
	r, err = m.Set(vf, s)
	logReport(t, r)
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Set min_rate=10: %v, want EINVAL (igb has no minimum rate)", err)
	}

	// Restore, while the link is up: putting max_rate back to 0 needs it.
	r, err = m.Restore(snap)
	logReport(t, r)
	if err != nil {
		t.Errorf("Restore: %v", err)
	}
	if _, c, err := m.Config(vf); err != nil || c != snap.Config {
		t.Errorf("after Restore %+v, %v; saved %+v", c, err, snap.Config)
	}
	if err := nl.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}

	// Hand the VF to vfio-pci, as a lease would; disable refuses meanwhile.
	onVFIO := func(vf sriov.VF) bool { return vf.Driver == sysfs.VFIOPCI }
	binding, err = fs.Bind(vf)
	if hwtest.GroupsAtProbe(t) {
		// Where groups appear at driver probe the probe puts the VF into
		// the PF's iommu_group: Debian's 6.12 arm64 SMMUv3 (device tree)
		// requests ACS only at the first of_dma_configure, after the bus
		// was enumerated, so the root port's ACS stays off. With the PF
		// on igb that group is not viable: Bind refuses and puts the VF
		// back. The own 7.3 kernel groups each VF apart at once.
		if !errors.Is(err, sysfs.ErrNotViable) || !strings.Contains(err.Error(), pf.Address.String()+" bound to igb") {
			t.Fatalf("Bind %s on %s: %v; want not viable, the PF on igb in its group", vf, hwtest.Lane(), err)
		}
		got, err := m.VF(vf)
		if err != nil || got.Driver != "" || got.Group == nil || pf.Group == nil || *got.Group != *pf.Group {
			t.Errorf("VF after the refused Bind: %+v %v; want no driver, in the PF's group %v", got, err, pf.Group)
		}
		t.Logf("lane %s: Bind %s refused: %v", hwtest.Lane(), vf, err)
	} else {
		boundVF(t, fs, m, pf, vf, binding, err, onVFIO)
		binding = nil
	}

	// A count change goes through 0, as the kernel wants.
	vfs, err = m.Enable(pf.Address.String(), 3, sriov.EnableOptions{})
	if err != nil || len(vfs) != 3 {
		t.Errorf("Enable 3 over 2: %v %v", vfAddrs(vfs), err)
	}
	t0 = time.Now()
	if err := m.Disable(pf.Address.String(), sriov.DisableOptions{InUse: onVFIO}); err != nil {
		t.Fatalf("Disable: %v", err)
	}
	t.Logf("Disable took %s", time.Since(t0).Round(time.Millisecond))
	after, err := m.PF(pf.Address.String())
	if err != nil || after.NumVFs != 0 || len(after.VFs) != 0 {
		t.Errorf("after Disable: %+v %v", after, err)
	}
	if _, err := fs.Device(vfs[0].Address); !errors.Is(err, sysfs.ErrNoDevice) {
		t.Errorf("vf %s after Disable: %v", vfs[0].Address, err)
	}
}

// boundVF checks a VF on vfio-pci (binding, err from Bind): disable and a
// count change refuse while it is, and Release gives it back.
func boundVF(t *testing.T, fs *sysfs.FS, m *sriov.Manager, pf sriov.PF, vf string, binding *sysfs.Binding, err error, onVFIO func(sriov.VF) bool) {
	t.Helper()
	if err != nil {
		t.Fatalf("Bind %s: %v", vf, err)
	}
	got, err := m.VF(vf)
	if err != nil || got.Driver != sysfs.VFIOPCI || got.Group == nil {
		t.Fatalf("VF after Bind: %+v %v; want it on vfio-pci, in a group", got, err)
	}
	if _, err := os.Stat("/dev/vfio/" + strconv.Itoa(*got.Group)); err != nil {
		t.Errorf("vf %s on vfio-pci: %v", vf, err)
	}
	if err := m.Disable(pf.Address.String(), sriov.DisableOptions{InUse: onVFIO}); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("Disable with a VF on vfio-pci: %v", err)
	} else {
		t.Logf("Disable while bound: refused: %v", err)
	}
	if _, err := m.Enable(pf.Address.String(), 3, sriov.EnableOptions{InUse: onVFIO}); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("Enable 3 with a VF on vfio-pci: %v", err)
	}
	if s := readHostState(t, fs, pf); s.NumVFs != 2 {
		t.Errorf("refused Disable changed the count: %+v", s)
	}
	if err := fs.Release(binding); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got, err := m.VF(vf); err != nil || got.Driver != "" {
		t.Errorf("VF after Release: %+v %v", got, err)
	}

}

func second[T any](_ T, err error) error { return err }

func vfAddrs(vfs []sriov.VF) []string {
	var s []string
	for _, v := range vfs {
		s = append(s, v.Address.String())
	}
	return s
}

func waitCarrier(fs *sysfs.FS, link string) bool {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(fs.Path("class", "net", link, "carrier")); err == nil && strings.TrimSpace(string(b)) == "1" {
			return true
		}
	}
	return false
}

func logReport(t *testing.T, r *sriov.Report) {
	t.Helper()
	if r == nil {
		t.Log("no report (nothing asked)")
		return
	}
	for _, res := range r.Results {
		verdict := "accepted"
		if res.Err != nil {
			verdict = "refused: " + res.Err.Error()
			var errno syscall.Errno
			if errors.As(res.Err, &errno) {
				verdict += " [errno " + strconv.Itoa(int(errno)) + "]"
			}
		}
		t.Logf("vf %s %s=%s: reads %s, %s", r.VF.Address, res.Attr, res.Want, res.Got, verdict)
	}
}
