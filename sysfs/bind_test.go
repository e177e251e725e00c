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
		{"0000:00:06.0", sysfs.ErrNoGroup},
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
