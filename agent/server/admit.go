//go:build linux

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/proto"
	"golang.org/x/sys/unix"
)

// acceptHealth is what /healthz knows of the accept loop: since when it has
// been failing (0: it is not) and with what.
type acceptHealth struct {
	failingSince atomic.Int64 // unix nanoseconds
	lastErr      atomic.Pointer[string]
	failures     atomic.Int64 // since the last log line
	log          every
}

// every lets an event through at most once per period: one log line for a
// run of failures, not one per retry.
type every struct {
	period time.Duration
	mu     sync.Mutex
	last   time.Time
}

func (e *every) allow(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.last.IsZero() && now.Sub(e.last) < e.period {
		return false
	}
	e.last = now
	return true
}

// errnoLabel names err's errno for a metric label ("EMFILE"), "other" if
// it has none.
func errnoLabel(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
	}
	return "other"
}

func (s *Server) acceptFailed(err error, retry time.Duration) {
	now := time.Now()
	s.accept.failingSince.CompareAndSwap(0, now.UnixNano())
	msg := err.Error()
	s.accept.lastErr.Store(&msg)
	s.m.acceptErrors.WithLabelValues(errnoLabel(err)).Inc()
	n := s.accept.failures.Add(1)
	if s.accept.log.allow(now) {
		s.accept.failures.Store(0)
		s.log.Error("accept failing: retrying", "err", err, "failures", n, "retry_in", retry,
			"failing_for", now.Sub(time.Unix(0, s.accept.failingSince.Load())).Round(time.Millisecond))
	}
}

func (s *Server) acceptRecovered() {
	since := s.accept.failingSince.Swap(0)
	s.accept.failures.Store(0)
	s.accept.log.mu.Lock()
	s.accept.log.last = time.Time{} // the next run of failures logs at once
	s.accept.log.mu.Unlock()
	s.log.Info("accepting again", "failed_for", time.Since(time.Unix(0, since)).Round(time.Millisecond))
}

// healthy reports why the server is not serving, or "".
func (s *Server) unhealthy() string {
	if !s.serving.Load() {
		return "not serving"
	}
	if since := s.accept.failingSince.Load(); since != 0 {
		if d := time.Since(time.Unix(0, since)); d > s.o.UnhealthyAfter {
			reason := "accept failing"
			if e := s.accept.lastErr.Load(); e != nil {
				reason += ": " + *e
			}
			return fmt.Sprintf("%s for %v", reason, d.Round(time.Second))
		}
	}
	return ""
}

// admit serves c unless the agent holds max_conns connections already: then
// c gets a limit error and is closed at once, in the accept loop, with no
// goroutine started for it.
func (s *Server) admit(ctx context.Context, c *net.UnixConn) {
	s.mu.Lock()
	if s.nconns >= s.lim.MaxConns {
		s.mu.Unlock()
		s.refuse(c, "total", fmt.Sprintf("the agent serves %d connections, its most (limits.max_conns): try again later", s.lim.MaxConns))
		return
	}
	s.nconns++
	s.mu.Unlock()
	s.wg.Add(1)
	go s.serveConn(ctx, c)
}

// refuse sends c one frame, a limit error, and closes it. The socket is
// shut down and drained before the close so the client reads the error
// rather than a reset (a unix socket closed with unread data resets its
// peer).
func (s *Server) refuse(c *net.UnixConn, reason, msg string) {
	s.m.refused.WithLabelValues(reason).Inc()
	if s.refusals.allow(time.Now()) {
		s.log.Warn("connection refused (logged at most every 10 s)", "reason", reason, "msg", msg)
	}
	c.SetWriteDeadline(time.Now().Add(time.Second)) // a fresh socket has room: a guard, not a wait
	proto.NewConn(c).Send(proto.Response{Error: &proto.Error{Code: proto.CodeLimit, Message: msg}})
	if raw, err := c.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			unix.Shutdown(int(fd), unix.SHUT_RDWR)
			var b [1]byte
			// Whatever the client sent before the shutdown (fds are
			// dropped with it); a shut-down socket then reads 0.
			for range 64 {
				if n, _, _, _, err := unix.Recvmsg(int(fd), b[:], nil, unix.MSG_DONTWAIT|unix.MSG_TRUNC); err != nil || n == 0 {
					break
				}
			}
		})
	}
	c.Close()
}

// charge books one mapping of n bytes to l and its owner's uid, or returns
// a limit error naming the cap it would pass. Called with l.mu held.
func (s *Server) charge(l *lease, n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	uid := l.rec.Owner.UID
	u := s.uidMaps[uid]
	if u == nil {
		u = &mapUse{}
	}
	var msg string
	switch {
	case l.use.n >= s.lim.MaxMapsPerLease:
		msg = fmt.Sprintf("lease %s holds %d maps, the most a lease may (limits.max_maps_per_lease): unmap some, or map larger regions", l.rec.ID, l.use.n)
	case l.use.bytes+n > s.lim.MaxMapBytesPerLease || l.use.bytes+n < n:
		msg = fmt.Sprintf("lease %s maps %d bytes; %d more would pass limits.max_map_bytes_per_lease (%d)", l.rec.ID, l.use.bytes, n, s.lim.MaxMapBytesPerLease)
	case u.n >= s.lim.MaxMapsPerUID:
		msg = fmt.Sprintf("uid %d holds %d maps, the most a uid may (limits.max_maps_per_uid)", uid, u.n)
	case u.bytes+n > s.lim.MaxMapBytesPerUID || u.bytes+n < n:
		msg = fmt.Sprintf("uid %d maps %d bytes; %d more would pass limits.max_map_bytes_per_uid (%d)", uid, u.bytes, n, s.lim.MaxMapBytesPerUID)
	case s.maps >= s.lim.MaxMaps:
		msg = fmt.Sprintf("the agent holds %d maps, its most (limits.max_maps)", s.maps)
	}
	if msg != "" {
		return &proto.Error{Code: proto.CodeLimit, Message: msg}
	}
	l.use.n++
	l.use.bytes += n
	u.n++
	u.bytes += n
	s.uidMaps[uid] = u
	s.maps++
	s.m.maps.Set(float64(s.maps))
	return nil
}

// uncharge gives back what charge booked. Called with l.mu held.
func (s *Server) uncharge(l *lease, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uid := l.rec.Owner.UID
	l.use.n--
	l.use.bytes -= n
	if u := s.uidMaps[uid]; u != nil {
		u.n--
		u.bytes -= n
		if u.n == 0 {
			delete(s.uidMaps, uid)
		}
	}
	s.maps--
	s.m.maps.Set(float64(s.maps))
}
