//go:build linux

package sysfs

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// UeventConn is a NETLINK_KOBJECT_UEVENT socket subscribed to the kernel's
// uevent group. It is non-blocking under Go's poller, so Close wakes a
// blocked ReadUevent.
type UeventConn struct {
	f  *os.File
	rc syscall.RawConn
}

// ueventRcvBuf is the receive buffer asked for: a rescan of a big host sends
// thousands of uevents in a burst, and a short buffer means ENOBUFS and a
// full re-read.
const ueventRcvBuf = 8 << 20

// OpenUevents subscribes to the kernel's uevents (multicast group 1, the
// kernel's own; udev re-broadcasts on group 2).
func OpenUevents() (*UeventConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	// FORCE passes rmem_max with CAP_NET_ADMIN; without it take what we may.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, ueventRcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, ueventRcvBuf)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent socket bind: %w", err)
	}
	f := os.NewFile(uintptr(fd), "uevent")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	return &UeventConn{f: f, rc: rc}, nil
}

// ReadUevent receives the next datagram sent by the kernel (netlink port
// 0) into buf, dropping any other sender's and any that did not fit.
func (c *UeventConn) ReadUevent(buf []byte) (int, error) {
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			// Without deadlines RawConn.Read fails only once the file is
			// closed, with internal/poll's error, which is no os.ErrClosed.
			return 0, fmt.Errorf("receive uevent: %w (%v)", os.ErrClosed, err)
		}
		if errors.Is(rerr, unix.EINTR) {
			continue
		}
		if rerr != nil {
			return 0, fmt.Errorf("receive uevent: %w", rerr) // ENOBUFS: the kernel dropped some
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // a user-space sender could forge any uevent
		}
		if n > len(buf) {
			continue // truncated
		}
		return n, nil
	}
}

// Close closes the socket; a blocked ReadUevent returns an error.
func (c *UeventConn) Close() error { return c.f.Close() }
