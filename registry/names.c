/* SPDX-License-Identifier: Apache-2.0 */
/* Name rules: models are DNS labels, versions and aliases are safe file names. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_i.h"

static const char *const reserved[] = { REG_METADATA_FILE, REG_META_DIR, NULL };
static const char *const protected_aliases[] = { "current", "canary", NULL };

static int in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

int reg_alias_is_protected(const char *alias)
{
	return in_list(protected_aliases, alias);
}

int reg_name_model_check(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return cm_err_set(-EINVAL, "model name is empty");
	if (len > 63)
		return cm_err_set(-EINVAL, "model name '%.63s…' is longer than 63 characters", name);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return cm_err_set(-EINVAL, "model name '%s' may only hold lowercase letters, "
					  "digits and '-' (it becomes a Kubernetes name)", name);
	}
	if (name[0] == '-' || name[len - 1] == '-')
		return cm_err_set(-EINVAL, "model name '%s' must start and end with a letter or digit",
				  name);
	return 0;
}

/* Shared by versions and aliases: ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$. */
static int file_name_check(const char *what, const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return cm_err_set(-EINVAL, "%s name is empty", what);
	if (len > 63)
		return cm_err_set(-EINVAL, "%s name '%.63s…' is longer than 63 characters", what, name);
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
	      (name[0] >= '0' && name[0] <= '9')))
		return cm_err_set(-EINVAL, "%s name '%s' must start with a letter or digit", what, name);
	for (size_t i = 1; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return cm_err_set(-EINVAL, "%s name '%s' may only hold letters, digits, '.', '_' "
					  "and '-'", what, name);
	}
	if (in_list(reserved, name))
		return cm_err_set(-EINVAL, "'%s' is reserved and cannot be a %s name", name, what);
	return 0;
}

int reg_name_version_check(const char *name)
{
	int rc = file_name_check("version", name);

	if (rc < 0)
		return rc;
	if (reg_alias_is_protected(name))
		return cm_err_set(-EINVAL, "'%s' is an alias name and cannot be a version name", name);
	return 0;
}

int reg_name_alias_check(const char *name)
{
	return file_name_check("alias", name);
}

/* Whether the n bytes at p are well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			k = 1;
			cp = c & 0x1Fu;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			cp = c & 0x0Fu;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			cp = c & 0x07u;
		} else {
			return 0;
		}
		if (i + k >= n)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + j] & 0x3Fu);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

int reg_path_check(const char *path)
{
	size_t len = strlen(path);
	const char *p = path;

	if (len == 0)
		return cm_err_set(-EINVAL, "file path is empty");
	if (len >= PATH_MAX)
		return cm_err_set(-ENAMETOOLONG, "file path is longer than %d bytes", PATH_MAX - 1);
	if (path[0] == '/')
		return cm_err_set(-EINVAL, "file path '%s' must be relative to the version", path);
	/* Names are JSON strings in every listing: both doors refuse what JSON cannot carry. */
	if (!utf8_ok((const unsigned char *)path, len))
		return cm_err_set(-EINVAL, "file path is not valid UTF-8");
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 0)
			return cm_err_set(-EINVAL, "file path '%s' has an empty component", path);
		if (n > NAME_MAX)
			return cm_err_set(-ENAMETOOLONG, "a component of '%s' is longer than %d bytes",
					  path, NAME_MAX);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return cm_err_set(-EINVAL, "file path '%s' may not contain '.' or '..'", path);
		if (!slash)
			break;
		p = slash + 1;
		if (!*p)
			return cm_err_set(-EINVAL, "file path '%s' ends with '/'", path);
	}
	return 0;
}

const char *reg_state_name(enum reg_state s)
{
	switch (s) {
	case REG_DRAFT:
		return "draft";
	case REG_SEALED:
		return "sealed";
	case REG_ARCHIVED:
		return "archived";
	}
	return "unknown";
}

/* 1 when the model has an alias `name` in the db, 0 when not, -errno on error. */
static int alias_exists(struct reg_conn *c, int64_t mid, const char *name)
{
	struct db_stmt *s;
	int rc = 0;

	DB_STMT(c, ALIAS_GET, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, name);
	rc = db_step(c, s, "reading an alias");
	db_reset(s);
done:
	return rc;
}

/*
 * The one namespace of a model directory: a version is a directory, an alias
 * a symlink, metadata.json the generated file, and names starting with '.'
 * (.modelfs, the temporary names of atomic renames) are private; the shape
 * checks above keep those out. This adds what only the db and the disk know:
 * a name that one kind holds is refused to the other, and a version or alias
 * never takes the place of something else on the volume (a directory or file
 * a person put there). Run inside the write transaction that creates the
 * entry, so the answer stays true until it commits.
 */
int names_claim(struct reg_conn *c, int64_t mid, const char *model, const char *name,
		enum names_kind kind)
{
	struct reg_version v;
	struct stat sb;
	int mfd = -1;
	int rc;

	if (kind == NAMES_VERSION) {
		rc = alias_exists(c, mid, name);
		if (rc < 0)
			return rc;
		if (rc)
			return cm_err_set(-EEXIST, "'%s' is an alias of model '%s'; a version cannot "
					  "take its name (versions and aliases share the model "
					  "directory)", name, model);
	} else {
		rc = reg_version_row(c, mid, model, name, &v);
		if (rc == 0)
			return cm_err_set(-EEXIST, "'%s' is a version of model '%s'; an alias cannot "
					  "take its name (versions and aliases share the model "
					  "directory)", name, model);
		if (rc != -ENOENT)
			return rc;
		rc = alias_exists(c, mid, name);
		if (rc != 0)
			return rc < 0 ? rc : 0; /* moving an alias: its link is ours */
	}
	cm_err_clear();
	if (st_openat_dir(c->st->root_fd, model, &mfd) < 0) {
		cm_err_clear();
		return 0; /* no model directory yet: nothing in the way */
	}
	rc = fstatat(mfd, name, &sb, AT_SYMLINK_NOFOLLOW);
	close(mfd);
	if (rc < 0)
		return 0;
	/* A version may take a directory nobody recorded (adoption does); an alias a link. */
	if (kind == NAMES_VERSION ? S_ISDIR(sb.st_mode) : S_ISLNK(sb.st_mode))
		return 0;
	return cm_err_set(-EEXIST, "'%s/%s' already exists on the volume as a %s that is not %s; "
			  "move it away first", model, name,
			  S_ISDIR(sb.st_mode) ? "directory" : S_ISLNK(sb.st_mode) ? "symlink" : "file",
			  kind == NAMES_VERSION ? "a version" : "an alias");
}
