//go:build linux

package bench

import (
	"context"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/emulated"
)

// Emulated measures the emulated IOMMU: a translation against a Go map
// lookup of the same pages, a 4 KiB map+unmap against a map insert and
// delete, and its page tables' memory per mapped GiB against the
// kernel's (4 KiB per table level) at each leaf size.
func Emulated() Bench {
	return Bench{Group: "emulated", Run: runEmulated}
}

const (
	pg  = 4096
	mib = 1 << 20
	gib = 1 << 30
)

type pageEntry struct {
	mem  []byte
	perm iommu.Perm
}

func runEmulated(ctx context.Context, e *Env) ([]Row, error) {
	dev := iommu.Device{BDF: "0000:00:01.0", Group: 1}
	b, err := emulated.New(emulated.Options{Devices: []iommu.Device{dev}})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	as, err := b.NewIOAS(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := as.AttachDevice(ctx, dev); err != nil {
		return nil, err
	}
	var rows []Row

	// Translate 1024 pages mapped with 4 KiB leaves (a 4 KiB-aligned,
	// not 2 MiB-aligned buffer), every level walked.
	const pages = 1024
	region, err := anon(pages*pg + 2*mib)
	if err != nil {
		return nil, err
	}
	defer unix.Munmap(region)
	buf := alignUp(region, 2*mib)[pg : pg+pages*pg]
	const base = 0x40000000
	if _, err := as.Map(ctx, iommu.Mapping{Mem: buf, IOVA: base, Fixed: true, Perm: iommu.Read | iommu.Write}); err != nil {
		return nil, err
	}
	plain := make(map[uint64]pageEntry, pages)
	for i := range uint64(pages) {
		plain[base+i*pg] = pageEntry{buf[i*pg : (i+1)*pg], iommu.Read | iommu.Write}
	}
	// sink keeps the compiler from dropping the lookups.
	var sink int
	r, err := e.timeRow(Row{Name: "translate one IOVA (4 KiB leaves)", Subject: "page-table walk", Baseline: "Go map lookup", Goal: 2},
		func(n int) error {
			for i := range n {
				iova := base + uint64(i%pages)*pg + 8
				b, perm, _ := as.Translate(iommu.IOVA(iova))
				sink += len(b) + int(perm)
			}
			return nil
		},
		func(n int) error {
			for i := range n {
				iova := base + uint64(i%pages)*pg + 8
				p := plain[iova&^(pg-1)]
				sink += len(p.mem[iova&(pg-1):]) + int(p.perm)
			}
			return nil
		})
	runtime.KeepAlive(sink)
	if err != nil {
		return rows, err
	}
	rows = append(rows, r)

	// Map and unmap one page, the IOAS's bookkeeping and page table
	// included, against inserting and deleting a map entry.
	page := buf[:pg]
	m := iommu.Mapping{Mem: page, IOVA: 0x100000, Fixed: true, Perm: iommu.Read | iommu.Write}
	mapUnmap := func(n int) error {
		for range n {
			if _, err := as.Map(ctx, m); err != nil {
				return err
			}
			if _, err := as.Unmap(ctx, 0x100000, pg); err != nil {
				return err
			}
		}
		return nil
	}
	r, err = e.timeRow(Row{Name: "map+unmap 4 KiB", Subject: "IOAS map+unmap", Baseline: "Go map insert+delete"},
		mapUnmap,
		func(n int) error {
			for range n {
				plain[0x100000] = pageEntry{page, iommu.Read}
				delete(plain, 0x100000)
			}
			return nil
		})
	if err != nil {
		return rows, err
	}
	r.Note = fmt.Sprintf("%.2f allocations per map+unmap", allocsPerOp(1000, mapUnmap))
	rows = append(rows, r)

	// Page-table memory per mapped GiB.
	for _, leaf := range []struct {
		name  string
		size  uint64
		align uint64
	}{{"4 KiB", pg, 2 * mib}, {"2 MiB", 2 * mib, gib}, {"1 GiB", gib, gib}} {
		row, err := tableMemory(ctx, leaf.name, leaf.size, leaf.align)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// tableMemory maps 1 GiB with leaves of leaf bytes into a fresh emulated
// IOAS and compares the table memory it took with the kernel's for the
// same mapping: one 4 KiB table per level per 512 entries.
func tableMemory(ctx context.Context, name string, leaf, align uint64) (Row, error) {
	dev := iommu.Device{BDF: "0000:00:01.0", Group: 1}
	b, err := emulated.New(emulated.Options{Devices: []iommu.Device{dev}})
	if err != nil {
		return Row{}, err
	}
	defer b.Close()
	as, err := b.NewIOAS(ctx)
	if err != nil {
		return Row{}, err
	}
	if _, err := as.AttachDevice(ctx, dev); err != nil {
		return Row{}, err
	}
	region, err := anon(gib + 2*gib)
	if err != nil {
		return Row{}, err
	}
	defer unix.Munmap(region)
	// Leaves are as large as the IOVA and the host address agree on
	// alignment: offset one of them by the leaf size below the one asked
	// for, and the mapping cannot use the larger leaf anywhere.
	mem := alignUp(region, gib)
	iova := uint64(gib)
	switch leaf {
	case pg:
		mem = mem[pg:]
	case 2 * mib:
		mem = mem[2*mib:]
	}
	mem = mem[:gib]
	before := b.TableBytes()
	if _, err := as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: iommu.IOVA(iova), Fixed: true, Perm: iommu.Read | iommu.Write}); err != nil {
		return Row{}, err
	}
	got := float64(b.TableBytes() - before)
	// The kernel's tables for 1 GiB, the top level's included (the
	// emulator allocates its root with the first map): 512 leaf tables
	// and a level-1, level-2 and level-3 table at 4 KiB leaves; levels 1
	// to 3 at 2 MiB; levels 2 and 3 at 1 GiB.
	tables := map[uint64]float64{pg: 512 + 3, 2 * mib: 3, gib: 2}[leaf]
	return ratioRow(Row{Name: "page-table memory per GiB, " + name + " leaves", Subject: "emulator's tables",
		Baseline: "the kernel's (4 KiB a table)", Value: got, Base: tables * pg, Unit: "bytes",
		Note: "an emulator table level keeps per entry a slice, permissions and a child pointer (40 bytes) where a hardware descriptor is 8"}), nil
}

// anon is n bytes of anonymous memory, not touched.
func anon(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
}

// alignUp returns b from its first byte whose address is a multiple of a.
func alignUp(b []byte, a uint64) []byte {
	addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	off := (a - addr%a) % a
	return b[off:]
}

// allocsPerOp is op's heap allocations per call over n calls.
func allocsPerOp(n int, op Op) float64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if err := op(n); err != nil {
		return -1
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(n)
}
