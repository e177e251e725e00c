package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// defaultState is where bind keeps the drivers it displaced: /run is
// cleared on reboot, exactly when the bindings it records are gone too.
const defaultState = "/run/iommu-agent/bindings.json"

// bindState is the state file: one record per bind, so unbind can give
// each device back its original driver.
type bindState struct {
	Bindings []bindRecord `json:"bindings"`
}

// bindRecord is one bind: the target as typed ("0000:00:01.0" or
// "group 4") and each device changed, in the order Bind changed them.
type bindRecord struct {
	Target  string         `json:"target"`
	Devices []bindOriginal `json:"devices"`
}

type bindOriginal struct {
	Address  string `json:"address"`
	Driver   string `json:"driver"`   // "" for none
	Override string `json:"override"` // driver_override before bind; "" for unset
}

// parseTarget parses "BDF" or "group N" (bind, unbind; acquire calls a BDF
// a DEVICE: noun) into the key the state file uses and the agent's
// messages name. Its errors are usage errors of fl.
func parseTarget(fl *flagSet, args []string, noun string) (target string, group int, isGroup bool, err error) {
	switch {
	case len(args) == 0:
		return "", 0, false, fl.usageErrorf("want %s or group N", noun)
	case len(args) == 1 && args[0] == "group":
		return "", 0, false, fl.usageErrorf("group needs its number: %s group N", fl.cmd.name)
	case len(args) == 1:
		a, err := sysfs.ParseAddress(args[0])
		if err != nil {
			return "", 0, false, fl.usageError(fmt.Errorf("want %s (e.g. 0000:03:00.0) or group N: %w", noun, err))
		}
		return a.String(), 0, false, nil
	case len(args) == 2 && args[0] == "group":
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 0 {
			return "", 0, false, fl.usageErrorf("group %q is not a group number: want group N", args[1])
		}
		return "group " + strconv.Itoa(n), n, true, nil
	}
	return "", 0, false, fl.usageErrorf("want %s or group N, got %q", noun, args)
}

// bindCmd runs bind and unbind. opts reach sysfs.New: tests pass the fake
// kernel there, run passes none.
func bindCmd(_ context.Context, cmd string, args []string, w io.Writer, opts ...sysfs.Option) error {
	fs := newFlagSet(cmd)
	sysRoot := fs.String("sysfs", "/sys", "sysfs mount point")
	statePath := fs.String("state", defaultState, "file recording the drivers bind displaced, for unbind")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fs.nonEmpty("sysfs", "state"); err != nil {
		return err
	}
	target, group, isGroup, err := parseTarget(fs, fs.Args(), "BDF")
	if err != nil {
		return err
	}
	f, err := sysfs.New(*sysRoot, opts...)
	if err != nil {
		return err
	}
	unlock, err := lockState(*statePath)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(*statePath)
	if err != nil {
		return err
	}
	if cmd == "bind" {
		return bindOne(f, st, *statePath, target, group, isGroup, w)
	}
	return unbindOne(f, st, *statePath, target, w)
}

func bindOne(f *sysfs.FS, st bindState, statePath, target string, group int, isGroup bool, w io.Writer) error {
	for _, r := range st.Bindings {
		if r.Target == target {
			return fmt.Errorf("bind: %s is already bound by iommu-agent (see %s); unbind it first", target, statePath)
		}
	}
	var b *sysfs.Binding
	var err error
	if isGroup {
		b, err = f.BindGroup(group)
	} else {
		b, err = f.Bind(target)
	}
	if err != nil {
		// sysfs says what it tried, "bind BDF: ..." or "iommu_group N:
		// ...": a prefix here would say it twice.
		return err
	}
	if len(b.Devices) == 0 {
		fmt.Fprintf(w, "%s: already on %s, nothing changed\n", target, sysfs.VFIOPCI)
		return nil
	}
	rec := bindRecord{Target: target, Devices: []bindOriginal{}}
	for _, o := range b.Devices {
		rec.Devices = append(rec.Devices, bindOriginal{Address: o.Address.String(), Driver: o.Driver, Override: o.Override})
	}
	st.Bindings = append(st.Bindings, rec)
	if err := saveState(statePath, st); err != nil {
		// Without the record unbind could not restore the drivers: undo.
		if rerr := f.Release(b); rerr != nil {
			return fmt.Errorf("bind %s: %w; restoring the drivers failed too: %w", target, err, rerr)
		}
		return fmt.Errorf("bind %s: %w (drivers restored)", target, err)
	}
	for _, o := range rec.Devices {
		fmt.Fprintf(w, "%s: %s -> %s\n", o.Address, driverText(o.Driver), sysfs.VFIOPCI)
	}
	return nil
}

func unbindOne(f *sysfs.FS, st bindState, statePath, target string, w io.Writer) error {
	idx := -1
	for i, r := range st.Bindings {
		if r.Target == target {
			idx = i
			break
		}
		for _, d := range r.Devices {
			if d.Address == target {
				return fmt.Errorf("unbind: %s was bound as part of %s; unbind %s", target, r.Target, r.Target)
			}
		}
	}
	if idx < 0 {
		return fmt.Errorf("unbind: %s was not bound by iommu-agent (no record in %s), so its original driver is unknown", target, statePath)
	}
	rec := st.Bindings[idx]
	b := &sysfs.Binding{}
	for _, d := range rec.Devices {
		a, err := sysfs.ParseAddress(d.Address)
		if err != nil {
			return fmt.Errorf("unbind: %s: corrupt record: %w", statePath, err)
		}
		b.Devices = append(b.Devices, sysfs.Original{Address: a, Driver: d.Driver, Override: d.Override})
	}
	if err := f.Release(b); err != nil {
		return fmt.Errorf("unbind %s: %w (record kept in %s; run unbind again once fixed)", target, err, statePath)
	}
	st.Bindings = append(st.Bindings[:idx], st.Bindings[idx+1:]...)
	if err := saveState(statePath, st); err != nil {
		return fmt.Errorf("unbind %s: drivers restored, but: %w", target, err)
	}
	for i := len(rec.Devices) - 1; i >= 0; i-- {
		o := rec.Devices[i]
		fmt.Fprintf(w, "%s: %s -> %s\n", o.Address, sysfs.VFIOPCI, driverText(o.Driver))
	}
	return nil
}

func driverText(d string) string {
	if d == "" {
		return "no driver"
	}
	return d
}

// lockState takes an exclusive flock on path+".lock" and returns its
// release. bind and unbind hold it from reading the state to writing it
// back, so two at once cannot lose each other's record. The lock is a file
// of its own because saveState renames a new inode over path.
//
// Nothing of the lock outlives the command: the release removes the lock
// file (while still holding it), and the directories lockState created
// when they are empty again, so a failed bind leaves nothing behind. A
// waiter that then gets the lock on the removed file sees that the name no
// longer leads to its file and starts over, so two commands never hold
// locks on different files at once. (/run/lock would spare the cleanup
// but not the -state directory bind needs anyway, and flock on that
// directory would block on whatever else keeps a lock there.)
func lockState(path string) (unlock func(), err error) {
	dir, name := filepath.Dir(path), path+".lock"
	var created []string
	removeCreated := func() {
		for _, d := range created { // deepest first; fails harmlessly when not empty
			os.Remove(d)
		}
	}
	for tries := 0; ; tries++ {
		created = append(missingDirs(dir), created...)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			removeCreated()
			return nil, fmt.Errorf("lock state: %w", err)
		}
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if errors.Is(err, os.ErrNotExist) && tries < 100 {
			continue // another command removed the directory it created: again
		}
		if err != nil {
			removeCreated()
			return nil, fmt.Errorf("lock state: %w", err)
		}
		for {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if err != nil {
			f.Close()
			removeCreated()
			return nil, fmt.Errorf("lock state %s: %w", name, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(name)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return func() {
				os.Remove(name)
				f.Close() // drops the lock
				removeCreated()
			}, nil
		}
		f.Close() // the previous holder removed it as we waited
	}
}

// missingDirs returns dir and those of its parents that do not exist,
// deepest first: what MkdirAll(dir) would create.
func missingDirs(dir string) []string {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			return missing
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			return missing
		}
	}
}

// loadState reads the state file; a missing one is empty.
func loadState(path string) (bindState, error) {
	var st bindState
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read state %s: %w", path, err)
	}
	return st, nil
}

// saveState replaces the state file atomically: a temporary file in the
// same directory, synced, then renamed over it, so a crash leaves the old
// or the new state, never half of one.
func saveState(path string, st bindState) error {
	if st.Bindings == nil {
		st.Bindings = []bindRecord{}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".bindings-*.json")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename it no longer exists
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
