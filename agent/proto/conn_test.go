//go:build linux

package proto_test

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

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
