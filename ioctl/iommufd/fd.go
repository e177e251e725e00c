//go:build linux

package iommufd

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl"
	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

// DefaultPath is iommufd's device node.
const DefaultPath = "/dev/iommu"

// ErrClosed is returned, wrapped, by every method of a closed FD.
var ErrClosed = raw.ErrClosed

// FD is an open iommufd: a context owning IOASes, HWPTs, devices bound to
// it and every other object the ioctls create. Closing it destroys them all
// and drops every pin.
type FD struct {
	raw  *raw.FD
	name string
}

// Open opens the iommufd device node at path, usually DefaultPath.
func Open(path string) (*FD, error) {
	r, err := raw.Open(path, unix.O_RDWR)
	if err != nil {
		return nil, err
	}
	return &FD{raw: r, name: path}, nil
}

// NewFD adopts an iommufd opened elsewhere, such as one received over
// SCM_RIGHTS from a privileged opener. It duplicates f's descriptor
// (close-on-exec), so the caller still owns f and may close it.
func NewFD(f *os.File) (*FD, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("adopt iommufd %s: %w", f.Name(), err)
	}
	dup, dupErr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		dup, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3)
	}); err != nil {
		return nil, fmt.Errorf("adopt iommufd %s: %w", f.Name(), err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("adopt iommufd %s: dup: %w", f.Name(), dupErr)
	}
	r, err := raw.NewFD(dup)
	if err != nil {
		_ = unix.Close(dup)
		return nil, err
	}
	return &FD{raw: r, name: f.Name()}, nil
}

// Close closes the iommufd, which frees every object in it. Closing twice
// is not an error.
func (fd *FD) Close() error {
	if fd == nil {
		return nil
	}
	return fd.raw.Close()
}

// Int returns the descriptor number, for VFIO_DEVICE_BIND_IOMMUFD, or -1
// once closed. The FD keeps ownership.
func (fd *FD) Int() int {
	if fd == nil {
		return -1
	}
	return fd.raw.Int()
}

// File returns a duplicate of the descriptor as an *os.File, for handing
// to a child process (exec.Cmd.ExtraFiles) or over SCM_RIGHTS. The caller
// owns it; the FD stays open.
func (fd *FD) File() (*os.File, error) {
	d, err := fd.rawFD().Dup()
	if err != nil {
		return nil, err
	}
	return d.File(fd.name), nil
}

// String implements fmt.Stringer.
func (fd *FD) String() string {
	if fd == nil {
		return "iommufd <nil>"
	}
	return fmt.Sprintf("iommufd %s (fd %d)", fd.name, fd.raw.Int())
}

func (fd *FD) rawFD() *raw.FD {
	if fd == nil {
		return nil
	}
	return fd.raw
}

// call issues req with its argument struct at arg and wraps a failure.
func (fd *FD) call(req uintptr, arg unsafe.Pointer) error {
	if err := raw.Ioctl(fd.rawFD(), req, arg); err != nil {
		return wrap(req, err)
	}
	return nil
}

// wrap names the ioctl in err, once; the errno stays in the chain. ENOTTY
// from an ioctl younger than iommufd itself means the kernel predates it.
func wrap(req uintptr, err error) error {
	name, since := describe(req)
	if since != firstRelease && errors.Is(err, unix.ENOTTY) {
		return &ioctl.UnsupportedError{Op: name, MinKernel: since, Err: err}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// firstRelease is the release that introduced iommufd.
const firstRelease = "6.2"

// describe returns the kernel name of an iommufd request and the first
// mainline release that has it.
func describe(req uintptr) (name, since string) {
	switch req {
	case uapi.IOMMU_DESTROY:
		return "IOMMU_DESTROY", firstRelease
	case uapi.IOMMU_IOAS_ALLOC:
		return "IOMMU_IOAS_ALLOC", firstRelease
	case uapi.IOMMU_IOAS_ALLOW_IOVAS:
		return "IOMMU_IOAS_ALLOW_IOVAS", firstRelease
	case uapi.IOMMU_IOAS_COPY:
		return "IOMMU_IOAS_COPY", firstRelease
	case uapi.IOMMU_IOAS_IOVA_RANGES:
		return "IOMMU_IOAS_IOVA_RANGES", firstRelease
	case uapi.IOMMU_IOAS_MAP:
		return "IOMMU_IOAS_MAP", firstRelease
	case uapi.IOMMU_IOAS_UNMAP:
		return "IOMMU_IOAS_UNMAP", firstRelease
	case uapi.IOMMU_OPTION:
		return "IOMMU_OPTION", firstRelease
	case uapi.IOMMU_VFIO_IOAS:
		return "IOMMU_VFIO_IOAS", firstRelease
	case uapi.IOMMU_HWPT_ALLOC:
		return "IOMMU_HWPT_ALLOC", "6.6"
	case uapi.IOMMU_GET_HW_INFO:
		return "IOMMU_GET_HW_INFO", "6.6"
	case uapi.IOMMU_HWPT_SET_DIRTY_TRACKING:
		return "IOMMU_HWPT_SET_DIRTY_TRACKING", "6.7"
	case uapi.IOMMU_HWPT_GET_DIRTY_BITMAP:
		return "IOMMU_HWPT_GET_DIRTY_BITMAP", "6.7"
	case uapi.IOMMU_HWPT_INVALIDATE:
		return "IOMMU_HWPT_INVALIDATE", "6.8"
	case uapi.IOMMU_FAULT_QUEUE_ALLOC:
		return "IOMMU_FAULT_QUEUE_ALLOC", "6.11"
	case uapi.IOMMU_IOAS_MAP_FILE:
		return "IOMMU_IOAS_MAP_FILE", "6.13"
	case uapi.IOMMU_VIOMMU_ALLOC:
		return "IOMMU_VIOMMU_ALLOC", "6.13"
	case uapi.IOMMU_VDEVICE_ALLOC:
		return "IOMMU_VDEVICE_ALLOC", "6.13"
	case uapi.IOMMU_IOAS_CHANGE_PROCESS:
		return "IOMMU_IOAS_CHANGE_PROCESS", "6.13"
	case uapi.IOMMU_VEVENTQ_ALLOC:
		return "IOMMU_VEVENTQ_ALLOC", "6.15"
	case uapi.IOMMU_HW_QUEUE_ALLOC:
		return "IOMMU_HW_QUEUE_ALLOC", "6.17"
	}
	return fmt.Sprintf("ioctl %#x", req), firstRelease
}

// userPtr returns the address of s's first element for a __u64 user
// pointer field, after pinning s in p; 0 for an empty s.
//
// An address held as an integer is invisible to the runtime: if s lived on
// a goroutine stack and the stack moved before the system call, the kernel
// would write into the old copy. Pinning makes s escape to the heap (Pin
// keeps its argument) and keeps it in place and alive until p.Unpin.
func userPtr[T any](p *runtime.Pinner, s []T) uint64 {
	if len(s) == 0 {
		return 0
	}
	ptr := unsafe.Pointer(unsafe.SliceData(s))
	p.Pin(ptr)
	return uint64(uintptr(ptr))
}

// newFile wraps a descriptor the kernel returned in an argument struct.
func newFile(fd uint32, name string) (*os.File, error) {
	r, err := raw.NewFD(int(int32(fd)))
	if err != nil {
		return nil, err
	}
	return r.File(name), nil
}
