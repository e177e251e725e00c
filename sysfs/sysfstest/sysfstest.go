// Package sysfstest builds fake sysfs trees from txtar fixtures and plays
// the kernel's part in driver binding, so sysfs runs without root or a VM.
package sysfstest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/txtar"
)

// Build unpacks the txtar fixture file into t.TempDir() and returns that
// directory. An entry "name@" becomes a symlink "name" whose target is the
// entry's body without its newline, relative like the kernel's links.
// Directories are created as needed; an entry ending in "/" is an empty
// directory; an entry "name#hex" is a binary file "name" (config space)
// written as hex digits, whitespace ignored.
func Build(t testing.TB, file string) string {
	t.Helper()
	a, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatalf("sysfstest: %v", err)
	}
	root := t.TempDir()
	if err := Unpack(root, a); err != nil {
		t.Fatalf("sysfstest: %s: %v", file, err)
	}
	return root
}

// Unpack writes archive a under root, as Build does.
func Unpack(root string, a *txtar.Archive) error {
	for _, f := range a.Files {
		name := filepath.Clean(f.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q leaves the tree", f.Name)
		}
		p := filepath.Join(root, name)
		switch {
		case strings.HasSuffix(f.Name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case strings.HasSuffix(name, "@"):
			p = strings.TrimSuffix(p, "@")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(strings.TrimSpace(string(f.Data)), p); err != nil {
				return err
			}
		default:
			data := f.Data
			if strings.HasSuffix(name, "#hex") {
				p = strings.TrimSuffix(p, "#hex")
				b, err := hex.DecodeString(strings.Join(strings.Fields(string(data)), ""))
				if err != nil {
					return fmt.Errorf("entry %q: %w", f.Name, err)
				}
				data = b
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// Probe names a driver's probe of one device.
type Probe struct{ Driver, Device string }

// ErrInjected is the error of the write Kernel was told to fail.
var ErrInjected = errors.New("sysfstest: injected write failure")

// Kernel is a sysfs.Writer that does to a fake tree what the kernel does to
// /sys on the writes Bind and Release use: driver_override, a driver's
// bind/unbind and bus/pci/drivers_probe. Other writes store the value.
//
// FailAt > 0 makes the FailAt-th write (counting from 1) fail with
// ErrInjected and change nothing; later writes succeed. Refuse lists the
// probes that fail: the device stays unbound, a driver's bind file returns
// an error, and drivers_probe still returns success, as the kernel's does.
//
// GroupOnProbe models an IOMMU that creates a device's iommu_group only when
// a driver first probes it (SMMUv3 described by a device tree, Debian's
// 6.12 arm64: really_probe → dma_configure → iommu_probe_device, before the
// driver's probe, so also when that probe then fails). It maps a device
// without an iommu_group to the group its first probe puts it in: a new
// group, or one that exists, which it joins. The group stays after an
// unbind, as the kernel's does. vfio-pci, like the real one, refuses to
// probe a device that still has no group.
type Kernel struct {
	Root         string
	FailAt       int
	Refuse       map[Probe]bool
	GroupOnProbe map[string]int

	mu     sync.Mutex
	writes []string
}

// Writes returns every write seen, as "path=value" with path relative to
// Root, including the failed one.
func (k *Kernel) Writes() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.writes...)
}

// WriteAttr implements sysfs.Writer.
func (k *Kernel) WriteAttr(path, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rel, err := filepath.Rel(k.Root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("sysfstest: write outside %s: %s", k.Root, path)
	}
	k.writes = append(k.writes, rel+"="+value)
	if len(k.writes) == k.FailAt {
		return ErrInjected
	}
	parts := strings.Split(rel, string(filepath.Separator))
	bdf := strings.TrimSpace(value)
	switch {
	case rel == filepath.Join("bus", "pci", "drivers_probe"):
		return k.probe(bdf)
	case len(parts) == 5 && parts[0] == "bus" && parts[2] == "drivers" && parts[4] == "unbind":
		return k.unbind(parts[3], bdf)
	case len(parts) == 5 && parts[0] == "bus" && parts[2] == "drivers" && parts[4] == "bind":
		return k.bind(parts[3], bdf)
	case filepath.Base(rel) == "driver_override":
		v := strings.TrimSuffix(value, "\n")
		if v == "" {
			v = "(null)"
		}
		return os.WriteFile(path, []byte(v+"\n"), 0o644)
	}
	return os.WriteFile(path, []byte(value), 0o644)
}

func (k *Kernel) devDir(bdf string) (string, error) {
	d, err := filepath.EvalSymlinks(filepath.Join(k.Root, "bus", "pci", "devices", bdf))
	if err != nil {
		return "", fmt.Errorf("no device %q: %w", bdf, os.ErrNotExist)
	}
	return d, nil
}

func (k *Kernel) driverOf(dev string) string {
	t, err := os.Readlink(filepath.Join(dev, "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

func (k *Kernel) probe(bdf string) error {
	dev, err := k.devDir(bdf)
	if err != nil {
		return err
	}
	if k.driverOf(dev) != "" {
		return nil
	}
	ov, err := os.ReadFile(filepath.Join(dev, "driver_override"))
	if err != nil {
		return nil // no override: the fake knows no id tables
	}
	name := strings.TrimSpace(string(ov))
	if name == "(null)" || name == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(k.Root, "bus", "pci", "drivers", name)); err != nil {
		return nil // driver not loaded
	}
	ok, err := k.probeOK(name, bdf, dev)
	if err != nil || !ok {
		return err
	}
	return k.link(name, bdf, dev)
}

// probeOK is what really_probe does before it links a driver: the IOMMU's
// dma_configure (GroupOnProbe), then the driver's probe, which fails on a
// Refuse entry and, for vfio-pci, on a device without an iommu_group.
func (k *Kernel) probeOK(drv, bdf, dev string) (bool, error) {
	if err := k.configureGroup(bdf, dev); err != nil {
		return false, err
	}
	if k.Refuse[Probe{drv, bdf}] {
		return false, nil
	}
	if drv == "vfio-pci" {
		if _, err := os.Lstat(filepath.Join(dev, "iommu_group")); err != nil {
			return false, nil // vfio_pci_core_register_device: no group, -EINVAL
		}
	}
	return true, nil
}

// configureGroup puts a group-less device of GroupOnProbe into its group,
// with the links the kernel makes: the device's iommu_group and the
// group's devices/ entry.
func (k *Kernel) configureGroup(bdf, dev string) error {
	n, ok := k.GroupOnProbe[bdf]
	if !ok {
		return nil
	}
	link := filepath.Join(dev, "iommu_group")
	if _, err := os.Lstat(link); err == nil {
		return nil
	}
	gdir := filepath.Join(k.Root, "kernel", "iommu_groups", strconv.Itoa(n))
	if err := os.MkdirAll(filepath.Join(gdir, "devices"), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(gdir, "type")); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(filepath.Join(gdir, "type"), []byte("DMA-FQ\n"), 0o644); err != nil {
			return err
		}
	}
	toGroup, err := filepath.Rel(dev, gdir)
	if err != nil {
		return err
	}
	toDev, err := filepath.Rel(filepath.Join(gdir, "devices"), dev)
	if err != nil {
		return err
	}
	if err := os.Symlink(toDev, filepath.Join(gdir, "devices", bdf)); err != nil {
		return err
	}
	return os.Symlink(toGroup, link)
}

func (k *Kernel) bind(drv, bdf string) error {
	dev, err := k.devDir(bdf)
	if err != nil {
		return err
	}
	if k.driverOf(dev) != "" {
		return fmt.Errorf("bind %s: device busy", bdf)
	}
	if ov, err := os.ReadFile(filepath.Join(dev, "driver_override")); err == nil {
		if name := strings.TrimSpace(string(ov)); name != "(null)" && name != "" && name != drv {
			return fmt.Errorf("bind %s to %s: driver_override is %s: no such device", bdf, drv, name)
		}
	}
	ok, err := k.probeOK(drv, bdf, dev)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("bind %s: probe failed", bdf)
	}
	return k.link(drv, bdf, dev)
}

// link makes the driver and device links the kernel makes on bind.
func (k *Kernel) link(drv, bdf, dev string) error {
	dd := filepath.Join(k.Root, "bus", "pci", "drivers", drv)
	toDrv, err := filepath.Rel(dev, dd)
	if err != nil {
		return err
	}
	toDev, err := filepath.Rel(dd, dev)
	if err != nil {
		return err
	}
	if err := os.Symlink(toDrv, filepath.Join(dev, "driver")); err != nil {
		return err
	}
	if err := setUeventDriver(dev, drv); err != nil {
		return err
	}
	return os.Symlink(toDev, filepath.Join(dd, bdf))
}

// setUeventDriver rewrites the DRIVER line of dev's uevent, if it has one,
// as the kernel's dev_uevent prints it: first, and only while bound.
func setUeventDriver(dev, drv string) error {
	p := filepath.Join(dev, "uevent")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var out strings.Builder
	if drv != "" {
		out.WriteString("DRIVER=" + drv + "\n")
	}
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "DRIVER=") {
			out.WriteString(line)
		}
	}
	return os.WriteFile(p, []byte(out.String()), 0o644)
}

func (k *Kernel) unbind(drv, bdf string) error {
	dev, err := k.devDir(bdf)
	if err != nil {
		return err
	}
	if k.driverOf(dev) != drv {
		return fmt.Errorf("unbind %s from %s: not bound to it: no such device", bdf, drv)
	}
	if err := os.Remove(filepath.Join(dev, "driver")); err != nil {
		return err
	}
	if err := setUeventDriver(dev, ""); err != nil {
		return err
	}
	err = os.Remove(filepath.Join(k.Root, "bus", "pci", "drivers", drv, bdf))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
