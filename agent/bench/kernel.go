//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/cdev"
	"github.com/iommu-agent/iommu-agent/agent/iommu/type1"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// Helpers of the kernel benches (go-vs-c, guest-ram): the devices of
// Env.Devices as the backends know them, memfd memory, /proc/meminfo.

// errNoDevice is why a bench that needs a device bound to vfio-pci
// skips.
var errNoDevice = errors.New("no PCI function bound to vfio-pci was given (-devices)")

// vfioDevice resolves a BDF bound to vfio-pci into the iommu.Device the
// backends attach: its iommu_group number from sysfs.
func vfioDevice(sysRoot, bdf string) (iommu.Device, error) {
	dir := filepath.Join(sysRoot, "bus/pci/devices", bdf)
	drv, err := os.Readlink(filepath.Join(dir, "driver"))
	if err != nil {
		return iommu.Device{}, fmt.Errorf("device %s: driver: %w", bdf, err)
	}
	if filepath.Base(drv) != "vfio-pci" {
		return iommu.Device{}, fmt.Errorf("device %s is bound to %s, not vfio-pci", bdf, filepath.Base(drv))
	}
	link, err := os.Readlink(filepath.Join(dir, "iommu_group"))
	if err != nil {
		return iommu.Device{}, fmt.Errorf("device %s: iommu_group: %w", bdf, err)
	}
	g, err := strconv.Atoi(filepath.Base(link))
	if err != nil {
		return iommu.Device{}, fmt.Errorf("device %s: iommu_group link %q: %w", bdf, link, err)
	}
	return iommu.Device{BDF: bdf, Group: g}, nil
}

// firstDevice is the first of e.Devices, resolved.
func (e *Env) firstDevice() (iommu.Device, error) {
	if len(e.Devices) == 0 {
		return iommu.Device{}, errNoDevice
	}
	return vfioDevice("/sys", e.Devices[0])
}

// iommufdSpace is an iommufd with an IOAS and, when dev is set, dev
// attached to it through its cdev: the setup of the agent's cdev backend.
type iommufdSpace struct {
	b    *cdev.Backend
	as   *cdev.AddressSpace
	fd   *iommufd.FD
	ioas iommufd.ID
}

func openIOMMUFD(ctx context.Context, dev *iommu.Device) (*iommufdSpace, error) {
	b, err := cdev.Open(ctx, cdev.Options{})
	if err != nil {
		return nil, err
	}
	as, err := newSpace(ctx, b, dev)
	if err != nil {
		return nil, err
	}
	cas := as.(*cdev.AddressSpace)
	return &iommufdSpace{b: b, as: cas, fd: b.IOMMUFD(), ioas: cas.ID()}, nil
}

func (s *iommufdSpace) Close() error { return s.b.Close() }

// type1Space is a type1v2 container holding dev's group: the setup of the
// agent's type1 backend.
type type1Space struct {
	b  *type1.Backend
	as *type1.AddressSpace
	c  *vfio.Container
}

func openType1(ctx context.Context, dev iommu.Device) (*type1Space, error) {
	b, err := type1.Open(ctx, type1.Options{})
	if err != nil {
		return nil, err
	}
	as, err := newSpace(ctx, b, &dev)
	if err != nil {
		return nil, err
	}
	tas := as.(*type1.AddressSpace)
	return &type1Space{b: b, as: tas, c: tas.Container()}, nil
}

// newSpace makes an address space on b with dev (if any) attached; on
// failure it closes b.
func newSpace(ctx context.Context, b iommu.Backend, dev *iommu.Device) (iommu.AddressSpace, error) {
	as, err := b.NewAddressSpace(ctx)
	if err != nil {
		b.Close()
		return nil, err
	}
	if dev != nil {
		if _, err := as.Attach(ctx, *dev); err != nil {
			b.Close()
			return nil, err
		}
	}
	return as, nil
}

func (s *type1Space) Close() error { return s.b.Close() }

// memfdMem is a memfd and the bench's shared read+write mapping of it,
// populated (every page written), so a map pins pages that exist.
type memfdMem struct {
	fd  int
	mem []byte
}

// newMemfd makes a size-byte memfd with memfd_create flags (MFD_HUGETLB
// for hugetlbfs pages) and maps it; advice, when not 0, is given with
// madvise before the pages are written (MADV_HUGEPAGE asks for THP where
// shmem_enabled is "advise").
func newMemfd(name string, size int, flags, advice int) (*memfdMem, error) {
	fd, err := unix.MemfdCreate(name, flags|unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create %s: %w", name, err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("memfd %s: ftruncate %d: %w", name, size, err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("memfd %s: mmap %d: %w", name, size, err)
	}
	if advice != 0 {
		if err := unix.Madvise(mem, advice); err != nil {
			unix.Munmap(mem)
			unix.Close(fd)
			return nil, fmt.Errorf("memfd %s: madvise %d: %w", name, advice, err)
		}
	}
	for i := 0; i < len(mem); i += pg {
		mem[i] = 1
	}
	return &memfdMem{fd: fd, mem: mem}, nil
}

// file is a duplicate of the memfd for a child process.
func (m *memfdMem) file() (*os.File, error) {
	d, err := unix.Dup(m.fd)
	if err != nil {
		return nil, fmt.Errorf("dup memfd: %w", err)
	}
	return os.NewFile(uintptr(d), "memfd"), nil
}

func (m *memfdMem) Close() error {
	err := unix.Munmap(m.mem)
	if cerr := unix.Close(m.fd); err == nil {
		err = cerr
	}
	return err
}

// meminfo reads /proc/meminfo: sizes in bytes, counts (HugePages_*) as
// they are.
func meminfo() (map[string]uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	return parseMeminfo(b), nil
}

func parseMeminfo(b []byte) map[string]uint64 {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		out[k] = n
	}
	return out
}

// sizeName is "4 KiB", "2 MiB", "1 GiB", "3 GiB".
func sizeName(n uint64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n%1024 == 0:
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d bytes", n)
}
