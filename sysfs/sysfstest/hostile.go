package sysfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Hostile is what BuildHostile made.
type Hostile struct {
	Root    string   // the sysfs root, dir/sys
	Devices []string // the names under bus/pci/devices, in whatever form
}

// BuildHostile builds under dir a tiny tree whose shape the bytes of b
// decide, for fuzzing discovery over shapes rather than over file
// contents alone: up to three PCI devices and three iommu_groups of one
// IOMMU unit, each entry present, missing, or put in the way: a link out
// of the tree (relative or absolute), a link loop, a FIFO, a link to
// /dev/zero, a directory where a file belongs and a file where a directory
// does, a sparse 2 MiB file, or bytes of b where an attribute's text
// belongs. dir/outside holds a device's files, for links that leave the
// tree to find. Bytes past the end of b read as zero: the plain tree.
func BuildHostile(dir string, b []byte) (Hostile, error) {
	h := Hostile{Root: filepath.Join(dir, "sys")}
	outside := filepath.Join(dir, "outside")
	r := &shapeReader{b: b}
	w := &shapeWriter{}
	w.file(filepath.Join(outside, "uevent"), "PCI_CLASS=20000\nPCI_ID=dead:beef\nPCI_SUBSYS_ID=1:1\n")
	w.link(filepath.Join(outside, "iommu_group"), "../sys/kernel/iommu_groups/1")
	w.link(filepath.Join(h.Root, "class/iommu/dmar0"), "../../devices/virtual/iommu/dmar0")
	w.mkdir(filepath.Join(h.Root, "bus/pci/drivers/e1000"))
	const ndev, ngroup = 3, 3
	for i := 1; i <= ndev; i++ {
		bdf := fmt.Sprintf("0000:00:%02x.0", i)
		dev := filepath.Join(h.Root, "devices/pci0000:00", bdf)
		rel := "../../../devices/pci0000:00/" + bdf
		// bus/pci/devices/BDF
		if !w.hostile(r.next(), filepath.Join(h.Root, "bus/pci/devices", bdf), outside, func(p string) { w.link(p, rel) }) {
			continue
		}
		h.Devices = append(h.Devices, bdf)
		w.mkdir(dev)
		class, driver := "20000", "e1000"
		if r.next()%4 == 0 {
			class, driver = "60400", "pcieport"
		}
		uevent := fmt.Sprintf("DRIVER=%s\nPCI_CLASS=%s\nPCI_ID=8086:100E\nPCI_SUBSYS_ID=1AF4:1100\nPCI_SLOT_NAME=%s\n", driver, class, bdf)
		w.hostile(r.next(), filepath.Join(dev, "uevent"), outside, func(p string) { w.file(p, uevent) })
		w.hostile(r.next(), filepath.Join(dev, "class"), outside, func(p string) { w.file(p, "0x0"+class+"\n") })
		w.hostile(r.next(), filepath.Join(dev, "vendor"), outside, func(p string) { w.file(p, "0x8086\n") })
		w.hostile(r.next(), filepath.Join(dev, "driver"), outside, func(p string) { w.link(p, "../../../bus/pci/drivers/"+driver) })
		w.hostile(r.next(), filepath.Join(dev, "config"), outside, func(p string) { w.file(p, strings.Repeat("\x00", 64)) })
		g := 1 + int(r.next())%ngroup
		w.hostile(r.next(), filepath.Join(dev, "iommu_group"), outside, func(p string) {
			w.link(p, fmt.Sprintf("../../../kernel/iommu_groups/%d", g))
		})
		w.hostile(r.next(), filepath.Join(h.Root, "kernel/iommu_groups", fmt.Sprint(g), "devices", bdf), outside, func(p string) {
			w.link(p, "../../../../devices/pci0000:00/"+bdf)
		})
		w.hostile(r.next(), filepath.Join(h.Root, "devices/virtual/iommu/dmar0/devices", bdf), outside, func(p string) {
			w.link(p, "../../../../pci0000:00/"+bdf)
		})
	}
	for g := 1; g <= ngroup; g++ {
		dir := filepath.Join(h.Root, "kernel/iommu_groups", fmt.Sprint(g))
		w.hostile(r.next(), filepath.Join(dir, "type"), outside, func(p string) { w.file(p, "DMA\n") })
		w.hostile(r.next(), filepath.Join(dir, "reserved_regions"), outside, func(p string) {
			w.file(p, "0x00000000fee00000 0x00000000feefffff msi\n")
		})
		if c := r.next(); c%8 == 7 { // devices/ itself in the way
			p := filepath.Join(dir, "devices")
			if w.err == nil {
				w.err = os.RemoveAll(p)
			}
			w.hostile(c/8, p, outside, func(p string) { w.mkdir(p) })
		}
	}
	members := filepath.Join(h.Root, "kernel/iommu_groups/1/devices")
	if st, err := os.Lstat(members); r.next()%2 == 1 && (err != nil || st.IsDir()) { // a name that is no name among a group's members
		w.link(filepath.Join(h.Root, "kernel/iommu_groups/1/devices", "x\n\x1b[2J"), "../../../../devices/pci0000:00/0000:00:01.0")
	}
	// What is left of b is the text of one attribute.
	if rest := r.rest(); len(rest) > 0 {
		p := filepath.Join(h.Root, "devices/pci0000:00/0000:00:01.0", []string{"uevent", "class", "config"}[len(rest)%3])
		if st, err := os.Lstat(filepath.Dir(p)); err == nil && st.IsDir() {
			if w.err == nil {
				w.err = os.RemoveAll(p)
			}
			w.file(p, string(rest))
		}
	}
	return h, w.err
}

type shapeReader struct {
	b []byte
	i int
}

func (r *shapeReader) next() byte {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *shapeReader) rest() []byte {
	if r.i >= len(r.b) {
		return nil
	}
	rest := r.b[r.i:]
	r.i = len(r.b)
	return rest
}

// shapeWriter keeps the first error, so a shape is written in a straight
// line.
type shapeWriter struct{ err error }

func (w *shapeWriter) mkdir(p string) {
	if w.err == nil {
		w.err = os.MkdirAll(p, 0o755)
	}
}

func (w *shapeWriter) file(p, data string) {
	w.mkdir(filepath.Dir(p))
	if w.err == nil {
		w.err = os.WriteFile(p, []byte(data), 0o644)
	}
}

func (w *shapeWriter) link(p, target string) {
	w.mkdir(filepath.Dir(p))
	if w.err == nil {
		w.err = os.Symlink(target, p)
	}
}

// hostile puts at p what c says: the plain entry (plain writes it), or
// something in its way. It reports whether anything was put there.
func (w *shapeWriter) hostile(c byte, p, outside string, plain func(string)) bool {
	switch c % 12 {
	case 0, 1, 2, 3:
		plain(p)
	case 4:
		return false // missing
	case 5:
		w.link(p, "../../../../../../../../../../../../../../.."+outside)
	case 6:
		w.link(p, outside)
	case 7:
		w.link(p, filepath.Base(p)) // a loop: ELOOP
	case 8:
		w.link(p, "/dev/zero")
	case 9:
		w.mkdir(filepath.Dir(p))
		if w.err == nil {
			w.err = syscall.Mkfifo(p, 0o644)
		}
	case 10:
		w.mkdir(p) // a directory where a file belongs, or a real one for a link
	case 11:
		w.file(p, "")
		if w.err == nil {
			w.err = os.Truncate(p, 2<<20) // sparse: over any cap
		}
	}
	return true
}
