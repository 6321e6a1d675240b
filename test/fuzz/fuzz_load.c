// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the offline tools' loader and writer
 * (userland/mdread.c, mdwrite.c) on whole pool images.
 *
 * The image is a small valid pool (512-byte blocks, a device with a
 * label, mapped, pending and retired entries) in a memory file, patched by
 * the input: records of 4 header bytes (le16 md block, offset / 16,
 * length | 0x80 to reseal the block's checksum) followed by that many
 * bytes XORed into the block.  Byte 0 of the input also chooses
 * MD_LOAD_SALVAGE.  Then:
 *   - md_load() must finish, with pool->worst the worst problem recorded;
 *   - what remap_repair does must give a clean pool: drop the rejected
 *     records, write them to a second image, load it: no problem at all,
 *     and the same records read back.
 * Any crash, sanitizer report or broken invariant (trap) is a bug.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "rm_platform.h"
#include "rm_endian.h"
#include "rm_format.h"
#include "mdread.h"
#include "mdwrite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define POOL_SECTORS	512	/* 224 data blocks of 512 bytes */

static struct md_image src, dst;
static uint8_t *tmpl;		/* the clean image */
static uint64_t md_blocks;	/* metadata blocks in it */

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static void open_memfd(struct md_image *img, char *path, size_t len)
{
	int fd = memfd_create("pool", MFD_CLOEXEC);

	check(fd >= 0 && !ftruncate(fd, POOL_SECTORS << RM_SECTOR_SHIFT));
	snprintf(path, len, "/proc/self/fd/%d", fd);
	check(!md_open(img, path, O_RDWR));
	close(fd);
}

static void setup(void)
{
	static char src_path[64], dst_path[64];
	static struct rm_dev devs[RM_MAX_DEVS];
	static struct rm_name names[RM_MAX_DEVS];
	static struct rm_entry entries[256];
	struct md_records rec = { devs, names, entries };
	struct rm_sb sb = { .seq = 3 };

	open_memfd(&src, src_path, sizeof(src_path));
	open_memfd(&dst, dst_path, sizeof(dst_path));
	check(!rm_geometry_compute(POOL_SECTORS, 512, &sb.geo));
	check(sb.geo.nr_blocks <= 256);
	memcpy(sb.uuid, "fuzz-load-uuid-0", RM_UUID_SIZE);
	devs[1] = (struct rm_dev){ 3, RM_DEV_F_IN_USE, 4096, 1, 2, 3 };
	names[1] = (struct rm_name){ .dev_id = 3, .flags = RM_NAME_F_IN_USE };
	strcpy(names[1].name, "fuzz0");
	strcpy(names[1].locator, "/dev/vdb");
	entries[0] = (struct rm_entry){ 5, 3, RM_ENTRY_MAPPED, 0 };
	entries[1] = (struct rm_entry){ 6, 3, RM_ENTRY_PENDING, 0 };
	entries[2].state = RM_ENTRY_RETIRED;
	entries[sb.geo.nr_blocks - 1] = (struct rm_entry){ 4095, 3, 1, 0 };
	check(!md_write_pool(&src, &sb, &rec));
	md_blocks = sb.geo.data_start / RM_MD_BLOCK_SECTORS;
	tmpl = malloc(md_blocks * RM_MD_BLOCK_SIZE);
	check(tmpl && !md_pread(&src, tmpl, md_blocks * RM_MD_BLOCK_SIZE, 0));
}

static void patch(uint8_t *img, const uint8_t *data, size_t size)
{
	while (size >= 4) {
		uint64_t blk = rm_get_le16(data) % md_blocks;
		size_t off = (size_t)data[2] * 16 % RM_MD_BLOCK_SIZE;
		size_t n = data[3] & 0x7f, i;
		uint8_t *b = img + blk * RM_MD_BLOCK_SIZE;

		if (n > size - 4)
			n = size - 4;
		if (n > RM_MD_BLOCK_SIZE - off)
			n = RM_MD_BLOCK_SIZE - off;
		for (i = 0; i < n; i++)
			b[off + i] ^= data[4 + i];
		if (data[3] & 0x80)
			rm_md_seal(b, blk < RM_SB_COPIES ? RM_SB_OFF_CSUM :
							   RM_TB_OFF_CSUM);
		data += 4 + n;
		size -= 4 + n;
	}
}

/* remap_repair's part: drop, write a fresh pool, load it back clean. */
static void repair(struct md_pool *pool)
{
	struct md_records rec = { pool->devs, pool->names, pool->entries };
	struct rm_sb sb = pool->sb;
	struct md_pool got;
	int64_t dropped;
	uint64_t after;

	dropped = md_drop_bad_records(&sb, &rec, NULL, NULL);
	check(dropped >= 0);
	if (!pool->next_seq || rm_next_seq(pool->next_seq, 0, &after))
		return;		/* remap_repair refuses these */
	sb.seq = pool->next_seq;
	sb.flags = 0;
	check(!md_write_pool(&dst, &sb, &rec));
	check(!md_load(&dst, &got, 0));
	check(got.worst == 0 && got.nr_problems == 0);
	check(!memcmp(got.devs, pool->devs, sizeof(got.devs)));
	check(!memcmp(got.names, pool->names, sizeof(got.names)));
	check(rm_entries_equal(got.entries, pool->entries, sb.geo.nr_blocks));
	md_pool_free(&got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *img;
	enum md_sev worst = 0;
	struct md_pool pool;
	size_t i;

	if (!tmpl)
		setup();
	if (!img)
		img = malloc(md_blocks * RM_MD_BLOCK_SIZE);
	check(img);
	memcpy(img, tmpl, md_blocks * RM_MD_BLOCK_SIZE);
	patch(img, data, size);
	check(!md_pwrite(&src, img, md_blocks * RM_MD_BLOCK_SIZE, 0));

	check(!md_load(&src, &pool, size && (data[0] & 1) ? MD_LOAD_SALVAGE : 0));
	for (i = 0; i < pool.nr_problems; i++)
		if (pool.problems[i].sev > worst)
			worst = pool.problems[i].sev;
	check(worst == pool.worst && (pool.nr_problems == 0) == !worst);
	check(pool.have_sb || worst == MD_FATAL);
	if (pool.have_sb && pool.entries)
		repair(&pool);
	md_pool_free(&pool);
	return 0;
}
