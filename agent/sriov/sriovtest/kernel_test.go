//go:build !hwtests

package sriovtest_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/sriov/sriovtest"
)

// TestKernelRefusesAsLinux: the errnos agent/sriov's guest test sees
// from the real sriov_numvfs_store.
func TestKernelRefusesAsLinux(t *testing.T) {
	t.Parallel()
	h := sriovtest.NewHost(t, "../testdata/igb-2vfs.txtar")
	numvfs := filepath.Join(h.Root, "bus", "pci", "devices", "0000:01:00.0", "sriov_numvfs")
	for _, w := range []struct {
		value string
		errno syscall.Errno
	}{{"3", syscall.EBUSY}, {"8", syscall.ERANGE}, {"two", syscall.EINVAL}} {
		if err := h.Kernel.WriteAttr(numvfs, w.value); !errors.Is(err, w.errno) {
			t.Errorf("write %s with 2 VFs: %v, want %v", w.value, err, w.errno)
		}
	}
	if err := h.Kernel.WriteAttr(numvfs, "2"); err != nil {
		t.Errorf("writing the current count: %v", err)
	}
	// Without the PF driver no count changes.
	if err := os.Remove(filepath.Join(h.Root, "bus", "pci", "devices", "0000:01:00.0", "driver")); err != nil {
		t.Fatal(err)
	}
	if err := h.Kernel.WriteAttr(numvfs, "0"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("write 0 without a PF driver: %v, want ENOENT", err)
	}
	if l, err := h.Links.LinkByName("eth0"); err != nil || len(l.Attrs().Vfs) != 2 {
		t.Errorf("eth0: %v %v", l, err)
	}
}
