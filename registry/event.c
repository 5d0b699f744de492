/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the append-only event log: history, filters and counts. */
#include <errno.h>
#include <string.h>

#include "reg_i.h"

static json_t *text_or_null(struct db_stmt *s, int col)
{
	const unsigned char *t = db_col_ustr(s, col);

	return t ? json_string((const char *)t) : json_null();
}

/* before/after hold a version name or a JSON document (metadata, policy). */
static json_t *value_column(struct db_stmt *s, int col)
{
	const unsigned char *t = db_col_ustr(s, col);
	json_t *j;

	if (!t)
		return json_null();
	if (t[0] == '{' && (j = json_loads((const char *)t, 0, NULL)))
		return j;
	return json_string((const char *)t);
}

int reg_event_list(struct reg_store *st, const char *model, const struct reg_event_filter *f,
		   json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	json_t *arr = json_array();
	struct db_stmt *s;
	int rc = 0;
	int src;

	if (!arr) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (model) {
		int64_t mid;

		rc = reg_model_id(c, model, &mid);
		if (rc == -ENOENT) {
			/* A deleted model still has its history. */
			rc = 0;
		}
		if (rc < 0)
			goto done;
	}
	if (f && f->desc)
		DB_STMT(c, EVENT_LIST_DESC, s);
	else
		DB_STMT(c, EVENT_LIST, s);
	db_bind_text(s, 1, model);
	db_bind_text(s, 2, f && f->kind && f->kind[0] ? f->kind : NULL);
	db_bind_int64(s, 3, f ? f->since_us : 0);
	db_bind_int64(s, 4, f ? f->until_us : 0);
	db_bind_int64(s, 5, f ? f->after_id : 0);
	db_bind_int64(s, 6, f && f->limit ? (int64_t)f->limit : -1);
	while ((src = db_step(c, s, "reading the event log")) > 0) {
		char ts[CM_TIME_RFC3339_LEN];
		const unsigned char *d = db_col_ustr(s, 10);
		json_t *ev;

		cm_time_format(db_col_int64(s, 1), ts);
		ev = json_object();
		json_object_set_new(ev, "id", json_integer(db_col_int64(s, 0)));
		json_object_set_new(ev, "ts", json_string(ts));
		json_object_set_new(ev, "model", text_or_null(s, 2));
		json_object_set_new(ev, "version", text_or_null(s, 3));
		json_object_set_new(ev, "alias", text_or_null(s, 4));
		json_object_set_new(ev, "kind", text_or_null(s, 5));
		json_object_set_new(ev, "channel", text_or_null(s, 6));
		json_object_set_new(ev, "actor", text_or_null(s, 7));
		json_object_set_new(ev, "before", value_column(s, 8));
		json_object_set_new(ev, "after", value_column(s, 9));
		json_object_set_new(ev, "detail",
				    d ? json_loads((const char *)d, 0, NULL) : json_object());
		if (json_array_append_new(arr, ev) < 0) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	if (rc == 0 && src < 0)
		rc = src;
	db_reset(s);
	if (rc == 0) {
		*out = arr;
		arr = NULL;
	}
done:
	json_decref(arr);
	db_read_end(c);
	return rc;
}

int reg_event_count(struct reg_store *st, int64_t *out)
{
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s;
	int rc = 0;

	DB_STMT(c, EVENT_COUNT, s);
	rc = db_step(c, s, "counting events");
	if (rc > 0) {
		*out = db_col_int64(s, 0);
		rc = 0;
	} else if (rc == 0) {
		rc = cm_err_set(-EIO, "counting events: no row");
	}
	db_reset(s);
done:
	db_read_end(c);
	return rc;
}
