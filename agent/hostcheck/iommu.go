package hostcheck

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// platformFinding says which vendor the advice is for and from what, and
// which kernel sources could be read: the findings after it lean on both.
func (h *Host) platformFinding() Finding {
	p := h.Platform
	fd := Finding{Check: "platform", Status: Pass}
	var parts []string
	if p.CPUName != "" {
		parts = append(parts, "CPU "+p.CPUName)
	} else {
		parts = append(parts, "CPU vendor unknown ("+errText(p.CPUErr)+")")
	}
	switch {
	case p.Units != VendorUnknown:
		parts = append(parts, "IOMMU "+p.Units.iommuName()+" ("+p.UnitName+")")
	case p.firmwareVendor() != VendorUnknown:
		parts = append(parts, "firmware describes "+p.firmwareVendor().iommuName()+", no unit registered")
	default:
		parts = append(parts, "no IOMMU seen")
	}
	v := p.Vendor()
	switch {
	case v == VendorUnknown:
		fd.Status = Warn
		parts = append(parts, "advice cannot be vendor-specific")
	case p.CPU != VendorUnknown && v != p.CPU:
		parts = append(parts, "advice follows the IOMMU ("+v.iommuName()+"), not the CPU: an emulated or unusual platform")
	}
	k := h.Kernel
	rel := k.Release
	if rel == "" {
		rel = "release unknown"
	}
	var srcs []string
	if k.ConfigSource != "" {
		srcs = append(srcs, "config from "+k.ConfigSource)
	}
	if k.BuiltinSource != "" {
		srcs = append(srcs, "built-ins from "+k.BuiltinSource)
	}
	if k.DepSource != "" {
		srcs = append(srcs, "modules from "+k.DepSource)
	}
	if k.NoModules {
		srcs = append(srcs, "no module support: "+k.NoModulesSource)
	}
	kern := "kernel " + rel
	if len(srcs) > 0 {
		kern += " (" + strings.Join(srcs, ", ") + ")"
	}
	if len(k.Missing) > 0 {
		kern += "; unread: " + strings.Join(k.Missing, "; ")
	}
	fd.Detail = strings.Join(append(parts, kern), "; ")
	return fd
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

// firmwareFinding comes first, as in virt-host-validate: without the
// firmware's description of the IOMMU no kernel parameter brings it up.
func (h *Host) firmwareFinding(units []sysfs.IOMMU) Finding {
	p := h.Platform
	fd := Finding{Check: "firmware"}
	v := p.Vendor()
	var infos []string
	for _, t := range p.Tables {
		infos = append(infos, p.TableInfo[t])
	}
	tables := strings.Join(infos, "; ")
	switch {
	case v == ARM && p.IORTSMMUs == 0 && p.DTSMMU == "" && len(units) == 0:
		fd.Status, fd.Fix = Fail, firmwareFix(v)
		fd.Detail = "ACPI IORT table present but without an SMMU node (" + tables + "): the firmware describes no SMMU"
	case v != VendorUnknown && p.hasTable(v.table()):
		fd.Status, fd.Detail = Pass, "ACPI "+v.table()+" table present: the firmware describes an IOMMU ("+v.iommuName()+"); "+tables
	case len(p.Tables) > 0:
		fd.Status, fd.Detail = Pass, "ACPI "+p.Tables[0]+" table present: the firmware describes an IOMMU; "+tables
	case p.DTSMMU != "":
		fd.Status, fd.Detail = Pass, "device tree node "+p.DTSMMU+" is an arm,smmu-v3: the firmware describes an SMMUv3"
	case len(units) > 0:
		fd.Status, fd.Detail = Pass, "no ACPI DMAR/IVRS/IORT table seen, but the kernel runs IOMMU units"
	case p.TablesErr != nil:
		fd.Status, fd.Detail = Fail, "no IOMMU unit, and cannot list the ACPI tables: "+p.TablesErr.Error()
		fd.Fix = "run as root to read /sys/firmware/acpi/tables, or " + firmwareFix(v)
	default:
		fd.Status, fd.Fix = Fail, firmwareFix(v)
		switch v {
		case Intel:
			fd.Detail = "no ACPI DMAR table: VT-d is off in the firmware setup, or absent"
		case AMD:
			fd.Detail = "no ACPI IVRS table: the IOMMU (AMD-Vi) is off in the firmware setup, or absent"
		case ARM:
			if p.DeviceTree {
				fd.Detail = "no ACPI IORT table and no arm,smmu-v3 node in the device tree: the firmware describes no SMMU"
			} else {
				fd.Detail = "no ACPI IORT table: the firmware describes no SMMU"
			}
		default:
			fd.Detail = "no ACPI DMAR, IVRS or IORT table: the IOMMU is off in the firmware setup, or absent"
		}
	}
	return fd
}

func firmwareFix(v Vendor) string {
	switch v {
	case Intel:
		return "enable VT-d (Intel Virtualization Technology for Directed I/O) in the firmware setup; QEMU: -device intel-iommu"
	case AMD:
		return "enable the IOMMU (AMD-Vi; some boards list it as IOMMU under the chipset/NBIO or AMD CBS menu, next to SVM) in the firmware setup; QEMU: -device amd-iommu"
	case ARM:
		return "the firmware must describe the SMMU (an ACPI IORT table, or an iommu node in the device tree); QEMU: -machine virt,iommu=smmuv3"
	}
	return "enable VT-d (Intel) / AMD-Vi or IOMMU (AMD) in the firmware setup; on Arm the firmware must describe the SMMU (IORT or device tree); QEMU: -device intel-iommu"
}

// iommuDriver is the vendor's IOMMU driver. VT-d and AMD-Vi are bool
// options (built in or absent, never modules), so registered units or the
// config tell; SMMUv3 is tristate and read like any module.
func (h *Host) iommuDriver() Component {
	v := h.Platform.Vendor()
	var c Component
	switch v {
	case Intel:
		c = Component{Name: "intel-iommu", Config: "CONFIG_INTEL_IOMMU"}
	case AMD:
		c = Component{Name: "amd-iommu", Config: "CONFIG_AMD_IOMMU"}
	case ARM:
		c = h.Module("arm_smmu_v3", "CONFIG_ARM_SMMU_V3")
		if h.Platform.Units == ARM && !c.State.Ready() {
			c.State, c.Source = Loaded, h.Platform.UnitName+" registered by it"
		}
		return c
	default:
		return Component{Name: "IOMMU driver", State: Unknown, Source: "the IOMMU vendor is unknown"}
	}
	cv, known := h.Kernel.ConfigValue(c.Config)
	switch {
	case h.Platform.Units == v:
		c.State, c.Source = BuiltIn, h.Platform.UnitName+" registered by it"
	case cv == "y":
		c.State, c.Source = BuiltIn, h.Kernel.configText(c.Config)
	case known:
		c.State, c.Source = Absent, h.Kernel.configText(c.Config)
	default:
		c.State, c.Source = Unknown, "no unit registered and no kernel config: "+strings.Join(h.Kernel.Missing, "; ")
	}
	return c
}

func (h *Host) driverFinding(c Component) Finding {
	fd := Finding{Check: "IOMMU driver", State: c.State, Source: c.Source}
	switch c.State {
	case Loaded, BuiltIn:
		fd.Status, fd.Detail = Pass, c.Name+" "+string(c.State)+" ("+c.Source+")"
	case Available:
		fd.Status, fd.Detail, fd.Fix = Fail, c.Name+" not loaded; loadable ("+c.Source+")", "modprobe "+c.Name
	case NotInstalled:
		fd.Status, fd.Detail, fd.Fix = Fail, c.Name+" built as a module but not installed ("+c.Source+")", installFix(h.Kernel, c.Name)
	case Absent:
		fd.Status, fd.Detail, fd.Fix = Fail, "this kernel has no "+c.Name+" ("+c.Source+")", kernelFix(h.Kernel, c.Config)
	case NotLoaded:
		fd.Status, fd.Detail = Fail, c.Name+" not loaded ("+c.Source+")"
		fd.Fix = "modprobe " + c.Name + "; if it is not found, this kernel lacks " + c.Config
	default:
		fd.Status, fd.Detail = Warn, "unknown: "+c.Source
	}
	return fd
}

func installFix(k Kernel, name string) string {
	rel := k.Release
	if rel == "" {
		rel = "this kernel"
	}
	return "install the modules package of " + rel + " (the one holding " + name + ".ko, e.g. linux-modules-extra or kernel-modules-extra), then modprobe " + name
}

// kernelFix is the advice for a component this kernel was built without:
// another kernel, since no modprobe can add it. Bool options (the VT-d and
// AMD-Vi drivers, VFIO device cdevs) can only be =y; on a kernel without
// module support, so can anything rebuilt from its config.
func kernelFix(k Kernel, config string) string {
	val := config + "=y or =m"
	if isBool(config) {
		val = config + "=y"
	}
	fix := "boot a kernel built with " + val
	if k.NoModules && !isBool(config) {
		fix += " (this one has no module support at all, so rebuilt from its config it needs =y: " + k.NoModulesSource + ")"
	}
	return fix
}

// isBool reports the options that cannot be modules.
func isBool(config string) bool {
	switch config {
	case "CONFIG_INTEL_IOMMU", "CONFIG_AMD_IOMMU", "CONFIG_VFIO_DEVICE_CDEV",
		"CONFIG_VFIO_CONTAINER", "CONFIG_VFIO_GROUP", "CONFIG_IOMMUFD_VFIO_CONTAINER":
		return true
	}
	return false
}

// featuresFinding names, per unit, what the IOMMU offers a passthrough
// host (hwinfo's facts: stages, ATS, PRI, PASID, nesting, dirty tracking,
// interrupt remapping...), from the registers sysfs shows. An SMMUv3 has
// none there: the finding says where they are. Informational: the
// findings above and below judge.
func featuresFinding(units []sysfs.IOMMU) (Finding, bool) {
	if len(units) == 0 {
		return Finding{}, false
	}
	var parts []string
	for _, u := range units {
		switch {
		case u.VTD != nil:
			parts = append(parts, u.Name+": "+hwinfo.FactsText(u.VTD.Facts()))
		case u.AMD != nil:
			parts = append(parts, u.Name+": "+hwinfo.FactsText(u.AMD.Facts()))
		case u.Kind == sysfs.KindSMMUv3:
			parts = append(parts, u.Name+": registers not in sysfs (iommu-agent probe -hwinfo reads them through IOMMU_GET_HW_INFO)")
		default:
			parts = append(parts, u.Name+": registers unreadable")
		}
	}
	return Finding{Check: "IOMMU features", Status: Pass, Detail: strings.Join(parts, "; ")}, true
}

func (h *Host) iommuFinding(units []sysfs.IOMMU, uerr error, c sysfs.Cmdline, drv Component) Finding {
	fd := Finding{Check: "IOMMU"}
	switch {
	case len(units) > 0:
		var names []string
		for _, u := range units {
			names = append(names, u.Name+" ("+string(u.Kind)+")")
		}
		fd.Status, fd.Detail = Pass, fmt.Sprintf("%d unit(s): %s", len(units), strings.Join(names, ", "))
		return fd
	case uerr != nil:
		fd.Status, fd.Detail, fd.Fix = Fail, "cannot list /sys/class/iommu: "+uerr.Error(), "check that sysfs is mounted and readable"
		return fd
	}
	fd.Status, fd.Detail = Fail, "no IOMMU unit in /sys/class/iommu: the kernel translates no device DMA"
	p := h.Platform
	v := p.Vendor()
	off := disabledBy(c, v)
	switch {
	case v == VendorUnknown:
		fd.Fix = "enable the IOMMU in the firmware setup first (see firmware); then on Intel boot with intel_iommu=on, on AMD nothing more is needed (AMD-Vi is on by default)"
	case !p.hasTable(v.table()) && (v != ARM || p.DTSMMU == ""):
		fd.Fix = "see firmware: no " + v.table() + " table describes " + v.iommuName()
	case off != "":
		fd.Fix = "remove " + off + " from the kernel command line"
	case drv.State == Absent || drv.State == NotInstalled || drv.State == Available || drv.State == NotLoaded:
		fd.Fix = "see IOMMU driver"
	case v == Intel:
		if dv, known := h.Kernel.ConfigValue("CONFIG_INTEL_IOMMU_DEFAULT_ON"); known && dv == "y" {
			fd.Fix = "this kernel turns VT-d on by default (CONFIG_INTEL_IOMMU_DEFAULT_ON=y): " + vtdLog
		} else if intelOn(c) {
			fd.Fix = "intel_iommu=on is given: " + vtdLog
		} else {
			fd.Fix = "boot with intel_iommu=on"
		}
	case v == AMD:
		fd.Fix = "AMD-Vi starts by default when the firmware has an IVRS table (no kernel parameter turns it on): read the kernel log (dmesg | grep AMD-Vi) for why it did not"
	case v == ARM:
		fd.Fix = "read the kernel log (dmesg | grep -i smmu) for why arm-smmu-v3 did not probe"
	}
	return fd
}

// vtdLog is the advice when VT-d should have started and did not: the
// kernel says why (a broken DMAR table, a kernel without the driver).
const vtdLog = "read the kernel log (dmesg | grep -i -e DMAR -e IOMMU) for why VT-d did not start"

// intelOn reports whether the command line asks for VT-d (intel_iommu=on,
// alone or among other options).
func intelOn(c sysfs.Cmdline) bool {
	val, ok := c.Lookup("intel_iommu")
	return ok && strings.Contains(","+val+",", ",on,")
}

// disabledBy returns the command-line parameter that turns v's IOMMU off,
// "" for none. intel_iommu=off does nothing on an AMD host, and the other
// way round; iommu=off stops both on x86.
func disabledBy(c sysfs.Cmdline, v Vendor) string {
	keys := map[Vendor][]string{
		Intel:         {"intel_iommu", "iommu"},
		AMD:           {"amd_iommu", "iommu"},
		VendorUnknown: {"intel_iommu", "amd_iommu", "iommu"},
	}[v]
	for _, k := range keys {
		if val, ok := c.Lookup(k); ok && strings.Contains(","+val+",", ",off,") {
			return k + "=" + val
		}
	}
	return ""
}

// amdIOMMUValues are the values amd_iommu= takes (the kernel's
// admin-guide/kernel-parameters.txt): none turns the IOMMU on, which is
// the default with an IVRS table.
func amdIOMMUValues() []string {
	return []string{"fullflush", "off", "force_isolation", "force_enable", "pgtbl_v1", "pgtbl_v2", "irtcachedis", "nohugepages", "v2_pgsizes_only"}
}

func (h *Host) cmdlineFinding(c sysfs.Cmdline, units []sysfs.IOMMU, drv Component) Finding {
	fd := Finding{Check: "kernel command line"}
	v := h.Platform.Vendor()
	if off := disabledBy(c, v); off != "" {
		fd.Status, fd.Detail, fd.Fix = Fail, off+" disables the IOMMU", "remove "+off+" from the kernel command line"
		return fd
	}
	var notes []string
	for _, k := range []string{"intel_iommu", "amd_iommu", "iommu", "iommu.passthrough"} {
		if val, ok := c.Lookup(k); ok {
			notes = append(notes, k+"="+val)
		}
	}
	pt := false
	if val, ok := c.Lookup("iommu"); ok && val == "pt" {
		pt = true
	}
	if val, ok := c.Lookup("iommu.passthrough"); ok && (val == "1" || val == "y" || val == "on") {
		pt = true
	}
	if pt {
		notes = append(notes, "host drivers use identity domains; VFIO still gets translated ones")
	}
	// Parameters for the other vendor are ignored: say so rather than let
	// them look like the reason it works (or does not).
	if _, ok := c.Lookup("intel_iommu"); ok && (v == AMD || v == ARM) {
		notes = append(notes, "intel_iommu= is ignored on "+v.iommuName())
	}
	if _, ok := c.Lookup("amd_iommu"); ok && (v == Intel || v == ARM) {
		notes = append(notes, "amd_iommu= is ignored on "+v.iommuName())
	}
	if val, ok := c.Lookup("amd_iommu"); ok && v == AMD {
		var unknown []string
		for _, o := range strings.Split(val, ",") {
			if !slices.Contains(amdIOMMUValues(), o) {
				unknown = append(unknown, o)
			}
		}
		if len(unknown) > 0 {
			fd.Status = Warn
			fd.Detail = "amd_iommu=" + strings.Join(unknown, ",") + " is not a value the kernel knows (it takes " +
				strings.Join(amdIOMMUValues(), ", ") + "), so it changes nothing; AMD-Vi is on by default when the firmware has an IVRS table"
			fd.Fix = "remove amd_iommu=" + strings.Join(unknown, ",") + " from the kernel command line"
			return fd
		}
	}
	if len(units) > 0 {
		if len(notes) == 0 {
			notes = append(notes, "no IOMMU parameters; the kernel's default enabled it")
		}
		fd.Status, fd.Detail = Pass, strings.Join(notes, "; ")
		return fd
	}
	fd.Status = Warn
	given := ""
	if len(notes) > 0 {
		given = strings.Join(notes, "; ") + "; "
	}
	if drv.State == Absent || drv.State == NotInstalled {
		fd.Detail, fd.Fix = given+"no IOMMU in use, and no parameter can help: the kernel has no "+drv.Name+" driver", "see IOMMU driver"
		return fd
	}
	switch v {
	case Intel:
		if intelOn(c) && h.Platform.hasTable("DMAR") {
			fd.Detail, fd.Fix = given+"yet no VT-d unit, though the firmware has a DMAR table: the kernel tried and failed", vtdLog
		} else if intelOn(c) {
			fd.Detail, fd.Fix = given+"yet no VT-d unit: is VT-d enabled in the firmware?", "enable VT-d in the firmware setup (see firmware)"
		} else if dv, known := h.Kernel.ConfigValue("CONFIG_INTEL_IOMMU_DEFAULT_ON"); known && dv == "y" {
			fd.Detail = given + "no VT-d unit, though this kernel enables VT-d by default (CONFIG_INTEL_IOMMU_DEFAULT_ON=y)"
			fd.Fix = "see firmware and IOMMU: no parameter is missing"
		} else {
			fd.Detail = given + "no IOMMU in use and intel_iommu=on not given"
			fd.Fix = "add intel_iommu=on (and iommu=pt to keep host devices fast)"
		}
	case AMD:
		fd.Detail = given + "no IOMMU in use; no kernel parameter turns AMD-Vi on: the kernel enables it by default when the firmware has an IVRS table"
		fd.Fix = "see firmware: enable the IOMMU in the firmware setup"
	case ARM:
		fd.Detail = given + "no IOMMU in use; no kernel parameter enables an SMMUv3: the firmware (IORT or device tree) describes it and arm_smmu_v3 probes it"
		fd.Fix = "see firmware and IOMMU driver"
	default:
		fd.Detail = given + "no IOMMU in use, and its vendor is unknown"
		fd.Fix = "on Intel add intel_iommu=on (and iommu=pt); on AMD and Arm no parameter is needed: enable the IOMMU in the firmware"
	}
	return fd
}

// groupFindings names the groups that are not viable: not a host fault,
// but what stops a passthrough later.
func (h *Host) groupFindings() []Finding {
	var out []Finding
	groups, gerr := h.fs.Groups()
	if gerr != nil {
		out = append(out, Finding{Check: "iommu_groups", Status: Warn, Detail: "some groups unreadable: " + strings.ReplaceAll(gerr.Error(), "\n", "; ")})
	}
	notViable := 0
	for _, g := range groups {
		v, err := h.fs.Viability(g.Number)
		if err != nil {
			notViable++
			out = append(out, Finding{Check: fmt.Sprintf("iommu_group %d", g.Number), Status: Warn, Detail: "unreadable: " + err.Error()})
			continue
		}
		if !v.Viable {
			notViable++
			out = append(out, Finding{Check: fmt.Sprintf("iommu_group %d", g.Number), Status: Warn, Detail: v.String(),
				Fix: fmt.Sprintf("to pass it through: iommu-agent bind group %d (every endpoint to vfio-pci)", g.Number)})
		}
	}
	if len(groups) > 0 && notViable == 0 {
		out = append(out, Finding{Check: "iommu_groups", Status: Pass, Detail: fmt.Sprintf("all %d groups viable", len(groups))})
	}
	return out
}

// devPath joins elem under the device root.
func (h *Host) devPath(elem ...string) string {
	return filepath.Join(append([]string{h.opts.DevRoot}, elem...)...)
}
