// SPDX-License-Identifier: GPL-2.0-only
/*
 * blk.c - block devices for remapctl: sysfs attributes, device numbers and
 * names, stable locators of main devices, and the superblock probe that
 * activate uses to find spare pools.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "remapctl.h"
#include "rm_format.h"

int sysfs_read(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

int sysfs_read_u64(const char *path, uint64_t *v)
{
	char buf[64];
	int r = sysfs_read(path, buf, sizeof(buf));

	if (r)
		return r;
	return parse_u64(buf, UINT64_MAX, v) ? -EINVAL : 0;
}

int sysfs_write(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, e;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	return (size_t)n == len ? 0 : -EIO;
}

int blk_devno(const char *path, dev_t *dev)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	*dev = st.st_rdev;
	return 0;
}

int blk_canon(const char *path, char *buf, size_t size, dev_t *dev)
{
	char *real = realpath(path, NULL);
	const char *p;
	int r;

	if (!real)
		return -errno;
	r = blk_devno(real, dev);
	for (p = real; !r && *p; p++)
		if (*p <= ' ' || *p > '~')
			r = -EILSEQ;
	if (!r && strlen(real) >= size)
		r = -ENAMETOOLONG;
	if (!r)
		strcpy(buf, real);
	free(real);
	return r;
}

const char *blk_strerror(int err)
{
	if (err == -ENOTBLK)
		return "not a block device";
	if (err == -EILSEQ)
		return "its path has whitespace or non-ASCII characters";
	return strerror(-err);
}

int blk_sectors(dev_t dev, uint64_t *sectors)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/size",
		 major(dev), minor(dev));
	return sysfs_read_u64(path, sectors);
}

int blk_kname(dev_t dev, char *buf, size_t size)
{
	char path[64], link[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u",
		 major(dev), minor(dev));
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	if (strlen(base) >= size)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}

int blk_path(dev_t dev, char *buf, size_t size)
{
	char kname[NAME_MAX + 1], path[PATH_MAX], name[256];
	int r = blk_kname(dev, kname, sizeof(kname));

	if (r)
		return r;
	snprintf(path, sizeof(path), "/sys/class/block/%s/dm/name", kname);
	if (!sysfs_read(path, name, sizeof(name)))
		snprintf(buf, size, "/dev/mapper/%s", name);
	else
		snprintf(buf, size, "/dev/%s", kname);
	return 0;
}

int parse_devno(const char *s, dev_t *dev)
{
	unsigned int ma, mi;
	char c;

	if (sscanf(s, "%u:%u%c", &ma, &mi, &c) != 2)
		return -EINVAL;
	*dev = makedev(ma, mi);
	return 0;
}

bool blk_held(const char *kname, char *by, size_t size)
{
	char path[PATH_MAX], name[256];
	struct dirent *de;
	bool held = false;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/class/block/%s/holders", kname);
	d = opendir(path);
	if (!d)
		return false;
	while ((de = readdir(d))) {
		if (de->d_name[0] != '.') {
			held = true;
			break;
		}
	}
	if (held && by) {
		/* A dm holder by its name, others (md) by their kernel name. */
		snprintf(path, sizeof(path), "/sys/class/block/%s/dm/name",
			 de->d_name);
		if (sysfs_read(path, name, sizeof(name)))
			snprintf(name, sizeof(name), "%s", de->d_name);
		snprintf(by, size, "%s", name);
	}
	closedir(d);
	return held;
}

/*
 * Is kname, or a device it is built on (its slaves, a partition's disk,
 * down to the bottom), a suspended dm device?  A read of it would wait
 * until that one is resumed.  The first found is named in which.
 */
static bool suspended_below(const char *kname, char *which, size_t len,
			    int depth)
{
	char path[PATH_MAX], real[PATH_MAX], buf[16], *slash;
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/class/block/%s/dm/suspended",
		 kname);
	if (!sysfs_read(path, buf, sizeof(buf)) && !strcmp(buf, "1")) {
		snprintf(which, len, "%s", kname);
		return true;
	}
	if (depth >= 16)	/* no real stack is this deep: stop rather than loop */
		return false;
	/* A partition: its disk is the directory above it. */
	snprintf(path, sizeof(path), "/sys/class/block/%s/partition", kname);
	if (!access(path, F_OK)) {
		snprintf(path, sizeof(path), "/sys/class/block/%s", kname);
		if (realpath(path, real) && (slash = strrchr(real, '/'))) {
			*slash = '\0';
			slash = strrchr(real, '/');
			if (slash && suspended_below(slash + 1, which, len,
						     depth + 1))
				return true;
		}
	}
	snprintf(path, sizeof(path), "/sys/class/block/%s/slaves", kname);
	d = opendir(path);
	if (!d)
		return false;
	while (!found && (de = readdir(d)))
		if (de->d_name[0] != '.')
			found = suspended_below(de->d_name, which, len,
						depth + 1);
	closedir(d);
	return found;
}

bool blk_suspended(const char *kname, char *which, size_t len)
{
	return suspended_below(kname, which, len, 0);
}

/* ---- Locators ------------------------------------------------------------ */

static bool locator_ok(const char *s)
{
	size_t len = strlen(s);
	const char *p;

	if (!len || len > LABEL_LOC_MAX)
		return false;
	/* No '\\': dm's message parser would take it for an escape. */
	for (p = s; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == '\\')
			return false;
	return true;
}

/*
 * Preference of a /dev/disk/by-id link name: lower is better; names that
 * describe the hardware come first, device-mapper's own names last.
 */
static int by_id_rank(const char *name)
{
	static const char *const pref[] = { "wwn-", "ata-", "scsi-",
					    "virtio-", "nvme-", "usb-" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pref); i++)
		if (!strncmp(name, pref[i], strlen(pref[i])))
			return i;
	if (!strncmp(name, "dm-", 3) || !strncmp(name, "lvm-", 4))
		return 100;
	return 50;
}

/* Best link in dir to dev (lowest rank, then name); 0 and buf set if any. */
static int best_link(const char *dir, dev_t dev, bool ranked, char *buf,
		     size_t size)
{
	int best_rank = INT_MAX, rank;
	char path[PATH_MAX], best[PATH_MAX] = "";
	struct dirent *de;
	dev_t d = 0;
	DIR *dp;

	dp = opendir(dir);
	if (!dp)
		return -ENOENT;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     de->d_name) >= sizeof(path))
			continue;
		if (blk_devno(path, &d) || d != dev || !locator_ok(path))
			continue;
		rank = ranked ? by_id_rank(de->d_name) : 0;
		if (rank < best_rank ||
		    (rank == best_rank && strcmp(path, best) < 0)) {
			best_rank = rank;
			strcpy(best, path);
		}
	}
	closedir(dp);
	if (!best[0] || strlen(best) >= size)
		return -ENOENT;
	strcpy(buf, best);
	return 0;
}

/*
 * by-path before by-uuid: a file system's UUID belongs to the content, and
 * the main device shows the file system made on its remap device (whose
 * mkfs gives a reused disk's old UUID up); a port does not change so.
 */
int blk_locator(dev_t dev, char *buf, size_t size)
{
	static const char *const dirs[] = { "/dev/disk/by-partuuid",
					    "/dev/disk/by-path",
					    "/dev/disk/by-uuid" };
	char kname[NAME_MAX + 1], path[PATH_MAX], name[256];
	unsigned int i;
	dev_t d = 0;

	if (!best_link("/dev/disk/by-id", dev, true, buf, size))
		return 0;
	for (i = 0; i < ARRAY_SIZE(dirs); i++)
		if (!best_link(dirs[i], dev, false, buf, size))
			return 0;
	if (blk_kname(dev, kname, sizeof(kname)))
		return -ENODEV;
	/* A dm device: its name is stable, its minor is not. */
	snprintf(path, sizeof(path), "/sys/class/block/%s/dm/name", kname);
	if (!sysfs_read(path, name, sizeof(name))) {
		snprintf(path, sizeof(path), "/dev/mapper/%s", name);
		if (!blk_devno(path, &d) && d == dev && locator_ok(path) &&
		    strlen(path) < size) {
			strcpy(buf, path);
			return 0;
		}
	}
	snprintf(path, sizeof(path), "/dev/%s", kname);
	if (!locator_ok(path) || strlen(path) >= size)
		return -ENAMETOOLONG;
	strcpy(buf, path);
	return 0;
}

int blk_resolve(const char *locator, dev_t *dev)
{
	if (locator[0] != '/')
		return -EINVAL;
	return blk_devno(locator, dev);
}

/* ---- Superblock probe ---------------------------------------------------- */

void uuid_str(const uint8_t u[16], char *buf)
{
	unsigned int i;

	for (i = 0; i < 16; i++) {
		buf += sprintf(buf, "%02x", u[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			*buf++ = '-';
	}
	*buf = 0;
}

/*
 * Read md blocks 0..7 with O_DIRECT (the kernel writes the superblock
 * with bios, so the page cache may be stale) and keep the valid copy with
 * the highest sequence number.
 */
int sb_probe(const char *path, struct pool_sb *out)
{
	const size_t len = RM_SB_COPIES * RM_MD_BLOCK_SIZE;
	struct rm_sb sb;
	unsigned int i;
	uint8_t *buf;
	ssize_t n;
	int fd, err, r = 0;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (posix_memalign((void **)&buf, RM_MD_BLOCK_SIZE, len)) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, buf, len, 0);
	if (n < 0)
		r = -errno;
	else if ((size_t)n < len)
		r = -ENOSPC;	/* too small to hold a pool */
	close(fd);
	for (i = 0; !r && i < RM_SB_COPIES; i++) {
		uint8_t *blk = buf + i * RM_MD_BLOCK_SIZE;

		if (memcmp(blk, RM_SB_MAGIC, RM_SB_MAGIC_LEN))
			continue;
		out->found = true;
		err = rm_sb_decode(blk, rm_sb_blocknr(i), &sb);
		if (err) {
			out->err = err;
			continue;
		}
		if (!out->valid || sb.seq > out->seq) {
			out->valid = true;
			out->seq = sb.seq;
			memcpy(out->uuid, sb.uuid, sizeof(out->uuid));
			out->block_size = sb.geo.block_size;
			out->nr_blocks = sb.geo.nr_blocks;
		}
	}
	free(buf);
	return r;
}
