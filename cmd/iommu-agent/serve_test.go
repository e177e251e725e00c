//go:build !hwtests

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo", "-cycles", "50"}, &out, io.Discard); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"group rule", "verified", "is blocked by the IOMMU", "leases left: 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestServe runs the daemon on the emulated backend with a policy file,
// leases over its socket and reads its metrics and health endpoints.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(`{"rules":[{"uids":[`+strconv.Itoa(os.Getuid())+`],"groups":[1]}]}`), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ sock, metrics string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	sw := &syncWriter{w: &logs}
	go func() {
		done <- serve(ctx, []string{"-backend", "emulated", "-config", policy, "-socket", filepath.Join(dir, "a.sock"),
			"-state", filepath.Join(dir, "state"), "-metrics", "127.0.0.1:0"}, sw, func(s, m string) { ready <- addrs{s, m} })
	}()
	var a addrs
	select {
	case a = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	c, err := client.Dial(a.sock)
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.AcquireGroup(1, client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireGroup(2, client.AcquireOptions{}); !errors.Is(err, proto.ErrDenied) {
		t.Errorf("group 2 under a group-1 policy: %v", err)
	}
	f, _, err := client.NewMemfd("t", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.Map(l.Lease.ID, f, 0, 1<<16, 0, false, "rw"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": `iommu_agent_leases{mode="broker"} 1`, "/metrics ": "iommu_agent_dma_op_duration_seconds_count"} {
		resp, err := http.Get("http://" + a.metrics + strings.TrimSpace(path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q:\n%.2000s", path, want, b)
		}
	}
	if err := c.Release(l.Lease.ID); err != nil {
		t.Error(err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lw := ""
	func() { sw.mu.Lock(); defer sw.mu.Unlock(); lw = logs.String() }()
	if !strings.Contains(lw, `"msg":"request failed"`) || !strings.Contains(lw, `"code":"denied"`) {
		t.Errorf("the denial is not logged:\n%s", lw)
	}
}

// syncWriter lets the test read what the server's goroutines log.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
