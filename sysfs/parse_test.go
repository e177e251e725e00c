package sysfs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Address
		err  string // substring of the error; "" for success
	}{
		{in: "0000:00:01.0", want: Address{0, 0, 1, 0}},
		{in: "0000:3b:1f.7", want: Address{0, 0x3b, 0x1f, 7}},
		{in: "10000:E1:00.0", want: Address{0x10000, 0xe1, 0, 0}},
		{in: "01:00.0", want: Address{0, 1, 0, 0}},
		{in: "", err: "wrong number of ':'"},
		{in: "0000:00:01", err: "no '.'"},
		{in: "0:00:01.0", err: "domain must have 4 to 8"},
		{in: "000000000:00:01.0", err: "domain must have 4 to 8"},
		{in: "0000:0:01.0", err: "2 hex digits"},
		{in: "0000:00:1.0", err: "2 hex digits"},
		{in: "0000:00:01.10", err: "2 hex digits"},
		{in: "0000:00:20.0", err: "device above 0x1f"},
		{in: "0000:00:01.8", err: "function above 7"},
		{in: "0000:0g:01.0", err: "not hex"},
		{in: "0000:+1:01.0", err: "not hex"},
		{in: "0000:00:01.0:1", err: "wrong number"},
		{in: "0000:00:01.0\n", err: "2 hex digits"},
	} {
		got, err := ParseAddress(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseAddress(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrAddress)):
			t.Errorf("ParseAddress(%q) error %v, want %q", tc.in, err, tc.err)
		}
	}
	if s := (Address{0x10000, 0xe1, 2, 3}).String(); s != "10000:e1:02.3" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseGroupLink(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"../../../kernel/iommu_groups/7": 7, "12": 12, "/sys/kernel/iommu_groups/0": 0} {
		if got, err := parseGroupLink(in); err != nil || got != want {
			t.Errorf("parseGroupLink(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "../iommu_groups/", "../iommu_groups/x", "../iommu_groups/-1", "../iommu_groups/+1", "../iommu_groups/99999999999"} {
		if _, err := parseGroupLink(in); err == nil {
			t.Errorf("parseGroupLink(%q): no error", in)
		}
	}
}

func TestParseResource(t *testing.T) {
	t.Parallel()
	text := "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" +
		"0x00000000fea00000 0x00000000feafffff 0x0000000000040200\n" +
		"0x000000000000c040 0x000000000000c05f 0x0000000000040101\n"
	got, err := parseResource(text)
	want := []Resource{{1, 0xfea00000, 0xfeafffff, 0x40200}, {2, 0xc040, 0xc05f, 0x40101}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseResource = %+v, %v", got, err)
	}
	if r, err := parseResource(""); err != nil || r != nil {
		t.Errorf("parseResource(empty) = %v, %v", r, err)
	}
	for _, bad := range []string{"0x1 0x2", "0x1 0x2 0x3 0x4", "1 2 3", "0x2 0x1 0x200", "0x 0x1 0x1", "0x1 0x2 0x10000000000000000"} {
		if _, err := parseResource(bad); err == nil {
			t.Errorf("parseResource(%q): no error", bad)
		}
	}
}

func TestParseReservedRegions(t *testing.T) {
	t.Parallel()
	got, err := parseReservedRegions("0x0000000000000000 0x0000000000ffffff direct-relaxable\n0x00000000fee00000 0x00000000feefffff msi\n")
	want := []ReservedRegion{{0, 0xffffff, "direct-relaxable"}, {0xfee00000, 0xfeefffff, "msi"}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseReservedRegions = %+v, %v", got, err)
	}
	for _, bad := range []string{"0xfee00000 0xfeefffff", "0xfee00000 garbage msi", "fee00000 0xfeefffff msi", "0x2 0x1 msi"} {
		if _, err := parseReservedRegions(bad); err == nil {
			t.Errorf("parseReservedRegions(%q): no error", bad)
		}
	}
}

func TestParseHexID(t *testing.T) {
	t.Parallel()
	if v, err := parseHexID("0x11e8", 16); err != nil || v != 0x11e8 {
		t.Errorf("parseHexID = %#x, %v", v, err)
	}
	for _, bad := range []string{"11e8", "0x", "0x10000", "0x-1", "0X11", " 0x1"} {
		if _, err := parseHexID(bad, 16); err == nil {
			t.Errorf("parseHexID(%q): no error", bad)
		}
	}
}

func TestParseNUMANodeAndBool(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"-1": -1, "0": 0, "3": 3} {
		if got, err := parseNUMANode(in); err != nil || got != want {
			t.Errorf("parseNUMANode(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-2", "x", "1.0"} {
		if _, err := parseNUMANode(bad); err == nil {
			t.Errorf("parseNUMANode(%q): no error", bad)
		}
	}
	if _, err := parseBool01("Y"); err == nil {
		t.Error("parseBool01(Y): no error")
	}
}

func TestParseCmdline(t *testing.T) {
	t.Parallel()
	got := parseCmdline(`BOOT_IMAGE=/vmlinuz intel_iommu=on  iommu=pt dyndbg="file vfio.c +p" quiet -- init=arg` + "\n")
	want := Cmdline{"BOOT_IMAGE=/vmlinuz", "intel_iommu=on", "iommu=pt", `dyndbg="file vfio.c +p"`, "quiet"}
	if !slices.Equal(got, want) {
		t.Errorf("parseCmdline = %q", got)
	}
	if got := parseCmdline("a --"); !slices.Equal(got, Cmdline{"a"}) {
		t.Errorf("parseCmdline(a --) = %q", got)
	}
	c := Cmdline{"iommu=pt", "iommu=nopt", "quiet"}
	if v, ok := c.Lookup("iommu"); !ok || v != "nopt" {
		t.Errorf("Lookup(iommu) = %q, %v: the last one wins", v, ok)
	}
}

func TestParsePCIUevent(t *testing.T) {
	t.Parallel()
	ids, found, err := parsePCIUevent("DRIVER=vfio-pci\nPCI_CLASS=FF00\nPCI_ID=1234:11E8\nPCI_SUBSYS_ID=1AF4:1100\nPCI_SLOT_NAME=0000:00:03.0\nMODALIAS=pci:v00001234d000011E8sv00001AF4sd00001100bcFFsc00i00\n")
	if want := (pciIDs{vendor: 0x1234, device: 0x11e8, subVendor: 0x1af4, subDevice: 0x1100, class: 0xff00, driver: "vfio-pci"}); err != nil || !found || ids != want {
		t.Errorf("parsePCIUevent = %+v, %v, %v; want %+v", ids, found, err, want)
	}
	if _, found, err := parsePCIUevent("PCI_CLASS=FF00\nPCI_ID=1234:11E8\n"); found || err != nil {
		t.Errorf("without PCI_SUBSYS_ID: found %v, %v; want the files read instead", found, err)
	}
	for _, bad := range []string{"PCI_CLASS=x\nPCI_ID=1:2\nPCI_SUBSYS_ID=3:4", "PCI_CLASS=1\nPCI_ID=12\nPCI_SUBSYS_ID=3:4", "PCI_CLASS=1\nPCI_ID=1:2\nPCI_SUBSYS_ID=3:10000"} {
		if _, _, err := parsePCIUevent(bad); err == nil {
			t.Errorf("parsePCIUevent(%q): no error", bad)
		}
	}
}
