// SPDX-License-Identifier: GPL-2.0-only
/*
 * cachesim - a QEMU TCG plugin that runs every instruction fetch and every
 * data access of a one-vCPU guest through a model of a CPU's caches, for
 * make bench's cache-model boot (Documentation/benchmarks.md).
 *
 *   qemu-system-x86_64 ... -plugin build/bench/cachesim.so,out=FILE
 *
 * Model: 64-byte lines, true LRU in each set; L1i and L1d private, L2 and L3
 * unified; an access that misses a level is looked up in the next one and
 * then fills every level it missed (Zen's L3 is a victim cache; here it is
 * filled like the others).  Sizes (KiB) and ways are options, KIB:WAYS
 * (QEMU splits plugin options at commas): l1i=32:8 l1d=48:12 l2=1024:16
 * l3=32768:16, a Zen 5 core with the whole L3 to itself.  Data lines are
 * keyed by guest physical address (an access that crosses a page takes the
 * first page's), code lines by the host address of the guest's code, so
 * the two never share a line.  L2 and L3 misses are counted apart for code
 * and data.  Data TLBs too: a fully associative L1 of 72 entries and an
 * L2 of 3072, 12-way, LRU, keyed by virtual page; the page size is guessed
 * from the address (user space, modules and vmalloc space 4 KiB; the
 * kernel image 2 MiB; the direct map, found as the addresses whose
 * distance to their physical address is a multiple of 1 GiB, 2 MiB,
 * though -cpu max lets the kernel map it with 1 GiB pages).  A page walk
 * is counted, not modelled.  Not modelled: instruction TLBs, prefetchers,
 * other cores, the time an access takes.  Known over-count: under -icount an MMIO access re-runs
 * the rest of its translation block, counting its instructions and code
 * lines twice (the I/O path measured here does no MMIO).
 *
 * Counting starts at once.  Whenever the guest runs the marker instruction
 * (nopl 0x4b52414d(%rax): 0f 1f 80 4d 41 52 4b, a 7-byte no-op no compiler
 * emits with that displacement), one line of running totals is appended to
 * FILE:
 *
 *   mark SEQ insns I l1i_miss A l1d_acc B l1d_miss C l2_miss D l3_miss E
 *        l2i_miss F l3i_miss G dtlb1_miss H dtlb2_miss J
 *
 * (l2_miss and l3_miss: data accesses; l2i_miss and l3i_miss: code.)
 * With the option pcs=on, each mark line is followed by one line per
 * instruction that ran or whose data accesses missed L1d since the
 * previous mark:
 *
 *   pc VADDR L1D_MISSES EXECUTIONS
 *
 * (VADDR in hex, the guest's virtual address of the instruction; 1 for all
 * of user space together), and
 * "pc lost N M" if the table ran out of room: N misses went uncounted,
 * and M instructions were translated with no execution count (both since
 * the start).
 *
 * With the option skip=FILE, a second model (its counters prefixed x_ on
 * the mark line) sees the same run without the code fetches and data
 * accesses of the instructions that lie in the guest address ranges FILE
 * lists, one "START END" pair (hex, END exclusive) per line; FILE is read
 * again at every mark, so the guest can name its module's code once it is
 * loaded:
 *
 *   ... x_insns I x_l1i_miss A x_l1d_miss C x_l2_miss D x_l3_miss E
 *       x_l2i_miss F x_l3i_miss G x_dtlb1_miss H x_dtlb2_miss J
 *
 * (x_insns: instructions run in those ranges).  The two models differ by
 * exactly the misses that code's accesses cause, its own and those of the
 * lines it evicts: with LRU, removing accesses from a trace never turns a
 * hit of the others into a miss.
 *
 * SEQ counts markers from 0; the guest keeps its own count to pair them
 * with what it ran in between.  The QEMU ABI used is plugin API version 1
 * (QEMU 7.2); its declarations are below, as the API documents them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API, version 1 (declarations only) ---- */
#define PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_hwaddr;

typedef struct {
	const char *target_name;
	struct {
		int min;
		int cur;
	} version;
	bool system_emulation;
	union {
		struct {
			int smp_vcpus;
			int max_vcpus;
		} system;
	};
} qemu_info_t;

enum plugin_cb_flags { CB_NO_REGS };
enum plugin_mem_rw { MEM_R = 1, MEM_W, MEM_RW };
enum plugin_op { INLINE_ADD_U64 };

typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb_t)(unsigned int vcpu, void *udata);
typedef void (*vcpu_mem_cb_t)(unsigned int vcpu, qemu_plugin_meminfo_t info,
			      uint64_t vaddr, void *udata);
typedef void (*udata_cb_t)(qemu_plugin_id_t id, void *udata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, vcpu_udata_cb_t cb,
					  enum plugin_cb_flags flags, void *udata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum plugin_op op,
						void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, vcpu_udata_cb_t cb,
					    enum plugin_cb_flags flags, void *udata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, vcpu_mem_cb_t cb,
				      enum plugin_cb_flags flags, enum plugin_mem_rw rw,
				      void *udata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb_t cb, void *udata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void *qemu_plugin_insn_haddr(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
struct qemu_plugin_hwaddr *qemu_plugin_get_hwaddr(qemu_plugin_meminfo_t info, uint64_t vaddr);
bool qemu_plugin_hwaddr_is_io(const struct qemu_plugin_hwaddr *haddr);
uint64_t qemu_plugin_hwaddr_phys_addr(const struct qemu_plugin_hwaddr *haddr);

PLUGIN_EXPORT int qemu_plugin_version = 1;

/* ---- The model ---- */
#define LINE_SHIFT	6
/* A translation block ends before 4 KiB of code: at most 66 lines. */
#define TB_MAX_LINES	72
#define CODE		0
#define DATA		1

struct cache {
	const char *name;
	unsigned int sets, ways;
	uint64_t *tag;		/* sets * ways; line + 1, 0 = empty */
	uint64_t *used;		/* sets * ways; last use, for LRU */
	uint64_t clock;
	uint64_t last;		/* line + 1 of the latest access, 0 = none */
	uint64_t miss[2];	/* [CODE], [DATA] */
	struct cache *next;	/* NULL: memory */
};

static struct cache l1i = { .name = "l1i" }, l1d = { .name = "l1d" };
static struct cache l2 = { .name = "l2" }, l3 = { .name = "l3" };
static struct cache dtlb1, dtlb2, x_dtlb1, x_dtlb2;
static uint64_t insns, l1d_acc;
static bool pcs;

/* The second model (skip=FILE): the same caches without the code in skip[]. */
static struct cache x_l1i, x_l1d, x_l2, x_l3;
static const char *skip_path;
#define SKIP_MAX	16
static struct { uint64_t start, end; } skip[SKIP_MAX];
static unsigned int nskip;
static uint64_t x_insns;

static bool skipped(uint64_t pc)
{
	unsigned int i;

	for (i = 0; i < nskip; i++)
		if (pc >= skip[i].start && pc < skip[i].end)
			return true;
	return false;
}

/* Read skip[] from skip_path again; an absent file is no range. */
static void skip_load(void)
{
	unsigned long long a, b;
	FILE *f = fopen(skip_path, "r");

	nskip = 0;
	if (!f)
		return;
	while (nskip < SKIP_MAX && fscanf(f, "%llx %llx", &a, &b) == 2) {
		skip[nskip].start = a;
		skip[nskip].end = b;
		nskip++;
	}
	fclose(f);
}

/* L1d misses and executions by instruction address since the last mark (pcs=on). */
#define PC_SLOTS	(1u << 21)
static uint64_t *pc_key, *pc_miss, *pc_exec;
static uint64_t pc_used, pc_lost, pc_lost_insns;

/*
 * pc's slot; keys stay for the whole run, and at 3/4 full none is added
 * (-1).  All of user space (below 2^47) shares the key 1: its processes'
 * code would fill the table, and only the kernel's is told apart.
 */
static long pc_slot(uint64_t pc)
{
	uint64_t h;

	if (pc < 1ull << 47)
		pc = 1;
	h = (pc * 0x9e3779b97f4a7c15ull) >> 43;

	while (pc_key[h] && pc_key[h] != pc)
		h = (h + 1) & (PC_SLOTS - 1);
	if (!pc_key[h]) {
		if (pc_used >= PC_SLOTS / 4 * 3)
			return -1;
		pc_key[h] = pc;
		pc_used++;
	}
	return (long)h;
}

static void pc_count(uint64_t pc)
{
	long h = pc_slot(pc);

	if (h < 0)
		pc_lost++;
	else
		pc_miss[h]++;
}
static uint64_t seq;
static FILE *out;

static const uint8_t marker[7] = { 0x0f, 0x1f, 0x80, 0x4d, 0x41, 0x52, 0x4b };

/*
 * The code lines of a translation block.  QEMU does not say when a
 * translation is dropped, and code is translated again and again (every
 * new process), so equal lists are shared: a hash set of them, never freed,
 * as big as the distinct code run.
 */
struct tb_lines {
	struct tb_lines *chain;
	uint64_t hash;
	uint64_t vaddr;		/* the guest's address of the first insn */
	unsigned int insns;
	unsigned int n;
	uint64_t line[];
};

#define LINES_HASH	(1u << 16)
static struct tb_lines *lines_set[LINES_HASH];

static struct tb_lines *lines_intern(const uint64_t *line, unsigned int n,
				      uint64_t vaddr, unsigned int insns)
{
	uint64_t h = (0xcbf29ce484222325ull ^ vaddr) * 0x100000001b3ull;
	struct tb_lines *t;
	unsigned int i;

	for (i = 0; i < n; i++)
		h = (h ^ line[i]) * 0x100000001b3ull;
	for (t = lines_set[h % LINES_HASH]; t; t = t->chain)
		if (t->hash == h && t->n == n && t->vaddr == vaddr && t->insns == insns &&
		    !memcmp(t->line, line, n * sizeof(*line)))
			return t;
	t = malloc(sizeof(*t) + n * sizeof(*line));
	if (!t)
		abort();
	t->hash = h;
	t->vaddr = vaddr;
	t->insns = insns;
	t->n = n;
	memcpy(t->line, line, n * sizeof(*line));
	t->chain = lines_set[h % LINES_HASH];
	lines_set[h % LINES_HASH] = t;
	return t;
}

static int cache_init(struct cache *c, unsigned long kib, unsigned int ways,
		      struct cache *next)
{
	unsigned long lines = (kib << 10) >> LINE_SHIFT;

	if (!ways || !lines || lines % ways)
		return -1;
	c->sets = lines / ways;
	c->ways = ways;
	c->tag = calloc(lines, sizeof(*c->tag));
	c->used = calloc(lines, sizeof(*c->used));
	c->next = next;
	return c->tag && c->used ? 0 : -1;
}

/* A TLB of entries in sets of ways. */
static int tlb_init(struct cache *c, unsigned int entries, unsigned int ways,
		    struct cache *next)
{
	c->sets = entries / ways;
	c->ways = ways;
	c->tag = calloc(entries, sizeof(*c->tag));
	c->used = calloc(entries, sizeof(*c->used));
	c->next = next;
	return c->tag && c->used ? 0 : -1;
}

/* The TLB key of a data access: its virtual page, and the page's size. */
static uint64_t page_key(uint64_t va, uint64_t pa)
{
	unsigned int shift = 12;

	if (va >= 0xffffffffc0000000ull || va < 1ull << 47)
		shift = 12;	/* modules and fixmap; user space */
	else if (va >= 0xffffffff80000000ull)
		shift = 21;	/* the kernel image */
	else if (!((va - pa) & ((1ull << 30) - 1)))
		shift = 21;	/* the direct map: va - pa is page_offset_base */
	return (va >> shift) << 1 | (shift == 21);
}

/*
 * Look line up in c; on a miss go on to the next level, then fill c.
 * The same line as the latest access of c is a hit with nothing to update:
 * it is still there (only an access of c evicts) and already the most
 * recently used, so the LRU order and every later answer stay as if its
 * stamp were renewed.  This spares the scan of the ways (72 in the L1
 * TLB) for most accesses: the next one is mostly on the same page, and
 * often on the same line.
 */
static void cache_access(struct cache *c, uint64_t line, int kind)
{
	uint64_t *tag, *used;
	unsigned int i, victim = 0;

	if (c->last == line + 1)
		return;
	c->last = line + 1;
	tag = c->tag + (line % c->sets) * c->ways;
	used = c->used + (line % c->sets) * c->ways;
	c->clock++;
	for (i = 0; i < c->ways; i++) {
		if (tag[i] == line + 1) {
			used[i] = c->clock;
			return;
		}
		if (used[i] < used[victim])
			victim = i;
	}
	c->miss[kind]++;
	if (c->next)
		cache_access(c->next, line, kind);
	tag[victim] = line + 1;
	used[victim] = c->clock;
}

static void mem_access(unsigned int vcpu, qemu_plugin_meminfo_t info,
		       uint64_t vaddr, void *udata)
{
	struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
	uint64_t pa, page, first, last, before = l1d.miss[DATA];

	(void)vcpu;
	if (!hw || qemu_plugin_hwaddr_is_io(hw))
		return;
	pa = qemu_plugin_hwaddr_phys_addr(hw);
	page = page_key(vaddr, pa);
	cache_access(&dtlb1, page, DATA);
	first = pa >> LINE_SHIFT;
	last = (pa + (1u << qemu_plugin_mem_size_shift(info)) - 1) >> LINE_SHIFT;
	for (uint64_t l = first; l <= last; l++) {
		l1d_acc++;
		cache_access(&l1d, l, DATA);
	}
	if (pcs && l1d.miss[DATA] != before)
		pc_count((uint64_t)(uintptr_t)udata);
	if (skip_path && !skipped((uint64_t)(uintptr_t)udata)) {
		cache_access(&x_dtlb1, page, DATA);
		for (; first <= last; first++)
			cache_access(&x_l1d, first, DATA);
	}
}

static void tb_fetch(unsigned int vcpu, void *udata)
{
	const struct tb_lines *t = udata;
	unsigned int i;

	(void)vcpu;
	for (i = 0; i < t->n; i++)
		cache_access(&l1i, t->line[i], CODE);
	if (!skip_path)
		return;
	if (skipped(t->vaddr)) {
		x_insns += t->insns;
		return;
	}
	for (i = 0; i < t->n; i++)
		cache_access(&x_l1i, t->line[i], CODE);
}

static void mark(unsigned int vcpu, void *udata)
{
	unsigned int i;

	(void)vcpu;
	(void)udata;
	fprintf(out, "mark %llu insns %llu l1i_miss %llu l1d_acc %llu l1d_miss %llu l2_miss %llu l3_miss %llu l2i_miss %llu l3i_miss %llu dtlb1_miss %llu dtlb2_miss %llu",
		(unsigned long long)seq++, (unsigned long long)insns,
		(unsigned long long)l1i.miss[CODE], (unsigned long long)l1d_acc,
		(unsigned long long)l1d.miss[DATA], (unsigned long long)l2.miss[DATA],
		(unsigned long long)l3.miss[DATA], (unsigned long long)l2.miss[CODE],
		(unsigned long long)l3.miss[CODE], (unsigned long long)dtlb1.miss[DATA],
		(unsigned long long)dtlb2.miss[DATA]);
	if (skip_path) {
		fprintf(out, " x_insns %llu x_l1i_miss %llu x_l1d_miss %llu x_l2_miss %llu x_l3_miss %llu x_l2i_miss %llu x_l3i_miss %llu x_dtlb1_miss %llu x_dtlb2_miss %llu",
			(unsigned long long)x_insns, (unsigned long long)x_l1i.miss[CODE],
			(unsigned long long)x_l1d.miss[DATA], (unsigned long long)x_l2.miss[DATA],
			(unsigned long long)x_l3.miss[DATA], (unsigned long long)x_l2.miss[CODE],
			(unsigned long long)x_l3.miss[CODE], (unsigned long long)x_dtlb1.miss[DATA],
			(unsigned long long)x_dtlb2.miss[DATA]);
		skip_load();	/* the new ranges count from this mark on */
	}
	fputc('\n', out);
	for (i = 0; pcs && i < PC_SLOTS; i++) {
		if (!pc_miss[i] && !pc_exec[i])
			continue;
		fprintf(out, "pc %llx %llu %llu\n", (unsigned long long)pc_key[i],
			(unsigned long long)pc_miss[i], (unsigned long long)pc_exec[i]);
		pc_miss[i] = 0;
		pc_exec[i] = 0;
	}
	if (pcs && (pc_lost || pc_lost_insns))
		fprintf(out, "pc lost %llu %llu\n", (unsigned long long)pc_lost,
			(unsigned long long)pc_lost_insns);
	fflush(out);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb), i;
	uint64_t lines[TB_MAX_LINES];
	unsigned int nl = 0;

	(void)id;
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		size_t size = qemu_plugin_insn_size(insn);
		uint64_t a = (uint64_t)(uintptr_t)qemu_plugin_insn_haddr(insn);
		uint64_t l;

		/* The TB's code lines, in order, each once (a TB is one run of code). */
		for (l = a >> LINE_SHIFT; a && l <= (a + size - 1) >> LINE_SHIFT; l++)
			if ((!nl || lines[nl - 1] != l) && nl < TB_MAX_LINES)
				lines[nl++] = l;
		qemu_plugin_register_vcpu_mem_cb(insn, mem_access, CB_NO_REGS, MEM_RW,
						 (void *)(uintptr_t)qemu_plugin_insn_vaddr(insn));
		if (pcs) {
			long h = pc_slot(qemu_plugin_insn_vaddr(insn));

			if (h < 0)
				pc_lost_insns++;
			else
				qemu_plugin_register_vcpu_insn_exec_inline(insn, INLINE_ADD_U64,
									   &pc_exec[h], 1);
		}
		if (size == sizeof(marker) &&
		    !memcmp(qemu_plugin_insn_data(insn), marker, sizeof(marker)))
			qemu_plugin_register_vcpu_insn_exec_cb(insn, mark, CB_NO_REGS, NULL);
	}
	qemu_plugin_register_vcpu_tb_exec_inline(tb, INLINE_ADD_U64, &insns, n);
	qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_fetch, CB_NO_REGS,
					     lines_intern(lines, nl, qemu_plugin_tb_vaddr(tb),
							  (unsigned int)n));
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	mark(0, NULL);
	fclose(out);
}

/* "NAME=KIB:WAYS" into kib and ways; 0 if arg is not about NAME. */
static int size_opt(const char *arg, const char *name, unsigned long *kib, unsigned int *ways)
{
	size_t len = strlen(name);
	char *end;

	if (strncmp(arg, name, len) || arg[len] != '=')
		return 0;
	*kib = strtoul(arg + len + 1, &end, 10);
	if (*end != ':')
		return -1;
	*ways = (unsigned int)strtoul(end + 1, &end, 10);
	return *end ? -1 : 1;
}

PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
				      int argc, char **argv)
{
	unsigned long kib[4] = { 32, 48, 1024, 32768 };
	unsigned int ways[4] = { 8, 12, 16, 16 };
	static const char * const names[4] = { "l1i", "l1d", "l2", "l3" };
	const char *path = NULL;
	int i, j;

	if (!info->system_emulation || info->system.smp_vcpus != 1) {
		fprintf(stderr, "cachesim: needs system emulation with one vCPU\n");
		return -1;
	}
	for (i = 0; i < argc; i++) {
		int r = 0;

		if (!strncmp(argv[i], "out=", 4)) {
			path = argv[i] + 4;
			continue;
		}
		if (!strcmp(argv[i], "pcs=on")) {
			pcs = true;
			continue;
		}
		if (!strncmp(argv[i], "skip=", 5) && argv[i][5]) {
			skip_path = argv[i] + 5;
			continue;
		}
		for (j = 0; j < 4 && !r; j++)
			r = size_opt(argv[i], names[j], &kib[j], &ways[j]);
		if (r != 1) {
			fprintf(stderr, "cachesim: bad option '%s' (out=FILE, pcs=on, skip=FILE, l1i|l1d|l2|l3=KIB:WAYS)\n",
				argv[i]);
			return -1;
		}
	}
	if (!path) {
		fprintf(stderr, "cachesim: out=FILE is required\n");
		return -1;
	}
	if (cache_init(&l3, kib[3], ways[3], NULL) || cache_init(&l2, kib[2], ways[2], &l3) ||
	    cache_init(&l1d, kib[1], ways[1], &l2) || cache_init(&l1i, kib[0], ways[0], &l2)) {
		fprintf(stderr, "cachesim: bad cache geometry\n");
		return -1;
	}
	if (skip_path &&
	    (cache_init(&x_l3, kib[3], ways[3], NULL) || cache_init(&x_l2, kib[2], ways[2], &x_l3) ||
	     cache_init(&x_l1d, kib[1], ways[1], &x_l2) || cache_init(&x_l1i, kib[0], ways[0], &x_l2) ||
	     tlb_init(&x_dtlb2, 3072, 12, NULL) || tlb_init(&x_dtlb1, 72, 72, &x_dtlb2)))
		return -1;
	if (tlb_init(&dtlb2, 3072, 12, NULL) || tlb_init(&dtlb1, 72, 72, &dtlb2))
		return -1;
	if (pcs) {
		pc_key = calloc(PC_SLOTS, sizeof(*pc_key));
		pc_miss = calloc(PC_SLOTS, sizeof(*pc_miss));
		pc_exec = calloc(PC_SLOTS, sizeof(*pc_exec));
		if (!pc_key || !pc_miss || !pc_exec)
			return -1;
	}
	out = fopen(path, "w");
	if (!out) {
		perror(path);
		return -1;
	}
	fprintf(out, "config l1i %lu:%u l1d %lu:%u l2 %lu:%u l3 %lu:%u line 64 dtlb 72+3072:12\n",
		kib[0], ways[0], kib[1], ways[1], kib[2], ways[2], kib[3], ways[3]);
	fflush(out);
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
