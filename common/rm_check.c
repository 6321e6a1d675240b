// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * rm_check.c - whole-pool consistency check, shared by the module (on
 * resume) and the offline check tool.  Reports every problem through a
 * callback; allocates nothing; O(n log n) in the number of entries.
 */
#include "rm_platform.h"
#include "rm_format.h"

/* ---- In-place heapsort of check keys -------------------------------------- */

static bool rm_key_less(const struct rm_check_key *a,
			const struct rm_check_key *b)
{
	if (a->dev_id != b->dev_id)
		return a->dev_id < b->dev_id;
	if (a->main_block != b->main_block)
		return a->main_block < b->main_block;
	return a->index < b->index;
}

static void rm_key_swap(struct rm_check_key *a, struct rm_check_key *b)
{
	struct rm_check_key t = *a;

	*a = *b;
	*b = t;
}

/* Restore the max-heap property below root within k[0..n). */
static void rm_sift_down(struct rm_check_key *k, uint64_t root, uint64_t n)
{
	uint64_t child;

	/* root < n <= 2^63, so 2 * root + 1 cannot overflow. */
	while ((child = 2 * root + 1) < n) {
		if (child + 1 < n && rm_key_less(&k[child], &k[child + 1]))
			child++;
		if (!rm_key_less(&k[root], &k[child]))
			return;
		rm_key_swap(&k[root], &k[child]);
		root = child;
	}
}

void rm_check_keys_sort(struct rm_check_key *keys, uint64_t n)
{
	uint64_t i;

	if (n < 2)
		return;
	for (i = n / 2; i-- > 0;) {
		RM_YIELD(i);
		rm_sift_down(keys, i, n);
	}
	for (i = n - 1; i > 0; i--) {
		RM_YIELD(i);
		rm_key_swap(&keys[0], &keys[i]);
		rm_sift_down(keys, 0, i);
	}
}

/* ---- Pool check ------------------------------------------------------------ */

struct rm_reporter {
	void (*fn)(void *ctx, const struct rm_problem *p);
	void *ctx;
	int64_t count;
};

static void rm_report(struct rm_reporter *r, int err, enum rm_obj obj,
		      uint64_t index, uint64_t other, uint32_t dev_id,
		      uint64_t main_block)
{
	struct rm_problem p = {
		.err = err < 0 ? -err : err,
		.obj = obj,
		.index = index,
		.other = other,
		.dev_id = dev_id,
		.main_block = main_block,
	};

	r->count++;
	if (r->fn)
		r->fn(r->ctx, &p);
}

static void rm_check_devs(const struct rm_dev devs[RM_MAX_DEVS],
			  struct rm_reporter *r)
{
	unsigned int i;
	int ret, first;

	for (i = 0; i < RM_MAX_DEVS; i++) {
		ret = rm_dev_check(&devs[i]);
		if (ret) {
			rm_report(r, ret, RM_OBJ_DEV, i, 0, devs[i].dev_id, 0);
			continue;
		}
		if (!(devs[i].flags & RM_DEV_F_IN_USE))
			continue;
		first = rm_dev_find(devs, devs[i].dev_id);
		if (first != (int)i)
			rm_report(r, RM_E_DUP_DEV, RM_OBJ_DEV, i, (uint64_t)first,
				  devs[i].dev_id, 0);
	}
}

/* Per-entry rules; true if the entry holds a (dev_id, main_block) key. */
static bool rm_check_entry(const struct rm_entry *e, uint64_t index,
			   const struct rm_dev devs[RM_MAX_DEVS],
			   unsigned int shift, struct rm_reporter *r)
{
	int ret, dev;

	ret = rm_entry_check(e);
	if (ret) {
		rm_report(r, ret, RM_OBJ_ENTRY, index, 0, e->dev_id,
			  e->main_block);
		return false;
	}
	if (e->state != RM_ENTRY_MAPPED && e->state != RM_ENTRY_PENDING)
		return false;
	dev = rm_dev_find(devs, e->dev_id);
	if (dev < 0)
		rm_report(r, RM_E_UNKNOWN_DEV, RM_OBJ_ENTRY, index, 0,
			  e->dev_id, e->main_block);
	else if (e->main_block >= (devs[dev].size_sectors >> shift))
		rm_report(r, RM_E_RANGE, RM_OBJ_ENTRY, index, 0, e->dev_id,
			  e->main_block);
	return true;
}

/* Sort the keys and report each repeat against its first occurrence. */
static void rm_check_dups(struct rm_check_key *k, uint64_t n,
			  struct rm_reporter *r)
{
	uint64_t i, first = 0;

	rm_check_keys_sort(k, n);
	for (i = 1; i < n; i++) {
		RM_YIELD(i);
		if (k[i].dev_id != k[first].dev_id ||
		    k[i].main_block != k[first].main_block) {
			first = i;
			continue;
		}
		rm_report(r, RM_E_DUP_MAP, RM_OBJ_ENTRY, k[i].index,
			  k[first].index, k[i].dev_id, k[i].main_block);
	}
}

int64_t rm_pool_check(const struct rm_sb *sb,
		      const struct rm_dev devs[RM_MAX_DEVS],
		      const struct rm_entry *entries, uint64_t nr_entries,
		      struct rm_check_key *scratch,
		      void (*report)(void *ctx, const struct rm_problem *p),
		      void *ctx)
{
	struct rm_reporter r = { .fn = report, .ctx = ctx, .count = 0 };
	uint64_t i, nkeys = 0;
	unsigned int shift;
	int ret;

	if (!sb || !devs || (!entries && nr_entries))
		return -RM_E_INVAL;
	ret = rm_geometry_check(&sb->geo);
	if (ret) {
		/* Entries cannot be judged without a block size. */
		rm_report(&r, ret, RM_OBJ_POOL, 0, 0, 0, 0);
		return r.count;
	}
	if (nr_entries != sb->geo.nr_blocks)
		return -RM_E_INVAL;
	shift = rm_block_sector_shift(sb->geo.block_size);

	rm_check_devs(devs, &r);
	for (i = 0; i < nr_entries; i++) {
		RM_YIELD(i);
		if (!rm_check_entry(&entries[i], i, devs, shift, &r) ||
		    !scratch)
			continue;
		scratch[nkeys].dev_id = entries[i].dev_id;
		scratch[nkeys].main_block = entries[i].main_block;
		scratch[nkeys].index = (uint32_t)i;	/* i < RM_MAX_BLOCKS */
		nkeys++;
	}
	if (scratch)
		rm_check_dups(scratch, nkeys, &r);
	return r.count;
}

int rm_names_check(const struct rm_dev devs[RM_MAX_DEVS],
		   const struct rm_name names[RM_MAX_DEVS],
		   void (*report)(void *ctx, const struct rm_problem *p),
		   void *ctx)
{
	struct rm_reporter r = { .fn = report, .ctx = ctx };
	unsigned int i;

	for (i = 0; i < RM_MAX_DEVS; i++) {
		if (!(names[i].flags & RM_NAME_F_IN_USE))
			continue;
		if (!(devs[i].flags & RM_DEV_F_IN_USE) ||
		    devs[i].dev_id != names[i].dev_id)
			rm_report(&r, RM_E_ORPHAN_NAME, RM_OBJ_NAME, i, 0,
				  names[i].dev_id, 0);
	}
	return (int)r.count;
}
