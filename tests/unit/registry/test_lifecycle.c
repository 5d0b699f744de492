/* SPDX-License-Identifier: Apache-2.0 */
/* registry/lifecycle.c: archive, delete of versions and models, holds, retention and gc. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

#define DAY_US (86400LL * 1000000LL)

static const gid_t no_groups[1];
static const struct reg_actor uid_user = { .channel = "fs", .name = "uid=1000", .kind =
						   REG_ACTOR_UID, .uid = 1000, .gid = 1000,
					   .groups = no_groups };
static const struct reg_actor root_user = { .channel = "fs", .name = "uid=0", .kind =
						    REG_ACTOR_UID, .uid = 0, .gid = 0,
					    .groups = no_groups };
static const struct reg_actor writer = { .channel = "api", .name = "pipeline", .kind =
						 REG_ACTOR_TOKEN, .role = REG_ROLE_WRITER };
static const struct reg_actor admin = { .channel = "api", .name = "release", .kind =
						REG_ACTOR_TOKEN, .role = REG_ROLE_ADMIN };

static void sealed(struct fx *f, const char *m, const char *v)
{
	fx_version(f, m, v, "model.pkl", v, NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, m, v, NULL), 0);
}

static int exists(struct fx *f, const char *rel)
{
	char p[8192];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
	return lstat(p, &sb) == 0;
}

/* The names a listing gives, space-separated. */
static const char *names(struct fx *f, const char *m, enum reg_archived_filter a)
{
	static char out[512];
	struct reg_version_filter flt = { .state = -1, .archived = a };
	struct reg_version *v = NULL;
	size_t n = 0;

	assert_int_equal(reg_version_list(f->st, m, &flt, &v, &n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? " " : "",
			 v[i].name);
	free(v);
	return out;
}

/* Kinds and versions of the model's events of `prefix`, "kind:version ...". */
static const char *events(struct fx *f, const char *m, const char *prefix)
{
	static char out[1024];
	struct reg_event_filter flt = { .kind = prefix };
	json_t *ev = NULL, *e;
	size_t i;

	assert_int_equal(reg_event_list(f->st, m, &flt, &ev), 0);
	out[0] = '\0';
	json_array_foreach(ev, i, e)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s:%s", i ? " " : "",
			 json_string_value(json_object_get(e, "kind")),
			 json_is_string(json_object_get(e, "version"))
				 ? json_string_value(json_object_get(e, "version"))
				 : "-");
	json_decref(ev);
	return out;
}

static void archive_rules(void **state)
{
	struct fx *f = *state;
	struct reg_version v;
	json_t *ev = NULL;
	struct reg_event_filter flt = { .kind = "version.archive" };

	sealed(f, "m", "v1");
	sealed(f, "m", "v2");
	fx_version(f, "m", "d3", "a", "1", NULL);
	assert_int_equal(reg_version_archive(f->st, &writer, "m", "d3", NULL), -EINVAL);
	assert_int_equal(reg_version_archive(f->st, &writer, "m", "v1", "superseded"), 0);
	assert_int_equal(reg_version_get(f->st, "m", "v1", &v), 0);
	assert_int_equal(v.state, REG_ARCHIVED);
	assert_string_equal(names(f, "m", REG_ARCHIVED_HIDE), "v2 d3");
	assert_string_equal(names(f, "m", REG_ARCHIVED_ONLY), "v1");
	assert_string_equal(names(f, "m", REG_ARCHIVED_INCLUDE), "v1 v2 d3");
	/* Idempotent: no second event. */
	assert_int_equal(reg_version_archive(f->st, &writer, "m", "v1", NULL), 0);
	assert_string_equal(events(f, "m", "version.archive"), "version.archive:v1");
	assert_int_equal(reg_event_list(f->st, "m", &flt, &ev), 0);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(ev, 0), "detail"), "reason")),
			    "superseded");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "actor")),
			    "pipeline");
	json_decref(ev);
	/* Archived: never an alias target. Aliased: never archived. */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v1", NULL, NULL),
			 -ENOLINK);
	assert_non_null(strstr(cm_err_msg(), "archived"));
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v2", NULL, NULL), 0);
	assert_int_equal(reg_version_archive(f->st, &writer, "m", "v2", NULL), -EMLINK);
	assert_non_null(strstr(cm_err_msg(), "alias 'staging'"));
	/* Still readable by path. */
	assert_string_equal(fx_read(f->dir, "m/v1/model.pkl"), "v1");
	assert_int_equal(reg_version_unarchive(f->st, &writer, "m", "v1", NULL), 0);
	assert_int_equal(reg_version_unarchive(f->st, &writer, "m", "v1", NULL), 0);
	assert_string_equal(events(f, "m", "version.unarchive"), "version.unarchive:v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "champion", "v1", NULL, NULL), 0);
	assert_int_equal(fx_fsck(f), 0);
}

static void delete_rules(void **state)
{
	struct fx *f = *state;
	json_t *tags = NULL;

	sealed(f, "m", "v1");
	sealed(f, "m", "v2");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v2", NULL, NULL), 0);
	/* A sealed version needs a reason (the mount has none) and an admin. */
	assert_int_equal(reg_version_delete(f->st, &root_user, "m", "v1"), -EROFS);
	assert_int_equal(reg_version_remove(f->st, &admin, "m", "v1", "", NULL), -EROFS);
	assert_int_equal(reg_version_remove(f->st, &writer, "m", "v1", "r", NULL), -EACCES);
	assert_int_equal(reg_version_remove(f->st, &uid_user, "m", "v1", "r", NULL), -EACCES);
	assert_int_equal(reg_version_remove(f->st, &admin, "m", "v2", "r", NULL), -EMLINK);
	assert_true(exists(f, "m/v1/model.pkl"));
	assert_int_equal(reg_version_remove(f->st, &admin, "m", "v1", "leaked data", &tags), 0);
	assert_int_equal(json_array_size(tags), 0);
	json_decref(tags);
	assert_false(exists(f, "m/v1"));
	assert_false(exists(f, ".modelfs/deleted/m@v1@1"));
	assert_int_equal(reg_version_remove(f->st, &admin, "m", "v1", "r", NULL), -ENOENT);
	/* Root through the mount is an admin too, with a reason. */
	assert_int_equal(reg_alias_delete(f->st, &fx_actor, "m", "staging", NULL), 0);
	assert_int_equal(reg_version_remove(f->st, &root_user, "m", "v2", "r", NULL), 0);
	assert_string_equal(events(f, "m", "version.delete"), "version.delete:v1 version.delete:v2");
	assert_int_equal(fx_fsck(f), 0);
	/* After a reopen nothing comes back. */
	fx_reopen(f);
	assert_string_equal(names(f, "m", REG_ARCHIVED_INCLUDE), "");
}

static void hold_blocks_delete(void **state)
{
	struct fx *f = *state;
	int64_t h1 = 0, h2 = 0;

	sealed(f, "m", "v1");
	assert_int_equal(reg_version_hold(f->st, "m", "v1", &h1), 0);
	assert_int_equal(reg_version_hold(f->st, "m", "v1", &h2), 0);
	assert_int_equal(reg_version_remove(f->st, &admin, "m", "v1", "r", NULL), -EBUSY);
	assert_non_null(strstr(cm_err_msg(), "2 file(s) open through the mount"));
	reg_version_unhold(f->st, h1);
	assert_int_equal(reg_model_remove(f->st, &admin, "m", "r", NULL), -EBUSY);
	reg_version_unhold(f->st, h2);
	reg_version_unhold(f->st, h2); /* one too many: ignored */
	assert_int_equal(reg_version_remove(f->st, &admin, "m", "v1", "r", NULL), 0);
	assert_int_equal(reg_version_hold(f->st, "m", "v1", &h1), -ENOENT);
}

static struct fx *hook_fx;
static int hook_hold_rc = 1, hook_write_rc = 1, hook_holdid_rc = 1;
static int64_t hook_vid;

/* At "delete.moved" (the transaction open), nobody may take the version up again. */
static void hook_try(const char *point)
{
	int64_t id = 0;

	if (strcmp(point, "delete.moved"))
		return;
	hook_hold_rc = reg_version_hold(hook_fx->st, "m", "d1", &id);
	hook_holdid_rc = reg_version_hold_id(hook_fx->st, hook_vid);
	hook_write_rc = reg_write_begin(hook_fx->st, "m", "d1", &id);
}

static void no_hold_during_delete(void **state)
{
	struct fx *f = *state;
	struct reg_version v;
	int64_t id = 0;

	fx_version(f, "m", "d1", "a", "1", NULL);
	assert_int_equal(reg_version_get(f->st, "m", "d1", &v), 0);
	hook_vid = v.id;
	hook_fx = f;
	reg_delete_test_hook = hook_try;
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "m", "d1"), 0);
	reg_delete_test_hook = NULL;
	assert_int_equal(hook_hold_rc, -ENOENT);
	assert_int_equal(hook_holdid_rc, -ENOENT);
	assert_int_equal(hook_write_rc, -EBUSY);
	/* A refused delete leaves no mark behind. */
	fx_version(f, "m", "d2", "a", "1", NULL);
	assert_int_equal(reg_version_hold(f->st, "m", "d2", &id), 0);
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "m", "d2"), -EBUSY);
	reg_version_unhold(f->st, id);
	assert_int_equal(reg_version_hold(f->st, "m", "d2", &id), 0);
	reg_version_unhold(f->st, id);
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "m", "d2"), 0);
}

static void model_remove(void **state)
{
	struct fx *f = *state;
	json_t *out = NULL;

	sealed(f, "m", "v1");
	sealed(f, "m", "v2");
	fx_version(f, "m", "d3", "a", "1", NULL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v2", NULL, NULL), 0);
	assert_int_equal(reg_model_remove(f->st, &admin, "m", NULL, NULL), -EINVAL);
	assert_int_equal(reg_model_remove(f->st, &writer, "m", "r", NULL), -EACCES);
	assert_int_equal(reg_model_remove(f->st, &admin, "m", "r", NULL), -EMLINK);
	assert_non_null(strstr(cm_err_msg(), "alias 'staging'"));
	assert_int_equal(reg_alias_delete(f->st, &fx_actor, "m", "staging", NULL), 0);
	assert_int_equal(reg_model_remove(f->st, &admin, "m", "retired", &out), 0);
	assert_string_equal(json_string_value(json_object_get(out, "model")), "m");
	assert_int_equal(json_array_size(json_object_get(out, "versions")), 3);
	json_decref(out);
	assert_false(exists(f, "m"));
	assert_int_equal(reg_model_get(f->st, "m", &(struct reg_model){ 0 }), -ENOENT);
	assert_string_equal(events(f, "m", "version.delete"),
			    "version.delete:v1 version.delete:v2 version.delete:d3");
	assert_string_equal(events(f, "m", "model."), "model.create:- model.delete:-");
	assert_int_equal(fx_fsck(f), 0);
	/* The name can be taken again. */
	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
}

static void retention_check(void **state)
{
	static const char *const bad[] = {
		"[]", "{}", "{\"keep_last\": -1}", "{\"keep_last\": 1.5}", "{\"keep_last\": \"2\"}",
		"{\"keep_last\": 1, \"keep_aliased_days\": -1}",
		"{\"keep_last\": 1, \"min_age_days\": \"x\"}", "{\"keep_last\": 1, \"x\": 1}",
	};
	json_t *p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = json_loads(bad[i], 0, NULL);
		assert_int_equal(reg_retention_check(p), -EINVAL);
		json_decref(p);
	}
	p = json_loads("{\"keep_last\": 0, \"keep_aliased_days\": 0.5, \"min_age_days\": 2}", 0,
		       NULL);
	assert_int_equal(reg_retention_check(p), 0);
	json_decref(p);
	p = json_loads("{\"retention\": {\"keep_last\": 3}}", 0, NULL);
	assert_int_equal(reg_policy_check(p), 0);
	json_decref(p);
	p = json_loads("{\"retention\": {\"keep_lats\": 3}}", 0, NULL);
	assert_int_equal(reg_policy_check(p), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "keep_lats"));
	json_decref(p);
}

/* "version:why" of a gc answer's list, one per line. */
static const char *gc_list(json_t *res, const char *key)
{
	static char out[2048];
	json_t *e;
	size_t i;

	out[0] = '\0';
	json_array_foreach(json_object_get(res, key), i, e)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s:%s\n",
			 json_string_value(json_object_get(e, "version")),
			 json_string_value(json_object_get(e, "why")));
	return out;
}

static void gc_rules(void **state)
{
	struct fx *f = *state;
	struct reg_gc_opts o = { .dry_run = 1 };
	json_t *res = NULL, *pol;
	int64_t hold = 0;

	for (int i = 1; i <= 6; i++) {
		char v[8];

		snprintf(v, sizeof(v), "v%d", i);
		sealed(f, "m", v);
	}
	fx_version(f, "m", "d7", "a", "1", NULL);
	sealed(f, "other", "v1"); /* no retention: never touched */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v2", NULL, NULL), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v3", NULL, NULL), 0);
	assert_int_equal(reg_version_hold(f->st, "m", "v4", &hold), 0);
	pol = json_loads("{\"retention\": {\"keep_last\": 1, \"keep_aliased_days\": 1}}", 0, NULL);
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "m", pol, NULL), 0);
	json_decref(pol);
	assert_int_equal(reg_gc_run(f->st, &writer, &o, &res), 0); /* a dry run needs no admin */
	assert_string_equal(gc_list(res, "removed"),
			    "v5:not one of the last 1 sealed versions and not aliased within the "
			    "last 1 days\n"
			    "v1:not one of the last 1 sealed versions and not aliased within the "
			    "last 1 days\n");
	assert_string_equal(gc_list(res, "kept"),
			    "v6:one of the last 1 sealed versions\n"
			    "v4:version m/v4 has 1 file(s) open through the mount\n"
			    "v3:aliased ('staging' points at it)\n"
			    "v2:aliased within the last 1 days\n");
	json_decref(res);
	assert_string_equal(names(f, "m", REG_ARCHIVED_INCLUDE), "v1 v2 v3 v4 v5 v6 d7");
	/* Two days later v2's time as an alias is past; archived versions count as sealed. */
	assert_int_equal(reg_version_archive(f->st, &fx_actor, "m", "v5", NULL), 0);
	o.dry_run = 0;
	o.now_us = cm_time_now_us() + 2 * DAY_US;
	assert_int_equal(reg_gc_run(f->st, &writer, &o, &res), -EACCES);
	assert_int_equal(reg_gc_run(f->st, &admin, &o, &res), 0);
	assert_string_equal(gc_list(res, "removed"),
			    "v5:not one of the last 1 sealed versions and not aliased within the "
			    "last 1 days\n"
			    "v2:not one of the last 1 sealed versions and not aliased within the "
			    "last 1 days\n"
			    "v1:not one of the last 1 sealed versions and not aliased within the "
			    "last 1 days\n");
	json_decref(res);
	assert_string_equal(names(f, "m", REG_ARCHIVED_INCLUDE), "v3 v4 v6 d7");
	assert_string_equal(names(f, "other", REG_ARCHIVED_INCLUDE), "v1");
	assert_false(exists(f, "m/v1"));
	reg_version_unhold(f->st, hold);
	/* min_age_days keeps the young, whatever else. */
	pol = json_loads("{\"retention\": {\"keep_last\": 0, \"min_age_days\": 1}}", 0, NULL);
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "m", pol, NULL), 0);
	json_decref(pol);
	o.now_us = 0;
	o.model = "m";
	assert_int_equal(reg_gc_run(f->st, &admin, &o, &res), 0);
	assert_string_equal(gc_list(res, "removed"), "");
	json_decref(res);
	o.model = "nope";
	assert_int_equal(reg_gc_run(f->st, &admin, &o, &res), -ENOENT);
	assert_int_equal(fx_fsck(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(archive_rules, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(delete_rules, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(hold_blocks_delete, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(no_hold_during_delete, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(model_remove, fx_setup, fx_teardown),
		cmocka_unit_test(retention_check),
		cmocka_unit_test_setup_teardown(gc_rules, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
