//go:build !hwtests

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/ebpf"
)

// TestTraceEmulated: the emulated workload's histograms, labelled emulated,
// 1,000 pairs per flavour.
func TestTraceEmulated(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"trace", "--emulated"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"source: emulated\n", "@ioas_map_usecs: count 1000,", "@ioas_unmap_usecs: count 1000,",
		"@type1_map_dma_usecs: count 1000,", "@type1_unmap_dma_usecs: count 1000,", "bytes 4096000"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}

func TestTraceEmulatedJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"trace", "--emulated", "--json"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var s jsonSnap
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if s.Source != "emulated" || len(s.Ops) != 4 {
		t.Fatalf("source %q, %d ops: %s", s.Source, len(s.Ops), out.String())
	}
	for _, op := range s.Ops {
		var n uint64
		for _, c := range op.Buckets {
			n += c
		}
		if op.Count != 1000 || n != 1000 || op.Bytes != 4096000 || op.P50Ns <= 0 {
			t.Errorf("%+v", op)
		}
	}
}

// TestTraceListen scrapes --listen while an emulated workload runs.
func TestTraceListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, []string{"trace", "--emulated", "--listen", "127.0.0.1:0", "--duration", "30s"}, &out, pw)
		pw.Close()
	}()
	var url string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "metrics: "); ok {
			url = u
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		t.Fatalf("no metrics address printed: %v", <-done)
	}
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body = string(b); strings.Contains(body, `op="type1_unmap_dma"`) {
			break
		}
	}
	for _, want := range []string{
		`iommu_agent_dma_op_duration_seconds_bucket{op="ioas_map",source="emulated",le="+Inf"}`,
		`iommu_agent_dma_op_duration_seconds_count{op="type1_unmap_dma",source="emulated"}`,
		`iommu_agent_dma_op_bytes_total{op="ioas_unmap",source="emulated"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "source: emulated") {
		t.Errorf("no final histograms:\n%s", out.String())
	}
}

// TestTraceWithoutBPF: where the kernel refuses BPF or has nothing to
// trace (this build machine), trace fails with one line saying why.
func TestTraceWithoutBPF(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"trace", "--duration", "10ms"}, &out, &errOut)
	if err == nil {
		t.Skip("this kernel lets us trace: the guest tests cover it")
	}
	if !errors.Is(err, ebpf.ErrUnavailable) {
		t.Fatalf("%v, want ErrUnavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "eBPF tracing unavailable") {
		t.Errorf("not one line saying why: %q", msg)
	}
	t.Log(err)
}

func TestTraceBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--interval", "-1s"}, {"--pid", "4294967296"}, {"extra"}, {"--nope"}, {"--ops", "ioas_map,frob"}} {
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"trace"}, args...), &out, &out); err == nil {
			t.Errorf("trace %v accepted", args)
		}
	}
}
