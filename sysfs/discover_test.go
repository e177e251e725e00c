package sysfs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/tools/txtar"
)

// open builds fixture name and returns its FS, the fake kernel writing to
// it, and the sysfs root.
func open(t *testing.T, name string) (*sysfs.FS, *sysfstest.Kernel) {
	t.Helper()
	root := sysfstest.Build(t, filepath.Join("testdata", name))
	k := &sysfstest.Kernel{Root: filepath.Join(root, "sys")}
	f, err := sysfs.New(filepath.Join(root, "sys"), sysfs.WithProcRoot(filepath.Join(root, "proc")), sysfs.WithWriter(k))
	if err != nil {
		t.Fatal(err)
	}
	return f, k
}

func addr(t *testing.T, s string) sysfs.Address {
	t.Helper()
	a, err := sysfs.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewRoot(t *testing.T) {
	t.Parallel()
	if _, err := sysfs.New(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("New(missing dir): no error")
	}
	f, err := sysfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// An empty tree is a host without PCI, IOMMU or modules, not an error.
	if d, err := f.Devices(); err != nil || d != nil {
		t.Errorf("Devices() = %v, %v", d, err)
	}
	if u, err := f.IOMMUs(); err != nil || u != nil {
		t.Errorf("IOMMUs() = %v, %v", u, err)
	}
	if g, err := f.Groups(); err != nil || g != nil {
		t.Errorf("Groups() = %v, %v", g, err)
	}
	if c, err := f.Cmdline(); err != nil || c != nil {
		t.Errorf("Cmdline() without proc root = %v, %v", c, err)
	}
	if got := f.Path("bus", "pci"); !strings.HasSuffix(got, "/bus/pci") {
		t.Errorf("Path = %q", got)
	}
}

func TestVTDGuestDevices(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "vtd-guest.txtar")
	devs, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range devs {
		names = append(names, d.Address.String())
	}
	want := []string{"0000:00:00.0", "0000:00:01.0", "0000:00:02.0", "0000:00:1f.0", "0000:00:1f.2", "0000:00:1f.3", "0000:01:00.0"}
	if !slices.Equal(names, want) {
		t.Fatalf("devices %v, want %v", names, want)
	}

	edu := devs[1]
	if edu.Vendor != 0x1234 || edu.Device != 0x11e8 || edu.Class != 0x00ff00 || edu.SubsystemVendor != 0x1af4 || edu.SubsystemDevice != 0x1100 {
		t.Errorf("edu ids: %+v", edu)
	}
	if edu.Driver != "" || edu.DriverOverride != "" {
		t.Errorf("edu driver %q override %q, want none", edu.Driver, edu.DriverOverride)
	}
	if edu.IOMMUGroup == nil || *edu.IOMMUGroup != 1 {
		t.Errorf("edu group %v, want 1", edu.IOMMUGroup)
	}
	if edu.NUMANode == nil || *edu.NUMANode != -1 {
		t.Errorf("edu numa_node %v, want -1", edu.NUMANode)
	}
	if len(edu.Resources) != 1 || edu.Resources[0] != (sysfs.Resource{Index: 0, Start: 0xfea00000, End: 0xfeafffff, Flags: 0x40200}) ||
		edu.Resources[0].Size() != 1<<20 || !edu.Resources[0].IsMem() || edu.Resources[0].IsIO() {
		t.Errorf("edu resources %+v, want BAR0 of 1 MiB", edu.Resources)
	}
	if edu.IsBridge() || edu.SRIOV != nil || edu.PhysFn != nil {
		t.Errorf("edu: bridge %v sriov %v physfn %v", edu.IsBridge(), edu.SRIOV, edu.PhysFn)
	}

	rp := devs[2]
	if !rp.IsBridge() || rp.Driver != "pcieport" {
		t.Errorf("root port: bridge %v driver %q", rp.IsBridge(), rp.Driver)
	}
	sata := devs[4]
	if sata.Driver != "ahci" || len(sata.Resources) != 2 || sata.Resources[0].Index != 4 || !sata.Resources[0].IsIO() {
		t.Errorf("sata: driver %q resources %+v", sata.Driver, sata.Resources)
	}
	pf := devs[6]
	if pf.SRIOV == nil || pf.SRIOV.TotalVFs != 7 || pf.SRIOV.NumVFs != 0 || pf.SRIOV.DriversAutoprobe == nil || !*pf.SRIOV.DriversAutoprobe || len(pf.SRIOV.VFs) != 0 {
		t.Errorf("igb sriov %+v", pf.SRIOV)
	}
	if pf.Upstream == nil || *pf.Upstream != rp.Address || edu.Upstream != nil {
		t.Errorf("upstream bridges: igb %v, edu %v", pf.Upstream, edu.Upstream)
	}
	if pf.IOMMUGroup == nil || *pf.IOMMUGroup != 4 || pf.Driver != "igb" || len(pf.Resources) != 4 {
		t.Errorf("igb: %+v", pf)
	}

	d, err := f.Device(addr(t, "0000:00:01.0"))
	if err != nil || d.Address != edu.Address || *d.IOMMUGroup != 1 {
		t.Errorf("Device(edu) = %+v, %v", d, err)
	}
	if _, err := f.Device(addr(t, "0000:00:09.0")); !errors.Is(err, sysfs.ErrNoDevice) {
		t.Errorf("Device(absent) error %v, want ErrNoDevice", err)
	}
}

func TestVTDGuestIOMMUAndGroups(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "vtd-guest.txtar")
	units, err := f.IOMMUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 1 || units[0].Name != "dmar0" || units[0].Kind != sysfs.KindVTD || units[0].VTD == nil {
		t.Fatalf("IOMMUs() = %+v", units)
	}
	v := units[0].VTD
	if v.Cap != 0xd2008c222f0686 || v.ECap != 0xf00f4a || !v.Cap.CM() || !v.ECap.IR() {
		t.Errorf("dmar0 cap %#x ecap %#x (CM %v IR %v)", uint64(v.Cap), uint64(v.ECap), v.Cap.CM(), v.ECap.IR())
	}
	if len(units[0].Devices) != 7 {
		t.Errorf("dmar0 translates %d devices, want 7", len(units[0].Devices))
	}

	groups, err := f.Groups()
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 5 {
		t.Fatalf("%d groups, want 5", len(groups))
	}
	msi := sysfs.ReservedRegion{Start: 0xfee00000, End: 0xfeefffff, Type: "msi"}
	for i, g := range groups {
		if g.Number != i || g.Type != "DMA" || g.ReservedRegions[len(g.ReservedRegions)-1] != msi {
			t.Errorf("group %d: %+v", i, g)
		}
	}
	if !slices.Equal(groups[1].Devices, []string{"0000:00:01.0"}) {
		t.Errorf("group 1 devices %v, want edu alone", groups[1].Devices)
	}
	if len(groups[3].Devices) != 3 || len(groups[3].ReservedRegions) != 2 || groups[3].ReservedRegions[0].Type != "direct-relaxable" {
		t.Errorf("group 3: %+v", groups[3])
	}
	if _, err := f.Group(42); !errors.Is(err, sysfs.ErrNoGroup) {
		t.Errorf("Group(42) error %v, want ErrNoGroup", err)
	}
}

func TestVTDGuestKernel(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "vtd-guest.txtar")
	c, err := f.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Lookup("console"); !ok || v != "ttyS0" {
		t.Errorf("console = %q, %v", v, ok)
	}
	if _, ok := c.Lookup("quiet"); !ok {
		t.Error("quiet missing")
	}
	if _, ok := c.Lookup("intel_iommu"); ok {
		t.Error("intel_iommu found")
	}
	for _, name := range sysfs.PassthroughModules() {
		m, err := f.Module(name)
		if err != nil || !m.Present {
			t.Errorf("Module(%s) = %+v, %v", name, m, err)
		}
	}
	m, err := f.Module("vfio_iommu_type1")
	if err != nil || m.Params["dma_entry_limit"] != "65535" || m.Params["allow_unsafe_interrupts"] != "N" {
		t.Errorf("vfio_iommu_type1 = %+v, %v", m, err)
	}
	if m, err := f.Module("kvm"); err != nil || m.Present {
		t.Errorf("Module(kvm) = %+v, %v", m, err)
	}
}

func TestBrokenTree(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "broken.txtar")
	devs, err := f.Devices()
	if err == nil {
		t.Fatal("Devices: no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"device 0000:00:01.0 vendor", "device 0000:00:01.0 numa_node", "device 0000:00:01.0 resource",
		"device 0000:00:02.0 iommu_group", "device 0000:00:05.0 physfn", "device 0000:00:06.0 sriov", "device 0000:00:06.0 numa_node",
		`"bogus"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, sysfs.ErrAddress) {
		t.Errorf("error does not wrap ErrAddress: %v", err)
	}
	for _, bad := range []string{"0000:00:03.0", "0000:00:04.0"} {
		if strings.Contains(msg, bad) {
			t.Errorf("%s reported broken; its files are missing, not broken:\n%s", bad, msg)
		}
	}
	// Discovery went on: every device with a valid name is listed.
	if len(devs) != 6 {
		t.Fatalf("%d devices listed, want 6", len(devs))
	}
	byName := map[string]sysfs.Device{}
	for _, d := range devs {
		byName[d.Address.String()] = d
	}
	if d := byName["0000:00:01.0"]; d.Device != 0x11e8 || d.IOMMUGroup == nil || d.NUMANode != nil || d.Resources != nil {
		t.Errorf("00:01.0 partial read: %+v", d)
	}
	if d := byName["0000:00:03.0"]; d.Class != 0x020000 || d.Vendor != 0 || d.IOMMUGroup != nil || d.NUMANode != nil || d.SRIOV != nil || d.Driver != "" {
		t.Errorf("00:03.0 with missing files: %+v", d)
	}
	if d := byName["0000:00:04.0"]; d.Driver != "gone" || d.IOMMUGroup == nil || *d.IOMMUGroup != 9 {
		t.Errorf("00:04.0 dangling links: %+v", d)
	}

	groups, err := f.Groups()
	if err == nil || !strings.Contains(err.Error(), "iommu_group 1") || !strings.Contains(err.Error(), `"abc"`) {
		t.Errorf("Groups error %v, want group 1 and abc named", err)
	}
	if len(groups) != 1 || groups[0].Type != "DMA" || len(groups[0].Devices) != 1 {
		t.Errorf("Groups() = %+v", groups)
	}
	units, err := f.IOMMUs()
	if err == nil || !strings.Contains(err.Error(), "iommu dmar0") || len(units) != 1 || units[0].Kind != sysfs.KindVTD || units[0].VTD != nil {
		t.Errorf("IOMMUs() = %+v, %v", units, err)
	}
	if c, err := f.Cmdline(); err != nil || len(c) != 0 {
		t.Errorf("empty cmdline = %q, %v", c, err)
	}
	if _, err := f.Viability(1); err != nil {
		t.Errorf("Viability(1) error %v: a broken reserved_regions says nothing about the members", err)
	}
}

func TestSRIOV(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "vtd-guest-sriov.txtar")
	pf, err := f.Device(addr(t, "0000:01:00.0"))
	if err != nil {
		t.Fatal(err)
	}
	vfs := []sysfs.Address{addr(t, "0000:01:10.0"), addr(t, "0000:01:10.2")}
	if pf.SRIOV == nil || pf.SRIOV.NumVFs != 2 || pf.SRIOV.TotalVFs != 7 || !slices.Equal(pf.SRIOV.VFs, vfs) || pf.PhysFn != nil {
		t.Fatalf("PF: %+v sriov %+v", pf, pf.SRIOV)
	}
	for i, a := range vfs {
		vf, err := f.Device(a)
		if err != nil {
			t.Fatal(err)
		}
		if vf.PhysFn == nil || *vf.PhysFn != pf.Address || vf.SRIOV != nil || vf.Device != 0x10ca || vf.IOMMUGroup == nil || *vf.IOMMUGroup != 5+i {
			t.Errorf("VF %s: %+v", a, vf)
		}
	}
	groups, err := f.Groups()
	if err != nil || len(groups) != 7 {
		t.Errorf("%d groups, %v; want 7", len(groups), err)
	}
	// A VF binds like any endpoint.
	b, err := f.Bind("0000:01:10.2")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Viability(6); err != nil || !v.Viable {
		t.Errorf("Viability(6) after Bind: %v, %v", v, err)
	}
	if err := f.Release(b); err != nil {
		t.Fatal(err)
	}
}

// The tree captured in the guest: what the hand-written fixtures model,
// checked against the real kernel's output.
func TestVTDGuestCaptured(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "vtd-guest-captured.txtar")
	devs, err := f.Devices()
	if err != nil || len(devs) != 7 {
		t.Fatalf("Devices() = %d devices, %v", len(devs), err)
	}
	edu := devs[1]
	if edu.Address.String() != "0000:00:01.0" || edu.Vendor != 0x1234 || edu.Device != 0x11e8 || edu.Driver != "" ||
		edu.DriverOverride != "" || edu.IOMMUGroup == nil || *edu.IOMMUGroup != 1 || len(edu.Resources) != 1 || edu.Resources[0].Size() != 1<<20 {
		t.Errorf("edu: %+v", edu)
	}
	units, err := f.IOMMUs()
	if err != nil || len(units) != 1 || units[0].VTD == nil || units[0].VTD.Cap != 0xd2008c222f0686 || units[0].VTD.ECap != 0xf00f4a || len(units[0].Devices) != 7 {
		t.Errorf("IOMMUs() = %+v, %v", units, err)
	}
	groups, err := f.Groups()
	if err != nil || len(groups) != 5 {
		t.Fatalf("Groups() = %d, %v", len(groups), err)
	}
	if !slices.Equal(groups[1].Devices, []string{"0000:00:01.0"}) || len(groups[4].Devices) != 3 || len(groups[4].ReservedRegions) != 2 {
		t.Errorf("groups: %+v", groups)
	}
	for n, viable := range map[int]bool{0: true, 1: true, 2: false, 3: false, 4: true} {
		if v, err := f.Viability(n); err != nil || v.Viable != viable {
			t.Errorf("Viability(%d) = %v, %v; want viable %v", n, v, err, viable)
		}
	}
	b, err := f.Bind("0000:00:01.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Release(b); err != nil {
		t.Fatal(err)
	}
}

func TestIOMMUKinds(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a := txtar.Parse([]byte(`-- class/iommu/ivhd0/amd-iommu/cap --
0x00190000
-- class/iommu/ivhd0/amd-iommu/features --
29d3:0
-- class/iommu/smmu3.0x0000000009050000/devices/0000:00:01.0@ --
../../../../../devices/pci0000:00/0000:00:01.0
-- class/iommu/other/ --
`))
	if err := sysfstest.Unpack(root, a); err != nil {
		t.Fatal(err)
	}
	f, err := sysfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	units, err := f.IOMMUs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sysfs.Kind{"ivhd0": sysfs.KindAMDVi, "smmu3.0x0000000009050000": sysfs.KindSMMUv3, "other": sysfs.KindUnknown}
	if len(units) != len(want) {
		t.Fatalf("IOMMUs() = %+v", units)
	}
	for _, u := range units {
		if u.Kind != want[u.Name] || u.VTD != nil {
			t.Errorf("%s: kind %s, want %s", u.Name, u.Kind, want[u.Name])
		}
		if (u.AMD != nil) != (u.Name == "ivhd0") || u.AMD != nil && (u.AMD.Cap != 0x190000 || u.AMD.EFR != 0x29d3) {
			t.Errorf("%s: AMD %+v", u.Name, u.AMD)
		}
	}
	if i := slices.IndexFunc(units, func(u sysfs.IOMMU) bool { return u.Kind == sysfs.KindSMMUv3 }); len(units[i].Devices) != 1 {
		t.Errorf("smmu3 devices %v", units[i].Devices)
	}
}

// The igb guest capture (cmd/sysfs-snapshot, -devices igb, 2 VFs enabled):
// the PF's SR-IOV attributes and its VFs, each VF in a group of its own
// with a physfn link back.
func TestCapturedIGB(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "vtd-guest-igb-captured.txtar")
	devs, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]sysfs.Device{}
	for _, d := range devs {
		byAddr[d.Address.String()] = d
	}
	pf := byAddr["0000:01:00.0"]
	if pf.Vendor != 0x8086 || pf.Device != 0x10c9 || pf.Driver != "igb" || pf.SRIOV == nil {
		t.Fatalf("PF %+v", pf)
	}
	if s := pf.SRIOV; s.TotalVFs != 7 || s.NumVFs != 2 || s.DriversAutoprobe == nil || !*s.DriversAutoprobe ||
		len(s.VFs) != 2 || s.VFs[0].String() != "0000:01:10.0" || s.VFs[1].String() != "0000:01:10.2" {
		t.Errorf("PF SR-IOV %+v", s)
	}
	if pf.Upstream == nil || pf.Upstream.String() != "0000:00:01.0" {
		t.Errorf("PF upstream %v, want the root port 0000:00:01.0", pf.Upstream)
	}
	if rp := byAddr["0000:00:01.0"].Config; rp == nil || rp.PCIe == nil || *rp.PCIe != sysfs.PCIeRootPort || rp.ACS == nil || !rp.ACS.Isolates() {
		t.Errorf("root port config %+v, want a root port with ACS isolating", rp)
	}
	groups := map[int]bool{*pf.IOMMUGroup: true}
	for _, a := range pf.SRIOV.VFs {
		vf := byAddr[a.String()]
		if vf.Device != 0x10ca || vf.PhysFn == nil || *vf.PhysFn != pf.Address || vf.SRIOV != nil || vf.IOMMUGroup == nil {
			t.Errorf("VF %+v", vf)
			continue
		}
		if groups[*vf.IOMMUGroup] {
			t.Errorf("VF %v shares group %d", a, *vf.IOMMUGroup)
		}
		groups[*vf.IOMMUGroup] = true
		if v, err := f.Viability(*vf.IOMMUGroup); err != nil || !v.Viable {
			t.Errorf("VF %v (no driver): %v, %v", a, v, err)
		}
	}
}

// The bridge capture with config space: QEMU's root port has ACS and
// isolates; the pcie-pci-bridge is what puts edu and e1000 in one group.
func TestCapturedBridgeACS(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "vtd-guest-bridge-config-captured.txtar")
	devs, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(devs, func(d sysfs.Device) bool { return d.Address.String() == "0000:00:01.0" })
	rp := devs[i].Config
	if rp == nil || rp.PCIe == nil || *rp.PCIe != sysfs.PCIeRootPort || rp.ACS == nil || !rp.ACS.Isolates() || rp.ACS.Ctrl.String() != "SV RR CR UF" {
		t.Fatalf("root port config %+v", rp)
	}
	ports := sysfs.UpstreamPorts(devs, addr(t, "0000:02:01.0"))
	if len(ports) != 2 || ports[0].Address.String() != "0000:01:00.0" || ports[1].Address.String() != "0000:00:01.0" {
		t.Fatalf("ports above e1000: %v", ports)
	}
	if c := ports[0].Config; c == nil || c.PCIe == nil || *c.PCIe != sysfs.PCIeToPCIBridge || c.ACS != nil {
		t.Errorf("pcie-pci-bridge config %+v", c)
	}
	g, err := f.Group(5)
	if err != nil {
		t.Fatal(err)
	}
	got := sysfs.SharingReasons(devs, g.Devices)
	if len(got) != 1 || !strings.HasPrefix(got[0], "0000:01:00.0 is a PCIe-to-PCI bridge") {
		t.Errorf("group 5 shared because %q", got)
	}
	for _, d := range devs {
		if d.Config != nil && !d.IsBridge() {
			t.Errorf("%v: config read for an endpoint", d.Address)
		}
	}
}

// The ids read from uevent are those the five id files give: on the guest
// captures, a copy without its uevent files reads the same.
func TestUeventIDsMatchFiles(t *testing.T) {
	t.Parallel()
	for _, fixture := range []string{"vtd-guest-igb-captured.txtar", "vtd-guest-bridge-config-captured.txtar"} {
		t.Run(fixture, func(t *testing.T) {
			t.Parallel()
			f, _ := open(t, fixture)
			want, err := f.Devices()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			err = filepath.WalkDir(f.Path("devices"), func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Name() == "uevent" {
					n++
					return os.Remove(p)
				}
				return err
			})
			if err != nil || n != len(want) {
				t.Fatalf("removed %d uevent files for %d devices: %v", n, len(want), err)
			}
			got, err := f.Devices()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("without uevent: %v\n%+v\nwith:\n%+v", err, got, want)
			}
		})
	}
}

// ViabilityOf, from devices already read, gives Viability's verdicts.
func TestViabilityOf(t *testing.T) {
	t.Parallel()
	for _, fixture := range []string{"bridge-group.txtar", "vtd-guest-bridge-config-captured.txtar", "vtd-guest-igb-captured.txtar"} {
		f, _ := open(t, fixture)
		devs, err := f.Devices()
		if err != nil {
			t.Fatal(err)
		}
		groups, err := f.Groups()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			want, err := f.Viability(g.Number)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := sysfs.ViabilityOf(g, devs)
			if !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("%s group %d: ViabilityOf %+v %v, Viability %+v", fixture, g.Number, got, ok, want)
			}
		}
	}
	if _, ok := sysfs.ViabilityOf(sysfs.Group{Number: 1, Devices: []string{"platform-dev"}}, nil); ok {
		t.Error("ViabilityOf with a member not among the devices: ok")
	}
}

// Scan and then Details on each device give what Devices gives, on every
// fixture, and Scan's drivers (from uevent) follow binds and releases.
func TestScanThenDetails(t *testing.T) {
	t.Parallel()
	ents, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	same := func(t *testing.T, f *sysfs.FS) []sysfs.Device {
		t.Helper()
		want, werr := f.Devices()
		got, gerr := f.Scan()
		for i := range got {
			gerr = errors.Join(gerr, f.Details(&got[i]))
		}
		if !reflect.DeepEqual(got, want) || (gerr == nil) != (werr == nil) {
			t.Errorf("Scan+Details: %v\n%+v\nDevices: %v\n%+v", gerr, got, werr, want)
		}
		return got
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".txtar") {
			continue // testdata/fuzz
		}
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			f, _ := open(t, e.Name())
			same(t, f)
		})
	}
	f, _ := open(t, "vtd-guest-bridge-config-captured.txtar")
	b, err := f.BindGroup(5)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range same(t, f) {
		if d.IOMMUGroup != nil && *d.IOMMUGroup == 5 && !d.IsBridge() && d.Driver != "vfio-pci" {
			t.Errorf("bound group 5, Scan says %s is on %q", d.Address, d.Driver)
		}
	}
	if err := f.Release(b); err != nil {
		t.Fatal(err)
	}
	for _, d := range same(t, f) {
		if d.Address.String() == "0000:02:01.0" && d.Driver != "e1000" {
			t.Errorf("released, Scan says %s is on %q, want e1000", d.Address, d.Driver)
		}
	}
}
