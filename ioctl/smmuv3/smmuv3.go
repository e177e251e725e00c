// Package smmuv3 holds what a VMM writes and reads for nested translation
// on an Arm SMMUv3: the vSTE words a nested HWPT carries, the context
// descriptor it points at, VMSAv8-64 stage-1 translation tables with a
// 4 KiB granule, the commands an invalidation passes through the vIOMMU,
// and the event records a vEVENTQ returns.
//
// Layouts follow the SMMUv3 architecture (Arm IHI 0070, sections 5.2 STE,
// 5.4 CD, 4 commands, 7.3 events) and VMSAv8-64 (Arm ARM D8), named as
// the kernel's drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h names them. All
// addresses in them are IPAs: stage-2 (the IOAS) translates them.
package smmuv3

import (
	"errors"
	"fmt"
)

// Config is an STE's Config field (STE bits 3:1).
type Config uint8

// The configurations a vSTE may ask for (arm_smmu_validate_vste refuses
// the others with EIO).
const (
	ConfigAbort   Config = 0 // every transaction aborts, no event
	ConfigBypass  Config = 4 // stage 1 bypassed: stage 2 alone translates
	ConfigS1Trans Config = 5 // stage 1 translates through the CD
)

// STE word 0 and 1 fields a vSTE carries (STRTAB_STE_0_NESTING_ALLOWED and
// STRTAB_STE_1_NESTING_ALLOWED).
const (
	ste0Valid       = 1 << 0
	ste0ConfigShift = 1
	ste0S1CtxPtr    = 0x000f_ffff_ffff_ffc0 // bits 51:6
	ste1S1CIRShift  = 2                     // inner cacheability of CD and table walks
	ste1S1CORShift  = 4                     // outer
	ste1S1CSHShift  = 6                     // shareability
	cacheWBRA       = 1                     // write-back, read-allocate
	shareInner      = 3
)

// VSTE returns the two vSTE words for a nested HWPT (iommufd's
// ARMSMMUv3STE): abort, bypass, or stage 1 through the single CD at
// cdIPA (linear format, S1CDMax 0), walked write-back and inner
// shareable. cdIPA must be 64-byte aligned and below 2^52.
func VSTE(cfg Config, cdIPA uint64) ([2]uint64, error) {
	switch cfg {
	case ConfigAbort, ConfigBypass:
		return [2]uint64{ste0Valid | uint64(cfg)<<ste0ConfigShift, 0}, nil
	case ConfigS1Trans:
		if cdIPA&^ste0S1CtxPtr != 0 {
			return [2]uint64{}, fmt.Errorf("CD at IPA %#x: not 64-byte aligned below 2^52", cdIPA)
		}
		return [2]uint64{
			ste0Valid | uint64(cfg)<<ste0ConfigShift | cdIPA,
			cacheWBRA<<ste1S1CIRShift | cacheWBRA<<ste1S1CORShift | shareInner<<ste1S1CSHShift,
		}, nil
	}
	return [2]uint64{}, fmt.Errorf("STE config %d: not one a vSTE may carry (abort 0, bypass 4, stage 1 5)", cfg)
}

// CD word 0 fields (CTXDESC_CD_0_*).
const (
	cd0T0SZShift  = 0  // 6 bits
	cd0TG0Shift   = 6  // 0: 4 KiB
	cd0IRGN0Shift = 8  // table walk inner cacheability
	cd0ORGN0Shift = 10 // outer
	cd0SH0Shift   = 12
	cd0EPD1       = 1 << 30 // no TTB1 walks
	cd0Valid      = 1 << 31
	cd0IPSShift   = 32 // 3 bits
	cd0AA64       = 1 << 41
	cd0R          = 1 << 45 // record faults
	cd0A          = 1 << 46 // abort (not stall) on fault
	cd0ASET       = 1 << 47 // ASID not shared with the CPU's
	cd0ASIDShift  = 48
	cd1TTB0Mask   = 0x000f_ffff_ffff_fff0 // bits 51:4
)

// CDBytes is a context descriptor's size.
const CDBytes = 64

// IPS values (CD.IPS): the intermediate physical address size.
var ipsBits = map[uint8]int{0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52}

// CD is a stage-1 context descriptor for a 4 KiB-granule AArch64 table
// walked from TTB0; TTB1 walks are off.
type CD struct {
	ASID uint16
	TTB0 uint64 // IPA of the first-level table
	// T0SZ gives the VA size, 64-T0SZ bits (25: 39 bits, a walk from
	// level 1); IPS the IPA size (2: 40 bits).
	T0SZ uint8
	IPS  uint8
	// MAIR is the memory attribute array; attribute 0 is what the
	// tables' pages use (0xff: normal memory, write-back).
	MAIR uint64
}

// Words encodes the CD's eight 64-bit words (little-endian in memory).
func (c CD) Words() ([8]uint64, error) {
	var w [8]uint64
	if c.T0SZ < 16 || c.T0SZ > 39 {
		return w, fmt.Errorf("T0SZ %d: want 16-39 (48- to 25-bit VAs) for a 4 KiB granule", c.T0SZ)
	}
	if _, ok := ipsBits[c.IPS]; !ok {
		return w, fmt.Errorf("IPS %d: not an encoding (0-6)", c.IPS)
	}
	if c.TTB0&^cd1TTB0Mask != 0 || c.TTB0%pageSize != 0 {
		return w, fmt.Errorf("TTB0 %#x: not a 4 KiB-aligned IPA below 2^52", c.TTB0)
	}
	w[0] = uint64(c.T0SZ)<<cd0T0SZShift | 0<<cd0TG0Shift |
		cacheWBRA<<cd0IRGN0Shift | cacheWBRA<<cd0ORGN0Shift | shareInner<<cd0SH0Shift |
		cd0EPD1 | cd0Valid | uint64(c.IPS)<<cd0IPSShift | cd0AA64 | cd0R | cd0A | cd0ASET |
		uint64(c.ASID)<<cd0ASIDShift
	w[1] = c.TTB0
	w[3] = c.MAIR
	return w, nil
}

// ErrNotMapped is a walk that found no valid descriptor for the VA (the
// SMMU's F_TRANSLATION).
var ErrNotMapped = errors.New("no stage-1 mapping")

// ErrAccessFlag is a walk that reached a page or block whose access flag
// is clear: an SMMU without hardware access-flag updates (HTTU, which
// QEMU's lacks) reports F_ACCESS, not F_TRANSLATION.
var ErrAccessFlag = errors.New("stage-1 access flag clear")
