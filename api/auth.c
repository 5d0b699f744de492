/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bearer tokens. The token file holds `<name> <role> <secret>` lines (`#`
 * starts a comment); only SHA-256 digests of the secrets stay in memory, and
 * a presented secret is hashed and compared with every digest in constant
 * time, so neither its content nor its length shows in the timing.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_i.h"

#define TOKEN_FILE_MAX (1024 * 1024)
#define TOKENS_MAX 10000

static int sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != 32)
		return cm_err_set(-EIO, "SHA-256 failed");
	return 0;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= API_TOKEN_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.' || *s == '@'))
			return 0;
	return 1;
}

/* Parses one non-comment line into t; -EINVAL naming line `no`. */
static int line_parse(char *line, int no, struct api_token *t)
{
	char *save = NULL;
	char *name = strtok_r(line, " \t", &save);
	char *role = strtok_r(NULL, " \t", &save);
	char *secret = strtok_r(NULL, " \t", &save);
	int rc;

	if (!name || !role || !secret || strtok_r(NULL, " \t", &save))
		return cm_err_set(-EINVAL, "line %d: expected '<name> <role> <secret>'", no);
	if (!name_ok(name))
		return cm_err_set(-EINVAL, "line %d: token name '%.64s' must be 1-63 letters, digits "
				  "or -_.@", no, name);
	rc = api_role_parse(role, &t->role);
	if (rc < 0)
		return cm_err_wrap(rc, "line %d", no);
	if (strlen(secret) < API_SECRET_MIN)
		return cm_err_set(-EINVAL, "line %d: the secret of '%s' is shorter than %d characters",
				  no, name, API_SECRET_MIN);
	cm_strlcpy(t->name, name, sizeof(t->name));
	return sha256(secret, strlen(secret), t->digest);
}

int api_tokens_parse(const char *text, struct api_tokens **out)
{
	struct api_tokens *t = calloc(1, sizeof(*t));
	char *copy = strdup(text);
	char *save = NULL, *line;
	size_t cap = 0;
	int no = 0;
	int rc = 0;

	if (!t || !copy) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	/* strtok_r would skip empty lines and miscount: split by hand. */
	for (line = copy; line; line = save) {
		char *hash, *nl = strchr(line, '\n');

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		no++;
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (line[strspn(line, " \t")] == '\0')
			continue;
		if (t->n == TOKENS_MAX) {
			rc = cm_err_set(-E2BIG, "more than %d tokens", TOKENS_MAX);
			goto done;
		}
		rc = cm_grow(&t->v, &cap, t->n + 1, sizeof(*t->v), 8);
		if (rc < 0)
			goto done;
		rc = line_parse(line, no, &t->v[t->n]);
		if (rc < 0)
			goto done;
		for (size_t i = 0; i < t->n; i++) {
			if (!strcmp(t->v[i].name, t->v[t->n].name)) {
				rc = cm_err_set(-EINVAL, "line %d: token name '%s' is used twice", no,
						t->v[i].name);
				goto done;
			}
			if (!CRYPTO_memcmp(t->v[i].digest, t->v[t->n].digest, 32)) {
				rc = cm_err_set(-EINVAL, "line %d: tokens '%s' and '%s' have the same "
						"secret", no, t->v[i].name, t->v[t->n].name);
				goto done;
			}
		}
		t->n++;
	}
	if (t->n == 0) {
		rc = cm_err_set(-EINVAL, "no tokens in the token file");
		goto done;
	}
	*out = t;
	t = NULL;
done:
	cm_free(copy);
	api_tokens_free(t);
	return rc;
}

int api_tokens_load(const char *path, struct api_tokens **out)
{
	FILE *f = fopen(path, "re");
	struct stat sb;
	char *text = NULL;
	size_t n;
	int rc;

	if (!f)
		return cm_err_set(-errno, "token file %s: %s", path, strerror(errno));
	/* No stdio buffer: the secrets go straight into text, which is wiped. */
	setvbuf(f, NULL, _IONBF, 0);
	if (fstat(fileno(f), &sb) < 0 || !S_ISREG(sb.st_mode)) {
		rc = cm_err_set(-EINVAL, "token file %s is not a regular file", path);
		goto done;
	}
	/*
	 * Others may never read it; its group only when the file belongs to
	 * another user, the daemon's own way in (a Kubernetes Secret mounted for
	 * the pod's fsGroup). A file the daemon owns must be 0600 or 0400.
	 */
	if ((sb.st_mode & S_IRWXO) || ((sb.st_mode & S_IRWXG) && sb.st_uid == geteuid())) {
		rc = cm_err_set(-EPERM, "token file %s is readable by %s (mode %04o): chmod 600 %s",
				path, (sb.st_mode & S_IRWXO) ? "others" : "its group",
				(unsigned)(sb.st_mode & 07777), path);
		goto done;
	}
	if (sb.st_size > TOKEN_FILE_MAX) {
		rc = cm_err_set(-E2BIG, "token file %s is larger than %d bytes", path, TOKEN_FILE_MAX);
		goto done;
	}
	text = calloc(1, (size_t)sb.st_size + 1);
	if (!text) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	n = fread(text, 1, (size_t)sb.st_size, f);
	text[n] = '\0';
	rc = api_tokens_parse(text, out);
	if (rc < 0)
		cm_err_wrap(rc, "token file %s", path);
done:
	cm_free(text);
	fclose(f);
	return rc;
}

void api_tokens_free(struct api_tokens *t)
{
	if (!t)
		return;
	if (t->v)
		OPENSSL_cleanse(t->v, t->n * sizeof(*t->v));
	free(t->v);
	free(t);
}

const struct api_token *api_tokens_find(const struct api_tokens *t, const char *secret)
{
	unsigned char d[32];
	size_t found = SIZE_MAX;

	if (!t || !secret || sha256(secret, strlen(secret), d) < 0)
		return NULL;
	/* No early exit: every digest is compared whatever matched. */
	for (size_t i = 0; i < t->n; i++) {
		size_t eq = (size_t)(CRYPTO_memcmp(d, t->v[i].digest, 32) == 0);

		found = (found & (eq - 1)) | (i & (0 - eq));
	}
	OPENSSL_cleanse(d, sizeof(d));
	return found < t->n ? &t->v[found] : NULL;
}

const char api_anonymous[] = "anonymous";

void api_auth_actor(struct api_req *q, enum api_role role, int anonymous)
{
	static const enum reg_role roles[] = {
		[API_ROLE_NONE] = REG_ROLE_NONE,
		[API_ROLE_READER] = REG_ROLE_READER,
		[API_ROLE_WRITER] = REG_ROLE_WRITER,
		[API_ROLE_ADMIN] = REG_ROLE_ADMIN,
	};

	q->role = role;
	q->who.kind = REG_ACTOR_TOKEN;
	q->who.role = roles[role];
	q->who.anonymous = anonymous;
}

int api_auth_check(const struct api_tokens *t, const char *authorization, enum api_role need,
		   enum api_role *role, const char **name)
{
	const struct api_token *tok;
	const char *secret = NULL;

	if (!t) {
		*role = API_ROLE_ADMIN;
		*name = api_anonymous;
		return 0;
	}
	if (authorization && !strncasecmp(authorization, "Bearer ", 7)) {
		secret = authorization + 7;
		while (*secret == ' ')
			secret++;
	}
	tok = api_tokens_find(t, secret);
	if (!tok) {
		if (need == API_ROLE_NONE) {
			*role = API_ROLE_NONE;
			*name = api_anonymous;
			return 0;
		}
		return cm_err_set(-ENOKEY, authorization ? "the bearer token is not valid"
							  : "this request needs a bearer token "
							    "(Authorization: Bearer <secret>)");
	}
	/* Known even when refused, so that the refusal is logged with its actor. */
	*role = tok->role;
	*name = tok->name;
	if (tok->role < need)
		return cm_err_set(-EACCES, "token '%s' has the %s role; this request needs %s",
				  tok->name, api_role_name(tok->role), api_role_name(need));
	return 0;
}
