//go:build linux

package proto_test

import (
	"errors"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/proto"
)

// pair is a connected SOCK_SEQPACKET pair, as the agent's socket gives.
func pair(t testing.TB) (*proto.Conn, *proto.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]*proto.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "seqpacket")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = proto.NewConn(c.(*net.UnixConn))
		t.Cleanup(func() { cs[i].Close() })
	}
	return cs[0], cs[1]
}

func TestRoundTripWithFDs(t *testing.T) {
	a, b := pair(t)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := 4
	if err := a.Send(proto.Request{ID: 9, Op: proto.OpAcquire, Group: &g}, int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	var req proto.Request
	fds, err := b.Recv(&req)
	if err != nil {
		t.Fatal(err)
	}
	defer proto.CloseFDs(fds)
	if req.ID != 9 || req.Op != proto.OpAcquire || req.Group == nil || *req.Group != 4 || len(fds) != 1 {
		t.Errorf("got %+v with fds %v", req, fds)
	}
	var st1, st2 syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st1)
	syscall.Fstat(fds[0], &st2)
	if st1.Ino != st2.Ino || st1.Rdev != st2.Rdev {
		t.Error("received fd is not the file sent")
	}
	if flags, _, _ := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[0]), syscall.F_GETFD, 0); flags&syscall.FD_CLOEXEC == 0 {
		t.Error("received fd is not close-on-exec")
	}
}

func TestRecvRefuses(t *testing.T) {
	a, b := pair(t)
	for _, tc := range []struct {
		name   string
		packet []byte
		fds    int
		want   error
	}{
		{"oversized", proto.Frame(make([]byte, proto.MaxFrame+1)), 0, proto.ErrTooLarge},
		{"too many fds", proto.Frame([]byte(`{}`)), proto.MaxFDs + 1, proto.ErrTruncated},
		{"bad length", append([]byte{0, 0, 0, 5}, `{}`...), 2, proto.ErrMalformed},
		{"unknown field", proto.Frame([]byte(`{"x":1}`)), 0, proto.ErrMalformed},
	} {
		var fds []int
		for range tc.fds {
			fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			fds = append(fds, fd)
		}
		if err := a.SendRaw(tc.packet, fds...); err != nil {
			t.Fatal(err)
		}
		proto.CloseFDs(fds)
		var req proto.Request
		got, err := b.Recv(&req)
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("%s: fds %v, err %v, want %v", tc.name, got, err, tc.want)
		}
	}
	// The connection still works.
	if err := a.Send(proto.Request{Op: proto.OpList}); err != nil {
		t.Fatal(err)
	}
	var req proto.Request
	if _, err := b.Recv(&req); err != nil || req.Op != proto.OpList {
		t.Errorf("after the refusals: %+v, %v", req, err)
	}
}

// FuzzRecv feeds any packet to Recv: an error or a request, never a panic,
// and never fds on an error.
func FuzzRecv(f *testing.F) {
	f.Add(proto.Frame([]byte(`{"id":1,"op":"hello","version":1}`)))
	f.Add(proto.Frame([]byte(`{"op":"acquire","group":3,"mode":"fds","memlock":1}`)))
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff})
	a, b := pair(f)
	f.Fuzz(func(t *testing.T, packet []byte) {
		if len(packet) == 0 {
			return // an empty packet is a hangup
		}
		if err := a.SendRaw(packet); err != nil {
			t.Skip(err)
		}
		var req proto.Request
		fds, err := b.Recv(&req)
		if err != nil && fds != nil {
			t.Fatalf("fds %v with error %v", fds, err)
		}
		if err == nil && len(packet) < 4 {
			t.Fatalf("accepted a %d-byte packet", len(packet))
		}
	})
}

// TestIdleConnHoldsNoBuffer: a Conn waiting for its next frame holds no
// receive buffer, so an agent with thousands of idle clients does not hold
// MaxFrame bytes for each.
func TestIdleConnHoldsNoBuffer(t *testing.T) {
	a, _ := pair(t)
	const n = 1000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	conns := make([]*proto.Conn, 0, n)
	before := heap()
	for range n {
		conns = append(conns, proto.NewConn(a.UnixConn()))
	}
	per := (int64(heap()) - int64(before)) / n
	runtime.KeepAlive(conns)
	t.Logf("%d bytes per idle Conn", per)
	if per > 1024 {
		t.Errorf("an idle Conn holds %d bytes", per)
	}
}

// TestWaitPeeks: Wait reports the next packet's size without taking it or
// its fds; Recv then gets both.
func TestWaitPeeks(t *testing.T) {
	a, b := pair(t)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frame := proto.Frame([]byte(`{"id":1,"op":"list"}`))
	if err := a.SendRaw(frame, int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	fdsBefore, _ := os.ReadDir("/proc/self/fd")
	for range 2 {
		n, err := b.Wait()
		if err != nil || n != len(frame) {
			t.Fatalf("Wait = %d, %v; want %d", n, err, len(frame))
		}
	}
	if fdsAfter, _ := os.ReadDir("/proc/self/fd"); len(fdsAfter) != len(fdsBefore) {
		t.Errorf("Wait installed fds: %d -> %d", len(fdsBefore), len(fdsAfter))
	}
	var req proto.Request
	fds, err := b.Recv(&req)
	if err != nil || len(fds) != 1 || req.Op != proto.OpList {
		t.Fatalf("Recv after Wait: %+v, fds %v, %v", req, fds, err)
	}
	proto.CloseFDs(fds)
	// A deadline ends a Wait with nothing to read.
	b.UnixConn().SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := b.Wait(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Wait past its deadline: %v", err)
	}
}
