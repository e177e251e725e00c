package sysfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

func TestViability(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "bridge-group.txtar")
	for _, tc := range []struct {
		group    int
		viable   bool
		blockers []string // "bdf driver"
	}{
		{group: 0, viable: true}, // host bridge, no driver
		{group: 5, viable: false, blockers: []string{"0000:02:02.0 e1000"}}, // e1000 behind the PCI bridge
		{group: 6, viable: true}, // pcieport bridge does not count
		{group: 7, viable: true}, // already vfio-pci
	} {
		v, err := f.Viability(tc.group)
		if err != nil {
			t.Errorf("Viability(%d): %v", tc.group, err)
			continue
		}
		var got []string
		for _, b := range v.Blockers {
			got = append(got, b.Name+" "+b.Driver)
		}
		if v.Viable != tc.viable || !slices.Equal(got, tc.blockers) {
			t.Errorf("Viability(%d) = %v %v, want %v %v", tc.group, v.Viable, got, tc.viable, tc.blockers)
		}
		if !tc.viable && !strings.Contains(v.String(), "0000:02:02.0 bound to e1000") {
			t.Errorf("String() = %q, does not name the blocker", v)
		}
	}
	if _, err := f.Viability(99); !errors.Is(err, sysfs.ErrNoGroup) {
		t.Errorf("Viability(99) error %v, want ErrNoGroup", err)
	}

	// A non-pcieport driver on a bridge does block: only the port driver
	// sets driver_managed_dma.
	g, _ := open(t, "vtd-guest.txtar")
	if v, err := g.Viability(3); err != nil || v.Viable || len(v.Blockers) != 3 {
		t.Errorf("Viability(3) (lpc_ich, ahci, i801_smbus) = %v, %v", v, err)
	}
	if v, err := g.Viability(2); err != nil || !v.Viable || len(v.Members) != 1 || !v.Members[0].Bridge {
		t.Errorf("Viability(2) (root port on pcieport) = %+v, %v", v, err)
	}

	// The same, as the guest kernel showed it.
	c, _ := open(t, "vtd-guest-bridge-captured.txtar")
	if v, err := c.Viability(5); err != nil || v.Viable || len(v.Blockers) != 1 || v.Blockers[0] != (sysfs.Member{Name: "0000:02:01.0", Driver: "e1000"}) || len(v.Members) != 3 {
		t.Errorf("captured Viability(5) = %+v, %v", v, err)
	}
	if v, err := c.Viability(1); err != nil || !v.Viable || !v.Members[0].Bridge || v.Members[0].Driver != "pcieport" {
		t.Errorf("captured Viability(1) (root port) = %+v, %v", v, err)
	}
}

// state is every device's driver and driver_override, to compare a tree
// before and after.
func state(t *testing.T, f *sysfs.FS) map[string][2]string {
	t.Helper()
	devs, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][2]string{}
	for _, d := range devs {
		m[d.Address.String()] = [2]string{d.Driver, d.DriverOverride}
	}
	return m
}

func TestBindRelease(t *testing.T) {
	t.Parallel()
	f, k := open(t, "vtd-guest.txtar")
	before := state(t, f)
	b, err := f.Bind("0000:00:01.0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.Device(b.Devices[0].Address)
	if err != nil || d.Driver != sysfs.VFIOPCI || d.DriverOverride != sysfs.VFIOPCI {
		t.Fatalf("edu after Bind: driver %q override %q, %v", d.Driver, d.DriverOverride, err)
	}
	want := []string{
		"bus/pci/devices/0000:00:01.0/driver_override=vfio-pci",
		"bus/pci/drivers_probe=0000:00:01.0",
	}
	if !slices.Equal(k.Writes(), want) {
		t.Errorf("writes %q, want %q", k.Writes(), want)
	}
	// The kernel makes the driver's link back to the device too.
	if _, err := os.Lstat(filepath.Join(k.Root, "bus/pci/drivers/vfio-pci/0000:00:01.0")); err != nil {
		t.Error(err)
	}
	if err := f.Release(b); err != nil {
		t.Fatal(err)
	}
	if after := state(t, f); !mapsEqual(before, after) {
		t.Errorf("after Release %v, want %v", after, before)
	}
}

func TestBindFromKernelDriver(t *testing.T) {
	t.Parallel()
	f, k := open(t, "vtd-guest.txtar")
	before := state(t, f)
	b, err := f.Bind("01:00.0") // lspci form, domain 0
	if err != nil {
		t.Fatal(err)
	}
	if s := state(t, f)["0000:01:00.0"]; s != [2]string{"vfio-pci", "vfio-pci"} {
		t.Fatalf("igb after Bind: %v", s)
	}
	if !slices.Contains(k.Writes(), "bus/pci/drivers/igb/unbind=0000:01:00.0") {
		t.Errorf("no unbind from igb in %q", k.Writes())
	}
	if b.Devices[0].Driver != "igb" {
		t.Errorf("recorded original %+v", b.Devices[0])
	}
	if err := f.Release(b); err != nil {
		t.Fatal(err)
	}
	if after := state(t, f); !mapsEqual(before, after) {
		t.Errorf("after Release %v, want %v", after, before)
	}
}

func TestBindRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bdf  string
		want error
	}{
		{"0000:00:01", sysfs.ErrAddress},
		{"0000:00:20.0", sysfs.ErrAddress},
		{"0000:00:01.8", sysfs.ErrAddress},
		{"", sysfs.ErrAddress},
		{"0000:00:09.0", sysfs.ErrNoDevice},
		{"0000:00:03.0", sysfs.ErrBridge},
	} {
		t.Run(tc.bdf, func(t *testing.T) {
			t.Parallel()
			f, k := open(t, "bridge-group.txtar")
			b, err := f.Bind(tc.bdf)
			if !errors.Is(err, tc.want) || b != nil {
				t.Errorf("Bind(%q) = %v, %v; want %v", tc.bdf, b, err, tc.want)
			}
			if len(k.Writes()) != 0 {
				t.Errorf("Bind(%q) wrote %q", tc.bdf, k.Writes())
			}
		})
	}
	f, k := open(t, "bridge-group.txtar")
	if _, err := f.BindGroup(99); !errors.Is(err, sysfs.ErrNoGroup) {
		t.Errorf("BindGroup(99) error %v", err)
	}
	if len(k.Writes()) != 0 {
		t.Errorf("BindGroup(99) wrote %q", k.Writes())
	}
	// Already on vfio-pci: nothing to do, nothing to release.
	b, err := f.Bind("0000:00:05.0")
	if err != nil || len(b.Devices) != 0 || len(k.Writes()) != 0 {
		t.Errorf("Bind(bound) = %+v, %v, writes %q", b, err, k.Writes())
	}
}

// Without any IOMMU unit a device without a group is refused before a
// write: no probe will give it one.
func TestBindNoIOMMU(t *testing.T) {
	t.Parallel()
	f, k := open(t, "bridge-group.txtar")
	if err := os.RemoveAll(filepath.Join(k.Root, "class", "iommu")); err != nil {
		t.Fatal(err)
	}
	b, err := f.Bind("0000:00:06.0")
	if !errors.Is(err, sysfs.ErrNoGroup) || b != nil || !strings.Contains(err.Error(), "no IOMMU unit") {
		t.Errorf("Bind = %v, %v; want ErrNoGroup naming the missing unit", b, err)
	}
	if len(k.Writes()) != 0 {
		t.Errorf("wrote %q", k.Writes())
	}
}

// A device without a group on a host with an IOMMU is probed once; when no
// group comes of it (an IOMMU that groups at boot left it untranslated),
// vfio-pci refuses it and the device is put back.
func TestBindGrouplessNoGroupComes(t *testing.T) {
	t.Parallel()
	f, k := open(t, "bridge-group.txtar") // dmar0; 00:06.0 has no group
	before := state(t, f)
	b, err := f.Bind("0000:00:06.0")
	if !errors.Is(err, sysfs.ErrNoGroup) || !errors.Is(err, sysfs.ErrNotBound) || b != nil {
		t.Errorf("Bind = %v, %v; want ErrNoGroup and ErrNotBound", b, err)
	}
	if after := state(t, f); !mapsEqual(before, after) {
		t.Errorf("after Bind %v, want %v (writes %q)", after, before, k.Writes())
	}
}

// groupOnProbe opens bridge-group.txtar with its group-less edu 00:06.0
// getting iommu_group n at its first probe, as on an SMMUv3 host.
func groupOnProbe(t *testing.T, n int) (*sysfs.FS, *sysfstest.Kernel) {
	t.Helper()
	f, k := open(t, "bridge-group.txtar")
	k.GroupOnProbe = map[string]int{"0000:00:06.0": n}
	return f, k
}

func TestBindGroupOnProbe(t *testing.T) {
	t.Parallel()
	f, k := groupOnProbe(t, 9)
	before := state(t, f)
	b, err := f.Bind("0000:00:06.0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.Device(addr(t, "0000:00:06.0"))
	if err != nil || d.Driver != sysfs.VFIOPCI || d.IOMMUGroup == nil || *d.IOMMUGroup != 9 {
		t.Fatalf("after Bind: %+v, %v; want vfio-pci in group 9", d, err)
	}
	want := []string{
		"bus/pci/devices/0000:00:06.0/driver_override=vfio-pci",
		"bus/pci/drivers_probe=0000:00:06.0",
	}
	if !slices.Equal(k.Writes(), want) {
		t.Errorf("writes %q, want %q", k.Writes(), want)
	}
	if v, err := f.Viability(9); err != nil || !v.Viable || len(v.Members) != 1 {
		t.Errorf("Viability(9) = %+v, %v", v, err)
	}
	if err := f.Release(b); err != nil {
		t.Fatal(err)
	}
	if after := state(t, f); !mapsEqual(before, after) {
		t.Errorf("after Release %v, want %v", after, before)
	}
	// The kernel keeps the group after the unbind.
	if d, err := f.Device(addr(t, "0000:00:06.0")); err != nil || d.IOMMUGroup == nil || *d.IOMMUGroup != 9 {
		t.Errorf("after Release: %+v, %v; want group 9 kept", d, err)
	}
}

// The probe may put the device into a group that exists, beside a device
// on a kernel driver: Bind applies the group rule to the group as it now
// is and unbinds the device again.
func TestBindGroupOnProbeNotViable(t *testing.T) {
	t.Parallel()
	f, _ := groupOnProbe(t, 5) // e1000 at 02:02.0 blocks group 5
	before := state(t, f)
	b, err := f.Bind("0000:00:06.0")
	if !errors.Is(err, sysfs.ErrNotViable) || b != nil ||
		!strings.Contains(err.Error(), "0000:02:02.0 bound to e1000") || !strings.Contains(err.Error(), "unbound again") {
		t.Errorf("Bind = %v, %v; want ErrNotViable naming e1000 and the rollback", b, err)
	}
	if after := state(t, f); !mapsEqual(before, after) {
		t.Errorf("after Bind %v, want %v", after, before)
	}
}

// TestBindGroupOnProbeRollback fails every write of the group-on-probe
// bind in turn, on the viable path (the bind's own writes) and on the
// not-viable one (its rollback's writes too): the device is restored, or
// the error says the rollback is incomplete.
func TestBindGroupOnProbeRollback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		group  int
		writes int // in a clean run
		bind   int // of which the bind's own
	}{
		{group: 9, writes: 2, bind: 2},
		{group: 5, writes: 4, bind: 2}, // override, probe; unbind, clear override
	} {
		f, k := groupOnProbe(t, tc.group)
		f.Bind("0000:00:06.0")
		if n := len(k.Writes()); n != tc.writes {
			t.Fatalf("group %d: a clean Bind made %d writes: %q", tc.group, n, k.Writes())
		}
		for step := 1; step <= tc.writes; step++ {
			f, k := groupOnProbe(t, tc.group)
			k.FailAt = step
			before := state(t, f)
			b, err := f.Bind("0000:00:06.0")
			if b != nil || !errors.Is(err, sysfstest.ErrInjected) {
				t.Errorf("group %d step %d: Bind = %v, %v; want ErrInjected", tc.group, step, b, err)
				continue
			}
			after := state(t, f)
			if step <= tc.bind {
				if !mapsEqual(before, after) {
					t.Errorf("group %d step %d: after rollback %v, want %v (writes %q)", tc.group, step, after, before, k.Writes())
				}
				continue
			}
			if !errors.Is(err, sysfs.ErrNotViable) || !strings.Contains(err.Error(), "rollback incomplete") {
				t.Errorf("group %d step %d: %v; want ErrNotViable and an incomplete rollback", tc.group, step, err)
			}
		}
	}
}

func TestBindGroup(t *testing.T) {
	t.Parallel()
	f, _ := open(t, "bridge-group.txtar")
	before := state(t, f)
	if v, _ := f.Viability(5); v.Viable {
		t.Fatal("group 5 viable before BindGroup")
	}
	b, err := f.BindGroup(5)
	if err != nil {
		t.Fatal(err)
	}
	var bound []string
	for _, o := range b.Devices {
		bound = append(bound, o.Address.String())
	}
	if !slices.Equal(bound, []string{"0000:02:01.0", "0000:02:02.0"}) {
		t.Errorf("bound %v, want both endpoints and not the bridge", bound)
	}
	if v, err := f.Viability(5); err != nil || !v.Viable {
		t.Errorf("after BindGroup: %v, %v", v, err)
	}
	if err := f.Release(b); err != nil {
		t.Fatal(err)
	}
	if after := state(t, f); !mapsEqual(before, after) {
		t.Errorf("after Release %v, want %v", after, before)
	}
}

// TestBindGroupRollback fails every write of BindGroup in turn and checks
// that the tree is left exactly as it was, on the synthetic tree and on the
// one captured in the guest with -devices bridge:edu,e1000.
func TestBindGroupRollback(t *testing.T) {
	t.Parallel()
	for _, fixture := range []string{"bridge-group.txtar", "vtd-guest-bridge-captured.txtar"} {
		t.Run(fixture, func(t *testing.T) {
			t.Parallel()
			// A clean run counts the writes.
			f, k := open(t, fixture)
			if _, err := f.BindGroup(5); err != nil {
				t.Fatal(err)
			}
			n := len(k.Writes())
			if n != 5 { // edu: override, probe; e1000: override, unbind, probe
				t.Fatalf("BindGroup(5) made %d writes: %q", n, k.Writes())
			}
			for step := 1; step <= n; step++ {
				f, k := open(t, fixture)
				k.FailAt = step
				before := state(t, f)
				b, err := f.BindGroup(5)
				if !errors.Is(err, sysfstest.ErrInjected) || b != nil {
					t.Errorf("step %d: BindGroup = %v, %v; want ErrInjected", step, b, err)
				}
				if after := state(t, f); !mapsEqual(before, after) {
					t.Errorf("step %d: after rollback %v, want %v (writes %q)", step, after, before, k.Writes())
				}
			}
		})
	}
}

// A probe that binds nothing (drivers_probe still succeeds) is caught and
// rolled back.
func TestBindProbeRefused(t *testing.T) {
	t.Parallel()
	f, k := open(t, "bridge-group.txtar")
	k.Refuse = map[sysfstest.Probe]bool{{Driver: "vfio-pci", Device: "0000:02:02.0"}: true}
	before := state(t, f)
	_, err := f.BindGroup(5)
	if !errors.Is(err, sysfs.ErrNotBound) || !strings.Contains(err.Error(), "every device restored") {
		t.Errorf("BindGroup error %v, want ErrNotBound and a full rollback", err)
	}
	if after := state(t, f); !mapsEqual(before, after) {
		t.Errorf("after rollback %v, want %v", after, before)
	}
}

// When the rollback itself fails, the error says so.
func TestBindRollbackFails(t *testing.T) {
	t.Parallel()
	f, k := open(t, "bridge-group.txtar")
	k.Refuse = map[sysfstest.Probe]bool{
		{Driver: "vfio-pci", Device: "0000:02:02.0"}: true,
		{Driver: "e1000", Device: "0000:02:02.0"}:    true, // the rebind fails too
	}
	_, err := f.BindGroup(5)
	if !errors.Is(err, sysfs.ErrNotBound) || !strings.Contains(err.Error(), "rollback incomplete") || !strings.Contains(err.Error(), "bind to e1000") {
		t.Errorf("BindGroup error %v", err)
	}
	// edu, changed first, was still restored.
	if s := state(t, f)["0000:02:01.0"]; s != [2]string{"", ""} {
		t.Errorf("edu after rollback %v", s)
	}
}

func mapsEqual(a, b map[string][2]string) bool {
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
