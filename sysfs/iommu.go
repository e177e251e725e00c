package sysfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
)

// Kind is an IOMMU's architecture.
type Kind string

// Kinds recognised from /sys/class/iommu.
const (
	KindUnknown Kind = "unknown"
	KindVTD     Kind = "intel-vt-d"  // dmarN with intel-iommu/
	KindAMDVi   Kind = "amd-vi"      // ivhdN with amd-iommu/
	KindSMMUv3  Kind = "arm-smmu-v3" // smmu3.0x<base>
)

// IOMMU is one unit of /sys/class/iommu.
type IOMMU struct {
	Name    string
	Kind    Kind
	VTD     *hwinfo.VTD // intel-iommu/{cap,ecap}, decoded; nil unless VT-d
	Devices []Address   // devices/*: the PCI devices it translates
}

// ErrNoGroup is wrapped when an iommu_group does not exist, or a device has
// none.
var ErrNoGroup = errors.New("no such iommu_group")

// IOMMUs lists /sys/class/iommu by name. None (or no directory) means the
// host runs without an IOMMU, which is not an error.
func (f *FS) IOMMUs() ([]IOMMU, error) {
	ents, err := os.ReadDir(f.Path("class", "iommu"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list IOMMUs: %w", err)
	}
	var out []IOMMU
	var errs []error
	for _, e := range ents {
		u, err := f.readIOMMU(e.Name())
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, u)
	}
	return out, errors.Join(errs...)
}

func (f *FS) readIOMMU(name string) (IOMMU, error) {
	u := IOMMU{Name: name, Kind: KindUnknown}
	dir := func(elem ...string) string { return f.Path(append([]string{"class", "iommu", name}, elem...)...) }
	var errs []error
	switch {
	case isDir(dir("intel-iommu")):
		u.Kind = KindVTD
		c, okc, err := readAttr(dir("intel-iommu", "cap"))
		if err != nil {
			errs = append(errs, err)
		}
		e, oke, err2 := readAttr(dir("intel-iommu", "ecap"))
		if err2 != nil {
			errs = append(errs, err2)
		}
		if okc && oke && err == nil && err2 == nil {
			v, err := hwinfo.ParseVTDRegs(c, e)
			if err != nil {
				errs = append(errs, err)
			} else {
				u.VTD = &v
			}
		}
	case isDir(dir("amd-iommu")):
		u.Kind = KindAMDVi
	case strings.HasPrefix(name, "smmu3."):
		u.Kind = KindSMMUv3
	}
	ents, err := os.ReadDir(dir("devices"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if a, err := ParseAddress(e.Name()); err == nil {
			u.Devices = append(u.Devices, a)
		} // other buses' devices are not ours to list
	}
	slices.SortFunc(u.Devices, compareAddress)
	if err := errors.Join(errs...); err != nil {
		return u, fmt.Errorf("iommu %s: %w", name, err)
	}
	return u, nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// Group is /sys/kernel/iommu_groups/N.
type Group struct {
	Number          int
	Type            string           // type: "DMA", "DMA-FQ", "identity", "blocked"; "" if missing
	Devices         []string         // devices/*: names, PCI addresses for PCI devices
	ReservedRegions []ReservedRegion // reserved_regions
}

// Groups lists every iommu_group by number; a broken group is listed with
// what could be read and its error joined.
func (f *FS) Groups() ([]Group, error) {
	ents, err := os.ReadDir(f.Path("kernel", "iommu_groups"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list iommu_groups: %w", err)
	}
	var out []Group
	var errs []error
	for _, e := range ents {
		n, err := parseDecimal(e.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("iommu_groups: %w", err))
			continue
		}
		g, err := f.readGroup(n)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(x, y Group) int { return x.Number - y.Number })
	return out, errors.Join(errs...)
}

// Group reads iommu_group n; ErrNoGroup if it does not exist.
func (f *FS) Group(n int) (Group, error) {
	if !isDir(f.groupPath(n)) {
		return Group{}, fmt.Errorf("%w: %d", ErrNoGroup, n)
	}
	return f.readGroup(n)
}

func (f *FS) groupPath(n int, elem ...string) string {
	return f.Path(append([]string{"kernel", "iommu_groups", fmt.Sprint(n)}, elem...)...)
}

func (f *FS) readGroup(n int) (Group, error) {
	g := Group{Number: n}
	var errs []error
	if t, _, err := readAttr(f.groupPath(n, "type")); err != nil {
		errs = append(errs, err)
	} else {
		g.Type = t
	}
	ents, err := os.ReadDir(f.groupPath(n, "devices"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		g.Devices = append(g.Devices, e.Name())
	}
	if s, ok, err := readFile(f.groupPath(n, "reserved_regions")); err != nil {
		errs = append(errs, err)
	} else if ok {
		if r, err := parseReservedRegions(s); err != nil {
			errs = append(errs, err)
		} else {
			g.ReservedRegions = r
		}
	}
	if err := errors.Join(errs...); err != nil {
		return g, fmt.Errorf("iommu_group %d: %w", n, err)
	}
	return g, nil
}

// Cmdline is the kernel command line, split into parameters.
type Cmdline []string

// Lookup returns the value of the last "key=value" (or bare "key", value "")
// for key, as the kernel lets a later parameter win.
func (c Cmdline) Lookup(key string) (value string, ok bool) {
	for _, p := range c {
		k, v, _ := strings.Cut(p, "=")
		if k == key {
			value, ok = v, true
		}
	}
	return value, ok
}

// Cmdline reads /proc/cmdline under the proc root; nil without one or when
// the file is missing.
func (f *FS) Cmdline() (Cmdline, error) {
	p := f.procPath("cmdline")
	if p == "" {
		return nil, nil
	}
	s, ok, err := readFile(p)
	if err != nil || !ok {
		return nil, err
	}
	return parseCmdline(s), nil
}

// PassthroughModules names the modules whose presence the agent reports.
func PassthroughModules() []string {
	return []string{"vfio", "vfio_pci", "vfio_pci_core", "vfio_iommu_type1", "iommufd"}
}

// Module is /sys/module/NAME: present when loaded or built in with
// parameters, with its parameters' values.
type Module struct {
	Name    string
	Present bool
	Params  map[string]string // parameters/*
}

// Module reads /sys/module/name; a missing module is Present false.
func (f *FS) Module(name string) (Module, error) {
	m := Module{Name: name}
	if !isDir(f.Path("module", name)) {
		return m, nil
	}
	m.Present = true
	ents, err := os.ReadDir(f.Path("module", name, "parameters"))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("module %s: %w", name, err)
	}
	var errs []error
	for _, e := range ents {
		v, ok, err := readAttr(f.Path("module", name, "parameters", e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			if m.Params == nil {
				m.Params = map[string]string{}
			}
			m.Params[e.Name()] = v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return m, fmt.Errorf("module %s: %w", name, err)
	}
	return m, nil
}
