// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Portable CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for user
 * space.  Matches the kernel's crc32c(seed, buf, len): no pre/post inversion
 * is done here, callers pass ~0 as seed and invert the result if they want
 * the iSCSI convention.  The kernel build uses lib/libcrc32c instead.
 */
#include "rm_platform.h"

#ifndef __KERNEL__
static uint32_t crc_table[256];
static int crc_table_ready;

static void crc_table_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
	crc_table_ready = 1;
}

uint32_t rm_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!crc_table_ready)
		crc_table_init();
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}
#endif
