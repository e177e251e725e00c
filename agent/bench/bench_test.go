package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestCompareRatio measures two loops whose costs differ by a known
// factor: the ratio comes out near it whatever the machine's speed.
func TestCompareRatio(t *testing.T) {
	work := func(k int) Op {
		return func(n int) error {
			x := 0
			for i := range n * k * 64 {
				x += i ^ (x >> 3)
			}
			sink = x
			return nil
		}
	}
	v, b, err := compare(timing{rounds: 5, round: 5_000_000}, work(3), work(1))
	if err != nil {
		t.Fatal(err)
	}
	if r := v / b; r < 2 || r > 4.5 {
		t.Errorf("ratio of a 3x loop to a 1x loop: %.2f (%.1f / %.1f ns)", r, v, b)
	}
}

var sink int

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
