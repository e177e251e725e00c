package hostcheck

import (
	"strings"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// paramsFinding lists, by name, every kernel parameter on the command line
// that changes how the IOMMU treats devices, with what it does on this
// host's vendor, and the kernel's defaults where none is given: the
// default domain of host-owned devices and, on VT-d, scalable mode. The
// option names and values are those the drivers parse (intel_iommu_setup,
// parse_amd_iommu_options, parse_amd_iommu_intr, arch/x86 iommu_setup, the
// iommu.* early params, the VFIO and arm-smmu-v3 module parameters).
//
// It WARNs for the parameters that weaken isolation (unsafe interrupts,
// no-IOMMU mode, pcie_acs_override); the command-line finding judges
// whether the IOMMU is on at all.
func (h *Host) paramsFinding(c sysfs.Cmdline, v Vendor) Finding {
	fd := Finding{Check: "IOMMU parameters", Status: Pass}
	var notes, risks []string
	add := func(key, val, what string) { notes = append(notes, key+"="+val+": "+what) }
	lookup := func(key string) (string, bool) { return c.Lookup(key) }

	// Vendor options, each value explained.
	if val, ok := lookup("intel_iommu"); ok && v != AMD && v != ARM {
		for _, o := range strings.Split(val, ",") {
			if w := intelOption(o); w != "" {
				add("intel_iommu", o, w)
			} else {
				add("intel_iommu", o, "not an option intel_iommu= knows; ignored")
			}
		}
	}
	if v == Intel {
		if val, _ := lookup("intel_iommu"); !strings.Contains(","+val+",", ",sm_on,") && !strings.Contains(","+val+",", ",sm_off,") {
			const sym = "CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON"
			switch cv, known := h.Kernel.ConfigValue(sym); {
			case cv == "y":
				notes = append(notes, "scalable mode on by default where the hardware has it ("+sym+"=y)")
			case known:
				notes = append(notes, "legacy (not scalable) mode by default ("+h.Kernel.configText(sym)+"): intel_iommu=sm_on for PASIDs, nesting and dirty tracking")
			}
		}
	}
	if val, ok := lookup("amd_iommu"); ok && v != Intel && v != ARM {
		for _, o := range strings.Split(val, ",") {
			if w := amdOption(o); w != "" {
				add("amd_iommu", o, w)
			}
			// Unknown values are the command-line finding's WARN.
		}
	}
	if val, ok := lookup("amd_iommu_intr"); ok && v != Intel && v != ARM {
		switch {
		case strings.HasPrefix(val, "legacy"):
			add("amd_iommu_intr", val, "interrupt remapping in legacy mode: no posting of assigned devices' interrupts to vCPUs (AVIC)")
		case strings.HasPrefix(val, "vapic"):
			add("amd_iommu_intr", val, "guest virtual APIC mode: interrupts of assigned devices may be posted to vCPUs (needs EFR GA)")
		default:
			add("amd_iommu_intr", val, "not a value amd_iommu_intr= knows (legacy, vapic); ignored")
		}
	}
	// ivrs_ioapic=ID@BDF, or the older ivrs_ioapic[ID]=BDF: the key
	// carries the index, so match by prefix.
	for _, arg := range c {
		key, val, _ := strings.Cut(arg, "=")
		for _, k := range []string{"ivrs_ioapic", "ivrs_hpet", "ivrs_acpihid"} {
			if (key == k || strings.HasPrefix(key, k+"[")) && v != Intel && v != ARM {
				add(key, val, "overrides the firmware's IVRS for an IO-APIC/HPET/ACPI device (a workaround for a broken IVRS; without the right one interrupt remapping stays off)")
			}
		}
	}
	if v == ARM {
		for _, p := range []struct{ key, what string }{
			{"arm-smmu-v3.disable_msipolling", "CMD_SYNC completion by polling instead of MSI"},
			{"arm-smmu-v3.disable_bypass", "whether streams with no domain bypass the SMMU"},
		} {
			val, ok := lookup(p.key)
			if !ok {
				continue
			}
			name := strings.TrimPrefix(p.key, "arm-smmu-v3.")
			if exists(h.fs.Path("module", "arm_smmu_v3", "parameters", name)) || !exists(h.fs.Path("module", "arm_smmu_v3", "parameters")) {
				add(p.key, val, p.what)
			} else {
				add(p.key, val, "this kernel's arm_smmu_v3 has no such parameter (/sys/module/arm_smmu_v3/parameters lacks it); ignored")
			}
		}
	}

	// The default domain of host-owned devices: identity (passthrough),
	// or translated with strict or lazy (flush queue) invalidation. VFIO
	// and iommufd give assigned devices domains of their own either way.
	def := h.defaultDomain(c)
	notes = append(notes, def)

	if val, ok := lookup("iommu"); ok {
		for _, o := range strings.Split(val, ",") {
			switch o {
			case "pt", "nopt", "off":
				// In the default-domain note, or the command-line finding's FAIL.
			case "soft":
				add("iommu", o, "software bounce buffers (swiotlb) for devices the IOMMU does not cover")
			case "force", "noforce", "panic", "nopanic", "merge", "nomerge", "biomerge", "forcesac", "allowdac", "nodac", "usedac":
				add("iommu", o, "an x86 DMA or AMD GART option; no effect on VT-d, AMD-Vi or VFIO")
			}
		}
	}
	if val, ok := lookup("iommu.forcedac"); ok {
		add("iommu.forcedac", val, "DMA addresses above 4 GiB first for PCI devices (IOVA allocation only)")
	}
	if val, ok := lookup("intremap"); ok && val != "off" {
		add("intremap", val, "interrupt remapping option (off disables it; nosid, no_x2apic_optout, nopost tune it)")
	}

	// VFIO and iommufd module options that weaken isolation or pin less.
	for _, p := range []struct{ key, what string }{
		{"vfio_iommu_type1.allow_unsafe_interrupts", "type1 accepts devices whose MSIs are not isolated: a device can forge interrupts"},
		{"iommufd.allow_unsafe_interrupts", "iommufd accepts devices whose MSIs are not isolated: a device can forge interrupts"},
		{"vfio.enable_unsafe_noiommu_mode", "VFIO without an IOMMU: user space gets DMA to all memory"},
	} {
		if val, ok := lookup(p.key); ok && truthy(val) {
			add(p.key, val, p.what)
			risks = append(risks, p.key)
		}
	}
	if val, ok := lookup("vfio_iommu_type1.disable_hugepages"); ok && truthy(val) {
		add("vfio_iommu_type1.disable_hugepages", val, "type1 maps only 4 KiB pages: more IOTLB misses and slower maps")
	}
	if val, ok := lookup("vfio-pci.ids"); ok {
		add("vfio-pci.ids", val, "vfio-pci claims these vendor:device IDs at boot")
	} else if val, ok := lookup("vfio_pci.ids"); ok {
		add("vfio_pci.ids", val, "vfio-pci claims these vendor:device IDs at boot")
	}
	if val, ok := lookup("pcie_acs_override"); ok {
		add("pcie_acs_override", val, "not a mainline parameter (an out-of-tree patch some kernels carry): it makes the kernel assume ACS isolation the hardware does not give, so iommu_groups no longer show which devices can reach each other")
		risks = append(risks, "pcie_acs_override")
	}

	fd.Detail = strings.Join(notes, "; ")
	if len(risks) > 0 {
		fd.Status = Warn
		fd.Fix = "remove " + strings.Join(risks, ", ") + " unless this host's devices are trusted"
	}
	return fd
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "y", "yes", "on", "true":
		return true
	}
	return false
}

// intelOption explains one value of intel_iommu= (intel_iommu_setup).
func intelOption(o string) string {
	switch o {
	case "on":
		return "VT-d on"
	case "off":
		return "VT-d off"
	case "sm_on":
		return "scalable mode if the hardware has it (ecap SMTS): PASIDs, first-stage tables, nesting and dirty tracking need it"
	case "sm_off":
		return "scalable mode disallowed: legacy mode, so no PASID, nesting or dirty tracking"
	case "igfx_off":
		return "the integrated GPU is left untranslated"
	case "intgpu_off":
		return "the integrated GPU is left untranslated"
	case "forcedac":
		return "deprecated alias of iommu.forcedac"
	case "strict":
		return "deprecated alias of iommu.strict=1"
	case "sp_off":
		return "no superpages in second-stage tables: more IOTLB misses"
	case "tboot_noforce":
		return "VT-d not forced on after tboot"
	}
	return ""
}

// amdOption explains one value of amd_iommu= (parse_amd_iommu_options).
func amdOption(o string) string {
	switch o {
	case "fullflush":
		return "deprecated alias of iommu.strict=1"
	case "off":
		return "AMD-Vi off"
	case "force_enable":
		return "AMD-Vi on even where the kernel would turn it off for a known erratum"
	case "force_isolation":
		return "every device gets a translated domain (no identity/passthrough)"
	case "pgtbl_v1":
		return "host DMA domains use v1 (AMD format) page tables, the default"
	case "pgtbl_v2":
		return "host DMA domains use v2 (x86 format) page tables: needs EFR GT and GIOSUP"
	case "irtcachedis":
		return "interrupt remapping table caching disabled"
	case "nohugepages":
		return "v1 page tables limited to 4 KiB pages"
	case "v2_pgsizes_only":
		return "v1 page tables limited to 4 KiB, 2 MiB and 1 GiB pages"
	}
	return ""
}

// defaultDomain says what domain host-owned devices get and why: from
// iommu.passthrough, iommu=pt/nopt, iommu.strict (and the deprecated
// aliases), else the kernel config's IOMMU_DEFAULT_* choice.
func (h *Host) defaultDomain(c sysfs.Cmdline) string {
	mode, src := "", ""
	if val, ok := c.Lookup("iommu.passthrough"); ok {
		if truthy(val) {
			mode, src = "identity", "iommu.passthrough="+val
		} else {
			mode, src = "translated", "iommu.passthrough="+val
		}
	}
	if val, ok := c.Lookup("iommu"); ok && mode == "" {
		for _, o := range strings.Split(val, ",") {
			switch o {
			case "pt":
				mode, src = "identity", "iommu=pt"
			case "nopt":
				mode, src = "translated", "iommu=nopt"
			}
		}
	}
	strict, ssrc := "", ""
	if val, ok := c.Lookup("iommu.strict"); ok {
		strict, ssrc = "lazy", "iommu.strict="+val
		if truthy(val) {
			strict = "strict"
		}
	} else if val, ok := c.Lookup("intel_iommu"); ok && strings.Contains(","+val+",", ",strict,") {
		strict, ssrc = "strict", "intel_iommu=strict"
	} else if val, ok := c.Lookup("amd_iommu"); ok && strings.Contains(","+val+",", ",fullflush,") {
		strict, ssrc = "strict", "amd_iommu=fullflush"
	}
	k := h.Kernel
	if mode == "" {
		for _, d := range []struct{ sym, mode, strict string }{
			{"CONFIG_IOMMU_DEFAULT_PASSTHROUGH", "identity", ""},
			{"CONFIG_IOMMU_DEFAULT_DMA_LAZY", "translated", "lazy"},
			{"CONFIG_IOMMU_DEFAULT_DMA_STRICT", "translated", "strict"},
		} {
			if v, _ := k.ConfigValue(d.sym); v == "y" {
				mode, src = d.mode, d.sym+"=y"
				if strict == "" {
					strict, ssrc = d.strict, d.sym+"=y"
				}
				break
			}
		}
	}
	text := "host devices' default domain: "
	switch mode {
	case "identity":
		text += "identity (no translation for host drivers, from " + src + ")"
	case "translated":
		text += "translated (from " + src + ")"
	default:
		text += "translated unless the kernel was built for passthrough (no parameter, no config to tell)"
	}
	if mode != "identity" && strict != "" {
		text += ", " + strict + " invalidation (from " + ssrc + ")"
	}
	text += "; VFIO and iommufd give assigned devices their own translated domains either way"
	return text
}
