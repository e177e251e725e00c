//go:build linux

// Package type1 is the legacy VFIO backend of agent/iommu: an address space
// is a container (/dev/vfio/vfio) with the VFIO_TYPE1v2_IOMMU model, and a
// device is reached through its group (/dev/vfio/N). The same calls work on
// iommufd's vfio-compat container, which Open recognises (Flavour Compat).
//
// The kernel's semantics are kept: unmapping nothing is 0 bytes (on compat
// too), cutting a mapping EINVAL on type1v2 and ENOENT on compat, and the
// last group leaving a type1 container drops every mapping in it (the compat
// container keeps them). Before any group, type1 answers EINVAL and compat
// ENODEV.
package type1

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/internal/cleanup"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// Options configure Open. The zero value uses the real device nodes and
// finds out whether the container is iommufd's compat one.
type Options struct {
	// ContainerPath is the container node; vfio.DefaultContainerPath
	// when empty.
	ContainerPath string
	// GroupDir holds the group nodes; "/dev/vfio" when empty.
	GroupDir string
	// Flavour is iommu.Type1v2 or iommu.Compat to skip the probe; empty
	// probes the container.
	Flavour iommu.Flavour
	// FailStep, when set, is called before each kernel step of a setup
	// (the Step constants); an error it returns fails that step as if the
	// kernel had. Fault-injection tests use it to prove the unwinding.
	FailStep func(step string) error
}

// Setup steps, as FailStep sees them.
const (
	StepOpenContainer = "open-container" // open /dev/vfio/vfio
	StepOpenGroup     = "open-group"     // open /dev/vfio/N
	StepGroupStatus   = "group-status"   // VFIO_GROUP_GET_STATUS
	StepSetContainer  = "set-container"  // VFIO_GROUP_SET_CONTAINER
	StepSetIOMMU      = "set-iommu"      // VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)
	StepDeviceFD      = "device-fd"      // VFIO_GROUP_GET_DEVICE_FD

	// StepUnsetContainer is a teardown step: a failure is reported and
	// the group is closed anyway, which takes it out of the container.
	StepUnsetContainer = "unset-container" // VFIO_GROUP_UNSET_CONTAINER
)

func (o *Options) step(name string) error {
	if o.FailStep == nil {
		return nil
	}
	return o.FailStep(name)
}

var (
	_ iommu.Backend      = (*Backend)(nil)
	_ iommu.AddressSpace = (*AddressSpace)(nil)
	_ iommu.DirtyTracker = (*AddressSpace)(nil)
	_ iommu.Attachment   = (*Attachment)(nil)
)

// Backend opens containers. A group can be open only once system-wide, so
// the Backend keeps each group it opened, in the one container it joined.
type Backend struct {
	opts    Options
	flavour iommu.Flavour

	// mu guards everything below and the group state of every address
	// space; it is taken before an AddressSpace's mu.
	mu     sync.Mutex
	closed bool
	spaces map[*AddressSpace]struct{}
	groups map[int]*group
}

// Open checks that the container node works and speaks type1v2. A missing
// node is an *iommu.UnsupportedError, so iommu.Select moves on.
func Open(ctx context.Context, opts Options) (*Backend, error) {
	if opts.ContainerPath == "" {
		opts.ContainerPath = vfio.DefaultContainerPath
	}
	if opts.GroupDir == "" {
		opts.GroupDir = "/dev/vfio"
	}
	c, err := opts.openContainer()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	flavour := opts.Flavour
	if flavour == "" {
		flavour = probeFlavour(c)
	}
	if v, err := c.APIVersion(); err != nil || v != uapi.VFIO_API_VERSION {
		return nil, &iommu.UnsupportedError{Feature: fmt.Sprintf("VFIO API version %d at %s (got %d)", uapi.VFIO_API_VERSION, opts.ContainerPath, v), Err: err}
	}
	if ok, err := c.CheckExtension(uapi.VFIO_TYPE1v2_IOMMU); err != nil || ok <= 0 {
		return nil, &iommu.UnsupportedError{Feature: "VFIO_TYPE1v2_IOMMU at " + opts.ContainerPath, Err: err}
	}
	return &Backend{opts: opts, flavour: flavour, spaces: make(map[*AddressSpace]struct{}), groups: make(map[int]*group)}, nil
}

func (o *Options) openContainer() (*vfio.Container, error) {
	err := o.step(StepOpenContainer)
	var c *vfio.Container
	if err == nil {
		c, err = vfio.OpenContainer(o.ContainerPath)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			return nil, &iommu.UnsupportedError{Feature: "VFIO container (" + o.ContainerPath + ")", Err: err}
		}
		return nil, fmt.Errorf("open VFIO container %s: %w", o.ContainerPath, iommu.Wrap(err))
	}
	return c, nil
}

// probeFlavour tells iommufd's compat container from the real one: only
// iommufd answers its own IOMMU_OPTION (a read of RLIMIT_MODE, which
// changes nothing); the VFIO container refuses an ioctl it does not know.
func probeFlavour(c *vfio.Container) iommu.Flavour {
	arg := make([]byte, 24) // struct iommu_option
	binary.NativeEndian.PutUint32(arg[0:], uint32(len(arg)))
	binary.NativeEndian.PutUint32(arg[4:], uapi.IOMMU_OPTION_RLIMIT_MODE)
	binary.NativeEndian.PutUint16(arg[8:], uapi.IOMMU_OPTION_OP_GET)
	if _, err := c.Ioctl(uapi.IOMMU_OPTION, arg); err == nil {
		return iommu.Compat
	}
	return iommu.Type1v2
}

// Flavour implements iommu.Backend: iommu.Type1v2, or iommu.Compat on
// iommufd's container.
func (b *Backend) Flavour() iommu.Flavour { return b.flavour }

// NewAddressSpace opens a container. It has no IOMMU model until the first
// Attach: the kernel refuses maps and info on it until then.
func (b *Backend) NewAddressSpace(ctx context.Context) (iommu.AddressSpace, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("new address space: backend %w", iommu.ErrClosed)
	}
	c, err := b.opts.openContainer()
	if err != nil {
		return nil, err
	}
	as := &AddressSpace{b: b, c: c, groups: make(map[int]*group)}
	b.spaces[as] = struct{}{}
	return as, nil
}

// Close closes every address space: device fds, groups and containers.
// Closing twice is not an error.
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
	return errors.Join(errs...)
}

// group is an open group in a container.
type group struct {
	id      int
	g       *vfio.Group
	as      *AddressSpace
	devices map[string]*Attachment // by BDF
}

// AddressSpace is a container.
type AddressSpace struct {
	b *Backend
	c *vfio.Container

	groups map[int]*group // guarded by b.mu; the IOMMU is set iff non-empty

	// mu serialises Map and Unmap with each other and with the mapping
	// record the IOVA allocator uses, and guards closed.
	mu     sync.Mutex
	closed bool
	maps   []span // sorted by start
}

type span struct{ start, length uint64 }

// Container is the VFIO container, for calls the interface does not cover
// (DMA_AVAIL, UPDATE_VADDR). The AddressSpace keeps ownership.
func (as *AddressSpace) Container() *vfio.Container { return as.c }

// Attach puts dev's group into the container, on its first device
// (VFIO_GROUP_SET_CONTAINER, then VFIO_SET_IOMMU for the container's first
// group), and opens the device fd. Devices of a group already here share
// it; a group in another container is iommu.ErrBusy, since type1 cannot move
// a group with open devices.
func (as *AddressSpace) Attach(ctx context.Context, dev iommu.Device) (iommu.Attachment, error) {
	b := as.b
	b.mu.Lock()
	defer b.mu.Unlock()
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.closed {
		return nil, fmt.Errorf("attach %s: address space %w", dev.BDF, iommu.ErrClosed)
	}
	var cu cleanup.Stack
	defer cu.Clean()
	g := b.groups[dev.Group]
	switch {
	case g != nil && g.as != as:
		return nil, fmt.Errorf("attach %s: its group %d is in another container: %w", dev.BDF, dev.Group, iommu.ErrBusy)
	case g != nil && g.devices[dev.BDF] != nil:
		return nil, fmt.Errorf("attach %s: already attached: %w", dev.BDF, iommu.ErrExists)
	case g == nil:
		var err error
		if g, err = as.joinLocked(&cu, dev); err != nil {
			return nil, err
		}
	}
	err := b.opts.step(StepDeviceFD)
	var vdev *vfio.Device
	if err == nil {
		vdev, err = g.g.DeviceFD(dev.BDF)
	}
	if err != nil {
		return nil, fmt.Errorf("attach %s: open its device fd from group %d: %w", dev.BDF, dev.Group, iommu.Wrap(err))
	}
	cu.Release()
	a := &Attachment{b: b, g: g, dev: dev, vdev: vdev}
	g.devices[dev.BDF] = a
	b.groups[g.id] = g
	as.groups[g.id] = g
	return a, nil
}

// joinLocked opens dev's group and puts it into the container, adding the
// undo steps to cu. b.mu and as.mu are held.
func (as *AddressSpace) joinLocked(cu *cleanup.Stack, dev iommu.Device) (*group, error) {
	o := &as.b.opts
	path := filepath.Join(o.GroupDir, strconv.Itoa(dev.Group))
	err := o.step(StepOpenGroup)
	var g *vfio.Group
	if err == nil {
		g, err = vfio.OpenGroup(path)
	}
	if err != nil {
		return nil, fmt.Errorf("attach %s: open group %s: %w", dev.BDF, path, iommu.Wrap(err))
	}
	cu.Add(func() { g.Close() })
	err = o.step(StepGroupStatus)
	var st vfio.GroupFlags
	if err == nil {
		st, err = g.Status()
	}
	if err != nil {
		return nil, fmt.Errorf("attach %s: status of group %d: %w", dev.BDF, dev.Group, iommu.Wrap(err))
	}
	if !st.Viable() {
		return nil, fmt.Errorf("attach %s: group %d is not viable (a device in it has a host driver): %w", dev.BDF, dev.Group, iommu.ErrBusy)
	}
	if err := o.step(StepSetContainer); err != nil {
		return nil, fmt.Errorf("attach %s: put group %d into the container: %w", dev.BDF, dev.Group, iommu.Wrap(err))
	}
	if err := g.SetContainer(as.c); err != nil {
		return nil, fmt.Errorf("attach %s: put group %d into the container: %w", dev.BDF, dev.Group, iommu.Wrap(err))
	}
	first := len(as.groups) == 0
	cu.Add(func() { g.UnsetContainer() })
	if first {
		err := o.step(StepSetIOMMU)
		if err == nil {
			err = as.c.SetIOMMU(uapi.VFIO_TYPE1v2_IOMMU)
		}
		if err != nil {
			return nil, fmt.Errorf("attach %s: set the container's IOMMU to type1v2: %w", dev.BDF, iommu.Wrap(err))
		}
	}
	return &group{id: dev.Group, g: g, as: as, devices: make(map[string]*Attachment)}, nil
}

// Map implements iommu.AddressSpace with VFIO_IOMMU_MAP_DMA. type1 has no
// kernel-chosen IOVA, so without m.Fixed the backend picks the lowest hole
// in the container's IOVA ranges aligned to the largest power of two not
// above the length (as iommufd would), from the mappings it made.
func (as *AddressSpace) Map(ctx context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.closed {
		return 0, fmt.Errorf("map: address space %w", iommu.ErrClosed)
	}
	iova := uint64(m.IOVA)
	if len(m.Mem) == 0 {
		// The ioctl layer cannot pass an empty slice; the kernel refuses
		// size 0 with EINVAL (vfio_dma_do_map).
		return 0, fmt.Errorf("map 0 bytes at %#x into the container: %w", iova, iommu.Wrap(unix.EINVAL))
	}
	if !m.Fixed {
		var err error
		if iova, err = as.pickIOVALocked(uint64(len(m.Mem))); err != nil {
			return 0, err
		}
	}
	var flags vfio.DMAMapFlags
	if m.Perm&iommu.Read != 0 {
		flags |= vfio.DMARead
	}
	if m.Perm&iommu.Write != 0 {
		flags |= vfio.DMAWrite
	}
	if err := as.c.MapDMA(m.Mem, iova, flags); err != nil {
		return 0, fmt.Errorf("map %#x bytes at %#x into the container: %w", len(m.Mem), iova, iommu.Wrap(err))
	}
	s := span{iova, uint64(len(m.Mem))}
	i, _ := slices.BinarySearchFunc(as.maps, s, func(a, b span) int { return cmpU64(a.start, b.start) })
	as.maps = slices.Insert(as.maps, i, s)
	return iommu.IOVA(iova), nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pickIOVALocked finds where a length-byte mapping fits. as.mu is held.
func (as *AddressSpace) pickIOVALocked(length uint64) (uint64, error) {
	ranges, pageAlign, err := as.rangesLocked()
	if err != nil {
		return 0, fmt.Errorf("pick an IOVA: %w", err)
	}
	return pickIOVA(ranges, pageAlign, as.maps, length)
}

// pickIOVA returns the lowest IOVA in ranges, aligned to the largest power
// of two not above length (at most 1 GiB, at least pageAlign), where
// length bytes overlap none of maps.
func pickIOVA(ranges []iommu.Range, pageAlign uint64, maps []span, length uint64) (uint64, error) {
	if length == 0 || length%pageAlign != 0 {
		// What type1 and iommufd answer for such a length (iopt_map_pages,
		// vfio_dma_do_map).
		return 0, fmt.Errorf("pick an IOVA for %#x bytes (IOMMU page %#x): %w", length, pageAlign, iommu.Wrap(unix.EINVAL))
	}
	align := uint64(1) << (63 - bits.LeadingZeros64(length))
	align = max(min(align, 1<<30), pageAlign)
	for _, r := range ranges {
		cand := alignUp(uint64(r.Start), align)
		for cand >= uint64(r.Start) && cand+length-1 >= cand && cand+length-1 <= uint64(r.Last) {
			hit := -1
			for i, s := range maps {
				if cand < s.start+s.length && s.start < cand+length {
					hit = i
					break
				}
			}
			if hit < 0 {
				return cand, nil
			}
			end := maps[hit].start + maps[hit].length
			next := alignUp(end, align)
			if next < end || end == 0 {
				break
			}
			cand = next
		}
	}
	// iommufd's answer when it finds no hole.
	return 0, fmt.Errorf("pick an IOVA for %#x bytes: no hole in %v: %w", length, ranges, iommu.Wrap(unix.ENOSPC))
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// Unmap implements iommu.AddressSpace with VFIO_IOMMU_UNMAP_DMA. The
// kernel's answers stand: a range holding nothing unmaps 0 bytes (type1v2
// and compat alike), one cutting a mapping is EINVAL (type1v2) or ENOENT
// (compat).
// Unmap(0, math.MaxUint64) is VFIO_DMA_UNMAP_FLAG_ALL.
func (as *AddressSpace) Unmap(ctx context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.closed {
		return 0, fmt.Errorf("unmap: address space %w", iommu.ErrClosed)
	}
	var n uint64
	var err error
	if iova == 0 && length == math.MaxUint64 {
		n, err = as.c.UnmapDMA(0, 0, vfio.UnmapAll)
	} else {
		n, err = as.c.UnmapDMA(uint64(iova), length, 0)
	}
	if err != nil {
		return n, fmt.Errorf("unmap %#x bytes at %#x from the container: %w", length, uint64(iova), iommu.Wrap(err))
	}
	last := uint64(iova) + length - 1
	if last < uint64(iova) {
		last = math.MaxUint64
	}
	as.maps = slices.DeleteFunc(as.maps, func(s span) bool {
		return s.start >= uint64(iova) && s.start+s.length-1 <= last
	})
	return n, nil
}

// Ranges implements iommu.AddressSpace with VFIO_IOMMU_GET_INFO: the
// IOVA_RANGE capability, and the smallest IOMMU page as alignment.
func (as *AddressSpace) Ranges(ctx context.Context) ([]iommu.Range, uint64, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.closed {
		return nil, 0, fmt.Errorf("IOVA ranges: address space %w", iommu.ErrClosed)
	}
	return as.rangesLocked()
}

func (as *AddressSpace) rangesLocked() ([]iommu.Range, uint64, error) {
	info, err := as.c.IOMMUInfo()
	if err != nil {
		return nil, 0, fmt.Errorf("IOVA ranges of the container: %w", iommu.Wrap(err))
	}
	align := uint64(1)
	if info.PageSizes != 0 {
		align = info.PageSizes & -info.PageSizes
	}
	if info.IOVARanges == nil { // before 5.4: everything
		return []iommu.Range{{Start: 0, Last: math.MaxUint64}}, align, nil
	}
	out := make([]iommu.Range, len(info.IOVARanges))
	for i, r := range info.IOVARanges {
		out[i] = iommu.Range{Start: iommu.IOVA(r.Start), Last: iommu.IOVA(r.End)}
	}
	return out, align, nil
}

// SetDirtyTracking implements iommu.DirtyTracker with
// VFIO_IOMMU_DIRTY_PAGES START and STOP (type1 only: compat answers ENOTTY).
func (as *AddressSpace) SetDirtyTracking(ctx context.Context, enable bool) error {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.closed {
		return fmt.Errorf("set dirty tracking: address space %w", iommu.ErrClosed)
	}
	var err error
	if enable {
		err = as.c.DirtyPagesStart()
	} else {
		err = as.c.DirtyPagesStop()
	}
	if err != nil {
		return fmt.Errorf("set dirty tracking %t on the container: %w", enable, iommu.Wrap(err))
	}
	return nil
}

// ReadDirty implements iommu.DirtyTracker with VFIO_IOMMU_DIRTY_PAGES
// GET_BITMAP, which always clears: keep is not supported.
func (as *AddressSpace) ReadDirty(ctx context.Context, iova iommu.IOVA, length, pageSize uint64, keep bool) ([]uint64, error) {
	if keep {
		return nil, &iommu.UnsupportedError{Feature: "reading type1 dirty bits without clearing them"}
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.closed {
		return nil, fmt.Errorf("read dirty bitmap: address space %w", iommu.ErrClosed)
	}
	if pageSize == 0 {
		return nil, fmt.Errorf("read dirty bitmap with page size 0: %w", iommu.ErrInvalid)
	}
	pages := length / pageSize
	if length%pageSize != 0 {
		pages++
	}
	bitmap := make([]uint64, (pages+63)/64)
	if err := as.c.DirtyPagesBitmap(uint64(iova), length, pageSize, bitmap); err != nil {
		return nil, fmt.Errorf("read dirty bitmap for %#x bytes at %#x: %w", length, uint64(iova), iommu.Wrap(err))
	}
	return bitmap, nil
}

// Close closes every device fd, takes every group out of the container
// (the last one out drops all mappings and pins) and closes it. Closing
// twice is not an error.
func (as *AddressSpace) Close() error {
	as.b.mu.Lock()
	defer as.b.mu.Unlock()
	return as.closeLocked()
}

// closeLocked is Close with b.mu held.
func (as *AddressSpace) closeLocked() error {
	as.mu.Lock()
	if as.closed {
		as.mu.Unlock()
		return nil
	}
	as.closed = true
	as.mu.Unlock()
	delete(as.b.spaces, as)
	var errs []error
	for _, g := range as.groups {
		for _, a := range g.devices {
			errs = append(errs, a.detachLocked())
		}
	}
	if err := as.c.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close container: %w", err))
	}
	return errors.Join(errs...)
}

// Attachment is a device fd of a group in a container.
type Attachment struct {
	b        *Backend
	g        *group
	dev      iommu.Device
	vdev     *vfio.Device
	detached bool // guarded by b.mu
}

// Device implements iommu.Attachment.
func (a *Attachment) Device() iommu.Device { return a.dev }

// VFIODevice is the device fd, for driving the device or handing it to
// QEMU. The Attachment keeps ownership; Detach closes it.
func (a *Attachment) VFIODevice() *vfio.Device { return a.vdev }

// Detach closes the device fd; for the group's last device it also takes
// the group out of the container (VFIO_GROUP_UNSET_CONTAINER) and closes
// it. When that was the container's last group, type1 drops every mapping
// in it; the compat container keeps them, unpinned until a group is back.
// Idempotent.
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
	var errs []error
	if err := a.vdev.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close device fd of %s: %w", a.dev.BDF, err))
	}
	g := a.g
	delete(g.devices, a.dev.BDF)
	if len(g.devices) > 0 {
		return errors.Join(errs...)
	}
	err := a.b.opts.step(StepUnsetContainer)
	if err == nil {
		err = g.g.UnsetContainer()
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("take group %d out of the container: %w", g.id, iommu.Wrap(err)))
	}
	if err := g.g.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close group %d: %w", g.id, err))
	}
	delete(a.b.groups, g.id)
	delete(g.as.groups, g.id)
	if len(g.as.groups) == 0 && a.b.flavour == iommu.Type1v2 {
		// type1 dropped them with the last group; the compat container's
		// IOAS keeps them (unpinned until a group comes back).
		g.as.mu.Lock()
		g.as.maps = nil
		g.as.mu.Unlock()
	}
	return errors.Join(errs...)
}
