//go:build linux

package bench

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// cloopSource is the C side of the go-vs-c rows: see its comment. It
// sits in a directory of its own because go build refuses C files in a
// package without cgo.
//
//go:embed cloop/cloop.c
var cloopSource []byte

// cloopFlags build cloop.c freestanding and static: it needs no libc, so
// a cross gcc without its target's libc builds it too.
var cloopFlags = []string{"-static", "-O2", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-asynchronous-unwind-tables"}

// GoVsC measures our ioctl layer (ioctl/iommufd, ioctl/vfio) against a
// minimal C loop doing the same map+unmap on the same fds and memory:
// IOAS_MAP+UNMAP with a device attached (the real cost: the IOMMU's page
// table is written) and on an IOAS alone (iommufd's bookkeeping, no page
// is pinned), and type1 MAP_DMA+UNMAP_DMA, each of 4 KiB, 2 MiB and
// 1 GiB. The C program comes from Env.CHelper or is compiled in the run.
func GoVsC() Bench {
	return Bench{Group: "go-vs-c", Run: runGoVsC}
}

// cloopIOVA is where both sides map: 1 GiB-aligned, inside every lane's
// IOVA ranges, clear of the x86 MSI window and the SMMUv3 one.
const cloopIOVA = gib

// goCSizes are the mapping sizes of the go-vs-c rows.
var goCSizes = []uint64{pg, 2 * mib, gib}

func runGoVsC(ctx context.Context, e *Env) ([]Row, error) {
	bin, done, err := e.cloop(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var rows []Row
	dev, devErr := e.firstDevice()

	type kind struct {
		name  string
		needs error // why it cannot run, or nil
		open  func() (io.Closer, loopSides, error)
	}
	kinds := []kind{
		{"IOAS_MAP+UNMAP, edu attached", devErr, func() (io.Closer, loopSides, error) {
			s, err := openIOMMUFD(ctx, &dev)
			if err != nil {
				return nil, loopSides{}, err
			}
			return s, iommufdSides(s.fd, s.ioas), nil
		}},
		{"IOAS_MAP+UNMAP, IOAS alone", nil, func() (io.Closer, loopSides, error) {
			s, err := openIOMMUFD(ctx, nil)
			if err != nil {
				return nil, loopSides{}, err
			}
			return s, iommufdSides(s.fd, s.ioas), nil
		}},
		{"type1 MAP_DMA+UNMAP_DMA", devErr, func() (io.Closer, loopSides, error) {
			s, err := openType1(ctx, dev)
			if err != nil {
				return nil, loopSides{}, err
			}
			return s, type1Sides(s.c), nil
		}},
	}
	for _, k := range kinds {
		if k.needs != nil {
			rows = append(rows, Row{Name: k.name, Skipped: k.needs.Error()})
			continue
		}
		s, sides, err := k.open()
		if err != nil {
			rows = append(rows, Row{Name: k.name, Skipped: err.Error()})
			continue
		}
		for _, size := range goCSizes {
			if ctx.Err() != nil {
				s.Close()
				return rows, ctx.Err()
			}
			name := k.name + ", " + sizeName(size)
			if why := memoryShort(size); why != "" {
				rows = append(rows, Row{Name: name, Skipped: why})
				continue
			}
			r, err := e.goCRow(bin, Row{Name: name, Subject: sides.goName, Baseline: "C loop (cloop.c)", Goal: 1.03}, sides, size)
			if err != nil {
				s.Close()
				return rows, err
			}
			rows = append(rows, r)
		}
		if err := s.Close(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// memoryShort says why size bytes cannot be mapped here, or "": the
// memfd is populated, so it takes size of RAM, with 256 MiB to spare.
func memoryShort(size uint64) string {
	const headroom = 256 * mib
	if size < 256*mib {
		return ""
	}
	mi, err := meminfo()
	if err != nil {
		return "read /proc/meminfo: " + err.Error()
	}
	if avail := mi["MemAvailable"]; avail < size+headroom {
		return fmt.Sprintf("needs %s of memory + %d MiB headroom, MemAvailable is %d MiB", sizeName(size), headroom/mib, avail/mib)
	}
	return ""
}

// loopSides are the two sides of a go-vs-c row on one fd.
type loopSides struct {
	goName string
	// goLoop runs n map+unmap pairs of mem at iova through our layer.
	goLoop func(mem []byte, n int) error
	// cArgs are cloop's arguments; the fd is its fd 3 and the memfd its
	// fd 4.
	cArgs func(length uint64) []string
	// file is a duplicate of the fd for cloop.
	file func() (*os.File, error)
}

func iommufdSides(fd *iommufd.FD, ioas iommufd.ID) loopSides {
	const flags = iommufd.FixedIOVA | iommufd.Readable | iommufd.Writeable
	return loopSides{
		goName: "Go (ioctl/iommufd)",
		goLoop: func(mem []byte, n int) error {
			for range n {
				if _, err := fd.Map(ioas, mem, cloopIOVA, flags); err != nil {
					return err
				}
				if _, err := fd.Unmap(ioas, cloopIOVA, uint64(len(mem))); err != nil {
					return err
				}
			}
			return nil
		},
		cArgs: func(length uint64) []string {
			return []string{"iommufd", "3", strconv.FormatUint(uint64(ioas), 10), "4", strconv.FormatUint(length, 10), strconv.Itoa(cloopIOVA)}
		},
		file: fd.File,
	}
}

func type1Sides(c *vfio.Container) loopSides {
	return loopSides{
		goName: "Go (ioctl/vfio)",
		goLoop: func(mem []byte, n int) error {
			for range n {
				if err := c.MapDMA(mem, cloopIOVA, vfio.DMARead|vfio.DMAWrite); err != nil {
					return err
				}
				if _, err := c.UnmapDMA(cloopIOVA, uint64(len(mem)), 0); err != nil {
					return err
				}
			}
			return nil
		},
		cArgs: func(length uint64) []string {
			return []string{"type1", "3", "4", strconv.FormatUint(length, 10), strconv.Itoa(cloopIOVA)}
		},
		file: func() (*os.File, error) {
			d, err := unix.Dup(c.FD())
			if err != nil {
				return nil, fmt.Errorf("dup container: %w", err)
			}
			return os.NewFile(uintptr(d), "vfio-container"), nil
		},
	}
}

// goCRow measures one row: a populated memfd of size bytes, mapped by
// both sides, with one cloop process started before anything is timed.
func (e *Env) goCRow(bin string, r Row, sides loopSides, size uint64) (Row, error) {
	mem, err := newMemfd("go-vs-c", int(size), 0, 0)
	if err != nil {
		return r, err
	}
	defer mem.Close()
	f, err := sides.file()
	if err != nil {
		return r, err
	}
	mf, err := mem.file()
	if err != nil {
		f.Close()
		return r, err
	}
	c, err := startCLoop(bin, sides.cArgs(size), f, mf)
	f.Close()
	mf.Close()
	if err != nil {
		return r, err
	}
	e.progress("  %s: %s vs %s", r.Name, r.Subject, r.Baseline)
	v, b, err := compareTimed(e.timing(),
		func(n int) (time.Duration, error) {
			start := time.Now()
			err := sides.goLoop(mem.mem, n)
			return time.Since(start), err
		},
		c.run)
	if cerr := c.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w", r.Name, err)
	}
	r.Value, r.Base, r.Unit = v, b, "ns/op"
	// What the Go side pays that C does not is the runtime's syscall
	// path: with one P, sysmon takes it from a thread in a long syscall
	// and starts another M that competes for the CPU, and the scheduler
	// reads the clock, which is itself a syscall where the clocksource
	// has no vDSO read (hpet, acpi_pm: a TCG guest). Name both.
	r.Note = fmt.Sprintf("one op is a map and an unmap; GOMAXPROCS %d; clocksource %s, a clock read %.0f ns",
		runtime.GOMAXPROCS(0), clocksource(), clockRead())
	return ratioRow(r), nil
}

// cloop returns the C helper: Env.CHelper, or the embedded source
// compiled with $CC or cc into a temporary directory that done removes.
func (e *Env) cloop(ctx context.Context) (bin string, done func(), err error) {
	if e.CHelper != "" {
		return e.CHelper, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "iommu-agent-cloop-")
	if err != nil {
		return "", nil, err
	}
	bin, err = buildCLoop(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// errNoCC is why go-vs-c skips on a machine with neither a compiler nor a
// prebuilt helper.
var errNoCC = errors.New("no C compiler ($CC or cc) and no prebuilt cloop (-c-helper)")

// buildCLoop compiles cloop.c into dir with $CC (split at spaces, so
// "gcc -m64" works) or cc.
func buildCLoop(ctx context.Context, dir string) (string, error) {
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	if _, err := exec.LookPath(cc[0]); err != nil {
		return "", fmt.Errorf("%w: %v", errNoCC, err)
	}
	src := filepath.Join(dir, "cloop.c")
	if err := os.WriteFile(src, cloopSource, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cloop")
	args := append(append(cc[1:len(cc):len(cc)], cloopFlags...), "-o", bin, src)
	out, err := exec.CommandContext(ctx, cc[0], args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("compile cloop.c with %s: %w: %s", strings.Join(cc, " "), err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// cLoop is a running cloop: a count in, the loop's time out.
type cLoop struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startCLoop starts bin with args; files become its fds 3, 4, ...
func startCLoop(bin string, args []string, files ...*os.File) (*cLoop, error) {
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return &cLoop{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// run asks for n map+unmap pairs and returns their time.
func (c *cLoop) run(n int) (time.Duration, error) {
	_, werr := fmt.Fprintf(c.in, "%d\n", n)
	// A cloop that failed before reading (it could not map the memfd)
	// has said why on stdout: read that rather than report the closed
	// pipe.
	line, err := c.out.ReadString('\n')
	if err != nil {
		if werr != nil {
			return 0, fmt.Errorf("cloop: %w", werr)
		}
		return 0, fmt.Errorf("cloop: read its answer: %w", err)
	}
	return parseCLoop(line)
}

// parseCLoop reads one answer of cloop: "ok NS" or "err ERRNO [what]".
func parseCLoop(line string) (time.Duration, error) {
	f := strings.Fields(line)
	if len(f) >= 2 && f[0] == "ok" {
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err == nil && ns >= 0 {
			return time.Duration(ns), nil
		}
	}
	if len(f) >= 2 && f[0] == "err" {
		if n, err := strconv.Atoi(f[1]); err == nil {
			what := strings.Join(f[2:], " ")
			if what == "" {
				what = "map+unmap"
			}
			return 0, fmt.Errorf("cloop: %s: %w", what, unix.Errno(n))
		}
	}
	return 0, fmt.Errorf("cloop: unexpected answer %q", strings.TrimSpace(line))
}

// Close ends cloop (end of input) and waits for it.
func (c *cLoop) Close() error {
	c.in.Close()
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("cloop: %w", err)
	}
	return nil
}

// clocksource is the kernel's current clocksource.
func clocksource() string {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// clockRead is what one time.Now costs here, in ns.
func clockRead() float64 {
	const n = 1000
	start := time.Now()
	var last time.Time
	for range n {
		last = time.Now()
	}
	return float64(last.Sub(start).Nanoseconds()) / n
}
