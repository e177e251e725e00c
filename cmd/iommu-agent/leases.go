package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
)

// The client commands: leases, status, acquire and release talk to a
// running `iommu-agent serve` over its socket, as a VMM would, and need no
// privilege of their own: the agent's policy decides.

const socketDoc = `A client of iommu-agent serve, over its socket: -socket, else $IOMMU_AGENT_SOCKET, else
/run/iommu-agent/agent.sock. It needs no root: the agent's policy decides what this user may do.`

const acquireDoc = socketDoc + `

A lease is a whole iommu_group (DEVICE must be alone in its group; else name the group) and lasts as
long as this command's connection to the agent: broker leases always end with it, fds leases unless
the policy's keep_on_disconnect keeps them (then release ends them).

With -- COMMAND, acquire runs COMMAND holding the lease and releases it when COMMAND exits; its exit
status is COMMAND's (126: it could not be run, 127: not found). SIGTERM is passed on to COMMAND
(Ctrl-C and a hangup reach it from the terminal), and acquire waits for it to exit, whatever signals
follow: the lease outlives COMMAND. In mode fds COMMAND inherits the iommufd as fd 3 and each
device's VFIO cdev after it (4, 5, ...). In COMMAND's arguments, these placeholders are replaced:
  {iommufd}             the iommufd's fd number (mode fds)
  {device0}, {device1}  each device's VFIO cdev fd number, in the group's order (mode fds)
  {lease}, {group}      the lease ID and the iommu_group number
and its environment has IOMMU_AGENT_LEASE, IOMMU_AGENT_GROUP, IOMMU_AGENT_DEVICES (comma-separated),
IOMMU_AGENT_IOMMUFD_FD and IOMMU_AGENT_DEVICE_FDS (comma-separated, in IOMMU_AGENT_DEVICES' order).
For example, QEMU as an unprivileged user:
  iommu-agent acquire group 4 -- qemu-system-x86_64 ... \
      -object iommufd,id=i0,fd={iommufd} -device vfio-pci,iommufd=i0,fd={device0}

Without a COMMAND, acquire prints the lease and holds it until SIGINT (Ctrl-C), SIGTERM or SIGHUP,
then releases it and exits 0; should the agent go away meanwhile, it says so and exits 1. A client
gives up on an agent that has not answered its hello within 10 seconds.`

// clientFlags are the flags every client command has.
type clientFlags struct {
	socket string
	json   bool
}

// addClientFlags defines them on fl; fl.Parse refuses an empty -socket.
func addClientFlags(fl *flagSet, getenv func(string) string, withJSON bool) *clientFlags {
	var c clientFlags
	fl.StringVar(&c.socket, "socket", client.SocketPath(getenv), "the agent's socket `PATH` ($"+client.SocketEnv+" sets the default)")
	fl.required = append(fl.required, "socket")
	if withJSON {
		fl.BoolVar(&c.json, "json", false, "print JSON")
	}
	return &c
}

// interruptible runs fn, calls on c, cutting them short when ctx ends (a
// signal): then it returns ctx's cause, which exitStatus says as
// "interrupted", not the broken call's error.
func interruptible(ctx context.Context, c *client.Client, fn func() error) error {
	stop := c.Interrupt(ctx)
	err := fn()
	stop()
	if err != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// explain turns the agent's error codes into one line naming what to do.
func explain(op string, err error) error {
	var pe *proto.Error
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch pe.Code {
	case proto.CodeDenied:
		return &agentError{op: op, text: "denied by the agent's policy: " + pe.Message, err: err}
	case proto.CodeNotViable:
		return &agentError{op: op, text: pe.Message + " (lease the whole group: acquire group N)", err: err}
	case proto.CodeVersion:
		return &agentError{op: op, text: "the agent speaks another protocol version: " + pe.Message, err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// agentError is an error of the agent said in other words; errors.Is still
// matches its code (proto.ErrDenied).
type agentError struct {
	op, text string
	err      error
}

func (e *agentError) Error() string { return e.op + ": " + e.text }
func (e *agentError) Unwrap() error { return e.err }

// LeasesOutput is leases --json's output: the agent's view, as list and
// status give it (leases are this user's, every one for root).
type LeasesOutput struct {
	Socket  string         `json:"socket"`
	Backend string         `json:"backend"`
	Devices []proto.Device `json:"devices"`
	Groups  []proto.Group  `json:"groups"`
	Leases  []proto.Lease  `json:"leases"`
}

func leasesCmd(ctx context.Context, args []string, w io.Writer, getenv func(string) string) error {
	fl := newFlagSet("leases")
	cf := addClientFlags(fl, getenv, true)
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := client.Connect(ctx, cf.socket, client.ConnectTimeout)
	if err != nil {
		return fmt.Errorf("leases: %w", err)
	}
	defer c.Close()
	var (
		devs   []proto.Device
		groups []proto.Group
	)
	if err := interruptible(ctx, c, func() (err error) { devs, groups, err = c.List(); return err }); err != nil {
		return explain("leases: list", err)
	}
	var leases []proto.Lease
	if err := interruptible(ctx, c, func() (err error) { leases, err = c.Status(); return err }); err != nil {
		return explain("leases: status", err)
	}
	slices.SortFunc(groups, func(a, b proto.Group) int { return a.Number - b.Number })
	sortLeases(leases)
	out := LeasesOutput{Socket: cf.socket, Backend: c.Hello.Backend, Devices: emptyIfNil(devs), Groups: emptyIfNil(groups), Leases: emptyIfNil(leases)}
	if cf.json {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(out)
	}
	byID := map[string]proto.Lease{}
	for _, l := range leases {
		byID[l.ID] = l
	}
	byBDF := map[string]proto.Device{}
	for _, d := range devs {
		byBDF[d.BDF] = d
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tDEVICE\tID\tDRIVER\tSTATE")
	for _, g := range groups {
		state := "free"
		switch {
		case g.Lease != "":
			state = "leased " + g.Lease
			if l, ok := byID[g.Lease]; ok {
				state += fmt.Sprintf(" (%s, uid %d, pid %d", l.Mode, l.UID, l.PID)
				if l.Orphan {
					state += ", orphan"
				}
				state += ")"
			}
		case !g.Viable:
			state = "not viable: " + g.Reason
		}
		for _, bdf := range g.Devices { // a row per device, each whole, for grep
			d := byBDF[bdf]
			fmt.Fprintf(tw, "%d\t%s\t%04x:%04x\t%s\t%s\n", g.Number, bdf, d.Vendor, d.Device, orDash(d.Driver), state)
		}
	}
	return tw.Flush()
}

// sortLeases puts leases in group order, then ID: the agent keeps them in
// no particular order, and scripts diff what these commands print.
func sortLeases(leases []proto.Lease) {
	slices.SortFunc(leases, func(a, b proto.Lease) int {
		if a.Group != b.Group {
			return a.Group - b.Group
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func emptyIfNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// StatusOutput is status --json's output.
type StatusOutput struct {
	Socket   string        `json:"socket"`
	Protocol int           `json:"protocol"`
	Backend  string        `json:"backend"`
	UID      uint32        `json:"uid"` // this client, as the agent sees it (SO_PEERCRED)
	GID      uint32        `json:"gid"`
	PID      int32         `json:"pid"`
	Leases   []proto.Lease `json:"leases"`
}

func statusCmd(ctx context.Context, args []string, w io.Writer, getenv func(string) string) error {
	fl := newFlagSet("status")
	cf := addClientFlags(fl, getenv, true)
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := client.Connect(ctx, cf.socket, client.ConnectTimeout)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer c.Close()
	var leases []proto.Lease
	if err := interruptible(ctx, c, func() (err error) { leases, err = c.Status(); return err }); err != nil {
		return explain("status", err)
	}
	sortLeases(leases)
	h := c.Hello
	out := StatusOutput{Socket: cf.socket, Protocol: h.Version, Backend: h.Backend, UID: h.UID, GID: h.GID, PID: h.PID, Leases: emptyIfNil(leases)}
	if cf.json {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(out)
	}
	fmt.Fprintf(w, "agent:   %s, protocol %d, backend %s\n", cf.socket, h.Version, h.Backend)
	fmt.Fprintf(w, "client:  uid %d gid %d pid %d (as the agent sees this connection)\n", h.UID, h.GID, h.PID)
	if len(leases) == 0 {
		fmt.Fprintln(w, "leases:  none")
		return nil
	}
	fmt.Fprintln(w, "leases:")
	printLeases(w, leases)
	return nil
}

func printLeases(w io.Writer, leases []proto.Lease) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  LEASE\tMODE\tGROUP\tDEVICES\tUID\tPID")
	for _, l := range leases {
		id := l.ID
		if l.Orphan {
			id += " (orphan)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%d\t%d\n", id, l.Mode, l.Group, strings.Join(l.Devices, ","), l.UID, l.PID)
	}
	tw.Flush()
}

func releaseCmd(ctx context.Context, args []string, w io.Writer, getenv func(string) string) error {
	fl := newFlagSet("release")
	cf := addClientFlags(fl, getenv, false)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return fl.usageErrorf("want the LEASE to release (see iommu-agent status)")
	}
	if fl.Arg(0) == "" {
		return fl.usageErrorf("LEASE is empty")
	}
	id := fl.Arg(0)
	c, err := client.Connect(ctx, cf.socket, client.ConnectTimeout)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	defer c.Close()
	if err := interruptible(ctx, c, func() error { return c.Release(id) }); err != nil {
		return explain("release "+id, err)
	}
	fmt.Fprintf(w, "released %s\n", id)
	return nil
}

// childExit is the exit status of a command acquire ran, and what to say
// first (nil: nothing, the command said it).
type childExit struct {
	code int
	err  error
}

func (e *childExit) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return "exit status " + strconv.Itoa(e.code)
}

func (e *childExit) Unwrap() error { return e.err }

// holdCheck is how often acquire without a command asks the agent whether
// the connection, and so the lease, is still there.
const holdCheck = 2 * time.Second

// callTimeout bounds the calls acquire makes once it holds a lease, which
// a signal must not cut short (the release after one) or which run while
// it waits for one (holdCheck's): an agent that stops answering must not
// keep acquire, or systemd stopping it, waiting forever.
const callTimeout = 30 * time.Second

func acquireCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return acquireEvery(ctx, args, stdout, stderr, getenv, holdCheck)
}

// acquireEvery is acquire, checking the agent every check while it holds.
func acquireEvery(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, check time.Duration) error {
	fl := newFlagSet("acquire")
	cf := addClientFlags(fl, getenv, true)
	mode := fl.String("mode", "", "`MODE`: fds (the iommufd and VFIO cdevs come to this process) or broker (the agent keeps the IOMMU); default: the agent's (fds on real hardware)")
	memlock := fl.String("memlock", "", "ask the agent to raise this process's RLIMIT_MEMLOCK to `SIZE` (bytes, or with K, M, G, T: 8G), up to the policy's memlock")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var o client.AcquireOptions
	switch *mode {
	case "", proto.ModeFDs, proto.ModeBroker:
		o.Mode = *mode
	default:
		return fl.usageErrorf("-mode %q: want fds or broker", *mode)
	}
	if *memlock != "" {
		n, err := parseSize(*memlock)
		if err != nil {
			return fl.usageErrorf("-memlock %q: %v", *memlock, err)
		}
		o.Memlock = n
	}
	if fl.dash && len(fl.after) == 0 {
		return fl.usageErrorf("-- needs a COMMAND to run")
	}
	if fl.dash && fl.after[0] == "" {
		return fl.usageErrorf("-- needs a COMMAND to run, not an empty word")
	}
	target, group, isGroup, err := parseTarget(fl, fl.words, "DEVICE")
	if err != nil {
		return err
	}

	c, err := client.Connect(ctx, cf.socket, client.ConnectTimeout)
	if err != nil {
		return fmt.Errorf("acquire %s: %w", target, err)
	}
	defer c.Close() // ends the lease, whatever happened, if release did not
	var a *client.Acquired
	err = interruptible(ctx, c, func() (err error) {
		if isGroup {
			a, err = c.AcquireGroup(group, o)
		} else {
			a, err = c.AcquireDevice(target, o)
		}
		return err
	})
	if err != nil {
		return explain("acquire "+target, err)
	}
	defer a.Close()
	// The calls below run after a signal too (the lease is released
	// then), so they are bounded by time, not by ctx.
	timed := func(call func() error) error {
		c.SetDeadline(time.Now().Add(callTimeout))
		defer c.SetDeadline(time.Time{})
		return call()
	}
	release := func() error {
		if err := timed(func() error { return c.Release(a.Lease.ID) }); err != nil {
			return explain("release "+a.Lease.ID, err)
		}
		return nil
	}

	if !fl.dash {
		if cf.json {
			if err := json.NewEncoder(stdout).Encode(a.Lease); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "lease %s: iommu_group %d (%s), mode %s\n", a.Lease.ID, a.Lease.Group, strings.Join(a.Lease.Devices, " "), a.Lease.Mode)
		}
		fmt.Fprintf(stderr, "iommu-agent: holding lease %s until Ctrl-C or SIGTERM\n", a.Lease.ID)
		// A lease that ended with its connection (the agent stopped)
		// is not held: say so rather than wait for a signal.
		tick := time.NewTicker(check)
		defer tick.Stop()
	hold:
		for {
			select {
			case <-ctx.Done():
				break hold
			case <-tick.C:
				if err := timed(func() error { _, err := c.Status(); return err }); err != nil {
					return fmt.Errorf("acquire %s: lost the agent, and lease %s with it unless the policy keeps it: %w", target, a.Lease.ID, err)
				}
			}
		}
		if err := release(); err != nil {
			return &childExit{code: 1, err: err} // said, though a signal came first
		}
		fmt.Fprintf(stderr, "iommu-agent: released %s\n", a.Lease.ID)
		return nil
	}

	cmd, err := a.Command(fl.after)
	if err != nil {
		if rerr := release(); rerr != nil {
			return &childExit{code: 1, err: errors.Join(err, rerr)}
		}
		return fl.usageError(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if f, ok := file(stdout); ok {
		cmd.Stdout = f
	}
	// From here the lease must outlive the command, never the other way
	// round: signals after the first go to relay instead of killing us,
	// and a signal before the command starts means it does not start.
	var (
		mu      sync.Mutex
		proc    *os.Process
		pending bool // a SIGTERM came between Start and proc being set
	)
	relay := func(sig syscall.Signal) {
		// SIGTERM (systemd, kill) came to us alone: pass it on. Ctrl-C and
		// a terminal's hangup reached the command from the terminal
		// already (one process group); sent again, Ctrl-C would count as
		// a second press, which some programs take as "quit now, skip the
		// clean shutdown".
		if sig != syscall.SIGTERM {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if proc == nil {
			pending = true
			return
		}
		proc.Signal(sig)
	}
	defer holdSignals(ctx, relay)()
	if ctx.Err() != nil {
		if err := release(); err != nil {
			return &childExit{code: 1, err: err}
		}
		return context.Cause(ctx)
	}
	if err := cmd.Start(); err != nil {
		rerr := release()
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return &childExit{code: code, err: errors.Join(fmt.Errorf("acquire: run %s: %w", fl.after[0], err), rerr)}
	}
	mu.Lock()
	proc = cmd.Process
	if pending {
		proc.Signal(syscall.SIGTERM)
	}
	mu.Unlock()
	a.Close() // the command has its copies; ours would outlive its use
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		var intr interrupted
		if !errors.As(context.Cause(ctx), &intr) {
			intr.sig = syscall.SIGTERM
		}
		relay(intr.sig)
		werr = <-waited
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(werr, &ee):
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	case werr != nil:
		code = 1
	}
	if err := release(); err != nil {
		if code == 0 {
			code = 1
		}
		return &childExit{code: code, err: err}
	}
	return &childExit{code: code}
}

// parseSize reads bytes with an optional binary suffix: 1048576, 512M, 8G.
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	num := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "B"), "I")
	if n := len(num); n > 0 {
		if i := strings.IndexByte("KMGT", num[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			num = num[:n-1]
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, errors.New("want a size in bytes, or with a K, M, G or T suffix")
	}
	if n > (1<<64-1)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}
