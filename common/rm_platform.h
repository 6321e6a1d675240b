/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * rm_platform.h - the only place where common/ learns which side it runs on.
 *
 * Everything else in common/ is plain C that uses the fixed-width types,
 * memcpy/memset and rm_crc32c() declared here.  In the kernel the types and
 * string functions come from the kernel and CRC32C from lib/libcrc32c; in user
 * space from the C library and a portable table implementation in crc32c.c.
 */
#ifndef RM_PLATFORM_H
#define RM_PLATFORM_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#include <linux/crc32c.h>

static inline uint32_t rm_crc32c(uint32_t seed, const void *buf, size_t len)
{
	return crc32c(seed, buf, len);
}
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

uint32_t rm_crc32c(uint32_t seed, const void *buf, size_t len);
#endif

#endif /* RM_PLATFORM_H */
