/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error injection across the registry's operations, SQLite's own habit: run
 * an operation with the Nth fault armed for N = 1, 2, 3, ... until it
 * succeeds without reaching the fault. Three kinds of fault:
 *
 *   step   the Nth db_step() answers -EIO (the db_step_fault hook);
 *   sqlite the Nth allocation SQLite makes fails (SQLITE_CONFIG_MALLOC);
 *   libc   the Nth malloc/calloc/realloc/strdup/strndup of registry and
 *          common code fails (ld --wrap on this executable only); jansson
 *          allocates through registry/json.c, so its allocations count too.
 *
 * After every injected failure the operation must have returned an error
 * and the store (every db table and the whole tree on disk) must equal the
 * state before, or the operation's full effect; an operation that succeeds
 * despite the fault must show its full effect. The full effect comes from
 * a reference run without faults, compared with timestamps and inode
 * numbers left out. Temporary files of atomic writes (".tmp-") are ignored:
 * nothing shows them and the next open removes them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "reg_i.h"

/* ---- the faults ---- */

enum fault { F_NONE, F_STEP, F_SQLITE, F_LIBC };
static const char *const fault_names[] = { "none", "step", "sqlite", "libc" };

static enum fault armed;
static long countdown;
static int fired;

/* 1 when this call is the one to fail. */
static int fault_hit(enum fault kind)
{
	if (armed != kind || fired)
		return 0;
	if (--countdown > 0)
		return 0;
	fired = 1;
	return 1;
}

static void fault_arm(enum fault kind, long n)
{
	fired = 0;
	countdown = n;
	armed = kind;
}

static void fault_disarm(void)
{
	armed = F_NONE;
}

static int step_fault(struct db_stmt *s)
{
	(void)s;
	return fault_hit(F_STEP) ? -EIO : 0;
}

static sqlite3_mem_methods sqlite_mem;

static void *sqlite_malloc(int n)
{
	return fault_hit(F_SQLITE) ? NULL : sqlite_mem.xMalloc(n);
}

static void *sqlite_realloc(void *p, int n)
{
	return fault_hit(F_SQLITE) ? NULL : sqlite_mem.xRealloc(p, n);
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
	return fault_hit(F_LIBC) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fault_hit(F_LIBC) ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fault_hit(F_LIBC) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return fault_hit(F_LIBC) ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return fault_hit(F_LIBC) ? NULL : __real_strndup(s, n);
}


/* ---- the state of a store, as text ---- */

static int time_column(const char *name)
{
	size_t n = strlen(name);

	return !strcmp(name, "ts") || (n > 3 && !strcmp(name + n - 3, "_at")) ||
	       !strcmp(name, "ino") || !strcmp(name, "mtime_ns") || !strcmp(name, "ctime_ns");
}

static void snap_db(const char *dir, int norm, struct cm_buf *b)
{
	char path[PATH_MAX];
	sqlite3 *db = NULL;
	sqlite3_stmt *t = NULL;

	snprintf(path, sizeof(path), "%s/.modelfs/registry.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' "
					    "AND name NOT LIKE 'sqlite_%' ORDER BY name",
					    -1, &t, NULL),
			 SQLITE_OK);
	while (sqlite3_step(t) == SQLITE_ROW) {
		const char *table = (const char *)sqlite3_column_text(t, 0);
		struct cm_buf q = { 0 };
		sqlite3_stmt *c = NULL, *r = NULL;
		int ncol = 0;

		cm_buf_printf(&q, "SELECT ");
		cm_buf_printf(b, "[%s]\n", table);
		{
			char info[256];

			snprintf(info, sizeof(info), "PRAGMA table_info(%s)", table);
			assert_int_equal(sqlite3_prepare_v2(db, info, -1, &c, NULL), SQLITE_OK);
		}
		while (sqlite3_step(c) == SQLITE_ROW) {
			const char *col = (const char *)sqlite3_column_text(c, 1);

			if (norm && time_column(col))
				continue;
			cm_buf_printf(&q, "%squote(\"%s\")", ncol++ ? " || '|' || " : "", col);
		}
		sqlite3_finalize(c);
		cm_buf_printf(&q, " AS row FROM \"%s\" ORDER BY row", table);
		if (ncol) {
			assert_int_equal(sqlite3_prepare_v2(db, q.data, -1, &r, NULL), SQLITE_OK);
			while (sqlite3_step(r) == SQLITE_ROW)
				cm_buf_printf(b, "%s\n", (const char *)sqlite3_column_text(r, 0));
			sqlite3_finalize(r);
		}
		cm_buf_free(&q);
	}
	sqlite3_finalize(t);
	sqlite3_close(db);
}

/* A generated metadata.json less its timestamps (keys ending in _at). */
static void strip_times(json_t *j)
{
	const char *k;
	json_t *v;
	void *tmp;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach_safe(j, tmp, k, v) {
			size_t n = strlen(k);

			if (n > 3 && !strcmp(k + n - 3, "_at"))
				json_object_del(j, k);
			else
				strip_times(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			strip_times(v);
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void snap_tree(const char *dir, const char *rel, int norm, struct cm_buf *b)
{
	char path[PATH_MAX];
	char *names[512];
	size_t n = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s%s%s", dir, rel[0] ? "/" : "", rel);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (!rel[0] && !strcmp(de->d_name, ".modelfs")) || strstr(de->d_name, ".tmp-"))
			continue;
		assert_true(n < 512);
		names[n++] = __real_strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char sub[PATH_MAX], full[PATH_MAX];
		struct stat sb;

		snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
		snprintf(full, sizeof(full), "%s/%s", dir, sub);
		assert_int_equal(lstat(full, &sb), 0);
		if (S_ISLNK(sb.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlink(full, target, sizeof(target) - 1);

			target[len > 0 ? len : 0] = '\0';
			cm_buf_printf(b, "%s -> %s\n", sub, target);
		} else if (S_ISDIR(sb.st_mode)) {
			cm_buf_printf(b, "%s/ %o\n", sub, (unsigned)(sb.st_mode & 07777));
			snap_tree(dir, sub, norm, b);
		} else {
			const char *text = fx_read(dir, sub);

			cm_buf_printf(b, "%s %o %lld\n", sub, (unsigned)(sb.st_mode & 07777),
				      (long long)sb.st_size);
			if (norm && !strcmp(names[i], "metadata.json")) {
				json_t *j = json_loads(text ? text : "", 0, NULL);
				char *dump;

				strip_times(j);
				dump = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
				cm_buf_printf(b, "  %s\n", dump ? dump : "(not JSON)");
				free(dump);
				json_decref(j);
			} else {
				cm_buf_printf(b, "  %s\n", text ? text : "(unreadable)");
			}
		}
		free(names[i]);
	}
}

/* Everything the store holds, as text; norm leaves out what differs between two runs. */
static char *snap(const char *dir, int norm)
{
	struct cm_buf b = { 0 };

	snap_db(dir, norm, &b);
	snap_tree(dir, "", norm, &b);
	return b.data;
}

/* ---- the operations ---- */

static const struct reg_actor actor = { .channel = "cli", .name = "faults" };

static void must(int rc, const char *what)
{
	if (rc < 0)
		fail_msg("setup: %s: %s", what, cm_err_msg());
}

static void sealed_passed(struct reg_store *st, const char *dir, const char *v, const char *body)
{
	char rel[PATH_MAX];
	json_t *meta = json_pack("{ss}", "validation_status", "passed");

	must(reg_version_create(st, &actor, "m", v, meta, NULL), "create");
	json_decref(meta);
	snprintf(rel, sizeof(rel), "m/%s/w.bin", v);
	fx_write(dir, rel, body);
	snprintf(rel, sizeof(rel), "m/%s/sub/cfg.txt", v);
	fx_write(dir, rel, v);
	must(reg_version_seal(st, &actor, "m", v, NULL), "seal");
}

/* m: v1, v2 sealed and passed, current v1 then v2, draft d1 with two files; model e empty. */
static void base(struct reg_store *st, const char *dir)
{
	must(reg_model_create(st, &actor, "m", NULL), "model");
	must(reg_model_create(st, &actor, "e", NULL), "model e");
	sealed_passed(st, dir, "v1", "weights one");
	sealed_passed(st, dir, "v2", "weights two");
	must(reg_alias_set(st, &actor, "m", "current", "v1", NULL, NULL), "current v1");
	must(reg_alias_set(st, &actor, "m", "current", "v2", NULL, NULL), "current v2");
	must(reg_version_create(st, &actor, "m", "d1", NULL, NULL), "draft");
	fx_write(dir, "m/d1/a.bin", "draft a");
	fx_write(dir, "m/d1/deep/b.bin", "draft b");
}

static void with_canary(struct reg_store *st, const char *dir)
{
	struct reg_alias_opts o = { .percent = 10 };

	base(st, dir);
	must(reg_alias_set(st, &actor, "m", "canary", "v1", &o, NULL), "canary");
}

static int op_model_create(struct reg_store *st)
{
	return reg_model_create(st, &actor, "m2", NULL);
}

static int op_version_create(struct reg_store *st)
{
	json_t *meta = json_pack("{ss s{sf}}", "validation_status", "pending",
				 "performance_metrics", "accuracy", 0.9);
	int rc = meta ? reg_version_create(st, &actor, "m", "v3", meta, NULL) : -ENOMEM;

	json_decref(meta);
	return rc;
}

static int op_upload(struct reg_store *st)
{
	struct reg_upload *u = NULL;
	int rc = reg_upload_begin(st, "m", "d1", "new/dir/w.bin", &u);

	for (int i = 0; rc == 0 && i < 3; i++)
		rc = reg_upload_write(u, "0123456789abcdef", 16);
	if (rc == 0)
		rc = reg_upload_commit(u);
	if (rc < 0)
		reg_upload_abort(u);
	return rc;
}

static int op_metadata(struct reg_store *st)
{
	json_t *patch = json_pack("{ss s{sf}}", "validation_status", "failed",
				  "validation_metrics", "latency_ms", 12.5);
	int rc = patch ? reg_version_metadata_patch(st, &actor, "m", "v2", patch) : -ENOMEM;

	json_decref(patch);
	return rc;
}

static int op_seal(struct reg_store *st)
{
	struct reg_version v;

	return reg_version_seal(st, &actor, "m", "d1", &v);
}

static int op_alias_set(struct reg_store *st)
{
	return reg_alias_set(st, &actor, "m", "staging", "v1", NULL, NULL);
}

static int op_promote(struct reg_store *st)
{
	return reg_alias_set(st, &actor, "m", "current", "v1", NULL, NULL);
}

static int op_rollback(struct reg_store *st)
{
	return reg_alias_rollback(st, &actor, "m", "current", "bad numbers", NULL);
}

static int op_canary(struct reg_store *st)
{
	struct reg_alias_opts o = { .percent = 25 };

	return reg_alias_set(st, &actor, "m", "canary", "v1", &o, NULL);
}

static int op_canary_promote(struct reg_store *st)
{
	return reg_canary_promote(st, &actor, "m", NULL, NULL);
}

static int op_version_delete(struct reg_store *st)
{
	return reg_version_delete(st, &actor, "m", "d1");
}

static int op_model_delete(struct reg_store *st)
{
	return reg_model_delete(st, &actor, "e");
}

static int op_archive(struct reg_store *st)
{
	return reg_version_archive(st, &actor, "m", "v1", NULL);
}

struct op {
	const char *name;
	void (*setup)(struct reg_store *st, const char *dir);
	int (*run)(struct reg_store *st);
};

static const struct op ops[] = {
	{ "model create", base, op_model_create },
	{ "version create", base, op_version_create },
	{ "upload", base, op_upload },
	{ "metadata patch", base, op_metadata },
	{ "seal", base, op_seal },
	{ "alias set", base, op_alias_set },
	{ "promote", base, op_promote },
	{ "rollback", base, op_rollback },
	{ "canary set", base, op_canary },
	{ "canary promote", with_canary, op_canary_promote },
	{ "version delete", base, op_version_delete },
	{ "model delete", base, op_model_delete },
	{ "archive", base, op_archive },
};

/* The first line where two snapshots differ, with its neighbour lines, for a failure message. */
static const char *diff(const char *a, const char *b)
{
	static char out[2048];
	const char *la = a, *lb = b;

	while (*la && *lb) {
		const char *ea = strchr(la, '\n'), *eb = strchr(lb, '\n');
		size_t na = ea ? (size_t)(ea - la) : strlen(la), nb = eb ? (size_t)(eb - lb) : strlen(lb);

		if (na != nb || memcmp(la, lb, na))
			break;
		la += na + (ea != NULL);
		lb += nb + (eb != NULL);
	}
	snprintf(out, sizeof(out), "\n  got:  %.700s\n  want: %.700s", la, lb);
	for (char *p = out; *p; p++)
		if (*p == '\n' && p - out > 20 && p[1] != ' ')
			*p = '/';
	return out;
}

/* ---- the driver ---- */

struct store {
	char dir[PATH_MAX];
	struct reg_store *st;
};

/* tmpfs when there is one: the ops fsync a lot and run hundreds of times. */
static void store_new(struct store *s, const struct op *op)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("MODELFS_TEST_TMP");

	snprintf(s->dir, sizeof(s->dir), "%s/modelfs-faults-XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(s->dir));
	must(reg_store_open(s->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &s->st), "open");
	op->setup(s->st, s->dir);
}

static void store_end(struct store *s)
{
	reg_store_close(s->st);
	s->st = NULL;
	fx_rmrf(s->dir);
}

struct tally {
	long faults, failed, swallowed, full_with_error, healed, problems;
};

/*
 * The store after an injected fault: 0 when it equals `want` (exactly, or
 * normalised when norm), possibly after the reconcile of a reopen when the
 * operation recorded a disk update that failed after its commit (the
 * registry's own recovery: the db is the truth, the next open heals the
 * disk); 1 otherwise, with *got the state found.
 */
static int state_is(struct store *s, int64_t disk_errors, const char *want, int norm, char **got,
		    struct tally *t)
{
	*got = snap(s->dir, norm);
	if (!strcmp(*got, want))
		return 0;
	if (reg_store_disk_errors(s->st, NULL, 0) == disk_errors)
		return 1;
	reg_store_close(s->st);
	s->st = NULL;
	must(reg_store_open(s->dir, REG_OPEN_LOCK, &s->st), "reopen");
	free(*got);
	*got = snap(s->dir, norm);
	if (strcmp(*got, want))
		return 1;
	t->healed++;
	return 0;
}

static void problem(struct tally *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct tally *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	t->problems++;
}

static void run_op(const struct op *op, enum fault kind, struct tally *t)
{
	struct store ref, s;
	char *after, *before;
	long n;

	/* The full effect, from a run without faults. */
	store_new(&ref, op);
	if (op->run(ref.st) < 0)
		fail_msg("%s without faults: %s", op->name, cm_err_msg());
	after = snap(ref.dir, 1);
	store_end(&ref);

	store_new(&s, op);
	before = snap(s.dir, 0);
	for (n = 1;; n++) {
		int64_t disk_errors = reg_store_disk_errors(s.st, NULL, 0);
		char *got = NULL;
		int rc;

		cm_err_clear();
		fault_arm(kind, n);
		rc = op->run(s.st);
		fault_disarm();
		if (getenv("FAULTS_TRACE"))
			fprintf(stderr, "# %s %s N=%ld fired=%d rc=%d %s\n", op->name,
				fault_names[kind], n, fired, rc, rc < 0 ? cm_err_msg() : "");
		if (!fired) {
			if (rc < 0)
				problem(t, "%s (%s, N=%ld): failed with no fault: %s", op->name,
					fault_names[kind], n, cm_err_msg());
			else if (state_is(&s, disk_errors, after, 1, &got, t))
				problem(t, "%s (%s): a clean run differs from the reference:%s", op->name,
					fault_names[kind], diff(got, after));
			free(got);
			break;
		}
		t->faults++;
		if (rc == 0) {
			/* The fault was absorbed (an advisory allocation, say): full effect only. */
			if (state_is(&s, disk_errors, after, 1, &got, t))
				problem(t, "%s (%s, N=%ld): succeeded after a fault but the store "
					"differs from the full effect:%s",
					op->name, fault_names[kind], n, diff(got, after));
			free(got);
			t->swallowed++;
			break;
		}
		t->failed++;
		if (!state_is(&s, disk_errors, before, 0, &got, t)) {
			free(got);
			continue;
		}
		free(got);
		if (state_is(&s, disk_errors, after, 1, &got, t)) {
			char *now = snap(s.dir, 0);

			problem(t, "%s (%s, N=%ld): returned %d (%s) and left the store half changed "
				"(against before):%s", op->name, fault_names[kind], n, rc,
				cm_err_msg(), diff(now, before));
			free(now);
			free(got);
			break;
		}
		free(got);
		/* Done in full though it reported an error: start again from before. */
		t->full_with_error++;
		free(before);
		store_end(&s);
		store_new(&s, op);
		before = snap(s.dir, 0);
	}
	free(before);
	free(after);
	store_end(&s);
}

static void faults(enum fault kind)
{
	struct tally t = { 0 };

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		run_op(&ops[i], kind, &t);
	print_message("# %s faults: %ld injected, %ld failed clean, %ld absorbed, %ld failed after "
		      "the full effect, %ld healed by the reopen's reconcile, %ld problems\n",
		      fault_names[kind], t.faults, t.failed, t.swallowed, t.full_with_error,
		      t.healed, t.problems);
	assert_true(t.faults > 0);
	assert_int_equal(t.problems, 0);
}

static void test_step_faults(void **state)
{
	(void)state;
	faults(F_STEP);
}

static void test_sqlite_alloc_faults(void **state)
{
	(void)state;
	faults(F_SQLITE);
}

static void test_libc_alloc_faults(void **state)
{
	(void)state;
	faults(F_LIBC);
}

/* db_step itself: an error is never a row or the end, and its message names the statement. */
static void test_db_step_error(void **state)
{
	struct fx *f = *state;
	struct reg_file *files = NULL;
	size_t n = 0;
	int rc;

	fx_version(f, "m", "v1", "a", "1", "b", "2", "c", "3", NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	/* The second step of the file listing fails: no short list passes as success. */
	fault_arm(F_STEP, 3);
	rc = reg_version_files(f->st, "m", "v1", &files, &n);
	fault_disarm();
	assert_true(fired);
	assert_int_equal(rc, -EIO);
	assert_null(files);
	assert_non_null(strstr(cm_err_msg(), "FILE_LIST"));
	assert_non_null(strstr(cm_err_msg(), "injected"));
	/* An as-of alias query turns an I/O error into an error, not "was not set". */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "x", "v1", NULL, NULL), 0);
	for (long k = 1;; k++) {
		struct reg_alias a;

		fault_arm(F_STEP, k);
		rc = reg_alias_at(f->st, "m", "x", cm_time_now_us(), &a);
		fault_disarm();
		if (!fired) {
			assert_int_equal(rc, 0);
			break;
		}
		assert_int_equal(rc, -EIO);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_db_step_error, fx_setup, fx_teardown),
		cmocka_unit_test(test_step_faults),
		cmocka_unit_test(test_sqlite_alloc_faults),
		cmocka_unit_test(test_libc_alloc_faults),
	};
	sqlite3_mem_methods mem;

	/* Before SQLite's first use: its allocations go through the counter. */
	sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_mem);
	mem = sqlite_mem;
	mem.xMalloc = sqlite_malloc;
	mem.xRealloc = sqlite_realloc;
	sqlite3_config(SQLITE_CONFIG_MALLOC, &mem);
	/* jansson's allocations go through registry/json.c, so through __wrap_malloc. */
	reg_json_init();
	db_step_fault = step_fault;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
