package bench

import (
	"fmt"
	"slices"
	"time"
)

// Op runs n operations of one kind; it returns an error if any failed.
type Op func(n int) error

// timing shapes a Compare: rounds of each side, alternated, each about
// round long.
type timing struct {
	rounds int
	round  time.Duration
	now    func() time.Time // time.Now when nil; tests pass a fake
}

func (e *Env) timing() timing {
	if e.Quick {
		return timing{rounds: 7, round: 20 * time.Millisecond}
	}
	return timing{rounds: 9, round: 50 * time.Millisecond}
}

// timedOp runs n operations and says how long they took by its own clock:
// the C side of go-vs-c runs in its own process and reports its loop's
// time, so the pipe round trip that starts each round is not counted.
type timedOp func(n int) (time.Duration, error)

// clocked times op with t's clock.
func (t timing) clocked(op Op) timedOp {
	return func(n int) (time.Duration, error) { return t.timed(op, n) }
}

// compare is compareTimed for ops timed by t's clock.
func compare(t timing, subject, baseline Op) (value, base float64, err error) {
	return compareTimed(t, t.clocked(subject), t.clocked(baseline))
}

// compareTimed measures subject and baseline in alternating rounds of the
// same operation count, so noise on a shared machine hits both alike, and
// returns each one's median time per operation in nanoseconds. The count
// is grown until the slower side's round takes about t.round.
func compareTimed(t timing, subject, baseline timedOp) (value, base float64, err error) {
	n := 1
	for {
		d, err := subject(n)
		if err != nil {
			return 0, 0, err
		}
		db, err := baseline(n)
		if err != nil {
			return 0, 0, err
		}
		slow := max(d, db)
		if slow >= t.round || n >= 1<<30 {
			break
		}
		if slow <= 0 {
			n *= 100
			continue
		}
		grow := int(float64(n) * float64(t.round) / float64(slow) * 1.2)
		n = max(n+1, min(grow, 100*n))
	}
	var vs, bs []float64
	for i := range t.rounds {
		// Alternate which side goes first, so neither always warms the
		// other's caches.
		first, second := subject, baseline
		if i%2 == 1 {
			first, second = baseline, subject
		}
		d1, err := first(n)
		if err != nil {
			return 0, 0, err
		}
		d2, err := second(n)
		if err != nil {
			return 0, 0, err
		}
		if i%2 == 1 {
			d1, d2 = d2, d1
		}
		vs = append(vs, float64(d1.Nanoseconds())/float64(n))
		bs = append(bs, float64(d2.Nanoseconds())/float64(n))
	}
	return median(vs), median(bs), nil
}

func (t timing) timed(op Op, n int) (time.Duration, error) {
	now := t.now
	if now == nil {
		now = time.Now
	}
	start := now()
	if err := op(n); err != nil {
		return 0, err
	}
	return now().Sub(start), nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// timeRow compares subject with baseline into a row in ns/op.
func (e *Env) timeRow(r Row, subject, baseline Op) (Row, error) {
	e.progress("  %s: %s vs %s", r.Name, r.Subject, r.Baseline)
	v, b, err := compare(e.timing(), subject, baseline)
	if err != nil {
		return r, fmt.Errorf("%s: %w", r.Name, err)
	}
	r.Value, r.Base, r.Unit = v, b, "ns/op"
	return ratioRow(r), nil
}
