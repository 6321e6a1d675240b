// SPDX-License-Identifier: GPL-2.0-only
/*
 * remapctl - manage dm-remap spare pools and remap devices.
 *
 * Pools are driven through a remap-mgr device (found or created), devices
 * through libdevmapper, and read back from the device-mapper status and
 * /sys/module/dm_remap/pools.  remapctl(8) is the user documentation.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <libdevmapper.h>

#include "remapctl.h"
#include "rm_format.h"

bool opt_json;
int opt_verbose;

/* ---- Errors and small helpers -------------------------------------------- */

int say(int code, const char *what, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "remapctl: %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

void oom(void)
{
	fputs("remapctl: out of memory\n", stderr);
	exit(EXIT_FAIL);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return s;
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

struct errmsg {
	int err;
	const char *text;
};

static const struct errmsg msgs_format[] = {
	{ EEXIST,
	  "the device already holds a dm-remap pool, or superblock blocks that cannot be read (--force overwrites it)" },
	{ EBUSY,
	  "the device is busy (in use, or the spare of an active pool)" },
	{ ENOSPC, "the device is too small for a pool" },
	{ EROFS, "the device is read-only" },
	{ EINVAL, "the kernel refused the arguments (see the kernel log)" },
	{ 0, NULL }
};

static const struct errmsg msgs_resume[] = {
	{ EBUSY,
	  "busy: the slot is taken, the pool is already active, or the device is in use" },
	{ EBADMSG,
	  "the pool metadata cannot be trusted (see the kernel log; remap_check can examine it)" },
	{ EROFS, "the device is read-only" },
	{ EINVAL,
	  "the pool does not fit the device (smaller than when formatted?) or a bad argument" },
	{ 0, NULL }
};

static const struct errmsg msgs_free[] = {
	{ EBUSY,
	  "remap devices are still attached to the pool (remove them first)" },
	{ ENOENT, "no active pool in that slot" },
	{ 0, NULL }
};

static const struct errmsg msgs_mgr[] = {
	{ ENOENT, "no active pool in that slot" },
	{ EINVAL,
	  "refused: not supported by this dm-remap module, or a bad argument (see the kernel log)" },
	{ 0, NULL }
};

static const struct errmsg msgs_create[] = {
	{ EEXIST, "a device-mapper device of that name already exists" },
	{ EBUSY,
	  "busy: another device uses this dev_id, or the main device is in use" },
	{ ENODEV, "no active pool with that id, or no such main device" },
	{ EINVAL,
	  "refused: the main device is smaller than recorded for this dev_id (--force drops its remaps), or see the kernel log" },
	{ ENOSPC, "the pool has no room for another device record" },
	{ 0, NULL }
};

static const struct errmsg msgs_remove[] = {
	{ EBUSY, "the device is open (mounted or used by another device)" },
	{ 0, NULL }
};

static const struct errmsg msgs_devmsg[] = {
	{ EEXIST, "already done (the block is already remapped)" },
	{ ENOSPC, "the pool has no free spare block" },
	{ EINVAL,
	  "refused: not supported by this dm-remap module, or a bad argument (see the kernel log)" },
	{ 0, NULL }
};

static const struct errmsg msgs_sysfs[] = {
	{ EINVAL, "the kernel refused the value (invalid or out of range)" },
	{ ENOENT,
	  "no such setting (does this dm-remap module have the scanner?)" },
	{ 0, NULL }
};

static const struct errmsg msgs_common[] = {
	{ EACCES, "permission denied (root needed)" },
	{ EPERM, "permission denied (root needed)" },
	{ ENXIO, "no such device-mapper device" },
	{ ENODEV, "no such device" },
	{ ENOENT, "no such device" },
	{ EIO, "I/O error" },
	{ ENODM,
	  "device-mapper is not available (no /dev/mapper/control; modprobe dm-mod)" },
	{ 0, NULL }
};

const char *why(enum req req, int err)
{
	static const struct errmsg *const tabs[] = {
		[REQ_FORMAT] = msgs_format,
		[REQ_RESUME] = msgs_resume,
		[REQ_FREE] = msgs_free,
		[REQ_MGR] = msgs_mgr,
		[REQ_CREATE] = msgs_create,
		[REQ_REMOVE] = msgs_remove,
		[REQ_DEVMSG] = msgs_devmsg,
		[REQ_SYSFS] = msgs_sysfs,
	};
	const struct errmsg *m;

	if (err < 0)
		err = -err;
	for (m = tabs[req]; m->text; m++)
		if (m->err == err)
			return m->text;
	for (m = msgs_common; m->text; m++)
		if (m->err == err)
			return m->text;
	return strerror(err);
}

/* Options every subcommand takes. */
#define COMMON_LONGOPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "json", no_argument, NULL, 'j' }, \
	{ "verbose", no_argument, NULL, 'v' }

/* Handles a common option or a getopt error; -1 means go on parsing. */
static int common_opt(int c, char **argv, const char *what, const char *help)
{
	const char *arg;

	switch (c) {
	case 'h':
		fputs(help, stdout);
		return EXIT_OK;
	case 'j':
		opt_json = true;
		return -1;
	case 'v':
		opt_verbose++;
		return -1;
	case ':':
		return usage_error(what, "option '%s' needs a value",
				   argv[optind - 1]);
	default:
		arg = argv[optind - 1];
		/* A value given to a long option that takes none: --json=1. */
		if (optopt && !strncmp(arg, "--", 2) && strchr(arg, '='))
			return usage_error(what, "option '%.*s' takes no value",
					   (int)(strchr(arg, '=') - arg), arg);
		/* optopt: an unknown letter, maybe inside a bundle like -xf. */
		if (optopt)
			return usage_error(what, "unknown option '-%c' (see --help)",
					   optopt);
		return usage_error(what, "unknown option '%s' (see --help)",
				   arg);
	}
}

/* Only the common options; positional arguments from argv[optind]. */
int parse_common(int argc, char **argv, const char *what,
		 const char *help)
{
	static const struct option lo[] = { COMMON_LONGOPTS, { 0 } };
	int c, r;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hv", lo, NULL)) != -1) {
		r = common_opt(c, argv, what, help);
		if (r >= 0)
			return r;
	}
	return -1;
}

static int parse_slot(const char *what, const char *s, int *slot)
{
	uint64_t v;

	if (parse_u64(s, MAX_SLOTS - 1, &v))
		return usage_error(what, "invalid pool id '%s' (0..%d)", s,
				   MAX_SLOTS - 1);
	*slot = (int)v;
	return -1;
}

/* A dm name remapctl can record as a label. */
static bool name_ok(const char *s)
{
	size_t len = strlen(s);
	const char *p;

	/* "-" is what list_devices shows for no label: the module refuses it. */
	if (!len || len > LABEL_NAME_MAX || !strcmp(s, ".") ||
	    !strcmp(s, "..") || !strcmp(s, "-"))
		return false;
	/* No '\\' either: dm's message parser takes it for an escape. */
	for (p = s; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == '/' || *p == '\\')
			return false;
	return true;
}

/* ---- Pools in sysfs ------------------------------------------------------ */

static char *pool_path(int id, const char *attr)
{
	return xasprintf("%s/%d/%s", SYSFS_POOLS, id, attr);
}

static int pool_attr(int id, const char *attr, char *buf, size_t size)
{
	char *p = pool_path(id, attr);
	int r = sysfs_read(p, buf, size);

	free(p);
	if (r)
		snprintf(buf, size, "-");
	return r;
}

static bool pool_is_active(int id)
{
	char buf[16];

	return !pool_attr(id, "dev", buf, sizeof(buf));
}

int pools_active(struct pool_info *p)
{
	int id, n = 0;

	for (id = 0; id < MAX_SLOTS; id++) {
		if (!pool_is_active(id))
			continue;
		p[n].id = id;
		pool_attr(id, "spare_device", p[n].spare, sizeof(p[n].spare));
		pool_attr(id, "dev", p[n].devno, sizeof(p[n].devno));
		pool_attr(id, "uuid", p[n].uuid, sizeof(p[n].uuid));
		n++;
	}
	return n;
}

int lowest_free_slot(void)
{
	int id;

	for (id = 0; id < MAX_SLOTS; id++)
		if (!pool_is_active(id))
			return id;
	return -1;
}

static const char *const pool_attrs[] = {
	"spare_device", "dev", "uuid", "state", "block_size", "blocks_total",
	"blocks_used", "blocks_pending", "blocks_retired", "blocks_free",
	"low_water", "attached_devices", "metadata_seq", "scan_state",
};

enum {
	PA_SPARE, PA_DEV, PA_UUID, PA_STATE, PA_BS, PA_TOTAL, PA_USED,
	PA_PENDING, PA_RETIRED, PA_FREE, PA_LOW, PA_ATTACHED, PA_SEQ,
	PA_SCAN, PA_NR
};

struct pool_row {
	int id;
	char v[PA_NR][64];
};

static void pool_read(int id, struct pool_row *row)
{
	unsigned int i;

	row->id = id;
	for (i = 0; i < PA_NR; i++)
		pool_attr(id, pool_attrs[i], row->v[i], sizeof(row->v[i]));
	/* A module without the scanner: it is off. */
	if (!strcmp(row->v[PA_SCAN], "-"))
		strcpy(row->v[PA_SCAN], "off");
}

static void pool_json(const struct pool_row *row)
{
	unsigned int i;

	json_obj_begin(NULL);
	json_u64("id", row->id);
	for (i = 0; i < PA_NR; i++) {
		const char *key = pool_attrs[i];

		if (i == PA_SPARE)
			key = "spare";
		else if (i == PA_DEV)
			key = "spare_devno";
		else if (i == PA_SCAN)
			key = "scanner";
		if (i == PA_SPARE || i == PA_DEV || i == PA_UUID ||
		    i == PA_STATE || i == PA_SCAN)
			json_str(key, row->v[i]);
		else
			json_auto(key, row->v[i]);
	}
	json_obj_end();
}

static void pools_table_init(struct table *t)
{
	table_init(t, 12, "POOL", "SPARE", "DEVNO", "BLOCK", "TOTAL", "USED",
		   "PENDING", "RETIRED", "FREE", "DEVICES", "STATE", "SCANNER");
}

static void pool_table_row(struct table *t, const struct pool_row *r)
{
	table_cell(t, "%d", r->id);
	table_cell(t, "%s", r->v[PA_SPARE]);
	table_cell(t, "%s", r->v[PA_DEV]);
	table_cell(t, "%s", r->v[PA_BS]);
	table_cell(t, "%s", r->v[PA_TOTAL]);
	table_cell(t, "%s", r->v[PA_USED]);
	table_cell(t, "%s", r->v[PA_PENDING]);
	table_cell(t, "%s", r->v[PA_RETIRED]);
	table_cell(t, "%s", r->v[PA_FREE]);
	table_cell(t, "%s", r->v[PA_ATTACHED]);
	table_cell(t, "%s", r->v[PA_STATE]);
	table_cell(t, "%s", r->v[PA_SCAN]);
}

struct dev_record *pool_records(const char *what, int slot, int *n)
{
	struct dev_record *recs;
	char *resp, *line, *save = NULL, *tok, *save2;
	const char *mgr;
	int r, cap = RM_MAX_DEVS + 1;

	*n = 0;
	if (mgr_get(what, &mgr))
		return NULL;
	r = mgr_msg(slot, "list_devices", &resp);
	if (r) {
		fail(what, "list_devices of pool %d: %s", slot, why(REQ_MGR, r));
		return NULL;
	}
	recs = xcalloc(cap, sizeof(*recs));
	for (line = strtok_r(resp, "\n", &save); line && *n < cap;
	     line = strtok_r(NULL, "\n", &save)) {
		struct dev_record *d = &recs[*n];
		uint64_t v;

		tok = strtok_r(line, " ", &save2);
		if (!tok || parse_u64(tok, UINT32_MAX, &v))
			continue;
		d->dev_id = (uint32_t)v;
		while ((tok = strtok_r(NULL, " ", &save2))) {
			char *val = strchr(tok, '=');

			if (!val)
				continue;
			*val++ = 0;
			if (!strcmp(tok, "sectors"))
				parse_u64(val, UINT64_MAX, &d->sectors);
			else if (!strcmp(tok, "blocks"))
				parse_u64(val, UINT64_MAX, &d->blocks);
			else if (!strcmp(tok, "name") && strcmp(val, "-"))
				snprintf(d->name, sizeof(d->name), "%s", val);
			else if (!strcmp(tok, "locator") && strcmp(val, "-"))
				snprintf(d->locator, sizeof(d->locator), "%s",
					 val);
		}
		(*n)++;
	}
	free(resp);
	return recs;
}

/* ---- Remap devices ------------------------------------------------------- */

struct remap_dev {
	char *name;
	int pool;
	uint32_t dev_id;
	char main[32];		/* major:minor */
	char main_name[160];	/* /dev path */
	uint64_t sectors;
	bool force;
	/* INFO status */
	uint64_t remaps, pending, read_errors, write_errors, remapped_ios;
	char state[16];
	bool have_status;
};

/* Fill rd from a dm device with a remap table; -1 if it is not one. */
static int remap_parse(const struct dmdev *d, struct remap_dev *rd)
{
	unsigned int pool, dev_id, nopt = 0;
	char main[32], opt[16] = "", *st;
	dev_t dev;

	memset(rd, 0, sizeof(*rd));
	if (d->ntargets != 1 || strcmp(d->type, REMAP_TARGET))
		return -1;
	if (sscanf(d->params, "%u %31s %u %u %15s", &dev_id, main, &pool,
		   &nopt, opt) < 3)
		return -1;
	rd->name = d->name;
	rd->pool = (int)pool;
	rd->dev_id = dev_id;
	rd->sectors = d->len;
	rd->force = nopt == 1 && !strcmp(opt, "force");
	snprintf(rd->main, sizeof(rd->main), "%s", main);
	if (parse_devno(main, &dev) || blk_path(dev, rd->main_name,
						sizeof(rd->main_name)))
		snprintf(rd->main_name, sizeof(rd->main_name), "%s", main);
	if (dmx_status(d->name, &st))
		return 0;
	if (sscanf(st, "%*u %*u %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %15s", &rd->remaps, &rd->pending,
		   &rd->read_errors, &rd->write_errors, &rd->remapped_ios,
		   rd->state) == 6)
		rd->have_status = true;
	free(st);
	return 0;
}

static void dev_json(const struct remap_dev *rd)
{
	char path[PATH_MAX], buf[64];

	json_obj_begin(NULL);
	json_str("name", rd->name);
	json_u64("pool", rd->pool);
	json_u64("dev_id", rd->dev_id);
	json_str("main", rd->main_name);
	json_str("main_devno", rd->main);
	json_u64("sectors", rd->sectors);
	json_bool("force", rd->force);
	if (rd->have_status) {
		json_u64("remaps", rd->remaps);
		json_u64("pending", rd->pending);
		json_u64("read_errors", rd->read_errors);
		json_u64("write_errors", rd->write_errors);
		json_u64("remapped_ios", rd->remapped_ios);
		json_str("state", rd->state);
	} else {
		json_str("state", NULL);
	}
	snprintf(path, sizeof(path), "%s/%d/devices/%u/health", SYSFS_POOLS,
		 rd->pool, rd->dev_id);
	if (!sysfs_read(path, buf, sizeof(buf)))
		json_auto("health", buf);
	json_obj_end();
}

static void devs_table_init(struct table *t)
{
	table_init(t, 11, "DEVICE", "POOL", "DEV_ID", "MAIN", "SECTORS",
		   "REMAPS", "PENDING", "RD_ERR", "WR_ERR", "REMAPPED_IO",
		   "STATE");
}

static void dev_table_row(struct table *t, const struct remap_dev *rd)
{
	table_cell(t, "%s", rd->name);
	table_cell(t, "%d", rd->pool);
	table_cell(t, "%u", rd->dev_id);
	table_cell(t, "%s", rd->main_name);
	table_cell(t, "%llu", (unsigned long long)rd->sectors);
	if (!rd->have_status) {
		table_cell(t, "-");
		table_cell(t, "-");
		table_cell(t, "-");
		table_cell(t, "-");
		table_cell(t, "-");
		table_cell(t, "unknown");
		return;
	}
	table_cell(t, "%llu", (unsigned long long)rd->remaps);
	table_cell(t, "%llu", (unsigned long long)rd->pending);
	table_cell(t, "%llu", (unsigned long long)rd->read_errors);
	table_cell(t, "%llu", (unsigned long long)rd->write_errors);
	table_cell(t, "%llu", (unsigned long long)rd->remapped_ios);
	table_cell(t, "%s", rd->state);
}

/* The remap device called name, or an error printed; dmdev to free. */
static int remap_lookup(const char *what, const char *name, struct dmdev *d,
			struct remap_dev *rd)
{
	int r = dmx_table(name, d);

	if (r)
		return fail(what, "%s", r == -ENXIO ? "no such device" :
			    why(REQ_DEVMSG, r));
	if (remap_parse(d, rd)) {
		r = fail(what, "not a dm-remap device (its target is '%s')",
			 d->type);
		dmx_dev_free(d);
		return r;
	}
	return 0;
}

/* ---- pool ---------------------------------------------------------------- */

/*
 * The one <spare> argument of pool format and pool resume: its canonical
 * path and device number, once the manager device is there.  Returns -1
 * if all is well, else the exit code (the error said); *what becomes the
 * argument, for later messages.
 */
static int spare_arg(int argc, char **argv, const char **what, char *path,
		     size_t len, dev_t *dev)
{
	const char *mgr;
	int r;

	if (argc - optind != 1)
		return usage_error(*what, "expected one spare device (see --help)");
	*what = argv[optind];
	r = blk_canon(argv[optind], path, len, dev);
	if (r)
		return fail(*what, "%s", blk_strerror(r));
	return mgr_get(*what, &mgr) ? EXIT_FAIL : -1;
}

static const char help_pool_format[] =
"usage: remapctl pool format <spare> [--force] [--block-size N]\n"
"\n"
"Write a fresh, empty pool onto the spare device.  A device that already\n"
"holds a pool is refused unless --force is given; the spare of an active\n"
"pool is always refused.\n"
"\n"
"  --force           overwrite an existing (inactive) pool\n"
"  --block-size N    remap granularity in bytes: a power of two from 512\n"
"                    to 1048576 (default 4096)\n";

static int pool_format(int argc, char **argv)
{
	static const struct option lo[] = {
		COMMON_LONGOPTS,
		{ "force", no_argument, NULL, 'f' },
		{ "block-size", required_argument, NULL, 'b' },
		{ 0 }
	};
	const char *what = "pool format";
	uint64_t bs = RM_DEFAULT_BLOCK_SIZE;
	bool force = false, have_bs = false;
	char *msg, path[PATH_MAX];
	struct pool_sb sb;
	dev_t dev;
	int c, r;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hvfb:", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'b':
			if (parse_u64(optarg, UINT32_MAX, &bs) ||
			    !rm_block_size_valid((uint32_t)bs))
				return usage_error(what, "invalid block size '%s' (a power of two, %u..%u)",
						   optarg, RM_MIN_BLOCK_SIZE,
						   RM_MAX_BLOCK_SIZE);
			have_bs = true;
			break;
		default:
			r = common_opt(c, argv, what, help_pool_format);
			if (r >= 0)
				return r;
		}
	}
	r = spare_arg(argc, argv, &what, path, sizeof(path), &dev);
	if (r >= 0)
		return r;
	if (have_bs)
		msg = xasprintf("format_spare %s%s block_size=%llu", path,
				force ? " force" : "", (unsigned long long)bs);
	else
		msg = xasprintf("format_spare %s%s", path,
				force ? " force" : "");
	r = mgr_msg(-1, msg, NULL);
	free(msg);
	if (r)
		return fail(what, "cannot format: %s", why(REQ_FORMAT, r));
	if (!sb_probe(path, &sb) && sb.valid)
		printf("formatted %s: %llu blocks of %u bytes\n", argv[optind],
		       (unsigned long long)sb.nr_blocks, sb.block_size);
	else
		printf("formatted %s\n", argv[optind]);
	return EXIT_OK;
}

static const char help_pool_resume[] =
"usage: remapctl pool resume <spare> [--slot N]\n"
"\n"
"Load the pool on the spare device into a slot (the lowest free one by\n"
"default) and start it.  Its remap devices can then be created again.\n"
"\n"
"  --slot N    the pool id to use (0..63)\n";

static int pool_resume(int argc, char **argv)
{
	static const struct option lo[] = {
		COMMON_LONGOPTS,
		{ "slot", required_argument, NULL, 's' },
		{ 0 }
	};
	struct pool_info act[MAX_SLOTS];
	const char *what = "pool resume";
	int c, r, slot = -1, i, n;
	char *msg, buf[32], path[PATH_MAX];
	dev_t dev, adev;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hvs:", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			r = parse_slot(what, optarg, &slot);
			if (r >= 0)
				return r;
			break;
		default:
			r = common_opt(c, argv, what, help_pool_resume);
			if (r >= 0)
				return r;
		}
	}
	r = spare_arg(argc, argv, &what, path, sizeof(path), &dev);
	if (r >= 0)
		return r;
	n = pools_active(act);
	for (i = 0; i < n; i++)
		if (!parse_devno(act[i].devno, &adev) && adev == dev)
			return fail(what, "already active as pool %d",
				    act[i].id);
	if (slot < 0) {
		slot = lowest_free_slot();
		if (slot < 0)
			return fail(what, "no free pool slot (all %d in use)",
				    MAX_SLOTS);
	} else if (pool_is_active(slot)) {
		pool_attr(slot, "spare_device", buf, sizeof(buf));
		return fail(what, "slot %d is busy (pool on %s)", slot, buf);
	}
	msg = xasprintf("resume_spare %s", path);
	r = mgr_msg(slot, msg, NULL);
	free(msg);
	if (r)
		return fail(what, "cannot resume: %s", why(REQ_RESUME, r));
	pool_attr(slot, "blocks_total", buf, sizeof(buf));
	printf("pool %d: resumed from %s (%s blocks)\n", slot, argv[optind],
	       buf);
	return EXIT_OK;
}

static const char help_pool_free[] =
"usage: remapctl pool free <pool>\n"
"\n"
"Commit and release the pool (its id is the slot).  Refused while remap\n"
"devices are attached to it.  The pool stays on its spare and can be\n"
"resumed again.\n";

static int pool_free(int argc, char **argv)
{
	const char *what = "pool free", *mgr;
	char buf[64];
	int r, slot = -1;

	r = parse_common(argc, argv, what, help_pool_free);
	if (r >= 0)
		return r;
	if (argc - optind != 1)
		return usage_error(what, "expected one pool id (see --help)");
	r = parse_slot(what, argv[optind], &slot);
	if (r >= 0)
		return r;
	what = xasprintf("pool %d", slot);
	if (!pool_is_active(slot)) {
		r = fail(what, "no active pool in that slot");
		goto out;
	}
	pool_attr(slot, "spare_device", buf, sizeof(buf));
	if (mgr_get(what, &mgr)) {
		r = EXIT_FAIL;
		goto out;
	}
	r = mgr_msg(slot, "free_spare", NULL);
	if (r && r != -EIO) {
		r = fail(what, "cannot free: %s", why(REQ_FREE, r));
		goto out;
	}
	/* EIO: the module released the pool all the same. */
	if (r)
		warn(what, "warning: the last metadata commit failed (see the kernel log): what was not committed yet, such as scanner progress, is lost; the spare may be failing");
	printf("pool %d: freed (spare %s)\n", slot, buf);
	r = EXIT_OK;
out:
	free((char *)what);
	return r;
}

static const char help_pool_list[] =
"usage: remapctl [--json] pool list\n"
"\n"
"List the active pools: spare device, block size, spare blocks (total,\n"
"remapped, pending, retired, free), attached devices and state.\n";

static int pool_list(int argc, char **argv)
{
	struct pool_info act[MAX_SLOTS];
	struct pool_row row;
	struct table t;
	int r, i, n;

	r = parse_common(argc, argv, "pool list", help_pool_list);
	if (r >= 0)
		return r;
	if (argc != optind)
		return usage_error("pool list", "no arguments expected");
	n = pools_active(act);
	if (opt_json) {
		json_obj_begin(NULL);
		json_arr_begin("pools");
		for (i = 0; i < n; i++) {
			pool_read(act[i].id, &row);
			pool_json(&row);
		}
		json_arr_end();
		json_obj_end();
		json_done();
		return EXIT_OK;
	}
	if (!n) {
		printf("no active pools\n");
		return EXIT_OK;
	}
	pools_table_init(&t);
	for (i = 0; i < n; i++) {
		pool_read(act[i].id, &row);
		pool_table_row(&t, &row);
	}
	table_print(&t);
	table_free(&t);
	return EXIT_OK;
}

static const char help_pool[] =
"usage: remapctl pool <format|resume|free|list> ... (each has --help)\n"
"\n"
"  pool format <spare> [--force] [--block-size N]   write a fresh pool\n"
"  pool resume <spare> [--slot N]                   activate a pool\n"
"  pool free <pool>                                 release a pool\n"
"  pool list                                        list active pools\n";

static int cmd_pool(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("pool", "expected format, resume, free or list (see remapctl pool --help)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(help_pool, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "format"))
		return pool_format(argc - 1, argv + 1);
	if (!strcmp(argv[1], "resume"))
		return pool_resume(argc - 1, argv + 1);
	if (!strcmp(argv[1], "free"))
		return pool_free(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list"))
		return pool_list(argc - 1, argv + 1);
	return usage_error("pool", "unknown subcommand '%s' (see remapctl pool --help)",
			   argv[1]);
}

/* ---- create, remove ------------------------------------------------------ */

static const char help_create[] =
"usage: remapctl create <name> <main_dev> --pool <id> [--dev-id N] [--force]\n"
"\n"
"Create the remap device /dev/mapper/<name> over <main_dev>, attached to\n"
"an active pool, and record its name and a stable path of the main device\n"
"in the pool so that 'remapctl activate' can create it again after boot.\n"
"\n"
"  --pool <id>   the pool (see remapctl pool list)\n"
"  --dev-id N    the device's id in the pool; by default the id the pool\n"
"                recorded for this main device, else the lowest unused\n"
"                (refused while a record with remaps of a device of this\n"
"                size, not attached, has no label or one not found)\n"
"  --force       accept a main device smaller than recorded for the\n"
"                dev_id, DROPPING the remaps recorded for it; with --dev-id,\n"
"                also a main device other than the one whose remaps the\n"
"                dev_id holds (at least as big: it takes them over)\n";

/* The main device's dev_id if the pool recorded it, else the lowest free. */
static int pick_dev_id(const struct dev_record *recs, int n, dev_t main,
		       uint32_t *dev_id, bool *reused)
{
	uint32_t id;
	dev_t d;
	int i;

	*reused = false;
	for (i = 0; i < n; i++) {
		if (recs[i].locator[0] && !blk_resolve(recs[i].locator, &d) &&
		    d == main) {
			*dev_id = recs[i].dev_id;
			*reused = true;
			return 0;
		}
	}
	for (id = 0; id < UINT32_MAX; id++) {
		for (i = 0; i < n && recs[i].dev_id != id; i++)
			;
		if (i == n) {
			*dev_id = id;
			return 0;
		}
	}
	return -1;
}

/*
 * An explicit dev_id whose record holds remaps of what may be another main
 * device: a device of at least the recorded size would take those remaps
 * over (right for a copy of the old disk, wrong for any other), so that
 * needs --force.  0 when main is the recorded device or nothing is at stake.
 */
static int check_dev_id(const char *what, const struct dev_record *recs,
			int n, uint32_t dev_id, dev_t main, const char *path)
{
	const struct dev_record *rec = NULL;
	dev_t d;
	int i;

	for (i = 0; i < n && !rec; i++)
		if (recs[i].dev_id == dev_id)
			rec = &recs[i];
	if (!rec || !rec->blocks)
		return 0;
	if (!rec->locator[0])
		return fail(what, "dev_id %u holds %llu remapped blocks and has no label to tell whether %s is its main device; --force attaches it anyway",
			    dev_id, (unsigned long long)rec->blocks, path);
	if (blk_resolve(rec->locator, &d) || d != main)
		return fail(what, "dev_id %u holds %llu remapped blocks of %s, not %s; --force attaches it anyway (one at least as big takes the remaps over, a smaller one drops them)",
			    dev_id, (unsigned long long)rec->blocks, rec->locator, path);
	return 0;
}

static int pool_dev_ids(int slot, uint64_t *ids, int max);

/*
 * No record's locator resolves to main, so create would give it a new
 * dev_id.  But a record of the same size with remaps, attached to no
 * device, whose main device cannot be found (no label: made with dmsetup;
 * or its locator resolves to nothing) may be this very disk, and its
 * remaps would then be ignored: refused, naming the ids to choose from.
 */
static int check_unfound_records(const char *what,
				 const struct dev_record *recs, int n,
				 int slot, uint64_t sectors, uint32_t new_id,
				 const char *path)
{
	uint64_t *ids = xcalloc(RM_MAX_DEVS + 1, sizeof(*ids));
	int i, j, nids = pool_dev_ids(slot, ids, RM_MAX_DEVS + 1);
	const struct dev_record *rec = NULL;
	char where[LABEL_LOC_MAX + 32];
	dev_t d;

	if (nids < 0) {
		free(ids);
		return fail(what, "cannot list the devices attached to pool %d: %s",
			    slot, strerror(-nids));
	}

	for (i = 0; i < n && !rec; i++) {
		if (!recs[i].blocks || recs[i].sectors != sectors)
			continue;
		for (j = 0; j < nids && ids[j] != recs[i].dev_id; j++)
			;
		if (j < nids)
			continue;
		if (!recs[i].locator[0] || blk_resolve(recs[i].locator, &d))
			rec = &recs[i];
	}
	free(ids);
	if (!rec)
		return 0;
	if (rec->locator[0])
		snprintf(where, sizeof(where), "%s, which is not found",
			 rec->locator);
	else
		snprintf(where, sizeof(where), "a device with no label");
	return fail(what, "dev_id %u holds %llu remapped blocks of %s, of the size of %s; if it is that disk, give --dev-id %u --force, else --dev-id %u for a new id",
		    rec->dev_id, (unsigned long long)rec->blocks, where, path,
		    rec->dev_id, new_id);
}

/* Name of the remap device whose main device is dev, into buf. */
bool main_in_use(dev_t dev, char *buf, size_t size)
{
	struct remap_dev rd;
	struct dmdev *d;
	bool used = false;
	dev_t m;
	int n, i;

	d = dmx_list(&n);
	if (!d)
		return false;
	for (i = 0; i < n && !used; i++) {
		if (remap_parse(&d[i], &rd) || parse_devno(rd.main, &m) ||
		    m != dev)
			continue;
		snprintf(buf, size, "%s", d[i].name);
		used = true;
	}
	dmx_list_free(d, n);
	return used;
}

/*
 * Is dev used by another dm or md device (a holder)?  dm opens the devices
 * of all its tables as one holder, so the kernel lets two dm devices map
 * one disk: LVM that found its volumes on the raw main disk, say, would
 * then bypass every remap.  Its name into buf.
 */
bool main_held(dev_t dev, char *buf, size_t size)
{
	char kname[NAME_MAX + 1];

	return !blk_kname(dev, kname, sizeof(kname)) &&
	       blk_held(kname, buf, size);
}

static int cmd_create(int argc, char **argv)
{
	static const struct option lo[] = {
		COMMON_LONGOPTS,
		{ "pool", required_argument, NULL, 'p' },
		{ "dev-id", required_argument, NULL, 'i' },
		{ "force", no_argument, NULL, 'f' },
		{ 0 }
	};
	char params[128], loc[LABEL_LOC_MAX + 1], other[128], *msg;
	const char *what = "create", *name, *mgr;
	struct dev_record *recs = NULL;
	struct dmdev d;
	uint64_t sectors, id64;
	int c, r, slot = -1, n;
	bool force = false, have_id = false, reused = false;
	uint32_t dev_id = 0;
	dev_t main;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hvp:i:f", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			r = parse_slot(what, optarg, &slot);
			if (r >= 0)
				return r;
			break;
		case 'i':
			if (parse_u64(optarg, UINT32_MAX, &id64))
				return usage_error(what, "invalid dev_id '%s' (0..%u)",
						   optarg, UINT32_MAX);
			dev_id = (uint32_t)id64;
			have_id = true;
			break;
		case 'f':
			force = true;
			break;
		default:
			r = common_opt(c, argv, what, help_create);
			if (r >= 0)
				return r;
		}
	}
	if (argc - optind != 2)
		return usage_error(what, "expected <name> <main_dev> (see --help)");
	if (slot < 0)
		return usage_error(what, "--pool <id> is required");
	name = argv[optind];
	if (!name_ok(name))
		return usage_error(what, "invalid name '%s' (1..%d printable characters, no whitespace, '/' or '\\', not '-')",
				   name, LABEL_NAME_MAX);
	what = name;
	r = blk_devno(argv[optind + 1], &main);
	if (r)
		return fail(what, "%s: %s", argv[optind + 1], blk_strerror(r));
	r = blk_sectors(main, &sectors);
	if (r || !sectors)
		return fail(what, "%s: cannot read its size", argv[optind + 1]);
	if (!pool_is_active(slot))
		return fail(what, "no active pool %d", slot);
	if (mgr_get(what, &mgr))
		return EXIT_FAIL;
	r = dmx_table(name, &d);
	if (!r) {
		dmx_dev_free(&d);
		return fail(what, "a device-mapper device of that name already exists");
	}
	if (main_in_use(main, other, sizeof(other)))
		return fail(what, "%s is already the main device of %s",
			    argv[optind + 1], other);
	if (main_held(main, other, sizeof(other)))
		return fail(what, "%s is in use by %s", argv[optind + 1],
			    other);
	recs = pool_records(what, slot, &n);
	if (!recs)
		return EXIT_FAIL;
	if (!have_id && pick_dev_id(recs, n, main, &dev_id, &reused)) {
		free(recs);
		return fail(what, "no free dev_id in pool %d", slot);
	}
	if (have_id)
		r = force ? 0 : check_dev_id(what, recs, n, dev_id, main,
					     argv[optind + 1]);
	else
		r = reused ? 0 : check_unfound_records(what, recs, n, slot,
						       sectors, dev_id,
						       argv[optind + 1]);
	free(recs);
	if (r)
		return r;

	snprintf(params, sizeof(params), "%u %u:%u %d%s", dev_id, major(main),
		 minor(main), slot, force ? " 1 force" : "");
	r = dmx_create(name, sectors, REMAP_TARGET, params);
	if (r)
		return fail(what, "cannot create: %s", why(REQ_CREATE, r));

	r = blk_locator(main, loc, sizeof(loc));
	if (!r) {
		msg = xasprintf("set_label %s %s", name, loc);
		r = dmx_message(name, msg, NULL);
		free(msg);
	}
	printf("%s: created over %s (pool %d, dev_id %u%s, %llu sectors)\n",
	       name, argv[optind + 1], slot, dev_id,
	       reused ? ", as recorded" : "", (unsigned long long)sectors);
	if (r)
		warn(what, "warning: set_label failed (%s): the pool has no name and main device for it, 'remapctl activate' will not re-create it",
		     why(REQ_DEVMSG, r));
	return EXIT_OK;
}

static const char help_remove[] =
"usage: remapctl remove <name>\n"
"\n"
"Remove a remap device.  Its remaps stay recorded in the pool and come\n"
"back when a device with the same dev_id is created over the same main\n"
"device.\n";

static int cmd_remove(int argc, char **argv)
{
	struct remap_dev rd;
	struct dmdev d;
	const char *what;
	int r;

	r = parse_common(argc, argv, "remove", help_remove);
	if (r >= 0)
		return r;
	if (argc - optind != 1)
		return usage_error("remove", "expected one device name (see --help)");
	what = argv[optind];
	if (remap_lookup(what, what, &d, &rd))
		return EXIT_FAIL;
	dmx_dev_free(&d);
	r = dmx_remove(what);
	if (r)
		return fail(what, "cannot remove: %s", why(REQ_REMOVE, r));
	printf("%s: removed\n", what);
	return EXIT_OK;
}

/* ---- status, remaps ------------------------------------------------------ */

static const char help_status[] =
"usage: remapctl [--json] status [<name> | --pool <id>]\n"
"\n"
"Show the active pools and remap devices: all of them, one device and its\n"
"pool, or one pool and its devices.\n";

static int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = {
		COMMON_LONGOPTS,
		{ "pool", required_argument, NULL, 'p' },
		{ 0 }
	};
	struct pool_info act[MAX_SLOTS];
	struct remap_dev *rds;
	const char *name = NULL;
	struct table tp, td;
	int c, r, slot = -1, n, nd = 0, i, np;
	bool want[MAX_SLOTS] = { false };
	struct pool_row row;
	struct dmdev *d;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hvp:", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			r = parse_slot("status", optarg, &slot);
			if (r >= 0)
				return r;
			break;
		default:
			r = common_opt(c, argv, "status", help_status);
			if (r >= 0)
				return r;
		}
	}
	if (argc - optind > 1 || (argc - optind == 1 && slot >= 0))
		return usage_error("status", "expected a device name or --pool <id>, not both");
	if (argc - optind == 1)
		name = argv[optind];
	if (slot >= 0 && !pool_is_active(slot))
		return fail("status", "no active pool %d", slot);

	d = dmx_list(&n);
	if (!d)
		return fail("status", "cannot list device-mapper devices: %s",
			    why(REQ_MGR, -errno));
	rds = xcalloc(n, sizeof(*rds));
	for (i = 0; i < n; i++) {
		if (remap_parse(&d[i], &rds[nd]))
			continue;
		if ((name && strcmp(name, d[i].name)) ||
		    (slot >= 0 && rds[nd].pool != slot))
			continue;
		if (rds[nd].pool >= 0 && rds[nd].pool < MAX_SLOTS)
			want[rds[nd].pool] = true;
		nd++;
	}
	if (name && !nd) {
		for (i = 0; i < n && strcmp(d[i].name, name); i++)
			;
		r = fail(name, i < n ? "not a dm-remap device" :
			 "no such device");
		goto out;
	}
	np = pools_active(act);
	if (opt_json) {
		json_obj_begin(NULL);
		json_arr_begin("pools");
	} else {
		pools_table_init(&tp);
	}
	for (i = 0; i < np; i++) {
		if ((name && !want[act[i].id]) ||
		    (slot >= 0 && act[i].id != slot))
			continue;
		pool_read(act[i].id, &row);
		if (opt_json)
			pool_json(&row);
		else
			pool_table_row(&tp, &row);
	}
	if (opt_json) {
		json_arr_end();
		json_arr_begin("devices");
		for (i = 0; i < nd; i++)
			dev_json(&rds[i]);
		json_arr_end();
		json_obj_end();
		json_done();
	} else {
		if (tp.nrows > 1)
			table_print(&tp);
		else
			printf("no active pools\n");
		table_free(&tp);
		putchar('\n');
		if (nd) {
			devs_table_init(&td);
			for (i = 0; i < nd; i++)
				dev_table_row(&td, &rds[i]);
			table_print(&td);
			table_free(&td);
		} else {
			printf("no remap devices\n");
		}
	}
	r = EXIT_OK;
out:
	free(rds);
	dmx_list_free(d, n);
	return r;
}

static const char help_remaps[] =
"usage: remapctl [--json] remaps <name>\n"
"\n"
"List the blocks of a remap device that the pool redirects: remapped\n"
"blocks (their data lives on the spare) and pending blocks (unreadable,\n"
"reads fail until the block is overwritten).  Blocks are in units of the\n"
"pool's block size; SECTOR is the first 512-byte sector of the block.\n";

static int cmd_remaps(int argc, char **argv)
{
	char *resp, *line, *save = NULL, state[16];
	unsigned long long blk, spare;
	uint64_t bs = 0, nmap = 0, npend = 0;
	struct remap_dev rd;
	struct table t;
	struct dmdev d;
	const char *what;
	char path[PATH_MAX];
	int r;

	r = parse_common(argc, argv, "remaps", help_remaps);
	if (r >= 0)
		return r;
	if (argc - optind != 1)
		return usage_error("remaps", "expected one device name (see --help)");
	what = argv[optind];
	if (remap_lookup(what, what, &d, &rd))
		return EXIT_FAIL;
	snprintf(path, sizeof(path), "%s/%d/block_size", SYSFS_POOLS, rd.pool);
	if (sysfs_read_u64(path, &bs) || bs < 512)
		bs = 0;
	r = dmx_message(what, "list_remaps", &resp);
	if (r) {
		dmx_dev_free(&d);
		return fail(what, "list_remaps: %s", why(REQ_DEVMSG, r));
	}
	if (opt_json) {
		json_obj_begin(NULL);
		json_str("device", what);
		json_u64("pool", rd.pool);
		json_u64("dev_id", rd.dev_id);
		json_u64("block_size", bs);
		json_arr_begin("remaps");
	} else {
		table_init(&t, 4, "BLOCK", "SECTOR", "SPARE_BLOCK", "STATE");
	}
	for (line = strtok_r(resp, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%llu %llu %15s", &blk, &spare, state) != 3)
			continue;
		if (!strcmp(state, "pending"))
			npend++;
		else
			nmap++;
		if (opt_json) {
			json_obj_begin(NULL);
			json_u64("block", blk);
			json_u64("sector", blk * (bs / 512));
			json_u64("spare_block", spare);
			json_str("state", state);
			json_obj_end();
		} else {
			table_cell(&t, "%llu", blk);
			table_cell(&t, "%llu", blk * (bs / 512));
			table_cell(&t, "%llu", spare);
			table_cell(&t, "%s", state);
		}
	}
	if (opt_json) {
		json_arr_end();
		json_u64("mapped", nmap);
		json_u64("pending", npend);
		json_obj_end();
		json_done();
	} else {
		if (nmap + npend)
			table_print(&t);
		table_free(&t);
		printf("%s: %llu remapped, %llu pending (block size %llu)\n",
		       what, (unsigned long long)nmap,
		       (unsigned long long)npend, (unsigned long long)bs);
	}
	free(resp);
	dmx_dev_free(&d);
	return EXIT_OK;
}

/* ---- scan ---------------------------------------------------------------- */

static const char help_scan[] =
"usage: remapctl [--json] scan <pool> start|stop|status|set <key>=<value>...\n"
"\n"
"Control the background scanner of a pool, which reads the attached main\n"
"devices, counts slow and failing sectors and moves failing blocks to the\n"
"spare before their data is lost.\n"
"\n"
"  start                  start a pass now\n"
"  stop                   stop the running pass\n"
"  status                 scanner state and per-device progress and health\n"
"  set key=value...       tunables:\n"
"      enabled=0|1        scan periodically\n"
"      interval=<s>       seconds between passes\n"
"      rate=<KiB/s>       read rate limit\n"
"      slow_ms=<ms>       a read slower than this counts as slow\n";

static const char *const scan_pool_attrs[] = {
	"scan_state", "scan_enabled", "scan_interval", "scan_rate",
	"scan_slow_ms",
};

static const char *const scan_dev_attrs[] = {
	"scan_pos", "scan_percent", "scan_passes", "scan_last_pass",
	"scanned", "scan_failed", "scan_slow", "scan_retried",
	"scan_predictive", "health",
};

#define NR_SCAN_DEV ARRAY_SIZE(scan_dev_attrs)

static int cmp_dev_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* dev_ids attached to a pool (its sysfs devices/), sorted; count or -errno. */
static int pool_dev_ids(int slot, uint64_t *ids, int max)
{
	char *path = pool_path(slot, "devices");
	struct dirent *de;
	int n = 0;
	DIR *dp;

	dp = opendir(path);
	n = dp ? 0 : -errno;
	free(path);
	if (!dp)
		return n;
	while ((de = readdir(dp)) && n < max)
		if (!parse_u64(de->d_name, UINT32_MAX, &ids[n]))
			n++;
	closedir(dp);
	qsort(ids, n, sizeof(*ids), cmp_dev_id);
	return n;
}

/* dm name of the remap device attached as dev_id ("-" if unknown). */
static void dev_dm_name(int slot, uint64_t id, char *buf, size_t size)
{
	char path[PATH_MAX], link[NAME_MAX + 1];
	const char *base;
	ssize_t n;

	snprintf(buf, size, "-");
	snprintf(path, sizeof(path), "%s/%d/devices/%llu/dm", SYSFS_POOLS,
		 slot, (unsigned long long)id);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return;
	link[n] = 0;
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	snprintf(path, sizeof(path), "/sys/class/block/%s/dm/name", base);
	if (sysfs_read(path, buf, size))
		snprintf(buf, size, "-");
}

static int scan_status(int slot)
{
	char pv[5][64], dv[NR_SCAN_DEV][64], name[128], when[32], path[PATH_MAX];
	uint64_t ids[RM_MAX_DEVS + 1], t;
	unsigned int i;
	struct table tab;
	int n, j;

	for (i = 0; i < 5; i++)
		pool_attr(slot, scan_pool_attrs[i], pv[i], sizeof(pv[i]));
	if (!strcmp(pv[0], "-"))
		return fail("scan", "pool %d: this dm-remap module has no scanner (no scan_state in sysfs)",
			    slot);
	n = pool_dev_ids(slot, ids, RM_MAX_DEVS + 1);
	if (n < 0)
		n = 0;		/* freed meanwhile: no devices */
	if (opt_json) {
		json_obj_begin(NULL);
		json_u64("pool", slot);
		for (i = 0; i < 5; i++)
			json_auto(scan_pool_attrs[i], pv[i]);
		json_arr_begin("devices");
	} else {
		printf("pool %d: scanner %s, enabled %s, interval %s s, rate %s KiB/s, slow %s ms\n",
		       slot, pv[0], pv[1], pv[2], pv[3], pv[4]);
		table_init(&tab, 12, "DEV_ID", "DEVICE", "POS", "PERCENT",
			   "PASSES", "LAST_PASS", "SCANNED", "FAILED", "SLOW",
			   "RETRIED", "PREDICTIVE", "HEALTH");
	}
	for (j = 0; j < n; j++) {
		for (i = 0; i < NR_SCAN_DEV; i++) {
			snprintf(path, sizeof(path), "%s/%d/devices/%llu/%s",
				 SYSFS_POOLS, slot,
				 (unsigned long long)ids[j],
				 scan_dev_attrs[i]);
			if (sysfs_read(path, dv[i], sizeof(dv[i])))
				snprintf(dv[i], sizeof(dv[i]), "-");
		}
		dev_dm_name(slot, ids[j], name, sizeof(name));
		if (opt_json) {
			json_obj_begin(NULL);
			json_u64("dev_id", ids[j]);
			json_str("name", name);
			for (i = 0; i < NR_SCAN_DEV; i++)
				json_auto(scan_dev_attrs[i], dv[i]);
			json_obj_end();
			continue;
		}
		snprintf(when, sizeof(when), "never");
		if (!parse_u64(dv[3], UINT64_MAX, &t) && t) {
			time_t tt = (time_t)t;
			struct tm tm;

			if (localtime_r(&tt, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d_%H:%M",
					 &tm);
		}
		table_cell(&tab, "%llu", (unsigned long long)ids[j]);
		table_cell(&tab, "%s", name);
		for (i = 0; i < NR_SCAN_DEV; i++) {
			if (i == 3)
				table_cell(&tab, "%s", when);
			else if (i == 1)
				table_cell(&tab, "%s%%", dv[i]);
			else
				table_cell(&tab, "%s", dv[i]);
		}
	}
	if (opt_json) {
		json_arr_end();
		json_obj_end();
		json_done();
	} else {
		if (n)
			table_print(&tab);
		else
			printf("no devices attached\n");
		table_free(&tab);
	}
	return EXIT_OK;
}

/* Check key=value arguments; attr[i] gets the sysfs file of each. */
static int scan_set_parse(int argc, char **argv, const char **attr)
{
	static const char *const keys[] = { "enabled", "interval", "rate",
					    "slow_ms" };
	const char *eq, *key;
	int i, k;

	if (!argc)
		return usage_error("scan", "set: expected key=value (enabled, interval, rate, slow_ms)");
	if (argc > 16)
		return usage_error("scan", "set: too many settings");
	for (i = 0; i < argc; i++) {
		eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || !eq[1])
			return usage_error("scan", "set: expected key=value, not '%s'",
					   argv[i]);
		attr[i] = NULL;
		key = argv[i];
		if (!strncmp(key, "scan_", 5))
			key += 5;
		for (k = 0; k < 4; k++)
			if ((size_t)(eq - key) == strlen(keys[k]) &&
			    !strncmp(key, keys[k], eq - key))
				attr[i] = scan_pool_attrs[k + 1];
		if (!attr[i])
			return usage_error("scan", "set: unknown setting '%.*s' (enabled, interval, rate, slow_ms)",
					   (int)(eq - argv[i]), argv[i]);
	}
	return -1;
}

/*
 * Write the settings in order.  The kernel checks each value; if it
 * refuses one, those already written get their old values back, so a
 * refused set changes nothing.
 */
static int scan_set(int slot, int argc, char **argv, const char **attr)
{
	char old[16][24];
	const char *val;
	char what[32];
	char *path;
	int i, j, r;

	snprintf(what, sizeof(what), "pool %d", slot);
	for (i = 0; i < argc; i++) {
		r = pool_attr(slot, attr[i], old[i], sizeof(old[i]));
		if (r)
			return fail(what, "scan set: cannot read %s: %s", attr[i],
				    why(REQ_SYSFS, r));
	}
	for (i = 0; i < argc; i++) {
		val = strchr(argv[i], '=') + 1;
		path = pool_path(slot, attr[i]);
		r = sysfs_write(path, val);
		free(path);
		if (!r)
			continue;
		for (j = i - 1; j >= 0; j--) {
			path = pool_path(slot, attr[j]);
			if (sysfs_write(path, old[j]))
				warn(what, "scan set: could not restore %s = %s",
				     attr[j], old[j]);
			free(path);
		}
		return fail(what, "scan set %s: %s; nothing changed", argv[i],
			    why(REQ_SYSFS, r));
	}
	for (i = 0; i < argc; i++)
		printf("pool %d: %s = %s\n", slot, attr[i], strchr(argv[i], '=') + 1);
	return EXIT_OK;
}

/* scan_enabled of the pool reads 1 (or cannot be read). */
static bool scan_enabled(int slot)
{
	char buf[16];

	return pool_attr(slot, "scan_enabled", buf, sizeof(buf)) ||
	       strcmp(buf, "0");
}

static int cmd_scan(int argc, char **argv)
{
	const char *mgr, *op, *attr[16];
	int r, slot = -1, nargs;
	char what[32];

	r = parse_common(argc, argv, "scan", help_scan);
	if (r >= 0)
		return r;
	if (argc - optind < 2)
		return usage_error("scan", "expected <pool> start|stop|status|set (see --help)");
	r = parse_slot("scan", argv[optind], &slot);
	if (r >= 0)
		return r;
	op = argv[optind + 1];
	nargs = argc - optind - 2;
	if (!strcmp(op, "set")) {
		r = scan_set_parse(nargs, argv + optind + 2, attr);
		if (r >= 0)
			return r;
	} else if (strcmp(op, "status") && strcmp(op, "start") &&
		   strcmp(op, "stop")) {
		return usage_error("scan", "expected start, stop, status or set key=value..., not '%s'",
				   op);
	} else if (nargs) {
		return usage_error("scan", "%s takes no arguments", op);
	}
	snprintf(what, sizeof(what), "pool %d", slot);
	if (!pool_is_active(slot))
		return fail(what, "no active pool in that slot");
	if (!strcmp(op, "status"))
		return scan_status(slot);
	if (!strcmp(op, "set"))
		return scan_set(slot, nargs, argv + optind + 2, attr);
	if (mgr_get(what, &mgr))
		return EXIT_FAIL;
	r = mgr_msg(slot, !strcmp(op, "start") ? "scan_start" : "scan_stop",
		    NULL);
	if (r == -EINVAL && !strcmp(op, "start") && !scan_enabled(slot))
		return fail(what, "scan start: the scanner is disabled (remapctl scan %d set enabled=1)",
			    slot);
	if (r)
		return fail(what, "scan %s: %s", op, why(REQ_MGR, r));
	printf("pool %d: scan %s\n", slot,
	       !strcmp(op, "start") ? "started" : "stopped");
	return EXIT_OK;
}

/* ---- targets, version ---------------------------------------------------- */

static const char help_targets[] =
"usage: remapctl targets\n"
"\n"
"Show whether the kernel has dm-remap's targets (remap-mgr and remap)\n"
"loaded, with their versions.  Exit status 1 if not.\n";

static int cmd_targets(int argc, char **argv)
{
	struct dm_versions *v, *last;
	struct dm_task *dmt;
	int found = 0, r;

	r = parse_common(argc, argv, "targets", help_targets);
	if (r >= 0)
		return r;
	if (argc != optind)
		return usage_error("targets", "no arguments expected");
	r = dmx_no_task_err();
	if (r != -ENOMEM)
		return fail("targets", "cannot talk to device-mapper: %s",
			    why(REQ_MGR, r));
	dmt = dm_task_create(DM_DEVICE_LIST_VERSIONS);
	if (!dmt || !dm_task_run(dmt)) {
		if (dmt)
			dm_task_destroy(dmt);
		return fail("targets", "cannot talk to device-mapper: %s",
			    why(REQ_MGR, EIO));
	}
	v = dm_task_get_versions(dmt);
	do {
		last = v;
		if (!strcmp(v->name, MGR_TARGET) ||
		    !strcmp(v->name, REMAP_TARGET)) {
			printf("%-10s v%u.%u.%u\n", v->name, v->version[0],
			       v->version[1], v->version[2]);
			found++;
		}
		v = (struct dm_versions *)((char *)v + v->next);
	} while (last != v);
	dm_task_destroy(dmt);
	if (found != 2)
		return fail("targets", "dm-remap targets not loaded (modprobe dm-remap)");
	return EXIT_OK;
}

static const char help_version[] =
"usage: remapctl version\n"
"\n"
"Print remapctl's version.\n";

static int cmd_version(int argc, char **argv)
{
	int r = parse_common(argc, argv, "version", help_version);

	if (r >= 0)
		return r;
	if (argc != optind)
		return usage_error("version", "no arguments expected");
	printf("remapctl %s\n", REMAPCTL_VERSION);
	return EXIT_OK;
}

/* ---- main ---------------------------------------------------------------- */

static const char help_main[] =
"usage: remapctl [--json] [-v] <command> [args]\n"
"\n"
"Manage dm-remap spare pools and remap devices.\n"
"\n"
"commands:\n"
"  pool format <spare> [--force] [--block-size N]  write a fresh pool\n"
"  pool resume <spare> [--slot N]       activate a pool (lowest free slot)\n"
"  pool free <pool>                     release a pool\n"
"  pool list                            list active pools\n"
"  create <name> <main_dev> --pool <id> [--dev-id N] [--force]\n"
"                                       create a remap device\n"
"  remove <name>                        remove a remap device\n"
"  status [<name> | --pool <id>]        pools and devices\n"
"  remaps <name>                        remapped and pending blocks\n"
"  scan <pool> start|stop|status|set key=value...\n"
"                                       background scanner\n"
"  activate                             resume every pool found on this\n"
"                                       machine's disks, re-create devices\n"
"  targets                              are dm-remap's targets loaded?\n"
"  version                              print the version\n"
"\n"
"options:\n"
"  --json       machine-readable output (status, pool list, remaps, scan)\n"
"  -v           verbose: show the messages sent to the kernel\n"
"  -h, --help   this help; '<command> --help' for each command\n"
"\n"
"exit status: 0 done, 1 failed, 2 usage error, 3 activate was partial\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "pool", cmd_pool },
	{ "create", cmd_create },
	{ "remove", cmd_remove },
	{ "status", cmd_status },
	{ "remaps", cmd_remaps },
	{ "scan", cmd_scan },
	{ "activate", cmd_activate },
	{ "targets", cmd_targets },
	{ "version", cmd_version },
};

/* What the command said, unless its output could not be written. */
static int finish(int r)
{
	if (r == EXIT_FAIL && dmx_bad_env)
		r = EXIT_USAGE;
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "remapctl: cannot write the output: %s\n",
			strerror(errno));
		return r ? r : EXIT_FAIL;
	}
	return r;
}

int main(int argc, char **argv)
{
	unsigned int i;
	int a;

	for (a = 1; a < argc && argv[a][0] == '-'; a++) {
		if (!strcmp(argv[a], "--json")) {
			opt_json = true;
		} else if (argv[a][1] == 'v' &&
			   strspn(argv[a] + 1, "v") == strlen(argv[a] + 1)) {
			opt_verbose += strlen(argv[a] + 1);	/* -v, -vv */
		} else if (!strcmp(argv[a], "--verbose")) {
			opt_verbose++;
		} else if (!strcmp(argv[a], "-h") ||
			   !strcmp(argv[a], "--help")) {
			fputs(help_main, stdout);
			return finish(EXIT_OK);
		} else if (!strcmp(argv[a], "--version")) {
			printf("remapctl %s\n", REMAPCTL_VERSION);
			return finish(EXIT_OK);
		} else {
			return usage_error("usage", "unknown option '%s' (see remapctl --help)",
					   argv[a]);
		}
	}
	if (a == argc)
		return usage_error("usage", "no command given (see remapctl --help)");
	dmx_init();
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[a], commands[i].name))
			return finish(commands[i].fn(argc - a, argv + a));
	return usage_error("usage", "unknown command '%s' (see remapctl --help)",
			   argv[a]);
}
