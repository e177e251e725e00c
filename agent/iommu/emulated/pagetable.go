package emulated

import (
	"unsafe"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// The page table has levels of 512 entries: four over VT-d's and SMMUv3's
// 48-bit aperture (which ends at apertureEnd), six over the 64-bit IOVA of
// an AMD-Vi domain (topLevel), with leaves of 4 KiB, 2 MiB (level 1) and
// 1 GiB (level 2) where IOVA, host address and length allow.
const (
	pageShift   = 12
	pageSize    = 1 << pageShift
	levelBits   = 9
	fanout      = 1 << levelBits
	topLevel    = 5 // the most levels a table has, less one
	topLevel48  = 3 // the top level of a table over 48 bits
	maxLeafLvl  = 2
	apertureEnd = 1<<48 - 1
	maxU64      = ^uint64(0)
)

func levelSize(lvl int) uint64 { return 1 << (pageShift + levelBits*lvl) }

type pte struct {
	mem   []byte // the bytes a leaf maps, levelSize long; nil if not a leaf
	perm  iommu.Perm
	dirty bool
}

type ptNode struct {
	pte   [fanout]pte
	child [fanout]*ptNode
	used  int // leaves plus children
}

// nodePool keeps freed nodes so that map and unmap in steady state do not
// allocate. A node is only freed when empty, so it comes back zeroed.
type nodePool struct {
	free []*ptNode
	live int // nodes handed out and not put back
}

func (p *nodePool) get() *ptNode {
	p.live++
	if n := len(p.free); n > 0 {
		nd := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return nd
	}
	return new(ptNode)
}

func (p *nodePool) put(n *ptNode) {
	p.live--
	p.free = append(p.free, n)
}

// nodeBytes is one node's size: a table level of the emulator, where the
// kernel's is a 4 KiB page of 512 descriptors.
const nodeBytes = uint64(unsafe.Sizeof(ptNode{}))

type pageTable struct {
	root *ptNode
	pool *nodePool
	last uint64 // the aperture's last IOVA
	top  int    // the root's level: topLevel48 when last fits in 48 bits
}

// newPageTable is an empty table over the aperture [0, last].
func newPageTable(pool *nodePool, last uint64) pageTable {
	top := topLevel
	if last <= apertureEnd {
		top = topLevel48
	}
	return pageTable{pool: pool, last: last, top: top}
}

// lookup walks to the leaf holding iova.
func (pt *pageTable) lookup(iova uint64) (*pte, int) {
	n := pt.root
	if n == nil || iova > pt.last {
		return nil, 0
	}
	for lvl := pt.top; ; lvl-- {
		i := (iova >> (pageShift + levelBits*lvl)) & (fanout - 1)
		if e := &n.pte[i]; e.mem != nil {
			return e, lvl
		}
		if lvl == 0 {
			return nil, 0
		}
		if n = n.child[i]; n == nil {
			return nil, 0
		}
	}
}

// translate returns the host bytes from iova to the end of its leaf.
func (pt *pageTable) translate(iova uint64) ([]byte, iommu.Perm, bool) {
	e, lvl := pt.lookup(iova)
	if e == nil {
		return nil, 0, false
	}
	return e.mem[iova&(levelSize(lvl)-1):], e.perm, true
}

// set installs a leaf of level lvl at iova; step is the fail-Nth hook,
// consumed once per table allocated.
func (pt *pageTable) set(iova uint64, lvl int, mem []byte, perm iommu.Perm, step func(string) error) error {
	if pt.root == nil {
		if err := step("allocate page table"); err != nil {
			return err
		}
		pt.root = pt.pool.get()
	}
	n := pt.root
	for l := pt.top; l > lvl; l-- {
		i := (iova >> (pageShift + levelBits*l)) & (fanout - 1)
		if n.child[i] == nil {
			if err := step("allocate page table"); err != nil {
				pt.prune(iova)
				return err
			}
			n.child[i] = pt.pool.get()
			n.used++
		}
		n = n.child[i]
	}
	i := (iova >> (pageShift + levelBits*lvl)) & (fanout - 1)
	n.pte[i] = pte{mem: mem, perm: perm}
	n.used++
	return nil
}

// clear removes the leaf holding iova and returns its size, 0 if none.
func (pt *pageTable) clear(iova uint64) uint64 {
	var path [topLevel + 1]*ptNode
	n := pt.root
	if n == nil {
		return 0
	}
	for lvl := pt.top; lvl >= 0; lvl-- {
		path[lvl] = n
		i := (iova >> (pageShift + levelBits*lvl)) & (fanout - 1)
		if n.pte[i].mem != nil {
			n.pte[i] = pte{}
			n.used--
			pt.pruneFrom(iova, lvl, &path)
			return levelSize(lvl)
		}
		if lvl == 0 || n.child[i] == nil {
			return 0
		}
		n = n.child[i]
	}
	return 0
}

// prune frees the empty tables on the path to iova.
func (pt *pageTable) prune(iova uint64) {
	var path [topLevel + 1]*ptNode
	n := pt.root
	if n == nil {
		return
	}
	lvl := pt.top
	for {
		path[lvl] = n
		if lvl == 0 {
			break
		}
		c := n.child[(iova>>(pageShift+levelBits*lvl))&(fanout-1)]
		if c == nil {
			break
		}
		n = c
		lvl--
	}
	pt.pruneFrom(iova, lvl, &path)
}

func (pt *pageTable) pruneFrom(iova uint64, lvl int, path *[topLevel + 1]*ptNode) {
	for ; lvl <= pt.top; lvl++ {
		n := path[lvl]
		if n.used != 0 {
			return
		}
		pt.pool.put(n)
		if lvl == pt.top {
			pt.root = nil
			return
		}
		parent := path[lvl+1]
		parent.child[(iova>>(pageShift+levelBits*(lvl+1)))&(fanout-1)] = nil
		parent.used--
	}
}

// mapRange maps [iova, iova+len(mem)) with the largest leaves the
// alignment of iova and of mem's host address allow. On error nothing of
// it stays mapped.
func (pt *pageTable) mapRange(iova uint64, mem []byte, perm iommu.Perm, huge bool, step func(string) error) error {
	pa := addrOf(mem)
	top := maxLeafLvl
	if !huge {
		top = 0
	}
	for off := uint64(0); off < uint64(len(mem)); {
		lvl := 0
		for l := top; l > 0; l-- {
			sz := levelSize(l)
			if (iova+off)&(sz-1) == 0 && (pa+off)&(sz-1) == 0 && uint64(len(mem))-off >= sz {
				lvl = l
				break
			}
		}
		sz := levelSize(lvl)
		if err := pt.set(iova+off, lvl, mem[off:off+sz:off+sz], perm, step); err != nil {
			pt.unmapRange(iova, off)
			return err
		}
		off += sz
	}
	return nil
}

// unmapRange removes the leaves covering [iova, iova+length).
func (pt *pageTable) unmapRange(iova, length uint64) {
	for off := uint64(0); off < length; {
		sz := pt.clear(iova + off)
		if sz == 0 {
			sz = pageSize
		}
		off += sz
	}
}
