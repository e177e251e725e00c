//go:build linux

package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Policy says which Unix users and groups may lease which devices. It is
// read once at start; a peer no rule names is denied, root included
// (DefaultPolicy is root's).
//
// The file is JSON:
//
//	{"rules": [
//	  {"uids": [1000], "gids": [107], "devices": ["0000:00:01.0"], "groups": [4],
//	   "all": false, "memlock": 1073741824, "keep_on_disconnect": true}
//	 ],
//	 "limits": {"max_conns": 1024, "max_conns_per_uid": 64, "max_conns_no_rule": 4,
//	   "hello_timeout": "10s", "idle_timeout": "5m", "write_timeout": "10s",
//	   "max_in_flight": 64, "max_maps_per_lease": 1024, "max_maps_per_uid": 4096,
//	   "max_maps": 16384, "max_map_bytes_per_lease": 68719476736,
//	   "max_map_bytes_per_uid": 274877906944}}
//
// A rule matches a peer whose uid is in uids or whose primary or
// supplementary gid is in gids. It allows a group lease when every endpoint
// of the group is in devices, the group is in groups, or all is set.
// memlock is the most RLIMIT_MEMLOCK the agent will set on the peer on
// request (0: none). keep_on_disconnect keeps fds leases when the client's
// connection closes (the VMM holds the fds; the agent releases the lease once
// nobody does); broker leases always end with their connection, because
// their address space lives in it.
//
// limits are the caps on what any peer may hold (see Limits for each field
// and DefaultLimits for why the defaults above are what they are); a field
// left out keeps its default, a missing limits object means all defaults.
// max_conns caps the connections served at once; max_conns_per_uid one
// uid's when a rule matches it, max_conns_no_rule when none does.
// hello_timeout and idle_timeout close connections silent that long before
// hello, or after it while holding no lease; write_timeout closes one that
// does not read its answers. max_in_flight caps the frames handled at once.
// max_maps_per_lease, max_maps_per_uid and max_maps cap the memfd mappings
// of broker leases, max_map_bytes_per_lease and max_map_bytes_per_uid
// their bytes. A request over a cap fails with code limit; a connection over
// one gets that error as its only frame.
type Policy struct {
	Rules  []Rule  `json:"rules"`
	Limits *Limits `json:"limits,omitempty"`
}

// Rule is one entry of a Policy.
type Rule struct {
	UIDs             []uint32 `json:"uids,omitempty"`
	GIDs             []uint32 `json:"gids,omitempty"`
	Devices          []string `json:"devices,omitempty"`
	Groups           []int    `json:"groups,omitempty"`
	All              bool     `json:"all,omitempty"`
	Memlock          uint64   `json:"memlock,omitempty"`
	KeepOnDisconnect bool     `json:"keep_on_disconnect,omitempty"`
}

// DefaultPolicy lets root lease anything and nobody else: what serve uses
// without a policy file.
func DefaultPolicy() *Policy {
	return &Policy{Rules: []Rule{{UIDs: []uint32{0}, All: true, Memlock: 1 << 62, KeepOnDisconnect: true}}}
}

// LoadPolicy reads and validates a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy parses and validates a policy; unknown fields are errors, so a
// typo does not silently widen or narrow access.
func ParsePolicy(b []byte) (*Policy, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	p := Policy{Limits: DefaultLimits()} // fields the file leaves out keep their default
	if err := d.Decode(&p); err != nil {
		return nil, err
	}
	return &p, p.Validate()
}

// Validate checks that every rule names someone and something, and that the
// limits, when given, are all positive.
func (p *Policy) Validate() error {
	if p.Limits != nil {
		if err := p.Limits.validate(); err != nil {
			return err
		}
	}
	for i, r := range p.Rules {
		if len(r.UIDs) == 0 && len(r.GIDs) == 0 {
			return fmt.Errorf("rule %d: no uids or gids", i)
		}
		if !r.All && len(r.Devices) == 0 && len(r.Groups) == 0 {
			return fmt.Errorf("rule %d: no devices, groups or all", i)
		}
		for _, d := range r.Devices {
			if _, err := sysfs.ParseAddress(d); err != nil {
				return fmt.Errorf("rule %d: %w", i, err)
			}
		}
	}
	return nil
}

// limits are p's caps, the defaults when it has none.
func (p *Policy) limits() Limits {
	if p == nil || p.Limits == nil {
		return *DefaultLimits()
	}
	return *p.Limits
}

// hasRule reports whether any rule matches peer: such a peer may lease
// something, so it gets more connections than one that can only be refused.
func (p *Policy) hasRule(peer Peer) bool {
	if p == nil {
		return false
	}
	for i := range p.Rules {
		if p.Rules[i].matches(peer) {
			return true
		}
	}
	return false
}

// Peer is a client as SO_PEERCRED (and /proc for supplementary groups) saw it
// when it connected.
type Peer struct {
	UID    uint32
	GID    uint32
	Groups []uint32
	PID    int32
	Start  uint64 // process start time in clock ticks, against PID reuse
}

func (r *Rule) matches(p Peer) bool {
	if slices.Contains(r.UIDs, p.UID) || slices.Contains(r.GIDs, p.GID) {
		return true
	}
	for _, g := range p.Groups {
		if slices.Contains(r.GIDs, g) {
			return true
		}
	}
	return false
}

func (r *Rule) covers(group int, devices []string) bool {
	if r.All || slices.Contains(r.Groups, group) {
		return true
	}
	for _, d := range devices {
		a, err := sysfs.ParseAddress(d)
		if err != nil {
			return false
		}
		if !slices.ContainsFunc(r.Devices, func(s string) bool {
			b, err := sysfs.ParseAddress(s)
			return err == nil && a == b
		}) {
			return false
		}
	}
	return len(devices) > 0
}

// allow returns the first rule letting p lease group with devices, or a
// denied error saying who was refused what.
func (p *Policy) allow(peer Peer, group int, devices []string) (*Rule, error) {
	if p != nil {
		for i := range p.Rules {
			r := &p.Rules[i]
			if r.matches(peer) && r.covers(group, devices) {
				return r, nil
			}
		}
	}
	return nil, &proto.Error{Code: proto.CodeDenied,
		Message: fmt.Sprintf("uid %d gid %d may not lease iommu_group %d (%v): no policy rule allows it", peer.UID, peer.GID, group, devices)}
}
