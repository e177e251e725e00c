//go:build linux

package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/iommu-agent/iommu-agent/agent/proto"
	"golang.org/x/sys/unix"
)

// ErrAnotherAgent is a state dir locked, or a socket answered, by another
// iommu-agent: one host has one agent, which alone reconciles the lease
// records and answers on the socket.
var ErrAnotherAgent = errors.New("another iommu-agent")

// Listener is the agent's listening socket. Unlike a *net.UnixListener's,
// its Close removes the socket file only while the file is still the one it
// created: a stopping agent never removes the socket of another that
// replaced it.
type Listener struct {
	*net.UnixListener
	path     string
	dev, ino uint64
}

// Listen listens on a unix socket at path. A socket file already there is
// removed only when stale (connecting to it is refused: its agent is gone);
// when something answers, Listen refuses (ErrAnotherAgent) and leaves it.
// A file that is not a socket is never removed. The socket is
// world-connectable (0666): the policy, not the file mode, decides.
func Listen(path string) (*Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %s: a %s is there, not a socket: remove it or choose another -socket", path, fi.Mode().Type())
		}
		c, err := net.DialUnix(proto.Network, nil, &net.UnixAddr{Name: path, Net: proto.Network})
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("%w is serving on %s", ErrAnotherAgent, path)
		case errors.Is(err, syscall.ECONNREFUSED): // stale: its listener is gone
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("remove stale socket: %w", err)
			}
		default: // a listener of another kind, or a full backlog: alive
			return nil, fmt.Errorf("%s answers (%w): %w may be serving there; not replacing it", path, err, ErrAnotherAgent)
		}
	}
	ln, err := net.ListenUnix(proto.Network, &net.UnixAddr{Name: path, Net: proto.Network})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // Close decides, by inode
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		ln.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	return &Listener{UnixListener: ln, path: path, dev: st.Dev, ino: st.Ino}, nil
}

// Close stops listening and removes the socket file if it is still this
// listener's. The file goes first, while this listener still answers on
// it, so no other agent can have taken it over in between.
func (l *Listener) Close() error {
	var st unix.Stat_t
	if unix.Lstat(l.path, &st) == nil && st.Dev == l.dev && st.Ino == l.ino {
		os.Remove(l.path)
	}
	return l.UnixListener.Close()
}

// lockFile is the state dir's lock, held for the agent's lifetime.
const lockFile = "agent.lock"

// lockStateDir takes dir's lock (flock LOCK_EX|LOCK_NB on agent.lock) and
// writes this process's pid into it, so a second agent can say whom it
// found. The kernel drops the lock when the process dies, however it dies.
func lockStateDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := ""
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					holder = " (pid " + strconv.Itoa(pid) + ")"
				}
			}
			return nil, fmt.Errorf("%w%s holds state dir %s: stop it, or give this one a -state and -socket of its own", ErrAnotherAgent, holder, dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
