package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cache holds what the harness downloads and builds, outside the repo:
//
//	<Dir>/kernel/<key>/   extracted kernel packages + source subset (one per kernel version and recipe)
//	<Dir>/modules/<key>/  rebuilt modules (one per kernel entry, variant and Kbuild)
//	<Dir>/bin/<stamp>/<key>/ guest binaries (per source state, binary, arch and build command; gobuild.go)
//	<Dir>/tmp/<pid>-*/    entries being built; renamed into place when complete
//	<Dir>/runs/<stamp>/   per-run directories (console log, guest /out, initramfs)
//	<Dir>/apt-<arch>/     private apt state of a foreign guest architecture (apt.go)
//
// An entry directory exists only once it is complete: it is filled under
// tmp/ and renamed, so an interrupted run leaves only a tmp dir that the
// next run deletes, never a half entry that a later run would trust.
type Cache struct {
	Dir string
}

// DefaultCacheDir is $IOMMU_AGENT_CACHE/hwtests, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/iommu-agent/hwtests. IOMMU_AGENT_CACHE
// names the project's cache root, as in .ci/uapi-headers.
func DefaultCacheDir(getenv func(string) string) (string, error) {
	if d := getenv("IOMMU_AGENT_CACHE"); d != "" {
		return filepath.Join(d, "hwtests"), nil
	}
	base := getenv("XDG_CACHE_HOME")
	if base == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("no cache directory: set IOMMU_AGENT_CACHE, XDG_CACHE_HOME or HOME")
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "iommu-agent", "hwtests"), nil
}

// Entry returns the directory of a complete entry and whether it exists.
func (c Cache) Entry(kind, key string) (string, bool) {
	dir := filepath.Join(c.Dir, kind, key)
	st, err := os.Stat(dir)
	return dir, err == nil && st.IsDir()
}

// Fill returns the entry kind/key, creating it with fill when missing.
// fill gets an empty staging directory; when it returns nil the staging
// directory becomes the entry in one rename. built reports whether fill ran.
// If another run completed the same entry meanwhile, its entry wins and
// ours is dropped.
//
// Runs side by side (lanes in parallel) that need the same missing entry
// take turns on a lock file: one builds, the others wait and reuse it.
func (c Cache) Fill(kind, key string, fill func(staging string) error) (dir string, built bool, err error) {
	if dir, ok := c.Entry(kind, key); ok {
		return dir, false, nil
	}
	unlock, err := c.lock(kind + "-" + key)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if dir, ok := c.Entry(kind, key); ok {
		return dir, false, nil // built while we waited
	}
	staging, err := c.TempDir(kind + "-" + key)
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(staging) // a no-op after the rename
	if err := fill(staging); err != nil {
		return "", true, err
	}
	dir = filepath.Join(c.Dir, kind, key)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", true, err
	}
	if err := os.Rename(staging, dir); err != nil {
		if d, ok := c.Entry(kind, key); ok {
			return d, true, nil // a concurrent run got there first
		}
		return "", true, fmt.Errorf("commit cache entry: %w", err)
	}
	return dir, true, nil
}

// lock takes an exclusive flock on locks/<name>, waiting for it. The
// kernel drops it when the process dies, so a killed run never leaves it
// held.
func (c Cache) lock(name string) (unlock func(), err error) {
	dir := filepath.Join(c.Dir, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, sanitize(name)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// TempDir makes a fresh directory under tmp/ whose name starts with our
// pid, so CleanStale can tell live ones from leftovers.
func (c Cache) TempDir(name string) (string, error) {
	tmp := filepath.Join(c.Dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(tmp, strconv.Itoa(os.Getpid())+"-"+sanitize(name)+"-")
	if err != nil {
		return "", err
	}
	// MkdirTemp makes 0700; entries are shared read-only material.
	return dir, os.Chmod(dir, 0o755)
}

// CleanStale removes staging directories left by runs that no longer
// exist (killed or interrupted).
func (c Cache) CleanStale() error {
	tmp := filepath.Join(c.Dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		pidStr, _, _ := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if err == nil && (pid == os.Getpid() || processAlive(pid)) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Key names a cache entry: a readable stem plus a hash of every recipe
// input, so changing the Kbuild or the extraction steps gives a new entry
// instead of reusing a stale one.
func Key(stem string, inputs ...string) string {
	h := sha256.New()
	for _, in := range inputs {
		// Length-prefixed, so ("ab","c") and ("a","bc") differ.
		fmt.Fprintf(h, "%d:%s;", len(in), in)
	}
	return sanitize(stem) + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// sanitize keeps a name usable as one path element.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".+~_-", r):
			return r
		}
		return '_'
	}, s)
}
