// Package bench measures the agent's paths against floors measured in the
// same run: every figure it reports is a ratio of a subject to a baseline
// (the C loop beside the Go one, the one-call map beside the chunked one,
// the bare socket round trip beside the agent's), with the absolute costs
// beside them for context. Ratios survive a loaded or slower machine where
// absolute times do not, so they are what the goals and the CI check use.
//
// A Bench produces rows; Run runs a list of them into a Report, which
// prints as text, JSON or Markdown (docs/benchmarks.md).
package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Row is one comparison.
type Row struct {
	Group    string `json:"group"`    // "emulated", "seed", "daemon", ...
	Name     string `json:"name"`     // what is compared
	Subject  string `json:"subject"`  // what was measured
	Baseline string `json:"baseline"` // the floor it is measured against
	// Value and Base are the subject's and the baseline's cost per
	// operation in Unit.
	Value float64 `json:"value"`
	Base  float64 `json:"base"`
	Unit  string  `json:"unit"`
	// Ratio is Value/Base: what the goals and the CI check compare.
	Ratio float64 `json:"ratio"`
	// Goal is the ratio to stay at or under; 0 for none.
	Goal float64 `json:"goal,omitempty"`
	// Margin, when larger than Check's, is how far this row's ratio may
	// rise above its baseline's: tail latencies move more between runs
	// on a shared machine than medians do.
	Margin float64 `json:"margin,omitempty"`
	// Unchecked rows are reported and never compared: a ratio of two
	// tails (p99) swings with one descheduling on either side.
	Unchecked bool   `json:"unchecked,omitempty"`
	Note      string `json:"note,omitempty"`
	// Skipped says why the row could not run here; the rest is empty.
	Skipped string `json:"skipped,omitempty"`
}

// Met reports whether the row has a goal and meets it.
func (r Row) Met() (met, hasGoal bool) {
	if r.Goal == 0 || r.Skipped != "" {
		return false, false
	}
	return r.Ratio <= r.Goal, true
}

// ratioRow fills Ratio from Value and Base.
func ratioRow(r Row) Row {
	if r.Base > 0 {
		r.Ratio = r.Value / r.Base
	}
	return r
}

// NewRow is r with its Ratio, for rows measured outside a Bench (a go
// test -bench of its own module, such as hwtests/ghwbench's).
func NewRow(r Row) Row { return ratioRow(r) }

// NewReport is a report of rows measured on this machine now.
func NewReport(quick bool, rows ...Row) Report {
	return Report{Header: header(quick), Rows: rows}
}

// Header names where a report was measured.
type Header struct {
	Host    string    `json:"host"`
	Arch    string    `json:"arch"`
	CPU     string    `json:"cpu"`
	Cores   int       `json:"cores"`
	Kernel  string    `json:"kernel"`
	IOMMU   string    `json:"iommu"` // the units sysfs lists, by kind; "none"
	Accel   string    `json:"accel"` // kvm, tcg (a QEMU guest), or "bare metal or unknown"
	Go      string    `json:"go"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Quick   bool      `json:"quick"`
}

// Report is a run's header and rows.
type Report struct {
	Header Header `json:"header"`
	// Others are the headers of merged reports that ran elsewhere.
	Others []Header `json:"others,omitempty"`
	Rows   []Row    `json:"rows"`
}

// Env is what benches get.
type Env struct {
	// Quick shortens every measurement (CI's regression check); the
	// ratios keep their meaning, with more noise.
	Quick bool
	// Progress, when set, is told what runs.
	Progress func(format string, args ...any)
	// Devices are PCI functions bound to vfio-pci the kernel benches may
	// use (an edu in the guest); none limits them to what needs no device.
	Devices []string
	// Accel, when set, names what runs the machine (the test harness
	// knows whether its guest runs under KVM or TCG; a guest cannot
	// always tell).
	Accel string
	// CHelper is a prebuilt cloop (cloop.c) for a machine without a C
	// compiler, such as the guest; empty compiles it with $CC or cc.
	CHelper string
}

func (e *Env) progress(format string, args ...any) {
	if e.Progress != nil {
		e.Progress(format, args...)
	}
}

// Bench is one group of rows.
type Bench struct {
	Group string
	Run   func(ctx context.Context, e *Env) ([]Row, error)
}

// Run runs benches in order. A bench that fails adds a skipped row with
// its error, so one missing capability does not hide the others.
func Run(ctx context.Context, e *Env, benches []Bench) Report {
	rep := Report{Header: header(e.Quick)}
	if e.Accel != "" {
		rep.Header.Accel = e.Accel
	}
	start := time.Now()
	for _, b := range benches {
		if ctx.Err() != nil {
			break
		}
		e.progress("bench %s", b.Group)
		rows, err := b.Run(ctx, e)
		for _, r := range rows {
			if r.Group == "" {
				r.Group = b.Group
			}
			rep.Rows = append(rep.Rows, r)
		}
		if err != nil {
			rep.Rows = append(rep.Rows, Row{Group: b.Group, Name: "(group)", Skipped: err.Error()})
		}
	}
	rep.Header.Seconds = time.Since(start).Seconds()
	return rep
}

// header describes this machine.
func header(quick bool) Header {
	h := Header{Arch: runtime.GOARCH, Cores: runtime.NumCPU(), Go: runtime.Version(), Started: time.Now().UTC(), Quick: quick}
	h.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	h.CPU = cpuModel()
	h.IOMMU = iommuKinds("/sys/class/iommu")
	h.Accel = accel()
	return h
}

// cpuModel is /proc/cpuinfo's model name (x86) or CPU part (arm64).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	var part string
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			return strings.TrimSpace(v)
		case "CPU part":
			if part == "" {
				part = "CPU part " + strings.TrimSpace(v)
			}
		}
	}
	if part != "" {
		return part
	}
	return "unknown"
}

// iommuKinds names the IOMMU units under dir by their prefix (dmar: VT-d,
// ivhd: AMD-Vi, smmu3: SMMUv3), with counts.
func iommuKinds(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return "none"
	}
	count := map[string]int{}
	for _, e := range ents {
		kind := e.Name()
		switch {
		case strings.HasPrefix(kind, "dmar"):
			kind = "Intel VT-d"
		case strings.HasPrefix(kind, "ivhd"):
			kind = "AMD-Vi"
		case strings.HasPrefix(kind, "smmu3"):
			kind = "Arm SMMUv3"
		}
		count[kind]++
	}
	var out []string
	for k, n := range count {
		out = append(out, fmt.Sprintf("%s x%d", k, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// accel guesses what runs this machine. A QEMU guest has QEMU's DMI
// vendor; under KVM an x86 guest gets the kvm-clock, under TCG it does
// not (both set the CPU's hypervisor flag).
func accel() string {
	vendor, _ := os.ReadFile("/sys/class/dmi/id/sys_vendor")
	cpu, _ := os.ReadFile("/proc/cpuinfo")
	clocks, _ := os.ReadFile("/sys/devices/system/clocksource/clocksource0/available_clocksource")
	qemu := strings.Contains(string(vendor), "QEMU")
	switch {
	case qemu && strings.Contains(string(clocks), "kvm-clock"):
		return "kvm (QEMU guest)"
	case qemu && runtime.GOARCH == "amd64":
		return "tcg (QEMU guest)"
	case qemu:
		return "a QEMU guest"
	case strings.Contains(string(cpu), " hypervisor"):
		return "a hypervisor's guest"
	}
	return "bare metal or unknown"
}
