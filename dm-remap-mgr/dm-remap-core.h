/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-remap-core.h - what the two targets of dm-remap.ko share.
 */
#ifndef DM_REMAP_CORE_H
#define DM_REMAP_CORE_H

#include "dm-remap-compat.h"

int dm_remap_mgr_init(void);
void dm_remap_mgr_exit(void);
int dm_remap_target_init(void);
void dm_remap_target_exit(void);

#endif /* DM_REMAP_CORE_H */
