package sriov

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// LinkOps is the part of *netlink.Handle this package uses, so tests
// substitute a fake (sriovtest.Links) and a handle opened in another
// network namespace works the same.
type LinkOps interface {
	LinkByName(name string) (netlink.Link, error)
	LinkSetVfHardwareAddr(link netlink.Link, vf int, hwaddr net.HardwareAddr) error
	LinkSetVfVlanQos(link netlink.Link, vf, vlan, qos int) error
	LinkSetVfSpoofchk(link netlink.Link, vf int, check bool) error
	LinkSetVfTrust(link netlink.Link, vf int, state bool) error
	LinkSetVfState(link netlink.Link, vf int, state uint32) error
	LinkSetVfRate(link netlink.Link, vf, minRate, maxRate int) error
}

var _ LinkOps = (*netlink.Handle)(nil)

// ErrNotApplied is wrapped when the driver accepted a setting but reads
// back another value.
var ErrNotApplied = errors.New("driver accepted the setting but reads back another value")

// configs reads every VF's config from the PF's link (IFLA_VFINFO_LIST),
// by VF number.
func (m *Manager) configs(link string) (map[int]Config, error) {
	l, err := m.links.LinkByName(link)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", link, err)
	}
	cfgs := map[int]Config{}
	for _, v := range l.Attrs().Vfs {
		c := Config{
			VLAN: v.Vlan, QoS: v.Qos, SpoofChk: v.Spoofchk, Trust: v.Trust == 1,
			State: LinkState(v.LinkState), MinRate: int(v.MinTxRate), MaxRate: int(v.MaxTxRate),
		}
		if c.MaxRate == 0 && v.TxRate != 0 {
			c.MaxRate = v.TxRate // drivers that fill only IFLA_VF_TX_RATE
		}
		copy(c.MAC[:], v.Mac)
		cfgs[v.ID] = c
	}
	return cfgs, nil
}

// vfLink resolves a VF to its PF's netdev, with netlink present.
func (m *Manager) vfLink(bdf string) (VF, string, error) {
	vf, err := m.VF(bdf)
	if err != nil {
		return VF{}, "", err
	}
	if m.links == nil {
		return vf, "", fmt.Errorf("vf %s: no netlink handle", vf.Address)
	}
	link, err := m.linkName(vf.PF)
	if err != nil {
		return vf, "", err
	}
	if link == "" {
		return vf, "", fmt.Errorf("vf %s: pf %s: %w (is its driver bound?)", vf.Address, vf.PF, ErrNoLink)
	}
	return vf, link, nil
}

// Config reads one VF's config from its PF's driver.
func (m *Manager) Config(bdf string) (VF, Config, error) {
	vf, link, err := m.vfLink(bdf)
	if err != nil {
		return vf, Config{}, err
	}
	c, err := m.config(vf, link)
	return vf, c, err
}

func (m *Manager) config(vf VF, link string) (Config, error) {
	cfgs, err := m.configs(link)
	if err != nil {
		return Config{}, fmt.Errorf("vf %s: %w", vf.Address, err)
	}
	c, ok := cfgs[vf.Index]
	if !ok {
		return Config{}, fmt.Errorf("vf %s: link %s reports no vf %d", vf.Address, link, vf.Index)
	}
	return c, nil
}

// Result is what became of one attribute of a Set.
type Result struct {
	Attr Attr
	Want string // as asked, formatted as Config.Value does
	Got  string // as read back after the change
	// Err is nil when the driver took the value and reads it back. It
	// wraps the driver's errno (errors.Is(err, syscall.EOPNOTSUPP)) when
	// the driver refused, ErrNotApplied when it reads back something else.
	Err error
}

// Report is what Set did to one VF.
type Report struct {
	VF      VF
	Link    string // the PF's netdev the changes went through
	Before  Config
	After   Config
	Results []Result // one per attribute asked for, in Attrs order
}

// Err joins the refused attributes' errors; nil when all were applied.
func (r *Report) Err() error {
	var errs []error
	for _, res := range r.Results {
		if res.Err != nil {
			errs = append(errs, res.Err)
		}
	}
	return errors.Join(errs...)
}

// Set applies s to the VF at bdf through its PF's netdev, one netlink
// request per attribute (VLAN with QoS, min with max rate), reads the
// config back and reports per attribute. A bad request (malformed address,
// not a VF, s invalid) is refused before any request is sent; after that a
// refused attribute does not stop the others, and the error joins every
// refusal (Report.Err).
func (m *Manager) Set(bdf string, s Settings) (*Report, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return m.set(bdf, s)
}

func (m *Manager) set(bdf string, s Settings) (*Report, error) {
	vf, link, err := m.vfLink(bdf)
	if err != nil {
		return nil, err
	}
	before, err := m.config(vf, link)
	if err != nil {
		return nil, err
	}
	l, err := m.links.LinkByName(link)
	if err != nil {
		return nil, fmt.Errorf("vf %s: link %s: %w", vf.Address, link, err)
	}
	r := &Report{VF: vf, Link: link, Before: before}
	callErr := map[Attr]error{}
	call := func(err error, as ...Attr) {
		if err == nil {
			return
		}
		for _, a := range as {
			callErr[a] = fmt.Errorf("vf %s (%s vf %d) %s: %w", vf.Address, link, vf.Index, a, err)
		}
	}
	if s.MAC != nil {
		call(m.links.LinkSetVfHardwareAddr(l, vf.Index, net.HardwareAddr(s.MAC[:])), AttrMAC)
	}
	if vlan, qos, as := pairOf(s.VLAN, s.QoS, before.VLAN, before.QoS, AttrVLAN, AttrQoS); len(as) > 0 {
		call(m.links.LinkSetVfVlanQos(l, vf.Index, vlan, qos), as...)
	}
	if s.SpoofChk != nil {
		call(m.links.LinkSetVfSpoofchk(l, vf.Index, *s.SpoofChk), AttrSpoofChk)
	}
	if s.Trust != nil {
		call(m.links.LinkSetVfTrust(l, vf.Index, *s.Trust), AttrTrust)
	}
	if s.State != nil {
		call(m.links.LinkSetVfState(l, vf.Index, uint32(*s.State)), AttrState)
	}
	if lo, hi, as := pairOf(s.MinRate, s.MaxRate, before.MinRate, before.MaxRate, AttrMinRate, AttrMaxRate); len(as) > 0 {
		call(m.links.LinkSetVfRate(l, vf.Index, lo, hi), as...)
	}
	after, err := m.config(vf, link)
	if err != nil {
		return r, fmt.Errorf("vf %s: reading the config back: %w", vf.Address, err)
	}
	r.After = after
	for _, a := range s.Attrs() {
		res := Result{Attr: a, Want: s.want(a), Got: after.Value(a), Err: callErr[a]}
		if res.Err == nil && res.Got != res.Want {
			res.Err = fmt.Errorf("vf %s %s: asked %s, reads %s: %w", vf.Address, a, res.Want, res.Got, ErrNotApplied)
		}
		r.Results = append(r.Results, res)
	}
	return r, r.Err()
}

// Snapshot is a VF's config saved before it is handed out, for Restore.
// It is plain data (JSON-ready) so a daemon can keep it with the lease.
type Snapshot struct {
	VF     string `json:"vf"` // the VF's PCI address
	Config Config `json:"config"`
}

// Save reads the VF's config for Restore.
func (m *Manager) Save(bdf string) (Snapshot, error) {
	vf, c, err := m.Config(bdf)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{VF: vf.Address.String(), Config: c}, nil
}

// Restore puts a saved config back, asking only for the attributes that
// differ now, so a driver that refuses an attribute nobody changed (igb's
// rate without carrier, link state) does not fail it. The all-zero MAC,
// "unset", is allowed here: it is how igb's VFs start. A VF already as
// saved gets no request and a nil Report.
func (m *Manager) Restore(snap Snapshot) (*Report, error) {
	_, now, err := m.Config(snap.VF)
	if err != nil {
		return nil, err
	}
	want := snap.Config
	var s Settings
	if now.MAC != want.MAC {
		s.MAC = &want.MAC
	}
	if now.VLAN != want.VLAN {
		s.VLAN = &want.VLAN
	}
	if now.QoS != want.QoS {
		s.QoS = &want.QoS
	}
	if now.SpoofChk != want.SpoofChk {
		s.SpoofChk = &want.SpoofChk
	}
	if now.Trust != want.Trust {
		s.Trust = &want.Trust
	}
	if now.State != want.State {
		s.State = &want.State
	}
	if now.MinRate != want.MinRate {
		s.MinRate = &want.MinRate
	}
	if now.MaxRate != want.MaxRate {
		s.MaxRate = &want.MaxRate
	}
	if len(s.Attrs()) == 0 {
		return nil, nil
	}
	if err := s.validate(true); err != nil {
		return nil, fmt.Errorf("restore vf %s: %w", snap.VF, err)
	}
	r, err := m.set(snap.VF, s)
	if err != nil {
		return r, fmt.Errorf("restore: %w", err)
	}
	return r, nil
}

// pairOf is the values of a request that carries two attributes at once
// (VLAN with QoS, min with max rate): the one asked for takes its new
// value, the other keeps its current one. as lists the attributes asked
// for, empty when neither was.
func pairOf(a, b *int, curA, curB int, attrA, attrB Attr) (int, int, []Attr) {
	var as []Attr
	if a != nil {
		curA = *a
		as = append(as, attrA)
	}
	if b != nil {
		curB = *b
		as = append(as, attrB)
	}
	return curA, curB, as
}
