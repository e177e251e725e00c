package hostcheck

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost builds a host's trees (sys, proc, dev, lib/modules, boot) under
// t.TempDir(), one call per fact, as go-nvlib's mock builders do. It
// starts as a kernel that is running, has /sys/module and can load modules
// (/proc/modules), and nothing else.
type fakeHost struct {
	t    *testing.T
	root string
}

const release = "6.12.0-test"

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	h := &fakeHost{t: t, root: t.TempDir()}
	h.dir("sys/module")
	h.file("proc/sys/kernel/osrelease", release+"\n")
	h.file("proc/modules", "irqbypass 12288 0 - Live 0x0000000000000000\n")
	h.file("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1\n")
	h.file("proc/self/limits", "Limit                     Soft Limit           Hard Limit           Units     \n"+
		"Max locked memory         unlimited            unlimited            bytes     \n")
	return h
}

func (h *fakeHost) path(rel string) string { return filepath.Join(h.root, filepath.FromSlash(rel)) }

func (h *fakeHost) dir(rel string) *fakeHost {
	h.t.Helper()
	if err := os.MkdirAll(h.path(rel), 0o755); err != nil {
		h.t.Fatal(err)
	}
	return h
}

func (h *fakeHost) file(rel, body string) *fakeHost {
	h.t.Helper()
	h.dir(filepath.Dir(rel))
	if err := os.WriteFile(h.path(rel), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return h
}

func (h *fakeHost) remove(rel string) *fakeHost {
	h.t.Helper()
	if err := os.RemoveAll(h.path(rel)); err != nil {
		h.t.Fatal(err)
	}
	return h
}

func (h *fakeHost) opts() Options {
	return Options{
		SysRoot: h.path("sys"), ProcRoot: h.path("proc"), DevRoot: h.path("dev"),
		ModulesRoot: h.path("lib/modules"), BootRoot: h.path("boot"),
	}
}

func (h *fakeHost) host() *Host {
	h.t.Helper()
	x, err := New(h.opts())
	if err != nil {
		h.t.Fatal(err)
	}
	return x
}

func (h *fakeHost) findings() map[string]Finding {
	h.t.Helper()
	m := map[string]Finding{}
	for _, f := range h.host().Findings() {
		if _, dup := m[f.Check]; dup {
			h.t.Errorf("two findings named %q", f.Check)
		}
		m[f.Check] = f
	}
	return m
}

// cpu writes cpuinfo for an x86 vendor_id, or arm64's implementer lines
// when vendor is "arm64".
func (h *fakeHost) cpu(vendor string) *fakeHost {
	if vendor == "arm64" {
		return h.file("proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU architecture: 8\n\n"+
			"processor\t: 1\nCPU implementer\t: 0x41\n")
	}
	return h.file("proc/cpuinfo", "processor\t: 0\nvendor_id\t: "+vendor+"\ncpu family\t: 6\nflags\t\t: fpu vme\n\nprocessor\t: 1\nvendor_id\t: "+vendor+"\n")
}

// loaded marks modules loaded: /sys/module/NAME/initstate is "live".
func (h *fakeHost) loaded(names ...string) *fakeHost {
	for _, n := range names {
		h.file("sys/module/"+n+"/initstate", "live\n")
		h.file("sys/module/"+n+"/coresize", "65536\n")
	}
	return h
}

// builtinParams marks modules built in with parameters: /sys/module/NAME
// with parameters/ and no initstate.
func (h *fakeHost) builtinParams(names ...string) *fakeHost {
	for _, n := range names {
		h.file("sys/module/"+n+"/parameters/allow_unsafe_interrupts", "N\n")
	}
	return h
}

func (h *fakeHost) modDir(rel string) string { return "lib/modules/" + release + "/" + rel }

// installed lists modules in modules.dep and writes their files.
func (h *fakeHost) installed(paths ...string) *fakeHost {
	var dep strings.Builder
	for _, p := range paths {
		dep.WriteString(p + ":\n")
		h.file(h.modDir(p), "\x7fELF")
	}
	return h.file(h.modDir("modules.dep"), dep.String())
}

func (h *fakeHost) builtinList(paths ...string) *fakeHost {
	return h.file(h.modDir("modules.builtin"), strings.Join(paths, "\n")+"\n")
}

func gz(t *testing.T, text string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// configGz writes /proc/config.gz (CONFIG_IKCONFIG_PROC).
func (h *fakeHost) configGz(lines ...string) *fakeHost {
	return h.file("proc/config.gz", gz(h.t, strings.Join(lines, "\n")+"\n"))
}

// bootConfig writes /boot/config-RELEASE, as Debian and Ubuntu install it.
func (h *fakeHost) bootConfig(lines ...string) *fakeHost {
	return h.file("boot/config-"+release, strings.Join(lines, "\n")+"\n")
}

// vtdUnit registers dmarN with VT-d registers; ecap f00f4a has IR (bit 3).
func (h *fakeHost) vtdUnit(name, ecap string) *fakeHost {
	h.file("sys/class/iommu/"+name+"/intel-iommu/cap", "d2008c222f0686\n")
	return h.file("sys/class/iommu/"+name+"/intel-iommu/ecap", ecap+"\n")
}

func (h *fakeHost) amdUnit(name string) *fakeHost {
	h.file("sys/class/iommu/"+name+"/amd-iommu/cap", "190b0f\n")
	return h.file("sys/class/iommu/"+name+"/amd-iommu/features", "25bf732fa2295afe:53d\n")
}

func (h *fakeHost) smmuUnit(name string) *fakeHost {
	return h.dir("sys/class/iommu/" + name + "/devices")
}

func (h *fakeHost) acpiTable(name string) *fakeHost {
	return h.file("sys/firmware/acpi/tables/"+name, name)
}

func (h *fakeHost) interrupts(chips ...string) *fakeHost {
	var b strings.Builder
	b.WriteString("           CPU0       CPU1\n")
	for i, c := range chips {
		b.WriteString("  " + string(rune('0'+i)) + ":         44          0  " + c + "   2-edge      dev\n")
	}
	return h.file("proc/interrupts", b.String())
}

// vfioMods are the module files of a distribution kernel with VFIO and
// iommufd as modules.
var vfioMods = []string{
	"kernel/drivers/vfio/vfio.ko.xz",
	"kernel/drivers/vfio/pci/vfio-pci.ko.xz",
	"kernel/drivers/vfio/pci/vfio-pci-core.ko.xz",
	"kernel/drivers/vfio/vfio_iommu_type1.ko.xz",
	"kernel/drivers/iommu/iommufd/iommufd.ko.xz",
	"kernel/virt/lib/irqbypass.ko.xz",
}

// Config lines of the kernels below.
var (
	configModular = []string{"CONFIG_MODULES=y", "CONFIG_IOMMU_SUPPORT=y", "CONFIG_INTEL_IOMMU=y", "CONFIG_AMD_IOMMU=y",
		"CONFIG_IOMMUFD=m", "CONFIG_VFIO=m", "CONFIG_VFIO_GROUP=y", "CONFIG_VFIO_CONTAINER=y", "CONFIG_VFIO_IOMMU_TYPE1=m",
		"CONFIG_VFIO_DEVICE_CDEV=y", "CONFIG_VFIO_PCI_CORE=m", "CONFIG_VFIO_PCI=m"}
	configBuiltin = []string{"# CONFIG_MODULES is not set", "CONFIG_IOMMU_SUPPORT=y", "CONFIG_INTEL_IOMMU=y",
		"CONFIG_IOMMUFD=y", "CONFIG_VFIO=y", "CONFIG_VFIO_GROUP=y", "CONFIG_VFIO_CONTAINER=y", "CONFIG_VFIO_IOMMU_TYPE1=y",
		"CONFIG_VFIO_DEVICE_CDEV=y", "CONFIG_VFIO_PCI_CORE=y", "CONFIG_VFIO_PCI=y"}
	configNone = []string{"# CONFIG_MODULES is not set", "CONFIG_IOMMU_SUPPORT=y", "# CONFIG_INTEL_IOMMU is not set",
		"# CONFIG_AMD_IOMMU is not set", "# CONFIG_IOMMUFD is not set", "# CONFIG_VFIO is not set"}
)
