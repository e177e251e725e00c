package smmuv3

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
)

// Command opcodes a vIOMMU takes for invalidation (CMDQ_OP_*;
// arm_vsmmu_convert_user_cmd refuses the rest with EIO).
const (
	OpCFGICD      = 0x05
	OpCFGICDAll   = 0x06
	OpTLBINHAll   = 0x10
	OpTLBINHASID  = 0x11
	OpTLBINHVA    = 0x12
	OpTLBINHVAA   = 0x13
	cmdASIDShift  = 48 // CMDQ_TLBI_0_ASID
	cmdSIDShift   = 32 // CMDQ_CFGI_0_SID
	cmdSSIDShift  = 12 // CMDQ_CFGI_0_SSID
	cmdLeaf       = 1 << 0
	cmdVAMask     = 0xffff_ffff_ffff_f000 // CMDQ_TLBI_1_VA_MASK
	cmdSSIDBitLen = 20
)

// TLBINHASID invalidates every stage-1 TLB entry of asid.
func TLBINHASID(asid uint16) [2]uint64 {
	return [2]uint64{OpTLBINHASID | uint64(asid)<<cmdASIDShift, 0}
}

// TLBINHVA invalidates the stage-1 entries of asid for the page at va;
// leaf limits it to the last-level entry.
func TLBINHVA(asid uint16, va uint64, leaf bool) [2]uint64 {
	w1 := va & cmdVAMask
	if leaf {
		w1 |= cmdLeaf
	}
	return [2]uint64{OpTLBINHVA | uint64(asid)<<cmdASIDShift, w1}
}

// CFGICD invalidates the cached CD of a stream (by its virtual StreamID:
// the kernel swaps in the physical one) and substream.
func CFGICD(vsid uint32, ssid uint32, leaf bool) ([2]uint64, error) {
	if ssid>>cmdSSIDBitLen != 0 {
		return [2]uint64{}, fmt.Errorf("SSID %#x: wider than 20 bits", ssid)
	}
	var w1 uint64
	if leaf {
		w1 = cmdLeaf
	}
	return [2]uint64{OpCFGICD | uint64(ssid)<<cmdSSIDShift | uint64(vsid)<<cmdSIDShift, w1}, nil
}

// Event IDs of the records a vEVENTQ forwards (EVT_ID_*).
const (
	EventBadSTE      = 0x04
	EventBadCD       = 0x0a
	EventTranslation = 0x10 // F_TRANSLATION
	EventAddrSize    = 0x11 // F_ADDR_SIZE
	EventAccess      = 0x12 // F_ACCESS
	EventPermission  = 0x13 // F_PERMISSION
)

// Event is a decoded SMMUv3 event record.
type Event struct {
	ID   uint8
	SID  uint32 // the virtual StreamID in a vEVENTQ
	SSID uint32 // valid when SSV
	SSV  bool
	// Stage2 says the fault happened in stage 2 (the IOAS), not the
	// guest's stage 1; Read that the access was a read; Priv, Instr the
	// access's PnU and InD.
	Stage2, Read, Priv, Instr bool
	Addr                      uint64 // the input address: the VA
	IPA                       uint64 // the IPA, for a stage-2 fault
}

// Event record fields (EVTQ_*).
const (
	evt0SSV = 1 << 11
	evt1PnU = 1 << 33
	evt1InD = 1 << 34
	evt1RnW = 1 << 35
	evt1S2  = 1 << 39
	evt3IPA = 0x000f_ffff_ffff_f000 // bits 51:12
)

// EventSize is an event record's size (struct iommu_vevent_arm_smmuv3).
const EventSize = int(unsafe.Sizeof(uapi.IOMMUVEventARMSMMUv3{}))

// DecodeEvent reads a 32-byte little-endian event record.
func DecodeEvent(b []byte) (Event, error) {
	if len(b) < EventSize {
		return Event{}, fmt.Errorf("event record of %d bytes, want %d", len(b), EventSize)
	}
	le := binary.LittleEndian
	w := [4]uint64{le.Uint64(b), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:])}
	return Event{
		ID:     uint8(w[0]),
		SID:    uint32(w[0] >> 32),
		SSID:   uint32(w[0]>>12) & (1<<cmdSSIDBitLen - 1),
		SSV:    w[0]&evt0SSV != 0,
		Stage2: w[1]&evt1S2 != 0,
		Read:   w[1]&evt1RnW != 0,
		Priv:   w[1]&evt1PnU != 0,
		Instr:  w[1]&evt1InD != 0,
		Addr:   w[2],
		IPA:    w[3] & evt3IPA,
	}, nil
}

// Encode is DecodeEvent's inverse: the 32-byte little-endian record an
// SMMU writes for e (CLASS, STAG and the other fields Event does not keep
// are zero).
func (e Event) Encode() []byte {
	var w [4]uint64
	w[0] = uint64(e.ID) | uint64(e.SSID&(1<<cmdSSIDBitLen-1))<<12 | uint64(e.SID)<<32
	if e.SSV {
		w[0] |= evt0SSV
	}
	for _, f := range []struct {
		on  bool
		bit uint64
	}{{e.Stage2, evt1S2}, {e.Read, evt1RnW}, {e.Priv, evt1PnU}, {e.Instr, evt1InD}} {
		if f.on {
			w[1] |= f.bit
		}
	}
	w[2] = e.Addr
	w[3] = e.IPA & evt3IPA
	b := make([]byte, EventSize)
	for i, x := range w {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
	return b
}

func (e Event) String() string {
	name := map[uint8]string{EventBadSTE: "C_BAD_STE", EventBadCD: "C_BAD_CD", EventTranslation: "F_TRANSLATION",
		EventAddrSize: "F_ADDR_SIZE", EventAccess: "F_ACCESS", EventPermission: "F_PERMISSION"}[e.ID]
	if name == "" {
		name = fmt.Sprintf("event %#x", e.ID)
	}
	stage, dir := "stage 1", "write"
	if e.Stage2 {
		stage = "stage 2"
	}
	if e.Read {
		dir = "read"
	}
	return fmt.Sprintf("%s sid %#x %s %s addr %#x ipa %#x", name, e.SID, stage, dir, e.Addr, e.IPA)
}

// VEventHeaderSize is struct iommufd_vevent_header's size: each record
// read from a vEVENTQ follows one.
const VEventHeaderSize = int(unsafe.Sizeof(uapi.IOMMUFDVEventHeader{}))

// VEvent is one vEVENTQ entry: its header and the event.
type VEvent struct {
	Flags    uint32 // IOMMU_VEVENTQ_FLAG_LOST_EVENTS: events were dropped before this one
	Sequence uint32
	Event    Event
}

// ParseVEvents splits what one read(2) of an ARM SMMUv3 vEVENTQ returned
// into its entries. A lost-events header carries no record.
func ParseVEvents(b []byte) ([]VEvent, error) {
	var out []VEvent
	le := binary.LittleEndian
	for len(b) > 0 {
		if len(b) < VEventHeaderSize {
			return out, fmt.Errorf("%d bytes left: a truncated vEVENT header", len(b))
		}
		v := VEvent{Flags: le.Uint32(b), Sequence: le.Uint32(b[4:])}
		b = b[VEventHeaderSize:]
		if v.Flags&uapi.IOMMU_VEVENTQ_FLAG_LOST_EVENTS != 0 {
			out = append(out, v)
			continue
		}
		e, err := DecodeEvent(b)
		if err != nil {
			return out, err
		}
		v.Event = e
		out = append(out, v)
		b = b[EventSize:]
	}
	return out, nil
}
