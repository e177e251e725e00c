//go:build linux

package iommufd

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

// HWPTOptions are the optional inputs of HWPTAlloc. The zero value asks
// for a plain kernel-managed HWPT.
type HWPTOptions struct {
	Flags   HWPTAllocFlags
	Data    HWPTData // driver data of a nested HWPT; nil for IOMMU_HWPT_DATA_NONE
	FaultID ID       // a FaultQueueAlloc ID; non-zero sets HWPTFaultIDValid
}

// HWPTData is the driver data of a user-managed (nested) HWPT: VTDS1,
// ARMSMMUv3STE or RawHWPTData.
type HWPTData interface {
	hwptData() (HWPTDataType, []byte)
}

// VTDS1 is an Intel VT-d stage-1 page table for a nested HWPT
// (struct iommu_hwpt_vtd_s1).
type VTDS1 struct {
	Flags     VTDS1Flags
	PgtblAddr uint64 // stage-1 table base, translated by the parent
	AddrWidth uint32
}

func (d VTDS1) hwptData() (HWPTDataType, []byte) {
	return HWPTDataVTDS1, bytesOf(&uapi.IOMMUHWPTVTDS1{
		Flags:     uint64(d.Flags),
		PgtblAddr: d.PgtblAddr,
		AddrWidth: d.AddrWidth,
	})
}

// ARMSMMUv3STE is the first two words of an SMMUv3 Stream Table Entry for
// a nested HWPT (struct iommu_hwpt_arm_smmuv3; Linux 6.13). They are
// passed little-endian, as the header asks, whatever the host order.
type ARMSMMUv3STE [2]uint64

func (s ARMSMMUv3STE) hwptData() (HWPTDataType, []byte) {
	b := make([]byte, unsafe.Sizeof(uapi.IOMMUHWPTARMSMMUv3{}))
	binary.LittleEndian.PutUint64(b[0:], s[0])
	binary.LittleEndian.PutUint64(b[8:], s[1])
	return HWPTDataARMSMMUv3, b
}

// RawHWPTData passes Data as the driver data of type Type unchanged, for
// types this package does not know and for tests of the kernel's checks.
type RawHWPTData struct {
	Type HWPTDataType
	Data []byte
}

func (r RawHWPTData) hwptData() (HWPTDataType, []byte) { return r.Type, r.Data }

// HWPTAlloc wraps IOMMU_HWPT_ALLOC: it allocates a HW page table for the
// bound device dev. With pt an IOAS it is kernel-managed and mirrors the
// IOAS's maps (HWPTAllocNestParent makes it a nesting parent); with pt a
// parent HWPT or a vIOMMU and opts.Data set it is a user-managed nested
// HWPT. Attach it with VFIO_DEVICE_ATTACH_IOMMUFD_PT.
func (fd *FD) HWPTAlloc(dev, pt ID, opts HWPTOptions) (ID, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	arg := hwptAllocArg(dev, pt, opts, &pin)
	if err := fd.call(uapi.IOMMU_HWPT_ALLOC, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return ID(arg.OutHWPTID), nil
}

func hwptAllocArg(dev, pt ID, opts HWPTOptions, pin *runtime.Pinner) uapi.IOMMUHWPTAlloc {
	arg := uapi.IOMMUHWPTAlloc{
		Size:  uint32(unsafe.Sizeof(uapi.IOMMUHWPTAlloc{})),
		Flags: uint32(opts.Flags),
		DevID: uint32(dev),
		PTID:  uint32(pt),
	}
	if opts.FaultID != 0 {
		arg.Flags |= uint32(HWPTFaultIDValid)
		arg.FaultID = uint32(opts.FaultID)
	}
	if opts.Data != nil {
		typ, data := opts.Data.hwptData()
		arg.DataType = uint32(typ)
		arg.DataLen = uint32(len(data))
		arg.DataUptr = userPtr(pin, data)
	}
	return arg
}

// HWInfo is what IOMMU_GET_HW_INFO reports about the IOMMU behind a
// device.
type HWInfo struct {
	Type         HWInfoType // how to read Data
	Capabilities HWCaps
	MaxPASIDLog2 uint8  // PASID width, 0 without PASID (Linux 6.15; in 6.12.y)
	Data         []byte // the driver's raw payload, as long as the kernel says it is
}

// Bounds for GetHWInfo: room for every payload known today (the largest,
// SMMUv3, is 40 bytes) and one retry when the kernel has more.
const (
	hwInfoInitial  = 64
	hwInfoMaxTries = 2
)

// GetHWInfo wraps IOMMU_GET_HW_INFO: the type, capabilities and raw
// registers of the IOMMU behind the bound device dev. See HWInfo.VTD and
// HWInfo.SMMUv3 for the payload; ioctl/hwinfo decodes it field by field.
func (fd *FD) GetHWInfo(dev ID) (*HWInfo, error) {
	return fd.hwInfo(dev, 0, HWInfoTypeDefault)
}

// GetHWInfoAs wraps IOMMU_GET_HW_INFO with IOMMU_HW_INFO_FLAG_INPUT_TYPE
// (Linux 6.17): the payload of type typ, for an IOMMU that reports more
// than one (Tegra241 CMDQV next to SMMUv3). Older kernels say EOPNOTSUPP.
func (fd *FD) GetHWInfoAs(dev ID, typ HWInfoType) (*HWInfo, error) {
	return fd.hwInfo(dev, uapi.IOMMU_HW_INFO_FLAG_INPUT_TYPE, typ)
}

func (fd *FD) hwInfo(dev ID, flags uint32, typ HWInfoType) (*HWInfo, error) {
	return hwInfo(dev, flags, typ, func(arg *uapi.IOMMUHWInfo, _ []byte) error {
		return fd.call(uapi.IOMMU_GET_HW_INFO, unsafe.Pointer(arg))
	})
}

// hwInfo is GetHWInfo's buffer logic. The kernel fills at most DataLen
// bytes and returns the length it has; a longer one means retry with that
// much room. call issues the ioctl; it also receives the buffer DataUptr
// points to, which only a fake kernel needs.
func hwInfo(dev ID, flags uint32, typ HWInfoType, call func(*uapi.IOMMUHWInfo, []byte) error) (*HWInfo, error) {
	n := hwInfoInitial
	for range hwInfoMaxTries {
		buf := make([]byte, n)
		var pin runtime.Pinner
		arg := uapi.IOMMUHWInfo{
			Size:        uint32(unsafe.Sizeof(uapi.IOMMUHWInfo{})),
			Flags:       flags,
			DevID:       uint32(dev),
			DataLen:     uint32(n),
			DataUptr:    userPtr(&pin, buf),
			OutDataType: uint32(typ), // in_data_type with IOMMU_HW_INFO_FLAG_INPUT_TYPE
		}
		err := call(&arg, buf)
		pin.Unpin()
		if err != nil {
			return nil, err
		}
		if int(arg.DataLen) <= n {
			return &HWInfo{
				Type:         HWInfoType(arg.OutDataType),
				Capabilities: HWCaps(arg.OutCapabilities),
				MaxPASIDLog2: arg.OutMaxPASIDLog2,
				Data:         buf[:arg.DataLen],
			}, nil
		}
		n = int(arg.DataLen)
	}
	return nil, fmt.Errorf("IOMMU_GET_HW_INFO: data length still above %d bytes after %d calls", n, hwInfoMaxTries)
}

// VTDInfo is Intel VT-d's payload (struct iommu_hw_info_vtd).
type VTDInfo struct {
	Flags   uint32 // VTDErrata772415SPR17
	CapReg  uint64 // Capability Register, VT-d spec 11.4.2
	EcapReg uint64 // Extended Capability Register, VT-d spec 11.4.3
}

// VTDErrata772415SPR17 in VTDInfo.Flags: read-only maps are not allowed
// in a nesting parent.
const VTDErrata772415SPR17 = uapi.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17

// VTD returns the VT-d payload; false if the IOMMU is not VT-d.
func (h *HWInfo) VTD() (VTDInfo, bool) {
	if h.Type != HWInfoTypeIntelVTD {
		return VTDInfo{}, false
	}
	k := fromBytes[uapi.IOMMUHWInfoVTD](h.Data)
	return VTDInfo{Flags: k.Flags, CapReg: k.CapReg, EcapReg: k.EcapReg}, true
}

// SMMUv3Info is Arm SMMUv3's payload (struct iommu_hw_info_arm_smmuv3;
// Linux 6.13): the raw ID registers. iommufd.h lists the only fields a VMM
// should read.
type SMMUv3Info struct {
	Flags uint32
	IDR   [6]uint32 // SMMU_IDR0..5
	IIDR  uint32
	AIDR  uint32
}

// SMMUv3 returns the SMMUv3 payload; false if the IOMMU is not an SMMUv3.
func (h *HWInfo) SMMUv3() (SMMUv3Info, bool) {
	if h.Type != HWInfoTypeARMSMMUv3 {
		return SMMUv3Info{}, false
	}
	k := fromBytes[uapi.IOMMUHWInfoARMSMMUv3](h.Data)
	return SMMUv3Info{Flags: k.Flags, IDR: k.IDR, IIDR: k.IIDR, AIDR: k.AIDR}, true
}

// Tegra241CMDQVInfo is NVIDIA Tegra241 CMDQV's payload (struct
// iommu_hw_info_tegra241_cmdqv; Linux 6.17).
type Tegra241CMDQVInfo struct {
	Flags      uint32
	Version    uint8
	Log2VCMDQs uint8
	Log2VSIDs  uint8
}

// Tegra241CMDQV returns the CMDQV payload; false for another type.
func (h *HWInfo) Tegra241CMDQV() (Tegra241CMDQVInfo, bool) {
	if h.Type != HWInfoTypeTegra241CMDQV {
		return Tegra241CMDQVInfo{}, false
	}
	k := fromBytes[uapi.IOMMUHWInfoTegra241CMDQV](h.Data)
	return Tegra241CMDQVInfo{Flags: k.Flags, Version: k.Version, Log2VCMDQs: k.Log2VCMDQs, Log2VSIDs: k.Log2VSIDs}, true
}

// SetDirtyTracking wraps IOMMU_HWPT_SET_DIRTY_TRACKING: it starts or stops
// dirty tracking on a HWPT allocated with HWPTAllocDirtyTracking.
func (fd *FD) SetDirtyTracking(hwpt ID, enable bool) error {
	arg := uapi.IOMMUHWPTSetDirtyTracking{
		Size:   uint32(unsafe.Sizeof(uapi.IOMMUHWPTSetDirtyTracking{})),
		HWPTID: uint32(hwpt),
	}
	if enable {
		arg.Flags = uapi.IOMMU_HWPT_DIRTY_TRACKING_ENABLE
	}
	return fd.call(uapi.IOMMU_HWPT_SET_DIRTY_TRACKING, unsafe.Pointer(&arg))
}

// DirtyBitmapWords is how many uint64 words GetDirtyBitmap's bitmap needs
// for length bytes of IOVA at pageSize per bit, as the kernel's
// iova_bitmap counts them; 0 when either is 0.
func DirtyBitmapWords(length, pageSize uint64) int {
	if length == 0 || pageSize == 0 {
		return 0
	}
	shift := 6 + bits.TrailingZeros64(pageSize) // 64 pages per word; the kernel uses __ffs(page_size)
	if shift >= 64 {
		return 1
	}
	return int((length-1)>>shift) + 1
}

// GetDirtyBitmap wraps IOMMU_HWPT_GET_DIRTY_BITMAP: it sets a bit in
// bitmap for each dirty pageSize page of [iova, iova+length), bit k of
// word w standing for iova + (64w+k)·pageSize, and clears the IOMMU's
// dirty state unless flags has DirtyBitmapNoClear. Bits of clean pages are
// left as they were, so zero bitmap first. bitmap must have
// DirtyBitmapWords(length, pageSize) words: a shorter one, or a zero
// length or pageSize, is refused with EINVAL before the kernel sees it.
func (fd *FD) GetDirtyBitmap(hwpt ID, iova IOVA, length, pageSize uint64, flags DirtyBitmapFlags, bitmap []uint64) error {
	if need := DirtyBitmapWords(length, pageSize); need == 0 || len(bitmap) < need {
		return fmt.Errorf("IOMMU_HWPT_GET_DIRTY_BITMAP: %d-word bitmap for %#x bytes at page size %#x (needs %d), not sent: %w",
			len(bitmap), length, pageSize, need, unix.EINVAL)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	arg := uapi.IOMMUHWPTGetDirtyBitmap{
		Size:     uint32(unsafe.Sizeof(uapi.IOMMUHWPTGetDirtyBitmap{})),
		HWPTID:   uint32(hwpt),
		Flags:    uint32(flags),
		IOVA:     uint64(iova),
		Length:   length,
		PageSize: pageSize,
		Data:     userPtr(&pin, bitmap),
	}
	return fd.call(uapi.IOMMU_HWPT_GET_DIRTY_BITMAP, unsafe.Pointer(&arg))
}

// InvalidateEntries is a batch of driver-specific cache invalidation
// requests: VTDS1Invalidations, ARMSMMUv3Invalidations or
// RawInvalidations. An empty batch asks whether the kernel supports the
// type at all.
type InvalidateEntries interface {
	invalidateData() (typ InvalidateDataType, entryLen, num uint32, data []byte)
}

// VTDS1Invalidate is one VT-d stage-1 invalidation (struct
// iommu_hwpt_vtd_s1_invalidate). Addr 0 and NPages math.MaxUint64
// invalidate everything.
type VTDS1Invalidate struct {
	Addr   uint64 // 4 KiB aligned
	NPages uint64 // 4 KiB pages
	Flags  VTDInvFlags
}

// VTDS1Invalidations invalidates a nested VT-d HWPT's caches.
type VTDS1Invalidations []VTDS1Invalidate

func (v VTDS1Invalidations) invalidateData() (InvalidateDataType, uint32, uint32, []byte) {
	size := int(unsafe.Sizeof(uapi.IOMMUHWPTVTDS1Invalidate{}))
	data := make([]byte, 0, len(v)*size)
	for _, e := range v {
		data = append(data, bytesOf(&uapi.IOMMUHWPTVTDS1Invalidate{Addr: e.Addr, NPages: e.NPages, Flags: uint32(e.Flags)})...)
	}
	return InvalidateDataVTDS1, uint32(size), uint32(len(v)), data
}

// ARMSMMUv3Invalidations are 128-bit SMMUv3 CMDQ commands for a vIOMMU
// (struct iommu_viommu_arm_smmuv3_invalidate; Linux 6.14), passed
// little-endian as the header asks. Unsupported commands are EIO.
type ARMSMMUv3Invalidations [][2]uint64

func (c ARMSMMUv3Invalidations) invalidateData() (InvalidateDataType, uint32, uint32, []byte) {
	size := int(unsafe.Sizeof(uapi.IOMMUVIOMMUARMSMMUv3Invalidate{}))
	data := make([]byte, len(c)*size)
	for i, cmd := range c {
		binary.LittleEndian.PutUint64(data[i*size:], cmd[0])
		binary.LittleEndian.PutUint64(data[i*size+8:], cmd[1])
	}
	return InvalidateDataARMSMMUv3, uint32(size), uint32(len(c)), data
}

// RawInvalidations passes Num entries of EntryLen bytes from Data
// unchanged, for types this package does not know and for tests of the
// kernel's checks. Data must hold EntryLen·Num bytes.
type RawInvalidations struct {
	Type     InvalidateDataType
	EntryLen uint32
	Num      uint32
	Data     []byte
}

func (r RawInvalidations) invalidateData() (InvalidateDataType, uint32, uint32, []byte) {
	return r.Type, r.EntryLen, r.Num, r.Data
}

// Invalidate wraps IOMMU_HWPT_INVALIDATE: it flushes the caches of a nested
// HWPT (or, since 6.14, of a vIOMMU) after its user-managed table changed.
// handled is how many entries the kernel processed, also on error.
func (fd *FD) Invalidate(hwpt ID, entries InvalidateEntries) (handled uint32, err error) {
	typ, entryLen, num, data := entries.invalidateData()
	if uint64(entryLen)*uint64(num) > uint64(len(data)) {
		return 0, fmt.Errorf("IOMMU_HWPT_INVALIDATE: %d entries of %d bytes in %d bytes of data, not sent: %w",
			num, entryLen, len(data), unix.EINVAL)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	arg := uapi.IOMMUHWPTInvalidate{
		Size:     uint32(unsafe.Sizeof(uapi.IOMMUHWPTInvalidate{})),
		HWPTID:   uint32(hwpt),
		DataUptr: userPtr(&pin, data),
		DataType: uint32(typ),
		EntryLen: entryLen,
		EntryNum: num,
	}
	err = fd.call(uapi.IOMMU_HWPT_INVALIDATE, unsafe.Pointer(&arg))
	return arg.EntryNum, err
}

// FaultQueueAlloc wraps IOMMU_FAULT_QUEUE_ALLOC: a queue for I/O page
// faults of HWPTs allocated with its ID (HWPTOptions.FaultID). The file
// reads struct iommu_hwpt_pgfault records (uapi.IOMMUHWPTPgfault) and takes
// struct iommu_hwpt_page_response writes; the caller closes it.
func (fd *FD) FaultQueueAlloc() (ID, *os.File, error) {
	arg := uapi.IOMMUFaultAlloc{Size: uint32(unsafe.Sizeof(uapi.IOMMUFaultAlloc{}))}
	if err := fd.call(uapi.IOMMU_FAULT_QUEUE_ALLOC, unsafe.Pointer(&arg)); err != nil {
		return 0, nil, err
	}
	f, err := newFile(arg.OutFaultFD, "iommufd-fault")
	if err != nil {
		return 0, nil, fmt.Errorf("IOMMU_FAULT_QUEUE_ALLOC: %w", err)
	}
	return ID(arg.OutFaultID), f, nil
}

// bytesOf returns a copy of the memory of *v, a uapi struct, as the kernel
// reads it: explicit _ fields keep padding zero.
func bytesOf[T any](v *T) []byte {
	b := make([]byte, unsafe.Sizeof(*v))
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(v)), len(b)))
	return b
}

// fromBytes reads a uapi struct from b; bytes b lacks (a shorter payload
// from an older kernel) read as zero.
func fromBytes[T any](b []byte) T {
	var v T
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), unsafe.Sizeof(v)), b)
	return v
}
