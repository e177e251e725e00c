package vm

import (
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

func TestLaneByName(t *testing.T) {
	t.Parallel()
	for _, l := range Lanes() {
		got, err := LaneByName(l.Name)
		if err != nil || got.Name != l.Name {
			t.Errorf("LaneByName(%q) = %v, %v", l.Name, got.Name, err)
		}
		if l.Output == wire.OutputSerial && l.TestPort == "" {
			t.Errorf("%s: serial output without a test port", l.Name)
		}
		if l.FirstSlot < 1 || l.QEMU == "" || l.GOARCH == "" || l.IOMMUClass == "" || len(l.HostTools) == 0 {
			t.Errorf("%s: incomplete lane %+v", l.Name, l)
		}
	}
	if _, err := LaneByName("mips-none"); err == nil {
		t.Error("unknown lane accepted")
	}
	if Lanes()[0].Name != "x86_64-vtd" {
		t.Errorf("default lane %s, want x86_64-vtd", Lanes()[0].Name)
	}
}

func bootArgs(t *testing.T, lane, accel, devices string) string {
	t.Helper()
	l, err := LaneByName(lane)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDevices(devices)
	if err != nil {
		t.Fatal(err)
	}
	b := BootSpec{Lane: l, Accel: accel, Memory: "2G", SMP: 2, Kernel: "/k/vmlinuz", Initrd: "/r/initrd.gz",
		Devices: d, ConsoleLog: "/r/console.log", HostRoot: "/", OutDir: "/r/out"}
	return strings.Join(b.QEMUArgs(), " ")
}

func TestQEMUArgsVTD(t *testing.T) {
	t.Parallel()
	got := bootArgs(t, "x86_64-vtd", "tcg", "edu")
	want := "-accel tcg -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,caching-mode=on " +
		"-m 2G -smp 2 -nodefaults -display none -no-reboot -kernel /k/vmlinuz -initrd /r/initrd.gz " +
		"-append console=ttyS0 quiet panic=-1 no_timer_check " +
		"-device edu,id=edu0,bus=pcie.0,addr=0x1 " +
		"-fsdev local,id=fs-hostroot,path=/,security_model=none,readonly=on,multidevs=remap " +
		"-device virtio-9p-pci,fsdev=fs-hostroot,mount_tag=hostroot " +
		"-fsdev local,id=fs-out,path=/r/out,security_model=none -device virtio-9p-pci,fsdev=fs-out,mount_tag=out " +
		"-chardev file,id=console,path=/r/console.log -serial chardev:console " +
		"-chardev stdio,id=tests,signal=off -serial chardev:tests"
	if got != want {
		t.Errorf("args:\n got %s\nwant %s", got, want)
	}
	if kvm := bootArgs(t, "x86_64-vtd", "kvm", "edu"); !strings.Contains(kvm, "-accel kvm -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,caching-mode=on -cpu host ") {
		t.Errorf("kvm args lack -cpu host: %s", kvm)
	}
}

func TestQEMUArgsAMDVi(t *testing.T) {
	t.Parallel()
	got := bootArgs(t, "x86_64-amdvi", "tcg", "edu")
	for _, want := range []string{
		"-device amd-iommu,intremap=on,pt=off -m",
		"-append console=ttyS0 quiet panic=-1 no_timer_check printk.devkmsg=on -device",
		"-device edu,id=edu0,bus=pcie.0,addr=0x2 ", // the IOMMU is 00:01.0
		"-chardev stdio,id=console,signal=off -serial chardev:console",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("amdvi args lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "chardev:tests") {
		t.Errorf("kmsg lane has a second serial port: %s", got)
	}
}

func TestPortArgs(t *testing.T) {
	t.Parallel()
	if got := strings.Join(portArgs("ttyAMA0", "c"), " "); got != "-serial chardev:c" {
		t.Errorf("ttyAMA0: %s", got)
	}
	if got := strings.Join(portArgs("hvc0", "t"), " "); got != "-device virtio-serial-pci,id=vser-t -device virtconsole,chardev=t" {
		t.Errorf("hvc0: %s", got)
	}
}

func TestQEMUArgsSMMUv3(t *testing.T) {
	t.Parallel()
	got := bootArgs(t, "arm64-smmuv3", "tcg", "edu")
	for _, want := range []string{
		"-accel tcg -machine virt,iommu=smmuv3,gic-version=3 -cpu max,pauth-impdef=on -m",
		"-append console=ttyAMA0 quiet panic=-1 -device",
		"-device edu,id=edu0,bus=pcie.0,addr=0x1 ", // the SMMU is a platform device
		"-chardev file,id=console,path=/r/console.log -serial chardev:console ",
		"-chardev stdio,id=tests,signal=off -device virtio-serial-pci,id=vser-tests -device virtconsole,chardev=tests",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("smmuv3 args lack %q:\n%s", want, got)
		}
	}
	l, err := LaneByName("arm64-smmuv3")
	if err != nil {
		t.Fatal(err)
	}
	if br := bootArgs(t, "arm64-smmuv3", "tcg", "bridge:edu,e1000"); !strings.Contains(br, "-device edu,id=edu0,bus=br1,addr=0x1 -netdev user,id=net-e10000,restrict=on -device e1000,id=e10000,bus=br1,addr=0x2,netdev=net-e10000") {
		t.Errorf("smmuv3 bridge args: %s", br)
	}
	if l.CrossCompile != "aarch64-linux-gnu-" || l.DebArch != "arm64" || len(l.StockModules) != 0 {
		t.Errorf("arm64 lane: cross %q arch %q stock modules %v", l.CrossCompile, l.DebArch, l.StockModules)
	}
}
