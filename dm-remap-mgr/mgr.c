// SPDX-License-Identifier: GPL-2.0-only
/*
 * remap-mgr: the manager target.  It maps no data; it is the control handle
 * through which spare pools are formatted, resumed, freed and listed:
 *
 *   format_spare <dev> [force] [block_size=<bytes>]
 *   switch_to <id>
 *   resume_spare <dev>
 *   free_spare
 *   list
 *   list_devices
 *
 * Pools live in the module-wide registry (pool.c), not in this target: the
 * only state here is which slot the next resume_spare/free_spare works on,
 * kept per dm device so that a table reload does not lose it.
 */
#include <linux/module.h>
#include <linux/device-mapper.h>

#include "dm-remap-core.h"
#include "pool.h"

#define DM_MSG_PREFIX "remap-mgr"

/*
 * The selection of one manager device, shared by its tables (a reload
 * constructs the new table before it destroys the old one).
 */
struct mgr_c {
	struct list_head list;		/* in mgr_list; mgr_list_lock */
	struct mapped_device *md;
	unsigned int users;		/* its tables; mgr_list_lock */
	/* Selected slot; written by switch_to, read by other messages. */
	unsigned int slot;
};

static LIST_HEAD(mgr_list);
static DEFINE_MUTEX(mgr_list_lock);

static int mgr_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct mapped_device *md = dm_table_get_md(ti->table);
	struct mgr_c *mc;

	if (argc) {
		ti->error = "remap-mgr takes no arguments";
		return -EINVAL;
	}
	mutex_lock(&mgr_list_lock);
	list_for_each_entry(mc, &mgr_list, list)
		if (mc->md == md)
			goto found;
	mc = kzalloc(sizeof(*mc), GFP_KERNEL);
	if (!mc) {
		mutex_unlock(&mgr_list_lock);
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	mc->md = md;
	list_add(&mc->list, &mgr_list);
found:
	mc->users++;
	mutex_unlock(&mgr_list_lock);
	ti->private = mc;
	ti->num_flush_bios = 0;
	ti->num_discard_bios = 0;
	return 0;
}

static void mgr_dtr(struct dm_target *ti)
{
	struct mgr_c *mc = ti->private;

	mutex_lock(&mgr_list_lock);
	if (!--mc->users) {
		list_del(&mc->list);
		kfree(mc);
	}
	mutex_unlock(&mgr_list_lock);
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
		dmr_pool_list(result, maxlen, true);
		break;
	case STATUSTYPE_TABLE:
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(";");
		break;
	}
}

static int parse_slot(const char *s, unsigned int *slot)
{
	if (kstrtouint(s, 10, slot) || *slot >= DMR_MAX_POOLS) {
		DMERR_LIMIT("invalid pool id '%s' (0..%u)", s, DMR_MAX_POOLS - 1);
		return -EINVAL;
	}
	return 0;
}

static int msg_format(unsigned int argc, char **argv)
{
	u32 block_size = RM_DEFAULT_BLOCK_SIZE;
	bool force = false, have_bs = false;
	unsigned int i;

	if (argc < 2 || argc > 4) {
		DMERR_LIMIT("usage: format_spare <dev> [force] [block_size=<bytes>]");
		return -EINVAL;
	}
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "force") && !force) {
			force = true;
		} else if (!strncmp(argv[i], "block_size=", 11) && !have_bs) {
			if (kstrtou32(argv[i] + 11, 10, &block_size) ||
			    !rm_block_size_valid(block_size)) {
				DMERR_LIMIT("format_spare: bad %s (power of two, %u..%u)",
					    argv[i], RM_MIN_BLOCK_SIZE, RM_MAX_BLOCK_SIZE);
				return -EINVAL;
			}
			have_bs = true;
		} else {
			DMERR_LIMIT("format_spare: unknown or repeated option '%s'", argv[i]);
			return -EINVAL;
		}
	}
	return dmr_pool_format(argv[1], block_size, force);
}

static int mgr_message(struct dm_target *ti, unsigned int argc, char **argv,
		       char *result, unsigned int maxlen)
{
	struct mgr_c *mc = ti->private;
	unsigned int slot;
	int r;

	if (!argc) {
		DMERR_LIMIT("empty message");
		return -EINVAL;
	}

	if (!strcasecmp(argv[0], "format_spare"))
		return msg_format(argc, argv);

	if (!strcasecmp(argv[0], "switch_to")) {
		if (argc != 2) {
			DMERR_LIMIT("usage: switch_to <id>");
			return -EINVAL;
		}
		r = parse_slot(argv[1], &slot);
		if (!r)
			WRITE_ONCE(mc->slot, slot);
		return r;
	}

	if (!strcasecmp(argv[0], "resume_spare")) {
		if (argc != 2) {
			DMERR_LIMIT("usage: resume_spare <dev>");
			return -EINVAL;
		}
		return dmr_pool_resume(READ_ONCE(mc->slot), argv[1]);
	}

	if (!strcasecmp(argv[0], "free_spare")) {
		if (argc != 1) {
			DMERR_LIMIT("usage: free_spare (frees the pool selected by switch_to)");
			return -EINVAL;
		}
		return dmr_pool_free(READ_ONCE(mc->slot));
	}

	if (!strcasecmp(argv[0], "list")) {
		if (argc != 1) {
			DMERR_LIMIT("usage: list");
			return -EINVAL;
		}
		dmr_pool_list(result, maxlen, false);
		return 1;
	}

	if (!strcasecmp(argv[0], "list_devices")) {
		if (argc != 1) {
			DMERR_LIMIT("usage: list_devices (of the pool selected by switch_to)");
			return -EINVAL;
		}
		r = dmr_pool_list_devices(READ_ONCE(mc->slot), result, maxlen);
		return r ? r : 1;
	}

	if (!strcasecmp(argv[0], "scan_start") ||
	    !strcasecmp(argv[0], "scan_stop")) {
		bool start = !strcasecmp(argv[0], "scan_start");

		if (argc != 1) {
			DMERR_LIMIT("usage: %s (for the pool selected by switch_to)",
				    start ? "scan_start" : "scan_stop");
			return -EINVAL;
		}
		return dmr_pool_scan_control(READ_ONCE(mc->slot), start);
	}

	DMERR_LIMIT("unknown message '%s'", argv[0]);
	return -EINVAL;
}

static struct target_type mgr_target = {
	.name = "remap-mgr",
	.version = {0, 2, 0},
	.module = THIS_MODULE,
	.ctr = mgr_ctr,
	.dtr = mgr_dtr,
	.map = mgr_map,
	.status = mgr_status,
	.message = mgr_message,
};

int dm_remap_mgr_init(void)
{
	int r = dmr_pool_registry_init();

	if (r)
		return r;
	r = dm_register_target(&mgr_target);
	if (r) {
		DMERR_LIMIT("register failed %d", r);
		dmr_pool_registry_exit();
	}
	return r;
}

void dm_remap_mgr_exit(void)
{
	dm_unregister_target(&mgr_target);
	dmr_pool_registry_exit();
	/* Replaced indexes are freed by an RCU callback of this module. */
	rcu_barrier();
}
