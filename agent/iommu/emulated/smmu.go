package emulated

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
	"github.com/iommu-agent/iommu-agent/ioctl/smmuv3"
)

// The SMMUv3 model is QEMU 10's smmuv3 as the own 7.3 lane sees it, and
// the kernel's SMMUv3 driver over it.
const (
	// Linux's software MSI window on an SMMUv3 (MSI_IOVA_BASE).
	smmuMSIStart = 0x8000000
	smmuMSILast  = 0x80fffff
	// What the driver derives from QEMU's IDRs (smmuQEMUIDR): 16-bit
	// ASIDs (IDR0.ASID16), no substreams (IDR1.SSIDSIZE 0), no ATS
	// (IDR0.ATS), range invalidation (IDR3.RIL) without DS (IDR5.DS),
	// 44-bit output addresses (IDR5.OAS).
	smmuASIDBits = 16
	smmuOASBits  = 44
	// The last IPA a nesting parent's stage 2 translates (the driver's
	// s2 ias, from IDR5.OAS): IOAS ranges end there while one exists.
	smmuS2ApertureEnd = 1<<smmuOASBits - 1
)

// smmuQEMUIDR are SMMU_IDR0-5 of QEMU 10's smmuv3, as IOMMU_GET_HW_INFO
// reported them in the guest (ioctl/hwinfo's TestSMMUv3QEMU decodes
// them): IIDR 0, AIDR 1 (SMMUv3.1).
var smmuQEMUIDR = [6]uint32{0x0d44101b, 0x02730010, 0, 0x1414, 0, 0x74}

// smmuHWInfo is struct iommu_hw_info_arm_smmuv3 for QEMU's smmuv3.
func smmuHWInfo() []byte {
	b, _ := hwinfo.SMMUv3{IDR: smmuQEMUIDR, AIDR: 1}.MarshalBinary()
	return b
}

// vSTE fields (STRTAB_STE_*).
const (
	steV           = 1 << 0
	steCfgShift    = 1
	steCfgMask     = 7
	steS1CtxPtr    = 0x000f_ffff_ffff_ffc0 // 51:6
	steS1CDMaxShft = 59
	// STRTAB_STE_0_NESTING_ALLOWED: V, Config, S1Fmt, S1ContextPtr,
	// S1CDMax. STRTAB_STE_1_NESTING_ALLOWED: S1DSS, S1CIR, S1COR, S1CSH,
	// S1STALLD, EATS.
	ste0NestingAllowed = steV | steCfgMask<<steCfgShift | 3<<4 | steS1CtxPtr | 0x1f<<steS1CDMaxShft
	ste1NestingAllowed = 3 | 3<<2 | 3<<4 | 3<<6 | 1<<27 | steEATS
	steEATS            = 3 << 28
	steEATSShift       = 28
	cfgAbort           = uint64(smmuv3.ConfigAbort)
	cfgBypass          = uint64(smmuv3.ConfigBypass)
	cfgS1              = uint64(smmuv3.ConfigS1Trans)
)

// validateVSTE is arm_smmu_validate_vste plus what
// arm_vsmmu_alloc_domain_nested keeps: the words without EATS.
func validateVSTE(ste iommu.SMMUv3STE) ([2]uint64, error) {
	if ste[0]&steV == 0 {
		return [2]uint64{}, nil
	}
	if ste[0]&^ste0NestingAllowed != 0 || ste[1]&^ste1NestingAllowed != 0 {
		return [2]uint64{}, errnoErr(fmt.Sprintf("%v sets bits a guest may not", ste), syscall.EIO)
	}
	switch steConfig(ste) {
	case cfgAbort, cfgBypass, cfgS1:
	default:
		return [2]uint64{}, errnoErr(fmt.Sprintf("%v: Config %d", ste, steConfig(ste)), syscall.EIO)
	}
	if eats := ste[1] & steEATS >> steEATSShift; eats > 1 {
		return [2]uint64{}, errnoErr(fmt.Sprintf("%v: EATS %d", ste, eats), syscall.EIO)
	}
	return [2]uint64{ste[0], ste[1] &^ steEATS}, nil
}

// steConfig is the Config the SMMU applies: a vSTE without V became an
// abort STE (arm_smmu_make_nested_domain_ste).
func steConfig(ste [2]uint64) uint64 {
	if ste[0]&steV == 0 {
		return cfgAbort
	}
	return ste[0] >> steCfgShift & steCfgMask
}

// CD word 0 fields (CTXDESC_CD_0_*) the model reads.
const (
	cdT0SZMask  = 0x3f
	cdTG0Shift  = 6
	cdEPD0      = 1 << 14
	cdENDI      = 1 << 15
	cdV         = 1 << 31
	cdIPSShift  = 32
	cdAA64      = 1 << 41
	cdHD        = 1 << 42
	cdHA        = 1 << 43
	cdS         = 1 << 44
	cdR         = 1 << 45
	cdA         = 1 << 46
	cdASIDShift = 48
	cdTTB0Mask  = 0x000f_ffff_ffff_fff0
)

// cachedCD is a decoded context descriptor: what QEMU's configuration
// cache keeps for a stream until CFGI_CD (or CFGI_STE, which the kernel
// sends when the device's STE changes).
type cachedCD struct {
	asid     uint16
	ttb0     uint64
	vaBits   int
	oasBits  int
	disabled bool // EPD0: no TTB0 walks, every VA faults
	record   bool // R: faults are recorded as events
}

// decodeCD follows QEMU's decode_cd: a CD that is not valid, not
// AArch64, stalls (A clear, or S), asks for hardware access or dirty
// flags, is big-endian, has T0SZ outside 16-39, or a TTB0 beyond the
// output size is C_BAD_CD. QEMU also walks 16 and 64 KiB granules; the
// model's walker does 4 KiB only, so it reports those as C_BAD_CD too.
func decodeCD(w [8]uint64) (*cachedCD, error) {
	w0 := w[0]
	switch {
	case w0&cdV == 0:
		return nil, errors.New("CD not valid")
	case w0&cdAA64 == 0:
		return nil, errors.New("CD not AArch64")
	case w0&cdA == 0 || w0&cdS != 0:
		return nil, errors.New("CD asks for stalls")
	case w0&(cdHA|cdHD) != 0:
		return nil, errors.New("CD asks for hardware access/dirty flags (no HTTU)")
	}
	ips := map[uint64]int{0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52}
	oas, ok := ips[w0>>cdIPSShift&7]
	if !ok {
		return nil, fmt.Errorf("CD IPS %d reserved", w0>>cdIPSShift&7)
	}
	cd := &cachedCD{asid: uint16(w0 >> cdASIDShift), oasBits: min(oas, smmuOASBits), record: w0&cdR != 0}
	if w0&cdEPD0 != 0 {
		cd.disabled = true
		return cd, nil
	}
	t0sz := int(w0 & cdT0SZMask)
	switch {
	case t0sz < 16 || t0sz > 39:
		return nil, fmt.Errorf("CD T0SZ %d", t0sz)
	case w0>>cdTG0Shift&3 != 0:
		return nil, fmt.Errorf("CD TG0 %d: only the 4 KiB granule is modelled", w0>>cdTG0Shift&3)
	case w0&cdENDI != 0:
		return nil, errors.New("CD big-endian tables")
	}
	cd.vaBits, cd.ttb0 = 64-t0sz, w[1]&cdTTB0Mask
	if cd.ttb0>>cd.oasBits != 0 {
		return nil, fmt.Errorf("CD TTB0 %#x beyond %d bits", cd.ttb0, cd.oasBits)
	}
	return cd, nil
}

// walkKey tags a cached stage-1 walk: the ASID and the VA of a page or
// block of the given size. The cache hangs off the nesting parent, whose
// VMID QEMU's IOTLB also keys on.
type walkKey struct {
	asid uint16
	va   uint64
	size uint64
}

type walkEntry struct {
	ipa  uint64 // of the page or block
	perm smmuv3.Perm
}

// walkCache is QEMU's IOTLB for stage 1: filled by successful walks,
// never by faults, dropped by TLBI_NH_* through the vIOMMU and by the
// TLBI_NH_ALL the driver sends when the nesting parent's mappings change.
type walkCache map[walkKey]walkEntry

// leafSizes are the sizes a 4 KiB-granule walk can end in.
var leafSizes = [...]uint64{1 << 12, 1 << 21, 1 << 30}

func (c walkCache) lookup(asid uint16, va uint64) (walkEntry, uint64, bool) {
	for _, sz := range leafSizes {
		if e, ok := c[walkKey{asid, va &^ (sz - 1), sz}]; ok {
			return e, sz, true
		}
	}
	return walkEntry{}, 0, false
}

func (c walkCache) flush(match func(walkKey) bool) {
	for k := range c {
		if match(k) {
			delete(c, k)
		}
	}
}

// flushParents drops the stage-1 walks cached under the IOAS's nesting
// parents: their stage 2 changed (the driver's INV_TYPE_S2_VMID_S1_CLEAR).
func (as *AddressSpace) flushParents() {
	for _, h := range as.hwpts {
		h.walkCache.flush(func(walkKey) bool { return true })
	}
}

// Command fields (CMDQ_*).
const (
	cmdOpMask     = 0xff
	cmdSSV        = 1 << 11
	cmdCFGISSID   = 0xfffff << 12
	cmdCFGISID    = 0xffff_ffff << 32
	cmdCFGILeaf   = 1 << 0
	cmdTLBINum    = 0x1f << 12
	cmdTLBIScale  = 0x3f << 20
	cmdTLBIVMID   = 0xffff << 32
	cmdTLBIASID   = 0xffff << 48
	cmdTLBILeaf   = 1 << 0
	cmdTLBITTL    = 3 << 8
	cmdTLBITG     = 3 << 10
	cmdTLBIVAMask = 0xffff_ffff_ffff_f000
	opTLBINSNHAll = 0x30
	opATCInv      = 0x40
	// CMDQ_BATCH_ENTRIES: the driver issues converted commands in
	// batches of 63 (cur - last == CMDQ_BATCH_ENTRIES - 1).
	cmdBatch = 64 - 1
	// IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX.
	invalidateMax = 1 << 19
)

// validateCmd is arm_vsmmu_validate_user_cmd for QEMU's smmuv3 (16-bit
// ASIDs, RANGE_INV without DS, no ATS, no substreams): an opcode it does
// not take, or any bit outside the fields a guest may set, is EIO.
func validateCmd(c [2]uint64) error {
	var allowed [2]uint64
	allowed[0] = cmdOpMask
	op := c[0] & cmdOpMask
	switch op {
	case opTLBINSNHAll:
	case smmuv3.OpTLBINHVA, smmuv3.OpTLBINHVAA:
		if op == smmuv3.OpTLBINHVA {
			allowed[0] |= (1<<smmuASIDBits - 1) << 48
		}
		if err := validateRange(c); err != nil {
			return err
		}
		allowed[0] |= cmdTLBINum | cmdTLBIScale&^(1<<25) // SCALE bit 25 is RES0 without DS
		allowed[1] |= cmdTLBITG | cmdTLBITTL
		allowed[0] |= cmdTLBIVMID
		allowed[1] |= cmdTLBILeaf | cmdTLBIVAMask
	case smmuv3.OpTLBINHASID:
		allowed[0] |= (1<<smmuASIDBits-1)<<48 | cmdTLBIVMID
	case smmuv3.OpTLBINHAll:
		allowed[0] |= cmdTLBIVMID
	case opATCInv:
		return errors.New("ATC_INV on an SMMU without ATS")
	case smmuv3.OpCFGICD:
		// No SSID without substreams.
		allowed[1] |= cmdCFGILeaf
		allowed[0] |= cmdCFGISID
	case smmuv3.OpCFGICDAll:
		allowed[0] |= cmdCFGISID
	default:
		return fmt.Errorf("opcode %#x", op)
	}
	if c[0]&^allowed[0] != 0 || c[1]&^allowed[1] != 0 {
		return fmt.Errorf("bits %#x %#x outside the fields of opcode %#x", c[0]&^allowed[0], c[1]&^allowed[1], op)
	}
	return nil
}

// validateRange is arm_vsmmu_validate_range: the reserved combinations
// of the range fields.
func validateRange(c [2]uint64) error {
	rng := c[0]&(cmdTLBINum|cmdTLBIScale) != 0
	ttl, tg := c[1]&cmdTLBITTL>>8, c[1]&cmdTLBITG>>10
	switch {
	case tg == 0 && (rng || ttl != 0):
		return errors.New("NUM, SCALE or TTL without TG")
	case tg == 2 && ttl == 1:
		return errors.New("TTL 1 with a 16 KiB TG needs DS")
	case tg != 0 && !rng && ttl == 0:
		return errors.New("TG with NUM, SCALE and TTL all 0")
	}
	return nil
}

// command is a validated, converted command.
type command struct {
	op   uint64
	asid uint16
	va   uint64
	size uint64      // of the VA range; 0 for the entries holding va
	at   *Attachment // CFGI_CD*: the vSID's device
}

// convert is arm_vsmmu_convert_user_cmd: validation, then the vSID of a
// CFGI_CD* to the device of the vIOMMU's vDEVICE with that ID (EIO if
// none).
func (v *VIOMMU) convert(c [2]uint64) (command, error) {
	if err := validateCmd(c); err != nil {
		return command{}, err
	}
	cmd := command{op: c[0] & cmdOpMask, asid: uint16(c[0] >> 48), va: c[1] & cmdTLBIVAMask}
	switch cmd.op {
	case smmuv3.OpTLBINHVA, smmuv3.OpTLBINHVAA:
		if tg := c[1] & cmdTLBITG >> 10; tg != 0 {
			num, scale := c[0]&cmdTLBINum>>12, c[0]&cmdTLBIScale>>20
			cmd.size = (num + 1) << scale << (10 + 2*tg) // TG 1, 2, 3: 4, 16, 64 KiB
		}
	case smmuv3.OpCFGICD, smmuv3.OpCFGICDAll:
		vsid := c[0] >> 32
		vd, ok := v.vdevs[vsid]
		if !ok {
			return command{}, fmt.Errorf("CFGI for vSID %#x: no vDEVICE", vsid)
		}
		cmd.at = vd.at
	}
	return cmd, nil
}

// issue is what QEMU's smmuv3 does with the physical command.
func (v *VIOMMU) issue(c command) {
	cache := v.parent.walkCache
	switch c.op {
	case smmuv3.OpTLBINHASID:
		cache.flush(func(k walkKey) bool { return k.asid == c.asid })
	case smmuv3.OpTLBINHVA, smmuv3.OpTLBINHVAA:
		anyASID := c.op == smmuv3.OpTLBINHVAA
		cache.flush(func(k walkKey) bool {
			if !anyASID && k.asid != c.asid {
				return false
			}
			if c.size == 0 {
				return c.va-k.va < k.size && c.va >= k.va
			}
			return k.va < c.va+c.size && c.va < k.va+k.size
		})
	case smmuv3.OpTLBINHAll, opTLBINSNHAll:
		cache.flush(func(walkKey) bool { return true })
	case smmuv3.OpCFGICD, smmuv3.OpCFGICDAll:
		c.at.cd = nil
	}
}

// Invalidate implements iommu.VIOMMU (IOMMU_HWPT_INVALIDATE on the
// vIOMMU, arm_vsmmu_cache_invalidate). A bad command is EIO and the count
// is its index; as in the kernel, the commands converted before it in its
// batch of 63 are not issued although they count as handled. No commands,
// or more than 2^19, are EINVAL with 0 handled; a failed allocation of
// the command array is ENOMEM with all counted, as the kernel reports it.
func (v *VIOMMU) Invalidate(ctx context.Context, cmds iommu.Invalidation) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := v.usable("invalidate"); err != nil {
		return 0, err
	}
	if cmds.Len() > invalidateMax {
		return 0, errnoErr(fmt.Sprintf("invalidate: %d commands", cmds.Len()), syscall.EINVAL)
	}
	if err := b.step("allocate commands"); err != nil {
		return cmds.Len(), fmt.Errorf("invalidate: %w", err)
	}
	// iommu_copy_struct_from_full_user_array: another driver's type, or
	// no entries at all, is EINVAL.
	c, ok := cmds.(iommu.SMMUv3Commands)
	if !ok {
		return 0, errnoErr(fmt.Sprintf("invalidate: %T is not SMMUv3 commands", cmds), syscall.EINVAL)
	}
	if len(c) == 0 {
		return 0, errnoErr("invalidate: no commands", syscall.EINVAL)
	}
	batch := make([]command, 0, min(len(c), cmdBatch))
	for i := 0; i < len(c); {
		cmd, err := v.convert(c[i])
		if err != nil {
			return i, errnoErr(fmt.Sprintf("invalidate: command %d %#x", i, c[i]), syscall.EIO)
		}
		batch = append(batch, cmd)
		i++
		if i != len(c) && len(batch) != cmdBatch {
			continue
		}
		for _, cmd := range batch {
			v.issue(cmd)
		}
		batch = batch[:0]
	}
	return len(c), nil
}

// nestedFault is a fault of a DMA through a nested HWPT; it is a *Fault
// so callers see one error type.
func (at *Attachment) nestedFault(addr uint64, write, record bool, reason string) error {
	f := Fault{BDF: at.dev.BDF, IOVA: iommu.IOVA(addr), Write: write, Reason: reason}
	if record {
		at.b.faults = append(at.b.faults, f)
	}
	return &f
}

// s1Event reports a stage-1 fault (or a bad STE or CD) of the device as
// the SMMU driver does: under the virtual StreamID to the vIOMMU's
// vEVENTQ; without a vEVENTQ the driver logs it (recorded as a host
// Fault). A CD whose R bit is clear records nothing.
func (at *Attachment) s1Event(id uint8, va uint64, write, record bool, what string) error {
	vm := at.vmaster
	reason := fmt.Sprintf("stage 1: %s (event %#x)", what, id)
	if !record || vm == nil {
		return at.nestedFault(va, write, vm == nil && record, reason)
	}
	if q := vm.viommu.evq; q != nil && !vm.viommu.destroyed {
		q.report(smmuv3.Event{ID: id, SID: uint32(vm.vsid), Read: !write, Addr: va}.Encode())
		return at.nestedFault(va, write, false, reason+", forwarded")
	}
	return at.nestedFault(va, write, true, reason+", no vEVENTQ: logged by the host")
}

// stage2 translates ipa through the IOAS: a fault there is the host's,
// recorded and never forwarded (the event has S2 set).
func (at *Attachment) stage2(ipa, va uint64, need iommu.Perm, write bool, what string) ([]byte, error) {
	mem, perm, ok := at.as.pt.translate(ipa)
	switch {
	case !ok:
		return nil, at.nestedFault(ipa, write, true, fmt.Sprintf("stage 2: %s at IPA %#x (VA %#x) not mapped", what, ipa, va))
	case perm&need == 0:
		return nil, at.nestedFault(ipa, write, true, fmt.Sprintf("stage 2: %s at IPA %#x (VA %#x) permission denied", what, ipa, va))
	}
	return mem, nil
}

// fetchCD returns the device's CD, from the configuration cache or read
// through stage 2 at the vSTE's S1ContextPtr.
func (at *Attachment) fetchCD(h *HWPT, va uint64, write bool) (*cachedCD, error) {
	if at.cd != nil {
		return at.cd, nil
	}
	if h.ste[0]>>steS1CDMaxShft != 0 {
		// QEMU's decode_ste: "SMMUv3 does not support multiple
		// context descriptors yet".
		return nil, at.s1Event(smmuv3.EventBadSTE, va, write, true, "S1CDMax set: one CD only")
	}
	ptr := h.ste[0] & steS1CtxPtr
	mem, err := at.stage2(ptr, va, iommu.Read, write, "CD fetch")
	if err != nil {
		return nil, err
	}
	var w [8]uint64
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(mem[8*i:]) // 64-byte aligned: within the page
	}
	cd, err := decodeCD(w)
	if err != nil {
		return nil, at.s1Event(smmuv3.EventBadCD, va, write, true, err.Error())
	}
	at.cd = cd
	return cd, nil
}

// stage1 translates va to an IPA under the device's CD: the walk cache
// first, else a walk whose descriptor reads go through stage 2.
func (at *Attachment) stage1(h *HWPT, va uint64, write bool) (ipa, leafEnd uint64, err error) {
	cd, err := at.fetchCD(h, va, write)
	if err != nil {
		return 0, 0, err
	}
	if cd.disabled {
		return 0, 0, at.s1Event(smmuv3.EventTranslation, va, write, cd.record, "TTB0 walks disabled (EPD0)")
	}
	p := h.viommu.parent
	e, size, ok := p.walkCache.lookup(cd.asid, va)
	if !ok {
		var s2err error
		read := func(ipa uint64) (uint64, bool) {
			mem, err := at.stage2(ipa, va, iommu.Read, write, "stage-1 table walk")
			if err != nil {
				s2err = err
				return 0, false
			}
			return binary.LittleEndian.Uint64(mem), true
		}
		levels := (cd.vaBits - 12 + 8) / 9
		out, perm, level, err := smmuv3.WalkLevel(read, cd.ttb0, 4-levels, cd.vaBits, va)
		switch {
		case s2err != nil:
			return 0, 0, s2err
		case errors.Is(err, smmuv3.ErrAccessFlag):
			return 0, 0, at.s1Event(smmuv3.EventAccess, va, write, cd.record, err.Error())
		case err != nil:
			return 0, 0, at.s1Event(smmuv3.EventTranslation, va, write, cd.record, err.Error())
		case out>>cd.oasBits != 0:
			return 0, 0, at.s1Event(smmuv3.EventAddrSize, va, write, cd.record, fmt.Sprintf("output %#x beyond %d bits", out, cd.oasBits))
		}
		size = uint64(1) << (12 + 9*(3-level))
		e = walkEntry{ipa: out &^ (size - 1), perm: perm}
		if p.walkCache == nil {
			p.walkCache = make(walkCache)
		}
		p.walkCache[walkKey{cd.asid, va &^ (size - 1), size}] = e
	}
	if write && e.perm&smmuv3.Write == 0 {
		return 0, 0, at.s1Event(smmuv3.EventPermission, va, write, cd.record, "write to a read-only page")
	}
	off := va & (size - 1)
	return e.ipa + off, size - off, nil
}

// runNested is the edu's DMA under a nested HWPT, page by page as QEMU's
// DMA does it: a page that faults is skipped (each reports its own
// fault) and the others land. It returns the first fault.
func (d *DMA) runNested(h *HWPT, va uint64, off, n int, write bool) error {
	at := d.at
	cfg := steConfig(h.ste)
	if cfg == cfgAbort {
		// An abort STE terminates silently: no event, no host log.
		return at.nestedFault(va, write, false, "vSTE aborts every transaction")
	}
	need := iommu.Read
	if write {
		need = iommu.Write
	}
	var first error
	for done := 0; done < n; {
		cur := va + uint64(done)
		chunk := min(uint64(n-done), pageSize-cur%pageSize)
		ipa := cur
		var err error
		if cfg == cfgS1 {
			var leafLeft uint64
			if ipa, leafLeft, err = at.stage1(h, cur, write); err == nil {
				chunk = min(chunk, leafLeft)
			}
		}
		var mem []byte
		if err == nil {
			mem, err = at.stage2(ipa, cur, need, write, "DMA")
		}
		if err != nil {
			if first == nil {
				first = err
			}
			done += int(chunk)
			continue
		}
		c := int(min(chunk, uint64(len(mem))))
		if write {
			copy(mem[:c], d.buf[off+done:off+done+c])
		} else {
			copy(d.buf[off+done:off+done+c], mem[:c])
		}
		done += c
	}
	return first
}
