// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test, group hostile-mem: the hostile-input and race matrix (suite hostile).
 */
#include "odp.h"

const struct tcase hostile_mem_tests[] = {
	{ 0 }
};
