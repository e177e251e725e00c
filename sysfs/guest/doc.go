// Package guest holds the sysfs tests that need a real kernel (build tag
// hwtests): discovery against the live tree and binding edu to vfio-pci and
// back. It is a package of its own because the harness runs every test of a
// package in the guest, and the fixture tests of sysfs need their testdata.
// Run with -snapshot to log a txtar snapshot of the tree (how
// sysfs/testdata/vtd-guest-captured.txtar was made).
package guest
