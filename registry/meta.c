/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Version metadata records: validation against
 * schema/version-metadata.schema.json, which fields may change once a version
 * is sealed, and JSON merge patch (RFC 7386). The checks here and the schema
 * document are kept in step by tests/unit/registry/test_meta.c.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "reg_i.h"

/* Fields that later steps fill in; every other field is frozen at seal. */
static const char *const mutable_fields[] = {
	"validation_status", "validation_metrics", "production_metrics", "notes", "deployed_to",
	"description", "owner", "tags", NULL,
};

static const char *const validation_states[] = { "pending", "passed", "failed", NULL };

int meta_field_mutable(const char *field)
{
	for (size_t i = 0; mutable_fields[i]; i++)
		if (!strcmp(field, mutable_fields[i]))
			return 1;
	return 0;
}

enum jtype { J_STRING, J_OBJECT, J_ARRAY, J_STRING_OR_NULL };

static const struct {
	const char *field;
	enum jtype type;
} field_types[] = {
	{ "model_name", J_STRING },
	{ "version", J_STRING },
	{ "created_at", J_STRING },
	{ "training_notebook", J_STRING },
	{ "git_commit", J_STRING },
	{ "training_data", J_OBJECT },
	{ "training_data_hash", J_STRING },
	{ "hyperparameters", J_OBJECT },
	{ "performance_metrics", J_OBJECT },
	{ "parent_version", J_STRING },
	{ "framework", J_STRING },
	{ "validation_status", J_STRING },
	{ "validation_metrics", J_OBJECT },
	{ "production_metrics", J_OBJECT },
	{ "notes", J_STRING_OR_NULL },
	{ "deployed_to", J_ARRAY },
};

static const char *type_word(enum jtype t)
{
	switch (t) {
	case J_STRING:
		return "a string";
	case J_OBJECT:
		return "an object";
	case J_ARRAY:
		return "an array";
	case J_STRING_OR_NULL:
		return "a string or null";
	}
	return "?";
}

static int type_ok(json_t *v, enum jtype t)
{
	switch (t) {
	case J_STRING:
		return json_is_string(v);
	case J_OBJECT:
		return json_is_object(v);
	case J_ARRAY:
		return json_is_array(v);
	case J_STRING_OR_NULL:
		return json_is_string(v) || json_is_null(v);
	}
	return 0;
}

int meta_check(json_t *record, const char *model, const char *version)
{
	json_t *v;

	if (!json_is_object(record))
		return cm_err_set(-EINVAL, "metadata must be a JSON object");
	for (size_t i = 0; i < sizeof(field_types) / sizeof(field_types[0]); i++) {
		v = json_object_get(record, field_types[i].field);
		if (v && !type_ok(v, field_types[i].type))
			return cm_err_set(-EINVAL, "metadata field '%s' must be %s", field_types[i].field,
					  type_word(field_types[i].type));
	}
	v = json_object_get(record, "model_name");
	if (v && model && strcmp(json_string_value(v), model))
		return cm_err_set(-EINVAL, "metadata field 'model_name' is '%s' but the model is '%s'",
				  json_string_value(v), model);
	v = json_object_get(record, "version");
	if (v && version && strcmp(json_string_value(v), version))
		return cm_err_set(-EINVAL, "metadata field 'version' is '%s' but the version is '%s'",
				  json_string_value(v), version);
	v = json_object_get(record, "git_commit");
	if (v) {
		const char *s = json_string_value(v);
		size_t len = strlen(s);

		if (len < 4 || len > 64)
			return cm_err_set(-EINVAL, "metadata field 'git_commit' must be 4 to 64 hex digits");
		for (size_t i = 0; i < len; i++)
			if (!isxdigit((unsigned char)s[i]))
				return cm_err_set(-EINVAL, "metadata field 'git_commit' ('%s') must be hex "
						  "digits", s);
	}
	v = json_object_get(record, "training_data");
	if (v) {
		json_t *rows = json_object_get(v, "rows");
		const char *k[] = { "start_date", "end_date" };

		if (rows && (!json_is_integer(rows) || json_integer_value(rows) < 0))
			return cm_err_set(-EINVAL, "metadata field 'training_data.rows' must be a "
					  "non-negative integer");
		for (int i = 0; i < 2; i++) {
			json_t *d = json_object_get(v, k[i]);

			if (d && !json_is_string(d))
				return cm_err_set(-EINVAL, "metadata field 'training_data.%s' must be a "
						  "string", k[i]);
		}
	}
	v = json_object_get(record, "performance_metrics");
	if (v) {
		const char *key;
		json_t *m;

		json_object_foreach(v, key, m) {
			if (!json_is_number(m) && !json_is_null(m))
				return cm_err_set(-EINVAL, "metadata field 'performance_metrics.%s' must be "
						  "a number", key);
		}
	}
	{
		int rc = srch_about_check(json_object_get(record, "description"),
					  json_object_get(record, "owner"),
					  json_object_get(record, "tags"), 0);

		if (rc < 0)
			return cm_err_wrap(rc, "metadata");
	}
	v = json_object_get(record, "validation_status");
	if (v) {
		int ok = 0;

		for (size_t i = 0; validation_states[i]; i++)
			ok |= !strcmp(json_string_value(v), validation_states[i]);
		if (!ok)
			return cm_err_set(-EINVAL, "metadata field 'validation_status' must be one of "
					  "pending, passed, failed (got '%s')", json_string_value(v));
	}
	return 0;
}

static json_t *merge(json_t *target, json_t *patch)
{
	const char *key;
	json_t *value;
	json_t *out;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	if (!out)
		return NULL;
	json_object_foreach(patch, key, value) {
		if (json_is_null(value)) {
			json_object_del(out, key);
		} else {
			json_t *m = merge(json_object_get(out, key), value);

			if (!m || json_object_set_new(out, key, m) < 0) {
				json_decref(out);
				return NULL;
			}
		}
	}
	return out;
}

int meta_merge_patch(json_t *target, json_t *patch, json_t **out)
{
	json_t *r;

	if (!json_is_object(patch))
		return cm_err_set(-EINVAL, "a metadata patch must be a JSON object");
	r = merge(target, patch);
	if (!r)
		return cm_err_set(-ENOMEM, "out of memory applying a patch");
	*out = r;
	return 0;
}

json_t *meta_path_get(json_t *record, const char *path)
{
	char key[256];
	json_t *cur = record;
	const char *p = path;

	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n >= sizeof(key) || !json_is_object(cur))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		cur = json_object_get(cur, key);
		if (!dot)
			break;
		p = dot + 1;
	}
	return cur;
}
