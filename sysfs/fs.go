// Package sysfs reads the host the way the IOMMU sees it (PCI devices, IOMMU
// units, iommu_groups, the kernel command line and passthrough modules) and
// moves devices between drivers with rollback.
//
// An FS is rooted at any directory, so tests run on fake trees
// (sysfs/sysfstest) and the same code runs on /sys. A missing file means
// "absent"; a broken one is a per-device error, joined with errors.Join while
// discovery goes on, so callers get a partial result together with its error.
package sysfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxAttr bounds a single-value read: sysfs show() returns at most a page.
const maxAttr = 4096

// Writer performs attribute writes. The kernel reacts to them (bind, unbind,
// probe), so tests substitute a fake kernel (sysfstest.Kernel) that does what
// the kernel would do to the tree.
type Writer interface {
	WriteAttr(path, value string) error
}

// FS is a sysfs tree, plus the procfs tree for /proc/cmdline.
type FS struct {
	sys  string
	proc string
	w    Writer
}

// Option configures New.
type Option func(*FS)

// WithProcRoot roots /proc (for cmdline) at dir; by default it is unset and
// Cmdline reports absent.
func WithProcRoot(dir string) Option { return func(f *FS) { f.proc = dir } }

// WithWriter sends every write through w instead of the file system.
func WithWriter(w Writer) Option { return func(f *FS) { f.w = w } }

// New returns the sysfs tree rooted at root, which must be a directory.
func New(root string, opts ...Option) (*FS, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("sysfs root: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("sysfs root %s: not a directory", root)
	}
	f := &FS{sys: root, w: osWriter{}}
	for _, o := range opts {
		o(f)
	}
	return f, nil
}

// Default is the running host's tree: /sys and /proc.
func Default() (*FS, error) { return New("/sys", WithProcRoot("/proc")) }

// Path joins elem under the sysfs root; every sysfs path is built here.
func (f *FS) Path(elem ...string) string {
	return filepath.Join(append([]string{f.sys}, elem...)...)
}

// procPath joins elem under the procfs root, "" when there is none.
func (f *FS) procPath(elem ...string) string {
	if f.proc == "" {
		return ""
	}
	return filepath.Join(append([]string{f.proc}, elem...)...)
}

// readAttr reads a single-value attribute with one bounded read (some
// drivers answer EAGAIN forever to a read loop). ok is false when the file
// does not exist.
func readAttr(path string) (value string, ok bool, err error) {
	fd, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer fd.Close()
	var buf [maxAttr]byte
	n, err := fd.Read(buf[:])
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(buf[:n])), true, nil
}

// readFile reads a multi-line file whole; ok is false when it does not exist.
func readFile(path string) (data string, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// readLink returns the basename of a symlink's target; ok is false when the
// link does not exist. A dangling link still names its target.
func readLink(path string) (base string, ok bool, err error) {
	t, err := os.Readlink(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return filepath.Base(t), true, nil
}

// writeAttr is the one place that writes to sysfs.
func (f *FS) writeAttr(path, value string) error {
	if err := f.w.WriteAttr(path, value); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

// osWriter writes an attribute in a single write, as the kernel's store()
// expects.
type osWriter struct{}

func (osWriter) WriteAttr(path, value string) error {
	fd, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fd.Write([]byte(value))
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return err
}
