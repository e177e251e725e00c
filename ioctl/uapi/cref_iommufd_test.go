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
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi/cref"
)

// iommufdMirror pairs a Go struct of iommufd.go with the C struct it
// mirrors. cFields names the C field behind each Go field in declaration
// order (structs.HostLayout excluded, reserved _ fields included). since is
// the first mainline release for structs newer than the checked header,
// which the header therefore lacks.
type iommufdMirror struct {
	v       any
	c       string
	since   string
	cFields []string
}

func iommufdMirrors() []iommufdMirror {
	return []iommufdMirror{
		{IOMMUDestroy{}, "iommu_destroy", "", []string{"size", "id"}},
		{IOMMUIOASAlloc{}, "iommu_ioas_alloc", "", []string{"size", "flags", "out_ioas_id"}},
		{IOMMUIOVARange{}, "iommu_iova_range", "", []string{"start", "last"}},
		{IOMMUIOASIOVARanges{}, "iommu_ioas_iova_ranges", "",
			[]string{"size", "ioas_id", "num_iovas", "__reserved", "allowed_iovas", "out_iova_alignment"}},
		{IOMMUIOASAllowIOVAs{}, "iommu_ioas_allow_iovas", "",
			[]string{"size", "ioas_id", "num_iovas", "__reserved", "allowed_iovas"}},
		{IOMMUIOASMap{}, "iommu_ioas_map", "",
			[]string{"size", "flags", "ioas_id", "__reserved", "user_va", "length", "iova"}},
		{IOMMUIOASMapFile{}, "iommu_ioas_map_file", "6.13",
			[]string{"size", "flags", "ioas_id", "fd", "start", "length", "iova"}},
		{IOMMUIOASCopy{}, "iommu_ioas_copy", "",
			[]string{"size", "flags", "dst_ioas_id", "src_ioas_id", "length", "dst_iova", "src_iova"}},
		{IOMMUIOASUnmap{}, "iommu_ioas_unmap", "", []string{"size", "ioas_id", "iova", "length"}},
		{IOMMUOption{}, "iommu_option", "",
			[]string{"size", "option_id", "op", "__reserved", "object_id", "val64"}},
		{IOMMUVFIOIOAS{}, "iommu_vfio_ioas", "", []string{"size", "ioas_id", "op", "__reserved"}},
		{IOMMUHWPTVTDS1{}, "iommu_hwpt_vtd_s1", "", []string{"flags", "pgtbl_addr", "addr_width", "__reserved"}},
		{IOMMUHWPTARMSMMUv3{}, "iommu_hwpt_arm_smmuv3", "6.13", []string{"ste"}},
		{IOMMUHWPTAlloc{}, "iommu_hwpt_alloc", "",
			[]string{"size", "flags", "dev_id", "pt_id", "out_hwpt_id", "__reserved",
				"data_type", "data_len", "data_uptr", "fault_id", "__reserved2"}},
		{IOMMUHWInfoVTD{}, "iommu_hw_info_vtd", "", []string{"flags", "__reserved", "cap_reg", "ecap_reg"}},
		{IOMMUHWInfoARMSMMUv3{}, "iommu_hw_info_arm_smmuv3", "6.13",
			[]string{"flags", "__reserved", "idr", "iidr", "aidr"}},
		{IOMMUHWInfoTegra241CMDQV{}, "iommu_hw_info_tegra241_cmdqv", "6.17",
			[]string{"flags", "version", "log2vcmdqs", "log2vsids", "__reserved"}},
		{IOMMUHWInfo{}, "iommu_hw_info", "",
			[]string{"size", "flags", "dev_id", "data_len", "data_uptr",
				"out_data_type", "out_max_pasid_log2", "__reserved", "out_capabilities"}},
		{IOMMUHWPTSetDirtyTracking{}, "iommu_hwpt_set_dirty_tracking", "",
			[]string{"size", "flags", "hwpt_id", "__reserved"}},
		{IOMMUHWPTGetDirtyBitmap{}, "iommu_hwpt_get_dirty_bitmap", "",
			[]string{"size", "hwpt_id", "flags", "__reserved", "iova", "length", "page_size", "data"}},
		{IOMMUHWPTVTDS1Invalidate{}, "iommu_hwpt_vtd_s1_invalidate", "",
			[]string{"addr", "npages", "flags", "__reserved"}},
		{IOMMUVIOMMUARMSMMUv3Invalidate{}, "iommu_viommu_arm_smmuv3_invalidate", "6.14", []string{"cmd"}},
		{IOMMUHWPTInvalidate{}, "iommu_hwpt_invalidate", "",
			[]string{"size", "hwpt_id", "data_uptr", "data_type", "entry_len", "entry_num", "__reserved"}},
		{IOMMUHWPTPgfault{}, "iommu_hwpt_pgfault", "",
			[]string{"flags", "dev_id", "pasid", "grpid", "perm", "__reserved", "addr", "length", "cookie"}},
		{IOMMUHWPTPageResponse{}, "iommu_hwpt_page_response", "", []string{"cookie", "code"}},
		{IOMMUFaultAlloc{}, "iommu_fault_alloc", "", []string{"size", "flags", "out_fault_id", "out_fault_fd"}},
		{IOMMUVIOMMUTegra241CMDQV{}, "iommu_viommu_tegra241_cmdqv", "6.17",
			[]string{"out_vintf_mmap_offset", "out_vintf_mmap_length"}},
		{IOMMUVIOMMUAlloc{}, "iommu_viommu_alloc", "6.13",
			[]string{"size", "flags", "type", "dev_id", "hwpt_id", "out_viommu_id", "data_len", "__reserved", "data_uptr"}},
		{IOMMUVDeviceAlloc{}, "iommu_vdevice_alloc", "6.13",
			[]string{"size", "viommu_id", "dev_id", "out_vdevice_id", "virt_id"}},
		{IOMMUIOASChangeProcess{}, "iommu_ioas_change_process", "6.13", []string{"size", "__reserved"}},
		{IOMMUFDVEventHeader{}, "iommufd_vevent_header", "6.15", []string{"flags", "sequence"}},
		{IOMMUVEventARMSMMUv3{}, "iommu_vevent_arm_smmuv3", "6.15", []string{"evt"}},
		{IOMMUVEventTegra241CMDQV{}, "iommu_vevent_tegra241_cmdqv", "6.17", []string{"lvcmdq_err_map"}},
		{IOMMUVEventQAlloc{}, "iommu_veventq_alloc", "6.15",
			[]string{"size", "flags", "viommu_id", "type", "veventq_depth", "out_veventq_id", "out_veventq_fd", "__reserved"}},
		{IOMMUHWQueueAlloc{}, "iommu_hw_queue_alloc", "6.17",
			[]string{"size", "flags", "viommu_id", "type", "index", "out_hw_queue_id", "nesting_parent_iova", "length"}},
	}
}

// iommufdLater lists the request numbers and constants that mainline added
// after 6.12: the checked header lacks them, and only they may be missing.
func iommufdLater() map[string]bool {
	return map[string]bool{
		"IOMMUFD_CMD_IOAS_MAP_FILE": true, "IOMMUFD_CMD_VIOMMU_ALLOC": true, "IOMMUFD_CMD_VDEVICE_ALLOC": true,
		"IOMMUFD_CMD_IOAS_CHANGE_PROCESS": true, "IOMMUFD_CMD_VEVENTQ_ALLOC": true, "IOMMUFD_CMD_HW_QUEUE_ALLOC": true,
		"IOMMU_IOAS_MAP_FILE": true, "IOMMU_VIOMMU_ALLOC": true, "IOMMU_VDEVICE_ALLOC": true,
		"IOMMU_IOAS_CHANGE_PROCESS": true, "IOMMU_VEVENTQ_ALLOC": true, "IOMMU_HW_QUEUE_ALLOC": true,
		"IOMMU_HWPT_ALLOC_PASID": true, "IOMMU_HWPT_DATA_ARM_SMMUV3": true,
		"IOMMU_HW_INFO_TYPE_DEFAULT": true, "IOMMU_HW_INFO_TYPE_ARM_SMMUV3": true, "IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV": true,
		"IOMMU_HW_INFO_TYPE_AMD": true, "IOMMU_HW_INFO_FLAG_INPUT_TYPE": true, "IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3": true,
		"IOMMU_VIOMMU_TYPE_DEFAULT": true, "IOMMU_VIOMMU_TYPE_ARM_SMMUV3": true, "IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV": true,
		"IOMMU_VEVENTQ_FLAG_LOST_EVENTS": true, "IOMMU_VEVENTQ_TYPE_DEFAULT": true, "IOMMU_VEVENTQ_TYPE_ARM_SMMUV3": true,
		"IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV": true, "IOMMU_HW_QUEUE_TYPE_DEFAULT": true, "IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV": true,
	}
}

func iommufdRequests() map[string]int64 {
	return map[string]int64{
		"IOMMU_DESTROY":                 IOMMU_DESTROY,
		"IOMMU_IOAS_ALLOC":              IOMMU_IOAS_ALLOC,
		"IOMMU_IOAS_ALLOW_IOVAS":        IOMMU_IOAS_ALLOW_IOVAS,
		"IOMMU_IOAS_COPY":               IOMMU_IOAS_COPY,
		"IOMMU_IOAS_IOVA_RANGES":        IOMMU_IOAS_IOVA_RANGES,
		"IOMMU_IOAS_MAP":                IOMMU_IOAS_MAP,
		"IOMMU_IOAS_UNMAP":              IOMMU_IOAS_UNMAP,
		"IOMMU_OPTION":                  IOMMU_OPTION,
		"IOMMU_VFIO_IOAS":               IOMMU_VFIO_IOAS,
		"IOMMU_HWPT_ALLOC":              IOMMU_HWPT_ALLOC,
		"IOMMU_GET_HW_INFO":             IOMMU_GET_HW_INFO,
		"IOMMU_HWPT_SET_DIRTY_TRACKING": IOMMU_HWPT_SET_DIRTY_TRACKING,
		"IOMMU_HWPT_GET_DIRTY_BITMAP":   IOMMU_HWPT_GET_DIRTY_BITMAP,
		"IOMMU_HWPT_INVALIDATE":         IOMMU_HWPT_INVALIDATE,
		"IOMMU_FAULT_QUEUE_ALLOC":       IOMMU_FAULT_QUEUE_ALLOC,
		"IOMMU_IOAS_MAP_FILE":           IOMMU_IOAS_MAP_FILE,
		"IOMMU_VIOMMU_ALLOC":            IOMMU_VIOMMU_ALLOC,
		"IOMMU_VDEVICE_ALLOC":           IOMMU_VDEVICE_ALLOC,
		"IOMMU_IOAS_CHANGE_PROCESS":     IOMMU_IOAS_CHANGE_PROCESS,
		"IOMMU_VEVENTQ_ALLOC":           IOMMU_VEVENTQ_ALLOC,
		"IOMMU_HW_QUEUE_ALLOC":          IOMMU_HW_QUEUE_ALLOC,
	}
}

func iommufdConstants() map[string]int64 {
	return map[string]int64{
		"IOMMUFD_TYPE":                            IOMMUFD_TYPE,
		"IOMMUFD_CMD_BASE":                        IOMMUFD_CMD_BASE,
		"IOMMUFD_CMD_DESTROY":                     IOMMUFD_CMD_DESTROY,
		"IOMMUFD_CMD_IOAS_ALLOC":                  IOMMUFD_CMD_IOAS_ALLOC,
		"IOMMUFD_CMD_IOAS_ALLOW_IOVAS":            IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
		"IOMMUFD_CMD_IOAS_COPY":                   IOMMUFD_CMD_IOAS_COPY,
		"IOMMUFD_CMD_IOAS_IOVA_RANGES":            IOMMUFD_CMD_IOAS_IOVA_RANGES,
		"IOMMUFD_CMD_IOAS_MAP":                    IOMMUFD_CMD_IOAS_MAP,
		"IOMMUFD_CMD_IOAS_UNMAP":                  IOMMUFD_CMD_IOAS_UNMAP,
		"IOMMUFD_CMD_OPTION":                      IOMMUFD_CMD_OPTION,
		"IOMMUFD_CMD_VFIO_IOAS":                   IOMMUFD_CMD_VFIO_IOAS,
		"IOMMUFD_CMD_HWPT_ALLOC":                  IOMMUFD_CMD_HWPT_ALLOC,
		"IOMMUFD_CMD_GET_HW_INFO":                 IOMMUFD_CMD_GET_HW_INFO,
		"IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING":     IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING,
		"IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP":       IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP,
		"IOMMUFD_CMD_HWPT_INVALIDATE":             IOMMUFD_CMD_HWPT_INVALIDATE,
		"IOMMUFD_CMD_FAULT_QUEUE_ALLOC":           IOMMUFD_CMD_FAULT_QUEUE_ALLOC,
		"IOMMUFD_CMD_IOAS_MAP_FILE":               IOMMUFD_CMD_IOAS_MAP_FILE,
		"IOMMUFD_CMD_VIOMMU_ALLOC":                IOMMUFD_CMD_VIOMMU_ALLOC,
		"IOMMUFD_CMD_VDEVICE_ALLOC":               IOMMUFD_CMD_VDEVICE_ALLOC,
		"IOMMUFD_CMD_IOAS_CHANGE_PROCESS":         IOMMUFD_CMD_IOAS_CHANGE_PROCESS,
		"IOMMUFD_CMD_VEVENTQ_ALLOC":               IOMMUFD_CMD_VEVENTQ_ALLOC,
		"IOMMUFD_CMD_HW_QUEUE_ALLOC":              IOMMUFD_CMD_HW_QUEUE_ALLOC,
		"IOMMU_IOAS_MAP_FIXED_IOVA":               IOMMU_IOAS_MAP_FIXED_IOVA,
		"IOMMU_IOAS_MAP_WRITEABLE":                IOMMU_IOAS_MAP_WRITEABLE,
		"IOMMU_IOAS_MAP_READABLE":                 IOMMU_IOAS_MAP_READABLE,
		"IOMMU_OPTION_RLIMIT_MODE":                IOMMU_OPTION_RLIMIT_MODE,
		"IOMMU_OPTION_HUGE_PAGES":                 IOMMU_OPTION_HUGE_PAGES,
		"IOMMU_OPTION_OP_SET":                     IOMMU_OPTION_OP_SET,
		"IOMMU_OPTION_OP_GET":                     IOMMU_OPTION_OP_GET,
		"IOMMU_VFIO_IOAS_GET":                     IOMMU_VFIO_IOAS_GET,
		"IOMMU_VFIO_IOAS_SET":                     IOMMU_VFIO_IOAS_SET,
		"IOMMU_VFIO_IOAS_CLEAR":                   IOMMU_VFIO_IOAS_CLEAR,
		"IOMMU_HWPT_ALLOC_NEST_PARENT":            IOMMU_HWPT_ALLOC_NEST_PARENT,
		"IOMMU_HWPT_ALLOC_DIRTY_TRACKING":         IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
		"IOMMU_HWPT_FAULT_ID_VALID":               IOMMU_HWPT_FAULT_ID_VALID,
		"IOMMU_HWPT_ALLOC_PASID":                  IOMMU_HWPT_ALLOC_PASID,
		"IOMMU_VTD_S1_SRE":                        IOMMU_VTD_S1_SRE,
		"IOMMU_VTD_S1_EAFE":                       IOMMU_VTD_S1_EAFE,
		"IOMMU_VTD_S1_WPE":                        IOMMU_VTD_S1_WPE,
		"IOMMU_HWPT_DATA_NONE":                    IOMMU_HWPT_DATA_NONE,
		"IOMMU_HWPT_DATA_VTD_S1":                  IOMMU_HWPT_DATA_VTD_S1,
		"IOMMU_HWPT_DATA_ARM_SMMUV3":              IOMMU_HWPT_DATA_ARM_SMMUV3,
		"IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17":   IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
		"IOMMU_HW_INFO_TYPE_NONE":                 IOMMU_HW_INFO_TYPE_NONE,
		"IOMMU_HW_INFO_TYPE_DEFAULT":              IOMMU_HW_INFO_TYPE_DEFAULT,
		"IOMMU_HW_INFO_TYPE_INTEL_VTD":            IOMMU_HW_INFO_TYPE_INTEL_VTD,
		"IOMMU_HW_INFO_TYPE_ARM_SMMUV3":           IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
		"IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV":       IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV,
		"IOMMU_HW_CAP_DIRTY_TRACKING":             IOMMU_HW_CAP_DIRTY_TRACKING,
		"IOMMU_HW_CAP_PCI_PASID_EXEC":             IOMMU_HW_CAP_PCI_PASID_EXEC,
		"IOMMU_HW_CAP_PCI_PASID_PRIV":             IOMMU_HW_CAP_PCI_PASID_PRIV,
		"IOMMU_HW_INFO_FLAG_INPUT_TYPE":           IOMMU_HW_INFO_FLAG_INPUT_TYPE,
		"IOMMU_HWPT_DIRTY_TRACKING_ENABLE":        IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
		"IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR":    IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
		"IOMMU_HWPT_INVALIDATE_DATA_VTD_S1":       IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
		"IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3": IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
		"IOMMU_VTD_INV_FLAGS_LEAF":                IOMMU_VTD_INV_FLAGS_LEAF,
		"IOMMU_PGFAULT_FLAGS_PASID_VALID":         IOMMU_PGFAULT_FLAGS_PASID_VALID,
		"IOMMU_PGFAULT_FLAGS_LAST_PAGE":           IOMMU_PGFAULT_FLAGS_LAST_PAGE,
		"IOMMU_PGFAULT_PERM_READ":                 IOMMU_PGFAULT_PERM_READ,
		"IOMMU_PGFAULT_PERM_WRITE":                IOMMU_PGFAULT_PERM_WRITE,
		"IOMMU_PGFAULT_PERM_EXEC":                 IOMMU_PGFAULT_PERM_EXEC,
		"IOMMU_PGFAULT_PERM_PRIV":                 IOMMU_PGFAULT_PERM_PRIV,
		"IOMMUFD_PAGE_RESP_SUCCESS":               IOMMUFD_PAGE_RESP_SUCCESS,
		"IOMMUFD_PAGE_RESP_INVALID":               IOMMUFD_PAGE_RESP_INVALID,
		"IOMMU_VIOMMU_TYPE_DEFAULT":               IOMMU_VIOMMU_TYPE_DEFAULT,
		"IOMMU_VIOMMU_TYPE_ARM_SMMUV3":            IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
		"IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV":        IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
		"IOMMU_VEVENTQ_FLAG_LOST_EVENTS":          IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
		"IOMMU_VEVENTQ_TYPE_DEFAULT":              IOMMU_VEVENTQ_TYPE_DEFAULT,
		"IOMMU_VEVENTQ_TYPE_ARM_SMMUV3":           IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
		"IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV":       IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
		"IOMMU_HW_QUEUE_TYPE_DEFAULT":             IOMMU_HW_QUEUE_TYPE_DEFAULT,
		"IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV":      IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
	}
}

// goFieldMatches reports whether a Go field name spells a C field name:
// _ for __reserved*, otherwise the same letters with the underscores gone.
func goFieldMatches(goName, cName string) bool {
	if goName == "_" {
		return strings.HasPrefix(cName, "__reserved")
	}
	return strings.EqualFold(goName, strings.ReplaceAll(cName, "_", ""))
}

func TestCrefIOMMUFDLayouts(t *testing.T) {
	cLayouts := map[string]cref.Layout{}
	for _, l := range cref.IOMMUFDLayouts() {
		cLayouts[l.Name] = l
	}
	mirrored := map[string]bool{}
	for _, m := range iommufdMirrors() {
		typ := reflect.TypeOf(m.v)
		mirrored[m.c] = true
		l, ok := cLayouts[m.c]
		if !ok {
			if m.since == "" {
				t.Errorf("struct %s (mirrored by %s) is not in the header", m.c, typ)
			}
			continue
		}
		if typ.Size() != l.Size {
			t.Errorf("%s: size %d, C struct %s has %d", typ, typ.Size(), m.c, l.Size)
		}
		var goFields []reflect.StructField
		for i := range typ.NumField() {
			if f := typ.Field(i); f.Type != hostLayout {
				goFields = append(goFields, f)
			}
		}
		if len(goFields) != len(m.cFields) {
			t.Errorf("%s: %d fields, the table names %d C fields", typ, len(goFields), len(m.cFields))
			continue
		}
		if len(l.Fields) != len(m.cFields) {
			t.Errorf("%s: C struct %s has %d fields, the table names %d", typ, m.c, len(l.Fields), len(m.cFields))
		}
		for i, f := range goFields {
			cName := m.cFields[i]
			off, ok := l.Fields[cName]
			if !ok {
				t.Errorf("%s.%s: C struct %s has no field %s", typ, f.Name, m.c, cName)
				continue
			}
			if !goFieldMatches(f.Name, cName) {
				t.Errorf("%s field %d is named %s, C field is %s", typ, i, f.Name, cName)
			}
			if f.Offset != off {
				t.Errorf("%s.%s: offset %d, C %s.%s is at %d", typ, f.Name, f.Offset, m.c, cName, off)
			}
		}
	}
	for name := range cLayouts {
		if !mirrored[name] {
			t.Errorf("struct %s is in the header but not in the comparison table", name)
		}
	}

	// The minimum sizes: offsetofend of the field IOCTL_OP names.
	if l, ok := cLayouts["iommu_hwpt_alloc"]; ok && l.Fields["data_type"] != MinSizeIOMMUHWPTAlloc {
		t.Errorf("MinSizeIOMMUHWPTAlloc = %d, C offsetofend(__reserved) = %d", MinSizeIOMMUHWPTAlloc, l.Fields["data_type"])
	}
	if l, ok := cLayouts["iommu_hw_info"]; ok && l.Fields["out_capabilities"] != MinSizeIOMMUHWInfo {
		t.Errorf("MinSizeIOMMUHWInfo = %d, C offsetofend(__reserved) = %d", MinSizeIOMMUHWInfo, l.Fields["out_capabilities"])
	}
}

// TestCrefIOMMUFDMirrorsAll keeps the table complete on the Go side: every
// struct type declared in iommufd.go is in it.
func TestCrefIOMMUFDMirrorsAll(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "iommufd.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	for _, m := range iommufdMirrors() {
		inTable[reflect.TypeOf(m.v).Name()] = true
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, s := range g.Specs {
			ts := s.(*ast.TypeSpec)
			if _, isStruct := ts.Type.(*ast.StructType); isStruct && !inTable[ts.Name.Name] {
				t.Errorf("%s is declared in iommufd.go but not in the comparison table", ts.Name.Name)
			}
		}
	}
}

func TestCrefIOMMUFDRequests(t *testing.T) {
	checkIOMMUFDValues(t, "request", iommufdRequests(), func() map[string]int64 {
		m := map[string]int64{}
		for _, r := range cref.IOMMUFDRequests() {
			m[r.Name] = int64(r.Value)
		}
		return m
	}())
}

func TestCrefIOMMUFDConstants(t *testing.T) {
	checkIOMMUFDValues(t, "constant", iommufdConstants(), cref.IOMMUFDConstants())
}

// checkIOMMUFDValues compares Go values with the header's: every name the
// header has must be in the Go table with the same value, and a Go name
// the header lacks must be one that mainline added after 6.12.
func checkIOMMUFDValues(t *testing.T, what string, goValues, cValues map[string]int64) {
	t.Helper()
	for name, cv := range cValues {
		gv, ok := goValues[name]
		if !ok {
			t.Errorf("%s %s is in the header but not in the comparison table", what, name)
			continue
		}
		if gv != cv {
			t.Errorf("%s %s = %#x, C has %#x", what, name, gv, cv)
		}
	}
	later := iommufdLater()
	for name := range goValues {
		if _, ok := cValues[name]; !ok && !later[name] {
			t.Errorf("%s %s is not in the header and not marked as later than 6.12", what, name)
		}
	}
}

// TestCrefIOMMUFDHeaderComplete reads linux/iommufd.h itself, so that a
// struct, request or enum member that cref does not export fails too.
func TestCrefIOMMUFDHeaderComplete(t *testing.T) {
	src := readIOMMUFDHeader(t)
	has := func(names []string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	var layouts, requests, constants []string
	for _, l := range cref.IOMMUFDLayouts() {
		layouts = append(layouts, l.Name)
	}
	for _, r := range cref.IOMMUFDRequests() {
		requests = append(requests, r.Name)
	}
	for n := range cref.IOMMUFDConstants() {
		constants = append(constants, n)
	}
	exported := map[string]map[string]bool{"struct": has(layouts), "request": has(requests), "constant": has(constants)}

	check := func(what string, re *regexp.Regexp, text string) int {
		n := 0
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			n++
			if !exported[what][m[1]] {
				t.Errorf("%s %s is in the header but cref does not export it", what, m[1])
			}
		}
		return n
	}
	nStructs := check("struct", regexp.MustCompile(`(?m)^struct (\w+) \{`), src)
	reqs := check("request", regexp.MustCompile(`(?m)^#define (IOMMU_\w+)\s+(?:\\\n\s*)?_IO\(`), src)
	var consts int
	for _, body := range regexp.MustCompile(`(?ms)^enum\s*\w*\s*\{(.*?)^\};`).FindAllStringSubmatch(src, -1) {
		consts += check("constant", regexp.MustCompile(`(?m)^\s*([A-Z][A-Z0-9_]*)\s*[=,]`), body[1])
	}
	if nStructs == 0 || reqs == 0 || consts == 0 {
		t.Fatalf("found %d structs, %d requests, %d enum members: the header did not parse", nStructs, reqs, consts)
	}
	t.Logf("header: %d structs, %d requests, %d enum members", nStructs, reqs, consts)
}

// readIOMMUFDHeader finds linux/iommufd.h in the include directories that
// CGO_CFLAGS names, the ones cref was compiled with.
func readIOMMUFDHeader(t *testing.T) string {
	t.Helper()
	fields := strings.Fields(os.Getenv("CGO_CFLAGS"))
	var dirs []string
	for i, f := range fields {
		switch {
		case (f == "-isystem" || f == "-I") && i+1 < len(fields):
			dirs = append(dirs, fields[i+1])
		case strings.HasPrefix(f, "-I") && len(f) > 2:
			dirs = append(dirs, f[2:])
		}
	}
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "linux", "iommufd.h")); err == nil {
			return string(b)
		}
	}
	t.Fatalf("no linux/iommufd.h under the CGO_CFLAGS include directories %q", dirs)
	return ""
}
