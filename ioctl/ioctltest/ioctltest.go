//go:build linux

// Package ioctltest holds test helpers for code built on the ioctl layer.
package ioctltest

import (
	"errors"
	"strings"

	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
)

// CheckLeaks returns an error naming every device fd opened through the
// ioctl layer in this test binary and not closed. Call it from TestMain
// after m.Run.
func CheckLeaks() error {
	leaks := raw.Leaks()
	if len(leaks) == 0 {
		return nil
	}
	return errors.New("leaked file descriptors:\n" + strings.Join(leaks, "\n"))
}
