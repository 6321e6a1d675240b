// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* Unit tests of common/rm_format.c and rm_layout.c: codecs and validation. */
#include <stdlib.h>
#include "unit.h"
#include "../../common/rm_platform.h"
#include "../../common/rm_endian.h"
#include "../../common/rm_format.h"

#define MiB_SECTORS	(1024ull * 1024 / 512)

static uint8_t blk[RM_MD_BLOCK_SIZE];

/* A valid superblock for a 64 MiB spare with 4 KiB blocks. */
static void make_sb(struct rm_sb *sb)
{
	unsigned int i;

	memset(sb, 0, sizeof(*sb));
	sb->seq = 42;
	for (i = 0; i < RM_UUID_SIZE; i++)
		sb->uuid[i] = (uint8_t)(0xa0 + i);
	sb->table_digest = 0x12345678;
	if (rm_geometry_compute(64 * MiB_SECTORS, 4096, &sb->geo))
		abort();
}

static void sb_block(const struct rm_sb *sb, uint32_t copy)
{
	if (rm_sb_encode(blk, sb, copy))
		abort();
}

/* Overwrite a field and fix the checksum, so the field check is reached. */
static void poke32(unsigned int off, uint32_t v, unsigned int csum_off)
{
	rm_put_le32(blk + off, v);
	rm_md_seal(blk, csum_off);
}

static void poke64(unsigned int off, uint64_t v, unsigned int csum_off)
{
	rm_put_le64(blk + off, v);
	rm_md_seal(blk, csum_off);
}

static void poke8(unsigned int off, uint8_t v, unsigned int csum_off)
{
	blk[off] = v;
	rm_md_seal(blk, csum_off);
}

static bool geo_equal(const struct rm_geometry *a,
		      const struct rm_geometry *b)
{
	return a->block_size == b->block_size &&
	       a->dev_sectors == b->dev_sectors &&
	       a->table_start == b->table_start &&
	       a->nr_logical == b->nr_logical &&
	       a->data_start == b->data_start && a->nr_blocks == b->nr_blocks;
}


static int sb_decode_at(uint64_t blocknr)
{
	struct rm_sb out;

	return rm_sb_decode(blk, blocknr, &out);
}

UNIT_TEST(endian_helpers)
{
	uint8_t b[8];

	rm_put_le64(b, 0x0102030405060708ull);
	CHECK_EQ(b[0], 0x08);
	CHECK_EQ(b[7], 0x01);
	CHECK(rm_get_le64(b) == 0x0102030405060708ull);
	CHECK_EQ(rm_get_le32(b + 4), 0x01020304);
	CHECK_EQ(rm_get_le16(b), 0x0708);
	rm_put_le32(b, 0xdeadbeef);
	CHECK_EQ(b[0], 0xef);
	rm_put_le16(b, 0xfffe);
	CHECK_EQ(rm_get_le16(b), 0xfffe);
}

UNIT_TEST(format_constants)
{
	CHECK_EQ(RM_MAX_DEVS, 63);
	CHECK_EQ(RM_ENTRIES_PER_BLOCK, 252);
	CHECK(RM_TB_HDR_SIZE + RM_MAX_DEVS * RM_DEV_RECORD_SIZE <=
	      RM_MD_BLOCK_SIZE);
	CHECK(RM_TB_HDR_SIZE + RM_ENTRIES_PER_BLOCK * RM_ENTRY_SIZE <=
	      RM_MD_BLOCK_SIZE);
	/* "RMTB" on disk */
	rm_put_le32(blk, RM_TB_MAGIC);
	CHECK(!memcmp(blk, "RMTB", 4));
}

UNIT_TEST(strerror_all)
{
	int i;

	for (i = 0; i < RM_E_MAX; i++) {
		CHECK(rm_strerror(i) != NULL);
		CHECK(!strcmp(rm_strerror(i), rm_strerror(-i)));
	}
	CHECK(!strcmp(rm_strerror(-RM_E_CSUM), "checksum mismatch"));
	CHECK(!strcmp(rm_strerror(RM_E_MAX), "unknown error"));
	CHECK(!strcmp(rm_strerror(-1000), "unknown error"));
}

UNIT_TEST(sb_roundtrip_all_copies)
{
	struct rm_sb sb, out;
	uint32_t c;

	make_sb(&sb);
	for (c = 0; c < RM_SB_COPIES; c++) {
		sb_block(&sb, c);
		CHECK(!memcmp(blk, "DMREMAP1", 8));
		CHECK_EQ(rm_sb_decode(blk, c, &out), 0);
		CHECK_EQ(out.version, RM_FORMAT_VERSION);
		CHECK_EQ(out.copy, c);
		CHECK_EQ(out.flags, 0);
		CHECK(out.seq == 42);
		CHECK(!memcmp(out.uuid, sb.uuid, RM_UUID_SIZE));
		CHECK_EQ(out.table_digest, 0x12345678);
		CHECK(geo_equal(&out.geo, &sb.geo));
		CHECK_EQ(rm_get_le64(blk + RM_SB_OFF_BLOCKNR), c);
	}
	CHECK_EQ(rm_sb_encode(blk, &sb, RM_SB_COPIES), -RM_E_INVAL);
}

UNIT_TEST(sb_every_byte_flip_detected)
{
	struct rm_sb sb;
	unsigned int i;
	int ret, bad = 0;

	make_sb(&sb);
	sb_block(&sb, 3);
	for (i = 0; i < RM_MD_BLOCK_SIZE; i++) {
		blk[i] ^= 0x10;
		ret = sb_decode_at(3);
		if (ret != (i < 8 ? -RM_E_MAGIC : -RM_E_CSUM))
			bad++;
		blk[i] ^= 0x10;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(sb_decode_at(3), 0);
}

UNIT_TEST(sb_field_errors)
{
	struct rm_sb sb;

	make_sb(&sb);
#define SB_CASE(poke, expect)					\
	do {							\
		sb_block(&sb, 2);				\
		poke;						\
		CHECK_EQ(sb_decode_at(2), expect);		\
	} while (0)
	SB_CASE(blk[0] = 'X', -RM_E_MAGIC);
	SB_CASE(poke32(RM_SB_OFF_CSUM, 0, RM_SB_OFF_CSUM + 1000), -RM_E_CSUM);
	SB_CASE(poke32(RM_SB_OFF_VERSION, 1, RM_SB_OFF_CSUM), -RM_E_VERSION);
	SB_CASE(poke32(RM_SB_OFF_VERSION, 3, RM_SB_OFF_CSUM), -RM_E_VERSION);
	SB_CASE(poke32(RM_SB_OFF_VERSION, 0, RM_SB_OFF_CSUM), -RM_E_VERSION);
	SB_CASE(poke32(RM_SB_OFF_COPY, 3, RM_SB_OFF_CSUM), -RM_E_LOCATION);
	SB_CASE(poke32(RM_SB_OFF_COPY, 0xffffffff, RM_SB_OFF_CSUM),
		-RM_E_LOCATION);
	SB_CASE(poke64(RM_SB_OFF_BLOCKNR, 3, RM_SB_OFF_CSUM), -RM_E_LOCATION);
	SB_CASE(poke64(RM_SB_OFF_BLOCKNR, 2ull << 32 | 2, RM_SB_OFF_CSUM),
		-RM_E_LOCATION);
	SB_CASE(poke32(RM_SB_OFF_FLAGS, 1, RM_SB_OFF_CSUM), -RM_E_FLAGS);
	SB_CASE(poke32(RM_SB_OFF_FLAGS, 0x80000000u, RM_SB_OFF_CSUM),
		-RM_E_FLAGS);
	SB_CASE(poke8(RM_SB_HDR_END, 1, RM_SB_OFF_CSUM), -RM_E_RESERVED);
	SB_CASE(poke8(RM_MD_BLOCK_SIZE - 1, 1, RM_SB_OFF_CSUM), -RM_E_RESERVED);
	SB_CASE(poke64(RM_SB_OFF_SEQ, 0, RM_SB_OFF_CSUM), -RM_E_SEQ);
	SB_CASE(poke32(RM_SB_OFF_BLOCK_SIZE, 3000, RM_SB_OFF_CSUM),
		-RM_E_BLOCK_SIZE);
	SB_CASE(poke32(RM_SB_OFF_BLOCK_SIZE, 256, RM_SB_OFF_CSUM),
		-RM_E_BLOCK_SIZE);
	SB_CASE(poke32(RM_SB_OFF_BLOCK_SIZE, 2u << 20, RM_SB_OFF_CSUM),
		-RM_E_BLOCK_SIZE);
	SB_CASE(poke32(RM_SB_OFF_BLOCK_SIZE, 0, RM_SB_OFF_CSUM),
		-RM_E_BLOCK_SIZE);
	SB_CASE(poke64(RM_SB_OFF_NR_LOGICAL, sb.geo.nr_logical + 1,
		       RM_SB_OFF_CSUM), -RM_E_GEOMETRY);
	SB_CASE(poke64(RM_SB_OFF_NR_BLOCKS, sb.geo.nr_blocks + 1,
		       RM_SB_OFF_CSUM), -RM_E_GEOMETRY);
	SB_CASE(poke64(RM_SB_OFF_DEV_SECTORS, sb.geo.dev_sectors - 1,
		       RM_SB_OFF_CSUM), -RM_E_GEOMETRY);
	SB_CASE(poke64(RM_SB_OFF_TABLE_START, 7, RM_SB_OFF_CSUM),
		-RM_E_GEOMETRY);
	SB_CASE(poke64(RM_SB_OFF_TABLE_START, 9, RM_SB_OFF_CSUM),
		-RM_E_GEOMETRY);	/* table would run into the data */
	SB_CASE(poke64(RM_SB_OFF_DATA_START, sb.geo.data_start - 8,
		       RM_SB_OFF_CSUM), -RM_E_GEOMETRY);
	SB_CASE(poke64(RM_SB_OFF_DATA_START, sb.geo.data_start + 1,
		       RM_SB_OFF_CSUM), -RM_E_GEOMETRY);
	/* and the original decodes */
	SB_CASE((void)0, 0);
#undef SB_CASE
	sb_block(&sb, 2);
	CHECK_EQ(sb_decode_at(3), -RM_E_LOCATION);	/* read from elsewhere */
	CHECK_EQ(sb_decode_at(2ull << 32 | 2), -RM_E_LOCATION);
}

UNIT_TEST(geometry_check_overflow)
{
	struct rm_geometry g, h;

	CHECK_EQ(rm_geometry_compute(RM_U64_MAX, RM_MAX_BLOCK_SIZE, &g), 0);
	CHECK(g.nr_blocks == RM_MAX_BLOCKS);
	CHECK_EQ(rm_geometry_check(&g), 0);

	h = g;
	h.table_start = RM_U64_MAX - 3;
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
	h = g;
	h.table_start = RM_U64_MAX / 8 - 4 * g.nr_logical + 1;
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
	h = g;
	h.data_start = RM_U64_MAX & ~((uint64_t)2047);
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
	h = g;
	h.nr_blocks = RM_U64_MAX;
	h.nr_logical = RM_U64_MAX;
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
	h = g;
	h.nr_blocks = RM_MAX_BLOCKS + 1;
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
	h = g;
	h.nr_logical = RM_U64_MAX;
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
	h = g;
	h.nr_blocks = RM_MIN_DATA_BLOCKS - 1;
	h.nr_logical = rm_nr_logical_for(h.nr_blocks);
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
	h = g;
	h.dev_sectors = 0;
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
	/* data area that ends exactly at U64_MAX is fine */
	h = g;
	h.data_start = RM_U64_MAX - ((g.nr_blocks << 11) + 2047);
	CHECK_EQ(rm_geometry_check(&h), 0);
	h.data_start += 2048;
	CHECK_EQ(rm_geometry_check(&h), -RM_E_GEOMETRY);
}

/* Independent check that g is the largest pool fitting on dev_sectors. */
static void check_maximal(const struct rm_geometry *g)
{
	uint64_t bs = g->block_size / 512, n = g->nr_blocks + 1;
	uint64_t md = (8 + 4 * (6 + (n + 251) / 252)) * 8;
	uint64_t ds = (md + bs - 1) / bs * bs;

	CHECK_EQ(rm_geometry_check(g), 0);
	CHECK(g->data_start >= rm_md_end_sector(g));
	CHECK(g->data_start - rm_md_end_sector(g) < bs);
	CHECK(g->data_start + g->nr_blocks * bs <= g->dev_sectors);
	CHECK(ds + n * bs > g->dev_sectors || n > RM_MAX_BLOCKS);
}

UNIT_TEST(geometry_compute_sizes)
{
	struct rm_geometry g;
	uint32_t bs;

	CHECK_EQ(rm_geometry_compute(0, 4096, &g), -RM_E_TOO_SMALL);
	CHECK_EQ(rm_geometry_compute(100, 4096, &g), -RM_E_TOO_SMALL);
	/* 36 md blocks (8 sb + 7 logicals * 4) + 16 data blocks = 416 */
	CHECK_EQ(rm_geometry_compute(415, 4096, &g), -RM_E_TOO_SMALL);
	CHECK_EQ(rm_geometry_compute(416, 4096, &g), 0);
	CHECK(g.nr_blocks == 16 && g.nr_logical == 7 && g.data_start == 288);
	check_maximal(&g);

	CHECK_EQ(rm_geometry_compute(64 * MiB_SECTORS, 4096, &g), 0);
	CHECK(g.table_start == 8);
	/* 8 + 4 * 70 md blocks + 16096 data blocks = 16384 blocks */
	CHECK(g.nr_blocks == 16096);
	CHECK(g.nr_logical == 70);
	CHECK(g.data_start == 288 * 8);
	check_maximal(&g);

	for (bs = 512; bs <= RM_MAX_BLOCK_SIZE; bs <<= 1) {
		CHECK_EQ(rm_geometry_compute(64 * MiB_SECTORS, bs, &g), 0);
		check_maximal(&g);
		CHECK_EQ(rm_geometry_compute(1ull << 31, bs, &g), 0); /* 1T */
		check_maximal(&g);
	}
	/* 1 TiB, 4 KiB blocks: 2^28 blocks minus the metadata */
	CHECK_EQ(rm_geometry_compute(1ull << 31, 4096, &g), 0);
	/* 2^28 = 8 + 4 * 1048582 md blocks + 264241120 data blocks */
	CHECK(g.nr_blocks == 264241120ull);
	CHECK(g.nr_logical == 1048582ull);
	CHECK(g.data_start == (8 + 4 * 1048582ull) * 8);
	check_maximal(&g);

	CHECK_EQ(rm_geometry_compute(1ull << 31, 4095, &g), -RM_E_BLOCK_SIZE);
	CHECK_EQ(rm_geometry_compute(1ull << 31, 0, &g), -RM_E_BLOCK_SIZE);
	CHECK_EQ(rm_geometry_compute(1ull << 31, 256, &g), -RM_E_BLOCK_SIZE);
	CHECK_EQ(rm_geometry_compute(1ull << 31, 2u << 20, &g),
		 -RM_E_BLOCK_SIZE);
	/* 1 MiB blocks need 16 MiB of data plus an aligned metadata area */
	CHECK_EQ(rm_geometry_compute(17 * MiB_SECTORS - 1, RM_MAX_BLOCK_SIZE,
				     &g), -RM_E_TOO_SMALL);
	CHECK_EQ(rm_geometry_compute(17 * MiB_SECTORS, RM_MAX_BLOCK_SIZE, &g),
		 0);
	CHECK(g.nr_blocks == 16 && g.data_start == 2048);
}

UNIT_TEST(block_size_helpers)
{
	CHECK(rm_block_size_valid(512));
	CHECK(rm_block_size_valid(1u << 20));
	CHECK(!rm_block_size_valid(0));
	CHECK(!rm_block_size_valid(1536));
	CHECK(!rm_block_size_valid(0x80000000u));
	CHECK_EQ(rm_block_sector_shift(512), 0);
	CHECK_EQ(rm_block_sector_shift(4096), 3);
	CHECK_EQ(rm_block_sector_shift(1u << 20), 11);
	CHECK(rm_nr_logical_for(0) == 6);
	CHECK(rm_nr_logical_for(1) == 7);
	CHECK(rm_nr_logical_for(252) == 7);
	CHECK(rm_nr_logical_for(253) == 8);
	CHECK(rm_nr_logical_for(RM_MAX_BLOCKS) == 6 + 17043522ull);
}

UNIT_TEST(slot_placement)
{
	struct rm_geometry g = { 4096, 1 << 20, 8, 5, 0, 0 };
	uint32_t l, lo;
	unsigned int s, so;
	uint64_t b;
	int seen[8 + 20] = { 0 };

	/* table_start + c * (nr_logical * 2) + L * 2 + p */
	CHECK(rm_slot_blocknr(&g, 0, rm_slot_index(0, 0)) == 8);
	CHECK(rm_slot_blocknr(&g, 0, rm_slot_index(1, 0)) == 9);
	CHECK(rm_slot_blocknr(&g, 0, rm_slot_index(0, 1)) == 18);
	CHECK(rm_slot_blocknr(&g, 4, rm_slot_index(1, 1)) == 27);
	for (l = 0; l < 5; l++) {
		for (s = 0; s < RM_MD_SLOTS; s++) {
			b = rm_slot_blocknr(&g, l, s);
			CHECK(b >= 8 && b < 28);
			seen[b]++;
			CHECK_EQ(rm_slot_locate(&g, b, &lo, &so), 0);
			CHECK_EQ(lo, l);
			CHECK_EQ(so, s);
		}
	}
	for (b = 8; b < 28; b++)
		CHECK_EQ(seen[b], 1);
	CHECK_EQ(rm_slot_locate(&g, 7, &lo, &so), -RM_E_LOCATION);
	CHECK_EQ(rm_slot_locate(&g, 28, &lo, &so), -RM_E_LOCATION);
	CHECK_EQ(rm_slot_locate(&g, RM_U64_MAX, &lo, &so), -RM_E_LOCATION);
	CHECK(rm_md_sector(9) == 72);
	CHECK(rm_sb_blocknr(5) == 5);
}

UNIT_TEST(entry_indexing)
{
	struct rm_sb sb;

	make_sb(&sb);	/* 16096 blocks: 63 full logicals + 220 */
	CHECK_EQ(RM_NAMES_PER_BLOCK, 15);
	CHECK_EQ(RM_NAME_LOGICALS, 5);
	CHECK_EQ(rm_logical_kind(0), RM_TB_DEVTABLE);
	CHECK_EQ(rm_logical_kind(1), RM_TB_NAMES);
	CHECK_EQ(rm_logical_kind(5), RM_TB_NAMES);
	CHECK_EQ(rm_logical_kind(6), RM_TB_ENTRIES);
	CHECK_EQ(rm_name_logical(0), 1);
	CHECK_EQ(rm_name_logical(14), 1);
	CHECK_EQ(rm_name_logical(15), 2);
	CHECK_EQ(rm_name_logical(RM_MAX_DEVS - 1), 5);
	CHECK_EQ(rm_name_first(2), 15);
	CHECK_EQ(rm_entry_logical(0), 6);
	CHECK_EQ(rm_entry_logical(251), 6);
	CHECK_EQ(rm_entry_logical(252), 7);
	CHECK_EQ(rm_entry_offset(253), 1);
	CHECK_EQ(rm_entries_in_logical(&sb.geo, 0), 0);
	CHECK_EQ(rm_entries_in_logical(&sb.geo, 1), 0);
	CHECK_EQ(rm_entries_in_logical(&sb.geo, 5), 0);
	CHECK_EQ(rm_entries_in_logical(&sb.geo, 6), 252);
	CHECK_EQ(rm_entries_in_logical(&sb.geo, 68), 252);
	CHECK_EQ(rm_entries_in_logical(&sb.geo, 69), 220);
	CHECK_EQ(rm_entries_in_logical(&sb.geo, 70), 0);
	CHECK_EQ(rm_entries_in_logical(&sb.geo, 0xffffffff), 0);
}

#define EL RM_FIRST_ENTRY_LOGICAL	/* first entries logical */

/* ---- Table blocks --------------------------------------------------------- */

static void make_hdr(const struct rm_sb *sb, struct rm_tblock_hdr *h,
		     uint32_t logical, unsigned int slot, uint64_t seq)
{
	memset(h, 0, sizeof(*h));
	h->kind = rm_logical_kind(logical);
	h->logical = logical;
	h->blocknr = rm_slot_blocknr(&sb->geo, logical, slot);
	h->seq = seq;
	memcpy(h->uuid, sb->uuid, RM_UUID_SIZE);
}

static void make_devs(struct rm_dev *devs)
{
	memset(devs, 0, sizeof(struct rm_dev) * RM_MAX_DEVS);
	devs[0] = (struct rm_dev){ 5, RM_DEV_F_IN_USE, 1 << 21, 17, 2, 1700000000 };
	devs[3] = (struct rm_dev){ 0, RM_DEV_F_IN_USE, 8, 0, 0, 0 };
	devs[62] = (struct rm_dev){ 0xffffffff, RM_DEV_F_IN_USE, RM_U64_MAX,
				    RM_U64_MAX, RM_U64_MAX, RM_U64_MAX };
}

static void make_entries(struct rm_entry *e, uint32_t n)
{
	uint32_t i;

	memset(e, 0, sizeof(*e) * n);
	for (i = 0; i < n; i++) {
		e[i].state = (uint8_t)(i % 4);
		if (e[i].state == RM_ENTRY_MAPPED ||
		    e[i].state == RM_ENTRY_PENDING) {
			e[i].dev_id = 5;
			e[i].main_block = 1000 + i;
		}
	}
}

UNIT_TEST(devtable_roundtrip)
{
	struct rm_sb sb;
	struct rm_tblock_hdr h, out;
	struct rm_dev devs[RM_MAX_DEVS], got[RM_MAX_DEVS];
	unsigned int s;

	make_sb(&sb);
	make_devs(devs);
	for (s = 0; s < RM_MD_SLOTS; s++) {
		make_hdr(&sb, &h, 0, s, 40 + s);
		CHECK_EQ(rm_devtable_encode(blk, &h, devs), 0);
		CHECK_EQ(rm_tblock_decode_hdr(blk, &sb, h.blocknr, &out), 0);
		CHECK(out.kind == h.kind && out.logical == h.logical &&
		      out.blocknr == h.blocknr && out.seq == h.seq &&
		      !memcmp(out.uuid, h.uuid, RM_UUID_SIZE));
		CHECK_EQ(rm_devtable_decode(blk, got), 0);
		CHECK(!memcmp(got, devs, sizeof(devs)));
	}
	CHECK_EQ(rm_dev_find(devs, 5), 0);
	CHECK_EQ(rm_dev_find(devs, 0), 3);
	CHECK_EQ(rm_dev_find(devs, 0xffffffff), 62);
	CHECK_EQ(rm_dev_find(devs, 6), -1);
}

UNIT_TEST(entries_roundtrip_and_relocate)
{
	struct rm_sb sb;
	struct rm_tblock_hdr h, out;
	struct rm_entry e[RM_ENTRIES_PER_BLOCK], got[RM_ENTRIES_PER_BLOCK];
	uint32_t last, n;
	unsigned int s;

	make_sb(&sb);
	last = (uint32_t)sb.geo.nr_logical - 1;
	n = rm_entries_in_logical(&sb.geo, last);
	make_entries(e, RM_ENTRIES_PER_BLOCK);

	make_hdr(&sb, &h, EL, 0, 7);
	CHECK_EQ(rm_entries_encode(blk, &h, e, RM_ENTRIES_PER_BLOCK), 0);
	for (s = 0; s < RM_MD_SLOTS; s++) {
		rm_tblock_relocate(blk, rm_slot_blocknr(&sb.geo, EL, s));
		CHECK_EQ(rm_tblock_decode_hdr(blk, &sb,
				rm_slot_blocknr(&sb.geo, EL, s), &out), 0);
		CHECK_EQ(out.logical, EL);
		CHECK_EQ(out.kind, RM_TB_ENTRIES);
		CHECK(out.seq == 7);
		CHECK_EQ(rm_entries_decode(blk, RM_ENTRIES_PER_BLOCK, got), 0);
		CHECK(rm_entries_equal(got, e, RM_ENTRIES_PER_BLOCK));
	}

	make_hdr(&sb, &h, last, 3, 9);
	CHECK_EQ(rm_entries_encode(blk, &h, e, n), 0);
	CHECK_EQ(rm_tblock_decode_hdr(blk, &sb, h.blocknr, &out), 0);
	CHECK_EQ(rm_entries_decode(blk, n, got), 0);
	CHECK(rm_entries_equal(got, e, n));
	/* the zero tail is only accepted for a count that covers it */
	CHECK_EQ(rm_entries_decode(blk, n - 1, got), -RM_E_UNUSED);
	CHECK_EQ(rm_entries_decode(blk, RM_ENTRIES_PER_BLOCK + 1, got),
		 -RM_E_INVAL);
}

UNIT_TEST(tblock_every_byte_flip_detected)
{
	struct rm_sb sb;
	struct rm_tblock_hdr h, out;
	struct rm_entry e[RM_ENTRIES_PER_BLOCK];
	unsigned int i;
	int ret, bad = 0;

	make_sb(&sb);
	make_entries(e, RM_ENTRIES_PER_BLOCK);
	make_hdr(&sb, &h, EL + 1, 1, 5);
	CHECK_EQ(rm_entries_encode(blk, &h, e, RM_ENTRIES_PER_BLOCK), 0);
	for (i = 0; i < RM_MD_BLOCK_SIZE; i++) {
		blk[i] ^= 0x01;
		ret = rm_tblock_decode_hdr(blk, &sb, h.blocknr, &out);
		if (ret != (i < 4 ? -RM_E_MAGIC : -RM_E_CSUM))
			bad++;
		blk[i] ^= 0x01;
	}
	CHECK_EQ(bad, 0);
}

UNIT_TEST(tblock_header_errors)
{
	struct rm_sb sb;
	struct rm_tblock_hdr h, out;
	struct rm_dev devs[RM_MAX_DEVS];
	uint64_t b0, b1;

	make_sb(&sb);
	make_devs(devs);
	make_hdr(&sb, &h, 0, 2, 5);
	b0 = h.blocknr;
	b1 = rm_slot_blocknr(&sb.geo, 1, 2);
#define TB_CASE(poke, at, expect)					\
	do {								\
		CHECK_EQ(rm_devtable_encode(blk, &h, devs), 0);		\
		poke;							\
		CHECK_EQ(rm_tblock_decode_hdr(blk, &sb, at, &out), expect); \
	} while (0)
	TB_CASE((void)0, b0, 0);
	TB_CASE(blk[1] ^= 1, b0, -RM_E_MAGIC);
	TB_CASE(poke32(RM_TB_OFF_CSUM, 0, RM_TB_OFF_CSUM + 100), b0,
		-RM_E_CSUM);
	TB_CASE((void)0, b0 + 1, -RM_E_LOCATION);	/* read elsewhere */
	TB_CASE(poke64(RM_TB_OFF_BLOCKNR, b0 + 1, RM_TB_OFF_CSUM), b0,
		-RM_E_LOCATION);
	/* a self-consistent block outside the table area */
	TB_CASE(rm_tblock_relocate(blk, 3), 3, -RM_E_LOCATION);
	TB_CASE(rm_tblock_relocate(blk, rm_md_end_sector(&sb.geo) / 8),
		rm_md_end_sector(&sb.geo) / 8, -RM_E_LOCATION);
	TB_CASE(rm_tblock_relocate(blk, RM_U64_MAX), RM_U64_MAX,
		-RM_E_LOCATION);
	/* a device table found in an entry block's slot */
	TB_CASE(rm_tblock_relocate(blk, b1), b1, -RM_E_LOGICAL);
	TB_CASE(poke32(RM_TB_OFF_LOGICAL, 1, RM_TB_OFF_CSUM), b0,
		-RM_E_LOGICAL);
	TB_CASE(poke32(RM_TB_OFF_KIND, RM_TB_ENTRIES, RM_TB_OFF_CSUM), b0,
		-RM_E_KIND);
	TB_CASE(poke32(RM_TB_OFF_KIND, 0, RM_TB_OFF_CSUM), b0, -RM_E_KIND);
	TB_CASE(poke32(RM_TB_OFF_KIND, 77, RM_TB_OFF_CSUM), b0, -RM_E_KIND);
	TB_CASE(poke8(RM_TB_OFF_UUID + 15, 0, RM_TB_OFF_CSUM), b0,
		-RM_E_UUID);
	TB_CASE(poke8(RM_TB_OFF_RESERVED, 1, RM_TB_OFF_CSUM), b0,
		-RM_E_RESERVED);
	TB_CASE(poke8(RM_TB_HDR_SIZE - 1, 1, RM_TB_OFF_CSUM), b0,
		-RM_E_RESERVED);
	TB_CASE(poke64(RM_TB_OFF_SEQ, 0, RM_TB_OFF_CSUM), b0, -RM_E_SEQ);
#undef TB_CASE
	/* an entries block claiming logical 0's slot */
	make_hdr(&sb, &h, EL, 0, 5);
	CHECK_EQ(rm_entries_encode(blk, &h, NULL, 0), 0);
	poke32(RM_TB_OFF_LOGICAL, 0, RM_TB_OFF_CSUM);
	rm_tblock_relocate(blk, b0);
	CHECK_EQ(rm_tblock_decode_hdr(blk, &sb, b0, &out), -RM_E_KIND);
}

static uint8_t *dev_rec(unsigned int i)
{
	return blk + RM_TB_HDR_SIZE + i * RM_DEV_RECORD_SIZE;
}

static uint8_t *entry_rec(unsigned int i)
{
	return blk + RM_TB_HDR_SIZE + i * RM_ENTRY_SIZE;
}

UNIT_TEST(devtable_payload_errors)
{
	struct rm_sb sb;
	struct rm_tblock_hdr h;
	struct rm_dev devs[RM_MAX_DEVS], got[RM_MAX_DEVS];

	make_sb(&sb);
	make_devs(devs);
	make_hdr(&sb, &h, 0, 0, 5);
#define DT_CASE(poke, expect)					\
	do {							\
		CHECK_EQ(rm_devtable_encode(blk, &h, devs), 0);	\
		poke;						\
		rm_md_seal(blk, RM_TB_OFF_CSUM);		\
		CHECK_EQ(rm_devtable_decode(blk, got), expect);	\
	} while (0)
	DT_CASE((void)0, 0);
	DT_CASE(dev_rec(0)[RM_DEV_OFF_RESERVED] = 1, -RM_E_RESERVED);
	DT_CASE(dev_rec(62)[63] = 1, -RM_E_RESERVED);
	DT_CASE(dev_rec(1)[RM_DEV_OFF_RESERVED + 5] = 1, -RM_E_RESERVED);
	DT_CASE(rm_put_le32(dev_rec(0) + RM_DEV_OFF_FLAGS, 3), -RM_E_FLAGS);
	DT_CASE(rm_put_le32(dev_rec(1) + RM_DEV_OFF_FLAGS, 2), -RM_E_FLAGS);
	DT_CASE(rm_put_le32(dev_rec(1) + RM_DEV_OFF_ID, 9), -RM_E_UNUSED);
	DT_CASE(dev_rec(1)[RM_DEV_OFF_LAST_PASS + 7] = 1, -RM_E_UNUSED);
	DT_CASE(rm_put_le32(dev_rec(3) + RM_DEV_OFF_ID, 5), -RM_E_DUP_DEV);
	/* not in use any more, but its fields are left: not zero */
	DT_CASE(rm_put_le32(dev_rec(0) + RM_DEV_OFF_FLAGS, 0), -RM_E_UNUSED);
#undef DT_CASE
	/* the encoder refuses what the decoder would */
	devs[4] = devs[0];
	CHECK_EQ(rm_devtable_encode(blk, &h, devs), -RM_E_DUP_DEV);
	devs[4].flags = 0;
	CHECK_EQ(rm_devtable_encode(blk, &h, devs), -RM_E_UNUSED);
	devs[4].flags = 4;
	CHECK_EQ(rm_devtable_encode(blk, &h, devs), -RM_E_FLAGS);
	make_devs(devs);
	h.kind = RM_TB_ENTRIES;
	CHECK_EQ(rm_devtable_encode(blk, &h, devs), -RM_E_KIND);
	h.kind = RM_TB_DEVTABLE;
	h.logical = 1;
	CHECK_EQ(rm_devtable_encode(blk, &h, devs), -RM_E_LOGICAL);
	h.logical = 0;
	h.seq = 0;
	CHECK_EQ(rm_devtable_encode(blk, &h, devs), -RM_E_SEQ);
}

UNIT_TEST(entries_payload_errors)
{
	struct rm_sb sb;
	struct rm_tblock_hdr h;
	struct rm_entry e[RM_ENTRIES_PER_BLOCK], got[RM_ENTRIES_PER_BLOCK];
	const uint32_t n = 100;

	make_sb(&sb);
	make_entries(e, n);
	make_hdr(&sb, &h, EL + 2, 0, 5);
#define EN_CASE(poke, expect)						\
	do {								\
		CHECK_EQ(rm_entries_encode(blk, &h, e, n), 0);		\
		poke;							\
		rm_md_seal(blk, RM_TB_OFF_CSUM);			\
		CHECK_EQ(rm_entries_decode(blk, n, got), expect);	\
	} while (0)
	EN_CASE((void)0, 0);
	EN_CASE(entry_rec(1)[RM_ENTRY_OFF_STATE] = 4, -RM_E_STATE);
	EN_CASE(entry_rec(1)[RM_ENTRY_OFF_STATE] = 0xff, -RM_E_STATE);
	EN_CASE(entry_rec(1)[RM_ENTRY_OFF_FLAGS] = 1, -RM_E_FLAGS);
	EN_CASE(entry_rec(1)[RM_ENTRY_OFF_RESERVED + 1] = 1, -RM_E_RESERVED);
	EN_CASE(entry_rec(0)[RM_ENTRY_OFF_DEV] = 1, -RM_E_ENTRY);   /* FREE */
	EN_CASE(entry_rec(3)[RM_ENTRY_OFF_MAIN + 7] = 1, -RM_E_ENTRY); /* RET */
	EN_CASE(entry_rec(n)[RM_ENTRY_OFF_STATE] = 1, -RM_E_UNUSED);
	EN_CASE(blk[RM_MD_BLOCK_SIZE - 1] = 1, -RM_E_UNUSED);
	/* MAPPED/PENDING may refer to dev 0, block 0 */
	EN_CASE(memset(entry_rec(1), 0, 12), 0);
#undef EN_CASE
	e[5].state = 9;
	CHECK_EQ(rm_entries_encode(blk, &h, e, n), -RM_E_STATE);
	e[5].state = RM_ENTRY_FREE;
	e[5].main_block = 1;
	CHECK_EQ(rm_entries_encode(blk, &h, e, n), -RM_E_ENTRY);
	make_entries(e, n);
	CHECK_EQ(rm_entries_encode(blk, &h, e, RM_ENTRIES_PER_BLOCK + 1),
		 -RM_E_INVAL);
	h.kind = RM_TB_DEVTABLE;
	CHECK_EQ(rm_entries_encode(blk, &h, e, n), -RM_E_KIND);
	h.kind = RM_TB_ENTRIES;
	h.logical = 0;
	CHECK_EQ(rm_entries_encode(blk, &h, e, n), -RM_E_LOGICAL);
}

/* ---- Load rule, digest, seq ------------------------------------------------ */

static int pick(bool v0, uint64_t s0, bool v1, uint64_t s1, bool v2,
		uint64_t s2, bool v3, uint64_t s3, uint64_t sb_seq,
		struct rm_pick *p)
{
	struct rm_slot_state s[RM_MD_SLOTS] = {
		{ v0, s0 }, { v1, s1 }, { v2, s2 }, { v3, s3 },
	};

	return rm_pick_slot(s, sb_seq, p);
}

UNIT_TEST(pick_slot_rules)
{
	struct rm_pick p;

	/* slots: 0 = pair0/copy0, 1 = pair0/copy1, 2 = pair1/copy0, ... */
	CHECK_EQ(pick(1, 5, 1, 5, 1, 7, 1, 7, 10, &p), 0);
	CHECK(p.slot == 2 && p.seq == 7 && p.max_seq == 7 && !p.rewrite);
	CHECK_EQ(rm_slot_pair(p.slot), 1);

	/* the newer pair is from an uncommitted (interrupted) commit */
	CHECK_EQ(pick(1, 5, 1, 5, 1, 11, 1, 11, 10, &p), 0);
	CHECK(p.slot == 0 && p.seq == 5 && p.max_seq == 11 && p.rewrite);

	/* seq == sb seq is committed */
	CHECK_EQ(pick(1, 5, 1, 5, 1, 10, 1, 10, 10, &p), 0);
	CHECK(p.slot == 2 && p.seq == 10 && !p.rewrite);

	/* one copy of the current pair lost: use the other, rewrite */
	CHECK_EQ(pick(1, 5, 1, 5, 0, 0, 1, 7, 10, &p), 0);
	CHECK(p.slot == 3 && p.seq == 7 && p.rewrite);

	/* copies disagree: the newer wins, redundancy is gone */
	CHECK_EQ(pick(1, 9, 1, 3, 0, 0, 0, 0, 10, &p), 0);
	CHECK(p.slot == 0 && p.seq == 9 && p.rewrite);

	/* ties: the lowest slot wins */
	CHECK_EQ(pick(0, 0, 1, 4, 1, 4, 1, 4, 10, &p), 0);
	CHECK(p.slot == 1 && p.seq == 4 && p.rewrite);	/* twin 0 invalid */
	CHECK_EQ(pick(1, 4, 1, 4, 1, 4, 1, 4, 10, &p), 0);
	CHECK(p.slot == 0 && !p.rewrite);

	/* invalid slots' seqs are ignored, even huge ones */
	CHECK_EQ(pick(1, 2, 1, 2, 0, RM_U64_MAX, 0, 9, 10, &p), 0);
	CHECK(p.slot == 0 && p.max_seq == 2 && !p.rewrite);

	/* nothing qualifies */
	CHECK_EQ(pick(0, 1, 0, 1, 0, 1, 0, 1, 10, &p), -RM_E_NO_VALID);
	CHECK(p.max_seq == 0);
	CHECK_EQ(pick(1, 11, 0, 0, 1, 12, 0, 0, 10, &p), -RM_E_NO_VALID);
	CHECK(p.max_seq == 12);
}

UNIT_TEST(sb_pick_and_next_seq)
{
	struct rm_slot_state s[RM_SB_COPIES] = {
		{ 1, 5 }, { 0, 99 }, { 1, 6 }, { 1, 6 },
		{ 1, 2 }, { 0, 0 }, { 1, 6 }, { 0, 0 },
	};
	uint64_t next = 0;

	CHECK_EQ(rm_sb_pick(s, RM_SB_COPIES), 2);
	CHECK_EQ(rm_sb_pick(s, 2), 0);
	CHECK_EQ(rm_sb_pick(s + 5, 1), -RM_E_NO_VALID);
	CHECK_EQ(rm_sb_pick(s, 0), -RM_E_NO_VALID);

	CHECK_EQ(rm_next_seq(6, 3, &next), 0);
	CHECK(next == 7);
	CHECK_EQ(rm_next_seq(6, 11, &next), 0);
	CHECK(next == 12);
	CHECK_EQ(rm_next_seq(RM_SEQ_LAST - 1, 1, &next), 0);
	CHECK(next == RM_SEQ_LAST);
	next = 1;
	CHECK_EQ(rm_next_seq(RM_SEQ_LAST, 1, &next), -RM_E_SEQ);
	CHECK_EQ(rm_next_seq(1, RM_SEQ_LAST, &next), -RM_E_SEQ);
	CHECK_EQ(rm_next_seq(RM_U64_MAX - 1, 1, &next), -RM_E_SEQ);
	CHECK_EQ(rm_next_seq(RM_U64_MAX, 1, &next), -RM_E_SEQ);
	CHECK_EQ(rm_next_seq(1, RM_U64_MAX, &next), -RM_E_SEQ);
	CHECK(next == 1);
}

UNIT_TEST(table_digest)
{
	uint64_t seqs[4] = { 1, 7, 0x0102030405060708ull, 7 };
	uint8_t raw[32];
	uint32_t d;
	unsigned int i;

	for (i = 0; i < 4; i++)
		rm_put_le64(raw + 8 * i, seqs[i]);
	CHECK_EQ(rm_table_digest(seqs, 4), ~rm_crc32c(~0u, raw, 32));
	d = RM_DIGEST_INIT;
	for (i = 0; i < 4; i++)
		d = rm_digest_update(d, seqs[i]);
	CHECK_EQ(rm_digest_final(d), rm_table_digest(seqs, 4));
	/* order and every value matter */
	seqs[3] = 1;
	seqs[0] = 7;
	CHECK(rm_table_digest(seqs, 4) != ~rm_crc32c(~0u, raw, 32));
	CHECK(rm_table_digest(seqs, 3) != rm_table_digest(seqs, 4));
	CHECK_EQ(rm_table_digest(NULL, 0), 0);
}

UNIT_TEST(crc32c_zeros)
{
	static uint8_t zeros[1000];
	uint32_t c = 0x12345678u;
	unsigned int len;

	/* Both ways: fed zero bytes, and x^(8 len) by squaring. */
	for (len = 0; len <= sizeof(zeros); len += len < 80 ? 1 : 37)
		CHECK_EQ(rm_crc32c_zeros(c, len), rm_crc32c(c, zeros, len));
	CHECK_EQ(rm_crc32c_zeros(0, 1ull << 40), 0);
	/* Zero extension composes: a + b zeros is a, then b. */
	CHECK_EQ(rm_crc32c_zeros(c, (1ull << 35) + 12345),
		 rm_crc32c_zeros(rm_crc32c_zeros(c, 1ull << 35), 12345));
}

/*
 * The digest after changes, from the digest before, equals the digest
 * computed over the whole table again: random tables and change sets,
 * dense and sparse, at the first and last blocks, and none.
 */
UNIT_TEST(digest_delta)
{
	static uint64_t seqs[3000];
	uint64_t rng = 0x2545f4914f6cdd1dull, n, l;
	struct rm_digest_delta dd;
	unsigned int round;
	uint32_t before, after;

	for (round = 0; round < 300; round++) {
		n = 1 + rng % (sizeof(seqs) / sizeof(seqs[0]));
		for (l = 0; l < n; l++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			seqs[l] = rng % 5 ? rng % 1000 : rng;
		}
		before = rm_table_digest(seqs, n);
		rm_digest_delta_init(&dd);
		for (l = 0; l < n; l++) {
			uint64_t next = seqs[l] + 1 + round;

			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			/*
			 * Every block, none, or 1 in 2^(round % 12), with the
			 * first and last blocks in some rounds only (zeros
			 * before the first change, and after the last).
			 */
			if (round % 50 == 1 || (round % 50 &&
			    ((l == 0 && round % 3 == 0) ||
			     (l == n - 1 && round % 4 == 0) ||
			     !(rng % (1u << (round % 12)))))) {
				rm_digest_delta_add(&dd, l, seqs[l], next);
				seqs[l] = next;
			}
		}
		after = rm_digest_final(rm_digest_delta_apply(&dd, ~before, n));
		CHECK_EQ(after, rm_table_digest(seqs, n));
		if (!dd.next)
			CHECK_EQ(after, before);
		else
			CHECK(after != before);
	}
	/* Only the first of many, only one in the middle. */
	for (n = 0; n < 3000; n++)
		seqs[n] = n;
	for (l = 0; l < 3000; l += 1499) {
		before = rm_table_digest(seqs, 3000);
		rm_digest_delta_init(&dd);
		rm_digest_delta_add(&dd, l, seqs[l], 77);
		seqs[l] = 77;
		after = rm_digest_final(rm_digest_delta_apply(&dd, ~before, 3000));
		CHECK_EQ(after, rm_table_digest(seqs, 3000));
	}
}

/* ---- Device labels --------------------------------------------------------- */

static void make_name(struct rm_name *n, uint32_t dev_id, const char *name,
		      const char *locator)
{
	memset(n, 0, sizeof(*n));
	n->dev_id = dev_id;
	n->flags = RM_NAME_F_IN_USE;
	strcpy(n->name, name);
	strcpy(n->locator, locator);
}

UNIT_TEST(label_validity)
{
	char s[RM_NAME_LEN];

	memset(s, 0, sizeof(s));
	CHECK(!rm_label_valid(s, sizeof(s)));		/* empty */
	strcpy(s, "data0");
	CHECK(rm_label_valid(s, sizeof(s)));
	s[7] = 'x';					/* garbage after NUL */
	CHECK(!rm_label_valid(s, sizeof(s)));
	memset(s, 0, sizeof(s));
	strcpy(s, "a b");
	CHECK(!rm_label_valid(s, sizeof(s)));
	strcpy(s, "tab\there");
	CHECK(!rm_label_valid(s, sizeof(s)));
	s[0] = (char)0x80;
	CHECK(!rm_label_valid(s, sizeof(s)));
	memset(s, 'x', sizeof(s));			/* no NUL */
	CHECK(!rm_label_valid(s, sizeof(s)));
	s[sizeof(s) - 1] = 0;				/* 127 chars */
	CHECK(rm_label_valid(s, sizeof(s)));
}

UNIT_TEST(names_roundtrip_and_check)
{
	static struct rm_name names[RM_MAX_DEVS], got[RM_MAX_DEVS];
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_tblock_hdr h, out;
	struct rm_sb sb;
	uint32_t l;

	make_sb(&sb);
	memset(names, 0, sizeof(names));
	memset(got, 0, sizeof(got));
	memset(devs, 0, sizeof(devs));
	make_name(&names[0], 7, "data0", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4");
	make_name(&names[16], 9, "home", "PARTUUID=0a1b2c3d-01");
	make_name(&names[RM_MAX_DEVS - 1], 3, "last", "/dev/vdc");
	for (l = 1; l <= RM_NAME_LOGICALS; l++) {
		make_hdr(&sb, &h, l, 1, 4);
		CHECK_EQ(rm_names_encode(blk, &h, names), 0);
		CHECK_EQ(rm_tblock_decode_hdr(blk, &sb, h.blocknr, &out), 0);
		CHECK_EQ(out.kind, RM_TB_NAMES);
		CHECK_EQ(rm_names_decode(blk, l, got), 0);
	}
	CHECK(!memcmp(names, got, sizeof(names)));

	/* records past RM_MAX_DEVS in the last names logical stay zero */
	make_hdr(&sb, &h, RM_NAME_LOGICALS, 0, 4);
	CHECK_EQ(rm_names_encode(blk, &h, names), 0);
	blk[RM_MD_BLOCK_SIZE - 1] = 1;
	CHECK_EQ(rm_names_decode(blk, RM_NAME_LOGICALS, got), -RM_E_UNUSED);
	/* a bad string in a record */
	make_hdr(&sb, &h, 1, 0, 4);
	CHECK_EQ(rm_names_encode(blk, &h, names), 0);
	blk[RM_TB_HDR_SIZE + RM_NAME_OFF_NAME + 2] = ' ';
	CHECK_EQ(rm_names_decode(blk, 1, got), -RM_E_NAME);
	blk[RM_TB_HDR_SIZE + RM_NAME_OFF_NAME + 2] = 't';
	blk[RM_TB_HDR_SIZE + RM_NAME_OFF_FLAGS] = 2;
	CHECK_EQ(rm_names_decode(blk, 1, got), -RM_E_FLAGS);
	/* an unused record with contents */
	CHECK_EQ(rm_names_encode(blk, &h, names), 0);
	blk[RM_TB_HDR_SIZE + RM_NAME_RECORD_SIZE + RM_NAME_OFF_LOCATOR] = 'x';
	CHECK_EQ(rm_names_decode(blk, 1, got), -RM_E_UNUSED);
	/* wrong logical for the kind; bad labels refused by the encoder */
	CHECK_EQ(rm_names_decode(blk, 0, got), -RM_E_LOGICAL);
	CHECK_EQ(rm_names_decode(blk, EL, got), -RM_E_LOGICAL);
	names[1].flags = RM_NAME_F_IN_USE;
	CHECK_EQ(rm_names_encode(blk, &h, names), -RM_E_NAME);
	memset(&names[1], 0, sizeof(names[1]));

	/* labels must belong to the in-use record at the same index */
	devs[0] = (struct rm_dev){ 7, RM_DEV_F_IN_USE, 100, 0, 0, 0 };
	devs[16] = (struct rm_dev){ 9, RM_DEV_F_IN_USE, 100, 0, 0, 0 };
	devs[RM_MAX_DEVS - 1] = (struct rm_dev){ 3, RM_DEV_F_IN_USE, 1, 0, 0, 0 };
	CHECK_EQ(rm_names_check(devs, names, NULL, NULL), 0);
	devs[16].dev_id = 10;
	memset(&devs[0], 0, sizeof(devs[0]));
	CHECK_EQ(rm_names_check(devs, names, NULL, NULL), 2);
}

UNIT_TEST(tblock_encode_decode_every_kind)
{
	static struct rm_name names[RM_MAX_DEVS], gnames[RM_MAX_DEVS];
	static struct rm_entry e[16096], ge[16096];
	struct rm_dev devs[RM_MAX_DEVS], gdevs[RM_MAX_DEVS];
	struct rm_tblock_hdr h, out;
	struct rm_sb sb;
	uint32_t l;

	make_sb(&sb);
	CHECK(sb.geo.nr_blocks == 16096);
	memset(devs, 0, sizeof(devs));
	devs[2] = (struct rm_dev){ 4, RM_DEV_F_IN_USE, 1 << 20, 5, 1, 9 };
	make_name(&names[2], 4, "vol", "/dev/sdb");
	memset(e, 0, sizeof(e));
	e[0] = (struct rm_entry){ 12, 4, RM_ENTRY_MAPPED, 0 };
	e[16095] = (struct rm_entry){ 99, 4, RM_ENTRY_PENDING, 0 };
	memset(ge, 0xff, sizeof(ge));
	for (l = 0; l < sb.geo.nr_logical; l++) {
		memset(&h, 0, sizeof(h));
		h.logical = l;
		h.seq = 3;
		h.blocknr = rm_slot_blocknr(&sb.geo, l, 2);
		memcpy(h.uuid, sb.uuid, RM_UUID_SIZE);
		CHECK_EQ(rm_tblock_encode(blk, &h, &sb.geo, devs, names, e), 0);
		CHECK_EQ(h.kind, rm_logical_kind(l));
		CHECK_EQ(rm_tblock_decode_hdr(blk, &sb, h.blocknr, &out), 0);
		CHECK_EQ(rm_tblock_decode(blk, l, &sb.geo, gdevs, gnames, ge),
			 0);
	}
	CHECK(!memcmp(devs, gdevs, sizeof(devs)));
	CHECK(!memcmp(names, gnames, sizeof(names)));
	CHECK(rm_entries_equal(ge, e, 16096));
	h.logical = (uint32_t)sb.geo.nr_logical;
	CHECK_EQ(rm_tblock_encode(blk, &h, &sb.geo, devs, names, e),
		 -RM_E_LOGICAL);
	CHECK_EQ(rm_tblock_decode(blk, h.logical, &sb.geo, gdevs, gnames, ge),
		 -RM_E_LOGICAL);
}
