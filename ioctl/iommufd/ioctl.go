//go:build linux

package iommufd

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
	"golang.org/x/sys/unix"
)

// Ioctl issues the iommufd request req with arg as the argument struct,
// leading size field included, exactly as given. It is the one escape
// hatch from the typed methods, for conformance tests of the kernel's own
// checks: a size below the minimum (EINVAL), a larger size with a non-zero
// tail (E2BIG) or a zero one (accepted), an unknown request (ENOTTY), or a
// nil arg (the kernel sees NULL: EFAULT). Anything else should use the
// typed methods.
//
// The kernel reads and writes back up to the size arg declares, so that
// size may not exceed len(arg); Ioctl refuses such an arg, and one
// shorter than the size field itself, with EINVAL without issuing it.
// Addresses inside arg (data pointers) must point to memory that cannot
// move: mmap memory, or Go memory the caller pinned. ENOTTY stays a plain
// errno here, not an *ioctl.UnsupportedError.
func (fd *FD) Ioctl(req uintptr, arg []byte) error {
	name, _ := describe(req)
	var p unsafe.Pointer
	if arg != nil {
		if len(arg) < 4 {
			return fmt.Errorf("%s: %d-byte argument has no size field, not sent: %w", name, len(arg), unix.EINVAL)
		}
		if size := binary.NativeEndian.Uint32(arg); uint64(size) > uint64(len(arg)) {
			return fmt.Errorf("%s: size field %d exceeds the %d-byte argument, not sent: %w", name, size, len(arg), unix.EINVAL)
		}
		p = unsafe.Pointer(unsafe.SliceData(arg))
	}
	if err := raw.Ioctl(fd.rawFD(), req, p); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
