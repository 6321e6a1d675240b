// SPDX-License-Identifier: GPL-2.0-only
/*
 * remap_repair - write a clean copy of a damaged dm-remap pool onto a new
 * device or image, from the best surviving metadata copies of the source:
 * same uuid and geometry, every table block in both copies of a pair, a
 * seq above any seen on the source, the digest recomputed.  Records that
 * rm_pool_check() rejects are dropped and reported; the data of every
 * mapped spare block is copied.  The source is only read.
 * Documentation/offline-tools.md, man/remap_repair.8.
 *
 * Exit codes: 0 the destination holds a clean pool with everything the
 * source's load rule gives; 1 it holds a clean pool, but the source was
 * beyond what the kernel accepts and something was dropped or may be
 * missing (see the report); 2 nothing usable on the source, or the result
 * does not verify; 3 usage error, refusal (nothing written) or I/O error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "mdread.h"
#include "mdwrite.h"

static const char *prog = "remap_repair";
static bool quiet;

#define EXIT_LOST	1
#define EXIT_FAILED	2

struct repair {
	const char *src_path;
	struct md_image src, dst;
	struct md_pool pool;		/* as loaded from src */
	struct rm_sb sb;		/* of the new pool */
	struct rm_dev devs[RM_MAX_DEVS];
	struct rm_name names[RM_MAX_DEVS];
	struct rm_entry *entries;
	struct md_records rec;
	int64_t dropped;
	uint64_t lost_data;
	bool created;			/* dst is an image file made by us: */
	struct stat created_st;		/* its identity, when created */
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static int fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static void report_drop(void *ctx, const struct rm_problem *p)
{
	struct md_problem mp = { .what = MD_RECORD, .rec = *p };
	struct repair *rp = ctx;
	char text[256];

	md_problem_text(&mp, text, sizeof(text));
	say("%s: dropping: %s\n", rp->src_path, text);
}

/* ---- The destination ----------------------------------------------------- */

/* Open dst, creating an image file of the pool's size if it does not exist. */
static int open_dst(struct repair *rp, const char *path, bool force)
{
	uint64_t need = rp->sb.geo.dev_sectors << RM_SECTOR_SHIFT;
	struct rm_sb old;
	char why[128];
	int fd, r;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0) {
		rp->created = !fstat(fd, &rp->created_st);
		r = ftruncate(fd, (off_t)need) ? -errno : 0;
		close(fd);
		if (r)
			return fail(MD_EXIT_USAGE, "%s: cannot size the new image: %s",
				    path, strerror(-r));
	} else if (errno != EEXIST) {
		return fail(MD_EXIT_USAGE, "%s: cannot create: %s", path,
			    strerror(errno));
	}
	/* O_EXCL: a block device must not be mounted or held by dm. */
	r = md_open(&rp->dst, path, O_RDWR | O_EXCL);
	if (r)
		return fail(MD_EXIT_USAGE, "%s: cannot open: %s", path,
			    md_open_error(&rp->dst, r, why, sizeof(why)));
	/* Still the file created above, not one swapped in since. */
	if (rp->created && (rp->dst.blockdev ||
			    rp->dst.dev != rp->created_st.st_dev ||
			    rp->dst.ino != rp->created_st.st_ino))
		return fail(MD_EXIT_USAGE, "%s: replaced while it was being created",
			    path);
	r = md_overlap(&rp->src, &rp->dst);
	if (r < 0)
		return fail(MD_EXIT_USAGE, "%s: cannot tell whether it overlaps the source: %s",
			    path, strerror(-r));
	if (r)
		return fail(MD_EXIT_USAGE, "%s: overlaps the source; repair writes a new copy elsewhere",
			    path);
	/* Neither changes under the copy: not through a loop device either. */
	r = md_hold_loops(&rp->src);
	if (r)
		return fail(MD_EXIT_USAGE, "%s: cannot open: %s", rp->src_path,
			    md_open_error(&rp->src, r, why, sizeof(why)));
	/* A pool on a loop device over it, let go of since it was read. */
	if (rp->src.nr_loops &&
	    (md_probe(&rp->src, &old) <= 0 || old.seq != rp->pool.sb.seq))
		return fail(MD_EXIT_USAGE, "%s: changed while it was read (a pool used it); run the repair again",
			    rp->src_path);
	r = md_hold_loops(&rp->dst);
	if (r)
		return fail(MD_EXIT_USAGE, "%s: cannot open: %s", path,
			    md_open_error(&rp->dst, r, why, sizeof(why)));
	if (rp->dst.bytes < need)
		return fail(MD_EXIT_USAGE, "%s: too small: %" PRIu64
			    " sectors, the pool needs %" PRIu64, path,
			    rp->dst.bytes >> RM_SECTOR_SHIFT,
			    rp->sb.geo.dev_sectors);
	if (rp->dst.sector > rp->sb.geo.block_size)
		return fail(MD_EXIT_USAGE, "%s: %u-byte logical blocks, above the pool's %u-byte blocks (the module would refuse it)",
			    path, rp->dst.sector, rp->sb.geo.block_size);
	posix_fadvise(rp->dst.fd, 0, 0, POSIX_FADV_DONTNEED);
	r = md_probe(&rp->dst, &old);
	if (r < 0)
		return fail(MD_EXIT_USAGE, "%s: %s", path, strerror(-r));
	if (r > 0 && !force)
		return fail(MD_EXIT_USAGE, "%s: holds a dm-remap pool (seq %" PRIu64
			    "); --force overwrites it", path, old.seq);
	return 0;
}

/*
 * Copy the data of every mapped spare block.  A block the source cannot
 * read has lost its data: its entry becomes pending, which is what the
 * kernel records for a block whose data is gone.
 */
static int copy_data(struct repair *rp)
{
	const struct rm_geometry *g = &rp->sb.geo;
	unsigned int shift = rm_block_sector_shift(g->block_size);
	void *buf;
	uint64_t i, off;
	int r = 0;

	if (posix_memalign(&buf, RM_MD_BLOCK_SIZE, g->block_size))
		return -ENOMEM;
	for (i = 0; i < g->nr_blocks && !r; i++) {
		struct rm_entry *e = &rp->entries[i];

		if (e->state != RM_ENTRY_MAPPED)
			continue;
		off = (g->data_start + (i << shift)) << RM_SECTOR_SHIFT;
		if (md_pread(&rp->src, buf, g->block_size, off)) {
			say("%s: entry %" PRIu64 " (dev %u, main block %" PRIu64
			    "): spare block unreadable, data lost: now pending\n",
			    rp->src_path, i, e->dev_id, e->main_block);
			e->state = RM_ENTRY_PENDING;
			rp->lost_data++;
			continue;
		}
		r = md_pwrite(&rp->dst, buf, g->block_size, off);
	}
	free(buf);
	return r;
}

/* Load what was written with the load rule: clean and the same records. */
static int verify(struct repair *rp, const char *path)
{
	struct md_image img;
	struct md_pool got;
	int code;

	code = md_tool_load(prog, path, &img, &got, 0);
	if (!code && got.worst) {
		md_print_problems(stderr, path, &got);
		code = fail(EXIT_FAILED, "%s: the written pool does not check clean",
			    path);
	} else if (!code &&
		   (memcmp(got.devs, rp->devs, sizeof(rp->devs)) ||
		    memcmp(got.names, rp->names, sizeof(rp->names)) ||
		    !rm_entries_equal(got.entries, rp->entries,
				      rp->sb.geo.nr_blocks))) {
		code = fail(EXIT_FAILED, "%s: the written pool reads back differently",
			    path);
	}
	md_pool_free(&got);
	return code;
}

static int write_dst(struct repair *rp, const char *path)
{
	int r;

	r = md_write_clear_sbs(&rp->dst);
	if (!r)
		r = copy_data(rp);
	if (!r)
		r = md_write_table(&rp->dst, &rp->sb, &rp->rec);
	if (!r)
		r = md_write_sbs(&rp->dst, &rp->sb);
	if (r)
		return fail(MD_EXIT_USAGE, "%s: write failed: %s", path,
			    strerror(-r));
	return 0;
}

static int repair_into(struct repair *rp, const char *dst_path, bool force)
{
	const struct md_pool *pool = &rp->pool;
	char uuid[MD_UUID_TEXT];
	uint64_t after;
	int r;

	if (!pool->have_sb || !pool->entries || !pool->next_seq) {
		md_print_problems(stderr, rp->src_path, pool);
		return fail(EXIT_FAILED, "%s: nothing to repair from",
			    rp->src_path);
	}
	/* The copy is written with next_seq: it must load (2^63 - 1 does not). */
	if (rm_next_seq(pool->next_seq, 0, &after))
		return fail(EXIT_FAILED, "%s: sequence number %" PRIu64
			    " too high for a copy (2^63 or above)", rp->src_path,
			    pool->next_seq);
	rp->sb = pool->sb;
	rp->sb.seq = pool->next_seq;
	rp->sb.flags = 0;
	r = open_dst(rp, dst_path, force);
	if (r)
		return r;
	if (!quiet)
		md_print_problems(stdout, rp->src_path, pool);
	memcpy(rp->devs, pool->devs, sizeof(rp->devs));
	memcpy(rp->names, pool->names, sizeof(rp->names));
	rp->entries = pool->entries;
	rp->rec = (struct md_records){ rp->devs, rp->names, rp->entries };
	rp->dropped = md_drop_bad_records(&rp->sb, &rp->rec, report_drop, rp);
	if (rp->dropped == -ENOMEM)
		return fail(MD_EXIT_USAGE, "out of memory");
	if (rp->dropped < 0)
		return fail(EXIT_FAILED, "%s: records still inconsistent",
			    rp->src_path);
	r = write_dst(rp, dst_path);
	if (!r)
		r = verify(rp, dst_path);
	/*
	 * No copy that failed stays loadable: its superblock copies are
	 * zeroed again (an image file this run created is removed instead).
	 */
	if (r && !rp->created && md_write_clear_sbs(&rp->dst))
		fprintf(stderr, "%s: %s: could not zero its superblocks again: do not resume it\n",
			prog, dst_path);
	md_close(&rp->dst);
	if (r)
		return r;
	md_uuid_text(rp->sb.uuid, uuid);
	say("%s: wrote pool %s seq %" PRIu64 ": %" PRId64 " records dropped, %"
	    PRIu64 " spare blocks unreadable\n", dst_path, uuid, rp->sb.seq,
	    rp->dropped, rp->lost_data);
	return pool->worst == MD_FATAL || rp->dropped || rp->lost_data ?
	       EXIT_LOST : 0;
}

/*
 * A failed repair leaves no image file of its own making behind (and
 * removes nothing else: the path must still name the file it created).
 */
static int repair(struct repair *rp, const char *dst_path, bool force)
{
	int r = repair_into(rp, dst_path, force);
	struct stat st;

	if (r && r != EXIT_LOST && rp->created && !lstat(dst_path, &st) &&
	    S_ISREG(st.st_mode) && st.st_dev == rp->created_st.st_dev &&
	    st.st_ino == rp->created_st.st_ino) {
		md_close(&rp->dst);
		unlink(dst_path);
	}
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: %s [-f|--force] [-q|--quiet] <source> <destination>\n"
		"exit: 0 clean copy written, 1 written but records were dropped or lost,\n"
		"      2 nothing to repair from or the result does not verify,\n"
		"      3 usage error, refusal or I/O error\n", prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct repair rp;
	bool force = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "fqh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return MD_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return MD_EXIT_USAGE;
	}
	memset(&rp, 0, sizeof(rp));
	rp.dst.fd = -1;
	rp.src_path = argv[optind];
	/* O_EXCL: not the spare of an active pool, which changes under us. */
	if (md_open_say(prog, &rp.src, rp.src_path, O_RDONLY | O_EXCL))
		return MD_EXIT_USAGE;
	r = md_load(&rp.src, &rp.pool, MD_LOAD_SALVAGE);
	if (r)
		r = fail(MD_EXIT_USAGE, "%s: %s", rp.src_path, strerror(-r));
	else
		r = repair(&rp, argv[optind + 1], force);
	md_close(&rp.dst);
	md_close(&rp.src);
	md_pool_free(&rp.pool);
	return md_tool_finish(prog, r);
}
