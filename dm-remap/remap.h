/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * remap.h - what the remap target's files share: the table context, the
 * per-bio data, routing (remap.c) and repairs (repair.c).
 */
#ifndef DM_REMAP_REMAP_H
#define DM_REMAP_REMAP_H

#include <linux/device-mapper.h>

#include "pool.h"

struct remap_c {
	struct dm_target *ti;
	struct dmr_pool *pool;		/* attached: holds a pool reference */
	struct dmr_pdev *pdev;		/* shared with our other table instances */
	struct dm_dev *main_dev;
	struct dm_io_client *io;	/* for copies and retries */
	u32 dev_id;
	u32 pool_id;
	bool force;
	unsigned int shift;		/* log2(sectors per block) */
	/*
	 * Blocks wholly on this table's main device.  A partial last block
	 * has no spare block: its errors pass through (a record of it would
	 * not pass the pool's load checks).  See block_recordable().
	 */
	u64 whole_blocks;
	u64 main_sectors;		/* for the identity record */
};

/* Per-bio data. */
struct remap_io {
	struct remap_c *rc;
	struct bvec_iter iter;		/* as mapped (relative to the target) */
	u32 spare;			/* to_spare: the spare block it went to */
	blk_status_t status;		/* the error that sent it to repair */
	u8 counted;			/* in pdev->writes, epoch parity below */
	u8 epoch;
	u8 to_main;			/* data bio sent to the main device */
	u8 to_spare;			/* data bio sent to a spare block */
	u8 heal;			/* full-block write to a pending block */
	u8 handled;			/* completed by repair: end_io lets it go */
	u8 flush;			/* an empty flush */
};

static inline struct remap_io *remap_io(struct bio *bio)
{
	return dm_per_bio_data(bio, sizeof(struct remap_io));
}

/* remap.c */
void remap_release_deferred(struct remap_c *rc);

/* repair.c */
int remap_force(struct remap_c *rc, u64 block);
void remap_queue_repair(struct remap_c *rc, struct bio *bio);
void remap_repair_work(struct work_struct *ws);
void remap_spare_answers(struct dmr_pdev *pdev, bool write);
bool remap_spare_held(struct dmr_pdev *pdev);
bool remap_medium_error(blk_status_t status);

/* A write to the main device succeeded. */
static inline void remap_main_wrote(struct dmr_pdev *pdev)
{
	if (unlikely(atomic_read(&pdev->main_write_moves)))
		atomic_set(&pdev->main_write_moves, 0);
}

#endif /* DM_REMAP_REMAP_H */
