package sysfstest_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/tools/txtar"
)

func TestUnpack(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a := txtar.Parse([]byte("comment\n-- a/b/file --\nhello\n-- a/link@ --\nb/file\n-- a/empty/ --\n"))
	if err := sysfstest.Unpack(root, a); err != nil {
		t.Fatal(err)
	}
	if tgt, err := os.Readlink(filepath.Join(root, "a/link")); err != nil || tgt != "b/file" {
		t.Errorf("link -> %q, %v", tgt, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "a/link")); err != nil || string(b) != "hello\n" {
		t.Errorf("through link: %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(root, "a/empty")); err != nil || !st.IsDir() {
		t.Errorf("empty dir: %v", err)
	}
	for _, bad := range []string{"-- ../x --\n", "-- /etc/x --\n", "-- a/../../x --\n"} {
		if err := sysfstest.Unpack(t.TempDir(), txtar.Parse([]byte(bad))); err == nil {
			t.Errorf("Unpack(%q): no error", bad)
		}
	}
}

func TestKernelFailAt(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	k := &sysfstest.Kernel{Root: root, FailAt: 2}
	p := filepath.Join(root, "attr")
	for i, want := range []error{nil, sysfstest.ErrInjected, nil} {
		if err := k.WriteAttr(p, "v"); !errors.Is(err, want) {
			t.Errorf("write %d: %v, want %v", i+1, err, want)
		}
	}
	if len(k.Writes()) != 3 {
		t.Errorf("writes %q", k.Writes())
	}
	if err := k.WriteAttr("/elsewhere", "v"); err == nil {
		t.Error("write outside Root: no error")
	}
}
