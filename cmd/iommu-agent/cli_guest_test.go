//go:build hwtests && linux

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// asNobody carries, separated by \\x1f (an environment value holds no NUL), the command line the child run of
// TestGuestNeedsRoot runs as uid 65534.
const asNobody = "IOMMU_AGENT_TEST_AS_NOBODY"

// On the real sysfs, bind as a user without privilege fails in one line
// that says it needs root, and changes nothing: no driver, no file.
func TestGuestNeedsRoot(t *testing.T) {
	if args := os.Getenv(asNobody); args != "" { // the child, as uid 65534
		os.Exit(runMain(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr, os.Geteuid()))
	}
	if os.Getenv("HWTESTS_STRICT") != "1" {
		t.Skip("runs in the guest only")
	}
	eduGroups(t, guestInventory(t)) // on SMMUv3, gives a never-probed edu its group first
	before := guestInventory(t)
	g := eduGroups(t, before)[0]
	dir := t.TempDir()
	// A test binary and a state directory nobody may use, so the refusal
	// comes from sysfs itself.
	for d := dir; d != filepath.Dir(os.TempDir()); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "test.bin")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, bin)
	run := filepath.Join(dir, "run")
	state := filepath.Join(run, "iommu-agent", "bindings.json")
	cmd := exec.Command(bin, "-test.run", "^TestGuestNeedsRoot$")
	// GOCOVERDIR: the guest's test binaries are built with -cover, and
	// without it the child would print a warning after the error line.
	cmd.Env = append(os.Environ(), "GOCOVERDIR="+dir, asNobody+"="+strings.Join([]string{"bind", "-state", state, "group", itoa(g.Number)}, "\x1f"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("bind group %d as uid 65534: %v\n%s%s", g.Number, err, stdout.String(), stderr.String())
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("exit %v, want 1", err)
	}
	msg := stderr.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "permission denied") ||
		!strings.HasSuffix(msg, ": needs root (run as root or with CAP_DAC_OVERRIDE)\n") {
		t.Errorf("stderr %q: want one line ending in needs root", msg)
	}
	if _, err := os.Stat(run); err == nil {
		t.Errorf("the failed bind left %s", run)
	}
	if after := guestInventory(t); !reflect.DeepEqual(eduGroups(t, after), eduGroups(t, before)) {
		t.Errorf("the failed bind changed the edu's group:\nbefore %+v\nafter  %+v", eduGroups(t, before), eduGroups(t, after))
	}
}

// As root, a bind the kernel refuses (no such device) leaves no state, lock
// or directory either.
func TestGuestFailedBindLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "run", "iommu-agent", "bindings.json")
	var out, errOut bytes.Buffer
	code := runMain(context.Background(), []string{"bind", "-state", state, "0000:7f:1f.7"}, &out, &errOut, os.Geteuid())
	if code != 1 || strings.Count(errOut.String(), "\n") != 1 || strings.Count(errOut.String(), "bind") != 1 {
		t.Errorf("bind of no device: exit %d, %q", code, errOut.String())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the failed bind left %v", ents)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
