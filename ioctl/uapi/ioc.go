package uapi

// The asm-generic ioctl encoding (include/uapi/asm-generic/ioctl.h), used by
// x86, arm64, riscv and loongarch. alpha, mips, powerpc and sparc encode
// _IOC_NONE differently; iommu-agent does not build for them.
const (
	iocNRBits   = 8
	iocTypeBits = 8
	iocSizeBits = 14

	iocNRShift   = 0
	iocTypeShift = iocNRShift + iocNRBits
	iocSizeShift = iocTypeShift + iocTypeBits
	iocDirShift  = iocSizeShift + iocSizeBits

	iocNone = 0
)

// Request numbers are written as constant expressions of the form
//
//	iocNone<<iocDirShift | TYPE<<iocTypeShift | NR<<iocNRShift
//
// which is _IO(TYPE, NR). VFIO and iommufd use only _IO: the argument size
// travels in the struct's size/argsz field instead, so only layout tests and
// the kernel's own size check catch a wrong struct.
