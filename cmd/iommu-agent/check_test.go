//go:build !hwtests

// The guest runs this package's test binary without sysfs/testdata, so the
// fixture tests stay out of the hwtests build; guest_test.go covers the real tree.

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const limitsHead = "Limit                     Soft Limit           Hard Limit           Units     \n" +
	"Max open files            1024                 524288               files     \n"

func checkJSON(t *testing.T, args ...string) ([]Finding, error) {
	t.Helper()
	out, err := runOut(t, append([]string{"check", "--json"}, args...)...)
	var fs []Finding
	if jerr := json.Unmarshal([]byte(out), &fs); jerr != nil {
		t.Fatalf("check --json: %v\n%s", jerr, out)
	}
	return fs, err
}

func byCheck(fs []Finding) map[string]Finding {
	m := map[string]Finding{}
	for _, f := range fs {
		m[f.Check] = f
	}
	return m
}

func TestCheckReadyGuest(t *testing.T) {
	t.Parallel()
	root := fixture(t, "vtd-guest-captured.txtar")
	dev := filepath.Join(root, "dev")
	writeFile(t, filepath.Join(dev, "iommu"), "")
	writeFile(t, filepath.Join(dev, "vfio", "vfio"), "")
	proc := filepath.Join(root, "proc")
	writeFile(t, filepath.Join(proc, "self", "limits"), limitsHead+"Max locked memory         unlimited            unlimited            bytes     \n")
	writeFile(t, filepath.Join(proc, "self", "status"), "Name:\tcheck\nCapEff:\t0000000000000000\n")
	args := []string{"-sysfs", filepath.Join(root, "sys"), "-proc", proc, "-dev", dev}

	fs, err := checkJSON(t, args...)
	if err != nil {
		t.Fatalf("check failed on a ready guest: %v\n%+v", err, fs)
	}
	want := []Finding{
		{Check: "firmware", Status: Pass, Detail: "no ACPI DMAR/IVRS/IORT table seen, but the kernel runs IOMMU units"},
		{Check: "IOMMU", Status: Pass, Detail: "1 unit(s): dmar0 (intel-vt-d)"},
		{Check: "kernel command line", Status: Pass, Detail: "no IOMMU parameters; the kernel's default enabled it"},
		{Check: "interrupt remapping", Status: Pass, Detail: "ecap IR set on every VT-d unit"},
		{Check: "module vfio", Status: Pass, Detail: "loaded (the VFIO core)"},
		{Check: "module vfio_pci", Status: Pass, Detail: "loaded (the vfio-pci driver devices are bound to)"},
		{Check: "module iommufd", Status: Pass, Detail: "loaded (iommufd and the VFIO device cdev)"},
		{Check: "module vfio_iommu_type1", Status: Pass, Detail: "loaded (the legacy VFIO container)"},
		{Check: "/dev/iommu", Status: Pass, Detail: filepath.Join(dev, "iommu") + " present (iommufd)"},
		{Check: "/dev/vfio/vfio", Status: Pass, Detail: filepath.Join(dev, "vfio", "vfio") + " present (VFIO container)"},
		{Check: "RLIMIT_MEMLOCK", Status: Pass, Detail: "soft unlimited, hard unlimited; pinned guest pages are charged against it"},
		{Check: "iommu_group 2", Status: Warn, Detail: "iommu_group 2: not viable: 0000:00:02.0 bound to virtio-pci",
			Fix: "to pass it through: iommu-agent bind group 2 (every endpoint to vfio-pci)"},
		{Check: "iommu_group 3", Status: Warn, Detail: "iommu_group 3: not viable: 0000:00:03.0 bound to virtio-pci",
			Fix: "to pass it through: iommu-agent bind group 3 (every endpoint to vfio-pci)"},
	}
	if len(fs) != len(want) {
		t.Fatalf("check --json: %d findings, want %d:\n%+v", len(fs), len(want), fs)
	}
	for i := range want {
		if fs[i] != want[i] {
			t.Errorf("finding %d = %+v\nwant %+v", i, fs[i], want[i])
		}
	}

	out, err := runOut(t, append([]string{"check"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"PASS IOMMU                    1 unit(s): dmar0 (intel-vt-d)\n",
		"WARN iommu_group 2            iommu_group 2: not viable: 0000:00:02.0 bound to virtio-pci\n" +
			"                              fix: to pass it through: iommu-agent bind group 2",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("check output lacks %q:\n%s", w, out)
		}
	}
}

func TestCheckWithoutIOMMU(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "sys"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "proc", "cmdline"), "console=ttyS0 intel_iommu=off\n")
	writeFile(t, filepath.Join(root, "proc", "self", "limits"), limitsHead+"Max locked memory         8388608              8388608              bytes     \n")
	fs, err := checkJSON(t, "-sysfs", filepath.Join(root, "sys"), "-proc", filepath.Join(root, "proc"), "-dev", filepath.Join(root, "dev"))
	if err == nil || !strings.Contains(err.Error(), "checks failed") {
		t.Errorf("check on a host without IOMMU: err %v, want failure", err)
	}
	m := byCheck(fs)
	for name, st := range map[string]Status{
		"firmware": Fail, "IOMMU": Fail, "kernel command line": Fail, "interrupt remapping": Fail,
		"module vfio": Fail, "module vfio_pci": Fail, "module iommufd": Fail, "module vfio_iommu_type1": Fail,
		"/dev/iommu": Fail, "/dev/vfio/vfio": Fail, "RLIMIT_MEMLOCK": Warn,
	} {
		f, ok := m[name]
		if !ok || f.Status != st {
			t.Errorf("%s: %+v, want %s", name, f, st)
			continue
		}
		if st != Pass && f.Fix == "" {
			t.Errorf("%s: %s without a fix", name, st)
		}
	}
	if f := m["kernel command line"]; !strings.Contains(f.Detail, "intel_iommu=off") || !strings.Contains(f.Fix, "remove intel_iommu=off") {
		t.Errorf("cmdline finding %+v", f)
	}
	if f := m["RLIMIT_MEMLOCK"]; !strings.Contains(f.Detail, "soft 8 MiB, hard 8 MiB") || !strings.Contains(f.Fix, "ulimit -l") {
		t.Errorf("memlock finding %+v", f)
	}
}

func TestCheckFirmwareWithoutKernel(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "sys", "firmware", "acpi", "tables", "DMAR"), "DMAR")
	writeFile(t, filepath.Join(root, "proc", "cmdline"), "console=ttyS0\n")
	fs, err := checkJSON(t, "-sysfs", filepath.Join(root, "sys"), "-proc", filepath.Join(root, "proc"), "-dev", filepath.Join(root, "dev"))
	if err == nil {
		t.Error("check passed without IOMMU units")
	}
	m := byCheck(fs)
	if f := m["firmware"]; f.Status != Pass || !strings.Contains(f.Detail, "ACPI DMAR table present") {
		t.Errorf("firmware finding %+v", f)
	}
	if f := m["IOMMU"]; f.Status != Fail || f.Fix != "boot with intel_iommu=on" {
		t.Errorf("IOMMU finding %+v", f)
	}
}

func TestCheckIRAndMemlockCap(t *testing.T) {
	t.Parallel()
	root := fixture(t, "vtd-guest-captured.txtar")
	// Interrupt remapping off: ecap without bit 3 (0xf00f4a &^ 8).
	writeFile(t, filepath.Join(root, "sys", "devices", "virtual", "iommu", "dmar0", "intel-iommu", "ecap"), "f00f42\n")
	proc := filepath.Join(root, "proc")
	writeFile(t, filepath.Join(proc, "self", "limits"), limitsHead+"Max locked memory         65536                65536                bytes     \n")
	writeFile(t, filepath.Join(proc, "self", "status"), "CapEff:\t0000000000004000\n") // CAP_IPC_LOCK only
	fs, err := checkJSON(t, "-sysfs", filepath.Join(root, "sys"), "-proc", proc, "-dev", filepath.Join(root, "dev"))
	if err == nil {
		t.Error("check passed without interrupt remapping")
	}
	m := byCheck(fs)
	if f := m["interrupt remapping"]; f.Status != Fail || !strings.Contains(f.Detail, "ecap IR clear on dmar0") || !strings.Contains(f.Fix, "intremap=on") {
		t.Errorf("IR finding %+v", f)
	}
	if f := m["RLIMIT_MEMLOCK"]; f.Status != Pass || !strings.Contains(f.Detail, "soft 64 KiB") || !strings.Contains(f.Detail, "CAP_IPC_LOCK") {
		t.Errorf("memlock finding with CAP_IPC_LOCK %+v", f)
	}

	// allow_unsafe_interrupts turns the FAIL into a loud WARN.
	writeFile(t, filepath.Join(root, "sys", "module", "vfio_iommu_type1", "parameters", "allow_unsafe_interrupts"), "Y\n")
	fs, _ = checkJSON(t, "-sysfs", filepath.Join(root, "sys"), "-proc", proc, "-dev", filepath.Join(root, "dev"))
	if f := byCheck(fs)["interrupt remapping"]; f.Status != Warn || !strings.Contains(f.Detail, "vfio_iommu_type1.allow_unsafe_interrupts=Y") {
		t.Errorf("IR finding with allow_unsafe_interrupts %+v", f)
	}
}

func TestReadMemlock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		line       string
		soft, hard int64
		bad        bool
	}{
		{line: "Max locked memory         8388608              unlimited            bytes     ", soft: 8 << 20, hard: -1},
		{line: "Max locked memory         unlimited            unlimited            bytes     ", soft: -1, hard: -1},
		{line: "Max locked memory         lots                 unlimited            bytes     ", bad: true},
		{line: "Max locked memory", bad: true},
		{line: "Max open files            1024                 524288               files     ", bad: true},
	} {
		p := filepath.Join(dir, "limits")
		writeFile(t, p, limitsHead+tc.line+"\n")
		soft, hard, err := readMemlock(p)
		if (err != nil) != tc.bad || !tc.bad && (soft != tc.soft || hard != tc.hard) {
			t.Errorf("%q: %d %d %v", tc.line, soft, hard, err)
		}
	}
}
