package vm

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as its
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//
// Written in Go rather than piping to cpio(1) because the archive holds a
// device node (/dev/console) that only root may mknod on disk, entries
// come from several host directories under new names, and ownership is
// forced to 0:0 without a staging tree: with cpio(1) all three need a
// copied tree and root.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, dirs: map[string]bool{".": true, "/": true}}
}

// cpio mode bits (stat.h).
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChr  = 0o020000
	cpioLink = 0o120000
)

// header writes one entry header and its name; data follows.
func (c *cpioWriter) header(name string, mode uint32, size int, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	// Magic and 13 8-digit hex fields: ino mode uid gid nlink mtime
	// filesize devmajor devminor rdevmajor rdevminor namesize check.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad(len(hdr) + len(name) + 1)
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

// pad aligns to 4 bytes after n bytes.
func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// clean turns a path into the archive's relative form ("dev/console").
func cpioName(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// Dir adds a directory and any missing parents.
func (c *cpioWriter) Dir(p string, perm fs.FileMode) {
	name := cpioName(p)
	if name == "" || c.dirs[name] {
		return
	}
	c.Dir(path.Dir(name), 0o755)
	c.dirs[name] = true
	c.header(name, cpioDir|uint32(perm.Perm()), 0, 0, 0)
}

// File adds a regular file with its parents.
func (c *cpioWriter) File(p string, perm fs.FileMode, data []byte) {
	name := cpioName(p)
	c.Dir(path.Dir(name), 0o755)
	c.header(name, cpioReg|uint32(perm.Perm()), len(data), 0, 0)
	c.write(data)
	c.pad(len(data))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(p string, perm fs.FileMode, major, minor uint32) {
	name := cpioName(p)
	c.Dir(path.Dir(name), 0o755)
	c.header(name, cpioChr|uint32(perm.Perm()), 0, major, minor)
}

// Symlink adds a symbolic link.
func (c *cpioWriter) Symlink(p, target string) {
	name := cpioName(p)
	c.Dir(path.Dir(name), 0o755)
	c.header(name, cpioLink|0o777, len(target), 0, 0)
	c.write([]byte(target))
	c.pad(len(target))
}

// Close writes the trailer. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	return c.err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
