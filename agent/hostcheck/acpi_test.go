package hostcheck

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// acpiTable builds an ACPI table: the 36-byte header (signature, length),
// the fixed part after it, then the sub-structures.
func acpiTable(sig string, fixed []byte, subs ...[]byte) []byte {
	b := make([]byte, acpiHeader)
	copy(b, sig)
	b = append(b, fixed...)
	for _, s := range subs {
		b = append(b, s...)
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

// dmarEntry is a DMAR remapping structure: u16 type, u16 length.
func dmarEntry(typ, n int) []byte {
	b := make([]byte, n)
	binary.LittleEndian.PutUint16(b, uint16(typ))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	return b
}

// ivrsBlock is an IVHD/IVMD block: u8 type, u8 flags, u16 length.
func ivrsBlock(typ byte, n int) []byte {
	b := make([]byte, n)
	b[0] = typ
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	return b
}

// iortNode is an IORT node: u8 type, u16 length, u8 revision.
func iortNode(typ byte, n int) []byte {
	b := make([]byte, n)
	b[0] = typ
	binary.LittleEndian.PutUint16(b[1:], uint16(n))
	return b
}

func dmarFixed(width, flags byte) []byte { return append([]byte{width, flags}, make([]byte, 10)...) }

func ivrsFixed(info uint32) []byte {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b, info)
	return b
}

func iortFixed(count uint32) []byte {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b, count)
	binary.LittleEndian.PutUint32(b[4:], 48)
	return b
}

// A one-unit DMAR: one DRHD, 48-bit (width field 47), INTR_REMAP and
// X2APIC_OPT_OUT.
func qemuDMAR() []byte { return acpiTable("DMAR", dmarFixed(47, 3), dmarEntry(0, 16)) }

func TestSummarizeTables(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want string
		smmus      int
		err        error
		sum        func() (string, int, error)
	}{
		{name: "DMAR", want: "DMAR: 48-bit host addresses, 1 DRHD, flags INTR_REMAP X2APIC_OPT_OUT", smmus: -1,
			sum: func() (string, int, error) { s, err := summarizeDMAR(qemuDMAR()); return s, -1, err }},
		{name: "DMAR, several and no flags", want: "DMAR: 46-bit host addresses, 2 DRHD, 1 RMRR, 1 SATC, 1 type 9, no flags (INTR_REMAP clear", smmus: -1,
			sum: func() (string, int, error) {
				s, err := summarizeDMAR(acpiTable("DMAR", dmarFixed(45, 0), dmarEntry(0, 16), dmarEntry(1, 24), dmarEntry(0, 24), dmarEntry(5, 8), dmarEntry(9, 4)))
				return s, -1, err
			}},
		{name: "DMAR, platform opt-in, truncated entry", want: "DMAR: 39-bit host addresses, 1 DRHD, flags INTR_REMAP PLATFORM_OPT_IN", smmus: -1, err: errShortTable,
			sum: func() (string, int, error) {
				s, err := summarizeDMAR(acpiTable("DMAR", dmarFixed(38, 5), dmarEntry(0, 16), []byte{1, 0, 200, 0}))
				return s, -1, err
			}},
		{name: "IVRS", want: "IVRS: IVHD blocks of type 0x10, 0x11, 1 IVMD (reserved memory), 48-bit physical addresses, 64-bit virtual addresses, EFRSup", smmus: -1,
			sum: func() (string, int, error) {
				s, err := summarizeIVRS(acpiTable("IVRS", ivrsFixed(64<<15|48<<8|1), ivrsBlock(0x10, 24), ivrsBlock(0x11, 40), ivrsBlock(0x20, 32)))
				return s, -1, err
			}},
		{name: "IVRS, DMA remap since boot", want: "IVRS: IVHD blocks of type 0x40, 52-bit physical addresses, 57-bit virtual addresses, DMA remapping since boot, ATS translation range reserved", smmus: -1,
			sum: func() (string, int, error) {
				s, err := summarizeIVRS(acpiTable("IVRS", ivrsFixed(1<<22|57<<15|52<<8|2), ivrsBlock(0x40, 40)))
				return s, -1, err
			}},
		{name: "IORT with an SMMUv3", want: "IORT: 1 ITS group, 1 SMMUv3, 1 root complex", smmus: 1,
			sum: func() (string, int, error) {
				return summarizeIORT(acpiTable("IORT", iortFixed(3), iortNode(0, 24), iortNode(4, 68), iortNode(2, 36)))
			}},
		{name: "IORT without an SMMU (QEMU virt without iommu=smmuv3)", want: "IORT: 1 ITS group, 1 root complex (no SMMU node)", smmus: 0,
			sum: func() (string, int, error) {
				return summarizeIORT(acpiTable("IORT", iortFixed(2), iortNode(0, 24), iortNode(2, 36)))
			}},
		{name: "IORT node count past the end", want: "IORT: 1 SMMUv3", smmus: 1, err: errShortTable,
			sum: func() (string, int, error) { return summarizeIORT(acpiTable("IORT", iortFixed(2), iortNode(4, 68))) }},
	} {
		got, smmus, err := tc.sum()
		if !strings.HasPrefix(got, tc.want) || smmus != tc.smmus || !errors.Is(err, tc.err) && (tc.err != nil || err != nil) {
			t.Errorf("%s: %q, %d SMMUs, %v; want %q, %d, %v", tc.name, got, smmus, err, tc.want, tc.smmus, tc.err)
		}
	}
	// Not a table, or its header lies.
	if _, err := summarizeDMAR([]byte("DMAR")); err == nil {
		t.Error("4 bytes summarized")
	}
	if _, err := summarizeIVRS(append(acpiTable("DMAR", dmarFixed(1, 0)), 0)); err == nil {
		t.Error("a DMAR summarized as IVRS")
	}
	b := qemuDMAR()
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)+1))
	if _, err := summarizeDMAR(b); !errors.Is(err, errShortTable) {
		t.Errorf("length past the data: %v", err)
	}
}

// FuzzSummarizeTables: any bytes give a summary or an error, never a panic
// or a loop.
func FuzzSummarizeTables(f *testing.F) {
	f.Add(qemuDMAR())
	f.Add(acpiTable("IVRS", ivrsFixed(1), ivrsBlock(0x10, 24)))
	f.Add(acpiTable("IORT", iortFixed(2), iortNode(0, 24), iortNode(4, 68)))
	f.Add([]byte("IORT"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, sig := range []string{"DMAR", "IVRS", "IORT"} {
			if len(b) >= 4 {
				copy(b, sig)
			}
			var s string
			var err error
			switch sig {
			case "DMAR":
				s, err = summarizeDMAR(b)
			case "IVRS":
				s, err = summarizeIVRS(b)
			default:
				var n int
				s, n, err = summarizeIORT(b)
				if n < -1 || err == nil && n < 0 {
					t.Errorf("IORT SMMUs %d with error %v", n, err)
				}
			}
			if s == "" && err == nil {
				t.Errorf("%s: neither summary nor error", sig)
			}
		}
	})
}

func TestFirmwareTables(t *testing.T) {
	t.Parallel()
	h := intelHost(t).file("sys/firmware/acpi/tables/DMAR", string(qemuDMAR()))
	checkFindings(t, h.findings(), map[string]want{
		"firmware": {status: Pass, detail: []string{"ACPI DMAR table present", "DMAR: 48-bit host addresses, 1 DRHD, flags INTR_REMAP X2APIC_OPT_OUT"}},
	})
	// An unreadable table (not root) is named, with why its contents are not.
	h = intelHost(t)
	checkFindings(t, h.findings(), map[string]want{
		"firmware": {status: Pass, detail: []string{"DMAR (contents unread: "}},
	})
	// Arm: an IORT without an SMMU node and no unit is no SMMU.
	iort := acpiTable("IORT", iortFixed(2), iortNode(0, 24), iortNode(2, 36))
	h = newFakeHost(t).cpu("arm64").file("sys/firmware/acpi/tables/IORT", string(iort))
	checkFindings(t, h.findings(), map[string]want{
		"firmware": {status: Fail, detail: []string{"without an SMMU node", "1 ITS group, 1 root complex"}, fix: []string{"iommu=smmuv3"}},
	})
	iort = acpiTable("IORT", iortFixed(3), iortNode(0, 24), iortNode(4, 68), iortNode(2, 36))
	h = newFakeHost(t).cpu("arm64").file("sys/firmware/acpi/tables/IORT", string(iort)).smmuUnit("smmu3.0x0000000009050000")
	checkFindings(t, h.findings(), map[string]want{
		"firmware": {status: Pass, detail: []string{"ACPI IORT table present", "1 SMMUv3"}},
	})
	// AMD: QEMU's amd-iommu IVRS as the x86_64-amdvi guest reads it: IVHD
	// 10h and 11h, 40-bit physical, VAsize 0, EFRSup.
	ivrs := acpiTable("IVRS", ivrsFixed(40<<8|1), ivrsBlock(0x10, 24), ivrsBlock(0x11, 40))
	h = newFakeHost(t).cpu("AuthenticAMD").file("sys/firmware/acpi/tables/IVRS", string(ivrs)).amdUnit("ivhd0")
	checkFindings(t, h.findings(), map[string]want{
		"firmware": {status: Pass, detail: []string{"ACPI IVRS table present",
			"IVRS: IVHD blocks of type 0x10, 0x11, 40-bit physical addresses, no virtual address size given, EFRSup"}},
	})
}
