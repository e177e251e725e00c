//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/ioctl"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// GuestRAM maps a guest's worth of RAM, as much as the machine can spare
// (at least 1 GiB, at most the anchor's 16 GiB), from a memfd with 4 KiB
// pages, THP and hugetlbfs pages, on iommufd and type1 with a device
// attached, by several strategies: one call (the floor: the kernel's own
// time for the whole map), 2 MiB and 4 KiB chunks, and the agent's own
// strategies, what a broker lease's map does (agent/server mapMem: hand
// the kernel the memfd with AddressSpace.MapFile where it has
// IOMMU_IOAS_MAP_FILE, else mmap it shared and AddressSpace.Map all of
// it), which must stay within 1.05x the floor. Each row's cost is the map's time per
// GiB, so it reads against the published anchor (Li Zhe, 2025: a 16 GiB
// type1 map in 0.280 s with 4 KiB pages, 0.047 s with THP, 0.052 s with
// hugetlbfs, on bare metal).
func GuestRAM() Bench {
	return Bench{Group: "guest-ram", Run: runGuestRAM}
}

// ramIOVA is where guest RAM is mapped: 4 GiB, above the x86 MSI window
// and the SMMUv3 one, and 1 GiB-aligned so huge IOMMU pages can be used.
const ramIOVA = 4 * gib

// ramHeadroom is the memory left to everything else while guest RAM is
// mapped.
const ramHeadroom = 512 * mib

// ramSize is how much RAM the bench maps, from /proc/meminfo: what is
// available past the headroom, in whole GiB, at most 16 GiB (the
// anchor's size), or 1 GiB when quick.
func ramSize(mi map[string]uint64, quick bool) (uint64, error) {
	avail := mi["MemAvailable"]
	if avail < gib+ramHeadroom {
		return 0, fmt.Errorf("guest RAM needs 1 GiB + %d MiB headroom, MemAvailable is %d MiB", ramHeadroom/mib, avail/mib)
	}
	size := min((avail-ramHeadroom)/gib*gib, 16*gib)
	if quick {
		size = gib
	}
	return size, nil
}

// backing is one kind of guest RAM memory.
type backing struct {
	name   string
	flags  int // memfd_create flags
	advice int // madvise before populating; 0 for none
	size   uint64
	skip   string // why it cannot be used here
	// anchor is Li Zhe's type1 MAP time for 16 GiB of this backing, in
	// seconds.
	anchor float64
}

// backings lists the kinds of memory for a size-byte map, each with why
// it cannot be used here, if so: THP needs shmem_enabled to allow it,
// hugetlbfs needs huge pages reserved (then its size is what they hold,
// in whole GiB, at most size).
func backings(mi map[string]uint64, shmemEnabled string, size uint64) []backing {
	thp := backing{name: "memfd, THP", advice: unix.MADV_HUGEPAGE, size: size, anchor: 0.047}
	switch shmemEnabled {
	case "always", "within_size", "advise", "force":
	default:
		thp.skip = fmt.Sprintf("shmem THP is off (transparent_hugepage/shmem_enabled: %s): echo advise there", shmemEnabled)
	}
	huge := backing{name: "memfd, hugetlbfs", flags: unix.MFD_HUGETLB, anchor: 0.052}
	free := mi["HugePages_Free"] * mi["Hugepagesize"]
	if huge.size = min(free/gib*gib, size); huge.size == 0 {
		huge.skip = fmt.Sprintf("needs 1 GiB of free huge pages, %d MiB free (%d of %d kB): reserve them with vm.nr_hugepages",
			free/mib, mi["HugePages_Free"], mi["Hugepagesize"]/1024)
	}
	return []backing{
		{name: "memfd, 4 KiB pages", advice: unix.MADV_NOHUGEPAGE, size: size, anchor: 0.280},
		thp,
		huge,
	}
}

// shmemEnabled is the selected value of
// /sys/kernel/mm/transparent_hugepage/shmem_enabled ("[never]" → never).
func shmemEnabled() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return selected(string(b))
}

func selected(s string) string {
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			return strings.Trim(f, "[]")
		}
	}
	return strings.TrimSpace(s)
}

// ramBackend is one uAPI with a device attached, as the strategies use
// it.
type ramBackend struct {
	name string
	// mapRaw maps mem at iova through our ioctl layer, one call.
	mapRaw func(mem []byte, iova uint64) error
	// unmapAll unmaps [iova, iova+length) in one call.
	unmapAll func(iova, length uint64) error
	// mapFile maps length bytes of memfd at iova with
	// IOMMU_IOAS_MAP_FILE (6.13), which pins the memfd's folios with no
	// process mapping at all; nil on type1.
	mapFile func(memfd int, length, iova uint64) error
	// as is the agent's address space over the same fd.
	as iommu.AddressSpace
	// entries is how many more mappings the kernel takes (type1's
	// dma_entry_limit), or ok false for no limit.
	entries func() (n uint64, ok bool)
	close   func() error
}

func openRAMBackends(ctx context.Context, dev iommu.Device) []func() (*ramBackend, error) {
	return []func() (*ramBackend, error){
		func() (*ramBackend, error) {
			s, err := openIOMMUFD(ctx, &dev)
			if err != nil {
				return nil, err
			}
			const flags = iommufd.FixedIOVA | iommufd.Readable | iommufd.Writeable
			return &ramBackend{
				name: "iommufd",
				mapRaw: func(mem []byte, iova uint64) error {
					_, err := s.fd.Map(s.ioas, mem, iommufd.IOVA(iova), flags)
					return err
				},
				unmapAll: func(iova, length uint64) error {
					_, err := s.fd.Unmap(s.ioas, iommufd.IOVA(iova), length)
					return err
				},
				mapFile: func(memfd int, length, iova uint64) error {
					_, err := s.fd.MapFile(s.ioas, memfd, 0, length, iommufd.IOVA(iova), flags)
					return err
				},
				as:      s.as,
				entries: func() (uint64, bool) { return 0, false },
				close:   s.Close,
			}, nil
		},
		func() (*ramBackend, error) {
			s, err := openType1(ctx, dev)
			if err != nil {
				return nil, err
			}
			return &ramBackend{
				name: "type1",
				mapRaw: func(mem []byte, iova uint64) error {
					return s.c.MapDMA(mem, iova, vfio.DMARead|vfio.DMAWrite)
				},
				unmapAll: func(iova, length uint64) error {
					_, err := s.c.UnmapDMA(iova, length, 0)
					return err
				},
				as: s.as,
				entries: func() (uint64, bool) {
					info, err := s.c.IOMMUInfo()
					if err != nil || info.DMAAvail == nil {
						return 0, false
					}
					return uint64(*info.DMAAvail), true
				},
				close: s.Close,
			}, nil
		},
	}
}

// mapChunks maps mem at iova in chunk-byte calls (the last one shorter
// if chunk does not divide len(mem)); on failure it unmaps what it
// mapped.
func mapChunks(mem []byte, iova uint64, chunk int, mapRaw func([]byte, uint64) error, unmapAll func(iova, length uint64) error) error {
	for off := 0; off < len(mem); off += chunk {
		end := min(off+chunk, len(mem))
		if err := mapRaw(mem[off:end], iova+uint64(off)); err != nil {
			if off > 0 {
				unmapAll(iova, uint64(off))
			}
			return fmt.Errorf("map chunk at +%#x: %w", off, err)
		}
	}
	return nil
}

// strategy maps the whole backing at ramIOVA and returns the map's time;
// undo (not timed) leaves the address space empty again.
type strategy struct {
	name string
	goal float64
	// skip says why it cannot run on this backend and size, or "".
	skip func(b *ramBackend, size uint64) string
	// applies, when set, says whether the backend has the strategy at
	// all; one without it gets no row.
	applies func(b *ramBackend) bool
	run     func(ctx context.Context, b *ramBackend, m *memfdMem) (d time.Duration, undo func() error, err error)
}

func strategies() []strategy {
	noSkip := func(*ramBackend, uint64) string { return "" }
	chunked := func(chunk int) strategy {
		return strategy{
			name: sizeName(uint64(chunk)) + " chunks",
			skip: func(b *ramBackend, size uint64) string {
				need := size / uint64(chunk)
				if n, ok := b.entries(); ok && n < need {
					return fmt.Sprintf("takes %d mappings, the container takes %d more (vfio_iommu_type1 dma_entry_limit): raise /sys/module/vfio_iommu_type1/parameters/dma_entry_limit", need, n)
				}
				return ""
			},
			run: func(ctx context.Context, b *ramBackend, m *memfdMem) (time.Duration, func() error, error) {
				start := time.Now()
				err := mapChunks(m.mem, ramIOVA, chunk, b.mapRaw, b.unmapAll)
				d := time.Since(start)
				return d, func() error { return b.unmapAll(ramIOVA, uint64(len(m.mem))) }, err
			},
		}
	}
	fresh := func(agent, populate bool) func(ctx context.Context, b *ramBackend, m *memfdMem) (time.Duration, func() error, error) {
		return func(ctx context.Context, b *ramBackend, m *memfdMem) (time.Duration, func() error, error) {
			start := time.Now()
			mem, err := unix.Mmap(m.fd, 0, len(m.mem), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				return 0, nil, fmt.Errorf("mmap the memfd: %w", err)
			}
			if populate {
				if err := unix.Madvise(mem, unix.MADV_POPULATE_WRITE); err != nil {
					unix.Munmap(mem)
					return 0, nil, fmt.Errorf("madvise MADV_POPULATE_WRITE: %w", err)
				}
			}
			if agent {
				_, err = b.as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: ramIOVA, Fixed: true, Perm: iommu.Read | iommu.Write})
			} else {
				err = b.mapRaw(mem, ramIOVA)
			}
			d := time.Since(start)
			if err != nil {
				unix.Munmap(mem)
				return 0, nil, err
			}
			return d, func() error {
				var err error
				if agent {
					_, err = b.as.Unmap(ctx, ramIOVA, uint64(len(mem)))
				} else {
					err = b.unmapAll(ramIOVA, uint64(len(mem)))
				}
				if merr := unix.Munmap(mem); err == nil {
					err = merr
				}
				return err
			}, nil
		}
	}
	return []strategy{
		{
			name: "one call", skip: noSkip,
			run: func(ctx context.Context, b *ramBackend, m *memfdMem) (time.Duration, func() error, error) {
				start := time.Now()
				err := b.mapRaw(m.mem, ramIOVA)
				d := time.Since(start)
				return d, func() error { return b.unmapAll(ramIOVA, uint64(len(m.mem))) }, err
			},
		},
		{name: "agent: mmap + AddressSpace.Map (broker map)", goal: 1.05, skip: noSkip, run: fresh(true, false)},
		// What broker leases do where the kernel has IOMMU_IOAS_MAP_FILE
		// (6.13): the agent hands the kernel the memfd itself.
		{
			name:    "agent: AddressSpace.MapFile (broker map on 6.13+)",
			goal:    1.05,
			skip:    noSkip,
			applies: func(b *ramBackend) bool { return b.mapFile != nil }, // iommufd's, whose address space has MapFile
			run: func(ctx context.Context, b *ramBackend, m *memfdMem) (time.Duration, func() error, error) {
				fm, ok := b.as.(iommu.FileMapper)
				if !ok {
					return 0, nil, fmt.Errorf("the %s address space has no MapFile", b.name)
				}
				start := time.Now()
				_, err := fm.MapFile(ctx, iommu.FileMapping{FD: m.fd, Length: uint64(len(m.mem)),
					IOVA: ramIOVA, Fixed: true, Perm: iommu.Read | iommu.Write})
				d := time.Since(start)
				return d, func() error {
					_, err := b.as.Unmap(ctx, ramIOVA, uint64(len(m.mem)))
					return err
				}, err
			},
		},
		// The agent's cost over the floor is its fresh mapping of the
		// memfd, whose page tables the pin fills a fault at a time:
		// these two tell that from our layer, and whether populating
		// the mapping first (5.14) is any cheaper.
		{name: "one call on a fresh mmap", skip: noSkip, run: fresh(false, false)},
		{name: "one call on a fresh mmap after MADV_POPULATE_WRITE", skip: noSkip, run: fresh(false, true)},
		{
			name:    "one IOMMU_IOAS_MAP_FILE call",
			skip:    noSkip,
			applies: func(b *ramBackend) bool { return b.mapFile != nil },
			run: func(ctx context.Context, b *ramBackend, m *memfdMem) (time.Duration, func() error, error) {
				start := time.Now()
				err := b.mapFile(m.fd, uint64(len(m.mem)), ramIOVA)
				d := time.Since(start)
				return d, func() error { return b.unmapAll(ramIOVA, uint64(len(m.mem))) }, err
			},
		},
		chunked(2 * mib),
		chunked(pg),
	}
}

func runGuestRAM(ctx context.Context, e *Env) ([]Row, error) {
	dev, err := e.firstDevice()
	if err != nil {
		return nil, err
	}
	mi, err := meminfo()
	if err != nil {
		return nil, err
	}
	size, err := ramSize(mi, e.Quick)
	if err != nil {
		return nil, err
	}
	rounds := 5
	if e.Quick {
		rounds = 3
	}
	var rows []Row
	for _, bk := range backings(mi, shmemEnabled(), size) {
		if bk.skip != "" {
			rows = append(rows, Row{Name: bk.name, Skipped: bk.skip})
			continue
		}
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
		e.progress("  %s, %s: populating", bk.name, sizeName(bk.size))
		before, _ := meminfo()
		m, err := newMemfd("guest-ram", int(bk.size), bk.flags, bk.advice)
		if err != nil {
			rows = append(rows, Row{Name: bk.name, Skipped: err.Error()})
			continue
		}
		after, _ := meminfo()
		huge := hugeShare(bk, before, after)
		for _, open := range openRAMBackends(ctx, dev) {
			b, err := open()
			if err != nil {
				m.Close()
				return rows, err
			}
			rs, err := e.ramRows(ctx, b, bk, m, rounds, huge)
			rows = append(rows, rs...)
			if cerr := b.close(); err == nil {
				err = cerr
			}
			if err != nil {
				m.Close()
				return rows, err
			}
		}
		if err := m.Close(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// hugeShare is the share of the backing the kernel holds in huge pages,
// from /proc/meminfo before and after populating it.
func hugeShare(bk backing, before, after map[string]uint64) float64 {
	if bk.flags&unix.MFD_HUGETLB != 0 {
		return 1
	}
	if after["ShmemHugePages"] < before["ShmemHugePages"] {
		return 0
	}
	return min(float64(after["ShmemHugePages"]-before["ShmemHugePages"])/float64(bk.size), 1)
}

// ramRows measures every strategy on b in rounds, alternating their
// order, and returns a row per strategy against the one-call floor.
func (e *Env) ramRows(ctx context.Context, b *ramBackend, bk backing, m *memfdMem, rounds int, huge float64) ([]Row, error) {
	var strats []strategy
	for _, s := range strategies() {
		if s.applies == nil || s.applies(b) {
			strats = append(strats, s)
		}
	}
	times := make([][]float64, len(strats))
	var unmaps []float64
	skip := make([]string, len(strats))
	for i, s := range strats {
		skip[i] = s.skip(b, bk.size)
	}
	prefix := fmt.Sprintf("%s, %s, %s", b.name, bk.name, sizeName(bk.size))
	e.progress("  %s: %d strategies x %d rounds", prefix, len(strats), rounds)
	for r := range rounds {
		for k := range strats {
			i := (k + r) % len(strats)
			if skip[i] != "" {
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			d, undo, err := strats[i].run(ctx, b, m)
			if errors.Is(err, ioctl.ErrNotSupported) {
				skip[i] = err.Error()
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", prefix, strats[i].name, err)
			}
			start := time.Now()
			err = undo()
			if i == 0 {
				unmaps = append(unmaps, float64(time.Since(start).Nanoseconds()))
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %s: unmap: %w", prefix, strats[i].name, err)
			}
			times[i] = append(times[i], float64(d.Nanoseconds()))
		}
	}
	perGiB := func(ns float64) float64 { return ns / 1e6 / (float64(bk.size) / gib) }
	floor := perGiB(median(times[0]))
	anchor := bk.anchor * 1e3 / 16
	var rows []Row
	for i, s := range strats[1:] {
		i++
		r := Row{Name: prefix + ": " + s.name, Subject: s.name, Baseline: "one call", Goal: s.goal}
		if skip[i] != "" {
			r.Skipped = skip[i]
			rows = append(rows, r)
			continue
		}
		r.Value, r.Base, r.Unit = perGiB(median(times[i])), floor, "ms/GiB"
		if i == 1 {
			r.Note = fmt.Sprintf("one call maps in %.2f ms/GiB, unmaps in %.2f; anchor (Li Zhe 2025, 16 GiB type1 map, bare metal): %.2f ms/GiB, so %.1fx it here; %.0f%% in huge pages",
				floor, perGiB(median(unmaps)), anchor, floor/anchor, huge*100)
		}
		rows = append(rows, ratioRow(r))
	}
	return rows, nil
}
