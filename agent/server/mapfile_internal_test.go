//go:build linux

package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"golang.org/x/sys/unix"
)

// fileMapperAS answers MapFile with err and counts the calls; the rest of
// the address space is never used.
type fileMapperAS struct {
	iommu.AddressSpace
	err   error
	calls int
}

func (f *fileMapperAS) MapFile(ctx context.Context, m iommu.FileMapping) (iommu.IOVA, error) {
	f.calls++
	if f.err != nil {
		return 0, f.err
	}
	return m.IOVA, nil
}

// TestMapFileFallback: a broker map goes by descriptor where the kernel
// takes IOMMU_IOAS_MAP_FILE; ENOTTY (before 6.13) makes the agent mmap
// from then on without asking again; a refusal of one file (EOPNOTSUPP)
// falls back for that map only; any other error is the map's.
func TestMapFileFallback(t *testing.T) {
	req := &proto.Request{Offset: 0, Length: 1 << 20, IOVA: 0x100000, Fixed: true}
	wrapped := func(errno unix.Errno) error { return fmt.Errorf("map file: %w", iommu.Wrap(errno)) }
	for _, c := range []struct {
		name       string
		err        error
		ok, wantEr bool
		noMore     bool
	}{
		{"taken", nil, true, false, false},
		{"ENOTTY", wrapped(unix.ENOTTY), false, false, true},
		{"EOPNOTSUPP", wrapped(unix.EOPNOTSUPP), false, false, false},
		{"EEXIST", wrapped(unix.EEXIST), false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Server{}
			as := &fileMapperAS{err: c.err}
			l := &lease{as: as}
			iova, ok, err := s.mapFile(context.Background(), l, 3, req, iommu.Read|iommu.Write)
			if ok != c.ok || (err != nil) != c.wantEr {
				t.Fatalf("mapFile = %#x, %v, %v; want ok %v, error %v", iova, ok, err, c.ok, c.wantEr)
			}
			if ok && iova != 0x100000 {
				t.Errorf("iova %#x, want 0x100000", iova)
			}
			if c.wantEr && !errors.Is(err, iommu.ErrExists) {
				t.Errorf("error %v lost its sentinel", err)
			}
			if s.noMapFile.Load() != c.noMore {
				t.Errorf("noMapFile %v, want %v", s.noMapFile.Load(), c.noMore)
			}
			s.mapFile(context.Background(), l, 3, req, iommu.Read)
			if want := 2; c.noMore {
				if as.calls != 1 {
					t.Errorf("after ENOTTY the agent asked the kernel %d times, want once", as.calls)
				}
			} else if as.calls != want {
				t.Errorf("%d calls, want %d", as.calls, want)
			}
		})
	}
	// Address spaces without MapFile (type1, emulated) are never asked.
	s := &Server{}
	if _, ok, err := s.mapFile(context.Background(), &lease{as: struct{ iommu.AddressSpace }{}}, 3, req, iommu.Read); ok || err != nil {
		t.Errorf("mapFile on an address space without it: %v, %v", ok, err)
	}
}
