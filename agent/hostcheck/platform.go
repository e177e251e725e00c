package hostcheck

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Vendor is an IOMMU architecture family, which decides the advice: its
// firmware table, its kernel parameters, its driver.
type Vendor string

// The vendors; "" is unknown.
const (
	VendorUnknown Vendor = ""
	Intel         Vendor = "intel" // VT-d: ACPI DMAR, intel_iommu=, CONFIG_INTEL_IOMMU
	AMD           Vendor = "amd"   // AMD-Vi: ACPI IVRS, on by default, CONFIG_AMD_IOMMU
	ARM           Vendor = "arm"   // SMMUv3: ACPI IORT or device tree, arm_smmu_v3
)

func (v Vendor) iommuName() string {
	switch v {
	case Intel:
		return "Intel VT-d"
	case AMD:
		return "AMD-Vi"
	case ARM:
		return "Arm SMMUv3"
	}
	return "unknown"
}

// table is the ACPI table that describes v's IOMMU.
func (v Vendor) table() string {
	switch v {
	case Intel:
		return "DMAR"
	case AMD:
		return "IVRS"
	case ARM:
		return "IORT"
	}
	return ""
}

// Platform is which CPU and which IOMMU this host has, from three
// sources that can disagree: the CPU vendor (/proc/cpuinfo), the firmware
// table, and the IOMMU units the kernel registered. An emulated IOMMU
// shows why: QEMU's default TCG CPU reports AuthenticAMD under an
// intel-iommu.
type Platform struct {
	CPU     Vendor // from /proc/cpuinfo
	CPUName string // vendor_id, or "arm64 (CPU implementer 0x41)"
	CPUErr  error  // why CPU is unknown, if it is
	// Tables lists the IOMMU ACPI tables present (DMAR, IVRS, IORT).
	Tables []string
	// TablesErr is set when /sys/firmware/acpi/tables exists but cannot be
	// listed; a missing directory is no ACPI (a device-tree boot).
	TablesErr error
	// TableInfo describes each table of Tables by its contents (units,
	// flags), or says why it could not be read (root only).
	TableInfo map[string]string
	// IORTSMMUs counts the SMMU nodes of the IORT; -1 when there is no
	// IORT or it could not be read.
	IORTSMMUs int
	// DeviceTree is true on a device-tree boot; DTSMMU names the first
	// node whose compatible says arm,smmu-v3.
	DeviceTree bool
	DTSMMU     string
	// Units is the vendor of the registered IOMMU units, if any, and
	// UnitName the first such unit.
	Units    Vendor
	UnitName string
}

// Vendor is the family the advice is for: the units' if the kernel
// registered any, else the firmware table's, else the CPU's.
func (p Platform) Vendor() Vendor {
	if p.Units != VendorUnknown {
		return p.Units
	}
	if v := p.firmwareVendor(); v != VendorUnknown {
		return v
	}
	return p.CPU
}

func (p Platform) firmwareVendor() Vendor {
	for _, t := range p.Tables {
		switch t {
		case "DMAR":
			return Intel
		case "IVRS":
			return AMD
		case "IORT":
			return ARM
		}
	}
	if p.DTSMMU != "" {
		return ARM
	}
	return VendorUnknown
}

func (p Platform) hasTable(t string) bool {
	for _, x := range p.Tables {
		if x == t {
			return true
		}
	}
	return false
}

// unitsVendor is the vendor of the first unit of a known kind, and its
// name.
func unitsVendor(units []sysfs.IOMMU) (Vendor, string) {
	for _, u := range units {
		switch {
		case u.Kind == sysfs.KindVTD || strings.HasPrefix(u.Name, "dmar"):
			return Intel, u.Name
		case u.Kind == sysfs.KindAMDVi || strings.HasPrefix(u.Name, "ivhd"):
			return AMD, u.Name
		case u.Kind == sysfs.KindSMMUv3 || strings.HasPrefix(u.Name, "smmu3."):
			return ARM, u.Name
		}
	}
	return VendorUnknown, ""
}

func readPlatform(f *sysfs.FS, procRoot string) Platform {
	var p Platform
	p.CPU, p.CPUName, p.CPUErr = cpuVendor(filepath.Join(procRoot, "cpuinfo"))
	tables := f.Path("firmware", "acpi", "tables")
	p.IORTSMMUs = -1
	for _, t := range []string{"DMAR", "IVRS", "IORT"} {
		path := filepath.Join(tables, t)
		if !exists(path) {
			continue
		}
		p.Tables = append(p.Tables, t)
		if p.TableInfo == nil {
			p.TableInfo = map[string]string{}
		}
		sum, smmus, err := summarizeTable(t, path)
		switch {
		case err != nil && sum == "":
			p.TableInfo[t] = t + " (contents unread: " + err.Error() + ")"
		case err != nil:
			p.TableInfo[t] = sum + " (then malformed: " + err.Error() + ")"
		default:
			p.TableInfo[t] = sum
		}
		if t == "IORT" {
			p.IORTSMMUs = smmus
		}
	}
	if _, err := os.ReadDir(tables); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.TablesErr = err
	}
	dt := f.Path("firmware", "devicetree", "base")
	if isDir(dt) {
		p.DeviceTree = true
		p.DTSMMU = findSMMUNode(dt)
	}
	if units, _ := f.IOMMUs(); len(units) > 0 {
		p.Units, p.UnitName = unitsVendor(units)
	}
	return p
}

// cpuVendor reads the first vendor_id of cpuinfo (x86), or recognises
// arm64 by its "CPU implementer" lines (arm64 has no vendor_id).
func cpuVendor(path string) (Vendor, string, error) {
	var v Vendor
	var name string
	ok, err := readLines(path, false, func(line string) bool {
		key, val, found := strings.Cut(line, ":")
		if !found {
			return true
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "vendor_id":
			name = val
			switch val {
			case "GenuineIntel":
				v = Intel
			case "AuthenticAMD", "HygonGenuine": // Hygon's Dhyana carries AMD-Vi
				v = AMD
			}
			return false
		case "CPU implementer":
			v, name = ARM, "arm64 (CPU implementer "+val+")"
			return false
		}
		return true
	})
	if err == nil && !ok {
		err = errors.New("no " + path)
	}
	if err == nil && name == "" {
		err = errors.New(path + " has no vendor_id or CPU implementer line")
	}
	return v, name, err
}

// findSMMUNode walks the device tree (two levels: SMMUs sit at the root or
// under a bus node such as soc) for a node whose compatible names
// arm,smmu-v3, and returns its path below base. The walk is bounded: a
// device tree has a few hundred nodes at these depths.
func findSMMUNode(base string) string {
	const maxNodes = 4096
	seen := 0
	var walk func(dir, rel string, depth int) string
	walk = func(dir, rel string, depth int) string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return ""
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			if seen++; seen > maxNodes {
				return ""
			}
			p, r := filepath.Join(dir, e.Name()), rel+"/"+e.Name()
			if c, ok, _ := readAttr(filepath.Join(p, "compatible")); ok && strings.Contains(c, "arm,smmu-v3") {
				return r
			}
			if depth < 2 {
				if found := walk(p, r, depth+1); found != "" {
					return found
				}
			}
		}
		return ""
	}
	return walk(base, "", 1)
}
