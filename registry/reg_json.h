/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON text as people wrote it: reals with the fewest digits that read back
 * exactly (0.85, not jansson's default 0.84999999999999998).
 */
#ifndef MODELFS_REG_JSON_H
#define MODELFS_REG_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Significant digits (15, 16 or 17) with which x reads back as the same double. */
int reg_json_real_digits(double x);

/*
 * JSON_REAL_PRECISION(p) for the smallest p in 15..17 at which every real in
 * j reads back as the same double; 0 (jansson's default, 17) when j has no
 * reals. OR it into the flags of json_dumps() and friends.
 */
size_t reg_json_real_flags(const json_t *j);

/* json_dumps() with reg_json_real_flags() added; NULL on any failed write (see json.c). */
char *reg_json_dumps(const json_t *j, size_t flags);
/* Routes jansson's allocations through a failure counter (once per process). */
void reg_json_init(void);
/* json_loads(text, 0, err), NULL (err "out of memory") when jansson ran out of memory. */
json_t *reg_json_loads(const char *text, json_error_t *err);

#endif
