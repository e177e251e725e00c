//go:build hwtests && linux

package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
)

// guestCLoop is where the harness puts the C helper:
//
//	go run ./hwtests/vm/cmd/hwtests -devices edu,edu -pkgs ./agent/bench \
//	    -cprog agent/bench/cloop/cloop.c:/bin/cloop -run TestGuest -ioctl-coverage off
const guestCLoop = "/bin/cloop"

// guestEnv binds every edu to vfio-pci and returns an Env over them,
// with the prebuilt C helper when the harness put one in.
func guestEnv(t *testing.T) *Env {
	t.Helper()
	e := &Env{Quick: true, Progress: func(f string, a ...any) { t.Logf(f, a...) }}
	for _, d := range hwtest.FindEdu(t) {
		hwtest.BindVFIO(t, d)
		e.Devices = append(e.Devices, d.BDF)
	}
	if _, err := os.Stat(guestCLoop); err == nil {
		e.CHelper = guestCLoop
	}
	return e
}

// logReport logs the table and checks every row that ran: a positive
// value, base and ratio. Timings are never asserted.
func logReport(t *testing.T, rep Report) (ran int) {
	t.Helper()
	var b strings.Builder
	if err := WriteText(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Rows {
		if r.Note != "" {
			fmt.Fprintf(&b, "%s: %s\n", r.Name, r.Note)
		}
	}
	t.Logf("\n%s", b.String())
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			continue
		}
		ran++
		if !(r.Value > 0 && r.Base > 0 && r.Ratio > 0) {
			t.Errorf("%s: value %v, base %v, ratio %v: want all positive", r.Name, r.Value, r.Base, r.Ratio)
		}
	}
	return ran
}

func TestGuestGoVsC(t *testing.T) {
	hwtest.NeedBench(t)
	e := guestEnv(t)
	if e.CHelper == "" && hwtest.Strict() {
		t.Fatalf("no %s: run hwtests with -cprog agent/bench/cloop/cloop.c:%s", guestCLoop, guestCLoop)
	}
	// Full rounds: the ratios under TCG are noisy, and the rows are short.
	e.Quick = false
	rep := Run(context.Background(), e, []Bench{GoVsC()})
	logReport(t, rep)
	for _, r := range rep.Rows {
		// 1 GiB may not fit in the guest's RAM; everything else must run.
		if r.Skipped != "" && !strings.HasPrefix(r.Skipped, "needs 1 GiB") {
			t.Errorf("%s: skipped: %s", r.Name, r.Skipped)
		}
	}
	if n := len(rep.Rows); n != 9 {
		t.Errorf("%d rows, want 9 (3 kinds x 3 sizes)", n)
	}
}

// setSys writes value to a sysfs or procfs file for the test and puts the
// old value back after it.
func setSys(t *testing.T, path, value string) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		t.Fatalf("write %q to %s: %v", value, path, err)
	}
	t.Cleanup(func() {
		v := strings.TrimSpace(string(old))
		if sel := selected(v); sel != v {
			v = sel // shmem_enabled reads "a [b] c" and takes "b"
		}
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			t.Errorf("restore %s to %q: %v", path, v, err)
		}
	})
}

// TestGuestGuestRAM maps 1 GiB of guest RAM (quick) with every backing:
// the test lets shmem use THP on advice, reserves 1 GiB of huge pages
// when the guest has the memory (boot it with -m 4G), and raises type1's
// entry limit so 4 KiB chunks of 1 GiB fit.
func TestGuestGuestRAM(t *testing.T) {
	hwtest.NeedBench(t)
	e := guestEnv(t)
	setSys(t, "/sys/kernel/mm/transparent_hugepage/shmem_enabled", "advise")
	setSys(t, "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit", "1000000")
	mi, err := meminfo()
	if err != nil {
		t.Fatal(err)
	}
	reserved := mi["MemAvailable"] >= gib+gib+ramHeadroom
	if reserved {
		setSys(t, "/proc/sys/vm/nr_hugepages", "512")
	} else {
		t.Logf("MemAvailable %d MiB: no huge pages reserved (boot with -m 4G for the hugetlbfs rows)", mi["MemAvailable"]/mib)
	}
	rep := Run(context.Background(), e, []Bench{GuestRAM()})
	if logReport(t, rep) == 0 {
		t.Error("no row ran")
	}
	for _, r := range rep.Rows {
		// IOMMU_IOAS_MAP_FILE is 6.13; the Debian lanes boot 6.12.
		if r.Skipped != "" && (reserved || !strings.Contains(r.Skipped, "huge pages")) && !strings.Contains(r.Skipped, "IOMMU_IOAS_MAP_FILE") {
			t.Errorf("%s: skipped: %s", r.Name, r.Skipped)
		}
	}
}

// TestGuestSyscallPath tells where the Go side's cost over C goes on an
// IOAS alone (the cheapest ioctl, so the most sensitive): the same
// IOAS_MAP+UNMAP through our layer, through a bare unix.Syscall, and
// through unix.RawSyscall (which skips the runtime's entersyscall and
// exitsyscall), each against the C loop. Logged, never asserted.
func TestGuestSyscallPath(t *testing.T) {
	hwtest.NeedBench(t)
	e := guestEnv(t)
	e.Quick = false
	ctx := context.Background()
	bin, done, err := e.cloop(ctx)
	if err != nil {
		t.Skip(err)
	}
	defer done()
	s, err := openIOMMUFD(ctx, nil)
	hwtest.Need(t, "open iommufd", err)
	defer s.Close()
	mem, err := newMemfd("syscall-path", pg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	fd := uintptr(s.fd.Int())
	mapArg := uapi.IOMMUIOASMap{Size: uint32(unsafe.Sizeof(uapi.IOMMUIOASMap{})),
		Flags:  uint32(iommufd.FixedIOVA | iommufd.Readable | iommufd.Writeable),
		IOASID: uint32(s.ioas), UserVA: uint64(uintptr(unsafe.Pointer(&mem.mem[0]))), Length: pg}
	unmapArg := uapi.IOMMUIOASUnmap{Size: uint32(unsafe.Sizeof(uapi.IOMMUIOASUnmap{})), IOASID: uint32(s.ioas)}
	// ioctl issues one request the way raw says; the pointer converts
	// in the call's argument list, where the unsafe rules keep it valid.
	ioctl := func(raw bool, req uintptr, arg unsafe.Pointer) unix.Errno {
		var e unix.Errno
		if raw {
			_, _, e = unix.RawSyscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
		} else {
			_, _, e = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
		}
		return e
	}
	bare := func(raw bool) func(int) error {
		return func(n int) error {
			for range n {
				m, u := mapArg, unmapArg
				m.IOVA, u.IOVA, u.Length = cloopIOVA, cloopIOVA, pg
				if e := ioctl(raw, uapi.IOMMU_IOAS_MAP, unsafe.Pointer(&m)); e != 0 {
					return e
				}
				if e := ioctl(raw, uapi.IOMMU_IOAS_UNMAP, unsafe.Pointer(&u)); e != 0 {
					return e
				}
			}
			return nil
		}
	}
	sides := iommufdSides(s.fd, s.ioas)
	for _, c := range []struct {
		name string
		loop func(int) error
	}{
		{"ioctl/iommufd", func(n int) error { return sides.goLoop(mem.mem, n) }},
		{"unix.Syscall", bare(false)},
		{"unix.RawSyscall", bare(true)},
	} {
		f, err := sides.file()
		if err != nil {
			t.Fatal(err)
		}
		mf, err := mem.file()
		if err != nil {
			t.Fatal(err)
		}
		cl, err := startCLoop(bin, sides.cArgs(pg), f, mf)
		f.Close()
		mf.Close()
		if err != nil {
			t.Fatal(err)
		}
		v, b, err := compareTimed(e.timing(), func(n int) (time.Duration, error) {
			start := time.Now()
			err := c.loop(n)
			return time.Since(start), err
		}, cl.run)
		if cerr := cl.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("IOAS alone, 4 KiB map+unmap: %-16s %8.0f ns, C %8.0f ns, ratio %.3f", c.name, v, b, v/b)
	}
}
