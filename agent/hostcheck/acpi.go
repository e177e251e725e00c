package hostcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ACPI IOMMU tables, read from /sys/firmware/acpi/tables (root only, mode
// 0400): what the firmware tells the kernel about its IOMMUs. Layouts per
// the kernel's include/acpi/actbl1.h (struct acpi_table_dmar), actbl2.h
// (acpi_table_ivrs, acpi_table_iort) and include/linux/dmar.h (the DMAR
// flags); all little-endian. A table's summary names its units and the
// flags that decide interrupt remapping and pre-boot DMA protection.

// acpiHeader is the size of struct acpi_table_header.
const acpiHeader = 36

// maxTable bounds a table read: IOMMU tables are a few KiB; a large
// server's DMAR or IORT stays far under this.
const maxTable = 1 << 20

var errShortTable = errors.New("table shorter than its header says")

// tableBody checks the signature and length of an ACPI table and returns
// it cut to the length its header gives.
func tableBody(sig string, b []byte, min int) ([]byte, error) {
	if len(b) < acpiHeader || string(b[:4]) != sig {
		return nil, fmt.Errorf("%s: not an ACPI %s table (%d bytes)", sig, sig, len(b))
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	if n < min || n > len(b) {
		return nil, fmt.Errorf("%s: length %d, %d bytes read: %w", sig, n, len(b), errShortTable)
	}
	return b[:n], nil
}

// DMAR flags (include/linux/dmar.h).
const (
	dmarIntrRemap     = 1 << 0 // DMAR_INTR_REMAP
	dmarX2APICOptOut  = 1 << 1 // DMAR_X2APIC_OPT_OUT
	dmarPlatformOptIn = 1 << 2 // DMAR_PLATFORM_OPT_IN: pre-boot DMA protection
)

// summarizeDMAR describes a DMAR table: host address width, flags, and its
// remapping structures by type (ACPI_DMAR_TYPE_*).
func summarizeDMAR(b []byte) (string, error) {
	b, err := tableBody("DMAR", b, 48)
	if err != nil {
		return "", err
	}
	width, flags := int(b[36])+1, b[37]
	var fl []string
	if flags&dmarIntrRemap != 0 {
		fl = append(fl, "INTR_REMAP")
	}
	if flags&dmarX2APICOptOut != 0 {
		fl = append(fl, "X2APIC_OPT_OUT")
	}
	if flags&dmarPlatformOptIn != 0 {
		fl = append(fl, "PLATFORM_OPT_IN")
	}
	counts, err := countEntries(b[48:], 0, 2, func(t int) string {
		return [...]string{"DRHD", "RMRR", "ATSR", "RHSA", "ANDD", "SATC", "SIDP"}[t]
	}, 7)
	s := fmt.Sprintf("DMAR: %d-bit host addresses, %s", width, counts)
	if len(fl) > 0 {
		s += ", flags " + strings.Join(fl, " ")
	} else {
		s += ", no flags (INTR_REMAP clear: the firmware does not support interrupt remapping)"
	}
	return s, err
}

// IVRS IVinfo bits (amd_iommu_types.h IOMMU_IVINFO_*, actbl2.h).
const (
	ivinfoEFRSup   = 1 << 0  // IOMMU_IVINFO_EFRSUP: IVHD types 11h/40h carry the EFR
	ivinfoDMARemap = 1 << 1  // IOMMU_IVINFO_DMA_REMAP: pre-boot DMA remapping
	ivinfoATSResv  = 1 << 22 // ACPI_IVRS_ATS_RESERVED
)

// summarizeIVRS describes an IVRS table: IVinfo's address sizes and flags,
// and its IVHD (10h, 11h, 40h) and IVMD (20h-22h) blocks.
func summarizeIVRS(b []byte) (string, error) {
	b, err := tableBody("IVRS", b, 48)
	if err != nil {
		return "", err
	}
	info := binary.LittleEndian.Uint32(b[36:])
	pa, va := info>>8&0x7f, info>>15&0x7f // ACPI_IVRS_PHYSICAL_SIZE, _VIRTUAL_SIZE
	var ivhd, ivmd []string
	var perr error
	for off := 48; off < len(b); {
		if off+4 > len(b) {
			perr = fmt.Errorf("IVRS: block at %d: %w", off, errShortTable)
			break
		}
		typ, n := b[off], int(binary.LittleEndian.Uint16(b[off+2:]))
		if n < 4 || off+n > len(b) {
			perr = fmt.Errorf("IVRS: block type %#x at %d, length %d: %w", typ, off, n, errShortTable)
			break
		}
		switch {
		case typ == 0x10 || typ == 0x11 || typ == 0x40:
			ivhd = append(ivhd, fmt.Sprintf("%#x", typ))
		case typ >= 0x20 && typ <= 0x22:
			ivmd = append(ivmd, fmt.Sprintf("%#x", typ))
		}
		off += n
	}
	s := fmt.Sprintf("IVRS: IVHD blocks of type %s", listOrNone(ivhd))
	if len(ivmd) > 0 {
		s += fmt.Sprintf(", %d IVMD (reserved memory)", len(ivmd))
	}
	// QEMU's amd-iommu leaves VAsize 0; the kernel then keeps its own
	// maximum (max_vasize only lowers it).
	s += fmt.Sprintf(", %d-bit physical addresses", pa)
	if va != 0 {
		s += fmt.Sprintf(", %d-bit virtual addresses", va)
	} else {
		s += ", no virtual address size given"
	}
	if info&ivinfoEFRSup != 0 {
		s += ", EFRSup"
	}
	if info&ivinfoDMARemap != 0 {
		s += ", DMA remapping since boot"
	}
	if info&ivinfoATSResv != 0 {
		s += ", ATS translation range reserved"
	}
	return s, perr
}

// summarizeIORT describes an IORT table: its nodes by type
// (ACPI_IORT_NODE_*), and counts its SMMU nodes (v1/v2 and v3): an IORT
// alone does not mean an SMMU, since Arm firmware lists its GIC ITS and
// root complexes there too (QEMU's virt machine always has one).
func summarizeIORT(b []byte) (string, int, error) {
	b, err := tableBody("IORT", b, 48)
	if err != nil {
		return "", -1, err
	}
	count := int(binary.LittleEndian.Uint32(b[36:]))
	off := int(binary.LittleEndian.Uint32(b[40:]))
	names := [...]string{"ITS group", "named component", "root complex", "SMMUv1/v2", "SMMUv3", "PMCG", "RMR", "IWB"}
	n := map[string]int{}
	var order []string
	var perr error
	for i := 0; i < count; i++ {
		if off < 48 || off+4 > len(b) {
			perr = fmt.Errorf("IORT: node %d of %d at %d: %w", i, count, off, errShortTable)
			break
		}
		typ, l := int(b[off]), int(binary.LittleEndian.Uint16(b[off+1:]))
		if l < 4 || off+l > len(b) {
			perr = fmt.Errorf("IORT: node %d type %d at %d, length %d: %w", i, typ, off, l, errShortTable)
			break
		}
		name := "type " + strconv.Itoa(typ)
		if typ < len(names) {
			name = names[typ]
		}
		if n[name] == 0 {
			order = append(order, name)
		}
		n[name]++
		off += l
	}
	var parts []string
	for _, name := range order {
		parts = append(parts, fmt.Sprintf("%d %s", n[name], name))
	}
	s := "IORT: " + listOrNone(parts)
	smmus := n["SMMUv3"] + n["SMMUv1/v2"]
	if smmus == 0 {
		s += " (no SMMU node)"
	}
	return s, smmus, perr
}

// countEntries counts ACPI sub-structures (u16 type at +0, u16 length at
// lenOff) by their names, in first-seen order; types at or above known are
// counted as "type N".
func countEntries(b []byte, typeOff, lenOff int, name func(int) string, known int) (string, error) {
	n := map[string]int{}
	var order []string
	for off := 0; off < len(b); {
		if off+lenOff+2 > len(b) {
			return countsText(order, n), fmt.Errorf("entry at %d: %w", off, errShortTable)
		}
		typ := int(binary.LittleEndian.Uint16(b[off+typeOff:]))
		l := int(binary.LittleEndian.Uint16(b[off+lenOff:]))
		if l < 4 || off+l > len(b) {
			return countsText(order, n), fmt.Errorf("entry type %d at %d, length %d: %w", typ, off, l, errShortTable)
		}
		s := "type " + strconv.Itoa(typ)
		if typ < known {
			s = name(typ)
		}
		if n[s] == 0 {
			order = append(order, s)
		}
		n[s]++
		off += l
	}
	return countsText(order, n), nil
}

func countsText(order []string, n map[string]int) string {
	var parts []string
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
	}
	return listOrNone(parts)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// readTable reads one table file, bounded.
func readTable(path string) ([]byte, error) {
	f, ok, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no %s", path)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTable+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxTable {
		return nil, fmt.Errorf("%s: longer than %d bytes", path, maxTable)
	}
	return b, nil
}

// summarizeTable reads and describes the IOMMU table name at path; smmus
// is the IORT's SMMU node count, -1 for other tables or when unknown.
func summarizeTable(name, path string) (summary string, smmus int, err error) {
	b, err := readTable(path)
	if err != nil {
		return "", -1, err
	}
	switch name {
	case "DMAR":
		s, err := summarizeDMAR(b)
		return s, -1, err
	case "IVRS":
		s, err := summarizeIVRS(b)
		return s, -1, err
	case "IORT":
		return summarizeIORT(b)
	}
	return "", -1, fmt.Errorf("no summary for table %s", name)
}
