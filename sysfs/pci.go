package sysfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
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
	// Config is read from config for bridges only: their port type and ACS
	// decide how far groups reach. Endpoints are left alone, since a config
	// read reaches the hardware. nil for endpoints, or a bridge without a
	// readable config file.
	Config *ConfigInfo
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

// Devices lists every PCI device with all its attributes, sorted by
// address. A device whose files cannot be read or parsed is still listed
// with what could be read; its errors are joined into err.
func (f *FS) Devices() ([]Device, error) { return f.devices(true) }

// Scan lists every PCI device like Devices, reading per device only what
// the group tree needs: the ids and driver (one read of uevent), the
// iommu_group and upstream links, and a bridge's config. DriverOverride,
// NUMANode, Resources, SRIOV and PhysFn are left unset; Details fills them
// for the devices that need them. On /sys this is a third of the syscalls
// of Devices.
func (f *FS) Scan() ([]Device, error) { return f.devices(false) }

func (f *FS) devices(details bool) ([]Device, error) {
	bus := openDir(f.Path("bus", "pci", "devices"))
	defer bus.close()
	root := openDir(f.Path())
	defer root.close()
	ents, err := os.ReadDir(bus.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no PCI bus
	}
	if err != nil {
		return nil, fmt.Errorf("list PCI devices: %w", err)
	}
	devs := make([]Device, len(ents))
	errs := make([]error, len(ents))
	ok := make([]bool, len(ents))
	read := func(i int, buf []byte) {
		a, err := ParseAddress(ents[i].Name())
		if err != nil {
			errs[i] = fmt.Errorf("bus/pci/devices: %w", err)
			return
		}
		d := &devs[i]
		*d, errs[i] = f.summary(bus, root, a, buf)
		if details {
			errs[i] = errors.Join(errs[i], f.Details(d))
		}
		ok[i] = true
	}
	// Discovery is syscall-bound; a few workers spread the syscalls over
	// the CPUs (on this project's 2 shared cores: 6% less time than one).
	// Each writes only its own indexes and reads into its own buffer.
	workers := min(runtime.GOMAXPROCS(0), 8, len(ents)/64+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var buf [maxAttr]byte
			for i := w; i < len(ents); i += workers {
				read(i, buf[:])
			}
		})
	}
	wg.Wait()
	n := 0
	for i := range devs {
		if ok[i] {
			devs[n] = devs[i]
			n++
		}
	}
	devs = devs[:n:n]
	slices.SortFunc(devs, func(x, y Device) int { return compareAddress(x.Address, y.Address) })
	return devs, errors.Join(errs...)
}

// Device reads one device with all its attributes. A device that does not
// exist is ErrNoDevice; a broken attribute gives the device read so far and
// the error.
func (f *FS) Device(a Address) (Device, error) { return f.device(a, true) }

// ScanDevice reads one device as Scan does, without Details.
func (f *FS) ScanDevice(a Address) (Device, error) { return f.device(a, false) }

func (f *FS) device(a Address, details bool) (Device, error) {
	if _, err := os.Stat(f.devPath(a)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Device{}, fmt.Errorf("%w: %s", ErrNoDevice, a)
		}
		return Device{}, fmt.Errorf("device %s: %w", a, err)
	}
	bus := openDir(f.Path("bus", "pci", "devices"))
	defer bus.close()
	root := openDir(f.Path())
	defer root.close()
	var buf [maxAttr]byte
	d, err := f.summary(bus, root, a, buf[:])
	if details {
		err = errors.Join(err, f.Details(&d))
	}
	return d, err
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

// summary reads what Scan promises, with no per-device directory handle
// and no lookup of a file that is usually missing. The ids and the driver
// come from one read of uevent; the separate files are read only where
// uevent lacks them. bus is the open bus/pci/devices, root the open sysfs
// root; buf is the caller's, reused across devices.
func (f *FS) summary(bus, root *dir, a Address, buf []byte) (Device, error) {
	d := Device{Address: a}
	bdf := a.String()
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("device %s %s: %w", a, what, err))
	}
	// The bus entry links to the device under its parent: a bridge's
	// address, or pciDDDD:BB on a root bus (no Upstream). A tree that is no
	// link has no topology to give. The device's files are then reached by
	// the link's target from the root, sparing the kernel a walk through
	// the link for each: it builds a sysfs link's target anew each time.
	at, dev := bus, bdf
	if t, ok, err := bus.target(bdf); err == nil && ok {
		if up, err := ParseAddress(filepath.Base(filepath.Dir(t))); err == nil {
			d.Upstream = &up
		}
		if p := filepath.Join("bus", "pci", "devices", t); filepath.IsLocal(p) && filepath.Base(p) == bdf {
			at, dev = root, p
		}
	}
	idsRead := false
	if b, ok, err := at.read(dev+"/uevent", buf, false); err != nil {
		fail("uevent", err)
	} else if ok {
		ids, found, err := parsePCIUevent(string(b))
		if err != nil {
			fail("uevent", err)
		} else if found {
			d.Vendor, d.Device, d.SubsystemVendor, d.SubsystemDevice, d.Class = ids.vendor, ids.device, ids.subVendor, ids.subDevice, ids.class
			d.Driver = ids.driver
			idsRead = true
		}
	}
	if !idsRead {
		f.readIDs(at, dev, &d, buf, fail)
	}
	// A missing iommu_group means no IOMMU translates the device: no error.
	if t, ok, err := at.link(dev + "/iommu_group"); err != nil {
		fail("iommu_group", err)
	} else if ok {
		if g, err := parseGroupLink(t); err != nil {
			fail("iommu_group", err)
		} else {
			d.IOMMUGroup = &g
		}
	}
	if d.IsBridge() {
		var cfg [configSize]byte
		if b, ok, err := at.read(dev+"/config", cfg[:], false); err != nil {
			fail("config", err)
		} else if ok {
			if ci, err := ParseConfig(b); err != nil {
				fail("config", err)
			} else {
				d.Config = &ci
			}
		}
	}
	return d, errors.Join(errs...)
}

// readIDs reads the ids from their own files and the driver from its link,
// for a uevent without them: dev's files under at.
func (f *FS) readIDs(at *dir, dev string, d *Device, buf []byte, fail func(string, error)) {
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
		b, ok, err := at.read(dev+"/"+id.name, buf, false)
		if err != nil {
			fail(id.name, err)
			continue
		}
		if !ok {
			continue
		}
		v, err := parseHexID(strings.TrimSpace(string(b)), id.bits)
		if err != nil {
			fail(id.name, err)
			continue
		}
		id.set(v)
	}
	if drv, _, err := at.link(dev + "/driver"); err != nil {
		fail("driver", err)
	} else {
		d.Driver = drv
	}
}

// Details reads the attributes Scan leaves out into d: DriverOverride,
// NUMANode, Resources, SRIOV and PhysFn, replacing what d had of them. The
// errors are d's alone.
func (f *FS) Details(d *Device) error {
	a := d.Address
	dir := openDir(f.devPath(a))
	defer dir.close()
	var buf [maxAttr]byte
	attr := func(name string) (string, bool, error) {
		b, ok, err := dir.read(name, buf[:], false)
		return strings.TrimSpace(string(b)), ok, err
	}
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("device %s %s: %w", a, what, err))
	}
	d.DriverOverride, d.NUMANode, d.Resources, d.SRIOV, d.PhysFn = "", nil, nil, nil, nil
	if s, _, err := attr("driver_override"); err != nil {
		fail("driver_override", err)
	} else if s != "(null)" {
		d.DriverOverride = s
	}
	if s, ok, err := attr("numa_node"); err != nil {
		fail("numa_node", err)
	} else if ok {
		if n, err := parseNUMANode(s); err != nil {
			fail("numa_node", err)
		} else {
			d.NUMANode = &n
		}
	}
	if b, ok, err := dir.read("resource", buf[:], true); err != nil {
		fail("resource", err)
	} else if ok {
		if r, err := parseResource(string(b)); err != nil {
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
	if s, err := readSRIOV(dir, attr); err != nil {
		fail("sriov", err)
	} else {
		d.SRIOV = s
	}
	return errors.Join(errs...)
}

// readSRIOV reads a PF's attributes; nil when the device is no PF.
func readSRIOV(dir *dir, attr func(string) (string, bool, error)) (*SRIOV, error) {
	total, ok, err := attr("sriov_totalvfs")
	if err != nil || !ok {
		return nil, err
	}
	var s SRIOV
	if s.TotalVFs, err = parseDecimal(total); err != nil {
		return nil, fmt.Errorf("sriov_totalvfs: %w", err)
	}
	if v, ok, err := attr("sriov_numvfs"); err != nil {
		return nil, err
	} else if ok {
		if s.NumVFs, err = parseDecimal(v); err != nil {
			return nil, fmt.Errorf("sriov_numvfs: %w", err)
		}
	}
	if v, ok, err := attr("sriov_drivers_autoprobe"); err != nil {
		return nil, err
	} else if ok {
		b, err := parseBool01(v)
		if err != nil {
			return nil, fmt.Errorf("sriov_drivers_autoprobe: %w", err)
		}
		s.DriversAutoprobe = &b
	}
	names, err := dir.list()
	if err != nil {
		return nil, err
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
