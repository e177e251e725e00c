package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes rep indented.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// ReadJSON reads a report WriteJSON wrote.
func ReadJSON(r io.Reader) (Report, error) {
	var rep Report
	err := json.NewDecoder(r).Decode(&rep)
	return rep, err
}

// headerLines describes where the run was.
func headerLines(h Header) []string {
	mode := "full"
	if h.Quick {
		mode = "quick"
	}
	return []string{
		fmt.Sprintf("machine: %s, %s, %d cores (%s); kernel %s", h.CPU, h.Arch, h.Cores, h.Accel, h.Kernel),
		fmt.Sprintf("IOMMU: %s; %s; %s run of %.1f s, started %s", h.IOMMU, h.Go, mode, h.Seconds, h.Started.Format("2006-01-02 15:04 UTC")),
	}
}

// verdict is how a row stands against its goal.
func verdict(r Row) string {
	if r.Skipped != "" {
		return "not run: " + r.Skipped
	}
	met, has := r.Met()
	switch {
	case !has:
		return ""
	case met:
		return fmt.Sprintf("met (<= %.2f)", r.Goal)
	}
	return fmt.Sprintf("MISSED (goal <= %.2f)", r.Goal)
}

func amount(v float64, unit string) string {
	if unit == "ns/op" {
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.2f s", v/1e9)
		case v >= 1e6:
			return fmt.Sprintf("%.2f ms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.2f us", v/1e3)
		}
		return fmt.Sprintf("%.1f ns", v)
	}
	if unit == "bytes" {
		switch {
		case v >= 1<<20:
			return fmt.Sprintf("%.2f MiB", v/(1<<20))
		case v >= 1<<10:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		}
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.4g %s", v, unit)
}

// WriteText writes rep as an aligned table.
func WriteText(w io.Writer, rep Report) error {
	for _, h := range append([]Header{rep.Header}, rep.Others...) {
		for _, l := range headerLines(h) {
			fmt.Fprintln(w, l)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\ngroup\trow\tratio\tsubject\tbaseline\tgoal")
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t\t\t%s\n", r.Group, r.Name, verdict(r))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s: %s\t%s: %s\t%s\n", r.Group, r.Name, r.Ratio,
			r.Subject, amount(r.Value, r.Unit), r.Baseline, amount(r.Base, r.Unit), verdict(r))
	}
	return tw.Flush()
}

// WriteMarkdown writes rep as the table of docs/benchmarks.md, with the
// notes under it.
func WriteMarkdown(w io.Writer, rep Report) error {
	for _, h := range append([]Header{rep.Header}, rep.Others...) {
		for _, l := range headerLines(h) {
			fmt.Fprintf(w, "%s  \n", l)
		}
	}
	fmt.Fprintln(w, "\n| group | row | ratio | subject | baseline | goal |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	var notes []string // in first appearance order
	rowsOf := map[string][]string{}
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "| %s | %s | - | | | %s |\n", cell(r.Group), cell(r.Name), cell(verdict(r)))
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %.3f | %s: %s | %s: %s | %s |\n", cell(r.Group), cell(r.Name), r.Ratio,
			cell(r.Subject), amount(r.Value, r.Unit), cell(r.Baseline), amount(r.Base, r.Unit), cell(verdict(r)))
		if r.Note != "" {
			if rowsOf[r.Note] == nil {
				notes = append(notes, r.Note)
			}
			rowsOf[r.Note] = append(rowsOf[r.Note], r.Group+", "+r.Name)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s: %s\n", strings.Join(rowsOf[n], "; "), n)
		}
	}
	return nil
}

// Merge appends b's rows to a. When b ran on another machine or kernel,
// its header becomes a's Others and its rows' groups name where they ran.
func Merge(a, b Report) Report {
	same := a.Header.Kernel == b.Header.Kernel && a.Header.Arch == b.Header.Arch && a.Header.Accel == b.Header.Accel
	for _, r := range b.Rows {
		if !same {
			r.Group += " (" + b.Header.Arch + ", " + b.Header.Kernel + ")"
		}
		a.Rows = append(a.Rows, r)
	}
	if !same {
		a.Others = append(a.Others, b.Header)
	}
	return a
}
