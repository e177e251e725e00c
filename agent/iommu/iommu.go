// Package iommu is the IOMMU as the agent sees it: address spaces that map
// host memory at IO virtual addresses, and devices attached to them. Three
// backends implement it: the kernel's iommufd (package cdev), the legacy
// VFIO type1v2 container (package type1, also served by iommufd's
// vfio-compat container) and a pure-Go emulation with the kernel's
// semantics (package emulated). One conformance suite (iommutest) holds
// all of them to the same behaviour, per flavour where the kernel's own
// paths differ.
//
// The package uses only the standard library, so every layer can import it.
package iommu

import (
	"context"
	"fmt"
)

// IOVA is an IO virtual address: what a device puts on the bus.
type IOVA uint64

// Range is an inclusive IOVA interval, as the kernel reports them.
type Range struct {
	Start, Last IOVA
}

// Len is the number of bytes in r; 0 for the full 64-bit range, whose length
// does not fit.
func (r Range) Len() uint64 { return uint64(r.Last-r.Start) + 1 }

// Contains reports whether [iova, iova+length) lies inside r.
func (r Range) Contains(iova IOVA, length uint64) bool {
	if length == 0 || iova < r.Start {
		return false
	}
	last := uint64(iova) + length - 1
	return last >= uint64(iova) && last <= uint64(r.Last)
}

func (r Range) String() string { return fmt.Sprintf("%#x-%#x", uint64(r.Start), uint64(r.Last)) }

// Perm is what a device may do through a mapping.
type Perm uint8

const (
	Read  Perm = 1 << iota // the device may read the memory (DMA to the device)
	Write                  // the device may write the memory
)

// Mapping asks for host memory to appear at an IOVA.
type Mapping struct {
	// Mem is the host memory to map. Kernel backends pin it: it must be
	// mmap or memfd memory, never the Go heap, and stay mapped until Unmap.
	Mem []byte
	// IOVA is where to map Mem when Fixed; otherwise the backend picks,
	// as the kernel does for IOMMU_IOAS_MAP without FIXED_IOVA.
	IOVA  IOVA
	Fixed bool
	Perm  Perm
}

// FileMapping is Length bytes of the memfd FD from Offset, to map at IOVA
// (when Fixed) with Perm. The caller keeps FD open until MapFile returns;
// the mapping holds the pages, not the descriptor.
type FileMapping struct {
	FD             int
	Offset, Length uint64
	IOVA           IOVA
	Fixed          bool
	Perm           Perm
}

// Flavour names the kernel path a backend speaks. The kernel answers the
// same misuse differently on each: unmapping nothing is ENOENT on iommufd
// and 0 bytes on type1v2; cutting a mapping in two is ENOENT on iommufd and
// on the compat container, EINVAL on type1v2.
type Flavour string

const (
	IOMMUFD Flavour = "iommufd" // /dev/iommu: IOAS, HWPT, device cdevs
	Type1v2 Flavour = "type1v2" // /dev/vfio/vfio container with VFIO_TYPE1v2_IOMMU
	Compat  Flavour = "compat"  // iommufd's vfio-compat container, speaking type1v2
)

// Device is a PCI function to attach, as sysfs names it.
type Device struct {
	BDF   string // domain:bus:device.function, e.g. 0000:00:01.0
	Group int    // iommu_group number
	Cdev  string // /dev/vfio/devices/vfioN, empty where the kernel has no cdev
}

// Backend opens address spaces on one IOMMU uAPI. Close releases every
// address space and attachment made through it; it is idempotent.
type Backend interface {
	Flavour() Flavour
	NewAddressSpace(ctx context.Context) (AddressSpace, error)
	Close() error
}

// AddressSpace is an IOAS (iommufd) or a container (type1). Devices attached
// to it see its mappings. Close unmaps everything, detaches every device and
// releases all pinned memory; it is idempotent.
type AddressSpace interface {
	// Attach makes dev's DMA go through this address space. Every device of
	// an iommu_group must be attached to the same address space or none:
	// the group rule of the design origin.
	Attach(ctx context.Context, dev Device) (Attachment, error)
	// Map maps m and returns the IOVA used.
	Map(ctx context.Context, m Mapping) (IOVA, error)
	// Unmap removes every mapping inside [iova, iova+length) and returns
	// the bytes unmapped; Unmap(0, math.MaxUint64) removes all.
	Unmap(ctx context.Context, iova IOVA, length uint64) (uint64, error)
	// Ranges reports the IOVA ranges usable for Map, and the alignment
	// IOVAs and lengths must have. Attached devices narrow them.
	Ranges(ctx context.Context) (ranges []Range, alignment uint64, err error)
	Close() error
}

// Attachment is one device attached to an address space.
type Attachment interface {
	Device() Device
	// Detach returns the device to blocked DMA. Idempotent.
	Detach(ctx context.Context) error
}

// Optional capabilities, found by type assertion on an AddressSpace.
type (
	// Copier maps what is mapped in src at srcIOVA into this address space
	// without pinning the pages again (IOMMU_IOAS_COPY).
	Copier interface {
		Copy(ctx context.Context, src AddressSpace, srcIOVA IOVA, length uint64, dst Mapping) (IOVA, error)
	}
	// FileMapper maps a memfd's pages by descriptor (IOMMU_IOAS_MAP_FILE,
	// Linux 6.13): the kernel pins the file's folios without the caller
	// mapping them into its own address space and faulting them in first,
	// which is most of the cost of Map for memory nobody touched yet. A
	// kernel without it answers ErrNotSupported.
	FileMapper interface {
		MapFile(ctx context.Context, m FileMapping) (IOVA, error)
	}
	// IOVAAllower restricts where the backend may place mappings it
	// chooses, and which ranges attachments may not take away
	// (IOMMU_IOAS_ALLOW_IOVAS). An empty list clears the restriction.
	IOVAAllower interface {
		AllowIOVAs(ctx context.Context, allowed []Range) error
	}
	// DirtyTracker reports which pages devices wrote, for live migration.
	DirtyTracker interface {
		SetDirtyTracking(ctx context.Context, enable bool) error
		// ReadDirty returns one bit per pageSize page of [iova,
		// iova+length), and clears them unless keep is set.
		ReadDirty(ctx context.Context, iova IOVA, length, pageSize uint64, keep bool) ([]uint64, error)
	}
)

// HWInfoer is implemented by attachments that can report the IOMMU behind
// their device (IOMMU_GET_HW_INFO).
type HWInfoer interface {
	HWInfo(ctx context.Context) (HWInfo, error)
}

// HWInfo is the IOMMU behind a device.
type HWInfo struct {
	Type string // "intel-vtd", "arm-smmuv3", "none"
	Data []byte // the driver's raw payload (decode with ioctl/hwinfo)
}
