/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Version metadata records: validation, the frozen/mutable split (checked
 * against schema/version-metadata.schema.json), RFC 7386 merge patch and
 * dotted-path lookup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "reg_i.h"

/* A complete record in the ADR's shape. */
static const char full_record[] =
	"{\"model_name\": \"anomaly-detector\","
	" \"version\": \"v3\","
	" \"created_at\": \"2026-11-20T09:30:00Z\","
	" \"training_notebook\": \"notebooks/train_anomaly.ipynb\","
	" \"git_commit\": \"3f9c2ab7e41d0c5b8a6f1e2d3c4b5a69788f7e6d\","
	" \"training_data\": {\"start_date\": \"2026-01-01\", \"end_date\": \"2026-10-31\","
	"                     \"rows\": 1250000},"
	" \"training_data_hash\": \"sha256:9b74c9897bac770ffc029102a200c5de\","
	" \"hyperparameters\": {\"n_estimators\": 200, \"max_depth\": 12, \"contamination\": 0.01},"
	" \"performance_metrics\": {\"accuracy\": 0.94, \"precision\": 0.91, \"recall\": 0.88,"
	"                           \"f1_score\": 0.895},"
	" \"validation_status\": \"passed\","
	" \"deployed_to\": [\"current\"]}";

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);

	if (!j)
		fail_msg("bad JSON in the test (%s): %s", jerr.text, text);
	return j;
}

static void expect_valid(json_t *rec, const char *model, const char *version)
{
	cm_err_clear();
	if (meta_check(rec, model, version) != 0) {
		char *t = json_dumps(rec, JSON_COMPACT);

		fail_msg("refused %s: %s", t, cm_err_msg());
	}
}

static void expect_invalid(json_t *rec, const char *model, const char *version, const char *needle)
{
	int rc;

	cm_err_clear();
	rc = meta_check(rec, model, version);
	if (rc != -EINVAL || !strstr(cm_err_msg(), needle)) {
		char *t = json_dumps(rec, JSON_COMPACT);

		fail_msg("%s: rc %d message '%s', expected -EINVAL naming %s", t, rc, cm_err_msg(),
			 needle);
	}
}

static void full_record_valid(void **state)
{
	json_t *rec = load(full_record);

	(void)state;
	expect_valid(rec, "anomaly-detector", "v3");
	expect_valid(rec, NULL, NULL);
	/* notes may be null; optional fields may all be absent. */
	json_object_set_new(rec, "notes", json_null());
	json_object_set_new(rec, "validation_metrics", json_pack("{sf}", "latency_ms", 12.5));
	json_object_set_new(rec, "production_metrics", json_object());
	json_object_set_new(rec, "parent_version", json_string("v2"));
	json_object_set_new(rec, "framework", json_string("scikit-learn 1.5"));
	expect_valid(rec, "anomaly-detector", "v3");
	json_object_set_new(rec, "notes", json_string("retrained after the October drift"));
	expect_valid(rec, "anomaly-detector", "v3");
	json_decref(rec);

	rec = json_object();
	expect_valid(rec, "m", "v1");
	json_decref(rec);
}

static void not_an_object(void **state)
{
	json_t *j;

	(void)state;
	j = json_array();
	expect_invalid(j, NULL, NULL, "must be a JSON object");
	json_decref(j);
	j = json_string("x");
	expect_invalid(j, NULL, NULL, "must be a JSON object");
	json_decref(j);
	expect_invalid(NULL, NULL, NULL, "must be a JSON object");
}

/* Each top-level field with a value of the wrong type; the message names it. */
static void wrong_types(void **state)
{
	static const struct {
		const char *field;
		const char *bad;
		const char *type;
	} cases[] = {
		{ "model_name", "123", "a string" },
		{ "version", "true", "a string" },
		{ "created_at", "20261120", "a string" },
		{ "training_notebook", "[]", "a string" },
		{ "git_commit", "1234567", "a string" },
		{ "training_data", "\"2026\"", "an object" },
		{ "training_data_hash", "{}", "a string" },
		{ "hyperparameters", "[1, 2]", "an object" },
		{ "performance_metrics", "0.94", "an object" },
		{ "parent_version", "2", "a string" },
		{ "framework", "null", "a string" },
		{ "validation_status", "false", "a string" },
		{ "validation_metrics", "\"ok\"", "an object" },
		{ "production_metrics", "[]", "an object" },
		{ "notes", "42", "a string or null" },
		{ "deployed_to", "\"current\"", "an array" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *rec = load(full_record);
		char want[128];

		json_object_set_new(rec, cases[i].field, load(cases[i].bad));
		snprintf(want, sizeof(want), "'%s' must be %s", cases[i].field, cases[i].type);
		expect_invalid(rec, "anomaly-detector", "v3", want);
		json_decref(rec);
	}
}

static void nested_wrong_types(void **state)
{
	static const struct {
		const char *path; /* object.key */
		const char *bad;
	} cases[] = {
		{ "training_data.start_date", "20260101" },
		{ "training_data.end_date", "{}" },
		{ "training_data.rows", "\"1250000\"" },
		{ "training_data.rows", "-1" },
		{ "training_data.rows", "12.5" },
		{ "performance_metrics.accuracy", "\"high\"" },
		{ "performance_metrics.f1_score", "[0.9]" },
		{ "performance_metrics.auc", "true" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *rec = load(full_record);
		char obj[64];
		const char *dot = strchr(cases[i].path, '.');
		char want[96];

		snprintf(obj, sizeof(obj), "%.*s", (int)(dot - cases[i].path), cases[i].path);
		json_object_set_new(json_object_get(rec, obj), dot + 1, load(cases[i].bad));
		snprintf(want, sizeof(want), "'%s'", cases[i].path);
		expect_invalid(rec, NULL, NULL, want);
		json_decref(rec);
	}
}

static void nested_edge_values(void **state)
{
	json_t *rec = load(full_record);
	json_t *td = json_object_get(rec, "training_data");
	json_t *pm = json_object_get(rec, "performance_metrics");

	(void)state;
	json_object_set_new(td, "rows", json_integer(0));
	expect_valid(rec, NULL, NULL);
	/* Extra training_data keys and extra metrics (numbers, or null) are kept. */
	json_object_set_new(td, "source", json_string("s3://bucket/events"));
	json_object_set_new(pm, "auc", json_real(0.97));
	json_object_set_new(pm, "support", json_integer(5000));
	json_object_set_new(pm, "log_loss", json_null());
	expect_valid(rec, NULL, NULL);
	json_decref(rec);
}

static void names_must_match(void **state)
{
	json_t *rec = load(full_record);

	(void)state;
	expect_invalid(rec, "other-model", "v3", "'model_name' is 'anomaly-detector' but the model "
		       "is 'other-model'");
	expect_invalid(rec, "anomaly-detector", "v4", "'version' is 'v3' but the version is 'v4'");
	/* Absent names are not a mismatch. */
	json_object_del(rec, "model_name");
	json_object_del(rec, "version");
	expect_valid(rec, "other-model", "v4");
	json_decref(rec);
}

static void git_commit_rule(void **state)
{
	static const char *const good[] = {
		"abcd", "ABCDEF12", "3f9c2ab7e41d0c5b8a6f1e2d3c4b5a69788f7e6d",
		"0000000000000000000000000000000000000000000000000000000000000000", /* 64 */
	};
	static const char *const bad[] = {
		"", "abc", "ghij", "3f9c2ab7-e41d", "3f9c 2ab7", "0x3f9c",
		"00000000000000000000000000000000000000000000000000000000000000000", /* 65 */
	};
	json_t *rec = load(full_record);

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_object_set_new(rec, "git_commit", json_string(good[i]));
		expect_valid(rec, NULL, NULL);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object_set_new(rec, "git_commit", json_string(bad[i]));
		expect_invalid(rec, NULL, NULL, "'git_commit'");
	}
	json_decref(rec);
}

static void validation_status_values(void **state)
{
	static const char *const good[] = { "pending", "passed", "failed" };
	static const char *const bad[] = { "", "Passed", "approved", "passed " };
	json_t *rec = load(full_record);

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		json_object_set_new(rec, "validation_status", json_string(good[i]));
		expect_valid(rec, NULL, NULL);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[64];

		json_object_set_new(rec, "validation_status", json_string(bad[i]));
		snprintf(want, sizeof(want), "(got '%s')", bad[i]);
		expect_invalid(rec, NULL, NULL, "'validation_status' must be one of pending, passed, "
			       "failed");
		expect_invalid(rec, NULL, NULL, want);
	}
	json_decref(rec);
}

static void unknown_fields_allowed(void **state)
{
	json_t *rec = load(full_record);

	(void)state;
	json_object_set_new(rec, "owner", json_string("fraud-team"));
	json_object_set_new(rec, "custom", load("{\"nested\": [1, {\"x\": null}], \"n\": 3}"));
	json_object_set_new(rec, "x-anything", json_null());
	expect_valid(rec, "anomaly-detector", "v3");
	json_decref(rec);
}

static void mutable_fields(void **state)
{
	static const char *const open_fields[] = {
		"validation_status", "validation_metrics", "production_metrics", "notes",
		"description", "owner", "tags",
	};
	static const char *const frozen[] = {
		"training_notebook", "git_commit", "training_data", "training_data_hash",
		"hyperparameters", "performance_metrics", "parent_version", "framework",
		"created_at", "trainer", "", "performance_metrics.accuracy", "Notes",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(open_fields) / sizeof(open_fields[0]); i++)
		if (meta_field_mutable(open_fields[i]) != 1)
			fail_msg("'%s' should be mutable", open_fields[i]);
	for (size_t i = 0; i < sizeof(frozen) / sizeof(frozen[0]); i++)
		if (meta_field_mutable(frozen[i]) != 0)
			fail_msg("'%s' should be frozen", frozen[i]);
}

/* ---- the schema document and the code agree ---- */

static json_t *schema_load(void)
{
	static const char rel[] = "schema/version-metadata.schema.json";
	static const char *const guesses[] = { "../../../..", "../../..", "../..", "..", "." };
	const char *root = getenv("MODELFS_SOURCE_ROOT");
	json_error_t jerr;
	char path[4200];
	json_t *j;

	if (root && root[0]) {
		snprintf(path, sizeof(path), "%s/%s", root, rel);
		j = json_load_file(path, 0, &jerr);
		if (!j)
			fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
		return j;
	}
	for (size_t i = 0; i < sizeof(guesses) / sizeof(guesses[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", guesses[i], rel);
		j = json_load_file(path, 0, &jerr);
		if (j)
			return j;
	}
	fail_msg("cannot find %s: set MODELFS_SOURCE_ROOT to the source tree", rel);
	return NULL;
}

static void schema_frozen_fields_agree(void **state)
{
	static const char *const must_be_mutable[] = {
		"validation_status", "validation_metrics", "production_metrics", "notes",
		"description", "owner", "tags",
	};
	json_t *schema = schema_load();
	json_t *props = json_object_get(schema, "properties");
	const char *field;
	json_t *def;
	size_t frozen = 0;

	(void)state;
	assert_true(json_is_object(props));
	json_object_foreach(props, field, def) {
		if (json_is_true(json_object_get(def, "x-modelfs-frozen"))) {
			frozen++;
			if (meta_field_mutable(field))
				fail_msg("schema marks '%s' frozen but meta_field_mutable says mutable",
					 field);
		} else if (json_object_get(def, "x-modelfs-frozen")) {
			fail_msg("'%s': x-modelfs-frozen must be true or absent", field);
		}
		/* Exactly the fields the schema marks mutable can change after sealing. */
		if (strcmp(field, "deployed_to") &&
		    meta_field_mutable(field) != json_is_true(json_object_get(def, "x-modelfs-mutable")))
			fail_msg("'%s': schema x-modelfs-mutable and meta_field_mutable disagree", field);
	}
	/* The ADR's lineage fields are all frozen in the schema. */
	assert_true(frozen >= 6);
	for (size_t i = 0; i < sizeof(must_be_mutable) / sizeof(must_be_mutable[0]); i++) {
		def = json_object_get(props, must_be_mutable[i]);
		if (!def)
			fail_msg("schema lacks '%s'", must_be_mutable[i]);
		assert_null(json_object_get(def, "x-modelfs-frozen"));
		assert_int_equal(meta_field_mutable(must_be_mutable[i]), 1);
	}
	json_decref(schema);
}

/* A JSON value whose type the schema's "type" (string or array) does not allow. */
static json_t *value_not_of(json_t *type)
{
	static const char *const names[] = { "integer", "string", "array", "object", "boolean" };
	static const char *const values[] = { "7", "\"x\"", "[]", "{}", "true" };

	for (size_t i = 0; i < 5; i++) {
		int allowed = 0;
		size_t k;
		json_t *t;

		if (json_is_string(type)) {
			allowed = !strcmp(json_string_value(type), names[i]) ||
				  (!strcmp(json_string_value(type), "number") && i == 0);
		} else {
			json_array_foreach(type, k, t) {
				allowed |= !strcmp(json_string_value(t), names[i]) ||
					   (!strcmp(json_string_value(t), "number") && i == 0);
			}
		}
		if (!allowed)
			return load(values[i]);
	}
	return NULL;
}

/* Every typed top-level field of the schema is type-checked by meta_check. */
static void schema_types_enforced(void **state)
{
	json_t *schema = schema_load();
	json_t *props = json_object_get(schema, "properties");
	const char *field;
	json_t *def;
	size_t n = 0;

	(void)state;
	json_object_foreach(props, field, def) {
		json_t *type = json_object_get(def, "type");
		json_t *rec, *bad;
		char want[96];

		if (!type)
			continue;
		bad = value_not_of(type);
		assert_non_null(bad);
		rec = json_object();
		json_object_set_new(rec, field, bad);
		snprintf(want, sizeof(want), "'%s' must be", field);
		expect_invalid(rec, NULL, NULL, want);
		json_decref(rec);
		n++;
	}
	assert_true(n >= 16);
	/* validation_status: exactly the schema's enum is accepted. */
	{
		json_t *en = json_object_get(json_object_get(props, "validation_status"), "enum");
		size_t i;
		json_t *v;

		assert_int_equal(json_array_size(en), 3);
		json_array_foreach(en, i, v) {
			json_t *rec = json_pack("{sO}", "validation_status", v);

			expect_valid(rec, NULL, NULL);
			json_decref(rec);
		}
	}
	json_decref(schema);
}

/* ---- RFC 7386 merge patch ---- */

/* RFC 7386 Appendix A, the cases whose patch is an object. */
static void merge_patch_rfc7386(void **state)
{
	static const char *const cases[][3] = {
		{ "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
		{ "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}" },
		{ "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
		{ "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}" },
		{ "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
		{ "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
		{ "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
		{ "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}" },
		/* And the RFC's section 3 example. */
		{ "{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
		  "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
		  "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\","
		  "\"author\":{\"familyName\":null},\"tags\":[\"example\"]}",
		  "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
		  "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *target = load(cases[i][0]);
		json_t *patch = load(cases[i][1]);
		json_t *want = load(cases[i][2]);
		json_t *before = json_deep_copy(target);
		json_t *out = NULL;

		if (meta_merge_patch(target, patch, &out) != 0)
			fail_msg("case %zu: %s", i, cm_err_msg());
		if (!json_equal(out, want)) {
			char *got = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);

			fail_msg("case %zu: %s + %s gave %s, expected %s", i, cases[i][0],
				 cases[i][1], got, cases[i][2]);
		}
		/* The target is copied, never changed. */
		assert_true(json_equal(target, before));
		assert_ptr_not_equal(out, target);
		json_decref(target);
		json_decref(patch);
		json_decref(want);
		json_decref(before);
		json_decref(out);
	}
}

/* RFC 7386 Appendix A, the cases whose patch is not an object: a metadata patch must be one. */
static void merge_patch_needs_object(void **state)
{
	static const char *const cases[][2] = {
		{ "[\"a\",\"b\"]", "[\"c\",\"d\"]" },
		{ "{\"a\":\"b\"}", "[\"c\"]" },
		{ "{\"a\":\"foo\"}", "null" },
		{ "{\"a\":\"foo\"}", "\"bar\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *target = load(cases[i][0]);
		json_t *patch = load(cases[i][1]);
		json_t *out = (json_t *)0x1;

		cm_err_clear();
		assert_int_equal(meta_merge_patch(target, patch, &out), -EINVAL);
		assert_non_null(strstr(cm_err_msg(), "must be a JSON object"));
		assert_ptr_equal(out, (json_t *)0x1);
		json_decref(target);
		json_decref(patch);
	}
}

/* A patch applied to a real record: frozen fields kept, nested metrics merged. */
static void merge_patch_record(void **state)
{
	json_t *rec = load(full_record);
	json_t *patch = load("{\"validation_status\":\"failed\",\"notes\":\"drift\","
			     "\"performance_metrics\":{\"recall\":null,\"auc\":0.9},"
			     "\"deployed_to\":null}");
	json_t *out = NULL;

	(void)state;
	assert_int_equal(meta_merge_patch(rec, patch, &out), 0);
	assert_string_equal(json_string_value(json_object_get(out, "validation_status")), "failed");
	assert_string_equal(json_string_value(json_object_get(out, "notes")), "drift");
	assert_null(json_object_get(out, "deployed_to"));
	assert_null(meta_path_get(out, "performance_metrics.recall"));
	assert_true(json_number_value(meta_path_get(out, "performance_metrics.auc")) == 0.9);
	assert_true(json_number_value(meta_path_get(out, "performance_metrics.accuracy")) == 0.94);
	assert_true(json_equal(json_object_get(out, "training_data"),
			       json_object_get(rec, "training_data")));
	expect_valid(out, "anomaly-detector", "v3");
	json_decref(out);
	json_decref(patch);
	json_decref(rec);
}

static void path_lookup(void **state)
{
	json_t *rec = load(full_record);
	json_t *deep = load("{\"a\":{\"b\":{\"c\":5}}}");

	(void)state;
	assert_true(json_number_value(meta_path_get(rec, "performance_metrics.accuracy")) == 0.94);
	assert_int_equal(json_integer_value(meta_path_get(rec, "training_data.rows")), 1250000);
	assert_string_equal(json_string_value(meta_path_get(rec, "training_data.start_date")),
			    "2026-01-01");
	assert_string_equal(json_string_value(meta_path_get(rec, "git_commit")),
			    "3f9c2ab7e41d0c5b8a6f1e2d3c4b5a69788f7e6d");
	assert_ptr_equal(meta_path_get(rec, "training_data"), json_object_get(rec, "training_data"));
	assert_int_equal(json_integer_value(meta_path_get(deep, "a.b.c")), 5);
	assert_null(meta_path_get(rec, "performance_metrics.auc"));
	assert_null(meta_path_get(rec, "nope"));
	assert_null(meta_path_get(rec, "nope.deeper"));
	/* Through a non-object: no value, not a crash. */
	assert_null(meta_path_get(rec, "git_commit.x"));
	assert_null(meta_path_get(rec, "deployed_to.0"));
	assert_null(meta_path_get(deep, "a.b.c.d"));
	assert_null(meta_path_get(NULL, "a"));
	json_decref(deep);
	json_decref(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_record_valid),
		cmocka_unit_test(not_an_object),
		cmocka_unit_test(wrong_types),
		cmocka_unit_test(nested_wrong_types),
		cmocka_unit_test(nested_edge_values),
		cmocka_unit_test(names_must_match),
		cmocka_unit_test(git_commit_rule),
		cmocka_unit_test(validation_status_values),
		cmocka_unit_test(unknown_fields_allowed),
		cmocka_unit_test(mutable_fields),
		cmocka_unit_test(schema_frozen_fields_agree),
		cmocka_unit_test(schema_types_enforced),
		cmocka_unit_test(merge_patch_rfc7386),
		cmocka_unit_test(merge_patch_needs_object),
		cmocka_unit_test(merge_patch_record),
		cmocka_unit_test(path_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
