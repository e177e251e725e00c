package sriovtest

import (
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Links is a fake rtnetlink behind sriov.LinkOps: links by name, each with
// the VF configs a PF driver keeps, changed by the LinkSetVf* calls as a
// driver would. Refuse makes the call for an attribute fail with the given
// error (an errno, as the kernel's) and change nothing; Ignore makes it
// succeed and change nothing, as a driver that drops a setting.
// New VFs start as igb's do: zero MAC, spoof check on, not trusted.
type Links struct {
	Refuse map[string]error // call: "mac", "vlan", "spoofchk", "trust", "state", "rate"
	Ignore map[string]bool

	mu    sync.Mutex
	links map[string]*fakeLink
	calls []string
}

type fakeLink struct {
	index int
	vfs   []netlink.VfInfo
}

// AddLink adds a link with n VFs.
func (l *Links) AddLink(name string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.links == nil {
		l.links = map[string]*fakeLink{}
	}
	fl := &fakeLink{index: len(l.links) + 2} // lo is 1
	l.links[name] = fl
	fl.resize(n)
}

// SetNumVFs is the PF driver's side of a sriov_numvfs write: VFs beyond n
// go, new ones start afresh. An unknown link is added.
func (l *Links) SetNumVFs(name string, n int) {
	l.mu.Lock()
	fl, ok := l.links[name]
	l.mu.Unlock()
	if !ok {
		l.AddLink(name, n)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fl.resize(n)
}

func (fl *fakeLink) resize(n int) {
	if n < len(fl.vfs) {
		fl.vfs = fl.vfs[:n]
	}
	for i := len(fl.vfs); i < n; i++ {
		fl.vfs = append(fl.vfs, netlink.VfInfo{ID: i, Mac: make(net.HardwareAddr, 6), Spoofchk: true})
	}
}

// Calls lists the set calls seen, as "link vf N attr=value", refused ones
// included.
func (l *Links) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// LinkByName returns a copy of the link with its VF list, as a
// RTM_GETLINK with RTEXT_FILTER_VF does.
func (l *Links) LinkByName(name string) (netlink.Link, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fl, ok := l.links[name]
	if !ok {
		return nil, fmt.Errorf("link %q: %w", name, syscall.ENODEV)
	}
	d := &netlink.Device{}
	d.Name, d.Index = name, fl.index
	for _, v := range fl.vfs {
		v.Mac = append(net.HardwareAddr(nil), v.Mac...)
		d.Vfs = append(d.Vfs, v)
	}
	return d, nil
}

// do runs one set call on VF vf of link.
func (l *Links) do(link netlink.Link, vf int, attr, value string, apply func(*netlink.VfInfo)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	name := link.Attrs().Name
	l.calls = append(l.calls, fmt.Sprintf("%s vf %d %s=%s", name, vf, attr, value))
	fl, ok := l.links[name]
	if !ok {
		return syscall.ENODEV
	}
	if vf < 0 || vf >= len(fl.vfs) {
		return syscall.EINVAL
	}
	if err := l.Refuse[attr]; err != nil {
		return err
	}
	if !l.Ignore[attr] {
		apply(&fl.vfs[vf])
	}
	return nil
}

func (l *Links) LinkSetVfHardwareAddr(link netlink.Link, vf int, hw net.HardwareAddr) error {
	if len(hw) != 6 {
		return syscall.EINVAL
	}
	return l.do(link, vf, "mac", hw.String(), func(v *netlink.VfInfo) { v.Mac = append(net.HardwareAddr(nil), hw...) })
}

func (l *Links) LinkSetVfVlanQos(link netlink.Link, vf, vlan, qos int) error {
	if vlan < 0 || vlan > 4095 || qos < 0 || qos > 7 {
		return syscall.EINVAL
	}
	return l.do(link, vf, "vlan", fmt.Sprintf("%d,qos=%d", vlan, qos), func(v *netlink.VfInfo) { v.Vlan, v.Qos = vlan, qos })
}

func (l *Links) LinkSetVfSpoofchk(link netlink.Link, vf int, check bool) error {
	return l.do(link, vf, "spoofchk", fmt.Sprint(check), func(v *netlink.VfInfo) { v.Spoofchk = check })
}

func (l *Links) LinkSetVfTrust(link netlink.Link, vf int, state bool) error {
	return l.do(link, vf, "trust", fmt.Sprint(state), func(v *netlink.VfInfo) {
		v.Trust = 0
		if state {
			v.Trust = 1
		}
	})
}

func (l *Links) LinkSetVfState(link netlink.Link, vf int, state uint32) error {
	return l.do(link, vf, "state", fmt.Sprint(state), func(v *netlink.VfInfo) { v.LinkState = state })
}

func (l *Links) LinkSetVfRate(link netlink.Link, vf, minRate, maxRate int) error {
	return l.do(link, vf, "rate", fmt.Sprintf("%d-%d", minRate, maxRate), func(v *netlink.VfInfo) {
		v.MinTxRate, v.MaxTxRate, v.TxRate = uint32(minRate), uint32(maxRate), maxRate
	})
}
