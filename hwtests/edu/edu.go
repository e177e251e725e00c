// Package edu drives QEMU's "edu" educational PCI device (1234:11e8), the
// DMA engine the guest tests use to prove that mappings made through
// iommufd or type1 really translate device addresses.
//
// The register layout is QEMU's docs/specs/edu.rst. Registers are reached
// through the VFIO device fd (pread/pwrite at the BAR0 region offset), so no
// BAR mmap is needed: edu accepts 4-byte accesses everywhere and 8-byte ones
// only from 0x80, and a 4-byte write to a 64-bit DMA register sets it whole.
package edu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// PCI identity of the device.
const (
	VendorID = 0x1234
	DeviceID = 0x11e8
)

// Buffer is edu's internal DMA buffer: device addresses BufferAddr to
// BufferAddr+BufferSize-1. A transfer outside it makes QEMU abort.
const (
	BufferAddr = 0x40000
	BufferSize = 4096
)

// MaxIOVA bounds the bus addresses edu can reach: it masks DMA addresses to
// 28 bits (edu.rst: "dma_mask 28 bits").
const MaxIOVA = 1 << 28

const (
	regID       = 0x00
	regLiveness = 0x04
	regDMASrc   = 0x80
	regDMADst   = 0x88
	regDMACount = 0x90
	regDMACmd   = 0x98

	idMagic = 0xed // low byte of the ID register; the rest is the version

	cmdStart   = 1 << 0
	cmdToRAM   = 1 << 1 // edu -> RAM; clear: RAM -> edu
	pciCommand = 0x04
	busMaster  = 1 << 2
)

// ErrTimeout is returned when a DMA does not complete in time.
var ErrTimeout = errors.New("edu: DMA did not complete")

// Regs is the positional access a VFIO device fd offers.
type Regs interface {
	io.ReaderAt
	io.WriterAt
}

// Device is one edu function behind VFIO.
type Device struct {
	regs   Regs
	bar0   int64 // region offset of BAR0 in the device fd
	config int64 // region offset of PCI config space
	// Timeout bounds each DMA; under TCG one transfer takes ~100 ms.
	Timeout time.Duration
}

// New checks the ID register and returns the device. bar0 and config are the
// VFIO region offsets (VFIO_DEVICE_GET_REGION_INFO) of BAR0 and config space.
func New(regs Regs, bar0, config int64) (*Device, error) {
	d := &Device{regs: regs, bar0: bar0, config: config, Timeout: 10 * time.Second}
	id, err := d.read32(regID)
	if err != nil {
		return nil, fmt.Errorf("edu: read ID register: %w", err)
	}
	if id&0xff != idMagic {
		return nil, fmt.Errorf("edu: ID register %#x, want low byte %#x", id, idMagic)
	}
	return d, nil
}

// ID returns the ID register (0x010000ed for edu 1.0).
func (d *Device) ID() (uint32, error) { return d.read32(regID) }

// Liveness writes v to the liveness register and returns what the device
// answers (its bitwise inverse): a cheap MMIO round trip.
func (d *Device) Liveness(v uint32) (uint32, error) {
	if err := d.write32(regLiveness, v); err != nil {
		return 0, err
	}
	return d.read32(regLiveness)
}

// EnableBusMaster sets PCI_COMMAND.BME; without it edu's DMA is dropped.
func (d *Device) EnableBusMaster() error {
	var b [2]byte
	if _, err := d.regs.ReadAt(b[:], d.config+pciCommand); err != nil {
		return fmt.Errorf("edu: read PCI_COMMAND: %w", err)
	}
	cmd := binary.LittleEndian.Uint16(b[:]) | busMaster
	binary.LittleEndian.PutUint16(b[:], cmd)
	if _, err := d.regs.WriteAt(b[:], d.config+pciCommand); err != nil {
		return fmt.Errorf("edu: write PCI_COMMAND: %w", err)
	}
	return nil
}

// ReadFromRAM copies n bytes at bus address iova into edu's buffer at
// offset off: a DMA read by the device.
func (d *Device) ReadFromRAM(iova uint64, off, n int) error {
	return d.dma(iova, BufferAddr+uint64(off), n, 0)
}

// WriteToRAM copies n bytes from edu's buffer at offset off to bus address
// iova: a DMA write by the device.
func (d *Device) WriteToRAM(iova uint64, off, n int) error {
	return d.dma(BufferAddr+uint64(off), iova, n, cmdToRAM)
}

func (d *Device) dma(src, dst uint64, n int, dir uint32) error {
	if n <= 0 || n > BufferSize {
		return fmt.Errorf("edu: DMA length %d outside 1..%d", n, BufferSize)
	}
	bus, buf := src, dst
	if dir == cmdToRAM {
		bus, buf = dst, src
	}
	if bus+uint64(n) > MaxIOVA {
		return fmt.Errorf("edu: bus address %#x+%d beyond edu's 28-bit DMA mask", bus, n)
	}
	// A range leaving the buffer makes QEMU abort the whole guest (hw_error).
	if buf < BufferAddr || buf+uint64(n) > BufferAddr+BufferSize {
		return fmt.Errorf("edu: buffer range %#x+%d outside edu's buffer", buf, n)
	}
	if err := d.waitIdle(); err != nil {
		return err
	}
	for _, w := range []struct {
		reg int64
		val uint64
	}{{regDMASrc, src}, {regDMADst, dst}, {regDMACount, uint64(n)}} {
		if err := d.write64(w.reg, w.val); err != nil {
			return err
		}
	}
	if err := d.write32(regDMACmd, cmdStart|dir); err != nil {
		return err
	}
	return d.waitIdle()
}

func (d *Device) waitIdle() error {
	deadline := time.Now().Add(d.Timeout)
	for {
		cmd, err := d.read32(regDMACmd)
		if err != nil {
			return err
		}
		if cmd&cmdStart == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (d *Device) read32(reg int64) (uint32, error) {
	var b [4]byte
	if _, err := d.regs.ReadAt(b[:], d.bar0+reg); err != nil {
		return 0, fmt.Errorf("edu: read %#x: %w", reg, err)
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

func (d *Device) write32(reg int64, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	if _, err := d.regs.WriteAt(b[:], d.bar0+reg); err != nil {
		return fmt.Errorf("edu: write %#x: %w", reg, err)
	}
	return nil
}

// write64 sets a 64-bit DMA register with one 4-byte write: edu stores a
// 4-byte write to 0x80..0x98 as the whole register (zero-extended), and the
// values edu can use fit in 28 bits. It avoids relying on 8-byte accesses
// through the VFIO fd, which not every kernel passes through as one.
func (d *Device) write64(reg int64, v uint64) error {
	if v>>32 != 0 {
		return fmt.Errorf("edu: value %#x for register %#x does not fit edu's 32-bit write path", v, reg)
	}
	return d.write32(reg, uint32(v))
}
