/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL backend (libpq). */
#include <errno.h>

#include "db_i.h"

static int pg_open(struct reg_conn *c, const char *target, int readonly)
{
	(void)c, (void)target, (void)readonly;
	return cm_err_set(-ENOTSUP, "PostgreSQL is not supported by this build");
}

const struct db_ops db_pg_ops = {
	.kind = "postgresql",
	.open = pg_open,
};
