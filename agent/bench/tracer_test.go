//go:build linux

package bench

import (
	"context"
	"strings"
	"testing"
)

func TestUnitOf(t *testing.T) {
	for _, c := range []struct {
		spec  string
		unit  string
		scale float64
		bad   bool
	}{
		{"", "ns/op", 1, false},
		{"shift=0,sleep=off", "instructions/op", 1, false},
		{"sleep=off,shift=3", "instructions/op", 8, false},
		{"2", "instructions/op", 4, false},
		{"sleep=off", "instructions/op", 1, false},
		{"shift=auto", "", 0, true},
		{"shift=-1", "", 0, true},
	} {
		u, err := unitOf(c.spec)
		if (err != nil) != c.bad || u.name != c.unit || u.scale != c.scale {
			t.Errorf("unitOf(%q) = %+v, %v; want %s, %g, error %v", c.spec, u, err, c.unit, c.scale, c.bad)
		}
	}
}

// TestTracerNeedsDevice: without a device (or root, or BPF) the group
// says what it needs instead of measuring; Run turns that into a skipped row.
func TestTracerNeedsDevice(t *testing.T) {
	_, err := Tracer(TracerOptions{}).Run(context.Background(), &Env{Quick: true})
	if err == nil {
		t.Fatal("ran without a device")
	}
	if !strings.Contains(err.Error(), "root") && !strings.Contains(err.Error(), "-devices") {
		t.Errorf("error %q names neither root nor -devices", err)
	}
}

// TestCostRowUnresolved: a cost the noise swallowed is no ratio, so it
// cannot meet a goal.
func TestCostRowUnresolved(t *testing.T) {
	for _, c := range []struct{ v, b float64 }{{-12, 20}, {30, 0}, {30, -5}} {
		r := costRow(Row{Name: "x", Value: c.v, Base: c.b, Unit: "ns/op", Goal: 1.5})
		if met, has := r.Met(); met || has || !strings.HasPrefix(r.Skipped, unresolved) {
			t.Errorf("costRow(%g, %g) = %+v: met %v, has goal %v", c.v, c.b, r, met, has)
		}
	}
	r := costRow(Row{Name: "x", Value: 30, Base: 20, Unit: "ns/op", Goal: 1.5})
	if met, has := r.Met(); !met || !has || r.Ratio != 1.5 {
		t.Errorf("costRow(30, 20) = %+v", r)
	}
}
