package sysfs

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// PCIeType is the device/port type field of a function's PCI Express
// capability (PCIe base spec 7.5.3.2), which says where in the hierarchy it
// sits.
type PCIeType uint8

// Port types that matter to isolation, as include/uapi/linux/pci_regs.h
// names them (PCI_EXP_TYPE_*).
const (
	PCIeEndpoint       PCIeType = 0x0
	PCIeLegacyEndpoint PCIeType = 0x1
	PCIeRootPort       PCIeType = 0x4
	PCIeUpstreamPort   PCIeType = 0x5
	PCIeDownstreamPort PCIeType = 0x6
	PCIeToPCIBridge    PCIeType = 0x7 // conventional PCI below: its requester ids alias to the bridge
	PCIToPCIeBridge    PCIeType = 0x8
	PCIeRCEndpoint     PCIeType = 0x9
	PCIeRCEventColl    PCIeType = 0xa
)

func (t PCIeType) String() string {
	switch t {
	case PCIeEndpoint:
		return "endpoint"
	case PCIeLegacyEndpoint:
		return "legacy endpoint"
	case PCIeRootPort:
		return "root port"
	case PCIeUpstreamPort:
		return "switch upstream port"
	case PCIeDownstreamPort:
		return "switch downstream port"
	case PCIeToPCIBridge:
		return "PCIe-to-PCI bridge"
	case PCIToPCIeBridge:
		return "PCI-to-PCIe bridge"
	case PCIeRCEndpoint:
		return "root complex integrated endpoint"
	case PCIeRCEventColl:
		return "root complex event collector"
	}
	return fmt.Sprintf("PCIe type %#x", uint8(t))
}

// ACSFlags are the ACS capability and control bits (PCI_ACS_* in
// pci_regs.h).
type ACSFlags uint16

// The ACS bits.
const (
	ACSSourceValidation   ACSFlags = 1 << 0 // SV
	ACSTranslationBlock   ACSFlags = 1 << 1 // TB
	ACSRequestRedirect    ACSFlags = 1 << 2 // RR: P2P requests go up to the root
	ACSCompletionRedirect ACSFlags = 1 << 3 // CR
	ACSUpstreamForwarding ACSFlags = 1 << 4 // UF
	ACSEgressControl      ACSFlags = 1 << 5 // EC
	ACSDirectTranslated   ACSFlags = 1 << 6 // DT
)

// acsIsolation is what the kernel requires of every port on the way up
// before it gives a device a group of its own (REQ_ACS_FLAGS in
// drivers/iommu/iommu.c).
const acsIsolation = ACSSourceValidation | ACSRequestRedirect | ACSCompletionRedirect | ACSUpstreamForwarding

// Names lists the set bits by their short names, lowest first.
func (f ACSFlags) Names() []string {
	var out []string
	for i, n := range []string{"SV", "TB", "RR", "CR", "UF", "EC", "DT"} {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func (f ACSFlags) String() string {
	if f == 0 {
		return "none"
	}
	return strings.Join(f.Names(), " ")
}

// ACS is a function's ACS extended capability.
type ACS struct {
	Cap  ACSFlags // what the port implements
	Ctrl ACSFlags // what is enabled
}

// Isolates reports whether the port separates its devices as the kernel's
// group rule demands: each of SV, RR, CR and UF enabled, unless the port
// does not implement it (then the spec has it hard-wired on; the kernel
// reads it so too, in pci_acs_flags_enabled).
func (a ACS) Isolates() bool {
	need := acsIsolation & a.Cap
	return a.Ctrl&need == need
}

// Missing is what isolation lacks: the required bits implemented but off.
func (a ACS) Missing() ACSFlags { return acsIsolation & a.Cap &^ a.Ctrl }

// ConfigInfo is what the config space says about isolation.
type ConfigInfo struct {
	PCIe *PCIeType // nil: conventional PCI (no PCI Express capability)
	// ACS is nil when the function has no ACS capability, or when only the
	// first 256 bytes could be read (without root sysfs shows 64).
	ACS *ACS
	// Extended is false when the extended config space was not read (a
	// short file): then no ACS is not the same as ACS absent.
	Extended bool
}

// PCI config space offsets and capability ids (pci_regs.h).
const (
	cfgStatus        = 0x06
	cfgStatusCapList = 0x10
	cfgCapPtr        = 0x34
	capIDExp         = 0x10
	extCapStart      = 0x100
	extCapIDACS      = 0x000d
	configSize       = 4096
)

// ParseConfig reads a function's config space (the sysfs config file,
// 64, 256 or 4096 bytes) for its PCIe port type and ACS capability. It
// walks both capability lists with loop and bounds checks: a malformed
// list is an error, never a hang.
func ParseConfig(b []byte) (ConfigInfo, error) {
	var ci ConfigInfo
	if len(b) < 64 {
		return ci, fmt.Errorf("config space: %d bytes, want at least 64", len(b))
	}
	if len(b) > configSize {
		b = b[:configSize]
	}
	if binary.LittleEndian.Uint32(b) == 0xffffffff {
		return ci, fmt.Errorf("config space reads all ones: the device is not responding")
	}
	if binary.LittleEndian.Uint16(b[cfgStatus:])&cfgStatusCapList != 0 {
		ptr := int(b[cfgCapPtr]) &^ 3
		for seen := 0; ptr != 0; seen++ {
			if ptr < 0x40 || ptr > 0xfc {
				return ConfigInfo{}, fmt.Errorf("config space: capability pointer %#x out of range", ptr)
			}
			if seen >= 48 { // (256-64)/4 capabilities at most
				return ConfigInfo{}, fmt.Errorf("config space: capability list loops")
			}
			if ptr+4 > len(b) {
				break // past what we may read
			}
			if b[ptr] == capIDExp {
				t := PCIeType(binary.LittleEndian.Uint16(b[ptr+2:]) >> 4 & 0xf)
				ci.PCIe = &t
				break
			}
			ptr = int(b[ptr+1]) &^ 3
		}
	}
	if len(b) < configSize || ci.PCIe == nil {
		return ci, nil // conventional PCI has no extended space
	}
	ci.Extended = true
	for off, seen := extCapStart, 0; off != 0; seen++ {
		if off < extCapStart || off+8 > len(b) {
			return ConfigInfo{}, fmt.Errorf("config space: extended capability at %#x out of range", off)
		}
		if seen >= (configSize-extCapStart)/4 {
			return ConfigInfo{}, fmt.Errorf("config space: extended capability list loops")
		}
		h := binary.LittleEndian.Uint32(b[off:])
		if h == 0 || h == 0xffffffff {
			break // no extended capabilities
		}
		if h&0xffff == extCapIDACS {
			ci.ACS = &ACS{Cap: ACSFlags(binary.LittleEndian.Uint16(b[off+4:])), Ctrl: ACSFlags(binary.LittleEndian.Uint16(b[off+6:]))}
			break
		}
		off = int(h>>20) &^ 3
	}
	return ci, nil
}
