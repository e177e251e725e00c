package hwinfo_test

import (
	"fmt"
	"log"

	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
)

// The cap and ecap files of /sys/class/iommu/dmar0/intel-iommu in a QEMU
// guest with -device intel-iommu,intremap=on,caching-mode=on.
func ExampleParseVTDRegs() {
	v, err := hwinfo.ParseVTDRegs("d2008c222f0686\n", "f00f4a\n")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
	fmt.Println("emulated (caching mode):", v.Cap.CM())
	fmt.Println("snoop control:", v.ECap.SC())
	fmt.Println("interrupt remapping:", v.ECap.IR())
	// Output:
	// VT-d cap=0x00d2008c222f0686 ecap=0x0000000000f00f4a: 48-bit (SAGAW 39,48), 65536 domains, superpages 2M,1G; CM PSI DWD DRD QI IR PT
	// emulated (caching mode): true
	// snoop control: false
	// interrupt remapping: true
}

// IOMMU_GET_HW_INFO's data for QEMU's SMMUv3 (-machine virt,iommu=smmuv3).
func ExampleSMMUv3() {
	s := hwinfo.SMMUv3{IDR: [6]uint32{0x0d44101b, 0x02730010, 0, 0x1414, 0, 0x74}, AIDR: 1}
	fmt.Println(s.AIDR, "OAS", s.IDR5().OAS(), "SIDSIZE", s.IDR1().SIDSIZE(), "nesting:", s.IDR0().S1P() && s.IDR0().S2P())
	fmt.Println(s.IDR0())
	// Output:
	// SMMUv3.1 OAS 44 SIDSIZE 16 nesting: true
	// 0x0d44101b (TTF AArch64, HTTU none, TTENDIAN LE, STALL_MODEL terminate, ST_LEVEL 2-level): S2P S1P COHACC ASID16 VMID16 TERM_MODEL
}

// The cap and features files of /sys/class/iommu/ivhd0/amd-iommu in a
// QEMU guest with -device amd-iommu.
func ExampleParseAMDViRegs() {
	a, err := hwinfo.ParseAMDViRegs("1f03000f\n", "29d3:0\n")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a)
	fmt.Println(hwinfo.FactsText(a.Facts()[:6]))
	// Output:
	// AMD-Vi cap=0x1f03000f EFR=0x00000000000029d3 EFR2=0x0000000000000000: host 6-level, guest 6-level, GLX 1-level, PASID 1-bit; PREFETCH PPR GT IA GA HE
	// host page tables 6-level, guest translation 6-level, PASID 1-bit, nesting no, dirty tracking no, ATS yes
}
