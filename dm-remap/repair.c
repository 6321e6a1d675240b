// SPDX-License-Identifier: GPL-2.0-only
/*
 * repair.c - moving blocks to the spare: on request (force_remap), when
 * the main device fails a read or a write, and off a spare block that
 * fails one (relocate_block()).
 *
 * All run in process context (a message, or the pool's error workqueue)
 * with the device's ix_lock held, so one device has one repair at a time.
 *
 * Migrating a block (see also Documentation/design.md):
 *   1. reserve a spare block;
 *   2. enter the block in the index as BUSY: map() now holds every bio
 *      touching it (remap.c, defer_bio());
 *   3. drain: wait until no write issued before step 2 is still in flight
 *      (per-epoch counters, drain_writes());
 *   4. write the block's data to the spare block;
 *   5. record the entry and wait for its commit;
 *   6. switch the index entry to MAPPED (or PENDING) and route the held
 *      bios again.
 * Only then is the bio that caused it completed.
 *
 * Error triage: only errors that can mean a bad medium (BLK_STS_MEDIUM,
 * BLK_STS_IOERR, BLK_STS_PROTECTION) are repaired, and only after the
 * failing range was retried block by block (a block that works on retry
 * costs no spare) and a probe of other places of the main device succeeds:
 * a device that fails everywhere (pulled, dead) must not drain the pool, so
 * its errors pass through and the device's state says "fail".  Nor may a
 * main device that reads but takes no writes: after a run of blocks moved
 * off write errors, a block elsewhere is rewritten to see whether it takes
 * writes at all (main_write_may_move()).  A block is
 * relocated off a failed spare block only if a probe of the spare
 * succeeds; a spare that fails the probe, or of which no new block takes
 * a block's data, holds moves to it off for SPARE_RETRY_S (spare_failing()).
 */
#include <linux/bio.h>
#include <linux/delay.h>
#include <linux/dm-io.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "remap.h"

#define DM_MSG_PREFIX "remap"

#define READ_RETRIES	3	/* reads of a failing block before giving up */
#define SPARE_TRIES	4	/* spare blocks tried when writing one fails */

/* ---- Helpers ---------------------------------------------------------------- */

/*
 * Synchronous I/O of count sectors at sector of bdev to or from buf,
 * counted as the module's own, so that the scanner can tell it from other
 * I/O to the disk (the spare may share the main device's disk).
 */
static int io_prio(struct remap_c *rc, struct dm_io_client *io,
		   struct block_device *bdev, blk_opf_t opf, void *buf,
		   sector_t sector, sector_t count, unsigned short ioprio)
{
	struct dm_io_region where = {
		.bdev = bdev,
		.sector = sector,
		.count = count,
	};
	struct dm_io_request req = {
		.bi_opf = opf,
		.mem.type = DM_IO_VMA,
		.mem.ptr.vma = buf,
		.client = io,
	};

	dmr_own_io(bdev, count);
	return rm_dm_io_prio(&req, 1, &where, NULL, ioprio);
}

static int sync_io(struct remap_c *rc, struct block_device *bdev,
		   blk_opf_t opf, void *buf, sector_t sector, sector_t count)
{
	return io_prio(rc, rc->io, bdev, opf, buf, sector, count,
		       IOPRIO_DEFAULT);
}

static sector_t block_sectors(struct remap_c *rc)
{
	return (sector_t)1 << rc->shift;
}

/*
 * Copy len bytes between buf and the bio's data, starting skip bytes into
 * the range the bio had when it was mapped.
 */
static void bio_copy(struct bio *bio, struct bvec_iter start,
		     unsigned int skip, void *buf, unsigned int len,
		     bool to_bio)
{
	struct bvec_iter iter = start, it;
	struct bio_vec bv;

	bio_advance_iter(bio, &iter, skip);
	iter.bi_size = len;
	__bio_for_each_segment(bv, bio, it, iter) {
		if (to_bio)
			memcpy_to_bvec(&bv, buf);
		else
			memcpy_from_bvec(buf, &bv);
		buf += bv.bv_len;
	}
}

/* Sum of the per-CPU counts of writes of epoch parity idx: started or ended. */
static unsigned long sum_writes(struct dmr_pdev *pdev, bool ended,
				unsigned int idx)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu) {
		struct dmr_wcount *w = per_cpu_ptr(pdev->writes, cpu);

		sum += ended ? READ_ONCE(w->ended[idx]) :
			       READ_ONCE(w->started[idx]);
	}
	return sum;
}

/*
 * Wait until no write sent before now (to the main device, or to the
 * spare for a remapped block) is in flight.
 * Caller holds ix_lock (one epoch flip at a time) and has made the block
 * BUSY.  The I/O path counts writes without memory barriers; the two grace
 * periods here order those counts instead (remap.c, "Migrations").  They
 * are expedited, as dm core's table swap waits for its readers: a disk
 * that grows bad blocks may need many migrations in a row.  Polls the
 * ended counts: migrations are rare, and the I/O path then needs no
 * wake-up.
 */
static void drain_writes(struct dmr_pdev *pdev)
{
	unsigned int old = pdev->epoch & 1, us = 20;
	unsigned long started;

	lockdep_assert_held(&pdev->ix_lock);
	/* Release: whoever sees the new epoch sees the BUSY entry. */
	smp_store_release(&pdev->epoch, pdev->epoch + 1);
	/*
	 * Every map() that counted a write in the old epoch did it in an
	 * RCU-sched section that began before now: after a grace period those
	 * sections are over and their counts visible, and every later one
	 * sees the new epoch.  So the old epoch's started count is final.
	 */
	synchronize_rcu_expedited();
	started = sum_writes(pdev, false, old);
	while (sum_writes(pdev, true, old) != started) {
		fsleep(us);
		us = min(2 * us, 1000u);
	}
	/*
	 * Each ended count was made in an RCU-sched section after its write
	 * completed: after a grace period, what the writes stored is visible
	 * here, and to the copy this caller reads next.
	 */
	synchronize_rcu_expedited();
}

bool remap_medium_error(blk_status_t status)
{
	return status == BLK_STS_MEDIUM || status == BLK_STS_IOERR ||
	       status == BLK_STS_PROTECTION;
}

/*
 * Is the device still there?  Read one block at its start, middle and
 * end: a device that fails all three is failing wholesale.
 */
static bool probe_dev(struct remap_c *rc, struct block_device *bdev,
		      void *buf)
{
	sector_t n = bdev_nr_sectors(bdev);
	sector_t bs = block_sectors(rc);
	sector_t where[3] = { 0, (n / 2) & ~(bs - 1), (n - bs) & ~(bs - 1) };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(where); i++)
		if (where[i] + bs <= n &&
		    !sync_io(rc, bdev, REQ_OP_READ, buf, where[i], bs))
			return true;
	return false;
}

static bool probe_main(struct remap_c *rc, void *buf)
{
	return probe_dev(rc, rc->main_dev->bdev, buf);
}

/* ---- Batches of new entries ---------------------------------------------------- */

/*
 * The entries a repair batch created: kept BUSY (or as they were) in the
 * index until their commit is durable, then switched to their state.
 */
struct fix {
	u64 block;
	u64 ticket;		/* commit that makes this one durable */
	u64 first;		/* ticket of its first change (its record) */
	u32 spare;
	u32 old_spare;		/* old_state set: the entry before the batch */
	u8 state;		/* RM_IX_MAPPED or RM_IX_PENDING */
	/*
	 * 0: the block was not in the index.  RM_IX_PENDING with old_spare
	 * == spare: a pending block healed in place.  Otherwise the block
	 * was relocated off the failed spare block old_spare.
	 */
	u8 old_state;
};

struct fixes {
	struct fix *v;
	unsigned int n, cap;
	u64 ticket;		/* commit that makes them all durable */
};

/* Room for one more fix, made before anything changes. */
static int fixes_reserve(struct fixes *f)
{
	struct fix *v;

	if (f->n < f->cap)
		return 0;
	v = krealloc_array(f->v, f->cap ? 2 * f->cap : 16, sizeof(*v),
			   GFP_NOIO);
	if (!v)
		return -ENOMEM;
	f->v = v;
	f->cap = f->cap ? 2 * f->cap : 16;
	return 0;
}

/* A new entry: the block was not in the index. */
static void fixes_add(struct fixes *f, u64 block, u32 spare,
		      unsigned int state, u64 ticket)
{
	f->v[f->n++] = (struct fix){ .block = block, .spare = spare,
				     .state = state, .ticket = ticket,
				     .first = ticket };
	f->ticket = max(f->ticket, ticket);
}

/* A changed entry: it was (old_spare, old_state) in the index. */
static void fixes_replace(struct fixes *f, u64 block, u32 spare,
			  unsigned int state, u32 old_spare,
			  unsigned int old_state, u64 ticket)
{
	fixes_add(f, block, spare, state, ticket);
	f->v[f->n - 1].old_spare = old_spare;
	f->v[f->n - 1].old_state = old_state;
}

/* Count an index entry of state in or out of the device's totals. */
static void count_entry(struct dmr_pdev *pdev, unsigned int state, int d)
{
	if (state == RM_IX_MAPPED)
		WRITE_ONCE(pdev->nr_mapped, pdev->nr_mapped + d);
	else
		WRITE_ONCE(pdev->nr_pending, pdev->nr_pending + d);
}

/* The pool's entry state (RM_ENTRY_*) of an index state (0: none). */
static unsigned int entry_state(unsigned int ix_state)
{
	switch (ix_state) {
	case RM_IX_MAPPED:
		return RM_ENTRY_MAPPED;
	case RM_IX_PENDING:
		return RM_ENTRY_PENDING;
	default:
		return RM_ENTRY_FREE;
	}
}

/*
 * The fixes' commit is durable (r == 0) or failed: publish them, or put
 * the index and the pool's entries back as the medium still has them.
 * A fix made durable by an earlier commit than the one that failed is
 * published all the same.  Setting an entry that is in the index already
 * cannot fail (no table grows).
 */
static void fixes_finish(struct remap_c *rc, struct fixes *f, int r)
{
	struct dmr_pdev *pdev = rc->pdev;
	u64 durable = r ? dmr_md_durable(rc->pool) : 0;
	unsigned int i;

	for (i = 0; i < f->n; i++) {
		struct fix *x = &f->v[i];

		if (r && x->ticket > durable) {
			if (x->first <= durable) {
				/*
				 * Made pending (recorded, or relocated with
				 * its data lost) and healed in this batch:
				 * only the heal is taken back.
				 */
				if (x->old_state)
					count_entry(pdev, x->old_state, -1);
				count_entry(pdev, RM_IX_PENDING, 1);
				x->old_spare = x->spare;
				x->old_state = RM_IX_PENDING;
			}
			dmr_pool_undo(rc->pool, x->spare, x->old_spare,
				      entry_state(x->old_state), rc->dev_id,
				      x->block);
			if (x->old_state)
				dmr_pdev_ix_set(pdev, x->block, x->old_spare,
						x->old_state);
			else
				dmr_pdev_ix_delete(pdev, x->block);
			continue;
		}
		dmr_pdev_ix_set(pdev, x->block, x->spare, x->state);
		count_entry(pdev, x->state, 1);
		if (x->old_state)
			count_entry(pdev, x->old_state, -1);
	}
	f->n = 0;
	f->ticket = 0;
}

/* ---- Moving one block ------------------------------------------------------------ */

/*
 * Give block a spare block in the index (BUSY) and drain the writes in
 * flight to it.  -ENOSPC when the pool is exhausted.
 */
static int start_move(struct remap_c *rc, u64 block, u32 *spare)
{
	struct dmr_pdev *pdev = rc->pdev;
	int r;

	r = dmr_pool_reserve(rc->pool, spare);
	if (r) {
		if (r == -ENOSPC)
			dmr_pool_exhausted(rc->pool);
		return r;
	}
	r = dmr_pdev_ix_set(pdev, block, *spare, RM_IX_BUSY);
	if (r) {
		dmr_pool_unreserve(rc->pool, *spare);
		return r;
	}
	drain_writes(pdev);
	return 0;
}

/* Room for one more fix, then start_move(). */
static int start_fix(struct remap_c *rc, struct fixes *f, u64 block,
		     u32 *spare)
{
	int r = fixes_reserve(f);

	return r ? r : start_move(rc, block, spare);
}

/* ---- A spare failing wholesale ------------------------------------------------------- */

#define SPARE_RETRY_S	30	/* after the spare failed wholesale: next try */

/*
 * Are moves to the spare held off (DMR_SPARE_* in pool.h)?  Any context.
 * After SPARE_RETRY_S one move may try again, and hold them off again if
 * it fails too.
 */
bool remap_spare_held(struct dmr_pdev *pdev)
{
	/*
	 * No ordering against spare_failing(): a reader that sees a new bit
	 * with the old deadline lets one more move try, which is harmless.
	 */
	return READ_ONCE(pdev->spare_failed) &&
	       time_before(jiffies, READ_ONCE(pdev->spare_retry_at));
}

/*
 * The spare fails wholesale (bit: DMR_SPARE_*): hold moves to it off, pass
 * its errors through, say so in the device's state and raise a dm event.
 */
static void spare_failing(struct remap_c *rc, unsigned int bit)
{
	struct dmr_pdev *pdev = rc->pdev;

	lockdep_assert_held(&pdev->ix_lock);	/* the deadline's one writer */

	WRITE_ONCE(pdev->spare_retry_at, jiffies + SPARE_RETRY_S * HZ);
	if (test_and_set_bit(bit, &pdev->spare_failed))
		return;
	DMERR_LIMIT("dev_id %u: the spare %s; passing its errors through",
		    rc->dev_id, bit == DMR_SPARE_READS_FAIL ?
		    "fails reads everywhere" : "takes no writes");
	dmr_pdev_event(pdev);
}

/*
 * An I/O to the spare succeeded while pdev->spare_failed was set (end_io,
 * any context): a read ends DMR_SPARE_READS_FAIL, a write both.
 */
void remap_spare_answers(struct dmr_pdev *pdev, bool write)
{
	clear_bit(DMR_SPARE_READS_FAIL, &pdev->spare_failed);
	if (write)
		clear_bit(DMR_SPARE_WRITES_FAIL, &pdev->spare_failed);
}

/*
 * Write a whole block's data to its (reserved) spare block; a spare block
 * that fails is retired and another one takes its place, up to
 * SPARE_TRIES blocks: if none takes it, the spare takes no writes and
 * moves to it are held off (spare_failing()).  *ticket takes the
 * retirements' ticket: the caller waits for it even if nothing else is
 * committed (a spare that fails every write then fails the commit too,
 * and the pool stops before it retires more).  On failure (-EIO, or
 * -ENOSPC when the pool ran out) no spare block is reserved any more and
 * the block's index entry is the caller's to undo.
 */
static int write_spare(struct remap_c *rc, u64 block, u32 *spare, void *buf,
		       u64 *ticket)
{
	struct dmr_pdev *pdev = rc->pdev;
	unsigned int tries;
	int r;

	if (remap_spare_held(pdev)) {
		dmr_pool_unreserve(rc->pool, *spare);
		return -EIO;
	}
	for (tries = 0; ; tries++) {
		if (!sync_io(rc, rc->pool->spare.bdev, REQ_OP_WRITE, buf,
			     dmr_pool_spare_sector(rc->pool, *spare),
			     block_sectors(rc))) {
			if (READ_ONCE(pdev->spare_failed))
				remap_spare_answers(pdev, true);
			return 0;
		}
		DMERR_LIMIT("dev_id %u: spare block %u failed; retiring it",
			    rc->dev_id, *spare);
		*ticket = max(*ticket, dmr_pool_retire(rc->pool, *spare));
		if (tries + 1 >= SPARE_TRIES) {
			spare_failing(rc, DMR_SPARE_WRITES_FAIL);
			return -EIO;
		}
		r = dmr_pool_reserve(rc->pool, spare);
		if (r) {
			if (r == -ENOSPC)
				dmr_pool_exhausted(rc->pool);
			return r;
		}
		dmr_pdev_ix_set(pdev, block, *spare, RM_IX_BUSY);
	}
}

/*
 * Block is BUSY with spare block reserved: write buf (a whole block) to
 * it and record it MAPPED, or without buf record it PENDING.  On failure
 * the index entry is gone and write_spare() has released or retired the
 * spare block.
 */
static int keep_on_spare(struct remap_c *rc, struct fixes *f, u64 block,
			 u32 spare, void *buf)
{
	int r;

	if (buf) {
		r = write_spare(rc, block, &spare, buf, &f->ticket);
		if (r) {
			dmr_pdev_ix_delete(rc->pdev, block);
			return r;
		}
	}
	fixes_add(f, block, spare, buf ? RM_IX_MAPPED : RM_IX_PENDING,
		  dmr_pool_record(rc->pool, spare, rc->dev_id, block,
				  buf ? RM_ENTRY_MAPPED : RM_ENTRY_PENDING));
	return 0;
}

/*
 * Move block to the spare with the data in buf (a whole block), recording
 * it as MAPPED, or record it as PENDING (buf NULL: its data is lost).
 * If data covers only [off, off + len) of the block, the rest is read from
 * the main device first.
 */
static int move_block(struct remap_c *rc, u64 block, void *buf,
		      unsigned int off, unsigned int len, void *tmp,
		      struct fixes *f)
{
	unsigned int bbytes = block_sectors(rc) << SECTOR_SHIFT;
	struct dmr_pool *pool = rc->pool;
	u32 spare;
	int r;

	r = start_fix(rc, f, block, &spare);
	if (r)
		return r;
	if (buf) {
		if (len < bbytes) {
			unsigned int end = off + len;
			sector_t at = block << rc->shift;

			/*
			 * Keep the rest of the block: read it (not the part
			 * written, which may be what fails), lay the write
			 * over it.
			 */
			r = off ? sync_io(rc, rc->main_dev->bdev, REQ_OP_READ,
					  tmp, at, off >> SECTOR_SHIFT) : 0;
			if (!r && end < bbytes)
				r = sync_io(rc, rc->main_dev->bdev, REQ_OP_READ,
					    tmp + end, at + (end >> SECTOR_SHIFT),
					    (bbytes - end) >> SECTOR_SHIFT);
			if (r) {
				DMERR_LIMIT("dev_id %u: block %llu: partial write, rest unreadable",
					    rc->dev_id, (unsigned long long)block);
				dmr_pdev_ix_delete(rc->pdev, block);
				dmr_pool_unreserve(pool, spare);
				return -EIO;
			}
			memcpy(tmp + off, buf + off, len);
			buf = tmp;
		}
	}
	return keep_on_spare(rc, f, block, spare, buf);
}

/*
 * Where the block stands in the index: 0 or its RM_IX_* state (a repair
 * batch may have moved it since its bio was routed).
 */
static unsigned int block_state(struct dmr_pdev *pdev, u64 block, u32 *spare)
{
	struct dmr_ix *x = rcu_dereference_protected(pdev->ix,
				lockdep_is_held(&pdev->ix_lock));
	unsigned int state = 0;

	if (!rm_index_lookup(&x->ix, block, spare, &state))
		return 0;
	return state;
}

/*
 * May block get a spare block and a record?  It must lie wholly on this
 * table's main device and within the size dev_id's identity record holds
 * (the pool's load checks refuse records beyond it).  The record takes a
 * table's size at its preresume, so the second test is a safeguard.
 */
static bool block_recordable(struct remap_c *rc, u64 block)
{
	return block < rc->whole_blocks &&
	       block < dmr_pool_dev_whole_blocks(rc->pool, rc->dev_id);
}

/* ---- Moving a live block: forced and predictive remaps ------------------------------ */

/*
 * Move block (not in the index) to the spare with its current data: BUSY,
 * drained, read, written to a spare block, committed, published.  If it
 * cannot be read and may_lose is set, record it PENDING instead, unless
 * the main device fails everywhere.  Caller holds ix_lock.
 * Returns 0 (MAPPED), 1 (PENDING), -ENOSPC, -EIO (unreadable, the spare
 * unwritable or the block not recordable, nothing changed), -ENXIO
 * (may_lose: the main device fails everywhere, nothing changed) or
 * another error.
 */
static int move_live_block(struct remap_c *rc, u64 block, void *buf,
			   bool may_lose)
{
	struct fixes f = {};
	unsigned int tries, noio;
	u32 spare;
	int r, rd;

	if (!block_recordable(rc, block))
		return -EIO;	/* as unreadable: the scanner goes on */
	if (dmr_pool_free_blocks(rc->pool) == 0)
		return -ENOSPC;
	r = fixes_reserve(&f);
	if (r)
		return r;
	/* From BUSY on bios are held: no allocation may wait for I/O. */
	noio = memalloc_noio_save();
	/* BUSY and drained before the copy is read. */
	r = start_move(rc, block, &spare);
	if (r)
		goto out;
	for (tries = 0; tries < (may_lose ? READ_RETRIES : 1); tries++) {
		rd = sync_io(rc, rc->main_dev->bdev, REQ_OP_READ, buf,
			     block << rc->shift, block_sectors(rc));
		if (!rd)
			break;
	}
	if (!rd) {
		r = write_spare(rc, block, &spare, buf, &f.ticket);
		if (!r)
			fixes_add(&f, block, spare, RM_IX_MAPPED,
				  dmr_pool_record(rc->pool, spare, rc->dev_id,
						  block, RM_ENTRY_MAPPED));
		else
			dmr_pdev_ix_delete(rc->pdev, block);
	} else if (may_lose && probe_main(rc, buf)) {
		fixes_add(&f, block, spare, RM_IX_PENDING,
			  dmr_pool_record(rc->pool, spare, rc->dev_id, block,
					  RM_ENTRY_PENDING));
		r = 1;
	} else {
		dmr_pdev_ix_delete(rc->pdev, block);
		dmr_pool_unreserve(rc->pool, spare);
		r = may_lose ? -ENXIO : -EIO;
	}
	if (f.n || f.ticket) {
		int w = dmr_md_wait(rc->pool, f.ticket);

		fixes_finish(rc, &f, w);
		if (w)
			r = w;
	}
	remap_release_deferred(rc);
out:
	kfree(f.v);
	memalloc_noio_restore(noio);
	return r;
}

int remap_force(struct remap_c *rc, u64 block)
{
	struct dmr_pdev *pdev = rc->pdev;
	unsigned int state;
	void *buf;
	int r;

	if (!block_recordable(rc, block)) {
		DMERR_LIMIT("force_remap: block %llu: partial or past the recorded size",
			    (unsigned long long)block);
		return -EINVAL;
	}
	buf = vmalloc(block_sectors(rc) << SECTOR_SHIFT);
	if (!buf)
		return -ENOMEM;

	mutex_lock(&pdev->ix_lock);
	state = block_state(pdev, block, NULL);
	if (state) {
		DMERR_LIMIT("force_remap: block %llu is already %s", block,
			    state == RM_IX_PENDING ? "pending" : "remapped");
		r = -EEXIST;
	} else {
		r = move_live_block(rc, block, buf, false);
		if (r == -ENOSPC)
			DMERR_LIMIT("force_remap: pool %u has no free spare block",
				    rc->pool_id);
		else if (r == -EIO && READ_ONCE(rc->pool->md_error))
			DMERR_LIMIT("force_remap: pool %u: its metadata cannot be written",
				    rc->pool_id);
		else if (r == -EIO)
			DMERR_LIMIT("force_remap: block %llu: cannot read it or write the spare",
				    (unsigned long long)block);
	}
	mutex_unlock(&pdev->ix_lock);
	vfree(buf);
	return r;
}

/* ---- Scanner ------------------------------------------------------------------------- */

/* Whole blocks of the device: the scanner leaves a partial last block. */
u64 remap_scan_blocks(struct remap_c *rc)
{
	return rc->ti->len >> rc->shift;
}

/* The main device of this table (the scanner watches its disk's load). */
struct block_device *remap_main_bdev(struct remap_c *rc)
{
	return rc->main_dev->bdev;
}

/* A timed read at idle I/O priority; *ms is how long it took. */
static int scan_read(struct remap_c *rc, struct dm_io_client *io, void *buf,
		     sector_t sector, sector_t count, s64 *ms)
{
	ktime_t t0 = ktime_get();
	int r;

	r = io_prio(rc, io, rc->main_dev->bdev, REQ_OP_READ, buf, sector, count,
		    IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0));
	*ms = ktime_ms_delta(ktime_get(), t0);
	return r;
}

/* A timed read of one block at normal priority. */
static int timed_read(struct remap_c *rc, void *buf, u64 b, s64 *ms)
{
	ktime_t t0 = ktime_get();
	int r;

	r = sync_io(rc, rc->main_dev->bdev, REQ_OP_READ, buf, b << rc->shift,
		    block_sectors(rc));
	*ms = ktime_ms_delta(ktime_get(), t0);
	return r;
}

enum scan_finding { SCAN_OK, SCAN_SLOW, SCAN_RETRIED, SCAN_FAILED };

/*
 * Look at one block of a chunk that failed or was slow.  Read at normal
 * priority: an idle-class read may wait behind foreground I/O, which says
 * nothing about the medium.  Slow means two reads slower than slow_ms, the
 * second with the disk to itself: one that waited behind other I/O to the
 * disk says nothing either (the next pass looks again).  Other I/O is what
 * the disk's statistics show beyond dm-remap's own, and any bio mapped by
 * the pool's devices (a disk with queue/iostats 0 keeps no statistics).
 * Caller holds scan_lock (then pdev_lock, in dmr_pool_ios()).
 */
static enum scan_finding scan_block(struct remap_c *rc, void *buf, u64 b,
				    unsigned int slow_ms)
{
	unsigned long ios;
	unsigned int tries;
	u64 foreign;
	s64 ms;
	int r;

	for (tries = 0; tries <= READ_RETRIES; tries++) {
		r = timed_read(rc, buf, b, &ms);
		if (!r)
			break;
	}
	if (r)
		return SCAN_FAILED;
	if (tries)
		return SCAN_RETRIED;
	if (ms <= slow_ms)
		return SCAN_OK;
	foreign = dmr_disk_foreign(rc->main_dev->bdev);
	ios = dmr_pool_ios(rc->pool);
	r = timed_read(rc, buf, b, &ms);
	if (r)
		return SCAN_RETRIED;
	if (ms <= slow_ms ||
	    (s64)(dmr_disk_foreign(rc->main_dev->bdev) - foreign) > 0 ||
	    dmr_pool_ios(rc->pool) != ios)
		return SCAN_OK;
	return SCAN_SLOW;
}

/*
 * Blocks in the index live on the spare; their sectors on the main device
 * are not read again (a known-bad block's read may take the disk seconds
 * of retries, and logs an error each pass).  Returns how many blocks from
 * block on are in the index, and cuts *nr before the next one after
 * those.  Lock-free, as map() looks the index up: not behind ix_lock,
 * which a repair batch holds across its retries.  An entry added meanwhile
 * is found when the chunk is narrowed (block_state()), or by the next pass.
 */
static unsigned int scan_clip(struct dmr_pdev *pdev, u64 block,
			      unsigned int *nr)
{
	struct dmr_ix *x;
	unsigned int skip = 0;
	u64 found;

	rcu_read_lock_sched();
	x = rcu_dereference_sched(pdev->ix);
	while (skip < *nr && rm_index_lookup(&x->ix, block + skip, NULL, NULL))
		skip++;
	if (skip < *nr &&
	    rm_index_first_in_range(&x->ix, block + skip, block + *nr - 1,
				    &found, NULL, NULL))
		*nr = found - block;
	rcu_read_unlock_sched();
	return skip;
}

/*
 * Scan blocks [block, block + nr): one read at idle priority; if it fails
 * or is slower than slow_ms, every block alone (scan_block()).  A block
 * that reads only after retries or slowly is moved with its data
 * (predictive remap); one that does not read at all becomes pending.
 * Blocks in the index live on the spare and are skipped.  A block that
 * cannot be moved (the pool is exhausted or failed, the spare takes no
 * writes, it does not read now) is counted and left where it is: the
 * next pass looks again.
 *
 * res->done counts the blocks handled, res the findings of those, also
 * when an error stops the chunk early (the block it stopped at is neither:
 * it is looked at again).  res->read_ok is set if the main device read.
 * Stops early, returning 0, when the scanner is asked to let go of the
 * device (pdev->scan_abort).  Returns -ENXIO when the main device fails
 * everywhere (nothing recorded for that block), or another error.
 */
int remap_scan_chunk(struct remap_c *rc, struct dm_io_client *io, void *buf,
		     u64 block, unsigned int nr, unsigned int slow_ms,
		     struct dmr_scan_result *res)
{
	struct dmr_pdev *pdev = rc->pdev;
	enum scan_finding found;
	unsigned int state;
	s64 ms;
	int r;

	res->done = 0;
	if (atomic_read(&pdev->scan_abort))
		return 0;
	res->done = scan_clip(pdev, block, &nr);
	if (res->done == nr)
		return 0;
	r = scan_read(rc, io, buf, (block + res->done) << rc->shift,
		      (sector_t)(nr - res->done) << rc->shift, &ms);
	if (!r)
		res->read_ok = true;
	if (!r && ms <= slow_ms) {
		res->done = nr;
		return 0;
	}
	for (; res->done < nr; res->done++) {
		u64 b = block + res->done;

		if (atomic_read(&pdev->scan_abort))
			return 0;
		mutex_lock(&pdev->ix_lock);
		state = block_state(pdev, b, NULL);
		mutex_unlock(&pdev->ix_lock);
		if (state)
			continue;
		found = scan_block(rc, buf, b, slow_ms);
		if (found == SCAN_OK) {
			res->read_ok = true;
			continue;
		}
		if (found != SCAN_FAILED)
			res->read_ok = true;
		mutex_lock(&pdev->ix_lock);
		/* A repair may have moved it meanwhile. */
		r = block_state(pdev, b, NULL) ? -EEXIST :
		    move_live_block(rc, b, buf, found == SCAN_FAILED);
		mutex_unlock(&pdev->ix_lock);
		/*
		 * Not the medium's (-ENXIO), or not handled (no memory):
		 * not counted, looked at again.  A failed pool is as an
		 * exhausted one, whatever error its commit failed with.
		 */
		if (r == -ENXIO || (r < 0 && r != -EEXIST && r != -EIO &&
				    r != -ENOSPC && !READ_ONCE(rc->pool->md_error)))
			return r;
		if (r == 0 || r == 1)
			res->read_ok = true;	/* it, or the probe elsewhere */
		if (found == SCAN_FAILED)
			res->failed++;
		else if (found == SCAN_RETRIED)
			res->retried++;
		else
			res->slow++;
		if (r == 0) {
			res->predictive++;
			DMINFO_LIMIT("dev_id %u: scanner: block %llu %s: remapped with its data",
				     rc->dev_id, (unsigned long long)b,
				     found == SCAN_SLOW ? "is slow" :
				     found == SCAN_RETRIED ? "read only after retries" :
							     "failed, then read on the move");
		} else if (r == 1) {
			res->pending++;
			DMERR_LIMIT("dev_id %u: scanner: block %llu is unreadable: now pending",
				    rc->dev_id, (unsigned long long)b);
		} else if (r == -ENOSPC) {
			dmr_pool_exhausted(rc->pool);
		}
	}
	return 0;
}

/* ---- Repairs after I/O errors -------------------------------------------------------- */

struct repair_ctx {
	struct remap_c *rc;
	void *buf;		/* one block */
	void *tmp;		/* one block */
	struct fixes f;
	int alive;		/* probe of the main device: 0 not yet, 1 ok, -1 failed */
	int spare_alive;	/* the same for the spare */
};

/* An error that is not the medium's: pass it through. */
static blk_status_t wholesale(struct repair_ctx *c, blk_status_t status)
{
	struct dmr_pdev *pdev = c->rc->pdev;

	if (!READ_ONCE(pdev->main_failed)) {
		WRITE_ONCE(pdev->main_failed, true);
		DMERR_LIMIT("dev_id %u: main device fails everywhere; passing its errors through",
			    c->rc->dev_id);
		dmr_pdev_event(pdev);
	}
	return status;
}

/*
 * Probe the spare once per batch before relocating a block off a spare
 * block that failed: if the spare fails everywhere (pulled, dead), its
 * errors pass through and no block is retired.
 */
static bool spare_alive(struct repair_ctx *c)
{
	struct remap_c *rc = c->rc;

	if (remap_spare_held(rc->pdev))
		return false;
	if (!c->spare_alive) {
		c->spare_alive = probe_dev(rc, rc->pool->spare.bdev, c->tmp) ?
				 1 : -1;
		if (c->spare_alive < 0)
			spare_failing(rc, DMR_SPARE_READS_FAIL);
		else
			clear_bit(DMR_SPARE_READS_FAIL, &rc->pdev->spare_failed);
	}
	return c->spare_alive > 0;
}

/*
 * Does the main device still take writes?  Rewrite one block of the
 * device with its own data, at its start, middle or end (the first block
 * from there with no index entry, other than the block in repair, which
 * has none yet and gets its own move), held BUSY meanwhile so that no other
 * write to it comes between the read and the rewrite.  A block the device
 * writes settles it.  A block that does not read says nothing (the next
 * place is tried); one that reads but is not written back moves to its
 * reserved spare block with the data just read, as the failed write may
 * have left it unreadable.  When no block could be tried (none readable,
 * or no free spare block to hold one with), nothing is known: say yes.
 */
static bool main_takes_writes(struct repair_ctx *c, u64 in_repair)
{
	struct remap_c *rc = c->rc;
	struct block_device *bdev = rc->main_dev->bdev;
	u64 n = min(rc->whole_blocks, remap_scan_blocks(rc));
	u64 where[3] = { 0, n / 2, n - 1 };
	unsigned int i, tried = 0;
	u32 spare;
	u64 b;

	for (i = 0; i < ARRAY_SIZE(where) && n; i++) {
		for (b = where[i]; b < n && b < where[i] + 4; b++)
			if (b != in_repair && block_recordable(rc, b) &&
			    !block_state(rc->pdev, b, NULL))
				break;
		if (b == n || b == where[i] + 4 ||
		    start_fix(rc, &c->f, b, &spare))
			continue;
		if (sync_io(rc, bdev, REQ_OP_READ, c->tmp, b << rc->shift,
			    block_sectors(rc))) {
			dmr_pdev_ix_delete(rc->pdev, b);
			dmr_pool_unreserve(rc->pool, spare);
			continue;
		}
		if (!sync_io(rc, bdev, REQ_OP_WRITE, c->tmp, b << rc->shift,
			     block_sectors(rc))) {
			dmr_pdev_ix_delete(rc->pdev, b);
			dmr_pool_unreserve(rc->pool, spare);
			return true;
		}
		tried++;
		if (!keep_on_spare(rc, &c->f, b, spare, c->tmp))
			DMINFO_LIMIT("dev_id %u: block %llu did not take a rewrite: remapped",
				     rc->dev_id, (unsigned long long)b);
	}
	return !tried;
}

/*
 * May block, whose write failed on the main device, move to the spare?
 * A device gone read-only (a worn-out SSD, a write-protected disk) still
 * reads, so main_alive() does not see it, and would use a spare block
 * for each block written.  After DMR_MAIN_WRITE_MOVES - 1 such moves with
 * no write to the main device succeeding in between, check that it takes
 * writes elsewhere; if not, its write errors pass through (the count
 * stays at DMR_MAIN_WRITE_MOVES, dmr_main_writes_fail()) until a write
 * to it succeeds.
 */
static bool main_write_may_move(struct repair_ctx *c, u64 block)
{
	struct dmr_pdev *pdev = c->rc->pdev;

	if (dmr_main_writes_fail(pdev))
		return false;
	if (atomic_read(&pdev->main_write_moves) < DMR_MAIN_WRITE_MOVES - 1)
		return true;
	/* A write that succeeded meanwhile reset the count: go on. */
	if (main_takes_writes(c, block) ||
	    atomic_cmpxchg(&pdev->main_write_moves, DMR_MAIN_WRITE_MOVES - 1,
			   DMR_MAIN_WRITE_MOVES) != DMR_MAIN_WRITE_MOVES - 1) {
		atomic_set(&pdev->main_write_moves, 0);
		return true;
	}
	DMERR_LIMIT("dev_id %u: main device takes no writes; passing its write errors through",
		    c->rc->dev_id);
	dmr_pdev_event(pdev);
	return false;
}

/* Probe the main device once per batch. */
static bool main_alive(struct repair_ctx *c)
{
	if (!c->alive)
		c->alive = probe_main(c->rc, c->tmp) ? 1 : -1;
	return c->alive > 0;
}

/* An error in a block that cannot be recorded (block_recordable()). */
static void unrecordable_error(struct remap_c *rc, u64 b, const char *op)
{
	DMERR_LIMIT("dev_id %u: %s error in block %llu (partial or past the recorded size)",
		    rc->dev_id, op, (unsigned long long)b);
}

/* The fix this batch made for block, if any. */
static struct fix *find_fix(struct repair_ctx *c, u64 block)
{
	unsigned int i;

	for (i = 0; i < c->f.n; i++)
		if (c->f.v[i].block == block)
			return &c->f.v[i];
	return NULL;
}

/* I/O to [bs, be) of a block that lives in spare block @spare. */
static int spare_io(struct repair_ctx *c, blk_opf_t opf, u32 spare, u64 b,
		    sector_t bs, sector_t be, void *buf)
{
	struct remap_c *rc = c->rc;

	return sync_io(rc, rc->pool->spare.bdev, opf, buf,
		       dmr_pool_spare_sector(rc->pool, spare) +
		       (bs - (b << rc->shift)), be - bs);
}

/* Did the bio fail on spare block @spare? */
static bool failed_on(struct remap_io *io, u32 spare)
{
	return io->to_spare && io->spare == spare;
}

/* Read bytes [from, to) of block b from spare block @spare into c->tmp. */
static int read_spare_part(struct repair_ctx *c, u32 spare, u64 b,
			   unsigned int from, unsigned int to)
{
	sector_t at = b << c->rc->shift;
	unsigned int tries;

	for (tries = 0; tries < READ_RETRIES; tries++)
		if (!spare_io(c, REQ_OP_READ, spare, b,
			      at + (from >> SECTOR_SHIFT),
			      at + (to >> SECTOR_SHIFT), c->tmp + from))
			return 0;
	return -EIO;
}

/*
 * Block b's spare block @old failed an I/O: retire it and give the block a
 * new one.  The write being repaired covers [off, off + len) of the block
 * (its data in c->buf at that offset; len 0 for a read).  The block is
 * BUSY on a new spare block and drained; the rest of its data is read
 * from the old spare block and written with the write's part to the new
 * one; the old one is retired and the new one recorded for the same
 * commit, so that a crash leaves one mapping or the other.  If the rest
 * cannot be read, the block becomes PENDING on the new spare block: its
 * data is lost.  Leaves the block's data in c->tmp.
 * Returns 0 (moved with its data), 1 (now PENDING), 2 (not moved: no new
 * spare block took the write; the data is in c->tmp all the same), or
 * -ENOSPC or another error with nothing changed.
 */
static int relocate_block(struct repair_ctx *c, u64 b, u32 old,
			  unsigned int old_state, unsigned int off,
			  unsigned int len)
{
	struct remap_c *rc = c->rc;
	unsigned int bbytes = block_sectors(rc) << SECTOR_SHIFT;
	unsigned int end = off + len, state = RM_IX_MAPPED;
	u64 ticket;
	u32 spare;
	int r;

	if (!spare_alive(c))
		return -EIO;
	r = start_fix(rc, &c->f, b, &spare);
	if (r)
		return r;
	if ((off && read_spare_part(c, old, b, 0, off)) ||
	    (end < bbytes && read_spare_part(c, old, b, end, bbytes)))
		state = RM_IX_PENDING;
	if (state == RM_IX_MAPPED) {
		memcpy(c->tmp + off, c->buf + off, len);
		r = write_spare(rc, b, &spare, c->tmp, &c->f.ticket);
		if (r) {
			/*
			 * No new spare block took it: the old entry stays.
			 * The data read is in c->tmp.
			 */
			dmr_pdev_ix_set(rc->pdev, b, old, old_state);
			return 2;
		}
	}
	ticket = dmr_pool_relocate(rc->pool, old, spare, rc->dev_id, b,
				   entry_state(state));
	fixes_replace(&c->f, b, spare, state, old, old_state, ticket);
	DMERR_LIMIT("dev_id %u: block %llu: spare block %u failed, retired; %s spare block %u",
		    rc->dev_id, (unsigned long long)b, old,
		    state == RM_IX_MAPPED ? "data moved to" :
					    "data unreadable, pending on",
		    spare);
	return state == RM_IX_MAPPED ? 0 : 1;
}

/*
 * The data of a write for [bs, be) of block b (in c->buf at its offset in
 * the block), wherever the block stands now: it may have been remapped,
 * become pending, or been moved by this batch since the bio was routed.
 * Returns 0 when written, 1 when the block must be moved, <0 on failure.
 */
static int write_where_it_lives(struct repair_ctx *c, struct bio *bio, u64 b,
				sector_t bs, sector_t be)
{
	struct remap_c *rc = c->rc;
	struct remap_io *io = remap_io(bio);
	blk_opf_t opf = REQ_OP_WRITE | (bio->bi_opf & REQ_FUA);
	unsigned int off = (bs - (b << rc->shift)) << SECTOR_SHIFT;
	unsigned int len = (be - bs) << SECTOR_SHIFT;
	bool whole = be - bs == block_sectors(rc);
	struct fix *fx = find_fix(c, b);
	u32 spare;
	unsigned int state = fx ? fx->state : block_state(rc->pdev, b, &spare);
	int r;

	if (fx)
		spare = fx->spare;
	if (!state)
		return 1;
	if (state == RM_IX_PENDING) {
		/* Lost data: only a write of the whole block brings it back. */
		if (!whole)
			return -EIO;
		/*
		 * Room for the heal's new fix.  Not with fx: that fix is
		 * changed in place, and growing the array would move it.
		 */
		r = fx ? 0 : fixes_reserve(&c->f);
		if (r)
			return r;
		if (spare_io(c, opf, spare, b, bs, be, c->buf + off)) {
			/* Its spare block fails: heal it on another one. */
			if (fx || relocate_block(c, b, spare, state, off, len))
				return -EIO;
			return 0;
		}
		if (fx) {
			fx->state = RM_IX_MAPPED;	/* pending since this batch */
			fx->ticket = dmr_pool_heal(rc->pool, spare);
			c->f.ticket = max(c->f.ticket, fx->ticket);
		} else {
			fixes_replace(&c->f, b, spare, RM_IX_MAPPED, spare,
				      RM_IX_PENDING, dmr_pool_heal(rc->pool, spare));
		}
		DMINFO_LIMIT("dev_id %u: pending block %llu overwritten: remapped",
			     rc->dev_id, (unsigned long long)b);
		return 0;
	}
	/* MAPPED, or moved by this batch with its data: the spare takes it. */
	if (!failed_on(io, spare) &&
	    !spare_io(c, opf, spare, b, bs, be, c->buf + off))
		return 0;
	if (fx)
		return -EIO;
	r = relocate_block(c, b, spare, state, off, len);
	if (r == 1)
		return -EIO;	/* the rest of the block is lost */
	if (!r)
		return 0;
	/*
	 * Not relocated (no free or writable spare block, the spare fails
	 * everywhere, no memory): one more try where it is.
	 */
	return spare_io(c, opf, spare, b, bs, be, c->buf + off) ? -EIO : 0;
}

static blk_status_t repair_write(struct repair_ctx *c, struct bio *bio)
{
	struct remap_c *rc = c->rc;
	struct remap_io *io = remap_io(bio);
	sector_t s = io->iter.bi_sector;
	sector_t e = s + (io->iter.bi_size >> SECTOR_SHIFT);
	u64 b;
	int r;

	for (b = s >> rc->shift; (b << rc->shift) < e; b++) {
		sector_t bs = max_t(sector_t, s, b << rc->shift);
		sector_t be = min_t(sector_t, e, (b + 1) << rc->shift);
		unsigned int off = (bs - (b << rc->shift)) << SECTOR_SHIFT;
		unsigned int len = (be - bs) << SECTOR_SHIFT;

		if (bio_op(bio) == REQ_OP_WRITE_ZEROES)
			memset(c->buf + off, 0, len);	/* a pending block's heal */
		else
			bio_copy(bio, io->iter, (bs - s) << SECTOR_SHIFT,
				 c->buf + off, len, false);
		r = write_where_it_lives(c, bio, b, bs, be);
		if (r < 0)
			return BLK_STS_IOERR;
		if (!r)
			continue;
		/*
		 * Retry on the main device first: a good block costs no
		 * spare.  FUA is kept; data moved to the spare is made stable
		 * by the commit's flush.
		 */
		if (!sync_io(rc, rc->main_dev->bdev,
			     REQ_OP_WRITE | (bio->bi_opf & REQ_FUA), c->buf + off,
			     bs, be - bs)) {
			remap_main_wrote(rc->pdev);
			continue;
		}
		if (!block_recordable(rc, b)) {
			unrecordable_error(rc, b, "write");
			return io->status;
		}
		if (!main_alive(c))
			return wholesale(c, io->status);
		if (!main_write_may_move(c, b))
			return io->status;
		if (move_block(rc, b, c->buf, off, len, c->tmp, &c->f))
			return io->status;
		DMINFO_LIMIT("dev_id %u: write error on block %llu: remapped",
			     rc->dev_id, (unsigned long long)b);
		atomic_inc(&rc->pdev->main_write_moves);
	}
	return BLK_STS_OK;
}

/*
 * Read [bs, be) of block b into c->buf wherever the block lives now; for
 * a block on a spare block that fails, relocate it first.
 * Returns 0 when read, 1 when the main device must be tried, <0 if lost.
 */
static int read_where_it_lives(struct repair_ctx *c, struct remap_io *io,
			       u64 b, sector_t bs, sector_t be)
{
	struct fix *fx = find_fix(c, b);
	u32 spare;
	unsigned int state = fx ? fx->state : block_state(c->rc->pdev, b, &spare);
	unsigned int off = (bs - (b << c->rc->shift)) << SECTOR_SHIFT;
	unsigned int tries;
	int r;

	if (fx)
		spare = fx->spare;
	if (!state)
		return 1;
	if (state == RM_IX_PENDING)
		return -EIO;
	if (!failed_on(io, spare) &&
	    !spare_io(c, REQ_OP_READ, spare, b, bs, be, c->buf))
		return 0;
	if (fx)
		return -EIO;
	r = relocate_block(c, b, spare, state, 0, 0);
	if (!r || r == 2) {
		memcpy(c->buf, c->tmp + off, (be - bs) << SECTOR_SHIFT);
		return 0;
	}
	if (r == 1)
		return -EIO;	/* unreadable: now pending */
	/* Not relocated (as above): read it where it is if it can be. */
	for (tries = 0; tries < READ_RETRIES; tries++)
		if (!spare_io(c, REQ_OP_READ, spare, b, bs, be, c->buf))
			return 0;
	return -EIO;
}

/*
 * Record block b as pending: its data could not be read.  After the drain
 * no write to it is in flight any more, so it is read once more: a write
 * that landed meanwhile may have made it readable, and then nothing is
 * lost.  And the main device is probed again, not trusting the batch's
 * probe: a device that dropped out since must not have its readable blocks
 * recorded as lost.  Returns 0 if recorded, 1 if it read after all (data
 * in c->buf), -ENXIO if the main device fails everywhere now.
 */
static int record_lost(struct repair_ctx *c, u64 b, sector_t bs, sector_t be)
{
	struct remap_c *rc = c->rc;
	u32 spare;
	int r;

	r = start_fix(rc, &c->f, b, &spare);
	if (r)
		return r;
	if (!sync_io(rc, rc->main_dev->bdev, REQ_OP_READ, c->buf, bs, be - bs))
		r = 1;
	else if (!probe_main(rc, c->tmp))
		r = -ENXIO;
	if (r) {
		if (r < 0)
			c->alive = -1;
		dmr_pdev_ix_delete(rc->pdev, b);
		dmr_pool_unreserve(rc->pool, spare);
		return r;
	}
	fixes_add(&c->f, b, spare, RM_IX_PENDING,
		  dmr_pool_record(rc->pool, spare, rc->dev_id, b,
				  RM_ENTRY_PENDING));
	DMERR_LIMIT("dev_id %u: block %llu is unreadable: now pending",
		    rc->dev_id, (unsigned long long)b);
	return 0;
}

static blk_status_t repair_read(struct repair_ctx *c, struct bio *bio)
{
	struct remap_c *rc = c->rc;
	struct remap_io *io = remap_io(bio);
	sector_t s = io->iter.bi_sector;
	sector_t e = s + (io->iter.bi_size >> SECTOR_SHIFT);
	blk_status_t status = BLK_STS_OK;
	unsigned int tries;
	u64 b;

	for (b = s >> rc->shift; (b << rc->shift) < e; b++) {
		sector_t bs = max_t(sector_t, s, b << rc->shift);
		sector_t be = min_t(sector_t, e, (b + 1) << rc->shift);
		unsigned int len = (be - bs) << SECTOR_SHIFT;
		int r = read_where_it_lives(c, io, b, bs, be);

		for (tries = 0; tries < READ_RETRIES && r > 0; tries++)
			r = sync_io(rc, rc->main_dev->bdev, REQ_OP_READ, c->buf,
				    bs, be - bs) ? 1 : 0;
		if (r > 0 && !block_recordable(rc, b)) {
			unrecordable_error(rc, b, "read");
			r = -EIO;
		}
		if (r > 0) {
			if (!main_alive(c))
				return wholesale(c, io->status);
			r = record_lost(c, b, bs, be);
			if (r == -ENXIO)
				return wholesale(c, io->status);
			if (r < 0)
				return io->status;
			r = r ? 0 : -EIO;
		}
		if (r) {
			status = BLK_STS_IOERR;	/* exactly this block is lost */
			continue;
		}
		bio_copy(bio, io->iter, (bs - s) << SECTOR_SHIFT, c->buf, len,
			 true);
	}
	return status;
}

/*
 * The error worker of a device: repairs every bio queued so far, commits
 * all the new entries at once, then completes the bios.
 */
void remap_repair_work(struct work_struct *ws)
{
	struct dmr_pdev *pdev = container_of(ws, struct dmr_pdev, err_work);
	struct repair_ctx c = {};
	struct bio_list bios, done;
	unsigned int noio;
	struct bio *bio;
	int r = 0;

	spin_lock_irq(&pdev->err_lock);
	bios = pdev->failed;
	bio_list_init(&pdev->failed);
	spin_unlock_irq(&pdev->err_lock);
	if (bio_list_empty(&bios))
		return;

	c.buf = pdev->repair_buf;
	c.tmp = c.buf + ((size_t)1 << (dmr_pool_block_shift(pdev->pool) +
				       SECTOR_SHIFT));
	noio = memalloc_noio_save();
	bio_list_init(&done);
	mutex_lock(&pdev->ix_lock);
	while ((bio = bio_list_pop(&bios))) {
		struct remap_io *io = remap_io(bio);
		blk_status_t st;

		if (c.rc != io->rc) {
			c.rc = io->rc;
			c.alive = 0;
			c.spare_alive = 0;
		}
		if (op_is_write(bio_op(bio)))
			st = repair_write(&c, bio);
		else
			st = repair_read(&c, bio);
		io->status = st;
		bio_list_add(&done, bio);
	}
	if (c.f.n || c.f.ticket) {
		r = dmr_md_wait(pdev->pool, c.f.ticket);
		fixes_finish(c.rc, &c.f, r);
	}
	if (c.rc)
		remap_release_deferred(c.rc);
	mutex_unlock(&pdev->ix_lock);
	memalloc_noio_restore(noio);

	while ((bio = bio_list_pop(&done))) {
		struct remap_io *io = remap_io(bio);

		io->handled = 1;
		bio->bi_status = r ? BLK_STS_IOERR : io->status;
		bio_endio(bio);
	}
	kfree(c.f.v);
}

/* Called from end_io (any context): hand the bio to the error worker. */
void remap_queue_repair(struct remap_c *rc, struct bio *bio)
{
	struct dmr_pdev *pdev = rc->pdev;
	unsigned long flags;

	/*
	 * Queued under the lock: once the lock is dropped the worker may end
	 * the bio, and the table (and pdev) may go away.
	 */
	spin_lock_irqsave(&pdev->err_lock, flags);
	bio_list_add(&pdev->failed, bio);
	queue_work(rc->pool->err_wq, &pdev->err_work);
	spin_unlock_irqrestore(&pdev->err_lock, flags);
}
