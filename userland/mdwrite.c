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
			     const struct md_records *rec)
{
	struct rm_tblock_hdr hdr = {
		.logical = l,
		.blocknr = rm_slot_blocknr(&sb->geo, l, rm_slot_index(0, 0)),
		.seq = sb->seq,
	};

	memcpy(hdr.uuid, sb->uuid, RM_UUID_SIZE);
	return rm_tblock_encode(blk, &hdr, &sb->geo, rec->devs, rec->names,
				rec->entries);
}

/* Copy c of both pairs of logicals l..l+n-1: 2n consecutive blocks. */
static int md_write_run(struct md_image *img, uint8_t *buf,
			const struct rm_sb *sb, uint32_t l, uint32_t n,
			unsigned int c, const struct md_records *rec)
{
	const struct rm_geometry *g = &sb->geo;
	size_t len = 2 * (size_t)n * RM_MD_BLOCK_SIZE;
	uint32_t i;

	memset(buf, 0, len);
	for (i = 0; i < n; i++) {
		uint8_t *blk = buf + 2 * (size_t)i * RM_MD_BLOCK_SIZE;
		unsigned int slot = rm_slot_index(0, c);

		if (md_encode_logical(blk, sb, l + i, rec))
			return -EINVAL;
		if (c)
			rm_tblock_relocate(blk, rm_slot_blocknr(g, l + i, slot));
	}
	return md_pwrite(img, buf, len,
			 rm_slot_blocknr(g, l, rm_slot_index(0, c)) *
			 RM_MD_BLOCK_SIZE);
}

int md_write_table(struct md_image *img, struct rm_sb *sb,
		   const struct md_records *rec)
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
		r = md_write_run(img, buf, sb, l, n, 0, rec);
		if (!r)
			r = md_write_run(img, buf, sb, l, n, 1, rec);
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
		  const struct md_records *rec)
{
	int r = md_write_clear_sbs(img);

	if (!r)
		r = md_write_table(img, sb, rec);
	if (!r)
		r = md_write_sbs(img, sb);
	return r;
}

struct md_dropper {
	uint8_t *drop_entry;		/* per entry, in one pass */
	bool drop_dev[RM_MAX_DEVS];
	bool drop_name[RM_MAX_DEVS];
	bool bad_pool;
	void (*report)(void *ctx, const struct rm_problem *p);
	void *ctx;
};

static void md_mark(void *ctx, const struct rm_problem *p)
{
	struct md_dropper *d = ctx;

	if (p->obj == RM_OBJ_DEV)
		d->drop_dev[p->index] = true;
	else if (p->obj == RM_OBJ_NAME)
		d->drop_name[p->index] = true;
	else if (p->obj == RM_OBJ_ENTRY)
		d->drop_entry[p->index] = 1;
	else
		d->bad_pool = true;
	if (d->report)
		d->report(d->ctx, p);
}

/* Label records rm_names_check() does not judge: rm_name_check(). */
static void md_check_names(const struct md_records *rec,
			   struct md_dropper *d)
{
	unsigned int i;
	int r;

	for (i = 0; i < RM_MAX_DEVS; i++) {
		struct rm_problem p = {
			.obj = RM_OBJ_NAME, .index = i,
			.dev_id = rec->names[i].dev_id,
		};

		r = rm_name_check(&rec->names[i]);
		if (r) {
			p.err = -r;
			md_mark(d, &p);
		}
	}
}

/* Clear what one pass marked; the number of records cleared. */
static int64_t md_clear_marked(struct md_records *rec, uint64_t n,
			       const struct md_dropper *d)
{
	int64_t dropped = 0;
	unsigned int k;
	uint64_t i;

	for (k = 0; k < RM_MAX_DEVS; k++) {
		if (d->drop_dev[k]) {
			rec->devs[k] = (struct rm_dev){ 0 };
			dropped++;
		}
		if (d->drop_name[k]) {
			rec->names[k] = (struct rm_name){ 0 };
			dropped++;
		}
	}
	for (i = 0; i < n; i++) {
		if (d->drop_entry[i]) {
			rec->entries[i] = (struct rm_entry){ 0 };
			dropped++;
		}
	}
	return dropped;
}

int64_t md_drop_bad_records(const struct rm_sb *sb, struct md_records *rec,
			    void (*report)(void *ctx, const struct rm_problem *p),
			    void *ctx)
{
	struct md_dropper d = { .report = report, .ctx = ctx };
	uint64_t n = sb->geo.nr_blocks;
	struct rm_check_key *scratch;
	int64_t cleared = 0, dropped = 0;
	unsigned int pass;

	scratch = calloc(n, sizeof(*scratch));
	d.drop_entry = calloc(n, 1);
	for (pass = 0; pass < 4 && scratch && d.drop_entry; pass++) {
		memset(d.drop_entry, 0, n);
		memset(d.drop_dev, 0, sizeof(d.drop_dev));
		memset(d.drop_name, 0, sizeof(d.drop_name));
		if (!pass)
			md_check_names(rec, &d);
		if (rm_pool_check(sb, rec->devs, rec->entries, n, scratch,
				  md_mark, &d) < 0)
			d.bad_pool = true;
		rm_names_check(rec->devs, rec->names, md_mark, &d);
		if (d.bad_pool)
			break;
		cleared = md_clear_marked(rec, n, &d);
		dropped += cleared;
		if (!cleared)
			break;
	}
	if (!scratch || !d.drop_entry)
		dropped = -ENOMEM;
	else if (d.bad_pool || cleared)
		dropped = -EINVAL;
	free(scratch);
	free(d.drop_entry);
	return dropped;
}
