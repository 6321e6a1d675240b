// SPDX-License-Identifier: GPL-2.0-only
/*
 * json.c - output for remapctl: a small streaming JSON writer (stdout,
 * indented, always valid as long as begin/end calls pair up) and tables
 * whose columns are aligned to their widest cell.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstr.h"
#include "remapctl.h"

#define JSON_DEPTH	16

static int depth;
static bool need_comma[JSON_DEPTH];

static void indent(void)
{
	int i;

	for (i = 0; i < depth; i++)
		fputs("  ", stdout);
}

/* Separator, indentation and key of the next value. */
static void next(const char *key)
{
	if (depth > 0) {
		if (need_comma[depth])
			putchar(',');
		putchar('\n');
		need_comma[depth] = true;
	}
	indent();
	if (key) {
		json_put_string(stdout, key);
		fputs(": ", stdout);
	}
}

static void open_(const char *key, char c)
{
	next(key);
	putchar(c);
	if (depth + 1 < JSON_DEPTH)
		depth++;
	need_comma[depth] = false;
}

static void close_(char c)
{
	bool any = need_comma[depth];

	depth--;
	if (any) {
		putchar('\n');
		indent();
	}
	putchar(c);
}

void json_obj_begin(const char *key)
{
	open_(key, '{');
}

void json_obj_end(void)
{
	close_('}');
}

void json_arr_begin(const char *key)
{
	open_(key, '[');
}

void json_arr_end(void)
{
	close_(']');
}

void json_str(const char *key, const char *v)
{
	next(key);
	if (v)
		json_put_string(stdout, v);
	else
		fputs("null", stdout);
}

void json_u64(const char *key, uint64_t v)
{
	next(key);
	printf("%llu", (unsigned long long)v);
}

void json_i64(const char *key, int64_t v)
{
	next(key);
	printf("%lld", (long long)v);
}

void json_bool(const char *key, bool v)
{
	next(key);
	fputs(v ? "true" : "false", stdout);
}

void json_auto(const char *key, const char *v)
{
	uint64_t n;

	if (v && !parse_u64(v, UINT64_MAX, &n))
		json_u64(key, n);
	else
		json_str(key, v);
}

void json_done(void)
{
	putchar('\n');
}

/* ---- Tables -------------------------------------------------------------- */

void table_init(struct table *t, unsigned int ncols, ...)
{
	va_list ap;
	unsigned int i;

	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	va_start(ap, ncols);
	for (i = 0; i < ncols; i++)
		table_cell(t, "%s", va_arg(ap, const char *));
	va_end(ap);
}

/* Append the next cell, left to right, top to bottom. */
void table_cell(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (t->cur == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 4 * t->ncols;
		t->cells = realloc(t->cells, t->cap * sizeof(*t->cells));
		if (!t->cells)
			oom();	/* reports and exits */
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	t->cells[t->cur++] = s;
	t->nrows = (t->cur + t->ncols - 1) / t->ncols;
}

void table_print(struct table *t)
{
	size_t *w = xcalloc(t->ncols, sizeof(*w));
	unsigned int i, c;

	for (i = 0; i < t->cur; i++) {
		size_t l = strlen(t->cells[i]);

		if (l > w[i % t->ncols])
			w[i % t->ncols] = l;
	}
	for (i = 0; i < t->cur; i++) {
		c = i % t->ncols;
		if (c == t->ncols - 1 || i == t->cur - 1)
			printf("%s\n", t->cells[i]);
		else
			printf("%-*s  ", (int)w[c], t->cells[i]);
	}
	free(w);
}

void table_free(struct table *t)
{
	unsigned int i;

	for (i = 0; i < t->cur; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
