package vm

import (
	"archive/tar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

const madison = ` linux-source-6.12 | 6.12.117-1 | http://deb.debian.org/debian trixie/main amd64 Packages
 linux-source-6.12 | 6.12.117-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 linux-source-6.12 | 6.12.115-2~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 linux-source-6.12 | 6.12.95-1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages
`

func TestPickVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		madison, pin string
		want         string
		pinned       bool
	}{
		{madison, "6.12.95-1~bpo12+1", "6.12.95-1~bpo12+1", true},
		// The pin is gone: newest from a bookworm suite, never trixie's.
		{madison, "6.12.90-1~bpo12+1", "6.12.117-1~deb12u1", false},
		{strings.ReplaceAll(madison, "bookworm-security", "bookworm-updates"), "x", "6.12.117-1~deb12u1", false},
	} {
		got, pinned, err := pickVersion(tc.madison, tc.pin)
		if err != nil || got != tc.want || pinned != tc.pinned {
			t.Errorf("pickVersion(pin %s) = %q, %v, %v; want %q, %v", tc.pin, got, pinned, err, tc.want, tc.pinned)
		}
	}
	trixieOnly := " linux-source-6.12 | 6.12.117-1 | http://deb.debian.org/debian trixie/main amd64 Packages\n"
	for _, m := range []string{"", trixieOnly} {
		if v, _, err := pickVersion(m, "6.12.95-1~bpo12+1"); err == nil {
			t.Errorf("pickVersion(%q) = %q, want an error", m, v)
		}
	}
}

func TestParseABI(t *testing.T) {
	t.Parallel()
	show := "Package: linux-image-6.12-amd64\nVersion: 6.12.117-1~deb12u1\n" +
		"Depends: linux-image-6.12.117+deb12-amd64 (= 6.12.117-1~deb12u1)\nDescription: meta\n"
	if abi, err := parseABI(show, "amd64", "6.12.117-1~deb12u1"); err != nil || abi != "6.12.117+deb12" {
		t.Errorf("parseABI = %q, %v", abi, err)
	}
	odd := "Depends: linux-image-6.12.90+deb12.1-amd64 (= 6.12.90-1~bpo12+1)\n"
	if abi, err := parseABI(odd, "amd64", "6.12.90-1~bpo12+1"); err != nil || abi != "6.12.90+deb12.1" {
		t.Errorf("parseABI(.1 ABI) = %q, %v", abi, err)
	}
	unsigned := "Depends: linux-image-6.12.9+deb12-amd64-unsigned (= 6.12.9-1)\n"
	if abi, err := parseABI(unsigned, "amd64", "6.12.9-1"); err == nil {
		t.Errorf("parseABI took the -unsigned image: %q", abi)
	}
	if abi, err := parseABI(show, "amd64", "6.12.95-1~bpo12+1"); err == nil {
		t.Errorf("parseABI matched another version: %q", abi)
	}
}

func TestKernelPackages(t *testing.T) {
	t.Parallel()
	got := kernelPackages("6.12.95+deb12", "amd64")
	want := []string{"linux-image-6.12.95+deb12-amd64", "linux-headers-6.12.95+deb12-amd64",
		"linux-headers-6.12.95+deb12-common", "linux-kbuild-6.12.95+deb12", "linux-source-6.12"}
	if !slices.Equal(got, want) {
		t.Errorf("kernelPackages = %v", got)
	}
}

func TestSubset(t *testing.T) {
	t.Parallel()
	s := newSubset(sourceSubset())
	names := []string{
		"drivers/iommu/intel/iommu.c",
		"drivers/iommu/iommu-priv.h",
		"drivers/iommu/iommufd/", "drivers/iommu/iommufd/main.c", "drivers/iommu/iommufd/io_pagetable.h",
		"drivers/iommu/iommu.c",
		"drivers/vfio/", "drivers/vfio/pci/vfio_pci.c",
		"include/uapi/linux/iommufd.h", "include/uapi/linux/vfio.h",
		"lib/idr.c", "lib/interval_tree.c",
	}
	var got []string
	for _, n := range names {
		if s.done(n) {
			t.Fatalf("done before %s", n)
		}
		if s.want(n) {
			got = append(got, n)
		}
	}
	want := []string{"drivers/iommu/iommu-priv.h", "drivers/iommu/iommufd/", "drivers/iommu/iommufd/main.c",
		"drivers/iommu/iommufd/io_pagetable.h", "drivers/vfio/", "drivers/vfio/pci/vfio_pci.c",
		"include/uapi/linux/iommufd.h", "include/uapi/linux/vfio.h", "lib/interval_tree.c"}
	if !slices.Equal(got, want) {
		t.Errorf("selected %v, want %v", got, want)
	}
	if !s.complete() || !s.done("lib/interval_tree_test.c") {
		t.Error("not done after every wanted path")
	}
	partial := newSubset(sourceSubset())
	partial.want("drivers/vfio/vfio_main.c")
	if partial.done("zzz") || partial.complete() || len(partial.missing()) != 5 {
		t.Errorf("partial subset: missing %v", partial.missing())
	}
}

func TestWriteTarEntryRejectsEscapes(t *testing.T) {
	t.Parallel()
	dst := t.TempDir()
	for _, name := range []string{"../x", "a/../../x", "/etc/x"} {
		h := &tar.Header{Name: name, Typeflag: tar.TypeReg}
		if err := writeTarEntry(dst, name, h, strings.NewReader("x")); err == nil && !strings.HasPrefix(name, "/") {
			t.Errorf("%q written", name)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "x")); err == nil {
		t.Error("a file escaped the destination")
	}
	h := &tar.Header{Name: "d/f.c", Typeflag: tar.TypeReg}
	if err := writeTarEntry(dst, "d/f.c", h, strings.NewReader("int x;")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "d/f.c")); err != nil || string(b) != "int x;" {
		t.Errorf("d/f.c = %q, %v", b, err)
	}
}

func TestFixHeadersMakefile(t *testing.T) {
	t.Parallel()
	k := Kernel{ABI: "6.12.95+deb12", Uname: "6.12.95+deb12-amd64", Dir: t.TempDir()}
	if err := os.MkdirAll(k.Headers(), 0o755); err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(k.Headers(), "Makefile")
	if err := os.WriteFile(mf, []byte("include /usr/src/linux-headers-6.12.95+deb12-common/Makefile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fixHeadersMakefile(k); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(mf)
	if want := "include $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../linux-headers-6.12.95+deb12-common/Makefile)\n"; string(b) != want {
		t.Errorf("Makefile = %q", b)
	}
	if err := fixHeadersMakefile(k); err == nil {
		t.Error("a Makefile without the absolute include passed (recipe drift must be loud)")
	}
}

func TestSpanIterSource(t *testing.T) {
	t.Parallel()
	src := `// SPDX
#include <linux/interval_tree.h>
INTERVAL_TREE_DEFINE(...);
EXPORT_SYMBOL_GPL(interval_tree_insert);

#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER
static void a(void) {}
#if 0
nested
#endif
void interval_tree_span_iter_first(void) {}
EXPORT_SYMBOL_GPL(interval_tree_span_iter_first);
#endif
`
	got, err := spanIterSource(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#include <linux/interval_tree.h>", "#include <linux/export.h>", "#if 0\nnested\n#endif", "EXPORT_SYMBOL_GPL(interval_tree_span_iter_first);"} {
		if !strings.Contains(got, want) {
			t.Errorf("span source lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "INTERVAL_TREE_DEFINE") || strings.Contains(got, "CONFIG_INTERVAL_TREE_SPAN_ITER") {
		t.Errorf("span source has the generic half or the guard:\n%s", got)
	}
	for _, bad := range []string{"no block here", "#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER\nunterminated\n"} {
		if _, err := spanIterSource(bad); err == nil {
			t.Errorf("spanIterSource(%q) succeeded", bad)
		}
	}
}

const modulesDep = `kernel/virt/lib/irqbypass.ko.xz:
kernel/fs/netfs/netfs.ko.xz:
kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet.ko.xz: kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/drivers/net/ethernet/intel/igb/igb.ko.xz: kernel/drivers/dca/dca.ko.xz kernel/drivers/i2c/algos/i2c-algo-bit.ko.xz
kernel/drivers/dca/dca.ko.xz:
kernel/drivers/i2c/algos/i2c-algo-bit.ko.xz:
kernel/drivers/vfio/vfio.ko.xz: kernel/virt/lib/irqbypass.ko.xz
`

func TestLoadOrder(t *testing.T) {
	t.Parallel()
	dep, err := parseModulesDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	lane := Lanes()[0]
	names := func(ms []wire.Module) []string {
		var n []string
		for _, m := range ms {
			n = append(n, m.Name)
		}
		return n
	}
	order, err := loadOrder(lane, VariantStd, append(ninepModules(), "igb"), dep, "U")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"iommufd", "irqbypass", "vfio", "vfio_pci_core", "vfio_pci", "vfio_iommu_type1",
		"netfs", "9pnet", "9pnet_virtio", "9p", "i2c_algo_bit", "dca", "igb"}
	if got := names(order); !slices.Equal(got, want) {
		t.Errorf("std order %v\nwant %v", got, want)
	}
	if order[0].Path != "/modules/iommufd.ko" || order[0].Compressed {
		t.Errorf("rebuilt module entry %+v", order[0])
	}
	if order[1].Path != "/lib/modules/U/kernel/virt/lib/irqbypass.ko.xz" || !order[1].Compressed {
		t.Errorf("stock module entry %+v", order[1])
	}
	order, err = loadOrder(lane, VariantCompat, nil, dep, "U")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(order); !slices.Equal(got, []string{"iommufd", "irqbypass", "vfio", "vfio_pci_core", "vfio_pci"}) {
		t.Errorf("compat order %v", got)
	}
	if _, err := loadOrder(lane, VariantStd, []string{"e1000"}, dep, "U"); err == nil {
		t.Error("a module missing from modules.dep was accepted")
	}
}

func TestModuleName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"kernel/drivers/i2c/algos/i2c-algo-bit.ko.xz": "i2c_algo_bit",
		"vfio-pci.ko": "vfio_pci", "9p": "9p", "x/e1000e.ko.zst": "e1000e",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVariant(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"std", "compat"} {
		v, err := ParseVariant(s)
		if err != nil || string(v) != s {
			t.Errorf("ParseVariant(%q) = %q, %v", s, v, err)
		}
		files, err := v.recipeFiles()
		if err != nil {
			t.Fatal(err)
		}
		kb := files["Kbuild"]
		for _, m := range v.Modules() {
			if !strings.Contains(kb, m+".o") {
				t.Errorf("%s Kbuild does not build %s", s, m)
			}
		}
		if !strings.Contains(kb, "-DCONFIG_IOMMUFD_MODULE=1 -DCONFIG_VFIO_DEVICE_CDEV=1") {
			t.Errorf("%s Kbuild lacks the two defines", s)
		}
	}
	files, _ := VariantCompat.recipeFiles()
	if !strings.Contains(files["compat.h"], "#undef CONFIG_VFIO_CONTAINER") || strings.Contains(files["Kbuild"], "drivers/vfio/container.o") {
		t.Error("compat recipe still builds vfio's container")
	}
	if _, err := ParseVariant("both"); err == nil {
		t.Error("unknown variant accepted")
	}
}
