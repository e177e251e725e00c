package hwinfo

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The bit positions below are written out again from the VT-d spec rev 4.x
// (11.4.2, 11.4.3), not taken from the implementation's constants, so a
// wrong constant fails here.

type capBit struct {
	bit  uint
	name string
	get  func(Cap) bool
}

func capBits() []capBit {
	return []capBit{
		{3, "AFL", Cap.AFL},
		{4, "RWBF", Cap.RWBF},
		{5, "PLMR", Cap.PLMR},
		{6, "PHMR", Cap.PHMR},
		{7, "CM", Cap.CM},
		{22, "ZLR", Cap.ZLR},
		{39, "PSI", Cap.PSI},
		{54, "DWD", Cap.DWD},
		{55, "DRD", Cap.DRD},
		{56, "FL1GP", Cap.FL1GP},
		{59, "PI", Cap.PI},
		{60, "FL5LP", Cap.FL5LP},
		{61, "ECMDS", Cap.ECMDS},
		{62, "ESIRTPS", Cap.ESIRTPS},
		{63, "ESRTPS", Cap.ESRTPS},
	}
}

type ecapBit struct {
	bit  uint
	name string
	get  func(ECap) bool
}

func ecapBits() []ecapBit {
	return []ecapBit{
		{0, "C", ECap.C},
		{1, "QI", ECap.QI},
		{2, "DT", ECap.DT},
		{3, "IR", ECap.IR},
		{4, "EIM", ECap.EIM},
		{6, "PT", ECap.PT},
		{7, "SC", ECap.SC},
		{25, "MTS", ECap.MTS},
		{26, "NEST", ECap.NEST},
		{29, "PRS", ECap.PRS},
		{30, "ERS", ECap.ERS},
		{31, "SRS", ECap.SRS},
		{33, "NWFS", ECap.NWFS},
		{34, "EAFS", ECap.EAFS},
		{40, "PASID", ECap.PASID},
		{41, "DIT", ECap.DIT},
		{42, "PDS", ECap.PDS},
		{43, "SMTS", ECap.SMTS},
		{44, "VCS", ECap.VCS},
		{45, "SLADS", ECap.SLADS},
		{46, "SLTS", ECap.SLTS},
		{47, "FLTS", ECap.FLTS},
		{48, "SMPWCS", ECap.SMPWCS},
		{49, "RPS", ECap.RPS},
		{51, "PMS", ECap.PMS},
		{52, "ADMS", ECap.ADMS},
		{53, "RPRIVS", ECap.RPRIVS},
	}
}

// Bits named without an accessor: defined by older revisions (and the
// kernel's iommu.h) but reserved in rev 4, or named only by Intel's product
// register references.
var (
	capOnlyNamed  = map[uint]string{23: "ISOCH"}
	ecapOnlyNamed = map[uint]string{5: "CH", 24: "ECS", 27: "DIS", 28: "PASIDv2", 32: "POT", 50: "TDXIO"}
)

// Multi-bit fields, as [lsb, msb] pairs.
var (
	capFieldBits  = [][2]uint{{0, 2}, {8, 12}, {16, 21}, {24, 33}, {34, 37}, {40, 47}, {48, 53}} // ND SAGAW MGAW FRO SLLPS NFR MAMV
	ecapFieldBits = [][2]uint{{8, 17}, {20, 23}, {35, 39}}                                       // IRO MHMV PSS
)

// Reserved in rev 4.
var (
	capReservedBits  = []uint{13, 14, 15, 38, 57, 58}
	ecapReservedBits = []uint{18, 19, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63}
)

func inFields(fields [][2]uint, bit uint) bool {
	for _, f := range fields {
		if bit >= f[0] && bit <= f[1] {
			return true
		}
	}
	return false
}

// TestCapBitsCover checks every one of the 64 bits of CAP_REG: a named
// bit sets exactly its accessor and its name, a field bit no name, a
// reserved bit "bitN".
func TestCapBitsCover(t *testing.T) {
	t.Parallel()
	bits := capBits()
	for i := range uint(64) {
		c := Cap(1) << i
		want := []string(nil)
		var acc *capBit
		for j := range bits {
			if bits[j].bit == i {
				acc = &bits[j]
				want = []string{bits[j].name}
			}
		}
		if n, ok := capOnlyNamed[i]; ok {
			want = []string{n}
		}
		if slices.Contains(capReservedBits, i) {
			want = []string{"bit" + strconv.Itoa(int(i))}
		}
		classes := 0
		if len(want) > 0 {
			classes++
		}
		if inFields(capFieldBits, i) {
			classes++
		}
		if classes != 1 {
			t.Errorf("test tables: bit %d is in %d classes", i, classes)
		}
		if got := c.Names(); !slices.Equal(got, want) {
			t.Errorf("Cap(1<<%d).Names() = %q, want %q", i, got, want)
		}
		for _, b := range bits {
			if got := b.get(c); got != (acc != nil && b.bit == acc.bit) {
				t.Errorf("Cap(1<<%d).%s() = %v", i, b.name, got)
			}
			if b.get(^c) != (b.bit != i) {
				t.Errorf("Cap(^(1<<%d)).%s() = %v", i, b.name, b.get(^c))
			}
		}
	}
}

func TestECapBitsCover(t *testing.T) {
	t.Parallel()
	bits := ecapBits()
	for i := range uint(64) {
		e := ECap(1) << i
		want := []string(nil)
		var acc *ecapBit
		for j := range bits {
			if bits[j].bit == i {
				acc = &bits[j]
				want = []string{bits[j].name}
			}
		}
		if n, ok := ecapOnlyNamed[i]; ok {
			want = []string{n}
		}
		if slices.Contains(ecapReservedBits, i) {
			want = []string{"bit" + strconv.Itoa(int(i))}
		}
		classes := 0
		if len(want) > 0 {
			classes++
		}
		if inFields(ecapFieldBits, i) {
			classes++
		}
		if classes != 1 {
			t.Errorf("test tables: bit %d is in %d classes", i, classes)
		}
		if got := e.Names(); !slices.Equal(got, want) {
			t.Errorf("ECap(1<<%d).Names() = %q, want %q", i, got, want)
		}
		for _, b := range bits {
			if got := b.get(e); got != (acc != nil && b.bit == acc.bit) {
				t.Errorf("ECap(1<<%d).%s() = %v", i, b.name, got)
			}
			if b.get(^e) != (b.bit != i) {
				t.Errorf("ECap(^(1<<%d)).%s() = %v", i, b.name, b.get(^e))
			}
		}
	}
}

func TestCapFields(t *testing.T) {
	t.Parallel()
	mib, gib := uint64(1)<<20, uint64(1)<<30
	for _, tc := range []struct {
		c                      Cap
		domains                int
		sagaw                  []int
		mgaw                   int
		fro                    uint64
		sllps                  []uint64
		nfr, mamv              int
		sagawRsvd, sllpsReserv bool
	}{
		{c: 0, domains: 16, mgaw: 1, nfr: 1},
		{c: 1, domains: 64, mgaw: 1, nfr: 1},
		{c: 2, domains: 256, mgaw: 1, nfr: 1},
		{c: 3, domains: 1024, mgaw: 1, nfr: 1},
		{c: 4, domains: 4096, mgaw: 1, nfr: 1},
		{c: 5, domains: 16384, mgaw: 1, nfr: 1},
		{c: 6, domains: 65536, mgaw: 1, nfr: 1},
		{c: 7, domains: 0, mgaw: 1, nfr: 1}, // ND 111b is reserved
		{c: 0b00010 << 8, domains: 16, sagaw: []int{39}, mgaw: 1, nfr: 1},
		{c: 0b00100 << 8, domains: 16, sagaw: []int{48}, mgaw: 1, nfr: 1},
		{c: 0b01000 << 8, domains: 16, sagaw: []int{57}, mgaw: 1, nfr: 1},
		{c: 0b01110 << 8, domains: 16, sagaw: []int{39, 48, 57}, mgaw: 1, nfr: 1},
		{c: 0b10001 << 8, domains: 16, mgaw: 1, nfr: 1, sagawRsvd: true}, // rev 1's 30- and 64-bit
		{c: 38 << 16, domains: 16, mgaw: 39, nfr: 1},
		{c: 47 << 16, domains: 16, mgaw: 48, nfr: 1},
		{c: 56 << 16, domains: 16, mgaw: 57, nfr: 1},
		{c: 0x3f << 16, domains: 16, mgaw: 64, nfr: 1},
		{c: 0x22 << 24, domains: 16, mgaw: 1, fro: 0x220, nfr: 1},
		{c: 0x3ff << 24, domains: 16, mgaw: 1, fro: 0x3ff0, nfr: 1},
		{c: 1 << 34, domains: 16, mgaw: 1, sllps: []uint64{2 * mib}, nfr: 1},
		{c: 2 << 34, domains: 16, mgaw: 1, sllps: []uint64{gib}, nfr: 1},
		{c: 3 << 34, domains: 16, mgaw: 1, sllps: []uint64{2 * mib, gib}, nfr: 1},
		{c: 0xc << 34, domains: 16, mgaw: 1, nfr: 1, sllpsReserv: true},
		{c: 7 << 40, domains: 16, mgaw: 1, nfr: 8},
		{c: 0xff << 40, domains: 16, mgaw: 1, nfr: 256},
		{c: 9 << 48, domains: 16, mgaw: 1, nfr: 1, mamv: 9},
		{c: 0x3f << 48, domains: 16, mgaw: 1, nfr: 1, mamv: 63},
	} {
		if got := tc.c.Domains(); got != tc.domains {
			t.Errorf("%#x: Domains() = %d, want %d", uint64(tc.c), got, tc.domains)
		}
		if got := tc.c.SAGAW(); !slices.Equal(got, tc.sagaw) {
			t.Errorf("%#x: SAGAW() = %v, want %v", uint64(tc.c), got, tc.sagaw)
		}
		if got := tc.c.MGAW(); got != tc.mgaw {
			t.Errorf("%#x: MGAW() = %d, want %d", uint64(tc.c), got, tc.mgaw)
		}
		if got := tc.c.FRO(); got != tc.fro {
			t.Errorf("%#x: FRO() = %#x, want %#x", uint64(tc.c), got, tc.fro)
		}
		if got := tc.c.SLLPS(); !slices.Equal(got, tc.sllps) {
			t.Errorf("%#x: SLLPS() = %v, want %v", uint64(tc.c), got, tc.sllps)
		}
		if got := tc.c.NFR(); got != tc.nfr {
			t.Errorf("%#x: NFR() = %d, want %d", uint64(tc.c), got, tc.nfr)
		}
		if got := tc.c.MAMV(); got != tc.mamv {
			t.Errorf("%#x: MAMV() = %d, want %d", uint64(tc.c), got, tc.mamv)
		}
		if got := strings.Contains(tc.c.String(), "reserved, MGAW"); got != tc.sagawRsvd {
			t.Errorf("%#x: String() = %q, marks reserved SAGAW: %v, want %v", uint64(tc.c), tc.c.String(), got, tc.sagawRsvd)
		}
		if got := strings.Contains(tc.c.String(), "reserved, NFR"); got != tc.sllpsReserv {
			t.Errorf("%#x: String() = %q, marks reserved SLLPS: %v, want %v", uint64(tc.c), tc.c.String(), got, tc.sllpsReserv)
		}
	}
}

func TestECapFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e         ECap
		iro       uint64
		mhmv, pss int
	}{
		{e: 0, pss: 1},
		{e: 0xf << 8, iro: 0xf0, pss: 1},
		{e: 0x3ff << 8, iro: 0x3ff0, pss: 1},
		{e: 0xf << 20, mhmv: 15, pss: 1},
		{e: 7 << 35, pss: 8},
		{e: 19 << 35, pss: 20},
		{e: 0x1f << 35, pss: 32},
	} {
		if got := tc.e.IRO(); got != tc.iro {
			t.Errorf("%#x: IRO() = %#x, want %#x", uint64(tc.e), got, tc.iro)
		}
		if got := tc.e.MHMV(); got != tc.mhmv {
			t.Errorf("%#x: MHMV() = %d, want %d", uint64(tc.e), got, tc.mhmv)
		}
		if got := tc.e.PSS(); got != tc.pss {
			t.Errorf("%#x: PSS() = %d, want %d", uint64(tc.e), got, tc.pss)
		}
	}
}

// TestVTDQEMU decodes what QEMU 10.0's emulated VT-d reported through
// IOMMU_GET_HW_INFO and sysfs in our guest (hwtests/vm),
// against decodings worked out by hand from the spec:
//
//	cap 0x00d2008c222f0686, bytes from bit 0 up:
//	  0x86 = 1000_0110: ND (2:0) = 110b -> 2^16 = 65536 domains; bit 7 CM.
//	  0x06: SAGAW (12:8) = 00110b -> 39- and 48-bit.
//	  0x2f: MGAW (21:16) = 47 -> 48 bits; ZLR (22), bit 23 clear.
//	  0x22 and 0x8c bits 1:0: FRO (33:24) = 0x22 -> offset 0x220.
//	  0x8c = 1000_1100: SLLPS (37:34) = 0011b -> 2M, 1G; bit 39 PSI.
//	  0x00: NFR (47:40) = 0 -> 1 register.
//	  0xd2 = 1101_0010: MAMV (53:48) = 18; bit 54 DWD, bit 55 DRD.
//	  0x00: no FL1GP, PI, FL5LP, ECMDS, ESIRTPS, ESRTPS.
//	ecap 0xf00f4a:
//	  0x4a = 0100_1010: bit 1 QI, bit 3 IR, bit 6 PT (no C, DT, EIM, SC).
//	  0xf00 >> 8: IRO = 0xf -> offset 0xf0; 0xf00000 >> 20: MHMV = 15.
//	x-scalable-mode=on adds 0x480080000000: bit 31 SRS, 43 SMTS, 46 SLTS.
//	x-flts=on adds 0x880000000000 instead: bit 43 SMTS, 47 FLTS.
//
// QEMU's hw/i386/intel_iommu_internal.h agrees: VTD_CAP_FRO (0x220 << 20),
// VTD_CAP_NFR (0), VTD_CAP_ND (16-bit IDs), VTD_CAP_MAMV (18 << 48),
// VTD_CAP_PSI, VTD_CAP_SLLPS (bits 34, 35), VTD_CAP_DRAIN (54, 55),
// VTD_CAP_CM, SAGAW 39 | 48, VTD_CAP_MGAW(48); VTD_ECAP_QI, _IR, _PT,
// _IRO (0xf0 << 4), _MHMV (15 << 20); and for scalable mode _SMTS | _SRS |
// _SLTS, for x-flts _SMTS | _FLTS.
func TestVTDQEMU(t *testing.T) {
	t.Parallel()
	const cap = Cap(0x00d2008c222f0686)
	for _, tc := range []struct {
		name string
		ecap ECap
		on   []string // ECap bits set, in bit order
		str  string
	}{
		{
			"caching-mode", 0xf00f4a, []string{"QI", "IR", "PT"},
			"VT-d cap=0x00d2008c222f0686 ecap=0x0000000000f00f4a: 48-bit (SAGAW 39,48), 65536 domains, superpages 2M,1G; CM PSI DWD DRD QI IR PT",
		},
		{
			"x-scalable-mode", 0x480080f00f4a, []string{"QI", "IR", "PT", "SRS", "SMTS", "SLTS"},
			"VT-d cap=0x00d2008c222f0686 ecap=0x0000480080f00f4a: 48-bit (SAGAW 39,48), 65536 domains, superpages 2M,1G; CM PSI DWD DRD QI IR PT SRS SMTS SLTS",
		},
		{
			"x-flts", 0x880000f00f4a, []string{"QI", "IR", "PT", "SMTS", "FLTS"},
			"VT-d cap=0x00d2008c222f0686 ecap=0x0000880000f00f4a: 48-bit (SAGAW 39,48), 65536 domains, superpages 2M,1G; CM PSI DWD DRD QI IR PT SMTS FLTS",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The same values as sysfs prints them.
			v, err := ParseVTDRegs("d2008c222f0686\n", strconv.FormatUint(uint64(tc.ecap), 16)+"\n")
			if err != nil {
				t.Fatal(err)
			}
			if v != (VTD{Cap: cap, ECap: tc.ecap}) {
				t.Fatalf("ParseVTDRegs = %+v", v)
			}

			c := v.Cap
			if c.Domains() != 65536 || !slices.Equal(c.SAGAW(), []int{39, 48}) || c.MGAW() != 48 ||
				c.FRO() != 0x220 || !slices.Equal(c.SLLPS(), []uint64{2 << 20, 1 << 30}) ||
				c.NFR() != 1 || c.MAMV() != 18 {
				t.Errorf("cap fields: domains %d SAGAW %v MGAW %d FRO %#x SLLPS %v NFR %d MAMV %d",
					c.Domains(), c.SAGAW(), c.MGAW(), c.FRO(), c.SLLPS(), c.NFR(), c.MAMV())
			}
			capOn := []string{"CM", "PSI", "DWD", "DRD"}
			for _, b := range capBits() {
				if got := b.get(c); got != slices.Contains(capOn, b.name) {
					t.Errorf("Cap.%s() = %v", b.name, got)
				}
			}
			if got := c.Names(); !slices.Equal(got, capOn) {
				t.Errorf("Cap.Names() = %q, want %q", got, capOn)
			}

			e := v.ECap
			if e.IRO() != 0xf0 || e.MHMV() != 15 {
				t.Errorf("ecap fields: IRO %#x MHMV %d", e.IRO(), e.MHMV())
			}
			for _, b := range ecapBits() {
				if got := b.get(e); got != slices.Contains(tc.on, b.name) {
					t.Errorf("ECap.%s() = %v", b.name, got)
				}
			}
			if got := e.Names(); !slices.Equal(got, tc.on) {
				t.Errorf("ECap.Names() = %q, want %q", got, tc.on)
			}
			if got := v.String(); got != tc.str {
				t.Errorf("String() =\n%s\nwant\n%s", got, tc.str)
			}
			if v.Errata772415() {
				t.Error("Errata772415() = true")
			}
		})
	}
}

func TestVTDString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    VTD
		want string
	}{
		{VTD{}, "VT-d cap=0x0000000000000000 ecap=0x0000000000000000: 1-bit (SAGAW none), 16 domains, no superpages"},
		{
			VTD{Flags: 1, Cap: 7 | 0b10001<<8 | 0xc<<34 | 1<<57, ECap: 1<<40 | 19<<35 | 1<<63},
			"VT-d cap=0x0200003000001107 ecap=0x8000019800000000: 1-bit (SAGAW reserved), ND reserved, no superpages, PASID 20-bit; bit57 PASID bit63 ERRATA_772415_SPR17",
		},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("String() =\n%s\nwant\n%s", got, tc.want)
		}
	}
	if got, want := Cap(0x00d2008c222f0686).String(),
		"0x00d2008c222f0686 (ND 6: 65536 domains, SAGAW 39,48, MGAW 48, FRO 0x220, SLLPS 2M,1G, NFR 1, MAMV 18): CM PSI DWD DRD"; got != want {
		t.Errorf("Cap.String() =\n%s\nwant\n%s", got, want)
	}
	if got, want := ECap(0x480080f00f4a).String(), "0x0000480080f00f4a (IRO 0xf0, MHMV 15): QI IR PT SRS SMTS SLTS"; got != want {
		t.Errorf("ECap.String() =\n%s\nwant\n%s", got, want)
	}
	if got, want := Cap(7|0b10011<<8|0xd<<34).String(),
		"0x0000003400001307 (ND 7: reserved, SAGAW 39,reserved, MGAW 1, FRO 0x0, SLLPS 2M,reserved, NFR 1, MAMV 0)"; got != want {
		t.Errorf("Cap.String() =\n%s\nwant\n%s", got, want)
	}
	if got, want := ECap(1<<40|19<<35).String(), "0x0000019800000000 (IRO 0x0, MHMV 0, PSS 20-bit): PASID"; got != want {
		t.Errorf("ECap.String() =\n%s\nwant\n%s", got, want)
	}
}

func littleEndian() bool {
	b, _ := VTD{Flags: 1}.MarshalBinary()
	return b[0] == 1
}

func TestDecodeVTD(t *testing.T) {
	t.Parallel()
	if !littleEndian() {
		t.Skip("the expected bytes are written little-endian")
	}
	data := []byte{
		0x01, 0x00, 0x00, 0x00, // flags: ERRATA_772415_SPR17
		0xef, 0xbe, 0xad, 0xde, // __reserved, not kept
		0x86, 0x06, 0x2f, 0x22, 0x8c, 0x00, 0xd2, 0x00, // cap_reg
		0x4a, 0x0f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, // ecap_reg
	}
	want := VTD{Flags: 1, Cap: 0x00d2008c222f0686, ECap: 0xf00f4a}
	v, err := DecodeVTD(data)
	if err != nil || v != want {
		t.Fatalf("DecodeVTD = %+v, %v; want %+v", v, err, want)
	}
	if !v.Errata772415() {
		t.Error("Errata772415() = false")
	}
	// A longer buffer (a later kernel's bigger struct) decodes the same.
	if v, err := DecodeVTD(append(slices.Clone(data), 1, 2, 3, 4, 5, 6, 7, 8)); err != nil || v != want {
		t.Errorf("DecodeVTD(32 bytes) = %+v, %v", v, err)
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
	for _, n := range []int{0, 8, 23} {
		if _, err := DecodeVTD(data[:n]); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("DecodeVTD(%d bytes) error = %v, want ErrUnexpectedEOF", n, err)
		}
	}
}

func TestParseVTDRegs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cap, ecap string
		want      VTD
		err       error // matched with errors.Is; nil means success
	}{
		{cap: "d2008c222f0686\n", ecap: "f00f4a\n", want: VTD{Cap: 0x00d2008c222f0686, ECap: 0xf00f4a}},
		{cap: "d2008c222f0686", ecap: "f00f4a", want: VTD{Cap: 0x00d2008c222f0686, ECap: 0xf00f4a}},
		{cap: "  D2008C222F0686 \r\n", ecap: "0xF00F4A\n", want: VTD{Cap: 0x00d2008c222f0686, ECap: 0xf00f4a}},
		{cap: "00d2008c222f0686", ecap: "0", want: VTD{Cap: 0x00d2008c222f0686}},
		{cap: "ffffffffffffffff", ecap: "0X1", want: VTD{Cap: ^Cap(0), ECap: 1}},
		{cap: "", ecap: "0", err: strconv.ErrSyntax},
		{cap: "\n", ecap: "0", err: strconv.ErrSyntax},
		{cap: "0x", ecap: "0", err: strconv.ErrSyntax},
		{cap: "0", ecap: "", err: strconv.ErrSyntax},
		{cap: "xyz", ecap: "0", err: strconv.ErrSyntax},
		{cap: "-1", ecap: "0", err: strconv.ErrSyntax},
		{cap: "+1", ecap: "0", err: strconv.ErrSyntax},
		{cap: "1 2", ecap: "0", err: strconv.ErrSyntax},
		{cap: "1_0", ecap: "0", err: strconv.ErrSyntax},
		{cap: "0x0x1", ecap: "0", err: strconv.ErrSyntax},
		{cap: "10000000000000000", ecap: "0", err: strconv.ErrRange},
		{cap: "0", ecap: "1ffffffffffffffff\n", err: strconv.ErrRange},
	} {
		v, err := ParseVTDRegs(tc.cap, tc.ecap)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ParseVTDRegs(%q, %q) error = %v, want %v", tc.cap, tc.ecap, err, tc.err)
			}
			continue
		}
		if err != nil || v != tc.want {
			t.Errorf("ParseVTDRegs(%q, %q) = %+v, %v; want %+v", tc.cap, tc.ecap, v, err, tc.want)
		}
	}
	// The error says which register and what text.
	_, err := ParseVTDRegs("0", "zz\n")
	if err == nil || !strings.Contains(err.Error(), `ecap "zz\n"`) {
		t.Errorf("error %q does not name the ecap text", err)
	}
}
