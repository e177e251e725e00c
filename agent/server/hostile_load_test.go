//go:build linux && !hwtests

package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"golang.org/x/sys/unix"
)

// The hostile clients of TestHostileLoad are this test binary re-run as
// other uids, so the agent sees them as the local users they play.
const (
	hostileRoleEnv = "IOMMU_AGENT_TEST_HOSTILE" // idle, frames or mapper
	hostileSockEnv = "IOMMU_AGENT_TEST_HOSTILE_SOCK"
	hostileNEnv    = "IOMMU_AGENT_TEST_HOSTILE_N"
	// loadConnsEnv sets the connection flood of TestHostileLoad: 2,000 by
	// default; the figure is IOMMU_AGENT_LOAD_CONNS=20000.
	loadConnsEnv = "IOMMU_AGENT_LOAD_CONNS"
	uidMapper    = 65534 // a rule for one group: maps until the cap
	uidNoRule    = 65533 // no rule: connects, that is all it can do
	mapperGroup  = 9
)

// procStats are the figures TestHostileLoad logs for this process (the agent).
type procStats struct {
	fds       int
	heap, rss uint64
}

func (p procStats) String() string {
	return fmt.Sprintf("%d fds, heap %.1f MiB, RSS %.1f MiB", p.fds, float64(p.heap)/(1<<20), float64(p.rss)/(1<<20))
}

func stats(t testing.TB) procStats {
	var p procStats
	p.fds = len(openFDs(t))
	p.heap = heap()
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			p.rss = kb << 10
		}
	}
	return p
}

// hostileChild runs one role and reports on stdout; it lets go when its
// stdin closes.
func hostileChild(role, sock string, n int) error {
	stop, stopFrames := make(chan struct{}), make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	hello := func(c *proto.Conn) error {
		c.UnixConn().SetDeadline(time.Now().Add(30 * time.Second))
		defer c.UnixConn().SetDeadline(time.Time{})
		if err := c.Send(proto.Request{ID: 1, Op: proto.OpHello, Version: proto.Version}); err != nil {
			return err
		}
		var r proto.Response
		if _, err := c.Recv(&r); err != nil {
			return err
		}
		if r.Error != nil {
			return r.Error
		}
		return nil
	}
	switch role {
	case "idle": // n connections, each says hello and then nothing
		var mu sync.Mutex
		var held []*proto.Conn
		refused, other := 0, map[string]int{}
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					c, err := proto.Dial(sock)
					if err == nil {
						err = hello(c)
					}
					mu.Lock()
					switch {
					case err == nil:
						held = append(held, c)
					case errors.Is(err, proto.ErrLimit):
						refused++
						c.Close()
					default:
						other[err.Error()]++
						if c != nil {
							c.Close()
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		fmt.Printf("ready held=%d refused=%d other=%v\n", len(held), refused, other)
		<-stop
		return nil
	case "frames": // n connections sending maximum-size frames for 3 s; half never read the answers
		go func() { // then they hold the connections, silent, until stdin closes
			time.Sleep(3 * time.Second)
			select {
			case <-stop:
			default:
				close(stopFrames)
			}
		}()
		big := proto.Frame([]byte(`{"id":2,"op":"status","data":"` + strings.Repeat("A", proto.MaxFrame-64) + `"}`))
		var sent, answered, hungUp atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := proto.Dial(sock)
					if err == nil {
						err = hello(c)
					}
					if err != nil {
						if c != nil {
							c.Close()
						}
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
						}
						continue
					}
					for err == nil {
						select {
						case <-stop:
							c.Close()
							return
						case <-stopFrames:
							<-stop
							c.Close()
							return
						default:
						}
						if err = c.SendRaw(big); err == nil {
							sent.Add(1)
							if i%2 == 0 {
								var r proto.Response
								if _, err = c.Recv(&r); err == nil {
									answered.Add(1)
								}
							}
						}
					}
					hungUp.Add(1)
					c.Close()
				}
			}()
		}
		fmt.Println("ready")
		wg.Wait()
		fmt.Printf("frames sent=%d answered=%d hung_up=%d\n", sent.Load(), answered.Load(), hungUp.Load())
		return nil
	case "mapper": // one lease, mapped page by page until the agent refuses
		c, err := client.Dial(sock)
		if err != nil {
			return err
		}
		defer c.Close()
		a, err := c.AcquireGroup(mapperGroup, client.AcquireOptions{})
		if err != nil {
			return err
		}
		f, _, err := client.NewMemfd("hostile", 1<<12)
		if err != nil {
			return err
		}
		maps := 0
		for ; ; maps++ {
			if _, err = c.Map(a.Lease.ID, f, 0, 1<<12, 0, false, "rw"); err != nil {
				break
			}
		}
		if !errors.Is(err, proto.ErrLimit) {
			return fmt.Errorf("after %d maps: %w, want limit", maps, err)
		}
		fmt.Printf("maps %d, then: %v\n", maps, err)
		for { // keep pushing
			select {
			case <-stop:
				return nil
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := c.Map(a.Lease.ID, f, 0, 1<<12, 0, false, "rw"); !errors.Is(err, proto.ErrLimit) {
				return fmt.Errorf("map over the cap: %w", err)
			}
		}
	}
	return fmt.Errorf("role %q", role)
}

// hostile is a running hostile child.
type hostile struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startHostile runs this test binary (copied where other uids can run it)
// as uid in role.
func startHostile(t *testing.T, bin, role, sock string, uid uint32, n int) *hostile {
	t.Helper()
	h := &hostile{lines: make(chan string, 16)}
	h.cmd = exec.Command(bin, "-test.run=^TestHostileLoad$")
	h.cmd.Env = []string{hostileRoleEnv + "=" + role, hostileSockEnv + "=" + sock, hostileNEnv + "=" + strconv.Itoa(n)}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	var stderr bytes.Buffer
	h.cmd.Stderr = &stderr
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		h.cmd.Process.Kill()
		h.cmd.Wait()
		if t.Failed() {
			t.Logf("%s child stderr:\n%s", role, stderr.String())
		}
	})
	return h
}

// line waits for the child's next report line.
func (h *hostile) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatalf("%v: child ended without a report", h.cmd.Args)
		}
		return l
	case <-time.After(5 * time.Minute):
		t.Fatalf("%v: no report", h.cmd.Args)
	}
	return ""
}

// stop lets the child go and waits for its exit and last lines.
func (h *hostile) stop(t *testing.T) []string {
	t.Helper()
	h.stdin.Close()
	var rest []string
	for l := range h.lines {
		rest = append(rest, l)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Errorf("%v: %v (%v)", h.cmd.Args, err, rest)
	}
	return rest
}

// goodClient runs acquire, map, dma both ways, unmap and release on group
// until stop, and returns the cycles done or the first error.
func goodClient(sock string, group int, stop <-chan struct{}) (int, error) {
	c, err := client.Dial(sock)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	f, mem, err := client.NewMemfd("good", 1<<16)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return n, nil
		default:
		}
		a, err := c.AcquireGroup(group, client.AcquireOptions{})
		if err != nil {
			return n, fmt.Errorf("acquire: %w", err)
		}
		iova, err := c.Map(a.Lease.ID, f, 0, 1<<16, 0, false, "rw")
		if err != nil {
			return n, fmt.Errorf("map: %w", err)
		}
		msg := []byte(fmt.Sprintf("cycle %d of group %d", n, group))
		if err := c.DMAWrite(a.Lease.ID, "", iova+64, msg); err != nil {
			return n, fmt.Errorf("dma write: %w", err)
		}
		if !bytes.Equal(mem[64:64+len(msg)], msg) {
			return n, fmt.Errorf("memory holds %q after the dma", mem[64:64+len(msg)])
		}
		if got, err := c.DMARead(a.Lease.ID, "", iova+64, uint64(len(msg))); err != nil || !bytes.Equal(got, msg) {
			return n, fmt.Errorf("dma read: %q, %w", got, err)
		}
		if _, err := c.Unmap(a.Lease.ID, iova, 1<<16); err != nil {
			return n, fmt.Errorf("unmap: %w", err)
		}
		if err := c.Release(a.Lease.ID); err != nil {
			return n, fmt.Errorf("release: %w", err)
		}
	}
}

// TestHostileLoad runs hostile local users beside well-behaved clients:
// a uid without a rule floods the agent with connections that say hello
// and nothing more; a uid with a rule for one group sends maximum-size
// frames on many connections (half never reading the answers) and maps
// page by page until its cap; a second agent tries to start on the same
// state dir and socket. The well-behaved clients (acquire, map, DMA both
// ways, unmap, release) never fail; once the hostile ones are gone the
// agent's fds and heap are back where they were. Then the flood is admitted
// (caps raised to it) to measure what idle sessions cost. Figures are
// logged (go test -v -run TestHostileLoad); IOMMU_AGENT_LOAD_CONNS=20000
// gives the issue's.
func TestHostileLoad(t *testing.T) {
	if role := os.Getenv(hostileRoleEnv); role != "" {
		n, _ := strconv.Atoi(os.Getenv(hostileNEnv))
		if err := hostileChild(role, os.Getenv(hostileSockEnv), n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getuid() != 0 {
		t.Skip("the hostile clients run as other uids: needs root")
	}
	conns := 2000
	if s := os.Getenv(loadConnsEnv); s != "" {
		var err error
		if conns, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	// The admitted flood needs an fd per connection in the agent, and
	// room beside them for New not to lower the cap. Without
	// CAP_SYS_RESOURCE the hard limit stays, and so does a lower cap.
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	if need := uint64(conns + 2048); lim.Cur < need {
		raised := unix.Rlimit{Cur: need, Max: max(need, lim.Max)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err != nil {
			t.Logf("raise RLIMIT_NOFILE to %d: %v: the admitted flood stays under %d", need, err, lim.Cur)
		} else {
			defer unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
		}
	}

	// A directory other uids can reach, with a copy of this binary.
	dir, err := os.MkdirTemp("", "iommu-agent-load-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "server.test")
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	sock := filepath.Join(dir, "agent.sock")
	policy := &server.Policy{Rules: []server.Rule{
		{UIDs: []uint32{uint32(os.Getuid())}, Groups: []int{1, 2, 3, 4, 5, 6, 7, 8}},
		{UIDs: []uint32{uidMapper}, Groups: []int{mapperGroup}},
	}, Limits: server.DefaultLimits()}
	policy.Limits.WriteTimeout = server.Duration(time.Second) // non-readers hang up within the test
	srv, err := server.New(context.Background(), server.Options{Devices: edus(mapperGroup), StateDir: state, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	stop := serveAt(t, srv, sock)
	metricsOf := func(srv *server.Server) string {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	metrics := func() string { return metricsOf(srv) }

	warm := make(chan struct{})
	close(warm)
	if _, err := goodClient(sock, 1, warm); err != nil {
		t.Fatal(err)
	}
	base := stats(t)
	t.Logf("baseline: %v", base)

	stopGood := make(chan struct{})
	type result struct {
		n   int
		err error
	}
	good := make(chan result, 8)
	for g := 1; g <= 8; g++ {
		go func() { n, err := goodClient(sock, g, stopGood); good <- result{n, err} }()
	}
	start := time.Now()
	mapper := startHostile(t, bin, "mapper", sock, uidMapper, 0)
	frames := startHostile(t, bin, "frames", sock, uidMapper, 16)
	flood := startHostile(t, bin, "idle", sock, uidNoRule, conns)
	t.Logf("mapper: %s", mapper.line(t))
	frames.line(t)
	t.Logf("flood of %d connections by uid %d (no rule): %s", conns, uidNoRule, flood.line(t))
	during := stats(t)
	t.Logf("under attack: %v", during)

	// A second agent on the same state dir and socket is refused, and the
	// first keeps its socket.
	if _, err := server.New(context.Background(), server.Options{Devices: edus(1), StateDir: state, Policy: policy}); !errors.Is(err, server.ErrAnotherAgent) {
		t.Errorf("second agent on the state dir: %v", err)
	} else {
		t.Logf("second agent: %v", err)
	}
	if _, err := server.Listen(sock); !errors.Is(err, server.ErrAnotherAgent) {
		t.Errorf("second agent on the socket: %v", err)
	} else {
		t.Logf("second agent: %v", err)
	}
	time.Sleep(2 * time.Second) // the frames and the mapper keep at it
	t.Logf("frames: %v", frames.stop(t))
	mapper.stop(t)
	flood.stop(t)
	close(stopGood)
	cycles := 0
	for range 8 {
		r := <-good
		cycles += r.n
		if r.err != nil {
			t.Errorf("a well-behaved client failed under attack: %v", r.err)
		}
	}
	t.Logf("well-behaved: 8 clients, %d acquire/map/dma/unmap/release cycles in %v, none failed", cycles, time.Since(start).Round(time.Millisecond))
	for _, want := range []string{`iommu_agent_connections_refused_total{cap="uid"}`, `iommu_agent_errors_total{code="limit",op="map"}`} {
		if !strings.Contains(metrics(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Back to baseline once the attackers are gone.
	waitFor(t, func() bool { return len(srv.Leases()) == 0 && stats(t).fds <= base.fds })
	after := stats(t)
	t.Logf("after: %v", after)
	if after.heap > base.heap+16<<20 {
		t.Errorf("heap %d bytes after the attack, %d before", after.heap, base.heap)
	}
	if m := metrics(); !strings.Contains(m, "iommu_agent_maps 0\n") || !strings.Contains(m, "iommu_agent_connections 0\n") {
		t.Errorf("maps or connections left after the attack")
	}

	// The flood admitted: what idle sessions cost the agent.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	admit := &server.Policy{Rules: policy.Rules, Limits: server.DefaultLimits()}
	admit.Limits.MaxConns, admit.Limits.MaxConnsNoRule = conns+16, conns
	srv2, err := server.New(context.Background(), server.Options{Devices: edus(1), StateDir: state, Policy: admit})
	if err != nil {
		t.Fatal(err)
	}
	stop2 := serveAt(t, srv2, sock)
	base2 := stats(t)
	flood2 := startHostile(t, bin, "idle", sock, uidNoRule, conns)
	report := flood2.line(t)
	held := stats(t)
	var nHeld, nRefused int
	fmt.Sscanf(report, "ready held=%d refused=%d", &nHeld, &nRefused)
	// Under RLIMIT_NOFILE New may cap max_conns lower: the rest are
	// refused (raw clients sending hello as the refusal lands see EPIPE).
	if nHeld == 0 || nHeld < conns && !strings.Contains(metricsOf(srv2), `cap="total"`) {
		t.Errorf("admitted flood: %s", report)
	}
	perConn := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(nHeld) / 1024 }
	t.Logf("flood of %d, caps raised to it: %s; agent: %v; per session: heap %.1f KiB, RSS %.1f KiB", conns, report, held,
		perConn(base2.heap, held.heap), perConn(base2.rss, held.rss))
	flood2.stop(t)
	waitFor(t, func() bool { return stats(t).fds <= base2.fds })
	t.Logf("after the admitted flood: %v", stats(t))
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
}
