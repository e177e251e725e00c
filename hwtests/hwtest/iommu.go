//go:build hwtests && linux

package hwtest

// What differs between the IOMMUs the tests meet, read from the kernel
// rather than assumed: which IOMMU drives the machine, and the interrupt
// window it reserves in every domain.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// Kind is an IOMMU architecture, as /sys/class/iommu names its units.
type Kind string

const (
	VTD    Kind = "vt-d"   // dmarN
	AMDVi  Kind = "amd-vi" // ivhdN
	SMMUv3 Kind = "smmuv3" // smmu3.0x<base>
)

// IOMMUKind names the IOMMU of the machine from its first unit under
// /sys/class/iommu. It fails the test when there is none or it is of a kind
// the tests do not know: a per-IOMMU expectation must not fall back to
// another IOMMU's.
func IOMMUKind(t *testing.T) Kind {
	t.Helper()
	entries, err := os.ReadDir("/sys/class/iommu")
	Need(t, "list /sys/class/iommu", err)
	for _, e := range entries {
		switch n := e.Name(); {
		case strings.HasPrefix(n, "dmar"):
			return VTD
		case strings.HasPrefix(n, "ivhd"):
			return AMDVi
		case strings.HasPrefix(n, "smmu3."):
			return SMMUv3
		}
	}
	t.Fatalf("no IOMMU unit the tests know under /sys/class/iommu (%d entries)", len(entries))
	return ""
}

// Lane is the harness lane the test runs in (HWTESTS_LANE), "" outside the
// harness: a lane fixes the kernel and firmware besides the IOMMU, so
// behaviour that depends on all three is expected per lane.
func Lane() string { return os.Getenv("HWTESTS_LANE") }

// BuiltIn reports that the guest's kernel has iommufd and VFIO built in
// and no modules at all (HWTESTS_BUILTIN=1: the lanes whose kernel the
// harness builds), where the others load them from the initramfs.
func BuiltIn() bool { return os.Getenv("HWTESTS_BUILTIN") == "1" }

// GroupsAtProbe reports whether this lane's kernel gives a PCI device its
// iommu_group only when a driver first probes it. Debian's 6.12 with an
// SMMUv3 described by a device tree does (really_probe → of_dma_configure
// → iommu_probe_device); VT-d and AMD-Vi group every device when the
// IOMMU initialises, and so does the own 7.3 kernel on the SMMUv3: there
// the IOMMU's registration runs each device's bus dma_configure itself
// (__iommu_probe_device, which says so for device trees and ACPI alike;
// only the ACPI boot runs here). In strict mode an
// unknown lane fails; elsewhere it is guessed from the IOMMU and logged.
func GroupsAtProbe(t *testing.T) bool {
	t.Helper()
	switch lane := Lane(); lane {
	case "x86_64-vtd", "x86_64-amdvi", "arm64-smmuv3-7.3":
		return false
	case "arm64-smmuv3":
		return true
	default:
		if Strict() {
			t.Fatalf("lane %q: no expectation of when iommu_groups appear", lane)
		}
		guess := IOMMUKind(t) == SMMUv3
		t.Logf("not a harness lane (%q): assuming groups appear at driver probe: %v (the IOMMU is %s)", lane, guess, IOMMUKind(t))
		return guess
	}
}

// ReservedRegion is one line of an iommu_group's reserved_regions.
type ReservedRegion struct {
	iommu.Range
	Type string // direct, direct-relaxable, reserved, msi
}

// ReservedRegions reads /sys/kernel/iommu_groups/<group>/reserved_regions.
func ReservedRegions(t *testing.T, group int) []ReservedRegion {
	t.Helper()
	p := filepath.Join("/sys/kernel/iommu_groups", strconv.Itoa(group), "reserved_regions")
	b, err := os.ReadFile(p)
	Need(t, "read "+p, err)
	rs, err := parseReservedRegions(b)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return rs
}

func parseReservedRegions(b []byte) ([]ReservedRegion, error) {
	var rs []ReservedRegion
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			return nil, fmt.Errorf("line %q: want start last type", sc.Text())
		}
		start, err1 := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 64)
		last, err2 := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
		if err1 != nil || err2 != nil || last < start {
			return nil, fmt.Errorf("line %q: bad range", sc.Text())
		}
		rs = append(rs, ReservedRegion{Range: iommu.Range{Start: iommu.IOVA(start), Last: iommu.IOVA(last)}, Type: f[2]})
	}
	return rs, sc.Err()
}

// MSIWindow is the interrupt window the kernel reserves in every domain
// dev's group joins: x86's 0xfee00000-0xfeefffff on VT-d and AMD-Vi, the
// software MSI window 0x8000000-0x80fffff on an SMMUv3. TestReservedRegions
// pins both per IOMMU; the other tests take it from here.
func MSIWindow(t *testing.T, dev iommu.Device) iommu.Range {
	t.Helper()
	for _, r := range ReservedRegions(t, dev.Group) {
		if r.Type == "msi" {
			return r.Range
		}
	}
	t.Fatalf("group %d of %s reserves no msi region", dev.Group, dev.BDF)
	return iommu.Range{}
}
