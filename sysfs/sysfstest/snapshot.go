package sysfstest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/tools/txtar"
)

// Snapshot captures from a live (or fake) tree the files package sysfs
// reads: PCI devices, their drivers' directories, iommu_groups, IOMMU
// units, the passthrough modules and, when procRoot is not "", cmdline.
// Paths are relative to the archive root: sys/... and proc/cmdline, links
// as "name@" entries with their relative targets, as Build expects, and
// bridges' binary config as "config#hex". comment
// goes first; say there which kernel and machine the tree is from. A file
// that cannot be read is left out and its error joined, so one bad
// attribute does not lose the capture.
func Snapshot(sysRoot, procRoot, comment string) (*txtar.Archive, error) {
	// The files a fixture keeps: what package sysfs reads, nothing else.
	deviceFiles := []string{"uevent", "vendor", "device", "subsystem_vendor", "subsystem_device", "class", "numa_node",
		"driver_override", "resource", "sriov_totalvfs", "sriov_numvfs", "sriov_drivers_autoprobe"}
	deviceLinks := []string{"driver", "iommu_group", "physfn"}
	groupFiles := []string{"type", "reserved_regions"}
	iommuFiles := []string{"intel-iommu/cap", "intel-iommu/ecap", "intel-iommu/version", "intel-iommu/address",
		"amd-iommu/cap", "amd-iommu/features"}
	modules := []string{"vfio", "vfio_pci", "vfio_pci_core", "vfio_iommu_type1", "iommufd"}

	s := snap{root: sysRoot, seen: map[string]bool{}}
	s.a.Comment = []byte(comment)
	devs, _ := os.ReadDir(filepath.Join(sysRoot, "bus", "pci", "devices"))
	for _, e := range devs {
		link := filepath.Join("bus", "pci", "devices", e.Name())
		dev, ok := s.link(link)
		if !ok {
			continue
		}
		for _, f := range deviceFiles {
			s.file(filepath.Join(dev, f))
		}
		for _, l := range deviceLinks {
			s.link(filepath.Join(dev, l))
		}
		// A bridge's config space (port type, ACS), as hex: it is binary.
		if c, err := readCapped(filepath.Join(sysRoot, dev, "class")); err == nil && strings.HasPrefix(string(c), "0x0604") {
			s.hexFile(filepath.Join(dev, "config"))
		}
		vfs, _ := filepath.Glob(filepath.Join(sysRoot, dev, "virtfn*"))
		for _, v := range vfs {
			s.link(filepath.Join(dev, filepath.Base(v)))
		}
		if drv, ok := s.target(filepath.Join(dev, "driver")); ok {
			s.dir(drv)
			s.link(filepath.Join(drv, e.Name()))
		}
	}
	// Every PCI driver's directory, bound or not, so binding works on the copy.
	drivers, _ := os.ReadDir(filepath.Join(sysRoot, "bus", "pci", "drivers"))
	for _, d := range drivers {
		s.dir(filepath.Join("bus", "pci", "drivers", d.Name()))
	}
	groups, _ := os.ReadDir(filepath.Join(sysRoot, "kernel", "iommu_groups"))
	for _, g := range groups {
		dir := filepath.Join("kernel", "iommu_groups", g.Name())
		for _, f := range groupFiles {
			s.file(filepath.Join(dir, f))
		}
		s.links(filepath.Join(dir, "devices"))
	}
	units, _ := os.ReadDir(filepath.Join(sysRoot, "class", "iommu"))
	for _, u := range units {
		dir, ok := s.link(filepath.Join("class", "iommu", u.Name()))
		if !ok {
			continue
		}
		for _, f := range iommuFiles {
			s.file(filepath.Join(dir, f))
		}
		s.links(filepath.Join(dir, "devices"))
	}
	for _, m := range modules {
		dir := filepath.Join("module", m)
		params, err := os.ReadDir(filepath.Join(sysRoot, dir, "parameters"))
		if err != nil {
			if _, err := os.Stat(filepath.Join(sysRoot, dir)); err == nil {
				s.dir(dir)
			}
			continue
		}
		for _, p := range params {
			s.file(filepath.Join(dir, "parameters", p.Name()))
		}
	}
	if procRoot != "" {
		if b, err := readCapped(filepath.Join(procRoot, "cmdline")); err == nil {
			s.a.Files = append(s.a.Files, txtar.File{Name: "proc/cmdline", Data: b})
		} else if !errors.Is(err, fs.ErrNotExist) {
			s.errs = append(s.errs, err)
		}
	}
	slices.SortFunc(s.a.Files, func(x, y txtar.File) int { return strings.Compare(x.Name, y.Name) })
	return &s.a, errors.Join(s.errs...)
}

type snap struct {
	root string
	a    txtar.Archive
	seen map[string]bool
	errs []error
}

func (s *snap) add(name string, data []byte) {
	if s.seen[name] {
		return
	}
	s.seen[name] = true
	s.a.Files = append(s.a.Files, txtar.File{Name: "sys/" + filepath.ToSlash(name), Data: data})
}

// file records a regular file if it exists.
func (s *snap) file(rel string) {
	b, err := readCapped(filepath.Join(s.root, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n') // txtar ends every file with a newline
	}
	s.add(rel, b)
}

// hexFile records a binary file as a "name#hex" entry, which Unpack
// decodes.
func (s *snap) hexFile(rel string) {
	b, err := readCapped(filepath.Join(s.root, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	var out strings.Builder
	for len(b) > 0 {
		n := min(len(b), 32)
		out.WriteString(hex.EncodeToString(b[:n]) + "\n")
		b = b[n:]
	}
	s.add(rel+"#hex", []byte(out.String()))
}

// snapCap bounds a file a snapshot keeps; sysfs's are a few KiB at most.
const snapCap = 1 << 20

// readCapped reads a regular file of at most snapCap bytes: a FIFO or a
// device (a link to /dev/zero) is refused without blocking or reading.
func readCapped(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, st.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, snapCap+1))
	if err != nil {
		return nil, err
	}
	if len(b) > snapCap {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, snapCap)
	}
	return b, nil
}

func (s *snap) dir(rel string) { s.add(rel+"/", nil) }

// target resolves link rel to a path relative to the root, without
// following links further; ok is false when rel is no link.
func (s *snap) target(rel string) (string, bool) {
	t, err := os.Readlink(filepath.Join(s.root, rel))
	if err != nil {
		return "", false
	}
	p := filepath.Clean(filepath.Join(filepath.Dir(rel), t))
	if filepath.IsAbs(t) || strings.HasPrefix(p, "..") {
		s.errs = append(s.errs, fmt.Errorf("%s: link %q leaves the tree", rel, t))
		return "", false
	}
	return p, true
}

// link records symlink rel and returns where it points, relative to the
// root.
func (s *snap) link(rel string) (string, bool) {
	t, err := os.Readlink(filepath.Join(s.root, rel))
	if err != nil {
		return "", false
	}
	p, ok := s.target(rel)
	if ok {
		s.add(rel+"@", []byte(t+"\n"))
	}
	return p, ok
}

// links records every symlink in directory rel.
func (s *snap) links(rel string) {
	ents, _ := os.ReadDir(filepath.Join(s.root, rel))
	for _, e := range ents {
		s.link(filepath.Join(rel, e.Name()))
	}
}
