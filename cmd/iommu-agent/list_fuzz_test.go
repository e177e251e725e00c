//go:build !hwtests

package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

// FuzzList runs list's inventory over the tiny hostile trees of
// sysfstest.BuildHostile (sysfs's FuzzTree checks discovery itself) and
// checks what the user is told: every device discovery found is listed,
// and a group with errors, or whose members cannot be read, is never
// viable. (Its reserved_regions may be unreadable: the kernel, not
// this file, keeps mappings out of those ranges.)
func FuzzList(f *testing.F) {
	f.Add([]byte{})
	for c := range byte(12) {
		f.Add([]byte{c, 1, c, c, c, c, c, 0, c, c, c, c, 2, c, c, c, c, c, c, c})
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 128 {
			return
		}
		dir := t.TempDir()
		if d, err := os.MkdirTemp("/dev/shm", "list-fuzz-"); err == nil { // tmpfs: see sysfs's FuzzTree
			t.Cleanup(func() { os.RemoveAll(d) })
			dir = d
		}
		h, err := sysfstest.BuildHostile(dir, b)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := sysfs.New(h.Root)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		inv, err := inventory(ctx, fs)
		if err != nil {
			t.Fatalf("inventory: %v", err)
		}
		devs, _ := fs.Scan()
		listed := map[string]bool{}
		for _, g := range allGroups(inv) {
			for _, d := range g.Devices {
				listed[d.Address] = true
			}
			if g.Viable && len(g.Errors) > 0 {
				t.Errorf("group %d viable with errors %q", g.Number, g.Errors)
			}
			// Viability may say otherwise: it reads each member's driver
			// link and class, list its uevent, and a hostile tree makes
			// them disagree.
			if grp, err := fs.Group(g.Number); g.Viable && (err != nil && grp.Number != g.Number || grp.DevicesErr != nil) {
				t.Errorf("group %d viable in list, members unreadable: %v", g.Number, err)
			}
		}
		for _, d := range inv.UngroupedDevices {
			listed[d.Address] = true
		}
		for _, d := range devs {
			if !listed[d.Address.String()] {
				t.Errorf("device %s not listed", d.Address)
			}
		}
	})
}

func allGroups(inv Inventory) []InvGroup {
	gs := append([]InvGroup(nil), inv.OtherGroups...)
	for _, u := range inv.IOMMUs {
		gs = append(gs, u.Groups...)
	}
	return gs
}
