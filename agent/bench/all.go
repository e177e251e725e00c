//go:build linux

package bench

// Groups lists every bench in report order. A group that cannot run here
// (no root, no device, no C compiler) says why in a skipped row.
func Groups() []Bench {
	return []Bench{
		Emulated(),
		Daemon(),
		Seed(),
		GoVsC(),
		GuestRAM(),
		// In ns outside a -icount guest: make bench measures it in one.
		Tracer(TracerOptions{}),
	}
}

// Select keeps the groups named in only (all when empty).
func Select(bs []Bench, only []string) []Bench {
	if len(only) == 0 {
		return bs
	}
	var out []Bench
	for _, b := range bs {
		for _, o := range only {
			if b.Group == o {
				out = append(out, b)
			}
		}
	}
	return out
}
