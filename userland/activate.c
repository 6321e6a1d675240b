// SPDX-License-Identifier: GPL-2.0-only
/*
 * activate.c - bring back, after boot, every dm-remap pool found on this
 * machine's block devices and the remap devices recorded in them.
 *
 * 1. Every block device in /sys/class/block that is not one of dm-remap's
 *    own dm devices, not held by another device and not the spare of an
 *    active pool has its superblock copies read; a valid copy makes it a
 *    pool.  Pools not active yet (by uuid) are resumed into the lowest
 *    free slot.
 * 2. For every active pool, the identity records (list_devices) that
 *    carry a name and a locator are re-created as remap devices when the
 *    locator resolves to a block device of the recorded size.  Devices
 *    already present are left alone; missing main devices are reported.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sysmacros.h>

#include "remapctl.h"

static const char help_activate[] =
"usage: remapctl activate\n"
"\n"
"Resume every dm-remap pool found on this machine's block devices that is\n"
"not active yet, then create the remap devices recorded in the pools (by\n"
"'remapctl create') whose main devices are present.  Pools and devices\n"
"that are already active are left alone, so it can be run again at any\n"
"time.  Exit status 3 when some recorded devices could not be created\n"
"because their main device is missing or has another size, 1 when a pool\n"
"or device was refused.\n";

struct found {
	char kname[NAME_MAX + 1];
	char path[NAME_MAX + 8];
	char uuid[40];
	dev_t dev;
	bool dup;
};

struct counts {
	int resumed, created, missing, failed;
};

/* Is the dm device kname one of dm-remap's (remap or remap-mgr)? */
static bool is_remap_dm(const char *kname, const struct dmdev *d, int n)
{
	char path[PATH_MAX], name[256];
	int i;

	snprintf(path, sizeof(path), "/sys/class/block/%s/dm/name", kname);
	if (sysfs_read(path, name, sizeof(name)))
		return false;
	for (i = 0; i < n; i++)
		if (!strcmp(d[i].name, name))
			return !strcmp(d[i].type, MGR_TARGET) ||
			       !strcmp(d[i].type, REMAP_TARGET);
	return false;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strverscmp((*a)->d_name, (*b)->d_name);
}

/* Candidate spares with a valid superblock; count, or -1. */
static int find_pools(struct found **out, const struct pool_info *act,
		      int nact, struct counts *c)
{
	struct dirent **ents;
	struct found *f = NULL;
	struct dmdev *d;
	struct pool_sb sb;
	char path[PATH_MAX], buf[32], susp[NAME_MAX + 1];
	uint64_t sectors;
	int i, j, n, nd, nf = 0;
	dev_t dev, adev;

	d = dmx_list(&nd);
	if (!d) {
		fail("activate", "cannot list device-mapper devices: %s",
		     why(REQ_MGR, -errno));
		return -1;
	}
	n = scandir("/sys/class/block", &ents, NULL, by_name);
	if (n < 0) {
		dmx_list_free(d, nd);
		fail("activate", "cannot read /sys/class/block: %s",
		     strerror(errno));
		return -1;
	}
	f = xcalloc(n, sizeof(*f));
	for (i = 0; i < n; i++) {
		const char *k = ents[i]->d_name;

		if (k[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/block/%s/dev", k);
		if (sysfs_read(path, buf, sizeof(buf)) ||
		    parse_devno(buf, &dev))
			continue;
		for (j = 0; j < nact; j++)
			if (!parse_devno(act[j].devno, &adev) && adev == dev)
				break;
		if (j < nact || blk_held(k, NULL, 0) || is_remap_dm(k, d, nd))
			continue;
		if (blk_suspended(k, susp, sizeof(susp))) {
			if (!strcmp(susp, k))
				warn("activate", "/dev/%s is suspended: not examined",
				     k);
			else
				warn("activate", "/dev/%s is built on /dev/%s, which is suspended: not examined",
				     k, susp);
			continue;
		}
		if (blk_sectors(dev, &sectors) || sectors < 64)
			continue;
		/* sysfs writes '!' for the '/' of names like cciss/c0d0. */
		snprintf(f[nf].path, sizeof(f[nf].path), "/dev/%s", k);
		for (j = 5; f[nf].path[j]; j++)
			if (f[nf].path[j] == '!')
				f[nf].path[j] = '/';
		if (blk_devno(f[nf].path, &adev) || adev != dev)
			continue;
		if (sb_probe(f[nf].path, &sb) || !sb.found)
			continue;
		if (!sb.valid) {
			fail(f[nf].path, "has dm-remap superblocks but no valid copy (%s); not resumed (remap_check can examine it)",
			     rm_strerror(sb.err));
			c->failed++;
			continue;
		}
		snprintf(f[nf].kname, sizeof(f[nf].kname), "%s", k);
		uuid_str(sb.uuid, f[nf].uuid);
		f[nf].dev = dev;
		nf++;
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	dmx_list_free(d, nd);
	/* The same pool seen twice (multipath, a copy): resume neither. */
	for (i = 0; i < nf; i++)
		for (j = i + 1; j < nf; j++)
			if (!strcmp(f[i].uuid, f[j].uuid)) {
				f[i].dup = true;
				f[j].dup = true;
			}
	*out = f;
	return nf;
}

static void resume_pools(const struct found *f, int nf,
			 const struct pool_info *act, int nact,
			 struct counts *c)
{
	int i, j, slot, r;
	char *msg;

	for (i = 0; i < nact; i++)
		printf("pool %d: already active (spare %s)\n", act[i].id,
		       act[i].spare);
	for (i = 0; i < nf; i++) {
		for (j = 0; j < nact && strcmp(act[j].uuid, f[i].uuid); j++)
			;
		if (j < nact) {
			printf("%s: holds pool %s, already active as pool %d; skipped\n",
			       f[i].path, f[i].uuid, act[j].id);
			continue;
		}
		if (f[i].dup) {
			fail(f[i].path, "pool %s is also on another device; not resumed",
			     f[i].uuid);
			c->failed++;
			continue;
		}
		slot = lowest_free_slot();
		if (slot < 0) {
			fail(f[i].path, "no free pool slot");
			c->failed++;
			continue;
		}
		msg = xasprintf("resume_spare %s", f[i].path);
		r = mgr_msg(slot, msg, NULL);
		free(msg);
		if (r) {
			fail(f[i].path, "cannot resume pool %s: %s", f[i].uuid,
			     why(REQ_RESUME, r));
			c->failed++;
			continue;
		}
		printf("pool %d: resumed from %s\n", slot, f[i].path);
		c->resumed++;
	}
}

/* Name of the dm device attached to the pool as dev_id, if any. */
static bool attached_as(int slot, uint32_t dev_id, char *buf, size_t size)
{
	char path[PATH_MAX], link[NAME_MAX + 1], *base;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%d/devices/%u", SYSFS_POOLS, slot,
		 dev_id);
	if (access(path, F_OK))
		return false;
	snprintf(buf, size, "another device");
	snprintf(path, sizeof(path), "%s/%d/devices/%u/dm", SYSFS_POOLS, slot,
		 dev_id);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = 0;
		base = strrchr(link, '/');
		snprintf(path, sizeof(path), "/sys/class/block/%s/dm/name",
			 base ? base + 1 : link);
		if (sysfs_read(path, buf, size))
			snprintf(buf, size, "another device");
	}
	return true;
}

static void create_device(int slot, const struct dev_record *rec,
			  struct counts *c)
{
	char params[128], other[128];
	struct dmdev d;
	uint64_t sectors;
	dev_t main;
	int r;

	r = dmx_table(rec->name, &d);
	if (!r) {
		unsigned int id, pool;

		if (!strcmp(d.type, REMAP_TARGET) &&
		    sscanf(d.params, "%u %*s %u", &id, &pool) == 2 &&
		    id == rec->dev_id && pool == (unsigned int)slot) {
			printf("%s: already active (pool %d, dev_id %u)\n",
			       rec->name, slot, rec->dev_id);
		} else {
			fail(rec->name, "another device of that name exists; dev_id %u of pool %d not created",
			     rec->dev_id, slot);
			c->failed++;
		}
		dmx_dev_free(&d);
		return;
	}
	if (attached_as(slot, rec->dev_id, other, sizeof(other))) {
		printf("%s: already active as %s (pool %d, dev_id %u)\n",
		       rec->name, other, slot, rec->dev_id);
		return;
	}
	if (!rec->locator[0]) {
		fail(rec->name, "no main device recorded (pool %d, dev_id %u); not created",
		     slot, rec->dev_id);
		c->missing++;
		return;
	}
	r = blk_resolve(rec->locator, &main);
	if (r) {
		fail(rec->name, "main device %s is missing (pool %d, dev_id %u); not created",
		     rec->locator, slot, rec->dev_id);
		c->missing++;
		return;
	}
	if (blk_sectors(main, &sectors)) {
		fail(rec->name, "main device %s: cannot read its size (pool %d, dev_id %u); not created",
		     rec->locator, slot, rec->dev_id);
		c->missing++;
		return;
	}
	if (sectors != rec->sectors) {
		fail(rec->name, "main device %s has %llu sectors, the pool recorded %llu (pool %d, dev_id %u); not created",
		     rec->locator, (unsigned long long)sectors,
		     (unsigned long long)rec->sectors, slot, rec->dev_id);
		c->missing++;
		return;
	}
	if (main_in_use(main, other, sizeof(other)) ||
	    main_held(main, other, sizeof(other))) {
		fail(rec->name, "main device %s is already used by %s; not created",
		     rec->locator, other);
		c->failed++;
		return;
	}
	snprintf(params, sizeof(params), "%u %u:%u %d", rec->dev_id,
		 major(main), minor(main), slot);
	r = dmx_create(rec->name, sectors, REMAP_TARGET, params);
	if (r) {
		fail(rec->name, "cannot create: %s", why(REQ_CREATE, r));
		c->failed++;
		return;
	}
	printf("%s: created over %s (pool %d, dev_id %u)\n", rec->name,
	       rec->locator, slot, rec->dev_id);
	c->created++;
}

static void create_devices(struct counts *c)
{
	struct pool_info act[MAX_SLOTS];
	struct dev_record *recs;
	int i, j, n, nact;
	char what[32];

	nact = pools_active(act);
	for (i = 0; i < nact; i++) {
		snprintf(what, sizeof(what), "pool %d", act[i].id);
		recs = pool_records(what, act[i].id, &n);
		if (!recs) {
			c->failed++;
			continue;
		}
		for (j = 0; j < n; j++) {
			if (!recs[j].name[0]) {
				printf("pool %d: dev_id %u has no recorded name (not made by remapctl create); skipped\n",
				       act[i].id, recs[j].dev_id);
				continue;
			}
			create_device(act[i].id, &recs[j], c);
		}
		free(recs);
	}
}

int cmd_activate(int argc, char **argv)
{
	static const char *const what = "activate";
	struct pool_info act[MAX_SLOTS];
	struct counts c = { 0 };
	struct found *f = NULL;
	const char *mgr;
	int r, nf, nact;

	r = parse_common(argc, argv, what, help_activate);
	if (r >= 0)
		return r;
	if (argc != optind)
		return usage_error(what, "no arguments expected");
	if (mgr_get(what, &mgr))
		return EXIT_FAIL;
	nact = pools_active(act);
	nf = find_pools(&f, act, nact, &c);
	if (nf < 0)
		return EXIT_FAIL;
	resume_pools(f, nf, act, nact, &c);
	free(f);
	create_devices(&c);
	printf("activate: %d pool%s resumed, %d device%s created, %d missing, %d failed\n",
	       c.resumed, c.resumed == 1 ? "" : "s", c.created,
	       c.created == 1 ? "" : "s", c.missing, c.failed);
	if (c.failed)
		return EXIT_FAIL;
	return c.missing ? EXIT_PARTIAL : EXIT_OK;
}
