// SPDX-License-Identifier: GPL-2.0-only
/* mdwrite.c - write a fresh pool; see mdwrite.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mdwrite.h"

/* Logicals encoded per write: 2 blocks (both pairs) each, per copy. */
#define MD_WBATCH	64u

int md_write_clear_sbs(struct md_image *img)
{
	uint8_t *buf = md_alloc_blocks(RM_SB_COPIES);
	int r;

	if (!buf)
		return -ENOMEM;
	r = md_pwrite(img, buf, RM_SB_COPIES * RM_MD_BLOCK_SIZE,
		      rm_sb_blocknr(0) * RM_MD_BLOCK_SIZE);
	free(buf);
	return r ? r : md_sync(img);
}

static int md_encode_logical(uint8_t *blk, const struct rm_sb *sb, uint32_t l,
			     const struct rm_dev devs[RM_MAX_DEVS],
			     const struct rm_entry *entries)
{
	struct rm_tblock_hdr hdr = {
		.kind = l ? RM_TB_ENTRIES : RM_TB_DEVTABLE,
		.logical = l,
		.blocknr = rm_slot_blocknr(&sb->geo, l, rm_slot_index(0, 0)),
		.seq = sb->seq,
	};

	memcpy(hdr.uuid, sb->uuid, RM_UUID_SIZE);
	if (!l)
		return rm_devtable_encode(blk, &hdr, devs);
	return rm_entries_encode(blk, &hdr, entries + md_first_entry(l),
				 rm_entries_in_logical(&sb->geo, l));
}

/* Copy c of both pairs of logicals l..l+n-1: 2n consecutive blocks. */
static int md_write_run(struct md_image *img, uint8_t *buf,
			const struct rm_sb *sb, uint32_t l, uint32_t n,
			unsigned int c, const struct rm_dev devs[RM_MAX_DEVS],
			const struct rm_entry *entries)
{
	const struct rm_geometry *g = &sb->geo;
	size_t len = 2 * (size_t)n * RM_MD_BLOCK_SIZE;
	uint32_t i;

	memset(buf, 0, len);
	for (i = 0; i < n; i++) {
		uint8_t *blk = buf + 2 * (size_t)i * RM_MD_BLOCK_SIZE;

		if (md_encode_logical(blk, sb, l + i, devs, entries))
			return -EINVAL;
		if (c)
			rm_tblock_relocate(blk, rm_slot_blocknr(g, l + i,
							rm_slot_index(0, c)));
	}
	return md_pwrite(img, buf, len,
			 rm_slot_blocknr(g, l, rm_slot_index(0, c)) *
			 RM_MD_BLOCK_SIZE);
}

int md_write_table(struct md_image *img, struct rm_sb *sb,
		   const struct rm_dev devs[RM_MAX_DEVS],
		   const struct rm_entry *entries)
{
	uint8_t *buf = md_alloc_blocks(2 * MD_WBATCH);
	uint32_t digest = RM_DIGEST_INIT;
	uint64_t left;
	uint32_t l, i, n;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (l = 0; l < sb->geo.nr_logical && !r; l += n) {
		left = sb->geo.nr_logical - l;
		n = left < MD_WBATCH ? (uint32_t)left : MD_WBATCH;
		r = md_write_run(img, buf, sb, l, n, 0, devs, entries);
		if (!r)
			r = md_write_run(img, buf, sb, l, n, 1, devs, entries);
		for (i = 0; i < n; i++)
			digest = rm_digest_update(digest, sb->seq);
	}
	free(buf);
	sb->table_digest = rm_digest_final(digest);
	return r ? r : md_sync(img);
}

int md_write_sbs(struct md_image *img, const struct rm_sb *sb)
{
	uint8_t *buf = md_alloc_blocks(RM_SB_COPIES);
	unsigned int c;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (c = 0; c < RM_SB_COPIES && !r; c++)
		if (rm_sb_encode(buf + c * RM_MD_BLOCK_SIZE, sb, c))
			r = -EINVAL;
	if (!r)
		r = md_pwrite(img, buf, RM_SB_COPIES * RM_MD_BLOCK_SIZE,
			      rm_sb_blocknr(0) * RM_MD_BLOCK_SIZE);
	free(buf);
	return r ? r : md_sync(img);
}

int md_write_pool(struct md_image *img, struct rm_sb *sb,
		  const struct rm_dev devs[RM_MAX_DEVS],
		  const struct rm_entry *entries)
{
	int r = md_write_clear_sbs(img);

	if (!r)
		r = md_write_table(img, sb, devs, entries);
	if (!r)
		r = md_write_sbs(img, sb);
	return r;
}

struct md_dropper {
	uint8_t *drop_entry;		/* per entry, in one pass */
	bool drop_dev[RM_MAX_DEVS];
	bool bad_pool;
	void (*report)(void *ctx, const struct rm_problem *p);
	void *ctx;
};

static void md_mark(void *ctx, const struct rm_problem *p)
{
	struct md_dropper *d = ctx;

	if (p->obj == RM_OBJ_DEV)
		d->drop_dev[p->index] = true;
	else if (p->obj == RM_OBJ_ENTRY)
		d->drop_entry[p->index] = 1;
	else
		d->bad_pool = true;
	if (d->report)
		d->report(d->ctx, p);
}

int64_t md_drop_bad_records(const struct rm_sb *sb,
			    struct rm_dev devs[RM_MAX_DEVS],
			    struct rm_entry *entries,
			    void (*report)(void *ctx, const struct rm_problem *p),
			    void *ctx)
{
	struct md_dropper d = { .report = report, .ctx = ctx };
	uint64_t n = sb->geo.nr_blocks, i;
	struct rm_check_key *scratch;
	int64_t found = 0, dropped = 0;
	unsigned int pass, k;

	scratch = calloc(n, sizeof(*scratch));
	d.drop_entry = calloc(n, 1);
	for (pass = 0; pass < 4 && scratch && d.drop_entry; pass++) {
		memset(d.drop_entry, 0, n);
		memset(d.drop_dev, 0, sizeof(d.drop_dev));
		found = rm_pool_check(sb, devs, entries, n, scratch, md_mark, &d);
		if (found <= 0 || d.bad_pool)
			break;
		for (k = 0; k < RM_MAX_DEVS; k++) {
			if (d.drop_dev[k]) {
				devs[k] = (struct rm_dev){ 0 };
				dropped++;
			}
		}
		for (i = 0; i < n; i++) {
			if (d.drop_entry[i]) {
				entries[i] = (struct rm_entry){ 0 };
				dropped++;
			}
		}
	}
	if (!scratch || !d.drop_entry)
		dropped = -ENOMEM;
	else if (found)
		dropped = -EINVAL;
	free(scratch);
	free(d.drop_entry);
	return dropped;
}
