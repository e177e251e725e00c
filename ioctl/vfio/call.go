//go:build linux

package vfio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl"
	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned, wrapped, by every method of a closed Container,
// Group or Device.
var ErrClosed = raw.ErrClosed

// wrap names the ioctl in err, once. The errno stays in the chain.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// wrapSince is wrap for ioctls younger than some kernels we may meet: their
// ENOTTY becomes an *ioctl.UnsupportedError naming the first release.
func wrapSince(op, minKernel string, err error) error {
	if errors.Is(err, unix.ENOTTY) {
		return &ioctl.UnsupportedError{Op: op, MinKernel: minKernel, Err: err}
	}
	return wrap(op, err)
}

// newBuf returns n zeroed bytes aligned for any uapi struct: the kernel
// does not care, but casting the head to a struct with a __u64 does.
func newBuf(n int) []byte {
	words := make([]uint64, (n+7)/8)
	if len(words) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}

// bufPtr is the argument pointer for buf; nil for an empty buffer, so the
// kernel sees NULL (and says EFAULT) rather than a stray address.
func bufPtr(buf []byte) unsafe.Pointer {
	if len(buf) == 0 {
		return nil
	}
	return unsafe.Pointer(&buf[0])
}

// as views the head of buf, which came from newBuf, as a *T.
func as[T any](buf []byte) *T {
	if uintptr(len(buf)) < unsafe.Sizeof(*new(T)) {
		panic("vfio: buffer shorter than its struct")
	}
	return (*T)(unsafe.Pointer(&buf[0]))
}

func setArgSz(buf []byte) {
	binary.NativeEndian.PutUint32(buf, uint32(len(buf)))
}

// Bounds for INFO buffers the kernel asks us to grow: room for the usual
// capability chain on the first call, and a cap on what we believe.
const (
	infoInitialSize = 512
	infoMaxSize     = 1 << 20
	infoMaxTries    = 4
)

// queryInfo runs an INFO ioctl whose argument starts with argsz and may
// carry a capability chain. fixed is the fixed struct with its inputs set
// (index for region and IRQ info); call issues the ioctl on a buffer.
//
// vfio.h: a buffer too small for the chain still succeeds, with argsz
// raised to the size needed and cap_offset 0. queryInfo then retries with
// that size, a few times, since the chain can grow between calls (a group
// added to the container). It returns the buffer of the last call.
func queryInfo(fixed []byte, call func(buf []byte) error) ([]byte, error) {
	size := max(len(fixed), infoInitialSize)
	for range infoMaxTries {
		buf := newBuf(size)
		copy(buf, fixed)
		setArgSz(buf)
		if err := call(buf); err != nil {
			return nil, err
		}
		need := int(binary.NativeEndian.Uint32(buf))
		if need <= len(buf) {
			return buf, nil
		}
		if need > infoMaxSize {
			return nil, fmt.Errorf("kernel asks for a %d-byte INFO buffer, more than %d", need, infoMaxSize)
		}
		size = need
	}
	return nil, fmt.Errorf("INFO buffer still too small after %d tries", infoMaxTries)
}

// ioctlBuf issues req with buf as the argument, as it is.
func ioctlBuf(fd *raw.FD, req uintptr, buf []byte) (int, error) {
	return raw.IoctlRet(fd, req, bufPtr(buf))
}

// escapeHatch is the body of the Ioctl methods.
func escapeHatch(fd *raw.FD, req uintptr, arg []byte) (int, error) {
	r, err := ioctlBuf(fd, req, arg)
	if err != nil {
		return r, fmt.Errorf("ioctl %#x: %w", req, err)
	}
	return r, nil
}
