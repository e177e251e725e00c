//go:build hwtests && linux

package hwtests

import (
	"fmt"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/hwtests/edu"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// cdevSetup is a device on the iommufd path: /dev/iommu with one IOAS, the
// device's cdev bound to it and attached to the IOAS.
type cdevSetup struct {
	fd    *iommufd.FD
	ioas  iommufd.ID
	dev   *vfio.Device
	devID iommufd.ID
	hwpt  iommufd.ID // the HWPT the kernel created for the IOAS
}

// newCdev builds a cdevSetup step by step; t.Cleanup undoes whatever the
// test itself did not, so a failed step leaves nothing bound or attached.
func newCdev(t *testing.T, dev iommu.Device) *cdevSetup {
	t.Helper()
	fd, ioas, vdev := openCdev(t, dev)
	devID, err := vdev.BindIOMMUFD(fd.Int(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hwpt, err := vdev.AttachIOMMUFDPT(uint32(ioas))
	if err != nil {
		t.Fatal(err)
	}
	if hwpt == uint32(ioas) {
		t.Fatalf("ATTACH_IOMMUFD_PT returned the IOAS id %d, want the auto-created HWPT", hwpt)
	}
	return &cdevSetup{fd: fd, ioas: ioas, dev: vdev, devID: iommufd.ID(devID), hwpt: iommufd.ID(hwpt)}
}

// openCdev opens /dev/iommu with one IOAS and the device's cdev, not yet
// bound; t.Cleanup closes both.
func openCdev(t *testing.T, dev iommu.Device) (*iommufd.FD, iommufd.ID, *vfio.Device) {
	t.Helper()
	fd, err := iommufd.Open(iommufd.DefaultPath)
	hwtest.Need(t, "open /dev/iommu", err)
	t.Cleanup(func() { fd.Close() })
	ioas, err := fd.IOASAlloc()
	if err != nil {
		t.Fatal(err)
	}
	vdev, err := vfio.OpenDevice(cdevPath(t, dev))
	hwtest.Need(t, "open VFIO cdev", err)
	t.Cleanup(func() { vdev.Close() })
	return fd, ioas, vdev
}

// teardown detaches and destroys in the kernel's order and checks each step.
func (s *cdevSetup) teardown(t *testing.T) {
	t.Helper()
	if err := s.dev.DetachIOMMUFDPT(); err != nil {
		t.Errorf("detach: %v", err)
	}
	if err := s.fd.Destroy(s.ioas); err != nil {
		t.Errorf("destroy IOAS %d: %v", s.ioas, err)
	}
	if err := s.dev.Close(); err != nil {
		t.Errorf("close device: %v", err)
	}
	if err := s.fd.Close(); err != nil {
		t.Errorf("close iommufd: %v", err)
	}
}

// type1Setup is a device on the legacy path: container, group, TYPE1v2.
type type1Setup struct {
	c   *vfio.Container
	g   *vfio.Group
	dev *vfio.Device
}

func newType1(t *testing.T, dev iommu.Device) *type1Setup {
	t.Helper()
	c, err := vfio.OpenContainer(vfio.DefaultContainerPath)
	hwtest.Need(t, "open VFIO container", err)
	t.Cleanup(func() { c.Close() })
	if v, err := c.APIVersion(); err != nil || v != uapi.VFIO_API_VERSION {
		t.Fatalf("VFIO_GET_API_VERSION = %d, %v; want %d", v, err, uapi.VFIO_API_VERSION)
	}
	if ok, err := c.CheckExtension(uapi.VFIO_TYPE1v2_IOMMU); err != nil || ok != 1 {
		t.Fatalf("VFIO_CHECK_EXTENSION(TYPE1v2) = %d, %v; want 1", ok, err)
	}
	g, err := vfio.OpenGroup(fmt.Sprintf("/dev/vfio/%d", dev.Group))
	hwtest.Need(t, "open VFIO group", err)
	t.Cleanup(func() { g.Close() })
	st, err := g.Status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Viable() || st.ContainerSet() {
		t.Fatalf("group %d status %#x: want viable, no container", dev.Group, st)
	}
	if err := g.SetContainer(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.UnsetContainer() })
	if err := c.SetIOMMU(uapi.VFIO_TYPE1v2_IOMMU); err != nil {
		t.Fatal(err)
	}
	if st, err := g.Status(); err != nil || !st.ContainerSet() {
		t.Fatalf("group status after SET_CONTAINER = %#x, %v; want container set", st, err)
	}
	vdev, err := g.DeviceFD(dev.BDF)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vdev.Close() })
	return &type1Setup{c: c, g: g, dev: vdev}
}

func (s *type1Setup) teardown(t *testing.T) {
	t.Helper()
	if err := s.dev.Close(); err != nil {
		t.Errorf("close device: %v", err)
	}
	if err := s.g.UnsetContainer(); err != nil {
		t.Errorf("unset container: %v", err)
	}
	if err := s.g.Close(); err != nil {
		t.Errorf("close group: %v", err)
	}
	if err := s.c.Close(); err != nil {
		t.Errorf("close container: %v", err)
	}
}

// openEdu finds BAR0 and config space of a VFIO device and checks it is edu.
func openEdu(t *testing.T, d *vfio.Device) *edu.Device {
	t.Helper()
	bar0, err := d.RegionInfo(uapi.VFIO_PCI_BAR0_REGION_INDEX)
	if err != nil {
		t.Fatal(err)
	}
	if bar0.Size != 1<<20 {
		t.Fatalf("edu BAR0 is %d bytes, want 1 MiB", bar0.Size)
	}
	cfg, err := d.RegionInfo(uapi.VFIO_PCI_CONFIG_REGION_INDEX)
	if err != nil {
		t.Fatal(err)
	}
	e, err := edu.New(d, int64(bar0.Offset), int64(cfg.Offset))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.EnableBusMaster(); err != nil {
		t.Fatal(err)
	}
	return e
}
