package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCompareRatio runs compare on a fake clock that ops advance by a
// fixed cost each: the medians and the ratio come out exact, and the
// operation count grows until a round takes the round time.
func TestCompareRatio(t *testing.T) {
	var clock time.Time
	cost := func(ns time.Duration) Op {
		return func(n int) error {
			clock = clock.Add(time.Duration(n) * ns)
			return nil
		}
	}
	tm := timing{rounds: 5, round: time.Millisecond, now: func() time.Time { return clock }}
	v, b, err := compare(tm, cost(300), cost(100))
	if err != nil || v != 300 || b != 100 {
		t.Errorf("compare: %v, %v, %v; want 300, 100", v, b, err)
	}
	failing := func(int) error { return errors.New("EIO") }
	if _, _, err := compare(tm, failing, cost(1)); err == nil {
		t.Error("a failing op: no error")
	}
}

func TestRunReportsFailuresAsSkipped(t *testing.T) {
	e := &Env{Quick: true}
	rep := Run(context.Background(), e, []Bench{
		{Group: "ok", Run: func(ctx context.Context, e *Env) ([]Row, error) {
			return []Row{ratioRow(Row{Name: "a", Subject: "s", Baseline: "b", Value: 2, Base: 1, Unit: "ns/op", Goal: 1.5})}, nil
		}},
		{Group: "broken", Run: func(ctx context.Context, e *Env) ([]Row, error) { return nil, errors.New("needs root") }},
	})
	if len(rep.Rows) != 2 || rep.Rows[0].Group != "ok" || rep.Rows[1].Skipped != "needs root" {
		t.Fatalf("rows %+v", rep.Rows)
	}
	var text, md, js bytes.Buffer
	WriteText(&text, rep)
	WriteMarkdown(&md, rep)
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), md.String()} {
		for _, want := range []string{"machine: ", "2.000", "MISSED (goal <= 1.50)", "not run: needs root"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	}
	back, err := ReadJSON(&js)
	if err != nil || len(back.Rows) != 2 || back.Rows[0].Ratio != 2 {
		t.Errorf("JSON round trip: %+v, %v", back, err)
	}
}

// TestEmulatedRows runs the emulated group quickly: every row measured, the
// table-memory rows exact (their baseline is arithmetic).
func TestEmulatedRows(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for a few seconds")
	}
	rows, err := runEmulated(context.Background(), &Env{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	for _, r := range rows {
		t.Logf("%s: %.3f (%g vs %g %s) %s", r.Name, r.Ratio, r.Value, r.Base, r.Unit, r.Note)
		if r.Ratio <= 0 || r.Value <= 0 || r.Base <= 0 {
			t.Errorf("row %q not measured: %+v", r.Name, r)
		}
	}
}

// TestDaemonRows runs the daemon group quickly against the emulated agent.
func TestDaemonRows(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for a few seconds")
	}
	rows, err := runDaemon(context.Background(), &Env{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	for _, r := range rows {
		t.Logf("%s: %.3f (%g vs %g %s) %s", r.Name, r.Ratio, r.Value, r.Base, r.Unit, r.Note)
		if r.Ratio <= 0 {
			t.Errorf("row %q not measured: %+v", r.Name, r)
		}
	}
}

func TestCheckAndUpdate(t *testing.T) {
	base := Report{Rows: []Row{{Group: "g", Name: "a", Ratio: 1.0}, {Group: "g", Name: "b", Ratio: 2.0}, {Group: "g", Name: "gone", Ratio: 1},
		{Group: "g", Name: "tail", Ratio: 0.3, Unchecked: true}, {Group: "g", Name: "loose", Ratio: 1, Margin: 2}}}
	now := Report{Rows: []Row{{Group: "g", Name: "a", Ratio: 1.2}, {Group: "g", Name: "b", Ratio: 3.5}, {Group: "g", Name: "new", Ratio: 9},
		{Group: "g", Name: "a2", Skipped: "no root"}, {Group: "g", Name: "tail", Ratio: 3, Unchecked: true}, {Group: "g", Name: "loose", Ratio: 2.9}}}
	reg, n, unlike := Check(now, base, 0.5)
	if n != 3 || len(reg) != 1 || reg[0].Name != "b" || len(unlike) != 0 {
		t.Errorf("Check: %d compared, %v, unlike %v", n, reg, unlike)
	}
	// A floor measured on a busy machine (82 us where 35 is usual) makes
	// the baseline ratio low: that row is set aside, not failed; one whose
	// floor held is compared as usual.
	base = Report{Rows: []Row{{Group: "d", Name: "p50", Value: 62, Base: 82, Unit: "us", Ratio: 62.0 / 82},
		{Group: "d", Name: "held", Value: 60, Base: 40, Unit: "us", Ratio: 1.5}}}
	now = Report{Rows: []Row{{Group: "d", Name: "p50", Value: 66, Base: 35, Unit: "us", Ratio: 66.0 / 35},
		{Group: "d", Name: "held", Value: 130, Base: 38, Unit: "us", Ratio: 130.0 / 38}}}
	reg, n, unlike = Check(now, base, 1)
	if n != 1 || len(reg) != 1 || reg[0].Name != "held" || len(unlike) != 1 || !strings.Contains(unlike[0], "d / p50: its floor moved 2.3x") {
		t.Errorf("Check with a moved floor: %d compared, %v, unlike %q", n, reg, unlike)
	}
	doc := []byte("# Benchmarks\n\nintro\n\n" + TableStart + "\nold table\n" + TableEnd + "\n\n## Reading\ntext\n")
	out, err := Update(doc, Report{Rows: []Row{{Group: "g", Name: "a", Ratio: 1.5, Value: 3, Base: 2, Unit: "ns/op"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "old table") || !strings.Contains(s, "| g | a | 1.500 |") || !strings.HasSuffix(s, TableEnd+"\n\n## Reading\ntext\n") || !strings.HasPrefix(s, "# Benchmarks\n\nintro\n") {
		t.Errorf("Update:\n%s", s)
	}
	if _, err := Update([]byte("no markers"), Report{}); err == nil {
		t.Error("Update without markers succeeded")
	}
}
