package uapi

import (
	"testing"
	"unsafe"
)

// Sizes and offsets below are read from include/uapi/linux/iommufd.h
// (linux-libc-dev 6.12.117 for what 6.12 has, torvalds/linux b4d90dbc4c1b
// for the rest), not computed from the Go types.

func TestIOMMUFDLayout(t *testing.T) {
	checkLayout(t, IOMMUDestroy{}, 8, field{"Size", 0}, field{"ID", 4})
	checkLayout(t, IOMMUIOASAlloc{}, 12, field{"Size", 0}, field{"Flags", 4}, field{"OutIOASID", 8})
	checkLayout(t, IOMMUIOVARange{}, 16, field{"Start", 0}, field{"Last", 8})
	checkLayout(t, IOMMUIOASIOVARanges{}, 32,
		field{"Size", 0}, field{"IOASID", 4}, field{"NumIOVAs", 8},
		field{"AllowedIOVAs", 16}, field{"OutIOVAAlignment", 24})
	checkLayout(t, IOMMUIOASAllowIOVAs{}, 24,
		field{"Size", 0}, field{"IOASID", 4}, field{"NumIOVAs", 8}, field{"AllowedIOVAs", 16})
	checkLayout(t, IOMMUIOASMap{}, 40,
		field{"Size", 0}, field{"Flags", 4}, field{"IOASID", 8},
		field{"UserVA", 16}, field{"Length", 24}, field{"IOVA", 32})
	checkLayout(t, IOMMUIOASMapFile{}, 40,
		field{"Size", 0}, field{"Flags", 4}, field{"IOASID", 8}, field{"FD", 12},
		field{"Start", 16}, field{"Length", 24}, field{"IOVA", 32})
	checkLayout(t, IOMMUIOASCopy{}, 40,
		field{"Size", 0}, field{"Flags", 4}, field{"DstIOASID", 8}, field{"SrcIOASID", 12},
		field{"Length", 16}, field{"DstIOVA", 24}, field{"SrcIOVA", 32})
	checkLayout(t, IOMMUIOASUnmap{}, 24,
		field{"Size", 0}, field{"IOASID", 4}, field{"IOVA", 8}, field{"Length", 16})
	checkLayout(t, IOMMUOption{}, 24,
		field{"Size", 0}, field{"OptionID", 4}, field{"Op", 8}, field{"ObjectID", 12}, field{"Val64", 16})
	checkLayout(t, IOMMUVFIOIOAS{}, 12, field{"Size", 0}, field{"IOASID", 4}, field{"Op", 8})
	checkLayout(t, IOMMUHWPTVTDS1{}, 24,
		field{"Flags", 0}, field{"PgtblAddr", 8}, field{"AddrWidth", 16})
	checkLayout(t, IOMMUHWPTARMSMMUv3{}, 16, field{"STE", 0})
	checkLayout(t, IOMMUHWPTAlloc{}, 48,
		field{"Size", 0}, field{"Flags", 4}, field{"DevID", 8}, field{"PTID", 12},
		field{"OutHWPTID", 16}, field{"DataType", 24}, field{"DataLen", 28},
		field{"DataUptr", 32}, field{"FaultID", 40})
	checkLayout(t, IOMMUHWInfoVTD{}, 24, field{"Flags", 0}, field{"CapReg", 8}, field{"EcapReg", 16})
	checkLayout(t, IOMMUHWInfoARMSMMUv3{}, 40,
		field{"Flags", 0}, field{"IDR", 8}, field{"IIDR", 32}, field{"AIDR", 36})
	checkLayout(t, IOMMUHWInfoTegra241CMDQV{}, 8,
		field{"Flags", 0}, field{"Version", 4}, field{"Log2VCMDQs", 5}, field{"Log2VSIDs", 6})
	checkLayout(t, IOMMUHWInfo{}, 40,
		field{"Size", 0}, field{"Flags", 4}, field{"DevID", 8}, field{"DataLen", 12},
		field{"DataUptr", 16}, field{"OutDataType", 24}, field{"OutMaxPASIDLog2", 28},
		field{"OutCapabilities", 32})
	checkLayout(t, IOMMUHWPTSetDirtyTracking{}, 16,
		field{"Size", 0}, field{"Flags", 4}, field{"HWPTID", 8})
	checkLayout(t, IOMMUHWPTGetDirtyBitmap{}, 48,
		field{"Size", 0}, field{"HWPTID", 4}, field{"Flags", 8},
		field{"IOVA", 16}, field{"Length", 24}, field{"PageSize", 32}, field{"Data", 40})
	checkLayout(t, IOMMUHWPTVTDS1Invalidate{}, 24,
		field{"Addr", 0}, field{"NPages", 8}, field{"Flags", 16})
	checkLayout(t, IOMMUVIOMMUARMSMMUv3Invalidate{}, 16, field{"Cmd", 0})
	checkLayout(t, IOMMUHWPTInvalidate{}, 32,
		field{"Size", 0}, field{"HWPTID", 4}, field{"DataUptr", 8},
		field{"DataType", 16}, field{"EntryLen", 20}, field{"EntryNum", 24})
	checkLayout(t, IOMMUHWPTPgfault{}, 40,
		field{"Flags", 0}, field{"DevID", 4}, field{"PASID", 8}, field{"GrpID", 12},
		field{"Perm", 16}, field{"Addr", 24}, field{"Length", 32}, field{"Cookie", 36})
	checkLayout(t, IOMMUHWPTPageResponse{}, 8, field{"Cookie", 0}, field{"Code", 4})
	checkLayout(t, IOMMUFaultAlloc{}, 16,
		field{"Size", 0}, field{"Flags", 4}, field{"OutFaultID", 8}, field{"OutFaultFD", 12})
	checkLayout(t, IOMMUVIOMMUTegra241CMDQV{}, 16,
		field{"OutVINTFMmapOffset", 0}, field{"OutVINTFMmapLength", 8})
	checkLayout(t, IOMMUVIOMMUAlloc{}, 40,
		field{"Size", 0}, field{"Flags", 4}, field{"Type", 8}, field{"DevID", 12},
		field{"HWPTID", 16}, field{"OutVIOMMUID", 20}, field{"DataLen", 24}, field{"DataUptr", 32})
	checkLayout(t, IOMMUVDeviceAlloc{}, 24,
		field{"Size", 0}, field{"VIOMMUID", 4}, field{"DevID", 8},
		field{"OutVDeviceID", 12}, field{"VirtID", 16})
	checkLayout(t, IOMMUIOASChangeProcess{}, 8, field{"Size", 0})
	checkLayout(t, IOMMUFDVEventHeader{}, 8, field{"Flags", 0}, field{"Sequence", 4})
	checkLayout(t, IOMMUVEventARMSMMUv3{}, 32, field{"Evt", 0})
	checkLayout(t, IOMMUVEventTegra241CMDQV{}, 16, field{"LVCMDQErrMap", 0})
	checkLayout(t, IOMMUVEventQAlloc{}, 32,
		field{"Size", 0}, field{"Flags", 4}, field{"VIOMMUID", 8}, field{"Type", 12},
		field{"VEventQDepth", 16}, field{"OutVEventQID", 20}, field{"OutVEventQFD", 24})
	checkLayout(t, IOMMUHWQueueAlloc{}, 40,
		field{"Size", 0}, field{"Flags", 4}, field{"VIOMMUID", 8}, field{"Type", 12},
		field{"Index", 16}, field{"OutHWQueueID", 20},
		field{"NestingParentIOVA", 24}, field{"Length", 32})
}

// The minimum sizes are offsetofend of the field IOCTL_OP names in
// drivers/iommu/iommufd/main.c.
func TestIOMMUFDMinSizes(t *testing.T) {
	var (
		hwpt   IOMMUHWPTAlloc
		info   IOMMUHWInfo
		viommu IOMMUVIOMMUAlloc
		veq    IOMMUVEventQAlloc
	)
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"MinSizeIOMMUHWPTAlloc", MinSizeIOMMUHWPTAlloc, unsafe.Offsetof(hwpt.DataType)},      // end of __reserved
		{"MinSizeIOMMUHWInfo", MinSizeIOMMUHWInfo, unsafe.Offsetof(info.OutCapabilities)},     // end of __reserved[3]
		{"MinSizeIOMMUVIOMMUAlloc", MinSizeIOMMUVIOMMUAlloc, unsafe.Offsetof(viommu.DataLen)}, // end of out_viommu_id
		{"MinSizeIOMMUVEventQAlloc", MinSizeIOMMUVEventQAlloc, unsafe.Offsetof(veq.OutVEventQFD) + unsafe.Sizeof(veq.OutVEventQFD)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestIOMMUFDRequests(t *testing.T) {
	checkRequests(t, []request{
		{"IOMMU_DESTROY", IOMMU_DESTROY, 0x3b80},
		{"IOMMU_IOAS_ALLOC", IOMMU_IOAS_ALLOC, 0x3b81},
		{"IOMMU_IOAS_ALLOW_IOVAS", IOMMU_IOAS_ALLOW_IOVAS, 0x3b82},
		{"IOMMU_IOAS_COPY", IOMMU_IOAS_COPY, 0x3b83},
		{"IOMMU_IOAS_IOVA_RANGES", IOMMU_IOAS_IOVA_RANGES, 0x3b84},
		{"IOMMU_IOAS_MAP", IOMMU_IOAS_MAP, 0x3b85},
		{"IOMMU_IOAS_UNMAP", IOMMU_IOAS_UNMAP, 0x3b86},
		{"IOMMU_OPTION", IOMMU_OPTION, 0x3b87},
		{"IOMMU_VFIO_IOAS", IOMMU_VFIO_IOAS, 0x3b88},
		{"IOMMU_HWPT_ALLOC", IOMMU_HWPT_ALLOC, 0x3b89},
		{"IOMMU_GET_HW_INFO", IOMMU_GET_HW_INFO, 0x3b8a},
		{"IOMMU_HWPT_SET_DIRTY_TRACKING", IOMMU_HWPT_SET_DIRTY_TRACKING, 0x3b8b},
		{"IOMMU_HWPT_GET_DIRTY_BITMAP", IOMMU_HWPT_GET_DIRTY_BITMAP, 0x3b8c},
		{"IOMMU_HWPT_INVALIDATE", IOMMU_HWPT_INVALIDATE, 0x3b8d},
		{"IOMMU_FAULT_QUEUE_ALLOC", IOMMU_FAULT_QUEUE_ALLOC, 0x3b8e},
		{"IOMMU_IOAS_MAP_FILE", IOMMU_IOAS_MAP_FILE, 0x3b8f},
		{"IOMMU_VIOMMU_ALLOC", IOMMU_VIOMMU_ALLOC, 0x3b90},
		{"IOMMU_VDEVICE_ALLOC", IOMMU_VDEVICE_ALLOC, 0x3b91},
		{"IOMMU_IOAS_CHANGE_PROCESS", IOMMU_IOAS_CHANGE_PROCESS, 0x3b92},
		{"IOMMU_VEVENTQ_ALLOC", IOMMU_VEVENTQ_ALLOC, 0x3b93},
		{"IOMMU_HW_QUEUE_ALLOC", IOMMU_HW_QUEUE_ALLOC, 0x3b94},
	})
}
