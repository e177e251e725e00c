//go:build hwtests && linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/tools/txtar"
)

// TestGuestSnapshot captures the guest's sysfs into /out (copied back to
// the run directory on the host) for sysfs/testdata. With an SR-IOV PF
// (-devices igb) it first enables two VFs, so the fixture has VFs, their
// physfn links and groups; the VFs are disabled again afterwards.
func TestGuestSnapshot(t *testing.T) {
	f, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	devs, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	vfs := 0
	for _, d := range devs {
		if d.SRIOV == nil || d.SRIOV.TotalVFs < 2 || d.Driver == "" {
			continue
		}
		numvfs := f.Path("bus", "pci", "devices", d.Address.String(), "sriov_numvfs")
		if err := os.WriteFile(numvfs, []byte("2"), 0o200); err != nil {
			t.Fatalf("enable VFs on %v: %v", d.Address, err)
		}
		t.Cleanup(func() {
			if err := os.WriteFile(numvfs, []byte("0"), 0o200); err != nil {
				t.Errorf("disable VFs on %v: %v", d.Address, err)
			}
		})
		vfs += 2
	}
	// VFs appear as the PF driver's write returns; allow their probes to settle.
	if vfs > 0 {
		time.Sleep(2 * time.Second)
	}

	dir := "/out"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = t.TempDir()
	}
	env := func(k string) string { return os.Getenv("HWTESTS_" + k) }
	name := fmt.Sprintf("sysfs-%s-%s.txtar", env("LANE"), strings.NewReplacer(",", "_", ":", "-").Replace(env("DEVICES")))
	note := fmt.Sprintf("hwtests guest: lane %s, HWTESTS_DEVICES %q, modules %s, accel %s, kernel package %s; %d VFs enabled.",
		env("LANE"), env("DEVICES"), env("MODULES"), env("ACCEL"), env("KERNEL"), vfs)
	out := filepath.Join(dir, name)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-o", out, "-note", note}, &stdout, &stderr, time.Now); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	t.Logf("wrote %s %s", out, stderr.String())
	a, err := txtar.ParseFile(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("header:\n%s", a.Comment)

	// The capture reads back as the live tree does.
	root := t.TempDir()
	if err := sysfstest.Unpack(root, a); err != nil {
		t.Fatal(err)
	}
	cf, err := sysfs.New(filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	live, err := f.Devices()
	if err != nil {
		t.Fatal(err)
	}
	got, err := cf.Devices()
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	if len(got) != len(live) {
		t.Fatalf("capture has %d devices, the guest %d", len(got), len(live))
	}
	withVFs := 0
	for i := range live {
		if got[i].Address != live[i].Address || got[i].Driver != live[i].Driver || got[i].Vendor != live[i].Vendor {
			t.Errorf("capture %+v, live %+v", got[i], live[i])
		}
		if got[i].PhysFn != nil {
			withVFs++
		}
	}
	if withVFs != vfs {
		t.Errorf("capture has %d VFs, want %d", withVFs, vfs)
	}
}
