// Package sriovtest fakes the kernel's side of SR-IOV for package sriov's
// tests: a sysfs writer that creates and removes VFs on sriov_numvfs writes
// (on top of sysfstest.Kernel's driver binding) and a fake netlink (Links).
package sriovtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

// Kernel is a sysfs.Writer over a fake tree. A write to a PF's
// sriov_numvfs does what the kernel's sriov_numvfs_store does: ERANGE above
// sriov_totalvfs, ENOENT without a PF driver, EBUSY when changing a
// non-zero count to another, and otherwise VF devices appear (with physfn,
// virtfnN, bus/pci/devices and iommu_group links, a group each, as behind
// a PCIe root port with ACS) or go. sriov_drivers_autoprobe takes 0 or 1.
// Everything else goes to sysfstest.Kernel.
//
// VFs sit at the PF's routing ID plus Offset, then every Stride (igb's
// 0x80 and 2 unless set), with device ID VFDevice (igb's 0x10ca).
// FailNumVFs makes writing that count fail with its error, changing
// nothing; Links, when set, hears of each count change on the PF's netdev.
type Kernel struct {
	Base       *sysfstest.Kernel
	Links      *Links
	Offset     int
	Stride     int
	VFDevice   uint16
	FailNumVFs map[int]error

	mu     sync.Mutex
	writes []string
}

// NewKernel returns a Kernel over the tree rooted at root.
func NewKernel(root string) *Kernel {
	return &Kernel{Base: &sysfstest.Kernel{Root: root}, Offset: 0x80, Stride: 2, VFDevice: 0x10ca}
}

// Host is a fake host: the tree, its kernel, its netlink and a sysfs.FS
// that writes through the kernel.
type Host struct {
	Root   string // the sysfs root
	Kernel *Kernel
	Links  *Links
	FS     *sysfs.FS
}

// NewHost unpacks the txtar fixture (sys/ inside) and gives every PF with
// a net/NAME directory a link NAME in Links, with as many VFs as its
// sriov_numvfs says.
func NewHost(t testing.TB, fixture string) *Host {
	t.Helper()
	root := filepath.Join(sysfstest.Build(t, fixture), "sys")
	h := &Host{Root: root, Kernel: NewKernel(root), Links: &Links{}}
	h.Kernel.Links = h.Links
	fs, err := sysfs.New(root, sysfs.WithWriter(h.Kernel))
	if err != nil {
		t.Fatal(err)
	}
	h.FS = fs
	devs, _ := filepath.Glob(filepath.Join(root, "bus", "pci", "devices", "*"))
	for _, d := range devs {
		nets, _ := os.ReadDir(filepath.Join(d, "net"))
		if len(nets) == 0 {
			continue
		}
		n, _ := readInt(filepath.Join(d, "sriov_numvfs"))
		h.Links.AddLink(nets[0].Name(), n)
	}
	return h
}

// Writes returns every write seen, as "path=value" with path relative to
// Root, failed ones included.
func (k *Kernel) Writes() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.writes...)
}

// WriteAttr implements sysfs.Writer.
func (k *Kernel) WriteAttr(path, value string) error {
	rel, err := filepath.Rel(k.Base.Root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("sriovtest: write outside %s: %s", k.Base.Root, path)
	}
	k.mu.Lock()
	k.writes = append(k.writes, rel+"="+value)
	k.mu.Unlock()
	switch filepath.Base(path) {
	case "sriov_numvfs":
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.numVFs(filepath.Dir(path), value)
	case "sriov_drivers_autoprobe":
		v := strings.TrimSpace(value)
		if v != "0" && v != "1" {
			return syscall.EINVAL
		}
		return os.WriteFile(path, []byte(v+"\n"), 0o644)
	}
	return k.Base.WriteAttr(path, value)
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (k *Kernel) numVFs(link, value string) error {
	pf, err := filepath.EvalSymlinks(link)
	if err != nil {
		return syscall.ENOENT
	}
	n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 16)
	if err != nil {
		return syscall.EINVAL
	}
	total, err := readInt(filepath.Join(pf, "sriov_totalvfs"))
	if err != nil {
		return err
	}
	cur, err := readInt(filepath.Join(pf, "sriov_numvfs"))
	if err != nil {
		return err
	}
	switch {
	case int(n) > total:
		return syscall.ERANGE
	case int(n) == cur:
		return nil
	}
	if _, err := os.Readlink(filepath.Join(pf, "driver")); err != nil {
		return syscall.ENOENT
	}
	if cur != 0 && n != 0 {
		return syscall.EBUSY
	}
	if err := k.FailNumVFs[int(n)]; err != nil {
		return err
	}
	if n == 0 {
		err = k.removeVFs(pf, cur)
	} else {
		err = k.addVFs(pf, int(n))
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pf, "sriov_numvfs"), []byte(strconv.Itoa(int(n))+"\n"), 0o644); err != nil {
		return err
	}
	if k.Links != nil {
		if nets, _ := os.ReadDir(filepath.Join(pf, "net")); len(nets) > 0 {
			k.Links.SetNumVFs(nets[0].Name(), int(n))
		}
	}
	return nil
}

// relLink makes a symlink at from pointing at to, relative, as the
// kernel's links are.
func relLink(from, to string) error {
	t, err := filepath.Rel(filepath.Dir(from), to)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(from), 0o755); err != nil {
		return err
	}
	return os.Symlink(t, from)
}

func (k *Kernel) addVFs(pf string, n int) error {
	root := k.Base.Root
	pa, err := sysfs.ParseAddress(filepath.Base(pf))
	if err != nil {
		return err
	}
	groups, _ := os.ReadDir(filepath.Join(root, "kernel", "iommu_groups"))
	next := 0
	for _, g := range groups {
		if v, err := strconv.Atoi(g.Name()); err == nil && v >= next {
			next = v + 1
		}
	}
	_, pfGrouped := os.Readlink(filepath.Join(pf, "iommu_group"))
	units, _ := filepath.Glob(filepath.Join(root, "devices", "virtual", "iommu", "*", "devices", pa.String()))
	copyAttr := func(dir, name string) error {
		b, err := os.ReadFile(filepath.Join(pf, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	rid := int(pa.Bus)<<8 | int(pa.Device)<<3 | int(pa.Function)
	for i := 0; i < n; i++ {
		r := rid + k.Offset + i*k.Stride
		va := sysfs.Address{Domain: pa.Domain, Bus: uint8(r >> 8), Device: uint8(r>>3) & 0x1f, Function: uint8(r) & 7}
		dir := filepath.Join(filepath.Dir(pf), va.String())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, a := range []string{"vendor", "subsystem_vendor", "subsystem_device", "class", "numa_node"} {
			if err := copyAttr(dir, a); err != nil {
				return err
			}
		}
		files := map[string]string{
			"device":          fmt.Sprintf("0x%04x\n", k.VFDevice),
			"driver_override": "(null)\n",
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				return err
			}
		}
		links := [][2]string{
			{filepath.Join(dir, "physfn"), pf},
			{filepath.Join(pf, "virtfn"+strconv.Itoa(i)), dir},
			{filepath.Join(root, "bus", "pci", "devices", va.String()), dir},
		}
		if pfGrouped == nil {
			g := filepath.Join(root, "kernel", "iommu_groups", strconv.Itoa(next))
			next++
			if err := os.MkdirAll(filepath.Join(g, "devices"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(g, "type"), []byte("DMA\n"), 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(g, "reserved_regions"), []byte("0x00000000fee00000 0x00000000feefffff msi\n"), 0o644); err != nil {
				return err
			}
			links = append(links, [2]string{filepath.Join(dir, "iommu_group"), g}, [2]string{filepath.Join(g, "devices", va.String()), dir})
		}
		for _, u := range units {
			links = append(links, [2]string{filepath.Join(filepath.Dir(u), va.String()), dir})
		}
		for _, l := range links {
			if err := relLink(l[0], l[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeVFs undoes addVFs: a bound VF is unbound first, as the kernel's
// device removal does, and an emptied group goes with its last device.
func (k *Kernel) removeVFs(pf string, cur int) error {
	root := k.Base.Root
	vfs, _ := filepath.Glob(filepath.Join(pf, "virtfn*"))
	sort.Strings(vfs)
	var errs []error
	for _, l := range vfs {
		dir, err := filepath.EvalSymlinks(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bdf := filepath.Base(dir)
		if drv, err := os.Readlink(filepath.Join(dir, "driver")); err == nil {
			os.Remove(filepath.Join(root, "bus", "pci", "drivers", filepath.Base(drv), bdf))
		}
		if g, err := os.Readlink(filepath.Join(dir, "iommu_group")); err == nil {
			gdir := filepath.Join(root, "kernel", "iommu_groups", filepath.Base(g))
			os.Remove(filepath.Join(gdir, "devices", bdf))
			if left, _ := os.ReadDir(filepath.Join(gdir, "devices")); len(left) == 0 {
				os.RemoveAll(gdir)
			}
		}
		units, _ := filepath.Glob(filepath.Join(root, "devices", "virtual", "iommu", "*", "devices", bdf))
		for _, u := range units {
			os.Remove(u)
		}
		os.Remove(filepath.Join(root, "bus", "pci", "devices", bdf))
		errs = append(errs, os.RemoveAll(dir), os.Remove(l))
	}
	if len(vfs) != cur {
		errs = append(errs, fmt.Errorf("sriovtest: pf %s has %d virtfn links, sriov_numvfs %d", pf, len(vfs), cur))
	}
	return errors.Join(errs...)
}
