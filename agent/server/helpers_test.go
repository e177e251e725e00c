//go:build linux

package server_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/agent/sriov"
)

// Helpers shared by the fixture and the guest tests: no build tag beyond
// linux, so both builds of the package see them.

// serve runs srv on a fresh socket and returns it. stop ends Serve and
// returns its error, for tests that play the agent dying; otherwise Serve
// runs until the test ends, and an error from it fails the test.
func serve(t testing.TB, srv *server.Server) (sock string, stop func() error) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "agent.sock")
	return sock, serveAt(t, srv, sock)
}

// serveAt is serve on the socket path given: for tests that start a second
// agent on the same path.
func serveAt(t testing.TB, srv *server.Server, sock string) (stop func() error) {
	t.Helper()
	ln, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if ctx.Err() != nil {
			return // the test stopped it and had the error
		}
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return stop
}

// refusedWhileLeased checks that pf's VFs can be neither disabled nor
// recounted while the state dir holds a VF lease.
func refusedWhileLeased(t testing.TB, m *sriov.Manager, pf, state string) {
	t.Helper()
	inUse, err := server.VFInUse(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(pf, sriov.DisableOptions{InUse: inUse}); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("Disable while leased: %v, want ErrInUse", err)
	}
	if _, err := m.Enable(pf, 3, sriov.EnableOptions{InUse: inUse}); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("Enable 3 while leased: %v, want ErrInUse", err)
	}
}
