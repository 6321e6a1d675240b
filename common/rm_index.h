/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * rm_index.h - in-memory remap index: main block -> (spare block, state).
 *
 * One index per main device.  The map function looks blocks up without a
 * lock; one writer at a time changes the index.  Documentation/design-index.md
 * has the reasoning and the measured numbers.
 *
 * Structure
 *   Open addressing, linear probing, no displacement.  A slot is
 *   { key, val }, 16 bytes:  key = main_block + 1 (0 = empty slot), so
 *   main_block must be <= RM_INDEX_MAX_BLOCK;  val = state << 32 | spare.
 *   The home slot of a key is ((hash(key) >> 32) * cap) >> 32, so the
 *   capacity need not be a power of two (1 <= cap <= RM_INDEX_MAX_CAP).
 *   Keys never move once inserted.  Deleting an entry leaves a tombstone
 *   (key kept, state RM_IX_DELETED); only the same main block can bring it
 *   back to life.  rm_index_copy() into a fresh table drops tombstones.
 *
 * Load policy and memory bound
 *   rm_index_set() refuses a new key with -RM_E_FULL, changing nothing,
 *   when (live + tombs + 1) > 3/4 cap, so a probe always ends at an empty
 *   slot and probe sequences stay short.  The caller then builds a new
 *   table of rm_index_cap_for(live + 1) slots (load ~0.6), fills it with
 *   rm_index_copy(), publishes it and retries.  After a delete the caller
 *   checks rm_index_wants_shrink() and, if true, rebuilds the same way with
 *   rm_index_cap_for(live).  A table sizes its region filter with
 *   rm_index_filter_bits_for(): one byte of bitmap per slot on top of a
 *   fixed per-device minimum.  With that policy slots and the per-slot
 *   bitmap never use more than 32 bytes per live entry (17 * cap <= 32 *
 *   live) except for tables of the minimum capacity RM_INDEX_MIN_CAP
 *   (1 KiB).  Right after a rebuild it is ~28.3 bytes per entry, at the
 *   grow threshold ~22.7.
 *
 * Region filter
 *   An optional bitmap (caller memory, uint64_t words) with one bit per
 *   region of 2^region_shift main blocks.  A bit is set before any key of
 *   its region is published and is only cleared by building a new table,
 *   so a clear bit means no entry of that region (no false negatives).
 *   Blocks past the end of the bitmap share its last bit.
 *   rm_index_filter_bits_for(), rm_index_region_shift_for() and
 *   rm_index_region_words_for() size it.  The filter grows finer with the
 *   table (RM_INDEX_FILTER_BITS_PER_SLOT bits per slot, down to one bit
 *   per block), so that at most about one bit in eight is set and a bio
 *   away from any remap seldom pays a hash lookup.
 *
 * Concurrency contract
 *   - Writers (rm_index_init, _set, _delete, _copy into dst) must be
 *     serialized by the caller (in the kernel: a mutex or spinlock).
 *   - Readers (_lookup, _may_contain, _first_in_range, _next) take no
 *     lock and may run concurrently with the writer.  In the kernel they
 *     must run inside an RCU read-side section (or equivalent) that keeps
 *     the table memory alive: an index is replaced by publishing a new
 *     struct rm_index with rcu_assign_pointer() and freeing the old one
 *     after a grace period.  The struct fields slots, cap, regions,
 *     region_words and region_shift never change after rm_index_init().
 *   - A reader sees each entry either before or after any single set or
 *     delete, never a mix: spare and state are one 64-bit store.  A new
 *     key's val and region bit are stored before the key is published
 *     with a release store; readers load keys with acquire.  Each read
 *     operation is atomic per entry only: a reader racing with a writer
 *     may see some changes and not others (an answer is the state at
 *     some instant during the call).  Callers that need "no I/O is still
 *     using the old mapping" must drain in-flight I/O themselves.
 *   - Needs 64-bit loads and stores that do not tear: 64-bit kernels only.
 *
 * Return values: 0 or a negative RM_E_* code (rm_format.h) unless stated.
 */
#ifndef RM_INDEX_H
#define RM_INDEX_H

#include "rm_platform.h"
#include "rm_format.h"

/* Entry states (val bits 32..39).  0 never appears in a used slot. */
enum rm_index_state {
	RM_IX_MAPPED = 1,	/* data lives in the spare block */
	RM_IX_PENDING = 2,	/* main block lost, spare reserved, no data */
	RM_IX_BUSY = 3,		/* block being migrated: defer I/O to it */
	RM_IX_DELETED = 0xff,	/* tombstone: not an entry */
};

#define RM_INDEX_MAX_BLOCK	((1ull << 63) - 1)	/* largest main block */
#define RM_INDEX_MIN_CAP	64u		/* rm_index_cap_for() minimum */
#define RM_INDEX_MAX_CAP	(1u << 31)
/* Most live entries a table may hold: 3/4 of RM_INDEX_MAX_CAP. */
#define RM_INDEX_MAX_ENTRIES	(RM_INDEX_MAX_CAP / 4 * 3)

struct rm_index_slot {
	uint64_t key;		/* main block + 1; 0 = empty */
	uint64_t val;		/* state << 32 | spare */
};

struct rm_index {
	struct rm_index_slot *slots;	/* cap slots, caller memory */
	uint32_t cap;
	uint32_t live;			/* entries not deleted */
	uint32_t tombs;			/* tombstones */
	uint32_t region_words;		/* 0: no region filter */
	uint64_t *regions;		/* region_words words, caller memory */
	unsigned int region_shift;	/* blocks per region = 2^region_shift */
};

/* ---- Sizing (pure functions) ---------------------------------------- */

/*
 * Capacity for a table that is to hold n live entries at a load of about
 * 0.6: max(RM_INDEX_MIN_CAP, ceil(5n / 3)).  0 if n > RM_INDEX_MAX_ENTRIES.
 */
uint32_t rm_index_cap_for(uint32_t n);

/* Bytes of slot memory for cap slots. */
size_t rm_index_bytes(uint32_t cap);

/* Region bits per slot a table's filter is sized for (one byte per slot). */
#define RM_INDEX_FILTER_BITS_PER_SLOT	8u

/*
 * Most region bits for a table of cap slots: RM_INDEX_FILTER_BITS_PER_SLOT
 * per slot, at least min_bits (the caller's fixed per-device minimum), at
 * most 2^31.  Pass it as max_bits to rm_index_region_shift_for().
 */
uint32_t rm_index_filter_bits_for(uint32_t cap, uint32_t min_bits);

/*
 * Smallest region shift such that blocks 0..nr_main_blocks-1 fit in
 * max_bits regions (max_bits 0 is taken as 1; result <= 63).
 */
unsigned int rm_index_region_shift_for(uint64_t nr_main_blocks,
				       uint32_t max_bits);

/* Bitmap words needed for nr_main_blocks at region_shift (at least 1). */
uint32_t rm_index_region_words_for(uint64_t nr_main_blocks,
				   unsigned int region_shift);

/* ---- Writer side (serialized by the caller) ------------------------- */

/*
 * Set up an empty index over caller memory and zero that memory: slots
 * holds rm_index_bytes(cap) bytes, regions region_words words.  regions
 * may be NULL with region_words 0 (no filter: rm_index_may_contain()
 * then answers from the entry count only).  -RM_E_INVAL for cap 0 or
 * above RM_INDEX_MAX_CAP, region_shift > 63 or inconsistent pointers.
 */
int rm_index_init(struct rm_index *ix, struct rm_index_slot *slots,
		  uint32_t cap, uint64_t *regions, uint32_t region_words,
		  unsigned int region_shift);

/*
 * Insert or update main_block -> (spare, state); state is RM_IX_MAPPED,
 * RM_IX_PENDING or RM_IX_BUSY.  An update (including reviving a
 * tombstone of the same block) never fails.  A new key fails with
 * -RM_E_FULL (nothing changed) when the table is at its load limit.
 * -RM_E_INVAL for a bad state or main_block > RM_INDEX_MAX_BLOCK.
 */
int rm_index_set(struct rm_index *ix, uint64_t main_block, uint32_t spare,
		 unsigned int state);

/* Delete an entry (leaves a tombstone).  -RM_E_NOENT if not present. */
int rm_index_delete(struct rm_index *ix, uint64_t main_block);

/*
 * Copy all live entries of src into dst, which must be freshly
 * initialized (no entries, no tombstones; -RM_E_INVAL otherwise) and
 * able to hold them within the load limit (-RM_E_FULL otherwise;
 * rm_index_cap_for() sizes it).  dst's region bits are recomputed from
 * the copied entries and dst's own region geometry.  src is only read;
 * the caller must hold the writer lock so that src does not change.
 */
int rm_index_copy(struct rm_index *dst, const struct rm_index *src);

/*
 * True when the table uses more than 32 bytes of slots and per-slot filter
 * per live entry (17 * cap > 32 * live) and is bigger than
 * RM_INDEX_MIN_CAP: the caller should rebuild it with
 * rm_index_cap_for(live) slots.
 */
bool rm_index_wants_shrink(const struct rm_index *ix);

/* ---- Reader side (lock-free, see the concurrency contract) ---------- */

/*
 * Look main_block up.  Returns 1 and fills *spare and *state (either may
 * be NULL) if it has an entry, 0 if not (never inserted or deleted).
 * Does not consult the region filter.
 */
int rm_index_lookup(const struct rm_index *ix, uint64_t main_block,
		    uint32_t *spare, unsigned int *state);

/*
 * False if no block in [first_block, last_block] can have an entry
 * (region filter and entry count); true if one may.  Usually two loads.
 */
bool rm_index_may_contain(const struct rm_index *ix, uint64_t first_block,
			  uint64_t last_block);

/* Region bit of a block; blocks past the bitmap share its last bit. */
static inline uint64_t rm_index_region_of(const struct rm_index *ix,
					  uint64_t block)
{
	uint64_t nbits = (uint64_t)ix->region_words << 6;
	uint64_t r = block >> ix->region_shift;

	return r < nbits ? r : nbits - 1;
}

/*
 * rm_index_may_contain(ix, main_block, main_block), inline for the map
 * function: false if the index is empty or the block's region bit is clear.
 */
static inline bool rm_index_block_may_have(const struct rm_index *ix,
					   uint64_t main_block)
{
	uint64_t r;

	if (!RM_READ_ONCE(ix->live))
		return false;
	if (!ix->region_words)
		return true;
	r = rm_index_region_of(ix, main_block);
	return (RM_READ_ONCE(ix->regions[r >> 6]) >> (r & 63)) & 1;
}

/*
 * The lowest block in [first_block, last_block] that has an entry.
 * Returns 1 and fills *found, *spare, *state (any may be NULL), or 0 if
 * there is none or first_block > last_block.  Skips regions whose bit is
 * clear, then looks blocks up one by one; ranges of cap or more blocks
 * are answered by one pass over the slots instead.
 */
int rm_index_first_in_range(const struct rm_index *ix, uint64_t first_block,
			    uint64_t last_block, uint64_t *found,
			    uint32_t *spare, unsigned int *state);

/*
 * Iterate over the entries in slot order: start with *pos = 0; each call
 * returns 1 with the next entry (output pointers may be NULL) and
 * advances *pos, or 0 at the end.  Each slot is visited once; entries
 * set or deleted during the walk may or may not be seen.
 */
int rm_index_next(const struct rm_index *ix, uint32_t *pos,
		  uint64_t *main_block, uint32_t *spare, unsigned int *state);

#endif /* RM_INDEX_H */
