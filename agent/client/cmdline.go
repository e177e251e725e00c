//go:build linux

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/proto"
)

// DefaultSocket is where iommu-agent serve listens unless told otherwise
// (and where packaging/iommu-agent.service has it listen).
const DefaultSocket = "/run/iommu-agent/agent.sock"

// SocketEnv names the environment variable that points clients at another
// socket than DefaultSocket.
const SocketEnv = "IOMMU_AGENT_SOCKET"

// SocketPath is the socket a client dials when not told one: $IOMMU_AGENT_SOCKET,
// else DefaultSocket. getenv is os.Getenv outside tests.
func SocketPath(getenv func(string) string) string {
	if p := getenv(SocketEnv); p != "" {
		return p
	}
	return DefaultSocket
}

// NoAgentError is a Connect that found no agent listening at Path: the
// socket file is missing, or nobody accepts on it (the agent stopped and
// left it behind).
type NoAgentError struct {
	Path string
	Err  error
}

func (e *NoAgentError) Error() string {
	return fmt.Sprintf("no agent at %s: is iommu-agent serve running? (%v)", e.Path, e.Err)
}

func (e *NoAgentError) Unwrap() error { return e.Err }

// ConnectTimeout is how long a command-line client waits for the agent to
// take its connection and answer hello. The agent answers hello at once;
// one that does not is wedged, or the socket is no agent's, and a client
// (or the script running it) must not wait for it forever.
const ConnectTimeout = 10 * time.Second

// Connect is Dial for command-line clients: it gives up after timeout, or
// when ctx ends (with ctx's cause), and tells apart the failures a user can
// act on: no agent (a *NoAgentError), a socket this user may not open, a
// socket that is no agent's, an agent that does not answer.
func Connect(ctx context.Context, path string, timeout time.Duration) (*Client, error) {
	c, err := connect(ctx, path, timeout)
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return nil, &NoAgentError{Path: path, Err: err}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return nil, fmt.Errorf("connect to the agent at %s: %w (the socket or its directory keeps this user out)", path, err)
	case errors.Is(err, syscall.EPROTOTYPE):
		return nil, fmt.Errorf("connect to the agent at %s: %w (not the agent's socket: the agent's is SOCK_SEQPACKET)", path, err)
	case errors.Is(err, syscall.EAGAIN):
		return nil, fmt.Errorf("connect to the agent at %s: %w (the agent takes no new connections: it is wedged or at its limit)", path, err)
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF):
		return nil, fmt.Errorf("connect to the agent at %s: it hung up before answering hello (at its connection limit, or not the agent's socket): %w", path, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("connect to the agent at %s: it did not answer within %v (wedged, or not the agent's socket): %w", path, timeout, err)
	}
	return nil, fmt.Errorf("connect to the agent at %s: %w", path, err)
}

func connect(ctx context.Context, path string, timeout time.Duration) (*Client, error) {
	if path == "" {
		return nil, errors.New("no socket path")
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, proto.Network, path)
	if err != nil {
		return nil, err
	}
	uc := nc.(*net.UnixConn)
	cl := &Client{c: proto.NewConn(uc)}
	uc.SetDeadline(time.Now().Add(timeout))
	stop := cl.Interrupt(ctx)
	resp, fds, err := cl.do(proto.Request{Op: proto.OpHello, Version: proto.Version})
	proto.CloseFDs(fds)
	stop()
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	if err := uc.SetDeadline(time.Time{}); err != nil {
		uc.Close()
		return nil, err
	}
	cl.Hello = resp
	return cl, nil
}

// Interrupt makes c's call in progress, and every later one, fail once ctx
// ends, until stop is called: a signal must be able to stop a client
// waiting for an agent that does not answer. A call cut short leaves the
// connection out of step with the agent: close it.
func (c *Client) Interrupt(ctx context.Context) (stop func() bool) {
	uc := c.c.UnixConn()
	return context.AfterFunc(ctx, func() { uc.SetDeadline(time.Unix(1, 0)) })
}

// SetDeadline bounds c's calls until t (none for the zero time); a call
// past it fails with os.ErrDeadlineExceeded and leaves the connection out
// of step with the agent.
func (c *Client) SetDeadline(t time.Time) error { return c.c.UnixConn().SetDeadline(t) }

// The environment a command run with a lease (Acquired.Command) finds.
const (
	EnvLease      = "IOMMU_AGENT_LEASE"      // the lease ID
	EnvGroup      = "IOMMU_AGENT_GROUP"      // the iommu_group number
	EnvDevices    = "IOMMU_AGENT_DEVICES"    // the group's devices, comma-separated
	EnvIOMMUFD    = "IOMMU_AGENT_IOMMUFD_FD" // the iommufd's fd number (mode fds)
	EnvDeviceFDs  = "IOMMU_AGENT_DEVICE_FDS" // each device's VFIO cdev fd, in EnvDevices' order (mode fds)
	firstExtraFD  = 3                        // exec.Cmd.ExtraFiles[0]
	iommufdName   = "iommufd"
	deviceFDNamed = "vfio:"
)

// placeholder is one {name} Command substitutes in arguments. Other braces
// ({"driver": ...} in QEMU's JSON syntax) are left alone.
var placeholder = regexp.MustCompile(`\{(iommufd|device[0-9]+|lease|group)\}`)

// Command prepares argv to run with the lease's files: the iommufd at fd 3
// and each device's VFIO cdev after it (fd 4, 5, ...), in the order the
// agent named them. In argv, {iommufd} becomes the iommufd's fd number,
// {device0}, {device1}, ... the cdevs', {lease} the lease ID and {group}
// the group number; the environment carries the same (EnvLease and the
// rest). So QEMU takes the lease as
//
//	qemu-system-x86_64 -object iommufd,id=i0,fd={iommufd} -device vfio-pci,iommufd=i0,fd={device0}
//
// A placeholder with no value (an fd of a broker lease, which sends none,
// or a device the group does not have) is an error: the command would
// otherwise start with a wrong fd. The caller starts and waits for the
// command, and closes a's files once it has started.
func (a *Acquired) Command(argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command")
	}
	vals := map[string]string{
		"lease": a.Lease.ID,
		"group": strconv.Itoa(a.Lease.Group),
	}
	env := []string{
		EnvLease + "=" + a.Lease.ID,
		EnvGroup + "=" + strconv.Itoa(a.Lease.Group),
	}
	var devices, deviceFDs []string
	for i, name := range a.Names {
		fd := strconv.Itoa(firstExtraFD + i)
		switch {
		case name == iommufdName:
			vals["iommufd"] = fd
			env = append(env, EnvIOMMUFD+"="+fd)
		case strings.HasPrefix(name, deviceFDNamed):
			vals["device"+strconv.Itoa(len(devices))] = fd
			devices = append(devices, strings.TrimPrefix(name, deviceFDNamed))
			deviceFDs = append(deviceFDs, fd)
		}
	}
	if len(a.Names) == 0 {
		devices = a.Lease.Devices
	}
	env = append(env, EnvDevices+"="+strings.Join(devices, ","))
	if len(deviceFDs) > 0 {
		env = append(env, EnvDeviceFDs+"="+strings.Join(deviceFDs, ","))
	}
	args := make([]string, len(argv))
	for i, arg := range argv {
		var missing []string
		args[i] = placeholder.ReplaceAllStringFunc(arg, func(m string) string {
			v, ok := vals[m[1:len(m)-1]]
			if !ok {
				missing = append(missing, m)
			}
			return v
		})
		if len(missing) > 0 {
			return nil, fmt.Errorf("argument %q: %s: %s", arg, strings.Join(missing, ", "), a.noValueReason())
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = a.Files
	return cmd, nil
}

func (a *Acquired) noValueReason() string {
	if len(a.Files) == 0 {
		return fmt.Sprintf("lease %s is mode %s, which sends no fds (fds are mode %q)", a.Lease.ID, a.Lease.Mode, "fds")
	}
	return fmt.Sprintf("lease %s has %d device(s): {device0} to {device%d}", a.Lease.ID, len(a.Files)-1, len(a.Files)-2)
}
