//go:build hwtests && linux

package hwtest

// Guest test helpers shared by the backends' real-kernel tests: find edu,
// bind it to vfio-pci for the test, DMA buffers, and the kernel's pin
// counters.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/hwtests/edu"
	"github.com/iommu-agent/iommu-agent/ioctl"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

var destructive = flag.Bool("destructive", false, "allow tests to rebind devices to vfio-pci (implied by HWTESTS_STRICT=1)")

const (
	sysPCI  = "/sys/bus/pci"
	page    = 4096
	srcIOVA = 0x100000 // edu reads from here ...
	dstIOVA = 0x101000 // ... and writes back here
)

// Strict reports whether the test runs in the guest, where a skip is a failure.
func Strict() bool { return os.Getenv("HWTESTS_STRICT") == "1" }

// Long reports whether the long tests run at their full size (the
// harness's -long, make test-long); make test runs a shorter size that
// still covers what they check.
func Long() bool { return os.Getenv("HWTESTS_LONG") == "1" }

// NeedBench skips a benchmark written as a guest test unless the harness
// runs benchmarks (its -bench, make bench): make test's boots leave them
// out, for time.
func NeedBench(t *testing.T) {
	t.Helper()
	if os.Getenv("HWTESTS_BENCH") != "1" {
		t.Skip("a benchmark: runs under make bench (hwtests -bench)")
	}
}

// Need fails the test in the guest and skips it elsewhere when err says a
// device, a privilege or a kernel feature is missing; other errors fail.
func Need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	missing := errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) ||
		errors.Is(err, ioctl.ErrNotSupported) || errors.Is(err, iommu.ErrNotSupported)
	if missing && !Strict() {
		t.Skipf("%s: %v", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}

// FindEdu returns every edu function of the machine as an iommu.Device, in
// BDF order. An edu without an iommu_group that no driver has probed yet
// is probed once (see ProbeGroup), so that its group exists.
func FindEdu(t *testing.T) []iommu.Device {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(sysPCI, "devices"))
	Need(t, "list PCI devices", err)
	var out []iommu.Device
	for _, e := range entries {
		dir := filepath.Join(sysPCI, "devices", e.Name())
		if readHex(t, dir, "vendor") != edu.VendorID || readHex(t, dir, "device") != edu.DeviceID {
			continue
		}
		link, err := os.Readlink(filepath.Join(dir, "iommu_group"))
		if errors.Is(err, os.ErrNotExist) && driverOf(e.Name()) == "" {
			ProbeGroup(t, e.Name())
			link, err = os.Readlink(filepath.Join(dir, "iommu_group"))
		}
		if err != nil {
			t.Fatalf("edu %s has no iommu_group (is the IOMMU on?): %v", e.Name(), err)
		}
		g, err := strconv.Atoi(filepath.Base(link))
		if err != nil {
			t.Fatalf("edu %s: iommu_group link %q: %v", e.Name(), link, err)
		}
		out = append(out, iommu.Device{BDF: e.Name(), Group: g})
	}
	if len(out) == 0 {
		Need(t, "find an edu device (QEMU -device edu)", fmt.Errorf("none under %s: %w", sysPCI, os.ErrNotExist))
	}
	return out
}

// ProbeGroup has vfio-pci probe the driverless device bdf and lets it go
// again, leaving it driverless but with an iommu_group. On an SMMUv3
// described by a device tree (Debian's arm64 6.12) the kernel creates a
// PCI device's group only when a driver first probes it (really_probe →
// of_dma_configure → iommu_probe_device), and keeps it after the unbind;
// on VT-d and AMD-Vi every device has its group from boot.
// TestGroupAtBoot pins which lanes behave which way.
func ProbeGroup(t *testing.T, bdf string) {
	t.Helper()
	if !*destructive && !Strict() {
		t.Skipf("%s has no iommu_group until a driver probes it (SMMUv3 with a device tree); run with -destructive to let the test probe it", bdf)
	}
	dir := filepath.Join(sysPCI, "devices", bdf)
	writeSys(t, filepath.Join(dir, "driver_override"), "vfio-pci")
	writeSys(t, filepath.Join(sysPCI, "drivers_probe"), bdf)
	if got := driverOf(bdf); got != "vfio-pci" {
		t.Fatalf("%s: driver %q after the probe, want vfio-pci", bdf, got)
	}
	writeSys(t, filepath.Join(dir, "driver", "unbind"), bdf)
	writeSys(t, filepath.Join(dir, "driver_override"), "\n")
	t.Logf("%s had no iommu_group before a driver probed it; vfio-pci probed it once", bdf)
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

// BindVFIO binds dev to vfio-pci with driver_override and drivers_probe,
// and restores the original driver (or none) when the test ends.
func BindVFIO(t *testing.T, dev iommu.Device) {
	t.Helper()
	if !*destructive && !Strict() {
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

// DMABuffer returns size bytes of memfd-backed shared memory, unmapped when
// the test ends: the only kind of memory the tests let a device reach.
func DMABuffer(t *testing.T, size int) []byte {
	t.Helper()
	fd, err := unix.MemfdCreate("iommu-dma", unix.MFD_CLOEXEC)
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

// Pins are VmPin and VmLck of /proc/self/status in kB: iommufd charges the
// first, type1 the second.
type Pins struct{ Pin, Lck uint64 }

// ReadPins reads the process's Pins.
func ReadPins(t *testing.T) Pins {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var p Pins
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmPin" && name != "VmLck") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("parse %s %q: %v", name, rest, err)
		}
		if name == "VmPin" {
			p.Pin = v
		} else {
			p.Lck = v
		}
	}
	return p
}

// OpenFDs counts the process's open descriptors, so a fault-injection run
// can show a failed setup closed everything it opened.
func OpenFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) - 1 // the directory being read
}

// OpenEdu finds BAR0 and config space of a VFIO device and checks it is edu.
func OpenEdu(t *testing.T, d *vfio.Device) *edu.Device {
	t.Helper()
	bar0, err := d.RegionInfo(uapi.VFIO_PCI_BAR0_REGION_INDEX)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := d.RegionInfo(uapi.VFIO_PCI_CONFIG_REGION_INDEX)
	if err != nil {
		t.Fatal(err)
	}
	e, err := edu.New(d, int64(bar0.Offset), int64(cfg.Offset))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.EnableBusMaster(); err != nil {
		t.Fatal(err)
	}
	return e
}

// RoundTrip has edu copy a random page from src into its buffer and from
// there to dst, and checks every byte arrived in mem (mapped at src with
// dst right after it).
func RoundTrip(t *testing.T, e *edu.Device, mem []byte, src, dst uint64) {
	t.Helper()
	want := make([]byte, page)
	for i := range want {
		want[i] = byte(rand.Uint32())
	}
	copy(mem[:page], want)
	clear(mem[page : 2*page])
	if err := e.ReadFromRAM(src, 0, page); err != nil {
		t.Fatalf("DMA RAM->edu from %#x: %v", src, err)
	}
	if err := e.WriteToRAM(dst, 0, page); err != nil {
		t.Fatalf("DMA edu->RAM to %#x: %v", dst, err)
	}
	if got := mem[page : 2*page]; !bytes.Equal(got, want) {
		t.Fatalf("the page DMAed from %#x to %#x arrived changed", src, dst)
	}
}

// PairOf returns two edu functions that share an iommu_group (same) or do
// not, when the guest has them (-devices edu,bridge:edu,edu has both).
func PairOf(devs []iommu.Device, same bool) ([2]iommu.Device, bool) {
	for i := range devs {
		for j := i + 1; j < len(devs); j++ {
			if (devs[i].Group == devs[j].Group) == same {
				return [2]iommu.Device{devs[i], devs[j]}, true
			}
		}
	}
	return [2]iommu.Device{}, false
}

// NeedPair returns a pair as PairOf does; without one it skips outside the
// guest and, in the guest, ends the test with a log line: the default
// guest has a single edu.
func NeedPair(t *testing.T, same bool) ([2]iommu.Device, bool) {
	t.Helper()
	devs := FindEdu(t)
	p, ok := PairOf(devs, same)
	if !ok {
		what := "two edu functions in two groups (-devices edu,edu)"
		if same {
			what = "two edu functions in one group (-devices bridge:edu,edu)"
		}
		if !Strict() {
			t.Skip("needs " + what)
		}
		t.Logf("this guest lacks %s: %v", what, devs)
	}
	return p, ok
}

// SweepSetup proves a multi-step setup unwinds: setup(-1) runs it whole and
// returns the names of its steps; setup(n) must fail with the injected
// syscall.EIO at step n. After each failure no fd may stay open and no
// page pinned, and the next full setup must work.
func SweepSetup(t *testing.T, setup func(failAt int) (steps []string, err error)) {
	t.Helper()
	before, fds := ReadPins(t), OpenFDs(t)
	steps, err := setup(-1)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	t.Logf("setup steps: %v", steps)
	for n := range steps {
		_, err := setup(n)
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("setup failing at step %d (%s) = %v; want the injected error", n, steps[n], err)
		}
		if got := OpenFDs(t); got != fds {
			t.Errorf("after failing at %s: %d fds open, %d before", steps[n], got, fds)
		}
		if got := ReadPins(t); got != before {
			t.Errorf("after failing at %s: pins %+v, %+v before", steps[n], got, before)
		}
		if _, err := setup(-1); err != nil {
			t.Errorf("setup after failing at %s: %v", steps[n], err)
		}
	}
	t.Logf("failed each of %d steps; every next setup worked", len(steps))
}

// ConcurrentMapUnmap attaches dev to a new address space of b and maps and
// unmaps a page from several goroutines: every call must succeed and
// nothing may stay mapped. The kernel backends share it, since the check
// speaks only the iommu interface.
func ConcurrentMapUnmap(t *testing.T, b iommu.Backend, dev iommu.Device) {
	t.Helper()
	ctx := context.Background()
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Attach(ctx, dev); err != nil {
		t.Fatal(err)
	}
	const workers, rounds, page = 4, 50, 4096
	mem := DMABuffer(t, workers*page)
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			m := iommu.Mapping{Mem: mem[w*page : (w+1)*page], Perm: iommu.Read | iommu.Write}
			for range rounds {
				iova, err := as.Map(ctx, m)
				if err != nil {
					errs <- err
					return
				}
				if n, err := as.Unmap(ctx, iova, page); err != nil || n != page {
					errs <- fmt.Errorf("unmap %#x = %d, %w", iova, n, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n, err := as.Unmap(ctx, 0, math.MaxUint64); err != nil || n != 0 {
		t.Errorf("Unmap all after the workers = %d, %v; want nothing left", n, err)
	}
}
