//go:build linux

// Package client talks to iommu-agent (package proto) for VMMs, tests and the
// demo: one Client per connection, calls in order, errors as *proto.Error so
// errors.Is(err, proto.ErrDenied) and friends work.
package client

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/proto"
	"golang.org/x/sys/unix"
)

// Client is one connection to the agent. Its methods may be called from
// several goroutines; requests go one at a time.
type Client struct {
	mu    sync.Mutex
	c     *proto.Conn
	next  uint64
	Hello proto.Response // the agent's answer to hello
}

// Dial connects to the agent at path and says hello.
func Dial(path string) (*Client, error) {
	c, err := proto.Dial(path)
	if err != nil {
		return nil, err
	}
	cl := &Client{c: c}
	resp, fds, err := cl.do(proto.Request{Op: proto.OpHello, Version: proto.Version})
	proto.CloseFDs(fds)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	cl.Hello = resp
	return cl, nil
}

// Close ends the connection; the agent releases its broker leases.
func (c *Client) Close() error { return c.c.Close() }

// do sends req (with fds) and waits for its answer; received fds are the
// caller's.
func (c *Client) do(req proto.Request, fds ...int) (proto.Response, []int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	req.ID = c.next
	if err := c.c.Send(req, fds...); err != nil {
		// An agent over a cap sends one error frame and hangs up,
		// maybe before this request went out: that frame says why.
		c.c.UnixConn().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var resp proto.Response
		if got, rerr := c.c.Recv(&resp); rerr == nil && resp.Error != nil {
			proto.CloseFDs(got)
			return resp, nil, resp.Error
		}
		return proto.Response{}, nil, err
	}
	var resp proto.Response
	got, err := c.c.Recv(&resp)
	if err != nil {
		return proto.Response{}, nil, err
	}
	if resp.ID == 0 && resp.Error != nil { // not an answer: the agent refused the connection (code limit)
		proto.CloseFDs(got)
		return resp, nil, resp.Error
	}
	if resp.ID != req.ID {
		proto.CloseFDs(got)
		return proto.Response{}, nil, fmt.Errorf("answer %d to request %d", resp.ID, req.ID)
	}
	if resp.Error != nil {
		proto.CloseFDs(got)
		return resp, nil, resp.Error
	}
	return resp, got, nil
}

func (c *Client) call(req proto.Request, fds ...int) (proto.Response, error) {
	resp, got, err := c.do(req, fds...)
	proto.CloseFDs(got)
	return resp, err
}

// List returns the devices and groups the agent sees.
func (c *Client) List() ([]proto.Device, []proto.Group, error) {
	r, err := c.call(proto.Request{Op: proto.OpList})
	return r.Devices, r.Groups, err
}

// Status returns this uid's leases (all of them for root).
func (c *Client) Status() ([]proto.Lease, error) {
	r, err := c.call(proto.Request{Op: proto.OpStatus})
	return r.Leases, err
}

// Acquired is a granted lease with the files that came with it (mode fds):
// Files[0] is the iommufd, then one VFIO cdev per device, named in Names.
type Acquired struct {
	Lease proto.Lease
	Names []string
	Files []*os.File
	VF    []proto.VFResult // each attribute of AcquireOptions.VF
}

// Close closes the received files (not the lease).
func (a *Acquired) Close() {
	for _, f := range a.Files {
		f.Close()
	}
	a.Files = nil
}

// AcquireOptions are the optional parts of an acquire.
type AcquireOptions struct {
	Mode    string // proto.ModeFDs or proto.ModeBroker; the backend's default when empty
	Memlock uint64 // RLIMIT_MEMLOCK the agent should give this process
	// VF configures the SR-IOV VF being acquired (a lease of one VF),
	// before it is bound; see proto.VFConfig.
	VF *proto.VFConfig
}

// VFError is a failed acquire of a VF with the attribute results the agent
// sent along (which attribute was refused, and with what errno). It
// unwraps to the *proto.Error, so errors.Is(err, proto.ErrRefused) works.
type VFError struct {
	Err     error
	Results []proto.VFResult
}

func (e *VFError) Error() string { return e.Err.Error() }

// Unwrap returns the agent's error.
func (e *VFError) Unwrap() error { return e.Err }

// AcquireDevice leases the group of one device (which must be alone in it).
func (c *Client) AcquireDevice(bdf string, o AcquireOptions) (*Acquired, error) {
	return c.acquire(proto.Request{Op: proto.OpAcquire, Device: bdf, Mode: o.Mode, Memlock: o.Memlock, VF: o.VF})
}

// AcquireGroup leases a whole iommu_group.
func (c *Client) AcquireGroup(group int, o AcquireOptions) (*Acquired, error) {
	return c.acquire(proto.Request{Op: proto.OpAcquire, Group: &group, Mode: o.Mode, Memlock: o.Memlock, VF: o.VF})
}

func (c *Client) acquire(req proto.Request) (*Acquired, error) {
	r, fds, err := c.do(req)
	if err != nil {
		if len(r.VF) > 0 {
			return nil, &VFError{Err: err, Results: r.VF}
		}
		return nil, err
	}
	if r.Lease == nil || len(fds) != len(r.FDs) {
		proto.CloseFDs(fds)
		return nil, fmt.Errorf("acquire: %d fds for names %v", len(fds), r.FDs)
	}
	a := &Acquired{Lease: *r.Lease, Names: r.FDs, VF: r.VF}
	for i, fd := range fds {
		a.Files = append(a.Files, os.NewFile(uintptr(fd), r.FDs[i]))
	}
	return a, nil
}

// Release ends a lease.
func (c *Client) Release(lease string) error {
	_, err := c.call(proto.Request{Op: proto.OpRelease, Lease: lease})
	return err
}

// Map asks the agent to map [offset, offset+length) of memfd at iova (or an
// IOVA of its choice when !fixed). The memfd must be sealed with
// F_SEAL_SHRINK; see NewMemfd.
func (c *Client) Map(lease string, memfd *os.File, offset, length, iova uint64, fixed bool, perm string) (uint64, error) {
	r, err := c.call(proto.Request{Op: proto.OpMap, Lease: lease, Offset: offset, Length: length, IOVA: iova, Fixed: fixed, Perm: perm}, int(memfd.Fd()))
	return r.IOVA, err
}

// Unmap removes the mappings in [iova, iova+length).
func (c *Client) Unmap(lease string, iova, length uint64) (uint64, error) {
	r, err := c.call(proto.Request{Op: proto.OpUnmap, Lease: lease, IOVA: iova, Length: length})
	return r.Length, err
}

// DMAWrite makes the lease's device write data to memory at iova.
func (c *Client) DMAWrite(lease, device string, iova uint64, data []byte) error {
	_, err := c.call(proto.Request{Op: proto.OpDMA, Lease: lease, Device: device, IOVA: iova, Write: true, Data: data})
	return err
}

// DMARead makes the lease's device read n bytes of memory at iova.
func (c *Client) DMARead(lease, device string, iova, n uint64) ([]byte, error) {
	r, err := c.call(proto.Request{Op: proto.OpDMA, Lease: lease, Device: device, IOVA: iova, Length: n})
	return r.Data, err
}

// NewMemfd creates size bytes of shareable memory sealed against shrinking
// and growing, as the agent's map wants it, and maps it here too.
func NewMemfd(name string, size int) (*os.File, []byte, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("seal memfd: %w", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mmap memfd: %w", err)
	}
	return f, mem, nil
}
