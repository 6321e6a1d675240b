// SPDX-License-Identifier: GPL-2.0-only
/*
 * scanner.c - the background health scanner of a pool.
 *
 * One delayed work item per pool, on the pool's own workqueue, makes one
 * step at a time: it picks the next attached device that is due for a
 * pass (round robin by dev_id), reads one chunk of its main device at idle
 * I/O priority and schedules the next step.  remap_scan_chunk() (in the
 * remap target's repair.c) narrows a chunk that fails or is slow to
 * blocks and moves what it finds: slow or flaky blocks to the spare with
 * their data, unreadable ones recorded as pending.
 *
 * Pacing: while the pool's devices are idle the chunk grows to
 * SCAN_MAX_CHUNK and steps are spaced so that reads stay under the rate
 * tunable.  A step that sees foreground bios mapped since the previous
 * step (per-CPU counts the remap target keeps), or other I/O to the disk
 * it is about to read (disk_busy()), shrinks the chunk to one block and
 * waits at least SCAN_BUSY_DELAY_MS before the next one, so a busy device
 * sees at most two small idle-priority reads per second.
 *
 * Progress (position, completed passes, time of the last pass end) lives
 * in the device's identity record and is committed with the metadata at
 * least every SCAN_SAVE_S seconds, at the end of a pass and on suspend,
 * so a pass resumes where it stopped after suspend, free_spare or reboot.
 *
 * Locking: the worker takes a device's scan_lock for one chunk; the I/O
 * path never takes it.  A detach (suspend, removal) counts itself in
 * scan_abort first, so the chunk stops after the I/O in hand (its read,
 * or one block's reads and move).  A count,
 * not a flag: two tables of a device detaching at once must not clear it
 * for each other.  Tunables are whole words read with READ_ONCE.  Control
 * messages and free_spare are serialized by the registry's ops_lock, so
 * no kick races with dmr_scan_exit().
 */
#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/part_stat.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>

#include "pool.h"

#define DM_MSG_PREFIX "remap-mgr"

#define SCAN_MAX_CHUNK		SZ_1M		/* bytes per read when idle */
#define SCAN_BUSY_DELAY_MS	500	/* between steps while devices are busy */
#define SCAN_IDLE_POLL_S	10	/* look for due devices this often */
#define SCAN_FAIL_DELAY_S	30	/* after a device failed everywhere */
#define SCAN_SAVE_S		30	/* progress committed this often */

#define SCAN_DEF_INTERVAL	(7 * 24 * 3600)	/* a pass a week */
#define SCAN_DEF_RATE		32768		/* KiB/s */
#define SCAN_DEF_SLOW_MS	500

#define SCAN_MAX_INTERVAL	(366 * 24 * 3600)
#define SCAN_MAX_RATE		(4u << 20)	/* 4 GiB/s in KiB/s */
#define SCAN_MIN_SLOW_MS	10
#define SCAN_MAX_SLOW_MS	600000

static const char * const scan_state_names[] = {
	[DMR_SCAN_OFF] = "off",
	[DMR_SCAN_IDLE] = "idle",
	[DMR_SCAN_SCANNING] = "scanning",
};

const char *dmr_scan_state_name(struct dmr_pool *pool)
{
	if (!READ_ONCE(pool->scan.enabled))
		return scan_state_names[DMR_SCAN_OFF];
	return scan_state_names[READ_ONCE(pool->scan.state)];
}

/* ---- Device state -------------------------------------------------------------- */

/* Load the pass state of a new pdev from its identity record. */
void dmr_scan_pdev_init(struct dmr_pdev *pdev)
{
	struct dmr_pool *pool = pdev->pool;
	int i;

	mutex_init(&pdev->scan_lock);
	mutex_lock(&pool->md_lock);
	i = rm_dev_find(pool->devs, pdev->dev_id);
	if (i >= 0) {
		pdev->scan_pos = pool->devs[i].scan_pos;
		pdev->scan_passes = pool->devs[i].scan_passes;
		pdev->scan_last_pass = pool->devs[i].last_pass_time;
	}
	mutex_unlock(&pool->md_lock);
	pdev->scan_chunk = 1;
}

/* Record the pass state in the identity record; commit it, not waiting. */
static void scan_save(struct dmr_pdev *pdev)
{
	struct dmr_pool *pool = pdev->pool;
	struct rm_dev *d;
	bool kick = false;
	int i;

	lockdep_assert_held(&pdev->scan_lock);
	mutex_lock(&pool->md_lock);
	i = rm_dev_find(pool->devs, pdev->dev_id);
	if (i >= 0) {
		d = &pool->devs[i];
		if (d->scan_pos != pdev->scan_pos ||
		    d->scan_passes != pdev->scan_passes ||
		    d->last_pass_time != pdev->scan_last_pass) {
			d->scan_pos = pdev->scan_pos;
			d->scan_passes = pdev->scan_passes;
			d->last_pass_time = pdev->scan_last_pass;
			dmr_md_dirty(pool, 0);
			kick = true;
		}
	}
	mutex_unlock(&pool->md_lock);
	if (kick)
		dmr_md_kick(pool);
	pdev->scan_saved = ktime_get_boottime_seconds();
}

/* The table rc went live: scan through it. */
void dmr_scan_attach(struct dmr_pdev *pdev, struct remap_c *rc)
{
	mutex_lock(&pdev->scan_lock);
	WRITE_ONCE(pdev->scan_rc, rc);
	/* Known at once: scan_percent of a pass resumed from the record. */
	WRITE_ONCE(pdev->scan_end, remap_scan_blocks(rc));
	/* Another disk (a reload), maybe: its first step counts as busy. */
	pdev->foreign_seen = 0;
	mutex_unlock(&pdev->scan_lock);
	dmr_scan_kick(pdev->pool);
}

/*
 * The table rc is suspended or goes away: no more reads through it.
 * Waits for a chunk in progress (one read, maybe one move).
 */
void dmr_scan_detach(struct dmr_pdev *pdev, struct remap_c *rc)
{
	atomic_inc(&pdev->scan_abort);
	mutex_lock(&pdev->scan_lock);
	if (pdev->scan_rc == rc) {
		WRITE_ONCE(pdev->scan_rc, NULL);
		scan_save(pdev);
	}
	atomic_dec(&pdev->scan_abort);
	mutex_unlock(&pdev->scan_lock);
}

/*
 * now: wall time, for scan_last_pass; the deadlines are boot time.  A last
 * pass "in the future" (the clock was set back) makes the device due:
 * scan_device() then moves it to now under scan_lock, and the interval
 * counts from there.
 */
static bool scan_due(struct dmr_pool *pool, struct dmr_pdev *pdev,
		     time64_t now)
{
	time64_t boot = ktime_get_boottime_seconds();

	if (!READ_ONCE(pdev->scan_rc) || boot < READ_ONCE(pdev->scan_retry_at))
		return false;
	if (READ_ONCE(pdev->scan_requested))
		return true;
	if (boot < READ_ONCE(pool->scan.held_until))
		return false;
	/* A pass in progress, a device never scanned, or its time has come. */
	return READ_ONCE(pdev->scan_pos) || !READ_ONCE(pdev->scan_passes) ||
	       now < READ_ONCE(pdev->scan_last_pass) ||
	       now >= READ_ONCE(pdev->scan_last_pass) +
		      READ_ONCE(pool->scan.interval);
}

/*
 * Sectors this module moved itself, per whole disk: the sync I/O of repairs
 * and scanners of every pool and device, and the metadata I/O of every
 * pool.  An open-addressed table keyed by dev_t: a disk takes the first
 * free slot from the one its dev_t hashes to, by cmpxchg of the key, and
 * keeps it until the module is unloaded.  Counts only grow and readers
 * only take differences, so a dev_t reused by a new disk may inherit the
 * old count.  Should more disks than slots come and go, the rest share
 * dmr_own_overflow, where each sees the others' I/O as its own (which can
 * hide other load on it).  Lock-free: keys are set once, counts atomic.
 */
#define DMR_OWN_SLOTS	256

static struct dmr_own {
	atomic_t dev;		/* dev_t of the disk; 0 while the slot is free */
	atomic64_t sectors;
} dmr_own[DMR_OWN_SLOTS];

static atomic64_t dmr_own_overflow;

static atomic64_t *own_counter(struct block_device *bdev)
{
	u32 dev = bdev_whole(bdev)->bd_dev;	/* never 0 for a disk */
	u32 h = hash_32(dev, ilog2(DMR_OWN_SLOTS));
	unsigned int n;

	for (n = 0; n < DMR_OWN_SLOTS; n++) {
		struct dmr_own *o = &dmr_own[(h + n) % DMR_OWN_SLOTS];
		u32 key = atomic_read(&o->dev);

		if (!key) {
			key = atomic_cmpxchg(&o->dev, 0, dev);
			if (!key)
				key = dev;	/* claimed it */
		}
		if (key == dev)
			return &o->sectors;
	}
	return &dmr_own_overflow;
}

/* Own I/O of count sectors to bdev's disk, counted as it is issued. */
void dmr_own_io(struct block_device *bdev, sector_t count)
{
	atomic64_add(count, own_counter(bdev));
}

/*
 * The next due device after the one served last, by dev_id; a reference
 * is taken on it.  Also sums the foreground I/Os of all devices.
 */
static struct dmr_pdev *scan_pick(struct dmr_pool *pool, time64_t now,
				  u64 *fg_ios)
{
	struct dmr_pdev *pdev, *first = NULL, *next = NULL;
	u32 cursor = pool->scan.cursor;

	*fg_ios = 0;
	mutex_lock(&pool->pdev_lock);
	list_for_each_entry(pdev, &pool->pdevs, list) {
		*fg_ios += dmr_pdev_ios(pdev);
		if (!scan_due(pool, pdev, now))
			continue;
		if (!first || pdev->dev_id < first->dev_id)
			first = pdev;
		if (pdev->dev_id > cursor &&
		    (!next || pdev->dev_id < next->dev_id))
			next = pdev;
	}
	if (!next)
		next = first;
	if (next) {
		kobject_get(&next->kobj);
		pool->scan.cursor = next->dev_id;
	}
	mutex_unlock(&pool->pdev_lock);
	return next;
}

/* Health score 0..100; see Documentation/admin-guide.md, "Scanner". */
unsigned int dmr_scan_health(struct dmr_pdev *pdev)
{
	unsigned int penalty;

	if (READ_ONCE(pdev->main_failed) || dmr_main_writes_fail(pdev))
		return 0;
	penalty = 10 * fls64(READ_ONCE(pdev->nr_mapped)) +
		  20 * fls64(READ_ONCE(pdev->nr_pending)) +
		  5 * fls64(READ_ONCE(pdev->scan_slow) +
			    READ_ONCE(pdev->scan_retried));
	return penalty >= 100 ? 0 : 100 - penalty;
}

/* Progress of the pass in progress; 100 between passes, 0 if never. */
unsigned int dmr_scan_percent(struct dmr_pdev *pdev)
{
	u64 pos = READ_ONCE(pdev->scan_pos);
	u64 end = READ_ONCE(pdev->scan_end);

	if (pos && end)
		return div64_u64(min(pos, end) * 100, end);
	return READ_ONCE(pdev->scan_passes) ? 100 : 0;
}

/* ---- One step ----------------------------------------------------------------- */

/* Sectors the disk has read, written and discarded (its I/O statistics). */
static u64 disk_sectors(struct block_device *disk)
{
	return part_stat_read(disk, sectors[STAT_READ]) +
	       part_stat_read(disk, sectors[STAT_WRITE]) +
	       part_stat_read(disk, sectors[STAT_DISCARD]);
}

/*
 * Sectors the disk that holds bdev moved (its I/O statistics) less those
 * this module moved on it itself.  Of two readings, a later one that is
 * greater says that something else used the disk in between: a
 * filesystem on the main device's sibling partition, the main device
 * opened directly, or I/O through the remap devices.  A disk without I/O
 * statistics (queue/iostats 0) shows none.
 */
u64 dmr_disk_foreign(struct block_device *bdev)
{
	return disk_sectors(bdev_whole(bdev)) - atomic64_read(own_counter(bdev));
}

/*
 * Has the disk under pdev's main device moved sectors of others since the
 * last step?  Caller holds scan_lock.
 */
static bool disk_busy(struct dmr_pdev *pdev)
{
	u64 foreign = dmr_disk_foreign(remap_main_bdev(pdev->scan_rc));
	bool busy = (s64)(foreign - pdev->foreign_seen) > 0;

	pdev->foreign_seen = foreign;
	return busy;
}

/* Scan one chunk of pdev; returns the delay before the next step. */
static unsigned long scan_device(struct dmr_pool *pool,
				 struct dmr_pdev *pdev, bool busy)
{
	struct dmr_scan *sc = &pool->scan;
	unsigned int shift = dmr_pool_block_shift(pool) + SECTOR_SHIFT;
	u64 max_chunk = max_t(u64, SCAN_MAX_CHUNK >> shift, 1);
	struct dmr_scan_result res = {};
	time64_t now = ktime_get_real_seconds();
	unsigned long delay;
	unsigned int nr;
	u64 bytes, at;
	int r;

	mutex_lock(&pdev->scan_lock);
	/*
	 * The clock was set back behind the last pass: count the interval
	 * from now, not from a time the clock may take long to reach again
	 * (recorded with the next progress save).
	 */
	if (now < pdev->scan_last_pass)
		WRITE_ONCE(pdev->scan_last_pass, now);
	if (!pdev->scan_rc || !scan_due(pool, pdev, now)) {
		mutex_unlock(&pdev->scan_lock);
		return 0;
	}
	if (disk_busy(pdev))
		busy = true;
	WRITE_ONCE(pdev->scan_end, remap_scan_blocks(pdev->scan_rc));
	if (pdev->scan_pos >= pdev->scan_end)
		WRITE_ONCE(pdev->scan_pos, 0);	/* the device shrank: start over */
	if (busy)
		pdev->scan_chunk = 1;
	else
		pdev->scan_chunk = min(2 * pdev->scan_chunk, max_chunk);
	/* 0 only for a device smaller than a block: its pass ends at once. */
	nr = min(pdev->scan_chunk, pdev->scan_end - pdev->scan_pos);
	r = nr ? remap_scan_chunk(pdev->scan_rc, sc->io, sc->buf,
				  pdev->scan_pos, nr, READ_ONCE(sc->slow_ms),
				  &res) : 0;
	/* What was found counts, also when an error cut the chunk short. */
	WRITE_ONCE(pdev->scanned, pdev->scanned + res.done);
	WRITE_ONCE(pdev->scan_failed, pdev->scan_failed + res.failed);
	WRITE_ONCE(pdev->scan_slow, pdev->scan_slow + res.slow);
	WRITE_ONCE(pdev->scan_retried, pdev->scan_retried + res.retried);
	WRITE_ONCE(pdev->scan_predictive,
		   pdev->scan_predictive + res.predictive);
	WRITE_ONCE(pdev->scan_pos, pdev->scan_pos + res.done);
	at = pdev->scan_pos;
	if (r) {
		/* This device waits; the others go on. */
		WRITE_ONCE(pdev->scan_retry_at,
			   ktime_get_boottime_seconds() + SCAN_FAIL_DELAY_S);
		scan_save(pdev);
	} else if (pdev->scan_pos >= pdev->scan_end) {
		WRITE_ONCE(pdev->scan_pos, 0);
		WRITE_ONCE(pdev->scan_passes, pdev->scan_passes + 1);
		WRITE_ONCE(pdev->scan_last_pass, now);
		WRITE_ONCE(pdev->scan_requested, false);
		/* Limited: a small device with scan_interval 1 ends a pass a second. */
		DMINFO_LIMIT("pool %u dev_id %u: scanner: pass %llu done (%llu blocks)",
			     pool->id, pdev->dev_id,
			     (unsigned long long)pdev->scan_passes,
			     (unsigned long long)pdev->scan_end);
		scan_save(pdev);
	} else if (ktime_get_boottime_seconds() - pdev->scan_saved >=
		   SCAN_SAVE_S) {
		scan_save(pdev);
	}
	mutex_unlock(&pdev->scan_lock);

	if (r == -ENXIO && !READ_ONCE(pdev->main_failed)) {
		/* As the I/O path does: errors pass through, state "fail". */
		WRITE_ONCE(pdev->main_failed, true);
		DMERR_LIMIT("pool %u dev_id %u: scanner: main device fails everywhere",
			    pool->id, pdev->dev_id);
		dmr_pdev_event(pdev);
	} else if (r) {
		DMERR_LIMIT("pool %u dev_id %u: scanner: stopped at block %llu (%d); again in %u s",
			    pool->id, pdev->dev_id,
			    (unsigned long long)at, r,
			    SCAN_FAIL_DELAY_S);
	}
	if (res.read_ok && r != -ENXIO && READ_ONCE(pdev->main_failed)) {
		/* It reads again: as a bio that completes on it tells end_io. */
		WRITE_ONCE(pdev->main_failed, false);
		DMINFO_LIMIT("pool %u dev_id %u: scanner: main device reads again",
			     pool->id, pdev->dev_id);
		dmr_pdev_event(pdev);
	}
	if (res.pending)
		dmr_pdev_event(pdev);
	if (!res.done)
		return 0;
	/*
	 * Stay under the rate: bytes / (KiB/s) milliseconds.  The rate in
	 * bytes/s reaches 2^32 at SCAN_MAX_RATE: a 64-bit divisor.
	 */
	bytes = (u64)res.done << shift;
	delay = msecs_to_jiffies(div64_u64(bytes * 1000,
					   (u64)READ_ONCE(sc->rate) << 10));
	if (busy)
		delay = max(delay, msecs_to_jiffies(SCAN_BUSY_DELAY_MS));
	return delay;
}

static void scan_work(struct work_struct *ws)
{
	struct dmr_pool *pool = container_of(to_delayed_work(ws),
					     struct dmr_pool, scan.work);
	struct dmr_scan *sc = &pool->scan;
	time64_t now = ktime_get_real_seconds();
	struct dmr_pdev *pdev;
	unsigned long delay;
	u64 fg_ios;
	bool busy;

	if (!READ_ONCE(sc->enabled) || READ_ONCE(sc->stopping)) {
		WRITE_ONCE(sc->state, DMR_SCAN_OFF);
		return;
	}
	pdev = scan_pick(pool, now, &fg_ios);
	busy = fg_ios != sc->fg_ios;
	sc->fg_ios = fg_ios;
	if (!pdev) {
		WRITE_ONCE(sc->state, DMR_SCAN_IDLE);
		delay = SCAN_IDLE_POLL_S * HZ;
	} else {
		WRITE_ONCE(sc->state, DMR_SCAN_SCANNING);
		delay = scan_device(pool, pdev, busy);
		kobject_put(&pdev->kobj);
	}
	/* Re-armed only here and by dmr_scan_kick(); never after stopping. */
	if (!READ_ONCE(sc->stopping))
		queue_delayed_work(sc->wq, &sc->work, delay);
}

/* Run a step now (a device went live, a tunable changed). */
void dmr_scan_kick(struct dmr_pool *pool)
{
	struct dmr_scan *sc = &pool->scan;

	if (sc->wq && READ_ONCE(sc->enabled) && !READ_ONCE(sc->stopping))
		mod_delayed_work(sc->wq, &sc->work, 0);
}

/* ---- Control ------------------------------------------------------------------- */

/* scan_start / scan_stop; the caller holds the registry's ops_lock. */
int dmr_scan_control(struct dmr_pool *pool, bool start)
{
	struct dmr_pdev *pdev;

	if (start && !READ_ONCE(pool->scan.enabled)) {
		DMERR_LIMIT("scan_start: the scanner of pool %u is disabled (scan_enabled = 0)",
			    pool->id);
		return -EINVAL;
	}
	WRITE_ONCE(pool->scan.held_until, start ? 0 :
		   ktime_get_boottime_seconds() + READ_ONCE(pool->scan.interval));
	mutex_lock(&pool->pdev_lock);
	list_for_each_entry(pdev, &pool->pdevs, list) {
		WRITE_ONCE(pdev->scan_requested, start);
		if (start)
			WRITE_ONCE(pdev->scan_retry_at, 0);
	}
	mutex_unlock(&pool->pdev_lock);
	dmr_scan_kick(pool);
	return 0;
}

struct scan_tunable {
	const char *name;
	size_t offset;			/* of the unsigned int in dmr_scan */
	unsigned int min, max;
};

static const struct scan_tunable scan_tunables[] = {
	{ "scan_interval", offsetof(struct dmr_scan, interval), 1,
	  SCAN_MAX_INTERVAL },
	{ "scan_rate", offsetof(struct dmr_scan, rate), 1, SCAN_MAX_RATE },
	{ "scan_slow_ms", offsetof(struct dmr_scan, slow_ms), SCAN_MIN_SLOW_MS,
	  SCAN_MAX_SLOW_MS },
};

static unsigned int *scan_field(struct dmr_pool *pool,
				const struct scan_tunable *t)
{
	return (unsigned int *)((char *)&pool->scan + t->offset);
}

ssize_t dmr_scan_show(struct dmr_pool *pool, const char *name, char *buf)
{
	unsigned int i;

	if (!strcmp(name, "scan_enabled"))
		return sysfs_emit(buf, "%d\n", READ_ONCE(pool->scan.enabled));
	if (!strcmp(name, "scan_state"))
		return sysfs_emit(buf, "%s\n", dmr_scan_state_name(pool));
	for (i = 0; i < ARRAY_SIZE(scan_tunables); i++) {
		unsigned int *v = scan_field(pool, &scan_tunables[i]);

		if (!strcmp(name, scan_tunables[i].name))
			return sysfs_emit(buf, "%u\n", READ_ONCE(*v));
	}
	return -ENOENT;
}

/* A bad value is refused with EINVAL and changes nothing. */
ssize_t dmr_scan_store(struct dmr_pool *pool, const char *name,
		       const char *buf, size_t len)
{
	unsigned int i, v;

	if (kstrtouint(buf, 10, &v))
		return -EINVAL;
	if (!strcmp(name, "scan_enabled")) {
		if (v > 1)
			return -EINVAL;
		WRITE_ONCE(pool->scan.enabled, v);
		if (v)
			dmr_scan_kick(pool);
		else
			WRITE_ONCE(pool->scan.state, DMR_SCAN_OFF);
		return len;
	}
	for (i = 0; i < ARRAY_SIZE(scan_tunables); i++) {
		const struct scan_tunable *t = &scan_tunables[i];

		if (strcmp(name, t->name))
			continue;
		if (v < t->min || v > t->max)
			return -EINVAL;
		WRITE_ONCE(*scan_field(pool, t), v);
		/* A step now: the delay in hand may be one of the old rate. */
		dmr_scan_kick(pool);
		return len;
	}
	return -EINVAL;
}

/* ---- Life cycle ---------------------------------------------------------------- */

int dmr_scan_init(struct dmr_pool *pool)
{
	struct dmr_scan *sc = &pool->scan;

	sc->enabled = true;
	sc->interval = SCAN_DEF_INTERVAL;
	sc->rate = SCAN_DEF_RATE;
	sc->slow_ms = SCAN_DEF_SLOW_MS;
	sc->state = DMR_SCAN_IDLE;
	INIT_DELAYED_WORK(&sc->work, scan_work);
	sc->buf = vmalloc(max_t(u32, SCAN_MAX_CHUNK, pool->sb.geo.block_size));
	if (!sc->buf)
		return -ENOMEM;
	sc->io = dm_io_client_create();
	if (IS_ERR(sc->io)) {
		int r = PTR_ERR(sc->io);

		sc->io = NULL;
		return r;
	}
	if (!RM_DM_IO_HAS_IOPRIO)
		DMWARN_LIMIT("pool %u: dm-io lacks ioprio: scanner reads are not idle-class",
			     pool->id);
	sc->wq = alloc_workqueue("dm-remap-scan/%u",
				 WQ_UNBOUND | WQ_FREEZABLE | WQ_MEM_RECLAIM, 1,
				 pool->id);
	return sc->wq ? 0 : -ENOMEM;
}

/* Stop for good: no step runs after this returns. */
void dmr_scan_exit(struct dmr_pool *pool)
{
	struct dmr_scan *sc = &pool->scan;

	WRITE_ONCE(sc->stopping, true);
	if (sc->wq) {
		cancel_delayed_work_sync(&sc->work);
		destroy_workqueue(sc->wq);
		sc->wq = NULL;
	}
	WRITE_ONCE(sc->state, DMR_SCAN_OFF);
	if (sc->io)
		dm_io_client_destroy(sc->io);
	sc->io = NULL;
	vfree(sc->buf);
	sc->buf = NULL;
}
