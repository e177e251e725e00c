//go:build !hwtests

package sriov_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/sriov"
)

func TestParseMAC(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string
	}{
		{"52:54:00:12:34:56", "52:54:00:12:34:56"},
		{"AA:bb:Cc:dD:ee:FF", "aa:bb:cc:dd:ee:ff"},
		{"00:00:00:00:00:00", "00:00:00:00:00:00"},
	} {
		m, err := sriov.ParseMAC(c.in)
		if err != nil || m.String() != c.want {
			t.Errorf("ParseMAC(%q) = %v, %v; want %s", c.in, m, err, c.want)
		}
	}
	for _, bad := range []string{"", "52:54:00:12:34", "52:54:00:12:34:56:78", "52-54-00-12-34-56", "5254.0012.3456",
		"52:54:00:12:34:5g", "52:54:00:12:34:5", ":52:54:00:12:34:5", "52:54:00:12:34:56 ", "+2:54:00:12:34:56"} {
		if m, err := sriov.ParseMAC(bad); !errors.Is(err, sriov.ErrMAC) {
			t.Errorf("ParseMAC(%q) = %v, %v; want ErrMAC", bad, m, err)
		}
	}
}

func TestParseSettings(t *testing.T) {
	t.Parallel()
	s, err := sriov.ParseSettings([]string{"vlan=4095", "qos=7", "trust=off", "spoofchk=on", "state=auto", "max_rate=0"})
	if err != nil {
		t.Fatal(err)
	}
	if *s.VLAN != 4095 || *s.QoS != 7 || *s.Trust || !*s.SpoofChk || *s.State != sriov.LinkAuto || *s.MaxRate != 0 || s.MAC != nil || s.MinRate != nil {
		t.Errorf("%+v", s)
	}
	for _, c := range []struct {
		words []string
		says  string
	}{
		{nil, "nothing to set"},
		{[]string{"vlan"}, "not key=value"},
		{[]string{"vlan=4096"}, "0 to 4095"},
		{[]string{"vlan=-1"}, "0 to 4095"},
		{[]string{"vlan=0x10"}, "0 to 4095"},
		{[]string{"qos=8"}, "0 to 7"},
		{[]string{"trust=maybe"}, "on or off"},
		{[]string{"state=up"}, "auto, enable or disable"},
		{[]string{"vlan=1", "vlan=2"}, "twice"},
		{[]string{"colour=red"}, "unknown key"},
		{[]string{"mac=01:00:00:00:00:01"}, "not unicast"},
		{[]string{"mac=00:00:00:00:00:00"}, "zero"},
		{[]string{"mac=52:54:00:12:34"}, "malformed MAC"},
		{[]string{"min_rate=200", "max_rate=100"}, "above max_rate"},
		{[]string{"max_rate=4294967296"}, "0 to 2147483647"},
	} {
		if _, err := sriov.ParseSettings(c.words); !errors.Is(err, sriov.ErrInvalid) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseSettings(%q): %v, want ErrInvalid saying %q", c.words, err, c.says)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	t.Parallel()
	c := sriov.Config{MAC: sriov.MAC{0x52, 0x54, 0, 0x12, 0x34, 0x56}, VLAN: 10, QoS: 2, Trust: true, State: sriov.LinkDisable, MaxRate: 100}
	b, err := json.Marshal(sriov.Snapshot{VF: "0000:01:10.0", Config: c})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"vf":"0000:01:10.0","config":{"mac":"52:54:00:12:34:56","vlan":10,"qos":2,"spoofchk":false,"trust":true,"state":"disable","min_rate":0,"max_rate":100}}`
	if string(b) != want {
		t.Errorf("JSON %s\nwant %s", b, want)
	}
	var back sriov.Snapshot
	if err := json.Unmarshal(b, &back); err != nil || back.Config != c {
		t.Errorf("round trip: %+v %v", back, err)
	}
}

func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"52:54:00:12:34:56", "AA:BB:CC:DD:EE:FF", "00:00:00:00:00:00", "52-54-00-12-34-56", "", "::::::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := sriov.ParseMAC(s)
		if err != nil {
			if !errors.Is(err, sriov.ErrMAC) || m != (sriov.MAC{}) {
				t.Fatalf("ParseMAC(%q): %v with value %v", s, err, m)
			}
			return
		}
		if m.String() != strings.ToLower(s) {
			t.Fatalf("ParseMAC(%q) formats as %s", s, m)
		}
		back, err := sriov.ParseMAC(m.String())
		if err != nil || back != m {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
	})
}

func FuzzParseSettings(f *testing.F) {
	for _, s := range []string{"mac=52:54:00:12:34:56 vlan=10 qos=3", "trust=on spoofchk=off state=enable", "min_rate=10 max_rate=100", "vlan=1 vlan=2", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words := strings.Fields(line)
		s, err := sriov.ParseSettings(words)
		if err != nil {
			if !errors.Is(err, sriov.ErrInvalid) {
				t.Fatalf("ParseSettings(%q): error %v is not ErrInvalid", words, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("ParseSettings(%q) accepted what Validate refuses: %v", words, err)
		}
		// What was accepted reads back the same through the canonical form.
		var c sriov.Config
		var again []string
		for _, a := range s.Attrs() {
			switch a {
			case sriov.AttrMAC:
				c.MAC = *s.MAC
			case sriov.AttrVLAN:
				c.VLAN = *s.VLAN
			case sriov.AttrQoS:
				c.QoS = *s.QoS
			case sriov.AttrSpoofChk:
				c.SpoofChk = *s.SpoofChk
			case sriov.AttrTrust:
				c.Trust = *s.Trust
			case sriov.AttrState:
				c.State = *s.State
			case sriov.AttrMinRate:
				c.MinRate = *s.MinRate
			case sriov.AttrMaxRate:
				c.MaxRate = *s.MaxRate
			}
			again = append(again, string(a)+"="+c.Value(a))
		}
		if len(again) != len(words) {
			t.Fatalf("ParseSettings(%q) kept %d of %d words", words, len(again), len(words))
		}
		s2, err := sriov.ParseSettings(again)
		if err != nil || len(s2.Attrs()) != len(s.Attrs()) {
			t.Fatalf("canonical %q: %v", again, err)
		}
	})
}
