package sriov

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every refusal of a bad request, made before
// anything on the host is touched.
var ErrInvalid = errors.New("invalid SR-IOV request")

// Attr names one VF attribute, as the set command's keys and the report
// spell it.
type Attr string

// The attributes a VF can be given, in the order Set applies them.
const (
	AttrMAC      Attr = "mac"
	AttrVLAN     Attr = "vlan"
	AttrQoS      Attr = "qos"
	AttrSpoofChk Attr = "spoofchk"
	AttrTrust    Attr = "trust"
	AttrState    Attr = "state"
	AttrMinRate  Attr = "min_rate"
	AttrMaxRate  Attr = "max_rate"
)

// Attrs lists every attribute in the order Set applies them.
func Attrs() []Attr {
	return []Attr{AttrMAC, AttrVLAN, AttrQoS, AttrSpoofChk, AttrTrust, AttrState, AttrMinRate, AttrMaxRate}
}

// LinkState is a VF's administrative link state (IFLA_VF_LINK_STATE).
type LinkState uint32

// Link states as the kernel numbers them.
const (
	LinkAuto    LinkState = 0 // follow the PF's link
	LinkEnable  LinkState = 1 // always up
	LinkDisable LinkState = 2 // always down
)

func (s LinkState) String() string {
	switch s {
	case LinkAuto:
		return "auto"
	case LinkEnable:
		return "enable"
	case LinkDisable:
		return "disable"
	}
	return "state(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// ParseLinkState reads "auto", "enable" or "disable", as ip-link takes them.
func ParseLinkState(s string) (LinkState, error) {
	switch s {
	case "auto":
		return LinkAuto, nil
	case "enable":
		return LinkEnable, nil
	case "disable":
		return LinkDisable, nil
	}
	return 0, fmt.Errorf("%w: link state %q: want auto, enable or disable", ErrInvalid, s)
}

// MarshalText implements encoding.TextMarshaler.
func (s LinkState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *LinkState) UnmarshalText(b []byte) error {
	v, err := ParseLinkState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Config is a VF's configuration as the PF's driver reports it through
// netlink (IFLA_VF_*). Rates are in Mbit/s, 0 meaning no limit.
type Config struct {
	MAC      MAC       `json:"mac"`
	VLAN     int       `json:"vlan"`
	QoS      int       `json:"qos"`
	SpoofChk bool      `json:"spoofchk"`
	Trust    bool      `json:"trust"`
	State    LinkState `json:"state"`
	MinRate  int       `json:"min_rate"`
	MaxRate  int       `json:"max_rate"`
}

// Value formats one attribute of c as the set command takes it.
func (c Config) Value(a Attr) string {
	switch a {
	case AttrMAC:
		return c.MAC.String()
	case AttrVLAN:
		return strconv.Itoa(c.VLAN)
	case AttrQoS:
		return strconv.Itoa(c.QoS)
	case AttrSpoofChk:
		return onOff(c.SpoofChk)
	case AttrTrust:
		return onOff(c.Trust)
	case AttrState:
		return c.State.String()
	case AttrMinRate:
		return strconv.Itoa(c.MinRate)
	case AttrMaxRate:
		return strconv.Itoa(c.MaxRate)
	}
	return ""
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Settings is a change to a VF: nil fields stay as they are.
type Settings struct {
	MAC      *MAC
	VLAN     *int
	QoS      *int
	SpoofChk *bool
	Trust    *bool
	State    *LinkState
	MinRate  *int // Mbit/s
	MaxRate  *int // Mbit/s; 0 lifts the limit
}

// Attrs lists the attributes s changes, in the order Set applies them.
func (s Settings) Attrs() []Attr {
	var as []Attr
	for _, a := range Attrs() {
		if s.has(a) {
			as = append(as, a)
		}
	}
	return as
}

func (s Settings) has(a Attr) bool {
	switch a {
	case AttrMAC:
		return s.MAC != nil
	case AttrVLAN:
		return s.VLAN != nil
	case AttrQoS:
		return s.QoS != nil
	case AttrSpoofChk:
		return s.SpoofChk != nil
	case AttrTrust:
		return s.Trust != nil
	case AttrState:
		return s.State != nil
	case AttrMinRate:
		return s.MinRate != nil
	case AttrMaxRate:
		return s.MaxRate != nil
	}
	return false
}

// want formats the value s asks for a, as Config.Value does.
func (s Settings) want(a Attr) string {
	var c Config
	switch a {
	case AttrMAC:
		c.MAC = *s.MAC
	case AttrVLAN:
		c.VLAN = *s.VLAN
	case AttrQoS:
		c.QoS = *s.QoS
	case AttrSpoofChk:
		c.SpoofChk = *s.SpoofChk
	case AttrTrust:
		c.Trust = *s.Trust
	case AttrState:
		c.State = *s.State
	case AttrMinRate:
		c.MinRate = *s.MinRate
	case AttrMaxRate:
		c.MaxRate = *s.MaxRate
	}
	return c.Value(a)
}

// Limits of the values the kernel's IFLA_VF_* attributes carry.
const (
	maxVLAN = 4095
	maxQoS  = 7
	maxRate = math.MaxInt32 // u32 in the uapi, int in netlink's API
)

// Validate refuses what no driver should be asked: an empty change, a MAC
// that is zero or not unicast, a VLAN, QoS or rate out of the uapi's range,
// a minimum rate above the maximum, an unknown link state.
func (s Settings) Validate() error { return s.validate(false) }

// validate takes zeroMAC for Restore: the all-zero MAC is how a driver
// reports "unset", so putting a VF back may need it.
func (s Settings) validate(zeroMAC bool) error {
	if len(s.Attrs()) == 0 {
		return fmt.Errorf("%w: nothing to set", ErrInvalid)
	}
	if s.MAC != nil {
		switch {
		case s.MAC.IsZero() && !zeroMAC:
			return fmt.Errorf("%w: mac %s is the zero address", ErrInvalid, s.MAC)
		case s.MAC.IsMulticast():
			return fmt.Errorf("%w: mac %s is not unicast (multicast bit set)", ErrInvalid, s.MAC)
		}
	}
	if s.VLAN != nil && (*s.VLAN < 0 || *s.VLAN > maxVLAN) {
		return fmt.Errorf("%w: vlan %d: want 0 to %d", ErrInvalid, *s.VLAN, maxVLAN)
	}
	if s.QoS != nil && (*s.QoS < 0 || *s.QoS > maxQoS) {
		return fmt.Errorf("%w: qos %d: want 0 to %d", ErrInvalid, *s.QoS, maxQoS)
	}
	if s.State != nil && *s.State > LinkDisable {
		return fmt.Errorf("%w: link state %d: want auto, enable or disable", ErrInvalid, uint32(*s.State))
	}
	for _, r := range []struct {
		name string
		v    *int
	}{{"min_rate", s.MinRate}, {"max_rate", s.MaxRate}} {
		if r.v != nil && (*r.v < 0 || *r.v > maxRate) {
			return fmt.Errorf("%w: %s %d: want 0 to %d Mbit/s", ErrInvalid, r.name, *r.v, maxRate)
		}
	}
	if s.MinRate != nil && s.MaxRate != nil && *s.MaxRate != 0 && *s.MinRate > *s.MaxRate {
		return fmt.Errorf("%w: min_rate %d above max_rate %d", ErrInvalid, *s.MinRate, *s.MaxRate)
	}
	return nil
}

// ParseSettings reads the set command's key=value words (keys: mac, vlan,
// qos, trust, spoofchk, state, min_rate, max_rate) and validates the
// result. A key given twice is an error, not "the last one wins": the
// command line is all there is to say what was meant.
func ParseSettings(words []string) (Settings, error) {
	var s Settings
	seen := map[Attr]bool{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return Settings{}, fmt.Errorf("%w: %q is not key=value", ErrInvalid, w)
		}
		a := Attr(k)
		if seen[a] {
			return Settings{}, fmt.Errorf("%w: %s given twice", ErrInvalid, k)
		}
		seen[a] = true
		var err error
		switch a {
		case AttrMAC:
			var m MAC
			if m, err = ParseMAC(v); err == nil {
				s.MAC = &m
			}
		case AttrVLAN:
			s.VLAN, err = parseInt(k, v, maxVLAN)
		case AttrQoS:
			s.QoS, err = parseInt(k, v, maxQoS)
		case AttrMinRate:
			s.MinRate, err = parseInt(k, v, maxRate)
		case AttrMaxRate:
			s.MaxRate, err = parseInt(k, v, maxRate)
		case AttrTrust:
			s.Trust, err = parseOnOff(k, v)
		case AttrSpoofChk:
			s.SpoofChk, err = parseOnOff(k, v)
		case AttrState:
			var st LinkState
			if st, err = ParseLinkState(v); err == nil {
				s.State = &st
			}
		default:
			return Settings{}, fmt.Errorf("%w: unknown key %q (want mac, vlan, qos, trust, spoofchk, state, min_rate, max_rate)", ErrInvalid, k)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				err = fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			return Settings{}, err
		}
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// parseInt reads a decimal in [0, limit]; no sign, no base prefix.
func parseInt(key, v string, limit int) (*int, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > uint64(limit) {
		return nil, fmt.Errorf("%w: %s=%q: want a number from 0 to %d", ErrInvalid, key, v, limit)
	}
	i := int(n)
	return &i, nil
}

// parseOnOff takes ip-link's on/off and the usual boolean spellings.
func parseOnOff(key, v string) (*bool, error) {
	var b bool
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		b = true
	case "off", "false", "0", "no":
	default:
		return nil, fmt.Errorf("%w: %s=%q: want on or off", ErrInvalid, key, v)
	}
	return &b, nil
}
