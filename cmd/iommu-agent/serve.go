package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/ebpf"
	"github.com/iommu-agent/iommu-agent/internal/latency"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// defaultLeaseDir is where serve keeps its lease records, which sriov
// enable and disable read to refuse removing a leased VF.
const defaultLeaseDir = "/var/lib/iommu-agent"

// serveConfig is serve's flags after defaults.
type serveConfig struct {
	config, socket, state, metrics, backend, sysfsRoot string
	emulated                                           int
	orphanCheck                                        time.Duration
	trace                                              bool
}

// serve runs the agent's daemon until ctx ends. ready, when not nil, is
// called once the socket listens (tests wait on it).
func serve(ctx context.Context, args []string, stderr io.Writer, ready func(sock, metrics string)) error {
	var c serveConfig
	fl := newFlagSet("serve")
	fl.StringVar(&c.config, "config", "", "policy file (JSON, see agent/server.Policy); default: only root may lease")
	fl.StringVar(&c.socket, "socket", "/run/iommu-agent/agent.sock", "unix socket to serve")
	fl.StringVar(&c.state, "state", defaultLeaseDir, "directory of lease records")
	fl.StringVar(&c.metrics, "metrics", "", "HTTP address for /metrics and /healthz, e.g. 127.0.0.1:9477; off when empty")
	fl.StringVar(&c.backend, "backend", "auto", "auto (iommufd when /dev/iommu and iommu_groups exist, else emulated), iommufd or emulated")
	fl.StringVar(&c.sysfsRoot, "sysfs", "/sys", "sysfs root")
	fl.IntVar(&c.emulated, "emulated-devices", 4, "edu-like devices, one per group, of the emulated backend")
	fl.DurationVar(&c.orphanCheck, "orphan-check", 10*time.Second, "how often orphaned leases are checked")
	fl.BoolVar(&c.trace, "trace", false, "attach the eBPF DMA map/unmap tracer (iommufd backend) and serve its histograms on /metrics")
	fl.required = []string{"socket", "state", "sysfs"}
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch c.backend {
	case "auto", server.BackendIOMMUFD, server.BackendEmulated:
	default:
		return fl.usageErrorf("-backend %q: want auto, iommufd or emulated", c.backend)
	}
	if c.emulated < 1 || c.emulated > 1024 {
		return fl.usageErrorf("-emulated-devices %d: want 1 to 1024", c.emulated)
	}
	if c.orphanCheck <= 0 {
		return fl.usageErrorf("-orphan-check %s: want a positive duration", c.orphanCheck)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	policy := server.DefaultPolicy()
	if c.config != "" {
		var err error
		if policy, err = server.LoadPolicy(c.config); err != nil {
			return err
		}
	}
	var tracer *ebpf.Tracer
	o := server.Options{Policy: policy, StateDir: c.state, Log: log, OrphanCheck: c.orphanCheck}
	backend := c.backend
	if backend == "auto" {
		// Falling back is what auto is for (a laptop, CI, the demo), but
		// never silently: a host whose IOMMU is off in firmware or on the
		// kernel command line must not look like one serving its devices.
		// -backend iommufd refuses to start instead.
		backend = server.BackendEmulated
		groups := filepath.Join(c.sysfsRoot, "kernel", "iommu_groups")
		var why string
		if _, err := os.Stat("/dev/iommu"); err != nil {
			why = fmt.Sprintf("/dev/iommu: %v (iommufd not loaded or not built)", err)
		} else if ents, err := os.ReadDir(groups); len(ents) == 0 {
			why = fmt.Sprintf("no iommu_groups in %s: the IOMMU is off in firmware or on the kernel command line", groups)
			if err != nil {
				why += fmt.Sprintf(" (%v)", err)
			}
		} else {
			backend = server.BackendIOMMUFD
		}
		if why != "" {
			log.Warn("no IOMMU found: serving EMULATED devices, not this host's; -backend emulated says so on purpose, -backend iommufd refuses instead", "reason", why)
		}
	}
	switch backend {
	case server.BackendIOMMUFD:
		fs, err := sysfs.New(c.sysfsRoot)
		if err != nil {
			return err
		}
		o.Backend, o.Sysfs, o.RLimitProcess = server.BackendIOMMUFD, fs, true
		// VFs are configured through their PF's netdev; without netlink
		// they are still leased, unconfigured.
		if nl, err := sriov.NewNetlink(); err != nil {
			log.Warn("no netlink: acquires of SR-IOV VFs cannot configure them", "err", err)
		} else {
			defer nl.Close()
			if o.SRIOV, err = sriov.New(sriov.Options{FS: fs, Links: nl}); err != nil {
				return err
			}
		}
	case server.BackendEmulated:
		o.Backend = server.BackendEmulated
		o.Latency = latency.NewRecorder("emulated", 0, 0)
		for i := range c.emulated {
			a := sysfs.Address{Bus: uint8(i / 32), Device: uint8(i % 32)}
			o.Devices = append(o.Devices, iommu.Device{BDF: a.String(), Group: i + 1})
		}
	default:
		return fmt.Errorf("serve: backend %q: want auto, iommufd or emulated", backend)
	}
	if c.trace && backend == server.BackendIOMMUFD {
		// Opt-in: loading the programs parses the kernel's BTF, which
		// costs a start seconds under emulation; a host without BPF
		// still serves, with the reason logged.
		if t, err := ebpf.Open(ebpf.Options{Ops: []latency.Op{latency.IOASMap, latency.IOASUnmap, latency.Type1Map, latency.Type1Unmap}}); err != nil {
			log.Warn("no kernel DMA latency on /metrics", "err", err)
		} else {
			defer t.Close()
			tracer = t
			log.Info("tracing", "source", t.Source())
		}
	}
	log.Info("starting", "backend", o.Backend, "socket", c.socket, "state", c.state, "policy_rules", len(policy.Rules), "config", c.config)
	srv, err := server.New(ctx, o)
	if err != nil {
		return err
	}
	if tracer != nil {
		if err := srv.Register(latency.NewCollector(tracer)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.socket), 0o755); err != nil {
		return err
	}
	ln, err := server.Listen(c.socket)
	if err != nil {
		srv.Close()
		return err
	}
	// Serve closes ln, which removes the socket file only while it is
	// still this agent's.
	metricsAddr := ""
	if c.metrics != "" {
		ml, err := net.Listen("tcp", c.metrics)
		if err != nil {
			ln.Close()
			return err
		}
		metricsAddr = ml.Addr().String()
		hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(ml)
		defer hs.Close()
		log.Info("metrics", "addr", metricsAddr)
	}
	if ready != nil {
		ready(c.socket, metricsAddr)
	}
	err = srv.Serve(ctx, ln)
	log.Info("stopped", "err", err)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
