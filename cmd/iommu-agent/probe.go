package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	iprobe "github.com/iommu-agent/iommu-agent/agent/probe"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/uapi"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
)

// probe reports, read-only, what the host offers: IOMMU units and their
// registers and facts (agent/probe), iommufd, and the legacy VFIO
// container. It changes nothing: the IOAS it allocates lives in an iommufd
// that closes before it returns, and -hwinfo binds a vfio-pci device's cdev
// to a private iommufd only for the query and the nesting objects it tries.
func probe(_ context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("probe")
	sysRoot := fs.String("sysfs", "/sys", "sysfs mount point")
	devRoot := fs.String("dev", "/dev", "device directory")
	hw := fs.Bool("hwinfo", false, "also read IOMMU_GET_HW_INFO per unit through a device bound to vfio-pci (root; the only source of an SMMUv3's registers), and try nesting there: a nesting parent, a vIOMMU and a vEVENTQ, destroyed again")
	if err := fs.Parse(args); err != nil {
		return err
	}

	dir := filepath.Join(*sysRoot, "class", "iommu")
	var units []iprobe.Unit
	_, err := os.Stat(dir)
	if err == nil {
		units, err = iprobe.Units(iprobe.Options{SysRoot: *sysRoot, DevRoot: *devRoot, HWInfo: *hw})
	} else if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	switch {
	case len(units) == 0 && err != nil:
		return fmt.Errorf("list IOMMU units: %w", err)
	case len(units) == 0:
		fmt.Fprintf(w, "IOMMU units: none (%s is empty or does not exist)\n", dir)
	default:
		fmt.Fprintf(w, "IOMMU units: %d\n", len(units))
		iprobe.Write(w, units)
		if err != nil {
			fmt.Fprintf(w, "  could not read: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	probeIOMMUFD(w, filepath.Join(*devRoot, "iommu"))
	probeContainer(w, filepath.Join(*devRoot, "vfio", "vfio"))
	if len(units) == 0 {
		fmt.Fprintln(w, "\nThis host has no IOMMU the kernel uses, so nothing can be passed through here.")
		fmt.Fprintln(w, "To see a real one, boot the test guest (emulated Intel VT-d): go run ./hwtests/vm/cmd/hwtests")
	}
	return nil
}

func probeIOMMUFD(w io.Writer, path string) {
	fd, err := iommufd.Open(path)
	if err != nil {
		fmt.Fprintf(w, "iommufd: %v%s\n", err, rootNote(err))
		return
	}
	defer fd.Close()
	mode, err := fd.RLimitMode()
	if err != nil {
		fmt.Fprintf(w, "iommufd: %s open, IOMMU_OPTION: %v\n", path, err)
		return
	}
	ioas, err := fd.IOASAlloc()
	if err != nil {
		fmt.Fprintf(w, "iommufd: %s open, IOAS_ALLOC: %v\n", path, err)
		return
	}
	ranges, align, err := fd.IOVARanges(ioas)
	if err != nil {
		fmt.Fprintf(w, "iommufd: %s open, IOVA_RANGES: %v\n", path, err)
		return
	}
	var rs []string
	for _, r := range ranges {
		rs = append(rs, fmt.Sprintf("%#x-%#x", r.Start, r.Last))
	}
	fmt.Fprintf(w, "iommufd: %s works (pin accounting %v; an empty IOAS spans %s, alignment %#x)\n",
		path, mode, strings.Join(rs, ","), align)
}

func probeContainer(w io.Writer, path string) {
	c, err := vfio.OpenContainer(path)
	if err != nil {
		fmt.Fprintf(w, "VFIO container: %v%s\n", err, rootNote(err))
		return
	}
	defer c.Close()
	v, err := c.APIVersion()
	if err != nil {
		fmt.Fprintf(w, "VFIO container: %s: %v\n", path, err)
		return
	}
	var exts []string
	for _, e := range []struct {
		id   int
		name string
	}{
		{uapi.VFIO_TYPE1_IOMMU, "type1"}, {uapi.VFIO_TYPE1v2_IOMMU, "type1v2"},
		{uapi.VFIO_NOIOMMU_IOMMU, "noiommu"}, {uapi.VFIO_UNMAP_ALL, "unmap-all"},
		{uapi.VFIO_UPDATE_VADDR, "update-vaddr"},
	} {
		if ok, err := c.CheckExtension(e.id); err == nil && ok > 0 {
			exts = append(exts, e.name)
		}
	}
	fmt.Fprintf(w, "VFIO container: %s API %d, extensions: %s\n", path, v, strings.Join(exts, " "))
}

// rootNote is what probe adds to a device node it could not open for lack
// of permission: probe reports and goes on, so main never sees the error.
func rootNote(err error) string {
	if os.Geteuid() != 0 && errors.Is(err, fs.ErrPermission) {
		return ": needs root (" + lookupCommand("probe").root + ")"
	}
	return ""
}
