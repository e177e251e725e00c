package vm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// BootRecord is one harness run's line in a results file. `make guest`
// boots the guest several times over several lanes, one process each; every
// run appends its record to the same file, and Summarize adds them up per
// lane at the end.
type BootRecord struct {
	Lane    string  `json:"lane"`
	Devices string  `json:"devices"`
	Modules Variant `json:"modules"`
	Passed  int     `json:"passed"`
	Failed  int     `json:"failed"`
	Skipped int     `json:"skipped"`
	// Seconds is the run's wall time: downloads, builds, boot and tests.
	Seconds float64 `json:"seconds,omitempty"`
}

// LaneCounts is one lane's counts summed over its boots.
type LaneCounts struct {
	Lane    string
	Boots   int
	Seconds float64 // the boots' wall times added up
	Counts
}

// CountsLine is the harness's result line: "hwtests: N passed, M failed",
// or "hwtests[lane]: ..." when lane is set.
func CountsLine(lane string, c Counts) string {
	name := "hwtests"
	if lane != "" {
		name += "[" + lane + "]"
	}
	return fmt.Sprintf("%s: %d passed, %d failed", name, c.Passed, c.Failed)
}

// AppendResult appends r to the results file at path as one JSON line. The
// file is opened O_APPEND and the line goes out in one write, so runs that
// share the file never interleave their lines.
func AppendResult(path string, r BootRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	return errors.Join(err, f.Close())
}

// ReadResults parses a results file's lines. A line that is not a record
// is an error, not skipped: a summary must not quietly leave a boot out.
func ReadResults(r io.Reader) ([]BootRecord, error) {
	var recs []BootRecord
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var rec BootRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if rec.Lane == "" {
			return nil, fmt.Errorf("line %d: no lane", n)
		}
		recs = append(recs, rec)
	}
	return recs, sc.Err()
}

// SumByLane adds up the records per lane, lanes in the order they first
// appear, and over all of them.
func SumByLane(recs []BootRecord) ([]LaneCounts, Counts) {
	var (
		lanes []LaneCounts
		index = map[string]int{}
		total Counts
	)
	for _, r := range recs {
		c := Counts{Passed: r.Passed, Failed: r.Failed, Skipped: r.Skipped}
		i, ok := index[r.Lane]
		if !ok {
			i = len(lanes)
			index[r.Lane] = i
			lanes = append(lanes, LaneCounts{Lane: r.Lane})
		}
		lanes[i].Boots++
		lanes[i].Seconds += r.Seconds
		lanes[i].Add(c)
		total.Add(c)
	}
	return lanes, total
}

// Summarize reads the results file at path and writes each lane's boots
// and time, then one CountsLine per lane and the total over all lanes. It
// fails when the file is missing or holds no record (no boot reported:
// nothing passed) and when any test failed.
func Summarize(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	recs, err := ReadResults(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("results %s: %w", path, err)
	}
	if len(recs) == 0 {
		return fmt.Errorf("results %s: no boot recorded", path)
	}
	lanes, total := SumByLane(recs)
	for _, l := range lanes {
		fmt.Fprintf(w, "hwtests[%s] time: %d boots in %s\n", l.Lane, l.Boots,
			time.Duration(l.Seconds*float64(time.Second)).Round(time.Second))
	}
	for _, l := range lanes {
		fmt.Fprintln(w, CountsLine(l.Lane, l.Counts))
	}
	fmt.Fprintln(w, CountsLine("", total))
	if total.Failed > 0 {
		return fmt.Errorf("%d tests failed", total.Failed)
	}
	return nil
}

// lanePrefixer writes every line with its lane's name in front, so a test
// result names the lane it ran in even when lanes run side by side and
// their output interleaves: "[arm64-smmuv3] --- PASS: TestDMAFault (0.31s)".
type lanePrefixer struct {
	w       io.Writer
	prefix  []byte
	midLine bool
}

func newLanePrefixer(w io.Writer, lane string) *lanePrefixer {
	return &lanePrefixer{w: w, prefix: []byte("[" + lane + "] ")}
}

func (p *lanePrefixer) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !p.midLine {
			out = append(out, p.prefix...)
			p.midLine = true
		}
		out = append(out, c)
		if c == '\n' {
			p.midLine = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
