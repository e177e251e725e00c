//go:build linux

package vfio

import (
	"errors"
	"runtime"
	"strings"
	"unsafe"

	"github.com/iommu-agent/iommu-agent/ioctl/internal/raw"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"golang.org/x/sys/unix"
)

// Group is an open VFIO group (/dev/vfio/N, or /dev/vfio/noiommu-N).
type Group struct {
	fd *raw.FD
}

// OpenGroup opens the group node at path. A group can be open only once
// system-wide (EBUSY), and not while one of its devices is open as a cdev.
func OpenGroup(path string) (*Group, error) {
	fd, err := raw.Open(path, unix.O_RDWR)
	if err != nil {
		return nil, err
	}
	return &Group{fd: fd}, nil
}

// Close closes the group. Closing twice is not an error.
func (g *Group) Close() error { return g.fd.Close() }

// FD returns the descriptor number, or -1 once closed: the proof of
// ownership PCIHotReset takes. The Group keeps ownership.
func (g *Group) FD() int { return g.fd.Int() }

// GroupFlags is the answer of Group.Status.
type GroupFlags uint32

// Viable reports whether every device of the group is bound to a VFIO
// driver (or pci-stub, or none): only then can it be used.
func (f GroupFlags) Viable() bool { return f&uapi.VFIO_GROUP_FLAGS_VIABLE != 0 }

// ContainerSet reports whether the group is in a container.
func (f GroupFlags) ContainerSet() bool { return f&uapi.VFIO_GROUP_FLAGS_CONTAINER_SET != 0 }

// Status wraps VFIO_GROUP_GET_STATUS.
func (g *Group) Status() (GroupFlags, error) {
	arg := uapi.VFIOGroupStatus{ArgSz: uint32(unsafe.Sizeof(uapi.VFIOGroupStatus{}))}
	if err := raw.Ioctl(g.fd, uapi.VFIO_GROUP_GET_STATUS, unsafe.Pointer(&arg)); err != nil {
		return 0, wrap("VFIO_GROUP_GET_STATUS", err)
	}
	return GroupFlags(arg.Flags), nil
}

// SetContainer wraps VFIO_GROUP_SET_CONTAINER: it puts the group into c.
// The first group of a container makes SetIOMMU available.
func (g *Group) SetContainer(c *Container) error {
	const op = "VFIO_GROUP_SET_CONTAINER"
	cfd := c.fd.Int()
	if cfd < 0 {
		return wrap(op, ErrClosed)
	}
	arg := int32(cfd)
	err := raw.Ioctl(g.fd, uapi.VFIO_GROUP_SET_CONTAINER, unsafe.Pointer(&arg))
	runtime.KeepAlive(c) // its cleanup must not close cfd mid-call
	return wrap(op, err)
}

// UnsetContainer wraps VFIO_GROUP_UNSET_CONTAINER. Every device fd of the
// group must be closed first (EBUSY); the last group out of a container
// drops its mappings.
func (g *Group) UnsetContainer() error {
	return wrap("VFIO_GROUP_UNSET_CONTAINER", raw.Ioctl(g.fd, uapi.VFIO_GROUP_UNSET_CONTAINER, nil))
}

var errNameNUL = errors.New("device name contains NUL")

// DeviceFD wraps VFIO_GROUP_GET_DEVICE_FD: it opens the device called name
// (the PCI address, "0000:00:01.0") in a group that is in a container with
// an IOMMU set. A VF whose PF is owned by vfio-pci needs its token in the
// name: "0000:01:10.0 vf_token=<uuid>".
func (g *Group) DeviceFD(name string) (*Device, error) {
	const op = "VFIO_GROUP_GET_DEVICE_FD"
	if strings.IndexByte(name, 0) >= 0 {
		return nil, wrap(op, errNameNUL)
	}
	cname := append([]byte(name), 0)
	fd, err := raw.IoctlRet(g.fd, uapi.VFIO_GROUP_GET_DEVICE_FD, unsafe.Pointer(&cname[0]))
	if err != nil {
		return nil, wrap(op, err)
	}
	dev, err := raw.NewFD(fd)
	if err != nil {
		return nil, wrap(op, err)
	}
	return &Device{fd: dev}, nil
}

// Ioctl issues request req on the group with arg as the argument buffer,
// exactly as given; see Container.Ioctl.
func (g *Group) Ioctl(req uintptr, arg []byte) (int, error) {
	return escapeHatch(g.fd, req, arg)
}
