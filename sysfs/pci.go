package sysfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
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
func (f *FS) Devices() ([]Device, error) { return f.devices(context.Background(), true) }

// DevicesContext is Devices, stopping with ctx's error when ctx is done.
func (f *FS) DevicesContext(ctx context.Context) ([]Device, error) { return f.devices(ctx, true) }

// Scan lists every PCI device like Devices, reading per device only what
// the group tree needs: the ids and driver (one read of uevent), the
// iommu_group and upstream links, and a bridge's config. DriverOverride,
// NUMANode, Resources, SRIOV and PhysFn are left unset; Details fills them
// for the devices that need them. On /sys this is a third of the syscalls
// of Devices.
func (f *FS) Scan() ([]Device, error) { return f.devices(context.Background(), false) }

// ScanContext is Scan, stopping with ctx's error when ctx is done: it is
// checked before each device.
func (f *FS) ScanContext(ctx context.Context) ([]Device, error) { return f.devices(ctx, false) }

func (f *FS) devices(ctx context.Context, details bool) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list PCI devices: %w", err)
	}
	root, err := f.root()
	if err != nil {
		return nil, err
	}
	defer root.close()
	names, ok, err := root.list(busDevices)
	if !ok && err == nil {
		return nil, nil // no PCI bus
	}
	if err != nil {
		return nil, fmt.Errorf("list PCI devices: %w", err)
	}
	bus, err := root.sub(busDevices)
	if err != nil {
		return nil, fmt.Errorf("list PCI devices: %w", err)
	}
	defer bus.close()
	devs := make([]Device, len(names))
	errs := make([]error, len(names))
	ok2 := make([]bool, len(names))
	read := func(i int, buf []byte) {
		a, err := ParseAddress(names[i])
		if err != nil {
			errs[i] = fmt.Errorf("bus/pci/devices: %w", err)
			return
		}
		d := &devs[i]
		*d, errs[i] = f.summary(root, bus, a, buf)
		if details {
			errs[i] = errors.Join(errs[i], f.details(root, bus, d, buf))
		}
		ok2[i] = true
	}
	if err := forEach(ctx, len(names), read); err != nil {
		return nil, fmt.Errorf("list PCI devices: %w", err)
	}
	n := 0
	for i := range devs {
		if ok2[i] {
			devs[n] = devs[i]
			n++
		}
	}
	devs = devs[:n:n]
	slices.SortFunc(devs, func(x, y Device) int { return compareAddress(x.Address, y.Address) })
	return devs, errors.Join(errs...)
}

// busDevices is where every PCI device has its entry, a link to where it
// sits in the device tree.
const busDevices = "bus/pci/devices"

// Device reads one device with all its attributes. A device that does not
// exist is ErrNoDevice; a broken attribute gives the device read so far and
// the error.
func (f *FS) Device(a Address) (Device, error) { return f.device(a, true) }

// ScanDevice reads one device as Scan does, without Details.
func (f *FS) ScanDevice(a Address) (Device, error) { return f.device(a, false) }

func (f *FS) device(a Address, details bool) (Device, error) {
	root, err := f.root()
	if err != nil {
		return Device{}, err
	}
	defer root.close()
	bus, err := root.sub(busDevices)
	if errors.Is(err, fs.ErrNotExist) {
		return Device{}, fmt.Errorf("%w: %s", ErrNoDevice, a)
	}
	if err != nil {
		return Device{}, fmt.Errorf("device %s: %w", a, err)
	}
	defer bus.close()
	if ok, err := bus.exists(a.String()); err != nil {
		return Device{}, fmt.Errorf("device %s: %w", a, err)
	} else if !ok {
		return Device{}, fmt.Errorf("%w: %s", ErrNoDevice, a)
	}
	// A link left behind by a removal leads nowhere.
	if rel, _, err := devRel(bus, a); err == nil && !root.isDir(rel) {
		return Device{}, fmt.Errorf("%w: %s", ErrNoDevice, a)
	}
	buf := make([]byte, bufSize)
	d, err := f.summary(root, bus, a, buf)
	if details {
		err = errors.Join(err, f.details(root, bus, &d, buf))
	}
	return d, err
}

// devRel finds device a's directory, relative to the root, from its
// bus/pci/devices entry: a link to the device under its parent, a bridge
// or pciDDDD:BB on a root bus, which gives up (nil on a root bus). A tree
// whose entry is a directory, not a link, has its files there and no
// topology to give. A link that leaves the root, or names another device,
// is an error: the device's files are then not read.
func devRel(bus *dir, a Address) (rel string, up *Address, err error) {
	bdf := a.String()
	p, ok, err := bus.resolve(bdf)
	switch {
	case errors.Is(err, syscall.EINVAL): // no link
		return filepath.Join(busDevices, bdf), nil, nil
	case err != nil:
		return "", nil, err
	case !ok:
		return "", nil, fmt.Errorf("%w: %s", ErrNoDevice, a)
	case filepath.Base(p) != bdf:
		return "", nil, fmt.Errorf("%w: bus/pci/devices/%s links to %s", ErrName, bdf, quote(filepath.Base(p)))
	}
	if u, err := ParseAddress(filepath.Base(filepath.Dir(p))); err == nil {
		up = &u
	}
	return p, up, nil
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
// uevent lacks them. The device's files are reached by the bus link's
// target from the root, sparing the kernel a walk through the link for
// each: it builds a sysfs link's target anew each time. buf is the
// caller's, reused across devices.
func (f *FS) summary(root, bus *dir, a Address, buf []byte) (Device, error) {
	d := Device{Address: a}
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("device %s %s: %w", a, what, err))
	}
	dev, up, err := devRel(bus, a)
	if errors.Is(err, ErrNoDevice) {
		return d, nil // gone since it was listed: a hot unplug
	}
	if err != nil {
		fail("bus/pci/devices link", err)
		return d, errors.Join(errs...)
	}
	d.Upstream = up
	idsRead := false
	if b, ok, err := root.read(dev+"/uevent", buf, maxAttr); err != nil {
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
		readIDs(root, dev, &d, buf, fail)
	}
	// A missing iommu_group means no IOMMU translates the device: no error.
	if p, ok, err := root.resolve(dev + "/iommu_group"); err != nil {
		fail("iommu_group", err)
	} else if ok {
		if g, err := groupOfPath(p); err != nil {
			fail("iommu_group", err)
		} else {
			d.IOMMUGroup = &g
		}
	}
	if d.IsBridge() {
		var cfg [configSize + 1]byte
		if b, ok, err := root.read(dev+"/config", cfg[:], configSize); err != nil {
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

// groupOfPath takes where an iommu_group link points, relative to the
// root, and returns the group number: the kernel's links all lead to
// kernel/iommu_groups/N.
func groupOfPath(p string) (int, error) {
	n, ok := strings.CutPrefix(p, "kernel/iommu_groups/")
	if !ok {
		return 0, fmt.Errorf("%w: link to %s, not into kernel/iommu_groups", ErrName, quote(p))
	}
	g, err := parseDecimal(n)
	if err != nil {
		return 0, fmt.Errorf("%w: group %w", ErrName, err)
	}
	return g, nil
}

// driver returns the driver device a is bound to, "" for none.
func (f *FS) driver(a Address) (string, error) {
	root, err := f.root()
	if err != nil {
		return "", err
	}
	defer root.close()
	bus, err := root.sub(busDevices)
	if err != nil {
		return "", err
	}
	defer bus.close()
	rel, _, err := devRel(bus, a)
	if err != nil {
		return "", err
	}
	return driverOf(root, rel+"/driver")
}

// driverOf returns the basename of the driver link at rel, checked as a
// name; "" when there is none.
func driverOf(root *dir, rel string) (string, error) {
	p, ok, err := root.resolve(rel)
	if err != nil || !ok {
		return "", err
	}
	drv := filepath.Base(p)
	if err := checkName("driver", drv); err != nil {
		return "", err
	}
	return drv, nil
}

// readIDs reads the ids from their own files and the driver from its link,
// for a uevent without them: dev's files below root.
func readIDs(root *dir, dev string, d *Device, buf []byte, fail func(string, error)) {
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
		s, ok, err := root.attr(dev+"/"+id.name, buf)
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
	if drv, err := driverOf(root, dev+"/driver"); err != nil {
		fail("driver", err)
	} else {
		d.Driver = drv
	}
}

// Details reads the attributes Scan leaves out into d: DriverOverride,
// NUMANode, Resources, SRIOV and PhysFn, replacing what d had of them. The
// errors are d's alone.
func (f *FS) Details(d *Device) error {
	root, err := f.root()
	if err != nil {
		return err
	}
	defer root.close()
	bus, err := root.sub(busDevices)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Address, err)
	}
	defer bus.close()
	return f.details(root, bus, d, make([]byte, bufSize))
}

func (f *FS) details(root, bus *dir, d *Device, buf []byte) error {
	a := d.Address
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("device %s %s: %w", a, what, err))
	}
	d.DriverOverride, d.NUMANode, d.Resources, d.SRIOV, d.PhysFn = "", nil, nil, nil, nil
	rel, _, err := devRel(bus, a)
	if errors.Is(err, ErrNoDevice) {
		return nil // gone since it was listed
	}
	if err != nil {
		fail("bus/pci/devices link", err)
		return errors.Join(errs...)
	}
	// The device's own directory: lookups below it cannot leave it.
	dir, err := root.sub(rel)
	if err != nil {
		fail("directory", err)
		return errors.Join(errs...)
	}
	defer dir.close()
	attr := func(name string) (string, bool, error) { return dir.attr(name, buf) }
	if s, _, err := attr("driver_override"); err != nil {
		fail("driver_override", err)
	} else if s != "(null)" && s != "" {
		if err := checkName("driver_override", s); err != nil {
			fail("driver_override", err)
		} else {
			d.DriverOverride = s
		}
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
	if b, ok, err := dir.read("resource", buf, maxFile); err != nil {
		fail("resource", err)
	} else if ok {
		if r, err := parseResource(string(b)); err != nil {
			fail("resource", err)
		} else {
			d.Resources = r
		}
	}
	if p, ok, err := dir.resolve("physfn"); err != nil {
		fail("physfn", err)
	} else if ok {
		if pf, err := ParseAddress(filepath.Base(p)); err != nil {
			fail("physfn", err)
		} else {
			d.PhysFn = &pf
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
	names, _, err := dir.list(".")
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
		p, _, err := dir.resolve(name)
		if err != nil {
			return nil, err
		}
		va, err := ParseAddress(filepath.Base(p))
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

// forEach calls read(i, buf) for every i in [0, n) and returns ctx's error
// if it ended first. Discovery is syscall-bound; a few workers spread the
// syscalls over the CPUs (on this project's 2 shared cores: 6% less time
// than one). Each worker has its own buffer, and read must write only what
// belongs to its index.
func forEach(ctx context.Context, n int, read func(i int, buf []byte)) error {
	workers := min(runtime.GOMAXPROCS(0), 8, n/64+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, bufSize)
			for i := w; i < n && ctx.Err() == nil; i += workers {
				read(i, buf)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}
