//go:build linux

package vfio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

// Device is an open VFIO device: a cdev, or a device fd from a group.
type Device struct {
	fd *raw.FD
}

// OpenDevice opens a VFIO device cdev (/dev/vfio/devices/vfioN, 6.6). Until
// BindIOMMUFD succeeds the kernel refuses everything else on it. An open
// cdev keeps the device's group from being opened (EBUSY), and the other
// way round.
func OpenDevice(path string) (*Device, error) {
	fd, err := raw.Open(path, unix.O_RDWR)
	if err != nil {
		return nil, err
	}
	return &Device{fd: fd}, nil
}

// Close closes the device, which unbinds a cdev from its iommufd. Closing
// twice is not an error. Mappings from Mmap stay valid until Munmap.
func (d *Device) Close() error { return d.fd.Close() }

// FD returns the descriptor number, or -1 once closed. The Device keeps
// ownership.
func (d *Device) FD() int { return d.fd.Int() }

// DeviceFlags are the flags of DeviceInfo (uapi.VFIO_DEVICE_FLAGS_*).
type DeviceFlags uint32

// Reset reports whether the device supports Reset.
func (f DeviceFlags) Reset() bool { return f&uapi.VFIO_DEVICE_FLAGS_RESET != 0 }

// PCI reports whether this is a vfio-pci device, with the fixed
// uapi.VFIO_PCI_* region and IRQ indexes.
func (f DeviceFlags) PCI() bool { return f&uapi.VFIO_DEVICE_FLAGS_PCI != 0 }

// DeviceInfo is the decoded answer of VFIO_DEVICE_GET_INFO.
type DeviceInfo struct {
	Flags      DeviceFlags
	NumRegions uint32 // highest region index + 1
	NumIRQs    uint32 // highest IRQ index + 1
	// PCIAtomicComp holds the uapi.VFIO_PCI_ATOMIC_COMP* widths the root
	// port completes, when the kernel reports the capability (6.2).
	PCIAtomicComp *uint32
	// Caps is the whole capability chain, unknown IDs (s390 zPCI) included.
	Caps []Capability
}

// Info wraps VFIO_DEVICE_GET_INFO.
func (d *Device) Info() (*DeviceInfo, error) {
	const op = "VFIO_DEVICE_GET_INFO"
	fixed := newBuf(int(unsafe.Sizeof(uapi.VFIODeviceInfo{})))
	buf, err := queryInfo(fixed, func(buf []byte) error {
		return raw.Ioctl(d.fd, uapi.VFIO_DEVICE_GET_INFO, bufPtr(buf))
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	info, err := decodeDeviceInfo(buf)
	return info, wrap(op, err)
}

func decodeDeviceInfo(buf []byte) (*DeviceInfo, error) {
	fixed := as[uapi.VFIODeviceInfo](buf)
	info := &DeviceInfo{Flags: DeviceFlags(fixed.Flags), NumRegions: fixed.NumRegions, NumIRQs: fixed.NumIRQs}
	if fixed.Flags&uapi.VFIO_DEVICE_FLAGS_CAPS == 0 {
		return info, nil
	}
	caps, err := parseCaps(buf, fixed.CapOffset, int(unsafe.Sizeof(*fixed)))
	if err != nil {
		return nil, err
	}
	info.Caps = caps
	for _, c := range caps {
		if c.ID == uapi.VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP && info.PCIAtomicComp == nil {
			v, err := decodeU32(c)
			if err != nil {
				return nil, err
			}
			info.PCIAtomicComp = &v
		}
	}
	return info, nil
}

// RegionFlags are the flags of RegionInfo (uapi.VFIO_REGION_INFO_FLAG_*).
type RegionFlags uint32

// Read reports whether the region can be read (ReadAt).
func (f RegionFlags) Read() bool { return f&uapi.VFIO_REGION_INFO_FLAG_READ != 0 }

// Write reports whether the region can be written (WriteAt).
func (f RegionFlags) Write() bool { return f&uapi.VFIO_REGION_INFO_FLAG_WRITE != 0 }

// Mmap reports whether the region can be mmapped (Mmap), in whole or in
// the areas RegionInfo.SparseMmap lists.
func (f RegionFlags) Mmap() bool { return f&uapi.VFIO_REGION_INFO_FLAG_MMAP != 0 }

// RegionInfo is the decoded answer of VFIO_DEVICE_GET_REGION_INFO.
type RegionInfo struct {
	Index uint32
	Flags RegionFlags
	Size  uint64 // 0 for an unimplemented region (an absent BAR)
	// Offset is where the region starts in the device fd: the offset for
	// ReadAt, WriteAt and Mmap.
	Offset uint64
	// SparseMmap lists the only parts of the region that may be mmapped
	// (VFIO_REGION_INFO_CAP_SPARSE_MMAP); nil when the whole region may.
	SparseMmap []SparseMmapArea
	// Type is set for device specific regions (VFIO_REGION_INFO_CAP_TYPE).
	Type *RegionType
	// MSIXMappable reports VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: the MSI-X
	// table inside this BAR may be mmapped too.
	MSIXMappable bool
	// Caps is the whole capability chain, unknown IDs included.
	Caps []Capability
}

// RegionInfo wraps VFIO_DEVICE_GET_REGION_INFO for region index
// (uapi.VFIO_PCI_BAR0_REGION_INDEX ... uapi.VFIO_PCI_CONFIG_REGION_INDEX
// for vfio-pci).
func (d *Device) RegionInfo(index uint32) (*RegionInfo, error) {
	const op = "VFIO_DEVICE_GET_REGION_INFO"
	fixed := newBuf(int(unsafe.Sizeof(uapi.VFIORegionInfo{})))
	as[uapi.VFIORegionInfo](fixed).Index = index
	buf, err := queryInfo(fixed, func(buf []byte) error {
		return raw.Ioctl(d.fd, uapi.VFIO_DEVICE_GET_REGION_INFO, bufPtr(buf))
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	info, err := decodeRegionInfo(buf)
	return info, wrap(op, err)
}

func decodeRegionInfo(buf []byte) (*RegionInfo, error) {
	fixed := as[uapi.VFIORegionInfo](buf)
	info := &RegionInfo{Index: fixed.Index, Flags: RegionFlags(fixed.Flags), Size: fixed.Size, Offset: fixed.Offset}
	if fixed.Flags&uapi.VFIO_REGION_INFO_FLAG_CAPS == 0 {
		return info, nil
	}
	caps, err := parseCaps(buf, fixed.CapOffset, int(unsafe.Sizeof(*fixed)))
	if err != nil {
		return nil, err
	}
	info.Caps = caps
	for _, c := range caps {
		switch c.ID {
		case uapi.VFIO_REGION_INFO_CAP_SPARSE_MMAP:
			if info.SparseMmap == nil {
				if info.SparseMmap, err = decodeSparseMmap(c); err != nil {
					return nil, err
				}
				if info.SparseMmap == nil {
					info.SparseMmap = []SparseMmapArea{} // present, no mmappable area
				}
			}
		case uapi.VFIO_REGION_INFO_CAP_TYPE:
			if info.Type == nil {
				if info.Type, err = decodeRegionType(c); err != nil {
					return nil, err
				}
			}
		case uapi.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
			info.MSIXMappable = true
		}
	}
	return info, nil
}

// IRQFlags are the flags of IRQInfo (uapi.VFIO_IRQ_INFO_*).
type IRQFlags uint32

// EventFD reports whether the index signals through eventfds.
func (f IRQFlags) EventFD() bool { return f&uapi.VFIO_IRQ_INFO_EVENTFD != 0 }

// Maskable reports whether IRQMask and IRQUnmask work on the index.
func (f IRQFlags) Maskable() bool { return f&uapi.VFIO_IRQ_INFO_MASKABLE != 0 }

// Automasked reports a level-triggered index: after each signal the line
// stays masked until IRQUnmask.
func (f IRQFlags) Automasked() bool { return f&uapi.VFIO_IRQ_INFO_AUTOMASKED != 0 }

// NoResize reports that vectors of the index are set up as one set:
// enabling more means disabling the index first.
func (f IRQFlags) NoResize() bool { return f&uapi.VFIO_IRQ_INFO_NORESIZE != 0 }

// IRQInfo is the answer of VFIO_DEVICE_GET_IRQ_INFO.
type IRQInfo struct {
	Index uint32
	Flags IRQFlags
	Count uint32 // IRQs of the index; 0 = unimplemented
}

// IRQInfo wraps VFIO_DEVICE_GET_IRQ_INFO for IRQ index
// (uapi.VFIO_PCI_INTX_IRQ_INDEX ... uapi.VFIO_PCI_REQ_IRQ_INDEX for
// vfio-pci).
func (d *Device) IRQInfo(index uint32) (IRQInfo, error) {
	arg := uapi.VFIOIRQInfo{ArgSz: uint32(unsafe.Sizeof(uapi.VFIOIRQInfo{})), Index: index}
	if err := raw.Ioctl(d.fd, uapi.VFIO_DEVICE_GET_IRQ_INFO, unsafe.Pointer(&arg)); err != nil {
		return IRQInfo{}, wrap("VFIO_DEVICE_GET_IRQ_INFO", err)
	}
	return IRQInfo{Index: arg.Index, Flags: IRQFlags(arg.Flags), Count: arg.Count}, nil
}

// IRQAction is what SetIRQs does to the IRQs it names.
type IRQAction uint32

const (
	IRQMask    IRQAction = uapi.VFIO_IRQ_SET_ACTION_MASK   // mask (with eventfds: the fd masks)
	IRQUnmask  IRQAction = uapi.VFIO_IRQ_SET_ACTION_UNMASK // unmask (with eventfds: the fd unmasks)
	IRQTrigger IRQAction = uapi.VFIO_IRQ_SET_ACTION_TRIGGER
)

// IRQSet is one VFIO_DEVICE_SET_IRQS request on IRQs Start... of Index.
//
// At most one of EventFDs and Bools is set; it gives the data, one entry
// per IRQ from Start. With neither, the action applies at once to Count
// IRQs (DATA_NONE): {Action: IRQTrigger, Count: 0} disables the index.
// With EventFDs and IRQTrigger, each fd is signalled by its IRQ; -1
// de-assigns.
type IRQSet struct {
	Index    uint32
	Action   IRQAction
	Start    uint32
	Count    uint32 // DATA_NONE only; otherwise the length of the data
	EventFDs []int32
	Bools    []bool
}

var (
	errIRQData   = errors.New("both EventFDs and Bools set")
	errIRQAction = errors.New("action must be exactly one of IRQMask, IRQUnmask, IRQTrigger")
)

// irqSetBuf builds the vfio_irq_set argument of s, data included.
func irqSetBuf(s IRQSet) ([]byte, error) {
	switch s.Action {
	case IRQMask, IRQUnmask, IRQTrigger:
	default:
		return nil, fmt.Errorf("%w: %#x", errIRQAction, uint32(s.Action))
	}
	flags := uint32(s.Action)
	count := s.Count
	var data []byte
	switch {
	case s.EventFDs != nil && s.Bools != nil:
		return nil, errIRQData
	case s.EventFDs != nil:
		flags |= uapi.VFIO_IRQ_SET_DATA_EVENTFD
		count = uint32(len(s.EventFDs))
		data = make([]byte, 4*len(s.EventFDs))
		for i, fd := range s.EventFDs {
			binary.NativeEndian.PutUint32(data[4*i:], uint32(fd))
		}
	case s.Bools != nil:
		flags |= uapi.VFIO_IRQ_SET_DATA_BOOL
		count = uint32(len(s.Bools))
		data = make([]byte, len(s.Bools))
		for i, b := range s.Bools {
			if b {
				data[i] = 1
			}
		}
	default:
		flags |= uapi.VFIO_IRQ_SET_DATA_NONE
	}
	hdr := int(unsafe.Sizeof(uapi.VFIOIRQSet{}))
	buf := newBuf(hdr + len(data))
	*as[uapi.VFIOIRQSet](buf) = uapi.VFIOIRQSet{
		ArgSz: uint32(len(buf)),
		Flags: flags,
		Index: s.Index,
		Start: s.Start,
		Count: count,
	}
	copy(buf[hdr:], data)
	return buf, nil
}

// SetIRQs wraps VFIO_DEVICE_SET_IRQS.
func (d *Device) SetIRQs(s IRQSet) error {
	const op = "VFIO_DEVICE_SET_IRQS"
	buf, err := irqSetBuf(s)
	if err != nil {
		return wrap(op, err)
	}
	return wrap(op, raw.Ioctl(d.fd, uapi.VFIO_DEVICE_SET_IRQS, bufPtr(buf)))
}

// Reset wraps VFIO_DEVICE_RESET: a function level (or other device
// specific) reset, when DeviceFlags.Reset.
func (d *Device) Reset() error {
	return wrap("VFIO_DEVICE_RESET", raw.Ioctl(d.fd, uapi.VFIO_DEVICE_RESET, nil))
}

// Special DependentDevice.DevID values.
const (
	// DevIDOwned: no devid of its own in this iommufd, but owned through
	// the IOMMU group of a device that has one.
	DevIDOwned = uapi.VFIO_PCI_DEVID_OWNED
	// DevIDNotOwned: not owned by this iommufd; the cdev hot reset fails.
	DevIDNotOwned = uapi.VFIO_PCI_DEVID_NOT_OWNED
)

// DependentDevice is one device a hot reset of the calling device would
// also reset.
type DependentDevice struct {
	GroupID uint32 // its IOMMU group, when called on a group-obtained fd
	DevID   uint32 // its iommufd devid (or DevIDOwned/DevIDNotOwned), on a cdev
	Segment uint16
	Bus     uint8
	Devfn   uint8
}

// Slot is the PCI device number of Devfn.
func (d DependentDevice) Slot() uint8 { return d.Devfn >> 3 }

// Function is the PCI function number of Devfn.
func (d DependentDevice) Function() uint8 { return d.Devfn & 7 }

// HotResetInfo is the decoded answer of VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.
type HotResetInfo struct {
	Flags uint32 // uapi.VFIO_PCI_HOT_RESET_FLAG_*
	// DevIDs is set when the calling device is a cdev: Devices carry
	// DevID, not GroupID.
	DevIDs bool
	// AllOwned (cdev only) means every affected device is owned by this
	// iommufd: PCIHotReset then takes no group fds.
	AllOwned bool
	Devices  []DependentDevice
}

// Bounds for the hot reset INFO array: the first call's room, and what we
// believe of the count the kernel asks for.
const (
	hotResetInitialCount = 8
	hotResetMaxCount     = 1 << 16
)

// PCIHotResetInfo wraps VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, growing the
// array on ENOSPC as the header prescribes (the kernel then reports the
// count it needs). ENODEV: the device cannot be hot reset.
func (d *Device) PCIHotResetInfo() (*HotResetInfo, error) {
	info, err := hotResetInfo(func(buf []byte) error {
		return raw.Ioctl(d.fd, uapi.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, bufPtr(buf))
	})
	return info, wrap("VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", err)
}

func hotResetInfo(call func(buf []byte) error) (*HotResetInfo, error) {
	hdr := int(unsafe.Sizeof(uapi.VFIOPCIHotResetInfo{}))
	entry := int(unsafe.Sizeof(uapi.VFIOPCIDependentDevice{}))
	count := hotResetInitialCount
	for range infoMaxTries {
		buf := newBuf(hdr + count*entry)
		setArgSz(buf)
		err := call(buf)
		fixed := as[uapi.VFIOPCIHotResetInfo](buf)
		if errors.Is(err, unix.ENOSPC) {
			need := int(fixed.Count)
			if need <= count || need > hotResetMaxCount {
				return nil, fmt.Errorf("array of %d entries too small, kernel asks for %d: %w", count, need, err)
			}
			count = need
			continue
		}
		if err != nil {
			return nil, err
		}
		if int(fixed.Count) > count {
			return nil, fmt.Errorf("kernel reports %d devices in an array of %d", fixed.Count, count)
		}
		info := &HotResetInfo{
			Flags:    fixed.Flags,
			DevIDs:   fixed.Flags&uapi.VFIO_PCI_HOT_RESET_FLAG_DEV_ID != 0,
			AllOwned: fixed.Flags&uapi.VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED != 0,
			Devices:  make([]DependentDevice, fixed.Count),
		}
		for i := range info.Devices {
			e := buf[hdr+i*entry:]
			dev := DependentDevice{
				Segment: binary.NativeEndian.Uint16(e[4:]),
				Bus:     e[6],
				Devfn:   e[7],
			}
			if id := binary.NativeEndian.Uint32(e); info.DevIDs {
				dev.DevID = id
			} else {
				dev.GroupID = id
			}
			info.Devices[i] = dev
		}
		return info, nil
	}
	return nil, fmt.Errorf("array still too small after %d tries", infoMaxTries)
}

// hotResetBuf builds the vfio_pci_hot_reset argument with groupFDs.
func hotResetBuf(groupFDs []int) ([]byte, error) {
	hdr := int(unsafe.Sizeof(uapi.VFIOPCIHotReset{}))
	buf := newBuf(hdr + 4*len(groupFDs))
	*as[uapi.VFIOPCIHotReset](buf) = uapi.VFIOPCIHotReset{
		ArgSz: uint32(len(buf)),
		Count: uint32(len(groupFDs)),
	}
	for i, fd := range groupFDs {
		if fd < math.MinInt32 || fd > math.MaxInt32 {
			return nil, fmt.Errorf("group fd %d out of range", fd)
		}
		binary.NativeEndian.PutUint32(buf[hdr+4*i:], uint32(int32(fd)))
	}
	return buf, nil
}

// PCIHotReset wraps VFIO_DEVICE_PCI_HOT_RESET: a bus or slot reset of the
// device and of every device PCIHotResetInfo lists. On a group-obtained
// fd, groupFDs must prove ownership of all their groups (Group.FD); on a
// cdev it must be empty, and every affected device owned by the iommufd
// (HotResetInfo.AllOwned). Groups and cdevs cannot be mixed.
func (d *Device) PCIHotReset(groupFDs []int) error {
	const op = "VFIO_DEVICE_PCI_HOT_RESET"
	buf, err := hotResetBuf(groupFDs)
	if err != nil {
		return wrap(op, err)
	}
	return wrap(op, raw.Ioctl(d.fd, uapi.VFIO_DEVICE_PCI_HOT_RESET, bufPtr(buf)))
}

// FeatureOp selects what Feature does; FeatureProbe combines with the
// others to ask whether they are supported.
type FeatureOp uint32

const (
	FeatureGet   FeatureOp = uapi.VFIO_DEVICE_FEATURE_GET
	FeatureSet   FeatureOp = uapi.VFIO_DEVICE_FEATURE_SET
	FeatureProbe FeatureOp = uapi.VFIO_DEVICE_FEATURE_PROBE
)

var errFeature = errors.New("feature index above 0xffff")

// featureBuf builds the vfio_device_feature argument with data after it.
func featureBuf(feature uint32, op FeatureOp, data []byte) ([]byte, error) {
	if feature > uapi.VFIO_DEVICE_FEATURE_MASK {
		return nil, fmt.Errorf("%w: %d", errFeature, feature)
	}
	hdr := int(unsafe.Sizeof(uapi.VFIODeviceFeature{}))
	buf := newBuf(hdr + len(data))
	*as[uapi.VFIODeviceFeature](buf) = uapi.VFIODeviceFeature{ArgSz: uint32(len(buf)), Flags: feature | uint32(op)}
	copy(buf[hdr:], data)
	return buf, nil
}

// Feature wraps VFIO_DEVICE_FEATURE for feature index feature
// (uapi.VFIO_DEVICE_FEATURE_MIGRATION ...) with the payload data, laid out
// as the feature's struct in package uapi. With FeatureGet the kernel's
// answer is copied back into data. It returns the ioctl's result, which
// some features use (a new fd).
//
// ENOTTY: the device's driver does not know the feature; EINVAL: it does
// not support op, or data is too short for it.
func (d *Device) Feature(feature uint32, op FeatureOp, data []byte) (int, error) {
	const name = "VFIO_DEVICE_FEATURE"
	buf, err := featureBuf(feature, op, data)
	if err != nil {
		return 0, wrap(name, err)
	}
	r, err := raw.IoctlRet(d.fd, uapi.VFIO_DEVICE_FEATURE, bufPtr(buf))
	if err != nil {
		return r, wrap(name, err)
	}
	if op&FeatureGet != 0 && op&FeatureProbe == 0 {
		copy(data, buf[unsafe.Sizeof(uapi.VFIODeviceFeature{}):])
	}
	return r, nil
}

// ProbeFeature wraps VFIO_DEVICE_FEATURE with FeatureProbe: nil when the
// device supports feature for op (FeatureGet, FeatureSet, both, or 0 for
// either).
func (d *Device) ProbeFeature(feature uint32, op FeatureOp) error {
	_, err := d.Feature(feature, op|FeatureProbe, nil)
	return err
}

// DMARange is a slice of a region, relative to its start.
type DMARange struct {
	Offset, Length uint64
}

// DMABuf wraps VFIO_DEVICE_FEATURE with VFIO_DEVICE_FEATURE_DMA_BUF (newer
// than 6.12; 6.19 per Cloud Hypervisor #8895): it exports ranges of region
// as a dma-buf, for iommufd's IOMMU_IOAS_MAP_FILE (a BAR cannot be mapped
// from its mmap). A kernel without it answers ENOTTY, returned as an
// *ioctl.UnsupportedError.
func (d *Device) DMABuf(region uint32, ranges []DMARange) (*os.File, error) {
	const op = "VFIO_DEVICE_FEATURE_DMA_BUF"
	if len(ranges) == 0 {
		return nil, wrap(op, errEmpty)
	}
	hdr := int(unsafe.Sizeof(uapi.VFIODeviceFeatureDMABuf{}))
	entry := int(unsafe.Sizeof(uapi.VFIORegionDMARange{}))
	data := newBuf(hdr + entry*len(ranges))
	*as[uapi.VFIODeviceFeatureDMABuf](data) = uapi.VFIODeviceFeatureDMABuf{
		RegionIndex: region,
		OpenFlags:   unix.O_RDWR | unix.O_CLOEXEC,
		NrRanges:    uint32(len(ranges)),
	}
	for i, r := range ranges {
		binary.NativeEndian.PutUint64(data[hdr+i*entry:], r.Offset)
		binary.NativeEndian.PutUint64(data[hdr+i*entry+8:], r.Length)
	}
	buf, err := featureBuf(uapi.VFIO_DEVICE_FEATURE_DMA_BUF, FeatureGet, data)
	if err != nil {
		return nil, wrap(op, err)
	}
	fd, err := raw.IoctlRet(d.fd, uapi.VFIO_DEVICE_FEATURE, bufPtr(buf))
	if err != nil {
		return nil, wrapSince(op, "6.19", err)
	}
	return os.NewFile(uintptr(fd), "vfio-dmabuf"), nil
}

var errFD = errors.New("invalid file descriptor")

// BindIOMMUFD wraps VFIO_DEVICE_BIND_IOMMUFD (6.6, cdev only): it binds
// the device to the iommufd iommufd and returns its device id there. Until
// then the cdev refuses all other use; Close unbinds.
//
// token is the VF token (a UUID, 16 bytes in its text order) a VF needs
// when its PF is owned by vfio-pci and has set one; leave it nil otherwise,
// as vfio.h asks. The token flag is 6.17: older kernels reject it with
// EINVAL, as they do a VF that needs a token it cannot pass. DPDK binds
// with the token first and retries without.
func (d *Device) BindIOMMUFD(iommufd int, token *[16]byte) (uint32, error) {
	const op = "VFIO_DEVICE_BIND_IOMMUFD"
	if iommufd < 0 || iommufd > math.MaxInt32 {
		return 0, wrap(op, fmt.Errorf("%w: %d", errFD, iommufd))
	}
	arg := bindArg(int32(iommufd), token)
	err := raw.Ioctl(d.fd, uapi.VFIO_DEVICE_BIND_IOMMUFD, unsafe.Pointer(&arg))
	runtime.KeepAlive(token) // its address is inside arg
	if err != nil {
		if token != nil && errors.Is(err, unix.EINVAL) {
			return 0, fmt.Errorf("%s with a VF token (kernels before 6.17 reject the flag with EINVAL): %w", op, err)
		}
		return 0, wrapSince(op, "6.6", err)
	}
	return arg.OutDevID, nil
}

func bindArg(iommufd int32, token *[16]byte) uapi.VFIODeviceBindIOMMUFD {
	arg := uapi.VFIODeviceBindIOMMUFD{
		// The 6.17 size: 6.12 reads only its 16-byte minsz, 6.17 sees a
		// zero token_uuid_ptr without the flag.
		ArgSz:   uint32(unsafe.Sizeof(uapi.VFIODeviceBindIOMMUFD{})),
		IOMMUFD: iommufd,
	}
	if token != nil {
		arg.Flags = uapi.VFIO_DEVICE_BIND_FLAG_TOKEN
		arg.TokenUUIDPtr = uint64(uintptr(unsafe.Pointer(token)))
	}
	return arg
}

// AttachIOMMUFDPT wraps VFIO_DEVICE_ATTACH_IOMMUFD_PT (6.6, cdev only): it
// attaches the bound device to IOAS or HWPT ptID and returns the HWPT
// actually used (one the kernel created for an IOAS). Attaching again
// replaces the page table. EBUSY while the device or a group sibling is
// resetting.
func (d *Device) AttachIOMMUFDPT(ptID uint32) (uint32, error) {
	arg := attachArg(ptID, nil)
	if err := raw.Ioctl(d.fd, uapi.VFIO_DEVICE_ATTACH_IOMMUFD_PT, unsafe.Pointer(&arg)); err != nil {
		return 0, wrapSince("VFIO_DEVICE_ATTACH_IOMMUFD_PT", "6.6", err)
	}
	return arg.PtID, nil
}

// AttachIOMMUFDPASID wraps VFIO_DEVICE_ATTACH_IOMMUFD_PT with
// VFIO_DEVICE_ATTACH_PASID (6.15): AttachIOMMUFDPT for one PASID of the
// device. Kernels before 6.15 reject the flag with EINVAL; EOPNOTSUPP:
// the driver has no PASID support.
func (d *Device) AttachIOMMUFDPASID(pasid, ptID uint32) (uint32, error) {
	const op = "VFIO_DEVICE_ATTACH_IOMMUFD_PT"
	arg := attachArg(ptID, &pasid)
	if err := raw.Ioctl(d.fd, uapi.VFIO_DEVICE_ATTACH_IOMMUFD_PT, unsafe.Pointer(&arg)); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return 0, fmt.Errorf("%s with a PASID (kernels before 6.15 reject the flag with EINVAL): %w", op, err)
		}
		return 0, wrapSince(op, "6.6", err)
	}
	return arg.PtID, nil
}

func attachArg(ptID uint32, pasid *uint32) uapi.VFIODeviceAttachIOMMUFDPT {
	arg := uapi.VFIODeviceAttachIOMMUFDPT{
		ArgSz: uint32(unsafe.Sizeof(uapi.VFIODeviceAttachIOMMUFDPT{})), // 6.12 reads its 12-byte minsz
		PtID:  ptID,
	}
	if pasid != nil {
		arg.Flags = uapi.VFIO_DEVICE_ATTACH_PASID
		arg.PASID = *pasid
	}
	return arg
}

// DetachIOMMUFDPT wraps VFIO_DEVICE_DETACH_IOMMUFD_PT (6.6, cdev only):
// the device goes back to blocked DMA.
func (d *Device) DetachIOMMUFDPT() error {
	arg := detachArg(nil)
	return wrapSince("VFIO_DEVICE_DETACH_IOMMUFD_PT", "6.6",
		raw.Ioctl(d.fd, uapi.VFIO_DEVICE_DETACH_IOMMUFD_PT, unsafe.Pointer(&arg)))
}

// DetachIOMMUFDPASID wraps VFIO_DEVICE_DETACH_IOMMUFD_PT with
// VFIO_DEVICE_DETACH_PASID (6.15); older kernels answer EINVAL.
func (d *Device) DetachIOMMUFDPASID(pasid uint32) error {
	const op = "VFIO_DEVICE_DETACH_IOMMUFD_PT"
	arg := detachArg(&pasid)
	if err := raw.Ioctl(d.fd, uapi.VFIO_DEVICE_DETACH_IOMMUFD_PT, unsafe.Pointer(&arg)); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%s with a PASID (kernels before 6.15 reject the flag with EINVAL): %w", op, err)
		}
		return wrapSince(op, "6.6", err)
	}
	return nil
}

func detachArg(pasid *uint32) uapi.VFIODeviceDetachIOMMUFDPT {
	arg := uapi.VFIODeviceDetachIOMMUFDPT{
		ArgSz: uint32(unsafe.Sizeof(uapi.VFIODeviceDetachIOMMUFDPT{})), // 6.12 reads its 8-byte minsz
	}
	if pasid != nil {
		arg.Flags = uapi.VFIO_DEVICE_DETACH_PASID
		arg.PASID = *pasid
	}
	return arg
}

var errWidth = errors.New("write width must be 1, 2, 4 or 8 bytes")

func ioeventfdArg(offset, data uint64, width int, eventfd int) (uapi.VFIODeviceIOEventFD, error) {
	var flags uint32
	switch width {
	case 1:
		flags = uapi.VFIO_DEVICE_IOEVENTFD_8
	case 2:
		flags = uapi.VFIO_DEVICE_IOEVENTFD_16
	case 4:
		flags = uapi.VFIO_DEVICE_IOEVENTFD_32
	case 8:
		flags = uapi.VFIO_DEVICE_IOEVENTFD_64
	default:
		return uapi.VFIODeviceIOEventFD{}, fmt.Errorf("%w: %d", errWidth, width)
	}
	if eventfd < -1 || eventfd > math.MaxInt32 {
		return uapi.VFIODeviceIOEventFD{}, fmt.Errorf("%w: %d", errFD, eventfd)
	}
	return uapi.VFIODeviceIOEventFD{
		ArgSz:  uint32(unsafe.Sizeof(uapi.VFIODeviceIOEventFD{})),
		Flags:  flags,
		Offset: offset,
		Data:   data,
		FD:     int32(eventfd),
	}, nil
}

// IOEventFD wraps VFIO_DEVICE_IOEVENTFD: when eventfd is signalled, the
// kernel writes data, width bytes wide (1, 2, 4 or 8), at device fd offset
// offset (a BAR region's Offset plus the register). eventfd -1 removes the
// one set with the same offset, data and width. vfio-pci supports BARs
// only, outside the MSI-X table.
func (d *Device) IOEventFD(offset, data uint64, width int, eventfd int) error {
	const op = "VFIO_DEVICE_IOEVENTFD"
	arg, err := ioeventfdArg(offset, data, width, eventfd)
	if err != nil {
		return wrap(op, err)
	}
	return wrap(op, raw.Ioctl(d.fd, uapi.VFIO_DEVICE_IOEVENTFD, unsafe.Pointer(&arg)))
}

// ReadAt reads len(p) bytes of the device at fd offset off (pread): a
// region's Offset plus the offset within it. It implements io.ReaderAt, so
// a short read comes with an error (io.EOF past a region's end).
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	return d.rw("pread", p, off, unix.Pread)
}

// WriteAt writes p to the device at fd offset off (pwrite). It implements
// io.WriterAt. PCI config space writes go through it: PCI_COMMAND is at
// config region Offset + 4.
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	return d.rw("pwrite", p, off, unix.Pwrite)
}

// rw loops over short transfers: vfio-pci stops at a region's end, and a
// retry there returns 0. No byte is accessed twice.
func (d *Device) rw(name string, p []byte, off int64, f func(int, []byte, int64) (int, error)) (int, error) {
	fd := d.fd.Int()
	if fd < 0 {
		return 0, fmt.Errorf("%s: %w", name, ErrClosed)
	}
	defer runtime.KeepAlive(d.fd) // its cleanup must not close fd mid-call
	n := 0
	for n < len(p) {
		m, err := f(fd, p[n:], off+int64(n))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return n, fmt.Errorf("%s device offset %#x: %w", name, off+int64(n), err)
		case m == 0:
			if name == "pwrite" {
				return n, fmt.Errorf("%s device offset %#x: %w", name, off+int64(n), io.ErrShortWrite)
			}
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Prot is the protection of a Mmap.
type Prot int

const (
	ProtRead  Prot = unix.PROT_READ
	ProtWrite Prot = unix.PROT_WRITE
)

var errNoMmap = errors.New("region does not support mmap")

// Mmap maps length bytes of region r, from offset within it, shared: BAR
// registers become plain memory accesses. With RegionInfo.SparseMmap only
// the listed areas may be mapped. Munmap releases the mapping; closing the
// device does not.
func (d *Device) Mmap(r *RegionInfo, offset, length uint64, prot Prot) ([]byte, error) {
	if !r.Flags.Mmap() {
		return nil, fmt.Errorf("mmap region %d: %w", r.Index, errNoMmap)
	}
	if length == 0 || offset > r.Size || length > r.Size-offset || length > math.MaxInt {
		return nil, fmt.Errorf("mmap region %d: %#x+%#x outside its %#x bytes", r.Index, offset, length, r.Size)
	}
	fd := d.fd.Int()
	if fd < 0 {
		return nil, fmt.Errorf("mmap region %d: %w", r.Index, ErrClosed)
	}
	b, err := unix.Mmap(fd, int64(r.Offset+offset), int(length), int(prot), unix.MAP_SHARED)
	runtime.KeepAlive(d.fd)
	if err != nil {
		return nil, fmt.Errorf("mmap region %d at %#x: %w", r.Index, offset, err)
	}
	return b, nil
}

// Munmap releases a mapping made by Mmap.
func (d *Device) Munmap(b []byte) error {
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	return nil
}

// Ioctl issues request req on the device with arg as the argument buffer,
// exactly as given; see Container.Ioctl.
func (d *Device) Ioctl(req uintptr, arg []byte) (int, error) {
	return escapeHatch(d.fd, req, arg)
}
