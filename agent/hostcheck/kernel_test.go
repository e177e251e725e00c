package hostcheck

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestModuleState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		build      func(h *fakeHost)
		module     string
		config     string
		want       State
		wantSource string // a substring of Source
		wantFile   string
	}{
		{name: "loaded", build: func(h *fakeHost) { h.loaded("vfio") },
			module: "vfio", config: "CONFIG_VFIO", want: Loaded, wantSource: "initstate: live"},
		{name: "built in with parameters", build: func(h *fakeHost) { h.builtinParams("iommufd") },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: BuiltIn, wantSource: "/sys/module/iommufd without initstate"},
		{name: "built in, modules.builtin", build: func(h *fakeHost) { h.builtinList("kernel/drivers/vfio/vfio.ko") },
			module: "vfio", config: "CONFIG_VFIO", want: BuiltIn, wantSource: "lists kernel/drivers/vfio/vfio.ko"},
		{name: "built in, dashes in modules.builtin", build: func(h *fakeHost) { h.builtinList("kernel/drivers/vfio/pci/vfio-pci.ko") },
			module: "vfio_pci", config: "CONFIG_VFIO_PCI", want: BuiltIn},
		{name: "built in, modules.builtin.modinfo",
			build: func(h *fakeHost) {
				h.file(h.modDir("modules.builtin.modinfo"), "vfio.version=0.3\x00iommufd.file=drivers/iommu/iommufd/iommufd\x00iommufd.license=GPL\x00")
			},
			module: "iommufd", config: "CONFIG_IOMMUFD", want: BuiltIn, wantSource: "has iommufd.*"},
		{name: "built in, /proc/config.gz", build: func(h *fakeHost) { h.configGz(configBuiltin...) },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: BuiltIn, wantSource: "CONFIG_IOMMUFD=y in "},
		{name: "built in, /boot/config", build: func(h *fakeHost) { h.bootConfig(configBuiltin...) },
			module: "vfio_pci", config: "CONFIG_VFIO_PCI", want: BuiltIn, wantSource: "CONFIG_VFIO_PCI=y in "},
		{name: "built in, Fedora's /lib/modules/R/config", build: func(h *fakeHost) { h.file(h.modDir("config"), strings.Join(configBuiltin, "\n")) },
			module: "vfio", config: "CONFIG_VFIO", want: BuiltIn, wantSource: "config"},
		{name: "config.gz wins over /boot",
			build:  func(h *fakeHost) { h.configGz(configBuiltin...).bootConfig(configNone...) },
			module: "vfio", config: "CONFIG_VFIO", want: BuiltIn, wantSource: "config.gz"},
		{name: "a corrupt config.gz falls back to /boot",
			build:  func(h *fakeHost) { h.file("proc/config.gz", "not gzip").bootConfig(configNone...) },
			module: "vfio", config: "CONFIG_VFIO", want: Absent, wantSource: "CONFIG_VFIO is not set in "},
		{name: "available", build: func(h *fakeHost) { h.installed(vfioMods...) },
			module: "vfio_pci", config: "CONFIG_VFIO_PCI", want: Available, wantSource: "modules.dep lists kernel/drivers/vfio/pci/vfio-pci.ko.xz",
			wantFile: "kernel/drivers/vfio/pci/vfio-pci.ko.xz"},
		{name: "available, config agrees", build: func(h *fakeHost) { h.installed(vfioMods...).configGz(configModular...) },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: Available, wantFile: "kernel/drivers/iommu/iommufd/iommufd.ko.xz"},
		{name: "listed but the file is gone",
			build:  func(h *fakeHost) { h.installed(vfioMods...).remove(h.modDir("kernel/drivers/vfio/vfio.ko.xz")) },
			module: "vfio", config: "CONFIG_VFIO", want: NotInstalled, wantSource: "the file is missing"},
		{name: "=m but not in modules.dep",
			build:  func(h *fakeHost) { h.installed("kernel/virt/lib/irqbypass.ko.xz").configGz(configModular...) },
			module: "vfio", config: "CONFIG_VFIO", want: NotInstalled, wantSource: "CONFIG_VFIO=m"},
		{name: "=m without /lib/modules (a container)", build: func(h *fakeHost) { h.configGz(configModular...) },
			module: "vfio", config: "CONFIG_VFIO", want: Available, wantSource: "no modules.dep to confirm the file"},
		{name: "not set", build: func(h *fakeHost) { h.configGz(configNone...) },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: Absent, wantSource: "CONFIG_IOMMUFD is not set"},
		{name: "missing from a config that was read", build: func(h *fakeHost) { h.configGz("CONFIG_MODULES=y", "CONFIG_VFIO=m") },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: Absent},
		{name: "in neither list",
			build: func(h *fakeHost) {
				h.installed("kernel/virt/lib/irqbypass.ko.xz").builtinList("kernel/drivers/vfio/vfio.ko")
			},
			module: "iommufd", config: "CONFIG_IOMMUFD", want: Absent, wantSource: "nor "},
		{name: "not in modules.dep, no builtin list nor config",
			build:  func(h *fakeHost) { h.installed("kernel/virt/lib/irqbypass.ko.xz") },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: NotLoaded, wantSource: "built-in cannot be told from absent"},
		{name: "nothing to read", build: func(*fakeHost) {},
			module: "vfio", config: "CONFIG_VFIO", want: NotLoaded, wantSource: "whether this kernel has it is unknown"},
		{name: "no release", build: func(h *fakeHost) { h.remove("proc/sys/kernel/osrelease").installed(vfioMods...) },
			module: "vfio", config: "CONFIG_VFIO", want: NotLoaded, wantSource: "osrelease"},
		{name: "no /sys/module", build: func(h *fakeHost) { h.remove("sys/module").installed(vfioMods...) },
			module: "vfio", config: "CONFIG_VFIO", want: Unknown, wantSource: "cannot read /sys/module"},
		{name: "no /sys/module, but built in by the config", build: func(h *fakeHost) { h.remove("sys/module").configGz(configBuiltin...) },
			module: "vfio", config: "CONFIG_VFIO", want: BuiltIn},
		{name: "loaded beats the config", build: func(h *fakeHost) { h.loaded("vfio").configGz(configNone...) },
			module: "vfio", config: "CONFIG_VFIO", want: Loaded},
		// A kernel without module support and without a config to read:
		// no /proc/modules says it cannot load any, so what /sys/module
		// does not show built in is absent, not "modprobe"-able.
		{name: "no /proc/modules, no config", build: func(h *fakeHost) { h.remove("proc/modules") },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: Absent, wantSource: "cannot load modules (no "},
		{name: "no /proc/modules, built in with parameters", build: func(h *fakeHost) { h.remove("proc/modules").builtinParams("iommufd") },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: BuiltIn},
		{name: "no /proc/modules, but the config says CONFIG_MODULES=y", build: func(h *fakeHost) {
			h.remove("proc/modules").configGz("CONFIG_MODULES=y", "CONFIG_IOMMUFD=m")
		}, module: "iommufd", config: "CONFIG_IOMMUFD", want: Available},
		{name: "no /proc/modules, but a module is loaded (a partial /proc)", build: func(h *fakeHost) {
			h.remove("proc/modules").loaded("irqbypass").installed(vfioMods...)
		}, module: "vfio", config: "CONFIG_VFIO", want: Available, wantFile: "kernel/drivers/vfio/vfio.ko.xz"},
		{name: "no /proc at all: unknown, not absent", build: func(h *fakeHost) { h.remove("proc") },
			module: "iommufd", config: "CONFIG_IOMMUFD", want: NotLoaded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHost(t)
			tc.build(h)
			c := h.host().Module(tc.module, tc.config)
			if c.State != tc.want || !strings.Contains(c.Source, tc.wantSource) || c.File != tc.wantFile {
				t.Errorf("Module(%s) = %+v, want state %s, source containing %q, file %q", tc.module, c, tc.want, tc.wantSource, tc.wantFile)
			}
		})
	}
}

// Odd files where the sources should be: errors or unknowns, never a hang
// or a guess.
func TestKernelOddSources(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t)
	if err := syscall.Mkfifo(h.path("proc/config.gz"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.dir(h.modDir("modules.dep")) // a directory
	h.file("proc/sys/kernel/osrelease", release+"\n")
	k := h.host().Kernel
	if k.Config != nil || k.Dep != nil {
		t.Errorf("config %v, dep %v from a FIFO and a directory", k.Config, k.Dep)
	}
	joined := strings.Join(k.Missing, "\n")
	for _, want := range []string{"config.gz: not a regular file", "modules.dep: not a regular file"} {
		if !strings.Contains(joined, want) {
			t.Errorf("Missing lacks %q:\n%s", want, joined)
		}
	}

	// A release that would climb out of /lib/modules is refused.
	h = newFakeHost(t)
	h.file("proc/sys/kernel/osrelease", "../../etc\n")
	if k := h.host().Kernel; k.Release != "" || k.ModulesDir != "" {
		t.Errorf("release %q accepted, modules dir %q", k.Release, k.ModulesDir)
	}

	// A gzip bomb as config.gz stops at the cap.
	h = newFakeHost(t)
	h.file("proc/config.gz", gz(t, strings.Repeat("# padding\n", maxList/10+10)))
	if k := h.host().Kernel; k.Config != nil || !strings.Contains(strings.Join(k.Missing, " "), "longer than") {
		t.Errorf("oversized config: config %d entries, missing %q", len(k.Config), k.Missing)
	}
}

func TestModuleName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"kernel/drivers/vfio/pci/vfio-pci.ko.xz":  "vfio_pci",
		"kernel/drivers/vfio/vfio_iommu_type1.ko": "vfio_iommu_type1",
		"kernel/drivers/iommu/iommufd.ko.zst":     "iommufd",
		"extra/arm_smmu_v3.ko.gz":                 "arm_smmu_v3",
		filepath.Join("a", "arm-smmu-v3.ko"):      "arm_smmu_v3",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadMemlock(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t)
	head := "Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max open files            1024                 524288               files     \n"
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
		h.file("limits", head+tc.line+"\n")
		soft, hard, err := ReadMemlock(h.path("limits"))
		if (err != nil) != tc.bad || !tc.bad && (soft != tc.soft || hard != tc.hard) {
			t.Errorf("%q: %d %d %v", tc.line, soft, hard, err)
		}
	}
	if _, _, err := ReadMemlock(h.path("nonexistent")); err == nil {
		t.Error("ReadMemlock of a missing file: no error")
	}
}

func TestCdevState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		build      func(h *fakeHost)
		want       State
		wantSource string
	}{
		{name: "config", build: func(h *fakeHost) { h.configGz(configModular...) }, want: BuiltIn, wantSource: "CONFIG_VFIO_DEVICE_CDEV=y"},
		{name: "config without", build: func(h *fakeHost) { h.configGz("CONFIG_VFIO=m") }, want: Absent, wantSource: "is not set"},
		{name: "/proc/devices", build: func(h *fakeHost) {
			h.loaded("vfio").file("proc/devices", "Character devices:\n  1 mem\n236 vfio-dev\n245 vfio\n\nBlock devices:\n")
		}, want: BuiltIn, wantSource: "/proc/devices lists the vfio-dev major"},
		{name: "/proc/devices without", build: func(h *fakeHost) {
			h.loaded("vfio").file("proc/devices", "Character devices:\n  1 mem\n245 vfio\n\nBlock devices:\n236 vfio-dev\n")
		}, want: Absent, wantSource: "no vfio-dev major"},
		{name: "/proc/devices says nothing while vfio is not loaded", build: func(h *fakeHost) {
			h.file("proc/devices", "Character devices:\n  1 mem\n")
		}, want: Unknown, wantSource: "no kernel config"},
		{name: "bound device with a dev", build: func(h *fakeHost) {
			h.file("sys/class/vfio-dev/vfio0/dev", "236:0\n")
		}, want: BuiltIn, wantSource: "vfio0/dev exists"},
		{name: "bound device without a dev", build: func(h *fakeHost) {
			h.file("sys/class/vfio-dev/vfio0/uevent", "")
		}, want: Absent, wantSource: "no dev attribute"},
		{name: "/dev/vfio/devices", build: func(h *fakeHost) { h.dir("dev/vfio/devices") }, want: BuiltIn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHost(t)
			tc.build(h)
			x := h.host()
			st, src := x.cdevState(x.Module("vfio", "CONFIG_VFIO"))
			if st != tc.want || !strings.Contains(src, tc.wantSource) {
				t.Errorf("cdevState = %s %q, want %s containing %q", st, src, tc.want, tc.wantSource)
			}
		})
	}
}
