// Package raw is the only place iommu-agent issues the ioctl system call.
//
// Every typed wrapper in ioctl/vfio and ioctl/iommufd goes through Ioctl,
// IoctlRet or IoctlValue. Keeping the call site in one file keeps the unsafe
// pointer rules, EINTR retry and errno wrapping in one reviewable place.
package raw
