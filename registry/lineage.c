/* SPDX-License-Identifier: Apache-2.0 */
/* Lineage: what a version was made from, and which versions came from a commit or data set. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "reg_i.h"

static const char *const lineage_fields[] = {
	"git_commit", "training_notebook", "training_data", "training_data_hash",
	"hyperparameters", "performance_metrics", "parent_version", "framework", NULL,
};

int reg_lineage_get(struct reg_store *st, const char *model, const char *version, json_t **out)
{
	struct reg_version v;
	json_t *rec = NULL;
	json_t *l;
	int rc;

	rc = reg_version_get(st, model, version, &v);
	if (rc == 0)
		rc = reg_version_metadata_get(st, model, version, &rec);
	if (rc < 0)
		return rc;
	l = json_object();
	json_object_set_new(l, "model", json_string(model));
	json_object_set_new(l, "version", json_string(version));
	json_object_set_new(l, "state", json_string(reg_state_name(v.state)));
	json_object_set_new(l, "digest", v.digest[0] ? json_string(v.digest) : json_null());
	for (size_t i = 0; lineage_fields[i]; i++) {
		json_t *f = json_object_get(rec, lineage_fields[i]);

		json_object_set(l, lineage_fields[i], f ? f : json_null());
	}
	json_object_set(l, "deployed_to", json_object_get(rec, "deployed_to"));
	json_decref(rec);
	*out = l;
	return 0;
}

static int rows_to_json(struct reg_conn *c, struct db_stmt *s, json_t *arr)
{
	int src;

	while ((src = db_step(c, s, "searching lineage")) > 0) {
		json_t *o = json_object();

		for (int i = 0; o && i < 5; i++) {
			static const char *const keys[] = { "model", "version", "git_commit",
							    "training_data_hash", "state" };
			const unsigned char *t = db_col_ustr(s, i);

			if (json_object_set_new(o, keys[i], t ? json_string((const char *)t)
							      : json_null()) < 0) {
				json_decref(o);
				o = NULL;
			}
		}
		if (!o || json_array_append_new(arr, o) < 0) {
			src = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	db_reset(s);
	return src < 0 ? src : 0;
}

int reg_lineage_find(struct reg_store *st, const char *commit_prefix, const char *data_hash,
		     json_t **out)
{
	struct reg_conn *c = NULL;
	char lo[72], hi[72];
	json_t *arr = NULL;
	struct db_stmt *s;
	size_t len;
	int rc = 0;

	if (!!commit_prefix == !!data_hash)
		return cm_err_set(-EINVAL, "give either a git commit prefix or a training data hash");
	if (commit_prefix) {
		len = strlen(commit_prefix);
		if (len < 4 || len > 64)
			return cm_err_set(-EINVAL, "a git commit prefix needs 4 to 64 hex digits");
		for (size_t i = 0; i < len; i++) {
			if (!isxdigit((unsigned char)commit_prefix[i]))
				return cm_err_set(-EINVAL, "'%s' is not a hex git commit prefix",
						  commit_prefix);
			lo[i] = (char)tolower((unsigned char)commit_prefix[i]);
		}
		lo[len] = '\0';
		/* Every string with the prefix sorts in [prefix, prefix + "~"). */
		memcpy(hi, lo, len);
		hi[len] = '~';
		hi[len + 1] = '\0';
	} else if (!data_hash[0] || strlen(data_hash) > 256) {
		return cm_err_set(-EINVAL, "a training data hash must be 1 to 256 characters");
	}
	arr = json_array();
	c = db_read_begin(st);
	if (commit_prefix) {
		DB_STMT(c, LINEAGE_COMMIT, s);
		db_bind_text(s, 1, lo);
		db_bind_text(s, 2, hi);
	} else {
		DB_STMT(c, LINEAGE_HASH, s);
		db_bind_text(s, 1, data_hash);
	}
	rc = rows_to_json(c, s, arr);
	if (rc == 0 && commit_prefix)
		rc = gs_lineage_add(c, lo, hi, arr);
	if (rc == 0) {
		*out = arr;
		arr = NULL;
	}
done:
	db_read_end(c);
	json_decref(arr);
	return rc;
}
