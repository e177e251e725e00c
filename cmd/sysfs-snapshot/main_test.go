//go:build !hwtests

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/tools/txtar"
)

func fixedNow() time.Time { return time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC) }

// A capture of a fixture tree lists its devices in the header and holds
// the tree's files.
func TestRun(t *testing.T) {
	t.Parallel()
	root := sysfstest.Build(t, filepath.Join("..", "..", "sysfs", "testdata", "bridge-group.txtar"))
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-sysfs", filepath.Join(root, "sys"), "-proc", filepath.Join(root, "proc"), "-note", "QEMU devices: bridge:edu,e1000"}, &out, &errOut, fixedNow)
	if err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	a := txtar.Parse(out.Bytes())
	h := string(a.Comment)
	for _, want := range []string{"Captured by cmd/sysfs-snapshot, 2026-11-26.", "QEMU devices: bridge:edu,e1000",
		"0000:02:02.0 8086:100e 020000 e1000 5", "0000:00:06.0 1234:11e8 00ff00 - -"} {
		if !strings.Contains(h, want) {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	var has bool
	for _, f := range a.Files {
		has = has || f.Name == "sys/kernel/iommu_groups/5/devices/0000:02:02.0@"
	}
	if !has || len(a.Files) < 50 {
		t.Errorf("capture holds %d files, group 5's e1000 link %v", len(a.Files), has)
	}
}

func TestRunBadArgs(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"extra"}, {"-sysfs", filepath.Join(t.TempDir(), "missing")}, {"-bogus"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}, fixedNow); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
