// Package smoke checks that the hwtests guest has what the other real-kernel
// tests assume: /dev/iommu, /dev/vfio/vfio, the IOMMU in sysfs, the
// requested PCI devices where the harness put them, the rebuilt modules,
// both 9p exports and an unlimited RLIMIT_MEMLOCK. Its tests carry the
// hwtests build tag; the harness runs them in every guest.
package smoke
