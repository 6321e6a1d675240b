// SPDX-License-Identifier: GPL-2.0-only
/*
 * remap: the per-device data target.
 *
 * Table: <dev_id> <main_dev> <pool_id> [<#opt_args> <opt_args>...]
 *
 * The device attaches to an active pool (taking a reference, so the pool
 * cannot be freed under it).  Lookup and redirect are not implemented yet:
 * for now every bio goes straight to the main device.
 */
#include <linux/module.h>
#include <linux/device-mapper.h>

#include "dm-remap-core.h"
#include "pool.h"

#define DM_MSG_PREFIX "remap"

struct remap_c {
	struct dmr_pool *pool;		/* attached: holds a pool reference */
	struct dm_dev *main_dev;
	u32 dev_id;
	u32 pool_id;
	u64 id_ticket;			/* commit of the identity record */
};

/* Optional arguments: [<#opt_args> force] */
static int parse_features(struct dm_arg_set *as, bool *force,
			  struct dm_target *ti)
{
	static const struct dm_arg _args[] = {
		{0, 1, "Invalid number of optional arguments"},
	};
	unsigned int argc;
	const char *arg;
	int r;

	if (!as->argc)
		return 0;
	r = dm_read_arg_group(_args, as, &argc, &ti->error);
	if (r)
		return r;
	while (argc--) {
		arg = dm_shift_arg(as);
		if (!strcasecmp(arg, "force") && !*force) {
			*force = true;
			continue;
		}
		ti->error = *force ? "Duplicate optional argument" :
				     "Unknown optional argument";
		return -EINVAL;
	}
	if (as->argc) {
		ti->error = "Too many arguments";
		return -EINVAL;
	}
	return 0;
}

static int remap_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as;
	struct remap_c *rc;
	bool force = false;
	int r;

	if (argc < 3) {
		ti->error = "Invalid argument count: <dev_id> <main_dev> <pool_id> [opt args]";
		return -EINVAL;
	}

	rc = kzalloc(sizeof(*rc), GFP_KERNEL);
	if (!rc) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}

	if (kstrtou32(argv[0], 10, &rc->dev_id)) {
		ti->error = "Invalid dev_id";
		r = -EINVAL;
		goto bad;
	}
	if (kstrtou32(argv[2], 10, &rc->pool_id)) {
		ti->error = "Invalid pool_id";
		r = -EINVAL;
		goto bad;
	}

	as.argc = argc - 3;
	as.argv = argv + 3;
	r = parse_features(&as, &force, ti);
	if (r)
		goto bad;

	r = dm_get_device(ti, argv[1], dm_table_get_mode(ti->table),
			  &rc->main_dev);
	if (r) {
		ti->error = "Main device lookup failed";
		goto bad;
	}

	rc->pool = dmr_pool_attach(rc->pool_id);
	if (!rc->pool) {
		ti->error = "No active pool with that pool_id";
		r = -ENODEV;
		goto bad_pool;
	}

	r = dmr_pool_register_dev(rc->pool, rc->dev_id,
				  bdev_nr_sectors(rc->main_dev->bdev), force,
				  &rc->id_ticket, &ti->error);
	if (r)
		goto bad_register;

	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->private = rc;
	return 0;

bad_register:
	dmr_pool_detach(rc->pool);
bad_pool:
	dm_put_device(ti, rc->main_dev);
bad:
	kfree(rc);
	return r;
}

static void remap_dtr(struct dm_target *ti)
{
	struct remap_c *rc = ti->private;

	dmr_pool_detach(rc->pool);
	dm_put_device(ti, rc->main_dev);
	kfree(rc);
}

/*
 * The identity record queued by the constructor must be durable before the
 * device goes live.  Waiting here, not in the constructor, keeps table
 * loads free of I/O (a loader may hold other devices suspended).
 */
static int remap_preresume(struct dm_target *ti)
{
	struct remap_c *rc = ti->private;
	int r;

	if (!rc->id_ticket)
		return 0;
	r = dmr_md_wait(rc->pool, rc->id_ticket);
	if (r) {
		DMERR_LIMIT("dev_id %u: cannot commit its identity record (%d)",
			    rc->dev_id, r);
		return r;
	}
	rc->id_ticket = 0;
	return 0;
}

static int remap_map(struct dm_target *ti, struct bio *bio)
{
	struct remap_c *rc = ti->private;

	bio_set_dev(bio, rc->main_dev->bdev);
	if (bio_sectors(bio) || op_is_zone_mgmt(bio_op(bio)))
		bio->bi_iter.bi_sector = dm_target_offset(ti,
							  bio->bi_iter.bi_sector);
	return DM_MAPIO_REMAPPED;
}

static void remap_status(struct dm_target *ti, status_type_t type,
			 unsigned int status_flags, char *result,
			 unsigned int maxlen)
{
	struct remap_c *rc = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%u %u", rc->pool_id, rc->dev_id);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u %s %u", rc->dev_id, rc->main_dev->name,
		       rc->pool_id);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",dev_id=%u,pool_id=%u;", rc->dev_id, rc->pool_id);
		break;
	}
}

static int remap_iterate_devices(struct dm_target *ti,
				 iterate_devices_callout_fn fn, void *data)
{
	struct remap_c *rc = ti->private;

	return fn(ti, rc->main_dev, 0, ti->len, data);
}

static struct target_type remap_target = {
	.name = "remap",
	.version = {0, 1, 0},
	.module = THIS_MODULE,
	.ctr = remap_ctr,
	.dtr = remap_dtr,
	.map = remap_map,
	.preresume = remap_preresume,
	.status = remap_status,
	.iterate_devices = remap_iterate_devices,
};

int dm_remap_target_init(void)
{
	int r = dm_register_target(&remap_target);

	if (r)
		DMERR("register failed %d", r);
	return r;
}

void dm_remap_target_exit(void)
{
	dm_unregister_target(&remap_target);
}
