package vm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

// Lane is one guest architecture + IOMMU combination: which QEMU, which
// Debian kernel flavour, how the IOMMU is declared and how output leaves
// the guest. Everything lane-specific lives here so a new lane is a new
// value, not new code paths.
//
// A lane whose DebArch is not the host's (arm64 on an amd64 host) gets
// its image and headers from a private apt state (apt.go) while
// linux-kbuild stays the host's build, cross-compiles the modules with
// CrossCompile, and always runs under TCG.
type Lane struct {
	Name string
	QEMU string // system emulator binary
	// GOARCH of the guest /init and test binaries.
	GOARCH string
	// DebArch is the apt architecture of the kernel packages and Flavour
	// the image flavour: linux-image-<abi>-<Flavour>.
	DebArch string
	Flavour string
	// CrossCompile is kbuild's CROSS_COMPILE for the module build; empty
	// when the host builds natively.
	CrossCompile string
	// Machine holds -machine and the IOMMU device, in that order. The IOMMU
	// comes before any PCI device so device addresses stay fixed.
	Machine []string
	// KVMCPU and TCGCPU are -cpu values per accelerator ("" = QEMU default).
	KVMCPU, TCGCPU string
	// Cmdline holds kernel parameters the lane needs on top of the common
	// "console=<Console> quiet panic=-1".
	Cmdline []string
	// Console is the kernel console device (its output goes to
	// console.log); TestPort is the guest device carrying the test stream
	// when Output is serial. Names decide the QEMU device: ttyS*/ttyAMA*
	// are -serial ports in order, hvc* a virtconsole.
	Console  string
	TestPort string
	Output   wire.Output
	// StockModules are stock modules the rebuilt ones depend on, loaded
	// after iommufd and before vfio (x86: irqbypass; built in on arm64).
	StockModules []string
	// IOMMUClass is the IOMMU's name under /sys/class/iommu, passed to the
	// tests as HWTESTS_IOMMU.
	IOMMUClass string
	// FirstSlot is the PCI slot on the root bus of the first -devices entry
	// (the AMD IOMMU is itself a PCI function at 00:01.0).
	FirstSlot int
	// BridgeSlot is the first slot devices take behind a PCIe-to-PCI
	// bridge; 0 lets QEMU pick (slot 0). On virt the bridge's standard
	// hotplug controller refuses slot 0 ("Valid slots are between 1 and
	// 31"); q35 hotplugs bridges through ACPI and takes it.
	BridgeSlot int
	// HostTools are programs the host needs for this lane; missing ones
	// make the harness run setup-host. HostFiles are files it needs (the
	// UEFI firmware), with the same remedy.
	HostTools []string
	HostFiles []string
	// PVH boots the image's uncompressed ELF through its PVH entry point
	// instead of the bzImage (pvh.go); the bzImage when it has none.
	PVH bool
	// Build, when set, is the lane's own kernel: built from source with
	// everything built in, instead of Debian's image plus rebuilt modules.
	Build *KernelBuild
	// Firmware is QEMU's -bios ("" = none: the kernel boots directly,
	// with a device tree on arm64). UEFI firmware gives the guest ACPI.
	Firmware string
	// UpgradeIORT: hand the kernel QEMU's IORT with every root complex
	// declared CANWBS, through the ACPI table upgrade from the initrd
	// (acpi.go says why).
	UpgradeIORT bool
}

// hostToolsX86 is what the module rebuild, depmod and downloads need on an
// amd64 host building amd64 modules.
func hostToolsX86() []string {
	return []string{"qemu-system-x86_64", "make", "gcc-12", "depmod", "pahole", "dpkg-deb", "apt-get", "apt-cache", "xz", "strip"}
}

// hostToolsARM64 is what the arm64 lane needs on an amd64 host: the
// emulator, the cross gcc (the headers' .kernelvariables name
// aarch64-linux-gnu-gcc-12) and its strip, besides the native build tools
// kbuild's host programs use.
func hostToolsARM64() []string {
	return []string{"qemu-system-aarch64", "make", "gcc-12", "aarch64-linux-gnu-gcc-12", "depmod", "pahole",
		"dpkg-deb", "apt-get", "apt-cache", "xz", "aarch64-linux-gnu-strip"}
}

// hostToolsOwnARM64 is what building and booting the own arm64 kernel
// needs besides hostToolsARM64: kbuild's host programs and the source
// package's extraction.
func hostToolsOwnARM64() []string {
	return append(hostToolsARM64(), "flex", "bison", "bc", "tar", "bash")
}

// Lanes lists the implemented lanes. The first is the default.
func Lanes() []Lane {
	vtd := Lane{
		Name:    "x86_64-vtd",
		QEMU:    "qemu-system-x86_64",
		GOARCH:  "amd64",
		DebArch: "amd64", Flavour: "amd64",
		Machine: []string{
			"-machine", "q35,kernel-irqchip=split",
			"-device", "intel-iommu,intremap=on,caching-mode=on",
		},
		KVMCPU: "host",
		// The IO-APIC timer check is timing-sensitive under TCG: on a
		// loaded host it failed once and panicked the boot through
		// panic_if_irq_remap, before any test ran. It tests the
		// emulated board, not our code.
		Cmdline:      []string{"no_timer_check"},
		PVH:          true,
		Console:      "ttyS0",
		TestPort:     "ttyS1",
		Output:       wire.OutputSerial,
		StockModules: []string{"irqbypass"},
		IOMMUClass:   "dmar0",
		FirstSlot:    1,
		HostTools:    hostToolsX86(),
	}
	// The same board and kernel with an AMD IOMMU. The timer check
	// panics with AMD interrupt remapping, pt=on lets DMA bypass
	// translation, and userspace writes to the serial ports block (no
	// serial IRQ), so the test stream goes through /dev/kmsg. The AMD
	// IOMMU is itself a PCI function at 00:01.0.
	amdvi := vtd
	amdvi.Name = "x86_64-amdvi"
	amdvi.Machine = []string{
		"-machine", "q35,kernel-irqchip=split",
		"-device", "amd-iommu,intremap=on,pt=off",
	}
	amdvi.Cmdline = []string{"no_timer_check", "printk.devkmsg=on"}
	amdvi.TestPort = ""
	amdvi.Output = wire.OutputKmsg
	amdvi.IOMMUClass = "ivhd0"
	amdvi.FirstSlot = 2
	// Debian's arm64 kernel boots from -kernel with a device tree.
	// gic-version=3 brings the ITS, which is what makes MSIs isolated:
	// with the default GICv2, BIND_IOMMUFD and type1's SET_IOMMU fail
	// with EPERM ("No interrupt remapping support"). virt has one PL011,
	// so the test stream rides a virtconsole (CONFIG_VIRTIO_CONSOLE=y).
	// The SMMU is a platform device: edu keeps slot 1. No stock modules:
	// the arm64 kernel has irqbypass built in.
	arm64 := Lane{
		Name:    "arm64-smmuv3",
		QEMU:    "qemu-system-aarch64",
		GOARCH:  "arm64",
		DebArch: "arm64", Flavour: "arm64",
		CrossCompile: "aarch64-linux-gnu-",
		Machine:      []string{"-machine", "virt,iommu=smmuv3,gic-version=3"},
		KVMCPU:       "host",
		TCGCPU:       "max,pauth-impdef=on",
		Console:      "ttyAMA0",
		TestPort:     "hvc0",
		Output:       wire.OutputSerial,
		IOMMUClass:   "smmu3.0x0000000009050000",
		FirstSlot:    1,
		BridgeSlot:   1,
		HostTools:    hostToolsARM64(),
	}
	// Our own Linux 7.3 on the same board, booted through UEFI so the
	// kernel reads ACPI: the SMMUv3's iommufd part is built in
	// (GET_HW_INFO with the IDRs, nesting parent, vIOMMU, the ioctls
	// after 6.12) and the upgraded IORT declares the root complex
	// CANWBS, which the SMMUv3 driver wants before it allocates a
	// vIOMMU. No modules at all: the agent's checks meet a kernel with
	// everything built in.
	own := arm64
	own.Name = "arm64-smmuv3-7.3"
	own.Cmdline = []string{"acpi=force"}
	own.HostTools = hostToolsOwnARM64()
	own.HostFiles = []string{"/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"}
	own.Firmware = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
	own.UpgradeIORT = true
	own.Build = &KernelBuild{
		Series: "7.3", Pin: "7.3.4-1~bpo13+1", Suite: "trixie-backports",
		Arch: "arm64", Target: "Image", ImagePath: "arch/arm64/boot/Image",
		Fragment: "arm64-smmuv3.config",
	}
	return []Lane{vtd, amdvi, arm64, own}
}

// LaneByName returns the lane called name.
func LaneByName(name string) (Lane, error) {
	lanes := Lanes()
	if i := slices.IndexFunc(lanes, func(l Lane) bool { return l.Name == name }); i >= 0 {
		return lanes[i], nil
	}
	names := make([]string, len(lanes))
	for i, l := range lanes {
		names[i] = l.Name
	}
	return Lane{}, fmt.Errorf("unknown lane %q (have %s)", name, strings.Join(names, ", "))
}

// portArgs returns the QEMU arguments that attach chardev id to the guest
// device dev. Serial ports are numbered by order on the command line, so
// callers add the console first.
func portArgs(dev, id string) []string {
	switch {
	case strings.HasPrefix(dev, "hvc"):
		return []string{"-device", "virtio-serial-pci,id=vser-" + id, "-device", "virtconsole,chardev=" + id}
	default: // ttyS*, ttyAMA*
		return []string{"-serial", "chardev:" + id}
	}
}

// kernelCmdline is the guest's kernel command line.
func (l Lane) kernelCmdline() string {
	return strings.Join(append([]string{"console=" + l.Console, "quiet", "panic=-1"}, l.Cmdline...), " ")
}
