package emulated

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// checkInvariants holds the emulator to its own bookkeeping: areas sorted
// and disjoint, filled exactly when a domain exists, the page table
// mapping each filled area's memory and nothing else, and the pinned
// bytes equal to the host pages areas in domains hold, each once.
func checkInvariants(b *Backend) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	refs := map[*pages][]uint32{}
	for _, as := range b.spaces {
		var leaves uint64
		for i, a := range as.areas {
			if i > 0 && as.areas[i-1].last() >= a.iova {
				return fmt.Errorf("ioas %d: areas %d and %d overlap or are unsorted", as.id, i-1, i)
			}
			if refs[a.pg] == nil {
				refs[a.pg] = make([]uint32, len(a.pg.pins))
			}
			if a.filled != as.domain {
				return fmt.Errorf("ioas %d: area %#x filled=%v, domain=%v", as.id, a.iova, a.filled, as.domain)
			}
			if !a.filled {
				continue
			}
			first, last := a.pg.hostPages(a.off, a.length)
			for i := first; i <= last; i++ {
				refs[a.pg][i]++
			}
			for off := uint64(0); off < a.length; off += pageSize {
				got, perm, ok := as.pt.translate(a.iova + off)
				if !ok || addrOf(got) != addrOf(a.mem()[off:]) || perm != a.perm {
					return fmt.Errorf("ioas %d: iova %#x translates wrong", as.id, a.iova+off)
				}
			}
			leaves += a.length
		}
		if n := countLeaves(as.pt.root, as.pt.top); n != leaves {
			return fmt.Errorf("ioas %d: page table maps %#x bytes, areas %#x", as.id, n, leaves)
		}
	}
	var want uint64
	for pg, r := range refs {
		if !slices.Equal(r, pg.pins) {
			return fmt.Errorf("pin counts %v, areas in domains hold %v", pg.pins, r)
		}
		for _, n := range r {
			if n > 0 {
				want += pageSize
			}
		}
	}
	if want != b.pinned {
		return fmt.Errorf("pinned %d bytes, domains use %d", b.pinned, want)
	}
	return nil
}

func countLeaves(n *ptNode, lvl int) uint64 {
	if n == nil {
		return 0
	}
	var sum uint64
	used := 0
	for i := range n.pte {
		if n.pte[i].mem != nil {
			sum += levelSize(lvl)
			used++
		}
		if n.child[i] != nil {
			sum += countLeaves(n.child[i], lvl-1)
			used++
		}
	}
	if used != n.used || used == 0 {
		return ^uint64(0) // a stale count or an empty table left behind
	}
	return sum
}

// snapshot is what a failed operation must leave as it found it.
func snapshot(b *Backend) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	s := fmt.Sprintf("objects %v pinned %d faults %d\n", b.objects, b.pinned, len(b.faults))
	for _, as := range b.spaces {
		s += fmt.Sprintf("ioas %d domain %v align %d resv %d allowed %v attached %d:", as.id, as.domain, as.alignment, len(as.reserved), as.allowed, len(as.attached))
		for _, a := range as.areas {
			s += fmt.Sprintf(" %#x+%#x/%d", a.iova, a.length, a.perm)
		}
		s += "\n"
	}
	return s
}

// failNthSequence is iommufd_fail_nth's "basic" plus "device" sequences
// over the emulator: every step is valid, so the only error allowed is
// the injected ENOMEM, and it must leave no trace.
func failNthSequence(t *testing.T, b *Backend, p []byte) error {
	ctx := context.Background()
	var err error
	step := func(name string, op func() error) {
		if err != nil {
			return
		}
		before := snapshot(b)
		if e := op(); e != nil {
			if !errors.Is(e, syscall.ENOMEM) {
				t.Fatalf("%s: %v, want only the injected ENOMEM", name, e)
			}
			if after := snapshot(b); after != before {
				t.Fatalf("%s failed (%v) but changed state:\nbefore %s\nafter  %s", name, e, before, after)
			}
			err = e
		}
		if e := checkInvariants(b); e != nil {
			t.Fatalf("after %s: %v", name, e)
		}
	}
	var src, dst *AddressSpace
	var at *Attachment
	step("ioas alloc", func() (e error) { src, e = b.NewIOAS(ctx); return })
	step("ioas alloc", func() (e error) { dst, e = b.NewIOAS(ctx); return })
	fd := b.flavour == iommu.IOMMUFD
	opt := func(ok bool, name string, op func() error) {
		if ok {
			step(name, op)
		}
	}
	opt(fd, "allow iovas", func() error {
		return src.AllowIOVAs(ctx, []iommu.Range{{Start: 0x100000, Last: 0x7fffffff}})
	})
	step("map without domain", func() error { _, e := src.Map(ctx, fixed(p[:8192], 0x100000)); return e })
	step("attach", func() (e error) { at, e = src.AttachDevice(ctx, eduA); return })
	step("attach second", func() (e error) { _, e = dst.AttachDevice(ctx, eduB); return })
	step("map auto", func() error { _, e := src.Map(ctx, iommu.Mapping{Mem: p[8192 : 4<<20], Perm: iommu.Read}); return e })
	step("map 2M", func() error { _, e := src.Map(ctx, fixed(p[2<<20:4<<20], 0x40000000)); return e })
	opt(fd, "copy", func() error {
		_, e := dst.Copy(ctx, src, 0x100000, 8192, iommu.Mapping{Perm: iommu.Read})
		return e
	})
	opt(b.flavour != iommu.Compat, "dirty on", func() error { return src.SetDirtyTracking(ctx, true) })
	opt(b.flavour != iommu.Compat, "read dirty", func() error { _, e := src.ReadDirty(ctx, 0x100000, 8192, 4096, false); return e })
	step("unmap", func() error { _, e := src.Unmap(ctx, 0x100000, 8192); return e })
	step("unmap all", func() error { _, e := src.Unmap(ctx, 0, ^uint64(0)); return e })
	step("detach", func() error { return at.Detach(ctx) })
	step("map again", func() error { _, e := src.Map(ctx, fixed(p[:8192], 0x100000)); return e })
	return err
}

// TestFailNth sweeps N until the counter is no longer consumed; after each
// failure Close must leave no object or pin, and the next clean run of the
// sequence must succeed.
func TestFailNth(t *testing.T) {
	t.Parallel()
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			p := mem(t, 4<<20, 2<<20)
			user, proc := &Accounting{}, &Accounting{}
			m := mustMachine(t, eduA, eduB)
			opts := Options{Flavour: f, Machine: m, User: user, Process: proc}
			n := 1
			for ; n < 400; n++ {
				b := newBackend(t, opts)
				b.FailNth(n)
				err := failNthSequence(t, b, p)
				left := b.FailNthLeft()
				b.Close()
				if b.Objects() != 0 || b.Pinned() != 0 || user.Pinned() != 0 || proc.Pinned() != 0 {
					t.Fatalf("N=%d: after Close %d objects, %d pinned, user %d, process %d", n, b.Objects(), b.Pinned(), user.Pinned(), proc.Pinned())
				}
				if left > 0 {
					if err != nil {
						t.Fatalf("N=%d: the counter was not reached but the sequence failed: %v", n, err)
					}
					break
				}
				if err == nil {
					t.Fatalf("N=%d: the failure was injected but nothing failed", n)
				}
				clean := newBackend(t, opts)
				if err := failNthSequence(t, clean, p); err != nil {
					t.Fatalf("N=%d: the next clean run failed: %v", n, err)
				}
				clean.Close()
			}
			if n < 10 || n >= 400 {
				t.Fatalf("sweep ended at N=%d", n)
			}
			t.Logf("fail-nth sweep, %s: %d injection sites", f, n-1)
		})
	}
}

// TestZeroAllocs: translate of a mapped IOVA and map+unmap of 4 KiB in
// steady state allocate nothing (the benchmark goals, checked as
// counts since counts are not timing).
func TestZeroAllocs(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, Options{})
	as := newSpace(t, b)
	attach(t, as, eduA)
	p := mem(t, 8192, 4096)
	mustMap(t, as, fixed(p[4096:], 0x200000))
	if n := testing.AllocsPerRun(1000, func() { as.Translate(0x200010) }); n != 0 {
		t.Errorf("translate: %v allocations", n)
	}
	m := fixed(p[:4096], 0x100000)
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := as.Map(ctx, m); err != nil {
			t.Fatal(err)
		}
		if _, err := as.Unmap(ctx, 0x100000, 4096); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("map+unmap 4 KiB: %v allocations", n)
	}
	if err := checkInvariants(b); err != nil {
		t.Error(err)
	}
}
