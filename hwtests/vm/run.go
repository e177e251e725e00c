package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

// Config is one harness run.
type Config struct {
	Lane          Lane
	Devices       Devices
	Variant       Variant
	KernelVersion string // "" = DefaultKernelVersion, or the newest bookworm 6.12 if it is gone
	Accel         string // auto, kvm or tcg
	ICount        string // QEMU -icount (TCG only), "" off; see BootSpec.ICount
	Memory        string
	SMP           int
	// Long runs the long tests (the crash sweep, the differential run) at
	// their full size: HWTESTS_LONG=1 in the guest (hwtest.Long).
	Long bool
	// Bench runs the benchmarks written as guest tests (agent/bench):
	// HWTESTS_BENCH=1 (hwtest.Bench); make bench sets it, make test not.
	Bench bool
	// Timeout is the hard deadline for the boot (QEMU is killed).
	Timeout time.Duration
	// TestTimeout is each binary's -test.timeout; 0 derives it from Timeout.
	TestTimeout time.Duration
	// Packages overrides discovery of hwtests-tagged packages.
	Packages []string
	// TestArgs go to every test binary (-run X becomes -test.run X).
	TestArgs []string
	CacheDir string
	// RunDir holds this run's logs and the guest's /out; "" = a fresh
	// directory under the cache's runs/.
	RunDir string
	// IoctlCoverage: on, off or auto (on for an unfiltered std run).
	IoctlCoverage string
	// SetupHost lets the harness run hwtests/vm/setup-host (as root) when
	// tools are missing.
	SetupHost bool
	// WorkDir is where the go command looks for the module; "" = cwd.
	WorkDir string
	// KeepRuns is how many run directories to keep under the cache.
	KeepRuns int
	// Results, if set, is a file the run appends its BootRecord to, so
	// one Summarize can report the counts of many runs per lane.
	Results string
	// CPrograms are C files compiled for the lane and put into the
	// initramfs (-cprog).
	CPrograms []CProgram
}

// Result is a run's outcome.
type Result struct {
	Counts
	Kernel Kernel
	Accel  string
	RunDir string
	Phases []Phase
	// QEMUCPU is the CPU time the guest's QEMU used.
	QEMUCPU time.Duration
}

// Run prepares everything, boots the guest, reports go test -v output on
// stdout and ends it with "hwtests[LANE]: N passed, M failed" and
// "hwtests: N passed, M failed". The error is
// non-nil when anything besides failing tests went wrong; failed tests
// show in the counts.
func Run(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) (res Result, err error) {
	start := time.Now()
	ph := newPhases()
	// Test output names its lane on every line; the two counts lines
	// name it themselves.
	tout := newLanePrefixer(stdout, cfg.Lane.Name)
	defer func() {
		res.Phases = ph.List()
		WriteTimings(os.Stderr, res.Phases)
		fmt.Fprintf(os.Stderr, "hwtests: boot %s %s %s took %.1fs (QEMU used %.1fs of CPU)\n",
			cfg.Lane.Name, cfg.Devices, cfg.Variant, time.Since(start).Seconds(), res.QEMUCPU.Seconds())
		if err != nil && res.Failed == 0 {
			// The harness itself failed before any test could: say so
			// where a reader of the test output looks.
			fmt.Fprintf(tout, "--- FAIL: hwtests (%s)\n", oneLine(err.Error()))
			res.Failed = 1
		}
		fmt.Fprintln(stdout, CountsLine(cfg.Lane.Name, res.Counts))
		fmt.Fprintln(stdout, CountsLine("", res.Counts))
		if cfg.Results != "" {
			rec := BootRecord{Lane: cfg.Lane.Name, Devices: cfg.Devices.String(), Modules: cfg.Variant,
				Passed: res.Passed, Failed: res.Failed, Skipped: res.Skipped, Seconds: time.Since(start).Seconds()}
			if werr := AppendResult(cfg.Results, rec); werr != nil {
				// A boot missing from the file would make the summary
				// undercount: fail this run instead.
				err = errors.Join(err, fmt.Errorf("results file: %w", werr))
			}
		}
		if res.RunDir != "" {
			writeRunRecord(filepath.Join(res.RunDir, "run.json"), cfg, res, err)
		}
	}()

	if cfg.Lane.Build != nil && cfg.Variant != VariantStd {
		return res, fmt.Errorf("lane %s builds vfio's own container and type1 into its kernel: -modules %s does not apply", cfg.Lane.Name, cfg.Variant)
	}
	mod, err := findModule(ctx, cfg.WorkDir)
	if err != nil {
		return res, err
	}
	stop := ph.start("host setup")
	if err := prepareHost(ctx, cfg, mod, log); err != nil {
		return res, err
	}
	stop()
	cache := Cache{Dir: cfg.CacheDir}
	if err := cache.CleanStale(); err != nil {
		log.Warn("cleaning stale cache staging dirs", "err", err)
	}
	runDir, err := makeRunDir(cache, cfg)
	if err != nil {
		return res, err
	}
	res.RunDir = runDir
	log.Info("run directory", "dir", runDir)

	// Kernel + modules and the Go build are independent: overlap them
	// (network and xz vs. the Go compiler).
	var (
		wg               sync.WaitGroup
		k                Kernel
		modDir           string
		kernelErr, goErr error
		pkgs             []TestPackage
		cprogs           map[string]string // guest path → host file
		binDir           = filepath.Join(runDir, "bin")
	)
	wg.Go(func() {
		if cfg.Lane.Build != nil {
			k, kernelErr = prepareOwnKernel(ctx, cache, cfg.Lane, cfg.KernelVersion, ph, log)
			return
		}
		k, kernelErr = prepareKernel(ctx, cache, cfg.Lane, cfg.KernelVersion, ph, log)
		if kernelErr != nil && cfg.SetupHost && os.Geteuid() == 0 && ctx.Err() == nil {
			// apt's lists may lack bookworm-backports: setup-host adds
			// the suites and updates the lists.
			log.Warn("kernel not found in apt's lists; running setup-host and retrying", "err", kernelErr)
			if err := runSetupHost(ctx, mod); err != nil {
				kernelErr = errors.Join(kernelErr, err)
				return
			}
			k, kernelErr = prepareKernel(ctx, cache, cfg.Lane, cfg.KernelVersion, ph, log)
		}
		if kernelErr != nil {
			return
		}
		stop := ph.start("modules " + string(cfg.Variant))
		modDir, kernelErr = buildModules(ctx, cache, cfg.Lane, k, cfg.Variant, log)
		stop()
	})
	wg.Go(func() {
		stop := ph.start("go build")
		defer stop()
		if pkgs, goErr = testPackages(ctx, mod, cfg); goErr != nil {
			return
		}
		if goErr = os.MkdirAll(binDir, 0o755); goErr != nil {
			return
		}
		if goErr = buildGuestBinaries(ctx, cache, mod, cfg.Lane, pkgs, binDir); goErr != nil {
			return
		}
		cprogs, goErr = buildCPrograms(ctx, cfg.Lane, cfg.CPrograms, mod.Dir, binDir)
	})
	wg.Wait()
	res.Kernel = k
	if err := errors.Join(kernelErr, goErr); err != nil {
		return res, err
	}

	accel, why := cfg.Accel, "from -accel"
	if cfg.ICount != "" {
		if accel == "kvm" {
			return res, errors.New("-icount needs TCG: it counts instructions QEMU itself executes")
		}
		accel, why = "tcg", "-icount"
	}
	memo := kvmMemo{path: filepath.Join(cache.Dir, "kvm-broken.json"), qemu: cfg.Lane.QEMU}
	if accel == "auto" && cfg.Lane.GOARCH != runtime.GOARCH {
		accel, why = "tcg", "the guest is "+cfg.Lane.GOARCH+", the host "+runtime.GOARCH
	}
	if accel == "auto" {
		accel, why = probeAccel(ctx, cfg.Lane)
		if accel == "kvm" {
			if reason := memo.broken(ctx); reason != "" {
				accel, why = "tcg", "KVM failed on this host before ("+reason+"); delete "+memo.path+" to try again"
			}
		}
	}
	log.Info("accelerator", "accel", accel, "why", why)

	var upgrade []byte // the ACPI table upgrade cpio, put before the initramfs
	if cfg.Lane.UpgradeIORT {
		stop = ph.start("IORT")
		iort, err := upgradedIORT(ctx, cache, cfg, k, binDir, runDir, accel, log)
		stop()
		if err != nil {
			return res, fmt.Errorf("IORT upgrade: %w", err)
		}
		if upgrade, err = acpiUpgradeCPIO(iort); err != nil {
			return res, err
		}
	}

	kernel := k.Image()
	if cfg.Lane.PVH {
		if p, err := pvhKernel(cache, kernel); err == nil {
			kernel = p
		} else {
			log.Warn("booting the bzImage", "err", err)
		}
	}
	consoleLog := filepath.Join(runDir, "console.log")
	var br BootResult
	for {
		stop = ph.start("pack")
		tests, initrd, err := pack(cfg, k, modDir, pkgs, binDir, runDir, accel, packExtras{Upgrade: upgrade, Files: cprogs})
		if err != nil {
			return res, err
		}
		stop()
		if accel == "tcg" || cfg.Accel != "auto" {
			// No repack can follow: the binaries live on in the
			// initramfs, so drop the ~20 MB copy from the run dir.
			_ = os.RemoveAll(binDir)
		}
		// Boot: QEMU start → /init's first frame; tests: → verdict;
		// shutdown: → QEMU exit.
		bootStop := ph.start("boot (" + accel + ")")
		var testsStop, shutdownStop func()
		p := NewParser(tout, log, tests, cfg.Lane.Output == wire.OutputKmsg)
		p.OnFrame = func(f wire.Frame) {
			switch {
			case f.Kind == wire.KindInit:
				bootStop()
				testsStop = ph.start("tests")
			case f.Kind == wire.KindVerdict && testsStop != nil:
				testsStop()
				shutdownStop = ph.start("shutdown")
			}
		}
		spec := BootSpec{
			Lane: cfg.Lane, Accel: accel, ICount: cfg.ICount, Memory: cfg.Memory, SMP: cfg.SMP,
			Kernel: kernel, Initrd: initrd, Devices: cfg.Devices,
			ConsoleLog: consoleLog, HostRoot: "/", OutDir: filepath.Join(runDir, "out"),
		}
		opt := BootOptions{Timeout: cfg.Timeout, StderrLog: filepath.Join(runDir, "qemu.log")}
		if cfg.Accel == "auto" && accel == "kvm" {
			opt.InitTimeout = kvmInitTimeout
		}
		br = Boot(ctx, spec, opt, p, log)
		bootStop()
		if shutdownStop != nil {
			shutdownStop()
		}
		if br.AccelFailed == "" || ctx.Err() != nil {
			break
		}
		// Auto mode only: KVM is there but cannot run this guest (nested
		// or PVM hosts). Remember it, and run under TCG.
		log.Warn("KVM cannot run the guest; falling back to TCG", "reason", br.AccelFailed)
		memo.record(ctx, br.AccelFailed)
		accel = "tcg"
	}
	res.Accel = accel
	res.Counts = br.Stream.Counts
	res.QEMUCPU = br.CPU

	if coverageEnabled(cfg) {
		stop = ph.start("coverage")
		c, err := ioctlCoverage(ctx, mod, cfg.Lane, filepath.Join(runDir, "out", "cover"), filepath.Join(runDir, "cover.txt"), tout)
		stop()
		if err != nil {
			return res, fmt.Errorf("ioctl coverage: %w", err)
		}
		res.Counts.Add(c)
	}

	if err := bootError(br, cfg.Timeout); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		log.Error("guest failed", "err", err, "console", consoleLog)
		fmt.Fprintf(os.Stderr, "--- tail of %s ---\n%s\n", consoleLog, fileTail(consoleLog, 3000))
		if br.Stderr != "" {
			fmt.Fprintf(os.Stderr, "--- QEMU stderr ---\n%s\n", br.Stderr)
		}
		return res, err
	}
	if res.Failed > 0 {
		fmt.Fprintf(os.Stderr, "--- tail of %s ---\n%s\n", consoleLog, fileTail(consoleLog, 2000))
	}
	return res, nil
}

// bootError says what went wrong with the boot itself, if anything.
func bootError(br BootResult, timeout time.Duration) error {
	var errs []error
	if br.TimedOut {
		errs = append(errs, fmt.Errorf("deadline of %s passed; QEMU killed", timeout))
	} else if br.QEMUErr != nil {
		errs = append(errs, fmt.Errorf("qemu: %w", br.QEMUErr))
	}
	s := br.Stream
	if !s.InitSeen {
		errs = append(errs, errors.New("guest /init never reported (kernel did not boot, or no output)"))
	}
	for _, e := range s.InitErrors {
		errs = append(errs, errors.New("guest: "+e))
	}
	for _, p := range s.Problems {
		errs = append(errs, errors.New("test stream: "+p))
	}
	if s.Verdict != "" && s.Verdict != "pass" && s.Failed == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("guest verdict: "+s.Verdict))
	}
	return errors.Join(errs...)
}

func coverageEnabled(cfg Config) bool {
	switch cfg.IoctlCoverage {
	case "on":
		return true
	case "off":
		return false
	}
	// The full suite on the std modules is the run that can issue every
	// ioctl: compat has no type1 dirty tracking, filters skip tests.
	return len(cfg.Packages) == 0 && len(cfg.TestArgs) == 0 && cfg.Variant != VariantCompat
}

// ioctlCoverage checks that every ioctl wrapper ran in the guest and
// reports it as TestIoctlCoverage.
func ioctlCoverage(ctx context.Context, mod Module, lane Lane, coverDir, profile string, stdout io.Writer) (Counts, error) {
	ws, err := ScanIoctlWrappers(mod, lane.GOARCH, coverageDirs())
	if err != nil {
		return Counts{}, err
	}
	blocks, err := mergeCoverage(ctx, coverDir, profile)
	if err != nil {
		return Counts{}, err
	}
	var sb strings.Builder
	writeCoverageTest(&sb, checkIoctlCoverage(ws, blocks))
	var c Counts
	for _, line := range strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n") {
		fmt.Fprintln(stdout, line)
		countLine(&c, line)
	}
	status := "ok  "
	if c.Failed > 0 {
		status = "FAIL"
	}
	fmt.Fprintf(stdout, "%s\thwtests/ioctl-coverage\t(%d wrappers in %s)\n", status, len(ws), strings.Join(coverageDirs(), ", "))
	return c, nil
}

// testPackages is -pkgs or the discovered hwtests packages.
func testPackages(ctx context.Context, mod Module, cfg Config) ([]TestPackage, error) {
	if len(cfg.Packages) == 0 {
		pkgs, err := discoverTestPackages(ctx, mod, cfg.Lane)
		if err == nil && len(pkgs) == 0 {
			err = fmt.Errorf("no package in %s has _test.go files tagged %s", mod.Path, BuildTag)
		}
		return pkgs, err
	}
	var pkgs []TestPackage
	for _, p := range cfg.Packages {
		tp, err := mod.Package(p)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, tp)
	}
	return dedupe(pkgs), nil
}

// packExtras are what some boots add to the initramfs.
type packExtras struct {
	// Upgrade is an uncompressed cpio put before the initramfs (the ACPI
	// table upgrade).
	Upgrade []byte
	// Collect goes to the manifest: files /init copies out.
	Collect []string
	// Name is the initramfs file's name ("" = initramfs.cpio).
	Name string
	// Files are executables to add: guest path → host file (-cprog).
	Files map[string]string
}

// pack writes the manifest and initramfs; it returns the tests as the
// guest knows them and the initramfs path.
func pack(cfg Config, k Kernel, modDir string, pkgs []TestPackage, binDir, runDir, accel string, x packExtras) ([]wire.Test, string, error) {
	depFile := filepath.Join(k.ModulesDir(), "modules.dep")
	var order []wire.Module
	if cfg.Lane.Build == nil {
		f, err := os.Open(depFile)
		if err != nil {
			return nil, "", err
		}
		dep, err := parseModulesDep(f)
		f.Close()
		if err != nil {
			return nil, "", err
		}
		if order, err = loadOrder(cfg.Lane, cfg.Variant, append(ninepModules(), cfg.Devices.Modules()...), dep, k.Uname); err != nil {
			return nil, "", err
		}
	} else if err := builtInDrivers(cfg.Lane, cfg.Devices); err != nil {
		return nil, "", err
	}
	testTimeout := cfg.TestTimeout
	if testTimeout == 0 {
		testTimeout = defaultTestTimeout(cfg.Timeout)
	}
	m := wire.Manifest{
		Lane:        cfg.Lane.Name,
		Uname:       k.Uname,
		Output:      cfg.Lane.Output,
		Modules:     order,
		Mounts:      guestMounts(),
		TestArgs:    cfg.TestArgs,
		TestTimeout: wire.Duration(testTimeout),
		Collect:     x.Collect,
		Env: []string{
			"HWTESTS_LANE=" + cfg.Lane.Name,
			"HWTESTS_IOMMU=" + cfg.Lane.IOMMUClass,
			"HWTESTS_DEVICES=" + cfg.Devices.GuestEnv(cfg.Lane.FirstSlot),
			"HWTESTS_MODULES=" + string(cfg.Variant),
			"HWTESTS_ACCEL=" + accel,
			"HWTESTS_ICOUNT=" + cfg.ICount, // "" off; under it guest time counts instructions
			"HWTESTS_KERNEL=" + k.Version,
		},
	}
	if coverageEnabled(cfg) {
		// Only where it is read: writing each binary's counters over
		// 9p took about 1.4 s of a boot's twelve binaries.
		m.CoverDir = "/out/cover"
	}
	if !cfg.Bench {
		// Tests allocate freely and the guest's CPU is emulated: the
		// collector at GOGC=400 made the slowest packages about 15%
		// faster (hwtests, agent/server, ebpf: 42 s to 36 s under TCG).
		// Benchmarks keep the default a user's VMM or agent runs with.
		m.Env = append(m.Env, "GOGC=400")
	}
	if cfg.Lane.Build != nil {
		m.Env = append(m.Env, "HWTESTS_BUILTIN=1")
	}
	if cfg.Long {
		m.Env = append(m.Env, "HWTESTS_LONG=1")
	}
	if cfg.Bench {
		m.Env = append(m.Env, "HWTESTS_BENCH=1")
	}
	if cfg.Lane.Output == wire.OutputSerial {
		m.TestDevice = "/dev/" + cfg.Lane.TestPort
	}
	tests := map[string]string{}
	for _, p := range pkgs {
		guest := "/tests/" + p.Binary()
		tests[guest] = filepath.Join(binDir, p.Binary())
		m.Tests = append(m.Tests, wire.Test{Name: p.Rel, Path: guest})
	}
	for guest, host := range x.Files {
		if _, ok := tests[guest]; ok {
			return nil, "", fmt.Errorf("%s is both a test binary and a -cprog", guest)
		}
		tests[guest] = host
	}
	if cfg.Lane.Build != nil {
		// No modules, so no /lib/modules: what a kernel without module
		// support looks like to the agent's checks.
		depFile = ""
	}
	name := x.Name
	if name == "" {
		name = "initramfs.cpio"
	}
	initrd := filepath.Join(runDir, name)
	err := packInitramfs(initrd, initramfsSpec{
		Init:       filepath.Join(binDir, "init"),
		Manifest:   m,
		Tests:      tests,
		Modules:    moduleFiles(order, k, modDir),
		ModulesDep: depFile,
		Prefix:     x.Upgrade,
	})
	return m.Tests, initrd, err
}

// defaultTestTimeout leaves the binaries' own -test.timeout a minute (or
// a quarter) before the hard deadline, so a hang prints goroutine stacks
// instead of just being killed.
func defaultTestTimeout(deadline time.Duration) time.Duration {
	if deadline >= 4*time.Minute {
		return deadline - time.Minute
	}
	return deadline * 3 / 4
}

// makeRunDir creates the run directory with out/cover for the guest, and
// prunes old runs beyond KeepRuns.
func makeRunDir(c Cache, cfg Config) (string, error) {
	dir := cfg.RunDir
	if dir == "" {
		runs := filepath.Join(c.Dir, "runs")
		if err := os.MkdirAll(runs, 0o755); err != nil {
			return "", err
		}
		pruneRuns(runs, cfg.KeepRuns-1)
		var err error
		if dir, err = os.MkdirTemp(runs, runDirPrefix(time.Now(), os.Getpid())); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "out", "cover"), 0o777); err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}

// runDirPrefix names a run directory by its start time, then the pid of
// the harness using it: names sort by time, and pruning can tell a run
// still going on (lanes run side by side) from a finished one.
func runDirPrefix(t time.Time, pid int) string {
	return t.Format("20060102-150405") + "-p" + strconv.Itoa(pid) + "-"
}

// runDirPID is the pid in a run directory's name, if it has one.
func runDirPID(name string) (int, bool) {
	f := strings.Split(name, "-")
	if len(f) < 4 || !strings.HasPrefix(f[2], "p") {
		return 0, false
	}
	pid, err := strconv.Atoi(f[2][1:])
	return pid, err == nil && pid > 0
}

// pruneRuns keeps the newest keep run directories (names sort by time),
// and never removes one whose harness is still running.
func pruneRuns(runs string, keep int) {
	ents, err := os.ReadDir(runs)
	if err != nil {
		return
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for len(names) > max(keep, 0) {
		if pid, ok := runDirPID(names[0]); !ok || pid == os.Getpid() || !processAlive(pid) {
			_ = os.RemoveAll(filepath.Join(runs, names[0]))
		}
		names = names[1:]
	}
}

// prepareHost makes sure the lane's tools exist, running setup-host as
// root when they do not.
func prepareHost(ctx context.Context, cfg Config, mod Module, log *slog.Logger) error {
	missing := append(missingTools(cfg.Lane.HostTools), missingHostFiles(cfg.Lane.HostFiles)...)
	if len(missing) == 0 {
		return nil
	}
	script := filepath.Join(mod.Dir, "hwtests", "vm", "setup-host")
	if !cfg.SetupHost {
		return fmt.Errorf("host lacks %s (run %s as root)", strings.Join(missing, ", "), script)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("host lacks %s; installing them needs root: run %s as root", strings.Join(missing, ", "), script)
	}
	log.Info("preparing host", "missing", missing, "script", script)
	if err := runSetupHost(ctx, mod); err != nil {
		return err
	}
	if missing := append(missingTools(cfg.Lane.HostTools), missingHostFiles(cfg.Lane.HostFiles)...); len(missing) > 0 {
		return fmt.Errorf("after setup-host the host still lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// runSetupHost runs hwtests/vm/setup-host (apt sources, QEMU, build
// tools; idempotent), its output on our stderr.
func runSetupHost(ctx context.Context, mod Module) error {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(mod.Dir, "hwtests", "vm", "setup-host"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("setup-host: %w", err)
	}
	return nil
}

// missingHostFiles lists the lane's host files that do not exist.
func missingHostFiles(files []string) []string {
	var missing []string
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	return missing
}

func missingTools(tools []string) []string {
	var missing []string
	for _, t := range tools {
		if t == "depmod" {
			if depmodPath() != "depmod" {
				continue
			}
		}
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	return missing
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestArgs rewrites go test's short flags (-run, -count, -v, ...) to the
// -test.* form a test binary takes; other arguments pass unchanged.
func TestArgs(args []string) []string {
	short := []string{"bench", "benchmem", "benchtime", "count", "cpu", "failfast", "fullpath", "list",
		"parallel", "run", "short", "shuffle", "skip", "timeout", "v"}
	out := make([]string, 0, len(args))
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "-"); ok && !strings.HasPrefix(name, "-") && !strings.HasPrefix(name, "test.") {
			base, _, _ := strings.Cut(name, "=")
			if slices.Contains(short, base) {
				a = "-test." + name
			}
		}
		out = append(out, a)
	}
	return out
}

// kvmInitTimeout bounds how long a KVM boot may take to reach /init in
// auto mode before the harness gives up on KVM (a good KVM boot takes a
// second or two).
const kvmInitTimeout = 60 * time.Second

// kvmMemo remembers, in the cache, that KVM failed to run the guest on
// this host, so later auto runs go straight to TCG. It is keyed by the
// host kernel and QEMU version: either changing retries KVM.
type kvmMemo struct {
	path string
	qemu string
}

func (m kvmMemo) key(ctx context.Context) string {
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	out, _ := command(ctx, "", m.qemu, "--version")
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(string(rel)) + " | " + strings.TrimSpace(first)
}

// broken returns the recorded reason if KVM failed on this host before.
func (m kvmMemo) broken(ctx context.Context) string {
	b, err := os.ReadFile(m.path)
	if err != nil {
		return ""
	}
	key, reason, _ := strings.Cut(string(b), "\n")
	if key != m.key(ctx) {
		return ""
	}
	return strings.TrimSpace(reason)
}

func (m kvmMemo) record(ctx context.Context, reason string) {
	tmp := m.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(m.key(ctx)+"\n"+oneLine(reason)+"\n"), 0o644); err == nil {
		_ = os.Rename(tmp, m.path)
	}
}

// writeRunRecord leaves what a CI artefact reader wants to know about the
// run next to its logs: kernel version, accelerator, counts, timings.
func writeRunRecord(path string, cfg Config, res Result, runErr error) {
	type phase struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"seconds"`
	}
	rec := struct {
		Lane          string  `json:"lane"`
		Devices       string  `json:"devices"`
		Modules       Variant `json:"modules"`
		KernelVersion string  `json:"kernel_version"`
		KernelFrom    string  `json:"kernel_from"`
		Uname         string  `json:"uname"`
		Accel         string  `json:"accel"`
		Passed        int     `json:"passed"`
		Failed        int     `json:"failed"`
		Skipped       int     `json:"skipped"`
		Error         string  `json:"error,omitempty"`
		Phases        []phase `json:"phases"`
	}{
		Lane: cfg.Lane.Name, Devices: cfg.Devices.String(), Modules: cfg.Variant,
		KernelVersion: res.Kernel.Version, KernelFrom: res.Kernel.From, Uname: res.Kernel.Uname,
		Accel: res.Accel, Passed: res.Passed, Failed: res.Failed, Skipped: res.Skipped,
	}
	if runErr != nil {
		rec.Error = runErr.Error()
	}
	for _, p := range res.Phases {
		rec.Phases = append(rec.Phases, phase{p.Name, p.Dur.Seconds()})
	}
	if b, err := json.MarshalIndent(rec, "", "  "); err == nil {
		_ = os.WriteFile(path, append(b, '\n'), 0o644)
	}
}
