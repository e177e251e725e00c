package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/internal/latency"
)

// demoDevices is the emulated machine: two edu functions alone in their
// groups, and a two-function card sharing one, to show the group rule.
func demoDevices() []iommu.Device {
	return []iommu.Device{
		{BDF: "0000:00:01.0", Group: 1},
		{BDF: "0000:00:02.0", Group: 2},
		{BDF: "0000:03:00.0", Group: 3},
		{BDF: "0000:03:00.1", Group: 3},
	}
}

// maxDemoCycles bounds demo -cycles: a million takes about a minute.
const maxDemoCycles = 1_000_000

// demo runs the agent's whole job on the emulated IOMMU, in this process and
// a temp dir: the agent serves a socket, a client (as any unprivileged VMM
// would) leases a device, maps memfd memory through the agent, has the device
// DMA into and out of it, hits an unmapped IOVA and is blocked, and lets go.
func demo(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fl := newFlagSet("demo")
	cycles := fl.Int("cycles", 2000, fmt.Sprintf("map+DMA+unmap cycles timed for the latency histogram, 1 to %d", maxDemoCycles))
	verbose := fl.Bool("v", false, "show the agent's log")
	nested := fl.Bool("nested", false, "walk nested translation instead: stage-1 tables a guest would own, over the emulated SMMUv3's stage 2, with a stale walk, invalidation and faults as events")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *nested {
		return demoNested(ctx, stdout)
	}
	if *cycles < 1 || *cycles > maxDemoCycles {
		return fl.usageErrorf("-cycles %d: want 1 to %d", *cycles, maxDemoCycles)
	}
	// After Ctrl-C the agent in here stops and its socket closes: what
	// fails then (an EOF) fails because of the signal, so say that.
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = context.Cause(ctx)
		}
	}()
	dir, err := os.MkdirTemp("", "iommu-agent-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logOut := io.Discard
	if *verbose {
		logOut = stdout
	}
	uid := uint32(os.Getuid())
	rec := latency.NewRecorder("emulated", 0, 0)
	srv, err := server.New(ctx, server.Options{
		Backend:  server.BackendEmulated,
		Devices:  demoDevices(),
		Latency:  rec,
		StateDir: filepath.Join(dir, "state"),
		Policy:   &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uid}, All: true}}},
		Log:      slog.New(slog.NewTextHandler(logOut, nil)),
	})
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "agent.sock")
	ln, err := server.Listen(sock)
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()

	p := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	p("iommu-agent demo: the agent on an emulated IOMMU, a client on its socket (%s)", sock)
	c, err := client.Dial(sock)
	if err != nil {
		return err
	}
	defer c.Close()
	p("\n1. hello: protocol v%d, backend %s; the agent sees this client as uid %d pid %d (SO_PEERCRED)",
		c.Hello.Version, c.Hello.Backend, c.Hello.UID, c.Hello.PID)

	_, groups, err := c.List()
	if err != nil {
		return err
	}
	p("\n2. list:")
	for _, g := range groups {
		p("   iommu_group %d: %v", g.Number, g.Devices)
	}
	if _, err := c.AcquireDevice("0000:03:00.1", client.AcquireOptions{}); errors.Is(err, proto.ErrNotViable) {
		p("   acquire 0000:03:00.1 alone is refused (group rule): %v", err)
	} else {
		return fmt.Errorf("acquiring one function of a shared group: %v, want not-viable", err)
	}

	const bdf = "0000:00:01.0"
	a, err := c.AcquireDevice(bdf, client.AcquireOptions{})
	if err != nil {
		return err
	}
	p("\n3. acquire %s: lease %s, mode %s, iommu_group %d", bdf, a.Lease.ID, a.Lease.Mode, a.Lease.Group)

	const size, iova = 2 << 20, 0x100000
	memfd, mem, err := client.NewMemfd("guest-ram", size)
	if err != nil {
		return err
	}
	defer memfd.Close()
	got, err := c.Map(a.Lease.ID, memfd, 0, size, iova, true, "rw")
	if err != nil {
		return err
	}
	p("\n4. map: a %d MiB memfd (sealed) sent over SCM_RIGHTS, mapped at IOVA %#x", size>>20, got)

	pattern := make([]byte, 4096)
	for i := range pattern {
		pattern[i] = byte(i*7 + 3)
	}
	copy(mem[0x3000:], pattern)
	back, err := c.DMARead(a.Lease.ID, bdf, iova+0x3000, uint64(len(pattern)))
	if err != nil {
		return err
	}
	if !bytes.Equal(back, pattern) {
		return errors.New("device read back different bytes than the client wrote")
	}
	msg := []byte("hello from the emulated edu, through the IOMMU")
	if err := c.DMAWrite(a.Lease.ID, bdf, iova+0x10000, msg); err != nil {
		return err
	}
	if !bytes.Equal(mem[0x10000:0x10000+len(msg)], msg) {
		return errors.New("device write did not reach the client's memory")
	}
	p("\n5. DMA: the device read 4096 bytes at IOVA %#x (verified against the client's memory)", iova+0x3000)
	p("   and wrote %q at IOVA %#x, which the client reads in its own mapping", msg, iova+0x10000)

	err = c.DMAWrite(a.Lease.ID, bdf, 0x8000000, msg)
	if !errors.Is(err, proto.ErrFault) {
		return fmt.Errorf("DMA to an unmapped IOVA: %v, want a fault", err)
	}
	p("\n6. DMA to unmapped IOVA 0x8000000 is blocked by the IOMMU:\n   %v", err)

	if _, err := c.Unmap(a.Lease.ID, iova, size); err != nil {
		return err
	}
	start := time.Now()
	for i := range *cycles {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		at := uint64(0x200000 + (i%64)*0x10000)
		if _, err := c.Map(a.Lease.ID, memfd, uint64(i%32)*0x10000, 0x10000, at, true, "rw"); err != nil {
			return err
		}
		if err := c.DMAWrite(a.Lease.ID, bdf, at, msg[:8]); err != nil {
			return err
		}
		if _, err := c.Unmap(a.Lease.ID, at, 0x10000); err != nil {
			return err
		}
	}
	el := time.Since(start)
	p("\n7. %d map + DMA + unmap cycles over the socket in %v (%.0f cycles/s); the agent's map and unmap,"+
		"\n   timed inside the emulated IOMMU (not a kernel's numbers):\n", *cycles, el.Round(time.Millisecond), float64(*cycles)/el.Seconds())
	snap, err := rec.Snapshot()
	if err != nil {
		return err
	}
	if err := latency.Print(stdout, snap); err != nil {
		return err
	}

	if err := c.Release(a.Lease.ID); err != nil {
		return err
	}
	left, err := c.Status()
	if err != nil {
		return err
	}
	p("\n8. release: lease %s ended; leases left: %d", a.Lease.ID, len(left))
	if len(left) != 0 {
		return fmt.Errorf("leases left after release: %v", left)
	}
	p("\nOn a host with an IOMMU, `iommu-agent serve` does the same with real devices, and in mode fds hands")
	p("/dev/iommu and the VFIO cdev to an unprivileged QEMU: -object iommufd,id=i0,fd=N -device vfio-pci,iommufd=i0,fd=M.")
	return nil
}
