// Package uapi mirrors the kernel's VFIO and iommufd uAPI: structs with the
// kernel's exact layout and the ioctl request numbers.
//
// It is the one place in iommu-agent where these are written down. Each file
// names the header it mirrors and the linux-libc-dev version it was checked
// against. Names keep the kernel's spelling so grep works both ways.
//
// Layout is checked twice: layout_test.go always (sizes, offsets, no hidden
// padding, HostLayout), and with -tags uapicheck against the real headers
// compiled by the cref package.
package uapi
