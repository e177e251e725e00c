//go:build linux && !hwtests

package server_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/client"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

var errKilled = errors.New("agent killed")

// killSwitch counts a server's durable effects (sysfs writes and state-dir
// writes) and, from the armed one on, refuses them all: from outside, the
// server died right before that effect, as after kill -9. What it does in
// memory afterwards (rollbacks, fd closes) changes nothing on the host.
type killSwitch struct {
	w sysfs.Writer

	mu     sync.Mutex
	n, at  int
	killed bool
	seen   []string // what each effect was, killed ones included
}

func (k *killSwitch) effect(what string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.n++
	k.seen = append(k.seen, what)
	if k.killed || (k.at > 0 && k.n >= k.at) {
		k.killed = true
		return errKilled
	}
	return nil
}

func (k *killSwitch) WriteAttr(path, value string) error {
	if err := k.effect(path); err != nil {
		return err
	}
	return k.w.WriteAttr(path, value)
}

// TestCrash kills the agent at 100 random points of acquire/release (one
// shared fake host and state dir throughout, so each restart must leave the
// host clean for the next round) and checks after every restart that the
// host is consistent: every record left is a re-adopted lease whose cdev the
// client still holds, bound to vfio-pci; every other device has its original
// driver; then the client lets go and the host is as it was at the start.
func TestCrash(t *testing.T) {
	h := newFakeHost(t, "vtd-guest.txtar")
	want := h.drivers(t)
	state := filepath.Join(t.TempDir(), "state")
	policy := &server.Policy{Rules: []server.Rule{{UIDs: []uint32{uint32(os.Getuid())}, All: true, KeepOnDisconnect: true}}}
	options := func(fs *sysfs.FS, effect func(string) error, fds bool) server.Options {
		o := server.Options{Sysfs: fs, StateDir: state, Policy: policy, Effect: effect}
		if fds {
			o.Backend, o.IOMMUPath, o.DevDir = server.BackendIOMMUFD, h.iommu, h.devDir
		}
		return o
	}
	// Effects of a full cycle per target, from a run without a kill.
	groups := []int{1, 3, 4} // edu alone and driverless; three chipset functions; igb
	full := map[int]int{}
	for _, g := range groups {
		k := &killSwitch{w: h.k}
		fs, _ := sysfs.New(h.sys, sysfs.WithWriter(k))
		srv, err := server.New(context.Background(), options(fs, k.effect, g != 1))
		if err != nil {
			t.Fatal(err)
		}
		sock, stop := serve(t, srv) // one agent at a time on the state dir
		c := dial(t, sock)
		a, err := c.AcquireGroup(g, client.AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		if err := c.Release(a.Lease.ID); err != nil {
			t.Fatal(err)
		}
		k.mu.Lock()
		full[g] = k.n
		k.mu.Unlock()
		c.Close()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("durable effects per acquire+release: group 1 (broker): %d, group 3: %d, group 4: %d", full[1], full[3], full[4])

	r := rand.New(rand.NewPCG(1, 2))
	adopted, released := 0, 0
	for round := range 100 {
		g := groups[r.IntN(len(groups))]
		fdsMode := g != 1 && r.IntN(2) == 0
		k := &killSwitch{w: h.k, at: 1 + r.IntN(full[g])}
		fs, _ := sysfs.New(h.sys, sysfs.WithWriter(k))
		o := options(fs, k.effect, fdsMode)
		srv, err := server.New(context.Background(), o)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		k.mu.Lock()
		k.n = 0 // count from the first request
		k.mu.Unlock()
		sock, stop := serve(t, srv)
		c := dial(t, sock)
		hold := r.IntN(2) == 0 // the VMM keeps running through the crash
		var files *client.Acquired
		a, err := c.AcquireGroup(g, client.AcquireOptions{})
		if err == nil {
			files = a
			if !hold {
				a.Close()
				if err := c.Release(a.Lease.ID); err != nil && !strings.Contains(err.Error(), errKilled.Error()) {
					t.Fatalf("round %d: release: %v", round, err)
				}
			}
		} else if !strings.Contains(err.Error(), errKilled.Error()) {
			t.Fatalf("round %d: acquire: %v", round, err)
		}
		// The agent dies: whatever it does from here reaches nothing.
		k.mu.Lock()
		k.killed = true
		k.mu.Unlock()
		c.Close()
		stop()

		// A fresh agent on the same state dir and host reconciles.
		srv2, err := server.New(context.Background(), options(h.fs, nil, fdsMode))
		if err != nil {
			t.Fatalf("round %d (kill at effect %d of %d, group %d, fds %v): reconcile: %v", round, k.at, full[g], g, fdsMode, err)
		}
		leases := srv2.Leases()
		recs, _ := filepath.Glob(filepath.Join(state, "*.lease"))
		if len(recs) != len(leases) {
			t.Fatalf("round %d: %d records for %d leases", round, len(recs), len(leases))
		}
		got := h.drivers(t)
		leased := map[string]bool{}
		for _, l := range leases {
			if l.Mode != proto.ModeFDs || files == nil || !hold || l.ID != files.Lease.ID {
				t.Fatalf("round %d: re-adopted %+v, but the client holds %v", round, l, files)
			}
			for _, d := range l.Devices {
				leased[d] = true
				if got[d] != "vfio-pci/vfio-pci" {
					t.Fatalf("round %d: %s of re-adopted lease is %s", round, d, got[d])
				}
			}
		}
		for d, drv := range want {
			if !leased[d] && got[d] != drv {
				t.Fatalf("round %d (kill at effect %d of %d, group %d): %s is %s, want %s", round, k.at, full[g], g, d, got[d], drv)
			}
		}
		// The VMM exits; the owner releases through the new agent.
		if files != nil {
			files.Close()
		}
		if len(leases) > 0 {
			adopted++
			sock2, stop2 := serve(t, srv2)
			c2 := dial(t, sock2)
			if err := c2.Release(leases[0].ID); err != nil {
				t.Fatalf("round %d: release re-adopted: %v", round, err)
			}
			c2.Close()
			stop2()
		} else {
			released++
			srv2.Close() // never served: let the next round's agent lock the state dir
		}
		if got := h.drivers(t); !mapsEqual(got, want) {
			t.Fatalf("round %d: after the last release %v, want %v", round, got, want)
		}
	}
	t.Logf("100 kills: %d leases re-adopted (client held the fds), %d rounds with nothing to adopt", adopted, released)
}
