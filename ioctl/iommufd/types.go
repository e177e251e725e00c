//go:build linux

package iommufd

import "github.com/iommu-agent/iommu-agent/ioctl/uapi"

// ID names an object in an iommufd: IOAS, HWPT, bound device, fault queue,
// vIOMMU, vDEVICE, vEVENTQ or HW queue. The kernel never hands out 0.
type ID uint32

// IOVA is an I/O virtual address.
type IOVA uint64

// Range is an inclusive IOVA interval, as struct iommu_iova_range.
type Range struct {
	Start IOVA
	Last  IOVA
}

// MapFlags are the flags of Map, MapFile and Copy.
type MapFlags uint32

const (
	FixedIOVA MapFlags = uapi.IOMMU_IOAS_MAP_FIXED_IOVA // map at the given IOVA; otherwise the kernel picks one
	Writeable MapFlags = uapi.IOMMU_IOAS_MAP_WRITEABLE  // DMA may write
	Readable  MapFlags = uapi.IOMMU_IOAS_MAP_READABLE   // DMA may read
)

// Option selects an IOMMU_OPTION.
type Option uint32

const (
	OptionRLimitMode Option = uapi.IOMMU_OPTION_RLIMIT_MODE // global: object ID 0
	OptionHugePages  Option = uapi.IOMMU_OPTION_HUGE_PAGES  // per IOAS
)

// RLimitMode is how pinned pages count against RLIMIT_MEMLOCK.
type RLimitMode uint64

const (
	RLimitUser    RLimitMode = 0 // per user, like type1 (default)
	RLimitProcess RLimitMode = 1 // per process, as KubeVirt and libvirt set it
)

// VFIOIOASOp is the operation of IOMMU_VFIO_IOAS.
type VFIOIOASOp uint16

const (
	VFIOIOASGet   VFIOIOASOp = uapi.IOMMU_VFIO_IOAS_GET
	VFIOIOASSet   VFIOIOASOp = uapi.IOMMU_VFIO_IOAS_SET
	VFIOIOASClear VFIOIOASOp = uapi.IOMMU_VFIO_IOAS_CLEAR
)

// HWPTAllocFlags are the flags of HWPTAlloc.
type HWPTAllocFlags uint32

const (
	HWPTAllocNestParent    HWPTAllocFlags = uapi.IOMMU_HWPT_ALLOC_NEST_PARENT
	HWPTAllocDirtyTracking HWPTAllocFlags = uapi.IOMMU_HWPT_ALLOC_DIRTY_TRACKING // EOPNOTSUPP without IOMMU support
	HWPTFaultIDValid       HWPTAllocFlags = uapi.IOMMU_HWPT_FAULT_ID_VALID       // set by HWPTOptions.FaultID
	HWPTAllocPASID         HWPTAllocFlags = uapi.IOMMU_HWPT_ALLOC_PASID          // since 6.15
)

// HWPTDataType is the type of a nested HWPT's driver data.
type HWPTDataType uint32

const (
	HWPTDataNone      HWPTDataType = uapi.IOMMU_HWPT_DATA_NONE
	HWPTDataVTDS1     HWPTDataType = uapi.IOMMU_HWPT_DATA_VTD_S1
	HWPTDataARMSMMUv3 HWPTDataType = uapi.IOMMU_HWPT_DATA_ARM_SMMUV3 // since 6.13
)

// VTDS1Flags are the flags of VTDS1.
type VTDS1Flags uint64

const (
	VTDS1SRE  VTDS1Flags = uapi.IOMMU_VTD_S1_SRE  // supervisor request
	VTDS1EAFE VTDS1Flags = uapi.IOMMU_VTD_S1_EAFE // extended access enable
	VTDS1WPE  VTDS1Flags = uapi.IOMMU_VTD_S1_WPE  // write protect enable
)

// HWInfoType is the type of IOMMU_GET_HW_INFO's driver data.
type HWInfoType uint32

const (
	HWInfoTypeNone          HWInfoType = uapi.IOMMU_HW_INFO_TYPE_NONE
	HWInfoTypeDefault       HWInfoType = uapi.IOMMU_HW_INFO_TYPE_DEFAULT // as input: the driver's own type
	HWInfoTypeIntelVTD      HWInfoType = uapi.IOMMU_HW_INFO_TYPE_INTEL_VTD
	HWInfoTypeARMSMMUv3     HWInfoType = uapi.IOMMU_HW_INFO_TYPE_ARM_SMMUV3     // since 6.13
	HWInfoTypeTegra241CMDQV HWInfoType = uapi.IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV // since 6.17
	HWInfoTypeAMD           HWInfoType = uapi.IOMMU_HW_INFO_TYPE_AMD            // after 6.12
)

// HWCaps are the generic capabilities IOMMU_GET_HW_INFO reports.
type HWCaps uint64

const (
	HWCapDirtyTracking HWCaps = uapi.IOMMU_HW_CAP_DIRTY_TRACKING
	HWCapPCIPASIDExec  HWCaps = uapi.IOMMU_HW_CAP_PCI_PASID_EXEC // meaningful only with MaxPASIDLog2 > 0
	HWCapPCIPASIDPriv  HWCaps = uapi.IOMMU_HW_CAP_PCI_PASID_PRIV // meaningful only with MaxPASIDLog2 > 0
)

// DirtyBitmapFlags are the flags of GetDirtyBitmap.
type DirtyBitmapFlags uint32

// DirtyBitmapNoClear reads the dirty bits without clearing them, for a
// read that an unmap of the same range follows.
const DirtyBitmapNoClear DirtyBitmapFlags = uapi.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR

// InvalidateDataType is the type of Invalidate's entries.
type InvalidateDataType uint32

const (
	InvalidateDataVTDS1     InvalidateDataType = uapi.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1
	InvalidateDataARMSMMUv3 InvalidateDataType = uapi.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 // on a vIOMMU, since 6.14
)

// VTDInvFlags are the flags of VTDS1Invalidate.
type VTDInvFlags uint32

// VTDInvLeaf limits an invalidation to leaf PTE caches.
const VTDInvLeaf VTDInvFlags = uapi.IOMMU_VTD_INV_FLAGS_LEAF

// VIOMMUType is the type of a vIOMMU.
type VIOMMUType uint32

const (
	VIOMMUTypeDefault       VIOMMUType = uapi.IOMMU_VIOMMU_TYPE_DEFAULT // reserved
	VIOMMUTypeARMSMMUv3     VIOMMUType = uapi.IOMMU_VIOMMU_TYPE_ARM_SMMUV3
	VIOMMUTypeTegra241CMDQV VIOMMUType = uapi.IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV // since 6.17
)

// VEventQType is the type of a vEVENTQ.
type VEventQType uint32

const (
	VEventQTypeDefault       VEventQType = uapi.IOMMU_VEVENTQ_TYPE_DEFAULT // reserved
	VEventQTypeARMSMMUv3     VEventQType = uapi.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3
	VEventQTypeTegra241CMDQV VEventQType = uapi.IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV // since 6.17
)

// HWQueueType is the type of a HW queue.
type HWQueueType uint32

const (
	HWQueueTypeDefault       HWQueueType = uapi.IOMMU_HW_QUEUE_TYPE_DEFAULT // reserved
	HWQueueTypeTegra241CMDQV HWQueueType = uapi.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV
)
