package hwinfo

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// AMDVi is an AMD-Vi IOMMU's hardware information: the Extended Feature
// Registers, from /sys/class/iommu/ivhdN/amd-iommu/{cap,features}, or
// struct iommu_hw_info_amd from IOMMU_GET_HW_INFO (type
// IOMMU_HW_INFO_TYPE_AMD, 4: kernels after 6.12 with AMD's iommufd support;
// 6.12 reports type NONE for AMD-Vi).
//
// Names follow drivers/iommu/amd/amd_iommu_types.h (FEATURE_*, IOMMU_CAP_*,
// IOMMU_EFR_*_SHIFT) and the AMD I/O Virtualization Technology (IOMMU)
// Specification (48882 rev 3.x), MMIO 0030h (EFR) and 01A0h (EFR2). Bits
// the kernel gives no name are printed as "bitN", not guessed at. The EFR
// the kernel shows is the one it uses: the AND over every unit (its global
// amd_iommu_efr), so all ivhdN show the same value.
type AMDVi struct {
	// Cap is the unit's PCI capability header dword (sysfs cap); 0 when
	// read through IOMMU_GET_HW_INFO, which does not report it.
	Cap  AMDCap
	EFR  EFR
	EFR2 EFR2
}

// amdSize is sizeof(struct iommu_hw_info_amd): efr, efr2.
const amdSize = 16

// DecodeAMD decodes the data IOMMU_GET_HW_INFO wrote for
// IOMMU_HW_INFO_TYPE_AMD, in the host's byte order. Bytes past the struct
// are ignored. Cap stays 0.
func DecodeAMD(data []byte) (AMDVi, error) {
	if len(data) < amdSize {
		return AMDVi{}, fmt.Errorf("hwinfo: AMD hw_info is %d bytes, want %d: %w", len(data), amdSize, io.ErrUnexpectedEOF)
	}
	ne := binary.NativeEndian
	return AMDVi{EFR: EFR(ne.Uint64(data[0:])), EFR2: EFR2(ne.Uint64(data[8:]))}, nil
}

// MarshalBinary encodes a as struct iommu_hw_info_amd in the host's byte
// order, the inverse of DecodeAMD (Cap is not part of it).
func (a AMDVi) MarshalBinary() ([]byte, error) {
	b := make([]byte, amdSize)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], uint64(a.EFR))
	ne.PutUint64(b[8:], uint64(a.EFR2))
	return b, nil
}

// ParseAMDViRegs parses the cap and features files of
// /sys/class/iommu/ivhdN/amd-iommu. cap is "%x\n". features is
// "EFR:EFR2\n" ("%llx:%llx", amd_iommu_efr then amd_iommu_efr2) on the
// kernels this agent supports (6.12 and later), or a lone "EFR\n" on
// kernels before EFR2 support (before 6.0). Kernels from 6.0 until the
// 2023 rework to the global amd_iommu_efr printed the two the other way
// round ("features2:features"); on those, EFR and EFR2 come out swapped.
// Errors wrap strconv.ErrSyntax or strconv.ErrRange.
func ParseAMDViRegs(capText, featuresText string) (AMDVi, error) {
	c, err := parseHex("AMD-Vi", "cap", capText, 32)
	if err != nil {
		return AMDVi{}, err
	}
	efrText, efr2Text, two := strings.Cut(strings.TrimSpace(featuresText), ":")
	e, err := parseHex("AMD-Vi", "features EFR", efrText, 64)
	if err != nil {
		return AMDVi{}, err
	}
	var e2 uint64
	if two {
		if e2, err = parseHex("AMD-Vi", "features EFR2", efr2Text, 64); err != nil {
			return AMDVi{}, err
		}
	}
	return AMDVi{Cap: AMDCap(c), EFR: EFR(e), EFR2: EFR2(e2)}, nil
}

// String summarises a on one line for `iommu-agent list` and probe, e.g.
//
//	AMD-Vi cap=0x190b0f EFR=0x00000000000029d3 EFR2=0x0000000000000000: host 6-level, guest 6-level, GLX 1-level, PASID 1-bit; PREFETCH PPR GT IA GA HE
func (a AMDVi) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "AMD-Vi cap=%#x EFR=0x%016x EFR2=0x%016x: host %s, guest %s, GLX %s",
		uint32(a.Cap), uint64(a.EFR), uint64(a.EFR2), levelsName(a.EFR.HATS()), levelsName(a.EFR.GATS()), levelsName(a.EFR.GLX()))
	if a.EFR.GT() {
		fmt.Fprintf(&b, ", PASID %d-bit", a.EFR.PASmax())
	}
	names := append(a.EFR.Names(), a.EFR2.Names()...)
	if len(names) > 0 {
		b.WriteString("; " + strings.Join(names, " "))
	}
	return b.String()
}

func levelsName(n int) string {
	if n == 0 {
		return "reserved"
	}
	return fmt.Sprintf("%d-level", n)
}

// AMDCap is the IOMMU Capability Header (PCI capability 0Fh, offset 00h of
// the IOMMU's capability block), which sysfs prints as cap.
type AMDCap uint32

// Bit positions of the capability header: the kernel's IOMMU_CAP_IOTLB,
// IOMMU_CAP_NPCACHE and IOMMU_CAP_EFR, and QEMU's AMDVI_CAPAB_* for the
// rest (hw/i386/amd_iommu.h: ID 0Fh, type 3 at bit 16, HtTunnel 25,
// CapExt 28), which match the spec's diagram.
const (
	amdCapIOTLB    = 24 // IOMMU_CAP_IOTLB
	amdCapHTTunnel = 25
	amdCapNPCache  = 26 // IOMMU_CAP_NPCACHE
	amdCapEFR      = 27 // IOMMU_CAP_EFR
	amdCapExt      = 28
	// amdCapReserved: bits 31:29.
	amdCapReserved = 7 << 29
)

func (c AMDCap) bit(n uint) bool { return c>>n&1 != 0 }

// ID is the PCI capability ID, 0Fh (secure device) for an AMD IOMMU.
func (c AMDCap) ID() uint8 { return uint8(c) }

// Next is the next capability pointer in config space.
func (c AMDCap) Next() uint8 { return uint8(c >> 8) }

// Type is the capability type, 3 for an IOMMU.
func (c AMDCap) Type() int { return int(field(uint64(c), 16, 3)) }

// Rev is the capability revision.
func (c AMDCap) Rev() int { return int(field(uint64(c), 19, 5)) }

// IOTLB is IotlbSup: remote IOTLBs (PCIe ATS) are supported.
func (c AMDCap) IOTLB() bool { return c.bit(amdCapIOTLB) }

// HTTunnel is HtTunnel: HyperTransport tunnel translation.
func (c AMDCap) HTTunnel() bool { return c.bit(amdCapHTTunnel) }

// NPCache is NpCache: the unit caches not-present entries, so software
// must invalidate after mapping too (QEMU's emulated unit sets it; the
// kernel then flushes on every map, as VT-d's caching mode makes it).
func (c AMDCap) NPCache() bool { return c.bit(amdCapNPCache) }

// EFRSup says the Extended Feature Register exists; without it EFR reads
// as 0 and the kernel assumes no extended feature.
func (c AMDCap) EFRSup() bool { return c.bit(amdCapEFR) }

// CapExt is the capability's extended (misc) register support.
func (c AMDCap) CapExt() bool { return c.bit(amdCapExt) }

func amdCapName(bit uint) string {
	switch bit {
	case amdCapIOTLB:
		return "IOTLB"
	case amdCapHTTunnel:
		return "HTTUNNEL"
	case amdCapNPCache:
		return "NPCACHE"
	case amdCapEFR:
		return "EFRSUP"
	case amdCapExt:
		return "CAPEXT"
	}
	return ""
}

// Names lists the set flag bits (24 to 28) in bit order, and "bitN" for
// a set reserved bit (31:29). The ID, pointer, type and revision fields are
// not listed: see String.
func (c AMDCap) Names() []string {
	return setNames(uint64(c)&^0xffffff, 32, amdCapName, amdCapReserved)
}

// String prints the header and every field, e.g.
//
//	0x190b0f (ID 0x0f, next 0x0b, type 1, rev 3): IOTLB
func (c AMDCap) String() string {
	return withNames(fmt.Sprintf("%#x (ID %#02x, next %#02x, type %d, rev %d)",
		uint32(c), c.ID(), c.Next(), c.Type(), c.Rev()), c.Names())
}

// EFR is the IOMMU Extended Feature Register (MMIO 0030h).
type EFR uint64

// Bit positions and fields of the EFR, per amd_iommu_types.h's FEATURE_*
// and IOMMU_EFR_*_SHIFT.
const (
	efrPrefetch    = 0  // FEATURE_PREFETCH (PreFSup)
	efrPPR         = 1  // FEATURE_PPR
	efrX2APIC      = 2  // FEATURE_X2APIC, IOMMU_EFR_XTSUP_SHIFT
	efrNX          = 3  // FEATURE_NX
	efrGT          = 4  // FEATURE_GT
	efrIA          = 6  // FEATURE_IA
	efrGA          = 7  // FEATURE_GA, IOMMU_EFR_GASUP_SHIFT
	efrHE          = 8  // FEATURE_HE
	efrPC          = 9  // FEATURE_PC
	efrHATSLSB     = 10 // FEATURE_HATS, 11:10
	efrGATSLSB     = 12 // FEATURE_GATS, 13:12
	efrGLXLSB      = 14 // FEATURE_GLX, 15:14
	efrGAMVAPIC    = 21 // FEATURE_GAM_VAPIC
	efrPASmaxLSB   = 32 // FEATURE_PASMAX, 36:32
	efrMSICapMMIO  = 46 // IOMMU_EFR_MSICAPMMIOSUP_SHIFT
	efrGIOSup      = 48 // FEATURE_GIOSUP
	efrHASup       = 49 // FEATURE_HASUP
	efrEPHSup      = 50 // FEATURE_EPHSUP
	efrHDSup       = 52 // FEATURE_HDSUP
	efrSNP         = 63 // FEATURE_SNP
	efrFields      = 3<<efrHATSLSB | 3<<efrGATSLSB | 3<<efrGLXLSB | 0x1f<<efrPASmaxLSB
	efrUnnamedBits = ^uint64(0) &^ (efrFields | 1<<efrPrefetch | 1<<efrPPR | 1<<efrX2APIC | 1<<efrNX | 1<<efrGT |
		1<<efrIA | 1<<efrGA | 1<<efrHE | 1<<efrPC | 1<<efrGAMVAPIC | 1<<efrMSICapMMIO | 1<<efrGIOSup |
		1<<efrHASup | 1<<efrEPHSup | 1<<efrHDSup | 1<<efrSNP)
)

func (e EFR) bit(n uint) bool { return e>>n&1 != 0 }

// Prefetch is PreFSup: the prefetch IOMMU pages command.
func (e EFR) Prefetch() bool { return e.bit(efrPrefetch) }

// PPR is PPRSup: peripheral page requests (PCIe PRI), recoverable I/O
// page faults; the kernel's SVA and iommufd's fault queues need it.
func (e EFR) PPR() bool { return e.bit(efrPPR) }

// X2APIC is XTSup: interrupt remapping with 32-bit (x2APIC) destinations.
func (e EFR) X2APIC() bool { return e.bit(efrX2APIC) }

// NX is NXSup: no-execute protection in page tables.
func (e EFR) NX() bool { return e.bit(efrNX) }

// GT is GTSup: guest (v2, x86-format) page tables and PASIDs, which the
// kernel needs for SVA, amd_iommu=pgtbl_v2 and nested translation.
func (e EFR) GT() bool { return e.bit(efrGT) }

// IA is IASup: the INVALIDATE_IOMMU_ALL command.
func (e EFR) IA() bool { return e.bit(efrIA) }

// GA is GASup: guest virtual APIC (AVIC) interrupt posting, so an assigned
// device's interrupts reach a running vCPU without a VM exit.
func (e EFR) GA() bool { return e.bit(efrGA) }

// HE is HESup: hardware error registers.
func (e EFR) HE() bool { return e.bit(efrHE) }

// PC is PCSup: performance counters (the amd_iommu perf PMU).
func (e EFR) PC() bool { return e.bit(efrPC) }

// HATS is the host page-table depth the unit walks: 4, 5 or 6 levels
// (field + 4, the kernel's vasize computation); 0 for the value 3, which
// makes the kernel disable host translation (amd_iommu_hatdis).
func (e EFR) HATS() int { return levels(field(uint64(e), efrHATSLSB, 2), 4) }

// GATS is the guest (v2) page-table depth: 4 or 5 levels (the kernel's
// GUEST_PGTABLE_4_LEVEL and _5_LEVEL are 0 and 1), 6 for 2; 0 for the
// reserved 3.
func (e EFR) GATS() int { return levels(field(uint64(e), efrGATSLSB, 2), 4) }

// GLX is the guest CR3 (PASID) table depth: 1, 2 or 3 levels (field + 1);
// 0 for the reserved 3.
func (e EFR) GLX() int { return levels(field(uint64(e), efrGLXLSB, 2), 1) }

func levels(v uint64, base int) int {
	if v == 3 {
		return 0
	}
	return int(v) + base
}

// GAMVAPIC is FEATURE_GAM_VAPIC: guest virtual APIC mode (GAMSup).
func (e EFR) GAMVAPIC() bool { return e.bit(efrGAMVAPIC) }

// PASmax is the PASID width in bits: the largest PASID is
// 2^PASmax - 1 (the kernel's max_pasids = (1 << (pasmax + 1)) - 1, so
// PASmax is the field + 1). Meaningful only with GT.
func (e EFR) PASmax() int { return int(field(uint64(e), efrPASmaxLSB, 5)) + 1 }

// MSICapMMIO is MsiCapMmioSup: the MSI capability registers are
// mirrored in MMIO.
func (e EFR) MSICapMMIO() bool { return e.bit(efrMSICapMMIO) }

// GIOSup is guest I/O protection support: a guest page table can
// translate requests without a PASID, which the kernel's v2 DMA domains
// and nested HWPTs use.
func (e EFR) GIOSup() bool { return e.bit(efrGIOSup) }

// HASup is host access/dirty flag update support.
func (e EFR) HASup() bool { return e.bit(efrHASup) }

// EPHSup is enhanced PPR handling support.
func (e EFR) EPHSup() bool { return e.bit(efrEPHSup) }

// HDSup is host dirty support: the unit sets dirty bits in host page
// tables, which iommufd's dirty tracking (live migration of assigned
// devices) needs.
func (e EFR) HDSup() bool { return e.bit(efrHDSup) }

// SNP is SNPSup: SEV-SNP support.
func (e EFR) SNP() bool { return e.bit(efrSNP) }

func efrName(bit uint) string {
	switch bit {
	case efrPrefetch:
		return "PREFETCH"
	case efrPPR:
		return "PPR"
	case efrX2APIC:
		return "X2APIC"
	case efrNX:
		return "NX"
	case efrGT:
		return "GT"
	case efrIA:
		return "IA"
	case efrGA:
		return "GA"
	case efrHE:
		return "HE"
	case efrPC:
		return "PC"
	case efrGAMVAPIC:
		return "GAM_VAPIC"
	case efrMSICapMMIO:
		return "MSICAPMMIOSUP"
	case efrGIOSup:
		return "GIOSUP"
	case efrHASup:
		return "HASUP"
	case efrEPHSup:
		return "EPHSUP"
	case efrHDSup:
		return "HDSUP"
	case efrSNP:
		return "SNP"
	}
	return ""
}

// Names lists the set single-bit features by the kernel's FEATURE_ names
// in bit order, and "bitN" for a set bit the kernel does not name (bit 5
// is one: the kernel's own log prints it as "[5]"). The HATS, GATS, GLX and
// PASmax fields are not listed: see String.
func (e EFR) Names() []string { return setNames(uint64(e), 64, efrName, efrUnnamedBits) }

// String prints the register and every field.
func (e EFR) String() string {
	return withNames(fmt.Sprintf("0x%016x (HATS %s, GATS %s, GLX %s, PASmax %d)",
		uint64(e), levelsName(e.HATS()), levelsName(e.GATS()), levelsName(e.GLX()), e.PASmax()), e.Names())
}

// EFR2 is the IOMMU Extended Feature 2 Register (MMIO 01A0h).
type EFR2 uint64

// Bit positions and fields of EFR2, per amd_iommu_types.h.
const (
	efr2SEVSNPIO      = 1  // FEATURE_SEVSNPIO_SUP
	efr2GCR3TRPMode   = 3  // FEATURE_GCR3TRPMODE
	efr2SNPAVICLSB    = 5  // FEATURE_SNPAVICSUP, 7:5
	efr2NumIntRemLSB  = 8  // FEATURE_NUM_INT_REMAP_SUP, 9:8
	efr2HTRangeIgnore = 11 // FEATURE_HT_RANGE_IGNORE
	efr2SNPPageMode0  = 13 // FEATURE_SNP_PAGE_MODE0_SUP
	efr2Fields        = 7<<efr2SNPAVICLSB | 3<<efr2NumIntRemLSB
	efr2UnnamedBits   = ^uint64(0) &^ (efr2Fields | 1<<efr2SEVSNPIO | 1<<efr2GCR3TRPMode | 1<<efr2HTRangeIgnore | 1<<efr2SNPPageMode0)
)

func (e EFR2) bit(n uint) bool { return e>>n&1 != 0 }

// SEVSNPIO is FEATURE_SEVSNPIO_SUP: SEV-SNP trusted I/O.
func (e EFR2) SEVSNPIO() bool { return e.bit(efr2SEVSNPIO) }

// GCR3TRPMode is FEATURE_GCR3TRPMODE: the guest CR3 table holds GPAs
// (translated through the host table), which the kernel's nesting uses.
func (e EFR2) GCR3TRPMode() bool { return e.bit(efr2GCR3TRPMode) }

// SNPAVIC is FEATURE_SNPAVICSUP, the SNP virtual APIC support field; 1
// means guest virtual APIC mode under SNP.
func (e EFR2) SNPAVIC() int { return int(field(uint64(e), efr2SNPAVICLSB, 3)) }

// NumIntRemap is FEATURE_NUM_INT_REMAP_SUP: 0 for 512 interrupt remapping
// entries per device, 1 for 2048.
func (e EFR2) NumIntRemap() int { return int(field(uint64(e), efr2NumIntRemLSB, 2)) }

// HTRangeIgnore is FEATURE_HT_RANGE_IGNORE: the HyperTransport range is
// not reserved, so IOVAs there can be mapped.
func (e EFR2) HTRangeIgnore() bool { return e.bit(efr2HTRangeIgnore) }

// SNPPageMode0 is FEATURE_SNP_PAGE_MODE0_SUP.
func (e EFR2) SNPPageMode0() bool { return e.bit(efr2SNPPageMode0) }

func efr2Name(bit uint) string {
	switch bit {
	case efr2SEVSNPIO:
		return "SEVSNPIO_SUP"
	case efr2GCR3TRPMode:
		return "GCR3TRPMODE"
	case efr2HTRangeIgnore:
		return "HT_RANGE_IGNORE"
	case efr2SNPPageMode0:
		return "SNP_PAGE_MODE0_SUP"
	}
	return ""
}

// Names lists the set single-bit features by the kernel's names, and
// "EFR2.bitN" for a set bit it does not name, so they never read as EFR
// bits in a joint list. SNPAVICSUP and NUM_INT_REMAP_SUP are fields: see
// String.
func (e EFR2) Names() []string {
	names := setNames(uint64(e), 64, efr2Name, efr2UnnamedBits)
	for i, n := range names {
		if strings.HasPrefix(n, "bit") {
			names[i] = "EFR2." + n
		}
	}
	return names
}

// String prints the register and every field.
func (e EFR2) String() string {
	return withNames(fmt.Sprintf("0x%016x (SNPAVICSUP %d, NUM_INT_REMAP_SUP %d)", uint64(e), e.SNPAVIC(), e.NumIntRemap()), e.Names())
}
