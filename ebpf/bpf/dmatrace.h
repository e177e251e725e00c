// SPDX-License-Identifier: GPL-2.0
//
// The uapi facts dmatrace.c needs, written out instead of including libbpf's
// headers: helper numbers (include/uapi/linux/bpf.h, enum bpf_func_id), map
// types, the BTF-defined map convention cilium/ebpf reads, and the kprobe
// register layout of the two architectures we build for.

#ifndef DMATRACE_H
#define DMATRACE_H

typedef unsigned char __u8;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))

// BTF map definitions: the value of __uint is the array length of the
// pointed-to type, __type's is the pointed-to type.
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_F_NO_PREALLOC = 1,
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
static long (*bpf_probe_read_user)(void *dst, __u32 size, const void *src) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;
static void *(*bpf_task_storage_get)(void *map, void *task, void *value, __u64 flags) = (void *)156;
static void *(*bpf_get_current_task_btf)(void) = (void *)158;

// The kernel's struct pt_regs as a kprobe sees it.
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
#define PARM1(r) ((r)->di)
#define PARM2(r) ((r)->si)
#define PARM3(r) ((r)->dx)
#define PARM4(r) ((r)->cx)
#define PARM5(r) ((r)->r8)
#define RET(r) ((r)->ax)
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	unsigned long regs[31], sp, pc, pstate;
};
#define PARM1(r) ((r)->regs[0])
#define PARM2(r) ((r)->regs[1])
#define PARM3(r) ((r)->regs[2])
#define PARM4(r) ((r)->regs[3])
#define PARM5(r) ((r)->regs[4])
#define RET(r) ((r)->regs[0])
#else
#error "dmatrace: build with bpf2go -target amd64 or arm64"
#endif

#endif
