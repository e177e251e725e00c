package hwinfo

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"testing"
)

// Bit positions written out again from IHI 0070 G.b, 6.3.1 to 6.3.6.

type idrBit struct {
	reg  int // 0, 1, 3 or 5
	bit  uint
	name string
	get  func(SMMUv3) bool
}

func idrBits() []idrBit {
	i0 := func(f func(IDR0) bool) func(SMMUv3) bool { return func(s SMMUv3) bool { return f(s.IDR0()) } }
	i1 := func(f func(IDR1) bool) func(SMMUv3) bool { return func(s SMMUv3) bool { return f(s.IDR1()) } }
	i3 := func(f func(IDR3) bool) func(SMMUv3) bool { return func(s SMMUv3) bool { return f(s.IDR3()) } }
	i5 := func(f func(IDR5) bool) func(SMMUv3) bool { return func(s SMMUv3) bool { return f(s.IDR5()) } }
	return []idrBit{
		{0, 0, "S2P", i0(IDR0.S2P)},
		{0, 1, "S1P", i0(IDR0.S1P)},
		{0, 4, "COHACC", i0(IDR0.COHACC)},
		{0, 5, "BTM", i0(IDR0.BTM)},
		{0, 8, "DORMHINT", i0(IDR0.DORMHINT)},
		{0, 9, "Hyp", i0(IDR0.Hyp)},
		{0, 10, "ATS", i0(IDR0.ATS)},
		{0, 11, "NS1ATS", i0(IDR0.NS1ATS)},
		{0, 12, "ASID16", i0(IDR0.ASID16)},
		{0, 13, "MSI", i0(IDR0.MSI)},
		{0, 14, "SEV", i0(IDR0.SEV)},
		{0, 15, "ATOS", i0(IDR0.ATOS)},
		{0, 16, "PRI", i0(IDR0.PRI)},
		{0, 17, "VMW", i0(IDR0.VMW)},
		{0, 18, "VMID16", i0(IDR0.VMID16)},
		{0, 19, "CD2L", i0(IDR0.CD2L)},
		{0, 20, "VATOS", i0(IDR0.VATOS)},
		{0, 23, "ATSRECERR", i0(IDR0.ATSRECERR)},
		{0, 26, "TERM_MODEL", i0(IDR0.TermModel)},
		{0, 30, "RME_IMPL", i0(IDR0.RMEImpl)},

		{1, 26, "ATTR_PERMS_OVR", i1(IDR1.AttrPermsOvr)},
		{1, 27, "ATTR_TYPES_OVR", i1(IDR1.AttrTypesOvr)},
		{1, 28, "REL", i1(IDR1.REL)},
		{1, 29, "QUEUES_PRESET", i1(IDR1.QueuesPreset)},
		{1, 30, "TABLES_PRESET", i1(IDR1.TablesPreset)},
		{1, 31, "ECMDQ", i1(IDR1.ECMDQ)},

		{3, 2, "HAD", i3(IDR3.HAD)},
		{3, 3, "PBHA", i3(IDR3.PBHA)},
		{3, 4, "XNX", i3(IDR3.XNX)},
		{3, 5, "PPS", i3(IDR3.PPS)},
		{3, 7, "MPAM", i3(IDR3.MPAM)},
		{3, 8, "FWB", i3(IDR3.FWB)},
		{3, 9, "STT", i3(IDR3.STT)},
		{3, 10, "RIL", i3(IDR3.RIL)},
		{3, 13, "E0PD", i3(IDR3.E0PD)},
		{3, 14, "PTWNNC", i3(IDR3.PTWNNC)},
		{3, 15, "DPT", i3(IDR3.DPT)},
		{3, 16, "PASIDTT", i3(IDR3.PASIDTT)},
		{3, 17, "EPAN", i3(IDR3.EPAN)},
		{3, 18, "S1PI", i3(IDR3.S1PI)},
		{3, 19, "S2PI", i3(IDR3.S2PI)},
		{3, 20, "S2PO", i3(IDR3.S2PO)},
		{3, 21, "THE", i3(IDR3.THE)},
		{3, 22, "MTEPERM", i3(IDR3.MTEPERM)},
		{3, 23, "AIE", i3(IDR3.AIE)},

		{5, 4, "GRAN4K", i5(IDR5.GRAN4K)},
		{5, 5, "GRAN16K", i5(IDR5.GRAN16K)},
		{5, 6, "GRAN64K", i5(IDR5.GRAN64K)},
		{5, 7, "DS", i5(IDR5.DS)},
		{5, 8, "D128", i5(IDR5.D128)},
	}
}

// Per register: multi-bit fields as [lsb, msb] and reserved bits.
var (
	idrFieldBits = map[int][][2]uint{
		0: {{2, 3}, {6, 7}, {21, 22}, {24, 25}, {27, 28}},  // TTF HTTU TTENDIAN STALL_MODEL ST_LEVEL
		1: {{0, 5}, {6, 10}, {11, 15}, {16, 20}, {21, 25}}, // SIDSIZE SSIDSIZE PRIQS EVENTQS CMDQS
		3: {{11, 12}},                                      // BBML
		5: {{0, 2}, {10, 11}, {16, 31}},                    // OAS VAX STALL_MAX
	}
	idrReservedBits = map[int][]uint{
		0: {29, 31},
		3: {0, 1, 6, 24, 25, 26, 27, 28, 29, 30, 31},
		5: {3, 9, 12, 13, 14, 15},
	}
)

// TestIDRBitsCover checks all 32 bits of IDR0, IDR1, IDR3 and IDR5: a
// named bit sets exactly its accessor and name, a field bit no name, a
// reserved bit "IDRn.bitN".
func TestIDRBitsCover(t *testing.T) {
	t.Parallel()
	bits := idrBits()
	for _, reg := range []int{0, 1, 3, 5} {
		for i := range uint(32) {
			var s, inv SMMUv3
			s.IDR[reg] = 1 << i
			inv.IDR[reg] = ^uint32(1 << i)
			var want []string
			for _, b := range bits {
				if b.reg == reg && b.bit == i {
					want = []string{b.name}
				}
			}
			if slices.Contains(idrReservedBits[reg], i) {
				want = []string{"IDR" + strconv.Itoa(reg) + ".bit" + strconv.Itoa(int(i))}
			}
			classes := 0
			if len(want) > 0 {
				classes++
			}
			if inFields(idrFieldBits[reg], i) {
				classes++
			}
			if classes != 1 {
				t.Errorf("test tables: IDR%d bit %d is in %d classes", reg, i, classes)
			}
			if got := s.Names(); !slices.Equal(got, want) {
				t.Errorf("IDR%d 1<<%d: Names() = %q, want %q", reg, i, got, want)
			}
			for _, b := range bits {
				if got := b.get(s); got != (b.reg == reg && b.bit == i) {
					t.Errorf("IDR%d 1<<%d: %s() = %v", reg, i, b.name, got)
				}
				if got := b.get(inv); got != (b.reg == reg && b.bit != i) {
					t.Errorf("IDR%d ^(1<<%d): %s() = %v", reg, i, b.name, got)
				}
			}
		}
	}
}

func TestIDRFields(t *testing.T) {
	t.Parallel()
	ttf := []string{"reserved(0)", "AArch32", "AArch64", "AArch32+AArch64"}
	httu := []string{"none", "access", "access+dirty", "access+dirty+table-access"}
	endian := []string{"mixed", "reserved(1)", "LE", "BE"}
	stall := []string{"stall+terminate", "terminate", "stall-forced", "reserved(3)"}
	for v := range uint32(4) {
		if got := IDR0(v << 2).TTF(); got != TTF(v) || got.String() != ttf[v] {
			t.Errorf("TTF %d = %d %q", v, got, got)
		}
		if got := IDR0(v << 6).HTTU(); got != HTTU(v) || got.String() != httu[v] {
			t.Errorf("HTTU %d = %d %q", v, got, got)
		}
		if got := IDR0(v << 21).TTEndian(); got != TTEndian(v) || got.String() != endian[v] {
			t.Errorf("TTENDIAN %d = %d %q", v, got, got)
		}
		if got := IDR0(v << 24).StallModel(); got != StallModel(v) || got.String() != stall[v] {
			t.Errorf("STALL_MODEL %d = %d %q", v, got, got)
		}
		if got := IDR0(v << 27).STLevel(); got != int(v) {
			t.Errorf("ST_LEVEL %d = %d", v, got)
		}
		if got := IDR3(v << 11).BBML(); got != int(v) {
			t.Errorf("BBML %d = %d", v, got)
		}
		if got, want := IDR5(v<<10).VAX(), []int{48, 52, 56, 0}[v]; got != want {
			t.Errorf("VAX %d = %d, want %d", v, got, want)
		}
	}
	for v, want := range []int{32, 36, 40, 42, 44, 48, 52, 56} {
		if got := IDR5(v).OAS(); got != want {
			t.Errorf("OAS %d = %d, want %d", v, got, want)
		}
	}
	if got := IDR5(0xffff << 16).StallMax(); got != 0xffff {
		t.Errorf("STALL_MAX = %d", got)
	}
	r1 := IDR1(32 | 20<<6 | 8<<11 | 19<<16 | 17<<21)
	if r1.SIDSIZE() != 32 || r1.SSIDSIZE() != 20 || r1.PRIQS() != 8 || r1.EVENTQS() != 19 || r1.CMDQS() != 17 {
		t.Errorf("IDR1 %v", r1)
	}
	if r1 := IDR1(0xffffffff); r1.SIDSIZE() != 63 || r1.SSIDSIZE() != 31 || r1.PRIQS() != 31 || r1.EVENTQS() != 31 || r1.CMDQS() != 31 {
		t.Errorf("IDR1 all ones: %v", r1)
	}

	for _, tc := range []struct {
		r            IIDR
		impl, prod   uint16
		variant, rev uint8
		str          string
	}{
		{0, 0, 0, 0, 0, "0x00000000 (implementer 0x000 product 0x000 r0p0)"},
		{0x4870143b, 0x43b, 0x487, 0, 1, "0x4870143b (Arm MMU-700 r0p1)"},
		{0x4833243b, 0x43b, 0x483, 3, 2, "0x4833243b (Arm MMU-600 r3p2)"},
		{0x1234543b, 0x43b, 0x123, 4, 5, "0x1234543b (Arm product 0x123 r4p5)"},
		{0xffffffff, 0xfff, 0xfff, 15, 15, "0xffffffff (implementer 0xfff product 0xfff r15p15)"},
	} {
		if tc.r.Implementer() != tc.impl || tc.r.ProductID() != tc.prod || tc.r.Variant() != tc.variant || tc.r.Revision() != tc.rev {
			t.Errorf("IIDR %#x: implementer %#x product %#x variant %d revision %d", uint32(tc.r),
				tc.r.Implementer(), tc.r.ProductID(), tc.r.Variant(), tc.r.Revision())
		}
		if got := tc.r.String(); got != tc.str {
			t.Errorf("IIDR %#x: String() = %q, want %q", uint32(tc.r), got, tc.str)
		}
	}

	for _, tc := range []struct {
		r            AIDR
		major, minor int
		str          string
	}{
		{0, 0, 0, "SMMUv3.0"},
		{1, 0, 1, "SMMUv3.1"},
		{2, 0, 2, "SMMUv3.2"},
		{3, 0, 3, "SMMUv3.3"},
		{0x10, 1, 0, "SMMU(AIDR 0x00000010)"},
		{0x100, 0, 0, "SMMU(AIDR 0x00000100)"}, // RES0 bits set
	} {
		if tc.r.ArchMajorRev() != tc.major || tc.r.ArchMinorRev() != tc.minor || tc.r.String() != tc.str {
			t.Errorf("AIDR %#x: %d.%d %q", uint32(tc.r), tc.r.ArchMajorRev(), tc.r.ArchMinorRev(), tc.r.String())
		}
	}
}

// TestSMMUv3QEMU decodes what QEMU 10.0's emulated SMMUv3 (-machine
// virt,iommu=smmuv3) reported through IOMMU_GET_HW_INFO on a 7.3 kernel
// (an arm64 guest), against decodings worked out by
// hand from IHI 0070:
//
//	IDR0 0x0d44101b = 0000_1101_0100_0100_0001_0000_0001_1011:
//	  bit 0 S2P, bit 1 S1P, TTF (3:2) = 10b AArch64, bit 4 COHACC,
//	  HTTU (7:6) = 0, bit 12 ASID16, bit 18 VMID16, TTENDIAN (22:21) = 10b
//	  LE, STALL_MODEL (25:24) = 01b no stall, bit 26 TERM_MODEL,
//	  ST_LEVEL (28:27) = 01b 2-level. No ATS, PRI, MSI, BTM, CD2L.
//	IDR1 0x02730010: SIDSIZE (5:0) = 16, SSIDSIZE (10:6) = 0, PRIQS = 0,
//	  EVENTQS (20:16) = 0x13 = 19, CMDQS (25:21) = 0x13 = 19.
//	IDR3 0x1414 = 0001_0100_0001_0100: bit 2 HAD, bit 4 XNX, bit 10 RIL,
//	  BBML (12:11) = 10b = 2.
//	IDR5 0x74 = 0111_0100: OAS (2:0) = 100b 44 bits, bits 4-6 GRAN4K,
//	  GRAN16K, GRAN64K, VAX (11:10) = 0 -> 48 bits, STALL_MAX 0.
//	IIDR 0 (QEMU sets no implementer), AIDR 1 -> SMMUv3.1.
//
// QEMU's smmuv3_init_regs sets the same: S1P, S2P, TTF 2, COHACC, ASID16,
// VMID16, TTENDIAN 2, STALL_MODEL 1, TERM_MODEL 1, STLEVEL 1; SIDSIZE 16,
// EVENTQS 19, CMDQS 19; HAD, XNX (with S2P), RIL, BBML 2; OAS 4, GRAN4K,
// GRAN16K, GRAN64K; aidr 0x1.
func TestSMMUv3QEMU(t *testing.T) {
	t.Parallel()
	s := SMMUv3{IDR: [6]uint32{0x0d44101b, 0x02730010, 0, 0x1414, 0, 0x74}, IIDR: 0, AIDR: 1}
	on := []string{"S2P", "S1P", "COHACC", "ASID16", "VMID16", "TERM_MODEL", "HAD", "XNX", "RIL", "GRAN4K", "GRAN16K", "GRAN64K"}
	for _, b := range idrBits() {
		if got := b.get(s); got != slices.Contains(on, b.name) {
			t.Errorf("%s() = %v", b.name, got)
		}
	}
	if got := s.Names(); !slices.Equal(got, on) {
		t.Errorf("Names() = %q, want %q", got, on)
	}
	i0, i1, i3, i5 := s.IDR0(), s.IDR1(), s.IDR3(), s.IDR5()
	if i0.TTF() != TTFAArch64 || i0.HTTU() != HTTUNone || i0.TTEndian() != TTEndianLE ||
		i0.StallModel() != StallNone || i0.STLevel() != 1 {
		t.Errorf("IDR0 fields: %v", i0)
	}
	if i1.SIDSIZE() != 16 || i1.SSIDSIZE() != 0 || i1.PRIQS() != 0 || i1.EVENTQS() != 19 || i1.CMDQS() != 19 {
		t.Errorf("IDR1 fields: %v", i1)
	}
	if i3.BBML() != 2 {
		t.Errorf("IDR3 fields: %v", i3)
	}
	if i5.OAS() != 44 || i5.VAX() != 48 || i5.StallMax() != 0 {
		t.Errorf("IDR5 fields: %v", i5)
	}
	if s.AIDR.ArchMajorRev() != 0 || s.AIDR.ArchMinorRev() != 1 {
		t.Errorf("AIDR: %v", s.AIDR)
	}

	for _, tc := range []struct{ got, want string }{
		{s.String(), "SMMUv3.1 IIDR=0x00000000: OAS 44-bit, VAX 48-bit, SIDSIZE 16, SSIDSIZE 0, TTF AArch64, TTENDIAN LE, STALL_MODEL terminate, ST_LEVEL 2-level, BBML 2; S2P S1P COHACC ASID16 VMID16 TERM_MODEL HAD XNX RIL GRAN4K GRAN16K GRAN64K"},
		{i0.String(), "0x0d44101b (TTF AArch64, HTTU none, TTENDIAN LE, STALL_MODEL terminate, ST_LEVEL 2-level): S2P S1P COHACC ASID16 VMID16 TERM_MODEL"},
		{i1.String(), "0x02730010 (SIDSIZE 16, SSIDSIZE 0, PRIQS 0, EVENTQS 19, CMDQS 19)"},
		{i3.String(), "0x00001414 (BBML 2): HAD XNX RIL"},
		{i5.String(), "0x00000074 (OAS 44-bit, VAX 48-bit, STALL_MAX 0): GRAN4K GRAN16K GRAN64K"},
		{s.AIDR.String(), "SMMUv3.1"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() =\n%s\nwant\n%s", tc.got, tc.want)
		}
	}
}

func TestSMMUv3StringOdd(t *testing.T) {
	t.Parallel()
	s := SMMUv3{Flags: 2, IDR: [6]uint32{1<<31 | 3<<27, 0, 0, 1 << 6, 0, 3 << 10}, AIDR: 0x10}
	want := "SMMU(AIDR 0x00000010) IIDR=0x00000000: OAS 32-bit, VAX reserved, SIDSIZE 0, SSIDSIZE 0, TTF reserved(0), TTENDIAN mixed, STALL_MODEL stall+terminate, ST_LEVEL reserved(3), BBML 0; IDR0.bit31 IDR3.bit6; flags 0x2"
	if got := s.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

func TestDecodeSMMUv3(t *testing.T) {
	t.Parallel()
	if !littleEndian() {
		t.Skip("the expected bytes are written little-endian")
	}
	data := []byte{
		0x00, 0x00, 0x00, 0x00, // flags
		0xef, 0xbe, 0xad, 0xde, // __reserved, not kept
		0x1b, 0x10, 0x44, 0x0d, // idr[0]
		0x10, 0x00, 0x73, 0x02, // idr[1]
		0x01, 0x02, 0x03, 0x04, // idr[2]
		0x14, 0x14, 0x00, 0x00, // idr[3]
		0x05, 0x06, 0x07, 0x08, // idr[4]
		0x74, 0x00, 0x00, 0x00, // idr[5]
		0x3b, 0x14, 0x70, 0x48, // iidr
		0x01, 0x00, 0x00, 0x00, // aidr
	}
	want := SMMUv3{
		IDR:  [6]uint32{0x0d44101b, 0x02730010, 0x04030201, 0x1414, 0x08070605, 0x74},
		IIDR: 0x4870143b,
		AIDR: 1,
	}
	s, err := DecodeSMMUv3(data)
	if err != nil || s != want {
		t.Fatalf("DecodeSMMUv3 = %+v, %v; want %+v", s, err, want)
	}
	if s, err := DecodeSMMUv3(append(slices.Clone(data), 9, 9, 9, 9)); err != nil || s != want {
		t.Errorf("DecodeSMMUv3(44 bytes) = %+v, %v", s, err)
	}
	b, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	wantBytes := slices.Clone(data)
	copy(wantBytes[4:8], []byte{0, 0, 0, 0})
	if !slices.Equal(b, wantBytes) {
		t.Errorf("MarshalBinary = % x, want % x", b, wantBytes)
	}
	for _, n := range []int{0, 4, 39} {
		if _, err := DecodeSMMUv3(data[:n]); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("DecodeSMMUv3(%d bytes) error = %v, want ErrUnexpectedEOF", n, err)
		}
	}
}
