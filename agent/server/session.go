//go:build linux

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/agent/iommu/emulated"
	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/sysfs"
	"golang.org/x/sys/unix"
)

// maxBadFrames is how many bad frames in a row a connection may send before
// the agent hangs up on it.
const maxBadFrames = 8

// session is one client connection, served by one goroutine.
type session struct {
	c      *proto.Conn
	peer   Peer
	hello  bool
	start  time.Time
	leases map[string]*lease // guarded by Server.mu
}

// serveConn serves one admitted connection (admit counted it in nconns).
func (s *Server) serveConn(ctx context.Context, uc *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.nconns--
		s.mu.Unlock()
	}()
	peer, err := peerOf(uc, s.o.ProcRoot)
	if err != nil {
		uc.Close()
		s.log.Error("peer credentials", "err", err)
		return
	}
	// The per-uid cap, before anything is allocated for the session: a
	// uid no rule names can only list and be refused, so it gets few.
	limit, which := s.lim.MaxConnsNoRule, "max_conns_no_rule"
	if s.o.Policy.hasRule(peer) {
		limit, which = s.lim.MaxConnsPerUID, "max_conns_per_uid"
	}
	s.mu.Lock()
	if s.uidConns[peer.UID] >= limit {
		s.mu.Unlock()
		s.refuse(uc, "uid", fmt.Sprintf("uid %d has %d connections, the most it may (limits.%s): close some", peer.UID, limit, which))
		return
	}
	s.uidConns[peer.UID]++
	sess := &session{c: proto.NewConn(uc), peer: peer, start: time.Now(), leases: map[string]*lease{}}
	s.conns[sess] = struct{}{}
	s.mu.Unlock()
	defer uc.Close()
	s.m.conns.Inc()
	defer func() {
		s.m.conns.Dec()
		s.mu.Lock()
		delete(s.conns, sess)
		if s.uidConns[peer.UID]--; s.uidConns[peer.UID] == 0 {
			delete(s.uidConns, peer.UID)
		}
		var ls []*lease
		for _, l := range sess.leases {
			ls = append(ls, l)
		}
		s.mu.Unlock()
		s.disconnect(context.WithoutCancel(ctx), sess, ls)
	}()
	if ctx.Err() != nil {
		return // Serve is closing the sessions, maybe before this one registered
	}
	log := s.log.With("uid", peer.UID, "pid", peer.PID)
	bad := 0
	for {
		// Wait for the next frame holding nothing but the fd, under the
		// idle timeouts: before hello, and while no lease is held.
		uc.SetReadDeadline(s.idleDeadline(sess))
		if _, err := sess.c.Wait(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				reason := "idle"
				if !sess.hello {
					reason = "hello"
				}
				s.m.closed.WithLabelValues(reason).Inc()
				log.Info("connection closed: silent too long", "reason", reason)
			}
			return // EOF, or the server is closing the connection
		}
		if !s.frame(ctx, sess, log, &bad) {
			return
		}
	}
}

// idleDeadline is when sess's silence ends it: hello_timeout after it
// connected until it says hello, then idle_timeout from now while it holds
// no lease; never while it holds one.
func (s *Server) idleDeadline(sess *session) time.Time {
	if !sess.hello {
		return sess.start.Add(time.Duration(s.lim.HelloTimeout))
	}
	s.mu.Lock()
	n := len(sess.leases)
	s.mu.Unlock()
	if n > 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(s.lim.IdleTimeout))
}

// frame reads, handles and answers one frame under one of the server's
// in-flight tokens, which bound the memory frames take however many
// clients send at once. It reports whether the session goes on.
func (s *Server) frame(ctx context.Context, sess *session, log *slog.Logger, bad *int) bool {
	select {
	case s.inFlight <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-s.inFlight }()
	uc := sess.c.UnixConn()
	send := func(resp proto.Response, fds ...int) error {
		uc.SetWriteDeadline(time.Now().Add(time.Duration(s.lim.WriteTimeout)))
		err := sess.c.Send(resp, fds...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.m.closed.WithLabelValues("write").Inc()
		}
		return err
	}
	var req proto.Request
	fds, err := sess.c.Recv(&req)
	if err != nil {
		if errors.Is(err, proto.ErrTooLarge) || errors.Is(err, proto.ErrTruncated) || errors.Is(err, proto.ErrMalformed) {
			*bad++
			log.Warn("bad frame", "err", err, "in_a_row", *bad)
			s.m.errors.WithLabelValues("frame", string(proto.CodeFrame)).Inc()
			return *bad < maxBadFrames && send(proto.Response{Error: &proto.Error{Code: proto.CodeFrame, Message: err.Error()}}) == nil
		}
		return false // EOF, or the server is closing the connection
	}
	*bad = 0
	start := time.Now()
	resp, out := s.handle(ctx, sess, &req, fds)
	resp.ID = req.ID
	op := string(req.Op)
	if !slices.Contains([]proto.Op{proto.OpHello, proto.OpList, proto.OpAcquire, proto.OpRelease, proto.OpStatus, proto.OpMap, proto.OpUnmap, proto.OpDMA}, req.Op) {
		op = "unknown" // no label per garbage op name
	}
	s.m.ops.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if resp.Error != nil {
		s.m.errors.WithLabelValues(op, string(resp.Error.Code)).Inc()
		switch resp.Error.Code {
		case proto.CodeInternal:
			// The agent's own failure: everything needed to find it.
			log.Error("request failed: internal error", "op", op, "err", resp.Error.Message, "lease", req.Lease,
				"device", req.Device, "group", req.Group, "iova", req.IOVA, "length", req.Length, "offset", req.Offset)
		case proto.CodeDenied, proto.CodeLimit:
			log.Warn("request failed", "op", op, "code", resp.Error.Code, "err", resp.Error.Message)
		default:
			log.Info("request failed", "op", op, "code", resp.Error.Code, "err", resp.Error.Message)
		}
	}
	err = send(resp, out...)
	proto.CloseFDs(out) // the client has its own copies now; ours would keep the binding alive
	if err != nil {
		log.Warn("send", "op", op, "err", err)
		return false
	}
	return true
}

// disconnect ends a closed connection's leases: broker leases always, fds
// leases unless the rule keeps them (they become orphans, as do those whose
// cdevs are still open).
func (s *Server) disconnect(ctx context.Context, sess *session, ls []*lease) {
	for _, l := range ls {
		if l.rec.Mode == proto.ModeFDs && l.rule != nil && l.rule.KeepOnDisconnect {
			s.mu.Lock()
			l.sess = nil
			s.mu.Unlock()
			s.log.Info("lease kept after disconnect", "lease", l.rec.ID)
			continue
		}
		if err := s.release(ctx, l, false); err != nil {
			s.log.Info("lease not released at disconnect", "lease", l.rec.ID, "err", err)
		}
	}
}

// handle answers one request; fds are the ones that came with it, all of
// which handle closes or keeps. out are fds to send back.
func (s *Server) handle(ctx context.Context, sess *session, req *proto.Request, fds []int) (resp proto.Response, out []int) {
	want := 0
	if req.Op == proto.OpMap {
		want = 1
	}
	defer func() { proto.CloseFDs(fds) }() // map dups what it keeps
	if len(fds) != want {
		return errResp(&proto.Error{Code: proto.CodeTooMany, Message: fmt.Sprintf("op %q takes %d fds, got %d", req.Op, want, len(fds))}), nil
	}
	if req.Op != proto.OpHello && !sess.hello {
		return errResp(&proto.Error{Code: proto.CodeVersion, Message: "send hello first"}), nil
	}
	var err error
	switch req.Op {
	case proto.OpHello:
		if req.Version != proto.Version {
			return errResp(&proto.Error{Code: proto.CodeVersion, Message: fmt.Sprintf("agent speaks version %d, client %d", proto.Version, req.Version)}), nil
		}
		sess.hello = true
		resp = proto.Response{Version: proto.Version, Backend: s.o.Backend, UID: sess.peer.UID, GID: sess.peer.GID, PID: sess.peer.PID}
	case proto.OpList:
		resp.Devices, resp.Groups, err = s.list()
	case proto.OpAcquire:
		var l *proto.Lease
		var names []string
		var vf []proto.VFResult
		l, names, out, vf, err = s.acquire(ctx, sess, req)
		if err != nil {
			r := errResp(err)
			r.VF = vf
			return r, nil
		}
		resp = proto.Response{Lease: l, FDs: names, VF: vf}
	case proto.OpRelease:
		var l *lease
		if l, err = s.owned(sess, req.Lease); err == nil {
			err = s.release(ctx, l, true)
		}
	case proto.OpStatus:
		for _, l := range s.Leases() {
			if sess.peer.UID == 0 || l.UID == sess.peer.UID {
				resp.Leases = append(resp.Leases, l)
			}
		}
	case proto.OpMap:
		resp.IOVA, err = s.mapMem(ctx, sess, req, fds[0])
	case proto.OpUnmap:
		resp.Length, err = s.unmap(ctx, sess, req)
	case proto.OpDMA:
		resp.Data, err = s.dma(sess, req)
	default:
		err = &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf("unknown op %q", req.Op)}
	}
	if err != nil {
		return errResp(err), nil
	}
	return resp, out
}

func errResp(err error) proto.Response { return proto.Response{Error: wireError(err)} }

// wireError classifies err for the client by the sentinels it matches.
func wireError(err error) *proto.Error {
	var pe *proto.Error
	if errors.As(err, &pe) {
		return pe
	}
	var f *emulated.Fault
	code := proto.CodeInternal
	switch {
	case errors.As(err, &f) || errors.Is(err, unix.EFAULT):
		code = proto.CodeFault
	case errors.Is(err, iommu.ErrNotFound), errors.Is(err, sysfs.ErrNoDevice), errors.Is(err, sysfs.ErrNoGroup):
		code = proto.CodeNotFound
	case errors.Is(err, iommu.ErrExists):
		code = proto.CodeExists
	case errors.Is(err, iommu.ErrBusy):
		code = proto.CodeBusy
	case errors.Is(err, iommu.ErrInvalid), errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOVERFLOW):
		// EOVERFLOW: iova+length wraps (iommufd.h), the request's fault.
		code = proto.CodeInvalid
	case errors.Is(err, iommu.ErrNotSupported):
		code = proto.CodeUnsupported
	case errors.Is(err, iommu.ErrNoSpace):
		code = proto.CodeNoSpace
	case errors.Is(err, iommu.ErrPermission):
		code = proto.CodeDenied
	}
	return &proto.Error{Code: code, Message: err.Error()}
}

// owned finds a lease the peer may act on: its own connection's, or any of
// its uid's (an orphan re-adopted after a restart), or any for root.
func (s *Server) owned(sess *session, id string) (*lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[id]
	if !ok {
		return nil, &proto.Error{Code: proto.CodeNotFound, Message: fmt.Sprintf("no lease %q", id)}
	}
	if l.sess != sess && sess.peer.UID != 0 && !(l.sess == nil && l.rec.Owner.UID == sess.peer.UID) {
		return nil, &proto.Error{Code: proto.CodeDenied, Message: fmt.Sprintf("lease %s belongs to uid %d", id, l.rec.Owner.UID)}
	}
	if l.sess == nil && sess != nil { // adopted by the connection that names it
		l.sess = sess
		sess.leases[id] = l
	}
	return l, nil
}

// broker returns a live broker lease of sess, locked.
func (s *Server) broker(sess *session, id string) (*lease, error) {
	l, err := s.owned(sess, id)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.as == nil {
		l.mu.Unlock()
		return nil, &proto.Error{Code: proto.CodeUnsupported, Message: fmt.Sprintf("lease %s is mode %s: map, unmap and dma need a broker lease", id, l.rec.Mode)}
	}
	return l, nil
}

func parsePerm(s string) (iommu.Perm, error) {
	switch s {
	case "r":
		return iommu.Read, nil
	case "w":
		return iommu.Write, nil
	case "", "rw":
		return iommu.Read | iommu.Write, nil
	}
	return 0, &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf("perm %q: want r, w or rw", s)}
}

// mapMem maps [Offset, Offset+Length) of the client's memfd. The memfd must be
// sealed against shrinking: the agent (and the emulated device) touch the
// pages, and a client that truncated them would crash the agent with SIGBUS.
// The agent maps it writable only when perm lets the device write, so a
// memfd sealed against writes can still be mapped "r".
func (s *Server) mapMem(ctx context.Context, sess *session, req *proto.Request, memfd int) (uint64, error) {
	perm, err := parsePerm(req.Perm)
	if err != nil {
		return 0, err
	}
	seals, err := unix.FcntlInt(uintptr(memfd), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_SHRINK == 0 {
		return 0, &proto.Error{Code: proto.CodeInvalid, Message: "map wants a memfd sealed with F_SEAL_SHRINK"}
	}
	prot := unix.PROT_READ
	if perm&iommu.Write != 0 {
		prot |= unix.PROT_WRITE
		for _, seal := range []struct {
			bit  int
			name string
		}{{unix.F_SEAL_WRITE, "F_SEAL_WRITE"}, {unix.F_SEAL_FUTURE_WRITE, "F_SEAL_FUTURE_WRITE"}} {
			if seals&seal.bit != 0 {
				return 0, &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf(
					"the memfd is sealed with %s, so the device may not write it: map it with perm \"r\", or seal it without %s", seal.name, seal.name)}
			}
		}
	}
	if req.Fixed && req.IOVA+req.Length < req.IOVA {
		return 0, &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf("map at iova %#x+%#x wraps past 2^64: choose a lower iova", req.IOVA, req.Length)}
	}
	var st unix.Stat_t
	if err := unix.Fstat(memfd, &st); err != nil {
		return 0, err
	}
	page := uint64(unix.Getpagesize())
	if req.Length == 0 || req.Length%page != 0 || req.Offset%page != 0 || req.Offset+req.Length < req.Offset || req.Offset+req.Length > uint64(st.Size) {
		return 0, &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf("map [%#x, +%#x) of a %d-byte memfd: page-aligned and inside it", req.Offset, req.Length, st.Size)}
	}
	l, err := s.broker(sess, req.Lease)
	if err != nil {
		return 0, err
	}
	defer l.mu.Unlock()
	if err := s.charge(l, req.Length); err != nil {
		return 0, err
	}
	if iova, ok, err := s.mapFile(ctx, l, memfd, req, perm); ok || err != nil {
		if err != nil {
			s.uncharge(l, req.Length)
			return 0, err
		}
		l.maps = append(l.maps, memMap{iova: iova, length: req.Length})
		s.m.brokerMaps.WithLabelValues("map_file").Inc()
		return uint64(iova), nil
	}
	mem, err := unix.Mmap(memfd, int64(req.Offset), int(req.Length), prot, unix.MAP_SHARED)
	if err != nil {
		s.uncharge(l, req.Length)
		return 0, fmt.Errorf("mmap memfd: %w", err)
	}
	iova, err := l.as.Map(ctx, iommu.Mapping{Mem: mem, IOVA: iommu.IOVA(req.IOVA), Fixed: req.Fixed, Perm: perm})
	if err != nil {
		unix.Munmap(mem)
		s.uncharge(l, req.Length)
		return 0, err
	}
	l.maps = append(l.maps, memMap{iova: iova, length: req.Length, mem: mem})
	s.m.brokerMaps.WithLabelValues("mmap").Inc()
	return uint64(iova), nil
}

// mapFile maps the memfd by descriptor where the address space can
// (IOMMU_IOAS_MAP_FILE, Linux 6.13): the kernel pins the file's pages
// without the agent mapping the client's memory and faulting it in, which
// under 4 KiB pages was most of a broker map's time. ok is false where it
// cannot (type1, the emulated IOMMU whose device reads the agent's own
// mapping, an older kernel, a file it refuses), and the caller mmaps.
func (s *Server) mapFile(ctx context.Context, l *lease, memfd int, req *proto.Request, perm iommu.Perm) (iommu.IOVA, bool, error) {
	fm, can := l.as.(iommu.FileMapper)
	if !can || s.noMapFile.Load() {
		return 0, false, nil
	}
	iova, err := fm.MapFile(ctx, iommu.FileMapping{FD: memfd, Offset: req.Offset, Length: req.Length,
		IOVA: iommu.IOVA(req.IOVA), Fixed: req.Fixed, Perm: perm})
	switch {
	case errors.Is(err, unix.ENOTTY):
		s.noMapFile.Store(true) // the kernel predates it: ask no more
		return 0, false, nil
	case errors.Is(err, iommu.ErrNotSupported):
		return 0, false, nil
	}
	return iova, err == nil, err
}

func (s *Server) unmap(ctx context.Context, sess *session, req *proto.Request) (uint64, error) {
	l, err := s.broker(sess, req.Lease)
	if err != nil {
		return 0, err
	}
	defer l.mu.Unlock()
	n, err := l.as.Unmap(ctx, iommu.IOVA(req.IOVA), req.Length)
	// Whole areas below a refused cut are gone too (iommufd's rule), so
	// drop every memfd mapping the address space no longer has, even on
	// error.
	end := req.IOVA + req.Length
	l.maps = slices.DeleteFunc(l.maps, func(m memMap) bool {
		in := uint64(m.iova) >= req.IOVA && (end < req.IOVA || uint64(m.iova)+m.length <= end)
		if in && !mapped(l.as, m.iova, err == nil) {
			if m.mem != nil {
				unix.Munmap(m.mem)
			}
			s.uncharge(l, m.length)
			return true
		}
		return false
	})
	return n, err
}

// mapped reports whether the address space still maps iova. The emulated one
// is asked (its device reads our mapping of the memfd, which must stay);
// kernel ones cannot be, so only a successful unmap counts as done there.
func mapped(as iommu.AddressSpace, iova iommu.IOVA, unmapped bool) bool {
	if e, ok := as.(*emulated.AddressSpace); ok {
		_, _, ok := e.Translate(iova)
		return ok
	}
	return !unmapped
}

// dma runs the device's engine: only emulated devices have one the agent can
// drive in general (a real device's DMA is its driver's business).
func (s *Server) dma(sess *session, req *proto.Request) ([]byte, error) {
	l, err := s.broker(sess, req.Lease)
	if err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	bdf := req.Device
	if bdf == "" && len(l.rec.Devices) == 1 {
		bdf = l.rec.Devices[0]
	}
	at, ok := l.atts[bdf]
	if !ok {
		return nil, &proto.Error{Code: proto.CodeNotFound, Message: fmt.Sprintf("lease %s has no device %q", req.Lease, bdf)}
	}
	ea, ok := at.(*emulated.Attachment)
	if !ok {
		return nil, &proto.Error{Code: proto.CodeUnsupported, Message: "dma needs an emulated device"}
	}
	eng := ea.DMA()
	n := req.Length
	if req.Write {
		n = uint64(len(req.Data))
	}
	if n == 0 || n > emulated.EduBufferSize {
		return nil, &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf("dma of %d bytes: 1 to %d", n, emulated.EduBufferSize)}
	}
	if last := req.IOVA + n - 1; last < req.IOVA || last > emulated.EduDMAMask {
		return nil, &proto.Error{Code: proto.CodeInvalid, Message: fmt.Sprintf(
			"dma at iova %#x+%d: past the device's DMA mask %#x (28 bits): map the buffer below it", req.IOVA, n, uint64(emulated.EduDMAMask))}
	}
	if req.Write {
		copy(eng.Buffer(), req.Data)
		return nil, eng.WriteToRAM(req.IOVA, 0, int(n))
	}
	if err := eng.ReadFromRAM(req.IOVA, 0, int(n)); err != nil {
		return nil, err
	}
	return slices.Clone(eng.Buffer()[:n]), nil
}

// list reports devices and groups with viability and leases.
func (s *Server) list() ([]proto.Device, []proto.Group, error) {
	s.mu.Lock()
	byGroup := map[int]string{}
	for g, id := range s.groups {
		if _, ok := s.leases[id]; ok {
			byGroup[g] = id
		}
	}
	s.mu.Unlock()
	var devs []proto.Device
	groups := map[int]*proto.Group{}
	add := func(d proto.Device) {
		d.Lease = byGroup[d.Group]
		devs = append(devs, d)
		g := groups[d.Group]
		if g == nil {
			g = &proto.Group{Number: d.Group, Viable: true, Lease: byGroup[d.Group]}
			groups[d.Group] = g
		}
		g.Devices = append(g.Devices, d.BDF)
	}
	var err error
	if s.o.Sysfs != nil {
		var ds []sysfs.Device
		ds, err = s.o.Sysfs.Devices()
		for _, d := range ds {
			if d.IOMMUGroup != nil && !d.IsBridge() {
				add(proto.Device{BDF: d.Address.String(), Group: *d.IOMMUGroup, Vendor: d.Vendor, Device: d.Device, Driver: d.Driver})
			}
		}
		for n, g := range groups {
			v, verr := s.o.Sysfs.Viability(n)
			if verr != nil {
				g.Viable, g.Reason = false, verr.Error()
				continue
			}
			g.Viable, g.Reason = v.Viable, v.String()
		}
	} else {
		for _, d := range s.o.Devices {
			add(proto.Device{BDF: d.BDF, Group: d.Group, Vendor: 0x1234, Device: 0x11e8})
		}
	}
	var gs []proto.Group
	for _, g := range groups {
		gs = append(gs, *g)
	}
	slices.SortFunc(gs, func(a, b proto.Group) int { return a.Number - b.Number })
	return devs, gs, err
}
