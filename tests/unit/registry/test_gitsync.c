/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Git-tag sync against real repositories made with the git command line:
 * tags are checked with git for-each-ref, git cat-file and git tag -l, never
 * through libgit2, so the test does not share the code's view of git.
 *
 * MODELFS_GIT_CRASH_ITERATIONS (default 12) sets how often the crash test
 * kills its child.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "reg_i.h" /* gs_fault_hook */

#define GIT "git -c user.name=tester -c user.email=tester@example.com -c init.defaultBranch=main"

/* ---- shell helpers ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The command's stdout without its last newline; a static buffer. */
static const char *out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *out(const char *fmt, ...)
{
	static char buf[1 << 16];
	char cmd[8192];
	va_list ap;
	size_t n;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	pclose(p);
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	if (!s[0])
		return 0;
	for (; *s; s++)
		n += *s == '\n';
	return n + 1;
}

/* ---- fixture: a store, a work-tree repository with three commits ---- */

struct gfx {
	struct fx *f;
	char tmp[PATH_MAX];  /* holds the repositories */
	char repo[PATH_MAX];
	char c[3][41];       /* commits of repo, oldest first */
};

static int gsetup(void **state)
{
	struct gfx *g = calloc(1, sizeof(*g));
	void *inner = NULL;

	if (fx_setup(&inner) < 0)
		return -1;
	g->f = inner;
	fx_mkdtemp(g->tmp, sizeof(g->tmp));
	snprintf(g->repo, sizeof(g->repo), "%s/repo", g->tmp);
	if (sh(GIT " init -q %s", g->repo))
		return -1;
	for (int i = 0; i < 3; i++) {
		if (sh(GIT " -C %s commit -q --allow-empty -m 'commit %d'", g->repo, i))
			return -1;
		cm_strlcpy(g->c[i], out("git -C %s rev-parse HEAD", g->repo), sizeof(g->c[i]));
	}
	*state = g;
	return 0;
}

static int gteardown(void **state)
{
	struct gfx *g = *state;
	void *inner = g->f;

	sh("chattr -R -i %s 2>/dev/null; chmod -R u+w %s", g->tmp, g->tmp);
	if (!getenv("MODELFS_TEST_KEEP"))
		fx_rmrf(g->tmp);
	fx_teardown(&inner);
	free(g);
	return 0;
}

static void configure(struct gfx *g, const char *remote, int gto)
{
	struct reg_git_config c = { .repo = g->repo, .remote = remote, .gto = gto,
				    .tagger_name = "Model Registry",
				    .tagger_email = "registry@example.com" };

	if (reg_git_configure(g->f->st, &fx_actor, &c) < 0)
		fail_msg("configure: %s", cm_err_msg());
}

/* A sealed version with a record; commit NULL leaves git_commit out. */
static void mkver(struct gfx *g, const char *m, const char *v, const char *commit, double acc)
{
	struct reg_model model;
	json_t *rec = json_pack("{s:s, s:{s:f, s:f}}", "validation_status", "passed",
				"performance_metrics", "accuracy", acc, "f1_score", 0.87);
	char rel[PATH_MAX];

	if (commit)
		json_object_set_new(rec, "git_commit", json_string(commit));
	if (reg_model_get(g->f->st, m, &model) == -ENOENT)
		assert_int_equal(reg_model_create(g->f->st, &fx_actor, m, NULL), 0);
	if (reg_version_create(g->f->st, &fx_actor, m, v, rec, NULL) < 0)
		fail_msg("create %s/%s: %s", m, v, cm_err_msg());
	json_decref(rec);
	snprintf(rel, sizeof(rel), "%s/%s/model.pkl", m, v);
	fx_write(g->f->dir, rel, v);
	if (reg_version_seal(g->f->st, &fx_actor, m, v, NULL) < 0)
		fail_msg("seal %s/%s: %s", m, v, cm_err_msg());
}

static struct reg_git_run_stats run_now(struct gfx *g)
{
	struct reg_git_run_stats s = { 0 };

	if (reg_git_sync_run(g->f->st, REG_GIT_RUN_NOW, NULL, NULL, &s) < 0)
		fail_msg("sync: %s", cm_err_msg());
	return s;
}

static struct reg_git_status status(struct gfx *g)
{
	struct reg_git_status s;

	assert_int_equal(reg_git_status(g->f->st, &s), 0);
	return s;
}

/* "objecttype peeled-commit" of a tag in repo dir. */
static const char *tag_info(const char *dir, const char *tag)
{
	return out("git -C %s for-each-ref --format='%%(objecttype) %%(*objectname)' "
		   "'refs/tags/%s'", dir, tag);
}

static void assert_tag_at(const char *dir, const char *tag, const char *commit)
{
	char want[128];

	snprintf(want, sizeof(want), "tag %s", commit);
	assert_string_equal(tag_info(dir, tag), want);
}

static int64_t events_of(struct gfx *g, const char *kind)
{
	struct reg_event_filter f = { .kind = kind };
	json_t *ev = NULL;
	int64_t n;

	assert_int_equal(reg_event_list(g->f->st, NULL, &f, &ev), 0);
	n = (int64_t)json_array_size(ev);
	json_decref(ev);
	return n;
}

/* ---- formats and configuration ---- */

static void test_format(void **state)
{
	char tag[256];

	(void)state;
	assert_int_equal(reg_git_format_check("model-{model}-{version}"), 0);
	assert_int_equal(reg_git_format_check("{version}/{model}"), 0);
	assert_int_equal(reg_git_tag_name("model-{model}-{version}", "anomaly-detector", "v2", tag,
					  sizeof(tag)), 0);
	assert_string_equal(tag, "model-anomaly-detector-v2");
	assert_int_equal(reg_git_tag_name("rel/{version}/{model}", "m", "1.0", tag, sizeof(tag)), 0);
	assert_string_equal(tag, "rel/1.0/m");
	assert_int_equal(reg_git_format_check("model-{model}"), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "{model} and {version}"));
	assert_int_equal(reg_git_format_check("{model}{version}"), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "text between"));
	assert_int_equal(reg_git_format_check("m {model}-{version}"), -EINVAL);
	assert_int_equal(reg_git_format_check("{model}-{version}-{model}"), -EINVAL);
	assert_int_equal(reg_git_format_check("{model}..{version}"), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "invalid tag names"));
	assert_int_equal(reg_git_tag_name("{model}-{version}", "m", "v1", tag, 4), -E2BIG);
}

static void test_configure(void **state)
{
	struct gfx *g = *state;
	struct reg_git_config bad = { .repo = g->repo, .tag_format = "{model}" };
	json_t *cfg = NULL;
	int64_t n;

	assert_int_equal(reg_git_config_get(g->f->st, &cfg), -ENOENT);
	assert_int_equal(reg_git_sync_run(g->f->st, 0, NULL, NULL, NULL), -ENOENT);
	/* Bad input: a clear error, nothing stored. */
	assert_int_equal(reg_git_configure(g->f->st, &fx_actor, &bad), -EINVAL);
	bad.tag_format = NULL;
	bad.tagger_name = "Evil <x>";
	assert_int_equal(reg_git_configure(g->f->st, &fx_actor, &bad), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "tagger name"));
	bad.tagger_name = NULL;
	bad.remote = "bad name..";
	assert_int_equal(reg_git_configure(g->f->st, &fx_actor, &bad), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "remote name"));
	bad.remote = NULL;
	bad.repo = "";
	assert_int_equal(reg_git_configure(g->f->st, &fx_actor, &bad), -EINVAL);
	assert_int_equal(reg_git_config_get(g->f->st, &cfg), -ENOENT);
	assert_int_equal(events_of(g, "git."), 0);

	/* Sealed before git sync is on: nothing queued. */
	mkver(g, "m", "v0", g->c[0], 0.9);
	assert_int_equal(status(g).pending, 0);
	configure(g, NULL, 0);
	assert_int_equal(reg_git_config_get(g->f->st, &cfg), 0);
	assert_string_equal(json_string_value(json_object_get(cfg, "repo")), g->repo);
	assert_string_equal(json_string_value(json_object_get(cfg, "tag_format")),
			    REG_GIT_TAG_FORMAT_DEFAULT);
	assert_true(json_is_true(json_object_get(cfg, "enabled")));
	json_decref(cfg);
	n = events_of(g, "git.configure");
	assert_int_equal(n, 1);
	configure(g, NULL, 0); /* unchanged: no second event */
	assert_int_equal(events_of(g, "git.configure"), 1);
	assert_true(status(g).configured);

	/* Disabled: changes queue nothing; backfill refuses. */
	assert_int_equal(reg_git_disable(g->f->st, &fx_actor), 0);
	assert_false(status(g).configured);
	mkver(g, "m", "v1", g->c[1], 0.9);
	assert_int_equal(status(g).pending, 0);
	assert_int_equal(reg_git_backfill(g->f->st, &fx_actor, &n), -ENOENT);
	/* Back on: backfill queues v0 and v1 (sealed while off), once. */
	configure(g, NULL, 0);
	assert_int_equal(reg_git_backfill(g->f->st, &fx_actor, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(reg_git_backfill(g->f->st, &fx_actor, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(run_now(g).made, 2);
	assert_tag_at(g->repo, "model-m-v0", g->c[0]);
	assert_tag_at(g->repo, "model-m-v1", g->c[1]);
}

/* ---- version tags ---- */

static void test_version_tag(void **state)
{
	struct gfx *g = *state;
	struct reg_version v;
	struct reg_git_run_stats s;
	char want[512];
	const char *msg;

	configure(g, NULL, 0);
	mkver(g, "anomaly-detector", "v2", g->c[1], 0.94);
	assert_int_equal(reg_version_get(g->f->st, "anomaly-detector", "v2", &v), 0);
	/* Queued with the seal, made by the run. */
	assert_int_equal(status(g).pending, 1);
	assert_string_equal(out("git -C %s tag -l 'model-*'", g->repo), "");
	s = run_now(g);
	assert_int_equal(s.made, 1);
	assert_int_equal(s.failed + s.retry, 0);
	assert_string_equal(out("git -C %s tag -l 'model-*'", g->repo), "model-anomaly-detector-v2");
	assert_tag_at(g->repo, "model-anomaly-detector-v2", g->c[1]);
	msg = out("git -C %s cat-file -p model-anomaly-detector-v2", g->repo);
	snprintf(want, sizeof(want), "object %s\ntype commit\ntag model-anomaly-detector-v2\n"
		 "tagger Model Registry <registry@example.com> ", g->c[1]);
	assert_memory_equal(msg, want, strlen(want));
	snprintf(want, sizeof(want), "anomaly-detector v2: accuracy 0.94, f1_score 0.87, "
		 "validation passed, sha256 %s\n", v.digest);
	assert_non_null(strstr(msg, want));
	assert_non_null(strstr(msg, "\nversion: v2\n"));
	assert_non_null(strstr(msg, "\nvalidation_status: passed\n"));
	snprintf(want, sizeof(want), "\ngit_commit: %s\n", g->c[1]);
	assert_non_null(strstr(msg, want));
	/* The annotated tag is a real git tag object that git itself accepts. */
	assert_int_equal(sh("git -C %s fsck --no-progress >/dev/null 2>&1", g->repo), 0);
	assert_int_equal(status(g).done, 1);
	assert_int_equal(events_of(g, "git.tag"), 1);

	/* Re-running makes nothing; re-sealing is idempotent and queues nothing. */
	s = run_now(g);
	assert_int_equal(s.made, 0);
	assert_int_equal(reg_version_seal(g->f->st, &fx_actor, "anomaly-detector", "v2", NULL), 0);
	assert_int_equal(status(g).pending, 0);
	assert_int_equal(count_lines(out("git -C %s tag -l", g->repo)), 1);

	/* A custom format. */
	{
		struct reg_git_config c = { .repo = g->repo, .tag_format = "models/{model}/{version}" };

		assert_int_equal(reg_git_configure(g->f->st, &fx_actor, &c), 0);
	}
	mkver(g, "anomaly-detector", "v3", g->c[2], 0.95);
	assert_int_equal(run_now(g).made, 1);
	assert_tag_at(g->repo, "models/anomaly-detector/v3", g->c[2]);
}

static void test_existing_and_conflict(void **state)
{
	struct gfx *g = *state;
	struct reg_git_run_stats s;
	json_t *items = NULL;

	configure(g, NULL, 0);
	/* Made by hand beforehand: at the same commit it counts, elsewhere it is a conflict. */
	assert_int_equal(sh(GIT " -C %s tag -a model-m-v1 -m hand %s", g->repo, g->c[0]), 0);
	assert_int_equal(sh(GIT " -C %s tag -a model-m-v2 -m hand %s", g->repo, g->c[0]), 0);
	mkver(g, "m", "v1", g->c[0], 0.9);
	mkver(g, "m", "v2", g->c[1], 0.9);
	mkver(g, "m", "v3", g->c[2], 0.9);
	s = run_now(g);
	assert_int_equal(s.made, 2);   /* v1 (already there) and v3 */
	assert_int_equal(s.failed, 1); /* v2 */
	/* The conflicting tag was not moved. */
	assert_tag_at(g->repo, "model-m-v2", g->c[0]);
	assert_tag_at(g->repo, "model-m-v3", g->c[2]);
	assert_int_equal(status(g).conflicts, 1);
	assert_int_equal(status(g).failed, 1);
	assert_int_equal(events_of(g, "git.conflict"), 1);
	assert_int_equal(reg_git_queue_list(g->f->st, "failed", 0, 0, &items), 0);
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "reason")),
			    "conflict");
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(items, 0),
								 "last_error")),
			       "already exists at"));
	json_decref(items);
	assert_non_null(strstr(status(g).last_error, "model-m-v2"));
	assert_int_equal(reg_git_queue_list(g->f->st, "bogus", 0, 0, &items), -EINVAL);
	/* Once the stray tag is gone, retrying makes the right one. */
	assert_int_equal(sh("git -C %s tag -d model-m-v2 >/dev/null", g->repo), 0);
	{
		int64_t n = 0;

		assert_int_equal(reg_git_retry(g->f->st, &fx_actor, 0, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(reg_git_retry(g->f->st, &fx_actor, 99, &n), -ENOENT);
	}
	assert_int_equal(run_now(g).made, 1);
	assert_tag_at(g->repo, "model-m-v2", g->c[1]);
	assert_int_equal(status(g).failed, 0);
}

static void test_missing_commit(void **state)
{
	struct gfx *g = *state;
	struct reg_alias_opts o = { .percent = -1 };
	struct reg_git_run_stats s;
	struct reg_git_status gs;

	configure(g, NULL, 1);
	mkver(g, "m", "v1", NULL, 0.9);                                    /* no git_commit */
	mkver(g, "m", "v2", "0123456789abcdef0123456789abcdef01234567", 0.9); /* not in the repo */
	mkver(g, "m", "v3", g->c[2], 0.9);
	/* Promotions are never blocked by git. */
	assert_int_equal(reg_alias_set(g->f->st, &fx_actor, "m", "current", "v1", &o, NULL), 0);
	s = run_now(g);
	assert_int_equal(s.failed, 3); /* v1, v2, current -> v1 */
	assert_int_equal(s.made, 1);
	gs = status(g);
	assert_int_equal(gs.missing_commit, 3);
	assert_int_equal(gs.failed, 3);
	assert_int_equal(events_of(g, "git.missing_commit"), 3);
	assert_string_equal(out("git -C %s tag -l", g->repo), "model-m-v3");
	/* No counter was used up by the failed assignment. */
	assert_int_equal(reg_alias_set(g->f->st, &fx_actor, "m", "current", "v3", &o, NULL), 0);
	assert_int_equal(run_now(g).made, 1);
	assert_tag_at(g->repo, "m#current#1", g->c[2]);
}

/* ---- GTO ---- */

static void test_gto(void **state)
{
	struct gfx *g = *state;
	struct reg_alias_opts o = { .percent = -1 };
	const char *list;

	configure(g, NULL, 1);
	/* An annotated GTO tag of the model sets the counter; lightweight ones do not count. */
	assert_int_equal(sh(GIT " -C %s tag -a 'm#old#7' -m old %s", g->repo, g->c[0]), 0);
	assert_int_equal(sh(GIT " -C %s tag 'm#junk#50' %s", g->repo, g->c[0]), 0);
	assert_int_equal(sh(GIT " -C %s tag -a 'other#prod#90' -m other %s", g->repo, g->c[0]), 0);
	mkver(g, "m", "1.0.0", g->c[0], 0.9);
	mkver(g, "m", "v2", g->c[1], 0.9);
	mkver(g, "m", "v1.1.0-rc.1", g->c[2], 0.9);
	assert_int_equal(reg_alias_set(g->f->st, &fx_actor, "m", "current", "1.0.0", &o, NULL), 0);
	assert_int_equal(reg_alias_set(g->f->st, &fx_actor, "m", "canary", "v2", &o, NULL), 0);
	o.percent = 50; /* a percent change is no stage change */
	assert_int_equal(reg_alias_set(g->f->st, &fx_actor, "m", "canary", "v2", &o, NULL), 0);
	assert_int_equal(reg_canary_promote(g->f->st, &fx_actor, "m", NULL, NULL), 0);
	assert_int_equal(reg_alias_rollback(g->f->st, &fx_actor, "m", "current", NULL, NULL), 0);
	assert_int_equal(reg_alias_set(g->f->st, &fx_actor, "m", "staging", "v2", NULL, NULL), 0);
	assert_int_equal(reg_alias_delete(g->f->st, &fx_actor, "m", "staging", NULL), 0);
	run_now(g);
	list = out("git -C %s for-each-ref --format='%%(refname:short) %%(objecttype) "
		   "%%(*objectname)' 'refs/tags/m[#@]*' --sort=refname", g->repo);
	{
		char want[2048];

		/* Counters follow event order, from one past the highest annotated one (7). */
		snprintf(want, sizeof(want),
			 "m#canary!#11 tag %s\n"
			 "m#canary#9 tag %s\n"
			 "m#current#10 tag %s\n"
			 "m#current#12 tag %s\n"
			 "m#current#8 tag %s\n"
			 "m#junk#50 commit \n"
			 "m#old#7 tag %s\n"
			 "m#staging!#14 tag %s\n"
			 "m#staging#13 tag %s\n"
			 "m@v1.0.0 tag %s\n"
			 "m@v1.1.0-rc.1 tag %s",
			 g->c[1], g->c[1], g->c[1], g->c[0], g->c[0], g->c[0], g->c[1], g->c[1],
			 g->c[0], g->c[2]);
		assert_string_equal(list, want);
	}
	assert_non_null(strstr(out("git -C %s cat-file -p 'm#current#12'", g->repo),
			       "m: current -> 1.0.0 (was v2), validation passed"));
	assert_non_null(strstr(out("git -C %s cat-file -p 'm#canary!#11'", g->repo),
			       "m: canary cleared (was v2)"));
	assert_int_equal(status(g).failed, 0);
	assert_int_equal(status(g).done, 12);
}

/* ---- pushing ---- */

static void test_push(void **state)
{
	struct gfx *g = *state;
	char bare[PATH_MAX];
	struct reg_git_run_stats s;

	snprintf(bare, sizeof(bare), "%s/remote.git", g->tmp);
	assert_int_equal(sh(GIT " init -q --bare %s", bare), 0);
	assert_int_equal(sh("git -C %s remote add origin %s", g->repo, bare), 0);
	assert_int_equal(sh("git -C %s push -q origin main 2>/dev/null", g->repo), 0);
	configure(g, "origin", 0);
	mkver(g, "m", "v1", g->c[0], 0.9);
	mkver(g, "m", "v2", g->c[1], 0.9);
	s = run_now(g);
	assert_int_equal(s.made, 2);
	assert_int_equal(s.pushed, 2);
	assert_tag_at(bare, "model-m-v1", g->c[0]);
	assert_tag_at(bare, "model-m-v2", g->c[1]);
	/* The remote holds the very tag objects made here. */
	assert_string_equal(out("git -C %s rev-parse model-m-v1", bare),
			    out("git -C %s rev-parse model-m-v1", g->repo));
	assert_int_equal(status(g).done, 2);
	assert_int_equal(events_of(g, "git.push"), 2);
	/* A remote that does not exist: the tag waits, named in the error. */
	{
		struct reg_git_config c = { .repo = g->repo, .remote = "upstream" };

		assert_int_equal(reg_git_configure(g->f->st, &fx_actor, &c), 0);
		mkver(g, "m", "v1b", g->c[0], 0.9);
		s = run_now(g);
		assert_int_equal(s.retry, 1);
		assert_non_null(strstr(status(g).last_error, "no remote named 'upstream'"));
		configure(g, "origin", 0);
		s = run_now(g);
		assert_int_equal(s.pushed, 1);
		assert_int_equal(events_of(g, "git.error"), 1);
	}

	/* url.<base>.insteadOf rewrites the remote's URL, as git does. */
	assert_int_equal(sh("git -C %s remote set-url origin mirror:remote.git && "
			    "git -C %s config url.%s/.insteadOf mirror:", g->repo, g->repo, g->tmp), 0);
	mkver(g, "m", "v2b", g->c[1], 0.9);
	s = run_now(g);
	assert_int_equal(s.pushed, 1);
	assert_tag_at(bare, "model-m-v2b", g->c[1]);
	assert_int_equal(sh("git -C %s remote set-url origin %s", g->repo, bare), 0);

	/* The remote has a tag of that name elsewhere: a conflict, the remote is untouched. */
	assert_int_equal(sh(GIT " -C %s tag -a model-m-v3 -m stray %s", bare, g->c[0]), 0);
	mkver(g, "m", "v3", g->c[2], 0.9);
	s = run_now(g);
	assert_int_equal(s.made, 1);
	assert_int_equal(s.failed, 1);
	assert_tag_at(bare, "model-m-v3", g->c[0]);
	assert_tag_at(g->repo, "model-m-v3", g->c[2]);
	assert_int_equal(status(g).conflicts, 1);

	/* An unreachable remote delays the push; the tags wait, made, and go later. */
	assert_int_equal(sh("git -C %s remote set-url origin %s/nowhere.git", g->repo, g->tmp), 0);
	mkver(g, "m", "v4", g->c[2], 0.9);
	s = run_now(g);
	assert_int_equal(s.made, 1);
	assert_int_equal(s.pushed, 0);
	assert_int_equal(s.retry, 1);
	assert_int_equal(status(g).pushing, 1);
	assert_non_null(strstr(status(g).last_error, "remote 'origin'"));
	assert_int_equal(events_of(g, "git.error"), 2);
	s = run_now(g); /* still unreachable: no second error event for the same item */
	assert_int_equal(events_of(g, "git.error"), 2);
	assert_int_equal(sh("git -C %s remote set-url origin %s", g->repo, bare), 0);
	s = run_now(g);
	assert_int_equal(s.pushed, 1);
	assert_tag_at(bare, "model-m-v4", g->c[2]);
	assert_int_equal(status(g).pushing, 0);

	/* Tags waiting for a remote that is then configured away are done: made, not pushed. */
	assert_int_equal(sh("git -C %s remote set-url origin %s/nowhere.git", g->repo, g->tmp), 0);
	mkver(g, "m", "v5", g->c[0], 0.9);
	run_now(g);
	assert_int_equal(status(g).pushing, 1);
	configure(g, NULL, 0);
	run_now(g);
	assert_int_equal(status(g).pushing, 0);
	assert_tag_at(g->repo, "model-m-v5", g->c[0]);
	assert_string_equal(tag_info(bare, "model-m-v5"), "");
}

/* ---- unusable repositories ---- */

static void test_missing_repo(void **state)
{
	struct gfx *g = *state;
	struct reg_git_config c = { .repo = "/nonexistent/modelfs-repo" };
	struct reg_alias_opts o = { .percent = -1 };
	struct reg_git_run_stats s;
	struct reg_git_status gs;
	json_t *items = NULL;

	assert_int_equal(reg_git_configure(g->f->st, &fx_actor, &c), 0);
	mkver(g, "m", "v1", g->c[0], 0.9);
	mkver(g, "m", "v2", g->c[1], 0.9);
	/* Promotion works although no tag can be made. */
	assert_int_equal(reg_alias_set(g->f->st, &fx_actor, "m", "current", "v2", &o, NULL), 0);
	s = run_now(g);
	assert_int_equal(s.made, 0);
	assert_int_equal(s.retry, 2); /* the first failed, the second waits behind it */
	gs = status(g);
	assert_int_equal(gs.pending, 2);
	assert_int_equal(gs.failed, 0);
	assert_non_null(strstr(gs.last_error, "no repository there"));
	assert_int_equal(events_of(g, "git.error"), 1);
	/* Backoff: a run that respects it does not try before the item is due. */
	assert_int_equal(reg_git_queue_list(g->f->st, "pending", 0, 1, &items), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "attempts")), 1);
	json_decref(items);
	assert_int_equal(reg_git_sync_run(g->f->st, 0, NULL, NULL, &s), 0);
	assert_int_equal(reg_git_queue_list(g->f->st, "pending", 0, 1, &items), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "attempts")), 1);
	json_decref(items);
	/* The repository appears: the queue drains. */
	c.repo = g->repo;
	assert_int_equal(reg_git_configure(g->f->st, &fx_actor, &c), 0);
	assert_int_equal(run_now(g).made, 2);
	assert_tag_at(g->repo, "model-m-v1", g->c[0]);
	assert_int_equal(status(g).pending, 0);
}

static void test_readonly_repo(void **state)
{
	struct gfx *g = *state;
	struct reg_alias_opts o = { .percent = -1 };
	struct reg_git_run_stats s;
	char objects[PATH_MAX], probe[PATH_MAX];
	int fd, flags = 0;

	configure(g, NULL, 1);
	snprintf(objects, sizeof(objects), "%s/.git/objects", g->repo);
	assert_int_equal(sh("chmod -R a-w %s/.git/objects %s/.git/refs", g->repo, g->repo), 0);
	/* Root ignores modes: make the directories immutable as well. */
	if (geteuid() == 0)
		sh("chattr -R +i %s %s/.git/refs 2>/dev/null", objects, g->repo);
	snprintf(probe, sizeof(probe), "%s/probe", objects);
	fd = open(probe, O_CREAT | O_WRONLY, 0644);
	if (fd >= 0) {
		close(fd);
		unlink(probe);
		skip(); /* this file system cannot make the repository read-only */
	}
	mkver(g, "m", "v1", g->c[0], 0.9);
	assert_int_equal(reg_alias_set(g->f->st, &fx_actor, "m", "current", "v1", &o, NULL), 0);
	s = run_now(g);
	assert_int_equal(s.made, 0);
	assert_true(s.retry >= 1);
	assert_int_equal(status(g).pending, 2);
	assert_int_equal(status(g).failed, 0);
	assert_true(strlen(status(g).last_error) > 0);
	assert_int_equal(events_of(g, "git.error"), 1);
	assert_int_equal(reg_alias_get(g->f->st, "m", "current", &(struct reg_alias){ 0 }), 0);
	assert_string_equal(out("git -C %s tag -l", g->repo), "");
	sh("chattr -R -i %s %s/.git/refs 2>/dev/null", objects, g->repo);
	assert_int_equal(sh("chmod -R u+w %s/.git/objects %s/.git/refs", g->repo, g->repo), 0);
	s = run_now(g);
	assert_int_equal(s.made, 2);
	assert_tag_at(g->repo, "model-m-v1", g->c[0]);
	assert_tag_at(g->repo, "m#current#1", g->c[0]);
	(void)flags;
}

/* ---- read-back and lineage ---- */

struct seen {
	int kinds[3];
	char lines[16][256];
	int n;
};

static void seen_cb(void *ctx, enum reg_git_mismatch kind, const char *tag, const char *model,
		    const char *version, const char *detail)
{
	struct seen *s = ctx;

	s->kinds[kind]++;
	if (s->n < 16)
		snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s %s %s/%s", reg_git_mismatch_name(kind),
			 tag, model ? model : "-", version ? version : "-");
	(void)detail;
}

static int seen_has(const struct seen *s, const char *line)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->lines[i], line))
			return 1;
	return 0;
}

static void test_readback(void **state)
{
	struct gfx *g = *state;
	struct seen s = { 0 };
	json_t *found = NULL;
	char prefix[16];
	int rc;

	configure(g, NULL, 0);
	mkver(g, "anomaly-detector", "v1", g->c[0], 0.9);
	mkver(g, "anomaly-detector", "v2", g->c[1], 0.9);
	mkver(g, "anomaly-detector", "v3", g->c[2], 0.9);
	mkver(g, "anomaly", "detector-v9", g->c[2], 0.9); /* names that share the separator */
	run_now(g);
	rc = reg_git_check(g->f->st, NULL, seen_cb, &s);
	assert_int_equal(rc, 0);

	/* Every kind of mismatch, made by hand. */
	assert_int_equal(sh("git -C %s tag -d model-anomaly-detector-v2 >/dev/null && " GIT
			    " -C %s tag -a model-anomaly-detector-v2 -m moved %s", g->repo, g->repo,
			    g->c[2]), 0);
	assert_int_equal(sh("git -C %s tag -d model-anomaly-detector-v3 >/dev/null", g->repo), 0);
	assert_int_equal(sh(GIT " -C %s tag -a model-anomaly-detector-v7 -m x %s", g->repo, g->c[0]),
			 0);
	assert_int_equal(sh(GIT " -C %s tag model-ghost-v1 %s", g->repo, g->c[0]), 0);
	assert_int_equal(sh(GIT " -C %s tag unrelated-1.0 %s", g->repo, g->c[0]), 0);
	memset(&s, 0, sizeof(s));
	rc = reg_git_check(g->f->st, NULL, seen_cb, &s);
	assert_int_equal(rc, 4);
	assert_int_equal(s.kinds[REG_GIT_WRONG_COMMIT], 1);
	assert_int_equal(s.kinds[REG_GIT_UNKNOWN_VERSION], 2);
	assert_int_equal(s.kinds[REG_GIT_MISSING_TAG], 1);
	assert_true(seen_has(&s, "wrong-commit model-anomaly-detector-v2 anomaly-detector/v2"));
	assert_true(seen_has(&s, "unknown-version model-anomaly-detector-v7 anomaly-detector/v7"));
	assert_true(seen_has(&s, "unknown-version model-ghost-v1 ghost/v1"));
	assert_true(seen_has(&s, "missing-tag model-anomaly-detector-v3 anomaly-detector/v3"));

	/* Reverse lineage finds v2 through its tag at c[2] (its own git_commit is c[1]). */
	snprintf(prefix, sizeof(prefix), "%.10s", g->c[2]);
	assert_int_equal(reg_lineage_find(g->f->st, prefix, NULL, &found), 0);
	{
		int v2 = 0, v3 = 0;
		size_t i;
		json_t *o;

		json_array_foreach(found, i, o) {
			const char *v = json_string_value(json_object_get(o, "version"));

			if (!strcmp(v, "v2")) {
				v2++;
				assert_string_equal(json_string_value(json_object_get(o, "git_tag")),
						    "model-anomaly-detector-v2");
			}
			if (!strcmp(v, "v3")) {
				v3++;
				assert_null(json_object_get(o, "git_tag")); /* found by its git_commit */
			}
		}
		assert_int_equal(v2, 1);
		assert_int_equal(v3, 1);
	}
	json_decref(found);
	/* A full commit id finds v1 through its tag although git_commit is the same id. */
	assert_int_equal(reg_lineage_find(g->f->st, g->c[0], NULL, &found), 0);
	assert_int_equal(json_array_size(found), 1);
	json_decref(found);

	/* Another repository given explicitly: everything is missing there. */
	{
		struct reg_git_config other = { .repo = g->tmp };

		assert_int_equal(sh(GIT " init -q %s/empty", g->tmp), 0);
		other.repo = out("echo %s/empty", g->tmp);
		memset(&s, 0, sizeof(s));
		assert_int_equal(reg_git_check(g->f->st, &other, seen_cb, &s), 4);
		assert_int_equal(s.kinds[REG_GIT_MISSING_TAG], 4);
		other.repo = "/nonexistent";
		assert_int_equal(reg_git_check(g->f->st, &other, seen_cb, &s), -ENOENT);
		assert_non_null(strstr(cm_err_msg(), "no repository there"));
	}
}

/* ---- the worker ---- */

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void test_worker(void **state)
{
	struct gfx *g = *state;
	struct reg_git_worker *w = NULL;
	int64_t t0, t1, worst = 0;
	int n = 200;

	configure(g, NULL, 0);
	assert_int_equal(reg_git_worker_start(g->f->st, NULL, NULL, &w), 0);
	assert_int_equal(reg_git_worker_start(g->f->st, NULL, NULL, &(struct reg_git_worker *){ 0 }),
			 -EBUSY);
	/* Latency: seal, then wait for the tag to appear, with nobody calling sync. */
	for (int i = 0; i < 5; i++) {
		char v[16], tag[64];
		int64_t d;

		snprintf(v, sizeof(v), "lat%d", i);
		snprintf(tag, sizeof(tag), "model-m-%s", v);
		mkver(g, "m", v, g->c[i % 3], 0.9);
		t0 = mono_us();
		while (strcmp(tag_info(g->repo, tag), "") == 0 && mono_us() - t0 < 10000000)
			usleep(1000);
		d = mono_us() - t0;
		assert_true(d < 10000000);
		if (d > worst)
			worst = d;
	}
	reg_git_worker_stop(w);
	/* Throughput: n tags queued while no worker runs, then one worker drains them. */
	for (int i = 0; i < n; i++) {
		char v[16];

		snprintf(v, sizeof(v), "t%d", i);
		mkver(g, "bulk", v, g->c[i % 3], 0.9);
	}
	assert_int_equal(status(g).pending, n);
	t0 = mono_us();
	assert_int_equal(reg_git_worker_start(g->f->st, NULL, NULL, &w), 0);
	while ((status(g).pending || status(g).pushing) && mono_us() - t0 < 60000000)
		usleep(2000);
	t1 = mono_us();
	assert_int_equal(status(g).pending, 0);
	printf("# git worker: seal-to-tag latency worst %.1f ms (5 seals); %d queued tags made "
	       "in %.3f s (%.0f tags/s)\n", (double)worst / 1000.0, n, (double)(t1 - t0) / 1e6,
	       n / ((double)(t1 - t0) / 1e6));
	reg_git_worker_stop(w);
	assert_int_equal(count_lines(out("git -C %s tag -l 'model-bulk-*'", g->repo)), n);
	reg_git_worker_stop(NULL);
}

/* ---- crash: SIGKILL while tags are queued and being made ---- */

static const char *const crash_aliases[] = { "current", "canary", "staging" };

static void __attribute__((noreturn)) crash_child(struct gfx *g, int wfd, uint64_t seed, int iter)
{
	struct reg_store *st = NULL;
	uint64_t r = seed;

	if (reg_store_open(g->f->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &st) < 0)
		_exit(3);
	if (write(wfd, "o", 1) != 1)
		_exit(4);
	for (int k = 0;; k++) {
		char v[32];
		json_t *rec;
		struct reg_version_filter f = { .state = REG_SEALED };
		struct reg_version *vs = NULL;
		size_t n = 0;

		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		snprintf(v, sizeof(v), "i%d-%d", iter, k);
		rec = json_pack("{s:s, s:s}", "validation_status", "passed", "git_commit",
				g->c[(r >> 40) % 3]);
		if (reg_version_create(st, &fx_actor, "crash", v, rec, NULL) < 0)
			_exit(5);
		json_decref(rec);
		if (reg_version_seal(st, &fx_actor, "crash", v, NULL) < 0)
			_exit(6);
		if (reg_version_list(st, "crash", &f, &vs, &n) < 0 || !n)
			_exit(7);
		for (int j = 0; j < 2; j++) {
			const char *a = crash_aliases[(r >> (20 + j * 3)) % 3];
			const char *target = vs[(r >> (10 + j * 5)) % n].name;

			if ((r >> (30 + j)) % 5 == 0)
				reg_alias_delete(st, &fx_actor, "crash", a, NULL);
			else if (reg_alias_set(st, &fx_actor, "crash", a, target, NULL, NULL) < 0)
				_exit(8);
		}
		free(vs);
		/* Tags are made as we go, so kills land inside the sync as well. */
		if (k % 2 == 0)
			reg_git_sync_run(st, REG_GIT_RUN_NOW, NULL, NULL, NULL);
	}
}

/* Each tag in the repository is named by exactly one queue item. */
static void crash_check(struct gfx *g, int final)
{
	json_t *items = NULL;
	char *tags;
	size_t i;
	json_t *it;
	int ntags = 0, named = 0;
	int64_t versions = 0, assigns = 0, unassigns = 0;

	tags = strdup(out("git -C %s for-each-ref --format='%%(refname:short)' refs/tags", g->repo));
	assert_non_null(tags);
	assert_int_equal(reg_git_queue_list(g->f->st, NULL, 0, 0, &items), 0);
	for (char *t = strtok(tags, "\n"); t; t = strtok(NULL, "\n")) {
		int refs = 0;

		ntags++;
		json_array_foreach(items, i, it) {
			const char *name = json_string_value(json_object_get(it, "tag"));

			refs += name && !strcmp(name, t);
		}
		if (refs != 1)
			fail_msg("tag %s is named by %d queue items", t, refs);
	}
	json_array_foreach(items, i, it) {
		const char *kind = json_string_value(json_object_get(it, "kind"));
		const char *state = json_string_value(json_object_get(it, "state"));

		named += json_string_value(json_object_get(it, "tag")) != NULL;
		versions += !strcmp(kind, "version");
		assigns += !strcmp(kind, "assign");
		unassigns += !strcmp(kind, "unassign");
		if (final) {
			const char *tag = json_string_value(json_object_get(it, "tag"));

			if (strcmp(state, "done"))
				fail_msg("queue item %lld is %s: %s",
					 (long long)json_integer_value(json_object_get(it, "id")), state,
					 json_string_value(json_object_get(it, "last_error")));
			assert_tag_at(g->repo, tag, json_string_value(json_object_get(it, "git_commit")));
		}
	}
	/* Every change that calls for a tag queued one, in its own transaction. */
	assert_int_equal(versions, events_of(g, "version.seal"));
	assert_int_equal(unassigns, events_of(g, "alias.delete"));
	{
		struct reg_event_filter f = { .kind = "alias.set" };
		json_t *ev = NULL;
		int64_t changes = 0;

		assert_int_equal(reg_event_list(g->f->st, NULL, &f, &ev), 0);
		json_array_foreach(ev, i, it) {
			const char *b = json_string_value(json_object_get(it, "before"));
			const char *a = json_string_value(json_object_get(it, "after"));

			changes += !(b && a && !strcmp(a, b));
		}
		json_decref(ev);
		assert_int_equal(assigns, changes);
	}
	if (final)
		assert_int_equal(ntags, (int)json_array_size(items));
	else
		assert_true(ntags <= named);
	json_decref(items);
	free(tags);
}

static void test_crash(void **state)
{
	struct gfx *g = *state;
	const char *env = getenv("MODELFS_GIT_CRASH_ITERATIONS");
	int iterations = env ? atoi(env) : 12;
	uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	int64_t items = 0;

	printf("# git crash seed %" PRIu64 "\n", seed);
	configure(g, NULL, 1);
	assert_int_equal(reg_model_create(g->f->st, &fx_actor, "crash", NULL), 0);
	/* The child opens the store itself; this process lets go of it meanwhile. */
	reg_store_close(g->f->st);
	g->f->st = NULL;
	for (int i = 0; i < iterations; i++) {
		int fds[2];
		pid_t pid;
		char c;
		struct pollfd p;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(g, fds[1], seed + (uint64_t)i, i);
		}
		close(fds[1]);
		p.fd = fds[0];
		p.events = POLLIN;
		assert_int_equal(poll(&p, 1, 30000), 1);
		assert_int_equal(read(fds[0], &c, 1), 1);
		usleep((useconds_t)(20000 + (seed + (uint64_t)i * 7919) % 120000));
		kill(pid, SIGKILL);
		{
			int st;

			assert_int_equal(waitpid(pid, &st, 0), pid);
			if (!WIFSIGNALED(st))
				fail_msg("child exited with %d instead of being killed",
					 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		}
		close(fds[0]);
		fx_reopen(g->f);
		crash_check(g, 0);
		reg_store_close(g->f->st);
		g->f->st = NULL;
	}
	fx_reopen(g->f);
	/* The restart: a fresh ref lock left by a kill is stale after a few seconds. */
	for (int tries = 0; tries < 20; tries++) {
		struct reg_git_run_stats s = run_now(g);

		if (!s.retry)
			break;
		sleep(1);
	}
	crash_check(g, 1);
	items = status(g).done;
	printf("# git crash: %d kills, %lld tags, each exactly once\n", iterations,
	       (long long)items);
	assert_true(items > 0);
	assert_int_equal(status(g).failed, 0);
	assert_int_equal(sh("git -C %s fsck --no-progress >/dev/null 2>&1", g->repo), 0);
}

/* ---- crash at each step of a run, on purpose ---- */

static const char *fault_point;
static int fault_skip;

static void fault_exit(const char *point)
{
	if (!strcmp(point, fault_point) && fault_skip-- == 0)
		_exit(9);
}

/*
 * For each step where a run can die, a child queues tags (version, GTO
 * registration, assignments), runs the queue and dies right at that step,
 * at its first and at a later passage; the parent then runs the queue
 * again: every tag exactly once, locally and on the remote.
 */
static void test_crash_points(void **state)
{
	struct gfx *g = *state;
	static const char *const points[] = { "named", "made", "pushed" };
	char bare[PATH_MAX];
	int round = 0;

	snprintf(bare, sizeof(bare), "%s/remote.git", g->tmp);
	assert_int_equal(sh(GIT " init -q --bare %s", bare), 0);
	assert_int_equal(sh("git -C %s remote add origin %s", g->repo, bare), 0);
	configure(g, "origin", 1);
	for (int p = 0; p < 3; p++) {
		/* A run passes "named" and "made" several times, "pushed" once. */
		for (int skip = 0; skip < (p == 2 ? 1 : 2); skip++, round++) {
			pid_t pid;
			int st;

			fflush(NULL);
			pid = fork();
			assert_true(pid >= 0);
			if (pid == 0) {
				char v[16], w[16];

				snprintf(v, sizeof(v), "%d.0.0", round);
				snprintf(w, sizeof(w), "%d.0.1", round);
				mkver(g, "m", v, g->c[round % 3], 0.9);
				mkver(g, "m", w, g->c[(round + 1) % 3], 0.9);
				if (reg_alias_set(g->f->st, &fx_actor, "m", "current", v, NULL, NULL) < 0 ||
				    reg_alias_set(g->f->st, &fx_actor, "m", "canary", w, NULL, NULL) < 0)
					_exit(3);
				fault_point = points[p];
				fault_skip = skip;
				gs_fault_hook = fault_exit;
				reg_git_sync_run(g->f->st, REG_GIT_RUN_NOW, NULL, NULL, NULL);
				_exit(4);
			}
			assert_int_equal(waitpid(pid, &st, 0), pid);
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 9)
				fail_msg("child for '%s' (skip %d) did not die there: status %d",
					 points[p], skip, st);
			/* The child shared this process's store: open it afresh, as a restart. */
			fx_reopen(g->f);
			run_now(g);
			crash_check(g, 1);
			/* Every made tag is on the remote too, as the same object. */
			assert_string_equal(
				out("git -C %s for-each-ref --format='%%(refname) %%(objectname)' refs/tags",
				    bare),
				out("git -C %s for-each-ref --format='%%(refname) %%(objectname)' refs/tags",
				    g->repo));
		}
	}
	/* 5 rounds of two versions, each with its tag, registration and assignment. */
	assert_int_equal(round, 5);
	assert_int_equal(status(g).done, 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test_setup_teardown(test_configure, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_version_tag, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_existing_and_conflict, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_missing_commit, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_gto, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_push, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_missing_repo, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_readonly_repo, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_readback, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_worker, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_crash, gsetup, gteardown),
		cmocka_unit_test_setup_teardown(test_crash_points, gsetup, gteardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
