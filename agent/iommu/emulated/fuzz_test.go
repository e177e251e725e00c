package emulated

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// The model: areas of whole pages in a 64-page window, each with its
// permissions and the host page it maps.
const (
	fuzzBase  = 0x100000
	fuzzPages = 64
)

type marea struct {
	start, n uint64 // in pages from fuzzBase
	perm     iommu.Perm
	memPage  uint64 // index into the fuzz buffer
}

type model struct {
	flavour iommu.Flavour
	areas   []marea // sorted by start
}

func (m *model) page(pg uint64) (marea, bool) {
	for _, a := range m.areas {
		if pg >= a.start && pg < a.start+a.n {
			return a, true
		}
	}
	return marea{}, false
}

func (m *model) pinned() uint64 {
	var n uint64
	for _, a := range m.areas {
		n += a.n * pageSize
	}
	return n
}

// unmap predicts Unmap per flavour and applies it to the model.
func (m *model) unmap(start, n uint64) (uint64, syscall.Errno) {
	last := start + n - 1
	if m.flavour == iommu.Type1v2 {
		for _, a := range m.areas {
			if a.start+a.n-1 >= start && a.start <= last && (a.start < start || a.start+a.n-1 > last) {
				return 0, syscall.EINVAL
			}
		}
	}
	var bytes uint64
	for len(m.areas) > 0 {
		i := slices.IndexFunc(m.areas, func(a marea) bool { return a.start+a.n-1 >= start && a.start <= last })
		if i < 0 {
			break
		}
		if a := m.areas[i]; a.start < start || a.start+a.n-1 > last {
			return 0, syscall.ENOENT
		}
		bytes += m.areas[i].n * pageSize
		m.areas = slices.Delete(m.areas, i, i+1)
	}
	if bytes == 0 && m.flavour == iommu.IOMMUFD {
		return 0, syscall.ENOENT
	}
	return bytes, 0
}

// FuzzOps runs random operation sequences against the emulator and the
// model: results agree, an error comes without a value, translate agrees
// with the model, pinned bytes are the mapped pages, DMA faults exactly
// where the model has no permission.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 0, 0, 4, 3, 0, 2, 2, 0, 1, 2, 1, 0, 5, 3})
	f.Add([]byte{1, 0, 1, 8, 3, 1, 0, 4, 1, 3, 0, 0, 64, 0})
	f.Add([]byte{2, 0, 0, 16, 1, 0, 4, 4, 3, 1, 3, 0, 8, 8, 4, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 {
			return
		}
		fl := flavours[int(ops[0])%len(flavours)]
		ops = ops[1:]
		ctx := context.Background()
		b, err := New(Options{Flavour: fl, Devices: []iommu.Device{eduA}})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		as, err := b.NewIOAS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at, err := as.AttachDevice(ctx, eduA)
		if err != nil {
			t.Fatal(err)
		}
		buf := mem(t, fuzzPages*pageSize, pageSize)
		md := &model{flavour: fl}
		for len(ops) >= 4 {
			op, x, y, z := ops[0]%5, uint64(ops[1])%fuzzPages, uint64(ops[2])%fuzzPages+1, ops[3]
			ops = ops[4:]
			switch op {
			case 0, 1: // map fixed (0) or kernel-chosen (1)
				n := min(y, fuzzPages-x)
				perm := iommu.Perm(z % 4)
				mp := (x + uint64(z/4)) % (fuzzPages - n + 1)
				m := iommu.Mapping{Mem: buf[mp*pageSize : (mp+n)*pageSize], IOVA: iommu.IOVA(fuzzBase + x*pageSize), Fixed: op == 0, Perm: perm}
				iova, err := as.Map(ctx, m)
				want := syscall.Errno(0)
				overlap := false
				for i := x; i < x+n && op == 0; i++ {
					if _, ok := md.page(i); ok {
						overlap = true
					}
				}
				switch {
				case perm == 0 && fl != iommu.Compat:
					want = syscall.EINVAL
				case overlap:
					want = syscall.EEXIST
				}
				if !errors.Is(err, want) && (want != 0 || err != nil) {
					t.Fatalf("map %+v: %v, model says %v", m, err, want)
				}
				if err != nil {
					if iova != 0 {
						t.Fatalf("map returned %#x with %v", uint64(iova), err)
					}
					continue
				}
				if iova < fuzzBase || uint64(iova)%pageSize != 0 {
					if op == 0 || iova < pageSize {
						t.Fatalf("map chose %#x", uint64(iova))
					}
					// a chosen IOVA outside the window: unmap it again
					if _, err := as.Unmap(ctx, iova, n*pageSize); err != nil {
						t.Fatal(err)
					}
					continue
				}
				start := (uint64(iova) - fuzzBase) / pageSize
				if start+n > fuzzPages {
					if _, err := as.Unmap(ctx, iova, n*pageSize); err != nil {
						t.Fatal(err)
					}
					continue
				}
				for i := start; i < start+n; i++ {
					if _, ok := md.page(i); ok {
						t.Fatalf("chosen IOVA %#x overlaps a mapping", uint64(iova))
					}
				}
				md.areas = append(md.areas, marea{start, n, perm, mp})
				slices.SortFunc(md.areas, func(a, b marea) int { return int(a.start) - int(b.start) })
			case 2: // unmap
				n := min(y, fuzzPages-x)
				got, err := as.Unmap(ctx, iommu.IOVA(fuzzBase+x*pageSize), n*pageSize)
				want, werr := md.unmap(x, n)
				if werr != 0 && !errors.Is(err, werr) || werr == 0 && (err != nil || got != want) {
					t.Fatalf("unmap page %d+%d: %d, %v; model %d, %v", x, n, got, err, want, werr)
				}
				if err != nil && got != 0 {
					t.Fatalf("unmap returned %d with %v", got, err)
				}
			case 3: // device DMA
				d := at.DMA()
				iova := fuzzBase + x*pageSize + uint64(z)*16
				write := y%2 == 0
				var err error
				if write {
					err = d.WriteToRAM(iova, 0, 64)
				} else {
					err = d.ReadFromRAM(iova, 0, 64)
				}
				need := iommu.Read
				if write {
					need = iommu.Write
				}
				blocked := false
				for _, at := range []uint64{iova, iova + 63} { // the pages the 64 bytes touch
					pg := (at - fuzzBase) / pageSize
					if a, ok := md.page(pg); !ok || pg >= fuzzPages || a.perm&need == 0 {
						blocked = true
					}
				}
				var f *Fault
				if blocked != errors.As(err, &f) {
					t.Fatalf("DMA write=%v at %#x: %v, model says blocked=%v", write, iova, err, blocked)
				}
			case 4: // unmap everything
				got, err := as.Unmap(ctx, 0, ^uint64(0))
				if err != nil || got != md.pinned() {
					t.Fatalf("unmap all: %d, %v; model %d", got, err, md.pinned())
				}
				md.areas = nil
			}
			for pg := uint64(0); pg < fuzzPages; pg++ {
				mem, perm, ok := as.Translate(iommu.IOVA(fuzzBase + pg*pageSize))
				a, mok := md.page(pg)
				if ok != mok || ok && (perm != a.perm || addrOf(mem) != addrOf(buf[(a.memPage+pg-a.start)*pageSize:])) {
					t.Fatalf("translate page %d: ok=%v perm=%v; model %+v present=%v", pg, ok, perm, a, mok)
				}
			}
			if b.Pinned() != md.pinned() {
				t.Fatalf("pinned %d, model %d", b.Pinned(), md.pinned())
			}
			if err := checkInvariants(b); err != nil {
				t.Fatal(err)
			}
		}
	})
}
