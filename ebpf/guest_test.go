//go:build hwtests && linux

package ebpf

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/cdev"
	"github.com/iommu-agent/iommu-agent/agent/iommu/type1"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/internal/latency"
	"github.com/iommu-agent/iommu-agent/ioctl/ioctltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := ioctltest.CheckLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		code = 1
	}
	os.Exit(code)
}

var overheadFlag = flag.Bool("overhead", false, "run TestOverhead, the traced/untraced map+unmap ratios")

const (
	page = 4096
	iova = 0x100000
)

var modes = []struct {
	name  string
	force bool
}{{"fentry", false}, {"kprobe", true}}

// openTracer traces this process only, so the counts are the test's own.
func openTracer(t *testing.T, force bool, ops ...latency.Op) *Tracer {
	t.Helper()
	tr, err := Open(Options{ForceKprobe: force, PID: uint32(os.Getpid()), SlowThreshold: 5 * time.Millisecond, SlowMax: 5, Ops: ops})
	if errors.Is(err, ErrUnavailable) && !hwtest.Strict() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("close tracer: %v", err)
		}
	})
	want := "fentry"
	if force {
		want = "kprobe"
	}
	if tr.Source() != want {
		t.Errorf("source %q, want %q (attached %v)", tr.Source(), want, tr.Attached())
	}
	t.Logf("attached: %v", tr.Attached())
	s, err := tr.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Missing {
		t.Logf("not traced: %s", m)
	}
	return tr
}

// space opens an address space of the named backend with edu attached,
// closed when the test ends (the group is free again for the next one).
func space(t *testing.T, backend string) iommu.AddressSpace {
	t.Helper()
	ctx := context.Background()
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	var b iommu.Backend
	var err error
	switch backend {
	case "iommufd":
		b, err = cdev.Open(ctx, cdev.Options{})
	case "type1":
		b, err = type1.Open(ctx, type1.Options{Flavour: iommu.Type1v2})
	}
	hwtest.Need(t, "open "+backend, err)
	t.Cleanup(func() { b.Close() })
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Attach(ctx, dev); err != nil {
		t.Fatalf("attach edu: %v", err)
	}
	return as
}

// mapUnmap maps and unmaps one 4 KiB page n times at a fixed IOVA.
func mapUnmap(tb testing.TB, as iommu.AddressSpace, mem []byte, n int) {
	ctx := context.Background()
	m := iommu.Mapping{Mem: mem[:page], IOVA: iova, Fixed: true, Perm: iommu.Read | iommu.Write}
	for range n {
		if _, err := as.Map(ctx, m); err != nil {
			tb.Fatalf("map: %v", err)
		}
		if _, err := as.Unmap(ctx, iova, page); err != nil {
			tb.Fatalf("unmap: %v", err)
		}
	}
}

// delta is after minus before, for this process, summed per op.
func delta(before, after latency.Snapshot) latency.Snapshot {
	pid := uint32(os.Getpid())
	d := latency.Snapshot{Source: after.Source, Hists: map[latency.Key]latency.Hist{}}
	for k, h := range after.Hists {
		if k.PID != pid {
			continue
		}
		b := before.Hists[k]
		for i := range h.Counts {
			h.Counts[i] -= b.Counts[i]
		}
		h.Count -= b.Count
		h.SumNs -= b.SumNs
		h.Bytes -= b.Bytes
		if h.Count > 0 {
			d.Hists[k] = h
		}
	}
	return d
}

func snapshot(t *testing.T, tr *Tracer) latency.Snapshot {
	t.Helper()
	s, err := tr.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCounts issues exactly n iommufd and n type1 4 KiB map+unmap pairs
// and wants exactly n of each ioctl-level operation from the tracer, for
// this pid, with latencies and bytes; then prints the histograms (the
// issue's note quotes them), and closes the tracer (detachOnClose). Once
// with fentry, once with kprobes forced.
func TestCounts(t *testing.T) {
	const n = 1000
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			tr := openTracer(t, mode.force, latency.Ops()...)
			for _, c := range []struct {
				backend       string
				exact         []latency.Op // counted once per call
				perPage       []latency.Op // once per call for a one-page map
				bytesMatching []latency.Op
			}{
				{"iommufd", []latency.Op{latency.IOASMap, latency.IOASUnmap}, []latency.Op{latency.PinPages, latency.IOMMUMap, latency.IOMMUUnmap},
					[]latency.Op{latency.IOASMap, latency.IOASUnmap, latency.PinPages, latency.IOMMUMap, latency.IOMMUUnmap}},
				{"type1", []latency.Op{latency.Type1Map, latency.Type1Unmap}, []latency.Op{latency.PinPages, latency.IOMMUMap, latency.IOMMUUnmap},
					[]latency.Op{latency.Type1Map, latency.Type1Unmap, latency.PinPages, latency.IOMMUMap, latency.IOMMUUnmap}},
			} {
				t.Run(c.backend, func(t *testing.T) {
					as := space(t, c.backend)
					mem := hwtest.DMABuffer(t, page)
					before := snapshot(t, tr)
					mapUnmap(t, as, mem, n)
					d := delta(before, snapshot(t, tr))
					byOp := d.ByOp()
					for _, op := range append(append([]latency.Op{}, c.exact...), c.perPage...) {
						h := byOp[op]
						if h.Count != n {
							t.Errorf("%s: %d calls traced, want %d", op, h.Count, n)
						}
						if h.SumNs == 0 || h.Quantile(0.5) == 0 {
							t.Errorf("%s: no latency (sum %d ns)", op, h.SumNs)
						}
					}
					for _, op := range c.bytesMatching {
						if h := byOp[op]; h.Bytes != n*page {
							t.Errorf("%s: %d bytes, want %d", op, h.Bytes, n*page)
						}
					}
					for k := range d.Hists {
						if k.Comm == "" {
							t.Errorf("%s: empty comm", k.Op)
						}
					}
					var buf bytes.Buffer
					if err := latency.Print(&buf, d); err != nil {
						t.Fatal(err)
					}
					t.Logf("%d %s 4 KiB map+unmap pairs, traced with %s:\n%s", n, c.backend, tr.Source(), buf.String())
				})
			}
			// The same tracer, as its last user: a tracer opens in
			// seconds under TCG, where attaching rewrites kernel text.
			t.Run("detach", func(t *testing.T) { detachOnClose(t, tr) })
		})
	}
}

// detachOnClose closes tr: then the maps are gone, a second Close is a
// no-op, and the traced ioctls still run.
func detachOnClose(t *testing.T, tr *Tracer) {
	as := space(t, "iommufd")
	mem := hwtest.DMABuffer(t, page)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := tr.Snapshot(); err == nil {
		t.Error("Snapshot after Close succeeded")
	}
	mapUnmap(t, as, mem, 3)
}

// TestOverhead times 4 KiB map+unmap pairs with and without the tracer
// attached, in chunks that alternate (ABAB) so drift hits both, and logs
// "ratio", traced over untraced time (the goal: ≤ 1.02 for
// fentry), once with the ioctl-level probes alone and once with all. A
// benchmark body run by testing.Benchmark: the guest helpers that bind edu
// take a *testing.T. Not in CI (minutes under TCG): run it with -overhead
// (-benchtime sets the length).
func TestOverhead(t *testing.T) {
	if !*overheadFlag {
		t.Skip("minutes under TCG: run with -overhead")
	}
	if cs, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource"); err == nil {
		t.Logf("clocksource %s", bytes.TrimSpace(cs))
	}
	ioctl := []latency.Op{latency.IOASMap, latency.IOASUnmap, latency.Type1Map, latency.Type1Unmap}
	// The control: both halves detached, so a ratio off 1 is the method's.
	t.Run("iommufd/control", func(t *testing.T) {
		tr := openTracer(t, false, ioctl...)
		as := space(t, "iommufd")
		mem := hwtest.DMABuffer(t, page)
		mapUnmap(t, as, mem, 100)
		r := testing.Benchmark(func(b *testing.B) { overheadOf(b, tr, as, mem, false) })
		t.Logf("iommufd control, detached in both halves: ratio %.3f, min-ratio %.3f (%.1f / %.1f µs/pair)",
			r.Extra["ratio"], r.Extra["min-ratio"], r.Extra["traced-ns/pair"]/1000, r.Extra["untraced-ns/pair"]/1000)
	})
	for _, backend := range []string{"iommufd", "type1"} {
		for _, mode := range modes {
			for _, scope := range []struct {
				name string
				ops  []latency.Op
			}{{"ioctl", ioctl}, {"all", latency.Ops()}} {
				t.Run(backend+"/"+mode.name+"/"+scope.name, func(t *testing.T) {
					tr := openTracer(t, mode.force, scope.ops...)
					as := space(t, backend)
					mem := hwtest.DMABuffer(t, page)
					mapUnmap(t, as, mem, 100) // warm up
					r := testing.Benchmark(func(b *testing.B) { overheadOf(b, tr, as, mem, true) })
					if r.N == 0 {
						t.Fatal("benchmark failed")
					}
					t.Logf("%s %s %s probes (%d attached): ratio %.3f (median of chunks), min-ratio %.3f; mean traced %.1f µs/pair, untraced %.1f µs/pair, %d pairs each",
						backend, tr.Source(), scope.name, len(tr.Attached()), r.Extra["ratio"], r.Extra["min-ratio"],
						r.Extra["traced-ns/pair"]/1000, r.Extra["untraced-ns/pair"]/1000, r.N)
				})
			}
		}
	}
}

// overheadOf alternates short chunks of untraced and traced pairs (ABAB).
// Attaching and detaching patch kernel text, which under TCG also drops
// translated code, so each chunk starts after untimed warm-up pairs. The
// host is shared, and a descheduled QEMU makes one chunk slow: "ratio" is
// the median of the per-chunk ratios, "min-ratio" the ratio of the fastest
// chunks, both robust to that; the ns/pair metrics are plain means.
func overheadOf(b *testing.B, tr *Tracer, as iommu.AddressSpace, mem []byte, traced bool) {
	const chunk, warm = 100, 20
	var offs, ons []time.Duration
	phase := func(attached bool, n int) time.Duration {
		b.StopTimer()
		if err := tr.SetAttached(attached); err != nil {
			b.Fatal(err)
		}
		mapUnmap(b, as, mem, warm)
		b.StartTimer()
		start := time.Now()
		mapUnmap(b, as, mem, n)
		return time.Since(start)
	}
	var off, on time.Duration
	var ratios []float64
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		o := phase(false, n)
		a := phase(traced, n)
		off, on = off+o, on+a
		if n == chunk {
			offs, ons = append(offs, o), append(ons, a)
			ratios = append(ratios, float64(a)/float64(o))
		}
	}
	b.StopTimer()
	if len(ratios) > 0 {
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], "ratio")
		b.ReportMetric(float64(slices.Min(ons))/float64(slices.Min(offs)), "min-ratio")
	}
	b.ReportMetric(float64(off.Nanoseconds())/float64(b.N), "untraced-ns/pair")
	b.ReportMetric(float64(on.Nanoseconds())/float64(b.N), "traced-ns/pair")
}

// TestSymbols logs which of the functions around pinning and the IOTLB
// flush this kernel has, for choosing targets (inlined ones are absent).
func TestSymbols(t *testing.T) {
	names := []string{"iommufd_ioas_map", "iommufd_ioas_unmap", "iommufd_ioas_map_file", "iopt_map_user_pages", "iopt_map_pages",
		"iopt_fill_domains_pages", "pfn_reader_user_pin", "pin_user_pages_fast", "vfio_iommu_type1_ioctl", "vfio_iommu_type1_map_dma",
		"vfio_dma_do_map", "vfio_dma_do_unmap", "vfio_pin_pages_remote", "vfio_unmap_unpin", "iommufd_vfio_ioctl",
		"iommu_map", "iommu_unmap", "iommu_unmap_fast", "iommu_iotlb_sync", "intel_iommu_tlb_sync", "intel_iommu_map_pages", "intel_iommu_unmap_pages"}
	var ts []target
	for _, n := range names {
		ts = append(ts, target{n, nil, []cand{{n, ""}}})
	}
	have, err := kallsyms(ts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		t.Logf("%-26s %v", n, have[n])
	}
}
