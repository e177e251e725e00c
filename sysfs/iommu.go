package sysfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

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
	VTD     *hwinfo.VTD   // intel-iommu/{cap,ecap}, decoded; nil unless VT-d
	AMD     *hwinfo.AMDVi // amd-iommu/{cap,features}, decoded; nil unless AMD-Vi
	Devices []Address     // devices/*: the PCI devices it translates
}

// ErrNoGroup is wrapped when an iommu_group does not exist, or a device has
// none.
var ErrNoGroup = errors.New("no such iommu_group")

// IOMMUs lists /sys/class/iommu by name. None (or no directory) means the
// host runs without an IOMMU, which is not an error.
func (f *FS) IOMMUs() ([]IOMMU, error) {
	root, err := f.root()
	if err != nil {
		return nil, err
	}
	defer root.close()
	names, _, err := root.list("class/iommu")
	if err != nil {
		return nil, fmt.Errorf("list IOMMUs: %w", err)
	}
	var out []IOMMU
	var errs []error
	buf := make([]byte, bufSize)
	for _, name := range names {
		if err := checkName("class/iommu entry", name); err != nil {
			errs = append(errs, err)
			continue
		}
		u, err := readIOMMU(root, name, buf)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, u)
	}
	return out, errors.Join(errs...)
}

func readIOMMU(root *dir, name string, buf []byte) (IOMMU, error) {
	u := IOMMU{Name: name, Kind: KindUnknown}
	var errs []error
	// class/iommu/NAME links to the unit under devices/; a tree may have
	// the unit there itself.
	unit, _, err := root.resolve(filepath.Join("class", "iommu", name))
	switch {
	case errors.Is(err, syscall.EINVAL):
		unit = filepath.Join("class", "iommu", name)
	case err != nil:
		return u, fmt.Errorf("iommu %s: %w", name, err)
	}
	switch {
	case root.isDir(unit + "/intel-iommu"):
		u.Kind = KindVTD
		c, okc, err := root.attr(unit+"/intel-iommu/cap", buf)
		if err != nil {
			errs = append(errs, err)
		}
		e, oke, err2 := root.attr(unit+"/intel-iommu/ecap", buf)
		if err2 != nil {
			errs = append(errs, err2)
		}
		if okc && oke && err == nil && err2 == nil {
			v, err := hwinfo.ParseVTDRegs(shorten(c), shorten(e))
			if err != nil {
				errs = append(errs, err)
			} else {
				u.VTD = &v
			}
		}
	case root.isDir(unit + "/amd-iommu"):
		u.Kind = KindAMDVi
		c, okc, err := root.attr(unit+"/amd-iommu/cap", buf)
		if err != nil {
			errs = append(errs, err)
		}
		f, okf, err2 := root.attr(unit+"/amd-iommu/features", buf)
		if err2 != nil {
			errs = append(errs, err2)
		}
		if okc && okf && err == nil && err2 == nil {
			a, err := hwinfo.ParseAMDViRegs(shorten(c), shorten(f))
			if err != nil {
				errs = append(errs, err)
			} else {
				u.AMD = &a
			}
		}
	case strings.HasPrefix(name, "smmu3."):
		u.Kind = KindSMMUv3
	}
	names, _, err := root.list(unit + "/devices")
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range names {
		if a, err := ParseAddress(n); err == nil {
			u.Devices = append(u.Devices, a)
		} // other buses' devices are not ours to list
	}
	slices.SortFunc(u.Devices, compareAddress)
	if err := errors.Join(errs...); err != nil {
		return u, fmt.Errorf("iommu %s: %w", name, err)
	}
	return u, nil
}

// shorten cuts a register's text to what a 64-bit hex number could be, so
// that an error quotes no more.
func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Group is /sys/kernel/iommu_groups/N.
type Group struct {
	Number          int
	Type            string           // type: "DMA", "DMA-FQ", "identity", "blocked"; "" if missing
	Devices         []string         // devices/*: names, PCI addresses for PCI devices
	ReservedRegions []ReservedRegion // reserved_regions
	// DevicesErr says why devices/ could not be read, or held a name
	// that is no name; nil when it was read whole. Membership is then
	// unknown, and the group not viable.
	DevicesErr error
}

// Groups lists every iommu_group by number; a broken group is listed with
// what could be read and its error joined.
func (f *FS) Groups() ([]Group, error) { return f.GroupsContext(context.Background()) }

// GroupsContext is Groups, stopping with ctx's error when ctx is done: it
// is checked before each group.
func (f *FS) GroupsContext(ctx context.Context) ([]Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list iommu_groups: %w", err)
	}
	root, err := f.root()
	if err != nil {
		return nil, err
	}
	defer root.close()
	names, ok, err := root.list(groupsDir)
	if !ok {
		if err != nil {
			return nil, fmt.Errorf("list iommu_groups: %w", err)
		}
		return nil, nil
	}
	// Read by forEach's workers, each writing only its own indexes.
	groups := make([]Group, len(names))
	errs := make([]error, len(names))
	done := make([]bool, len(names))
	read := func(i int, buf []byte) {
		n, err := parseDecimal(names[i])
		if err != nil {
			errs[i] = fmt.Errorf("iommu_groups: %w", err)
			return
		}
		groups[i], errs[i] = readGroup(root, n, buf)
		done[i] = true
	}
	if err := forEach(ctx, len(names), read); err != nil {
		return nil, fmt.Errorf("list iommu_groups: %w", err)
	}
	out := groups[:0]
	for i, g := range groups {
		if done[i] {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(x, y Group) int { return x.Number - y.Number })
	return out, errors.Join(errs...)
}

const groupsDir = "kernel/iommu_groups"

// Group reads iommu_group n; ErrNoGroup if it does not exist.
func (f *FS) Group(n int) (Group, error) {
	root, err := f.root()
	if err != nil {
		return Group{}, err
	}
	defer root.close()
	if !root.isDir(groupRel(n)) {
		return Group{}, fmt.Errorf("%w: %d", ErrNoGroup, n)
	}
	return readGroup(root, n, nil)
}

func groupRel(n int, elem ...string) string {
	return filepath.Join(append([]string{groupsDir, strconv.Itoa(n)}, elem...)...)
}

func readGroup(root *dir, n int, buf []byte) (Group, error) {
	g := Group{Number: n}
	var errs []error
	if t, ok, err := root.attr(groupRel(n, "type"), buf); err != nil {
		errs = append(errs, err)
	} else if ok {
		if err := checkName("type", t); err != nil {
			errs = append(errs, err)
		} else {
			g.Type = t
		}
	}
	var derr error
	g.Devices, derr = groupMembers(root, n)
	if derr != nil {
		errs = append(errs, derr)
		g.DevicesErr = fmt.Errorf("iommu_group %d: %w", n, derr)
	}
	if b, ok, err := root.read(groupRel(n, "reserved_regions"), buf, maxFile); err != nil {
		errs = append(errs, err)
	} else if ok {
		if r, err := parseReservedRegions(string(b)); err != nil {
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

// groupMembers lists group n's devices/ by name. A missing devices/ is an
// error too: every group the kernel makes has one, and a group whose
// members are unknown must not look empty, and so viable. A name that is
// no name is left out, with its error.
func groupMembers(root *dir, n int) ([]string, error) {
	names, ok, err := root.list(groupRel(n, "devices"))
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("devices: %w", fs.ErrNotExist)
	}
	var errs []error
	out := names[:0]
	for _, name := range names {
		if err := checkName("devices entry", name); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, name)
	}
	return out, errors.Join(errs...)
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
	if f.proc == "" {
		return nil, nil
	}
	proc, err := openRoot(f.proc)
	if err != nil {
		return nil, fmt.Errorf("procfs root: %w", err)
	}
	defer proc.close()
	b, ok, err := proc.read("cmdline", nil, maxFile)
	if err != nil || !ok {
		return nil, err
	}
	return parseCmdline(string(b)), nil
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
	if err := checkName("module", name); err != nil {
		return m, err
	}
	root, err := f.root()
	if err != nil {
		return m, err
	}
	defer root.close()
	dir := filepath.Join("module", name)
	if !root.isDir(dir) {
		return m, nil
	}
	m.Present = true
	params, _, err := root.list(dir + "/parameters")
	if err != nil {
		return m, fmt.Errorf("module %s: %w", name, err)
	}
	var errs []error
	buf := make([]byte, bufSize)
	for _, p := range params {
		if err := checkName("parameter", p); err != nil {
			errs = append(errs, err)
			continue
		}
		v, ok, err := root.attr(dir+"/parameters/"+p, buf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			if m.Params == nil {
				m.Params = map[string]string{}
			}
			m.Params[p] = v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return m, fmt.Errorf("module %s: %w", name, err)
	}
	return m, nil
}
