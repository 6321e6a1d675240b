// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Unit tests of common/rm_index.c: the lock-free-readable remap index.
 * All test names start with "index" (build/unit index).
 */
#include <pthread.h>
#include <stdlib.h>
#include "unit.h"
#include "../../common/rm_platform.h"
#include "../../common/rm_format.h"
#include "../../common/rm_index.h"

/* ---- helpers ------------------------------------------------------------ */

struct tix {
	struct rm_index ix;
	struct rm_index_slot *slots;
	uint64_t *regions;
	/* Filter sized by rm_index_filter_bits_for() on rebuilds (0: fixed). */
	uint64_t policy_blocks;
	uint32_t policy_min_bits;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A table of cap slots with a filter sized for nr_blocks in max_bits. */
static void tix_new(struct tix *t, uint32_t cap, uint64_t nr_blocks,
		    uint32_t max_bits)
{
	unsigned int shift = 0;
	uint32_t words = 0;

	if (max_bits) {
		shift = rm_index_region_shift_for(nr_blocks, max_bits);
		words = rm_index_region_words_for(nr_blocks, shift);
	}
	t->slots = malloc(rm_index_bytes(cap));
	t->regions = words ? malloc(words * sizeof(uint64_t)) : NULL;
	t->policy_blocks = 0;
	t->policy_min_bits = 0;
	if (rm_index_init(&t->ix, t->slots, cap, t->regions, words, shift))
		abort();
}

/*
 * A table of cap slots over nr_blocks whose filter follows the kernel's
 * policy: rm_index_filter_bits_for(cap, min_bits), again on every rebuild.
 */
static void tix_new_policy(struct tix *t, uint32_t cap, uint64_t nr_blocks,
			   uint32_t min_bits)
{
	tix_new(t, cap, nr_blocks, rm_index_filter_bits_for(cap, min_bits));
	t->policy_blocks = nr_blocks;
	t->policy_min_bits = min_bits;
}

static void tix_free(struct tix *t)
{
	free(t->slots);
	free(t->regions);
}

/*
 * Rebuild into a table of cap slots, with the same filter geometry or, for
 * a policy table, the geometry the policy gives for cap.
 */
static void tix_rebuild(struct tix *t, uint32_t cap)
{
	struct tix n;

	if (t->policy_blocks)
		tix_new_policy(&n, cap, t->policy_blocks, t->policy_min_bits);
	else
		tix_new(&n, cap, 0, 0);
	if (!t->policy_blocks && t->ix.region_words) {
		free(n.regions);
		n.regions = malloc(t->ix.region_words * sizeof(uint64_t));
		if (rm_index_init(&n.ix, n.slots, cap, n.regions,
				  t->ix.region_words, t->ix.region_shift))
			abort();
	}
	if (rm_index_copy(&n.ix, &t->ix))
		abort();
	tix_free(t);
	*t = n;
}

/* The caller-side policy: set, growing on -RM_E_FULL. */
static int tix_set(struct tix *t, uint64_t b, uint32_t spare,
		   unsigned int state)
{
	int ret = rm_index_set(&t->ix, b, spare, state);

	if (ret != -RM_E_FULL)
		return ret;
	tix_rebuild(t, rm_index_cap_for(t->ix.live + 1));
	return rm_index_set(&t->ix, b, spare, state);
}

/* The caller-side policy: delete, shrinking when oversized. */
static int tix_delete(struct tix *t, uint64_t b)
{
	int ret = rm_index_delete(&t->ix, b);

	if (!ret && rm_index_wants_shrink(&t->ix))
		tix_rebuild(t, rm_index_cap_for(t->ix.live));
	return ret;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorted unique array: index of the first element >= v. */
static size_t lower_bound(const uint64_t *a, size_t n, uint64_t v)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (a[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t sort_unique(uint64_t *a, size_t n)
{
	size_t i, m = 0;

	qsort(a, n, sizeof(*a), cmp_u64);
	for (i = 0; i < n; i++)
		if (!m || a[m - 1] != a[i])
			a[m++] = a[i];
	return m;
}

/* Slots and region bitmap per live entry. */
static double bytes_per_live(const struct rm_index *ix)
{
	return (double)(rm_index_bytes(ix->cap) +
			(size_t)ix->region_words * sizeof(uint64_t)) / ix->live;
}

/* Same home-slot formula as rm_index.c, to build worst-case clusters. */
static uint32_t home_of(uint64_t main_block, uint32_t cap)
{
	uint64_t x = main_block + 1;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (uint32_t)(((x >> 32) * cap) >> 32);
}

/* ---- basic operations ---------------------------------------------------- */

UNIT_TEST(index_basic)
{
	struct tix t;
	uint32_t spare = 0;
	unsigned int state = 0;

	tix_new(&t, 64, 1 << 20, 1024);
	CHECK_EQ(rm_index_lookup(&t.ix, 5, &spare, &state), 0);
	CHECK(!rm_index_may_contain(&t.ix, 0, RM_U64_MAX));
	CHECK(!rm_index_block_may_have(&t.ix, 5));	/* empty */

	CHECK_EQ(rm_index_set(&t.ix, 5, 100, RM_IX_MAPPED), 0);
	CHECK(rm_index_block_may_have(&t.ix, 5));
	CHECK(!rm_index_block_may_have(&t.ix, 5 + 8 * 1024));	/* region 8 */
	CHECK_EQ(rm_index_set(&t.ix, 6, 101, RM_IX_PENDING), 0);
	CHECK_EQ(t.ix.live, 2);
	CHECK_EQ(rm_index_lookup(&t.ix, 5, &spare, &state), 1);
	CHECK_EQ(spare, 100);
	CHECK_EQ(state, RM_IX_MAPPED);
	CHECK_EQ(rm_index_lookup(&t.ix, 6, &spare, &state), 1);
	CHECK_EQ(spare, 101);
	CHECK_EQ(state, RM_IX_PENDING);
	CHECK_EQ(rm_index_lookup(&t.ix, 7, NULL, NULL), 0);
	CHECK_EQ(rm_index_lookup(&t.ix, 5, NULL, NULL), 1);

	/* update: state and spare change together, count unchanged */
	CHECK_EQ(rm_index_set(&t.ix, 5, 0xffffffffu, RM_IX_BUSY), 0);
	CHECK_EQ(t.ix.live, 2);
	CHECK_EQ(rm_index_lookup(&t.ix, 5, &spare, &state), 1);
	CHECK_EQ(spare, 0xffffffffu);
	CHECK_EQ(state, RM_IX_BUSY);

	/* bad states and blocks */
	CHECK_EQ(rm_index_set(&t.ix, 9, 1, 0), -RM_E_INVAL);
	CHECK_EQ(rm_index_set(&t.ix, 9, 1, 4), -RM_E_INVAL);
	CHECK_EQ(rm_index_set(&t.ix, 9, 1, RM_IX_DELETED), -RM_E_INVAL);
	CHECK_EQ(rm_index_set(&t.ix, RM_INDEX_MAX_BLOCK + 1, 1, 1),
		 -RM_E_INVAL);
	CHECK_EQ(rm_index_set(&t.ix, RM_U64_MAX, 1, 1), -RM_E_INVAL);
	CHECK_EQ(t.ix.live, 2);

	/* delete */
	CHECK_EQ(rm_index_delete(&t.ix, 5), 0);
	CHECK_EQ(rm_index_lookup(&t.ix, 5, &spare, &state), 0);
	CHECK_EQ(rm_index_delete(&t.ix, 5), -RM_E_NOENT);
	CHECK_EQ(rm_index_delete(&t.ix, 77), -RM_E_NOENT);
	CHECK_EQ(rm_index_delete(&t.ix, RM_U64_MAX), -RM_E_NOENT);
	CHECK_EQ(t.ix.live, 1);
	CHECK_EQ(t.ix.tombs, 1);
	CHECK_EQ(rm_index_lookup(&t.ix, 6, &spare, &state), 1);
	CHECK_EQ(spare, 101);
	tix_free(&t);
}

UNIT_TEST(index_init_args)
{
	struct rm_index_slot slots[4];
	uint64_t words[2];
	struct rm_index ix;

	CHECK_EQ(rm_index_init(&ix, slots, 0, NULL, 0, 0), -RM_E_INVAL);
	CHECK_EQ(rm_index_init(&ix, NULL, 4, NULL, 0, 0), -RM_E_INVAL);
	CHECK_EQ(rm_index_init(&ix, slots, RM_INDEX_MAX_CAP + 1, NULL, 0, 0),
		 -RM_E_INVAL);
	CHECK_EQ(rm_index_init(&ix, slots, 4, words, 0, 0), -RM_E_INVAL);
	CHECK_EQ(rm_index_init(&ix, slots, 4, NULL, 2, 0), -RM_E_INVAL);
	CHECK_EQ(rm_index_init(&ix, slots, 4, words, 2, 64), -RM_E_INVAL);
	memset(slots, 0xaa, sizeof(slots));
	memset(words, 0xaa, sizeof(words));
	CHECK_EQ(rm_index_init(&ix, slots, 4, words, 2, 63), 0);
	CHECK_EQ(slots[3].key, 0);
	CHECK_EQ(slots[3].val, 0);
	CHECK_EQ(words[1], 0);
	/* cap 4: 3 entries (4 * 3 <= 3 * 4), then full */
	CHECK_EQ(rm_index_set(&ix, 1, 1, 1), 0);
	CHECK_EQ(rm_index_set(&ix, 2, 1, 1), 0);
	CHECK_EQ(rm_index_set(&ix, 3, 1, 1), 0);
	CHECK_EQ(rm_index_set(&ix, 4, 1, 1), -RM_E_FULL);
	/* cap 1 never accepts an entry, and lookups still terminate */
	CHECK_EQ(rm_index_init(&ix, slots, 1, NULL, 0, 0), 0);
	CHECK_EQ(rm_index_set(&ix, 1, 1, 1), -RM_E_FULL);
	CHECK_EQ(rm_index_lookup(&ix, 1, NULL, NULL), 0);
	CHECK(!strcmp(rm_strerror(-RM_E_FULL), "remap index full"));
	CHECK(strcmp(rm_strerror(RM_E_NOENT), "unknown error"));
}

UNIT_TEST(index_sizing)
{
	uint32_t n, cap;
	int bad = 0;

	CHECK_EQ(rm_index_cap_for(0), RM_INDEX_MIN_CAP);
	CHECK_EQ(rm_index_cap_for(38), 64);
	CHECK_EQ(rm_index_cap_for(39), 65);
	CHECK_EQ(rm_index_cap_for(600), 1000);
	CHECK_EQ(rm_index_cap_for(601), 1002);
	CHECK_EQ(rm_index_cap_for(RM_INDEX_MAX_ENTRIES), RM_INDEX_MAX_CAP);
	CHECK_EQ(rm_index_cap_for(RM_INDEX_MAX_ENTRIES + 1), 0);
	CHECK_EQ(rm_index_cap_for(RM_U32_MAX), 0);
	for (n = 0; n < 3000000; n += 1 + n / 1000) {
		cap = rm_index_cap_for(n);
		/* fits under the limit, load >= 0.59 above the minimum */
		if ((uint64_t)n * 4 > (uint64_t)cap * 3)
			bad++;
		if (cap > RM_INDEX_MIN_CAP && (uint64_t)n * 100 < (uint64_t)cap * 59)
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(rm_index_bytes(1000), 16000);
	CHECK_EQ(sizeof(struct rm_index_slot), 16);

	/* 1 TiB of 4 KiB blocks = 2^28 blocks */
	CHECK_EQ(rm_index_region_shift_for(1ull << 28, 1 << 16), 12);
	CHECK_EQ(rm_index_region_shift_for((1ull << 28) + 1, 1 << 16), 13);
	CHECK_EQ(rm_index_region_shift_for(1ull << 28, 1 << 28), 0);
	CHECK_EQ(rm_index_region_shift_for(0, 5), 0);
	CHECK_EQ(rm_index_region_shift_for(1000, 0), 10);
	CHECK_EQ(rm_index_region_shift_for(RM_U64_MAX, 1), 63);
	CHECK_EQ(rm_index_region_words_for(1ull << 28, 12), 1024);
	CHECK_EQ(rm_index_region_words_for((1ull << 28) + 1, 13), 513);
	CHECK_EQ(rm_index_region_words_for(0, 0), 1);
	CHECK_EQ(rm_index_region_words_for(65, 0), 2);
	CHECK_EQ(rm_index_region_words_for(RM_U64_MAX, 63), 1);

	/* filter sizing: 8 bits per slot, a minimum, a ceiling */
	CHECK_EQ(rm_index_filter_bits_for(64, 1 << 16), 1 << 16);
	CHECK_EQ(rm_index_filter_bits_for(1000, 0), 8000);
	CHECK_EQ(rm_index_filter_bits_for(166667, 1 << 16), 1333336);
	CHECK_EQ(rm_index_filter_bits_for(RM_INDEX_MAX_CAP, 0), 1u << 31);
	CHECK_EQ(rm_index_filter_bits_for(0, 0), 0);
	/* 4 GiB of 4 KiB blocks with 100,000 remaps: one bit per block */
	CHECK_EQ(rm_index_region_shift_for(1 << 20,
			rm_index_filter_bits_for(rm_index_cap_for(100000),
						 1 << 16)), 0);
	/* with 10,000: 8 blocks per region */
	CHECK_EQ(rm_index_region_shift_for(1 << 20,
			rm_index_filter_bits_for(rm_index_cap_for(10000),
						 1 << 16)), 3);
}

/* ---- tombstones, load limit, copy -------------------------------------- */

UNIT_TEST(index_tombstones)
{
	struct tix t;
	uint32_t spare, a_slot = 0, i;
	unsigned int state;

	tix_new(&t, 64, 0, 0);
	CHECK_EQ(rm_index_set(&t.ix, 1000, 7, RM_IX_MAPPED), 0);
	CHECK(rm_index_block_may_have(&t.ix, 123456));	/* no filter */
	for (i = 0; i < t.ix.cap; i++)
		if (t.slots[i].key == 1001)
			a_slot = i;
	CHECK_EQ(rm_index_delete(&t.ix, 1000), 0);
	CHECK_EQ(t.ix.live, 0);
	CHECK_EQ(t.ix.tombs, 1);
	/* the key stays in its slot, marked deleted */
	CHECK_EQ(t.slots[a_slot].key, 1001);
	CHECK_EQ(t.slots[a_slot].val >> 32, RM_IX_DELETED);
	CHECK(!rm_index_may_contain(&t.ix, 0, RM_U64_MAX));
	CHECK_EQ(rm_index_first_in_range(&t.ix, 0, 5000, NULL, NULL, NULL), 0);

	/* another key does not take the tombstone */
	CHECK_EQ(rm_index_set(&t.ix, 2000, 8, RM_IX_MAPPED), 0);
	CHECK_EQ(t.ix.tombs, 1);
	CHECK_EQ(t.slots[a_slot].key, 1001);

	/* the same key revives it in place */
	CHECK_EQ(rm_index_set(&t.ix, 1000, 9, RM_IX_PENDING), 0);
	CHECK_EQ(t.ix.tombs, 0);
	CHECK_EQ(t.ix.live, 2);
	CHECK_EQ(t.slots[a_slot].key, 1001);
	CHECK_EQ(rm_index_lookup(&t.ix, 1000, &spare, &state), 1);
	CHECK_EQ(spare, 9);
	CHECK_EQ(state, RM_IX_PENDING);
	tix_free(&t);
}

UNIT_TEST(index_full_and_copy)
{
	struct tix t, big, small;
	uint32_t i, spare, n;
	unsigned int state;
	int bad = 0;

	/* 2^26 blocks in 64 regions of 2^20 blocks: key i in region i */
#define K(i) ((uint64_t)(i) << 20)
	tix_new(&t, 64, 1ull << 26, 64);
	CHECK_EQ(t.ix.region_shift, 20);
	for (i = 0; i < 48; i++)
		CHECK_EQ(rm_index_set(&t.ix, K(i), i, RM_IX_MAPPED), 0);
	/* 49 > 64 * 3/4: refused, nothing changed */
	CHECK_EQ(rm_index_set(&t.ix, K(63), 1, RM_IX_MAPPED), -RM_E_FULL);
	CHECK_EQ(t.ix.live, 48);
	CHECK_EQ(rm_index_lookup(&t.ix, K(63), NULL, NULL), 0);
	CHECK(!rm_index_may_contain(&t.ix, K(63), K(63)));
	/* updates still work when full */
	CHECK_EQ(rm_index_set(&t.ix, K(0), 77, RM_IX_BUSY), 0);
	/* tombstones count toward the load */
	CHECK_EQ(rm_index_delete(&t.ix, K(1)), 0);
	CHECK_EQ(rm_index_set(&t.ix, K(63), 1, RM_IX_MAPPED), -RM_E_FULL);
	CHECK_EQ(rm_index_set(&t.ix, K(1), 1, RM_IX_MAPPED), 0);	/* revive */
	CHECK_EQ(rm_index_delete(&t.ix, K(2)), 0);
	CHECK_EQ(rm_index_delete(&t.ix, K(3)), 0);

	/* copy errors: destination too small, destination not empty */
	tix_new(&small, 60, 1ull << 26, 64);	/* 46 live > 45 */
	CHECK_EQ(rm_index_copy(&small.ix, &t.ix), -RM_E_FULL);
	CHECK_EQ(small.ix.live, 0);
	CHECK_EQ(rm_index_copy(&t.ix, &t.ix), -RM_E_INVAL);
	n = rm_index_cap_for(t.ix.live + 1);
	CHECK_EQ(n, 79);			/* ceil(47 * 5 / 3) */
	tix_new(&big, n, 1ull << 26, 64);
	CHECK_EQ(rm_index_set(&big.ix, 5, 5, RM_IX_MAPPED), 0);
	CHECK_EQ(rm_index_copy(&big.ix, &t.ix), -RM_E_INVAL);
	tix_free(&big);

	tix_new(&big, n, 1ull << 26, 64);
	CHECK_EQ(rm_index_copy(&big.ix, &t.ix), 0);
	CHECK_EQ(big.ix.live, 46);
	CHECK_EQ(big.ix.tombs, 0);		/* dropped */
	for (i = 0; i < 48; i++) {
		int want = i != 2 && i != 3;

		if (rm_index_lookup(&big.ix, K(i), &spare, &state) != want)
			bad++;
		else if (want && (spare != (i ? i : 77) ||
				  state != (i ? RM_IX_MAPPED : RM_IX_BUSY)))
			bad++;
	}
	CHECK_EQ(bad, 0);
	/* regions were recomputed: deleted keys' regions are clear again */
	CHECK(!rm_index_may_contain(&big.ix, K(2), K(3) + 5));
	CHECK(rm_index_may_contain(&t.ix, K(2), K(2)));
	CHECK(rm_index_may_contain(&big.ix, K(4) + 7, K(4) + 7));
	CHECK_EQ(rm_index_set(&big.ix, K(63), 1, RM_IX_MAPPED), 0);
	CHECK(bytes_per_live(&big.ix) <= 32.0);
#undef K
	tix_free(&small);
	tix_free(&big);
	tix_free(&t);
}

/* Many keys with the same home slot at the end of the table: wrap-around. */
UNIT_TEST(index_cluster_wrap)
{
	uint64_t keys[48];
	struct tix t;
	uint64_t b, got;
	uint32_t n = 0, i, spare, pos = 0, seen = 0;
	int bad = 0;

	tix_new(&t, 64, 0, 0);
	for (b = 0; n < 48; b++)
		if (home_of(b, 64) == 62)
			keys[n++] = b;
	for (i = 0; i < 48; i++)
		CHECK_EQ(rm_index_set(&t.ix, keys[i], i, RM_IX_MAPPED), 0);
	CHECK(t.slots[0].key != 0);		/* the run wrapped */
	for (i = 0; i < 48; i += 2)
		CHECK_EQ(rm_index_delete(&t.ix, keys[i]), 0);
	for (i = 0; i < 48; i++)
		if (rm_index_lookup(&t.ix, keys[i], &spare, NULL) != (int)(i & 1) ||
		    ((i & 1) && spare != i))
			bad++;
	CHECK_EQ(bad, 0);
	while (rm_index_next(&t.ix, &pos, &got, &spare, NULL)) {
		CHECK_EQ(got, keys[spare]);
		seen++;
	}
	CHECK_EQ(seen, 24);
	tix_free(&t);
}

/*
 * Bytes per live entry (slots and region bitmap) with the grow/shrink and
 * filter sizing policy of rm_index.h; tables of the minimum capacity are
 * exempt from the bound.
 */
UNIT_TEST(index_memory_bound)
{
	struct tix t;
	uint64_t *keys;
	uint32_t i, n = 0, grows = 0, shrinks = 0;
	int ret, bad = 0;
	double worst_grow = 0, worst_full = 0, worst_any = 0, x;

	keys = malloc(300000 * sizeof(*keys));
	tix_new_policy(&t, rm_index_cap_for(0), 1ull << 28, 0);
	for (i = 0; i < 300000; i++) {
		/* 2/3 inserts, 1/3 deletes of a random existing key */
		if (n && rnd() % 3 == 0) {
			uint32_t j = rnd() % n;
			uint32_t cap = t.ix.cap;

			if (tix_delete(&t, keys[j]))
				bad++;
			keys[j] = keys[--n];
			if (t.ix.cap != cap)
				shrinks++;
		} else {
			uint64_t b = rnd() & ((1ull << 28) - 1);

			ret = rm_index_set(&t.ix, b, i, RM_IX_MAPPED);
			if (ret == -RM_E_FULL) {
				/* at the grow threshold */
				if (t.ix.cap > RM_INDEX_MIN_CAP) {
					x = bytes_per_live(&t.ix);
					worst_full = x > worst_full ? x : worst_full;
				}
				tix_rebuild(&t, rm_index_cap_for(t.ix.live + 1));
				ret = rm_index_set(&t.ix, b, i, RM_IX_MAPPED);
				grows++;
				x = bytes_per_live(&t.ix);
				if (t.ix.cap > RM_INDEX_MIN_CAP)
					worst_grow = x > worst_grow ? x : worst_grow;
			}
			if (ret)
				bad++;
			else if (t.ix.live > n)
				keys[n++] = b;	/* not a duplicate */
		}
		if (t.ix.live != n)
			bad++;
		if (t.ix.cap > RM_INDEX_MIN_CAP) {
			x = bytes_per_live(&t.ix);
			worst_any = x > worst_any ? x : worst_any;
		}
	}
	/* then delete all but 20: the table shrinks as it empties */
	while (n > 20) {
		uint32_t j = rnd() % n;
		uint32_t cap = t.ix.cap;

		if (tix_delete(&t, keys[j]))
			bad++;
		keys[j] = keys[--n];
		if (t.ix.cap != cap)
			shrinks++;
		if (t.ix.live != n)
			bad++;
		if (t.ix.cap > RM_INDEX_MIN_CAP) {
			x = bytes_per_live(&t.ix);
			worst_any = x > worst_any ? x : worst_any;
		}
	}
	CHECK_EQ(t.ix.cap, RM_INDEX_MIN_CAP);
	CHECK_EQ(bad, 0);
	CHECK(grows > 10);
	CHECK(shrinks > 10);
	printf("  memory: %u grows, %u shrinks, bytes/entry worst: after grow %.1f, at threshold %.1f, any time %.1f\n",
	       grows, shrinks, worst_grow, worst_full, worst_any);
	CHECK(worst_grow <= 32.0);
	CHECK(worst_full <= 32.0);
	CHECK(worst_any <= 32.0);

	/* pure growth: right after a grow ~28.3, at the threshold ~22.7 */
	tix_free(&t);
	tix_new_policy(&t, rm_index_cap_for(0), 1ull << 28, 0);
	worst_grow = worst_full = 0;
	for (i = 0; i < 200000; i++) {
		ret = rm_index_set(&t.ix, i * 977ull, i, RM_IX_MAPPED);
		if (ret == -RM_E_FULL) {
			if (t.ix.live >= 32 && bytes_per_live(&t.ix) > 22.7)
				bad++;
			tix_rebuild(&t, rm_index_cap_for(t.ix.live + 1));
			ret = rm_index_set(&t.ix, i * 977ull, i, RM_IX_MAPPED);
			if (t.ix.live >= 64 && bytes_per_live(&t.ix) > 28.5)
				bad++;
		}
		if (ret)
			bad++;
	}
	CHECK_EQ(bad, 0);
	tix_free(&t);
	free(keys);
}

/* ---- region filter ------------------------------------------------------ */

UNIT_TEST(index_region_filter)
{
	const uint64_t nr = 1ull << 28;
	uint64_t *ref, first, last, b;
	struct tix t;
	size_t n = 100000, m, k;
	uint32_t i;
	int fneg = 0, fpos = 0, clear = 0, bad = 0;

	ref = malloc(n * sizeof(*ref));
	for (k = 0; k < n; k++)
		ref[k] = rnd() % nr;
	tix_new(&t, rm_index_cap_for(0), nr, 1 << 20);
	for (k = 0; k < n; k++)
		if (tix_set(&t, ref[k], (uint32_t)k, RM_IX_MAPPED))
			bad++;
	m = sort_unique(ref, n);
	CHECK_EQ(t.ix.live, m);
	CHECK_EQ(bad, 0);
	for (i = 0; i < 400000; i++) {
		/* single blocks, short bios, and longer ranges */
		first = rnd() % nr;
		switch (i % 4) {
		case 0:
			last = first;
			break;
		case 1:
			last = first + rnd() % 256;
			break;
		case 2:
			first = ref[rnd() % m] - rnd() % 300;
			last = first + rnd() % 300;
			break;
		default:
			last = first + rnd() % (1 << 16);
			break;
		}
		/* the inline one-block test agrees with the general one */
		if (rm_index_block_may_have(&t.ix, first) !=
		    rm_index_may_contain(&t.ix, first, first))
			bad++;
		k = lower_bound(ref, m, first);
		if (k < m && ref[k] <= last) {
			if (!rm_index_may_contain(&t.ix, first, last))
				fneg++;
		} else if (rm_index_may_contain(&t.ix, first, last)) {
			fpos++;
		} else {
			clear++;
		}
	}
	CHECK_EQ(fneg, 0);
	CHECK_EQ(bad, 0);
	CHECK(clear > 0);
	/* every key's own block */
	for (k = 0; k < m; k++)
		if (!rm_index_may_contain(&t.ix, ref[k], ref[k]) ||
		    !rm_index_block_may_have(&t.ix, ref[k]))
			fneg++;
	CHECK_EQ(fneg, 0);
	/* edge cases */
	CHECK(!rm_index_may_contain(&t.ix, 10, 9));
	CHECK(rm_index_may_contain(&t.ix, 0, RM_U64_MAX));
	printf("  filter: %d false positives, %d correct negatives of %d empty ranges\n",
	       fpos, clear, fpos + clear);

	/* blocks past the bitmap share the last bit */
	b = nr + 12345;
	CHECK(!rm_index_block_may_have(&t.ix, b) ||
	      rm_index_may_contain(&t.ix, nr - 1, nr - 1));
	CHECK_EQ(tix_set(&t, b, 1, RM_IX_MAPPED), 0);
	CHECK(rm_index_may_contain(&t.ix, b, b));
	CHECK(rm_index_block_may_have(&t.ix, b));
	CHECK(rm_index_block_may_have(&t.ix, RM_INDEX_MAX_BLOCK));
	CHECK(rm_index_may_contain(&t.ix, RM_INDEX_MAX_BLOCK, RM_U64_MAX));
	tix_free(&t);

	/*
	 * The kernel's policy on a 4 GiB device (2^20 blocks) with 100,000
	 * uniformly random remaps: the filter grows with the table until it
	 * has one bit per block, so a random block that is not remapped is
	 * rejected by its bit (about 90% of single-block bios).
	 */
	tix_new_policy(&t, rm_index_cap_for(0), 1 << 20, 1 << 16);
	m = 0;
	for (k = 0; k < n; k++) {
		b = rnd() % (1 << 20);
		if (tix_set(&t, b, (uint32_t)k, RM_IX_MAPPED))
			bad++;
		ref[k] = b;
	}
	m = sort_unique(ref, n);
	CHECK_EQ(bad, 0);
	CHECK_EQ(t.ix.live, m);
	CHECK_EQ(t.ix.region_shift, 0);
	CHECK_EQ(t.ix.region_words, (1 << 20) / 64);
	for (i = 0, k = 0; i < (1 << 20); i++) {
		bool in = k < m && ref[k] == i;

		if (rm_index_may_contain(&t.ix, i, i) != in)
			bad++;
		k += in;
	}
	CHECK_EQ(bad, 0);
	CHECK(bytes_per_live(&t.ix) <= 32.0);
	tix_free(&t);
	free(ref);
}

/* ---- first_in_range ----------------------------------------------------- */

static int ref_first(const uint64_t *ref, size_t m, uint64_t first,
		     uint64_t last, uint64_t *found)
{
	size_t k = lower_bound(ref, m, first);

	if (k < m && ref[k] <= last) {
		*found = ref[k];
		return 1;
	}
	return 0;
}

/* max_bits: a fixed filter geometry; policy: the minimum of a policy table. */
static void check_first_in_range(uint32_t max_bits, bool policy)
{
	const uint64_t nr = 1 << 22;
	uint64_t *ref, first, last, want = 0, got = 0;
	struct tix t;
	size_t n = 3000, m, k, del = 0;
	uint32_t i, spare;
	unsigned int state;
	int bad = 0, hits = 0, r1, r2;

	ref = malloc(n * sizeof(*ref));
	for (k = 0; k < n; k++) {
		/* clusters, like bad blocks */
		if (k && rnd() % 2)
			ref[k] = (ref[k - 1] + 1 + rnd() % 16) % nr;
		else
			ref[k] = rnd() % nr;
	}
	if (policy)
		tix_new_policy(&t, rm_index_cap_for(0), nr, max_bits);
	else
		tix_new(&t, rm_index_cap_for(0), nr, max_bits);
	for (k = 0; k < n; k++)
		tix_set(&t, ref[k], (uint32_t)(ref[k] * 3), 1 + ref[k] % 3);
	if (policy)	/* grew finer with the table: 8 bits per slot */
		CHECK_EQ(t.ix.region_shift,
			 rm_index_region_shift_for(nr,
				 rm_index_filter_bits_for(t.ix.cap, max_bits)));
	m = sort_unique(ref, n);
	/* delete every 5th: tombstones must not be found */
	for (k = 0; k < m; k += 5) {
		if (rm_index_delete(&t.ix, ref[k]))
			bad++;
		ref[k] = RM_U64_MAX;
		del++;
	}
	m = sort_unique(ref, m) - 1;	/* drop the RM_U64_MAX markers */
	CHECK_EQ(t.ix.live, m);
	for (i = 0; i < 80000; i++) {
		first = rnd() % (nr + 1000);
		switch (i % 5) {
		case 0:
			last = first;
			break;
		case 1:
			last = first + rnd() % 64;
			break;
		case 2:
			last = first + rnd() % 5000;
			break;
		case 3:
			last = first + rnd() % (1 << 20);	/* slot scan */
			break;
		default:
			first = ref[rnd() % m] - rnd() % 20;
			last = first + rnd() % 40;
			break;
		}
		r1 = ref_first(ref, m, first, last, &want);
		r2 = rm_index_first_in_range(&t.ix, first, last, &got, &spare,
					     &state);
		hits += r1;
		if (r1 != r2 || (r1 && (got != want ||
					spare != (uint32_t)(want * 3) ||
					state != 1 + want % 3)))
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK(hits > 10000);
	CHECK_EQ(rm_index_first_in_range(&t.ix, 10, 9, NULL, NULL, NULL), 0);
	CHECK_EQ(rm_index_first_in_range(&t.ix, 0, RM_U64_MAX, &got, NULL,
					 NULL), 1);
	CHECK_EQ(got, ref[0]);
	tix_free(&t);
	free(ref);
}

UNIT_TEST(index_first_in_range)
{
	check_first_in_range(1 << 12, false);	/* coarse regions */
	check_first_in_range(1 << 22, false);	/* one block per region */
	check_first_in_range(0, false);		/* no filter */
	check_first_in_range(0, true);		/* sized with the table */
}

/* ---- iterator, extreme keys ---------------------------------------------- */

UNIT_TEST(index_iterator)
{
	struct tix t;
	uint64_t *ref, *got, b;
	uint32_t pos = 0, spare, i;
	unsigned int state;
	size_t n = 20000, m, k = 0;
	int bad = 0;

	ref = malloc(n * sizeof(*ref));
	got = malloc(n * sizeof(*got));
	tix_new(&t, rm_index_cap_for(0), 1ull << 40, 1 << 16);
	for (i = 0; i < n; i++) {
		ref[i] = rnd() >> 24;
		tix_set(&t, ref[i], (uint32_t)ref[i], RM_IX_PENDING);
	}
	m = sort_unique(ref, n);
	for (i = 0; i < m; i += 3)
		rm_index_delete(&t.ix, ref[i]);
	while (rm_index_next(&t.ix, &pos, &b, &spare, &state)) {
		if (k == n || spare != (uint32_t)b || state != RM_IX_PENDING) {
			bad++;
			break;
		}
		got[k++] = b;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(pos, t.ix.cap);
	CHECK_EQ(rm_index_next(&t.ix, &pos, &b, NULL, NULL), 0);
	CHECK_EQ(k, t.ix.live);
	CHECK_EQ(sort_unique(got, k), k);	/* each entry once */
	for (i = 0, k = 0; i < m; i++) {
		if (i % 3 == 0)
			continue;
		if (got[k++] != ref[i])
			bad++;
	}
	CHECK_EQ(bad, 0);
	tix_free(&t);
	free(ref);
	free(got);
}

UNIT_TEST(index_extreme_keys)
{
	struct tix t;
	uint64_t got, b;
	uint32_t spare, pos = 0, n = 0;
	unsigned int state;

	tix_new(&t, 64, 1ull << 28, 1 << 10);
	CHECK_EQ(rm_index_set(&t.ix, 0, 1, RM_IX_MAPPED), 0);
	CHECK_EQ(rm_index_set(&t.ix, RM_INDEX_MAX_BLOCK, 2, RM_IX_PENDING), 0);
	CHECK_EQ(rm_index_set(&t.ix, RM_INDEX_MAX_BLOCK - 1, 3, RM_IX_BUSY), 0);
	CHECK_EQ(rm_index_lookup(&t.ix, 0, &spare, &state), 1);
	CHECK_EQ(spare, 1);
	CHECK_EQ(rm_index_lookup(&t.ix, RM_INDEX_MAX_BLOCK, &spare, &state), 1);
	CHECK_EQ(spare, 2);
	CHECK_EQ(state, RM_IX_PENDING);
	CHECK_EQ(rm_index_lookup(&t.ix, RM_INDEX_MAX_BLOCK + 1, NULL, NULL), 0);
	CHECK_EQ(rm_index_lookup(&t.ix, RM_U64_MAX, NULL, NULL), 0);
	CHECK(rm_index_may_contain(&t.ix, 0, 0));
	CHECK(rm_index_may_contain(&t.ix, RM_U64_MAX, RM_U64_MAX));
	CHECK_EQ(rm_index_first_in_range(&t.ix, 0, 0, &got, NULL, NULL), 1);
	CHECK_EQ(got, 0);
	CHECK_EQ(rm_index_first_in_range(&t.ix, 1, 100, &got, NULL, NULL), 0);
	CHECK_EQ(rm_index_first_in_range(&t.ix, RM_INDEX_MAX_BLOCK - 10,
					 RM_U64_MAX, &got, &spare, &state), 1);
	CHECK_EQ(got, RM_INDEX_MAX_BLOCK - 1);
	CHECK_EQ(state, RM_IX_BUSY);
	CHECK_EQ(rm_index_first_in_range(&t.ix, RM_INDEX_MAX_BLOCK,
					 RM_U64_MAX, &got, NULL, NULL), 1);
	CHECK_EQ(got, RM_INDEX_MAX_BLOCK);
	CHECK_EQ(rm_index_first_in_range(&t.ix, RM_INDEX_MAX_BLOCK + 1,
					 RM_U64_MAX, &got, NULL, NULL), 0);
	CHECK_EQ(rm_index_first_in_range(&t.ix, 1, RM_U64_MAX, &got, NULL,
					 NULL), 1);	/* slot scan */
	CHECK_EQ(got, RM_INDEX_MAX_BLOCK - 1);
	CHECK_EQ(rm_index_delete(&t.ix, RM_INDEX_MAX_BLOCK), 0);
	CHECK_EQ(rm_index_first_in_range(&t.ix, RM_INDEX_MAX_BLOCK,
					 RM_U64_MAX, &got, NULL, NULL), 0);
	while (rm_index_next(&t.ix, &pos, &b, NULL, NULL))
		n++;
	CHECK_EQ(n, 2);
	tix_free(&t);
}

/* ---- concurrency: one writer, lock-free readers -------------------------- */

#define MT_KEYS		150000u
#define MT_READERS	2

struct mt {
	struct rm_index *cur;		/* published table (atomic pointer) */
	uint32_t published;		/* keys 0..published-1 are in cur */
	int done;
	unsigned long lookups, missing, torn;
};

static uint64_t mt_block(uint32_t i)
{
	return (uint64_t)i * 2654435761u & ((1ull << 28) - 1);	/* distinct */
}

/* spare is a function of (block, state), so a torn pair is detected */
static uint32_t mt_spare(uint64_t b, unsigned int state)
{
	return (uint32_t)(b * 7 + state * 1000003u);
}

static void *mt_reader(void *arg)
{
	struct mt *mt = arg;
	uint64_t r = (uint64_t)(uintptr_t)&r, b, got;
	unsigned long lookups = 0, missing = 0, torn = 0;
	const struct rm_index *ix;
	uint32_t n, spare;
	unsigned int state;

	while (!__atomic_load_n(&mt->done, __ATOMIC_ACQUIRE)) {
		n = __atomic_load_n(&mt->published, __ATOMIC_ACQUIRE);
		if (!n)
			continue;
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		b = mt_block((uint32_t)((r >> 33) % n));
		ix = __atomic_load_n(&mt->cur, __ATOMIC_ACQUIRE);
		lookups++;
		if (lookups & 1) {
			if (rm_index_lookup(ix, b, &spare, &state) != 1) {
				missing++;
				continue;
			}
		} else if (rm_index_first_in_range(ix, b, b, &got, &spare,
						   &state) != 1 || got != b) {
			missing++;
			continue;
		}
		if (state < RM_IX_MAPPED || state > RM_IX_BUSY ||
		    spare != mt_spare(b, state))
			torn++;
	}
	__atomic_fetch_add(&mt->lookups, lookups, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mt->missing, missing, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mt->torn, torn, __ATOMIC_RELAXED);
	return NULL;
}

UNIT_TEST(index_threads)
{
	struct mt mt = { 0 };
	pthread_t th[MT_READERS];
	struct tix tabs[128];	/* every table ever published; freed at end */
	struct tix *t;
	uint32_t i, ntabs = 0, eph = 0, ephn = 0, j;
	unsigned int st;
	uint64_t b;
	int ret, bad = 0;

	tix_new(&tabs[ntabs++], rm_index_cap_for(0), 1ull << 29, 1 << 14);
	__atomic_store_n(&mt.cur, &tabs[0].ix, __ATOMIC_RELEASE);
	for (i = 0; i < MT_READERS; i++)
		pthread_create(&th[i], NULL, mt_reader, &mt);
	for (i = 0; i < MT_KEYS; i++) {
		t = &tabs[ntabs - 1];
		b = mt_block(i);
		st = RM_IX_MAPPED + i % 3;
		for (;;) {
			ret = rm_index_set(&t->ix, b, mt_spare(b, st), st);
			if (ret != -RM_E_FULL)
				break;
			/* grow: build, copy, publish; readers keep the old one */
			if (ntabs == 128) {
				bad++;
				break;
			}
			t = &tabs[ntabs++];
			tix_new(t, rm_index_cap_for(tabs[ntabs - 2].ix.live + 1),
				1ull << 29, 1 << 14);
			if (rm_index_copy(&t->ix, &tabs[ntabs - 2].ix))
				bad++;
			__atomic_store_n(&mt.cur, &t->ix, __ATOMIC_RELEASE);
		}
		if (ret)
			bad++;
		__atomic_store_n(&mt.published, i + 1, __ATOMIC_RELEASE);
		/* flip the state of an older key: spare and state change together */
		j = (uint32_t)(rnd() % (i + 1));
		st = RM_IX_MAPPED + (uint32_t)(rnd() % 3);
		if (rm_index_set(&t->ix, mt_block(j), mt_spare(mt_block(j), st),
				 st))
			bad++;
		/* short-lived entries the readers never ask for: tombstones */
		if (i % 4 == 0) {
			if (rm_index_set(&t->ix, (1ull << 28) + eph++, 0,
					 RM_IX_BUSY) == 0)
				ephn++;
			if (ephn > 8 && !rm_index_delete(&t->ix, (1ull << 28) +
							 eph - 8))
				ephn--;
		}
	}
	__atomic_store_n(&mt.done, 1, __ATOMIC_RELEASE);
	for (i = 0; i < MT_READERS; i++)
		pthread_join(th[i], NULL);
	printf("  threads: %u tables, %lu lookups, %lu missing, %lu torn\n",
	       ntabs, mt.lookups, mt.missing, mt.torn);
	CHECK_EQ(bad, 0);
	CHECK(ntabs > 5);
	CHECK(mt.lookups > 1000);
	CHECK_EQ(mt.missing, 0);
	CHECK_EQ(mt.torn, 0);
	for (i = 0; i < ntabs; i++)
		tix_free(&tabs[i]);
}
