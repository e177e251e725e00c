package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// sriovUsage is sriov's own commands, for its -h.
const sriovUsage = `commands:
  list                    PFs, their VFs (address, iommu_group, driver) and VF configs [--json]
  enable PF N             give PF N VFs (a different non-zero count goes through 0) [--autoprobe 0|1]
  disable PF              remove every VF of PF; refused while one is leased by the agent
                          (serve's lease records) or bound by iommu-agent bind; enable too
  set VF key=value...     configure a VF through its PF; keys: mac, vlan, qos, trust, spoofchk,
                          state (auto|enable|disable), min_rate, max_rate (Mbit/s) [--json]
`

// sriovDeps is what tests substitute: the fake kernel's writer and a fake
// netlink. run passes none: /sys and a netlink handle of its own.
type sriovDeps struct {
	writer sysfs.Writer
	links  sriov.LinkOps
}

// SRIOVList is sriov list --json's output; its own schema, only ever
// added to, like Inventory.
//
//	{"pfs": [{"address": "0000:01:00.0", "vendor": "8086", "device": "10c9",
//	          "driver": "igb", "link": "eth0", "iommu_group": 4,
//	          "total_vfs": 7, "num_vfs": 2, "drivers_autoprobe": true,
//	          "vfs": [{"index": 0, "address": "0000:01:10.0", "vendor": "8086",
//	                   "device": "10ca", "iommu_group": 5, "driver": "",
//	                   "config": {"mac": "00:00:00:00:00:00", "vlan": 0, "qos": 0,
//	                              "spoofchk": true, "trust": false, "state": "auto",
//	                              "min_rate": 0, "max_rate": 0}}]}],
//	 "errors": ["..."]}
type SRIOVList struct {
	PFs    []SRIOVPF `json:"pfs"`
	Errors []string  `json:"errors,omitempty"`
}

// SRIOVPF is one physical function. Driver is "" for none, Link "" when
// it has no netdev; config is absent when netlink could not say.
type SRIOVPF struct {
	Address          string    `json:"address"`
	Vendor           string    `json:"vendor"`
	Device           string    `json:"device"`
	Driver           string    `json:"driver"`
	Link             string    `json:"link"`
	IOMMUGroup       *int      `json:"iommu_group"`
	TotalVFs         int       `json:"total_vfs"`
	NumVFs           int       `json:"num_vfs"`
	DriversAutoprobe *bool     `json:"drivers_autoprobe"`
	VFs              []SRIOVVF `json:"vfs"`
}

// SRIOVVF is one virtual function.
type SRIOVVF struct {
	Index      int           `json:"index"`
	Address    string        `json:"address"`
	Vendor     string        `json:"vendor"`
	Device     string        `json:"device"`
	IOMMUGroup *int          `json:"iommu_group"`
	Driver     string        `json:"driver"`
	Config     *sriov.Config `json:"config,omitempty"`
}

// SRIOVSet is sriov set --json's output: per attribute, what was asked,
// what reads back and, when refused, the error and its errno.
type SRIOVSet struct {
	VF      string           `json:"vf"`
	PF      string           `json:"pf"`
	Index   int              `json:"index"`
	Link    string           `json:"link"`
	Before  sriov.Config     `json:"before"`
	After   sriov.Config     `json:"after"`
	Results []SRIOVSetResult `json:"results"`
}

// SRIOVSetResult is one attribute of a set.
type SRIOVSetResult struct {
	Attr  string `json:"attr"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Errno int    `json:"errno,omitempty"` // the driver's, when it refused
}

func sriovCmd(_ context.Context, args []string, w io.Writer, deps sriovDeps) error {
	fs := newFlagSet("sriov")
	sysRoot := fs.String("sysfs", "/sys", "sysfs mount point")
	asJSON := fs.Bool("json", false, "print JSON")
	statePath := fs.String("state", defaultState, "bind's record; VFs it holds count as in use")
	leaseDir := fs.String("leases", defaultLeaseDir, "the agent's lease records (serve -state); VFs they name count as in use")
	autoprobe := fs.String("autoprobe", "", "enable: write sriov_drivers_autoprobe first (0: new VFs get no driver)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	words := fs.Args()
	if len(words) == 0 {
		return fs.usageErrorf("no command")
	}
	cmd, words := words[0], words[1:]
	want := map[string]func(n int) bool{
		"list":    func(n int) bool { return n == 0 },
		"enable":  func(n int) bool { return n == 2 },
		"disable": func(n int) bool { return n == 1 },
		"set":     func(n int) bool { return n >= 2 },
	}
	ok, known := want[cmd]
	if !known {
		return fs.usageErrorf("unknown command %q", cmd)
	}
	if !ok(len(words)) {
		return fs.usageErrorf("%s: wrong arguments %q", cmd, words)
	}
	// Requests are checked before anything is opened.
	var (
		n        int
		settings sriov.Settings
		probe    *bool
		err      error
	)
	switch cmd {
	case "enable":
		if n, err = strconv.Atoi(words[1]); err != nil {
			return fs.usageErrorf("enable: VF count %q is not a number", words[1])
		}
		switch *autoprobe {
		case "":
		case "0", "1":
			b := *autoprobe == "1"
			probe = &b
		default:
			return fs.usageErrorf("enable: --autoprobe %q: want 0 or 1", *autoprobe)
		}
	case "set":
		if settings, err = sriov.ParseSettings(words[1:]); err != nil {
			return fs.usageError(fmt.Errorf("set: %w", err))
		}
	}
	var opts []sysfs.Option
	if deps.writer != nil {
		opts = append(opts, sysfs.WithWriter(deps.writer))
	}
	f, err := sysfs.New(*sysRoot, opts...)
	if err != nil {
		return err
	}
	links := deps.links
	var linkErr error
	if links == nil && (cmd == "list" || cmd == "set") {
		h, err := sriov.NewNetlink()
		if err != nil {
			linkErr = fmt.Errorf("netlink: %w", err)
		} else {
			defer h.Close()
			links = h
		}
	}
	m, err := sriov.New(sriov.Options{FS: f, Writer: deps.writer, Links: links})
	if err != nil {
		return err
	}
	switch cmd {
	case "list":
		return sriovList(m, linkErr, *asJSON, w)
	case "enable":
		inUse, err := sriovInUse(*statePath, *leaseDir)
		if err != nil {
			return err
		}
		vfs, err := m.Enable(words[0], n, sriov.EnableOptions{Autoprobe: probe, InUse: inUse})
		if err != nil {
			return fmt.Errorf("sriov enable: %w", err)
		}
		return sriovPrintVFs(words[0], vfs, *asJSON, w)
	case "disable":
		inUse, err := sriovInUse(*statePath, *leaseDir)
		if err != nil {
			return err
		}
		if err := m.Disable(words[0], sriov.DisableOptions{InUse: inUse}); err != nil {
			return fmt.Errorf("sriov disable: %w", err)
		}
		return sriovPrintVFs(words[0], nil, *asJSON, w)
	default: // set
		if linkErr != nil {
			return fmt.Errorf("sriov set: %w", linkErr)
		}
		r, err := m.Set(words[0], settings)
		if r != nil {
			if perr := sriovPrintSet(r, *asJSON, w); perr != nil {
				return perr
			}
		}
		if err != nil {
			return fmt.Errorf("sriov set: %w", err)
		}
		return nil
	}
}

// sriovInUse says a VF is in use while bind's record or one of the agent's
// lease records holds it: removing it is refused until unbind or release.
// A lease the agent grants between this check and the sriov_numvfs write
// is not seen; the kernel then blocks the write until the VMM lets go.
func sriovInUse(statePath, leaseDir string) (func(sriov.VF) bool, error) {
	bound, err := sriovBoundByAgent(statePath)
	if err != nil {
		return nil, err
	}
	leased, err := server.VFInUse(leaseDir)
	if err != nil {
		return nil, fmt.Errorf("%w (-leases %s)", err, leaseDir)
	}
	return func(vf sriov.VF) bool { return bound(vf) || leased(vf) }, nil
}

// sriovBoundByAgent says a VF is in use while bind's record holds it: the
// agent handed it out, so removing it is refused until unbind.
func sriovBoundByAgent(statePath string) (func(sriov.VF) bool, error) {
	st, err := loadState(statePath)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, r := range st.Bindings {
		for _, d := range r.Devices {
			held[d.Address] = true
		}
	}
	return func(vf sriov.VF) bool { return held[vf.Address.String()] }, nil
}

func sriovHex(v uint16) string { return fmt.Sprintf("%04x", v) }

func sriovInventory(pfs []sriov.PF, err error) SRIOVList {
	out := SRIOVList{PFs: []SRIOVPF{}}
	for _, pf := range pfs {
		p := SRIOVPF{
			Address: pf.Address.String(), Vendor: sriovHex(pf.Vendor), Device: sriovHex(pf.Device), Driver: pf.Driver,
			Link: pf.Link, IOMMUGroup: pf.Group, TotalVFs: pf.TotalVFs, NumVFs: pf.NumVFs,
			DriversAutoprobe: pf.DriversAutoprobe, VFs: []SRIOVVF{},
		}
		for _, vf := range pf.VFs {
			p.VFs = append(p.VFs, SRIOVVF{
				Index: vf.Index, Address: vf.Address.String(), Vendor: sriovHex(vf.Vendor), Device: sriovHex(vf.Device),
				IOMMUGroup: vf.Group, Driver: vf.Driver, Config: vf.Config,
			})
		}
		out.PFs = append(out.PFs, p)
	}
	out.Errors = sriovErrors(err)
	return out
}

// sriovErrors lists a joined error's parts, one line each.
func sriovErrors(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, sriovErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func sriovList(m *sriov.Manager, linkErr error, asJSON bool, w io.Writer) error {
	pfs, err := m.List()
	inv := sriovInventory(pfs, errors.Join(linkErr, err))
	if asJSON {
		return sriovJSON(w, inv)
	}
	if len(inv.PFs) == 0 {
		fmt.Fprintln(w, "no SR-IOV physical functions")
	}
	for _, pf := range inv.PFs {
		fmt.Fprintf(w, "%s %s:%s %s, %s, %s: %d of %d VFs, drivers_autoprobe %s\n", pf.Address, pf.Vendor, pf.Device,
			driverText(pf.Driver), sriovLinkText(pf.Link), sriovGroupText(pf.IOMMUGroup), pf.NumVFs, pf.TotalVFs, sriovAutoprobe(pf.DriversAutoprobe))
		for _, vf := range pf.VFs {
			fmt.Fprintf(w, "  vf %d %s %s:%s %s, %s", vf.Index, vf.Address, vf.Vendor, vf.Device, sriovGroupText(vf.IOMMUGroup), driverText(vf.Driver))
			if c := vf.Config; c != nil {
				fmt.Fprintf(w, ": mac %s vlan %d qos %d spoofchk %s trust %s state %s rate %d-%d Mbit/s",
					c.MAC, c.VLAN, c.QoS, c.Value(sriov.AttrSpoofChk), c.Value(sriov.AttrTrust), c.State, c.MinRate, c.MaxRate)
			}
			fmt.Fprintln(w)
		}
	}
	for _, e := range inv.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	return nil
}

func sriovLinkText(l string) string {
	if l == "" {
		return "no netdev"
	}
	return "netdev " + l
}

func sriovGroupText(g *int) string {
	if g == nil {
		return "no iommu_group"
	}
	return "group " + strconv.Itoa(*g)
}

func sriovAutoprobe(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "on"
	}
	return "off"
}

func sriovPrintVFs(pf string, vfs []sriov.VF, asJSON bool, w io.Writer) error {
	if asJSON {
		out := []SRIOVVF{}
		for _, vf := range vfs {
			out = append(out, SRIOVVF{Index: vf.Index, Address: vf.Address.String(), Vendor: sriovHex(vf.Vendor), Device: sriovHex(vf.Device), IOMMUGroup: vf.Group, Driver: vf.Driver})
		}
		return sriovJSON(w, out)
	}
	if len(vfs) == 0 {
		fmt.Fprintf(w, "%s: no VFs\n", pf)
		return nil
	}
	var parts []string
	for _, vf := range vfs {
		parts = append(parts, fmt.Sprintf("%s (%s)", vf.Address, sriovGroupText(vf.Group)))
	}
	fmt.Fprintf(w, "%s: %d VFs: %s\n", pf, len(vfs), strings.Join(parts, ", "))
	return nil
}

func sriovPrintSet(r *sriov.Report, asJSON bool, w io.Writer) error {
	out := SRIOVSet{VF: r.VF.Address.String(), PF: r.VF.PF.String(), Index: r.VF.Index, Link: r.Link, Before: r.Before, After: r.After, Results: []SRIOVSetResult{}}
	for _, res := range r.Results {
		sr := SRIOVSetResult{Attr: string(res.Attr), Want: res.Want, Got: res.Got, OK: res.Err == nil}
		if res.Err != nil {
			sr.Error = res.Err.Error()
			var errno syscall.Errno
			if errors.As(res.Err, &errno) {
				sr.Errno = int(errno)
			}
		}
		out.Results = append(out.Results, sr)
	}
	if asJSON {
		return sriovJSON(w, out)
	}
	fmt.Fprintf(w, "%s (%s vf %d of %s):\n", out.VF, out.Link, out.Index, out.PF)
	for _, res := range out.Results {
		verdict := "ok"
		switch {
		case res.Errno != 0:
			verdict = fmt.Sprintf("refused: %s (errno %d)", syscall.Errno(res.Errno), res.Errno)
		case !res.OK:
			verdict = "not applied: reads back " + res.Got
		}
		fmt.Fprintf(w, "  %-9s %-17s %s\n", res.Attr, res.Want, verdict)
	}
	return nil
}

func sriovJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
