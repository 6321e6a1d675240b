// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * rm_index.c - lock-free-readable remap index (linear probing, tombstones,
 * region filter).  See rm_index.h for the contract and
 * Documentation/design-index.md for the design.
 *
 * Publication protocol (single writer):
 *   new key:  region bit, val, counters with RM_WRITE_ONCE, then the key
 *             with RM_STORE_RELEASE;
 *   update:   RM_WRITE_ONCE(val) - state and spare in one store;
 *   reader:   RM_LOAD_ACQUIRE(key), then RM_READ_ONCE(val).
 * A slot's key never changes once set, so a reader probing from the home
 * slot finds every published key before the first empty slot.
 */
#include "rm_platform.h"
#include "rm_format.h"
#include "rm_index.h"

#if defined(__KERNEL__) && !defined(CONFIG_64BIT)
#error "rm_index needs untorn 64-bit loads and stores (64-bit kernel)"
#endif

#define RM_IX_STATE_SHIFT	32
#define RM_IX_SPARE_MASK	0xffffffffull

static inline uint64_t rm_ix_val(uint32_t spare, unsigned int state)
{
	return (uint64_t)state << RM_IX_STATE_SHIFT | spare;
}

static inline unsigned int rm_ix_state(uint64_t val)
{
	return (unsigned int)(val >> RM_IX_STATE_SHIFT);
}

/* splitmix64 finalizer: every input bit affects every output bit. */
static inline uint64_t rm_ix_hash(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Home slot: top 32 hash bits scaled to [0, cap) by multiply-shift. */
static inline uint32_t rm_ix_home(uint64_t key, uint32_t cap)
{
	return (uint32_t)(((rm_ix_hash(key) >> 32) * cap) >> 32);
}

/*
 * Reader probe: the slot holding key, or NULL.  Terminates because the
 * writer keeps at least one slot empty (load <= 3/4).
 */
static inline const struct rm_index_slot *
rm_ix_probe(const struct rm_index *ix, uint64_t key)
{
	const struct rm_index_slot *slots = ix->slots;
	uint32_t cap = ix->cap;
	uint32_t i = rm_ix_home(key, cap);
	uint64_t k;

	for (;;) {
		k = RM_LOAD_ACQUIRE(&slots[i].key);
		if (k == key)
			return &slots[i];
		if (!k)
			return NULL;
		if (++i == cap)
			i = 0;
	}
}

/*
 * Writer probe: index of the slot holding key or of the empty slot that
 * ends its probe sequence (*found tells which).  Plain loads: only the
 * writer stores to slots.
 */
static uint32_t rm_ix_find(const struct rm_index *ix, uint64_t key,
			   bool *found)
{
	uint32_t cap = ix->cap;
	uint32_t i = rm_ix_home(key, cap);
	uint64_t k;

	for (;;) {
		k = ix->slots[i].key;
		if (k == key || !k) {
			*found = k != 0;
			return i;
		}
		if (++i == cap)
			i = 0;
	}
}

/* Writer: set the region bit of block (before its key is published). */
static void rm_ix_region_set(struct rm_index *ix, uint64_t block)
{
	uint64_t r, w;

	if (!ix->region_words)
		return;
	r = rm_index_region_of(ix, block);
	w = ix->regions[r >> 6];
	if (!(w & (1ull << (r & 63))))
		RM_WRITE_ONCE(ix->regions[r >> 6], w | (1ull << (r & 63)));
}

/* Writer: put a new key into empty slot i. */
static void rm_ix_publish(struct rm_index *ix, uint32_t i, uint64_t key,
			  uint64_t val)
{
	struct rm_index_slot *s = &ix->slots[i];

	rm_ix_region_set(ix, key - 1);
	RM_WRITE_ONCE(s->val, val);
	RM_WRITE_ONCE(ix->live, ix->live + 1);
	RM_STORE_RELEASE(&s->key, key);
}

/* ---- Sizing ------------------------------------------------------------ */

uint32_t rm_index_cap_for(uint32_t n)
{
	uint32_t q = n / 3, r = n - q * 3;	/* 32-bit division only */
	uint64_t cap;

	if (n > RM_INDEX_MAX_ENTRIES)
		return 0;
	cap = (uint64_t)q * 5 + (r * 5 + 2) / 3;	/* ceil(5n / 3) */
	if (cap < RM_INDEX_MIN_CAP)
		cap = RM_INDEX_MIN_CAP;
	if (cap > RM_INDEX_MAX_CAP)
		cap = RM_INDEX_MAX_CAP;
	return (uint32_t)cap;
}

size_t rm_index_bytes(uint32_t cap)
{
	return (size_t)cap * sizeof(struct rm_index_slot);
}

uint32_t rm_index_filter_bits_for(uint32_t cap, uint32_t min_bits)
{
	uint64_t bits = (uint64_t)cap * RM_INDEX_FILTER_BITS_PER_SLOT;

	if (bits < min_bits)
		bits = min_bits;
	return bits > (1u << 31) ? 1u << 31 : (uint32_t)bits;
}

unsigned int rm_index_region_shift_for(uint64_t nr_main_blocks,
				       uint32_t max_bits)
{
	unsigned int shift = 0;

	if (!max_bits)
		max_bits = 1;
	if (!nr_main_blocks)
		return 0;
	while (shift < 63 && ((nr_main_blocks - 1) >> shift) >= max_bits)
		shift++;
	return shift;
}

uint32_t rm_index_region_words_for(uint64_t nr_main_blocks,
				   unsigned int region_shift)
{
	uint64_t nbits = 1;

	if (region_shift > 63)
		region_shift = 63;
	if (nr_main_blocks)
		nbits = ((nr_main_blocks - 1) >> region_shift) + 1;
	nbits = (nbits + 63) >> 6;
	return nbits > RM_U32_MAX ? RM_U32_MAX : (uint32_t)nbits;
}

/* ---- Writer side ------------------------------------------------------- */

int rm_index_init(struct rm_index *ix, struct rm_index_slot *slots,
		  uint32_t cap, uint64_t *regions, uint32_t region_words,
		  unsigned int region_shift)
{
	if (!ix || !slots || !cap || cap > RM_INDEX_MAX_CAP ||
	    region_shift > 63 || !regions != !region_words)
		return -RM_E_INVAL;
	memset(slots, 0, rm_index_bytes(cap));
	if (region_words)
		memset(regions, 0, (size_t)region_words * sizeof(*regions));
	ix->slots = slots;
	ix->cap = cap;
	ix->live = 0;
	ix->tombs = 0;
	ix->regions = regions;
	ix->region_words = region_words;
	ix->region_shift = region_shift;
	return 0;
}

int rm_index_set(struct rm_index *ix, uint64_t main_block, uint32_t spare,
		 unsigned int state)
{
	uint64_t key = main_block + 1;
	uint64_t val = rm_ix_val(spare, state);
	bool found;
	uint32_t i;

	if (main_block > RM_INDEX_MAX_BLOCK || state < RM_IX_MAPPED ||
	    state > RM_IX_BUSY)
		return -RM_E_INVAL;
	i = rm_ix_find(ix, key, &found);
	if (found) {
		if (rm_ix_state(ix->slots[i].val) == RM_IX_DELETED) {
			/* The bit is still set; setting it again is cheap. */
			rm_ix_region_set(ix, main_block);
			RM_WRITE_ONCE(ix->tombs, ix->tombs - 1);
			RM_WRITE_ONCE(ix->live, ix->live + 1);
		}
		RM_WRITE_ONCE(ix->slots[i].val, val);
		return 0;
	}
	/* (live + tombs + 1) > cap * 3/4, without overflow or division */
	if (((uint64_t)ix->live + ix->tombs + 1) * 4 > (uint64_t)ix->cap * 3)
		return -RM_E_FULL;
	rm_ix_publish(ix, i, key, val);
	return 0;
}

int rm_index_delete(struct rm_index *ix, uint64_t main_block)
{
	bool found;
	uint32_t i;

	if (main_block > RM_INDEX_MAX_BLOCK)
		return -RM_E_NOENT;
	i = rm_ix_find(ix, main_block + 1, &found);
	if (!found || rm_ix_state(ix->slots[i].val) == RM_IX_DELETED)
		return -RM_E_NOENT;
	RM_WRITE_ONCE(ix->slots[i].val, rm_ix_val(0, RM_IX_DELETED));
	RM_WRITE_ONCE(ix->live, ix->live - 1);
	RM_WRITE_ONCE(ix->tombs, ix->tombs + 1);
	return 0;
}

int rm_index_copy(struct rm_index *dst, const struct rm_index *src)
{
	const struct rm_index_slot *s;
	bool found;
	uint32_t i, j;

	if (dst == src || dst->live || dst->tombs)
		return -RM_E_INVAL;
	if ((uint64_t)src->live * 4 > (uint64_t)dst->cap * 3)
		return -RM_E_FULL;
	for (i = 0; i < src->cap; i++) {
		s = &src->slots[i];
		if (!s->key || rm_ix_state(s->val) == RM_IX_DELETED)
			continue;
		j = rm_ix_find(dst, s->key, &found);
		rm_ix_publish(dst, j, s->key, s->val);
	}
	return 0;
}

bool rm_index_wants_shrink(const struct rm_index *ix)
{
	/* 16 bytes of slot and 1 byte of filter per slot */
	uint64_t bytes = (uint64_t)ix->cap *
			 (sizeof(struct rm_index_slot) +
			  RM_INDEX_FILTER_BITS_PER_SLOT / 8);

	return ix->cap > RM_INDEX_MIN_CAP && bytes > (uint64_t)ix->live * 32;
}

/* ---- Reader side ------------------------------------------------------- */

int rm_index_lookup(const struct rm_index *ix, uint64_t main_block,
		    uint32_t *spare, unsigned int *state)
{
	const struct rm_index_slot *s;
	uint64_t val;

	if (main_block > RM_INDEX_MAX_BLOCK)
		return 0;
	s = rm_ix_probe(ix, main_block + 1);
	if (!s)
		return 0;
	val = RM_READ_ONCE(s->val);
	if (rm_ix_state(val) == RM_IX_DELETED)
		return 0;
	if (spare)
		*spare = (uint32_t)(val & RM_IX_SPARE_MASK);
	if (state)
		*state = rm_ix_state(val);
	return 1;
}

bool rm_index_may_contain(const struct rm_index *ix, uint64_t first_block,
			  uint64_t last_block)
{
	uint64_t r0, r1, w0, w1, w;

	/* Tombstones are not entries: live == 0 answers for the whole range. */
	if (!RM_READ_ONCE(ix->live) || first_block > last_block)
		return false;
	if (!ix->region_words)
		return true;
	r0 = rm_index_region_of(ix, first_block);
	r1 = rm_index_region_of(ix, last_block);
	w0 = r0 >> 6;
	w1 = r1 >> 6;
	if (w0 == w1)
		return (RM_READ_ONCE(ix->regions[w0]) &
			(~0ull << (r0 & 63)) & (~0ull >> (63 - (r1 & 63)))) != 0;
	if (RM_READ_ONCE(ix->regions[w0]) & (~0ull << (r0 & 63)))
		return true;
	for (w = w0 + 1; w < w1; w++)
		if (RM_READ_ONCE(ix->regions[w]))
			return true;
	return (RM_READ_ONCE(ix->regions[w1]) &
		(~0ull >> (63 - (r1 & 63)))) != 0;
}

/* One pass over all slots: the lowest live block in [first, last]. */
static int rm_ix_scan_range(const struct rm_index *ix, uint64_t first,
			    uint64_t last, uint64_t *found, uint64_t *fval)
{
	const struct rm_index_slot *s;
	uint64_t k, v, best = 0, bval = 0;
	uint32_t i;

	for (i = 0; i < ix->cap; i++) {
		s = &ix->slots[i];
		k = RM_LOAD_ACQUIRE(&s->key);
		/* k - 1 as a block; empty slots (k == 0) wrap and never match */
		if (k - 1 < first || k - 1 > last || (best && k >= best))
			continue;
		v = RM_READ_ONCE(s->val);
		if (rm_ix_state(v) == RM_IX_DELETED)
			continue;
		best = k;
		bval = v;
	}
	if (!best)
		return 0;
	*found = best - 1;
	*fval = bval;
	return 1;
}

/* rm_index_first_in_range() for ranges of more than one block. */
static int rm_ix_first_slow(const struct rm_index *ix, uint64_t first_block,
			    uint64_t last_block, uint64_t *found,
			    uint32_t *spare, unsigned int *state)
{
	const struct rm_index_slot *s;
	uint64_t b = first_block, end, r, rlast, val = 0;

	if (last_block - first_block >= ix->cap) {
		if (!rm_index_may_contain(ix, first_block, last_block) ||
		    !rm_ix_scan_range(ix, first_block, last_block, &b, &val))
			return 0;
		goto out;
	}
	/* Region by region: skip clear ones, look blocks up in the others. */
	for (;;) {
		end = last_block;
		if (ix->region_words) {
			rlast = ((uint64_t)ix->region_words << 6) - 1;
			r = b >> ix->region_shift;
			if (r < rlast) {
				r = b | ((1ull << ix->region_shift) - 1);
				if (r < end)
					end = r;
				r = b >> ix->region_shift;
			} else {
				r = rlast;	/* the last bit covers the rest */
			}
			if (!((RM_READ_ONCE(ix->regions[r >> 6]) >> (r & 63)) & 1))
				goto next;
		}
		for (;;) {
			s = rm_ix_probe(ix, b + 1);
			if (s) {
				val = RM_READ_ONCE(s->val);
				if (rm_ix_state(val) != RM_IX_DELETED)
					goto out;
			}
			if (b == end)
				break;
			b++;
		}
next:
		if (end == last_block)
			return 0;
		b = end + 1;
	}
out:
	if (found)
		*found = b;
	if (spare)
		*spare = (uint32_t)(val & RM_IX_SPARE_MASK);
	if (state)
		*state = rm_ix_state(val);
	return 1;
}

int rm_index_first_in_range(const struct rm_index *ix, uint64_t first_block,
			    uint64_t last_block, uint64_t *found,
			    uint32_t *spare, unsigned int *state)
{
	const struct rm_index_slot *s;
	uint64_t r, val;

	if (last_block > RM_INDEX_MAX_BLOCK)
		last_block = RM_INDEX_MAX_BLOCK;
	if (first_block > last_block || !RM_READ_ONCE(ix->live))
		return 0;
	/* The common miss: a range inside one region whose bit is clear. */
	if (ix->region_words &&
	    first_block >> ix->region_shift == last_block >> ix->region_shift) {
		r = rm_index_region_of(ix, first_block);
		if (!((RM_READ_ONCE(ix->regions[r >> 6]) >> (r & 63)) & 1))
			return 0;
	}
	if (first_block != last_block)
		return rm_ix_first_slow(ix, first_block, last_block, found,
					spare, state);
	/* One block: a plain lookup. */
	s = rm_ix_probe(ix, first_block + 1);
	if (!s)
		return 0;
	val = RM_READ_ONCE(s->val);
	if (rm_ix_state(val) == RM_IX_DELETED)
		return 0;
	if (found)
		*found = first_block;
	if (spare)
		*spare = (uint32_t)(val & RM_IX_SPARE_MASK);
	if (state)
		*state = rm_ix_state(val);
	return 1;
}

int rm_index_next(const struct rm_index *ix, uint32_t *pos,
		  uint64_t *main_block, uint32_t *spare, unsigned int *state)
{
	const struct rm_index_slot *s;
	uint64_t k, v;

	while (*pos < ix->cap) {
		s = &ix->slots[(*pos)++];
		k = RM_LOAD_ACQUIRE(&s->key);
		if (!k)
			continue;
		v = RM_READ_ONCE(s->val);
		if (rm_ix_state(v) == RM_IX_DELETED)
			continue;
		if (main_block)
			*main_block = k - 1;
		if (spare)
			*spare = (uint32_t)(v & RM_IX_SPARE_MASK);
		if (state)
			*state = rm_ix_state(v);
		return 1;
	}
	return 0;
}
