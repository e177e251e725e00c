package hostcheck

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// memlockWant is the locked-memory limit below which check warns: type1
// and iommufd charge every pinned guest page against it, so anything this
// small fails on the first real guest.
const memlockWant = 1 << 30

// capIPCLock is CAP_IPC_LOCK's bit in /proc/self/status CapEff. With it,
// type1 (vfio_pin_map_dma's lock_cap) and iommufd skip memlock accounting.
const capIPCLock = 14

// memlockFinding reads this process's RLIMIT_MEMLOCK from /proc/self/limits
// (the agent stays off x/sys/unix outside ioctl/) and CAP_IPC_LOCK from
// /proc/self/status.
func memlockFinding(procRoot string) Finding {
	fd := Finding{Check: "RLIMIT_MEMLOCK"}
	fix := "raise it to the guest RAM times the containers: ulimit -l unlimited, systemd LimitMEMLOCK=infinity, docker --ulimit memlock=-1; or grant CAP_IPC_LOCK"
	soft, hard, err := ReadMemlock(filepath.Join(procRoot, "self", "limits"))
	if err != nil {
		fd.Status, fd.Detail = Warn, "cannot read: "+err.Error()
		return fd
	}
	limit := fmt.Sprintf("soft %s, hard %s", bytesText(soft), bytesText(hard))
	if hasCap(filepath.Join(procRoot, "self", "status"), capIPCLock) {
		fd.Status, fd.Detail = Pass, limit+"; CAP_IPC_LOCK held, so pinned pages are not charged"
		return fd
	}
	if soft < 0 || soft >= memlockWant {
		fd.Status, fd.Detail = Pass, limit+"; pinned guest pages are charged against it"
		return fd
	}
	fd.Status, fd.Fix = Warn, fix
	fd.Detail = limit + ": VFIO/iommufd charge every pinned guest page, so mapping more fails with ENOMEM"
	return fd
}

// ReadMemlock returns the soft and hard "Max locked memory" limits of a
// /proc/PID/limits file in bytes, -1 for unlimited.
func ReadMemlock(path string) (soft, hard int64, err error) {
	found := false
	var perr error
	ok, err := readLines(path, false, func(line string) bool {
		rest, match := strings.CutPrefix(line, "Max locked memory")
		if !match {
			return true
		}
		found = true
		f := strings.Fields(rest)
		if len(f) < 2 {
			perr = fmt.Errorf("%s: malformed line %q", path, line)
			return false
		}
		if soft, perr = parseLimit(f[0]); perr == nil {
			hard, perr = parseLimit(f[1])
		}
		if perr != nil {
			perr = fmt.Errorf("%s: %w", path, perr)
		}
		return false
	})
	switch {
	case err != nil:
		return 0, 0, err
	case perr != nil:
		return 0, 0, perr
	case !ok:
		return 0, 0, fmt.Errorf("open %s: %w", path, fs.ErrNotExist)
	case !found:
		return 0, 0, fmt.Errorf("%s: no \"Max locked memory\" line", path)
	}
	return soft, hard, nil
}

func parseLimit(s string) (int64, error) {
	if s == "unlimited" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

func bytesText(n int64) string {
	switch {
	case n < 0:
		return "unlimited"
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// hasCap reports whether CapEff in a /proc/PID/status file has bit; false
// when it cannot be read, which only loses the PASS shortcut.
func hasCap(path string, bit uint) bool {
	has := false
	_, _ = readLines(path, false, func(line string) bool {
		v, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			return true
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		has = err == nil && n&(1<<bit) != 0
		return false
	})
	return has
}
