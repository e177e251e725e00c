package uapi

import "structs"

// This file mirrors include/uapi/linux/vfio.h as shipped in Debian's
// linux-libc-dev 6.12.117-1 (trixie), the guest kernel's series.
//
// Additions made in mainline after 6.12 are included where their layout is
// released (torvalds/linux, include/uapi/linux/vfio.h @02256acf); each says
// the release that brought it. They only ever grow a struct at its end
// behind argsz and a flag bit, so a 6.12 kernel accepts the larger argsz
// (it copies its own minsz) and rejects only the new flag bits (EINVAL).
//
// Comments here say what the kernel's header comment says, briefly; the
// header is the reference for semantics and errnos.

// VFIO_API_VERSION is what VFIO_GET_API_VERSION returns.
const VFIO_API_VERSION = 0

// Extensions, for VFIO_CHECK_EXTENSION; the IOMMU types also for
// VFIO_SET_IOMMU.
const (
	VFIO_TYPE1_IOMMU     = 1
	VFIO_SPAPR_TCE_IOMMU = 2
	VFIO_TYPE1v2_IOMMU   = 3
	VFIO_DMA_CC_IOMMU    = 4 // IOMMU enforces DMA cache coherence
	VFIO_EEH             = 5
	// VFIO_TYPE1_NESTING_IOMMU is in the 6.12 header; 6.13 removed the
	// type and renamed the number __VFIO_RESERVED_TYPE1_NESTING_IOMMU.
	VFIO_TYPE1_NESTING_IOMMU = 6
	VFIO_SPAPR_TCE_v2_IOMMU  = 7
	VFIO_NOIOMMU_IOMMU       = 8  // no translation or isolation; taints the kernel
	VFIO_UNMAP_ALL           = 9  // supports VFIO_DMA_UNMAP_FLAG_ALL
	VFIO_UPDATE_VADDR        = 10 // supports the VADDR map/unmap flags
)

// VFIO_TYPE is the ioctl type letter ';', shared with iommufd; VFIO
// request numbers are VFIO_BASE + k.
const (
	VFIO_TYPE = ';'
	VFIO_BASE = 100
)

// VFIOInfoCapHeader mirrors struct vfio_info_cap_header: one link of the
// capability chain of the INFO ioctls. Next is an offset from the start of
// the INFO buffer; 0 ends the chain.
type VFIOInfoCapHeader struct {
	_       structs.HostLayout
	ID      uint16
	Version uint16
	Next    uint32
}

// Container (/dev/vfio/vfio) ioctls.
const (
	VFIO_GET_API_VERSION = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+0)<<iocNRShift // 0x3b64
	VFIO_CHECK_EXTENSION = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+1)<<iocNRShift // 0x3b65, extension by value
	VFIO_SET_IOMMU       = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+2)<<iocNRShift // 0x3b66, type by value
)

// VFIOGroupStatus mirrors struct vfio_group_status.
type VFIOGroupStatus struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
}

const (
	VFIO_GROUP_FLAGS_VIABLE        = 1 << 0
	VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1
)

// Group (/dev/vfio/N) ioctls.
const (
	VFIO_GROUP_GET_STATUS      = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+3)<<iocNRShift // 0x3b67
	VFIO_GROUP_SET_CONTAINER   = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+4)<<iocNRShift // 0x3b68, pointer to s32 fd
	VFIO_GROUP_UNSET_CONTAINER = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+5)<<iocNRShift // 0x3b69
	VFIO_GROUP_GET_DEVICE_FD   = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+6)<<iocNRShift // 0x3b6a, NUL-terminated name; returns the fd
)

// VFIODeviceInfo mirrors struct vfio_device_info.
type VFIODeviceInfo struct {
	_          structs.HostLayout
	ArgSz      uint32
	Flags      uint32
	NumRegions uint32 // max region index + 1
	NumIRQs    uint32 // max IRQ index + 1
	CapOffset  uint32 // valid with VFIO_DEVICE_FLAGS_CAPS
	_          uint32 // pad
}

const (
	VFIO_DEVICE_FLAGS_RESET    = 1 << 0
	VFIO_DEVICE_FLAGS_PCI      = 1 << 1
	VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2
	VFIO_DEVICE_FLAGS_AMBA     = 1 << 3
	VFIO_DEVICE_FLAGS_CCW      = 1 << 4
	VFIO_DEVICE_FLAGS_AP       = 1 << 5
	VFIO_DEVICE_FLAGS_FSL_MC   = 1 << 6
	VFIO_DEVICE_FLAGS_CAPS     = 1 << 7
	VFIO_DEVICE_FLAGS_CDX      = 1 << 8
)

// Device API strings of mediated device types.
const (
	VFIO_DEVICE_API_PCI_STRING      = "vfio-pci"
	VFIO_DEVICE_API_PLATFORM_STRING = "vfio-platform"
	VFIO_DEVICE_API_AMBA_STRING     = "vfio-amba"
	VFIO_DEVICE_API_CCW_STRING      = "vfio-ccw"
	VFIO_DEVICE_API_AP_STRING       = "vfio-ap"
)

// VFIO_DEVICE_GET_INFO capability IDs. The zPCI ones (s390) are defined in
// vfio_zdev.h, which this package does not mirror.
const (
	VFIO_DEVICE_INFO_CAP_ZPCI_BASE       = 1
	VFIO_DEVICE_INFO_CAP_ZPCI_GROUP      = 2
	VFIO_DEVICE_INFO_CAP_ZPCI_UTIL       = 3
	VFIO_DEVICE_INFO_CAP_ZPCI_PFIP       = 4
	VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP = 5
)

// VFIODeviceInfoCapPCIAtomicComp mirrors struct
// vfio_device_info_cap_pci_atomic_comp.
type VFIODeviceInfoCapPCIAtomicComp struct {
	_      structs.HostLayout
	Header VFIOInfoCapHeader
	Flags  uint32
	_      uint32 // reserved
}

const (
	VFIO_PCI_ATOMIC_COMP32  = 1 << 0
	VFIO_PCI_ATOMIC_COMP64  = 1 << 1
	VFIO_PCI_ATOMIC_COMP128 = 1 << 2
)

// VFIORegionInfo mirrors struct vfio_region_info.
type VFIORegionInfo struct {
	_         structs.HostLayout
	ArgSz     uint32
	Flags     uint32
	Index     uint32
	CapOffset uint32 // valid with VFIO_REGION_INFO_FLAG_CAPS
	Size      uint64 // region size in bytes
	Offset    uint64 // region offset from the start of the device fd
}

const (
	VFIO_REGION_INFO_FLAG_READ  = 1 << 0
	VFIO_REGION_INFO_FLAG_WRITE = 1 << 1
	VFIO_REGION_INFO_FLAG_MMAP  = 1 << 2
	VFIO_REGION_INFO_FLAG_CAPS  = 1 << 3
)

// VFIO_DEVICE_GET_REGION_INFO capability IDs.
const (
	VFIO_REGION_INFO_CAP_SPARSE_MMAP    = 1
	VFIO_REGION_INFO_CAP_TYPE           = 2
	VFIO_REGION_INFO_CAP_MSIX_MAPPABLE  = 3 // header only
	VFIO_REGION_INFO_CAP_NVLINK2_SSATGT = 4 // deprecated, no longer provided
	VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD = 5 // deprecated, no longer provided
)

// VFIORegionSparseMmapArea mirrors struct vfio_region_sparse_mmap_area.
type VFIORegionSparseMmapArea struct {
	_      structs.HostLayout
	Offset uint64 // within the region
	Size   uint64
}

// VFIORegionInfoCapSparseMmap mirrors struct
// vfio_region_info_cap_sparse_mmap; NrAreas VFIORegionSparseMmapArea
// follow it (flexible array areas[], omitted).
type VFIORegionInfoCapSparseMmap struct {
	_       structs.HostLayout
	Header  VFIOInfoCapHeader
	NrAreas uint32
	_       uint32 // reserved
}

// VFIORegionInfoCapType mirrors struct vfio_region_info_cap_type.
type VFIORegionInfoCapType struct {
	_       structs.HostLayout
	Header  VFIOInfoCapHeader
	Type    uint32 // global per bus driver
	Subtype uint32 // type specific
}

// Region types and subtypes (VFIO_REGION_INFO_CAP_TYPE).
const (
	VFIO_REGION_TYPE_PCI_VENDOR_TYPE      = 1 << 31
	VFIO_REGION_TYPE_PCI_VENDOR_MASK      = 0xffff
	VFIO_REGION_TYPE_GFX                  = 1
	VFIO_REGION_TYPE_CCW                  = 2
	VFIO_REGION_TYPE_MIGRATION_DEPRECATED = 3

	VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION   = 1 // vendor 8086
	VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG   = 2
	VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG    = 3
	VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM   = 1 // vendor 10de; deprecated
	VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD     = 1 // vendor 1014; deprecated
	VFIO_REGION_SUBTYPE_GFX_EDID             = 1
	VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD        = 1
	VFIO_REGION_SUBTYPE_CCW_SCHIB            = 2
	VFIO_REGION_SUBTYPE_CCW_CRW              = 3
	VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED = 1
)

// VFIORegionGfxEDID mirrors struct vfio_region_gfx_edid, the layout of the
// GFX EDID region (not an ioctl argument).
type VFIORegionGfxEDID struct {
	_           structs.HostLayout
	EDIDOffset  uint32
	EDIDMaxSize uint32
	EDIDSize    uint32
	MaxXRes     uint32
	MaxYRes     uint32
	LinkState   uint32
}

const (
	VFIO_DEVICE_GFX_LINK_STATE_UP   = 1
	VFIO_DEVICE_GFX_LINK_STATE_DOWN = 2
)

// VFIODeviceMigrationInfo mirrors struct vfio_device_migration_info, the
// header of the deprecated v1 migration region.
type VFIODeviceMigrationInfo struct {
	_            structs.HostLayout
	DeviceState  uint32
	_            uint32 // reserved
	PendingBytes uint64
	DataOffset   uint64
	DataSize     uint64
}

// Deprecated v1 migration states (VFIODeviceMigrationInfo.DeviceState).
const (
	VFIO_DEVICE_STATE_V1_STOP     = 0
	VFIO_DEVICE_STATE_V1_RUNNING  = 1 << 0
	VFIO_DEVICE_STATE_V1_SAVING   = 1 << 1
	VFIO_DEVICE_STATE_V1_RESUMING = 1 << 2
	VFIO_DEVICE_STATE_MASK        = VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING
)

// VFIORegionInfoCapNVLink2SSATgt mirrors struct
// vfio_region_info_cap_nvlink2_ssatgt (deprecated).
type VFIORegionInfoCapNVLink2SSATgt struct {
	_      structs.HostLayout
	Header VFIOInfoCapHeader
	Tgt    uint64
}

// VFIORegionInfoCapNVLink2LnkSpd mirrors struct
// vfio_region_info_cap_nvlink2_lnkspd (deprecated).
type VFIORegionInfoCapNVLink2LnkSpd struct {
	_         structs.HostLayout
	Header    VFIOInfoCapHeader
	LinkSpeed uint32
	_         uint32 // __pad
}

// VFIOIRQInfo mirrors struct vfio_irq_info.
type VFIOIRQInfo struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	Index uint32
	Count uint32 // IRQs within this index; 0 = unimplemented
}

const (
	VFIO_IRQ_INFO_EVENTFD    = 1 << 0
	VFIO_IRQ_INFO_MASKABLE   = 1 << 1
	VFIO_IRQ_INFO_AUTOMASKED = 1 << 2
	VFIO_IRQ_INFO_NORESIZE   = 1 << 3
)

// VFIOIRQSet mirrors struct vfio_irq_set. Data follows it (flexible array
// data[], omitted): nothing for DATA_NONE, Count bytes for DATA_BOOL,
// Count s32 eventfds for DATA_EVENTFD. Its size, 20, is not a multiple of 8.
type VFIOIRQSet struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	Index uint32
	Start uint32
	Count uint32
}

const (
	VFIO_IRQ_SET_DATA_NONE      = 1 << 0
	VFIO_IRQ_SET_DATA_BOOL      = 1 << 1 // u8 per IRQ
	VFIO_IRQ_SET_DATA_EVENTFD   = 1 << 2 // s32 per IRQ; -1 de-assigns
	VFIO_IRQ_SET_ACTION_MASK    = 1 << 3
	VFIO_IRQ_SET_ACTION_UNMASK  = 1 << 4
	VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5

	VFIO_IRQ_SET_DATA_TYPE_MASK   = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD
	VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER
)

// Device ioctls, valid on a cdev fd and on a group-obtained device fd.
const (
	VFIO_DEVICE_GET_INFO               = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+7)<<iocNRShift  // 0x3b6b
	VFIO_DEVICE_GET_REGION_INFO        = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+8)<<iocNRShift  // 0x3b6c
	VFIO_DEVICE_GET_IRQ_INFO           = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+9)<<iocNRShift  // 0x3b6d
	VFIO_DEVICE_SET_IRQS               = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+10)<<iocNRShift // 0x3b6e
	VFIO_DEVICE_RESET                  = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+11)<<iocNRShift // 0x3b6f
	VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+12)<<iocNRShift // 0x3b70
	VFIO_DEVICE_PCI_HOT_RESET          = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+13)<<iocNRShift // 0x3b71
	VFIO_DEVICE_QUERY_GFX_PLANE        = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+14)<<iocNRShift // 0x3b72
	VFIO_DEVICE_GET_GFX_DMABUF         = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+15)<<iocNRShift // 0x3b73, returns a dma-buf fd
	VFIO_DEVICE_IOEVENTFD              = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+16)<<iocNRShift // 0x3b74
	VFIO_DEVICE_FEATURE                = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+17)<<iocNRShift // 0x3b75
	VFIO_DEVICE_BIND_IOMMUFD           = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+18)<<iocNRShift // 0x3b76, cdev only
	VFIO_DEVICE_ATTACH_IOMMUFD_PT      = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+19)<<iocNRShift // 0x3b77, cdev only
	VFIO_DEVICE_DETACH_IOMMUFD_PT      = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+20)<<iocNRShift // 0x3b78, cdev only
	// VFIO_MIG_GET_PRECOPY_INFO is issued on the migration data fd, not the
	// device fd.
	VFIO_MIG_GET_PRECOPY_INFO = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+21)<<iocNRShift // 0x3b79
)

// vfio-pci's fixed region indexes; indexes >= VFIO_PCI_NUM_REGIONS are
// device specific and described by VFIO_REGION_INFO_CAP_TYPE.
const (
	VFIO_PCI_BAR0_REGION_INDEX   = 0
	VFIO_PCI_BAR1_REGION_INDEX   = 1
	VFIO_PCI_BAR2_REGION_INDEX   = 2
	VFIO_PCI_BAR3_REGION_INDEX   = 3
	VFIO_PCI_BAR4_REGION_INDEX   = 4
	VFIO_PCI_BAR5_REGION_INDEX   = 5
	VFIO_PCI_ROM_REGION_INDEX    = 6
	VFIO_PCI_CONFIG_REGION_INDEX = 7
	VFIO_PCI_VGA_REGION_INDEX    = 8
	VFIO_PCI_NUM_REGIONS         = 9
)

// vfio-pci's IRQ indexes.
const (
	VFIO_PCI_INTX_IRQ_INDEX = 0
	VFIO_PCI_MSI_IRQ_INDEX  = 1
	VFIO_PCI_MSIX_IRQ_INDEX = 2
	VFIO_PCI_ERR_IRQ_INDEX  = 3
	VFIO_PCI_REQ_IRQ_INDEX  = 4 // the device-release request (hot unplug)
	VFIO_PCI_NUM_IRQS       = 5
)

// vfio-ccw (s390) region and IRQ indexes.
const (
	VFIO_CCW_CONFIG_REGION_INDEX = 0
	VFIO_CCW_NUM_REGIONS         = 1

	VFIO_CCW_IO_IRQ_INDEX  = 0
	VFIO_CCW_CRW_IRQ_INDEX = 1
	VFIO_CCW_REQ_IRQ_INDEX = 2
	VFIO_CCW_NUM_IRQS      = 3
)

// vfio-ap (s390) IRQ indexes.
const (
	VFIO_AP_REQ_IRQ_INDEX = 0
	// VFIO_AP_CFG_CHG_IRQ_INDEX is newer than 6.12 (mainline after 6.12,
	// release not pinned here); it raised VFIO_AP_NUM_IRQS to 2 there.
	VFIO_AP_CFG_CHG_IRQ_INDEX = 1
	VFIO_AP_NUM_IRQS          = 1 // as in 6.12
)

// VFIOPCIDependentDevice mirrors struct vfio_pci_dependent_device, one
// entry of the VFIO_DEVICE_GET_PCI_HOT_RESET_INFO answer.
type VFIOPCIDependentDevice struct {
	_ structs.HostLayout
	// ID is the union { group_id; devid }: a devid when the reply has
	// VFIO_PCI_HOT_RESET_FLAG_DEV_ID (cdev), a group id otherwise.
	ID      uint32
	Segment uint16
	Bus     uint8
	Devfn   uint8 // slot<<3 | function
}

// Special devid values in VFIOPCIDependentDevice.ID.
const (
	VFIO_PCI_DEVID_OWNED     = 0
	VFIO_PCI_DEVID_NOT_OWNED = 0xffffffff // -1 in the header, in a __u32
)

// VFIOPCIHotResetInfo mirrors struct vfio_pci_hot_reset_info; Count
// VFIOPCIDependentDevice follow it (flexible array devices[], omitted).
type VFIOPCIHotResetInfo struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	Count uint32
}

const (
	VFIO_PCI_HOT_RESET_FLAG_DEV_ID       = 1 << 0
	VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1
)

// VFIOPCIHotReset mirrors struct vfio_pci_hot_reset; Count s32 group fds
// follow it (flexible array group_fds[], omitted).
type VFIOPCIHotReset struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	Count uint32
}

// VFIODeviceGfxPlaneInfo mirrors struct vfio_device_gfx_plane_info.
type VFIODeviceGfxPlaneInfo struct {
	_            structs.HostLayout
	ArgSz        uint32
	Flags        uint32
	DRMPlaneType uint32 // in: DRM_PLANE_TYPE_*
	DRMFormat    uint32
	DRMFormatMod uint64
	Width        uint32
	Height       uint32
	Stride       uint32
	Size         uint32
	XPos         uint32
	YPos         uint32
	XHot         uint32
	YHot         uint32
	RegionIndex  uint32 // union { region_index; dmabuf_id }
	_            uint32 // reserved
}

const (
	VFIO_GFX_PLANE_TYPE_PROBE  = 1 << 0
	VFIO_GFX_PLANE_TYPE_DMABUF = 1 << 1
	VFIO_GFX_PLANE_TYPE_REGION = 1 << 2
)

// VFIODeviceIOEventFD mirrors struct vfio_device_ioeventfd.
type VFIODeviceIOEventFD struct {
	_      structs.HostLayout
	ArgSz  uint32
	Flags  uint32 // the write width
	Offset uint64 // device fd offset of the write
	Data   uint64
	FD     int32 // eventfd; -1 de-assigns
	_      uint32
}

const (
	VFIO_DEVICE_IOEVENTFD_8         = 1 << 0
	VFIO_DEVICE_IOEVENTFD_16        = 1 << 1
	VFIO_DEVICE_IOEVENTFD_32        = 1 << 2
	VFIO_DEVICE_IOEVENTFD_64        = 1 << 3
	VFIO_DEVICE_IOEVENTFD_SIZE_MASK = 0xf
)

// VFIODeviceFeature mirrors struct vfio_device_feature; the feature's
// payload follows it (flexible array data[], omitted).
type VFIODeviceFeature struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32 // feature index | GET/SET/PROBE
}

const (
	VFIO_DEVICE_FEATURE_MASK  = 0xffff // 16-bit feature index
	VFIO_DEVICE_FEATURE_GET   = 1 << 16
	VFIO_DEVICE_FEATURE_SET   = 1 << 17
	VFIO_DEVICE_FEATURE_PROBE = 1 << 18
)

// VFIODeviceBindIOMMUFD mirrors struct vfio_device_bind_iommufd in its
// 6.17 layout. 6.12 ends after OutDevID (16 bytes, the kernel's minsz) and
// rejects any flag with EINVAL; it copies only minsz, so the 24-byte argsz
// is accepted by both.
type VFIODeviceBindIOMMUFD struct {
	_        structs.HostLayout
	ArgSz    uint32
	Flags    uint32
	IOMMUFD  int32
	OutDevID uint32
	// TokenUUIDPtr (6.17) points to a 16-byte VF token UUID; read only
	// with VFIO_DEVICE_BIND_FLAG_TOKEN.
	TokenUUIDPtr uint64
}

// VFIO_DEVICE_BIND_FLAG_TOKEN (6.17) passes the PF/VF token through
// TokenUUIDPtr, as "vf_token=" does in the group path's device name.
const VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0

// VFIODeviceAttachIOMMUFDPT mirrors struct vfio_device_attach_iommufd_pt
// in its 6.15 layout; 6.12 ends after PtID (12 bytes, the kernel's minsz).
type VFIODeviceAttachIOMMUFDPT struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	PtID  uint32 // in: IOAS or HWPT id; out: the HWPT actually attached
	PASID uint32 // 6.15, with VFIO_DEVICE_ATTACH_PASID
}

// VFIODeviceDetachIOMMUFDPT mirrors struct vfio_device_detach_iommufd_pt
// in its 6.15 layout; 6.12 ends after Flags (8 bytes, the kernel's minsz).
type VFIODeviceDetachIOMMUFDPT struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	PASID uint32 // 6.15, with VFIO_DEVICE_DETACH_PASID
}

// PASID attach/detach flags (6.15).
const (
	VFIO_DEVICE_ATTACH_PASID = 1 << 0
	VFIO_DEVICE_DETACH_PASID = 1 << 0
)

// VFIO_DEVICE_FEATURE indexes. The payload of each is the struct named.
const (
	VFIO_DEVICE_FEATURE_PCI_VF_TOKEN                = 0  // SET: 16-byte UUID
	VFIO_DEVICE_FEATURE_MIGRATION                   = 1  // GET: VFIODeviceFeatureMigration
	VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE            = 2  // GET/SET: VFIODeviceFeatureMigState
	VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY             = 3  // SET: none
	VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4  // SET: VFIODeviceLowPowerEntryWithWakeup
	VFIO_DEVICE_FEATURE_LOW_POWER_EXIT              = 5  // SET: none
	VFIO_DEVICE_FEATURE_DMA_LOGGING_START           = 6  // SET: VFIODeviceFeatureDMALoggingControl
	VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP            = 7  // SET: none
	VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT          = 8  // GET: VFIODeviceFeatureDMALoggingReport
	VFIO_DEVICE_FEATURE_MIG_DATA_SIZE               = 9  // GET: VFIODeviceFeatureMigDataSize
	VFIO_DEVICE_FEATURE_BUS_MASTER                  = 10 // SET: VFIODeviceFeatureBusMaster (CDX only)
	// VFIO_DEVICE_FEATURE_DMA_BUF is newer than 6.12 (6.19 per Cloud
	// Hypervisor #8895, not checked against a tag). GET with
	// VFIODeviceFeatureDMABuf returns a dma-buf fd as the ioctl result.
	VFIO_DEVICE_FEATURE_DMA_BUF = 11
)

// VFIODeviceFeatureMigration mirrors struct vfio_device_feature_migration.
type VFIODeviceFeatureMigration struct {
	_     structs.HostLayout
	Flags uint64
}

const (
	VFIO_MIGRATION_STOP_COPY = 1 << 0
	VFIO_MIGRATION_P2P       = 1 << 1
	VFIO_MIGRATION_PRE_COPY  = 1 << 2
)

// VFIODeviceFeatureMigState mirrors struct vfio_device_feature_mig_state.
type VFIODeviceFeatureMigState struct {
	_           structs.HostLayout
	DeviceState uint32 // enum vfio_device_mig_state
	DataFD      int32  // out: the migration data fd, or -1
}

// enum vfio_device_mig_state.
const (
	VFIO_DEVICE_STATE_ERROR        = 0
	VFIO_DEVICE_STATE_STOP         = 1
	VFIO_DEVICE_STATE_RUNNING      = 2
	VFIO_DEVICE_STATE_STOP_COPY    = 3
	VFIO_DEVICE_STATE_RESUMING     = 4
	VFIO_DEVICE_STATE_RUNNING_P2P  = 5
	VFIO_DEVICE_STATE_PRE_COPY     = 6
	VFIO_DEVICE_STATE_PRE_COPY_P2P = 7
	VFIO_DEVICE_STATE_NR           = 8
)

// VFIOPrecopyInfo mirrors struct vfio_precopy_info
// (VFIO_MIG_GET_PRECOPY_INFO).
type VFIOPrecopyInfo struct {
	_            structs.HostLayout
	ArgSz        uint32
	Flags        uint32
	InitialBytes uint64
	DirtyBytes   uint64
}

// VFIODeviceLowPowerEntryWithWakeup mirrors struct
// vfio_device_low_power_entry_with_wakeup.
type VFIODeviceLowPowerEntryWithWakeup struct {
	_             structs.HostLayout
	WakeupEventFD int32
	_             uint32 // reserved
}

// VFIODeviceFeatureDMALoggingControl mirrors struct
// vfio_device_feature_dma_logging_control. Ranges is the user address of
// NumRanges VFIODeviceFeatureDMALoggingRange.
type VFIODeviceFeatureDMALoggingControl struct {
	_         structs.HostLayout
	PageSize  uint64
	NumRanges uint32
	_         uint32 // __reserved
	Ranges    uint64
}

// VFIODeviceFeatureDMALoggingRange mirrors struct
// vfio_device_feature_dma_logging_range.
type VFIODeviceFeatureDMALoggingRange struct {
	_      structs.HostLayout
	IOVA   uint64
	Length uint64
}

// VFIODeviceFeatureDMALoggingReport mirrors struct
// vfio_device_feature_dma_logging_report. Bitmap is the user address of
// the u64 bitmap the kernel ORs bits into.
type VFIODeviceFeatureDMALoggingReport struct {
	_        structs.HostLayout
	IOVA     uint64
	Length   uint64
	PageSize uint64
	Bitmap   uint64
}

// VFIODeviceFeatureMigDataSize mirrors struct
// vfio_device_feature_mig_data_size.
type VFIODeviceFeatureMigDataSize struct {
	_              structs.HostLayout
	StopCopyLength uint64
}

// VFIODeviceFeatureBusMaster mirrors struct vfio_device_feature_bus_master.
type VFIODeviceFeatureBusMaster struct {
	_  structs.HostLayout
	Op uint32
}

const (
	VFIO_DEVICE_FEATURE_CLEAR_MASTER = 0
	VFIO_DEVICE_FEATURE_SET_MASTER   = 1
)

// VFIORegionDMARange mirrors struct vfio_region_dma_range (newer than
// 6.12, with VFIO_DEVICE_FEATURE_DMA_BUF).
type VFIORegionDMARange struct {
	_      structs.HostLayout
	Offset uint64
	Length uint64
}

// VFIODeviceFeatureDMABuf mirrors struct vfio_device_feature_dma_buf
// (newer than 6.12, with VFIO_DEVICE_FEATURE_DMA_BUF); NrRanges
// VFIORegionDMARange follow it (flexible array dma_ranges[], omitted).
type VFIODeviceFeatureDMABuf struct {
	_           structs.HostLayout
	RegionIndex uint32
	OpenFlags   uint32 // open(2) flags of the dma-buf fd, e.g. O_RDWR|O_CLOEXEC
	Flags       uint32 // must be 0
	NrRanges    uint32
}

// VFIOIOMMUType1Info mirrors struct vfio_iommu_type1_info.
type VFIOIOMMUType1Info struct {
	_           structs.HostLayout
	ArgSz       uint32
	Flags       uint32
	IOVAPgSizes uint64 // bitmap of supported page sizes
	CapOffset   uint32 // valid with VFIO_IOMMU_INFO_CAPS
	_           uint32 // pad
}

const (
	VFIO_IOMMU_INFO_PGSIZES = 1 << 0
	VFIO_IOMMU_INFO_CAPS    = 1 << 1
)

// VFIO_IOMMU_GET_INFO capability IDs.
const (
	VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1
	VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION  = 2
	VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL      = 3
)

// VFIOIOVARange mirrors struct vfio_iova_range; End is inclusive.
type VFIOIOVARange struct {
	_     structs.HostLayout
	Start uint64
	End   uint64
}

// VFIOIOMMUType1InfoCapIOVARange mirrors struct
// vfio_iommu_type1_info_cap_iova_range; NrIOVAs VFIOIOVARange follow it
// (flexible array iova_ranges[], omitted).
type VFIOIOMMUType1InfoCapIOVARange struct {
	_       structs.HostLayout
	Header  VFIOInfoCapHeader
	NrIOVAs uint32
	_       uint32 // reserved
}

// VFIOIOMMUType1InfoCapMigration mirrors struct
// vfio_iommu_type1_info_cap_migration.
type VFIOIOMMUType1InfoCapMigration struct {
	_                  structs.HostLayout
	Header             VFIOInfoCapHeader
	Flags              uint32
	_                  uint32 // implicit padding before the __u64 in C
	PgSizeBitmap       uint64
	MaxDirtyBitmapSize uint64 // in bytes
}

// VFIOIOMMUType1InfoDMAAvail mirrors struct vfio_iommu_type1_info_dma_avail.
type VFIOIOMMUType1InfoDMAAvail struct {
	_      structs.HostLayout
	Header VFIOInfoCapHeader
	Avail  uint32 // further DMA mappings allowed now
}

// VFIOIOMMUType1DMAMap mirrors struct vfio_iommu_type1_dma_map.
type VFIOIOMMUType1DMAMap struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	VAddr uint64
	IOVA  uint64
	Size  uint64
}

const (
	VFIO_DMA_MAP_FLAG_READ  = 1 << 0
	VFIO_DMA_MAP_FLAG_WRITE = 1 << 1
	VFIO_DMA_MAP_FLAG_VADDR = 1 << 2
)

// VFIOBitmap mirrors struct vfio_bitmap. Data is the user address of the
// bitmap (a __u64 * in C: 64-bit targets only).
type VFIOBitmap struct {
	_      structs.HostLayout
	PgSize uint64 // page size of one bit
	Size   uint64 // bitmap size in bytes
	Data   uint64
}

// VFIOIOMMUType1DMAUnmap mirrors struct vfio_iommu_type1_dma_unmap; a
// VFIOBitmap follows it with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
// (flexible array data[], omitted).
type VFIOIOMMUType1DMAUnmap struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	IOVA  uint64
	Size  uint64 // out: bytes unmapped
}

const (
	VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0
	VFIO_DMA_UNMAP_FLAG_ALL              = 1 << 1
	VFIO_DMA_UNMAP_FLAG_VADDR            = 1 << 2
)

// VFIOIOMMUType1DirtyBitmap mirrors struct vfio_iommu_type1_dirty_bitmap;
// with GET_BITMAP a VFIOIOMMUType1DirtyBitmapGet follows it (flexible
// array data[], omitted).
type VFIOIOMMUType1DirtyBitmap struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
}

const (
	VFIO_IOMMU_DIRTY_PAGES_FLAG_START      = 1 << 0
	VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP       = 1 << 1
	VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2
)

// VFIOIOMMUType1DirtyBitmapGet mirrors struct
// vfio_iommu_type1_dirty_bitmap_get.
type VFIOIOMMUType1DirtyBitmapGet struct {
	_      structs.HostLayout
	IOVA   uint64
	Size   uint64
	Bitmap VFIOBitmap
}

// Type1 container ioctls.
const (
	VFIO_IOMMU_GET_INFO    = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+12)<<iocNRShift // 0x3b70
	VFIO_IOMMU_MAP_DMA     = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+13)<<iocNRShift // 0x3b71
	VFIO_IOMMU_UNMAP_DMA   = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+14)<<iocNRShift // 0x3b72
	VFIO_IOMMU_ENABLE      = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+15)<<iocNRShift // 0x3b73, SPAPR only
	VFIO_IOMMU_DISABLE     = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+16)<<iocNRShift // 0x3b74, SPAPR only
	VFIO_IOMMU_DIRTY_PAGES = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+17)<<iocNRShift // 0x3b75
)

// SPAPR TCE (POWER) container API. Mirrored for completeness and for the
// layout check; iommu-agent does not build for powerpc and has no methods
// for these. Their numbers reuse type1's and the device's.
const (
	VFIO_IOMMU_SPAPR_TCE_GET_INFO      = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+12)<<iocNRShift // 0x3b70
	VFIO_IOMMU_SPAPR_REGISTER_MEMORY   = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+17)<<iocNRShift // 0x3b75
	VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+18)<<iocNRShift // 0x3b76
	VFIO_IOMMU_SPAPR_TCE_CREATE        = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+19)<<iocNRShift // 0x3b77
	VFIO_IOMMU_SPAPR_TCE_REMOVE        = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+20)<<iocNRShift // 0x3b78
	VFIO_EEH_PE_OP                     = iocNone<<iocDirShift | VFIO_TYPE<<iocTypeShift | (VFIO_BASE+21)<<iocNRShift // 0x3b79
)

// VFIOIOMMUSPAPRTCEDDWInfo mirrors struct vfio_iommu_spapr_tce_ddw_info.
type VFIOIOMMUSPAPRTCEDDWInfo struct {
	_                          structs.HostLayout
	PgSizes                    uint64
	MaxDynamicWindowsSupported uint32
	Levels                     uint32
}

// VFIOIOMMUSPAPRTCEInfo mirrors struct vfio_iommu_spapr_tce_info.
type VFIOIOMMUSPAPRTCEInfo struct {
	_                structs.HostLayout
	ArgSz            uint32
	Flags            uint32
	DMA32WindowStart uint32
	DMA32WindowSize  uint32
	DDW              VFIOIOMMUSPAPRTCEDDWInfo
}

const VFIO_IOMMU_SPAPR_INFO_DDW = 1 << 0

// VFIOEEHPEErr mirrors struct vfio_eeh_pe_err.
type VFIOEEHPEErr struct {
	_    structs.HostLayout
	Type uint32
	Func uint32
	Addr uint64
	Mask uint64
}

// VFIOEEHPEOp mirrors struct vfio_eeh_pe_op.
type VFIOEEHPEOp struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	Op    uint32
	_     uint32       // implicit padding before the union in C
	Err   VFIOEEHPEErr // union { err }
}

// VFIOEEHPEOp.Op values and VFIO_EEH_PE_GET_STATE results.
const (
	VFIO_EEH_PE_DISABLE           = 0
	VFIO_EEH_PE_ENABLE            = 1
	VFIO_EEH_PE_UNFREEZE_IO       = 2
	VFIO_EEH_PE_UNFREEZE_DMA      = 3
	VFIO_EEH_PE_GET_STATE         = 4
	VFIO_EEH_PE_STATE_NORMAL      = 0
	VFIO_EEH_PE_STATE_RESET       = 1
	VFIO_EEH_PE_STATE_STOPPED     = 2
	VFIO_EEH_PE_STATE_STOPPED_DMA = 4
	VFIO_EEH_PE_STATE_UNAVAIL     = 5
	VFIO_EEH_PE_RESET_DEACTIVATE  = 5
	VFIO_EEH_PE_RESET_HOT         = 6
	VFIO_EEH_PE_RESET_FUNDAMENTAL = 7
	VFIO_EEH_PE_CONFIGURE         = 8
	VFIO_EEH_PE_INJECT_ERR        = 9
)

// VFIOIOMMUSPAPRRegisterMemory mirrors struct
// vfio_iommu_spapr_register_memory.
type VFIOIOMMUSPAPRRegisterMemory struct {
	_     structs.HostLayout
	ArgSz uint32
	Flags uint32
	VAddr uint64
	Size  uint64
}

// VFIOIOMMUSPAPRTCECreate mirrors struct vfio_iommu_spapr_tce_create.
type VFIOIOMMUSPAPRTCECreate struct {
	_          structs.HostLayout
	ArgSz      uint32
	Flags      uint32
	PageShift  uint32
	_          uint32 // __resv1
	WindowSize uint64
	Levels     uint32
	_          uint32 // __resv2
	StartAddr  uint64 // out
}

// VFIOIOMMUSPAPRTCERemove mirrors struct vfio_iommu_spapr_tce_remove.
type VFIOIOMMUSPAPRTCERemove struct {
	_         structs.HostLayout
	ArgSz     uint32
	Flags     uint32
	StartAddr uint64
}
