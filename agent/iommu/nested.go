package iommu

import (
	"context"
	"fmt"
)

// Nesting is the design origin's nested IOASIDs, as iommufd builds them: a
// VMM keeps stage 2 (guest physical to host) in an address space and
// allocates a nesting-parent HWPT over it; a vIOMMU over that parent is
// the slice of the physical IOMMU one guest uses; each device gets a
// vDEVICE (its ID as the guest sees it) and a nested HWPT whose stage-1
// configuration points at page tables in guest memory, walked by the
// hardware through stage 2. The guest's invalidations go through the
// vIOMMU, its faults come back through an event queue.
//
// The interfaces are found by type assertion on an Attachment (Nester).
// One that cannot nest is not a Nester (the type1 backend's) or answers
// ErrNotSupported with the kernel's errno (the emulated type1 flavours
// and VT-d model, a kernel or IOMMU without nesting).

// HWPTFlags are a paging HWPT's allocation flags (IOMMU_HWPT_ALLOC_*).
type HWPTFlags uint32

const (
	// NestParent makes the HWPT a stage 2 that vIOMMUs and nested HWPTs
	// can sit on.
	NestParent HWPTFlags = 1 << 0
	// DirtyTracking asks for a page table that can track writes.
	DirtyTracking HWPTFlags = 1 << 1
)

// Nester is implemented by attachments whose device can allocate page
// tables explicitly and use them.
type Nester interface {
	// NewHWPT allocates a paging HWPT of the device's IOMMU mirroring
	// as's mappings (IOMMU_HWPT_ALLOC with an IOAS).
	NewHWPT(ctx context.Context, as AddressSpace, flags HWPTFlags) (HWPT, error)
	// NewVIOMMU allocates a vIOMMU of the device's IOMMU over parent,
	// which must be a NestParent HWPT (IOMMU_VIOMMU_ALLOC).
	NewVIOMMU(ctx context.Context, parent HWPT) (VIOMMU, error)
	// AttachHWPT moves the device's DMA to h, replacing what it was
	// attached to. Attaching the device to an address space moves it back.
	AttachHWPT(ctx context.Context, h HWPT) error
}

// HWPT is a hardware page table: a paging HWPT over an address space, or
// a nested HWPT over a vIOMMU.
type HWPT interface {
	ID() uint32
	// Destroy is IOMMU_DESTROY: ErrBusy while a device is attached or a
	// vIOMMU or nested HWPT sits on it, and the HWPT lives on; after a
	// successful Destroy, ErrNotFound.
	Destroy() error
}

// VIOMMU is a virtual IOMMU over a nesting parent.
type VIOMMU interface {
	ID() uint32
	// NewVDevice gives the attached dev the virtual ID the guest knows it
	// by (a StreamID on SMMUv3), one per device and ID.
	NewVDevice(ctx context.Context, dev Attachment, virtID uint64) (VDevice, error)
	// NewNested allocates a nested HWPT for dev with the stage-1
	// configuration s1.
	NewNested(ctx context.Context, dev Attachment, s1 Stage1) (HWPT, error)
	// Invalidate passes the guest's invalidation commands to the
	// hardware in order. It returns how many were handled: on an error,
	// the index of the command that failed.
	Invalidate(ctx context.Context, cmds Invalidation) (int, error)
	// NewEventQueue opens the vIOMMU's event queue (one per vIOMMU),
	// holding at most depth events; more are counted as lost.
	NewEventQueue(ctx context.Context, depth uint32) (EventQueue, error)
	// Destroy is IOMMU_DESTROY, ErrBusy while vDEVICEs, nested HWPTs or
	// the event queue use it.
	Destroy() error
}

// VDevice is a device's identity behind a vIOMMU.
type VDevice interface {
	VirtID() uint64
	// Destroy is IOMMU_DESTROY.
	Destroy() error
}

// EventQueue delivers the faults of the vIOMMU's devices.
type EventQueue interface {
	// Read returns the events queued, waiting for at least one until ctx
	// is done.
	Read(ctx context.Context) ([]Event, error)
	// Destroy is IOMMU_DESTROY and closes the queue's file.
	Destroy() error
}

// Event is one entry of an event queue.
type Event struct {
	Sequence uint32
	// Lost says events were dropped before this one (the queue was
	// full); such an entry has no Record.
	Lost bool
	// Record is the driver's event record, virtual IDs in place of
	// physical ones; on SMMUv3 32 little-endian bytes (decode with
	// ioctl/smmuv3.DecodeEvent).
	Record []byte
}

// Stage1 is a nested HWPT's stage-1 configuration, per IOMMU driver.
type Stage1 interface {
	fmt.Stringer
	stage1()
}

// SMMUv3STE is the guest's Stream Table Entry, words 0 and 1 (struct
// iommu_hwpt_arm_smmuv3): Config, the CD table's IPA and its attributes.
type SMMUv3STE [2]uint64

func (SMMUv3STE) stage1() {}

func (s SMMUv3STE) String() string { return fmt.Sprintf("vSTE %#x %#x", s[0], s[1]) }

// Invalidation is a batch of invalidation commands, per IOMMU driver.
type Invalidation interface {
	Len() int
	invalidation()
}

// SMMUv3Commands are SMMUv3 command-queue entries (struct
// iommu_viommu_arm_smmuv3_invalidate): TLBI_NH_*, CFGI_CD*, ATC_INV.
type SMMUv3Commands [][2]uint64

func (SMMUv3Commands) invalidation() {}

// Len is the number of commands.
func (c SMMUv3Commands) Len() int { return len(c) }
