package sysfs_test

import (
	"errors"
	"os"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

// FuzzTree runs discovery over tiny trees whose shape the fuzzer decides
// (sysfstest.BuildHostile: entries missing, links out of the tree and in
// loops, FIFOs, /dev/zero, oversized files, garbage text) and checks what
// must hold on any tree: no panic, no hang, every device with an entry in
// bus/pci/devices listed, short errors, and a group with unknown members
// never viable.
func FuzzTree(f *testing.F) {
	f.Add([]byte{})
	for c := range byte(12) {
		f.Add([]byte{c, 1, c, c, c, c, c, 0, c, c})
		f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, c, c, 8*c + 7, c, c, 8*c + 7, 1})
	}
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00DRIVER=a/b\nPCI_CLASS=1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 128 {
			return // the shape takes 40 bytes; the rest is one file's text
		}
		h, err := sysfstest.BuildHostile(scratch(t), b)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := sysfs.New(h.Root)
		if err != nil {
			t.Fatal(err)
		}
		var devs []sysfs.Device
		var groups []sysfs.Group
		var errs []error
		verdicts := map[int]sysfs.Verdict{}
		within(t, "discovery", func() {
			var err error
			devs, err = fs.Devices()
			errs = append(errs, err)
			groups, err = fs.Groups()
			errs = append(errs, err)
			_, err = fs.IOMMUs()
			errs = append(errs, err)
			for _, g := range groups {
				v, err := fs.Viability(g.Number)
				if err != nil && v.Viable {
					t.Errorf("Viability(%d) = %v with error %v", g.Number, v, err)
				}
				verdicts[g.Number] = v
			}
		})
		if err := errors.Join(errs...); err != nil && len(err.Error()) > 16<<10 {
			t.Errorf("error of %d bytes", len(err.Error()))
		}
		found := map[string]bool{}
		for _, d := range devs {
			found[d.Address.String()] = true
		}
		for _, name := range h.Devices {
			if !found[name] {
				t.Errorf("device %s not listed; listed %v", name, found)
			}
		}
		ix := sysfs.NewIndex(devs)
		for _, g := range groups {
			v, ok := ix.Viability(g)
			if g.DevicesErr != nil && (!ok || v.Viable) {
				t.Errorf("group %d with unreadable members (%v): ViabilityOf %v, %v", g.Number, g.DevicesErr, v, ok)
			}
		}
	})
}

// scratch returns a directory for one input's tree, removed after it: on
// /dev/shm when there is one, since a tree takes 0.8 ms to build on tmpfs
// and 18 ms on the disk of this project's CI machine, which would make a
// fuzz run of 50,000 inputs take 15 minutes; else under t.TempDir().
func scratch(t *testing.T) string {
	if d, err := os.MkdirTemp("/dev/shm", "sysfs-fuzz-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return t.TempDir()
}
