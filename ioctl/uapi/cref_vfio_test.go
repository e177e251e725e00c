//go:build uapicheck

package uapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi/cref"
)

// The cgo cross-check of vfio.go against linux/vfio.h as compiled from
// the headers CGO_CFLAGS points at (linux-libc-dev 6.12). It fails when a
// struct, request or constant of the header is missing from a table here,
// so a header bump cannot add something unchecked.

// vfioStruct maps one C struct to its Go mirror.
type vfioStruct struct {
	v any
	// fields maps every C field to its Go field. "" marks a flexible array,
	// which Go omits: its offset must equal the Go size. Union members map
	// to the one Go field that covers them.
	fields map[string]string
	// grown names Go fields added after 6.12, by release; the 6.12 struct
	// must end where the first of them starts.
	grown map[string]string
}

var vfioStructs = map[string]vfioStruct{
	"vfio_info_cap_header": {v: VFIOInfoCapHeader{}, fields: map[string]string{"id": "ID", "version": "Version", "next": "Next"}},
	"vfio_group_status":    {v: VFIOGroupStatus{}, fields: map[string]string{"argsz": "ArgSz", "flags": "Flags"}},
	"vfio_device_info": {v: VFIODeviceInfo{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "num_regions": "NumRegions", "num_irqs": "NumIRQs", "cap_offset": "CapOffset", "pad": "_6"}},
	"vfio_device_info_cap_pci_atomic_comp": {v: VFIODeviceInfoCapPCIAtomicComp{}, fields: map[string]string{
		"header": "Header", "flags": "Flags", "reserved": "_3"}},
	"vfio_region_info": {v: VFIORegionInfo{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "index": "Index", "cap_offset": "CapOffset", "size": "Size", "offset": "Offset"}},
	"vfio_region_sparse_mmap_area": {v: VFIORegionSparseMmapArea{}, fields: map[string]string{"offset": "Offset", "size": "Size"}},
	"vfio_region_info_cap_sparse_mmap": {v: VFIORegionInfoCapSparseMmap{}, fields: map[string]string{
		"header": "Header", "nr_areas": "NrAreas", "reserved": "_3", "areas": ""}},
	"vfio_region_info_cap_type": {v: VFIORegionInfoCapType{}, fields: map[string]string{
		"header": "Header", "type": "Type", "subtype": "Subtype"}},
	"vfio_region_gfx_edid": {v: VFIORegionGfxEDID{}, fields: map[string]string{
		"edid_offset": "EDIDOffset", "edid_max_size": "EDIDMaxSize", "edid_size": "EDIDSize",
		"max_xres": "MaxXRes", "max_yres": "MaxYRes", "link_state": "LinkState"}},
	"vfio_device_migration_info": {v: VFIODeviceMigrationInfo{}, fields: map[string]string{
		"device_state": "DeviceState", "reserved": "_2", "pending_bytes": "PendingBytes",
		"data_offset": "DataOffset", "data_size": "DataSize"}},
	"vfio_region_info_cap_nvlink2_ssatgt": {v: VFIORegionInfoCapNVLink2SSATgt{}, fields: map[string]string{"header": "Header", "tgt": "Tgt"}},
	"vfio_region_info_cap_nvlink2_lnkspd": {v: VFIORegionInfoCapNVLink2LnkSpd{}, fields: map[string]string{
		"header": "Header", "link_speed": "LinkSpeed", "__pad": "_3"}},
	"vfio_irq_info": {v: VFIOIRQInfo{}, fields: map[string]string{"argsz": "ArgSz", "flags": "Flags", "index": "Index", "count": "Count"}},
	"vfio_irq_set": {v: VFIOIRQSet{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "index": "Index", "start": "Start", "count": "Count", "data": ""}},
	"vfio_pci_dependent_device": {v: VFIOPCIDependentDevice{}, fields: map[string]string{
		"group_id": "ID", "devid": "ID", "segment": "Segment", "bus": "Bus", "devfn": "Devfn"}},
	"vfio_pci_hot_reset_info": {v: VFIOPCIHotResetInfo{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "count": "Count", "devices": ""}},
	"vfio_pci_hot_reset": {v: VFIOPCIHotReset{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "count": "Count", "group_fds": ""}},
	"vfio_device_gfx_plane_info": {v: VFIODeviceGfxPlaneInfo{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "drm_plane_type": "DRMPlaneType", "drm_format": "DRMFormat",
		"drm_format_mod": "DRMFormatMod", "width": "Width", "height": "Height", "stride": "Stride", "size": "Size",
		"x_pos": "XPos", "y_pos": "YPos", "x_hot": "XHot", "y_hot": "YHot",
		"region_index": "RegionIndex", "dmabuf_id": "RegionIndex", "reserved": "_15"}},
	"vfio_device_ioeventfd": {v: VFIODeviceIOEventFD{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "offset": "Offset", "data": "Data", "fd": "FD", "reserved": "_6"}},
	"vfio_device_feature": {v: VFIODeviceFeature{}, fields: map[string]string{"argsz": "ArgSz", "flags": "Flags", "data": ""}},
	"vfio_device_bind_iommufd": {v: VFIODeviceBindIOMMUFD{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "iommufd": "IOMMUFD", "out_devid": "OutDevID"},
		grown: map[string]string{"TokenUUIDPtr": "6.17"}},
	"vfio_device_attach_iommufd_pt": {v: VFIODeviceAttachIOMMUFDPT{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "pt_id": "PtID"},
		grown: map[string]string{"PASID": "6.15"}},
	"vfio_device_detach_iommufd_pt": {v: VFIODeviceDetachIOMMUFDPT{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags"},
		grown: map[string]string{"PASID": "6.15"}},
	"vfio_device_feature_migration": {v: VFIODeviceFeatureMigration{}, fields: map[string]string{"flags": "Flags"}},
	"vfio_device_feature_mig_state": {v: VFIODeviceFeatureMigState{}, fields: map[string]string{
		"device_state": "DeviceState", "data_fd": "DataFD"}},
	"vfio_precopy_info": {v: VFIOPrecopyInfo{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "initial_bytes": "InitialBytes", "dirty_bytes": "DirtyBytes"}},
	"vfio_device_low_power_entry_with_wakeup": {v: VFIODeviceLowPowerEntryWithWakeup{}, fields: map[string]string{
		"wakeup_eventfd": "WakeupEventFD", "reserved": "_2"}},
	"vfio_device_feature_dma_logging_control": {v: VFIODeviceFeatureDMALoggingControl{}, fields: map[string]string{
		"page_size": "PageSize", "num_ranges": "NumRanges", "__reserved": "_3", "ranges": "Ranges"}},
	"vfio_device_feature_dma_logging_range": {v: VFIODeviceFeatureDMALoggingRange{}, fields: map[string]string{
		"iova": "IOVA", "length": "Length"}},
	"vfio_device_feature_dma_logging_report": {v: VFIODeviceFeatureDMALoggingReport{}, fields: map[string]string{
		"iova": "IOVA", "length": "Length", "page_size": "PageSize", "bitmap": "Bitmap"}},
	"vfio_device_feature_mig_data_size": {v: VFIODeviceFeatureMigDataSize{}, fields: map[string]string{"stop_copy_length": "StopCopyLength"}},
	"vfio_device_feature_bus_master":    {v: VFIODeviceFeatureBusMaster{}, fields: map[string]string{"op": "Op"}},
	"vfio_iommu_type1_info": {v: VFIOIOMMUType1Info{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "iova_pgsizes": "IOVAPgSizes", "cap_offset": "CapOffset", "pad": "_5"}},
	"vfio_iova_range": {v: VFIOIOVARange{}, fields: map[string]string{"start": "Start", "end": "End"}},
	"vfio_iommu_type1_info_cap_iova_range": {v: VFIOIOMMUType1InfoCapIOVARange{}, fields: map[string]string{
		"header": "Header", "nr_iovas": "NrIOVAs", "reserved": "_3", "iova_ranges": ""}},
	"vfio_iommu_type1_info_cap_migration": {v: VFIOIOMMUType1InfoCapMigration{}, fields: map[string]string{
		"header": "Header", "flags": "Flags", "pgsize_bitmap": "PgSizeBitmap", "max_dirty_bitmap_size": "MaxDirtyBitmapSize"}},
	"vfio_iommu_type1_info_dma_avail": {v: VFIOIOMMUType1InfoDMAAvail{}, fields: map[string]string{"header": "Header", "avail": "Avail"}},
	"vfio_iommu_type1_dma_map": {v: VFIOIOMMUType1DMAMap{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "vaddr": "VAddr", "iova": "IOVA", "size": "Size"}},
	"vfio_bitmap": {v: VFIOBitmap{}, fields: map[string]string{"pgsize": "PgSize", "size": "Size", "data": "Data"}},
	"vfio_iommu_type1_dma_unmap": {v: VFIOIOMMUType1DMAUnmap{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "iova": "IOVA", "size": "Size", "data": ""}},
	"vfio_iommu_type1_dirty_bitmap": {v: VFIOIOMMUType1DirtyBitmap{}, fields: map[string]string{"argsz": "ArgSz", "flags": "Flags", "data": ""}},
	"vfio_iommu_type1_dirty_bitmap_get": {v: VFIOIOMMUType1DirtyBitmapGet{}, fields: map[string]string{
		"iova": "IOVA", "size": "Size", "bitmap": "Bitmap"}},
	"vfio_iommu_spapr_tce_ddw_info": {v: VFIOIOMMUSPAPRTCEDDWInfo{}, fields: map[string]string{
		"pgsizes": "PgSizes", "max_dynamic_windows_supported": "MaxDynamicWindowsSupported", "levels": "Levels"}},
	"vfio_iommu_spapr_tce_info": {v: VFIOIOMMUSPAPRTCEInfo{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "dma32_window_start": "DMA32WindowStart", "dma32_window_size": "DMA32WindowSize", "ddw": "DDW"}},
	"vfio_eeh_pe_err": {v: VFIOEEHPEErr{}, fields: map[string]string{"type": "Type", "func": "Func", "addr": "Addr", "mask": "Mask"}},
	"vfio_eeh_pe_op":  {v: VFIOEEHPEOp{}, fields: map[string]string{"argsz": "ArgSz", "flags": "Flags", "op": "Op", "err": "Err"}},
	"vfio_iommu_spapr_register_memory": {v: VFIOIOMMUSPAPRRegisterMemory{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "vaddr": "VAddr", "size": "Size"}},
	"vfio_iommu_spapr_tce_create": {v: VFIOIOMMUSPAPRTCECreate{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "page_shift": "PageShift", "__resv1": "_4", "window_size": "WindowSize",
		"levels": "Levels", "__resv2": "_7", "start_addr": "StartAddr"}},
	"vfio_iommu_spapr_tce_remove": {v: VFIOIOMMUSPAPRTCERemove{}, fields: map[string]string{
		"argsz": "ArgSz", "flags": "Flags", "start_addr": "StartAddr"}},
}

// vfioNewerStructs are mirrored from mainline headers newer than 6.12 and
// cannot be compiled against it; vfio_test.go pins their layout.
var vfioNewerStructs = map[string]any{
	"vfio_region_dma_range":       VFIORegionDMARange{}, // FEATURE_DMA_BUF
	"vfio_device_feature_dma_buf": VFIODeviceFeatureDMABuf{},
}

var vfioRequests = map[string]uintptr{
	"VFIO_GET_API_VERSION":               VFIO_GET_API_VERSION,
	"VFIO_CHECK_EXTENSION":               VFIO_CHECK_EXTENSION,
	"VFIO_SET_IOMMU":                     VFIO_SET_IOMMU,
	"VFIO_GROUP_GET_STATUS":              VFIO_GROUP_GET_STATUS,
	"VFIO_GROUP_SET_CONTAINER":           VFIO_GROUP_SET_CONTAINER,
	"VFIO_GROUP_UNSET_CONTAINER":         VFIO_GROUP_UNSET_CONTAINER,
	"VFIO_GROUP_GET_DEVICE_FD":           VFIO_GROUP_GET_DEVICE_FD,
	"VFIO_DEVICE_GET_INFO":               VFIO_DEVICE_GET_INFO,
	"VFIO_DEVICE_GET_REGION_INFO":        VFIO_DEVICE_GET_REGION_INFO,
	"VFIO_DEVICE_GET_IRQ_INFO":           VFIO_DEVICE_GET_IRQ_INFO,
	"VFIO_DEVICE_SET_IRQS":               VFIO_DEVICE_SET_IRQS,
	"VFIO_DEVICE_RESET":                  VFIO_DEVICE_RESET,
	"VFIO_DEVICE_GET_PCI_HOT_RESET_INFO": VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
	"VFIO_DEVICE_PCI_HOT_RESET":          VFIO_DEVICE_PCI_HOT_RESET,
	"VFIO_DEVICE_QUERY_GFX_PLANE":        VFIO_DEVICE_QUERY_GFX_PLANE,
	"VFIO_DEVICE_GET_GFX_DMABUF":         VFIO_DEVICE_GET_GFX_DMABUF,
	"VFIO_DEVICE_IOEVENTFD":              VFIO_DEVICE_IOEVENTFD,
	"VFIO_DEVICE_FEATURE":                VFIO_DEVICE_FEATURE,
	"VFIO_DEVICE_BIND_IOMMUFD":           VFIO_DEVICE_BIND_IOMMUFD,
	"VFIO_DEVICE_ATTACH_IOMMUFD_PT":      VFIO_DEVICE_ATTACH_IOMMUFD_PT,
	"VFIO_DEVICE_DETACH_IOMMUFD_PT":      VFIO_DEVICE_DETACH_IOMMUFD_PT,
	"VFIO_MIG_GET_PRECOPY_INFO":          VFIO_MIG_GET_PRECOPY_INFO,
	"VFIO_IOMMU_GET_INFO":                VFIO_IOMMU_GET_INFO,
	"VFIO_IOMMU_MAP_DMA":                 VFIO_IOMMU_MAP_DMA,
	"VFIO_IOMMU_UNMAP_DMA":               VFIO_IOMMU_UNMAP_DMA,
	"VFIO_IOMMU_ENABLE":                  VFIO_IOMMU_ENABLE,
	"VFIO_IOMMU_DISABLE":                 VFIO_IOMMU_DISABLE,
	"VFIO_IOMMU_DIRTY_PAGES":             VFIO_IOMMU_DIRTY_PAGES,
	"VFIO_IOMMU_SPAPR_TCE_GET_INFO":      VFIO_IOMMU_SPAPR_TCE_GET_INFO,
	"VFIO_IOMMU_SPAPR_REGISTER_MEMORY":   VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
	"VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY": VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
	"VFIO_IOMMU_SPAPR_TCE_CREATE":        VFIO_IOMMU_SPAPR_TCE_CREATE,
	"VFIO_IOMMU_SPAPR_TCE_REMOVE":        VFIO_IOMMU_SPAPR_TCE_REMOVE,
	"VFIO_EEH_PE_OP":                     VFIO_EEH_PE_OP,
}

// vfioConstants lists every integer constant of vfio.go other than request
// numbers.
var vfioConstants = map[string]int64{
	"VFIO_API_VERSION":                                VFIO_API_VERSION,
	"VFIO_TYPE1_IOMMU":                                VFIO_TYPE1_IOMMU,
	"VFIO_SPAPR_TCE_IOMMU":                            VFIO_SPAPR_TCE_IOMMU,
	"VFIO_TYPE1v2_IOMMU":                              VFIO_TYPE1v2_IOMMU,
	"VFIO_DMA_CC_IOMMU":                               VFIO_DMA_CC_IOMMU,
	"VFIO_EEH":                                        VFIO_EEH,
	"VFIO_TYPE1_NESTING_IOMMU":                        VFIO_TYPE1_NESTING_IOMMU,
	"VFIO_SPAPR_TCE_v2_IOMMU":                         VFIO_SPAPR_TCE_v2_IOMMU,
	"VFIO_NOIOMMU_IOMMU":                              VFIO_NOIOMMU_IOMMU,
	"VFIO_UNMAP_ALL":                                  VFIO_UNMAP_ALL,
	"VFIO_UPDATE_VADDR":                               VFIO_UPDATE_VADDR,
	"VFIO_TYPE":                                       VFIO_TYPE,
	"VFIO_BASE":                                       VFIO_BASE,
	"VFIO_GROUP_FLAGS_VIABLE":                         VFIO_GROUP_FLAGS_VIABLE,
	"VFIO_GROUP_FLAGS_CONTAINER_SET":                  VFIO_GROUP_FLAGS_CONTAINER_SET,
	"VFIO_DEVICE_FLAGS_RESET":                         VFIO_DEVICE_FLAGS_RESET,
	"VFIO_DEVICE_FLAGS_PCI":                           VFIO_DEVICE_FLAGS_PCI,
	"VFIO_DEVICE_FLAGS_PLATFORM":                      VFIO_DEVICE_FLAGS_PLATFORM,
	"VFIO_DEVICE_FLAGS_AMBA":                          VFIO_DEVICE_FLAGS_AMBA,
	"VFIO_DEVICE_FLAGS_CCW":                           VFIO_DEVICE_FLAGS_CCW,
	"VFIO_DEVICE_FLAGS_AP":                            VFIO_DEVICE_FLAGS_AP,
	"VFIO_DEVICE_FLAGS_FSL_MC":                        VFIO_DEVICE_FLAGS_FSL_MC,
	"VFIO_DEVICE_FLAGS_CAPS":                          VFIO_DEVICE_FLAGS_CAPS,
	"VFIO_DEVICE_FLAGS_CDX":                           VFIO_DEVICE_FLAGS_CDX,
	"VFIO_DEVICE_INFO_CAP_ZPCI_BASE":                  VFIO_DEVICE_INFO_CAP_ZPCI_BASE,
	"VFIO_DEVICE_INFO_CAP_ZPCI_GROUP":                 VFIO_DEVICE_INFO_CAP_ZPCI_GROUP,
	"VFIO_DEVICE_INFO_CAP_ZPCI_UTIL":                  VFIO_DEVICE_INFO_CAP_ZPCI_UTIL,
	"VFIO_DEVICE_INFO_CAP_ZPCI_PFIP":                  VFIO_DEVICE_INFO_CAP_ZPCI_PFIP,
	"VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP":            VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP,
	"VFIO_PCI_ATOMIC_COMP32":                          VFIO_PCI_ATOMIC_COMP32,
	"VFIO_PCI_ATOMIC_COMP64":                          VFIO_PCI_ATOMIC_COMP64,
	"VFIO_PCI_ATOMIC_COMP128":                         VFIO_PCI_ATOMIC_COMP128,
	"VFIO_REGION_INFO_FLAG_READ":                      VFIO_REGION_INFO_FLAG_READ,
	"VFIO_REGION_INFO_FLAG_WRITE":                     VFIO_REGION_INFO_FLAG_WRITE,
	"VFIO_REGION_INFO_FLAG_MMAP":                      VFIO_REGION_INFO_FLAG_MMAP,
	"VFIO_REGION_INFO_FLAG_CAPS":                      VFIO_REGION_INFO_FLAG_CAPS,
	"VFIO_REGION_INFO_CAP_SPARSE_MMAP":                VFIO_REGION_INFO_CAP_SPARSE_MMAP,
	"VFIO_REGION_INFO_CAP_TYPE":                       VFIO_REGION_INFO_CAP_TYPE,
	"VFIO_REGION_TYPE_PCI_VENDOR_TYPE":                VFIO_REGION_TYPE_PCI_VENDOR_TYPE,
	"VFIO_REGION_TYPE_PCI_VENDOR_MASK":                VFIO_REGION_TYPE_PCI_VENDOR_MASK,
	"VFIO_REGION_TYPE_GFX":                            VFIO_REGION_TYPE_GFX,
	"VFIO_REGION_TYPE_CCW":                            VFIO_REGION_TYPE_CCW,
	"VFIO_REGION_TYPE_MIGRATION_DEPRECATED":           VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
	"VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION":          VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION,
	"VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG":          VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG,
	"VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG":           VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG,
	"VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM":          VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
	"VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD":            VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD,
	"VFIO_REGION_SUBTYPE_GFX_EDID":                    VFIO_REGION_SUBTYPE_GFX_EDID,
	"VFIO_DEVICE_GFX_LINK_STATE_UP":                   VFIO_DEVICE_GFX_LINK_STATE_UP,
	"VFIO_DEVICE_GFX_LINK_STATE_DOWN":                 VFIO_DEVICE_GFX_LINK_STATE_DOWN,
	"VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD":               VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD,
	"VFIO_REGION_SUBTYPE_CCW_SCHIB":                   VFIO_REGION_SUBTYPE_CCW_SCHIB,
	"VFIO_REGION_SUBTYPE_CCW_CRW":                     VFIO_REGION_SUBTYPE_CCW_CRW,
	"VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED":        VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED,
	"VFIO_DEVICE_STATE_V1_STOP":                       VFIO_DEVICE_STATE_V1_STOP,
	"VFIO_DEVICE_STATE_V1_RUNNING":                    VFIO_DEVICE_STATE_V1_RUNNING,
	"VFIO_DEVICE_STATE_V1_SAVING":                     VFIO_DEVICE_STATE_V1_SAVING,
	"VFIO_DEVICE_STATE_V1_RESUMING":                   VFIO_DEVICE_STATE_V1_RESUMING,
	"VFIO_DEVICE_STATE_MASK":                          VFIO_DEVICE_STATE_MASK,
	"VFIO_REGION_INFO_CAP_MSIX_MAPPABLE":              VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
	"VFIO_REGION_INFO_CAP_NVLINK2_SSATGT":             VFIO_REGION_INFO_CAP_NVLINK2_SSATGT,
	"VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD":             VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD,
	"VFIO_IRQ_INFO_EVENTFD":                           VFIO_IRQ_INFO_EVENTFD,
	"VFIO_IRQ_INFO_MASKABLE":                          VFIO_IRQ_INFO_MASKABLE,
	"VFIO_IRQ_INFO_AUTOMASKED":                        VFIO_IRQ_INFO_AUTOMASKED,
	"VFIO_IRQ_INFO_NORESIZE":                          VFIO_IRQ_INFO_NORESIZE,
	"VFIO_IRQ_SET_DATA_NONE":                          VFIO_IRQ_SET_DATA_NONE,
	"VFIO_IRQ_SET_DATA_BOOL":                          VFIO_IRQ_SET_DATA_BOOL,
	"VFIO_IRQ_SET_DATA_EVENTFD":                       VFIO_IRQ_SET_DATA_EVENTFD,
	"VFIO_IRQ_SET_ACTION_MASK":                        VFIO_IRQ_SET_ACTION_MASK,
	"VFIO_IRQ_SET_ACTION_UNMASK":                      VFIO_IRQ_SET_ACTION_UNMASK,
	"VFIO_IRQ_SET_ACTION_TRIGGER":                     VFIO_IRQ_SET_ACTION_TRIGGER,
	"VFIO_IRQ_SET_DATA_TYPE_MASK":                     VFIO_IRQ_SET_DATA_TYPE_MASK,
	"VFIO_IRQ_SET_ACTION_TYPE_MASK":                   VFIO_IRQ_SET_ACTION_TYPE_MASK,
	"VFIO_PCI_DEVID_OWNED":                            VFIO_PCI_DEVID_OWNED,
	"VFIO_PCI_DEVID_NOT_OWNED":                        VFIO_PCI_DEVID_NOT_OWNED,
	"VFIO_PCI_HOT_RESET_FLAG_DEV_ID":                  VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
	"VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED":            VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
	"VFIO_GFX_PLANE_TYPE_PROBE":                       VFIO_GFX_PLANE_TYPE_PROBE,
	"VFIO_GFX_PLANE_TYPE_DMABUF":                      VFIO_GFX_PLANE_TYPE_DMABUF,
	"VFIO_GFX_PLANE_TYPE_REGION":                      VFIO_GFX_PLANE_TYPE_REGION,
	"VFIO_DEVICE_IOEVENTFD_8":                         VFIO_DEVICE_IOEVENTFD_8,
	"VFIO_DEVICE_IOEVENTFD_16":                        VFIO_DEVICE_IOEVENTFD_16,
	"VFIO_DEVICE_IOEVENTFD_32":                        VFIO_DEVICE_IOEVENTFD_32,
	"VFIO_DEVICE_IOEVENTFD_64":                        VFIO_DEVICE_IOEVENTFD_64,
	"VFIO_DEVICE_IOEVENTFD_SIZE_MASK":                 VFIO_DEVICE_IOEVENTFD_SIZE_MASK,
	"VFIO_DEVICE_FEATURE_MASK":                        VFIO_DEVICE_FEATURE_MASK,
	"VFIO_DEVICE_FEATURE_GET":                         VFIO_DEVICE_FEATURE_GET,
	"VFIO_DEVICE_FEATURE_SET":                         VFIO_DEVICE_FEATURE_SET,
	"VFIO_DEVICE_FEATURE_PROBE":                       VFIO_DEVICE_FEATURE_PROBE,
	"VFIO_DEVICE_FEATURE_PCI_VF_TOKEN":                VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
	"VFIO_MIGRATION_STOP_COPY":                        VFIO_MIGRATION_STOP_COPY,
	"VFIO_MIGRATION_P2P":                              VFIO_MIGRATION_P2P,
	"VFIO_MIGRATION_PRE_COPY":                         VFIO_MIGRATION_PRE_COPY,
	"VFIO_DEVICE_FEATURE_MIGRATION":                   VFIO_DEVICE_FEATURE_MIGRATION,
	"VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE":            VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
	"VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY":             VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
	"VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP": VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
	"VFIO_DEVICE_FEATURE_LOW_POWER_EXIT":              VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
	"VFIO_DEVICE_FEATURE_DMA_LOGGING_START":           VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
	"VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP":            VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
	"VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT":          VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
	"VFIO_DEVICE_FEATURE_MIG_DATA_SIZE":               VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
	"VFIO_DEVICE_FEATURE_CLEAR_MASTER":                VFIO_DEVICE_FEATURE_CLEAR_MASTER,
	"VFIO_DEVICE_FEATURE_SET_MASTER":                  VFIO_DEVICE_FEATURE_SET_MASTER,
	"VFIO_DEVICE_FEATURE_BUS_MASTER":                  VFIO_DEVICE_FEATURE_BUS_MASTER,
	"VFIO_IOMMU_INFO_PGSIZES":                         VFIO_IOMMU_INFO_PGSIZES,
	"VFIO_IOMMU_INFO_CAPS":                            VFIO_IOMMU_INFO_CAPS,
	"VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE":            VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
	"VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION":             VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
	"VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL":                 VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
	"VFIO_DMA_MAP_FLAG_READ":                          VFIO_DMA_MAP_FLAG_READ,
	"VFIO_DMA_MAP_FLAG_WRITE":                         VFIO_DMA_MAP_FLAG_WRITE,
	"VFIO_DMA_MAP_FLAG_VADDR":                         VFIO_DMA_MAP_FLAG_VADDR,
	"VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP":            VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
	"VFIO_DMA_UNMAP_FLAG_ALL":                         VFIO_DMA_UNMAP_FLAG_ALL,
	"VFIO_DMA_UNMAP_FLAG_VADDR":                       VFIO_DMA_UNMAP_FLAG_VADDR,
	"VFIO_IOMMU_DIRTY_PAGES_FLAG_START":               VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
	"VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP":                VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
	"VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP":          VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
	"VFIO_IOMMU_SPAPR_INFO_DDW":                       VFIO_IOMMU_SPAPR_INFO_DDW,
	"VFIO_EEH_PE_DISABLE":                             VFIO_EEH_PE_DISABLE,
	"VFIO_EEH_PE_ENABLE":                              VFIO_EEH_PE_ENABLE,
	"VFIO_EEH_PE_UNFREEZE_IO":                         VFIO_EEH_PE_UNFREEZE_IO,
	"VFIO_EEH_PE_UNFREEZE_DMA":                        VFIO_EEH_PE_UNFREEZE_DMA,
	"VFIO_EEH_PE_GET_STATE":                           VFIO_EEH_PE_GET_STATE,
	"VFIO_EEH_PE_STATE_NORMAL":                        VFIO_EEH_PE_STATE_NORMAL,
	"VFIO_EEH_PE_STATE_RESET":                         VFIO_EEH_PE_STATE_RESET,
	"VFIO_EEH_PE_STATE_STOPPED":                       VFIO_EEH_PE_STATE_STOPPED,
	"VFIO_EEH_PE_STATE_STOPPED_DMA":                   VFIO_EEH_PE_STATE_STOPPED_DMA,
	"VFIO_EEH_PE_STATE_UNAVAIL":                       VFIO_EEH_PE_STATE_UNAVAIL,
	"VFIO_EEH_PE_RESET_DEACTIVATE":                    VFIO_EEH_PE_RESET_DEACTIVATE,
	"VFIO_EEH_PE_RESET_HOT":                           VFIO_EEH_PE_RESET_HOT,
	"VFIO_EEH_PE_RESET_FUNDAMENTAL":                   VFIO_EEH_PE_RESET_FUNDAMENTAL,
	"VFIO_EEH_PE_CONFIGURE":                           VFIO_EEH_PE_CONFIGURE,
	"VFIO_EEH_PE_INJECT_ERR":                          VFIO_EEH_PE_INJECT_ERR,
	"VFIO_PCI_BAR0_REGION_INDEX":                      VFIO_PCI_BAR0_REGION_INDEX,
	"VFIO_PCI_BAR1_REGION_INDEX":                      VFIO_PCI_BAR1_REGION_INDEX,
	"VFIO_PCI_BAR2_REGION_INDEX":                      VFIO_PCI_BAR2_REGION_INDEX,
	"VFIO_PCI_BAR3_REGION_INDEX":                      VFIO_PCI_BAR3_REGION_INDEX,
	"VFIO_PCI_BAR4_REGION_INDEX":                      VFIO_PCI_BAR4_REGION_INDEX,
	"VFIO_PCI_BAR5_REGION_INDEX":                      VFIO_PCI_BAR5_REGION_INDEX,
	"VFIO_PCI_ROM_REGION_INDEX":                       VFIO_PCI_ROM_REGION_INDEX,
	"VFIO_PCI_CONFIG_REGION_INDEX":                    VFIO_PCI_CONFIG_REGION_INDEX,
	"VFIO_PCI_VGA_REGION_INDEX":                       VFIO_PCI_VGA_REGION_INDEX,
	"VFIO_PCI_NUM_REGIONS":                            VFIO_PCI_NUM_REGIONS,
	"VFIO_PCI_INTX_IRQ_INDEX":                         VFIO_PCI_INTX_IRQ_INDEX,
	"VFIO_PCI_MSI_IRQ_INDEX":                          VFIO_PCI_MSI_IRQ_INDEX,
	"VFIO_PCI_MSIX_IRQ_INDEX":                         VFIO_PCI_MSIX_IRQ_INDEX,
	"VFIO_PCI_ERR_IRQ_INDEX":                          VFIO_PCI_ERR_IRQ_INDEX,
	"VFIO_PCI_REQ_IRQ_INDEX":                          VFIO_PCI_REQ_IRQ_INDEX,
	"VFIO_PCI_NUM_IRQS":                               VFIO_PCI_NUM_IRQS,
	"VFIO_CCW_CONFIG_REGION_INDEX":                    VFIO_CCW_CONFIG_REGION_INDEX,
	"VFIO_CCW_NUM_REGIONS":                            VFIO_CCW_NUM_REGIONS,
	"VFIO_CCW_IO_IRQ_INDEX":                           VFIO_CCW_IO_IRQ_INDEX,
	"VFIO_CCW_CRW_IRQ_INDEX":                          VFIO_CCW_CRW_IRQ_INDEX,
	"VFIO_CCW_REQ_IRQ_INDEX":                          VFIO_CCW_REQ_IRQ_INDEX,
	"VFIO_CCW_NUM_IRQS":                               VFIO_CCW_NUM_IRQS,
	"VFIO_AP_REQ_IRQ_INDEX":                           VFIO_AP_REQ_IRQ_INDEX,
	"VFIO_AP_NUM_IRQS":                                VFIO_AP_NUM_IRQS,
	"VFIO_DEVICE_STATE_ERROR":                         VFIO_DEVICE_STATE_ERROR,
	"VFIO_DEVICE_STATE_STOP":                          VFIO_DEVICE_STATE_STOP,
	"VFIO_DEVICE_STATE_RUNNING":                       VFIO_DEVICE_STATE_RUNNING,
	"VFIO_DEVICE_STATE_STOP_COPY":                     VFIO_DEVICE_STATE_STOP_COPY,
	"VFIO_DEVICE_STATE_RESUMING":                      VFIO_DEVICE_STATE_RESUMING,
	"VFIO_DEVICE_STATE_RUNNING_P2P":                   VFIO_DEVICE_STATE_RUNNING_P2P,
	"VFIO_DEVICE_STATE_PRE_COPY":                      VFIO_DEVICE_STATE_PRE_COPY,
	"VFIO_DEVICE_STATE_PRE_COPY_P2P":                  VFIO_DEVICE_STATE_PRE_COPY_P2P,
	"VFIO_DEVICE_STATE_NR":                            VFIO_DEVICE_STATE_NR,
}

// vfioNewerConstants are in vfio.go from mainline headers newer than 6.12.
var vfioNewerConstants = map[string]string{
	"VFIO_DEVICE_BIND_FLAG_TOKEN": "6.17",
	"VFIO_DEVICE_ATTACH_PASID":    "6.15",
	"VFIO_DEVICE_DETACH_PASID":    "6.15",
	"VFIO_DEVICE_FEATURE_DMA_BUF": "6.19",
	"VFIO_AP_CFG_CHG_IRQ_INDEX":   "after 6.12",
}

// goField resolves a Go field name of the tables: a name, or "_N" for the
// blank field at index N.
func goField(typ reflect.Type, name string) (reflect.StructField, bool) {
	if idx, ok := strings.CutPrefix(name, "_"); ok {
		i, err := strconv.Atoi(idx)
		if err != nil || i >= typ.NumField() || typ.Field(i).Name != "_" {
			return reflect.StructField{}, false
		}
		return typ.Field(i), true
	}
	return typ.FieldByName(name)
}

func TestVFIOAgainstC(t *testing.T) {
	layouts := cref.VFIOLayouts()
	seen := map[string]bool{}
	for _, l := range layouts {
		seen[l.Name] = true
		s, ok := vfioStructs[l.Name]
		if !ok {
			t.Errorf("struct %s is in the header but not in vfioStructs", l.Name)
			continue
		}
		typ := reflect.TypeOf(s.v)
		for cf, coff := range l.Fields {
			gf, ok := s.fields[cf]
			if !ok {
				t.Errorf("%s.%s is in the header but not mapped in vfioStructs", l.Name, cf)
				continue
			}
			if gf == "" {
				if coff != typ.Size() {
					t.Errorf("%s.%s: flexible array at %d, Go %s ends at %d", l.Name, cf, coff, typ, typ.Size())
				}
				continue
			}
			f, ok := goField(typ, gf)
			if !ok {
				t.Errorf("%s: no field %s for C %s", typ, gf, cf)
				continue
			}
			if f.Offset != coff {
				t.Errorf("%s.%s at %d, C %s.%s at %d", typ, gf, f.Offset, l.Name, cf, coff)
			}
		}
		for cf := range s.fields {
			if _, ok := l.Fields[cf]; !ok {
				t.Errorf("vfioStructs maps %s.%s, which cref does not export", l.Name, cf)
			}
		}
		// Every named Go field is either some C field or grown later.
		mapped := map[string]bool{}
		for _, gf := range s.fields {
			mapped[gf] = true
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Name != "_" && !mapped[f.Name] && s.grown[f.Name] == "" {
				t.Errorf("%s.%s has no C field", typ, f.Name)
			}
		}
		size := typ.Size()
		if len(s.grown) > 0 && l.Size != size {
			// The 6.12 struct must be the prefix that ends where the first
			// later field starts.
			first := size
			for gf := range s.grown {
				f, ok := typ.FieldByName(gf)
				if !ok {
					t.Fatalf("%s: grown field %s missing", typ, gf)
				}
				first = min(first, f.Offset)
			}
			size = first
		}
		if l.Size != size {
			t.Errorf("%s: Go size %d (6.12 part), C %s %d", typ, size, l.Name, l.Size)
		}
	}
	for name := range vfioStructs {
		if !seen[name] {
			t.Errorf("vfioStructs has %s, which cref does not export", name)
		}
	}

	creqs := cref.VFIORequests()
	reqSeen := map[string]bool{}
	for _, r := range creqs {
		reqSeen[r.Name] = true
		got, ok := vfioRequests[r.Name]
		if !ok {
			t.Errorf("request %s is in the header but not in vfioRequests", r.Name)
			continue
		}
		if got != r.Value {
			t.Errorf("%s = %#x, C has %#x", r.Name, got, r.Value)
		}
	}
	for name := range vfioRequests {
		if !reqSeen[name] {
			t.Errorf("vfioRequests has %s, which cref does not export", name)
		}
	}

	cconsts := cref.VFIOConstants()
	for name, cv := range cconsts {
		gv, ok := vfioConstants[name]
		if !ok {
			t.Errorf("constant %s is in the header but not in vfioConstants", name)
			continue
		}
		// VFIO_PCI_DEVID_NOT_OWNED is -1 in C and lives in a __u32.
		if gv != cv && (cv >= 0 || uint32(gv) != uint32(cv)) {
			t.Errorf("%s = %d, C has %d", name, gv, cv)
		}
	}
	for name := range vfioConstants {
		if _, ok := cconsts[name]; !ok {
			t.Errorf("vfioConstants has %s, which cref does not export", name)
		}
	}
}

// TestVFIOTablesComplete fails when the header or vfio.go has a struct,
// request or constant that the tables above (and so cref) do not check.
func TestVFIOTablesComplete(t *testing.T) {
	hdr := readVFIOHeader(t)

	var hstructs []string
	for _, m := range regexp.MustCompile(`(?m)^struct (\w+) \{`).FindAllStringSubmatch(hdr, -1) {
		hstructs = append(hstructs, m[1])
	}
	if len(hstructs) == 0 {
		t.Fatal("no struct found in linux/vfio.h")
	}
	for _, s := range hstructs {
		if _, ok := vfioStructs[s]; !ok {
			t.Errorf("header struct %s is missing from vfioStructs", s)
		}
	}
	if len(hstructs) != len(cref.VFIOLayouts()) {
		t.Errorf("header has %d structs, cref exports %d", len(hstructs), len(cref.VFIOLayouts()))
	}

	reqRE := regexp.MustCompile(`(?m)^#define\s+(VFIO_\w+)\s+_IO\(`)
	reqs := map[string]bool{}
	for _, m := range reqRE.FindAllStringSubmatch(hdr, -1) {
		reqs[m[1]] = true
		if _, ok := vfioRequests[m[1]]; !ok {
			t.Errorf("header request %s is missing from vfioRequests", m[1])
		}
	}
	if len(reqs) != len(cref.VFIORequests()) {
		t.Errorf("header has %d requests, cref exports %d", len(reqs), len(cref.VFIORequests()))
	}

	// Object-like integer #defines and enum members.
	cconsts := cref.VFIOConstants()
	defRE := regexp.MustCompile(`(?m)^\s*#\s*define\s+(VFIO_\w+)([ \t(]?)(.*)$`)
	for _, m := range defRE.FindAllStringSubmatch(hdr, -1) {
		name, sep, val := m[1], m[2], m[3]
		if sep == "(" || reqs[name] || name == "VFIO_H" || strings.Contains(val, `"`) {
			continue // function-like, request, include guard, string
		}
		if _, ok := cconsts[name]; !ok {
			t.Errorf("header constant %s is missing from cref.VFIOConstants", name)
		}
	}
	enumRE := regexp.MustCompile(`(?s)enum(?: \w+)? \{(.*?)\};`)
	commentRE := regexp.MustCompile(`(?s)/\*.*?\*/`)
	for _, m := range enumRE.FindAllStringSubmatch(hdr, -1) {
		for _, e := range strings.Split(commentRE.ReplaceAllString(m[1], ""), ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(e), "=")
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			if _, ok := cconsts[name]; !ok {
				t.Errorf("header enum member %s is missing from cref.VFIOConstants", name)
			}
		}
	}

	// Everything vfio.go declares is in a table.
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "vfio.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	goTypes := map[string]bool{}
	for _, s := range vfioStructs {
		goTypes[reflect.TypeOf(s.v).Name()] = true
	}
	for _, v := range vfioNewerStructs {
		goTypes[reflect.TypeOf(v).Name()] = true
	}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				if !goTypes[s.Name.Name] {
					t.Errorf("vfio.go type %s is in no table", s.Name.Name)
				}
			case *ast.ValueSpec:
				for _, n := range s.Names {
					name := n.Name
					_, isReq := vfioRequests[name]
					_, isConst := vfioConstants[name]
					_, isNewer := vfioNewerConstants[name]
					isString := strings.HasSuffix(name, "_STRING")
					if !isReq && !isConst && !isNewer && !isString {
						t.Errorf("vfio.go constant %s is in no table", name)
					}
				}
			}
		}
	}
}

// readVFIOHeader finds linux/vfio.h in the include directories of
// CGO_CFLAGS, as cgo does, falling back to /usr/include.
func readVFIOHeader(t *testing.T) string {
	t.Helper()
	var dirs []string
	fields := strings.Fields(os.Getenv("CGO_CFLAGS"))
	for i, f := range fields {
		switch {
		case (f == "-isystem" || f == "-I") && i+1 < len(fields):
			dirs = append(dirs, fields[i+1])
		case strings.HasPrefix(f, "-isystem") && len(f) > len("-isystem"):
			dirs = append(dirs, f[len("-isystem"):])
		case strings.HasPrefix(f, "-I") && len(f) > 2:
			dirs = append(dirs, f[2:])
		}
	}
	dirs = append(dirs, "/usr/include")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "linux", "vfio.h"))
		if err == nil {
			t.Logf("checking against %s", filepath.Join(d, "linux", "vfio.h"))
			return string(b)
		}
	}
	t.Fatalf("linux/vfio.h not found in %v", dirs)
	return ""
}
