//go:build linux && !hwtests

package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	sock := filepath.Join(dir, "agent.sock")
	srv, err := server.New(context.Background(), server.Options{Devices: edus(1), StateDir: state, Policy: me()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	_, err = server.New(context.Background(), server.Options{Devices: edus(1), StateDir: state, Policy: me()})
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
	sock, _ := start(t, server.Options{Devices: edus(1)})
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
