//go:build linux

package iommufd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl"
	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
	"github.com/iommu-agent/iommu-agent/ioctl/ioctltest"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := ioctltest.CheckLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// devNull is an FD on /dev/null: every iommufd request on it is ENOTTY,
// which exercises the whole call path without /dev/iommu.
func devNull(t *testing.T) *FD {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := NewFD(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	return fd
}

// mmapPage is memory fit for Map, which the tests never actually map.
func mmapPage(t *testing.T) []byte {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return mem
}

// call is one method invocation, named by the ioctl it wraps.
type call struct {
	op    string
	since string
	do    func(fd *FD) error
}

func calls(t *testing.T) []call {
	mem := mmapPage(t)
	return []call{
		{"IOMMU_DESTROY", "6.2", func(fd *FD) error { return fd.Destroy(1) }},
		{"IOMMU_IOAS_ALLOC", "6.2", func(fd *FD) error { _, err := fd.IOASAlloc(); return err }},
		{"IOMMU_IOAS_ALLOW_IOVAS", "6.2", func(fd *FD) error { return fd.AllowIOVAs(1, []Range{{0, 1<<32 - 1}}) }},
		{"IOMMU_IOAS_COPY", "6.2", func(fd *FD) error { _, err := fd.Copy(2, 0, 1, 0, 4096, Readable); return err }},
		{"IOMMU_IOAS_IOVA_RANGES", "6.2", func(fd *FD) error { _, _, err := fd.IOVARanges(1); return err }},
		{"IOMMU_IOAS_MAP", "6.2", func(fd *FD) error { _, err := fd.Map(1, mem, 0x100000, FixedIOVA|Readable); return err }},
		{"IOMMU_IOAS_UNMAP", "6.2", func(fd *FD) error { _, err := fd.Unmap(1, 0x100000, 4096); return err }},
		{"IOMMU_OPTION", "6.2", func(fd *FD) error { _, err := fd.GetOption(OptionHugePages, 1); return err }},
		{"IOMMU_OPTION", "6.2", func(fd *FD) error { return fd.SetOption(OptionHugePages, 1, 0) }},
		{"IOMMU_OPTION", "6.2", func(fd *FD) error { _, err := fd.RLimitMode(); return err }},
		{"IOMMU_OPTION", "6.2", func(fd *FD) error { return fd.SetRLimitMode(RLimitProcess) }},
		{"IOMMU_OPTION", "6.2", func(fd *FD) error { _, err := fd.HugePages(1); return err }},
		{"IOMMU_OPTION", "6.2", func(fd *FD) error { return fd.SetHugePages(1, false) }},
		{"IOMMU_VFIO_IOAS", "6.2", func(fd *FD) error { _, err := fd.VFIOIOAS(VFIOIOASGet, 0); return err }},
		{"IOMMU_HWPT_ALLOC", "6.6", func(fd *FD) error {
			_, err := fd.HWPTAlloc(1, 2, HWPTOptions{Data: VTDS1{AddrWidth: 48}, FaultID: 3})
			return err
		}},
		{"IOMMU_GET_HW_INFO", "6.6", func(fd *FD) error { _, err := fd.GetHWInfo(1); return err }},
		{"IOMMU_GET_HW_INFO", "6.6", func(fd *FD) error { _, err := fd.GetHWInfoAs(1, HWInfoTypeARMSMMUv3); return err }},
		{"IOMMU_HWPT_SET_DIRTY_TRACKING", "6.7", func(fd *FD) error { return fd.SetDirtyTracking(1, true) }},
		{"IOMMU_HWPT_GET_DIRTY_BITMAP", "6.7", func(fd *FD) error {
			return fd.GetDirtyBitmap(1, 0, 1<<20, 4096, 0, make([]uint64, DirtyBitmapWords(1<<20, 4096)))
		}},
		{"IOMMU_HWPT_INVALIDATE", "6.8", func(fd *FD) error {
			_, err := fd.Invalidate(1, VTDS1Invalidations{{Addr: 0, NPages: 1}})
			return err
		}},
		{"IOMMU_FAULT_QUEUE_ALLOC", "6.11", func(fd *FD) error { _, _, err := fd.FaultQueueAlloc(); return err }},
		{"IOMMU_IOAS_MAP_FILE", "6.13", func(fd *FD) error { _, err := fd.MapFile(1, 0, 0, 4096, 0, Readable); return err }},
		{"IOMMU_VIOMMU_ALLOC", "6.13", func(fd *FD) error { _, err := fd.VIOMMUAlloc(1, 2, VIOMMUTypeARMSMMUv3, nil); return err }},
		{"IOMMU_VDEVICE_ALLOC", "6.13", func(fd *FD) error { _, err := fd.VDeviceAlloc(1, 2, 8); return err }},
		{"IOMMU_IOAS_CHANGE_PROCESS", "6.13", func(fd *FD) error { return fd.ChangeProcess() }},
		{"IOMMU_VEVENTQ_ALLOC", "6.15", func(fd *FD) error { _, _, err := fd.VEventQAlloc(1, VEventQTypeARMSMMUv3, 64); return err }},
		{"IOMMU_HW_QUEUE_ALLOC", "6.17", func(fd *FD) error {
			_, err := fd.HWQueueAlloc(1, HWQueueTypeTegra241CMDQV, 0, 0x1000, 4096)
			return err
		}},
	}
}

// Every method reaches the kernel, and its error names the ioctl once,
// keeps the *raw.Errno, and is an UnsupportedError for ioctls newer than
// iommufd itself.
func TestErrorsNameIoctlAndKeepErrno(t *testing.T) {
	fd := devNull(t)
	for _, c := range calls(t) {
		err := c.do(fd)
		if err == nil {
			t.Errorf("%s on /dev/null succeeded", c.op)
			continue
		}
		if !errors.Is(err, unix.ENOTTY) {
			t.Errorf("%s: %v does not match ENOTTY", c.op, err)
		}
		var errno *raw.Errno
		if !errors.As(err, &errno) {
			t.Errorf("%s: no *raw.Errno in %v", c.op, err)
		}
		if got := strings.Count(err.Error(), c.op); got != 1 {
			t.Errorf("%s: named %d times in %q", c.op, got, err)
		}
		var unsup *ioctl.UnsupportedError
		isUnsup := errors.As(err, &unsup)
		switch {
		case c.since == "6.2" && isUnsup:
			t.Errorf("%s: %v: an iommufd ioctl since 6.2 reported as unsupported", c.op, err)
		case c.since != "6.2" && !isUnsup:
			t.Errorf("%s: %v is not an *ioctl.UnsupportedError", c.op, err)
		case isUnsup && (unsup.Op != c.op || unsup.MinKernel != c.since || !errors.Is(err, ioctl.ErrNotSupported)):
			t.Errorf("%s: UnsupportedError{%s, %s}, want {%s, %s}", c.op, unsup.Op, unsup.MinKernel, c.op, c.since)
		}
	}
}

func TestClosedFD(t *testing.T) {
	fd := devNull(t)
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if fd.Int() != -1 {
		t.Errorf("Int() = %d after Close", fd.Int())
	}
	if f, err := fd.File(); !errors.Is(err, ErrClosed) {
		t.Errorf("File() = %v, %v after Close", f, err)
	}
	for _, c := range calls(t) {
		err := c.do(fd)
		if !errors.Is(err, ErrClosed) || !strings.HasPrefix(err.Error(), c.op+": ") {
			t.Errorf("%s on a closed FD: %v", c.op, err)
		}
	}
	if err := fd.Ioctl(uapi.IOMMU_DESTROY, make([]byte, 8)); !errors.Is(err, ErrClosed) {
		t.Errorf("Ioctl on a closed FD: %v", err)
	}
	var nilFD *FD
	if nilFD.Int() != -1 || nilFD.Close() != nil {
		t.Error("nil FD: Int or Close misbehaves")
	}
	if _, err := nilFD.IOASAlloc(); !errors.Is(err, ErrClosed) {
		t.Errorf("IOASAlloc on a nil FD: %v", err)
	}
}

func sameFile(t *testing.T, a, b int) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino && sa.Rdev == sb.Rdev
}

func TestNewFDAndFileDuplicate(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := NewFD(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if int(f.Fd()) == fd.Int() || !sameFile(t, int(f.Fd()), fd.Int()) {
		t.Errorf("NewFD: fd %d is not a duplicate of %d", fd.Int(), f.Fd())
	}
	f.Close() // the caller keeps ownership of f
	if flags, err := unix.FcntlInt(uintptr(fd.Int()), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("adopted fd after closing the original: flags %#x, %v", flags, err)
	}

	dup, err := fd.File()
	if err != nil {
		t.Fatal(err)
	}
	if int(dup.Fd()) == fd.Int() || !sameFile(t, int(dup.Fd()), fd.Int()) {
		t.Errorf("File: %d is not a duplicate of %d", dup.Fd(), fd.Int())
	}
	dup.Close()
	if _, err := unix.FcntlInt(uintptr(fd.Int()), unix.F_GETFD, 0); err != nil {
		t.Errorf("closing File's duplicate closed the FD: %v", err)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(t.TempDir() + "/iommu")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing node: %v", err)
	}
}

func TestArgs(t *testing.T) {
	mem := mmapPage(t)
	m := mapArg(7, mem, 0x100000, FixedIOVA|Writeable)
	want := uapi.IOMMUIOASMap{
		Size: 40, Flags: uapi.IOMMU_IOAS_MAP_FIXED_IOVA | uapi.IOMMU_IOAS_MAP_WRITEABLE, IOASID: 7,
		UserVA: uint64(uintptr(unsafe.Pointer(&mem[0]))), Length: uint64(len(mem)), IOVA: 0x100000,
	}
	if m != want {
		t.Errorf("mapArg = %+v, want %+v", m, want)
	}
	if m := mapArg(7, nil, 0, 0); m.UserVA != 0 || m.Length != 0 {
		t.Errorf("mapArg(nil) = %+v: want a NULL, empty map for the kernel to reject", m)
	}

	c := copyArg(2, 0x2000, 1, 0x1000, 0x3000, FixedIOVA|Readable)
	wantC := uapi.IOMMUIOASCopy{Size: 40, Flags: 5, DstIOASID: 2, SrcIOASID: 1, Length: 0x3000, DstIOVA: 0x2000, SrcIOVA: 0x1000}
	if c != wantC {
		t.Errorf("copyArg = %+v, want %+v", c, wantC)
	}

	var pin runtime.Pinner
	defer pin.Unpin()
	h := hwptAllocArg(1, 2, HWPTOptions{Flags: HWPTAllocNestParent}, &pin)
	if h != (uapi.IOMMUHWPTAlloc{Size: 48, Flags: 1, DevID: 1, PTID: 2}) {
		t.Errorf("hwptAllocArg (paging) = %+v", h)
	}
	h = hwptAllocArg(1, 2, HWPTOptions{Data: VTDS1{Flags: VTDS1WPE, PgtblAddr: 0x1000, AddrWidth: 48}, FaultID: 9}, &pin)
	if h.Flags != uapi.IOMMU_HWPT_FAULT_ID_VALID || h.FaultID != 9 || h.DataType != uapi.IOMMU_HWPT_DATA_VTD_S1 ||
		h.DataLen != 24 || h.DataUptr == 0 {
		t.Errorf("hwptAllocArg (nested) = %+v", h)
	}
}

func TestHWPTData(t *testing.T) {
	typ, b := VTDS1{Flags: VTDS1SRE | VTDS1WPE, PgtblAddr: 0xabc000, AddrWidth: 57}.hwptData()
	k := fromBytes[uapi.IOMMUHWPTVTDS1](b)
	if typ != HWPTDataVTDS1 || len(b) != 24 || k.Flags != 5 || k.PgtblAddr != 0xabc000 || k.AddrWidth != 57 {
		t.Errorf("VTDS1: type %d, %d bytes, %+v", typ, len(b), k)
	}
	typ, b = ARMSMMUv3STE{0x0102030405060708, 0x1112131415161718}.hwptData()
	if typ != HWPTDataARMSMMUv3 || len(b) != 16 || b[0] != 0x08 || b[8] != 0x18 {
		t.Errorf("ARMSMMUv3STE: type %d, bytes % x (want little-endian words)", typ, b)
	}
	typ, b = RawHWPTData{Type: 77, Data: []byte{1, 2, 3}}.hwptData()
	if typ != 77 || string(b) != "\x01\x02\x03" {
		t.Errorf("RawHWPTData: %d % x", typ, b)
	}
}

func TestInvalidateEntries(t *testing.T) {
	typ, elen, n, data := VTDS1Invalidations{{Addr: 0x1000, NPages: 2, Flags: VTDInvLeaf}, {NPages: ^uint64(0)}}.invalidateData()
	if typ != InvalidateDataVTDS1 || elen != 24 || n != 2 || len(data) != 48 {
		t.Fatalf("VTDS1Invalidations: %d %d %d %d bytes", typ, elen, n, len(data))
	}
	if e := fromBytes[uapi.IOMMUHWPTVTDS1Invalidate](data[24:]); e.NPages != ^uint64(0) || e.Addr != 0 {
		t.Errorf("second VT-d entry = %+v", e)
	}
	if e := fromBytes[uapi.IOMMUHWPTVTDS1Invalidate](data); e.Addr != 0x1000 || e.NPages != 2 || e.Flags != 1 {
		t.Errorf("first VT-d entry = %+v", e)
	}
	typ, elen, n, data = ARMSMMUv3Invalidations{{0x11, 0x22}}.invalidateData()
	if typ != InvalidateDataARMSMMUv3 || elen != 16 || n != 1 ||
		binary.LittleEndian.Uint64(data) != 0x11 || binary.LittleEndian.Uint64(data[8:]) != 0x22 {
		t.Errorf("ARMSMMUv3Invalidations: %d %d %d % x", typ, elen, n, data)
	}
	typ, _, n, data = VTDS1Invalidations(nil).invalidateData()
	if typ != InvalidateDataVTDS1 || n != 0 || len(data) != 0 {
		t.Errorf("empty batch (a support probe): %d %d %d bytes", typ, n, len(data))
	}

	// Data shorter than EntryLen·Num never reaches the kernel.
	fd := devNull(t)
	_, err := fd.Invalidate(1, RawInvalidations{Type: 0, EntryLen: 24, Num: 2, Data: make([]byte, 47)})
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("short RawInvalidations: %v", err)
	}
	_, err = fd.Invalidate(1, RawInvalidations{Type: 0, EntryLen: 24, Num: 2, Data: make([]byte, 48)})
	if !errors.Is(err, unix.ENOTTY) {
		t.Errorf("RawInvalidations: %v, want the kernel's ENOTTY", err)
	}
}

func emsgsize() error { return wrap(uapi.IOMMU_IOAS_IOVA_RANGES, &raw.Errno{Errno: unix.EMSGSIZE}) }

func TestIOVARangesGrowsOnEMSGSIZE(t *testing.T) {
	want := make([]Range, 11)
	for i := range want {
		want[i] = Range{IOVA(i) << 32, IOVA(i)<<32 + 0xfffff}
	}
	calls := 0
	got, align, err := iovaRanges(5, func(arg *uapi.IOMMUIOASIOVARanges, buf []uapi.IOMMUIOVARange) error {
		calls++
		if arg.Size != 32 || arg.IOASID != 5 || int(arg.NumIOVAs) != len(buf) ||
			arg.AllowedIOVAs != uint64(uintptr(unsafe.Pointer(&buf[0]))) {
			t.Errorf("call %d: arg %+v does not describe its %d-range buffer", calls, *arg, len(buf))
		}
		if int(arg.NumIOVAs) < len(want) {
			buf[0] = uapi.IOMMUIOVARange{Start: 1, Last: 2} // the kernel fills what fits
			arg.NumIOVAs = uint32(len(want))
			return emsgsize()
		}
		for i, r := range want {
			buf[i] = uapi.IOMMUIOVARange{Start: uint64(r.Start), Last: uint64(r.Last)}
		}
		arg.NumIOVAs = uint32(len(want))
		arg.OutIOVAAlignment = 4096
		return nil
	})
	if err != nil || calls != 2 || align != 4096 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after %d calls: %v, %d, %v; want %v", calls, got, align, err, want)
	}

	// A list that grows on every call ends with the kernel's EMSGSIZE.
	calls = 0
	_, _, err = iovaRanges(5, func(arg *uapi.IOMMUIOASIOVARanges, buf []uapi.IOMMUIOVARange) error {
		calls++
		arg.NumIOVAs = uint32(len(buf) + 1)
		return emsgsize()
	})
	if !errors.Is(err, unix.EMSGSIZE) || calls != iovaRangesMaxTries {
		t.Errorf("ever-growing list: %v after %d calls", err, calls)
	}

	// Other errors, and an EMSGSIZE that asks for no more room, stop at once.
	for _, fail := range []func(*uapi.IOMMUIOASIOVARanges) error{
		func(*uapi.IOMMUIOASIOVARanges) error {
			return wrap(uapi.IOMMU_IOAS_IOVA_RANGES, &raw.Errno{Errno: unix.ENOENT})
		},
		func(arg *uapi.IOMMUIOASIOVARanges) error { arg.NumIOVAs = 2; return emsgsize() },
	} {
		calls = 0
		_, _, err = iovaRanges(5, func(arg *uapi.IOMMUIOASIOVARanges, _ []uapi.IOMMUIOVARange) error {
			calls++
			return fail(arg)
		})
		if err == nil || calls != 1 {
			t.Errorf("%v after %d calls, want the first error", err, calls)
		}
	}

	// An empty list is a success with no ranges.
	got, _, err = iovaRanges(5, func(arg *uapi.IOMMUIOASIOVARanges, _ []uapi.IOMMUIOVARange) error {
		arg.NumIOVAs = 0
		return nil
	})
	if err != nil || len(got) != 0 {
		t.Errorf("empty list: %v, %v", got, err)
	}
}

func TestHWInfo(t *testing.T) {
	smmu := uapi.IOMMUHWInfoARMSMMUv3{IDR: [6]uint32{1, 2, 3, 4, 5, 6}, IIDR: 0x43b, AIDR: 2}
	payload := bytesOf(&smmu)
	calls := 0
	info, err := hwInfo(3, 0, HWInfoTypeDefault, func(arg *uapi.IOMMUHWInfo, buf []byte) error {
		calls++
		if arg.Size != 40 || arg.DevID != 3 || arg.Flags != 0 || int(arg.DataLen) != len(buf) ||
			arg.DataUptr != uint64(uintptr(unsafe.Pointer(&buf[0]))) {
			t.Errorf("arg %+v does not describe its %d-byte buffer", *arg, len(buf))
		}
		copy(buf, payload)
		arg.DataLen = uint32(len(payload))
		arg.OutDataType = uapi.IOMMU_HW_INFO_TYPE_ARM_SMMUV3
		arg.OutCapabilities = uapi.IOMMU_HW_CAP_DIRTY_TRACKING
		arg.OutMaxPASIDLog2 = 20
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("%v after %d calls", err, calls)
	}
	if info.Type != HWInfoTypeARMSMMUv3 || info.Capabilities != HWCapDirtyTracking || info.MaxPASIDLog2 != 20 || len(info.Data) != 40 {
		t.Errorf("info = %+v", info)
	}
	s, ok := info.SMMUv3()
	if !ok || s.IDR != smmu.IDR || s.IIDR != 0x43b || s.AIDR != 2 {
		t.Errorf("SMMUv3() = %+v, %v", s, ok)
	}
	if _, ok := info.VTD(); ok {
		t.Error("VTD() of an SMMUv3 payload")
	}

	// A payload larger than the buffer: retry with the size reported.
	calls = 0
	info, err = hwInfo(3, uapi.IOMMU_HW_INFO_FLAG_INPUT_TYPE, HWInfoTypeIntelVTD, func(arg *uapi.IOMMUHWInfo, buf []byte) error {
		calls++
		if arg.Flags != uapi.IOMMU_HW_INFO_FLAG_INPUT_TYPE || arg.OutDataType != uapi.IOMMU_HW_INFO_TYPE_INTEL_VTD {
			t.Errorf("input type not passed: %+v", *arg)
		}
		vtd := bytesOf(&uapi.IOMMUHWInfoVTD{CapReg: 0xd2008c40660462, EcapReg: 0xf050da})
		copy(buf, vtd)
		arg.DataLen = 100
		arg.OutDataType = uapi.IOMMU_HW_INFO_TYPE_INTEL_VTD
		return nil
	})
	if err != nil || calls != 2 || len(info.Data) != 100 {
		t.Fatalf("%v after %d calls, %d bytes", err, calls, len(info.Data))
	}
	if v, ok := info.VTD(); !ok || v.CapReg != 0xd2008c40660462 || v.EcapReg != 0xf050da {
		t.Errorf("VTD() = %+v, %v", v, ok)
	}

	// A length that keeps growing is an error, not a loop.
	_, err = hwInfo(3, 0, 0, func(arg *uapi.IOMMUHWInfo, buf []byte) error {
		arg.DataLen = uint32(len(buf) + 1)
		return nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "IOMMU_GET_HW_INFO: ") {
		t.Errorf("ever-growing data: %v", err)
	}
}

func TestHWInfoShortPayload(t *testing.T) {
	// An older kernel's shorter payload reads as zero past its end.
	info := &HWInfo{Type: HWInfoTypeIntelVTD, Data: bytesOf(&uapi.IOMMUHWInfoVTD{CapReg: 7})[:16]}
	if v, ok := info.VTD(); !ok || v.CapReg != 7 || v.EcapReg != 0 {
		t.Errorf("VTD() = %+v, %v", v, ok)
	}
	info = &HWInfo{Type: HWInfoTypeTegra241CMDQV, Data: []byte{1, 0, 0, 0, 2, 3, 4, 0}}
	if c, ok := info.Tegra241CMDQV(); !ok || c != (Tegra241CMDQVInfo{Flags: 1, Version: 2, Log2VCMDQs: 3, Log2VSIDs: 4}) {
		t.Errorf("Tegra241CMDQV() = %+v, %v", c, ok)
	}
	if _, ok := (&HWInfo{Type: HWInfoTypeNone}).SMMUv3(); ok {
		t.Error("SMMUv3() of a NONE payload")
	}
}

func TestDirtyBitmapWords(t *testing.T) {
	for _, c := range []struct {
		length, pageSize uint64
		want             int
	}{
		{0, 4096, 0},
		{4096, 0, 0},
		{1, 4096, 1},
		{64 * 4096, 4096, 1},
		{64*4096 + 1, 4096, 2},
		{1 << 30, 4096, 4096},
		{1 << 30, 2 << 20, 8},
		{3 * 4096 * 64, 3 * 4096, 3}, // the kernel shifts by __ffs: 12288 counts as 4096
		{^uint64(0), 1 << 63, 1},
	} {
		if got := DirtyBitmapWords(c.length, c.pageSize); got != c.want {
			t.Errorf("DirtyBitmapWords(%#x, %#x) = %d, want %d", c.length, c.pageSize, got, c.want)
		}
	}

	fd := devNull(t)
	for _, c := range []struct {
		length, pageSize uint64
		words            int
	}{{1 << 20, 4096, 3}, {0, 4096, 4}, {1 << 20, 0, 4}} {
		err := fd.GetDirtyBitmap(1, 0, c.length, c.pageSize, 0, make([]uint64, c.words))
		if !errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
			t.Errorf("GetDirtyBitmap(%#x, %#x, %d words) = %v, want EINVAL before the kernel", c.length, c.pageSize, c.words, err)
		}
	}
}

func TestIoctlEscapeHatch(t *testing.T) {
	fd := devNull(t)
	arg := make([]byte, 48)
	binary.NativeEndian.PutUint32(arg, 24) // IOMMU_HWPT_ALLOC's minimum
	err := fd.Ioctl(uapi.IOMMU_HWPT_ALLOC, arg)
	var unsup *ioctl.UnsupportedError
	if !errors.Is(err, unix.ENOTTY) || errors.As(err, &unsup) || !strings.HasPrefix(err.Error(), "IOMMU_HWPT_ALLOC: ") {
		t.Errorf("Ioctl: %v, want a plain named ENOTTY", err)
	}
	if err := fd.Ioctl(uapi.IOMMUFD_TYPE<<8|0x7f, nil); !errors.Is(err, unix.ENOTTY) || !strings.Contains(err.Error(), "0x3b7f") {
		t.Errorf("Ioctl of an unknown request with a NULL argument: %v", err)
	}
	for _, bad := range [][]byte{{1, 2}, {49, 0, 0, 0}, binary.NativeEndian.AppendUint32(nil, 5)} {
		if err := fd.Ioctl(uapi.IOMMU_DESTROY, bad); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "not sent") {
			t.Errorf("Ioctl(% x) = %v, want EINVAL before the kernel", bad, err)
		}
	}
}

func TestDescribe(t *testing.T) {
	for req := uintptr(uapi.IOMMU_DESTROY); req <= uapi.IOMMU_HW_QUEUE_ALLOC; req++ {
		if name, since := describe(req); !strings.HasPrefix(name, "IOMMU_") || since == "" {
			t.Errorf("describe(%#x) = %q, %q", req, name, since)
		}
	}
	if name, _ := describe(uapi.IOMMU_HW_QUEUE_ALLOC + 1); name != "ioctl 0x3b95" {
		t.Errorf("describe of an unknown request = %q", name)
	}
}

func TestUserPtr(t *testing.T) {
	var pin runtime.Pinner
	defer pin.Unpin()
	if p := userPtr[byte](&pin, nil); p != 0 {
		t.Errorf("userPtr(nil) = %#x", p)
	}
	s := make([]uint64, 3)
	if p := userPtr(&pin, s); p != uint64(uintptr(unsafe.Pointer(&s[0]))) {
		t.Errorf("userPtr = %#x, want %p", p, &s[0])
	}
}

// The fixed-struct methods build their argument on the stack: on a closed
// FD they allocate exactly what wrapping the error does, so on success
// (which wraps nothing) they allocate nothing.
func TestNoArgumentAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	mem := mmapPage(t)
	fd := devNull(t)
	fd.Close()
	for _, c := range []struct {
		req uintptr
		do  func()
	}{
		{uapi.IOMMU_IOAS_MAP, func() { _, _ = fd.Map(1, mem, 0x100000, FixedIOVA|Readable|Writeable) }},
		{uapi.IOMMU_IOAS_UNMAP, func() { _, _ = fd.Unmap(1, 0x100000, uint64(len(mem))) }},
		{uapi.IOMMU_IOAS_COPY, func() { _, _ = fd.Copy(2, 0, 1, 0, 4096, Readable) }},
		{uapi.IOMMU_IOAS_ALLOC, func() { _, _ = fd.IOASAlloc() }},
		{uapi.IOMMU_DESTROY, func() { _ = fd.Destroy(1) }},
		{uapi.IOMMU_OPTION, func() { _, _ = fd.HugePages(1) }},
		{uapi.IOMMU_HWPT_SET_DIRTY_TRACKING, func() { _ = fd.SetDirtyTracking(1, true) }},
		{uapi.IOMMU_IOAS_MAP_FILE, func() { _, _ = fd.MapFile(1, 3, 0, 4096, 0, Readable) }},
		{uapi.IOMMU_VDEVICE_ALLOC, func() { _, _ = fd.VDeviceAlloc(1, 2, 3) }},
	} {
		base := testing.AllocsPerRun(100, func() { _ = wrap(c.req, ErrClosed) })
		got := testing.AllocsPerRun(100, c.do)
		if got != base {
			name, _ := describe(c.req)
			t.Errorf("%s: %v allocations, of which wrapping the error makes %v", name, got, base)
		}
	}
}
