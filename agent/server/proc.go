//go:build linux

package server

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// peerOf reads the connecting process's credentials (SO_PEERCRED: fixed at
// connect time, so a client cannot change them by passing the socket on) and
// its supplementary groups and start time from /proc, best effort.
func peerOf(c *net.UnixConn, procRoot string) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if serr != nil {
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	p := Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}
	p.Groups = supplementaryGroups(procRoot, p.PID)
	p.Start, _ = startTime(procRoot, p.PID)
	return p, nil
}

func supplementaryGroups(procRoot string, pid int32) []uint32 {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(int(pid)), "status"))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var gs []uint32
		for _, s := range strings.Fields(rest) {
			if g, err := strconv.ParseUint(s, 10, 32); err == nil {
				gs = append(gs, uint32(g))
			}
		}
		return gs
	}
	return nil
}

// startTime is field 22 of /proc/PID/stat: with the pid it names one process
// for the machine's uptime.
func startTime(procRoot string, pid int32) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(int(pid)), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')') // comm may hold spaces and parentheses
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 counted from pid
}

// holders returns the pids that have any of paths open, scanning
// /proc/*/fd: how the agent tells, without holding a copy itself, whether a
// VMM still uses a handed-out cdev (the client may have passed it on, so its
// own pid is not enough).
func holders(procRoot string, paths []string) []int {
	if len(paths) == 0 {
		return nil
	}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(procRoot, e.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			t, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err == nil && slices.Contains(paths, t) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
