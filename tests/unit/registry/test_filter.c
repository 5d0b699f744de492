/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The filter language (registry/filter.c): the SQL each construct compiles
 * to, values always as parameters, and errors that name the position; then
 * the compiled filters run over a real store through reg_version_search().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_i.h"
#include "fixture.h"

static void compile_ok(const char *expr, const char *sql, struct flt_sql *q)
{
	memset(q, 0, sizeof(*q));
	if (flt_compile(expr, q, -1, NULL) != 0)
		fail_msg("'%s': %s", expr, cm_err_msg());
	if (sql && strcmp(q->sql.data, sql))
		fail_msg("'%s' compiled to\n  %s\nnot\n  %s", expr, q->sql.data, sql);
}

static void sql_shapes(void **state)
{
	struct flt_sql q;

	(void)state;
	compile_ok("performance_metrics.accuracy >= 0.9", "(((EXISTS (SELECT 1 FROM version_leaves l "
		   "WHERE l.version_id = v.id AND l.path = ?1 AND num >= ?2))))", &q);
	assert_int_equal(q.np, 2);
	assert_int_equal(q.p[0].type, FLT_P_TEXT);
	assert_string_equal(q.p[0].text, "performance_metrics.accuracy");
	assert_int_equal(q.p[1].type, FLT_P_REAL);
	assert_true(q.p[1].real == 0.9);
	flt_sql_free(&q);
	compile_ok("tags.team = \"sre\"", "(((EXISTS (SELECT 1 FROM version_leaves l WHERE "
		   "l.version_id = v.id AND l.path = ?1 AND text = ?2))))", &q);
	assert_string_equal(q.p[1].text, "sre");
	flt_sql_free(&q);
	compile_ok("name != \"v1\"", "(((v.name <> ?1)))", &q);
	flt_sql_free(&q);
	compile_ok("model < \"b\"", "(((m.name < ?1)))", &q);
	flt_sql_free(&q);
	compile_ok("seq <= 3", "(((v.seq <= ?1)))", &q);
	flt_sql_free(&q);
	compile_ok("created_at > \"2026-01-01T00:00:00Z\"", "(((v.created_at > ?1)))", &q);
	assert_int_equal(q.p[0].type, FLT_P_INT);
	assert_int_equal(q.p[0].i, 1767225600000000LL);
	flt_sql_free(&q);
	compile_ok("archived = true", "((((CASE WHEN v.state = 'archived' THEN 1 ELSE 0 END) = ?1)))",
		   &q);
	assert_int_equal(q.p[0].i, 1);
	flt_sql_free(&q);
	compile_ok("deployed = false", NULL, &q);
	assert_string_equal(q.p[1].text, "false");
	flt_sql_free(&q);
	/* and binds tighter than or; parentheses group. */
	compile_ok("name = \"a\" or name = \"b\" and seq = 3",
		   "(((v.name = ?1)) OR ((v.name = ?2) AND (v.seq = ?3)))", &q);
	flt_sql_free(&q);
	compile_ok("(a = 1 OR b = 2) AND c = 3", NULL, &q);
	assert_int_equal(q.np, 6);
	flt_sql_free(&q);
	/* Escapes in strings; a value never reaches the SQL text. */
	compile_ok("tags.x = \"it's \\\"quoted\\\" \\\\ ; DROP TABLE models\"", NULL, &q);
	assert_string_equal(q.p[1].text, "it's \"quoted\" \\ ; DROP TABLE models");
	assert_null(strstr(q.sql.data, "DROP"));
	assert_null(strchr(q.sql.data, '\''));
	flt_sql_free(&q);
	compile_ok("x.y >= -1.5e3", NULL, &q);
	assert_true(q.p[1].real == -1500.0);
	flt_sql_free(&q);
	compile_ok("  x == 1  ", NULL, &q); /* == reads as = */
	flt_sql_free(&q);
}

/* The planner's view: top-level leaf conjuncts, and the one that drives the query. */
static void conjuncts_and_drive(void **state)
{
	struct flt_plan plan = { 0 };
	struct flt_sql q = { 0 };

	(void)state;
	assert_int_equal(flt_compile("performance_metrics.accuracy >= 0.9 and name = \"v1\" and "
				     "(x = 1 or y = 2) and tags.team = \"sre\"", &q, 1, &plan), 0);
	assert_int_equal(plan.n, 2);
	assert_false(plan.top_or);
	assert_string_equal(plan.conj[0].path, "performance_metrics.accuracy");
	assert_true(plan.conj[0].is_num && plan.conj[0].num == 0.9);
	assert_string_equal(plan.conj[1].path, "tags.team");
	assert_string_equal(plan.conj[1].text, "sre");
	/* Conjunct 1 drives (IN); the others are checked per row (EXISTS). */
	assert_non_null(strstr(q.sql.data, "(v.id IN (SELECT version_id FROM version_leaves WHERE "
					   "path = ?8 AND text = ?9))"));
	assert_non_null(strstr(q.sql.data, "(EXISTS (SELECT 1 FROM version_leaves l WHERE "
					   "l.version_id = v.id AND l.path = ?1 AND num >= ?2))"));
	flt_sql_free(&q);
	assert_int_equal(flt_conj_count_sql(&plan.conj[0], 2000, &q), 0);
	assert_string_equal(q.sql.data, "SELECT count(*) FROM (SELECT 1 FROM version_leaves WHERE "
					"path = ?1 AND num >= ?2 LIMIT ?3) x");
	assert_int_equal(q.p[2].i, 2000);
	flt_sql_free(&q);
	flt_plan_free(&plan);
	assert_int_equal(flt_compile("a = 1 or b = 2", &q, -1, &plan), 0);
	assert_true(plan.top_or);
	flt_sql_free(&q);
	flt_plan_free(&plan);
}

static void every_operator(void **state)
{
	static const struct {
		const char *op, *sql;
	} ops[] = { { "=", " = " }, { "!=", " <> " }, { "<", " < " },
		    { "<=", " <= " }, { ">", " > " }, { ">=", " >= " } };
	char expr[64], want[128];
	struct flt_sql q;

	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		snprintf(expr, sizeof(expr), "seq %s 2", ops[i].op);
		snprintf(want, sizeof(want), "(((v.seq%s?1)))", ops[i].sql);
		compile_ok(expr, want, &q);
		flt_sql_free(&q);
	}
}

static void errors_name_the_position(void **state)
{
	static const struct {
		const char *expr;
		const char *msg;
	} cases[] = {
		{ "", "filter: at position 1: expected a comparison (PATH OP VALUE) or '(', found "
		      "the end of the filter" },
		{ "accuracy >> 0.9", "filter: at position 11: expected a value (a number, a "
				     "\"string\" or true/false) after 'accuracy >', found an operator" },
		{ "accuracy 0.9", "filter: at position 10: expected an operator (= != < <= > >=) "
				  "after 'accuracy', found a number" },
		{ "name = \"v1", "filter: at position 8: unterminated string (a closing \" is "
				 "missing)" },
		{ "name = \"a\\n\"", "filter: at position 10: only \\\" and \\\\ may be escaped in a "
				     "string" },
		{ "a = 1 and", "filter: at position 10: expected a comparison (PATH OP VALUE) or "
			       "'(', found the end of the filter" },
		{ "(a = 1", "filter: at position 7: expected ')' to close the '(' at position 1, "
			    "found the end of the filter" },
		{ "a = 1)", "filter: at position 6: expected 'and', 'or' or the end of the filter, "
			    "found ')'" },
		{ "a = 1 b = 2", "filter: at position 7: expected 'and', 'or' or the end of the "
				 "filter, found a field" },
		{ "a ! 1", "filter: at position 3: '!' must be followed by '=' (the operator is !=)" },
		{ "a = @", "filter: at position 5: unexpected character '@'" },
		{ "a..b = 1", "filter: at position 1: 'a..b' is not a field or metadata path (dotted "
			      "names of letters, digits, '_' and '-')" },
		{ "a = 1x", "filter: at position 5: not a number: '1x'" },
		{ "name = 1", "filter: at position 8: 'name' compares with a \"string\", not a number" },
		{ "seq = \"1\"", "filter: at position 7: 'seq' compares with a number, not a string" },
		{ "created_at < \"soon\"", "filter: at position 14: 'created_at' compares with an "
					   "RFC 3339 time in quotes (\"2026-01-31T12:00:00Z\")" },
		{ "archived < false", "filter: at position 1: 'archived' takes = or !=, not <" },
		{ "archived = 1", "filter: at position 12: 'archived' compares with true or false, "
				  "not a number" },
		{ "x > true", "filter: at position 1: true/false take = or !=, not >" },
		{ "tags.team = 3", "filter: at position 13: 'tags.team' compares with a \"string\", "
				   "not a number" },
		{ "= 1", "filter: at position 1: expected a comparison (PATH OP VALUE) or '(', found "
			 "an operator" },
	};
	struct flt_sql q;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&q, 0, sizeof(q));
		if (flt_compile(cases[i].expr, &q, -1, NULL) != -EINVAL)
			fail_msg("'%s' compiled", cases[i].expr);
		if (strcmp(cm_err_msg(), cases[i].msg))
			fail_msg("'%s':\n  got  %s\n  want %s", cases[i].expr, cm_err_msg(),
				 cases[i].msg);
		flt_sql_free(&q);
	}
}

static void limits(void **state)
{
	struct cm_buf b = { 0 };
	struct flt_sql q = { 0 };

	(void)state;
	/* Too many values. */
	for (int i = 0; i <= FLT_PARAMS_MAX; i++)
		assert_int_equal(cm_buf_printf(&b, "%sseq = %d", i ? " or " : "", i), 0);
	assert_int_equal(flt_compile(b.data, &q, -1, NULL), -E2BIG);
	assert_non_null(strstr(cm_err_msg(), "too many comparisons"));
	flt_sql_free(&q);
	cm_buf_reset(&b);
	/* Nesting. */
	for (int i = 0; i < 40; i++)
		cm_buf_append(&b, "(", 1);
	assert_int_equal(flt_compile(b.data, &q, -1, NULL), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "at position 33: parentheses nest too deep"));
	flt_sql_free(&q);
	cm_buf_reset(&b);
	/* Length. */
	for (int i = 0; i <= FLT_EXPR_MAX; i++)
		cm_buf_append(&b, " ", 1);
	assert_int_equal(flt_compile(b.data, &q, -1, NULL), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "longer than"));
	flt_sql_free(&q);
	cm_buf_free(&b);
}

static void sorts(void **state)
{
	struct flt_sort s;

	(void)state;
	assert_int_equal(flt_sort_parse("created_at", &s), 0);
	assert_string_equal(s.column, "v.created_at");
	assert_false(s.desc);
	assert_int_equal(flt_sort_parse("-sealed_at", &s), 0);
	assert_true(s.desc && s.nullable);
	assert_int_equal(flt_sort_parse("-performance_metrics.accuracy", &s), 0);
	assert_null(s.column);
	assert_string_equal(s.path, "performance_metrics.accuracy");
	assert_true(s.desc && s.nullable && !s.leaf_text);
	assert_int_equal(flt_sort_parse("tags.team", &s), 0);
	assert_true(s.leaf_text && s.is_text);
	assert_int_equal(flt_sort_parse("-", &s), -EINVAL);
	assert_int_equal(flt_sort_parse("name;drop", &s), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "sort: 'name;drop' is not a field"));
	assert_int_equal(flt_sort_parse("archived", &s), -EINVAL);
}

/* ---- over a real store ---- */

static void add(struct fx *f, const char *m, const char *v, double acc, const char *team)
{
	json_t *rec = json_pack("{s{sf} s{ss}}", "performance_metrics", "accuracy", acc, "tags",
				"team", team);
	struct reg_model mm;

	if (reg_model_get(f->st, m, &mm) == -ENOENT)
		assert_int_equal(reg_model_create(f->st, &fx_actor, m, NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, m, v, rec, NULL), 0);
	json_decref(rec);
}

static size_t count(struct fx *f, const char *model, const char *filter)
{
	struct reg_search q = { .model = model, .cross = !model, .filter = filter, .limit = 100 };
	json_t *page = NULL;
	size_t n;

	if (reg_version_search(f->st, &q, &page) != 0)
		fail_msg("'%s': %s", filter, cm_err_msg());
	n = json_array_size(json_object_get(page, "versions"));
	json_decref(page);
	return n;
}

static void search_over_a_store(void **state)
{
	struct fx *f = *state;
	struct reg_search q = { .cross = 1, .limit = 10 };
	json_t *page = NULL, *patch;

	add(f, "a", "v1", 0.8, "sre");
	add(f, "a", "v2", 0.95, "ml");
	add(f, "b", "v1", 0.92, "sre");
	assert_int_equal(count(f, NULL, "performance_metrics.accuracy >= 0.9"), 2);
	assert_int_equal(count(f, NULL, "performance_metrics.accuracy >= 0.9 and tags.team = \"sre\""),
			 1);
	assert_int_equal(count(f, "a", "tags.team = \"sre\" or tags.team = \"ml\""), 2);
	assert_int_equal(count(f, "a", "model = \"b\""), 0);
	/* The index follows every change of the record, in the same transaction. */
	patch = json_pack("{s{ss}}", "tags", "team", "ml");
	assert_int_equal(reg_version_metadata_patch(f->st, &fx_actor, "a", "v1", patch), 0);
	json_decref(patch);
	assert_int_equal(count(f, NULL, "tags.team = \"ml\""), 2);
	assert_int_equal(reg_version_metadata_remove(f->st, &fx_actor, "a", "v1"), 0);
	assert_int_equal(count(f, NULL, "tags.team = \"ml\""), 1);
	/* Errors come back as -EINVAL with the message; unknown models as -ENOENT. */
	q.filter = "x >";
	assert_int_equal(reg_version_search(f->st, &q, &page), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "at position 4"));
	q.filter = NULL;
	q.cursor = "not-hex";
	assert_int_equal(reg_version_search(f->st, &q, &page), -EINVAL);
	q.cursor = NULL;
	q.model = "nope";
	q.cross = 0;
	assert_int_equal(reg_version_search(f->st, &q, &page), -ENOENT);
}

static void backfill_indexes_old_stores(void **state)
{
	struct fx *f = *state;
	char err[256];

	add(f, "a", "v1", 0.8, "sre");
	reg_store_close(f->st);
	f->st = NULL;
	/* A store from before the index: no leaves, no mark that they were built. */
	if (fx_sql(f, "DELETE FROM version_leaves; DELETE FROM store_info WHERE key = 'search_index'",
		   err, sizeof(err)) != 0)
		fail_msg("%s", err);
	fx_reopen(f);
	assert_int_equal(count(f, NULL, "tags.team = \"sre\""), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sql_shapes),
		cmocka_unit_test(every_operator),
		cmocka_unit_test(conjuncts_and_drive),
		cmocka_unit_test(errors_name_the_position),
		cmocka_unit_test(limits),
		cmocka_unit_test(sorts),
		cmocka_unit_test_setup_teardown(search_over_a_store, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(backfill_indexes_old_stores, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
