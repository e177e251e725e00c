//go:build hwtests && linux

package server_test

// TestGuestSRIOVLease leases an SR-IOV VF through the agent on a real
// kernel: the hwtests guest with QEMU's igb behind a PCIe root port, so
// each VF has an iommu_group of its own:
//
//	go run ./hwtests/vm/cmd/hwtests -devices igb -pkgs ./agent/server -run 'SRIOV|VF' -ioctl-coverage off
//
// The host ends as it began: no VFs, nothing on vfio-pci.

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// needDevice skips a test whose device the harness did not boot this guest
// with (HWTESTS_DEVICES lists kind@vendor:device...): each boot of make
// guest runs every package, and a test belongs to the boots of its device.
func needDevice(t *testing.T, kind string) {
	t.Helper()
	if devs, ok := os.LookupEnv("HWTESTS_DEVICES"); ok && !strings.Contains(","+devs, ","+kind+"@") {
		t.Skipf("this guest has no %s (HWTESTS_DEVICES=%s)", kind, devs)
	}
}

func ptr[T any](v T) *T { return &v }

func onVFIO(t *testing.T, fs *sysfs.FS) []string {
	t.Helper()
	ents, _ := os.ReadDir(fs.Path("bus", "pci", "drivers", sysfs.VFIOPCI))
	var out []string
	for _, e := range ents {
		if _, err := sysfs.ParseAddress(e.Name()); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

func driverAt(t *testing.T, fs *sysfs.FS, bdf string) string {
	t.Helper()
	a, err := sysfs.ParseAddress(bdf)
	if err != nil {
		t.Fatal(err)
	}
	d, err := fs.Device(a)
	if err != nil {
		t.Fatal(err)
	}
	return d.Driver + "/" + d.DriverOverride
}

// groupAt is bdf's iommu_group, nil for none.
func groupAt(t *testing.T, fs *sysfs.FS, bdf string) *int {
	t.Helper()
	a, err := sysfs.ParseAddress(bdf)
	if err != nil {
		t.Fatal(err)
	}
	d, err := fs.Device(a)
	if err != nil {
		t.Fatal(err)
	}
	return d.IOMMUGroup
}

// vfSharesPF checks what the arm64-smmuv3 lane does to a VF at its first
// probe: it puts it into the PF's iommu_group. On VT-d and AMD-Vi the
// pcie-root-port's ACS gives each VF a group of its own; on Debian's 6.12
// arm64 with a device tree the SMMUv3 requests ACS (pci_request_acs) only
// at the first of_dma_configure, after the bus was enumerated, so the root
// port's ACS stays off and the PF's group takes the VFs.
func vfSharesPF(t *testing.T, fs *sysfs.FS, vf, pf string) {
	t.Helper()
	g, pg := groupAt(t, fs, vf), groupAt(t, fs, pf)
	if g == nil || pg == nil || *g != *pg {
		t.Errorf("vf %s in group %v, PF %s in %v: want the PF's group", vf, g, pf, pg)
	}
}

func TestGuestSRIOVLease(t *testing.T) {
	needDevice(t, "igb")
	if f := flag.Lookup("destructive"); !hwtest.Strict() && (f == nil || f.Value.String() != "true") {
		t.Skip("enables VFs and leases one: runs in the hwtests guest")
	}
	fs, err := sysfs.Default()
	hwtest.Need(t, "sysfs", err)
	nl, err := sriov.NewNetlink()
	hwtest.Need(t, "netlink", err)
	t.Cleanup(nl.Close)
	m, err := sriov.New(sriov.Options{FS: fs, Links: nl})
	if err != nil {
		t.Fatal(err)
	}
	pfs, err := m.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	i := slices.IndexFunc(pfs, func(p sriov.PF) bool { return p.Vendor == 0x8086 && p.Device == 0x10c9 })
	if i < 0 {
		hwtest.Need(t, "igb PF (QEMU -device igb behind a root port)", os.ErrNotExist)
	}
	pf := pfs[i]
	pfBDF := pf.Address.String()
	beginVFIO := onVFIO(t, fs)
	if pf.NumVFs != 0 {
		t.Fatalf("PF %s starts with %d VFs", pfBDF, pf.NumVFs)
	}
	t.Cleanup(func() {
		if err := m.Disable(pfBDF, sriov.DisableOptions{}); err != nil {
			t.Errorf("cleanup disable: %v", err)
		}
		p, err := m.PF(pfBDF)
		if err != nil || p.NumVFs != 0 || p.Driver != pf.Driver || !slices.Equal(onVFIO(t, fs), beginVFIO) {
			t.Errorf("host ends with %+v (%v), on vfio-pci %v; began with %d VFs, PF on %s, on vfio-pci %v",
				p, err, onVFIO(t, fs), pf.NumVFs, pf.Driver, beginVFIO)
		} else {
			t.Logf("host ends as it began: %s on %s, no VFs, on vfio-pci %v", pfBDF, p.Driver, beginVFIO)
		}
	})

	vfs, err := m.Enable(pfBDF, 2, sriov.EnableOptions{})
	if err != nil {
		t.Fatalf("Enable 2: %v", err)
	}
	// Fresh VFs no driver has probed: each in an iommu_group of its own
	// on VT-d and AMD-Vi; none yet on an SMMUv3, where the acquire's probe
	// creates the leased VF's.
	atProbe := hwtest.GroupsAtProbe(t)
	if len(vfs) != 2 || (vfs[0].Group == nil) != atProbe || (vfs[1].Group == nil) != atProbe ||
		!atProbe && *vfs[0].Group == *vfs[1].Group {
		t.Fatalf("VFs %+v: want two, each in an iommu_group of its own; groups at driver probe: %v", vfs, atProbe)
	}
	vf := vfs[0].Address.String()
	_, fresh, err := m.Config(vf)
	if err != nil {
		t.Fatal(err)
	}
	freshDriver := driverAt(t, fs, vf)
	t.Logf("vf %s group %v driver %q, fresh config %+v", vf, groupAt(t, fs, vf), freshDriver, fresh)

	// The agent, as serve runs it, on a private state dir and socket.
	state := filepath.Join(t.TempDir(), "state")
	srv, err := server.New(context.Background(), server.Options{Backend: server.BackendIOMMUFD, Sysfs: fs, SRIOV: m,
		StateDir: state, Policy: server.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	sock, _ := serve(t, srv) // stopped before the disable above
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if atProbe {
		// The acquire's probe puts the VF into the PF's iommu_group (the
		// root port's ACS is not enabled on this lane: see vfSharesPF), so
		// with the PF on igb the group rule refuses it, and the VF is as
		// it was.
		_, err := c.AcquireDevice(vf, client.AcquireOptions{Mode: proto.ModeFDs, VF: &proto.VFConfig{MAC: "52:54:00:aa:bb:01"}})
		if !errors.Is(err, proto.ErrNotViable) || !strings.Contains(err.Error(), pfBDF+" bound to igb") {
			t.Fatalf("acquire of a VF on %s: %v; want not viable, the PF on igb in its group", hwtest.Lane(), err)
		}
		vfSharesPF(t, fs, vf, pfBDF)
		if _, c1, err := m.Config(vf); err != nil || c1 != fresh || driverAt(t, fs, vf) != freshDriver {
			t.Errorf("after the refused acquire vf is %+v on %q (%v), want %+v on %q", c1, driverAt(t, fs, vf), err, fresh, freshDriver)
		}
		if recs, _ := filepath.Glob(filepath.Join(state, "*.lease")); len(recs) != 0 {
			t.Errorf("records after the refused acquire: %v", recs)
		}
		t.Logf("lane %s: acquire of vf %s refused: %v", hwtest.Lane(), vf, err)
		return
	}

	// igb has no VF link state: required, it fails the acquire, and the
	// MAC set before it goes back.
	_, err = c.AcquireDevice(vf, client.AcquireOptions{Mode: proto.ModeFDs, VF: &proto.VFConfig{
		MAC: "52:54:00:aa:bb:01", State: "enable", Required: []string{"state"}}})
	var vfe *client.VFError
	if !errors.Is(err, proto.ErrRefused) || !errors.As(err, &vfe) {
		t.Fatalf("acquire with required state=enable: %v, want refused", err)
	}
	t.Logf("required state=enable: %v; results %+v", err, vfe.Results)
	if i := slices.IndexFunc(vfe.Results, func(r proto.VFResult) bool { return r.Attr == "state" }); i < 0 || vfe.Results[i].Errno != int(syscall.EOPNOTSUPP) {
		t.Errorf("results %+v: want state refused with EOPNOTSUPP", vfe.Results)
	}
	if _, c1, err := m.Config(vf); err != nil || c1 != fresh || driverAt(t, fs, vf) != freshDriver {
		t.Errorf("after the refused acquire vf is %+v on %q (%v), want %+v on %q", c1, driverAt(t, fs, vf), err, fresh, freshDriver)
	}
	if recs, _ := filepath.Glob(filepath.Join(state, "*.lease")); len(recs) != 0 {
		t.Errorf("records after the refused acquire: %v", recs)
	}

	a, err := c.AcquireDevice(vf, client.AcquireOptions{Mode: proto.ModeFDs, VF: &proto.VFConfig{
		MAC: "52:54:00:aa:bb:01", VLAN: ptr(100), Trust: ptr(true), Required: []string{"mac", "vlan", "trust"}}})
	if err != nil {
		t.Fatalf("acquire vf %s with mac, vlan, trust: %v", vf, err)
	}
	t.Logf("lease %s of %v, fds %v, vf results %+v", a.Lease.ID, a.Lease.Devices, a.Names, a.VF)
	for _, r := range a.VF {
		if !r.OK {
			t.Errorf("attribute %+v not applied", r)
		}
	}
	// What the kernel says: netlink's VF info, sysfs's driver and cdev.
	_, got, err := m.Config(vf)
	if err != nil {
		t.Fatal(err)
	}
	if got.MAC.String() != "52:54:00:aa:bb:01" || got.VLAN != 100 || !got.Trust || got.SpoofChk != fresh.SpoofChk {
		t.Errorf("vf config while leased: %+v", got)
	}
	if d := driverAt(t, fs, vf); d != "vfio-pci/vfio-pci" {
		t.Errorf("vf driver while leased: %q", d)
	}
	if g := groupAt(t, fs, vf); g == nil || *g != a.Lease.Group || len(a.Lease.Devices) != 1 {
		t.Errorf("vf group while leased %v, lease of group %d %v: want the VF alone in it", g, a.Lease.Group, a.Lease.Devices)
	}
	if len(a.Names) != 2 || a.Names[1] != "vfio:"+vf {
		t.Errorf("fds %v", a.Names)
	}

	// Disabling the VFs, or changing their count, is refused while leased.
	refusedWhileLeased(t, m, pfBDF, state)
	if p, err := m.PF(pfBDF); err != nil || p.NumVFs != 2 {
		t.Errorf("after the refusals: %+v %v", p, err)
	}

	a.Close() // the VMM exits
	if err := c.Release(a.Lease.ID); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, c2, err := m.Config(vf); err != nil || c2 != fresh {
		t.Errorf("after release vf config %+v (%v), want %+v", c2, err, fresh)
	}
	if d := driverAt(t, fs, vf); d != freshDriver {
		t.Errorf("after release vf driver %q, want %q", d, freshDriver)
	}
	inUse, err := server.VFInUse(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(pfBDF, sriov.DisableOptions{InUse: inUse}); err != nil {
		t.Errorf("Disable after release: %v", err)
	}
}
