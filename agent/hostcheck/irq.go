package hostcheck

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// irqChips is what /proc/interrupts says about the interrupt chips in
// use. It is the one vendor-neutral, dmesg-free view of remapping: on x86
// the kernel names remapped chips IR-IO-APIC and IR-PCI-MSI(X), unremapped
// ones IO-APIC and PCI-MSI(X); on Arm a GICv3 ITS shows as ITS-*, GICv2m
// (no device isolation) as GICv2m-*. It only shows interrupts already
// allocated.
type irqChips struct {
	read             bool // the file was read
	ir, plain        bool // x86: remapped chips, unremapped chips
	its, v2m         bool // Arm: GICv3 ITS, GICv2m
	irName, plainAny string
}

func readInterrupts(path string) irqChips {
	var c irqChips
	ok, err := readLines(path, false, func(line string) bool {
		for _, f := range strings.Fields(line) {
			switch {
			case strings.HasPrefix(f, "IR-"):
				c.ir = true
				if c.irName == "" {
					c.irName = f
				}
			case f == "IO-APIC" || strings.HasPrefix(f, "PCI-MSI"):
				c.plain = true
				if c.plainAny == "" {
					c.plainAny = f
				}
			case strings.HasPrefix(f, "ITS-"):
				c.its = true
			case strings.HasPrefix(f, "GICv2m"):
				c.v2m = true
			}
		}
		return true
	})
	c.read = ok && err == nil
	return c
}

// irFinding: without interrupt remapping (x86) or isolated MSIs (Arm),
// type1 and iommufd refuse to give a device MSI/MSI-X unless told to be
// unsafe with allow_unsafe_interrupts.
func (h *Host) irFinding(units []sysfs.IOMMU, c sysfs.Cmdline) Finding {
	fd := Finding{Check: "interrupt remapping"}
	if v, ok := c.Lookup("intremap"); ok && v == "off" {
		fd.Status, fd.Detail, fd.Fix = Fail, "intremap=off on the kernel command line", "remove intremap=off"
		return fd
	}
	if _, ok := c.Lookup("nointremap"); ok {
		fd.Status, fd.Detail, fd.Fix = Fail, "nointremap on the kernel command line", "remove nointremap"
		return fd
	}
	if len(units) == 0 {
		fd.Status, fd.Detail, fd.Fix = Fail, "no IOMMU, so no interrupt remapping", "see IOMMU above"
		return fd
	}
	unsafe := ""
	for _, m := range []string{"vfio_iommu_type1", "iommufd"} {
		if mod, err := h.fs.Module(m); err == nil && (mod.Params["allow_unsafe_interrupts"] == "Y" || mod.Params["allow_unsafe_interrupts"] == "1") {
			unsafe += " " + m + ".allow_unsafe_interrupts=Y"
		}
	}
	chips := readInterrupts(filepath.Join(h.opts.ProcRoot, "interrupts"))
	failed := func(detail, fix string) Finding {
		fd.Status, fd.Detail, fd.Fix = Fail, detail, fix
		if unsafe != "" {
			fd.Status, fd.Detail = Warn, detail+"; allowed anyway by"+unsafe+" (a device can then forge interrupts)"
		}
		return fd
	}
	passed := func(detail string) Finding {
		fd.Status, fd.Detail = Pass, detail
		if unsafe != "" {
			fd.Status, fd.Detail, fd.Fix = Warn, detail+", but"+unsafe+" lets devices forge interrupts", "unset allow_unsafe_interrupts"
		}
		return fd
	}
	switch v, _ := unitsVendor(units); v {
	case Intel:
		var without, unknown []string
		for _, u := range units {
			switch {
			case u.VTD == nil:
				unknown = append(unknown, u.Name)
			case !u.VTD.ECap.IR():
				without = append(without, u.Name)
			}
		}
		switch {
		case len(without) > 0:
			return failed("VT-d ecap IR clear on "+strings.Join(without, ", ")+": VFIO refuses MSI/MSI-X without it",
				"enable x2APIC / interrupt remapping in the firmware (QEMU: -device intel-iommu,intremap=on)")
		case len(unknown) > 0:
			fd.Status, fd.Detail = Warn, "cannot tell for "+strings.Join(unknown, ", ")+" (their intel-iommu/ecap is unreadable)"
			return fd
		case chips.plain && !chips.ir:
			return failed("ecap IR set on every VT-d unit, but /proc/interrupts shows "+chips.plainAny+" and no IR- chip: the kernel did not turn remapping on",
				"read the kernel log (dmesg | grep -i -e DMAR-IR -e x2apic) for why; remove intremap= / nointremap parameters")
		case chips.ir:
			return passed("ecap IR set on every VT-d unit; " + chips.irName + " in /proc/interrupts: remapping is on")
		}
		return passed("ecap IR set on every VT-d unit")
	case AMD:
		// AMD-Vi has no interrupt-remapping bit in sysfs (amd-iommu/cap and
		// features hold no such flag), so the chips are the only witness.
		switch {
		case chips.ir:
			return passed(chips.irName + " in /proc/interrupts: AMD-Vi remaps interrupts (AMD-Vi has no sysfs bit for it; this is what the kernel set up)")
		case chips.plain:
			return failed("/proc/interrupts shows "+chips.plainAny+" and no IR- chip: AMD-Vi interrupt remapping is off",
				"enable interrupt remapping in the firmware (the IVRS must describe the IO-APIC); read dmesg | grep AMD-Vi; QEMU: -device amd-iommu,intremap=on")
		}
		fd.Status, fd.Detail = Warn, "unknown: AMD-Vi has no interrupt-remapping bit in sysfs and "+filepath.Join(h.opts.ProcRoot, "interrupts")+" shows no IO-APIC or MSI chip to judge by"
		return fd
	case ARM:
		// Arm has no remapping; what VFIO needs is an MSI controller that
		// isolates devices (IRQ_DOMAIN_FLAG_ISOLATED_MSI): the GICv3 ITS.
		msi := h.msiRegion()
		switch {
		case chips.its:
			return passed("MSIs go through a GICv3 ITS (ITS- chips in /proc/interrupts), which isolates them per device as VFIO requires" + msi)
		case chips.v2m:
			return failed("MSIs go through GICv2m, which does not isolate devices: VFIO refuses MSI/MSI-X"+msi,
				"a platform with a GICv3 ITS; QEMU: -machine virt,gic-version=3")
		}
		fd.Status = Warn
		fd.Detail = "unknown: sysfs does not say whether MSIs are isolated (that is the MSI controller's property: a GICv3 ITS is, GICv2m is not), and " +
			filepath.Join(h.opts.ProcRoot, "interrupts") + " shows no ITS or GICv2m chip yet" + msi
		return fd
	}
	fd.Status, fd.Detail = Warn, "unknown: no decoder for these IOMMU units"
	return fd
}

// msiRegion notes an "msi" reserved region, which says the SMMU maps an
// MSI doorbell into each domain; it says nothing about isolation.
func (h *Host) msiRegion() string {
	groups, _ := h.fs.Groups()
	for _, g := range groups {
		for _, r := range g.ReservedRegions {
			if r.Type == "msi" {
				return "; iommu_group " + strconv.Itoa(g.Number) + " reserves an msi region (the doorbell window mapped through the SMMU, not proof of isolation)"
			}
		}
	}
	return ""
}
