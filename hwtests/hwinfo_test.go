//go:build hwtests && linux

package hwtests

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
)

// TestHWInfo checks IOMMU_GET_HW_INFO against the registers the VT-d
// driver shows in sysfs for the same unit, and against what QEMU's
// intel-iommu advertises with intremap=on,caching-mode=on.
func TestHWInfo(t *testing.T) {
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	s := newCdev(t, dev)
	defer s.teardown(t)

	info, err := s.fd.GetHWInfo(s.devID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != iommufd.HWInfoTypeIntelVTD {
		t.Fatalf("GET_HW_INFO type %d, want Intel VT-d", info.Type)
	}
	payload, ok := info.VTD()
	if !ok {
		t.Fatal("VT-d type without a VT-d payload")
	}
	got, err := hwinfo.DecodeVTD(info.Data)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(got.Cap) != payload.CapReg || uint64(got.ECap) != payload.EcapReg {
		t.Fatalf("decoder read cap %#x ecap %#x, payload has %#x %#x", got.Cap, got.ECap, payload.CapReg, payload.EcapReg)
	}
	t.Logf("%v", got)

	// The unit the device sits behind, as sysfs shows it.
	unit, err := filepath.EvalSymlinks(filepath.Join(sysPCI, "devices", dev.BDF, "iommu"))
	if err != nil {
		t.Fatal(err)
	}
	capText, err := os.ReadFile(filepath.Join(unit, "intel-iommu", "cap"))
	if err != nil {
		t.Fatal(err)
	}
	ecapText, err := os.ReadFile(filepath.Join(unit, "intel-iommu", "ecap"))
	if err != nil {
		t.Fatal(err)
	}
	sys, err := hwinfo.ParseVTDRegs(string(capText), string(ecapText))
	if err != nil {
		t.Fatal(err)
	}
	if sys.Cap != got.Cap || sys.ECap != got.ECap {
		t.Errorf("GET_HW_INFO says %v, sysfs %s says %v", got, filepath.Base(unit), sys)
	}

	// What QEMU's intel-iommu,intremap=on,caching-mode=on advertises.
	if !got.Cap.CM() {
		t.Error("caching mode not reported: QEMU runs with caching-mode=on")
	}
	if !got.ECap.IR() || !got.ECap.QI() {
		t.Error("interrupt remapping or queued invalidation not reported: QEMU runs with intremap=on")
	}
	if !slices.Contains(got.Cap.SAGAW(), 48) || got.Cap.MGAW() != 48 {
		t.Errorf("address widths SAGAW %v MGAW %d: QEMU's default is 48-bit", got.Cap.SAGAW(), got.Cap.MGAW())
	}
	if names := got.ECap.Names(); !slices.Contains(names, "PT") {
		t.Errorf("ecap names %q lack pass-through", names)
	}
}
