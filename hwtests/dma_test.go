//go:build hwtests && linux

package hwtests

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/hwtests/edu"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

const (
	page    = 4096
	srcIOVA = 0x100000 // edu reads from here ...
	dstIOVA = 0x101000 // ... and writes back here
)

// roundTrip has edu copy a random page from srcIOVA into its buffer and from
// there to dstIOVA, and checks every byte arrived in mem (mapped at srcIOVA
// with dst right after it).
func roundTrip(t *testing.T, e *edu.Device, mem []byte, src, dst uint64) {
	t.Helper()
	want := make([]byte, page)
	for i := range want {
		want[i] = byte(rand.Uint32())
	}
	copy(mem[:page], want)
	clear(mem[page : 2*page])
	if err := e.ReadFromRAM(src, 0, page); err != nil {
		t.Fatalf("DMA RAM->edu from %#x: %v", src, err)
	}
	if err := e.WriteToRAM(dst, 0, page); err != nil {
		t.Fatalf("DMA edu->RAM to %#x: %v", dst, err)
	}
	if got := mem[page : 2*page]; !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("byte %d after the DMA round trip is %#x, want %#x", i, got[i], want[i])
	}
}

func TestDMARoundTrip(t *testing.T) {
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)

	t.Run("iommufd", func(t *testing.T) {
		pinned := procStatusKB(t, "VmPin")
		s := newCdev(t, dev)
		ranges, align, err := s.fd.IOVARanges(s.ioas)
		if err != nil {
			t.Fatal(err)
		}
		if align != page || !inRanges(ranges, srcIOVA, 2*page) {
			t.Fatalf("IOVA ranges %v, alignment %#x: want %#x+%#x usable at 4 KiB", ranges, align, srcIOVA, 2*page)
		}
		mem := hwtest.DMABuffer(t, 2*page)
		iova, err := s.fd.Map(s.ioas, mem, srcIOVA, iommufd.FixedIOVA|iommufd.Readable|iommufd.Writeable)
		if err != nil || iova != srcIOVA {
			t.Fatalf("Map = %#x, %v; want %#x", iova, err, srcIOVA)
		}
		if got := procStatusKB(t, "VmPin") - pinned; got != 2*page/1024 {
			t.Errorf("VmPin grew by %d kB for a %d kB map", got, 2*page/1024)
		}
		roundTrip(t, openEdu(t, s.dev), mem, srcIOVA, dstIOVA)

		// The same through an IOVA the kernel picks.
		mem2 := hwtest.DMABuffer(t, 2*page)
		auto, err := s.fd.Map(s.ioas, mem2, 0, iommufd.Readable|iommufd.Writeable)
		if err != nil {
			t.Fatal(err)
		}
		if auto%page != 0 || !inRanges(ranges, uint64(auto), 2*page) || overlaps(uint64(auto), 2*page, srcIOVA, 2*page) {
			t.Fatalf("kernel-chosen IOVA %#x: not aligned, outside %v, or over the fixed map", auto, ranges)
		}
		if uint64(auto)+2*page <= edu.MaxIOVA {
			roundTrip(t, openEdu(t, s.dev), mem2, uint64(auto), uint64(auto)+page)
		} else {
			t.Logf("kernel chose IOVA %#x, beyond edu's 28-bit reach: no DMA through it", auto)
		}
		if n, err := s.fd.Unmap(s.ioas, auto, 2*page); err != nil || n != 2*page {
			t.Fatalf("Unmap(auto) = %d, %v", n, err)
		}
		if n, err := s.fd.Unmap(s.ioas, srcIOVA, 2*page); err != nil || n != 2*page {
			t.Fatalf("Unmap = %d, %v; want %d", n, err, 2*page)
		}
		if got := procStatusKB(t, "VmPin"); got != pinned {
			t.Errorf("VmPin %d kB after unmap, %d kB before map", got, pinned)
		}
		s.teardown(t)
		if got := procStatusKB(t, "VmPin"); got != pinned {
			t.Errorf("VmPin %d kB after close, %d kB before", got, pinned)
		}
	})

	t.Run("type1", func(t *testing.T) {
		locked := procStatusKB(t, "VmLck")
		s := newType1(t, dev)
		info, err := s.c.IOMMUInfo()
		if err != nil {
			t.Fatal(err)
		}
		if info.PageSizes&page == 0 {
			t.Fatalf("page sizes %#x lack 4 KiB", info.PageSizes)
		}
		if !inType1Ranges(info.IOVARanges, srcIOVA, 2*page) {
			t.Fatalf("IOVA ranges %v do not cover %#x", info.IOVARanges, srcIOVA)
		}
		mem := hwtest.DMABuffer(t, 2*page)
		if err := s.c.MapDMA(mem, srcIOVA, vfio.DMARead|vfio.DMAWrite); err != nil {
			t.Fatal(err)
		}
		if got := procStatusKB(t, "VmLck") - locked; got != 2*page/1024 {
			t.Errorf("VmLck grew by %d kB for a %d kB map", got, 2*page/1024)
		}
		roundTrip(t, openEdu(t, s.dev), mem, srcIOVA, dstIOVA)
		if n, err := s.c.UnmapDMA(srcIOVA, 2*page, 0); err != nil || n != 2*page {
			t.Fatalf("UnmapDMA = %d, %v; want %d", n, err, 2*page)
		}
		if got := procStatusKB(t, "VmLck"); got != locked {
			t.Errorf("VmLck %d kB after unmap, %d kB before map", got, locked)
		}
		s.teardown(t)
	})
}

// faultBytes is how much edu writes where the IOMMU must block it. QEMU's
// IOMMUs fault each 4-byte access of a blocked DMA on its own, and the
// SMMUv3 driver prints at most 10 events per 5 s: a page's 1,024 events
// spent the window, so the next fault's report waited 6 s for the next
// one. Two accesses leave room for the following faults.
const faultBytes = 8

// TestDMAFault aims edu's DMA writes at an IOVA that is no longer mapped and
// at a read-only mapping: the IOMMU blocks both, the kernel logs the fault
// in its IOMMU's own words (faultReport), and the memory behind them keeps
// its contents. On AMD-Vi under QEMU nothing reports the fault
// (amdviSilentFault says why): there the memory alone shows the block.
func TestDMAFault(t *testing.T) {
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	s := newCdev(t, dev)
	e := openEdu(t, s.dev)
	log := openKmsg(t)
	kind := hwtest.IOMMUKind(t)

	mem := hwtest.DMABuffer(t, 2*page)
	for i := range mem {
		mem[i] = 0x5a
	}
	// Fill edu's buffer with something else than the memory holds.
	other := hwtest.DMABuffer(t, page)
	if _, err := s.fd.Map(s.ioas, other, 0x300000, iommufd.FixedIOVA|iommufd.Readable); err != nil {
		t.Fatal(err)
	}
	if err := e.ReadFromRAM(0x300000, 0, page); err != nil {
		t.Fatal(err)
	}
	// writeFault has edu write faultBytes to iova and waits for the
	// kernel's report of the blocked write. Both IOMMU drivers rate-limit
	// their reports (10 per 5 s): a write whose report fell in a spent
	// window is repeated once the window has passed.
	writeFault := func(t *testing.T, iova uint64, perm bool) {
		t.Helper()
		if kind == hwtest.AMDVi {
			amdviSilentFault(t, e, log, iova)
			return
		}
		match, what := faultReport(t, kind, dev.BDF, iova, perm)
		for attempt := 1; ; attempt++ {
			if err := e.WriteToRAM(iova, 0, faultBytes); err != nil {
				t.Fatal(err)
			}
			line, ok := log.match(t, 6*time.Second, match)
			if ok {
				t.Logf("kernel: %s", line)
				return
			}
			if attempt == 2 {
				t.Fatalf("no kernel report of %s after %d writes", what, attempt)
			}
		}
	}

	t.Run("unmapped", func(t *testing.T) {
		if _, err := s.fd.Map(s.ioas, mem[:page], srcIOVA, iommufd.FixedIOVA|iommufd.Readable|iommufd.Writeable); err != nil {
			t.Fatal(err)
		}
		if _, err := s.fd.Unmap(s.ioas, srcIOVA, page); err != nil {
			t.Fatal(err)
		}
		writeFault(t, srcIOVA, false)
		if !bytes.Equal(mem[:page], bytes.Repeat([]byte{0x5a}, page)) {
			t.Fatal("memory behind an unmapped IOVA changed: the IOMMU let the DMA through")
		}
	})

	t.Run("read-only", func(t *testing.T) {
		iova := uint64(0x200000)
		if _, err := s.fd.Map(s.ioas, mem[page:], iommufd.IOVA(iova), iommufd.FixedIOVA|iommufd.Readable); err != nil {
			t.Fatal(err)
		}
		writeFault(t, iova, true)
		if !bytes.Equal(mem[page:], bytes.Repeat([]byte{0x5a}, page)) {
			t.Fatal("read-only mapping was written by DMA")
		}
		if _, err := s.fd.Unmap(s.ioas, iommufd.IOVA(iova), page); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := s.fd.Unmap(s.ioas, 0x300000, page); err != nil {
		t.Fatal(err)
	}
	s.teardown(t)
}

// amdviSilentFault has edu write a page to iova, which AMD-Vi blocks, and
// pins that nothing reports it: QEMU's amd-iommu (hw/i386/amd_iommu.c,
// amdvi_page_walk) logs an IO_PAGE_FAULT event only for a DTE or page
// directory entry that is not present or lacks the permission. A zero PTE,
// which is what the kernel leaves for an unmapped IOVA, ends the walk
// without an event ("if (!pte || (pte == (uint64_t)-1)) return;"), and the
// leaf PTE's permissions are handed back unchecked, so the memory core
// drops a write to a read-only page (the translation lacks IOMMU_WO), again
// without an event. The event log stays empty, so the kernel's amd_iommu
// driver never prints its "Event logged [IO_PAGE_FAULT device=...
// address=...]", and edu ignores the failed pci_dma_write, so its status
// shows a completed DMA. What proves the block on this lane is the memory
// the caller checks afterwards. Should a report appear (a QEMU that logs
// these faults), the test fails so the expectation gets updated.
func amdviSilentFault(t *testing.T, e *edu.Device, log *kmsg, iova uint64) {
	t.Helper()
	if err := e.WriteToRAM(iova, 0, page); err != nil {
		t.Fatalf("DMA edu->RAM to %#x: %v (edu reports no IOMMU error: want a completed DMA)", iova, err)
	}
	line, ok := log.match(t, 2*time.Second, func(line string) bool {
		return strings.Contains(line, "IO_PAGE_FAULT") || strings.Contains(line, "Event logged")
	})
	if ok {
		t.Errorf("AMD-Vi reported the blocked write to %#x (%q): QEMU's amd-iommu now logs faults; pin the report in faultReport", iova, line)
		return
	}
	t.Logf("AMD-Vi: the write to %#x completed on edu's side and nothing reached the kernel log, as QEMU's amd-iommu logs no event for a leaf PTE", iova)
}

// faultReport returns a matcher for the kernel's report of a DMA write by
// bdf to iova that the IOMMU blocked (perm: the page is mapped read-only,
// else not mapped), and what it looks for.
//
//   - VT-d: one line, "DMAR: [DMA Write NO_PASID] Request device [00:01.0]
//     fault addr 0x100000 [fault reason ...]".
//   - SMMUv3 (6.12): "arm-smmu-v3 ...: event 0x10 received:" and the four
//     event words on lines of their own: word 0 holds the event id (0x10
//     F_TRANSLATION for an unmapped IOVA, 0x13 F_PERMISSION for a write to
//     a read-only page) and the StreamID (the PCI requester ID) in its top
//     half, word 1 RnW in bit 35 (0 for a write), word 2 the IOVA.
func faultReport(t *testing.T, kind hwtest.Kind, bdf string, iova uint64, perm bool) (func(string) bool, string) {
	t.Helper()
	switch kind {
	case hwtest.VTD:
		words := []string{"DMAR", "Write", bdf[5:], fmt.Sprintf("fault addr %#x", iova)}
		return func(line string) bool { return containsAll(line, words) }, fmt.Sprintf("a DMAR fault %q", words)
	case hwtest.SMMUv3:
		id := uint64(0x10)
		if perm {
			id = 0x13
		}
		sid := requesterID(t, bdf)
		var evt []uint64
		collecting := false
		return func(line string) bool {
			if strings.Contains(line, "arm-smmu-v3") && strings.Contains(line, " received:") {
				collecting, evt = true, evt[:0]
				return false
			}
			if !collecting {
				return false
			}
			// "arm-smmu-v3 9050000.smmuv3: \x090x0000000800000010": kmsg
			// escapes the tab.
			f := strings.Fields(line)
			word, ok := "", len(f) > 0
			if ok {
				word, ok = strings.CutPrefix(strings.TrimPrefix(f[len(f)-1], `\x09`), "0x")
			}
			v, err := strconv.ParseUint(word, 16, 64)
			if !ok || err != nil {
				collecting = false
				return false
			}
			if evt = append(evt, v); len(evt) < 4 {
				return false
			}
			collecting = false
			if evt[0]&0xff == id && evt[0]>>32 == uint64(sid) && evt[1]>>35&1 == 0 && evt[2] == iova {
				t.Logf("SMMUv3 event record %#016x", evt)
				return true
			}
			return false
		}, fmt.Sprintf("an SMMUv3 event %#x from StreamID %#x writing IOVA %#x", id, sid, iova)
	}
	t.Fatalf("no DMA fault report known for %s", kind)
	return nil, ""
}

// requesterID is the PCI requester ID of bdf, bus<<8 | device<<3 | function,
// which is the StreamID an SMMUv3 sees for it on the virt machine.
func requesterID(t *testing.T, bdf string) uint16 {
	t.Helper()
	var dom, bus, dev, fn uint
	if _, err := fmt.Sscanf(bdf, "%x:%x:%x.%x", &dom, &bus, &dev, &fn); err != nil {
		t.Fatalf("BDF %q: %v", bdf, err)
	}
	return uint16(bus<<8 | dev<<3 | fn)
}

func inRanges(rs []iommufd.Range, start, length uint64) bool {
	for _, r := range rs {
		if uint64(r.Start) <= start && start+length-1 <= uint64(r.Last) {
			return true
		}
	}
	return false
}

func inType1Ranges(rs []vfio.IOVARange, start, length uint64) bool {
	for _, r := range rs {
		if r.Start <= start && start+length-1 <= r.End {
			return true
		}
	}
	return false
}

func overlaps(a, alen, b, blen uint64) bool { return a < b+blen && b < a+alen }
