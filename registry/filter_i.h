/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The search filter language (filter.c): `PATH OP VALUE` comparisons joined by
 * and/or with parentheses, compiled to a SQL condition over the version index
 * (versions v, models m, version_leaves) with every value bound as a
 * parameter. Internal to registry/.
 */
#ifndef MODELFS_FILTER_I_H
#define MODELFS_FILTER_I_H

#include <stddef.h>
#include <stdint.h>

#include "cm.h"

#define FLT_EXPR_MAX 4096 /* bytes of filter text */
#define FLT_PARAMS_MAX 200 /* values (each comparison takes one or two) */
#define FLT_PATH_MAX 200   /* bytes of a metadata path */

enum flt_ptype { FLT_P_TEXT, FLT_P_REAL, FLT_P_INT };

struct flt_param {
	enum flt_ptype type;
	char *text;
	double real;
	int64_t i;
};

/*
 * SQL text under construction and the values its ?N placeholders stand for
 * (?1 is p[0]). Zero-initialise; free with flt_sql_free().
 */
struct flt_sql {
	struct cm_buf sql;
	struct flt_param *p;
	size_t np, cap;
};

void flt_sql_free(struct flt_sql *q);
/* Appends SQL text. 0 or -ENOMEM. */
int flt_sql_add(struct flt_sql *q, const char *text);
/* Appends a placeholder bound to the value. 0, -ENOMEM or -E2BIG past FLT_PARAMS_MAX. */
int flt_param_text(struct flt_sql *q, const char *s);
int flt_param_real(struct flt_sql *q, double d);
int flt_param_int(struct flt_sql *q, int64_t i);

/* A comparison on a metadata leaf joined by `and` at the top of a filter. */
struct flt_conj {
	char path[FLT_PATH_MAX + 1];
	int op;            /* index into the operator table */
	int is_num;        /* compares num (else text) */
	double num;
	char *text;        /* owned */
};

/*
 * What the search planner learns from a compile: the top-level leaf
 * comparisons, when the filter is a conjunction (no top-level `or`).
 */
struct flt_plan {
	struct flt_conj *conj;
	size_t n, cap;
	int top_or;        /* an `or` at the top: the conjuncts do not bound the result */
};
void flt_plan_free(struct flt_plan *p);

/*
 * Appends the SQL condition that `expr` means to q, parenthesised. Paths:
 * name, model, state, validation_status, owner, description, archived, seq,
 * created_at, sealed_at, tags.KEY, or any dotted metadata path. A leaf
 * comparison is a correlated EXISTS on the leaf index (cheap per row, for
 * scans in the sort order), except the top-level conjunct number `drive`
 * (0-based; -1 for none), which becomes `v.id IN (...)` so that the query
 * is driven from that index. plan (may be NULL) receives the conjuncts.
 * 0, or -EINVAL with "filter: at position N: ..." (N counts bytes from 1).
 */
int flt_compile(const char *expr, struct flt_sql *q, int drive, struct flt_plan *plan);
/* Appends "SELECT count(*) ... LIMIT cap" for conjunct c: how many leaves match, up to cap. */
int flt_conj_count_sql(const struct flt_conj *c, int64_t cap, struct flt_sql *q);

/* A parsed sort: a column of v/m, or a metadata leaf (joined as `sk`). */
struct flt_sort {
	const char *column;            /* "v.created_at", ... or NULL for a leaf */
	char path[FLT_PATH_MAX + 1];   /* the leaf's path when column is NULL */
	int leaf_text;                 /* the leaf sorts by text (tags, owner), else by number */
	int desc;
	int nullable;                  /* rows without a value sort last */
	int is_text;                   /* the key is text (for the cursor) */
};

/* Parses "field", "-field" or "path". 0, or -EINVAL with "sort: ...". */
int flt_sort_parse(const char *sort, struct flt_sort *out);

/* 1 when `path` is a well-formed dotted path (segments of [A-Za-z0-9_-]). */
int flt_path_ok(const char *path);

#endif
