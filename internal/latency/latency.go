// Package latency holds the measurement types shared by the producers of DMA
// map/unmap latencies, the eBPF tracer (ebpf) and the emulated backend's
// Recorder, and by their consumers: the terminal printer and the Prometheus
// collector. One histogram layout for both keeps kernel and emulated numbers
// comparable.
package latency

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"
)

// Op names a timed operation; the values are stable metric label values.
type Op string

const (
	IOASMap    Op = "ioas_map"        // IOMMU_IOAS_MAP, iommufd_ioas_map
	IOASUnmap  Op = "ioas_unmap"      // IOMMU_IOAS_UNMAP, iommufd_ioas_unmap
	PinPages   Op = "pin_pages"       // iopt_map_user_pages or its neighbours
	Type1Map   Op = "type1_map_dma"   // VFIO_IOMMU_MAP_DMA
	Type1Unmap Op = "type1_unmap_dma" // VFIO_IOMMU_UNMAP_DMA
	IOMMUMap   Op = "iommu_map"       // the IOMMU core, once per contiguous run
	IOMMUUnmap Op = "iommu_unmap"
	IOTLBSync  Op = "iotlb_sync"
)

// Ops lists every Op in a fixed order, the order Print uses.
func Ops() []Op {
	return []Op{IOASMap, IOASUnmap, PinPages, Type1Map, Type1Unmap, IOMMUMap, IOMMUUnmap, IOTLBSync}
}

// Buckets is the number of log2 buckets: bucket i counts durations in
// [2^i, 2^(i+1)) ns, and bucket 0 also counts 0 ns. The BPF programs use the
// same layout (libbpf-tools' log2l: floor(log2 ns)), so their maps copy in
// as they are.
const Buckets = 64

// Bucket returns the bucket a duration in ns falls into.
func Bucket(ns uint64) int {
	if ns == 0 {
		return 0
	}
	return bits.Len64(ns) - 1
}

// BucketBounds returns bucket i's range [lo, hi) in ns, as float64 because
// the last bucket's upper bound, 2^64, does not fit in a uint64.
func BucketBounds(i int) (lo, hi float64) {
	if i == 0 {
		return 0, 2
	}
	return math.Ldexp(1, i), math.Ldexp(1, i+1)
}

// Hist is a log2 latency histogram with the count, the total time and the
// bytes of the operations it counts.
type Hist struct {
	Counts              [Buckets]uint64
	Count, SumNs, Bytes uint64
}

// Observe counts one operation that took ns nanoseconds and covered bytes.
func (h *Hist) Observe(ns, bytes uint64) {
	h.Counts[Bucket(ns)]++
	h.Count++
	h.SumNs += ns
	h.Bytes += bytes
}

// Add adds o's counts to h.
func (h *Hist) Add(o *Hist) {
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.Count += o.Count
	h.SumNs += o.SumNs
	h.Bytes += o.Bytes
}

// Mean is the average duration, 0 for an empty histogram.
func (h *Hist) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return time.Duration(h.SumNs / h.Count)
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) by linear interpolation
// inside the bucket holding it, so the error is bounded by the bucket width
// (a factor of 2). An empty histogram or a NaN q gives 0.
func (h *Hist) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 || math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var cum float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		next := cum + float64(c)
		if rank <= next {
			lo, hi := BucketBounds(i)
			ns := lo + (hi-lo)*(rank-cum)/float64(c)
			return toDuration(ns)
		}
		cum = next
	}
	// Rounding left rank just above the total: the top of the last bucket.
	for i := Buckets - 1; i >= 0; i-- {
		if h.Counts[i] != 0 {
			_, hi := BucketBounds(i)
			return toDuration(hi)
		}
	}
	return 0
}

func toDuration(ns float64) time.Duration {
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// Key is what the histograms are kept per: the operation and the process
// that issued it (the thread group id and its comm, as the kernel has them).
type Key struct {
	Op   Op
	PID  uint32
	Comm string
}

// Event is one operation slower than the source's threshold.
type Event struct {
	Key
	Ns, Bytes uint64
}

// Snapshot is what a Source has measured since it started.
type Snapshot struct {
	// Source says how the numbers were measured, "fentry", "kprobe" or
	// "emulated"; always shown to the user, since emulated numbers are
	// no kernel's.
	Source  string
	Hists   map[Key]Hist
	Slow    []Event  // the slowest single operations above the threshold, bounded
	Missing []string // what could not be attached, and why
}

// ByOp sums the histograms over processes.
func (s Snapshot) ByOp() map[Op]Hist {
	out := make(map[Op]Hist)
	for k, h := range s.Hists {
		sum := out[k.Op]
		sum.Add(&h)
		out[k.Op] = sum
	}
	return out
}

// Source produces snapshots: the eBPF tracer, a Recorder.
type Source interface {
	Snapshot() (Snapshot, error)
}

// Recorder is an in-process Source: the emulated backend observes its own
// map and unmap calls into it. It is safe for concurrent use, and Observe
// allocates only for a new Key.
type Recorder struct {
	source    string
	threshold time.Duration
	slowMax   int

	mu    sync.Mutex
	hists map[Key]*Hist
	slow  []Event // at most slowMax, unordered
}

// NewRecorder returns a Recorder whose snapshots name source. It keeps the
// slowMax slowest operations that took at least slowThreshold; slowMax 0
// keeps none.
func NewRecorder(source string, slowThreshold time.Duration, slowMax int) *Recorder {
	return &Recorder{
		source:    source,
		threshold: slowThreshold,
		slowMax:   max(slowMax, 0),
		hists:     make(map[Key]*Hist),
	}
}

// Observe counts one operation; a negative d counts as 0.
func (r *Recorder) Observe(op Op, pid uint32, comm string, d time.Duration, bytes uint64) {
	ns := uint64(max(d, 0))
	k := Key{Op: op, PID: pid, Comm: comm}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hists[k]
	if h == nil {
		h = new(Hist)
		r.hists[k] = h
	}
	h.Observe(ns, bytes)
	if r.slowMax == 0 || d < r.threshold {
		return
	}
	e := Event{Key: k, Ns: ns, Bytes: bytes}
	if len(r.slow) < r.slowMax {
		r.slow = append(r.slow, e)
		return
	}
	// Replace the fastest kept event if this one is slower.
	j := 0
	for i := range r.slow {
		if r.slow[i].Ns < r.slow[j].Ns {
			j = i
		}
	}
	if r.slow[j].Ns < ns {
		r.slow[j] = e
	}
}

// Snapshot implements Source; Slow comes slowest first.
func (r *Recorder) Snapshot() (Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Snapshot{Source: r.source, Hists: make(map[Key]Hist, len(r.hists))}
	for k, h := range r.hists {
		s.Hists[k] = *h
	}
	s.Slow = slices.Clone(r.slow)
	SortSlow(s.Slow)
	return s, nil
}

// SortSlow orders events slowest first, then by key, so output is stable.
func SortSlow(ev []Event) {
	slices.SortFunc(ev, func(a, b Event) int {
		if c := cmp.Compare(b.Ns, a.Ns); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Op, b.Op); c != 0 {
			return c
		}
		return cmp.Compare(a.PID, b.PID)
	})
}
