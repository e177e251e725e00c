//go:build uapicheck

package cref

/*
#include <stddef.h>
#include <linux/iommufd.h>

// One enum constant per size and offset: cgo reads enum values, and a
// static const would not link.
#define IOMMUFD_SZ(s) enum { iommufd_size__##s = sizeof(struct s) };
#define IOMMUFD_OFF(s, f) enum { iommufd_off__##s##__##f = offsetof(struct s, f) };

IOMMUFD_SZ(iommu_destroy)
IOMMUFD_OFF(iommu_destroy, size)
IOMMUFD_OFF(iommu_destroy, id)
IOMMUFD_SZ(iommu_ioas_alloc)
IOMMUFD_OFF(iommu_ioas_alloc, size)
IOMMUFD_OFF(iommu_ioas_alloc, flags)
IOMMUFD_OFF(iommu_ioas_alloc, out_ioas_id)
IOMMUFD_SZ(iommu_iova_range)
IOMMUFD_OFF(iommu_iova_range, start)
IOMMUFD_OFF(iommu_iova_range, last)
IOMMUFD_SZ(iommu_ioas_iova_ranges)
IOMMUFD_OFF(iommu_ioas_iova_ranges, size)
IOMMUFD_OFF(iommu_ioas_iova_ranges, ioas_id)
IOMMUFD_OFF(iommu_ioas_iova_ranges, num_iovas)
IOMMUFD_OFF(iommu_ioas_iova_ranges, __reserved)
IOMMUFD_OFF(iommu_ioas_iova_ranges, allowed_iovas)
IOMMUFD_OFF(iommu_ioas_iova_ranges, out_iova_alignment)
IOMMUFD_SZ(iommu_ioas_allow_iovas)
IOMMUFD_OFF(iommu_ioas_allow_iovas, size)
IOMMUFD_OFF(iommu_ioas_allow_iovas, ioas_id)
IOMMUFD_OFF(iommu_ioas_allow_iovas, num_iovas)
IOMMUFD_OFF(iommu_ioas_allow_iovas, __reserved)
IOMMUFD_OFF(iommu_ioas_allow_iovas, allowed_iovas)
IOMMUFD_SZ(iommu_ioas_map)
IOMMUFD_OFF(iommu_ioas_map, size)
IOMMUFD_OFF(iommu_ioas_map, flags)
IOMMUFD_OFF(iommu_ioas_map, ioas_id)
IOMMUFD_OFF(iommu_ioas_map, __reserved)
IOMMUFD_OFF(iommu_ioas_map, user_va)
IOMMUFD_OFF(iommu_ioas_map, length)
IOMMUFD_OFF(iommu_ioas_map, iova)
IOMMUFD_SZ(iommu_ioas_copy)
IOMMUFD_OFF(iommu_ioas_copy, size)
IOMMUFD_OFF(iommu_ioas_copy, flags)
IOMMUFD_OFF(iommu_ioas_copy, dst_ioas_id)
IOMMUFD_OFF(iommu_ioas_copy, src_ioas_id)
IOMMUFD_OFF(iommu_ioas_copy, length)
IOMMUFD_OFF(iommu_ioas_copy, dst_iova)
IOMMUFD_OFF(iommu_ioas_copy, src_iova)
IOMMUFD_SZ(iommu_ioas_unmap)
IOMMUFD_OFF(iommu_ioas_unmap, size)
IOMMUFD_OFF(iommu_ioas_unmap, ioas_id)
IOMMUFD_OFF(iommu_ioas_unmap, iova)
IOMMUFD_OFF(iommu_ioas_unmap, length)
IOMMUFD_SZ(iommu_option)
IOMMUFD_OFF(iommu_option, size)
IOMMUFD_OFF(iommu_option, option_id)
IOMMUFD_OFF(iommu_option, op)
IOMMUFD_OFF(iommu_option, __reserved)
IOMMUFD_OFF(iommu_option, object_id)
IOMMUFD_OFF(iommu_option, val64)
IOMMUFD_SZ(iommu_vfio_ioas)
IOMMUFD_OFF(iommu_vfio_ioas, size)
IOMMUFD_OFF(iommu_vfio_ioas, ioas_id)
IOMMUFD_OFF(iommu_vfio_ioas, op)
IOMMUFD_OFF(iommu_vfio_ioas, __reserved)
IOMMUFD_SZ(iommu_hwpt_vtd_s1)
IOMMUFD_OFF(iommu_hwpt_vtd_s1, flags)
IOMMUFD_OFF(iommu_hwpt_vtd_s1, pgtbl_addr)
IOMMUFD_OFF(iommu_hwpt_vtd_s1, addr_width)
IOMMUFD_OFF(iommu_hwpt_vtd_s1, __reserved)
IOMMUFD_SZ(iommu_hwpt_alloc)
IOMMUFD_OFF(iommu_hwpt_alloc, size)
IOMMUFD_OFF(iommu_hwpt_alloc, flags)
IOMMUFD_OFF(iommu_hwpt_alloc, dev_id)
IOMMUFD_OFF(iommu_hwpt_alloc, pt_id)
IOMMUFD_OFF(iommu_hwpt_alloc, out_hwpt_id)
IOMMUFD_OFF(iommu_hwpt_alloc, __reserved)
IOMMUFD_OFF(iommu_hwpt_alloc, data_type)
IOMMUFD_OFF(iommu_hwpt_alloc, data_len)
IOMMUFD_OFF(iommu_hwpt_alloc, data_uptr)
IOMMUFD_OFF(iommu_hwpt_alloc, fault_id)
IOMMUFD_OFF(iommu_hwpt_alloc, __reserved2)
IOMMUFD_SZ(iommu_hw_info_vtd)
IOMMUFD_OFF(iommu_hw_info_vtd, flags)
IOMMUFD_OFF(iommu_hw_info_vtd, __reserved)
IOMMUFD_OFF(iommu_hw_info_vtd, cap_reg)
IOMMUFD_OFF(iommu_hw_info_vtd, ecap_reg)
IOMMUFD_SZ(iommu_hw_info)
IOMMUFD_OFF(iommu_hw_info, size)
IOMMUFD_OFF(iommu_hw_info, flags)
IOMMUFD_OFF(iommu_hw_info, dev_id)
IOMMUFD_OFF(iommu_hw_info, data_len)
IOMMUFD_OFF(iommu_hw_info, data_uptr)
IOMMUFD_OFF(iommu_hw_info, out_data_type)
IOMMUFD_OFF(iommu_hw_info, out_max_pasid_log2)
IOMMUFD_OFF(iommu_hw_info, __reserved)
IOMMUFD_OFF(iommu_hw_info, out_capabilities)
IOMMUFD_SZ(iommu_hwpt_set_dirty_tracking)
IOMMUFD_OFF(iommu_hwpt_set_dirty_tracking, size)
IOMMUFD_OFF(iommu_hwpt_set_dirty_tracking, flags)
IOMMUFD_OFF(iommu_hwpt_set_dirty_tracking, hwpt_id)
IOMMUFD_OFF(iommu_hwpt_set_dirty_tracking, __reserved)
IOMMUFD_SZ(iommu_hwpt_get_dirty_bitmap)
IOMMUFD_OFF(iommu_hwpt_get_dirty_bitmap, size)
IOMMUFD_OFF(iommu_hwpt_get_dirty_bitmap, hwpt_id)
IOMMUFD_OFF(iommu_hwpt_get_dirty_bitmap, flags)
IOMMUFD_OFF(iommu_hwpt_get_dirty_bitmap, __reserved)
IOMMUFD_OFF(iommu_hwpt_get_dirty_bitmap, iova)
IOMMUFD_OFF(iommu_hwpt_get_dirty_bitmap, length)
IOMMUFD_OFF(iommu_hwpt_get_dirty_bitmap, page_size)
IOMMUFD_OFF(iommu_hwpt_get_dirty_bitmap, data)
IOMMUFD_SZ(iommu_hwpt_vtd_s1_invalidate)
IOMMUFD_OFF(iommu_hwpt_vtd_s1_invalidate, addr)
IOMMUFD_OFF(iommu_hwpt_vtd_s1_invalidate, npages)
IOMMUFD_OFF(iommu_hwpt_vtd_s1_invalidate, flags)
IOMMUFD_OFF(iommu_hwpt_vtd_s1_invalidate, __reserved)
IOMMUFD_SZ(iommu_hwpt_invalidate)
IOMMUFD_OFF(iommu_hwpt_invalidate, size)
IOMMUFD_OFF(iommu_hwpt_invalidate, hwpt_id)
IOMMUFD_OFF(iommu_hwpt_invalidate, data_uptr)
IOMMUFD_OFF(iommu_hwpt_invalidate, data_type)
IOMMUFD_OFF(iommu_hwpt_invalidate, entry_len)
IOMMUFD_OFF(iommu_hwpt_invalidate, entry_num)
IOMMUFD_OFF(iommu_hwpt_invalidate, __reserved)
IOMMUFD_SZ(iommu_hwpt_pgfault)
IOMMUFD_OFF(iommu_hwpt_pgfault, flags)
IOMMUFD_OFF(iommu_hwpt_pgfault, dev_id)
IOMMUFD_OFF(iommu_hwpt_pgfault, pasid)
IOMMUFD_OFF(iommu_hwpt_pgfault, grpid)
IOMMUFD_OFF(iommu_hwpt_pgfault, perm)
IOMMUFD_OFF(iommu_hwpt_pgfault, __reserved)
IOMMUFD_OFF(iommu_hwpt_pgfault, addr)
IOMMUFD_OFF(iommu_hwpt_pgfault, length)
IOMMUFD_OFF(iommu_hwpt_pgfault, cookie)
IOMMUFD_SZ(iommu_hwpt_page_response)
IOMMUFD_OFF(iommu_hwpt_page_response, cookie)
IOMMUFD_OFF(iommu_hwpt_page_response, code)
IOMMUFD_SZ(iommu_fault_alloc)
IOMMUFD_OFF(iommu_fault_alloc, size)
IOMMUFD_OFF(iommu_fault_alloc, flags)
IOMMUFD_OFF(iommu_fault_alloc, out_fault_id)
IOMMUFD_OFF(iommu_fault_alloc, out_fault_fd)
*/
import "C"

// IOMMUFDLayouts returns every struct of linux/iommufd.h as compiled: size
// and the offset of each field, reserved fields included.
func IOMMUFDLayouts() []Layout {
	return []Layout{
		{Name: "iommu_destroy", Size: C.iommufd_size__iommu_destroy, Fields: map[string]uintptr{
			"size": C.iommufd_off__iommu_destroy__size,
			"id":   C.iommufd_off__iommu_destroy__id,
		}},
		{Name: "iommu_ioas_alloc", Size: C.iommufd_size__iommu_ioas_alloc, Fields: map[string]uintptr{
			"size":        C.iommufd_off__iommu_ioas_alloc__size,
			"flags":       C.iommufd_off__iommu_ioas_alloc__flags,
			"out_ioas_id": C.iommufd_off__iommu_ioas_alloc__out_ioas_id,
		}},
		{Name: "iommu_iova_range", Size: C.iommufd_size__iommu_iova_range, Fields: map[string]uintptr{
			"start": C.iommufd_off__iommu_iova_range__start,
			"last":  C.iommufd_off__iommu_iova_range__last,
		}},
		{Name: "iommu_ioas_iova_ranges", Size: C.iommufd_size__iommu_ioas_iova_ranges, Fields: map[string]uintptr{
			"size":               C.iommufd_off__iommu_ioas_iova_ranges__size,
			"ioas_id":            C.iommufd_off__iommu_ioas_iova_ranges__ioas_id,
			"num_iovas":          C.iommufd_off__iommu_ioas_iova_ranges__num_iovas,
			"__reserved":         C.iommufd_off__iommu_ioas_iova_ranges____reserved,
			"allowed_iovas":      C.iommufd_off__iommu_ioas_iova_ranges__allowed_iovas,
			"out_iova_alignment": C.iommufd_off__iommu_ioas_iova_ranges__out_iova_alignment,
		}},
		{Name: "iommu_ioas_allow_iovas", Size: C.iommufd_size__iommu_ioas_allow_iovas, Fields: map[string]uintptr{
			"size":          C.iommufd_off__iommu_ioas_allow_iovas__size,
			"ioas_id":       C.iommufd_off__iommu_ioas_allow_iovas__ioas_id,
			"num_iovas":     C.iommufd_off__iommu_ioas_allow_iovas__num_iovas,
			"__reserved":    C.iommufd_off__iommu_ioas_allow_iovas____reserved,
			"allowed_iovas": C.iommufd_off__iommu_ioas_allow_iovas__allowed_iovas,
		}},
		{Name: "iommu_ioas_map", Size: C.iommufd_size__iommu_ioas_map, Fields: map[string]uintptr{
			"size":       C.iommufd_off__iommu_ioas_map__size,
			"flags":      C.iommufd_off__iommu_ioas_map__flags,
			"ioas_id":    C.iommufd_off__iommu_ioas_map__ioas_id,
			"__reserved": C.iommufd_off__iommu_ioas_map____reserved,
			"user_va":    C.iommufd_off__iommu_ioas_map__user_va,
			"length":     C.iommufd_off__iommu_ioas_map__length,
			"iova":       C.iommufd_off__iommu_ioas_map__iova,
		}},
		{Name: "iommu_ioas_copy", Size: C.iommufd_size__iommu_ioas_copy, Fields: map[string]uintptr{
			"size":        C.iommufd_off__iommu_ioas_copy__size,
			"flags":       C.iommufd_off__iommu_ioas_copy__flags,
			"dst_ioas_id": C.iommufd_off__iommu_ioas_copy__dst_ioas_id,
			"src_ioas_id": C.iommufd_off__iommu_ioas_copy__src_ioas_id,
			"length":      C.iommufd_off__iommu_ioas_copy__length,
			"dst_iova":    C.iommufd_off__iommu_ioas_copy__dst_iova,
			"src_iova":    C.iommufd_off__iommu_ioas_copy__src_iova,
		}},
		{Name: "iommu_ioas_unmap", Size: C.iommufd_size__iommu_ioas_unmap, Fields: map[string]uintptr{
			"size":    C.iommufd_off__iommu_ioas_unmap__size,
			"ioas_id": C.iommufd_off__iommu_ioas_unmap__ioas_id,
			"iova":    C.iommufd_off__iommu_ioas_unmap__iova,
			"length":  C.iommufd_off__iommu_ioas_unmap__length,
		}},
		{Name: "iommu_option", Size: C.iommufd_size__iommu_option, Fields: map[string]uintptr{
			"size":       C.iommufd_off__iommu_option__size,
			"option_id":  C.iommufd_off__iommu_option__option_id,
			"op":         C.iommufd_off__iommu_option__op,
			"__reserved": C.iommufd_off__iommu_option____reserved,
			"object_id":  C.iommufd_off__iommu_option__object_id,
			"val64":      C.iommufd_off__iommu_option__val64,
		}},
		{Name: "iommu_vfio_ioas", Size: C.iommufd_size__iommu_vfio_ioas, Fields: map[string]uintptr{
			"size":       C.iommufd_off__iommu_vfio_ioas__size,
			"ioas_id":    C.iommufd_off__iommu_vfio_ioas__ioas_id,
			"op":         C.iommufd_off__iommu_vfio_ioas__op,
			"__reserved": C.iommufd_off__iommu_vfio_ioas____reserved,
		}},
		{Name: "iommu_hwpt_vtd_s1", Size: C.iommufd_size__iommu_hwpt_vtd_s1, Fields: map[string]uintptr{
			"flags":      C.iommufd_off__iommu_hwpt_vtd_s1__flags,
			"pgtbl_addr": C.iommufd_off__iommu_hwpt_vtd_s1__pgtbl_addr,
			"addr_width": C.iommufd_off__iommu_hwpt_vtd_s1__addr_width,
			"__reserved": C.iommufd_off__iommu_hwpt_vtd_s1____reserved,
		}},
		{Name: "iommu_hwpt_alloc", Size: C.iommufd_size__iommu_hwpt_alloc, Fields: map[string]uintptr{
			"size":        C.iommufd_off__iommu_hwpt_alloc__size,
			"flags":       C.iommufd_off__iommu_hwpt_alloc__flags,
			"dev_id":      C.iommufd_off__iommu_hwpt_alloc__dev_id,
			"pt_id":       C.iommufd_off__iommu_hwpt_alloc__pt_id,
			"out_hwpt_id": C.iommufd_off__iommu_hwpt_alloc__out_hwpt_id,
			"__reserved":  C.iommufd_off__iommu_hwpt_alloc____reserved,
			"data_type":   C.iommufd_off__iommu_hwpt_alloc__data_type,
			"data_len":    C.iommufd_off__iommu_hwpt_alloc__data_len,
			"data_uptr":   C.iommufd_off__iommu_hwpt_alloc__data_uptr,
			"fault_id":    C.iommufd_off__iommu_hwpt_alloc__fault_id,
			"__reserved2": C.iommufd_off__iommu_hwpt_alloc____reserved2,
		}},
		{Name: "iommu_hw_info_vtd", Size: C.iommufd_size__iommu_hw_info_vtd, Fields: map[string]uintptr{
			"flags":      C.iommufd_off__iommu_hw_info_vtd__flags,
			"__reserved": C.iommufd_off__iommu_hw_info_vtd____reserved,
			"cap_reg":    C.iommufd_off__iommu_hw_info_vtd__cap_reg,
			"ecap_reg":   C.iommufd_off__iommu_hw_info_vtd__ecap_reg,
		}},
		{Name: "iommu_hw_info", Size: C.iommufd_size__iommu_hw_info, Fields: map[string]uintptr{
			"size":               C.iommufd_off__iommu_hw_info__size,
			"flags":              C.iommufd_off__iommu_hw_info__flags,
			"dev_id":             C.iommufd_off__iommu_hw_info__dev_id,
			"data_len":           C.iommufd_off__iommu_hw_info__data_len,
			"data_uptr":          C.iommufd_off__iommu_hw_info__data_uptr,
			"out_data_type":      C.iommufd_off__iommu_hw_info__out_data_type,
			"out_max_pasid_log2": C.iommufd_off__iommu_hw_info__out_max_pasid_log2,
			"__reserved":         C.iommufd_off__iommu_hw_info____reserved,
			"out_capabilities":   C.iommufd_off__iommu_hw_info__out_capabilities,
		}},
		{Name: "iommu_hwpt_set_dirty_tracking", Size: C.iommufd_size__iommu_hwpt_set_dirty_tracking, Fields: map[string]uintptr{
			"size":       C.iommufd_off__iommu_hwpt_set_dirty_tracking__size,
			"flags":      C.iommufd_off__iommu_hwpt_set_dirty_tracking__flags,
			"hwpt_id":    C.iommufd_off__iommu_hwpt_set_dirty_tracking__hwpt_id,
			"__reserved": C.iommufd_off__iommu_hwpt_set_dirty_tracking____reserved,
		}},
		{Name: "iommu_hwpt_get_dirty_bitmap", Size: C.iommufd_size__iommu_hwpt_get_dirty_bitmap, Fields: map[string]uintptr{
			"size":       C.iommufd_off__iommu_hwpt_get_dirty_bitmap__size,
			"hwpt_id":    C.iommufd_off__iommu_hwpt_get_dirty_bitmap__hwpt_id,
			"flags":      C.iommufd_off__iommu_hwpt_get_dirty_bitmap__flags,
			"__reserved": C.iommufd_off__iommu_hwpt_get_dirty_bitmap____reserved,
			"iova":       C.iommufd_off__iommu_hwpt_get_dirty_bitmap__iova,
			"length":     C.iommufd_off__iommu_hwpt_get_dirty_bitmap__length,
			"page_size":  C.iommufd_off__iommu_hwpt_get_dirty_bitmap__page_size,
			"data":       C.iommufd_off__iommu_hwpt_get_dirty_bitmap__data,
		}},
		{Name: "iommu_hwpt_vtd_s1_invalidate", Size: C.iommufd_size__iommu_hwpt_vtd_s1_invalidate, Fields: map[string]uintptr{
			"addr":       C.iommufd_off__iommu_hwpt_vtd_s1_invalidate__addr,
			"npages":     C.iommufd_off__iommu_hwpt_vtd_s1_invalidate__npages,
			"flags":      C.iommufd_off__iommu_hwpt_vtd_s1_invalidate__flags,
			"__reserved": C.iommufd_off__iommu_hwpt_vtd_s1_invalidate____reserved,
		}},
		{Name: "iommu_hwpt_invalidate", Size: C.iommufd_size__iommu_hwpt_invalidate, Fields: map[string]uintptr{
			"size":       C.iommufd_off__iommu_hwpt_invalidate__size,
			"hwpt_id":    C.iommufd_off__iommu_hwpt_invalidate__hwpt_id,
			"data_uptr":  C.iommufd_off__iommu_hwpt_invalidate__data_uptr,
			"data_type":  C.iommufd_off__iommu_hwpt_invalidate__data_type,
			"entry_len":  C.iommufd_off__iommu_hwpt_invalidate__entry_len,
			"entry_num":  C.iommufd_off__iommu_hwpt_invalidate__entry_num,
			"__reserved": C.iommufd_off__iommu_hwpt_invalidate____reserved,
		}},
		{Name: "iommu_hwpt_pgfault", Size: C.iommufd_size__iommu_hwpt_pgfault, Fields: map[string]uintptr{
			"flags":      C.iommufd_off__iommu_hwpt_pgfault__flags,
			"dev_id":     C.iommufd_off__iommu_hwpt_pgfault__dev_id,
			"pasid":      C.iommufd_off__iommu_hwpt_pgfault__pasid,
			"grpid":      C.iommufd_off__iommu_hwpt_pgfault__grpid,
			"perm":       C.iommufd_off__iommu_hwpt_pgfault__perm,
			"__reserved": C.iommufd_off__iommu_hwpt_pgfault____reserved,
			"addr":       C.iommufd_off__iommu_hwpt_pgfault__addr,
			"length":     C.iommufd_off__iommu_hwpt_pgfault__length,
			"cookie":     C.iommufd_off__iommu_hwpt_pgfault__cookie,
		}},
		{Name: "iommu_hwpt_page_response", Size: C.iommufd_size__iommu_hwpt_page_response, Fields: map[string]uintptr{
			"cookie": C.iommufd_off__iommu_hwpt_page_response__cookie,
			"code":   C.iommufd_off__iommu_hwpt_page_response__code,
		}},
		{Name: "iommu_fault_alloc", Size: C.iommufd_size__iommu_fault_alloc, Fields: map[string]uintptr{
			"size":         C.iommufd_off__iommu_fault_alloc__size,
			"flags":        C.iommufd_off__iommu_fault_alloc__flags,
			"out_fault_id": C.iommufd_off__iommu_fault_alloc__out_fault_id,
			"out_fault_fd": C.iommufd_off__iommu_fault_alloc__out_fault_fd,
		}},
	}
}

// IOMMUFDRequests returns every ioctl request number of linux/iommufd.h.
func IOMMUFDRequests() []Request {
	return []Request{
		{Name: "IOMMU_DESTROY", Value: C.IOMMU_DESTROY},
		{Name: "IOMMU_IOAS_ALLOC", Value: C.IOMMU_IOAS_ALLOC},
		{Name: "IOMMU_IOAS_IOVA_RANGES", Value: C.IOMMU_IOAS_IOVA_RANGES},
		{Name: "IOMMU_IOAS_ALLOW_IOVAS", Value: C.IOMMU_IOAS_ALLOW_IOVAS},
		{Name: "IOMMU_IOAS_MAP", Value: C.IOMMU_IOAS_MAP},
		{Name: "IOMMU_IOAS_COPY", Value: C.IOMMU_IOAS_COPY},
		{Name: "IOMMU_IOAS_UNMAP", Value: C.IOMMU_IOAS_UNMAP},
		{Name: "IOMMU_OPTION", Value: C.IOMMU_OPTION},
		{Name: "IOMMU_VFIO_IOAS", Value: C.IOMMU_VFIO_IOAS},
		{Name: "IOMMU_HWPT_ALLOC", Value: C.IOMMU_HWPT_ALLOC},
		{Name: "IOMMU_GET_HW_INFO", Value: C.IOMMU_GET_HW_INFO},
		{Name: "IOMMU_HWPT_SET_DIRTY_TRACKING", Value: C.IOMMU_HWPT_SET_DIRTY_TRACKING},
		{Name: "IOMMU_HWPT_GET_DIRTY_BITMAP", Value: C.IOMMU_HWPT_GET_DIRTY_BITMAP},
		{Name: "IOMMU_HWPT_INVALIDATE", Value: C.IOMMU_HWPT_INVALIDATE},
		{Name: "IOMMU_FAULT_QUEUE_ALLOC", Value: C.IOMMU_FAULT_QUEUE_ALLOC},
	}
}

// IOMMUFDConstants returns every integer constant of linux/iommufd.h other
// than request numbers: IOMMUFD_TYPE and every enum member.
func IOMMUFDConstants() map[string]int64 {
	return map[string]int64{
		"IOMMUFD_TYPE":                          C.IOMMUFD_TYPE,
		"IOMMUFD_CMD_BASE":                      C.IOMMUFD_CMD_BASE,
		"IOMMUFD_CMD_DESTROY":                   C.IOMMUFD_CMD_DESTROY,
		"IOMMUFD_CMD_IOAS_ALLOC":                C.IOMMUFD_CMD_IOAS_ALLOC,
		"IOMMUFD_CMD_IOAS_ALLOW_IOVAS":          C.IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
		"IOMMUFD_CMD_IOAS_COPY":                 C.IOMMUFD_CMD_IOAS_COPY,
		"IOMMUFD_CMD_IOAS_IOVA_RANGES":          C.IOMMUFD_CMD_IOAS_IOVA_RANGES,
		"IOMMUFD_CMD_IOAS_MAP":                  C.IOMMUFD_CMD_IOAS_MAP,
		"IOMMUFD_CMD_IOAS_UNMAP":                C.IOMMUFD_CMD_IOAS_UNMAP,
		"IOMMUFD_CMD_OPTION":                    C.IOMMUFD_CMD_OPTION,
		"IOMMUFD_CMD_VFIO_IOAS":                 C.IOMMUFD_CMD_VFIO_IOAS,
		"IOMMUFD_CMD_HWPT_ALLOC":                C.IOMMUFD_CMD_HWPT_ALLOC,
		"IOMMUFD_CMD_GET_HW_INFO":               C.IOMMUFD_CMD_GET_HW_INFO,
		"IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING":   C.IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING,
		"IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP":     C.IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP,
		"IOMMUFD_CMD_HWPT_INVALIDATE":           C.IOMMUFD_CMD_HWPT_INVALIDATE,
		"IOMMUFD_CMD_FAULT_QUEUE_ALLOC":         C.IOMMUFD_CMD_FAULT_QUEUE_ALLOC,
		"IOMMU_IOAS_MAP_FIXED_IOVA":             C.IOMMU_IOAS_MAP_FIXED_IOVA,
		"IOMMU_IOAS_MAP_WRITEABLE":              C.IOMMU_IOAS_MAP_WRITEABLE,
		"IOMMU_IOAS_MAP_READABLE":               C.IOMMU_IOAS_MAP_READABLE,
		"IOMMU_OPTION_RLIMIT_MODE":              C.IOMMU_OPTION_RLIMIT_MODE,
		"IOMMU_OPTION_HUGE_PAGES":               C.IOMMU_OPTION_HUGE_PAGES,
		"IOMMU_OPTION_OP_SET":                   C.IOMMU_OPTION_OP_SET,
		"IOMMU_OPTION_OP_GET":                   C.IOMMU_OPTION_OP_GET,
		"IOMMU_VFIO_IOAS_GET":                   C.IOMMU_VFIO_IOAS_GET,
		"IOMMU_VFIO_IOAS_SET":                   C.IOMMU_VFIO_IOAS_SET,
		"IOMMU_VFIO_IOAS_CLEAR":                 C.IOMMU_VFIO_IOAS_CLEAR,
		"IOMMU_HWPT_ALLOC_NEST_PARENT":          C.IOMMU_HWPT_ALLOC_NEST_PARENT,
		"IOMMU_HWPT_ALLOC_DIRTY_TRACKING":       C.IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
		"IOMMU_HWPT_FAULT_ID_VALID":             C.IOMMU_HWPT_FAULT_ID_VALID,
		"IOMMU_VTD_S1_SRE":                      C.IOMMU_VTD_S1_SRE,
		"IOMMU_VTD_S1_EAFE":                     C.IOMMU_VTD_S1_EAFE,
		"IOMMU_VTD_S1_WPE":                      C.IOMMU_VTD_S1_WPE,
		"IOMMU_HWPT_DATA_NONE":                  C.IOMMU_HWPT_DATA_NONE,
		"IOMMU_HWPT_DATA_VTD_S1":                C.IOMMU_HWPT_DATA_VTD_S1,
		"IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17": C.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
		"IOMMU_HW_INFO_TYPE_NONE":               C.IOMMU_HW_INFO_TYPE_NONE,
		"IOMMU_HW_INFO_TYPE_INTEL_VTD":          C.IOMMU_HW_INFO_TYPE_INTEL_VTD,
		"IOMMU_HW_CAP_DIRTY_TRACKING":           C.IOMMU_HW_CAP_DIRTY_TRACKING,
		"IOMMU_HW_CAP_PCI_PASID_EXEC":           C.IOMMU_HW_CAP_PCI_PASID_EXEC,
		"IOMMU_HW_CAP_PCI_PASID_PRIV":           C.IOMMU_HW_CAP_PCI_PASID_PRIV,
		"IOMMU_HWPT_DIRTY_TRACKING_ENABLE":      C.IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
		"IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR":  C.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
		"IOMMU_HWPT_INVALIDATE_DATA_VTD_S1":     C.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
		"IOMMU_VTD_INV_FLAGS_LEAF":              C.IOMMU_VTD_INV_FLAGS_LEAF,
		"IOMMU_PGFAULT_FLAGS_PASID_VALID":       C.IOMMU_PGFAULT_FLAGS_PASID_VALID,
		"IOMMU_PGFAULT_FLAGS_LAST_PAGE":         C.IOMMU_PGFAULT_FLAGS_LAST_PAGE,
		"IOMMU_PGFAULT_PERM_READ":               C.IOMMU_PGFAULT_PERM_READ,
		"IOMMU_PGFAULT_PERM_WRITE":              C.IOMMU_PGFAULT_PERM_WRITE,
		"IOMMU_PGFAULT_PERM_EXEC":               C.IOMMU_PGFAULT_PERM_EXEC,
		"IOMMU_PGFAULT_PERM_PRIV":               C.IOMMU_PGFAULT_PERM_PRIV,
		"IOMMUFD_PAGE_RESP_SUCCESS":             C.IOMMUFD_PAGE_RESP_SUCCESS,
		"IOMMUFD_PAGE_RESP_INVALID":             C.IOMMUFD_PAGE_RESP_INVALID,
	}
}
