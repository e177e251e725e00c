//go:build linux

package vfio

import (
	"fmt"
	"os"
	"testing"

	"github.com/iommu-agent/iommu-agent/ioctl/ioctltest"
)

// TestMain fails the binary on a leaked fd: a leaked group fd is EBUSY for
// the next test that opens the group.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := ioctltest.CheckLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
