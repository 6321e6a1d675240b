/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdread.h - the offline metadata tools' view of a spare device: block I/O
 * on a device or image file, and a loader that applies the kernel's load
 * rule (Documentation/on-disk-format.md, section 4) with the format code of
 * common/, recording every problem it meets instead of stopping at the
 * first one.
 *
 * Severity of a problem (enum md_sev):
 *   MD_DAMAGED  the load rule still accepts the pool and the kernel heals
 *               it on its first commit (a bad or stale superblock copy, a
 *               table block that lost its twin, an interrupted commit);
 *   MD_FATAL    the kernel refuses the pool (no valid superblock, a table
 *               block with no valid copy, digest mismatch, a record the
 *               decoders or rm_pool_check() reject).
 */
#ifndef MDREAD_H
#define MDREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "rm_platform.h"
#include "rm_format.h"

/* ---- Devices and image files --------------------------------------------- */

#define MD_LOOPS_MAX	16

struct md_image {
	const char *path;
	int fd;
	uint64_t bytes;		/* size */
	bool blockdev;
	unsigned int sector;	/* logical block size (512 for a file) */
	bool direct;		/* O_DIRECT: md_pread() aligns for it */
	/*
	 * O_DIRECT alignment of offsets and lengths: the sector of a block
	 * device; 4 KiB for a file (its file system may sit on 4K sectors).
	 */
	unsigned int dio_align;
	dev_t dev;		/* st_dev, or st_rdev of a block device */
	ino_t ino;		/* 0 for a block device */
	/* The loop devices over it, claimed (md_hold_loops()). */
	int loop_fd[MD_LOOPS_MAX];
	unsigned int nr_loops;
	char busy_loop[64];	/* the one in use that failed the open, */
	bool busy_sibling;	/* over what this loop device is over */
};

/*
 * Open a block device or regular file.  Read-only opens use O_DIRECT where
 * possible, so that a block device's page cache cannot hide what the
 * kernel wrote with bios.  Returns 0 or -errno; the caller prints.
 */
int md_open(struct md_image *img, const char *path, int flags);
void md_close(struct md_image *img);
/*
 * Claim (O_EXCL) every loop device over img, until md_close(), so that
 * none is mounted or taken by a dm table meanwhile.  -EBUSY, with
 * busy_loop set, if one is in use already.
 */
int md_hold_loops(struct md_image *img);
/* Why md_open() or md_hold_loops() failed with r, for a message. */
const char *md_open_error(const struct md_image *img, int r, char *buf,
			  size_t len);
/* md_open(); on failure "prog: path: cannot open: why" on stderr. */
int md_open_say(const char *prog, struct md_image *img, const char *path,
		int flags);
/*
 * Can writing one change the other?  1 when one image covers all of a device
 * or file the other is stored on (the same one; a loop device over the
 * other; a partition, dm or md device on the other; ...), else 0; -E2BIG
 * when the devices below are too many or too deep to tell, -ENOMEM.
 */
int md_overlap(const struct md_image *a, const struct md_image *b);

/* Whole-range I/O; 0 or -errno (-EIO for a short transfer). */
int md_pread(struct md_image *img, void *buf, size_t len, uint64_t off);
int md_pwrite(struct md_image *img, const void *buf, size_t len, uint64_t off);
int md_sync(struct md_image *img);

/* Buffer of n md blocks, aligned for O_DIRECT, zeroed; NULL if no memory. */
void *md_alloc_blocks(size_t n);

/* ---- Tool helpers -------------------------------------------------------- */

/* Exit code of the tools for a usage, open, memory or I/O error. */
#define MD_EXIT_USAGE	3

struct md_pool;
/*
 * Open path read-only and md_load() it, with a warning on stderr when a
 * block device is held exclusively by someone else (an active pool).
 * 0, or MD_EXIT_USAGE after a "prog: path: why" line on stderr.
 * md_pool_free() in every case.
 */
int md_tool_load(const char *prog, const char *path, struct md_image *img,
		 struct md_pool *pool, unsigned int flags);
/* Flush stdout: code, or MD_EXIT_USAGE after a message on a write error. */
int md_tool_finish(const char *prog, int code);

/* ---- Problems ------------------------------------------------------------ */

enum md_sev {
	MD_DAMAGED = 1,
	MD_FATAL = 2,
};

enum md_what {
	MD_SB_BAD,		/* superblock copy `index` invalid: err */
	MD_SB_STALE,		/* copy `index` valid, older seq */
	MD_SB_OTHER,		/* copy `index`: same seq, other contents */
	MD_SB_NONE,		/* no valid superblock copy */
	MD_DEV_SMALL,		/* device smaller than geo.dev_sectors */
	MD_SLOT_TWIN,		/* logical `index`: twin `slot` bad or differs */
	MD_SLOT_AHEAD,		/* logical `index`: `slot` seq > sb seq */
	MD_SLOT_UNREAD,		/* logical `index`: other-pair `slot` unreadable */
	MD_NO_COPY,		/* logical `index`: no valid copy to load */
	MD_PAYLOAD,		/* logical `index`: payload rejected: err */
	MD_DIGEST,		/* table digest mismatch */
	MD_SEQ_END,		/* a seq of RM_SEQ_LAST or above */
	MD_RECORD,		/* rm_pool_check() or a record decoder: rec */
	MD_DEV_SECTOR,		/* logical block size `seq` above geo.block_size */
};

/* Not an RM_E_* code: the block could not be read. */
#define MD_E_IO		RM_E_MAX

struct md_problem {
	enum md_what what;
	enum md_sev sev;
	int err;		/* RM_E_* or MD_E_IO (positive), 0 if none */
	uint64_t index;		/* superblock copy or logical */
	unsigned int slot;	/* table slot, for MD_SLOT_* */
	uint64_t blocknr;	/* md block, for MD_SB_* and MD_SLOT_* */
	uint64_t seq;		/* seq found (MD_SB_STALE, MD_SLOT_*) */
	uint64_t expect;	/* what the pool holds (sb seq, digest, size) */
	struct rm_problem rec;	/* MD_RECORD */
};

/* rm_strerror() that also knows MD_E_IO; accepts err or -err. */
const char *md_strerror(int err);
/* One line, no newline, describing p (without the device name). */
void md_problem_text(const struct md_problem *p, char *buf, size_t len);
/* "damaged" or "fatal". */
const char *md_sev_name(enum md_sev sev);

/* ---- The loaded pool ----------------------------------------------------- */

#define MD_NO_SLOT	0xffu

struct md_pool {
	bool have_sb;		/* a valid superblock was found */
	int sb_copy;		/* copy the superblock was taken from */
	struct rm_sb sb;
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_name names[RM_MAX_DEVS];	/* label of device record i */
	struct rm_entry *entries;	/* sb.geo.nr_blocks, zeroed if lost */
	uint64_t *seqs;		/* per logical: seq of the loaded copy */
	uint8_t *slots;		/* per logical: slot loaded or MD_NO_SLOT */
	uint64_t max_seen;	/* highest seq of any valid block */
	uint64_t next_seq;	/* rm_next_seq(), 0 if exhausted */
	uint64_t counts[RM_ENTRY_RETIRED + 1];	/* entries per state */

	struct md_problem *problems;
	size_t nr_problems, cap_problems;
	int64_t nr_dropped;	/* problems not stored (out of memory) */
	enum md_sev worst;	/* 0 when clean */
};

/*
 * Load flags.  MD_LOAD_SALVAGE: for a logical with no valid copy at or
 * below the superblock's seq, load the newest valid copy of any seq (a
 * block of an interrupted commit) instead of leaving it empty; the
 * problem is still reported as fatal.  For remap_repair.
 */
#define MD_LOAD_SALVAGE	0x1u

/*
 * Load the pool on img.  Returns 0 when the load ran to the end (the pool
 * may still have problems: see pool->worst), -ENOMEM, or -errno when the
 * device cannot be read at all.  Unreadable blocks count as invalid
 * copies, as in the kernel.  md_pool_free() in every case.
 */
int md_load(struct md_image *img, struct md_pool *pool, unsigned int flags);
void md_pool_free(struct md_pool *pool);
/* One "label: severity: text" line per problem. */
void md_print_problems(FILE *f, const char *label,
		       const struct md_pool *pool);

/* "free", "mapped", "pending", "retired" ("invalid" otherwise). */
const char *md_state_name(uint8_t state);
/* The pool uuid as 8-4-4-4-12 lower-case hex. */
#define MD_UUID_TEXT	37
void md_uuid_text(const uint8_t uuid[RM_UUID_SIZE], char out[MD_UUID_TEXT]);

/*
 * Decode the superblock copies of img: returns the number of valid ones
 * (the one the load rule takes in *sb) or -ENOMEM.
 */
int md_probe(struct md_image *img, struct rm_sb *sb);

#endif /* MDREAD_H */
