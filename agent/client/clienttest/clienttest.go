//go:build linux

// Package clienttest has the fake agents that tests of clients need.
package clienttest

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/proto"
)

// SilentAgent listens on a socket in a temp dir, accepts and never answers:
// a wedged agent, or a socket that is no agent. It returns the socket's
// path; the test's cleanup closes the listener and every connection.
func SilentAgent(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.ListenUnix(proto.Network, &net.UnixAddr{Name: sock, Net: proto.Network})
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return sock
}
