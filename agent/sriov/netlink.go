//go:build linux

package sriov

import (
	"syscall"

	"github.com/vishvananda/netlink"
)

// NewNetlink opens a rtnetlink handle on the caller's network namespace,
// for Options.Links; Close it when done.
func NewNetlink() (*netlink.Handle, error) {
	return netlink.NewHandle(syscall.NETLINK_ROUTE)
}
