package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Inventory is list --json's output. It is a schema of its own, not the
// sysfs types, so that package can change without breaking the machines
// that read this. Fields are only ever added.
//
//	{"iommu_present": true,
//	 "iommus": [{"name": "dmar0", "kind": "intel-vt-d",
//	             "vtd": {"cap": "0x00d2008c222f0686", "ecap": "0x0000000000f00f4a",
//	                     "address_width": 48, "interrupt_remapping": true,
//	                     "cap_names": [...], "ecap_names": [...]},
//	             "amd": {"cap": "0x...", "efr": "0x...", "efr2": "0x...",
//	                     "host_levels": 6, "guest_translation": true, "pasid_bits": 16,
//	                     "cap_names": [...], "efr_names": [...], "efr2_names": [...]},
//	             "registers_from": "...",   where a unit's registers are when sysfs has none
//	             "groups": [<Group>...]}],
//	 "other_groups": [<Group>...],       groups no unit lists a device of
//	 "ungrouped_devices": [<Device>...], PCI devices without an iommu_group
//	 "errors": ["..."]}                  what could not be read; the rest is listed
//
//	Group:  {"number", "type", "viable", "blockers", "reserved_regions",
//	         "devices": [<Device>...], "shared_because": ["..."],
//	         "errors": ["..."]}   why membership is unknown: NOT viable
//	Device: {"address", "vendor", "device", "class", "driver", "bridge",
//	         "port": <Port> (bridges only), "upstream": [<Port>...]}
//	Port:   {"address", "type", "acs_known",
//	         "acs": {"cap": "SV RR CR UF", "ctrl": "...", "isolates": true} or null}
type Inventory struct {
	IOMMUPresent     bool            `json:"iommu_present"`
	IOMMUs           []InventoryUnit `json:"iommus"`
	OtherGroups      []InvGroup      `json:"other_groups"`
	UngroupedDevices []InvDevice     `json:"ungrouped_devices"`
	Errors           []string        `json:"errors,omitempty"`
}

// InventoryUnit is one IOMMU unit and the groups it translates.
type InventoryUnit struct {
	Name string  `json:"name"`
	Kind string  `json:"kind"`
	VTD  *InvVTD `json:"vtd,omitempty"`
	AMD  *InvAMD `json:"amd,omitempty"`
	// RegistersFrom says where the unit's registers can be read when
	// sysfs shows none (an SMMUv3's ID registers: IOMMU_GET_HW_INFO only).
	RegistersFrom string     `json:"registers_from,omitempty"`
	Groups        []InvGroup `json:"groups"`
}

// InvVTD is a VT-d unit's registers, raw and decoded.
type InvVTD struct {
	Cap                string   `json:"cap"`
	ECap               string   `json:"ecap"`
	AddressWidth       int      `json:"address_width"` // MGAW, bits
	InterruptRemapping bool     `json:"interrupt_remapping"`
	CapNames           []string `json:"cap_names"`
	ECapNames          []string `json:"ecap_names"`
}

// InvAMD is an AMD-Vi unit's capability header and Extended Feature
// Registers, raw and decoded (see hwinfo.AMDVi).
type InvAMD struct {
	Cap  string `json:"cap"`
	EFR  string `json:"efr"`
	EFR2 string `json:"efr2"`
	// HostLevels is the host page-table depth (EFR HATS: 4 to 6; 0 for
	// the reserved value, with which the kernel disables translation).
	HostLevels int `json:"host_levels"`
	// GuestTranslation is EFR GT: v2 page tables and PASIDs, which SVA,
	// amd_iommu=pgtbl_v2 and nesting need; PASIDBits is 0 without it.
	GuestTranslation bool     `json:"guest_translation"`
	PASIDBits        int      `json:"pasid_bits"`
	CapNames         []string `json:"cap_names"`
	EFRNames         []string `json:"efr_names"`
	EFR2Names        []string `json:"efr2_names"`
}

// smmuRegisters is where an SMMUv3's registers are: its driver puts none in
// sysfs.
const smmuRegisters = "IOMMU_GET_HW_INFO only (sysfs has no SMMUv3 registers): iommu-agent probe -hwinfo, as root, with a device bound to vfio-pci"

// InvGroup is one iommu_group with its verdict under the group rule.
type InvGroup struct {
	Number          int         `json:"number"`
	Type            string      `json:"type"`
	Viable          bool        `json:"viable"`
	Blockers        []InvMember `json:"blockers"`
	ReservedRegions []InvRegion `json:"reserved_regions"`
	Devices         []InvDevice `json:"devices"`
	// SharedBecause explains a group of several devices from the bridges
	// above them: a PCIe-to-PCI bridge, or a port whose ACS does not
	// isolate (see sysfs.SharingReasons). Absent for a group of one.
	SharedBecause []string `json:"shared_because,omitempty"`
	// Errors says why a group is NOT viable for want of knowledge: its
	// devices/ unreadable, a member's files unreadable, or a device whose
	// link names the group missing from it. Absent when there is none.
	Errors []string `json:"errors,omitempty"`
}

// InvMember names a device that keeps a group from being viable.
type InvMember struct {
	Address string `json:"address"`
	Driver  string `json:"driver"`
}

// InvRegion is a reserved IOVA range, inclusive, in hex.
type InvRegion struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Type  string `json:"type"`
}

// InvDevice is a PCI function. IDs are hex without 0x, as lspci -n prints
// them; Driver is "" for none.
type InvDevice struct {
	Address string `json:"address"`
	Vendor  string `json:"vendor"`
	Device  string `json:"device"`
	Class   string `json:"class"`
	Driver  string `json:"driver"`
	Bridge  bool   `json:"bridge"`
	// Port is a bridge's own port type and ACS; absent for endpoints.
	Port *InvPort `json:"port,omitempty"`
	// Upstream lists the bridges above, nearest first, to the root bus.
	Upstream []InvPort `json:"upstream"`
}

// InvPort is a bridge as isolation sees it. Type is the PCI Express port
// type ("root port", "PCIe-to-PCI bridge", ...), "conventional PCI", or ""
// when its config space could not be read. ACS is null when the port has
// no ACS capability or when ACSKnown is false (config space past 256 bytes
// unreadable: not root).
type InvPort struct {
	Address  string  `json:"address"`
	Type     string  `json:"type"`
	ACSKnown bool    `json:"acs_known"`
	ACS      *InvACS `json:"acs"`
}

// InvACS is a port's ACS capability: the bits implemented and enabled
// (SV TB RR CR UF EC DT), and whether they isolate the devices below as the
// kernel requires (SV, RR, CR and UF).
type InvACS struct {
	Cap      string `json:"cap"`
	Ctrl     string `json:"ctrl"`
	Isolates bool   `json:"isolates"`
}

// noIOMMU is list's whole answer on a host without one.
const noIOMMU = "No IOMMU: the kernel uses none on this host (no units in /sys/class/iommu), so no device can be passed through here. " +
	"Use the emulated backend (agent/iommu/emulated), or boot the test guest with an emulated VT-d: go run ./hwtests/vm/cmd/hwtests"

func list(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("list")
	sysRoot := fs.String("sysfs", "/sys", "sysfs mount point")
	asJSON := fs.Bool("json", false, "print the inventory as JSON (see type Inventory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("list: unexpected argument %q", fs.Arg(0))
	}
	f, err := sysfs.New(*sysRoot)
	if err != nil {
		return err
	}
	inv, err := inventory(ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(inv); err != nil {
			return err
		}
	} else {
		printInventory(w, inv)
	}
	if len(inv.Errors) > 0 {
		return fmt.Errorf("list: %d parts of %s could not be read (listed above)", len(inv.Errors), filepath.Clean(*sysRoot))
	}
	return nil
}

// inventory gathers what list shows. Read errors are collected, not fatal:
// sysfs returns what it could read alongside them. Only ctx's end stops
// it, with ctx's error. Every device read appears in it: under its group,
// one made up for it when the group itself could not be read, or among the
// ungrouped devices.
func inventory(ctx context.Context, f *sysfs.FS) (Inventory, error) {
	inv := Inventory{IOMMUs: []InventoryUnit{}, OtherGroups: []InvGroup{}, UngroupedDevices: []InvDevice{}}
	note := func(err error) {
		if err == nil {
			return
		}
		inv.Errors = append(inv.Errors, strings.Split(err.Error(), "\n")...)
	}
	units, err := f.IOMMUs()
	note(err)
	devs, err := f.ScanContext(ctx) // all list shows; no Details
	if ctx.Err() != nil {
		return Inventory{}, ctx.Err()
	}
	note(err)
	devsClean := err == nil // else judge groups from their own files
	groups, err := f.GroupsContext(ctx)
	if ctx.Err() != nil {
		return Inventory{}, ctx.Err()
	}
	note(err)

	ix := sysfs.NewIndex(devs)
	byAddr := make(map[string]InvDevice, len(devs))
	byGroup := map[int][]string{} // group number → devices whose link names it
	for _, d := range devs {
		byAddr[d.Address.String()] = invDevice(d, ix)
		if d.IOMMUGroup != nil {
			byGroup[*d.IOMMUGroup] = append(byGroup[*d.IOMMUGroup], d.Address.String())
		}
	}
	unitOf := map[string]int{} // device address → index in units
	for i, u := range units {
		for _, a := range u.Devices {
			unitOf[a.String()] = i
		}
	}

	inv.IOMMUPresent = len(units) > 0
	for _, u := range units {
		iu := InventoryUnit{Name: u.Name, Kind: string(u.Kind), Groups: []InvGroup{}}
		if u.VTD != nil {
			iu.VTD = &InvVTD{
				Cap:                fmt.Sprintf("0x%016x", uint64(u.VTD.Cap)),
				ECap:               fmt.Sprintf("0x%016x", uint64(u.VTD.ECap)),
				AddressWidth:       u.VTD.Cap.MGAW(),
				InterruptRemapping: u.VTD.ECap.IR(),
				CapNames:           nonNil(u.VTD.Cap.Names()),
				ECapNames:          nonNil(u.VTD.ECap.Names()),
			}
		}
		if u.AMD != nil {
			a := u.AMD
			iu.AMD = &InvAMD{
				Cap:              fmt.Sprintf("%#x", uint32(a.Cap)),
				EFR:              fmt.Sprintf("0x%016x", uint64(a.EFR)),
				EFR2:             fmt.Sprintf("0x%016x", uint64(a.EFR2)),
				HostLevels:       a.EFR.HATS(),
				GuestTranslation: a.EFR.GT(),
				CapNames:         nonNil(a.Cap.Names()),
				EFRNames:         nonNil(a.EFR.Names()),
				EFR2Names:        nonNil(a.EFR2.Names()),
			}
			if a.EFR.GT() {
				iu.AMD.PASIDBits = a.EFR.PASmax()
			}
		}
		if u.Kind == sysfs.KindSMMUv3 {
			iu.RegistersFrom = smmuRegisters
		}
		inv.IOMMUs = append(inv.IOMMUs, iu)
	}

	// Groups that could not be read at all, named only by their devices'
	// links, are listed too, made up from what those links say.
	seen := make(map[int]bool, len(groups))
	for _, g := range groups {
		seen[g.Number] = true
	}
	var missing []int
	for n := range byGroup {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	for _, n := range missing {
		groups = append(groups, sysfs.Group{Number: n,
			DevicesErr: fmt.Errorf("iommu_group %d: named by the iommu_group link of %s, but not readable under kernel/iommu_groups", n, strings.Join(byGroup[n], ", "))})
	}

	placed := make(map[string]bool, len(devs)) // listed under some group
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return Inventory{}, err
		}
		ig := InvGroup{Number: g.Number, Type: g.Type, Blockers: []InvMember{}, ReservedRegions: []InvRegion{}, Devices: []InvDevice{}}
		if g.DevicesErr != nil {
			ig.Errors = append(ig.Errors, g.DevicesErr.Error())
		}
		v, ok := ix.Viability(g)
		// Its own files say more, unless devices/ could not be read.
		if g.DevicesErr == nil && (!ok || !devsClean) {
			var err error
			v, err = f.Viability(g.Number)
			note(err)
			if err != nil {
				ig.Errors = append(ig.Errors, strings.Split(err.Error(), "\n")...)
			}
			v.Viable = v.Viable && err == nil
		}
		ig.Viable = v.Viable && g.DevicesErr == nil
		for _, b := range v.Blockers {
			ig.Blockers = append(ig.Blockers, InvMember{Address: b.Name, Driver: b.Driver})
		}
		for _, r := range g.ReservedRegions {
			ig.ReservedRegions = append(ig.ReservedRegions, InvRegion{
				Start: fmt.Sprintf("0x%x", r.Start), End: fmt.Sprintf("0x%x", r.End), Type: r.Type})
		}
		unit := -1
		listed := make(map[string]bool, len(g.Devices))
		add := func(name string) {
			if listed[name] {
				return
			}
			listed[name], placed[name] = true, true
			if i, ok := unitOf[name]; ok && unit < 0 {
				unit = i
			}
			if d, ok := byAddr[name]; ok {
				ig.Devices = append(ig.Devices, d)
			} else {
				ig.Devices = append(ig.Devices, InvDevice{Address: name, Upstream: []InvPort{}})
			}
		}
		for _, name := range g.Devices {
			add(name)
		}
		// A device whose link names this group but which devices/ does
		// not list is listed here too; the group's membership is then in
		// doubt, and so is its viability.
		for _, name := range byGroup[g.Number] {
			if !listed[name] {
				add(name)
				if g.DevicesErr == nil {
					ig.Errors = append(ig.Errors, fmt.Sprintf("iommu_group %d: %s links to it, but its devices/ does not list it", g.Number, name))
					ig.Viable = false
				}
			}
		}
		ig.SharedBecause = ix.SharingReasons(g.Devices)
		if unit >= 0 {
			inv.IOMMUs[unit].Groups = append(inv.IOMMUs[unit].Groups, ig)
		} else {
			inv.OtherGroups = append(inv.OtherGroups, ig)
		}
	}
	for _, d := range devs {
		// One whose link could not be read may be listed by its group.
		if d.IOMMUGroup == nil && !placed[d.Address.String()] {
			inv.UngroupedDevices = append(inv.UngroupedDevices, byAddr[d.Address.String()])
		}
	}
	for i := range inv.IOMMUs {
		slices.SortFunc(inv.IOMMUs[i].Groups, func(x, y InvGroup) int { return x.Number - y.Number })
	}
	slices.SortFunc(inv.OtherGroups, func(x, y InvGroup) int { return x.Number - y.Number })
	return inv, nil
}

func invDevice(d sysfs.Device, ix *sysfs.Index) InvDevice {
	id := InvDevice{
		Address:  d.Address.String(),
		Vendor:   fmt.Sprintf("%04x", d.Vendor),
		Device:   fmt.Sprintf("%04x", d.Device),
		Class:    fmt.Sprintf("%06x", d.Class),
		Driver:   d.Driver,
		Bridge:   d.IsBridge(),
		Upstream: []InvPort{},
	}
	if d.IsBridge() {
		p := invPort(d)
		id.Port = &p
	}
	for _, p := range ix.UpstreamPorts(d.Address) {
		id.Upstream = append(id.Upstream, invPort(p))
	}
	return id
}

func invPort(d sysfs.Device) InvPort {
	p := InvPort{Address: d.Address.String()}
	c := d.Config
	switch {
	case c == nil:
		return p
	case c.PCIe == nil:
		p.Type = "conventional PCI"
	default:
		p.Type = c.PCIe.String()
	}
	p.ACSKnown = c.Extended
	if c.ACS != nil {
		p.ACS = &InvACS{Cap: c.ACS.Cap.String(), Ctrl: c.ACS.Ctrl.String(), Isolates: c.ACS.Isolates()}
	}
	return p
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func printInventory(w io.Writer, inv Inventory) {
	if !inv.IOMMUPresent && len(inv.OtherGroups) == 0 {
		fmt.Fprintln(w, noIOMMU)
		printErrors(w, inv.Errors)
		return
	}
	for _, u := range inv.IOMMUs {
		fmt.Fprintf(w, "%s (%s)\n", u.Name, u.Kind)
		if u.VTD != nil {
			ir := "no interrupt remapping"
			if u.VTD.InterruptRemapping {
				ir = "interrupt remapping"
			}
			fmt.Fprintf(w, "  cap %s ecap %s: %d-bit, %s\n", u.VTD.Cap, u.VTD.ECap, u.VTD.AddressWidth, ir)
			fmt.Fprintf(w, "  cap:  %s\n", strings.Join(u.VTD.CapNames, " "))
			fmt.Fprintf(w, "  ecap: %s\n", strings.Join(u.VTD.ECapNames, " "))
		}
		if a := u.AMD; a != nil {
			host := "host translation disabled (HATS reserved)"
			if a.HostLevels != 0 {
				host = fmt.Sprintf("%d-level host page tables", a.HostLevels)
			}
			guest := "no guest translation (GT clear: no PASIDs, v2 tables or nesting)"
			if a.GuestTranslation {
				guest = fmt.Sprintf("guest translation, %d-bit PASIDs", a.PASIDBits)
			}
			fmt.Fprintf(w, "  cap %s EFR %s EFR2 %s: %s, %s\n", a.Cap, a.EFR, a.EFR2, host, guest)
			fmt.Fprintf(w, "  cap:  %s\n", strings.Join(a.CapNames, " "))
			fmt.Fprintf(w, "  efr:  %s\n", strings.Join(a.EFRNames, " "))
			if len(a.EFR2Names) > 0 {
				fmt.Fprintf(w, "  efr2: %s\n", strings.Join(a.EFR2Names, " "))
			}
		}
		if u.RegistersFrom != "" {
			fmt.Fprintf(w, "  registers: %s\n", u.RegistersFrom)
		}
		for _, g := range u.Groups {
			printGroup(w, g, "  ")
		}
	}
	if len(inv.OtherGroups) > 0 {
		fmt.Fprintln(w, "groups of no listed IOMMU unit")
		for _, g := range inv.OtherGroups {
			printGroup(w, g, "  ")
		}
	}
	if len(inv.UngroupedDevices) > 0 {
		// An SMMUv3 (Debian's 6.12 arm64) gives a device its group at the
		// first driver probe: under a unit, a driverless device may have
		// none yet, and a bind (sysfs.Bind, the agent's acquire) creates it.
		if inv.IOMMUPresent {
			fmt.Fprintln(w, "devices without an iommu_group yet (an IOMMU that groups at the first driver probe, as SMMUv3 does, gives one at the first bind: `iommu-agent bind BDF`, or the agent's acquire of it; one that groups at boot does not translate them)")
		} else {
			fmt.Fprintln(w, "devices without an iommu_group (no IOMMU translates their DMA; they cannot be passed through)")
		}
		for _, d := range inv.UngroupedDevices {
			fmt.Fprintf(w, "  %s\n", deviceLine(d))
		}
	}
	printErrors(w, inv.Errors)
}

func printGroup(w io.Writer, g InvGroup, indent string) {
	typ := g.Type
	if typ == "" {
		typ = "type unknown"
	}
	verdict := "viable"
	if !g.Viable {
		var b []string
		for _, m := range g.Blockers {
			b = append(b, m.Address+" on "+m.Driver)
		}
		verdict = "NOT viable"
		switch {
		case len(b) > 0:
			verdict += ": unbind " + strings.Join(b, ", ")
		case len(g.Errors) > 0:
			verdict += ": members unknown"
		default:
			verdict += ": members unreadable"
		}
	}
	fmt.Fprintf(w, "%sgroup %d (%s): %s\n", indent, g.Number, typ, verdict)
	for _, e := range g.Errors {
		fmt.Fprintf(w, "%s  because %s\n", indent, e)
	}
	for _, r := range g.ReservedRegions {
		fmt.Fprintf(w, "%s  reserved %s-%s %s\n", indent, r.Start, r.End, r.Type)
	}
	for _, d := range g.Devices {
		fmt.Fprintf(w, "%s  %s\n", indent, deviceLine(d))
	}
	for _, r := range g.SharedBecause {
		fmt.Fprintf(w, "%s  shared: %s\n", indent, r)
	}
}

func deviceLine(d InvDevice) string {
	if d.Vendor == "" {
		return d.Address + " (not a PCI device)"
	}
	drv := d.Driver
	if drv == "" {
		drv = "no driver"
	}
	s := fmt.Sprintf("%s %s:%s class %s %s", d.Address, d.Vendor, d.Device, d.Class, drv)
	switch {
	case d.Port != nil && d.Port.Type != "":
		acs := "ACS unknown"
		switch a := d.Port.ACS; {
		case a != nil && a.Isolates:
			acs = "ACS " + a.Ctrl + ", isolates"
		case a != nil:
			acs = "ACS " + a.Ctrl + ", does not isolate"
		case d.Port.ACSKnown:
			acs = "no ACS"
		}
		s += fmt.Sprintf(" (bridge: %s, %s)", d.Port.Type, acs)
	case d.Bridge:
		s += " (bridge)"
	}
	return s
}

func printErrors(w io.Writer, errs []string) {
	if len(errs) == 0 {
		return
	}
	fmt.Fprintln(w, "could not read:")
	for _, e := range errs {
		fmt.Fprintf(w, "  %s\n", e)
	}
}
