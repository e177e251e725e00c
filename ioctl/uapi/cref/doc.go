//go:build uapicheck

// Package cref compiles the kernel's own uapi headers with cgo and exports
// their sizes, offsets and request numbers, so that uapi's layout can be
// checked against C rather than against our reading of it.
//
// It is built only with -tags uapicheck, with CGO_CFLAGS pointing at the
// include directory of a linux-libc-dev that has iommufd.h (6.12 or later;
// see .ci/uapicheck). cgo is not allowed in _test.go files, hence a package.
// Offsets are exported as C enum constants: a static const would not link.
package cref

// Layout is one C struct as the compiler laid it out.
type Layout struct {
	Name   string             // C struct name, e.g. "iommu_ioas_map"
	Size   uintptr            // sizeof
	Fields map[string]uintptr // C field name -> offsetof
}

// Request is one ioctl request number as the headers define it.
type Request struct {
	Name  string
	Value uintptr
}
