package sriov

import (
	"errors"
	"fmt"
)

// MAC is an Ethernet address. It is fixed-size so Config compares with ==
// and JSON carries it as text ("52:54:00:12:34:56"), not as base64 bytes.
type MAC [6]byte

// ErrMAC is wrapped by every ParseMAC error.
var ErrMAC = errors.New("malformed MAC address")

// ParseMAC parses six colon-separated pairs of hex digits, either case, the
// form ip-link prints. Other forms net.ParseMAC takes (dashes, dots, 8- or
// 20-byte addresses) are refused: a VF's MAC is Ethernet's and one spelling
// keeps the CLI, the JSON and the logs greppable.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return MAC{}, fmt.Errorf("%w: %q: want xx:xx:xx:xx:xx:xx", ErrMAC, s)
	}
	for i := range m {
		if i > 0 && s[3*i-1] != ':' {
			return MAC{}, fmt.Errorf("%w: %q: want xx:xx:xx:xx:xx:xx", ErrMAC, s)
		}
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 {
			return MAC{}, fmt.Errorf("%w: %q: %q is not a hex byte", ErrMAC, s, s[3*i:3*i+2])
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String formats m as ip-link does: lower case, colons.
func (m MAC) String() string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, v := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[v>>4], digits[v&0xf])
	}
	return string(b)
}

// IsZero reports the all-zero address, which a driver reads as "no MAC
// set by the PF" (igb lets the VF choose its own then).
func (m MAC) IsZero() bool { return m == MAC{} }

// IsMulticast reports the group bit; a multicast (or broadcast) address
// cannot be a station's.
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *MAC) UnmarshalText(b []byte) error {
	v, err := ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
