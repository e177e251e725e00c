package hostcheck

import (
	"os"
	"path/filepath"
	"strings"
)

// vfioFindings judges the modules and nodes of the two DMA paths: iommufd
// with VFIO device cdevs, or the legacy VFIO container with type1. Either
// is enough, so the missing half of a working pair is a WARN.
func (h *Host) vfioFindings() []Finding {
	vfio := h.Module("vfio", "CONFIG_VFIO")
	pci := h.Module("vfio_pci", "CONFIG_VFIO_PCI")
	iommufd := h.Module("iommufd", "CONFIG_IOMMUFD")
	type1 := h.Module("vfio_iommu_type1", "CONFIG_VFIO_IOMMU_TYPE1")

	iommufdDev, vfioDev := h.devPath("iommu"), h.devPath("vfio", "vfio")
	hasIOMMUFDDev, hasVFIODev := exists(iommufdDev), exists(vfioDev)
	if hasIOMMUFDDev && !iommufd.State.Ready() {
		iommufd.State, iommufd.Source = Loaded, iommufdDev+" exists (iommufd is loaded or built in)"
	}
	haveIOMMUFD, haveType1 := iommufd.State.Ready(), type1.State.Ready()

	out := []Finding{
		h.moduleFinding(vfio, "the VFIO core", false),
		h.moduleFinding(pci, "the vfio-pci driver devices are bound to", false),
		h.moduleFinding(iommufd, "iommufd and the VFIO device cdev", haveType1),
		h.moduleFinding(type1, "the legacy VFIO container", haveIOMMUFD),
		h.cdevFinding(vfio, haveType1),
	}

	// Named by their usual path whatever DevRoot is, so --json stays stable.
	node := func(name, path, why string, have, other bool, fix string) Finding {
		switch {
		case have:
			return Finding{Check: name, Status: Pass, Detail: path + " present (" + why + ")"}
		case other:
			return Finding{Check: name, Status: Warn, Detail: path + " missing (" + why + "); the other DMA path is available", Fix: fix}
		}
		return Finding{Check: name, Status: Fail, Detail: path + " missing (" + why + ")", Fix: fix}
	}
	vfioFix := h.nodeFix(vfio, "/dev/vfio/vfio")
	if cv, known := h.Kernel.ConfigValue("CONFIG_VFIO_CONTAINER"); known && cv == "" && vfio.State != Absent {
		if iv, _ := h.Kernel.ConfigValue("CONFIG_IOMMUFD_VFIO_CONTAINER"); iv == "" {
			vfioFix = "none for this kernel: it has no VFIO container (CONFIG_VFIO_CONTAINER and CONFIG_IOMMUFD_VFIO_CONTAINER are not set in " +
				h.Kernel.ConfigSource + "); use the iommufd path"
		}
	}
	out = append(out,
		node("/dev/iommu", iommufdDev, "iommufd", hasIOMMUFDDev, hasVFIODev, h.nodeFix(iommufd, "/dev/iommu")),
		node("/dev/vfio/vfio", vfioDev, "VFIO container", hasVFIODev, hasIOMMUFDDev, vfioFix))
	return out
}

// moduleFinding turns a module's state into its advice: modprobe only
// for a module this kernel can load.
func (h *Host) moduleFinding(c Component, why string, otherPath bool) Finding {
	fd := Finding{Check: "module " + c.Name, State: c.State, Source: c.Source}
	switch c.State {
	case Loaded:
		fd.Status, fd.Detail = Pass, "loaded ("+why+")"
		return fd
	case BuiltIn:
		fd.Status, fd.Detail = Pass, "built-in ("+why+"; "+c.Source+")"
		return fd
	case Available:
		fd.Detail, fd.Fix = "not loaded ("+why+"); loadable: "+c.Source, "modprobe "+c.Name
		if c.File == "" { // known from the config only: /lib/modules is not here
			fd.Fix += " (on the host, if this runs in a container)"
		}
	case NotInstalled:
		fd.Detail, fd.Fix = "not loaded ("+why+"), and not installed: "+c.Source, installFix(h.Kernel, c.Name)
	case Absent:
		fd.Detail, fd.Fix = "not in this kernel ("+why+"): "+c.Source, kernelFix(h.Kernel, c.Config)
	case NotLoaded:
		fd.Detail = "not loaded (" + why + "): " + c.Source
		fd.Fix = "modprobe " + c.Name + "; if it is not found, this kernel lacks " + c.Config + " (" + kernelFix(h.Kernel, c.Config) + ")"
	default:
		fd.Status, fd.Detail = Warn, "unknown ("+why+"): "+c.Source
		return fd
	}
	fd.Status = Fail
	if otherPath {
		fd.Status, fd.Detail = Warn, fd.Detail+"; the other DMA path is available"
		if c.State == Absent {
			fd.Fix = "optional, for this path: " + fd.Fix
		}
	}
	return fd
}

// nodeFix is what to do about a missing device node, by the state of the
// module that provides it.
func (h *Host) nodeFix(c Component, node string) string {
	container := "in a container, pass --device " + node
	switch c.State {
	case Loaded, BuiltIn:
		return c.Name + " is " + string(c.State) + ", so the kernel has the node: " + container + "; on the host, check that devtmpfs is mounted on /dev"
	case Available:
		return "modprobe " + c.Name + "; " + container
	case NotInstalled:
		return installFix(h.Kernel, c.Name)
	case Absent:
		return "see module " + c.Name + ": this kernel lacks " + c.Config
	case NotLoaded:
		return "modprobe " + c.Name + " if this kernel has it (see module " + c.Name + "); " + container
	}
	return container
}

// cdevState reads whether VFIO gives devices a character device
// (CONFIG_VFIO_DEVICE_CDEV, Linux 6.6+), which the iommufd path needs:
// from the config; else, with vfio in the kernel, from /proc/devices (only
// device_cdev.c, built with the option, registers the "vfio-dev" major);
// else from a bound device (a /sys/class/vfio-dev/vfioN has a dev
// attribute only when it is a cdev), else from /dev/vfio/devices.
func (h *Host) cdevState(vfio Component) (State, string) {
	const sym = "CONFIG_VFIO_DEVICE_CDEV"
	if v, known := h.Kernel.ConfigValue(sym); known {
		if v == "y" {
			return BuiltIn, h.Kernel.configText(sym)
		}
		return Absent, h.Kernel.configText(sym)
	}
	if vfio.State.Ready() {
		if has, ok := charMajor(filepath.Join(h.opts.ProcRoot, "devices"), "vfio-dev"); ok {
			if has {
				return BuiltIn, "/proc/devices lists the vfio-dev major"
			}
			return Absent, "vfio is " + string(vfio.State) + " but /proc/devices has no vfio-dev major: built without " + sym
		}
	}
	class := h.fs.Path("class", "vfio-dev")
	if ents, err := os.ReadDir(class); err == nil && len(ents) > 0 {
		for _, e := range ents {
			if exists(filepath.Join(class, e.Name(), "dev")) {
				return BuiltIn, "/sys/class/vfio-dev/" + e.Name() + "/dev exists"
			}
		}
		return Absent, "/sys/class/vfio-dev/" + ents[0].Name() + " has no dev attribute: VFIO devices get no cdev"
	}
	if isDir(h.devPath("vfio", "devices")) {
		return BuiltIn, h.devPath("vfio", "devices") + " exists"
	}
	return Unknown, h.Kernel.NoConfig + ", and no device bound to vfio-pci yet to show a cdev (/sys/class/vfio-dev/vfioN/dev, /dev/vfio/devices/vfioN)"
}

func (h *Host) cdevFinding(vfio Component, type1 bool) Finding {
	st, src := h.cdevState(vfio)
	fd := Finding{Check: "VFIO device cdev", State: st, Source: src}
	switch st {
	case BuiltIn:
		fd.Status, fd.Detail = Pass, "VFIO devices get /dev/vfio/devices/vfioN for iommufd ("+src+")"
	case Absent:
		fd.Status, fd.Detail = Fail, "no VFIO device cdevs ("+src+"): iommufd cannot take VFIO devices"
		fd.Fix = "for the iommufd path, boot a kernel (Linux 6.6 or later) built with CONFIG_VFIO_DEVICE_CDEV=y"
		if type1 {
			fd.Status, fd.Detail = Warn, fd.Detail+"; the legacy container path is available"
		}
	default:
		fd.Status, fd.Detail = Warn, "unknown: "+src
	}
	return fd
}

// charMajor reports whether the "Character devices:" part of a
// /proc/devices file lists name; ok is false when it cannot be read.
func charMajor(path, name string) (has, ok bool) {
	inChar := false
	read, err := readLines(path, false, func(line string) bool {
		switch {
		case strings.HasSuffix(line, "devices:"):
			inChar = line == "Character devices:"
		case inChar:
			if f := strings.Fields(line); len(f) == 2 && f[1] == name {
				has = true
				return false
			}
		}
		return true
	})
	return has, read && err == nil
}
