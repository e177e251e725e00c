// Package emulated is an IOMMU in Go with the kernel's semantics: IOAS with
// areas and page tables, reserved regions, allowed IOVAs, kernel-chosen
// IOVAs, IOAS_COPY, memlock accounting, the iommu_group rule, dirty
// tracking and an edu-like DMA engine whose accesses go through the page
// tables; with the SMMUv3 model, nesting too: nesting-parent HWPTs, vIOMMU,
// vDEVICE, nested HWPTs whose stage-1 tables (ioctl/smmuv3's format) are
// walked through the IOAS, SMMUv3 invalidation commands and a vEVENTQ. It
// lets the agent and its tests run without an IOMMU, and it is held to the
// kernel's behaviour by the conformance suite and by the differential test
// against iommufd in the guest.
//
// The errnos are the kernel's, wrapped with iommu.Wrap like the kernel
// backends wrap theirs, per Flavour where the kernel's paths differ
// (hwtests/errno_test.go checks them against the real kernel). Every instance keeps
// its own state; instances meant to share a machine (group ownership) or a
// user (memlock accounting) are given the same *Machine or *Accounting.
package emulated

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
	"github.com/iommu-agent/iommu-agent/internal/latency"
)

// RLimitMode selects which counter pinned pages are charged to, as
// IOMMU_OPTION_RLIMIT_MODE does on iommufd.
type RLimitMode int

const (
	// PerUser charges the user's locked_vm, shared by all of the user's
	// processes (Options.User); the kernel's default.
	PerUser RLimitMode = iota
	// PerProcess charges the process's own counter (Options.Process),
	// what KubeVirt and libvirt select.
	PerProcess
)

// Model is the IOMMU an emulated backend stands for: what its devices
// report as hw info, where they reserve their interrupt window, and
// whether they can nest.
type Model int

const (
	// VTd is QEMU's intel-iommu (x-scalable-mode off) under Debian's
	// 6.12: paging HWPTs, but no nesting parent (EOPNOTSUPP: the ecap
	// has no NEST) and no vIOMMU ioctl (6.13's), as
	// hwtests/nesting_test.go pins.
	VTd Model = iota
	// SMMUv3 is QEMU's smmuv3 under the own 7.3 kernel with an IORT
	// declaring CANWBS: ARM_SMMUV3 hw info, nesting parents, vIOMMU,
	// vDEVICE, nested HWPTs whose stage 1 is walked over the IOAS, SMMUv3
	// invalidation commands and vEVENTQ event records.
	SMMUv3
)

func (m Model) String() string {
	switch m {
	case VTd:
		return "intel-vtd"
	case SMMUv3:
		return "arm-smmuv3"
	}
	return fmt.Sprintf("Model(%d)", int(m))
}

// Options configures a Backend. The zero value is an iommufd backend on a
// machine without devices, with unlimited memlock, behind a VT-d.
type Options struct {
	Flavour iommu.Flavour // IOMMUFD when empty
	// IOMMU is the model; VTd when zero.
	IOMMU Model
	// Devices are the machine's PCI functions with their groups. Ignored
	// when Machine is set.
	Devices []iommu.Device
	// Machine is shared by instances that model one host, so a group
	// owned by one instance is refused to the others.
	Machine *Machine
	// MemlockLimit is RLIMIT_MEMLOCK in bytes; 0 is unlimited.
	MemlockLimit uint64
	RLimitMode   RLimitMode
	// User and Process are the counters pins are charged to; nil gives
	// the instance a counter of its own. Type1v2 always charges Process
	// (vfio_lock_acct charges the mm).
	User, Process *Accounting
	// NoDirtyTracking gives the iommufd flavour what the kernel gives an
	// automatic HWPT, and QEMU's VT-d: no dirty ops, so dirty tracking
	// is EOPNOTSUPP. The differential test against the guest sets it.
	NoDirtyTracking bool
	// MSIWindow is the interrupt window every attached device reserves
	// (the "msi" line of its group's reserved_regions). The zero value is
	// the model's: x86's 0xfee00000-0xfeefffff, which VT-d and AMD-Vi
	// reserve; an SMMUv3 reserves its software MSI window instead (Linux
	// puts it at 0x8000000-0x80fffff).
	MSIWindow iommu.Range
	// Reserved are further regions every attached device reserves besides
	// the interrupt window (the other lines of its group's
	// reserved_regions): AMD-Vi reserves the HyperTransport range
	// 0xfd00000000-0xffffffffff.
	Reserved []iommu.Range
	// ApertureLast is the last IOVA a domain translates; the zero value is
	// the 48-bit aperture of VT-d's and SMMUv3's four-level tables. An
	// AMD-Vi domain (the v1 page table, up to six levels) translates all
	// 64 bits, so a differential run against one sets it to 1<<64-1.
	ApertureLast iommu.IOVA
	// Latency, when set, observes every Map and Unmap: their duration
	// and the bytes they mapped or unmapped (0 on failure), as
	// latency.IOASMap/IOASUnmap on iommufd and Type1Map/Type1Unmap on
	// type1v2 and compat, under this process's pid and comm. This is how
	// `iommu-agent trace --emulated` and the metrics work without a kernel.
	Latency *latency.Recorder
}

// Backend is one open /dev/iommu (or VFIO container fd) of the emulated
// IOMMU. It implements iommu.Backend.
type Backend struct {
	mu      sync.RWMutex
	flavour iommu.Flavour
	model   Model
	machine *Machine
	limit   uint64
	acct    *Accounting // where pins are charged: user or proc
	user    *Accounting
	proc    *Accounting
	noDirty bool
	msi     resv   // the interrupt window, owner unset
	devResv []resv // Options.Reserved, owner unset
	// aperture is the last IOVA a domain translates (Options.ApertureLast).
	aperture uint64
	pool     nodePool
	// freed areas and pages, so map and unmap do not allocate
	areaPool  []*area
	pagesPool []*pages

	closed  bool
	nextID  uint32
	objects map[uint32]string // live object IDs, for leak checks
	spaces  []*AddressSpace
	bound   map[string]*Attachment // BDF → attachment
	pinned  uint64                 // bytes this instance charged
	faults  []Fault

	failArmed bool
	failLeft  int

	// Options.Latency and what it records under; lat nil costs Map and
	// Unmap one comparison.
	lat              *latency.Recorder
	latMap, latUnmap latency.Op
	pid              uint32
	comm             string
}

// New opens an emulated IOMMU.
func New(opts Options) (*Backend, error) {
	f := opts.Flavour
	if f == "" {
		f = iommu.IOMMUFD
	}
	switch f {
	case iommu.IOMMUFD, iommu.Type1v2, iommu.Compat:
	default:
		return nil, errnoErr("new emulated backend: flavour "+string(f), syscall.EINVAL)
	}
	if opts.IOMMU != VTd && opts.IOMMU != SMMUv3 {
		return nil, errnoErr("new emulated backend: "+opts.IOMMU.String(), syscall.EINVAL)
	}
	m := opts.Machine
	if m == nil {
		var err error
		if m, err = NewMachine(opts.Devices...); err != nil {
			return nil, err
		}
	}
	user, proc := opts.User, opts.Process
	if user == nil {
		user = &Accounting{}
	}
	if proc == nil {
		proc = &Accounting{}
	}
	acct := user
	if opts.RLimitMode == PerProcess || f == iommu.Type1v2 {
		acct = proc
	}
	b := &Backend{
		flavour:  f,
		model:    opts.IOMMU,
		machine:  m,
		limit:    opts.MemlockLimit,
		acct:     acct,
		user:     user,
		proc:     proc,
		noDirty:  opts.NoDirtyTracking,
		msi:      resv{start: msiStart, last: msiLast},
		aperture: apertureEnd,
		objects:  make(map[uint32]string),
		bound:    make(map[string]*Attachment),
	}
	if opts.IOMMU == SMMUv3 {
		b.msi = resv{start: smmuMSIStart, last: smmuMSILast}
	}
	if w := opts.MSIWindow; w != (iommu.Range{}) {
		if w.Last < w.Start {
			return nil, errnoErr(fmt.Sprintf("new emulated backend: MSI window %v", w), syscall.EINVAL)
		}
		b.msi = resv{start: uint64(w.Start), last: uint64(w.Last)}
	}
	for _, r := range opts.Reserved {
		if r.Last < r.Start {
			return nil, errnoErr(fmt.Sprintf("new emulated backend: reserved region %v", r), syscall.EINVAL)
		}
		b.devResv = append(b.devResv, resv{start: uint64(r.Start), last: uint64(r.Last)})
	}
	if opts.ApertureLast != 0 {
		if opts.ApertureLast < pageSize-1 {
			return nil, errnoErr(fmt.Sprintf("new emulated backend: aperture ending at %#x", opts.ApertureLast), syscall.EINVAL)
		}
		b.aperture = uint64(opts.ApertureLast)
	}
	if opts.Latency != nil {
		b.lat = opts.Latency
		b.latMap, b.latUnmap = latency.IOASMap, latency.IOASUnmap
		if f != iommu.IOMMUFD {
			b.latMap, b.latUnmap = latency.Type1Map, latency.Type1Unmap
		}
		b.pid, b.comm = uint32(os.Getpid()), comm()
	}
	return b, nil
}

// comm is the process name as the kernel reports it, so emulated keys
// look like the tracer's.
func comm() string {
	if c, err := os.ReadFile("/proc/self/comm"); err == nil {
		return strings.TrimSuffix(string(c), "\n")
	}
	name := filepath.Base(os.Args[0])
	if len(name) > 15 { // TASK_COMM_LEN - 1
		name = name[:15]
	}
	return name
}

// Flavour implements iommu.Backend.
func (b *Backend) Flavour() iommu.Flavour { return b.flavour }

// Pinned returns the bytes this instance has charged against the memlock
// limit: pages pinned because a domain maps them.
func (b *Backend) Pinned() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pinned
}

// Objects returns the number of live object IDs (IOAS, HWPT, device), what
// the kernel would keep in its xarray.
func (b *Backend) Objects() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.objects)
}

// TableBytes is the memory the page tables of all address spaces hold,
// for comparing with the kernel's (4 KiB per table level).
func (b *Backend) TableBytes() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return uint64(b.pool.live) * nodeBytes
}

// FailNth makes the n-th internal allocation or map step from now fail
// with ENOMEM, like /proc/self/task/<tid>/fail-nth; n <= 0 disarms it.
func (b *Backend) FailNth(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failArmed, b.failLeft = n > 0, n
}

// FailNthLeft reads the counter back as the kernel's fail-nth does: 0 once
// the failure was injected, the steps still to go otherwise.
func (b *Backend) FailNthLeft() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failLeft
}

// step is one fail-Nth site: an allocation or a page-table update.
func (b *Backend) step(what string) error {
	if !b.failArmed {
		return nil
	}
	b.failLeft--
	if b.failLeft == 0 {
		b.failArmed = false
		return errnoErr(what+" (fail-nth)", syscall.ENOMEM)
	}
	return nil
}

func (b *Backend) newID(kind string) (uint32, error) {
	if err := b.step("allocate " + kind + " id"); err != nil {
		return 0, err
	}
	b.nextID++
	b.objects[b.nextID] = kind
	return b.nextID, nil
}

// NewAddressSpace implements iommu.Backend: IOMMU_IOAS_ALLOC on iommufd, a
// container on type1 and compat.
func (b *Backend) NewAddressSpace(ctx context.Context) (iommu.AddressSpace, error) {
	as, err := b.NewIOAS(ctx)
	if err != nil {
		return nil, err
	}
	if b.flavour != iommu.IOMMUFD {
		return &Container{as}, nil
	}
	return as, nil
}

// Container is the address space the type1v2 and compat flavours hand
// out: the legacy API has neither IOAS_COPY nor ALLOW_IOVAS, so, like the
// type1 backend, it does not offer iommu.Copier or iommu.IOVAAllower.
type Container struct{ as *AddressSpace }

var (
	_ iommu.AddressSpace = (*Container)(nil)
	_ iommu.DirtyTracker = (*Container)(nil)
)

// Space is the emulator's view of the container, for tests (Translate,
// Mappings).
func (c *Container) Space() *AddressSpace { return c.as }

// Attach implements iommu.AddressSpace.
func (c *Container) Attach(ctx context.Context, dev iommu.Device) (iommu.Attachment, error) {
	return c.as.Attach(ctx, dev)
}

// Map implements iommu.AddressSpace.
func (c *Container) Map(ctx context.Context, m iommu.Mapping) (iommu.IOVA, error) {
	return c.as.Map(ctx, m)
}

// Unmap implements iommu.AddressSpace.
func (c *Container) Unmap(ctx context.Context, iova iommu.IOVA, length uint64) (uint64, error) {
	return c.as.Unmap(ctx, iova, length)
}

// Ranges implements iommu.AddressSpace.
func (c *Container) Ranges(ctx context.Context) ([]iommu.Range, uint64, error) {
	return c.as.Ranges(ctx)
}

// Close implements iommu.AddressSpace.
func (c *Container) Close() error { return c.as.Close() }

// SetDirtyTracking implements iommu.DirtyTracker (VFIO_IOMMU_DIRTY_PAGES).
func (c *Container) SetDirtyTracking(ctx context.Context, enable bool) error {
	return c.as.SetDirtyTracking(ctx, enable)
}

// ReadDirty implements iommu.DirtyTracker.
func (c *Container) ReadDirty(ctx context.Context, iova iommu.IOVA, length, pageSize uint64, keep bool) ([]uint64, error) {
	return c.as.ReadDirty(ctx, iova, length, pageSize, keep)
}

// NewIOAS is NewAddressSpace returning the concrete type.
func (b *Backend) NewIOAS(ctx context.Context) (*AddressSpace, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, closedErr("new address space")
	}
	id, err := b.newID("ioas")
	if err != nil {
		return nil, fmt.Errorf("new address space: %w", err)
	}
	as := &AddressSpace{b: b, id: id, alignment: 1}
	as.pt = newPageTable(&b.pool, b.aperture)
	if b.flavour != iommu.IOMMUFD {
		// A type1 container only maps once SET_IOMMU gave it a domain;
		// the emulated one has the VT-d domain from the start.
		as.domain, as.ndomains = true, 1
		as.alignment = pageSize
		as.reserved = append(as.reserved, b.msi)
		as.reserved = append(as.reserved, b.devResv...)
		if r, ok := b.beyondAperture(); ok {
			as.reserved = append(as.reserved, r)
		}
		sortResv(as.reserved)
	}
	b.spaces = append(b.spaces, as)
	return as, nil
}

// beyondAperture is the range above the aperture a domain reserves, if
// the aperture ends before the last IOVA.
func (b *Backend) beyondAperture() (resv, bool) {
	if b.aperture == maxU64 {
		return resv{}, false
	}
	return resv{start: b.aperture + 1, last: maxU64}, true
}

// Close releases every address space, attachment, pin and group claim.
// Idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	for _, as := range b.spaces {
		as.teardown()
	}
	b.spaces = nil
	b.closed = true
	return nil
}

// SetRLimitMode is IOMMU_OPTION_RLIMIT_MODE SET: only on
// an iommufd with no objects yet (EBUSY), mode 0 or 1 (EINVAL). The
// emulator does not model CAP_SYS_RESOURCE.
func (b *Backend) SetRLimitMode(mode RLimitMode) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return closedErr("set rlimit mode")
	case b.flavour == iommu.Type1v2:
		return errnoErr("set rlimit mode on type1v2", syscall.ENOTTY)
	case mode != PerUser && mode != PerProcess:
		return errnoErr(fmt.Sprintf("set rlimit mode %d", mode), syscall.EINVAL)
	case len(b.objects) > 0:
		return errnoErr("set rlimit mode: the iommufd has objects", syscall.EBUSY)
	}
	b.acct = b.user
	if mode == PerProcess {
		b.acct = b.proc
	}
	return nil
}

// SetMemlockLimit changes RLIMIT_MEMLOCK for later pins, as
// IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT lets the selftests do; 0 is
// unlimited. Pins already taken stay.
func (b *Backend) SetMemlockLimit(bytes uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limit = bytes
}

// Faults returns the DMA faults recorded so far, oldest first.
func (b *Backend) Faults() []Fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Fault(nil), b.faults...)
}

// charge pins n bytes against the memlock limit.
func (b *Backend) charge(n uint64) error {
	if err := b.acct.charge(n, b.limit); err != nil {
		return err
	}
	b.pinned += n
	return nil
}

func (b *Backend) uncharge(n uint64) {
	b.acct.uncharge(n)
	b.pinned -= n
}

// Accounting is a memlock counter: a user's locked_vm, shared by every
// backend of that user, or a process's. Share one between instances to
// model one user or one process.
type Accounting struct {
	mu     sync.Mutex
	pinned uint64
}

// Pinned returns the bytes charged.
func (a *Accounting) Pinned() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pinned
}

func (a *Accounting) charge(n, limit uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if limit != 0 && (a.pinned+n > limit || a.pinned+n < a.pinned) {
		return errnoErr("pin pages: RLIMIT_MEMLOCK", syscall.ENOMEM)
	}
	a.pinned += n
	return nil
}

func (a *Accounting) uncharge(n uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pinned -= n
}

// Machine is the host the devices live on: it knows each function's group
// and which backend instance owns each group's DMA.
type Machine struct {
	mu      sync.Mutex
	devices map[string]iommu.Device
	owner   map[int]*Backend
	drivers map[string]string // BDF → kernel driver using the DMA API
}

// SetKernelDriver binds (driver non-empty) or unbinds a kernel driver that
// uses the DMA API, such as snd_hda_intel, to bdf: while one is bound, no
// backend can claim the device's group (EPERM), and the
// probe fails with EBUSY while a backend owns the group.
// VFIO drivers, pci-stub and pcieport set driver_managed_dma and are not
// modelled as kernel drivers here.
func (m *Machine) SetKernelDriver(bdf, driver string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[bdf]
	if !ok {
		return errnoErr("bind driver: no device "+bdf, syscall.ENODEV)
	}
	if driver == "" {
		delete(m.drivers, bdf)
		return nil
	}
	if m.owner[d.Group] != nil {
		return errnoErr(fmt.Sprintf("probe %s on %s: group %d is owned by user space", driver, bdf, d.Group), syscall.EBUSY)
	}
	m.drivers[bdf] = driver
	return nil
}

// NewMachine returns a machine with devs.
func NewMachine(devs ...iommu.Device) (*Machine, error) {
	m := &Machine{devices: make(map[string]iommu.Device), owner: make(map[int]*Backend), drivers: make(map[string]string)}
	for _, d := range devs {
		if d.BDF == "" {
			return nil, errnoErr("new machine: device without BDF", syscall.EINVAL)
		}
		if _, dup := m.devices[d.BDF]; dup {
			return nil, errnoErr("new machine: device "+d.BDF+" twice", syscall.EINVAL)
		}
		m.devices[d.BDF] = d
	}
	return m, nil
}

// claim takes DMA ownership of group g for b.
func (m *Machine) claim(g int, b *Backend) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for bdf, drv := range m.drivers {
		if m.devices[bdf].Group == g {
			// A kernel driver holds the group's default domain
			// (owner_cnt > 0): iommu_*_claim_dma_owner says EPERM.
			return errnoErr(fmt.Sprintf("claim group %d: %s is bound to %s", g, bdf, drv), syscall.EPERM)
		}
	}
	if o := m.owner[g]; o != nil && o != b {
		// iommu_device_claim_dma_owner refuses another owner with EPERM;
		// the legacy group fd is single-open (EBUSY).
		if b.flavour == iommu.IOMMUFD {
			return errnoErr(fmt.Sprintf("claim group %d: owned by another iommufd", g), syscall.EPERM)
		}
		return errnoErr(fmt.Sprintf("open group %d: open elsewhere", g), syscall.EBUSY)
	}
	m.owner[g] = b
	return nil
}

func (m *Machine) release(g int, b *Backend) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owner[g] == b {
		delete(m.owner, g)
	}
}

func (m *Machine) device(bdf string) (iommu.Device, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[bdf]
	return d, ok
}

// errnoErr wraps e the way the kernel backends do: sentinel and errno.
func errnoErr(what string, e syscall.Errno) error {
	return iommu.Wrap(fmt.Errorf("%s: %w", what, e))
}

func closedErr(what string) error {
	return fmt.Errorf("%s: %w: %w", what, iommu.ErrClosed, syscall.EBADF)
}

// addrOf is the host address of p[0]: the PA the IOMMU would map.
func addrOf(p []byte) uint64 {
	if len(p) == 0 {
		return 0
	}
	return uint64(reflect.ValueOf(&p[0]).Pointer())
}
