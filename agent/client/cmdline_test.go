//go:build linux

package client

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client/clienttest"
	"github.com/iommu-agent/iommu-agent/agent/proto"
)

func TestCommandPlaceholders(t *testing.T) {
	t.Parallel()
	fds := &Acquired{
		Lease: proto.Lease{ID: "l-1", Mode: proto.ModeFDs, Group: 4, Devices: []string{"0000:00:04.0", "0000:00:04.1"}},
		Names: []string{"iommufd", "vfio:0000:00:04.0", "vfio:0000:00:04.1"},
		Files: []*os.File{os.Stdin, os.Stdin, os.Stdin},
	}
	cmd, err := fds.Command([]string{"qemu", "-object", "iommufd,id=i0,fd={iommufd}", "-device", "vfio-pci,iommufd=i0,fd={device0}",
		"-device", `{"driver":"vfio-pci","fd":"{device1}"}`, "{lease}/{group}", "{other}"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"qemu", "-object", "iommufd,id=i0,fd=3", "-device", "vfio-pci,iommufd=i0,fd=4",
		"-device", `{"driver":"vfio-pci","fd":"5"}`, "l-1/4", "{other}"}
	if !slices.Equal(cmd.Args, want) {
		t.Errorf("args %q, want %q", cmd.Args, want)
	}
	for _, e := range []string{"IOMMU_AGENT_LEASE=l-1", "IOMMU_AGENT_GROUP=4", "IOMMU_AGENT_IOMMUFD_FD=3",
		"IOMMU_AGENT_DEVICE_FDS=4,5", "IOMMU_AGENT_DEVICES=0000:00:04.0,0000:00:04.1"} {
		if !slices.Contains(cmd.Env, e) {
			t.Errorf("env lacks %s", e)
		}
	}
	if len(cmd.ExtraFiles) != 3 {
		t.Errorf("%d extra files", len(cmd.ExtraFiles))
	}
	if _, err := fds.Command([]string{"qemu", "fd={device2}"}); err == nil || !strings.Contains(err.Error(), "{device0} to {device1}") {
		t.Errorf("{device2} of a group of two: %v", err)
	}

	broker := &Acquired{Lease: proto.Lease{ID: "l-2", Mode: proto.ModeBroker, Group: 1, Devices: []string{"0000:00:01.0"}}}
	cmd, err = broker.Command([]string{"vmm", "{lease}"})
	if err != nil || !slices.Equal(cmd.Args, []string{"vmm", "l-2"}) || !slices.Contains(cmd.Env, "IOMMU_AGENT_DEVICES=0000:00:01.0") {
		t.Errorf("broker: %v, %v", cmd, err)
	}
	if _, err := broker.Command([]string{"vmm", "fd={iommufd}"}); err == nil || !strings.Contains(err.Error(), "sends no fds") {
		t.Errorf("{iommufd} of a broker lease: %v", err)
	}
	if _, err := broker.Command(nil); err == nil {
		t.Error("no command accepted")
	}
}

func TestSocketPath(t *testing.T) {
	t.Parallel()
	if p := SocketPath(func(string) string { return "" }); p != DefaultSocket {
		t.Errorf("no env: %s", p)
	}
	if p := SocketPath(func(k string) string { return map[string]string{SocketEnv: "/x.sock"}[k] }); p != "/x.sock" {
		t.Errorf("env: %s", p)
	}
}

// connectOrHang runs Connect and fails the test if it has not returned
// within a minute: it must not hang on an agent that never answers.
func connectOrHang(t *testing.T, ctx context.Context, sock string, timeout time.Duration) error {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		c, err := Connect(ctx, sock, timeout)
		if err == nil {
			c.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Connect hangs on an agent that never answers hello")
		return nil
	}
}

// An agent that accepts and never answers hello fails Connect after its
// timeout, or as soon as the context ends, with an error that says so.
func TestConnectSilentAgent(t *testing.T) {
	t.Parallel()
	sock := clienttest.SilentAgent(t)
	err := connectOrHang(t, context.Background(), sock, 50*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("silent agent, timeout: %v", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop")
	time.AfterFunc(50*time.Millisecond, func() { cancel(stop) })
	if err := connectOrHang(t, ctx, sock, time.Hour); !errors.Is(err, stop) {
		t.Errorf("silent agent, context ended: %v, want its cause", err)
	}
}

// A stream socket is no agent's: say so, not "protocol wrong type".
func TestConnectNotAnAgent(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "stream.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = connectOrHang(t, context.Background(), sock, time.Second)
	if !strings.Contains(err.Error(), "not the agent's socket") {
		t.Errorf("stream socket: %v", err)
	}
	var na *NoAgentError
	if errors.As(err, &na) {
		t.Errorf("stream socket reported as no agent: %v", err)
	}
}

// An agent that hangs up before hello (at its connection limit) is said
// to have done so, not as a broken pipe alone.
func TestConnectHangUp(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "hangup.sock")
	ln, err := net.ListenUnix(proto.Network, &net.UnixAddr{Name: sock, Net: proto.Network})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	err = connectOrHang(t, context.Background(), sock, time.Second)
	if err == nil || !strings.Contains(err.Error(), "hung up before answering hello") {
		t.Errorf("agent hanging up: %v", err)
	}
}
