package uapi

import "structs"

// This file mirrors include/uapi/linux/iommufd.h.
//
// Checked against linux-libc-dev 6.12.117-1 (Debian trixie), the guest
// kernel's series: every struct, constant and request number that header
// has is compared with the C compiler's view in cref_iommufd_test.go
// (-tags uapicheck). Note that this 6.12 stable header already carries
// out_max_pasid_log2 and IOMMU_HW_CAP_PCI_PASID_*: mainline added them in
// 6.15 (803f97298e7d) and AUTOSEL backported them to 6.12.y.
//
// What mainline added after 6.12 is mirrored from torvalds/linux at
// b4d90dbc4c1b (last ioctl IOMMU_HW_QUEUE_ALLOC), released layouts only,
// each marked "since" with its first mainline release. Releases marked †
// come from the subsystem's merge history and were not re-checked against a
// tagged tree. The cgo check cannot see these; iommufd_test.go pins them
// against our reading of that header.
//
// Every iommufd ioctl is _IO(IOMMUFD_TYPE, nr): the argument size travels
// in the struct's leading size field. The kernel accepts any size from the
// struct's first released layout (the Min* constants below, where that is
// smaller than today's sizeof) upwards; bytes past what it knows must be 0
// (E2BIG otherwise).

const IOMMUFD_TYPE = 0x3B // ';'

// Command numbers (_IOC_NR of each request).
const (
	IOMMUFD_CMD_BASE                    = 0x80
	IOMMUFD_CMD_DESTROY                 = IOMMUFD_CMD_BASE
	IOMMUFD_CMD_IOAS_ALLOC              = 0x81
	IOMMUFD_CMD_IOAS_ALLOW_IOVAS        = 0x82
	IOMMUFD_CMD_IOAS_COPY               = 0x83
	IOMMUFD_CMD_IOAS_IOVA_RANGES        = 0x84
	IOMMUFD_CMD_IOAS_MAP                = 0x85
	IOMMUFD_CMD_IOAS_UNMAP              = 0x86
	IOMMUFD_CMD_OPTION                  = 0x87
	IOMMUFD_CMD_VFIO_IOAS               = 0x88
	IOMMUFD_CMD_HWPT_ALLOC              = 0x89
	IOMMUFD_CMD_GET_HW_INFO             = 0x8a
	IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b
	IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP   = 0x8c
	IOMMUFD_CMD_HWPT_INVALIDATE         = 0x8d
	IOMMUFD_CMD_FAULT_QUEUE_ALLOC       = 0x8e
	IOMMUFD_CMD_IOAS_MAP_FILE           = 0x8f // since 6.13
	IOMMUFD_CMD_VIOMMU_ALLOC            = 0x90 // since 6.13
	IOMMUFD_CMD_VDEVICE_ALLOC           = 0x91 // since 6.13
	IOMMUFD_CMD_IOAS_CHANGE_PROCESS     = 0x92 // since 6.13
	IOMMUFD_CMD_VEVENTQ_ALLOC           = 0x93 // since 6.15
	IOMMUFD_CMD_HW_QUEUE_ALLOC          = 0x94 // since 6.17
)

// Request numbers, _IO(IOMMUFD_TYPE, IOMMUFD_CMD_*). The first release of
// each is in ioctl/iommufd's describe.
const (
	IOMMU_DESTROY                 = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_DESTROY<<iocNRShift                 // 0x3b80, 6.2
	IOMMU_IOAS_ALLOC              = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_IOAS_ALLOC<<iocNRShift              // 0x3b81, 6.2
	IOMMU_IOAS_ALLOW_IOVAS        = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_IOAS_ALLOW_IOVAS<<iocNRShift        // 0x3b82, 6.2
	IOMMU_IOAS_COPY               = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_IOAS_COPY<<iocNRShift               // 0x3b83, 6.2
	IOMMU_IOAS_IOVA_RANGES        = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_IOAS_IOVA_RANGES<<iocNRShift        // 0x3b84, 6.2
	IOMMU_IOAS_MAP                = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_IOAS_MAP<<iocNRShift                // 0x3b85, 6.2
	IOMMU_IOAS_UNMAP              = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_IOAS_UNMAP<<iocNRShift              // 0x3b86, 6.2
	IOMMU_OPTION                  = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_OPTION<<iocNRShift                  // 0x3b87, 6.2
	IOMMU_VFIO_IOAS               = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_VFIO_IOAS<<iocNRShift               // 0x3b88, 6.2
	IOMMU_HWPT_ALLOC              = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_HWPT_ALLOC<<iocNRShift              // 0x3b89, 6.6
	IOMMU_GET_HW_INFO             = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_GET_HW_INFO<<iocNRShift             // 0x3b8a, 6.6
	IOMMU_HWPT_SET_DIRTY_TRACKING = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING<<iocNRShift // 0x3b8b, 6.7
	IOMMU_HWPT_GET_DIRTY_BITMAP   = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP<<iocNRShift   // 0x3b8c, 6.7
	IOMMU_HWPT_INVALIDATE         = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_HWPT_INVALIDATE<<iocNRShift         // 0x3b8d, 6.8
	IOMMU_FAULT_QUEUE_ALLOC       = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_FAULT_QUEUE_ALLOC<<iocNRShift       // 0x3b8e, 6.11
	IOMMU_IOAS_MAP_FILE           = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_IOAS_MAP_FILE<<iocNRShift           // 0x3b8f, since 6.13
	IOMMU_VIOMMU_ALLOC            = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_VIOMMU_ALLOC<<iocNRShift            // 0x3b90, since 6.13
	IOMMU_VDEVICE_ALLOC           = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_VDEVICE_ALLOC<<iocNRShift           // 0x3b91, since 6.13
	IOMMU_IOAS_CHANGE_PROCESS     = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_IOAS_CHANGE_PROCESS<<iocNRShift     // 0x3b92, since 6.13
	IOMMU_VEVENTQ_ALLOC           = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_VEVENTQ_ALLOC<<iocNRShift           // 0x3b93, since 6.15
	IOMMU_HW_QUEUE_ALLOC          = iocNone<<iocDirShift | IOMMUFD_TYPE<<iocTypeShift | IOMMUFD_CMD_HW_QUEUE_ALLOC<<iocNRShift          // 0x3b94, since 6.17
)

// Minimum sizes the kernel accepts in the size field, where they are below
// today's sizeof: offsetofend of the last field of the first released
// layout (the last argument of IOCTL_OP in drivers/iommu/iommufd/main.c).
// Every other iommufd struct's minimum is its sizeof.
const (
	MinSizeIOMMUHWPTAlloc    = 24 // offsetofend(__reserved); 48 since data_type (6.7) and fault_id (6.11)
	MinSizeIOMMUHWInfo       = 32 // offsetofend(__reserved); 40 since out_capabilities (6.7)
	MinSizeIOMMUVIOMMUAlloc  = 24 // offsetofend(out_viommu_id); 40 since data_len/data_uptr (6.17†)
	MinSizeIOMMUVEventQAlloc = 28 // offsetofend(out_veventq_fd); sizeof 32 from the start
)

// IOMMUDestroy mirrors struct iommu_destroy.
type IOMMUDestroy struct {
	_    structs.HostLayout
	Size uint32
	ID   uint32
}

// IOMMUIOASAlloc mirrors struct iommu_ioas_alloc.
type IOMMUIOASAlloc struct {
	_         structs.HostLayout
	Size      uint32
	Flags     uint32 // must be 0
	OutIOASID uint32
}

// IOMMUIOVARange mirrors struct iommu_iova_range: an inclusive interval.
type IOMMUIOVARange struct {
	_     structs.HostLayout
	Start uint64
	Last  uint64
}

// IOMMUIOASIOVARanges mirrors struct iommu_ioas_iova_ranges. On EMSGSIZE
// NumIOVAs holds the number of ranges needed.
type IOMMUIOASIOVARanges struct {
	_                structs.HostLayout
	Size             uint32
	IOASID           uint32
	NumIOVAs         uint32
	_                uint32 // __reserved
	AllowedIOVAs     uint64 // user pointer to []IOMMUIOVARange
	OutIOVAAlignment uint64
}

// IOMMUIOASAllowIOVAs mirrors struct iommu_ioas_allow_iovas.
type IOMMUIOASAllowIOVAs struct {
	_            structs.HostLayout
	Size         uint32
	IOASID       uint32
	NumIOVAs     uint32
	_            uint32 // __reserved
	AllowedIOVAs uint64 // user pointer to []IOMMUIOVARange
}

// Flags of IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FILE and IOMMU_IOAS_COPY
// (enum iommufd_ioas_map_flags).
const (
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0
	IOMMU_IOAS_MAP_WRITEABLE  = 1 << 1
	IOMMU_IOAS_MAP_READABLE   = 1 << 2
)

// IOMMUIOASMap mirrors struct iommu_ioas_map.
type IOMMUIOASMap struct {
	_      structs.HostLayout
	Size   uint32
	Flags  uint32
	IOASID uint32
	_      uint32 // __reserved
	UserVA uint64
	Length uint64
	IOVA   uint64 // in with IOMMU_IOAS_MAP_FIXED_IOVA, else out
}

// IOMMUIOASMapFile mirrors struct iommu_ioas_map_file. Since 6.13.
type IOMMUIOASMapFile struct {
	_      structs.HostLayout
	Size   uint32
	Flags  uint32
	IOASID uint32
	FD     int32 // the memfd
	Start  uint64
	Length uint64
	IOVA   uint64
}

// IOMMUIOASCopy mirrors struct iommu_ioas_copy.
type IOMMUIOASCopy struct {
	_         structs.HostLayout
	Size      uint32
	Flags     uint32
	DstIOASID uint32
	SrcIOASID uint32
	Length    uint64
	DstIOVA   uint64
	SrcIOVA   uint64
}

// IOMMUIOASUnmap mirrors struct iommu_ioas_unmap. Length returns the bytes
// unmapped.
type IOMMUIOASUnmap struct {
	_      structs.HostLayout
	Size   uint32
	IOASID uint32
	IOVA   uint64
	Length uint64
}

// Options of IOMMU_OPTION (enum iommufd_option) and its ops (enum
// iommufd_option_ops).
const (
	IOMMU_OPTION_RLIMIT_MODE = 0 // global, object_id 0: 0 per user (default), 1 per process
	IOMMU_OPTION_HUGE_PAGES  = 1 // per IOAS: 1 (default) combines contiguous pages

	IOMMU_OPTION_OP_SET = 0
	IOMMU_OPTION_OP_GET = 1
)

// IOMMUOption mirrors struct iommu_option.
type IOMMUOption struct {
	_        structs.HostLayout
	Size     uint32
	OptionID uint32
	Op       uint16
	_        uint16 // __reserved
	ObjectID uint32
	Val64    uint64
}

// Ops of IOMMU_VFIO_IOAS (enum iommufd_vfio_ioas_op).
const (
	IOMMU_VFIO_IOAS_GET   = 0
	IOMMU_VFIO_IOAS_SET   = 1
	IOMMU_VFIO_IOAS_CLEAR = 2
)

// IOMMUVFIOIOAS mirrors struct iommu_vfio_ioas.
type IOMMUVFIOIOAS struct {
	_      structs.HostLayout
	Size   uint32
	IOASID uint32
	Op     uint16
	_      uint16 // __reserved
}

// Flags of IOMMU_HWPT_ALLOC (enum iommufd_hwpt_alloc_flags).
const (
	IOMMU_HWPT_ALLOC_NEST_PARENT    = 1 << 0
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1
	IOMMU_HWPT_FAULT_ID_VALID       = 1 << 2
	IOMMU_HWPT_ALLOC_PASID          = 1 << 3 // since 6.15
)

// Flags of struct iommu_hwpt_vtd_s1 (enum iommu_hwpt_vtd_s1_flags).
const (
	IOMMU_VTD_S1_SRE  = 1 << 0
	IOMMU_VTD_S1_EAFE = 1 << 1
	IOMMU_VTD_S1_WPE  = 1 << 2
)

// IOMMUHWPTVTDS1 mirrors struct iommu_hwpt_vtd_s1, the data of
// IOMMU_HWPT_DATA_VTD_S1.
type IOMMUHWPTVTDS1 struct {
	_         structs.HostLayout
	Flags     uint64
	PgtblAddr uint64
	AddrWidth uint32
	_         uint32 // __reserved
}

// IOMMUHWPTARMSMMUv3 mirrors struct iommu_hwpt_arm_smmuv3, the data of
// IOMMU_HWPT_DATA_ARM_SMMUV3: the first two little-endian words of a
// nested Stream Table Entry. Since 6.13†.
type IOMMUHWPTARMSMMUv3 struct {
	_   structs.HostLayout
	STE [2]uint64
}

// Data types of IOMMU_HWPT_ALLOC (enum iommu_hwpt_data_type).
const (
	IOMMU_HWPT_DATA_NONE       = 0
	IOMMU_HWPT_DATA_VTD_S1     = 1
	IOMMU_HWPT_DATA_ARM_SMMUV3 = 2 // since 6.13†
)

// IOMMUHWPTAlloc mirrors struct iommu_hwpt_alloc. PTID names an IOAS, a
// parent HWPT or (since 6.13) a vIOMMU.
type IOMMUHWPTAlloc struct {
	_         structs.HostLayout
	Size      uint32
	Flags     uint32
	DevID     uint32
	PTID      uint32
	OutHWPTID uint32
	_         uint32 // __reserved
	DataType  uint32
	DataLen   uint32
	DataUptr  uint64
	FaultID   uint32 // with IOMMU_HWPT_FAULT_ID_VALID
	_         uint32 // __reserved2
}

// Flags of struct iommu_hw_info_vtd (enum iommu_hw_info_vtd_flags).
const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0

// IOMMUHWInfoVTD mirrors struct iommu_hw_info_vtd: the raw VT-d Capability
// and Extended Capability registers.
type IOMMUHWInfoVTD struct {
	_       structs.HostLayout
	Flags   uint32
	_       uint32 // __reserved
	CapReg  uint64
	EcapReg uint64
}

// IOMMUHWInfoARMSMMUv3 mirrors struct iommu_hw_info_arm_smmuv3: the raw
// SMMU_IDR0..5, SMMU_IIDR and SMMU_AIDR registers. Since 6.13†.
type IOMMUHWInfoARMSMMUv3 struct {
	_     structs.HostLayout
	Flags uint32
	_     uint32 // __reserved
	IDR   [6]uint32
	IIDR  uint32
	AIDR  uint32
}

// IOMMUHWInfoTegra241CMDQV mirrors struct iommu_hw_info_tegra241_cmdqv.
// Since 6.17.
type IOMMUHWInfoTegra241CMDQV struct {
	_          structs.HostLayout
	Flags      uint32
	Version    uint8
	Log2VCMDQs uint8
	Log2VSIDs  uint8
	_          uint8 // __reserved
}

// Types of IOMMU_GET_HW_INFO data (enum iommu_hw_info_type).
const (
	IOMMU_HW_INFO_TYPE_NONE           = 0
	IOMMU_HW_INFO_TYPE_DEFAULT        = 0 // since 6.17: the input meaning of 0
	IOMMU_HW_INFO_TYPE_INTEL_VTD      = 1
	IOMMU_HW_INFO_TYPE_ARM_SMMUV3     = 2 // since 6.13†
	IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3 // since 6.17
	IOMMU_HW_INFO_TYPE_AMD            = 4 // after 6.12 (in 7.3): struct iommu_hw_info_amd
)

// Capabilities in iommu_hw_info.out_capabilities (enum
// iommufd_hw_capabilities).
const (
	IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0
	IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1 // 6.15, in 6.12.y
	IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2 // 6.15, in 6.12.y
)

// Flags of IOMMU_GET_HW_INFO (enum iommufd_hw_info_flags).
const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0 // since 6.17: OutDataType carries in_data_type

// IOMMUHWInfo mirrors struct iommu_hw_info. The kernel fills DataLen bytes
// at DataUptr and returns the length it has. Since 6.17 OutDataType is a
// union with in_data_type (see IOMMU_HW_INFO_FLAG_INPUT_TYPE).
type IOMMUHWInfo struct {
	_               structs.HostLayout
	Size            uint32
	Flags           uint32
	DevID           uint32
	DataLen         uint32
	DataUptr        uint64
	OutDataType     uint32
	OutMaxPASIDLog2 uint8 // 6.15, in 6.12.y; was part of __reserved
	_               [3]uint8
	OutCapabilities uint64
}

// Flags of IOMMU_HWPT_SET_DIRTY_TRACKING
// (enum iommufd_hwpt_set_dirty_tracking_flags).
const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1

// IOMMUHWPTSetDirtyTracking mirrors struct iommu_hwpt_set_dirty_tracking.
type IOMMUHWPTSetDirtyTracking struct {
	_      structs.HostLayout
	Size   uint32
	Flags  uint32
	HWPTID uint32
	_      uint32 // __reserved
}

// Flags of IOMMU_HWPT_GET_DIRTY_BITMAP
// (enum iommufd_hwpt_get_dirty_bitmap_flags).
const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1

// IOMMUHWPTGetDirtyBitmap mirrors struct iommu_hwpt_get_dirty_bitmap. Data
// points to a bitmap of u64 words, one bit per PageSize of IOVA.
type IOMMUHWPTGetDirtyBitmap struct {
	_        structs.HostLayout
	Size     uint32
	HWPTID   uint32
	Flags    uint32
	_        uint32 // __reserved
	IOVA     uint64
	Length   uint64
	PageSize uint64
	Data     uint64
}

// Data types of IOMMU_HWPT_INVALIDATE
// (enum iommu_hwpt_invalidate_data_type).
const (
	IOMMU_HWPT_INVALIDATE_DATA_VTD_S1       = 0
	IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1 // since 6.14†
)

// Flags of struct iommu_hwpt_vtd_s1_invalidate
// (enum iommu_hwpt_vtd_s1_invalidate_flags).
const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0

// IOMMUHWPTVTDS1Invalidate mirrors struct iommu_hwpt_vtd_s1_invalidate.
type IOMMUHWPTVTDS1Invalidate struct {
	_      structs.HostLayout
	Addr   uint64
	NPages uint64
	Flags  uint32
	_      uint32 // __reserved
}

// IOMMUVIOMMUARMSMMUv3Invalidate mirrors struct
// iommu_viommu_arm_smmuv3_invalidate: one little-endian 128-bit CMDQ
// command. Since 6.14†.
type IOMMUVIOMMUARMSMMUv3Invalidate struct {
	_   structs.HostLayout
	Cmd [2]uint64
}

// IOMMUHWPTInvalidate mirrors struct iommu_hwpt_invalidate. EntryNum
// returns how many entries the kernel handled. HWPTID may name a vIOMMU
// since 6.14†.
type IOMMUHWPTInvalidate struct {
	_        structs.HostLayout
	Size     uint32
	HWPTID   uint32
	DataUptr uint64
	DataType uint32
	EntryLen uint32
	EntryNum uint32
	_        uint32 // __reserved
}

// Flags and permissions of struct iommu_hwpt_pgfault
// (enum iommu_hwpt_pgfault_flags, enum iommu_hwpt_pgfault_perm).
const (
	IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0
	IOMMU_PGFAULT_FLAGS_LAST_PAGE   = 1 << 1

	IOMMU_PGFAULT_PERM_READ  = 1 << 0
	IOMMU_PGFAULT_PERM_WRITE = 1 << 1
	IOMMU_PGFAULT_PERM_EXEC  = 1 << 2
	IOMMU_PGFAULT_PERM_PRIV  = 1 << 3
)

// IOMMUHWPTPgfault mirrors struct iommu_hwpt_pgfault, the record read from
// a fault queue fd.
type IOMMUHWPTPgfault struct {
	_      structs.HostLayout
	Flags  uint32
	DevID  uint32
	PASID  uint32
	GrpID  uint32
	Perm   uint32
	_      uint32 // __reserved
	Addr   uint64
	Length uint32
	Cookie uint32
}

// Codes of struct iommu_hwpt_page_response
// (enum iommufd_page_response_code).
const (
	IOMMUFD_PAGE_RESP_SUCCESS = 0
	IOMMUFD_PAGE_RESP_INVALID = 1
)

// IOMMUHWPTPageResponse mirrors struct iommu_hwpt_page_response, the record
// written to a fault queue fd.
type IOMMUHWPTPageResponse struct {
	_      structs.HostLayout
	Cookie uint32
	Code   uint32
}

// IOMMUFaultAlloc mirrors struct iommu_fault_alloc.
type IOMMUFaultAlloc struct {
	_          structs.HostLayout
	Size       uint32
	Flags      uint32 // must be 0
	OutFaultID uint32
	OutFaultFD uint32
}

// Types of vIOMMU (enum iommu_viommu_type).
const (
	IOMMU_VIOMMU_TYPE_DEFAULT        = 0 // since 6.13, reserved
	IOMMU_VIOMMU_TYPE_ARM_SMMUV3     = 1 // since 6.13
	IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2 // since 6.17
)

// IOMMUVIOMMUTegra241CMDQV mirrors struct iommu_viommu_tegra241_cmdqv, the
// driver data of IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV (output only). Since 6.17.
type IOMMUVIOMMUTegra241CMDQV struct {
	_                  structs.HostLayout
	OutVINTFMmapOffset uint64
	OutVINTFMmapLength uint64
}

// IOMMUVIOMMUAlloc mirrors struct iommu_viommu_alloc. Since 6.13, which
// ended at OutVIOMMUID; DataLen and DataUptr since 6.17†.
type IOMMUVIOMMUAlloc struct {
	_           structs.HostLayout
	Size        uint32
	Flags       uint32 // must be 0
	Type        uint32
	DevID       uint32
	HWPTID      uint32 // nesting parent HWPT
	OutVIOMMUID uint32
	DataLen     uint32
	_           uint32 // __reserved
	DataUptr    uint64
}

// IOMMUVDeviceAlloc mirrors struct iommu_vdevice_alloc. Since 6.13.
type IOMMUVDeviceAlloc struct {
	_            structs.HostLayout
	Size         uint32
	VIOMMUID     uint32
	DevID        uint32
	OutVDeviceID uint32
	VirtID       uint64 // vSID (SMMUv3), vDeviceID (AMD), vRID (VT-d)
}

// IOMMUIOASChangeProcess mirrors struct iommu_ioas_change_process. Since
// 6.13.
type IOMMUIOASChangeProcess struct {
	_    structs.HostLayout
	Size uint32
	_    uint32 // __reserved
}

// Flags of struct iommufd_vevent_header (enum iommu_veventq_flag).
const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0 // since 6.15

// IOMMUFDVEventHeader mirrors struct iommufd_vevent_header, which precedes
// each record read from a vEVENTQ fd. Since 6.15.
type IOMMUFDVEventHeader struct {
	_        structs.HostLayout
	Flags    uint32
	Sequence uint32
}

// Types of vEVENTQ (enum iommu_veventq_type).
const (
	IOMMU_VEVENTQ_TYPE_DEFAULT        = 0 // since 6.15, reserved
	IOMMU_VEVENTQ_TYPE_ARM_SMMUV3     = 1 // since 6.15
	IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2 // since 6.17
)

// IOMMUVEventARMSMMUv3 mirrors struct iommu_vevent_arm_smmuv3: a
// little-endian 256-bit SMMUv3 event record. Since 6.15.
type IOMMUVEventARMSMMUv3 struct {
	_   structs.HostLayout
	Evt [4]uint64
}

// IOMMUVEventTegra241CMDQV mirrors struct iommu_vevent_tegra241_cmdqv.
// Since 6.17.
type IOMMUVEventTegra241CMDQV struct {
	_            structs.HostLayout
	LVCMDQErrMap [2]uint64
}

// IOMMUVEventQAlloc mirrors struct iommu_veventq_alloc. Since 6.15.
type IOMMUVEventQAlloc struct {
	_            structs.HostLayout
	Size         uint32
	Flags        uint32 // must be 0
	VIOMMUID     uint32
	Type         uint32
	VEventQDepth uint32
	OutVEventQID uint32
	OutVEventQFD uint32
	_            uint32 // __reserved
}

// Types of HW queue (enum iommu_hw_queue_type).
const (
	IOMMU_HW_QUEUE_TYPE_DEFAULT        = 0 // since 6.17, reserved
	IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1 // since 6.17
)

// IOMMUHWQueueAlloc mirrors struct iommu_hw_queue_alloc. Since 6.17.
type IOMMUHWQueueAlloc struct {
	_                 structs.HostLayout
	Size              uint32
	Flags             uint32 // must be 0
	VIOMMUID          uint32
	Type              uint32
	Index             uint32
	OutHWQueueID      uint32
	NestingParentIOVA uint64
	Length            uint64
}
