// Command sysfs-snapshot captures the parts of a host's sysfs (and
// /proc/cmdline) that package sysfs reads into a txtar fixture, for
// sysfs/testdata. The header says where the tree came from: kernel, machine
// (QEMU's DMI strings name its machine type and version) and PCI devices,
// plus any -note, such as the QEMU command line's devices.
//
//	sysfs-snapshot [-sysfs /sys] [-proc /proc] [-o FILE] [-note TEXT]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/iommu-agent/iommu-agent/sysfs"
	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
	"golang.org/x/tools/txtar"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sysfs-snapshot:", err)
		os.Exit(1)
	}
}

func run(_ context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("sysfs-snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sysRoot := fs.String("sysfs", "/sys", "sysfs mount point")
	procRoot := fs.String("proc", "/proc", "procfs mount point (for cmdline and the kernel version); \"\" for none")
	out := fs.String("o", "", "write the fixture to this file instead of stdout")
	note := fs.String("note", "", "text for the header, e.g. the QEMU devices the guest had")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	comment, err := header(*sysRoot, *procRoot, *note, now())
	if err != nil {
		return err
	}
	a, err := sysfstest.Snapshot(*sysRoot, *procRoot, comment)
	if err != nil {
		// Snapshot keeps what it could read; say what it could not.
		fmt.Fprintf(stderr, "sysfs-snapshot: left out: %v\n", err)
	}
	data := txtar.Format(a)
	if *out == "" {
		_, err := stdout.Write(data)
		return err
	}
	return os.WriteFile(*out, data, 0o644)
}

// header describes the tree: when, which kernel, which machine, which PCI
// devices. A file that is missing leaves its part out.
func header(sysRoot, procRoot, note string, at time.Time) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Captured by cmd/sysfs-snapshot, %s.\n", at.UTC().Format(time.DateOnly))
	read := func(root string, elem ...string) string {
		if root == "" {
			return ""
		}
		s, _ := os.ReadFile(filepath.Join(append([]string{root}, elem...)...))
		return strings.TrimSpace(string(s))
	}
	if rel := read(procRoot, "sys", "kernel", "osrelease"); rel != "" {
		fmt.Fprintf(&b, "Kernel: %s %s.\n", rel, read(procRoot, "sys", "kernel", "version"))
	}
	dmi := func(name string) string { return read(sysRoot, "class", "dmi", "id", name) }
	if v := dmi("sys_vendor"); v != "" {
		// QEMU: "QEMU", "Standard PC (Q35 + ICH9, 2009)", "pc-q35-10.0".
		fmt.Fprintf(&b, "Machine: %s %s, version %s, firmware %s.\n", v, dmi("product_name"), dmi("product_version"), dmi("bios_version"))
	}
	if note = strings.TrimSpace(note); note != "" {
		b.WriteString(note + "\n")
	}
	f, err := sysfs.New(sysRoot)
	if err != nil {
		return "", err
	}
	devs, err := f.Devices()
	if err != nil {
		fmt.Fprintf(&b, "Unreadable: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	b.WriteString("PCI devices (address vendor:device class driver group):\n")
	for _, d := range devs {
		drv, group := d.Driver, "-"
		if drv == "" {
			drv = "-"
		}
		if d.IOMMUGroup != nil {
			group = fmt.Sprint(*d.IOMMUGroup)
		}
		fmt.Fprintf(&b, "  %s %04x:%04x %06x %s %s\n", d.Address, d.Vendor, d.Device, d.Class, drv, group)
	}
	b.WriteString("Only the files package sysfs reads are kept.\n")
	return b.String(), nil
}
