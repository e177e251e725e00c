package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

// probeAccel picks kvm when /dev/kvm opens read-write and QEMU can start
// a KVM machine, else tcg. It costs one QEMU start (~0.1 s).
func probeAccel(ctx context.Context, lane Lane) (string, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg", "no usable /dev/kvm: " + err.Error()
	}
	f.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lane.QEMU, "-accel", "kvm", "-machine", "none",
		"-nodefaults", "-display", "none", "-monitor", "stdio")
	cmd.Stdin = strings.NewReader("quit\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "tcg", fmt.Sprintf("QEMU cannot use KVM: %v: %s", err, tail(string(out), 300))
	}
	return "kvm", "/dev/kvm usable"
}

// BootSpec is one guest boot.
type BootSpec struct {
	Lane  Lane
	Accel string // kvm or tcg
	// ICount is QEMU's -icount under TCG ("" off): the guest's clocks
	// count executed instructions, so timings inside the guest measure
	// instructions, whatever else the host is doing.
	ICount  string
	Memory  string // -m
	SMP     int
	Kernel  string // vmlinuz
	Initrd  string
	Devices Devices
	// ConsoleLog receives the kernel console.
	ConsoleLog string
	// HostRoot is exported read-only as tag "hostroot"; OutDir read-write
	// as tag "out".
	HostRoot, OutDir string
}

// 9p mount tags and options the guest uses (cache=loose
// is what makes host binaries fast; the writable export stays uncached so
// the host sees every write).
const (
	hostRootTag   = "hostroot"
	outTag        = "out"
	ninepOpts     = "trans=virtio,version=9p2000.L,msize=512000"
	hostRootOpts  = ninepOpts + ",cache=loose"
	testChardevID = "tests"
	consoleID     = "console"
)

// guestMounts are the manifest's 9p mounts matching QEMUArgs' exports.
func guestMounts() []wire.Mount {
	return []wire.Mount{
		{Tag: hostRootTag, Dir: "/host", ReadOnly: true, Options: hostRootOpts, HostRoot: true},
		{Tag: outTag, Dir: "/out", Options: ninepOpts},
	}
}

// QEMUArgs builds the command line (without the binary). The kernel
// console goes to ConsoleLog; the test stream is QEMU's stdout: the
// second serial port, or the console itself for kmsg lanes.
func (b BootSpec) QEMUArgs() []string {
	l := b.Lane
	args := []string{"-accel", b.Accel}
	if b.ICount != "" {
		args = append(args, "-icount", b.ICount)
	}
	args = append(args, l.Machine...)
	cpu := l.TCGCPU
	if b.Accel == "kvm" {
		cpu = l.KVMCPU
	}
	if cpu != "" {
		args = append(args, "-cpu", cpu)
	}
	if l.Firmware != "" {
		args = append(args, "-bios", l.Firmware)
	}
	args = append(args,
		"-m", b.Memory, "-smp", strconv.Itoa(b.SMP),
		"-nodefaults", "-display", "none", "-no-reboot",
		"-kernel", b.Kernel, "-initrd", b.Initrd,
		"-append", l.kernelCmdline(),
	)
	// Devices before the 9p exports, so their addresses stay fixed.
	args = append(args, b.Devices.QEMUArgs(l.FirstSlot, l.BridgeSlot)...)
	args = append(args,
		"-fsdev", "local,id=fs-"+hostRootTag+",path="+b.HostRoot+",security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=fs-"+hostRootTag+",mount_tag="+hostRootTag,
		"-fsdev", "local,id=fs-"+outTag+",path="+b.OutDir+",security_model=none",
		"-device", "virtio-9p-pci,fsdev=fs-"+outTag+",mount_tag="+outTag,
	)
	switch l.Output {
	case wire.OutputKmsg:
		// The test stream rides on the console; Boot tees it to the log.
		args = append(args, "-chardev", "stdio,id="+consoleID+",signal=off")
		args = append(args, portArgs(l.Console, consoleID)...)
	default:
		args = append(args, "-chardev", "file,id="+consoleID+",path="+b.ConsoleLog)
		args = append(args, portArgs(l.Console, consoleID)...)
		args = append(args, "-chardev", "stdio,id="+testChardevID+",signal=off")
		args = append(args, portArgs(l.TestPort, testChardevID)...)
	}
	return args
}

// BootResult is how the QEMU process ended.
type BootResult struct {
	Stream   StreamResult
	TimedOut bool
	// AccelFailed: the accelerator broke before /init ran (a KVM internal
	// error, or no /init within BootOptions.InitTimeout).
	AccelFailed string
	QEMUErr     error  // exit status or start failure
	Stderr      string // QEMU's stderr tail
	// CPU is the user and system time QEMU used: with the wall time, how
	// much of a core the guest kept busy.
	CPU time.Duration
}

// BootOptions bounds a boot.
type BootOptions struct {
	// Timeout is the hard deadline for the whole run.
	Timeout time.Duration
	// InitTimeout, if set, kills QEMU when /init has not reported by
	// then, and so does a KVM failure message on QEMU's stderr: used for
	// a KVM attempt that may fall back to TCG.
	InitTimeout time.Duration
	StderrLog   string
}

// kvmFailures are QEMU stderr messages that mean KVM cannot run this
// guest on this host (seen under nested/PVM KVM: MSR writes refused,
// instruction emulation failures).
func kvmFailures() []string {
	return []string{"KVM internal error", "emulation failure", "failed to set MSR", "kvm_buf_set_msrs", "KVM_RUN"}
}

// Boot runs QEMU until it exits or the deadline passes, streaming the test
// stream through p.
func Boot(ctx context.Context, b BootSpec, opt BootOptions, p *Parser, log *slog.Logger) BootResult {
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	attemptCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	args := b.QEMUArgs()
	log.Debug("qemu", "cmd", b.Lane.QEMU+" "+strings.Join(args, " "))
	cmd := exec.CommandContext(attemptCtx, b.Lane.QEMU, args...)
	cmd.WaitDelay = 5 * time.Second
	var res BootResult
	stderrFile, err := os.Create(opt.StderrLog)
	if err != nil {
		res.QEMUErr = err
		return res
	}
	defer stderrFile.Close()
	var errTail tailBuffer
	watch := &lineWatcher{patterns: kvmFailures(), onMatch: func(line string) {
		if opt.InitTimeout > 0 {
			abort(errors.New(line))
		}
	}}
	cmd.Stderr = io.MultiWriter(stderrFile, &errTail, watch)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		res.QEMUErr = err
		return res
	}
	var streamIn io.Reader = stdout
	if b.Lane.Output == wire.OutputKmsg {
		consoleFile, err := os.Create(b.ConsoleLog)
		if err != nil {
			res.QEMUErr = err
			return res
		}
		defer consoleFile.Close()
		streamIn = io.TeeReader(stdout, consoleFile)
	}
	initSeen := make(chan struct{})
	var once sync.Once
	prev := p.OnFrame
	p.OnFrame = func(f wire.Frame) {
		if f.Kind == wire.KindInit {
			once.Do(func() { close(initSeen) })
		}
		if prev != nil {
			prev(f)
		}
	}
	if err := cmd.Start(); err != nil {
		res.QEMUErr = fmt.Errorf("start %s: %w", b.Lane.QEMU, err)
		return res
	}
	if opt.InitTimeout > 0 {
		go func() {
			select {
			case <-initSeen:
			case <-attemptCtx.Done():
			case <-time.After(opt.InitTimeout):
				abort(fmt.Errorf("no /init output within %s", opt.InitTimeout))
			}
		}()
	}
	// Read to EOF (QEMU exited or was killed), then reap.
	readErr := p.Consume(streamIn)
	res.QEMUErr = cmd.Wait()
	if ps := cmd.ProcessState; ps != nil {
		res.CPU = ps.UserTime() + ps.SystemTime()
	}
	if readErr != nil && res.QEMUErr == nil {
		res.QEMUErr = fmt.Errorf("read test stream: %w", readErr)
	}
	res.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	if cause := context.Cause(attemptCtx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		res.AccelFailed = cause.Error()
	}
	res.Stderr = errTail.String()
	select {
	case <-initSeen:
	default:
		if opt.InitTimeout > 0 && res.AccelFailed == "" && !res.TimedOut && ctx.Err() == nil {
			// QEMU died before /init (e.g. an assertion in KVM setup).
			res.AccelFailed = "QEMU exited before /init: " + oneLine(tail(res.Stderr, 300))
		}
	}
	if res.AccelFailed == "" {
		res.Stream = p.Finish()
	}
	return res
}

// lineWatcher calls onMatch for each written line containing a pattern.
type lineWatcher struct {
	mu       sync.Mutex
	patterns []string
	onMatch  func(string)
	partial  []byte
}

func (w *lineWatcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		for _, p := range w.patterns {
			if strings.Contains(line, p) {
				w.onMatch(line)
				break
			}
		}
	}
	if len(w.partial) > 64<<10 {
		w.partial = w.partial[:0]
	}
	return len(b), nil
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if t.buf.Len() > 16<<10 {
		keep := append([]byte(nil), t.buf.Bytes()[t.buf.Len()-8<<10:]...)
		t.buf.Reset()
		t.buf.Write(keep)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tail(t.buf.String(), 8<<10)
}

// fileTail returns the last n bytes of a file, for failure reports.
func fileTail(p string, n int64) string {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}
