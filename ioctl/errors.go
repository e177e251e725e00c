package ioctl

import (
	"errors"
	"fmt"
)

// ErrNotSupported is matched (errors.Is) by every UnsupportedError.
var ErrNotSupported = errors.New("not supported")

// UnsupportedError reports an ioctl that the running kernel rejected with
// ENOTTY because it predates it. The errno stays in the chain.
type UnsupportedError struct {
	Op        string // the ioctl, by its kernel name
	MinKernel string // first mainline release that has it, e.g. "6.13"
	Err       error  // the errno as returned
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s: not supported by this kernel (needs Linux %s or later): %v", e.Op, e.MinKernel, e.Err)
}

func (e *UnsupportedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrNotSupported }
