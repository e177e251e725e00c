//go:build !hwtests

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client/clienttest"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
)

// startAgent serves the demo's emulated machine on a socket in a temp dir,
// this uid allowed groups 1 and 3, and returns the socket and a stop that
// ends Serve (the test's cleanup stops it otherwise).
func startAgent(t *testing.T) (sock string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Options{
		Backend:  server.BackendEmulated,
		Devices:  demoDevices(),
		StateDir: filepath.Join(dir, "state"),
		Policy:   &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, Groups: []int{1, 3}}}},
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(dir, "agent.sock")
	ln, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	stop = sync.OnceFunc(func() { cancel(); <-served })
	t.Cleanup(stop)
	return sock, stop
}

// agentLeases is what status --json says of the agent's leases.
func agentLeases(t *testing.T, sock string) []proto.Lease {
	t.Helper()
	code, out, errOut := runCode(t, context.Background(), 0, "status", "--json", "-socket", sock)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st StatusOutput
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	return st.Leases
}

func TestClientNoAgent(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	for _, cmd := range []string{"status", "leases", "release", "acquire"} {
		args := []string{cmd, "-socket", sock}
		switch cmd {
		case "release":
			args = append(args, "x")
		case "acquire":
			args = append(args, "group", "1")
		}
		code, out, errOut := runCode(t, context.Background(), 1000, args...)
		if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 ||
			!strings.Contains(errOut, "no agent at "+sock+": is iommu-agent serve running?") {
			t.Errorf("%s without an agent: exit %d, stderr %q", cmd, code, errOut)
		}
	}
	// The socket comes from the environment without -socket.
	var out bytes.Buffer
	err := statusCmd(context.Background(), nil, &out, func(k string) string {
		if k == "IOMMU_AGENT_SOCKET" {
			return sock
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Errorf("status with $IOMMU_AGENT_SOCKET: %v", err)
	}
}

func TestClientStatusAndLeases(t *testing.T) {
	t.Parallel()
	sock, _ := startAgent(t)
	code, out, errOut := runCode(t, context.Background(), 0, "status", "-socket", sock)
	if code != 0 || !strings.Contains(out, "backend emulated") || !strings.Contains(out, "uid "+strconv.Itoa(os.Getuid())) ||
		!strings.Contains(out, "leases:  none") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCode(t, context.Background(), 0, "leases", "-socket", sock)
	if code != 0 || !strings.Contains(out, "GROUP") || !strings.Contains(out, "0000:03:00.1") || !strings.Contains(out, "1234:11e8") {
		t.Errorf("leases: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("leases:\n%s", out)
	code, out, _ = runCode(t, context.Background(), 0, "leases", "--json", "-socket", sock)
	var l LeasesOutput
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || l.Backend != "emulated" || len(l.Devices) != 4 || len(l.Groups) != 3 {
		t.Errorf("leases --json: exit %d, %v: %+v", code, err, l)
	}
}

// acquire -- COMMAND runs it holding the lease, with the placeholders and
// environment filled, releases after it and exits with its status.
func TestAcquireRunsCommand(t *testing.T) {
	t.Parallel()
	sock, _ := startAgent(t)
	code, out, errOut := runCode(t, context.Background(), 0, "acquire", "-socket", sock, "group", "1", "--",
		"/bin/sh", "-c", `echo "lease=$IOMMU_AGENT_LEASE group=$IOMMU_AGENT_GROUP devices=$IOMMU_AGENT_DEVICES args=$0,$1"; exit 7`,
		"{lease}", "{group}")
	if code != 7 {
		t.Errorf("exit %d, want the command's 7; stderr %q", code, errOut)
	}
	var lease, arg0 string
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "lease="); ok {
			lease = v
		}
		if v, ok := strings.CutPrefix(f, "args="); ok {
			arg0, _, _ = strings.Cut(v, ",")
		}
	}
	if lease == "" || arg0 != lease || !strings.Contains(out, "group=1 devices=0000:00:01.0 args="+lease+",1") {
		t.Errorf("the command saw:\n%s", out)
	}
	if ls := agentLeases(t, sock); len(ls) != 0 {
		t.Errorf("leases after the command exited: %+v", ls)
	}

	for _, tc := range []struct {
		argv []string
		code int
	}{
		{[]string{"/bin/sh", "-c", "exit 0"}, 0},
		{[]string{"/bin/sh", "-c", "kill -TERM $$"}, 128 + int(syscall.SIGTERM)},
		{[]string{filepath.Join(t.TempDir(), "no-such-command")}, 127},
		{[]string{t.TempDir()}, 126},
	} {
		code, _, errOut := runCode(t, context.Background(), 0, append([]string{"acquire", "-socket", sock, "0000:00:01.0", "--"}, tc.argv...)...)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", tc.argv, code, tc.code, errOut)
		}
		if ls := agentLeases(t, sock); len(ls) != 0 {
			t.Errorf("%q: leases after: %+v", tc.argv, ls)
		}
	}
}

// The agent's refusals read as one line naming the reason; the lease is
// never left behind.
func TestAcquireRefused(t *testing.T) {
	t.Parallel()
	sock, _ := startAgent(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"group", "2"}, 1, "acquire group 2: denied by the agent's policy: uid "},
		{[]string{"0000:03:00.1"}, 1, "(lease the whole group: acquire group N)"},
		{[]string{"group", "9"}, 1, "acquire group 9: not-found"},
		{[]string{"--mode", "fds", "group", "1"}, 1, "use mode broker"},
		{[]string{"group", "1", "--", "/bin/echo", "{iommufd}"}, 2, "{iommufd}: lease "},
		{[]string{"group", "1", "--", "/bin/echo", "{device1}"}, 2, "{device1}"},
	} {
		code, out, errOut := runCode(t, context.Background(), 1000, append([]string{"acquire", "-socket", sock}, tc.args...)...)
		first, _, _ := strings.Cut(errOut, "\n")
		if code != tc.code || out != "" || !strings.Contains(first, tc.want) || strings.Contains(first, "needs root") {
			t.Errorf("acquire %q: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
		if ls := agentLeases(t, sock); len(ls) != 0 {
			t.Errorf("acquire %q: leases after: %+v", tc.args, ls)
		}
	}
	code, _, errOut := runCode(t, context.Background(), 1000, "release", "-socket", sock, "no-such-lease")
	if code != 1 || !strings.Contains(errOut, "release no-such-lease: not-found") {
		t.Errorf("release of no lease: exit %d, %q", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// acquire without a command holds the lease until a signal, then releases
// it and exits 0.
func TestAcquireHolds(t *testing.T) {
	t.Parallel()
	sock, _ := startAgent(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	var out bytes.Buffer
	errOut := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, []string{"acquire", "-socket", sock, "--json", "group", "3"}, &out, errOut, 1000)
	}()
	// Watch for the lease from another connection, then "press Ctrl-C".
	var held []proto.Lease
	for len(held) == 0 {
		select {
		case code := <-done:
			t.Fatalf("acquire ended before the signal: exit %d, %s", code, errOut.String())
		default:
		}
		held = agentLeases(t, sock)
	}
	if len(held) != 1 || held[0].Group != 3 || len(held[0].Devices) != 2 {
		t.Errorf("held: %+v", held)
	}
	code, list, _ := runCode(t, context.Background(), 0, "leases", "-socket", sock)
	if want := "3      0000:03:00.1  1234:11e8  -       leased " + held[0].ID + " (broker, uid "; code != 0 || !strings.Contains(list, want) {
		t.Errorf("leases while held lacks %q:\n%s", want, list)
	}
	t.Logf("leases:\n%s", list)
	for !strings.Contains(errOut.String(), "holding lease") { // printed just after the lease is taken
		time.Sleep(time.Millisecond)
	}
	cancel(interrupted{syscall.SIGINT})
	if code := <-done; code != 0 {
		t.Errorf("acquire after Ctrl-C: exit %d, want 0; %s", code, errOut.String())
	}
	var l proto.Lease
	if err := json.Unmarshal(out.Bytes(), &l); err != nil || l.ID != held[0].ID {
		t.Errorf("acquire --json printed %q (%v), want lease %s", out.String(), err, held[0].ID)
	}
	if ls := agentLeases(t, sock); len(ls) != 0 {
		t.Errorf("leases after Ctrl-C: %+v", ls)
	}
}

// fakeFDAgent answers hello, acquire and release as an agent with real
// hardware would, mode fds: with two files standing in for the iommufd and
// a VFIO cdev. It reports each release on released.
func fakeFDAgent(t *testing.T) (sock string, files [2]string, released chan string) {
	t.Helper()
	dir := t.TempDir()
	files = [2]string{filepath.Join(dir, "iommufd-stand-in"), filepath.Join(dir, "vfio-stand-in")}
	for _, f := range files {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sock = filepath.Join(dir, "agent.sock")
	ln, err := net.ListenUnix(proto.Network, &net.UnixAddr{Name: sock, Net: proto.Network})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	released = make(chan string, 1)
	go func() {
		uc, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		c := proto.NewConn(uc)
		defer c.Close()
		for {
			var req proto.Request
			fds, err := c.Recv(&req)
			proto.CloseFDs(fds)
			if err != nil {
				return
			}
			resp := proto.Response{ID: req.ID}
			var out []int
			switch req.Op {
			case proto.OpHello:
				resp.Version, resp.Backend = proto.Version, "iommufd"
			case proto.OpAcquire:
				resp.Lease = &proto.Lease{ID: "l-fds", Mode: proto.ModeFDs, Group: 4, Devices: []string{"0000:00:04.0"}}
				resp.FDs = []string{"iommufd", "vfio:0000:00:04.0"}
				for _, f := range files {
					fd, err := syscall.Open(f, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
					if err != nil {
						t.Error(err)
						return
					}
					out = append(out, fd)
				}
			case proto.OpRelease:
				released <- req.Lease
			}
			err = c.Send(resp, out...)
			proto.CloseFDs(out)
			if err != nil {
				return
			}
		}
	}()
	return sock, files, released
}

// In mode fds the command inherits the iommufd and the cdevs at the fd
// numbers the placeholders and the environment give, and nothing else of
// ours.
func TestAcquireHandsOverFDs(t *testing.T) {
	t.Parallel()
	sock, files, released := fakeFDAgent(t)
	script := `echo "env $IOMMU_AGENT_IOMMUFD_FD $IOMMU_AGENT_DEVICE_FDS $IOMMU_AGENT_DEVICES"; echo "args $0 $1"
for fd in /proc/self/fd/*; do echo "fd ${fd##*/} $(readlink $fd)"; done`
	code, out, errOut := runCode(t, context.Background(), 1000, "acquire", "-socket", sock, "group", "4", "--",
		"/bin/sh", "-c", script, "fd={iommufd}", "fd={device0}")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("the command saw:\n%s", out)
	for _, want := range []string{
		"env 3 4 0000:00:04.0\n", "args fd=3 fd=4\n", "fd 3 " + files[0] + "\n", "fd 4 " + files[1] + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the command's output lacks %q", want)
		}
	}
	// Beyond 0-4 the command has what it would have had without acquire
	// (what the shell opens itself, what this test inherited), no more.
	base, err := exec.Command("/bin/sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	above4 := func(out string) map[string]bool {
		m := map[string]bool{}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "fd" {
				if n, _ := strconv.Atoi(f[1]); n > 4 && len(f) == 3 { // no target: the listing's own, closed
					m[line] = true
				}
			}
		}
		return m
	}
	baseFDs := above4(string(base))
	for line := range above4(out) {
		if !baseFDs[line] {
			t.Errorf("the command inherited more: %q", line)
		}
	}
	select {
	case id := <-released:
		if id != "l-fds" {
			t.Errorf("released %q", id)
		}
	default:
		t.Error("no release after the command")
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint64{"1048576": 1 << 20, "512M": 512 << 20, "8G": 8 << 30, "8GiB": 8 << 30, "1t": 1 << 40, "4k": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1", "1.5G", "lots", "99999999999T"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// SIGTERM to acquire reaches the command, whose exit status acquire takes
// once it has released the lease; Ctrl-C is left to the terminal, which
// sends it to the command itself.
func TestAcquireSignals(t *testing.T) {
	t.Parallel()
	sock, _ := startAgent(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 42}, {syscall.SIGINT, 0}} {
		ctx, cancel := context.WithCancelCause(context.Background())
		out := &syncBuffer{}
		done := make(chan int, 1)
		// Without SIGTERM the script ends by itself after ~1 s.
		script := `trap "exit 42" TERM; echo ready; for i in $(seq 20); do sleep 0.05; done; exit 0`
		go func() {
			done <- runMain(ctx, []string{"acquire", "-socket", sock, "group", "1", "--", "/bin/sh", "-c", script}, out, out, 0)
		}()
		for !strings.Contains(out.String(), "ready") {
			time.Sleep(time.Millisecond)
		}
		cancel(interrupted{tc.sig})
		if code := <-done; code != tc.code {
			t.Errorf("%v: exit %d, want %d; %s", tc.sig, code, tc.code, out.String())
		}
		if ls := agentLeases(t, sock); len(ls) != 0 {
			t.Errorf("%v: leases after: %+v", tc.sig, ls)
		}
	}
}

// acquire holding a lease notices when the agent goes away.
func TestAcquireLosesAgent(t *testing.T) {
	t.Parallel()
	sock, stop := startAgent(t)
	errOut := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- acquireEvery(context.Background(), []string{"-socket", sock, "group", "1"}, io.Discard, errOut, os.Getenv, 10*time.Millisecond)
	}()
	for !strings.Contains(errOut.String(), "holding lease") {
		time.Sleep(time.Millisecond)
	}
	stop()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "lost the agent") {
		t.Errorf("acquire after the agent stopped: %v", err)
	}
}

// Every client command stops at SIGINT or SIGTERM (status 128+N, one line)
// while the agent does not answer, rather than swallow the signal and hang.
func TestClientSignalWhileAgentSilent(t *testing.T) {
	t.Parallel()
	sock := clienttest.SilentAgent(t)
	for _, args := range [][]string{
		{"status"}, {"leases", "--json"}, {"release", "L1"}, {"acquire", "group", "1"}, {"acquire", "group", "1", "--", "/bin/true"},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(100*time.Millisecond, func() { cancel(interrupted{syscall.SIGTERM}) })
		type result struct {
			code        int
			out, errOut string
		}
		got := make(chan result, 1)
		go func() {
			code, out, errOut := runCode(t, ctx, 1000, append([]string{args[0], "-socket", sock}, args[1:]...)...)
			got <- result{code, out, errOut}
		}()
		select {
		case r := <-got:
			if want := "iommu-agent: " + args[0] + ": interrupted\n"; r.code != 143 || r.out != "" || r.errOut != want {
				t.Errorf("%q, SIGTERM while the agent is silent: exit %d, stdout %q, stderr %q; want 143 and %q", args, r.code, r.out, r.errOut, want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%q: still waiting for a silent agent a minute after SIGTERM", args)
		}
	}
}

// While acquire's COMMAND runs, signals after the first do not kill
// acquire (the lease would end under the command): a second Ctrl-C or a
// hangup reaches the command from the terminal, SIGTERM is passed on, and
// acquire waits. Once the command is gone, a second signal kills as usual.
func TestAcquireHoldsSignalsForCommand(t *testing.T) {
	t.Parallel()
	sock, _ := startAgent(t)
	died := make(chan syscall.Signal, 4)
	ctx, sigs := newSignals(context.Background(), func(sig syscall.Signal) { died <- sig })
	goFile := filepath.Join(t.TempDir(), "go")
	out := &syncBuffer{}
	done := make(chan int, 1)
	script := `trap "echo term" TERM; echo ready; while [ ! -e "$0" ]; do sleep 0.01; done; exit 5`
	go func() {
		done <- runMain(ctx, []string{"acquire", "-socket", sock, "group", "1", "--", "/bin/sh", "-c", script, goFile}, out, out, 0)
	}()
	for !strings.Contains(out.String(), "ready") {
		time.Sleep(time.Millisecond)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM} {
		sigs.deliver(sig)
	}
	for !strings.Contains(out.String(), "term") { // the SIGTERM, passed on
		time.Sleep(time.Millisecond)
	}
	select {
	case sig := <-died:
		t.Errorf("acquire died of %v while its command ran", sig)
	case code := <-done:
		t.Errorf("acquire exited %d while its command ran", code)
	default:
	}
	if ls := agentLeases(t, sock); len(ls) != 1 {
		t.Errorf("leases while the command runs: %+v", ls)
	}
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 5 {
		t.Errorf("exit %d, want the command's 5; %s", code, out.String())
	}
	if strings.Count(out.String(), "term") != 1 {
		t.Errorf("SIGTERM passed on other than once: %q", out.String())
	}
	if ls := agentLeases(t, sock); len(ls) != 0 {
		t.Errorf("leases after the command: %+v", ls)
	}
	sigs.deliver(syscall.SIGINT)
	select {
	case sig := <-died:
		if sig != syscall.SIGINT {
			t.Errorf("died of %v", sig)
		}
	default:
		t.Error("a signal after the command ended did not kill")
	}
}

// The same with the binary and real signals: a terminal's hangup, twice,
// to acquire's process group while QEMU (here a shell) shuts down. The
// lease lasts until the command exits and acquire exits with its status.
func TestAcquireHangupForReal(t *testing.T) {
	t.Parallel()
	if signal.Ignored(syscall.SIGHUP) {
		t.Skip("SIGHUP is ignored here (nohup?): the shell below could not trap it")
	}
	bin := buildBinary(t)
	sock, _ := startAgent(t)
	goFile := filepath.Join(t.TempDir(), "go")
	script := `trap 'echo hup' HUP; echo ready; while [ ! -e "$0" ]; do sleep 0.01; done
"$1" status -socket "$2" --json; exit 5`
	cmd := exec.Command(bin, "acquire", "-socket", sock, "group", "1", "--", "/bin/sh", "-c", script, goFile, bin, sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "ready") {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 2; i++ {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for strings.Count(out.String(), "hup") < i {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond) // for acquire to die, were it to
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Errorf("acquire: %v, want exit 5 (the command's)\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"group": 1`) {
		t.Errorf("the lease was gone before the command exited:\n%s", out.String())
	}
}

// scriptedAgent answers hello, and each other request with answer's
// response, on one connection at a time.
func scriptedAgent(t *testing.T, answer func(proto.Request) proto.Response) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.ListenUnix(proto.Network, &net.UnixAddr{Name: sock, Net: proto.Network})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			uc, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			c := proto.NewConn(uc)
			for {
				var req proto.Request
				fds, err := c.Recv(&req)
				proto.CloseFDs(fds)
				if err != nil {
					break
				}
				resp := proto.Response{Version: proto.Version, Backend: "emulated"}
				if req.Op != proto.OpHello {
					resp = answer(req)
				}
				resp.ID = req.ID
				if c.Send(resp) != nil {
					break
				}
			}
			c.Close()
		}
	}()
	return sock
}

// A fleet diffs --json outputs: leases come in group order, whatever
// order the agent keeps them in.
func TestClientLeasesInGroupOrder(t *testing.T) {
	t.Parallel()
	sock := scriptedAgent(t, func(req proto.Request) proto.Response {
		return proto.Response{
			Leases: []proto.Lease{{ID: "La", Mode: "broker", Group: 3}, {ID: "Lb", Mode: "broker", Group: 1}, {ID: "Lc", Mode: "broker", Group: 2}},
			Groups: []proto.Group{{Number: 3, Lease: "La"}, {Number: 1, Lease: "Lb"}, {Number: 2, Lease: "Lc"}},
		}
	})
	for _, cmd := range []string{"status", "leases"} {
		code, out, errOut := runCode(t, context.Background(), 0, cmd, "--json", "-socket", sock)
		var got struct{ Leases []proto.Lease }
		if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
			t.Fatalf("%s --json: exit %d, %v: %s", cmd, code, err, errOut)
		}
		var groups []int
		for _, l := range got.Leases {
			groups = append(groups, l.Group)
		}
		if len(groups) != 3 || groups[0] != 1 || groups[1] != 2 || groups[2] != 3 {
			t.Errorf("%s --json: leases of groups %v, want 1, 2, 3", cmd, groups)
		}
	}
}

// COMMAND's stdout is acquire's own file, not a pipe copying into it: a
// terminal stays a terminal for QEMU's serial console.
func TestAcquireCommandKeepsStdout(t *testing.T) {
	t.Parallel()
	sock, _ := startAgent(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var errOut bytes.Buffer
	if code := runMain(context.Background(), []string{"acquire", "-socket", sock, "group", "1", "--", "/bin/sh", "-c", "readlink /proc/self/fd/1"}, f, &errOut, 0); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != f.Name() {
		t.Errorf("COMMAND's stdout is %q, want %s", got, f.Name())
	}
}

// Started with SIGHUP ignored (nohup), acquire keeps ignoring it: the
// terminal closing must not end a lease nohup was asked to keep.
func TestAcquireNohup(t *testing.T) {
	t.Parallel()
	nohup, err := exec.LookPath("nohup")
	if err != nil {
		t.Skip("no nohup")
	}
	bin := buildBinary(t)
	sock, _ := startAgent(t)
	cmd := exec.Command(nohup, bin, "acquire", "-socket", sock, "group", "3")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "holding lease") {
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond) // for acquire to release, were it to
	if ls := agentLeases(t, sock); len(ls) != 1 {
		t.Errorf("after SIGHUP under nohup: leases %+v", ls)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v\n%s", err, out.String())
	}
}
