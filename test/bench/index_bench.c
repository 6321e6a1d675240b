// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * index_bench - speed and size of the remap index (common/rm_index.c).
 *
 *   index_bench [SIZE...]            timing table (default 1000 100000 1000000)
 *   index_bench --callgrind N --size S --kind K
 *                                    build the index of S entries, then do
 *                                    exactly N operations of kind K (for
 *                                    valgrind --tool=callgrind; N = 0 is the
 *                                    baseline to subtract)
 *
 * The device is 1 TiB of 4 KiB blocks (2^28 main blocks), remaps are at
 * uniformly random blocks.  The table is grown the way the kernel does it:
 * insert until -RM_E_FULL, copy into rm_index_cap_for(live + 1), with a
 * region filter sized as the kernel sizes it: rm_index_filter_bits_for(cap,
 * 2^16) bits at most (8 KiB, regions of 4096 blocks, at the start; one
 * byte per slot as the table grows).
 *
 * Kinds, each the map-function call rm_index_first_in_range(b, b + len - 1):
 *   hit    b is a remapped block (len 1)
 *   far    b is a uniformly random block that is not remapped (len 1)
 *   near   b is 1..16 blocks from a remapped block, not remapped (len 1)
 *   bio32  b uniformly random, len 32 (a 128 KiB bio)
 *   raw    rm_index_lookup(b) of a random non-remapped block (no filter)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rm_platform.h"
#include "rm_format.h"
#include "rm_index.h"

#define NR_BLOCKS	(1ull << 28)
#define MIN_BITS	(1u << 16)	/* the kernel's PDEV_REGION_BITS */
#define NQ		(1u << 20)	/* queries per kind, cycled */

enum kind { K_HIT, K_FAR, K_NEAR, K_BIO32, K_RAW, K_NR };
static const char * const kind_names[K_NR] = {
	"hit", "far", "near", "bio32", "raw"
};

struct table {
	struct rm_index ix;
	struct rm_index_slot *slots;
	uint64_t *regions;
};

static uint64_t rng = 12345;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void table_init(struct table *t, uint32_t cap)
{
	unsigned int shift = rm_index_region_shift_for(NR_BLOCKS,
				rm_index_filter_bits_for(cap, MIN_BITS));
	uint32_t words = rm_index_region_words_for(NR_BLOCKS, shift);

	t->slots = malloc(rm_index_bytes(cap));
	t->regions = malloc(words * sizeof(uint64_t));
	if (!t->slots || !t->regions ||
	    rm_index_init(&t->ix, t->slots, cap, t->regions, words, shift)) {
		fprintf(stderr, "init failed\n");
		exit(1);
	}
}

static void table_build(struct table *t, uint32_t n, uint64_t *keys)
{
	struct table nt;
	uint32_t i = 0;
	uint64_t b;
	int ret;

	table_init(t, rm_index_cap_for(0));
	while (i < n) {
		b = rnd() & (NR_BLOCKS - 1);
		ret = rm_index_set(&t->ix, b, i, RM_IX_MAPPED);
		if (ret == -RM_E_FULL) {
			table_init(&nt, rm_index_cap_for(t->ix.live + 1));
			if (rm_index_copy(&nt.ix, &t->ix))
				exit(1);
			free(t->slots);
			free(t->regions);
			*t = nt;
			ret = rm_index_set(&t->ix, b, i, RM_IX_MAPPED);
		}
		if (ret)
			exit(1);
		if (t->ix.live > i)	/* skip duplicates */
			keys[i++] = b;
	}
}

/* Query blocks for every kind; independent of the operation count. */
static void make_queries(const struct table *t, const uint64_t *keys,
			 uint32_t n, uint64_t *q[K_NR])
{
	uint64_t b, d;
	uint32_t i, k;

	for (k = 0; k < K_NR; k++)
		q[k] = malloc(NQ * sizeof(uint64_t));
	for (i = 0; i < NQ; i++) {
		q[K_HIT][i] = keys[rnd() % n];
		do
			b = rnd() & (NR_BLOCKS - 1);
		while (rm_index_lookup(&t->ix, b, NULL, NULL));
		q[K_FAR][i] = b;
		q[K_RAW][i] = b;
		do {
			d = 1 + rnd() % 16;
			b = keys[rnd() % n];
			b = (rnd() & 1) ? b + d : b - d;	/* may wrap: retried */
		} while (b >= NR_BLOCKS ||
			 rm_index_lookup(&t->ix, b, NULL, NULL));
		q[K_NEAR][i] = b;
		q[K_BIO32][i] = rnd() & (NR_BLOCKS - 1) & ~31ull;
	}
}

static uint64_t run(const struct table *t, enum kind k, const uint64_t *q,
		    uint64_t nops)
{
	uint64_t i, sum = 0, found = 0;
	uint32_t spare = 0;
	unsigned int state = 0;
	uint64_t len = k == K_BIO32 ? 31 : 0;

	if (k == K_RAW) {
		for (i = 0; i < nops; i++)
			sum += rm_index_lookup(&t->ix, q[i & (NQ - 1)], &spare,
					       &state) + spare;
		return sum;
	}
	for (i = 0; i < nops; i++) {
		uint64_t b = q[i & (NQ - 1)];

		sum += rm_index_first_in_range(&t->ix, b, b + len, &found,
					       &spare, &state) + spare;
	}
	return sum;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Average probe length of hits (slots visited), for the report. */
static double avg_probe(const struct table *t)
{
	const struct rm_index *ix = &t->ix;
	uint64_t total = 0, n = 0, key, h;
	uint32_t i, home;

	for (i = 0; i < ix->cap; i++) {
		key = ix->slots[i].key;
		if (!key)
			continue;
		h = key;
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
		h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
		h ^= h >> 31;
		home = (uint32_t)(((h >> 32) * ix->cap) >> 32);
		total += (i >= home ? i - home : i + ix->cap - home) + 1;
		n++;
	}
	return n ? (double)total / n : 0;
}

static int filter_pct(const struct table *t)
{
	uint64_t set = 0;
	uint32_t w;

	for (w = 0; w < t->ix.region_words; w++)
		set += __builtin_popcountll(t->regions[w]);
	return (int)(set * 100 / ((uint64_t)t->ix.region_words * 64));
}

static volatile uint64_t sink;

static void timing(uint32_t n)
{
	uint64_t *keys = malloc(n * sizeof(uint64_t)), *q[K_NR];
	struct table t;
	double rate[K_NR], t0, dt;
	uint64_t nops;
	int k;

	table_build(&t, n, keys);
	make_queries(&t, keys, n, q);
	for (k = 0; k < K_NR; k++) {
		sink += run(&t, k, q[k], NQ);	/* warm up */
		nops = NQ;
		for (;;) {
			t0 = now();
			sink += run(&t, k, q[k], nops);
			dt = now() - t0;
			if (dt > 0.25)
				break;
			nops *= 2;
		}
		rate[k] = nops / dt;
	}
	printf("%u %u %.3f %.2f %.2f %d %.0f %.0f %.0f %.0f %.0f %zu\n",
	       n, t.ix.cap, (double)t.ix.live / t.ix.cap,
	       (double)rm_index_bytes(t.ix.cap) / t.ix.live, avg_probe(&t),
	       filter_pct(&t), rate[K_HIT], rate[K_FAR], rate[K_NEAR],
	       rate[K_BIO32], rate[K_RAW],
	       (size_t)t.ix.region_words * sizeof(uint64_t));
	for (k = 0; k < K_NR; k++)
		free(q[k]);
	free(keys);
	free(t.slots);
	free(t.regions);
}

int main(int argc, char **argv)
{
	uint64_t *keys, *q[K_NR], nops = 0;
	uint32_t size = 0;
	int i, kind = -1, k;
	struct table t;

	if (argc > 1 && !strcmp(argv[1], "--callgrind")) {
		for (i = 1; i + 1 < argc; i += 2) {
			if (!strcmp(argv[i], "--callgrind"))
				nops = strtoull(argv[i + 1], NULL, 0);
			else if (!strcmp(argv[i], "--size"))
				size = strtoul(argv[i + 1], NULL, 0);
			else if (!strcmp(argv[i], "--kind"))
				for (k = 0; k < K_NR; k++)
					if (!strcmp(argv[i + 1], kind_names[k]))
						kind = k;
		}
		if (!size || kind < 0) {
			fprintf(stderr, "usage: %s --callgrind N --size S --kind hit|far|near|bio32|raw\n",
				argv[0]);
			return 2;
		}
		keys = malloc(size * sizeof(uint64_t));
		table_build(&t, size, keys);
		make_queries(&t, keys, size, q);
		sink = run(&t, kind, q[kind], nops);
		return 0;
	}
	printf("# entries cap load slot_bytes/entry avg_probe regions_set%% hit/s far/s near/s bio32/s raw_miss/s filter_bytes\n");
	if (argc == 1) {
		timing(1000);
		timing(100000);
		timing(1000000);
	}
	for (i = 1; i < argc; i++)
		timing(strtoul(argv[i], NULL, 0));
	return 0;
}
