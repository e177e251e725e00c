// SPDX-License-Identifier: GPL-2.0
//
// dmatrace: in-kernel latency histograms of DMA map/unmap operations.
//
// Every traced function has an entry program that stores a timestamp in
// the thread's slot (an array indexed by thread id), one per role, and an
// exit program that turns it into a log2 bucket of the histogram of (op,
// tgid), with the comm, and adds the bytes the call mapped or unmapped on
// success. Calls at least slow_ns long also go to the slow_events ring
// buffer. User space only polls the maps: nothing is sent per event on
// the fast path. Each role comes as fentry/fexit and as
// kprobe/kretprobe; the Go side loads one of the two sets.
//
// No libbpf headers: the few uapi facts needed (helper numbers, map types,
// BTF map definition convention, pt_regs layout) are written out in
// dmatrace.h, so the object depends only on the pinned clang.

#include "dmatrace.h"

char LICENSE[] SEC("license") = "GPL";

// Operations: the index of each latency.Op in latency.Ops().
enum op {
	OP_IOAS_MAP,
	OP_IOAS_UNMAP,
	OP_PIN_PAGES,
	OP_TYPE1_MAP,
	OP_TYPE1_UNMAP,
	OP_IOMMU_MAP,
	OP_IOMMU_UNMAP,
	OP_IOTLB_SYNC,
	N_OPS, // a power of two: hist_of masks with N_OPS - 1
};

// Roles: one per traced function, so nested calls of one thread (an
// iommu_map inside an ioas_map) keep their own start times.
enum role {
	R_IOAS_MAP,
	R_IOAS_UNMAP,
	R_PIN,
	R_TYPE1,
	R_COMPAT,
	R_IOMMU_MAP,
	R_IOMMU_UNMAP,
	R_IOTLB_SYNC,
	R_PIN_USER,
	R_PIN_TYPE1,
	R_IOMMU_UNMAP_FAST,
	N_ROLES,
};

#define VFIO_IOMMU_MAP_DMA 0x3b71
#define VFIO_IOMMU_UNMAP_DMA 0x3b72
#define BUCKETS 64
#define HISTS 4096
// Page counts become bytes with 4 KiB pages: x86-64, and arm64's default.
#define PAGE_SHIFT 12

struct start {
	__u64 ts; // 0: no call pending
	__u64 arg; // what the kretprobe needs: a pointer or a size
	__u32 op;
	__u32 pad;
};

// A thread's slot: its open calls, one per role, and the histogram slots
// of its process.
struct thread {
	__u32 tid; // the thread the open calls belong to
	__u32 pad;
	struct start role[N_ROLES];
	// Per op, (tgid << 32 | hists slot + 1) of the process last seen
	// here; 0: none. One 64-bit store makes it whole, so a colliding
	// thread never sees half of another's, and a pair is true for every
	// thread of that tgid.
	__u64 hist[N_OPS];
};

struct hist_key {
	__u32 op;
	__u32 pid; // tgid
};

// The calls a histogram holds are the sum of its buckets, counted by user
// space: a count beside them cost an atomic add per call.
struct hist {
	__u64 counts[BUCKETS]; // bucket i: [2^i, 2^(i+1)) ns, bucket 0 also 0
	__u64 sum_ns;
	__u64 bytes;
	char comm[16]; // the process's comm when its first operation was seen
};

struct event {
	__u32 op;
	__u32 pid;
	char comm[16];
	__u64 ns;
	__u64 bytes;
};

// Keeps struct event in the BTF for bpf2go's Go type: the ring buffer
// itself has no value type.
const struct event *unused_event __attribute__((unused));

// The threads' slots, indexed by thread id modulo THREADS. An array, not
// task-local storage: the verifier inlines an array lookup into a bounds
// check and an add, where bpf_task_storage_get is a helper call that
// takes a per-CPU lock and walks the task's storage list. On Debian's
// 6.12 (x86-64, counted under QEMU -icount) the two lookups were 163 of
// the 548 instructions the ioctl-level programs added to a 4 KiB
// IOMMU_IOAS_MAP over an empty fentry/fexit pair. A per-CPU slot would be
// cheaper still, but the traced functions sleep (pinning, allocation): the
// exit may run on another CPU, and a slot left behind there would pair a
// later exit with a stale start. Threads whose ids collide modulo THREADS
// while both are inside a traced call lose that call: the later entry
// takes the slot, the earlier thread's exit finds another tid and counts
// it in start_lost.
#define THREADS 1024
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, THREADS);
	__type(key, __u32);
	__type(value, struct thread);
} threads SEC(".maps");

// The histograms, in an array: each thread slot caches its process's
// slots, so an exit indexes the array instead of hashing a key.
// hist_slots gives each (op, tgid) its slot, for a process's first call of
// an op and for user space; hist_next is the next free slot.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HISTS);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HISTS);
	__type(key, struct hist_key);
	__type(value, __u32);
} hist_slots SEC(".maps");

__u64 hist_next = 0; // 64 bits: clang's BPF v1 fetch-adds only those

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} slow_events SEC(".maps");

// Set by the loader: trace only this tgid (0: all), and the threshold of
// slow_events (all ones: none). Read-only after load, so the verifier
// knows them: with no filter, the filter's compare is not even emitted.
volatile const __u32 filter_tgid = 0;
volatile const __u64 slow_ns = ~0ULL;

// Losses, read by user space: hists full, ring buffer full, a call whose
// thread slot another thread took meanwhile.
__u64 hist_dropped = 0;
__u64 slow_dropped = 0;
__u64 start_lost = 0;

// Only the fields needed, relocated against the iommufd module's BTF. In
// fentry and fexit the traced function's struct arguments are read
// directly, without a probe-read helper.
struct iommufd_ucmd {
	void *cmd;
} __attribute__((preserve_access_index));

// The pages pfn_reader_user_pin pinned this call: [upages_start, upages_end).
struct pfn_reader_user {
	unsigned long upages_start;
	unsigned long upages_end;
} __attribute__((preserve_access_index));

// floor(log2 v), 0 for 0: BPF has no count-leading-zeros, so a binary
// search, six compares and shifts by constants. (A branchless form that
// shifts by computed amounts is fewer BPF instructions but more x86 ones:
// the JIT moves each variable shift's count through rcx.)
static __always_inline __u32 ilog2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

// Relocated against the kernel's BTF.
struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

// current_ids is bpf_get_current_pid_tgid's (tgid << 32 | tid) from two
// loads through the task pointer, which comes from a cheaper helper: 15
// fewer instructions an entry+exit on x86-64.
static __always_inline __u64 current_ids(void)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return (__u64)(__u32)t->tgid << 32 | (__u32)t->pid;
}

// slot_of is the slot of the thread id (the low half of pid_tgid): an
// inlined array lookup, never null for an index masked into the array,
// but the verifier wants the check.
static __always_inline struct thread *slot_of(__u64 id)
{
	__u32 k = (__u32)id & (THREADS - 1);

	return bpf_map_lookup_elem(&threads, &k);
}

// enter opens the thread's call of role. Its cost, in order: the thread
// and process ids (the slot's index and, when filtering, the filter), the
// inlined slot lookup, three stores, and the clock helper last, so the
// time measured starts as late as it can.
static __always_inline int enter(__u32 role, __u32 op, __u64 arg)
{
	__u64 id = current_ids();

	if (filter_tgid && (__u32)(id >> 32) != filter_tgid)
		return 0;
	struct thread *th = slot_of(id);
	if (!th)
		return 0;
	th->tid = (__u32)id;
	struct start *p = &th->role[role];
	p->arg = arg;
	p->op = op;
	p->ts = bpf_ktime_get_ns();
	return 0;
}

// enter_ts is enter for an fentry whose fexit is given the arguments
// again: the op and the argument need no store, only the thread and the
// time.
static __always_inline int enter_ts(__u32 role)
{
	__u64 id = current_ids();

	if (filter_tgid && (__u32)(id >> 32) != filter_tgid)
		return 0;
	struct thread *th = slot_of(id);
	if (!th)
		return 0;
	th->tid = (__u32)id;
	th->role[role].ts = bpf_ktime_get_ns();
	return 0;
}

// take closes the thread's call of role: its slot, with *ns the time since
// the start and *id the thread's pid_tgid, or null if no call of this
// thread was open (attached mid-call, another process under a filter, or
// the slot taken by a colliding thread). The clock is read first, so the
// program's own work is not in the time.
static __always_inline struct thread *take(__u32 role, __u64 *ns, __u64 *id)
{
	__u64 now = bpf_ktime_get_ns();

	*id = current_ids();
	struct thread *th = slot_of(*id);
	if (!th)
		return 0;
	struct start *p = &th->role[role];
	if (!p->ts)
		return 0;
	if (th->tid != (__u32)*id) {
		if (!filter_tgid || (__u32)(*id >> 32) == filter_tgid)
			__sync_fetch_and_add(&start_lost, 1);
		return 0;
	}
	*ns = now - p->ts;
	p->ts = 0;
	return th;
}

// hist_of finds the histogram of (op, tgid): from the slot's cache (one
// compare and an inlined array lookup), else from hist_slots, else in a
// new slot.
static __always_inline struct hist *hist_of(struct thread *th, __u32 tgid, __u32 op)
{
	__u64 *cached = &th->hist[op & (N_OPS - 1)];
	__u64 c = *cached;
	__u32 k;

	if (c >> 32 == tgid && (__u32)c) {
		k = (__u32)c - 1;
		return bpf_map_lookup_elem(&hists, &k);
	}
	struct hist_key hk = {.op = op, .pid = tgid};
	__u32 *sp = bpf_map_lookup_elem(&hist_slots, &hk);
	if (!sp) {
		// Checked first so a full array stops hist_next from growing.
		if (hist_next >= HISTS)
			return 0;
		__u64 next = __sync_fetch_and_add(&hist_next, 1);
		if (next >= HISTS)
			return 0;
		k = next;
		struct hist *h = bpf_map_lookup_elem(&hists, &k);
		if (!h)
			return 0;
		bpf_get_current_comm(h->comm, sizeof(h->comm));
		if (bpf_map_update_elem(&hist_slots, &hk, &k, BPF_NOEXIST) == 0) {
			*cached = (__u64)tgid << 32 | (k + 1);
			return h;
		}
		// Another thread of the process won the race: k stays unused.
		sp = bpf_map_lookup_elem(&hist_slots, &hk);
		if (!sp)
			return 0;
	}
	k = *sp;
	*cached = (__u64)tgid << 32 | (k + 1);
	return bpf_map_lookup_elem(&hists, &k);
}

// record adds one call: three atomic adds (its bucket, the time, the
// bytes; the count is the buckets' sum), and a compare against slow_ns.
static __always_inline void record(struct thread *th, __u64 id, __u32 op, __u64 ns, __u64 bytes)
{
	__u32 tgid = id >> 32;
	struct hist *h = hist_of(th, tgid, op);

	if (!h) {
		__sync_fetch_and_add(&hist_dropped, 1);
		return;
	}
	__sync_fetch_and_add(&h->counts[ilog2(ns) & (BUCKETS - 1)], 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
	__sync_fetch_and_add(&h->bytes, bytes);

	if (ns < slow_ns)
		return;
	struct event *e = bpf_ringbuf_reserve(&slow_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&slow_dropped, 1);
		return;
	}
	e->op = op;
	e->pid = tgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->ns = ns;
	e->bytes = bytes;
	bpf_ringbuf_submit(e, 0);
}

// The length of an IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP, read from the
// kernel's copy of the uapi struct (struct iommu_ioas_map.length at 24,
// struct iommu_ioas_unmap.length at 16; unmap writes back what it unmapped).
static __always_inline __u64 ioas_length(__u64 ucmd, __u32 off)
{
	void *cmd = 0;
	__u64 len = 0;

	bpf_probe_read_kernel(&cmd, sizeof(cmd), &((struct iommufd_ucmd *)ucmd)->cmd);
	if (cmd)
		bpf_probe_read_kernel(&len, sizeof(len), cmd + off);
	return len;
}

// The size of a VFIO_IOMMU_MAP_DMA / UNMAP_DMA, from the caller's struct
// (vfio_iommu_type1_dma_map.size at 24, vfio_iommu_type1_dma_unmap.size at
// 16; unmap writes back what it unmapped before returning).
static __always_inline __u64 type1_size(__u64 uarg, __u32 op)
{
	__u64 size = 0;

	bpf_probe_read_user(&size, sizeof(size), (void *)uarg + (op == OP_TYPE1_MAP ? 24 : 16));
	return size;
}

static __always_inline int type1_enter(__u32 role, __u32 cmd, __u64 arg)
{
	if (cmd == VFIO_IOMMU_MAP_DMA)
		return enter(role, OP_TYPE1_MAP, arg);
	if (cmd == VFIO_IOMMU_UNMAP_DMA)
		return enter(role, OP_TYPE1_UNMAP, arg);
	return 0;
}

// Exits. The kretprobes read what the entry saved with probe-read helpers;
// the fexits get the arguments again, typed, and read them directly.

// The bytes pfn_reader_user_pin pinned, 4 KiB pages.
static __always_inline __u64 pinned(unsigned long start, unsigned long end)
{
	return end > start ? (__u64)(end - start) << PAGE_SHIFT : 0;
}

static __always_inline int pin_user_kretprobe(int ret)
{
	unsigned long start = 0, end = 0;
	__u64 ns, id;
	struct thread *th = take(R_PIN_USER, &ns, &id);

	if (!th)
		return 0;
	struct start *p = &th->role[R_PIN_USER];
	if (ret == 0) {
		struct pfn_reader_user *u = (void *)p->arg;

		bpf_probe_read_kernel(&start, sizeof(start), &u->upages_start);
		bpf_probe_read_kernel(&end, sizeof(end), &u->upages_end);
	}
	record(th, id, p->op, ns, pinned(start, end));
	return 0;
}

static __always_inline int pin_user_fexit(struct pfn_reader_user *u, int ret)
{
	__u64 ns, id;
	struct thread *th = take(R_PIN_USER, &ns, &id);

	if (!th)
		return 0;
	struct start *p = &th->role[R_PIN_USER];
	record(th, id, p->op, ns, ret == 0 ? pinned(u->upages_start, u->upages_end) : 0);
	return 0;
}

static __always_inline int ioas_kretprobe(__u32 role, __u32 off, long ret)
{
	__u64 ns, id;
	struct thread *th = take(role, &ns, &id);

	if (!th)
		return 0;
	struct start *p = &th->role[role];
	record(th, id, p->op, ns, ret == 0 ? ioas_length(p->arg, off) : 0);
	return 0;
}

// ucmd->cmd is a void *: only the length behind it needs the helper (a
// probe-read, the one helper an fexit calls besides the clock and the
// ids: what the bytes column costs).
static __always_inline int ioas_fexit(__u32 role, __u32 op, __u32 off, struct iommufd_ucmd *ucmd, int ret)
{
	__u64 ns, id, len = 0;
	struct thread *th = take(role, &ns, &id);

	if (!th)
		return 0;
	if (ret == 0) {
		void *cmd = ucmd->cmd;

		if (cmd)
			bpf_probe_read_kernel(&len, sizeof(len), cmd + off);
	}
	record(th, id, op, ns, len);
	return 0;
}

// The type1 fentry opens only MAP_DMA and UNMAP_DMA calls, and the fexit
// looks at no other: the container's other ioctls cost two compares.
static __always_inline int type1_fentry(__u32 role, __u32 cmd)
{
	if (cmd != VFIO_IOMMU_MAP_DMA && cmd != VFIO_IOMMU_UNMAP_DMA)
		return 0;
	return enter_ts(role);
}

static __always_inline int type1_fexit(__u32 role, __u32 cmd, __u64 uarg, long ret)
{
	__u64 ns, id;

	if (cmd != VFIO_IOMMU_MAP_DMA && cmd != VFIO_IOMMU_UNMAP_DMA)
		return 0;
	__u32 op = cmd == VFIO_IOMMU_MAP_DMA ? OP_TYPE1_MAP : OP_TYPE1_UNMAP;
	struct thread *th = take(role, &ns, &id);

	if (!th)
		return 0;
	record(th, id, op, ns, ret == 0 ? type1_size(uarg, op) : 0);
	return 0;
}

static __always_inline int sized_exit(__u32 role, long ret)
{
	__u64 ns, id;
	struct thread *th = take(role, &ns, &id);

	if (!th)
		return 0;
	struct start *p = &th->role[role];
	record(th, id, p->op, ns, ret == 0 ? p->arg : 0);
	return 0;
}

static __always_inline int type1_exit(__u32 role, long ret)
{
	__u64 ns, id;
	struct thread *th = take(role, &ns, &id);

	if (!th)
		return 0;
	struct start *p = &th->role[role];
	record(th, id, p->op, ns, ret == 0 ? type1_size(p->arg, p->op) : 0);
	return 0;
}

static __always_inline int bytes_exit(__u32 role, __u64 bytes)
{
	__u64 ns, id;
	struct thread *th = take(role, &ns, &id);

	if (!th)
		return 0;
	struct start *p = &th->role[role];
	record(th, id, p->op, ns, bytes);
	return 0;
}

// vfio_pin_pages_remote returns the pages pinned, or an errno.
static __always_inline int pin_type1_exit(long ret)
{
	return bytes_exit(R_PIN_TYPE1, ret > 0 ? (__u64)ret << PAGE_SHIFT : 0);
}

// fentry/fexit: ctx holds the arguments as u64, then the return value.
// The section names are the default targets; the loader may change them.

SEC("fentry/iommufd_ioas_map")
int fentry_ioas_map(__u64 *ctx) { return enter_ts(R_IOAS_MAP); }
SEC("fexit/iommufd_ioas_map")
int fexit_ioas_map(__u64 *ctx) { return ioas_fexit(R_IOAS_MAP, OP_IOAS_MAP, 24, (void *)ctx[0], (int)ctx[1]); }

SEC("fentry/iommufd_ioas_unmap")
int fentry_ioas_unmap(__u64 *ctx) { return enter_ts(R_IOAS_UNMAP); }
SEC("fexit/iommufd_ioas_unmap")
int fexit_ioas_unmap(__u64 *ctx) { return ioas_fexit(R_IOAS_UNMAP, OP_IOAS_UNMAP, 16, (void *)ctx[0], (int)ctx[1]); }

// pfn_reader_user_pin(user, pages, start_index, last_index): the pinning
// of an iommufd map (one call per batch)
SEC("fentry/pfn_reader_user_pin")
int fentry_pin_user(__u64 *ctx) { return enter(R_PIN_USER, OP_PIN_PAGES, 0); }
SEC("fexit/pfn_reader_user_pin")
int fexit_pin_user(__u64 *ctx) { return pin_user_fexit((void *)ctx[0], (int)ctx[4]); }

// vfio_pin_pages_remote(dma, vaddr, npage, pfn_base, limit, batch): the
// pinning of a type1 map
SEC("fentry/vfio_pin_pages_remote")
int fentry_pin_type1(__u64 *ctx) { return enter(R_PIN_TYPE1, OP_PIN_PAGES, 0); }
SEC("fexit/vfio_pin_pages_remote")
int fexit_pin_type1(__u64 *ctx) { return pin_type1_exit((long)ctx[6]); }

// iopt_map_user_pages(ictx, iopt, *iova, uptr, length, iommu_prot, flags):
// IOVA allocation, pinning and domain fill; where pfn_reader_user_pin is
// inlined
SEC("fentry/iopt_map_user_pages")
int fentry_pin(__u64 *ctx) { return enter(R_PIN, OP_PIN_PAGES, ctx[4]); }
SEC("fexit/iopt_map_user_pages")
int fexit_pin(__u64 *ctx) { return sized_exit(R_PIN, (int)ctx[7]); }

// vfio_iommu_type1_ioctl(iommu_data, cmd, arg) returns long
SEC("fentry/vfio_iommu_type1_ioctl")
int fentry_type1(__u64 *ctx) { return type1_fentry(R_TYPE1, (__u32)ctx[1]); }
SEC("fexit/vfio_iommu_type1_ioctl")
int fexit_type1(__u64 *ctx) { return type1_fexit(R_TYPE1, (__u32)ctx[1], ctx[2], (long)ctx[3]); }

// iommufd_vfio_ioctl(ictx, cmd, arg) returns int: iommufd's vfio-compat container
SEC("fentry/iommufd_vfio_ioctl")
int fentry_compat(__u64 *ctx) { return type1_fentry(R_COMPAT, (__u32)ctx[1]); }
SEC("fexit/iommufd_vfio_ioctl")
int fexit_compat(__u64 *ctx) { return type1_fexit(R_COMPAT, (__u32)ctx[1], ctx[2], (int)ctx[3]); }

// iommu_map(domain, iova, paddr, size, prot, gfp) returns int
SEC("fentry/iommu_map")
int fentry_iommu_map(__u64 *ctx) { return enter(R_IOMMU_MAP, OP_IOMMU_MAP, ctx[3]); }
SEC("fexit/iommu_map")
int fexit_iommu_map(__u64 *ctx) { return sized_exit(R_IOMMU_MAP, (int)ctx[6]); }

// iommu_unmap(domain, iova, size) returns the bytes unmapped
SEC("fentry/iommu_unmap")
int fentry_iommu_unmap(__u64 *ctx) { return enter(R_IOMMU_UNMAP, OP_IOMMU_UNMAP, 0); }
SEC("fexit/iommu_unmap")
int fexit_iommu_unmap(__u64 *ctx) { return bytes_exit(R_IOMMU_UNMAP, ctx[3]); }

// iommu_unmap_fast(domain, iova, size, gather): type1's unmap, which syncs
// the IOTLB itself
SEC("fentry/iommu_unmap_fast")
int fentry_iommu_unmap_fast(__u64 *ctx) { return enter(R_IOMMU_UNMAP_FAST, OP_IOMMU_UNMAP, 0); }
SEC("fexit/iommu_unmap_fast")
int fexit_iommu_unmap_fast(__u64 *ctx) { return bytes_exit(R_IOMMU_UNMAP_FAST, ctx[4]); }

// The IOMMU driver's iotlb_sync op (domain, gather), void
SEC("fentry/intel_iommu_tlb_sync")
int fentry_iotlb_sync(__u64 *ctx) { return enter(R_IOTLB_SYNC, OP_IOTLB_SYNC, 0); }
SEC("fexit/intel_iommu_tlb_sync")
int fexit_iotlb_sync(__u64 *ctx) { return bytes_exit(R_IOTLB_SYNC, 0); }

// kprobe/kretprobe: arguments and the return value from pt_regs.

SEC("kprobe/iommufd_ioas_map")
int kprobe_ioas_map(struct pt_regs *regs) { return enter(R_IOAS_MAP, OP_IOAS_MAP, PARM1(regs)); }
SEC("kretprobe/iommufd_ioas_map")
int kretprobe_ioas_map(struct pt_regs *regs) { return ioas_kretprobe(R_IOAS_MAP, 24, (int)RET(regs)); }

SEC("kprobe/iommufd_ioas_unmap")
int kprobe_ioas_unmap(struct pt_regs *regs) { return enter(R_IOAS_UNMAP, OP_IOAS_UNMAP, PARM1(regs)); }
SEC("kretprobe/iommufd_ioas_unmap")
int kretprobe_ioas_unmap(struct pt_regs *regs) { return ioas_kretprobe(R_IOAS_UNMAP, 16, (int)RET(regs)); }

SEC("kprobe/pfn_reader_user_pin")
int kprobe_pin_user(struct pt_regs *regs) { return enter(R_PIN_USER, OP_PIN_PAGES, PARM1(regs)); }
SEC("kretprobe/pfn_reader_user_pin")
int kretprobe_pin_user(struct pt_regs *regs) { return pin_user_kretprobe((int)RET(regs)); }

SEC("kprobe/vfio_pin_pages_remote")
int kprobe_pin_type1(struct pt_regs *regs) { return enter(R_PIN_TYPE1, OP_PIN_PAGES, 0); }
SEC("kretprobe/vfio_pin_pages_remote")
int kretprobe_pin_type1(struct pt_regs *regs) { return pin_type1_exit((long)RET(regs)); }

SEC("kprobe/iopt_map_user_pages")
int kprobe_pin(struct pt_regs *regs) { return enter(R_PIN, OP_PIN_PAGES, PARM5(regs)); }
SEC("kretprobe/iopt_map_user_pages")
int kretprobe_pin(struct pt_regs *regs) { return sized_exit(R_PIN, (int)RET(regs)); }

SEC("kprobe/vfio_iommu_type1_ioctl")
int kprobe_type1(struct pt_regs *regs) { return type1_enter(R_TYPE1, (__u32)PARM2(regs), PARM3(regs)); }
SEC("kretprobe/vfio_iommu_type1_ioctl")
int kretprobe_type1(struct pt_regs *regs) { return type1_exit(R_TYPE1, (long)RET(regs)); }

SEC("kprobe/iommufd_vfio_ioctl")
int kprobe_compat(struct pt_regs *regs) { return type1_enter(R_COMPAT, (__u32)PARM2(regs), PARM3(regs)); }
SEC("kretprobe/iommufd_vfio_ioctl")
int kretprobe_compat(struct pt_regs *regs) { return type1_exit(R_COMPAT, (int)RET(regs)); }

SEC("kprobe/iommu_map")
int kprobe_iommu_map(struct pt_regs *regs) { return enter(R_IOMMU_MAP, OP_IOMMU_MAP, PARM4(regs)); }
SEC("kretprobe/iommu_map")
int kretprobe_iommu_map(struct pt_regs *regs) { return sized_exit(R_IOMMU_MAP, (int)RET(regs)); }

SEC("kprobe/iommu_unmap")
int kprobe_iommu_unmap(struct pt_regs *regs) { return enter(R_IOMMU_UNMAP, OP_IOMMU_UNMAP, 0); }
SEC("kretprobe/iommu_unmap")
int kretprobe_iommu_unmap(struct pt_regs *regs) { return bytes_exit(R_IOMMU_UNMAP, RET(regs)); }

SEC("kprobe/iommu_unmap_fast")
int kprobe_iommu_unmap_fast(struct pt_regs *regs) { return enter(R_IOMMU_UNMAP_FAST, OP_IOMMU_UNMAP, 0); }
SEC("kretprobe/iommu_unmap_fast")
int kretprobe_iommu_unmap_fast(struct pt_regs *regs) { return bytes_exit(R_IOMMU_UNMAP_FAST, RET(regs)); }

SEC("kprobe/intel_iommu_tlb_sync")
int kprobe_iotlb_sync(struct pt_regs *regs) { return enter(R_IOTLB_SYNC, OP_IOTLB_SYNC, 0); }
SEC("kretprobe/intel_iommu_tlb_sync")
int kretprobe_iotlb_sync(struct pt_regs *regs) { return bytes_exit(R_IOTLB_SYNC, 0); }
