//go:build hwtests

package smoke

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// inGuest skips outside the hwtests guest, unless HWTESTS_STRICT says
// the environment is known (then a missing fact is a failure).
func inGuest(t *testing.T) {
	t.Helper()
	if os.Getenv("HWTESTS_LANE") == "" && os.Getenv("HWTESTS_STRICT") != "1" {
		t.Skip("not in the hwtests guest (HWTESTS_LANE unset)")
	}
}

func TestDeviceNodes(t *testing.T) {
	inGuest(t)
	for _, p := range []string{"/dev/iommu", "/dev/vfio/vfio"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("%s: mode %v, want a character device", p, st.Mode())
		}
	}
}

func TestIOMMUInSysfs(t *testing.T) {
	inGuest(t)
	name := os.Getenv("HWTESTS_IOMMU")
	if name == "" {
		t.Fatal("HWTESTS_IOMMU unset")
	}
	if _, err := os.Stat(filepath.Join("/sys/class/iommu", name)); err != nil {
		t.Error(err)
	}
	groups, err := os.ReadDir("/sys/kernel/iommu_groups")
	if err != nil || len(groups) == 0 {
		t.Errorf("no IOMMU groups: %v", err)
	}
}

// pciIDs maps vendor:device to the BDFs that have it.
func pciIDs(t *testing.T) map[string][]string {
	t.Helper()
	ents, err := os.ReadDir("/sys/bus/pci/devices")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][]string{}
	for _, e := range ents {
		read := func(attr string) string {
			b, err := os.ReadFile(filepath.Join("/sys/bus/pci/devices", e.Name(), attr))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
		}
		id := read("vendor") + ":" + read("device")
		ids[id] = append(ids[id], e.Name())
	}
	return ids
}

// TestDevices checks HWTESTS_DEVICES: kind@vendor:device[@BDF], one per
// device the harness added.
func TestDevices(t *testing.T) {
	inGuest(t)
	spec := os.Getenv("HWTESTS_DEVICES")
	if spec == "" {
		t.Fatal("HWTESTS_DEVICES unset")
	}
	ids := pciIDs(t)
	want := map[string]int{}
	for _, d := range strings.Split(spec, ",") {
		f := strings.Split(d, "@")
		if len(f) < 2 {
			t.Fatalf("bad HWTESTS_DEVICES entry %q", d)
		}
		want[f[1]]++
		if len(f) == 3 {
			bdf := f[2]
			if !contains(ids[f[1]], bdf) {
				t.Errorf("%s (%s) not at %s; devices with that ID: %v", f[0], f[1], bdf, ids[f[1]])
				continue
			}
			if _, err := os.Readlink(filepath.Join("/sys/bus/pci/devices", bdf, "iommu_group")); err != nil {
				t.Errorf("%s at %s has no IOMMU group: %v", f[0], bdf, err)
			}
		}
	}
	for id, n := range want {
		if got := len(ids[id]); got != n {
			t.Errorf("%d devices %s, want %d (%v)", got, id, n, ids[id])
		}
	}
}

func TestModules(t *testing.T) {
	inGuest(t)
	mods := []string{"iommufd", "vfio", "vfio_pci_core", "vfio_pci"}
	if os.Getenv("HWTESTS_MODULES") != "compat" {
		mods = append(mods, "vfio_iommu_type1")
	}
	for _, m := range mods {
		if _, err := os.Stat(filepath.Join("/sys/module", m)); err != nil {
			t.Errorf("module %s not loaded: %v", m, err)
		}
	}
}

func TestExports(t *testing.T) {
	inGuest(t)
	if _, err := os.Stat("/host/usr/bin"); err != nil {
		t.Errorf("host root not mounted at /host: %v", err)
	}
	if _, err := os.Stat("/host/proc/self"); err != nil {
		t.Errorf("/proc not bound under /host: %v", err)
	}
	p := filepath.Join("/out", "smoke-"+t.Name())
	if err := os.WriteFile(p, []byte("ok\n"), 0o644); err != nil {
		t.Errorf("/out not writable: %v", err)
	}
	_ = os.Remove(p)
}

func TestMemlock(t *testing.T) {
	inGuest(t)
	// syscall has no RLIMIT_MEMLOCK and x/sys stays out of tests here.
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max locked memory"); ok {
			if f := strings.Fields(rest); len(f) < 2 || f[0] != "unlimited" || f[1] != "unlimited" {
				t.Errorf("RLIMIT_MEMLOCK: %q, want unlimited", strings.TrimSpace(rest))
			}
			return
		}
	}
	t.Error("no Max locked memory line in /proc/self/limits")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
