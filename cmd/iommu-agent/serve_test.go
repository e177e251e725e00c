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

	"github.com/iommu-agent/iommu-agent/agent/bench"
	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
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

// TestDemoNested walks nested translation on the emulated SMMUv3: DMA
// through both stages, a stale walk until TLBI_NH_VA, faults as events
// with the virtual StreamID, and nothing left after.
func TestDemoNested(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo", "-nested"}, &out, io.Discard); err != nil {
		t.Fatalf("demo -nested: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`"through both stages" to VA 0x200000: it lands at IPA 0x1008000 (data page 0)`,
		`"before the guest's TLBI" still lands at IPA 0x1008000 (data page 0): the walk is cached`,
		`"after the guest's TLBI" lands at IPA 0x100a000 (data page 2)`,
		"a write to the read-only page: event #0 F_PERMISSION sid 0x8 stage 1 write addr 0x201000",
		"a write to a VA stage 1 does not map: event #1 F_TRANSLATION sid 0x8 stage 1 write addr 0x205000",
		"0 objects, 0 bytes pinned left",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo -nested output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchCheck fails a run whose ratios regressed past a baseline's and
// passes one within the margin: a quick emulated run against baselines
// written for it.
func TestBenchCheck(t *testing.T) {
	dir := t.TempDir()
	var rep bytes.Buffer
	if err := run(context.Background(), []string{"bench", "-quick", "-q", "-only", "emulated", "-format", "json"}, &rep, io.Discard); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "now.json")
	os.WriteFile(path, rep.Bytes(), 0o644)
	// The same report as its own baseline passes; one whose ratios are a
	// tenth of these fails, naming the rows.
	if err := run(context.Background(), []string{"bench", "-merge", path, "-q", "-check", path}, io.Discard, io.Discard); err != nil {
		t.Errorf("a report against itself: %v", err)
	}
	base, err := bench.ReadJSON(bytes.NewReader(rep.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range base.Rows {
		base.Rows[i].Ratio /= 100
	}
	var low bytes.Buffer
	bench.WriteJSON(&low, base)
	lowPath := filepath.Join(dir, "low.json")
	os.WriteFile(lowPath, low.Bytes(), 0o644)
	err = run(context.Background(), []string{"bench", "-merge", path, "-q", "-check", lowPath}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ratios regressed: emulated / ") {
		t.Errorf("against a baseline a hundredth as high: %v", err)
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

// startServe runs serve with args until the test ends and returns its
// socket, metrics address and log.
func startServe(t *testing.T, args ...string) (sock, metrics string, logs func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ sock, metrics string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	var buf bytes.Buffer
	sw := &syncWriter{w: &buf}
	go func() { done <- serve(ctx, args, sw, func(s, m string) { ready <- addrs{s, m} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-ready:
		return a.sock, a.metrics, func() string { sw.mu.Lock(); defer sw.mu.Unlock(); return buf.String() }
	case err := <-done:
		done <- nil
		t.Fatalf("serve: %v", err)
	}
	return
}

// TestServeSecondAgent starts a second serve on the first one's state dir
// and socket: it must fail, naming the first agent, and leave it serving.
func TestServeSecondAgent(t *testing.T) {
	dir := t.TempDir()
	state, sockPath := filepath.Join(dir, "state"), filepath.Join(dir, "a.sock")
	sock, _, _ := startServe(t, "-backend", "emulated", "-socket", sockPath, "-state", state)
	for name, args := range map[string][]string{
		"same state and socket": {"-state", state, "-socket", sockPath},
		"same socket":           {"-state", filepath.Join(dir, "state2"), "-socket", sockPath},
	} {
		err := serve(context.Background(), append([]string{"-backend", "emulated"}, args...), io.Discard, nil)
		if !errors.Is(err, server.ErrAnotherAgent) {
			t.Errorf("%s: second serve: %v, want another agent refused", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatalf("first agent after the second tried: %v", err)
	}
	defer c.Close()
	if _, _, err := c.List(); err != nil {
		t.Errorf("list on the first agent: %v", err)
	}
}

// TestServeAutoWithoutIOMMU: -backend auto on a host without iommu_groups
// serves emulated devices, and says so in its log and on /metrics.
func TestServeAutoWithoutIOMMU(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "sys")
	os.MkdirAll(filepath.Join(sys, "kernel", "iommu_groups"), 0o755)
	sock, metrics, logs := startServe(t, "-backend", "auto", "-sysfs", sys, "-socket", filepath.Join(dir, "a.sock"),
		"-state", filepath.Join(dir, "state"), "-metrics", "127.0.0.1:0")
	if l := logs(); !strings.Contains(l, "serving EMULATED devices") || !strings.Contains(l, `"level":"WARN"`) {
		t.Errorf("no warning that devices are emulated:\n%s", l)
	}
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Hello.Backend != "emulated" {
		t.Errorf("hello says backend %q", c.Hello.Backend)
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `iommu_agent_info{backend="emulated"} 1`) {
		t.Errorf("/metrics does not name the backend")
	}
}
