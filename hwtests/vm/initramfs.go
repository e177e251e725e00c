package vm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

// depEntry is one line of modules.dep.
type depEntry struct {
	path string   // relative to /lib/modules/<uname>, e.g. kernel/fs/9p/9p.ko.xz
	deps []string // paths, as listed (the module's dependencies, nearest first)
}

// moduleName is the kernel's name for a module file: basename without
// .ko[.xz|.zst|.gz], dashes as underscores.
func moduleName(p string) string {
	b := path.Base(p)
	b, _, _ = strings.Cut(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// parseModulesDep reads modules.dep into name → entry.
func parseModulesDep(r io.Reader) (map[string]depEntry, error) {
	m := map[string]depEntry{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		m[moduleName(mod)] = depEntry{path: mod, deps: strings.Fields(deps)}
	}
	return m, sc.Err()
}

// loadOrder lists the modules /init loads, dependencies first: the
// rebuilt modules (iommufd, then the lane's stock helpers such as
// irqbypass, then vfio...), the 9p stack, then device drivers. Stock
// modules come from modules.dep with their dependencies, loaded
// last-listed first; each module appears once.
func loadOrder(lane Lane, v Variant, stock []string, dep map[string]depEntry, uname string) ([]wire.Module, error) {
	var (
		order []wire.Module
		seen  = map[string]bool{}
	)
	addStock := func(name string) error {
		e, ok := dep[moduleName(name)]
		if !ok {
			return fmt.Errorf("stock module %s not in modules.dep of %s (built in? then drop it from the lane)", name, uname)
		}
		paths := append([]string(nil), e.deps...)
		for i, j := 0, len(paths)-1; i < j; i, j = i+1, j-1 {
			paths[i], paths[j] = paths[j], paths[i]
		}
		for _, p := range append(paths, e.path) {
			n := moduleName(p)
			if seen[n] {
				continue
			}
			seen[n] = true
			order = append(order, wire.Module{
				Name:       n,
				Path:       "/lib/modules/" + uname + "/" + p,
				Compressed: !strings.HasSuffix(p, ".ko"),
			})
		}
		return nil
	}
	for i, m := range v.Modules() {
		if i == 1 { // after iommufd, before vfio
			for _, s := range lane.StockModules {
				if err := addStock(s); err != nil {
					return nil, err
				}
			}
		}
		n := moduleName(m)
		seen[n] = true
		order = append(order, wire.Module{Name: n, Path: "/modules/" + m + ".ko"})
	}
	for _, s := range stock {
		if err := addStock(s); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ninepModules is the 9p client stack (built as modules in Debian).
func ninepModules() []string { return []string{"9pnet_virtio", "9p"} }

// initramfsSpec is everything that goes into the guest's initramfs.
type initramfsSpec struct {
	Init       string // host path of the static /init
	Manifest   wire.Manifest
	Tests      map[string]string // guest path → host path
	Modules    map[string]string // guest path → host path
	ModulesDep string            // host path of modules.dep, copied for reference
	// Prefix is written before the archive: a cpio the kernel reads
	// before it unpacks the rest (ACPI table upgrades).
	Prefix []byte
}

// writeInitramfs writes an uncompressed newc cpio: /init, /dev/console
// (the kernel opens it as fds 0-2 before running /init), mount points,
// the modules, the test binaries and the manifest. Uncompressed because
// the guest is the slow side: under TCG the kernel inflated a 66 MB gzip
// of 119 MB of test binaries in about a second of every boot, and the
// host spent another deflating it; a plain cpio costs a copy on each.
func writeInitramfs(w io.Writer, s initramfsSpec) error {
	c := newCPIOWriter(w)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run", "host", "out", "modules", "tests"} {
		c.Dir(d, 0o755)
	}
	c.CharDev("dev/console", 0o600, 5, 1)
	add := func(guest, host string, perm os.FileMode) error {
		b, err := os.ReadFile(host)
		if err != nil {
			return err
		}
		c.File(guest, perm, b)
		return nil
	}
	if err := add("init", s.Init, 0o755); err != nil {
		return err
	}
	for _, guest := range sortedKeys(s.Modules) {
		if err := add(guest, s.Modules[guest], 0o644); err != nil {
			return err
		}
	}
	if s.ModulesDep != "" {
		if err := add("/lib/modules/"+s.Manifest.Uname+"/modules.dep", s.ModulesDep, 0o644); err != nil {
			return err
		}
	}
	for _, guest := range sortedKeys(s.Tests) {
		if err := add(guest, s.Tests[guest], 0o755); err != nil {
			return err
		}
	}
	mb, err := json.MarshalIndent(s.Manifest, "", "  ")
	if err != nil {
		return err
	}
	c.File(wire.ManifestPath, 0o644, append(mb, '\n'))
	return c.Close()
}

// packInitramfs writes the initramfs file at dst.
func packInitramfs(dst string, s initramfsSpec) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := bw.Write(s.Prefix); err != nil {
		f.Close()
		return err
	}
	if err := writeInitramfs(bw, s); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// moduleFiles maps the guest paths of order to host files: rebuilt ones
// from the module entry, stock ones from the extracted image.
func moduleFiles(order []wire.Module, k Kernel, rebuilt string) map[string]string {
	m := map[string]string{}
	for _, mod := range order {
		if rel, ok := strings.CutPrefix(mod.Path, "/modules/"); ok {
			m[mod.Path] = filepath.Join(rebuilt, rel)
		} else {
			m[mod.Path] = filepath.Join(k.Root(), mod.Path)
		}
	}
	return m
}
