package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

// bindTarget parses "BDF" or "group N" into the key the state file uses.
func bindTarget(cmd string, args []string) (target string, group int, isGroup bool, err error) {
	switch {
	case len(args) == 1:
		a, err := sysfs.ParseAddress(args[0])
		if err != nil {
			return "", 0, false, fmt.Errorf("%s: %w", cmd, err)
		}
		return a.String(), 0, false, nil
	case len(args) == 2 && args[0] == "group":
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 0 {
			return "", 0, false, fmt.Errorf("%s: group %q is not a group number", cmd, args[1])
		}
		return "group " + strconv.Itoa(n), n, true, nil
	}
	return "", 0, false, fmt.Errorf("%s: want BDF or group N, got %q", cmd, args)
}

// bindCmd runs bind and unbind. opts reach sysfs.New: tests pass the fake
// kernel there, run passes none.
func bindCmd(_ context.Context, cmd string, args []string, w io.Writer, opts ...sysfs.Option) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(w)
	sysRoot := fs.String("sysfs", "/sys", "sysfs mount point")
	statePath := fs.String("state", defaultState, "file recording the drivers bind displaced, for unbind")
	// Flags may come before, between or after the target words.
	var words []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if rest = fs.Args(); len(rest) == 0 {
			break
		}
		words, rest = append(words, rest[0]), rest[1:]
	}
	target, group, isGroup, err := bindTarget(cmd, words)
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
		return fmt.Errorf("bind %s: %w", target, err)
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

// lockState takes an exclusive flock on path's lock file, which it creates,
// and returns its release. bind and unbind hold it from reading the state
// to writing it back, so two at once cannot lose each other's record. The
// lock is on a file of its own: saveState renames a new inode over path.
func lockState(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	fd, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	for {
		err = syscall.Flock(int(fd.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("lock state %s: %w", fd.Name(), err)
	}
	return func() { fd.Close() }, nil // closing drops the lock
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
