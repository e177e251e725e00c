//go:build linux

package iommufd

import (
	"errors"
	"runtime"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

// Destroy wraps IOMMU_DESTROY: it destroys any object by ID. An object in
// use (an IOAS with a HWPT or device on it) is EBUSY; an unknown ID ENOENT.
func (fd *FD) Destroy(id ID) error {
	arg := uapi.IOMMUDestroy{Size: uint32(unsafe.Sizeof(uapi.IOMMUDestroy{})), ID: uint32(id)}
	return fd.call(uapi.IOMMU_DESTROY, unsafe.Pointer(&arg))
}

// IOASAlloc wraps IOMMU_IOAS_ALLOC: a new, empty IO address space.
func (fd *FD) IOASAlloc() (ID, error) {
	arg := uapi.IOMMUIOASAlloc{Size: uint32(unsafe.Sizeof(uapi.IOMMUIOASAlloc{}))}
	if err := fd.call(uapi.IOMMU_IOAS_ALLOC, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return ID(arg.OutIOASID), nil
}

// AllowIOVAs wraps IOMMU_IOAS_ALLOW_IOVAS: it replaces the IOAS's allowed
// list, which IOVARanges will never narrow below and automatic IOVAs stay
// within. An empty list clears it. A range over a reserved region is
// EADDRINUSE.
func (fd *FD) AllowIOVAs(ioas ID, allowed []Range) error {
	buf := make([]uapi.IOMMUIOVARange, len(allowed))
	for i, r := range allowed {
		buf[i] = uapi.IOMMUIOVARange{Start: uint64(r.Start), Last: uint64(r.Last)}
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	arg := uapi.IOMMUIOASAllowIOVAs{
		Size:         uint32(unsafe.Sizeof(uapi.IOMMUIOASAllowIOVAs{})),
		IOASID:       uint32(ioas),
		NumIOVAs:     uint32(len(buf)),
		AllowedIOVAs: userPtr(&pin, buf),
	}
	return fd.call(uapi.IOMMU_IOAS_ALLOW_IOVAS, unsafe.Pointer(&arg))
}

// Copy wraps IOMMU_IOAS_COPY: it maps length bytes that are mapped at
// srcIOVA in src into dst, at dstIOVA with FixedIOVA, else where the
// kernel picks, and returns the IOVA used. The pages stay pinned once.
// The source range must be covered by whole mappings (ENOENT otherwise).
func (fd *FD) Copy(dst ID, dstIOVA IOVA, src ID, srcIOVA IOVA, length uint64, flags MapFlags) (IOVA, error) {
	arg := copyArg(dst, dstIOVA, src, srcIOVA, length, flags)
	if err := fd.call(uapi.IOMMU_IOAS_COPY, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return IOVA(arg.DstIOVA), nil
}

func copyArg(dst ID, dstIOVA IOVA, src ID, srcIOVA IOVA, length uint64, flags MapFlags) uapi.IOMMUIOASCopy {
	return uapi.IOMMUIOASCopy{
		Size:      uint32(unsafe.Sizeof(uapi.IOMMUIOASCopy{})),
		Flags:     uint32(flags),
		DstIOASID: uint32(dst),
		SrcIOASID: uint32(src),
		Length:    length,
		DstIOVA:   uint64(dstIOVA),
		SrcIOVA:   uint64(srcIOVA),
	}
}

// Bounds for IOVARanges: room for a typical list on the first call, how
// often to retry when the list keeps growing between calls (a device
// attached meanwhile), and the most ranges we believe the kernel has.
const (
	iovaRangesInitial  = 8
	iovaRangesMaxTries = 4
	iovaRangesMax      = 1 << 20
)

// IOVARanges wraps IOMMU_IOAS_IOVA_RANGES: the IOVA ranges usable for
// mapping in the IOAS, and the alignment every map's start and end must
// have. A fresh IOAS has one range over everything; each attached device
// narrows it, so ask again after every attach or detach. When the kernel
// has more ranges than the buffer holds (EMSGSIZE) it retries with the
// size the kernel asked for.
func (fd *FD) IOVARanges(ioas ID) (ranges []Range, alignment uint64, err error) {
	return iovaRanges(ioas, func(arg *uapi.IOMMUIOASIOVARanges, _ []uapi.IOMMUIOVARange) error {
		return fd.call(uapi.IOMMU_IOAS_IOVA_RANGES, unsafe.Pointer(arg))
	})
}

// iovaRanges is IOVARanges' grow-and-retry loop. call issues the ioctl;
// it also receives the buffer that arg.AllowedIOVAs points to, which only
// a fake kernel needs.
func iovaRanges(ioas ID, call func(*uapi.IOMMUIOASIOVARanges, []uapi.IOMMUIOVARange) error) ([]Range, uint64, error) {
	n := iovaRangesInitial
	var err error
	for range iovaRangesMaxTries {
		buf := make([]uapi.IOMMUIOVARange, n)
		var pin runtime.Pinner
		arg := uapi.IOMMUIOASIOVARanges{
			Size:         uint32(unsafe.Sizeof(uapi.IOMMUIOASIOVARanges{})),
			IOASID:       uint32(ioas),
			NumIOVAs:     uint32(n),
			AllowedIOVAs: userPtr(&pin, buf),
		}
		err = call(&arg, buf)
		pin.Unpin()
		if err == nil {
			got := buf[:min(int(arg.NumIOVAs), n)]
			ranges := make([]Range, len(got))
			for i, r := range got {
				ranges[i] = Range{Start: IOVA(r.Start), Last: IOVA(r.Last)}
			}
			return ranges, arg.OutIOVAAlignment, nil
		}
		if !errors.Is(err, unix.EMSGSIZE) || int(arg.NumIOVAs) <= n || arg.NumIOVAs > iovaRangesMax {
			return nil, 0, err
		}
		n = int(arg.NumIOVAs)
	}
	return nil, 0, err // still EMSGSIZE: the list kept growing
}

// Map wraps IOMMU_IOAS_MAP: it maps mem into the IOAS at iova with
// FixedIOVA (EEXIST if anything is mapped there), else at an IOVA the
// kernel picks, and returns the IOVA used. flags need Readable and/or
// Writeable for DMA to be allowed at all.
//
// mem must be mmap or memfd memory that stays mapped until Unmap, never
// Go heap memory: the runtime could free and reuse it while the device
// still reaches it. Map does not allocate.
func (fd *FD) Map(ioas ID, mem []byte, iova IOVA, flags MapFlags) (IOVA, error) {
	arg := mapArg(ioas, mem, iova, flags)
	if err := fd.call(uapi.IOMMU_IOAS_MAP, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return IOVA(arg.IOVA), nil
}

func mapArg(ioas ID, mem []byte, iova IOVA, flags MapFlags) uapi.IOMMUIOASMap {
	return uapi.IOMMUIOASMap{
		Size:   uint32(unsafe.Sizeof(uapi.IOMMUIOASMap{})),
		Flags:  uint32(flags),
		IOASID: uint32(ioas),
		UserVA: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem)))),
		Length: uint64(len(mem)),
		IOVA:   uint64(iova),
	}
}

// MapFile wraps IOMMU_IOAS_MAP_FILE (Linux 6.13): Map for length bytes of
// the memfd memfd from offset start. Only such maps can move to another
// process with ChangeProcess. memfd must stay open until MapFile returns.
func (fd *FD) MapFile(ioas ID, memfd int, start, length uint64, iova IOVA, flags MapFlags) (IOVA, error) {
	arg := uapi.IOMMUIOASMapFile{
		Size:   uint32(unsafe.Sizeof(uapi.IOMMUIOASMapFile{})),
		Flags:  uint32(flags),
		IOASID: uint32(ioas),
		FD:     int32(memfd),
		Start:  start,
		Length: length,
		IOVA:   uint64(iova),
	}
	if err := fd.call(uapi.IOMMU_IOAS_MAP_FILE, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return IOVA(arg.IOVA), nil
}

// Unmap wraps IOMMU_IOAS_UNMAP: it unmaps every mapping inside
// [iova, iova+length) and returns the bytes unmapped. The range must cover
// whole mappings: one that would cut a mapping, or holds none, is ENOENT.
// Unmap(ioas, 0, math.MaxUint64) unmaps everything. Unmap does not
// allocate.
func (fd *FD) Unmap(ioas ID, iova IOVA, length uint64) (uint64, error) {
	arg := uapi.IOMMUIOASUnmap{
		Size:   uint32(unsafe.Sizeof(uapi.IOMMUIOASUnmap{})),
		IOASID: uint32(ioas),
		IOVA:   uint64(iova),
		Length: length,
	}
	if err := fd.call(uapi.IOMMU_IOAS_UNMAP, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return arg.Length, nil
}

// ChangeProcess wraps IOMMU_IOAS_CHANGE_PROCESS (Linux 6.13): it moves the
// pinned-page accounting of every map in the iommufd to the calling
// process, for a live update handing the fd to a new process. Only
// MapFile maps can move; any other map makes it EINVAL, changing nothing.
func (fd *FD) ChangeProcess() error {
	arg := uapi.IOMMUIOASChangeProcess{Size: uint32(unsafe.Sizeof(uapi.IOMMUIOASChangeProcess{}))}
	return fd.call(uapi.IOMMU_IOAS_CHANGE_PROCESS, unsafe.Pointer(&arg))
}

func (fd *FD) option(op uint16, opt Option, object ID, value uint64) (uint64, error) {
	arg := uapi.IOMMUOption{
		Size:     uint32(unsafe.Sizeof(uapi.IOMMUOption{})),
		OptionID: uint32(opt),
		Op:       op,
		ObjectID: uint32(object),
		Val64:    value,
	}
	if err := fd.call(uapi.IOMMU_OPTION, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return arg.Val64, nil
}

// GetOption wraps IOMMU_OPTION with IOMMU_OPTION_OP_GET. object is 0 for
// the global OptionRLimitMode and an IOAS for OptionHugePages.
func (fd *FD) GetOption(opt Option, object ID) (uint64, error) {
	return fd.option(uapi.IOMMU_OPTION_OP_GET, opt, object, 0)
}

// SetOption wraps IOMMU_OPTION with IOMMU_OPTION_OP_SET.
func (fd *FD) SetOption(opt Option, object ID, value uint64) error {
	_, err := fd.option(uapi.IOMMU_OPTION_OP_SET, opt, object, value)
	return err
}

// RLimitMode wraps IOMMU_OPTION: it reads how pins are charged to
// RLIMIT_MEMLOCK.
func (fd *FD) RLimitMode() (RLimitMode, error) {
	v, err := fd.GetOption(OptionRLimitMode, 0)
	return RLimitMode(v), err
}

// SetRLimitMode wraps IOMMU_OPTION: it selects how pins are charged to
// RLIMIT_MEMLOCK. It needs CAP_SYS_RESOURCE (EPERM) and an iommufd with no
// objects yet (EBUSY), so call it right after Open.
func (fd *FD) SetRLimitMode(mode RLimitMode) error {
	return fd.SetOption(OptionRLimitMode, 0, uint64(mode))
}

// HugePages wraps IOMMU_OPTION: whether the IOAS combines contiguous pages
// into large IOMMU mappings (the default).
func (fd *FD) HugePages(ioas ID) (bool, error) {
	v, err := fd.GetOption(OptionHugePages, ioas)
	return v != 0, err
}

// SetHugePages wraps IOMMU_OPTION: with false the IOAS maps everything at
// PAGE_SIZE, which raises its IOVA alignment (EADDRINUSE if an existing
// map is not aligned to it).
func (fd *FD) SetHugePages(ioas ID, enable bool) error {
	var v uint64
	if enable {
		v = 1
	}
	return fd.SetOption(OptionHugePages, ioas, v)
}

// VFIOIOAS wraps IOMMU_VFIO_IOAS: it gets, sets or clears the IOAS that
// the VFIO container compatibility layer uses, and returns the IOAS for
// VFIOIOASGet (ENODEV when there is none).
func (fd *FD) VFIOIOAS(op VFIOIOASOp, ioas ID) (ID, error) {
	arg := uapi.IOMMUVFIOIOAS{
		Size:   uint32(unsafe.Sizeof(uapi.IOMMUVFIOIOAS{})),
		IOASID: uint32(ioas),
		Op:     uint16(op),
	}
	if err := fd.call(uapi.IOMMU_VFIO_IOAS, unsafe.Pointer(&arg)); err != nil {
		return 0, err
	}
	return ID(arg.IOASID), nil
}
