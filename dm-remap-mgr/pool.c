// SPDX-License-Identifier: GPL-2.0-only
/*
 * pool.c - the module-wide registry of spare pools and their sysfs
 * directories (/sys/module/dm_remap/pools/<id>/).
 *
 * Pools live in numbered slots independent of any manager device: removing
 * and re-creating the remap-mgr device does not touch them.  Every active
 * pool holds its spare exclusively and a reference on the module, so rmmod
 * is refused while any pool is active.
 */
#include <linux/module.h>
#include <linux/slab.h>

#include "pool.h"

#define DM_MSG_PREFIX "remap-mgr"

/* Protects pools[] and every pool's nr_attached.  Never held across I/O. */
static DEFINE_MUTEX(registry_lock);
static struct dmr_pool *pools[DMR_MAX_POOLS];

/*
 * Serializes format/resume/free: each checks the registry, does I/O without
 * registry_lock, then publishes, and must not race with another.  Taken
 * killable: an operation stuck on a spare that does not answer holds it
 * (its I/O cannot be interrupted), and those waiting behind it must not
 * hang unkillable too.
 */
static DEFINE_MUTEX(ops_lock);

static struct kobject *pools_kobj;	/* /sys/module/dm_remap/pools */

/* Holder for the exclusive open of a device being formatted. */
static int format_holder;

/* ---- sysfs ------------------------------------------------------------------ */

struct pool_attr {
	struct attribute attr;
	u64 (*value)(struct dmr_pool *pool);	/* called under md_lock */
	ssize_t (*show)(struct dmr_pool *pool, char *buf);
	ssize_t (*store)(struct dmr_pool *pool, const char *buf, size_t len);
	ssize_t (*scan_show)(struct dmr_pool *pool, struct attribute *attr,
			     char *buf);
	ssize_t (*scan_store)(struct dmr_pool *pool, struct attribute *attr,
			      const char *buf, size_t len);
};

#define POOL_U64_ATTR(_name, _expr)					\
static u64 pool_val_##_name(struct dmr_pool *pool)			\
{									\
	return _expr;							\
}									\
static struct pool_attr pool_attr_##_name = {				\
	.attr = { .name = #_name, .mode = 0444 },			\
	.value = pool_val_##_name,					\
}

POOL_U64_ATTR(block_size, pool->sb.geo.block_size);
POOL_U64_ATTR(blocks_total, pool->sb.geo.nr_blocks);
POOL_U64_ATTR(blocks_free, pool->nr_free);
POOL_U64_ATTR(blocks_used, pool->nr_mapped);
POOL_U64_ATTR(blocks_pending, pool->nr_pending);
POOL_U64_ATTR(blocks_retired, pool->nr_retired);
POOL_U64_ATTR(metadata_seq, READ_ONCE(pool->sb.seq));
POOL_U64_ATTR(commits, pool->commits);

static ssize_t pool_show_spare_device(struct dmr_pool *pool, char *buf)
{
	return sysfs_emit(buf, "%s\n", pool->spare_name);
}

static ssize_t pool_show_dev(struct dmr_pool *pool, char *buf)
{
	return sysfs_emit(buf, "%u:%u\n", MAJOR(pool->spare_dev),
			  MINOR(pool->spare_dev));
}

static ssize_t pool_show_state(struct dmr_pool *pool, char *buf)
{
	return sysfs_emit(buf, "%s\n", dmr_pool_state_name(pool));
}

static ssize_t pool_show_uuid(struct dmr_pool *pool, char *buf)
{
	return sysfs_emit(buf, "%pUb\n", pool->sb.uuid);
}

static ssize_t pool_show_attached(struct dmr_pool *pool, char *buf)
{
	unsigned int n;

	mutex_lock(&registry_lock);
	n = pool->nr_attached;
	mutex_unlock(&registry_lock);
	return sysfs_emit(buf, "%u\n", n);
}

#define POOL_SHOW_ATTR(_name, _fn)					\
static struct pool_attr pool_attr_##_name = {				\
	.attr = { .name = #_name, .mode = 0444 },			\
	.show = _fn,							\
}

/* Tunable: a dm event when free spare blocks drop below this many. */
static ssize_t pool_store_low_water(struct dmr_pool *pool, const char *buf,
				    size_t len)
{
	u64 v;

	if (kstrtou64(buf, 10, &v))
		return -EINVAL;
	mutex_lock(&pool->md_lock);
	if (v > pool->sb.geo.nr_blocks) {
		mutex_unlock(&pool->md_lock);
		return -EINVAL;
	}
	pool->low_water = v;
	pool->low_signalled = pool->nr_free < v;
	mutex_unlock(&pool->md_lock);
	return len;
}

static u64 pool_val_low_water(struct dmr_pool *pool)
{
	return pool->low_water;
}

static struct pool_attr pool_attr_low_water = {
	.attr = { .name = "low_water", .mode = 0644 },
	.value = pool_val_low_water,
	.store = pool_store_low_water,
};

/* Scanner tunables and state: scanner.c parses and validates them. */
static ssize_t pool_scan_show(struct dmr_pool *pool, struct attribute *attr,
			      char *buf)
{
	return dmr_scan_show(pool, attr->name, buf);
}

static ssize_t pool_scan_store(struct dmr_pool *pool, struct attribute *attr,
			       const char *buf, size_t len)
{
	return dmr_scan_store(pool, attr->name, buf, len);
}

#define POOL_SCAN_ATTR(_name, _mode, _store)				\
static struct pool_attr pool_attr_##_name = {				\
	.attr = { .name = #_name, .mode = _mode },			\
	.scan_show = pool_scan_show,					\
	.scan_store = _store,						\
}

POOL_SCAN_ATTR(scan_enabled, 0644, pool_scan_store);
POOL_SCAN_ATTR(scan_interval, 0644, pool_scan_store);
POOL_SCAN_ATTR(scan_rate, 0644, pool_scan_store);
POOL_SCAN_ATTR(scan_slow_ms, 0644, pool_scan_store);
POOL_SCAN_ATTR(scan_state, 0444, NULL);

POOL_SHOW_ATTR(spare_device, pool_show_spare_device);
POOL_SHOW_ATTR(dev, pool_show_dev);
POOL_SHOW_ATTR(state, pool_show_state);
POOL_SHOW_ATTR(uuid, pool_show_uuid);
POOL_SHOW_ATTR(attached_devices, pool_show_attached);

static struct attribute *pool_attrs[] = {
	&pool_attr_spare_device.attr,
	&pool_attr_dev.attr,
	&pool_attr_state.attr,
	&pool_attr_uuid.attr,
	&pool_attr_attached_devices.attr,
	&pool_attr_block_size.attr,
	&pool_attr_blocks_total.attr,
	&pool_attr_blocks_free.attr,
	&pool_attr_blocks_used.attr,
	&pool_attr_blocks_pending.attr,
	&pool_attr_blocks_retired.attr,
	&pool_attr_metadata_seq.attr,
	&pool_attr_commits.attr,
	&pool_attr_low_water.attr,
	&pool_attr_scan_enabled.attr,
	&pool_attr_scan_interval.attr,
	&pool_attr_scan_rate.attr,
	&pool_attr_scan_slow_ms.attr,
	&pool_attr_scan_state.attr,
	NULL,
};
ATTRIBUTE_GROUPS(pool);

static ssize_t pool_attr_show(struct kobject *kobj, struct attribute *attr,
			      char *buf)
{
	struct dmr_pool *pool = container_of(kobj, struct dmr_pool, kobj);
	struct pool_attr *pa = container_of(attr, struct pool_attr, attr);
	u64 v;

	if (pa->scan_show)
		return pa->scan_show(pool, attr, buf);
	if (pa->show)
		return pa->show(pool, buf);
	mutex_lock(&pool->md_lock);
	v = pa->value(pool);
	mutex_unlock(&pool->md_lock);
	return sysfs_emit(buf, "%llu\n", (unsigned long long)v);
}

static ssize_t pool_attr_store(struct kobject *kobj, struct attribute *attr,
			       const char *buf, size_t len)
{
	struct dmr_pool *pool = container_of(kobj, struct dmr_pool, kobj);
	struct pool_attr *pa = container_of(attr, struct pool_attr, attr);

	if (pa->scan_store)
		return pa->scan_store(pool, attr, buf, len);
	return pa->store ? pa->store(pool, buf, len) : -EPERM;
}

static const struct sysfs_ops pool_sysfs_ops = {
	.show = pool_attr_show,
	.store = pool_attr_store,
};

/* Last reference gone: the spare is closed already, free the memory. */
static void pool_release(struct kobject *kobj)
{
	struct dmr_pool *pool = container_of(kobj, struct dmr_pool, kobj);

	dmr_md_release(pool);
	kfree(pool);
}

static const struct kobj_type pool_ktype = {
	.release = pool_release,
	.sysfs_ops = &pool_sysfs_ops,
	.default_groups = pool_groups,
};

/* ---- Life cycle --------------------------------------------------------------- */

const char *dmr_pool_state_name(struct dmr_pool *pool)
{
	if (READ_ONCE(pool->md_error))
		return "fail";
	return READ_ONCE(pool->exhausted) ? "exhausted" : "ok";
}

/* Is dev the spare of an active pool?  Caller holds registry_lock. */
static int __slot_of_spare(dev_t dev)
{
	unsigned int i;

	lockdep_assert_held(&registry_lock);
	for (i = 0; i < DMR_MAX_POOLS; i++)
		if (pools[i] && pools[i]->spare_dev == dev)
			return i;
	return -1;
}

static int lookup_spare(const char *what, const char *path, dev_t *dev)
{
	int r = lookup_bdev(path, dev);
	int slot;

	if (r) {
		DMERR_LIMIT("%s: cannot find block device %s (%d)", what, path, r);
		return -ENODEV;
	}
	mutex_lock(&registry_lock);
	slot = __slot_of_spare(*dev);
	mutex_unlock(&registry_lock);
	if (slot >= 0) {
		DMERR_LIMIT("%s: %s is the spare of active pool %d", what, path, slot);
		return -EBUSY;
	}
	return 0;
}

/* The slot of the active pool with this uuid, or -1. */
int dmr_pool_uuid_slot(const u8 *uuid)
{
	int i, slot = -1;

	mutex_lock(&registry_lock);
	for (i = 0; i < DMR_MAX_POOLS && slot < 0; i++)
		if (pools[i] && !memcmp(pools[i]->sb.uuid, uuid, RM_UUID_SIZE))
			slot = i;
	mutex_unlock(&registry_lock);
	return slot;
}

/*
 * The same pool seen through another path must not be active twice.  Run
 * by dmr_md_load() as soon as the superblock is known, before the table is
 * read (a torn copy is refused as a copy, not as damaged), and before
 * anything is written.  ops_lock keeps another pool from being published
 * meanwhile.
 */
int dmr_pool_check_uuid_unique(struct dmr_pool *pool)
{
	int slot = dmr_pool_uuid_slot(pool->sb.uuid);

	if (slot < 0)
		return 0;
	DMERR_LIMIT("resume_spare: pool %pUb on %s is already active in slot %d",
		    pool->sb.uuid, pool->spare_name, slot);
	return -EBUSY;
}

/* Undo everything resume set up; the memory goes with the last kobject ref. */
static void pool_destroy(struct dmr_pool *pool, bool in_sysfs)
{
	if (in_sysfs) {
		kobject_put(pool->devices_kobj);
		sysfs_remove_link(&pool->kobj, "spare");
		kobject_del(&pool->kobj);	/* waits for sysfs readers */
	}
	dmr_scan_exit(pool);
	if (pool->err_wq)
		destroy_workqueue(pool->err_wq);
	if (pool->wq)
		destroy_workqueue(pool->wq);
	if (pool->io)
		dm_io_client_destroy(pool->io);
	if (pool->spare.bdev)
		rm_bdev_close(&pool->spare, pool);
	kobject_put(&pool->kobj);
}

static struct dmr_pool *pool_alloc(unsigned int id)
{
	struct dmr_pool *pool = kzalloc(sizeof(*pool), GFP_KERNEL);

	if (!pool)
		return NULL;
	kobject_init(&pool->kobj, &pool_ktype);
	pool->id = id;
	mutex_init(&pool->md_lock);
	mutex_init(&pool->pdev_lock);
	INIT_LIST_HEAD(&pool->pdevs);
	init_waitqueue_head(&pool->commit_waitq);
	INIT_WORK(&pool->commit_work, dmr_md_commit_work);
	return pool;
}

/*
 * Open a spare for reading and writing, exclusively: -EBUSY if someone
 * else has it, -EROFS if it is read-only, -ENODEV for anything else.
 */
static int spare_open(const char *op, const char *path, void *holder,
		      struct rm_bdev *b)
{
	int r = rm_bdev_open(path, holder, b);

	if (!r)
		return 0;
	b->bdev = NULL;
	if (r == -EBUSY) {
		DMERR_LIMIT("%s: cannot open %s exclusively: it is in use", op, path);
		return r;
	}
	if (r == -EACCES || r == -EROFS) {
		DMERR_LIMIT("%s: %s is read-only", op, path);
		return -EROFS;
	}
	DMERR_LIMIT("%s: cannot open %s (%d)", op, path, r);
	return -ENODEV;
}

static int pool_open(struct dmr_pool *pool, const char *path)
{
	int r = spare_open("resume_spare", path, pool, &pool->spare);

	if (r)
		return r;
	pool->spare_dev = pool->spare.bdev->bd_dev;
	snprintf(pool->spare_name, sizeof(pool->spare_name), "%pg",
		 pool->spare.bdev);

	pool->io = dm_io_client_create();
	if (IS_ERR(pool->io)) {
		r = PTR_ERR(pool->io);
		pool->io = NULL;
		return r;
	}
	pool->wq = alloc_ordered_workqueue("dm-remap-md/%u", WQ_MEM_RECLAIM,
					   pool->id);
	if (!pool->wq)
		return -ENOMEM;
	pool->err_wq = alloc_workqueue("dm-remap-err/%u",
				       WQ_MEM_RECLAIM | WQ_UNBOUND, 0, pool->id);
	if (!pool->err_wq)
		return -ENOMEM;
	return 0;
}

static int pool_publish(struct dmr_pool *pool)
{
	int r;

	r = kobject_add(&pool->kobj, pools_kobj, "%u", pool->id);
	if (r)
		return r;
	r = sysfs_create_link(&pool->kobj, &pool->spare.bdev->bd_device.kobj,
			      "spare");
	if (r) {
		kobject_del(&pool->kobj);
		return r;
	}
	pool->devices_kobj = kobject_create_and_add("devices", &pool->kobj);
	if (!pool->devices_kobj) {
		sysfs_remove_link(&pool->kobj, "spare");
		kobject_del(&pool->kobj);
		return -ENOMEM;
	}
	mutex_lock(&registry_lock);
	pools[pool->id] = pool;
	mutex_unlock(&registry_lock);
	__module_get(THIS_MODULE);
	return 0;
}

int dmr_pool_resume(unsigned int id, const char *path)
{
	struct dmr_pool *pool;
	dev_t dev;
	int r;

	if (mutex_lock_killable(&ops_lock))
		return -EINTR;
	mutex_lock(&registry_lock);
	r = pools[id] ? -EBUSY : 0;
	mutex_unlock(&registry_lock);
	if (r) {
		DMERR_LIMIT("resume_spare: slot %u is busy (free_spare it first)", id);
		goto out;
	}
	r = lookup_spare("resume_spare", path, &dev);
	if (r)
		goto out;

	pool = pool_alloc(id);
	if (!pool) {
		r = -ENOMEM;
		goto out;
	}
	r = pool_open(pool, path);
	if (!r)
		r = dmr_md_load(pool);
	if (!r) {
		/* The first commit heals damaged copies before anything else. */
		r = dmr_md_sync(pool);
		if (r)
			DMERR_LIMIT("resume_spare: %s: cannot write metadata (%d)",
				    pool->spare_name, r);
	}
	if (!r)
		pool->low_water = max_t(u64, 1, pool->sb.geo.nr_blocks / 100);
	if (!r)
		r = dmr_scan_init(pool);
	if (!r)
		r = pool_publish(pool);
	if (r) {
		pool_destroy(pool, false);
		goto out;
	}
	DMINFO("pool %u: resumed %s (%llu blocks of %u bytes, %llu used, seq %llu)",
	       id, pool->spare_name, (unsigned long long)pool->sb.geo.nr_blocks,
	       pool->sb.geo.block_size,
	       (unsigned long long)(pool->sb.geo.nr_blocks - pool->nr_free),
	       (unsigned long long)pool->sb.seq);
out:
	mutex_unlock(&ops_lock);
	return r;
}

int dmr_pool_free(unsigned int id)
{
	struct dmr_pool *pool;
	int r = 0;

	if (mutex_lock_killable(&ops_lock))
		return -EINTR;
	mutex_lock(&registry_lock);
	pool = pools[id];
	if (!pool) {
		r = -ENOENT;
		DMERR_LIMIT("free_spare: no pool in slot %u", id);
	} else if (pool->nr_attached) {
		r = -EBUSY;
		DMERR_LIMIT("free_spare: pool %u has %u attached devices", id,
			    pool->nr_attached);
	} else {
		pools[id] = NULL;	/* no new attach from here on */
	}
	mutex_unlock(&registry_lock);
	if (r)
		goto out;

	r = dmr_md_sync(pool);
	if (r)
		DMERR_LIMIT("free_spare: pool %u: last commit failed (%d); released anyway",
			    id, r);
	pool_destroy(pool, true);
	module_put(THIS_MODULE);
	DMINFO("pool %u: freed", id);
	/* Released either way; an error says the last changes were lost. */
	r = r ? -EIO : 0;
out:
	mutex_unlock(&ops_lock);
	return r;
}

int dmr_pool_format(const char *path, u32 block_size, bool force)
{
	struct dm_io_client *io;
	struct rm_bdev b;
	dev_t dev;
	int r;

	if (mutex_lock_killable(&ops_lock))
		return -EINTR;
	r = lookup_spare("format_spare", path, &dev);
	if (r)
		goto out;
	r = spare_open("format_spare", path, &format_holder, &b);
	if (r)
		goto out;
	io = dm_io_client_create();
	if (IS_ERR(io)) {
		r = PTR_ERR(io);
	} else {
		r = dmr_md_format(io, b.bdev, block_size, force);
		dm_io_client_destroy(io);
	}
	rm_bdev_close(&b, &format_holder);
out:
	mutex_unlock(&ops_lock);
	return r;
}

/* scan_start / scan_stop of pool id; under ops_lock, so not during free. */
int dmr_pool_scan_control(unsigned int id, bool start)
{
	struct dmr_pool *pool;
	int r;

	if (mutex_lock_killable(&ops_lock))
		return -EINTR;
	mutex_lock(&registry_lock);
	pool = pools[id];
	mutex_unlock(&registry_lock);
	if (pool) {
		r = dmr_scan_control(pool, start);
	} else {
		DMERR_LIMIT("scan_%s: no pool in slot %u",
			    start ? "start" : "stop", id);
		r = -ENOENT;
	}
	mutex_unlock(&ops_lock);
	return r;
}

/* ---- References ---------------------------------------------------------- */

struct dmr_pool *dmr_pool_get(unsigned int id)
{
	struct dmr_pool *pool;

	if (id >= DMR_MAX_POOLS)
		return NULL;
	mutex_lock(&registry_lock);
	pool = pools[id];
	if (pool)
		kobject_get(&pool->kobj);
	mutex_unlock(&registry_lock);
	return pool;
}

void dmr_pool_put(struct dmr_pool *pool)
{
	kobject_put(&pool->kobj);
}

/* ---- Attach (remap target) ----------------------------------------------- */

struct dmr_pool *dmr_pool_attach(unsigned int id)
{
	struct dmr_pool *pool = NULL;

	if (id >= DMR_MAX_POOLS)
		return NULL;
	mutex_lock(&registry_lock);
	if (pools[id]) {
		pool = pools[id];
		pool->nr_attached++;
		kobject_get(&pool->kobj);
	}
	mutex_unlock(&registry_lock);
	return pool;
}

void dmr_pool_detach(struct dmr_pool *pool)
{
	mutex_lock(&registry_lock);
	pool->nr_attached--;
	mutex_unlock(&registry_lock);
	kobject_put(&pool->kobj);
}

/*
 * Free every entry of dev_id (its remaps and pending blocks).  The blocks
 * go to limbo (see struct dmr_pool), not back to the allocator: that waits
 * for the commit.  md_lock held.
 */
static void __forget_dev_blocks(struct dmr_pool *pool, u32 dev_id)
{
	u64 i;

	lockdep_assert_held(&pool->md_lock);
	for (i = 0; i < pool->sb.geo.nr_blocks; i++) {
		struct rm_entry *e = &pool->entries[i];

		dmr_entries_resched(i);
		if ((e->state != RM_ENTRY_MAPPED && e->state != RM_ENTRY_PENDING) ||
		    e->dev_id != dev_id)
			continue;
		if (e->state == RM_ENTRY_MAPPED)
			pool->nr_mapped--;
		else
			pool->nr_pending--;
		memset(e, 0, sizeof(*e));
		__set_bit(i, pool->limbo);
		pool->nr_limbo++;
		pool->limbo_gen = dmr_md_dirty(pool, rm_entry_logical(i));
	}
}

/* Has dev_id a live remap device?  Caller holds pdev_lock. */
static bool __pdev_live(struct dmr_pool *pool, u32 dev_id)
{
	struct dmr_pdev *pdev;

	lockdep_assert_held(&pool->pdev_lock);
	list_for_each_entry(pdev, &pool->pdevs, list)
		if (pdev->dev_id == dev_id)
			return true;
	return false;
}

/* Number of entries (remaps and pending blocks) of dev_id.  md_lock held. */
static u64 __dev_blocks(struct dmr_pool *pool, u32 dev_id)
{
	u64 i, n = 0;

	lockdep_assert_held(&pool->md_lock);
	for (i = 0; i < pool->sb.geo.nr_blocks; i++) {
		dmr_entries_resched(i);
		n += (pool->entries[i].state == RM_ENTRY_MAPPED ||
		      pool->entries[i].state == RM_ENTRY_PENDING) &&
		     pool->entries[i].dev_id == dev_id;
	}
	return n;
}

/* rec[] holds a record's index in a byte. */
static_assert(U8_MAX + 1 >= RM_MAX_DEVS);

/*
 * The remapped and pending blocks of every record into pool->dev_blocks,
 * in one pass over the entries, finding each entry's record by
 * binary search: O(nr_blocks log RM_MAX_DEVS) under md_lock, where a pass
 * per in-use record (__dev_blocks) took as many passes as records.  The
 * mutex may be held for long on a big pool, so the CPU is offered now and
 * then.
 */
static void __count_dev_blocks(struct dmr_pool *pool)
{
	struct dmr_dev_blocks *db = &pool->dev_blocks;
	unsigned int n = 0, i, k, lo, hi;
	u64 b;

	lockdep_assert_held(&pool->md_lock);
	for (i = 0; i < RM_MAX_DEVS; i++) {
		u32 id = pool->devs[i].dev_id;

		db->blocks[i] = 0;
		if (!(pool->devs[i].flags & RM_DEV_F_IN_USE))
			continue;
		for (k = n; k && db->ids[k - 1] > id; k--) {
			db->ids[k] = db->ids[k - 1];
			db->rec[k] = db->rec[k - 1];
		}
		db->ids[k] = id;
		db->rec[k] = i;
		n++;
	}
	for (b = 0; b < pool->sb.geo.nr_blocks; b++) {
		const struct rm_entry *e = &pool->entries[b];

		dmr_entries_resched(b);
		if (e->state != RM_ENTRY_MAPPED && e->state != RM_ENTRY_PENDING)
			continue;
		lo = 0;
		hi = n;
		while (lo < hi) {
			k = lo + (hi - lo) / 2;
			if (db->ids[k] < e->dev_id)
				lo = k + 1;
			else
				hi = k;
		}
		if (lo < n && db->ids[lo] == e->dev_id)
			db->blocks[db->rec[lo]]++;
	}
}

/*
 * Records a new dev_id may take: free ones, then those worth nothing: no
 * remapped or pending blocks, no label, no table using their dev_id.  Such
 * a record holds only a size, which without remaps checks nothing, and
 * scan progress.  Counts up to want of them and returns how many it found;
 * *first is the one to take (a free one if any).  Caller holds pdev_lock
 * and md_lock.
 */
static unsigned int __free_devs(struct dmr_pool *pool, unsigned int want,
				int *first)
{
	unsigned int i, n = 0;
	bool counted = false;

	*first = -1;
	for (i = 0; i < RM_MAX_DEVS && n < want; i++) {
		if (pool->devs[i].flags & RM_DEV_F_IN_USE)
			continue;
		if (!n++)
			*first = i;
	}
	for (i = 0; i < RM_MAX_DEVS && n < want; i++) {
		if (!(pool->devs[i].flags & RM_DEV_F_IN_USE) ||
		    (pool->names[i].flags & RM_NAME_F_IN_USE) ||
		    __pdev_live(pool, pool->devs[i].dev_id))
			continue;
		/* The pass over the entries only once there is a candidate. */
		if (!counted) {
			__count_dev_blocks(pool);
			counted = true;
		}
		if (!pool->dev_blocks.blocks[i] && !n++)
			*first = i;
	}
	return n;
}

/*
 * Loaded tables of other dev_ids that have no record yet: each takes one
 * when it is resumed.  Caller holds pdev_lock and md_lock.
 */
static unsigned int __record_claims(struct dmr_pool *pool, u32 dev_id)
{
	struct dmr_pdev *pdev;
	unsigned int n = 0;

	list_for_each_entry(pdev, &pool->pdevs, list)
		n += pdev->dev_id != dev_id &&
		     rm_dev_find(pool->devs, pdev->dev_id) < 0;
	return n;
}

/*
 * Is there room for a table of dev_id (record i, -1 if none) to be loaded?
 * Once resumed, loaded tables of dev_ids without a record each take one
 * that is free or worth nothing (__record_claims()), and a dev_id whose
 * record is worth nothing makes it unavailable by being loaded: both must
 * leave enough for those claims.  Caller holds pdev_lock and md_lock.
 */
static bool __room_for(struct dmr_pool *pool, u32 dev_id, int i)
{
	unsigned int want = __record_claims(pool, dev_id) + 1;
	int first;

	if (i >= 0 && (want == 1 || __pdev_live(pool, dev_id) ||
		       (pool->names[i].flags & RM_NAME_F_IN_USE) ||
		       __dev_blocks(pool, dev_id)))
		return true;	/* nothing it takes from the others */
	return __free_devs(pool, want, &first) >= want;
}

/* Whole blocks of dev_id's main device by its identity record (0: none). */
u64 dmr_pool_dev_whole_blocks(struct dmr_pool *pool, u32 dev_id)
{
	u64 size = 0;
	int i;

	mutex_lock(&pool->md_lock);
	i = rm_dev_find(pool->devs, dev_id);
	if (i >= 0)
		size = pool->devs[i].size_sectors;
	mutex_unlock(&pool->md_lock);
	return size >> dmr_pool_block_shift(pool);
}

/*
 * The identity record (size) of the main device behind dev_id.  A dev_id
 * seen before with a smaller size is a different disk (or a shrunk one):
 * its remaps would serve another disk's data, so it is refused, unless
 * DMR_ID_FORCE, which forgets them, and not while DMR_ID_LIVE (a table of
 * dev_id has gone live: its index holds them).  A bigger size is taken as
 * the same disk grown (resize) and keeps the remaps.
 *
 * Without DMR_ID_APPLY this only checks: a table constructor calls it so,
 * and a load that is then cleared changes nothing.  It counts the records
 * that other loaded tables will take when resumed (__room_for()), so that
 * a load that passes does not run out at resume.
 * With DMR_ID_APPLY (preresume) the record is changed in memory and queued
 * for commit, and *ticket says what to wait for before the device goes
 * live (0: nothing).  Either way the result says what the change does
 * (DMR_ID_DROPPED, DMR_ID_NEW_SCAN).  No I/O.  The caller holds pdev_lock,
 * so that no other device takes over (__free_devs()) a record whose table
 * is not yet on pool->pdevs.
 */
int __dmr_pool_identity(struct dmr_pool *pool, u32 dev_id, u64 size,
			unsigned int flags, u64 *ticket, char **error)
{
	bool apply = flags & DMR_ID_APPLY;
	struct rm_dev *d;
	int i, r = 0;
	u64 n;

	lockdep_assert_held(&pool->pdev_lock);	/* keeps __pdev_live() true */
	*ticket = 0;
	mutex_lock(&pool->md_lock);
	i = rm_dev_find(pool->devs, dev_id);
	if (!apply && !__room_for(pool, dev_id, i)) {
		*error = "Pool has no room for another device";
		r = -ENOSPC;
		goto out;
	}
	if (i >= 0 && pool->devs[i].size_sectors == size) {
		/* Unchanged (a failed pool keeps its devices), maybe not durable. */
		if (apply && pool->dev_gen[i] > atomic64_read(&pool->durable_gen))
			*ticket = pool->dev_gen[i];
		goto out;
	}
	if (pool->md_error) {
		*error = "Pool metadata has failed";
		r = -EIO;
		goto out;
	}
	if (i < 0) {
		if (!apply)
			goto out;
		if (!__free_devs(pool, 1, &i)) {
			*error = "Pool has no room for another device";
			r = -ENOSPC;
			goto out;
		}
		d = &pool->devs[i];
		if (d->flags & RM_DEV_F_IN_USE)
			DMINFO("pool %u: record of dev_id %u reused (no blocks, label or table)",
			       pool->id, d->dev_id);
		memset(d, 0, sizeof(*d));
		d->dev_id = dev_id;
		d->flags = RM_DEV_F_IN_USE;
		goto set;
	}
	d = &pool->devs[i];
	/* A grown device (resize) is the same device. */
	n = size < d->size_sectors ? __dev_blocks(pool, dev_id) : 0;
	if (n && !(flags & DMR_ID_FORCE)) {
		DMERR_LIMIT("dev_id %u: was %llu sectors, now %llu; %llu blocks remapped",
			    dev_id, (unsigned long long)d->size_sectors,
			    (unsigned long long)size, (unsigned long long)n);
		*error = "Other device under a dev_id with remaps ('force' drops them)";
		r = -EINVAL;
		goto out;
	}
	if (n && (flags & DMR_ID_LIVE)) {
		*error = "Cannot drop the remaps of a dev_id in use";
		r = -EBUSY;
		goto out;
	}
	/* A smaller device is another one: new label, new scan. */
	r = (n ? DMR_ID_DROPPED : 0) | (size < d->size_sectors ? DMR_ID_NEW_SCAN : 0);
	if (!apply)
		goto out;
	if (n && !(flags & DMR_ID_CAN_DROP)) {
		r = -EAGAIN;	/* the caller's index must be ready first */
		goto out;
	}
	if (n) {
		DMWARN("dev_id %u: forced: dropping %llu remapped blocks of the old device",
		       dev_id, (unsigned long long)n);
		__forget_dev_blocks(pool, dev_id);
	}
	if (size < d->size_sectors) {
		d->scan_pos = 0;
		d->scan_passes = 0;
		d->last_pass_time = 0;
		if (pool->names[i].flags & RM_NAME_F_IN_USE) {
			memset(&pool->names[i], 0, sizeof(pool->names[i]));
			dmr_md_dirty(pool, rm_name_logical(i));
		}
	}
set:
	d->size_sectors = size;
	*ticket = dmr_md_dirty(pool, 0);
	pool->dev_gen[i] = *ticket;
out:
	mutex_unlock(&pool->md_lock);
	if (*ticket)
		dmr_md_kick(pool);
	return r;
}

/*
 * Record the label of dev_id (its dm name and a locator of its main
 * device, for userland to re-create it after a reboot) and wait until it
 * is durable.  Both strings must satisfy rm_label_valid().
 */
int dmr_pool_set_label(struct dmr_pool *pool, u32 dev_id, const char *name,
		       const char *locator)
{
	struct rm_name n = { .dev_id = dev_id, .flags = RM_NAME_F_IN_USE };
	u64 ticket = 0;
	int i, r = 0;

	/* "-" is what list_devices shows for "no label". */
	if (strscpy(n.name, name, sizeof(n.name)) < 0 ||
	    strscpy(n.locator, locator, sizeof(n.locator)) < 0 ||
	    rm_name_check(&n) || !strcmp(name, "-") || !strcmp(locator, "-")) {
		DMERR_LIMIT("set_label: want <name> (<%u chars) <locator> (<%u), printable ASCII",
			    RM_NAME_LEN, RM_LOCATOR_LEN);
		return -EINVAL;
	}
	mutex_lock(&pool->md_lock);
	i = rm_dev_find(pool->devs, dev_id);
	if (pool->md_error) {
		r = -EIO;
	} else if (i < 0) {
		r = -ENOENT;	/* a table bound after its preresume failed */
	} else if (memcmp(&pool->names[i], &n, sizeof(n))) {
		pool->names[i] = n;
		ticket = dmr_md_dirty(pool, rm_name_logical(i));
	} else {
		/*
		 * Unchanged, but the change that set it may not be durable
		 * yet (a set_label killed while it waited, or one racing
		 * this one): wait for every change made so far.
		 */
		ticket = pool->change_gen;
	}
	mutex_unlock(&pool->md_lock);
	if (r == -EIO)
		DMERR_LIMIT("set_label: pool %u: its metadata cannot be written",
			    pool->id);
	else if (r)
		DMERR_LIMIT("set_label: pool %u has no record of dev_id %u",
			    pool->id, dev_id);
	if (!ticket)
		return r;
	dmr_md_kick(pool);
	return dmr_md_wait_killable(pool, ticket);
}

/* ---- Listing -------------------------------------------------------------------- */

/*
 * One record per active pool: "<id> <spare> <used>/<total> <state> <scanner>",
 * newline separated for the list message (table = false) or space
 * separated for the status line.  Returns the length emitted.
 */
unsigned int dmr_pool_list(char *result, unsigned int maxlen, bool table)
{
	unsigned int i, sz = 0, n = 0;

	mutex_lock(&registry_lock);
	if (table) {
		for (i = 0; i < DMR_MAX_POOLS; i++)
			n += !!pools[i];
		DMEMIT("%u", n);
	}
	for (i = 0; i < DMR_MAX_POOLS; i++) {
		struct dmr_pool *pool = pools[i];
		u64 used, total;

		if (!pool)
			continue;
		mutex_lock(&pool->md_lock);
		total = pool->sb.geo.nr_blocks;
		used = total - pool->nr_free;
		mutex_unlock(&pool->md_lock);
		if (table)
			DMEMIT(" %u %u:%u %llu/%llu %s %s", i,
			       MAJOR(pool->spare_dev), MINOR(pool->spare_dev),
			       used, total, dmr_pool_state_name(pool),
			       dmr_scan_state_name(pool));
		else
			DMEMIT("%u %s %u:%u %llu/%llu %s scanner=%s\n", i,
			       pool->spare_name, MAJOR(pool->spare_dev),
			       MINOR(pool->spare_dev), used, total,
			       dmr_pool_state_name(pool),
			       dmr_scan_state_name(pool));
	}
	mutex_unlock(&registry_lock);
	return sz;
}

/*
 * The device identity records of pool id, one line each:
 * "<dev_id> sectors=<n> blocks=<remapped+pending> name=<n> locator=<l>"
 * (name and locator "-" when not set).  -ENOENT without pool.
 */
int dmr_pool_list_devices(unsigned int id, char *result, unsigned int maxlen)
{
	struct dmr_pool *pool;
	unsigned int sz = 0, i;

	pool = dmr_pool_get(id);
	if (!pool) {
		DMERR_LIMIT("list_devices: no pool in slot %u", id);
		return -ENOENT;
	}
	mutex_lock(&pool->md_lock);
	__count_dev_blocks(pool);
	for (i = 0; i < RM_MAX_DEVS; i++) {
		struct rm_dev *d = &pool->devs[i];
		struct rm_name *n = &pool->names[i];
		bool named = n->flags & RM_NAME_F_IN_USE;

		if (!(d->flags & RM_DEV_F_IN_USE))
			continue;
		DMEMIT("%u sectors=%llu blocks=%llu name=%s locator=%s\n",
		       d->dev_id, (unsigned long long)d->size_sectors,
		       (unsigned long long)pool->dev_blocks.blocks[i],
		       named ? n->name : "-", named ? n->locator : "-");
	}
	mutex_unlock(&pool->md_lock);
	dmr_pool_put(pool);
	return 0;
}

/* ---- Module init --------------------------------------------------------------- */

int dmr_pool_registry_init(void)
{
	pools_kobj = kobject_create_and_add("pools", &THIS_MODULE->mkobj.kobj);
	return pools_kobj ? 0 : -ENOMEM;
}

void dmr_pool_registry_exit(void)
{
	kobject_put(pools_kobj);
}
