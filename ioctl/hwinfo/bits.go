package hwinfo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// field returns the width-bit field of v that starts at bit lsb.
func field(v uint64, lsb, width uint) uint64 {
	return v >> lsb & (1<<width - 1)
}

// setNames lists, in bit order, the name of each set bit of v that name
// knows, and "bitN" for each set bit that reserved marks. Bits that belong
// to multi-bit fields are in neither and are left to the field decoders.
func setNames(v uint64, width uint, name func(bit uint) string, reserved uint64) []string {
	var out []string
	for i := range width {
		if v&(1<<i) == 0 {
			continue
		}
		if n := name(i); n != "" {
			out = append(out, n)
		} else if reserved&(1<<i) != 0 {
			out = append(out, "bit"+strconv.FormatUint(uint64(i), 10))
		}
	}
	return out
}

// sizeName prints a power-of-two byte size the way page sizes are spoken
// of: 4K, 2M, 1G, 512G, 256T.
func sizeName(size uint64) string {
	units := []string{"", "K", "M", "G", "T", "P", "E"}
	u := 0
	for size >= 1024 && size%1024 == 0 && u < len(units)-1 {
		size /= 1024
		u++
	}
	return strconv.FormatUint(size, 10) + units[u]
}

// joinInts joins ns with sep, for "39,48".
func joinInts(ns []int, sep string) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// joinSizes joins page sizes with sep, for "2M,1G".
func joinSizes(sizes []uint64, sep string) string {
	var b strings.Builder
	for i, s := range sizes {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(sizeName(s))
	}
	return b.String()
}

// parseHex parses a register as sysfs prints it ("%llx\n": hex without 0x
// or leading zeros) into at most bits bits; surrounding space and a 0x
// prefix are accepted too. Errors name the vendor, register and text, and
// wrap strconv.ErrSyntax or strconv.ErrRange.
func parseHex(vendor, what, text string, bits int) (uint64, error) {
	s := strings.TrimSpace(text)
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if s == "" {
		return 0, fmt.Errorf("hwinfo: %s %s %q: empty: %w", vendor, what, text, strconv.ErrSyntax)
	}
	n, err := strconv.ParseUint(s, 16, bits)
	if err != nil {
		// The *NumError names ParseUint and repeats the text; keep only its cause.
		cause := err
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			cause = ne.Err
		}
		return 0, fmt.Errorf("hwinfo: %s %s %q: not a %d-bit hex number: %w", vendor, what, text, bits, cause)
	}
	return n, nil
}
