// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * rm_layout.c - where things live on the spare device: pool geometry, table
 * slot placement, the load rule (which slot wins), the table digest and the
 * next commit sequence number.  See rm_format.h.
 */
#include "rm_platform.h"
#include "rm_endian.h"
#include "rm_format.h"

/* *r = a + b; false on u64 overflow. */
static bool rm_add_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	if (a > RM_U64_MAX - b)
		return false;
	*r = a + b;
	return true;
}

/* *r = a << shift; false on u64 overflow (shift < 64). */
static bool rm_shl_ok(uint64_t a, unsigned int shift, uint64_t *r)
{
	if (a > (RM_U64_MAX >> shift))
		return false;
	*r = a << shift;
	return true;
}

/* ---- Geometry ------------------------------------------------------------ */

bool rm_block_size_valid(uint32_t block_size)
{
	return block_size >= RM_MIN_BLOCK_SIZE &&
	       block_size <= RM_MAX_BLOCK_SIZE &&
	       !(block_size & (block_size - 1));
}

unsigned int rm_block_sector_shift(uint32_t block_size)
{
	unsigned int shift = 0;

	while ((RM_MIN_BLOCK_SIZE << shift) < block_size)
		shift++;
	return shift;
}

uint64_t rm_nr_logical_for(uint64_t nr_blocks)
{
	uint32_t n = (uint32_t)nr_blocks;	/* <= RM_MAX_BLOCKS */

	return RM_FIRST_ENTRY_LOGICAL + (uint64_t)(n / RM_ENTRIES_PER_BLOCK) +
	       (n % RM_ENTRIES_PER_BLOCK ? 1 : 0);
}

/*
 * First data sector for a pool of nr_blocks blocks: metadata end rounded
 * up to a block boundary.  Small numbers only (nr_blocks <= RM_MAX_BLOCKS):
 * the metadata area is below 2^27 md blocks, so nothing overflows here.
 */
static uint64_t rm_data_start_for(uint64_t nr_blocks, unsigned int shift)
{
	uint64_t md_blocks = RM_TABLE_START +
			     RM_MD_SLOTS * rm_nr_logical_for(nr_blocks);
	uint64_t mask = ((uint64_t)1 << shift) - 1;

	return (md_blocks * RM_MD_BLOCK_SECTORS + mask) & ~mask;
}

/* Does a pool of nr_blocks blocks fit on dev_sectors? */
static bool rm_fits(uint64_t nr_blocks, unsigned int shift,
		    uint64_t dev_sectors)
{
	uint64_t end;

	return rm_add_ok(rm_data_start_for(nr_blocks, shift),
			 nr_blocks << shift, &end) && end <= dev_sectors;
}

int rm_geometry_compute(uint64_t dev_sectors, uint32_t block_size,
			struct rm_geometry *g)
{
	uint64_t lo = RM_MIN_DATA_BLOCKS, hi, mid;
	unsigned int shift;

	if (!rm_block_size_valid(block_size))
		return -RM_E_BLOCK_SIZE;
	shift = rm_block_sector_shift(block_size);
	hi = dev_sectors >> shift;
	if (hi > RM_MAX_BLOCKS)
		hi = RM_MAX_BLOCKS;
	if (hi < lo || !rm_fits(lo, shift, dev_sectors))
		return -RM_E_TOO_SMALL;
	/* rm_fits is monotonic in nr_blocks: find the largest that fits. */
	while (lo < hi) {
		mid = lo + (hi - lo + 1) / 2;
		if (rm_fits(mid, shift, dev_sectors))
			lo = mid;
		else
			hi = mid - 1;
	}
	g->block_size = block_size;
	g->dev_sectors = dev_sectors;
	g->table_start = RM_TABLE_START;
	g->nr_logical = rm_nr_logical_for(lo);
	g->data_start = rm_data_start_for(lo, shift);
	g->nr_blocks = lo;
	return 0;
}

/* Metadata end in sectors; false if it overflows. */
static bool rm_md_end_ok(const struct rm_geometry *g, uint64_t *end)
{
	uint64_t slots, blocks;

	return rm_shl_ok(g->nr_logical, 2, &slots) &&	/* * RM_MD_SLOTS */
	       rm_add_ok(g->table_start, slots, &blocks) &&
	       rm_shl_ok(blocks, 3, end);		/* * 8 sectors */
}

uint64_t rm_md_end_sector(const struct rm_geometry *g)
{
	uint64_t end = 0;

	rm_md_end_ok(g, &end);
	return end;
}

int rm_geometry_check(const struct rm_geometry *g)
{
	uint64_t md_end, data_sectors, end;
	unsigned int shift;

	if (!rm_block_size_valid(g->block_size))
		return -RM_E_BLOCK_SIZE;
	shift = rm_block_sector_shift(g->block_size);
	if (g->nr_blocks < RM_MIN_DATA_BLOCKS || g->nr_blocks > RM_MAX_BLOCKS)
		return -RM_E_GEOMETRY;
	if (g->nr_logical != rm_nr_logical_for(g->nr_blocks))
		return -RM_E_GEOMETRY;
	if (g->table_start < RM_SB_COPIES || !rm_md_end_ok(g, &md_end))
		return -RM_E_GEOMETRY;
	if (g->data_start < md_end ||
	    (g->data_start & (((uint64_t)1 << shift) - 1)))
		return -RM_E_GEOMETRY;
	if (!rm_shl_ok(g->nr_blocks, shift, &data_sectors) ||
	    !rm_add_ok(g->data_start, data_sectors, &end) ||
	    end > g->dev_sectors)
		return -RM_E_GEOMETRY;
	return 0;
}

/* ---- Slots --------------------------------------------------------------- */

uint64_t rm_slot_blocknr(const struct rm_geometry *g, uint32_t logical,
			 unsigned int slot)
{
	return g->table_start + rm_slot_copy(slot) * (g->nr_logical * 2) +
	       (uint64_t)logical * 2 + rm_slot_pair(slot);
}

int rm_slot_locate(const struct rm_geometry *g, uint64_t blocknr,
		   uint32_t *logical, unsigned int *slot)
{
	uint64_t span = g->nr_logical * 2;	/* md blocks of one copy */
	uint64_t off;
	unsigned int copy = 0;

	if (blocknr < g->table_start)
		return -RM_E_LOCATION;
	off = blocknr - g->table_start;
	if (off >= span) {
		off -= span;
		copy = 1;
	}
	if (off >= span)
		return -RM_E_LOCATION;
	*logical = (uint32_t)(off >> 1);
	*slot = rm_slot_index((unsigned int)(off & 1), copy);
	return 0;
}

uint32_t rm_entries_in_logical(const struct rm_geometry *g, uint32_t logical)
{
	uint64_t first, left;

	if (logical < RM_FIRST_ENTRY_LOGICAL || logical >= g->nr_logical)
		return 0;
	first = (uint64_t)(logical - RM_FIRST_ENTRY_LOGICAL) *
		RM_ENTRIES_PER_BLOCK;
	if (first >= g->nr_blocks)
		return 0;
	left = g->nr_blocks - first;
	return left < RM_ENTRIES_PER_BLOCK ? (uint32_t)left :
					     RM_ENTRIES_PER_BLOCK;
}

/* ---- Load rule ----------------------------------------------------------- */

int rm_pick_slot(const struct rm_slot_state s[RM_MD_SLOTS], uint64_t sb_seq,
		 struct rm_pick *out)
{
	const struct rm_slot_state *twin;
	unsigned int i;
	bool found = false;

	out->slot = 0;
	out->seq = 0;
	out->max_seq = 0;
	out->rewrite = false;
	for (i = 0; i < RM_MD_SLOTS; i++) {
		if (!s[i].valid)
			continue;
		if (s[i].seq > out->max_seq)
			out->max_seq = s[i].seq;
		if (s[i].seq > sb_seq) {
			out->rewrite = true;	/* interrupted commit */
			continue;
		}
		if (!found || s[i].seq > out->seq) {
			out->slot = i;
			out->seq = s[i].seq;
			found = true;
		}
	}
	if (!found)
		return -RM_E_NO_VALID;
	twin = &s[rm_slot_index(rm_slot_pair(out->slot),
				rm_slot_copy(out->slot) ^ 1)];
	if (!twin->valid || twin->seq != out->seq)
		out->rewrite = true;
	return 0;
}

int rm_sb_pick(const struct rm_slot_state *s, unsigned int n)
{
	unsigned int i;
	int best = -RM_E_NO_VALID;

	for (i = 0; i < n; i++)
		if (s[i].valid && (best < 0 || s[i].seq > s[best].seq))
			best = (int)i;
	return best;
}

int rm_next_seq(uint64_t sb_seq, uint64_t max_seen, uint64_t *next)
{
	uint64_t top = sb_seq > max_seen ? sb_seq : max_seen;

	if (top >= RM_SEQ_LAST)
		return -RM_E_SEQ;
	*next = top + 1;
	return 0;
}

/* ---- Table digest -------------------------------------------------------- */

uint32_t rm_digest_update(uint32_t state, uint64_t seq)
{
	uint8_t le[8];

	rm_put_le64(le, seq);
	return rm_crc32c(state, le, sizeof(le));
}

uint32_t rm_digest_final(uint32_t state)
{
	return ~state;
}

uint32_t rm_digest_seqs(uint32_t state, const uint64_t *seqs, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		state = rm_digest_update(state, seqs[i]);
	return state;
}

uint32_t rm_table_digest(const uint64_t *seqs, uint64_t n)
{
	return rm_digest_final(rm_digest_seqs(RM_DIGEST_INIT, seqs, n));
}

/*
 * Polynomials over GF(2) modulo the CRC32C polynomial, in the CRC
 * register's reflected order: bit 31 is the coefficient of x^0, bit 0 that
 * of x^31.  Shifting right multiplies by x.
 */
#define RM_CRC32C_POLY	0x82F63B78u
#define RM_GF_ONE	0x80000000u

static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	uint32_t p = 0;
	unsigned int i;

	for (i = 0; i < 32; i++) {
		if (a & (RM_GF_ONE >> i))
			p ^= b;		/* + a_i x^i b */
		b = (b & 1) ? (b >> 1) ^ RM_CRC32C_POLY : b >> 1;
	}
	return p;
}

uint32_t rm_crc32c_zeros(uint32_t crc, uint64_t len)
{
	static const uint8_t zeros[64];
	uint32_t x8 = RM_GF_ONE >> 8;	/* x^8: one zero byte */

	/* A CRC register fed a zero byte is multiplied by x^8. */
	if (len <= sizeof(zeros))
		return rm_crc32c(crc, zeros, (size_t)len);
	for (; len; len >>= 1) {
		if (len & 1)
			crc = gf_mul(crc, x8);
		x8 = gf_mul(x8, x8);
	}
	return crc;
}

void rm_digest_delta_init(struct rm_digest_delta *dd)
{
	dd->state = 0;
	dd->next = 0;
}

/*
 * The register is linear in the message: the digest of seqs with seq l
 * changed is the old one plus the register of a message that is zero but
 * for old ^ new at l.  That message is built here, zeros between the
 * changes added at once.
 */
void rm_digest_delta_add(struct rm_digest_delta *dd, uint64_t l,
			 uint64_t old_seq, uint64_t new_seq)
{
	dd->state = rm_crc32c_zeros(dd->state, (l - dd->next) * 8);
	dd->state = rm_digest_update(dd->state, old_seq ^ new_seq);
	dd->next = l + 1;
}

uint32_t rm_digest_delta_apply(const struct rm_digest_delta *dd,
			       uint32_t state, uint64_t n)
{
	return state ^ rm_crc32c_zeros(dd->state, (n - dd->next) * 8);
}
