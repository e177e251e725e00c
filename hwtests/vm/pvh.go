package vm

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// An x86 bzImage boots through SeaBIOS's linuxboot ROM and then inflates
// itself, both under TCG: about a second and a half of every boot, more on
// a loaded host. The same kernel as an uncompressed ELF with a PVH entry
// point (CONFIG_PVH, which Debian's amd64 kernel has) is loaded by QEMU
// itself and starts at once. pvhKernel makes that ELF from the bzImage,
// once per image, in the cache.

// errNoPVH means the image cannot boot through PVH; the caller boots the
// bzImage instead.
var errNoPVH = errors.New("no PVH entry point")

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY (xen/interface/elfnote.h):
// the note QEMU looks for to boot an ELF kernel through PVH.
const xenElfnotePhys32Entry = 18

// pvhKernel returns the cached PVH ELF of the bzImage at image, making it
// on first use; errNoPVH when the image has none.
func pvhKernel(c Cache, image string) (string, error) {
	st, err := os.Stat(image)
	if err != nil {
		return "", err
	}
	key := Key(filepath.Base(image), image, fmt.Sprint(st.Size(), st.ModTime().UnixNano()))
	dir, _, err := c.Fill("pvh", key, func(staging string) error {
		b, err := os.ReadFile(image)
		if err != nil {
			return err
		}
		vmlinux, err := bzImagePayload(b)
		if err != nil {
			return err
		}
		if err := checkPVH(vmlinux); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(staging, "vmlinux"), vmlinux, 0o644)
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "vmlinux"), nil
}

// bzImagePayload returns the uncompressed kernel ELF inside a bzImage:
// the payload the boot protocol's header (arch/x86/boot/header.S) points
// at, zstd or gzip compressed.
func bzImagePayload(b []byte) ([]byte, error) {
	const (
		setupSectsOff  = 0x1f1
		magicOff       = 0x202
		payloadOffOff  = 0x248
		payloadLenOff  = 0x24c
		minHeaderBytes = payloadLenOff + 4
	)
	if len(b) < minHeaderBytes || string(b[magicOff:magicOff+4]) != "HdrS" {
		return nil, fmt.Errorf("not a bzImage: %w", errNoPVH)
	}
	setup := int(b[setupSectsOff])
	if setup == 0 {
		setup = 4
	}
	start := (setup+1)*512 + int(binary.LittleEndian.Uint32(b[payloadOffOff:]))
	n := int(binary.LittleEndian.Uint32(b[payloadLenOff:]))
	if start < 0 || n < 4 || start+n > len(b) {
		return nil, fmt.Errorf("bzImage payload %d+%d outside its %d bytes", start, n, len(b))
	}
	payload := b[start : start+n]
	switch {
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// Kbuild appends the uncompressed size after the frame.
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(payload[:n-4], nil)
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		return io.ReadAll(zr)
	}
	return nil, fmt.Errorf("bzImage payload compressed with neither zstd nor gzip (starts % x): %w", payload[:4], errNoPVH)
}

// checkPVH wants an ELF carrying the Xen PHYS32_ENTRY note.
func checkPVH(vmlinux []byte) error {
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return fmt.Errorf("bzImage payload: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return err
		}
		for len(notes) >= 12 {
			namesz := int(f.ByteOrder.Uint32(notes))
			descsz := int(f.ByteOrder.Uint32(notes[4:]))
			typ := f.ByteOrder.Uint32(notes[8:])
			nameEnd := 12 + namesz
			next := 12 + align4(namesz) + align4(descsz)
			if namesz < 0 || descsz < 0 || next > len(notes) {
				break
			}
			if typ == xenElfnotePhys32Entry && string(bytes.TrimRight(notes[12:nameEnd], "\x00")) == "Xen" {
				return nil
			}
			notes = notes[next:]
		}
	}
	return errNoPVH
}

func align4(n int) int { return (n + 3) &^ 3 }
