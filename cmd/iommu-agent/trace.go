package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/emulated"
	"github.com/iommu-agent/iommu-agent/ebpf"
	"github.com/iommu-agent/iommu-agent/internal/latency"
)

// trace shows DMA map/unmap latency per operation: from the kernel with the
// eBPF tracer, or, with --emulated, from a short workload on the emulated
// IOMMU (labelled so: its numbers are no kernel's). It prints at every
// --interval and once at the end (--duration, or Ctrl-C, which detaches).
func trace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("trace")
	interval := fs.Duration("interval", 0, "print the histograms every `D` (0: at the end only)")
	duration := fs.Duration("duration", 0, "stop after `D` (0: at Ctrl-C; with --emulated, after one workload)")
	pid := fs.Uint("pid", 0, "trace only process `N`")
	asJSON := fs.Bool("json", false, "print each snapshot as one JSON object per line")
	listen := fs.String("listen", "", "serve Prometheus metrics on `ADDR` at /metrics while tracing")
	emu := fs.Bool("emulated", false, "no kernel tracing: time map/unmap on the emulated IOMMU instead")
	kprobe := fs.Bool("kprobe", false, "attach kprobes even where fentry works")
	slow := fs.Duration("slow", 10*time.Millisecond, "list single operations slower than `D`")
	opsList := fs.String("ops", "", "trace these comma-separated `OPS` (default the ioctl level: ioas_map,ioas_unmap,type1_map,type1_unmap; known: "+opNames()+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ops []latency.Op
	if *opsList != "" {
		for _, name := range strings.Split(*opsList, ",") {
			op := latency.Op(strings.TrimSpace(name))
			if !slices.Contains(latency.Ops(), op) {
				return fs.usageErrorf("--ops: unknown operation %q (known: %s)", op, opNames())
			}
			ops = append(ops, op)
		}
	}
	if *interval < 0 || *duration < 0 || *slow < 0 {
		return fs.usageErrorf("--interval, --duration and --slow must not be negative")
	}
	if *pid > 1<<32-1 {
		return fs.usageErrorf("--pid %d out of range", *pid)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	var src latency.Source
	workDone := make(chan error, 1)
	if *emu {
		rec := latency.NewRecorder("emulated", *slow, 10)
		src = rec
		// One workload, or workloads until the end when a duration or
		// an interval asks for a live view.
		loop := *duration > 0 || *interval > 0
		go func() { workDone <- emulatedWorkload(ctx, rec, loop) }()
	} else {
		tr, err := ebpf.Open(ebpf.Options{ForceKprobe: *kprobe, PID: uint32(*pid), SlowThreshold: *slow, SlowMax: 10, Ops: ops})
		if err != nil {
			if errors.Is(err, ebpf.ErrUnavailable) {
				return oneLineError{fmt.Errorf("trace: %w (--emulated shows the emulated IOMMU instead)", err)}
			}
			return oneLineError{fmt.Errorf("trace: %w", err)}
		}
		defer tr.Close()
		src = tr
		fmt.Fprintf(stderr, "tracing with %s: %s\n", tr.Source(), strings.Join(tr.Attached(), ", "))
		close(workDone)
	}

	if *listen != "" {
		stop, err := serveMetrics(*listen, src, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}

	show := func() error {
		s, err := src.Snapshot()
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(jsonSnapshot(s))
		}
		return latency.Print(stdout, s)
	}
	var tick <-chan time.Time
	if *interval > 0 {
		t := time.NewTicker(*interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			if err := show(); err != nil {
				return err
			}
			if !*asJSON {
				fmt.Fprintln(stdout)
			}
		case err, ok := <-workDone:
			if !ok {
				workDone = nil // the tracer: wait for the end
				continue
			}
			if err != nil {
				return fmt.Errorf("trace: emulated workload: %w", err)
			}
			return show()
		case <-ctx.Done():
			if *emu {
				if err := <-workDone; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("trace: emulated workload: %w", err)
				}
			}
			return show()
		}
	}
}

// emulatedWorkload maps and unmaps 1,000 4 KiB pages on an emulated iommufd
// and as many on an emulated type1v2 container, each with a device attached
// so page tables are filled, observed by rec. With loop it repeats, paced,
// until ctx ends.
func emulatedWorkload(ctx context.Context, rec *latency.Recorder, loop bool) error {
	const pairs = 1000
	dev := iommu.Device{BDF: "0000:00:01.0", Group: 1}
	var spaces []iommu.AddressSpace
	for _, f := range []iommu.Flavour{iommu.IOMMUFD, iommu.Type1v2} {
		b, err := emulated.New(emulated.Options{Flavour: f, Devices: []iommu.Device{dev}, Latency: rec})
		if err != nil {
			return err
		}
		defer b.Close()
		as, err := b.NewAddressSpace(ctx)
		if err != nil {
			return err
		}
		if _, err := as.Attach(ctx, dev); err != nil {
			return err
		}
		spaces = append(spaces, as)
	}
	// Page-aligned memory, as mmap gives: type1 checks the alignment.
	// The Go heap does not move objects, so the address stays aligned.
	buf := make([]byte, 2*4096)
	off := (4096 - int(reflect.ValueOf(buf).Pointer()%4096)) % 4096
	m := iommu.Mapping{Mem: buf[off : off+4096 : off+4096], IOVA: 0x100000, Fixed: true, Perm: iommu.Read | iommu.Write}
	for {
		for _, as := range spaces {
			for range pairs {
				if _, err := as.Map(ctx, m); err != nil {
					return err
				}
				if _, err := as.Unmap(ctx, m.IOVA, 4096); err != nil {
					return err
				}
			}
		}
		if !loop {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func opNames() string {
	var names []string
	for _, op := range latency.Ops() {
		names = append(names, string(op))
	}
	return strings.Join(names, ",")
}

// serveMetrics serves src's collector at http://addr/metrics until stop.
func serveMetrics(addr string, src latency.Source, stderr io.Writer) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(latency.NewCollector(src)); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("trace: --listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(stderr, "metrics: http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// oneLineError keeps an error (and errors.Is) but prints on one line:
// kernel and verifier messages can span several.
type oneLineError struct{ err error }

func (e oneLineError) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e oneLineError) Unwrap() error { return e.err }

type jsonOp struct {
	Op      latency.Op `json:"op"`
	Count   uint64     `json:"count"`
	SumNs   uint64     `json:"sum_ns"`
	Bytes   uint64     `json:"bytes"`
	P50Ns   int64      `json:"p50_ns"`
	P99Ns   int64      `json:"p99_ns"`
	Buckets []uint64   `json:"log2_ns_buckets"` // bucket i: [2^i, 2^(i+1)) ns, trailing zeros cut
}

type jsonEvent struct {
	Op    latency.Op `json:"op"`
	PID   uint32     `json:"pid"`
	Comm  string     `json:"comm"`
	Ns    uint64     `json:"ns"`
	Bytes uint64     `json:"bytes"`
}

type jsonSnap struct {
	Time    time.Time   `json:"time"`
	Source  string      `json:"source"`
	Ops     []jsonOp    `json:"ops"`
	Slow    []jsonEvent `json:"slow,omitempty"`
	Missing []string    `json:"missing,omitempty"`
}

func jsonSnapshot(s latency.Snapshot) jsonSnap {
	out := jsonSnap{Time: time.Now().UTC(), Source: s.Source, Ops: []jsonOp{}, Missing: s.Missing}
	byOp := s.ByOp()
	ops := latency.Ops()
	for op := range byOp {
		known := false
		for _, k := range ops {
			known = known || k == op
		}
		if !known {
			ops = append(ops, op)
		}
	}
	for _, op := range ops {
		h, ok := byOp[op]
		if !ok {
			continue
		}
		last := len(h.Counts)
		for last > 0 && h.Counts[last-1] == 0 {
			last--
		}
		out.Ops = append(out.Ops, jsonOp{Op: op, Count: h.Count, SumNs: h.SumNs, Bytes: h.Bytes,
			P50Ns: int64(h.Quantile(0.5)), P99Ns: int64(h.Quantile(0.99)), Buckets: h.Counts[:last]})
	}
	for _, e := range s.Slow {
		out.Slow = append(out.Slow, jsonEvent{e.Op, e.PID, e.Comm, e.Ns, e.Bytes})
	}
	return out
}
