//go:build linux

// Package ebpf times DMA map and unmap operations inside the kernel with BPF
// programs (bpf/dmatrace.c): the iommufd IOAS ioctls, their pinning, the
// type1 (and vfio-compat) MAP_DMA/UNMAP_DMA, the IOMMU core's iommu_map and
// iommu_unmap and the driver's IOTLB sync. The kernel aggregates log2
// histograms per (operation, process); user space polls them. A Tracer is a
// latency.Source.
package ebpf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/iommu-agent/iommu-agent/internal/latency"
)

// ErrUnavailable says the kernel refused BPF (no privilege, or BPF
// disabled): the tracer cannot run here at all. The cause is wrapped.
var ErrUnavailable = errors.New("eBPF tracing unavailable")

// Options configures a Tracer. The zero value traces the map and unmap
// ioctls of every process with fentry/fexit where the kernel has them and
// keeps no slow events.
type Options struct {
	// ForceKprobe attaches kprobes/kretprobes even where fentry/fexit
	// would work, to test and compare the fallback.
	ForceKprobe bool
	// PID traces only this process (thread group); 0 traces all.
	PID uint32
	// SlowThreshold sends every operation at least this long to the
	// slow-event ring buffer; 0 sends none.
	SlowThreshold time.Duration
	// SlowMax bounds the slow events kept, the slowest ones; 64 when 0.
	SlowMax int
	// Ops limits tracing to these operations; the ioctl level (IoctlOps)
	// when empty. The deep ones (pinning, iommu_map/unmap, the IOTLB
	// sync) are traced only when asked for: iommu_map and the IOTLB sync
	// fire once per contiguous run, which can be many times per ioctl, and
	// each traced function adds its trampoline to every call.
	Ops []latency.Op
	// Floor attaches, on the same functions and with the same attach
	// types, programs that do nothing (r0 = 0; exit) instead of the
	// tracing ones: the cost of being attached at all, the floor the
	// tracer's overhead is measured against. Nothing is counted.
	Floor bool
}

// target is one thing to time, and the functions that may carry it: the
// first one the kernel has is traced, with the programs of its role.
type target struct {
	what  string
	ops   []latency.Op
	cands []cand
}

type cand struct{ sym, role string }

// targets in the order of latency.Ops, so output is stable.
func targets() []target {
	one := func(what string, op latency.Op, sym, role string) target {
		return target{what, []latency.Op{op}, []cand{{sym, role}}}
	}
	type1 := []latency.Op{latency.Type1Map, latency.Type1Unmap}
	return []target{
		one("ioas_map", latency.IOASMap, "iommufd_ioas_map", "ioas_map"),
		one("ioas_unmap", latency.IOASUnmap, "iommufd_ioas_unmap", "ioas_unmap"),
		// The pinning proper; iopt_map_user_pages (also IOVA allocation
		// and domain fill) where a build inlined it.
		{"pin_pages (iommufd)", []latency.Op{latency.PinPages}, []cand{{"pfn_reader_user_pin", "pin_user"}, {"iopt_map_user_pages", "pin"}}},
		one("pin_pages (type1)", latency.PinPages, "vfio_pin_pages_remote", "pin_type1"),
		{"type1 map_dma/unmap_dma", type1, []cand{{"vfio_iommu_type1_ioctl", "type1"}}},
		{"vfio-compat map_dma/unmap_dma", type1, []cand{{"iommufd_vfio_ioctl", "compat"}}},
		one("iommu_map", latency.IOMMUMap, "iommu_map", "iommu_map"),
		one("iommu_unmap", latency.IOMMUUnmap, "iommu_unmap", "iommu_unmap"),
		one("iommu_unmap (type1's fast path)", latency.IOMMUUnmap, "iommu_unmap_fast", "iommu_unmap_fast"),
		// The driver's iotlb_sync op: iommu_iotlb_sync itself is inline.
		{"iotlb_sync", []latency.Op{latency.IOTLBSync}, []cand{{"intel_iommu_tlb_sync", "iotlb_sync"}, {"amd_iommu_iotlb_sync", "iotlb_sync"}, {"arm_smmu_iotlb_sync", "iotlb_sync"}}},
	}
}

// IoctlOps are the operations traced when Options.Ops is empty: one
// program pair per map or unmap ioctl.
func IoctlOps() []latency.Op {
	return []latency.Op{latency.IOASMap, latency.IOASUnmap, latency.Type1Map, latency.Type1Unmap}
}

// selected returns the targets timing any of ops; the ioctl level's for
// none.
func selected(ops []latency.Op) []target {
	all := targets()
	if len(ops) == 0 {
		ops = IoctlOps()
	}
	var out []target
	for _, tg := range all {
		for _, op := range tg.ops {
			if slices.Contains(ops, op) {
				out = append(out, tg)
				break
			}
		}
	}
	return out
}

// Tracer holds the loaded programs and their links; Close detaches them.
type Tracer struct {
	hists, histSlots         *ebpf.Map
	histDropped, slowDropped *ebpf.Variable
	startLost                *ebpf.Variable
	maps                     []*ebpf.Map // every map, closed last
	atts                     []*attachment
	attached, missing        []string
	source                   string
	floor                    bool // empty programs: see Options.Floor
	reader                   *ringbuf.Reader
	done                     chan struct{}

	mu      sync.Mutex // guards slow
	slow    []latency.Event
	slowMax int

	closeOnce sync.Once
	closeErr  error
}

type mapObjects struct {
	Threads     *ebpf.Map      `ebpf:"threads"`
	Hists       *ebpf.Map      `ebpf:"hists"`
	HistSlots   *ebpf.Map      `ebpf:"hist_slots"`
	SlowEvents  *ebpf.Map      `ebpf:"slow_events"`
	Rodata      *ebpf.Map      `ebpf:".rodata"`
	Bss         *ebpf.Map      `ebpf:".bss"`
	HistDropped *ebpf.Variable `ebpf:"hist_dropped"`
	SlowDropped *ebpf.Variable `ebpf:"slow_dropped"`
	StartLost   *ebpf.Variable `ebpf:"start_lost"`
}

// Open loads the programs and attaches every target the kernel has,
// fentry/fexit first unless opts.ForceKprobe, kprobe/kretprobe per target
// otherwise. A target that is absent or fails to attach is listed in the
// snapshot's Missing, not an error; Open fails only when BPF itself is
// unavailable (ErrUnavailable) or nothing could be attached.
func Open(opts Options) (_ *Tracer, err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	spec, err := loadDmatrace()
	if err != nil {
		return nil, fmt.Errorf("load BPF object: %w", err)
	}
	if err := spec.Variables["filter_tgid"].Set(opts.PID); err != nil {
		return nil, err
	}
	slowNs := ^uint64(0)
	if opts.SlowThreshold > 0 {
		slowNs = uint64(opts.SlowThreshold)
	}
	if err := spec.Variables["slow_ns"].Set(slowNs); err != nil {
		return nil, err
	}

	t := &Tracer{done: make(chan struct{}), slowMax: opts.SlowMax, floor: opts.Floor}
	if t.slowMax <= 0 {
		t.slowMax = 64
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	var mo mapObjects
	if err := spec.LoadAndAssign(&mo, nil); err != nil {
		return nil, unavailable(err)
	}
	t.maps = []*ebpf.Map{mo.Threads, mo.Hists, mo.HistSlots, mo.SlowEvents, mo.Rodata, mo.Bss}
	t.hists, t.histSlots, t.histDropped, t.slowDropped, t.startLost = mo.Hists, mo.HistSlots, mo.HistDropped, mo.SlowDropped, mo.StartLost
	replace := map[string]*ebpf.Map{
		"threads": mo.Threads, "hists": mo.Hists, "hist_slots": mo.HistSlots, "slow_events": mo.SlowEvents,
		".rodata": mo.Rodata, ".bss": mo.Bss,
	}

	fentry := !opts.ForceKprobe
	if fentry {
		if ferr := features.HaveProgramType(ebpf.Tracing); ferr != nil {
			fentry = false
			t.missing = append(t.missing, fmt.Sprintf("fentry/fexit: %v; using kprobes", ferr))
		}
	}
	tgs := selected(opts.Ops)
	if len(tgs) == 0 {
		return nil, fmt.Errorf("no traceable operation among %v", opts.Ops)
	}
	syms, err := kallsyms(tgs)
	if err != nil {
		return nil, err
	}
	cache := btf.NewCache()
	var nFentry, nKprobe int
	for _, tg := range tgs {
		var c cand
		var names []string
		for _, cd := range tg.cands {
			names = append(names, cd.sym)
			if c.sym == "" && syms[cd.sym] {
				c = cd
			}
		}
		if c.sym == "" {
			t.missing = append(t.missing, fmt.Sprintf("%s: %s not in /proc/kallsyms (inlined, or its module not loaded)", tg.what, strings.Join(names, ", ")))
			continue
		}
		var ferr error
		if fentry {
			if ferr = t.attach(spec, replace, cache, c.role, c.sym, true); ferr == nil {
				t.attached = append(t.attached, c.sym+" (fentry)")
				nFentry++
				continue
			}
		}
		if kerr := t.attach(spec, replace, cache, c.role, c.sym, false); kerr != nil {
			what := tg.what
			if what != c.sym {
				what += ": " + c.sym
			}
			msg := fmt.Sprintf("%s: kprobe: %v", what, kerr)
			if ferr != nil {
				msg = fmt.Sprintf("%s: fentry: %v; kprobe: %v", what, ferr, kerr)
			}
			t.missing = append(t.missing, msg)
			continue
		}
		t.attached = append(t.attached, c.sym+" (kprobe)")
		nKprobe++
	}
	switch {
	case nFentry+nKprobe == 0:
		return nil, fmt.Errorf("%w: none of the %d DMA map/unmap functions could be attached (%s)",
			ErrUnavailable, len(tgs), firstReasons(t.missing))
	case nKprobe == 0:
		t.source = "fentry"
	case nFentry == 0:
		t.source = "kprobe"
	default:
		t.source = "fentry+kprobe"
	}

	if t.reader, err = ringbuf.NewReader(mo.SlowEvents); err != nil {
		return nil, fmt.Errorf("slow-event ring buffer: %w", err)
	}
	go t.readSlow()
	return t, nil
}

// firstReasons summarises why nothing attached: the first attach error, and
// how many targets were absent.
func firstReasons(missing []string) string {
	absent, first := 0, ""
	for _, m := range missing {
		switch {
		case strings.Contains(m, "not in /proc/kallsyms"):
			absent++
		case first == "" && !strings.HasPrefix(m, "fentry/fexit:"):
			first = m
		}
	}
	out := fmt.Sprintf("%d not in /proc/kallsyms: iommufd/vfio modules not loaded?", absent)
	if first != "" {
		out += "; " + first
	}
	return out
}

// unavailable marks the errors that mean BPF cannot run here.
func unavailable(err error) error {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("%w (needs root or CAP_BPF+CAP_PERFMON on a kernel with BPF enabled): %w", ErrUnavailable, err)
	}
	return fmt.Errorf("create BPF maps: %w", err)
}

// attachment is one traced function: its two loaded programs and, while
// attached, their links.
type attachment struct {
	sym         string
	fentry      bool
	entry, exit *ebpf.Program
	links       []link.Link // exit first
}

// attach loads the role's entry and exit programs for sym and attaches
// them.
func (t *Tracer) attach(spec *ebpf.CollectionSpec, replace map[string]*ebpf.Map, cache *btf.Cache, role, sym string, fentry bool) error {
	entry, exit := "kprobe_"+role, "kretprobe_"+role
	if fentry {
		entry, exit = "fentry_"+role, "fexit_"+role
	}
	sub := spec.Copy()
	for name, p := range sub.Programs {
		if name != entry && name != exit {
			delete(sub.Programs, name)
			continue
		}
		if fentry {
			p.AttachTo = sym
		}
		if t.floor {
			// The attach type, target and license stay; only the body
			// goes, and with it every map reference.
			p.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(sub, ebpf.CollectionOptions{MapReplacements: replace, Cache: cache})
	if err != nil {
		return err
	}
	a := &attachment{sym: sym, fentry: fentry, entry: coll.DetachProgram(entry), exit: coll.DetachProgram(exit)}
	coll.Close() // its clones of the maps; t.maps keeps the originals
	if err := a.link(); err != nil {
		a.entry.Close()
		a.exit.Close()
		return err
	}
	t.atts = append(t.atts, a)
	return nil
}

// link attaches the exit program before the entry, so no call is seen
// starting without its end.
func (a *attachment) link() error {
	var lexit, lentry link.Link
	var err error
	if a.fentry {
		if lexit, err = link.AttachTracing(link.TracingOptions{Program: a.exit}); err != nil {
			return err
		}
		if lentry, err = link.AttachTracing(link.TracingOptions{Program: a.entry}); err != nil {
			lexit.Close()
			return err
		}
	} else {
		if lexit, err = link.Kretprobe(a.sym, a.exit, nil); err != nil {
			return err
		}
		if lentry, err = link.Kprobe(a.sym, a.entry, nil); err != nil {
			lexit.Close()
			return err
		}
	}
	a.links = []link.Link{lexit, lentry}
	return nil
}

// unlink detaches the entry, then the exit.
func (a *attachment) unlink() error {
	var errs []error
	for i := len(a.links) - 1; i >= 0; i-- {
		errs = append(errs, a.links[i].Close())
	}
	a.links = nil
	return errors.Join(errs...)
}

// SetAttached detaches (false) or re-attaches (true) every program while
// keeping them and the histograms loaded: tracing can stop costing without
// losing what it counted, and the overhead test compares the same workload
// with and without tracing in one run.
func (t *Tracer) SetAttached(on bool) error {
	for _, a := range t.atts {
		if on == (a.links != nil) {
			continue
		}
		var err error
		if on {
			err = a.link()
		} else {
			err = a.unlink()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.sym, err)
		}
	}
	return nil
}

// kallsyms reports which of the targets' symbols the running kernel has.
func kallsyms(ts []target) (map[string]bool, error) {
	want := map[string]bool{}
	for _, tg := range ts {
		for _, c := range tg.cands {
			want[c.sym] = false
		}
	}
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ffffffffc0a01230 t iommufd_ioas_map\t[iommufd]"
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		if _, ok := want[fields[2]]; ok {
			want[fields[2]] = true
		}
	}
	return want, sc.Err()
}

// Source is how the attached targets are traced: "fentry", "kprobe", or
// "fentry+kprobe" when some targets fell back.
func (t *Tracer) Source() string { return t.source }

// Attached lists the traced symbols with their attach type.
func (t *Tracer) Attached() []string { return append([]string(nil), t.attached...) }

// Snapshot implements latency.Source: the kernel's histograms as of now.
func (t *Tracer) Snapshot() (latency.Snapshot, error) {
	s := latency.Snapshot{Source: t.source, Hists: map[latency.Key]latency.Hist{}}
	ops := latency.Ops()
	var k dmatraceHistKey
	var slot uint32
	var v dmatraceHist
	// hist_slots names each histogram's slot in the hists array.
	it := t.histSlots.Iterate()
	for it.Next(&k, &slot) {
		if int(k.Op) >= len(ops) {
			continue
		}
		if err := t.hists.Lookup(slot, &v); err != nil {
			return latency.Snapshot{}, fmt.Errorf("read histogram %d: %w", slot, err)
		}
		key := latency.Key{Op: ops[k.Op], PID: k.Pid, Comm: comm(v.Comm)}
		var n uint64
		for _, c := range v.Counts {
			n += c
		}
		s.Hists[key] = latency.Hist{Counts: v.Counts, Count: n, SumNs: v.SumNs, Bytes: v.Bytes}
	}
	if err := it.Err(); err != nil {
		return latency.Snapshot{}, fmt.Errorf("read histograms: %w", err)
	}
	s.Missing = append([]string(nil), t.missing...)
	var hd, sd, sl uint64
	if err := t.histDropped.Get(&hd); err != nil {
		return latency.Snapshot{}, err
	}
	if err := t.slowDropped.Get(&sd); err != nil {
		return latency.Snapshot{}, err
	}
	if err := t.startLost.Get(&sl); err != nil {
		return latency.Snapshot{}, err
	}
	if hd > 0 {
		s.Missing = append(s.Missing, fmt.Sprintf("%d operations not counted: histogram map full", hd))
	}
	if sd > 0 {
		s.Missing = append(s.Missing, fmt.Sprintf("%d slow events lost: ring buffer full", sd))
	}
	if sl > 0 {
		s.Missing = append(s.Missing, fmt.Sprintf("%d operations not counted: their thread's slot was taken by a thread with a colliding id", sl))
	}
	t.mu.Lock()
	s.Slow = append([]latency.Event(nil), t.slow...)
	t.mu.Unlock()
	latency.SortSlow(s.Slow)
	return s, nil
}

func comm(c [16]int8) string {
	b := make([]byte, 0, len(c))
	for _, x := range c {
		if x == 0 {
			break
		}
		b = append(b, byte(x))
	}
	return string(b)
}

// readSlow keeps the slowMax slowest events from the ring buffer until
// Close closes the reader.
func (t *Tracer) readSlow() {
	defer close(t.done)
	var e dmatraceEvent
	ops := latency.Ops()
	for {
		rec, err := t.reader.Read()
		if err != nil {
			return // closed
		}
		if _, err := binary.Decode(rec.RawSample, binary.NativeEndian, &e); err != nil || int(e.Op) >= len(ops) {
			continue
		}
		ev := latency.Event{Key: latency.Key{Op: ops[e.Op], PID: e.Pid, Comm: comm(e.Comm)}, Ns: e.Ns, Bytes: e.Bytes}
		t.mu.Lock()
		if len(t.slow) < t.slowMax {
			t.slow = append(t.slow, ev)
		} else {
			j := 0
			for i := range t.slow {
				if t.slow[i].Ns < t.slow[j].Ns {
					j = i
				}
			}
			if t.slow[j].Ns < ev.Ns {
				t.slow[j] = ev
			}
		}
		t.mu.Unlock()
	}
}

// Close detaches every program and frees the maps; idempotent.
func (t *Tracer) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		for _, a := range t.atts {
			errs = append(errs, a.unlink(), a.entry.Close(), a.exit.Close())
		}
		if t.reader != nil {
			errs = append(errs, t.reader.Close())
			<-t.done
		}
		for _, m := range t.maps {
			if m != nil {
				errs = append(errs, m.Close())
			}
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}
