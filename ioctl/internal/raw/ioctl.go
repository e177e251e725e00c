//go:build linux

package raw

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ioctl issues request req on fd with a pointer argument.
//
// arg must point to memory that the garbage collector does not move or free
// during the call: a Go value whose address is taken here, or mmap/memfd
// memory. Buffers whose addresses sit inside *arg must be kept alive by the
// caller until Ioctl returns.
func Ioctl(fd *FD, req uintptr, arg unsafe.Pointer) error {
	_, err := IoctlRet(fd, req, arg)
	return err
}

// IoctlRet is Ioctl for requests whose result is the return value, such as
// VFIO_GROUP_GET_DEVICE_FD and VFIO_CHECK_EXTENSION.
func IoctlRet(fd *FD, req uintptr, arg unsafe.Pointer) (int, error) {
	raw, err := fd.value()
	if err != nil {
		return -1, err
	}
	for {
		// The pointer converts inside the argument list: the one form the
		// unsafe.Pointer rules keep valid across the system call.
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(raw), req, uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		runtime.KeepAlive(arg)
		runtime.KeepAlive(fd) // its cleanup must not close the fd mid-call
		if e != 0 {
			return -1, &Errno{Request: req, Errno: e}
		}
		return int(r), nil
	}
}

// IoctlValue issues request req with an integer passed by value, as
// VFIO_CHECK_EXTENSION and VFIO_SET_IOMMU take it.
//
// It is a second call site only because a value is not a pointer: passing
// it through Ioctl would need an invalid uintptr-to-Pointer conversion.
func IoctlValue(fd *FD, req uintptr, value uintptr) (int, error) {
	raw, err := fd.value()
	if err != nil {
		return -1, err
	}
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(raw), req, value)
		if e == unix.EINTR {
			continue
		}
		runtime.KeepAlive(fd)
		if e != 0 {
			return -1, &Errno{Request: req, Errno: e}
		}
		return int(r), nil
	}
}
