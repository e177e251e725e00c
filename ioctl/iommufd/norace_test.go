//go:build linux && !race

package iommufd

const raceEnabled = false
