/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Promotion policy: the gates a version must pass before `current` or
 * `canary` may point at it. A policy is a small JSON document (see reg.h);
 * each failed gate is reported by a name an operator can read back in the
 * policy: `validation_status == "passed"`, `performance_metrics.accuracy >=
 * 0.85`, `total_size <= 104857600`, `required git_commit`.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reg_i.h"

static const char *const policy_keys[] = {
	"validation_status", "metrics", "max_total_size", "required_fields", NULL,
};

int reg_policy_check(json_t *policy)
{
	const char *key;
	json_t *v;

	if (!json_is_object(policy))
		return cm_err_set(-EINVAL, "a policy must be a JSON object");
	json_object_foreach(policy, key, v) {
		int known = 0;

		for (size_t i = 0; policy_keys[i]; i++)
			known |= !strcmp(key, policy_keys[i]);
		if (!known)
			return cm_err_set(-EINVAL, "unknown policy field '%s' (known: validation_status, "
					  "metrics, max_total_size, required_fields)", key);
	}
	v = json_object_get(policy, "validation_status");
	if (v && !json_is_null(v) &&
	    (!json_is_string(v) || (strcmp(json_string_value(v), "passed") &&
				    strcmp(json_string_value(v), "pending") &&
				    strcmp(json_string_value(v), "failed"))))
		return cm_err_set(-EINVAL, "policy field 'validation_status' must be one of passed, "
				  "pending, failed, or null");
	v = json_object_get(policy, "max_total_size");
	if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 0))
		return cm_err_set(-EINVAL, "policy field 'max_total_size' must be a non-negative "
				  "integer (bytes)");
	v = json_object_get(policy, "required_fields");
	if (v) {
		size_t i;
		json_t *f;

		if (!json_is_array(v))
			return cm_err_set(-EINVAL, "policy field 'required_fields' must be an array of "
					  "strings");
		json_array_foreach(v, i, f) {
			if (!json_is_string(f) || !json_string_length(f))
				return cm_err_set(-EINVAL, "policy field 'required_fields' must hold "
						  "non-empty strings");
		}
	}
	v = json_object_get(policy, "metrics");
	if (v) {
		json_t *bounds;

		if (!json_is_object(v))
			return cm_err_set(-EINVAL, "policy field 'metrics' must be an object");
		json_object_foreach(v, key, bounds) {
			const char *b;
			json_t *n;

			if (!json_is_object(bounds) || !json_object_size(bounds))
				return cm_err_set(-EINVAL, "policy metric '%s' must be an object with "
						  "'min' and/or 'max'", key);
			json_object_foreach(bounds, b, n) {
				if (strcmp(b, "min") && strcmp(b, "max"))
					return cm_err_set(-EINVAL, "policy metric '%s' has unknown bound "
							  "'%s' (use min or max)", key, b);
				if (!json_is_number(n))
					return cm_err_set(-EINVAL, "policy metric '%s' bound '%s' must be "
							  "a number", key, b);
			}
		}
	}
	return 0;
}

static int fail(json_t *failed, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(json_t *failed, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (failed)
		json_array_append_new(failed, json_string(buf));
	return 1;
}

int reg_policy_eval(json_t *policy, json_t *record, int64_t total_size, json_t *failed)
{
	int n = 0;
	json_t *v;

	v = json_object_get(policy, "validation_status");
	if (json_is_string(v)) {
		json_t *have = json_object_get(record, "validation_status");

		if (!json_is_string(have) || strcmp(json_string_value(have), json_string_value(v)))
			n += fail(failed, "validation_status == \"%s\" (is %s%s%s)", json_string_value(v),
				  json_is_string(have) ? "\"" : "",
				  json_is_string(have) ? json_string_value(have) : "unset",
				  json_is_string(have) ? "\"" : "");
	}
	v = json_object_get(policy, "metrics");
	if (json_is_object(v)) {
		const char *path;
		json_t *bounds;

		json_object_foreach(v, path, bounds) {
			json_t *have = meta_path_get(record, path);
			json_t *min = json_object_get(bounds, "min");
			json_t *max = json_object_get(bounds, "max");
			double x = json_is_number(have) ? json_number_value(have) : 0;

			if (min && (!json_is_number(have) || x < json_number_value(min))) {
				if (json_is_number(have))
					n += fail(failed, "%s >= %g (is %g)", path, json_number_value(min), x);
				else
					n += fail(failed, "%s >= %g (is unset)", path, json_number_value(min));
			}
			if (max && (!json_is_number(have) || x > json_number_value(max))) {
				if (json_is_number(have))
					n += fail(failed, "%s <= %g (is %g)", path, json_number_value(max), x);
				else
					n += fail(failed, "%s <= %g (is unset)", path, json_number_value(max));
			}
		}
	}
	v = json_object_get(policy, "max_total_size");
	if (json_is_integer(v) && total_size > json_integer_value(v))
		n += fail(failed, "total_size <= %lld (is %lld)", (long long)json_integer_value(v),
			  (long long)total_size);
	v = json_object_get(policy, "required_fields");
	if (json_is_array(v)) {
		size_t i;
		json_t *f;

		json_array_foreach(v, i, f) {
			json_t *have = meta_path_get(record, json_string_value(f));

			if (!have || json_is_null(have) || (json_is_string(have) && !json_string_length(have)))
				n += fail(failed, "required %s", json_string_value(f));
		}
	}
	return n;
}
