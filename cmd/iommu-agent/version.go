package main

import "runtime/debug"

// version reports the module version and VCS revision the binary was built
// from, as recorded by the Go toolchain.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "iommu-agent (unknown build)"
	}
	v := "iommu-agent " + bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += "+dirty"
			}
		}
	}
	return v
}
