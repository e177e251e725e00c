//go:build linux && race

package iommufd

// raceEnabled: the race detector allocates on its own, so allocation
// counts mean nothing under -race.
const raceEnabled = true
