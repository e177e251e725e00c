//go:build !hwtests

// The guest runs this package's test binary without sysfs/testdata, so the
// fixture tests stay out of the hwtests build; guest_test.go covers the real tree.

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

// bindEnv is bridge-group.txtar under the fake kernel, with a state file.
type bindEnv struct {
	t     *testing.T
	sys   string
	state string
	k     *sysfstest.Kernel
}

func newBindEnv(t *testing.T) *bindEnv {
	root := fixture(t, "bridge-group.txtar")
	sys := filepath.Join(root, "sys")
	return &bindEnv{t: t, sys: sys, state: filepath.Join(root, "run", "iommu-agent", "bindings.json"), k: &sysfstest.Kernel{Root: sys}}
}

func (e *bindEnv) run(cmd string, args ...string) (string, error) {
	var out bytes.Buffer
	err := bindCmd(context.Background(), cmd, append([]string{"-sysfs", e.sys, "-state", e.state}, args...), &out, sysfs.WithWriter(e.k))
	return out.String(), err
}

func (e *bindEnv) driver(bdf string) string {
	e.t.Helper()
	f, err := sysfs.New(e.sys)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := sysfs.ParseAddress(bdf)
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := f.Device(a)
	if err != nil {
		e.t.Fatal(err)
	}
	return d.Driver
}

func (e *bindEnv) stateText() string {
	b, err := os.ReadFile(e.state)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	return string(b)
}

func TestBindGroupAndUnbind(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	out, err := e.run("bind", "group", "5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "0000:02:02.0: e1000 -> vfio-pci") || !strings.Contains(out, "0000:02:01.0: no driver -> vfio-pci") {
		t.Errorf("bind output:\n%s", out)
	}
	if d := e.driver("0000:02:02.0"); d != "vfio-pci" {
		t.Errorf("e1000 after bind group 5: driver %q", d)
	}
	if d := e.driver("0000:00:03.0"); d != "" {
		t.Errorf("bridge after bind group 5: driver %q, want it left alone", d)
	}
	st := e.stateText()
	for _, w := range []string{`"target": "group 5"`, `"address": "0000:02:02.0"`, `"driver": "e1000"`} {
		if !strings.Contains(st, w) {
			t.Errorf("state lacks %s:\n%s", w, st)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(e.state)); len(ents) != 1 || ents[0].Name() != "bindings.json" {
		t.Errorf("state dir holds %v, want the state alone (temp or lock file left?)", ents)
	}

	if _, err := e.run("bind", "group", "5"); err == nil || !strings.Contains(err.Error(), "already bound by iommu-agent") {
		t.Errorf("second bind group 5: %v", err)
	}
	if _, err := e.run("unbind", "0000:02:02.0"); err == nil || !strings.Contains(err.Error(), "part of group 5") {
		t.Errorf("unbind of one device of a bound group: %v", err)
	}

	// Flags after the target words work too.
	var buf bytes.Buffer
	err = bindCmd(context.Background(), "unbind", []string{"group", "5", "-sysfs", e.sys, "-state", e.state}, &buf, sysfs.WithWriter(e.k))
	out = buf.String()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "0000:02:02.0: vfio-pci -> e1000") {
		t.Errorf("unbind output:\n%s", out)
	}
	if d := e.driver("0000:02:02.0"); d != "e1000" {
		t.Errorf("e1000 after unbind: driver %q", d)
	}
	if d := e.driver("0000:02:01.0"); d != "" {
		t.Errorf("edu after unbind: driver %q, want none as before", d)
	}
	if st := e.stateText(); strings.Contains(st, "group 5") {
		t.Errorf("state still records group 5:\n%s", st)
	}
	if _, err := e.run("unbind", "group", "5"); err == nil || !strings.Contains(err.Error(), "not bound by iommu-agent") {
		t.Errorf("unbind twice: %v", err)
	}
}

func TestBindDevice(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	// lspci's short form names the same device.
	if _, err := e.run("bind", "03:00.0"); err != nil {
		t.Fatal(err)
	}
	if d := e.driver("0000:03:00.0"); d != "vfio-pci" {
		t.Errorf("after bind: driver %q", d)
	}
	if _, err := e.run("unbind", "0000:03:00.0"); err != nil {
		t.Fatal(err)
	}
	if d := e.driver("0000:03:00.0"); d != "" {
		t.Errorf("after unbind: driver %q", d)
	}

	// Already on vfio-pci: nothing to record, so nothing to unbind.
	out, err := e.run("bind", "0000:00:05.0")
	if err != nil || !strings.Contains(out, "already on vfio-pci") {
		t.Errorf("bind of a vfio-pci device: %q, %v", out, err)
	}
	if _, err := e.run("unbind", "0000:00:05.0"); err == nil {
		t.Error("unbind of a device bind did not change succeeded")
	}
}

// A device without an iommu_group under an IOMMU unit: an SMMUv3 gives it
// its group at the first probe, and bind records it as any other; where
// the probe gives it none (the fixture's VT-d left it untranslated),
// vfio-pci refuses it, the device is put back and nothing is recorded.
func TestBindGroupless(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	if _, err := e.run("bind", "0000:00:06.0"); !errors.Is(err, sysfs.ErrNoGroup) || !errors.Is(err, sysfs.ErrNotBound) {
		t.Errorf("bind of a device no probe gives a group: %v, want ErrNoGroup, ErrNotBound", err)
	}
	if d := e.driver("0000:00:06.0"); d != "" {
		t.Errorf("after the refused bind: driver %q", d)
	}
	if st := e.stateText(); st != "" {
		t.Errorf("refused bind wrote state %s", st)
	}

	e = newBindEnv(t)
	e.k.GroupOnProbe = map[string]int{"0000:00:06.0": 9}
	if out, err := e.run("bind", "0000:00:06.0"); err != nil {
		t.Fatalf("bind with a group at the probe: %q, %v", out, err)
	}
	if d := e.driver("0000:00:06.0"); d != "vfio-pci" {
		t.Errorf("after bind: driver %q", d)
	}
	if _, err := e.run("unbind", "0000:00:06.0"); err != nil {
		t.Fatal(err)
	}
	if d := e.driver("0000:00:06.0"); d != "" {
		t.Errorf("after unbind: driver %q", d)
	}
}

func TestBindRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cmd  string
		args []string
		is   error
		text string
	}{
		{cmd: "bind", args: []string{"00:03"}, is: sysfs.ErrAddress},
		{cmd: "bind", args: []string{"0000:00:20.0"}, is: sysfs.ErrAddress},
		{cmd: "bind", args: []string{"0000:09:00.0"}, is: sysfs.ErrNoDevice},
		{cmd: "bind", args: []string{"0000:00:03.0"}, is: sysfs.ErrBridge},
		{cmd: "bind", args: []string{"group", "42"}, is: sysfs.ErrNoGroup},
		{cmd: "bind", args: []string{"group", "five"}, text: "not a group number"},
		{cmd: "bind", args: []string{}, text: "want BDF or group N"},
		{cmd: "bind", args: []string{"a", "b", "c"}, text: "unexpected argument"},
		{cmd: "bind", args: []string{"a", "b"}, text: "want BDF or group N"},
		{cmd: "unbind", args: []string{"group", "6"}, text: "group 6 was not bound by iommu-agent"},
		{cmd: "unbind", args: []string{"0000:02:01.0"}, text: "not bound by iommu-agent"},
		{cmd: "unbind", args: []string{"zz:00.0"}, is: sysfs.ErrAddress},
	} {
		e := newBindEnv(t)
		_, err := e.run(tc.cmd, tc.args...)
		if err == nil || tc.is != nil && !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s %q: error %v, want %v %q", tc.cmd, tc.args, err, tc.is, tc.text)
		}
		if w := e.k.Writes(); len(w) > 0 {
			t.Errorf("%s %q wrote %q", tc.cmd, tc.args, w)
		}
		if st := e.stateText(); st != "" {
			t.Errorf("%s %q wrote state %s", tc.cmd, tc.args, st)
		}
	}
}

func TestBindUndoneWhenStateUnwritable(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	blocker := filepath.Join(t.TempDir(), "file")
	writeFile(t, blocker, "")
	unwritable := filepath.Join(blocker, "bindings.json") // its directory is a file

	// Through the command, the state's unusable directory stops it before
	// any write, at the lock.
	e.state = unwritable
	if _, err := e.run("bind", "group", "5"); err == nil || !strings.Contains(err.Error(), "lock state") {
		t.Errorf("bind with an unreadable state: %v", err)
	}
	if w := e.k.Writes(); len(w) > 0 {
		t.Errorf("bind with an unreadable state wrote %q", w)
	}

	// A state that reads but cannot be written: the bind is undone.
	f, err := sysfs.New(e.sys, sysfs.WithWriter(e.k))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = bindOne(f, bindState{}, unwritable, "group 5", 5, true, &out)
	if err == nil || !strings.Contains(err.Error(), "drivers restored") {
		t.Errorf("bind without a writable state: %v", err)
	}
	if d := e.driver("0000:02:02.0"); d != "e1000" {
		t.Errorf("e1000 after the undone bind: driver %q", d)
	}
}

func TestBindFailureHalfWay(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	e.k.FailAt = 5 // inside the second device of group 5
	_, err := e.run("bind", "group", "5")
	if !errors.Is(err, sysfstest.ErrInjected) {
		t.Fatalf("bind group 5 with an injected failure: %v", err)
	}
	// Half way: e1000 was already unbound when the probe failed, and rebound.
	w := strings.Join(e.k.Writes(), "\n")
	if !strings.Contains(w, "drivers/e1000/unbind=0000:02:02.0") || !strings.Contains(w, "drivers/e1000/bind=0000:02:02.0") {
		t.Errorf("writes do not show the e1000 unbound and restored:\n%s", w)
	}
	for bdf, want := range map[string]string{"0000:02:01.0": "", "0000:02:02.0": "e1000"} {
		if d := e.driver(bdf); d != want {
			t.Errorf("%s after the failed bind: driver %q, want %q", bdf, d, want)
		}
	}
	if st := e.stateText(); st != "" {
		t.Errorf("failed bind wrote state %s", st)
	}
}

func TestStateCorrupt(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	writeFile(t, e.state, "{not json")
	if _, err := e.run("unbind", "group", "5"); err == nil || !strings.Contains(err.Error(), "read state") {
		t.Errorf("unbind with a corrupt state: %v", err)
	}
}

// Concurrent read-modify-writes of the state under its lock lose nothing.
func TestStateLock(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "run", "bindings.json")
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			unlock, err := lockState(state)
			if err != nil {
				errs <- err
				return
			}
			defer unlock()
			st, err := loadState(state)
			if err != nil {
				errs <- err
				return
			}
			st.Bindings = append(st.Bindings, bindRecord{Target: fmt.Sprint("group ", i), Devices: []bindOriginal{}})
			errs <- saveState(state, st)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := loadState(state)
	if err != nil || len(st.Bindings) != n {
		t.Fatalf("%d records after %d concurrent binds, %v", len(st.Bindings), n, err)
	}
}

// Two bind commands at once both land in the state file.
func TestBindConcurrent(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	var wg sync.WaitGroup
	for _, bdf := range []string{"0000:02:01.0", "0000:03:00.0"} {
		wg.Go(func() {
			if _, err := e.run("bind", bdf); err != nil {
				t.Errorf("bind %s: %v", bdf, err)
			}
		})
	}
	wg.Wait()
	st, err := loadState(e.state)
	if err != nil || len(st.Bindings) != 2 {
		t.Fatalf("state after two concurrent binds: %+v, %v", st, err)
	}
}
