package vm

import (
	"slices"
	"strings"
	"testing"
)

func TestParseDevices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Devices
	}{
		{"edu", Devices{{Kind: "edu"}}},
		{"edu,edu", Devices{{Kind: "edu"}, {Kind: "edu"}}},
		{"bridge:edu,edu", Devices{{Kind: "edu", Bridge: 1}, {Kind: "edu", Bridge: 1}}},
		{"edu,bridge:edu", Devices{{Kind: "edu"}, {Kind: "edu", Bridge: 1}}},
		{"bridge:edu,bridge:e1000", Devices{{Kind: "edu", Bridge: 1}, {Kind: "e1000", Bridge: 2}}},
		{"igb", Devices{{Kind: "igb"}}},
		{" edu , igb ", Devices{{Kind: "edu"}, {Kind: "igb"}}},
	} {
		got, err := ParseDevices(tc.in)
		if err != nil {
			t.Errorf("ParseDevices(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ParseDevices(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if again, err := ParseDevices(got.String()); err != nil || !slices.Equal(again, got) {
			t.Errorf("String() %q does not parse back: %v, %v", got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "nvme", "edu,", "bridge:", "bridge:igb", "edu,bridge:edu,e1000e"} {
		if d, err := ParseDevices(bad); err == nil {
			t.Errorf("ParseDevices(%q) = %v, want an error", bad, d)
		}
	}
}

func TestDevicesQEMUArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in        string
		firstSlot int
		want      string
	}{
		{"edu", 1, "-device edu,id=edu0,bus=pcie.0,addr=0x1"},
		{"edu,edu", 1, "-device edu,id=edu0,bus=pcie.0,addr=0x1 -device edu,id=edu1,bus=pcie.0,addr=0x2"},
		{"edu", 2, "-device edu,id=edu0,bus=pcie.0,addr=0x2"},
		{"bridge:edu,edu", 1, "-device pcie-root-port,id=rp1,bus=pcie.0,addr=0x1,chassis=1,slot=1 " +
			"-device pcie-pci-bridge,id=br1,bus=rp1 -device edu,id=edu0,bus=br1 -device edu,id=edu1,bus=br1"},
		{"edu,igb", 1, "-device edu,id=edu0,bus=pcie.0,addr=0x1 " +
			"-device pcie-root-port,id=rp1,bus=pcie.0,addr=0x2,chassis=1,slot=1 " +
			"-netdev user,id=net-igb0,restrict=on -device igb,id=igb0,bus=rp1,netdev=net-igb0"},
		{"e1000", 1, "-netdev user,id=net-e10000,restrict=on -device e1000,id=e10000,bus=pcie.0,addr=0x1,netdev=net-e10000"},
		{"igb,bridge:edu", 1, "-device pcie-root-port,id=rp1,bus=pcie.0,addr=0x1,chassis=1,slot=1 " +
			"-netdev user,id=net-igb0,restrict=on -device igb,id=igb0,bus=rp1,netdev=net-igb0 " +
			"-device pcie-root-port,id=rp2,bus=pcie.0,addr=0x2,chassis=2,slot=2 " +
			"-device pcie-pci-bridge,id=br1,bus=rp2 -device edu,id=edu0,bus=br1"},
	} {
		d, err := ParseDevices(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(d.QEMUArgs(tc.firstSlot, 0), " "); got != tc.want {
			t.Errorf("%q slot %d:\n got %s\nwant %s", tc.in, tc.firstSlot, got, tc.want)
		}
	}
}

func TestDevicesGuestEnvAndModules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, env string
		mods    []string
	}{
		{"edu", "edu@1234:11e8@0000:00:01.0", nil},
		{"edu,edu", "edu@1234:11e8@0000:00:01.0,edu@1234:11e8@0000:00:02.0", nil},
		{"igb,edu", "igb@8086:10c9,edu@1234:11e8@0000:00:02.0", []string{"igb"}},
		{"bridge:edu,edu", "edu@1234:11e8,edu@1234:11e8", nil},
		{"e1000,e1000,e1000e", "e1000@8086:100e@0000:00:01.0,e1000@8086:100e@0000:00:02.0,e1000e@8086:10d3", []string{"e1000", "e1000e"}},
	} {
		d, err := ParseDevices(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.GuestEnv(1); got != tc.env {
			t.Errorf("%q GuestEnv = %q, want %q", tc.in, got, tc.env)
		}
		if got := d.Modules(); !slices.Equal(got, tc.mods) {
			t.Errorf("%q Modules = %v, want %v", tc.in, got, tc.mods)
		}
	}
}
