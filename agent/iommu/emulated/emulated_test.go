package emulated

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

var (
	eduA = iommu.Device{BDF: "0000:00:03.0", Group: 3}
	eduB = iommu.Device{BDF: "0000:00:04.0", Group: 4}
	// two functions of one group, as behind a non-ACS bridge
	fn0 = iommu.Device{BDF: "0000:01:00.0", Group: 7}
	fn1 = iommu.Device{BDF: "0000:01:00.1", Group: 7}
)

var flavours = []iommu.Flavour{iommu.IOMMUFD, iommu.Type1v2, iommu.Compat}

// mem returns n bytes whose host address is aligned to align, as mmap
// memory would be.
func mem(t testing.TB, n, align int) []byte {
	t.Helper()
	p := make([]byte, n+align)
	off := (align - int(addrOf(p)%uint64(align))) % align
	return p[off : off+n : off+n]
}

func newBackend(t testing.TB, opts Options) *Backend {
	t.Helper()
	if opts.Devices == nil && opts.Machine == nil {
		opts.Devices = []iommu.Device{eduA, eduB, fn0, fn1}
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newSpace(t testing.TB, b *Backend) *AddressSpace {
	t.Helper()
	as, err := b.NewIOAS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func attach(t testing.TB, as *AddressSpace, d iommu.Device) *Attachment {
	t.Helper()
	at, err := as.AttachDevice(context.Background(), d)
	if err != nil {
		t.Fatalf("attach %s: %v", d.BDF, err)
	}
	return at
}

func mustMap(t testing.TB, as *AddressSpace, m iommu.Mapping) iommu.IOVA {
	t.Helper()
	iova, err := as.Map(context.Background(), m)
	if err != nil {
		t.Fatalf("map %#x+%#x: %v", uint64(m.IOVA), len(m.Mem), err)
	}
	return iova
}

func fixed(p []byte, iova uint64) iommu.Mapping {
	return iommu.Mapping{Mem: p, IOVA: iommu.IOVA(iova), Fixed: true, Perm: iommu.Read | iommu.Write}
}

// checkErr wants err to carry errno (0: no error) and, where one exists,
// its sentinel.
func checkErr(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
		return
	}
	w := iommu.Wrap(want)
	for _, s := range []error{iommu.ErrInvalid, iommu.ErrNotFound, iommu.ErrExists, iommu.ErrBusy, iommu.ErrNoSpace, iommu.ErrPermission, iommu.ErrNotSupported} {
		if errors.Is(w, s) && !errors.Is(err, s) {
			t.Errorf("%s: %v lacks the sentinel %v", what, err, s)
		}
	}
}

// TestMapUnmapErrnos checks the errnos of map and unmap per flavour: each
// case runs on a fresh address space with one device
// attached (VT-d: 4 KiB alignment, interrupt window reserved) and two
// areas at 1 MiB (16 KiB) and 2 MiB (8 KiB).
func TestMapUnmapErrnos(t *testing.T) {
	t.Parallel()
	type want map[iommu.Flavour]syscall.Errno
	all := func(e syscall.Errno) want { return want{iommu.IOMMUFD: e, iommu.Type1v2: e, iommu.Compat: e} }
	const a1, a2 = 1 << 20, 2 << 20
	for _, tc := range []struct {
		row  string
		name string
		op   func(as *AddressSpace, p []byte) error
		want want
	}{
		{"13", "fixed map at the same start", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:4096], a1)) }, all(syscall.EEXIST)},
		{"13", "fixed map inside", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:4096], a1+4096)) }, all(syscall.EEXIST)},
		{"13", "fixed map over the head", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:8192], a1-4096)) }, all(syscall.EEXIST)},
		{"13", "fixed map over the tail", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:8192], a1+12288)) }, all(syscall.EEXIST)},
		{"14/43", "iova not page aligned", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:4096], 0x300800)) }, all(syscall.EINVAL)},
		{"14/43", "length not page aligned", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:100], 0x300000)) }, all(syscall.EINVAL)},
		{"14/43", "length 0", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:0], 0x300000)) }, all(syscall.EINVAL)},
		{"43", "neither read nor write", func(as *AddressSpace, p []byte) error {
			return mapErr(as, iommu.Mapping{Mem: p[:4096], IOVA: 0x300000, Fixed: true})
		}, want{iommu.IOMMUFD: syscall.EINVAL, iommu.Type1v2: syscall.EINVAL, iommu.Compat: 0}}, // compat: iommufd_vfio_map_dma has no check
		{"15/45", "range wraps", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:8192], math.MaxUint64-4095)) },
			want{iommu.IOMMUFD: syscall.EOVERFLOW, iommu.Compat: syscall.EOVERFLOW, iommu.Type1v2: syscall.EINVAL}},
		{"16/43", "fixed map over the interrupt window", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:8192], msiStart-4096)) }, all(syscall.EINVAL)},
		{"16/43", "fixed map above 48 bits", func(as *AddressSpace, p []byte) error { return mapErr(as, fixed(p[:4096], 1<<48)) }, all(syscall.EINVAL)},
		// compat: 0 bytes since afb47765f923 ("iommufd: Make vfio_compats
		// unmap succeed if the range is already empty", stable 2025).
		{"21/47", "unmap of nothing", func(as *AddressSpace, p []byte) error { return unmapErr(as, 0x800000, 4096, 0) },
			want{iommu.IOMMUFD: syscall.ENOENT, iommu.Compat: 0, iommu.Type1v2: 0}},
		{"22/46", "unmap cutting an area's tail", func(as *AddressSpace, p []byte) error { return unmapErr(as, a1+4096, 4096, -1) },
			want{iommu.IOMMUFD: syscall.ENOENT, iommu.Compat: syscall.ENOENT, iommu.Type1v2: syscall.EINVAL}},
		{"22/46", "unmap cutting an area's head", func(as *AddressSpace, p []byte) error { return unmapErr(as, a1-4096, 8192, -1) },
			want{iommu.IOMMUFD: syscall.ENOENT, iommu.Compat: syscall.ENOENT, iommu.Type1v2: syscall.EINVAL}},
		{"23", "unmap whole areas with a hole between", func(as *AddressSpace, p []byte) error { return unmapErr(as, a1, a2+8192-a1, 16384+8192) }, all(0)},
		{"24", "unmap everything", func(as *AddressSpace, p []byte) error { return unmapErr(as, 0, math.MaxUint64, 16384+8192) }, all(0)},
		{"45", "unmap wraps", func(as *AddressSpace, p []byte) error { return unmapErr(as, math.MaxUint64-4095, 8192, -1) },
			want{iommu.IOMMUFD: syscall.EOVERFLOW, iommu.Compat: syscall.EOVERFLOW, iommu.Type1v2: syscall.EINVAL}},
	} {
		for _, f := range flavours {
			t.Run(string(f)+"/row"+tc.row+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				b := newBackend(t, Options{Flavour: f})
				as := newSpace(t, b)
				attach(t, as, eduA)
				p := mem(t, 64<<10, 4096)
				mustMap(t, as, fixed(p[:16384], a1))
				mustMap(t, as, fixed(p[16384:16384+8192], a2))
				checkErr(t, tc.name, tc.op(as, p[32<<10:]), tc.want[f])
			})
		}
	}
}

func mapErr(as *AddressSpace, m iommu.Mapping) error {
	_, err := as.Map(context.Background(), m)
	return err
}

// unmapErr unmaps and, on success, checks the byte count (want < 0: any).
func unmapErr(as *AddressSpace, iova, length uint64, want int64) error {
	n, err := as.Unmap(context.Background(), iommu.IOVA(iova), length)
	if err == nil && want >= 0 && n != uint64(want) {
		return errors.New("unmapped a wrong number of bytes")
	}
	return err
}

var vtdRanges = []iommu.Range{{Start: 0, Last: 0xfedfffff}, {Start: 0xfef00000, Last: 0xffffffffffff}}

// TestRanges: IOAS_IOVA_RANGES and ALLOW_IOVAS with the VT-d model.
func TestRanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, Options{Flavour: f})
			as := newSpace(t, b)
			r, align, err := as.Ranges(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f == iommu.IOMMUFD {
				// row 27: an IOAS without a device spans everything.
				if !slices.Equal(r, []iommu.Range{{Start: 0, Last: math.MaxUint64}}) || align != 1 {
					t.Errorf("empty IOAS: %v align %d", r, align)
				}
			}
			at := attach(t, as, eduA)
			r, align, _ = as.Ranges(ctx)
			if !slices.Equal(r, vtdRanges) || align != 4096 {
				t.Errorf("after attach: %v align %d, want %v align 4096", r, align, vtdRanges)
			}
			at.Detach(ctx)
			if f == iommu.IOMMUFD {
				r, align, _ = as.Ranges(ctx)
				if len(r) != 1 || align != 1 {
					t.Errorf("after the last detach: %v align %d", r, align)
				}
			}
		})
	}
}

// TestMSIWindow: an SMMUv3 reserves its software MSI window where VT-d
// reserves x86's interrupt range; the ranges seen by the arm64 guest's
// kernel are [0, 0x7ffffff] and [0x8100000, 2^48-1].
func TestMSIWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	smmu := iommu.Range{Start: 0x8000000, Last: 0x80fffff}
	want := []iommu.Range{{Start: 0, Last: 0x7ffffff}, {Start: 0x8100000, Last: 1<<48 - 1}}
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, Options{Flavour: f, MSIWindow: smmu})
			as := newSpace(t, b)
			attach(t, as, eduA)
			if r, _, err := as.Ranges(ctx); err != nil || !slices.Equal(r, want) {
				t.Errorf("ranges %v, %v; want %v", r, err, want)
			}
			m := mem(t, 4096, 4096)
			if _, err := as.Map(ctx, iommu.Mapping{Mem: m, IOVA: 0x8000000, Fixed: true, Perm: iommu.Read}); !errors.Is(err, iommu.ErrInvalid) {
				t.Errorf("map in the SMMU's MSI window: %v, want invalid", err)
			}
			if _, err := as.Map(ctx, iommu.Mapping{Mem: m, IOVA: 0xfee00000, Fixed: true, Perm: iommu.Read}); err != nil {
				t.Errorf("map at x86's interrupt window, free on an SMMU: %v", err)
			}
		})
	}
	if _, err := New(Options{MSIWindow: iommu.Range{Start: 2, Last: 1}}); !errors.Is(err, iommu.ErrInvalid) {
		t.Errorf("inverted MSI window: %v", err)
	}
}

// TestAMDViAperture: an AMD-Vi domain translates all 64 bits and every
// device reserves the HyperTransport range besides x86's interrupt window;
// the x86_64-amdvi guest's kernel reports the ranges [0, 0xfedfffff],
// [0xfef00000, 0xfcffffffff] and [0x10000000000, 2^64-1].
func TestAMDViAperture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ht := iommu.Range{Start: 0xfd00000000, Last: 0xffffffffff}
	want := []iommu.Range{{Start: 0, Last: 0xfedfffff}, {Start: 0xfef00000, Last: 0xfcffffffff}, {Start: 0x10000000000, Last: math.MaxUint64}}
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, Options{Flavour: f, Reserved: []iommu.Range{ht}, ApertureLast: math.MaxUint64})
			as := newSpace(t, b)
			attach(t, as, eduA)
			if r, _, err := as.Ranges(ctx); err != nil || !slices.Equal(r, want) {
				t.Errorf("ranges %v, %v; want %v", r, err, want)
			}
			m := mem(t, 4096, 4096)
			if _, err := as.Map(ctx, iommu.Mapping{Mem: m, IOVA: 0xfd00000000, Fixed: true, Perm: iommu.Read}); !errors.Is(err, iommu.ErrInvalid) {
				t.Errorf("map in the HyperTransport range: %v, want invalid", err)
			}
			for _, iova := range []iommu.IOVA{1 << 48, 1 << 63, math.MaxUint64 - 4095} {
				if _, err := as.Map(ctx, iommu.Mapping{Mem: m, IOVA: iova, Fixed: true, Perm: iommu.Read}); err != nil {
					t.Fatalf("map at %#x, inside AMD-Vi's aperture: %v", iova, err)
				}
				if got, perm, ok := as.Translate(iova); !ok || perm != iommu.Read || &got[0] != &m[0] {
					t.Errorf("translate %#x: ok %v perm %v", iova, ok, perm)
				}
				if n, err := as.Unmap(ctx, iova, 4096); n != 4096 || err != nil {
					t.Errorf("unmap %#x: %d, %v", iova, n, err)
				}
			}
		})
	}
	if _, err := New(Options{Reserved: []iommu.Range{{Start: 2, Last: 1}}}); !errors.Is(err, iommu.ErrInvalid) {
		t.Errorf("inverted reserved region: %v", err)
	}
}

// TestAutoIOVA: row 17 (alignment to the length's power of two, skipping
// reserved ranges and areas, inside the allowed list) and row 18.
func TestAutoIOVA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{})
	as := newSpace(t, b)
	attach(t, as, eduA)
	p := mem(t, 4<<20, 2<<20)
	got := mustMap(t, as, iommu.Mapping{Mem: p[:16384], Perm: iommu.Read})
	if got != 16384 {
		t.Errorf("first 16 KiB map at %#x, want 0x4000 (page 0 is never chosen)", uint64(got))
	}
	got = mustMap(t, as, iommu.Mapping{Mem: p[:2<<20], Perm: iommu.Read})
	if got != 2<<20 {
		t.Errorf("2 MiB map at %#x, want 0x200000", uint64(got))
	}
	// 12 KiB rounds up to 16 KiB alignment.
	got = mustMap(t, as, iommu.Mapping{Mem: p[:12288], Perm: iommu.Read})
	if got != 32768 {
		t.Errorf("12 KiB map at %#x, want 0x8000", uint64(got))
	}
	// Allowed list right below the interrupt window: the map lands in it.
	if err := as.AllowIOVAs(ctx, []iommu.Range{{Start: 0xfe000000, Last: 0xfe00ffff}}); err != nil {
		t.Fatal(err)
	}
	got = mustMap(t, as, iommu.Mapping{Mem: p[:65536], Perm: iommu.Read})
	if got != 0xfe000000 {
		t.Errorf("allowed map at %#x", uint64(got))
	}
	_, err := as.Map(ctx, iommu.Mapping{Mem: p[:4096], Perm: iommu.Read})
	checkErr(t, "row 18: no hole left in the allowed list", err, syscall.ENOSPC)
	// Fixed maps are not bound by the allowed list.
	mustMap(t, as, iommu.Mapping{Mem: p[:4096], IOVA: 0x10000000, Fixed: true, Perm: iommu.Read})
}

// TestAllowIOVAs: rows 29-31.
func TestAllowIOVAs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{})
	as := newSpace(t, b)
	if err := as.AllowIOVAs(ctx, []iommu.Range{{Start: 0xfee00000, Last: 0xfee0ffff}}); err != nil {
		t.Fatalf("no device yet, nothing reserved: %v", err)
	}
	_, err := as.AttachDevice(ctx, eduA)
	checkErr(t, "row 29/31: attach reserving inside the allowed list", err, syscall.EADDRINUSE)
	if b.Objects() != 1 {
		t.Errorf("failed attach left %d objects, want the IOAS only", b.Objects())
	}
	checkErr(t, "row 30: clear", as.AllowIOVAs(ctx, nil), 0)
	attach(t, as, eduA)
	err = as.AllowIOVAs(ctx, []iommu.Range{{Start: 0xfe000000, Last: 0xfeefffff}})
	checkErr(t, "row 29: allow over the interrupt window", err, syscall.EADDRINUSE)
	err = as.AllowIOVAs(ctx, []iommu.Range{{Start: 2, Last: 1}})
	checkErr(t, "inverted range", err, syscall.EINVAL)

	t1 := newSpace(t, newBackend(t, Options{Flavour: iommu.Type1v2}))
	checkErr(t, "type1 has no ALLOW_IOVAS", t1.AllowIOVAs(ctx, nil), syscall.ENOTTY)
}

// TestAttachNarrowing: a device's reserved window or the 48-bit aperture
// hitting an existing area fails the attach with EADDRINUSE, and so does
// a misaligned area (row 35's rule for a new domain).
func TestAttachNarrowing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		m    func(p []byte) iommu.Mapping
	}{
		{"area in the interrupt window", func(p []byte) iommu.Mapping { return fixed(p[:4096], msiStart) }},
		{"area above 48 bits", func(p []byte) iommu.Mapping { return fixed(p[:4096], 1<<50) }},
		{"area not page aligned", func(p []byte) iommu.Mapping { return fixed(p[:100], 0x1000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, Options{})
			as := newSpace(t, b)
			mustMap(t, as, tc.m(mem(t, 8192, 4096)))
			_, err := as.AttachDevice(ctx, eduA)
			checkErr(t, "attach", err, syscall.EADDRINUSE)
			if b.Objects() != 1 || b.Pinned() != 0 {
				t.Errorf("failed attach left %d objects, %d pinned bytes", b.Objects(), b.Pinned())
			}
		})
	}
}

// TestCopy: row 32 and row 50 (pages pinned once).
func TestCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{})
	src, dst := newSpace(t, b), newSpace(t, b)
	attach(t, src, eduA)
	attach(t, dst, eduB)
	p := mem(t, 32768, 4096)
	mustMap(t, src, fixed(p[:16384], 0x100000))
	mustMap(t, src, fixed(p[16384:], 0x104000))
	pinned := b.Pinned()
	iova, err := dst.Copy(ctx, src, 0x102000, 16384, iommu.Mapping{IOVA: 0x500000, Fixed: true, Perm: iommu.Read | iommu.Write})
	if err != nil || iova != 0x500000 {
		t.Fatalf("copy across two source areas: %#x, %v", uint64(iova), err)
	}
	if b.Pinned() != pinned {
		t.Errorf("copy pinned again: %d -> %d bytes", pinned, b.Pinned())
	}
	got, _, ok := dst.Translate(0x500000)
	if !ok || addrOf(got) != addrOf(p[8192:]) {
		t.Errorf("copy maps the wrong memory")
	}
	_, err = dst.Copy(ctx, src, 0x106000, 16384, iommu.Mapping{Perm: iommu.Read})
	checkErr(t, "row 32: source not covered", err, syscall.ENOENT)
	_, err = dst.Copy(ctx, src, 0x100000, 4096, iommu.Mapping{IOVA: 0x500000, Fixed: true, Perm: iommu.Read})
	checkErr(t, "row 32: destination obeys map rules", err, syscall.EEXIST)
}

// TestAccounting is the seed's complaint: the same pages mapped in two
// type1 containers are charged twice, one iommufd IOAS shared by two
// devices charges them once; and the memlock limit gives ENOMEM.
func TestAccounting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const size = 1 << 20
	p := mem(t, size, 4096)

	proc := &Accounting{}
	t1 := newBackend(t, Options{Flavour: iommu.Type1v2, Process: proc})
	c1, c2 := newSpace(t, t1), newSpace(t, t1)
	attach(t, c1, eduA)
	attach(t, c2, eduB)
	mustMap(t, c1, fixed(p, 0x100000))
	mustMap(t, c2, fixed(p, 0x100000))
	if t1.Pinned() != 2*size || proc.Pinned() != 2*size {
		t.Errorf("type1v2, two containers: %d pinned, want %d", t1.Pinned(), 2*size)
	}

	user := &Accounting{}
	fd := newBackend(t, Options{User: user})
	ioas := newSpace(t, fd)
	mustMap(t, ioas, fixed(p, 0x100000))
	if fd.Pinned() != 0 {
		t.Errorf("iommufd pins without a domain: %d", fd.Pinned())
	}
	attach(t, ioas, eduA)
	attach(t, ioas, eduB)
	if fd.Pinned() != size || user.Pinned() != size {
		t.Errorf("iommufd, one IOAS, two devices: %d pinned, want %d", fd.Pinned(), size)
	}

	// Per-user: a second instance of the same user shares the counter.
	fd2 := newBackend(t, Options{User: user, MemlockLimit: size + size/2, Machine: mustMachine(t, eduA)})
	as2 := newSpace(t, fd2)
	attach(t, as2, eduA)
	_, err := as2.Map(ctx, fixed(p, 0x100000))
	checkErr(t, "per-user limit reached", err, syscall.ENOMEM)
	if user.Pinned() != size || len(as2.Mappings()) != 0 {
		t.Errorf("failed map left %d pinned, %d areas", user.Pinned(), len(as2.Mappings()))
	}
	// Per-process: the same limit against the process's own counter.
	fd3 := newBackend(t, Options{User: user, RLimitMode: PerProcess, MemlockLimit: size + size/2, Machine: mustMachine(t, eduA)})
	as3 := newSpace(t, fd3)
	attach(t, as3, eduA)
	mustMap(t, as3, fixed(p, 0x100000))
	if user.Pinned() != size || fd3.Pinned() != size {
		t.Errorf("per-process charge went to the user: user %d, process %d", user.Pinned(), fd3.Pinned())
	}

	// Close releases every pin (row 12).
	for _, b := range []*Backend{t1, fd, fd2, fd3} {
		b.Close()
		if b.Pinned() != 0 {
			t.Errorf("%s: %d bytes pinned after Close", b.Flavour(), b.Pinned())
		}
	}
	if user.Pinned() != 0 || proc.Pinned() != 0 {
		t.Errorf("counters after Close: user %d, process %d", user.Pinned(), proc.Pinned())
	}
}

func mustMachine(t *testing.T, devs ...iommu.Device) *Machine {
	t.Helper()
	m, err := NewMachine(devs...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGroupRule: a group's devices share one address space (a sibling
// attached elsewhere is EINVAL) and one owner (another instance is refused:
// EBUSY on type1, EPERM on iommufd).
func TestGroupRule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			m := mustMachine(t, fn0, fn1, eduA)
			b := newBackend(t, Options{Flavour: f, Machine: m})
			as1, as2 := newSpace(t, b), newSpace(t, b)
			attach(t, as1, fn0)
			_, err := as2.AttachDevice(ctx, fn1)
			checkErr(t, "row 41: sibling to another address space", err, syscall.EINVAL)
			attach(t, as1, fn1)
			_, err = as1.AttachDevice(ctx, fn1)
			checkErr(t, "same device twice", err, syscall.EINVAL)
			_, err = as1.AttachDevice(ctx, iommu.Device{BDF: "0000:09:00.0"})
			checkErr(t, "no such device", err, syscall.ENOENT)

			other := newBackend(t, Options{Flavour: f, Machine: m})
			oas := newSpace(t, other)
			want := syscall.EBUSY
			if f == iommu.IOMMUFD {
				want = syscall.EPERM
			}
			_, err = oas.AttachDevice(ctx, fn1)
			checkErr(t, "row 40: group owned by another instance", err, want)
			b.Close()
			attach(t, oas, fn1)
		})
	}
}

// TestClose: rows 10 and 12.
func TestClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, Options{Flavour: f})
			as := newSpace(t, b)
			at := attach(t, as, eduA)
			mustMap(t, as, fixed(mem(t, 8192, 4096), 0x100000))
			if f == iommu.IOMMUFD {
				checkErr(t, "row 10: destroy an attached IOAS", as.Destroy(), syscall.EBUSY)
			}
			checkErr(t, "close detaches", as.Close(), 0)
			if at.as != nil {
				t.Error("close left the device attached")
			}
			checkErr(t, "close again", as.Close(), 0)
			if b.Pinned() != 0 || b.Objects() != 0 {
				t.Errorf("after close: %d pinned, %d objects", b.Pinned(), b.Objects())
			}
			if _, err := as.Map(ctx, fixed(mem(t, 4096, 4096), 0x100000)); !errors.Is(err, iommu.ErrClosed) {
				t.Errorf("map on a closed address space: %v", err)
			}
			as2 := newSpace(t, b)
			attach(t, as2, eduA)
			mustMap(t, as2, fixed(mem(t, 8192, 4096), 0x100000))
			checkErr(t, "row 12: backend close", b.Close(), 0)
			if b.Pinned() != 0 || b.Objects() != 0 {
				t.Errorf("after backend close: %d pinned, %d objects", b.Pinned(), b.Objects())
			}
			if _, err := b.NewAddressSpace(ctx); !errors.Is(err, iommu.ErrClosed) {
				t.Errorf("new address space on a closed backend: %v", err)
			}
		})
	}
}

// TestDMA: the edu engine through the page tables; blocked DMAs leave
// memory alone and are recorded.
func TestDMA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{})
	as := newSpace(t, b)
	at := attach(t, as, eduA)
	p := mem(t, 3*4096, 4096)
	mustMap(t, as, fixed(p[:8192], 0x100000))
	mustMap(t, as, iommu.Mapping{Mem: p[8192:], IOVA: 0x102000, Fixed: true, Perm: iommu.Read})
	dma := at.DMA()
	copy(dma.Buffer(), "hello, iommu")
	if err := dma.WriteToRAM(0x100ffa, 0, 12); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p[0xffa:0x1006], []byte("hello, iommu")) {
		t.Errorf("DMA across a page boundary wrote %q", p[0xffa:0x1006])
	}
	copy(p[8192:], "read me")
	if err := dma.ReadFromRAM(0x102000, 100, 7); err != nil || string(dma.Buffer()[100:107]) != "read me" {
		t.Errorf("read DMA: %v, %q", err, dma.Buffer()[100:107])
	}
	before := slices.Clone(p)
	var f *Fault
	err := dma.WriteToRAM(0x101ff0, 0, 32)
	if !errors.As(err, &f) || !f.Write || f.IOVA != 0x102000 || f.BDF != eduA.BDF {
		t.Errorf("write into a read-only mapping: %v", err)
	}
	if err := dma.ReadFromRAM(0x200000, 0, 8); !errors.As(err, &f) || f.Write || f.IOVA != 0x200000 {
		t.Errorf("read of an unmapped IOVA: %v", err)
	}
	if !bytes.Equal(p, before) {
		t.Error("a blocked DMA changed memory")
	}
	if len(b.Faults()) != 2 {
		t.Errorf("faults recorded: %v", b.Faults())
	}
	at.Detach(ctx)
	if err := dma.ReadFromRAM(0x100000, 0, 8); !errors.As(err, &f) {
		t.Errorf("DMA after detach: %v", err)
	}
	if err := dma.ReadFromRAM(EduDMAMask, 0, 8); errors.As(err, &f) || err == nil {
		t.Errorf("beyond the 28-bit mask: %v", err)
	}
}

// TestDirty: pages the device writes are reported once, then cleared.
func TestDirty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{})
	as := newSpace(t, b)
	if err := as.SetDirtyTracking(ctx, true); !errors.Is(err, iommu.ErrNotSupported) {
		t.Errorf("dirty tracking without a HWPT: %v", err)
	}
	at := attach(t, as, eduA)
	p := mem(t, 4<<20, 2<<20)
	mustMap(t, as, fixed(p[:64<<10], 0x100000))
	mustMap(t, as, fixed(p[2<<20:], 0x400000)) // one 2 MiB leaf
	if err := as.SetDirtyTracking(ctx, true); err != nil {
		t.Fatal(err)
	}
	dma := at.DMA()
	if err := dma.WriteToRAM(0x103000, 0, 16); err != nil {
		t.Fatal(err)
	}
	if err := dma.WriteToRAM(0x400000, 0, 16); err != nil {
		t.Fatal(err)
	}
	bm, err := as.ReadDirty(ctx, 0x100000, 64<<10, 4096, true)
	if err != nil || len(bm) != 1 || bm[0] != 1<<3 {
		t.Errorf("dirty bitmap %x, %v; want bit 3", bm, err)
	}
	bm, _ = as.ReadDirty(ctx, 0x400000, 2<<20, 2<<20, false)
	if bm[0] != 1 {
		t.Errorf("2 MiB leaf not dirty: %x", bm)
	}
	bm, _ = as.ReadDirty(ctx, 0x100000, 64<<10, 4096, false)
	if bm[0] != 1<<3 {
		t.Errorf("keep cleared the bits: %x", bm)
	}
	bm, _ = as.ReadDirty(ctx, 0x100000, 64<<10, 4096, false)
	if bm[0] != 0 {
		t.Errorf("read did not clear: %x", bm)
	}
	_, err = as.ReadDirty(ctx, 0x100800, 4096, 4096, false)
	checkErr(t, "unaligned", err, syscall.EINVAL)
}

func TestHWInfo(t *testing.T) {
	t.Parallel()
	b := newBackend(t, Options{})
	at := attach(t, newSpace(t, b), eduA)
	hw, err := at.HWInfo(context.Background())
	if err != nil || hw.Type != "intel-vtd" || len(hw.Data) != 24 {
		t.Errorf("HWInfo = %+v, %v", hw, err)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Flavour: "type2"}); !errors.Is(err, iommu.ErrInvalid) {
		t.Errorf("unknown flavour: %v", err)
	}
	if _, err := New(Options{Devices: []iommu.Device{eduA, eduA}}); !errors.Is(err, iommu.ErrInvalid) {
		t.Errorf("duplicate device: %v", err)
	}
}

// TestRLimitMode: IOMMU_OPTION_RLIMIT_MODE, per user or per process.
func TestRLimitMode(t *testing.T) {
	t.Parallel()
	user, proc := &Accounting{}, &Accounting{}
	b := newBackend(t, Options{User: user, Process: proc})
	checkErr(t, "mode 2", b.SetRLimitMode(2), syscall.EINVAL)
	checkErr(t, "per process", b.SetRLimitMode(PerProcess), 0)
	as := newSpace(t, b)
	checkErr(t, "with an IOAS", b.SetRLimitMode(PerUser), syscall.EBUSY)
	attach(t, as, eduA)
	mustMap(t, as, fixed(mem(t, 8192, 4096), 0x100000))
	if proc.Pinned() != 8192 || user.Pinned() != 0 {
		t.Errorf("per-process mode charged user %d, process %d", user.Pinned(), proc.Pinned())
	}
	t1 := newBackend(t, Options{Flavour: iommu.Type1v2})
	checkErr(t, "type1", t1.SetRLimitMode(PerUser), syscall.ENOTTY)
}

// TestPinOnce: pages are pinned per host page, once, however many areas
// in domains use them: a partial COPY out of an IOAS
// without a device pins only the pages it maps; the source's own domain
// then adds only the rest.
func TestPinOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{})
	src, dst := newSpace(t, b), newSpace(t, b)
	p := mem(t, 64<<10, 4096)
	mustMap(t, src, fixed(p, 0x100000))
	attach(t, dst, eduB)
	if _, err := dst.Copy(ctx, src, 0x104000, 8192, iommu.Mapping{IOVA: 0x200000, Fixed: true, Perm: iommu.Read}); err != nil {
		t.Fatal(err)
	}
	if b.Pinned() != 8192 {
		t.Errorf("partial copy pinned %d bytes, want 8192", b.Pinned())
	}
	at := attach(t, src, eduA)
	if b.Pinned() != 64<<10 {
		t.Errorf("source domain: %d pinned, want %d", b.Pinned(), 64<<10)
	}
	at.Detach(ctx)
	if b.Pinned() != 8192 {
		t.Errorf("source detached: %d pinned, want 8192", b.Pinned())
	}
	if _, err := dst.Unmap(ctx, 0, math.MaxUint64); err != nil || b.Pinned() != 0 {
		t.Errorf("unmap all: %v, %d pinned", err, b.Pinned())
	}
}

// TestHugePages: IOMMU_OPTION_HUGE_PAGES, and the leaves the option allows.
func TestHugePages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{})
	as := newSpace(t, b)
	p := mem(t, 4<<20, 2<<20)
	mustMap(t, as, fixed(p[:100], 0x1000))
	checkErr(t, "row 35: misaligned area", as.SetHugePages(ctx, false), syscall.EADDRINUSE)
	if _, err := as.Unmap(ctx, 0, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	checkErr(t, "off", as.SetHugePages(ctx, false), 0)
	_, err := as.Map(ctx, fixed(p[:100], 0x1000))
	checkErr(t, "row 35: misaligned map after", err, syscall.EINVAL)
	attach(t, as, eduA)
	mustMap(t, as, fixed(p[:2<<20], 0x200000))
	if e, lvl := as.pt.lookup(0x200000); e == nil || lvl != 0 {
		t.Errorf("huge pages off: leaf level %d", lvl)
	}
	checkErr(t, "back on", as.SetHugePages(ctx, true), 0)
	checkErr(t, "off with a filled domain", as.SetHugePages(ctx, false), syscall.EINVAL)
	mustMap(t, as, fixed(p[2<<20:], 0x400000))
	if e, lvl := as.pt.lookup(0x400000); e == nil || lvl != 1 {
		t.Errorf("huge pages on: leaf level %d, want a 2 MiB leaf", lvl)
	}
}

func TestNoDirtyTracking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{NoDirtyTracking: true})
	as := newSpace(t, b)
	attach(t, as, eduA)
	checkErr(t, "set", as.SetDirtyTracking(ctx, true), syscall.EOPNOTSUPP)
	_, err := as.ReadDirty(ctx, 0, 4096, 4096, false)
	checkErr(t, "read", err, syscall.EOPNOTSUPP)
}

// TestKernelDriverSibling: a sibling on a DMA-API driver makes the group
// unusable (EPERM), and a driver cannot probe into an owned group (EBUSY).
func TestKernelDriverSibling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			m := mustMachine(t, fn0, fn1)
			b := newBackend(t, Options{Flavour: f, Machine: m})
			as := newSpace(t, b)
			checkErr(t, "bind driver", m.SetKernelDriver(fn1.BDF, "snd_hda_intel"), 0)
			_, err := as.AttachDevice(ctx, fn0)
			checkErr(t, "row 40: sibling on a kernel driver", err, syscall.EPERM)
			checkErr(t, "unbind driver", m.SetKernelDriver(fn1.BDF, ""), 0)
			at := attach(t, as, fn0)
			checkErr(t, "probe into an owned group", m.SetKernelDriver(fn1.BDF, "snd_hda_intel"), syscall.EBUSY)
			at.Detach(ctx)
			checkErr(t, "probe after release", m.SetKernelDriver(fn1.BDF, "snd_hda_intel"), 0)
		})
	}
}

// TestAddReserved: the mock's ADD_RESERVED: a
// reservation inside the allowed list or over an area is EADDRINUSE, and
// kernel-chosen IOVAs skip it.
func TestAddReserved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, Options{})
	as := newSpace(t, b)
	p := mem(t, 16384, 4096)
	mustMap(t, as, fixed(p[:4096], 0x10000))
	checkErr(t, "over an area", as.AddReserved(0x10000, 0x10fff), syscall.EADDRINUSE)
	checkErr(t, "below the first hole", as.AddReserved(0x1000, 0x3fff), 0)
	got := mustMap(t, as, iommu.Mapping{Mem: p[4096:8192], Perm: iommu.Read})
	if got != 0x4000 {
		t.Errorf("chosen IOVA %#x, want 0x4000 past the reservation", uint64(got))
	}
	checkErr(t, "allow over it", as.AllowIOVAs(ctx, []iommu.Range{{Start: 0, Last: 0x1fff}}), syscall.EADDRINUSE)
	checkErr(t, "allow elsewhere", as.AllowIOVAs(ctx, []iommu.Range{{Start: 0x100000, Last: 0x1fffff}}), 0)
	checkErr(t, "reserve inside allowed", as.AddReserved(0x180000, 0x180fff), syscall.EADDRINUSE)
	at := attach(t, as, eduA)
	at.Detach(ctx)
	r, _, _ := as.Ranges(ctx)
	if len(r) != 2 || r[0].Last != 0xfff || r[1].Start != 0x4000 {
		t.Errorf("the reservation did not outlive the domain: %v", r)
	}
}
