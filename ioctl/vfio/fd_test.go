//go:build linux

package vfio

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/ioctl"
	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

// call is one method under test, named by the ioctl its errors must name.
type call struct {
	op          string
	unsupported bool // ENOTTY must come back as *ioctl.UnsupportedError
	fn          func() error
}

// calls lists every ioctl method of c, g and d. mem is mmap memory for
// MapDMA.
func calls(c *Container, g *Group, d *Device, mem []byte) []call {
	bm := make([]uint64, 1)
	token := [16]byte{1}
	return []call{
		{"VFIO_GET_API_VERSION", false, func() error { _, err := c.APIVersion(); return err }},
		{"VFIO_CHECK_EXTENSION", false, func() error { _, err := c.CheckExtension(uapi.VFIO_TYPE1v2_IOMMU); return err }},
		{"VFIO_SET_IOMMU", false, func() error { return c.SetIOMMU(uapi.VFIO_TYPE1v2_IOMMU) }},
		{"VFIO_IOMMU_GET_INFO", false, func() error { _, err := c.IOMMUInfo(); return err }},
		{"VFIO_IOMMU_MAP_DMA", false, func() error { return c.MapDMA(mem, 0x100000, DMARead|DMAWrite) }},
		{"VFIO_IOMMU_UNMAP_DMA", false, func() error { _, err := c.UnmapDMA(0x100000, 4096, 0); return err }},
		{"VFIO_IOMMU_UNMAP_DMA", false, func() error { _, err := c.UnmapDMAGetDirty(0x100000, 4096, 4096, bm); return err }},
		{"VFIO_IOMMU_DIRTY_PAGES", false, c.DirtyPagesStart},
		{"VFIO_IOMMU_DIRTY_PAGES", false, c.DirtyPagesStop},
		{"VFIO_IOMMU_DIRTY_PAGES", false, func() error { return c.DirtyPagesBitmap(0, 4096, 4096, bm) }},
		{"ioctl 0x3b64", false, func() error { _, err := c.Ioctl(uapi.VFIO_GET_API_VERSION, nil); return err }},

		{"VFIO_GROUP_GET_STATUS", false, func() error { _, err := g.Status(); return err }},
		{"VFIO_GROUP_SET_CONTAINER", false, func() error { return g.SetContainer(c) }},
		{"VFIO_GROUP_UNSET_CONTAINER", false, g.UnsetContainer},
		{"VFIO_GROUP_GET_DEVICE_FD", false, func() error { _, err := g.DeviceFD("0000:00:01.0"); return err }},
		{"ioctl 0x3b67", false, func() error { _, err := g.Ioctl(uapi.VFIO_GROUP_GET_STATUS, make([]byte, 8)); return err }},

		{"VFIO_DEVICE_GET_INFO", false, func() error { _, err := d.Info(); return err }},
		{"VFIO_DEVICE_GET_REGION_INFO", false, func() error { _, err := d.RegionInfo(uapi.VFIO_PCI_CONFIG_REGION_INDEX); return err }},
		{"VFIO_DEVICE_GET_IRQ_INFO", false, func() error { _, err := d.IRQInfo(uapi.VFIO_PCI_REQ_IRQ_INDEX); return err }},
		{"VFIO_DEVICE_SET_IRQS", false, func() error {
			return d.SetIRQs(IRQSet{Index: uapi.VFIO_PCI_REQ_IRQ_INDEX, Action: IRQTrigger, EventFDs: []int32{-1}})
		}},
		{"VFIO_DEVICE_RESET", false, d.Reset},
		{"VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", false, func() error { _, err := d.PCIHotResetInfo(); return err }},
		{"VFIO_DEVICE_PCI_HOT_RESET", false, func() error { return d.PCIHotReset(nil) }},
		{"VFIO_DEVICE_FEATURE", false, func() error {
			_, err := d.Feature(uapi.VFIO_DEVICE_FEATURE_MIGRATION, FeatureGet, make([]byte, 8))
			return err
		}},
		{"VFIO_DEVICE_FEATURE", false, func() error { return d.ProbeFeature(uapi.VFIO_DEVICE_FEATURE_MIGRATION, 0) }},
		{"VFIO_DEVICE_FEATURE_DMA_BUF", true, func() error {
			f, err := d.DMABuf(uapi.VFIO_PCI_BAR0_REGION_INDEX, []DMARange{{0, 4096}})
			if f != nil {
				f.Close()
			}
			return err
		}},
		{"VFIO_DEVICE_BIND_IOMMUFD", true, func() error { _, err := d.BindIOMMUFD(3, nil); return err }},
		// With a token, ENOTTY is still "no cdev ioctls here".
		{"VFIO_DEVICE_BIND_IOMMUFD", true, func() error { _, err := d.BindIOMMUFD(3, &token); return err }},
		{"VFIO_DEVICE_ATTACH_IOMMUFD_PT", true, func() error { _, err := d.AttachIOMMUFDPT(2); return err }},
		{"VFIO_DEVICE_ATTACH_IOMMUFD_PT", true, func() error { _, err := d.AttachIOMMUFDPASID(1, 2); return err }},
		{"VFIO_DEVICE_DETACH_IOMMUFD_PT", true, d.DetachIOMMUFDPT},
		{"VFIO_DEVICE_DETACH_IOMMUFD_PT", true, func() error { return d.DetachIOMMUFDPASID(1) }},
		{"VFIO_DEVICE_IOEVENTFD", false, func() error { return d.IOEventFD(0x1000, 1, 4, -1) }},
		{"ioctl 0x3b6f", false, func() error { _, err := d.Ioctl(uapi.VFIO_DEVICE_RESET, nil); return err }},
	}
}

func anonMem(t *testing.T) []byte {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(mem) })
	return mem
}

// openNull opens /dev/null as all three: every ioctl there is ENOTTY,
// which is what a kernel without the ioctl answers.
func openNull(t *testing.T) (*Container, *Group, *Device) {
	t.Helper()
	c, err := OpenContainer("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g, err := OpenGroup("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	d, err := OpenDevice("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return c, g, d
}

func TestErrorsNameTheIoctl(t *testing.T) {
	t.Parallel()
	c, g, d := openNull(t)
	for _, cl := range calls(c, g, d, anonMem(t)) {
		err := cl.fn()
		if err == nil {
			t.Errorf("%s: no error on /dev/null", cl.op)
			continue
		}
		if !errors.Is(err, unix.ENOTTY) {
			t.Errorf("%s: %v does not match ENOTTY", cl.op, err)
		}
		var errno *raw.Errno
		if !errors.As(err, &errno) {
			t.Errorf("%s: %v has no *raw.Errno", cl.op, err)
		}
		if !strings.HasPrefix(err.Error(), cl.op+": ") || strings.Count(err.Error(), cl.op) != 1 {
			t.Errorf("%s: message %q should name the ioctl once, first", cl.op, err)
		}
		if errors.Is(err, ioctl.ErrNotSupported) != cl.unsupported {
			t.Errorf("%s: errors.Is(ErrNotSupported) = %v, want %v", cl.op, !cl.unsupported, cl.unsupported)
		}
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	c, g, d := openNull(t)
	for _, closer := range []interface{ Close() error }{c, g, d} {
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
		if err := closer.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	if c.FD() != -1 || g.FD() != -1 || d.FD() != -1 {
		t.Errorf("FD after Close: %d %d %d", c.FD(), g.FD(), d.FD())
	}
	for _, cl := range calls(c, g, d, anonMem(t)) {
		err := cl.fn()
		if !errors.Is(err, ErrClosed) || !strings.HasPrefix(err.Error(), cl.op+": ") {
			t.Errorf("%s on closed fds: %v", cl.op, err)
		}
	}
	// SetContainer with an open group and a closed container.
	c2, g2, _ := openNull(t)
	c2.Close()
	if err := g2.SetContainer(c2); !errors.Is(err, ErrClosed) {
		t.Errorf("SetContainer(closed container): %v", err)
	}
	var b [4]byte
	if _, err := d.ReadAt(b[:], 0); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadAt: %v", err)
	}
	if _, err := d.WriteAt(b[:], 0); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteAt: %v", err)
	}
	if _, err := d.Mmap(&RegionInfo{Flags: uapi.VFIO_REGION_INFO_FLAG_MMAP, Size: 4096}, 0, 4096, ProtRead); !errors.Is(err, ErrClosed) {
		t.Errorf("Mmap: %v", err)
	}
}

func TestLocalArgumentErrors(t *testing.T) {
	t.Parallel()
	c, g, d := openNull(t)
	check := func(name string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, unix.ENOTTY) {
			t.Errorf("%s: %v, want a local error before the ioctl", name, err)
		}
	}
	check("MapDMA(nil)", c.MapDMA(nil, 0, DMARead))
	_, err := c.UnmapDMAGetDirty(0, 4096, 4096, nil)
	check("UnmapDMAGetDirty(nil bitmap)", err)
	check("DirtyPagesBitmap(nil bitmap)", c.DirtyPagesBitmap(0, 4096, 4096, nil))
	_, err = g.DeviceFD("a\x00b")
	check("DeviceFD(NUL)", err)
	check("SetIRQs(no action)", d.SetIRQs(IRQSet{}))
	_, err = d.Feature(1<<16, FeatureGet, nil)
	check("Feature(1<<16)", err)
	_, err = d.DMABuf(0, nil)
	check("DMABuf(no ranges)", err)
	_, err = d.BindIOMMUFD(-1, nil)
	check("BindIOMMUFD(-1)", err)
	check("IOEventFD(width 3)", d.IOEventFD(0, 0, 3, -1))
	check("PCIHotReset(huge fd)", d.PCIHotReset([]int{1 << 40}))
}

// TestEscapeHatch: Ioctl passes the buffer untouched, NULL when empty.
func TestEscapeHatch(t *testing.T) {
	t.Parallel()
	c, _, _ := openNull(t)
	arg := []byte{1, 2, 3} // argsz below any minsz: the kernel's EINVAL case
	_, err := c.Ioctl(uapi.VFIO_IOMMU_MAP_DMA, arg)
	if !errors.Is(err, unix.ENOTTY) || string(arg) != "\x01\x02\x03" {
		t.Errorf("Ioctl: %v, arg % x", err, arg)
	}
}

// deviceFile opens a plain file as a Device: pread, pwrite and mmap work
// on it as on a VFIO device fd.
func deviceFile(t *testing.T, size int64) *Device {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDevice(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestReadWriteAt(t *testing.T) {
	t.Parallel()
	d := deviceFile(t, 8192)
	var _ io.ReaderAt = d
	var _ io.WriterAt = d
	if n, err := d.WriteAt([]byte{0x04, 0x00}, 4096+4); n != 2 || err != nil {
		t.Fatalf("WriteAt: %d, %v", n, err)
	}
	b := make([]byte, 4)
	if n, err := d.ReadAt(b, 4096+2); n != 4 || err != nil || string(b) != "\x00\x00\x04\x00" {
		t.Errorf("ReadAt: %d, %v, % x", n, err, b)
	}
	// Across the end: the part that is there, then io.EOF.
	if n, err := d.ReadAt(b, 8190); n != 2 || err != io.EOF {
		t.Errorf("ReadAt across end: %d, %v", n, err)
	}
	if _, err := d.ReadAt(b, -1); !errors.Is(err, unix.EINVAL) {
		t.Errorf("ReadAt(-1): %v", err)
	}
}

func TestMmap(t *testing.T) {
	t.Parallel()
	d := deviceFile(t, 3*4096)
	r := &RegionInfo{Index: 0, Flags: uapi.VFIO_REGION_INFO_FLAG_READ | uapi.VFIO_REGION_INFO_FLAG_MMAP, Size: 2 * 4096, Offset: 4096}
	m, err := d.Mmap(r, 4096, 4096, ProtRead|ProtWrite)
	if err != nil {
		t.Fatal(err)
	}
	m[8] = 0xed
	if err := d.Munmap(m); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := d.ReadAt(b, int64(r.Offset)+4096+8); err != nil || b[0] != 0xed {
		t.Errorf("store through the mapping not seen: % x, %v", b, err)
	}

	for _, bad := range []struct {
		name        string
		r           RegionInfo
		off, length uint64
	}{
		{"no mmap flag", RegionInfo{Size: 8192}, 0, 4096},
		{"zero length", *r, 0, 0},
		{"past the end", *r, 4096, 8192},
		{"offset past the end", *r, 1 << 62, 4096},
		{"wrapping", *r, 4096, ^uint64(0) - 100},
	} {
		if _, err := d.Mmap(&bad.r, bad.off, bad.length, ProtRead); err == nil {
			t.Errorf("%s: mapped", bad.name)
		}
	}
}
