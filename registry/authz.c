/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one authorisation decision for both front ends. The mount brings a
 * uid and its groups, HTTP a token's role; both ask here whether the actor
 * may read a draft's file, seal a draft, move a protected alias, force past
 * the policy or change it, so no door grants what the other refuses.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_i.h"

void reg_store_set_admin_group(struct reg_store *st, long long gid)
{
	st->admin_gid = gid;
}

static int in_group(const struct reg_actor *who, gid_t g)
{
	if (who->gid == g)
		return 1;
	for (int i = 0; i < who->ngroups; i++)
		if (who->groups[i] == g)
			return 1;
	return 0;
}

/* Root, or a member of the admin group. */
static int uid_admin(const struct reg_store *st, const struct reg_actor *who)
{
	return who->uid == 0 || (st->admin_gid >= 0 && in_group(who, (gid_t)st->admin_gid));
}

/*
 * Whether the mode bits of sb grant `want` (a mask of 4, 2, 1) to the actor,
 * as the kernel checks them: owner class, else group class, else others.
 * An anonymous HTTP request is in the others class; root is granted all.
 */
static int mode_grants(const struct reg_actor *who, const struct stat *sb, unsigned want)
{
	unsigned bits;

	if (who->kind == REG_ACTOR_UID && who->uid == 0)
		return 1;
	if (who->kind == REG_ACTOR_UID && sb->st_uid == who->uid)
		bits = (sb->st_mode >> 6) & 7;
	else if (who->kind == REG_ACTOR_UID && in_group(who, sb->st_gid))
		bits = (sb->st_mode >> 3) & 7;
	else
		bits = sb->st_mode & 7;
	return (bits & want) == want;
}

static const char *who_name(const struct reg_actor *who)
{
	return who->name ? who->name : "-";
}

/* The file's mode, and search permission on each directory on the way, below vfd. */
static int draft_file_check(const struct reg_actor *who, int vfd, const char *model,
			    const char *version, const char *path)
{
	char part[4096];
	struct stat sb;
	const char *p = path;
	int dfd = -1, next;
	int rc = 0;

	if (fstat(vfd, &sb) < 0)
		return cm_err_set(-errno, "stat %s/%s: %s", model, version, strerror(errno));
	if (!mode_grants(who, &sb, 1))
		return cm_err_set(-EACCES, "%s may not read files of draft %s/%s (its directory "
				  "is not searchable for them)", who_name(who), model, version);
	dfd = dup(vfd);
	if (dfd < 0)
		return cm_err_set(-errno, "dup: %s", strerror(errno));
	for (;;) {
		size_t n = strcspn(p, "/");
		int last = p[n] == '\0';

		if (n == 0 || n >= sizeof(part)) {
			rc = cm_err_set(-EINVAL, "bad path '%s'", path);
			break;
		}
		memcpy(part, p, n);
		part[n] = '\0';
		if (fstatat(dfd, part, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = cm_err_set(-errno, "%s/%s/%s: %s", model, version, path, strerror(errno));
			break;
		}
		if (!mode_grants(who, &sb, last ? 4 : 1)) {
			rc = cm_err_set(-EACCES, "%s may not read %s/%s/%s: a draft's file is readable "
					"as its mode says (over HTTP: with a writer or admin token)",
					who_name(who), model, version, path);
			break;
		}
		if (last)
			break;
		next = openat(dfd, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			rc = cm_err_set(-errno, "%s/%s/%s: %s", model, version, path, strerror(errno));
			break;
		}
		close(dfd);
		dfd = next;
		p += n + 1;
	}
	close(dfd);
	return rc;
}

static int file_read(struct reg_store *st, const struct reg_actor *who,
		     const struct reg_authz_target *t)
{
	struct reg_version v;
	int vfd = -1;
	int rc;

	rc = reg_version_get(st, t->model, t->version, &v);
	if (rc < 0 || v.state != REG_DRAFT)
		return rc; /* sealed content: the route's read rule (--auth-reads) decides */
	/*
	 * Without a token file an anonymous request carries the admin role; for a
	 * draft's files it is one more local user (the others class of the mode).
	 */
	if (who->kind == REG_ACTOR_TOKEN && !(who->anonymous && who->role == REG_ROLE_ADMIN)) {
		if (who->role >= REG_ROLE_WRITER)
			return 0;
		if (who->anonymous)
			return cm_err_set(-EACCES, "reading a draft's files needs a writer or admin "
					  "token");
		return cm_err_set(-EACCES, "token '%s' has the %s role; reading a draft's files "
				  "needs a writer or admin token", who_name(who),
				  who->role == REG_ROLE_READER ? "reader" : "no");
	}
	rc = reg_path_check(t->path);
	if (rc == 0)
		rc = reg_version_dir_open(st, t->model, t->version, &vfd);
	if (rc == 0)
		rc = draft_file_check(who, vfd, t->model, t->version, t->path);
	if (rc == -EACCES && who->kind == REG_ACTOR_TOKEN)
		cm_err_set(-EACCES, "reading a draft's files over HTTP needs a writer or admin "
			   "token (%s/%s/%s is not readable by everyone)", t->model, t->version,
			   t->path);
	if (vfd >= 0)
		close(vfd);
	return rc;
}

static int seal(struct reg_store *st, const struct reg_actor *who, const struct reg_authz_target *t)
{
	struct stat sb;
	int vfd = -1;
	int rc;

	if (who->kind == REG_ACTOR_TOKEN) {
		if (who->role >= REG_ROLE_WRITER)
			return 0;
		return cm_err_set(-EACCES, "sealing %s/%s needs a writer or admin token", t->model,
				  t->version);
	}
	if (uid_admin(st, who))
		return 0;
	rc = reg_version_dir_open(st, t->model, t->version, &vfd);
	if (rc < 0)
		return rc;
	if (fstat(vfd, &sb) < 0)
		rc = cm_err_set(-errno, "stat %s/%s: %s", t->model, t->version, strerror(errno));
	else if (sb.st_uid != who->uid)
		rc = cm_err_set(-EACCES, "only the owner of draft %s/%s (uid %u), root or the admin "
				"group may seal it", t->model, t->version, (unsigned)sb.st_uid);
	close(vfd);
	return rc;
}

int reg_authz_check(struct reg_store *st, const struct reg_actor *who, enum reg_authz_op op,
		    const struct reg_authz_target *t)
{
	if (!who || who->kind == REG_ACTOR_TRUSTED)
		return 0;
	switch (op) {
	case REG_AUTHZ_FILE_READ:
		return file_read(st, who, t);
	case REG_AUTHZ_SEAL:
		return seal(st, who, t);
	case REG_AUTHZ_ALIAS_SET:
		if (!reg_alias_is_protected(t->alias))
			return 0;
		if (who->kind == REG_ACTOR_TOKEN) {
			if (who->role >= REG_ROLE_ADMIN)
				return 0;
			return cm_err_set(-EACCES, "changing the protected alias '%s' needs an admin "
					  "token", t->alias);
		}
		if (st->admin_gid < 0 || uid_admin(st, who))
			return 0;
		return cm_err_set(-EACCES, "changing '%s' needs membership of group %lld", t->alias,
				  st->admin_gid);
	case REG_AUTHZ_FORCE:
	case REG_AUTHZ_POLICY_SET:
	case REG_AUTHZ_DELETE:
		if (who->kind == REG_ACTOR_TOKEN ? who->role >= REG_ROLE_ADMIN : uid_admin(st, who))
			return 0;
		return cm_err_set(-EACCES, "%s needs an admin (an admin token, root or the admin "
				  "group)", op == REG_AUTHZ_FORCE	   ? "force"
					    : op == REG_AUTHZ_POLICY_SET ? "changing a policy"
									 : "deleting sealed content");
	}
	return cm_err_set(-EINVAL, "unknown authorisation question %d", (int)op);
}
