// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * mkseeds DIR - write a few valid encoded metadata inputs for fuzz_decode
 * into DIR: superblock copies alone, and a superblock followed by a device
 * table block or an entry block (full and partial), as fuzz_decode reads
 * them (block 0 = superblock, block 1 = table block).
 */
#include <stdio.h>
#include <stdlib.h>
#include "rm_platform.h"
#include "rm_format.h"

static uint8_t buf[2][RM_MD_BLOCK_SIZE];

static void put(const char *dir, const char *name, size_t nblocks)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, RM_MD_BLOCK_SIZE, nblocks, f) != nblocks ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void hdr(struct rm_tblock_hdr *h, const struct rm_sb *sb,
		uint32_t logical, unsigned int slot)
{
	memset(h, 0, sizeof(*h));
	h->kind = rm_logical_kind(logical);
	h->logical = logical;
	h->blocknr = rm_slot_blocknr(&sb->geo, logical, slot);
	h->seq = sb->seq;
	memcpy(h->uuid, sb->uuid, RM_UUID_SIZE);
}

int main(int argc, char **argv)
{
	struct rm_sb sb = { 0 };
	struct rm_tblock_hdr h;
	struct rm_dev devs[RM_MAX_DEVS] = { { 0 } };
	static struct rm_name names[RM_MAX_DEVS];
	struct rm_entry e[RM_ENTRIES_PER_BLOCK] = { { 0 } };
	uint32_t i, last;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	sb.seq = 9;
	memcpy(sb.uuid, "seed-uuid-012345", RM_UUID_SIZE);
	if (rm_geometry_compute(64 * 2048, 4096, &sb.geo))
		return 1;
	devs[0] = (struct rm_dev){ 5, RM_DEV_F_IN_USE, 1 << 21, 3, 1, 1 };
	devs[9] = (struct rm_dev){ 0, RM_DEV_F_IN_USE, 4096, 0, 0, 0 };
	names[9] = (struct rm_name){ .dev_id = 0, .flags = RM_NAME_F_IN_USE };
	strcpy(names[9].name, "data0");
	strcpy(names[9].locator, "/dev/disk/by-id/virtio-main0");
	for (i = 0; i < RM_ENTRIES_PER_BLOCK; i++) {
		e[i].state = (uint8_t)(i % 4);
		if (e[i].state == RM_ENTRY_MAPPED ||
		    e[i].state == RM_ENTRY_PENDING) {
			e[i].dev_id = 5;
			e[i].main_block = i * 3;
		}
	}

	rm_sb_encode(buf[0], &sb, 0);
	put(argv[1], "sb0", 1);
	rm_sb_encode(buf[0], &sb, 5);
	put(argv[1], "sb5", 1);

	rm_sb_encode(buf[0], &sb, 0);
	hdr(&h, &sb, 0, 1);
	if (rm_devtable_encode(buf[1], &h, devs))
		return 1;
	put(argv[1], "sb0-devtable", 2);

	hdr(&h, &sb, rm_name_logical(9), 1);
	if (rm_names_encode(buf[1], &h, names))
		return 1;
	put(argv[1], "sb0-names", 2);

	hdr(&h, &sb, RM_FIRST_ENTRY_LOGICAL, 2);
	if (rm_entries_encode(buf[1], &h, e, RM_ENTRIES_PER_BLOCK))
		return 1;
	put(argv[1], "sb0-entries", 2);

	last = (uint32_t)sb.geo.nr_logical - 1;
	hdr(&h, &sb, last, 3);
	if (rm_entries_encode(buf[1], &h, e,
			      rm_entries_in_logical(&sb.geo, last)))
		return 1;
	put(argv[1], "sb0-entries-last", 2);

	/*
	 * Damage the offline tools report, sealed with a good checksum so that
	 * the payload decoders see it: a bad entry state, a duplicate and an
	 * out-of-range mapping, a bad label string, a block from an
	 * interrupted commit (seq above the superblock's).
	 */
	hdr(&h, &sb, RM_FIRST_ENTRY_LOGICAL, 0);
	e[1].main_block = e[2].main_block;
	e[5].main_block = RM_U64_MAX;
	if (rm_entries_encode(buf[1], &h, e, RM_ENTRIES_PER_BLOCK))
		return 1;
	put(argv[1], "sb0-entries-dup-range", 2);
	buf[1][RM_TB_HDR_SIZE + 4 * RM_ENTRY_SIZE + RM_ENTRY_OFF_STATE] = 9;
	rm_md_seal(buf[1], RM_TB_OFF_CSUM);
	put(argv[1], "sb0-entries-bad-state", 2);

	hdr(&h, &sb, rm_name_logical(9), 0);
	if (rm_names_encode(buf[1], &h, names))
		return 1;
	buf[1][RM_TB_HDR_SIZE + (9 % RM_NAMES_PER_BLOCK) * RM_NAME_RECORD_SIZE +
	       RM_NAME_OFF_NAME + 2] = ' ';
	rm_md_seal(buf[1], RM_TB_OFF_CSUM);
	put(argv[1], "sb0-names-bad-label", 2);

	hdr(&h, &sb, 0, 3);
	h.seq = sb.seq + 1;
	if (rm_devtable_encode(buf[1], &h, devs))
		return 1;
	put(argv[1], "sb0-devtable-ahead", 2);

	sb.geo.block_size = 1u << 20;
	if (rm_geometry_compute(1ull << 40, sb.geo.block_size, &sb.geo))
		return 1;
	rm_sb_encode(buf[0], &sb, 7);
	put(argv[1], "sb7-1m-blocks", 1);
	return 0;
}
