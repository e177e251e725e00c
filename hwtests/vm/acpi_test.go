package vm

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// qemuLikeIORT builds an IORT shaped like QEMU 10's for virt,iommu=smmuv3:
// an ITS group, an SMMUv3 and a root complex with memory flags 0x3.
func qemuLikeIORT(t *testing.T) []byte {
	t.Helper()
	le := binary.LittleEndian
	node := func(typ byte, n int) []byte {
		b := make([]byte, n)
		b[0] = typ
		le.PutUint16(b[1:], uint16(n))
		return b
	}
	its := node(0, 24)
	smmu := node(4, 88)
	rc := node(iortNodeRC, 56)
	le.PutUint32(rc[16:], 1) // CCA
	rc[iortRCMemFlagsOff] = 0x3
	body := bytes.Join([][]byte{its, smmu, rc}, nil)
	tab := make([]byte, iortHeaderLen, iortHeaderLen+len(body))
	copy(tab, "IORT")
	tab[8] = 3
	copy(tab[10:], "BOCHS ")
	copy(tab[16:], "BXPC    ")
	le.PutUint32(tab[acpiOEMRevisionOff:], 1)
	le.PutUint32(tab[iortNodeCountOff:], 3)
	le.PutUint32(tab[iortNodeOffsetOff:], iortHeaderLen)
	tab = append(tab, body...)
	le.PutUint32(tab[acpiLengthOff:], uint32(len(tab)))
	tab[acpiChecksumOff] = -checksum(tab)
	return tab
}

func TestPatchIORTCANWBS(t *testing.T) {
	in := qemuLikeIORT(t)
	orig := bytes.Clone(in)
	out, err := PatchIORTCANWBS(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, orig) {
		t.Error("the input table was modified")
	}
	if got := IORTRootComplexFlags(out); !bytes.Equal(got, []byte{0x7}) {
		t.Errorf("root complex memory flags %#v, want [0x7]", got)
	}
	if checksum(out) != 0 {
		t.Errorf("patched table sums to %#x", checksum(out))
	}
	if got := binary.LittleEndian.Uint32(out[acpiOEMRevisionOff:]); got != 2 {
		t.Errorf("OEM revision %d, want 2 (raised from 1)", got)
	}
	// Only the flags byte, the revision and the checksum change.
	diff := 0
	for i := range in {
		if in[i] != out[i] {
			diff++
		}
	}
	if diff != 3 {
		t.Errorf("%d bytes changed, want 3", diff)
	}
	// A patched table patches again (a second upgrade raises again).
	if _, err := PatchIORTCANWBS(out); err != nil {
		t.Errorf("patching the patched table: %v", err)
	}
}

func TestPatchIORTRefuses(t *testing.T) {
	le := binary.LittleEndian
	fix := func(b []byte) []byte {
		b[acpiChecksumOff] = 0
		b[acpiChecksumOff] = -checksum(b)
		return b
	}
	for name, c := range map[string]struct {
		mutate func([]byte) []byte
		want   string
	}{
		"short":        {func(b []byte) []byte { return b[:20] }, "shorter"},
		"signature":    {func(b []byte) []byte { copy(b, "DMAR"); return fix(b) }, "signature"},
		"length":       {func(b []byte) []byte { le.PutUint32(b[acpiLengthOff:], 999); return fix(b) }, "header says"},
		"checksum":     {func(b []byte) []byte { b[acpiChecksumOff]++; return b }, "sum"},
		"node past":    {func(b []byte) []byte { le.PutUint32(b[iortNodeCountOff:], 9); return fix(b) }, "runs past"},
		"node length":  {func(b []byte) []byte { le.PutUint16(b[iortHeaderLen+1:], 0); return fix(b) }, "length 0"},
		"node too big": {func(b []byte) []byte { le.PutUint16(b[iortHeaderLen+1:], 0xffff); return fix(b) }, "length 65535"},
		"no rc": {func(b []byte) []byte {
			le.PutUint32(b[iortNodeCountOff:], 2)
			return fix(b)
		}, "no PCI root complex"},
		"max revision": {func(b []byte) []byte {
			le.PutUint32(b[acpiOEMRevisionOff:], ^uint32(0))
			return fix(b)
		}, "largest"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := PatchIORTCANWBS(c.mutate(qemuLikeIORT(t)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

func FuzzPatchIORT(f *testing.F) {
	f.Add(qemuLikeIORT(&testing.T{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := PatchIORTCANWBS(b)
		if err != nil {
			return
		}
		if len(out) != len(b) || checksum(out) != 0 {
			t.Fatalf("patched table: %d bytes (had %d), sum %#x", len(out), len(b), checksum(out))
		}
		for _, f := range IORTRootComplexFlags(out) {
			if f&iortMemFlagCANWBS == 0 {
				t.Fatalf("a root complex lacks CANWBS after the patch: %#x", f)
			}
		}
		IORTRootComplexFlags(b)
	})
}

func TestACPIUpgradeCPIO(t *testing.T) {
	tab := qemuLikeIORT(t)
	b, err := acpiUpgradeCPIO(tab)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%512 != 0 {
		t.Errorf("archive is %d bytes, not a multiple of 512", len(b))
	}
	// The archive proper ends with the trailer's name, its NUL and the
	// 4-byte alignment; zeros pad it from there.
	n := len(bytes.TrimRight(b, "\x00"))
	entries := readNewc(t, b[:(n+1+3)&^3])
	var names []string
	for _, e := range entries {
		names = append(names, e.name)
		if e.name == iortUpgradePath && !bytes.Equal(e.data, tab) {
			t.Errorf("%s in the archive: %d bytes, want the %d-byte table", iortUpgradePath, len(e.data), len(tab))
		}
	}
	if want := []string{"kernel", "kernel/firmware", "kernel/firmware/acpi", iortUpgradePath}; !slices.Equal(names, want) {
		t.Errorf("archive holds %q, want %q", names, want)
	}
}
