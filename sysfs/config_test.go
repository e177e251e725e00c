package sysfs

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// config builds a 4096-byte config space: a PCIe capability of type t at
// 0x40 (after a power management one at 0x50 in the list), and, if acs is
// set, an AER capability at 0x100 followed by ACS at 0x148.
func config(t PCIeType, acs *ACS) []byte {
	b := make([]byte, configSize)
	binary.LittleEndian.PutUint32(b, 0x000c1b36)
	binary.LittleEndian.PutUint16(b[cfgStatus:], cfgStatusCapList)
	b[cfgCapPtr] = 0x50
	b[0x50], b[0x51] = 0x01, 0x40 // PM, next 0x40
	b[0x40], b[0x41] = capIDExp, 0x00
	binary.LittleEndian.PutUint16(b[0x42:], uint16(t)<<4|2)
	if acs != nil {
		binary.LittleEndian.PutUint32(b[0x100:], 0x148<<20|1<<16|0x0001) // AER
		binary.LittleEndian.PutUint32(b[0x148:], 0<<20|1<<16|extCapIDACS)
		binary.LittleEndian.PutUint16(b[0x14c:], uint16(acs.Cap))
		binary.LittleEndian.PutUint16(b[0x14e:], uint16(acs.Ctrl))
	}
	return b
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	full := ACSSourceValidation | ACSTranslationBlock | ACSRequestRedirect | ACSCompletionRedirect | ACSUpstreamForwarding
	ci, err := ParseConfig(config(PCIeRootPort, &ACS{Cap: full, Ctrl: full &^ ACSTranslationBlock}))
	if err != nil || ci.PCIe == nil || *ci.PCIe != PCIeRootPort || !ci.Extended || ci.ACS == nil ||
		!ci.ACS.Isolates() || ci.ACS.Ctrl.String() != "SV RR CR UF" {
		t.Fatalf("root port with ACS: %+v, %v", ci, err)
	}
	ci, err = ParseConfig(config(PCIeDownstreamPort, &ACS{Cap: full, Ctrl: ACSSourceValidation}))
	if err != nil || ci.ACS == nil || ci.ACS.Isolates() || ci.ACS.Missing() != ACSRequestRedirect|ACSCompletionRedirect|ACSUpstreamForwarding {
		t.Fatalf("port with ACS off: %+v, %v", ci, err)
	}
	// Bits a port does not implement count as on.
	if a := (ACS{Cap: ACSSourceValidation, Ctrl: ACSSourceValidation}); !a.Isolates() {
		t.Error("ACS implementing only SV, enabled: not isolating")
	}
	ci, err = ParseConfig(config(PCIeToPCIBridge, nil))
	if err != nil || ci.PCIe == nil || *ci.PCIe != PCIeToPCIBridge || ci.ACS != nil || !ci.Extended {
		t.Fatalf("PCIe-to-PCI bridge: %+v, %v", ci, err)
	}
	// Without root sysfs gives 64 (or 256) bytes: no type past the header, ACS unknown.
	ci, err = ParseConfig(config(PCIeRootPort, &ACS{Cap: full, Ctrl: full})[:64])
	if err != nil || ci.PCIe != nil || ci.Extended || ci.ACS != nil {
		t.Fatalf("64 bytes: %+v, %v", ci, err)
	}
	ci, err = ParseConfig(config(PCIeRootPort, &ACS{Cap: full, Ctrl: full})[:256])
	if err != nil || ci.PCIe == nil || ci.Extended || ci.ACS != nil {
		t.Fatalf("256 bytes: %+v, %v", ci, err)
	}
	conventional := config(PCIeEndpoint, nil)
	binary.LittleEndian.PutUint16(conventional[cfgStatus:], 0)
	if ci, err := ParseConfig(conventional); err != nil || ci.PCIe != nil {
		t.Fatalf("conventional: %+v, %v", ci, err)
	}

	loop := config(PCIeRootPort, nil)
	loop[0x41] = 0x40 // PCIe cap points at itself, but it is found first; loop PM instead
	loop[0x50], loop[0x51] = 0x01, 0x50
	loop[cfgCapPtr] = 0x50
	extLoop := config(PCIeRootPort, &ACS{})
	binary.LittleEndian.PutUint32(extLoop[0x148:], 0x100<<20|0x0002) // not ACS, back to 0x100
	for name, b := range map[string][]byte{
		"short": make([]byte, 63), "all ones": slices.Repeat([]byte{0xff}, configSize), "cap loop": loop, "ext loop": extLoop,
		"cap ptr low": func() []byte { b := config(PCIeRootPort, nil); b[cfgCapPtr] = 0x10; return b }(),
		"ext ptr low": func() []byte {
			b := config(PCIeRootPort, &ACS{})
			binary.LittleEndian.PutUint32(b[0x100:], 0x20<<20|0x0001)
			return b
		}(),
	} {
		if ci, err := ParseConfig(b); err == nil {
			t.Errorf("%s: %+v, no error", name, ci)
		}
	}
}

func TestSharingReasons(t *testing.T) {
	t.Parallel()
	a := func(s string) Address {
		x, err := ParseAddress(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	typ := func(p PCIeType) *PCIeType { return &p }
	rp, up := a("0000:00:01.0"), a("0000:00:01.0")
	devs := []Device{
		{Address: rp, Class: 0x060400, Config: &ConfigInfo{PCIe: typ(PCIeRootPort), Extended: true}},                                                  // no ACS
		{Address: a("0000:01:00.0"), Class: 0x060400, Upstream: &up, Config: &ConfigInfo{PCIe: typ(PCIeToPCIBridge), Extended: true}},                 // behind it
		{Address: a("0000:02:00.0"), Upstream: ptr(a("0000:01:00.0"))},                                                                                // edu
		{Address: a("0000:02:01.0"), Upstream: ptr(a("0000:01:00.0"))},                                                                                // e1000
		{Address: a("0000:00:02.0"), Class: 0x060400, Config: &ConfigInfo{PCIe: typ(PCIeRootPort), Extended: true, ACS: &ACS{Cap: 0x1f, Ctrl: 0x1d}}}, // isolating
		{Address: a("0000:03:00.0"), Upstream: ptr(a("0000:00:02.0"))},
		{Address: a("0000:00:03.0"), Class: 0x060400, Config: &ConfigInfo{PCIe: typ(PCIeRootPort), Extended: true, ACS: &ACS{Cap: 0x1f, Ctrl: 0x01}}},
		{Address: a("0000:04:00.0"), Upstream: ptr(a("0000:00:03.0"))},
		{Address: a("0000:00:04.0"), Class: 0x060400}, // config unreadable
		{Address: a("0000:05:00.0"), Upstream: ptr(a("0000:00:04.0"))},
	}
	if got := UpstreamPorts(devs, a("0000:02:01.0")); len(got) != 2 || got[0].Address != a("0000:01:00.0") || got[1].Address != rp {
		t.Errorf("UpstreamPorts = %v", got)
	}
	for _, tc := range []struct {
		members []string
		want    string
	}{
		{[]string{"0000:01:00.0", "0000:02:00.0", "0000:02:01.0"}, "0000:01:00.0 is a PCIe-to-PCI bridge"},
		{[]string{"0000:00:01.0", "0000:01:00.0"}, "0000:00:01.0 (root port) has no ACS capability"},
		{[]string{"0000:00:03.0", "0000:04:00.0"}, "0000:00:03.0 (root port) has ACS with RR CR UF off (control SV)"},
		{[]string{"0000:00:04.0", "0000:05:00.0"}, "bridge 0000:00:04.0: config space unreadable"},
		{[]string{"0000:00:02.0", "0000:03:00.0"}, "multifunction"},
	} {
		got := SharingReasons(devs, tc.members)
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, tc.want) }) {
			t.Errorf("SharingReasons(%v) = %q, want %q", tc.members, got, tc.want)
		}
	}
	if got := SharingReasons(devs, []string{"0000:03:00.0"}); got != nil {
		t.Errorf("group of one: %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestACSFlagsNames(t *testing.T) {
	t.Parallel()
	if got := ACSFlags(0x7f).String(); got != "SV TB RR CR UF EC DT" {
		t.Errorf("0x7f = %q", got)
	}
	if got := ACSFlags(0).String(); got != "none" {
		t.Errorf("0 = %q", got)
	}
}
