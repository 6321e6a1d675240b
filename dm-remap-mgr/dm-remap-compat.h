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
#include <linux/device-mapper.h>

#endif /* DM_REMAP_COMPAT_H */
