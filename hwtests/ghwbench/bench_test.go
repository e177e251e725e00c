// Package ghwbench measures sysfs discovery against github.com/jaypipes/ghw
// on the same synthetic tree, in the same run. It is a module of its own so
// ghw never enters the agent's go.mod.
package ghwbench

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/bench"
	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"github.com/jaypipes/ghw"
	ghwtestdata "github.com/jaypipes/ghw/testdata"
	"github.com/jaypipes/pcidb"
)

// Issue 5's host: 4,096 devices in 1,024 groups.
const devices, groups = 4096, 1024

// tree builds the synthetic sysfs and a chroot for ghw around it: sys links
// to the tree and usr/share/hwdata/pci.ids is ghw's own full copy (from its
// module's testdata), since this host has none and pcidb must not fetch one
// (it does not unless asked with WithEnableNetworkFetch).
func tree(b *testing.B) (sysRoot, chroot string) {
	b.Helper()
	sysRoot = sysfstest.Synthetic(b, devices, groups)
	chroot = b.TempDir()
	if err := os.Symlink(sysRoot, filepath.Join(chroot, "sys")); err != nil {
		b.Fatal(err)
	}
	ids, err := os.ReadFile(ghwtestdata.PCIDBChroot())
	if err != nil {
		b.Fatal(err)
	}
	hwdata := filepath.Join(chroot, "usr", "share", "hwdata")
	if err := os.MkdirAll(hwdata, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hwdata, "pci.ids"), ids, 0o644); err != nil {
		b.Fatal(err)
	}
	return sysRoot, chroot
}

// BenchmarkDiscovery times sysfs's discovery and ghw.PCI alternately on
// the same tree and reports each one's time per discovery and their ratios.
// Ours runs in two ways: Scan, what `iommu-agent list` reads (ids, driver,
// group, topology, bridges' config: ghw's fields and the ACS list needs;
// "scan"), and Devices, every attribute of every device, NUMA node, BARs,
// driver_override and SR-IOV included ("devices"). ghw runs with topology detection off (the chroot has no NUMA nodes) and
// in two ways: as ghw.PCI is normally called, parsing pci.ids each time
// (ratio), and with the database parsed once beforehand and handed in with
// WithPCIDB (ratio-preloaded-ids), which leaves ghw only its sysfs walk.
func BenchmarkDiscovery(b *testing.B) {
	sysRoot, chroot := tree(b)
	f, err := sysfs.New(sysRoot)
	if err != nil {
		b.Fatal(err)
	}
	idsPath := filepath.Join(chroot, "usr", "share", "hwdata", "pci.ids")
	db, err := pcidb.New(pcidb.WithPath(idsPath))
	if err != nil {
		b.Fatal(err)
	}
	// ghw v0.27.0's PCI does not pass its chroot on to pcidb, which would
	// look in the host's /usr/share; PCIDB_PATH is how ghw is told.
	b.Setenv("PCIDB_PATH", idsPath)
	var scan, ours, theirs, theirsPreloaded cost
	n := 0
	for b.Loop() {
		c := start()
		devs, err := f.Scan()
		scan.add(c.stop())
		if err != nil || len(devs) != devices || devs[0].IOMMUGroup == nil {
			b.Fatalf("sysfs.Scan: %d devices, %v", len(devs), err)
		}

		c = start()
		devs, err = f.Devices()
		ours.add(c.stop())
		if err != nil || len(devs) != devices || devs[0].Resources == nil {
			b.Fatalf("sysfs.Devices: %d devices, %v", len(devs), err)
		}

		c = start()
		info, err := ghw.PCI(ghw.WithChroot(chroot), ghw.WithDisableTopology(), ghw.WithDisableWarnings())
		theirs.add(c.stop())
		if err != nil || len(info.Devices) != devices {
			b.Fatalf("ghw: %v, %v", info, err)
		}

		c = start()
		info, err = ghw.PCI(ghw.WithChroot(chroot), ghw.WithPCIDB(db), ghw.WithDisableTopology(), ghw.WithDisableWarnings())
		theirsPreloaded.add(c.stop())
		if err != nil || len(info.Devices) != devices || info.Devices[0].IOMMUGroup != "0" {
			b.Fatalf("ghw with preloaded ids: %v, %v", info, err)
		}
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(n) / 1e6 }
	b.ReportMetric(ms(scan.wall), "scan-ms")
	b.ReportMetric(ms(ours.wall), "devices-ms")
	b.ReportMetric(ms(theirs.wall), "ghw-ms")
	b.ReportMetric(ms(theirsPreloaded.wall), "ghw-preloaded-ids-ms")
	for _, o := range []struct {
		name string
		c    cost
	}{{"scan", scan}, {"devices", ours}} {
		b.ReportMetric(float64(o.c.wall)/float64(theirs.wall), "ratio-"+o.name)
		b.ReportMetric(float64(o.c.wall)/float64(theirsPreloaded.wall), "ratio-preloaded-ids-"+o.name)
		b.ReportMetric(float64(o.c.cpu)/float64(theirs.cpu), "cpu-ratio-"+o.name)
		b.ReportMetric(float64(o.c.cpu)/float64(theirsPreloaded.cpu), "cpu-ratio-preloaded-ids-"+o.name)
	}
	if out := os.Getenv("BENCH_OUT"); out != "" {
		writeReport(b, out, n, scan, theirs)
	}
}

// writeReport writes the discovery group of `make bench`: Scan against
// ghw on the same tree, in wall and CPU time per run.
func writeReport(b *testing.B, path string, n int, scan, theirs cost) {
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	row := func(what string, ours, ghw time.Duration) bench.Row {
		return bench.NewRow(bench.Row{Group: "discovery", Name: fmt.Sprintf("%d devices in %d groups, %s", devices, groups, what),
			Subject: "sysfs.Scan", Baseline: "ghw.PCI (topology off)", Value: per(ours), Base: per(ghw), Unit: "ns/op", Goal: 0.2})
	}
	rep := bench.NewReport(false, row("wall time", scan.wall, theirs.wall), row("CPU time", scan.cpu, theirs.cpu))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := bench.WriteJSON(f, rep); err != nil {
		b.Fatal(err)
	}
}

// cost is wall time and the process's CPU time (user and system, all
// threads). On a shared machine wall time includes waiting for a CPU; the
// CPU time is the work done, which such waits do not inflate.
type cost struct{ wall, cpu time.Duration }

func (c *cost) add(d cost) { c.wall += d.wall; c.cpu += d.cpu }

type clock struct {
	t   time.Time
	cpu time.Duration
}

func start() clock { return clock{time.Now(), cpuTime()} }

func (c clock) stop() cost { return cost{time.Since(c.t), cpuTime() - c.cpu} }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err) // EFAULT or EINVAL: cannot happen with these arguments
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAlone runs each discovery by itself, for per-device syscall
// counts (strace -c -f on the test binary, with two -benchtime values and
// the difference taken) and profiles that see one side only.
func BenchmarkAlone(b *testing.B) {
	sysRoot, chroot := tree(b)
	f, err := sysfs.New(sysRoot)
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv("PCIDB_PATH", filepath.Join(chroot, "usr", "share", "hwdata", "pci.ids"))
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			if devs, err := f.Scan(); err != nil || len(devs) != devices {
				b.Fatalf("sysfs.Scan: %d devices, %v", len(devs), err)
			}
		}
	})
	b.Run("devices", func(b *testing.B) {
		for b.Loop() {
			if devs, err := f.Devices(); err != nil || len(devs) != devices {
				b.Fatalf("sysfs.Devices: %d devices, %v", len(devs), err)
			}
		}
	})
	b.Run("ghw", func(b *testing.B) {
		for b.Loop() {
			info, err := ghw.PCI(ghw.WithChroot(chroot), ghw.WithDisableTopology(), ghw.WithDisableWarnings())
			if err != nil || len(info.Devices) != devices {
				b.Fatalf("ghw: %v, %v", info, err)
			}
		}
	})
}
