/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-remap-compat.h - every kernel-version difference dm-remap cares about.
 *
 * Supported: Debian 12's 6.1 LTS, then 6.12 LTS.  Nothing outside this file
 * may test LINUX_VERSION_CODE.
 */
#ifndef DM_REMAP_COMPAT_H
#define DM_REMAP_COMPAT_H

#include <linux/version.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/fs.h>
#include <linux/ioprio.h>

/*
 * An exclusively opened block device (the spare).  6.1 opens with
 * FMODE_EXCL and a holder; 6.9+ opens a struct file.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
struct rm_bdev {
	struct file *file;
	struct block_device *bdev;
};

static inline int rm_bdev_open(const char *path, void *holder,
			       struct rm_bdev *b)
{
	b->file = bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE,
					 holder, NULL);
	if (IS_ERR(b->file))
		return PTR_ERR(b->file);
	b->bdev = file_bdev(b->file);
	return 0;
}

/* bdev_fput() (6.10+) gives the exclusive claim back before returning. */
static inline void rm_bdev_close(struct rm_bdev *b, void *holder)
{
	bdev_fput(b->file);
}
#elif LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
struct rm_bdev {
	struct block_device *bdev;
};

#define RM_BDEV_MODE (FMODE_READ | FMODE_WRITE | FMODE_EXCL)

static inline int rm_bdev_open(const char *path, void *holder,
			       struct rm_bdev *b)
{
	b->bdev = blkdev_get_by_path(path, RM_BDEV_MODE, holder);
	return PTR_ERR_OR_ZERO(b->bdev);
}

static inline void rm_bdev_close(struct rm_bdev *b, void *holder)
{
	blkdev_put(b->bdev, RM_BDEV_MODE);
}
#else
#error "dm-remap supports kernels 6.1-6.4 and 6.9 and later"
#endif

/*
 * dm_io() gained an ioprio argument in 6.9, backported to later 6.1.y
 * stable releases, so the version number cannot tell: Kbuild defines
 * RM_DM_IO_IOPRIO when the kernel's <linux/dm-io.h> has it.
 */
#ifdef RM_DM_IO_IOPRIO
#define RM_DM_IO_HAS_IOPRIO	true
#else
#define RM_DM_IO_HAS_IOPRIO	false
#endif

static inline int rm_dm_io_prio(struct dm_io_request *req, unsigned int nr,
				struct dm_io_region *where,
				unsigned long *errbits, unsigned short ioprio)
{
#ifdef RM_DM_IO_IOPRIO
	return dm_io(req, nr, where, errbits, ioprio);
#else
	return dm_io(req, nr, where, errbits);	/* ioprio: not on this kernel */
#endif
}

static inline int rm_dm_io(struct dm_io_request *req, unsigned int nr,
			   struct dm_io_region *where, unsigned long *errbits)
{
	return rm_dm_io_prio(req, nr, where, errbits, IOPRIO_DEFAULT);
}

/*
 * A spare that needs its pages stable while they are written (integrity
 * data, or it checksums or compresses them) makes the remap device need
 * that too.  Called from io_hints, which dm runs before it sets the
 * queue's restrictions.  Before 6.11 dm sets the queue flag only from the
 * devices iterate_devices reports (the main device) and
 * ti->needs_stable_writes; since, it is a queue limit feature, which
 * blk_stack_limits() passes on for BLK_FEAT_STABLE_WRITES but not for a
 * spare that needs it for its integrity data alone.
 */
static inline void rm_stable_writes_for(struct dm_target *ti,
					struct queue_limits *limits,
					struct block_device *spare)
{
	if (!bdev_stable_writes(spare))
		return;
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
	ti->needs_stable_writes = true;
#else
	limits->features |= BLK_FEAT_STABLE_WRITES;
#endif
}

#endif /* DM_REMAP_COMPAT_H */
