//go:build linux

// Package probe reports what each IOMMU unit of a host says about itself,
// by name: from sysfs where the driver puts its registers there (VT-d's
// cap/ecap, AMD-Vi's cap/features), and, when asked, from
// IOMMU_GET_HW_INFO through a device bound to vfio-pci behind the unit,
// the only source for an SMMUv3 (its driver puts no register in sysfs).
// It changes nothing: the device's cdev is bound to a private iommufd that
// closes before Units returns.
package probe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/iommu-agent/iommu-agent/ioctl/hwinfo"
	"github.com/iommu-agent/iommu-agent/ioctl/iommufd"
	"github.com/iommu-agent/iommu-agent/ioctl/vfio"
	"github.com/iommu-agent/iommu-agent/sysfs"
)

// Options says where the trees are and whether to issue ioctls.
type Options struct {
	SysRoot string // sysfs mount point; "" is /sys
	DevRoot string // device nodes; "" is /dev
	// HWInfo asks for IOMMU_GET_HW_INFO on each unit that has a device
	// bound to vfio-pci: open DevRoot/iommu and the device's cdev, bind,
	// query, close. It needs root (or access to both nodes).
	HWInfo bool
	// ReadHWInfo issues IOMMU_GET_HW_INFO for the device whose VFIO cdev
	// is cdev through the iommufd at iommu; nil is the kernel's (ReadHWInfo).
	ReadHWInfo func(iommu, cdev string) (*iommufd.HWInfo, error)
	// ReadNesting tries the objects of nested translation for that
	// device, once its hw info is read; nil is the kernel's (ReadNesting).
	ReadNesting func(iommu, cdev string, info *iommufd.HWInfo) Nesting
}

// Unit is one IOMMU unit and what is known of it.
type Unit struct {
	Name string
	Kind sysfs.Kind
	// VTD and AMD are the registers sysfs shows, decoded; nil for other
	// kinds or when unreadable (Units' error says why).
	VTD *hwinfo.VTD
	AMD *hwinfo.AMDVi
	// HW is IOMMU_GET_HW_INFO's answer; nil unless Options.HWInfo.
	HW *HWInfo
}

// HWInfo is IOMMU_GET_HW_INFO for one unit, read through one of its
// devices. Exactly one of VTD, SMMUv3 and AMD is set when the kernel
// reported that type; none for type NONE (see Note) or on Err.
type HWInfo struct {
	Device string // the PCI address used
	Cdev   string // its /dev/vfio/devices/vfioN
	Info   *iommufd.HWInfo
	VTD    *hwinfo.VTD
	SMMUv3 *hwinfo.SMMUv3
	AMD    *hwinfo.AMDVi
	// Note explains a type NONE answer, or why no device was used.
	Note string
	Err  error
	// Nesting is what the kernel answered when asked for nesting.
	Nesting *Nesting
}

// Nesting is whether a VMM can have nested translation on the unit: what
// the kernel answered when probe built its objects on a private iommufd
// (and destroyed them again). A nil error is a yes.
type Nesting struct {
	Parent     error  // IOMMU_HWPT_ALLOC with NEST_PARENT over an empty IOAS
	VIOMMUType string // the vIOMMU type the unit's hw info calls for; "" for none
	VIOMMU     error  // IOMMU_VIOMMU_ALLOC over that parent
	VEventQ    error  // IOMMU_VEVENTQ_ALLOC on that vIOMMU
}

// ErrNotTried stands for a nesting object probe did not ask for, because
// what it sits on failed.
var ErrNotTried = errors.New("not tried")

// ReadNesting allocates, on a fresh iommufd from iommu and the device
// whose cdev is cdev, an IOAS, a nesting parent over it, a vIOMMU of the
// type info calls for and a vEVENTQ, stopping at the first refusal, and
// closes everything (closing the iommufd destroys the objects; closing
// the cdev unbinds it).
func ReadNesting(iommu, cdev string, info *iommufd.HWInfo) Nesting {
	n := Nesting{Parent: ErrNotTried, VIOMMU: ErrNotTried, VEventQ: ErrNotTried}
	fd, err := iommufd.Open(iommu)
	if err != nil {
		n.Parent = err
		return n
	}
	defer fd.Close()
	dev, err := vfio.OpenDevice(cdev)
	if err != nil {
		n.Parent = err
		return n
	}
	defer dev.Close()
	id, err := dev.BindIOMMUFD(fd.Int(), nil)
	if err != nil {
		n.Parent = err
		return n
	}
	ioas, err := fd.IOASAlloc()
	if err != nil {
		n.Parent = err
		return n
	}
	parent, err := fd.HWPTAlloc(iommufd.ID(id), ioas, iommufd.HWPTOptions{Flags: iommufd.HWPTAllocNestParent})
	if n.Parent = err; err != nil {
		return n
	}
	var (
		vt iommufd.VIOMMUType
		qt iommufd.VEventQType
	)
	switch info.Type {
	case iommufd.HWInfoTypeARMSMMUv3, iommufd.HWInfoTypeTegra241CMDQV:
		n.VIOMMUType, vt, qt = "ARM_SMMUV3", iommufd.VIOMMUTypeARMSMMUv3, iommufd.VEventQTypeARMSMMUv3
	default:
		// VT-d nests over the parent directly; no vIOMMU type is
		// defined for it.
		return n
	}
	v, err := fd.VIOMMUAlloc(iommufd.ID(id), parent, vt, nil)
	if n.VIOMMU = err; err != nil {
		return n
	}
	_, q, err := fd.VEventQAlloc(v, qt, 1)
	if n.VEventQ = err; err == nil {
		q.Close()
	}
	return n
}

// ReadHWInfo is the kernel's IOMMU_GET_HW_INFO for the device whose VFIO
// cdev is at cdev: a fresh iommufd from iommu, VFIO_DEVICE_BIND_IOMMUFD,
// the query, and both closed again (closing the cdev unbinds it).
func ReadHWInfo(iommu, cdev string) (*iommufd.HWInfo, error) {
	fd, err := iommufd.Open(iommu)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	dev, err := vfio.OpenDevice(cdev)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	id, err := dev.BindIOMMUFD(fd.Int(), nil)
	if err != nil {
		return nil, err
	}
	return fd.GetHWInfo(iommufd.ID(id))
}

// Units lists /sys/class/iommu with each unit's registers decoded, and
// IOMMU_GET_HW_INFO when o.HWInfo. IOMMU_GET_HW_INFO's failures are in
// each unit's HW; the error is sysfs's, with the units it could read.
func Units(o Options) ([]Unit, error) {
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.ReadHWInfo == nil {
		o.ReadHWInfo = ReadHWInfo
	}
	if o.ReadNesting == nil {
		o.ReadNesting = ReadNesting
	}
	f, err := sysfs.New(o.SysRoot)
	if err != nil {
		return nil, err
	}
	units, uerr := f.IOMMUs()
	out := make([]Unit, 0, len(units))
	for _, u := range units {
		pu := Unit{Name: u.Name, Kind: u.Kind, VTD: u.VTD, AMD: u.AMD}
		if o.HWInfo {
			hw := unitHWInfo(f, o, u)
			pu.HW = &hw
		}
		out = append(out, pu)
	}
	return out, uerr
}

// unitHWInfo queries the first device behind u that is bound to vfio-pci
// and has a cdev.
func unitHWInfo(f *sysfs.FS, o Options, u sysfs.IOMMU) HWInfo {
	var hw HWInfo
	var bound []string
	for _, a := range u.Devices {
		bdf := a.String()
		drv, err := os.Readlink(f.Path("bus", "pci", "devices", bdf, "driver"))
		if err != nil || filepath.Base(drv) != "vfio-pci" {
			continue
		}
		bound = append(bound, bdf)
		ents, err := os.ReadDir(f.Path("bus", "pci", "devices", bdf, "vfio-dev"))
		if err != nil || len(ents) != 1 {
			continue
		}
		hw.Device, hw.Cdev = bdf, filepath.Join(o.DevRoot, "vfio", "devices", ents[0].Name())
		break
	}
	switch {
	case hw.Device == "" && len(bound) > 0:
		hw.Note = "devices bound to vfio-pci (" + strings.Join(bound, ", ") + ") but none with a VFIO cdev (bus/pci/devices/BDF/vfio-dev): the kernel lacks CONFIG_VFIO_DEVICE_CDEV (Linux 6.6+), which IOMMU_GET_HW_INFO needs"
		return hw
	case hw.Device == "":
		hw.Note = "no device behind " + u.Name + " is bound to vfio-pci: bind one (iommu-agent bind BDF) to read IOMMU_GET_HW_INFO"
		return hw
	}
	info, err := o.ReadHWInfo(filepath.Join(o.DevRoot, "iommu"), hw.Cdev)
	if err != nil {
		hw.Err = fmt.Errorf("IOMMU_GET_HW_INFO through %s (%s): %w", hw.Device, hw.Cdev, err)
		return hw
	}
	hw.Info = info
	decode(&hw, u.Kind)
	n := o.ReadNesting(filepath.Join(o.DevRoot, "iommu"), hw.Cdev, info)
	hw.Nesting = &n
	return hw
}

// decode fills hw's decoded payload from hw.Info, or its Note.
func decode(hw *HWInfo, kind sysfs.Kind) {
	info := hw.Info
	var err error
	switch info.Type {
	case iommufd.HWInfoTypeIntelVTD:
		var v hwinfo.VTD
		if v, err = hwinfo.DecodeVTD(info.Data); err == nil {
			hw.VTD = &v
		}
	case iommufd.HWInfoTypeARMSMMUv3:
		var s hwinfo.SMMUv3
		if s, err = hwinfo.DecodeSMMUv3(info.Data); err == nil {
			hw.SMMUv3 = &s
		}
	case iommufd.HWInfoTypeAMD:
		var a hwinfo.AMDVi
		if a, err = hwinfo.DecodeAMD(info.Data); err == nil {
			hw.AMD = &a
		}
	case iommufd.HWInfoTypeNone:
		hw.Note = noneNote(kind)
	default:
		hw.Note = fmt.Sprintf("type %d, %d bytes: a type this agent has no decoder for", info.Type, len(info.Data))
	}
	if err != nil {
		hw.Err = fmt.Errorf("decode IOMMU_GET_HW_INFO type %d: %w", info.Type, err)
	}
}

// noneNote says why a kernel answers IOMMU_HW_INFO_TYPE_NONE for kind.
func noneNote(kind sysfs.Kind) string {
	const none = "the kernel reports no hardware info (type NONE): "
	switch kind {
	case sysfs.KindSMMUv3:
		return none + "arm-smmu-v3 reports its ID registers (IOMMU_HW_INFO_TYPE_ARM_SMMUV3) only in Linux 6.13 and later built with " +
			"CONFIG_ARM_SMMU_V3_IOMMUFD; a 6.12 kernel, or one with that option off (Debian's arm64 kernels), has no way to show them"
	case sysfs.KindAMDVi:
		return none + "amd-iommu reports its EFRs (IOMMU_HW_INFO_TYPE_AMD) only in kernels after 6.12, with AMD's iommufd support; sysfs amd-iommu/features has them"
	case sysfs.KindVTD:
		return none + "unexpected for VT-d, which has reported IOMMU_HW_INFO_TYPE_INTEL_VTD since 6.6"
	}
	return none + "this IOMMU's driver has no hw_info op"
}

// Write prints units as probe shows them: one line per unit with its
// registers, its facts by name, and where facts come from when sysfs has
// none.
func Write(w io.Writer, units []Unit) {
	for _, u := range units {
		switch {
		case u.VTD != nil:
			fmt.Fprintf(w, "  %s: %v\n", u.Name, u.VTD)
			fmt.Fprintf(w, "    facts (sysfs intel-iommu/cap,ecap): %s\n", hwinfo.FactsText(u.VTD.Facts()))
		case u.AMD != nil:
			fmt.Fprintf(w, "  %s: %v\n", u.Name, u.AMD)
			fmt.Fprintf(w, "    facts (sysfs amd-iommu/cap,features): %s\n", hwinfo.FactsText(u.AMD.Facts()))
		case u.Kind == sysfs.KindSMMUv3:
			fmt.Fprintf(w, "  %s: Arm SMMUv3\n", u.Name)
			if u.HW == nil {
				fmt.Fprintln(w, "    facts: sysfs has no SMMUv3 registers; IOMMU_GET_HW_INFO has them (probe -hwinfo, as root, with a device behind this unit bound to vfio-pci)")
			}
		default:
			fmt.Fprintf(w, "  %s (%s)\n", u.Name, u.Kind)
		}
		if u.HW != nil {
			writeHW(w, u)
		}
	}
}

func writeHW(w io.Writer, u Unit) {
	hw := u.HW
	if hw.Device == "" {
		fmt.Fprintf(w, "    hw info: %s\n", hw.Note)
		return
	}
	if hw.Err != nil && hw.Info == nil {
		fmt.Fprintf(w, "    hw info: %v%s\n", hw.Err, rootNote(hw.Err))
		return
	}
	info := hw.Info
	var caps []string
	if info.Capabilities&iommufd.HWCapDirtyTracking != 0 {
		caps = append(caps, "dirty-tracking")
	}
	if info.Capabilities&iommufd.HWCapPCIPASIDExec != 0 {
		caps = append(caps, "pasid-exec")
	}
	if info.Capabilities&iommufd.HWCapPCIPASIDPriv != 0 {
		caps = append(caps, "pasid-priv")
	}
	capText := "none"
	if len(caps) > 0 {
		capText = strings.Join(caps, " ")
	}
	fmt.Fprintf(w, "    hw info (IOMMU_GET_HW_INFO through %s, %s): type %d, %d bytes, capabilities %s, max PASID %d-bit\n",
		hw.Device, hw.Cdev, info.Type, len(info.Data), capText, info.MaxPASIDLog2)
	switch {
	case hw.Err != nil:
		fmt.Fprintf(w, "      %v\n", hw.Err)
	case hw.VTD != nil:
		same := "same as sysfs"
		if u.VTD == nil || u.VTD.Cap != hw.VTD.Cap || u.VTD.ECap != hw.VTD.ECap {
			same = "sysfs differs or is unreadable"
		}
		fmt.Fprintf(w, "      %v (%s)\n      facts: %s\n", hw.VTD, same, hwinfo.FactsText(hw.VTD.Facts()))
	case hw.SMMUv3 != nil:
		fmt.Fprintf(w, "      %v\n      facts: %s\n", hw.SMMUv3, hwinfo.FactsText(hw.SMMUv3.Facts()))
	case hw.AMD != nil:
		fmt.Fprintf(w, "      %v\n      facts: %s\n", hw.AMD, hwinfo.FactsText(hw.AMD.Facts()))
	default:
		fmt.Fprintf(w, "      %s\n", hw.Note)
	}
	if n := hw.Nesting; n != nil {
		fmt.Fprintf(w, "    nesting (built and destroyed on a private iommufd): nesting parent %s", answer(n.Parent))
		if n.VIOMMUType == "" && n.Parent == nil {
			fmt.Fprintf(w, "; no vIOMMU type for hw info type %d\n", hw.Info.Type)
			return
		}
		fmt.Fprintf(w, "; %s %s; vEVENTQ %s\n", strings.TrimSpace("vIOMMU "+n.VIOMMUType), answer(n.VIOMMU), answer(n.VEventQ))
	}
}

// answer is yes for a nil error, otherwise no with the kernel's reason.
func answer(err error) string {
	switch {
	case err == nil:
		return "yes"
	case errors.Is(err, ErrNotTried):
		return "not tried"
	}
	return "no (" + err.Error() + ")"
}

// rootNote points at root for a node probe could not open for lack of
// permission.
func rootNote(err error) string {
	if os.Geteuid() != 0 && errors.Is(err, os.ErrPermission) {
		return ": needs root"
	}
	return ""
}
