/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Git-tag sync: sealed versions and alias changes become annotated tags in a
 * git repository (libgit2), through a durable queue in the db, and the tags
 * found there are read back and checked against the registry.
 *
 * Queueing. reg_event_add() calls gs_event_enqueue() inside the transaction
 * of every change, so a tag is queued exactly when its change commits. The
 * tag's name and message are fixed in the queue row; GTO counters, which
 * depend on the tags already made, are computed when the item reaches the
 * head of the queue and committed to the row before the tag is made, so a
 * retry after a crash makes the same tag and a re-run never adds a second.
 *
 * Processing. One run at a time per process (gs_run_mu): items are taken in
 * queue order; a transient failure (repository missing or unwritable,
 * remote unreachable) stops the run and sets the item's backoff, so later
 * items never overtake it (GTO counters follow event order); permanent
 * failures are recorded on the item and as events and the run goes on. Git
 * work runs with no registry lock held; each outcome is one short write
 * transaction. The worker thread waits on its condition variable, woken by
 * db_write_end() after a commit that queued tags (an outbox observer), or by its timer.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "reg_i.h"

#define GS_BACKOFF_MIN_US 1000000LL       /* first retry after 1 s ... */
#define GS_BACKOFF_MAX_US 300000000LL     /* ... doubling up to 5 min */
#define GS_IDLE_US 30000000LL             /* the worker looks at the queue at least this often */
#define GS_BATCH 256                      /* queue rows read at a time */
#define GS_TAG_MAX 256                    /* longest tag name */
#define GS_PATH_MAX 4096
#define GS_MSG_MAX 200                    /* error messages kept per item */
#define GS_TOKEN_MAX 4096
#define GS_CRED_TRIES 3
#define GS_STALE_LOCK_US 5000000LL        /* a ref lock this old was left by a crash */

static const struct reg_actor gs_actor = { .channel = "git", .name = "git-sync" };

void (*gs_fault_hook)(const char *point);

static void fault(const char *point)
{
	if (gs_fault_hook)
		gs_fault_hook(point);
}

/* Serialises runs (worker, reg_git_sync_run, reg_git_check) in a process. */
static pthread_mutex_t gs_run_mu = PTHREAD_MUTEX_INITIALIZER;
/* Guards st->git_worker against a worker stopping while a commit kicks it. */
static pthread_mutex_t gs_worker_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- tag names ---- */

/* A format split around its placeholders: pre {first} mid {second} post. */
struct gs_fmt {
	char pre[GS_TAG_MAX], mid[GS_TAG_MAX], post[GS_TAG_MAX];
	int version_first;
};

static int fmt_literal_ok(int ch)
{
	return isalnum(ch) || ch == '.' || ch == '_' || ch == '/' || ch == '-';
}

static int fmt_split(const char *f, struct gs_fmt *out)
{
	const char *m, *v, *first, *second;
	size_t flen = 0, slen = 0;

	if (!f || !f[0])
		return cm_err_set(-EINVAL, "the tag format is empty");
	if (strlen(f) >= GS_TAG_MAX)
		return cm_err_set(-EINVAL, "the tag format is longer than %d characters", GS_TAG_MAX - 1);
	m = strstr(f, "{model}");
	v = strstr(f, "{version}");
	if (!m || !v || strstr(m + 1, "{model}") || strstr(v + 1, "{version}"))
		return cm_err_set(-EINVAL, "tag format '%s' must hold {model} and {version} once each",
				  f);
	first = m < v ? m : v;
	second = m < v ? v : m;
	flen = first == m ? 7 : 9;
	slen = second == m ? 7 : 9;
	if (second == first + flen)
		return cm_err_set(-EINVAL, "tag format '%s' needs text between {model} and {version} "
				  "so that tags can be read back", f);
	for (const char *p = f; *p; p++) {
		if (p == first) {
			p += flen - 1;
			continue;
		}
		if (p == second) {
			p += slen - 1;
			continue;
		}
		if (!fmt_literal_ok((unsigned char)*p))
			return cm_err_set(-EINVAL, "tag format '%s': '%c' is not allowed (use letters, "
					  "digits, '.', '_', '/', '-')", f, *p);
	}
	snprintf(out->pre, sizeof(out->pre), "%.*s", (int)(first - f), f);
	snprintf(out->mid, sizeof(out->mid), "%.*s", (int)(second - first - (ptrdiff_t)flen),
		 first + flen);
	snprintf(out->post, sizeof(out->post), "%s", second + slen);
	out->version_first = first == v;
	return 0;
}

int reg_git_tag_name(const char *format, const char *model, const char *version, char *out,
		     size_t n)
{
	struct gs_fmt f;
	int len;
	int rc = fmt_split(format, &f);

	if (rc < 0)
		return rc;
	len = snprintf(out, n, "%s%s%s%s%s", f.pre, f.version_first ? version : model, f.mid,
		       f.version_first ? model : version, f.post);
	if (len < 0 || (size_t)len >= n)
		return cm_err_set(-E2BIG, "tag name for %s/%s is too long", model, version);
	return 0;
}

static int ref_name_ok(const char *tag)
{
	char ref[GS_TAG_MAX + 16];
	int valid = 0;

	snprintf(ref, sizeof(ref), "refs/tags/%s", tag);
	if (git_reference_name_is_valid(&valid, ref) < 0)
		return 0;
	return valid;
}

int reg_git_format_check(const char *format)
{
	char sample[GS_TAG_MAX];
	int ok;
	int rc = reg_git_tag_name(format, "anomaly-detector", "v2", sample, sizeof(sample));

	if (rc < 0)
		return rc;
	git_libgit2_init();
	ok = ref_name_ok(sample);
	git_libgit2_shutdown();
	if (!ok)
		return cm_err_set(-EINVAL, "tag format '%s' makes invalid tag names ('%s')", format,
				  sample);
	return 0;
}

/* MAJOR.MINOR.PATCH, optionally after 'v' and before a -prerelease: "1.2.0", "v1.2.0-rc.1". */
static int semver_of(const char *name, char *out, size_t n)
{
	const char *p = name[0] == 'v' ? name + 1 : name;
	const char *start = p;

	for (int part = 0; part < 3; part++) {
		if (!isdigit((unsigned char)*p) || (p[0] == '0' && isdigit((unsigned char)p[1])))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		if (part < 2 && *p++ != '.')
			return 0;
	}
	if (*p == '-') {
		if (!p[1])
			return 0;
		for (const char *q = p + 1; *q; q++)
			if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-')
				return 0;
	} else if (*p) {
		return 0;
	}
	snprintf(out, n, "%s", start);
	return 1;
}

/* ---- configuration ---- */

struct gs_cfg {
	char *repo, *remote, *tagger_name, *tagger_email, *tag_format, *token_file;
	int gto, enabled;
	int64_t updated_us;
};

static void cfg_free(struct gs_cfg *c)
{
	free(c->repo);
	free(c->remote);
	free(c->tagger_name);
	free(c->tagger_email);
	free(c->tag_format);
	free(c->token_file);
	memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

/* The stored configuration on c; -ENOENT when there is none. */
static int cfg_load(struct reg_conn *c, struct gs_cfg *out)
{
	struct gs_cfg g = { 0 };
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, GIT_CONFIG_GET, s);
	src = db_step(c, s, "reading the git configuration");
	if (src > 0) {
		g.repo = db_col_strdup(s, 0);
		g.remote = db_col_strdup(s, 1);
		g.tagger_name = db_col_strdup(s, 2);
		g.tagger_email = db_col_strdup(s, 3);
		g.tag_format = db_col_strdup(s, 4);
		g.gto = db_col_int(s, 5);
		g.token_file = db_col_strdup(s, 6);
		g.enabled = db_col_int(s, 7);
		g.updated_us = db_col_int64(s, 8);
		if (!g.repo || !g.tagger_name || !g.tagger_email || !g.tag_format)
			rc = cm_err_set(-ENOMEM, "out of memory");
	} else if (src == 0) {
		rc = cm_err_set(-ENOENT, "git sync is not configured for this store "
				"(serve --git-repo DIR, or git-sync --repo DIR --run)");
	} else {
		rc = src;
	}
	db_reset(s);
	if (rc == 0)
		*out = g;
	else
		cfg_free(&g);
done:
	return rc;
}

/* Fills a configuration from cfg with defaults for what it leaves out. */
static int cfg_from(const struct reg_git_config *in, struct gs_cfg *out)
{
	struct gs_cfg g = { 0 };

	g.repo = dup_or_null(in->repo);
	g.remote = dup_or_null(in->remote);
	g.tagger_name = strdup(in->tagger_name && in->tagger_name[0] ? in->tagger_name : "modelfs");
	g.tagger_email = strdup(in->tagger_email && in->tagger_email[0] ? in->tagger_email
								       : "modelfs@localhost");
	g.tag_format = strdup(in->tag_format && in->tag_format[0] ? in->tag_format
								  : REG_GIT_TAG_FORMAT_DEFAULT);
	g.token_file = dup_or_null(in->token_file);
	g.gto = !!in->gto;
	g.enabled = 1;
	if (!g.tagger_name || !g.tagger_email || !g.tag_format || (in->repo && in->repo[0] && !g.repo)) {
		cfg_free(&g);
		return cm_err_set(-ENOMEM, "out of memory");
	}
	*out = g;
	return 0;
}

static json_t *cfg_json(const struct gs_cfg *g)
{
	char ts[CM_TIME_RFC3339_LEN];

	cm_time_format(g->updated_us, ts);
	return json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:s?, s:b, s:s}", "repo", g->repo,
			 "remote", g->remote, "tagger_name", g->tagger_name, "tagger_email",
			 g->tagger_email, "tag_format", g->tag_format, "gto", g->gto, "token_file",
			 g->token_file, "enabled", g->enabled, "updated_at", ts);
}

/* Stored paths are absolute: the daemon may run from another directory. */
static int path_absolute(char **p)
{
	char cwd[GS_PATH_MAX];
	size_t len;
	char *abs;

	if ((*p)[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return cm_err_set(-errno, "cannot resolve '%s': %s", *p, strerror(errno));
	len = strlen(cwd) + strlen(*p) + 2;
	if (len >= GS_PATH_MAX)
		return cm_err_set(-ENAMETOOLONG, "the path '%s' is too long", *p);
	abs = malloc(len);
	if (!abs)
		return cm_err_set(-ENOMEM, "out of memory");
	snprintf(abs, len, "%s/%s", cwd, (*p)[0] == '.' && (*p)[1] == '/' ? *p + 2 : *p);
	free(*p);
	*p = abs;
	return 0;
}

static int tagger_part_check(const char *what, const char *s)
{
	if (strlen(s) > 200)
		return cm_err_set(-EINVAL, "the tagger %s is longer than 200 characters", what);
	for (const char *p = s; *p; p++)
		if (*p == '<' || *p == '>' || *p == '\n' || *p == '\r' || *p == '\0')
			return cm_err_set(-EINVAL, "the tagger %s may not hold '<', '>' or line breaks",
					  what);
	return 0;
}

int reg_git_configure(struct reg_store *st, const struct reg_actor *who,
		      const struct reg_git_config *cfg)
{
	struct gs_cfg g = { 0 }, old = { 0 };
	struct reg_conn *c = NULL;
	json_t *bj = NULL, *aj = NULL;
	char *btext = NULL, *atext = NULL;
	struct db_stmt *s;
	int have_old = 0;
	int valid = 0;
	int rc;

	if (!cfg || !cfg->repo || !cfg->repo[0])
		return cm_err_set(-EINVAL, "git sync needs a repository path");
	if (strlen(cfg->repo) >= GS_PATH_MAX)
		return cm_err_set(-EINVAL, "the repository path is too long");
	if (cfg->token_file && strlen(cfg->token_file) >= GS_PATH_MAX)
		return cm_err_set(-EINVAL, "the token file path is too long");
	rc = cfg_from(cfg, &g);
	if (rc < 0)
		return rc;
	rc = path_absolute(&g.repo);
	if (rc == 0 && g.token_file)
		rc = path_absolute(&g.token_file);
	if (rc == 0)
		rc = reg_git_format_check(g.tag_format);
	if (rc == 0)
		rc = tagger_part_check("name", g.tagger_name);
	if (rc == 0)
		rc = tagger_part_check("email", g.tagger_email);
	if (rc == 0 && g.remote) {
		git_libgit2_init();
		if (git_remote_name_is_valid(&valid, g.remote) < 0 || !valid)
			rc = cm_err_set(-EINVAL, "'%s' is not a valid git remote name", g.remote);
		git_libgit2_shutdown();
	}
	if (rc < 0)
		goto done;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = cfg_load(c, &old);
	have_old = rc == 0;
	if (rc < 0 && rc != -ENOENT)
		goto done;
	DB_STMT(c, GIT_CONFIG_SET, s);
	db_bind_text(s, 1, g.repo);
	db_bind_text(s, 2, g.remote);
	db_bind_text(s, 3, g.tagger_name);
	db_bind_text(s, 4, g.tagger_email);
	db_bind_text(s, 5, g.tag_format);
	db_bind_int(s, 6, g.gto);
	db_bind_text(s, 7, g.token_file);
	db_bind_int64(s, 8, cm_time_now_us());
	rc = db_exec_stmt(c, s, "storing the git configuration");
	if (rc < 0)
		goto done;
	/* Compare without the time: an unchanged configuration records nothing. */
	g.updated_us = old.updated_us;
	bj = have_old ? cfg_json(&old) : NULL;
	aj = cfg_json(&g);
	if (!aj) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	json_object_del(aj, "updated_at");
	if (bj)
		json_object_del(bj, "updated_at");
	if (!bj || !json_equal(bj, aj)) {
		btext = bj ? reg_json_dumps(bj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		atext = reg_json_dumps(aj, JSON_COMPACT | JSON_SORT_KEYS);
		rc = reg_event_add(c, who, "git.configure", NULL, NULL, NULL, btext, atext, NULL);
		if (rc < 0)
			goto done;
	}
	rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	json_decref(bj);
	json_decref(aj);
	free(btext);
	free(atext);
	cfg_free(&g);
	cfg_free(&old);
	return rc;
}

int reg_git_disable(struct reg_store *st, const struct reg_actor *who)
{
	struct reg_conn *c = NULL;
	struct gs_cfg old = { 0 };
	struct db_stmt *s;
	int rc;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = cfg_load(c, &old);
	if (rc < 0 || !old.enabled)
		goto done;
	DB_STMT(c, GIT_CONFIG_DISABLE, s);
	db_bind_int64(s, 1, cm_time_now_us());
	rc = db_exec_stmt(c, s, "disabling git sync");
	if (rc == 0)
		rc = reg_event_add(c, who, "git.disable", NULL, NULL, NULL, old.repo, NULL, NULL);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	cfg_free(&old);
	return rc;
}

int reg_git_config_get(struct reg_store *st, json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	struct gs_cfg g = { 0 };
	json_t *j;
	int rc = cfg_load(c, &g);

	db_read_end(c);
	if (rc < 0)
		return rc;
	j = cfg_json(&g);
	cfg_free(&g);
	if (!j)
		return cm_err_set(-ENOMEM, "out of memory");
	*out = j;
	return 0;
}

/* ---- queueing (inside the caller's transaction) ---- */

static void num_append(struct cm_buf *b, json_t *v)
{
	if (json_is_integer(v))
		cm_buf_printf(b, "%lld", (long long)json_integer_value(v));
	else
		cm_buf_printf(b, "%.6g", json_real_value(v));
}

/* "accuracy 0.94, f1_score 0.87, " from performance_metrics, the usual ones first. */
static void headline_append(struct cm_buf *b, json_t *rec)
{
	static const char *const usual[] = { "accuracy", "precision", "recall", "f1_score", NULL };
	json_t *pm = json_object_get(rec, "performance_metrics");
	const char *key;
	json_t *v;
	int shown = 0;

	if (!json_is_object(pm))
		return;
	for (int i = 0; usual[i]; i++) {
		v = json_object_get(pm, usual[i]);
		if (json_is_number(v)) {
			cm_buf_printf(b, "%s ", usual[i]);
			num_append(b, v);
			cm_buf_printf(b, ", ");
			shown++;
		}
	}
	if (shown)
		return;
	json_object_foreach(pm, key, v) {
		if (shown == 3)
			break;
		if (json_is_number(v)) {
			cm_buf_printf(b, "%s ", key);
			num_append(b, v);
			cm_buf_printf(b, ", ");
			shown++;
		}
	}
}

static const char *rec_str(json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

/* The details every tag message carries after its summary line. */
static void details_append(struct cm_buf *b, const char *model, const struct reg_version *v,
			   json_t *rec, int64_t event_id, const struct reg_actor *who)
{
	static const char *const fields[] = { "git_commit", "training_notebook",
					      "training_data_hash", "parent_version", NULL };
	const char *vs = rec_str(rec, "validation_status");
	json_t *pm = json_object_get(rec, "performance_metrics");

	cm_buf_printf(b, "\nmodel: %s\nversion: %s\n", model, v->name);
	if (v->digest[0])
		cm_buf_printf(b, "content: sha256:%s, %lld bytes\n", v->digest,
			      (long long)v->total_size);
	cm_buf_printf(b, "validation_status: %s\n", vs ? vs : "(none)");
	if (json_is_object(pm) && json_object_size(pm)) {
		const char *key;
		json_t *x;

		cm_buf_printf(b, "performance_metrics:");
		json_object_foreach(pm, key, x) {
			if (!json_is_number(x))
				continue;
			cm_buf_printf(b, " %s=", key);
			num_append(b, x);
		}
		cm_buf_printf(b, "\n");
	}
	for (int i = 0; fields[i]; i++) {
		const char *x = rec_str(rec, fields[i]);

		if (x)
			cm_buf_printf(b, "%s: %s\n", fields[i], x);
	}
	if (event_id > 0)
		cm_buf_printf(b, "registry-event: %lld by %s/%s\n", (long long)event_id,
			      who && who->channel ? who->channel : "internal",
			      who && who->name ? who->name : "modelfs");
	else
		cm_buf_printf(b, "queued-by: backfill by %s/%s\n",
			      who && who->channel ? who->channel : "internal",
			      who && who->name ? who->name : "modelfs");
}

static void validation_append(struct cm_buf *b, json_t *rec)
{
	const char *vs = rec_str(rec, "validation_status");

	cm_buf_printf(b, "validation %s", vs ? vs : "pending");
}

static int enqueue_row(struct reg_conn *c, int64_t event_id, const char *kind, const char *model,
		       const char *version, const char *alias, const char *commit,
		       const char *message, const char *tag)
{
	struct db_stmt *s;
	int rc = 0;

	if (!message)
		return cm_err_set(-ENOMEM, "out of memory composing a tag message");
	DB_STMT(c, GIT_ENQUEUE, s);
	db_bind_int64(s, 1, cm_time_now_us());
	if (event_id > 0)
		db_bind_int64(s, 2, event_id);
	db_bind_text(s, 3, kind);
	db_bind_text(s, 4, model);
	db_bind_text(s, 5, version);
	db_bind_text(s, 6, alias);
	db_bind_text(s, 7, commit);
	db_bind_text(s, 8, message);
	db_bind_text(s, 9, tag);
	rc = db_exec_stmt(c, s, "queueing a git tag");
	if (rc == 0)
		c->kick = 1;
done:
	return rc;
}

/* Loads version `name` of model and its record on c. */
static int version_load(struct reg_conn *c, const char *model, const char *name,
			struct reg_version *v, json_t **rec)
{
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);

	if (rc == 0)
		rc = reg_version_row(c, mid, model, name, v);
	if (rc == 0)
		rc = reg_record_load(c, v->id, rec);
	return rc;
}

/* The version tag (and GTO registration) for a sealed version. */
static int enqueue_version(struct reg_conn *c, int64_t event_id, const struct reg_actor *who,
			   const char *model, const char *version, int gto, const char *format)
{
	struct reg_version v;
	struct cm_buf b = { 0 };
	json_t *rec = NULL;
	char tag[GS_TAG_MAX], semver[REG_NAME_MAX];
	const char *commit;
	int rc;

	rc = version_load(c, model, version, &v, &rec);
	if (rc < 0)
		goto done;
	commit = rec_str(rec, "git_commit");
	cm_buf_printf(&b, "%s %s: ", model, version);
	headline_append(&b, rec);
	validation_append(&b, rec);
	cm_buf_printf(&b, ", sha256 %s\n", v.digest[0] ? v.digest : "(none)");
	details_append(&b, model, &v, rec, event_id, who);
	/* A name that cannot be made (too long) is left NULL: the sync reports it. */
	rc = enqueue_row(c, event_id, "version", model, version, NULL, commit, b.data,
			 reg_git_tag_name(format, model, version, tag, sizeof(tag)) == 0 ? tag : NULL);
	if (rc == 0 && gto && semver_of(version, semver, sizeof(semver))) {
		snprintf(tag, sizeof(tag), "%s@v%s", model, semver);
		cm_buf_reset(&b);
		cm_buf_printf(&b, "%s: register version v%s (%s)\n", model, semver, version);
		details_append(&b, model, &v, rec, event_id, who);
		rc = enqueue_row(c, event_id, "register", model, version, NULL, commit, b.data, tag);
	}
done:
	cm_buf_free(&b);
	json_decref(rec);
	return rc;
}

/* A GTO stage assignment or unassignment; the counter is chosen when it is made. */
static int enqueue_alias(struct reg_conn *c, int64_t event_id, const struct reg_actor *who,
			 const char *kind, const char *model, const char *version,
			 const char *alias, const char *before)
{
	struct reg_version v;
	struct cm_buf b = { 0 };
	json_t *rec = NULL;
	int rc;

	rc = version_load(c, model, version, &v, &rec);
	if (rc < 0)
		goto done;
	if (!strcmp(kind, "assign")) {
		cm_buf_printf(&b, "%s: %s -> %s", model, alias, version);
		if (before && before[0])
			cm_buf_printf(&b, " (was %s)", before);
		cm_buf_printf(&b, ", ");
		validation_append(&b, rec);
		cm_buf_printf(&b, "\n");
	} else {
		cm_buf_printf(&b, "%s: %s cleared (was %s)\n", model, alias, version);
	}
	cm_buf_printf(&b, "\nalias: %s\n", alias);
	details_append(&b, model, &v, rec, event_id, who);
	rc = enqueue_row(c, event_id, kind, model, version, alias, rec_str(rec, "git_commit"), b.data,
			 NULL);
done:
	cm_buf_free(&b);
	json_decref(rec);
	return rc;
}

int gs_event_enqueue(struct reg_conn *c, int64_t event_id, const struct reg_actor *who,
		     const char *kind, const char *model, const char *version, const char *alias,
		     const char *before, const char *after, json_t *detail)
{
	int seal = !strcmp(kind, "version.seal"), import = !strcmp(kind, "import");
	int set = !strcmp(kind, "alias.set"), del = !strcmp(kind, "alias.delete");
	char format[GS_TAG_MAX] = "";
	struct db_stmt *s;
	int gto = 0, on = 0;
	int rc = 0;
	int src;

	if (!(seal || import || set || del) || !model)
		return 0;
	DB_STMT(c, GIT_ENABLED, s);
	src = db_step(c, s, "reading the git configuration");
	if (src > 0) {
		on = 1;
		gto = db_col_int(s, 0);
		db_col_text(s, 1, format, sizeof(format));
	}
	db_reset(s);
	if (src < 0)
		return src;
	if (!on)
		return 0;
	if (seal && version) {
		rc = enqueue_version(c, event_id, who, model, version, gto, format);
	} else if (import) {
		size_t i;
		json_t *x;

		json_array_foreach(json_object_get(detail, "versions"), i, x) {
			if (rc == 0 && json_is_string(x))
				rc = enqueue_version(c, event_id, who, model, json_string_value(x), gto,
						     format);
		}
	} else if (set && gto && alias && after && !(before && !strcmp(before, after))) {
		/* A canary percent change keeps the version: no stage change for GTO. */
		rc = enqueue_alias(c, event_id, who, "assign", model, after, alias, before);
	} else if (del && gto && alias && before) {
		rc = enqueue_alias(c, event_id, who, "unassign", model, before, alias, NULL);
	}
done:
	return rc;
}

/* ---- the worker's wake-up ---- */

struct reg_git_worker {
	struct reg_store *st;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int kicked;
	int now;           /* the next run ignores backoff (REG_GIT_RUN_NOW) */
	atomic_int stop;
	reg_git_report_cb cb;
	void *ctx;
};

/* The store's observer: a commit queued deliveries, maybe tags. */
static void gs_observe(void *ctx)
{
	struct reg_git_worker *w = ctx;

	pthread_mutex_lock(&w->mu);
	w->kicked = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* ---- git operations (no registry lock held) ---- */

/* The last libgit2 error as text. */
static const char *git_msg(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown libgit2 error";
}

enum gs_outcome {
	GS_MADE,   /* the tag exists at the right commit (made now or before) */
	GS_FAILED, /* permanent: reason set */
	GS_RETRY,  /* transient: try again later */
};

struct gs_item {
	int64_t id, created_us, attempts, next_at;
	char kind[16];
	char model[REG_NAME_MAX], version[REG_NAME_MAX], alias[REG_NAME_MAX];
	char *commit, *message, *tag;
	/* outcome */
	enum gs_outcome out;
	const char *reason;          /* "conflict", "missing_commit", "invalid" */
	int existing;                /* the tag was already there */
	char sha[GIT_OID_HEXSZ + 1]; /* the commit the tag is at */
	git_oid tag_oid;             /* the tag object (or commit, for a lightweight tag) */
	git_oid commit_oid;
	char err[GS_MSG_MAX * 2];
};

static void items_free(struct gs_item *it, size_t n)
{
	for (size_t i = 0; it && i < n; i++) {
		free(it[i].commit);
		free(it[i].message);
		free(it[i].tag);
	}
	free(it);
}

static void item_set(struct gs_item *it, enum gs_outcome out, const char *reason,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void item_set(struct gs_item *it, enum gs_outcome out, const char *reason, const char *fmt,
		     ...)
{
	va_list ap;

	it->out = out;
	it->reason = reason;
	va_start(ap, fmt);
	vsnprintf(it->err, sizeof(it->err), fmt, ap);
	va_end(ap);
}

/* Opens the repository at path exactly (never a parent's). */
static int repo_open(const char *path, git_repository **out, char *err, size_t n)
{
	int grc = git_repository_open_ext(out, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);

	if (grc < 0) {
		snprintf(err, n, "cannot open git repository %s: %s", path,
			 grc == GIT_ENOTFOUND ? "no repository there" : git_msg());
		return grc == GIT_ENOTFOUND ? -ENOENT : -EIO;
	}
	return 0;
}

/*
 * Whether tags can be written: a read-only repository (modes, a read-only
 * mount, immutable directories) is reported plainly before libgit2 tries,
 * and fails on a path where it leaks.
 */
static int repo_writable(git_repository *repo, char *err, size_t n)
{
	static const char *const dirs[] = { "objects", "refs/tags", NULL };
	const char *common = git_repository_commondir(repo);

	for (int i = 0; common && dirs[i]; i++) {
		char path[GS_PATH_MAX];

		snprintf(path, sizeof(path), "%s%s%s", common,
			 common[0] && common[strlen(common) - 1] == '/' ? "" : "/", dirs[i]);
		if (access(path, W_OK) < 0 && errno != ENOENT) {
			snprintf(err, n, "the repository is not writable: %s: %s", path,
				 strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/*
 * Finds the commit a version's git_commit names. GS_MADE with *out, or
 * GS_FAILED (missing_commit) when it is absent, not hex, ambiguous or not a
 * commit, or GS_RETRY when the repository cannot be read.
 */
static enum gs_outcome commit_find(git_repository *repo, struct gs_item *it, git_object **out)
{
	const char *hex = it->commit;
	git_object *obj = NULL;
	size_t len;
	git_oid oid;
	int grc;

	if (!hex || !hex[0]) {
		item_set(it, GS_FAILED, "missing_commit",
			 "%s/%s has no git_commit in its metadata: no tag can be made", it->model,
			 it->version);
		return it->out;
	}
	len = strlen(hex);
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)hex[i]))
			len = 0;
	if (len < 4 || len > GIT_OID_HEXSZ || git_oid_fromstrn(&oid, hex, len) < 0) {
		item_set(it, GS_FAILED, "missing_commit", "%s/%s: git_commit '%s' is not a commit id",
			 it->model, it->version, hex);
		return it->out;
	}
	grc = git_object_lookup_prefix(&obj, repo, &oid, len, GIT_OBJECT_ANY);
	if (grc == GIT_ENOTFOUND || grc == GIT_EAMBIGUOUS) {
		item_set(it, GS_FAILED, "missing_commit", "%s/%s: commit %s is %s the repository",
			 it->model, it->version, hex,
			 grc == GIT_ENOTFOUND ? "not in" : "ambiguous in");
		return it->out;
	}
	if (grc < 0) {
		item_set(it, GS_RETRY, NULL, "looking up commit %s: %s", hex, git_msg());
		return it->out;
	}
	grc = git_object_peel(out, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (grc < 0) {
		item_set(it, GS_FAILED, "missing_commit", "%s/%s: %s is not a commit", it->model,
			 it->version, hex);
		return it->out;
	}
	git_oid_cpy(&it->commit_oid, git_object_id(*out));
	git_oid_tostr(it->sha, sizeof(it->sha), &it->commit_oid);
	return GS_MADE;
}

/* "<model>#...#<n>" or "<model>@...#<n>": n, or -1. */
static int64_t gto_counter(const char *tag, const char *model)
{
	size_t ml = strlen(model);
	const char *hash;
	char *end = NULL;
	long long n;

	if (strncmp(tag, model, ml) || (tag[ml] != '#' && tag[ml] != '@'))
		return -1;
	hash = strrchr(tag + ml, '#');
	if (!hash || !isdigit((unsigned char)hash[1]))
		return -1;
	errno = 0;
	n = strtoll(hash + 1, &end, 10);
	if (errno || *end || n < 0)
		return -1;
	return n;
}

/* One more than the highest counter on an annotated GTO tag of the model. */
static int gto_next(git_repository *repo, const char *model, int64_t *out, char *err, size_t n)
{
	git_reference_iterator *iter = NULL;
	git_odb *odb = NULL;
	char glob[GS_TAG_MAX];
	const char *name;
	int64_t max = 0;
	int grc;

	snprintf(glob, sizeof(glob), "refs/tags/%s[#@]*", model);
	if (git_repository_odb(&odb, repo) < 0 ||
	    git_reference_iterator_glob_new(&iter, repo, glob) < 0) {
		snprintf(err, n, "listing tags: %s", git_msg());
		git_odb_free(odb);
		return -EIO;
	}
	while ((grc = git_reference_next_name(&name, iter)) == 0) {
		int64_t k = gto_counter(name + strlen("refs/tags/"), model);
		git_reference *ref = NULL;
		git_object_t type;
		size_t len;

		if (k <= max)
			continue;
		/* Only annotated tags count (GTO ignores lightweight ones). */
		if (git_reference_lookup(&ref, repo, name) == 0 && git_reference_target(ref) &&
		    git_odb_read_header(&len, &type, odb, git_reference_target(ref)) == 0 &&
		    type == GIT_OBJECT_TAG)
			max = k;
		git_reference_free(ref);
	}
	git_reference_iterator_free(iter);
	git_odb_free(odb);
	if (grc != GIT_ITEROVER) {
		snprintf(err, n, "listing tags: %s", git_msg());
		return -EIO;
	}
	*out = max + 1;
	return 0;
}

/*
 * A process killed while writing a ref leaves its lock file behind, and git
 * then refuses the ref for good. Only the holder of the store's writer lock
 * makes these tags, so a lock on one of their names that is older than a ref
 * update could ever take is left by a crash: remove it. Returns 1 if removed.
 */
static int lock_stale_remove(git_repository *repo, const char *tag)
{
	char path[GS_PATH_MAX];
	struct stat sb;
	const char *dir = git_repository_commondir(repo);

	if (!dir || snprintf(path, sizeof(path), "%s%srefs/tags/%s.lock", dir,
			     dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", tag) >= (int)sizeof(path))
		return 0;
	if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (int64_t)sb.st_mtime * 1000000 > cm_time_now_us() - GS_STALE_LOCK_US)
		return 0;
	return unlink(path) == 0;
}

/* Makes the item's annotated tag (its name is set); fills the outcome. */
static void tag_make(git_repository *repo, const struct gs_cfg *cfg, struct gs_item *it,
		     git_object *commit)
{
	git_signature *sig = NULL;
	git_reference *ref = NULL;
	git_object *peeled = NULL;
	char ref_name[GS_TAG_MAX + 16];
	int grc;

	if (!ref_name_ok(it->tag)) {
		item_set(it, GS_FAILED, "invalid", "'%s' is not a valid git tag name", it->tag);
		return;
	}
	/* The tagger time is when the change happened: a retry makes the same object. */
	if (git_signature_new(&sig, cfg->tagger_name, cfg->tagger_email,
			      (git_time_t)(it->created_us / 1000000), 0) < 0) {
		item_set(it, GS_FAILED, "invalid", "tagger '%s <%s>': %s", cfg->tagger_name,
			 cfg->tagger_email, git_msg());
		return;
	}
	grc = git_tag_create(&it->tag_oid, repo, it->tag, commit, sig, it->message, 0);
	if (grc == GIT_ELOCKED && lock_stale_remove(repo, it->tag))
		grc = git_tag_create(&it->tag_oid, repo, it->tag, commit, sig, it->message, 0);
	git_signature_free(sig);
	if (grc == 0) {
		it->out = GS_MADE;
		return;
	}
	if (grc == GIT_EINVALIDSPEC) {
		item_set(it, GS_FAILED, "invalid", "'%s' is not a valid git tag name: %s", it->tag,
			 git_msg());
		return;
	}
	if (grc != GIT_EEXISTS) {
		item_set(it, GS_RETRY, NULL, "making tag %s: %s", it->tag, git_msg());
		return;
	}
	/* There already: the same commit is success (a retry), another is a conflict. */
	snprintf(ref_name, sizeof(ref_name), "refs/tags/%s", it->tag);
	grc = git_reference_lookup(&ref, repo, ref_name);
	if (grc == 0)
		grc = git_reference_peel(&peeled, ref, GIT_OBJECT_COMMIT);
	if (grc < 0) {
		item_set(it, GS_FAILED, "conflict", "tag %s exists but does not point at a commit",
			 it->tag);
	} else if (git_oid_equal(git_object_id(peeled), &it->commit_oid)) {
		git_oid_cpy(&it->tag_oid, git_reference_target(ref));
		it->existing = 1;
		it->out = GS_MADE;
	} else {
		char there[GIT_OID_HEXSZ + 1];

		git_oid_tostr(there, sizeof(there), git_object_id(peeled));
		item_set(it, GS_FAILED, "conflict", "tag %s already exists at %.12s, not at %.12s "
			 "(the git_commit of %s/%s); it was left as it is", it->tag, there, it->sha,
			 it->model, it->version);
	}
	git_object_free(peeled);
	git_reference_free(ref);
}

/* ---- pushing ---- */

/* What the remote callbacks share: credentials state and the items being pushed. */
struct gs_push {
	const char *token_file;
	int tries;
	int agent_tried;
	atomic_int *stop;
	struct gs_item **items;
	size_t n;
};

/* Token file: one line, "TOKEN" or "USER:TOKEN". */
static int token_read(const char *path, char *user, size_t un, char *token, size_t tn)
{
	char buf[GS_TOKEN_MAX];
	char *colon, *nl;
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		git_error_set(GIT_ERROR_NET, "cannot read token file %s: %s", path, strerror(errno));
		return -1;
	}
	setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the token left in freed memory */
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	nl = strpbrk(buf, "\r\n");
	if (nl)
		*nl = '\0';
	colon = strchr(buf, ':');
	if (colon) {
		*colon = '\0';
		snprintf(user, un, "%s", buf);
		snprintf(token, tn, "%s", colon + 1);
	} else {
		snprintf(token, tn, "%s", buf);
	}
	explicit_bzero(buf, sizeof(buf));
	if (!token[0]) {
		git_error_set(GIT_ERROR_NET, "token file %s holds no token", path);
		return -1;
	}
	return 0;
}

/*
 * Credentials for the remote: ssh-agent for ssh URLs, the token file for
 * HTTPS; a few tries, then the error (libgit2 asks again after a refusal).
 */
static int cred_cb(git_credential **out, const char *url, const char *user_from_url,
		   unsigned int allowed, void *payload)
{
	struct gs_push *p = payload;
	const char *user = user_from_url && user_from_url[0] ? user_from_url : NULL;

	(void)url;
	if (++p->tries > GS_CRED_TRIES) {
		git_error_set(GIT_ERROR_NET, "the remote refused the credentials offered");
		return -1;
	}
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && !p->agent_tried) {
		p->agent_tried = 1;
		return git_credential_ssh_key_from_agent(out, user ? user : "git");
	}
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && p->token_file) {
		char u[256] = "", token[GS_TOKEN_MAX] = "";
		int rc = token_read(p->token_file, u, sizeof(u), token, sizeof(token));

		if (rc == 0)
			rc = git_credential_userpass_plaintext_new(
				out, u[0] ? u : user ? user : "modelfs", token);
		explicit_bzero(token, sizeof(token));
		return rc;
	}
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user ? user : "git");
	git_error_set(GIT_ERROR_NET, "the remote asks for credentials modelfs has none of "
		      "(ssh-agent for ssh, --git-token-file for https)");
	return -1;
}

static int push_progress_cb(unsigned int current, unsigned int total, size_t bytes, void *payload)
{
	struct gs_push *p = payload;

	(void)current;
	(void)total;
	(void)bytes;
	return p->stop && atomic_load(p->stop) ? -1 : 0;
}

static int push_update_cb(const char *refname, const char *status, void *payload)
{
	struct gs_push *p = payload;
	const char *t = !strncmp(refname, "refs/tags/", 10) ? refname + 10 : refname;

	for (size_t i = 0; i < p->n; i++) {
		struct gs_item *it = p->items[i];

		if (strcmp(it->tag, t))
			continue;
		if (status)
			item_set(it, GS_FAILED, "conflict", "the remote refused tag %s: %s", it->tag,
				 status);
		else
			it->out = GS_MADE;
	}
	return 0;
}

/*
 * The push URL of a configured remote: remote.<name>.pushurl, else .url, with
 * url.<base>.pushInsteadOf / insteadOf applied (the longest match wins, as in
 * git). Written out here, not left to git_remote_lookup(): libgit2 1.5 leaks
 * ~20 KiB of PCRE2 match data per config entry its glob iterator skips,
 * several times per lookup, which a daemon pushing all day cannot afford.
 */
static int remote_url(git_repository *repo, const char *name, char **out)
{
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	const char *url = NULL;
	char key[GS_TAG_MAX + 32];
	size_t best = 0;
	int best_push = 0;
	const char *base = NULL;
	int explicit_push = 0;
	int grc;

	grc = git_repository_config_snapshot(&cfg, repo);
	if (grc < 0)
		return grc;
	snprintf(key, sizeof(key), "remote.%s.pushurl", name);
	/* As in git, pushInsteadOf does not rewrite an explicit pushurl. */
	if (git_config_get_string(&url, cfg, key) == 0) {
		explicit_push = 1;
	} else {
		snprintf(key, sizeof(key), "remote.%s.url", name);
		grc = git_config_get_string(&url, cfg, key);
		if (grc < 0) {
			git_error_set(GIT_ERROR_CONFIG, "no remote named '%s' (no %s)", name, key);
			goto done;
		}
	}
	grc = git_config_iterator_new(&it, cfg);
	while (grc == 0 && git_config_next(&e, it) == 0) {
		size_t nl = strlen(e->name), vl = strlen(e->value ? e->value : "");
		int push = nl > 18 && !strcmp(e->name + nl - 14, ".pushinsteadof");
		int plain = nl > 14 && !strcmp(e->name + nl - 10, ".insteadof");

		if (strncmp(e->name, "url.", 4) || !(push || plain) || (push && explicit_push) || !vl ||
		    strncmp(url, e->value, vl))
			continue;
		/* pushInsteadOf beats insteadOf; then the longest prefix. */
		if ((push && !best_push) || ((push == best_push) && vl > best)) {
			best = vl;
			best_push = push;
			base = e->name; /* "url.<base>.insteadof": <base> is cut out below */
			snprintf(key, sizeof(key), "%.*s", (int)(nl - 4 - (push ? 14 : 10)), e->name + 4);
		}
	}
	if (grc == 0) {
		size_t len = strlen(url) + (base ? strlen(key) : 0) + 1;

		*out = malloc(len);
		if (!*out) {
			git_error_set_oom();
			grc = -1;
		} else if (base) {
			snprintf(*out, len, "%s%s", key, url + best);
		} else {
			snprintf(*out, len, "%s", url);
		}
	}
done:
	git_config_iterator_free(it);
	git_config_free(cfg);
	return grc;
}

/* An in-memory remote for the configured one (see remote_url). */
static int remote_open(git_repository *repo, const char *name, git_remote **out)
{
	git_remote_create_options o;
	char *url = NULL;
	int grc = remote_url(repo, name, &url);

	if (grc < 0)
		return grc;
	git_remote_create_options_init(&o, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	o.repository = repo;
	o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	grc = git_remote_create_with_opts(out, url, &o);
	free(url);
	return grc;
}

/*
 * Pushes the items' tags to the remote. Each item ends GS_MADE (pushed, or
 * the remote has it already at the same commit), GS_FAILED (a tag of that
 * name at another commit there) or GS_RETRY (the remote could not be
 * reached or the push failed).
 */
static void push_items(git_repository *repo, const struct gs_cfg *cfg, struct gs_item **items,
		       size_t n, atomic_int *stop)
{
	struct gs_push p = { .token_file = cfg->token_file, .stop = stop, .items = items, .n = n };
	git_remote_callbacks cbs;
	git_push_options opts;
	const git_remote_head **heads = NULL;
	struct gs_item **sent = NULL;
	git_remote *remote = NULL;
	git_strarray specs = { 0 };
	size_t nheads = 0;
	int grc;

	git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
	git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	for (size_t i = 0; i < n; i++)
		item_set(items[i], GS_RETRY, NULL, "not pushed yet");
	grc = remote_open(repo, cfg->remote, &remote);
	if (grc < 0) {
		for (size_t i = 0; i < n; i++)
			item_set(items[i], GS_RETRY, NULL, "remote '%s' of %s: %s", cfg->remote,
				 cfg->repo, git_msg());
		return;
	}
	cbs.credentials = cred_cb;
	cbs.push_transfer_progress = push_progress_cb;
	cbs.push_update_reference = push_update_cb;
	cbs.payload = &p;
	grc = git_remote_connect(remote, GIT_DIRECTION_PUSH, &cbs, NULL, NULL);
	if (grc == 0)
		grc = git_remote_ls(&heads, &nheads, remote);
	if (grc < 0) {
		for (size_t i = 0; i < n; i++)
			item_set(items[i], GS_RETRY, NULL, "connecting to remote '%s': %s", cfg->remote,
				 git_msg());
		goto done;
	}
	specs.strings = calloc(n, sizeof(char *));
	sent = calloc(n, sizeof(*sent));
	if (!specs.strings || !sent)
		goto done;
	for (size_t i = 0; i < n; i++) {
		struct gs_item *it = items[i];
		char ref[GS_TAG_MAX + 16], peeled[GS_TAG_MAX + 16];
		const git_oid *at = NULL, *at_peeled = NULL;

		snprintf(ref, sizeof(ref), "refs/tags/%s", it->tag);
		snprintf(peeled, sizeof(peeled), "refs/tags/%s^{}", it->tag);
		for (size_t h = 0; h < nheads; h++) {
			if (!strcmp(heads[h]->name, ref))
				at = &heads[h]->oid;
			else if (!strcmp(heads[h]->name, peeled))
				at_peeled = &heads[h]->oid;
		}
		if (!at) {
			size_t len = strlen(ref) * 2 + 2;
			char *spec = malloc(len);

			if (!spec)
				continue; /* stays GS_RETRY */
			snprintf(spec, len, "%s:%s", ref, ref);
			sent[specs.count] = it;
			specs.strings[specs.count++] = spec;
		} else if (git_oid_equal(at, &it->tag_oid) ||
			   git_oid_equal(at_peeled ? at_peeled : at, &it->commit_oid)) {
			it->out = GS_MADE;
			it->existing = 1;
		} else {
			char there[GIT_OID_HEXSZ + 1];

			git_oid_tostr(there, sizeof(there), at_peeled ? at_peeled : at);
			item_set(it, GS_FAILED, "conflict", "remote '%s' has tag %s at %.12s, not at "
				 "%.12s; it was left as it is", cfg->remote, it->tag, there, it->sha);
		}
	}
	if (specs.count == 0)
		goto done;
	/* Reuses the connection: the push negotiates against the refs listed above. */
	opts.callbacks = cbs;
	grc = git_remote_push(remote, &specs, &opts);
	for (size_t i = 0; i < specs.count; i++) {
		struct gs_item *it = sent[i];

		if (grc < 0 && it->out != GS_FAILED)
			item_set(it, GS_RETRY, NULL, "pushing to remote '%s': %s", cfg->remote,
				 git_msg());
		else if (grc == 0 && it->out == GS_RETRY)
			it->out = GS_MADE; /* no per-ref status reported: the push succeeded */
	}
done:
	for (size_t i = 0; i < specs.count; i++)
		free(specs.strings[i]);
	free(specs.strings);
	free(sent);
	if (remote) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
}

/* ---- running the queue ---- */

struct gs_run {
	struct reg_store *st;
	struct gs_cfg cfg;
	git_repository *repo;
	int repo_rc;                 /* 0 open, 1 not tried yet, <0 failed (repo_err) */
	char repo_err[GS_MSG_MAX * 2];
	unsigned flags;
	atomic_int *stop;
	reg_git_report_cb cb;
	void *ctx;
	struct reg_git_run_stats stats;
	int64_t wake_us;             /* when something is due again; 0: nothing waits */
};

static void say(struct gs_run *r, enum reg_git_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(struct gs_run *r, enum reg_git_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!r->cb)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->cb(r->ctx, level, msg);
}

static void wake_at(struct gs_run *r, int64_t us)
{
	if (!r->wake_us || us < r->wake_us)
		r->wake_us = us;
}

static int64_t backoff_us(int64_t attempts)
{
	int64_t d = GS_BACKOFF_MIN_US;

	for (int64_t i = 1; i < attempts && d < GS_BACKOFF_MAX_US; i++)
		d *= 2;
	return d < GS_BACKOFF_MAX_US ? d : GS_BACKOFF_MAX_US;
}

static int repo_get(struct gs_run *r)
{
	if (r->repo_rc == 1)
		r->repo_rc = repo_open(r->cfg.repo, &r->repo, r->repo_err, sizeof(r->repo_err));
	return r->repo_rc;
}

/* Up to GS_BATCH items in `state`, in queue order. */
static int items_load(struct reg_store *st, const char *state, struct gs_item **out, size_t *n)
{
	struct reg_conn *c = db_read_begin(st);
	struct gs_item *it = NULL;
	size_t cnt = 0;
	struct db_stmt *s;
	int rc = 0;
	int src;

	it = calloc(GS_BATCH, sizeof(*it));
	if (!it) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	DB_STMT(c, GIT_OPEN_ITEMS, s);
	db_bind_text(s, 1, state);
	db_bind_int(s, 2, GS_BATCH);
	while ((src = db_step(c, s, "listing the git queue")) > 0 && cnt < GS_BATCH) {
		struct gs_item *x = &it[cnt++];

		x->id = db_col_int64(s, 0);
		x->created_us = db_col_int64(s, 1);
		db_col_text(s, 2, x->kind, sizeof(x->kind));
		db_col_text(s, 3, x->model, sizeof(x->model));
		db_col_text(s, 4, x->version, sizeof(x->version));
		db_col_text(s, 5, x->alias, sizeof(x->alias));
		x->commit = db_col_strdup(s, 6);
		x->message = db_col_strdup(s, 7);
		x->tag = db_col_strdup(s, 8);
		x->attempts = db_col_int64(s, 9);
		x->next_at = db_col_int64(s, 10);
		if (!x->message) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	if (rc == 0 && src < 0)
		rc = src;
	db_reset(s);
	if (rc == 0) {
		*out = it;
		*n = cnt;
		it = NULL;
	}
done:
	db_read_end(c);
	items_free(it, cnt);
	return rc;
}

/* Records an outcome and its event in one transaction. `pushed`: the push phase. */
static int outcome_record(struct gs_run *r, struct gs_item *it, int pushed)
{
	struct reg_conn *c = NULL;
	json_t *detail = NULL;
	const char *kind;
	struct db_stmt *s;
	int64_t now = cm_time_now_us();
	int rc;

	detail = json_pack("{s:I, s:s, s:s?}", "queue_id", (json_int_t)it->id, "kind", it->kind,
			   "tag", it->tag);
	if (!detail)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = db_write_begin(r->st, &c);
	if (rc < 0)
		goto done;
	switch (it->out) {
	case GS_MADE:
		if (pushed) {
			DB_STMT(c, GIT_ITEM_DONE, s);
			db_bind_int64(s, 1, it->id);
			db_bind_int64(s, 2, now);
			rc = db_exec_stmt(c, s, "recording a pushed tag");
			kind = "git.push";
			json_object_set_new(detail, "remote", json_string(r->cfg.remote));
		} else {
			DB_STMT(c, GIT_ITEM_MADE, s);
			db_bind_int64(s, 1, it->id);
			db_bind_text(s, 2, r->cfg.remote ? "pushing" : "done");
			db_bind_text(s, 3, it->sha);
			if (!r->cfg.remote)
				db_bind_int64(s, 4, now);
			rc = db_exec_stmt(c, s, "recording a made tag");
			if (rc == 0) {
				DB_STMT(c, GIT_TAG_RECORD, s);
				db_bind_text(s, 1, it->tag);
				db_bind_text(s, 2, it->model);
				db_bind_text(s, 3, it->version);
				db_bind_text(s, 4, it->sha);
				db_bind_text(s, 5, "sync");
				db_bind_int64(s, 6, now);
				rc = db_exec_stmt(c, s, "remembering a tag");
			}
			kind = "git.tag";
		}
		json_object_set_new(detail, "commit", json_string(it->sha));
		if (it->existing)
			json_object_set_new(detail, "existing", json_true());
		break;
	case GS_FAILED:
		DB_STMT(c, GIT_ITEM_FAIL, s);
		db_bind_int64(s, 1, it->id);
		db_bind_text(s, 2, it->reason);
		db_bind_text(s, 3, it->err);
		db_bind_int64(s, 4, now);
		rc = db_exec_stmt(c, s, "recording a failed tag");
		kind = !strcmp(it->reason, "conflict")	     ? "git.conflict"
		       : !strcmp(it->reason, "missing_commit") ? "git.missing_commit"
							       : "git.error";
		json_object_set_new(detail, "error", json_string(it->err));
		json_object_set_new(detail, "reason", json_string(it->reason));
		break;
	case GS_RETRY:
	default:
		it->next_at = now + backoff_us(it->attempts + 1);
		DB_STMT(c, GIT_ITEM_RETRY, s);
		db_bind_int64(s, 1, it->id);
		db_bind_int64(s, 2, it->next_at);
		db_bind_text(s, 3, it->err);
		db_bind_int64(s, 4, now);
		rc = db_exec_stmt(c, s, "recording a tag to retry");
		/* One event when an item first fails, not one per retry. */
		kind = it->attempts == 0 ? "git.error" : NULL;
		json_object_set_new(detail, "error", json_string(it->err));
		json_object_set_new(detail, "retry", json_true());
		break;
	}
	if (rc == 0 && kind)
		rc = reg_event_add(c, &gs_actor, kind, it->model, it->version,
				   it->alias[0] ? it->alias : NULL, NULL, it->tag, detail);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	json_decref(detail);
	return rc;
}

/* Commits the tag name chosen for an item before the tag is made. */
static int tag_fix(struct gs_run *r, struct gs_item *it, const char *tag)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int rc;

	it->tag = strdup(tag);
	if (!it->tag)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = db_write_begin(r->st, &c);
	if (rc < 0)
		return rc;
	DB_STMT(c, GIT_TAG_FIX, s);
	db_bind_int64(s, 1, it->id);
	db_bind_text(s, 2, tag);
	rc = db_exec_stmt(c, s, "fixing a tag name");
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	return rc;
}

/* Makes one item's tag; fills its outcome. Returns -errno only for db failures. */
static int item_make(struct gs_run *r, struct gs_item *it)
{
	git_object *commit = NULL;
	char tag[GS_TAG_MAX];
	int rc = 0;

	if (repo_get(r) < 0) {
		item_set(it, GS_RETRY, NULL, "%s", r->repo_err);
		return 0;
	}
	if (commit_find(r->repo, it, &commit) != GS_MADE)
		return 0;
	if (repo_writable(r->repo, it->err, sizeof(it->err)) < 0) {
		it->out = GS_RETRY;
		goto done;
	}
	if (!it->tag) {
		char semver[REG_NAME_MAX];
		int64_t n = 0;

		if (!strcmp(it->kind, "version")) {
			if (reg_git_tag_name(r->cfg.tag_format, it->model, it->version, tag,
					     sizeof(tag)) < 0) {
				item_set(it, GS_FAILED, "invalid", "%s", cm_err_msg());
				goto done;
			}
		} else if (!strcmp(it->kind, "register") &&
			   semver_of(it->version, semver, sizeof(semver))) {
			snprintf(tag, sizeof(tag), "%s@v%s", it->model, semver);
		} else if (!strcmp(it->kind, "assign") || !strcmp(it->kind, "unassign")) {
			if (gto_next(r->repo, it->model, &n, it->err, sizeof(it->err)) < 0) {
				it->out = GS_RETRY;
				goto done;
			}
			snprintf(tag, sizeof(tag), "%s#%s%s#%lld", it->model, it->alias,
				 strcmp(it->kind, "assign") ? "!" : "", (long long)n);
		} else {
			item_set(it, GS_FAILED, "invalid", "queue item %lld of kind '%s' has no tag name",
				 (long long)it->id, it->kind);
			goto done;
		}
		rc = tag_fix(r, it, tag);
		if (rc < 0)
			goto done;
		fault("named");
	}
	tag_make(r->repo, &r->cfg, it, commit);
	if (it->out == GS_MADE)
		fault("made");
done:
	git_object_free(commit);
	return rc;
}

static void item_report(struct gs_run *r, struct gs_item *it, int pushed)
{
	const char *what = it->tag ? it->tag : it->kind;

	switch (it->out) {
	case GS_MADE:
		if (pushed) {
			r->stats.pushed++;
			say(r, REG_GIT_INFO, "tag %s pushed to %s%s", what, r->cfg.remote,
			    it->existing ? " (already there)" : "");
		} else {
			r->stats.made++;
			say(r, REG_GIT_INFO, "tag %s %s at %.12s for %s/%s", what,
			    it->existing ? "already" : "made", it->sha, it->model, it->version);
		}
		break;
	case GS_FAILED:
		r->stats.failed++;
		say(r, REG_GIT_ERROR, "tag %s for %s/%s failed (%s): %s", what, it->model,
		    it->version, it->reason, it->err);
		break;
	case GS_RETRY:
	default:
		r->stats.retry++;
		say(r, REG_GIT_WARN, "tag %s for %s/%s: %s (attempt %lld, next in %llds)", what,
		    it->model, it->version, it->err, (long long)it->attempts + 1,
		    (long long)((it->next_at - cm_time_now_us() + 999999) / 1000000));
		break;
	}
}

/* Makes pending tags in order; stops at the first that must wait. */
static int make_phase(struct gs_run *r)
{
	for (;;) {
		struct gs_item *items = NULL;
		size_t n = 0;
		int rc = items_load(r->st, "pending", &items, &n);

		for (size_t i = 0; rc == 0 && i < n; i++) {
			struct gs_item *it = &items[i];

			if (r->stop && atomic_load(r->stop)) {
				items_free(items, n);
				return 0;
			}
			if (!(r->flags & REG_GIT_RUN_NOW) && it->next_at > cm_time_now_us()) {
				wake_at(r, it->next_at);
				r->stats.retry += (int64_t)(n - i);
				items_free(items, n);
				return 0;
			}
			rc = item_make(r, it);
			if (rc == 0)
				rc = outcome_record(r, it, 0);
			if (rc < 0)
				break;
			item_report(r, it, 0);
			if (it->out == GS_RETRY) {
				/* Later items wait: GTO counters must follow event order. */
				wake_at(r, it->next_at);
				r->stats.retry += (int64_t)(n - i - 1);
				items_free(items, n);
				return 0;
			}
		}
		items_free(items, n);
		if (rc < 0 || n < GS_BATCH)
			return rc;
	}
}

/* Looks up a made tag again for the push: its object and commit. */
static void push_prepare(struct gs_run *r, struct gs_item *it)
{
	git_reference *ref = NULL;
	git_object *peeled = NULL;
	char name[GS_TAG_MAX + 16];

	snprintf(name, sizeof(name), "refs/tags/%s", it->tag ? it->tag : "");
	if (!it->tag || git_reference_lookup(&ref, r->repo, name) < 0 ||
	    git_reference_peel(&peeled, ref, GIT_OBJECT_COMMIT) < 0) {
		item_set(it, GS_FAILED, "conflict", "tag %s is no longer in %s, so it cannot be "
			 "pushed (git-sync --retry makes it again)", it->tag ? it->tag : "?",
			 r->cfg.repo);
	} else {
		git_oid_cpy(&it->tag_oid, git_reference_target(ref));
		git_oid_cpy(&it->commit_oid, git_object_id(peeled));
		git_oid_tostr(it->sha, sizeof(it->sha), &it->commit_oid);
		it->out = GS_RETRY;
	}
	git_object_free(peeled);
	git_reference_free(ref);
}

/* Tags made for a remote that is no longer configured: nothing is left to do. */
static int push_drop(struct gs_run *r)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int rc = db_write_begin(r->st, &c);

	if (rc < 0)
		return rc;
	DB_STMT(c, GIT_PUSH_DROP, s);
	db_bind_int64(s, 1, cm_time_now_us());
	rc = db_exec_stmt(c, s, "closing items without a remote");
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	return rc;
}

/* Pushes made tags, all due ones in one push per batch. */
static int push_phase(struct gs_run *r)
{
	if (!r->cfg.remote)
		return push_drop(r);
	for (;;) {
		struct gs_item *items = NULL, **due = NULL;
		size_t n = 0, nd = 0;
		int64_t now = cm_time_now_us();
		int rc = items_load(r->st, "pushing", &items, &n);

		if (rc == 0 && n)
			due = calloc(n, sizeof(*due));
		if (rc == 0 && n && !due)
			rc = cm_err_set(-ENOMEM, "out of memory");
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (!(r->flags & REG_GIT_RUN_NOW) && items[i].next_at > now) {
				wake_at(r, items[i].next_at);
				r->stats.retry++;
				continue;
			}
			if (repo_get(r) < 0)
				item_set(&items[i], GS_RETRY, NULL, "%s", r->repo_err);
			else
				push_prepare(r, &items[i]);
			if (items[i].out == GS_RETRY && r->repo_rc == 0)
				due[nd++] = &items[i];
		}
		if (rc == 0 && nd && !(r->stop && atomic_load(r->stop))) {
			push_items(r->repo, &r->cfg, due, nd, r->stop);
			fault("pushed");
		}
		for (size_t i = 0; rc == 0 && i < n; i++) {
			struct gs_item *it = &items[i];

			if (!(r->flags & REG_GIT_RUN_NOW) && it->next_at > now)
				continue;
			rc = outcome_record(r, it, 1);
			if (rc == 0)
				item_report(r, it, 1);
			if (it->out == GS_RETRY)
				wake_at(r, it->next_at);
		}
		for (size_t i = 0; i < n; i++)
			if (items[i].out == GS_RETRY)
				nd = 0;
		free(due);
		items_free(items, n);
		/* A batch with items that must wait would come back: stop there. */
		if (rc < 0 || n < GS_BATCH || nd < n)
			return rc;
	}
}

static int run_locked(struct gs_run *r)
{
	struct reg_conn *c = db_read_begin(r->st);
	int rc = cfg_load(c, &r->cfg);

	db_read_end(c);
	if (rc < 0)
		return rc;
	r->repo_rc = 1;
	rc = make_phase(r);
	if (rc == 0 && !(r->stop && atomic_load(r->stop)))
		rc = push_phase(r);
	git_repository_free(r->repo);
	r->repo = NULL;
	cfg_free(&r->cfg);
	return rc;
}

int reg_git_sync_run(struct reg_store *st, unsigned flags, reg_git_report_cb cb, void *ctx,
		     struct reg_git_run_stats *out)
{
	struct gs_run r = { .st = st, .flags = flags, .cb = cb, .ctx = ctx };
	int rc;

	pthread_mutex_lock(&gs_run_mu);
	git_libgit2_init();
	rc = run_locked(&r);
	git_libgit2_shutdown();
	pthread_mutex_unlock(&gs_run_mu);
	if (rc == 0 && out)
		*out = r.stats;
	return rc;
}

/* ---- the worker ---- */

static void *worker_main(void *arg)
{
	struct reg_git_worker *w = arg;

	git_libgit2_init();
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct gs_run r = { .st = w->st, .stop = &w->stop, .cb = w->cb, .ctx = w->ctx };
		int64_t wait_us = GS_IDLE_US;
		struct timespec until;
		int rc;

		w->kicked = 0;
		r.flags = w->now ? REG_GIT_RUN_NOW : 0;
		w->now = 0;
		pthread_mutex_unlock(&w->mu);
		pthread_mutex_lock(&gs_run_mu);
		rc = run_locked(&r);
		pthread_mutex_unlock(&gs_run_mu);
		if (rc < 0 && rc != -ENOENT)
			say(&r, REG_GIT_ERROR, "git sync: %s", cm_err_describe(rc));
		if (r.wake_us) {
			int64_t d = r.wake_us - cm_time_now_us();

			wait_us = d < 0 ? 0 : d < GS_IDLE_US ? d : GS_IDLE_US;
		}
		cm_time_deadline(wait_us, &until);
		pthread_mutex_lock(&w->mu);
		while (!w->stop && !w->kicked &&
		       pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&w->mu);
	git_libgit2_shutdown();
	return NULL;
}

int reg_git_worker_start(struct reg_store *st, reg_git_report_cb cb, void *ctx,
			 struct reg_git_worker **out)
{
	struct reg_git_worker *w;
	pthread_condattr_t ca;
	int err;

	if (!st->writer.db)
		return cm_err_set(-EROFS, "the store is open read-only: no git worker");
	w = calloc(1, sizeof(*w));
	if (!w)
		return cm_err_set(-ENOMEM, "out of memory");
	w->st = st;
	w->cb = cb;
	w->ctx = ctx;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&gs_worker_mu);
	if (st->git_worker) {
		pthread_mutex_unlock(&gs_worker_mu);
		err = cm_err_set(-EBUSY, "a git worker already runs for this store");
		goto fail;
	}
	{
		/* The worker takes no signals: a daemon's stop signals belong to its main loop. */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		err = pthread_create(&w->thread, NULL, worker_main, w);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (err == 0)
		st->git_worker = w;
	pthread_mutex_unlock(&gs_worker_mu);
	if (err == 0 && reg_store_observer_add(st, gs_observe, w) < 0) {
		reg_git_worker_stop(w);
		return cm_err_set(-ENOSPC, "cannot start the git worker: too many observers");
	}
	if (err) {
		err = cm_err_set(-err, "cannot start the git worker: %s", strerror(err));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return err;
}

void reg_git_worker_wake(struct reg_git_worker *w, unsigned flags)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->kicked = 1;
	if (flags & REG_GIT_RUN_NOW)
		w->now = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void reg_git_worker_stop(struct reg_git_worker *w)
{
	if (!w)
		return;
	reg_store_observer_remove(w->st, gs_observe, w);
	pthread_mutex_lock(&gs_worker_mu);
	if (w->st->git_worker == w)
		w->st->git_worker = NULL;
	pthread_mutex_unlock(&gs_worker_mu);
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* ---- queue state for metrics and the API ---- */

int reg_git_status(struct reg_store *st, struct reg_git_status *out)
{
	struct reg_git_status g = { 0 };
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, GIT_ENABLED, s);
	src = db_step(c, s, "reading the git configuration");
	g.configured = src > 0;
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	DB_STMT(c, GIT_STATUS_STATES, s);
	while ((src = db_step(c, s, "reading the git queue")) > 0) {
		const char *state = db_col_str(s, 0);
		int64_t n = db_col_int64(s, 1);
		int64_t oldest = db_col_int64(s, 2);

		if (!state)
			continue;
		if (!strcmp(state, "pending"))
			g.pending = n;
		else if (!strcmp(state, "pushing"))
			g.pushing = n;
		else if (!strcmp(state, "failed"))
			g.failed = n;
		else if (!strcmp(state, "done"))
			g.done = n;
		if ((!strcmp(state, "pending") || !strcmp(state, "pushing")) &&
		    (!g.oldest_open_us || oldest < g.oldest_open_us))
			g.oldest_open_us = oldest;
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	DB_STMT(c, GIT_STATUS_REASONS, s);
	while ((src = db_step(c, s, "reading the git queue's failures")) > 0) {
		const char *reason = db_col_str(s, 0);

		if (reason && !strcmp(reason, "missing_commit"))
			g.missing_commit = db_col_int64(s, 1);
		else if (reason && !strcmp(reason, "conflict"))
			g.conflicts = db_col_int64(s, 1);
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	DB_STMT(c, GIT_STATUS_ERROR, s);
	src = db_step(c, s, "reading the git queue's last error");
	if (src > 0) {
		db_col_text(s, 0, g.last_error, sizeof(g.last_error));
		g.last_error_us = db_col_int64(s, 1);
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	*out = g;
done:
	db_read_end(c);
	return rc;
}

static json_t *time_or_null(struct db_stmt *s, int col)
{
	char ts[CM_TIME_RFC3339_LEN];

	if (db_col_null(s, col))
		return json_null();
	cm_time_format(db_col_int64(s, col), ts);
	return json_string(ts);
}

static json_t *text_or_null(struct db_stmt *s, int col)
{
	const unsigned char *t = db_col_ustr(s, col);

	return t ? json_string((const char *)t) : json_null();
}

int reg_git_queue_list(struct reg_store *st, const char *state, int64_t after_id, size_t limit,
		       json_t **out)
{
	static const char *const states[] = { "pending", "pushing", "done", "failed", NULL };
	struct reg_conn *c = NULL;
	json_t *arr = NULL;
	struct db_stmt *s;
	int rc = 0;
	int src;

	if (state) {
		int ok = 0;

		for (int i = 0; states[i]; i++)
			ok |= !strcmp(state, states[i]);
		if (!ok)
			return cm_err_set(-EINVAL, "'%s' is not a queue state (pending, pushing, done, "
					  "failed)", state);
	}
	arr = json_array();
	if (!arr)
		return cm_err_set(-ENOMEM, "out of memory");
	c = db_read_begin(st);
	DB_STMT(c, GIT_LIST, s);
	db_bind_text(s, 1, state);
	db_bind_int64(s, 2, after_id);
	db_bind_int64(s, 3, limit ? (int64_t)limit : -1);
	while ((src = db_step(c, s, "listing the git queue")) > 0) {
		json_t *o = json_object();

		json_object_set_new(o, "id", json_integer(db_col_int64(s, 0)));
		json_object_set_new(o, "created_at", time_or_null(s, 1));
		json_object_set_new(o, "event_id", db_col_null(s, 2)
							   ? json_null()
							   : json_integer(db_col_int64(s, 2)));
		json_object_set_new(o, "kind", text_or_null(s, 3));
		json_object_set_new(o, "model", text_or_null(s, 4));
		json_object_set_new(o, "version", text_or_null(s, 5));
		json_object_set_new(o, "alias", text_or_null(s, 6));
		json_object_set_new(o, "git_commit", text_or_null(s, 7));
		json_object_set_new(o, "tag", text_or_null(s, 8));
		json_object_set_new(o, "state", text_or_null(s, 9));
		json_object_set_new(o, "reason", text_or_null(s, 10));
		json_object_set_new(o, "attempts", json_integer(db_col_int64(s, 11)));
		json_object_set_new(o, "next_at", db_col_int64(s, 12) ? time_or_null(s, 12)
									       : json_null());
		json_object_set_new(o, "last_error", text_or_null(s, 13));
		json_object_set_new(o, "error_at", time_or_null(s, 14));
		json_object_set_new(o, "commit", text_or_null(s, 15));
		json_object_set_new(o, "done_at", time_or_null(s, 16));
		if (json_array_append_new(arr, o) < 0) {
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
	db_read_end(c);
	json_decref(arr);
	return rc;
}

int reg_git_retry(struct reg_store *st, const struct reg_actor *who, int64_t id, int64_t *n)
{
	struct reg_conn *c = NULL;
	json_t *detail = NULL;
	struct db_stmt *s;
	int64_t changed = 0;
	int rc;

	if (id < 0)
		return cm_err_set(-EINVAL, "a queue item id is positive (0 for every failed item)");
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	DB_STMT(c, GIT_RETRY, s);
	db_bind_int64(s, 1, id);
	rc = db_exec_stmt(c, s, "retrying failed tags");
	if (rc < 0)
		goto done;
	changed = db_changes(c);
	if (id && !changed) {
		rc = cm_err_set(-ENOENT, "no failed git queue item %lld", (long long)id);
		goto done;
	}
	if (changed) {
		detail = json_pack("{s:I, s:I}", "items", (json_int_t)changed, "id", (json_int_t)id);
		rc = reg_event_add(c, who, "git.retry", NULL, NULL, NULL, NULL, NULL, detail);
		c->kick = 1;
	}
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
	if (n)
		*n = changed;
done:
	db_write_abort(c);
	json_decref(detail);
	return rc;
}

int reg_git_backfill(struct reg_store *st, const struct reg_actor *who, int64_t *n)
{
	struct reg_conn *c = NULL;
	char (*names)[2][REG_NAME_MAX] = NULL;
	char format[GS_TAG_MAX] = "";
	size_t cnt = 0, cap = 0;
	struct db_stmt *s;
	int gto = 0, on = 0;
	int rc;
	int src;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	DB_STMT(c, GIT_ENABLED, s);
	src = db_step(c, s, "reading the git configuration");
	if (src > 0) {
		on = 1;
		gto = db_col_int(s, 0);
		db_col_text(s, 1, format, sizeof(format));
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	if (!on) {
		rc = cm_err_set(-ENOENT, "git sync is not enabled for this store");
		goto done;
	}
	DB_STMT(c, GIT_UNQUEUED, s);
	while ((src = db_step(c, s, "finding versions without tags")) > 0) {
		rc = cm_grow(&names, &cap, cnt + 1, sizeof(*names), 64);
		if (rc < 0)
			break;
		db_col_text(s, 0, names[cnt][0], REG_NAME_MAX);
		db_col_text(s, 1, names[cnt][1], REG_NAME_MAX);
		cnt++;
	}
	if (rc == 0 && src < 0)
		rc = src;
	db_reset(s);
	for (size_t i = 0; rc == 0 && i < cnt; i++)
		rc = enqueue_version(c, 0, who, names[i][0], names[i][1], gto, format);
	if (rc == 0 && cnt) {
		json_t *detail = json_pack("{s:I}", "versions", (json_int_t)cnt);

		rc = reg_event_add(c, who, "git.backfill", NULL, NULL, NULL, NULL, NULL, detail);
		json_decref(detail);
	}
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
	if (n)
		*n = (int64_t)cnt;
done:
	db_write_abort(c);
	free(names);
	return rc;
}

/* ---- reverse lineage through tags ---- */

int gs_lineage_add(struct reg_conn *c, const char *lo, const char *hi, json_t *arr)
{
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, GIT_LINEAGE, s);
	db_bind_text(s, 1, lo);
	db_bind_text(s, 2, hi);
	while ((src = db_step(c, s, "searching tags for lineage")) > 0) {
		const char *m = db_col_str(s, 0);
		const char *v = db_col_str(s, 1);
		int seen = 0;
		size_t i;
		json_t *o;

		json_array_foreach(arr, i, o) {
			const char *om = json_string_value(json_object_get(o, "model"));
			const char *ov = json_string_value(json_object_get(o, "version"));

			if (om && ov && m && v && !strcmp(om, m) && !strcmp(ov, v))
				seen = 1;
		}
		if (seen)
			continue;
		o = json_pack("{s:s?, s:s?, s:o, s:o, s:o, s:o}", "model", m, "version", v,
			      "git_commit", text_or_null(s, 2), "training_data_hash",
			      text_or_null(s, 3), "state", text_or_null(s, 4), "git_tag",
			      text_or_null(s, 5));
		if (!o || json_array_append_new(arr, o) < 0) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	if (rc == 0 && src < 0)
		rc = src;
	db_reset(s);
done:
	return rc;
}

/* ---- read-back ---- */

const char *reg_git_mismatch_name(enum reg_git_mismatch kind)
{
	switch (kind) {
	case REG_GIT_WRONG_COMMIT:
		return "wrong-commit";
	case REG_GIT_UNKNOWN_VERSION:
		return "unknown-version";
	case REG_GIT_MISSING_TAG:
		return "missing-tag";
	}
	return "?";
}

struct gs_ver {
	char model[REG_NAME_MAX], name[REG_NAME_MAX];
	char *commit;
	int tagged;
};

static int ver_cmp(const void *a, const void *b)
{
	const struct gs_ver *x = a, *y = b;
	int d = strcmp(x->model, y->model);

	return d ? d : strcmp(x->name, y->name);
}

static struct gs_ver *ver_find(struct gs_ver *v, size_t n, const char *model, const char *name)
{
	struct gs_ver key = { 0 };

	if (cm_strlcpy(key.model, model, sizeof(key.model)) < 0 ||
	    cm_strlcpy(key.name, name, sizeof(key.name)) < 0)
		return NULL;
	return bsearch(&key, v, n, sizeof(*v), ver_cmp);
}

static int model_cmp(const void *a, const void *b)
{
	return strcmp(((const struct reg_model *)a)->name, ((const struct reg_model *)b)->name);
}

static int model_known(const struct reg_model *m, size_t n, const char *name)
{
	struct reg_model key = { 0 };

	if (cm_strlcpy(key.name, name, sizeof(key.name)) < 0)
		return 0;
	return bsearch(&key, m, n, sizeof(*m), model_cmp) != NULL;
}

static void vers_free(struct gs_ver *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].commit);
	free(v);
}

/* Every sealed or archived version with its git_commit, sorted for ver_find. */
static int vers_load(struct reg_store *st, struct gs_ver **out, size_t *n)
{
	struct reg_conn *c = db_read_begin(st);
	struct gs_ver *v = NULL;
	size_t cnt = 0, cap = 0;
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, GIT_SEALED, s);
	while ((src = db_step(c, s, "listing sealed versions")) > 0) {
		rc = cm_grow(&v, &cap, cnt + 1, sizeof(*v), 64);
		if (rc < 0)
			break;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		db_col_text(s, 0, v[cnt].model, sizeof(v[cnt].model));
		db_col_text(s, 1, v[cnt].name, sizeof(v[cnt].name));
		v[cnt].commit = db_col_strdup(s, 2);
		cnt++;
	}
	if (rc == 0 && src < 0)
		rc = src;
	db_reset(s);
done:
	db_read_end(c);
	if (rc < 0) {
		vers_free(v, cnt);
		return rc;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), ver_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

struct gs_check {
	struct reg_store *st;
	struct gs_fmt fmt;
	int gto;
	struct gs_ver *vers;
	size_t nvers;
	struct reg_model *models;
	size_t nmodels;
	reg_git_check_cb cb;
	void *ctx;
	int count;
	/* tags that name versions, remembered for lineage: "tag\0model\0version\0sha" */
	char (*seen)[4][GS_TAG_MAX];
	size_t nseen, capseen;
};

static void mismatch(struct gs_check *k, enum reg_git_mismatch kind, const char *tag,
		     const char *model, const char *version, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void mismatch(struct gs_check *k, enum reg_git_mismatch kind, const char *tag,
		     const char *model, const char *version, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	k->count++;
	if (!k->cb)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	k->cb(k->ctx, kind, tag, model, version, detail);
}

/*
 * Splits a tag by the version format. Several splits can fit when names hold
 * the separator; the best is a registry version (3), then a known model (2),
 * then any valid pair of names (1). Returns the score, 0 when none fits.
 */
static int tag_split(struct gs_check *k, const char *tag, char *model, char *version)
{
	const struct gs_fmt *f = &k->fmt;
	size_t pre = strlen(f->pre), post = strlen(f->post), mid = strlen(f->mid);
	size_t len = strlen(tag);
	char body[GS_TAG_MAX];
	int best = 0;

	if (len < pre + post + mid + 2 || len - pre - post >= sizeof(body) ||
	    strncmp(tag, f->pre, pre) || strcmp(tag + len - post, f->post))
		return 0;
	snprintf(body, sizeof(body), "%.*s", (int)(len - pre - post), tag + pre);
	for (char *p = strstr(body, f->mid); p; p = strstr(p + 1, f->mid)) {
		char left[GS_TAG_MAX], right[GS_TAG_MAX];
		const char *m, *v;
		int score;

		snprintf(left, sizeof(left), "%.*s", (int)(p - body), body);
		snprintf(right, sizeof(right), "%s", p + mid);
		m = f->version_first ? right : left;
		v = f->version_first ? left : right;
		if (reg_name_model_check(m) < 0 || reg_name_version_check(v) < 0)
			continue;
		score = ver_find(k->vers, k->nvers, m, v)	  ? 3
			: model_known(k->models, k->nmodels, m) ? 2
								  : 1;
		/* On a tie the longer model name wins: model names hold dashes more often. */
		if (score >= best && (score > best || !f->version_first)) {
			best = score;
			snprintf(model, REG_NAME_MAX, "%s", m);
			snprintf(version, REG_NAME_MAX, "%s", v);
		}
	}
	cm_err_clear();
	return best;
}

static void seen_add(struct gs_check *k, const char *tag, const char *model, const char *version,
		     const char *sha)
{
	if (cm_grow(&k->seen, &k->capseen, k->nseen + 1, sizeof(*k->seen), 64) < 0)
		return; /* lineage through this tag waits for the next read-back */
	snprintf(k->seen[k->nseen][0], GS_TAG_MAX, "%s", tag);
	snprintf(k->seen[k->nseen][1], GS_TAG_MAX, "%s", model);
	snprintf(k->seen[k->nseen][2], GS_TAG_MAX, "%s", version);
	snprintf(k->seen[k->nseen][3], GS_TAG_MAX, "%s", sha);
	k->nseen++;
}

/* A tag that names registry version v: is it at the version's git_commit? */
static void tag_against(struct gs_check *k, const char *tag, struct gs_ver *v, const char *sha)
{
	char want[GIT_OID_HEXSZ + 1] = "";
	size_t len = v->commit ? strlen(v->commit) : 0;

	v->tagged = 1;
	seen_add(k, tag, v->model, v->name, sha);
	for (size_t i = 0; i < len && i < GIT_OID_HEXSZ; i++)
		want[i] = (char)tolower((unsigned char)v->commit[i]);
	if (!len)
		mismatch(k, REG_GIT_WRONG_COMMIT, tag, v->model, v->name,
			 "tag at %.12s, but %s/%s has no git_commit in its metadata", sha, v->model,
			 v->name);
	else if (len < 4 || strncmp(sha, want, strlen(want)))
		mismatch(k, REG_GIT_WRONG_COMMIT, tag, v->model, v->name,
			 "tag at %.12s, but the git_commit of %s/%s is %s", sha, v->model, v->name,
			 v->commit);
}

static void tag_check(struct gs_check *k, git_repository *repo, const char *tag)
{
	char model[REG_NAME_MAX] = "", version[REG_NAME_MAX] = "";
	char ref_name[GS_TAG_MAX + 16], sha[GIT_OID_HEXSZ + 1] = "";
	git_reference *ref = NULL;
	git_object *peeled = NULL;
	struct gs_ver *v = NULL;
	int score = tag_split(k, tag, model, version);
	int gto_reg = 0;

	if (!score && k->gto) {
		const char *at = strchr(tag, '@'), *hash = strchr(tag, '#');
		char semver[REG_NAME_MAX];

		if (at && (!hash || at < hash) && at[1] == 'v' &&
		    semver_of(at + 2, semver, sizeof(semver)) && !strcmp(semver, at + 2)) {
			snprintf(model, sizeof(model), "%.*s", (int)(at - tag), tag);
			if (reg_name_model_check(model) == 0) {
				gto_reg = 1;
				snprintf(version, sizeof(version), "%s", at + 1);
				v = ver_find(k->vers, k->nvers, model, at + 2);
				if (!v)
					v = ver_find(k->vers, k->nvers, model, at + 1);
				score = v ? 3 : model_known(k->models, k->nmodels, model) ? 2 : 1;
			}
		} else if (hash) {
			snprintf(model, sizeof(model), "%.*s", (int)(hash - tag), tag);
			if (reg_name_model_check(model) == 0 && gto_counter(tag, model) >= 0 &&
			    !model_known(k->models, k->nmodels, model))
				mismatch(k, REG_GIT_UNKNOWN_VERSION, tag, model, NULL,
					 "GTO stage tag for model '%s', which the registry does not "
					 "have", model);
		}
		cm_err_clear();
	}
	if (!score)
		return;
	if (score == 1) {
		mismatch(k, REG_GIT_UNKNOWN_VERSION, tag, model, version,
			 "the registry has no model '%s'", model);
		return;
	}
	if (score == 2) {
		mismatch(k, REG_GIT_UNKNOWN_VERSION, tag, model, version,
			 "model '%s' has no sealed version '%s'", model, version);
		return;
	}
	if (!v)
		v = ver_find(k->vers, k->nvers, model, version);
	if (!v)
		return;
	snprintf(ref_name, sizeof(ref_name), "refs/tags/%s", tag);
	if (git_reference_lookup(&ref, repo, ref_name) == 0 &&
	    git_reference_peel(&peeled, ref, GIT_OBJECT_COMMIT) == 0) {
		git_oid_tostr(sha, sizeof(sha), git_object_id(peeled));
		if (gto_reg) {
			/* A registration tag does not stand for the version tag. */
			int tagged = v->tagged;

			tag_against(k, tag, v, sha);
			v->tagged = tagged;
		} else {
			tag_against(k, tag, v, sha);
		}
	} else {
		mismatch(k, REG_GIT_WRONG_COMMIT, tag, v->model, v->name,
			 "tag does not point at a commit");
	}
	git_object_free(peeled);
	git_reference_free(ref);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The repository's tag names, sorted. */
static int tags_list(git_repository *repo, char ***out, size_t *n)
{
	git_reference_iterator *iter = NULL;
	char **names = NULL;
	size_t cnt = 0, cap = 0;
	const char *name;
	int grc;
	int rc = 0;

	if (git_reference_iterator_glob_new(&iter, repo, "refs/tags/*") < 0)
		return cm_err_set(-EIO, "listing tags: %s", git_msg());
	while ((grc = git_reference_next_name(&name, iter)) == 0) {
		rc = cm_grow(&names, &cap, cnt + 1, sizeof(*names), 256);
		if (rc < 0)
			break;
		names[cnt] = strdup(name + strlen("refs/tags/"));
		if (!names[cnt]) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
		cnt++;
	}
	if (rc == 0 && grc != GIT_ITEROVER)
		rc = cm_err_set(-EIO, "listing tags: %s", git_msg());
	git_reference_iterator_free(iter);
	if (rc < 0) {
		for (size_t i = 0; i < cnt; i++)
			free(names[i]);
		free(names);
		return rc;
	}
	if (cnt)
		qsort(names, cnt, sizeof(*names), str_cmp);
	*out = names;
	*n = cnt;
	return 0;
}

/* Remembers the tags that name versions (and forgets vanished ones) for lineage. */
static int seen_record(struct gs_check *k, char **tags, size_t ntags)
{
	struct reg_conn *c = NULL;
	char **stale = NULL;
	size_t nstale = 0, capstale = 0;
	struct db_stmt *s;
	int64_t now = cm_time_now_us();
	int rc;

	rc = db_write_begin(k->st, &c);
	if (rc < 0)
		return rc;
	DB_STMT(c, GIT_TAGS_ALL, s);
	while ((rc = db_step(c, s, "listing remembered tags")) > 0) {
		const char *t = db_col_str(s, 0);

		rc = 0;
		if (!t || (ntags && bsearch(&t, tags, ntags, sizeof(*tags), str_cmp)))
			continue;
		rc = cm_grow(&stale, &capstale, nstale + 1, sizeof(*stale), 16);
		if (rc < 0)
			break;
		stale[nstale] = strdup(t);
		if (!stale[nstale]) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
		nstale++;
	}
	db_reset(s);
	for (size_t i = 0; rc == 0 && i < nstale; i++) {
		DB_STMT(c, GIT_TAG_FORGET, s);
		db_bind_text(s, 1, stale[i]);
		rc = db_exec_stmt(c, s, "forgetting a tag");
	}
	for (size_t i = 0; rc == 0 && i < k->nseen; i++) {
		DB_STMT(c, GIT_TAG_RECORD, s);
		for (int j = 0; j < 4; j++)
			db_bind_text(s, j + 1, k->seen[i][j]);
		db_bind_text(s, 5, "read-back");
		db_bind_int64(s, 6, now);
		rc = db_exec_stmt(c, s, "remembering a tag");
	}
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	for (size_t i = 0; i < nstale; i++)
		free(stale[i]);
	free(stale);
	return rc;
}

/* Why a sealed version has no tag, from its queue item. */
static void missing_detail(struct reg_store *st, const struct gs_ver *v, char *out, size_t n)
{
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s = db_stmt(c, REG_SQL_GIT_VERSION_ITEM);
	int src;

	if (!s) {
		snprintf(out, n, "no tag in the repository");
		db_read_end(c);
		return;
	}
	db_bind_text(s, 1, v->model);
	db_bind_text(s, 2, v->name);
	src = db_step(c, s, "reading a version's git queue item");
	if (src > 0) {
		const char *state = db_col_str(s, 0);
		const char *err = db_col_str(s, 2);

		snprintf(out, n, "no tag in the repository; queue item %s%s%s", state ? state : "?",
			 err ? ": " : "", err ? err : "");
	} else if (src < 0) {
		snprintf(out, n, "no tag in the repository; its queue item could not be read: %s",
			 cm_err_describe(src));
	} else if (!v->commit) {
		snprintf(out, n, "no tag in the repository, and no git_commit in its metadata");
	} else {
		snprintf(out, n, "no tag in the repository and none queued (git-sync --backfill "
			 "queues one)");
	}
	db_reset(s);
	db_read_end(c);
}

int reg_git_check(struct reg_store *st, const struct reg_git_config *cfg, reg_git_check_cb cb,
		  void *ctx)
{
	struct gs_check k = { .st = st, .cb = cb, .ctx = ctx };
	struct gs_cfg g = { 0 };
	git_repository *repo = NULL;
	char **tags = NULL;
	size_t ntags = 0;
	char err[GS_MSG_MAX * 2];
	int rc;

	if (cfg) {
		if (!cfg->repo || !cfg->repo[0])
			return cm_err_set(-EINVAL, "read-back needs a repository path");
		rc = cfg_from(cfg, &g);
	} else {
		struct reg_conn *c = db_read_begin(st);

		rc = cfg_load(c, &g);
		db_read_end(c);
	}
	if (rc < 0)
		return rc;
	k.gto = g.gto;
	rc = fmt_split(g.tag_format, &k.fmt);
	if (rc == 0)
		rc = vers_load(st, &k.vers, &k.nvers);
	if (rc == 0)
		rc = reg_model_list(st, NULL, 0, &k.models, &k.nmodels);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&gs_run_mu);
	git_libgit2_init();
	rc = repo_open(g.repo, &repo, err, sizeof(err));
	if (rc < 0) {
		rc = cm_err_set(rc, "%s", err);
		goto done;
	}
	rc = tags_list(repo, &tags, &ntags);
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < ntags; i++)
		tag_check(&k, repo, tags[i]);
	for (size_t i = 0; i < k.nvers; i++) {
		char tag[GS_TAG_MAX], detail[1024];

		if (k.vers[i].tagged)
			continue;
		if (reg_git_tag_name(g.tag_format, k.vers[i].model, k.vers[i].name, tag,
				     sizeof(tag)) < 0)
			snprintf(tag, sizeof(tag), "?");
		missing_detail(st, &k.vers[i], detail, sizeof(detail));
		mismatch(&k, REG_GIT_MISSING_TAG, tag, k.vers[i].model, k.vers[i].name, "%s", detail);
	}
	/* Only tags of the configured repository stand for versions in lineage. */
	if (!cfg && st->writer.db && !(st->flags & REG_OPEN_READONLY))
		rc = seen_record(&k, tags, ntags);
	if (rc == 0)
		rc = k.count;
done:
	git_repository_free(repo);
	git_libgit2_shutdown();
	pthread_mutex_unlock(&gs_run_mu);
out:
	for (size_t i = 0; i < ntags; i++)
		free(tags[i]);
	free(tags);
	free(k.seen);
	free(k.models);
	vers_free(k.vers, k.nvers);
	cfg_free(&g);
	return rc;
}
