/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Many threads on one store at once: writers create, write, seal and promote
 * versions (and race each other sealing the same drafts and moving the same
 * aliases), readers read aliases, version lists, metadata records, the alias
 * symlinks and <model>/metadata.json on disk. Every alias read must name a
 * sealed version, every symlink a sealed version directory, every file on
 * disk must parse; at the end the event log holds exactly one event per
 * change that was made (none lost, none doubled) and fsck is clean before
 * and after a reopen. tests/run-tsan.sh runs this under ThreadSanitizer.
 *
 * MODELFS_CONCURRENCY_OPS (operations per writer, default 60) and
 * MODELFS_CONCURRENCY_SEED (printed at the start) tune a run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define NMODELS 2
#define NALIASES 3
#define NWRITERS 4
#define NREADERS 4

static const char *const models[NMODELS] = { "conc-a", "conc-b" };
static const char *const aliases[NALIASES] = { "current", "canary", "staging" };

/* Mutating calls that succeeded, by the event kind each must have produced. */
enum kind { K_MODEL_CREATE, K_VERSION_CREATE, K_PATCH, K_ALIAS_SET, K_ALIAS_DELETE, K_COUNT };
static const char *const kind_names[K_COUNT] = {
	[K_MODEL_CREATE] = "model.create",
	[K_VERSION_CREATE] = "version.create",
	[K_PATCH] = "metadata.patch",
	[K_ALIAS_SET] = "alias.set",
	[K_ALIAS_DELETE] = "alias.delete",
};

struct names {
	char (*v)[REG_NAME_MAX];
	size_t n, cap;
};

struct shared {
	struct fx *f;
	int ops;
	uint64_t seed;
	pthread_mutex_t mu; /* guards the name pools and first_failure */
	struct names sealed[NMODELS]; /* versions known sealed: promotion targets */
	struct names ready[NMODELS]; /* drafts with files closed: anyone may seal them */
	struct names left[NMODELS]; /* drafts their creator left unsealed */
	atomic_long count[K_COUNT];
	atomic_long seal_calls, seal_busy, cas_stale, reads, links_seen, write_opens, fscks;
	atomic_int writers_left;
	atomic_int failures;
	char first_failure[1024];
};

struct worker {
	struct shared *sh;
	int id;
	uint64_t rng;
};

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

/* cmocka is not thread-safe: threads record failures, the main thread asserts. */
static void failure(struct shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failure(struct shared *sh, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&sh->mu);
	if (atomic_fetch_add(&sh->failures, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(sh->first_failure, sizeof(sh->first_failure), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&sh->mu);
}

static void names_add(struct shared *sh, struct names *l, const char *name)
{
	pthread_mutex_lock(&sh->mu);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		void *nv = realloc(l->v, cap * sizeof(*l->v));

		if (!nv)
			abort();
		l->v = nv;
		l->cap = cap;
	}
	cm_strlcpy(l->v[l->n++], name, REG_NAME_MAX);
	pthread_mutex_unlock(&sh->mu);
}

/* A random name from l (other than `except`) into out; 0 if there is none. */
static int names_pick(struct shared *sh, struct names *l, const char *except, uint64_t *rng,
		      char out[REG_NAME_MAX])
{
	int found = 0;

	pthread_mutex_lock(&sh->mu);
	for (int tries = 0; tries < 4 && l->n && !found; tries++) {
		const char *v = l->v[rng_below(rng, (unsigned)l->n)];

		if (!except || strcmp(v, except)) {
			cm_strlcpy(out, v, REG_NAME_MAX);
			found = 1;
		}
	}
	pthread_mutex_unlock(&sh->mu);
	return found;
}

static int write_file(const char *path, const char *content)
{
	size_t len = strlen(content);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, content, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -EIO;
}

/* A whole small file into a new buffer (thread-safe, unlike fx_read). */
static char *read_file(const char *path)
{
	char *buf = NULL;
	struct stat sb;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) == 0 && (buf = malloc((size_t)sb.st_size + 1)) != NULL) {
		r = read(fd, buf, (size_t)sb.st_size);
		buf[r > 0 ? r : 0] = '\0';
	}
	close(fd);
	return buf;
}

/* ---- writers ---- */

/* -EBUSY that another thread's seal or write of the same draft explains. */
static int busy_by_race(int rc)
{
	return rc == -EBUSY &&
	       (strstr(cm_err_msg(), "being sealed") || strstr(cm_err_msg(), "open for writing"));
}

/* Creates a draft, writes it under reg_write_begin/end, passes it. Name in out. */
static int new_draft(struct worker *w, const char *m, char out[REG_NAME_MAX])
{
	struct shared *sh = w->sh;
	json_t *patch = json_pack("{ss}", "validation_status", "passed");
	struct reg_version v;
	char path[PATH_MAX], content[128];
	int64_t vid;
	int rc;

	rc = reg_version_create(sh->f->st, &fx_actor, m, NULL, NULL, &v);
	if (rc < 0) {
		failure(sh, "create %s: %s", m, cm_err_msg());
		goto done;
	}
	atomic_fetch_add(&sh->count[K_VERSION_CREATE], 1);
	rc = reg_write_begin(sh->f->st, m, v.name, &vid);
	if (rc < 0) {
		failure(sh, "write_begin %s/%s: %s", m, v.name, cm_err_msg());
		goto done;
	}
	snprintf(content, sizeof(content), "weights of %s/%s by writer %d %" PRIu64 "\n", m, v.name,
		 w->id, rng_next(&w->rng));
	snprintf(path, sizeof(path), "%s/%s/%s/model.pkl", sh->f->dir, m, v.name);
	rc = write_file(path, content);
	snprintf(path, sizeof(path), "%s/%s/%s/config.json", sh->f->dir, m, v.name);
	if (rc == 0)
		rc = write_file(path, "{\"layers\": 3}\n");
	reg_write_end(sh->f->st, vid);
	if (rc < 0) {
		failure(sh, "writing into %s/%s: %s", m, v.name, strerror(-rc));
		goto done;
	}
	rc = reg_version_metadata_patch(sh->f->st, &fx_actor, m, v.name, patch);
	if (rc < 0 && !busy_by_race(rc)) {
		failure(sh, "patch %s/%s: %s", m, v.name, cm_err_msg());
		goto done;
	}
	if (rc == 0)
		atomic_fetch_add(&sh->count[K_PATCH], 1);
	rc = 0; /* a seal that began meanwhile holds the record still (EBUSY): not a failure */
	cm_strlcpy(out, v.name, REG_NAME_MAX);
done:
	json_decref(patch);
	return rc;
}

/* Seals m/v; a concurrent sealer or writer of the same draft may make this -EBUSY. */
static int seal(struct worker *w, const char *m, const char *v, int busy_ok)
{
	struct shared *sh = w->sh;
	struct reg_version out;
	int rc;

	atomic_fetch_add(&sh->seal_calls, 1);
	rc = reg_version_seal(sh->f->st, &fx_actor, m, v, &out);
	if (busy_ok && busy_by_race(rc)) {
		atomic_fetch_add(&sh->seal_busy, 1);
		return rc;
	}
	if (rc < 0)
		failure(sh, "seal %s/%s: %d %s", m, v, rc, cm_err_msg());
	else if (out.state != REG_SEALED || strlen(out.digest) != 64)
		failure(sh, "seal %s/%s returned state %s digest '%s'", m, v,
			reg_state_name(out.state), out.digest);
	return rc;
}

/* Points alias a of m at target, compare-and-swap on what was read just before. */
static void promote(struct worker *w, const char *m, const char *a, const char *target, int draft)
{
	struct shared *sh = w->sh;
	struct reg_alias cur, out;
	struct reg_alias_opts o = { .percent = -1 };
	int rc;

	rc = reg_alias_get(sh->f->st, m, a, &cur);
	if (rc == -ENOENT) {
		o.expected = "";
	} else if (rc < 0) {
		failure(sh, "alias get %s/%s: %s", m, a, cm_err_msg());
		return;
	} else {
		if (!strcmp(cur.version, target))
			return; /* would change nothing, so no event: not what we count */
		o.expected = cur.version;
	}
	if (!strcmp(a, "canary"))
		o.percent = (int)rng_below(&w->rng, 101);
	rc = reg_alias_set(sh->f->st, &fx_actor, m, a, target, &o, &out);
	if (rc == 0) {
		atomic_fetch_add(&sh->count[K_ALIAS_SET], 1);
		if (strcmp(out.version, target))
			failure(sh, "alias set %s/%s=%s returned %s", m, a, target, out.version);
	} else if (rc == -ESTALE) {
		atomic_fetch_add(&sh->cas_stale, 1);
	} else if (draft && busy_by_race(rc)) {
		atomic_fetch_add(&sh->seal_busy, 1); /* another writer has the draft */
	} else {
		failure(sh, "alias set %s/%s=%s: %d %s", m, a, target, rc, cm_err_msg());
	}
}

static void writer_op(struct worker *w)
{
	struct shared *sh = w->sh;
	struct reg_store *st = sh->f->st;
	unsigned mi = rng_below(&w->rng, NMODELS);
	const char *m = models[mi];
	const char *a = aliases[rng_below(&w->rng, NALIASES)];
	unsigned op = rng_below(&w->rng, 100);
	char v[REG_NAME_MAX];
	struct reg_alias cur;
	int rc;

	if (op < 35) {
		/* New version, sealed directly or by pointing an alias at the draft. */
		unsigned how = rng_below(&w->rng, 10);

		if (new_draft(w, m, v) < 0)
			return;
		names_add(sh, &sh->ready[mi], v);
		if (how < 5)
			seal(w, m, v, 1);
		else if (how < 8)
			promote(w, m, a, v, 1);
		else
			names_add(sh, &sh->left[mi], v); /* for the others to write and seal */
		names_add(sh, &sh->sealed[mi], v);
		return;
	}
	if (op < 45) {
		/* Race the owner (or an earlier sealer) to seal a draft. */
		if (names_pick(sh, &sh->ready[mi], NULL, &w->rng, v))
			seal(w, m, v, 1);
		return;
	}
	if (op < 50) {
		/* Open a write on a draft someone may be sealing: it must not slip past a seal. */
		struct reg_version ver;
		int64_t vid;

		if (!names_pick(sh, &sh->left[mi], NULL, &w->rng, v))
			return;
		rc = reg_write_begin(st, m, v, &vid);
		if (rc == 0) {
			char path[PATH_MAX];
			long k = atomic_fetch_add(&sh->write_opens, 1);

			if (reg_version_get(st, m, v, &ver) < 0 || ver.state != REG_DRAFT)
				failure(sh, "write open on %s/%s, which is %s", m, v,
					reg_state_name(ver.state));
			/* A seal must wait for this: else fsck finds a file it did not record. */
			snprintf(path, sizeof(path), "%s/%s/%s/extra-%ld.bin", sh->f->dir, m, v, k);
			if (write_file(path, "late but in time\n") < 0)
				failure(sh, "writing %s: %s", path, strerror(errno));
			reg_write_end(st, vid);
		} else if (rc != -EROFS && !busy_by_race(rc)) {
			/* Sealed (EROFS), or being sealed (EBUSY): a seal holds its version still. */
			failure(sh, "write_begin %s/%s: %d %s", m, v, rc, cm_err_msg());
		}
		return;
	}
	if (op < 80) {
		struct reg_version ver;

		rc = reg_alias_get(st, m, a, &cur);
		if (names_pick(sh, &sh->sealed[mi], rc == 0 ? cur.version : NULL, &w->rng, v) &&
		    reg_version_get(st, m, v, &ver) == 0 && ver.state == REG_SEALED)
			promote(w, m, a, v, 0);
		return;
	}
	if (op < 88) {
		struct reg_alias out;

		rc = reg_alias_rollback(st, &fx_actor, m, a, NULL, &out);
		if (rc == 0)
			atomic_fetch_add(&sh->count[K_ALIAS_SET], 1);
		else if (rc != -ENOENT)
			failure(sh, "rollback %s/%s: %s", m, a, cm_err_msg());
		return;
	}
	if (op < 94) {
		rc = reg_canary_promote(st, &fx_actor, m, NULL, NULL);
		if (rc == 0) {
			atomic_fetch_add(&sh->count[K_ALIAS_SET], 1);
			atomic_fetch_add(&sh->count[K_ALIAS_DELETE], 1);
		} else if (rc != -ENOENT) {
			failure(sh, "canary promote %s: %s", m, cm_err_msg());
		}
		return;
	}
	/* Clear a non-production alias, CAS on the value just read. */
	if (!strcmp(a, "current"))
		a = "staging";
	if (reg_alias_get(st, m, a, &cur) < 0)
		return;
	rc = reg_alias_delete(st, &fx_actor, m, a, cur.version);
	if (rc == 0)
		atomic_fetch_add(&sh->count[K_ALIAS_DELETE], 1);
	else if (rc == -ESTALE || rc == -ENOENT)
		atomic_fetch_add(&sh->cas_stale, 1);
	else
		failure(sh, "alias delete %s/%s: %s", m, a, cm_err_msg());
}

static void *writer_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < w->sh->ops && !atomic_load(&w->sh->failures); i++)
		writer_op(w);
	atomic_fetch_sub(&w->sh->writers_left, 1);
	return NULL;
}

/* ---- readers ---- */

/* m/v must exist and be sealed (a state that, once reached, never goes back). */
static void expect_sealed(struct shared *sh, const char *m, const char *v, const char *via)
{
	struct reg_version ver;

	if (reg_version_get(sh->f->st, m, v, &ver) < 0)
		failure(sh, "%s names %s/%s, which does not exist: %s", via, m, v, cm_err_msg());
	else if (ver.state != REG_SEALED)
		failure(sh, "%s names %s/%s, which is %s", via, m, v, reg_state_name(ver.state));
}

static void reader_round(struct worker *w, int64_t *last_count)
{
	struct shared *sh = w->sh;
	struct reg_store *st = sh->f->st;
	const char *m = models[rng_below(&w->rng, NMODELS)];
	struct reg_version *vers = NULL;
	struct reg_alias *al = NULL;
	char path[PATH_MAX], target[PATH_MAX], via[128];
	size_t nv = 0, na = 0;
	int64_t count;
	json_t *doc;
	char *text;

	for (int i = 0; i < NALIASES; i++) {
		struct reg_alias a;
		ssize_t len;
		struct stat sb;
		int rc = reg_alias_get(st, m, aliases[i], &a);

		if (rc == 0) {
			snprintf(via, sizeof(via), "alias %s/%s", m, aliases[i]);
			expect_sealed(sh, m, a.version, via);
		} else if (rc != -ENOENT) {
			failure(sh, "alias get %s/%s: %s", m, aliases[i], cm_err_msg());
		}
		snprintf(path, sizeof(path), "%s/%s/%s", sh->f->dir, m, aliases[i]);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0) {
			if (errno != ENOENT)
				failure(sh, "readlink %s: %s", path, strerror(errno));
			continue;
		}
		target[len] = '\0';
		atomic_fetch_add(&sh->links_seen, 1);
		snprintf(via, sizeof(via), "symlink %s/%s", m, aliases[i]);
		if (reg_name_version_check(target) < 0)
			failure(sh, "%s -> '%s' is not a version name", via, target);
		else
			expect_sealed(sh, m, target, via);
		snprintf(path, sizeof(path), "%s/%s/%s", sh->f->dir, m, target);
		if (stat(path, &sb) < 0 || !S_ISDIR(sb.st_mode))
			failure(sh, "%s -> '%s' is not a directory", via, target);
	}

	if (reg_version_list(st, m, NULL, &vers, &nv) < 0) {
		failure(sh, "version list %s: %s", m, cm_err_msg());
	} else {
		for (size_t i = 0; i < nv; i++) {
			if (i && vers[i].seq <= vers[i - 1].seq)
				failure(sh, "version list %s out of order at %s", m, vers[i].name);
			if ((vers[i].state == REG_SEALED) != (strlen(vers[i].digest) == 64))
				failure(sh, "%s/%s is %s with digest '%s'", m, vers[i].name,
					reg_state_name(vers[i].state), vers[i].digest);
		}
		if (nv) {
			const struct reg_version *v = &vers[rng_below(&w->rng, (unsigned)nv)];
			json_t *rec = NULL;

			if (reg_version_metadata_get(st, m, v->name, &rec) < 0)
				failure(sh, "metadata get %s/%s: %s", m, v->name, cm_err_msg());
			else if (!json_is_string(json_object_get(rec, "version")) ||
				 strcmp(json_string_value(json_object_get(rec, "version")),
					v->name) ||
				 !json_is_array(json_object_get(rec, "deployed_to")))
				failure(sh, "metadata record of %s/%s is malformed", m, v->name);
			json_decref(rec);
		}
	}
	free(vers);

	if (reg_alias_list(st, m, &al, &na) < 0) {
		failure(sh, "alias list %s: %s", m, cm_err_msg());
	} else {
		for (size_t i = 0; i < na; i++) {
			snprintf(via, sizeof(via), "listed alias %s/%s", m, al[i].name);
			expect_sealed(sh, m, al[i].version, via);
		}
	}
	free(al);

	/* Written by rename: never torn, always JSON. */
	snprintf(path, sizeof(path), "%s/%s/metadata.json", sh->f->dir, m);
	text = read_file(path);
	doc = text ? json_loads(text, 0, NULL) : NULL;
	if (!doc || !json_is_object(json_object_get(doc, "aliases")))
		failure(sh, "%s/metadata.json is %s", m,
			text ? "not the expected JSON" : "unreadable");
	json_decref(doc);
	free(text);

	/* fsck beside the writers: it may see a change half on disk, but must not fail. */
	if (w->id == NWRITERS && rng_below(&w->rng, 64) == 0) {
		int rc = reg_store_fsck(st, 0, 0, NULL, NULL);

		if (rc < 0)
			failure(sh, "fsck beside writers: %d %s", rc, cm_err_msg());
		atomic_fetch_add(&sh->fscks, 1);
	}
	/* This one waits for the writer's mutex: now and then, not every round. */
	if (rng_below(&w->rng, 16) == 0 && reg_store_disk_errors(st, NULL, 0) != 0)
		failure(sh, "disk errors: %" PRId64, reg_store_disk_errors(st, NULL, 0));
	if (reg_event_count(st, &count) < 0)
		failure(sh, "event count: %s", cm_err_msg());
	else if (count < *last_count)
		failure(sh, "event count went back from %" PRId64 " to %" PRId64, *last_count,
			count);
	else
		*last_count = count;
	atomic_fetch_add(&sh->reads, 1);
}

static void *reader_main(void *arg)
{
	struct worker *w = arg;
	int64_t last = 0;

	/* At least a few rounds, then until the writers are done. */
	for (int i = 0; i < 4 || atomic_load(&w->sh->writers_left) > 0; i++) {
		if (atomic_load(&w->sh->failures))
			break;
		reader_round(w, &last);
	}
	return NULL;
}

/* ---- the test ---- */

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

static size_t events_of(struct reg_store *st, const char *kind, json_t **out)
{
	struct reg_event_filter f = { .kind = kind };
	json_t *ev = NULL;
	size_t n;

	assert_int_equal(reg_event_list(st, NULL, &f, &ev), 0);
	n = json_array_size(ev);
	if (out)
		*out = ev;
	else
		json_decref(ev);
	return n;
}

/* Versions in the store, and how many are sealed; checks one seal event each. */
static void check_versions(struct shared *sh, long *total, long *sealed)
{
	struct reg_store *st = sh->f->st;
	json_t *seals = NULL;
	size_t nseal = events_of(st, "version.seal", &seals);

	*total = *sealed = 0;
	for (int mi = 0; mi < NMODELS; mi++) {
		struct reg_version *v = NULL;
		size_t n = 0;

		assert_int_equal(reg_version_list(st, models[mi], NULL, &v, &n), 0);
		*total += (long)n;
		for (size_t i = 0; i < n; i++) {
			int seen = 0;
			size_t k;
			json_t *e;

			if (v[i].state != REG_SEALED)
				continue;
			(*sealed)++;
			json_array_foreach (seals, k, e) {
				seen += !strcmp(json_string_value(json_object_get(e, "model")),
						models[mi]) &&
					!strcmp(json_string_value(json_object_get(e, "version")),
						v[i].name);
			}
			if (seen != 1)
				fail_msg("%s/%s is sealed and has %d seal events", models[mi],
					 v[i].name, seen);
		}
		free(v);
	}
	if ((long)nseal != *sealed)
		fail_msg("%zu seal events for %ld sealed versions", nseal, *sealed);
	json_decref(seals);
}

/* Event log == counted changes, kind by kind, and nothing else in it. */
static void check_events(struct shared *sh)
{
	struct reg_store *st = sh->f->st;
	long total, sealed, sum = 0;
	int64_t count = 0;

	check_versions(sh, &total, &sealed);
	for (int k = 0; k < K_COUNT; k++) {
		long want = atomic_load(&sh->count[k]);
		size_t got = events_of(st, kind_names[k], NULL);

		if ((long)got != want)
			fail_msg("%s: %zu events for %ld successful calls", kind_names[k], got,
				 want);
		sum += want;
	}
	if (total != atomic_load(&sh->count[K_VERSION_CREATE]))
		fail_msg("%ld versions, %ld created", total,
			 atomic_load(&sh->count[K_VERSION_CREATE]));
	assert_int_equal(events_of(st, "refused", NULL), 0);
	sum += sealed;
	assert_int_equal(reg_event_count(st, &count), 0);
	if (count != sum)
		fail_msg("%" PRId64 " events in the log, %ld changes made", count, sum);
}

/* Symlinks and metadata.json agree with the db (the readers only saw moments). */
static void check_disk(struct shared *sh)
{
	for (int mi = 0; mi < NMODELS; mi++) {
		struct reg_alias *al = NULL;
		char rel[PATH_MAX];
		size_t n = 0;

		assert_int_equal(reg_alias_list(sh->f->st, models[mi], &al, &n), 0);
		for (size_t i = 0; i < n; i++) {
			const char *link;

			snprintf(rel, sizeof(rel), "%s/%s", models[mi], al[i].name);
			link = fx_readlink(sh->f->dir, rel);
			if (!link || strcmp(link, al[i].version))
				fail_msg("%s is %s in the db, symlink says %s", rel, al[i].version,
					 link ? link : "(none)");
		}
		free(al);
	}
}

static void many_threads_one_store(void **state)
{
	struct fx *f = *state;
	struct shared *sh = calloc(1, sizeof(*sh));
	struct worker w[NWRITERS + NREADERS];
	pthread_t th[NWRITERS + NREADERS];
	struct timespec t0, t1;
	char msg[256];
	int64_t before = 0, after = 0;

	assert_non_null(sh);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sh->f = f;
	sh->ops = (int)env_num("MODELFS_CONCURRENCY_OPS", 60);
	sh->seed = env_num("MODELFS_CONCURRENCY_SEED", 0);
	if (!sh->seed)
		sh->seed = (uint64_t)cm_time_now_us() ^ ((uint64_t)getpid() << 32);
	pthread_mutex_init(&sh->mu, NULL);
	print_message("concurrency: seed %" PRIu64 " (MODELFS_CONCURRENCY_SEED), %d writers x %d "
		      "ops, %d readers\n",
		      sh->seed, NWRITERS, sh->ops, NREADERS);

	/* Each model starts with one sealed, passed version behind `current`. */
	for (int mi = 0; mi < NMODELS; mi++) {
		struct worker boot = { .sh = sh, .id = -1, .rng = sh->seed };
		char v[REG_NAME_MAX];

		assert_int_equal(reg_model_create(f->st, &fx_actor, models[mi], NULL), 0);
		atomic_fetch_add(&sh->count[K_MODEL_CREATE], 1);
		assert_int_equal(new_draft(&boot, models[mi], v), 0);
		promote(&boot, models[mi], "current", v, 1);
		names_add(sh, &sh->sealed[mi], v);
	}
	assert_int_equal(sh->failures, 0);

	atomic_store(&sh->writers_left, NWRITERS);
	for (int i = 0; i < NWRITERS + NREADERS; i++) {
		w[i] = (struct worker){ .sh = sh,
					.id = i,
					.rng = sh->seed + 0x1000u * (unsigned)(i + 1) };
		assert_int_equal(pthread_create(&th[i], NULL,
						i < NWRITERS ? writer_main : reader_main, &w[i]),
				 0);
	}
	for (int i = 0; i < NWRITERS + NREADERS; i++)
		pthread_join(th[i], NULL);
	if (sh->failures)
		fail_msg("%d failure(s) in the threads (seed %" PRIu64 "), the first: %s",
			 sh->failures, sh->seed, sh->first_failure);

	check_events(sh);
	check_disk(sh);
	assert_int_equal(reg_store_disk_errors(f->st, msg, sizeof(msg)), 0);
	assert_int_equal(fx_fsck(f), 0);
	assert_int_equal(reg_event_count(f->st, &before), 0);
	fx_reopen(f);
	assert_int_equal(fx_fsck(f), 0);
	assert_int_equal(reg_event_count(f->st, &after), 0);
	assert_int_equal(before, after); /* a clean reopen reconciles nothing */
	check_events(sh);
	check_disk(sh);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message(
		"concurrency: %ld versions, %ld patches, %ld alias sets, %ld alias deletes, "
		"%ld seal calls (%ld lost a race), %ld CAS conflicts, %ld write opens, %ld reader "
		"rounds, %ld symlinks read, %ld fscks, %.1f s\n",
		atomic_load(&sh->count[K_VERSION_CREATE]), atomic_load(&sh->count[K_PATCH]),
		atomic_load(&sh->count[K_ALIAS_SET]), atomic_load(&sh->count[K_ALIAS_DELETE]),
		atomic_load(&sh->seal_calls), atomic_load(&sh->seal_busy),
		atomic_load(&sh->cas_stale), atomic_load(&sh->write_opens), atomic_load(&sh->reads),
		atomic_load(&sh->links_seen), atomic_load(&sh->fscks),
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (int mi = 0; mi < NMODELS; mi++) {
		free(sh->sealed[mi].v);
		free(sh->ready[mi].v);
		free(sh->left[mi].v);
	}
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(many_threads_one_store, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
