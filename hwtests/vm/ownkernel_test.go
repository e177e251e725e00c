package vm

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestMissingSettings(t *testing.T) {
	frag := `# comment
CONFIG_IOMMUFD=y
CONFIG_ARM_SMMU_V3_IOMMUFD=y
CONFIG_LOCALVERSION="-hwtests"

CONFIG_MODULES=n
CONFIG_DEBUG_INFO_BTF=y
`
	config := `CONFIG_IOMMUFD=y
# CONFIG_ARM_SMMU_V3_IOMMUFD is not set
CONFIG_LOCALVERSION="-hwtests"
# CONFIG_MODULES is not set
`
	got := missingSettings(frag, config)
	want := []string{"CONFIG_ARM_SMMU_V3_IOMMUFD=y", "CONFIG_DEBUG_INFO_BTF=y"}
	if !slices.Equal(got, want) {
		t.Errorf("missingSettings = %q, want %q", got, want)
	}
	if got := missingSettings("CONFIG_MODULES=n\n", "CONFIG_MODULES=y\n"); !slices.Equal(got, []string{"CONFIG_MODULES=n"}) {
		t.Errorf("=n against =y: %q", got)
	}
}

// The committed fragment is one kconfig can take: settings only, no
// duplicates, and the symbols the lane exists for.
func TestOwnKernelFragments(t *testing.T) {
	for _, l := range Lanes() {
		if l.Build == nil {
			continue
		}
		frag, err := l.Build.fragment()
		if err != nil {
			t.Fatalf("%s: %v", l.Name, err)
		}
		lines := fragmentLines(frag)
		seen := map[string]bool{}
		for _, line := range lines {
			name, _, ok := strings.Cut(line, "=")
			if !ok || !strings.HasPrefix(name, "CONFIG_") {
				t.Errorf("%s: %q is not a CONFIG_X=value line", l.Build.Fragment, line)
			}
			if seen[name] {
				t.Errorf("%s: %s set twice", l.Build.Fragment, name)
			}
			seen[name] = true
		}
		for _, must := range []string{"CONFIG_IOMMUFD=y", "CONFIG_VFIO_DEVICE_CDEV=y", "CONFIG_DEBUG_INFO_BTF=y", "CONFIG_IKCONFIG_PROC=y"} {
			if !slices.Contains(lines, must) {
				t.Errorf("%s lacks %s", l.Build.Fragment, must)
			}
		}
		if l.UpgradeIORT && !slices.Contains(lines, "CONFIG_ACPI_TABLE_UPGRADE=y") {
			t.Errorf("%s upgrades the IORT but %s lacks CONFIG_ACPI_TABLE_UPGRADE=y", l.Name, l.Build.Fragment)
		}
	}
}

func TestPickSourceVersion(t *testing.T) {
	madison := ` linux-source-7.3 | 7.3.9-1~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages
 linux-source-7.3 | 7.3.4-1~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages
 linux-source-7.3 | 7.3.2-1 | http://deb.debian.org/debian sid/main amd64 Packages
`
	for _, c := range []struct {
		pin, want string
		pinned    bool
	}{
		{"7.3.4-1~bpo13+1", "7.3.4-1~bpo13+1", true},
		{"7.3.1-1~bpo13+1", "7.3.9-1~bpo13+1", false},
	} {
		got, pinned, err := pickSourceVersion(madison, c.pin, "trixie-backports", "7.3.")
		if err != nil || got != c.want || pinned != c.pinned {
			t.Errorf("pin %s: %q %v %v, want %q %v", c.pin, got, pinned, err, c.want, c.pinned)
		}
	}
	if _, _, err := pickSourceVersion(" linux-source-7.3 | 7.3.2-1 | http://x sid/main amd64 Packages\n", "7.3.4-1~bpo13+1", "trixie-backports", "7.3."); err == nil {
		t.Error("a version from another suite was taken")
	}
}

func TestOwnLaneQEMUArgs(t *testing.T) {
	l, err := LaneByName("arm64-smmuv3-7.3")
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(BootSpec{Lane: l, Accel: "tcg", Memory: "2G", SMP: 1, Kernel: "Image", Initrd: "i"}.QEMUArgs(), " ")
	for _, want := range []string{"-bios " + l.Firmware, "acpi=force", "virt,iommu=smmuv3,gic-version=3"} {
		if !strings.Contains(args, want) {
			t.Errorf("QEMU args lack %q: %s", want, args)
		}
	}
}

func TestOwnLaneRefusesModuleDevices(t *testing.T) {
	l, err := LaneByName("arm64-smmuv3-7.3")
	if err != nil {
		t.Fatal(err)
	}
	devs, err := ParseDevices("edu,e1000e")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = pack(Config{Lane: l, Devices: devs, Variant: VariantStd}, Kernel{}, "", nil, t.TempDir(), t.TempDir(), "tcg", packExtras{})
	if err == nil || !strings.Contains(err.Error(), "CONFIG_E1000E") {
		t.Errorf("pack with an e1000e on the own lane: %v, want a refusal naming CONFIG_E1000E", err)
	}
	devs, _ = ParseDevices("igb,bridge:edu,e1000")
	if err := builtInDrivers(l, devs); err != nil {
		t.Errorf("igb and e1000 on the own lane: %v", err)
	}
}

func TestLanePrefixer(t *testing.T) {
	var b bytes.Buffer
	p := newLanePrefixer(&b, "x86_64-vtd")
	for _, s := range []string{"--- PASS: TestA (0.00s)\n=== RUN", "   TestB\n", "", "ok  \thwtests\t1.0s\n"} {
		if n, err := p.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	want := "[x86_64-vtd] --- PASS: TestA (0.00s)\n[x86_64-vtd] === RUN   TestB\n[x86_64-vtd] ok  \thwtests\t1.0s\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
