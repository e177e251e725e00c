//go:build linux

package vfio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
)

// ErrMalformedCaps is matched by every error about a capability chain that
// does not fit its INFO buffer.
var ErrMalformedCaps = errors.New("malformed capability chain")

// Capability is one entry of an INFO ioctl's capability chain, as the
// kernel wrote it. Typed fields of the Info structs decode the known IDs;
// Caps keeps all of them, unknown IDs included.
type Capability struct {
	ID      uint16
	Version uint16
	Offset  uint32 // from the start of the INFO buffer
	// Data is the capability, header included, up to the next one (or the
	// end of the buffer for the last: it may carry trailing zeros).
	Data []byte
}

const capHeaderSize = int(unsafe.Sizeof(uapi.VFIOInfoCapHeader{}))

// parseCaps walks the chain that starts at first in buf, an INFO buffer
// whose fixed struct is fixed bytes long. The kernel appends capabilities,
// so offsets strictly increase; requiring that rules out loops and bounds
// the walk by len(buf)/8 steps. Every offset must leave room for a header
// and must not point into the fixed struct.
func parseCaps(buf []byte, first uint32, fixed int) ([]Capability, error) {
	var caps []Capability
	for off := uint64(first); off != 0; {
		if off < uint64(fixed) {
			return caps, fmt.Errorf("%w: capability at %d inside the %d-byte fixed struct", ErrMalformedCaps, off, fixed)
		}
		if off+uint64(capHeaderSize) > uint64(len(buf)) {
			return caps, fmt.Errorf("%w: capability at %d past the %d-byte buffer", ErrMalformedCaps, off, len(buf))
		}
		id := binary.NativeEndian.Uint16(buf[off:])
		version := binary.NativeEndian.Uint16(buf[off+2:])
		next := uint64(binary.NativeEndian.Uint32(buf[off+4:]))
		end := uint64(len(buf))
		if next != 0 {
			if next < off+uint64(capHeaderSize) {
				return caps, fmt.Errorf("%w: capability %d at %d links back to %d", ErrMalformedCaps, id, off, next)
			}
			if next > end {
				return caps, fmt.Errorf("%w: capability %d at %d links to %d, past the %d-byte buffer", ErrMalformedCaps, id, off, next, len(buf))
			}
			end = next
		}
		caps = append(caps, Capability{ID: id, Version: version, Offset: uint32(off), Data: buf[off:end:end]})
		off = next
	}
	return caps, nil
}

// capBody returns the bytes of c after its header, checking that at least
// need of them are there.
func capBody(c Capability, need int) ([]byte, error) {
	body := c.Data[capHeaderSize:]
	if len(body) < need {
		return nil, fmt.Errorf("%w: capability %d at %d has %d bytes after its header, needs %d", ErrMalformedCaps, c.ID, c.Offset, len(body), need)
	}
	return body, nil
}

// IOVARange is an inclusive range of usable IOVAs.
type IOVARange struct {
	Start, End uint64
}

func decodeIOVARanges(c Capability) ([]IOVARange, error) {
	body, err := capBody(c, 8)
	if err != nil {
		return nil, err
	}
	n := uint64(binary.NativeEndian.Uint32(body))
	body = body[8:] // nr_iovas, reserved
	if n > uint64(len(body))/16 {
		return nil, fmt.Errorf("%w: IOVA range capability claims %d ranges in %d bytes", ErrMalformedCaps, n, len(body))
	}
	ranges := make([]IOVARange, n)
	for i := range ranges {
		ranges[i] = IOVARange{
			Start: binary.NativeEndian.Uint64(body[16*i:]),
			End:   binary.NativeEndian.Uint64(body[16*i+8:]),
		}
	}
	return ranges, nil
}

// MigrationCap is the type1 migration capability: dirty page logging is
// available with these page sizes.
type MigrationCap struct {
	Flags              uint32
	PageSizes          uint64 // pgsize_bitmap
	MaxDirtyBitmapSize uint64 // in bytes
}

func decodeMigration(c Capability) (*MigrationCap, error) {
	body, err := capBody(c, int(unsafe.Sizeof(uapi.VFIOIOMMUType1InfoCapMigration{}))-capHeaderSize)
	if err != nil {
		return nil, err
	}
	return &MigrationCap{
		Flags:              binary.NativeEndian.Uint32(body),
		PageSizes:          binary.NativeEndian.Uint64(body[8:]),
		MaxDirtyBitmapSize: binary.NativeEndian.Uint64(body[16:]),
	}, nil
}

// decodeU32 reads the first __u32 after the header: DMA avail, PCI atomic
// completion flags.
func decodeU32(c Capability) (uint32, error) {
	body, err := capBody(c, 4)
	if err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint32(body), nil
}

// SparseMmapArea is a part of a region that may be mmapped, relative to
// the region's start.
type SparseMmapArea struct {
	Offset, Size uint64
}

func decodeSparseMmap(c Capability) ([]SparseMmapArea, error) {
	body, err := capBody(c, 8)
	if err != nil {
		return nil, err
	}
	n := uint64(binary.NativeEndian.Uint32(body))
	body = body[8:] // nr_areas, reserved
	if n > uint64(len(body))/16 {
		return nil, fmt.Errorf("%w: sparse mmap capability claims %d areas in %d bytes", ErrMalformedCaps, n, len(body))
	}
	areas := make([]SparseMmapArea, n)
	for i := range areas {
		areas[i] = SparseMmapArea{
			Offset: binary.NativeEndian.Uint64(body[16*i:]),
			Size:   binary.NativeEndian.Uint64(body[16*i+8:]),
		}
	}
	return areas, nil
}

// RegionType is a device specific region's type and subtype
// (uapi.VFIO_REGION_TYPE_*, uapi.VFIO_REGION_SUBTYPE_*).
type RegionType struct {
	Type, Subtype uint32
}

func decodeRegionType(c Capability) (*RegionType, error) {
	body, err := capBody(c, 8)
	if err != nil {
		return nil, err
	}
	return &RegionType{Type: binary.NativeEndian.Uint32(body), Subtype: binary.NativeEndian.Uint32(body[4:])}, nil
}
