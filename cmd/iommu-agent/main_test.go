package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunRejectsUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runMain(context.Background(), []string{"frobnicate"}, &out, &errOut, 0); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "usage:") || out.Len() != 0 {
		t.Errorf("no usage on stderr: %q, or output %q", errOut.String(), out.String())
	}
}

func TestProbeWithoutIOMMU(t *testing.T) {
	root := t.TempDir()
	var out bytes.Buffer
	err := run(context.Background(), []string{"probe", "-sysfs", filepath.Join(root, "sys"), "-dev", filepath.Join(root, "dev")}, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no IOMMU") {
		t.Errorf("probe on a host without IOMMU does not say so:\n%s", out.String())
	}
}

func TestProbeDecodesVTD(t *testing.T) {
	root := t.TempDir()
	unit := filepath.Join(root, "sys", "class", "iommu", "dmar0", "intel-iommu")
	if err := os.MkdirAll(unit, 0o755); err != nil {
		t.Fatal(err)
	}
	// What QEMU's intel-iommu,caching-mode=on shows (the VT-d guest of hwtests/vm).
	for name, v := range map[string]string{"cap": "d2008c222f0686\n", "ecap": "f00f4a\n"} {
		if err := os.WriteFile(filepath.Join(unit, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"probe", "-sysfs", filepath.Join(root, "sys"), "-dev", filepath.Join(root, "dev")}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IOMMU units: 1", "dmar0: VT-d", "48-bit", " CM "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("probe output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "no IOMMU") {
		t.Errorf("probe says no IOMMU although dmar0 exists:\n%s", out.String())
	}
}

// An AMD-Vi unit: its EFR decoded and its facts by name; an SMMUv3 unit:
// where its registers would come from.
func TestProbeAMDAndSMMUv3(t *testing.T) {
	root := t.TempDir()
	for rel, v := range map[string]string{
		"class/iommu/ivhd0/amd-iommu/cap":      "1f03000f\n",
		"class/iommu/ivhd0/amd-iommu/features": "29d3:0\n",
	} {
		p := filepath.Join(root, "sys", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "sys", "class", "iommu", "smmu3.0x0000000009050000", "devices"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"probe", "-sysfs", filepath.Join(root, "sys"), "-dev", filepath.Join(root, "dev")}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IOMMU units: 2", "ivhd0: AMD-Vi cap=0x1f03000f EFR=0x00000000000029d3",
		"facts (sysfs amd-iommu/cap,features): host page tables 6-level", "PRI yes",
		"smmu3.0x0000000009050000: Arm SMMUv3", "sysfs has no SMMUv3 registers; IOMMU_GET_HW_INFO has them"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("probe output lacks %q:\n%s", want, out.String())
		}
	}
}
