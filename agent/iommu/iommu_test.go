package iommu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"syscall"
	"testing"
)

func TestWrapKeepsErrno(t *testing.T) {
	for _, tc := range []struct {
		errno    syscall.Errno
		sentinel error
	}{
		{syscall.ENOENT, ErrNotFound}, {syscall.EEXIST, ErrExists}, {syscall.EINVAL, ErrInvalid},
		{syscall.EBUSY, ErrBusy}, {syscall.ENOTTY, ErrNotSupported}, {syscall.E2BIG, ErrNotSupported},
		{syscall.EOPNOTSUPP, ErrNotSupported}, {syscall.ENOSPC, ErrNoSpace}, {syscall.EPERM, ErrPermission},
	} {
		err := Wrap(fmt.Errorf("IOMMU_IOAS_MAP: %w", tc.errno))
		if !errors.Is(err, tc.sentinel) || !errors.Is(err, tc.errno) {
			t.Errorf("Wrap(%v) = %v: want both %v and the errno", tc.errno, err, tc.sentinel)
		}
		if again := Wrap(err); again != err {
			t.Errorf("Wrap is not idempotent: %v", again)
		}
	}
	plain := errors.New("plain")
	if Wrap(plain) != plain || Wrap(nil) != nil {
		t.Error("Wrap changed an error without errno")
	}
}

func TestUnsupportedError(t *testing.T) {
	err := fmt.Errorf("map file: %w", &UnsupportedError{Feature: "IOMMU_IOAS_MAP_FILE", MinKernel: "6.13", Err: syscall.ENOTTY})
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, syscall.ENOTTY) {
		t.Fatalf("%v does not match ErrNotSupported and ENOTTY", err)
	}
}

func TestRange(t *testing.T) {
	r := Range{Start: 0x1000, Last: 0x1fff}
	if r.Len() != 0x1000 || !r.Contains(0x1000, 0x1000) || r.Contains(0x1000, 0x1001) || r.Contains(0xfff, 2) || r.Contains(0x1000, 0) {
		t.Error("Range arithmetic is wrong")
	}
	all := Range{Start: 0, Last: math.MaxUint64}
	if !all.Contains(math.MaxUint64, 1) || all.Contains(math.MaxUint64, 2) {
		t.Error("Range does not handle the top of the address space")
	}
}

type fakeBackend struct{ Backend }

func (fakeBackend) Flavour() Flavour { return IOMMUFD }

func TestSelect(t *testing.T) {
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	unsupported := func(context.Context) (Backend, error) {
		return nil, &UnsupportedError{Feature: "iommufd", Err: syscall.ENOENT}
	}
	works := func(context.Context) (Backend, error) { return fakeBackend{}, nil }
	broken := func(context.Context) (Backend, error) { return nil, syscall.EIO }

	b, err := Select(context.Background(), logger, Candidate{"cdev", unsupported}, Candidate{"emulated", works})
	if err != nil || b == nil {
		t.Fatalf("Select = %v, %v", b, err)
	}
	if !bytes.Contains(log.Bytes(), []byte("passed over")) {
		t.Errorf("passing over cdev was not logged:\n%s", log.String())
	}
	if _, err := Select(context.Background(), logger, Candidate{"cdev", broken}, Candidate{"emulated", works}); !errors.Is(err, syscall.EIO) {
		t.Errorf("a broken backend fell through: %v", err)
	}
	if _, err := Select(context.Background(), logger, Candidate{"cdev", unsupported}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("no candidate left: %v", err)
	}
}
