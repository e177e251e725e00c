package hostcheck

import (
	"strings"
	"testing"
)

// want is what one finding must say: its status, and substrings its
// detail and fix must (and must not) contain.
type want struct {
	status      Status
	state       State
	detail, fix []string
	notFix      []string
}

func checkFindings(t *testing.T, got map[string]Finding, wants map[string]want) {
	t.Helper()
	for name, w := range wants {
		f, ok := got[name]
		if !ok {
			t.Errorf("no %q finding", name)
			continue
		}
		if f.Status != w.status || w.state != "" && f.State != w.state {
			t.Errorf("%s: %s/%s %q (fix %q), want %s/%s", name, f.Status, f.State, f.Detail, f.Fix, w.status, w.state)
		}
		for _, s := range w.detail {
			if !strings.Contains(f.Detail, s) {
				t.Errorf("%s: detail %q lacks %q", name, f.Detail, s)
			}
		}
		for _, s := range w.fix {
			if !strings.Contains(f.Fix, s) {
				t.Errorf("%s: fix %q lacks %q", name, f.Fix, s)
			}
		}
		for _, s := range w.notFix {
			if strings.Contains(f.Fix, s) {
				t.Errorf("%s: fix %q says %q", name, f.Fix, s)
			}
		}
	}
}

// noAdvice fails if any finding's detail or fix says s.
func noAdvice(t *testing.T, got map[string]Finding, s string) {
	t.Helper()
	for _, f := range got {
		if strings.Contains(f.Fix, s) || strings.Contains(f.Detail, s) {
			t.Errorf("%s says %q: %q (fix %q)", f.Check, s, f.Detail, f.Fix)
		}
	}
}

// intelHost is a VT-d machine with interrupt remapping, running.
func intelHost(t *testing.T) *fakeHost {
	return newFakeHost(t).cpu("GenuineIntel").acpiTable("DMAR").vtdUnit("dmar0", "f00f4a").
		interrupts("IR-IO-APIC", "IR-PCI-MSIX-0000:00:03.0")
}

func TestIntelModulesLoadable(t *testing.T) {
	t.Parallel()
	h := intelHost(t).installed(vfioMods...).builtinList("kernel/drivers/iommu/intel/iommu.ko").configGz(configModular...)
	got := h.findings()
	checkFindings(t, got, map[string]want{
		"platform":                {status: Pass, detail: []string{"CPU GenuineIntel", "IOMMU Intel VT-d (dmar0)", "config from", "modules.dep"}},
		"firmware":                {status: Pass, detail: []string{"DMAR"}},
		"IOMMU driver":            {status: Pass, state: BuiltIn},
		"IOMMU":                   {status: Pass},
		"kernel command line":     {status: Pass},
		"interrupt remapping":     {status: Pass, detail: []string{"ecap IR set", "IR-IO-APIC"}},
		"module vfio":             {status: Fail, state: Available, fix: []string{"modprobe vfio"}, notFix: []string{"CONFIG_"}},
		"module vfio_pci":         {status: Fail, state: Available, detail: []string{"vfio-pci.ko.xz"}, fix: []string{"modprobe vfio_pci"}},
		"module iommufd":          {status: Fail, state: Available, fix: []string{"modprobe iommufd"}},
		"module vfio_iommu_type1": {status: Fail, state: Available, fix: []string{"modprobe vfio_iommu_type1"}},
		"VFIO device cdev":        {status: Pass, state: BuiltIn},
		"/dev/iommu":              {status: Fail, fix: []string{"modprobe iommufd"}},
		"/dev/vfio/vfio":          {status: Fail, fix: []string{"modprobe vfio"}},
		"RLIMIT_MEMLOCK":          {status: Pass},
	})
}

func TestIntelBuiltIn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		build func(h *fakeHost)
	}{
		// Parameters put built-in modules in /sys/module without initstate;
		// a /boot config is the only other witness.
		{name: "sysfs and /boot/config", build: func(h *fakeHost) {
			h.builtinParams("vfio", "vfio_pci", "vfio_iommu_type1").bootConfig(configBuiltin...)
		}},
		// A kernel whose modules.builtin is all there is: no config at all.
		{name: "modules.builtin only", build: func(h *fakeHost) {
			h.builtinList("kernel/drivers/vfio/vfio.ko", "kernel/drivers/vfio/pci/vfio-pci.ko", "kernel/drivers/vfio/pci/vfio-pci-core.ko",
				"kernel/drivers/vfio/vfio_iommu_type1.ko", "kernel/drivers/iommu/iommufd/iommufd.ko")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := intelHost(t)
			tc.build(h)
			h.file("dev/vfio/vfio", "")
			got := h.findings()
			noAdvice(t, got, "modprobe")
			for _, m := range []string{"vfio", "vfio_pci", "iommufd", "vfio_iommu_type1"} {
				checkFindings(t, got, map[string]want{"module " + m: {status: Pass, state: BuiltIn, detail: []string{"built-in"}}})
			}
			checkFindings(t, got, map[string]want{
				"/dev/iommu":     {status: Warn, fix: []string{"iommufd is built-in", "--device /dev/iommu", "devtmpfs"}},
				"/dev/vfio/vfio": {status: Pass},
			})
		})
	}
}

func TestKernelWithout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		build func(h *fakeHost)
	}{
		{name: "config.gz", build: func(h *fakeHost) { h.configGz(configNone...) }},
		{name: "/boot/config", build: func(h *fakeHost) { h.bootConfig(configNone...) }},
		// Modules, but none of these: both lists read and neither names them.
		{name: "lists", build: func(h *fakeHost) {
			h.installed("kernel/virt/lib/irqbypass.ko.xz").builtinList("kernel/drivers/tty/serial/8250/8250.ko")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHost(t).cpu("GenuineIntel").acpiTable("DMAR")
			tc.build(h)
			got := h.findings()
			noAdvice(t, got, "modprobe")
			for m, sym := range map[string]string{"vfio": "CONFIG_VFIO", "vfio_pci": "CONFIG_VFIO_PCI", "iommufd": "CONFIG_IOMMUFD", "vfio_iommu_type1": "CONFIG_VFIO_IOMMU_TYPE1"} {
				checkFindings(t, got, map[string]want{"module " + m: {status: Fail, state: Absent, detail: []string{"not in this kernel"}, fix: []string{"boot a kernel built with " + sym + "=y or =m"}}})
			}
			checkFindings(t, got, map[string]want{
				"/dev/iommu":     {status: Fail, fix: []string{"lacks CONFIG_IOMMUFD"}},
				"/dev/vfio/vfio": {status: Fail, fix: []string{"lacks CONFIG_VFIO"}},
			})
			if tc.name != "lists" {
				checkFindings(t, got, map[string]want{
					"IOMMU driver": {status: Fail, state: Absent, fix: []string{"CONFIG_INTEL_IOMMU=y"}},
					"IOMMU":        {status: Fail, fix: []string{"see IOMMU driver"}, notFix: []string{"intel_iommu=on"}},
					"kernel command line": {status: Warn, detail: []string{"no parameter can help"}, fix: []string{"see IOMMU driver"},
						notFix: []string{"intel_iommu=on"}},
					"VFIO device cdev": {status: Fail, state: Absent},
					"module vfio":      {status: Fail, fix: []string{"CONFIG_MODULES is not set"}},
				})
			}
		})
	}
}

func TestAMDHost(t *testing.T) {
	t.Parallel()
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("AuthenticAMD").acpiTable("IVRS").amdUnit("ivhd0").interrupts("IR-IO-APIC", "IR-PCI-MSIX-0000:01:00.0").
			loaded("vfio", "vfio_pci", "vfio_pci_core", "vfio_iommu_type1", "iommufd").configGz(configModular...).
			file("dev/iommu", "").file("dev/vfio/vfio", "")
		got := h.findings()
		noAdvice(t, got, "intel_iommu")
		checkFindings(t, got, map[string]want{
			"platform":            {status: Pass, detail: []string{"CPU AuthenticAMD", "IOMMU AMD-Vi (ivhd0)"}},
			"firmware":            {status: Pass, detail: []string{"IVRS", "AMD-Vi"}},
			"IOMMU driver":        {status: Pass, state: BuiltIn, detail: []string{"amd-iommu"}},
			"IOMMU":               {status: Pass, detail: []string{"ivhd0 (amd-vi)"}},
			"IOMMU features":      {status: Pass, detail: []string{"ivhd0: host page tables ", "PRI yes", "posted interrupts yes"}},
			"kernel command line": {status: Pass},
			"interrupt remapping": {status: Pass, detail: []string{"IR-IO-APIC", "AMD-Vi has no sysfs bit"}},
			"module vfio":         {status: Pass, state: Loaded},
		})
	})
	t.Run("amd_iommu=on", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("AuthenticAMD").acpiTable("IVRS").amdUnit("ivhd0").file("proc/cmdline", "root=/dev/sda1 amd_iommu=on iommu=pt\n")
		got := h.findings()
		checkFindings(t, got, map[string]want{
			"kernel command line": {status: Warn, detail: []string{"amd_iommu=on is not a value the kernel knows", "force_isolation"}, fix: []string{"remove amd_iommu=on"}},
		})
	})
	t.Run("IOMMU off in the firmware", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("AuthenticAMD").configGz(configModular...).installed(vfioMods...)
		got := h.findings()
		noAdvice(t, got, "intel_iommu")
		checkFindings(t, got, map[string]want{
			"firmware":            {status: Fail, detail: []string{"no ACPI IVRS table"}, fix: []string{"AMD-Vi", "amd-iommu"}},
			"IOMMU driver":        {status: Pass, state: BuiltIn},
			"IOMMU":               {status: Fail, fix: []string{"see firmware"}},
			"kernel command line": {status: Warn, detail: []string{"no kernel parameter turns AMD-Vi on"}},
			"interrupt remapping": {status: Fail},
		})
	})
	t.Run("IVRS, no unit", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("AuthenticAMD").acpiTable("IVRS").configGz(configModular...)
		got := h.findings()
		noAdvice(t, got, "intel_iommu")
		checkFindings(t, got, map[string]want{
			"IOMMU": {status: Fail, fix: []string{"AMD-Vi starts by default", "dmesg"}},
		})
		h.file("proc/cmdline", "root=/dev/sda1 amd_iommu=off intel_iommu=on\n")
		checkFindings(t, h.findings(), map[string]want{
			"IOMMU":               {status: Fail, fix: []string{"remove amd_iommu=off"}},
			"kernel command line": {status: Fail, detail: []string{"amd_iommu=off disables"}},
		})
	})
	t.Run("remapping off", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("AuthenticAMD").acpiTable("IVRS").amdUnit("ivhd0").interrupts("IO-APIC", "PCI-MSIX-0000:01:00.0")
		checkFindings(t, h.findings(), map[string]want{
			"interrupt remapping": {status: Fail, detail: []string{"no IR- chip"}, fix: []string{"intremap=on"}},
		})
		h.remove("proc/interrupts")
		checkFindings(t, h.findings(), map[string]want{
			"interrupt remapping": {status: Warn, detail: []string{"unknown"}},
		})
	})
}

func TestARMSMMUv3Host(t *testing.T) {
	t.Parallel()
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("arm64").acpiTable("IORT").smmuUnit("smmu3.0x0000000009050000").
			interrupts("ITS-PCI-MSIX-0000:00:01.0", "GICv3").loaded("arm_smmu_v3", "vfio", "vfio_pci", "iommufd", "vfio_iommu_type1").
			file("dev/iommu", "").file("dev/vfio/vfio", "")
		got := h.findings()
		noAdvice(t, got, "intel_iommu")
		checkFindings(t, got, map[string]want{
			"platform":            {status: Pass, detail: []string{"arm64 (CPU implementer 0x41)", "Arm SMMUv3"}},
			"firmware":            {status: Pass, detail: []string{"IORT"}},
			"IOMMU driver":        {status: Pass, state: Loaded, detail: []string{"arm_smmu_v3"}},
			"IOMMU":               {status: Pass, detail: []string{"smmu3.0x0000000009050000 (arm-smmu-v3)"}},
			"IOMMU features":      {status: Pass, detail: []string{"registers not in sysfs", "probe -hwinfo"}},
			"kernel command line": {status: Pass},
			"interrupt remapping": {status: Pass, detail: []string{"GICv3 ITS"}},
		})
	})
	t.Run("device tree, driver not loaded", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("arm64").file("sys/firmware/devicetree/base/smmu@9050000/compatible", "arm,smmu-v3\x00").
			installed(append([]string{"kernel/drivers/iommu/arm/arm-smmu-v3/arm_smmu_v3.ko.xz"}, vfioMods...)...)
		got := h.findings()
		noAdvice(t, got, "intel_iommu")
		checkFindings(t, got, map[string]want{
			"firmware":            {status: Pass, detail: []string{"/smmu@9050000", "arm,smmu-v3"}},
			"IOMMU driver":        {status: Fail, state: Available, fix: []string{"modprobe arm_smmu_v3"}},
			"IOMMU":               {status: Fail, fix: []string{"see IOMMU driver"}},
			"kernel command line": {status: Warn, detail: []string{"no kernel parameter enables an SMMUv3"}},
		})
	})
	t.Run("MSIs not known isolated", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("arm64").acpiTable("IORT").smmuUnit("smmu3.0x0000000009050000").
			file("sys/kernel/iommu_groups/0/reserved_regions", "0x0000000008000000 0x00000000080fffff msi\n").
			file("sys/kernel/iommu_groups/0/type", "DMA\n").dir("sys/kernel/iommu_groups/0/devices")
		checkFindings(t, h.findings(), map[string]want{
			"interrupt remapping": {status: Warn, detail: []string{"unknown", "GICv3 ITS", "reserves an msi region", "not proof of isolation"}},
		})
		h.interrupts("GICv2m-PCI-MSI-0000:00:01.0")
		checkFindings(t, h.findings(), map[string]want{
			"interrupt remapping": {status: Fail, detail: []string{"GICv2m"}},
		})
	})
	t.Run("no firmware description", func(t *testing.T) {
		t.Parallel()
		h := newFakeHost(t).cpu("arm64").dir("sys/firmware/devicetree/base/cpus")
		checkFindings(t, h.findings(), map[string]want{
			"firmware": {status: Fail, detail: []string{"no arm,smmu-v3 node in the device tree"}, fix: []string{"IORT", "iommu=smmuv3"}},
		})
	})
}

// What cannot be read is unknown, never a pass.
func TestUnknownIsNotPass(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t).remove("proc/cmdline").remove("sys/module").remove("proc/sys/kernel/osrelease")
	got := h.findings()
	checkFindings(t, got, map[string]want{
		"platform":            {status: Warn, detail: []string{"CPU vendor unknown", "cpuinfo", "no IOMMU seen", "kernel release unknown"}},
		"IOMMU driver":        {status: Warn, state: Unknown},
		"kernel command line": {status: Warn, detail: []string{"unknown"}},
		"module vfio":         {status: Warn, state: Unknown, detail: []string{"cannot read /sys/module"}},
		"VFIO device cdev":    {status: Warn, state: Unknown, detail: []string{"no kernel config"}},
		"firmware":            {status: Fail},
	})
	for _, f := range got {
		if f.State == Unknown && f.Status == Pass {
			t.Errorf("%s: unknown yet PASS", f.Check)
		}
	}

	// An Intel unit whose ecap cannot be read: interrupt remapping unknown.
	h = newFakeHost(t).cpu("GenuineIntel").dir("sys/class/iommu/dmar0/intel-iommu")
	checkFindings(t, h.findings(), map[string]want{
		"interrupt remapping": {status: Warn, detail: []string{"cannot tell for dmar0"}},
	})
}

// The captured-guest mismatch: QEMU's TCG CPU is AuthenticAMD under an
// intel-iommu; the advice follows the IOMMU.
func TestVendorFromUnitsFirst(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t).cpu("AuthenticAMD").vtdUnit("dmar0", "f00f4a").loaded("vfio")
	x := h.host()
	if v := x.Platform.Vendor(); v != Intel {
		t.Errorf("vendor %q, want intel (from dmar0)", v)
	}
	checkFindings(t, h.findings(), map[string]want{
		"platform":     {status: Pass, detail: []string{"advice follows the IOMMU (Intel VT-d), not the CPU"}},
		"IOMMU driver": {status: Pass, detail: []string{"intel-iommu"}},
	})
	// Without units, the firmware table decides over the CPU.
	h = newFakeHost(t).cpu("AuthenticAMD").acpiTable("DMAR")
	checkFindings(t, h.findings(), map[string]want{
		"IOMMU":               {status: Fail, fix: []string{"boot with intel_iommu=on"}},
		"kernel command line": {status: Warn, fix: []string{"intel_iommu=on"}},
	})
	// A kernel that turns VT-d on by default needs no parameter.
	h = newFakeHost(t).cpu("GenuineIntel").acpiTable("DMAR").configGz("CONFIG_INTEL_IOMMU=y", "CONFIG_INTEL_IOMMU_DEFAULT_ON=y")
	got := h.findings()
	noAdvice(t, got, "add intel_iommu=on")
	checkFindings(t, got, map[string]want{
		"IOMMU": {status: Fail, fix: []string{"CONFIG_INTEL_IOMMU_DEFAULT_ON=y", "dmesg"}, notFix: []string{"boot with intel_iommu=on"}},
	})
}

// VT-d described by the firmware and asked for on the command line, yet no
// unit: the advice is the kernel log, not the parameter already given nor
// the firmware setting the DMAR table shows is on.
func TestIntelOnGivenNoUnit(t *testing.T) {
	t.Parallel()
	for _, cmdline := range []string{"root=/dev/sda1 intel_iommu=on", "intel_iommu=on,sm_on iommu=pt"} {
		h := newFakeHost(t).cpu("GenuineIntel").acpiTable("DMAR").file("proc/cmdline", cmdline+"\n")
		got := h.findings()
		noAdvice(t, got, "boot with intel_iommu=on")
		noAdvice(t, got, "add intel_iommu=on")
		checkFindings(t, got, map[string]want{
			"IOMMU": {status: Fail, fix: []string{"dmesg"}},
			"kernel command line": {status: Warn, detail: []string{"intel_iommu=on", "DMAR"}, fix: []string{"dmesg"},
				notFix: []string{"enable VT-d in the firmware"}},
		})
	}
	// Without a DMAR table the firmware is the suspect still.
	h := newFakeHost(t).cpu("GenuineIntel").file("proc/cmdline", "intel_iommu=on\n")
	checkFindings(t, h.findings(), map[string]want{
		"kernel command line": {status: Warn, fix: []string{"enable VT-d in the firmware"}},
	})
}

// A kernel built without module support whose config cannot be read
// (CONFIG_IKCONFIG_PROC off, no /boot, no /lib/modules): /proc/modules is
// missing, so nothing may be advised with modprobe; VFIO built in shows in
// /sys/module, and iommufd, which would too, is absent: rebuild with =y.
func TestNoModulesNoConfig(t *testing.T) {
	t.Parallel()
	h := intelHost(t).remove("proc/modules").builtinParams("vfio", "vfio_pci", "vfio_iommu_type1").file("dev/vfio/vfio", "")
	x := h.host()
	if !x.Kernel.NoModules || !strings.Contains(x.Kernel.NoModulesSource, "proc/modules") {
		t.Fatalf("Kernel %+v: want NoModules from /proc/modules", x.Kernel)
	}
	got := h.findings()
	noAdvice(t, got, "modprobe")
	checkFindings(t, got, map[string]want{
		"platform":                {status: Pass, detail: []string{"no module support: no ", "proc/modules"}},
		"module vfio":             {status: Pass, state: BuiltIn},
		"module vfio_pci":         {status: Pass, state: BuiltIn},
		"module vfio_iommu_type1": {status: Pass, state: BuiltIn},
		"module iommufd": {status: Warn, state: Absent, detail: []string{"cannot load modules"},
			fix: []string{"CONFIG_IOMMUFD=y", "no module support"}},
		"/dev/iommu": {status: Warn, fix: []string{"lacks CONFIG_IOMMUFD"}},
	})
	// The same kernel with iommufd built in but without /dev/iommu in a
	// container: still no modprobe.
	h.builtinParams("iommufd")
	got = h.findings()
	noAdvice(t, got, "modprobe")
	checkFindings(t, got, map[string]want{
		"module iommufd": {status: Pass, state: BuiltIn},
		"/dev/iommu":     {status: Warn, fix: []string{"iommufd is built-in", "--device /dev/iommu"}},
	})
}

// A kernel without module support has no /lib/modules/RELEASE: that is
// what such a kernel looks like, not a file the report failed to read, so
// the platform finding does not list modules.builtin or modules.dep as
// unread (the own-kernel guest lane showed it did).
func TestNoModulesNoModulesDir(t *testing.T) {
	t.Parallel()
	h := intelHost(t).remove("proc/modules").remove("lib/modules").
		configGz("# CONFIG_MODULES is not set", "CONFIG_IOMMUFD=y", "CONFIG_VFIO=y", "CONFIG_VFIO_PCI=y").
		builtinParams("vfio", "vfio_pci", "iommufd")
	x := h.host()
	if !x.Kernel.NoModules {
		t.Fatalf("Kernel %+v: want NoModules", x.Kernel)
	}
	got := h.findings()
	noAdvice(t, got, "modprobe")
	for _, f := range got {
		if f.Check == "platform" && (strings.Contains(f.Detail, "modules.builtin") || strings.Contains(f.Detail, "modules.dep")) {
			t.Errorf("platform: %q lists the modules files a kernel without modules never has", f.Detail)
		}
	}
}
