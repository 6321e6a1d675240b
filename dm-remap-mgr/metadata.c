// SPDX-License-Identifier: GPL-2.0-only
/*
 * metadata.c - the metadata engine of a spare pool.
 *
 * On-disk layout and load rule: Documentation/on-disk-format.md and
 * common/rm_format.h.  The whole table is kept in memory; a change marks
 * the logical table block that holds it dirty and gets a ticket
 * (dmr_md_dirty), and whoever must not proceed before the change is durable
 * waits for its ticket (dmr_md_wait).  One commit covers every change made
 * before it started (group commit), in two phases:
 *
 *   1. each dirty logical block is written, both copies, to the pair that
 *      does not hold its committed version, stamped with the new seq;
 *   2. after those writes completed, all superblock copies are written with
 *      the new seq, each with PREFLUSH|FUA: the commit point.
 *
 * Power loss before the first new superblock copy is stable leaves the old
 * state (the new table blocks carry a seq above the superblock's and are
 * ignored); after it, the new state.  The commit daemon is the pool's
 * WQ_MEM_RECLAIM workqueue; it is the only writer of metadata blocks.
 */
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/sizes.h>
#include <linux/uuid.h>
#include <linux/vmalloc.h>

#include "pool.h"

#define DM_MSG_PREFIX "remap-mgr"

/* Logical blocks read per round at load: 2 regions of 2 * this many blocks. */
#define MD_LOAD_BATCH	64

/* ---- Block I/O ----------------------------------------------------------- */

struct md_batch {
	atomic_t pending;
	int error;
	struct completion done;
};

static void md_batch_init(struct md_batch *b)
{
	atomic_set(&b->pending, 1);
	b->error = 0;
	init_completion(&b->done);
}

static void md_batch_endio(unsigned long error, void *context)
{
	struct md_batch *b = context;

	if (error)
		WRITE_ONCE(b->error, -EIO);
	if (atomic_dec_and_test(&b->pending))
		complete(&b->done);
}

/* Drop the submitter's reference and wait for every I/O of the batch. */
static int md_batch_wait(struct md_batch *b)
{
	md_batch_endio(0, b);
	wait_for_completion_io(&b->done);
	return READ_ONCE(b->error);
}

/*
 * Read or write nr md blocks at blocknr from/to buf (vmalloc or kmalloc
 * memory).  With b the I/O is asynchronous and accounted in b; without it
 * the call waits.
 */
static int md_io(struct dm_io_client *io, struct block_device *bdev,
		 blk_opf_t opf, void *buf, u64 blocknr, unsigned int nr,
		 struct md_batch *b)
{
	struct dm_io_region where = {
		.bdev = bdev,
		.sector = rm_md_sector(blocknr),
		.count = (sector_t)nr * RM_MD_BLOCK_SECTORS,
	};
	struct dm_io_request req = {
		.bi_opf = opf,
		.client = io,
	};
	int r;

	if (is_vmalloc_addr(buf)) {
		req.mem.type = DM_IO_VMA;
		req.mem.ptr.vma = buf;
	} else {
		req.mem.type = DM_IO_KMEM;
		req.mem.ptr.addr = buf;
	}
	/* The spare may share a main device's disk: see dmr_own_io(). */
	dmr_own_io(bdev, where.count);
	if (b) {
		req.notify.fn = md_batch_endio;
		req.notify.context = b;
		atomic_inc(&b->pending);
	}
	r = rm_dm_io(&req, 1, &where, NULL);
	if (r && b)
		md_batch_endio(1, b);
	return r;
}

static const char *md_err(int err)
{
	return rm_strerror(err);
}

/*
 * Read nr md blocks; if that fails, read them one by one and zero the
 * ones that cannot be read (a zeroed block is an invalid copy, so the
 * load rule falls back to the other copies) and, if bad is not NULL, set
 * their bits in it.  Returns the number of unreadable blocks.
 */
static unsigned int md_read_tolerant(struct dm_io_client *io,
				     struct block_device *bdev, void *buf,
				     u64 blocknr, unsigned int nr,
				     unsigned long *bad)
{
	unsigned int i, nr_bad = 0;

	if (bad)
		bitmap_zero(bad, nr);
	if (!md_io(io, bdev, REQ_OP_READ, buf, blocknr, nr, NULL))
		return 0;
	for (i = 0; i < nr; i++) {
		void *blk = buf + (size_t)i * RM_MD_BLOCK_SIZE;

		if (md_io(io, bdev, REQ_OP_READ, blk, blocknr + i, 1, NULL)) {
			memset(blk, 0, RM_MD_BLOCK_SIZE);
			DMWARN_LIMIT("%pg: metadata block %llu is unreadable",
				     bdev, (unsigned long long)(blocknr + i));
			if (bad)
				__set_bit(i, bad);
			nr_bad++;
		}
	}
	return nr_bad;
}

/* ---- Format -------------------------------------------------------------- */

/*
 * Does the device already hold a pool with a valid superblock copy?  1 if
 * so (the newest in *found), 0 if not; *unreadable counts the copies that
 * cannot be read (a pending sector of a disk used before), whose content
 * is unknown.
 */
static int md_probe(struct dm_io_client *io, struct block_device *bdev,
		    void *buf, struct rm_sb *found, unsigned int *unreadable)
{
	unsigned int i;
	int valid = 0;

	*unreadable = md_read_tolerant(io, bdev, buf, 0, RM_SB_COPIES, NULL);
	for (i = 0; i < RM_SB_COPIES; i++) {
		struct rm_sb sb;

		if (rm_sb_decode(buf + i * RM_MD_BLOCK_SIZE, i, &sb))
			continue;
		if (!valid || sb.seq > found->seq)
			*found = sb;
		valid = 1;
	}
	return valid;
}

static int md_format_table(struct dm_io_client *io, struct block_device *bdev,
			   const struct rm_sb *sb, void *buf)
{
	const struct rm_geometry *g = &sb->geo;
	struct rm_dev *devs;
	struct md_batch b;
	u32 l, n, i;
	int r = 0;

	/* A fresh pool: no devices, no labels, every entry free (all zero). */
	devs = kcalloc(RM_MAX_DEVS, sizeof(*devs), GFP_KERNEL);
	if (!devs)
		return -ENOMEM;
	for (l = 0; l < g->nr_logical && !r; l += n) {
		n = min_t(u64, MD_LOAD_BATCH, g->nr_logical - l);
		md_batch_init(&b);
		for (i = 0; i < n && !r; i++) {
			struct rm_tblock_hdr hdr = {
				.logical = l + i,
				.blocknr = rm_slot_blocknr(g, l + i, 0),
				.seq = sb->seq,
			};
			void *blk0 = buf + 2 * i * RM_MD_BLOCK_SIZE;
			void *blk1 = blk0 + RM_MD_BLOCK_SIZE;

			memcpy(hdr.uuid, sb->uuid, RM_UUID_SIZE);
			r = rm_tblock_encode(blk0, &hdr, g, devs, NULL, NULL);
			if (r) {
				DMERR("format: encoding logical %u: %s", l + i,
				      md_err(r));
				r = -EINVAL;
				break;
			}
			memcpy(blk1, blk0, RM_MD_BLOCK_SIZE);
			rm_tblock_relocate(blk1, rm_slot_blocknr(g, l + i, 1));
			md_io(io, bdev, REQ_OP_WRITE, blk0, rm_slot_blocknr(g, l + i, 0),
			      1, &b);
			md_io(io, bdev, REQ_OP_WRITE, blk1, rm_slot_blocknr(g, l + i, 1),
			      1, &b);
		}
		if (md_batch_wait(&b) && !r)
			r = -EIO;
	}
	kfree(devs);
	return r;
}

static int md_write_sbs(struct dm_io_client *io, struct block_device *bdev,
			const struct rm_sb *sb, void *buf)
{
	struct md_batch b;
	unsigned int i;
	int r;

	for (i = 0; i < RM_SB_COPIES; i++) {
		void *blk = buf + i * RM_MD_BLOCK_SIZE;

		if (sb) {
			r = rm_sb_encode(blk, sb, i);
			if (r)
				return -EINVAL;
		} else {
			memset(blk, 0, RM_MD_BLOCK_SIZE);
		}
	}
	md_batch_init(&b);
	for (i = 0; i < RM_SB_COPIES; i++)
		md_io(io, bdev, REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA | REQ_SYNC,
		      buf + i * RM_MD_BLOCK_SIZE, rm_sb_blocknr(i), 1, &b);
	return md_batch_wait(&b);
}

/*
 * Write a fresh, empty pool onto bdev (held exclusively by the caller).
 * The old superblocks are destroyed first, so an interrupted format leaves
 * no pool rather than an old superblock over a half-new table.
 */
int dmr_md_format(struct dm_io_client *io, struct block_device *bdev,
		  u32 block_size, bool force)
{
	size_t bufsz = max_t(size_t, 2 * MD_LOAD_BATCH, RM_SB_COPIES) *
		       RM_MD_BLOCK_SIZE;
	struct rm_sb sb, old;
	unsigned int unreadable;
	void *buf;
	u64 *seqs;
	int r, slot;

	/* Each spare block is one I/O: no smaller than what the device takes. */
	if (block_size < bdev_logical_block_size(bdev)) {
		DMERR_LIMIT("format_spare: %pg: block_size %u is below its logical block size %u",
			    bdev, block_size, bdev_logical_block_size(bdev));
		return -EINVAL;
	}
	memset(&sb, 0, sizeof(sb));
	r = rm_geometry_compute(bdev_nr_sectors(bdev), block_size, &sb.geo);
	if (r == -RM_E_TOO_SMALL) {
		DMERR_LIMIT("format_spare: %pg is too small for a pool (%llu sectors)",
			    bdev, (unsigned long long)bdev_nr_sectors(bdev));
		return -ENOSPC;
	}
	if (r) {
		DMERR_LIMIT("format_spare: %pg: %s", bdev, md_err(r));
		return -EINVAL;
	}

	buf = vmalloc(bufsz);
	seqs = kvmalloc_array(sb.geo.nr_logical, sizeof(*seqs), GFP_KERNEL);
	if (!buf || !seqs) {
		r = -ENOMEM;
		goto out;
	}

	r = md_probe(io, bdev, buf, &old, &unreadable);
	if (unreadable == RM_SB_COPIES) {
		DMERR_LIMIT("format_spare: cannot read %pg", bdev);
		r = -EIO;
		goto out;
	}
	/*
	 * The spare of an active pool is held exclusively, but not when it is
	 * reached through another path (a loop device over it): refuse even
	 * with force.  A copy of an active pool carries its uuid too and is
	 * refused the same way, as resume_spare refuses it.
	 */
	slot = r > 0 ? dmr_pool_uuid_slot(old.uuid) : -1;
	if (slot >= 0) {
		DMERR_LIMIT("format_spare: %pg holds pool %pUb, which is active in slot %d (%s)",
			    bdev, old.uuid, slot,
			    "the same disk by another path, or a copy of it");
		r = -EBUSY;
		goto out;
	}
	if (r && !force) {
		DMERR_LIMIT("format_spare: %pg holds a valid pool (seq %llu): 'force' to overwrite",
			    bdev, (unsigned long long)old.seq);
		r = -EEXIST;
		goto out;
	}
	/* An unreadable copy may be the one that holds a pool. */
	if (unreadable && !force) {
		DMERR_LIMIT("format_spare: %pg: %u of 8 superblock blocks unreadable: need 'force'",
			    bdev, unreadable);
		r = -EEXIST;
		goto out;
	}

	r = md_write_sbs(io, bdev, NULL, buf);
	if (r)
		goto io_err;

	sb.seq = 1;
	generate_random_uuid(sb.uuid);
	memset64(seqs, sb.seq, sb.geo.nr_logical);
	sb.table_digest = rm_table_digest(seqs, sb.geo.nr_logical);

	r = md_format_table(io, bdev, &sb, buf);
	if (r)
		goto io_err;
	r = md_write_sbs(io, bdev, &sb, buf);
	if (r)
		goto io_err;
	DMINFO("formatted %pg: %llu blocks of %u bytes", bdev,
	       (unsigned long long)sb.geo.nr_blocks, sb.geo.block_size);
	goto out;

io_err:
	if (r == -EIO)
		DMERR_LIMIT("format_spare: write error on %pg", bdev);
out:
	kvfree(seqs);
	vfree(buf);
	return r;
}

/* ---- Load ----------------------------------------------------------------- */

static int md_load_sb(struct dmr_pool *pool, void *buf, u64 *max_seen)
{
	struct rm_slot_state st[RM_SB_COPIES];
	struct rm_sb sbs[RM_SB_COPIES];
	unsigned int i;
	int best, r;

	if (md_read_tolerant(pool->io, pool->spare.bdev, buf, 0, RM_SB_COPIES,
			     NULL) == RM_SB_COPIES) {
		DMERR_LIMIT("resume_spare: cannot read any superblock of %s",
			    pool->spare_name);
		return -EIO;
	}
	for (i = 0; i < RM_SB_COPIES; i++) {
		r = rm_sb_decode(buf + i * RM_MD_BLOCK_SIZE, i, &sbs[i]);
		st[i].valid = !r;
		st[i].seq = r ? 0 : sbs[i].seq;
		if (r)
			DMWARN_LIMIT("%s: superblock copy %u invalid: %s",
				     pool->spare_name, i, md_err(r));
	}
	best = rm_sb_pick(st, RM_SB_COPIES);
	if (best < 0) {
		DMERR_LIMIT("resume_spare: %s holds no valid dm-remap superblock",
			    pool->spare_name);
		return -EBADMSG;
	}
	pool->sb = sbs[best];
	*max_seen = pool->sb.seq;
	pool->sb_good = 0;
	for (i = 0; i < RM_SB_COPIES; i++)
		if (st[i].valid && st[i].seq == pool->sb.seq)
			pool->sb_good |= BIT(i);
	if (pool->sb.geo.dev_sectors > bdev_nr_sectors(pool->spare.bdev)) {
		DMERR_LIMIT("resume_spare: %s is smaller (%llu sectors) than when formatted (%llu)",
			    pool->spare_name,
			    (unsigned long long)bdev_nr_sectors(pool->spare.bdev),
			    (unsigned long long)pool->sb.geo.dev_sectors);
		return -EINVAL;
	}
	if (pool->sb.geo.block_size <
	    bdev_logical_block_size(pool->spare.bdev)) {
		DMERR_LIMIT("resume_spare: %s: %u-byte blocks, below its logical block size %u",
			    pool->spare_name, pool->sb.geo.block_size,
			    bdev_logical_block_size(pool->spare.bdev));
		return -EINVAL;
	}
	return 0;
}

static int md_alloc_tables(struct dmr_pool *pool)
{
	u64 nl = pool->sb.geo.nr_logical;

	pool->entries = vzalloc(array_size(pool->sb.geo.nr_blocks,
					   sizeof(*pool->entries)));
	pool->names = kvcalloc(RM_MAX_DEVS, sizeof(*pool->names), GFP_KERNEL);
	pool->cur_pair = kvzalloc(nl, GFP_KERNEL);
	pool->cur_seq = kvcalloc(nl, sizeof(*pool->cur_seq), GFP_KERNEL);
	pool->dirty = kvcalloc(BITS_TO_LONGS(nl), sizeof(long), GFP_KERNEL);
	pool->committing = kvcalloc(BITS_TO_LONGS(nl), sizeof(long), GFP_KERNEL);
	pool->cbufs = kvcalloc(2 * nl + RM_SB_COPIES, sizeof(void *), GFP_KERNEL);
	pool->taken = kvcalloc(BITS_TO_LONGS(pool->sb.geo.nr_blocks),
			       sizeof(long), GFP_KERNEL);
	pool->limbo = kvcalloc(BITS_TO_LONGS(pool->sb.geo.nr_blocks),
			       sizeof(long), GFP_KERNEL);
	if (!pool->entries || !pool->names || !pool->cur_pair || !pool->cur_seq ||
	    !pool->dirty || !pool->committing || !pool->cbufs ||
	    !pool->taken || !pool->limbo)
		return -ENOMEM;
	return 0;
}

/*
 * Pick the committed copy of logical l among the 4 slots in copy0/copy1;
 * bit s of unread is set if slot s could not be read.
 */
static int md_load_logical(struct dmr_pool *pool, u32 l, void *copy0,
			   void *copy1, unsigned int unread, u64 *max_seen)
{
	const struct rm_geometry *g = &pool->sb.geo;
	struct rm_slot_state st[RM_MD_SLOTS];
	struct rm_tblock_hdr hdr;
	struct rm_pick pick;
	void *blk[RM_MD_SLOTS];
	unsigned int s, pair;
	int r;

	for (s = 0; s < RM_MD_SLOTS; s++) {
		void *base = rm_slot_copy(s) ? copy1 : copy0;

		blk[s] = base + rm_slot_pair(s) * RM_MD_BLOCK_SIZE;
		r = rm_tblock_decode_hdr(blk[s], &pool->sb,
					 rm_slot_blocknr(g, l, s), &hdr);
		st[s].valid = !r;
		st[s].seq = r ? 0 : hdr.seq;
	}
	r = rm_pick_slot(st, pool->sb.seq, &pick);
	*max_seen = max(*max_seen, pick.max_seq);
	if (r) {
		DMERR_LIMIT("resume_spare: %s: table block %u has no valid copy",
			    pool->spare_name, l);
		return -EBADMSG;
	}
	r = rm_tblock_decode(blk[pick.slot], l, g, pool->devs, pool->names,
			     pool->entries);
	if (r) {
		DMERR_LIMIT("resume_spare: %s: table block %u: %s",
			    pool->spare_name, l, md_err(r));
		return -EBADMSG;
	}
	pair = rm_slot_pair(pick.slot);
	pool->cur_pair[l] = pair;
	pool->cur_seq[l] = pick.seq;
	if (pick.rewrite)
		set_bit(l, pool->dirty);
	/*
	 * An unreadable slot may hold anything, even a block of an
	 * interrupted commit whose seq max_seen lacks, so next_seq may be
	 * that seq.  In the inactive pair, the first commit (the one
	 * resume_spare waits for) overwrites it before any superblock has
	 * that seq; unread_slot makes that commit fail rather than go on
	 * with a lost copy.  In the active pair, it holds the chosen block's
	 * twin or, if that write was lost, an older block (whose seq was
	 * known when the chosen one was written): harmless, and pick.rewrite
	 * is set anyway as the twin is invalid.
	 */
	if (unread) {
		DMWARN_LIMIT("%s: table block %u has an unreadable slot: rewriting it",
			     pool->spare_name, l);
		set_bit(l, pool->dirty);
		if (unread & ~(BIT(rm_slot_index(pair, 0)) |
			       BIT(rm_slot_index(pair, 1))))
			pool->unread_slot = true;
	}
	return 0;
}

/* rm_table_digest() of cur_seq; millions of blocks on a large spare. */
static u32 md_table_digest(struct dmr_pool *pool)
{
	u64 nl = pool->sb.geo.nr_logical, l, n;
	u32 d = RM_DIGEST_INIT;

	for (l = 0; l < nl; l += n) {
		n = min_t(u64, nl - l, SZ_64K);
		d = rm_digest_seqs(d, pool->cur_seq + l, n);
		cond_resched();
	}
	return rm_digest_final(d);
}

static int md_load_table(struct dmr_pool *pool, void *buf, u64 *max_seen)
{
	const struct rm_geometry *g = &pool->sb.geo;
	void *copy1 = buf + 2 * MD_LOAD_BATCH * RM_MD_BLOCK_SIZE;
	DECLARE_BITMAP(bad0, 2 * MD_LOAD_BATCH);
	DECLARE_BITMAP(bad1, 2 * MD_LOAD_BATCH);
	unsigned int s, unread;
	u32 l, n, i;
	int r;

	for (l = 0; l < g->nr_logical; l += n) {
		n = min_t(u64, MD_LOAD_BATCH, g->nr_logical - l);
		/* Both pairs of n logicals are 2n consecutive blocks per copy. */
		md_read_tolerant(pool->io, pool->spare.bdev, buf,
				 rm_slot_blocknr(g, l, 0), 2 * n, bad0);
		md_read_tolerant(pool->io, pool->spare.bdev, copy1,
				 rm_slot_blocknr(g, l, 1), 2 * n, bad1);
		for (i = 0; i < n; i++) {
			unread = 0;
			for (s = 0; s < RM_MD_SLOTS; s++)
				if (test_bit(2 * i + rm_slot_pair(s),
					     rm_slot_copy(s) ? bad1 : bad0))
					unread |= BIT(s);
			r = md_load_logical(pool, l + i,
					    buf + 2 * i * RM_MD_BLOCK_SIZE,
					    copy1 + 2 * i * RM_MD_BLOCK_SIZE,
					    unread, max_seen);
			if (r)
				return r;
		}
	}
	if (md_table_digest(pool) != pool->sb.table_digest) {
		DMERR_LIMIT("resume_spare: %s: table digest mismatch: committed metadata was lost",
			    pool->spare_name);
		return -EBADMSG;
	}
	return 0;
}

static void md_report(void *ctx, const struct rm_problem *p)
{
	struct dmr_pool *pool = ctx;

	DMERR_LIMIT("resume_spare: %s: %s (object %d index %llu dev %u block %llu)",
		    pool->spare_name, md_err(p->err), p->obj,
		    (unsigned long long)p->index, p->dev_id,
		    (unsigned long long)p->main_block);
}

static int md_check_pool(struct dmr_pool *pool)
{
	u64 n = pool->sb.geo.nr_blocks, i;
	struct rm_check_key *scratch;
	s64 problems;

	/*
	 * Not kvmalloc(): it refuses (with a WARN) anything above INT_MAX,
	 * which this is from 2^27 blocks (a 512 GiB spare of 4 KiB blocks).
	 */
	scratch = vmalloc(array_size(n, sizeof(*scratch)));
	if (!scratch)
		return -ENOMEM;
	problems = rm_pool_check(&pool->sb, pool->devs, pool->entries, n,
				 scratch, md_report, pool);
	problems += rm_names_check(pool->devs, pool->names, md_report, pool);
	vfree(scratch);
	if (problems) {
		DMERR_LIMIT("resume_spare: %s: %lld problems in the metadata, refusing it",
			    pool->spare_name, (long long)problems);
		return -EBADMSG;
	}
	for (i = 0; i < n; i++) {
		dmr_entries_resched(i);
		switch (pool->entries[i].state) {
		case RM_ENTRY_FREE:
			pool->nr_free++;
			break;
		case RM_ENTRY_MAPPED:
			pool->nr_mapped++;
			break;
		case RM_ENTRY_PENDING:
			pool->nr_pending++;
			break;
		default:
			pool->nr_retired++;
			break;
		}
		if (pool->entries[i].state != RM_ENTRY_FREE)
			__set_bit(i, pool->taken);
	}
	return 0;
}

/*
 * Read and validate the pool on pool->spare.  On success the in-memory
 * metadata is complete and the first commit is requested (it rewrites every
 * superblock copy and any table block that lost a copy or has a slot that
 * could not be read).
 */
int dmr_md_load(struct dmr_pool *pool)
{
	void *buf;
	u64 max_seen;
	int r;

	if (bdev_nr_sectors(pool->spare.bdev) <
	    rm_md_sector(RM_SB_COPIES)) {
		DMERR_LIMIT("resume_spare: %s is too small to hold a pool",
			    pool->spare_name);
		return -EINVAL;
	}
	buf = vmalloc(4 * MD_LOAD_BATCH * RM_MD_BLOCK_SIZE);
	if (!buf)
		return -ENOMEM;
	r = md_load_sb(pool, buf, &max_seen);
	if (!r)
		r = dmr_pool_check_uuid_unique(pool);
	if (r)
		goto out;
	r = md_alloc_tables(pool);
	if (r)
		goto out;
	r = md_load_table(pool, buf, &max_seen);
	if (r)
		goto out;
	r = md_check_pool(pool);
	if (r)
		goto out;
	if (rm_next_seq(pool->sb.seq, max_seen, &pool->next_seq)) {
		DMERR_LIMIT("resume_spare: %s: sequence number 2^63 or above",
			    pool->spare_name);
		r = -EBADMSG;
		goto out;
	}
	/* A change with no table block: the first commit heals every sb copy. */
	pool->change_gen = 1;
out:
	vfree(buf);
	return r;
}

void dmr_md_release(struct dmr_pool *pool)
{
	u64 i;

	if (pool->cbufs) {
		for (i = 0; i < 2 * pool->sb.geo.nr_logical + RM_SB_COPIES; i++)
			kfree(pool->cbufs[i]);
	}
	kvfree(pool->cbufs);
	kvfree(pool->limbo);
	kvfree(pool->taken);
	kvfree(pool->committing);
	kvfree(pool->dirty);
	kvfree(pool->cur_seq);
	kvfree(pool->cur_pair);
	vfree(pool->entries);
	kvfree(pool->names);
}

/* ---- Commit --------------------------------------------------------------- */

/*
 * Commit buffer i, allocated on first use; NULL if out of memory.  A
 * commit of n table blocks uses table buffers 0..2n-1; those up to
 * MD_CBUFS_KEPT stay for the next commit, the rest are freed after it
 * (md_cbufs_trim()): a big commit (every table block of a large pool, when
 * a copy region was lost) must not pin its buffers for the pool's life.
 */
#define MD_CBUFS_KEPT	256

static void *md_cbuf(struct dmr_pool *pool, u64 i)
{
	if (!pool->cbufs[i])
		pool->cbufs[i] = kmalloc(RM_MD_BLOCK_SIZE, GFP_NOIO);
	return pool->cbufs[i];
}

/* After a commit that used nb table buffers (or failed trying). */
static void md_cbufs_trim(struct dmr_pool *pool, u64 nb)
{
	u64 i;

	for (i = MD_CBUFS_KEPT; i < nb; i++) {
		kfree(pool->cbufs[i]);
		pool->cbufs[i] = NULL;
	}
}

static int md_encode_logical(struct dmr_pool *pool, u32 l, void *blk0,
			     void *blk1)
{
	const struct rm_geometry *g = &pool->sb.geo;
	unsigned int pair = pool->cur_pair[l] ^ 1;
	struct rm_tblock_hdr hdr = {
		.logical = l,
		.blocknr = rm_slot_blocknr(g, l, rm_slot_index(pair, 0)),
		.seq = pool->next_seq,
	};
	int r;

	memcpy(hdr.uuid, pool->sb.uuid, RM_UUID_SIZE);
	r = rm_tblock_encode(blk0, &hdr, g, pool->devs, pool->names,
			     pool->entries);
	if (r)
		return r;
	memcpy(blk1, blk0, RM_MD_BLOCK_SIZE);
	rm_tblock_relocate(blk1, rm_slot_blocknr(g, l, rm_slot_index(pair, 1)));
	return 0;
}

static void md_fail(struct dmr_pool *pool, int err, const char *what)
{
	mutex_lock(&pool->md_lock);
	if (!pool->md_error)
		pool->md_error = err;
	mutex_unlock(&pool->md_lock);
	DMERR_LIMIT("pool %u (%s): metadata %s failed (%d); pool is now read-only",
		    pool->id, pool->spare_name, what, err);
	wake_up_all(&pool->commit_waitq);
}

/*
 * Phase 0, under md_lock: encode a consistent snapshot of every dirty
 * logical and the new superblock into the commit buffers.  Returns the
 * number of table buffers (2 per logical), or a negative error.
 */
static long md_snapshot(struct dmr_pool *pool, struct rm_sb *sb)
{
	u64 nl = pool->sb.geo.nr_logical, l, nb = 0;
	struct rm_digest_delta dd;
	unsigned int i;
	u32 digest;
	int r;

	lockdep_assert_held(&pool->md_lock);
	bitmap_copy(pool->committing, pool->dirty, nl);
	/*
	 * The digest of the committed table (sb.table_digest, checked at
	 * load) changed by the blocks committed now: no pass over every
	 * logical block under md_lock.
	 */
	rm_digest_delta_init(&dd);
	for_each_set_bit(l, pool->committing, nl) {
		void *b0 = md_cbuf(pool, nb), *b1 = md_cbuf(pool, nb + 1);

		if (!b0 || !b1)
			return -ENOMEM;
		r = md_encode_logical(pool, l, b0, b1);
		if (r) {
			DMERR("pool %u: encoding table block %llu: %s",
			      pool->id, l, md_err(r));
			return -EINVAL;
		}
		rm_digest_delta_add(&dd, l, pool->cur_seq[l], pool->next_seq);
		nb += 2;
	}
	*sb = pool->sb;
	sb->seq = pool->next_seq;
	digest = rm_digest_delta_apply(&dd, ~pool->sb.table_digest, nl);
	sb->table_digest = rm_digest_final(digest);
	for (i = 0; i < RM_SB_COPIES; i++) {
		void *blk = md_cbuf(pool, 2 * nl + i);

		if (!blk)
			return -ENOMEM;
		r = rm_sb_encode(blk, sb, i);
		if (r)
			return -EINVAL;
	}
	bitmap_zero(pool->dirty, nl);
	return nb;
}

/*
 * Write superblock copies [first, first + n) of the commit together;
 * returns those written (bit i: copy i).
 */
static u8 md_write_sb_copies(struct dmr_pool *pool, unsigned int first,
			     unsigned int n)
{
	u64 nl = pool->sb.geo.nr_logical;
	struct md_batch b[RM_SB_COPIES];
	unsigned int i;
	u8 good = 0;

	/* A bit per copy in a u8 (sb_good); format_spare's message says 8. */
	BUILD_BUG_ON(RM_SB_COPIES != 8);
	for (i = 0; i < n; i++) {
		md_batch_init(&b[i]);
		md_io(pool->io, pool->spare.bdev,
		      REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA | REQ_SYNC,
		      pool->cbufs[2 * nl + first + i], rm_sb_blocknr(first + i),
		      1, &b[i]);
	}
	for (i = 0; i < n; i++) {
		if (!md_batch_wait(&b[i]))
			good |= BIT(first + i);
		else
			DMWARN_LIMIT("pool %u: superblock copy %u could not be written",
				     pool->id, first + i);
	}
	return good;
}

/*
 * Write the copies of half one at a time, no copy outside it holding the
 * last commit or this one (good: copies of this commit written so far):
 * those that do not hold the last commit first, so that a power cut
 * leaves a whole copy of one or the other.  The last holder is not
 * written while no copy of this commit was: it alone holds the last
 * commit, and this one fails (and the pool with it).
 */
static u8 md_write_sb_alone(struct dmr_pool *pool, u8 half, u8 good)
{
	u8 holders = half & pool->sb_good;
	unsigned int i;

	for (i = 0; i < RM_SB_COPIES; i++)
		if (half & ~holders & BIT(i))
			good |= md_write_sb_copies(pool, i, 1);
	for (i = 0; i < RM_SB_COPIES; i++) {
		if (!(holders & BIT(i)))
			continue;
		holders &= ~BIT(i);
		if (!good && !holders) {
			DMERR_LIMIT("pool %u: superblock copy %u alone holds the last commit",
				    pool->id, i);
			break;
		}
		good |= md_write_sb_copies(pool, i, 1);
	}
	return good;
}

/*
 * Phase 1 and 2: the table blocks, then the superblock copies.  cur_pair is
 * only changed by this worker (after the writes), so reading it here
 * without md_lock is safe.
 */
static int md_write_snapshot(struct dmr_pool *pool, long nb)
{
	const struct rm_geometry *g = &pool->sb.geo;
	u64 nl = g->nr_logical, l;
	struct md_batch b[2];
	unsigned int c, h, n = RM_SB_COPIES / 2;
	u8 good = 0, tried = 0;	/* copies written, and tried, by this commit */
	long k = 0;

	/* One batch per copy: the commit stands if either copy is written. */
	md_batch_init(&b[0]);
	md_batch_init(&b[1]);
	for_each_set_bit(l, pool->committing, nl) {
		unsigned int pair = pool->cur_pair[l] ^ 1;

		for (c = 0; c < 2; c++, k++)
			md_io(pool->io, pool->spare.bdev, REQ_OP_WRITE | REQ_SYNC,
			      pool->cbufs[k],
			      rm_slot_blocknr(g, l, rm_slot_index(pair, c)), 1,
			      &b[c]);
	}
	WARN_ON(k != nb);
	c = !!md_batch_wait(&b[0]) + !!md_batch_wait(&b[1]);
	if (c == 2)
		return -EIO;
	/* The write lost may be the one over a slot unreadable at load. */
	if (c && pool->unread_slot) {
		DMERR_LIMIT("pool %u: a table block unreadable at load could not be rewritten",
			    pool->id);
		return -EIO;
	}
	if (c) {
		DMWARN_LIMIT("pool %u: a table copy write failed; the next commit redoes it",
			     pool->id);
		pool->lost_copy = true;
	}

	/*
	 * The superblocks in two halves, the second once the first is on the
	 * medium, so that a power cut cannot catch every copy in the middle
	 * of a write; the copies of a half go together.  But while no copy
	 * outside a half holds the last commit or this one (the others failed
	 * writes or were invalid at load), that half goes one copy at a time
	 * (md_write_sb_alone()), so that a power cut leaves some copy of a
	 * commit whole.  Each write
	 * carries PREFLUSH (the table blocks are stable before any superblock
	 * names them; the block layer merges the flushes of a half) and FUA.
	 * One copy written is enough to commit.
	 */
	for (h = 0; h < 2; h++) {
		unsigned int first = h * n;
		u8 half = GENMASK(first + n - 1, first);

		/* Outside the half: last commit's copies not written over. */
		if (((pool->sb_good & ~tried) | good) & ~half)
			good |= md_write_sb_copies(pool, first, n);
		else
			good = md_write_sb_alone(pool, half, good);
		tried |= half;
	}
	if (!good)
		return -EIO;
	pool->sb_good = good;
	return 0;
}

/*
 * The frees in limbo are durable once durable_gen covers limbo_gen.  The
 * bitmap can have 2^32 bits: walk it a chunk at a time with a resched
 * point between chunks (md_lock is a mutex), and stop at the last block.
 */
static void md_release_limbo(struct dmr_pool *pool, u64 durable)
{
	const u64 chunk = 1ULL << 20;
	u64 n = pool->sb.geo.nr_blocks;
	u64 start, i;

	lockdep_assert_held(&pool->md_lock);
	if (!pool->nr_limbo || durable < pool->limbo_gen)
		return;
	for (start = 0; start < n && pool->nr_limbo; start += chunk) {
		u64 end = min(start + chunk, n);

		for (i = find_next_bit(pool->limbo, end, start); i < end;
		     i = find_next_bit(pool->limbo, end, i + 1)) {
			__clear_bit(i, pool->limbo);
			__clear_bit(i, pool->taken);
			pool->nr_free++;
			pool->nr_limbo--;
		}
		cond_resched();
	}
	WARN_ON_ONCE(pool->nr_limbo);
	pool->nr_limbo = 0;
	__dmr_pool_blocks_freed(pool);
}

/* One commit; 1 if it committed or must retry, 0 if nothing to do, <0 on failure. */
static int md_commit_once(struct dmr_pool *pool)
{
	struct rm_sb sb;
	u64 target, l;
	long nb;
	int r;

	mutex_lock(&pool->md_lock);
	if (pool->md_error ||
	    atomic64_read(&pool->durable_gen) == pool->change_gen) {
		mutex_unlock(&pool->md_lock);
		return 0;
	}
	if (pool->next_seq >= RM_SEQ_LAST) {
		/*
		 * Only a crafted pool gets here (at 2^63 - 1).  Writing 2^63
		 * would make it one that no longer loads: fail instead.
		 */
		mutex_unlock(&pool->md_lock);
		DMERR_LIMIT("pool %u (%s): metadata sequence numbers exhausted (2^63)",
			    pool->id, pool->spare_name);
		md_fail(pool, -EOVERFLOW, "commit");
		return -EOVERFLOW;
	}
	target = pool->change_gen;
	nb = md_snapshot(pool, &sb);
	mutex_unlock(&pool->md_lock);
	if (nb == -ENOMEM) {
		/* Nothing was consumed: wait for memory and try again. */
		DMWARN_LIMIT("pool %u: commit waiting for memory", pool->id);
		msleep(20);
		return 1;
	}
	if (nb < 0) {
		md_fail(pool, (int)nb, "encoding");
		return (int)nb;
	}

	/*
	 * The buffers and the committing bitmap are only touched by this
	 * worker, so the writes need no lock.
	 */
	r = md_write_snapshot(pool, nb);
	md_cbufs_trim(pool, nb);
	if (r) {
		md_fail(pool, r, "write");
		return r;
	}

	mutex_lock(&pool->md_lock);
	for_each_set_bit(l, pool->committing, pool->sb.geo.nr_logical) {
		pool->cur_pair[l] ^= 1;
		pool->cur_seq[l] = sb.seq;
		/* A copy was lost: write both again with the next commit. */
		if (pool->lost_copy)
			set_bit(l, pool->dirty);
	}
	pool->lost_copy = false;
	pool->unread_slot = false;
	/*
	 * Only these two change (md_snapshot()): the geometry and uuid are
	 * read without md_lock (map, ctr, sysfs), so they are not rewritten.
	 */
	WRITE_ONCE(pool->sb.seq, sb.seq);
	pool->sb.table_digest = sb.table_digest;
	pool->next_seq = sb.seq + 1;
	atomic64_set(&pool->durable_gen, target);
	md_release_limbo(pool, target);
	pool->commits++;
	mutex_unlock(&pool->md_lock);
	wake_up_all(&pool->commit_waitq);
	return 1;
}

void dmr_md_commit_work(struct work_struct *ws)
{
	struct dmr_pool *pool = container_of(ws, struct dmr_pool, commit_work);
	unsigned int noio = memalloc_noio_save();

	while (md_commit_once(pool) > 0)
		;
	memalloc_noio_restore(noio);
}

u64 dmr_md_dirty(struct dmr_pool *pool, u32 logical)
{
	lockdep_assert_held(&pool->md_lock);
	set_bit(logical, pool->dirty);
	return ++pool->change_gen;
}

static bool md_done(struct dmr_pool *pool, u64 ticket)
{
	return atomic64_read(&pool->durable_gen) >= ticket ||
	       READ_ONCE(pool->md_error);
}

void dmr_md_kick(struct dmr_pool *pool)
{
	queue_work(pool->wq, &pool->commit_work);
}

int dmr_md_wait(struct dmr_pool *pool, u64 ticket)
{
	dmr_md_kick(pool);
	wait_event(pool->commit_waitq, md_done(pool, ticket));
	if (atomic64_read(&pool->durable_gen) >= ticket)
		return 0;
	return READ_ONCE(pool->md_error);
}

/*
 * The change_gen made durable so far.  Read under md_lock, which its
 * store and md_fail() take: once a wait saw md_error, this is final.
 */
u64 dmr_md_durable(struct dmr_pool *pool)
{
	u64 d;

	mutex_lock(&pool->md_lock);
	d = atomic64_read(&pool->durable_gen);
	mutex_unlock(&pool->md_lock);
	return d;
}

/* As dmr_md_wait(), but a fatal signal ends the wait with -EINTR. */
int dmr_md_wait_killable(struct dmr_pool *pool, u64 ticket)
{
	int r;

	dmr_md_kick(pool);
	r = wait_event_killable(pool->commit_waitq, md_done(pool, ticket));
	if (r)
		return -EINTR;
	if (atomic64_read(&pool->durable_gen) >= ticket)
		return 0;
	return READ_ONCE(pool->md_error);
}

int dmr_md_sync(struct dmr_pool *pool)
{
	u64 ticket;

	mutex_lock(&pool->md_lock);
	ticket = pool->change_gen;
	mutex_unlock(&pool->md_lock);
	return dmr_md_wait(pool, ticket);
}
