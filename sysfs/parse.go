package sysfs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Address is a PCI function's address: domain, bus, device, function.
type Address struct {
	Domain   uint32 // 16 bits on most hosts; VMD domains start at 0x10000
	Bus      uint8
	Device   uint8 // 0..0x1f
	Function uint8 // 0..7
}

// String formats a as the kernel names the device: "0000:00:01.0".
func (a Address) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.Domain, a.Bus, a.Device, a.Function)
}

// ErrAddress is wrapped by every ParseAddress error.
var ErrAddress = errors.New("malformed PCI address")

// quote quotes s for an error message: at most its first 64 bytes, since
// what is quoted may be most of a capped read.
func quote(s string) string {
	const show = 64
	if len(s) <= show {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:show], len(s))
}

// ParseAddress parses "DDDD:BB:DD.F" (the kernel's name for a device) or
// lspci's "BB:DD.F", meaning domain 0. Hex digits may be either case.
func ParseAddress(s string) (Address, error) {
	bad := func(why string) (Address, error) {
		return Address{}, fmt.Errorf("%w %s: %s (want DDDD:BB:DD.F)", ErrAddress, quote(s), why)
	}
	parts := strings.Split(s, ":")
	var dom, bus, devfn string
	switch len(parts) {
	case 3:
		dom, bus, devfn = parts[0], parts[1], parts[2]
	case 2:
		dom, bus, devfn = "0", parts[0], parts[1]
	default:
		return bad("wrong number of ':'")
	}
	dev, fn, ok := strings.Cut(devfn, ".")
	if !ok {
		return bad("no '.' before the function")
	}
	if len(dom) == 0 || len(dom) > 8 || len(parts) == 3 && len(dom) < 4 {
		return bad("domain must have 4 to 8 hex digits")
	}
	if len(bus) != 2 || len(dev) != 2 || len(fn) != 1 {
		return bad("bus and device take 2 hex digits, function 1")
	}
	var v [4]uint64
	for i, p := range []string{dom, bus, dev, fn} {
		n, err := parseHexDigits(p, 32)
		if err != nil {
			return bad(fmt.Sprintf("%s is not hex", quote(p)))
		}
		v[i] = n
	}
	if v[2] > 0x1f {
		return bad("device above 0x1f")
	}
	if v[3] > 7 {
		return bad("function above 7")
	}
	return Address{Domain: uint32(v[0]), Bus: uint8(v[1]), Device: uint8(v[2]), Function: uint8(v[3])}, nil
}

// parseHexDigits parses bare hex digits (no sign, no prefix, no '_').
func parseHexDigits(s string, bits int) (uint64, error) {
	if s == "" {
		return 0, strconv.ErrSyntax
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseUint(s, 16, bits)
}

// parseHexID parses an id attribute (vendor, device, class, subsystem_*),
// which the kernel prints as "0x%04x" or "0x%06x".
func parseHexID(s string, bits int) (uint64, error) {
	d, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return 0, fmt.Errorf("%s: no 0x prefix", quote(s))
	}
	n, err := parseHexDigits(d, bits)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", quote(s), err)
	}
	return n, nil
}

// parseGroupLink takes the target (or basename) of an iommu_group link,
// "../../../kernel/iommu_groups/7", and returns the group number.
func parseGroupLink(target string) (int, error) {
	base := target[strings.LastIndexByte(target, '/')+1:]
	n, err := parseDecimal(base)
	if err != nil {
		return 0, fmt.Errorf("iommu_group link %s: %w", quote(target), err)
	}
	return n, nil
}

// parseDecimal parses a non-negative decimal int with digits only.
func parseDecimal(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%s: not a decimal number", quote(s))
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", quote(s), err)
	}
	return int(n), nil
}

// parseNUMANode parses numa_node: a node number, or -1 for none.
func parseNUMANode(s string) (int, error) {
	if s == "-1" {
		return -1, nil
	}
	return parseDecimal(s)
}

// Resource is one line of a device's resource file: BARs 0-5, the ROM (6),
// then bridge windows or SR-IOV VF BARs, depending on the device.
type Resource struct {
	Index int
	Start uint64
	End   uint64 // inclusive
	Flags uint64 // IORESOURCE_* flags
}

// Size is the resource's length in bytes.
func (r Resource) Size() uint64 { return r.End - r.Start + 1 }

// IORESOURCE_IO and IORESOURCE_MEM from include/linux/ioport.h.
const (
	resourceIO  = 0x100
	resourceMem = 0x200
)

// IsIO reports an I/O port BAR; IsMem a memory BAR.
func (r Resource) IsIO() bool  { return r.Flags&resourceIO != 0 }
func (r Resource) IsMem() bool { return r.Flags&resourceMem != 0 }

// parseResource parses a device's resource file: one line per resource,
// "0x%016llx 0x%016llx 0x%016llx" (start, end, flags). Unused resources
// (all zero) are left out.
func parseResource(text string) ([]Resource, error) {
	const unused = "0x0000000000000000 0x0000000000000000 0x0000000000000000"
	var out []Resource
	for i, line := range lines(text) {
		if line == unused {
			continue // most lines of most devices: skip the parse
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("resource line %d %s: want 3 fields", i, quote(line))
		}
		var v [3]uint64
		for j, s := range f {
			n, err := parseHexID(s, 64)
			if err != nil {
				return nil, fmt.Errorf("resource line %d: %w", i, err)
			}
			v[j] = n
		}
		if v == [3]uint64{} {
			continue
		}
		if v[1] < v[0] {
			return nil, fmt.Errorf("resource line %d %s: end before start", i, quote(line))
		}
		out = append(out, Resource{Index: i, Start: v[0], End: v[1], Flags: v[2]})
	}
	return out, nil
}

// ReservedRegion is one line of an iommu_group's reserved_regions: an IOVA
// range the group cannot map.
type ReservedRegion struct {
	Start uint64
	End   uint64 // inclusive
	Type  string // "direct", "direct-relaxable", "reserved", "msi"
}

// parseReservedRegions parses "0x%016llx 0x%016llx %s" lines.
func parseReservedRegions(text string) ([]ReservedRegion, error) {
	var out []ReservedRegion
	for i, line := range lines(text) {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("reserved_regions line %d %s: want 3 fields", i, quote(line))
		}
		start, err := parseHexID(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("reserved_regions line %d: %w", i, err)
		}
		end, err := parseHexID(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("reserved_regions line %d: %w", i, err)
		}
		if end < start {
			return nil, fmt.Errorf("reserved_regions line %d %s: end before start", i, quote(line))
		}
		out = append(out, ReservedRegion{Start: start, End: end, Type: f[2]})
	}
	return out, nil
}

// lines splits text into lines, without the final empty one.
func lines(text string) []string {
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// parseBool01 parses an attribute printed as "0" or "1".
func parseBool01(s string) (bool, error) {
	switch s {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("%s: want 0 or 1", quote(s))
}

// parseCmdline splits /proc/cmdline into kernel parameters, keeping
// double-quoted values whole as the kernel's parser does. Parameters end at
// "--": what follows is init's.
func parseCmdline(text string) []string {
	var out []string
	var cur strings.Builder
	in, quoted := false, false
	for _, c := range strings.TrimSpace(text) {
		switch {
		case c == '"':
			quoted = !quoted
			in = true
			cur.WriteRune(c)
		case (c == ' ' || c == '\t' || c == '\n') && !quoted:
			if in {
				if cur.String() == "--" {
					return out
				}
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			in = true
			cur.WriteRune(c)
		}
	}
	if in && cur.String() != "--" {
		out = append(out, cur.String())
	}
	return out
}

// pciIDs are what a PCI device's uevent file carries: its ids and driver.
type pciIDs struct {
	vendor, device, subVendor, subDevice uint16
	class                                uint32
	driver                               string // DRIVER; "" when unbound
}

// parsePCIUevent takes the ids and driver from a device's uevent file,
// which the kernel's dev_uevent and pci_uevent write as DRIVER=%s (only when
// bound), PCI_CLASS=%04X, PCI_ID=%04X:%04X and PCI_SUBSYS_ID=%04X:%04X from
// the cached config header: one read instead of five files and a link.
// found is false unless all three PCI keys are there.
func parsePCIUevent(text string) (ids pciIDs, found bool, err error) {
	var class, id, subsys, driver string
	var have int
	for rest := text; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "DRIVER":
			driver = v
		case "PCI_CLASS":
			class, have = v, have|1
		case "PCI_ID":
			id, have = v, have|2
		case "PCI_SUBSYS_ID":
			subsys, have = v, have|4
		}
	}
	if have != 7 {
		return pciIDs{}, false, nil
	}
	c, err := parseHexDigits(class, 24)
	if err != nil {
		return pciIDs{}, false, fmt.Errorf("PCI_CLASS=%s: %w", quote(class), err)
	}
	pair := func(key, s string) (uint16, uint16, error) {
		x, y, ok := strings.Cut(s, ":")
		a, err1 := parseHexDigits(x, 16)
		b, err2 := parseHexDigits(y, 16)
		if !ok || err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("%s=%s: want VVVV:DDDD", key, quote(s))
		}
		return uint16(a), uint16(b), nil
	}
	ids.class = uint32(c)
	if ids.vendor, ids.device, err = pair("PCI_ID", id); err != nil {
		return pciIDs{}, false, err
	}
	if ids.subVendor, ids.subDevice, err = pair("PCI_SUBSYS_ID", subsys); err != nil {
		return pciIDs{}, false, err
	}
	if driver != "" {
		if err := checkName("DRIVER=", driver); err != nil {
			return pciIDs{}, false, err
		}
	}
	ids.driver = driver
	return ids, true, nil
}
