/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdwrite.h - write a fresh pool the way format_spare does
 * (dm-remap-mgr/metadata.c, dmr_md_format): the superblock copies are
 * destroyed first, then every logical table block goes to both copies of
 * pair 0, then the superblock copies are written, each step synced.  Data
 * blocks may be written between the first and the last step.
 *
 * Functions return 0 or -errno (-EINVAL: records the encoders refuse).
 */
#ifndef MDWRITE_H
#define MDWRITE_H

#include "mdread.h"

/* The records of a pool's table, as the kernel holds them in memory. */
struct md_records {
	struct rm_dev *devs;		/* RM_MAX_DEVS */
	struct rm_name *names;		/* RM_MAX_DEVS; NULL: no labels */
	struct rm_entry *entries;	/* nr_blocks; NULL: all free */
};

/* Zero the RM_SB_COPIES superblock copies: no pool until md_write_sbs(). */
int md_write_clear_sbs(struct md_image *img);
/*
 * Encode every logical from rec with seq sb->seq, write it to both copies
 * of pair 0 and zeros to pair 1 (no block of an earlier pool with this
 * uuid may stay), and set sb->table_digest.
 */
int md_write_table(struct md_image *img, struct rm_sb *sb,
		   const struct md_records *rec);
/* Write the superblock copies: the commit point. */
int md_write_sbs(struct md_image *img, const struct rm_sb *sb);
/* The three steps. */
int md_write_pool(struct md_image *img, struct rm_sb *sb,
		  const struct md_records *rec);

/*
 * Clear every record that rm_name_check(), rm_pool_check() or
 * rm_names_check() rejects (a device record, a label or an entry; all of
 * rec's arrays must be there), passing each problem to report (may be
 * NULL), and check again until nothing is found: dropping a device record
 * orphans its entries and its label.  Returns the number of records
 * dropped, -ENOMEM, or -EINVAL when the records do not settle (or the
 * geometry is bad).
 */
int64_t md_drop_bad_records(const struct rm_sb *sb, struct md_records *rec,
			    void (*report)(void *ctx, const struct rm_problem *p),
			    void *ctx);

#endif /* MDWRITE_H */
