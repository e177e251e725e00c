//go:build hwtests && linux

package iommufd

// Device-less checks against a real /dev/iommu, run by hwtests/vm in the
// guest: an IOAS with no device attached still maps, copies and unmaps,
// and the kernel's size checks need no device either. Expected errnos
// are those of iommufd.h and tools/testing/selftests/iommu/iommufd.c.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/iommu-agent/iommu-agent/ioctl"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

// openKernel opens /dev/iommu. Where it is missing the test skips, except
// in the guest (HWTESTS_STRICT=1), where everything is known present.
func openKernel(t *testing.T) *FD {
	t.Helper()
	fd, err := Open(DefaultPath)
	if err != nil {
		if (errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission)) && os.Getenv("HWTESTS_STRICT") != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	return fd
}

// unsupportedHere reports whether err says the running kernel lacks the
// ioctl, and fails the test when the kernel is at least as new as the
// release the error names: there "not supported" is a wrong answer (the
// own kernel's lane runs 7.3, which has every ioctl we wrap).
func unsupportedHere(t *testing.T, err error) bool {
	t.Helper()
	var ue *ioctl.UnsupportedError
	if !errors.As(err, &ue) {
		return false
	}
	var u unix.Utsname
	if uerr := unix.Uname(&u); uerr != nil {
		t.Fatal(uerr)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var maj, mnr, wantMaj, wantMnr int
	if _, perr := fmt.Sscanf(rel, "%d.%d", &maj, &mnr); perr != nil {
		t.Fatalf("kernel release %q: %v", rel, perr)
	}
	if _, perr := fmt.Sscanf(ue.MinKernel, "%d.%d", &wantMaj, &wantMnr); perr != nil {
		t.Fatalf("%v: MinKernel %q: %v", err, ue.MinKernel, perr)
	}
	if maj > wantMaj || maj == wantMaj && mnr >= wantMnr {
		t.Errorf("%v, on Linux %s", err, rel)
	}
	return true
}

func wantErrno(t *testing.T, what string, err error, errno unix.Errno) {
	t.Helper()
	if !errors.Is(err, errno) {
		t.Errorf("%s: %v, want %s", what, err, unix.ErrnoName(errno))
	}
}

func TestKernelIOASMapCopyUnmap(t *testing.T) {
	fd := openKernel(t)
	ioas, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}

	ranges, align, err := fd.IOVARanges(ioas)
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) != 1 || ranges[0].Start != 0 || ranges[0].Last != math.MaxUint64 || align != 1 {
		t.Errorf("fresh IOAS: ranges %v, alignment %d; want one full range, alignment 1", ranges, align)
	}
	if on, err := fd.HugePages(ioas); err != nil || !on {
		t.Errorf("HugePages default: %v, %v", on, err)
	}
	if err := fd.AllowIOVAs(ioas, []Range{{0x100000, 1<<32 - 1}}); err != nil {
		t.Errorf("AllowIOVAs: %v", err)
	}
	if err := fd.AllowIOVAs(ioas, nil); err != nil {
		t.Errorf("AllowIOVAs(nil) clears: %v", err)
	}

	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	const at = IOVA(0x100000)
	rw := Readable | Writeable
	if iova, err := fd.Map(ioas, mem, at, FixedIOVA|rw); err != nil || iova != at {
		t.Fatalf("Map fixed: %#x, %v", iova, err)
	}
	_, err = fd.Map(ioas, mem, at, FixedIOVA|rw)
	wantErrno(t, "Map over a mapping", err, unix.EEXIST)
	auto, err := fd.Map(ioas, mem, 0, rw)
	if err != nil || auto == at {
		t.Errorf("Map at a kernel-chosen IOVA: %#x, %v", auto, err)
	}

	ioas2, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}
	if iova, err := fd.Copy(ioas2, 0x200000, ioas, at, uint64(2*page), FixedIOVA|Readable); err != nil || iova != 0x200000 {
		t.Errorf("Copy: %#x, %v", iova, err)
	}

	_, err = fd.Unmap(ioas, 0x10000000, uint64(page))
	wantErrno(t, "Unmap of nothing", err, unix.ENOENT)
	_, err = fd.Unmap(ioas, at, uint64(page))
	wantErrno(t, "Unmap cutting a mapping", err, unix.ENOENT)
	if n, err := fd.Unmap(ioas, at, uint64(2*page)); err != nil || n != uint64(2*page) {
		t.Errorf("Unmap: %d, %v", n, err)
	}
	if n, err := fd.Unmap(ioas, 0, math.MaxUint64); err != nil || n != uint64(2*page) {
		t.Errorf("Unmap everything: %d, %v (want the auto map's %d bytes)", n, err, 2*page)
	}
	if err := fd.SetHugePages(ioas, false); err != nil {
		t.Errorf("SetHugePages(false) on an empty IOAS: %v", err)
	}

	wantErrno(t, "Destroy(0)", fd.Destroy(0), unix.ENOENT)
	for _, id := range []ID{ioas2, ioas} {
		if err := fd.Destroy(id); err != nil {
			t.Errorf("Destroy(%d): %v", id, err)
		}
	}
}

func TestKernelRLimitMode(t *testing.T) {
	fd := openKernel(t)
	if m, err := fd.RLimitMode(); err != nil || m != RLimitUser {
		t.Errorf("RLimitMode default: %d, %v", m, err)
	}
	if err := fd.SetRLimitMode(RLimitProcess); err != nil {
		t.Fatalf("SetRLimitMode on a fresh iommufd: %v", err)
	}
	if m, err := fd.RLimitMode(); err != nil || m != RLimitProcess {
		t.Errorf("RLimitMode after set: %d, %v", m, err)
	}
	wantErrno(t, "RLIMIT_MODE 2", fd.SetOption(OptionRLimitMode, 0, 2), unix.EINVAL)
}

// The size rules of iommufd.h's "General ioctl format", through Ioctl.
func TestKernelSizeChecks(t *testing.T) {
	fd := openKernel(t)
	arg := make([]byte, 16) // iommu_ioas_alloc is 12
	binary.NativeEndian.PutUint32(arg, 11)
	wantErrno(t, "IOAS_ALLOC size 11", fd.Ioctl(uapi.IOMMU_IOAS_ALLOC, arg), unix.EINVAL)

	binary.NativeEndian.PutUint32(arg, 16)
	arg[12] = 1
	wantErrno(t, "IOAS_ALLOC size 16, non-zero tail", fd.Ioctl(uapi.IOMMU_IOAS_ALLOC, arg), unix.E2BIG)

	arg[12] = 0
	if err := fd.Ioctl(uapi.IOMMU_IOAS_ALLOC, arg); err != nil {
		t.Errorf("IOAS_ALLOC size 16, zero tail: %v", err)
	} else if err := fd.Destroy(ID(binary.NativeEndian.Uint32(arg[8:]))); err != nil {
		t.Errorf("Destroy the IOAS so allocated: %v", err)
	}

	hwpt := make([]byte, 48)
	binary.NativeEndian.PutUint32(hwpt, uapi.MinSizeIOMMUHWPTAlloc-1)
	wantErrno(t, "HWPT_ALLOC below its first layout", fd.Ioctl(uapi.IOMMU_HWPT_ALLOC, hwpt), unix.EINVAL)
	binary.NativeEndian.PutUint32(hwpt, uapi.MinSizeIOMMUHWPTAlloc)
	wantErrno(t, "HWPT_ALLOC at its first layout, no device", fd.Ioctl(uapi.IOMMU_HWPT_ALLOC, hwpt), unix.ENOENT)

	wantErrno(t, "unknown request", fd.Ioctl(uapi.IOMMUFD_TYPE<<8|0x7f, make([]byte, 8)), unix.ENOTTY)
	wantErrno(t, "NULL argument", fd.Ioctl(uapi.IOMMU_DESTROY, nil), unix.EFAULT)
}

func TestKernelFaultQueue(t *testing.T) {
	fd := openKernel(t)
	id, f, err := fd.FaultQueueAlloc()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := fd.Destroy(id); err != nil {
		t.Errorf("Destroy(fault %d): %v", id, err)
	}
}

// On a kernel older than an ioctl the typed method says so; on a newer
// one the bogus IDs are ENOENT.
func TestKernelLaterIoctls(t *testing.T) {
	fd := openKernel(t)
	for name, err := range map[string]error{
		"VIOMMUAlloc":  func() error { _, err := fd.VIOMMUAlloc(100, 101, VIOMMUTypeARMSMMUv3, nil); return err }(),
		"VDeviceAlloc": func() error { _, err := fd.VDeviceAlloc(100, 101, 1); return err }(),
		"VEventQAlloc": func() error { _, _, err := fd.VEventQAlloc(100, VEventQTypeARMSMMUv3, 16); return err }(),
		"HWQueueAlloc": func() error {
			_, err := fd.HWQueueAlloc(100, HWQueueTypeTegra241CMDQV, 0, 0x1000, 4096)
			return err
		}(),
	} {
		if !unsupportedHere(t, err) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("%s with unknown IDs: %v", name, err)
		}
	}
	if err := fd.ChangeProcess(); err != nil && !unsupportedHere(t, err) {
		t.Errorf("ChangeProcess with no maps: %v", err)
	}
}

func TestKernelMapUnmapAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	fd := openKernel(t)
	ioas, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	var failed error
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := fd.Map(ioas, mem, 0x100000, FixedIOVA|Readable|Writeable); err != nil {
			failed = err
			return
		}
		if _, err := fd.Unmap(ioas, 0x100000, uint64(len(mem))); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("Map+Unmap: %v allocations, want 0", allocs)
	}
}

// IDs that name nothing are ENOENT (iommufd.h); this also issues the
// ioctls that otherwise need a device.
func TestKernelUnknownIDs(t *testing.T) {
	fd := openKernel(t)
	ioas, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}
	const nothing = ID(0xdead)
	_, err = fd.HWPTAlloc(nothing, ioas, HWPTOptions{})
	wantErrno(t, "HWPTAlloc for an unknown device", err, unix.ENOENT)
	_, err = fd.GetHWInfo(nothing)
	wantErrno(t, "GetHWInfo of an unknown device", err, unix.ENOENT)
	wantErrno(t, "SetDirtyTracking of an unknown HWPT", fd.SetDirtyTracking(nothing, true), unix.ENOENT)
	err = fd.GetDirtyBitmap(nothing, 0, 1<<20, 4096, 0, make([]uint64, DirtyBitmapWords(1<<20, 4096)))
	wantErrno(t, "GetDirtyBitmap of an unknown HWPT", err, unix.ENOENT)
	_, err = fd.Invalidate(nothing, VTDS1Invalidations(nil))
	wantErrno(t, "Invalidate of an unknown HWPT", err, unix.ENOENT)
}

func TestKernelVFIOIOAS(t *testing.T) {
	fd := openKernel(t)
	_, err := fd.VFIOIOAS(VFIOIOASGet, 0)
	wantErrno(t, "VFIOIOAS get with none set", err, unix.ENODEV)
	_, err = fd.VFIOIOAS(VFIOIOASSet, 0xdead)
	wantErrno(t, "VFIOIOAS set to an unknown IOAS", err, unix.ENOENT)
	ioas, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.VFIOIOAS(VFIOIOASSet, ioas); err != nil {
		t.Fatalf("VFIOIOAS set: %v", err)
	}
	if got, err := fd.VFIOIOAS(VFIOIOASGet, 0); err != nil || got != ioas {
		t.Errorf("VFIOIOAS get: %d, %v; want %d", got, err, ioas)
	}
	if _, err := fd.VFIOIOAS(VFIOIOASClear, 0); err != nil {
		t.Errorf("VFIOIOAS clear: %v", err)
	}
}

// MapFile is 6.13: unsupported on the 6.12 guest, a map on newer kernels.
func TestKernelMapFile(t *testing.T) {
	fd := openKernel(t)
	ioas, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}
	memfd, err := unix.MemfdCreate("iommufd-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(memfd)
	page := os.Getpagesize()
	if err := unix.Ftruncate(memfd, int64(page)); err != nil {
		t.Fatal(err)
	}
	iova, err := fd.MapFile(ioas, memfd, 0, uint64(page), 0x100000, FixedIOVA|Readable|Writeable)
	switch {
	case unsupportedHere(t, err):
		t.Logf("MapFile: %v", err)
	case err != nil || iova != 0x100000:
		t.Errorf("MapFile: %#x, %v", iova, err)
	default:
		if n, err := fd.Unmap(ioas, iova, uint64(page)); err != nil || n != uint64(page) {
			t.Errorf("Unmap of the MapFile map: %d, %v", n, err)
		}
	}
}
