//go:build hwtests && linux

package hwtests

// The errnos the kernel returns for the same misuse on its two paths, with
// a domain attached (so the IOVA alignment is 4 KiB and the reserved
// interrupt window is in force: x86's on VT-d, the software MSI window on
// an SMMUv3). Sources: iommufd.h, the iommufd selftests,
// vfio_iommu_type1.c.

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %s", what, err, unix.ErrnoName(want))
	}
}

func TestErrnoIOMMUFD(t *testing.T) {
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	s := newCdev(t, dev)
	mem := hwtest.DMABuffer(t, 4*page)
	rw := iommufd.FixedIOVA | iommufd.Readable | iommufd.Writeable
	msiWindow := uint64(hwtest.MSIWindow(t, dev).Start)

	_, err := s.fd.Unmap(s.ioas, 0x400000, page)
	wantErrno(t, "unmap of a never-mapped range", err, unix.ENOENT)

	_, err = s.fd.Map(s.ioas, mem, 0x100800, rw)
	wantErrno(t, "map at an IOVA off the 4 KiB alignment", err, unix.EINVAL)
	_, err = s.fd.Map(s.ioas, mem[:page/2], 0x100000, rw)
	wantErrno(t, "map of half a page", err, unix.EINVAL)

	if _, err := s.fd.Map(s.ioas, mem[:2*page], 0x100000, rw); err != nil {
		t.Fatal(err)
	}
	for _, iova := range []iommufd.IOVA{0x100000, 0x101000, 0x0ff000} {
		_, err = s.fd.Map(s.ioas, mem[2*page:], iova, rw)
		wantErrno(t, "fixed map overlapping an area", err, unix.EEXIST)
	}
	_, err = s.fd.Unmap(s.ioas, 0x100000, page)
	wantErrno(t, "unmap cutting an area in two", err, unix.ENOENT)

	_, err = s.fd.Map(s.ioas, mem[:page], iommufd.IOVA(msiWindow), rw)
	wantErrno(t, "map inside the reserved MSI window", err, unix.EINVAL)
	ranges, _, err := s.fd.IOVARanges(s.ioas)
	if err != nil {
		t.Fatal(err)
	}
	if inRanges(ranges, msiWindow, page) {
		t.Errorf("IOVA ranges %v include the MSI window %#x", ranges, msiWindow)
	}
	last := ranges[len(ranges)-1].Last
	if last != math.MaxUint64 {
		_, err = s.fd.Map(s.ioas, mem[:page], last+1, rw)
		wantErrno(t, "map beyond the last usable IOVA", err, unix.EINVAL)
	}

	err = s.fd.Destroy(0xdead)
	wantErrno(t, "destroy of an unknown id", err, unix.ENOENT)
	_, err = s.fd.Map(0xdead, mem[:page], 0x400000, rw)
	wantErrno(t, "map into an unknown IOAS", err, unix.ENOENT)
	err = s.fd.Destroy(s.ioas)
	wantErrno(t, "destroy of an IOAS a device is attached to", err, unix.EBUSY)

	// Size field checks, on a real request: too small, and larger than the
	// kernel knows with a non-zero byte past what it knows.
	arg := make([]byte, 48)
	binary.NativeEndian.PutUint32(arg[0:], 16)
	err = s.fd.Ioctl(uapi.IOMMU_IOAS_MAP, arg)
	wantErrno(t, "IOAS_MAP with size 16", err, unix.EINVAL)
	binary.NativeEndian.PutUint32(arg[0:], 48)
	binary.NativeEndian.PutUint32(arg[8:], uint32(s.ioas))
	arg[44] = 1
	err = s.fd.Ioctl(uapi.IOMMU_IOAS_MAP, arg)
	wantErrno(t, "IOAS_MAP with size 48 and a non-zero tail", err, unix.E2BIG)

	if n, err := s.fd.Unmap(s.ioas, 0, math.MaxUint64); err != nil || n != 2*page {
		t.Errorf("unmap of everything = %d, %v; want %d", n, err, 2*page)
	}
	s.teardown(t)
}

func TestErrnoType1(t *testing.T) {
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	s := newType1(t, dev)
	mem := hwtest.DMABuffer(t, 4*page)
	rw := vfio.DMARead | vfio.DMAWrite
	msiWindow := uint64(hwtest.MSIWindow(t, dev).Start)

	// type1 reports "nothing unmapped" as success, where iommufd says ENOENT.
	if n, err := s.c.UnmapDMA(0x400000, page, 0); err != nil || n != 0 {
		t.Errorf("unmap of a never-mapped range = %d, %v; want 0, nil", n, err)
	}
	err := s.c.MapDMA(mem, 0x100800, rw)
	wantErrno(t, "map at an IOVA off the 4 KiB page", err, unix.EINVAL)
	err = s.c.MapDMA(mem[:page/2], 0x100000, rw)
	wantErrno(t, "map of half a page", err, unix.EINVAL)
	err = s.c.MapDMA(mem[:page], 0x100000, 0)
	wantErrno(t, "map with neither READ nor WRITE", err, unix.EINVAL)

	if err := s.c.MapDMA(mem[:2*page], 0x100000, rw); err != nil {
		t.Fatal(err)
	}
	for _, iova := range []uint64{0x100000, 0x101000, 0x0ff000} {
		err = s.c.MapDMA(mem[2*page:], iova, rw)
		wantErrno(t, "map overlapping a mapping", err, unix.EEXIST)
	}
	_, err = s.c.UnmapDMA(0x100000, page, 0)
	wantErrno(t, "type1v2 unmap bisecting a mapping", err, unix.EINVAL)
	_, err = s.c.UnmapDMA(0x100000, page, vfio.UnmapAll)
	wantErrno(t, "UNMAP_ALL with a range", err, unix.EINVAL)

	err = s.c.MapDMA(mem[:page], msiWindow, rw)
	wantErrno(t, "map inside the reserved MSI window", err, unix.EINVAL)
	info, err := s.c.IOMMUInfo()
	if err != nil {
		t.Fatal(err)
	}
	if inType1Ranges(info.IOVARanges, msiWindow, page) {
		t.Errorf("IOVA ranges %v include the MSI window", info.IOVARanges)
	}
	if last := info.IOVARanges[len(info.IOVARanges)-1].End; last != math.MaxUint64 {
		err = s.c.MapDMA(mem[:page], last+1, rw)
		wantErrno(t, "map beyond the last usable IOVA", err, unix.EINVAL)
	}

	arg := make([]byte, 32)
	binary.NativeEndian.PutUint32(arg[0:], 16) // argsz below minsz
	binary.NativeEndian.PutUint32(arg[4:], uint32(rw))
	_, err = s.c.Ioctl(uapi.VFIO_IOMMU_MAP_DMA, arg)
	wantErrno(t, "MAP_DMA with argsz 16", err, unix.EINVAL)

	if n, err := s.c.UnmapDMA(0, 0, vfio.UnmapAll); err != nil || n != 2*page {
		t.Errorf("UNMAP_ALL = %d, %v; want %d", n, err, 2*page)
	}
	s.teardown(t)
}
