// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-remap: keep disks with growing bad sectors usable by redirecting bad
 * blocks of a main device onto a spare device.
 *
 * This file only ties the module together: it registers the manager target
 * ("remap-mgr") and the data target ("remap").
 */
#include <linux/module.h>

#include "dm-remap-core.h"

static int __init dm_remap_init(void)
{
	int r;

	r = dm_remap_mgr_init();
	if (r)
		return r;

	r = dm_remap_target_init();
	if (r) {
		dm_remap_mgr_exit();
		return r;
	}
	return 0;
}

static void __exit dm_remap_exit(void)
{
	dm_remap_target_exit();
	dm_remap_mgr_exit();
}

module_init(dm_remap_init);
module_exit(dm_remap_exit);

MODULE_DESCRIPTION("device-mapper bad block remapping onto a spare device");
MODULE_AUTHOR("dm-remap developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(RM_VERSION);
