//go:build linux

package iommufd

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
)

// VIOMMUAlloc wraps IOMMU_VIOMMU_ALLOC (Linux 6.13): a virtual IOMMU, the
// slice of the physical IOMMU behind dev that one VM's vIOMMU model uses,
// over the nesting parent HWPT hwpt. data is the driver's data, in and
// out (Tegra241 CMDQV writes its mmap offset and length there; since
// 6.17); nil for none.
func (fd *FD) VIOMMUAlloc(dev, hwpt ID, typ VIOMMUType, data []byte) (ID, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	arg := uapi.IOMMUVIOMMUAlloc{
		Size:     uint32(unsafe.Sizeof(uapi.IOMMUVIOMMUAlloc{})),
		Type:     uint32(typ),
		DevID:    uint32(dev),
		HWPTID:   uint32(hwpt),
		DataLen:  uint32(len(data)),
		DataUptr: userPtr(&pin, data),
	}
	if err := fd.call(uapi.IOMMU_VIOMMU_ALLOC, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return ID(arg.OutVIOMMUID), nil
}

// VDeviceAlloc wraps IOMMU_VDEVICE_ALLOC (Linux 6.13): the device dev as
// the vIOMMU viommu's guest sees it, with the virtual ID virtID (vSID on
// SMMUv3, vDeviceID on AMD, vRID on VT-d). Destroy it before closing the
// device, or its ID leaks until the iommufd is closed.
func (fd *FD) VDeviceAlloc(viommu, dev ID, virtID uint64) (ID, error) {
	arg := uapi.IOMMUVDeviceAlloc{
		Size:     uint32(unsafe.Sizeof(uapi.IOMMUVDeviceAlloc{})),
		VIOMMUID: uint32(viommu),
		DevID:    uint32(dev),
		VirtID:   virtID,
	}
	if err := fd.call(uapi.IOMMU_VDEVICE_ALLOC, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return ID(arg.OutVDeviceID), nil
}

// VEventQAlloc wraps IOMMU_VEVENTQ_ALLOC (Linux 6.15): an event queue of
// type typ for the vIOMMU viommu, one per type, holding at most depth
// events. The file reads records of a struct iommufd_vevent_header
// (uapi.IOMMUFDVEventHeader) and the type's event; the caller closes it.
func (fd *FD) VEventQAlloc(viommu ID, typ VEventQType, depth uint32) (ID, *os.File, error) {
	arg := uapi.IOMMUVEventQAlloc{
		Size:         uint32(unsafe.Sizeof(uapi.IOMMUVEventQAlloc{})),
		VIOMMUID:     uint32(viommu),
		Type:         uint32(typ),
		VEventQDepth: depth,
	}
	if err := fd.call(uapi.IOMMU_VEVENTQ_ALLOC, unsafe.Pointer(&arg)); err != nil {
		return 0, nil, err
	}
	f, err := newFile(arg.OutVEventQFD, "iommufd-veventq")
	if err != nil {
		return 0, nil, fmt.Errorf("IOMMU_VEVENTQ_ALLOC: %w", err)
	}
	return ID(arg.OutVEventQID), f, nil
}

// HWQueueAlloc wraps IOMMU_HW_QUEUE_ALLOC (Linux 6.17): a HW-accelerated
// queue number index of type typ for the vIOMMU viommu, which the hardware
// reads from guest memory at base (an IOVA of the nesting parent) for
// length bytes.
func (fd *FD) HWQueueAlloc(viommu ID, typ HWQueueType, index uint32, base IOVA, length uint64) (ID, error) {
	arg := uapi.IOMMUHWQueueAlloc{
		Size:              uint32(unsafe.Sizeof(uapi.IOMMUHWQueueAlloc{})),
		VIOMMUID:          uint32(viommu),
		Type:              uint32(typ),
		Index:             index,
		NestingParentIOVA: uint64(base),
		Length:            length,
	}
	if err := fd.call(uapi.IOMMU_HW_QUEUE_ALLOC, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return ID(arg.OutHWQueueID), nil
}
