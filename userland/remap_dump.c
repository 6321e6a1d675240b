// SPDX-License-Identifier: GPL-2.0-only
/*
 * remap_dump - print the dm-remap pool on a spare device or image as JSON:
 * the superblock, the device records, every entry that is not free, counts
 * and the problems found by the load rule (as remap_check).  Never writes.
 * Documentation/offline-tools.md, man/remap_dump.8.
 *
 * Exit codes as remap_check: 0 clean, 1 damaged, 2 the kernel would refuse
 * the pool, 3 usage or I/O error.  A pool with problems is still dumped as
 * far as it could be loaded.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mdjson.h"
#include "mdread.h"

static const char *prog = "remap_dump";

/* A label field as read: not trusted to hold a NUL. */
static void dump_label_str(struct js *j, const char *key, const char *s,
			   size_t len)
{
	char buf[RM_NAME_LEN + 1];

	memcpy(buf, s, len);
	buf[len] = 0;
	js_str(j, key, buf);
}

static void dump_labels(struct js *j, const struct md_pool *pool)
{
	static const struct rm_name none;
	unsigned int i;

	js_open(j, "labels", '[');
	for (i = 0; i < RM_MAX_DEVS; i++) {
		const struct rm_name *n = &pool->names[i];

		if (!memcmp(n, &none, sizeof(none)))
			continue;
		js_open_flat(j, NULL, '{');
		js_u64(j, "record", i);
		js_u64(j, "dev_id", n->dev_id);
		js_bool(j, "in_use", n->flags & RM_NAME_F_IN_USE);
		js_u64(j, "flags", n->flags);
		dump_label_str(j, "name", n->name, RM_NAME_LEN);
		dump_label_str(j, "locator", n->locator, RM_LOCATOR_LEN);
		js_close(j, '}');
	}
	js_close(j, ']');
}

static void dump_devices(struct js *j, const struct md_pool *pool)
{
	unsigned int shift = rm_block_sector_shift(pool->sb.geo.block_size);
	uint64_t i, n[RM_ENTRY_RETIRED + 1];
	static const struct rm_dev none;
	unsigned int d;

	js_open(j, "devices", '[');
	for (d = 0; d < RM_MAX_DEVS; d++) {
		const struct rm_dev *dev = &pool->devs[d];

		if (!memcmp(dev, &none, sizeof(none)))
			continue;
		memset(n, 0, sizeof(n));
		for (i = 0; i < pool->sb.geo.nr_blocks; i++)
			if (pool->entries[i].dev_id == dev->dev_id &&
			    pool->entries[i].state <= RM_ENTRY_RETIRED)
				n[pool->entries[i].state]++;
		js_open_flat(j, NULL, '{');
		js_u64(j, "record", d);
		js_u64(j, "dev_id", dev->dev_id);
		js_bool(j, "in_use", dev->flags & RM_DEV_F_IN_USE);
		js_u64(j, "flags", dev->flags);
		js_u64(j, "size_sectors", dev->size_sectors);
		js_u64(j, "size_blocks", dev->size_sectors >> shift);
		js_u64(j, "scan_pos", dev->scan_pos);
		js_u64(j, "scan_passes", dev->scan_passes);
		js_u64(j, "last_pass_time", dev->last_pass_time);
		js_u64(j, "mapped", n[RM_ENTRY_MAPPED]);
		js_u64(j, "pending", n[RM_ENTRY_PENDING]);
		if ((pool->names[d].flags & RM_NAME_F_IN_USE) &&
		    pool->names[d].dev_id == dev->dev_id) {
			dump_label_str(j, "name", pool->names[d].name,
				       RM_NAME_LEN);
			dump_label_str(j, "locator", pool->names[d].locator,
				       RM_LOCATOR_LEN);
		} else {
			js_null(j, "name");
			js_null(j, "locator");
		}
		js_close(j, '}');
	}
	js_close(j, ']');
}

static void dump_entries(struct js *j, const struct md_pool *pool)
{
	const struct rm_geometry *g = &pool->sb.geo;
	unsigned int shift = rm_block_sector_shift(g->block_size);
	uint64_t i;

	js_open(j, "entries", '[');
	for (i = 0; i < g->nr_blocks; i++) {
		const struct rm_entry *e = &pool->entries[i];

		if (e->state == RM_ENTRY_FREE && !e->dev_id && !e->main_block &&
		    !e->flags)
			continue;
		js_open_flat(j, NULL, '{');
		js_u64(j, "index", i);
		js_str(j, "state", md_state_name(e->state));
		js_u64(j, "dev_id", e->dev_id);
		js_u64(j, "main_block", e->main_block);
		js_u64(j, "spare_sector", g->data_start + (i << shift));
		if (e->flags)
			js_u64(j, "flags", e->flags);
		js_close(j, '}');
	}
	js_close(j, ']');
}

static void dump(const struct md_image *img, const struct md_pool *pool)
{
	static const char *const status[] = { "clean", "damaged", "fatal" };
	const uint64_t *n = pool->counts;
	struct js j;

	js_init(&j, stdout);
	js_open(&j, NULL, '{');
	js_str(&j, "device", img->path);
	js_u64(&j, "device_sectors", img->bytes >> RM_SECTOR_SHIFT);
	if (pool->have_sb)
		md_json_superblock(&j, pool);
	else
		js_null(&j, "superblock");
	if (pool->entries) {
		dump_devices(&j, pool);
		dump_labels(&j, pool);
		dump_entries(&j, pool);
	}
	js_open(&j, "summary", '{');
	js_str(&j, "status", status[pool->worst]);
	js_u64(&j, "free", n[RM_ENTRY_FREE]);
	js_u64(&j, "mapped", n[RM_ENTRY_MAPPED]);
	js_u64(&j, "pending", n[RM_ENTRY_PENDING]);
	js_u64(&j, "retired", n[RM_ENTRY_RETIRED]);
	js_u64(&j, "problems", pool->nr_problems);
	js_close(&j, '}');
	md_json_problems(&j, pool);
	js_close(&j, '}');
	js_end(&j);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct md_image img;
	struct md_pool pool;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: %s <device|image>\n", prog);
			return 0;
		}
		fprintf(stderr, "usage: %s <device|image>\n", prog);
		return MD_EXIT_USAGE;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "usage: %s <device|image>\n", prog);
		return MD_EXIT_USAGE;
	}
	if (md_tool_load(prog, argv[optind], &img, &pool, 0)) {
		md_pool_free(&pool);
		return MD_EXIT_USAGE;
	}
	dump(&img, &pool);
	r = pool.worst;
	md_pool_free(&pool);
	return md_tool_finish(prog, r);
}
