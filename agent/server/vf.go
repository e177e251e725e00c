//go:build linux

package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// vfSettings checks an acquire's VFConfig before anything is touched.
func vfSettings(c *proto.VFConfig) (sriov.Settings, []sriov.Attr, error) {
	invalid := func(err error) error { return &proto.Error{Code: proto.CodeInvalid, Message: "vf: " + err.Error()} }
	s := sriov.Settings{VLAN: c.VLAN, QoS: c.QoS, SpoofChk: c.SpoofChk, Trust: c.Trust, MinRate: c.MinRate, MaxRate: c.MaxRate}
	if c.MAC != "" {
		mac, err := sriov.ParseMAC(c.MAC)
		if err != nil {
			return s, nil, invalid(err)
		}
		s.MAC = &mac
	}
	if c.State != "" {
		st, err := sriov.ParseLinkState(c.State)
		if err != nil {
			return s, nil, invalid(err)
		}
		s.State = &st
	}
	if err := s.Validate(); err != nil {
		return s, nil, invalid(err)
	}
	var req []sriov.Attr
	for _, a := range c.Required {
		if !slices.Contains(s.Attrs(), sriov.Attr(a)) {
			return s, nil, invalid(fmt.Errorf("required %q is not an attribute this config sets (%v)", a, s.Attrs()))
		}
		req = append(req, sriov.Attr(a))
	}
	return s, req, nil
}

// vfsOf lists the members that are SR-IOV VFs (they have a physfn link).
func (s *Server) vfsOf(members []string) ([]string, error) {
	if s.o.Sysfs == nil {
		return nil, nil
	}
	var out []string
	for _, m := range members {
		a, err := sysfs.ParseAddress(m)
		if err != nil {
			return nil, err
		}
		d, err := s.o.Sysfs.Device(a)
		if err != nil {
			return nil, err
		}
		if d.PhysFn != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// configureVF applies an acquire's settings. A refused attribute fails it
// only when required; the snapshot taken before puts everything back then.
func (s *Server) configureVF(bdf string, set sriov.Settings, required []sriov.Attr) ([]proto.VFResult, error) {
	r, err := s.o.SRIOV.Set(bdf, set)
	if r == nil {
		if err == nil {
			err = errors.New("no report")
		}
		s.m.binds.WithLabelValues("vf-config", "error").Inc()
		return nil, fmt.Errorf("configure vf %s: %w", bdf, err)
	}
	results := vfResults(r)
	var refused []string
	for _, res := range r.Results {
		if res.Err != nil && slices.Contains(required, res.Attr) {
			refused = append(refused, string(res.Attr))
		}
	}
	if len(refused) > 0 {
		s.m.binds.WithLabelValues("vf-config", "error").Inc()
		return results, &proto.Error{Code: proto.CodeRefused, Message: fmt.Sprintf(
			"vf %s: required %s refused: %v", bdf, strings.Join(refused, ", "), r.Err())}
	}
	if err != nil {
		s.log.Warn("vf attributes refused, not required", "vf", bdf, "err", err)
	}
	s.m.binds.WithLabelValues("vf-config", "ok").Inc()
	return results, nil
}

func vfResults(r *sriov.Report) []proto.VFResult {
	out := []proto.VFResult{}
	for _, res := range r.Results {
		pr := proto.VFResult{Attr: string(res.Attr), Want: res.Want, Got: res.Got, OK: res.Err == nil}
		if res.Err != nil {
			pr.Error = res.Err.Error()
			var errno syscall.Errno
			if errors.As(res.Err, &errno) {
				pr.Errno = int(errno)
			}
		}
		out = append(out, pr)
	}
	return out
}

// restoreVFs puts back the VF configs rec saved. A VF that is gone (its PF's
// VFs were removed behind the agent's back) has no config left to restore.
func (s *Server) restoreVFs(rec *record) error {
	for _, snap := range rec.VFs {
		if s.o.SRIOV == nil {
			return fmt.Errorf("lease %s: vf %s has a saved config but this agent has no SR-IOV netlink to restore it", rec.ID, snap.VF)
		}
		_, err := s.o.SRIOV.Restore(snap)
		if errors.Is(err, sysfs.ErrNoDevice) || errors.Is(err, sriov.ErrNotVF) {
			s.log.Warn("vf gone; its config with it", "lease", rec.ID, "vf", snap.VF, "err", err)
			continue
		}
		if err != nil {
			s.m.binds.WithLabelValues("vf-restore", "error").Inc()
			return err
		}
		s.m.binds.WithLabelValues("vf-restore", "ok").Inc()
	}
	return nil
}

// LeasedDevices reads the lease records in an agent's state dir: each
// device a lease holds (or is setting up or tearing down), with the lease's
// ID. It only reads, so it is safe beside a running agent, whose records
// appear and go by atomic renames. A missing dir holds no leases; an
// unreadable record is an error, as it may hold anything.
func LeasedDevices(stateDir string) (map[string]string, error) {
	ents, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lease state: %w", err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lease") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(stateDir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("lease state: %w", err)
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("lease state %s: %w", e.Name(), err)
		}
		for _, d := range r.Devices {
			out[d] = r.ID
		}
	}
	return out, nil
}

// VFInUse is the sriov InUse predicate of an agent's state dir: a VF some
// lease record names must not disappear under its VMM, so disabling VFs or
// changing their count refuses while it is leased.
func VFInUse(stateDir string) (func(sriov.VF) bool, error) {
	held, err := LeasedDevices(stateDir)
	if err != nil {
		return nil, err
	}
	return func(vf sriov.VF) bool { return held[vf.Address.String()] != "" }, nil
}
