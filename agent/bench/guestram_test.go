//go:build linux

package bench

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type chunkCall struct {
	off, length int
	iova        uint64
}

// TestMapChunks: chunks cover the memory in order at matching IOVAs, the
// last one short; a failure unmaps exactly what was mapped.
func TestMapChunks(t *testing.T) {
	mem := make([]byte, 10*pg)
	var calls []chunkCall
	rec := func(m []byte, iova uint64) error {
		off := len(mem) - cap(m) // m is a suffix of mem's backing array
		calls = append(calls, chunkCall{off, len(m), iova})
		return nil
	}
	noUnmap := func(uint64, uint64) error { t.Error("unmap on success"); return nil }
	if err := mapChunks(mem, 0x1000000, 4*pg, rec, noUnmap); err != nil {
		t.Fatal(err)
	}
	want := []chunkCall{{0, 4 * pg, 0x1000000}, {4 * pg, 4 * pg, 0x1000000 + 4*pg}, {8 * pg, 2 * pg, 0x1000000 + 8*pg}}
	if len(calls) != len(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d = %v, want %v", i, calls[i], want[i])
		}
	}

	calls = nil
	if err := mapChunks(mem, 0, pg, rec, noUnmap); err != nil || len(calls) != 10 {
		t.Errorf("4 KiB chunks of 40 KiB: %d calls, %v", len(calls), err)
	}

	boom := errors.New("boom")
	n := 0
	failThird := func(m []byte, iova uint64) error {
		if n++; n == 3 {
			return boom
		}
		return nil
	}
	var unmapped [][2]uint64
	err := mapChunks(mem, 0x2000, 2*pg, failThird, func(iova, length uint64) error {
		unmapped = append(unmapped, [2]uint64{iova, length})
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("failing chunk: %v", err)
	}
	if len(unmapped) != 1 || unmapped[0] != [2]uint64{0x2000, 4 * pg} {
		t.Errorf("unmapped %v after the third chunk failed, want [0x2000 +16 KiB]", unmapped)
	}
	unmapped = nil
	n = 2
	if err := mapChunks(mem, 0, 2*pg, failThird, func(iova, length uint64) error {
		unmapped = append(unmapped, [2]uint64{iova, length})
		return nil
	}); !errors.Is(err, boom) || len(unmapped) != 0 {
		t.Errorf("first chunk failing: %v, unmapped %v", err, unmapped)
	}
}

func TestRAMSize(t *testing.T) {
	for _, c := range []struct {
		avail uint64
		quick bool
		want  uint64
	}{
		{1536 * mib, false, gib},
		{2047 * mib, false, gib},
		{2560 * mib, false, 2 * gib},
		{64 * gib, false, 16 * gib},
		{64 * gib, true, gib},
	} {
		got, err := ramSize(map[string]uint64{"MemAvailable": c.avail}, c.quick)
		if err != nil || got != c.want {
			t.Errorf("ramSize(%d MiB, quick %v) = %d MiB, %v; want %d MiB", c.avail/mib, c.quick, got/mib, err, c.want/mib)
		}
	}
	if _, err := ramSize(map[string]uint64{"MemAvailable": 1535 * mib}, false); err == nil || !strings.Contains(err.Error(), "1 GiB") {
		t.Errorf("ramSize with 1535 MiB available: %v", err)
	}
}

func TestBackings(t *testing.T) {
	mi := map[string]uint64{"HugePages_Free": 600, "Hugepagesize": 2 * mib}
	bs := backings(mi, "advise", 2*gib)
	if len(bs) != 3 || bs[0].skip != "" || bs[1].skip != "" || bs[2].skip != "" {
		t.Fatalf("backings = %+v", bs)
	}
	if bs[0].size != 2*gib || bs[1].size != 2*gib || bs[2].size != gib {
		t.Errorf("sizes %d, %d, %d MiB; want 2048, 2048, 1024 (1200 MiB of huge pages)", bs[0].size/mib, bs[1].size/mib, bs[2].size/mib)
	}
	if bs[1].advice != unix.MADV_HUGEPAGE || bs[2].flags != unix.MFD_HUGETLB || bs[0].advice != unix.MADV_NOHUGEPAGE {
		t.Errorf("flags: %+v", bs)
	}
	bs = backings(map[string]uint64{"HugePages_Free": 100, "Hugepagesize": 2 * mib}, "never", gib)
	if !strings.Contains(bs[1].skip, "shmem_enabled: never") || !strings.Contains(bs[2].skip, "200 MiB free") {
		t.Errorf("skips: %q, %q", bs[1].skip, bs[2].skip)
	}
}

func TestSelected(t *testing.T) {
	for in, want := range map[string]string{
		"always within_size advise [never] deny force\n": "never",
		"[advise] never": "advise",
		"no brackets\n":  "no brackets",
	} {
		if got := selected(in); got != want {
			t.Errorf("selected(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHugeShare(t *testing.T) {
	bk := backing{size: gib}
	if got := hugeShare(bk, map[string]uint64{"ShmemHugePages": 10 * mib}, map[string]uint64{"ShmemHugePages": 522 * mib}); got != 0.5 {
		t.Errorf("half in huge pages: %v", got)
	}
	if got := hugeShare(bk, map[string]uint64{"ShmemHugePages": 10 * mib}, map[string]uint64{}); got != 0 {
		t.Errorf("fewer after: %v", got)
	}
	if got := hugeShare(backing{size: gib, flags: unix.MFD_HUGETLB}, nil, nil); got != 1 {
		t.Errorf("hugetlbfs: %v", got)
	}
}

// TestStrategiesSkip: type1's entry limit skips the chunked strategies
// that would pass it, and only those.
func TestStrategiesSkip(t *testing.T) {
	limited := &ramBackend{entries: func() (uint64, bool) { return 65535, true }}
	free := &ramBackend{entries: func() (uint64, bool) { return 0, false }, mapFile: func(int, uint64, uint64) error { return nil }}
	for _, s := range strategies() {
		if s.applies != nil && (s.applies(limited) || !s.applies(free)) {
			t.Errorf("%s applies to a backend without MAP_FILE, or not to one with it", s.name)
		}
		got := s.skip(limited, gib)
		if wantSkip := s.name == "4 KiB chunks"; (got != "") != wantSkip {
			t.Errorf("%s on type1 with 65535 entries, 1 GiB: skip %q", s.name, got)
		}
		if got := s.skip(free, 16*gib); got != "" {
			t.Errorf("%s with no entry limit: skip %q", s.name, got)
		}
	}
}
