/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * rm_format.h - dm-remap on-disk metadata format, version 2 (RM_FORMAT_VERSION).
 *
 * Documentation/on-disk-format.md is the byte-level description; the
 * offsets below are the same tables in C.  Decoded structures are in CPU
 * byte order.  Every function that can fail returns 0 or a negative
 * RM_E_* code (see rm_strerror()); kernel callers map those to -EIO,
 * -EINVAL, ... themselves.
 *
 * Nothing here allocates memory or keeps state: callers own every buffer.
 * A metadata block buffer is always RM_MD_BLOCK_SIZE bytes.
 *
 * Trust rule: a decoder never trusts a length, offset or count it read.
 * When rm_sb_decode() returns 0 every field of the superblock, including
 * the geometry, has been checked, so later arithmetic on it (slot numbers,
 * sector numbers) cannot overflow.
 */
#ifndef RM_FORMAT_H
#define RM_FORMAT_H

#include "rm_platform.h"

/* ---- Sizes and limits -------------------------------------------------- */

#define RM_MD_BLOCK_SIZE	4096u	/* metadata block, bytes */
#define RM_MD_BLOCK_SECTORS	8u	/* metadata block, 512-byte sectors */
#define RM_SECTOR_SHIFT		9

#define RM_FORMAT_VERSION	2u
#define RM_SB_COPIES		8u	/* superblock copies at md blocks 0..7 */
#define RM_TABLE_START		RM_SB_COPIES	/* first table slot (v1) */
#define RM_MD_SLOTS		4u	/* physical slots per logical block */
#define RM_MIN_DATA_BLOCKS	16u	/* smallest pool rm_geometry_compute makes */
#define RM_MIN_BLOCK_SIZE	512u
#define RM_MAX_BLOCK_SIZE	(1u << 20)
#define RM_DEFAULT_BLOCK_SIZE	4096u
/*
 * Spare data blocks per pool.  Entry indices fit in 32 bits, so no code
 * needs a 64-bit division (nothing in common/ divides a u64 by a
 * non-power-of-two).
 */
#define RM_MAX_BLOCKS		0xffffffffull
#define RM_UUID_SIZE		16u

#define RM_U32_MAX		0xffffffffu
#define RM_U64_MAX		0xffffffffffffffffull

/* ---- Superblock (one full md block per copy) --------------------------- */

#define RM_SB_MAGIC		"DMREMAP1"	/* 8 bytes, no NUL on disk */
#define RM_SB_MAGIC_LEN		8u

#define RM_SB_OFF_MAGIC		0	/* u8[8] "DMREMAP1" */
#define RM_SB_OFF_CSUM		8	/* le32 crc32c, field zeroed */
#define RM_SB_OFF_VERSION	12	/* le32 RM_FORMAT_VERSION */
#define RM_SB_OFF_COPY		16	/* le32 copy index 0..7 */
#define RM_SB_OFF_FLAGS		20	/* le32 RM_SB_FLAGS_KNOWN */
#define RM_SB_OFF_BLOCKNR	24	/* le64 own md block nr (== copy) */
#define RM_SB_OFF_SEQ		32	/* le64 commit sequence number */
#define RM_SB_OFF_UUID		40	/* u8[16] pool uuid */
#define RM_SB_OFF_BLOCK_SIZE	56	/* le32 spare block size, bytes */
#define RM_SB_OFF_DIGEST	60	/* le32 table digest */
#define RM_SB_OFF_DEV_SECTORS	64	/* le64 spare size at format time */
#define RM_SB_OFF_TABLE_START	72	/* le64 md block of first slot */
#define RM_SB_OFF_NR_LOGICAL	80	/* le64 logical table blocks */
#define RM_SB_OFF_DATA_START	88	/* le64 first data sector */
#define RM_SB_OFF_NR_BLOCKS	96	/* le64 spare data blocks */
#define RM_SB_HDR_END		104	/* reserved, zero, up to 4096 */

#define RM_SB_FLAGS_KNOWN	0u	/* no superblock flags in v1 */

/* ---- Table blocks ------------------------------------------------------ */

#define RM_TB_MAGIC		0x42544d52u	/* "RMTB" as le32 */

#define RM_TB_OFF_MAGIC		0	/* le32 RM_TB_MAGIC */
#define RM_TB_OFF_CSUM		4	/* le32 crc32c, field zeroed */
#define RM_TB_OFF_KIND		8	/* le32 enum rm_tb_kind */
#define RM_TB_OFF_LOGICAL	12	/* le32 logical block index */
#define RM_TB_OFF_BLOCKNR	16	/* le64 own md block nr */
#define RM_TB_OFF_SEQ		24	/* le64 seq of the commit that wrote it */
#define RM_TB_OFF_UUID		32	/* u8[16] pool uuid */
#define RM_TB_OFF_RESERVED	48	/* u8[16] zero */
#define RM_TB_HDR_SIZE		64	/* payload starts here */

enum rm_tb_kind {
	RM_TB_DEVTABLE = 1,	/* logical 0 */
	RM_TB_ENTRIES = 2,	/* logicals RM_FIRST_ENTRY_LOGICAL.. */
	RM_TB_NAMES = 3,	/* logicals 1..RM_NAME_LOGICALS */
};

/* Device identity record, 64 bytes, in the payload of logical 0. */
#define RM_DEV_RECORD_SIZE	64
#define RM_DEV_OFF_ID		0	/* le32 dev_id */
#define RM_DEV_OFF_FLAGS	4	/* le32 RM_DEV_F_* */
#define RM_DEV_OFF_SIZE		8	/* le64 main device size, sectors */
#define RM_DEV_OFF_SCAN_POS	16	/* le64 next block the scanner reads */
#define RM_DEV_OFF_SCAN_PASSES	24	/* le64 completed scanner passes */
#define RM_DEV_OFF_LAST_PASS	32	/* le64 unix seconds of last pass end */
#define RM_DEV_OFF_RESERVED	40	/* u8[24] zero */
#define RM_MAX_DEVS \
	((RM_MD_BLOCK_SIZE - RM_TB_HDR_SIZE) / RM_DEV_RECORD_SIZE)	/* 63 */

#define RM_DEV_F_IN_USE		0x1u
#define RM_DEV_FLAGS_KNOWN	RM_DEV_F_IN_USE

/*
 * Device label record, 256 bytes, in the payload of the names logicals:
 * record i belongs to device table record i.  It says how userland finds
 * the device again after a reboot: the dm device name and a locator of
 * the main device (e.g. a /dev/disk/by-id path).  Both strings are
 * printable ASCII without spaces, NUL-terminated and NUL-padded.
 */
#define RM_NAME_RECORD_SIZE	256
#define RM_NAME_OFF_ID		0	/* le32 dev_id of device record i */
#define RM_NAME_OFF_FLAGS	4	/* le32 RM_NAME_F_* */
#define RM_NAME_OFF_NAME	8	/* char[128] dm device name */
#define RM_NAME_OFF_LOCATOR	136	/* char[120] main device locator */
#define RM_NAME_LEN		128	/* with the NUL: at most 127 chars */
#define RM_LOCATOR_LEN		120	/* with the NUL: at most 119 chars */
#define RM_NAMES_PER_BLOCK \
	((RM_MD_BLOCK_SIZE - RM_TB_HDR_SIZE) / RM_NAME_RECORD_SIZE)	/* 15 */
#define RM_NAME_LOGICALS \
	((RM_MAX_DEVS + RM_NAMES_PER_BLOCK - 1) / RM_NAMES_PER_BLOCK)	/* 5 */
#define RM_FIRST_ENTRY_LOGICAL	(1 + RM_NAME_LOGICALS)		/* 6 */

#define RM_NAME_F_IN_USE	0x1u
#define RM_NAME_FLAGS_KNOWN	RM_NAME_F_IN_USE

/* Remap entry, 16 bytes, one per spare data block. */
#define RM_ENTRY_SIZE		16
#define RM_ENTRY_OFF_MAIN	0	/* le64 main block (spare block units) */
#define RM_ENTRY_OFF_DEV	8	/* le32 dev_id */
#define RM_ENTRY_OFF_STATE	12	/* u8 enum rm_entry_state */
#define RM_ENTRY_OFF_FLAGS	13	/* u8 RM_ENTRY_FLAGS_KNOWN */
#define RM_ENTRY_OFF_RESERVED	14	/* le16 zero */
#define RM_ENTRIES_PER_BLOCK \
	((RM_MD_BLOCK_SIZE - RM_TB_HDR_SIZE) / RM_ENTRY_SIZE)	/* 252 */

#define RM_ENTRY_FLAGS_KNOWN	0u	/* no entry flags in v1 */

enum rm_entry_state {
	RM_ENTRY_FREE = 0,	/* unused; dev_id = main_block = 0 */
	RM_ENTRY_MAPPED = 1,	/* holds the data of (dev_id, main_block) */
	RM_ENTRY_PENDING = 2,	/* (dev_id, main_block) lost; reserved, no data */
	RM_ENTRY_RETIRED = 3,	/* spare block itself bad; dev_id = main = 0 */
};

/* ---- Error codes (functions return the negative value) ------------------ */

enum rm_err {
	RM_OK = 0,
	RM_E_MAGIC,		/* bad magic */
	RM_E_CSUM,		/* checksum mismatch */
	RM_E_VERSION,		/* unsupported format version */
	RM_E_LOCATION,		/* block/copy number does not match location */
	RM_E_GEOMETRY,		/* inconsistent geometry */
	RM_E_BLOCK_SIZE,	/* block size not a power of two in range */
	RM_E_TOO_SMALL,		/* device too small for a pool */
	RM_E_RESERVED,		/* nonzero reserved bytes */
	RM_E_FLAGS,		/* unknown flag bits */
	RM_E_KIND,		/* bad or misplaced table block kind */
	RM_E_LOGICAL,		/* logical index out of range or mismatch */
	RM_E_UUID,		/* pool uuid mismatch */
	RM_E_SEQ,		/* bad or exhausted sequence number */
	RM_E_STATE,		/* bad entry state */
	RM_E_ENTRY,		/* free/retired entry with nonzero fields */
	RM_E_UNUSED,		/* unused record or entry slot not zero */
	RM_E_DUP_DEV,		/* duplicate dev_id in device table */
	RM_E_UNKNOWN_DEV,	/* entry refers to a dev_id not in use */
	RM_E_RANGE,		/* main block beyond the device end */
	RM_E_DUP_MAP,		/* (dev_id, main_block) in two entries */
	RM_E_NO_VALID,		/* no valid copy found */
	RM_E_DIGEST,		/* table digest mismatch: committed block lost */
	RM_E_INVAL,		/* invalid argument */
	RM_E_FULL,		/* remap index needs a bigger table */
	RM_E_NOENT,		/* no such remap index entry */
	RM_E_NAME,		/* bad label string */
	RM_E_ORPHAN_NAME,	/* label of a device record not in use */
	RM_E_MAX
};

const char *rm_strerror(int err);	/* accepts err or -err */

/* ---- Decoded structures (CPU byte order) -------------------------------- */

/*
 * Pool geometry.  Invariants (rm_geometry_check):
 *   block_size is a power of two in [512, 1 MiB];
 *   RM_MIN_DATA_BLOCKS <= nr_blocks <= RM_MAX_BLOCKS;
 *   nr_logical == rm_nr_logical_for(nr_blocks);
 *   table_start >= RM_SB_COPIES;
 *   (table_start + 4 * nr_logical) * 8 <= data_start (sectors);
 *   data_start is a multiple of block_size / 512;
 *   data_start + nr_blocks * block_size / 512 <= dev_sectors.
 */
struct rm_geometry {
	uint32_t block_size;	/* spare data block size, bytes */
	uint64_t dev_sectors;	/* spare device size at format time */
	uint64_t table_start;	/* md block of the first table slot */
	uint64_t nr_logical;	/* device table + entry blocks */
	uint64_t data_start;	/* first data sector */
	uint64_t nr_blocks;	/* spare data blocks == table entries */
};

struct rm_sb {
	uint32_t version;	/* decode: as read; encode: ignored (v1) */
	uint32_t copy;		/* decode: copy index; encode: ignored */
	uint32_t flags;
	uint32_t table_digest;
	uint64_t seq;		/* >= 1 */
	uint8_t uuid[RM_UUID_SIZE];
	struct rm_geometry geo;
};

struct rm_tblock_hdr {
	uint32_t kind;		/* enum rm_tb_kind */
	uint32_t logical;
	uint64_t blocknr;	/* md block it lives in */
	uint64_t seq;		/* >= 1 */
	uint8_t uuid[RM_UUID_SIZE];
};

struct rm_dev {
	uint32_t dev_id;
	uint32_t flags;		/* RM_DEV_F_*; a record without IN_USE is all 0 */
	uint64_t size_sectors;
	uint64_t scan_pos;	/* main blocks (block_size units) */
	uint64_t scan_passes;
	uint64_t last_pass_time;
};

struct rm_name {
	uint32_t dev_id;	/* == devs[i].dev_id when in use */
	uint32_t flags;		/* RM_NAME_F_*; a record without IN_USE is all 0 */
	char name[RM_NAME_LEN];
	char locator[RM_LOCATOR_LEN];
};

struct rm_entry {
	uint64_t main_block;
	uint32_t dev_id;
	uint8_t state;		/* enum rm_entry_state */
	uint8_t flags;
};

/* ---- Checksums ---------------------------------------------------------- */

/* crc32c of a whole md block with the 4 bytes at csum_off taken as zero. */
uint32_t rm_md_csum(const void *blk, unsigned int csum_off);
/* Store rm_md_csum() at csum_off (RM_SB_OFF_CSUM or RM_TB_OFF_CSUM). */
void rm_md_seal(void *blk, unsigned int csum_off);

/* ---- Superblock --------------------------------------------------------- */

/*
 * Encode sb as copy number @copy (< RM_SB_COPIES) into the whole block.
 * Writes version RM_FORMAT_VERSION, copy and blocknr = copy.
 */
int rm_sb_encode(void *blk, const struct rm_sb *sb, uint32_t copy);
/* Decode and fully validate the block read from md block @blocknr. */
int rm_sb_decode(const void *blk, uint64_t blocknr, struct rm_sb *sb);

/* ---- Geometry ------------------------------------------------------------ */

bool rm_block_size_valid(uint32_t block_size);
/* log2(block_size / 512); block_size must be valid. */
unsigned int rm_block_sector_shift(uint32_t block_size);
/* RM_FIRST_ENTRY_LOGICAL + ceil(nr_blocks / RM_ENTRIES_PER_BLOCK); nr_blocks <= RM_MAX_BLOCKS. */
uint64_t rm_nr_logical_for(uint64_t nr_blocks);
/* Largest pool that fits on dev_sectors; fills every field of *g. */
int rm_geometry_compute(uint64_t dev_sectors, uint32_t block_size,
			struct rm_geometry *g);
int rm_geometry_check(const struct rm_geometry *g);
/* First sector past the metadata area (table_start + 4*nr_logical blocks). */
uint64_t rm_md_end_sector(const struct rm_geometry *g);

/* ---- Slots --------------------------------------------------------------- */

/*
 * Slot s of a logical block: pair p = s >> 1 (commits alternate pairs),
 * copy c = s & 1 (two identical copies of a pair).  Physical md block:
 *   table_start + c * (nr_logical * 2) + logical * 2 + p
 */
static inline unsigned int rm_slot_index(unsigned int pair, unsigned int copy)
{
	return pair * 2 + copy;
}

static inline unsigned int rm_slot_pair(unsigned int slot)
{
	return slot >> 1;
}

static inline unsigned int rm_slot_copy(unsigned int slot)
{
	return slot & 1;
}

static inline uint64_t rm_sb_blocknr(uint32_t copy)
{
	return copy;
}

static inline uint64_t rm_md_sector(uint64_t blocknr)
{
	return blocknr * RM_MD_BLOCK_SECTORS;
}

/* Geometry must be valid, logical < nr_logical, slot < RM_MD_SLOTS. */
uint64_t rm_slot_blocknr(const struct rm_geometry *g, uint32_t logical,
			 unsigned int slot);
/* Inverse of rm_slot_blocknr; -RM_E_LOCATION if not a table slot. */
int rm_slot_locate(const struct rm_geometry *g, uint64_t blocknr,
		   uint32_t *logical, unsigned int *slot);

/* Entry index -> (logical, offset within the block). */
static inline uint32_t rm_entry_logical(uint32_t index)
{
	return RM_FIRST_ENTRY_LOGICAL + index / RM_ENTRIES_PER_BLOCK;
}

/* Index of the first entry of an entries logical. */
static inline uint64_t rm_logical_first_entry(uint32_t logical)
{
	return (uint64_t)(logical - RM_FIRST_ENTRY_LOGICAL) *
	       RM_ENTRIES_PER_BLOCK;
}

static inline uint32_t rm_entry_offset(uint32_t index)
{
	return index % RM_ENTRIES_PER_BLOCK;
}

/* enum rm_tb_kind of the table block at a logical index. */
uint32_t rm_logical_kind(uint32_t logical);
/* Label record i -> names logical; first record index of a names logical. */
static inline uint32_t rm_name_logical(uint32_t i)
{
	return 1 + i / RM_NAMES_PER_BLOCK;
}

static inline uint32_t rm_name_first(uint32_t logical)
{
	return (logical - 1) * RM_NAMES_PER_BLOCK;
}

/*
 * Live entries in a logical block (0 for the device table, the names
 * logicals and out of range).
 */
uint32_t rm_entries_in_logical(const struct rm_geometry *g, uint32_t logical);

/* ---- Table blocks -------------------------------------------------------- */

/*
 * Validate the header of the block read from md block @blocknr: magic,
 * checksum (whole block), blocknr field, location inside the table area of
 * sb, logical index matching the location, kind matching the logical, pool
 * uuid, reserved bytes, seq != 0.  sb must have been decoded successfully.
 * A block passing this is "valid" for rm_pick_slot(); its payload is then
 * decoded with rm_devtable_decode() or rm_entries_decode().
 */
int rm_tblock_decode_hdr(const void *blk, const struct rm_sb *sb,
			 uint64_t blocknr, struct rm_tblock_hdr *hdr);
/* Rewrite the blocknr field and checksum: the same block for another slot. */
void rm_tblock_relocate(void *blk, uint64_t blocknr);

/*
 * Encode a whole table block.  hdr->kind must match the encoder and
 * hdr->logical (0 for the device table).  The payload is validated the
 * same way the decoder would; on error the block contents are undefined.
 */
int rm_devtable_encode(void *blk, const struct rm_tblock_hdr *hdr,
		       const struct rm_dev devs[RM_MAX_DEVS]);
int rm_entries_encode(void *blk, const struct rm_tblock_hdr *hdr,
		      const struct rm_entry *entries, uint32_t n);
/* The label records of names logical hdr->logical, taken from names[]. */
int rm_names_encode(void *blk, const struct rm_tblock_hdr *hdr,
		    const struct rm_name names[RM_MAX_DEVS]);

/*
 * Encode logical hdr->logical (kind filled in from the logical) from a
 * whole in-memory table: devs, names and entries (nr_blocks of them;
 * NULL encodes every entry free).  names may be NULL for "no labels".
 */
int rm_tblock_encode(void *blk, struct rm_tblock_hdr *hdr,
		     const struct rm_geometry *g,
		     const struct rm_dev devs[RM_MAX_DEVS],
		     const struct rm_name names[RM_MAX_DEVS],
		     const struct rm_entry *entries);
/* Decode the payload of a valid block of @logical into the same arrays. */
int rm_tblock_decode(const void *blk, uint32_t logical,
		     const struct rm_geometry *g,
		     struct rm_dev devs[RM_MAX_DEVS],
		     struct rm_name names[RM_MAX_DEVS],
		     struct rm_entry *entries);

/* Payload decoders; they read only the payload of blk. */
int rm_devtable_decode(const void *blk, struct rm_dev devs[RM_MAX_DEVS]);
/* n = rm_entries_in_logical(); entries past n must be all zero. */
int rm_entries_decode(const void *blk, uint32_t n, struct rm_entry *entries);
/* Fills the records of names logical @logical in names[]. */
int rm_names_decode(const void *blk, uint32_t logical,
		    struct rm_name names[RM_MAX_DEVS]);

/* Single records (p points at RM_DEV_RECORD_SIZE / RM_ENTRY_SIZE bytes). */
void rm_dev_encode(uint8_t *p, const struct rm_dev *d);
int rm_dev_decode(const uint8_t *p, struct rm_dev *d);
int rm_dev_check(const struct rm_dev *d);
/* Index of the in-use record with dev_id, or -1. */
int rm_dev_find(const struct rm_dev devs[RM_MAX_DEVS], uint32_t dev_id);

/*
 * A label string is valid when it has 1..len-1 printable, non-space ASCII
 * characters followed by NUL padding up to len.
 */
bool rm_label_valid(const char *s, unsigned int len);
void rm_name_encode(uint8_t *p, const struct rm_name *n);
int rm_name_decode(const uint8_t *p, struct rm_name *n);
int rm_name_check(const struct rm_name *n);

/* Field by field: decoded structs have padding the codec leaves alone. */
bool rm_entries_equal(const struct rm_entry *a, const struct rm_entry *b,
		      uint64_t n);
void rm_entry_encode(uint8_t *p, const struct rm_entry *e);
int rm_entry_decode(const uint8_t *p, struct rm_entry *e);
int rm_entry_check(const struct rm_entry *e);

/* ---- Load rule ----------------------------------------------------------- */

struct rm_slot_state {
	bool valid;		/* header decoded with rm_*_decode* == 0 */
	uint64_t seq;
};

struct rm_pick {
	unsigned int slot;	/* chosen slot */
	uint64_t seq;		/* its seq */
	uint64_t max_seq;	/* highest seq of ANY valid slot, for rm_next_seq */
	/*
	 * The logical must be rewritten by the first commit after load: a
	 * valid slot has seq > sb seq (left by an interrupted commit, must be
	 * overwritten before the pool's seq passes it), or the other copy of
	 * the chosen pair is not an identical valid copy (redundancy lost).
	 */
	bool rewrite;
};

/*
 * Among the valid slots with seq <= sb_seq pick the highest seq; on a tie
 * the lowest slot index.  Returns -RM_E_NO_VALID if none qualifies (then
 * only out->max_seq is meaningful).  The next commit of this logical
 * writes pair 1 - rm_slot_pair(out->slot).
 */
int rm_pick_slot(const struct rm_slot_state s[RM_MD_SLOTS], uint64_t sb_seq,
		 struct rm_pick *out);
/* Superblock copies: index of the valid copy with the highest seq. */
int rm_sb_pick(const struct rm_slot_state *s, unsigned int n);
/*
 * Pools are loaded only below this seq.  Commits count up by one from the
 * last one loaded, so they cannot reach 2^64 and wrap: a seq this high is
 * crafted or corrupt, not worn out.
 */
#define RM_SEQ_LAST	((uint64_t)1 << 63)

/*
 * The seq for the next commit: one more than the highest seq seen in any
 * valid superblock or table block.  -RM_E_SEQ when that seq is RM_SEQ_LAST
 * or above.  The next seq can be RM_SEQ_LAST itself; writers refuse to
 * write it, so that what they write still loads.
 */
int rm_next_seq(uint64_t sb_seq, uint64_t max_seen, uint64_t *next);

/* ---- Table digest -------------------------------------------------------- */

/*
 * crc32c over the le64 seq of the chosen copy of every logical block, in
 * logical order, stored inverted (like all dm-remap checksums).
 * Incremental: d = RM_DIGEST_INIT; d = rm_digest_update(d, seq)...;
 * digest = rm_digest_final(d).
 */
#define RM_DIGEST_INIT		0xffffffffu
uint32_t rm_digest_update(uint32_t state, uint64_t seq);
uint32_t rm_digest_final(uint32_t state);
uint32_t rm_table_digest(const uint64_t *seqs, uint64_t n);
/* rm_digest_update() of each of n seqs in turn. */
uint32_t rm_digest_seqs(uint32_t state, const uint64_t *seqs, uint64_t n);

/* A CRC32C register (no inversion) after len more zero bytes; O(log len). */
uint32_t rm_crc32c_zeros(uint32_t crc, uint64_t len);

/*
 * The digest after some seqs change, from the digest before, in time
 * proportional to the changes (and the log of the gaps between them), not
 * to the table: init, add each change in ascending logical order (each l
 * once, below the n of apply), then apply to the state before the final
 * inversion over all n seqs:
 * digest' = rm_digest_final(rm_digest_delta_apply(&dd, ~digest, n)).
 */
struct rm_digest_delta {
	uint32_t state;		/* register of the change message so far */
	uint64_t next;		/* seqs it covers */
};

void rm_digest_delta_init(struct rm_digest_delta *dd);
void rm_digest_delta_add(struct rm_digest_delta *dd, uint64_t l,
			 uint64_t old_seq, uint64_t new_seq);
uint32_t rm_digest_delta_apply(const struct rm_digest_delta *dd,
			       uint32_t state, uint64_t n);

/* ---- Pool check ------------------------------------------------------------ */

/* Sort key for duplicate detection; caller supplies nr_entries of them. */
struct rm_check_key {
	uint64_t main_block;
	uint32_t dev_id;
	uint32_t index;
};

/* In-place heapsort by (dev_id, main_block, index); O(n log n), no stack. */
void rm_check_keys_sort(struct rm_check_key *keys, uint64_t n);

enum rm_obj {
	RM_OBJ_POOL,		/* the superblock / arguments */
	RM_OBJ_DEV,		/* index = device table record */
	RM_OBJ_ENTRY,		/* index = entry (spare block) */
	RM_OBJ_NAME,		/* index = label record */
};

struct rm_problem {
	int err;		/* RM_E_* (positive) */
	enum rm_obj obj;
	uint64_t index;
	uint64_t other;		/* RM_E_DUP_*: index of the first occurrence */
	uint32_t dev_id;
	uint64_t main_block;
};

/*
 * Check a whole pool: sb geometry, the device table (record validity,
 * duplicate dev_ids) and every entry (state and field rules, unknown
 * dev_id, main_block beyond its device, the same (dev_id, main_block) in
 * two MAPPED/PENDING entries).  Each problem is passed to report (may be
 * NULL); returns the number of problems, or -RM_E_INVAL when nr_entries
 * != sb->geo.nr_blocks or a pointer is NULL.
 *
 * scratch: nr_entries keys owned by the caller, used for the O(n log n)
 * duplicate search; NULL skips that search.  Allocates nothing.
 */
int64_t rm_pool_check(const struct rm_sb *sb,
		      const struct rm_dev devs[RM_MAX_DEVS],
		      const struct rm_entry *entries, uint64_t nr_entries,
		      struct rm_check_key *scratch,
		      void (*report)(void *ctx, const struct rm_problem *p),
		      void *ctx);

/*
 * Check the labels against the device table: a label in use must sit at
 * the index of an in-use device record with the same dev_id
 * (RM_E_ORPHAN_NAME, obj RM_OBJ_NAME).  Returns the number of problems.
 */
int rm_names_check(const struct rm_dev devs[RM_MAX_DEVS],
		   const struct rm_name names[RM_MAX_DEVS],
		   void (*report)(void *ctx, const struct rm_problem *p),
		   void *ctx);

#endif /* RM_FORMAT_H */
