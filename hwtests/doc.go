// Package hwtests holds the tests that need a real kernel: iommufd, VFIO and
// DMA through a real (emulated-hardware) IOMMU. They carry the build tag
// hwtests and run inside the QEMU guest that hwtests/vm boots, or as root on
// a host with an IOMMU:
//
//	go test -tags hwtests ./hwtests/ -destructive
//
// In the guest, HWTESTS_STRICT=1 turns every skip into a failure: there
// everything is known present, and a guest that lost /dev/iommu must not
// pass. On other hosts a missing device or privilege skips the test, and
// tests that rebind devices run only with -destructive.
package hwtests
