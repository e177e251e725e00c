package smmuv3

import (
	"encoding/binary"
	"fmt"
)

// VMSAv8-64, 4 KiB granule: 512 eight-byte descriptors per table, 9 VA
// bits per level, a page at level 3.
const (
	pageSize   = 4096
	entries    = 512
	levelBits  = 9
	pageShift  = 12
	descValid  = 1 << 0
	descTable  = 1 << 1 // at levels 0-2: table, not block; at level 3: page
	descAPRO   = 1 << 7 // AP[2]: read-only
	descAPEL0  = 1 << 6 // AP[1]: unprivileged access, as a device's is
	descSHIn   = 3 << 8 // inner shareable
	descAF     = 1 << 10
	descOAMask = 0x0000_ffff_ffff_f000 // bits 47:12
)

// Perm is what a stage-1 page allows.
type Perm uint8

const (
	Read  Perm = 1 << iota
	Write      // a writable page is readable too
)

func (p Perm) String() string {
	switch p {
	case Read:
		return "r"
	case Read | Write:
		return "rw"
	}
	return fmt.Sprintf("Perm(%d)", uint8(p))
}

// Tables builds stage-1 tables in mem, memory the caller maps into the
// IOAS at IPA base, so that the SMMU walks what Tables writes. Tables are
// allocated from mem a page at a time; nothing is freed until the Tables
// goes. The walk starts at the level T0SZ selects: 39-bit VAs (T0SZ 25)
// start at level 1.
type Tables struct {
	mem    []byte
	base   uint64
	start  int // first level: 0 for 48-bit VAs, 1 for 39
	vaBits int
	next   int // offset of the next free page
	root   uint64
}

// NewTables lays out an empty first-level table at the start of mem.
// vaBits is 64-T0SZ (39 or 48); mem's length is a multiple of 4 KiB and
// base is 4 KiB aligned.
func NewTables(mem []byte, base uint64, vaBits int) (*Tables, error) {
	if len(mem) == 0 || len(mem)%pageSize != 0 || base%pageSize != 0 {
		return nil, fmt.Errorf("table memory: %d bytes at IPA %#x, want 4 KiB pages at a 4 KiB boundary", len(mem), base)
	}
	start := 0
	switch vaBits {
	case 48:
	case 39:
		start = 1
	default:
		return nil, fmt.Errorf("%d-bit VAs: want 39 (a walk from level 1) or 48 (from level 0)", vaBits)
	}
	t := &Tables{mem: mem, base: base, start: start, vaBits: vaBits}
	root, err := t.alloc()
	if err != nil {
		return nil, err
	}
	t.root = root
	return t, nil
}

// Root is the IPA of the first-level table: the CD's TTB0.
func (t *Tables) Root() uint64 { return t.root }

// T0SZ is the CD field matching the tables' VA size.
func (t *Tables) T0SZ() uint8 { return uint8(64 - t.vaBits) }

func (t *Tables) alloc() (uint64, error) {
	if t.next+pageSize > len(t.mem) {
		return 0, fmt.Errorf("table memory full: %d bytes hold %d tables", len(t.mem), len(t.mem)/pageSize)
	}
	off := t.next
	t.next += pageSize
	clear(t.mem[off : off+pageSize])
	return t.base + uint64(off), nil
}

// slot returns the offset in mem of the descriptor for va in the table at
// IPA table, at level.
func (t *Tables) slot(table, va uint64, level int) int {
	idx := va >> (pageShift + levelBits*(3-level)) & (entries - 1)
	return int(table-t.base) + int(idx)*8
}

func (t *Tables) checkVA(va uint64) error {
	if va%pageSize != 0 || va>>t.vaBits != 0 {
		return fmt.Errorf("VA %#x: not a 4 KiB-aligned %d-bit address", va, t.vaBits)
	}
	return nil
}

// Map maps the page at va to the page at IPA ipa with perm, creating the
// intermediate tables it needs; an existing mapping of va is replaced (as
// a guest rewrites a PTE: the SMMU may use the old one until invalidated).
func (t *Tables) Map(va, ipa uint64, perm Perm) error {
	if err := t.checkVA(va); err != nil {
		return err
	}
	if ipa%pageSize != 0 || ipa&^descOAMask != 0 {
		return fmt.Errorf("IPA %#x: not a 4 KiB-aligned 48-bit address", ipa)
	}
	if perm&Read == 0 {
		return fmt.Errorf("permission %v: a stage-1 page is always readable", perm)
	}
	le := binary.LittleEndian
	table := t.root
	for level := t.start; level < 3; level++ {
		off := t.slot(table, va, level)
		d := le.Uint64(t.mem[off:])
		if d&descValid == 0 {
			next, err := t.alloc()
			if err != nil {
				return err
			}
			d = next | descTable | descValid
			le.PutUint64(t.mem[off:], d)
		} else if d&descTable == 0 {
			return fmt.Errorf("VA %#x: level %d holds a block, not a table", va, level)
		}
		table = d & descOAMask
	}
	pte := ipa | descTable | descValid | descAF | descSHIn | descAPEL0
	if perm&Write == 0 {
		pte |= descAPRO
	}
	le.PutUint64(t.mem[t.slot(table, va, 3):], pte)
	return nil
}

// Unmap clears the page descriptor of va. It reports whether one was
// valid; intermediate tables stay.
func (t *Tables) Unmap(va uint64) (bool, error) {
	if err := t.checkVA(va); err != nil {
		return false, err
	}
	le := binary.LittleEndian
	table := t.root
	for level := t.start; level < 3; level++ {
		d := le.Uint64(t.mem[t.slot(table, va, level):])
		if d&(descValid|descTable) != descValid|descTable {
			return false, nil
		}
		table = d & descOAMask
		if table < t.base || table-t.base >= uint64(len(t.mem)) {
			return false, fmt.Errorf("VA %#x: level %d points outside the tables, at %#x", va, level, table)
		}
	}
	off := t.slot(table, va, 3)
	was := le.Uint64(t.mem[off:])&descValid != 0
	le.PutUint64(t.mem[off:], 0)
	return was, nil
}

// Walk translates va through the tables as the SMMU would.
func (t *Tables) Walk(va uint64) (uint64, Perm, error) {
	return Walk(func(ipa uint64) (uint64, bool) {
		if ipa < t.base || ipa-t.base > uint64(len(t.mem))-8 || ipa%8 != 0 {
			return 0, false
		}
		return binary.LittleEndian.Uint64(t.mem[ipa-t.base:]), true
	}, t.root, t.start, t.vaBits, va)
}

// Walk translates va through the 4 KiB-granule tables at root, starting
// at level start, reading descriptors with read, which answers false for
// an IPA it does not hold (the walk fails there: it never reads outside
// what read holds). Level 1 and 2 block descriptors are followed too.
func Walk(read func(ipa uint64) (uint64, bool), root uint64, start, vaBits int, va uint64) (uint64, Perm, error) {
	out, perm, _, err := WalkLevel(read, root, start, vaBits, va)
	return out, perm, err
}

// WalkLevel is Walk also reporting the level of the descriptor that
// mapped va (3 for a page, 1 or 2 for a block): what a TLB caching the
// walk needs to know the size of the entry.
func WalkLevel(read func(ipa uint64) (uint64, bool), root uint64, start, vaBits int, va uint64) (uint64, Perm, int, error) {
	if start < 0 || start > 3 || vaBits < 25 || vaBits > 48 {
		return 0, 0, 0, fmt.Errorf("walk from level %d over %d-bit VAs: not a 4 KiB-granule walk", start, vaBits)
	}
	if va>>vaBits != 0 {
		return 0, 0, 0, fmt.Errorf("VA %#x beyond %d bits: %w", va, vaBits, ErrNotMapped)
	}
	table := root &^ (pageSize - 1)
	for level := start; level <= 3; level++ {
		shift := pageShift + levelBits*(3-level)
		at := table + (va>>shift&(entries-1))*8
		d, ok := read(at)
		if !ok {
			return 0, 0, 0, fmt.Errorf("VA %#x: level %d descriptor at IPA %#x is outside the tables", va, level, at)
		}
		if d&descValid == 0 {
			return 0, 0, 0, fmt.Errorf("VA %#x: level %d descriptor %#x invalid: %w", va, level, d, ErrNotMapped)
		}
		page := level == 3
		if d&descTable != 0 && !page {
			table = d & descOAMask
			continue
		}
		if !page && level == 0 || page && d&descTable == 0 {
			return 0, 0, 0, fmt.Errorf("VA %#x: level %d descriptor %#x is reserved: %w", va, level, d, ErrNotMapped)
		}
		if d&descAF == 0 {
			return 0, 0, 0, fmt.Errorf("VA %#x: level %d descriptor %#x: %w", va, level, d, ErrAccessFlag)
		}
		size := uint64(1) << shift
		out := d&descOAMask&^(size-1) | va&(size-1)
		perm := Read
		if d&descAPRO == 0 {
			perm |= Write
		}
		return out, perm, level, nil
	}
	return 0, 0, 0, fmt.Errorf("VA %#x: no page after level 3", va) // unreachable: level 3 returns
}
