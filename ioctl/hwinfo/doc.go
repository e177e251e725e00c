// Package hwinfo decodes what an IOMMU says about itself: the payload of
// iommufd's IOMMU_GET_HW_INFO and the same registers as sysfs prints them.
//
// VTD holds Intel VT-d's Capability and Extended Capability registers
// (struct iommu_hw_info_vtd, or /sys/class/iommu/dmarN/intel-iommu/{cap,ecap}).
// SMMUv3 holds an Arm SMMUv3's ID registers (struct iommu_hw_info_arm_smmuv3).
// AMDVi holds an AMD IOMMU's capability header and Extended Feature
// Registers (/sys/class/iommu/ivhdN/amd-iommu/{cap,features}, or struct
// iommu_hw_info_amd).
// Each register is a typed integer whose methods are the fields the
// specification defines, named as the specification names them, so a value
// can be checked against the spec's register diagram bit by bit.
//
// Sources, cited again at each definition:
//   - Intel Virtualization Technology for Directed I/O Architecture
//     Specification rev 4.x, 11.4.2 (Capability) and 11.4.3 (Extended
//     Capability), and the cap_* / ecap_* macros of the kernel's
//     drivers/iommu/intel/iommu.h. The kernel and this package keep the
//     rev 3 names (SLLPS, FL1GP, SLTS, FLTS, ...) where rev 4 says
//     "first-stage/second-stage" (SSLPS, FS1GP, SSTS, FSTS, ...).
//   - Arm System MMU Architecture Specification, SMMU architecture
//     version 3 (IHI 0070, issue G.b), 6.3.1 to 6.3.8, and the IDR*_ masks of
//     drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h.
//   - AMD I/O Virtualization Technology (IOMMU) Specification (48882),
//     MMIO 0030h and 01A0h, named as drivers/iommu/amd/amd_iommu_types.h
//     names them (FEATURE_*); bits the kernel leaves unnamed print as bitN.
//
// The package is pure Go and decodes on any OS; it never touches a device.
package hwinfo
