package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

// The SMMUv3 driver allocates a vIOMMU (nesting) only when the SMMU has
// S2FWB or the master's PCI root complex is declared CANWBS in the ACPI
// IORT (arm_smmu_get_viommu_size). QEMU's SMMUv3 has no S2FWB and its
// IORT root complex declares memory flags 0x3 (CCA, CPM), so the own
// kernel's arm64 lane boots through UEFI/ACPI and upgrades the IORT from
// the initrd, as firmware of coherent hardware would declare it. TCG
// memory is coherent, so the declaration is true.
//
// ACPI table header (ACPI 6.5, 5.2.6) and IORT (DEN0049) offsets.
const (
	acpiHeaderLen      = 36
	acpiLengthOff      = 4
	acpiChecksumOff    = 9
	acpiOEMRevisionOff = 24

	iortNodeCountOff  = 36
	iortNodeOffsetOff = 40
	iortHeaderLen     = 48

	iortNodeHeaderLen = 16 // type u8, length u16, revision u8, id u32, mappings u32, offset u32
	iortNodeRC        = 2  // PCI root complex
	// In a root complex node the memory access properties follow the
	// node header: cache coherency u32, allocation hints u8, reserved
	// u16, then the memory access flags byte.
	iortRCMemFlagsOff = iortNodeHeaderLen + 7
	iortMemFlagCANWBS = 1 << 2 // ACPI_IORT_MF_CANWBS
)

// iortUpgradePath is where the kernel's ACPI table upgrade looks for
// tables in an uncompressed cpio at the start of the initrd
// (Documentation/admin-guide/acpi/initrd_table_override.rst).
const iortUpgradePath = "kernel/firmware/acpi/iort.aml"

// PatchIORTCANWBS returns a copy of the IORT table with every PCI root
// complex node declaring CANWBS, its OEM revision raised by one (the
// kernel ignores an upgrade that does not raise it) and its checksum
// fixed. It fails on anything that is not a well-formed IORT with at
// least one root complex.
func PatchIORTCANWBS(table []byte) ([]byte, error) {
	if len(table) < iortHeaderLen {
		return nil, fmt.Errorf("IORT: %d bytes, shorter than its %d-byte header", len(table), iortHeaderLen)
	}
	if sig := string(table[:4]); sig != "IORT" {
		return nil, fmt.Errorf("IORT: signature %q", sig)
	}
	le := binary.LittleEndian
	if n := le.Uint32(table[acpiLengthOff:]); int64(n) != int64(len(table)) {
		return nil, fmt.Errorf("IORT: header says %d bytes, have %d", n, len(table))
	}
	if sum := checksum(table); sum != 0 {
		return nil, fmt.Errorf("IORT: bytes sum to %#x mod 256, want 0", sum)
	}
	t := bytes.Clone(table)
	count, off := le.Uint32(t[iortNodeCountOff:]), uint64(le.Uint32(t[iortNodeOffsetOff:]))
	rcs := 0
	for i := range count {
		if off+iortNodeHeaderLen > uint64(len(t)) {
			return nil, fmt.Errorf("IORT: node %d at %#x runs past the table (%d bytes)", i, off, len(t))
		}
		typ, n := t[off], uint64(le.Uint16(t[off+1:]))
		if n < iortNodeHeaderLen || off+n > uint64(len(t)) {
			return nil, fmt.Errorf("IORT: node %d at %#x has length %d", i, off, n)
		}
		if typ == iortNodeRC {
			if n <= iortRCMemFlagsOff {
				return nil, fmt.Errorf("IORT: root complex node %d at %#x has length %d, too short for its memory access flags", i, off, n)
			}
			t[off+iortRCMemFlagsOff] |= iortMemFlagCANWBS
			rcs++
		}
		off += n
	}
	if rcs == 0 {
		return nil, errors.New("IORT: no PCI root complex node")
	}
	rev := le.Uint32(t[acpiOEMRevisionOff:])
	if rev == ^uint32(0) {
		return nil, errors.New("IORT: OEM revision is already the largest, an upgrade cannot raise it")
	}
	le.PutUint32(t[acpiOEMRevisionOff:], rev+1)
	t[acpiChecksumOff] = 0
	t[acpiChecksumOff] = -checksum(t)
	return t, nil
}

// IORTRootComplexFlags returns the memory access flags of each PCI root
// complex node, in table order (for tests and logs).
func IORTRootComplexFlags(table []byte) []byte {
	if len(table) < iortHeaderLen {
		return nil
	}
	le := binary.LittleEndian
	var flags []byte
	off := uint64(le.Uint32(table[iortNodeOffsetOff:]))
	for range le.Uint32(table[iortNodeCountOff:]) {
		if off+iortNodeHeaderLen > uint64(len(table)) {
			break
		}
		n := uint64(le.Uint16(table[off+1:]))
		if n < iortNodeHeaderLen || off+n > uint64(len(table)) {
			break
		}
		if table[off] == iortNodeRC && n > iortRCMemFlagsOff {
			flags = append(flags, table[off+iortRCMemFlagsOff])
		}
		off += n
	}
	return flags
}

// checksum is the sum of b's bytes mod 256.
func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// acpiUpgradeCPIO is the uncompressed newc archive the kernel scans for
// table upgrades before it unpacks the initramfs; the compressed
// initramfs follows it in the same initrd.
func acpiUpgradeCPIO(iort []byte) ([]byte, error) {
	var b bytes.Buffer
	w := newCPIOWriter(&b)
	w.File(iortUpgradePath, 0o644, iort)
	if err := w.Close(); err != nil {
		return nil, err
	}
	// Pad to a 512-byte boundary, as initramfs tools do between
	// concatenated archives.
	if r := b.Len() % 512; r != 0 {
		b.Write(make([]byte, 512-r))
	}
	return b.Bytes(), nil
}

// iortRecipeRevision is part of the IORT cache key: bump it when the dump
// or the patch changes in a way the key's inputs do not show.
const iortRecipeRevision = "1"

// iortTablePath is where the guest kernel shows the firmware's IORT.
const iortTablePath = "/sys/firmware/acpi/tables/IORT"

// upgradedIORT returns the IORT to hand the lane's kernel: QEMU's own
// table (read by a first boot with no tests, which copies it out of the
// guest's sysfs) patched by PatchIORTCANWBS. QEMU writes the IORT from the
// machine and its devices, so the entry is keyed by QEMU's version, the
// lane's board, the firmware and the device list; later runs take it from
// the cache without a boot.
func upgradedIORT(ctx context.Context, c Cache, cfg Config, k Kernel, binDir, runDir, accel string, log *slog.Logger) ([]byte, error) {
	l := cfg.Lane
	version, err := command(ctx, "", l.QEMU, "--version")
	if err != nil {
		return nil, err
	}
	fw, err := os.ReadFile(l.Firmware)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(fw)
	first, _, _ := strings.Cut(string(version), "\n")
	key := Key("iort-"+l.Name, iortRecipeRevision, first, strings.Join(l.Machine, " "), l.TCGCPU,
		hex.EncodeToString(sum[:]), cfg.Devices.String(), cfg.Memory)
	dir, built, err := c.Fill("acpi", key, func(staging string) error {
		orig, err := dumpIORT(ctx, cfg, k, binDir, runDir, accel, log)
		if err != nil {
			return err
		}
		patched, err := PatchIORTCANWBS(orig)
		if err != nil {
			return err
		}
		log.Info("IORT upgrade", "firmware_rc_flags", fmt.Sprintf("%#x", IORTRootComplexFlags(orig)),
			"upgraded_rc_flags", fmt.Sprintf("%#x", IORTRootComplexFlags(patched)))
		if err := os.WriteFile(filepath.Join(staging, "IORT"), orig, 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(staging, "iort.aml"), patched, 0o644)
	})
	if err != nil {
		return nil, err
	}
	if !built {
		log.Info("IORT upgrade from cache", "dir", dir)
	}
	return os.ReadFile(filepath.Join(dir, "iort.aml"))
}

// dumpIORT boots the lane with no tests and reads back the IORT its
// firmware gave the kernel.
func dumpIORT(ctx context.Context, cfg Config, k Kernel, binDir, runDir, accel string, log *slog.Logger) ([]byte, error) {
	dumpDir := filepath.Join(runDir, "iort-dump")
	outDir := filepath.Join(dumpDir, "out")
	if err := os.MkdirAll(filepath.Join(outDir, "cover"), 0o777); err != nil {
		return nil, err
	}
	_, initrd, err := pack(cfg, k, "", nil, binDir, dumpDir, accel, packExtras{Collect: []string{iortTablePath}})
	if err != nil {
		return nil, err
	}
	p := NewParser(io.Discard, log, nil, cfg.Lane.Output == wire.OutputKmsg)
	spec := BootSpec{
		Lane: cfg.Lane, Accel: accel, Memory: cfg.Memory, SMP: cfg.SMP,
		Kernel: k.Image(), Initrd: initrd, Devices: cfg.Devices,
		ConsoleLog: filepath.Join(dumpDir, "console.log"), HostRoot: "/", OutDir: outDir,
	}
	br := Boot(ctx, spec, BootOptions{Timeout: 3 * time.Minute, StderrLog: filepath.Join(dumpDir, "qemu.log")}, p, log)
	if err := bootError(br, 3*time.Minute); err != nil {
		return nil, fmt.Errorf("boot to read the firmware's IORT (console: %s): %w", spec.ConsoleLog, err)
	}
	b, err := os.ReadFile(filepath.Join(outDir, strings.TrimPrefix(wire.CollectDir, "/out/"), filepath.Base(iortTablePath)))
	if err != nil {
		return nil, fmt.Errorf("the guest copied no IORT (does the firmware give ACPI? console: %s): %w", spec.ConsoleLog, err)
	}
	return b, nil
}
