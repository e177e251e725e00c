//go:build uapicheck

package cref

// linux/vfio.h. uapi's TestVFIOTablesComplete fails when the header has a
// struct, request or constant that is missing here.

/*
#include <stddef.h>
#include <linux/vfio.h>

// One enum constant per size and offset: cgo reads enum values, and a
// static const would not link.
#define VFIO_SZ(s) enum { vfio_size__##s = sizeof(struct s) };
#define VFIO_OFF(s, f) enum { vfio_off__##s##__##f = offsetof(struct s, f) };

VFIO_SZ(vfio_info_cap_header)
VFIO_OFF(vfio_info_cap_header, id)
VFIO_OFF(vfio_info_cap_header, version)
VFIO_OFF(vfio_info_cap_header, next)
VFIO_SZ(vfio_group_status)
VFIO_OFF(vfio_group_status, argsz)
VFIO_OFF(vfio_group_status, flags)
VFIO_SZ(vfio_device_info)
VFIO_OFF(vfio_device_info, argsz)
VFIO_OFF(vfio_device_info, flags)
VFIO_OFF(vfio_device_info, num_regions)
VFIO_OFF(vfio_device_info, num_irqs)
VFIO_OFF(vfio_device_info, cap_offset)
VFIO_OFF(vfio_device_info, pad)
VFIO_SZ(vfio_device_info_cap_pci_atomic_comp)
VFIO_OFF(vfio_device_info_cap_pci_atomic_comp, header)
VFIO_OFF(vfio_device_info_cap_pci_atomic_comp, flags)
VFIO_OFF(vfio_device_info_cap_pci_atomic_comp, reserved)
VFIO_SZ(vfio_region_info)
VFIO_OFF(vfio_region_info, argsz)
VFIO_OFF(vfio_region_info, flags)
VFIO_OFF(vfio_region_info, index)
VFIO_OFF(vfio_region_info, cap_offset)
VFIO_OFF(vfio_region_info, size)
VFIO_OFF(vfio_region_info, offset)
VFIO_SZ(vfio_region_sparse_mmap_area)
VFIO_OFF(vfio_region_sparse_mmap_area, offset)
VFIO_OFF(vfio_region_sparse_mmap_area, size)
VFIO_SZ(vfio_region_info_cap_sparse_mmap)
VFIO_OFF(vfio_region_info_cap_sparse_mmap, header)
VFIO_OFF(vfio_region_info_cap_sparse_mmap, nr_areas)
VFIO_OFF(vfio_region_info_cap_sparse_mmap, reserved)
VFIO_OFF(vfio_region_info_cap_sparse_mmap, areas)
VFIO_SZ(vfio_region_info_cap_type)
VFIO_OFF(vfio_region_info_cap_type, header)
VFIO_OFF(vfio_region_info_cap_type, type)
VFIO_OFF(vfio_region_info_cap_type, subtype)
VFIO_SZ(vfio_region_gfx_edid)
VFIO_OFF(vfio_region_gfx_edid, edid_offset)
VFIO_OFF(vfio_region_gfx_edid, edid_max_size)
VFIO_OFF(vfio_region_gfx_edid, edid_size)
VFIO_OFF(vfio_region_gfx_edid, max_xres)
VFIO_OFF(vfio_region_gfx_edid, max_yres)
VFIO_OFF(vfio_region_gfx_edid, link_state)
VFIO_SZ(vfio_device_migration_info)
VFIO_OFF(vfio_device_migration_info, device_state)
VFIO_OFF(vfio_device_migration_info, reserved)
VFIO_OFF(vfio_device_migration_info, pending_bytes)
VFIO_OFF(vfio_device_migration_info, data_offset)
VFIO_OFF(vfio_device_migration_info, data_size)
VFIO_SZ(vfio_region_info_cap_nvlink2_ssatgt)
VFIO_OFF(vfio_region_info_cap_nvlink2_ssatgt, header)
VFIO_OFF(vfio_region_info_cap_nvlink2_ssatgt, tgt)
VFIO_SZ(vfio_region_info_cap_nvlink2_lnkspd)
VFIO_OFF(vfio_region_info_cap_nvlink2_lnkspd, header)
VFIO_OFF(vfio_region_info_cap_nvlink2_lnkspd, link_speed)
VFIO_OFF(vfio_region_info_cap_nvlink2_lnkspd, __pad)
VFIO_SZ(vfio_irq_info)
VFIO_OFF(vfio_irq_info, argsz)
VFIO_OFF(vfio_irq_info, flags)
VFIO_OFF(vfio_irq_info, index)
VFIO_OFF(vfio_irq_info, count)
VFIO_SZ(vfio_irq_set)
VFIO_OFF(vfio_irq_set, argsz)
VFIO_OFF(vfio_irq_set, flags)
VFIO_OFF(vfio_irq_set, index)
VFIO_OFF(vfio_irq_set, start)
VFIO_OFF(vfio_irq_set, count)
VFIO_OFF(vfio_irq_set, data)
VFIO_SZ(vfio_pci_dependent_device)
VFIO_OFF(vfio_pci_dependent_device, group_id)
VFIO_OFF(vfio_pci_dependent_device, devid)
VFIO_OFF(vfio_pci_dependent_device, segment)
VFIO_OFF(vfio_pci_dependent_device, bus)
VFIO_OFF(vfio_pci_dependent_device, devfn)
VFIO_SZ(vfio_pci_hot_reset_info)
VFIO_OFF(vfio_pci_hot_reset_info, argsz)
VFIO_OFF(vfio_pci_hot_reset_info, flags)
VFIO_OFF(vfio_pci_hot_reset_info, count)
VFIO_OFF(vfio_pci_hot_reset_info, devices)
VFIO_SZ(vfio_pci_hot_reset)
VFIO_OFF(vfio_pci_hot_reset, argsz)
VFIO_OFF(vfio_pci_hot_reset, flags)
VFIO_OFF(vfio_pci_hot_reset, count)
VFIO_OFF(vfio_pci_hot_reset, group_fds)
VFIO_SZ(vfio_device_gfx_plane_info)
VFIO_OFF(vfio_device_gfx_plane_info, argsz)
VFIO_OFF(vfio_device_gfx_plane_info, flags)
VFIO_OFF(vfio_device_gfx_plane_info, drm_plane_type)
VFIO_OFF(vfio_device_gfx_plane_info, drm_format)
VFIO_OFF(vfio_device_gfx_plane_info, drm_format_mod)
VFIO_OFF(vfio_device_gfx_plane_info, width)
VFIO_OFF(vfio_device_gfx_plane_info, height)
VFIO_OFF(vfio_device_gfx_plane_info, stride)
VFIO_OFF(vfio_device_gfx_plane_info, size)
VFIO_OFF(vfio_device_gfx_plane_info, x_pos)
VFIO_OFF(vfio_device_gfx_plane_info, y_pos)
VFIO_OFF(vfio_device_gfx_plane_info, x_hot)
VFIO_OFF(vfio_device_gfx_plane_info, y_hot)
VFIO_OFF(vfio_device_gfx_plane_info, region_index)
VFIO_OFF(vfio_device_gfx_plane_info, dmabuf_id)
VFIO_OFF(vfio_device_gfx_plane_info, reserved)
VFIO_SZ(vfio_device_ioeventfd)
VFIO_OFF(vfio_device_ioeventfd, argsz)
VFIO_OFF(vfio_device_ioeventfd, flags)
VFIO_OFF(vfio_device_ioeventfd, offset)
VFIO_OFF(vfio_device_ioeventfd, data)
VFIO_OFF(vfio_device_ioeventfd, fd)
VFIO_OFF(vfio_device_ioeventfd, reserved)
VFIO_SZ(vfio_device_feature)
VFIO_OFF(vfio_device_feature, argsz)
VFIO_OFF(vfio_device_feature, flags)
VFIO_OFF(vfio_device_feature, data)
VFIO_SZ(vfio_device_bind_iommufd)
VFIO_OFF(vfio_device_bind_iommufd, argsz)
VFIO_OFF(vfio_device_bind_iommufd, flags)
VFIO_OFF(vfio_device_bind_iommufd, iommufd)
VFIO_OFF(vfio_device_bind_iommufd, out_devid)
VFIO_SZ(vfio_device_attach_iommufd_pt)
VFIO_OFF(vfio_device_attach_iommufd_pt, argsz)
VFIO_OFF(vfio_device_attach_iommufd_pt, flags)
VFIO_OFF(vfio_device_attach_iommufd_pt, pt_id)
VFIO_SZ(vfio_device_detach_iommufd_pt)
VFIO_OFF(vfio_device_detach_iommufd_pt, argsz)
VFIO_OFF(vfio_device_detach_iommufd_pt, flags)
VFIO_SZ(vfio_device_feature_migration)
VFIO_OFF(vfio_device_feature_migration, flags)
VFIO_SZ(vfio_device_feature_mig_state)
VFIO_OFF(vfio_device_feature_mig_state, device_state)
VFIO_OFF(vfio_device_feature_mig_state, data_fd)
VFIO_SZ(vfio_precopy_info)
VFIO_OFF(vfio_precopy_info, argsz)
VFIO_OFF(vfio_precopy_info, flags)
VFIO_OFF(vfio_precopy_info, initial_bytes)
VFIO_OFF(vfio_precopy_info, dirty_bytes)
VFIO_SZ(vfio_device_low_power_entry_with_wakeup)
VFIO_OFF(vfio_device_low_power_entry_with_wakeup, wakeup_eventfd)
VFIO_OFF(vfio_device_low_power_entry_with_wakeup, reserved)
VFIO_SZ(vfio_device_feature_dma_logging_control)
VFIO_OFF(vfio_device_feature_dma_logging_control, page_size)
VFIO_OFF(vfio_device_feature_dma_logging_control, num_ranges)
VFIO_OFF(vfio_device_feature_dma_logging_control, __reserved)
VFIO_OFF(vfio_device_feature_dma_logging_control, ranges)
VFIO_SZ(vfio_device_feature_dma_logging_range)
VFIO_OFF(vfio_device_feature_dma_logging_range, iova)
VFIO_OFF(vfio_device_feature_dma_logging_range, length)
VFIO_SZ(vfio_device_feature_dma_logging_report)
VFIO_OFF(vfio_device_feature_dma_logging_report, iova)
VFIO_OFF(vfio_device_feature_dma_logging_report, length)
VFIO_OFF(vfio_device_feature_dma_logging_report, page_size)
VFIO_OFF(vfio_device_feature_dma_logging_report, bitmap)
VFIO_SZ(vfio_device_feature_mig_data_size)
VFIO_OFF(vfio_device_feature_mig_data_size, stop_copy_length)
VFIO_SZ(vfio_device_feature_bus_master)
VFIO_OFF(vfio_device_feature_bus_master, op)
VFIO_SZ(vfio_iommu_type1_info)
VFIO_OFF(vfio_iommu_type1_info, argsz)
VFIO_OFF(vfio_iommu_type1_info, flags)
VFIO_OFF(vfio_iommu_type1_info, iova_pgsizes)
VFIO_OFF(vfio_iommu_type1_info, cap_offset)
VFIO_OFF(vfio_iommu_type1_info, pad)
VFIO_SZ(vfio_iova_range)
VFIO_OFF(vfio_iova_range, start)
VFIO_OFF(vfio_iova_range, end)
VFIO_SZ(vfio_iommu_type1_info_cap_iova_range)
VFIO_OFF(vfio_iommu_type1_info_cap_iova_range, header)
VFIO_OFF(vfio_iommu_type1_info_cap_iova_range, nr_iovas)
VFIO_OFF(vfio_iommu_type1_info_cap_iova_range, reserved)
VFIO_OFF(vfio_iommu_type1_info_cap_iova_range, iova_ranges)
VFIO_SZ(vfio_iommu_type1_info_cap_migration)
VFIO_OFF(vfio_iommu_type1_info_cap_migration, header)
VFIO_OFF(vfio_iommu_type1_info_cap_migration, flags)
VFIO_OFF(vfio_iommu_type1_info_cap_migration, pgsize_bitmap)
VFIO_OFF(vfio_iommu_type1_info_cap_migration, max_dirty_bitmap_size)
VFIO_SZ(vfio_iommu_type1_info_dma_avail)
VFIO_OFF(vfio_iommu_type1_info_dma_avail, header)
VFIO_OFF(vfio_iommu_type1_info_dma_avail, avail)
VFIO_SZ(vfio_iommu_type1_dma_map)
VFIO_OFF(vfio_iommu_type1_dma_map, argsz)
VFIO_OFF(vfio_iommu_type1_dma_map, flags)
VFIO_OFF(vfio_iommu_type1_dma_map, vaddr)
VFIO_OFF(vfio_iommu_type1_dma_map, iova)
VFIO_OFF(vfio_iommu_type1_dma_map, size)
VFIO_SZ(vfio_bitmap)
VFIO_OFF(vfio_bitmap, pgsize)
VFIO_OFF(vfio_bitmap, size)
VFIO_OFF(vfio_bitmap, data)
VFIO_SZ(vfio_iommu_type1_dma_unmap)
VFIO_OFF(vfio_iommu_type1_dma_unmap, argsz)
VFIO_OFF(vfio_iommu_type1_dma_unmap, flags)
VFIO_OFF(vfio_iommu_type1_dma_unmap, iova)
VFIO_OFF(vfio_iommu_type1_dma_unmap, size)
VFIO_OFF(vfio_iommu_type1_dma_unmap, data)
VFIO_SZ(vfio_iommu_type1_dirty_bitmap)
VFIO_OFF(vfio_iommu_type1_dirty_bitmap, argsz)
VFIO_OFF(vfio_iommu_type1_dirty_bitmap, flags)
VFIO_OFF(vfio_iommu_type1_dirty_bitmap, data)
VFIO_SZ(vfio_iommu_type1_dirty_bitmap_get)
VFIO_OFF(vfio_iommu_type1_dirty_bitmap_get, iova)
VFIO_OFF(vfio_iommu_type1_dirty_bitmap_get, size)
VFIO_OFF(vfio_iommu_type1_dirty_bitmap_get, bitmap)
VFIO_SZ(vfio_iommu_spapr_tce_ddw_info)
VFIO_OFF(vfio_iommu_spapr_tce_ddw_info, pgsizes)
VFIO_OFF(vfio_iommu_spapr_tce_ddw_info, max_dynamic_windows_supported)
VFIO_OFF(vfio_iommu_spapr_tce_ddw_info, levels)
VFIO_SZ(vfio_iommu_spapr_tce_info)
VFIO_OFF(vfio_iommu_spapr_tce_info, argsz)
VFIO_OFF(vfio_iommu_spapr_tce_info, flags)
VFIO_OFF(vfio_iommu_spapr_tce_info, dma32_window_start)
VFIO_OFF(vfio_iommu_spapr_tce_info, dma32_window_size)
VFIO_OFF(vfio_iommu_spapr_tce_info, ddw)
VFIO_SZ(vfio_eeh_pe_err)
VFIO_OFF(vfio_eeh_pe_err, type)
VFIO_OFF(vfio_eeh_pe_err, func)
VFIO_OFF(vfio_eeh_pe_err, addr)
VFIO_OFF(vfio_eeh_pe_err, mask)
VFIO_SZ(vfio_eeh_pe_op)
VFIO_OFF(vfio_eeh_pe_op, argsz)
VFIO_OFF(vfio_eeh_pe_op, flags)
VFIO_OFF(vfio_eeh_pe_op, op)
VFIO_OFF(vfio_eeh_pe_op, err)
VFIO_SZ(vfio_iommu_spapr_register_memory)
VFIO_OFF(vfio_iommu_spapr_register_memory, argsz)
VFIO_OFF(vfio_iommu_spapr_register_memory, flags)
VFIO_OFF(vfio_iommu_spapr_register_memory, vaddr)
VFIO_OFF(vfio_iommu_spapr_register_memory, size)
VFIO_SZ(vfio_iommu_spapr_tce_create)
VFIO_OFF(vfio_iommu_spapr_tce_create, argsz)
VFIO_OFF(vfio_iommu_spapr_tce_create, flags)
VFIO_OFF(vfio_iommu_spapr_tce_create, page_shift)
VFIO_OFF(vfio_iommu_spapr_tce_create, __resv1)
VFIO_OFF(vfio_iommu_spapr_tce_create, window_size)
VFIO_OFF(vfio_iommu_spapr_tce_create, levels)
VFIO_OFF(vfio_iommu_spapr_tce_create, __resv2)
VFIO_OFF(vfio_iommu_spapr_tce_create, start_addr)
VFIO_SZ(vfio_iommu_spapr_tce_remove)
VFIO_OFF(vfio_iommu_spapr_tce_remove, argsz)
VFIO_OFF(vfio_iommu_spapr_tce_remove, flags)
VFIO_OFF(vfio_iommu_spapr_tce_remove, start_addr)
*/
import "C"

// VFIOLayouts returns every struct of linux/vfio.h as compiled: size and
// the offset of each field, flexible arrays and union members included.
func VFIOLayouts() []Layout {
	return []Layout{
		{Name: "vfio_info_cap_header", Size: C.vfio_size__vfio_info_cap_header, Fields: map[string]uintptr{
			"id":      C.vfio_off__vfio_info_cap_header__id,
			"version": C.vfio_off__vfio_info_cap_header__version,
			"next":    C.vfio_off__vfio_info_cap_header__next,
		}},
		{Name: "vfio_group_status", Size: C.vfio_size__vfio_group_status, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_group_status__argsz,
			"flags": C.vfio_off__vfio_group_status__flags,
		}},
		{Name: "vfio_device_info", Size: C.vfio_size__vfio_device_info, Fields: map[string]uintptr{
			"argsz":       C.vfio_off__vfio_device_info__argsz,
			"flags":       C.vfio_off__vfio_device_info__flags,
			"num_regions": C.vfio_off__vfio_device_info__num_regions,
			"num_irqs":    C.vfio_off__vfio_device_info__num_irqs,
			"cap_offset":  C.vfio_off__vfio_device_info__cap_offset,
			"pad":         C.vfio_off__vfio_device_info__pad,
		}},
		{Name: "vfio_device_info_cap_pci_atomic_comp", Size: C.vfio_size__vfio_device_info_cap_pci_atomic_comp, Fields: map[string]uintptr{
			"header":   C.vfio_off__vfio_device_info_cap_pci_atomic_comp__header,
			"flags":    C.vfio_off__vfio_device_info_cap_pci_atomic_comp__flags,
			"reserved": C.vfio_off__vfio_device_info_cap_pci_atomic_comp__reserved,
		}},
		{Name: "vfio_region_info", Size: C.vfio_size__vfio_region_info, Fields: map[string]uintptr{
			"argsz":      C.vfio_off__vfio_region_info__argsz,
			"flags":      C.vfio_off__vfio_region_info__flags,
			"index":      C.vfio_off__vfio_region_info__index,
			"cap_offset": C.vfio_off__vfio_region_info__cap_offset,
			"size":       C.vfio_off__vfio_region_info__size,
			"offset":     C.vfio_off__vfio_region_info__offset,
		}},
		{Name: "vfio_region_sparse_mmap_area", Size: C.vfio_size__vfio_region_sparse_mmap_area, Fields: map[string]uintptr{
			"offset": C.vfio_off__vfio_region_sparse_mmap_area__offset,
			"size":   C.vfio_off__vfio_region_sparse_mmap_area__size,
		}},
		{Name: "vfio_region_info_cap_sparse_mmap", Size: C.vfio_size__vfio_region_info_cap_sparse_mmap, Fields: map[string]uintptr{
			"header":   C.vfio_off__vfio_region_info_cap_sparse_mmap__header,
			"nr_areas": C.vfio_off__vfio_region_info_cap_sparse_mmap__nr_areas,
			"reserved": C.vfio_off__vfio_region_info_cap_sparse_mmap__reserved,
			"areas":    C.vfio_off__vfio_region_info_cap_sparse_mmap__areas,
		}},
		{Name: "vfio_region_info_cap_type", Size: C.vfio_size__vfio_region_info_cap_type, Fields: map[string]uintptr{
			"header":  C.vfio_off__vfio_region_info_cap_type__header,
			"type":    C.vfio_off__vfio_region_info_cap_type__type,
			"subtype": C.vfio_off__vfio_region_info_cap_type__subtype,
		}},
		{Name: "vfio_region_gfx_edid", Size: C.vfio_size__vfio_region_gfx_edid, Fields: map[string]uintptr{
			"edid_offset":   C.vfio_off__vfio_region_gfx_edid__edid_offset,
			"edid_max_size": C.vfio_off__vfio_region_gfx_edid__edid_max_size,
			"edid_size":     C.vfio_off__vfio_region_gfx_edid__edid_size,
			"max_xres":      C.vfio_off__vfio_region_gfx_edid__max_xres,
			"max_yres":      C.vfio_off__vfio_region_gfx_edid__max_yres,
			"link_state":    C.vfio_off__vfio_region_gfx_edid__link_state,
		}},
		{Name: "vfio_device_migration_info", Size: C.vfio_size__vfio_device_migration_info, Fields: map[string]uintptr{
			"device_state":  C.vfio_off__vfio_device_migration_info__device_state,
			"reserved":      C.vfio_off__vfio_device_migration_info__reserved,
			"pending_bytes": C.vfio_off__vfio_device_migration_info__pending_bytes,
			"data_offset":   C.vfio_off__vfio_device_migration_info__data_offset,
			"data_size":     C.vfio_off__vfio_device_migration_info__data_size,
		}},
		{Name: "vfio_region_info_cap_nvlink2_ssatgt", Size: C.vfio_size__vfio_region_info_cap_nvlink2_ssatgt, Fields: map[string]uintptr{
			"header": C.vfio_off__vfio_region_info_cap_nvlink2_ssatgt__header,
			"tgt":    C.vfio_off__vfio_region_info_cap_nvlink2_ssatgt__tgt,
		}},
		{Name: "vfio_region_info_cap_nvlink2_lnkspd", Size: C.vfio_size__vfio_region_info_cap_nvlink2_lnkspd, Fields: map[string]uintptr{
			"header":     C.vfio_off__vfio_region_info_cap_nvlink2_lnkspd__header,
			"link_speed": C.vfio_off__vfio_region_info_cap_nvlink2_lnkspd__link_speed,
			"__pad":      C.vfio_off__vfio_region_info_cap_nvlink2_lnkspd____pad,
		}},
		{Name: "vfio_irq_info", Size: C.vfio_size__vfio_irq_info, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_irq_info__argsz,
			"flags": C.vfio_off__vfio_irq_info__flags,
			"index": C.vfio_off__vfio_irq_info__index,
			"count": C.vfio_off__vfio_irq_info__count,
		}},
		{Name: "vfio_irq_set", Size: C.vfio_size__vfio_irq_set, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_irq_set__argsz,
			"flags": C.vfio_off__vfio_irq_set__flags,
			"index": C.vfio_off__vfio_irq_set__index,
			"start": C.vfio_off__vfio_irq_set__start,
			"count": C.vfio_off__vfio_irq_set__count,
			"data":  C.vfio_off__vfio_irq_set__data,
		}},
		{Name: "vfio_pci_dependent_device", Size: C.vfio_size__vfio_pci_dependent_device, Fields: map[string]uintptr{
			"group_id": C.vfio_off__vfio_pci_dependent_device__group_id,
			"devid":    C.vfio_off__vfio_pci_dependent_device__devid,
			"segment":  C.vfio_off__vfio_pci_dependent_device__segment,
			"bus":      C.vfio_off__vfio_pci_dependent_device__bus,
			"devfn":    C.vfio_off__vfio_pci_dependent_device__devfn,
		}},
		{Name: "vfio_pci_hot_reset_info", Size: C.vfio_size__vfio_pci_hot_reset_info, Fields: map[string]uintptr{
			"argsz":   C.vfio_off__vfio_pci_hot_reset_info__argsz,
			"flags":   C.vfio_off__vfio_pci_hot_reset_info__flags,
			"count":   C.vfio_off__vfio_pci_hot_reset_info__count,
			"devices": C.vfio_off__vfio_pci_hot_reset_info__devices,
		}},
		{Name: "vfio_pci_hot_reset", Size: C.vfio_size__vfio_pci_hot_reset, Fields: map[string]uintptr{
			"argsz":     C.vfio_off__vfio_pci_hot_reset__argsz,
			"flags":     C.vfio_off__vfio_pci_hot_reset__flags,
			"count":     C.vfio_off__vfio_pci_hot_reset__count,
			"group_fds": C.vfio_off__vfio_pci_hot_reset__group_fds,
		}},
		{Name: "vfio_device_gfx_plane_info", Size: C.vfio_size__vfio_device_gfx_plane_info, Fields: map[string]uintptr{
			"argsz":          C.vfio_off__vfio_device_gfx_plane_info__argsz,
			"flags":          C.vfio_off__vfio_device_gfx_plane_info__flags,
			"drm_plane_type": C.vfio_off__vfio_device_gfx_plane_info__drm_plane_type,
			"drm_format":     C.vfio_off__vfio_device_gfx_plane_info__drm_format,
			"drm_format_mod": C.vfio_off__vfio_device_gfx_plane_info__drm_format_mod,
			"width":          C.vfio_off__vfio_device_gfx_plane_info__width,
			"height":         C.vfio_off__vfio_device_gfx_plane_info__height,
			"stride":         C.vfio_off__vfio_device_gfx_plane_info__stride,
			"size":           C.vfio_off__vfio_device_gfx_plane_info__size,
			"x_pos":          C.vfio_off__vfio_device_gfx_plane_info__x_pos,
			"y_pos":          C.vfio_off__vfio_device_gfx_plane_info__y_pos,
			"x_hot":          C.vfio_off__vfio_device_gfx_plane_info__x_hot,
			"y_hot":          C.vfio_off__vfio_device_gfx_plane_info__y_hot,
			"region_index":   C.vfio_off__vfio_device_gfx_plane_info__region_index,
			"dmabuf_id":      C.vfio_off__vfio_device_gfx_plane_info__dmabuf_id,
			"reserved":       C.vfio_off__vfio_device_gfx_plane_info__reserved,
		}},
		{Name: "vfio_device_ioeventfd", Size: C.vfio_size__vfio_device_ioeventfd, Fields: map[string]uintptr{
			"argsz":    C.vfio_off__vfio_device_ioeventfd__argsz,
			"flags":    C.vfio_off__vfio_device_ioeventfd__flags,
			"offset":   C.vfio_off__vfio_device_ioeventfd__offset,
			"data":     C.vfio_off__vfio_device_ioeventfd__data,
			"fd":       C.vfio_off__vfio_device_ioeventfd__fd,
			"reserved": C.vfio_off__vfio_device_ioeventfd__reserved,
		}},
		{Name: "vfio_device_feature", Size: C.vfio_size__vfio_device_feature, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_device_feature__argsz,
			"flags": C.vfio_off__vfio_device_feature__flags,
			"data":  C.vfio_off__vfio_device_feature__data,
		}},
		{Name: "vfio_device_bind_iommufd", Size: C.vfio_size__vfio_device_bind_iommufd, Fields: map[string]uintptr{
			"argsz":     C.vfio_off__vfio_device_bind_iommufd__argsz,
			"flags":     C.vfio_off__vfio_device_bind_iommufd__flags,
			"iommufd":   C.vfio_off__vfio_device_bind_iommufd__iommufd,
			"out_devid": C.vfio_off__vfio_device_bind_iommufd__out_devid,
		}},
		{Name: "vfio_device_attach_iommufd_pt", Size: C.vfio_size__vfio_device_attach_iommufd_pt, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_device_attach_iommufd_pt__argsz,
			"flags": C.vfio_off__vfio_device_attach_iommufd_pt__flags,
			"pt_id": C.vfio_off__vfio_device_attach_iommufd_pt__pt_id,
		}},
		{Name: "vfio_device_detach_iommufd_pt", Size: C.vfio_size__vfio_device_detach_iommufd_pt, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_device_detach_iommufd_pt__argsz,
			"flags": C.vfio_off__vfio_device_detach_iommufd_pt__flags,
		}},
		{Name: "vfio_device_feature_migration", Size: C.vfio_size__vfio_device_feature_migration, Fields: map[string]uintptr{
			"flags": C.vfio_off__vfio_device_feature_migration__flags,
		}},
		{Name: "vfio_device_feature_mig_state", Size: C.vfio_size__vfio_device_feature_mig_state, Fields: map[string]uintptr{
			"device_state": C.vfio_off__vfio_device_feature_mig_state__device_state,
			"data_fd":      C.vfio_off__vfio_device_feature_mig_state__data_fd,
		}},
		{Name: "vfio_precopy_info", Size: C.vfio_size__vfio_precopy_info, Fields: map[string]uintptr{
			"argsz":         C.vfio_off__vfio_precopy_info__argsz,
			"flags":         C.vfio_off__vfio_precopy_info__flags,
			"initial_bytes": C.vfio_off__vfio_precopy_info__initial_bytes,
			"dirty_bytes":   C.vfio_off__vfio_precopy_info__dirty_bytes,
		}},
		{Name: "vfio_device_low_power_entry_with_wakeup", Size: C.vfio_size__vfio_device_low_power_entry_with_wakeup, Fields: map[string]uintptr{
			"wakeup_eventfd": C.vfio_off__vfio_device_low_power_entry_with_wakeup__wakeup_eventfd,
			"reserved":       C.vfio_off__vfio_device_low_power_entry_with_wakeup__reserved,
		}},
		{Name: "vfio_device_feature_dma_logging_control", Size: C.vfio_size__vfio_device_feature_dma_logging_control, Fields: map[string]uintptr{
			"page_size":  C.vfio_off__vfio_device_feature_dma_logging_control__page_size,
			"num_ranges": C.vfio_off__vfio_device_feature_dma_logging_control__num_ranges,
			"__reserved": C.vfio_off__vfio_device_feature_dma_logging_control____reserved,
			"ranges":     C.vfio_off__vfio_device_feature_dma_logging_control__ranges,
		}},
		{Name: "vfio_device_feature_dma_logging_range", Size: C.vfio_size__vfio_device_feature_dma_logging_range, Fields: map[string]uintptr{
			"iova":   C.vfio_off__vfio_device_feature_dma_logging_range__iova,
			"length": C.vfio_off__vfio_device_feature_dma_logging_range__length,
		}},
		{Name: "vfio_device_feature_dma_logging_report", Size: C.vfio_size__vfio_device_feature_dma_logging_report, Fields: map[string]uintptr{
			"iova":      C.vfio_off__vfio_device_feature_dma_logging_report__iova,
			"length":    C.vfio_off__vfio_device_feature_dma_logging_report__length,
			"page_size": C.vfio_off__vfio_device_feature_dma_logging_report__page_size,
			"bitmap":    C.vfio_off__vfio_device_feature_dma_logging_report__bitmap,
		}},
		{Name: "vfio_device_feature_mig_data_size", Size: C.vfio_size__vfio_device_feature_mig_data_size, Fields: map[string]uintptr{
			"stop_copy_length": C.vfio_off__vfio_device_feature_mig_data_size__stop_copy_length,
		}},
		{Name: "vfio_device_feature_bus_master", Size: C.vfio_size__vfio_device_feature_bus_master, Fields: map[string]uintptr{
			"op": C.vfio_off__vfio_device_feature_bus_master__op,
		}},
		{Name: "vfio_iommu_type1_info", Size: C.vfio_size__vfio_iommu_type1_info, Fields: map[string]uintptr{
			"argsz":        C.vfio_off__vfio_iommu_type1_info__argsz,
			"flags":        C.vfio_off__vfio_iommu_type1_info__flags,
			"iova_pgsizes": C.vfio_off__vfio_iommu_type1_info__iova_pgsizes,
			"cap_offset":   C.vfio_off__vfio_iommu_type1_info__cap_offset,
			"pad":          C.vfio_off__vfio_iommu_type1_info__pad,
		}},
		{Name: "vfio_iova_range", Size: C.vfio_size__vfio_iova_range, Fields: map[string]uintptr{
			"start": C.vfio_off__vfio_iova_range__start,
			"end":   C.vfio_off__vfio_iova_range__end,
		}},
		{Name: "vfio_iommu_type1_info_cap_iova_range", Size: C.vfio_size__vfio_iommu_type1_info_cap_iova_range, Fields: map[string]uintptr{
			"header":      C.vfio_off__vfio_iommu_type1_info_cap_iova_range__header,
			"nr_iovas":    C.vfio_off__vfio_iommu_type1_info_cap_iova_range__nr_iovas,
			"reserved":    C.vfio_off__vfio_iommu_type1_info_cap_iova_range__reserved,
			"iova_ranges": C.vfio_off__vfio_iommu_type1_info_cap_iova_range__iova_ranges,
		}},
		{Name: "vfio_iommu_type1_info_cap_migration", Size: C.vfio_size__vfio_iommu_type1_info_cap_migration, Fields: map[string]uintptr{
			"header":                C.vfio_off__vfio_iommu_type1_info_cap_migration__header,
			"flags":                 C.vfio_off__vfio_iommu_type1_info_cap_migration__flags,
			"pgsize_bitmap":         C.vfio_off__vfio_iommu_type1_info_cap_migration__pgsize_bitmap,
			"max_dirty_bitmap_size": C.vfio_off__vfio_iommu_type1_info_cap_migration__max_dirty_bitmap_size,
		}},
		{Name: "vfio_iommu_type1_info_dma_avail", Size: C.vfio_size__vfio_iommu_type1_info_dma_avail, Fields: map[string]uintptr{
			"header": C.vfio_off__vfio_iommu_type1_info_dma_avail__header,
			"avail":  C.vfio_off__vfio_iommu_type1_info_dma_avail__avail,
		}},
		{Name: "vfio_iommu_type1_dma_map", Size: C.vfio_size__vfio_iommu_type1_dma_map, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_iommu_type1_dma_map__argsz,
			"flags": C.vfio_off__vfio_iommu_type1_dma_map__flags,
			"vaddr": C.vfio_off__vfio_iommu_type1_dma_map__vaddr,
			"iova":  C.vfio_off__vfio_iommu_type1_dma_map__iova,
			"size":  C.vfio_off__vfio_iommu_type1_dma_map__size,
		}},
		{Name: "vfio_bitmap", Size: C.vfio_size__vfio_bitmap, Fields: map[string]uintptr{
			"pgsize": C.vfio_off__vfio_bitmap__pgsize,
			"size":   C.vfio_off__vfio_bitmap__size,
			"data":   C.vfio_off__vfio_bitmap__data,
		}},
		{Name: "vfio_iommu_type1_dma_unmap", Size: C.vfio_size__vfio_iommu_type1_dma_unmap, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_iommu_type1_dma_unmap__argsz,
			"flags": C.vfio_off__vfio_iommu_type1_dma_unmap__flags,
			"iova":  C.vfio_off__vfio_iommu_type1_dma_unmap__iova,
			"size":  C.vfio_off__vfio_iommu_type1_dma_unmap__size,
			"data":  C.vfio_off__vfio_iommu_type1_dma_unmap__data,
		}},
		{Name: "vfio_iommu_type1_dirty_bitmap", Size: C.vfio_size__vfio_iommu_type1_dirty_bitmap, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_iommu_type1_dirty_bitmap__argsz,
			"flags": C.vfio_off__vfio_iommu_type1_dirty_bitmap__flags,
			"data":  C.vfio_off__vfio_iommu_type1_dirty_bitmap__data,
		}},
		{Name: "vfio_iommu_type1_dirty_bitmap_get", Size: C.vfio_size__vfio_iommu_type1_dirty_bitmap_get, Fields: map[string]uintptr{
			"iova":   C.vfio_off__vfio_iommu_type1_dirty_bitmap_get__iova,
			"size":   C.vfio_off__vfio_iommu_type1_dirty_bitmap_get__size,
			"bitmap": C.vfio_off__vfio_iommu_type1_dirty_bitmap_get__bitmap,
		}},
		{Name: "vfio_iommu_spapr_tce_ddw_info", Size: C.vfio_size__vfio_iommu_spapr_tce_ddw_info, Fields: map[string]uintptr{
			"pgsizes":                       C.vfio_off__vfio_iommu_spapr_tce_ddw_info__pgsizes,
			"max_dynamic_windows_supported": C.vfio_off__vfio_iommu_spapr_tce_ddw_info__max_dynamic_windows_supported,
			"levels":                        C.vfio_off__vfio_iommu_spapr_tce_ddw_info__levels,
		}},
		{Name: "vfio_iommu_spapr_tce_info", Size: C.vfio_size__vfio_iommu_spapr_tce_info, Fields: map[string]uintptr{
			"argsz":              C.vfio_off__vfio_iommu_spapr_tce_info__argsz,
			"flags":              C.vfio_off__vfio_iommu_spapr_tce_info__flags,
			"dma32_window_start": C.vfio_off__vfio_iommu_spapr_tce_info__dma32_window_start,
			"dma32_window_size":  C.vfio_off__vfio_iommu_spapr_tce_info__dma32_window_size,
			"ddw":                C.vfio_off__vfio_iommu_spapr_tce_info__ddw,
		}},
		{Name: "vfio_eeh_pe_err", Size: C.vfio_size__vfio_eeh_pe_err, Fields: map[string]uintptr{
			"type": C.vfio_off__vfio_eeh_pe_err__type,
			"func": C.vfio_off__vfio_eeh_pe_err__func,
			"addr": C.vfio_off__vfio_eeh_pe_err__addr,
			"mask": C.vfio_off__vfio_eeh_pe_err__mask,
		}},
		{Name: "vfio_eeh_pe_op", Size: C.vfio_size__vfio_eeh_pe_op, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_eeh_pe_op__argsz,
			"flags": C.vfio_off__vfio_eeh_pe_op__flags,
			"op":    C.vfio_off__vfio_eeh_pe_op__op,
			"err":   C.vfio_off__vfio_eeh_pe_op__err,
		}},
		{Name: "vfio_iommu_spapr_register_memory", Size: C.vfio_size__vfio_iommu_spapr_register_memory, Fields: map[string]uintptr{
			"argsz": C.vfio_off__vfio_iommu_spapr_register_memory__argsz,
			"flags": C.vfio_off__vfio_iommu_spapr_register_memory__flags,
			"vaddr": C.vfio_off__vfio_iommu_spapr_register_memory__vaddr,
			"size":  C.vfio_off__vfio_iommu_spapr_register_memory__size,
		}},
		{Name: "vfio_iommu_spapr_tce_create", Size: C.vfio_size__vfio_iommu_spapr_tce_create, Fields: map[string]uintptr{
			"argsz":       C.vfio_off__vfio_iommu_spapr_tce_create__argsz,
			"flags":       C.vfio_off__vfio_iommu_spapr_tce_create__flags,
			"page_shift":  C.vfio_off__vfio_iommu_spapr_tce_create__page_shift,
			"__resv1":     C.vfio_off__vfio_iommu_spapr_tce_create____resv1,
			"window_size": C.vfio_off__vfio_iommu_spapr_tce_create__window_size,
			"levels":      C.vfio_off__vfio_iommu_spapr_tce_create__levels,
			"__resv2":     C.vfio_off__vfio_iommu_spapr_tce_create____resv2,
			"start_addr":  C.vfio_off__vfio_iommu_spapr_tce_create__start_addr,
		}},
		{Name: "vfio_iommu_spapr_tce_remove", Size: C.vfio_size__vfio_iommu_spapr_tce_remove, Fields: map[string]uintptr{
			"argsz":      C.vfio_off__vfio_iommu_spapr_tce_remove__argsz,
			"flags":      C.vfio_off__vfio_iommu_spapr_tce_remove__flags,
			"start_addr": C.vfio_off__vfio_iommu_spapr_tce_remove__start_addr,
		}},
	}
}

// VFIORequests returns every ioctl request number of linux/vfio.h.
func VFIORequests() []Request {
	return []Request{
		{Name: "VFIO_GET_API_VERSION", Value: C.VFIO_GET_API_VERSION},
		{Name: "VFIO_CHECK_EXTENSION", Value: C.VFIO_CHECK_EXTENSION},
		{Name: "VFIO_SET_IOMMU", Value: C.VFIO_SET_IOMMU},
		{Name: "VFIO_GROUP_GET_STATUS", Value: C.VFIO_GROUP_GET_STATUS},
		{Name: "VFIO_GROUP_SET_CONTAINER", Value: C.VFIO_GROUP_SET_CONTAINER},
		{Name: "VFIO_GROUP_UNSET_CONTAINER", Value: C.VFIO_GROUP_UNSET_CONTAINER},
		{Name: "VFIO_GROUP_GET_DEVICE_FD", Value: C.VFIO_GROUP_GET_DEVICE_FD},
		{Name: "VFIO_DEVICE_GET_INFO", Value: C.VFIO_DEVICE_GET_INFO},
		{Name: "VFIO_DEVICE_GET_REGION_INFO", Value: C.VFIO_DEVICE_GET_REGION_INFO},
		{Name: "VFIO_DEVICE_GET_IRQ_INFO", Value: C.VFIO_DEVICE_GET_IRQ_INFO},
		{Name: "VFIO_DEVICE_SET_IRQS", Value: C.VFIO_DEVICE_SET_IRQS},
		{Name: "VFIO_DEVICE_RESET", Value: C.VFIO_DEVICE_RESET},
		{Name: "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", Value: C.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO},
		{Name: "VFIO_DEVICE_PCI_HOT_RESET", Value: C.VFIO_DEVICE_PCI_HOT_RESET},
		{Name: "VFIO_DEVICE_QUERY_GFX_PLANE", Value: C.VFIO_DEVICE_QUERY_GFX_PLANE},
		{Name: "VFIO_DEVICE_GET_GFX_DMABUF", Value: C.VFIO_DEVICE_GET_GFX_DMABUF},
		{Name: "VFIO_DEVICE_IOEVENTFD", Value: C.VFIO_DEVICE_IOEVENTFD},
		{Name: "VFIO_DEVICE_FEATURE", Value: C.VFIO_DEVICE_FEATURE},
		{Name: "VFIO_DEVICE_BIND_IOMMUFD", Value: C.VFIO_DEVICE_BIND_IOMMUFD},
		{Name: "VFIO_DEVICE_ATTACH_IOMMUFD_PT", Value: C.VFIO_DEVICE_ATTACH_IOMMUFD_PT},
		{Name: "VFIO_DEVICE_DETACH_IOMMUFD_PT", Value: C.VFIO_DEVICE_DETACH_IOMMUFD_PT},
		{Name: "VFIO_MIG_GET_PRECOPY_INFO", Value: C.VFIO_MIG_GET_PRECOPY_INFO},
		{Name: "VFIO_IOMMU_GET_INFO", Value: C.VFIO_IOMMU_GET_INFO},
		{Name: "VFIO_IOMMU_MAP_DMA", Value: C.VFIO_IOMMU_MAP_DMA},
		{Name: "VFIO_IOMMU_UNMAP_DMA", Value: C.VFIO_IOMMU_UNMAP_DMA},
		{Name: "VFIO_IOMMU_ENABLE", Value: C.VFIO_IOMMU_ENABLE},
		{Name: "VFIO_IOMMU_DISABLE", Value: C.VFIO_IOMMU_DISABLE},
		{Name: "VFIO_IOMMU_DIRTY_PAGES", Value: C.VFIO_IOMMU_DIRTY_PAGES},
		{Name: "VFIO_IOMMU_SPAPR_TCE_GET_INFO", Value: C.VFIO_IOMMU_SPAPR_TCE_GET_INFO},
		{Name: "VFIO_EEH_PE_OP", Value: C.VFIO_EEH_PE_OP},
		{Name: "VFIO_IOMMU_SPAPR_REGISTER_MEMORY", Value: C.VFIO_IOMMU_SPAPR_REGISTER_MEMORY},
		{Name: "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY", Value: C.VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY},
		{Name: "VFIO_IOMMU_SPAPR_TCE_CREATE", Value: C.VFIO_IOMMU_SPAPR_TCE_CREATE},
		{Name: "VFIO_IOMMU_SPAPR_TCE_REMOVE", Value: C.VFIO_IOMMU_SPAPR_TCE_REMOVE},
	}
}

// VFIOConstants returns every integer constant of linux/vfio.h other than
// request numbers: object-like #defines and enum members.
func VFIOConstants() map[string]int64 {
	return map[string]int64{
		"VFIO_API_VERSION":                                C.VFIO_API_VERSION,
		"VFIO_TYPE1_IOMMU":                                C.VFIO_TYPE1_IOMMU,
		"VFIO_SPAPR_TCE_IOMMU":                            C.VFIO_SPAPR_TCE_IOMMU,
		"VFIO_TYPE1v2_IOMMU":                              C.VFIO_TYPE1v2_IOMMU,
		"VFIO_DMA_CC_IOMMU":                               C.VFIO_DMA_CC_IOMMU,
		"VFIO_EEH":                                        C.VFIO_EEH,
		"VFIO_TYPE1_NESTING_IOMMU":                        C.VFIO_TYPE1_NESTING_IOMMU,
		"VFIO_SPAPR_TCE_v2_IOMMU":                         C.VFIO_SPAPR_TCE_v2_IOMMU,
		"VFIO_NOIOMMU_IOMMU":                              C.VFIO_NOIOMMU_IOMMU,
		"VFIO_UNMAP_ALL":                                  C.VFIO_UNMAP_ALL,
		"VFIO_UPDATE_VADDR":                               C.VFIO_UPDATE_VADDR,
		"VFIO_TYPE":                                       C.VFIO_TYPE,
		"VFIO_BASE":                                       C.VFIO_BASE,
		"VFIO_GROUP_FLAGS_VIABLE":                         C.VFIO_GROUP_FLAGS_VIABLE,
		"VFIO_GROUP_FLAGS_CONTAINER_SET":                  C.VFIO_GROUP_FLAGS_CONTAINER_SET,
		"VFIO_DEVICE_FLAGS_RESET":                         C.VFIO_DEVICE_FLAGS_RESET,
		"VFIO_DEVICE_FLAGS_PCI":                           C.VFIO_DEVICE_FLAGS_PCI,
		"VFIO_DEVICE_FLAGS_PLATFORM":                      C.VFIO_DEVICE_FLAGS_PLATFORM,
		"VFIO_DEVICE_FLAGS_AMBA":                          C.VFIO_DEVICE_FLAGS_AMBA,
		"VFIO_DEVICE_FLAGS_CCW":                           C.VFIO_DEVICE_FLAGS_CCW,
		"VFIO_DEVICE_FLAGS_AP":                            C.VFIO_DEVICE_FLAGS_AP,
		"VFIO_DEVICE_FLAGS_FSL_MC":                        C.VFIO_DEVICE_FLAGS_FSL_MC,
		"VFIO_DEVICE_FLAGS_CAPS":                          C.VFIO_DEVICE_FLAGS_CAPS,
		"VFIO_DEVICE_FLAGS_CDX":                           C.VFIO_DEVICE_FLAGS_CDX,
		"VFIO_DEVICE_INFO_CAP_ZPCI_BASE":                  C.VFIO_DEVICE_INFO_CAP_ZPCI_BASE,
		"VFIO_DEVICE_INFO_CAP_ZPCI_GROUP":                 C.VFIO_DEVICE_INFO_CAP_ZPCI_GROUP,
		"VFIO_DEVICE_INFO_CAP_ZPCI_UTIL":                  C.VFIO_DEVICE_INFO_CAP_ZPCI_UTIL,
		"VFIO_DEVICE_INFO_CAP_ZPCI_PFIP":                  C.VFIO_DEVICE_INFO_CAP_ZPCI_PFIP,
		"VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP":            C.VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP,
		"VFIO_PCI_ATOMIC_COMP32":                          C.VFIO_PCI_ATOMIC_COMP32,
		"VFIO_PCI_ATOMIC_COMP64":                          C.VFIO_PCI_ATOMIC_COMP64,
		"VFIO_PCI_ATOMIC_COMP128":                         C.VFIO_PCI_ATOMIC_COMP128,
		"VFIO_REGION_INFO_FLAG_READ":                      C.VFIO_REGION_INFO_FLAG_READ,
		"VFIO_REGION_INFO_FLAG_WRITE":                     C.VFIO_REGION_INFO_FLAG_WRITE,
		"VFIO_REGION_INFO_FLAG_MMAP":                      C.VFIO_REGION_INFO_FLAG_MMAP,
		"VFIO_REGION_INFO_FLAG_CAPS":                      C.VFIO_REGION_INFO_FLAG_CAPS,
		"VFIO_REGION_INFO_CAP_SPARSE_MMAP":                C.VFIO_REGION_INFO_CAP_SPARSE_MMAP,
		"VFIO_REGION_INFO_CAP_TYPE":                       C.VFIO_REGION_INFO_CAP_TYPE,
		"VFIO_REGION_TYPE_PCI_VENDOR_TYPE":                C.VFIO_REGION_TYPE_PCI_VENDOR_TYPE,
		"VFIO_REGION_TYPE_PCI_VENDOR_MASK":                C.VFIO_REGION_TYPE_PCI_VENDOR_MASK,
		"VFIO_REGION_TYPE_GFX":                            C.VFIO_REGION_TYPE_GFX,
		"VFIO_REGION_TYPE_CCW":                            C.VFIO_REGION_TYPE_CCW,
		"VFIO_REGION_TYPE_MIGRATION_DEPRECATED":           C.VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
		"VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION":          C.VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION,
		"VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG":          C.VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG,
		"VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG":           C.VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG,
		"VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM":          C.VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
		"VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD":            C.VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD,
		"VFIO_REGION_SUBTYPE_GFX_EDID":                    C.VFIO_REGION_SUBTYPE_GFX_EDID,
		"VFIO_DEVICE_GFX_LINK_STATE_UP":                   C.VFIO_DEVICE_GFX_LINK_STATE_UP,
		"VFIO_DEVICE_GFX_LINK_STATE_DOWN":                 C.VFIO_DEVICE_GFX_LINK_STATE_DOWN,
		"VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD":               C.VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD,
		"VFIO_REGION_SUBTYPE_CCW_SCHIB":                   C.VFIO_REGION_SUBTYPE_CCW_SCHIB,
		"VFIO_REGION_SUBTYPE_CCW_CRW":                     C.VFIO_REGION_SUBTYPE_CCW_CRW,
		"VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED":        C.VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED,
		"VFIO_DEVICE_STATE_V1_STOP":                       C.VFIO_DEVICE_STATE_V1_STOP,
		"VFIO_DEVICE_STATE_V1_RUNNING":                    C.VFIO_DEVICE_STATE_V1_RUNNING,
		"VFIO_DEVICE_STATE_V1_SAVING":                     C.VFIO_DEVICE_STATE_V1_SAVING,
		"VFIO_DEVICE_STATE_V1_RESUMING":                   C.VFIO_DEVICE_STATE_V1_RESUMING,
		"VFIO_DEVICE_STATE_MASK":                          C.VFIO_DEVICE_STATE_MASK,
		"VFIO_REGION_INFO_CAP_MSIX_MAPPABLE":              C.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
		"VFIO_REGION_INFO_CAP_NVLINK2_SSATGT":             C.VFIO_REGION_INFO_CAP_NVLINK2_SSATGT,
		"VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD":             C.VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD,
		"VFIO_IRQ_INFO_EVENTFD":                           C.VFIO_IRQ_INFO_EVENTFD,
		"VFIO_IRQ_INFO_MASKABLE":                          C.VFIO_IRQ_INFO_MASKABLE,
		"VFIO_IRQ_INFO_AUTOMASKED":                        C.VFIO_IRQ_INFO_AUTOMASKED,
		"VFIO_IRQ_INFO_NORESIZE":                          C.VFIO_IRQ_INFO_NORESIZE,
		"VFIO_IRQ_SET_DATA_NONE":                          C.VFIO_IRQ_SET_DATA_NONE,
		"VFIO_IRQ_SET_DATA_BOOL":                          C.VFIO_IRQ_SET_DATA_BOOL,
		"VFIO_IRQ_SET_DATA_EVENTFD":                       C.VFIO_IRQ_SET_DATA_EVENTFD,
		"VFIO_IRQ_SET_ACTION_MASK":                        C.VFIO_IRQ_SET_ACTION_MASK,
		"VFIO_IRQ_SET_ACTION_UNMASK":                      C.VFIO_IRQ_SET_ACTION_UNMASK,
		"VFIO_IRQ_SET_ACTION_TRIGGER":                     C.VFIO_IRQ_SET_ACTION_TRIGGER,
		"VFIO_IRQ_SET_DATA_TYPE_MASK":                     C.VFIO_IRQ_SET_DATA_TYPE_MASK,
		"VFIO_IRQ_SET_ACTION_TYPE_MASK":                   C.VFIO_IRQ_SET_ACTION_TYPE_MASK,
		"VFIO_PCI_DEVID_OWNED":                            C.VFIO_PCI_DEVID_OWNED,
		"VFIO_PCI_DEVID_NOT_OWNED":                        C.VFIO_PCI_DEVID_NOT_OWNED,
		"VFIO_PCI_HOT_RESET_FLAG_DEV_ID":                  C.VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
		"VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED":            C.VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
		"VFIO_GFX_PLANE_TYPE_PROBE":                       C.VFIO_GFX_PLANE_TYPE_PROBE,
		"VFIO_GFX_PLANE_TYPE_DMABUF":                      C.VFIO_GFX_PLANE_TYPE_DMABUF,
		"VFIO_GFX_PLANE_TYPE_REGION":                      C.VFIO_GFX_PLANE_TYPE_REGION,
		"VFIO_DEVICE_IOEVENTFD_8":                         C.VFIO_DEVICE_IOEVENTFD_8,
		"VFIO_DEVICE_IOEVENTFD_16":                        C.VFIO_DEVICE_IOEVENTFD_16,
		"VFIO_DEVICE_IOEVENTFD_32":                        C.VFIO_DEVICE_IOEVENTFD_32,
		"VFIO_DEVICE_IOEVENTFD_64":                        C.VFIO_DEVICE_IOEVENTFD_64,
		"VFIO_DEVICE_IOEVENTFD_SIZE_MASK":                 C.VFIO_DEVICE_IOEVENTFD_SIZE_MASK,
		"VFIO_DEVICE_FEATURE_MASK":                        C.VFIO_DEVICE_FEATURE_MASK,
		"VFIO_DEVICE_FEATURE_GET":                         C.VFIO_DEVICE_FEATURE_GET,
		"VFIO_DEVICE_FEATURE_SET":                         C.VFIO_DEVICE_FEATURE_SET,
		"VFIO_DEVICE_FEATURE_PROBE":                       C.VFIO_DEVICE_FEATURE_PROBE,
		"VFIO_DEVICE_FEATURE_PCI_VF_TOKEN":                C.VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
		"VFIO_MIGRATION_STOP_COPY":                        C.VFIO_MIGRATION_STOP_COPY,
		"VFIO_MIGRATION_P2P":                              C.VFIO_MIGRATION_P2P,
		"VFIO_MIGRATION_PRE_COPY":                         C.VFIO_MIGRATION_PRE_COPY,
		"VFIO_DEVICE_FEATURE_MIGRATION":                   C.VFIO_DEVICE_FEATURE_MIGRATION,
		"VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE":            C.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		"VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY":             C.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
		"VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP": C.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
		"VFIO_DEVICE_FEATURE_LOW_POWER_EXIT":              C.VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
		"VFIO_DEVICE_FEATURE_DMA_LOGGING_START":           C.VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
		"VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP":            C.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
		"VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT":          C.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
		"VFIO_DEVICE_FEATURE_MIG_DATA_SIZE":               C.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
		"VFIO_DEVICE_FEATURE_CLEAR_MASTER":                C.VFIO_DEVICE_FEATURE_CLEAR_MASTER,
		"VFIO_DEVICE_FEATURE_SET_MASTER":                  C.VFIO_DEVICE_FEATURE_SET_MASTER,
		"VFIO_DEVICE_FEATURE_BUS_MASTER":                  C.VFIO_DEVICE_FEATURE_BUS_MASTER,
		"VFIO_IOMMU_INFO_PGSIZES":                         C.VFIO_IOMMU_INFO_PGSIZES,
		"VFIO_IOMMU_INFO_CAPS":                            C.VFIO_IOMMU_INFO_CAPS,
		"VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE":            C.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
		"VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION":             C.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
		"VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL":                 C.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
		"VFIO_DMA_MAP_FLAG_READ":                          C.VFIO_DMA_MAP_FLAG_READ,
		"VFIO_DMA_MAP_FLAG_WRITE":                         C.VFIO_DMA_MAP_FLAG_WRITE,
		"VFIO_DMA_MAP_FLAG_VADDR":                         C.VFIO_DMA_MAP_FLAG_VADDR,
		"VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP":            C.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
		"VFIO_DMA_UNMAP_FLAG_ALL":                         C.VFIO_DMA_UNMAP_FLAG_ALL,
		"VFIO_DMA_UNMAP_FLAG_VADDR":                       C.VFIO_DMA_UNMAP_FLAG_VADDR,
		"VFIO_IOMMU_DIRTY_PAGES_FLAG_START":               C.VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
		"VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP":                C.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
		"VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP":          C.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
		"VFIO_IOMMU_SPAPR_INFO_DDW":                       C.VFIO_IOMMU_SPAPR_INFO_DDW,
		"VFIO_EEH_PE_DISABLE":                             C.VFIO_EEH_PE_DISABLE,
		"VFIO_EEH_PE_ENABLE":                              C.VFIO_EEH_PE_ENABLE,
		"VFIO_EEH_PE_UNFREEZE_IO":                         C.VFIO_EEH_PE_UNFREEZE_IO,
		"VFIO_EEH_PE_UNFREEZE_DMA":                        C.VFIO_EEH_PE_UNFREEZE_DMA,
		"VFIO_EEH_PE_GET_STATE":                           C.VFIO_EEH_PE_GET_STATE,
		"VFIO_EEH_PE_STATE_NORMAL":                        C.VFIO_EEH_PE_STATE_NORMAL,
		"VFIO_EEH_PE_STATE_RESET":                         C.VFIO_EEH_PE_STATE_RESET,
		"VFIO_EEH_PE_STATE_STOPPED":                       C.VFIO_EEH_PE_STATE_STOPPED,
		"VFIO_EEH_PE_STATE_STOPPED_DMA":                   C.VFIO_EEH_PE_STATE_STOPPED_DMA,
		"VFIO_EEH_PE_STATE_UNAVAIL":                       C.VFIO_EEH_PE_STATE_UNAVAIL,
		"VFIO_EEH_PE_RESET_DEACTIVATE":                    C.VFIO_EEH_PE_RESET_DEACTIVATE,
		"VFIO_EEH_PE_RESET_HOT":                           C.VFIO_EEH_PE_RESET_HOT,
		"VFIO_EEH_PE_RESET_FUNDAMENTAL":                   C.VFIO_EEH_PE_RESET_FUNDAMENTAL,
		"VFIO_EEH_PE_CONFIGURE":                           C.VFIO_EEH_PE_CONFIGURE,
		"VFIO_EEH_PE_INJECT_ERR":                          C.VFIO_EEH_PE_INJECT_ERR,
		"VFIO_PCI_BAR0_REGION_INDEX":                      C.VFIO_PCI_BAR0_REGION_INDEX,
		"VFIO_PCI_BAR1_REGION_INDEX":                      C.VFIO_PCI_BAR1_REGION_INDEX,
		"VFIO_PCI_BAR2_REGION_INDEX":                      C.VFIO_PCI_BAR2_REGION_INDEX,
		"VFIO_PCI_BAR3_REGION_INDEX":                      C.VFIO_PCI_BAR3_REGION_INDEX,
		"VFIO_PCI_BAR4_REGION_INDEX":                      C.VFIO_PCI_BAR4_REGION_INDEX,
		"VFIO_PCI_BAR5_REGION_INDEX":                      C.VFIO_PCI_BAR5_REGION_INDEX,
		"VFIO_PCI_ROM_REGION_INDEX":                       C.VFIO_PCI_ROM_REGION_INDEX,
		"VFIO_PCI_CONFIG_REGION_INDEX":                    C.VFIO_PCI_CONFIG_REGION_INDEX,
		"VFIO_PCI_VGA_REGION_INDEX":                       C.VFIO_PCI_VGA_REGION_INDEX,
		"VFIO_PCI_NUM_REGIONS":                            C.VFIO_PCI_NUM_REGIONS,
		"VFIO_PCI_INTX_IRQ_INDEX":                         C.VFIO_PCI_INTX_IRQ_INDEX,
		"VFIO_PCI_MSI_IRQ_INDEX":                          C.VFIO_PCI_MSI_IRQ_INDEX,
		"VFIO_PCI_MSIX_IRQ_INDEX":                         C.VFIO_PCI_MSIX_IRQ_INDEX,
		"VFIO_PCI_ERR_IRQ_INDEX":                          C.VFIO_PCI_ERR_IRQ_INDEX,
		"VFIO_PCI_REQ_IRQ_INDEX":                          C.VFIO_PCI_REQ_IRQ_INDEX,
		"VFIO_PCI_NUM_IRQS":                               C.VFIO_PCI_NUM_IRQS,
		"VFIO_CCW_CONFIG_REGION_INDEX":                    C.VFIO_CCW_CONFIG_REGION_INDEX,
		"VFIO_CCW_NUM_REGIONS":                            C.VFIO_CCW_NUM_REGIONS,
		"VFIO_CCW_IO_IRQ_INDEX":                           C.VFIO_CCW_IO_IRQ_INDEX,
		"VFIO_CCW_CRW_IRQ_INDEX":                          C.VFIO_CCW_CRW_IRQ_INDEX,
		"VFIO_CCW_REQ_IRQ_INDEX":                          C.VFIO_CCW_REQ_IRQ_INDEX,
		"VFIO_CCW_NUM_IRQS":                               C.VFIO_CCW_NUM_IRQS,
		"VFIO_AP_REQ_IRQ_INDEX":                           C.VFIO_AP_REQ_IRQ_INDEX,
		"VFIO_AP_NUM_IRQS":                                C.VFIO_AP_NUM_IRQS,
		"VFIO_DEVICE_STATE_ERROR":                         C.VFIO_DEVICE_STATE_ERROR,
		"VFIO_DEVICE_STATE_STOP":                          C.VFIO_DEVICE_STATE_STOP,
		"VFIO_DEVICE_STATE_RUNNING":                       C.VFIO_DEVICE_STATE_RUNNING,
		"VFIO_DEVICE_STATE_STOP_COPY":                     C.VFIO_DEVICE_STATE_STOP_COPY,
		"VFIO_DEVICE_STATE_RESUMING":                      C.VFIO_DEVICE_STATE_RESUMING,
		"VFIO_DEVICE_STATE_RUNNING_P2P":                   C.VFIO_DEVICE_STATE_RUNNING_P2P,
		"VFIO_DEVICE_STATE_PRE_COPY":                      C.VFIO_DEVICE_STATE_PRE_COPY,
		"VFIO_DEVICE_STATE_PRE_COPY_P2P":                  C.VFIO_DEVICE_STATE_PRE_COPY_P2P,
		"VFIO_DEVICE_STATE_NR":                            C.VFIO_DEVICE_STATE_NR,
	}
}
