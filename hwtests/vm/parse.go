package vm

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

// Counts are test results as go test -v prints them: top-level tests and
// subtests alike.
type Counts struct {
	Passed, Failed, Skipped int
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Passed += o.Passed
	c.Failed += o.Failed
	c.Skipped += o.Skipped
}

// BinaryResult is one test binary's outcome.
type BinaryResult struct {
	Name    string
	Exit    int
	Elapsed string
	Ended   bool // its end frame arrived
	Counts
}

// StreamResult is what the test stream said.
type StreamResult struct {
	Counts
	Binaries    []BinaryResult
	InitSeen    bool   // /init's first frame arrived (the kernel booted)
	Verdict     string // "" when none arrived
	InitErrors  []string
	Problems    []string // protocol violations: cut-off output, unknown frames
	FailedNames []string // tests and binaries counted as failed
}

// Pass reports whether the guest ran everything and all passed.
func (r StreamResult) Pass() bool {
	return r.Failed == 0 && r.Verdict == "pass" && len(r.Problems) == 0 && len(r.InitErrors) == 0
}

// countLine updates c for one line of go test -v output ("--- PASS: X",
// indented for subtests) and returns the name of a failed test, if the
// line reports one.
func countLine(c *Counts, line string) (failed string) {
	rest := strings.TrimLeft(line, " \t")
	for _, r := range []struct {
		prefix string
		n      *int
	}{{"--- PASS: ", &c.Passed}, {"--- FAIL: ", &c.Failed}, {"--- SKIP: ", &c.Skipped}} {
		name, ok := strings.CutPrefix(rest, r.prefix)
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		if name == "" {
			return ""
		}
		*r.n++
		if r.n == &c.Failed {
			return name
		}
		return ""
	}
	return ""
}

// Parser turns the guest's framed test stream into go test -v output on
// out and counts results. Feed it lines with Line (or a reader with
// Consume), then call Finish.
type Parser struct {
	out   io.Writer
	log   *slog.Logger
	tests []wire.Test
	kmsg  bool
	// OnFrame, if set, sees every frame as it arrives (phase timing).
	OnFrame func(wire.Frame)

	cur     *BinaryResult
	started map[string]bool
	res     StreamResult
}

// NewParser returns a parser expecting the manifest's tests. With kmsg
// set, only lines carrying wire.KmsgTag belong to the stream; the rest is
// kernel console output.
func NewParser(out io.Writer, log *slog.Logger, tests []wire.Test, kmsg bool) *Parser {
	return &Parser{out: out, log: log, tests: tests, kmsg: kmsg, started: map[string]bool{}}
}

// Consume feeds every line of r to the parser.
func (p *Parser) Consume(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			p.Line(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Line handles one line of the stream.
func (p *Parser) Line(line string) {
	line = strings.TrimRight(line, "\r\n")
	if p.kmsg {
		i := strings.Index(line, wire.KmsgTag)
		if i < 0 {
			return // kernel console output; it is in console.log
		}
		line = line[i+len(wire.KmsgTag):]
	}
	f, isFrame, err := wire.Parse(line)
	if err != nil {
		p.problem(err.Error())
		p.output(line)
		return
	}
	if !isFrame {
		p.output(line)
		return
	}
	if p.OnFrame != nil {
		p.OnFrame(f)
	}
	switch f.Kind {
	case wire.KindInit:
		p.res.InitSeen = true
		p.log.Info("guest /init started", "info", f.Text)
	case wire.KindLog:
		p.log.Debug("guest: " + f.Text)
	case wire.KindError:
		p.res.InitErrors = append(p.res.InitErrors, f.Text)
		p.log.Error("guest /init", "err", f.Text)
	case wire.KindBegin:
		if p.cur != nil {
			p.cutOff("next binary began before its end frame")
		}
		p.started[f.Name] = true
		p.cur = &BinaryResult{Name: f.Name}
	case wire.KindEnd:
		if p.cur == nil || p.cur.Name != f.Name {
			p.problem(fmt.Sprintf("end frame for %s without its begin", f.Name))
			return
		}
		b := p.cur
		b.Ended, b.Exit, b.Elapsed = true, f.Exit, fmt.Sprintf("%.3fs", f.Elapsed.Seconds())
		if f.Exit != 0 && b.Failed == 0 {
			// A crash, os.Exit or -test.timeout panic: no --- FAIL line
			// of its own, so the binary counts as one failure.
			p.fail(fmt.Sprintf("--- FAIL: %s (exit status %d)", p.binaryName(b.Name), f.Exit))
		}
		p.finishBinary()
	case wire.KindVerdict:
		p.res.Verdict = f.Text
		if p.cur != nil {
			p.cutOff("verdict arrived before its end frame")
		}
	}
}

// output passes one line of test output through and counts it.
func (p *Parser) output(line string) {
	fmt.Fprintln(p.out, line)
	if p.cur == nil {
		return
	}
	if name := countLine(&p.cur.Counts, line); name != "" {
		p.res.FailedNames = append(p.res.FailedNames, name)
	}
}

// fail prints a synthesized --- FAIL line and counts it for the current
// binary.
func (p *Parser) fail(line string) {
	p.output(line)
}

func (p *Parser) finishBinary() {
	b := p.cur
	p.cur = nil
	status := "ok  "
	if b.Failed > 0 || b.Exit != 0 || !b.Ended {
		status = "FAIL"
	}
	el := b.Elapsed
	if el == "" {
		el = "?"
	}
	fmt.Fprintf(p.out, "%s\t%s\t%s\n", status, b.Name, el)
	p.res.Binaries = append(p.res.Binaries, *b)
	p.res.Counts.Add(b.Counts)
}

// cutOff ends the current binary as failed: its output stopped without an
// end frame (guest crash, hang killed by the deadline, /init panic).
func (p *Parser) cutOff(why string) {
	p.problem(fmt.Sprintf("%s: %s", p.cur.Name, why))
	p.fail(fmt.Sprintf("--- FAIL: %s (no end frame: %s)", p.binaryName(p.cur.Name), why))
	p.finishBinary()
}

func (p *Parser) problem(s string) {
	p.res.Problems = append(p.res.Problems, s)
}

// binaryName names a binary in synthesized failures: its file name.
func (p *Parser) binaryName(name string) string {
	for _, t := range p.tests {
		if t.Name == name {
			return path.Base(t.Path)
		}
	}
	return name
}

// Finish closes the stream: a binary still open, binaries that never
// started and a missing verdict all count as failures or problems.
func (p *Parser) Finish() StreamResult {
	if p.cur != nil {
		p.cutOff("guest output ended")
	}
	for _, t := range p.tests {
		if p.started[t.Name] {
			continue
		}
		p.cur = &BinaryResult{Name: t.Name}
		p.fail(fmt.Sprintf("--- FAIL: %s (never started)", path.Base(t.Path)))
		p.finishBinary()
	}
	if p.res.Verdict == "" {
		p.problem("no verdict from /init: the guest crashed, hung or was killed")
	}
	return p.res
}
