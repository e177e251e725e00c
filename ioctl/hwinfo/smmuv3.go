package hwinfo

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// SMMUv3 is an Arm SMMUv3's hardware information: struct
// iommu_hw_info_arm_smmuv3 from IOMMU_GET_HW_INFO (type
// IOMMU_HW_INFO_TYPE_ARM_SMMUV3: kernels after 6.12 built with
// ARM_SMMU_V3_IOMMUFD; 6.12 reports type NONE for an SMMUv3).
//
// The kernel does not mask these registers: arm_smmu_hw_info copies IDR0-5,
// IIDR and AIDR as the hardware reads, without the firmware overrides and
// errata workarounds it applies to itself (it drops BTM on MMU-700, for
// one). The uapi comment on the struct therefore lists the only fields a VMM
// should rely on: IDR0 ST_LEVEL, TERM_MODEL, STALL_MODEL, TTENDIAN, CD2L,
// ASID16, TTF; IDR1 SIDSIZE, SSIDSIZE; IDR3 BBML, RIL; IDR5 VAX, GRAN64K,
// GRAN16K, GRAN4K. S1P is to be taken as true when a nested HWPT can be
// allocated, COHACC as always true (iommufd supports nothing else), and ATS
// is a per-device property. The other accessors decode the hardware
// faithfully but may not describe what the kernel actually uses.
type SMMUv3 struct {
	Flags uint32    // iommu_hw_info_arm_smmuv3.flags; 0 today
	IDR   [6]uint32 // SMMU_IDR0..5; see the IDR0, IDR1, IDR3 and IDR5 methods
	IIDR  IIDR
	AIDR  AIDR
}

// smmuv3Size is sizeof(struct iommu_hw_info_arm_smmuv3): flags, __reserved,
// idr[6], iidr, aidr.
const smmuv3Size = 40

// DecodeSMMUv3 decodes the data IOMMU_GET_HW_INFO wrote for
// IOMMU_HW_INFO_TYPE_ARM_SMMUV3, in the host's byte order. Bytes past the
// struct are ignored; the __reserved word is not kept.
func DecodeSMMUv3(data []byte) (SMMUv3, error) {
	if len(data) < smmuv3Size {
		return SMMUv3{}, fmt.Errorf("hwinfo: SMMUv3 hw_info is %d bytes, want %d: %w", len(data), smmuv3Size, io.ErrUnexpectedEOF)
	}
	ne := binary.NativeEndian
	s := SMMUv3{Flags: ne.Uint32(data[0:])}
	for i := range s.IDR {
		s.IDR[i] = ne.Uint32(data[8+4*i:])
	}
	s.IIDR = IIDR(ne.Uint32(data[32:]))
	s.AIDR = AIDR(ne.Uint32(data[36:]))
	return s, nil
}

// MarshalBinary encodes s as struct iommu_hw_info_arm_smmuv3 in the host's
// byte order, the inverse of DecodeSMMUv3.
func (s SMMUv3) MarshalBinary() ([]byte, error) {
	b := make([]byte, smmuv3Size)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], s.Flags)
	for i, r := range s.IDR {
		ne.PutUint32(b[8+4*i:], r)
	}
	ne.PutUint32(b[32:], uint32(s.IIDR))
	ne.PutUint32(b[36:], uint32(s.AIDR))
	return b, nil
}

// IDR0 returns SMMU_IDR0: translation stages, table formats, ATS/PRI, ...
func (s SMMUv3) IDR0() IDR0 { return IDR0(s.IDR[0]) }

// IDR1 returns SMMU_IDR1: StreamID and SubstreamID sizes, queue sizes.
func (s SMMUv3) IDR1() IDR1 { return IDR1(s.IDR[1]) }

// IDR3 returns SMMU_IDR3: range invalidation, break-before-make level, ...
func (s SMMUv3) IDR3() IDR3 { return IDR3(s.IDR[3]) }

// IDR5 returns SMMU_IDR5: output address size, granules, VA size.
func (s SMMUv3) IDR5() IDR5 { return IDR5(s.IDR[5]) }

// Names lists the set single-bit features of IDR0, IDR1, IDR3 and IDR5 by
// their spec names in register and bit order, for printing. A set reserved
// bit is listed as "IDRn.bitN".
func (s SMMUv3) Names() []string {
	var out []string
	add := func(reg string, names []string) {
		for _, n := range names {
			if strings.HasPrefix(n, "bit") {
				n = reg + "." + n
			}
			out = append(out, n)
		}
	}
	add("IDR0", s.IDR0().Names())
	add("IDR1", s.IDR1().Names())
	add("IDR3", s.IDR3().Names())
	add("IDR5", s.IDR5().Names())
	return out
}

// String summarises s on one line for `iommu-agent list`, e.g.
//
//	SMMUv3.1 IIDR=0x00000000: OAS 44-bit, VAX 48-bit, SIDSIZE 16, SSIDSIZE 0, TTF AArch64, TTENDIAN LE, STALL_MODEL terminate, ST_LEVEL 2-level, BBML 2; S2P S1P COHACC ASID16 VMID16 TERM_MODEL HAD XNX RIL GRAN4K GRAN16K GRAN64K
func (s SMMUv3) String() string {
	var b strings.Builder
	i0, i1, i3, i5 := s.IDR0(), s.IDR1(), s.IDR3(), s.IDR5()
	fmt.Fprintf(&b, "%s IIDR=%#08x: OAS %s, VAX %s, SIDSIZE %d, SSIDSIZE %d, TTF %s, TTENDIAN %s, STALL_MODEL %s, ST_LEVEL %s, BBML %d",
		s.AIDR, uint32(s.IIDR), bitsName(i5.OAS()), bitsName(i5.VAX()), i1.SIDSIZE(), i1.SSIDSIZE(),
		i0.TTF(), i0.TTEndian(), i0.StallModel(), stLevelName(i0.STLevel()), i3.BBML())
	if names := s.Names(); len(names) > 0 {
		b.WriteString("; " + strings.Join(names, " "))
	}
	if s.Flags != 0 {
		fmt.Fprintf(&b, "; flags %#x", s.Flags)
	}
	return b.String()
}

func bitsName(n int) string {
	if n == 0 {
		return "reserved"
	}
	return fmt.Sprintf("%d-bit", n)
}

func stLevelName(l int) string {
	switch l {
	case 0:
		return "linear"
	case 1:
		return "2-level"
	}
	return fmt.Sprintf("reserved(%d)", l)
}

// IDR0 is SMMU_IDR0 (offset 0x0; IHI 0070 6.3.1).
type IDR0 uint32

// Bit positions and fields of SMMU_IDR0, per 6.3.1 and arm-smmu-v3.h's IDR0_*.
const (
	idr0S2P                  = 0
	idr0S1P                  = 1
	idr0TTFLSB               = 2 // 2 bits
	idr0COHACC               = 4
	idr0BTM                  = 5
	idr0HTTULSB              = 6 // 2 bits
	idr0DORMHINT             = 8
	idr0Hyp                  = 9
	idr0ATS                  = 10
	idr0NS1ATS               = 11
	idr0ASID16               = 12
	idr0MSI                  = 13
	idr0SEV                  = 14
	idr0ATOS                 = 15
	idr0PRI                  = 16
	idr0VMW                  = 17
	idr0VMID16               = 18
	idr0CD2L                 = 19
	idr0VATOS                = 20
	idr0TTENDIANLSB          = 21 // 2 bits
	idr0ATSRECERR            = 23
	idr0StallModelLSB        = 24 // 2 bits
	idr0TermModel            = 26
	idr0STLevelLSB           = 27 // 2 bits
	idr0RMEImpl              = 30
	idr0Reserved      uint32 = 1<<29 | 1<<31
)

func (r IDR0) bit(n uint) bool { return r>>n&1 != 0 }

func (r IDR0) field2(lsb uint) uint8 { return uint8(field(uint64(r), lsb, 2)) }

// S2P is stage 2 translation support: the stage of a nesting parent, which
// holds a VM's memory when the guest owns stage 1.
func (r IDR0) S2P() bool { return r.bit(idr0S2P) }

// S1P is stage 1 translation support. Nesting (a guest-owned stage 1 over
// the host's stage 2) needs S1P and S2P.
func (r IDR0) S1P() bool { return r.bit(idr0S1P) }

// TTF is the supported translation table formats.
func (r IDR0) TTF() TTF { return TTF(r.field2(idr0TTFLSB)) }

// COHACC is coherent access for table walks, queues and MSIs. VFIO and
// iommufd support only coherent SMMUs.
func (r IDR0) COHACC() bool { return r.bit(idr0COHACC) }

// BTM is Broadcast TLB Maintenance: CPU TLB invalidations also reach the
// SMMU. The kernel clears it on parts with errata and does not use it for
// nesting.
func (r IDR0) BTM() bool { return r.bit(idr0BTM) }

// HTTU is hardware update of the Access flag and Dirty state; Access and
// dirty updates are what iommufd's dirty tracking (live migration of
// assigned devices) needs.
func (r IDR0) HTTU() HTTU { return HTTU(r.field2(idr0HTTULSB)) }

// DORMHINT is Dormant hint support.
func (r IDR0) DORMHINT() bool { return r.bit(idr0DORMHINT) }

// Hyp is support for hypervisor (EL2) stage 1 contexts.
func (r IDR0) Hyp() bool { return r.bit(idr0Hyp) }

// ATS is PCIe ATS support by the SMMU; each device must also support it.
func (r IDR0) ATS() bool { return r.bit(idr0ATS) }

// NS1ATS set means split-stage (stage 1 only) ATS is NOT supported.
func (r IDR0) NS1ATS() bool { return r.bit(idr0NS1ATS) }

// ASID16 is 16-bit ASID support (else 8-bit).
func (r IDR0) ASID16() bool { return r.bit(idr0ASID16) }

// MSI is support for the SMMU's own interrupts as MSIs. It says nothing of
// device MSI isolation, which comes from the interrupt controller (GIC ITS).
func (r IDR0) MSI() bool { return r.bit(idr0MSI) }

// SEV is WFE wake-up event generation on CMD_SYNC completion.
func (r IDR0) SEV() bool { return r.bit(idr0SEV) }

// ATOS is Address Translation Operations support.
func (r IDR0) ATOS() bool { return r.bit(idr0ATOS) }

// PRI is PCIe Page Request Interface support: recoverable I/O page faults.
func (r IDR0) PRI() bool { return r.bit(idr0PRI) }

// VMW is VMID wildcard matching for TLB invalidation.
func (r IDR0) VMW() bool { return r.bit(idr0VMW) }

// VMID16 is 16-bit VMID support (else 8-bit).
func (r IDR0) VMID16() bool { return r.bit(idr0VMID16) }

// CD2L is 2-level Context Descriptor table support, needed for many
// SubstreamIDs (PASIDs) per device.
func (r IDR0) CD2L() bool { return r.bit(idr0CD2L) }

// VATOS is Virtual ATOS page interface support.
func (r IDR0) VATOS() bool { return r.bit(idr0VATOS) }

// TTEndian is the translation table endianness the SMMU accepts.
func (r IDR0) TTEndian() TTEndian { return TTEndian(r.field2(idr0TTENDIANLSB)) }

// ATSRECERR is recording of additional events for ATS and PRI requests.
func (r IDR0) ATSRECERR() bool { return r.bit(idr0ATSRECERR) }

// StallModel is whether faulting transactions can stall for the OS to
// resolve the fault, or are always terminated.
func (r IDR0) StallModel() StallModel { return StallModel(r.field2(idr0StallModelLSB)) }

// TermModel set means a terminated transaction always aborts (CD.A must be
// 1); clear means software may choose RAZ/WI instead.
func (r IDR0) TermModel() bool { return r.bit(idr0TermModel) }

// STLevel is the Stream table support: 0 linear only, 1 also 2-level; 2
// and 3 are reserved.
func (r IDR0) STLevel() int { return int(r.field2(idr0STLevelLSB)) }

// RMEImpl is Realm Management Extension support (SMMUv3.3).
func (r IDR0) RMEImpl() bool { return r.bit(idr0RMEImpl) }

func idr0Name(bit uint) string {
	switch bit {
	case idr0S2P:
		return "S2P"
	case idr0S1P:
		return "S1P"
	case idr0COHACC:
		return "COHACC"
	case idr0BTM:
		return "BTM"
	case idr0DORMHINT:
		return "DORMHINT"
	case idr0Hyp:
		return "Hyp"
	case idr0ATS:
		return "ATS"
	case idr0NS1ATS:
		return "NS1ATS"
	case idr0ASID16:
		return "ASID16"
	case idr0MSI:
		return "MSI"
	case idr0SEV:
		return "SEV"
	case idr0ATOS:
		return "ATOS"
	case idr0PRI:
		return "PRI"
	case idr0VMW:
		return "VMW"
	case idr0VMID16:
		return "VMID16"
	case idr0CD2L:
		return "CD2L"
	case idr0VATOS:
		return "VATOS"
	case idr0ATSRECERR:
		return "ATSRECERR"
	case idr0TermModel:
		return "TERM_MODEL"
	case idr0RMEImpl:
		return "RME_IMPL"
	}
	return ""
}

// Names lists the set single-bit fields by their spec names in bit order;
// a set reserved bit is "bitN".
func (r IDR0) Names() []string { return setNames(uint64(r), 32, idr0Name, uint64(idr0Reserved)) }

// String prints the register and every field.
func (r IDR0) String() string {
	return withNames(fmt.Sprintf("%#08x (TTF %s, HTTU %s, TTENDIAN %s, STALL_MODEL %s, ST_LEVEL %s)",
		uint32(r), r.TTF(), r.HTTU(), r.TTEndian(), r.StallModel(), stLevelName(r.STLevel())), r.Names())
}

func withNames(s string, names []string) string {
	if len(names) == 0 {
		return s
	}
	return s + ": " + strings.Join(names, " ")
}

// TTF is SMMU_IDR0.TTF, the translation table formats.
type TTF uint8

// SMMU_IDR0.TTF values; 0 is reserved.
const (
	TTFAArch32 TTF = 1 // VMSAv8-32 LPAE only
	TTFAArch64 TTF = 2 // VMSAv8-64 only
	TTFBoth    TTF = 3 // VMSAv8-32 LPAE and VMSAv8-64
)

func (t TTF) String() string {
	switch t {
	case TTFAArch32:
		return "AArch32"
	case TTFAArch64:
		return "AArch64"
	case TTFBoth:
		return "AArch32+AArch64"
	}
	return fmt.Sprintf("reserved(%d)", uint8(t))
}

// HTTU is SMMU_IDR0.HTTU, hardware translation table update.
type HTTU uint8

// SMMU_IDR0.HTTU values.
const (
	HTTUNone             HTTU = 0 // no flag updates
	HTTUAccess           HTTU = 1 // Access flag
	HTTUAccessDirty      HTTU = 2 // Access flag and Dirty state
	HTTUAccessDirtyTable HTTU = 3 // and the Access flag of table descriptors
)

func (h HTTU) String() string {
	switch h {
	case HTTUNone:
		return "none"
	case HTTUAccess:
		return "access"
	case HTTUAccessDirty:
		return "access+dirty"
	case HTTUAccessDirtyTable:
		return "access+dirty+table-access"
	}
	return fmt.Sprintf("reserved(%d)", uint8(h))
}

// TTEndian is SMMU_IDR0.TTENDIAN, the accepted table endianness.
type TTEndian uint8

// SMMU_IDR0.TTENDIAN values; 1 is reserved.
const (
	TTEndianMixed TTEndian = 0 // either, per CD.ENDI and STE.S2ENDI
	TTEndianLE    TTEndian = 2 // little-endian only
	TTEndianBE    TTEndian = 3 // big-endian only
)

func (e TTEndian) String() string {
	switch e {
	case TTEndianMixed:
		return "mixed"
	case TTEndianLE:
		return "LE"
	case TTEndianBE:
		return "BE"
	}
	return fmt.Sprintf("reserved(%d)", uint8(e))
}

// StallModel is SMMU_IDR0.STALL_MODEL.
type StallModel uint8

// SMMU_IDR0.STALL_MODEL values; 3 is reserved.
const (
	StallAndTerminate StallModel = 0 // both models; software chooses per context
	StallNone         StallModel = 1 // faults always terminate the transaction
	StallForced       StallModel = 2 // faults always stall (not allowed with PCI)
)

func (m StallModel) String() string {
	switch m {
	case StallAndTerminate:
		return "stall+terminate"
	case StallNone:
		return "terminate"
	case StallForced:
		return "stall-forced"
	}
	return fmt.Sprintf("reserved(%d)", uint8(m))
}

// IDR1 is SMMU_IDR1 (offset 0x4; IHI 0070 6.3.2).
type IDR1 uint32

// Bit positions and fields of SMMU_IDR1, per 6.3.2 and arm-smmu-v3.h's IDR1_*.
const (
	idr1SIDSIZELSB, idr1SIDSIZEWidth   = 0, 6
	idr1SSIDSIZELSB, idr1SSIDSIZEWidth = 6, 5
	idr1PRIQSLSB                       = 11 // 5 bits
	idr1EVENTQSLSB                     = 16 // 5 bits
	idr1CMDQSLSB                       = 21 // 5 bits
	idr1AttrPermsOvr                   = 26
	idr1AttrTypesOvr                   = 27
	idr1REL                            = 28
	idr1QueuesPreset                   = 29
	idr1TablesPreset                   = 30
	idr1ECMDQ                          = 31
)

func (r IDR1) bit(n uint) bool { return r>>n&1 != 0 }

func (r IDR1) field(lsb, width uint) int { return int(field(uint64(r), lsb, width)) }

// SIDSIZE is the StreamID width in bits (0 to 32): how many devices, by
// requester ID, the SMMU can tell apart.
func (r IDR1) SIDSIZE() int { return r.field(idr1SIDSIZELSB, idr1SIDSIZEWidth) }

// SSIDSIZE is the SubstreamID (PASID) width in bits, 0 to 20; 0 means no
// PASIDs.
func (r IDR1) SSIDSIZE() int { return r.field(idr1SSIDSIZELSB, idr1SSIDSIZEWidth) }

// PRIQS is log2 of the maximum PRI queue entries.
func (r IDR1) PRIQS() int { return r.field(idr1PRIQSLSB, 5) }

// EVENTQS is log2 of the maximum Event queue entries.
func (r IDR1) EVENTQS() int { return r.field(idr1EVENTQSLSB, 5) }

// CMDQS is log2 of the maximum Command queue entries.
func (r IDR1) CMDQS() int { return r.field(idr1CMDQSLSB, 5) }

// AttrPermsOvr is ATTR_PERMS_OVR: incoming permission attributes can be
// overridden.
func (r IDR1) AttrPermsOvr() bool { return r.bit(idr1AttrPermsOvr) }

// AttrTypesOvr is ATTR_TYPES_OVR: incoming memory attributes can be
// overridden.
func (r IDR1) AttrTypesOvr() bool { return r.bit(idr1AttrTypesOvr) }

// REL is REL: preset base registers hold offsets, not addresses.
func (r IDR1) REL() bool { return r.bit(idr1REL) }

// QueuesPreset is QUEUES_PRESET: queue base registers are fixed.
func (r IDR1) QueuesPreset() bool { return r.bit(idr1QueuesPreset) }

// TablesPreset is TABLES_PRESET: stream table base registers are fixed.
func (r IDR1) TablesPreset() bool { return r.bit(idr1TablesPreset) }

// ECMDQ is Enhanced Command queue interface support (see SMMU_IDR6).
func (r IDR1) ECMDQ() bool { return r.bit(idr1ECMDQ) }

func idr1Name(bit uint) string {
	switch bit {
	case idr1AttrPermsOvr:
		return "ATTR_PERMS_OVR"
	case idr1AttrTypesOvr:
		return "ATTR_TYPES_OVR"
	case idr1REL:
		return "REL"
	case idr1QueuesPreset:
		return "QUEUES_PRESET"
	case idr1TablesPreset:
		return "TABLES_PRESET"
	case idr1ECMDQ:
		return "ECMDQ"
	}
	return ""
}

// Names lists the set single-bit fields by their spec names in bit order.
func (r IDR1) Names() []string { return setNames(uint64(r), 32, idr1Name, 0) }

// String prints the register and every field.
func (r IDR1) String() string {
	return withNames(fmt.Sprintf("%#08x (SIDSIZE %d, SSIDSIZE %d, PRIQS %d, EVENTQS %d, CMDQS %d)",
		uint32(r), r.SIDSIZE(), r.SSIDSIZE(), r.PRIQS(), r.EVENTQS(), r.CMDQS()), r.Names())
}

// IDR3 is SMMU_IDR3 (offset 0xc; IHI 0070 6.3.4).
type IDR3 uint32

// Bit positions and fields of SMMU_IDR3, per 6.3.4 and arm-smmu-v3.h's IDR3_*.
const (
	idr3HAD             = 2
	idr3PBHA            = 3
	idr3XNX             = 4
	idr3PPS             = 5
	idr3MPAM            = 7
	idr3FWB             = 8
	idr3STT             = 9
	idr3RIL             = 10
	idr3BBMLLSB         = 11 // 2 bits
	idr3E0PD            = 13
	idr3PTWNNC          = 14
	idr3DPT             = 15
	idr3PASIDTT         = 16
	idr3EPAN            = 17
	idr3S1PI            = 18
	idr3S2PI            = 19
	idr3S2PO            = 20
	idr3THE             = 21
	idr3MTEPERM         = 22
	idr3AIE             = 23
	idr3Reserved uint32 = 3 | 1<<6 | 0xff<<24
)

func (r IDR3) bit(n uint) bool { return r>>n&1 != 0 }

// HAD is Hierarchical Attribute Disable support.
func (r IDR3) HAD() bool { return r.bit(idr3HAD) }

// PBHA is Page-Based Hardware Attributes support.
func (r IDR3) PBHA() bool { return r.bit(idr3PBHA) }

// XNX is EL0/EL1 execute-never distinction at stage 2.
func (r IDR3) XNX() bool { return r.bit(idr3XNX) }

// PPS: a PASID is used on PRI responses regardless of STE.PPAR.
func (r IDR3) PPS() bool { return r.bit(idr3PPS) }

// MPAM is Memory Partitioning and Monitoring support.
func (r IDR3) MPAM() bool { return r.bit(idr3MPAM) }

// FWB is stage 2 control of memory types (STE.S2FWB): the host's stage 2
// can force cacheable memory, which the kernel's vSMMU needs unless the
// device is fully coherent.
func (r IDR3) FWB() bool { return r.bit(idr3FWB) }

// STT is Small Translation Table support.
func (r IDR3) STT() bool { return r.bit(idr3STT) }

// RIL is Range-based Invalidation and Level hint: unmapping a large range
// costs one TLB command instead of one per page.
func (r IDR3) RIL() bool { return r.bit(idr3RIL) }

// BBML is the break-before-make level, 0 to 2: how a block mapping may be
// split or merged without first making it invalid.
func (r IDR3) BBML() int { return int(field(uint64(r), idr3BBMLLSB, 2)) }

// E0PD is the E0PD mechanism.
func (r IDR3) E0PD() bool { return r.bit(idr3E0PD) }

// PTWNNC: stage 1 walks mapped as Device memory are treated as Normal
// Non-cacheable.
func (r IDR3) PTWNNC() bool { return r.bit(idr3PTWNNC) }

// DPT is Device Permission Table support.
func (r IDR3) DPT() bool { return r.bit(idr3DPT) }

// PASIDTT is PASID on ATS Translated transactions.
func (r IDR3) PASIDTT() bool { return r.bit(idr3PASIDTT) }

// EPAN is Enhanced PAN support.
func (r IDR3) EPAN() bool { return r.bit(idr3EPAN) }

// S1PI is stage 1 permission indirection support.
func (r IDR3) S1PI() bool { return r.bit(idr3S1PI) }

// S2PI is stage 2 permission indirection support.
func (r IDR3) S2PI() bool { return r.bit(idr3S2PI) }

// S2PO is stage 2 permission overlay support.
func (r IDR3) S2PO() bool { return r.bit(idr3S2PO) }

// THE is the Translation Hardening Extension.
func (r IDR3) THE() bool { return r.bit(idr3THE) }

// MTEPERM is stage 2 NoTagAccess encoding support.
func (r IDR3) MTEPERM() bool { return r.bit(idr3MTEPERM) }

// AIE is stage 1 Attribute Index Extension support.
func (r IDR3) AIE() bool { return r.bit(idr3AIE) }

func idr3Name(bit uint) string {
	switch bit {
	case idr3HAD:
		return "HAD"
	case idr3PBHA:
		return "PBHA"
	case idr3XNX:
		return "XNX"
	case idr3PPS:
		return "PPS"
	case idr3MPAM:
		return "MPAM"
	case idr3FWB:
		return "FWB"
	case idr3STT:
		return "STT"
	case idr3RIL:
		return "RIL"
	case idr3E0PD:
		return "E0PD"
	case idr3PTWNNC:
		return "PTWNNC"
	case idr3DPT:
		return "DPT"
	case idr3PASIDTT:
		return "PASIDTT"
	case idr3EPAN:
		return "EPAN"
	case idr3S1PI:
		return "S1PI"
	case idr3S2PI:
		return "S2PI"
	case idr3S2PO:
		return "S2PO"
	case idr3THE:
		return "THE"
	case idr3MTEPERM:
		return "MTEPERM"
	case idr3AIE:
		return "AIE"
	}
	return ""
}

// Names lists the set single-bit fields by their spec names in bit order;
// a set reserved bit is "bitN".
func (r IDR3) Names() []string { return setNames(uint64(r), 32, idr3Name, uint64(idr3Reserved)) }

// String prints the register and every field.
func (r IDR3) String() string {
	return withNames(fmt.Sprintf("%#08x (BBML %d)", uint32(r), r.BBML()), r.Names())
}

// IDR5 is SMMU_IDR5 (offset 0x14; IHI 0070 6.3.6).
type IDR5 uint32

// Bit positions and fields of SMMU_IDR5, per 6.3.6 and arm-smmu-v3.h's IDR5_*.
const (
	idr5OASLSB             = 0 // 3 bits
	idr5GRAN4K             = 4
	idr5GRAN16K            = 5
	idr5GRAN64K            = 6
	idr5DS                 = 7
	idr5D128               = 8
	idr5VAXLSB             = 10 // 2 bits
	idr5StallMaxLSB        = 16 // 16 bits
	idr5Reserved    uint32 = 1<<3 | 1<<9 | 0xf<<12
)

func (r IDR5) bit(n uint) bool { return r>>n&1 != 0 }

// OAS is the output (physical) address size in bits: 32, 36, 40, 42, 44,
// 48, 52 or 56. DMA cannot reach memory above it.
func (r IDR5) OAS() int {
	return [8]int{32, 36, 40, 42, 44, 48, 52, 56}[field(uint64(r), idr5OASLSB, 3)]
}

// GRAN4K is 4 KiB translation granule support (pages of 4K, 2M, 1G).
func (r IDR5) GRAN4K() bool { return r.bit(idr5GRAN4K) }

// GRAN16K is 16 KiB translation granule support (pages of 16K, 32M).
func (r IDR5) GRAN16K() bool { return r.bit(idr5GRAN16K) }

// GRAN64K is 64 KiB translation granule support (pages of 64K, 512M).
func (r IDR5) GRAN64K() bool { return r.bit(idr5GRAN64K) }

// DS is 52-bit addressing with the 4K and 16K granules.
func (r IDR5) DS() bool { return r.bit(idr5DS) }

// D128 is 128-bit (VMSAv9-128) descriptor support.
func (r IDR5) D128() bool { return r.bit(idr5D128) }

// VAX is the largest stage 1 input (virtual) address size in bits: 48, 52
// or 56; 0 for the reserved encoding.
func (r IDR5) VAX() int {
	return [4]int{48, 52, 56, 0}[field(uint64(r), idr5VAXLSB, 2)]
}

// StallMax is STALL_MAX, the most stall fault records outstanding at once.
func (r IDR5) StallMax() int { return int(field(uint64(r), idr5StallMaxLSB, 16)) }

func idr5Name(bit uint) string {
	switch bit {
	case idr5GRAN4K:
		return "GRAN4K"
	case idr5GRAN16K:
		return "GRAN16K"
	case idr5GRAN64K:
		return "GRAN64K"
	case idr5DS:
		return "DS"
	case idr5D128:
		return "D128"
	}
	return ""
}

// Names lists the set single-bit fields by their spec names in bit order;
// a set reserved bit is "bitN".
func (r IDR5) Names() []string { return setNames(uint64(r), 32, idr5Name, uint64(idr5Reserved)) }

// String prints the register and every field.
func (r IDR5) String() string {
	return withNames(fmt.Sprintf("%#08x (OAS %s, VAX %s, STALL_MAX %d)",
		uint32(r), bitsName(r.OAS()), bitsName(r.VAX()), r.StallMax()), r.Names())
}

// IIDR is SMMU_IIDR (offset 0x18; IHI 0070 6.3.7): who made the SMMU. The
// kernel keys its errata workarounds on it.
type IIDR uint32

// Implementer is the JEP106 code of the implementer: continuation code in
// bits 11:8, identity code in bits 6:0; 0x43b is Arm.
func (r IIDR) Implementer() uint16 { return uint16(field(uint64(r), 0, 12)) }

// Revision is the minor revision (the p in r0p1).
func (r IIDR) Revision() uint8 { return uint8(field(uint64(r), 12, 4)) }

// Variant is the major revision (the r in r0p1).
func (r IIDR) Variant() uint8 { return uint8(field(uint64(r), 16, 4)) }

// ProductID is the implementation-defined part number.
func (r IIDR) ProductID() uint16 { return uint16(field(uint64(r), 20, 12)) }

// String prints the register and its fields, naming Arm's parts as the
// kernel's arm_smmu_device_iidr_probe knows them, e.g.
//
//	0x4870143b (Arm MMU-700 r0p1)
func (r IIDR) String() string {
	impl := fmt.Sprintf("implementer %#03x", r.Implementer())
	prod := fmt.Sprintf("product %#03x", r.ProductID())
	if r.Implementer() == 0x43b {
		impl = "Arm"
		switch r.ProductID() {
		case 0x483:
			prod = "MMU-600"
		case 0x487:
			prod = "MMU-700"
		}
	}
	return fmt.Sprintf("%#08x (%s %s r%dp%d)", uint32(r), impl, prod, r.Variant(), r.Revision())
}

// AIDR is SMMU_AIDR (offset 0x1c; IHI 0070 6.3.8): the architecture
// revision.
type AIDR uint32

// ArchMajorRev is 0 for SMMUv3.x.
func (r AIDR) ArchMajorRev() int { return int(field(uint64(r), 4, 4)) }

// ArchMinorRev is x in SMMUv3.x.
func (r AIDR) ArchMinorRev() int { return int(field(uint64(r), 0, 4)) }

// String is "SMMUv3.1" and so on.
func (r AIDR) String() string {
	if r.ArchMajorRev() == 0 && r>>8 == 0 {
		return fmt.Sprintf("SMMUv3.%d", r.ArchMinorRev())
	}
	return fmt.Sprintf("SMMU(AIDR %#08x)", uint32(r))
}
