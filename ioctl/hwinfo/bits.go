package hwinfo

import (
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
