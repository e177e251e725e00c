package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Status grades a finding, as virt-host-validate does.
type Status string

const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Finding is one line of check's report and one element of its --json
// array: {"check": ..., "status": "PASS"|"WARN"|"FAIL", "detail": ...,
// "fix": ...}. Fix is what to do, empty when nothing is needed.
type Finding struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// memlockWant is the locked-memory limit below which check warns: type1
// and iommufd charge every pinned guest page against it, so anything this
// small fails on the first real guest.
const memlockWant = 1 << 30

// capIPCLock is CAP_IPC_LOCK's bit in /proc/self/status CapEff. With it,
// type1 (vfio_pin_map_dma's lock_cap) and iommufd skip memlock accounting.
const capIPCLock = 14

func check(_ context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("check")
	sysRoot := fs.String("sysfs", "/sys", "sysfs mount point")
	procRoot := fs.String("proc", "/proc", "procfs mount point (cmdline, self/limits, self/status)")
	devRoot := fs.String("dev", "/dev", "device directory")
	asJSON := fs.Bool("json", false, "print the findings as a JSON array (see type Finding)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("check: unexpected argument %q", fs.Arg(0))
	}
	f, err := sysfs.New(*sysRoot, sysfs.WithProcRoot(*procRoot))
	if err != nil {
		return err
	}
	findings := hostFindings(f, *procRoot, *devRoot)
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(findings); err != nil {
			return err
		}
	} else {
		for _, fd := range findings {
			fmt.Fprintf(w, "%-4s %-24s %s\n", fd.Status, fd.Check, fd.Detail)
			if fd.Fix != "" {
				fmt.Fprintf(w, "     %-24s fix: %s\n", "", fd.Fix)
			}
		}
	}
	failed := 0
	for _, fd := range findings {
		if fd.Status == Fail {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("check: %d of %d checks failed", failed, len(findings))
	}
	return nil
}

// hostFindings runs every check in a fixed order, so output diffs well.
func hostFindings(f *sysfs.FS, procRoot, devRoot string) []Finding {
	var out []Finding
	add := func(check string, s Status, detail, fix string) {
		out = append(out, Finding{Check: check, Status: s, Detail: detail, Fix: fix})
	}

	units, uerr := f.IOMMUs()
	cmdline, cerr := f.Cmdline()

	// Firmware first, as virt-host-validate does: without an ACPI table
	// describing the IOMMU no kernel parameter will bring it up.
	table := ""
	for _, t := range []string{"DMAR", "IVRS", "IORT"} {
		if _, err := os.Stat(f.Path("firmware", "acpi", "tables", t)); err == nil {
			table = t
			break
		}
	}
	switch {
	case table != "":
		add("firmware", Pass, "ACPI "+table+" table present: the firmware describes an IOMMU", "")
	case len(units) > 0:
		add("firmware", Pass, "no ACPI DMAR/IVRS/IORT table seen, but the kernel runs IOMMU units", "")
	default:
		add("firmware", Fail, "no ACPI DMAR, IVRS or IORT table: the IOMMU is off in the firmware setup, or absent",
			"enable VT-d (Intel) / AMD-Vi or IOMMU (AMD) in the firmware setup; QEMU: -device intel-iommu")
	}

	// IOMMU present and enabled.
	enableFix := map[string]string{
		"DMAR": "boot with intel_iommu=on",
		"IVRS": "remove amd_iommu=off / iommu=off from the kernel command line",
		"IORT": "load the SMMU driver (arm_smmu_v3) and read the kernel log for why it did not probe",
		"":     "enable the IOMMU in the firmware setup first (see firmware), then boot with intel_iommu=on on Intel",
	}[table]
	switch {
	case len(units) > 0:
		var names []string
		for _, u := range units {
			names = append(names, u.Name+" ("+string(u.Kind)+")")
		}
		add("IOMMU", Pass, fmt.Sprintf("%d unit(s): %s", len(units), strings.Join(names, ", ")), "")
	case uerr != nil:
		add("IOMMU", Fail, "cannot list /sys/class/iommu: "+uerr.Error(), "check that sysfs is mounted and readable")
	default:
		add("IOMMU", Fail, "no IOMMU unit in /sys/class/iommu: the kernel translates no device DMA", enableFix)
	}

	// Kernel command line.
	switch {
	case cerr != nil:
		add("kernel command line", Warn, "cannot read "+filepath.Join(procRoot, "cmdline")+": "+cerr.Error(), "")
	case cmdline == nil:
		add("kernel command line", Warn, "no "+filepath.Join(procRoot, "cmdline")+"; the IOMMU parameters are unknown", "")
	default:
		add(cmdlineFinding(cmdline, units))
	}

	// Interrupt remapping: without it VFIO refuses MSI unless told to be unsafe.
	out = append(out, irFinding(f, units, cmdline))

	// Modules and device nodes: the iommufd path or the type1 path is enough.
	mod := func(name string) bool {
		m, err := f.Module(name)
		return err == nil && m.Present
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	iommufdDev, vfioDev := filepath.Join(devRoot, "iommu"), filepath.Join(devRoot, "vfio", "vfio")
	haveIOMMUFD := mod("iommufd") || exists(iommufdDev)
	haveType1 := mod("vfio_iommu_type1")
	for _, m := range []struct{ name, why string }{
		{"vfio", "the VFIO core"},
		{"vfio_pci", "the vfio-pci driver devices are bound to"},
	} {
		if mod(m.name) {
			add("module "+m.name, Pass, "loaded ("+m.why+")", "")
		} else {
			add("module "+m.name, Fail, "not loaded ("+m.why+")", "modprobe "+m.name)
		}
	}
	alt := func(name, why string, have, other bool) {
		switch {
		case have:
			add("module "+name, Pass, "loaded ("+why+")", "")
		case other:
			add("module "+name, Warn, "not loaded ("+why+"); the other DMA path is available", "modprobe "+name)
		default:
			add("module "+name, Fail, "not loaded ("+why+"), nor the other DMA path", "modprobe "+name)
		}
	}
	alt("iommufd", "iommufd and the VFIO device cdev", haveIOMMUFD, haveType1)
	alt("vfio_iommu_type1", "the legacy VFIO container", haveType1, haveIOMMUFD)

	// Named by their usual path whatever -dev says, so --json stays stable.
	node := func(name, path, why, fix string, have, other bool) {
		switch {
		case have:
			add(name, Pass, path+" present ("+why+")", "")
		case other:
			add(name, Warn, path+" missing ("+why+"); the other DMA path is available", fix)
		default:
			add(name, Fail, path+" missing ("+why+")", fix)
		}
	}
	hasIOMMUFDDev, hasVFIODev := exists(iommufdDev), exists(vfioDev)
	node("/dev/iommu", iommufdDev, "iommufd", "modprobe iommufd; in a container, pass --device /dev/iommu", hasIOMMUFDDev, hasVFIODev)
	node("/dev/vfio/vfio", vfioDev, "VFIO container", "modprobe vfio; in a container, pass --device /dev/vfio/vfio", hasVFIODev, hasIOMMUFDDev)

	out = append(out, memlockFinding(procRoot))

	// Groups: not viable is not a host fault, but it is what stops a
	// passthrough later, so name the blockers now.
	groups, gerr := f.Groups()
	if gerr != nil {
		add("iommu_groups", Warn, "some groups unreadable: "+strings.ReplaceAll(gerr.Error(), "\n", "; "), "")
	}
	notViable := 0
	for _, g := range groups {
		v, err := f.Viability(g.Number)
		if err != nil {
			notViable++
			add(fmt.Sprintf("iommu_group %d", g.Number), Warn, "unreadable: "+err.Error(), "")
			continue
		}
		if !v.Viable {
			notViable++
			add(fmt.Sprintf("iommu_group %d", g.Number), Warn, v.String(),
				fmt.Sprintf("to pass it through: iommu-agent bind group %d (every endpoint to vfio-pci)", g.Number))
		}
	}
	if len(groups) > 0 && notViable == 0 {
		add("iommu_groups", Pass, fmt.Sprintf("all %d groups viable", len(groups)), "")
	}
	return out
}

func cmdlineFinding(c sysfs.Cmdline, units []sysfs.IOMMU) (string, Status, string, string) {
	const name = "kernel command line"
	for _, p := range []struct{ key, off string }{{"intel_iommu", "off"}, {"amd_iommu", "off"}, {"iommu", "off"}} {
		if v, ok := c.Lookup(p.key); ok && strings.Contains(","+v+",", ","+p.off+",") {
			return name, Fail, p.key + "=" + v + " disables the IOMMU", "remove " + p.key + "=" + v + " from the kernel command line"
		}
	}
	var notes []string
	for _, k := range []string{"intel_iommu", "amd_iommu", "iommu"} {
		if v, ok := c.Lookup(k); ok {
			notes = append(notes, k+"="+v)
		}
	}
	if v, ok := c.Lookup("iommu"); ok && v == "pt" {
		notes = append(notes, "host drivers use identity domains; VFIO still gets translated ones")
	}
	if len(units) == 0 {
		if v, ok := c.Lookup("intel_iommu"); !ok || !strings.Contains(v, "on") {
			return name, Warn, "no IOMMU in use and intel_iommu=on not given", "on Intel hosts add intel_iommu=on (and iommu=pt to keep host devices fast)"
		}
		return name, Warn, strings.Join(notes, "; ") + ", yet no IOMMU unit: is it enabled in the firmware?", "enable VT-d / AMD-Vi in the firmware setup"
	}
	if len(notes) == 0 {
		notes = append(notes, "no IOMMU parameters; the kernel's default enabled it")
	}
	return name, Pass, strings.Join(notes, "; "), ""
}

func irFinding(f *sysfs.FS, units []sysfs.IOMMU, c sysfs.Cmdline) Finding {
	fd := Finding{Check: "interrupt remapping"}
	unsafeFix := "enable x2APIC / interrupt remapping in the firmware (QEMU: -device intel-iommu,intremap=on)"
	if v, ok := c.Lookup("intremap"); ok && v == "off" {
		fd.Status, fd.Detail, fd.Fix = Fail, "intremap=off on the kernel command line", "remove intremap=off"
		return fd
	}
	if len(units) == 0 {
		fd.Status, fd.Detail, fd.Fix = Fail, "no IOMMU, so no interrupt remapping", "see IOMMU above"
		return fd
	}
	var without, unknown []string
	for _, u := range units {
		switch {
		case u.VTD == nil:
			unknown = append(unknown, u.Name)
		case !u.VTD.ECap.IR():
			without = append(without, u.Name)
		}
	}
	unsafe := ""
	for _, m := range []string{"vfio_iommu_type1", "iommufd"} {
		if mod, err := f.Module(m); err == nil && (mod.Params["allow_unsafe_interrupts"] == "Y" || mod.Params["allow_unsafe_interrupts"] == "1") {
			unsafe += " " + m + ".allow_unsafe_interrupts=Y"
		}
	}
	switch {
	case len(without) > 0:
		fd.Status, fd.Fix = Fail, unsafeFix
		fd.Detail = "VT-d ecap IR clear on " + strings.Join(without, ", ") + ": VFIO refuses MSI/MSI-X without it"
		if unsafe != "" {
			fd.Status, fd.Detail = Warn, fd.Detail+"; allowed anyway by"+unsafe+" (a device can then forge interrupts)"
		}
	case len(unknown) > 0:
		fd.Status, fd.Detail = Warn, "cannot tell for "+strings.Join(unknown, ", ")+" (only VT-d's ecap is decoded)"
	default:
		fd.Status, fd.Detail = Pass, "ecap IR set on every VT-d unit"
		if unsafe != "" {
			fd.Status, fd.Detail, fd.Fix = Warn, fd.Detail+", but"+unsafe+" lets devices forge interrupts", "unset allow_unsafe_interrupts"
		}
	}
	return fd
}

// memlockFinding reads this process's RLIMIT_MEMLOCK from /proc/self/limits
// (cmd stays on the stdlib; syscall has no RLIMIT_MEMLOCK) and CAP_IPC_LOCK
// from /proc/self/status.
func memlockFinding(procRoot string) Finding {
	fd := Finding{Check: "RLIMIT_MEMLOCK"}
	fix := "raise it to the guest RAM times the containers: ulimit -l unlimited, systemd LimitMEMLOCK=infinity, docker --ulimit memlock=-1; or grant CAP_IPC_LOCK"
	soft, hard, err := readMemlock(filepath.Join(procRoot, "self", "limits"))
	if err != nil {
		fd.Status, fd.Detail = Warn, "cannot read: "+err.Error()
		return fd
	}
	limit := fmt.Sprintf("soft %s, hard %s", bytesText(soft), bytesText(hard))
	if hasCap(filepath.Join(procRoot, "self", "status"), capIPCLock) {
		fd.Status, fd.Detail = Pass, limit+"; CAP_IPC_LOCK held, so pinned pages are not charged"
		return fd
	}
	if soft < 0 || soft >= memlockWant {
		fd.Status, fd.Detail = Pass, limit+"; pinned guest pages are charged against it"
		return fd
	}
	fd.Status, fd.Fix = Warn, fix
	fd.Detail = limit + ": VFIO/iommufd charge every pinned guest page, so mapping more fails with ENOMEM"
	return fd
}

// readMemlock returns the soft and hard limits in bytes, -1 for unlimited.
func readMemlock(path string) (soft, hard int64, err error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Max locked memory")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return 0, 0, fmt.Errorf("%s: malformed line %q", path, sc.Text())
		}
		if soft, err = parseLimit(f[0]); err == nil {
			hard, err = parseLimit(f[1])
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", path, err)
		}
		return soft, hard, nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("%s: no \"Max locked memory\" line", path)
}

func parseLimit(s string) (int64, error) {
	if s == "unlimited" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

func bytesText(n int64) string {
	switch {
	case n < 0:
		return "unlimited"
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// hasCap reports whether CapEff in a /proc/PID/status file has bit; false
// when it cannot be read, which only loses the PASS shortcut.
func hasCap(path string, bit uint) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<bit) != 0
		}
	}
	return false
}
