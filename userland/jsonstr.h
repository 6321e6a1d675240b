/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * jsonstr.h - one JSON string, for remapctl (json.c) and the offline
 * tools (mdjson.c).
 *
 * Valid UTF-8 (device paths and dm names may hold it) passes through as
 * it is.  Control characters, DEL and every byte that is not part of a
 * valid UTF-8 sequence are escaped as \u00XX, the byte's value: the
 * output is valid UTF-8 JSON whatever the input.
 */
#ifndef JSONSTR_H
#define JSONSTR_H

#include <stdio.h>

/* Length of the valid multi-byte UTF-8 sequence at p (2..4), else 0. */
static inline int utf8_seq_len(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int n, i;

	if (*p >= 0xc2 && *p <= 0xdf)
		n = 2;
	else if (*p >= 0xe0 && *p <= 0xef)
		n = 3;
	else if (*p >= 0xf0 && *p <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, no surrogates, nothing above U+10FFFF. */
	if (*p == 0xe0)
		lo = 0xa0;
	else if (*p == 0xed)
		hi = 0x9f;
	else if (*p == 0xf0)
		lo = 0x90;
	else if (*p == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static inline void json_put_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int n;

	fputc('"', f);
	while (*p) {
		n = *p >= 0x80 ? utf8_seq_len(p) : 0;
		if (n) {
			fwrite(p, 1, (size_t)n, f);
			p += n;
			continue;
		}
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
		p++;
	}
	fputc('"', f);
}

#endif
