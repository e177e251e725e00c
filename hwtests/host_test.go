//go:build hwtests && linux

package hwtests

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/hwtests/edu"
	"github.com/iommu-agent/iommu-agent/ioctl"
)

var destructive = flag.Bool("destructive", false, "allow tests to rebind devices to vfio-pci (implied by HWTESTS_STRICT=1)")

// strict reports whether the test runs in the guest, where a skip is a failure.
func strict() bool { return os.Getenv("HWTESTS_STRICT") == "1" }

// need fails the test in the guest and skips it elsewhere when err says a
// device, a privilege or a kernel feature is missing; other errors fail.
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	missing := errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, ioctl.ErrNotSupported)
	if missing && !strict() {
		t.Skipf("%s: %v", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}

const sysPCI = "/sys/bus/pci"

// pciDevice is what a test knows of a PCI function from sysfs.
type pciDevice struct {
	BDF   string
	Group int
}

// findEdu returns every edu function of the machine, in BDF order.
func findEdu(t *testing.T) []pciDevice {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(sysPCI, "devices"))
	need(t, "list PCI devices", err)
	var out []pciDevice
	for _, e := range entries {
		dir := filepath.Join(sysPCI, "devices", e.Name())
		if readHex(t, dir, "vendor") != edu.VendorID || readHex(t, dir, "device") != edu.DeviceID {
			continue
		}
		link, err := os.Readlink(filepath.Join(dir, "iommu_group"))
		if err != nil {
			t.Fatalf("edu %s has no iommu_group (is the IOMMU on?): %v", e.Name(), err)
		}
		g, err := strconv.Atoi(filepath.Base(link))
		if err != nil {
			t.Fatalf("edu %s: iommu_group link %q: %v", e.Name(), link, err)
		}
		out = append(out, pciDevice{BDF: e.Name(), Group: g})
	}
	if len(out) == 0 {
		need(t, "find an edu device (QEMU -device edu)", fmt.Errorf("none under %s: %w", sysPCI, os.ErrNotExist))
	}
	return out
}

func readHex(t *testing.T, dir, name string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read %s/%s: %v", dir, name, err)
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"), 16, 64)
	if err != nil {
		t.Fatalf("parse %s/%s: %v", dir, name, err)
	}
	return v
}

func driverOf(bdf string) string {
	link, err := os.Readlink(filepath.Join(sysPCI, "devices", bdf, "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(link)
}

// bindVFIO binds dev to vfio-pci with driver_override and drivers_probe,
// and restores the original driver (or none) when the test ends. The agent's
// own binding code lives in sysfs/; this is the minimum the ioctl tests need.
func bindVFIO(t *testing.T, dev pciDevice) {
	t.Helper()
	if !*destructive && !strict() {
		t.Skip("rebinds a device: run with -destructive")
	}
	dir := filepath.Join(sysPCI, "devices", dev.BDF)
	orig := driverOf(dev.BDF)
	if orig == "vfio-pci" {
		return
	}
	if orig != "" {
		writeSys(t, filepath.Join(dir, "driver", "unbind"), dev.BDF)
	}
	writeSys(t, filepath.Join(dir, "driver_override"), "vfio-pci")
	writeSys(t, filepath.Join(sysPCI, "drivers_probe"), dev.BDF)
	t.Cleanup(func() {
		if driverOf(dev.BDF) != "" {
			writeSys(t, filepath.Join(dir, "driver", "unbind"), dev.BDF)
		}
		writeSys(t, filepath.Join(dir, "driver_override"), "\n")
		if orig != "" {
			writeSys(t, filepath.Join(sysPCI, "drivers_probe"), dev.BDF)
		}
		if got := driverOf(dev.BDF); got != orig {
			t.Errorf("%s: driver %q after cleanup, want %q", dev.BDF, got, orig)
		}
	})
	if got := driverOf(dev.BDF); got != "vfio-pci" {
		t.Fatalf("%s: driver %q after binding, want vfio-pci", dev.BDF, got)
	}
}

func writeSys(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatalf("write %q to %s: %v", value, path, err)
	}
}

// cdevPath returns /dev/vfio/devices/vfioN of a device bound to vfio-pci.
func cdevPath(t *testing.T, dev pciDevice) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(sysPCI, "devices", dev.BDF, "vfio-dev"))
	need(t, "VFIO device cdev of "+dev.BDF, err)
	if len(entries) != 1 {
		t.Fatalf("%s: %d entries in vfio-dev, want 1", dev.BDF, len(entries))
	}
	return filepath.Join("/dev/vfio/devices", entries[0].Name())
}

// dmaBuffer returns size bytes of memfd-backed shared memory, unmapped when
// the test ends: the only kind of memory the tests let a device reach.
func dmaBuffer(t *testing.T, size int) []byte {
	t.Helper()
	fd, err := unix.MemfdCreate("hwtests-dma", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		t.Fatalf("ftruncate memfd: %v", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap memfd: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Munmap(mem); err != nil {
			t.Errorf("munmap: %v", err)
		}
	})
	return mem
}

// procStatusKB reads a "kB" field of /proc/self/status: VmPin is what
// iommufd charges, VmLck what type1 charges.
func procStatusKB(t *testing.T, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("parse %s %q: %v", field, rest, err)
		}
		return v
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// kmsg reads the kernel log from the current end on, for DMA fault reports.
type kmsg struct{ fd int }

func openKmsg(t *testing.T) *kmsg {
	t.Helper()
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	need(t, "open /dev/kmsg", err)
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		t.Fatalf("seek /dev/kmsg: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &kmsg{fd: fd}
}

// waitFor returns the first new log line containing every one of words,
// polling until timeout. A blocking read of /dev/kmsg would never end.
func (k *kmsg) waitFor(t *testing.T, timeout time.Duration, words ...string) string {
	t.Helper()
	buf := make([]byte, 8192)
	var seen []string
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Read(k.fd, buf)
		switch {
		case err == nil:
			// One record per read: "prio,seq,usec,flags;message\n".
			_, msg, _ := strings.Cut(string(buf[:n]), ";")
			msg = strings.TrimSpace(msg)
			seen = append(seen, msg)
			if containsAll(msg, words) {
				return msg
			}
			continue
		case errors.Is(err, unix.EAGAIN):
		case errors.Is(err, unix.EPIPE): // overwritten records: go on
			continue
		default:
			t.Fatalf("read /dev/kmsg: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kernel log line with %q within %v; saw:\n%s", words, timeout, strings.Join(seen, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
