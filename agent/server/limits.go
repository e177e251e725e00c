//go:build linux

package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Limits are the caps that keep one local user from wedging or starving the
// agent. Every field must be positive; DefaultLimits says what each is for
// and why its default is what it is.
type Limits struct {
	// MaxConns caps the connections served at once, whoever makes them.
	MaxConns int `json:"max_conns"`
	// MaxConnsPerUID caps one uid's connections when a policy rule
	// matches it; MaxConnsNoRule when none does (such a peer can list and
	// ask, never lease).
	MaxConnsPerUID int `json:"max_conns_per_uid"`
	MaxConnsNoRule int `json:"max_conns_no_rule"`
	// HelloTimeout is how long a new connection may stay silent before
	// hello; IdleTimeout how long a connection holding no lease may stay
	// silent after it. Connections holding a lease have no idle timeout:
	// a VMM may hold its lease for months without a word.
	HelloTimeout Duration `json:"hello_timeout"`
	IdleTimeout  Duration `json:"idle_timeout"`
	// WriteTimeout is how long an answer may wait for a client that does
	// not read it before the agent hangs up.
	WriteTimeout Duration `json:"write_timeout"`
	// MaxInFlight caps the frames being read and handled at once, over
	// all connections: what bounds the memory that frames take.
	MaxInFlight int `json:"max_in_flight"`
	// MaxMapsPerLease, MaxMapsPerUID and MaxMaps cap the memfd mappings
	// the agent holds for broker leases (each is a mapping of the agent's
	// own, under the kernel's vm.max_map_count); MaxMapBytesPerLease and
	// MaxMapBytesPerUID cap their bytes. A uid is charged for the maps of
	// the leases it owns.
	MaxMapsPerLease     int    `json:"max_maps_per_lease"`
	MaxMapsPerUID       int    `json:"max_maps_per_uid"`
	MaxMaps             int    `json:"max_maps"`
	MaxMapBytesPerLease uint64 `json:"max_map_bytes_per_lease"`
	MaxMapBytesPerUID   uint64 `json:"max_map_bytes_per_uid"`
}

// DefaultLimits are the caps of a policy that names none.
//
//   - 1024 connections: each is an fd and, idle, a goroutine of a few KiB
//     (about 10 MiB for all); the agent keeps as many fds again for memfds,
//     lease fds and its state dir under the common RLIMIT_NOFILE of 4096
//     and more (Go raises the soft limit to the hard one). New lowers the
//     cap when RLIMIT_NOFILE leaves too little room beside it for the fds
//     of frames in flight and of leases.
//   - 64 per uid with a rule: more VMMs than a host of one user runs at
//     once, fewer than it takes to shut others out. 4 without a rule: such
//     a peer can only list and be refused, which takes one connection.
//   - hello in 10 s: a client says hello right after connecting; idle
//     5 minutes without a lease: a lease-less client has nothing to lose
//     by reconnecting; 10 s to read an answer.
//   - 64 frames in flight: 64 maximum frames and their decoded requests
//     are about 10 MiB, and each connection has one frame at a time anyway.
//   - 1024 maps a lease, 4096 a uid, 16384 in all: the kernel's default
//     vm.max_map_count is 65530 and the Go runtime, its heap and the
//     libraries need their share. A VMM maps its guest RAM in a few
//     regions; only a broker client maps page by page.
//   - 64 GiB a lease and 256 GiB a uid: the agent's mapping reserves no
//     memory (the pages are the client's memfd) but its page tables grow
//     with what a device touches, 2 MiB per GiB.
func DefaultLimits() *Limits {
	return &Limits{
		MaxConns:            1024,
		MaxConnsPerUID:      64,
		MaxConnsNoRule:      4,
		HelloTimeout:        Duration(10 * time.Second),
		IdleTimeout:         Duration(5 * time.Minute),
		WriteTimeout:        Duration(10 * time.Second),
		MaxInFlight:         64,
		MaxMapsPerLease:     1024,
		MaxMapsPerUID:       4096,
		MaxMaps:             16384,
		MaxMapBytesPerLease: 64 << 30,
		MaxMapBytesPerUID:   256 << 30,
	}
}

// validate refuses caps that make no sense: zero or negative counts and
// timeouts (a zero cap would refuse everything; use a rule-less policy for
// that).
func (l *Limits) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_conns", int64(l.MaxConns)}, {"max_conns_per_uid", int64(l.MaxConnsPerUID)}, {"max_conns_no_rule", int64(l.MaxConnsNoRule)},
		{"hello_timeout", int64(l.HelloTimeout)}, {"idle_timeout", int64(l.IdleTimeout)}, {"write_timeout", int64(l.WriteTimeout)},
		{"max_in_flight", int64(l.MaxInFlight)},
		{"max_maps_per_lease", int64(l.MaxMapsPerLease)}, {"max_maps_per_uid", int64(l.MaxMapsPerUID)}, {"max_maps", int64(l.MaxMaps)},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("limits: %s must be positive", f.name))
		}
	}
	if l.MaxMapBytesPerLease == 0 || l.MaxMapBytesPerUID == 0 {
		errs = append(errs, errors.New("limits: max_map_bytes_per_lease and max_map_bytes_per_uid must be positive"))
	}
	return errors.Join(errs...)
}

// Duration is a time.Duration written as Go writes it in a policy file:
// "10s", "5m".
type Duration time.Duration

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string time.ParseDuration takes.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
