package hwinfo

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseVTDRegs: error xor value; a value prints back as the digits it
// was parsed from (modulo case, leading zeros, space and 0x) and parses
// again from its sysfs form; errors wrap strconv's sentinels.
func FuzzParseVTDRegs(f *testing.F) {
	for _, s := range [][2]string{
		{"d2008c222f0686\n", "f00f4a\n"},
		{"d2008c222f0686\n", "480080f00f4a\n"},
		{"0xffffffffffffffff", "0X0"},
		{"", "1"},
		{" 1 ", "10000000000000000"},
		{"-1", "+1"},
		{"0x", "1_0"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, capText, ecapText string) {
		v, err := ParseVTDRegs(capText, ecapText)
		if err != nil {
			if v != (VTD{}) {
				t.Errorf("error %v with value %+v", err, v)
			}
			if !errors.Is(err, strconv.ErrSyntax) && !errors.Is(err, strconv.ErrRange) {
				t.Errorf("error %v wraps neither ErrSyntax nor ErrRange", err)
			}
			return
		}
		if v.Flags != 0 {
			t.Errorf("Flags = %#x from sysfs", v.Flags)
		}
		for _, r := range []struct {
			text string
			val  uint64
		}{{capText, uint64(v.Cap)}, {ecapText, uint64(v.ECap)}} {
			digits := strings.TrimSpace(r.text)
			if len(digits) > 2 && (digits[:2] == "0x" || digits[:2] == "0X") {
				digits = digits[2:]
			}
			digits = strings.TrimLeft(strings.ToLower(digits), "0")
			if digits == "" {
				digits = "0"
			}
			if got := strconv.FormatUint(r.val, 16); got != digits {
				t.Errorf("%q parsed as %#x, which prints %s", r.text, r.val, got)
			}
		}
		again, err := ParseVTDRegs(fmt.Sprintf("%x\n", uint64(v.Cap)), fmt.Sprintf("%x\n", uint64(v.ECap)))
		if err != nil || again != v {
			t.Errorf("sysfs form of %+v parses as %+v, %v", v, again, err)
		}
		checkVTD(t, v)
	})
}

// FuzzDecodeVTD: error iff the buffer is short; a value encodes back to
// the bytes it came from (less the reserved word and any tail).
func FuzzDecodeVTD(f *testing.F) {
	qemu, _ := VTD{Cap: 0x00d2008c222f0686, ECap: 0xf00f4a}.MarshalBinary()
	f.Add(qemu)
	f.Add(qemu[:23])
	f.Add(append(qemu, 0xff))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeVTD(data)
		if len(data) < vtdSize {
			if !errors.Is(err, io.ErrUnexpectedEOF) || v != (VTD{}) {
				t.Fatalf("DecodeVTD(%d bytes) = %+v, %v", len(data), v, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("DecodeVTD(%d bytes): %v", len(data), err)
		}
		b, err := v.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(data[:vtdSize])
		clear(want[4:8])
		if !slices.Equal(b, want) {
			t.Errorf("MarshalBinary = % x, want % x", b, want)
		}
		if again, err := DecodeVTD(b); err != nil || again != v {
			t.Errorf("DecodeVTD(MarshalBinary(%+v)) = %+v, %v", v, again, err)
		}
		checkVTD(t, v)
	})
}

// FuzzVTDFields: every bit of both registers comes back from the decoded
// fields and names (bits reserved inside SAGAW and SLLPS excepted: String
// only marks them), and String and Names never fail.
func FuzzVTDFields(f *testing.F) {
	f.Add(uint64(0x00d2008c222f0686), uint64(0x480080f00f4a), uint32(0))
	f.Add(^uint64(0), ^uint64(0), ^uint32(0))
	f.Add(uint64(7), uint64(1)<<63, uint32(1))
	f.Fuzz(func(t *testing.T, c, e uint64, flags uint32) {
		checkVTD(t, VTD{Flags: flags, Cap: Cap(c), ECap: ECap(e)})
	})
}

// checkVTD rebuilds both registers from what the accessors say.
func checkVTD(t *testing.T, v VTD) {
	t.Helper()
	c, e := v.Cap, v.ECap

	var rc uint64
	switch d := c.Domains(); {
	case d == 0:
		rc |= 7
	case bits.OnesCount(uint(d)) != 1 || d < 16 || d > 65536:
		t.Errorf("Domains() = %d", d)
	default:
		rc |= uint64(bits.TrailingZeros(uint(d))-4) / 2
	}
	for _, w := range c.SAGAW() {
		if w != 39 && w != 48 && w != 57 {
			t.Errorf("SAGAW() has %d", w)
		}
		rc |= 1 << (8 + (w-30)/9)
	}
	rc |= uint64(c.MGAW()-1) << 16
	if c.FRO()%16 != 0 {
		t.Errorf("FRO() = %#x", c.FRO())
	}
	rc |= c.FRO() / 16 << 24
	for _, s := range c.SLLPS() {
		if s != 2<<20 && s != 1<<30 {
			t.Errorf("SLLPS() has %#x", s)
		}
		rc |= 1 << (34 + (bits.TrailingZeros64(s)-21)/9)
	}
	rc |= uint64(c.NFR()-1) << 40
	rc |= uint64(c.MAMV()) << 48
	rc |= namesToBits(t, c.Names(), func(i uint) []string { return (Cap(1) << i).Names() }, 64)
	const hidden = 1<<8 | 1<<12 | 3<<36 // reserved SAGAW and SLLPS bits
	if rc != uint64(c)&^hidden {
		t.Errorf("cap %#x rebuilt as %#x", uint64(c), rc)
	}

	var re uint64
	if e.IRO()%16 != 0 {
		t.Errorf("IRO() = %#x", e.IRO())
	}
	re |= e.IRO() / 16 << 8
	re |= uint64(e.MHMV()) << 20
	re |= uint64(e.PSS()-1) << 35
	re |= namesToBits(t, e.Names(), func(i uint) []string { return (ECap(1) << i).Names() }, 64)
	if re != uint64(e) {
		t.Errorf("ecap %#x rebuilt as %#x", uint64(e), re)
	}

	s := v.String()
	if !strings.HasPrefix(s, fmt.Sprintf("VT-d cap=0x%016x ecap=0x%016x: ", uint64(c), uint64(e))) {
		t.Errorf("String() = %q", s)
	}
	if strings.Contains(s, "ERRATA_772415_SPR17") != v.Errata772415() {
		t.Errorf("String() = %q with flags %#x", s, v.Flags)
	}
	_ = c.String()
	_ = e.String()
}

// namesToBits maps names back to bits with single(i), the names of a
// register holding only bit i, and checks that no name repeats.
func namesToBits(t *testing.T, names []string, single func(i uint) []string, width uint) uint64 {
	t.Helper()
	byName := map[string]uint{}
	for i := range width {
		if n := single(i); len(n) == 1 {
			byName[n[0]] = i
		}
	}
	var v uint64
	for _, n := range names {
		i, ok := byName[n]
		if !ok {
			t.Errorf("unknown name %q", n)
			continue
		}
		if v&(1<<i) != 0 {
			t.Errorf("name %q repeats", n)
		}
		v |= 1 << i
	}
	return v
}

// FuzzDecodeSMMUv3: error iff the buffer is short; a value encodes back to
// the bytes it came from (less the reserved word and any tail).
func FuzzDecodeSMMUv3(f *testing.F) {
	qemu, _ := SMMUv3{IDR: [6]uint32{0x0d44101b, 0x02730010, 0, 0x1414, 0, 0x74}, AIDR: 1}.MarshalBinary()
	f.Add(qemu)
	f.Add(qemu[:39])
	f.Add(append(qemu, 1, 2, 3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSMMUv3(data)
		if len(data) < smmuv3Size {
			if !errors.Is(err, io.ErrUnexpectedEOF) || s != (SMMUv3{}) {
				t.Fatalf("DecodeSMMUv3(%d bytes) = %+v, %v", len(data), s, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("DecodeSMMUv3(%d bytes): %v", len(data), err)
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(data[:smmuv3Size])
		clear(want[4:8])
		if !slices.Equal(b, want) {
			t.Errorf("MarshalBinary = % x, want % x", b, want)
		}
		if again, err := DecodeSMMUv3(b); err != nil || again != s {
			t.Errorf("DecodeSMMUv3(MarshalBinary(%+v)) = %+v, %v", s, again, err)
		}
		checkSMMUv3(t, s)
	})
}

// FuzzSMMUv3Fields: every bit of IDR0, IDR1, IDR3, IDR5, IIDR and AIDR[7:0]
// comes back from the decoded fields and names.
func FuzzSMMUv3Fields(f *testing.F) {
	f.Add(uint32(0x0d44101b), uint32(0x02730010), uint32(0x1414), uint32(0x74), uint32(0), uint32(1), uint32(0))
	f.Add(^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0))
	f.Fuzz(func(t *testing.T, idr0, idr1, idr3, idr5, iidr, aidr, flags uint32) {
		checkSMMUv3(t, SMMUv3{Flags: flags, IDR: [6]uint32{idr0, idr1, 0, idr3, 0, idr5}, IIDR: IIDR(iidr), AIDR: AIDR(aidr)})
	})
}

func checkSMMUv3(t *testing.T, s SMMUv3) {
	t.Helper()
	// Names back to (register, bit).
	type pos struct {
		reg int
		bit uint
	}
	byName := map[string]pos{}
	for _, reg := range []int{0, 1, 3, 5} {
		for i := range uint(32) {
			var one SMMUv3
			one.IDR[reg] = 1 << i
			if n := one.Names(); len(n) == 1 {
				byName[n[0]] = pos{reg, i}
			}
		}
	}
	var rebuilt [6]uint32
	for _, n := range s.Names() {
		p, ok := byName[n]
		if !ok {
			t.Errorf("unknown name %q", n)
			continue
		}
		if rebuilt[p.reg]&(1<<p.bit) != 0 {
			t.Errorf("name %q repeats", n)
		}
		rebuilt[p.reg] |= 1 << p.bit
	}

	i0, i1, i3, i5 := s.IDR0(), s.IDR1(), s.IDR3(), s.IDR5()
	rebuilt[0] |= uint32(i0.TTF())<<2 | uint32(i0.HTTU())<<6 | uint32(i0.TTEndian())<<21 |
		uint32(i0.StallModel())<<24 | uint32(i0.STLevel())<<27
	rebuilt[1] |= uint32(i1.SIDSIZE()) | uint32(i1.SSIDSIZE())<<6 | uint32(i1.PRIQS())<<11 |
		uint32(i1.EVENTQS())<<16 | uint32(i1.CMDQS())<<21
	rebuilt[3] |= uint32(i3.BBML()) << 11
	oas := slices.Index([]int{32, 36, 40, 42, 44, 48, 52, 56}, i5.OAS())
	vax := slices.Index([]int{48, 52, 56, 0}, i5.VAX())
	if oas < 0 || vax < 0 {
		t.Errorf("OAS() = %d, VAX() = %d", i5.OAS(), i5.VAX())
	}
	rebuilt[5] |= uint32(oas) | uint32(vax)<<10 | uint32(i5.StallMax())<<16
	for _, reg := range []int{0, 1, 3, 5} {
		if rebuilt[reg] != s.IDR[reg] {
			t.Errorf("IDR%d %#x rebuilt as %#x", reg, s.IDR[reg], rebuilt[reg])
		}
	}

	r := s.IIDR
	if got := uint32(r.Implementer()) | uint32(r.Revision())<<12 | uint32(r.Variant())<<16 | uint32(r.ProductID())<<20; got != uint32(r) {
		t.Errorf("IIDR %#x rebuilt as %#x", uint32(r), got)
	}
	if got := uint32(s.AIDR.ArchMajorRev()<<4 | s.AIDR.ArchMinorRev()); got != uint32(s.AIDR)&0xff {
		t.Errorf("AIDR %#x rebuilt as %#x", uint32(s.AIDR), got)
	}

	str := s.String()
	if !strings.HasPrefix(str, s.AIDR.String()+fmt.Sprintf(" IIDR=%#08x: ", uint32(s.IIDR))) {
		t.Errorf("String() = %q", str)
	}
	for _, x := range []fmt.Stringer{i0, i1, i3, i5, s.IIDR, s.AIDR} {
		_ = x.String()
	}
}

// FuzzParseAMDViRegs: error xor value; a value parses again from the form
// the kernel prints ("%x\n", "%llx:%llx\n").
func FuzzParseAMDViRegs(f *testing.F) {
	f.Add("1f03000f\n", "29d3:0\n")
	f.Add("40\n", "a5bf732fa2295afe:53d\n")
	f.Add("40", "a5bf732fa2295afe")
	f.Add("", ":")
	f.Add("100000000", "1:2:3")
	f.Fuzz(func(t *testing.T, capText, featuresText string) {
		a, err := ParseAMDViRegs(capText, featuresText)
		if err != nil {
			if a != (AMDVi{}) {
				t.Errorf("error %v with value %+v", err, a)
			}
			if !errors.Is(err, strconv.ErrSyntax) && !errors.Is(err, strconv.ErrRange) {
				t.Errorf("error %v wraps neither ErrSyntax nor ErrRange", err)
			}
			return
		}
		again, err := ParseAMDViRegs(fmt.Sprintf("%x\n", uint32(a.Cap)), fmt.Sprintf("%x:%x\n", uint64(a.EFR), uint64(a.EFR2)))
		if err != nil || again != a {
			t.Errorf("sysfs form of %+v parses as %+v, %v", a, again, err)
		}
		checkAMD(t, a)
	})
}

// FuzzDecodeAMD: error iff the buffer is short; a value encodes back to
// the bytes it came from.
func FuzzDecodeAMD(f *testing.F) {
	q, _ := AMDVi{EFR: 0x29d3}.MarshalBinary()
	f.Add(q)
	f.Add(q[:15])
	f.Add(append(q, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAMD(data)
		if len(data) < amdSize {
			if !errors.Is(err, io.ErrUnexpectedEOF) || a != (AMDVi{}) {
				t.Fatalf("DecodeAMD(%d bytes) = %+v, %v", len(data), a, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := a.MarshalBinary()
		if !slices.Equal(b, data[:amdSize]) {
			t.Errorf("MarshalBinary = % x, want % x", b, data[:amdSize])
		}
		checkAMD(t, a)
	})
}

// FuzzAMDFields: every bit of cap, EFR and EFR2 comes back from the
// decoded fields and names.
func FuzzAMDFields(f *testing.F) {
	f.Add(uint32(0x1f03000f), uint64(0xa5bf732fa2295afe), uint64(0x53d))
	f.Add(^uint32(0), ^uint64(0), ^uint64(0))
	f.Fuzz(func(t *testing.T, c uint32, e, e2 uint64) {
		checkAMD(t, AMDVi{Cap: AMDCap(c), EFR: EFR(e), EFR2: EFR2(e2)})
	})
}

func checkAMD(t *testing.T, a AMDVi) {
	t.Helper()
	c := a.Cap
	rc := uint32(c.ID()) | uint32(c.Next())<<8 | uint32(c.Type())<<16 | uint32(c.Rev())<<19
	rc |= uint32(namesToBits(t, c.Names(), func(i uint) []string { return (AMDCap(1) << i).Names() }, 32))
	if rc != uint32(c) {
		t.Errorf("cap %#x rebuilt as %#x", uint32(c), rc)
	}

	e := a.EFR
	undo := func(levels, base int) uint64 {
		if levels == 0 {
			return 3
		}
		return uint64(levels - base)
	}
	re := undo(e.HATS(), 4)<<10 | undo(e.GATS(), 4)<<12 | undo(e.GLX(), 1)<<14 | uint64(e.PASmax()-1)<<32
	re |= namesToBits(t, e.Names(), func(i uint) []string { return (EFR(1) << i).Names() }, 64)
	if re != uint64(e) {
		t.Errorf("EFR %#x rebuilt as %#x", uint64(e), re)
	}

	e2 := a.EFR2
	re2 := uint64(e2.SNPAVIC())<<5 | uint64(e2.NumIntRemap())<<8
	re2 |= namesToBits(t, e2.Names(), func(i uint) []string { return (EFR2(1) << i).Names() }, 64)
	if re2 != uint64(e2) {
		t.Errorf("EFR2 %#x rebuilt as %#x", uint64(e2), re2)
	}
	if s := a.String(); !strings.HasPrefix(s, fmt.Sprintf("AMD-Vi cap=%#x EFR=0x%016x EFR2=0x%016x: ", uint32(c), uint64(e), uint64(e2))) {
		t.Errorf("String() = %q", s)
	}
	_, _, _ = c.String(), e.String(), e2.String()
}
