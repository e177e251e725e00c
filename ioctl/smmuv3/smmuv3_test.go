package smmuv3

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// The vSTE and CD words the nesting recipe verified on QEMU's SMMUv3
// with Linux 7.3: a stage-1 vSTE pointing at a CD at IPA 0x1000000, and a
// CD with ASID 1 over a level-1 table at 0x1001000.
func TestVSTEAndCD(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want [2]uint64
	}{
		{ConfigAbort, [2]uint64{0x1, 0}},
		{ConfigBypass, [2]uint64{0x9, 0}},
		{ConfigS1Trans, [2]uint64{0x100000b, 0xd4}},
	} {
		got, err := VSTE(c.cfg, 0x1000000)
		if err != nil || got != c.want {
			t.Errorf("VSTE(%d) = %#x, %v; want %#x", c.cfg, got, err, c.want)
		}
	}
	if _, err := VSTE(7, 0); err == nil {
		t.Error("VSTE with Config 7 (nested) accepted: a vSTE may not carry it")
	}
	if _, err := VSTE(ConfigS1Trans, 0x1000010); err == nil {
		t.Error("a CD pointer not 64-byte aligned accepted")
	}
	cd := CD{ASID: 1, TTB0: 0x1001000, T0SZ: 25, IPS: 2, MAIR: 0xff}
	w, err := cd.Words()
	if err != nil {
		t.Fatal(err)
	}
	// T0SZ 25 | IR0/OR0 WB | SH0 ISH | EPD1 | V | IPS 2 | AA64 | R | A | ASET | ASID 1.
	if want := uint64(0x0001_e202_c000_3519); w[0] != want {
		t.Errorf("CD word 0 %#x, want %#x", w[0], want)
	}
	if w[1] != 0x1001000 || w[2] != 0 || w[3] != 0xff {
		t.Errorf("CD words 1-3 %#x, want TTB0 0x1001000, no TTB1, MAIR 0xff", w[1:4])
	}
	for _, bad := range []CD{{T0SZ: 15, TTB0: 0x1000}, {T0SZ: 25, IPS: 7}, {T0SZ: 25, TTB0: 0x1008}} {
		if _, err := bad.Words(); err == nil {
			t.Errorf("CD %+v accepted", bad)
		}
	}
}

func TestCommands(t *testing.T) {
	if got := TLBINHASID(1); got != [2]uint64{0x0001_0000_0000_0011, 0} {
		t.Errorf("TLBI_NH_ASID 1 = %#x", got)
	}
	if got := TLBINHVA(3, 0x201000, true); got != [2]uint64{0x0003_0000_0000_0012, 0x201001} {
		t.Errorf("TLBI_NH_VA = %#x", got)
	}
	got, err := CFGICD(8, 0, true)
	if err != nil || got != [2]uint64{0x0000_0008_0000_0005, 1} {
		t.Errorf("CFGI_CD vSID 8 = %#x, %v", got, err)
	}
	if _, err := CFGICD(8, 1<<20, false); err == nil {
		t.Error("a 21-bit SSID accepted")
	}
}

// A record as the vEVENTQ returned it on the nesting lane: F_TRANSLATION
// for the vSID 8 at VA 0x200000, behind its header.
func TestParseVEvents(t *testing.T) {
	b := make([]byte, 2*(VEventHeaderSize+EventSize)+VEventHeaderSize)
	le := binary.LittleEndian
	le.PutUint32(b[4:], 7)
	le.PutUint64(b[8:], 0x0000000800000010)
	le.PutUint64(b[16:], 0x0000020000000000)
	le.PutUint64(b[24:], 0x200000)
	o := VEventHeaderSize + EventSize
	le.PutUint32(b[o+4:], 8)
	le.PutUint64(b[o+8:], 0x0000000800000013)
	le.PutUint64(b[o+16:], 1<<39|1<<35)
	le.PutUint64(b[o+24:], 0x201000)
	le.PutUint64(b[o+32:], 0x1006000)
	le.PutUint32(b[2*o:], 1) // lost events, no record
	evs, err := ParseVEvents(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d entries, want 3: %+v", len(evs), evs)
	}
	if e := evs[0]; e.Sequence != 7 || e.Event.ID != EventTranslation || e.Event.SID != 8 || e.Event.Addr != 0x200000 || e.Event.Stage2 {
		t.Errorf("first %+v", e)
	}
	if e := evs[1].Event; e.ID != EventPermission || !e.Stage2 || !e.Read || e.IPA != 0x1006000 {
		t.Errorf("second %+v", e)
	}
	if evs[2].Flags != 1 {
		t.Errorf("third %+v, want the lost-events flag", evs[2])
	}
	if s := evs[0].Event.String(); !strings.Contains(s, "F_TRANSLATION sid 0x8 stage 1 write addr 0x200000") {
		t.Errorf("String() = %q", s)
	}
	if _, err := ParseVEvents(b[:VEventHeaderSize+10]); err == nil {
		t.Error("a truncated record parsed")
	}
}

func TestTablesMapWalkUnmap(t *testing.T) {
	const base = 0x1000000
	mem := make([]byte, 8*pageSize)
	tb, err := NewTables(mem, base, 39)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Root() != base || tb.T0SZ() != 25 {
		t.Fatalf("root %#x T0SZ %d", tb.Root(), tb.T0SZ())
	}
	maps := []struct {
		va, ipa uint64
		perm    Perm
	}{
		{0x200000, 0x1004000, Read | Write},
		{0x201000, 0x1006000, Read},
		{0x7f_ffff_f000, 0x3000, Read | Write}, // the last page of 39 bits: other tables
	}
	for _, m := range maps {
		if err := tb.Map(m.va, m.ipa, m.perm); err != nil {
			t.Fatalf("Map(%#x): %v", m.va, err)
		}
	}
	for _, m := range maps {
		got, perm, err := tb.Walk(m.va + 0x123)
		if err != nil || got != m.ipa+0x123 || perm != m.perm {
			t.Errorf("Walk(%#x) = %#x %v %v, want %#x %v", m.va+0x123, got, perm, err, m.ipa+0x123, m.perm)
		}
	}
	// The first page's descriptor, as the recipe wrote it.
	l3 := binary.LittleEndian.Uint64(mem[2*pageSize:]) // root, L2, then this L3
	if want := uint64(0x1004000 | 3 | 1<<10 | 3<<8 | 1<<6); l3 != want {
		t.Errorf("PTE %#x, want %#x", l3, want)
	}
	if _, _, err := tb.Walk(0x202000); !errors.Is(err, ErrNotMapped) {
		t.Errorf("Walk of an unmapped VA: %v", err)
	}
	// Repoint, then unmap.
	if err := tb.Map(0x200000, 0x1008000, Read|Write); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := tb.Walk(0x200000); got != 0x1008000 {
		t.Errorf("after repointing: %#x", got)
	}
	if was, err := tb.Unmap(0x200000); !was || err != nil {
		t.Errorf("Unmap = %v, %v", was, err)
	}
	if was, err := tb.Unmap(0x200000); was || err != nil {
		t.Errorf("second Unmap = %v, %v", was, err)
	}
	if _, _, err := tb.Walk(0x200000); !errors.Is(err, ErrNotMapped) {
		t.Errorf("Walk after Unmap: %v", err)
	}
	// Out of table memory, bad arguments.
	small, _ := NewTables(make([]byte, 2*pageSize), base, 39)
	if err := small.Map(0x200000, 0x1000, Read); err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("Map with no room for tables: %v", err)
	}
	for _, bad := range []struct{ va, ipa uint64 }{{0x200001, 0x1000}, {1 << 39, 0x1000}, {0x200000, 0x1001}} {
		if err := tb.Map(bad.va, bad.ipa, Read); err == nil {
			t.Errorf("Map(%#x, %#x) accepted", bad.va, bad.ipa)
		}
	}
	if err := tb.Map(0x300000, 0x1000, Write); err == nil {
		t.Error("a write-only page accepted")
	}
	if _, err := NewTables(make([]byte, 100), base, 39); err == nil {
		t.Error("table memory of 100 bytes accepted")
	}
	if _, err := NewTables(mem, base, 42); err == nil {
		t.Error("42-bit VAs accepted")
	}
}

// A level-2 block descriptor maps 2 MiB; the walker follows it.
func TestWalkBlock(t *testing.T) {
	tables := map[uint64]uint64{
		0x1000 + 0*8: 0x2000 | 3,                     // L1[0] -> L2 at 0x2000
		0x2000 + 1*8: 0x4000_0000 | 1 | 1<<10 | 1<<7, // L2[1]: a read-only block at 1 GiB
	}
	read := func(ipa uint64) (uint64, bool) { d, ok := tables[ipa]; return d, ok || ipa >= 0x1000 && ipa < 0x3000 }
	ipa, perm, err := Walk(read, 0x1000, 1, 39, 0x200000+0x1234)
	if err != nil || ipa != 0x4000_1234 || perm != Read {
		t.Errorf("block walk: %#x %v %v", ipa, perm, err)
	}
	if _, _, err := Walk(read, 0x5000, 1, 39, 0); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("walk from a root outside the tables: %v", err)
	}
}

// The walker never panics and never reads outside what read holds.
func FuzzWalk(f *testing.F) {
	seed := make([]byte, 3*pageSize)
	tb, _ := NewTables(seed, 0x10000, 39)
	_ = tb.Map(0x200000, 0x5000, Read|Write)
	f.Add(seed, uint64(0x200123), uint8(1))
	f.Add(make([]byte, 64), uint64(0), uint8(0))
	f.Fuzz(func(t *testing.T, mem []byte, va uint64, start uint8) {
		const base = 0x10000
		read := func(ipa uint64) (uint64, bool) {
			if ipa < base || ipa-base+8 > uint64(len(mem)) {
				return 0, false
			}
			if ipa%8 != 0 {
				t.Fatalf("unaligned descriptor read at %#x", ipa)
			}
			return binary.LittleEndian.Uint64(mem[ipa-base:]), true
		}
		ipa, perm, err := Walk(read, base, int(start%5), 39, va)
		if err == nil && (perm&Read == 0 || ipa&0xfff != va&0xfff) {
			t.Fatalf("walk of %#x gave %#x %v", va, ipa, perm)
		}
	})
}

// Encode writes what DecodeEvent reads.
func TestEventEncode(t *testing.T) {
	t.Parallel()
	for _, e := range []Event{
		{ID: EventTranslation, SID: 8, Read: true, Addr: 0x203000},
		{ID: EventPermission, SID: 0xffff_ffff, SSID: 0xfffff, SSV: true, Stage2: true, Priv: true, Instr: true, Addr: ^uint64(0), IPA: 0x000f_ffff_ffff_f000},
		{},
	} {
		b := e.Encode()
		if len(b) != EventSize {
			t.Fatalf("%v: %d bytes", e, len(b))
		}
		got, err := DecodeEvent(b)
		if err != nil || got != e {
			t.Errorf("DecodeEvent(Encode(%+v)) = %+v, %v", e, got, err)
		}
	}
}

// A clear access flag is F_ACCESS on an SMMU without HTTU, not a
// translation fault.
func TestWalkAccessFlag(t *testing.T) {
	t.Parallel()
	tables := map[uint64]uint64{
		0x1000 + 0*8: 0x2000 | 3,         // L1[0] -> L2
		0x2000 + 1*8: 0x3000 | 3,         // L2[1] -> L3
		0x3000 + 0*8: 0x9000 | 3,         // L3[0]: a page, AF clear
		0x3000 + 1*8: 0xa000 | 3 | 1<<10, // L3[1]: a page, AF set
	}
	read := func(ipa uint64) (uint64, bool) { return tables[ipa], ipa >= 0x1000 && ipa < 0x4000 }
	if _, _, err := Walk(read, 0x1000, 1, 39, 0x200000); !errors.Is(err, ErrAccessFlag) || errors.Is(err, ErrNotMapped) {
		t.Errorf("walk to a page with AF clear: %v, want ErrAccessFlag", err)
	}
	if ipa, _, err := Walk(read, 0x1000, 1, 39, 0x201000); err != nil || ipa != 0xa000 {
		t.Errorf("walk to a page with AF set: %#x, %v", ipa, err)
	}
}

// WalkLevel names the level that mapped the VA: 3 for a page, 2 for a
// 2 MiB block.
func TestWalkLevel(t *testing.T) {
	t.Parallel()
	tables := map[uint64]uint64{
		0x1000 + 0*8: 0x2000 | 3,              // L1[0] -> L2
		0x2000 + 1*8: 0x4000_0000 | 1 | 1<<10, // L2[1]: a block at 1 GiB
		0x2000 + 2*8: 0x3000 | 3,              // L2[2] -> L3
		0x3000 + 5*8: 0x9000 | 3 | 1<<10,      // L3[5]: a page
	}
	read := func(ipa uint64) (uint64, bool) { return tables[ipa], ipa >= 0x1000 && ipa < 0x4000 }
	for _, c := range []struct {
		va, ipa uint64
		level   int
	}{{0x200000 + 0x1234, 0x4000_1234, 2}, {0x400000 + 5*pageSize + 8, 0x9008, 3}} {
		ipa, _, level, err := WalkLevel(read, 0x1000, 1, 39, c.va)
		if err != nil || ipa != c.ipa || level != c.level {
			t.Errorf("WalkLevel(%#x) = %#x level %d, %v; want %#x level %d", c.va, ipa, level, err, c.ipa, c.level)
		}
	}
}
