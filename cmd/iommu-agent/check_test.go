//go:build !hwtests

// The guest runs this package's test binary without sysfs/testdata, so the
// fixture tests stay out of the hwtests build; guest_test.go covers the real tree.

package main

import (
	"bytes"
	"compress/gzip"
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

// guestRelease is the hwtests guest's kernel (sysfs/testdata's captures).
const guestRelease = "6.12.95+deb12-amd64"

// guestTree completes the captured VT-d guest with what the harness's
// guest has beside sysfs: /proc as QEMU's TCG CPU (qemu64 reports
// AuthenticAMD under an intel-iommu) shows it, the modules loaded from the
// initramfs (live, with initstate; the capture keeps only parameters) and
// /lib/modules/RELEASE with only modules.dep, no modules.builtin, no config.
func guestTree(t *testing.T) (root string, args []string) {
	t.Helper()
	root = fixture(t, "vtd-guest-captured.txtar")
	sys, dev, proc := filepath.Join(root, "sys"), filepath.Join(root, "dev"), filepath.Join(root, "proc")
	for _, m := range []string{"vfio", "vfio_pci", "vfio_pci_core", "vfio_iommu_type1", "iommufd"} {
		writeFile(t, filepath.Join(sys, "module", m, "initstate"), "live\n")
	}
	writeFile(t, filepath.Join(dev, "iommu"), "")
	writeFile(t, filepath.Join(dev, "vfio", "vfio"), "")
	writeFile(t, filepath.Join(proc, "self", "limits"), limitsHead+"Max locked memory         unlimited            unlimited            bytes     \n")
	writeFile(t, filepath.Join(proc, "self", "status"), "Name:\tcheck\nCapEff:\t0000000000000000\n")
	writeFile(t, filepath.Join(proc, "cpuinfo"), "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: QEMU Virtual CPU version 2.5+\n")
	writeFile(t, filepath.Join(proc, "sys", "kernel", "osrelease"), guestRelease+"\n")
	writeFile(t, filepath.Join(proc, "interrupts"), "           CPU0\n  0:         44   IR-IO-APIC    2-edge      timer\n"+
		" 24:          0   IR-PCI-MSIX-0000:00:02.0    0-edge      virtio0-config\n")
	writeFile(t, filepath.Join(proc, "devices"), "Character devices:\n  1 mem\n  4 tty\n236 vfio-dev\n245 vfio\n\nBlock devices:\n  8 sd\n")
	mods := filepath.Join(root, "lib", "modules")
	writeFile(t, filepath.Join(mods, guestRelease, "modules.dep"), "kernel/virt/lib/irqbypass.ko.xz:\nkernel/net/9p/9pnet.ko.xz:\n")
	return root, []string{"-sysfs", sys, "-proc", proc, "-dev", dev, "-modules", mods, "-boot", filepath.Join(root, "boot")}
}

func TestCheckReadyGuest(t *testing.T) {
	t.Parallel()
	root, args := guestTree(t)
	dev := filepath.Join(root, "dev")

	fs, err := checkJSON(t, args...)
	if err != nil {
		t.Fatalf("check failed on a ready guest: %v\n%+v", err, fs)
	}
	modDir := filepath.Join(root, "lib", "modules", guestRelease)
	noConfig := "no kernel config (looked for " + filepath.Join(root, "proc", "config.gz") + ", " +
		filepath.Join(root, "boot", "config-"+guestRelease) + ", " + filepath.Join(modDir, "config") + ")"
	unread := "unread: " + noConfig + "; no modules.builtin under " + modDir
	want := []Finding{
		{Check: "platform", Status: Pass, Detail: "CPU AuthenticAMD; IOMMU Intel VT-d (dmar0); advice follows the IOMMU (Intel VT-d), not the CPU: an emulated or unusual platform; kernel " +
			guestRelease + " (modules from " + filepath.Join(root, "lib", "modules", guestRelease, "modules.dep") + "); " + unread},
		{Check: "firmware", Status: Pass, Detail: "no ACPI DMAR/IVRS/IORT table seen, but the kernel runs IOMMU units"},
		{Check: "IOMMU driver", Status: Pass, Detail: "intel-iommu built-in (dmar0 registered by it)", State: "built-in", Source: "dmar0 registered by it"},
		{Check: "IOMMU", Status: Pass, Detail: "1 unit(s): dmar0 (intel-vt-d)"},
		{Check: "IOMMU features", Status: Pass, Detail: "dmar0: address width 48-bit, domains 65536, superpages 2M,1G, scalable mode no, stages second, " +
			"nesting no, dirty tracking no, ATS no, PRI no, PASID no, interrupt remapping yes, posted interrupts no, snoop control no, " +
			"coherent walks no, caching mode yes"},
		{Check: "kernel command line", Status: Pass, Detail: "no IOMMU parameters; the kernel's default enabled it"},
		{Check: "IOMMU parameters", Status: Pass, Detail: "host devices' default domain: translated unless the kernel was built for passthrough (no parameter, no config to tell); " +
			"VFIO and iommufd give assigned devices their own translated domains either way"},
		{Check: "interrupt remapping", Status: Pass, Detail: "ecap IR set on every VT-d unit; IR-IO-APIC in /proc/interrupts: remapping is on"},
		{Check: "module vfio", Status: Pass, Detail: "loaded (the VFIO core)", State: "loaded", Source: "/sys/module/vfio/initstate: live"},
		{Check: "module vfio_pci", Status: Pass, Detail: "loaded (the vfio-pci driver devices are bound to)", State: "loaded", Source: "/sys/module/vfio_pci/initstate: live"},
		{Check: "module iommufd", Status: Pass, Detail: "loaded (iommufd and the VFIO device cdev)", State: "loaded", Source: "/sys/module/iommufd/initstate: live"},
		{Check: "module vfio_iommu_type1", Status: Pass, Detail: "loaded (the legacy VFIO container)", State: "loaded", Source: "/sys/module/vfio_iommu_type1/initstate: live"},
		{Check: "VFIO device cdev", Status: Pass, Detail: "VFIO devices get /dev/vfio/devices/vfioN for iommufd (/proc/devices lists the vfio-dev major)",
			State: "built-in", Source: "/proc/devices lists the vfio-dev major"},
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
	if err := os.MkdirAll(filepath.Join(root, "sys", "module"), 0o755); err != nil {
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

// writeConfigGz writes a gzip'd kernel config, as /proc/config.gz is.
func writeConfigGz(t *testing.T, path string, lines ...string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.String())
}

// adviceMentions returns the findings whose detail or fix contains s.
func adviceMentions(fs []Finding, s string) []Finding {
	var out []Finding
	for _, f := range fs {
		if strings.Contains(f.Detail, s) || strings.Contains(f.Fix, s) {
			out = append(out, f)
		}
	}
	return out
}

// An AMD host must never be told to boot with intel_iommu=on (issue 12:
// "on an AMD CPU it asks for intel_iommu=on"), whether its firmware has an
// IVRS table or the IOMMU is off in its setup.
func TestCheckAMDAdvice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		ivrs     bool
		cmdline  string
		wantWarn string // a finding that must say this
	}{
		{name: "IOMMU off in firmware", cmdline: "console=ttyS0", wantWarn: "IVRS"},
		{name: "IVRS without units", ivrs: true, cmdline: "console=ttyS0", wantWarn: "AMD-Vi"},
		{name: "amd_iommu=on given", ivrs: true, cmdline: "console=ttyS0 amd_iommu=on", wantWarn: "amd_iommu=on is not a value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "sys", "module", "kvm_amd", "initstate"), "live\n")
			if tc.ivrs {
				writeFile(t, filepath.Join(root, "sys", "firmware", "acpi", "tables", "IVRS"), "IVRS")
			}
			proc := filepath.Join(root, "proc")
			writeFile(t, filepath.Join(proc, "cmdline"), tc.cmdline+"\n")
			writeFile(t, filepath.Join(proc, "cpuinfo"), "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n")
			fs, err := checkJSON(t, "-sysfs", filepath.Join(root, "sys"), "-proc", proc, "-dev", filepath.Join(root, "dev"))
			if err == nil {
				t.Error("check passed on an AMD host without IOMMU units")
			}
			if bad := adviceMentions(fs, "intel_iommu"); len(bad) > 0 {
				t.Errorf("an AMD host is told about intel_iommu: %+v", bad)
			}
			if len(adviceMentions(fs, tc.wantWarn)) == 0 {
				t.Errorf("no finding says %q: %+v", tc.wantWarn, fs)
			}
		})
	}
}

// A kernel built without VFIO and iommufd, and without module support at
// all, must hear that its kernel lacks them, never "modprobe" (issue 12).
func TestCheckAbsentNoModprobe(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sys", "module", "printk", "parameters"), 0o755); err != nil {
		t.Fatal(err)
	}
	proc := filepath.Join(root, "proc")
	writeFile(t, filepath.Join(proc, "cmdline"), "console=ttyS0 nomodule\n")
	writeFile(t, filepath.Join(proc, "cpuinfo"), "vendor_id\t: GenuineIntel\n")
	writeConfigGz(t, filepath.Join(proc, "config.gz"),
		"CONFIG_IKCONFIG=y", "CONFIG_IKCONFIG_PROC=y", "# CONFIG_MODULES is not set", "CONFIG_IOMMU_SUPPORT=y",
		"# CONFIG_INTEL_IOMMU is not set", "# CONFIG_IOMMUFD is not set", "# CONFIG_VFIO is not set")
	fs, err := checkJSON(t, "-sysfs", filepath.Join(root, "sys"), "-proc", proc, "-dev", filepath.Join(root, "dev"))
	if err == nil {
		t.Error("check passed on a kernel without VFIO")
	}
	if bad := adviceMentions(fs, "modprobe"); len(bad) > 0 {
		t.Errorf("a kernel without modules is told to modprobe: %+v", bad)
	}
	m := byCheck(fs)
	for name, config := range map[string]string{
		"module vfio": "CONFIG_VFIO", "module vfio_pci": "CONFIG_VFIO_PCI",
		"module iommufd": "CONFIG_IOMMUFD", "module vfio_iommu_type1": "CONFIG_VFIO_IOMMU_TYPE1",
	} {
		if f := m[name]; f.Status != Fail || !strings.Contains(f.Detail+f.Fix, config) {
			t.Errorf("%s: %+v, want FAIL naming %s", name, f, config)
		}
	}
}

// VT-d host whose kernel has VFIO and iommufd built in: nothing to
// modprobe, and a missing /dev/iommu is a container or devtmpfs matter
// (issue 12: "iommufd and VFIO built in ... it says modprobe").
func TestCheckBuiltInNoModprobe(t *testing.T) {
	t.Parallel()
	root := fixture(t, "vtd-guest-captured.txtar")
	sys := filepath.Join(root, "sys")
	// Built in with parameters: /sys/module/NAME without initstate (the
	// captured tree has none either). iommufd here has no directory at all,
	// as a built-in module without parameters.
	if err := os.RemoveAll(filepath.Join(sys, "module", "iommufd")); err != nil {
		t.Fatal(err)
	}
	proc := filepath.Join(root, "proc")
	writeFile(t, filepath.Join(proc, "cpuinfo"), "vendor_id\t: GenuineIntel\n")
	writeConfigGz(t, filepath.Join(proc, "config.gz"),
		"# CONFIG_MODULES is not set", "CONFIG_INTEL_IOMMU=y", "CONFIG_IOMMUFD=y", "CONFIG_VFIO=y",
		"CONFIG_VFIO_GROUP=y", "CONFIG_VFIO_CONTAINER=y", "CONFIG_VFIO_IOMMU_TYPE1=y", "CONFIG_VFIO_DEVICE_CDEV=y",
		"CONFIG_VFIO_PCI_CORE=y", "CONFIG_VFIO_PCI=y")
	writeFile(t, filepath.Join(root, "dev", "vfio", "vfio"), "")
	fs, err := checkJSON(t, "-sysfs", sys, "-proc", proc, "-dev", filepath.Join(root, "dev"))
	if bad := adviceMentions(fs, "modprobe"); len(bad) > 0 {
		t.Errorf("a kernel with VFIO and iommufd built in is told to modprobe: %+v", bad)
	}
	m := byCheck(fs)
	for _, name := range []string{"module vfio", "module vfio_pci", "module iommufd", "module vfio_iommu_type1"} {
		if f := m[name]; f.Status != Pass || !strings.Contains(f.Detail, "built-in") {
			t.Errorf("%s: %+v, want PASS built-in", name, f)
		}
	}
	if f := m["/dev/iommu"]; f.Status != Warn || !strings.Contains(f.Fix, "--device /dev/iommu") {
		t.Errorf("/dev/iommu: %+v, want WARN naming the container flag", f)
	}
	_ = err
}
