package sysfs

import (
	"reflect"
	"strings"
	"testing"
)

// Each parser returns an error or a value, never both and never a panic;
// a parsed address prints back to something that parses to itself.

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"0000:00:01.0", "01:00.0", "10000:e1:1f.7", "", "0000:00:20.0", "0:0:0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if a != (Address{}) {
				t.Fatalf("ParseAddress(%q) = %v with error %v", s, a, err)
			}
			return
		}
		if a.Device > 0x1f || a.Function > 7 {
			t.Fatalf("ParseAddress(%q) = %+v out of range", s, a)
		}
		b, err := ParseAddress(a.String())
		if err != nil || b != a {
			t.Fatalf("round trip %q -> %v -> %v, %v", s, a, b, err)
		}
	})
}

func FuzzParseGroupLink(f *testing.F) {
	for _, s := range []string{"../../../kernel/iommu_groups/7", "x", "/-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseGroupLink(s)
		if err != nil && n != 0 || err == nil && n < 0 {
			t.Fatalf("parseGroupLink(%q) = %d, %v", s, n, err)
		}
	})
}

func FuzzParseResource(f *testing.F) {
	f.Add("0x00000000fea00000 0x00000000feafffff 0x0000000000040200\n0x0 0x0 0x0\n")
	f.Add("0x1 0x2")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseResource(s)
		if err != nil {
			if r != nil {
				t.Fatalf("parseResource(%q) = %v with error %v", s, r, err)
			}
			return
		}
		for _, x := range r {
			if x.End < x.Start || x.Index < 0 {
				t.Fatalf("parseResource(%q): %+v", s, x)
			}
		}
	})
}

func FuzzParseReservedRegions(f *testing.F) {
	f.Add("0x00000000fee00000 0x00000000feefffff msi\n")
	f.Add("0x0 garbage msi")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseReservedRegions(s)
		if err != nil {
			if r != nil {
				t.Fatalf("parseReservedRegions(%q) = %v with error %v", s, r, err)
			}
			return
		}
		for _, x := range r {
			if x.End < x.Start || x.Type == "" || strings.ContainsAny(x.Type, " \t\n") {
				t.Fatalf("parseReservedRegions(%q): %+v", s, x)
			}
		}
	})
}

func FuzzParseHexID(f *testing.F) {
	for _, s := range []string{"0x11e8", "0x00ff00", "0x", "11e8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseHexID(s, 24)
		if err != nil && v != 0 || err == nil && v >= 1<<24 {
			t.Fatalf("parseHexID(%q) = %#x, %v", s, v, err)
		}
	})
}

func FuzzParseNUMANode(f *testing.F) {
	for _, s := range []string{"-1", "0", "x", "-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseNUMANode(s)
		if err != nil && n != 0 || err == nil && n < -1 {
			t.Fatalf("parseNUMANode(%q) = %d, %v", s, n, err)
		}
	})
}

func FuzzParseCmdline(f *testing.F) {
	f.Add(`a=b "c d" e="f g" h`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range parseCmdline(s) {
			if p == "" || p == "--" {
				t.Fatalf("parseCmdline(%q): empty parameter", s)
			}
		}
	})
}

// A parsed uevent's header and environment agree, and formatting it again
// (header, then the environment) parses back to the same event.
func FuzzParseUevent(f *testing.F) {
	for _, s := range []string{
		"bind@/devices/pci0000:00/0000:00:03.0\x00ACTION=bind\x00DEVPATH=/devices/pci0000:00/0000:00:03.0\x00SUBSYSTEM=pci\x00DRIVER=vfio-pci\x00SEQNUM=12\x00",
		"remove@/devices/pci0000:00/0000:00:03.0/0000:02:01.0\x00SUBSYSTEM=pci\x00",
		"libudev\x00\xfe\xed\xca\xfe", "add@/x\x00=", "add@/x\x00SEQNUM=99999999999999999999", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseUevent(b)
		if err != nil {
			if u.Action != "" || u.DevPath != "" || u.Env != nil {
				t.Fatalf("ParseUevent(%q) = %+v with error %v", b, u, err)
			}
			return
		}
		if u.Action == "" || !strings.HasPrefix(u.DevPath, "/") || u.Env == nil || u.Subsystem != u.Env["SUBSYSTEM"] {
			t.Fatalf("ParseUevent(%q) = %+v", b, u)
		}
		out := []string{u.Action + "@" + u.DevPath}
		for k, v := range u.Env {
			out = append(out, k+"="+v)
		}
		v, err := ParseUevent([]byte(strings.Join(out, "\x00")))
		if err != nil || !reflect.DeepEqual(u, v) {
			t.Fatalf("round trip %q: %+v -> %+v, %v", b, u, v, err)
		}
		if a, ok := u.PCIAddress(); ok && a.String() == "" {
			t.Fatalf("PCIAddress of %+v empty", u)
		}
	})
}

func FuzzParsePCIUevent(f *testing.F) {
	for _, s := range []string{
		"DRIVER=e1000e\nPCI_CLASS=20000\nPCI_ID=8086:10D3\nPCI_SUBSYS_ID=8086:0000\nPCI_SLOT_NAME=0000:00:01.0\n",
		"PCI_CLASS=zz\nPCI_ID=1:2\nPCI_SUBSYS_ID=3:4\n", "PCI_ID=8086\n", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, found, err := parsePCIUevent(s)
		if (err != nil || !found) && ids != (pciIDs{}) || err != nil && found || ids.class > 0xffffff {
			t.Fatalf("parsePCIUevent(%q) = %+v, %v, %v", s, ids, found, err)
		}
	})
}

// ParseConfig never hangs or panics on any bytes, and what it finds is
// consistent: ACS only with the extended space, extended only for PCIe.
func FuzzParseConfig(f *testing.F) {
	f.Add(make([]byte, 64))
	f.Add(make([]byte, 4096))
	seed := make([]byte, 4096)
	seed[6], seed[0x34], seed[0x40], seed[0x42] = 0x10, 0x40, 0x10, 0x42
	seed[0x100], seed[0x101], seed[0x102], seed[0x103] = 0x0d, 0x00, 0x01, 0x00
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		ci, err := ParseConfig(b)
		if err != nil {
			if ci != (ConfigInfo{}) {
				t.Fatalf("ParseConfig = %+v with error %v", ci, err)
			}
			return
		}
		if ci.ACS != nil && !ci.Extended || ci.Extended && (ci.PCIe == nil || len(b) < configSize) {
			t.Fatalf("ParseConfig(%d bytes) = %+v", len(b), ci)
		}
	})
}
