//go:build linux

package sysfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// dir reads the files of one directory relative to an open descriptor: one
// path walk for the directory, then a one-element lookup per file, and raw
// syscalls, sparing os.File's poller registration. Discovery of thousands
// of devices is syscall-bound, so this is where its time goes.
type dir struct {
	path string
	fd   int // -1 when the directory could not be opened: files go by full path
}

// openDir opens path as a handle for lookups only (O_PATH: no listing, no
// permission check), which costs less than listing it: a missing file is
// then one failed lookup. It never fails: a directory that cannot be opened
// leaves each file to be tried (and to fail) by its full path.
func openDir(path string) *dir {
	d := &dir{path: path, fd: -1}
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err == nil {
		d.fd = fd
	}
	return d
}

// list returns the directory's entries, sorted.
func (d *dir) list() ([]string, error) {
	ents, err := os.ReadDir(d.path)
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, err
}

func (d *dir) close() {
	if d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}

// at returns the descriptor and name to reach name by.
func (d *dir) at(name string) (int, string) {
	if d.fd < 0 {
		return unix.AT_FDCWD, filepath.Join(d.path, name)
	}
	return d.fd, name
}

// read reads name into buf: one bounded read for a single-value attribute
// (some drivers answer EAGAIN forever to a read loop), or until EOF when
// whole, growing buf. ok is false when the file does not exist.
func (d *dir) read(name string, buf []byte, whole bool) (data []byte, ok bool, err error) {
	dfd, p := d.at(name)
	fd, err := ignoringEINTR(func() (int, error) { return unix.Openat(dfd, p, unix.O_RDONLY|unix.O_CLOEXEC, 0) })
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, &fs.PathError{Op: "open", Path: filepath.Join(d.path, name), Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for {
		m, err := ignoringEINTR(func() (int, error) { return unix.Read(fd, buf[n:]) })
		if err != nil {
			return nil, false, &fs.PathError{Op: "read", Path: filepath.Join(d.path, name), Err: err}
		}
		n += m
		// A short read is the end of a sysfs attribute and of a regular file.
		if !whole || m == 0 || n < len(buf) {
			return buf[:n], true, nil
		}
		buf = slices.Grow(buf, len(buf))[:2*len(buf)]
	}
}

// link returns the basename of symlink name's target; ok is false when
// there is no such link.
func (d *dir) link(name string) (string, bool, error) {
	t, ok, err := d.target(name)
	if !ok {
		return "", ok, err
	}
	return filepath.Base(t), true, nil
}

// target returns symlink name's target; ok is false when there is no such
// link.
func (d *dir) target(name string) (string, bool, error) {
	dfd, p := d.at(name)
	var buf [unix.PathMax]byte
	n, err := ignoringEINTR(func() (int, error) { return unix.Readlinkat(dfd, p, buf[:]) })
	if errors.Is(err, unix.ENOENT) {
		return "", false, nil
	}
	if err != nil {
		return "", false, &fs.PathError{Op: "readlink", Path: filepath.Join(d.path, name), Err: err}
	}
	return string(buf[:n]), true, nil
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}
