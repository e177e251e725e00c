package latency

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestBucket(t *testing.T) {
	for _, c := range []struct {
		ns   uint64
		want int
	}{
		{0, 0}, {1, 0}, {2, 1}, {3, 1}, {4, 2}, {1023, 9}, {1024, 10}, {1<<63 - 1, 62}, {1 << 63, 63}, {math.MaxUint64, 63},
	} {
		if got := Bucket(c.ns); got != c.want {
			t.Errorf("Bucket(%d) = %d, want %d", c.ns, got, c.want)
		}
		lo, hi := BucketBounds(c.want)
		if f := float64(c.ns); c.ns < 1<<53 && (f < lo || f >= hi) { // exact as float64
			t.Errorf("%d outside bucket %d's bounds [%g, %g)", c.ns, c.want, lo, hi)
		}
	}
}

func TestHistObserveAdd(t *testing.T) {
	var a, b Hist
	a.Observe(0, 1)
	a.Observe(1500, 4096) // bucket 10: [1024, 2048)
	b.Observe(1500, 4096)
	b.Observe(5000, 8192) // bucket 12
	a.Add(&b)
	if a.Count != 4 || a.SumNs != 8000 || a.Bytes != 16385 {
		t.Errorf("count %d sum %d bytes %d, want 4 8000 16385", a.Count, a.SumNs, a.Bytes)
	}
	if a.Counts[0] != 1 || a.Counts[10] != 2 || a.Counts[12] != 1 {
		t.Errorf("counts %v", a.Counts)
	}
	if a.Mean() != 2*time.Microsecond {
		t.Errorf("mean %v, want 2µs", a.Mean())
	}
}

func TestQuantile(t *testing.T) {
	var h Hist
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
	for range 100 {
		h.Observe(1500, 0) // [1024, 2048)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0, 1024}, {0.5, 1536}, {1, 2048}, {-1, 1024}, {2, 2048}, {math.NaN(), 0},
	} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	h.Observe(1<<40, 0)
	if got := h.Quantile(1); got != 1<<41 {
		t.Errorf("Quantile(1) = %v, want 2^41 ns", got)
	}
	if got := h.Quantile(0.99); got < 1024 || got >= 2048 {
		t.Errorf("Quantile(0.99) = %v, want in [1024, 2048) ns", got)
	}
	var top Hist
	top.Observe(math.MaxUint64, 0)
	if got := top.Quantile(1); got != math.MaxInt64 {
		t.Errorf("top bucket: %v, want the largest Duration", got)
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder("emulated", time.Millisecond, 2)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				r.Observe(IOASMap, uint32(g), "w", time.Duration(i)*time.Microsecond, 4096)
			}
		}()
	}
	wg.Wait()
	r.Observe(IOASUnmap, 9, "x", -time.Second, 0)
	r.Observe(Type1Map, 9, "x", 3*time.Millisecond, 1<<20)
	r.Observe(Type1Map, 9, "x", 2*time.Millisecond, 1<<20)
	r.Observe(Type1Map, 9, "x", 5*time.Millisecond, 1<<20)
	s, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "emulated" {
		t.Errorf("source %q", s.Source)
	}
	byOp := s.ByOp()
	if got := byOp[IOASMap]; got.Count != 1000 || got.Bytes != 1000*4096 {
		t.Errorf("ioas_map count %d bytes %d", got.Count, got.Bytes)
	}
	if got := s.Hists[Key{IOASMap, 2, "w"}].Count; got != 250 {
		t.Errorf("pid 2: %d", got)
	}
	if got := byOp[IOASUnmap]; got.Count != 1 || got.Counts[0] != 1 {
		t.Errorf("negative duration not counted as 0: %+v", got)
	}
	// Bounded to the two slowest, slowest first.
	if len(s.Slow) != 2 || s.Slow[0].Ns != uint64(5*time.Millisecond) || s.Slow[1].Ns != uint64(3*time.Millisecond) {
		t.Errorf("slow %+v", s.Slow)
	}
	// The snapshot is a copy.
	r.Observe(IOASMap, 0, "w", 0, 0)
	if s.Hists[Key{IOASMap, 0, "w"}].Count != 250 {
		t.Error("snapshot shares state with the recorder")
	}
}

func TestRecorderObserveAllocs(t *testing.T) {
	r := NewRecorder("emulated", time.Hour, 4)
	r.Observe(IOASMap, 1, "c", time.Microsecond, 4096)
	if n := testing.AllocsPerRun(100, func() { r.Observe(IOASMap, 1, "c", time.Microsecond, 4096) }); n != 0 {
		t.Errorf("Observe of a known key allocates %v times", n)
	}
}

func TestPrint(t *testing.T) {
	r := NewRecorder("emulated", time.Millisecond, 4)
	for range 8 {
		r.Observe(IOASMap, 1, "a", 1500*time.Nanosecond, 4096)
	}
	r.Observe(IOASMap, 2, "b", 5*time.Microsecond, 4096)
	r.Observe(Type1Unmap, 1, "a", 2*time.Millisecond, 8192)
	s, _ := r.Snapshot()
	s.Missing = []string{"iotlb_sync: no symbol"}
	var buf bytes.Buffer
	if err := Print(&buf, s); err != nil {
		t.Fatal(err)
	}
	want := `source: emulated

@ioas_map_usecs: count 9, mean 1.89µs, p50 1.60µs, p99 7.82µs, bytes 36864
[1.02, 2.05)                8 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[2.05, 4.10)                0 |                                                    |
[4.10, 8.19)                1 |@@@@@@                                              |

@type1_unmap_dma_usecs: count 1, mean 2000µs, p50 1573µs, p99 2087µs, bytes 8192
[1049, 2097)                1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|

slowest operations:
  type1_unmap_dma         2ms       8192 B  pid 1 (a)

not traced:
  iotlb_sync: no symbol
`
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	buf.Reset()
	if err := Print(&buf, Snapshot{}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "source: unknown\nno operations seen\n" {
		t.Errorf("empty: %q", got)
	}
}

type failing struct{}

func (failing) Snapshot() (Snapshot, error) { return Snapshot{}, errors.New("maps gone") }

func TestCollector(t *testing.T) {
	r := NewRecorder("emulated", time.Hour, 0)
	r.Observe(IOASMap, 1, "a", 1500*time.Nanosecond, 4096)
	r.Observe(IOASMap, 2, "b", 1500*time.Nanosecond, 4096)
	r.Observe(IOASMap, 2, "b", 3*time.Microsecond, 4096)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(r))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sawHist, sawBytes bool
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] != "ioas_map" || labels["source"] != "emulated" {
				t.Errorf("%s labels %v", mf.GetName(), labels)
			}
			switch mf.GetName() {
			case "iommu_agent_dma_op_duration_seconds":
				sawHist = true
				h := m.GetHistogram()
				if h.GetSampleCount() != 3 || math.Abs(h.GetSampleSum()-6e-6) > 1e-12 {
					t.Errorf("count %d sum %g", h.GetSampleCount(), h.GetSampleSum())
				}
				for _, b := range h.GetBucket() {
					le, n := b.GetUpperBound(), b.GetCumulativeCount()
					want := uint64(0)
					switch {
					case le >= 4096e-9:
						want = 3
					case le >= 2048e-9:
						want = 2
					}
					if n != want {
						t.Errorf("le %g: %d, want %d", le, n, want)
					}
				}
			case "iommu_agent_dma_op_bytes_total":
				sawBytes = true
				if v := m.GetCounter().GetValue(); v != 3*4096 {
					t.Errorf("bytes %v", v)
				}
			}
		}
	}
	if !sawHist || !sawBytes {
		t.Errorf("histogram %v bytes %v", sawHist, sawBytes)
	}

	reg = prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(failing{}))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "maps gone") {
		t.Errorf("failing source: %v", err)
	}
}

func TestCollectorMissing(t *testing.T) {
	src := staticSource{Snapshot{Source: "kprobe", Missing: []string{"iotlb_sync: x", "iotlb_sync: x"}}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(src))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "iommu_agent_dma_trace_missing" || len(mfs[0].GetMetric()) != 1 {
		t.Errorf("got %v", mfs)
	}
}

type staticSource struct{ s Snapshot }

func (s staticSource) Snapshot() (Snapshot, error) { return s.s, nil }
