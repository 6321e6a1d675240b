// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm.c - remapctl's use of libdevmapper: listing devices with their
 * tables, status, messages, create and remove, and the manager device.
 *
 * Every function returns 0 or a negative errno of the ioctl that failed,
 * so that callers can say why in one line; libdevmapper's own log lines
 * are shown only with -v.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <libdevmapper.h>

#include "remapctl.h"

static void dm_log(int level, const char *file, int line, int err,
		   const char *f, ...)
	__attribute__((format(printf, 5, 6)));

static void dm_log(int level, const char *file, int line, int err,
		   const char *f, ...)
{
	va_list ap;

	(void)file;
	(void)line;
	(void)err;
	if (opt_verbose < 2 && (level & 7) > 3)
		return;
	if (!opt_verbose)
		return;
	va_start(ap, f);
	fputs("remapctl: libdevmapper: ", stderr);
	vfprintf(stderr, f, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void dmx_init(void)
{
	dm_log_with_errno_init(dm_log);
}

/* errno of a failed dm_task_run; never 0. */
static int task_err(struct dm_task *dmt)
{
	int e = dm_task_get_errno(dmt);

	if (e <= 0)
		e = errno > 0 ? errno : EIO;
	return -e;
}

/*
 * Why no task could be made: libdevmapper checks the driver version when
 * it makes the first one, so a missing or inaccessible control node
 * shows here.
 */
int dmx_no_task_err(void)
{
	char line[128];
	bool dm = false;
	FILE *f;

	f = fopen("/proc/misc", "re");
	if (f) {
		while (!dm && fgets(line, sizeof(line), f))
			dm = strstr(line, " device-mapper");
		fclose(f);
		if (!dm)
			return -ENODM;
	}
	if (access("/dev/mapper/control", R_OK | W_OK) == 0)
		return -ENOMEM;
	return errno == ENOENT ? -ENODM : -errno;
}

static struct dm_task *task(int type, const char *name)
{
	static int checked;
	struct dm_task *dmt;

	/* Without the driver, libdevmapper would make a useless node. */
	if (!checked)
		checked = dmx_no_task_err() == -ENODM ? -1 : 1;
	if (checked < 0) {
		errno = ENODM;
		return NULL;
	}
	dmt = dm_task_create(type);
	if (!dmt) {
		errno = -dmx_no_task_err();
		return NULL;
	}
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		errno = EINVAL;		/* too long for a dm name */
		return NULL;
	}
	return dmt;
}

void dmx_dev_free(struct dmdev *d)
{
	free(d->name);
	free(d->type);
	free(d->params);
	memset(d, 0, sizeof(*d));
}

int dmx_table(const char *name, struct dmdev *out)
{
	struct dm_task *dmt = task(DM_DEVICE_TABLE, name);
	uint64_t start, len;
	char *type = NULL, *params = NULL;
	struct dm_info info;
	void *next = NULL;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (!dmt)
		return -errno;
	if (!dm_task_run(dmt)) {
		r = task_err(dmt);
		goto out;
	}
	if (!dm_task_get_info(dmt, &info) || !info.exists) {
		r = -ENXIO;
		goto out;
	}
	out->name = xstrdup(name);
	out->major = info.major;
	out->minor = info.minor;
	do {
		next = dm_get_next_target(dmt, next, &start, &len, &type,
					  &params);
		if (!type)
			break;
		if (!out->ntargets++) {
			out->type = xstrdup(type);
			out->params = xstrdup(params ? params : "");
			out->len = len;
		}
	} while (next);
	if (!out->type) {
		out->type = xstrdup("");
		out->params = xstrdup("");
	}
out:
	dm_task_destroy(dmt);
	return r;
}

void dmx_list_free(struct dmdev *d, int n)
{
	int i;

	for (i = 0; i < n; i++)
		dmx_dev_free(&d[i]);
	free(d);
}

struct dmdev *dmx_list(int *n)
{
	struct dm_task *dmt = task(DM_DEVICE_LIST, NULL);
	struct dmdev *devs = NULL;
	struct dm_names *nm;
	int cap = 0, r;

	*n = 0;
	if (!dmt)
		return NULL;
	if (!dm_task_run(dmt)) {
		errno = -task_err(dmt);
		dm_task_destroy(dmt);
		return NULL;
	}
	nm = dm_task_get_names(dmt);
	devs = xcalloc(1, sizeof(*devs));
	while (nm && nm->dev) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			devs = realloc(devs, cap * sizeof(*devs));
			if (!devs)
				oom();
		}
		r = dmx_table(nm->name, &devs[*n]);
		if (!r)
			(*n)++;		/* else it went away meanwhile */
		if (!nm->next)
			break;
		nm = (struct dm_names *)((char *)nm + nm->next);
	}
	dm_task_destroy(dmt);
	return devs;
}

int dmx_status(const char *name, char **params)
{
	struct dm_task *dmt = task(DM_DEVICE_STATUS, name);
	uint64_t start, len;
	char *type = NULL, *p = NULL;
	int r = 0;

	*params = NULL;
	if (!dmt)
		return -errno;
	if (!dm_task_run(dmt)) {
		r = task_err(dmt);
	} else {
		dm_get_next_target(dmt, NULL, &start, &len, &type, &p);
		if (!type)
			r = -ENXIO;
		else
			*params = xstrdup(p ? p : "");
	}
	dm_task_destroy(dmt);
	return r;
}

int dmx_message(const char *name, const char *msg, char **resp)
{
	struct dm_task *dmt = task(DM_DEVICE_TARGET_MSG, name);
	const char *ans;
	int r = 0;

	if (resp)
		*resp = NULL;
	if (!dmt)
		return -errno;
	if (!dm_task_set_sector(dmt, 0) || !dm_task_set_message(dmt, msg)) {
		dm_task_destroy(dmt);
		return -ENOMEM;
	}
	if (opt_verbose)
		fprintf(stderr, "remapctl: message %s: %s\n", name, msg);
	if (!dm_task_run(dmt)) {
		r = task_err(dmt);
	} else if (resp) {
		ans = dm_task_get_message_response(dmt);
		*resp = xstrdup(ans ? ans : "");
	}
	dm_task_destroy(dmt);
	return r;
}

/* Run a task that changes device nodes, waiting for udev if it runs. */
static int run_with_cookie(struct dm_task *dmt)
{
	uint32_t cookie = 0;
	int r = 0;

	if (!dm_task_set_cookie(dmt, &cookie, 0)) {
		dm_task_destroy(dmt);
		return -ENOMEM;
	}
	if (!dm_task_run(dmt))
		r = task_err(dmt);
	dm_udev_wait(cookie);
	dm_task_destroy(dmt);
	return r;
}

static int remove_quiet(const char *name)
{
	struct dm_task *dmt = task(DM_DEVICE_REMOVE, name);

	if (!dmt)
		return -errno;
	dm_task_retry_remove(dmt);
	return run_with_cookie(dmt);
}

/*
 * Create, load and resume in three steps, so that the errno reported is
 * the one of the step the kernel refused (the table load for a bad
 * table, the resume when the pool cannot record the device).  A device
 * that was created is removed again on failure.
 */
int dmx_create(const char *name, uint64_t sectors, const char *type,
	       const char *params)
{
	struct dm_task *dmt = task(DM_DEVICE_CREATE, name);
	int r;

	if (!dmt)
		return -errno;
	if (!dm_task_run(dmt)) {
		r = task_err(dmt);
		dm_task_destroy(dmt);
		return r;
	}
	dm_task_destroy(dmt);

	dmt = task(DM_DEVICE_RELOAD, name);
	if (!dmt) {
		r = -ENOMEM;
		goto undo;
	}
	if (!dm_task_add_target(dmt, 0, sectors, type, params)) {
		dm_task_destroy(dmt);
		r = -ENOMEM;
		goto undo;
	}
	if (!dm_task_run(dmt)) {
		r = task_err(dmt);
		dm_task_destroy(dmt);
		goto undo;
	}
	dm_task_destroy(dmt);

	dmt = task(DM_DEVICE_RESUME, name);
	if (!dmt) {
		r = -ENOMEM;
		goto undo;
	}
	r = run_with_cookie(dmt);
	if (!r)
		return 0;
undo:
	remove_quiet(name);
	return r;
}

int dmx_remove(const char *name)
{
	return remove_quiet(name);
}

bool dmx_target_loaded(const char *type)
{
	struct dm_task *dmt = task(DM_DEVICE_LIST_VERSIONS, NULL);
	struct dm_versions *v, *last;
	bool found = false;

	if (!dmt)
		return false;
	if (dm_task_run(dmt)) {
		v = dm_task_get_versions(dmt);
		do {
			last = v;
			if (!strcmp(v->name, type))
				found = true;
			v = (struct dm_versions *)((char *)v + v->next);
		} while (last != v);
	}
	dm_task_destroy(dmt);
	return found;
}

/* ---- The manager device -------------------------------------------------- */

static char *mgr_name;
static int lock_fd = -1;
bool dmx_bad_env;

/* How long to wait for another remapctl: LOCK_WAIT_ENV seconds, else 300. */
static int lock_wait_seconds(const char *what, unsigned int *seconds)
{
	const char *s = getenv(LOCK_WAIT_ENV);
	unsigned long v;
	char *end;

	*seconds = LOCK_WAIT_DEFAULT;
	if (!s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > 86400) {
		usage_error(what, "%s must be a number of seconds (0-86400), not '%s'",
			    LOCK_WAIT_ENV, s);
		dmx_bad_env = true;
		return -1;
	}
	*seconds = (unsigned int)v;
	return 0;
}

static double now_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * The lock, waiting for another remapctl at most lock_wait_seconds(), and
 * saying so once on stderr after a second: a user sees why a command does
 * not return.
 */
static int lock_or_wait(const char *what)
{
	const struct timespec step = { 0, 100 * 1000 * 1000 };
	double start = now_seconds(), waited;
	bool said = false;
	unsigned int limit;

	if (lock_wait_seconds(what, &limit))
		return -1;
	while (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			fail(what, "cannot lock %s: %s", LOCK_PATH,
			     strerror(errno));
			return -1;
		}
		waited = now_seconds() - start;
		if (!said && waited >= 1.0) {
			fprintf(stderr, "remapctl: waiting for another remapctl (%s)\n",
				LOCK_PATH);
			said = true;
		}
		if (waited >= limit) {
			fail(what, "another remapctl still holds %s after %u s; nothing done",
			     LOCK_PATH, limit);
			return -1;
		}
		nanosleep(&step, NULL);
	}
	return 0;
}

/*
 * The lock file, in a directory of ours that only we can write: in a
 * world-writable one anyone could create it first and hold it.
 */
static int lock_open(const char *what)
{
	struct stat st;
	int dfd;

	if (mkdir(LOCK_DIR, 0700) && errno != EEXIST) {
		fail(what, "cannot create %s: %s", LOCK_DIR, strerror(errno));
		return -1;
	}
	dfd = open(LOCK_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		fail(what, "cannot open %s: %s", LOCK_DIR, strerror(errno));
		return -1;
	}
	if (fstat(dfd, &st) || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(dfd);
		fail(what, "%s is not a directory of this user that only it can write; remove it",
		     LOCK_DIR);
		return -1;
	}
	lock_fd = openat(dfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			 0600);
	close(dfd);
	if (lock_fd < 0) {
		fail(what, "cannot open %s: %s", LOCK_PATH, strerror(errno));
		return -1;
	}
	return 0;
}

static int take_lock(const char *what)
{
	if (lock_fd >= 0)
		return 0;
	if (lock_open(what))
		return -1;
	if (lock_or_wait(what)) {
		close(lock_fd);
		lock_fd = -1;
		return -1;
	}
	return 0;
}

/* modprobe dm-remap; 0 if it worked. */
static int load_module(void)
{
	static const char *const paths[] = { "/sbin/modprobe",
					     "/usr/sbin/modprobe" };
	int status, fd;
	unsigned int i;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		for (i = 0; i < ARRAY_SIZE(paths); i++)
			execl(paths[i], "modprobe", "dm-remap", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

/* A device with a single remap-mgr target, "remap-mgr" preferred. */
static int find_mgr(char **name)
{
	struct dmdev *d;
	int n, i;

	*name = NULL;
	d = dmx_list(&n);
	if (!d)
		return -errno;
	for (i = 0; i < n; i++) {
		if (d[i].ntargets != 1 || strcmp(d[i].type, MGR_TARGET))
			continue;
		if (!*name || !strcmp(d[i].name, MGR_DEFAULT_NAME)) {
			free(*name);
			*name = xstrdup(d[i].name);
		}
	}
	dmx_list_free(d, n);
	return 0;
}

int mgr_get(const char *what, const char **name)
{
	int r;

	if (mgr_name) {
		*name = mgr_name;
		return 0;
	}
	if (take_lock(what))
		return -1;
	r = find_mgr(&mgr_name);
	if (r) {
		fail(what, "cannot list device-mapper devices: %s",
		     why(REQ_MGR, r));
		return -1;
	}
	if (!mgr_name) {
		if (!dmx_target_loaded(MGR_TARGET) &&
		    (load_module() || !dmx_target_loaded(MGR_TARGET))) {
			fail(what, "the remap-mgr target is not available (modprobe dm-remap failed)");
			return -1;
		}
		r = dmx_create(MGR_DEFAULT_NAME, 1, MGR_TARGET, "");
		if (r) {
			fail(what, "cannot create the manager device %s: %s",
			     MGR_DEFAULT_NAME,
			     r == -EEXIST ? "a device of that name exists and is not a remap-mgr"
					  : strerror(-r));
			return -1;
		}
		mgr_name = xstrdup(MGR_DEFAULT_NAME);
	}
	*name = mgr_name;
	return 0;
}

int mgr_msg(int slot, const char *msg, char **resp)
{
	char sw[32];
	int r;

	if (resp)
		*resp = NULL;
	if (!mgr_name)
		return -ENXIO;
	if (slot >= 0) {
		snprintf(sw, sizeof(sw), "switch_to %d", slot);
		r = dmx_message(mgr_name, sw, NULL);
		if (r)
			return r;
	}
	return dmx_message(mgr_name, msg, resp);
}
