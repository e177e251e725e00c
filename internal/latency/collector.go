package latency

import (
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes a Source's snapshot at each scrape.
type collector struct {
	src                     Source
	duration, bytes, missed *prometheus.Desc
}

// NewCollector returns a Prometheus collector for src: a histogram
// iommu_agent_dma_op_duration_seconds{op,source} with the log2 buckets as
// they are (upper bounds 2^(i+1) ns), a counter
// iommu_agent_dma_op_bytes_total{op,source}, both summed over processes
// (pids would make the label set unbounded), and a gauge
// iommu_agent_dma_trace_missing{what,source} = 1 per trace point that could
// not be attached. A failing Snapshot is reported as an invalid metric,
// which the registry turns into a Gather error.
func NewCollector(src Source) prometheus.Collector {
	return collector{
		src: src,
		duration: prometheus.NewDesc("iommu_agent_dma_op_duration_seconds",
			"Latency of DMA map/unmap operations, as measured by source (fentry, kprobe: in the kernel; emulated: the emulated IOMMU).",
			[]string{"op", "source"}, nil),
		bytes: prometheus.NewDesc("iommu_agent_dma_op_bytes_total",
			"Bytes covered by DMA map/unmap operations.",
			[]string{"op", "source"}, nil),
		missed: prometheus.NewDesc("iommu_agent_dma_trace_missing",
			"Trace points that could not be attached (1 each), with the reason; their operations are not counted.",
			[]string{"what", "source"}, nil),
	}
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.duration
	ch <- c.bytes
	ch <- c.missed
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.src.Snapshot()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.duration, fmt.Errorf("latency snapshot: %w", err))
		return
	}
	byOp := s.ByOp()
	for _, op := range sortedOps(byOp) {
		h := byOp[op]
		buckets := make(map[float64]uint64, Buckets-1)
		var cum uint64
		// The last bucket's bound, 2^64 ns, is +Inf in all but name.
		for i := range Buckets - 1 {
			cum += h.Counts[i]
			_, hi := BucketBounds(i)
			buckets[hi/1e9] = cum
		}
		m, err := prometheus.NewConstHistogram(c.duration, h.Count, float64(h.SumNs)/1e9, buckets, string(op), s.Source)
		if err != nil {
			m = prometheus.NewInvalidMetric(c.duration, err)
		}
		ch <- m
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(h.Bytes), string(op), s.Source)
	}
	missing := slices.Clone(s.Missing)
	slices.Sort(missing)
	for _, what := range slices.Compact(missing) {
		ch <- prometheus.MustNewConstMetric(c.missed, prometheus.GaugeValue, 1, what, s.Source)
	}
}
