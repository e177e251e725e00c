package latency

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

const barWidth = 52 // bpftrace's

// Print writes s like bpftrace's hist(): per operation, summed over
// processes, one line per log2 bucket between the first and the last
// non-empty one, labelled in microseconds ([lo, hi) of the nanosecond
// bucket, so the labels are powers of two of ns shown in µs). The source
// comes first, so emulated numbers are never taken for a kernel's.
func Print(w io.Writer, s Snapshot) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "source: %s\n", orDefault(s.Source, "unknown"))
	byOp := s.ByOp()
	if len(byOp) == 0 {
		fmt.Fprintln(bw, "no operations seen")
	}
	for _, op := range sortedOps(byOp) {
		h := byOp[op]
		printHist(bw, op, &h)
	}
	if len(s.Slow) > 0 {
		fmt.Fprintln(bw, "\nslowest operations:")
		for _, e := range s.Slow {
			fmt.Fprintf(bw, "  %-16s %10s %10d B  pid %d (%s)\n", e.Op, time.Duration(e.Ns), e.Bytes, e.PID, e.Comm)
		}
	}
	if len(s.Missing) > 0 {
		fmt.Fprintln(bw, "\nnot traced:")
		for _, m := range s.Missing {
			fmt.Fprintf(bw, "  %s\n", m)
		}
	}
	return bw.Flush()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sortedOps gives the known operations in Ops order, then any others by name.
func sortedOps(m map[Op]Hist) []Op {
	known := Ops()
	var out, extra []Op
	for _, op := range known {
		if _, ok := m[op]; ok {
			out = append(out, op)
		}
	}
	for op := range m {
		if !slices.Contains(known, op) {
			extra = append(extra, op)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

func printHist(w io.Writer, op Op, h *Hist) {
	fmt.Fprintf(w, "\n@%s_usecs: count %d, mean %s, p50 %s, p99 %s, bytes %d\n",
		op, h.Count, us(float64(h.Mean())), us(float64(h.Quantile(0.5))), us(float64(h.Quantile(0.99))), h.Bytes)
	first, last := -1, -1
	var peak uint64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
		peak = max(peak, c)
	}
	if first < 0 {
		return
	}
	for i := first; i <= last; i++ {
		lo, hi := BucketBounds(i)
		label := "[" + usNum(lo) + ", " + usNum(hi) + ")"
		n := 0
		if peak > 0 {
			n = int(h.Counts[i] * barWidth / peak)
			if h.Counts[i] > 0 && n == 0 {
				n = 1
			}
		}
		fmt.Fprintf(w, "%-20s %8d |%-*s|\n", label, h.Counts[i], barWidth, strings.Repeat("@", n))
	}
}

// us formats ns as microseconds with a unit.
func us(ns float64) string { return usNum(ns) + "µs" }

// usNum formats ns as microseconds with three significant digits.
func usNum(ns float64) string {
	u := ns / 1000
	switch {
	case u == 0:
		return "0"
	case u < 0.01:
		return strconv.FormatFloat(u, 'f', 3, 64)
	case u < 10:
		return strconv.FormatFloat(u, 'f', 2, 64)
	case u < 100:
		return strconv.FormatFloat(u, 'f', 1, 64)
	default:
		return strconv.FormatFloat(u, 'f', 0, 64)
	}
}
