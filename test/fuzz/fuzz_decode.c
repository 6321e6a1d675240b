// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * libFuzzer target for the metadata decoders in common/.
 *
 * Input: up to two metadata blocks, zero-padded to RM_MD_BLOCK_SIZE each.
 * Block 0 goes to rm_sb_decode(); if it decodes, its geometry is checked
 * again and exercised, and block 1 goes through the table block header
 * decoder with that superblock and then through the payload decoder of its
 * kind.  Independently, both blocks go through the payload decoders, a
 * geometry built from raw input bytes through rm_geometry_check(), slot
 * states through rm_pick_slot(), and a small pool through rm_pool_check().
 * Any crash, sanitizer report or broken invariant (trap) is a bug.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icommon \
 *	test/fuzz/fuzz_decode.c common/\*.c -o build/fuzz_decode
 */
#include <stdlib.h>
#include "rm_platform.h"
#include "rm_endian.h"
#include "rm_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BS RM_MD_BLOCK_SIZE

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* Invariants a geometry that passed rm_geometry_check() must satisfy. */
static void exercise_geometry(const struct rm_geometry *g)
{
	uint64_t last, md_end = rm_md_end_sector(g);
	uint32_t l, nl = (uint32_t)g->nr_logical, logical;
	unsigned int s, slot;
	uint64_t total = 0;

	check(g->nr_logical <= RM_U32_MAX);
	check(md_end <= g->data_start);
	last = rm_slot_blocknr(g, nl - 1, RM_MD_SLOTS - 1);
	check(rm_md_sector(last) + RM_MD_BLOCK_SECTORS == md_end);
	for (l = 0; l < nl && l < 4; l++) {
		for (s = 0; s < RM_MD_SLOTS; s++) {
			check(!rm_slot_locate(g, rm_slot_blocknr(g, l, s),
					      &logical, &slot));
			check(logical == l && slot == s);
		}
	}
	for (l = nl - 1; l > 0 && l + 3 > nl; l--)
		total += rm_entries_in_logical(g, l);
	check(total <= g->nr_blocks);
	check(rm_entries_in_logical(g, nl) == 0);
	check(rm_slot_locate(g, g->table_start - 1, &logical, &slot) ==
	      -RM_E_LOCATION);
}

static void decode_table_block(const uint8_t *b, const struct rm_sb *sb)
{
	static struct rm_dev devs[RM_MAX_DEVS];
	static struct rm_name names[RM_MAX_DEVS];
	static struct rm_entry entries[RM_ENTRIES_PER_BLOCK];
	struct rm_tblock_hdr h;
	uint64_t blocknr = rm_get_le64(b + RM_TB_OFF_BLOCKNR);

	if (rm_tblock_decode_hdr(b, sb, blocknr, &h))
		return;
	check(h.logical < sb->geo.nr_logical && h.seq != 0);
	check(h.kind == rm_logical_kind(h.logical));
	if (h.kind == RM_TB_DEVTABLE)
		rm_devtable_decode(b, devs);
	else if (h.kind == RM_TB_NAMES)
		rm_names_decode(b, h.logical, names);
	else
		rm_entries_decode(b,
				  rm_entries_in_logical(&sb->geo, h.logical),
				  entries);
}

static void raw_geometry(const uint8_t *b)
{
	struct rm_geometry g;

	g.block_size = rm_get_le32(b + RM_SB_OFF_BLOCK_SIZE);
	g.dev_sectors = rm_get_le64(b + RM_SB_OFF_DEV_SECTORS);
	g.table_start = rm_get_le64(b + RM_SB_OFF_TABLE_START);
	g.nr_logical = rm_get_le64(b + RM_SB_OFF_NR_LOGICAL);
	g.data_start = rm_get_le64(b + RM_SB_OFF_DATA_START);
	g.nr_blocks = rm_get_le64(b + RM_SB_OFF_NR_BLOCKS);
	if (!rm_geometry_check(&g))
		exercise_geometry(&g);
	if (!rm_geometry_compute(g.dev_sectors, g.block_size, &g)) {
		check(!rm_geometry_check(&g));
		exercise_geometry(&g);
	}
}

static void pick(const uint8_t *b)
{
	struct rm_slot_state s[RM_SB_COPIES];
	struct rm_pick p;
	unsigned int i;
	uint64_t next;

	for (i = 0; i < RM_SB_COPIES; i++) {
		s[i].valid = b[i] & 1;
		s[i].seq = rm_get_le64(b + 8 + 8 * i) >> (b[i] & 0x3e);
	}
	if (!rm_pick_slot(s, rm_get_le64(b + 72), &p)) {
		check(p.slot < RM_MD_SLOTS && s[p.slot].valid);
		check(p.seq == s[p.slot].seq && p.seq <= p.max_seq);
	}
	i = (unsigned int)rm_sb_pick(s, RM_SB_COPIES);
	check(i < RM_SB_COPIES || (int)i == -RM_E_NO_VALID);
	rm_next_seq(p.max_seq, rm_get_le64(b + 80), &next);
}

/* A small pool whose entries and devices are raw input bytes. */
static void pool(const uint8_t *b, size_t len)
{
	struct rm_sb sb = { 0 };
	struct rm_dev devs[RM_MAX_DEVS] = { { 0 } };
	struct rm_entry *e;
	struct rm_check_key *k;
	uint64_t i, n;

	if (rm_geometry_compute(256 + (rm_get_le16(b) & 0x3fff), 512,
				&sb.geo))
		return;
	n = sb.geo.nr_blocks;
	e = calloc(n, sizeof(*e));
	k = calloc(n, sizeof(*k));
	for (i = 0; i < 4; i++)
		devs[i] = (struct rm_dev){ b[i + 2] & 7, b[i + 6] & 3,
					   b[i + 10], 0, 0, 0 };
	for (i = 0; i < n && 16 + (i + 1) * 4 <= len; i++)
		e[i] = (struct rm_entry){ b[16 + i * 4] & 31,
					  b[17 + i * 4] & 7,
					  b[18 + i * 4] & 7,
					  b[19 + i * 4] & 1 };
	check(rm_pool_check(&sb, devs, e, n, k, NULL, NULL) >= 0);
	free(e);
	free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t blk[2][BS];
	static struct rm_dev devs[RM_MAX_DEVS];
	static struct rm_name names[RM_MAX_DEVS];
	static struct rm_entry entries[RM_ENTRIES_PER_BLOCK];
	struct rm_sb sb;
	size_t n0 = size < BS ? size : BS;
	size_t n1 = size > BS ? (size - BS < BS ? size - BS : BS) : 0;
	uint64_t copy;

	memset(blk, 0, sizeof(blk));
	memcpy(blk[0], data, n0);
	memcpy(blk[1], data + n0, n1);

	copy = rm_get_le32(blk[0] + RM_SB_OFF_COPY) & 7;
	if (!rm_sb_decode(blk[0], copy, &sb)) {
		check(sb.copy == copy && sb.seq != 0);
		check(!rm_geometry_check(&sb.geo));
		exercise_geometry(&sb.geo);
		decode_table_block(blk[1], &sb);
		decode_table_block(blk[0], &sb);	/* never valid */
	}

	rm_devtable_decode(blk[0], devs);
	rm_devtable_decode(blk[1], devs);
	rm_entries_decode(blk[1], blk[0][0] % (RM_ENTRIES_PER_BLOCK + 2),
			  entries);
	raw_geometry(blk[0]);
	pick(blk[0]);
	pool(blk[0], n0);
	return 0;
}
