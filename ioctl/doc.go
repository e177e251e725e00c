// Package ioctl holds what the typed ioctl packages share: the error for an
// ioctl the running kernel does not know.
//
// The layers below it:
//   - uapi: kernel structs and request numbers, mirrored from the headers;
//   - internal/raw: the one ioctl call site and the FD type;
//   - iommufd and vfio: one typed method per ioctl.
package ioctl
