// Package vm is the real-kernel test harness: it boots the module's
// hwtests-tagged test binaries in a QEMU guest with an emulated IOMMU and
// a stock Debian 6.12 kernel whose iommufd and vfio modules are rebuilt
// with CONFIG_IOMMUFD (kbuild/).
//
// The pieces, in run order:
//
//   - Lane: architecture, QEMU binary, IOMMU arguments and kernel flavour.
//   - Cache: downloads and builds outside the repo, committed atomically.
//   - kernel: apt-get download of the five packages (a foreign lane's
//     image and headers through a private apt state, apt.go), partial
//     extraction, depmod; modbuild: the out-of-tree module rebuild
//     (kbuild/), cross-compiled for a foreign lane.
//   - gobuild: static /init (./init) and `go test -c -cover` binaries.
//   - initramfs: an uncompressed newc cpio with the manifest (package wire).
//   - Boot: QEMU with a deadline, the kernel console to a file and the
//     framed test stream on stdout.
//   - Parser: frames → go test -v output and counts.
//   - cover: every ioctl wrapper in ioctl/iommufd and ioctl/vfio must have
//     run in the guest (TestIoctlCoverage).
//
// cmd/hwtests is the thin command around Run.
package vm
