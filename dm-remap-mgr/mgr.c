// SPDX-License-Identifier: GPL-2.0-only
/*
 * remap-mgr: the manager target.  It maps no data; it is the control handle
 * through which spare pools are formatted, resumed and freed.
 */
#include <linux/module.h>
#include <linux/device-mapper.h>

#include "dm-remap-core.h"

#define DM_MSG_PREFIX "remap-mgr"

static int mgr_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	if (argc) {
		ti->error = "remap-mgr takes no arguments";
		return -EINVAL;
	}
	ti->num_flush_bios = 0;
	ti->num_discard_bios = 0;
	return 0;
}

static void mgr_dtr(struct dm_target *ti)
{
}

/* The manager carries no data: every bio fails. */
static int mgr_map(struct dm_target *ti, struct bio *bio)
{
	return DM_MAPIO_KILL;
}

static void mgr_status(struct dm_target *ti, status_type_t type,
		       unsigned int status_flags, char *result,
		       unsigned int maxlen)
{
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("0");
		break;
	case STATUSTYPE_TABLE:
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(";");
		break;
	}
}

static struct target_type mgr_target = {
	.name = "remap-mgr",
	.version = {0, 1, 0},
	.module = THIS_MODULE,
	.ctr = mgr_ctr,
	.dtr = mgr_dtr,
	.map = mgr_map,
	.status = mgr_status,
};

int dm_remap_mgr_init(void)
{
	int r = dm_register_target(&mgr_target);

	if (r)
		DMERR("register failed %d", r);
	return r;
}

void dm_remap_mgr_exit(void)
{
	dm_unregister_target(&mgr_target);
}
