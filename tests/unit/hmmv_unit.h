/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Shared scaffolding of the C unit tests (tests/unit, built by hmmv_add_unit_test): CHECK()
 * ends the calling test function (void) at the first false condition, prints the failure with
 * its line and counts it in `failures`, which main() turns into the exit status.
 */
#ifndef HMMV_UNIT_H
#define HMMV_UNIT_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			printf("FAIL %s: line %d: %s\n", __func__, __LINE__, #cond);      \
			failures++;                                                       \
			return;                                                           \
		}                                                                         \
	} while (0)

#endif /* HMMV_UNIT_H */
