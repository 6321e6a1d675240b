// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * mkpool - write a dm-remap pool that already holds N remaps, for
 * benchmarks (creating 100k remaps through force_remap one at a time is far
 * too slow under emulation).
 *
 *   mkpool [-d DEV_ID] [-b BLOCK_SIZE] [-s SEED] [-S BYTES] [-l LIST]
 *          [-q SEQ] TARGET MAIN_SECTORS NR_REMAPS
 *   mkpool -V TARGET                 verify the pool on TARGET (load rule +
 *                                    pool check), print what it holds
 *
 * TARGET is a block device or a file (-S BYTES creates or extends a file to
 * that size; the pool is as large as TARGET, like format_spare).  The pool
 * gets one device identity record (DEV_ID, MAIN_SECTORS, IN_USE) and
 * NR_REMAPS MAPPED entries of DEV_ID in spare blocks 0..NR_REMAPS-1, at
 * unique main blocks drawn uniformly below MAIN_SECTORS / (BLOCK_SIZE/512)
 * from a deterministic generator (SEED; the pool uuid is random).
 *
 * It mirrors the kernel's format (dm-remap-mgr/metadata.c, dmr_md_format):
 * the 8 superblock copies are zeroed first, then every logical table block
 * is written to both copies of pair 0 with seq 1, then the 8 superblock
 * copies with seq 1 and the digest over all the seqs.  Only the metadata
 * area is written; the data blocks are left as they are.  The result is
 * read back and checked with the same load rule as the kernel
 * (rm_sb_decode, rm_tblock_decode_hdr, rm_pick_slot, digest, rm_pool_check).
 *
 * -q SEQ writes every block with that seq instead of 1 (tests of the
 * loader's seq limit).
 *
 * -l LIST writes the remaps as "<main block> <spare block> mapped" lines
 * sorted by main block: the format of the remap target's list_remaps
 * message, so the two can be compared with cmp(1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "rm_platform.h"
#include "rm_format.h"

static const char *prog = "mkpool";

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xalloc(size_t n)
{
	void *p;

	if (posix_memalign(&p, RM_MD_BLOCK_SIZE, n ? n : 1))
		die("out of memory (%zu bytes)", n);
	memset(p, 0, n);
	return p;
}

/* splitmix64: deterministic, good enough to spread blocks. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias. */
static uint64_t rnd_below(uint64_t n)
{
	uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;

	do
		x = rnd();
	while (x >= lim);
	return x % n;
}

/* ---- Block I/O ----------------------------------------------------------- */

struct target {
	int fd;
	const char *path;
	uint64_t bytes;
};

static void open_target(struct target *t, const char *path, int writable,
			uint64_t create_bytes)
{
	int flags = writable ? O_RDWR : O_RDONLY;
	struct stat st;

	t->path = path;
	if (create_bytes)
		flags |= O_CREAT;
	/* O_DIRECT: bypass the page cache of a block device (stale after the
	 * kernel wrote the pool with bios).  tmpfs files refuse it. */
	t->fd = open(path, flags | O_DIRECT, 0644);
	if (t->fd < 0 && errno == EINVAL)
		t->fd = open(path, flags, 0644);
	if (t->fd < 0)
		die("cannot open %s: %s", path, strerror(errno));
	if (fstat(t->fd, &st))
		die("stat %s: %s", path, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(t->fd, BLKGETSIZE64, &t->bytes))
			die("BLKGETSIZE64 %s: %s", path, strerror(errno));
		if (create_bytes && create_bytes != t->bytes)
			die("-S does not apply to a block device (%s is %" PRIu64 " bytes)",
			    path, t->bytes);
	} else if (S_ISREG(st.st_mode)) {
		t->bytes = st.st_size;
		if (create_bytes && create_bytes > t->bytes) {
			if (ftruncate(t->fd, create_bytes))
				die("cannot extend %s: %s", path, strerror(errno));
			t->bytes = create_bytes;
		}
	} else {
		die("%s is neither a block device nor a file", path);
	}
}

static void blk_write(struct target *t, const void *blk, uint64_t blocknr)
{
	ssize_t r = pwrite(t->fd, blk, RM_MD_BLOCK_SIZE,
			   (off_t)(blocknr * RM_MD_BLOCK_SIZE));

	if (r != RM_MD_BLOCK_SIZE)
		die("write of md block %" PRIu64 " to %s failed: %s", blocknr,
		    t->path, r < 0 ? strerror(errno) : "short write");
}

/* Read a block; an unreadable or short block reads as zeros (invalid copy). */
static void blk_read(struct target *t, void *blk, uint64_t blocknr)
{
	ssize_t r = pread(t->fd, blk, RM_MD_BLOCK_SIZE,
			  (off_t)(blocknr * RM_MD_BLOCK_SIZE));

	if (r != RM_MD_BLOCK_SIZE)
		memset(blk, 0, RM_MD_BLOCK_SIZE);
}

static void sync_target(struct target *t)
{
	if (fsync(t->fd))
		die("fsync %s: %s", t->path, strerror(errno));
}

/* ---- Verification: the kernel's load rule (metadata.c dmr_md_load) ------- */

struct loaded {
	struct rm_sb sb;
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_name names[RM_MAX_DEVS];
	struct rm_entry *entries;
	uint64_t max_seen;
};

static void report(void *ctx, const struct rm_problem *p)
{
	(void)ctx;
	fprintf(stderr, "%s: pool check: %s (object %d index %" PRIu64
		" dev %u block %" PRIu64 ")\n", prog, rm_strerror(p->err),
		p->obj, p->index, p->dev_id, p->main_block);
}

static int load_pool(struct target *t, struct loaded *ld)
{
	struct rm_slot_state st[RM_SB_COPIES];
	struct rm_sb sbs[RM_SB_COPIES];
	uint8_t *blk = xalloc(RM_MD_SLOTS * RM_MD_BLOCK_SIZE);
	struct rm_check_key *scratch;
	const struct rm_geometry *g;
	uint64_t *seqs, l;
	unsigned int i, s;
	int64_t problems;
	int best, r;

	for (i = 0; i < RM_SB_COPIES; i++) {
		blk_read(t, blk, rm_sb_blocknr(i));
		r = rm_sb_decode(blk, i, &sbs[i]);
		st[i].valid = !r;
		st[i].seq = r ? 0 : sbs[i].seq;
	}
	best = rm_sb_pick(st, RM_SB_COPIES);
	if (best < 0) {
		fprintf(stderr, "%s: %s: no valid superblock\n", prog, t->path);
		return -1;
	}
	ld->sb = sbs[best];
	ld->max_seen = ld->sb.seq;
	g = &ld->sb.geo;
	if (g->dev_sectors > t->bytes / 512) {
		fprintf(stderr, "%s: %s is smaller than the pool\n", prog, t->path);
		return -1;
	}
	ld->entries = calloc(g->nr_blocks, sizeof(*ld->entries));
	seqs = calloc(g->nr_logical, sizeof(*seqs));
	if (!ld->entries || !seqs)
		die("out of memory");
	for (l = 0; l < g->nr_logical; l++) {
		struct rm_slot_state ss[RM_MD_SLOTS];
		struct rm_tblock_hdr hdr;
		struct rm_pick pick;

		for (s = 0; s < RM_MD_SLOTS; s++) {
			uint64_t b = rm_slot_blocknr(g, (uint32_t)l, s);

			blk_read(t, blk + s * RM_MD_BLOCK_SIZE, b);
			r = rm_tblock_decode_hdr(blk + s * RM_MD_BLOCK_SIZE,
						 &ld->sb, b, &hdr);
			ss[s].valid = !r;
			ss[s].seq = r ? 0 : hdr.seq;
		}
		if (rm_pick_slot(ss, ld->sb.seq, &pick)) {
			fprintf(stderr, "%s: table block %" PRIu64 " has no valid copy\n",
				prog, l);
			return -1;
		}
		if (pick.max_seq > ld->max_seen)
			ld->max_seen = pick.max_seq;
		r = rm_tblock_decode(blk + pick.slot * RM_MD_BLOCK_SIZE,
				     (uint32_t)l, g, ld->devs, ld->names,
				     ld->entries);
		if (r) {
			fprintf(stderr, "%s: table block %" PRIu64 ": %s\n", prog, l,
				rm_strerror(r));
			return -1;
		}
		seqs[l] = pick.seq;
	}
	if (rm_table_digest(seqs, g->nr_logical) != ld->sb.table_digest) {
		fprintf(stderr, "%s: table digest mismatch\n", prog);
		return -1;
	}
	free(seqs);
	scratch = calloc(g->nr_blocks, sizeof(*scratch));
	if (!scratch)
		die("out of memory");
	problems = rm_pool_check(&ld->sb, ld->devs, ld->entries, g->nr_blocks,
				 scratch, report, NULL);
	free(scratch);
	free(blk);
	if (problems) {
		fprintf(stderr, "%s: %" PRId64 " problems in the pool\n", prog, problems);
		return -1;
	}
	return 0;
}

/* "seq=S blocks=N block_size=B used=U" and one line per device. */
static void print_pool(const struct loaded *ld)
{
	const struct rm_geometry *g = &ld->sb.geo;
	uint64_t i, used = 0;
	unsigned int d;

	for (i = 0; i < g->nr_blocks; i++)
		used += ld->entries[i].state != RM_ENTRY_FREE;
	printf("pool: seq=%" PRIu64 " block_size=%u blocks=%" PRIu64
	       " logicals=%" PRIu64 " data_start=%" PRIu64 " used=%" PRIu64 "\n",
	       ld->sb.seq, g->block_size, g->nr_blocks, g->nr_logical,
	       g->data_start, used);
	for (d = 0; d < RM_MAX_DEVS; d++) {
		uint64_t mapped = 0, pending = 0;

		if (!(ld->devs[d].flags & RM_DEV_F_IN_USE))
			continue;
		for (i = 0; i < g->nr_blocks; i++) {
			if (ld->entries[i].dev_id != ld->devs[d].dev_id)
				continue;
			mapped += ld->entries[i].state == RM_ENTRY_MAPPED;
			pending += ld->entries[i].state == RM_ENTRY_PENDING;
		}
		printf("dev: %u sectors=%" PRIu64 " mapped=%" PRIu64
		       " pending=%" PRIu64 "\n", ld->devs[d].dev_id,
		       ld->devs[d].size_sectors, mapped, pending);
	}
}

/* ---- Generation ------------------------------------------------------------ */

struct pair {
	uint64_t main;
	uint32_t spare;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	return x->main < y->main ? -1 : x->main > y->main;
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		die("invalid %s '%s'", what, s);
	return v;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [-d DEV_ID] [-b BLOCK_SIZE] [-s SEED] [-S BYTES] [-l LIST]\n"
		"              [-q SEQ] TARGET MAIN_SECTORS NR_REMAPS\n"
		"       %s -V TARGET\n", prog, prog);
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seed = 1, create_bytes = 0, seq = 1, main_sectors, n, main_blocks;
	uint64_t i, l;
	uint32_t dev_id = 1, block_size = RM_DEFAULT_BLOCK_SIZE;
	const char *list = NULL;
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_entry *entries;
	struct pair *pairs;
	uint64_t *seen, *seqs;
	struct target t;
	struct loaded ld;
	struct rm_sb sb;
	uint8_t *blk;
	int c, verify_only = 0, fd, r;

	while ((c = getopt(argc, argv, "d:b:s:S:l:q:Vh")) != -1) {
		switch (c) {
		case 'd':
			dev_id = (uint32_t)parse_u64(optarg, "dev_id");
			break;
		case 'b':
			block_size = (uint32_t)parse_u64(optarg, "block size");
			break;
		case 's':
			seed = parse_u64(optarg, "seed");
			break;
		case 'S':
			create_bytes = parse_u64(optarg, "size");
			break;
		case 'l':
			list = optarg;
			break;
		case 'q':
			seq = parse_u64(optarg, "seq");
			if (!seq)
				die("invalid seq 0");
			break;
		case 'V':
			verify_only = 1;
			break;
		default:
			usage();
		}
	}
	if (verify_only) {
		if (argc - optind != 1)
			usage();
		open_target(&t, argv[optind], 0, 0);
		memset(&ld, 0, sizeof(ld));
		r = load_pool(&t, &ld);
		if (!r)
			print_pool(&ld);
		free(ld.entries);
		close(t.fd);
		return r ? 1 : 0;
	}
	if (argc - optind != 3)
		usage();
	main_sectors = parse_u64(argv[optind + 1], "main device size");
	n = parse_u64(argv[optind + 2], "number of remaps");
	if (!rm_block_size_valid(block_size))
		die("invalid block size %u", block_size);
	main_blocks = main_sectors >> rm_block_sector_shift(block_size);

	open_target(&t, argv[optind], 1, create_bytes);
	memset(&sb, 0, sizeof(sb));
	r = rm_geometry_compute(t.bytes / 512, block_size, &sb.geo);
	if (r)
		die("%s (%" PRIu64 " bytes): %s", t.path, t.bytes, rm_strerror(r));
	if (n > sb.geo.nr_blocks)
		die("%" PRIu64 " remaps do not fit in a pool of %" PRIu64 " blocks",
		    n, sb.geo.nr_blocks);
	if (n > main_blocks / 2)
		die("%" PRIu64 " remaps: more than half of the %" PRIu64
		    " main blocks", n, main_blocks);

	/* The remaps: spare block i holds main block pairs[i].main. */
	rng_state = seed;
	entries = calloc(sb.geo.nr_blocks, sizeof(*entries));
	pairs = calloc(n ? n : 1, sizeof(*pairs));
	seen = calloc((main_blocks + 63) / 64 + 1, sizeof(*seen));
	if (!entries || !pairs || !seen)
		die("out of memory");
	for (i = 0; i < n; i++) {
		uint64_t b;

		do
			b = rnd_below(main_blocks);
		while (seen[b / 64] & (1ull << (b % 64)));
		seen[b / 64] |= 1ull << (b % 64);
		entries[i].main_block = b;
		entries[i].dev_id = dev_id;
		entries[i].state = RM_ENTRY_MAPPED;
		pairs[i].main = b;
		pairs[i].spare = (uint32_t)i;
	}
	free(seen);
	memset(devs, 0, sizeof(devs));
	devs[0].dev_id = dev_id;
	devs[0].flags = RM_DEV_F_IN_USE;
	devs[0].size_sectors = main_sectors;

	fd = open("/dev/urandom", O_RDONLY);
	if (fd < 0 || read(fd, sb.uuid, RM_UUID_SIZE) != RM_UUID_SIZE)
		die("cannot read /dev/urandom");
	close(fd);
	sb.uuid[6] = (sb.uuid[6] & 0x0f) | 0x40;	/* like generate_random_uuid */
	sb.uuid[8] = (sb.uuid[8] & 0x3f) | 0x80;
	sb.seq = seq;
	seqs = calloc(sb.geo.nr_logical, sizeof(*seqs));
	if (!seqs)
		die("out of memory");
	for (l = 0; l < sb.geo.nr_logical; l++)
		seqs[l] = sb.seq;
	sb.table_digest = rm_table_digest(seqs, sb.geo.nr_logical);
	free(seqs);

	blk = xalloc(RM_MD_BLOCK_SIZE);
	/* 1. No pool while the table is half written. */
	for (i = 0; i < RM_SB_COPIES; i++)
		blk_write(&t, blk, rm_sb_blocknr((uint32_t)i));
	sync_target(&t);

	/* 2. Every logical, pair 0, both copies, seq sb.seq. */
	for (l = 0; l < sb.geo.nr_logical; l++) {
		struct rm_tblock_hdr hdr = {
			.logical = (uint32_t)l,
			.blocknr = rm_slot_blocknr(&sb.geo, (uint32_t)l,
						   rm_slot_index(0, 0)),
			.seq = sb.seq,
		};

		memcpy(hdr.uuid, sb.uuid, RM_UUID_SIZE);
		r = rm_tblock_encode(blk, &hdr, &sb.geo, devs, NULL, entries);
		if (r)
			die("encoding table block %" PRIu64 ": %s", l, rm_strerror(r));
		blk_write(&t, blk, hdr.blocknr);
		rm_tblock_relocate(blk, rm_slot_blocknr(&sb.geo, (uint32_t)l,
							rm_slot_index(0, 1)));
		blk_write(&t, blk, rm_slot_blocknr(&sb.geo, (uint32_t)l,
						   rm_slot_index(0, 1)));
	}
	sync_target(&t);

	/* 3. The commit point: all superblock copies. */
	for (i = 0; i < RM_SB_COPIES; i++) {
		r = rm_sb_encode(blk, &sb, (uint32_t)i);
		if (r)
			die("encoding superblock %" PRIu64 ": %s", i, rm_strerror(r));
		blk_write(&t, blk, rm_sb_blocknr((uint32_t)i));
	}
	sync_target(&t);
	free(blk);

	/* Read it back the way the kernel loads it. */
	memset(&ld, 0, sizeof(ld));
	if (load_pool(&t, &ld))
		die("the pool written to %s does not load", t.path);
	for (i = 0; i < sb.geo.nr_blocks; i++)
		if (ld.entries[i].main_block != entries[i].main_block ||
		    ld.entries[i].dev_id != entries[i].dev_id ||
		    ld.entries[i].state != entries[i].state ||
		    ld.entries[i].flags != entries[i].flags)
			die("entry %" PRIu64 " reads back differently", i);
	if (rm_dev_find(ld.devs, dev_id) < 0)
		die("device record %u missing after read-back", dev_id);
	close(t.fd);
	print_pool(&ld);
	free(ld.entries);
	free(entries);

	if (list) {
		FILE *f = fopen(list, "w");

		if (!f)
			die("cannot create %s: %s", list, strerror(errno));
		qsort(pairs, n, sizeof(*pairs), cmp_pair);
		for (i = 0; i < n; i++)
			fprintf(f, "%" PRIu64 " %u mapped\n", pairs[i].main,
				pairs[i].spare);
		if (fclose(f))
			die("writing %s: %s", list, strerror(errno));
	}
	free(pairs);
	return 0;
}
