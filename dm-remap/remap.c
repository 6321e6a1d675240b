// SPDX-License-Identifier: GPL-2.0-only
/*
 * remap: the per-device data target.
 *
 * Table: <dev_id> <main_dev> <pool_id> [<#opt_args> force]
 *
 * The device attaches to an active pool by id and redirects the blocks the
 * pool has remapped for its dev_id to their spare blocks.  map() only looks
 * the bio's blocks up in the lock-free remap index: a bio touching no
 * remapped block goes whole to the main device; otherwise it is cut at the
 * first block boundary where its destination changes (dm core resubmits
 * the rest).  Anything slow (copying, metadata commits) happens in message
 * or worker context.
 *
 * Migrations.  Moving a block to the spare (or, when its spare block
 * fails, to another spare block) must not lose a write in flight to it.
 * The block is first entered in the index as BUSY: from then on map()
 * holds every bio touching it on a list.  The writes already sent are
 * counted per epoch in per-CPU started/ended counters (pdev->writes, as
 * SRCU counts its readers); the migration flips the epoch and waits until
 * the old epoch's ended count catches up with its started count, then
 * copies the block, commits the remap and finally switches the entry to
 * MAPPED and releases the held bios.
 *
 * The I/O path has no memory barrier for this; the migration pays with RCU
 * grace periods instead (drain_writes()).  map() counts a write and then
 * looks its blocks up, both inside RCU-sched read-side sections, the count
 * first; end_io counts it ended in one.  After the epoch flip and a grace
 * period, a write either was counted in the old epoch, and the count is
 * visible, or saw the new epoch and with it the BUSY entry (release and
 * acquire).  After the ended count catches up and another grace period,
 * whatever those writes stored is visible to the copy.
 */
#include <linux/module.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>

#include "dm-remap-core.h"
#include "remap.h"

#define DM_MSG_PREFIX "remap"

/* Blocks of one bio that map() looks up before cutting it. */
#define MAP_SCAN_BLOCKS		256

/* ---- Table ------------------------------------------------------------------ */

/* Optional arguments: [<#opt_args> force] */
static int parse_features(struct dm_arg_set *as, bool *force,
			  struct dm_target *ti)
{
	static const struct dm_arg _args[] = {
		{0, 1, "Invalid number of optional arguments"},
	};
	unsigned int argc;
	const char *arg;
	int r;

	if (!as->argc)
		return 0;
	r = dm_read_arg_group(_args, as, &argc, &ti->error);
	if (r)
		return r;
	while (argc--) {
		arg = dm_shift_arg(as);
		if (!strcasecmp(arg, "force") && !*force) {
			*force = true;
			continue;
		}
		ti->error = *force ? "Duplicate optional argument" :
				     "Unknown optional argument";
		return -EINVAL;
	}
	if (as->argc) {
		ti->error = "Too many arguments";
		return -EINVAL;
	}
	return 0;
}

static int remap_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as;
	struct remap_c *rc;
	struct dmr_pdev *pdev;
	int r;

	if (argc < 3) {
		ti->error = "Invalid argument count: <dev_id> <main_dev> <pool_id> [opt args]";
		return -EINVAL;
	}

	rc = kzalloc(sizeof(*rc), GFP_KERNEL);
	if (!rc) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	rc->ti = ti;

	if (kstrtou32(argv[0], 10, &rc->dev_id)) {
		ti->error = "Invalid dev_id";
		r = -EINVAL;
		goto bad;
	}
	if (kstrtou32(argv[2], 10, &rc->pool_id)) {
		ti->error = "Invalid pool_id";
		r = -EINVAL;
		goto bad;
	}
	as.argc = argc - 3;
	as.argv = argv + 3;
	r = parse_features(&as, &rc->force, ti);
	if (r)
		goto bad;

	r = dm_get_device(ti, argv[1], dm_table_get_mode(ti->table),
			  &rc->main_dev);
	if (r) {
		ti->error = "Main device lookup failed";
		goto bad;
	}

	rc->pool = dmr_pool_attach(rc->pool_id);
	if (!rc->pool) {
		ti->error = "No active pool with that pool_id";
		r = -ENODEV;
		goto bad_pool;
	}
	rc->shift = dmr_pool_block_shift(rc->pool);
	if (bdev_logical_block_size(rc->main_dev->bdev) >
	    rc->pool->sb.geo.block_size) {
		ti->error = "Main device sectors are larger than the pool's blocks";
		r = -EINVAL;
		goto bad_register;
	}

	rc->main_sectors = bdev_nr_sectors(rc->main_dev->bdev);
	rc->whole_blocks = rc->main_sectors >> rc->shift;
	/*
	 * dm takes a device of size 0 for one of unknown size: its record
	 * would say 0 sectors, as if the device had shrunk to nothing.
	 */
	if (!rc->whole_blocks) {
		ti->error = "Main device is empty or smaller than one pool block";
		r = -EINVAL;
		goto bad_register;
	}
	pdev = dmr_pdev_get(rc->pool, rc->dev_id, ti->table,
			    rc->main_dev->bdev->bd_dev, rc->main_sectors,
			    rc->force, remap_repair_work, &ti->error);
	if (IS_ERR(pdev)) {
		r = PTR_ERR(pdev);
		goto bad_register;
	}
	rc->pdev = pdev;

	rc->io = dm_io_client_create();
	if (IS_ERR(rc->io)) {
		r = PTR_ERR(rc->io);
		ti->error = "Cannot create dm-io client";
		goto bad_io;
	}

	ti->num_flush_bios = 2;		/* bio 0: main device, bio 1: spare */
	/*
	 * dm asks only the devices iterate_devices reports (the main one)
	 * whether to pass flushes and FUA down: a main device without a
	 * write cache would have them dropped before they reach us, and
	 * writes to remapped blocks left in the spare's cache.
	 */
	ti->flush_supported = true;
	ti->num_discard_bios = 1;
	ti->num_write_zeroes_bios = 1;
	ti->per_io_data_size = sizeof(struct remap_io);
	ti->private = rc;
	return 0;

bad_io:
	dmr_pdev_put(rc->pdev, ti->table);
bad_register:
	dmr_pool_detach(rc->pool);
bad_pool:
	dm_put_device(ti, rc->main_dev);
bad:
	kfree(rc);
	return r;
}

static void remap_dtr(struct dm_target *ti)
{
	struct remap_c *rc = ti->private;

	dmr_pdev_set_event_target(rc->pdev, ti, false);
	dmr_scan_detach(rc->pdev, rc);
	dm_io_client_destroy(rc->io);
	dmr_pdev_put(rc->pdev, ti->table);
	dmr_pool_detach(rc->pool);
	dm_put_device(ti, rc->main_dev);
	kfree(rc);
}

/*
 * The identity record takes this table's main device, durably, before the
 * device goes live.  Here, not in the constructor, so that a load which is
 * cleared changes nothing, and table loads do no I/O (a loader may hold
 * other devices suspended).
 */
static int remap_preresume(struct dm_target *ti)
{
	struct remap_c *rc = ti->private;
	int r;

	r = dmr_pdev_resume_identity(rc->pdev, rc->main_dev->bdev->bd_dev,
				     rc->main_sectors, rc->force);
	if (r)
		return r;
	dmr_pdev_link(rc->pdev);
	dmr_pdev_set_event_target(rc->pdev, ti, true);
	return 0;
}

/* The scanner reads through the live table only. */
static void remap_resume(struct dm_target *ti)
{
	struct remap_c *rc = ti->private;

	dmr_scan_attach(rc->pdev, rc);
}

static void remap_postsuspend(struct dm_target *ti)
{
	struct remap_c *rc = ti->private;

	dmr_scan_detach(rc->pdev, rc);
}

/* ---- I/O path ------------------------------------------------------------------ */

/*
 * Count a write as started in the current epoch.  Called inside an
 * RCU-sched read-side section that the caller's index lookup follows
 * (see "Migrations" above).
 */
static __always_inline void count_write(struct dmr_pdev *pdev,
					struct remap_io *io)
{
	/* Acquire: a flipped epoch comes with its BUSY entry. */
	io->epoch = smp_load_acquire(&pdev->epoch) & 1;
	this_cpu_inc(pdev->writes->started[io->epoch]);
	io->counted = 1;
}

static inline void remap_uncount(struct dmr_pdev *pdev, struct remap_io *io)
{
	if (!io->counted)
		return;
	io->counted = 0;
	/*
	 * An RCU-sched section of its own: drain_writes() waits for a grace
	 * period after it sees this count, and so sees what the write did.
	 */
	rcu_read_lock_sched();
	this_cpu_inc(pdev->writes->ended[io->epoch]);
	rcu_read_unlock_sched();
}

/*
 * Hold a bio whose block is being migrated.  Returns false if the block
 * is no longer busy (the caller routes the bio again).
 */
static bool defer_bio(struct dmr_pdev *pdev, struct bio *bio, u64 block)
{
	unsigned int state = 0;
	struct dmr_ix *x;
	bool held = false;

	spin_lock_irq(&pdev->defer_lock);
	rcu_read_lock();
	x = rcu_dereference(pdev->ix);
	if (rm_index_lookup(&x->ix, block, NULL, &state) &&
	    state == RM_IX_BUSY) {
		bio_list_add(&pdev->deferred, bio);
		held = true;
	}
	rcu_read_unlock();
	spin_unlock_irq(&pdev->defer_lock);
	return held;
}

/* Send a data bio (or what is left of it after a cut) to the main device. */
static __always_inline int route_main(struct remap_c *rc, struct bio *bio,
				      struct remap_io *io)
{
	bio_set_dev(bio, rc->main_dev->bdev);
	if (bio_op(bio) == REQ_OP_READ || bio_op(bio) == REQ_OP_WRITE) {
		/* Kept to retry it block by block if the main device fails it. */
		io->to_main = 1;
		io->iter = bio->bi_iter;
	}
	return DM_MAPIO_REMAPPED;
}

/*
 * The region filter says the bio's blocks [first, last] may be remapped:
 * look them up and route the bio.  Out of line, so that a bio far from any
 * remap runs none of it.  A write is counted by the caller (io->counted)
 * in an earlier RCU-sched section than this lookup's, which is enough:
 * see "Migrations" above.
 */
static noinline int route_hit(struct remap_c *rc, struct bio *bio,
			      struct remap_io *io, u64 first, u64 last,
			      bool in_map)
{
	struct dmr_pdev *pdev = rc->pdev;
	sector_t s = bio->bi_iter.bi_sector;
	unsigned int state = 0;
	struct dmr_ix *x;
	sector_t bend;
	u64 found;
	u32 spare;
	int hit;

again:
	/* Bounded work in map: look at most MAP_SCAN_BLOCKS blocks. */
	if (in_map && last - first >= MAP_SCAN_BLOCKS)
		last = first + MAP_SCAN_BLOCKS - 1;
	rcu_read_lock_sched();
	x = rcu_dereference_sched(pdev->ix);
	hit = rm_index_first_in_range(&x->ix, first, last, &found, &spare,
				      &state);
	rcu_read_unlock_sched();

	if (!hit) {
		/* Cut where the scan stopped; dm core sends the rest. */
		if (in_map && ((last + 1) << rc->shift) < s + bio_sectors(bio))
			dm_accept_partial_bio(bio, ((last + 1) << rc->shift) - s);
		return route_main(rc, bio, io);
	}
	if (found > first) {
		/* Up to the first remapped block the main device serves it. */
		if (!WARN_ON_ONCE(!in_map))
			dm_accept_partial_bio(bio, (found << rc->shift) - s);
		return route_main(rc, bio, io);
	}

	/* The first block is remapped: this bio covers that block only. */
	bend = (first + 1) << rc->shift;
	if (in_map && s + bio_sectors(bio) > bend)
		dm_accept_partial_bio(bio, bend - s);

	switch (state) {
	case RM_IX_MAPPED:
		/*
		 * A write stays counted until end_io: relocating the block
		 * when its spare block fails drains the writes to it like a
		 * migration.  dm offers discard when the main device takes
		 * it; over a spare that does not, it is a hint dropped for
		 * this block (bio_endio() here runs end_io too).
		 */
		if (unlikely(op_is_discard(bio_op(bio))) &&
		    !bdev_max_discard_sectors(rc->pool->spare.bdev)) {
			bio_endio(bio);
			return DM_MAPIO_SUBMITTED;
		}
		if (bio_op(bio) == REQ_OP_READ || bio_op(bio) == REQ_OP_WRITE) {
			/* Kept to relocate the block if its spare block fails. */
			io->to_spare = 1;
			io->spare = spare;
			io->iter = bio->bi_iter;
		}
		bio_set_dev(bio, rc->pool->spare.bdev);
		/* The spare is not a table device: nowait is ours to honour. */
		if (!bdev_nowait(rc->pool->spare.bdev))
			bio->bi_opf &= ~REQ_NOWAIT;
		bio->bi_iter.bi_sector = dmr_pool_spare_sector(rc->pool, spare) +
					 (s - (first << rc->shift));
		this_cpu_inc(pdev->writes->remapped);
		return DM_MAPIO_REMAPPED;
	case RM_IX_BUSY:
		/* Held bios must not hold up the drain that waits for them. */
		remap_uncount(pdev, io);
		if (defer_bio(pdev, bio, first))
			return DM_MAPIO_SUBMITTED;
		/* Migrated meanwhile: count the write again, look again. */
		last = first;
		if (op_is_write(bio_op(bio))) {
			rcu_read_lock_sched();
			count_write(pdev, io);
			rcu_read_unlock_sched();
		}
		goto again;
	default:
		/*
		 * PENDING: the block's data is lost.  A write (or
		 * write-zeroes) of the whole block heals it (the error worker
		 * moves it to its spare block); reads and partial writes
		 * fail.  A discard has nothing left to drop: it succeeds and
		 * the block stays pending.
		 */
		remap_uncount(pdev, io);
		if (op_is_discard(bio_op(bio))) {
			bio_endio(bio);
			return DM_MAPIO_SUBMITTED;
		}
		if ((bio_op(bio) == REQ_OP_WRITE ||
		     bio_op(bio) == REQ_OP_WRITE_ZEROES) &&
		    s == first << rc->shift &&
		    bio_sectors(bio) == (1U << rc->shift)) {
			io->heal = 1;
			io->iter = bio->bi_iter;
			io->status = BLK_STS_IOERR;
			remap_queue_repair(rc, bio);
			return DM_MAPIO_SUBMITTED;
		}
		DMERR_LIMIT("dev_id %u: block %llu is unreadable (pending)",
			    rc->dev_id, (unsigned long long)first);
		return DM_MAPIO_KILL;
	}
}

/*
 * Decide where a data bio goes (bi_sector already relative to the target;
 * io is its per-bio data, looked up once by the caller).
 * In map() the bio may be cut with dm_accept_partial_bio(); a bio released
 * after a migration covers a single block and needs no cut.  Inlined: in
 * map() it saves a call and a stack frame per bio.
 */
static __always_inline int remap_route(struct remap_c *rc, struct bio *bio,
				       struct remap_io *io, bool in_map)
{
	struct dmr_pdev *pdev = rc->pdev;
	sector_t s = bio->bi_iter.bi_sector;
	u64 first = s >> rc->shift;
	u64 last = (s + bio_sectors(bio) - 1) >> rc->shift;
	struct dmr_ix *x;
	bool hit;

	io->rc = rc;
	io->counted = 0;
	io->to_main = 0;
	io->to_spare = 0;
	io->heal = 0;
	io->handled = 0;

	/*
	 * A preempt-disabled section is an RCU read-side critical section for
	 * the grace periods drain_writes() waits for and after which the
	 * index ix_rebuild() replaced is freed (call_rcu()), and
	 * cheaper to enter than a preemptible one.  A write is counted in the
	 * same section, before its lookup.
	 */
	rcu_read_lock_sched();
	if (op_is_write(bio_op(bio)))
		count_write(pdev, io);
	x = rcu_dereference_sched(pdev->ix);
	/*
	 * The region filter first (inline for one block), so that a bio far
	 * from any remap pays no more and is not cut at MAP_SCAN_BLOCKS.
	 */
	hit = first == last ? rm_index_block_may_have(&x->ix, first) :
			      rm_index_may_contain(&x->ix, first, last);
	rcu_read_unlock_sched();

	if (unlikely(hit))
		return route_hit(rc, bio, io, first, last, in_map);
	return route_main(rc, bio, io);
}

static int remap_map(struct dm_target *ti, struct bio *bio)
{
	struct remap_c *rc = ti->private;
	struct remap_io *io = remap_io(bio);

	this_cpu_inc(rc->pdev->writes->ios);
	io->flush = !bio_sectors(bio);
	if (unlikely(io->flush)) {
		/* An empty flush: one copy for each device. */
		io->counted = 0;
		io->to_main = 0;
		io->to_spare = 0;
		io->handled = 0;
		if (dm_bio_get_target_bio_nr(bio) == 1) {
			bio_set_dev(bio, rc->pool->spare.bdev);
			if (!bdev_nowait(rc->pool->spare.bdev))
				bio->bi_opf &= ~REQ_NOWAIT;
		} else {
			bio_set_dev(bio, rc->main_dev->bdev);
		}
		return DM_MAPIO_REMAPPED;
	}
	bio->bi_iter.bi_sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
	return remap_route(rc, bio, io, true);
}

/* A bio that failed: count it, and maybe take it back for repair. */
static noinline int end_io_error(struct remap_c *rc, struct bio *bio,
				 struct remap_io *io, blk_status_t *error)
{
	struct dmr_pdev *pdev = rc->pdev;

	if (io->flush)
		return DM_ENDIO_DONE;	/* nothing to count or repair */
	/*
	 * Not errors of a device: a nowait bio that would have had to wait
	 * (its submitter sends it again) and an operation a device does not
	 * take (the block layer's callers fall back).
	 */
	if (*error == BLK_STS_AGAIN || *error == BLK_STS_NOTSUPP)
		return DM_ENDIO_DONE;
	if (op_is_write(bio_op(bio)) || op_is_discard(bio_op(bio)) ||
	    bio_op(bio) == REQ_OP_WRITE_ZEROES)
		atomic64_inc(&pdev->write_errors);
	else
		atomic64_inc(&pdev->read_errors);
	/*
	 * Take the bio back and let the error worker repair and end it:
	 * move the block off a failing main block, or relocate it off a
	 * failing spare block.  Not when the main device fails wholesale
	 * (then its errors pass through until an I/O to it succeeds again;
	 * for a main device that takes no writes, its write errors until a
	 * write succeeds) or the metadata failed.
	 */
	if (remap_medium_error(*error) && !READ_ONCE(rc->pool->md_error) &&
	    ((io->to_main && !READ_ONCE(pdev->main_failed) &&
	      !(op_is_write(bio_op(bio)) && dmr_main_writes_fail(pdev))) ||
	     (io->to_spare && !remap_spare_held(pdev)))) {
		io->status = *error;
		remap_queue_repair(rc, bio);
		return DM_ENDIO_INCOMPLETE;
	}
	return DM_ENDIO_DONE;
}

static int remap_end_io(struct dm_target *ti, struct bio *bio,
			blk_status_t *error)
{
	struct remap_c *rc = ti->private;
	struct remap_io *io = remap_io(bio);
	struct dmr_pdev *pdev = rc->pdev;

	remap_uncount(pdev, io);
	if (io->handled)
		return DM_ENDIO_DONE;	/* completed by the error worker */
	if (unlikely(*error))
		return end_io_error(rc, bio, io, error);
	if (io->to_main && unlikely(READ_ONCE(pdev->main_failed)))
		WRITE_ONCE(pdev->main_failed, false);
	if (io->to_main && op_is_write(bio_op(bio)))
		remap_main_wrote(pdev);
	if (io->to_spare && unlikely(READ_ONCE(pdev->spare_failed)))
		remap_spare_answers(pdev, op_is_write(bio_op(bio)));
	return DM_ENDIO_DONE;
}

/* Route the bios held for a block whose migration ended. */
void remap_release_deferred(struct remap_c *rc)
{
	struct dmr_pdev *pdev = rc->pdev;
	struct bio_list bios;
	struct bio *bio;

	spin_lock_irq(&pdev->defer_lock);
	bios = pdev->deferred;
	bio_list_init(&pdev->deferred);
	spin_unlock_irq(&pdev->defer_lock);

	while ((bio = bio_list_pop(&bios))) {
		/* Routed for the table instance that mapped it. */
		struct remap_io *io = remap_io(bio);

		switch (remap_route(io->rc, bio, io, false)) {
		case DM_MAPIO_REMAPPED:
			submit_bio_noacct(bio);
			break;
		case DM_MAPIO_KILL:
			bio_io_error(bio);
			break;
		default:	/* held again */
			break;
		}
	}
}

/* ---- Status and messages --------------------------------------------------------------- */

static const char *remap_state(struct remap_c *rc)
{
	if (READ_ONCE(rc->pool->md_error) || READ_ONCE(rc->pdev->main_failed) ||
	    dmr_main_writes_fail(rc->pdev) || READ_ONCE(rc->pdev->spare_failed))
		return "fail";
	if (READ_ONCE(rc->pdev->nr_pending) || READ_ONCE(rc->pool->exhausted))
		return "degraded";
	return "ok";
}

static void remap_status(struct dm_target *ti, status_type_t type,
			 unsigned int status_flags, char *result,
			 unsigned int maxlen)
{
	struct remap_c *rc = ti->private;
	struct dmr_pdev *pdev = rc->pdev;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%u %u %llu %llu %lld %lld %lld %s", rc->pool_id,
		       rc->dev_id, READ_ONCE(pdev->nr_mapped),
		       READ_ONCE(pdev->nr_pending),
		       (long long)atomic64_read(&pdev->read_errors),
		       (long long)atomic64_read(&pdev->write_errors),
		       (long long)dmr_pdev_remapped_ios(pdev),
		       remap_state(rc));
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u %s %u", rc->dev_id, rc->main_dev->name, rc->pool_id);
		if (rc->force)
			DMEMIT(" 1 force");
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",dev_id=%u,pool_id=%u,main_device_name=%s;", rc->dev_id,
		       rc->pool_id, rc->main_dev->name);
		break;
	}
}

struct remap_line {
	u64 block;
	u32 spare;
	u32 state;
};

static int cmp_line(const void *a, const void *b)
{
	const struct remap_line *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

/* "<main block> <spare block> mapped|pending" per line, by main block. */
static int list_remaps(struct remap_c *rc, char *result, unsigned int maxlen)
{
	struct dmr_pdev *pdev = rc->pdev;
	struct remap_line *lines;
	unsigned int sz = 0, state;
	u64 n = 0, i, cap;
	struct dmr_ix *x;
	u32 pos = 0;

	/*
	 * Allocated before taking ix_lock (a repair may hold it for long);
	 * if entries were added meanwhile beyond the slack, again.
	 */
	rcu_read_lock();
	cap = rcu_dereference(pdev->ix)->ix.live + 64;
	rcu_read_unlock();
	for (;;) {
		lines = kvmalloc_array(cap, sizeof(*lines), GFP_KERNEL);
		if (!lines)
			return -ENOMEM;
		mutex_lock(&pdev->ix_lock);
		x = rcu_dereference_protected(pdev->ix,
					      lockdep_is_held(&pdev->ix_lock));
		if (x->ix.live <= cap)
			break;
		cap = x->ix.live + 64;
		mutex_unlock(&pdev->ix_lock);
		kvfree(lines);
	}
	while (n < cap && rm_index_next(&x->ix, &pos, &lines[n].block,
					&lines[n].spare, &state)) {
		lines[n].state = state;
		n++;
	}
	mutex_unlock(&pdev->ix_lock);

	sort(lines, n, sizeof(*lines), cmp_line, NULL);
	for (i = 0; i < n; i++)
		DMEMIT("%llu %u %s\n", lines[i].block, lines[i].spare,
		       lines[i].state == RM_IX_PENDING ? "pending" : "mapped");
	kvfree(lines);
	return 1;
}

static int remap_message(struct dm_target *ti, unsigned int argc, char **argv,
			 char *result, unsigned int maxlen)
{
	struct remap_c *rc = ti->private;
	u64 sector;

	if (argc == 2 && !strcasecmp(argv[0], "force_remap")) {
		if (kstrtou64(argv[1], 10, &sector) || sector >= ti->len) {
			DMERR_LIMIT("force_remap: invalid sector '%s' (0..%llu)",
				    argv[1], (unsigned long long)ti->len - 1);
			return -EINVAL;
		}
		return remap_force(rc, sector >> rc->shift);
	}
	if (argc == 1 && !strcasecmp(argv[0], "list_remaps"))
		return list_remaps(rc, result, maxlen);
	if (argc == 3 && !strcasecmp(argv[0], "set_label"))
		return dmr_pool_set_label(rc->pool, rc->dev_id, argv[1], argv[2]);
	if (argc == 1 && !strcasecmp(argv[0], "clear_stats")) {
		dmr_pdev_clear_stats(rc->pdev);
		return 0;
	}
	DMERR_LIMIT("unknown message or wrong arguments: '%s' (see Documentation/admin-guide.md)",
		    argc ? argv[0] : "");
	return -EINVAL;
}

static int remap_iterate_devices(struct dm_target *ti,
				 iterate_devices_callout_fn fn, void *data)
{
	struct remap_c *rc = ti->private;

	return fn(ti, rc->main_dev, 0, ti->len, data);
}

/* Remapped I/O goes to the spare too: respect its limits as well. */
static void remap_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct remap_c *rc = ti->private;

	blk_stack_limits(limits, &bdev_get_queue(rc->pool->spare.bdev)->limits,
			 0);
	rm_stable_writes_for(ti, limits, rc->pool->spare.bdev);
}

/*
 * map() never sleeps (held bios are queued, repairs run in a worker), so
 * REQ_NOWAIT bios are fine; those sent to the spare drop the flag if the
 * spare cannot honour it.
 */
static struct target_type remap_target = {
	.name = "remap",
	.version = {0, 3, 0},
	.features = DM_TARGET_NOWAIT,
	.module = THIS_MODULE,
	.ctr = remap_ctr,
	.dtr = remap_dtr,
	.map = remap_map,
	.end_io = remap_end_io,
	.preresume = remap_preresume,
	.resume = remap_resume,
	.postsuspend = remap_postsuspend,
	.status = remap_status,
	.message = remap_message,
	.iterate_devices = remap_iterate_devices,
	.io_hints = remap_io_hints,
};

int dm_remap_target_init(void)
{
	int r = dm_register_target(&remap_target);

	if (r)
		DMERR("register failed %d", r);
	return r;
}

void dm_remap_target_exit(void)
{
	dm_unregister_target(&remap_target);
}
