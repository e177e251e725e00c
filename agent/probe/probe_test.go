//go:build linux

package probe

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
)

// tree is a fake sysfs under t.TempDir().
type tree struct {
	t    *testing.T
	root string
}

func newTree(t *testing.T) *tree { return &tree{t: t, root: t.TempDir()} }

func (tr *tree) file(rel, body string) *tree {
	tr.t.Helper()
	p := filepath.Join(tr.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		tr.t.Fatal(err)
	}
	return tr
}

func (tr *tree) dir(rel string) *tree {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Join(tr.root, rel), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	return tr
}

func (tr *tree) link(rel, target string) *tree {
	tr.t.Helper()
	p := filepath.Join(tr.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		tr.t.Fatal(err)
	}
	return tr
}

// device puts bdf behind unit, bound to driver ("" for none), with a VFIO
// cdev vfioN when cdev is not "".
func (tr *tree) device(unit, bdf, driver, cdev string) *tree {
	tr.dir("class/iommu/" + unit + "/devices/" + bdf)
	dev := "bus/pci/devices/" + bdf
	tr.dir(dev)
	if driver != "" {
		tr.dir("bus/pci/drivers/" + driver)
		tr.link(dev+"/driver", "../../../../bus/pci/drivers/"+driver)
	}
	if cdev != "" {
		tr.dir(dev + "/vfio-dev/" + cdev)
	}
	return tr
}

type call struct{ iommu, cdev string }

// fakeKernel answers IOMMU_GET_HW_INFO with info, or err, and records
// each call.
func fakeKernel(info *iommufd.HWInfo, err error, calls *[]call) func(string, string) (*iommufd.HWInfo, error) {
	return func(iommu, cdev string) (*iommufd.HWInfo, error) {
		*calls = append(*calls, call{iommu, cdev})
		return info, err
	}
}

func units(t *testing.T, tr *tree, hw bool, read func(string, string) (*iommufd.HWInfo, error)) ([]Unit, string) {
	t.Helper()
	return unitsNesting(t, tr, hw, read, Nesting{Parent: syscall.EOPNOTSUPP, VIOMMU: ErrNotTried, VEventQ: ErrNotTried})
}

// unitsNesting is units with the kernel answering n to the nesting probe.
func unitsNesting(t *testing.T, tr *tree, hw bool, read func(string, string) (*iommufd.HWInfo, error), n Nesting) ([]Unit, string) {
	t.Helper()
	nesting := func(string, string, *iommufd.HWInfo) Nesting { return n }
	us, err := Units(Options{SysRoot: tr.root, DevRoot: "/fakedev", HWInfo: hw, ReadHWInfo: read, ReadNesting: nesting})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Write(&b, us)
	return us, b.String()
}

func contains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// QEMU's SMMUv3 ID registers (ExampleSMMUv3).
var qemuSMMU = hwinfo.SMMUv3{IDR: [6]uint32{0x0d44101b, 0x02730010, 0, 0x1414, 0, 0x74}, AIDR: 1}

func TestSMMUv3(t *testing.T) {
	t.Parallel()
	const unit = "smmu3.0x0000000009050000"
	tr := newTree(t).device(unit, "0000:00:01.0", "e1000e", "").device(unit, "0000:00:02.0", "vfio-pci", "vfio3")

	// Without -hwinfo: no ioctl, and where the facts are.
	var calls []call
	_, out := units(t, tr, false, fakeKernel(nil, nil, &calls))
	if len(calls) != 0 {
		t.Errorf("ioctls without HWInfo: %v", calls)
	}
	contains(t, out, unit+": Arm SMMUv3", "sysfs has no SMMUv3 registers", "probe -hwinfo")

	// A kernel with the SMMUv3 type: the IDRs by name, through the one
	// vfio-pci device's cdev.
	data, _ := qemuSMMU.MarshalBinary()
	us, out := units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeARMSMMUv3, Data: data}, nil, &calls))
	if len(calls) != 1 || calls[0] != (call{"/fakedev/iommu", "/fakedev/vfio/devices/vfio3"}) {
		t.Fatalf("calls %v", calls)
	}
	if hw := us[0].HW; hw == nil || hw.SMMUv3 == nil || *hw.SMMUv3 != qemuSMMU || hw.Device != "0000:00:02.0" {
		t.Fatalf("HW %+v", us[0].HW)
	}
	contains(t, out, "IOMMU_GET_HW_INFO through 0000:00:02.0, /fakedev/vfio/devices/vfio3): type 2, 40 bytes",
		"SMMUv3.1", "stages S1+S2", "TTF AArch64", "ATS no", "PRI no", "BTM no", "HTTU none", "COHACC yes",
		"stall terminate", "ASID 16-bit", "VMID 16-bit", "SID 16-bit", "SSID 0-bit", "OAS 44-bit", "granules 4K,16K,64K")

	// Debian's 6.12: type NONE, said and explained.
	us, out = units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeNone}, nil, &calls))
	if hw := us[0].HW; hw.SMMUv3 != nil || hw.Err != nil {
		t.Errorf("type NONE: %+v", hw)
	}
	contains(t, out, "type 0, 0 bytes", "the kernel reports no hardware info (type NONE)", "6.13", "CONFIG_ARM_SMMU_V3_IOMMUFD")

	// The ioctl fails: the errno is kept.
	us, out = units(t, tr, true, fakeKernel(nil, syscall.EBUSY, &calls))
	if !errors.Is(us[0].HW.Err, syscall.EBUSY) {
		t.Errorf("error %v", us[0].HW.Err)
	}
	contains(t, out, "IOMMU_GET_HW_INFO through 0000:00:02.0")

	// A short payload is an error, not a decode of garbage.
	us, _ = units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeARMSMMUv3, Data: data[:12]}, nil, &calls))
	if us[0].HW.Err == nil || us[0].HW.SMMUv3 != nil {
		t.Errorf("short payload: %+v", us[0].HW)
	}
}

// TestNesting shows what the kernel answered for each nesting object: all
// three on an SMMUv3 that nests, the vIOMMU's errno where the SMMU cannot
// (no CANWBS or S2FWB), and no vIOMMU type at all on VT-d.
func TestNesting(t *testing.T) {
	t.Parallel()
	const unit = "smmu3.0x0000000009050000"
	tr := newTree(t).device(unit, "0000:00:02.0", "vfio-pci", "vfio3")
	data, _ := qemuSMMU.MarshalBinary()
	smmu := &iommufd.HWInfo{Type: iommufd.HWInfoTypeARMSMMUv3, Data: data}
	var calls []call
	us, out := unitsNesting(t, tr, true, fakeKernel(smmu, nil, &calls), Nesting{VIOMMUType: "ARM_SMMUV3"})
	if n := us[0].HW.Nesting; n == nil || n.Parent != nil || n.VIOMMU != nil || n.VEventQ != nil {
		t.Errorf("nesting %+v", us[0].HW.Nesting)
	}
	contains(t, out, "nesting (built and destroyed on a private iommufd): nesting parent yes; vIOMMU ARM_SMMUV3 yes; vEVENTQ yes")
	_, out = unitsNesting(t, tr, true, fakeKernel(smmu, nil, &calls), Nesting{VIOMMUType: "ARM_SMMUV3", VIOMMU: syscall.EOPNOTSUPP, VEventQ: ErrNotTried})
	contains(t, out, "nesting parent yes; vIOMMU ARM_SMMUV3 no (operation not supported); vEVENTQ not tried")

	tr = newTree(t).file("class/iommu/dmar0/intel-iommu/cap", "d2008c222f0686\n").
		file("class/iommu/dmar0/intel-iommu/ecap", "f00f4a\n").device("dmar0", "0000:00:02.0", "vfio-pci", "vfio0")
	vtd, _ := hwinfo.VTD{Cap: 0x00d2008c222f0686, ECap: 0xf00f4a}.MarshalBinary()
	_, out = unitsNesting(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeIntelVTD, Data: vtd}, nil, &calls), Nesting{VIOMMU: ErrNotTried, VEventQ: ErrNotTried})
	contains(t, out, "nesting parent yes; no vIOMMU type for hw info type 1")
	_, out = units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeIntelVTD, Data: vtd}, nil, &calls))
	contains(t, out, "nesting parent no (operation not supported); vIOMMU not tried; vEVENTQ not tried")
}

func TestNoVFIODevice(t *testing.T) {
	t.Parallel()
	var calls []call
	tr := newTree(t).device("smmu3.0x0000000009050000", "0000:00:01.0", "e1000e", "")
	_, out := units(t, tr, true, fakeKernel(nil, nil, &calls))
	contains(t, out, "no device behind smmu3.0x0000000009050000 is bound to vfio-pci", "iommu-agent bind BDF")
	// Bound, but a kernel without VFIO cdevs.
	tr = newTree(t).device("smmu3.0x0000000009050000", "0000:00:01.0", "vfio-pci", "")
	_, out = units(t, tr, true, fakeKernel(nil, nil, &calls))
	contains(t, out, "none with a VFIO cdev", "CONFIG_VFIO_DEVICE_CDEV")
	if len(calls) != 0 {
		t.Errorf("ioctls without a cdev: %v", calls)
	}
}

func TestVTD(t *testing.T) {
	t.Parallel()
	tr := newTree(t).file("class/iommu/dmar0/intel-iommu/cap", "d2008c222f0686\n").
		file("class/iommu/dmar0/intel-iommu/ecap", "f00f4a\n").device("dmar0", "0000:00:02.0", "vfio-pci", "vfio0")
	var calls []call
	_, out := units(t, tr, false, fakeKernel(nil, nil, &calls))
	contains(t, out, "dmar0: VT-d cap=0x00d2008c222f0686", "facts (sysfs intel-iommu/cap,ecap): address width 48-bit",
		"interrupt remapping yes", "caching mode yes")
	data, _ := hwinfo.VTD{Cap: 0x00d2008c222f0686, ECap: 0xf00f4a}.MarshalBinary()
	_, out = units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeIntelVTD, Data: data}, nil, &calls))
	contains(t, out, "type 1, 24 bytes", "(same as sysfs)")
	data, _ = hwinfo.VTD{Cap: 0x00d2008c222f0686, ECap: 0xf00f4b}.MarshalBinary()
	_, out = units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeIntelVTD, Data: data}, nil, &calls))
	contains(t, out, "sysfs differs")
}

func TestAMD(t *testing.T) {
	t.Parallel()
	tr := newTree(t).file("class/iommu/ivhd0/amd-iommu/cap", "1f03000f\n").
		file("class/iommu/ivhd0/amd-iommu/features", "29d3:0\n").device("ivhd0", "0000:00:02.0", "vfio-pci", "vfio0")
	var calls []call
	_, out := units(t, tr, false, fakeKernel(nil, nil, &calls))
	contains(t, out, "ivhd0: AMD-Vi cap=0x1f03000f EFR=0x00000000000029d3", "facts (sysfs amd-iommu/cap,features): host page tables 6-level",
		"PRI yes", "ATS yes")
	_, out = units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeNone}, nil, &calls))
	contains(t, out, "type NONE", "after 6.12")
	data, _ := hwinfo.AMDVi{EFR: 0x29d3}.MarshalBinary()
	_, out = units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: iommufd.HWInfoTypeAMD, Data: data}, nil, &calls))
	contains(t, out, "type 4, 16 bytes", "AMD-Vi cap=0x0 EFR=0x00000000000029d3", "ATS unknown")
	_, out = units(t, tr, true, fakeKernel(&iommufd.HWInfo{Type: 99, Data: []byte{1}}, nil, &calls))
	contains(t, out, "type 99, 1 bytes: a type this agent has no decoder for")
}
