package hwinfo

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Bit positions written out again from drivers/iommu/amd/amd_iommu_types.h
// (FEATURE_*, IOMMU_CAP_*, IOMMU_EFR_*_SHIFT; Linux 7.3) and QEMU's
// hw/i386/amd_iommu.h AMDVI_CAPAB_*, not from the implementation.

type efrBit struct {
	bit  uint
	name string
	get  func(EFR) bool
}

func efrBits() []efrBit {
	return []efrBit{
		{0, "PREFETCH", EFR.Prefetch},
		{1, "PPR", EFR.PPR},
		{2, "X2APIC", EFR.X2APIC},
		{3, "NX", EFR.NX},
		{4, "GT", EFR.GT},
		{6, "IA", EFR.IA},
		{7, "GA", EFR.GA},
		{8, "HE", EFR.HE},
		{9, "PC", EFR.PC},
		{21, "GAM_VAPIC", EFR.GAMVAPIC},
		{46, "MSICAPMMIOSUP", EFR.MSICapMMIO},
		{48, "GIOSUP", EFR.GIOSup},
		{49, "HASUP", EFR.HASup},
		{50, "EPHSUP", EFR.EPHSup},
		{52, "HDSUP", EFR.HDSup},
		{63, "SNP", EFR.SNP},
	}
}

// FEATURE_HATS 11:10, FEATURE_GATS 13:12, FEATURE_GLX 15:14, FEATURE_PASMAX 36:32.
var efrFieldBits = [][2]uint{{10, 11}, {12, 13}, {14, 15}, {32, 36}}

type efr2Bit struct {
	bit  uint
	name string
	get  func(EFR2) bool
}

func efr2Bits() []efr2Bit {
	return []efr2Bit{
		{1, "SEVSNPIO_SUP", EFR2.SEVSNPIO},
		{3, "GCR3TRPMODE", EFR2.GCR3TRPMode},
		{11, "HT_RANGE_IGNORE", EFR2.HTRangeIgnore},
		{13, "SNP_PAGE_MODE0_SUP", EFR2.SNPPageMode0},
	}
}

// FEATURE_SNPAVICSUP 7:5, FEATURE_NUM_INT_REMAP_SUP 9:8.
var efr2FieldBits = [][2]uint{{5, 7}, {8, 9}}

// TestEFRBitsCover checks all 64 bits of the EFR: a named bit sets its
// accessor and name only, a field bit no name, any other bit "bitN".
func TestEFRBitsCover(t *testing.T) {
	t.Parallel()
	bits := efrBits()
	for i := range uint(64) {
		e := EFR(1) << i
		var want []string
		var acc *efrBit
		for j := range bits {
			if bits[j].bit == i {
				acc, want = &bits[j], []string{bits[j].name}
			}
		}
		if acc == nil && !inFields(efrFieldBits, i) {
			want = []string{"bit" + strconv.Itoa(int(i))}
		}
		if acc != nil && inFields(efrFieldBits, i) {
			t.Errorf("test tables: bit %d is both named and a field", i)
		}
		if got := e.Names(); !slices.Equal(got, want) {
			t.Errorf("EFR(1<<%d).Names() = %q, want %q", i, got, want)
		}
		for _, b := range bits {
			if got := b.get(e); got != (acc != nil && b.bit == acc.bit) {
				t.Errorf("EFR(1<<%d).%s() = %v", i, b.name, got)
			}
			if b.get(^e) != (b.bit != i) {
				t.Errorf("EFR(^(1<<%d)).%s() = %v", i, b.name, b.get(^e))
			}
		}
	}
}

func TestEFR2BitsCover(t *testing.T) {
	t.Parallel()
	bits := efr2Bits()
	for i := range uint(64) {
		e := EFR2(1) << i
		var want []string
		var acc *efr2Bit
		for j := range bits {
			if bits[j].bit == i {
				acc, want = &bits[j], []string{bits[j].name}
			}
		}
		if acc == nil && !inFields(efr2FieldBits, i) {
			want = []string{"EFR2.bit" + strconv.Itoa(int(i))}
		}
		if got := e.Names(); !slices.Equal(got, want) {
			t.Errorf("EFR2(1<<%d).Names() = %q, want %q", i, got, want)
		}
		for _, b := range bits {
			if got := b.get(e); got != (acc != nil && b.bit == acc.bit) {
				t.Errorf("EFR2(1<<%d).%s() = %v", i, b.name, got)
			}
		}
	}
}

func TestAMDCapBits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bit  uint
		name string
		get  func(AMDCap) bool
	}{
		{24, "IOTLB", AMDCap.IOTLB},
		{25, "HTTUNNEL", AMDCap.HTTunnel},
		{26, "NPCACHE", AMDCap.NPCache},
		{27, "EFRSUP", AMDCap.EFRSup},
		{28, "CAPEXT", AMDCap.CapExt},
	} {
		c := AMDCap(1) << tc.bit
		if !tc.get(c) || tc.get(^c) {
			t.Errorf("%s: accessor wrong at bit %d", tc.name, tc.bit)
		}
		if got := c.Names(); !slices.Equal(got, []string{tc.name}) {
			t.Errorf("AMDCap(1<<%d).Names() = %q", tc.bit, got)
		}
	}
	for _, b := range []uint{29, 30, 31} {
		if got := (AMDCap(1) << b).Names(); !slices.Equal(got, []string{"bit" + strconv.Itoa(int(b))}) {
			t.Errorf("AMDCap(1<<%d).Names() = %q", b, got)
		}
	}
	// Fields never show as names.
	if got := AMDCap(0xffffff).Names(); got != nil {
		t.Errorf("AMDCap(0xffffff).Names() = %q", got)
	}
	// QEMU's header: ID 0Fh, type 3, IOTLB, HtTunnel, NpCache, EFRSup,
	// CapExt (AMDVI_CAPAB_FEATURES), next pointer 0.
	q := AMDCap(0xf | 3<<16 | 1<<24 | 1<<25 | 1<<26 | 1<<27 | 1<<28)
	if q.ID() != 0xf || q.Type() != 3 || q.Next() != 0 || q.Rev() != 0 {
		t.Errorf("QEMU cap %s", q)
	}
	if got, want := q.String(), "0x1f03000f (ID 0x0f, next 0x00, type 3, rev 0): IOTLB HTTUNNEL NPCACHE EFRSUP CAPEXT"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := AMDCap(0x0b << 8).Next(); got != 0x0b {
		t.Errorf("Next() = %#x", got)
	}
	if got := AMDCap(0x1f << 19).Rev(); got != 31 {
		t.Errorf("Rev() = %d", got)
	}
}

func TestEFRFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e                    EFR
		hats, gats, glx, pas int
	}{
		{e: 0, hats: 4, gats: 4, glx: 1, pas: 1},
		{e: 1 << 10, hats: 5, gats: 4, glx: 1, pas: 1},
		{e: 2 << 10, hats: 6, gats: 4, glx: 1, pas: 1},
		{e: 3 << 10, hats: 0, gats: 4, glx: 1, pas: 1}, // the kernel disables host translation
		{e: 1 << 12, hats: 4, gats: 5, glx: 1, pas: 1}, // GUEST_PGTABLE_5_LEVEL
		{e: 3 << 12, hats: 4, gats: 0, glx: 1, pas: 1},
		{e: 2 << 14, hats: 4, gats: 4, glx: 3, pas: 1},
		{e: 3 << 14, hats: 4, gats: 4, glx: 0, pas: 1},
		{e: 0xf << 32, hats: 4, gats: 4, glx: 1, pas: 16}, // max_pasids 0xffff
		{e: 0x1f << 32, hats: 4, gats: 4, glx: 1, pas: 32},
	} {
		if tc.e.HATS() != tc.hats || tc.e.GATS() != tc.gats || tc.e.GLX() != tc.glx || tc.e.PASmax() != tc.pas {
			t.Errorf("%#x: HATS %d GATS %d GLX %d PASmax %d, want %d %d %d %d", uint64(tc.e),
				tc.e.HATS(), tc.e.GATS(), tc.e.GLX(), tc.e.PASmax(), tc.hats, tc.gats, tc.glx, tc.pas)
		}
	}
	if e := EFR2(7<<5 | 1<<8); e.SNPAVIC() != 7 || e.NumIntRemap() != 1 {
		t.Errorf("EFR2 fields: SNPAVIC %d NumIntRemap %d", e.SNPAVIC(), e.NumIntRemap())
	}
}

// TestAMDZen decodes the EFR of an AMD EPYC host, which the kernel logged
// as "Extended features (0xa5bf732fa2295afe): PPR X2APIC NX GT [5] IA GA PC
// GA_vAPIC" (bits 0 to 9 and GAM_VAPIC only; a 6.x kernel adds SNP). By
// hand: 0x5afe has bits 1-7, 9, 11, 12, 14: HATS 10b (6-level), GATS 01b
// (5-level), GLX 01b (2-level); 0xa229 has 16, 19, 21 (GAM_VAPIC), 25, 29,
// 31; 0x732f has PASmax 01111b (16-bit PASIDs), 37, 40, 41, 44, 45, 46
// (MSICAPMMIOSUP); 0xa5bf has 48-53, 55, 56, 58, 61, 63 (SNP).
func TestAMDZen(t *testing.T) {
	t.Parallel()
	a, err := ParseAMDViRegs("40\n", "a5bf732fa2295afe:53d\n")
	if err != nil {
		t.Fatal(err)
	}
	if a.EFR != 0xa5bf732fa2295afe || a.EFR2 != 0x53d || a.Cap != 0x40 {
		t.Fatalf("ParseAMDViRegs = %+v", a)
	}
	kernelLog := []string{"PPR", "X2APIC", "NX", "GT", "bit5", "IA", "GA", "PC"}
	if got := a.EFR.Names(); !slices.Equal(got[:len(kernelLog)], kernelLog) {
		t.Errorf("bits 0-9: %q, the kernel says %q", got[:len(kernelLog)], kernelLog)
	}
	wantNames := []string{"PPR", "X2APIC", "NX", "GT", "bit5", "IA", "GA", "PC",
		"bit16", "bit19", "GAM_VAPIC", "bit25", "bit29", "bit31",
		"bit37", "bit40", "bit41", "bit44", "bit45", "MSICAPMMIOSUP",
		"GIOSUP", "HASUP", "EPHSUP", "bit51", "HDSUP", "bit53", "bit55", "bit56", "bit58", "bit61", "SNP"}
	if got := a.EFR.Names(); !slices.Equal(got, wantNames) {
		t.Errorf("EFR.Names() =\n%q\nwant\n%q", got, wantNames)
	}
	if a.EFR.HATS() != 6 || a.EFR.GATS() != 5 || a.EFR.GLX() != 2 || a.EFR.PASmax() != 16 {
		t.Errorf("fields: HATS %d GATS %d GLX %d PASmax %d", a.EFR.HATS(), a.EFR.GATS(), a.EFR.GLX(), a.EFR.PASmax())
	}
	// EFR2 0x53d: bits 0, 2-5, 8, 10: GCR3TRPMODE (3), SNPAVICSUP 001b
	// (GAM), NUM_INT_REMAP_SUP 01b (2048 entries).
	if a.EFR2.SNPAVIC() != 1 || a.EFR2.NumIntRemap() != 1 || a.EFR2.SEVSNPIO() || !a.EFR2.GCR3TRPMode() {
		t.Errorf("EFR2 %s", a.EFR2)
	}
	if got := a.EFR2.Names(); !slices.Equal(got, []string{"EFR2.bit0", "EFR2.bit2", "GCR3TRPMODE", "EFR2.bit4", "EFR2.bit10"}) {
		t.Errorf("EFR2.Names() = %q", got)
	}
	if s := a.String(); !strings.HasPrefix(s, "AMD-Vi cap=0x40 EFR=0xa5bf732fa2295afe EFR2=0x000000000000053d: host 6-level, guest 5-level, GLX 2-level, PASID 16-bit; PPR X2APIC") {
		t.Errorf("String() = %q", s)
	}
}

func TestParseAMDViRegs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cap, features string
		want          AMDVi
		err           error
	}{
		{cap: "1f03000f\n", features: "29d3:0\n", want: AMDVi{Cap: 0x1f03000f, EFR: 0x29d3}},
		{cap: "40", features: "a5bf732fa2295afe", want: AMDVi{Cap: 0x40, EFR: 0xa5bf732fa2295afe}}, // before EFR2
		{cap: " 0x40 ", features: " 1:2 ", want: AMDVi{Cap: 0x40, EFR: 1, EFR2: 2}},
		{cap: "100000000", features: "0:0", err: strconv.ErrRange}, // cap is 32 bits
		{cap: "", features: "0:0", err: strconv.ErrSyntax},
		{cap: "0", features: "", err: strconv.ErrSyntax},
		{cap: "0", features: ":1", err: strconv.ErrSyntax},
		{cap: "0", features: "1:", err: strconv.ErrSyntax},
		{cap: "0", features: "1:2:3", err: strconv.ErrSyntax},
		{cap: "0", features: "1 2", err: strconv.ErrSyntax},
		{cap: "0", features: "10000000000000000:0", err: strconv.ErrRange},
	} {
		a, err := ParseAMDViRegs(tc.cap, tc.features)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || a != (AMDVi{}) {
				t.Errorf("ParseAMDViRegs(%q, %q) = %+v, %v; want %v", tc.cap, tc.features, a, err, tc.err)
			}
			continue
		}
		if err != nil || a != tc.want {
			t.Errorf("ParseAMDViRegs(%q, %q) = %+v, %v; want %+v", tc.cap, tc.features, a, err, tc.want)
		}
	}
	_, err := ParseAMDViRegs("0", "zz:0\n")
	if err == nil || !strings.Contains(err.Error(), `AMD-Vi features EFR "zz"`) {
		t.Errorf("error %q does not name the register and text", err)
	}
}

func TestDecodeAMD(t *testing.T) {
	t.Parallel()
	if !littleEndian() {
		t.Skip("the expected bytes are written little-endian")
	}
	data := []byte{
		0xd3, 0x29, 0, 0, 0, 0, 0, 0, // efr
		0x3d, 0x05, 0, 0, 0, 0, 0, 0, // efr2
	}
	want := AMDVi{EFR: 0x29d3, EFR2: 0x53d}
	a, err := DecodeAMD(data)
	if err != nil || a != want {
		t.Fatalf("DecodeAMD = %+v, %v", a, err)
	}
	if a, err := DecodeAMD(append(slices.Clone(data), 9, 9)); err != nil || a != want {
		t.Errorf("DecodeAMD(18 bytes) = %+v, %v", a, err)
	}
	b, _ := want.MarshalBinary()
	if !slices.Equal(b, data) {
		t.Errorf("MarshalBinary = % x", b)
	}
	for _, n := range []int{0, 8, 15} {
		if _, err := DecodeAMD(data[:n]); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("DecodeAMD(%d bytes) error = %v", n, err)
		}
	}
}

func TestFacts(t *testing.T) {
	t.Parallel()
	get := func(facts []Fact, name string) string {
		for _, f := range facts {
			if f.Name == name {
				return f.Value
			}
		}
		t.Errorf("no fact %q in %v", name, facts)
		return ""
	}
	// QEMU's SMMUv3 (-machine virt,iommu=smmuv3), as in ExampleSMMUv3.
	s := SMMUv3{IDR: [6]uint32{0x0d44101b, 0x02730010, 0, 0x1414, 0, 0x74}, AIDR: 1}.Facts()
	for name, want := range map[string]string{
		"stages": "S1+S2", "nesting": "yes", "TTF": "AArch64", "ATS": "no", "PRI": "no", "BTM": "no",
		"HTTU": "none", "COHACC": "yes", "stall": "terminate", "ASID": "16-bit", "VMID": "16-bit",
		"SID": "16-bit", "SSID": "0-bit", "OAS": "44-bit", "granules": "4K,16K,64K", "version": "SMMUv3.1",
	} {
		if got := get(s, name); got != want {
			t.Errorf("SMMUv3 %s = %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(FactsText(s), "version SMMUv3.1, stages S1+S2, nesting yes, TTF AArch64, ATS no, PRI no, BTM no") {
		t.Errorf("FactsText = %q", FactsText(s))
	}
	// QEMU's VT-d, caching mode, legacy (not scalable) mode.
	v := VTD{Cap: 0x00d2008c222f0686, ECap: 0xf00f4a}.Facts()
	for name, want := range map[string]string{
		"address width": "48-bit", "superpages": "2M,1G", "scalable mode": "no", "stages": "second",
		"interrupt remapping": "yes", "caching mode": "yes", "PASID": "no", "ATS": "no", "nesting": "no",
	} {
		if got := get(v, name); got != want {
			t.Errorf("VT-d %s = %q, want %q", name, got, want)
		}
	}
	if got := get(VTD{ECap: 1 << 43}.Facts(), "stages"); got != "none" {
		t.Errorf("scalable mode without FLTS/SLTS: stages %q", got)
	}
	// The EPYC unit of TestAMDZen: nesting needs EFR2 GCR3TRPMODE too.
	a, _ := ParseAMDViRegs("40\n", "a5bf732fa2295afe:53d\n")
	for name, want := range map[string]string{
		"host page tables": "6-level", "guest translation": "5-level", "PASID": "16-bit", "nesting": "yes",
		"dirty tracking": "yes", "ATS": "no", "PRI": "yes", "x2APIC": "yes", "posted interrupts": "yes", "SNP": "yes",
	} {
		if got := get(a.Facts(), name); got != want {
			t.Errorf("AMD %s = %q, want %q", name, got, want)
		}
	}
	a.EFR2 = 0
	if got := get(a.Facts(), "nesting"); got != "no" {
		t.Errorf("AMD without GCR3TRPMODE: nesting %q", got)
	}
	if got := get(AMDVi{EFR: 0x29d3}.Facts(), "ATS"); got != "unknown" {
		t.Errorf("AMD from GET_HW_INFO (no cap): ATS %q", got)
	}
}

// TestAMDQEMU decodes what QEMU 10's amd-iommu shows in the x86_64-amdvi
// guest (Debian 6.12): cap 1f03000f, features 29d3:0. By hand: cap ID 0Fh,
// next 00h, type 3, rev 0, bits 24-28 IOTLB HTTUNNEL NPCACHE EFRSUP CAPEXT
// (QEMU's AMDVI_CAPAB_FEATURES). EFR 0x29d3: 0xd3 has bits 0, 1, 4, 6, 7
// (PREFETCH PPR GT IA GA), 0x29 has 8 (HE), HATS 10b (6-level), GATS 10b;
// GLX 0, PASmax 0 (1-bit PASIDs).
func TestAMDQEMU(t *testing.T) {
	t.Parallel()
	a, err := ParseAMDViRegs("1f03000f\n", "29d3:0\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Cap.Names(); !slices.Equal(got, []string{"IOTLB", "HTTUNNEL", "NPCACHE", "EFRSUP", "CAPEXT"}) {
		t.Errorf("cap names %q", got)
	}
	if got := a.EFR.Names(); !slices.Equal(got, []string{"PREFETCH", "PPR", "GT", "IA", "GA", "HE"}) {
		t.Errorf("EFR names %q", got)
	}
	if a.EFR.HATS() != 6 || a.EFR.GATS() != 6 || a.EFR.GLX() != 1 || a.EFR.PASmax() != 1 {
		t.Errorf("fields: HATS %d GATS %d GLX %d PASmax %d", a.EFR.HATS(), a.EFR.GATS(), a.EFR.GLX(), a.EFR.PASmax())
	}
	want := "AMD-Vi cap=0x1f03000f EFR=0x00000000000029d3 EFR2=0x0000000000000000: host 6-level, guest 6-level, GLX 1-level, PASID 1-bit; PREFETCH PPR GT IA GA HE"
	if got := a.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}
