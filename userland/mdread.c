// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdread.c - block I/O on a spare device or image file, and the kernel's
 * load rule (dm-remap-mgr/metadata.c, dmr_md_load) played offline with
 * every problem recorded.  See mdread.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <linux/major.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "mdread.h"

/* Logicals read per batch: 2 regions of 2 * this many blocks. */
#define MD_BATCH	64u
#define MD_BATCH_BYTES	(2 * (size_t)MD_BATCH * RM_MD_BLOCK_SIZE)
#define MD_ALIGN	RM_MD_BLOCK_SIZE

/* ---- Devices and image files --------------------------------------------- */

int md_open(struct md_image *img, const char *path, int flags)
{
	struct stat st;
	int r;

	memset(img, 0, sizeof(*img));
	img->path = path;
	img->fd = -1;
	/* O_NONBLOCK: a FIFO would wait for a writer before it is refused. */
	flags |= O_NONBLOCK | O_CLOEXEC;
	if ((flags & O_ACCMODE) == O_RDONLY) {
		img->fd = open(path, flags | O_DIRECT);
		img->direct = img->fd >= 0;
	}
	/* tmpfs and some file systems refuse O_DIRECT. */
	if (img->fd < 0)
		img->fd = open(path, flags, 0644);
	if (img->fd < 0)
		return -errno;
	if (fstat(img->fd, &st))
		goto err;
	img->sector = 1U << RM_SECTOR_SHIFT;
	img->dio_align = MD_ALIGN;
	if (S_ISBLK(st.st_mode)) {
		int ssz;

		img->blockdev = true;
		img->dev = st.st_rdev;
		if (ioctl(img->fd, BLKGETSIZE64, &img->bytes) ||
		    ioctl(img->fd, BLKSSZGET, &ssz))
			goto err;
		img->sector = (unsigned int)ssz;
		img->dio_align = img->sector;
	} else if (S_ISREG(st.st_mode)) {
		img->dev = st.st_dev;
		img->ino = st.st_ino;
		img->bytes = (uint64_t)st.st_size;
	} else {
		errno = ENOTBLK;
		goto err;
	}
	r = fcntl(img->fd, F_GETFL);
	if (r < 0 || fcntl(img->fd, F_SETFL, r & ~O_NONBLOCK))
		goto err;
	return 0;
err:
	r = -errno;
	close(img->fd);
	img->fd = -1;
	return r;
}

int md_open_say(const char *prog, struct md_image *img, const char *path,
		int flags)
{
	int r = md_open(img, path, flags);
	char why[128];

	if (r)
		fprintf(stderr, "%s: %s: cannot open: %s\n", prog, path,
			md_open_error(img, r, why, sizeof(why)));
	return r;
}

const char *md_open_error(const struct md_image *img, int r, char *buf,
			  size_t len)
{
	if (r == -ENOTBLK)
		return "not a block device or regular file";
	if (r == -EBUSY && img->busy_loop[0]) {
		snprintf(buf, len, "%s over %s is in use", img->busy_loop,
			 img->busy_sibling ? "the same file or device" : "it");
		return buf;
	}
	if (r == -EMLINK) {
		snprintf(buf, len, "more than %u loop devices over it",
			 MD_LOOPS_MAX);
		return buf;
	}
	return strerror(-r);
}

void md_close(struct md_image *img)
{
	while (img->nr_loops)
		close(img->loop_fd[--img->nr_loops]);
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}

/* A file (dev, ino) or a block device (rdev). */
struct md_ident {
	dev_t dev, rdev;
	ino_t ino;
};

static bool md_ident_eq(struct md_ident x, struct md_ident y)
{
	return x.rdev || y.rdev ? x.rdev == y.rdev :
				  x.dev == y.dev && x.ino == y.ino;
}

/*
 * What an image is stored on: itself, and below a block device the devices
 * of a dm or md device (sysfs slaves), the whole disk of a partition, and
 * the device or file behind a loop device, all the way down.  An entry is
 * "whole" when the image covers all of it: the image itself, and what a
 * whole loop device is over (its offset aside).
 */
#define MD_BELOW_MAX	256u
#define MD_BELOW_DEPTH	16

struct md_below {
	struct md_ident id[MD_BELOW_MAX];
	bool whole[MD_BELOW_MAX];
	unsigned int n;
	bool overflow;
};

/* Added, or newly whole: what is below it needs a (new) look. */
static bool below_add(struct md_below *b, struct md_ident id, bool whole)
{
	unsigned int i;

	for (i = 0; i < b->n; i++) {
		if (md_ident_eq(b->id[i], id)) {
			if (b->whole[i] || !whole)
				return false;
			b->whole[i] = true;
			return true;
		}
	}
	if (b->n == MD_BELOW_MAX) {
		b->overflow = true;
		return false;
	}
	b->id[b->n] = id;
	b->whole[b->n++] = whole;
	return true;
}

/* "MAJ:MIN" from a sysfs dev file. */
static int sysfs_devno(const char *path, dev_t *dev)
{
	unsigned int ma, mi;
	char buf[32];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	if (sscanf(buf, "%u:%u", &ma, &mi) != 2)
		return -EINVAL;
	*dev = makedev(ma, mi);
	return 0;
}

/* The loop device rdev's backing, through its /dev node. */
static bool loop_backing(dev_t rdev, struct md_ident *id)
{
	char path[PATH_MAX], buf[256], *name, *end;
	struct loop_info64 li;
	struct stat st;
	ssize_t n;
	int fd;
	bool ok;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent",
		 major(rdev), minor(rdev));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	name = strstr(buf, "DEVNAME=");
	if (!name)
		return false;
	name += strlen("DEVNAME=");
	end = strchr(name, '\n');
	if (end)
		*end = 0;
	snprintf(path, sizeof(path), "/dev/%s", name);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = !fstat(fd, &st) && S_ISBLK(st.st_mode) && st.st_rdev == rdev &&
	     !ioctl(fd, LOOP_GET_STATUS64, &li);
	close(fd);
	if (!ok)
		return false;
	memset(id, 0, sizeof(*id));
	id->rdev = (dev_t)li.lo_rdevice;	/* 0 over a file */
	id->dev = id->rdev ? 0 : (dev_t)li.lo_device;
	id->ino = id->rdev ? 0 : (ino_t)li.lo_inode;
	return true;
}

/*
 * O_EXCL covers a block device itself only; a loop device over the image
 * could be mounted, or be a remap device's main device or a pool's spare.
 * An image that is a loop device itself has siblings over the same file
 * or device: those too.  A loop device set up after this scan is not
 * seen; one detached meanwhile is passed over.
 */
int md_hold_loops(struct md_image *img)
{
	struct md_ident me = { .dev = img->dev, .ino = img->ino }, back, sib;
	char path[PATH_MAX];
	bool has_sib = false;
	struct dirent *de;
	int r = 0, fd;
	dev_t rdev;
	DIR *d;

	if (img->blockdev) {
		me = (struct md_ident){ .rdev = img->dev };
		has_sib = major(img->dev) == LOOP_MAJOR &&
			  loop_backing(img->dev, &sib);
	}
	d = opendir("/sys/block");
	if (!d)
		return errno == ENOENT ? 0 : -errno;	/* no sysfs: none seen */
	while (!r && (de = readdir(d))) {
		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dev", de->d_name);
		if (sysfs_devno(path, &rdev) || major(rdev) != LOOP_MAJOR ||
		    (img->blockdev && rdev == img->dev) ||
		    !loop_backing(rdev, &back) ||
		    !(md_ident_eq(back, me) || (has_sib && md_ident_eq(back, sib))))
			continue;
		if (img->nr_loops == MD_LOOPS_MAX) {
			r = -EMLINK;
			break;
		}
		snprintf(path, sizeof(path), "/dev/%s", de->d_name);
		fd = open(path, O_RDONLY | O_EXCL | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			img->loop_fd[img->nr_loops++] = fd;
		} else if (errno == EBUSY) {
			snprintf(img->busy_loop, sizeof(img->busy_loop),
				 "/dev/%.48s", de->d_name);
			img->busy_sibling = !md_ident_eq(back, me);
			r = -EBUSY;
		} else if (errno != ENOENT && errno != ENXIO) {
			r = -errno;
		}
	}
	closedir(d);
	return r;
}

static void below_walk(struct md_below *b, dev_t rdev, bool whole, int depth)
{
	struct md_ident id = { .rdev = rdev }, back;
	char dir[64], path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	dev_t lower;

	if (!below_add(b, id, whole))
		return;
	if (depth >= MD_BELOW_DEPTH) {
		b->overflow = true;
		return;
	}
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", major(rdev),
		 minor(rdev));
	snprintf(path, sizeof(path), "%s/partition", dir);
	if (!access(path, F_OK)) {
		snprintf(path, sizeof(path), "%s/../dev", dir);
		if (!sysfs_devno(path, &lower))
			below_walk(b, lower, false, depth + 1);
	}
	if (major(rdev) == LOOP_MAJOR && loop_backing(rdev, &back)) {
		if (back.rdev)
			below_walk(b, back.rdev, whole, depth + 1);
		else
			below_add(b, back, whole);
	}
	snprintf(path, sizeof(path), "%s/slaves", dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/slaves/%s/dev", dir,
			 de->d_name);
		if (!sysfs_devno(path, &lower))
			below_walk(b, lower, false, depth + 1);
	}
	closedir(d);
}

static void md_below(const struct md_image *img, struct md_below *b)
{
	struct md_ident id = { .dev = img->dev, .ino = img->ino };

	memset(b, 0, sizeof(*b));
	if (img->blockdev)
		below_walk(b, img->dev, true, 0);
	else
		below_add(b, id, true);
}

/* i of x in b, or -1. */
static int below_find(const struct md_below *b, struct md_ident x)
{
	unsigned int i;

	for (i = 0; i < b->n; i++)
		if (md_ident_eq(b->id[i], x))
			return (int)i;
	return -1;
}

/*
 * Writing one image can change the other when one covers all of something
 * the other is stored on.  Two partitions of one disk, or two dm devices
 * over one disk, are taken as disjoint.
 */
int md_overlap(const struct md_image *a, const struct md_image *b)
{
	struct md_below *ba, *bb;
	unsigned int i;
	int r = 0, j;

	ba = malloc(sizeof(*ba));
	bb = malloc(sizeof(*bb));
	if (!ba || !bb) {
		r = -ENOMEM;
		goto out;
	}
	md_below(a, ba);
	md_below(b, bb);
	if (ba->overflow || bb->overflow) {
		r = -E2BIG;
		goto out;
	}
	for (i = 0; i < ba->n && !r; i++) {
		j = below_find(bb, ba->id[i]);
		r = j >= 0 && (ba->whole[i] || bb->whole[j]);
	}
out:
	free(ba);
	free(bb);
	return r;
}

void *md_alloc_blocks(size_t n)
{
	void *p;

	if (!n || n > SIZE_MAX / RM_MD_BLOCK_SIZE ||
	    posix_memalign(&p, MD_ALIGN, n * RM_MD_BLOCK_SIZE))
		return NULL;
	memset(p, 0, n * RM_MD_BLOCK_SIZE);
	return p;
}

/* The whole range or an error: -errno, or -EIO for a short transfer. */
static int md_io_all(int fd, void *buf, size_t len, uint64_t off, bool write)
{
	uint8_t *p = buf;
	ssize_t r;

	while (len) {
		if (write)
			r = pwrite(fd, p, len, (off_t)off);
		else
			r = pread(fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/*
 * An O_DIRECT read of an unaligned range goes through an aligned bounce,
 * aligned to a block device's sector only: a wider read would fail the
 * range for a bad sector outside it (a 512-byte spare block next to a bad
 * one).
 */
static int md_pread_bounce(struct md_image *img, void *buf, size_t len,
			   uint64_t off)
{
	uint64_t sec = img->dio_align;
	uint64_t start = off / sec * sec;
	uint64_t end = (off + len + sec - 1) / sec * sec;
	void *bounce;
	int r;

	if (end > img->bytes)
		end = img->bytes;	/* a multiple of the device's sector */
	if (posix_memalign(&bounce, MD_ALIGN, end - start))
		return -ENOMEM;
	r = md_io_all(img->fd, bounce, end - start, start, false);
	if (!r)
		memcpy(buf, (uint8_t *)bounce + (off - start), len);
	free(bounce);
	return r;
}

int md_pread(struct md_image *img, void *buf, size_t len, uint64_t off)
{
	if (off > img->bytes || len > img->bytes - off)
		return -EIO;	/* past the end: like an unreadable block */
	if (img->direct &&
	    ((off | len) % img->dio_align || (uintptr_t)buf & (MD_ALIGN - 1)))
		return md_pread_bounce(img, buf, len, off);
	return md_io_all(img->fd, buf, len, off, false);
}

int md_pwrite(struct md_image *img, const void *buf, size_t len, uint64_t off)
{
	return md_io_all(img->fd, (void *)buf, len, off, true);
}

int md_sync(struct md_image *img)
{
	return fsync(img->fd) ? -errno : 0;
}

/*
 * Read n md blocks from blocknr; ok[i] says whether block i could be read.
 * One read for the run, block by block only if that fails.
 */
static void md_read_blocks(struct md_image *img, uint8_t *buf,
			   uint64_t blocknr, unsigned int n, bool *ok)
{
	unsigned int i;

	if (!md_pread(img, buf, (size_t)n * RM_MD_BLOCK_SIZE,
		      blocknr * RM_MD_BLOCK_SIZE)) {
		for (i = 0; i < n; i++)
			ok[i] = true;
		return;
	}
	for (i = 0; i < n; i++) {
		uint8_t *b = buf + (size_t)i * RM_MD_BLOCK_SIZE;

		ok[i] = !md_pread(img, b, RM_MD_BLOCK_SIZE,
				  (blocknr + i) * RM_MD_BLOCK_SIZE);
		if (!ok[i])
			memset(b, 0, RM_MD_BLOCK_SIZE);
	}
}


const char *md_state_name(uint8_t state)
{
	static const char *const names[] = {
		[RM_ENTRY_FREE] = "free",
		[RM_ENTRY_MAPPED] = "mapped",
		[RM_ENTRY_PENDING] = "pending",
		[RM_ENTRY_RETIRED] = "retired",
	};

	return state <= RM_ENTRY_RETIRED ? names[state] : "invalid";
}

void md_uuid_text(const uint8_t uuid[RM_UUID_SIZE], char out[MD_UUID_TEXT])
{
	unsigned int i;
	char *p = out;

	for (i = 0; i < RM_UUID_SIZE; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", uuid[i]);
	}
}

/* ---- Problems ------------------------------------------------------------ */

const char *md_strerror(int err)
{
	if (err == MD_E_IO || err == -MD_E_IO)
		return "read error";
	return rm_strerror(err);
}

const char *md_sev_name(enum md_sev sev)
{
	return sev == MD_FATAL ? "fatal" : "damaged";
}

static void md_record_text(const struct rm_problem *p, char *buf, size_t len)
{
	const char *e = md_strerror(p->err);

	switch (p->obj) {
	case RM_OBJ_DEV:
		if (p->err == RM_E_DUP_DEV)
			snprintf(buf, len, "device record %" PRIu64
				 " (dev %u): %s, first in record %" PRIu64,
				 p->index, p->dev_id, e, p->other);
		else
			snprintf(buf, len, "device record %" PRIu64
				 " (dev %u): %s", p->index, p->dev_id, e);
		break;
	case RM_OBJ_ENTRY:
		if (p->err == RM_E_DUP_MAP)
			snprintf(buf, len, "entry %" PRIu64 " (dev %u, main block %"
				 PRIu64 "): %s, first in entry %" PRIu64,
				 p->index, p->dev_id, p->main_block, e,
				 p->other);
		else
			snprintf(buf, len, "entry %" PRIu64 " (dev %u, main block %"
				 PRIu64 "): %s", p->index, p->dev_id,
				 p->main_block, e);
		break;
	case RM_OBJ_NAME:
		snprintf(buf, len, "label record %" PRIu64 " (dev %u): %s",
			 p->index, p->dev_id, e);
		break;
	default:
		snprintf(buf, len, "pool geometry: %s", e);
		break;
	}
}

void md_problem_text(const struct md_problem *p, char *buf, size_t len)
{
	const char *e = md_strerror(p->err);

	switch (p->what) {
	case MD_SB_BAD:
		snprintf(buf, len, "superblock copy %" PRIu64 ": %s", p->index, e);
		break;
	case MD_SB_STALE:
		snprintf(buf, len, "superblock copy %" PRIu64 ": stale, seq %"
			 PRIu64 " below the current %" PRIu64, p->index, p->seq,
			 p->expect);
		break;
	case MD_SB_OTHER:
		snprintf(buf, len, "superblock copy %" PRIu64 ": seq %" PRIu64
			 " like the loaded copy but other contents", p->index,
			 p->seq);
		break;
	case MD_SB_NONE:
		snprintf(buf, len, "no valid superblock copy: %s",
			 "not a dm-remap pool, or every copy damaged");
		break;
	case MD_DEV_SMALL:
		snprintf(buf, len, "device has %" PRIu64
			 " sectors, the pool was formatted on %" PRIu64,
			 p->seq, p->expect);
		break;
	case MD_SLOT_TWIN:
		if (p->err)
			snprintf(buf, len, "logical %" PRIu64 ": slot %u (md block %"
				 PRIu64 "): %s; redundancy lost", p->index,
				 p->slot, p->blocknr, e);
		else
			snprintf(buf, len, "logical %" PRIu64 ": slot %u (md block %"
				 PRIu64 "): seq %" PRIu64
				 " differs from its twin; redundancy lost",
				 p->index, p->slot, p->blocknr, p->seq);
		break;
	case MD_SLOT_AHEAD:
		snprintf(buf, len, "logical %" PRIu64 ": slot %u (md block %" PRIu64
			 "): seq %" PRIu64 " above the superblock's %" PRIu64
			 " (interrupted commit)", p->index, p->slot, p->blocknr,
			 p->seq, p->expect);
		break;
	case MD_SLOT_UNREAD:
		snprintf(buf, len, "logical %" PRIu64 ": slot %u (md block %" PRIu64
			 "): %s; not in use, the first commit must rewrite it",
			 p->index, p->slot, p->blocknr, e);
		break;
	case MD_NO_COPY:
		snprintf(buf, len, "logical %" PRIu64 ": no valid copy at or below seq %"
			 PRIu64 ": committed table block lost", p->index,
			 p->expect);
		break;
	case MD_PAYLOAD:
		snprintf(buf, len, "logical %" PRIu64 ": payload: %s", p->index, e);
		break;
	case MD_DIGEST:
		snprintf(buf, len, "table digest mismatch (computed %08" PRIx64
			 ", superblock %08" PRIx64 "): committed table block lost",
			 p->seq, p->expect);
		break;
	case MD_SEQ_END:
		snprintf(buf, len, "sequence number 2^63 or above");
		break;
	case MD_RECORD:
		md_record_text(&p->rec, buf, len);
		break;
	case MD_DEV_SECTOR:
		snprintf(buf, len, "device has %" PRIu64
			 "-byte logical blocks, above the pool's %" PRIu64
			 "-byte blocks", p->seq, p->expect);
		break;
	}
}

void md_print_problems(FILE *f, const char *label,
		       const struct md_pool *pool)
{
	char text[256];
	size_t i;

	for (i = 0; i < pool->nr_problems; i++) {
		md_problem_text(&pool->problems[i], text, sizeof(text));
		fprintf(f, "%s: %s: %s\n", label,
			md_sev_name(pool->problems[i].sev), text);
	}
	if (pool->nr_dropped)
		fprintf(f, "%s: %" PRId64 " more problems (out of memory)\n",
			label, pool->nr_dropped);
}

static void md_add(struct md_pool *pool, const struct md_problem *p)
{
	if (p->sev > pool->worst)
		pool->worst = p->sev;
	if (pool->nr_problems == pool->cap_problems) {
		size_t cap = pool->cap_problems ? 2 * pool->cap_problems : 16;
		struct md_problem *n;

		n = realloc(pool->problems, cap * sizeof(*n));
		if (!n) {
			pool->nr_dropped++;
			return;
		}
		pool->problems = n;
		pool->cap_problems = cap;
	}
	pool->problems[pool->nr_problems++] = *p;
}

static void md_add_simple(struct md_pool *pool, enum md_what what,
			  enum md_sev sev, int err, uint64_t index)
{
	struct md_problem p = {
		.what = what, .sev = sev, .err = err < 0 ? -err : err,
		.index = index,
	};

	md_add(pool, &p);
}

static void md_add_record(struct md_pool *pool, int err, enum rm_obj obj,
			  uint64_t index, uint32_t dev_id, uint64_t main_block)
{
	struct md_problem p = {
		.what = MD_RECORD, .sev = MD_FATAL, .err = err < 0 ? -err : err,
		.rec = {
			.err = err < 0 ? -err : err, .obj = obj, .index = index,
			.dev_id = dev_id, .main_block = main_block,
		},
	};

	md_add(pool, &p);
}

static void md_check_report(void *ctx, const struct rm_problem *rp)
{
	struct md_problem p = {
		.what = MD_RECORD, .sev = MD_FATAL, .err = rp->err, .rec = *rp,
	};

	md_add(ctx, &p);
}

/* ---- Superblocks --------------------------------------------------------- */

/* Decoded copies equal but for the copy index?  (No memcmp: padding.) */
static bool md_sb_equal(const struct rm_sb *a, const struct rm_sb *b)
{
	const struct rm_geometry *x = &a->geo, *y = &b->geo;

	return a->version == b->version && a->flags == b->flags &&
	       a->table_digest == b->table_digest && a->seq == b->seq &&
	       !memcmp(a->uuid, b->uuid, RM_UUID_SIZE) &&
	       x->block_size == y->block_size &&
	       x->dev_sectors == y->dev_sectors &&
	       x->table_start == y->table_start &&
	       x->nr_logical == y->nr_logical &&
	       x->data_start == y->data_start && x->nr_blocks == y->nr_blocks;
}

static int md_load_sb(struct md_image *img, struct md_pool *pool)
{
	struct rm_slot_state st[RM_SB_COPIES];
	struct rm_sb sbs[RM_SB_COPIES];
	bool ok[RM_SB_COPIES];
	uint8_t *buf;
	unsigned int c;
	int best, r;

	buf = md_alloc_blocks(RM_SB_COPIES);
	if (!buf)
		return -ENOMEM;
	memset(sbs, 0, sizeof(sbs));
	md_read_blocks(img, buf, 0, RM_SB_COPIES, ok);
	/*
	 * Not one copy read from a device big enough to hold them all: the
	 * device cannot be read (a pool that is not one is another matter).
	 */
	for (c = 0; c < RM_SB_COPIES && !ok[c]; c++)
		;
	if (c == RM_SB_COPIES &&
	    img->bytes >= (uint64_t)RM_SB_COPIES * RM_MD_BLOCK_SIZE) {
		free(buf);
		return -EIO;
	}
	for (c = 0; c < RM_SB_COPIES; c++) {
		r = -MD_E_IO;
		if (ok[c])
			r = rm_sb_decode(buf + c * RM_MD_BLOCK_SIZE, c, &sbs[c]);
		st[c].valid = !r;
		st[c].seq = r ? 0 : sbs[c].seq;
		if (r) {
			struct md_problem p = {
				.what = MD_SB_BAD, .sev = MD_DAMAGED, .err = -r,
				.index = c, .blocknr = rm_sb_blocknr(c),
			};

			md_add(pool, &p);
		}
	}
	free(buf);
	best = rm_sb_pick(st, RM_SB_COPIES);
	if (best < 0) {
		md_add_simple(pool, MD_SB_NONE, MD_FATAL, RM_E_NO_VALID, 0);
		return 0;
	}
	pool->have_sb = true;
	pool->sb_copy = best;
	pool->sb = sbs[best];
	pool->max_seen = pool->sb.seq;
	for (c = 0; c < RM_SB_COPIES; c++) {
		struct md_problem p = {
			.sev = MD_DAMAGED, .index = c, .seq = st[c].seq,
			.blocknr = rm_sb_blocknr(c), .expect = pool->sb.seq,
		};

		if (!st[c].valid || (int)c == best)
			continue;
		if (st[c].seq < pool->sb.seq)
			p.what = MD_SB_STALE;
		else if (!md_sb_equal(&sbs[c], &pool->sb))
			p.what = MD_SB_OTHER;
		else
			continue;
		md_add(pool, &p);
	}
	return 0;
}

int md_probe(struct md_image *img, struct rm_sb *sb)
{
	struct md_pool pool;
	int r, valid = RM_SB_COPIES;
	size_t i;

	memset(&pool, 0, sizeof(pool));
	r = md_load_sb(img, &pool);
	for (i = 0; i < pool.nr_problems; i++)
		valid -= pool.problems[i].what == MD_SB_BAD;
	if (pool.have_sb)
		*sb = pool.sb;
	else
		valid = 0;
	md_pool_free(&pool);
	return r ? r : valid;
}

/* ---- Table blocks -------------------------------------------------------- */

/* Payload bytes past the records in use must be zero. */
static void md_check_tail(struct md_pool *pool, uint32_t l, const uint8_t *p,
			  size_t used)
{
	size_t i;

	for (i = used; i < RM_MD_BLOCK_SIZE - RM_TB_HDR_SIZE; i++) {
		if (p[i]) {
			md_add_simple(pool, MD_PAYLOAD, MD_FATAL, RM_E_UNUSED,
				      l);
			return;
		}
	}
}

/*
 * Decode the payload of logical l record by record, so that every bad
 * record is reported.  Together with rm_pool_check() and rm_names_check()
 * this rejects exactly what rm_tblock_decode() rejects: reserved bytes
 * and label rules here, the record rules and duplicate dev_ids there.
 */
static void md_decode_payload(struct md_pool *pool, uint32_t l,
			      const uint8_t *blk)
{
	const uint8_t *p = blk + RM_TB_HDR_SIZE;
	uint32_t i, n, first;
	int r;

	switch (rm_logical_kind(l)) {
	case RM_TB_DEVTABLE:
		for (i = 0; i < RM_MAX_DEVS; i++) {
			struct rm_dev *d = &pool->devs[i];

			r = rm_dev_decode(p + i * RM_DEV_RECORD_SIZE, d);
			if (r == -RM_E_RESERVED)
				md_add_record(pool, r, RM_OBJ_DEV, i,
					      d->dev_id, 0);
		}
		md_check_tail(pool, l, p, RM_MAX_DEVS * RM_DEV_RECORD_SIZE);
		break;
	case RM_TB_NAMES:
		first = rm_name_first(l);
		n = RM_MAX_DEVS - first < RM_NAMES_PER_BLOCK ?
		    RM_MAX_DEVS - first : RM_NAMES_PER_BLOCK;
		for (i = 0; i < n; i++) {
			struct rm_name *nm = &pool->names[first + i];

			r = rm_name_decode(p + i * RM_NAME_RECORD_SIZE, nm);
			if (r)
				md_add_record(pool, r, RM_OBJ_NAME, first + i,
					      nm->dev_id, 0);
		}
		md_check_tail(pool, l, p, (size_t)n * RM_NAME_RECORD_SIZE);
		break;
	default:
		n = rm_entries_in_logical(&pool->sb.geo, l);
		for (i = 0; i < n; i++) {
			uint64_t idx = rm_logical_first_entry(l) + i;
			struct rm_entry *e = &pool->entries[idx];

			r = rm_entry_decode(p + i * RM_ENTRY_SIZE, e);
			if (r == -RM_E_RESERVED)
				md_add_record(pool, r, RM_OBJ_ENTRY, idx,
					      e->dev_id, e->main_block);
		}
		md_check_tail(pool, l, p, (size_t)n * RM_ENTRY_SIZE);
		break;
	}
}

/* Equal table blocks but for their location (blocknr and checksum)? */
static bool md_twins(const uint8_t *a, const uint8_t *b)
{
	return !memcmp(a, b, RM_TB_OFF_CSUM) &&
	       !memcmp(a + RM_TB_OFF_KIND, b + RM_TB_OFF_KIND,
		       RM_TB_OFF_BLOCKNR - RM_TB_OFF_KIND) &&
	       !memcmp(a + RM_TB_OFF_SEQ, b + RM_TB_OFF_SEQ,
		       RM_MD_BLOCK_SIZE - RM_TB_OFF_SEQ);
}

/* The newest valid slot of any seq, for MD_LOAD_SALVAGE; -1 if none. */
static int md_salvage_slot(const struct rm_slot_state st[RM_MD_SLOTS])
{
	unsigned int s;
	int best = -1;

	for (s = 0; s < RM_MD_SLOTS; s++)
		if (st[s].valid && (best < 0 || st[s].seq > st[best].seq))
			best = (int)s;
	return best;
}

/*
 * An unreadable slot outside the chosen pair may hold an interrupted
 * commit's block with a seq above the superblock's; the module rewrites
 * its logical with the first commit and refuses the pool if that commit
 * loses a copy.  (An unreadable twin of the chosen slot is MD_SLOT_TWIN;
 * with no slot chosen the pool is refused anyway: MD_NO_COPY.)
 */
static void md_unread_slots(struct md_pool *pool, uint32_t l,
			    const bool ok[RM_MD_SLOTS], unsigned int chosen)
{
	unsigned int s;

	for (s = 0; s < RM_MD_SLOTS; s++) {
		struct md_problem p = {
			.what = MD_SLOT_UNREAD, .sev = MD_DAMAGED, .index = l,
			.slot = s, .err = MD_E_IO,
			.blocknr = rm_slot_blocknr(&pool->sb.geo, l, s),
		};

		if (!ok[s] && rm_slot_pair(s) != rm_slot_pair(chosen))
			md_add(pool, &p);
	}
}

/* Apply the load rule to logical l, whose 4 slots are in blk[]. */
static void md_load_logical(struct md_pool *pool, uint32_t l,
			    uint8_t *blk[RM_MD_SLOTS],
			    const bool ok[RM_MD_SLOTS], unsigned int flags)
{
	const struct rm_geometry *g = &pool->sb.geo;
	struct rm_slot_state st[RM_MD_SLOTS];
	int err[RM_MD_SLOTS];
	struct rm_tblock_hdr hdr;
	struct rm_pick pick;
	unsigned int s, twin;
	int r, slot;

	for (s = 0; s < RM_MD_SLOTS; s++) {
		err[s] = ok[s] ? rm_tblock_decode_hdr(blk[s], &pool->sb,
						      rm_slot_blocknr(g, l, s),
						      &hdr) : -MD_E_IO;
		st[s].valid = !err[s];
		st[s].seq = err[s] ? 0 : hdr.seq;
	}
	r = rm_pick_slot(st, pool->sb.seq, &pick);
	if (pick.max_seq > pool->max_seen)
		pool->max_seen = pick.max_seq;
	for (s = 0; s < RM_MD_SLOTS; s++) {
		struct md_problem p = {
			.what = MD_SLOT_AHEAD, .sev = MD_DAMAGED, .index = l,
			.slot = s, .blocknr = rm_slot_blocknr(g, l, s),
			.seq = st[s].seq, .expect = pool->sb.seq,
		};

		if (st[s].valid && st[s].seq > pool->sb.seq)
			md_add(pool, &p);
	}
	if (!r)
		md_unread_slots(pool, l, ok, pick.slot);
	if (r) {
		struct md_problem p = {
			.what = MD_NO_COPY, .sev = MD_FATAL, .index = l,
			.expect = pool->sb.seq,
		};

		md_add(pool, &p);
		slot = flags & MD_LOAD_SALVAGE ? md_salvage_slot(st) : -1;
		if (slot < 0)
			return;
	} else {
		struct md_problem p = {
			.what = MD_SLOT_TWIN, .sev = MD_DAMAGED, .index = l,
		};

		slot = (int)pick.slot;
		twin = rm_slot_index(rm_slot_pair(pick.slot),
				     rm_slot_copy(pick.slot) ^ 1);
		p.slot = twin;
		p.blocknr = rm_slot_blocknr(g, l, twin);
		p.err = -err[twin];
		p.seq = st[twin].seq;
		if (err[twin] || !md_twins(blk[twin], blk[pick.slot]))
			md_add(pool, &p);
	}
	pool->slots[l] = (uint8_t)slot;
	pool->seqs[l] = st[slot].seq;
	md_decode_payload(pool, l, blk[slot]);
}

static int md_load_table(struct md_image *img, struct md_pool *pool,
			 unsigned int flags)
{
	const struct rm_geometry *g = &pool->sb.geo;
	bool ok[2][2 * MD_BATCH], slot_ok[RM_MD_SLOTS];
	uint8_t *buf, *blk[RM_MD_SLOTS];
	uint32_t l, i, n;
	unsigned int s, c;
	uint64_t left;

	pool->entries = calloc(g->nr_blocks, sizeof(*pool->entries));
	pool->seqs = calloc(g->nr_logical, sizeof(*pool->seqs));
	pool->slots = malloc(g->nr_logical);
	buf = md_alloc_blocks(4 * MD_BATCH);
	if (!pool->entries || !pool->seqs || !pool->slots || !buf) {
		free(buf);
		return -ENOMEM;
	}
	memset(pool->slots, MD_NO_SLOT, g->nr_logical);
	for (l = 0; l < g->nr_logical; l += n) {
		left = g->nr_logical - l;
		n = left < MD_BATCH ? (uint32_t)left : MD_BATCH;
		/* Both pairs of n logicals: 2n consecutive blocks per copy. */
		for (c = 0; c < 2; c++)
			md_read_blocks(img, buf + c * MD_BATCH_BYTES,
				       rm_slot_blocknr(g, l, c), 2 * n, ok[c]);
		for (i = 0; i < n; i++) {
			for (s = 0; s < RM_MD_SLOTS; s++) {
				unsigned int b = 2 * i + rm_slot_pair(s);

				c = rm_slot_copy(s);
				blk[s] = buf + c * MD_BATCH_BYTES +
					 (size_t)b * RM_MD_BLOCK_SIZE;
				slot_ok[s] = ok[c][b];
			}
			md_load_logical(pool, l + i, blk, slot_ok, flags);
		}
	}
	free(buf);
	return 0;
}

/* ---- The whole pool ------------------------------------------------------ */

static int md_check_pool(struct md_pool *pool)
{
	const struct rm_geometry *g = &pool->sb.geo;
	struct rm_check_key *scratch;
	uint64_t l, i;
	bool lost = false;

	for (l = 0; l < g->nr_logical; l++)
		lost |= pool->slots[l] == MD_NO_SLOT;
	/* A lost logical already makes the digest meaningless. */
	if (!lost && rm_table_digest(pool->seqs, g->nr_logical) !=
	    pool->sb.table_digest) {
		struct md_problem p = {
			.what = MD_DIGEST, .sev = MD_FATAL, .err = RM_E_DIGEST,
			.seq = rm_table_digest(pool->seqs, g->nr_logical),
			.expect = pool->sb.table_digest,
		};

		md_add(pool, &p);
	}
	scratch = calloc(g->nr_blocks, sizeof(*scratch));
	if (!scratch)
		return -ENOMEM;
	rm_pool_check(&pool->sb, pool->devs, pool->entries, g->nr_blocks,
		      scratch, md_check_report, pool);
	rm_names_check(pool->devs, pool->names, md_check_report, pool);
	free(scratch);
	for (i = 0; i < g->nr_blocks; i++)
		if (pool->entries[i].state <= RM_ENTRY_RETIRED)
			pool->counts[pool->entries[i].state]++;
	if (rm_next_seq(pool->sb.seq, pool->max_seen, &pool->next_seq))
		md_add_simple(pool, MD_SEQ_END, MD_FATAL, RM_E_SEQ, 0);
	return 0;
}

int md_load(struct md_image *img, struct md_pool *pool, unsigned int flags)
{
	const struct rm_geometry *g = &pool->sb.geo;
	int r;

	memset(pool, 0, sizeof(*pool));
	pool->sb_copy = -1;
	r = md_load_sb(img, pool);
	if (r || !pool->have_sb)
		return r;
	if (g->dev_sectors > img->bytes >> RM_SECTOR_SHIFT) {
		struct md_problem p = {
			.what = MD_DEV_SMALL, .sev = MD_FATAL,
			.err = RM_E_TOO_SMALL,
			.seq = img->bytes >> RM_SECTOR_SHIFT,
			.expect = g->dev_sectors,
		};

		/* The kernel stops here; so do we (nr_blocks is untrusted). */
		md_add(pool, &p);
		return 0;
	}
	if (g->block_size < img->sector) {
		struct md_problem p = {
			.what = MD_DEV_SECTOR, .sev = MD_FATAL,
			.err = RM_E_GEOMETRY,
			.seq = img->sector, .expect = g->block_size,
		};

		/*
		 * The kernel refuses such a pool (a copy of it on a 4Kn
		 * disk, say); its table still reads here, for a repair onto
		 * a device the pool fits.
		 */
		md_add(pool, &p);
	}
	r = md_load_table(img, pool, flags);
	if (!r)
		r = md_check_pool(pool);
	return r;
}

void md_pool_free(struct md_pool *pool)
{
	free(pool->entries);
	free(pool->seqs);
	free(pool->slots);
	free(pool->problems);
	memset(pool, 0, sizeof(*pool));
}

/* Held exclusively by someone else (a mount, dm, an active pool)? */
/* Does a line of /proc/self/mountinfo name rdev as its device? */
static bool md_mounted(dev_t rdev)
{
	unsigned int ma, mi;
	char line[4096];
	bool found = false;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %u:%u", &ma, &mi) == 2 &&
			makedev(ma, mi) == rdev;
	fclose(f);
	return found;
}

/* Has the directory entries other than "." and ".."? */
static bool dir_has_entries(const char *path)
{
	struct dirent *de;
	bool any = false;
	DIR *d;

	d = opendir(path);
	if (!d)
		return false;
	while (!any && (de = readdir(d)))
		any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return any;
}

/*
 * Why the block device rdev may change under a reader, or NULL: the spare
 * of an active pool (the pools' "dev" in sysfs), a device under a dm or md
 * device (sysfs holders), or mounted.  Looked up: a probe with O_EXCL
 * would make a mount or resume_spare at that instant fail.
 */
static const char *md_in_use(dev_t rdev)
{
	char path[PATH_MAX];
	struct dirent *de;
	const char *why = NULL;
	dev_t dev;
	DIR *d;

	d = opendir("/sys/module/dm_remap/pools");
	while (d && !why && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/module/dm_remap/pools/%s/dev",
			 de->d_name);
		if (!sysfs_devno(path, &dev) && dev == rdev)
			why = "the spare of an active pool";
	}
	if (d)
		closedir(d);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders",
		 major(rdev), minor(rdev));
	if (!why && dir_has_entries(path))
		why = "under another block device";
	if (!why && md_mounted(rdev))
		why = "mounted";
	return why;
}

int md_tool_load(const char *prog, const char *path, struct md_image *img,
		 struct md_pool *pool, unsigned int flags)
{
	const char *busy;
	int r;

	memset(pool, 0, sizeof(*pool));
	if (md_open_say(prog, img, path, O_RDONLY))
		return MD_EXIT_USAGE;
	busy = img->blockdev ? md_in_use(img->dev) : NULL;
	if (busy)
		fprintf(stderr, "%s: %s: warning: in use (%s): its metadata may change while it is read\n",
			prog, path, busy);
	r = md_load(img, pool, flags);
	md_close(img);
	if (r) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-r));
		return MD_EXIT_USAGE;
	}
	return 0;
}

int md_tool_finish(const char *prog, int code)
{
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "%s: write error on standard output\n", prog);
		return MD_EXIT_USAGE;
	}
	return code;
}
