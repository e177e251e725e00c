/*
 * cloop: the C side of iommu-agent bench's "Go vs C" rows.
 *
 * It runs the same map+unmap loop as the Go side (ioctl/iommufd,
 * ioctl/vfio) on the same fds and the same memfd, inherited from the bench,
 * and reports the loop's time, so the Go layer's cost over a minimal C
 * caller is measured with nothing else in between: the process starts
 * once per row, before anything is timed.
 *
 * It is freestanding (no libc: -nostdlib -ffreestanding -static): the
 * host's cross gcc builds it for an arm64 guest without an arm64 libc, and
 * its loop is exactly the two ioctl syscalls, as a C program calling
 * ioctl(2) through glibc would be.
 *
 * usage: cloop iommufd IOMMUFD IOAS MEMFD LENGTH IOVA
 *        cloop type1 CONTAINER MEMFD LENGTH IOVA
 *        cloop numbers
 * Numbers are decimal; fds are inherited. The memfd is mapped shared,
 * read+write, from offset 0 for LENGTH bytes, and every page written, as
 * the Go side maps it.
 * Then, for each decimal count n read from stdin (one per line), it runs
 * n map+unmap pairs at IOVA and writes "ok NS\n" (the loop's nanoseconds,
 * CLOCK_MONOTONIC) or "err ERRNO\n"; it exits 0 at end of input.
 * "numbers" prints the request numbers and struct sizes it uses, which
 * the bench's tests compare with ioctl/uapi.
 *
 * The uapi structs are copied here from include/uapi/linux/iommufd.h and
 * vfio.h (Linux 6.12) because the host's linux-libc-dev may predate
 * iommufd.h.
 */

typedef unsigned int u32;
typedef unsigned long long u64;
typedef long i64;

struct iommu_ioas_map {
	u32 size;
	u32 flags;
	u32 ioas_id;
	u32 reserved;
	u64 user_va;
	u64 length;
	u64 iova;
};

struct iommu_ioas_unmap {
	u32 size;
	u32 ioas_id;
	u64 iova;
	u64 length;
};

struct vfio_iommu_type1_dma_map {
	u32 argsz;
	u32 flags;
	u64 vaddr;
	u64 iova;
	u64 size;
};

struct vfio_iommu_type1_dma_unmap {
	u32 argsz;
	u32 flags;
	u64 iova;
	u64 size;
};

/* _IO(type, nr) on x86 and arm64 (asm-generic): no size, no direction. */
#define IO(type, nr) (((type) << 8) | (nr))
#define IOMMU_IOAS_MAP IO(';', 0x85)
#define IOMMU_IOAS_UNMAP IO(';', 0x86)
#define VFIO_IOMMU_MAP_DMA IO(';', 100 + 13)
#define VFIO_IOMMU_UNMAP_DMA IO(';', 100 + 14)

#define IOMMU_IOAS_MAP_FIXED_IOVA 1
#define IOMMU_IOAS_MAP_WRITEABLE 2
#define IOMMU_IOAS_MAP_READABLE 4
#define VFIO_DMA_MAP_FLAG_READ 1
#define VFIO_DMA_MAP_FLAG_WRITE 2

#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 1
#define CLOCK_MONOTONIC 1

#if defined(__x86_64__)
#define SYS_read 0
#define SYS_write 1
#define SYS_mmap 9
#define SYS_ioctl 16
#define SYS_clock_gettime 228
#define SYS_exit_group 231

static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f)
{
	i64 ret;
	register i64 r10 __asm__("r10") = d;
	register i64 r8 __asm__("r8") = e;
	register i64 r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call cstart\n"
	"	hlt\n");
#elif defined(__aarch64__)
#define SYS_read 63
#define SYS_write 64
#define SYS_mmap 222
#define SYS_ioctl 29
#define SYS_clock_gettime 113
#define SYS_exit_group 94

static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f)
{
	register i64 x8 __asm__("x8") = n;
	register i64 x0 __asm__("x0") = a;
	register i64 x1 __asm__("x1") = b;
	register i64 x2 __asm__("x2") = c;
	register i64 x3 __asm__("x3") = d;
	register i64 x4 __asm__("x4") = e;
	register i64 x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	mov x29, #0\n"
	"	mov x30, #0\n"
	"	mov x0, sp\n"
	"	and x1, x0, #-16\n"
	"	mov sp, x1\n"
	"	bl cstart\n"
	"	brk #0\n");
#else
#error "cloop: x86_64 or aarch64 only"
#endif

/* The compiler may emit calls to these for struct copies and zeroing. */
void *memset(void *d, int c, unsigned long n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static void out(const char *s, unsigned long n)
{
	while (n > 0) {
		i64 w = sys6(SYS_write, 1, (i64)s, (i64)n, 0, 0, 0);
		if (w <= 0)
			return;
		s += w;
		n -= (unsigned long)w;
	}
}

static unsigned long slen(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static void puts1(const char *s) { out(s, slen(s)); }

static void putu(u64 v)
{
	char b[24];
	int i = sizeof b;
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out(b + i, sizeof b - i);
}

static void puthex(u64 v)
{
	char b[24];
	int i = sizeof b;
	do {
		b[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	b[--i] = 'x';
	b[--i] = '0';
	out(b + i, sizeof b - i);
}

static __attribute__((noreturn)) void die(const char *msg, i64 err)
{
	puts1("err ");
	putu((u64)(err < 0 ? -err : err));
	puts1(" ");
	puts1(msg);
	puts1("\n");
	sys6(SYS_exit_group, 2, 0, 0, 0, 0, 0);
	for (;;)
		;
}

/* num parses a decimal argument; -1 if it is not one. */
static i64 num(const char *s)
{
	i64 v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

struct ts {
	i64 sec, nsec;
};

static u64 now(void)
{
	struct ts t;
	sys6(SYS_clock_gettime, CLOCK_MONOTONIC, (i64)&t, 0, 0, 0, 0);
	return (u64)t.sec * 1000000000ull + (u64)t.nsec;
}

/* readline reads one line of stdin into b (a byte at a time: the Go side
 * writes a line and waits for the answer, so there is never more). */
static int readline(char *b, int cap)
{
	int n = 0;
	while (n < cap - 1) {
		char c;
		i64 r = sys6(SYS_read, 0, (i64)&c, 1, 0, 0, 0);
		if (r <= 0)
			return n > 0 ? n : -1;
		if (c == '\n')
			break;
		b[n++] = c;
	}
	b[n] = 0;
	return n;
}

static void numbers(void)
{
	static const struct {
		const char *name;
		u64 req, size;
	} t[] = {
		{"IOMMU_IOAS_MAP", IOMMU_IOAS_MAP, sizeof(struct iommu_ioas_map)},
		{"IOMMU_IOAS_UNMAP", IOMMU_IOAS_UNMAP, sizeof(struct iommu_ioas_unmap)},
		{"VFIO_IOMMU_MAP_DMA", VFIO_IOMMU_MAP_DMA, sizeof(struct vfio_iommu_type1_dma_map)},
		{"VFIO_IOMMU_UNMAP_DMA", VFIO_IOMMU_UNMAP_DMA, sizeof(struct vfio_iommu_type1_dma_unmap)},
	};
	for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
		puts1(t[i].name);
		puts1(" ");
		puthex(t[i].req);
		puts1(" ");
		putu(t[i].size);
		puts1("\n");
	}
}

#define USAGE "usage: cloop iommufd IOMMUFD IOAS MEMFD LENGTH IOVA | cloop type1 CONTAINER MEMFD LENGTH IOVA | cloop numbers"

void __attribute__((noreturn, used)) cstart(i64 *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	int iommufd;
	i64 fd, ioas = 0, memfd, length, iova;

	if (argc == 2 && streq(argv[1], "numbers")) {
		numbers();
		sys6(SYS_exit_group, 0, 0, 0, 0, 0, 0);
	}
	if (argc == 7 && streq(argv[1], "iommufd")) {
		iommufd = 1;
		fd = num(argv[2]);
		ioas = num(argv[3]);
		memfd = num(argv[4]);
		length = num(argv[5]);
		iova = num(argv[6]);
	} else if (argc == 6 && streq(argv[1], "type1")) {
		iommufd = 0;
		fd = num(argv[2]);
		memfd = num(argv[3]);
		length = num(argv[4]);
		iova = num(argv[5]);
	} else {
		die(USAGE, 22);
	}
	if (fd < 0 || ioas < 0 || memfd < 0 || length <= 0 || iova < 0)
		die(USAGE, 22);

	i64 va = sys6(SYS_mmap, 0, length, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (va < 0 && va > -4096)
		die("mmap the memfd", va);
	/* Populate this process's page tables as the Go side populates its
	 * own (a write to every page), so neither side's pin faults. */
	for (i64 off = 0; off < length; off += 4096)
		((volatile char *)va)[off] = 1;

	struct iommu_ioas_map im = {
		.size = sizeof im,
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = (u32)ioas,
		.user_va = (u64)va,
		.length = (u64)length,
		.iova = (u64)iova,
	};
	struct iommu_ioas_unmap iu = {
		.size = sizeof iu,
		.ioas_id = (u32)ioas,
		.iova = (u64)iova,
		.length = (u64)length,
	};
	struct vfio_iommu_type1_dma_map tm = {
		.argsz = sizeof tm,
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (u64)va,
		.iova = (u64)iova,
		.size = (u64)length,
	};
	struct vfio_iommu_type1_dma_unmap tu = {
		.argsz = sizeof tu,
		.iova = (u64)iova,
		.size = (u64)length,
	};

	char line[32];
	while (readline(line, sizeof line) >= 0) {
		i64 n = num(line);
		if (n < 0)
			die("bad count", 22);
		i64 r = 0;
		u64 start = now();
		for (i64 i = 0; i < n && r >= 0; i++) {
			if (iommufd) {
				/* The kernel writes back iova and length. */
				im.iova = (u64)iova;
				iu.length = (u64)length;
				r = sys6(SYS_ioctl, fd, IOMMU_IOAS_MAP, (i64)&im, 0, 0, 0);
				if (r >= 0)
					r = sys6(SYS_ioctl, fd, IOMMU_IOAS_UNMAP, (i64)&iu, 0, 0, 0);
			} else {
				tu.size = (u64)length;
				r = sys6(SYS_ioctl, fd, VFIO_IOMMU_MAP_DMA, (i64)&tm, 0, 0, 0);
				if (r >= 0)
					r = sys6(SYS_ioctl, fd, VFIO_IOMMU_UNMAP_DMA, (i64)&tu, 0, 0, 0);
			}
		}
		u64 ns = now() - start;
		if (r < 0) {
			puts1("err ");
			putu((u64)-r);
			puts1("\n");
			continue;
		}
		puts1("ok ");
		putu(ns);
		puts1("\n");
	}
	sys6(SYS_exit_group, 0, 0, 0, 0, 0, 0);
	for (;;)
		;
}
