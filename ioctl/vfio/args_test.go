//go:build linux

package vfio

import (
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

func TestIRQSetBuf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		set   IRQSet
		flags uint32
		count uint32
		data  []byte
	}{
		{"eventfds", IRQSet{Index: uapi.VFIO_PCI_MSIX_IRQ_INDEX, Action: IRQTrigger, Start: 1, EventFDs: []int32{5, -1, 7}},
			uapi.VFIO_IRQ_SET_DATA_EVENTFD | uapi.VFIO_IRQ_SET_ACTION_TRIGGER, 3, u32s(5, 0xffffffff, 7)},
		{"bools", IRQSet{Index: 0, Action: IRQMask, Start: 1, Bools: []bool{true, false, true}},
			uapi.VFIO_IRQ_SET_DATA_BOOL | uapi.VFIO_IRQ_SET_ACTION_MASK, 3, []byte{1, 0, 1}},
		{"none unmask", IRQSet{Index: 0, Action: IRQUnmask, Count: 1},
			uapi.VFIO_IRQ_SET_DATA_NONE | uapi.VFIO_IRQ_SET_ACTION_UNMASK, 1, nil},
		{"disable index", IRQSet{Index: uapi.VFIO_PCI_MSI_IRQ_INDEX, Action: IRQTrigger},
			uapi.VFIO_IRQ_SET_DATA_NONE | uapi.VFIO_IRQ_SET_ACTION_TRIGGER, 0, nil},
		{"empty eventfd list", IRQSet{Action: IRQTrigger, EventFDs: []int32{}},
			uapi.VFIO_IRQ_SET_DATA_EVENTFD | uapi.VFIO_IRQ_SET_ACTION_TRIGGER, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			buf, err := irqSetBuf(c.set)
			if err != nil {
				t.Fatal(err)
			}
			hdr := *as[uapi.VFIOIRQSet](buf)
			want := uapi.VFIOIRQSet{ArgSz: uint32(20 + len(c.data)), Flags: c.flags, Index: c.set.Index, Start: c.set.Start, Count: c.count}
			if hdr != want {
				t.Errorf("header %+v, want %+v", hdr, want)
			}
			if len(buf) != 20+len(c.data) || string(buf[20:]) != string(c.data) {
				t.Errorf("data % x, want % x", buf[20:], c.data)
			}
		})
	}
	for _, bad := range []IRQSet{
		{Action: IRQTrigger, EventFDs: []int32{1}, Bools: []bool{true}},
		{Action: 0},
		{Action: IRQMask | IRQUnmask},
	} {
		if _, err := irqSetBuf(bad); err == nil {
			t.Errorf("irqSetBuf(%+v) accepted", bad)
		}
	}
}

func TestHotResetBuf(t *testing.T) {
	t.Parallel()
	buf, err := hotResetBuf([]int{3, 17})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *as[uapi.VFIOPCIHotReset](buf), (uapi.VFIOPCIHotReset{ArgSz: 20, Count: 2}); got != want {
		t.Errorf("header %+v, want %+v", got, want)
	}
	if string(buf[12:]) != string(u32s(3, 17)) {
		t.Errorf("fds % x", buf[12:])
	}
	// The cdev form: no fds at all.
	buf, err = hotResetBuf(nil)
	if err != nil || len(buf) != 12 || *as[uapi.VFIOPCIHotReset](buf) != (uapi.VFIOPCIHotReset{ArgSz: 12}) {
		t.Errorf("empty: % x, %v", buf, err)
	}
	if _, err := hotResetBuf([]int{1 << 40}); err == nil {
		t.Error("fd beyond s32 accepted")
	}
}

func TestFeatureBuf(t *testing.T) {
	t.Parallel()
	buf, err := featureBuf(uapi.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, FeatureSet, u32s(uapi.VFIO_DEVICE_STATE_STOP, 0xffffffff))
	if err != nil {
		t.Fatal(err)
	}
	want := uapi.VFIODeviceFeature{ArgSz: 16, Flags: uapi.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | uapi.VFIO_DEVICE_FEATURE_SET}
	if got := *as[uapi.VFIODeviceFeature](buf); got != want {
		t.Errorf("header %+v, want %+v", got, want)
	}
	if string(buf[8:]) != string(u32s(1, 0xffffffff)) {
		t.Errorf("payload % x", buf[8:])
	}
	buf, err = featureBuf(uapi.VFIO_DEVICE_FEATURE_MIGRATION, FeatureGet|FeatureProbe, nil)
	if err != nil || len(buf) != 8 || as[uapi.VFIODeviceFeature](buf).Flags != 1|1<<16|1<<18 {
		t.Errorf("probe: % x, %v", buf, err)
	}
	if _, err := featureBuf(0x10000, FeatureGet, nil); !errors.Is(err, errFeature) {
		t.Errorf("index 0x10000: %v", err)
	}
}

func TestCdevArgs(t *testing.T) {
	t.Parallel()
	b := bindArg(7, nil)
	if b != (uapi.VFIODeviceBindIOMMUFD{ArgSz: 24, IOMMUFD: 7}) {
		t.Errorf("bind without token %+v", b)
	}
	token := [16]byte{0xbd, 0x8d, 0x9d, 0x2b}
	b = bindArg(7, &token)
	if b.Flags != uapi.VFIO_DEVICE_BIND_FLAG_TOKEN || b.TokenUUIDPtr != uint64(uintptr(unsafe.Pointer(&token))) || b.ArgSz != 24 {
		t.Errorf("bind with token %+v", b)
	}
	if a := attachArg(3, nil); a != (uapi.VFIODeviceAttachIOMMUFDPT{ArgSz: 16, PtID: 3}) {
		t.Errorf("attach %+v", a)
	}
	pasid := uint32(5)
	if a := attachArg(3, &pasid); a != (uapi.VFIODeviceAttachIOMMUFDPT{ArgSz: 16, Flags: uapi.VFIO_DEVICE_ATTACH_PASID, PtID: 3, PASID: 5}) {
		t.Errorf("attach pasid %+v", a)
	}
	if a := detachArg(nil); a != (uapi.VFIODeviceDetachIOMMUFDPT{ArgSz: 12}) {
		t.Errorf("detach %+v", a)
	}
	if a := detachArg(&pasid); a != (uapi.VFIODeviceDetachIOMMUFDPT{ArgSz: 12, Flags: uapi.VFIO_DEVICE_DETACH_PASID, PASID: 5}) {
		t.Errorf("detach pasid %+v", a)
	}
}

func TestType1Args(t *testing.T) {
	t.Parallel()
	m := mapDMAArg(0x7f0000000000, 0x200000, 0x100000, DMARead|DMAWrite)
	if m != (uapi.VFIOIOMMUType1DMAMap{ArgSz: 32, Flags: 3, VAddr: 0x7f0000000000, IOVA: 0x100000, Size: 0x200000}) {
		t.Errorf("map %+v", m)
	}
	if s := unsafe.Sizeof(unmapDirtyArg{}); s != 48 {
		t.Errorf("unmap with bitmap is %d bytes, want 24+24", s)
	}
	if s := unsafe.Sizeof(dirtyBitmapArg{}); s != 48 {
		t.Errorf("dirty bitmap get is %d bytes, want 8+40", s)
	}
	bm := make([]uint64, 4)
	if b := bitmapArg(4096, bm); b.PgSize != 4096 || b.Size != 32 || b.Data != uint64(uintptr(unsafe.Pointer(&bm[0]))) {
		t.Errorf("bitmap %+v", b)
	}
}

func TestIOEventFDArg(t *testing.T) {
	t.Parallel()
	for width, flag := range map[int]uint32{1: 1, 2: 2, 4: 4, 8: 8} {
		a, err := ioeventfdArg(0x1000, 0xab, width, 9)
		if err != nil || a != (uapi.VFIODeviceIOEventFD{ArgSz: 32, Flags: flag, Offset: 0x1000, Data: 0xab, FD: 9}) {
			t.Errorf("width %d: %+v, %v", width, a, err)
		}
	}
	if a, err := ioeventfdArg(0, 0, 4, -1); err != nil || a.FD != -1 {
		t.Errorf("de-assign: %+v, %v", a, err)
	}
	for _, w := range []int{0, 3, 16} {
		if _, err := ioeventfdArg(0, 0, w, 1); !errors.Is(err, errWidth) {
			t.Errorf("width %d: %v", w, err)
		}
	}
	if _, err := ioeventfdArg(0, 0, 4, -2); err == nil {
		t.Error("fd -2 accepted")
	}
}

// fakeInfo answers an INFO ioctl like the kernel: with a buffer too small
// for its chain it raises argsz, sets CAPS and leaves cap_offset 0.
func fakeInfo(need int, calls *[]int) func(buf []byte) error {
	return func(buf []byte) error {
		*calls = append(*calls, len(buf))
		if int(binary.NativeEndian.Uint32(buf)) != len(buf) {
			return unix.EINVAL // argsz must be the buffer
		}
		if len(buf) < need {
			binary.NativeEndian.PutUint32(buf, uint32(need))
			return nil
		}
		binary.NativeEndian.PutUint32(buf[4:], 0xc0ffee) // the answer
		return nil
	}
}

func TestQueryInfoGrows(t *testing.T) {
	t.Parallel()
	fixed := newBuf(32)
	as[uapi.VFIORegionInfo](fixed).Index = 7

	var calls []int
	buf, err := queryInfo(fixed, fakeInfo(100, &calls))
	if err != nil || len(calls) != 1 || calls[0] != infoInitialSize || as[uapi.VFIORegionInfo](buf).Index != 7 {
		t.Errorf("small chain: calls %v, %v", calls, err)
	}

	calls = nil
	buf, err = queryInfo(fixed, fakeInfo(5000, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[1] != 5000 || len(buf) != 5000 || binary.NativeEndian.Uint32(buf[4:]) != 0xc0ffee {
		t.Errorf("grown: calls %v, len %d", calls, len(buf))
	}
	if as[uapi.VFIORegionInfo](buf).Index != 7 {
		t.Error("index lost on retry")
	}

	// A chain that keeps growing, a size past belief, an ioctl error.
	calls = nil
	grow := 600
	_, err = queryInfo(fixed, func(buf []byte) error {
		calls = append(calls, len(buf))
		grow += 100
		binary.NativeEndian.PutUint32(buf, uint32(grow))
		return nil
	})
	if err == nil || len(calls) != infoMaxTries {
		t.Errorf("ever-growing: calls %v, %v", calls, err)
	}
	if _, err := queryInfo(fixed, fakeInfo(infoMaxSize+1, &calls)); err == nil {
		t.Error("oversized answer accepted")
	}
	if _, err := queryInfo(fixed, func([]byte) error { return unix.ENODEV }); !errors.Is(err, unix.ENODEV) {
		t.Errorf("ioctl error lost: %v", err)
	}
}

// fakeHotReset answers VFIO_DEVICE_GET_PCI_HOT_RESET_INFO with devs, as
// the kernel does: ENOSPC plus the count when the array is short.
func fakeHotReset(flags uint32, devs []uapi.VFIOPCIDependentDevice, calls *int) func(buf []byte) error {
	return func(buf []byte) error {
		*calls++
		hdr := as[uapi.VFIOPCIHotResetInfo](buf)
		if hdr.ArgSz < 12 {
			return unix.EINVAL
		}
		hdr.Flags = flags
		hdr.Count = uint32(len(devs))
		if int(hdr.ArgSz) < 12+8*len(devs) {
			return unix.ENOSPC
		}
		for i, d := range devs {
			e := buf[12+8*i:]
			binary.NativeEndian.PutUint32(e, d.ID)
			binary.NativeEndian.PutUint16(e[4:], d.Segment)
			e[6], e[7] = d.Bus, d.Devfn
		}
		return nil
	}
}

func TestHotResetInfo(t *testing.T) {
	t.Parallel()
	devs := make([]uapi.VFIOPCIDependentDevice, 12)
	for i := range devs {
		devs[i] = uapi.VFIOPCIDependentDevice{ID: uint32(i + 1), Segment: 0, Bus: 1, Devfn: uint8(i)<<3 | 2}
	}
	devs[11].ID = uapi.VFIO_PCI_DEVID_NOT_OWNED

	calls := 0
	info, err := hotResetInfo(fakeHotReset(uapi.VFIO_PCI_HOT_RESET_FLAG_DEV_ID, devs, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || !info.DevIDs || info.AllOwned || len(info.Devices) != 12 {
		t.Fatalf("calls %d, info %+v", calls, info)
	}
	if d := info.Devices[3]; d.DevID != 4 || d.GroupID != 0 || d.Bus != 1 || d.Slot() != 3 || d.Function() != 2 {
		t.Errorf("device 3 %+v", d)
	}
	if info.Devices[11].DevID != DevIDNotOwned {
		t.Errorf("not-owned devid %#x", info.Devices[11].DevID)
	}

	// Group form: the union is a group id; fits in the first array.
	calls = 0
	info, err = hotResetInfo(fakeHotReset(0, devs[:2], &calls))
	if err != nil || calls != 1 || info.DevIDs || info.Devices[1].GroupID != 2 || info.Devices[1].DevID != 0 {
		t.Errorf("group form: calls %d, %+v, %v", calls, info, err)
	}

	// ENOSPC without a larger count is not retried forever.
	calls = 0
	_, err = hotResetInfo(func(buf []byte) error { calls++; return unix.ENOSPC })
	if !errors.Is(err, unix.ENOSPC) || calls != 1 {
		t.Errorf("stuck ENOSPC: calls %d, %v", calls, err)
	}
}
