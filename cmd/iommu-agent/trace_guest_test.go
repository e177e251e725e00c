//go:build hwtests && linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
)

// lockedBuffer collects output written by the trace goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGuestTrace runs `trace --pid self --json` against the real kernel,
// issues n IOMMU_IOAS_MAP/UNMAP on a plain IOAS (no device needed for the
// ioctl-level counts), stops it through ctx as Ctrl-C would, and wants
// exactly n of each in the final snapshot.
func TestGuestTrace(t *testing.T) {
	const n = 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"trace", "--json", "--pid", strconv.Itoa(os.Getpid()), "--ops", "ioas_map,ioas_unmap"}, &out, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	attached := false
	for sc.Scan() {
		t.Log(sc.Text())
		if strings.HasPrefix(sc.Text(), "tracing with ") {
			attached = true
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if !attached {
		err := <-done
		hwtest.Need(t, "trace", err)
		t.Fatalf("trace ended before attaching: %v", err)
	}

	mapUnmap(t, n)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var s jsonSnap
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	t.Logf("%s", out.String())
	if s.Source != "fentry" {
		t.Errorf("source %q, want fentry", s.Source)
	}
	counts := map[string]uint64{}
	for _, op := range s.Ops {
		counts[string(op.Op)] = op.Count
		if op.P50Ns <= 0 {
			t.Errorf("%s: no latency", op.Op)
		}
	}
	if counts["ioas_map"] != n || counts["ioas_unmap"] != n || len(counts) != 2 {
		t.Errorf("counts %v, want %d ioas_map and ioas_unmap only", counts, n)
	}
}

// TestGuestServeTrace runs `serve -trace` on the real kernel and wants the
// tracer's histograms on /metrics: n IOAS maps and unmaps by this process
// show up as at least n observations (other processes may map too), traced
// with fentry.
func TestGuestServeTrace(t *testing.T) {
	const n = 20
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log lockedBuffer
	type addrs struct{ sock, metrics string }
	up := make(chan addrs, 1)
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, []string{"-socket", filepath.Join(dir, "agent.sock"), "-state", filepath.Join(dir, "leases"),
			"-backend", "iommufd", "-metrics", "127.0.0.1:0", "-trace"}, &log, func(s, m string) { up <- addrs{s, m} })
	}()
	var a addrs
	select {
	case a = <-up:
	case err := <-served:
		t.Fatalf("serve: %v\n%s", err, log.String())
	}
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	if !strings.Contains(log.String(), `"msg":"tracing","source":"fentry"`) {
		t.Fatalf("serve did not attach the tracer with fentry:\n%s", log.String())
	}

	mapUnmap(t, n)

	resp, err := http.Get("http://" + a.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"ioas_map", "ioas_unmap"} {
		prefix := `iommu_agent_dma_op_duration_seconds_count{op="` + op + `",source="fentry"} `
		var count uint64
		for line := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
				count, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		if count < n {
			t.Errorf("%s: %d observations on /metrics, want at least %d", op, count, n)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// mapUnmap issues n IOMMU_IOAS_MAP and n IOMMU_IOAS_UNMAP of one 4 KiB page
// on a plain IOAS: no device is needed for the ioctl-level counts.
func mapUnmap(t *testing.T, n int) {
	t.Helper()
	fd, err := iommufd.Open(iommufd.DefaultPath)
	hwtest.Need(t, "open /dev/iommu", err)
	defer fd.Close()
	ioas, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}
	mem := hwtest.DMABuffer(t, 4096)
	for range n {
		iova, err := fd.Map(ioas, mem, 0x100000, iommufd.FixedIOVA|iommufd.Readable|iommufd.Writeable)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fd.Unmap(ioas, iova, 4096); err != nil {
			t.Fatal(err)
		}
	}
}
