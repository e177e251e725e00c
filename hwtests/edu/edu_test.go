package edu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

const (
	fakeBAR0   = 0
	fakeConfig = 0x70000000000
)

// fakeEdu models the registers edu.rst documents, with a flat RAM standing
// in for bus addresses, so the driver's sequencing is tested without QEMU.
type fakeEdu struct {
	t        *testing.T
	regs     map[int64]uint64
	cmdReg   uint16
	buf      [BufferSize]byte
	ram      []byte
	accesses []int64
}

func newFake(t *testing.T) *fakeEdu {
	return &fakeEdu{t: t, regs: map[int64]uint64{regID: 0x010000ed}, ram: make([]byte, 1<<20)}
}

func (f *fakeEdu) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case off == fakeConfig+pciCommand && len(p) == 2:
		binary.LittleEndian.PutUint16(p, f.cmdReg)
	case off < fakeConfig && len(p) == 4:
		v := f.regs[off-fakeBAR0]
		if off-fakeBAR0 == regLiveness {
			v = uint64(^uint32(v))
		}
		binary.LittleEndian.PutUint32(p, uint32(v))
	default:
		f.t.Fatalf("unexpected read of %d bytes at %#x", len(p), off)
	}
	return len(p), nil
}

func (f *fakeEdu) WriteAt(p []byte, off int64) (int, error) {
	switch {
	case off == fakeConfig+pciCommand && len(p) == 2:
		f.cmdReg = binary.LittleEndian.Uint16(p)
	case off < fakeConfig && len(p) == 4:
		reg := off - fakeBAR0
		f.accesses = append(f.accesses, reg)
		f.regs[reg] = uint64(binary.LittleEndian.Uint32(p))
		if reg == regDMACmd && f.regs[reg]&cmdStart != 0 {
			f.runDMA()
		}
	default:
		f.t.Fatalf("unexpected write of %d bytes at %#x", len(p), off)
	}
	return len(p), nil
}

func (f *fakeEdu) runDMA() {
	src, dst, n := f.regs[regDMASrc], f.regs[regDMADst], f.regs[regDMACount]
	if f.cmdReg&busMaster != 0 {
		if f.regs[regDMACmd]&cmdToRAM != 0 {
			copy(f.ram[dst:dst+n], f.buf[src-BufferAddr:])
		} else {
			copy(f.buf[dst-BufferAddr:dst-BufferAddr+n], f.ram[src:src+n])
		}
	}
	f.regs[regDMACmd] &^= cmdStart
}

func TestRoundTrip(t *testing.T) {
	f := newFake(t)
	d, err := New(f, fakeBAR0, fakeConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.EnableBusMaster(); err != nil {
		t.Fatal(err)
	}
	if f.cmdReg&busMaster == 0 {
		t.Fatal("bus master not set in PCI_COMMAND")
	}
	want := []byte("through the IOMMU and back")
	copy(f.ram[0x1000:], want)
	if err := d.ReadFromRAM(0x1000, 0, len(want)); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteToRAM(0x8000, 0, len(want)); err != nil {
		t.Fatal(err)
	}
	if got := f.ram[0x8000 : 0x8000+len(want)]; !bytes.Equal(got, want) {
		t.Fatalf("RAM after round trip = %q, want %q", got, want)
	}
	if v, err := d.Liveness(0x12345678); err != nil || v != ^uint32(0x12345678) {
		t.Fatalf("Liveness = %#x, %v", v, err)
	}
}

func TestRejectsWhatWouldAbortQEMU(t *testing.T) {
	d, err := New(newFake(t), fakeBAR0, fakeConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"zero length", func() error { return d.ReadFromRAM(0, 0, 0) }},
		{"longer than buffer", func() error { return d.ReadFromRAM(0, 0, BufferSize+1) }},
		{"leaves buffer", func() error { return d.WriteToRAM(0, BufferSize-8, 16) }},
		{"beyond 28-bit mask", func() error { return d.WriteToRAM(MaxIOVA-8, 0, 16) }},
	} {
		if err := tc.run(); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestNewChecksID(t *testing.T) {
	f := newFake(t)
	f.regs[regID] = 0x12345600
	if _, err := New(f, fakeBAR0, fakeConfig); err == nil {
		t.Fatal("New accepted a device whose ID register is not edu's")
	}
}

type stuck struct{ *fakeEdu }

func (s stuck) WriteAt(p []byte, off int64) (int, error) {
	if off == regDMACmd {
		s.regs[regDMACmd] = cmdStart // never completes
		return len(p), nil
	}
	return s.fakeEdu.WriteAt(p, off)
}

func TestTimeout(t *testing.T) {
	d, err := New(stuck{newFake(t)}, fakeBAR0, fakeConfig)
	if err != nil {
		t.Fatal(err)
	}
	d.Timeout = 0
	if err := d.ReadFromRAM(0, 0, 8); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}
