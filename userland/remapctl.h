/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * remapctl.h - declarations shared by remapctl's source files.
 *
 *   remapctl.c  command line, pool/device/status/remaps/scan commands
 *   activate.c  the activate command
 *   dm.c        libdevmapper helpers and the manager device
 *   blk.c       block devices, sysfs, superblock probe, locators
 *   json.c      JSON writer and aligned tables
 */
#ifndef REMAPCTL_H
#define REMAPCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "rm_format.h"

/* From dkms.conf, by the Makefile: one version for the module and tools. */
#define REMAPCTL_VERSION	RM_VERSION

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Exit codes (documented in remapctl(8)). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* the operation failed */
	EXIT_USAGE = 2,		/* bad command line */
	EXIT_PARTIAL = 3,	/* activate: some devices could not be set up */
};

#define MGR_TARGET	"remap-mgr"
#define REMAP_TARGET	"remap"
#define MGR_DEFAULT_NAME "remap-mgr"
/* Root's own directory: no one else can create or hold the lock file. */
#define LOCK_DIR	"/run/remapctl"
#define LOCK_PATH	LOCK_DIR "/lock"
#define LOCK_WAIT_ENV	"REMAPCTL_LOCK_WAIT"	/* seconds to wait for it */
#define LOCK_WAIT_DEFAULT 300
#define SYSFS_POOLS	"/sys/module/dm_remap/pools"
#define MAX_SLOTS	64		/* DMR_MAX_POOLS of the module */
#define LABEL_NAME_MAX	(RM_NAME_LEN - 1)	/* set_label limits */
#define LABEL_LOC_MAX	(RM_LOCATOR_LEN - 1)

extern bool opt_json;
extern int opt_verbose;

/* "remapctl: <what>: <why>" on stderr; returns code. */
int say(int code, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define warn(what, ...)		((void)say(0, what, __VA_ARGS__))
/* The same line; the value is EXIT_FAIL. */
#define fail(what, ...)		say(EXIT_FAIL, what, __VA_ARGS__)
/* The same line, for a bad command line; the value is EXIT_USAGE. */
#define usage_error(what, ...)	say(EXIT_USAGE, what, __VA_ARGS__)
/* Abort on allocation failure: nothing sensible is left to do. */
void oom(void) __attribute__((noreturn));
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a decimal unsigned number that must fit @max; 0 or -1. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Not an errno: device-mapper is missing (no /dev/mapper/control). */
#define ENODM	4096

/* Errno of a kernel refusal to words, for the given kind of request. */
enum req {
	REQ_FORMAT,
	REQ_RESUME,
	REQ_FREE,
	REQ_MGR,		/* other manager messages */
	REQ_CREATE,
	REQ_REMOVE,
	REQ_DEVMSG,		/* messages to a remap device */
	REQ_SYSFS,		/* a tunable written to sysfs */
};
const char *why(enum req req, int err);

/* ---- dm.c ---------------------------------------------------------------- */

/* One dm device and its (first) target. */
struct dmdev {
	char *name;
	char *type;		/* target type of the first target, or "" */
	char *params;		/* its table parameters */
	uint64_t len;		/* its length in sectors */
	int ntargets;
	uint32_t major, minor;
};

void dmx_init(void);
/* A bad REMAPCTL_LOCK_WAIT was reported: the command's failure is a usage error. */
extern bool dmx_bad_env;
/* Why libdevmapper cannot work here: -ENODM, -EACCES..., else -ENOMEM. */
int dmx_no_task_err(void);
/* All dm devices with their tables; *n set; NULL with errno on failure. */
struct dmdev *dmx_list(int *n);
void dmx_list_free(struct dmdev *d, int n);
/* The table of one device; -errno (-ENXIO: no such device). */
int dmx_table(const char *name, struct dmdev *out);
void dmx_dev_free(struct dmdev *d);
/* INFO status parameters of the first target (malloc'd). */
int dmx_status(const char *name, char **params);
/* Send a message; *resp (may be NULL) gets the answer (malloc'd). */
int dmx_message(const char *name, const char *msg, char **resp);
int dmx_create(const char *name, uint64_t sectors, const char *type,
	       const char *params);
int dmx_remove(const char *name);
bool dmx_target_loaded(const char *type);

/*
 * The manager: found among the dm devices (a single remap-mgr target), or
 * created as "remap-mgr" (loading the module first if need be).  The first
 * call takes the remapctl lock, held until exit, so that switch_to and the
 * message after it are never interleaved with another remapctl.
 * Returns 0 or prints why not and returns -1.
 */
int mgr_get(const char *what, const char **name);
/* switch_to <slot> (slot >= 0) then msg; -errno as dmx_message. */
int mgr_msg(int slot, const char *msg, char **resp);

/* ---- blk.c ----------------------------------------------------------------- */

struct pool_sb {
	bool found;		/* some copy has the magic */
	bool valid;		/* some copy is valid */
	int err;		/* why the last invalid copy is (RM_E_*) */
	uint64_t seq;
	uint8_t uuid[16];
	uint32_t block_size;
	uint64_t nr_blocks;
};

/* Read a sysfs attribute (trailing newline removed); -errno. */
int sysfs_read(const char *path, char *buf, size_t size);
int sysfs_read_u64(const char *path, uint64_t *v);
int sysfs_write(const char *path, const char *val);
/* Path of a block device node to its device number; -errno. */
int blk_devno(const char *path, dev_t *dev);
/*
 * The canonical path of a block device (symlinks resolved), usable in a
 * dm message: printable ASCII without whitespace.
 */
int blk_canon(const char *path, char *buf, size_t size, dev_t *dev);
/* blk_devno/blk_canon errors in words. */
const char *blk_strerror(int err);
/* Size in 512-byte sectors, from sysfs. */
int blk_sectors(dev_t dev, uint64_t *sectors);
/* Kernel name ("sda1") into buf. */
int blk_kname(dev_t dev, char *buf, size_t size);
/* "/dev/<kname>", or "/dev/mapper/<name>" for a dm device. */
int blk_path(dev_t dev, char *buf, size_t size);
/* Parse "major:minor". */
int parse_devno(const char *s, dev_t *dev);
/* A stable path to the device, printable without whitespace. */
int blk_locator(dev_t dev, char *buf, size_t size);
/* Resolve a locator to a device number; -errno (-ENOENT: not present). */
int blk_resolve(const char *locator, dev_t *dev);
/* Read the superblock copies of a device; -errno if it cannot be read. */
int sb_probe(const char *path, struct pool_sb *sb);
void uuid_str(const uint8_t uuid[16], char *buf);
/* Does the device have holders (another dm table, md...)? */
bool blk_held(const char *kname, char *by, size_t size);
/* A suspended dm device (a read of it would wait until it is resumed)? */
bool blk_suspended(const char *kname, char *which, size_t len);

/* ---- pools, devices (remapctl.c) ------------------------------------------------ */

struct pool_info {
	int id;
	char spare[64];		/* kernel name */
	char devno[32];
	char uuid[40];
};
/* Active pools from sysfs; returns how many (<= MAX_SLOTS). */
int pools_active(struct pool_info *p);
int lowest_free_slot(void);

/* An identity record from list_devices. */
struct dev_record {
	uint32_t dev_id;
	uint64_t sectors;
	uint64_t blocks;
	char name[LABEL_NAME_MAX + 1];	/* "" when none */
	char locator[LABEL_LOC_MAX + 1];
};
/* Records of the pool in slot; *n set; NULL on failure (printed). */
struct dev_record *pool_records(const char *what, int slot, int *n);

/* Is dev the main device of a remap device?  Its name into buf. */
bool main_in_use(dev_t dev, char *buf, size_t size);
/* Is dev used by another dm or md device?  Its name into buf. */
bool main_held(dev_t dev, char *buf, size_t size);
/* Parse only --help/--json/-v; -1 to go on, else the exit code. */
int parse_common(int argc, char **argv, const char *what, const char *help);

int cmd_activate(int argc, char **argv);

/* ---- json.c ---------------------------------------------------------------- */

void json_obj_begin(const char *key);
void json_obj_end(void);
void json_arr_begin(const char *key);
void json_arr_end(void);
void json_str(const char *key, const char *v);
void json_u64(const char *key, uint64_t v);
void json_i64(const char *key, int64_t v);
void json_bool(const char *key, bool v);
/* A number if v is a decimal integer, else a string. */
void json_auto(const char *key, const char *v);
void json_done(void);

struct table {
	unsigned int ncols, nrows, cap, cur;
	char **cells;		/* row-major, nrows * ncols, row 0 = headers */
};
void table_init(struct table *t, unsigned int ncols, ...);
void table_cell(struct table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void table_print(struct table *t);
void table_free(struct table *t);

#endif /* REMAPCTL_H */
