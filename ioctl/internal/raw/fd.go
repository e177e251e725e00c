//go:build linux

package raw

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by operations on a closed FD.
var ErrClosed = errors.New("file descriptor closed")

// FD owns a file descriptor of a device node (/dev/iommu, /dev/vfio/*).
//
// Close is idempotent. An FD that becomes unreachable without Close is
// closed by a runtime cleanup, so a forgotten fd cannot keep a VFIO group
// busy forever; tests still see it as a leak (see Leaks).
// An FD is not safe for concurrent Close and use.
type FD struct {
	raw     int
	id      uint64 // leak-tracking key in test binaries
	cleanup runtime.Cleanup
}

// NewFD takes ownership of raw.
func NewFD(raw int) (*FD, error) {
	if raw < 0 {
		return nil, fmt.Errorf("invalid file descriptor %d", raw)
	}
	fd := &FD{raw: raw, id: track()}
	fd.cleanup = runtime.AddCleanup(fd, closeRaw, raw)
	return fd, nil
}

// Open opens a device node with O_CLOEXEC added to flags.
func Open(path string, flags int) (*FD, error) {
	raw, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return NewFD(raw)
}

// closeRaw runs when an FD is collected without Close. It keeps the leak
// record: the fd was closed, but only by luck.
func closeRaw(raw int) { _ = unix.Close(raw) }

func (fd *FD) value() (int, error) {
	if fd == nil || fd.raw < 0 {
		return -1, ErrClosed
	}
	return fd.raw, nil
}

// Int returns the descriptor number, or -1 once closed. The FD keeps
// ownership: the number is only valid while the FD is open and reachable.
func (fd *FD) Int() int {
	if fd == nil {
		return -1
	}
	return fd.raw
}

// String implements fmt.Stringer.
func (fd *FD) String() string { return "fd " + strconv.Itoa(fd.Int()) }

// Close closes the descriptor. Closing twice is not an error.
func (fd *FD) Close() error {
	if fd == nil || fd.raw < 0 {
		return nil
	}
	return unix.Close(fd.Disown())
}

// Disown gives up ownership and returns the descriptor number, which the
// caller must now close (or hand to os.NewFile).
func (fd *FD) Disown() int {
	raw := fd.raw
	fd.raw = -1
	fd.cleanup.Stop()
	untrack(fd.id)
	return raw
}

// Dup returns a new FD for the same open file description, close-on-exec.
func (fd *FD) Dup() (*FD, error) {
	raw, err := fd.value()
	if err != nil {
		return nil, err
	}
	dup, err := unix.FcntlInt(uintptr(raw), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", fd, err)
	}
	return NewFD(dup)
}

// File transfers ownership to an *os.File, for passing the descriptor to a
// child process or over SCM_RIGHTS.
func (fd *FD) File(name string) *os.File {
	if fd == nil || fd.raw < 0 {
		return nil
	}
	return os.NewFile(uintptr(fd.Disown()), name)
}
