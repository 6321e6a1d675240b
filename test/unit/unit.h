/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Minimal unit-test framework for common/.
 *
 *   UNIT_TEST(name) { CHECK(x == 1); CHECK_EQ(a, b); }
 *
 * Tests register themselves at load time; runner.c runs them all (or those
 * whose name contains argv[1]) and ends with "N passed, N failed".
 */
#ifndef RM_UNIT_H
#define RM_UNIT_H

#include <stdio.h>
#include <stdint.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
	struct unit_test *next;
};

void unit_register(struct unit_test *t);
extern int unit_failures;	/* failed checks in the current test */

#define UNIT_TEST(n)							\
	static void unit_fn_##n(void);					\
	static struct unit_test unit_t_##n = { #n, unit_fn_##n, NULL };	\
	__attribute__((constructor)) static void unit_reg_##n(void)	\
	{ unit_register(&unit_t_##n); }					\
	static void unit_fn_##n(void)

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n",	\
				__FILE__, __LINE__, #cond);		\
			unit_failures++;				\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long _a = (long long)(a), _b = (long long)(b);	\
		if (_a != _b) {						\
			fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b, _a, _b);	\
			unit_failures++;				\
		}							\
	} while (0)

#endif /* RM_UNIT_H */
