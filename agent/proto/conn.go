//go:build linux

package proto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Network is the socket type of the agent's socket.
const Network = "unixpacket"

// Conn sends and receives frames on one SOCK_SEQPACKET connection. It is not
// safe for concurrent Sends or concurrent Recvs; one of each may run at once.
//
// A Conn holds no receive buffer between frames: Recv sizes the waiting
// packet with MSG_PEEK|MSG_TRUNC and allocates just that, so an idle
// connection costs its fd and a few words, not MaxFrame bytes (an agent with
// thousands of idle clients would otherwise hold 64 KiB for each).
type Conn struct {
	c   *net.UnixConn
	oob []byte
}

// NewConn wraps c, which must be a "unixpacket" connection.
func NewConn(c *net.UnixConn) *Conn {
	return &Conn{c: c, oob: make([]byte, unix.CmsgSpace(MaxFDs*4))}
}

// Dial connects to the agent's socket at path.
func Dial(path string) (*Conn, error) {
	c, err := net.DialUnix(Network, nil, &net.UnixAddr{Name: path, Net: Network})
	if err != nil {
		return nil, err
	}
	return NewConn(c), nil
}

// UnixConn is the underlying connection (for deadlines and peer credentials).
func (c *Conn) UnixConn() *net.UnixConn { return c.c }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Send writes v as one frame, with fds in SCM_RIGHTS. The fds stay open: they
// are the caller's to close.
func (c *Conn) Send(v any, fds ...int) error {
	if len(fds) > MaxFDs {
		return fmt.Errorf("send %d fds: at most %d", len(fds), MaxFDs)
	}
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	if len(p) > MaxFrame {
		return fmt.Errorf("encode frame: %d bytes: %w", len(p), ErrTooLarge)
	}
	return c.SendRaw(Frame(p), fds...)
}

// Frame prefixes payload with its length: what Send puts on the wire.
func Frame(payload []byte) []byte {
	f := make([]byte, headerLen+len(payload))
	binary.BigEndian.PutUint32(f, uint32(len(payload)))
	copy(f[headerLen:], payload)
	return f
}

// SendRaw writes packet as it is; tests use it to send broken frames.
func (c *Conn) SendRaw(packet []byte, fds ...int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err := c.c.WriteMsgUnix(packet, oob, nil)
	return err
}

// Wait blocks until a packet (or the peer's close) can be read, without
// reading it or allocating for it, and returns the packet's size. It
// honours the connection's read deadline. A server waits with it before it
// takes one of its in-flight slots and calls Recv.
func (c *Conn) Wait() (int, error) {
	raw, err := c.c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var serr error
	var hdr [headerLen]byte
	if err := raw.Read(func(fd uintptr) bool {
		// No control buffer: a peek must not install the packet's fds
		// (the kernel drops its duplicates and sets MSG_CTRUNC).
		n, _, _, _, serr = unix.Recvmsg(int(fd), hdr[:], nil, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		return serr != unix.EAGAIN && serr != unix.EINTR
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, &net.OpError{Op: "read", Net: Network, Err: os.NewSyscallError("recvmsg", serr)}
	}
	return n, nil
}

// Recv reads one frame into v and returns the fds that came with it; the
// caller owns them. On any error every received fd is already closed, and
// the connection may be used again unless the error is from the socket
// itself (io.EOF, a closed connection, a passed deadline).
func (c *Conn) Recv(v any) (fds []int, err error) {
	size, err := c.Wait()
	if err != nil {
		return nil, err
	}
	// One byte more than the largest frame shows a larger packet as
	// MSG_TRUNC; the peeked size keeps small frames small.
	buf := make([]byte, min(size, headerLen+MaxFrame)+1)
	n, oobn, flags, _, err := c.c.ReadMsgUnix(buf, c.oob)
	if err != nil {
		return nil, err
	}
	if oobn > 0 {
		fds, err = parseRights(c.oob[:oobn])
		if err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			CloseFDs(fds)
			fds = nil
		}
	}()
	if flags&unix.MSG_CTRUNC != 0 {
		return fds, ErrTruncated
	}
	if flags&unix.MSG_TRUNC != 0 || n > headerLen+MaxFrame {
		return fds, ErrTooLarge
	}
	if n == 0 {
		// What a SEQPACKET peer's close reads as; an empty frame means nothing
		// either, so both end the session.
		return fds, io.EOF
	}
	if n < headerLen {
		return fds, fmt.Errorf("%w: %d bytes, no header", ErrMalformed, n)
	}
	if l := binary.BigEndian.Uint32(buf); int(l) != n-headerLen {
		return fds, fmt.Errorf("%w: header says %d bytes, packet has %d", ErrMalformed, l, n-headerLen)
	}
	d := json.NewDecoder(bytes.NewReader(buf[headerLen:n]))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fds, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.More() {
		return fds, fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	return fds, nil
}

// parseRights returns every fd in the control messages. A message that
// cannot be parsed still has its fds closed, as far as they can be found.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("%w: control message: %w", ErrMalformed, err)
	}
	var fds []int
	var errs error
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			errs = err
			continue
		}
		fds = append(fds, got...)
	}
	if errs != nil {
		CloseFDs(fds)
		return nil, fmt.Errorf("%w: SCM_RIGHTS: %w", ErrMalformed, errs)
	}
	return fds, nil
}

// CloseFDs closes every fd of fds.
func CloseFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
