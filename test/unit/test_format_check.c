// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* Unit tests of common/rm_check.c: heapsort and the pool-level validator. */
#include <stdlib.h>
#include <time.h>
#include "unit.h"
#include "../../common/rm_platform.h"
#include "../../common/rm_format.h"

#define MAX_SEEN 64

struct seen {
	int n;
	struct rm_problem p[MAX_SEEN];
};

static void collect(void *ctx, const struct rm_problem *p)
{
	struct seen *s = ctx;

	if (s->n < MAX_SEEN)
		s->p[s->n] = *p;
	s->n++;
}

/* 64 MiB spare, 4 KiB blocks: 16116 entries. */
static void pool_sb(struct rm_sb *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->seq = 1;
	if (rm_geometry_compute(64 * 2048, 4096, &sb->geo))
		abort();
}

/* dev 5: 1 GiB = 262144 blocks; dev 9: 64 KiB = 16 blocks. */
static void pool_devs(struct rm_dev *devs)
{
	memset(devs, 0, sizeof(*devs) * RM_MAX_DEVS);
	devs[2] = (struct rm_dev){ 5, RM_DEV_F_IN_USE, 1 << 21, 0, 0, 0 };
	devs[7] = (struct rm_dev){ 9, RM_DEV_F_IN_USE, 128, 0, 0, 0 };
}

/* A clean mix of every state. */
static struct rm_entry *pool_entries(uint64_t n)
{
	struct rm_entry *e = calloc(n, sizeof(*e));
	uint64_t i;

	for (i = 0; i < n; i++) {
		e[i].state = (uint8_t)(i % 5 == 4 ? RM_ENTRY_FREE : i % 4);
		if (e[i].state == RM_ENTRY_MAPPED ||
		    e[i].state == RM_ENTRY_PENDING) {
			e[i].dev_id = 5;
			e[i].main_block = (i * 7919) % 262144;
		}
	}
	/* block numbers of dev 5 are distinct (7919 is odd); 0 and 1 are */
	e[0] = (struct rm_entry){ 15, 9, RM_ENTRY_MAPPED, 0 };
	e[1] = (struct rm_entry){ 262144 - 1, 5, RM_ENTRY_PENDING, 0 };
	return e;
}

static int64_t run_check(const struct rm_sb *sb, const struct rm_dev *devs,
			 const struct rm_entry *e, uint64_t n, struct seen *s)
{
	struct rm_check_key *keys = malloc(sizeof(*keys) * (n ? n : 1));
	int64_t ret;

	memset(s, 0, sizeof(*s));
	ret = rm_pool_check(sb, devs, e, n, keys, collect, s);
	free(keys);
	return ret;
}

UNIT_TEST(heapsort_keys)
{
	static struct rm_check_key k[5000];
	uint64_t n, i;
	int bad = 0;

	srand(7);
	for (n = 0; n < 5000; n = n * 3 + 1) {
		for (i = 0; i < n; i++) {
			k[i].dev_id = (uint32_t)(rand() % 3);
			k[i].main_block = (uint64_t)(rand() % 50) << 40;
			k[i].index = (uint32_t)i;
		}
		rm_check_keys_sort(k, n);
		for (i = 1; i < n; i++) {
			if (k[i - 1].dev_id > k[i].dev_id ||
			    (k[i - 1].dev_id == k[i].dev_id &&
			     (k[i - 1].main_block > k[i].main_block ||
			      (k[i - 1].main_block == k[i].main_block &&
			       k[i - 1].index >= k[i].index))))
				bad++;
		}
	}
	CHECK_EQ(bad, 0);
}

UNIT_TEST(pool_check_clean)
{
	struct rm_sb sb;
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_entry *e;
	struct seen s;

	pool_sb(&sb);
	pool_devs(devs);
	e = pool_entries(sb.geo.nr_blocks);
	CHECK_EQ(run_check(&sb, devs, e, sb.geo.nr_blocks, &s), 0);
	CHECK_EQ(s.n, 0);
	/* NULL callback and NULL scratch are allowed */
	CHECK_EQ(rm_pool_check(&sb, devs, e, sb.geo.nr_blocks, NULL, NULL,
			       NULL), 0);
	/* argument errors */
	CHECK_EQ(rm_pool_check(&sb, devs, e, sb.geo.nr_blocks - 1, NULL, NULL,
			       NULL), -RM_E_INVAL);
	CHECK_EQ(rm_pool_check(&sb, devs, NULL, sb.geo.nr_blocks, NULL, NULL,
			       NULL), -RM_E_INVAL);
	CHECK_EQ(rm_pool_check(NULL, devs, e, sb.geo.nr_blocks, NULL, NULL,
			       NULL), -RM_E_INVAL);
	free(e);
}

UNIT_TEST(pool_check_finds_each_problem)
{
	struct rm_sb sb;
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_entry *e;
	struct seen s;
	uint64_t n;

	pool_sb(&sb);
	pool_devs(devs);
	n = sb.geo.nr_blocks;
	e = pool_entries(n);

	/* main_block at the device end; the last block is fine */
	e[0].main_block = 16;
	CHECK_EQ(run_check(&sb, devs, e, n, &s), 1);
	CHECK(s.p[0].err == RM_E_RANGE && s.p[0].obj == RM_OBJ_ENTRY &&
	      s.p[0].index == 0 && s.p[0].dev_id == 9 &&
	      s.p[0].main_block == 16);
	e[0].main_block = RM_U64_MAX;
	CHECK_EQ(run_check(&sb, devs, e, n, &s), 1);
	CHECK_EQ(s.p[0].err, RM_E_RANGE);
	e[0].main_block = 15;

	/* unknown device; device 0 is not in the table either */
	e[101].dev_id = 6;		/* 101 is MAPPED */
	e[n - 1] = (struct rm_entry){ 3, 0, RM_ENTRY_PENDING, 0 };
	CHECK_EQ(run_check(&sb, devs, e, n, &s), 2);
	CHECK(s.p[0].err == RM_E_UNKNOWN_DEV && s.p[0].index == 101);
	CHECK(s.p[1].err == RM_E_UNKNOWN_DEV && s.p[1].index == n - 1);
	free(e);
	e = pool_entries(n);

	/* the same (dev, block) twice: MAPPED+PENDING and MAPPED+MAPPED */
	e[1] = (struct rm_entry){ 77, 5, RM_ENTRY_PENDING, 0 };
	e[n - 2] = (struct rm_entry){ 77, 5, RM_ENTRY_MAPPED, 0 };
	e[n - 3] = (struct rm_entry){ 77, 5, RM_ENTRY_MAPPED, 0 };
	e[5] = (struct rm_entry){ 15, 9, RM_ENTRY_MAPPED, 0 };
	CHECK_EQ(run_check(&sb, devs, e, n, &s), 3);
	/* reported in (dev_id, main_block) order, each against the first */
	CHECK(s.p[0].err == RM_E_DUP_MAP && s.p[0].index == n - 3 &&
	      s.p[0].other == 1 && s.p[0].main_block == 77);
	CHECK(s.p[1].err == RM_E_DUP_MAP && s.p[1].index == n - 2 &&
	      s.p[1].other == 1);
	CHECK(s.p[2].err == RM_E_DUP_MAP && s.p[2].index == 5 &&
	      s.p[2].other == 0 && s.p[2].dev_id == 9);
	/* without scratch the duplicate search is skipped */
	CHECK_EQ(rm_pool_check(&sb, devs, e, n, NULL, NULL, NULL), 0);
	free(e);
	e = pool_entries(n);

	/* entry field rules */
	e[10].state = 4;
	e[11] = (struct rm_entry){ 0, 5, RM_ENTRY_FREE, 0 };
	e[12] = (struct rm_entry){ 1, 0, RM_ENTRY_RETIRED, 0 };
	e[13].flags = 0x80;
	CHECK_EQ(run_check(&sb, devs, e, n, &s), 4);
	CHECK(s.p[0].err == RM_E_STATE && s.p[0].index == 10);
	CHECK(s.p[1].err == RM_E_ENTRY && s.p[1].index == 11);
	CHECK(s.p[2].err == RM_E_ENTRY && s.p[2].index == 12);
	CHECK(s.p[3].err == RM_E_FLAGS && s.p[3].index == 13);
	free(e);
	e = pool_entries(n);

	/* device table: duplicate id, unknown flag, leftover unused record */
	devs[40] = devs[2];
	devs[41].flags = 0x10 | RM_DEV_F_IN_USE;
	devs[42].size_sectors = 1;
	CHECK_EQ(run_check(&sb, devs, e, n, &s), 3);
	CHECK(s.p[0].err == RM_E_DUP_DEV && s.p[0].obj == RM_OBJ_DEV &&
	      s.p[0].index == 40 && s.p[0].other == 2 && s.p[0].dev_id == 5);
	CHECK(s.p[1].err == RM_E_FLAGS && s.p[1].index == 41);
	CHECK(s.p[2].err == RM_E_UNUSED && s.p[2].index == 42);
	pool_devs(devs);

	/* bad geometry: one pool-level problem, nothing else judged */
	sb.geo.nr_logical++;
	CHECK_EQ(run_check(&sb, devs, e, n, &s), 1);
	CHECK(s.p[0].err == RM_E_GEOMETRY && s.p[0].obj == RM_OBJ_POOL);
	free(e);
}

UNIT_TEST(pool_check_million_entries)
{
	struct rm_sb sb;
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_entry *e;
	struct seen s;
	uint64_t n, i;
	clock_t t;
	int64_t ret;

	memset(&sb, 0, sizeof(sb));
	sb.seq = 1;
	/* 4 GiB + a bit of spare with 4 KiB blocks: > 1M entries */
	CHECK_EQ(rm_geometry_compute((4ull << 21) + 40000, 4096, &sb.geo), 0);
	n = sb.geo.nr_blocks;
	CHECK(n >= 1000000);
	memset(devs, 0, sizeof(devs));
	devs[0] = (struct rm_dev){ 1, RM_DEV_F_IN_USE, 1ull << 40, 0, 0, 0 };
	devs[1] = (struct rm_dev){ 2, RM_DEV_F_IN_USE, 1ull << 40, 0, 0, 0 };
	e = calloc(n, sizeof(*e));
	for (i = 0; i < n; i++) {
		e[i].state = RM_ENTRY_MAPPED;
		e[i].dev_id = 1 + (uint32_t)(i & 1);
		/* a permutation of block numbers, as if remapped at random */
		e[i].main_block = (i * 2654435761ull) % (1ull << 32);
	}
	e[123456] = e[999999];
	e[777] = e[n - 1];
	e[778] = e[n - 1];
	t = clock();
	ret = run_check(&sb, devs, e, n, &s);
	t = clock() - t;
	CHECK_EQ(ret, 3);
	CHECK(s.p[0].index == 777 || s.p[0].index == 778 ||
	      s.p[0].index == 999999);
	printf("     (1M-entry pool check: %.2f s)\n",
	       (double)t / CLOCKS_PER_SEC);
	CHECK((double)t / CLOCKS_PER_SEC < 10.0);
	free(e);
}
