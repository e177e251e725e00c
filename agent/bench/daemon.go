//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Daemon measures the agent's lease path on the emulated backend: one
// client's acquire+release (two requests) p50 and p99 against two bare
// unix-socket round trips that pass an fd (the least two such requests
// can cost), and 64 clients at once against 64 such pairs at once. As root
// with Env.Devices, it measures the same on the kernel: acquire-to-fds
// of the first device (vfio-pci bind check, iommufd, cdev bind, fds
// passed) and release.
func Daemon() Bench {
	return Bench{Group: "daemon", Run: runDaemon}
}

// daemonGroups is how many single-device groups the emulated agent has;
// the 64 clients take turns on them.
const daemonGroups = 64

func runDaemon(ctx context.Context, e *Env) ([]Row, error) {
	dir, err := os.MkdirTemp("", "iommu-agent-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var devs []iommu.Device
	for i := range daemonGroups {
		devs = append(devs, iommu.Device{BDF: fmt.Sprintf("0000:%02x:%02x.0", i/32, i%32), Group: i + 1})
	}
	sock, stop, err := serveAgent(ctx, filepath.Join(dir, "agent.sock"), server.Options{
		Backend:  server.BackendEmulated,
		Devices:  devs,
		StateDir: filepath.Join(dir, "state"),
		Policy: &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, All: true}},
			Limits: daemonLimits()},
	})
	if err != nil {
		return nil, err
	}
	defer stop()

	cycles := 2000
	if e.Quick {
		cycles = 300
	}
	c, err := client.Dial(sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	acquire := func(c *client.Client, group int) error {
		a, err := c.AcquireGroup(group, client.AcquireOptions{})
		if err != nil {
			return err
		}
		return c.Release(a.Lease.ID)
	}
	floor, closeFloor, err := fdRoundTrip()
	if err != nil {
		return nil, err
	}
	defer closeFloor()

	// One client: latencies of each, interleaved.
	e.progress("  one client: %d acquire+release cycles and as many bare fd round trips", cycles)
	var lat, base []time.Duration
	for i := range cycles {
		start := time.Now()
		if err := acquire(c, 1+i%daemonGroups); err != nil {
			return nil, fmt.Errorf("acquire+release: %w", err)
		}
		mid := time.Now()
		if err := twice(floor); err != nil {
			return nil, err
		}
		lat = append(lat, mid.Sub(start))
		base = append(base, time.Since(mid))
	}
	slices.Sort(lat)
	slices.Sort(base)
	var rows []Row
	for _, p := range []float64{50, 99} {
		r := ratioRow(Row{Name: fmt.Sprintf("acquire+release, one client, p%.0f", p), Subject: "agent round trips (emulated)",
			Baseline: "two bare unix-socket round trips passing an fd", Value: float64(pct(lat, p)), Base: float64(pct(base, p)), Unit: "ns/op"})
		r.Unchecked = p == 99 // one descheduling on either side moves a tail
		// The floor is two wake-ups of a sleeping echo thread, and on the
		// 2-core CI machine it swung 35-82 us between runs (how deep the
		// idle cores sleep), taking this ratio from 0.76 to 2.0 with the
		// agent unchanged: the check lets it triple.
		r.Margin = 2
		rows = append(rows, r)
	}

	// 64 clients at once: time per cycle over the whole run.
	const clients = 64
	e.progress("  %d clients at once", clients)
	per := max(cycles/clients, 10)
	agentRun := func() (time.Duration, error) {
		return parallel(clients, per, func(id int) (func() error, func(), error) {
			c, err := client.Dial(sock)
			if err != nil {
				return nil, nil, err
			}
			group := 1 + id%daemonGroups
			return func() error { return acquire(c, group) }, func() { c.Close() }, nil
		})
	}
	floorRun := func() (time.Duration, error) {
		return parallel(clients, per, func(int) (func() error, func(), error) {
			f, closeF, err := fdRoundTrip()
			return func() error { return twice(f) }, closeF, err
		})
	}
	var av, bv []float64
	for range 3 {
		da, err := agentRun()
		if err != nil {
			return rows, fmt.Errorf("%d clients: %w", clients, err)
		}
		db, err := floorRun()
		if err != nil {
			return rows, err
		}
		av = append(av, float64(da.Nanoseconds())/float64(clients*per))
		bv = append(bv, float64(db.Nanoseconds())/float64(clients*per))
	}
	r := ratioRow(Row{Name: fmt.Sprintf("acquire+release, %d clients at once", clients), Subject: "agent (emulated), wall time per cycle",
		Baseline: "64 pairs of bare fd round trips at once", Value: median(av), Base: median(bv), Unit: "ns/op"})
	r.Note = fmt.Sprintf("%.0f cycles/s", 1e9/r.Value)
	r.Margin = 1 // 128 goroutines on the machine's cores
	rows = append(rows, r)
	if len(e.Devices) == 0 || os.Geteuid() != 0 {
		return rows, nil
	}
	kernel, err := kernelDaemon(ctx, e, dir, cycles/20, floor) // about 50 ms a cycle under TCG
	return append(rows, kernel...), err
}

// kernelDaemon is the one-client rows on an iommufd agent leasing the
// first of Env.Devices in mode fds.
func kernelDaemon(ctx context.Context, e *Env, dir string, cycles int, floor func() error) ([]Row, error) {
	fs, err := sysfs.Default()
	if err != nil {
		return nil, err
	}
	bdf := e.Devices[0]
	sock, stop, err := serveAgent(ctx, filepath.Join(dir, "kagent.sock"), server.Options{
		Backend: server.BackendIOMMUFD, Sysfs: fs, RLimitProcess: true,
		StateDir: filepath.Join(dir, "kstate"),
		Policy:   &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, Devices: []string{bdf}, Memlock: 1 << 30}}},
	})
	if err != nil {
		return nil, err
	}
	defer stop()
	c, err := client.Dial(sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// The kernel's own part of a lease: open /dev/iommu and the cdev,
	// bind, close both (the close unbinds). VFIO enables the device on
	// open and resets it on close, which no agent can skip.
	ents, err := os.ReadDir(filepath.Join("/sys/bus/pci/devices", bdf, "vfio-dev"))
	if err != nil || len(ents) != 1 {
		return nil, fmt.Errorf("%s: no VFIO cdev (%d entries): %v", bdf, len(ents), err)
	}
	cdevPath := filepath.Join("/dev/vfio/devices", ents[0].Name())
	direct := func() error {
		fd, err := iommufd.Open(iommufd.DefaultPath)
		if err != nil {
			return err
		}
		defer fd.Close()
		d, err := vfio.OpenDevice(cdevPath)
		if err != nil {
			return err
		}
		defer d.Close()
		_, err = d.BindIOMMUFD(fd.Int(), nil)
		return err
	}
	e.progress("  the kernel: %d acquire-to-fds+release cycles of %s", cycles, bdf)
	var lat, base, kern []time.Duration
	for range max(cycles, 20) {
		start := time.Now()
		a, err := c.AcquireDevice(bdf, client.AcquireOptions{Mode: proto.ModeFDs})
		if err != nil {
			return nil, fmt.Errorf("acquire %s: %w", bdf, err)
		}
		a.Close()
		if err := c.Release(a.Lease.ID); err != nil {
			return nil, err
		}
		mid := time.Now()
		if err := twice(floor); err != nil {
			return nil, err
		}
		second := time.Now()
		if err := direct(); err != nil {
			return nil, fmt.Errorf("open and bind %s directly: %w", cdevPath, err)
		}
		lat = append(lat, mid.Sub(start))
		base = append(base, second.Sub(mid))
		kern = append(kern, time.Since(second))
	}
	slices.Sort(lat)
	slices.Sort(base)
	slices.Sort(kern)
	var rows []Row
	for _, p := range []float64{50, 99} {
		rows = append(rows, ratioRow(Row{Name: fmt.Sprintf("acquire-to-fds+release of %s, p%.0f", bdf, p),
			Subject: "agent on iommufd (mode fds)", Baseline: "two bare unix-socket round trips passing an fd",
			Value: float64(pct(lat, p)), Base: float64(pct(base, p)), Unit: "ns/op", Unchecked: p == 99}))
	}
	rows = append(rows, ratioRow(Row{Name: fmt.Sprintf("acquire-to-fds+release of %s against the kernel's part, p50", bdf),
		Subject: "agent on iommufd (mode fds)", Baseline: "open /dev/iommu and the cdev, bind, close, in-process",
		Value: float64(pct(lat, 50)), Base: float64(pct(kern, 50)), Unit: "ns/op"}))
	return rows, nil
}

func twice(f func() error) error {
	if err := f(); err != nil {
		return err
	}
	return f()
}

// serveAgent runs an agent with o (its log discarded) on a socket at sock
// until stop.
func serveAgent(ctx context.Context, sock string, o server.Options) (string, func(), error) {
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, o)
	if err != nil {
		return "", nil, err
	}
	ln, err := server.Listen(sock)
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	return sock, func() { cancel(); <-served }, nil
}

// daemonLimits lets 64 clients of one uid in at once.
func daemonLimits() *server.Limits {
	l := server.DefaultLimits()
	l.MaxConnsPerUID = 256
	return l
}

func pct(sorted []time.Duration, p float64) time.Duration {
	return sorted[int(float64(len(sorted)-1)*p/100)]
}

// parallel runs n workers of per calls each and returns the wall time.
// setup gives each worker its call and its cleanup.
func parallel(n, per int, setup func(id int) (call func() error, done func(), err error)) (time.Duration, error) {
	calls := make([]func() error, n)
	for i := range n {
		call, done, err := setup(i)
		if err != nil {
			return 0, err
		}
		defer done()
		calls[i] = call
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if err := calls[i](); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	return el, errors.Join(<-errs)
}

// fdRoundTrip is the floor of a request answered with an fd: a byte sent
// over a unix socket pair, answered by a goroutine with one byte and an
// fd in SCM_RIGHTS, which the caller receives and closes.
func fdRoundTrip() (call func() error, done func(), err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, err
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		b := make([]byte, 1)
		rights := unix.UnixRights(int(devNull.Fd()))
		for {
			if n, err := unix.Read(fds[1], b); n != 1 || err != nil {
				return
			}
			if err := unix.Sendmsg(fds[1], b, rights, nil, 0); err != nil {
				return
			}
		}
	}()
	b := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	call = func() error {
		if _, err := unix.Write(fds[0], b); err != nil {
			return err
		}
		_, oobn, _, _, err := unix.Recvmsg(fds[0], b, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			return err
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return fmt.Errorf("fd round trip: %d control messages, %v", len(msgs), err)
		}
		got, err := unix.ParseUnixRights(&msgs[0])
		if err != nil {
			return err
		}
		for _, fd := range got {
			unix.Close(fd)
		}
		return nil
	}
	done = func() {
		unix.Close(fds[0])
		<-served
		unix.Close(fds[1])
		devNull.Close()
	}
	return call, done, nil
}
