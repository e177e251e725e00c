//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/cdev"
	"github.com/iommu-agent/iommu-agent/agent/iommu/type1"
	"github.com/iommu-agent/iommu-agent/ebpf"
	"github.com/iommu-agent/iommu-agent/internal/latency"
)

// TracerOptions configures the tracer group.
type TracerOptions struct {
	// ICount is the QEMU -icount spec the guest runs under, e.g.
	// "shift=0,sleep=off"; "" when it does not. Under -icount the guest's
	// clock advances 2^shift ns per executed instruction, so the group
	// reports guest instructions, which a loaded host cannot blur.
	ICount string
	// Verbose reports every batch's figure through Env.Progress, to see
	// the spread the estimates come from.
	Verbose bool
}

// Tracer measures the eBPF tracer (package ebpf) on the kernel's 4 KiB map
// and unmap ioctls, one operation at a time, in states measured in the
// same rounds: nothing attached; an empty entry/exit program pair on the
// traced functions (ebpf.Options.Floor: the cost of being attached at all,
// the floor); the tracer's programs. The tracer's cost is its time over the
// untraced one, set against the floor's (goal 1.5 at the ioctl level); the
// traced time is also set against the untraced one (goal 1.02 on
// IOMMU_IOAS_MAP). The deep probes (pinning, iommu_map/unmap, the IOTLB
// sync: off in the agent) get rows of their own against an empty pair on
// all the same functions. Needs root, BPF and a device bound to vfio-pci
// (Env.Devices).
func Tracer(o TracerOptions) Bench {
	return Bench{Group: "tracer", Run: func(ctx context.Context, e *Env) ([]Row, error) { return runTracer(ctx, e, o) }}
}

// tracerState is what is attached while a batch runs.
type tracerState int

const (
	untraced tracerState = iota
	floorIoctl
	oursIoctl
	floorDeep
	oursDeep
	nStates
)

func (s tracerState) String() string {
	return [nStates]string{"untraced", "empty pair (ioctl)", "tracer (ioctl)", "empty pairs (all)", "tracer (all)"}[s]
}

// tracers holds one loaded tracer per attached state, at most one of them
// attached at a time.
type tracers struct {
	tr    [nStates]*ebpf.Tracer // untraced has none
	state tracerState
}

func openTracers() (_ *tracers, err error) {
	s := &tracers{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for st, o := range map[tracerState]ebpf.Options{
		// The agent's choice (serve): the ioctl level.
		floorIoctl: {Ops: ebpf.IoctlOps(), Floor: true},
		oursIoctl:  {Ops: ebpf.IoctlOps()},
		floorDeep:  {Ops: latency.Ops(), Floor: true},
		oursDeep:   {Ops: latency.Ops()},
	} {
		t, err := ebpf.Open(o)
		if err != nil {
			return nil, err
		}
		s.tr[st] = t
		// Open attaches: detach until the state is asked for.
		if err := t.SetAttached(false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// set attaches the tracer of st alone.
func (s *tracers) set(st tracerState) error {
	if s.state == st {
		return nil
	}
	if t := s.tr[s.state]; t != nil {
		if err := t.SetAttached(false); err != nil {
			return err
		}
	}
	if t := s.tr[st]; t != nil {
		if err := t.SetAttached(true); err != nil {
			return err
		}
	}
	s.state = st
	return nil
}

func (s *tracers) close() {
	for _, t := range s.tr {
		if t != nil {
			t.Close()
		}
	}
}

// tracerUnit converts the guest's nanoseconds to the reported unit.
type tracerUnit struct {
	name    string
	scale   float64 // reported = ns / scale
	counted bool    // instructions under -icount
}

// unitOf is instructions under -icount with a fixed shift, ns otherwise.
// QEMU takes "shift=N,..." or a bare N; shift=auto adapts the rate to the
// host and counts nothing fixed.
func unitOf(icount string) (tracerUnit, error) {
	if icount == "" {
		return tracerUnit{"ns/op", 1, false}, nil
	}
	for _, f := range strings.Split(icount, ",") {
		v, ok := strings.CutPrefix(f, "shift=")
		if !ok && !strings.Contains(f, "=") {
			v, ok = f, true
		}
		if !ok {
			continue
		}
		shift, err := strconv.Atoi(v)
		if err != nil || shift < 0 || shift > 10 {
			return tracerUnit{}, fmt.Errorf("-icount %q: shift %q is not a fixed rate (0 to 10): guest time would not count instructions", icount, v)
		}
		return tracerUnit{"instructions/op", float64(int(1) << shift), true}, nil
	}
	// QEMU's default shift is 0.
	return tracerUnit{"instructions/op", 1, true}, nil
}

func runTracer(ctx context.Context, e *Env, o TracerOptions) ([]Row, error) {
	unit, err := unitOf(o.ICount)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root: it loads BPF programs and opens vfio devices")
	}
	if len(e.Devices) == 0 {
		return nil, errors.New("needs a PCI function bound to vfio-pci (-devices)")
	}
	dev, err := e.firstDevice()
	if err != nil {
		return nil, err
	}
	e.progress("  loading the tracer and the empty programs")
	ts, err := openTracers()
	if err != nil {
		return nil, err
	}
	defer ts.close()
	m, err := newMemfd("bench-tracer", pg, 0, 0)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	page := m.mem

	var rows []Row
	for _, backend := range []string{"iommufd", "type1"} {
		r, err := tracerBackend(ctx, e, ts, unit, o.Verbose, backend, dev, page)
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
		if err != nil {
			rows = append(rows, Row{Name: backend, Skipped: err.Error()})
			continue
		}
		rows = append(rows, r...)
	}
	return rows, ts.set(untraced)
}

// tracerIOVA is below every lane's reserved regions (x86's MSI window at
// 0xfee00000, SMMUv3's at 0x8000000).
const tracerIOVA = 0x100000

// tracerOp is one timed kernel operation: batch runs n of them and returns
// the time they took, leaving the address space as it found it.
type tracerOp struct {
	name  string // as the uAPI names it
	goal  float64
	batch func(ctx context.Context, n int) (time.Duration, error)
}

// pageOps are the map and the unmap of one page on as, timed apart: n maps
// of the same page at n consecutive IOVAs, and their n unmaps; each batch
// does the other half untimed. settle runs before the timed half, so
// what the untimed half left to the kernel's workers and RCU callbacks
// (freed areas, unpinned pages) runs outside it.
func pageOps(as iommu.AddressSpace, page []byte, settle func(), mapName, unmapName string, mapGoal float64) []tracerOp {
	maps := func(ctx context.Context, n int) (time.Duration, error) {
		start := time.Now()
		for i := range n {
			m := iommu.Mapping{Mem: page, IOVA: iommu.IOVA(tracerIOVA + i*pg), Fixed: true, Perm: iommu.Read | iommu.Write}
			if _, err := as.Map(ctx, m); err != nil {
				as.Unmap(ctx, tracerIOVA, uint64(i)*pg) //nolint:errcheck // the map's error is the one to report
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	unmaps := func(ctx context.Context, n int) (time.Duration, error) {
		start := time.Now()
		for i := range n {
			if _, err := as.Unmap(ctx, iommu.IOVA(tracerIOVA+i*pg), pg); err != nil {
				as.Unmap(ctx, tracerIOVA, uint64(n)*pg) //nolint:errcheck // the unmap's error is the one to report
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	return []tracerOp{
		{name: mapName, goal: mapGoal, batch: func(ctx context.Context, n int) (time.Duration, error) {
			settle()
			d, err := maps(ctx, n)
			if err != nil {
				return 0, err
			}
			_, err = unmaps(ctx, n)
			return d, err
		}},
		{name: unmapName, batch: func(ctx context.Context, n int) (time.Duration, error) {
			if _, err := maps(ctx, n); err != nil {
				return 0, err
			}
			settle()
			return unmaps(ctx, n)
		}},
	}
}

// tracerBackend measures the map and unmap of one backend in every state.
// Rounds visit the states in turn, forwards then backwards, so drift hits
// all alike; each state's batches follow untimed warm-up calls (attaching
// rewrites kernel text, and under TCG drops translated code).
func tracerBackend(ctx context.Context, e *Env, ts *tracers, unit tracerUnit, verbose bool, backend string, dev iommu.Device, page []byte) ([]Row, error) {
	var b iommu.Backend
	var err error
	var ops []tracerOp
	switch backend {
	case "iommufd":
		b, err = cdev.Open(ctx, cdev.Options{})
	case "type1":
		b, err = type1.Open(ctx, type1.Options{Flavour: iommu.Type1v2})
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", backend, err)
	}
	defer b.Close()
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := as.Attach(ctx, dev); err != nil {
		return nil, fmt.Errorf("attach %s: %w", dev.BDF, err)
	}
	// Idle, the guest runs what attaching, detaching and the untimed
	// halves of the batches left to the kernel's workers and RCU
	// callbacks (trampolines freed after an RCU-tasks grace period,
	// unmapped areas, unpinned pages), outside the timed calls. Under
	// -icount sleep=off an idle guest's clock jumps ahead: the wait
	// costs the host nothing.
	const settleFor = 20 * time.Millisecond
	settle := func() { time.Sleep(settleFor) }
	switch backend {
	case "iommufd":
		ops = pageOps(as, page, settle, "IOMMU_IOAS_MAP", "IOMMU_IOAS_UNMAP", 1.02)
	case "type1":
		ops = pageOps(as, page, settle, "VFIO_IOMMU_MAP_DMA", "VFIO_IOMMU_UNMAP_DMA", 0)
	}

	// Under -icount, batches short enough that most of them see no timer
	// tick (one per 4 M instructions at HZ=250 and shift=0), and more
	// of them.
	rounds, n, warm := 9, 128, 8
	if unit.counted {
		rounds, n = 15, 48
	}
	if e.Quick {
		rounds, n = 5, 32
	}
	states := []tracerState{untraced, floorIoctl, oursIoctl, floorDeep, oursDeep}
	// per[state][op] is each round's cost per call, in unit.
	var per [nStates][][]float64
	for st := range per {
		per[st] = make([][]float64, len(ops))
	}
	e.progress("  %s: %d rounds of %d 4 KiB maps and unmaps in %d states", backend, rounds, n, len(states))
	// No collection while timing: the Go runtime's GC and its sweeping
	// would land in some batches and not others.
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for r := range rounds {
		order := slices.Clone(states)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, st := range order {
			if err := ts.set(st); err != nil {
				return nil, err
			}
			settle()
			for _, op := range ops {
				if _, err := op.batch(ctx, warm); err != nil {
					return nil, fmt.Errorf("%s: %w", op.name, err)
				}
			}
			for i, op := range ops {
				d, err := op.batch(ctx, n)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", op.name, err)
				}
				per[st][i] = append(per[st][i], float64(d.Nanoseconds())/float64(n)/unit.scale)
				if verbose {
					e.progress("    round %d, %s: %s %.0f", r, st, op.name, per[st][i][len(per[st][i])-1])
				}
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if err := ts.set(untraced); err != nil {
		return nil, err
	}

	how := ts.tr[oursIoctl].Source()
	deepHow := ts.tr[oursDeep].Source()
	// Each cost is the median of the rounds' differences from the same
	// round's untraced batch, so drift between rounds cancels. Under
	// -icount a 4 KiB map repeats to the instruction (the median is the
	// mode: 7874 untraced in 11 of 15 rounds on x86_64-vtd); unmaps
	// swing by hundreds (deferred work of the maps before them lands in
	// some batches), where the rounds' minima, tried first, picked
	// outliers of different sizes per state and the median does not.
	var rows []Row
	for i, op := range ops {
		off := median(per[untraced][i])
		cost := func(st tracerState) float64 {
			d := make([]float64, rounds)
			for r := range d {
				d[r] = per[st][i][r] - per[untraced][i][r]
			}
			return median(d)
		}
		detail := func(floor, ours tracerState) string {
			return fmt.Sprintf("untraced %.0f, empty pair %.0f, tracer %.0f %s; medians of %d rounds of %d calls",
				off, median(per[floor][i]), median(per[ours][i]), strings.TrimSuffix(unit.name, "/op"), rounds, n)
		}
		rows = append(rows,
			costRow(Row{Name: op.name + " 4 KiB, " + backend + ": tracer's cost, ioctl probes", Subject: "dmatrace " + how + " programs",
				Baseline: "empty " + how + " pair (the floor)", Value: cost(oursIoctl), Base: cost(floorIoctl), Unit: unit.name, Goal: 1.5,
				Note: detail(floorIoctl, oursIoctl)}),
			ratioRow(Row{Name: op.name + " 4 KiB, " + backend + ": traced vs untraced", Subject: "ioctl probes attached",
				Baseline: "nothing attached", Value: median(per[oursIoctl][i]), Base: off, Unit: unit.name, Goal: op.goal}),
			costRow(Row{Name: op.name + " 4 KiB, " + backend + ": tracer's cost, all probes", Subject: "dmatrace " + deepHow + " programs, deep probes too",
				Baseline: "empty " + deepHow + " pairs (the floor)", Value: cost(oursDeep), Base: cost(floorDeep), Unit: unit.name,
				Note: fmt.Sprintf("%d functions: %s; %s", len(ts.tr[oursDeep].Attached()), strings.Join(ts.tr[oursDeep].Attached(), ", "), detail(floorDeep, oursDeep))}),
		)
	}
	return rows, nil
}

// unresolved starts the Skipped of a cost row whose difference drowned in
// the noise.
const unresolved = "unresolved: "

// costRow is ratioRow for a cost over the untraced time: where the noise
// outweighed a cost (one came out zero or negative, as on a busy host
// without -icount) the ratio means nothing, and would pass any goal.
func costRow(r Row) Row {
	if r.Base <= 0 || r.Value < 0 {
		r.Skipped = fmt.Sprintf("%sthe costs over the untraced time came out %.0f (tracer) and %.0f (floor) %s, the noise larger than them; %s",
			unresolved, r.Value, r.Base, r.Unit, r.Note)
		r.Value, r.Base, r.Note = 0, 0, ""
		return r
	}
	return ratioRow(r)
}
