//go:build linux && !hwtests

package server_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
)

// rawConn is a client that speaks frames by hand.
func rawConn(t *testing.T, sock string) *proto.Conn {
	t.Helper()
	c, err := proto.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answer reads one response; it fails the test on a socket error.
func answer(t *testing.T, c *proto.Conn) proto.Response {
	t.Helper()
	c.UnixConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	var r proto.Response
	fds, err := c.Recv(&r)
	proto.CloseFDs(fds)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return r
}

func wantCode(t *testing.T, what string, r proto.Response, code proto.Code) {
	t.Helper()
	if r.Error == nil || r.Error.Code != code {
		t.Errorf("%s: answer %+v, want error %s", what, r.Error, code)
	}
}

// devNulls opens n fds to pass around.
func devNulls(t *testing.T, n int) []int {
	var fds []int
	for range n {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := syscall.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	return fds
}

// TestHostileClients sends what a broken or malicious client might; each
// gets an error answer or a closed socket, the agent closes every fd it was
// sent and keeps serving others.
func TestHostileClients(t *testing.T) {
	sock, srv := start(t, server.Options{Devices: edus(4)})
	fds0 := openFDs(t)

	hello := func(c *proto.Conn) {
		t.Helper()
		if err := c.Send(proto.Request{ID: 1, Op: proto.OpHello, Version: proto.Version}); err != nil {
			t.Fatal(err)
		}
		if r := answer(t, c); r.Error != nil {
			t.Fatalf("hello: %v", r.Error)
		}
	}

	t.Run("malformed", func(t *testing.T) {
		c := rawConn(t, sock)
		for name, pkt := range map[string][]byte{
			"not JSON":        proto.Frame([]byte("{nope")),
			"trailing data":   proto.Frame([]byte(`{"op":"hello"} {}`)),
			"unknown field":   proto.Frame([]byte(`{"op":"hello","version":1,"evil":true}`)),
			"wrong type":      proto.Frame([]byte(`{"op":7}`)),
			"short header":    {0, 1},
			"length mismatch": append([]byte{0, 0, 0, 99}, `{"op":"list"}`...),
			"huge length":     append([]byte{0xff, 0xff, 0xff, 0xff}, `{}`...),
		} {
			if err := c.SendRaw(pkt); err != nil {
				t.Fatal(err)
			}
			wantCode(t, name, answer(t, c), proto.CodeFrame)
		}
		// Ops before hello, unknown ops, wrong versions.
		c.Send(proto.Request{ID: 2, Op: proto.OpAcquire, Device: "0000:00:01.0"})
		wantCode(t, "acquire before hello", answer(t, c), proto.CodeVersion)
		c.Send(proto.Request{ID: 3, Op: proto.OpHello, Version: 99})
		wantCode(t, "version 99", answer(t, c), proto.CodeVersion)
		hello(c)
		c.Send(proto.Request{ID: 4, Op: "format-disk"})
		wantCode(t, "unknown op", answer(t, c), proto.CodeInvalid)
		g := 1
		c.Send(proto.Request{ID: 5, Op: proto.OpAcquire, Device: "0000:00:01.0", Group: &g})
		wantCode(t, "device and group", answer(t, c), proto.CodeInvalid)
		c.Send(proto.Request{ID: 6, Op: proto.OpAcquire, Device: "../../etc"})
		wantCode(t, "bad address", answer(t, c), proto.CodeInvalid)
		c.Send(proto.Request{ID: 7, Op: proto.OpRelease, Lease: "L0000"})
		wantCode(t, "release of nothing", answer(t, c), proto.CodeNotFound)
		c.Send(proto.Request{ID: 8, Op: proto.OpDMA, Lease: "L0000", Length: 1 << 40})
		wantCode(t, "dma on nothing", answer(t, c), proto.CodeNotFound)
	})

	t.Run("oversized", func(t *testing.T) {
		c := rawConn(t, sock)
		big := proto.Frame(bytes.Repeat([]byte("x"), proto.MaxFrame+100))
		if err := c.SendRaw(big); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "oversized", answer(t, c), proto.CodeFrame)
		hello(c) // still served
	})

	t.Run("fd counts", func(t *testing.T) {
		c := rawConn(t, sock)
		hello(c)
		fds := devNulls(t, 3)
		c.Send(proto.Request{ID: 2, Op: proto.OpList}, fds...)
		proto.CloseFDs(fds)
		wantCode(t, "list with 3 fds", answer(t, c), proto.CodeTooMany)
		c.Send(proto.Request{ID: 3, Op: proto.OpMap, Lease: "L1", Length: 4096})
		wantCode(t, "map without a memfd", answer(t, c), proto.CodeTooMany)
		// More fds than the agent's control buffer: the kernel cuts them
		// (MSG_CTRUNC) and the agent refuses the frame.
		many := devNulls(t, proto.MaxFDs+8)
		if err := c.SendRaw(proto.Frame([]byte(`{"id":4,"op":"list"}`)), many...); err != nil {
			t.Fatal(err)
		}
		proto.CloseFDs(many)
		wantCode(t, "too many fds", answer(t, c), proto.CodeFrame)
		// A memfd where a lease has none to map into.
		a, err := client.Dial(sock)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		l, err := a.AcquireGroup(2, client.AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := client.NewMemfd("x", 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := a.Map(l.Lease.ID, f, 4096, 4096, 0, false, "rw"); !errors.Is(err, proto.ErrInvalid) {
			t.Errorf("map past the memfd's end: %v", err)
		}
	})

	t.Run("garbage floods", func(t *testing.T) {
		c := rawConn(t, sock)
		for range 20 {
			if c.SendRaw([]byte{1}) != nil {
				break
			}
		}
		// The agent hangs up after a run of bad frames.
		c.UnixConn().SetReadDeadline(time.Now().Add(30 * time.Second))
		var err error
		for err == nil {
			var r proto.Response
			_, err = c.Recv(&r)
		}
		if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
			t.Errorf("after a flood: %v, want the socket closed", err)
		}
	})

	t.Run("disconnect mid-request", func(t *testing.T) {
		for range 20 {
			c, err := proto.Dial(sock)
			if err != nil {
				t.Fatal(err)
			}
			g := 3
			c.Send(proto.Request{ID: 1, Op: proto.OpHello, Version: proto.Version})
			c.Send(proto.Request{ID: 2, Op: proto.OpAcquire, Group: &g})
			c.Close() // before reading either answer
		}
		// Every lease taken for a vanished client ends with it.
		waitFor(t, func() bool { return len(srv.Leases()) == 0 })
		c := dial(t, sock)
		a, err := c.AcquireGroup(3, client.AcquireOptions{})
		if err != nil {
			t.Fatalf("group 3 after the vanished clients: %v", err)
		}
		c.Release(a.Lease.ID)
	})

	t.Run("foreign uid", func(t *testing.T) {
		other := &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid()) + 1}, All: true}}}
		sock2, _ := start(t, server.Options{Devices: edus(1), Policy: other})
		c := dial(t, sock2)
		if _, err := c.AcquireGroup(1, client.AcquireOptions{}); !errors.Is(err, proto.ErrDenied) {
			t.Errorf("foreign uid's policy: %v, want denied", err)
		}
		if _, _, err := c.List(); err != nil {
			t.Errorf("list after a denial: %v", err)
		}
	})

	// Still serving, and every fd the agent was sent or opened is closed
	// once the connections are gone.
	c := dial(t, sock)
	if _, err := c.AcquireGroup(4, client.AcquireOptions{}); err != nil {
		t.Fatalf("after the hostile clients: %v", err)
	}
	c.Close()
	waitFor(t, func() bool { return len(openFDs(t)) <= len(fds0) })
}

// waitFor polls cond until it holds or a generous deadline passes: the agent
// handles disconnects on its own goroutines.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
	}
}
