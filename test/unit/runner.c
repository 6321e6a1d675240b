// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* Runs every registered unit test; see unit.h. */
#include <string.h>
#include "unit.h"

static struct unit_test *unit_head, **unit_tail = &unit_head;
int unit_failures;

void unit_register(struct unit_test *t)
{
	*unit_tail = t;
	unit_tail = &t->next;
}

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int passed = 0, failed = 0;
	struct unit_test *t;

	for (t = unit_head; t; t = t->next) {
		if (filter && !strstr(t->name, filter))
			continue;
		unit_failures = 0;
		t->fn();
		if (unit_failures) {
			printf("FAIL %s\n", t->name);
			failed++;
		} else {
			printf("ok   %s\n", t->name);
			passed++;
		}
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
