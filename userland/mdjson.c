// SPDX-License-Identifier: GPL-2.0-only
/* mdjson.c - JSON writer and the JSON forms of a loaded pool; see mdjson.h. */
#include <inttypes.h>

#include "jsonstr.h"
#include "mdjson.h"

void js_init(struct js *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = true;
	j->flat[0] = false;
}

/* Separator, indentation and key of the next member. */
static void js_member(struct js *j, const char *key)
{
	if (!j->first[j->depth])
		fputs(j->flat[j->depth] ? ", " : ",", j->f);
	if (j->depth && !j->flat[j->depth])
		fprintf(j->f, "\n%*s", 2 * (int)j->depth, "");
	j->first[j->depth] = false;
	if (key) {
		json_put_string(j->f, key);
		fputs(": ", j->f);
	}
}

static void js_push(struct js *j, const char *key, char bracket, bool flat)
{
	js_member(j, key);
	fputc(bracket, j->f);
	if (j->depth + 1 < JS_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
	j->flat[j->depth] = flat || j->flat[j->depth - 1];
}

void js_open(struct js *j, const char *key, char bracket)
{
	js_push(j, key, bracket, false);
}

void js_open_flat(struct js *j, const char *key, char bracket)
{
	js_push(j, key, bracket, true);
}

/* bracket is the closing one: '}' or ']'. */
void js_close(struct js *j, char bracket)
{
	bool newline = !j->first[j->depth] && !j->flat[j->depth];

	if (j->depth)
		j->depth--;
	if (newline)
		fprintf(j->f, "\n%*s", 2 * (int)j->depth, "");
	fputc(bracket, j->f);
}

void js_str(struct js *j, const char *key, const char *s)
{
	js_member(j, key);
	json_put_string(j->f, s);
}

void js_u64(struct js *j, const char *key, uint64_t v)
{
	js_member(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void js_bool(struct js *j, const char *key, bool v)
{
	js_member(j, key);
	fputs(v ? "true" : "false", j->f);
}

void js_null(struct js *j, const char *key)
{
	js_member(j, key);
	fputs("null", j->f);
}

void js_end(struct js *j)
{
	fputc('\n', j->f);
}

/* ---- Pool parts ---------------------------------------------------------- */

static const char *const md_what_names[] = {
	[MD_SB_BAD] = "superblock_bad",
	[MD_SB_STALE] = "superblock_stale",
	[MD_SB_OTHER] = "superblock_differs",
	[MD_SB_NONE] = "no_superblock",
	[MD_DEV_SMALL] = "device_too_small",
	[MD_SLOT_TWIN] = "redundancy_lost",
	[MD_SLOT_AHEAD] = "interrupted_commit",
	[MD_SLOT_UNREAD] = "slot_unreadable",
	[MD_NO_COPY] = "table_block_lost",
	[MD_PAYLOAD] = "payload",
	[MD_DIGEST] = "digest_mismatch",
	[MD_SEQ_END] = "seq_exhausted",
	[MD_RECORD] = "record",
	[MD_DEV_SECTOR] = "sector_above_block_size",
};

static void md_json_record(struct js *j, const struct rm_problem *r)
{
	static const char *const objs[] = {
		[RM_OBJ_POOL] = "pool",
		[RM_OBJ_DEV] = "device",
		[RM_OBJ_ENTRY] = "entry",
		[RM_OBJ_NAME] = "label",
	};

	js_str(j, "object", r->obj <= RM_OBJ_NAME ? objs[r->obj] : "unknown");
	js_u64(j, "index", r->index);
	js_u64(j, "dev_id", r->dev_id);
	if (r->obj == RM_OBJ_ENTRY)
		js_u64(j, "main_block", r->main_block);
	if (r->err == RM_E_DUP_DEV || r->err == RM_E_DUP_MAP)
		js_u64(j, "first", r->other);
}

static void md_json_problem(struct js *j, const struct md_problem *p)
{
	char text[256];

	md_problem_text(p, text, sizeof(text));
	js_open_flat(j, NULL, '{');
	js_str(j, "severity", md_sev_name(p->sev));
	js_str(j, "kind", md_what_names[p->what]);
	if (p->err)
		js_str(j, "error", md_strerror(p->err));
	else
		js_null(j, "error");
	switch (p->what) {
	case MD_SB_BAD:
	case MD_SB_STALE:
	case MD_SB_OTHER:
		js_u64(j, "copy", p->index);
		js_u64(j, "md_block", p->blocknr);
		break;
	case MD_SLOT_TWIN:
	case MD_SLOT_AHEAD:
	case MD_SLOT_UNREAD:
		js_u64(j, "logical", p->index);
		js_u64(j, "slot", p->slot);
		js_u64(j, "md_block", p->blocknr);
		break;
	case MD_NO_COPY:
	case MD_PAYLOAD:
		js_u64(j, "logical", p->index);
		break;
	case MD_RECORD:
		md_json_record(j, &p->rec);
		break;
	default:
		break;
	}
	js_str(j, "message", text);
	js_close(j, '}');
}

void md_json_problems(struct js *j, const struct md_pool *pool)
{
	size_t i;

	js_open(j, "problems", '[');
	for (i = 0; i < pool->nr_problems; i++)
		md_json_problem(j, &pool->problems[i]);
	js_close(j, ']');
}

void md_json_superblock(struct js *j, const struct md_pool *pool)
{
	const struct rm_geometry *g = &pool->sb.geo;
	char uuid[MD_UUID_TEXT];

	md_uuid_text(pool->sb.uuid, uuid);
	js_open(j, "superblock", '{');
	js_u64(j, "copy", (uint64_t)pool->sb_copy);
	js_u64(j, "version", pool->sb.version);
	js_str(j, "uuid", uuid);
	js_u64(j, "seq", pool->sb.seq);
	js_u64(j, "flags", pool->sb.flags);
	js_u64(j, "table_digest", pool->sb.table_digest);
	js_u64(j, "block_size", g->block_size);
	js_u64(j, "dev_sectors", g->dev_sectors);
	js_u64(j, "table_start", g->table_start);
	js_u64(j, "nr_logical", g->nr_logical);
	js_u64(j, "data_start", g->data_start);
	js_u64(j, "nr_blocks", g->nr_blocks);
	js_close(j, '}');
}
