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

extern const char *const reg_metadata_schema[];

/*
 * Whether `path` names a metric the metadata schema knows: "<section>.<name>"
 * with section a property of the schema ending in "_metrics"; when the
 * schema lists the section's metrics, name must be one of them, otherwise
 * any metric name. A misspelt path would never match and the gate would
 * silently fail every version, or be skipped.
 */
static int metric_path_check(const char *path)
{
	json_t *schema = json_loads(reg_metadata_schema[0], 0, NULL);
	json_t *props, *section, *names;
	const char *dot = strchr(path, '.');
	char sec[REG_NAME_MAX];
	int rc = 0;

	if (!schema)
		return cm_err_set(-EIO, "the embedded metadata schema does not parse");
	props = json_object_get(schema, "properties");
	if (!dot || (size_t)(dot - path) >= sizeof(sec)) {
		rc = -EINVAL;
		goto done;
	}
	memcpy(sec, path, (size_t)(dot - path));
	sec[dot - path] = '\0';
	section = json_object_get(props, sec);
	if (!section || strlen(sec) < 8 || strcmp(sec + strlen(sec) - 8, "_metrics")) {
		rc = -EINVAL;
		goto done;
	}
	names = json_object_get(section, "properties");
	if (names ? !json_object_get(names, dot + 1) : reg_metric_name_check(dot + 1) < 0)
		rc = -EINVAL;
done:
	if (rc == -EINVAL) {
		struct cm_buf b = { 0 };
		const char *key, *k;
		json_t *v, *n;

		json_object_foreach(props, key, v) {
			if (strlen(key) < 8 || strcmp(key + strlen(key) - 8, "_metrics"))
				continue;
			names = json_object_get(v, "properties");
			if (!names) {
				cm_buf_printf(&b, "%s%s.<name>", b.len ? ", " : "", key);
				continue;
			}
			json_object_foreach(names, k, n)
				cm_buf_printf(&b, "%s%s.%s", b.len ? ", " : "", key, k);
		}
		rc = cm_err_set(-EINVAL, "policy metric '%s' is not a metric of the metadata schema "
				"(known: %s)", path, b.data ? b.data : "");
		cm_buf_free(&b);
	}
	json_decref(schema);
	return rc;
}

static const char *const policy_keys[] = {
	"validation_status", "metrics", "max_total_size", "required_fields", "retention", NULL,
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
					  "metrics, max_total_size, required_fields, retention)", key);
	}
	v = json_object_get(policy, "retention");
	if (v) {
		int rc = reg_retention_check(v);

		if (rc < 0)
			return rc;
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
		json_object_foreach(v, key, bounds) {
			int rc = metric_path_check(key);

			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int reg_policy_merge(json_t *policy, json_t *changes, json_t **out)
{
	json_t *p = json_deep_copy(policy);
	const char *key;
	json_t *v;

	if (!p)
		return cm_err_set(-ENOMEM, "out of memory");
	if (!json_is_object(changes)) {
		json_decref(p);
		return cm_err_set(-EINVAL, "a policy change must be a JSON object");
	}
	json_object_foreach(changes, key, v) {
		if (!strcmp(key, "metrics") && json_is_object(v)) {
			json_t *m = json_object_get(p, "metrics");
			const char *path;
			json_t *b;

			if (!json_is_object(m)) {
				m = json_object();
				json_object_set_new(p, "metrics", m);
			}
			json_object_foreach(v, path, b) {
				if (json_is_null(b))
					json_object_del(m, path);
				else
					json_object_set(m, path, b);
			}
			if (!json_object_size(m))
				json_object_del(p, "metrics");
		} else if (json_is_null(v)) {
			json_object_del(p, key);
		} else {
			json_object_set(p, key, v);
		}
	}
	*out = p;
	return 0;
}

static int loose(json_t *loosened, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int loose(json_t *loosened, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (loosened)
		json_array_append_new(loosened, json_string(buf));
	return 1;
}

int reg_policy_loosened(json_t *old, json_t *new, json_t *loosened)
{
	json_t *o, *n;
	size_t i;
	int count = 0;

	o = json_object_get(old, "validation_status");
	n = json_object_get(new, "validation_status");
	if (json_is_string(o) && !json_equal(o, n))
		count += loose(loosened, "validation_status == \"%s\" %s", json_string_value(o),
			       json_is_string(n) ? "changed" : "removed");
	o = json_object_get(old, "max_total_size");
	n = json_object_get(new, "max_total_size");
	if (json_is_integer(o) && (!json_is_integer(n) || json_integer_value(n) > json_integer_value(o)))
		count += loose(loosened, "total_size <= %lld %s", (long long)json_integer_value(o),
			       json_is_integer(n) ? "raised" : "removed");
	o = json_object_get(old, "required_fields");
	n = json_object_get(new, "required_fields");
	if (json_is_array(o)) {
		json_t *f, *g;

		json_array_foreach(o, i, f) {
			int kept = 0;
			size_t j;

			if (json_is_array(n))
				json_array_foreach(n, j, g)
					kept |= json_equal(f, g);
			if (!kept)
				count += loose(loosened, "required %s removed", json_string_value(f));
		}
	}
	o = json_object_get(old, "metrics");
	n = json_object_get(new, "metrics");
	if (json_is_object(o)) {
		const char *path;
		json_t *ob;

		json_object_foreach(o, path, ob) {
			json_t *nb = json_object_get(n, path);
			json_t *omin = json_object_get(ob, "min"), *omax = json_object_get(ob, "max");
			json_t *nmin = json_object_get(nb, "min"), *nmax = json_object_get(nb, "max");

			if (omin && (!nmin || json_number_value(nmin) < json_number_value(omin)))
				count += loose(loosened, "%s >= %g %s", path, json_number_value(omin),
					       nmin ? "lowered" : "removed");
			if (omax && (!nmax || json_number_value(nmax) > json_number_value(omax)))
				count += loose(loosened, "%s <= %g %s", path, json_number_value(omax),
					       nmax ? "raised" : "removed");
		}
	}
	return count;
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
