// Command iommu-agent owns the IOMMU side of device passthrough on a Linux
// host. main is thin: it wires signals and exit status around run, which
// tests call directly.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "iommu-agent:", err)
		os.Exit(1)
	}
}

const usage = `usage: iommu-agent <command> [flags]

commands:
  list      IOMMU units, their iommu_groups and devices, with viability [--json] [-sysfs DIR]
  check     host readiness for passthrough, each finding with its fix; fails on any FAIL [--json]
  bind      bind BDF | bind group N: hand devices to vfio-pci [-state FILE]
  unbind    unbind BDF | unbind group N: give them back their original drivers [-state FILE]
  probe     show what this host's IOMMU offers through iommufd and VFIO
  sriov     list | enable PF N | disable PF | set VF key=value...: SR-IOV VFs and their config [--json]
  serve     the daemon: lease devices to VMMs on a unix socket [-config FILE] [-socket PATH] [-state DIR] [-metrics ADDR] [-backend auto|iommufd|emulated]
  demo      the agent's job on an emulated IOMMU, in seconds, no root needed [-cycles N] [-v]
  trace     DMA map/unmap latency histograms from the kernel (eBPF) [--interval D] [--duration D] [--pid N] [--json] [--listen ADDR] [--emulated]
  version   print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
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
	case "demo":
		return demo(ctx, args[1:], stdout)
	case "trace":
		return trace(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
