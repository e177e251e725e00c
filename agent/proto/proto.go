//go:build linux

// Package proto is the wire protocol between iommu-agent and its clients
// (VMMs, libvirt-like managers, the demo): JSON frames over a SOCK_SEQPACKET
// unix socket, file descriptors beside them in SCM_RIGHTS.
//
// # Framing
//
// One frame is one packet: a 4-byte big-endian length, then that many bytes of
// JSON (a Request from the client, a Response from the agent). SEQPACKET keeps
// packet boundaries and ties each packet's fds to it, so a frame and its fds
// arrive together or not at all; the length prefix lets the receiver reject a
// packet whose header and size disagree instead of parsing a torn frame.
// A frame is at most MaxFrame bytes and carries at most MaxFDs fds; a larger
// packet is cut by the kernel (MSG_TRUNC) and refused, fds beyond the control
// buffer are dropped by the kernel (MSG_CTRUNC) and the frame is refused too,
// after closing the fds that did arrive.
//
// # Session
//
// The client sends Hello first, with the Version it speaks; the agent answers
// with its own and refuses other ops before it (the socket stays open, so a
// client can retry). Every Request carries an ID, echoed by the Response.
// Requests on one connection are answered in order.
//
// An agent over one of its caps (connections in all or per uid) answers a
// new connection with a single frame of ID 0 carrying an Error of code
// limit, and hangs up. A connection silent too long (before hello, or
// after it while holding no lease) or not reading its answers is closed.
//
// # Ops
//
//	hello    {version}                          → {version, backend, uid, gid, pid}
//	list                                        → {devices, groups}
//	acquire  {device | group, mode, memlock, vf?} → {lease, vf?} + fds (mode "fds")
//	release  {lease}                            → {}
//	status                                      → {leases}: this peer's, all for root
//	map      {lease, iova?, length, offset, perm} + 1 memfd → {iova}
//	unmap    {lease, iova, length}               → {length}
//	dma      {lease, device, iova, length, write, data?} → {data?}
//
// Two lease modes. Mode "fds" (real hardware only) is the broker job of a
// libvirt: the agent binds the group to vfio-pci, opens /dev/iommu and each
// device's VFIO cdev, and sends them (Response.FDs names them in order) for
// QEMU's -object iommufd,id=i0,fd=N and -device vfio-pci,iommufd=i0,fd=M; the
// VMM binds, attaches and maps itself. Mode "broker" keeps the IOMMU in the
// agent: the client passes its memory as a memfd with map, and the agent maps
// it into the lease's address space (an emulated IOAS, or a real IOAS of
// agent/iommu/cdev) and runs dma through the device's engine where the backend
// has one (the emulated edu). The emulated backend has only broker leases.
//
// # SR-IOV virtual functions
//
// A VF is leased like any device (each sits in an iommu_group of its own
// behind an ACS port). An acquire of one VF may carry a VFConfig: the agent
// saves the VF's config, applies the requested attributes through the PF's
// netdev, then binds the VF to vfio-pci; the Response's VF lists each
// attribute's outcome, on success and on failure alike. An attribute the
// driver refuses fails the acquire only when it is in VFConfig.Required
// (code "refused"); then nothing the acquire did stays. Release, in every
// form (explicit, at disconnect, orphan, after a crash), puts the saved
// config back before the VF's driver.
package proto

import (
	"errors"
	"fmt"
)

// Version is the protocol version this package speaks. A change that an old
// peer would misread bumps it. Fields added since (acquire's vf, code
// refused) are not misread: a peer that does not know a field refuses the
// frame (code frame), and the agent sends them only to a client that asked.
const Version = 1

// Limits of one frame.
const (
	MaxFrame  = 64 << 10 // bytes of JSON
	MaxFDs    = 16       // fds per frame
	headerLen = 4
)

// Op names a request.
type Op string

// The ops of Version 1.
const (
	OpHello   Op = "hello"
	OpList    Op = "list"
	OpAcquire Op = "acquire"
	OpRelease Op = "release"
	OpStatus  Op = "status"
	OpMap     Op = "map"
	OpUnmap   Op = "unmap"
	OpDMA     Op = "dma"
)

// Lease modes.
const (
	ModeFDs    = "fds"    // the client gets /dev/iommu and the VFIO cdevs
	ModeBroker = "broker" // the agent keeps the IOMMU and maps on request
)

// Request is a client's frame. Fields not used by Op are left empty.
type Request struct {
	ID      uint64 `json:"id"`
	Op      Op     `json:"op"`
	Version int    `json:"version,omitempty"` // hello

	// acquire: exactly one of Device (a PCI address) and Group.
	Device string `json:"device,omitempty"`
	Group  *int   `json:"group,omitempty"`
	Mode   string `json:"mode,omitempty"`
	// Memlock asks the agent to raise the peer's RLIMIT_MEMLOCK to this many
	// bytes (guest RAM plus ROMs for a VMM), up to the policy's limit.
	Memlock uint64 `json:"memlock,omitempty"`
	// VF configures the SR-IOV VF being acquired (Device must be one).
	VF *VFConfig `json:"vf,omitempty"`

	Lease string `json:"lease,omitempty"` // release, map, unmap, dma

	// map: the memfd's [Offset, Offset+Length) at IOVA (chosen by the
	// agent unless Fixed). unmap: [IOVA, IOVA+Length). dma: Length bytes.
	IOVA   uint64 `json:"iova,omitempty"`
	Fixed  bool   `json:"fixed,omitempty"`
	Length uint64 `json:"length,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
	Perm   string `json:"perm,omitempty"` // "r", "w", "rw"

	// dma: Write makes the device write Data to memory at IOVA; otherwise
	// it reads Length bytes from IOVA and the Response carries them.
	Write bool   `json:"write,omitempty"`
	Data  []byte `json:"data,omitempty"`
}

// Response is the agent's answer to the Request with the same ID.
type Response struct {
	ID    uint64 `json:"id"`
	Error *Error `json:"error,omitempty"`

	Version int    `json:"version,omitempty"`
	Backend string `json:"backend,omitempty"` // hello: "iommufd", "emulated"
	UID     uint32 `json:"uid,omitempty"`     // hello: the peer as the agent sees it
	GID     uint32 `json:"gid,omitempty"`
	PID     int32  `json:"pid,omitempty"`

	Devices []Device `json:"devices,omitempty"`
	Groups  []Group  `json:"groups,omitempty"`
	Lease   *Lease   `json:"lease,omitempty"`
	Leases  []Lease  `json:"leases,omitempty"`
	// FDs names the fds that came with this frame, in order: "iommufd",
	// then "vfio:BDF" per device.
	FDs []string `json:"fds,omitempty"`
	// VF is what became of each attribute of an acquire's VFConfig, in
	// the order the agent applied them; also sent when the acquire failed.
	VF []VFResult `json:"vf,omitempty"`

	IOVA   uint64 `json:"iova,omitempty"`
	Length uint64 `json:"length,omitempty"`
	Data   []byte `json:"data,omitempty"`
}

// Device is a PCI function the agent can see.
type Device struct {
	BDF    string `json:"bdf"`
	Group  int    `json:"group"`
	Vendor uint16 `json:"vendor,omitempty"`
	Device uint16 `json:"device,omitempty"`
	Driver string `json:"driver,omitempty"`
	Lease  string `json:"lease,omitempty"`
}

// Group is an iommu_group and whether it may be handed out as it is now.
type Group struct {
	Number  int      `json:"number"`
	Devices []string `json:"devices"`
	Viable  bool     `json:"viable"`
	Reason  string   `json:"reason,omitempty"`
	Lease   string   `json:"lease,omitempty"`
}

// Lease is one client's hold on an iommu_group.
type Lease struct {
	ID      string   `json:"id"`
	Mode    string   `json:"mode"`
	Group   int      `json:"group"`
	Devices []string `json:"devices"`
	UID     uint32   `json:"uid"`
	PID     int32    `json:"pid"`
	// Orphan is set when the connection that took the lease is gone and
	// the lease lives on (re-adopted after a restart, or kept by policy).
	Orphan bool `json:"orphan,omitempty"`
}

// Code classifies an Error so clients need not parse messages.
type Code string

// Error codes.
const (
	CodeDenied      Code = "denied"       // policy refuses this peer
	CodeInvalid     Code = "invalid"      // malformed or inconsistent request
	CodeNotFound    Code = "not-found"    // no such device, group or lease
	CodeBusy        Code = "busy"         // leased, or still open
	CodeNotViable   Code = "not-viable"   // the group rule refuses it
	CodeUnsupported Code = "unsupported"  // not on this backend
	CodeFault       Code = "fault"        // the IOMMU blocked the DMA
	CodeVersion     Code = "version"      // hello missing or version mismatch
	CodeInternal    Code = "internal"     // the agent failed
	CodeFrame       Code = "frame"        // the frame itself was bad
	CodeNoSpace     Code = "no-space"     // memlock or IOVA space exhausted
	CodeExists      Code = "exists"       // the IOVA is taken
	CodeTooMany     Code = "too-many-fds" // wrong number of fds for the op
	CodeRefused     Code = "refused"      // the driver refused a required VF attribute
	// CodeLimit is a cap of the agent's policy (connections, maps, bytes
	// mapped): the client, or its uid, holds too much already. Other
	// clients are not affected; the message names the cap and its value.
	CodeLimit Code = "limit"
)

// Error is a failed request, as sent on the wire.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Is matches another *Error by Code, so errors.Is(err, proto.ErrDenied) works
// on what a client received.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code && t.Message == ""
}

// Sentinels for errors.Is on received errors.
var (
	ErrDenied      = &Error{Code: CodeDenied}
	ErrInvalid     = &Error{Code: CodeInvalid}
	ErrNotFound    = &Error{Code: CodeNotFound}
	ErrBusy        = &Error{Code: CodeBusy}
	ErrNotViable   = &Error{Code: CodeNotViable}
	ErrFault       = &Error{Code: CodeFault}
	ErrVersion     = &Error{Code: CodeVersion}
	ErrRefused     = &Error{Code: CodeRefused}
	ErrLimit       = &Error{Code: CodeLimit}
	ErrUnsupported = &Error{Code: CodeUnsupported}
	ErrNoSpace     = &Error{Code: CodeNoSpace}
	ErrExists      = &Error{Code: CodeExists}
	ErrInternal    = &Error{Code: CodeInternal}
)

// Frame errors of Conn.
var (
	ErrTooLarge  = errors.New("frame larger than MaxFrame")
	ErrTruncated = errors.New("control message truncated: too many fds")
	ErrMalformed = errors.New("malformed frame")
)

// VFConfig is the configuration an acquire gives an SR-IOV VF, set through
// its PF's netdev before the VF is bound: nil or empty fields stay as they
// are. Values are as `iommu-agent sriov set` takes them (MAC "52:54:00:..",
// State "auto", "enable" or "disable", rates in Mbit/s).
type VFConfig struct {
	MAC      string `json:"mac,omitempty"`
	VLAN     *int   `json:"vlan,omitempty"`
	QoS      *int   `json:"qos,omitempty"`
	SpoofChk *bool  `json:"spoofchk,omitempty"`
	Trust    *bool  `json:"trust,omitempty"`
	State    string `json:"state,omitempty"`
	MinRate  *int   `json:"min_rate,omitempty"`
	MaxRate  *int   `json:"max_rate,omitempty"`
	// Required names the attributes ("mac", "vlan", "qos", "spoofchk",
	// "trust", "state", "min_rate", "max_rate") without which the lease
	// is useless: if the driver refuses one, the acquire fails with
	// CodeRefused and the VF is put back as it was. Others are best
	// effort, reported in Response.VF.
	Required []string `json:"required,omitempty"`
}

// VFResult is one attribute of a VFConfig: what was asked, what the driver
// reads back, and its refusal (Errno is the driver's, when it gave one).
type VFResult struct {
	Attr  string `json:"attr"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Errno int    `json:"errno,omitempty"`
}
