//go:build hwtests && linux

package hwtests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
)

// TestHWInfo checks IOMMU_GET_HW_INFO per IOMMU. VT-d: against the
// registers the driver shows in sysfs for the same unit, and against what
// QEMU's intel-iommu advertises with intremap=on,caching-mode=on. SMMUv3:
// the ARM_SMMUV3 type arrived in 6.13 and needs ARM_SMMU_V3_IOMMUFD, so a
// 6.12 kernel (the arm64-smmuv3 lane's Debian one) reports type NONE and no
// data; a kernel that reports the IDRs gets them decoded and checked
// against what QEMU's smmuv3 advertises. AMD-Vi: type NONE and no data on
// 6.12 (checkAMDViInfo).
func TestHWInfo(t *testing.T) {
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	s := newCdev(t, dev)
	defer s.teardown(t)

	info, err := s.fd.GetHWInfo(s.devID)
	if err != nil {
		t.Fatal(err)
	}
	switch kind := hwtest.IOMMUKind(t); kind {
	case hwtest.VTD:
		checkVTDInfo(t, dev, info)
	case hwtest.SMMUv3:
		checkSMMUv3Info(t, info)
	case hwtest.AMDVi:
		checkAMDViInfo(t, info)
	default:
		t.Fatalf("no GET_HW_INFO expectation for %s (type %d, %d bytes)", kind, info.Type, len(info.Data))
	}
}

// checkAMDViInfo: the amd_iommu driver of 6.12 has no hw_info op (AMD's
// type came with its nesting support, after 6.12), so iommufd answers
// type NONE with no data; the unit's capability and EFR are only in sysfs
// (/sys/class/iommu/ivhdN/amd-iommu/{cap,features}), logged here. A kernel
// that reports an AMD type fails until it has a decoder and expectation.
func checkAMDViInfo(t *testing.T, info *iommufd.HWInfo) {
	t.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	for _, f := range []string{"cap", "features"} {
		if b, err := os.ReadFile(filepath.Join("/sys/class/iommu/ivhd0/amd-iommu", f)); err == nil {
			t.Logf("ivhd0 amd-iommu/%s: %s", f, strings.TrimSpace(string(b)))
		}
	}
	if info.Type != iommufd.HWInfoTypeNone || len(info.Data) != 0 {
		t.Fatalf("kernel %s: AMD-Vi GET_HW_INFO type %d with %d bytes, want NONE and no data (no AMD decoder or expectation yet)", release, info.Type, len(info.Data))
	}
	t.Logf("kernel %s: AMD-Vi reports GET_HW_INFO type NONE, no data", release)
}

func checkSMMUv3Info(t *testing.T, info *iommufd.HWInfo) {
	t.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	if strings.HasPrefix(release, "6.12.") {
		if info.Type != iommufd.HWInfoTypeNone || len(info.Data) != 0 {
			t.Fatalf("kernel %s: GET_HW_INFO type %d with %d bytes, want NONE and no data (ARM_SMMUV3 hw_info is 6.13's)", release, info.Type, len(info.Data))
		}
		t.Logf("kernel %s: SMMUv3 reports GET_HW_INFO type NONE, no data", release)
		return
	}
	if info.Type != iommufd.HWInfoTypeARMSMMUv3 {
		t.Fatalf("kernel %s: GET_HW_INFO type %d, want ARM SMMUv3", release, info.Type)
	}
	got, err := hwinfo.DecodeSMMUv3(info.Data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", got)
	t.Logf("IDR0-5 %#x, IIDR %#x, AIDR %#x", got.IDR, got.IIDR, got.AIDR)
	// What QEMU 10's smmuv3 advertises (hw/arm/smmuv3.c,
	// smmuv3_init_regs): both stages, AArch64 tables only, little-endian,
	// coherent, 16-bit ASIDs and VMIDs, 2-level stream tables, no stall
	// (faults terminate), no ATS, PRI, BTM or hardware dirty/access
	// flags; 16-bit StreamIDs and no substreams (no PASID); range
	// invalidation, HAD and BBML2; 44-bit output addresses and all three
	// granules. No FWB: why the nesting lane's IORT declares CANWBS.
	i0, i1, i3, i5 := got.IDR0(), got.IDR1(), got.IDR3(), got.IDR5()
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"IDR0.S1P", i0.S1P(), true}, {"IDR0.S2P", i0.S2P(), true},
		{"IDR0.TTF", i0.TTF(), hwinfo.TTFAArch64}, {"IDR0.TTENDIAN", i0.TTEndian(), hwinfo.TTEndianLE},
		{"IDR0.COHACC", i0.COHACC(), true}, {"IDR0.ASID16", i0.ASID16(), true}, {"IDR0.VMID16", i0.VMID16(), true},
		{"IDR0.ST_LEVEL", i0.STLevel(), 1}, {"IDR0.STALL_MODEL", i0.StallModel(), hwinfo.StallNone},
		{"IDR0.ATS", i0.ATS(), false}, {"IDR0.PRI", i0.PRI(), false}, {"IDR0.BTM", i0.BTM(), false},
		{"IDR0.HTTU", i0.HTTU(), hwinfo.HTTU(0)},
		{"IDR1.SIDSIZE", i1.SIDSIZE(), 16}, {"IDR1.SSIDSIZE", i1.SSIDSIZE(), 0},
		{"IDR3.RIL", i3.RIL(), true}, {"IDR3.HAD", i3.HAD(), true}, {"IDR3.BBML", i3.BBML(), 2},
		{"IDR3.FWB", i3.FWB(), false},
		{"IDR5.OAS", i5.OAS(), 44}, {"IDR5.GRAN4K", i5.GRAN4K(), true},
		{"IDR5.GRAN16K", i5.GRAN16K(), true}, {"IDR5.GRAN64K", i5.GRAN64K(), true},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v (QEMU's smmuv3)", c.what, c.got, c.want)
		}
	}
}

func checkVTDInfo(t *testing.T, dev iommu.Device, info *iommufd.HWInfo) {
	t.Helper()
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
