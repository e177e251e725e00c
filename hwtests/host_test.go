//go:build hwtests && linux

package hwtests

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
)

const sysPCI = "/sys/bus/pci"

// cdevPath returns /dev/vfio/devices/vfioN of a device bound to vfio-pci.
func cdevPath(t *testing.T, dev iommu.Device) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(sysPCI, "devices", dev.BDF, "vfio-dev"))
	hwtest.Need(t, "VFIO device cdev of "+dev.BDF, err)
	if len(entries) != 1 {
		t.Fatalf("%s: %d entries in vfio-dev, want 1", dev.BDF, len(entries))
	}
	return filepath.Join("/dev/vfio/devices", entries[0].Name())
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
	hwtest.Need(t, "open /dev/kmsg", err)
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		t.Fatalf("seek /dev/kmsg: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &kmsg{fd: fd}
}

// match returns the first line of a new log record for which ok says
// true, polling until timeout (a blocking read of /dev/kmsg would never
// end); false, with every line seen logged, when none did. Records come one
// per read, "prio,seq,usec,flags;message", device records followed by
// " SUBSYSTEM=..." lines that are not passed on.
func (k *kmsg) match(t *testing.T, timeout time.Duration, ok func(line string) bool) (string, bool) {
	t.Helper()
	buf := make([]byte, 8192)
	var seen []string
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Read(k.fd, buf)
		switch {
		case err == nil:
			_, msg, _ := strings.Cut(string(buf[:n]), ";")
			msg, _, _ = strings.Cut(msg, "\n")
			msg = strings.TrimSpace(msg)
			seen = append(seen, msg)
			if ok(msg) {
				return msg, true
			}
			continue
		case errors.Is(err, unix.EAGAIN):
		case errors.Is(err, unix.EPIPE): // overwritten records: go on
			continue
		default:
			t.Fatalf("read /dev/kmsg: %v", err)
		}
		if time.Now().After(deadline) {
			t.Logf("no matching kernel log line within %v; saw:\n%s", timeout, strings.Join(seen, "\n"))
			return "", false
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
