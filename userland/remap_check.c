// SPDX-License-Identifier: GPL-2.0-only
/*
 * remap_check - check the dm-remap pool metadata on a spare device or image
 * offline, with the kernel's load rule, and report every problem.  Never
 * writes.  Documentation/offline-tools.md, man/remap_check.8.
 *
 * Exit codes (enum md_sev): 0 clean, 1 damaged but loadable (the kernel
 * heals it), 2 the kernel would refuse the pool, 3 usage or I/O error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mdjson.h"
#include "mdread.h"

static const char *prog = "remap_check";

static void usage(FILE *f)
{
	fprintf(f, "usage: %s [-q|--quiet] [--json] <device|image>\n"
		"exit: 0 clean, 1 damaged (recoverable), 2 the kernel would refuse it,\n"
		"      3 usage or I/O error\n", prog);
}

static const char *verdict(const struct md_pool *pool)
{
	if (pool->worst == MD_FATAL)
		return "fatal";
	return pool->worst ? "damaged" : "clean";
}

static void print_json(const char *path, const struct md_pool *pool)
{
	char uuid[MD_UUID_TEXT];
	struct js j;

	js_init(&j, stdout);
	js_open(&j, NULL, '{');
	js_str(&j, "device", path);
	js_str(&j, "status", verdict(pool));
	js_u64(&j, "exit_code", pool->worst);
	if (pool->have_sb) {
		md_uuid_text(pool->sb.uuid, uuid);
		js_str(&j, "uuid", uuid);
		js_u64(&j, "seq", pool->sb.seq);
	}
	md_json_problems(&j, pool);
	js_close(&j, '}');
	js_end(&j);
}

static void print_summary(const char *path, const struct md_pool *pool)
{
	const uint64_t *n = pool->counts;
	char uuid[MD_UUID_TEXT];

	if (!pool->have_sb) {
		printf("%s: fatal: not a loadable dm-remap pool\n", path);
		return;
	}
	md_uuid_text(pool->sb.uuid, uuid);
	printf("%s: %s: pool %s seq %" PRIu64 ", %" PRIu64 " blocks of %u bytes: %"
	       PRIu64 " mapped, %" PRIu64 " pending, %" PRIu64 " retired, %"
	       PRIu64 " free; %zu problems\n", path, verdict(pool), uuid,
	       pool->sb.seq, pool->sb.geo.nr_blocks, pool->sb.geo.block_size,
	       n[RM_ENTRY_MAPPED], n[RM_ENTRY_PENDING], n[RM_ENTRY_RETIRED],
	       n[RM_ENTRY_FREE], pool->nr_problems);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool quiet = false, json = false;
	struct md_image img;
	struct md_pool pool;
	int c, r;

	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return MD_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return MD_EXIT_USAGE;
	}
	if (md_tool_load(prog, argv[optind], &img, &pool, 0)) {
		md_pool_free(&pool);
		return MD_EXIT_USAGE;
	}
	if (json) {
		print_json(img.path, &pool);
	} else if (!quiet) {
		md_print_problems(stdout, img.path, &pool);
		print_summary(img.path, &pool);
	}
	r = pool.worst;
	md_pool_free(&pool);
	return md_tool_finish(prog, r);
}
