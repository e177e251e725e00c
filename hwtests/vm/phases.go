package vm

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// phases records how long each step took. Steps may run concurrently
// (the Go build overlaps the kernel download), so durations can add up to
// more than the wall time.
type phases struct {
	mu   sync.Mutex
	list []Phase
	now  func() time.Time
}

// Phase is one timed step.
type Phase struct {
	Name string
	Dur  time.Duration
}

func newPhases() *phases { return &phases{now: time.Now} }

// start begins a phase; calling the returned func ends it. Ending twice
// records once.
func (p *phases) start(name string) func() {
	t0 := p.now()
	var once sync.Once
	return func() {
		once.Do(func() { p.add(name, p.now().Sub(t0)) })
	}
}

func (p *phases) add(name string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, Phase{Name: name, Dur: d})
}

// List returns the recorded phases in the order they ended.
func (p *phases) List() []Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Phase(nil), p.list...)
}

// WriteTimings prints one line per phase.
func WriteTimings(w io.Writer, list []Phase) {
	for _, ph := range list {
		fmt.Fprintf(w, "hwtests: phase %-16s %8.2fs\n", ph.Name, ph.Dur.Seconds())
	}
}
