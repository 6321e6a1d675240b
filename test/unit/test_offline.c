// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the offline tools' loader and writer (userland/mdread.c,
 * mdwrite.c, mdjson.c) on pool images in memory files: a clean pool, then
 * each kind of damage, each expected to be reported exactly, with the
 * severity the kernel's load rule implies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "unit.h"
#include "../../common/rm_platform.h"
#include "../../common/rm_format.h"
#include "../../userland/jsonstr.h"
#include "../../userland/mdjson.h"
#include "../../userland/mdread.h"
#include "../../userland/mdwrite.h"

#define IMG_SECTORS	(8 * 2048)	/* 8 MiB, 4 KiB blocks */
#define DEV_A		7
#define DEV_A_SECTORS	(1 << 20)	/* 131072 blocks */
#define DEV_B		0		/* dev_id 0 is valid */
#define DEV_B_SECTORS	2048		/* 256 blocks */

struct img {
	int fd;
	char path[64];
	struct md_image md;
	struct rm_sb sb;
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_name names[RM_MAX_DEVS];
	struct rm_entry *entries;
	struct md_pool pool;
};

/* The first two entry logicals: spare blocks 0..251 and 252..503. */
#define E0	RM_FIRST_ENTRY_LOGICAL
#define E1	(RM_FIRST_ENTRY_LOGICAL + 1)
#define LABELS	1	/* the label block of device records 0..14 */

static void img_open(struct img *t, uint64_t sectors)
{
	memset(t, 0, sizeof(*t));
	t->fd = memfd_create("pool", MFD_CLOEXEC);
	if (t->fd < 0 || ftruncate(t->fd, (off_t)(sectors << 9)))
		abort();
	snprintf(t->path, sizeof(t->path), "/proc/self/fd/%d", t->fd);
	if (md_open(&t->md, t->path, O_RDWR))
		abort();
}

static struct md_records img_records(struct img *t)
{
	return (struct md_records){ t->devs, t->names, t->entries };
}

/*
 * A pool with a few entries of every state over two devices, one with a
 * label, seq 1.
 */
static void img_format(struct img *t)
{
	struct md_records rec;
	uint64_t i;

	img_open(t, IMG_SECTORS);
	if (rm_geometry_compute(IMG_SECTORS, 4096, &t->sb.geo))
		abort();
	memcpy(t->sb.uuid, "offline-test-uid", RM_UUID_SIZE);
	t->sb.seq = 1;
	t->devs[3] = (struct rm_dev){ DEV_A, RM_DEV_F_IN_USE, DEV_A_SECTORS,
				      5, 1, 1700000000 };
	t->devs[4] = (struct rm_dev){ DEV_B, RM_DEV_F_IN_USE, DEV_B_SECTORS,
				      0, 0, 0 };
	t->names[3] = (struct rm_name){ DEV_A, RM_NAME_F_IN_USE, "data0",
					"/dev/disk/by-id/wwn-0x5000c500a1b2c3d4" };
	t->entries = calloc(t->sb.geo.nr_blocks, sizeof(*t->entries));
	for (i = 0; i < 600; i += 3)	/* spans logicals E0..E0 + 2 */
		t->entries[i] = (struct rm_entry){ 1000 + i, DEV_A,
						   RM_ENTRY_MAPPED, 0 };
	t->entries[1] = (struct rm_entry){ 255, DEV_B, RM_ENTRY_MAPPED, 0 };
	t->entries[2] = (struct rm_entry){ 17, DEV_A, RM_ENTRY_PENDING, 0 };
	t->entries[4].state = RM_ENTRY_RETIRED;
	rec = img_records(t);
	if (md_write_pool(&t->md, &t->sb, &rec))
		abort();
}

static void img_close(struct img *t)
{
	md_pool_free(&t->pool);
	md_close(&t->md);
	close(t->fd);
	free(t->entries);
}

static void img_load(struct img *t, unsigned int flags)
{
	md_pool_free(&t->pool);
	CHECK_EQ(md_load(&t->md, &t->pool, flags), 0);
}

static void blk_read(struct img *t, uint64_t blocknr, uint8_t *b)
{
	if (pread(t->fd, b, RM_MD_BLOCK_SIZE, (off_t)blocknr * 4096) != 4096)
		abort();
}

static void blk_write(struct img *t, uint64_t blocknr, const uint8_t *b)
{
	if (pwrite(t->fd, b, RM_MD_BLOCK_SIZE, (off_t)blocknr * 4096) != 4096)
		abort();
}

/* Flip one byte of a metadata block: a checksum failure. */
static void corrupt(struct img *t, uint64_t blocknr)
{
	uint8_t b[RM_MD_BLOCK_SIZE];

	blk_read(t, blocknr, b);
	b[200] ^= 0x5a;
	blk_write(t, blocknr, b);
}

static uint64_t slot_block(struct img *t, uint32_t l, unsigned int pair,
			   unsigned int copy)
{
	return rm_slot_blocknr(&t->sb.geo, l, rm_slot_index(pair, copy));
}

/* Set byte off of logical l's payload in both copies of pair 0, resealed. */
static void patch_payload(struct img *t, uint32_t l, unsigned int off,
			  uint8_t v)
{
	uint8_t b[RM_MD_BLOCK_SIZE];
	unsigned int c;

	for (c = 0; c < 2; c++) {
		blk_read(t, slot_block(t, l, 0, c), b);
		b[RM_TB_HDR_SIZE + off] = v;
		rm_md_seal(b, RM_TB_OFF_CSUM);
		blk_write(t, slot_block(t, l, 0, c), b);
	}
}

/* Write logical l (from t's records) with seq into both copies of pair. */
static void write_logical(struct img *t, uint32_t l, unsigned int pair,
			  uint64_t seq)
{
	struct rm_tblock_hdr h = {
		.logical = l, .seq = seq,
		.blocknr = slot_block(t, l, pair, 0),
	};
	uint8_t b[RM_MD_BLOCK_SIZE];

	memcpy(h.uuid, t->sb.uuid, RM_UUID_SIZE);
	CHECK_EQ(rm_tblock_encode(b, &h, &t->sb.geo, t->devs, t->names,
				  t->entries), 0);
	blk_write(t, h.blocknr, b);
	rm_tblock_relocate(b, slot_block(t, l, pair, 1));
	blk_write(t, slot_block(t, l, pair, 1), b);
}

/* A second commit, as the kernel makes it: logical E0 into pair 1, seq 2. */
static void commit_seq2(struct img *t)
{
	uint64_t seqs[64], l;

	t->entries[3] = (struct rm_entry){ 4242, DEV_A, RM_ENTRY_MAPPED, 0 };
	write_logical(t, E0, 1, 2);
	for (l = 0; l < t->sb.geo.nr_logical; l++)
		seqs[l] = l == E0 ? 2 : 1;
	t->sb.seq = 2;
	t->sb.table_digest = rm_table_digest(seqs, t->sb.geo.nr_logical);
	CHECK_EQ(md_write_sbs(&t->md, &t->sb), 0);
}

static size_t count(const struct md_pool *p, enum md_what what, int err)
{
	size_t i, n = 0;

	for (i = 0; i < p->nr_problems; i++)
		n += p->problems[i].what == what &&
		     (err < 0 || p->problems[i].err == err);
	return n;
}

static const struct md_problem *find(const struct md_pool *p,
				     enum md_what what)
{
	size_t i;

	for (i = 0; i < p->nr_problems; i++)
		if (p->problems[i].what == what)
			return &p->problems[i];
	return NULL;
}

static bool entries_equal(const struct img *t)
{
	return t->pool.entries &&
	       rm_entries_equal(t->pool.entries, t->entries,
				t->sb.geo.nr_blocks);
}

UNIT_TEST(offline_clean_pool)
{
	struct img t;

	img_format(&t);
	img_load(&t, 0);
	CHECK(t.pool.have_sb);
	CHECK_EQ(t.pool.worst, 0);
	CHECK_EQ(t.pool.nr_problems, 0);
	CHECK_EQ(t.pool.sb.seq, 1);
	CHECK_EQ(t.pool.next_seq, 2);
	CHECK(!memcmp(t.pool.devs, t.devs, sizeof(t.devs)));
	CHECK(!memcmp(t.pool.names, t.names, sizeof(t.names)));
	CHECK(entries_equal(&t));
	CHECK_EQ(t.pool.counts[RM_ENTRY_MAPPED], 201);
	CHECK_EQ(t.pool.counts[RM_ENTRY_PENDING], 1);
	CHECK_EQ(t.pool.counts[RM_ENTRY_RETIRED], 1);
	CHECK_EQ(t.pool.counts[RM_ENTRY_FREE], t.sb.geo.nr_blocks - 203);
	CHECK_EQ(t.pool.slots[E1], rm_slot_index(0, 0));
	img_close(&t);
}

UNIT_TEST(offline_writer_clears_the_other_pair)
{
	uint8_t b[RM_MD_BLOCK_SIZE], zero[RM_MD_BLOCK_SIZE] = { 0 };
	struct img t;
	uint32_t l;
	int bad = 0;

	img_format(&t);
	for (l = 0; l < t.sb.geo.nr_logical; l++) {
		blk_read(&t, slot_block(&t, l, 1, 0), b);
		bad += !!memcmp(b, zero, sizeof(b));
		blk_read(&t, slot_block(&t, l, 1, 1), b);
		bad += !!memcmp(b, zero, sizeof(b));
	}
	CHECK_EQ(bad, 0);
	img_close(&t);
}

UNIT_TEST(offline_one_superblock_copy_bad)
{
	const struct md_problem *p;
	struct img t;

	img_format(&t);
	corrupt(&t, 5);
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 1);
	p = find(&t.pool, MD_SB_BAD);
	CHECK(p && p->index == 5 && p->err == RM_E_CSUM);
	CHECK(p && p->sev == MD_DAMAGED);
	CHECK_EQ(t.pool.worst, MD_DAMAGED);
	CHECK_EQ(t.pool.sb_copy, 0);
	CHECK(entries_equal(&t));
	img_close(&t);
}

UNIT_TEST(offline_all_superblock_copies_bad)
{
	struct img t;
	uint32_t c;

	img_format(&t);
	for (c = 0; c < RM_SB_COPIES; c++)
		corrupt(&t, c);
	img_load(&t, 0);
	CHECK(!t.pool.have_sb);
	CHECK_EQ(count(&t.pool, MD_SB_BAD, RM_E_CSUM), RM_SB_COPIES);
	CHECK_EQ(count(&t.pool, MD_SB_NONE, -1), 1);
	CHECK_EQ(t.pool.worst, MD_FATAL);
	CHECK(!t.pool.entries);
	img_close(&t);
}

UNIT_TEST(offline_stale_superblock_copy)
{
	uint8_t old[RM_MD_BLOCK_SIZE];
	const struct md_problem *p;
	struct img t;

	img_format(&t);
	blk_read(&t, 2, old);
	commit_seq2(&t);
	blk_write(&t, 2, old);	/* copy 2 missed the second commit */
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 1);
	p = find(&t.pool, MD_SB_STALE);
	CHECK(p && p->index == 2 && p->seq == 1 && p->expect == 2);
	CHECK_EQ(t.pool.worst, MD_DAMAGED);
	CHECK_EQ(t.pool.sb.seq, 2);
	CHECK(entries_equal(&t));
	img_close(&t);
}

UNIT_TEST(offline_one_table_copy_bad)
{
	const struct md_problem *p;
	struct img t;

	img_format(&t);
	corrupt(&t, slot_block(&t, E1, 0, 0));
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 1);
	p = find(&t.pool, MD_SLOT_TWIN);
	CHECK(p && p->index == E1 && p->slot == 0 && p->err == RM_E_CSUM);
	CHECK(p && p->blocknr == slot_block(&t, E1, 0, 0));
	CHECK_EQ(t.pool.worst, MD_DAMAGED);
	CHECK_EQ(t.pool.slots[E1], rm_slot_index(0, 1));
	CHECK(entries_equal(&t));
	img_close(&t);
}

UNIT_TEST(offline_twin_with_other_contents)
{
	const struct md_problem *p;
	struct img t;

	uint8_t b[RM_MD_BLOCK_SIZE];

	img_format(&t);
	/* Same seq, both checksums good, copy 1 holds one more entry. */
	blk_read(&t, slot_block(&t, E0, 0, 1), b);
	rm_entry_encode(b + RM_TB_HDR_SIZE + 9 * RM_ENTRY_SIZE,
			&(struct rm_entry){ 99, DEV_A, RM_ENTRY_MAPPED, 0 });
	rm_md_seal(b, RM_TB_OFF_CSUM);
	blk_write(&t, slot_block(&t, E0, 0, 1), b);
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 1);
	p = find(&t.pool, MD_SLOT_TWIN);
	CHECK(p && p->index == E0 && p->slot == 1 && p->err == 0);
	CHECK_EQ(t.pool.worst, MD_DAMAGED);
	img_close(&t);
}

UNIT_TEST(offline_chosen_pair_lost_falls_back_digest_mismatch)
{
	struct img t;

	img_format(&t);
	commit_seq2(&t);
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 0);
	CHECK_EQ(t.pool.slots[E0], rm_slot_index(1, 0));
	CHECK_EQ(t.pool.entries[3].main_block, 4242);

	corrupt(&t, slot_block(&t, E0, 1, 0));
	corrupt(&t, slot_block(&t, E0, 1, 1));
	img_load(&t, 0);
	/* The older pair is taken; the digest tells it is not committed. */
	CHECK_EQ(t.pool.slots[E0], rm_slot_index(0, 0));
	CHECK_EQ(t.pool.entries[3].main_block, 1003);
	CHECK_EQ(count(&t.pool, MD_DIGEST, RM_E_DIGEST), 1);
	CHECK_EQ(count(&t.pool, MD_NO_COPY, -1), 0);
	CHECK_EQ(t.pool.worst, MD_FATAL);
	img_close(&t);
}

UNIT_TEST(offline_table_block_without_any_copy)
{
	const struct md_problem *p;
	struct img t;

	img_format(&t);
	corrupt(&t, slot_block(&t, E1, 0, 0));
	corrupt(&t, slot_block(&t, E1, 0, 1));
	img_load(&t, 0);
	p = find(&t.pool, MD_NO_COPY);
	CHECK(p && p->index == E1 && p->sev == MD_FATAL);
	CHECK_EQ(t.pool.slots[E1], MD_NO_SLOT);
	/* No digest verdict on top: a lost logical makes it meaningless. */
	CHECK_EQ(count(&t.pool, MD_DIGEST, -1), 0);
	CHECK_EQ(t.pool.worst, MD_FATAL);
	/* Every other logical is still loaded. */
	CHECK_EQ(t.pool.entries[1].dev_id, DEV_B);
	CHECK_EQ(t.pool.entries[600 - 3].main_block, 1597);
	img_close(&t);
}

UNIT_TEST(offline_interrupted_commit_and_salvage)
{
	struct img t;

	img_format(&t);
	/* Logical 2 written with seq 2, the superblocks never were. */
	t.entries[301] = (struct rm_entry){ 0, DEV_A, RM_ENTRY_MAPPED, 0 };
	write_logical(&t, E1, 1, 2);
	img_load(&t, 0);
	CHECK_EQ(count(&t.pool, MD_SLOT_AHEAD, -1), 2);
	CHECK_EQ(t.pool.nr_problems, 2);
	CHECK_EQ(t.pool.worst, MD_DAMAGED);
	CHECK_EQ(t.pool.entries[301].state, RM_ENTRY_FREE);
	CHECK_EQ(t.pool.max_seen, 2);
	CHECK_EQ(t.pool.next_seq, 3);

	/* Without the committed pair, salvage takes the uncommitted one. */
	corrupt(&t, slot_block(&t, E1, 0, 0));
	corrupt(&t, slot_block(&t, E1, 0, 1));
	img_load(&t, 0);
	CHECK_EQ(t.pool.worst, MD_FATAL);
	CHECK_EQ(t.pool.entries[301].state, RM_ENTRY_FREE);
	img_load(&t, MD_LOAD_SALVAGE);
	CHECK_EQ(count(&t.pool, MD_NO_COPY, -1), 1);
	CHECK_EQ(t.pool.entries[301].state, RM_ENTRY_MAPPED);
	CHECK_EQ(t.pool.slots[E1], rm_slot_index(1, 0));
	img_close(&t);
}

UNIT_TEST(offline_digest_mismatch)
{
	const struct md_problem *p;
	struct img t;

	img_format(&t);
	t.sb.table_digest ^= 1;
	CHECK_EQ(md_write_sbs(&t.md, &t.sb), 0);
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 1);
	p = find(&t.pool, MD_DIGEST);
	CHECK(p && p->expect == t.sb.table_digest && p->sev == MD_FATAL);
	img_close(&t);
}

/* Records the encoders accept but rm_pool_check() rejects. */
UNIT_TEST(offline_bad_records)
{
	const struct md_problem *p;
	struct img t;

	img_format(&t);
	t.entries[10] = (struct rm_entry){ 1000, DEV_A, RM_ENTRY_PENDING, 0 };
	t.entries[11] = (struct rm_entry){ 256, DEV_B, RM_ENTRY_MAPPED, 0 };
	t.entries[13] = (struct rm_entry){ 5, 42, RM_ENTRY_MAPPED, 0 };
	write_logical(&t, E0, 0, 1);
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 3);
	CHECK_EQ(t.pool.worst, MD_FATAL);
	CHECK_EQ(count(&t.pool, MD_RECORD, RM_E_DUP_MAP), 1);
	CHECK_EQ(count(&t.pool, MD_RECORD, RM_E_RANGE), 1);
	CHECK_EQ(count(&t.pool, MD_RECORD, RM_E_UNKNOWN_DEV), 1);
	for (size_t i = 0; i < t.pool.nr_problems; i++) {
		p = &t.pool.problems[i];
		if (p->err == RM_E_DUP_MAP)
			CHECK(p->rec.index == 10 && p->rec.other == 0);
		if (p->err == RM_E_RANGE)
			CHECK(p->rec.index == 11 && p->rec.dev_id == DEV_B);
		if (p->err == RM_E_UNKNOWN_DEV)
			CHECK(p->rec.index == 13 && p->rec.dev_id == 42);
	}
	img_close(&t);
}

/* Bytes only a damaged or foreign writer leaves, sealed with a good crc. */
UNIT_TEST(offline_bad_bytes_in_records)
{
	struct img t;

	img_format(&t);
	patch_payload(&t, E0, 5 * RM_ENTRY_SIZE + RM_ENTRY_OFF_STATE, 9);
	patch_payload(&t, E0, 6 * RM_ENTRY_SIZE + RM_ENTRY_OFF_RESERVED, 1);
	patch_payload(&t, 0, 3 * RM_DEV_RECORD_SIZE + RM_DEV_OFF_RESERVED, 1);
	img_load(&t, 0);
	CHECK_EQ(count(&t.pool, MD_RECORD, RM_E_STATE), 1);
	CHECK_EQ(count(&t.pool, MD_RECORD, RM_E_RESERVED), 2);
	CHECK_EQ(t.pool.nr_problems, 3);
	CHECK_EQ(t.pool.worst, MD_FATAL);
	img_close(&t);
}

UNIT_TEST(offline_duplicate_device_and_tail)
{
	uint32_t last;
	struct img t;

	img_format(&t);
	/* The encoder refuses duplicates: made by hand. */
	patch_payload(&t, 0, 9 * RM_DEV_RECORD_SIZE + RM_DEV_OFF_FLAGS, 1);
	patch_payload(&t, 0, 9 * RM_DEV_RECORD_SIZE + RM_DEV_OFF_ID, DEV_A);
	last = (uint32_t)t.sb.geo.nr_logical - 1;
	patch_payload(&t, last, RM_MD_BLOCK_SIZE - RM_TB_HDR_SIZE - 1, 1);
	img_load(&t, 0);
	CHECK_EQ(count(&t.pool, MD_RECORD, RM_E_DUP_DEV), 1);
	CHECK_EQ(count(&t.pool, MD_PAYLOAD, RM_E_UNUSED), 1);
	CHECK_EQ(t.pool.nr_problems, 2);
	img_close(&t);
}

UNIT_TEST(offline_labels)
{
	const struct md_problem *p;
	struct img t;

	img_format(&t);
	/* The encoder takes a label whose device record is not in use. */
	t.names[5] = (struct rm_name){ 77, RM_NAME_F_IN_USE, "gone", "x" };
	write_logical(&t, LABELS, 0, 1);
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 1);
	p = find(&t.pool, MD_RECORD);
	CHECK(p && p->err == RM_E_ORPHAN_NAME && p->rec.obj == RM_OBJ_NAME);
	CHECK(p && p->rec.index == 5 && p->rec.dev_id == 77);
	CHECK_EQ(t.pool.worst, MD_FATAL);

	/* A space in a label, sealed with a good checksum. */
	t.names[5] = (struct rm_name){ 0 };
	write_logical(&t, LABELS, 0, 1);
	patch_payload(&t, LABELS, 3 * RM_NAME_RECORD_SIZE + RM_NAME_OFF_NAME + 2,
		      ' ');
	img_load(&t, 0);
	CHECK_EQ(t.pool.nr_problems, 1);
	CHECK_EQ(count(&t.pool, MD_RECORD, RM_E_NAME), 1);
	/* Bytes after the 3 records of the last label block. */
	patch_payload(&t, RM_NAME_LOGICALS, 3 * RM_NAME_RECORD_SIZE + 9, 1);
	img_load(&t, 0);
	p = find(&t.pool, MD_PAYLOAD);
	CHECK(p && p->index == RM_NAME_LOGICALS && p->err == RM_E_UNUSED);
	img_close(&t);
}

/* The record-level verdict equals the kernel's payload decoders'. */
UNIT_TEST(offline_records_agree_with_payload_decoders)
{
	struct rm_entry e[RM_ENTRIES_PER_BLOCK];
	uint8_t b[RM_MD_BLOCK_SIZE];
	int refused = 0, missed = 0, damaged = 0;
	unsigned int off;
	struct img t;

	img_format(&t);
	/* Entries 4 (retired) and 5 (free): every byte, one bit. */
	for (off = 4 * RM_ENTRY_SIZE; off < 6 * RM_ENTRY_SIZE; off++) {
		blk_read(&t, slot_block(&t, E0, 0, 0), b);
		patch_payload(&t, E0, off, b[RM_TB_HDR_SIZE + off] ^ 0x10);
		img_load(&t, 0);
		blk_read(&t, slot_block(&t, E0, 0, 0), b);
		if (rm_entries_decode(b, RM_ENTRIES_PER_BLOCK, e)) {
			refused++;
			missed += t.pool.worst != MD_FATAL;
		}
		damaged += t.pool.worst == MD_DAMAGED;
		patch_payload(&t, E0, off, b[RM_TB_HDR_SIZE + off] ^ 0x10);
	}
	/* A free or retired entry with any bit set is refused. */
	CHECK_EQ(refused, 2 * RM_ENTRY_SIZE);
	CHECK_EQ(missed, 0);
	CHECK_EQ(damaged, 0);
	img_load(&t, 0);
	CHECK_EQ(t.pool.worst, 0);
	img_close(&t);
}

UNIT_TEST(offline_device_smaller_than_pool)
{
	const struct md_problem *p;
	struct img t;

	img_format(&t);
	CHECK_EQ(ftruncate(t.fd, (IMG_SECTORS - 8) << 9), 0);
	md_close(&t.md);
	CHECK_EQ(md_open(&t.md, t.path, O_RDONLY), 0);
	img_load(&t, 0);
	p = find(&t.pool, MD_DEV_SMALL);
	CHECK(p && p->seq == IMG_SECTORS - 8 && p->expect == IMG_SECTORS);
	CHECK_EQ(t.pool.worst, MD_FATAL);
	img_close(&t);
}

UNIT_TEST(offline_probe_and_open)
{
	struct md_image a, b;
	struct rm_sb sb;
	struct img t;

	img_format(&t);
	CHECK_EQ(md_probe(&t.md, &sb), RM_SB_COPIES);
	CHECK_EQ(sb.seq, 1);
	corrupt(&t, 0);
	CHECK_EQ(md_probe(&t.md, &sb), RM_SB_COPIES - 1);
	CHECK_EQ(md_open(&a, "/", O_RDONLY), -ENOTBLK);
	CHECK_EQ(md_open(&a, "/nonexistent/x", O_RDONLY), -ENOENT);
	CHECK_EQ(md_open(&a, t.path, O_RDONLY), 0);
	CHECK_EQ(md_open(&b, t.path, O_RDONLY), 0);
	CHECK_EQ(md_overlap(&a, &b), 1);
	CHECK_EQ(md_overlap(&a, &t.md), 1);
	CHECK_EQ(a.bytes, (uint64_t)IMG_SECTORS << 9);
	md_close(&a);
	md_close(&b);
	img_close(&t);
}

UNIT_TEST(offline_problem_text)
{
	struct md_problem p = {
		.what = MD_RECORD, .err = RM_E_DUP_MAP,
		.rec = { RM_E_DUP_MAP, RM_OBJ_ENTRY, 10, 3, 7, 1000 },
	};
	char s[256];

	md_problem_text(&p, s, sizeof(s));
	CHECK(strstr(s, "entry 10 (dev 7, main block 1000): ") == s);
	CHECK(strstr(s, rm_strerror(RM_E_DUP_MAP)));
	CHECK(strstr(s, ", first in entry 3"));
	p = (struct md_problem){
		.what = MD_SB_BAD, .err = MD_E_IO, .index = 4,
	};
	md_problem_text(&p, s, sizeof(s));
	CHECK(!strcmp(s, "superblock copy 4: read error"));
}

UNIT_TEST(offline_json_writer)
{
	char *out = NULL;
	size_t len = 0;
	struct js j;
	FILE *f = open_memstream(&out, &len);

	js_init(&j, f);
	js_open(&j, NULL, '{');
	js_str(&j, "s", "a\"b\\c\n\x01");
	js_open(&j, "list", '[');
	js_open_flat(&j, NULL, '{');
	js_u64(&j, "n", 18446744073709551615ull);
	js_bool(&j, "b", true);
	js_null(&j, "z");
	js_close(&j, '}');
	js_close(&j, ']');
	js_open(&j, "empty", '[');
	js_close(&j, ']');
	js_close(&j, '}');
	js_end(&j);
	fclose(f);
	CHECK(!strcmp(out, "{\n  \"s\": \"a\\\"b\\\\c\\u000a\\u0001\",\n"
		      "  \"list\": [\n"
		      "    {\"n\": 18446744073709551615, \"b\": true, \"z\": null}\n"
		      "  ],\n  \"empty\": []\n}\n"));
	free(out);
}

static void count_report(void *ctx, const struct rm_problem *p)
{
	int *n = ctx;

	n[p->err]++;
}

/* What remap_repair does with the records: drop the bad, write, load. */
UNIT_TEST(offline_drop_bad_records_then_write_clean)
{
	int seen[RM_E_MAX] = { 0 };
	struct md_records rec;
	struct img t, out;
	int64_t dropped;

	img_format(&t);
	t.entries[10] = (struct rm_entry){ 1000, DEV_A, RM_ENTRY_PENDING, 0 };
	t.entries[11] = (struct rm_entry){ 256, DEV_B, RM_ENTRY_MAPPED, 0 };
	t.entries[13] = (struct rm_entry){ 5, 42, RM_ENTRY_MAPPED, 0 };
	t.entries[14] = (struct rm_entry){ 6, 43, RM_ENTRY_MAPPED, 0 };
	/* A device record with unknown flags takes its entries with it. */
	t.devs[4].flags |= 0x100;
	/* A label without its device record, one with a bad string. */
	t.names[20] = (struct rm_name){ 20, RM_NAME_F_IN_USE, "x", "y" };
	t.names[4] = (struct rm_name){ DEV_B, RM_NAME_F_IN_USE, "b b", "y" };
	rec = img_records(&t);
	dropped = md_drop_bad_records(&t.sb, &rec, count_report, seen);
	/* 4 entries, dev record 4 and its entry 1, 2 labels */
	CHECK_EQ(dropped, 8);
	CHECK_EQ(seen[RM_E_ORPHAN_NAME], 1);
	CHECK_EQ(seen[RM_E_NAME], 1);
	CHECK_EQ(t.names[20].flags, 0);
	CHECK_EQ(t.names[4].flags, 0);
	CHECK_EQ(t.names[3].flags, RM_NAME_F_IN_USE);
	CHECK_EQ(seen[RM_E_DUP_MAP], 1);
	CHECK_EQ(seen[RM_E_RANGE], 1);
	CHECK_EQ(seen[RM_E_UNKNOWN_DEV], 3);
	CHECK_EQ(seen[RM_E_FLAGS], 1);
	CHECK_EQ(t.entries[10].state, RM_ENTRY_FREE);
	CHECK_EQ(t.entries[1].state, RM_ENTRY_FREE);
	CHECK_EQ(t.entries[0].main_block, 1000);	/* the first is kept */
	CHECK_EQ(t.devs[4].flags, 0);
	CHECK_EQ(t.devs[3].dev_id, DEV_A);
	CHECK_EQ(md_drop_bad_records(&t.sb, &rec, NULL, NULL), 0);

	img_open(&out, IMG_SECTORS);
	out.sb = t.sb;
	out.sb.seq = 9;
	rec = img_records(&t);
	CHECK_EQ(md_write_pool(&out.md, &out.sb, &rec), 0);
	out.entries = t.entries;
	t.entries = NULL;
	img_load(&out, 0);
	CHECK_EQ(out.pool.worst, 0);
	CHECK_EQ(out.pool.sb.seq, 9);
	CHECK(!memcmp(out.pool.sb.uuid, t.sb.uuid, RM_UUID_SIZE));
	CHECK(entries_equal(&out));
	CHECK(!memcmp(out.pool.names, t.names, sizeof(t.names)));
	img_close(&out);
	img_close(&t);
}

/* json_put_string() of s equals want. */
static int json_is(const char *s, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ok;

	if (!f)
		return 0;
	json_put_string(f, s);
	fclose(f);
	ok = !strcmp(buf, want);
	if (!ok)
		fprintf(stderr, "json of '%s': got %s, want %s\n", s, buf, want);
	free(buf);
	return ok;
}

UNIT_TEST(json_strings_pass_utf8_and_escape_the_rest)
{
	CHECK(json_is("plain /dev/sdb", "\"plain /dev/sdb\""));
	CHECK(json_is("q\"b\\t\tn\n\x7f", "\"q\\\"b\\\\t\\u0009n\\u000a\\u007f\""));
	/* é, €, U+10348, U+10FFFF: as they are. */
	CHECK(json_is("donn\xc3\xa9\xe2\x82\xac\xf0\x90\x8d\x88\xf4\x8f\xbf\xbf",
		      "\"donn\xc3\xa9\xe2\x82\xac\xf0\x90\x8d\x88\xf4\x8f\xbf\xbf\""));
	/* Latin-1 é, a cut sequence, overlong '/', a surrogate, > U+10FFFF. */
	CHECK(json_is("\xe9t\xc3", "\"\\u00e9t\\u00c3\""));
	CHECK(json_is("\xc0\xaf", "\"\\u00c0\\u00af\""));
	CHECK(json_is("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\""));
	CHECK(json_is("\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\""));
	CHECK(json_is("\xe2\x82", "\"\\u00e2\\u0082\""));
}
