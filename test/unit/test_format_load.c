// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The commit protocol and load rule of Documentation/on-disk-format.md,
 * played on an in-memory metadata area: a reference for the module's
 * metadata engine and a test that the format's helpers fit together.
 */
#include <stdlib.h>
#include "unit.h"
#include "../../common/rm_platform.h"
#include "../../common/rm_format.h"

#define SIM_SECTORS	(4 * 2048)	/* 4 MiB spare, 4 KiB blocks */
#define SIM_MD_BLOCKS	48		/* 8 sb + 4 * 10 logicals */
#define SIM_LOGICAL	10		/* devtable, 5 names, 4 entries */
#define SIM_BLOCKS	976
#define EL0		RM_FIRST_ENTRY_LOGICAL	/* holds entry 10 */

struct sim {
	uint8_t md[SIM_MD_BLOCKS][RM_MD_BLOCK_SIZE];
	struct rm_sb sb;
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_name names[RM_MAX_DEVS];
	struct rm_entry entries[SIM_BLOCKS];
	uint64_t seq[SIM_LOGICAL];	/* seq of the current copy */
	unsigned int pair[SIM_LOGICAL];	/* pair holding the current copy */
	bool dirty[SIM_LOGICAL];
	uint64_t next_seq;
};

static uint8_t tmp[RM_MD_BLOCK_SIZE];

/* Write logical l to both copies of its inactive pair. */
static void sim_write_logical(struct sim *s, uint32_t l, uint64_t seq)
{
	struct rm_tblock_hdr h = { 0 };
	unsigned int pair = 1 - s->pair[l];
	int ret;

	h.logical = l;
	h.seq = seq;
	h.blocknr = rm_slot_blocknr(&s->sb.geo, l, rm_slot_index(pair, 0));
	memcpy(h.uuid, s->sb.uuid, RM_UUID_SIZE);
	ret = rm_tblock_encode(tmp, &h, &s->sb.geo, s->devs, s->names,
			       s->entries);
	if (ret)
		abort();
	memcpy(s->md[h.blocknr], tmp, RM_MD_BLOCK_SIZE);
	h.blocknr = rm_slot_blocknr(&s->sb.geo, l, rm_slot_index(pair, 1));
	rm_tblock_relocate(tmp, h.blocknr);
	memcpy(s->md[h.blocknr], tmp, RM_MD_BLOCK_SIZE);
	s->pair[l] = pair;
	s->seq[l] = seq;
}

/* Commit the dirty logicals; write_sb = false simulates a crash before it. */
static void sim_commit(struct sim *s, bool write_sb)
{
	uint64_t seq = s->next_seq++;
	uint32_t l, c;

	for (l = 0; l < SIM_LOGICAL; l++)
		if (s->dirty[l])
			sim_write_logical(s, l, seq);
	/* (flush) */
	if (!write_sb)
		return;
	for (l = 0; l < SIM_LOGICAL; l++)
		s->dirty[l] = false;
	s->sb.seq = seq;
	s->sb.table_digest = rm_table_digest(s->seq, SIM_LOGICAL);
	for (c = 0; c < RM_SB_COPIES; c++)	/* (FUA) */
		if (rm_sb_encode(s->md[rm_sb_blocknr(c)], &s->sb, c))
			abort();
}

static void sim_format(struct sim *s)
{
	uint32_t l;

	memset(s, 0, sizeof(*s));
	if (rm_geometry_compute(SIM_SECTORS, 4096, &s->sb.geo) ||
	    s->sb.geo.nr_logical != SIM_LOGICAL ||
	    s->sb.geo.nr_blocks != SIM_BLOCKS ||
	    rm_md_end_sector(&s->sb.geo) != SIM_MD_BLOCKS * 8)
		abort();
	memcpy(s->sb.uuid, "0123456789abcdef", RM_UUID_SIZE);
	s->devs[0] = (struct rm_dev){ 1, RM_DEV_F_IN_USE, 1 << 20, 0, 0, 0 };
	for (l = 0; l < SIM_LOGICAL; l++) {
		s->dirty[l] = true;
		s->pair[l] = 1;		/* so that format writes pair 0 */
	}
	s->next_seq = 1;
	sim_commit(s, true);
}

static int sim_load_sb(struct sim *s)
{
	struct rm_slot_state st[RM_SB_COPIES];
	struct rm_sb copies[RM_SB_COPIES];
	uint32_t c;
	int best;

	for (c = 0; c < RM_SB_COPIES; c++) {
		st[c].valid = !rm_sb_decode(s->md[c], c, &copies[c]);
		st[c].seq = st[c].valid ? copies[c].seq : 0;
	}
	best = rm_sb_pick(st, RM_SB_COPIES);
	if (best < 0)
		return best;
	s->sb = copies[best];
	return 0;
}

/* Choose a copy of logical l and decode it; *max_seen tracks every seq. */
static int sim_load_logical(struct sim *s, uint32_t l, uint64_t *max_seen)
{
	struct rm_slot_state st[RM_MD_SLOTS];
	struct rm_tblock_hdr h;
	struct rm_pick p;
	unsigned int slot;
	const uint8_t *b;
	int ret;

	for (slot = 0; slot < RM_MD_SLOTS; slot++) {
		b = s->md[rm_slot_blocknr(&s->sb.geo, l, slot)];
		st[slot].valid = !rm_tblock_decode_hdr(b, &s->sb,
				rm_slot_blocknr(&s->sb.geo, l, slot), &h);
		st[slot].seq = st[slot].valid ? h.seq : 0;
	}
	ret = rm_pick_slot(st, s->sb.seq, &p);
	if (p.max_seq > *max_seen)
		*max_seen = p.max_seq;
	if (ret)
		return ret;
	b = s->md[rm_slot_blocknr(&s->sb.geo, l, p.slot)];
	ret = rm_tblock_decode(b, l, &s->sb.geo, s->devs, s->names, s->entries);
	s->seq[l] = p.seq;
	s->pair[l] = rm_slot_pair(p.slot);
	s->dirty[l] = p.rewrite;
	return ret;
}

static int sim_load(struct sim *s)
{
	uint64_t max_seen = 0;
	uint32_t l;
	int ret;

	memset(s->entries, 0xee, sizeof(s->entries));
	ret = sim_load_sb(s);
	if (ret)
		return ret;
	for (l = 0; l < SIM_LOGICAL; l++) {
		ret = sim_load_logical(s, l, &max_seen);
		if (ret)
			return ret;
	}
	if (rm_table_digest(s->seq, SIM_LOGICAL) != s->sb.table_digest)
		return -RM_E_DIGEST;
	return rm_next_seq(s->sb.seq, max_seen, &s->next_seq);
}

static struct sim sim;

static void remap(struct sim *s, uint32_t index, uint64_t main_block)
{
	s->entries[index] = (struct rm_entry){ main_block, 1,
					       RM_ENTRY_MAPPED, 0 };
	s->dirty[rm_entry_logical(index)] = true;
}

static bool any_dirty(const struct sim *s)
{
	uint32_t l;

	for (l = 0; l < SIM_LOGICAL; l++)
		if (s->dirty[l])
			return true;
	return false;
}

UNIT_TEST(load_after_format_and_commits)
{
	sim_format(&sim);
	CHECK_EQ(sim_load(&sim), 0);
	CHECK(sim.sb.seq == 1 && sim.next_seq == 2);
	CHECK_EQ(sim.entries[0].state, RM_ENTRY_FREE);
	CHECK(!any_dirty(&sim));

	remap(&sim, 0, 100);
	remap(&sim, SIM_BLOCKS - 1, 200);
	sim_commit(&sim, true);
	remap(&sim, 300, 300);
	sim_commit(&sim, true);
	CHECK_EQ(sim_load(&sim), 0);
	CHECK(sim.sb.seq == 3 && sim.next_seq == 4);
	CHECK(sim.entries[0].main_block == 100);
	CHECK(sim.entries[SIM_BLOCKS - 1].main_block == 200);
	CHECK(sim.entries[300].main_block == 300);
	CHECK_EQ(sim.entries[1].state, RM_ENTRY_FREE);
	CHECK(!any_dirty(&sim));
}

UNIT_TEST(load_interrupted_commit_not_resurrected)
{
	sim_format(&sim);
	remap(&sim, 10, 1000);
	sim_commit(&sim, true);			/* seq 2 */
	remap(&sim, 10, 2000);
	sim_commit(&sim, false);		/* seq 3 written, no sb: crash */

	CHECK_EQ(sim_load(&sim), 0);
	CHECK(sim.sb.seq == 2);
	CHECK(sim.entries[10].main_block == 1000);
	CHECK(sim.dirty[EL0]);			/* stale seq-3 block in pair */
	CHECK(sim.next_seq == 4);		/* past the stale seq 3 */

	/* the next commit changes another logical; EL0 is rewritten */
	remap(&sim, 600, 6);
	sim_commit(&sim, true);			/* seq 4 */
	CHECK_EQ(sim_load(&sim), 0);
	CHECK(sim.sb.seq == 4);
	CHECK(sim.entries[10].main_block == 1000);
	CHECK(sim.entries[600].main_block == 6);
	CHECK(!any_dirty(&sim));
}

UNIT_TEST(load_stale_block_without_rewrite_trips_digest)
{
	/* What rewrite protects against: ignore it and the digest objects. */
	sim_format(&sim);
	remap(&sim, 10, 1000);
	sim_commit(&sim, true);			/* seq 2 */
	remap(&sim, 10, 2000);
	sim_commit(&sim, false);		/* stale seq 3 */
	CHECK_EQ(sim_load(&sim), 0);
	sim.dirty[EL0] = false;
	remap(&sim, 600, 6);
	sim_commit(&sim, true);			/* seq 4 > 3: stale eligible */
	CHECK_EQ(sim_load(&sim), -RM_E_DIGEST);
}

UNIT_TEST(load_survives_single_block_damage)
{
	uint64_t b;
	unsigned int slot;
	uint32_t c, l;

	sim_format(&sim);
	remap(&sim, 10, 1000);
	sim_commit(&sim, true);			/* seq 2 */
	remap(&sim, 20, 2000);
	sim_commit(&sim, true);			/* seq 3 */

	/* any one block of the metadata area, smashed */
	for (b = 0; b < SIM_MD_BLOCKS; b++) {
		memcpy(tmp, sim.md[b], RM_MD_BLOCK_SIZE);
		memset(sim.md[b], 0x5a, 512);	/* torn/garbage write */
		CHECK_EQ(sim_load(&sim), 0);
		CHECK(sim.sb.seq == 3);
		CHECK(sim.entries[10].main_block == 1000);
		CHECK(sim.entries[20].main_block == 2000);
		memcpy(sim.md[b], tmp, RM_MD_BLOCK_SIZE);
	}

	/* losing a copy of the current pair asks for a rewrite */
	slot = rm_slot_index(sim.pair[EL0], 1);
	b = rm_slot_blocknr(&sim.sb.geo, EL0, slot);
	sim.md[b][100] ^= 1;
	CHECK_EQ(sim_load(&sim), 0);
	CHECK(sim.dirty[EL0]);
	sim_commit(&sim, true);
	CHECK_EQ(sim_load(&sim), 0);
	CHECK(!any_dirty(&sim));

	/* torn superblock update: old and new copies mixed */
	remap(&sim, 30, 3000);
	sim_commit(&sim, true);
	for (c = 0; c < RM_SB_COPIES; c += 2) {
		sim.sb.seq--;
		rm_sb_encode(sim.md[c], &sim.sb, c);	/* older copy */
		sim.sb.seq++;
	}
	CHECK_EQ(sim_load(&sim), 0);
	CHECK(sim.entries[30].main_block == 3000);

	/* both copies of the current pair of a logical: detected */
	for (c = 0; c < 2; c++) {
		l = EL0;
		b = rm_slot_blocknr(&sim.sb.geo, l,
				    rm_slot_index(sim.pair[l], c));
		sim.md[b][RM_MD_BLOCK_SIZE - 1] ^= 1;
	}
	CHECK_EQ(sim_load(&sim), -RM_E_DIGEST);
}
