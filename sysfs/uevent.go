package sysfs

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Uevent is one kernel uevent as the NETLINK_KOBJECT_UEVENT socket carries
// it: a header "ACTION@DEVPATH" then NUL-separated KEY=VALUE pairs.
type Uevent struct {
	Action    string            // header: add, remove, bind, unbind, change, move, online, offline
	DevPath   string            // header: the kobject's path under /sys, "/devices/..."
	Subsystem string            // SUBSYSTEM; "" when absent
	Seqnum    uint64            // SEQNUM; 0 when absent
	Env       map[string]string // every KEY=VALUE, the three above included
}

// Errors ParseUevent wraps: ErrNotKernel for udev's re-broadcasts (which
// start "libudev\0"), ErrUevent for anything else that is no uevent.
var (
	ErrNotKernel = errors.New("uevent not from the kernel")
	ErrUevent    = errors.New("malformed uevent")
)

// maxUevent bounds a datagram: the kernel's UEVENT_BUFFER_SIZE is 2 KiB of
// environment plus the header, well under this.
const maxUevent = 64 << 10

// ParseUevent parses one kernel uevent datagram. The ACTION and DEVPATH
// keys, when present, must agree with the header.
func ParseUevent(b []byte) (Uevent, error) {
	if bytes.HasPrefix(b, []byte("libudev\x00")) {
		return Uevent{}, ErrNotKernel
	}
	bad := func(format string, args ...any) (Uevent, error) {
		return Uevent{}, fmt.Errorf("%w: %s", ErrUevent, fmt.Sprintf(format, args...))
	}
	if len(b) > maxUevent {
		return bad("%d bytes", len(b))
	}
	fields := strings.Split(string(b), "\x00")
	action, devpath, ok := strings.Cut(fields[0], "@")
	if !ok || action == "" || !validDevPath(devpath) {
		return bad("header %s is not ACTION@/DEVPATH", quote(fields[0]))
	}
	u := Uevent{Action: action, DevPath: devpath, Env: map[string]string{}}
	for _, kv := range fields[1:] {
		if kv == "" {
			continue // the datagram ends in NUL
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return bad("field %s is not KEY=VALUE", quote(kv))
		}
		u.Env[k] = v
	}
	if a, ok := u.Env["ACTION"]; ok && a != action {
		return bad("ACTION=%s under header %s", a, action)
	}
	if d, ok := u.Env["DEVPATH"]; ok && d != devpath {
		return bad("DEVPATH=%s under header %s", d, devpath)
	}
	u.Subsystem = u.Env["SUBSYSTEM"]
	if s, ok := u.Env["SEQNUM"]; ok {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || strings.TrimLeft(s, "0123456789") != "" {
			return bad("SEQNUM=%s", quote(s))
		}
		u.Seqnum = n
	}
	return u, nil
}

func validDevPath(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.Contains(p, "\x00")
}

// PCIAddress returns the PCI function a "pci" uevent is about: the last
// element of DEVPATH, which the kernel names after the device.
func (u Uevent) PCIAddress() (Address, bool) {
	if u.Subsystem != "pci" {
		return Address{}, false
	}
	a, err := ParseAddress(path.Base(u.DevPath))
	return a, err == nil
}
