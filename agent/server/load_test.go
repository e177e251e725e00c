//go:build linux && !hwtests

package server_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

// openFDs lists this process's open fds with what they point at, so a
// leak names its file.
func openFDs(t testing.TB) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		fds[e.Name()] = target
	}
	return fds
}

// leakedFDs returns the fds open now that were not open, to the same
// file, in before. The directory fd openFDs reads through is a different
// number or the same one each time, never a leak.
func leakedFDs(t testing.TB, before map[string]string) []string {
	t.Helper()
	var leaked []string
	for fd, target := range openFDs(t) {
		if before[fd] != target && !strings.HasPrefix(target, "/proc/") {
			leaked = append(leaked, fd+" -> "+target)
		}
	}
	return leaked
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// cycles runs n acquire/release cycles spread over clients connections on
// groups 1..groups, checking that no group is ever leased twice at once.
// It returns the busy answers seen (contention, retried).
func cycles(t testing.TB, sock string, clients, n, groups int) (busy int64) {
	t.Helper()
	holder := make([]atomic.Int32, groups+1)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(sock)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			r := rand.New(rand.NewPCG(uint64(id), 7))
			for done.Add(1) <= int64(n) {
				for {
					g := 1 + r.IntN(groups)
					a, err := c.AcquireGroup(g, client.AcquireOptions{})
					if errors.Is(err, proto.ErrBusy) {
						atomic.AddInt64(&busy, 1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					if !holder[g].CompareAndSwap(0, int32(id+1)) {
						errs <- errors.New("group leased twice at once")
						return
					}
					holder[g].Store(0)
					if err := c.Release(a.Lease.ID); err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return busy
}

// TestLoad is the acceptance load: 64 clients, 10,000 acquire/release cycles
// in total on the emulated backend; no lease lost or doubled, no fd leaked,
// the heap flat. The throughput is logged (go test -v -run TestLoad).
func TestLoad(t *testing.T) {
	const clients, total, groups = 64, 10000, 64
	fds0 := openFDs(t)
	state := filepath.Join(t.TempDir(), "state")
	// Clients of a run may still be ending in the agent when the next
	// run connects: room for both under the per-uid cap.
	p := me()
	p.Limits = server.DefaultLimits()
	p.Limits.MaxConnsPerUID = 4 * clients
	srv, err := server.New(context.Background(), server.Options{Devices: edus(groups), StateDir: state, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	sock, stop := serve(t, srv)

	cycles(t, sock, clients, 1000, groups) // warm up pools and goroutine stacks
	heap0 := heap()
	start := time.Now()
	busy := cycles(t, sock, clients, total, groups)
	el := time.Since(start)
	if l := srv.Leases(); len(l) != 0 {
		t.Errorf("leases left: %v", l)
	}
	heap1 := heap()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(filepath.Dir(sock))); len(ents) > 1 {
		t.Errorf("socket dir: %d entries", len(ents))
	}
	if leaked := leakedFDs(t, fds0); len(leaked) > 0 {
		t.Errorf("fds leaked: %v", leaked)
	}
	if recs, _ := filepath.Glob(filepath.Join(state, "*.lease")); len(recs) != 0 {
		t.Errorf("lease records left: %v", recs)
	}
	growth := int64(heap1) - int64(heap0)
	t.Logf("%d clients, %d acquire/release cycles in %v: %.0f cycles/s (%d busy retries); heap %d -> %d bytes (%+d)",
		clients, total, el.Round(time.Millisecond), total/el.Seconds(), busy, heap0, heap1, growth)
	if growth > 8<<20 {
		t.Errorf("heap grew by %d bytes over %d cycles", growth, total)
	}
}

// BenchmarkAcquireRelease is one client's acquire+release round trip pair.
func BenchmarkAcquireRelease(b *testing.B) {
	sock, _ := start(b, server.Options{Devices: edus(64)})
	acquireRelease(b, sock, func(r *rand.Rand) int { return 1 + r.IntN(64) })
}

// BenchmarkAcquireReleaseSysfs is the same on a synthetic fake sysfs tree:
// every lease binds and restores drivers and is persisted (two fsynced
// records and a removal per cycle), the cost a real host pays.
func BenchmarkAcquireReleaseSysfs(b *testing.B) {
	sys := sysfstest.Synthetic(b, 64, 64)
	os.MkdirAll(filepath.Join(sys, "bus", "pci", "drivers", "vfio-pci"), 0o755) // the synthetic tree has no vfio-pci loaded
	fs, err := sysfs.New(sys, sysfs.WithWriter(&sysfstest.Kernel{Root: sys}))
	if err != nil {
		b.Fatal(err)
	}
	sock, _ := start(b, server.Options{Sysfs: fs})
	_, groups, err := dial(b, sock).List()
	if err != nil || len(groups) == 0 {
		b.Fatal(groups, err)
	}
	acquireRelease(b, sock, func(r *rand.Rand) int { return groups[r.IntN(len(groups))].Number })
}

// acquireRelease is b's parallel loop of acquire+release round trips, one
// client per goroutine, on the groups pick draws; a busy group is skipped.
func acquireRelease(b *testing.B, sock string, pick func(*rand.Rand) int) {
	b.RunParallel(func(pb *testing.PB) {
		c, err := client.Dial(sock)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			a, err := c.AcquireGroup(pick(r), client.AcquireOptions{})
			if errors.Is(err, proto.ErrBusy) {
				continue
			}
			if err != nil {
				b.Error(err)
				return
			}
			if err := c.Release(a.Lease.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
