/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crash test: a child process seals versions and moves aliases in a loop and
 * is killed with SIGKILL at random moments, again and again on one store.
 * After each kill the store must reopen with fsck clean, keep every change
 * the child reported as committed, and have every alias on a sealed version
 * with its symlink and <model>/metadata.json in step with the db.
 *
 * The child reports over a pipe, one write(2) per line (atomic below
 * PIPE_BUF, so a kill never leaves half a line):
 *   opened                     the store is open (reconcile done)
 *   created M V / passed M V   version created / validation_status set
 *   sealed M V DIGEST          version sealed with that content digest
 *   deleting M V / deleted M V a draft (made for the purpose) about to be /
 *                              removed
 *   model S / deleting-model S / model-deleted S
 *                              a scratch model created / about to be / removed
 *   try M A V|-|@rollback      about to set (or clear, or roll back) alias A
 *   alias M A V|-              alias A of M committed as V (or cleared)
 *   fail M A                   the tried change was refused, nothing changed
 *   error MSG                  unexpected failure; the child exits 3
 * The parent kills after a random 1-30 ms, counted from "opened" in three
 * kills out of four and from the fork otherwise (those may land in the open
 * and its reconcile).
 *
 * A change can commit after its "try" and before its "alias" line (killed
 * in between), so after a kill an alias must hold either its last reported
 * value or the value of the one outstanding try.
 *
 * MODELFS_CRASH_ITERATIONS (default 200) and MODELFS_CRASH_SEED (printed at
 * the start) make a failure reproducible as far as timing allows.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define NMODELS 3
#define NALIASES 3
#define LINE_MAX_LEN 256

static const char *const models[NMODELS] = { "crash-a", "crash-b", "crash-c" };
static const char *const aliases[NALIASES] = { "current", "canary", "staging" };
static const struct reg_actor child_actor = { .channel = "cli", .name = "crash-child" };

/* splitmix64: small, seedable, good enough to pick timings and operations. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rng_next(s) % n);
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the child ---- */

/* One line to the parent in one write(2); a failed write ends the child. */
static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
	char line[LINE_MAX_LEN];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) != n)
		_exit(4);
}

static void __attribute__((noreturn)) child_die(int fd, const char *what)
{
	say(fd, "error %s: %s", what, cm_err_msg());
	_exit(3);
}

struct pool {
	char (*v)[REG_NAME_MAX];
	size_t n, cap;
};

static void pool_add(struct pool *p, const char *name)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		void *nv = realloc(p->v, cap * sizeof(*p->v));

		if (!nv)
			_exit(5);
		p->v = nv;
		p->cap = cap;
	}
	cm_strlcpy(p->v[p->n++], name, REG_NAME_MAX);
}

/* Writes `len` pseudo-random bytes to path with plain syscalls. */
static int child_write_file(const char *path, size_t len, uint64_t *rng)
{
	char buf[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return cm_err_set(-errno, "open %s: %s", path, strerror(errno));
	while (len > 0) {
		size_t k = len < sizeof(buf) ? len : sizeof(buf);

		for (size_t i = 0; i < k; i += 8) {
			uint64_t r = rng_next(rng);

			memcpy(buf + i, &r, k - i < 8 ? k - i : 8);
		}
		if (write(fd, buf, k) != (ssize_t)k) {
			close(fd);
			return cm_err_set(-EIO, "write %s: %s", path, strerror(errno));
		}
		len -= k;
	}
	close(fd);
	return 0;
}

/* create → write two files → validation_status passed → seal. */
static void child_new_version(struct reg_store *st, const char *dir, int wfd, const char *m,
			      struct pool *p, uint64_t *rng)
{
	json_t *patch = json_pack("{ss}", "validation_status", "passed");
	struct reg_version v;
	char path[PATH_MAX];

	if (reg_version_create(st, &child_actor, m, NULL, NULL, &v) < 0)
		child_die(wfd, "create");
	say(wfd, "created %s %s", m, v.name);
	snprintf(path, sizeof(path), "%s/%s/%s/model.pkl", dir, m, v.name);
	if (child_write_file(path, 1024 + rng_below(rng, 16384), rng) < 0)
		child_die(wfd, "write model.pkl");
	snprintf(path, sizeof(path), "%s/%s/%s/conf", dir, m, v.name);
	if (mkdir(path, 0755) < 0) {
		cm_err_set(-errno, "mkdir %s: %s", path, strerror(errno));
		child_die(wfd, "mkdir");
	}
	snprintf(path, sizeof(path), "%s/%s/%s/conf/params.bin", dir, m, v.name);
	if (child_write_file(path, 1 + rng_below(rng, 512), rng) < 0)
		child_die(wfd, "write params.bin");
	if (reg_version_metadata_patch(st, &child_actor, m, v.name, patch) < 0)
		child_die(wfd, "patch");
	json_decref(patch);
	say(wfd, "passed %s %s", m, v.name);
	if (reg_version_seal(st, &child_actor, m, v.name, &v) < 0)
		child_die(wfd, "seal");
	say(wfd, "sealed %s %s %s", m, v.name, v.digest);
	pool_add(p, v.name);
}

/* A draft with a file, removed again: its directory must not outlive the delete. */
static void child_delete_draft(struct reg_store *st, const char *dir, int wfd, const char *m,
			       int iter, uint64_t *rng)
{
	static int k;
	char name[REG_NAME_MAX], path[PATH_MAX];

	/* Explicit, never reused names: auto names can come back after a delete. */
	snprintf(name, sizeof(name), "tmp-%d-%d", iter, k++);
	if (reg_version_create(st, &child_actor, m, name, NULL, NULL) < 0)
		child_die(wfd, "create draft");
	say(wfd, "created %s %s", m, name);
	snprintf(path, sizeof(path), "%s/%s/%s/scratch.bin", dir, m, name);
	if (child_write_file(path, 1 + rng_below(rng, 8192), rng) < 0)
		child_die(wfd, "write scratch.bin");
	say(wfd, "deleting %s %s", m, name);
	if (reg_version_delete(st, &child_actor, m, name) < 0)
		child_die(wfd, "delete draft");
	say(wfd, "deleted %s %s", m, name);
}

/* A scratch model, removed again: its directory must not outlive the delete. */
static void child_scratch_model(struct reg_store *st, int wfd, int iter)
{
	static int k;
	char name[REG_NAME_MAX];

	snprintf(name, sizeof(name), "scratch-%d-%d", iter, k++);
	if (reg_model_create(st, &child_actor, name, NULL) < 0)
		child_die(wfd, "create model");
	say(wfd, "model %s", name);
	say(wfd, "deleting-model %s", name);
	if (reg_model_delete(st, &child_actor, name) < 0)
		child_die(wfd, "delete model");
	say(wfd, "model-deleted %s", name);
}

/* Mostly points a random alias at a random sealed version; now and then rolls
 * `current` back or clears `staging`. */
static void child_alias(struct reg_store *st, int wfd, const char *m, struct pool *p, uint64_t *rng)
{
	const char *a = aliases[rng_below(rng, NALIASES)];
	unsigned what = rng_below(rng, 20);
	struct reg_alias out;
	int rc;

	if (what == 0 && !strcmp(a, "staging")) {
		say(wfd, "try %s %s -", m, a);
		rc = reg_alias_delete(st, &child_actor, m, a, NULL);
		if (rc == -ENOENT) {
			say(wfd, "fail %s %s", m, a);
			return;
		}
		if (rc < 0)
			child_die(wfd, "alias delete");
		say(wfd, "alias %s %s -", m, a);
		return;
	}
	if (what <= 3) {
		a = "current";
		say(wfd, "try %s %s @rollback", m, a);
		rc = reg_alias_rollback(st, &child_actor, m, a, NULL, &out);
		if (rc == -ENOENT) {
			say(wfd, "fail %s %s", m, a);
			return;
		}
		if (rc < 0)
			child_die(wfd, "rollback");
		say(wfd, "alias %s %s %s", m, a, out.version);
		return;
	}
	if (!p->n)
		return;
	{
		const char *target = p->v[rng_below(rng, (unsigned)p->n)];
		struct reg_alias_opts o = { .percent = -1 };

		if (!strcmp(a, "canary") && rng_below(rng, 2))
			o.percent = (int)rng_below(rng, 101);
		say(wfd, "try %s %s %s", m, a, target);
		if (reg_alias_set(st, &child_actor, m, a, target, &o, &out) < 0)
			child_die(wfd, "alias set");
		say(wfd, "alias %s %s %s", m, a, out.version);
	}
}

static void __attribute__((noreturn)) child_main(const char *dir, int wfd, int iter, uint64_t seed)
{
	struct pool pools[NMODELS] = { 0 };
	struct reg_store *st = NULL;
	uint64_t rng = seed;

	if (reg_store_open(dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &st) < 0)
		child_die(wfd, "open");
	say(wfd, "opened");
	for (int i = 0; i < NMODELS; i++) {
		struct reg_version_filter f = { .state = REG_SEALED,
						.validation_status = "passed" };
		struct reg_version *v = NULL;
		size_t n = 0;

		if (reg_version_list(st, models[i], &f, &v, &n) < 0)
			child_die(wfd, "list");
		for (size_t k = 0; k < n; k++)
			pool_add(&pools[i], v[k].name);
		free(v);
	}
	for (;;) {
		unsigned mi = rng_below(&rng, NMODELS);
		unsigned op = rng_below(&rng, 20);

		if (op < 8 || !pools[mi].n)
			child_new_version(st, dir, wfd, models[mi], &pools[mi], &rng);
		else if (op < 9)
			child_delete_draft(st, dir, wfd, models[mi], iter, &rng);
		else if (op < 10)
			child_scratch_model(st, wfd, iter);
		else
			child_alias(st, wfd, models[mi], &pools[mi], &rng);
	}
}

/* ---- the parent ---- */

enum fact_kind {
	FACT_CREATED,
	FACT_PASSED,
	FACT_SEALED,
	FACT_DELETED,
	FACT_MAYBE_DELETED,
	/* Scratch models: `version` holds the model's name, `model` is -1. */
	FACT_MODEL,
	FACT_MODEL_DELETED,
	FACT_MODEL_MAYBE_DELETED,
};

struct fact {
	enum fact_kind kind;
	int model;
	char version[REG_NAME_MAX];
	char digest[65];
};

struct crash {
	char dir[PATH_MAX];
	uint64_t seed;
	int iter;
	/* Alias values known to be committed ("" = unset), checked after each kill. */
	char known[NMODELS][NALIASES][REG_NAME_MAX];
	/* The outstanding try per alias: "" none, a version, "-" clear, "@rollback". */
	char pending[NMODELS][NALIASES][REG_NAME_MAX];
	struct fact *facts;
	size_t nfacts, capfacts;
	/* Statistics for the summary line. */
	long lines, kills_before_open, sealed, deleted, models_deleted, alias_changes;
	long maybe_committed;
	int opened; /* the current child has said "opened" */
};

static int model_index(const char *m)
{
	for (int i = 0; i < NMODELS; i++)
		if (!strcmp(models[i], m))
			return i;
	return -1;
}

static int alias_index(const char *a)
{
	for (int i = 0; i < NALIASES; i++)
		if (!strcmp(aliases[i], a))
			return i;
	return -1;
}

static void fact_add(struct crash *c, enum fact_kind k, int m, const char *v, const char *digest)
{
	struct fact *f;

	if (c->nfacts == c->capfacts) {
		size_t cap = c->capfacts ? c->capfacts * 2 : 256;
		struct fact *nf = realloc(c->facts, cap * sizeof(*nf));

		assert_non_null(nf);
		c->facts = nf;
		c->capfacts = cap;
	}
	f = &c->facts[c->nfacts++];
	memset(f, 0, sizeof(*f));
	f->kind = k;
	f->model = m;
	cm_strlcpy(f->version, v, sizeof(f->version));
	if (digest)
		cm_strlcpy(f->digest, digest, sizeof(f->digest));
}

/* Applies one line of the child's report. */
static void parse_line(struct crash *c, char *line)
{
	char w0[32] = "", w1[REG_NAME_MAX] = "", w2[REG_NAME_MAX] = "", w3[80] = "";
	int m = -1, a = -1;

	c->lines++;
	if (!strncmp(line, "error ", 6))
		fail_msg("iteration %d (seed %" PRIu64 "): child failed: %s", c->iter, c->seed,
			 line + 6);
	sscanf(line, "%31s %63s %63s %79s", w0, w1, w2, w3);
	if (!strcmp(w0, "opened")) {
		c->opened = 1;
		return;
	}
	if (!strcmp(w0, "model")) {
		fact_add(c, FACT_MODEL, -1, w1, NULL);
		return;
	}
	if (!strcmp(w0, "deleting-model")) {
		for (size_t i = 0; i < c->nfacts; i++)
			if (c->facts[i].kind == FACT_MODEL && !strcmp(c->facts[i].version, w1))
				c->facts[i].kind = FACT_MODEL_MAYBE_DELETED;
		return;
	}
	if (!strcmp(w0, "model-deleted")) {
		fact_add(c, FACT_MODEL_DELETED, -1, w1, NULL);
		c->models_deleted++;
		return;
	}
	m = model_index(w1);
	if (m < 0)
		fail_msg("iteration %d: bad report line '%s'", c->iter, line);
	if (!strcmp(w0, "created")) {
		fact_add(c, FACT_CREATED, m, w2, NULL);
	} else if (!strcmp(w0, "passed")) {
		fact_add(c, FACT_PASSED, m, w2, NULL);
	} else if (!strcmp(w0, "deleting")) {
		/* Once the delete is tried, the version may or may not be there. */
		for (size_t i = 0; i < c->nfacts; i++)
			if (c->facts[i].model == m && !strcmp(c->facts[i].version, w2))
				c->facts[i].kind = FACT_MAYBE_DELETED;
	} else if (!strcmp(w0, "deleted")) {
		fact_add(c, FACT_DELETED, m, w2, NULL);
		c->deleted++;
	} else if (!strcmp(w0, "sealed")) {
		assert_int_equal(strlen(w3), 64);
		fact_add(c, FACT_SEALED, m, w2, w3);
		c->sealed++;
	} else if ((a = alias_index(w2)) < 0) {
		fail_msg("iteration %d: bad report line '%s'", c->iter, line);
	} else if (!strcmp(w0, "try")) {
		assert_string_equal(c->pending[m][a], "");
		cm_strlcpy(c->pending[m][a], w3, REG_NAME_MAX);
	} else if (!strcmp(w0, "alias")) {
		assert_string_not_equal(c->pending[m][a], "");
		cm_strlcpy(c->known[m][a], strcmp(w3, "-") ? w3 : "", REG_NAME_MAX);
		c->pending[m][a][0] = '\0';
		c->alias_changes++;
	} else if (!strcmp(w0, "fail")) {
		c->pending[m][a][0] = '\0';
	} else {
		fail_msg("iteration %d: bad report line '%s'", c->iter, line);
	}
}

static void fsck_print(void *ctx, enum reg_fsck_kind kind, const char *where, const char *detail,
		       int repaired)
{
	struct crash *c = ctx;

	print_error("iteration %d (seed %" PRIu64 "): fsck: %s %s%s%s%s\n", c->iter, c->seed,
		    reg_fsck_kind_name(kind), where, detail ? " (" : "", detail ? detail : "",
		    detail ? ")" : "");
	(void)repaired;
}

static void check_fact(struct crash *c, struct reg_store *st, const struct fact *f)
{
	const char *m = f->model >= 0 ? models[f->model] : f->version;
	struct reg_version v;
	struct reg_model mod;
	char rel[PATH_MAX];
	struct stat sb;

	if (f->kind == FACT_MODEL) {
		if (reg_model_get(st, m, &mod) < 0)
			fail_msg("iteration %d (seed %" PRIu64 "): reported model %s is gone",
				 c->iter, c->seed, m);
		return;
	}
	if (f->kind == FACT_MODEL_DELETED) {
		snprintf(rel, sizeof(rel), "%s/%s", c->dir, m);
		if (reg_model_get(st, m, &mod) != -ENOENT)
			fail_msg("iteration %d (seed %" PRIu64 "): deleted model %s is back",
				 c->iter, c->seed, m);
		if (lstat(rel, &sb) == 0)
			fail_msg("iteration %d (seed %" PRIu64 "): deleted model %s still has its "
				 "directory",
				 c->iter, c->seed, m);
		return;
	}
	if (f->kind == FACT_MAYBE_DELETED || f->kind == FACT_MODEL_MAYBE_DELETED)
		return; /* killed mid-delete: either way is right, fsck checks the disk */
	if (f->kind == FACT_DELETED) {
		snprintf(rel, sizeof(rel), "%s/%s/%s", c->dir, m, f->version);
		if (reg_version_get(st, m, f->version, &v) != -ENOENT)
			fail_msg("iteration %d (seed %" PRIu64 "): deleted version %s/%s is back",
				 c->iter, c->seed, m, f->version);
		if (lstat(rel, &sb) == 0)
			fail_msg("iteration %d (seed %" PRIu64 "): deleted version %s/%s still has "
				 "its directory",
				 c->iter, c->seed, m, f->version);
		return;
	}
	if (reg_version_get(st, m, f->version, &v) < 0)
		fail_msg("iteration %d (seed %" PRIu64 "): reported version %s/%s is gone: %s",
			 c->iter, c->seed, m, f->version, cm_err_msg());
	switch (f->kind) {
	default:
		break;
	case FACT_PASSED:
		if (strcmp(v.validation_status, "passed"))
			fail_msg("iteration %d: %s/%s lost validation_status (now '%s')", c->iter,
				 m, f->version, v.validation_status);
		break;
	case FACT_SEALED:
		if (v.state != REG_SEALED || strcmp(v.digest, f->digest))
			fail_msg("iteration %d: %s/%s reported sealed with %s, is %s with '%s'",
				 c->iter, m, f->version, f->digest, reg_state_name(v.state),
				 v.digest);
		break;
	}
}

/* The latest alias event of m/a (set or delete): before and after, "" for none. */
static void last_alias_event(struct reg_store *st, const char *m, const char *a, char *before,
			     char *after, char *via)
{
	struct reg_event_filter f = { .kind = "alias." };
	json_t *ev = NULL;
	size_t i;

	before[0] = after[0] = via[0] = '\0';
	assert_int_equal(reg_event_list(st, m, &f, &ev), 0);
	for (i = json_array_size(ev); i-- > 0;) {
		json_t *e = json_array_get(ev, i);
		const char *k = json_string_value(json_object_get(e, "kind"));
		json_t *b = json_object_get(e, "before"), *af = json_object_get(e, "after");
		json_t *d = json_object_get(json_object_get(e, "detail"), "via");

		if (!json_is_string(json_object_get(e, "alias")) ||
		    strcmp(json_string_value(json_object_get(e, "alias")), a) ||
		    (strcmp(k, "alias.set") && strcmp(k, "alias.delete")))
			continue;
		cm_strlcpy(before, json_is_string(b) ? json_string_value(b) : "", REG_NAME_MAX);
		cm_strlcpy(after, json_is_string(af) ? json_string_value(af) : "", REG_NAME_MAX);
		cm_strlcpy(via, json_is_string(d) ? json_string_value(d) : "", REG_NAME_MAX);
		break;
	}
	json_decref(ev);
}

/* Aliases of model mi: committed values kept, sealed targets, symlinks, metadata.json. */
static void check_model_aliases(struct crash *c, struct reg_store *st, int mi)
{
	const char *m = models[mi];
	struct reg_alias *al = NULL;
	char rel[PATH_MAX];
	const char *text;
	json_t *doc, *jal;
	json_error_t jerr;
	size_t n = 0;

	assert_int_equal(reg_alias_list(st, m, &al, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (alias_index(al[i].name) < 0)
			fail_msg("iteration %d: unexpected alias %s/%s", c->iter, m, al[i].name);
	for (int ai = 0; ai < NALIASES; ai++) {
		const char *a = aliases[ai];
		const char *db = "";
		const char *pend = c->pending[mi][ai];
		const char *link;
		struct reg_version v;

		for (size_t i = 0; i < n; i++)
			if (!strcmp(al[i].name, a))
				db = al[i].version;
		if (strcmp(db, c->known[mi][ai])) {
			/* Only the one change in flight at the kill may have landed. */
			char before[REG_NAME_MAX], after[REG_NAME_MAX], via[REG_NAME_MAX];

			if (!pend[0])
				fail_msg("iteration %d (seed %" PRIu64
					 "): %s/%s is '%s', the child "
					 "last reported '%s' and had nothing in flight",
					 c->iter, c->seed, m, a, db, c->known[mi][ai]);
			last_alias_event(st, m, a, before, after, via);
			if (!strcmp(pend, "@rollback")) {
				if (strcmp(via, "rollback") || strcmp(before, c->known[mi][ai]) ||
				    strcmp(after, db))
					fail_msg(
						"iteration %d (seed %" PRIu64
						"): %s/%s is '%s' after "
						"a rollback from '%s', but the last event is %s→%s "
						"(via '%s')",
						c->iter, c->seed, m, a, db, c->known[mi][ai],
						before, after, via);
			} else if (strcmp(strcmp(pend, "-") ? pend : "", db)) {
				fail_msg("iteration %d (seed %" PRIu64
					 "): %s/%s is '%s', neither the "
					 "reported '%s' nor the tried '%s'",
					 c->iter, c->seed, m, a, db, c->known[mi][ai], pend);
			} else if (strcmp(before, c->known[mi][ai]) || strcmp(after, db)) {
				fail_msg("iteration %d: %s/%s: last event %s→%s, expected %s→%s",
					 c->iter, m, a, before, after, c->known[mi][ai], db);
			}
			c->maybe_committed++;
			cm_strlcpy(c->known[mi][ai], db, REG_NAME_MAX);
		}
		c->pending[mi][ai][0] = '\0';
		snprintf(rel, sizeof(rel), "%s/%s", m, a);
		link = fx_readlink(c->dir, rel);
		if (!db[0]) {
			if (link)
				fail_msg("iteration %d: %s/%s is unset but its symlink says '%s'",
					 c->iter, m, a, link);
			continue;
		}
		assert_int_equal(reg_version_get(st, m, db, &v), 0);
		if (v.state != REG_SEALED)
			fail_msg("iteration %d: %s/%s points at %s, which is %s", c->iter, m, a, db,
				 reg_state_name(v.state));
		if (!link || strcmp(link, db))
			fail_msg("iteration %d: %s/%s is '%s' in the db, symlink says '%s'",
				 c->iter, m, a, db, link ? link : "(none)");
	}
	snprintf(rel, sizeof(rel), "%s/metadata.json", m);
	text = fx_read(c->dir, rel);
	if (!text)
		fail_msg("iteration %d: cannot read %s", c->iter, rel);
	doc = json_loads(text, 0, &jerr);
	if (!doc)
		fail_msg("iteration %d: %s does not parse: %s", c->iter, rel, jerr.text);
	jal = json_object_get(doc, "aliases");
	assert_true(json_is_object(jal));
	if (json_object_size(jal) != n)
		fail_msg("iteration %d: %s lists %zu aliases, the db has %zu", c->iter, rel,
			 json_object_size(jal), n);
	for (size_t i = 0; i < n; i++) {
		json_t *j = json_object_get(jal, al[i].name);

		if (!json_is_string(j) || strcmp(json_string_value(j), al[i].version))
			fail_msg("iteration %d: %s says %s=%s, the db says %s", c->iter, rel,
				 al[i].name, json_is_string(j) ? json_string_value(j) : "(none)",
				 al[i].version);
	}
	json_decref(doc);
	free(al);
}

/* Reopens after a kill and checks everything; facts from `first` on are new. */
static void check_store(struct crash *c, size_t first)
{
	struct reg_store *st = NULL;
	char msg[256];
	int rc;

	if (reg_store_open(c->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &st) < 0)
		fail_msg("iteration %d (seed %" PRIu64 "): reopen: %s", c->iter, c->seed,
			 cm_err_msg());
	assert_int_equal(reg_store_disk_errors(st, msg, sizeof(msg)), 0);
	rc = reg_store_fsck(st, 0, 1, fsck_print, c);
	if (rc != 0)
		fail_msg("iteration %d (seed %" PRIu64 "): fsck after the kill: %d problem(s) "
			 "(%s); store kept at %s",
			 c->iter, c->seed, rc, rc < 0 ? cm_err_msg() : "above", c->dir);
	for (size_t i = first; i < c->nfacts; i++)
		check_fact(c, st, &c->facts[i]);
	for (int mi = 0; mi < NMODELS; mi++)
		check_model_aliases(c, st, mi);
	reg_store_close(st);
}

/* Reads what is in the pipe now (or waits up to `ms`); returns 0 at EOF. */
static int pipe_drain(struct crash *c, int fd, char *buf, size_t *have, size_t cap, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t r;
	char *nl;

	if (poll(&p, 1, ms) <= 0)
		return 1;
	r = read(fd, buf + *have, cap - *have - 1);
	if (r < 0 && errno == EINTR)
		return 1;
	assert_true(r >= 0);
	if (r == 0)
		return 0;
	*have += (size_t)r;
	buf[*have] = '\0';
	while ((nl = strchr(buf, '\n')) != NULL) {
		*nl = '\0';
		parse_line(c, buf);
		*have -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, *have + 1);
	}
	assert_true(*have < cap - 1);
	return 1;
}

static void one_iteration(struct crash *c, uint64_t *rng)
{
	char buf[8192];
	size_t have = 0;
	size_t first = c->nfacts;
	long lines_before = c->lines;
	int64_t deadline;
	int p[2];
	int status;
	pid_t pid;
	int delay_ms = 1 + (int)rng_below(rng, 30);
	/*
	 * Mostly the delay counts from "opened", so that slow builds (sanitizers)
	 * still get past the open; one kill in four counts from the fork and may
	 * land in the open and its reconcile.
	 */
	int from_open = rng_below(rng, 4) != 0;
	uint64_t child_seed = rng_next(rng);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child_main(c->dir, p[1], c->iter, child_seed);
	}
	close(p[1]);
	c->opened = 0;
	deadline = mono_us() + (from_open ? 60000000 : delay_ms * 1000);
	for (;;) {
		int64_t left;

		if (from_open && c->opened) {
			deadline = mono_us() + delay_ms * 1000;
			from_open = 0;
		}
		left = deadline - mono_us();
		if (left <= 0)
			break;
		if (!pipe_drain(c, p[0], buf, &have, sizeof(buf), (int)((left + 999) / 1000)))
			break; /* the child is gone already: it reported an error */
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	while (pipe_drain(c, p[0], buf, &have, sizeof(buf), -1))
		;
	close(p[0]);
	if (have)
		fail_msg("iteration %d: half a line from the child: '%s'", c->iter, buf);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("iteration %d (seed %" PRIu64 "): child ended by itself (status %#x)",
			 c->iter, c->seed, status);
	if (from_open)
		fail_msg("iteration %d: the child did not open the store within 60 s", c->iter);
	if (c->lines == lines_before)
		c->kills_before_open++;
	check_store(c, first);
}

static unsigned long env_num(const char *name, unsigned long def)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !s[0])
		return def;
	v = strtoul(s, &end, 0);
	return *end ? def : v;
}

static void kill_at_random_moments(void **state)
{
	struct crash *c = calloc(1, sizeof(*c));
	int iterations = (int)env_num("MODELFS_CRASH_ITERATIONS", 200);
	struct reg_store *st = NULL;
	uint64_t rng;
	int64_t t0 = mono_us();

	(void)state;
	assert_non_null(c);
	c->seed = env_num("MODELFS_CRASH_SEED", 0);
	if (!c->seed)
		c->seed = (uint64_t)cm_time_now_us() ^ ((uint64_t)getpid() << 32);
	rng = c->seed;
	fx_mkdtemp(c->dir, sizeof(c->dir));
	print_message("crash test: seed %" PRIu64 " (MODELFS_CRASH_SEED=%" PRIu64
		      " to repeat), %d iterations, store %s\n",
		      c->seed, c->seed, iterations, c->dir);

	/* The store and its models exist before the first kill. */
	assert_int_equal(reg_store_open(c->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &st), 0);
	for (int i = 0; i < NMODELS; i++)
		assert_int_equal(reg_model_create(st, &fx_actor, models[i], NULL), 0);
	reg_store_close(st);

	for (c->iter = 0; c->iter < iterations; c->iter++)
		one_iteration(c, &rng);
	/* Every fact ever reported still holds at the end. */
	c->iter = -1;
	check_store(c, 0);
	print_message("crash test: %d kills (%ld before the store was open), %ld report lines, "
		      "%ld versions sealed, %ld drafts and %ld models deleted, %ld alias changes "
		      "reported, "
		      "%ld landed unreported, %.1f s\n",
		      iterations, c->kills_before_open, c->lines, c->sealed, c->deleted,
		      c->models_deleted, c->alias_changes, c->maybe_committed,
		      (double)(mono_us() - t0) / 1e6);
	if (!getenv("MODELFS_TEST_KEEP"))
		fx_rmrf(c->dir);
	free(c->facts);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kill_at_random_moments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
