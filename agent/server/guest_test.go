//go:build hwtests && linux

package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/sysfs"
	"golang.org/x/sys/unix"
)

// The guest test plays both sides of the agent's real job. The test process
// is root and runs the agent on the guest's /sys and /dev/iommu. It re-runs
// its own binary as uid 65534 chrooted into the host's root (/host, 9p):
// that unprivileged client asks the agent for the edu over the socket, gets
// /dev/iommu and the edu's VFIO cdev back (and a raised RLIMIT_MEMLOCK), and
// execs the host's QEMU with only those fds, so QEMU does its own bind,
// attach and guest-RAM mapping. The root side drives QEMU over QMP, then
// releases the lease and checks that the edu is back as it was.

const (
	guestClientEnv = "IOMMU_AGENT_GUEST_CLIENT" // set: this process is the client
	guestSockEnv   = "IOMMU_AGENT_GUEST_SOCK"
	guestBDFEnv    = "IOMMU_AGENT_GUEST_BDF"
	guestAgentEnv  = "IOMMU_AGENT_GUEST_AGENT" // set: this process is the agent, serving GUEST_SOCK with state in its value
	nobody         = 65534
	qemuMemlock    = 256 << 20 // 64 MiB guest RAM + firmware, with room
)

func TestMain(m *testing.M) {
	if os.Getenv(guestAgentEnv) != "" {
		if err := guestAgent(); err != nil {
			fmt.Fprintln(os.Stderr, "guest agent:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(guestClientEnv) != "" {
		if err := guestClient(); err != nil {
			fmt.Fprintln(os.Stderr, "guest client:", err)
			os.Exit(1)
		}
		os.Exit(0) // not reached: guestClient execs QEMU
	}
	os.Exit(m.Run())
}

// guestClient is the unprivileged VMM launcher: acquire, then exec QEMU with
// the received fds left open across exec.
func guestClient() error {
	c, err := client.Dial(os.Getenv(guestSockEnv))
	if err != nil {
		return err
	}
	a, err := c.AcquireDevice(os.Getenv(guestBDFEnv), client.AcquireOptions{Mode: proto.ModeFDs, Memlock: qemuMemlock})
	if err != nil {
		return err
	}
	if len(a.Files) != 2 {
		return fmt.Errorf("got fds %v", a.Names)
	}
	var nums []int
	for _, f := range a.Files {
		fd := int(f.Fd())
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil { // keep across exec
			return err
		}
		nums = append(nums, fd)
	}
	args := []string{"qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "64M", "-nodefaults",
		"-display", "none", "-S", "-qmp", "stdio",
		"-object", "iommufd,id=i0,fd=" + strconv.Itoa(nums[0]),
		"-device", "vfio-pci,iommufd=i0,fd=" + strconv.Itoa(nums[1]) + ",id=hostdev0"}
	fmt.Fprintf(os.Stderr, "guest client: uid %d, lease %s, exec %s\n", os.Getuid(), a.Lease.ID, strings.Join(args, " "))
	return syscall.Exec("/usr/bin/qemu-system-x86_64", args, []string{"PATH=/usr/bin:/bin", "HOME=/"})
}

// edu state: driver link and driver_override, as the release must restore.
func eduState(t *testing.T, bdf string) string {
	t.Helper()
	fs, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	a, err := sysfs.ParseAddress(bdf)
	if err != nil {
		t.Fatal(err)
	}
	d, err := fs.Device(a)
	if err != nil {
		t.Fatal(err)
	}
	return "driver=" + d.Driver + " override=" + d.DriverOverride
}

// qmp speaks QEMU's monitor protocol on a pipe pair.
type qmp struct {
	in  io.Writer
	out *bufio.Scanner
}

// cmd runs one command and returns its "return" value, skipping events.
func (q *qmp) cmd(t *testing.T, execute string, args any) json.RawMessage {
	t.Helper()
	req := map[string]any{"execute": execute}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.in.Write(append(b, '\n')); err != nil {
		t.Fatalf("qmp %s: %v", execute, err)
	}
	for q.out.Scan() {
		var r struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class, Desc string
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(q.out.Bytes(), &r); err != nil {
			t.Fatalf("qmp %s: %q: %v", execute, q.out.Text(), err)
		}
		switch {
		case r.Event != "":
			continue
		case r.Error != nil:
			t.Fatalf("qmp %s: %s: %s", execute, r.Error.Class, r.Error.Desc)
		}
		return r.Return
	}
	t.Fatalf("qmp %s: QEMU closed its monitor (%v)", execute, q.out.Err())
	return nil
}

func TestGuestQEMUClient(t *testing.T) {
	needDevice(t, "edu")
	_, err := os.Stat("/host/usr/bin/qemu-system-x86_64")
	hwtest.Need(t, "the host's QEMU under /host (9p host root)", err)
	if err := hwtest.Runnable("/host/usr/bin/qemu-system-x86_64"); err != nil {
		hwtest.LaneException(t, "the host's QEMU cannot run in this guest: "+err.Error())
	}
	edu := hwtest.FindEdu(t)[0]
	before := eduState(t, edu.BDF)
	fs, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, server.Options{
		Backend: server.BackendIOMMUFD, Sysfs: fs, RLimitProcess: true,
		StateDir: t.TempDir(),
		Policy: &server.Policy{Rules: []server.Rule{{UIDs: []uint32{nobody}, Devices: []string{edu.BDF},
			Memlock: qemuMemlock, KeepOnDisconnect: true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sock := "/host/run/iommu-agent-guest.sock" // /run/... inside the client's chroot
	ln, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-served; os.Remove(sock) }()

	qctx, qcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer qcancel()
	cmd := exec.CommandContext(qctx, "/proc/self/exe")
	cmd.Env = []string{guestClientEnv + "=1", guestSockEnv + "=/run/" + filepath.Base(sock), guestBDFEnv + "=" + edu.BDF,
		"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: "/host", Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("client and QEMU stderr:\n%s", stderr.String())
		}
	}()
	q := &qmp{in: in, out: bufio.NewScanner(out)}
	q.out.Buffer(make([]byte, 1<<20), 1<<20)
	if !q.out.Scan() || !strings.Contains(q.out.Text(), `"QMP"`) {
		cmd.Wait()
		t.Fatalf("no QMP greeting (%v); stderr:\n%s", q.out.Err(), stderr.String())
	}
	q.cmd(t, "qmp_capabilities", nil)
	pci := q.cmd(t, "query-pci", nil)
	var buses []struct {
		Devices []struct {
			Slot, Function int
			ID             struct{ Vendor, Device int } `json:"id"`
			QdevID         string                       `json:"qdev_id"`
		}
	}
	if err := json.Unmarshal(pci, &buses); err != nil {
		t.Fatal(err)
	}
	found := ""
	for _, b := range buses {
		for _, d := range b.Devices {
			if d.QdevID == "hostdev0" && d.ID.Vendor == 0x1234 && d.ID.Device == 0x11e8 {
				found = fmt.Sprintf("slot %d fn %d id %04x:%04x qdev_id %s", d.Slot, d.Function, d.ID.Vendor, d.ID.Device, d.QdevID)
			}
		}
	}
	if found == "" {
		t.Fatalf("query-pci does not show the edu as hostdev0: %s", pci)
	}
	t.Logf("query-pci: vfio-pci realized: %s", found)
	var info string
	json.Unmarshal(q.cmd(t, "human-monitor-command", map[string]string{"command-line": "info pci"}), &info)
	for _, l := range strings.Split(info, "\n") {
		if strings.Contains(l, "1234:11e8") || strings.Contains(l, "hostdev0") {
			t.Logf("info pci: %s", strings.TrimSpace(l))
		}
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
	for _, l := range strings.Split(string(status)+string(limits), "\n") {
		if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "VmPin:") || strings.HasPrefix(l, "Max locked memory") {
			t.Logf("QEMU %s", strings.Join(strings.Fields(l), " "))
		}
		if strings.HasPrefix(l, "Uid:") && strings.Fields(l)[1] != strconv.Itoa(nobody) {
			t.Errorf("QEMU runs as %s", l)
		}
	}
	if got := eduState(t, edu.BDF); got != "driver=vfio-pci override=vfio-pci" {
		t.Errorf("edu while leased: %s", got)
	}

	// While QEMU holds the cdev the agent refuses to unbind under it.
	leases := srv.Leases()
	if len(leases) != 1 || leases[0].UID != nobody {
		t.Fatalf("leases: %+v", leases)
	}
	root, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.Release(leases[0].ID); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Errorf("release under a running QEMU: %v, want busy", err)
	}
	q.cmd(t, "quit", nil)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("QEMU: %v", err)
	}
	if err := root.Release(leases[0].ID); err != nil {
		t.Fatalf("release after QEMU quit: %v", err)
	}
	if after := eduState(t, edu.BDF); after != before {
		t.Errorf("edu after release: %s, before the lease: %s", after, before)
	}
	t.Logf("released: edu back to %s", before)
}

// guestAgent is the agent as a process of its own, on the guest's /sys and
// /dev, for the crash test to kill -9.
func guestAgent() error {
	fs, err := sysfs.Default()
	if err != nil {
		return err
	}
	ctx := context.Background()
	srv, err := server.New(ctx, server.Options{Backend: server.BackendIOMMUFD, Sysfs: fs, RLimitProcess: true,
		StateDir: os.Getenv(guestAgentEnv), Policy: server.DefaultPolicy()})
	if err != nil {
		return err
	}
	ln, err := server.Listen(os.Getenv(guestSockEnv))
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln)
}

// startAgent runs guestAgent in a child and waits for its socket.
func startAgent(t *testing.T, sock, state string) *exec.Cmd {
	t.Helper()
	os.Remove(sock)
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{guestAgentEnv + "=" + state, guestSockEnv + "=" + sock}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Millisecond) {
		c, err := client.Dial(sock)
		if err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("agent did not come up: %v\n%s", err, stderr.String())
		}
	}
}

// TestGuestCrash kills the agent with SIGKILL at random moments (25 in make
// test, 100 in make test-long) of a
// client's acquire/release loop on the edu (fds mode: real vfio-pci binds
// and cdevs), restarts it on the same state dir each time and checks the
// host: either the edu is back as it was, or the new agent re-adopted the
// lease whose fds the client still holds and the edu is on vfio-pci. Then
// the client lets go and the edu must be as it was.
func TestGuestCrash(t *testing.T) {
	needDevice(t, "edu")
	edu := hwtest.FindEdu(t)[0]
	before := eduState(t, edu.BDF)
	state := t.TempDir()
	sock := "/run/iommu-agent-crash.sock"
	defer os.Remove(sock)

	// One cycle's length, to spread the kills over it.
	agent := startAgent(t, sock, state)
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 5 {
		a, err := c.AcquireDevice(edu.BDF, client.AcquireOptions{Mode: proto.ModeFDs})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		if err := c.Release(a.Lease.ID); err != nil {
			t.Fatal(err)
		}
	}
	cycle := time.Since(start) / 5
	c.Close()
	agent.Process.Kill()
	agent.Wait()
	t.Logf("one acquire+release of the edu: %v", cycle)

	r := rand.New(rand.NewPCG(3, 4))
	adopted, midway := 0, 0
	rounds := 25 // make test: kills still spread over the whole cycle
	if hwtest.Long() {
		rounds = 100
	}
	for round := range rounds {
		agent := startAgent(t, sock, state)
		c, err := client.Dial(sock)
		if err != nil {
			t.Fatal(err)
		}
		hold := r.IntN(2) == 0
		var held *client.Acquired
		stop := make(chan struct{})
		loopDone := make(chan struct{})
		go func() {
			defer close(loopDone)
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, err := c.AcquireDevice(edu.BDF, client.AcquireOptions{Mode: proto.ModeFDs})
				if err != nil {
					return // the agent is gone
				}
				if hold {
					held = a // the VMM keeps the fds through the crash
					return
				}
				a.Close()
				if c.Release(a.Lease.ID) != nil {
					return
				}
			}
		}()
		time.Sleep(time.Duration(r.Int64N(int64(2 * cycle))))
		agent.Process.Kill() // SIGKILL: no cleanup at all
		agent.Wait()
		close(stop)
		<-loopDone
		c.Close()
		if got := eduState(t, edu.BDF); got != before && got != "driver=vfio-pci override=vfio-pci" {
			midway++ // killed between two sysfs writes
		}

		agent = startAgent(t, sock, state)
		c2, err := client.Dial(sock)
		if err != nil {
			t.Fatal(err)
		}
		leases, err := c2.Status()
		if err != nil {
			t.Fatal(err)
		}
		got := eduState(t, edu.BDF)
		switch {
		case len(leases) == 0 && got != before:
			t.Fatalf("round %d: no lease, edu %s, want %s", round, got, before)
		case len(leases) == 1 && (held == nil || leases[0].ID != held.Lease.ID || got != "driver=vfio-pci override=vfio-pci"):
			t.Fatalf("round %d: re-adopted %+v with edu %s; client holds %v", round, leases[0], got, held)
		case len(leases) > 1:
			t.Fatalf("round %d: leases %+v", round, leases)
		}
		if held != nil {
			held.Close()
		}
		if len(leases) == 1 {
			adopted++
			if err := c2.Release(leases[0].ID); err != nil {
				t.Fatalf("round %d: release re-adopted lease: %v", round, err)
			}
		}
		if got := eduState(t, edu.BDF); got != before {
			t.Fatalf("round %d: edu %s after the last release, want %s", round, got, before)
		}
		if recs, _ := filepath.Glob(filepath.Join(state, "*.lease")); len(recs) != 0 {
			t.Fatalf("round %d: records left %v", round, recs)
		}
		c2.Close()
		agent.Process.Signal(syscall.SIGTERM)
		agent.Wait()
	}
	t.Logf("%d kill -9: %d leases re-adopted with the client holding the fds, %d kills left the edu between two sysfs writes", rounds, adopted, midway)
}

// TestGuestBroker runs a broker lease on the real iommufd: the agent opens
// the IOAS and attaches the edu itself, the client's memfd is mapped through
// IOMMU_IOAS_MAP, and release gives the edu back.
func TestGuestBroker(t *testing.T) {
	needDevice(t, "edu")
	edu := hwtest.FindEdu(t)[0]
	before := eduState(t, edu.BDF)
	fs, err := sysfs.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, server.Options{Backend: server.BackendIOMMUFD, Sysfs: fs, StateDir: t.TempDir(), Policy: server.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	sock := "/run/iommu-agent-broker.sock"
	ln, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.AcquireDevice(edu.BDF, client.AcquireOptions{Mode: proto.ModeBroker})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := client.NewMemfd("guest", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	iova, err := c.Map(a.Lease.ID, f, 0, 1<<20, 0x100000, true, "rw")
	if err != nil || iova != 0x100000 {
		t.Fatalf("map on the real IOAS: %#x, %v", iova, err)
	}
	if _, err := c.Map(a.Lease.ID, f, 0, 1<<20, 0x100000, true, "rw"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("overlapping map: %v, want exists", err)
	}
	// The agent maps by descriptor where the kernel has
	// IOMMU_IOAS_MAP_FILE, and mmaps the memfd where it has not.
	how := "mmap"
	if kernelMapsFiles(t) {
		how = "map_file"
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := `iommu_agent_broker_maps_total{how="` + how + `"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics lack %s", want)
	} else {
		t.Logf("broker map: %s", want)
	}
	if err := c.DMAWrite(a.Lease.ID, "", iova, []byte("x")); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("dma on a real device: %v, want unsupported", err)
	}
	if n, err := c.Unmap(a.Lease.ID, iova, 1<<20); err != nil || n != 1<<20 {
		t.Errorf("unmap: %d, %v", n, err)
	}
	if err := c.Release(a.Lease.ID); err != nil {
		t.Fatal(err)
	}
	if after := eduState(t, edu.BDF); after != before {
		t.Errorf("edu after release: %s, want %s", after, before)
	}
}

// kernelMapsFiles asks the kernel itself whether it has
// IOMMU_IOAS_MAP_FILE (Linux 6.13): ENOTTY means not.
func kernelMapsFiles(t *testing.T) bool {
	t.Helper()
	fd, err := iommufd.Open(iommufd.DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	ioas, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}
	f, mem, err := client.NewMemfd("probe", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer unix.Munmap(mem)
	_, err = fd.MapFile(ioas, int(f.Fd()), 0, 4096, 0, iommufd.Readable)
	if err != nil && !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("IOMMU_IOAS_MAP_FILE of a memfd page: %v", err)
	}
	return err == nil
}

// TestGuestSecondAgent starts a second agent process against a running
// one's socket and state dir, then against its socket alone: each exits
// non-zero naming the first, which keeps serving (a client lists after)
// and keeps its socket.
func TestGuestSecondAgent(t *testing.T) {
	needDevice(t, "edu")
	state := t.TempDir()
	sock := "/run/iommu-agent-second.sock"
	first := startAgent(t, sock, state)
	defer func() {
		first.Process.Signal(syscall.SIGTERM)
		first.Wait()
		os.Remove(sock)
	}()
	for _, tc := range []struct {
		name, state, want string
	}{
		{"same state dir and socket", state, fmt.Sprintf("another iommu-agent (pid %d) holds state dir %s", first.Process.Pid, state)},
		{"same socket", t.TempDir(), "another iommu-agent is serving on " + sock},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, "/proc/self/exe")
		cmd.Env = []string{guestAgentEnv + "=" + tc.state, guestSockEnv + "=" + sock}
		out, err := cmd.CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: second agent: %v, output %q; want a non-zero exit saying %q", tc.name, err, out, tc.want)
		}
		t.Logf("%s: second agent exits %v: %s", tc.name, err, strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the first agent's socket: %v", err)
	}
	c, err := client.Dial(sock)
	if err != nil {
		t.Fatalf("first agent after the second tried: %v", err)
	}
	defer c.Close()
	devs, _, err := c.List()
	if err != nil || len(devs) == 0 {
		t.Fatalf("list on the first agent: %v, %v", devs, err)
	}
	t.Logf("the first agent still serves: %d devices listed", len(devs))
}
