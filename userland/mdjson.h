/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdjson.h - a small streaming JSON writer for the offline metadata tools,
 * and the JSON forms of a loaded pool's parts (schema in
 * Documentation/offline-tools.md).
 */
#ifndef MDJSON_H
#define MDJSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mdread.h"

#define JS_MAX_DEPTH	16

struct js {
	FILE *f;
	unsigned int depth;
	bool first[JS_MAX_DEPTH];	/* nothing written yet at this level */
	bool flat[JS_MAX_DEPTH];	/* members on one line */
};

void js_init(struct js *j, FILE *f);
/* key is NULL inside an array and at the top level. */
void js_open(struct js *j, const char *key, char bracket);
/* The same, with all its members on one line. */
void js_open_flat(struct js *j, const char *key, char bracket);
void js_close(struct js *j, char bracket);
void js_str(struct js *j, const char *key, const char *s);
void js_u64(struct js *j, const char *key, uint64_t v);
void js_bool(struct js *j, const char *key, bool v);
void js_null(struct js *j, const char *key);
/* Ends the document with a newline. */
void js_end(struct js *j);

/* "problems": [...] of a loaded pool. */
void md_json_problems(struct js *j, const struct md_pool *pool);
/* "superblock": {...} of a loaded pool (have_sb must be set). */
void md_json_superblock(struct js *j, const struct md_pool *pool);

#endif /* MDJSON_H */
