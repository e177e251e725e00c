package hostcheck

import (
	"strings"
	"testing"
)

func TestParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		host    func(t *testing.T) *fakeHost
		cmdline string
		want    want
		not     []string // substrings the detail must not have
	}{
		{name: "VT-d, sm_on, iommu=pt", host: intelHost, cmdline: "intel_iommu=on,sm_on iommu=pt",
			want: want{status: Pass, detail: []string{"intel_iommu=on: VT-d on", "intel_iommu=sm_on: scalable mode",
				"default domain: identity (no translation for host drivers, from iommu=pt)", "VFIO and iommufd give assigned devices"}},
			not: []string{"scalable mode on by default"}},
		{name: "VT-d defaults from the config", host: func(t *testing.T) *fakeHost {
			return intelHost(t).configGz("CONFIG_MODULES=y", "CONFIG_IOMMU_DEFAULT_DMA_LAZY=y", "# CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON is not set")
		}, cmdline: "root=/dev/sda1",
			want: want{status: Pass, detail: []string{"translated (from CONFIG_IOMMU_DEFAULT_DMA_LAZY=y), lazy invalidation",
				"legacy (not scalable) mode by default", "intel_iommu=sm_on"}}},
		{name: "iommu.strict beats the config, sm_off", host: func(t *testing.T) *fakeHost {
			return intelHost(t).configGz("CONFIG_MODULES=y", "CONFIG_IOMMU_DEFAULT_DMA_LAZY=y", "CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON=y")
		}, cmdline: "iommu.strict=1 intel_iommu=sm_off,bogus",
			want: want{status: Pass, detail: []string{"strict invalidation (from iommu.strict=1)", "intel_iommu=sm_off: scalable mode disallowed",
				"intel_iommu=bogus: not an option"}}, not: []string{"by default"}},
		{name: "iommu.passthrough=1", host: intelHost, cmdline: "iommu.passthrough=1 iommu.strict=0",
			want: want{status: Pass, detail: []string{"identity (no translation for host drivers, from iommu.passthrough=1)"}},
			not:  []string{"lazy"}},
		{name: "AMD options", host: func(t *testing.T) *fakeHost {
			return newFakeHost(t).cpu("AuthenticAMD").acpiTable("IVRS").amdUnit("ivhd0")
		}, cmdline: "amd_iommu=pgtbl_v2,fullflush amd_iommu_intr=vapic ivrs_ioapic[32]=00:14.0 intel_iommu=on",
			want: want{status: Pass, detail: []string{"amd_iommu=pgtbl_v2: host DMA domains use v2", "amd_iommu=fullflush: deprecated alias of iommu.strict=1",
				"amd_iommu_intr=vapic: guest virtual APIC", "ivrs_ioapic[32]=00:14.0: overrides the firmware's IVRS", "strict invalidation (from amd_iommu=fullflush)"}},
			not: []string{"intel_iommu=on:"}},
		{name: "SMMUv3 parameters this kernel has or lacks", host: func(t *testing.T) *fakeHost {
			return newFakeHost(t).cpu("arm64").acpiTable("IORT").smmuUnit("smmu3.0x0000000009050000").
				file("sys/module/arm_smmu_v3/parameters/disable_msipolling", "N\n")
		}, cmdline: "arm-smmu-v3.disable_bypass=0 arm-smmu-v3.disable_msipolling=1 iommu.passthrough=0",
			want: want{status: Pass, detail: []string{"arm-smmu-v3.disable_bypass=0: this kernel's arm_smmu_v3 has no such parameter",
				"arm-smmu-v3.disable_msipolling=1: CMD_SYNC completion by polling", "translated (from iommu.passthrough=0)"}}},
		{name: "unsafe interrupts and ACS override warn", host: intelHost,
			cmdline: "vfio_iommu_type1.allow_unsafe_interrupts=1 iommufd.allow_unsafe_interrupts=0 pcie_acs_override=downstream,multifunction vfio-pci.ids=1234:11e8",
			want: want{status: Warn, detail: []string{"vfio_iommu_type1.allow_unsafe_interrupts=1: type1 accepts", "pcie_acs_override=downstream,multifunction: not a mainline parameter",
				"vfio-pci.ids=1234:11e8: vfio-pci claims"}, fix: []string{"remove vfio_iommu_type1.allow_unsafe_interrupts, pcie_acs_override"}},
			not: []string{"iommufd.allow_unsafe_interrupts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.host(t).file("proc/cmdline", tc.cmdline+"\n")
			got := h.findings()
			checkFindings(t, got, map[string]want{"IOMMU parameters": tc.want})
			for _, s := range tc.not {
				if d := got["IOMMU parameters"].Detail; strings.Contains(d, s) {
					t.Errorf("detail %q has %q", d, s)
				}
			}
		})
	}
}
