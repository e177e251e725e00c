//go:build linux

package sysfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// dir is an open directory of the tree that lookups start from: the root
// for most, a device's directory for Details. Discovery of thousands of
// devices is syscall-bound, so files are reached from it by relative path
// with raw syscalls, sparing os.File's poller registration.
//
// Every open goes through openat2 with RESOLVE_BENEATH: no link met on the
// way, nor "..", nor an absolute link, leads out of the directory (EXDEV,
// reported as ErrEscapes). Kernels before 5.6 lack openat2 (ENOSYS), and
// older container seccomp profiles refuse it (EPERM, which openat2 gives
// for nothing else discovery asks); there plain openat is used, and the
// lexical check of each link discovery follows (resolve) is what keeps a
// tree's links inside it. Readlinkat has no such flag: a link read below a
// directory that is itself a link out of the tree is read where it points,
// but only its name is taken, and every file of that device fails to open.
type dir struct {
	path string // for messages: the directory's path
	rel  string // its path relative to the root, "" for the root
	fd   int
}

// openRoot opens the directory path as the root of lookups (O_PATH: no
// listing, no permission check).
func openRoot(path string) (*dir, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &dir{path: path, fd: fd}, nil
}

// sub opens the directory rel below d as a dir of its own.
func (d *dir) sub(rel string) (*dir, error) {
	fd, err := d.open(rel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	return &dir{path: filepath.Join(d.path, rel), rel: filepath.Join(d.rel, rel), fd: fd}, nil
}

func (d *dir) close() {
	if d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}

// open opens name below d, which it must not leave. The final component
// is never followed: sysfs attributes and the directories discovery lists
// are no links (links are read with resolve), so a link there is a file
// put in the way.
func (d *dir) open(name string, flags uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   flags | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := ignoringEINTR(func() (int, error) { return unix.Openat2(d.fd, name, &how) })
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		fd, err = ignoringEINTR(func() (int, error) { return unix.Openat(d.fd, name, int(how.Flags), 0) })
	}
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.EXDEV):
		err = fmt.Errorf("%w: %w", ErrEscapes, err)
	case errors.Is(err, unix.ELOOP):
		err = fmt.Errorf("%w (a symlink, or a loop of them): %w", ErrNotRegular, err)
	}
	return -1, &fs.PathError{Op: "open", Path: filepath.Join(d.path, name), Err: err}
}

// exists reports whether name is there, a link or not, without following
// it.
func (d *dir) exists(name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, &fs.PathError{Op: "stat", Path: filepath.Join(d.path, name), Err: err}
	}
	return true, nil
}

// isDir reports whether name is a directory below d (not a link to one).
func (d *dir) isDir(name string) bool {
	fd, err := d.open(name, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// list returns the entries of directory name below d, sorted. ok is false
// when it does not exist.
func (d *dir) list(name string) (names []string, ok bool, err error) {
	fd, err := d.open(name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK)
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.path, name))
	defer f.Close()
	names, err = f.Readdirnames(-1)
	if err != nil {
		return nil, false, err
	}
	slices.Sort(names)
	return names, true, nil
}

// read reads the regular file name below d, at most limit bytes, into buf
// (grown as needed, up to limit+1). A short read ends it: one show() for
// a sysfs attribute (some drivers answer EAGAIN forever to a read loop),
// EOF for a regular file on disk. Anything but a regular file is refused
// without a read: a FIFO opens without blocking (O_NONBLOCK) and is
// refused, as are devices and directories. The size fstat reports is not
// used: sysfs says 4096 for every attribute. ok is false when the file does
// not exist.
func (d *dir) read(name string, buf []byte, limit int) (data []byte, ok bool, err error) {
	fd, err := d.open(name, unix.O_RDONLY|unix.O_NONBLOCK)
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer unix.Close(fd)
	path := func() string { return filepath.Join(d.path, name) }
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, false, &fs.PathError{Op: "stat", Path: path(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false, &fs.PathError{Op: "read", Path: path(), Err: fmt.Errorf("%w (%s)", ErrNotRegular, fileKind(st.Mode))}
	}
	if len(buf) == 0 {
		buf = make([]byte, min(limit+1, bufSize))
	}
	n := 0
	for {
		if n == len(buf) {
			if n > limit {
				return nil, false, &fs.PathError{Op: "read", Path: path(), Err: fmt.Errorf("%w of %d bytes", ErrTooLarge, limit)}
			}
			buf = slices.Grow(buf[:n], min(n, limit+1-n))[:min(2*n, limit+1)]
		}
		m, err := ignoringEINTR(func() (int, error) { return unix.Read(fd, buf[n:]) })
		if err != nil {
			return nil, false, &fs.PathError{Op: "read", Path: path(), Err: err}
		}
		n += m
		if m == 0 || n < len(buf) {
			if n > limit {
				return nil, false, &fs.PathError{Op: "read", Path: path(), Err: fmt.Errorf("%w of %d bytes", ErrTooLarge, limit)}
			}
			return buf[:n], true, nil
		}
	}
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return fmt.Sprintf("file type %#o", mode&unix.S_IFMT)
}

// target returns symlink name's target; ok is false when there is no such
// link. A name that is no link is an error wrapping EINVAL.
func (d *dir) target(name string) (string, bool, error) {
	var buf [unix.PathMax]byte
	n, err := ignoringEINTR(func() (int, error) { return unix.Readlinkat(d.fd, name, buf[:]) })
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
