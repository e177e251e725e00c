//go:build linux

package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the agent's Prometheus series, on a registry of its own (no
// global default registry: two servers in one test process must not clash).
type metrics struct {
	reg        *prometheus.Registry
	leases     *prometheus.GaugeVec
	binds      *prometheus.CounterVec
	errors     *prometheus.CounterVec
	ops        *prometheus.HistogramVec
	reconciled *prometheus.CounterVec
	conns      prometheus.Gauge
	info       *prometheus.GaugeVec
	// The caps at work: accept failures by errno, connections refused
	// over a cap and closed for silence, memfd mappings held.
	acceptErrors *prometheus.CounterVec
	refused      *prometheus.CounterVec
	closed       *prometheus.CounterVec
	maps         prometheus.Gauge
	// How broker maps reached the kernel: by descriptor (map_file) or
	// through the agent's own mapping of the memfd (mmap).
	brokerMaps *prometheus.CounterVec
}

// newMetrics makes the series of a server on backend, which iommu_agent_info
// names: an agent that serves emulated devices says so on /metrics too.
func newMetrics(backend string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		leases: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iommu_agent_leases", Help: "Leases held, by mode.",
		}, []string{"mode"}),
		binds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iommu_agent_binds_total", Help: "Group binds to vfio-pci and restores, by result.",
		}, []string{"op", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iommu_agent_errors_total", Help: "Failed requests, by op and error code.",
		}, []string{"op", "code"}),
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iommu_agent_op_duration_seconds",
			Help:    "Request handling time, by op.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}, []string{"op"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iommu_agent_reconciled_total", Help: "Leases found in the state dir, by outcome.",
		}, []string{"action"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "iommu_agent_connections", Help: "Open client connections.",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iommu_agent_info", Help: "Always 1; the backend the agent serves (emulated: no real IOMMU).",
		}, []string{"backend"}),
		acceptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iommu_agent_accept_errors_total", Help: "Failed accepts of the socket (retried with backoff), by errno.",
		}, []string{"errno"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iommu_agent_connections_refused_total", Help: "Connections refused over a cap (total or per uid), by cap.",
		}, []string{"cap"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iommu_agent_connections_timed_out_total", Help: "Connections closed by a timeout: hello, idle or write.",
		}, []string{"timeout"}),
		maps: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "iommu_agent_maps", Help: "Memfd mappings held for broker leases.",
		}),
		brokerMaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iommu_agent_broker_maps_total",
			Help: "Broker maps, by how the memfd reached the kernel: map_file (IOMMU_IOAS_MAP_FILE, no agent mapping) or mmap.",
		}, []string{"how"}),
	}
	m.info.WithLabelValues(backend).Set(1)
	m.reg.MustRegister(m.leases, m.binds, m.errors, m.ops, m.reconciled, m.conns, m.info, m.acceptErrors, m.refused, m.closed, m.maps, m.brokerMaps,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics from the server's registry and /healthz, which
// answers 200 while the server accepts connections, and 503 with the reason
// when Serve is not running or accept has been failing for longer than
// Options.UnhealthyAfter (a supervisor should restart such an agent).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{Registry: s.m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if why := s.unhealthy(); why != "" {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// Register adds c (the latency collector, for one) to the server's registry.
func (s *Server) Register(c prometheus.Collector) error { return s.m.reg.Register(c) }
