//go:build linux

// Command init is PID 1 of the hwtests guest. It mounts the kernel's
// filesystems, loads the modules and 9p exports the manifest lists, runs
// each test binary with its output framed on the test stream (a second
// serial port, or /dev/kmsg on lanes where userspace serial output does
// not work) and powers the machine off. The host reads a missing frame
// or verdict as failure, so /init never needs to be trusted to say "ok".
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

func main() {
	earlyErr := mountEarly()
	out := openStream(earlyErr)
	defer poweroff(out)
	defer func() {
		if r := recover(); r != nil {
			out.frame(wire.Frame{Kind: wire.KindError, Text: fmt.Sprintf("panic in /init: %v\n%s", r, debug.Stack())})
			out.frame(wire.Frame{Kind: wire.KindVerdict, Text: "fail panic in /init"})
		}
	}()
	failures := run(out, earlyErr)
	if failures == "" {
		out.frame(wire.Frame{Kind: wire.KindVerdict, Text: "pass"})
	} else {
		out.frame(wire.Frame{Kind: wire.KindVerdict, Text: "fail " + failures})
	}
}

// run does everything between the early mounts and the verdict. It
// returns "" when all went well, else what failed.
func run(out *stream, earlyErr error) string {
	var failed []string
	if earlyErr != nil {
		out.errorf("early mounts: %v", earlyErr)
		failed = append(failed, "early mounts")
	}
	m, err := readManifest(wire.ManifestPath)
	if err != nil {
		out.errorf("%v", err)
		return "no manifest"
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	out.frame(wire.Frame{Kind: wire.KindInit, Text: fmt.Sprintf("lane=%s release=%s tests=%d cmdline=%q",
		m.Lane, unix.ByteSliceToString(uts.Release[:]), len(m.Tests), strings.TrimSpace(string(cmdline)))})

	if err := loadModules(out, m.Modules); err != nil {
		out.errorf("modules: %v", err)
		failed = append(failed, "modules")
	}
	if err := mountExports(out, m.Mounts); err != nil {
		out.errorf("mounts: %v", err)
		failed = append(failed, "mounts")
	}
	if err := collect(m.Collect); err != nil {
		out.errorf("collect: %v", err)
		failed = append(failed, "collect")
	}
	if err := loopbackUp(); err != nil {
		out.errorf("lo: %v", err)
		failed = append(failed, "loopback")
	}
	// Tests that start VMMs or pin memory set their own limits.
	inf := &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, inf); err != nil {
		out.errorf("RLIMIT_MEMLOCK: %v", err)
		failed = append(failed, "rlimit")
	}
	if m.CoverDir != "" {
		if err := os.MkdirAll(m.CoverDir, 0o777); err != nil {
			out.errorf("cover dir: %v", err)
			failed = append(failed, "cover dir")
		}
	}
	bad := 0
	for _, t := range m.Tests {
		if code := runTest(out, m, t); code != 0 {
			bad++
		}
	}
	if bad > 0 {
		failed = append(failed, fmt.Sprintf("%d of %d test binaries failed", bad, len(m.Tests)))
	}
	return strings.Join(failed, "; ")
}

// collect copies each file to wire.CollectDir under its base name.
func collect(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if err := os.MkdirAll(wire.CollectDir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(filepath.Join(wire.CollectDir, filepath.Base(p)), b, 0o644)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loopbackUp brings lo up, as a distribution's init does, so tests can
// serve and scrape HTTP (the agent's /metrics) on 127.0.0.1.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}

func readManifest(p string) (wire.Manifest, error) {
	var m wire.Manifest
	b, err := os.ReadFile(p)
	if err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", p, err)
	}
	return m, nil
}

// mountEarly mounts what everything else needs: /dev for the output
// device, /proc and /sys for tests, debugfs/tracefs/bpffs for tracing.
func mountEarly() error {
	var errs []error
	for _, m := range []struct {
		fstype, dir string
		flags       uintptr
	}{
		{"proc", "/proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", "/dev", unix.MS_NOSUID},
		{"tmpfs", "/tmp", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/run", unix.MS_NOSUID | unix.MS_NODEV},
		{"debugfs", "/sys/kernel/debug", 0},
		{"tracefs", "/sys/kernel/tracing", 0},
		{"bpf", "/sys/fs/bpf", 0},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.Mount(m.fstype, m.dir, m.fstype, m.flags, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err))
		}
	}
	return errors.Join(errs...)
}

// loadModules loads each module with finit_module; compressed stock
// modules are decompressed by the kernel. Already loaded is fine.
func loadModules(out *stream, mods []wire.Module) error {
	var errs []error
	t0 := time.Now()
	for _, m := range mods {
		t := time.Now()
		flags := 0
		if m.Compressed {
			flags = unix.MODULE_INIT_COMPRESSED_FILE
		}
		f, err := os.Open(m.Path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = unix.FinitModule(int(f.Fd()), "", flags)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("load %s: %w", m.Name, err))
			continue
		}
		out.logf("loaded %s in %s", m.Name, time.Since(t).Round(time.Millisecond))
	}
	out.logf("modules loaded in %s", time.Since(t0).Round(time.Millisecond))
	return errors.Join(errs...)
}

// mountExports mounts the 9p exports. The host-root export gets the
// guest's /proc, /sys and /dev bound under it and fresh tmpfs on tmp and
// run, so host programs run chrooted there.
func mountExports(out *stream, mounts []wire.Mount) error {
	var errs []error
	for _, m := range mounts {
		t := time.Now()
		var flags uintptr
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		if err := os.MkdirAll(m.Dir, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.Mount(m.Tag, m.Dir, "9p", flags, m.Options); err != nil {
			errs = append(errs, fmt.Errorf("mount 9p %s on %s: %w", m.Tag, m.Dir, err))
			continue
		}
		if m.HostRoot {
			for _, d := range []string{"proc", "sys", "dev"} {
				if err := unix.Mount("/"+d, filepath.Join(m.Dir, d), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
					errs = append(errs, fmt.Errorf("bind /%s under %s: %w", d, m.Dir, err))
				}
			}
			for _, d := range []string{"tmp", "run"} {
				if err := unix.Mount("tmpfs", filepath.Join(m.Dir, d), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
					errs = append(errs, fmt.Errorf("tmpfs on %s/%s: %w", m.Dir, d, err))
				}
			}
		}
		out.logf("mounted %s on %s in %s", m.Tag, m.Dir, time.Since(t).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

// runTest runs one test binary between begin and end frames and returns
// its exit code (-1 if it was killed).
func runTest(out *stream, m wire.Manifest, t wire.Test) int {
	out.frame(wire.Frame{Kind: wire.KindBegin, Name: t.Name})
	start := time.Now()
	code := execTest(out, m, t)
	out.frame(wire.Frame{Kind: wire.KindEnd, Name: t.Name, Exit: code, Elapsed: time.Since(start)})
	return code
}

func execTest(out *stream, m wire.Manifest, t wire.Test) int {
	timeout := time.Duration(m.TestTimeout)
	dir, err := os.MkdirTemp("/tmp", filepath.Base(t.Path)+"-")
	if err != nil {
		fmt.Fprintf(out, "hwtests /init: work dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir) // artefacts worth keeping go to /out
	args := []string{"-test.v", "-test.timeout=" + timeout.String()}
	if m.CoverDir != "" {
		args = append(args, "-test.gocoverdir="+m.CoverDir)
	}
	args = append(args, m.TestArgs...)
	// The binary's own -test.timeout should fire first and print stacks;
	// this only catches a binary stuck where that cannot run.
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + dir, "TMPDIR=" + dir, "HWTESTS_STRICT=1",
	}, m.Env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // a leftover child holding the pipe
	err = cmd.Run()
	if cmd.Process != nil {
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL) // leftovers must not disturb the next binary
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ctx.Err() != nil {
			fmt.Fprintf(out, "hwtests /init: %s killed after %s\n", t.Name, timeout+30*time.Second)
		}
		return ee.ExitCode() // -1 when killed by a signal
	default:
		fmt.Fprintf(out, "hwtests /init: run %s: %v\n", t.Name, err)
		if cmd.ProcessState != nil {
			return cmd.ProcessState.ExitCode()
		}
		return 1
	}
}

// stream is the test stream: frames and test output, with frames kept
// at column 0.
type stream struct {
	mu     sync.Mutex
	w      io.Writer
	drain  func()
	kmsg   io.Writer // copy of init's own log and errors into dmesg; nil if w is kmsg already
	lastNL bool
}

// openStream opens the output device named by the manifest (read here
// directly: the stream is needed before anything else can be reported).
func openStream(earlyErr error) *stream {
	s := &stream{w: io.Discard, drain: func() {}, lastNL: true}
	kmsg, kerr := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	m, err := readManifest(wire.ManifestPath)
	if err == nil && m.Output == wire.OutputSerial && m.TestDevice != "" {
		if f, err := openSerial(m.TestDevice); err == nil {
			s.w, s.drain = f, func() { _ = unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1) }
			if kerr == nil {
				s.kmsg = kmsg
			}
			return s
		} else if kerr == nil {
			fmt.Fprintf(kmsg, "<2>hwtests /init: open %s: %v; using /dev/kmsg\n", m.TestDevice, err)
		}
	}
	if kerr == nil {
		s.w = &kmsgWriter{w: kmsg}
	}
	return s
}

// openSerial opens a tty for raw output: no \n → \r\n translation.
func openSerial(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		_ = unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
	}
	return f, nil
}

func (s *stream) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(b) == 0 {
		return 0, nil
	}
	n, err := s.w.Write(b)
	if n > 0 {
		s.lastNL = b[n-1] == '\n'
	}
	return n, err
}

// frame writes f on a line of its own.
func (s *stream) frame(f wire.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := f.String() + "\n"
	if !s.lastNL {
		line = "\n" + line
	}
	_, _ = io.WriteString(s.w, line)
	s.lastNL = true
	if s.kmsg != nil && (f.Kind == wire.KindError || f.Kind == wire.KindVerdict || f.Kind == wire.KindInit) {
		fmt.Fprintf(s.kmsg, "<3>hwtests /init: %s\n", f.String())
	}
}

func (s *stream) logf(format string, args ...any) {
	s.frame(wire.Frame{Kind: wire.KindLog, Text: fmt.Sprintf(format, args...)})
}

func (s *stream) errorf(format string, args ...any) {
	s.frame(wire.Frame{Kind: wire.KindError, Text: fmt.Sprintf(format, args...)})
}

// kmsgWriter turns the stream into /dev/kmsg records, one per line, each
// tagged so the host can pick them out of the console.
type kmsgWriter struct {
	w   io.Writer
	buf []byte
}

// kmsgMax keeps records under the kernel's per-record limit (~1 KiB).
const kmsgMax = 900

func (k *kmsgWriter) Write(b []byte) (int, error) {
	k.buf = append(k.buf, b...)
	for {
		i := bytes.IndexByte(k.buf, '\n')
		if i < 0 && len(k.buf) < kmsgMax {
			return len(b), nil
		}
		if i < 0 || i > kmsgMax {
			i = kmsgMax
			k.emit(k.buf[:i])
			k.buf = k.buf[i:]
			continue
		}
		k.emit(k.buf[:i])
		k.buf = k.buf[i+1:]
	}
}

func (k *kmsgWriter) emit(line []byte) {
	_, _ = io.WriteString(k.w, "<2>"+wire.KmsgTag+string(line)+"\n")
}

// poweroff flushes the stream and disks, then turns the machine off
// (QEMU runs with -no-reboot, so it exits).
func poweroff(out *stream) {
	out.drain()
	unix.Sync()
	_ = unix.Unmount("/out", 0)
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {} // PID 1 must not exit: that would panic the kernel
}
