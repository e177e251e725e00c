//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
)

// buildTestCLoop compiles cloop.c with the host's compiler, or skips.
func buildTestCLoop(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil && os.Getenv("CC") == "" {
		t.Skip("no C compiler")
	}
	bin, err := buildCLoop(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestCLoopNumbers: the C side uses the request numbers and struct sizes
// of ioctl/uapi, so both sides make the same calls.
func TestCLoopNumbers(t *testing.T) {
	bin := buildTestCLoop(t)
	out, err := exec.Command(bin, "numbers").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("IOMMU_IOAS_MAP %#x %d\nIOMMU_IOAS_UNMAP %#x %d\nVFIO_IOMMU_MAP_DMA %#x %d\nVFIO_IOMMU_UNMAP_DMA %#x %d\n",
		uapi.IOMMU_IOAS_MAP, unsafe.Sizeof(uapi.IOMMUIOASMap{}),
		uapi.IOMMU_IOAS_UNMAP, unsafe.Sizeof(uapi.IOMMUIOASUnmap{}),
		uapi.VFIO_IOMMU_MAP_DMA, unsafe.Sizeof(uapi.VFIOIOMMUType1DMAMap{}),
		uapi.VFIO_IOMMU_UNMAP_DMA, unsafe.Sizeof(uapi.VFIOIOMMUType1DMAUnmap{}))
	if string(out) != want {
		t.Errorf("cloop numbers:\n%s\nwant:\n%s", out, want)
	}
}

// TestCLoopProtocol runs cloop on an fd that is no iommufd: it maps the
// memfd, answers each count, and the ioctl's errno comes back as such.
func TestCLoopProtocol(t *testing.T) {
	bin := buildTestCLoop(t)
	mem, err := newMemfd("test", 2*pg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := mem.file()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"iommufd", "3", "1", "4", "8192", "1073741824"},
		{"type1", "3", "4", "8192", "1073741824"},
	} {
		c, err := startCLoop(bin, args, null, mf)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := c.run(3); !errors.Is(err, unix.ENOTTY) {
				t.Errorf("%s: run on /dev/null: %v, want ENOTTY", args[0], err)
			}
		}
		// No work at all still answers, with a time.
		if d, err := c.run(0); err != nil || d < 0 {
			t.Errorf("%s: run(0) = %v, %v", args[0], d, err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("%s: %v", args[0], err)
		}
	}
	null.Close()
	mf.Close()

	// A memfd it cannot map is reported before any count.
	c, err := startCLoop(bin, []string{"type1", "0", "0", "8192", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(1); err == nil || !strings.Contains(err.Error(), "mmap the memfd") {
		t.Errorf("run with stdin as the memfd: %v", err)
	}
	if err := c.Close(); err == nil {
		t.Error("cloop exited 0 after failing")
	}
	c, err = startCLoop(bin, []string{"bogus"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(1); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "usage") {
		t.Errorf("run with bad arguments: %v", err)
	}
	if err := c.Close(); err == nil {
		t.Error("cloop exited 0 on bad arguments")
	}
}

func TestParseCLoop(t *testing.T) {
	if d, err := parseCLoop("ok 1234\n"); err != nil || d != 1234*time.Nanosecond {
		t.Errorf("ok 1234: %v, %v", d, err)
	}
	if _, err := parseCLoop("err 12\n"); !errors.Is(err, unix.ENOMEM) {
		t.Errorf("err 12: %v, want ENOMEM", err)
	}
	if _, err := parseCLoop("err 9 mmap the memfd\n"); !errors.Is(err, unix.EBADF) || !strings.Contains(err.Error(), "mmap the memfd") {
		t.Errorf("err 9 mmap: %v", err)
	}
	for _, bad := range []string{"", "ok", "ok -1", "ok x", "err", "err x", "hello 1"} {
		if _, err := parseCLoop(bad); err == nil {
			t.Errorf("parseCLoop(%q) took it", bad)
		}
	}
}

// TestCompareTimed: self-timed ops whose reported costs differ by a known
// factor give that ratio, whatever the wall clock says.
func TestCompareTimed(t *testing.T) {
	op := func(perOp time.Duration) timedOp {
		return func(n int) (time.Duration, error) { return time.Duration(n) * perOp, nil }
	}
	v, b, err := compareTimed(timing{rounds: 3, round: time.Millisecond}, op(3*time.Microsecond), op(2*time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	if v != 3000 || b != 2000 {
		t.Errorf("compareTimed = %v, %v ns/op, want 3000, 2000", v, b)
	}
	boom := errors.New("boom")
	if _, _, err := compareTimed(timing{rounds: 3, round: time.Millisecond}, op(time.Microsecond),
		func(int) (time.Duration, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("failing baseline: %v", err)
	}
}

func TestGoVsCWithoutCompiler(t *testing.T) {
	t.Setenv("CC", "/nonexistent/cc")
	e := &Env{}
	if _, _, err := e.cloop(context.Background()); !errors.Is(err, errNoCC) {
		t.Errorf("cloop without a compiler: %v, want errNoCC", err)
	}
	e.CHelper = "/prebuilt/cloop"
	if bin, done, err := e.cloop(context.Background()); err != nil || bin != "/prebuilt/cloop" {
		t.Errorf("cloop with CHelper: %q, %v", bin, err)
	} else {
		done()
	}
}

func TestParseMeminfo(t *testing.T) {
	m := parseMeminfo([]byte("MemTotal:        2014596 kB\nMemAvailable:    1702444 kB\nHugePages_Free:      512\nHugepagesize:       2048 kB\nbad line\n"))
	if m["MemAvailable"] != 1702444*1024 || m["HugePages_Free"] != 512 || m["Hugepagesize"] != 2*mib {
		t.Errorf("parseMeminfo = %v", m)
	}
}

func TestSizeName(t *testing.T) {
	for n, want := range map[uint64]string{pg: "4 KiB", 2 * mib: "2 MiB", gib: "1 GiB", 3 * gib: "3 GiB", 1536 * mib: "1536 MiB", 100: "100 bytes"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestKernelGroupsWithoutKernel: on a machine with no iommufd and no
// device the kernel groups say why in skipped rows or an error, and
// measure nothing.
func TestKernelGroupsWithoutKernel(t *testing.T) {
	if _, err := os.Stat("/dev/iommu"); err == nil {
		t.Skip("this machine has /dev/iommu: the guest tests cover it")
	}
	buildTestCLoop(t)
	rows, err := GoVsC().Run(context.Background(), &Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows %+v, want one skipped row per kind", rows)
	}
	for _, r := range rows {
		if r.Skipped == "" || r.Value != 0 {
			t.Errorf("%s: ran without a kernel: %+v", r.Name, r)
		}
	}
	if !strings.Contains(rows[0].Skipped, "vfio-pci") || !strings.Contains(rows[1].Skipped, "iommufd") {
		t.Errorf("skip reasons: %q, %q", rows[0].Skipped, rows[1].Skipped)
	}
	if _, err := GuestRAM().Run(context.Background(), &Env{}); !errors.Is(err, errNoDevice) {
		t.Errorf("guest-ram without a device: %v, want errNoDevice", err)
	}
	if _, err := GuestRAM().Run(context.Background(), &Env{Devices: []string{"0000:ff:1f.7"}}); err == nil {
		t.Error("guest-ram with a device that does not exist ran")
	}
}
