// Package sysfs reads the host the way the IOMMU sees it (PCI devices, IOMMU
// units, iommu_groups, the kernel command line and passthrough modules) and
// moves devices between drivers with rollback.
//
// An FS is rooted at any directory, so tests run on fake trees
// (sysfs/sysfstest) and the same code runs on /sys. A missing file means
// "absent"; a broken one is a per-device error, joined with errors.Join while
// discovery goes on, so callers get a partial result together with its error.
//
// Discovery trusts no tree: every read is capped (ErrTooLarge) and takes
// regular files only (ErrNotRegular), links must stay in the tree
// (ErrEscapes), and names from it must be names (ErrName). What could not
// be read is never taken as harmless: a group whose members are unknown is
// not viable.
package sysfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Caps on what one read takes in. A tree may hold anything where an
// attribute should be (a 100 MiB file, a link to /dev/zero): discovery
// reads no more than these, and says so.
const (
	// maxAttr bounds a single-value attribute: show() fills at most a
	// page, 64 KiB on arm64 kernels with 64K pages.
	maxAttr = 64 << 10
	// maxFile bounds a multi-line file (resource, reserved_regions,
	// cmdline), each a few KiB on any real host.
	maxFile = 1 << 20
	// bufSize is what a read starts with when the caller has no buffer.
	bufSize = 8 << 10
	// maxName bounds a name taken from the tree: a driver, a group
	// member, a module parameter.
	maxName = 128
)

// Errors of bounded discovery, each wrapped with the file it is about.
var (
	ErrTooLarge   = errors.New("larger than the read cap")
	ErrNotRegular = errors.New("not a regular file")
	ErrEscapes    = errors.New("leaves the sysfs root")
	ErrName       = errors.New("malformed name")
)

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

// root opens the tree's root for one operation's lookups.
func (f *FS) root() (*dir, error) {
	d, err := openRoot(f.sys)
	if err != nil {
		return nil, fmt.Errorf("sysfs root: %w", err)
	}
	return d, nil
}

// attr reads the single-value attribute rel below d, trimmed; ok is false
// when it does not exist.
func (d *dir) attr(rel string, buf []byte) (string, bool, error) {
	b, ok, err := d.read(rel, buf, maxAttr)
	return strings.TrimSpace(string(b)), ok, err
}

// resolve reads the link rel below d and returns where it points, as a
// path relative to the root: the target joined to the link's directory.
// The kernel's links are relative and stay in /sys; an absolute target,
// or one that climbs above the root, is ErrEscapes. ok is false when there
// is no such link; a name that is no link is an error wrapping EINVAL.
func (d *dir) resolve(rel string) (string, bool, error) {
	t, ok, err := d.target(rel)
	if err != nil || !ok {
		return "", ok, err
	}
	p := filepath.Join(d.rel, filepath.Dir(rel), t)
	if filepath.IsAbs(t) || !filepath.IsLocal(p) {
		return "", false, &fs.PathError{Op: "readlink", Path: filepath.Join(d.path, rel), Err: fmt.Errorf("%w: target %s", ErrEscapes, quote(t))}
	}
	return p, true, nil
}

// checkName refuses a name from the tree that is empty, too long, "." or
// "..", or holds anything but printable ASCII without '/': names end up in
// paths (bus/pci/drivers/NAME/unbind) and on terminals.
func checkName(what, s string) error {
	ok := s != "" && len(s) <= maxName && s != "." && s != ".."
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] > ' ' && s[i] < 0x7f && s[i] != '/'
	}
	if !ok {
		return fmt.Errorf("%w: %s %s", ErrName, what, quote(s))
	}
	return nil
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
