// SPDX-License-Identifier: GPL-2.0-only
/*
 * pdev.c - per-device state of a dev_id attached to a pool: the remap index
 * (built from the pool's entries, read lock-free by the remap target), the
 * spare block allocator, and pools/<id>/devices/<dev_id>/ in sysfs.
 */
#include <linux/kmemleak.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "pool.h"

#define DM_MSG_PREFIX "remap"

/* Region filter: at least this many bits (8 KiB), more as the index grows. */
#define PDEV_REGION_BITS	(64 * 1024)

unsigned int dmr_pool_block_shift(struct dmr_pool *pool)
{
	return rm_block_sector_shift(pool->sb.geo.block_size);
}

sector_t dmr_pool_spare_sector(struct dmr_pool *pool, u32 spare)
{
	return pool->sb.geo.data_start +
	       ((sector_t)spare << dmr_pool_block_shift(pool));
}

/* ---- Spare allocation ------------------------------------------------------ */

/* Bits of pool->taken searched between two offers of the CPU: 16 KiB. */
#define PDEV_FIND_CHUNK		(128 * 1024)

/* Handed out, not yet recorded (pool->taken).  md_lock held. */
static bool __reserved(struct dmr_pool *pool, u32 spare)
{
	lockdep_assert_held(&pool->md_lock);
	return test_bit(spare, pool->taken) && !test_bit(spare, pool->limbo) &&
	       pool->entries[spare].state == RM_ENTRY_FREE;
}

/* The first clear bit of map in [start, end), or end. */
static u64 find_clear(const unsigned long *map, u64 start, u64 end)
{
	u64 s, e, i;

	for (s = start; s < end; s = e) {
		e = min_t(u64, s + PDEV_FIND_CHUNK, end);
		i = find_next_zero_bit(map, e, s);
		if (i < e)
			return i;
		cond_resched();
	}
	return end;
}

/*
 * Hand out a free spare block, the first one from the allocation cursor
 * on (wrapping around).  It stays FREE in entries[] (so no commit persists
 * it) and is marked reserved until dmr_pool_record(), dmr_pool_retire() or
 * dmr_pool_unreserve().  -ENOSPC when the pool is exhausted.  Near
 * exhaustion this is a search of the taken bitmap, a word at a time.
 */
int dmr_pool_reserve(struct dmr_pool *pool, u32 *spare)
{
	u64 n = pool->sb.geo.nr_blocks, i;
	bool low = false;
	int r = -ENOSPC;

	mutex_lock(&pool->md_lock);
	if (pool->md_error) {
		r = -EIO;
		goto out;
	}
	while (pool->nr_free) {
		i = find_clear(pool->taken, pool->alloc_cursor, n);
		if (i == n && pool->alloc_cursor) {
			i = find_clear(pool->taken, 0, pool->alloc_cursor);
			if (i == pool->alloc_cursor)
				i = n;
		}
		/* nr_free counts the clear bits. */
		if (WARN_ON_ONCE(i == n))
			break;
		__set_bit(i, pool->taken);
		pool->nr_free--;
		pool->alloc_cursor = i + 1 < n ? i + 1 : 0;
		/*
		 * A clear bit on a block in use would be an accounting bug;
		 * handing the block out would put two main blocks on it.
		 * Keep it taken and look on.
		 */
		if (WARN_ON_ONCE(pool->entries[i].state != RM_ENTRY_FREE))
			continue;
		*spare = i;
		r = 0;
		pool->exhausted = false;
		break;
	}
	/*
	 * Re-armed only above the mark: a block reserved and given back at
	 * it must not raise the event again each time.
	 */
	if (pool->nr_free > pool->low_water) {
		pool->low_signalled = false;
	} else if (pool->nr_free < pool->low_water && !r &&
		   !pool->low_signalled) {
		pool->low_signalled = true;
		low = true;
	}
out:
	mutex_unlock(&pool->md_lock);
	if (low) {
		DMWARN_LIMIT("pool %u: free spare blocks below the low-water mark (%llu)",
			     pool->id, (unsigned long long)pool->low_water);
		dmr_pool_event(pool);
	}
	return r;
}

u64 dmr_pool_free_blocks(struct dmr_pool *pool)
{
	u64 n;

	mutex_lock(&pool->md_lock);
	n = pool->nr_free;
	mutex_unlock(&pool->md_lock);
	return n;
}

/*
 * A repair found the pool empty: say so once and raise a dm event.  Not if
 * blocks were freed since it looked (__dmr_pool_blocks_freed() ran).
 */
void dmr_pool_exhausted(struct dmr_pool *pool)
{
	bool first;

	mutex_lock(&pool->md_lock);
	first = !pool->exhausted && !pool->nr_free;
	if (!pool->nr_free)
		pool->exhausted = true;
	mutex_unlock(&pool->md_lock);
	if (first) {
		DMERR_LIMIT("pool %u is out of spare blocks: errors pass through",
			    pool->id);
		dmr_pool_event(pool);
	}
}

/*
 * A spare block failed: never use it again.  It is reserved (a write of a
 * block being moved to it failed) or holds a MAPPED or PENDING entry (the
 * block is being relocated: see dmr_pool_relocate()).  It stays taken.
 * Returns the ticket of the change.
 */
static u64 __pool_retire(struct dmr_pool *pool, u32 spare)
{
	struct rm_entry *e = &pool->entries[spare];

	lockdep_assert_held(&pool->md_lock);
	if (e->state == RM_ENTRY_MAPPED)
		pool->nr_mapped--;
	else if (e->state == RM_ENTRY_PENDING)
		pool->nr_pending--;
	else
		WARN_ON(!__reserved(pool, spare));
	memset(e, 0, sizeof(*e));
	e->state = RM_ENTRY_RETIRED;
	pool->nr_retired++;
	return dmr_md_dirty(pool, rm_entry_logical(spare));
}

u64 dmr_pool_retire(struct dmr_pool *pool, u32 spare)
{
	u64 ticket;

	mutex_lock(&pool->md_lock);
	ticket = __pool_retire(pool, spare);
	mutex_unlock(&pool->md_lock);
	return ticket;
}

/* A pending block's spare block now holds its data.  Returns the ticket. */
u64 dmr_pool_heal(struct dmr_pool *pool, u32 spare)
{
	u64 ticket;

	mutex_lock(&pool->md_lock);
	WARN_ON(pool->entries[spare].state != RM_ENTRY_PENDING);
	pool->entries[spare].state = RM_ENTRY_MAPPED;
	pool->nr_pending--;
	pool->nr_mapped++;
	ticket = dmr_md_dirty(pool, rm_entry_logical(spare));
	mutex_unlock(&pool->md_lock);
	return ticket;
}

/*
 * nr_free went up: the pool is no longer exhausted, and, once above the
 * low-water mark, the event may fire again when it drops below.  Caller
 * holds md_lock.
 */
void __dmr_pool_blocks_freed(struct dmr_pool *pool)
{
	lockdep_assert_held(&pool->md_lock);
	if (pool->nr_free)
		pool->exhausted = false;
	if (pool->nr_free > pool->low_water)
		pool->low_signalled = false;
}

void dmr_pool_unreserve(struct dmr_pool *pool, u32 spare)
{
	mutex_lock(&pool->md_lock);
	if (!WARN_ON(!__reserved(pool, spare))) {
		__clear_bit(spare, pool->taken);
		pool->nr_free++;
		__dmr_pool_blocks_freed(pool);
	}
	mutex_unlock(&pool->md_lock);
}

/* Record a reserved spare block as MAPPED or PENDING for (dev_id, block). */
static u64 __pool_record(struct dmr_pool *pool, u32 spare, u32 dev_id,
			 u64 block, unsigned int state)
{
	struct rm_entry *e = &pool->entries[spare];

	lockdep_assert_held(&pool->md_lock);
	WARN_ON(!__reserved(pool, spare));
	e->main_block = block;
	e->dev_id = dev_id;
	e->state = state;
	e->flags = 0;
	if (state == RM_ENTRY_MAPPED)
		pool->nr_mapped++;
	else
		pool->nr_pending++;
	return dmr_md_dirty(pool, rm_entry_logical(spare));
}

/*
 * Record a reserved spare block as MAPPED or PENDING for (dev_id, block).
 * Returns the ticket to wait for (dmr_md_wait) before relying on it.
 */
u64 dmr_pool_record(struct dmr_pool *pool, u32 spare, u32 dev_id, u64 block,
		    unsigned int state)
{
	u64 ticket;

	mutex_lock(&pool->md_lock);
	ticket = __pool_record(pool, spare, dev_id, block, state);
	mutex_unlock(&pool->md_lock);
	return ticket;
}

/*
 * (dev_id, block) moves off spare block old, which failed, to the reserved
 * spare block spare, in state: old retired and spare recorded under one
 * hold of md_lock, so that a commit takes both changes or neither (a crash
 * must leave one mapping of the block, not none or two).  Returns the
 * ticket.
 */
u64 dmr_pool_relocate(struct dmr_pool *pool, u32 old, u32 spare, u32 dev_id,
		      u64 block, unsigned int state)
{
	u64 ticket;

	mutex_lock(&pool->md_lock);
	ticket = max(__pool_retire(pool, old),
		     __pool_record(pool, spare, dev_id, block, state));
	mutex_unlock(&pool->md_lock);
	return ticket;
}

/*
 * The commit of a change to (dev_id, block) failed, so the pool's metadata
 * is read-only for good: put entries[] back as the device's index is put
 * back, so that an index built from it again (the device removed and
 * created anew) sees what the running device saw, not a change the disk
 * never got.  The change put the block on spare; before it, the block was
 * on old in old_state (RM_ENTRY_*), or on no spare block (RM_ENTRY_FREE).
 * A spare block the change took is freed, in memory only.  Spare blocks
 * the batch retired (a write to them failed) stay retired in memory,
 * though the disk still has them free: they did fail, and the failed
 * pool is read-only until free_spare, whose resume reads the disk again.
 */
void dmr_pool_undo(struct dmr_pool *pool, u32 spare, u32 old,
		   unsigned int old_state, u32 dev_id, u64 block)
{
	struct rm_entry *e = &pool->entries[spare];

	mutex_lock(&pool->md_lock);
	WARN_ON(!pool->md_error);
	if (e->state == RM_ENTRY_MAPPED)
		pool->nr_mapped--;
	else if (e->state == RM_ENTRY_PENDING)
		pool->nr_pending--;
	if (old_state && old == spare) {
		e->state = old_state;		/* a heal */
	} else {
		memset(e, 0, sizeof(*e));
		__clear_bit(spare, pool->taken);
		pool->nr_free++;
		__dmr_pool_blocks_freed(pool);
	}
	if (old_state && old != spare) {
		/* A relocation: old was retired by it. */
		e = &pool->entries[old];
		if (!WARN_ON(e->state != RM_ENTRY_RETIRED))
			pool->nr_retired--;
		*e = (struct rm_entry){ .main_block = block, .dev_id = dev_id,
					.state = old_state };
	}
	if (old_state == RM_ENTRY_MAPPED)
		pool->nr_mapped++;
	else if (old_state == RM_ENTRY_PENDING)
		pool->nr_pending++;
	mutex_unlock(&pool->md_lock);
}

/* ---- The index -------------------------------------------------------------- */

/*
 * Index memory, zeroed; *bytes is what it takes.  Not kvzalloc(): above
 * 8 KiB kmalloc hands out a power of two, so a table just past one would
 * take up to twice the 32 bytes per remap the index is sized for
 * (Documentation/design-index.md).  Up to a page it comes from the slab;
 * above, in whole pages: from the direct map while a run of free pages is
 * there (few TLB entries for the bitmap, which every bio reads at a random
 * place), else from vmalloc.
 */
static void *ix_mem_alloc(size_t size, size_t *bytes)
{
	void *p;

	if (size <= PAGE_SIZE) {
		*bytes = kmalloc_size_roundup(size);
		return kzalloc(size, GFP_NOIO);
	}
	*bytes = PAGE_ALIGN(size);
	/*
	 * KMALLOC_MAX_SIZE is the largest block the buddy allocator gives
	 * (order MAX_ORDER - 1 on 6.1, MAX_PAGE_ORDER later): bigger ones
	 * could only come from vmalloc.
	 */
	if (size <= KMALLOC_MAX_SIZE) {
		p = alloc_pages_exact(size, GFP_NOIO | __GFP_ZERO |
				      __GFP_NORETRY | __GFP_NOWARN);
		if (p) {
			/*
			 * kmemleak does not see page allocations: tell it, so
			 * that it scans this block for the pointer to the
			 * bitmap (slab or vmalloc memory it tracks).
			 */
			kmemleak_alloc(p, size, 1, GFP_NOIO);
			return p;
		}
	}
	return __vmalloc(size, GFP_NOIO | __GFP_ZERO);
}

/* Free what ix_mem_alloc() returned with this *bytes. */
static void ix_mem_free(void *p, size_t bytes)
{
	if (bytes <= PAGE_SIZE || !p) {
		kfree(p);
	} else if (is_vmalloc_addr(p)) {
		vfree(p);
	} else {
		kmemleak_free(p);
		free_pages_exact(p, bytes);
	}
}

/* Free an index no reader can see (never published, or after a grace period). */
static void ix_free(struct dmr_ix *x)
{
	if (x) {
		ix_mem_free(x->filter, x->filter_bytes);
		ix_mem_free(x, x->bytes);
	}
}

static void ix_free_rcu(struct rcu_head *rcu)
{
	ix_free(container_of(rcu, struct dmr_ix, rcu));
}

/*
 * An index for nr_entries whose region filter covers nr_main_blocks: at
 * least PDEV_REGION_BITS regions, finer as the table grows (one byte of
 * bitmap per slot, see rm_index_filter_bits_for()).
 */
static struct dmr_ix *ix_alloc(u64 nr_entries, u64 nr_main_blocks)
{
	u32 cap = rm_index_cap_for(min_t(u64, nr_entries, RM_INDEX_MAX_ENTRIES));
	unsigned int shift;
	size_t slots, bytes;
	struct dmr_ix *x;
	u32 words, bits;

	if (!cap)
		return NULL;
	bits = rm_index_filter_bits_for(cap, PDEV_REGION_BITS);
	shift = rm_index_region_shift_for(nr_main_blocks, bits);
	words = rm_index_region_words_for(nr_main_blocks, shift);
	slots = rm_index_bytes(cap);
	x = ix_mem_alloc(sizeof(*x) + slots, &bytes);
	if (!x)
		return NULL;
	x->bytes = bytes;
	/*
	 * The bitmap is read by every bio at a random place: an allocation
	 * of its own, so that it can come from the direct map even when the
	 * slots are too many to.
	 */
	x->filter = ix_mem_alloc(array_size(words, sizeof(u64)), &x->filter_bytes);
	if (!x->filter ||
	    rm_index_init(&x->ix, (struct rm_index_slot *)(x + 1), cap,
			  x->filter, words, shift)) {
		ix_free(x);
		return NULL;
	}
	return x;
}

/* Blocks the region filter tells apart (later ones share its last bit). */
static u64 ix_coverage(const struct rm_index *ix)
{
	u64 regions = (u64)ix->region_words * 64;

	if (ix->region_shift >= 63 || regions > (U64_MAX >> ix->region_shift))
		return U64_MAX;
	return regions << ix->region_shift;
}

/*
 * Replace the index by a copy sized for nr_entries, covering at least
 * nr_main_blocks.  Caller holds ix_lock; readers keep using the old copy
 * until a grace period has passed.
 */
static int ix_rebuild(struct dmr_pdev *pdev, u64 nr_entries, u64 nr_main_blocks)
{
	struct dmr_ix *old = rcu_dereference_protected(pdev->ix,
				lockdep_is_held(&pdev->ix_lock));
	struct dmr_ix *x;
	int r;

	x = ix_alloc(nr_entries, max(nr_main_blocks, ix_coverage(&old->ix)));
	if (!x)
		return -ENOMEM;
	r = rm_index_copy(&x->ix, &old->ix);
	if (r) {
		ix_free(x);
		return -EINVAL;
	}
	rcu_assign_pointer(pdev->ix, x);
	call_rcu(&old->rcu, ix_free_rcu);
	return 0;
}

/* Insert or update block -> (spare, state).  Caller holds ix_lock. */
int dmr_pdev_ix_set(struct dmr_pdev *pdev, u64 block, u32 spare,
		    unsigned int state)
{
	struct dmr_ix *x = rcu_dereference_protected(pdev->ix,
				lockdep_is_held(&pdev->ix_lock));
	int r;

	if (block >= ix_coverage(&x->ix)) {
		r = ix_rebuild(pdev, x->ix.live + 1, block + 1);
		if (r)
			return r;
		x = rcu_dereference_protected(pdev->ix, 1);
	}
	r = rm_index_set(&x->ix, block, spare, state);
	if (r == -RM_E_FULL) {
		r = ix_rebuild(pdev, x->ix.live + 1, 0);
		if (r)
			return r;
		x = rcu_dereference_protected(pdev->ix, 1);
		r = rm_index_set(&x->ix, block, spare, state);
	}
	return r ? -EINVAL : 0;
}

int dmr_pdev_ix_delete(struct dmr_pdev *pdev, u64 block)
{
	struct dmr_ix *x = rcu_dereference_protected(pdev->ix,
				lockdep_is_held(&pdev->ix_lock));

	if (rm_index_delete(&x->ix, block))
		return -ENOENT;
	/* Keep the table within 32 bytes per entry; a failed shrink is harmless. */
	if (rm_index_wants_shrink(&x->ix))
		ix_rebuild(pdev, x->ix.live, 0);
	return 0;
}

/* Build the index of dev_id from the pool's entries. */
static int pdev_build_index(struct dmr_pdev *pdev, u64 main_sectors)
{
	struct dmr_pool *pool = pdev->pool;
	u64 blocks = main_sectors >> dmr_pool_block_shift(pool);
	u64 i, n = 0, top = 0;
	struct dmr_ix *x;
	int r = 0;

	mutex_lock(&pool->md_lock);
	for (i = 0; i < pool->sb.geo.nr_blocks; i++) {
		struct rm_entry *e = &pool->entries[i];

		dmr_entries_resched(i);
		if ((e->state == RM_ENTRY_MAPPED || e->state == RM_ENTRY_PENDING) &&
		    e->dev_id == pdev->dev_id) {
			n++;
			top = max(top, e->main_block + 1);
		}
	}
	x = ix_alloc(n, max(blocks, top));
	if (!x) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < pool->sb.geo.nr_blocks && !r; i++) {
		struct rm_entry *e = &pool->entries[i];

		dmr_entries_resched(i);
		if (e->dev_id != pdev->dev_id)
			continue;
		if (e->state == RM_ENTRY_MAPPED) {
			r = rm_index_set(&x->ix, e->main_block, i, RM_IX_MAPPED);
			pdev->nr_mapped++;
		} else if (e->state == RM_ENTRY_PENDING) {
			r = rm_index_set(&x->ix, e->main_block, i, RM_IX_PENDING);
			pdev->nr_pending++;
		}
	}
	if (r) {
		ix_free(x);
		r = -EINVAL;
		goto out;
	}
	RCU_INIT_POINTER(pdev->ix, x);
out:
	mutex_unlock(&pool->md_lock);
	return r;
}

/* ---- sysfs ------------------------------------------------------------------------ */

struct pdev_attr {
	struct attribute attr;
	ssize_t (*show)(struct dmr_pdev *pdev, char *buf);
	size_t u64_offset;		/* without show: a u64 field's offset */
};

static ssize_t pdev_show_dev(struct dmr_pdev *pdev, char *buf)
{
	dev_t d = disk_devt(dm_disk(pdev->md));

	return sysfs_emit(buf, "%u:%u\n", MAJOR(d), MINOR(d));
}

static ssize_t pdev_show_main_dev(struct dmr_pdev *pdev, char *buf)
{
	dev_t dev = READ_ONCE(pdev->main_dev);

	return sysfs_emit(buf, "%u:%u\n", MAJOR(dev), MINOR(dev));
}

/* Counters written under ix_lock, read here without it. */
static ssize_t pdev_show_u64(struct dmr_pdev *pdev, char *buf, u64 *v)
{
	return sysfs_emit(buf, "%llu\n", (unsigned long long)READ_ONCE(*v));
}

static ssize_t pdev_show_remaps(struct dmr_pdev *pdev, char *buf)
{
	return pdev_show_u64(pdev, buf, &pdev->nr_mapped);
}

/* Kernel memory of the index now published: slots and bitmap. */
static ssize_t pdev_show_index_bytes(struct dmr_pdev *pdev, char *buf)
{
	struct dmr_ix *x;
	size_t bytes = 0;

	rcu_read_lock();
	x = rcu_dereference(pdev->ix);
	if (x)
		bytes = x->bytes + x->filter_bytes;
	rcu_read_unlock();
	return sysfs_emit(buf, "%zu\n", bytes);
}

static ssize_t pdev_show_pending(struct dmr_pdev *pdev, char *buf)
{
	return pdev_show_u64(pdev, buf, &pdev->nr_pending);
}

static ssize_t pdev_show_atomic(char *buf, atomic64_t *v)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(v));
}

static ssize_t pdev_show_read_errors(struct dmr_pdev *pdev, char *buf)
{
	return pdev_show_atomic(buf, &pdev->read_errors);
}

static ssize_t pdev_show_write_errors(struct dmr_pdev *pdev, char *buf)
{
	return pdev_show_atomic(buf, &pdev->write_errors);
}

static u64 pdev_remapped_sum(struct dmr_pdev *pdev)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(per_cpu_ptr(pdev->writes, cpu)->remapped);
	return sum;
}

/* Bios sent to the spare since the last clear_stats. */
u64 dmr_pdev_remapped_ios(struct dmr_pdev *pdev)
{
	u64 sum = pdev_remapped_sum(pdev);
	u64 base = atomic64_read(&pdev->remapped_base);

	return sum > base ? sum - base : 0;
}

void dmr_pdev_clear_stats(struct dmr_pdev *pdev)
{
	atomic64_set(&pdev->read_errors, 0);
	atomic64_set(&pdev->write_errors, 0);
	atomic64_set(&pdev->remapped_base, pdev_remapped_sum(pdev));
}

/* Bios mapped so far (wraps; only differences mean something). */
unsigned long dmr_pdev_ios(struct dmr_pdev *pdev)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(per_cpu_ptr(pdev->writes, cpu)->ios);
	return sum;
}

/* Bios mapped so far by all the pool's devices (wraps, as above). */
unsigned long dmr_pool_ios(struct dmr_pool *pool)
{
	struct dmr_pdev *pdev;
	unsigned long sum = 0;

	mutex_lock(&pool->pdev_lock);
	list_for_each_entry(pdev, &pool->pdevs, list)
		sum += dmr_pdev_ios(pdev);
	mutex_unlock(&pool->pdev_lock);
	return sum;
}

static ssize_t pdev_show_remapped_ios(struct dmr_pdev *pdev, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  (unsigned long long)dmr_pdev_remapped_ios(pdev));
}

/* Scanner progress and findings (scanner.c). */

static ssize_t pdev_show_scan_last_pass(struct dmr_pdev *pdev, char *buf)
{
	return sysfs_emit(buf, "%lld\n", (long long)READ_ONCE(pdev->scan_last_pass));
}

static ssize_t pdev_show_scan_percent(struct dmr_pdev *pdev, char *buf)
{
	return sysfs_emit(buf, "%u\n", dmr_scan_percent(pdev));
}

static ssize_t pdev_show_health(struct dmr_pdev *pdev, char *buf)
{
	return sysfs_emit(buf, "%u\n", dmr_scan_health(pdev));
}

#define PDEV_ATTR(_name)						\
static struct pdev_attr pdev_attr_##_name = {				\
	.attr = { .name = #_name, .mode = 0444 },			\
	.show = pdev_show_##_name,					\
}

/* A u64 written under a lock of its own, read here without it. */
#define PDEV_U64_ATTR(_name)						\
static struct pdev_attr pdev_attr_##_name = {				\
	.attr = { .name = #_name, .mode = 0444 },			\
	.u64_offset = offsetof(struct dmr_pdev, _name),			\
}

PDEV_ATTR(dev);
PDEV_ATTR(main_dev);
PDEV_ATTR(remaps);
PDEV_ATTR(pending);
PDEV_ATTR(index_bytes);
PDEV_ATTR(read_errors);
PDEV_ATTR(write_errors);
PDEV_ATTR(remapped_ios);
PDEV_U64_ATTR(scan_pos);
PDEV_ATTR(scan_percent);
PDEV_U64_ATTR(scan_passes);
PDEV_ATTR(scan_last_pass);
PDEV_U64_ATTR(scanned);
PDEV_U64_ATTR(scan_failed);
PDEV_U64_ATTR(scan_slow);
PDEV_U64_ATTR(scan_retried);
PDEV_U64_ATTR(scan_predictive);
PDEV_ATTR(health);

static struct attribute *pdev_attrs[] = {
	&pdev_attr_dev.attr,
	&pdev_attr_main_dev.attr,
	&pdev_attr_remaps.attr,
	&pdev_attr_pending.attr,
	&pdev_attr_index_bytes.attr,
	&pdev_attr_read_errors.attr,
	&pdev_attr_write_errors.attr,
	&pdev_attr_remapped_ios.attr,
	&pdev_attr_scan_pos.attr,
	&pdev_attr_scan_percent.attr,
	&pdev_attr_scan_passes.attr,
	&pdev_attr_scan_last_pass.attr,
	&pdev_attr_scanned.attr,
	&pdev_attr_scan_failed.attr,
	&pdev_attr_scan_slow.attr,
	&pdev_attr_scan_retried.attr,
	&pdev_attr_scan_predictive.attr,
	&pdev_attr_health.attr,
	NULL,
};
ATTRIBUTE_GROUPS(pdev);

static ssize_t pdev_attr_show(struct kobject *kobj, struct attribute *attr,
			      char *buf)
{
	struct pdev_attr *pa = container_of(attr, struct pdev_attr, attr);
	struct dmr_pdev *pdev = container_of(kobj, struct dmr_pdev, kobj);

	if (!pa->show)
		return pdev_show_u64(pdev, buf,
				     (u64 *)((char *)pdev + pa->u64_offset));
	return pa->show(pdev, buf);
}

static const struct sysfs_ops pdev_sysfs_ops = {
	.show = pdev_attr_show,
};

static void pdev_release(struct kobject *kobj)
{
	struct dmr_pdev *pdev = container_of(kobj, struct dmr_pdev, kobj);

	ix_free(rcu_dereference_protected(pdev->ix, 1));
	free_percpu(pdev->writes);
	vfree(pdev->repair_buf);
	kfree(pdev);
}

static const struct kobj_type pdev_ktype = {
	.release = pdev_release,
	.sysfs_ops = &pdev_sysfs_ops,
	.default_groups = pdev_groups,
};

/* ---- Life cycle ---------------------------------------------------------------------- */

/*
 * pdev_lock sections that allocate memory (the pdev, its sysfs entries)
 * run as a NOIO scope: the repair worker of every device of the pool
 * takes pdev_lock to raise events while failed bios wait on it, so
 * reclaim under pdev_lock must not wait for I/O to any of them.
 */
static unsigned int pdev_lock_noio(struct dmr_pool *pool)
{
	mutex_lock(&pool->pdev_lock);
	return memalloc_noio_save();
}

static void pdev_unlock_noio(struct dmr_pool *pool, unsigned int noio)
{
	memalloc_noio_restore(noio);
	mutex_unlock(&pool->pdev_lock);
}

static struct dmr_pdev *pdev_create(struct dmr_pool *pool, u32 dev_id,
				    struct mapped_device *md, dev_t main_dev,
				    u64 main_sectors, work_func_t repair,
				    char **error)
{
	struct dmr_pdev *pdev = kzalloc(sizeof(*pdev), GFP_KERNEL);
	int r;

	lockdep_assert_held(&pool->pdev_lock);	/* and a NOIO scope */
	if (!pdev) {
		*error = "Cannot allocate device state";
		return ERR_PTR(-ENOMEM);
	}
	kobject_init(&pdev->kobj, &pdev_ktype);
	pdev->pool = pool;
	pdev->dev_id = dev_id;
	pdev->md = md;
	pdev->main_dev = main_dev;
	mutex_init(&pdev->ix_lock);
	spin_lock_init(&pdev->defer_lock);
	bio_list_init(&pdev->deferred);
	spin_lock_init(&pdev->err_lock);
	bio_list_init(&pdev->failed);
	INIT_WORK(&pdev->err_work, repair);
	dmr_scan_pdev_init(pdev);

	pdev->writes = alloc_percpu(struct dmr_wcount);
	/* vmalloc memory: repair.c hands it to dm-io as such. */
	pdev->repair_buf = vmalloc(2 << (dmr_pool_block_shift(pool) + SECTOR_SHIFT));
	if (!pdev->writes || !pdev->repair_buf) {
		*error = "Cannot allocate device state";
		r = -ENOMEM;
		goto bad;
	}
	r = pdev_build_index(pdev, main_sectors);
	if (r) {
		*error = "Cannot build the remap index";
		goto bad;
	}
	r = kobject_add(&pdev->kobj, pool->devices_kobj, "%u", dev_id);
	if (r) {
		*error = "Cannot create the sysfs directory";
		goto bad;
	}
	return pdev;
bad:
	kobject_put(&pdev->kobj);
	return ERR_PTR(r);
}

/*
 * May a target of table use dev_id?  Not if another dm device has it, nor
 * twice in one table, nor in more tables than a dm device has at once
 * (live, inactive, one loading over the inactive: only two loads racing
 * on one device reach the limit).  Returns the free slot of
 * pdev->tables[] or -EBUSY.  Caller holds pdev_lock.
 */
static int __pdev_owner_ok(struct dmr_pdev *pdev, struct dm_table *table,
			   char **error)
{
	int i, slot = -1;

	lockdep_assert_held(&pdev->pool->pdev_lock);
	if (pdev->md != dm_table_get_md(table)) {
		*error = "dev_id is attached to another device";
		return -EBUSY;
	}
	for (i = 0; i < DMR_PDEV_TABLES; i++) {
		if (pdev->tables[i] == table) {
			*error = "dev_id used twice in one table";
			return -EBUSY;
		}
		if (!pdev->tables[i] && slot < 0)
			slot = i;
	}
	if (slot < 0) {
		*error = "dev_id is in three tables already (another load in progress?)";
		return -EBUSY;
	}
	return slot;
}

static struct dmr_pdev *__pdev_find(struct dmr_pool *pool, u32 dev_id)
{
	struct dmr_pdev *pdev;

	lockdep_assert_held(&pool->pdev_lock);
	list_for_each_entry(pdev, &pool->pdevs, list)
		if (pdev->dev_id == dev_id)
			return pdev;
	return NULL;
}

/*
 * The state of dev_id for a target of table, shared with md's other
 * tables.  Who owns dev_id is settled, and the identity record checked
 * for a main device of size sectors (force: see __dmr_pool_identity()),
 * before the pdev is made; it is on pool->pdevs before pdev_lock is
 * dropped.  The record, and main_dev of a pdev that exists, are changed
 * at preresume, not here (dmr_pdev_resume_identity()).
 */
struct dmr_pdev *dmr_pdev_get(struct dmr_pool *pool, u32 dev_id,
			      struct dm_table *table, dev_t main_dev,
			      u64 size, bool force, work_func_t repair,
			      char **error)
{
	struct dmr_pdev *pdev;
	unsigned int flags = force ? DMR_ID_FORCE : 0;
	unsigned int noio;
	int r, slot = 0;
	u64 ticket;

	noio = pdev_lock_noio(pool);
	pdev = __pdev_find(pool, dev_id);
	r = pdev ? __pdev_owner_ok(pdev, table, error) : 0;
	if (r >= 0) {
		slot = r;
		if (pdev && pdev->went_live)
			flags |= DMR_ID_LIVE;
		r = __dmr_pool_identity(pool, dev_id, size, flags, &ticket,
					error);
	}
	if (r < 0) {
		pdev = ERR_PTR(r);
		goto out;
	}
	if (pdev) {
		pdev->users++;
		pdev->tables[slot] = table;
		goto out;
	}
	pdev = pdev_create(pool, dev_id, dm_table_get_md(table), main_dev, size,
			   repair, error);
	if (!IS_ERR(pdev)) {
		pdev->users = 1;
		pdev->tables[0] = table;
		list_add(&pdev->list, &pool->pdevs);
	}
out:
	pdev_unlock_noio(pool, noio);
	return pdev;
}

/*
 * At preresume of a table whose main device is main_dev, of size sectors:
 * bring dev_id's identity record (and main_dev in sysfs) in line with it
 * (checked again: the live table may have remapped blocks since the load)
 * and wait until it is durable.
 * If force drops the old device's remaps, the index loses them in the
 * same step, under ix_lock: no table of this pdev has gone live, so no bio
 * has used the index, and a message to a table left bound by a failed
 * preresume holds ix_lock to change it.
 */
int dmr_pdev_resume_identity(struct dmr_pdev *pdev, dev_t main_dev, u64 size,
			     bool force)
{
	struct dmr_pool *pool = pdev->pool;
	struct dmr_ix *empty = NULL, *old;
	unsigned int flags;
	char *error = "";
	u64 ticket;
	int r;

again:
	flags = DMR_ID_APPLY | (force ? DMR_ID_FORCE : 0) |
		(empty ? DMR_ID_CAN_DROP : 0);
	mutex_lock(&pdev->scan_lock);
	mutex_lock(&pdev->ix_lock);
	mutex_lock(&pool->pdev_lock);
	if (pdev->went_live)
		flags |= DMR_ID_LIVE;
	r = __dmr_pool_identity(pool, pdev->dev_id, size, flags, &ticket, &error);
	if (r >= 0) {
		WRITE_ONCE(pdev->went_live, true);
		WRITE_ONCE(pdev->main_dev, main_dev);
	}
	mutex_unlock(&pool->pdev_lock);
	if (r > 0 && (r & DMR_ID_DROPPED)) {
		old = rcu_dereference_protected(pdev->ix,
						lockdep_is_held(&pdev->ix_lock));
		rcu_assign_pointer(pdev->ix, empty);
		call_rcu(&old->rcu, ix_free_rcu);
		empty = NULL;
		WRITE_ONCE(pdev->nr_mapped, 0);
		WRITE_ONCE(pdev->nr_pending, 0);
	}
	mutex_unlock(&pdev->ix_lock);
	if (r > 0 && (r & DMR_ID_NEW_SCAN)) {
		WRITE_ONCE(pdev->scan_pos, 0);
		WRITE_ONCE(pdev->scan_passes, 0);
		WRITE_ONCE(pdev->scan_last_pass, 0);
	}
	mutex_unlock(&pdev->scan_lock);
	if (r == -EAGAIN && !empty) {
		/* A drop must not fail half done: its empty index first. */
		empty = ix_alloc(0, size >> dmr_pool_block_shift(pool));
		if (empty)
			goto again;
		error = "Cannot allocate an index";
		r = -ENOMEM;
	}
	ix_free(empty);
	if (r < 0) {
		DMERR_LIMIT("pool %u dev_id %u: %s", pool->id, pdev->dev_id, error);
		return r;
	}
	if (ticket) {
		r = dmr_md_wait_killable(pool, ticket);
		if (r) {
			DMERR_LIMIT("dev_id %u: cannot commit its identity record (%d)",
				    pdev->dev_id, r);
			return r;
		}
	}
	return 0;
}

/*
 * Link devices/<dev_id>/dm to the dm device.  Its disk is only in sysfs
 * once the first table is live, so this is done on resume, not in ctr.
 */
void dmr_pdev_link(struct dmr_pdev *pdev)
{
	struct dmr_pool *pool = pdev->pool;
	unsigned int noio = pdev_lock_noio(pool);

	if (!pdev->linked &&
	    !sysfs_create_link(&pdev->kobj, &disk_to_dev(dm_disk(pdev->md))->kobj,
			       "dm"))
		pdev->linked = true;
	pdev_unlock_noio(pool, noio);
}

/* The table whose events dmsetup wait sees: the one last resumed. */
void dmr_pdev_set_event_target(struct dmr_pdev *pdev, struct dm_target *ti,
			       bool live)
{
	mutex_lock(&pdev->pool->pdev_lock);
	if (live)
		pdev->event_ti = ti;
	else if (pdev->event_ti == ti)
		pdev->event_ti = NULL;
	mutex_unlock(&pdev->pool->pdev_lock);
}

/* Raise a dm event on the device (process context). */
void dmr_pdev_event(struct dmr_pdev *pdev)
{
	mutex_lock(&pdev->pool->pdev_lock);
	if (pdev->event_ti)
		dm_table_event(pdev->event_ti->table);
	mutex_unlock(&pdev->pool->pdev_lock);
}

/* Raise a dm event on every device of the pool. */
void dmr_pool_event(struct dmr_pool *pool)
{
	struct dmr_pdev *pdev;

	mutex_lock(&pool->pdev_lock);
	list_for_each_entry(pdev, &pool->pdevs, list)
		if (pdev->event_ti)
			dm_table_event(pdev->event_ti->table);
	mutex_unlock(&pool->pdev_lock);
}

void dmr_pdev_put(struct dmr_pdev *pdev, struct dm_table *table)
{
	struct dmr_pool *pool = pdev->pool;
	unsigned int noio;
	bool last;
	int i;

	noio = pdev_lock_noio(pool);
	for (i = 0; i < DMR_PDEV_TABLES; i++)
		if (pdev->tables[i] == table)
			pdev->tables[i] = NULL;
	last = !--pdev->users;
	if (last) {
		/*
		 * Out of sysfs before it leaves the list: a load of dev_id
		 * that no longer finds it makes a pdev with the same sysfs
		 * name.  (No sysfs handler takes pdev_lock.)
		 */
		if (pdev->linked)
			sysfs_remove_link(&pdev->kobj, "dm");
		pdev->linked = false;
		kobject_del(&pdev->kobj);
		list_del(&pdev->list);
	}
	pdev_unlock_noio(pool, noio);
	if (!last)
		return;
	flush_work(&pdev->err_work);
	WARN_ON(!bio_list_empty(&pdev->deferred));
	WARN_ON(!bio_list_empty(&pdev->failed));
	kobject_put(&pdev->kobj);
}
