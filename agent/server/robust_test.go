//go:build linux && !hwtests

package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"golang.org/x/sys/unix"
)

// TestClientMistakesAreInvalid sends requests that are the client's fault
// over the socket: each must come back invalid (or a more precise code),
// never internal, and with a message that names the fix.
func TestClientMistakesAreInvalid(t *testing.T) {
	t.Parallel()
	sock, _ := start(t, server.Options{Devices: edus(1)})
	c := dial(t, sock)
	a, err := c.AcquireGroup(1, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := a.Lease.ID
	f, _, err := client.NewMemfd("ok", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sealed := func(seals int) *os.File {
		fd, err := unix.MemfdCreate("sealed", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err != nil {
			t.Fatal(err)
		}
		m := os.NewFile(uintptr(fd), "sealed")
		t.Cleanup(func() { m.Close() })
		if err := m.Truncate(1 << 16); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.FcntlInt(m.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|seals); err != nil {
			t.Fatal(err)
		}
		return m
	}
	writeSealed := sealed(unix.F_SEAL_WRITE)
	futureSealed := sealed(unix.F_SEAL_FUTURE_WRITE)
	for _, tc := range []struct {
		name string
		call func() error
		want string // in the message
	}{
		{"iova+length overflows", func() error {
			_, err := c.Map(id, f, 0, 1<<16, 0xffff_ffff_ffff_0000+0x1000, true, "rw")
			return err
		}, "iova"},
		{"dma beyond the device's dma mask", func() error {
			return c.DMAWrite(id, "", 1<<28, []byte("x"))
		}, "DMA mask"},
		{"dma read wrapping", func() error {
			_, err := c.DMARead(id, "", 1<<64-2, 16)
			return err
		}, "DMA mask"},
		{"memfd sealed against writes", func() error {
			_, err := c.Map(id, writeSealed, 0, 1<<16, 0, false, "rw")
			return err
		}, "F_SEAL_WRITE"},
		{"memfd sealed against future writes", func() error {
			_, err := c.Map(id, futureSealed, 0, 1<<16, 0, false, "rw")
			return err
		}, "F_SEAL_FUTURE_WRITE"},
		{"offset+length beyond the memfd", func() error {
			_, err := c.Map(id, f, 1<<16, 1<<16, 0, false, "rw")
			return err
		}, "inside it"},
		{"offset+length overflows", func() error {
			_, err := c.Map(id, f, 1<<64-1<<12, 1<<13, 0, false, "rw")
			return err
		}, "inside it"},
		{"unmap range wraps", func() error {
			_, err := c.Unmap(id, 1<<64-1<<12, 1<<13)
			return err
		}, "wraps"},
	} {
		err := tc.call()
		if !errors.Is(err, proto.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want invalid naming %q", tc.name, err, tc.want)
		}
	}
	// A write-sealed memfd can still be mapped for the device to read.
	if _, err := c.Map(id, writeSealed, 0, 1<<16, 0, false, "r"); err != nil {
		t.Errorf("read-only map of a write-sealed memfd: %v", err)
	}
}

// TestSecondAgent: a second agent on the same state dir is refused before it
// reconciles; Listen on a live socket refuses and leaves it; a stale one is
// replaced; a stopping agent leaves another's socket alone.
func TestSecondAgent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	sock, _ := start(t, server.Options{Devices: edus(1), StateDir: state})

	_, err := server.New(context.Background(), server.Options{Devices: edus(1), StateDir: state, Policy: me()})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("second New on a locked state dir: %v, want an error naming pid %d", err, os.Getpid())
	}
	if _, err := server.Listen(sock); err == nil || !strings.Contains(err.Error(), "another iommu-agent is serving on "+sock) {
		t.Errorf("Listen on a live socket: %v", err)
	}
	c := dial(t, sock) // the first agent still answers
	if _, _, err := c.List(); err != nil {
		t.Errorf("first agent after the second's attempts: %v", err)
	}

	// A stale socket (nobody listening) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	ln2, err := server.Listen(stale)
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	// A socket that another agent put at the path after this one is not
	// removed when this one stops.
	os.Rename(stale, stale+".mine")
	other, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: stale, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	other.SetUnlinkOnClose(false)
	defer other.Close()
	ln2.Close()
	if _, err := os.Lstat(stale); err != nil {
		t.Errorf("stopping removed another agent's socket: %v", err)
	}

	// A file that is not a socket is never removed.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("precious"), 0o600)
	if _, err := server.Listen(file); err == nil {
		t.Error("Listen over a regular file succeeded")
	}
	if b, _ := os.ReadFile(file); string(b) != "precious" {
		t.Error("Listen removed a regular file")
	}
}

const emfileChildEnv = "IOMMU_AGENT_TEST_EMFILE_CHILD"

// TestAcceptEMFILE runs an agent in a child with a tiny RLIMIT_NOFILE,
// connects until accept fails with EMFILE, lets go, and checks the agent
// serves again: it must not leave Serve at EMFILE.
func TestAcceptEMFILE(t *testing.T) {
	if os.Getenv(emfileChildEnv) != "" {
		emfileChild(t)
		return
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAcceptEMFILE$", "-test.v", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

func emfileChild(t *testing.T) {
	sock, srv := start(t, server.Options{Devices: edus(1)})
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	n := len(openFDs(t))
	low := unix.Rlimit{Cur: uint64(n + 24), Max: lim.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	// Connect (raw: no hello) until the process is out of fds; each
	// connection takes an fd here and one in the agent when accepted.
	var conns []*proto.Conn
	for range 64 {
		c, err := proto.Dial(sock)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond) // the agent tries to accept the rest of the backlog
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(w.Body.String(), `iommu_agent_accept_errors_total{errno="EMFILE"}`) {
		t.Errorf("the agent met no EMFILE")
	}
	for _, c := range conns {
		c.Close()
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d connections at RLIMIT_NOFILE %d", len(conns), low.Cur)
	c, err := proto.Dial(sock)
	if err != nil {
		t.Fatalf("after EMFILE: %v", err)
	}
	defer c.Close()
	c.UnixConn().SetDeadline(time.Now().Add(10 * time.Second))
	c.Send(proto.Request{ID: 1, Op: proto.OpHello, Version: proto.Version})
	var r proto.Response
	if _, err := c.Recv(&r); err != nil || r.Error != nil {
		t.Fatalf("hello after EMFILE: %v %v (the agent no longer serves)", err, r.Error)
	}
}

// TestMapsPerLeaseCapped maps one page at a time until the agent refuses:
// without a cap a client exhausts the agent's mappings (vm.max_map_count),
// and every client's map fails.
func TestMapsPerLeaseCapped(t *testing.T) {
	t.Parallel()
	sock, _ := start(t, server.Options{Devices: edus(2)})
	c := dial(t, sock)
	a, err := c.AcquireGroup(1, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := client.NewMemfd("m", 1<<12)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for ; n < 5000; n++ {
		if _, err = c.Map(a.Lease.ID, f, 0, 1<<12, 0, false, "rw"); err != nil {
			break
		}
	}
	if err == nil || !strings.HasPrefix(err.Error(), "limit:") {
		t.Fatalf("after %d maps: %v, want a limit error", n, err)
	}
	t.Logf("maps per lease: %d, then: %v", n, err)
	// Another lease of the same client still maps.
	b, err := c.AcquireGroup(2, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Map(b.Lease.ID, f, 0, 1<<12, 0, false, "rw"); err != nil {
		t.Errorf("map on another lease: %v", err)
	}
}

// limited is a policy letting this process lease anything, under limits
// changed by set from the defaults.
func limited(set func(*server.Limits)) *server.Policy {
	p := me()
	p.Limits = server.DefaultLimits()
	set(p.Limits)
	return p
}

// TestConnectionCaps: a uid with a rule gets max_conns_per_uid connections,
// one without max_conns_no_rule, everyone together max_conns; the one over
// gets a limit error; a closed connection frees its place.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	t.Run("per uid", func(t *testing.T) {
		sock, _ := start(t, server.Options{Devices: edus(1), Policy: limited(func(l *server.Limits) { l.MaxConnsPerUID = 3 })})
		var cs []*client.Client
		for range 3 {
			cs = append(cs, dial(t, sock))
		}
		_, err := client.Dial(sock)
		if !errors.Is(err, proto.ErrLimit) || !strings.Contains(err.Error(), "max_conns_per_uid") {
			t.Fatalf("4th connection of a uid with a rule: %v, want limit", err)
		}
		cs[0].Close()
		waitFor(t, func() bool {
			c, err := client.Dial(sock)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	})
	t.Run("no rule", func(t *testing.T) {
		other := &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid()) + 1}, All: true}}, Limits: server.DefaultLimits()}
		other.Limits.MaxConnsNoRule = 2
		sock, _ := start(t, server.Options{Devices: edus(1), Policy: other})
		dial(t, sock)
		dial(t, sock)
		if _, err := client.Dial(sock); !errors.Is(err, proto.ErrLimit) || !strings.Contains(err.Error(), "max_conns_no_rule") {
			t.Fatalf("3rd connection of a uid without a rule: %v, want limit", err)
		}
	})
	t.Run("total", func(t *testing.T) {
		sock, _ := start(t, server.Options{Devices: edus(1), Policy: limited(func(l *server.Limits) { l.MaxConns = 2 })})
		dial(t, sock)
		dial(t, sock)
		// A raw client that says nothing still reads the refusal.
		c := rawConn(t, sock)
		c.UnixConn().SetReadDeadline(time.Now().Add(30 * time.Second))
		var r proto.Response
		if _, err := c.Recv(&r); err != nil || r.Error == nil || r.Error.Code != proto.CodeLimit || !strings.Contains(r.Error.Message, "max_conns") {
			t.Fatalf("3rd connection over max_conns 2: %+v, %v", r.Error, err)
		}
		if _, err := c.Recv(&r); err == nil {
			t.Error("the refused connection stays open")
		}
	})
}

// TestIdleTimeouts: silence before hello, and after it without a lease,
// ends the connection; a connection holding a lease stays.
func TestIdleTimeouts(t *testing.T) {
	t.Parallel()
	const hello, idle = 100 * time.Millisecond, 300 * time.Millisecond
	sock, _ := start(t, server.Options{Devices: edus(1), Policy: limited(func(l *server.Limits) {
		l.HelloTimeout, l.IdleTimeout = server.Duration(hello), server.Duration(idle)
	})})
	closed := func(c *proto.Conn) time.Duration {
		t.Helper()
		start := time.Now()
		c.UnixConn().SetReadDeadline(start.Add(30 * time.Second))
		var err error
		for err == nil { // answers to bad frames, then the close
			var r proto.Response
			_, err = c.Recv(&r)
		}
		// EOF, or ECONNRESET when the agent closed with a frame of ours
		// still unread (the chatty client's last one can race the
		// timeout): both are the agent hanging up.
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("silent connection: %v, want closed by the agent", err)
		}
		return time.Since(start)
	}
	silent := rawConn(t, sock)
	t.Logf("no hello: closed after %v", closed(silent))

	// Bad frames are no hello: the hello timeout runs from connect.
	chatty := rawConn(t, sock)
	for range 3 {
		chatty.SendRaw([]byte{1})
		time.Sleep(hello / 2)
	}
	closed(chatty)

	idler := rawConn(t, sock)
	idler.Send(proto.Request{ID: 1, Op: proto.OpHello, Version: proto.Version})
	if r := answer(t, idler); r.Error != nil {
		t.Fatal(r.Error)
	}
	t.Logf("hello, no lease: closed after %v", closed(idler))

	holder := dial(t, sock)
	a, err := holder.AcquireGroup(1, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * idle)
	if _, err := holder.Status(); err != nil {
		t.Fatalf("connection holding a lease after 3 idle timeouts: %v", err)
	}
	if err := holder.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
}

// TestInFlight: with one frame in flight at a time, many clients sending
// maximum-size frames at once are all answered, in turn.
func TestInFlight(t *testing.T) {
	t.Parallel()
	sock, _ := start(t, server.Options{Devices: edus(1), Policy: limited(func(l *server.Limits) { l.MaxInFlight = 1 })})
	big := proto.Frame([]byte(`{"id":2,"op":"status","data":"` + strings.Repeat("A", proto.MaxFrame-64) + `"}`))
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			c, err := proto.Dial(sock)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.UnixConn().SetDeadline(time.Now().Add(30 * time.Second))
			c.Send(proto.Request{ID: 1, Op: proto.OpHello, Version: proto.Version})
			var r proto.Response
			if _, err := c.Recv(&r); err != nil || r.Error != nil {
				errs <- fmt.Errorf("hello: %v %v", err, r.Error)
				return
			}
			for range 20 {
				if err := c.SendRaw(big); err != nil {
					errs <- err
					return
				}
				if _, err := c.Recv(&r); err != nil || r.Error != nil || r.ID != 2 {
					errs <- fmt.Errorf("max-size status: %v %v", err, r.Error)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestMapCaps: maps are capped per lease and per uid, in count and bytes,
// with code limit; an unmap gives its place back.
func TestMapCaps(t *testing.T) {
	t.Parallel()
	const page = 1 << 12
	sock, _ := start(t, server.Options{Devices: edus(3), Policy: limited(func(l *server.Limits) {
		l.MaxMapsPerLease, l.MaxMapsPerUID, l.MaxMapBytesPerLease = 4, 6, 8*page
	})})
	c := dial(t, sock)
	f, _, err := client.NewMemfd("m", 16*page)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lease := func(g int) string {
		a, err := c.AcquireGroup(g, client.AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return a.Lease.ID
	}
	l1, l2, l3 := lease(1), lease(2), lease(3)
	var iovas []uint64
	for range 4 {
		iova, err := c.Map(l1, f, 0, page, 0, false, "rw")
		if err != nil {
			t.Fatal(err)
		}
		iovas = append(iovas, iova)
	}
	if _, err := c.Map(l1, f, 0, page, 0, false, "rw"); !errors.Is(err, proto.ErrLimit) || !strings.Contains(err.Error(), "max_maps_per_lease") {
		t.Errorf("5th map of a lease: %v", err)
	}
	if _, err := c.Map(l2, f, 0, 9*page, 0, false, "rw"); !errors.Is(err, proto.ErrLimit) || !strings.Contains(err.Error(), "max_map_bytes_per_lease") {
		t.Errorf("9 pages on a lease of 8: %v", err)
	}
	for range 2 {
		if _, err := c.Map(l2, f, 0, page, 0, false, "rw"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Map(l3, f, 0, page, 0, false, "rw"); !errors.Is(err, proto.ErrLimit) || !strings.Contains(err.Error(), "max_maps_per_uid") {
		t.Errorf("7th map of a uid: %v", err)
	}
	if _, err := c.Unmap(l1, iovas[0], page); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Map(l3, f, 0, page, 0, false, "rw"); err != nil {
		t.Errorf("map after an unmap freed a place: %v", err)
	}
	if err := c.Release(l1); err != nil { // its 3 maps go with it
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Map(l3, f, 0, page, 0, false, "rw"); err != nil {
			t.Errorf("map after a release freed places: %v", err)
		}
	}
}

// TestPolicyLimits: limits in a policy file keep the defaults of the fields
// left out; unknown, non-positive and malformed ones are refused.
func TestPolicyLimits(t *testing.T) {
	t.Parallel()
	p, err := server.ParsePolicy([]byte(`{"rules":[{"uids":[1],"all":true}],"limits":{"max_conns":10,"idle_timeout":"1m"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := server.DefaultLimits()
	want.MaxConns, want.IdleTimeout = 10, server.Duration(time.Minute)
	if *p.Limits != *want {
		t.Errorf("limits %+v, want %+v", *p.Limits, *want)
	}
	if p, err := server.ParsePolicy([]byte(`{"rules":[]}`)); err != nil || *p.Limits != *server.DefaultLimits() {
		t.Errorf("no limits: %+v, %v", p, err)
	}
	for _, bad := range []string{
		`{"rules":[],"limits":{"max_conn":10}}`,
		`{"rules":[],"limits":{"max_conns":0}}`,
		`{"rules":[],"limits":{"max_maps_per_uid":-1}}`,
		`{"rules":[],"limits":{"hello_timeout":"0s"}}`,
		`{"rules":[],"limits":{"idle_timeout":300}}`,
		`{"rules":[],"limits":{"write_timeout":"soon"}}`,
		`{"rules":[],"limits":{"max_map_bytes_per_uid":0}}`,
	} {
		if _, err := server.ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("ParsePolicy(%s) accepted", bad)
		}
	}
	if _, err := server.New(context.Background(), server.Options{StateDir: t.TempDir(), Policy: &server.Policy{Limits: &server.Limits{MaxConns: 1}}}); err == nil {
		t.Error("New with zero limits succeeded")
	}
}

// failingListener fails Accept with an errno a number of times before
// passing to the real listener: EMFILE without exhausting the test's fds.
type failingListener struct {
	*server.Listener
	fails atomic.Int32
}

func (l *failingListener) AcceptUnix() (*net.UnixConn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "unixpacket", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.AcceptUnix()
}

// TestAcceptBackoff: accept failures are retried with a backoff, counted
// by errno, and /healthz fails while they last past UnhealthyAfter.
func TestAcceptBackoff(t *testing.T) {
	t.Parallel()
	srv, err := server.New(context.Background(), server.Options{Devices: edus(1), StateDir: filepath.Join(t.TempDir(), "state"),
		Policy: me(), UnhealthyAfter: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "a.sock")
	ln, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln}
	fl.fails.Store(8) // 5 ms doubling: 1.3 s of failures
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, fl) }()
	h := srv.Handler()
	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code, w.Body.String()
	}
	waitFor(t, func() bool {
		code, body := get("/healthz")
		return code == 503 && strings.Contains(body, "accept failing")
	})
	if code, body := get("/healthz"); !strings.Contains(body, "too many open files") {
		t.Errorf("healthz while accept fails: %d %q", code, body)
	}
	c, err := client.Dial(sock) // answered once the failures end
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if code, body := get("/healthz"); code != 200 {
		t.Errorf("healthz after accept recovered: %d %q", code, body)
	}
	if _, m := get("/metrics"); !strings.Contains(m, `iommu_agent_accept_errors_total{errno="EMFILE"} 8`) {
		t.Errorf("metrics lack 8 EMFILE accept errors")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "not serving") {
		t.Errorf("healthz after Serve: %d %q", code, body)
	}
}
