/* SPDX-License-Identifier: Apache-2.0 */
/* The one authorisation decision (registry/authz.c), for uid and token actors alike. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static const gid_t admin_groups[] = { 3000 };

static struct reg_actor uid_actor(uid_t uid, const gid_t *groups, int n)
{
	return (struct reg_actor){ .channel = "fs", .name = "uid", .kind = REG_ACTOR_UID,
				   .uid = uid, .gid = uid, .groups = groups, .ngroups = n };
}

static struct reg_actor token(enum reg_role role, int anonymous)
{
	return (struct reg_actor){ .channel = "api", .name = "tok", .kind = REG_ACTOR_TOKEN,
				   .role = role, .anonymous = anonymous };
}

static void chown_path(struct fx *f, const char *rel, uid_t uid, mode_t mode)
{
	char path[8192];

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	assert_int_equal(chown(path, uid, uid), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void draft_files(void **state)
{
	struct fx *f = *state;
	struct reg_authz_target t = { .model = "m", .version = "vd", .path = "model.pkl" };
	struct reg_actor owner = uid_actor(2001, NULL, 0), other = uid_actor(2002, NULL, 0);
	struct reg_actor root = uid_actor(0, NULL, 0);
	struct reg_actor w = token(REG_ROLE_WRITER, 0), r = token(REG_ROLE_READER, 0);
	struct reg_actor anon = token(REG_ROLE_NONE, 1), anon_admin = token(REG_ROLE_ADMIN, 1);

	fx_version(f, "m", "vd", "model.pkl", "w", NULL);
	chown_path(f, "m/vd", 2001, 0700);
	chown_path(f, "m/vd/model.pkl", 2001, 0600);
	assert_int_equal(reg_authz_check(f->st, &fx_actor, REG_AUTHZ_FILE_READ, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &owner, REG_AUTHZ_FILE_READ, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &root, REG_AUTHZ_FILE_READ, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &w, REG_AUTHZ_FILE_READ, &t), 0);
	cm_err_clear();
	assert_int_equal(reg_authz_check(f->st, &other, REG_AUTHZ_FILE_READ, &t), -EACCES);
	assert_non_null(strstr(cm_err_msg(), "not searchable"));
	assert_int_equal(reg_authz_check(f->st, &r, REG_AUTHZ_FILE_READ, &t), -EACCES);
	assert_non_null(strstr(cm_err_msg(), "writer or admin token"));
	assert_int_equal(reg_authz_check(f->st, &anon, REG_AUTHZ_FILE_READ, &t), -EACCES);
	assert_int_equal(reg_authz_check(f->st, &anon_admin, REG_AUTHZ_FILE_READ, &t), -EACCES);
	/* Readable by everyone: any uid, and anonymous without a token file. */
	chown_path(f, "m/vd", 2001, 0755);
	chown_path(f, "m/vd/model.pkl", 2001, 0644);
	assert_int_equal(reg_authz_check(f->st, &other, REG_AUTHZ_FILE_READ, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &anon_admin, REG_AUTHZ_FILE_READ, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &anon, REG_AUTHZ_FILE_READ, &t), -EACCES);
	/* Sealed content is the route's business. */
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "vd", NULL), 0);
	assert_int_equal(reg_authz_check(f->st, &r, REG_AUTHZ_FILE_READ, &t), 0);
}

static void seal_and_aliases(void **state)
{
	struct fx *f = *state;
	struct reg_authz_target t = { .model = "m", .version = "vd", .alias = "current" };
	struct reg_actor owner = uid_actor(2001, NULL, 0), other = uid_actor(2002, NULL, 0);
	struct reg_actor admin = uid_actor(3001, admin_groups, 1);
	struct reg_actor w = token(REG_ROLE_WRITER, 0), a = token(REG_ROLE_ADMIN, 0);

	fx_version(f, "m", "vd", "model.pkl", "w", NULL);
	fx_pass(f, "m", "vd");
	chown_path(f, "m/vd", 2001, 0755);
	/* Sealing: the owner, a writer token, root or the admin group. */
	assert_int_equal(reg_authz_check(f->st, &owner, REG_AUTHZ_SEAL, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &w, REG_AUTHZ_SEAL, &t), 0);
	cm_err_clear();
	assert_int_equal(reg_authz_check(f->st, &other, REG_AUTHZ_SEAL, &t), -EACCES);
	assert_non_null(strstr(cm_err_msg(), "only the owner"));
	assert_int_equal(reg_authz_check(f->st, &admin, REG_AUTHZ_SEAL, &t), -EACCES);
	/* Without an admin group any uid may move current (the file modes decide). */
	assert_int_equal(reg_authz_check(f->st, &other, REG_AUTHZ_ALIAS_SET, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &w, REG_AUTHZ_ALIAS_SET, &t), -EACCES);
	assert_int_equal(reg_authz_check(f->st, &a, REG_AUTHZ_ALIAS_SET, &t), 0);
	reg_store_set_admin_group(f->st, 3000);
	assert_int_equal(reg_authz_check(f->st, &admin, REG_AUTHZ_SEAL, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &other, REG_AUTHZ_ALIAS_SET, &t), -EACCES);
	assert_int_equal(reg_authz_check(f->st, &admin, REG_AUTHZ_ALIAS_SET, &t), 0);
	t.alias = "staging";
	assert_int_equal(reg_authz_check(f->st, &other, REG_AUTHZ_ALIAS_SET, &t), 0);
	/* Pointing an alias at someone else's draft does not seal it. */
	assert_int_equal(reg_alias_set(f->st, &other, "m", "staging", "vd", NULL, NULL), -EACCES);
	assert_int_equal(reg_alias_set(f->st, &owner, "m", "staging", "vd", NULL, NULL), 0);
	/* Force and policy: admins only. */
	assert_int_equal(reg_authz_check(f->st, &w, REG_AUTHZ_FORCE, &t), -EACCES);
	assert_int_equal(reg_authz_check(f->st, &owner, REG_AUTHZ_POLICY_SET, &t), -EACCES);
	assert_int_equal(reg_authz_check(f->st, &admin, REG_AUTHZ_POLICY_SET, &t), 0);
	assert_int_equal(reg_authz_check(f->st, &a, REG_AUTHZ_FORCE, &t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(draft_files, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(seal_and_aliases, fx_setup, fx_teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: needs root to give files to other uids\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
