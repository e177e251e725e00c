package sysfs

import (
	"errors"
	"fmt"
	"slices"
)

// VFIOPCI is the driver Bind hands devices to.
const VFIOPCI = "vfio-pci"

// Errors of Bind and BindGroup, each wrapped with the device it is about.
var (
	ErrBridge    = errors.New("device is a PCI bridge")
	ErrNotBound  = errors.New("driver did not bind")
	ErrNotViable = errors.New("iommu_group not viable")
)

// Original is a device's binding before Bind changed it.
type Original struct {
	Address  Address
	Driver   string // "" for none
	Override string // driver_override; "" for unset
}

// Binding records what Bind changed, in order, so that Release can put
// every device back. Its fields are exported so a CLI can keep it between
// runs.
type Binding struct {
	Devices []Original
}

// Bind hands the device at bdf to vfio-pci: driver_override, unbind from
// the current driver, drivers_probe. Malformed, unknown or bridged devices,
// and group-less ones on a host without an IOMMU unit, are refused before
// anything is written; a device already on vfio-pci is left alone (an
// empty Binding). On failure the device is restored and the error says so.
//
// A device without an iommu_group on a host with an IOMMU unit is bound
// too: an SMMUv3 described by a device tree (Debian's 6.12 arm64) creates a
// PCI device's group only at its first driver probe (really_probe →
// dma_configure → iommu_probe_device), so a device no driver ever claimed
// (a rescanned one, fresh SR-IOV VFs) has none until it is bound. The
// vfio-pci probe creates it; Bind then applies the group rule to the group
// as it now is (it may have joined other devices) and, if the device got
// no group or the group is not viable, unbinds it again and says why. The group
// itself stays: the kernel keeps it after an unbind.
func (f *FS) Bind(bdf string) (*Binding, error) {
	a, err := ParseAddress(bdf)
	if err != nil {
		return nil, err
	}
	d, err := f.bindable(a)
	if err != nil {
		return nil, err
	}
	if d.IOMMUGroup == nil {
		return f.bindGroupless(d)
	}
	return f.bind([]Device{d})
}

// bindGroupless binds d, which has no iommu_group yet on a host with an
// IOMMU, and keeps it bound only if the probe gave it a viable group.
func (f *FS) bindGroupless(d Device) (*Binding, error) {
	b, err := f.bind([]Device{d})
	if err != nil {
		// vfio-pci refuses a device without a group: say that it is why.
		if now, rerr := f.Device(d.Address); rerr == nil && now.IOMMUGroup == nil {
			return nil, fmt.Errorf("%w; %s still has no iommu_group: %w", err, d.Address, ErrNoGroup)
		}
		return nil, err
	}
	refuse := func(why error) (*Binding, error) {
		if rerr := f.restoreAll(b.Devices); rerr != nil {
			return nil, errors.Join(why, fmt.Errorf("rollback incomplete: %w", rerr))
		}
		return nil, fmt.Errorf("%w (unbound again)", why)
	}
	now, err := f.Device(d.Address)
	switch {
	case err != nil:
		return refuse(fmt.Errorf("bind %s: re-read after the probe: %w", d.Address, err))
	case now.IOMMUGroup == nil:
		return refuse(fmt.Errorf("bind %s: %w: %s took it but the IOMMU gave it no group", d.Address, ErrNoGroup, VFIOPCI))
	}
	v, err := f.Viability(*now.IOMMUGroup)
	switch {
	case err != nil:
		return refuse(fmt.Errorf("bind %s: its new iommu_group %d: %w", d.Address, *now.IOMMUGroup, err))
	case !v.Viable:
		return refuse(fmt.Errorf("bind %s: %w: the probe put it in %s", d.Address, ErrNotViable, v))
	}
	return b, nil
}

// BindGroup hands every endpoint of iommu_group n to vfio-pci (bridges
// stay where they are), all or nothing: if one device fails, every device
// already changed is restored, in reverse order.
func (f *FS) BindGroup(n int) (*Binding, error) {
	g, err := f.Group(n)
	if err != nil {
		return nil, err
	}
	var devs []Device
	for _, name := range g.Devices {
		a, err := ParseAddress(name)
		if err != nil {
			return nil, fmt.Errorf("iommu_group %d: cannot bind %q to %s: %w", n, name, VFIOPCI, err)
		}
		d, err := f.bindable(a)
		if errors.Is(err, ErrBridge) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("iommu_group %d: %w", n, err)
		}
		devs = append(devs, d)
	}
	if len(devs) == 0 {
		return nil, fmt.Errorf("iommu_group %d: no endpoint to bind", n)
	}
	return f.bind(devs)
}

// bindable reads a device and checks that Bind may touch it.
func (f *FS) bindable(a Address) (Device, error) {
	d, err := f.Device(a)
	if err != nil {
		return Device{}, fmt.Errorf("bind %s: %w", a, err)
	}
	if d.IsBridge() {
		return Device{}, fmt.Errorf("bind %s: %w (class %#06x); bind the devices behind it", a, ErrBridge, d.Class)
	}
	if d.IOMMUGroup == nil {
		// No unit at all: no group will ever come. With one, the group
		// may come at the first probe (see Bind).
		units, err := f.IOMMUs()
		switch {
		case len(units) == 0 && err != nil:
			return Device{}, fmt.Errorf("bind %s: has no iommu_group, and the IOMMU units cannot be listed: %w", a, err)
		case len(units) == 0:
			return Device{}, fmt.Errorf("bind %s: %w: no IOMMU unit under class/iommu translates the device", a, ErrNoGroup)
		}
	}
	return d, nil
}

func (f *FS) bind(devs []Device) (*Binding, error) {
	b := &Binding{}
	var undo []Original // restored in reverse order on failure
	for _, d := range devs {
		if d.Driver == VFIOPCI {
			continue
		}
		o := Original{Address: d.Address, Driver: d.Driver, Override: d.DriverOverride}
		undo = append(undo, o) // before the first write: a half-changed device is restored too
		if err := f.bindOne(d); err != nil {
			if rerr := f.restoreAll(undo); rerr != nil {
				return nil, errors.Join(err, fmt.Errorf("rollback incomplete: %w", rerr))
			}
			return nil, fmt.Errorf("%w (every device restored)", err)
		}
		b.Devices = append(b.Devices, o)
	}
	return b, nil
}

func (f *FS) bindOne(d Device) error {
	bdf := d.Address.String()
	if err := f.writeAttr(f.devPath(d.Address, "driver_override"), VFIOPCI); err != nil {
		return fmt.Errorf("bind %s: %w", bdf, err)
	}
	if d.Driver != "" {
		if err := f.writeAttr(f.Path("bus", "pci", "drivers", d.Driver, "unbind"), bdf); err != nil {
			return fmt.Errorf("bind %s: unbind from %s: %w", bdf, d.Driver, err)
		}
	}
	if err := f.writeAttr(f.Path("bus", "pci", "drivers_probe"), bdf); err != nil {
		return fmt.Errorf("bind %s: %w", bdf, err)
	}
	// drivers_probe succeeds even when no driver takes the device.
	if drv, err := f.driver(d.Address); err != nil {
		return fmt.Errorf("bind %s: %w", bdf, err)
	} else if drv != VFIOPCI {
		return fmt.Errorf("bind %s: %w: %s after drivers_probe, driver %q", bdf, ErrNotBound, VFIOPCI, drv)
	}
	return nil
}

// Release puts every device of b back on its original driver, in reverse
// order, going on past failures and joining their errors.
func (f *FS) Release(b *Binding) error {
	if b == nil {
		return nil
	}
	return f.restoreAll(b.Devices)
}

func (f *FS) restoreAll(devs []Original) error {
	var errs []error
	for _, o := range slices.Backward(devs) {
		errs = append(errs, f.restore(o))
	}
	return errors.Join(errs...)
}

// restore brings one device back to o from whatever state it is in.
func (f *FS) restore(o Original) error {
	bdf := o.Address.String()
	cur, err := f.driver(o.Address)
	if err != nil {
		return fmt.Errorf("restore %s: %w", bdf, err)
	}
	if cur != "" && cur != o.Driver {
		if err := f.writeAttr(f.Path("bus", "pci", "drivers", cur, "unbind"), bdf); err != nil {
			return fmt.Errorf("restore %s: unbind from %s: %w", bdf, cur, err)
		}
	}
	// The override goes first: while it names vfio-pci no other driver matches.
	override := o.Override
	if override == "" {
		override = "\n" // clears it
	}
	if err := f.writeAttr(f.devPath(o.Address, "driver_override"), override); err != nil {
		return fmt.Errorf("restore %s: %w", bdf, err)
	}
	if o.Driver == "" || cur == o.Driver {
		return nil
	}
	if err := f.writeAttr(f.Path("bus", "pci", "drivers", o.Driver, "bind"), bdf); err != nil {
		return fmt.Errorf("restore %s: bind to %s: %w", bdf, o.Driver, err)
	}
	if drv, err := f.driver(o.Address); err != nil {
		return fmt.Errorf("restore %s: %w", bdf, err)
	} else if drv != o.Driver {
		return fmt.Errorf("restore %s: %w: %s, driver %q", bdf, ErrNotBound, o.Driver, drv)
	}
	return nil
}
