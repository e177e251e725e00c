package vm

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// tinyELF is an ELF64 header and one PT_NOTE segment holding a note of
// the given name and type.
func tinyELF(name string, typ uint32) []byte {
	le := binary.LittleEndian
	note := make([]byte, 12)
	le.PutUint32(note, uint32(len(name)+1))
	le.PutUint32(note[4:], 4)
	le.PutUint32(note[8:], typ)
	note = append(note, name...)
	note = append(note, make([]byte, align4(len(name)+1)-len(name))...)
	note = append(note, 0, 0, 0, 1) // the entry point, as desc

	const ehsize, phsize = 64, 56
	b := make([]byte, ehsize+phsize)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1       // ELFCLASS64, little endian, EV_CURRENT
	le.PutUint16(b[16:], uint16(2))  // ET_EXEC
	le.PutUint16(b[18:], uint16(62)) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[32:], ehsize) // phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], 1) // phnum
	ph := b[ehsize:]
	le.PutUint32(ph, 4)                      // PT_NOTE
	le.PutUint64(ph[8:], uint64(len(b)))     // offset
	le.PutUint64(ph[32:], uint64(len(note))) // filesz
	le.PutUint64(ph[40:], uint64(len(note))) // memsz
	return append(b, note...)
}

// tinyBzImage wraps payload as a bzImage's boot header would point at it.
func tinyBzImage(payload []byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, 5*512) // 4 setup sectors + the boot sector
	b[0x1f1] = 4
	copy(b[0x202:], "HdrS")
	le.PutUint32(b[0x248:], 0)
	le.PutUint32(b[0x24c:], uint32(len(payload)))
	return append(b, payload...)
}

func zstdPayload(t *testing.T, b []byte) []byte {
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := e.EncodeAll(b, nil)
	return binary.LittleEndian.AppendUint32(out, uint32(len(b))) // Kbuild's size_append
}

func gzipPayload(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBzImagePVH(t *testing.T) {
	pvh := tinyELF("Xen", xenElfnotePhys32Entry)
	other := tinyELF("Xen", 6) // XEN_ELFNOTE_GUEST_OS: no entry point
	for _, c := range []struct {
		name    string
		image   []byte
		want    []byte
		wantErr error
	}{
		{"zstd with PVH", tinyBzImage(zstdPayload(t, pvh)), pvh, nil},
		{"gzip with PVH", tinyBzImage(gzipPayload(t, pvh)), pvh, nil},
		{"zstd without PVH", tinyBzImage(zstdPayload(t, other)), other, errNoPVH},
		{"lz4", tinyBzImage([]byte{0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0}), nil, errNoPVH},
		{"not a bzImage", make([]byte, 4096), nil, errNoPVH},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := bzImagePayload(c.image)
			if c.want == nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("payload: %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("payload is %d bytes, want the %d of the ELF", len(got), len(c.want))
			}
			if err := checkPVH(got); !errors.Is(err, c.wantErr) {
				t.Fatalf("checkPVH: %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestPVHKernelCached(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	image := t.TempDir() + "/vmlinuz-test"
	if err := os.WriteFile(image, tinyBzImage(zstdPayload(t, tinyELF("Xen", xenElfnotePhys32Entry))), 0o644); err != nil {
		t.Fatal(err)
	}
	p1, err := pvhKernel(c, image)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := pvhKernel(c, image)
	if err != nil || p2 != p1 {
		t.Fatalf("second call: %q, %v; want the cached %q", p2, err, p1)
	}
}
