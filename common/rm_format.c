// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * rm_format.c - encode/decode and validation of dm-remap metadata blocks:
 * superblock copies, table block headers, device records and entries.
 * See rm_format.h and Documentation/on-disk-format.md.
 */
#include "rm_platform.h"
#include "rm_endian.h"
#include "rm_format.h"

static const char * const rm_err_names[RM_E_MAX] = {
	[RM_OK] = "ok",
	[RM_E_MAGIC] = "bad magic",
	[RM_E_CSUM] = "checksum mismatch",
	[RM_E_VERSION] = "unsupported format version",
	[RM_E_LOCATION] = "block found at the wrong location",
	[RM_E_GEOMETRY] = "inconsistent pool geometry",
	[RM_E_BLOCK_SIZE] = "invalid block size",
	[RM_E_TOO_SMALL] = "device too small for a pool",
	[RM_E_RESERVED] = "nonzero reserved bytes",
	[RM_E_FLAGS] = "unknown flags",
	[RM_E_KIND] = "bad table block kind",
	[RM_E_LOGICAL] = "bad logical block index",
	[RM_E_UUID] = "pool uuid mismatch",
	[RM_E_SEQ] = "bad sequence number",
	[RM_E_STATE] = "bad entry state",
	[RM_E_ENTRY] = "free or retired entry with nonzero fields",
	[RM_E_UNUSED] = "unused record or entry not zero",
	[RM_E_DUP_DEV] = "duplicate device id",
	[RM_E_UNKNOWN_DEV] = "entry refers to an unknown device",
	[RM_E_RANGE] = "block beyond the end of its device",
	[RM_E_DUP_MAP] = "block remapped twice",
	[RM_E_NO_VALID] = "no valid copy",
	[RM_E_DIGEST] = "table digest mismatch (committed block lost)",
	[RM_E_INVAL] = "invalid argument",
	[RM_E_FULL] = "remap index full",
	[RM_E_NOENT] = "no such remap index entry",
	[RM_E_NAME] = "bad device label",
	[RM_E_ORPHAN_NAME] = "label without its device record",
};

const char *rm_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= RM_E_MAX)
		return "unknown error";
	return rm_err_names[err];
}

/* True if len bytes at p are all zero. */
static bool rm_all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

uint32_t rm_md_csum(const void *blk, unsigned int csum_off)
{
	static const uint8_t zero[4];
	const uint8_t *p = blk;
	uint32_t crc;

	crc = rm_crc32c(~0u, p, csum_off);
	crc = rm_crc32c(crc, zero, sizeof(zero));
	crc = rm_crc32c(crc, p + csum_off + 4,
			RM_MD_BLOCK_SIZE - csum_off - 4);
	return ~crc;
}

void rm_md_seal(void *blk, unsigned int csum_off)
{
	uint8_t *p = blk;

	rm_put_le32(p + csum_off, rm_md_csum(blk, csum_off));
}

static bool rm_csum_ok(const uint8_t *p, unsigned int csum_off)
{
	return rm_get_le32(p + csum_off) == rm_md_csum(p, csum_off);
}

/* ---- Superblock ---------------------------------------------------------- */

int rm_sb_encode(void *blk, const struct rm_sb *sb, uint32_t copy)
{
	uint8_t *p = blk;

	if (copy >= RM_SB_COPIES)
		return -RM_E_INVAL;
	memset(p, 0, RM_MD_BLOCK_SIZE);
	memcpy(p + RM_SB_OFF_MAGIC, RM_SB_MAGIC, RM_SB_MAGIC_LEN);
	rm_put_le32(p + RM_SB_OFF_VERSION, RM_FORMAT_VERSION);
	rm_put_le32(p + RM_SB_OFF_COPY, copy);
	rm_put_le32(p + RM_SB_OFF_FLAGS, sb->flags);
	rm_put_le64(p + RM_SB_OFF_BLOCKNR, rm_sb_blocknr(copy));
	rm_put_le64(p + RM_SB_OFF_SEQ, sb->seq);
	memcpy(p + RM_SB_OFF_UUID, sb->uuid, RM_UUID_SIZE);
	rm_put_le32(p + RM_SB_OFF_BLOCK_SIZE, sb->geo.block_size);
	rm_put_le32(p + RM_SB_OFF_DIGEST, sb->table_digest);
	rm_put_le64(p + RM_SB_OFF_DEV_SECTORS, sb->geo.dev_sectors);
	rm_put_le64(p + RM_SB_OFF_TABLE_START, sb->geo.table_start);
	rm_put_le64(p + RM_SB_OFF_NR_LOGICAL, sb->geo.nr_logical);
	rm_put_le64(p + RM_SB_OFF_DATA_START, sb->geo.data_start);
	rm_put_le64(p + RM_SB_OFF_NR_BLOCKS, sb->geo.nr_blocks);
	rm_md_seal(p, RM_SB_OFF_CSUM);
	return 0;
}

static void rm_sb_get_fields(const uint8_t *p, struct rm_sb *sb)
{
	sb->version = rm_get_le32(p + RM_SB_OFF_VERSION);
	sb->copy = rm_get_le32(p + RM_SB_OFF_COPY);
	sb->flags = rm_get_le32(p + RM_SB_OFF_FLAGS);
	sb->seq = rm_get_le64(p + RM_SB_OFF_SEQ);
	memcpy(sb->uuid, p + RM_SB_OFF_UUID, RM_UUID_SIZE);
	sb->table_digest = rm_get_le32(p + RM_SB_OFF_DIGEST);
	sb->geo.block_size = rm_get_le32(p + RM_SB_OFF_BLOCK_SIZE);
	sb->geo.dev_sectors = rm_get_le64(p + RM_SB_OFF_DEV_SECTORS);
	sb->geo.table_start = rm_get_le64(p + RM_SB_OFF_TABLE_START);
	sb->geo.nr_logical = rm_get_le64(p + RM_SB_OFF_NR_LOGICAL);
	sb->geo.data_start = rm_get_le64(p + RM_SB_OFF_DATA_START);
	sb->geo.nr_blocks = rm_get_le64(p + RM_SB_OFF_NR_BLOCKS);
}

int rm_sb_decode(const void *blk, uint64_t blocknr, struct rm_sb *sb)
{
	const uint8_t *p = blk;

	if (memcmp(p + RM_SB_OFF_MAGIC, RM_SB_MAGIC, RM_SB_MAGIC_LEN))
		return -RM_E_MAGIC;
	if (!rm_csum_ok(p, RM_SB_OFF_CSUM))
		return -RM_E_CSUM;
	rm_sb_get_fields(p, sb);
	if (sb->version != RM_FORMAT_VERSION)
		return -RM_E_VERSION;
	/* A copy is only valid where it was written. */
	if (sb->copy >= RM_SB_COPIES || rm_sb_blocknr(sb->copy) != blocknr ||
	    rm_get_le64(p + RM_SB_OFF_BLOCKNR) != blocknr)
		return -RM_E_LOCATION;
	if (sb->flags & ~RM_SB_FLAGS_KNOWN)
		return -RM_E_FLAGS;
	if (!rm_all_zero(p + RM_SB_HDR_END, RM_MD_BLOCK_SIZE - RM_SB_HDR_END))
		return -RM_E_RESERVED;
	if (sb->seq == 0)
		return -RM_E_SEQ;
	return rm_geometry_check(&sb->geo);
}

/* ---- Table block header ---------------------------------------------------- */

uint32_t rm_logical_kind(uint32_t logical)
{
	if (logical == 0)
		return RM_TB_DEVTABLE;
	return logical < RM_FIRST_ENTRY_LOGICAL ? RM_TB_NAMES : RM_TB_ENTRIES;
}

static void rm_tblock_put_hdr(uint8_t *p, const struct rm_tblock_hdr *hdr)
{
	memset(p, 0, RM_MD_BLOCK_SIZE);
	rm_put_le32(p + RM_TB_OFF_MAGIC, RM_TB_MAGIC);
	rm_put_le32(p + RM_TB_OFF_KIND, hdr->kind);
	rm_put_le32(p + RM_TB_OFF_LOGICAL, hdr->logical);
	rm_put_le64(p + RM_TB_OFF_BLOCKNR, hdr->blocknr);
	rm_put_le64(p + RM_TB_OFF_SEQ, hdr->seq);
	memcpy(p + RM_TB_OFF_UUID, hdr->uuid, RM_UUID_SIZE);
}

int rm_tblock_decode_hdr(const void *blk, const struct rm_sb *sb,
			 uint64_t blocknr, struct rm_tblock_hdr *hdr)
{
	const uint8_t *p = blk;
	uint32_t logical;
	unsigned int slot;

	if (rm_get_le32(p + RM_TB_OFF_MAGIC) != RM_TB_MAGIC)
		return -RM_E_MAGIC;
	if (!rm_csum_ok(p, RM_TB_OFF_CSUM))
		return -RM_E_CSUM;
	hdr->kind = rm_get_le32(p + RM_TB_OFF_KIND);
	hdr->logical = rm_get_le32(p + RM_TB_OFF_LOGICAL);
	hdr->blocknr = rm_get_le64(p + RM_TB_OFF_BLOCKNR);
	hdr->seq = rm_get_le64(p + RM_TB_OFF_SEQ);
	memcpy(hdr->uuid, p + RM_TB_OFF_UUID, RM_UUID_SIZE);

	if (hdr->blocknr != blocknr ||
	    rm_slot_locate(&sb->geo, blocknr, &logical, &slot))
		return -RM_E_LOCATION;
	if (hdr->logical != logical)
		return -RM_E_LOGICAL;
	if (hdr->kind != rm_logical_kind(logical))
		return -RM_E_KIND;
	if (memcmp(hdr->uuid, sb->uuid, RM_UUID_SIZE))
		return -RM_E_UUID;
	if (!rm_all_zero(p + RM_TB_OFF_RESERVED,
			 RM_TB_HDR_SIZE - RM_TB_OFF_RESERVED))
		return -RM_E_RESERVED;
	if (hdr->seq == 0)
		return -RM_E_SEQ;
	return 0;
}

void rm_tblock_relocate(void *blk, uint64_t blocknr)
{
	uint8_t *p = blk;

	rm_put_le64(p + RM_TB_OFF_BLOCKNR, blocknr);
	rm_md_seal(p, RM_TB_OFF_CSUM);
}

/* Common argument checks of the two table block encoders. */
static int rm_tblock_hdr_check(const struct rm_tblock_hdr *hdr, uint32_t kind)
{
	if (hdr->kind != kind)
		return -RM_E_KIND;
	if (rm_logical_kind(hdr->logical) != kind)
		return -RM_E_LOGICAL;
	if (hdr->seq == 0)
		return -RM_E_SEQ;
	return 0;
}

/* ---- Device records ---------------------------------------------------------- */

void rm_dev_encode(uint8_t *p, const struct rm_dev *d)
{
	memset(p, 0, RM_DEV_RECORD_SIZE);
	rm_put_le32(p + RM_DEV_OFF_ID, d->dev_id);
	rm_put_le32(p + RM_DEV_OFF_FLAGS, d->flags);
	rm_put_le64(p + RM_DEV_OFF_SIZE, d->size_sectors);
	rm_put_le64(p + RM_DEV_OFF_SCAN_POS, d->scan_pos);
	rm_put_le64(p + RM_DEV_OFF_SCAN_PASSES, d->scan_passes);
	rm_put_le64(p + RM_DEV_OFF_LAST_PASS, d->last_pass_time);
}

/* Known flags only; a record not in use is entirely zero. */
int rm_dev_check(const struct rm_dev *d)
{
	if (d->flags & ~RM_DEV_FLAGS_KNOWN)
		return -RM_E_FLAGS;
	if (!(d->flags & RM_DEV_F_IN_USE) &&
	    (d->dev_id || d->size_sectors || d->scan_pos || d->scan_passes ||
	     d->last_pass_time))
		return -RM_E_UNUSED;
	return 0;
}

int rm_dev_decode(const uint8_t *p, struct rm_dev *d)
{
	d->dev_id = rm_get_le32(p + RM_DEV_OFF_ID);
	d->flags = rm_get_le32(p + RM_DEV_OFF_FLAGS);
	d->size_sectors = rm_get_le64(p + RM_DEV_OFF_SIZE);
	d->scan_pos = rm_get_le64(p + RM_DEV_OFF_SCAN_POS);
	d->scan_passes = rm_get_le64(p + RM_DEV_OFF_SCAN_PASSES);
	d->last_pass_time = rm_get_le64(p + RM_DEV_OFF_LAST_PASS);
	if (!rm_all_zero(p + RM_DEV_OFF_RESERVED,
			 RM_DEV_RECORD_SIZE - RM_DEV_OFF_RESERVED))
		return -RM_E_RESERVED;
	return rm_dev_check(d);
}

int rm_dev_find(const struct rm_dev devs[RM_MAX_DEVS], uint32_t dev_id)
{
	int i;

	for (i = 0; i < (int)RM_MAX_DEVS; i++)
		if ((devs[i].flags & RM_DEV_F_IN_USE) &&
		    devs[i].dev_id == dev_id)
			return i;
	return -1;
}

/* Every record valid and dev_id unique among in-use records. */
static int rm_devs_check(const struct rm_dev devs[RM_MAX_DEVS])
{
	unsigned int i;
	int ret;

	for (i = 0; i < RM_MAX_DEVS; i++) {
		ret = rm_dev_check(&devs[i]);
		if (ret)
			return ret;
		if ((devs[i].flags & RM_DEV_F_IN_USE) &&
		    rm_dev_find(devs, devs[i].dev_id) != (int)i)
			return -RM_E_DUP_DEV;
	}
	return 0;
}

int rm_devtable_encode(void *blk, const struct rm_tblock_hdr *hdr,
		       const struct rm_dev devs[RM_MAX_DEVS])
{
	uint8_t *p = blk;
	unsigned int i;
	int ret;

	ret = rm_tblock_hdr_check(hdr, RM_TB_DEVTABLE);
	if (!ret)
		ret = rm_devs_check(devs);
	if (ret)
		return ret;
	rm_tblock_put_hdr(p, hdr);
	for (i = 0; i < RM_MAX_DEVS; i++)
		rm_dev_encode(p + RM_TB_HDR_SIZE + i * RM_DEV_RECORD_SIZE,
			      &devs[i]);
	rm_md_seal(p, RM_TB_OFF_CSUM);
	return 0;
}

int rm_devtable_decode(const void *blk, struct rm_dev devs[RM_MAX_DEVS])
{
	const uint8_t *p = blk;
	unsigned int i;
	int ret;

	for (i = 0; i < RM_MAX_DEVS; i++) {
		ret = rm_dev_decode(p + RM_TB_HDR_SIZE +
				    i * RM_DEV_RECORD_SIZE, &devs[i]);
		if (ret)
			return ret;
	}
	return rm_devs_check(devs);
}

/* ---- Device labels ------------------------------------------------------------ */

bool rm_label_valid(const char *s, unsigned int len)
{
	unsigned int i = 0;

	while (i < len && s[i] > ' ' && s[i] < 0x7f)
		i++;
	if (i == 0 || i == len)
		return false;
	while (i < len)
		if (s[i++])
			return false;
	return true;
}

void rm_name_encode(uint8_t *p, const struct rm_name *n)
{
	memset(p, 0, RM_NAME_RECORD_SIZE);
	rm_put_le32(p + RM_NAME_OFF_ID, n->dev_id);
	rm_put_le32(p + RM_NAME_OFF_FLAGS, n->flags);
	memcpy(p + RM_NAME_OFF_NAME, n->name, RM_NAME_LEN);
	memcpy(p + RM_NAME_OFF_LOCATOR, n->locator, RM_LOCATOR_LEN);
}

/* Known flags; in use: both strings valid; not in use: all zero. */
int rm_name_check(const struct rm_name *n)
{
	if (n->flags & ~RM_NAME_FLAGS_KNOWN)
		return -RM_E_FLAGS;
	if (!(n->flags & RM_NAME_F_IN_USE))
		return n->dev_id ||
		       !rm_all_zero((const uint8_t *)n->name, RM_NAME_LEN) ||
		       !rm_all_zero((const uint8_t *)n->locator,
				    RM_LOCATOR_LEN) ? -RM_E_UNUSED : 0;
	if (!rm_label_valid(n->name, RM_NAME_LEN) ||
	    !rm_label_valid(n->locator, RM_LOCATOR_LEN))
		return -RM_E_NAME;
	return 0;
}

int rm_name_decode(const uint8_t *p, struct rm_name *n)
{
	n->dev_id = rm_get_le32(p + RM_NAME_OFF_ID);
	n->flags = rm_get_le32(p + RM_NAME_OFF_FLAGS);
	memcpy(n->name, p + RM_NAME_OFF_NAME, RM_NAME_LEN);
	memcpy(n->locator, p + RM_NAME_OFF_LOCATOR, RM_LOCATOR_LEN);
	return rm_name_check(n);
}

/* Record range [*first, *end) of a names logical. */
static int rm_names_range(uint32_t logical, uint32_t *first, uint32_t *end)
{
	if (rm_logical_kind(logical) != RM_TB_NAMES)
		return -RM_E_LOGICAL;
	*first = rm_name_first(logical);
	*end = *first + RM_NAMES_PER_BLOCK;
	if (*end > RM_MAX_DEVS)
		*end = RM_MAX_DEVS;
	return 0;
}

int rm_names_encode(void *blk, const struct rm_tblock_hdr *hdr,
		    const struct rm_name names[RM_MAX_DEVS])
{
	uint8_t *p = blk;
	uint32_t i, first, end;
	int ret;

	ret = rm_tblock_hdr_check(hdr, RM_TB_NAMES);
	if (!ret)
		ret = rm_names_range(hdr->logical, &first, &end);
	for (i = first; !ret && i < end; i++)
		ret = rm_name_check(&names[i]);
	if (ret)
		return ret;
	rm_tblock_put_hdr(p, hdr);
	for (i = first; i < end; i++)
		rm_name_encode(p + RM_TB_HDR_SIZE +
			       (i - first) * RM_NAME_RECORD_SIZE, &names[i]);
	rm_md_seal(p, RM_TB_OFF_CSUM);
	return 0;
}

int rm_names_decode(const void *blk, uint32_t logical,
		    struct rm_name names[RM_MAX_DEVS])
{
	const uint8_t *p = (const uint8_t *)blk + RM_TB_HDR_SIZE;
	uint32_t i, first, end;
	int ret;

	ret = rm_names_range(logical, &first, &end);
	for (i = first; !ret && i < end; i++)
		ret = rm_name_decode(p + (i - first) * RM_NAME_RECORD_SIZE,
				     &names[i]);
	if (ret)
		return ret;
	/* Record slots past RM_MAX_DEVS (last names logical only) stay zero. */
	p += (end - first) * RM_NAME_RECORD_SIZE;
	if (!rm_all_zero(p, RM_MD_BLOCK_SIZE - RM_TB_HDR_SIZE -
			 (end - first) * RM_NAME_RECORD_SIZE))
		return -RM_E_UNUSED;
	return 0;
}

/* ---- Entries ----------------------------------------------------------------- */

bool rm_entries_equal(const struct rm_entry *a, const struct rm_entry *b,
		      uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		if (a[i].main_block != b[i].main_block ||
		    a[i].dev_id != b[i].dev_id || a[i].state != b[i].state ||
		    a[i].flags != b[i].flags)
			return false;
	return true;
}

void rm_entry_encode(uint8_t *p, const struct rm_entry *e)
{
	rm_put_le64(p + RM_ENTRY_OFF_MAIN, e->main_block);
	rm_put_le32(p + RM_ENTRY_OFF_DEV, e->dev_id);
	p[RM_ENTRY_OFF_STATE] = e->state;
	p[RM_ENTRY_OFF_FLAGS] = e->flags;
	rm_put_le16(p + RM_ENTRY_OFF_RESERVED, 0);
}

/* Valid state, known flags; FREE and RETIRED carry no (dev_id, block). */
int rm_entry_check(const struct rm_entry *e)
{
	if (e->state > RM_ENTRY_RETIRED)
		return -RM_E_STATE;
	if (e->flags & ~RM_ENTRY_FLAGS_KNOWN)
		return -RM_E_FLAGS;
	if ((e->state == RM_ENTRY_FREE || e->state == RM_ENTRY_RETIRED) &&
	    (e->dev_id || e->main_block))
		return -RM_E_ENTRY;
	return 0;
}

int rm_entry_decode(const uint8_t *p, struct rm_entry *e)
{
	e->main_block = rm_get_le64(p + RM_ENTRY_OFF_MAIN);
	e->dev_id = rm_get_le32(p + RM_ENTRY_OFF_DEV);
	e->state = p[RM_ENTRY_OFF_STATE];
	e->flags = p[RM_ENTRY_OFF_FLAGS];
	if (rm_get_le16(p + RM_ENTRY_OFF_RESERVED))
		return -RM_E_RESERVED;
	return rm_entry_check(e);
}

int rm_entries_encode(void *blk, const struct rm_tblock_hdr *hdr,
		      const struct rm_entry *entries, uint32_t n)
{
	uint8_t *p = blk;
	uint32_t i;
	int ret;

	if (n > RM_ENTRIES_PER_BLOCK)
		return -RM_E_INVAL;
	ret = rm_tblock_hdr_check(hdr, RM_TB_ENTRIES);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		ret = rm_entry_check(&entries[i]);
		if (ret)
			return ret;
	}
	rm_tblock_put_hdr(p, hdr);
	for (i = 0; i < n; i++)
		rm_entry_encode(p + RM_TB_HDR_SIZE + i * RM_ENTRY_SIZE,
				&entries[i]);
	rm_md_seal(p, RM_TB_OFF_CSUM);
	return 0;
}

int rm_entries_decode(const void *blk, uint32_t n, struct rm_entry *entries)
{
	const uint8_t *p = (const uint8_t *)blk + RM_TB_HDR_SIZE;
	uint32_t i;
	int ret;

	if (n > RM_ENTRIES_PER_BLOCK)
		return -RM_E_INVAL;
	for (i = 0; i < n; i++) {
		ret = rm_entry_decode(p + i * RM_ENTRY_SIZE, &entries[i]);
		if (ret)
			return ret;
	}
	/* Slots past the last spare block (last logical only) stay zero. */
	if (!rm_all_zero(p + n * RM_ENTRY_SIZE,
			 (RM_ENTRIES_PER_BLOCK - n) * RM_ENTRY_SIZE))
		return -RM_E_UNUSED;
	return 0;
}

/* ---- Whole table blocks ------------------------------------------------------ */

int rm_tblock_encode(void *blk, struct rm_tblock_hdr *hdr,
		     const struct rm_geometry *g,
		     const struct rm_dev devs[RM_MAX_DEVS],
		     const struct rm_name names[RM_MAX_DEVS],
		     const struct rm_entry *entries)
{
	static const struct rm_name none[RM_MAX_DEVS];

	hdr->kind = rm_logical_kind(hdr->logical);
	if (hdr->logical >= g->nr_logical)
		return -RM_E_LOGICAL;
	switch (hdr->kind) {
	case RM_TB_DEVTABLE:
		return rm_devtable_encode(blk, hdr, devs);
	case RM_TB_NAMES:
		return rm_names_encode(blk, hdr, names ? names : none);
	default:
		if (!entries)
			return rm_entries_encode(blk, hdr, NULL, 0);
		return rm_entries_encode(blk, hdr, entries +
					 rm_logical_first_entry(hdr->logical),
					 rm_entries_in_logical(g, hdr->logical));
	}
}

int rm_tblock_decode(const void *blk, uint32_t logical,
		     const struct rm_geometry *g,
		     struct rm_dev devs[RM_MAX_DEVS],
		     struct rm_name names[RM_MAX_DEVS],
		     struct rm_entry *entries)
{
	if (logical >= g->nr_logical)
		return -RM_E_LOGICAL;
	switch (rm_logical_kind(logical)) {
	case RM_TB_DEVTABLE:
		return rm_devtable_decode(blk, devs);
	case RM_TB_NAMES:
		return rm_names_decode(blk, logical, names);
	default:
		return rm_entries_decode(blk, rm_entries_in_logical(g, logical),
					 entries +
					 rm_logical_first_entry(logical));
	}
}
