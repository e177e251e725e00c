package sysfs

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Member is one device of an iommu_group as the group rule sees it.
type Member struct {
	Name   string // devices/ entry: the PCI address for PCI devices
	Driver string // "" for none
	Bridge bool   // a PCI-to-PCI bridge (class 0x0604)
}

// Verdict says whether a group may be handed out, and if not, who blocks it.
type Verdict struct {
	Group    int
	Viable   bool
	Members  []Member
	Blockers []Member // members bound to a kernel driver that uses DMA
}

// String is a one-line explanation naming each blocker and its driver.
func (v Verdict) String() string {
	if v.Viable {
		return fmt.Sprintf("iommu_group %d: viable", v.Group)
	}
	if len(v.Blockers) == 0 {
		return fmt.Sprintf("iommu_group %d: not viable (unreadable)", v.Group)
	}
	var b []string
	for _, m := range v.Blockers {
		b = append(b, fmt.Sprintf("%s bound to %s", m.Name, m.Driver))
	}
	return fmt.Sprintf("iommu_group %d: not viable: %s", v.Group, strings.Join(b, ", "))
}

// userDriver reports drivers that leave the group to user space: the VFIO
// drivers (vfio-pci and the vendor *_vfio_pci variants) and pci-stub, all of
// which set driver_managed_dma in the kernel.
func userDriver(name string) bool {
	return name == "pci-stub" || name == "vfio-pci" || strings.HasSuffix(name, "_vfio_pci") ||
		strings.HasPrefix(name, "vfio")
}

// judge applies the group rule to members already read.
func judge(v *Verdict) {
	v.Blockers = nil
	for _, m := range v.Members {
		switch {
		case m.Driver == "" || userDriver(m.Driver):
		case m.Bridge && m.Driver == "pcieport":
		default:
			v.Blockers = append(v.Blockers, m)
		}
	}
	v.Viable = len(v.Blockers) == 0
}

// ViabilityOf applies the group rule to group g from devices as Devices
// read them, sparing Viability's re-reading of every member. ok is false
// when a member is not among devs (not a PCI device, or not read): then
// use Viability. A group whose membership could not be read
// (g.DevicesErr) is not viable. It indexes devs on each call: for many
// groups, build an Index once.
func ViabilityOf(g Group, devs []Device) (v Verdict, ok bool) {
	return NewIndex(devs).Viability(g)
}

// Viability is ViabilityOf over the indexed devices.
func (x *Index) Viability(g Group) (Verdict, bool) {
	v := Verdict{Group: g.Number}
	if g.DevicesErr != nil {
		return v, true // membership unknown: not viable
	}
	for _, name := range g.Devices {
		d, ok := x.byName(name)
		if !ok {
			return Verdict{Group: g.Number}, false
		}
		v.Members = append(v.Members, Member{Name: name, Driver: d.Driver, Bridge: d.IsBridge()})
	}
	judge(&v)
	return v, true
}

// Viability applies the group rule of the design origin: a group may be
// handed out only when every endpoint in it is
// bound to a VFIO driver or pci-stub, or to none. Bridges bound to pcieport
// do not count: the port driver sets driver_managed_dma. A group whose
// devices/ cannot be read, or a member whose files cannot be, makes the
// group not viable, with the error.
func (f *FS) Viability(n int) (Verdict, error) {
	v := Verdict{Group: n}
	root, err := f.root()
	if err != nil {
		return v, err
	}
	defer root.close()
	if !root.isDir(groupRel(n)) {
		return v, fmt.Errorf("%w: %d", ErrNoGroup, n)
	}
	names, err := groupMembers(root, n)
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("iommu_group %d: %w", n, err))
		if names == nil {
			return v, errors.Join(errs...)
		}
	}
	buf := make([]byte, bufSize)
	for _, name := range names {
		m := Member{Name: name}
		fail := func(what string, err error) {
			errs = append(errs, fmt.Errorf("iommu_group %d device %s %s: %w", n, name, what, err))
		}
		// devices/NAME links to the member; a tree may have it there itself.
		dev, _, err := root.resolve(groupRel(n, "devices", name))
		switch {
		case errors.Is(err, syscall.EINVAL):
			dev = groupRel(n, "devices", name)
		case err != nil:
			fail("link", err)
			v.Members = append(v.Members, m)
			continue
		}
		drv, err := driverOf(root, dev+"/driver")
		if err != nil {
			fail("driver", err)
		}
		m.Driver = drv
		if c, ok, err := root.attr(dev+"/class", buf); err != nil {
			fail("class", err)
		} else if ok {
			cls, err := parseHexID(c, 24)
			if err != nil {
				fail("class", err)
			}
			m.Bridge = err == nil && cls>>8 == 0x0604
		}
		v.Members = append(v.Members, m)
	}
	judge(&v)
	err = errors.Join(errs...)
	v.Viable = v.Viable && err == nil
	return v, err
}
