// Package hostcheck judges whether a Linux host is ready for device
// passthrough and says what to do when it is not, as virt-host-validate
// does: firmware, IOMMU driver and units, kernel command line, interrupt
// remapping, the VFIO and iommufd modules, device nodes, the locked-memory
// limit and iommu_group viability.
//
// Advice depends on what the kernel is, not on what a stock distribution
// kernel usually is: a module is loaded, built in, loadable, or absent from
// this kernel (read from /sys/module, modules.builtin, modules.dep and the
// kernel config), and only a loadable one earns "modprobe". The IOMMU's
// vendor (from its units, the firmware table or the CPU) picks the
// command-line and firmware advice, so an AMD host never hears
// "intel_iommu=on". What cannot be read is reported as unknown, never as a
// pass.
//
// Every tree is rooted at a directory (Options), so tests run on fake
// hosts and the same code runs on /.
package hostcheck

import (
	"fmt"
	"path/filepath"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Status grades a finding, as virt-host-validate does.
type Status string

// The grades. Only Fail makes a host not ready; Warn is a risk or an
// unknown worth reading.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Finding is one line of the report and one element of check's --json
// array. Fix is what to do, empty when nothing is needed. State and Source
// are set on component findings (modules, the IOMMU driver, the VFIO device
// cdev): the component's State and where it was read.
type Finding struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	State  State  `json:"state,omitempty"`
	Source string `json:"source,omitempty"`
}

// Options roots each tree the checks read; an empty field takes the
// running host's path.
type Options struct {
	SysRoot     string // sysfs: /sys
	ProcRoot    string // procfs: /proc (cmdline, cpuinfo, interrupts, config.gz, sys/kernel/osrelease, self/)
	DevRoot     string // device nodes: /dev
	ModulesRoot string // installed modules: /lib/modules (RELEASE/modules.dep, modules.builtin, config)
	BootRoot    string // /boot (config-RELEASE)
}

func (o Options) withDefaults() Options {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&o.SysRoot, "/sys")
	def(&o.ProcRoot, "/proc")
	def(&o.DevRoot, "/dev")
	def(&o.ModulesRoot, "/lib/modules")
	def(&o.BootRoot, "/boot")
	return o
}

// Host is what the checks read, gathered once by New.
type Host struct {
	opts     Options
	fs       *sysfs.FS
	Kernel   Kernel
	Platform Platform
}

// New reads the kernel's release, config and module lists and the
// platform's vendors. It fails only when the sysfs root is not a
// directory; every other missing source becomes an unknown in the
// findings.
func New(o Options) (*Host, error) {
	o = o.withDefaults()
	f, err := sysfs.New(o.SysRoot, sysfs.WithProcRoot(o.ProcRoot))
	if err != nil {
		return nil, fmt.Errorf("host check: %w", err)
	}
	h := &Host{opts: o, fs: f}
	h.Kernel = readKernel(o.ProcRoot, o.ModulesRoot, o.BootRoot, f.Path("module"))
	h.Platform = readPlatform(f, o.ProcRoot)
	return h, nil
}

// Check runs every check on the host o describes, in a fixed order so
// output diffs well.
func Check(o Options) ([]Finding, error) {
	h, err := New(o)
	if err != nil {
		return nil, err
	}
	return h.Findings(), nil
}

// Findings runs every check in a fixed order.
func (h *Host) Findings() []Finding {
	units, uerr := h.fs.IOMMUs()
	cmdline, cerr := h.fs.Cmdline()
	var out []Finding
	out = append(out, h.platformFinding())
	out = append(out, h.firmwareFinding(units))
	drv := h.iommuDriver()
	out = append(out, h.driverFinding(drv))
	out = append(out, h.iommuFinding(units, uerr, cmdline, drv))
	if fd, ok := featuresFinding(units); ok {
		out = append(out, fd)
	}
	switch {
	case cerr != nil:
		out = append(out, Finding{Check: "kernel command line", Status: Warn,
			Detail: "cannot read " + filepath.Join(h.opts.ProcRoot, "cmdline") + ": " + cerr.Error() + "; the IOMMU parameters are unknown"})
	case cmdline == nil:
		out = append(out, Finding{Check: "kernel command line", Status: Warn,
			Detail: "no " + filepath.Join(h.opts.ProcRoot, "cmdline") + "; the IOMMU parameters are unknown"})
	default:
		out = append(out, h.cmdlineFinding(cmdline, units, drv))
		out = append(out, h.paramsFinding(cmdline, h.Platform.Vendor()))
	}
	out = append(out, h.irFinding(units, cmdline))
	out = append(out, h.vfioFindings()...)
	out = append(out, memlockFinding(h.opts.ProcRoot))
	out = append(out, h.groupFindings()...)
	return out
}

// Failed counts the findings that make the host not ready.
func Failed(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if f.Status == Fail {
			n++
		}
	}
	return n
}
