package sysfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
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
// read them, sparing Viability's re-reading of every member: a listing of
// a host reads each device once. ok is false when a member is not among
// devs (not a PCI device, or not read): then use Viability.
func ViabilityOf(g Group, devs []Device) (v Verdict, ok bool) {
	byAddr := make(map[string]*Device, len(devs))
	for i := range devs {
		byAddr[devs[i].Address.String()] = &devs[i]
	}
	return viabilityOf(g, byAddr)
}

func viabilityOf(g Group, byAddr map[string]*Device) (Verdict, bool) {
	v := Verdict{Group: g.Number}
	for _, name := range g.Devices {
		d, ok := byAddr[name]
		if !ok {
			return Verdict{Group: g.Number}, false
		}
		v.Members = append(v.Members, Member{Name: name, Driver: d.Driver, Bridge: d.IsBridge()})
	}
	judge(&v)
	return v, true
}

// Viability applies the group rule of the design origin (reference uapi.md
// section 6): a group may be handed out only when every endpoint in it is
// bound to a VFIO driver or pci-stub, or to none. Bridges bound to pcieport
// do not count: the port driver sets driver_managed_dma. A member whose
// files cannot be read makes the group not viable, with the error.
func (f *FS) Viability(n int) (Verdict, error) {
	v := Verdict{Group: n}
	if !isDir(f.groupPath(n)) {
		return v, fmt.Errorf("%w: %d", ErrNoGroup, n)
	}
	ents, err := os.ReadDir(f.groupPath(n, "devices"))
	if err != nil {
		return v, fmt.Errorf("iommu_group %d: %w", n, err)
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		m := Member{Name: name}
		dir := func(file string) string { return f.groupPath(n, "devices", name, file) }
		drv, _, err := readLink(dir("driver"))
		if err != nil {
			errs = append(errs, fmt.Errorf("iommu_group %d device %s driver: %w", n, name, err))
		}
		m.Driver = drv
		if c, ok, err := readAttr(dir("class")); err != nil {
			errs = append(errs, fmt.Errorf("iommu_group %d device %s class: %w", n, name, err))
		} else if ok {
			cls, err := parseHexID(c, 24)
			if err != nil {
				errs = append(errs, fmt.Errorf("iommu_group %d device %s class: %w", n, name, err))
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
