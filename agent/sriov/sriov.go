// Package sriov creates, finds and configures SR-IOV virtual functions: the
// VF count through a PF's sriov_numvfs, topology through the virtfnN and
// physfn links, and each VF's MAC, VLAN, trust, spoof check, link state and
// rate through netlink on the PF's netdev.
//
// Reads go through a sysfs.FS and writes through a sysfs.Writer, both
// rooted anywhere, and netlink through the narrow LinkOps, so tests run on a
// fake tree and a fake link (package sriovtest) and the same code runs on
// the host. A bad request is refused (ErrInvalid, ErrNotCapable) before
// anything is written.
package sriov

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Errors of the PF and VF lookups and of Disable.
var (
	ErrNotCapable = errors.New("device is not an SR-IOV physical function")
	ErrNotVF      = errors.New("device is not an SR-IOV virtual function")
	ErrNoLink     = errors.New("physical function has no network interface")
	ErrInUse      = errors.New("virtual function in use")
)

// Options configures New.
type Options struct {
	FS     *sysfs.FS    // where devices are read; required
	Writer sysfs.Writer // where sriov_* attributes are written; nil: the files under FS
	Links  LinkOps      // netlink on the PFs' namespace; nil: configs are not read, Set fails
}

// Manager enables, lists and configures VFs of one host.
type Manager struct {
	fs    *sysfs.FS
	w     sysfs.Writer
	links LinkOps
}

// New returns a Manager over o's tree and netlink handle.
func New(o Options) (*Manager, error) {
	if o.FS == nil {
		return nil, errors.New("sriov: Options.FS is nil")
	}
	m := &Manager{fs: o.FS, w: o.Writer, links: o.Links}
	if m.w == nil {
		m.w = fileWriter{}
	}
	return m, nil
}

// PF is an SR-IOV physical function and its VFs.
type PF struct {
	Address          sysfs.Address
	Vendor, Device   uint16
	Driver           string // "" for none; without a driver no VF can be enabled
	Link             string // net/*: the netdev VFs are configured through; "" for none
	Group            *int   // iommu_group
	TotalVFs         int    // sriov_totalvfs
	NumVFs           int    // sriov_numvfs
	DriversAutoprobe *bool  // sriov_drivers_autoprobe: whether new VFs get their driver
	VFs              []VF
}

// VF is one virtual function of a PF.
type VF struct {
	Address sysfs.Address
	PF      sysfs.Address
	Index   int    // N of the PF's virtfnN link: the VF number netlink speaks
	Vendor  uint16 // vendor
	Device  uint16 // device
	Group   *int   // iommu_group; nil: no IOMMU translates it
	Driver  string // "" for none
	Config  *Config
}

// List returns every PF of the host, with its VFs and, when the PF has a
// netdev and the Manager has netlink, each VF's config. What cannot be
// read is joined into err; the rest is listed.
func (m *Manager) List() ([]PF, error) {
	devs, err := m.fs.Devices()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	byAddr := map[sysfs.Address]*sysfs.Device{}
	for i := range devs {
		byAddr[devs[i].Address] = &devs[i]
	}
	var pfs []PF
	for i := range devs {
		if devs[i].SRIOV == nil {
			continue
		}
		pf, err := m.pf(&devs[i], func(a sysfs.Address) (sysfs.Device, error) {
			if d, ok := byAddr[a]; ok {
				return *d, nil
			}
			return m.fs.Device(a)
		})
		if err != nil {
			errs = append(errs, err)
		}
		pfs = append(pfs, pf)
	}
	return pfs, errors.Join(errs...)
}

// PF reads one physical function, its VFs and their configs. A malformed
// address is ErrInvalid, a device without SR-IOV ErrNotCapable.
func (m *Manager) PF(bdf string) (PF, error) {
	d, err := m.pfDevice(bdf)
	if err != nil {
		return PF{}, err
	}
	return m.pf(&d, m.fs.Device)
}

func (m *Manager) pfDevice(bdf string) (sysfs.Device, error) {
	a, err := sysfs.ParseAddress(bdf)
	if err != nil {
		return sysfs.Device{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	d, err := m.fs.Device(a)
	if err != nil {
		return sysfs.Device{}, err
	}
	if d.SRIOV == nil {
		return sysfs.Device{}, fmt.Errorf("%w: %s (%04x:%04x) has no sriov_totalvfs", ErrNotCapable, a, d.Vendor, d.Device)
	}
	return d, nil
}

// pf assembles a PF from its device, reading VFs with dev.
func (m *Manager) pf(d *sysfs.Device, dev func(sysfs.Address) (sysfs.Device, error)) (PF, error) {
	pf := PF{
		Address: d.Address, Vendor: d.Vendor, Device: d.Device, Driver: d.Driver, Group: d.IOMMUGroup,
		TotalVFs: d.SRIOV.TotalVFs, NumVFs: d.SRIOV.NumVFs, DriversAutoprobe: d.SRIOV.DriversAutoprobe,
	}
	var errs []error
	link, err := m.linkName(d.Address)
	if err != nil {
		errs = append(errs, err)
	}
	pf.Link = link
	for i, a := range d.SRIOV.VFs {
		vd, err := dev(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("pf %s vf %d: %w", d.Address, i, err))
		}
		pf.VFs = append(pf.VFs, VF{
			Address: a, PF: d.Address, Index: i, Vendor: vd.Vendor, Device: vd.Device,
			Group: vd.IOMMUGroup, Driver: vd.Driver,
		})
	}
	if m.links != nil && link != "" && len(pf.VFs) > 0 {
		cfgs, err := m.configs(link)
		if err != nil {
			errs = append(errs, fmt.Errorf("pf %s: %w", d.Address, err))
		}
		for i := range pf.VFs {
			if c, ok := cfgs[i]; ok {
				pf.VFs[i].Config = &c
			}
		}
	}
	return pf, errors.Join(errs...)
}

// linkName is the PF's netdev, the only entry of its net/ directory; ""
// when it has none (no driver bound, or not a NIC).
func (m *Manager) linkName(pf sysfs.Address) (string, error) {
	ents, err := os.ReadDir(m.fs.Path("bus", "pci", "devices", pf.String(), "net"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("pf %s net: %w", pf, err)
	}
	if len(ents) == 0 {
		return "", nil
	}
	return ents[0].Name(), nil
}

// VF resolves a VF by address: its PF (physfn link) and its number (the
// PF's virtfnN link pointing back at it).
func (m *Manager) VF(bdf string) (VF, error) {
	a, err := sysfs.ParseAddress(bdf)
	if err != nil {
		return VF{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	d, err := m.fs.Device(a)
	if err != nil {
		return VF{}, err
	}
	if d.PhysFn == nil {
		return VF{}, fmt.Errorf("%w: %s has no physfn link", ErrNotVF, a)
	}
	pd, err := m.fs.Device(*d.PhysFn)
	if err != nil {
		return VF{}, fmt.Errorf("vf %s: %w", a, err)
	}
	if pd.SRIOV == nil {
		return VF{}, fmt.Errorf("vf %s: pf %s: %w", a, pd.Address, ErrNotCapable)
	}
	i := slices.Index(pd.SRIOV.VFs, a)
	if i < 0 {
		return VF{}, fmt.Errorf("vf %s: pf %s has no virtfn link to it", a, pd.Address)
	}
	return VF{Address: a, PF: pd.Address, Index: i, Vendor: d.Vendor, Device: d.Device, Group: d.IOMMUGroup, Driver: d.Driver}, nil
}

// EnableOptions tunes Enable.
type EnableOptions struct {
	// Autoprobe, when set, is written to sriov_drivers_autoprobe before
	// the VFs are made: false keeps them off their kernel driver (igbvf),
	// so they go straight to vfio-pci. It only matters to new VFs, so a PF
	// already at the count is left alone. nil keeps the PF's setting.
	Autoprobe *bool
	// InUse is asked about each existing VF before a count change removes
	// them; see DisableOptions.
	InUse func(VF) bool
}

// Enable sets the PF's VF count to n (1 to sriov_totalvfs) and returns the
// VFs. The kernel refuses to change a non-zero count (EBUSY), so a PF with
// another count goes to 0 first, unless a VF is in use; if n then fails,
// the old count is put back. The PF's count is already n: nothing is
// written.
func (m *Manager) Enable(bdf string, n int, o EnableOptions) ([]VF, error) {
	d, err := m.pfDevice(bdf)
	if err != nil {
		return nil, err
	}
	s := d.SRIOV
	switch {
	case n < 1:
		return nil, fmt.Errorf("%w: pf %s: %d VFs: want 1 to %d (disable to remove them)", ErrInvalid, d.Address, n, s.TotalVFs)
	case n > s.TotalVFs:
		return nil, fmt.Errorf("%w: pf %s: %d VFs: it has only %d (sriov_totalvfs)", ErrInvalid, d.Address, n, s.TotalVFs)
	case d.Driver == "":
		return nil, fmt.Errorf("%w: pf %s has no driver, and only the PF's driver can enable VFs", ErrInvalid, d.Address)
	}
	if s.NumVFs == n {
		pf, err := m.pf(&d, m.fs.Device)
		return pf.VFs, err
	}
	old := s.NumVFs
	if old != 0 {
		if err := m.checkInUse(&d, o.InUse); err != nil {
			return nil, err
		}
	}
	var undo []func() error
	rollback := func(cause error) error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			if err := undo[i](); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%w; putting pf %s back failed too: %w", cause, d.Address, err)
		}
		return fmt.Errorf("%w (pf %s put back as it was)", cause, d.Address)
	}
	if o.Autoprobe != nil && (s.DriversAutoprobe == nil || *s.DriversAutoprobe != *o.Autoprobe) {
		if err := m.write(d.Address, "sriov_drivers_autoprobe", boolAttr(*o.Autoprobe)); err != nil {
			return nil, err
		}
		if s.DriversAutoprobe != nil {
			was := boolAttr(*s.DriversAutoprobe)
			undo = append(undo, func() error { return m.write(d.Address, "sriov_drivers_autoprobe", was) })
		}
	}
	if old != 0 {
		if err := m.write(d.Address, "sriov_numvfs", "0"); err != nil {
			return nil, rollback(err)
		}
		undo = append(undo, func() error { return m.write(d.Address, "sriov_numvfs", strconv.Itoa(old)) })
	}
	if err := m.write(d.Address, "sriov_numvfs", strconv.Itoa(n)); err != nil {
		return nil, rollback(err)
	}
	pf, err := m.PF(d.Address.String())
	if err != nil {
		return pf.VFs, fmt.Errorf("pf %s: %d VFs enabled, but: %w", d.Address, n, err)
	}
	if pf.NumVFs != n || len(pf.VFs) != n {
		return pf.VFs, fmt.Errorf("pf %s: wrote %d to sriov_numvfs, it reads %d with %d virtfn links", d.Address, n, pf.NumVFs, len(pf.VFs))
	}
	return pf.VFs, nil
}

// DisableOptions tunes Disable.
type DisableOptions struct {
	// InUse reports a VF that must not disappear (leased to a VM, open
	// through VFIO); any such VF makes Disable refuse with ErrInUse. nil:
	// none is.
	InUse func(VF) bool
}

// Disable removes every VF of the PF (sriov_numvfs 0). It refuses, writing
// nothing, while any VF is in use. A PF without VFs is left alone.
func (m *Manager) Disable(bdf string, o DisableOptions) error {
	d, err := m.pfDevice(bdf)
	if err != nil {
		return err
	}
	if d.SRIOV.NumVFs == 0 && len(d.SRIOV.VFs) == 0 {
		return nil
	}
	if err := m.checkInUse(&d, o.InUse); err != nil {
		return err
	}
	return m.write(d.Address, "sriov_numvfs", "0")
}

func (m *Manager) checkInUse(d *sysfs.Device, inUse func(VF) bool) error {
	if inUse == nil {
		return nil
	}
	pf, err := m.pf(d, m.fs.Device)
	if err != nil && len(pf.VFs) != len(d.SRIOV.VFs) {
		return fmt.Errorf("pf %s: cannot tell whether its VFs are in use: %w", d.Address, err)
	}
	var busy []string
	for _, vf := range pf.VFs {
		if inUse(vf) {
			busy = append(busy, vf.Address.String())
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("%w: pf %s: %v; release them first", ErrInUse, d.Address, busy)
	}
	return nil
}

func (m *Manager) write(pf sysfs.Address, attr, value string) error {
	path := m.fs.Path("bus", "pci", "devices", pf.String(), attr)
	if err := m.w.WriteAttr(path, value); err != nil {
		return fmt.Errorf("pf %s: write %s to %s: %w", pf, value, attr, err)
	}
	return nil
}

func boolAttr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// fileWriter writes an attribute in one write, as the kernel's store()
// wants; sysfs keeps its own unexported.
type fileWriter struct{}

func (fileWriter) WriteAttr(path, value string) error {
	f, err := os.OpenFile(filepath.Clean(path), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
