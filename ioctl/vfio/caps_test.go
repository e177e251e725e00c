//go:build linux

package vfio

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
)

// capSpec is one capability for infoBuf: its header is filled in.
type capSpec struct {
	id, version uint16
	body        []byte // after the header
}

// infoBuf lays out an INFO buffer the way the kernel does: the fixed
// struct, then each capability 8-aligned, linked in increasing order. It
// returns the buffer and the offset of the first capability (0 if none).
func infoBuf(fixed int, caps ...capSpec) ([]byte, uint32) {
	buf := make([]byte, fixed)
	var first uint32
	prev := -1
	for _, c := range caps {
		for len(buf)%8 != 0 {
			buf = append(buf, 0)
		}
		off := len(buf)
		if prev < 0 {
			first = uint32(off)
		} else {
			binary.NativeEndian.PutUint32(buf[prev+4:], uint32(off))
		}
		buf = binary.NativeEndian.AppendUint16(buf, c.id)
		buf = binary.NativeEndian.AppendUint16(buf, c.version)
		buf = binary.NativeEndian.AppendUint32(buf, 0)
		buf = append(buf, c.body...)
		prev = off
	}
	out := newBuf(len(buf))
	copy(out, buf)
	return out, first
}

func u32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.NativeEndian.AppendUint32(b, v)
	}
	return b
}

func u64s(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.NativeEndian.AppendUint64(b, v)
	}
	return b
}

func cat(bs ...[]byte) []byte { return slices.Concat(bs...) }

const (
	type1InfoSize  = int(unsafe.Sizeof(uapi.VFIOIOMMUType1Info{}))
	regionInfoSize = int(unsafe.Sizeof(uapi.VFIORegionInfo{}))
	deviceInfoSize = int(unsafe.Sizeof(uapi.VFIODeviceInfo{}))
)

func TestParseCaps(t *testing.T) {
	t.Parallel()
	buf, first := infoBuf(24,
		capSpec{id: 1, version: 1, body: u32s(1, 2, 3)},
		capSpec{id: 7, version: 2, body: u32s(9)},
		capSpec{id: 3, version: 1},
	)
	caps, err := parseCaps(buf, first, 24)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, version uint16
		off         uint32
		n           int
	}{{1, 1, 24, 24}, {7, 2, 48, 16}, {3, 1, 64, 8}}
	if len(caps) != len(want) {
		t.Fatalf("%d caps, want %d", len(caps), len(want))
	}
	for i, w := range want {
		c := caps[i]
		if c.ID != w.id || c.Version != w.version || c.Offset != w.off || len(c.Data) != w.n {
			t.Errorf("cap %d = {id %d v%d at %d, %d bytes}, want {id %d v%d at %d, %d bytes}",
				i, c.ID, c.Version, c.Offset, len(c.Data), w.id, w.version, w.off, w.n)
		}
	}
	if caps, err := parseCaps(buf, 0, 24); err != nil || caps != nil {
		t.Errorf("no chain: %v, %v", caps, err)
	}
}

func TestParseCapsMalformed(t *testing.T) {
	t.Parallel()
	good, first := infoBuf(24, capSpec{id: 1, body: u32s(0, 0)}, capSpec{id: 2, body: u32s(0, 0)})
	setNext := func(at int, next uint32) []byte {
		b := slices.Clone(good)
		binary.NativeEndian.PutUint32(b[at+4:], next)
		return b
	}
	cases := []struct {
		name  string
		buf   []byte
		first uint32
	}{
		{"first inside fixed struct", good, 8},
		{"first past buffer", good, uint32(len(good))},
		{"first far past buffer", good, 0xfffffff8},
		{"header cut by buffer end", good, uint32(len(good) - 4)},
		{"next to itself", setNext(24, 24), first},
		{"next backwards (loop)", setNext(40, 24), first},
		{"next inside own header", setNext(24, 28), first},
		{"next past buffer", setNext(24, uint32(len(good)+8)), first},
		{"next at max", setNext(40, 0xffffffff), first},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			caps, err := parseCaps(c.buf, c.first, 24)
			if !errors.Is(err, ErrMalformedCaps) {
				t.Fatalf("err = %v, want ErrMalformedCaps", err)
			}
			for _, cp := range caps { // what came before the fault is sound
				if int(cp.Offset)+len(cp.Data) > len(c.buf) {
					t.Errorf("cap at %d runs past the buffer", cp.Offset)
				}
			}
		})
	}
}

func TestDecodeIOMMUInfo(t *testing.T) {
	t.Parallel()
	buf, first := infoBuf(type1InfoSize,
		capSpec{id: uapi.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1,
			body: cat(u32s(2, 0), u64s(0, 0xfedfffff, 0xfef00000, 0xffffffffffff))},
		capSpec{id: uapi.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, version: 1,
			body: cat(u32s(0, 0), u64s(0x1000, 256<<20))},
		capSpec{id: uapi.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, body: u32s(65530)},
		capSpec{id: 99, version: 1, body: u32s(1, 2)},
	)
	fixed := as[uapi.VFIOIOMMUType1Info](buf)
	*fixed = uapi.VFIOIOMMUType1Info{
		ArgSz: uint32(len(buf)), Flags: uapi.VFIO_IOMMU_INFO_PGSIZES | uapi.VFIO_IOMMU_INFO_CAPS,
		IOVAPgSizes: 0x40201000, CapOffset: first,
	}
	info, err := decodeIOMMUInfo(buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.PageSizes != 0x40201000 || info.Flags != 3 {
		t.Errorf("flags %#x page sizes %#x", info.Flags, info.PageSizes)
	}
	wantRanges := []IOVARange{{0, 0xfedfffff}, {0xfef00000, 0xffffffffffff}}
	if !slices.Equal(info.IOVARanges, wantRanges) {
		t.Errorf("ranges %#v, want %#v", info.IOVARanges, wantRanges)
	}
	if m := info.Migration; m == nil || m.PageSizes != 0x1000 || m.MaxDirtyBitmapSize != 256<<20 {
		t.Errorf("migration %+v", m)
	}
	if info.DMAAvail == nil || *info.DMAAvail != 65530 {
		t.Errorf("dma avail %v", info.DMAAvail)
	}
	if len(info.Caps) != 4 || info.Caps[3].ID != 99 {
		t.Errorf("caps %+v", info.Caps)
	}

	// Chain not reported: flags without CAPS, or CAPS with offset 0 (the
	// kernel's answer to a short buffer).
	fixed.Flags = uapi.VFIO_IOMMU_INFO_PGSIZES
	if info, err := decodeIOMMUInfo(buf); err != nil || info.IOVARanges != nil || info.Caps != nil {
		t.Errorf("without CAPS: %+v, %v", info, err)
	}
	fixed.Flags |= uapi.VFIO_IOMMU_INFO_CAPS
	fixed.CapOffset = 0
	if info, err := decodeIOMMUInfo(buf); err != nil || info.Caps != nil {
		t.Errorf("CAPS at 0: %+v, %v", info, err)
	}
}

func TestDecodeIOMMUInfoMalformedCap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cap  capSpec
	}{
		{"iova ranges count beyond buffer", capSpec{id: uapi.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, body: cat(u32s(0xffffffff, 0), u64s(0, 1))}},
		{"iova ranges without count", capSpec{id: uapi.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, body: u32s(1)}},
		{"migration short", capSpec{id: uapi.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, body: u32s(0, 0, 1)}},
		{"dma avail empty", capSpec{id: uapi.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// The bad capability comes last, so nothing after it pads it.
			buf, first := infoBuf(type1InfoSize, c.cap)
			*as[uapi.VFIOIOMMUType1Info](buf) = uapi.VFIOIOMMUType1Info{
				ArgSz: uint32(len(buf)), Flags: uapi.VFIO_IOMMU_INFO_CAPS, CapOffset: first}
			if _, err := decodeIOMMUInfo(buf); !errors.Is(err, ErrMalformedCaps) {
				t.Fatalf("err = %v, want ErrMalformedCaps", err)
			}
		})
	}
}

func TestDecodeRegionInfo(t *testing.T) {
	t.Parallel()
	buf, first := infoBuf(regionInfoSize,
		capSpec{id: uapi.VFIO_REGION_INFO_CAP_SPARSE_MMAP, version: 1,
			body: cat(u32s(2, 0), u64s(0, 0x2000, 0x3000, 0x1000))},
		capSpec{id: uapi.VFIO_REGION_INFO_CAP_TYPE, version: 1,
			body: u32s(uapi.VFIO_REGION_TYPE_PCI_VENDOR_TYPE|0x8086, uapi.VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION)},
		capSpec{id: uapi.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, version: 1},
	)
	*as[uapi.VFIORegionInfo](buf) = uapi.VFIORegionInfo{
		ArgSz: uint32(len(buf)), Flags: uapi.VFIO_REGION_INFO_FLAG_READ | uapi.VFIO_REGION_INFO_FLAG_MMAP | uapi.VFIO_REGION_INFO_FLAG_CAPS,
		Index: 2, CapOffset: first, Size: 0x4000, Offset: 0x20000000000,
	}
	info, err := decodeRegionInfo(buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Index != 2 || info.Size != 0x4000 || info.Offset != 0x20000000000 ||
		!info.Flags.Read() || info.Flags.Write() || !info.Flags.Mmap() {
		t.Errorf("fixed part %+v", info)
	}
	wantAreas := []SparseMmapArea{{0, 0x2000}, {0x3000, 0x1000}}
	if !slices.Equal(info.SparseMmap, wantAreas) {
		t.Errorf("sparse %#v, want %#v", info.SparseMmap, wantAreas)
	}
	if info.Type == nil || info.Type.Type != uapi.VFIO_REGION_TYPE_PCI_VENDOR_TYPE|0x8086 || info.Type.Subtype != 1 {
		t.Errorf("type %+v", info.Type)
	}
	if !info.MSIXMappable {
		t.Error("MSIXMappable not set")
	}

	// A sparse capability with no areas: nothing may be mmapped.
	buf, first = infoBuf(regionInfoSize, capSpec{id: uapi.VFIO_REGION_INFO_CAP_SPARSE_MMAP, body: u32s(0, 0)})
	*as[uapi.VFIORegionInfo](buf) = uapi.VFIORegionInfo{Flags: uapi.VFIO_REGION_INFO_FLAG_CAPS, CapOffset: first}
	if info, err := decodeRegionInfo(buf); err != nil || info.SparseMmap == nil || len(info.SparseMmap) != 0 {
		t.Errorf("empty sparse: %#v, %v", info.SparseMmap, err)
	}
}

func TestDecodeDeviceInfo(t *testing.T) {
	t.Parallel()
	buf, first := infoBuf(deviceInfoSize,
		capSpec{id: uapi.VFIO_DEVICE_INFO_CAP_ZPCI_BASE, version: 1, body: u64s(1, 2)},
		capSpec{id: uapi.VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP, version: 1, body: u32s(uapi.VFIO_PCI_ATOMIC_COMP64, 0)},
	)
	*as[uapi.VFIODeviceInfo](buf) = uapi.VFIODeviceInfo{
		ArgSz: uint32(len(buf)), Flags: uapi.VFIO_DEVICE_FLAGS_RESET | uapi.VFIO_DEVICE_FLAGS_PCI | uapi.VFIO_DEVICE_FLAGS_CAPS,
		NumRegions: 9, NumIRQs: 5, CapOffset: first,
	}
	info, err := decodeDeviceInfo(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Flags.Reset() || !info.Flags.PCI() || info.NumRegions != 9 || info.NumIRQs != 5 {
		t.Errorf("fixed part %+v", info)
	}
	if info.PCIAtomicComp == nil || *info.PCIAtomicComp != uapi.VFIO_PCI_ATOMIC_COMP64 {
		t.Errorf("atomic comp %v", info.PCIAtomicComp)
	}
	if len(info.Caps) != 2 {
		t.Errorf("%d caps, want 2", len(info.Caps))
	}
}

// FuzzParseCaps: any buffer and first offset gives caps or an error, never
// a panic or an endless walk, and what it returns lies inside the buffer.
func FuzzParseCaps(f *testing.F) {
	good, first := infoBuf(24,
		capSpec{id: 1, version: 1, body: cat(u32s(1, 0), u64s(0, 0xffff))},
		capSpec{id: 2, version: 1, body: cat(u32s(0, 0), u64s(0x1000, 64))},
		capSpec{id: 3, version: 1, body: u32s(5)},
	)
	f.Add(good, first, uint8(24))
	f.Add(good, uint32(8), uint8(24))
	looped := slices.Clone(good)
	binary.NativeEndian.PutUint32(looped[first+4:], first)
	f.Add(looped, first, uint8(24))
	f.Add([]byte{}, uint32(0), uint8(0))
	f.Fuzz(func(t *testing.T, buf []byte, first uint32, fixed uint8) {
		caps, err := parseCaps(buf, first, int(fixed))
		if len(caps) > len(buf)/capHeaderSize {
			t.Fatalf("%d caps from %d bytes", len(caps), len(buf))
		}
		prev := -1
		for _, c := range caps {
			if int(c.Offset) <= prev || int(c.Offset) < int(fixed) {
				t.Fatalf("cap at %d after %d, fixed %d", c.Offset, prev, fixed)
			}
			if int(c.Offset)+len(c.Data) > len(buf) || len(c.Data) < capHeaderSize {
				t.Fatalf("cap at %d with %d bytes in %d", c.Offset, len(c.Data), len(buf))
			}
			prev = int(c.Offset)
			// Every decoder copes with every capability.
			_, _ = decodeIOVARanges(c)
			_, _ = decodeMigration(c)
			_, _ = decodeU32(c)
			_, _ = decodeSparseMmap(c)
			_, _ = decodeRegionType(c)
		}
		if err != nil && !errors.Is(err, ErrMalformedCaps) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzDecodeInfo runs the INFO decoders on arbitrary buffers: a result or
// an error, never both, never a panic.
func FuzzDecodeInfo(f *testing.F) {
	buf, first := infoBuf(type1InfoSize, capSpec{id: 1, body: cat(u32s(1, 0), u64s(0, 0xffff))})
	*as[uapi.VFIOIOMMUType1Info](buf) = uapi.VFIOIOMMUType1Info{Flags: 2, CapOffset: first}
	f.Add([]byte(buf))
	buf, first = infoBuf(regionInfoSize, capSpec{id: 1, body: cat(u32s(1, 0), u64s(0, 0x1000))})
	*as[uapi.VFIORegionInfo](buf) = uapi.VFIORegionInfo{Flags: uapi.VFIO_REGION_INFO_FLAG_CAPS, CapOffset: first}
	f.Add([]byte(buf))
	f.Fuzz(func(t *testing.T, in []byte) {
		buf := newBuf(max(len(in), regionInfoSize))
		copy(buf, in)
		if info, err := decodeIOMMUInfo(buf); (info == nil) == (err == nil) {
			t.Fatalf("type1: %v, %v", info, err)
		}
		if info, err := decodeRegionInfo(buf); (info == nil) == (err == nil) {
			t.Fatalf("region: %v, %v", info, err)
		}
		if info, err := decodeDeviceInfo(buf); (info == nil) == (err == nil) {
			t.Fatalf("device: %v, %v", info, err)
		}
	})
}
