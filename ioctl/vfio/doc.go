//go:build linux

// Package vfio wraps the VFIO uAPI (include/uapi/linux/vfio.h): one typed
// method per ioctl on the three kinds of file descriptor.
//
//   - Container (/dev/vfio/vfio): the legacy type1 IOMMU context. It may be
//     iommufd's compat container; the calls are the same.
//   - Group (/dev/vfio/N): an IOMMU group, put into a container to get its
//     device fds.
//   - Device: from Group.DeviceFD, or a cdev (/dev/vfio/devices/vfioN)
//     bound to an iommufd with BindIOMMUFD.
//
// Methods set argsz themselves, grow INFO buffers when the kernel asks for
// more room, and parse capability chains into typed fields. Every error
// names the ioctl and keeps the errno: errors.Is(err, unix.EINVAL) holds.
// An ioctl the running kernel predates (ENOTTY) is an
// *ioctl.UnsupportedError, which matches ioctl.ErrNotSupported.
//
// A typical legacy sequence (as in the VT-d guest of hwtests/vm):
//
//	c, _ := vfio.OpenContainer(vfio.DefaultContainerPath)
//	c.APIVersion()                        // uapi.VFIO_API_VERSION
//	c.CheckExtension(uapi.VFIO_TYPE1v2_IOMMU) // > 0
//	g, _ := vfio.OpenGroup("/dev/vfio/3")
//	g.Status()                            // Viable()
//	g.SetContainer(c)
//	c.SetIOMMU(uapi.VFIO_TYPE1v2_IOMMU)
//	d, _ := g.DeviceFD("0000:00:01.0")
//	cfg, _ := d.RegionInfo(uapi.VFIO_PCI_CONFIG_REGION_INDEX)
//	d.WriteAt(cmd, int64(cfg.Offset)+4)   // PCI_COMMAND: bus master
//	c.MapDMA(mem, iova, vfio.DMARead|vfio.DMAWrite)
//
// Containers, groups and devices are safe for concurrent use, except that
// Close must not race with other calls.
package vfio
