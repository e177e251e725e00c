package sysfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Device is a PCI function as /sys/bus/pci/devices/BDF describes it. Each
// field names its file; optional ones are pointers, nil when the file is
// missing.
type Device struct {
	Address         Address
	Vendor          uint16     // vendor
	Device          uint16     // device
	SubsystemVendor uint16     // subsystem_vendor
	SubsystemDevice uint16     // subsystem_device
	Class           uint32     // class: base, sub-class, prog-if (0xCCSSPP)
	Driver          string     // basename of the driver link; "" for none
	DriverOverride  string     // driver_override; "" when unset ("(null)")
	IOMMUGroup      *int       // iommu_group link; nil: no IOMMU translates it
	NUMANode        *int       // numa_node; -1 when the platform has none
	Resources       []Resource // resource, unused entries left out
	SRIOV           *SRIOV     // sriov_*; nil unless an SR-IOV physical function
	PhysFn          *Address   // physfn link: this is a VF of that PF
	Upstream        *Address   // the bridge above, from where bus/pci/devices/BDF points; nil on a root bus
}

// IsBridge reports a PCI-to-PCI bridge (class 0x0604), the bridges the
// group rule leaves out when bound to pcieport.
func (d *Device) IsBridge() bool { return d.Class>>8 == 0x0604 }

// SRIOV holds a physical function's SR-IOV attributes.
type SRIOV struct {
	TotalVFs         int       // sriov_totalvfs
	NumVFs           int       // sriov_numvfs
	DriversAutoprobe *bool     // sriov_drivers_autoprobe
	VFs              []Address // virtfnN links, by N
}

// ErrNoDevice is wrapped when an address names no device.
var ErrNoDevice = errors.New("no such PCI device")

// Devices lists every PCI device, sorted by address. A device whose files
// cannot be read or parsed is still listed with what could be read; its
// errors are joined into err.
func (f *FS) Devices() ([]Device, error) {
	ents, err := os.ReadDir(f.Path("bus", "pci", "devices"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no PCI bus
	}
	if err != nil {
		return nil, fmt.Errorf("list PCI devices: %w", err)
	}
	var devs []Device
	var errs []error
	for _, e := range ents {
		a, err := ParseAddress(e.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("bus/pci/devices: %w", err))
			continue
		}
		d, err := f.readDevice(a)
		if err != nil {
			errs = append(errs, err)
		}
		devs = append(devs, d)
	}
	slices.SortFunc(devs, func(x, y Device) int { return compareAddress(x.Address, y.Address) })
	return devs, errors.Join(errs...)
}

// Device reads one device. A device that does not exist is ErrNoDevice; a
// broken attribute gives the device read so far and the error.
func (f *FS) Device(a Address) (Device, error) {
	if _, err := os.Stat(f.devPath(a)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Device{}, fmt.Errorf("%w: %s", ErrNoDevice, a)
		}
		return Device{}, fmt.Errorf("device %s: %w", a, err)
	}
	return f.readDevice(a)
}

func (f *FS) devPath(a Address, elem ...string) string {
	return f.Path(append([]string{"bus", "pci", "devices", a.String()}, elem...)...)
}

func compareAddress(x, y Address) int {
	kx := uint64(x.Domain)<<16 | uint64(x.Bus)<<8 | uint64(x.Device)<<3 | uint64(x.Function)
	ky := uint64(y.Domain)<<16 | uint64(y.Bus)<<8 | uint64(y.Device)<<3 | uint64(y.Function)
	switch {
	case kx < ky:
		return -1
	case kx > ky:
		return 1
	}
	return 0
}

// devDir reads one device directory. Its listing tells which files exist,
// sparing an open per missing attribute and a glob for virtfn links; when
// the listing fails (ents nil) every file is tried.
type devDir struct {
	path string
	ents []fs.DirEntry
}

func (d devDir) has(name string) bool {
	if d.ents == nil {
		return true
	}
	_, ok := slices.BinarySearchFunc(d.ents, name, func(e fs.DirEntry, n string) int { return strings.Compare(e.Name(), n) })
	return ok
}

func (d devDir) attr(name string) (string, bool, error) {
	if !d.has(name) {
		return "", false, nil
	}
	return readAttr(filepath.Join(d.path, name))
}

func (d devDir) file(name string) (string, bool, error) {
	if !d.has(name) {
		return "", false, nil
	}
	return readFile(filepath.Join(d.path, name))
}

func (d devDir) link(name string) (string, bool, error) {
	if !d.has(name) {
		return "", false, nil
	}
	return readLink(filepath.Join(d.path, name))
}

// readDevice reads every attribute it can, collecting errors per attribute.
func (f *FS) readDevice(a Address) (Device, error) {
	d := Device{Address: a}
	dir := devDir{path: f.devPath(a)}
	dir.ents, _ = os.ReadDir(dir.path)
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("device %s %s: %w", a, what, err))
	}
	ids := []struct {
		name string
		bits int
		set  func(uint64)
	}{
		{"vendor", 16, func(v uint64) { d.Vendor = uint16(v) }},
		{"device", 16, func(v uint64) { d.Device = uint16(v) }},
		{"subsystem_vendor", 16, func(v uint64) { d.SubsystemVendor = uint16(v) }},
		{"subsystem_device", 16, func(v uint64) { d.SubsystemDevice = uint16(v) }},
		{"class", 24, func(v uint64) { d.Class = uint32(v) }},
	}
	for _, id := range ids {
		s, ok, err := dir.attr(id.name)
		if err != nil {
			fail(id.name, err)
			continue
		}
		if !ok {
			continue
		}
		v, err := parseHexID(s, id.bits)
		if err != nil {
			fail(id.name, err)
			continue
		}
		id.set(v)
	}

	if drv, _, err := dir.link("driver"); err != nil {
		fail("driver", err)
	} else {
		d.Driver = drv
	}
	if s, _, err := dir.attr("driver_override"); err != nil {
		fail("driver_override", err)
	} else if s != "(null)" {
		d.DriverOverride = s
	}
	// A missing iommu_group means no IOMMU translates the device: no error.
	if t, ok, err := dir.link("iommu_group"); err != nil {
		fail("iommu_group", err)
	} else if ok {
		if g, err := parseGroupLink(t); err != nil {
			fail("iommu_group", err)
		} else {
			d.IOMMUGroup = &g
		}
	}
	if s, ok, err := dir.attr("numa_node"); err != nil {
		fail("numa_node", err)
	} else if ok {
		if n, err := parseNUMANode(s); err != nil {
			fail("numa_node", err)
		} else {
			d.NUMANode = &n
		}
	}
	if s, ok, err := dir.file("resource"); err != nil {
		fail("resource", err)
	} else if ok {
		if r, err := parseResource(s); err != nil {
			fail("resource", err)
		} else {
			d.Resources = r
		}
	}
	if pf, ok, err := dir.link("physfn"); err != nil {
		fail("physfn", err)
	} else if ok {
		if p, err := ParseAddress(pf); err != nil {
			fail("physfn", err)
		} else {
			d.PhysFn = &p
		}
	}
	if t, err := os.Readlink(f.devPath(a)); err == nil {
		if up, err := ParseAddress(filepath.Base(filepath.Dir(t))); err == nil {
			d.Upstream = &up
		}
	} // a root-bus device's parent is pciDDDD:BB; no link is no topology
	if s, err := readSRIOV(dir); err != nil {
		fail("sriov", err)
	} else {
		d.SRIOV = s
	}
	return d, errors.Join(errs...)
}

// readSRIOV reads a PF's attributes; nil when the device is no PF.
func readSRIOV(dir devDir) (*SRIOV, error) {
	total, ok, err := dir.attr("sriov_totalvfs")
	if err != nil || !ok {
		return nil, err
	}
	var s SRIOV
	if s.TotalVFs, err = parseDecimal(total); err != nil {
		return nil, fmt.Errorf("sriov_totalvfs: %w", err)
	}
	if v, ok, err := dir.attr("sriov_numvfs"); err != nil {
		return nil, err
	} else if ok {
		if s.NumVFs, err = parseDecimal(v); err != nil {
			return nil, fmt.Errorf("sriov_numvfs: %w", err)
		}
	}
	if v, ok, err := dir.attr("sriov_drivers_autoprobe"); err != nil {
		return nil, err
	} else if ok {
		b, err := parseBool01(v)
		if err != nil {
			return nil, fmt.Errorf("sriov_drivers_autoprobe: %w", err)
		}
		s.DriversAutoprobe = &b
	}
	names := make([]string, 0, len(dir.ents))
	for _, e := range dir.ents {
		names = append(names, e.Name())
	}
	if dir.ents == nil {
		links, err := filepath.Glob(filepath.Join(dir.path, "virtfn*"))
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			names = append(names, filepath.Base(l))
		}
	}
	type vf struct {
		n int
		a Address
	}
	var vfs []vf
	for _, name := range names {
		num, isVF := strings.CutPrefix(name, "virtfn")
		n, err := parseDecimal(num)
		if !isVF || err != nil {
			continue // not a virtfnN link
		}
		t, _, err := dir.link(name)
		if err != nil {
			return nil, err
		}
		va, err := ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("virtfn%d: %w", n, err)
		}
		vfs = append(vfs, vf{n, va})
	}
	slices.SortFunc(vfs, func(x, y vf) int { return x.n - y.n })
	for _, v := range vfs {
		s.VFs = append(s.VFs, v.a)
	}
	return &s, nil
}
