// Command iommu-agent owns the IOMMU side of device passthrough on a Linux
// host. main is thin: it wires signals and exit status around run, which
// tests call directly.
//
// Exit status follows POSIX utilities: 0 on success (and for -h, --help and
// help), 1 on an error (one line on stderr: "iommu-agent: ..."), 2 on a
// usage error (the error line, then the command's usage, on stderr),
// 128+N when signal N interrupted a command that had not finished (130 for
// Ctrl-C, as a shell reports a program SIGINT killed). acquire -- COMMAND
// exits with COMMAND's status, 126 when it cannot be run, 127 when it is
// not found.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

func main() {
	ctx, stop := signalContext()
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Geteuid())
	stop()
	os.Exit(code)
}

// signalContext ends its context at the first SIGINT, SIGTERM or SIGHUP,
// with interrupted as its cause; a later one kills the process, as users
// expect of a stuck command (a second Ctrl-C), unless a command holds
// them (holdSignals).
func signalContext() (context.Context, func()) {
	ctx, s := newSignals(context.Background(), func(sig syscall.Signal) {
		signal.Reset(sig) // back to the default action: die of it
		syscall.Kill(os.Getpid(), sig)
	})
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM)
	// Started with SIGINT or SIGHUP ignored (nohup, a script's '&'), the
	// process keeps ignoring them: Notify would catch them again.
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGHUP} {
		if !signal.Ignored(sig) {
			signal.Notify(ch, sig)
		}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				s.deliver(sig.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		s.cancel(nil)
	}
}

// signals decides what each signal main catches does: the first ends the
// context; a later one goes to the command holding signals, if one does,
// and otherwise kills the process (die).
type signals struct {
	cancel context.CancelCauseFunc
	die    func(syscall.Signal)
	mu     sync.Mutex
	seen   bool
	hold   func(syscall.Signal)
}

type signalsKey struct{}

// newSignals returns a context that deliver ends, and its signals.
func newSignals(parent context.Context, die func(syscall.Signal)) (context.Context, *signals) {
	ctx, cancel := context.WithCancelCause(parent)
	s := &signals{cancel: cancel, die: die}
	return context.WithValue(ctx, signalsKey{}, s), s
}

func (s *signals) deliver(sig syscall.Signal) {
	s.mu.Lock()
	first, hold := !s.seen, s.hold
	s.seen = true
	s.mu.Unlock()
	switch {
	case first:
		s.cancel(interrupted{sig})
	case hold != nil:
		hold(sig)
	default:
		s.die(sig)
	}
}

// holdSignals hands the signals after the first to fn, until release: a
// command that must outlive what it runs (acquire and its COMMAND) is not
// killed by a second Ctrl-C while that still runs. The first still ends
// ctx. Without main's signals in ctx (tests), it does nothing.
func holdSignals(ctx context.Context, fn func(syscall.Signal)) (release func()) {
	s, ok := ctx.Value(signalsKey{}).(*signals)
	if !ok {
		return func() {}
	}
	s.mu.Lock()
	s.hold = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
	}
}

// interrupted is the cause of main's context when a signal ended it.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return "interrupted (" + i.sig.String() + ")" }

// runMain is main without the process: it runs args and returns the exit
// status, having printed what the user should read.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, euid int) int {
	out := &outWriter{w: stdout}
	code := exitStatus(ctx, args, run(ctx, args, out, stderr), out, stderr, euid)
	if out.err != nil && code == 0 {
		// Most commands print with fmt.Fprint*, whose errors nobody
		// reads: a full disk must not pass for success.
		fmt.Fprintf(stderr, "iommu-agent: write output: %s\n", oneLine(out.err))
		return 1
	}
	return code
}

// outWriter is stdout, remembering its first write error.
type outWriter struct {
	w   io.Writer
	err error
}

func (o *outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

// file is the *os.File under w, if any: acquire gives it to its COMMAND
// as it is (a terminal stays a terminal), not a pipe copying into w.
func file(w io.Writer) (*os.File, bool) {
	if o, ok := w.(*outWriter); ok {
		w = o.w
	}
	f, ok := w.(*os.File)
	return f, ok
}

// exitStatus prints err for the user and returns the exit status for it:
// see the package comment. euid decides whether a permission error means
// "run this as root".
func exitStatus(ctx context.Context, args []string, err error, stdout, stderr io.Writer, euid int) int {
	var (
		help  *helpRequest
		usage *usageError
		exit  *childExit
		intr  interrupted
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.usage)
		return 0
	case errors.Is(err, flag.ErrHelp): // a flag set of its own printed its usage
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "iommu-agent: %s\n\n%s", oneLine(usage.err), usage.usage)
		return 2
	case errors.As(err, &exit):
		if exit.err != nil {
			fmt.Fprintf(stderr, "iommu-agent: %s\n", oneLine(exit.err))
		}
		return exit.code
	case errors.As(err, &intr), errors.Is(err, context.Canceled) && errors.As(context.Cause(ctx), &intr):
		// The command stopped for the signal (it returned ctx.Err() or
		// the cause): say that. Other errors are said as they are,
		// signal or not: serve failing as it stops must be read.
		name := "iommu-agent"
		if len(args) > 0 {
			name = args[0]
		}
		fmt.Fprintf(stderr, "iommu-agent: %s: interrupted\n", name)
		return 128 + int(intr.sig)
	}
	msg := oneLine(err)
	if len(args) > 0 && euid != 0 && errors.Is(err, fs.ErrPermission) {
		if hint := lookupCommand(args[0]).root; hint != "" {
			msg += ": needs root (" + hint + ")"
		}
	}
	fmt.Fprintf(stderr, "iommu-agent: %s\n", msg)
	return 1
}

// oneLine is err's text on one line: joined errors (a rollback that failed
// too) and kernel messages may span several.
func oneLine(err error) string {
	return strings.Join(strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' }), "; ")
}

// command is a subcommand's documentation: what help and -h print.
type command struct {
	name    string
	args    string // the positional arguments after [flags]
	maxArgs int    // positional words allowed before a "--"; -1: any
	summary string // the line in the command list
	details string // more, after the synopsis
	root    string // how to get the permission it needs, for "needs root (...)"
	// runs is set for a command that runs a COMMAND given after "--":
	// maxArgs then counts the words before it only.
	runs bool
}

// commands is every command, in the order help lists them. It is read, never
// written.
var commands = []command{
	{name: "list", summary: "IOMMU units, their iommu_groups and devices, with viability"},
	{name: "check", summary: "host readiness for passthrough, each finding with its fix; fails on any FAIL"},
	{name: "bind", args: "BDF | group N", maxArgs: 2, summary: "hand a device, or every device of an iommu_group, to vfio-pci",
		details: "All or nothing: on a failure every device gets its driver back. The drivers displaced are\n" +
			"recorded in -state, for unbind.",
		root: "run as root or with CAP_DAC_OVERRIDE"},
	{name: "unbind", args: "BDF | group N", maxArgs: 2, summary: "give devices bind took their original drivers back",
		details: "Name what bind was given: a device bound as part of a group is unbound with its group.",
		root:    "run as root or with CAP_DAC_OVERRIDE"},
	{name: "probe", summary: "show what this host's IOMMU offers through iommufd and VFIO",
		root: "run as root or with CAP_DAC_OVERRIDE"},
	{name: "sriov", args: "list | enable PF N | disable PF | set VF key=value...", maxArgs: -1,
		summary: "SR-IOV VFs: list, create, remove, configure", details: sriovUsage,
		root: "run as root or with CAP_DAC_OVERRIDE and CAP_NET_ADMIN"},
	{name: "serve", summary: "the daemon: lease devices to VMMs on a unix socket",
		root: "run as root, as the iommu-agent.service unit does"},
	{name: "leases", summary: "the agent's devices, groups and leases (a client of serve)", details: socketDoc},
	{name: "status", summary: "the agent's protocol and backend, this client as the agent sees it, its leases", details: socketDoc},
	{name: "acquire", args: "DEVICE | group N [-- COMMAND [ARG...]]", maxArgs: 2,
		summary: "lease a device or group from the agent, for COMMAND or until Ctrl-C", details: acquireDoc, runs: true},
	{name: "release", args: "LEASE", maxArgs: 1, summary: "end a lease (one kept after its client left, or any as root)", details: socketDoc},
	{name: "demo", summary: "the agent's job on an emulated IOMMU, in seconds, no root needed"},
	{name: "bench", summary: "the agent's paths against floors measured in the same run, as ratios",
		details: "Groups that need root, a device or a C compiler say so in their rows and the rest run."},
	{name: "trace", summary: "DMA map/unmap latency histograms from the kernel (eBPF)",
		root: "run as root or with CAP_BPF and CAP_PERFMON"},
	{name: "version", summary: "print the version"},
	{name: "help", args: "[COMMAND]", maxArgs: 1, summary: "this list, or a command's usage and flags"},
}

// lookupCommand returns name's documentation, or a bare one.
func lookupCommand(name string) command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return command{name: name}
}

// usage is the top-level usage: the commands.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: iommu-agent <command> [flags] [arguments]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s  %s\n", c.name, c.summary)
	}
	b.WriteString("\n`iommu-agent help COMMAND` or `iommu-agent COMMAND -h` shows a command's arguments and flags.\n")
	return b.String()
}

// usageError is a mistake in the command line: exit status 2, the error
// and the usage on stderr.
type usageError struct {
	err   error
	usage string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// helpRequest is -h or help: the usage on stdout, exit status 0.
type helpRequest struct{ usage string }

func (e *helpRequest) Error() string { return "help requested" }
func (e *helpRequest) Unwrap() error { return flag.ErrHelp }

// flagSet is a command's flags with the conventions every command shares:
// flags may come before, between or after the positional words (until a
// "--", after which everything is a word); -h and --help are a
// helpRequest; a bad flag, a bad value or too many words is a usageError.
// Nothing is printed here: exitStatus prints.
type flagSet struct {
	*flag.FlagSet
	cmd   command
	words []string // positional words before "--"
	after []string // the words after "--"; nil without one
	dash  bool     // a "--" was given
	// required names the flags Parse refuses empty: a path that a
	// script's unset variable emptied must not fall back to a default.
	required []string
}

// newFlagSet returns the flag set of the command name, documented in
// commands.
func newFlagSet(name string) *flagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	fl.Usage = func() {}
	return &flagSet{FlagSet: fl, cmd: lookupCommand(name)}
}

// Parse parses args; see flagSet.
func (f *flagSet) Parse(args []string) error {
	before, after, dash := f.splitDashes(args)
	f.words, f.after, f.dash = nil, after, dash
	for rest := before; ; {
		if err := f.FlagSet.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return &helpRequest{usage: f.Usage()}
			}
			return f.usageError(err)
		}
		if rest = f.FlagSet.Args(); len(rest) == 0 {
			break
		}
		f.words, rest = append(f.words, rest[0]), rest[1:]
		// A negative number is a word (group -1), for the command to
		// refuse in its own terms: no flag is named by digits.
		for len(rest) > 0 && negativeNumber(rest[0]) {
			f.words, rest = append(f.words, rest[0]), rest[1:]
		}
	}
	if err := f.nonEmpty(f.required...); err != nil {
		return err
	}
	words := f.Args()
	if f.cmd.runs {
		words = f.words
	}
	if max := f.cmd.maxArgs; max >= 0 && len(words) > max {
		return f.usageErrorf("unexpected argument %q", words[max])
	}
	return nil
}

// nonEmpty is a usage error naming the first of the flags given as "".
func (f *flagSet) nonEmpty(names ...string) error {
	for _, n := range names {
		if fl := f.Lookup(n); fl != nil && fl.Value.String() == "" {
			return f.usageErrorf("-%s is empty", n)
		}
	}
	return nil
}

// negativeNumber reports a word such as -1.
func negativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// splitDashes splits args at the first "--" that is not a flag's value.
func (f *flagSet) splitDashes(args []string) (before, after []string, dash bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args[:i], append([]string{}, args[i+1:]...), true
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if fl := f.Lookup(name); fl != nil {
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				i++ // its value, whatever it looks like
			}
		}
	}
	return args, nil, false
}

// Args returns the positional words, those after a "--" included.
func (f *flagSet) Args() []string { return append(append([]string{}, f.words...), f.after...) }

// NArg is len(Args()).
func (f *flagSet) NArg() int { return len(f.words) + len(f.after) }

// Arg returns Args()[i], or "".
func (f *flagSet) Arg(i int) string {
	if a := f.Args(); i < len(a) {
		return a[i]
	}
	return ""
}

// Usage is the command's usage: synopsis, details, flags.
func (f *flagSet) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: iommu-agent %s [flags]", f.cmd.name)
	if f.cmd.args != "" {
		b.WriteString(" " + f.cmd.args)
	}
	b.WriteString("\n")
	if f.cmd.summary != "" {
		b.WriteString("\n" + strings.ToUpper(f.cmd.summary[:1]) + f.cmd.summary[1:] + ".\n")
	}
	if f.cmd.details != "" {
		b.WriteString("\n" + strings.TrimRight(f.cmd.details, "\n") + "\n")
	}
	var flags bytes.Buffer
	f.SetOutput(&flags)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
	if flags.Len() > 0 {
		b.WriteString("\nflags:\n")
		b.Write(flags.Bytes())
	}
	return b.String()
}

// usageError wraps err as a usage error of this command.
func (f *flagSet) usageError(err error) error {
	return &usageError{err: fmt.Errorf("%s: %w", f.cmd.name, err), usage: f.Usage()}
}

// usageErrorf is a usage error of this command with a message of its own.
func (f *flagSet) usageErrorf(format string, a ...any) error {
	return f.usageError(fmt.Errorf(format, a...))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{err: errors.New("no command"), usage: usage()}
	}
	switch args[0] {
	case "list":
		return list(ctx, args[1:], stdout)
	case "check":
		return check(ctx, args[1:], stdout)
	case "bind", "unbind":
		return bindCmd(ctx, args[0], args[1:], stdout)
	case "probe":
		return probe(ctx, args[1:], stdout)
	case "sriov":
		return sriovCmd(ctx, args[1:], stdout, sriovDeps{})
	case "serve":
		return serve(ctx, args[1:], stderr, nil)
	case "leases":
		return leasesCmd(ctx, args[1:], stdout, os.Getenv)
	case "status":
		return statusCmd(ctx, args[1:], stdout, os.Getenv)
	case "acquire":
		return acquireCmd(ctx, args[1:], stdout, stderr, os.Getenv)
	case "release":
		return releaseCmd(ctx, args[1:], stdout, os.Getenv)
	case "demo":
		return demo(ctx, args[1:], stdout)
	case "bench":
		return benchCmd(ctx, args[1:], stdout, stderr)
	case "trace":
		return trace(ctx, args[1:], stdout, stderr)
	case "version":
		fl := newFlagSet("version")
		if err := fl.Parse(args[1:]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "-help", "--help":
		fl := newFlagSet("help")
		if err := fl.Parse(args[1:]); err != nil {
			return err
		}
		if fl.NArg() == 0 || fl.Arg(0) == "help" {
			return &helpRequest{usage: usage()}
		}
		if c := lookupCommand(fl.Arg(0)); c.summary == "" {
			return fl.usageErrorf("unknown command %q", fl.Arg(0))
		}
		// The command's own -h: its flags are defined where it runs.
		return run(ctx, []string{fl.Arg(0), "-h"}, stdout, stderr)
	default:
		return &usageError{err: fmt.Errorf("unknown command %q", args[0]), usage: usage()}
	}
}
