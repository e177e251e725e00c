package uapi

import "testing"

// Sizes and offsets below are read off include/uapi/linux/vfio.h for
// x86_64/arm64 (LP64, __u64 8-aligned); cref_vfio_test.go checks the same
// against the compiled header.

func TestVFIOLayout(t *testing.T) {
	t.Parallel()
	hdr := field{"Header", 0}
	cases := []struct {
		name   string
		v      any
		size   uintptr
		fields []field
	}{
		{"vfio_info_cap_header", VFIOInfoCapHeader{}, 8, []field{{"ID", 0}, {"Version", 2}, {"Next", 4}}},
		{"vfio_group_status", VFIOGroupStatus{}, 8, []field{{"ArgSz", 0}, {"Flags", 4}}},
		{"vfio_device_info", VFIODeviceInfo{}, 24, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"NumRegions", 8}, {"NumIRQs", 12}, {"CapOffset", 16}}},
		{"vfio_device_info_cap_pci_atomic_comp", VFIODeviceInfoCapPCIAtomicComp{}, 16, []field{hdr, {"Flags", 8}}},
		{"vfio_region_info", VFIORegionInfo{}, 32, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"Index", 8}, {"CapOffset", 12}, {"Size", 16}, {"Offset", 24}}},
		{"vfio_region_sparse_mmap_area", VFIORegionSparseMmapArea{}, 16, []field{{"Offset", 0}, {"Size", 8}}},
		{"vfio_region_info_cap_sparse_mmap", VFIORegionInfoCapSparseMmap{}, 16, []field{hdr, {"NrAreas", 8}}},
		{"vfio_region_info_cap_type", VFIORegionInfoCapType{}, 16, []field{hdr, {"Type", 8}, {"Subtype", 12}}},
		{"vfio_region_gfx_edid", VFIORegionGfxEDID{}, 24, []field{
			{"EDIDOffset", 0}, {"EDIDMaxSize", 4}, {"EDIDSize", 8}, {"MaxXRes", 12}, {"MaxYRes", 16}, {"LinkState", 20}}},
		{"vfio_device_migration_info", VFIODeviceMigrationInfo{}, 32, []field{
			{"DeviceState", 0}, {"PendingBytes", 8}, {"DataOffset", 16}, {"DataSize", 24}}},
		{"vfio_region_info_cap_nvlink2_ssatgt", VFIORegionInfoCapNVLink2SSATgt{}, 16, []field{hdr, {"Tgt", 8}}},
		{"vfio_region_info_cap_nvlink2_lnkspd", VFIORegionInfoCapNVLink2LnkSpd{}, 16, []field{hdr, {"LinkSpeed", 8}}},
		{"vfio_irq_info", VFIOIRQInfo{}, 16, []field{{"ArgSz", 0}, {"Flags", 4}, {"Index", 8}, {"Count", 12}}},
		{"vfio_irq_set", VFIOIRQSet{}, 20, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"Index", 8}, {"Start", 12}, {"Count", 16}}},
		{"vfio_pci_dependent_device", VFIOPCIDependentDevice{}, 8, []field{
			{"ID", 0}, {"Segment", 4}, {"Bus", 6}, {"Devfn", 7}}},
		{"vfio_pci_hot_reset_info", VFIOPCIHotResetInfo{}, 12, []field{{"ArgSz", 0}, {"Flags", 4}, {"Count", 8}}},
		{"vfio_pci_hot_reset", VFIOPCIHotReset{}, 12, []field{{"ArgSz", 0}, {"Flags", 4}, {"Count", 8}}},
		{"vfio_device_gfx_plane_info", VFIODeviceGfxPlaneInfo{}, 64, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"DRMPlaneType", 8}, {"DRMFormat", 12}, {"DRMFormatMod", 16},
			{"Width", 24}, {"Height", 28}, {"Stride", 32}, {"Size", 36}, {"XPos", 40}, {"YPos", 44},
			{"XHot", 48}, {"YHot", 52}, {"RegionIndex", 56}}},
		{"vfio_device_ioeventfd", VFIODeviceIOEventFD{}, 32, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"Offset", 8}, {"Data", 16}, {"FD", 24}}},
		{"vfio_device_feature", VFIODeviceFeature{}, 8, []field{{"ArgSz", 0}, {"Flags", 4}}},
		// 6.17 layout; 6.12's is the first 16 bytes.
		{"vfio_device_bind_iommufd", VFIODeviceBindIOMMUFD{}, 24, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"IOMMUFD", 8}, {"OutDevID", 12}, {"TokenUUIDPtr", 16}}},
		// 6.15 layouts; 6.12's are the first 12 and 8 bytes.
		{"vfio_device_attach_iommufd_pt", VFIODeviceAttachIOMMUFDPT{}, 16, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"PtID", 8}, {"PASID", 12}}},
		{"vfio_device_detach_iommufd_pt", VFIODeviceDetachIOMMUFDPT{}, 12, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"PASID", 8}}},
		{"vfio_device_feature_migration", VFIODeviceFeatureMigration{}, 8, []field{{"Flags", 0}}},
		{"vfio_device_feature_mig_state", VFIODeviceFeatureMigState{}, 8, []field{{"DeviceState", 0}, {"DataFD", 4}}},
		{"vfio_precopy_info", VFIOPrecopyInfo{}, 24, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"InitialBytes", 8}, {"DirtyBytes", 16}}},
		{"vfio_device_low_power_entry_with_wakeup", VFIODeviceLowPowerEntryWithWakeup{}, 8, []field{{"WakeupEventFD", 0}}},
		{"vfio_device_feature_dma_logging_control", VFIODeviceFeatureDMALoggingControl{}, 24, []field{
			{"PageSize", 0}, {"NumRanges", 8}, {"Ranges", 16}}},
		{"vfio_device_feature_dma_logging_range", VFIODeviceFeatureDMALoggingRange{}, 16, []field{{"IOVA", 0}, {"Length", 8}}},
		{"vfio_device_feature_dma_logging_report", VFIODeviceFeatureDMALoggingReport{}, 32, []field{
			{"IOVA", 0}, {"Length", 8}, {"PageSize", 16}, {"Bitmap", 24}}},
		{"vfio_device_feature_mig_data_size", VFIODeviceFeatureMigDataSize{}, 8, []field{{"StopCopyLength", 0}}},
		{"vfio_device_feature_bus_master", VFIODeviceFeatureBusMaster{}, 4, []field{{"Op", 0}}},
		// Newer than 6.12 (FEATURE_DMA_BUF).
		{"vfio_region_dma_range", VFIORegionDMARange{}, 16, []field{{"Offset", 0}, {"Length", 8}}},
		{"vfio_device_feature_dma_buf", VFIODeviceFeatureDMABuf{}, 16, []field{
			{"RegionIndex", 0}, {"OpenFlags", 4}, {"Flags", 8}, {"NrRanges", 12}}},
		{"vfio_iommu_type1_info", VFIOIOMMUType1Info{}, 24, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"IOVAPgSizes", 8}, {"CapOffset", 16}}},
		{"vfio_iova_range", VFIOIOVARange{}, 16, []field{{"Start", 0}, {"End", 8}}},
		{"vfio_iommu_type1_info_cap_iova_range", VFIOIOMMUType1InfoCapIOVARange{}, 16, []field{hdr, {"NrIOVAs", 8}}},
		{"vfio_iommu_type1_info_cap_migration", VFIOIOMMUType1InfoCapMigration{}, 32, []field{
			hdr, {"Flags", 8}, {"PgSizeBitmap", 16}, {"MaxDirtyBitmapSize", 24}}},
		{"vfio_iommu_type1_info_dma_avail", VFIOIOMMUType1InfoDMAAvail{}, 12, []field{hdr, {"Avail", 8}}},
		{"vfio_iommu_type1_dma_map", VFIOIOMMUType1DMAMap{}, 32, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"VAddr", 8}, {"IOVA", 16}, {"Size", 24}}},
		{"vfio_bitmap", VFIOBitmap{}, 24, []field{{"PgSize", 0}, {"Size", 8}, {"Data", 16}}},
		{"vfio_iommu_type1_dma_unmap", VFIOIOMMUType1DMAUnmap{}, 24, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"IOVA", 8}, {"Size", 16}}},
		{"vfio_iommu_type1_dirty_bitmap", VFIOIOMMUType1DirtyBitmap{}, 8, []field{{"ArgSz", 0}, {"Flags", 4}}},
		{"vfio_iommu_type1_dirty_bitmap_get", VFIOIOMMUType1DirtyBitmapGet{}, 40, []field{
			{"IOVA", 0}, {"Size", 8}, {"Bitmap", 16}}},
		{"vfio_iommu_spapr_tce_ddw_info", VFIOIOMMUSPAPRTCEDDWInfo{}, 16, []field{
			{"PgSizes", 0}, {"MaxDynamicWindowsSupported", 8}, {"Levels", 12}}},
		{"vfio_iommu_spapr_tce_info", VFIOIOMMUSPAPRTCEInfo{}, 32, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"DMA32WindowStart", 8}, {"DMA32WindowSize", 12}, {"DDW", 16}}},
		{"vfio_eeh_pe_err", VFIOEEHPEErr{}, 24, []field{{"Type", 0}, {"Func", 4}, {"Addr", 8}, {"Mask", 16}}},
		{"vfio_eeh_pe_op", VFIOEEHPEOp{}, 40, []field{{"ArgSz", 0}, {"Flags", 4}, {"Op", 8}, {"Err", 16}}},
		{"vfio_iommu_spapr_register_memory", VFIOIOMMUSPAPRRegisterMemory{}, 24, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"VAddr", 8}, {"Size", 16}}},
		{"vfio_iommu_spapr_tce_create", VFIOIOMMUSPAPRTCECreate{}, 40, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"PageShift", 8}, {"WindowSize", 16}, {"Levels", 24}, {"StartAddr", 32}}},
		{"vfio_iommu_spapr_tce_remove", VFIOIOMMUSPAPRTCERemove{}, 16, []field{
			{"ArgSz", 0}, {"Flags", 4}, {"StartAddr", 8}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkLayout(t, c.v, c.size, c.fields...)
		})
	}
}

func TestVFIORequests(t *testing.T) {
	t.Parallel()
	checkRequests(t, []request{
		{"VFIO_GET_API_VERSION", VFIO_GET_API_VERSION, 0x3b64},
		{"VFIO_CHECK_EXTENSION", VFIO_CHECK_EXTENSION, 0x3b65},
		{"VFIO_SET_IOMMU", VFIO_SET_IOMMU, 0x3b66},
		{"VFIO_GROUP_GET_STATUS", VFIO_GROUP_GET_STATUS, 0x3b67},
		{"VFIO_GROUP_SET_CONTAINER", VFIO_GROUP_SET_CONTAINER, 0x3b68},
		{"VFIO_GROUP_UNSET_CONTAINER", VFIO_GROUP_UNSET_CONTAINER, 0x3b69},
		{"VFIO_GROUP_GET_DEVICE_FD", VFIO_GROUP_GET_DEVICE_FD, 0x3b6a},
		{"VFIO_DEVICE_GET_INFO", VFIO_DEVICE_GET_INFO, 0x3b6b},
		{"VFIO_DEVICE_GET_REGION_INFO", VFIO_DEVICE_GET_REGION_INFO, 0x3b6c},
		{"VFIO_DEVICE_GET_IRQ_INFO", VFIO_DEVICE_GET_IRQ_INFO, 0x3b6d},
		{"VFIO_DEVICE_SET_IRQS", VFIO_DEVICE_SET_IRQS, 0x3b6e},
		{"VFIO_DEVICE_RESET", VFIO_DEVICE_RESET, 0x3b6f},
		{"VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, 0x3b70},
		{"VFIO_DEVICE_PCI_HOT_RESET", VFIO_DEVICE_PCI_HOT_RESET, 0x3b71},
		{"VFIO_DEVICE_QUERY_GFX_PLANE", VFIO_DEVICE_QUERY_GFX_PLANE, 0x3b72},
		{"VFIO_DEVICE_GET_GFX_DMABUF", VFIO_DEVICE_GET_GFX_DMABUF, 0x3b73},
		{"VFIO_DEVICE_IOEVENTFD", VFIO_DEVICE_IOEVENTFD, 0x3b74},
		{"VFIO_DEVICE_FEATURE", VFIO_DEVICE_FEATURE, 0x3b75},
		{"VFIO_DEVICE_BIND_IOMMUFD", VFIO_DEVICE_BIND_IOMMUFD, 0x3b76},
		{"VFIO_DEVICE_ATTACH_IOMMUFD_PT", VFIO_DEVICE_ATTACH_IOMMUFD_PT, 0x3b77},
		{"VFIO_DEVICE_DETACH_IOMMUFD_PT", VFIO_DEVICE_DETACH_IOMMUFD_PT, 0x3b78},
		{"VFIO_MIG_GET_PRECOPY_INFO", VFIO_MIG_GET_PRECOPY_INFO, 0x3b79},
		{"VFIO_IOMMU_GET_INFO", VFIO_IOMMU_GET_INFO, 0x3b70},
		{"VFIO_IOMMU_MAP_DMA", VFIO_IOMMU_MAP_DMA, 0x3b71},
		{"VFIO_IOMMU_UNMAP_DMA", VFIO_IOMMU_UNMAP_DMA, 0x3b72},
		{"VFIO_IOMMU_ENABLE", VFIO_IOMMU_ENABLE, 0x3b73},
		{"VFIO_IOMMU_DISABLE", VFIO_IOMMU_DISABLE, 0x3b74},
		{"VFIO_IOMMU_DIRTY_PAGES", VFIO_IOMMU_DIRTY_PAGES, 0x3b75},
		{"VFIO_IOMMU_SPAPR_TCE_GET_INFO", VFIO_IOMMU_SPAPR_TCE_GET_INFO, 0x3b70},
		{"VFIO_IOMMU_SPAPR_REGISTER_MEMORY", VFIO_IOMMU_SPAPR_REGISTER_MEMORY, 0x3b75},
		{"VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY", VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, 0x3b76},
		{"VFIO_IOMMU_SPAPR_TCE_CREATE", VFIO_IOMMU_SPAPR_TCE_CREATE, 0x3b77},
		{"VFIO_IOMMU_SPAPR_TCE_REMOVE", VFIO_IOMMU_SPAPR_TCE_REMOVE, 0x3b78},
		{"VFIO_EEH_PE_OP", VFIO_EEH_PE_OP, 0x3b79},
	})
}
