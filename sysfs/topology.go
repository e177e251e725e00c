package sysfs

import (
	"fmt"
	"slices"
)

// Index holds devices as Devices or Scan read them, by address, for the
// questions asked of every group and device of a host: which bridges are
// above a device, why a group's devices share it, whether it is viable.
// Built once, it answers each in time independent of the number of
// devices, so a listing of a host is linear in its devices and groups.
type Index struct {
	addr map[Address]*Device
}

// NewIndex indexes devs, which it keeps and does not copy.
func NewIndex(devs []Device) *Index {
	x := &Index{addr: make(map[Address]*Device, len(devs))}
	for i := range devs {
		x.addr[devs[i].Address] = &devs[i]
	}
	return x
}

// Device returns the device at a.
func (x *Index) Device(a Address) (*Device, bool) {
	d, ok := x.addr[a]
	return d, ok
}

// byName returns the device a group's devices/ entry names.
func (x *Index) byName(name string) (*Device, bool) {
	a, err := ParseAddress(name)
	if err != nil || a.String() != name {
		return nil, false
	}
	return x.Device(a)
}

// UpstreamPorts returns the bridges above device a, nearest first, up to
// the root bus, from devs as Devices returns them. A bridge missing from
// devs ends the chain. It indexes devs on each call: for many devices,
// build an Index once.
func UpstreamPorts(devs []Device, a Address) []Device {
	return NewIndex(devs).UpstreamPorts(a)
}

// UpstreamPorts is the package's UpstreamPorts over the indexed devices.
func (x *Index) UpstreamPorts(a Address) []Device {
	var out []Device
	for d, ok := x.addr[a]; ok && d.Upstream != nil && len(out) < 256; {
		p, ok := x.addr[*d.Upstream]
		if !ok {
			break
		}
		out = append(out, *p)
		d = p
	}
	return out
}

// SharingReasons explains why the devices of one iommu_group (its devices/
// names) share it, from the bridges above them, as the kernel decides
// (pci_device_group): walking up, a device joins the group of the first
// port that does not isolate it. Conventional PCI behind a PCIe-to-PCI
// bridge cannot be told apart by requester id; a root or downstream port
// without ACS (SV, RR, CR and UF, where implemented) lets its devices reach
// each other without the IOMMU seeing it. nil for a group of one.
func SharingReasons(devs []Device, members []string) []string {
	if len(members) < 2 {
		return nil
	}
	return NewIndex(devs).SharingReasons(members)
}

// SharingReasons is the package's SharingReasons over the indexed devices.
func (x *Index) SharingReasons(members []string) []string {
	if len(members) < 2 {
		return nil
	}
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, name := range members {
		a, err := ParseAddress(name)
		if err != nil {
			continue // not a PCI device
		}
	walk:
		for _, p := range x.UpstreamPorts(a) {
			c := p.Config
			switch {
			case c == nil:
				add(fmt.Sprintf("bridge %s: config space unreadable, so whether its ACS isolates the devices below is unknown", p.Address))
				break walk
			case c.PCIe == nil || *c.PCIe == PCIeToPCIBridge:
				add(fmt.Sprintf("%s is a PCIe-to-PCI bridge: the conventional PCI devices behind it reach the IOMMU with its requester id, so it and all below it share one group", p.Address))
				break walk
			case *c.PCIe != PCIeRootPort && *c.PCIe != PCIeDownstreamPort:
				continue // switch upstream ports do not route peer to peer
			case !c.Extended:
				add(fmt.Sprintf("%s (%s): extended config space unreadable (needs root), so whether its ACS isolates the devices below is unknown", p.Address, *c.PCIe))
				break walk
			case c.ACS == nil:
				add(fmt.Sprintf("%s (%s) has no ACS capability: devices below it can reach each other peer to peer unseen by the IOMMU", p.Address, *c.PCIe))
				break walk
			case !c.ACS.Isolates():
				add(fmt.Sprintf("%s (%s) has ACS with %s off (control %s): devices below it are not isolated", p.Address, *c.PCIe, c.ACS.Missing(), c.ACS.Ctrl))
				break walk
			default:
				break walk // isolated here: the kernel looks no further up
			}
		}
	}
	if out == nil {
		out = []string{"no bridge above them lacks isolation: functions of one multifunction device without ACS, or a DMA alias quirk, group them (endpoint config is not read)"}
	}
	return out
}
