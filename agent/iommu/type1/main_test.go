//go:build linux

package type1

import (
	"fmt"
	"os"
	"testing"

	"github.com/iommu-agent/iommu-agent/ioctl/ioctltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := ioctltest.CheckLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		code = 1
	}
	os.Exit(code)
}
