// SPDX-License-Identifier: GPL-2.0-only
/*
 * remapctl - manage dm-remap spare pools and devices.
 *
 * This first version only reports whether the kernel offers dm-remap's
 * targets; pool and device management arrive with the manager target.
 */
#include <stdio.h>
#include <string.h>
#include <libdevmapper.h>

#define REMAPCTL_VERSION "0.1"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: remapctl <command>\n"
		"\n"
		"commands:\n"
		"  targets     show whether the remap-mgr and remap targets are loaded\n"
		"  version     print the version\n");
}

/* Print the versions of dm-remap's targets; 0 if both are present. */
static int cmd_targets(void)
{
	struct dm_versions *v, *last;
	struct dm_task *dmt;
	int found = 0;

	dmt = dm_task_create(DM_DEVICE_LIST_VERSIONS);
	if (!dmt || !dm_task_run(dmt)) {
		fprintf(stderr, "remapctl: cannot talk to device-mapper (is dm-mod loaded? are you root?)\n");
		if (dmt)
			dm_task_destroy(dmt);
		return 2;
	}
	v = dm_task_get_versions(dmt);
	do {
		last = v;
		if (!strcmp(v->name, "remap-mgr") || !strcmp(v->name, "remap")) {
			printf("%-10s v%u.%u.%u\n", v->name, v->version[0],
			       v->version[1], v->version[2]);
			found++;
		}
		v = (struct dm_versions *)((char *)v + v->next);
	} while (last != v);
	dm_task_destroy(dmt);
	if (found != 2) {
		fprintf(stderr, "remapctl: dm-remap targets not loaded (modprobe dm-remap)\n");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("remapctl %s\n", REMAPCTL_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "targets"))
		return cmd_targets();
	fprintf(stderr, "remapctl: unknown command '%s' (see remapctl --help)\n", argv[1]);
	return 2;
}
