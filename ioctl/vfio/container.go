//go:build linux

package vfio

import (
	"errors"
	"runtime"
	"structs"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

// DefaultContainerPath is the VFIO container node: the legacy VFIO one, or
// iommufd's when the compat container is configured.
const DefaultContainerPath = "/dev/vfio/vfio"

// Container is an open VFIO container.
type Container struct {
	fd *raw.FD
}

// OpenContainer opens the container node at path (DefaultContainerPath).
func OpenContainer(path string) (*Container, error) {
	fd, err := raw.Open(path, unix.O_RDWR)
	if err != nil {
		return nil, err
	}
	return &Container{fd: fd}, nil
}

// Close closes the container. Closing twice is not an error. The kernel
// unmaps everything once no group holds the container.
func (c *Container) Close() error { return c.fd.Close() }

// FD returns the descriptor number, or -1 once closed. The Container keeps
// ownership.
func (c *Container) FD() int { return c.fd.Int() }

// APIVersion wraps VFIO_GET_API_VERSION. It is uapi.VFIO_API_VERSION (0)
// on every kernel so far.
func (c *Container) APIVersion() (int, error) {
	v, err := raw.IoctlRet(c.fd, uapi.VFIO_GET_API_VERSION, nil)
	return v, wrap("VFIO_GET_API_VERSION", err)
}

// CheckExtension wraps VFIO_CHECK_EXTENSION: > 0 when ext (an IOMMU type
// or extension, uapi.VFIO_TYPE1v2_IOMMU ...) is supported, 0 when not.
func (c *Container) CheckExtension(ext int) (int, error) {
	v, err := raw.IoctlValue(c.fd, uapi.VFIO_CHECK_EXTENSION, uintptr(ext))
	return v, wrap("VFIO_CHECK_EXTENSION", err)
}

// SetIOMMU wraps VFIO_SET_IOMMU. It needs a group in the container first
// (Group.SetContainer); typ is an IOMMU type such as
// uapi.VFIO_TYPE1v2_IOMMU.
func (c *Container) SetIOMMU(typ int) error {
	_, err := raw.IoctlValue(c.fd, uapi.VFIO_SET_IOMMU, uintptr(typ))
	return wrap("VFIO_SET_IOMMU", err)
}

// IOMMUInfo is the decoded answer of VFIO_IOMMU_GET_INFO.
type IOMMUInfo struct {
	Flags     uint32 // uapi.VFIO_IOMMU_INFO_*
	PageSizes uint64 // IOVA page sizes bitmap, with VFIO_IOMMU_INFO_PGSIZES
	// IOVARanges are the usable IOVA ranges (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
	// 5.4); nil when the kernel does not report them.
	IOVARanges []IOVARange
	// Migration is set when dirty page logging is available (5.8).
	Migration *MigrationCap
	// DMAAvail is how many more DMA mappings the container takes now
	// (VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 5.10): type1 stops at
	// dma_entry_limit, 65535 by default, with ENOSPC.
	DMAAvail *uint32
	// Caps is the whole capability chain, unknown IDs included.
	Caps []Capability
}

// IOMMUInfo wraps VFIO_IOMMU_GET_INFO, growing the buffer when the
// capability chain does not fit, and decodes the chain.
func (c *Container) IOMMUInfo() (*IOMMUInfo, error) {
	const op = "VFIO_IOMMU_GET_INFO"
	fixed := newBuf(int(unsafe.Sizeof(uapi.VFIOIOMMUType1Info{})))
	buf, err := queryInfo(fixed, func(buf []byte) error {
		return raw.Ioctl(c.fd, uapi.VFIO_IOMMU_GET_INFO, bufPtr(buf))
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	info, err := decodeIOMMUInfo(buf)
	return info, wrap(op, err)
}

func decodeIOMMUInfo(buf []byte) (*IOMMUInfo, error) {
	fixed := as[uapi.VFIOIOMMUType1Info](buf)
	info := &IOMMUInfo{Flags: fixed.Flags, PageSizes: fixed.IOVAPgSizes}
	if fixed.Flags&uapi.VFIO_IOMMU_INFO_CAPS == 0 {
		return info, nil
	}
	caps, err := parseCaps(buf, fixed.CapOffset, int(unsafe.Sizeof(*fixed)))
	if err != nil {
		return nil, err
	}
	info.Caps = caps
	for _, c := range caps {
		switch c.ID {
		case uapi.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE:
			if info.IOVARanges == nil {
				if info.IOVARanges, err = decodeIOVARanges(c); err != nil {
					return nil, err
				}
				if info.IOVARanges == nil {
					info.IOVARanges = []IOVARange{}
				}
			}
		case uapi.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION:
			if info.Migration == nil {
				if info.Migration, err = decodeMigration(c); err != nil {
					return nil, err
				}
			}
		case uapi.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL:
			if info.DMAAvail == nil {
				v, err := decodeU32(c)
				if err != nil {
					return nil, err
				}
				info.DMAAvail = &v
			}
		}
	}
	return info, nil
}

// DMAMapFlags are the flags of MapDMA.
type DMAMapFlags uint32

const (
	DMARead  DMAMapFlags = uapi.VFIO_DMA_MAP_FLAG_READ  // the device may read
	DMAWrite DMAMapFlags = uapi.VFIO_DMA_MAP_FLAG_WRITE // the device may write
	// DMAVAddr re-points an existing mapping (same iova and size) at mem
	// after UnmapDMA with UnmapVAddr; READ and WRITE must then be clear.
	DMAVAddr DMAMapFlags = uapi.VFIO_DMA_MAP_FLAG_VADDR
)

// errEmpty is returned for a zero-length memory argument, which the
// kernel would reject anyway (EINVAL) but whose address we cannot take.
var errEmpty = errors.New("empty memory range")

// MapDMA wraps VFIO_IOMMU_MAP_DMA: it maps mem at iova.
//
// mem must come from mmap (unix.Mmap, a memfd mapping, hugetlbfs) and stay
// mapped until UnmapDMA: the kernel pins its pages and the device keeps
// using them after MapDMA returns. Never pass Go heap memory (make, a
// slice of a Go array): the runtime may free or reuse it while the device
// still writes to it. iova, len(mem) and the address of mem must be
// multiples of the smallest IOMMU page (IOMMUInfo.PageSizes).
func (c *Container) MapDMA(mem []byte, iova uint64, flags DMAMapFlags) error {
	const op = "VFIO_IOMMU_MAP_DMA"
	if len(mem) == 0 {
		return wrap(op, errEmpty)
	}
	arg := mapDMAArg(uintptr(unsafe.Pointer(&mem[0])), uint64(len(mem)), iova, flags)
	err := raw.Ioctl(c.fd, uapi.VFIO_IOMMU_MAP_DMA, unsafe.Pointer(&arg))
	runtime.KeepAlive(mem)
	return wrap(op, err)
}

func mapDMAArg(vaddr uintptr, size, iova uint64, flags DMAMapFlags) uapi.VFIOIOMMUType1DMAMap {
	return uapi.VFIOIOMMUType1DMAMap{
		ArgSz: uint32(unsafe.Sizeof(uapi.VFIOIOMMUType1DMAMap{})),
		Flags: uint32(flags),
		VAddr: uint64(vaddr),
		IOVA:  iova,
		Size:  size,
	}
}

// DMAUnmapFlags are the flags of UnmapDMA.
type DMAUnmapFlags uint32

const (
	// UnmapAll unmaps everything; iova and size must be 0
	// (uapi.VFIO_UNMAP_ALL extension, 5.12).
	UnmapAll DMAUnmapFlags = uapi.VFIO_DMA_UNMAP_FLAG_ALL
	// UnmapVAddr keeps the mappings but invalidates their user addresses
	// until MapDMA with DMAVAddr (uapi.VFIO_UPDATE_VADDR extension, 5.12).
	UnmapVAddr DMAUnmapFlags = uapi.VFIO_DMA_UNMAP_FLAG_VADDR
)

// UnmapDMA wraps VFIO_IOMMU_UNMAP_DMA and returns how many bytes were
// unmapped. type1v2 unmaps only whole mappings: cutting one is EINVAL, and
// a range holding none unmaps 0 bytes without error. The dirty bitmap
// variant is UnmapDMAGetDirty.
func (c *Container) UnmapDMA(iova, size uint64, flags DMAUnmapFlags) (uint64, error) {
	arg := uapi.VFIOIOMMUType1DMAUnmap{
		ArgSz: uint32(unsafe.Sizeof(uapi.VFIOIOMMUType1DMAUnmap{})),
		Flags: uint32(flags),
		IOVA:  iova,
		Size:  size,
	}
	if err := raw.Ioctl(c.fd, uapi.VFIO_IOMMU_UNMAP_DMA, unsafe.Pointer(&arg)); err != nil {
		return 0, wrap("VFIO_IOMMU_UNMAP_DMA", err)
	}
	return arg.Size, nil
}

// unmapDirtyArg is vfio_iommu_type1_dma_unmap followed by its vfio_bitmap.
type unmapDirtyArg struct {
	_      structs.HostLayout
	unmap  uapi.VFIOIOMMUType1DMAUnmap
	bitmap uapi.VFIOBitmap
}

// UnmapDMAGetDirty wraps VFIO_IOMMU_UNMAP_DMA with
// VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: it unmaps like UnmapDMA and sets
// one bit per pgsize page of the unmapped range that the device dirtied.
// bitmap must be zeroed and cover size/pgsize bits; dirty logging must be
// on (DirtyPagesStart).
func (c *Container) UnmapDMAGetDirty(iova, size, pgsize uint64, bitmap []uint64) (uint64, error) {
	const op = "VFIO_IOMMU_UNMAP_DMA"
	if len(bitmap) == 0 {
		return 0, wrap(op, errEmpty)
	}
	arg := unmapDirtyArg{
		unmap: uapi.VFIOIOMMUType1DMAUnmap{
			ArgSz: uint32(unsafe.Sizeof(unmapDirtyArg{})),
			Flags: uapi.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
			IOVA:  iova,
			Size:  size,
		},
		bitmap: bitmapArg(pgsize, bitmap),
	}
	err := raw.Ioctl(c.fd, uapi.VFIO_IOMMU_UNMAP_DMA, unsafe.Pointer(&arg))
	runtime.KeepAlive(bitmap) // its address is inside arg
	if err != nil {
		return 0, wrap(op, err)
	}
	return arg.unmap.Size, nil
}

func bitmapArg(pgsize uint64, bitmap []uint64) uapi.VFIOBitmap {
	return uapi.VFIOBitmap{
		PgSize: pgsize,
		Size:   uint64(len(bitmap)) * 8,
		Data:   uint64(uintptr(unsafe.Pointer(&bitmap[0]))),
	}
}

// DirtyPagesStart wraps VFIO_IOMMU_DIRTY_PAGES with
// VFIO_IOMMU_DIRTY_PAGES_FLAG_START: the IOMMU driver starts logging pages
// the devices may dirty (type1 only; iommufd's compat container answers
// ENOTTY).
func (c *Container) DirtyPagesStart() error {
	return c.dirtyPages(uapi.VFIO_IOMMU_DIRTY_PAGES_FLAG_START)
}

// DirtyPagesStop wraps VFIO_IOMMU_DIRTY_PAGES with
// VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP.
func (c *Container) DirtyPagesStop() error {
	return c.dirtyPages(uapi.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP)
}

func (c *Container) dirtyPages(flags uint32) error {
	arg := uapi.VFIOIOMMUType1DirtyBitmap{
		ArgSz: uint32(unsafe.Sizeof(uapi.VFIOIOMMUType1DirtyBitmap{})),
		Flags: flags,
	}
	return wrap("VFIO_IOMMU_DIRTY_PAGES", raw.Ioctl(c.fd, uapi.VFIO_IOMMU_DIRTY_PAGES, unsafe.Pointer(&arg)))
}

// dirtyBitmapArg is vfio_iommu_type1_dirty_bitmap followed by its
// vfio_iommu_type1_dirty_bitmap_get.
type dirtyBitmapArg struct {
	_   structs.HostLayout
	hdr uapi.VFIOIOMMUType1DirtyBitmap
	get uapi.VFIOIOMMUType1DirtyBitmapGet
}

// DirtyPagesBitmap wraps VFIO_IOMMU_DIRTY_PAGES with
// VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP: it sets one bit per pgsize page
// of [iova, iova+size) dirtied since logging started or the last call.
// pgsize must be the smallest IOMMU page size (MigrationCap.PageSizes);
// bitmap must be zeroed and cover size/pgsize bits.
func (c *Container) DirtyPagesBitmap(iova, size, pgsize uint64, bitmap []uint64) error {
	const op = "VFIO_IOMMU_DIRTY_PAGES"
	if len(bitmap) == 0 {
		return wrap(op, errEmpty)
	}
	arg := dirtyBitmapArg{
		hdr: uapi.VFIOIOMMUType1DirtyBitmap{
			ArgSz: uint32(unsafe.Sizeof(dirtyBitmapArg{})), // without the bitmap itself
			Flags: uapi.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
		},
		get: uapi.VFIOIOMMUType1DirtyBitmapGet{IOVA: iova, Size: size, Bitmap: bitmapArg(pgsize, bitmap)},
	}
	err := raw.Ioctl(c.fd, uapi.VFIO_IOMMU_DIRTY_PAGES, unsafe.Pointer(&arg))
	runtime.KeepAlive(bitmap)
	return wrap(op, err)
}

// Ioctl issues request req on the container with arg as the argument
// buffer, exactly as given: argsz and everything else are the caller's,
// and an empty arg passes NULL. It returns the ioctl's result.
//
// It exists for conformance tests of the kernel's own checks (argsz below
// minsz is EINVAL, unknown flags, NULL is EFAULT); use the typed methods
// for everything else. arg must not hold addresses of Go memory.
func (c *Container) Ioctl(req uintptr, arg []byte) (int, error) {
	return escapeHatch(c.fd, req, arg)
}
