package sysfs_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/tools/txtar"
)

// discovery is everything sysfs reads from a tree, for comparing two trees.
type discovery struct {
	Devices []sysfs.Device
	Groups  []sysfs.Group
	IOMMUs  []sysfs.IOMMU
	Modules []sysfs.Module
	Cmdline sysfs.Cmdline
	Errs    []string
}

func discover(t *testing.T, root string) discovery {
	t.Helper()
	f, err := sysfs.New(filepath.Join(root, "sys"), sysfs.WithProcRoot(filepath.Join(root, "proc")))
	if err != nil {
		t.Fatal(err)
	}
	var d discovery
	note := func(err error) {
		if err != nil {
			d.Errs = append(d.Errs, err.Error())
		}
	}
	d.Devices, err = f.Devices()
	note(err)
	d.Groups, err = f.Groups()
	note(err)
	d.IOMMUs, err = f.IOMMUs()
	note(err)
	d.Cmdline, err = f.Cmdline()
	note(err)
	for _, name := range sysfs.PassthroughModules() {
		m, err := f.Module(name)
		note(err)
		d.Modules = append(d.Modules, m)
	}
	return d
}

// A snapshot of a tree, unpacked again, reads exactly as the tree does, and
// a snapshot of the snapshot is the same archive.
func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	for _, fixture := range []string{"vtd-guest.txtar", "vtd-guest-sriov.txtar", "bridge-group.txtar", "vtd-guest-captured.txtar", "vtd-guest-bridge-captured.txtar", "vtd-guest-igb-captured.txtar", "vtd-guest-bridge-config-captured.txtar"} {
		t.Run(fixture, func(t *testing.T) {
			t.Parallel()
			root := sysfstest.Build(t, filepath.Join("testdata", fixture))
			a, err := sysfstest.Snapshot(filepath.Join(root, "sys"), filepath.Join(root, "proc"), "test\n")
			if err != nil {
				t.Fatal(err)
			}
			copyRoot := t.TempDir()
			if err := sysfstest.Unpack(copyRoot, a); err != nil {
				t.Fatal(err)
			}
			want, got := discover(t, root), discover(t, copyRoot)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("snapshot reads\n%+v\nwant\n%+v", got, want)
			}
			b, err := sysfstest.Snapshot(filepath.Join(copyRoot, "sys"), filepath.Join(copyRoot, "proc"), "test\n")
			if err != nil {
				t.Fatal(err)
			}
			if string(txtar.Format(a)) != string(txtar.Format(b)) {
				t.Error("snapshot of the snapshot differs")
			}
		})
	}
}
