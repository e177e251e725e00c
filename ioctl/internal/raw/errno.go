//go:build linux

package raw

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Errno is the error of a failed ioctl. It unwraps to the unix.Errno, so
// errors.Is(err, unix.ENOENT) matches while err == unix.ENOENT never does:
// callers must use errors.Is, as the typed layers do.
type Errno struct {
	Request uintptr
	Errno   unix.Errno
}

func (e *Errno) Error() string {
	if name := unix.ErrnoName(e.Errno); name != "" {
		return fmt.Sprintf("%s (%v)", name, e.Errno)
	}
	return e.Errno.Error()
}

func (e *Errno) Unwrap() error { return e.Errno }
