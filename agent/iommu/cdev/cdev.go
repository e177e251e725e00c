//go:build linux

// Package cdev is the iommufd backend of agent/iommu: an address space is an
// IOAS of one /dev/iommu, and a device is its VFIO cdev
// (/dev/vfio/devices/vfioN) bound to that iommufd and attached to the IOAS.
//
// The kernel's semantics are kept, not smoothed over: unmapping nothing or
// cutting a mapping is ENOENT, attaching a bound device to another IOAS
// replaces its page table, and closing the cdev unbinds it.
package cdev

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/internal/cleanup"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// Options configure Open. The zero value uses the real device nodes and
// sysfs, and the kernel's default pin accounting.
type Options struct {
	// Path is the iommufd node; iommufd.DefaultPath when empty.
	Path string
	// SysfsRoot is where sysfs is mounted ("/sys" when empty); Attach finds
	// a device's cdev under bus/pci/devices/BDF/vfio-dev. Tests pass a
	// fake tree.
	SysfsRoot string
	// DevDir holds the VFIO cdevs; "/dev/vfio/devices" when empty.
	DevDir string
	// RLimitMode, when iommufd.RLimitProcess, charges pins per process
	// instead of per user, as KubeVirt and libvirt ask. It is set right
	// after opening, before any object exists (the kernel's condition).
	RLimitMode iommufd.RLimitMode
	// FailStep, when set, is called before each kernel step of a setup
	// (steps are named in Steps); an error it returns fails that step as if
	// the kernel had. Fault-injection tests use it to prove the unwinding.
	FailStep func(step string) error
}

// Setup steps, as FailStep sees them.
const (
	StepOpen     = "open"      // open /dev/iommu
	StepRLimit   = "rlimit"    // IOMMU_OPTION RLIMIT_MODE
	StepIOAS     = "ioas"      // IOMMU_IOAS_ALLOC
	StepOpenCdev = "open-cdev" // open /dev/vfio/devices/vfioN
	StepBind     = "bind"      // VFIO_DEVICE_BIND_IOMMUFD
	StepAttach   = "attach"    // VFIO_DEVICE_ATTACH_IOMMUFD_PT

	// Teardown steps: a failure is reported, and the teardown goes on
	// (closing the cdev and the iommufd still releases everything).
	StepDetach  = "detach"  // VFIO_DEVICE_DETACH_IOMMUFD_PT
	StepDestroy = "destroy" // IOMMU_DESTROY of the IOAS
)

func (o *Options) step(name string) error {
	if o.FailStep == nil {
		return nil
	}
	return o.FailStep(name)
}

// Backend is one open iommufd. Every address space and attachment made
// through it lives until it is closed or detached, or until Close.
type Backend struct {
	opts Options
	fd   *iommufd.FD

	// mu guards the maps and every attachment's state; it is taken before
	// an AddressSpace's mu.
	mu     sync.Mutex
	closed bool
	spaces map[*AddressSpace]struct{}
	bound  map[string]*Attachment // by BDF: a device is bound once
	// objects are the live nesting objects, oldest first: an object only
	// sits on older ones.
	objects []*object
}

var (
	_ iommu.Backend      = (*Backend)(nil)
	_ iommu.AddressSpace = (*AddressSpace)(nil)
	_ iommu.Copier       = (*AddressSpace)(nil)
	_ iommu.IOVAAllower  = (*AddressSpace)(nil)
	_ iommu.DirtyTracker = (*AddressSpace)(nil)
	_ iommu.Attachment   = (*Attachment)(nil)
	_ iommu.HWInfoer     = (*Attachment)(nil)
)

// Open opens the iommufd at opts.Path. A missing node is an
// *iommu.UnsupportedError, so iommu.Select moves on to type1.
func Open(ctx context.Context, opts Options) (*Backend, error) {
	if opts.Path == "" {
		opts.Path = iommufd.DefaultPath
	}
	if opts.SysfsRoot == "" {
		opts.SysfsRoot = "/sys"
	}
	if opts.DevDir == "" {
		opts.DevDir = "/dev/vfio/devices"
	}
	var cu cleanup.Stack
	defer cu.Clean()
	if err := opts.step(StepOpen); err != nil {
		return nil, fmt.Errorf("open %s: %w", opts.Path, iommu.Wrap(err))
	}
	fd, err := iommufd.Open(opts.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			return nil, &iommu.UnsupportedError{Feature: "iommufd (" + opts.Path + ")", MinKernel: "6.2", Err: err}
		}
		return nil, fmt.Errorf("open %s: %w", opts.Path, iommu.Wrap(err))
	}
	cu.Add(func() { fd.Close() })
	if opts.RLimitMode != iommufd.RLimitUser {
		err := opts.step(StepRLimit)
		if err == nil {
			err = fd.SetRLimitMode(opts.RLimitMode)
		}
		if err != nil {
			return nil, fmt.Errorf("set iommufd RLIMIT_MODE %d: %w", opts.RLimitMode, iommu.Wrap(err))
		}
	}
	cu.Release()
	return &Backend{
		opts:   opts,
		fd:     fd,
		spaces: make(map[*AddressSpace]struct{}),
		bound:  make(map[string]*Attachment),
	}, nil
}

// Flavour implements iommu.Backend.
func (b *Backend) Flavour() iommu.Flavour { return iommu.IOMMUFD }

// IOMMUFD is the iommufd itself, for handing to QEMU (iommufd object fd=)
// or for calls the interface does not cover. The Backend keeps ownership.
func (b *Backend) IOMMUFD() *iommufd.FD { return b.fd }

// NewAddressSpace allocates an IOAS.
func (b *Backend) NewAddressSpace(ctx context.Context) (iommu.AddressSpace, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("new address space: backend %w", iommu.ErrClosed)
	}
	err := b.opts.step(StepIOAS)
	var ioas iommufd.ID
	if err == nil {
		ioas, err = b.fd.IOASAlloc()
	}
	if err != nil {
		return nil, fmt.Errorf("allocate IOAS: %w", iommu.Wrap(err))
	}
	as := &AddressSpace{b: b, ioas: ioas, attached: make(map[*Attachment]struct{})}
	b.spaces[as] = struct{}{}
	return as, nil
}

// Close detaches and unbinds every device, destroys every IOAS and closes
// the iommufd, which drops every pin. Closing twice is not an error.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	for as := range b.spaces {
		errs = append(errs, as.closeLocked())
	}
	// Closing the iommufd frees whatever is left of them.
	for _, o := range b.objects {
		if o.file != nil {
			o.file.Close()
		}
		o.gone = true
	}
	b.objects = nil
	if err := b.fd.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close iommufd: %w", err))
	}
	return errors.Join(errs...)
}

// AddressSpace is an IOAS.
type AddressSpace struct {
	b    *Backend
	ioas iommufd.ID

	// mu guards closed: Map and Unmap hold it shared, so they run
	// concurrently (the kernel serialises them) but never after Close.
	mu       sync.RWMutex
	closed   bool
	attached map[*Attachment]struct{} // guarded by b.mu
}

// ID is the IOAS's object ID in the backend's iommufd.
func (as *AddressSpace) ID() iommufd.ID { return as.ioas }

// Attach binds dev's cdev to the backend's iommufd (once per device) and
// attaches it to the IOAS. A device attached to another IOAS of the same
// backend is moved here, as the kernel's replace does, and keeps its
// Attachment; the kernel moves its whole iommu_group, so attached siblings
// (by Device.Group) move too. A first attach of a device whose sibling is
// attached to another IOAS is the kernel's EINVAL.
func (as *AddressSpace) Attach(ctx context.Context, dev iommu.Device) (iommu.Attachment, error) {
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	as.mu.RLock()
	defer as.mu.RUnlock()
	if as.closed {
		return nil, fmt.Errorf("attach %s: address space %w", dev.BDF, iommu.ErrClosed)
	}
	if a := b.bound[dev.BDF]; a != nil {
		return a, as.replaceLocked(a)
	}

	var cu cleanup.Stack
	defer cu.Clean()
	path := dev.Cdev
	if path == "" {
		p, err := findCdev(b.opts.SysfsRoot, b.opts.DevDir, dev.BDF)
		if err != nil {
			return nil, fmt.Errorf("attach %s: %w", dev.BDF, err)
		}
		path = p
	}
	err := b.opts.step(StepOpenCdev)
	var vdev *vfio.Device
	if err == nil {
		vdev, err = vfio.OpenDevice(path)
	}
	if err != nil {
		return nil, fmt.Errorf("attach %s: open VFIO cdev %s: %w", dev.BDF, path, iommu.Wrap(err))
	}
	cu.Add(func() { vdev.Close() }) // closing the cdev also unbinds it
	err = b.opts.step(StepBind)
	var devID uint32
	if err == nil {
		devID, err = vdev.BindIOMMUFD(b.fd.Int(), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("attach %s: bind %s to iommufd: %w", dev.BDF, path, iommu.Wrap(err))
	}
	err = b.opts.step(StepAttach)
	var hwpt uint32
	if err == nil {
		hwpt, err = vdev.AttachIOMMUFDPT(uint32(as.ioas))
	}
	if err != nil {
		return nil, fmt.Errorf("attach %s to IOAS %d: %w", dev.BDF, as.ioas, iommu.Wrap(err))
	}
	cu.Release()
	dev.Cdev = path
	a := &Attachment{b: b, as: as, dev: dev, vdev: vdev, devID: iommufd.ID(devID), hwpt: iommufd.ID(hwpt)}
	b.bound[dev.BDF] = a
	as.attached[a] = struct{}{}
	return a, nil
}

// replaceLocked moves the bound a to as (VFIO_DEVICE_ATTACH_IOMMUFD_PT on an
// attached device replaces its page table), and with it every sibling of
// its iommu_group, as the kernel does. b.mu is held.
func (as *AddressSpace) replaceLocked(a *Attachment) error {
	err := as.b.opts.step(StepAttach)
	var hwpt uint32
	if err == nil {
		hwpt, err = a.vdev.AttachIOMMUFDPT(uint32(as.ioas))
	}
	if err != nil {
		return fmt.Errorf("attach %s to IOAS %d (replacing IOAS %d): %w", a.dev.BDF, as.ioas, a.as.ioas, iommu.Wrap(err))
	}
	// The kernel replaces the domain of the whole iommu_group: every
	// attached sibling moved with a.
	from := a.as
	for _, s := range as.b.bound {
		if s == a || (s.dev.Group == a.dev.Group && s.as == from) {
			delete(s.as.attached, s)
			s.as, s.hwpt, s.explicit = as, iommufd.ID(hwpt), false
			as.attached[s] = struct{}{}
		}
	}
	return nil
}

// Map implements iommu.AddressSpace with IOMMU_IOAS_MAP.
func (as *AddressSpace) Map(ctx context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	as.mu.RLock()
	defer as.mu.RUnlock()
	if as.closed {
		return 0, fmt.Errorf("map: address space %w", iommu.ErrClosed)
	}
	iova, err := as.b.fd.Map(as.ioas, m.Mem, iommufd.IOVA(m.IOVA), flagsOf(m.Fixed, m.Perm))
	if err != nil {
		return 0, fmt.Errorf("map %#x bytes at %s into IOAS %d: %w", len(m.Mem), describe(m.Fixed, m.IOVA), as.ioas, iommu.Wrap(err))
	}
	return iommu.IOVA(iova), nil
}

// MapFile implements iommu.FileMapper with IOMMU_IOAS_MAP_FILE; before
// Linux 6.13 it is ENOTTY (iommu.ErrNotSupported).
func (as *AddressSpace) MapFile(ctx context.Context, m iommu.FileMapping) (iommu.IOVA, error) {
	as.mu.RLock()
	defer as.mu.RUnlock()
	if as.closed {
		return 0, fmt.Errorf("map file: address space %w", iommu.ErrClosed)
	}
	iova, err := as.b.fd.MapFile(as.ioas, m.FD, m.Offset, m.Length, iommufd.IOVA(m.IOVA), flagsOf(m.Fixed, m.Perm))
	if err != nil {
		return 0, fmt.Errorf("map %#x bytes of fd %d at %s into IOAS %d: %w", m.Length, m.FD, describe(m.Fixed, m.IOVA), as.ioas, iommu.Wrap(err))
	}
	return iommu.IOVA(iova), nil
}

func flagsOf(fixed bool, perm iommu.Perm) iommufd.MapFlags {
	var f iommufd.MapFlags
	if fixed {
		f |= iommufd.FixedIOVA
	}
	if perm&iommu.Read != 0 {
		f |= iommufd.Readable
	}
	if perm&iommu.Write != 0 {
		f |= iommufd.Writeable
	}
	return f
}

func describe(fixed bool, iova iommu.IOVA) string {
	if fixed {
		return fmt.Sprintf("%#x", uint64(iova))
	}
	return "a kernel-chosen IOVA"
}

// Unmap implements iommu.AddressSpace with IOMMU_IOAS_UNMAP: a range that
// holds nothing, or would cut a mapping, is ENOENT (iommu.ErrNotFound).
func (as *AddressSpace) Unmap(ctx context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	as.mu.RLock()
	defer as.mu.RUnlock()
	if as.closed {
		return 0, fmt.Errorf("unmap: address space %w", iommu.ErrClosed)
	}
	n, err := as.b.fd.Unmap(as.ioas, iommufd.IOVA(iova), length)
	if err != nil {
		return n, fmt.Errorf("unmap %#x bytes at %#x from IOAS %d: %w", length, uint64(iova), as.ioas, iommu.Wrap(err))
	}
	return n, nil
}

// Ranges implements iommu.AddressSpace with IOMMU_IOAS_IOVA_RANGES.
func (as *AddressSpace) Ranges(ctx context.Context) ([]iommu.Range, uint64, error) {
	as.mu.RLock()
	defer as.mu.RUnlock()
	if as.closed {
		return nil, 0, fmt.Errorf("IOVA ranges: address space %w", iommu.ErrClosed)
	}
	rs, align, err := as.b.fd.IOVARanges(as.ioas)
	if err != nil {
		return nil, 0, fmt.Errorf("IOVA ranges of IOAS %d: %w", as.ioas, iommu.Wrap(err))
	}
	out := make([]iommu.Range, len(rs))
	for i, r := range rs {
		out[i] = iommu.Range{Start: iommu.IOVA(r.Start), Last: iommu.IOVA(r.Last)}
	}
	return out, align, nil
}

// Copy implements iommu.Copier with IOMMU_IOAS_COPY. src must be an
// address space of the same Backend; dst.Mem is not used.
func (as *AddressSpace) Copy(ctx context.Context, src iommu.AddressSpace, srcIOVA iommu.IOVA, length uint64, dst iommu.Mapping) (iommu.IOVA, error) {
	s, ok := src.(*AddressSpace)
	if !ok || s.b != as.b {
		return 0, fmt.Errorf("copy into IOAS %d: source is not an IOAS of the same iommufd: %w", as.ioas, iommu.ErrInvalid)
	}
	as.mu.RLock()
	defer as.mu.RUnlock()
	if s != as {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	if as.closed || s.closed {
		return 0, fmt.Errorf("copy: address space %w", iommu.ErrClosed)
	}
	iova, err := as.b.fd.Copy(as.ioas, iommufd.IOVA(dst.IOVA), s.ioas, iommufd.IOVA(srcIOVA), length, flagsOf(dst.Fixed, dst.Perm))
	if err != nil {
		return 0, fmt.Errorf("copy %#x bytes at %#x of IOAS %d to %s in IOAS %d: %w",
			length, uint64(srcIOVA), s.ioas, describe(dst.Fixed, dst.IOVA), as.ioas, iommu.Wrap(err))
	}
	return iommu.IOVA(iova), nil
}

// AllowIOVAs implements iommu.IOVAAllower with IOMMU_IOAS_ALLOW_IOVAS.
func (as *AddressSpace) AllowIOVAs(ctx context.Context, allowed []iommu.Range) error {
	as.mu.RLock()
	defer as.mu.RUnlock()
	if as.closed {
		return fmt.Errorf("allow IOVAs: address space %w", iommu.ErrClosed)
	}
	rs := make([]iommufd.Range, len(allowed))
	for i, r := range allowed {
		rs[i] = iommufd.Range{Start: iommufd.IOVA(r.Start), Last: iommufd.IOVA(r.Last)}
	}
	if err := as.b.fd.AllowIOVAs(as.ioas, rs); err != nil {
		return fmt.Errorf("allow IOVAs %v in IOAS %d: %w", allowed, as.ioas, iommu.Wrap(err))
	}
	return nil
}

// hwpts returns the HWPTs the kernel made for the attached devices, each
// once (devices of one group share one). b.mu is held.
func (as *AddressSpace) hwptsLocked() []iommufd.ID {
	var out []iommufd.ID
	seen := make(map[iommufd.ID]bool)
	for a := range as.attached {
		if !seen[a.hwpt] {
			seen[a.hwpt] = true
			out = append(out, a.hwpt)
		}
	}
	return out
}

// SetDirtyTracking implements iommu.DirtyTracker on the HWPTs of the
// attached devices. Those are the kernel's automatic HWPTs, allocated
// without IOMMU_HWPT_ALLOC_DIRTY_TRACKING, so the kernel answers
// EOPNOTSUPP unless the IOMMU driver gives them dirty tracking anyway.
func (as *AddressSpace) SetDirtyTracking(ctx context.Context, enable bool) error {
	as.b.mu.Lock()
	defer as.b.mu.Unlock()
	if as.closed {
		return fmt.Errorf("set dirty tracking: address space %w", iommu.ErrClosed)
	}
	hwpts := as.hwptsLocked()
	if len(hwpts) == 0 {
		return &iommu.UnsupportedError{Feature: fmt.Sprintf("dirty tracking on IOAS %d with no device attached", as.ioas)}
	}
	for _, h := range hwpts {
		if err := as.b.fd.SetDirtyTracking(h, enable); err != nil {
			return fmt.Errorf("set dirty tracking %t on HWPT %d of IOAS %d: %w", enable, h, as.ioas, iommu.Wrap(err))
		}
	}
	return nil
}

// ReadDirty implements iommu.DirtyTracker: the union of the bitmaps of
// every attached device's HWPT.
func (as *AddressSpace) ReadDirty(ctx context.Context, iova iommu.IOVA, length, pageSize uint64, keep bool) ([]uint64, error) {
	as.b.mu.Lock()
	defer as.b.mu.Unlock()
	if as.closed {
		return nil, fmt.Errorf("read dirty bitmap: address space %w", iommu.ErrClosed)
	}
	hwpts := as.hwptsLocked()
	if len(hwpts) == 0 {
		return nil, &iommu.UnsupportedError{Feature: fmt.Sprintf("dirty tracking on IOAS %d with no device attached", as.ioas)}
	}
	var flags iommufd.DirtyBitmapFlags
	if keep {
		flags = iommufd.DirtyBitmapNoClear
	}
	bitmap := make([]uint64, iommufd.DirtyBitmapWords(length, pageSize))
	for _, h := range hwpts {
		if err := as.b.fd.GetDirtyBitmap(h, iommufd.IOVA(iova), length, pageSize, flags, bitmap); err != nil {
			return nil, fmt.Errorf("read dirty bitmap of HWPT %d for %#x bytes at %#x: %w", h, length, uint64(iova), iommu.Wrap(err))
		}
	}
	return bitmap, nil
}

// Close detaches and unbinds every device attached here and destroys the
// IOAS, which unmaps everything and drops its pins. Closing twice is not
// an error.
func (as *AddressSpace) Close() error {
	as.b.mu.Lock()
	defer as.b.mu.Unlock()
	return as.closeLocked()
}

// closeLocked is Close with b.mu held.
func (as *AddressSpace) closeLocked() error {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.closed {
		return nil
	}
	as.closed = true
	delete(as.b.spaces, as)
	var errs []error
	for a := range as.attached {
		errs = append(errs, a.detachLocked())
	}
	errs = append(errs, as.destroyObjectsLocked()...)
	err := as.b.opts.step(StepDestroy)
	if err == nil {
		err = as.b.fd.Destroy(as.ioas)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("destroy IOAS %d: %w", as.ioas, iommu.Wrap(err)))
	}
	return errors.Join(errs...)
}

// Attachment is a device bound to the backend's iommufd and attached to
// one of its IOASes.
type Attachment struct {
	b        *Backend
	as       *AddressSpace // guarded by b.mu; changes on replace
	dev      iommu.Device
	vdev     *vfio.Device
	devID    iommufd.ID
	hwpt     iommufd.ID // guarded by b.mu
	explicit bool       // hwpt is one of b.objects, not the IOAS's automatic one; guarded by b.mu
	detached bool       // guarded by b.mu
}

// Device implements iommu.Attachment; Cdev is filled in.
func (a *Attachment) Device() iommu.Device { return a.dev }

// VFIODevice is the bound cdev, for driving the device (BAR access, DMA
// engines, resets) or handing its fd to QEMU. The Attachment keeps
// ownership; it is closed by Detach.
func (a *Attachment) VFIODevice() *vfio.Device { return a.vdev }

// DeviceID is the device's object ID in the iommufd (from the bind).
func (a *Attachment) DeviceID() iommufd.ID { return a.devID }

// HWPT is the page table the kernel attached the device to: the one it
// created for the IOAS, or shares with a group sibling.
func (a *Attachment) HWPT() iommufd.ID {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.hwpt
}

// Detach detaches the device (VFIO_DEVICE_DETACH_IOMMUFD_PT: DMA blocked)
// and closes its cdev, which unbinds it from the iommufd. Idempotent.
func (a *Attachment) Detach(ctx context.Context) error {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.detachLocked()
}

func (a *Attachment) detachLocked() error {
	if a.detached {
		return nil
	}
	a.detached = true
	delete(a.as.attached, a)
	delete(a.b.bound, a.dev.BDF)
	var errs []error
	err := a.b.opts.step(StepDetach)
	if err == nil {
		err = a.vdev.DetachIOMMUFDPT()
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("detach %s from IOAS %d: %w", a.dev.BDF, a.as.ioas, iommu.Wrap(err)))
	}
	errs = append(errs, a.destroyVDevicesLocked()...)
	if err := a.vdev.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close VFIO cdev of %s: %w", a.dev.BDF, err))
	}
	return errors.Join(errs...)
}

// HWInfo implements iommu.HWInfoer with IOMMU_GET_HW_INFO.
func (a *Attachment) HWInfo(ctx context.Context) (iommu.HWInfo, error) {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.detached {
		return iommu.HWInfo{}, fmt.Errorf("HW info of %s: attachment %w", a.dev.BDF, iommu.ErrClosed)
	}
	info, err := a.b.fd.GetHWInfo(a.devID)
	if err != nil {
		return iommu.HWInfo{}, fmt.Errorf("HW info of %s: %w", a.dev.BDF, iommu.Wrap(err))
	}
	return iommu.HWInfo{Type: hwInfoType(info.Type), Data: info.Data}, nil
}

func hwInfoType(t iommufd.HWInfoType) string {
	switch t {
	case iommufd.HWInfoTypeNone:
		return "none"
	case iommufd.HWInfoTypeIntelVTD:
		return "intel-vtd"
	case iommufd.HWInfoTypeARMSMMUv3:
		return "arm-smmuv3"
	case iommufd.HWInfoTypeTegra241CMDQV:
		return "tegra241-cmdqv"
	}
	return fmt.Sprintf("type-%d", uint32(t))
}

// findCdev returns the cdev node of the PCI function bdf from sysfs:
// bus/pci/devices/BDF/vfio-dev/vfioN names it.
func findCdev(sysfsRoot, devDir, bdf string) (string, error) {
	devPath := filepath.Join(sysfsRoot, "bus", "pci", "devices", bdf)
	entries, err := os.ReadDir(filepath.Join(devPath, "vfio-dev"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(devPath); serr != nil {
			return "", fmt.Errorf("no PCI device %s in %s: %w", bdf, filepath.Dir(devPath), iommu.ErrNotFound)
		}
		driver := "no driver"
		if link, lerr := os.Readlink(filepath.Join(devPath, "driver")); lerr == nil {
			driver = "driver " + filepath.Base(link)
		}
		if strings.HasPrefix(driver, "driver vfio") {
			return "", &iommu.UnsupportedError{Feature: "VFIO device cdev (" + bdf + " has " + driver + " but no vfio-dev)", MinKernel: "6.6", Err: err}
		}
		return "", fmt.Errorf("%s has %s, not a VFIO driver, so no cdev: %w", bdf, driver, iommu.ErrInvalid)
	}
	if err != nil {
		return "", fmt.Errorf("find VFIO cdev of %s: %w", bdf, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "vfio") {
			names = append(names, e.Name())
		}
	}
	if len(names) != 1 {
		return "", fmt.Errorf("%s/vfio-dev holds %q, want one vfioN: %w", devPath, names, iommu.ErrInvalid)
	}
	return filepath.Join(devDir, names[0]), nil
}
