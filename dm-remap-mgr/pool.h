/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pool.h - spare pools: the module-wide registry, the in-memory copy of a
 * pool's metadata and the commit daemon that makes it durable.
 */
#ifndef DM_REMAP_POOL_H
#define DM_REMAP_POOL_H

#include <linux/atomic.h>
#include <linux/bio.h>
#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-remap-compat.h"
#include "rm_format.h"
#include "rm_index.h"

#define DMR_MAX_POOLS		64	/* registry slots 0..63 */

/*
 * A pass over a pool's entries (up to RM_MAX_BLOCKS of them, under
 * md_lock) offers the CPU every 65536 entries: call with the entry's
 * number.
 */
static inline void dmr_entries_resched(u64 i)
{
	if (!(i & 0xffff))
		cond_resched();
}

struct remap_c;			/* a remap table instance (dm-remap/remap.h) */

#define DMR_PDEV_TABLES	3	/* tables of one dm device with one dev_id */

enum dmr_scan_state {
	DMR_SCAN_OFF,		/* disabled (scan_enabled = 0) */
	DMR_SCAN_IDLE,		/* no device due for a pass */
	DMR_SCAN_SCANNING,
};

/*
 * The background scanner of a pool (scanner.c).  Tunables are written by
 * sysfs and read by the worker without a lock (whole words).
 */
struct dmr_scan {
	struct workqueue_struct *wq;	/* WQ_UNBOUND|WQ_FREEZABLE|WQ_MEM_RECLAIM */
	struct delayed_work work;	/* one step: one chunk of one device */
	struct dm_io_client *io;
	void *buf;			/* one chunk, vmalloc */
	bool enabled;
	unsigned int interval;		/* seconds from a pass's end to the next */
	unsigned int rate;		/* KiB/s while the devices are idle */
	unsigned int slow_ms;		/* a read slower than this is slow */
	unsigned int state;		/* enum dmr_scan_state */
	bool stopping;			/* the pool is going away */
	/* scan_stop: no pass before this (boot time, s) */
	time64_t held_until;
	u32 cursor;			/* dev_id served last (round robin) */
	u64 fg_ios;			/* foreground bios seen at the last step */
};

/* The remapped and pending blocks of every device record (md_lock). */
struct dmr_dev_blocks {
	u64 blocks[RM_MAX_DEVS];	/* of pool->devs[i] */
	u32 ids[RM_MAX_DEVS];		/* in-use records' dev_ids, sorted */
	u8 rec[RM_MAX_DEVS];		/* ids[k] is pool->devs[rec[k]] */
};

enum dmr_pool_state {
	DMR_POOL_OK,
	DMR_POOL_FAIL,		/* a metadata write failed: read-only */
};

struct dmr_pool {
	struct kobject kobj;	/* pools/<id>; its release frees the pool */
	unsigned int id;
	struct rm_bdev spare;	/* held exclusively while the pool is active */
	dev_t spare_dev;
	char spare_name[BDEVNAME_SIZE];
	struct dm_io_client *io;
	struct workqueue_struct *wq;	/* commit daemon, WQ_MEM_RECLAIM */
	struct workqueue_struct *err_wq;	/* repairs after I/O errors */
	struct work_struct commit_work;

	/*
	 * md_lock protects everything below down to the statistics: the
	 * in-memory metadata (sb, devs, entries), the per-logical commit
	 * state and the generation counters.  Only process context takes it;
	 * nothing holding it waits for I/O.
	 */
	struct mutex md_lock;
	struct rm_sb sb;		/* as last committed */
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_name *names;		/* RM_MAX_DEVS labels, kvmalloc */
	struct rm_entry *entries;	/* sb.geo.nr_blocks, vmalloc */
	u8 *cur_pair;			/* per logical: pair of the committed copy */
	u64 *cur_seq;			/* per logical: seq of the committed copy */
	unsigned long *dirty;		/* logicals changed since last commit */
	/* Commit worker only: logicals of the commit in flight, buffers. */
	unsigned long *committing;
	void **cbufs;			/* 2 per logical + RM_SB_COPIES (metadata.c) */
	bool lost_copy;			/* a table copy write failed */
	/*
	 * An inactive table slot was unreadable at load: the first commit
	 * must lose no copy.  Set by load before the pool is published, then
	 * read and cleared by the commit worker only.
	 */
	bool unread_slot;
	/*
	 * Superblock copies known to hold the last commit (bit i: copy i).
	 * Set by load, then by the commit worker only.
	 */
	u8 sb_good;
	u64 next_seq;			/* seq of the next commit */
	u64 change_gen;			/* bumped by every metadata change */
	int md_error;			/* sticky: first metadata write error */
	u64 nr_free, nr_mapped, nr_pending, nr_retired;
	u64 commits;
	/*
	 * One bit per spare block, set while it cannot be handed out: it is
	 * in use in entries[] (not FREE), reserved, or in limbo.  Reserved
	 * blocks are those handed out but not yet recorded: set here and
	 * still FREE in entries[], so that a commit does not persist them.
	 * The clear bits number nr_free.  md_lock.
	 */
	unsigned long *taken;
	/*
	 * Limbo: blocks freed in entries[] (the remaps a forced identity
	 * change drops) whose free is not durable yet.  Until the commit of
	 * change_gen limbo_gen, a crash brings their old remaps back, so they
	 * stay taken: handed out and written meanwhile, they would put new
	 * data under an old remap.  The commit that covers limbo_gen clears
	 * them from taken.  md_lock.
	 */
	unsigned long *limbo;
	u64 nr_limbo, limbo_gen;
	u64 alloc_cursor;		/* next entry the allocator looks at */
	u64 low_water;			/* dm event when free blocks drop below */
	bool low_signalled;		/* event sent, free not above low_water since */
	/* A repair found no free block, none has been freed since. */
	bool exhausted;

	/* change_gen covered by the last commit; read without md_lock */
	atomic64_t durable_gen;
	wait_queue_head_t commit_waitq;	/* waiters for durable_gen/md_error */
	u64 dev_gen[RM_MAX_DEVS];	/* change_gen of each record's last change */
	struct dmr_dev_blocks dev_blocks;	/* scratch of __count_dev_blocks() */

	/* Protected by the registry lock. */
	unsigned int nr_attached;	/* remap devices holding the pool */

	struct dmr_scan scan;

	/*
	 * Per-device state of attached devices; protected by pdev_lock.
	 * Lock order: pdev_lock, then md_lock.  Repair workers take it (to
	 * raise events) while bios wait on them: a section that allocates
	 * is a NOIO scope (pdev.c, pdev_lock_noio()).
	 */
	struct mutex pdev_lock;
	struct list_head pdevs;
	struct kobject *devices_kobj;	/* pools/<id>/devices */
};

/*
 * Per-CPU counters of the I/O path: writes started and ended, per epoch
 * parity, and bios sent to the spare.
 */
struct dmr_wcount {
	unsigned long started[2];
	unsigned long ended[2];
	u64 remapped;
	unsigned long ios;		/* bios mapped: the scanner's load signal */
};

/*
 * A remap index published for lock-free readers (RCU).  Its fields other
 * than the slots' and the bitmap's contents are fixed by ix_alloc(), so
 * sysfs reads them under rcu_read_lock() alone.
 */
struct dmr_ix {
	struct rcu_head rcu;
	struct rm_index ix;		/* slots follow this struct */
	u64 *filter;			/* region bitmap, ix.region_words words */
	size_t bytes;			/* memory taken by this struct and slots */
	size_t filter_bytes;		/* and by the bitmap (see ix_alloc()) */
};

/*
 * Per-device state of a dev_id in a pool, shared by the table instances of
 * one dm device (a reload constructs the new table before the old one is
 * destroyed).  Lives in pools/<id>/devices/<dev_id>/.
 */
struct dmr_pdev {
	struct kobject kobj;		/* its release frees the pdev */
	struct list_head list;		/* in pool->pdevs */
	struct dmr_pool *pool;
	u32 dev_id;
	unsigned int users;		/* table instances; pool->pdev_lock */
	/*
	 * The tables of md that use dev_id: live, inactive, and a new one
	 * loaded over the inactive (dm constructs it before it destroys the
	 * inactive one).  pdev_lock.
	 */
	struct dm_table *tables[DMR_PDEV_TABLES];
	struct mapped_device *md;	/* the dm device that owns dev_id */
	dev_t main_dev;			/* main device of the table last resumed */
	bool linked;			/* sysfs link "dm" made; pdev_lock */
	/*
	 * A table passed the identity step of its preresume (the device may
	 * have gone live): I/O, repairs and messages may have used the index
	 * since, so the remaps can no longer be dropped (force) under it.
	 * pdev_lock.
	 */
	bool went_live;

	/*
	 * The remap index: readers under rcu_read_lock_sched (map, the scanner) or
	 * rcu_read_lock (others), both of which call_rcu() waits for; the
	 * writer holds ix_lock, which also serializes migrations of blocks.
	 */
	struct dmr_ix __rcu *ix;
	struct mutex ix_lock;		/* index writer, one migration at a time */

	/*
	 * Writes in flight (to the main device, or to the spare for a
	 * remapped block), counted per epoch so that a migration can wait for
	 * the writes issued before it marked its block busy (see remap.c,
	 * "Migrations").  Per-CPU start and end counts, as in SRCU: map() and
	 * end_io only touch their own CPU's line; the epoch of a write is
	 * drained when writes[].started[epoch & 1] == sum of
	 * writes[].ended[epoch & 1].  epoch changes only under ix_lock.  ix,
	 * writes, epoch, main_failed, main_write_moves and spare_failed are
	 * what every bio reads: keep them close (one cache line).
	 */
	struct dmr_wcount __percpu *writes;
	unsigned int epoch;
	bool main_failed;		/* main device fails everywhere */
	/*
	 * Blocks moved to the spare because the main device failed their
	 * writes, since a write to it last succeeded: the error worker adds,
	 * end_io and the worker reset it.  DMR_MAIN_WRITE_MOVES: the main
	 * device takes no writes at all (gone read-only).
	 */
	atomic_t main_write_moves;
	unsigned long spare_failed;	/* DMR_SPARE_* bits (repair.c) */

	/* Bios held while their block is busy; protected by defer_lock. */
	spinlock_t defer_lock;
	struct bio_list deferred;

	/* Bios that failed (main device or spare block), for the error worker. */
	spinlock_t err_lock;
	struct bio_list failed;		/* protected by err_lock */
	struct work_struct err_work;	/* on pool->err_wq */
	/*
	 * Two blocks of memory for err_work, made with the pdev so that a
	 * repair under memory pressure needs no large allocation.  Only
	 * err_work uses them (one at a time: a work item does not run twice
	 * at once).
	 */
	void *repair_buf;
	/* jiffies; see DMR_SPARE_*.  Written under ix_lock, read without. */
	unsigned long spare_retry_at;
	struct dm_target *event_ti;	/* live table for dm events; pdev_lock */

	/*
	 * Scanner.  scan_lock is the scanner's own: the I/O path never takes
	 * it.  It protects scan_rc (the live table, set on resume, cleared on
	 * postsuspend, so a chunk in progress finishes before a suspend
	 * completes) and the pass state below.  Lock order: scan_lock, then
	 * ix_lock, then pdev_lock / md_lock.
	 */
	struct mutex scan_lock;
	struct remap_c *scan_rc;
	u64 scan_pos;			/* next block of the pass */
	u64 scan_passes;		/* completed passes */
	time64_t scan_last_pass;	/* end of the last pass, unix s */
	bool scan_requested;		/* scan_start: a pass now */
	/* Detaches waiting for scan_lock: finish the chunk early. */
	atomic_t scan_abort;
	/*
	 * Deadlines in boot time (ktime_get_boottime_seconds()), not wall
	 * time: a clock step must not hold a device off or let it go early.
	 * Only scan_last_pass, which is persisted, is wall time.
	 */
	time64_t scan_retry_at;		/* after a failure: not before this */
	time64_t scan_saved;		/* progress last recorded */
	u64 scan_chunk;			/* blocks per read, adapts to load */
	u64 scan_end;			/* whole blocks of the device */
	/*
	 * Load on the disk that holds the main device, also from I/O that
	 * does not pass through this target: at each step the disk's
	 * sectors moved (its I/O statistics) less the module's own on that
	 * disk (dmr_disk_foreign()), as last seen.  Under scan_lock.
	 */
	u64 foreign_seen;
	/* Counters since the device was attached (read without a lock). */
	u64 scanned, scan_failed, scan_slow, scan_retried, scan_predictive;

	/* Statistics. */
	atomic64_t read_errors;
	atomic64_t write_errors;
	atomic64_t remapped_base;	/* sum of writes[].remapped at clear_stats */
	u64 nr_mapped;			/* protected by ix_lock */
	u64 nr_pending;			/* protected by ix_lock */
};

/*
 * Bits of pdev->spare_failed: the spare failed reads everywhere (a probe
 * found it; a read or write of a remapped block that succeeds ends it), or
 * none of SPARE_TRIES new spare blocks took a block's data (a write that
 * succeeds ends it).  While one is set the device's state is "fail"; for
 * 30 s after it was set (pdev->spare_retry_at) no block is moved to or
 * relocated on the spare (remap_spare_held()).
 */
#define DMR_SPARE_READS_FAIL	0
#define DMR_SPARE_WRITES_FAIL	1

/*
 * pdev->main_write_moves: after one less than this many blocks moved off
 * main-device write errors in a row, the next such move first checks that
 * the main device takes writes elsewhere (repair.c, main_write_may_move());
 * if not, the count is set to this, the device's write errors pass
 * through instead of using up the pool, and its state is "fail", until a
 * write to it succeeds again.
 */
#define DMR_MAIN_WRITE_MOVES	8

/* The main device takes no writes (DMR_MAIN_WRITE_MOVES).  Any context. */
static inline bool dmr_main_writes_fail(struct dmr_pdev *pdev)
{
	return atomic_read(&pdev->main_write_moves) >= DMR_MAIN_WRITE_MOVES;
}

/* Registry (pool.c). */
int dmr_pool_registry_init(void);
void dmr_pool_registry_exit(void);
struct dmr_pool *dmr_pool_attach(unsigned int id);
/* A plain reference (keeps the memory, does not attach); NULL if none. */
struct dmr_pool *dmr_pool_get(unsigned int id);
void dmr_pool_put(struct dmr_pool *pool);
void dmr_pool_detach(struct dmr_pool *pool);
u64 dmr_pool_dev_whole_blocks(struct dmr_pool *pool, u32 dev_id);
/* __dmr_pool_identity() flags and results. */
#define DMR_ID_APPLY	0x1	/* change the record, not only check */
#define DMR_ID_FORCE	0x2	/* a smaller device may drop the remaps */
#define DMR_ID_LIVE	0x4	/* a table of dev_id went live: none dropped */
#define DMR_ID_CAN_DROP	0x8	/* apply: the caller's empty index is ready */
#define DMR_ID_DROPPED	0x10	/* result: the remaps are dropped */
#define DMR_ID_NEW_SCAN	0x20	/* result: scan progress starts over */
/* Caller holds pool->pdev_lock (see pdev.c). */
int __dmr_pool_identity(struct dmr_pool *pool, u32 dev_id, u64 size,
			unsigned int flags, u64 *ticket, char **error);

/* Manager operations (pool.c); called with no locks held, may sleep. */
int dmr_pool_format(const char *path, u32 block_size, bool force);
int dmr_pool_resume(unsigned int id, const char *path);
/* Called by dmr_md_load() under ops_lock. */
int dmr_pool_uuid_slot(const u8 *uuid);
int dmr_pool_check_uuid_unique(struct dmr_pool *pool);
int dmr_pool_free(unsigned int id);
/* Text for the list message and the manager status. */
unsigned int dmr_pool_list(char *result, unsigned int maxlen, bool table);
int dmr_pool_set_label(struct dmr_pool *pool, u32 dev_id, const char *name,
		       const char *locator);
int dmr_pool_list_devices(unsigned int id, char *result, unsigned int maxlen);
const char *dmr_pool_state_name(struct dmr_pool *pool);

/* Per-device state (pdev.c). */
struct dmr_pdev *dmr_pdev_get(struct dmr_pool *pool, u32 dev_id,
			      struct dm_table *table, dev_t main_dev,
			      u64 size, bool force, work_func_t repair,
			      char **error);
int dmr_pdev_resume_identity(struct dmr_pdev *pdev, dev_t main_dev, u64 size,
			     bool force);
void dmr_pdev_set_event_target(struct dmr_pdev *pdev, struct dm_target *ti,
			       bool live);
void dmr_pdev_event(struct dmr_pdev *pdev);
void dmr_pool_event(struct dmr_pool *pool);
void dmr_pool_exhausted(struct dmr_pool *pool);
u64 dmr_pool_free_blocks(struct dmr_pool *pool);
u64 dmr_pool_retire(struct dmr_pool *pool, u32 spare);
u64 dmr_pool_heal(struct dmr_pool *pool, u32 spare);
void dmr_pdev_put(struct dmr_pdev *pdev, struct dm_table *table);
void dmr_pdev_link(struct dmr_pdev *pdev);
u64 dmr_pdev_remapped_ios(struct dmr_pdev *pdev);
unsigned long dmr_pdev_ios(struct dmr_pdev *pdev);
unsigned long dmr_pool_ios(struct dmr_pool *pool);
void dmr_pdev_clear_stats(struct dmr_pdev *pdev);
int dmr_pdev_ix_set(struct dmr_pdev *pdev, u64 block, u32 spare,
		    unsigned int state);
int dmr_pdev_ix_delete(struct dmr_pdev *pdev, u64 block);
int dmr_pool_reserve(struct dmr_pool *pool, u32 *spare);
void dmr_pool_unreserve(struct dmr_pool *pool, u32 spare);
void __dmr_pool_blocks_freed(struct dmr_pool *pool);
u64 dmr_pool_record(struct dmr_pool *pool, u32 spare, u32 dev_id, u64 block,
		    unsigned int state);
u64 dmr_pool_relocate(struct dmr_pool *pool, u32 old, u32 spare, u32 dev_id,
		      u64 block, unsigned int state);
void dmr_pool_undo(struct dmr_pool *pool, u32 spare, u32 old,
		   unsigned int old_state, u32 dev_id, u64 block);
sector_t dmr_pool_spare_sector(struct dmr_pool *pool, u32 spare);
unsigned int dmr_pool_block_shift(struct dmr_pool *pool);

/* Scanner (scanner.c). */
int dmr_scan_init(struct dmr_pool *pool);
void dmr_scan_exit(struct dmr_pool *pool);
void dmr_scan_kick(struct dmr_pool *pool);
int dmr_scan_control(struct dmr_pool *pool, bool start);
int dmr_pool_scan_control(unsigned int id, bool start);
const char *dmr_scan_state_name(struct dmr_pool *pool);
void dmr_scan_pdev_init(struct dmr_pdev *pdev);
void dmr_scan_attach(struct dmr_pdev *pdev, struct remap_c *rc);
void dmr_own_io(struct block_device *bdev, sector_t count);
u64 dmr_disk_foreign(struct block_device *bdev);
void dmr_scan_detach(struct dmr_pdev *pdev, struct remap_c *rc);
unsigned int dmr_scan_health(struct dmr_pdev *pdev);
unsigned int dmr_scan_percent(struct dmr_pdev *pdev);
ssize_t dmr_scan_show(struct dmr_pool *pool, const char *name, char *buf);
ssize_t dmr_scan_store(struct dmr_pool *pool, const char *name,
		       const char *buf, size_t len);

/* What the scanner asks of a remap table (dm-remap/repair.c). */
struct dmr_scan_result {
	unsigned int done;		/* blocks of the chunk handled */
	u64 failed, slow, retried, predictive, pending;
	bool read_ok;			/* a read of the main device worked */
};

u64 remap_scan_blocks(struct remap_c *rc);
struct block_device *remap_main_bdev(struct remap_c *rc);
int remap_scan_chunk(struct remap_c *rc, struct dm_io_client *io, void *buf,
		     u64 block, unsigned int nr, unsigned int slow_ms,
		     struct dmr_scan_result *res);

/* Metadata engine (metadata.c). */
int dmr_md_format(struct dm_io_client *io, struct block_device *bdev,
		  u32 block_size, bool force);
int dmr_md_load(struct dmr_pool *pool);
void dmr_md_release(struct dmr_pool *pool);
void dmr_md_commit_work(struct work_struct *ws);
/* Caller holds md_lock: record that logical changed, returns a ticket. */
u64 dmr_md_dirty(struct dmr_pool *pool, u32 logical);
/* Start a commit of what has changed (does not wait). */
void dmr_md_kick(struct dmr_pool *pool);
/* Wait until the change with this ticket is on stable storage. */
int dmr_md_wait(struct dmr_pool *pool, u64 ticket);
int dmr_md_wait_killable(struct dmr_pool *pool, u64 ticket);
u64 dmr_md_durable(struct dmr_pool *pool);
/* Commit everything changed so far and wait for it. */
int dmr_md_sync(struct dmr_pool *pool);

#endif /* DM_REMAP_POOL_H */
