// Command hwtests runs the module's hwtests-tagged tests in a QEMU guest
// with an emulated IOMMU and a real Debian 6.12 kernel:
//
//	go run ./hwtests/vm/cmd/hwtests [flags] [-- test flags]
//
// Test output comes on stdout in go test -v form, ending with
// "hwtests[LANE]: N passed, M failed" and "hwtests: N passed, M failed";
// progress and timings go to stderr. Arguments after the flags go to every
// test binary (-run X is passed as -test.run X).
//
// Many runs (make guest boots ten guests over three lanes) add up with
// -results FILE (or $HWTESTS_RESULTS) on each run, then
//
//	go run ./hwtests/vm/cmd/hwtests -summary FILE
//
// which prints one "hwtests[LANE]: ..." line per lane and the total, and
// fails if a test failed or no run was recorded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/iommu-agent/iommu-agent/hwtests/vm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hwtests:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, opt, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if opt.summary != "" {
		return vm.Summarize(opt.summary, stdout)
	}
	level := slog.LevelInfo
	if opt.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	res, err := vm.Run(ctx, cfg, stdout, log)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("%d tests failed", res.Failed)
	}
	return nil
}

// options are the flags that are not a vm.Config.
type options struct {
	verbose bool
	summary string
}

func parseFlags(args []string, stderr io.Writer) (vm.Config, options, error) {
	fs := flag.NewFlagSet("hwtests", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		laneName  = fs.String("lane", vm.Lanes()[0].Name, "guest architecture + IOMMU: "+laneNames())
		devices   = fs.String("devices", "edu", "guest PCI devices: edu, e1000, e1000e, igb, comma-separated; bridge:<dev> opens a PCIe-to-PCI bridge holding that and the following devices")
		modules   = fs.String("modules", "std", "module build: std (vfio container + type1) or compat (iommufd's /dev/vfio/vfio)")
		kver      = fs.String("kernel-version", "", "Debian linux 6.12 package version (default "+vm.DefaultKernelVersion+", or the newest bookworm 6.12 if the mirror dropped it)")
		accel     = fs.String("accel", "auto", "auto (kvm if usable), kvm or tcg")
		icount    = fs.String("icount", "", "QEMU -icount, e.g. shift=0,sleep=off: guest clocks count instructions, so overhead ratios measured in the guest hold on a loaded host (TCG only)")
		mem       = fs.String("m", "2G", "guest memory")
		benchRun  = fs.Bool("bench", false, "run the benchmarks written as guest tests (agent/bench; make bench): they skip otherwise")
		long      = fs.Bool("long", false, "run the long guest tests (crash sweep, differential run) at their full, nightly size")
		smp       = fs.Int("smp", 1, "guest CPUs (1 by default: an RCU stall with 2 TCG vCPUs on a busy 2-core host once hung a run)")
		timeout   = fs.Duration("timeout", 10*time.Minute, "hard deadline for the guest run; QEMU is killed after it")
		ttimeout  = fs.Duration("test-timeout", 0, "-test.timeout per binary (default: a minute less than -timeout)")
		pkgs      = fs.String("pkgs", "", "comma-separated packages to test (default: every package with hwtests-tagged tests)")
		cacheDir  = fs.String("cache", "", "cache directory (default $IOMMU_AGENT_CACHE/hwtests or ~/.cache/iommu-agent/hwtests)")
		runDir    = fs.String("run-dir", "", "directory for this run's logs and guest output (default: under the cache)")
		coverage  = fs.String("ioctl-coverage", "auto", "check every ioctl wrapper in ioctl/iommufd and ioctl/vfio ran in the guest: on, off, or auto (on for an unfiltered -modules std run)")
		setup     = fs.Bool("setup", true, "run hwtests/vm/setup-host (as root) when host tools are missing")
		keepRuns  = fs.Int("keep-runs", 5, "run directories to keep under the cache")
		runRE     = fs.String("run", "", "passed to every test binary as -test.run")
		verbose   = fs.Bool("v", false, "log guest /init progress and the QEMU command line")
		results   = fs.String("results", os.Getenv("HWTESTS_RESULTS"), "append this run's lane and counts to this file as a JSON line, for -summary (default $HWTESTS_RESULTS)")
		cprog     = fs.String("cprog", "", "src.c:/guest/path,...: compile freestanding C files (no libc) for the lane on the host and put them into the initramfs")
		summary   = fs.String("summary", "", "boot nothing: print the counts per lane and in total of the runs recorded in this -results file")
		laneValue vm.Lane
	)
	if err := fs.Parse(args); err != nil {
		return vm.Config{}, options{}, err
	}
	var err error
	if laneValue, err = vm.LaneByName(*laneName); err != nil {
		return vm.Config{}, options{}, err
	}
	devs, err := vm.ParseDevices(*devices)
	if err != nil {
		return vm.Config{}, options{}, err
	}
	cprogs, err := vm.ParseCPrograms(*cprog)
	if err != nil {
		return vm.Config{}, options{}, err
	}
	variant, err := vm.ParseVariant(*modules)
	if err != nil {
		return vm.Config{}, options{}, err
	}
	switch *accel {
	case "auto", "kvm", "tcg":
	default:
		return vm.Config{}, options{}, fmt.Errorf("-accel %q: want auto, kvm or tcg", *accel)
	}
	switch *coverage {
	case "auto", "on", "off":
	default:
		return vm.Config{}, options{}, fmt.Errorf("-ioctl-coverage %q: want auto, on or off", *coverage)
	}
	if *cacheDir == "" {
		if *cacheDir, err = vm.DefaultCacheDir(os.Getenv); err != nil {
			return vm.Config{}, options{}, err
		}
	}
	testArgs := vm.TestArgs(fs.Args())
	if *runRE != "" {
		testArgs = append([]string{"-test.run=" + *runRE}, testArgs...)
	}
	var pkgList []string
	for _, p := range strings.Split(*pkgs, ",") {
		if p = strings.TrimSpace(p); p != "" {
			pkgList = append(pkgList, p)
		}
	}
	return vm.Config{
		Lane:          laneValue,
		Devices:       devs,
		Variant:       variant,
		KernelVersion: *kver,
		Accel:         *accel,
		ICount:        *icount,
		Long:          *long,
		Bench:         *benchRun,
		Memory:        *mem,
		SMP:           *smp,
		Timeout:       *timeout,
		TestTimeout:   *ttimeout,
		Packages:      pkgList,
		TestArgs:      testArgs,
		CacheDir:      *cacheDir,
		RunDir:        *runDir,
		IoctlCoverage: *coverage,
		SetupHost:     *setup,
		KeepRuns:      *keepRuns,
		Results:       *results,
		CPrograms:     cprogs,
	}, options{verbose: *verbose, summary: *summary}, nil
}

func laneNames() string {
	var names []string
	for _, l := range vm.Lanes() {
		names = append(names, l.Name)
	}
	return strings.Join(names, ", ")
}
