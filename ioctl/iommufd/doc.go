//go:build linux

// Package iommufd wraps the iommufd uAPI (include/uapi/linux/iommufd.h):
// one typed method per ioctl on an FD for /dev/iommu.
//
// Methods set the size field themselves (from unsafe.Sizeof, never from
// the caller), speak typed IDs, IOVAs and flags, grow output buffers when
// the kernel asks for more room (IOMMU_IOAS_IOVA_RANGES' EMSGSIZE), and
// wrap every error once with the kernel's name for the ioctl while keeping
// the errno: errors.Is(err, unix.ENOENT) holds. An ioctl newer than the
// running kernel (ENOTTY) is an *ioctl.UnsupportedError naming its first
// release, which matches ioctl.ErrNotSupported.
//
// A typical sequence with a VFIO cdev (ioctl/vfio):
//
//	fd, _ := iommufd.Open(iommufd.DefaultPath)
//	ioas, _ := fd.IOASAlloc()
//	devID, _ := dev.BindIOMMUFD(fd.Int(), nil)
//	dev.AttachIOMMUFDPT(uint32(ioas))
//	ranges, align, _ := fd.IOVARanges(ioas) // narrowed by the attach
//	mem, _ := unix.Mmap(-1, 0, 1<<21, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
//	iova, _ := fd.Map(ioas, mem, 0x100000, iommufd.FixedIOVA|iommufd.Readable|iommufd.Writeable)
//	info, _ := fd.GetHWInfo(iommufd.ID(devID)) // info.VTD() or info.SMMUv3()
//	fd.Unmap(ioas, iova, uint64(len(mem)))
//	fd.Destroy(ioas)
//
// Ioctl is the one untyped escape hatch, for conformance tests of the
// kernel's size checks.
//
// Memory handed to Map must be mmap or memfd memory, never a Go slice from
// the heap: the IOMMU keeps the pages pinned and mapped after the call,
// while the Go runtime may free and reuse heap memory that the program no
// longer references.
//
// An FD is safe for concurrent use (the kernel serialises what needs it),
// except that Close must not race with other calls.
package iommufd
