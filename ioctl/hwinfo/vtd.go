package hwinfo

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// VTD is an Intel VT-d remapping unit's hardware information: struct
// iommu_hw_info_vtd from IOMMU_GET_HW_INFO (type IOMMU_HW_INFO_TYPE_INTEL_VTD),
// or the cap and ecap files of /sys/class/iommu/dmarN/intel-iommu.
type VTD struct {
	Flags uint32 // iommu_hw_info_vtd.flags; always 0 when read from sysfs
	Cap   Cap
	ECap  ECap
}

// flags of struct iommu_hw_info_vtd (enum iommu_hw_info_vtd_flags).
const vtdErrata772415SPR17 = 1 << 0

// vtdSize is sizeof(struct iommu_hw_info_vtd): flags, __reserved, cap_reg,
// ecap_reg.
const vtdSize = 24

// Errata772415 reports IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17: the kernel
// refuses read-only mappings in a nesting-parent domain (a Sapphire Rapids
// erratum), so a VMM must not give a nested guest read-only stage-2 pages.
func (v VTD) Errata772415() bool { return v.Flags&vtdErrata772415SPR17 != 0 }

// DecodeVTD decodes the data IOMMU_GET_HW_INFO wrote for
// IOMMU_HW_INFO_TYPE_INTEL_VTD, in the host's byte order. Bytes past the
// 24 the 6.x kernels write are ignored: a later kernel may append fields.
// The __reserved word is not kept.
func DecodeVTD(data []byte) (VTD, error) {
	if len(data) < vtdSize {
		return VTD{}, fmt.Errorf("hwinfo: VT-d hw_info is %d bytes, want %d: %w", len(data), vtdSize, io.ErrUnexpectedEOF)
	}
	ne := binary.NativeEndian
	return VTD{
		Flags: ne.Uint32(data[0:]),
		Cap:   Cap(ne.Uint64(data[8:])),
		ECap:  ECap(ne.Uint64(data[16:])),
	}, nil
}

// MarshalBinary encodes v as struct iommu_hw_info_vtd in the host's byte
// order, the inverse of DecodeVTD; fakes of IOMMU_GET_HW_INFO use it.
func (v VTD) MarshalBinary() ([]byte, error) {
	b := make([]byte, vtdSize)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], v.Flags)
	ne.PutUint64(b[8:], uint64(v.Cap))
	ne.PutUint64(b[16:], uint64(v.ECap))
	return b, nil
}

// ParseVTDRegs parses the cap and ecap files of
// /sys/class/iommu/dmarN/intel-iommu, which the kernel prints as "%llx\n":
// hex without 0x and without leading zeros. Surrounding space and a 0x
// prefix are accepted too. Errors wrap strconv.ErrSyntax or strconv.ErrRange.
func ParseVTDRegs(capText, ecapText string) (VTD, error) {
	c, err := parseHex("VT-d", "cap", capText, 64)
	if err != nil {
		return VTD{}, err
	}
	e, err := parseHex("VT-d", "ecap", ecapText, 64)
	if err != nil {
		return VTD{}, err
	}
	return VTD{Cap: Cap(c), ECap: ECap(e)}, nil
}

// String summarises v on one line for `iommu-agent list`: the raw
// registers, address width, domains, superpages, then the set capability
// bits of cap and ecap in register order, e.g.
//
//	VT-d cap=0x00d2008c222f0686 ecap=0x0000000000f00f4a: 48-bit (SAGAW 39,48), 65536 domains, superpages 2M,1G; CM PSI DWD DRD QI IR PT
func (v VTD) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "VT-d cap=0x%016x ecap=0x%016x: %d-bit (SAGAW %s), ", uint64(v.Cap), uint64(v.ECap), v.Cap.MGAW(), v.Cap.sagawText())
	if d := v.Cap.Domains(); d != 0 {
		fmt.Fprintf(&b, "%d domains", d)
	} else {
		b.WriteString("ND reserved")
	}
	if sp := v.Cap.SLLPS(); len(sp) > 0 {
		b.WriteString(", superpages " + joinSizes(sp, ","))
	} else {
		b.WriteString(", no superpages")
	}
	if v.ECap.PASID() {
		fmt.Fprintf(&b, ", PASID %d-bit", v.ECap.PSS())
	}
	names := append(v.Cap.Names(), v.ECap.Names()...)
	if v.Errata772415() {
		names = append(names, "ERRATA_772415_SPR17")
	}
	if len(names) > 0 {
		b.WriteString("; " + strings.Join(names, " "))
	}
	return b.String()
}

// Cap is the VT-d Capability Register (CAP_REG, offset 0x8; spec 11.4.2).
type Cap uint64

// Bit positions and fields of CAP_REG, per spec 11.4.2 and iommu.h's cap_*.
const (
	capNDLSB, capNDWidth       = 0, 3 // cap_ndoms
	capAFL                     = 3    // cap_afl
	capRWBF                    = 4    // cap_rwbf
	capPLMR                    = 5    // cap_plmr
	capPHMR                    = 6    // cap_phmr
	capCM                      = 7    // cap_caching_mode
	capSAGAWLSB, capSAGAWWidth = 8, 5 // cap_sagaw
	capMGAWLSB, capMGAWWidth   = 16, 6
	capZLR                     = 22 // cap_zlr
	capISOCH                   = 23 // cap_isoch, from older revisions; reserved in rev 4
	capFROLSB, capFROWidth     = 24, 10
	capSLLPSLSB, capSLLPSWidth = 34, 4 // cap_super_page_val
	capPSI                     = 39    // cap_pgsel_inv
	capNFRLSB, capNFRWidth     = 40, 8
	capMAMVLSB, capMAMVWidth   = 48, 6
	capDWD                     = 54 // cap_write_drain
	capDRD                     = 55 // cap_read_drain
	capFL1GP                   = 56 // cap_fl1gp_support
	capPI                      = 59 // cap_pi_support
	capFL5LP                   = 60 // cap_fl5lp_support
	capECMDS                   = 61 // cap_ecmds
	capESIRTPS                 = 62 // cap_esirtps
	capESRTPS                  = 63 // cap_esrtps

	// capReserved: bits 15:13, 38, 58:57, reserved in rev 4.
	capReserved = 7<<13 | 1<<38 | 3<<57
)

func (c Cap) bit(n uint) bool { return c>>n&1 != 0 }

func (c Cap) field(lsb, width uint) uint64 { return field(uint64(c), lsb, width) }

// Domains is the number of domain IDs (ND: 2^(4+2*ND)), 16 to 65536: each
// IOMMU domain (HWPT) attached behind this unit takes one. It is 0 if ND
// holds its reserved value 7.
func (c Cap) Domains() int {
	nd := c.field(capNDLSB, capNDWidth)
	if nd == 7 {
		return 0
	}
	return 1 << (4 + 2*nd)
}

// AFL is Advanced Fault Logging (deprecated since rev 3).
func (c Cap) AFL() bool { return c.bit(capAFL) }

// RWBF is Required Write-Buffer Flushing: software must flush the unit's
// write buffer after updating page tables.
func (c Cap) RWBF() bool { return c.bit(capRWBF) }

// PLMR is Protected Low-Memory Region support.
func (c Cap) PLMR() bool { return c.bit(capPLMR) }

// PHMR is Protected High-Memory Region support.
func (c Cap) PHMR() bool { return c.bit(capPHMR) }

// CM is Caching Mode: the unit may cache not-present and faulted entries,
// so software must invalidate after every map, not only after unmaps. Real
// hardware reports 0; an emulated IOMMU sets it (QEMU's caching-mode=on,
// which VFIO in a guest needs so that each new mapping reaches the host).
func (c Cap) CM() bool { return c.bit(capCM) }

// SAGAW lists the supported adjusted guest address widths in bits: 39, 48
// and 57 for 3-, 4- and 5-level second-stage page tables. Reserved bits
// (rev 1's 30 and 64) are not listed; String marks them.
func (c Cap) SAGAW() []int {
	var ws []int
	sagaw := c.field(capSAGAWLSB, capSAGAWWidth)
	for i := uint(1); i <= 3; i++ {
		if sagaw&(1<<i) != 0 {
			ws = append(ws, 30+9*int(i))
		}
	}
	return ws
}

// sagawText is "39,48", with "reserved" added for reserved bits, or "none".
func (c Cap) sagawText() string {
	return listText(joinInts(c.SAGAW(), ","), c.field(capSAGAWLSB, capSAGAWWidth)&0b10001 != 0)
}

func listText(list string, reserved bool) string {
	switch {
	case reserved && list != "":
		return list + ",reserved"
	case reserved:
		return "reserved"
	case list == "":
		return "none"
	}
	return list
}

// MGAW is the maximum guest address width in bits (field + 1): DMA to an
// IOVA at or above 2^MGAW faults, so it bounds the usable IOVA space.
func (c Cap) MGAW() int { return int(c.field(capMGAWLSB, capMGAWWidth)) + 1 }

// ZLR is Zero-Length Read: zero-length reads to write-only pages are
// allowed.
func (c Cap) ZLR() bool { return c.bit(capZLR) }

// FRO is the byte offset of the first fault-recording register from the
// register base (field * 16).
func (c Cap) FRO() uint64 { return c.field(capFROLSB, capFROWidth) * 16 }

// SLLPS lists the second-stage large page sizes in bytes (2 MiB, 1 GiB):
// without them every mapping is built from 4 KiB pages and large pinned
// regions cost more IOTLB entries. Reserved bits are not listed.
func (c Cap) SLLPS() []uint64 {
	var sizes []uint64
	sp := c.field(capSLLPSLSB, capSLLPSWidth)
	for i := uint(0); i < 2; i++ {
		if sp&(1<<i) != 0 {
			sizes = append(sizes, 1<<(21+9*i))
		}
	}
	return sizes
}

// sllpsText is "2M,1G", with "reserved" added for reserved bits, or "none".
func (c Cap) sllpsText() string {
	return listText(joinSizes(c.SLLPS(), ","), c.field(capSLLPSLSB, capSLLPSWidth)&0b1100 != 0)
}

// PSI is Page-Selective Invalidation: an unmap invalidates just its range
// of the IOTLB instead of the whole domain.
func (c Cap) PSI() bool { return c.bit(capPSI) }

// NFR is the number of fault-recording registers (field + 1).
func (c Cap) NFR() int { return int(c.field(capNFRLSB, capNFRWidth)) + 1 }

// MAMV is the Maximum Address Mask Value: one page-selective invalidation
// covers at most 2^MAMV 4 KiB pages. Valid only when PSI is set.
func (c Cap) MAMV() int { return int(c.field(capMAMVLSB, capMAMVWidth)) }

// DWD is DMA Write Draining.
func (c Cap) DWD() bool { return c.bit(capDWD) }

// DRD is DMA Read Draining.
func (c Cap) DRD() bool { return c.bit(capDRD) }

// FL1GP is First-level 1-GByte Page support (rev 4: FS1GP).
func (c Cap) FL1GP() bool { return c.bit(capFL1GP) }

// PI is Posted Interrupts: a passed-through device's interrupts can be
// delivered to a running vCPU without a VM exit.
func (c Cap) PI() bool { return c.bit(capPI) }

// FL5LP is First-level 5-level Paging (rev 4: FS5LP).
func (c Cap) FL5LP() bool { return c.bit(capFL5LP) }

// ECMDS is Enhanced Command Support (the ECMD register interface).
func (c Cap) ECMDS() bool { return c.bit(capECMDS) }

// ESIRTPS is Enhanced Set Interrupt Root Table Pointer Support: SIRTP also
// invalidates the interrupt remapping caches.
func (c Cap) ESIRTPS() bool { return c.bit(capESIRTPS) }

// ESRTPS is Enhanced Set Root Table Pointer Support: SRTP also invalidates
// all translation caches.
func (c Cap) ESRTPS() bool { return c.bit(capESRTPS) }

func capName(bit uint) string {
	switch bit {
	case capAFL:
		return "AFL"
	case capRWBF:
		return "RWBF"
	case capPLMR:
		return "PLMR"
	case capPHMR:
		return "PHMR"
	case capCM:
		return "CM"
	case capZLR:
		return "ZLR"
	case capISOCH:
		return "ISOCH"
	case capPSI:
		return "PSI"
	case capDWD:
		return "DWD"
	case capDRD:
		return "DRD"
	case capFL1GP:
		return "FL1GP"
	case capPI:
		return "PI"
	case capFL5LP:
		return "FL5LP"
	case capECMDS:
		return "ECMDS"
	case capESIRTPS:
		return "ESIRTPS"
	case capESRTPS:
		return "ESRTPS"
	}
	return ""
}

// Names lists the set single-bit capabilities by their spec names in bit
// order, for printing. ISOCH (bit 23) is named as older revisions and the
// kernel name it; a set reserved bit is listed as "bitN". Multi-bit fields
// are not listed: see String.
func (c Cap) Names() []string { return setNames(uint64(c), 64, capName, capReserved) }

// String prints the register and every field, e.g.
//
//	0x00d2008c222f0686 (ND 6: 65536 domains, SAGAW 39,48, MGAW 48, FRO 0x220, SLLPS 2M,1G, NFR 1, MAMV 18): CM PSI DWD DRD
func (c Cap) String() string {
	var b strings.Builder
	nd := c.field(capNDLSB, capNDWidth)
	fmt.Fprintf(&b, "0x%016x (ND %d: ", uint64(c), nd)
	if d := c.Domains(); d != 0 {
		fmt.Fprintf(&b, "%d domains", d)
	} else {
		b.WriteString("reserved")
	}
	fmt.Fprintf(&b, ", SAGAW %s, MGAW %d, FRO %#x, SLLPS %s, NFR %d, MAMV %d)",
		c.sagawText(), c.MGAW(), c.FRO(), c.sllpsText(), c.NFR(), c.MAMV())
	if names := c.Names(); len(names) > 0 {
		b.WriteString(": " + strings.Join(names, " "))
	}
	return b.String()
}

// ECap is the VT-d Extended Capability Register (ECAP_REG, offset 0x10;
// spec 11.4.3).
type ECap uint64

// Bit positions and fields of ECAP_REG, per spec 11.4.3 and iommu.h's ecap_*.
const (
	ecapC                    = 0 // ecap_coherent
	ecapQI                   = 1 // ecap_qis
	ecapDT                   = 2 // ecap_dev_iotlb_support
	ecapIR                   = 3 // ecap_ir_support
	ecapEIM                  = 4 // ecap_eim_support
	ecapCH                   = 5 // Caching Hints in early revisions; reserved now
	ecapPT                   = 6 // ecap_pass_through
	ecapSC                   = 7 // ecap_sc_support
	ecapIROLSB, ecapIROWidth = 8, 10
	ecapMHMVLSB, ecapMHMVWid = 20, 4
	ecapECS                  = 24 // Extended Context Support, rev 2; reserved since rev 3
	ecapMTS                  = 25 // ecap_mts
	ecapNEST                 = 26 // ecap_nest
	ecapDIS                  = 27 // ecap_dis: Deferred Invalidate, rev 2
	ecapPASIDv2              = 28 // ecap_broken_pasid: rev 2's PASID bit
	ecapPRS                  = 29 // ecap_prs
	ecapERS                  = 30 // ecap_ers
	ecapSRS                  = 31 // ecap_srs
	ecapPOT                  = 32 // PASID-Only Translation, rev 2
	ecapNWFS                 = 33 // ecap_nwfs
	ecapEAFS                 = 34 // ecap_eafs
	ecapPSSLSB, ecapPSSWidth = 35, 5
	ecapPASID                = 40 // ecap_pasid
	ecapDIT                  = 41 // ecap_dit
	ecapPDS                  = 42 // ecap_pds
	ecapSMTS                 = 43 // ecap_smts
	ecapVCS                  = 44 // ecap_vcs
	ecapSLADS                = 45 // ecap_slads
	ecapSLTS                 = 46 // ecap_slts
	ecapFLTS                 = 47 // ecap_flts
	ecapSMPWCS               = 48 // ecap_smpwc
	ecapRPS                  = 49 // ecap_rps
	ecapTDXIO                = 50 // TDX_IO Support, named by Intel's Core Ultra register references
	ecapPMS                  = 51 // ecap_pms
	ecapADMS                 = 52 // Abort DMA Mode Support
	ecapRPRIVS               = 53 // RID_PRIV Support

	// ecapReserved: bits 19:18 and 63:54, reserved in rev 4.
	ecapReserved = 3<<18 | 0x3ff<<54
)

func (e ECap) bit(n uint) bool { return e>>n&1 != 0 }

func (e ECap) field(lsb, width uint) uint64 { return field(uint64(e), lsb, width) }

// C is Page-walk Coherency: the unit snoops CPU caches when walking page
// tables. Without it the kernel flushes cache lines after every page-table
// write, which makes map and unmap slower.
func (e ECap) C() bool { return e.bit(ecapC) }

// QI is Queued Invalidation support (required for IR and scalable mode).
func (e ECap) QI() bool { return e.bit(ecapQI) }

// DT is Device-TLB support: PCIe ATS, so a device may cache translations
// and must be sent invalidations too.
func (e ECap) DT() bool { return e.bit(ecapDT) }

// IR is Interrupt Remapping. Without it MSIs from an assigned device are
// not isolated and VFIO refuses the device unless allow_unsafe_interrupts
// is set.
func (e ECap) IR() bool { return e.bit(ecapIR) }

// EIM is Extended Interrupt Mode: 32-bit (x2APIC) destination IDs.
func (e ECap) EIM() bool { return e.bit(ecapEIM) }

// PT is Pass-Through: context entries may bypass translation, which the
// kernel uses for identity (iommu=pt) domains of host-owned devices.
func (e ECap) PT() bool { return e.bit(ecapPT) }

// SC is Snoop Control: page-table entries can force DMA to snoop CPU
// caches. Without it a device's no-snoop DMA stays non-coherent: iommufd
// cannot enforce cache coherency, and KVM then honours the guest's WBINVD
// and memory types, which costs performance.
func (e ECap) SC() bool { return e.bit(ecapSC) }

// IRO is the byte offset of the IOTLB registers from the register base
// (field * 16).
func (e ECap) IRO() uint64 { return e.field(ecapIROLSB, ecapIROWidth) * 16 }

// MHMV is the Maximum Handle Mask Value of interrupt-entry-cache
// invalidations. Valid only when IR is set.
func (e ECap) MHMV() int { return int(e.field(ecapMHMVLSB, ecapMHMVWid)) }

// MTS is Memory Type Support.
func (e ECap) MTS() bool { return e.bit(ecapMTS) }

// NEST is Nested Translation: first stage over second stage, which
// iommufd needs for nested HWPTs (a guest-owned stage-1 page table).
func (e ECap) NEST() bool { return e.bit(ecapNEST) }

// PRS is Page Request Support (PCIe PRI): I/O page faults a device can
// recover from.
func (e ECap) PRS() bool { return e.bit(ecapPRS) }

// ERS is Execute Request Support for requests with PASID.
func (e ECap) ERS() bool { return e.bit(ecapERS) }

// SRS is Supervisor Request Support for requests with PASID.
func (e ECap) SRS() bool { return e.bit(ecapSRS) }

// NWFS is No Write Flag Support in ATS translation requests.
func (e ECap) NWFS() bool { return e.bit(ecapNWFS) }

// EAFS is Extended Accessed Flag Support in first-level entries.
func (e ECap) EAFS() bool { return e.bit(ecapEAFS) }

// PSS is the supported PASID width in bits (field + 1; the spec allows up
// to 20). Valid only when PASID is set.
func (e ECap) PSS() int { return int(e.field(ecapPSSLSB, ecapPSSWidth)) + 1 }

// PASID is Process Address Space ID support.
func (e ECap) PASID() bool { return e.bit(ecapPASID) }

// DIT is Device-TLB Invalidation Throttle.
func (e ECap) DIT() bool { return e.bit(ecapDIT) }

// PDS is Page-request Drain Support.
func (e ECap) PDS() bool { return e.bit(ecapPDS) }

// SMTS is Scalable Mode Translation Support (PASID-granular tables). The
// kernel uses scalable mode when this is set unless intel_iommu=sm_off.
func (e ECap) SMTS() bool { return e.bit(ecapSMTS) }

// VCS is Virtual Command Support; only emulated units report it.
func (e ECap) VCS() bool { return e.bit(ecapVCS) }

// SLADS is Second-Level Accessed/Dirty Support (rev 4: SSADS): the IOMMU
// logs DMA writes, which iommufd's dirty tracking for live migration of
// assigned devices needs.
func (e ECap) SLADS() bool { return e.bit(ecapSLADS) }

// SLTS is Second-Level Translation Support in scalable mode (rev 4: SSTS).
func (e ECap) SLTS() bool { return e.bit(ecapSLTS) }

// FLTS is First-Level Translation Support in scalable mode (rev 4: FSTS).
func (e ECap) FLTS() bool { return e.bit(ecapFLTS) }

// SMPWCS is Scalable-Mode Page-Walk Coherency Support.
func (e ECap) SMPWCS() bool { return e.bit(ecapSMPWCS) }

// RPS is RID_PASID Support in scalable-mode context entries.
func (e ECap) RPS() bool { return e.bit(ecapRPS) }

// PMS is Performance Monitoring Support.
func (e ECap) PMS() bool { return e.bit(ecapPMS) }

// ADMS is Abort DMA Mode Support: the unit can block all DMA while its
// tables are set up.
func (e ECap) ADMS() bool { return e.bit(ecapADMS) }

// RPRIVS is RID_PRIV Support in scalable-mode context entries.
func (e ECap) RPRIVS() bool { return e.bit(ecapRPRIVS) }

func ecapName(bit uint) string {
	switch bit {
	case ecapC:
		return "C"
	case ecapQI:
		return "QI"
	case ecapDT:
		return "DT"
	case ecapIR:
		return "IR"
	case ecapEIM:
		return "EIM"
	case ecapCH:
		return "CH"
	case ecapPT:
		return "PT"
	case ecapSC:
		return "SC"
	case ecapECS:
		return "ECS"
	case ecapMTS:
		return "MTS"
	case ecapNEST:
		return "NEST"
	case ecapDIS:
		return "DIS"
	case ecapPASIDv2:
		return "PASIDv2"
	case ecapPRS:
		return "PRS"
	case ecapERS:
		return "ERS"
	case ecapSRS:
		return "SRS"
	case ecapPOT:
		return "POT"
	case ecapNWFS:
		return "NWFS"
	case ecapEAFS:
		return "EAFS"
	case ecapPASID:
		return "PASID"
	case ecapDIT:
		return "DIT"
	case ecapPDS:
		return "PDS"
	case ecapSMTS:
		return "SMTS"
	case ecapVCS:
		return "VCS"
	case ecapSLADS:
		return "SLADS"
	case ecapSLTS:
		return "SLTS"
	case ecapFLTS:
		return "FLTS"
	case ecapSMPWCS:
		return "SMPWCS"
	case ecapRPS:
		return "RPS"
	case ecapTDXIO:
		return "TDXIO"
	case ecapPMS:
		return "PMS"
	case ecapADMS:
		return "ADMS"
	case ecapRPRIVS:
		return "RPRIVS"
	}
	return ""
}

// Names lists the set single-bit capabilities by their spec names in bit
// order, for printing. Bits that only older revisions defined keep those
// names (CH, ECS, DIS, POT; rev 2's PASID at bit 28 is "PASIDv2"), as does
// TDXIO, which Intel's product register references name; a set reserved bit
// is listed as "bitN". Multi-bit fields are not listed: see String.
func (e ECap) Names() []string { return setNames(uint64(e), 64, ecapName, ecapReserved) }

// String prints the register and every field, e.g.
//
//	0x0000000000f00f4a (IRO 0xf0, MHMV 15): QI IR PT
func (e ECap) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "0x%016x (IRO %#x, MHMV %d", uint64(e), e.IRO(), e.MHMV())
	if e.PASID() || e.field(ecapPSSLSB, ecapPSSWidth) != 0 {
		fmt.Fprintf(&b, ", PSS %d-bit", e.PSS())
	}
	b.WriteString(")")
	if names := e.Names(); len(names) > 0 {
		b.WriteString(": " + strings.Join(names, " "))
	}
	return b.String()
}
