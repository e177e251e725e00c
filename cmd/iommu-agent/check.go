package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/iommu-agent/iommu-agent/agent/hostcheck"
)

// Finding and its statuses are hostcheck's; check prints them.
type (
	Finding = hostcheck.Finding
	Status  = hostcheck.Status
)

// The statuses, as virt-host-validate grades.
const (
	Pass = hostcheck.Pass
	Warn = hostcheck.Warn
	Fail = hostcheck.Fail
)

func check(_ context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("check")
	sysRoot := fs.String("sysfs", "/sys", "sysfs mount point")
	procRoot := fs.String("proc", "/proc", "procfs mount point (cmdline, cpuinfo, interrupts, config.gz, sys/kernel/osrelease, self/limits, self/status)")
	devRoot := fs.String("dev", "/dev", "device directory")
	modulesRoot := fs.String("modules", "/lib/modules", "installed kernel modules (RELEASE/modules.dep, modules.builtin)")
	bootRoot := fs.String("boot", "/boot", "directory holding config-RELEASE")
	asJSON := fs.Bool("json", false, "print the findings as a JSON array (see type hostcheck.Finding)")
	fs.required = []string{"sysfs", "proc", "dev", "modules", "boot"}
	if err := fs.Parse(args); err != nil {
		return err
	}
	findings, err := hostcheck.Check(hostcheck.Options{
		SysRoot: *sysRoot, ProcRoot: *procRoot, DevRoot: *devRoot, ModulesRoot: *modulesRoot, BootRoot: *bootRoot,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(findings); err != nil {
			return err
		}
	} else {
		printFindings(w, findings)
	}
	if failed := hostcheck.Failed(findings); failed > 0 {
		return fmt.Errorf("check: %d of %d checks failed", failed, len(findings))
	}
	return nil
}

// printFindings writes one line per finding and its fix below it.
func printFindings(w io.Writer, findings []Finding) {
	for _, fd := range findings {
		fmt.Fprintf(w, "%-4s %-24s %s\n", fd.Status, fd.Check, fd.Detail)
		if fd.Fix != "" {
			fmt.Fprintf(w, "     %-24s fix: %s\n", "", fd.Fix)
		}
	}
}
