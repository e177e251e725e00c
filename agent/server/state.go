//go:build linux

package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Lease record states. A record is written before the first change to the
// host and removed after the last undo, so after a crash every change the
// agent made is named by a record.
const (
	stateBinding   = "binding"   // drivers may be changing; nothing handed out
	stateActive    = "active"    // bound, fds handed out or address space live
	stateReleasing = "releasing" // the owner let go; drivers may be restoring
)

// record is a lease as persisted: enough to undo it without the process
// that made it.
type record struct {
	ID      string           `json:"id"`
	State   string           `json:"state"`
	Mode    string           `json:"mode"`
	Group   int              `json:"group"`
	Devices []string         `json:"devices"`
	Restore []sysfs.Original `json:"restore"` // what binding changed, to put back
	Cdevs   []string         `json:"cdevs,omitempty"`
	// VFs are the SR-IOV VF configs the lease changed, as they were
	// before: saved before the first netlink request, restored before the
	// drivers.
	VFs     []sriov.Snapshot `json:"vfs,omitempty"`
	Owner   Peer             `json:"owner"`
	Created time.Time        `json:"created"`

	persist bool // false: nothing to undo or re-adopt, never written
}

// store keeps one file per lease in dir, each replaced atomically: written to
// a temp file, fsynced, renamed over, and the directory fsynced.
//
// An open store holds the directory's lock: one agent per state dir, taken
// before anything in it is read, so a second agent never reconciles (undoes)
// the leases of a running one.
type store struct {
	dir    string
	effect func(what string) error
	lock   *os.File
}

func openStore(dir string, effect func(string) error) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	lock, err := lockStateDir(dir)
	if err != nil {
		return nil, err
	}
	return &store{dir: dir, effect: effect, lock: lock}, nil
}

// close releases the state dir for the next agent.
func (s *store) close() error { return s.lock.Close() }

func (s *store) path(id string) string { return filepath.Join(s.dir, id+".lease") }

func (s *store) save(r *record) error {
	if err := s.effect("save " + r.ID + " " + r.State); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".tmp-"+r.ID+"-")
	if err != nil {
		return fmt.Errorf("save lease %s: %w", r.ID, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path(r.ID))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save lease %s: %w", r.ID, err)
	}
	return s.syncDir()
}

func (s *store) remove(id string) error {
	if err := s.effect("remove " + id); err != nil {
		return err
	}
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove lease %s: %w", id, err)
	}
	return s.syncDir()
}

func (s *store) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// load reads every record; leftover temp files (a crash between write and
// rename) are removed, unreadable records are reported and left for a human.
func (s *store) load() ([]*record, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var recs []*record
	var errs []error
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".tmp-"):
			os.Remove(filepath.Join(s.dir, name))
		case strings.HasSuffix(name, ".lease"):
			b, err := os.ReadFile(filepath.Join(s.dir, name))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			var r record
			if err := json.Unmarshal(b, &r); err != nil || r.ID+".lease" != name {
				errs = append(errs, fmt.Errorf("lease file %s: unreadable (%v), left in place", name, err))
				continue
			}
			r.persist = true
			recs = append(recs, &r)
		}
	}
	return recs, errors.Join(errs...)
}
