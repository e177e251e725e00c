package iommu

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors. Backends wrap the kernel's errno with one of them, so
// errors.Is matches both the sentinel and the errno.
var (
	ErrNotSupported = errors.New("not supported")
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrInvalid      = errors.New("invalid argument")
	ErrBusy         = errors.New("busy")
	ErrClosed       = errors.New("closed")
	ErrNoSpace      = errors.New("no space left")
	ErrPermission   = errors.New("permission denied")
)

// UnsupportedError is a feature the running kernel or backend lacks.
type UnsupportedError struct {
	Feature   string
	MinKernel string // first Linux release with it; empty if not a kernel matter
	Err       error  // the underlying error, if any
}

func (e *UnsupportedError) Error() string {
	msg := e.Feature + " is not supported"
	if e.MinKernel != "" {
		msg += " (needs Linux " + e.MinKernel + " or later)"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *UnsupportedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrNotSupported }

// sentinels maps errnos to sentinels as iommufd.h defines their meaning.
var sentinels = []struct {
	errno    syscall.Errno
	sentinel error
}{
	{syscall.ENOTTY, ErrNotSupported},
	{syscall.E2BIG, ErrNotSupported},
	{syscall.EOPNOTSUPP, ErrNotSupported},
	{syscall.ENOENT, ErrNotFound},
	{syscall.EEXIST, ErrExists},
	{syscall.EBUSY, ErrBusy},
	{syscall.EINVAL, ErrInvalid},
	// EIO is iommufd's answer to driver data it cannot accept (a bad
	// vSTE, an illegal invalidation command).
	{syscall.EIO, ErrInvalid},
	{syscall.ENOSPC, ErrNoSpace},
	{syscall.EPERM, ErrPermission},
	{syscall.EACCES, ErrPermission},
}

// Wrap returns err with the sentinel its errno stands for in front, keeping
// the errno in the chain: errors.Is(Wrap(err), ErrNotFound) and
// errors.Is(Wrap(err), syscall.ENOENT) both hold. Errors without a known
// errno come back unchanged.
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range sentinels {
		if errors.Is(err, s.errno) {
			if errors.Is(err, s.sentinel) {
				return err
			}
			return fmt.Errorf("%w: %w", s.sentinel, err)
		}
	}
	return err
}
