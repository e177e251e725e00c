//go:build hwtests && linux

package hwtests

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/hwtests/edu"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/smmuv3"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// The nested layout: one buffer mapped into the IOAS at nestBase holds
// the CD (page 0), two sets of stage-1 tables (pages 1-3 and 4-6) and the
// data pages (8-15); a decoy at the VAs themselves catches a stage 1 that is not
// walked. Everything stays below edu's 28-bit DMA reach.
const (
	nestBase   = 0x1000000
	nestPages  = 16
	nestData   = nestBase + 8*page
	nestVA     = 0x200000 // stage-1 VAs from here
	nestASID   = 1
	nestUnIPA  = 0x3000000 // an IPA the IOAS does not map
	mairNormal = 0xff      // attribute 0: normal memory, write-back
)

// nested is a device attached to a stage-1 nested HWPT over a nesting
// parent on an SMMUv3.
type nested struct {
	fd     *iommufd.FD
	dev    *vfio.Device
	e      *edu.Device
	ioas   iommufd.ID
	parent iommufd.ID
	viommu iommufd.ID
	vdev   iommufd.ID
	evqID  iommufd.ID
	hwpt   iommufd.ID // the stage-1 nested HWPT the device is attached to
	evq    *os.File
	mem    []byte // CD, tables, data pages
	decoy  []byte // mapped at nestVA in the IOAS
	tables *smmuv3.Tables
}

// data returns data page i and its IPA.
func (n *nested) data(i int) ([]byte, uint64) {
	off := (8 + i) * page
	return n.mem[off : off+page], nestBase + uint64(off)
}

// newNested builds the nested setup, or returns nil where the kernel has
// no SMMUv3 nesting (TestNestingObjects pins what those lanes answer).
func newNested(t *testing.T) *nested {
	t.Helper()
	fd, ioas, vdev, devID, info := boundEdu(t)
	if info.Type != iommufd.HWInfoTypeARMSMMUv3 {
		switch lane := hwtest.Lane(); {
		case noNestingLane(lane):
			t.Logf("lane %s: no SMMUv3 nesting (hw info type %d); TestNestingObjects pins its answers", lane, info.Type)
			return nil
		case hwtest.Strict():
			t.Fatalf("lane %q: no nesting expectation (hw info type %d)", lane, info.Type)
		}
		t.Skipf("no SMMUv3 nesting here (hw info type %d)", info.Type)
	}

	n := &nested{fd: fd, dev: vdev, ioas: ioas, mem: hwtest.DMABuffer(t, nestPages*page), decoy: hwtest.DMABuffer(t, 8*page)}
	for _, m := range []struct {
		buf  []byte
		iova uint64
	}{{n.mem, nestBase}, {n.decoy, nestVA}} {
		if _, err := fd.Map(ioas, m.buf, iommufd.IOVA(m.iova), iommufd.FixedIOVA|iommufd.Readable|iommufd.Writeable); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if n.parent, err = fd.HWPTAlloc(devID, ioas, iommufd.HWPTOptions{Flags: iommufd.HWPTAllocNestParent}); err != nil {
		t.Fatalf("nesting parent: %v", err)
	}
	if n.viommu, err = fd.VIOMMUAlloc(devID, n.parent, iommufd.VIOMMUTypeARMSMMUv3, nil); err != nil {
		t.Fatalf("vIOMMU: %v", err)
	}
	if n.vdev, err = fd.VDeviceAlloc(n.viommu, devID, virtSID); err != nil {
		t.Fatalf("vDEVICE: %v", err)
	}
	if n.evqID, n.evq, err = fd.VEventQAlloc(n.viommu, iommufd.VEventQTypeARMSMMUv3, 64); err != nil {
		t.Fatalf("vEVENTQ: %v", err)
	}
	t.Cleanup(func() { n.evq.Close() })
	if err := unix.SetNonblock(int(n.evq.Fd()), true); err != nil {
		t.Fatal(err)
	}

	// Pages 1-3 hold the first table set (a level 1, 2 and 3 table for
	// the VAs below); pages 4-6 are for a second one.
	if n.tables, err = smmuv3.NewTables(n.mem[page:4*page], nestBase+page, 39); err != nil {
		t.Fatal(err)
	}
	n.writeCD(t, nestASID, n.tables)
	ste, err := smmuv3.VSTE(smmuv3.ConfigS1Trans, nestBase)
	if err != nil {
		t.Fatal(err)
	}
	if n.hwpt, err = fd.HWPTAlloc(devID, n.viommu, iommufd.HWPTOptions{Data: iommufd.ARMSMMUv3STE(ste)}); err != nil {
		t.Fatalf("nested HWPT with a stage-1 vSTE %#x: %v", ste, err)
	}
	if got, err := vdev.AttachIOMMUFDPT(uint32(n.hwpt)); err != nil || got != uint32(n.hwpt) {
		t.Fatalf("attach to the stage-1 HWPT: %d, %v", got, err)
	}
	n.e = openEdu(t, vdev)
	return n
}

// invalidate passes SMMUv3 commands through the vIOMMU.
func (n *nested) invalidate(t *testing.T, cmds ...[2]uint64) {
	t.Helper()
	done, err := n.fd.Invalidate(n.viommu, iommufd.ARMSMMUv3Invalidations(cmds))
	if err != nil || done != uint32(len(cmds)) {
		t.Fatalf("invalidate %#x: %d handled, %v", cmds, done, err)
	}
}

// events reads the vEVENTQ until it has been quiet for a moment.
func (n *nested) events(t *testing.T) []smmuv3.VEvent {
	t.Helper()
	var all []smmuv3.VEvent
	buf := make([]byte, 64*(smmuv3.VEventHeaderSize+smmuv3.EventSize))
	quiet := time.Now().Add(time.Second)
	for time.Now().Before(quiet) {
		k, err := n.evq.Read(buf)
		if k > 0 {
			evs, perr := smmuv3.ParseVEvents(buf[:k])
			if perr != nil {
				t.Fatalf("vEVENTQ read of %d bytes: %v", k, perr)
			}
			all = append(all, evs...)
			quiet = time.Now().Add(200 * time.Millisecond)
			continue
		}
		// An empty queue reads 0 bytes (io.EOF from os.File).
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, unix.EAGAIN) {
			t.Fatalf("read vEVENTQ: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return all
}

// writeCD writes the CD for asid over tables at page 0.
func (n *nested) writeCD(t *testing.T, asid uint16, tables *smmuv3.Tables) {
	t.Helper()
	cd, err := smmuv3.CD{ASID: asid, TTB0: tables.Root(), T0SZ: tables.T0SZ(), IPS: 2, MAIR: mairNormal}.Words()
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range cd {
		binary.LittleEndian.PutUint64(n.mem[8*i:], w)
	}
}

// dmaLands has edu write its buffer (holding want) to va and checks it
// landed in hit and not in miss.
func (n *nested) dmaLands(t *testing.T, va uint64, want, hit, miss []byte, when string) {
	t.Helper()
	clear(hit)
	clear(miss)
	if err := n.e.WriteToRAM(va, 0, page); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hit, want) || bytes.Equal(miss, want) {
		t.Fatalf("%s: the DMA to VA %#x did not land where expected (hit %v, miss page written %v)", when, va, bytes.Equal(hit, want), bytes.Equal(miss, want))
	}
}

func fill(b []byte) []byte {
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return bytes.Clone(b)
}

// TestNestedStage1 has edu DMA through a stage-1 table we build, walked by
// QEMU's SMMUv3 over stage 2 (the IOAS): the bytes land on the page stage
// 1 and stage 2 select together; a read-only stage-1 page keeps its
// bytes; a repointed PTE is not seen until TLBI_NH_ASID or TLBI_NH_VA
// goes through the vIOMMU (QEMU caches the walk, as hardware may), nor a
// rewritten CD until CFGI_CD for the virtual StreamID; a stage-1 fault comes
// back in the vEVENTQ with the VA and the virtual StreamID; a stage-2
// fault (stage 1 points at an IPA the IOAS does not map) is the host's,
// logged by its driver and not forwarded.
func TestNestedStage1(t *testing.T) {
	n := newNested(t)
	if n == nil {
		return
	}
	src, srcIPA := n.data(0)
	dst, dstIPA := n.data(1)
	other, otherIPA := n.data(2)
	ro, roIPA := n.data(3)
	for _, m := range []struct {
		va, ipa uint64
		perm    smmuv3.Perm
	}{
		{nestVA, srcIPA, smmuv3.Read | smmuv3.Write},
		{nestVA + page, dstIPA, smmuv3.Read | smmuv3.Write},
		{nestVA + 2*page, roIPA, smmuv3.Read},
		{nestVA + 4*page, nestUnIPA, smmuv3.Read | smmuv3.Write},
	} {
		if err := n.tables.Map(m.va, m.ipa, m.perm); err != nil {
			t.Fatal(err)
		}
	}
	copy(n.decoy, bytes.Repeat([]byte{0xde}, len(n.decoy)))
	decoy := bytes.Clone(n.decoy)

	// VA nestVA -> src, VA nestVA+page -> dst.
	want := fill(src)
	clear(dst)
	if err := n.e.ReadFromRAM(nestVA, 0, page); err != nil {
		t.Fatal(err)
	}
	if err := n.e.WriteToRAM(nestVA+page, 0, page); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst, want) {
		t.Fatalf("the page at VA %#x (IPA %#x) did not receive the DMA", nestVA+page, dstIPA)
	}
	if !bytes.Equal(n.decoy, decoy) {
		t.Fatal("the decoy at the VA itself was written: stage 1 was not walked")
	}

	// Repoint VA nestVA+page to another page: the walk is cached until
	// the guest invalidates its ASID.
	if err := n.tables.Map(nestVA+page, otherIPA, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	clear(dst)
	clear(other)
	if err := n.e.WriteToRAM(nestVA+page, 0, page); err != nil {
		t.Fatal(err)
	}
	switch {
	case bytes.Equal(dst, want) && !bytes.Equal(other, want):
		t.Logf("repointed PTE without invalidation: the DMA used the cached walk (old page), as QEMU's SMMUv3 caches it")
	case bytes.Equal(other, want):
		t.Errorf("repointed PTE without invalidation: the DMA already used the new page; QEMU's SMMUv3 caches walks until TLBI")
	default:
		t.Fatal("repointed PTE: the DMA landed on neither page")
	}
	n.invalidate(t, smmuv3.TLBINHASID(nestASID))
	clear(dst)
	clear(other)
	if err := n.e.WriteToRAM(nestVA+page, 0, page); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(other, want) || bytes.Equal(dst, want) {
		t.Fatalf("after TLBI_NH_ASID the DMA did not land on the new page (IPA %#x)", otherIPA)
	}

	// TLBI_NH_VA does the same for one page.
	if err := n.tables.Map(nestVA+page, dstIPA, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	n.dmaLands(t, nestVA+page, want, other, dst, "repointed back, before TLBI_NH_VA")
	n.invalidate(t, smmuv3.TLBINHVA(nestASID, nestVA+page, true))
	n.dmaLands(t, nestVA+page, want, dst, other, "after TLBI_NH_VA")

	// A new CD (ASID 2, the second table set, which maps the VA to data
	// page 4) is not fetched until CFGI_CD names the vSID.
	fourth, fourthIPA := n.data(4)
	t2, err := smmuv3.NewTables(n.mem[4*page:7*page], nestBase+4*page, 39)
	if err != nil {
		t.Fatal(err)
	}
	if err := t2.Map(nestVA+page, fourthIPA, smmuv3.Read|smmuv3.Write); err != nil {
		t.Fatal(err)
	}
	n.writeCD(t, 2, t2)
	n.dmaLands(t, nestVA+page, want, dst, fourth, "new CD, before CFGI_CD")
	cfgi, err := smmuv3.CFGICD(virtSID, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	n.invalidate(t, cfgi)
	n.dmaLands(t, nestVA+page, want, fourth, dst, "after CFGI_CD")
	// Back to the first CD, forgetting what ASID 1 cached meanwhile.
	n.writeCD(t, nestASID, n.tables)
	n.invalidate(t, cfgi, smmuv3.TLBINHASID(nestASID))
	n.dmaLands(t, nestVA+page, want, dst, fourth, "first CD again")

	// Read-only stage-1 page: the write is refused with a permission
	// fault for our VA and virtual StreamID.
	n.events(t) // drain
	roBefore := fill(ro)
	if err := n.e.WriteToRAM(nestVA+2*page, 0, 64); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ro, roBefore) {
		t.Error("DMA wrote a read-only stage-1 page")
	}
	checkEvent(t, n.events(t), smmuv3.EventPermission, nestVA+2*page)

	// An unmapped VA: a translation fault, in the vEVENTQ.
	if err := n.e.WriteToRAM(nestVA+3*page, 0, 64); err != nil {
		t.Fatal(err)
	}
	checkEvent(t, n.events(t), smmuv3.EventTranslation, nestVA+3*page)

	// Stage 1 maps the VA to an IPA the IOAS does not: a stage-2 fault,
	// the host's own: its driver logs it and the vEVENTQ stays empty. The
	// driver rate-limits its reports (10 events per 5 s; faultBytes says
	// why the write is short): a write whose report fell in a window
	// earlier faults spent is repeated once the window has passed, as
	// TestDMAFault does.
	log := openKmsg(t)
	ipa := fmt.Sprintf("ipa: %#x", nestUnIPA)
	for attempt := 1; ; attempt++ {
		if err := n.e.WriteToRAM(nestVA+4*page, 0, faultBytes); err != nil {
			t.Fatal(err)
		}
		if evs := n.events(t); len(evs) != 0 {
			t.Errorf("a stage-2 fault reached the vEVENTQ: %v", evs)
		}
		if line, ok := log.match(t, 6*time.Second, func(l string) bool { return strings.Contains(l, ipa) }); ok {
			t.Logf("kernel: %s", line)
			return
		}
		if attempt == 2 {
			t.Fatalf("no host report of the stage-2 fault at %s after %d writes", ipa, attempt)
		}
	}
}

// checkEvent wants at least one record of kind id for va from our virtual
// StreamID, and nothing else.
func checkEvent(t *testing.T, evs []smmuv3.VEvent, id uint8, va uint64) {
	t.Helper()
	if len(evs) == 0 {
		t.Errorf("no vEVENT for the fault at VA %#x", va)
		return
	}
	for _, v := range evs {
		e := v.Event
		if e.ID != id || e.SID != virtSID || e.Stage2 || e.Addr&^(page-1) != va {
			t.Errorf("vEVENT %v, want event %#x for VA %#x from vSID %d in stage 1", e, id, va, virtSID)
			return
		}
	}
	t.Logf("%d vEVENTs for VA %#x, first %v", len(evs), va, evs[0].Event)
}

// TestNestedTeardown takes the nested setup apart in several orders: each
// leaves no pinned page and no descriptor behind, and the next setup, on
// the same device, works (its DMA lands).
func TestNestedTeardown(t *testing.T) {
	destroy := func(t *testing.T, n *nested, what string, id iommufd.ID) {
		t.Helper()
		if err := n.fd.Destroy(id); err != nil {
			t.Errorf("destroy the %s %d: %v", what, id, err)
		}
	}
	orders := []struct {
		name string
		down func(t *testing.T, n *nested)
	}{
		{"kernel order", func(t *testing.T, n *nested) {
			if err := n.dev.DetachIOMMUFDPT(); err != nil {
				t.Errorf("detach: %v", err)
			}
			destroy(t, n, "nested HWPT", n.hwpt)
			n.evq.Close()
			destroy(t, n, "vEVENTQ", n.evqID)
			destroy(t, n, "vDEVICE", n.vdev)
			destroy(t, n, "vIOMMU", n.viommu)
			destroy(t, n, "nesting parent", n.parent)
			destroy(t, n, "IOAS", n.ioas)
			n.dev.Close()
			n.fd.Close()
		}},
		{"close iommufd first", func(t *testing.T, n *nested) {
			n.evq.Close()
			n.fd.Close() // every object goes with it; the device stays bound until its fd closes
			n.dev.Close()
		}},
		{"close the device first", func(t *testing.T, n *nested) {
			n.dev.Close() // unbinds: the kernel drops the attach and the vDEVICE
			n.evq.Close()
			destroy(t, n, "nested HWPT", n.hwpt)
			destroy(t, n, "vEVENTQ", n.evqID)
			if err := n.fd.Destroy(n.vdev); err != nil && !errors.Is(err, unix.ENOENT) {
				t.Errorf("destroy the vDEVICE after the device's unbind: %v (want success or ENOENT)", err)
			}
			destroy(t, n, "vIOMMU", n.viommu)
			destroy(t, n, "nesting parent", n.parent)
			destroy(t, n, "IOAS", n.ioas)
			n.fd.Close()
		}},
		{"objects still in use refuse", func(t *testing.T, n *nested) {
			for _, c := range []struct {
				what string
				id   iommufd.ID
			}{{"vIOMMU", n.viommu}, {"nesting parent", n.parent}, {"IOAS", n.ioas}, {"attached nested HWPT", n.hwpt}} {
				wantErrno(t, "destroy the "+c.what+" while in use", n.fd.Destroy(c.id), unix.EBUSY)
			}
			n.evq.Close()
			n.dev.Close()
			n.fd.Close()
		}},
	}
	pinned := procStatusKB(t, "VmPin")
	fds := openFDs(t)
	for _, o := range orders {
		ok := t.Run(o.name, func(t *testing.T) {
			n := newNested(t)
			if n == nil {
				return
			}
			src, srcIPA := n.data(0)
			dst, dstIPA := n.data(1)
			if err := n.tables.Map(nestVA, srcIPA, smmuv3.Read|smmuv3.Write); err != nil {
				t.Fatal(err)
			}
			if err := n.tables.Map(nestVA+page, dstIPA, smmuv3.Read|smmuv3.Write); err != nil {
				t.Fatal(err)
			}
			want := fill(src)
			if err := n.e.ReadFromRAM(nestVA, 0, page); err != nil {
				t.Fatal(err)
			}
			n.dmaLands(t, nestVA+page, want, dst, n.decoy[page:2*page], "before the teardown")
			o.down(t, n)
		})
		if !ok {
			break
		}
		if got := procStatusKB(t, "VmPin"); got != pinned {
			t.Errorf("after %q: VmPin %d kB, %d kB before the setup", o.name, got, pinned)
		}
		if got := openFDs(t); got != fds {
			t.Errorf("after %q: %d open descriptors, %d before the setup", o.name, got, fds)
		}
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
