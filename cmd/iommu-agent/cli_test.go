//go:build !hwtests

package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// runCode runs the command line as main would, as user euid, and returns
// its exit status and what it printed.
func runCode(t *testing.T, ctx context.Context, euid int, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runMain(ctx, args, &out, &errOut, euid)
	return code, out.String(), errOut.String()
}

// Usage errors exit 2 with the usage on stderr and nothing on stdout,
// for every command, before anything is opened or written.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"list", "--nope"},
		{"list", "extra"},
		{"check", "extra"},
		{"probe", "extra"},
		{"version", "extra"},
		{"serve", "--nope"},
		{"serve", "extra"},
		{"serve", "-backend", "frob"},
		{"serve", "-emulated-devices", "0"},
		{"serve", "-emulated-devices", "100000"},
		{"serve", "-orphan-check", "-1s"},
		{"serve", "-socket", ""},
		{"serve", "-state", ""},
		{"bind"},
		{"bind", "group"},
		{"bind", "group", "five"},
		{"bind", "group", "-3"},
		{"bind", "a", "b", "c"},
		{"bind", "zz:00.0"},
		{"unbind"},
		{"bind", "--nope", "0000:00:01.0"},
		{"demo", "-cycles", "-5"},
		{"demo", "-cycles", "0"},
		{"demo", "-cycles", "1000000000"},
		{"demo", "-cycles", "x"},
		{"demo", "extra"},
		{"trace", "--interval", "-1s"},
		{"trace", "--pid", "4294967296"},
		{"trace", "extra"},
		{"trace", "--ops", "ioas_map,frob"},
		{"sriov"},
		{"sriov", "frob"},
		{"sriov", "enable", "0000:01:00.0"},
		{"sriov", "enable", "0000:01:00.0", "x"},
		{"sriov", "enable", "0000:01:00.0", "2", "--autoprobe", "yes"},
		{"sriov", "set", "0000:01:10.0", "frob=1"},
		{"help", "frob"},
		{"help", "list", "check"},
		{"leases", "extra"},
		{"status", "extra"},
		{"acquire"},
		{"acquire", "group"},
		{"acquire", "0000:00:01.0", "--mode", "frob"},
		{"acquire", "0000:00:01.0", "--memlock", "lots"},
		{"acquire", "0000:00:01.0", "--"},
		{"release"},
		{"release", "a", "b"},
		// Empty and negative values are mistakes too, found before
		// anything is dialed or read.
		{"acquire", "group", "-1"},
		{"acquire", "-socket", "/nonexistent", "group", "1", "--", ""},
		{"status", "-socket", ""},
		{"leases", "-socket", ""},
		{"acquire", "-socket", "", "group", "1"},
		{"release", "-socket", "/nonexistent", ""},
		{"check", "-sysfs", ""},
		{"check", "-proc", ""},
		{"check", "-modules", ""},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCode(t, context.Background(), 0, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout not empty:\n%s", out)
			}
			if !strings.HasPrefix(errOut, "iommu-agent: ") || !strings.Contains(errOut, "\nusage: iommu-agent") {
				t.Errorf("stderr lacks the error line and the usage:\n%s", errOut)
			}
			if first, _, _ := strings.Cut(errOut, "\n"); strings.Contains(first, "flag: help") {
				t.Errorf("error line %q", first)
			}
		})
	}
}

// A usage error's first line says what is wrong in the user's words.
func TestUsageErrorLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"acquire", "group", "-1"}, `acquire: group "-1" is not a group number`},
		{[]string{"bind", "group", "-3"}, `bind: group "-3" is not a group number`},
		{[]string{"acquire"}, "acquire: want DEVICE or group N"},
		{[]string{"bind"}, "bind: want BDF or group N"},
		{[]string{"status", "-socket", ""}, "status: -socket is empty"},
		{[]string{"release", ""}, "release: LEASE is empty"},
		{[]string{"check", "-sysfs", ""}, "check: -sysfs is empty"},
	} {
		_, _, errOut := runCode(t, context.Background(), 0, tc.args...)
		if first, _, _ := strings.Cut(errOut, "\n"); !strings.HasPrefix(first, "iommu-agent: "+tc.want) {
			t.Errorf("%q: %q, want %q", tc.args, first, "iommu-agent: "+tc.want)
		}
	}
}

// -h, --help and help exit 0 with the usage on stdout; help CMD and
// CMD -h print that command's usage with its flags.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"usage: iommu-agent <command>", "acquire", "leases"}},
		{[]string{"--help"}, []string{"usage: iommu-agent <command>"}},
		{[]string{"help"}, []string{"usage: iommu-agent <command>"}},
		{[]string{"help", "serve"}, []string{"usage: iommu-agent serve", "-orphan-check"}},
		{[]string{"serve", "-h"}, []string{"usage: iommu-agent serve", "-orphan-check"}},
		{[]string{"list", "--help"}, []string{"usage: iommu-agent list", "-json"}},
		{[]string{"check", "-h"}, []string{"usage: iommu-agent check", "-proc"}},
		{[]string{"help", "bind"}, []string{"usage: iommu-agent bind", "group N", "-state"}},
		{[]string{"unbind", "-h"}, []string{"usage: iommu-agent unbind", "-state"}},
		{[]string{"demo", "-h"}, []string{"usage: iommu-agent demo", "-cycles"}},
		{[]string{"help", "sriov"}, []string{"usage: iommu-agent sriov", "enable PF N", "-autoprobe"}},
		{[]string{"trace", "-h"}, []string{"usage: iommu-agent trace", "-interval"}},
		{[]string{"help", "probe"}, []string{"usage: iommu-agent probe", "-dev"}},
		{[]string{"help", "version"}, []string{"usage: iommu-agent version"}},
		{[]string{"help", "acquire"}, []string{"usage: iommu-agent acquire", "{iommufd}", "IOMMU_AGENT_DEVICE_FDS", "-mode"}},
		{[]string{"leases", "-h"}, []string{"usage: iommu-agent leases", "-json", "IOMMU_AGENT_SOCKET"}},
		{[]string{"status", "-h"}, []string{"usage: iommu-agent status", "-socket"}},
		{[]string{"release", "-h"}, []string{"usage: iommu-agent release", "LEASE"}},
		{[]string{"help", "help"}, []string{"usage: iommu-agent <command>"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCode(t, context.Background(), 0, tc.args...)
			if code != 0 || errOut != "" {
				t.Errorf("exit %d, stderr %q; want 0 and nothing", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("usage lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// An error is one line, each layer saying its part once.
func TestBindErrorSaysItOnce(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	code, _, errOut := runCode(t, context.Background(), 0, "bind", "-sysfs", e.sys, "-state", e.state, "0000:09:00.0")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if strings.Count(errOut, "\n") != 1 || strings.Count(errOut, "bind") != 1 || !strings.Contains(errOut, "no such PCI device") {
		t.Errorf("want one line naming bind once:\n%s", errOut)
	}
}

// "bind group" without its number says what is expected.
func TestBindGroupWithoutNumber(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"bind", "unbind"} {
		code, _, errOut := runCode(t, context.Background(), 0, cmd, "group")
		first, _, _ := strings.Cut(errOut, "\n")
		if code != 2 || strings.Contains(first, "malformed PCI address") || !strings.Contains(first, "group N") {
			t.Errorf("%s group: exit %d, %q", cmd, code, first)
		}
	}
}

// leftovers lists what is under dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p != dir {
			got = append(got, strings.TrimPrefix(p, dir+"/"))
		}
		return err
	})
	return got
}

// A failed bind leaves no lock file, no state and no directory behind; a
// successful one leaves its state and no lock file.
func TestBindLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	run := filepath.Join(t.TempDir(), "run")
	e.state = filepath.Join(run, "iommu-agent", "bindings.json")
	for _, args := range [][]string{{"bind", "0000:09:00.0"}, {"bind", "group", "42"}, {"unbind", "group", "5"}} {
		if _, err := e.run(args[0], args[1:]...); err == nil {
			t.Fatalf("%v succeeded", args)
		}
		if got := leftovers(t, filepath.Dir(run)); len(got) > 0 {
			t.Errorf("%v left %q", args, got)
		}
	}
	if _, err := e.run("bind", "group", "5"); err != nil {
		t.Fatal(err)
	}
	if got := leftovers(t, run); strings.Join(got, " ") != "iommu-agent iommu-agent/bindings.json" {
		t.Errorf("a bind left %q, want its state alone", got)
	}
	if _, err := e.run("bind", "group", "5"); err == nil {
		t.Fatal("second bind of group 5 accepted")
	}
	if _, err := e.run("unbind", "group", "5"); err != nil {
		t.Fatal(err)
	}
	if got := leftovers(t, run); strings.Join(got, " ") != "iommu-agent iommu-agent/bindings.json" {
		t.Errorf("unbind left %q, want the state alone", got)
	}
}

// permWriter refuses every sysfs write as the kernel does a non-root one.
type permWriter struct{}

func (permWriter) WriteAttr(path, _ string) error {
	return &fs.PathError{Op: "open", Path: path, Err: syscall.EACCES}
}

// A permission error as a non-root user says "needs root" and how.
func TestNeedsRoot(t *testing.T) {
	t.Parallel()
	e := newBindEnv(t)
	var out bytes.Buffer
	err := bindCmd(context.Background(), "bind", []string{"-sysfs", e.sys, "-state", e.state, "group", "5"}, &out, sysfs.WithWriter(permWriter{}))
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("bind with sysfs refusing writes: %v", err)
	}
	for _, tc := range []struct {
		euid int
		want bool
	}{{1000, true}, {0, false}} {
		var errOut bytes.Buffer
		code := exitStatus(context.Background(), []string{"bind", "group", "5"}, err, &out, &errOut, tc.euid)
		if code != 1 || strings.Contains(errOut.String(), "needs root (run as root or with CAP_DAC_OVERRIDE)") != tc.want ||
			strings.Count(errOut.String(), "\n") != 1 || strings.Count(errOut.String(), "bind") != 1 {
			t.Errorf("euid %d: exit %d, %q", tc.euid, code, errOut.String())
		}
	}
}

// The same for real: the binary as uid 65534 on a tree only root may write.
func TestNeedsRootForReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to another uid")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv")
	}
	bin := buildBinary(t)
	e := newBindEnv(t)
	// The fixture is root's; let nobody read and traverse it, not write.
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(e.sys)} {
		for p := d; strings.HasPrefix(p, os.TempDir()+"/"); p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
				if err := os.Chmod(p, fi.Mode().Perm()|0o005); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	cmd := exec.Command(setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", bin,
		"bind", "-sysfs", e.sys, "-state", e.state, "group", "5")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("as uid 65534: %v, want exit 1\n%s", err, stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "permission denied") || !strings.Contains(msg, "needs root") || strings.Count(msg, "\n") != 1 {
		t.Errorf("as uid 65534: %q", msg)
	}
	t.Log(strings.TrimSpace(stderr.String()))
}

// buildBinary builds iommu-agent into a temp dir once per test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "iommu-agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cancelOn cancels its context, as a SIGINT would, once the output
// contains a word.
type cancelOn struct {
	buf    bytes.Buffer
	word   string
	cancel context.CancelCauseFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.word) {
		c.cancel(interrupted{syscall.SIGINT})
	}
	return len(p), nil
}

// Ctrl-C in the demo stops it cleanly: "interrupted", status 130, no EOF
// error, nothing left in the temp dir.
func TestDemoInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	out := &cancelOn{word: "3. acquire", cancel: cancel}
	var errOut bytes.Buffer
	code := runMain(ctx, []string{"demo", "-cycles", "1000000"}, out, &errOut, 0)
	if code != 130 || errOut.String() != "iommu-agent: demo: interrupted\n" {
		t.Errorf("demo interrupted: exit %d, stderr %q; want 130 and one line", code, errOut.String())
	}
}

// After a signal, a command's own error is still said (serve failing as it
// stops must be read); only its stopping for the signal reads
// "interrupted".
func TestInterruptedOrNot(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(interrupted{syscall.SIGTERM})
	for _, tc := range []struct {
		err  error
		code int
		want string
	}{
		{context.Canceled, 143, "iommu-agent: serve: interrupted\n"},
		{interrupted{syscall.SIGTERM}, 143, "iommu-agent: serve: interrupted\n"},
		{errors.New("remove socket: busy"), 1, "iommu-agent: remove socket: busy\n"},
	} {
		var out, errOut bytes.Buffer
		if code := exitStatus(ctx, []string{"serve"}, tc.err, &out, &errOut, 0); code != tc.code || errOut.String() != tc.want {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.err, code, errOut.String(), tc.code, tc.want)
		}
	}
}

// fullWriter fails every write, as stdout on a full disk does.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// Output that could not be written is an error (exit 1, said on stderr),
// as for POSIX utilities: 'iommu-agent status > file' on a full disk must
// not succeed with nothing written.
func TestOutputWriteError(t *testing.T) {
	t.Parallel()
	sock, _ := startAgent(t)
	for _, args := range [][]string{{"version"}, {"help"}, {"status", "-h"}, {"status", "-socket", sock}, {"status", "--json", "-socket", sock}} {
		var errOut bytes.Buffer
		code := runMain(context.Background(), args, fullWriter{}, &errOut, 0)
		if code != 1 || !strings.Contains(errOut.String(), "no space left on device") || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("%q to a full disk: exit %d, stderr %q; want 1 and one line", args, code, errOut.String())
		}
	}
}
