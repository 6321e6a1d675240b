/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * rm_endian.h - explicit little-endian field access for on-disk structures.
 *
 * Every on-disk integer in dm-remap metadata is little-endian.  These helpers
 * go byte by byte, so they work at any alignment and on any host byte order,
 * in the kernel and in user space alike.  (The masks keep sparse from
 * warning about truncating casts of constants.)
 */
#ifndef RM_ENDIAN_H
#define RM_ENDIAN_H

#include "rm_platform.h"

static inline uint16_t rm_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t rm_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	       ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t rm_get_le64(const uint8_t *p)
{
	return (uint64_t)rm_get_le32(p) | ((uint64_t)rm_get_le32(p + 4) << 32);
}

static inline void rm_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v & 0xff);
	p[1] = (uint8_t)(v >> 8);
}

static inline void rm_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v & 0xff);
	p[1] = (uint8_t)((v >> 8) & 0xff);
	p[2] = (uint8_t)((v >> 16) & 0xff);
	p[3] = (uint8_t)(v >> 24);
}

static inline void rm_put_le64(uint8_t *p, uint64_t v)
{
	rm_put_le32(p, (uint32_t)(v & 0xffffffff));
	rm_put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif /* RM_ENDIAN_H */
