/* SPDX-License-Identifier: Apache-2.0 */
/*
 * modelfs git-sync: reads a repository's model tags back and checks them
 * against the registry (beside a running daemon: the store is opened
 * read-only), and, with --run, configures git sync and works the tag queue
 * offline. Also the git part of `modelfs serve`: configuration, the
 * read-back at start, the background worker.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cm.h"
#include "reg.h"

static const struct reg_actor cli_actor = { .channel = "cli", .name = "git-sync" };

int cli_git_tagger_parse(const char *s, char *name, size_t nn, char *email, size_t en)
{
	const char *lt = s ? strchr(s, '<') : NULL;
	const char *gt = lt ? strchr(lt, '>') : NULL;
	size_t len;

	if (!lt || !gt || gt[1] != '\0' || lt == s)
		return cm_err_set(-EINVAL, "--git-tagger: '%s' is not 'Name <email>'", s ? s : "");
	len = (size_t)(lt - s);
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len == 0 || len >= nn || (size_t)(gt - lt - 1) >= en || gt == lt + 1)
		return cm_err_set(-EINVAL, "--git-tagger: '%s' is not 'Name <email>'", s);
	snprintf(name, nn, "%.*s", (int)len, s);
	snprintf(email, en, "%.*s", (int)(gt - lt - 1), lt + 1);
	return 0;
}

/* Builds a reg_git_config from options; strings borrowed from o and the buffers. */
static int config_from(const struct cli_git_opts *o, struct reg_git_config *g, char *name,
		       char *email, size_t n)
{
	memset(g, 0, sizeof(*g));
	g->repo = o->repo;
	g->remote = o->remote;
	g->tag_format = o->tag_format;
	g->token_file = o->token_file;
	g->gto = o->gto;
	if (o->tagger && o->tagger[0]) {
		int rc = cli_git_tagger_parse(o->tagger, name, n, email, n);

		if (rc < 0)
			return rc;
		g->tagger_name = name;
		g->tagger_email = email;
	}
	return 0;
}

/* ---- serve ---- */

static void log_report(void *ctx, enum reg_git_level level, const char *msg)
{
	(void)ctx;
	cm_log(level == REG_GIT_ERROR  ? CM_LOG_ERROR
	       : level == REG_GIT_WARN ? CM_LOG_WARN
				       : CM_LOG_INFO,
	       "git", "%s", msg);
}

static void log_mismatch(void *ctx, enum reg_git_mismatch kind, const char *tag,
			 const char *model, const char *version, const char *detail)
{
	(void)ctx;
	cm_log(CM_LOG_WARN, "git", "read-back: %s tag=%s model=%s version=%s: %s",
	       reg_git_mismatch_name(kind), tag ? tag : "-", model ? model : "-",
	       version ? version : "-", detail);
}

int cli_git_serve_start(struct reg_store *st, const struct cli_git_opts *o,
			struct reg_git_worker **out)
{
	struct reg_git_config g;
	struct reg_git_status gs;
	char name[256], email[256];
	json_t *cfg = NULL;
	int rc;

	*out = NULL;
	if (o->repo && o->repo[0]) {
		rc = config_from(o, &g, name, email, sizeof(name));
		if (rc == 0)
			rc = reg_git_configure(st, &cli_actor, &g);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "git", "git sync: %s", cm_err_msg());
			return rc;
		}
	}
	rc = reg_git_config_get(st, &cfg);
	if (rc == -ENOENT)
		return 0; /* git sync was never configured for this store */
	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "git", "git sync: %s", cm_err_msg());
		return rc;
	}
	cm_log(CM_LOG_INFO, "git", "git sync %s: repo=%s remote=%s format=%s gto=%s",
	       json_is_true(json_object_get(cfg, "enabled")) ? "on" : "off (queue only)",
	       json_string_value(json_object_get(cfg, "repo")),
	       json_string_value(json_object_get(cfg, "remote"))
		       ? json_string_value(json_object_get(cfg, "remote"))
		       : "-",
	       json_string_value(json_object_get(cfg, "tag_format")),
	       json_is_true(json_object_get(cfg, "gto")) ? "on" : "off");
	json_decref(cfg);
	/* The read-back at start: a missing or unreadable repository is logged, not fatal. */
	rc = reg_git_check(st, NULL, log_mismatch, NULL);
	if (rc < 0)
		cm_log(CM_LOG_WARN, "git", "read-back: %s (tags stay queued until it works)",
		       cm_err_msg());
	else
		cm_log(rc ? CM_LOG_WARN : CM_LOG_INFO, "git", "read-back: %d mismatch%s", rc,
		       rc == 1 ? "" : "es");
	if (reg_git_status(st, &gs) == 0)
		cm_log(CM_LOG_INFO, "git", "queue: pending=%lld pushing=%lld failed=%lld done=%lld",
		       (long long)gs.pending, (long long)gs.pushing, (long long)gs.failed,
		       (long long)gs.done);
	rc = reg_git_worker_start(st, log_report, NULL, out);
	if (rc < 0)
		cm_log(CM_LOG_ERROR, "git", "git sync: %s", cm_err_msg());
	return rc;
}

/* ---- modelfs git-sync ---- */

struct git_cfg {
	struct cli_git_opts git;
	int run;
	int backfill;
	int retry;
	int status;
	int disable;
	int help;
};

#define OPT(name, env, type, field, def, metavar, help) \
	{ name, env, type, offsetof(struct git_cfg, field), def, 0, 0, metavar, help }

static const struct cm_opt git_opts[] = {
	OPT("repo", "MODELFS_GIT_REPO", CM_OPT_STRING, git.repo, NULL, "DIR",
	    "the repository (bare or a work tree); default: the store's configured one"),
	OPT("remote", "MODELFS_GIT_REMOTE", CM_OPT_STRING, git.remote, NULL, "NAME",
	    "with --run --repo: push made tags to this remote"),
	OPT("gto-tags", "MODELFS_GIT_GTO_TAGS", CM_OPT_BOOL, git.gto, "false", NULL,
	    "with --repo: GTO tags too ({model}@v{semver}, {model}#{alias}#{n})"),
	OPT("tagger", "MODELFS_GIT_TAGGER", CM_OPT_STRING, git.tagger, NULL, "'NAME <EMAIL>'",
	    "with --run --repo: who signs the tags (default modelfs <modelfs@localhost>)"),
	OPT("tag-format", "MODELFS_GIT_TAG_FORMAT", CM_OPT_STRING, git.tag_format, NULL, "FORMAT",
	    "with --repo: version tag format (default " REG_GIT_TAG_FORMAT_DEFAULT ")"),
	OPT("token-file", "MODELFS_GIT_TOKEN_FILE", CM_OPT_STRING, git.token_file, NULL, "FILE",
	    "with --run --repo: HTTPS token for the remote ('TOKEN' or 'USER:TOKEN')"),
	OPT("run", NULL, CM_OPT_BOOL, run, "false", NULL,
	    "take the store's writer lock, store --repo etc. as its git configuration, make and "
	    "push every queued tag now, then check"),
	OPT("backfill", NULL, CM_OPT_BOOL, backfill, "false", NULL,
	    "with --run: queue tags for sealed versions that never had one (adopted, or sealed "
	    "while git sync was off)"),
	OPT("retry", NULL, CM_OPT_BOOL, retry, "false", NULL,
	    "with --run: put failed queue items back (after fetching a missing commit, say)"),
	OPT("disable", NULL, CM_OPT_BOOL, disable, "false", NULL,
	    "stop queueing tags for this store (takes the writer lock; the queue is kept)"),
	OPT("status", NULL, CM_OPT_BOOL, status, "false", NULL,
	    "print the queue (counts and open or failed items) instead of checking"),
	OPT("help", NULL, CM_OPT_BOOL, help, "false", NULL, "print this help"),
};
#define N_GIT_OPTS (sizeof(git_opts) / sizeof(git_opts[0]))

static void print_report(void *ctx, enum reg_git_level level, const char *msg)
{
	(void)ctx;
	fprintf(level == REG_GIT_INFO ? stdout : stderr, "%s%s\n",
		level == REG_GIT_ERROR ? "error: " : level == REG_GIT_WARN ? "warning: " : "", msg);
}

static void print_mismatch(void *ctx, enum reg_git_mismatch kind, const char *tag,
			   const char *model, const char *version, const char *detail)
{
	(void)ctx;
	printf("%-16s %-40s %s/%s: %s\n", reg_git_mismatch_name(kind), tag ? tag : "-",
	       model ? model : "-", version ? version : "-", detail);
}

static int print_status(struct reg_store *st)
{
	struct reg_git_status gs;
	json_t *items = NULL, *cfg = NULL;
	size_t i;
	json_t *it;
	int rc = reg_git_status(st, &gs);

	if (rc == 0)
		rc = reg_git_queue_list(st, NULL, 0, 0, &items);
	if (rc < 0)
		return rc;
	if (reg_git_config_get(st, &cfg) == 0)
		printf("repo %s, remote %s, format %s, gto %s, %s\n",
		       json_string_value(json_object_get(cfg, "repo")),
		       json_string_value(json_object_get(cfg, "remote"))
			       ? json_string_value(json_object_get(cfg, "remote"))
			       : "-",
		       json_string_value(json_object_get(cfg, "tag_format")),
		       json_is_true(json_object_get(cfg, "gto")) ? "on" : "off",
		       json_is_true(json_object_get(cfg, "enabled")) ? "enabled" : "disabled");
	else
		printf("git sync is not configured for this store\n");
	printf("pending %lld, pushing %lld, failed %lld (missing commit %lld, conflicts %lld), "
	       "done %lld\n", (long long)gs.pending, (long long)gs.pushing, (long long)gs.failed,
	       (long long)gs.missing_commit, (long long)gs.conflicts, (long long)gs.done);
	if (gs.last_error[0])
		printf("last error: %s\n", gs.last_error);
	json_array_foreach(items, i, it) {
		const char *state = json_string_value(json_object_get(it, "state"));
		const char *err = json_string_value(json_object_get(it, "last_error"));

		if (state && !strcmp(state, "done"))
			continue;
		printf("%5lld %-8s %-9s %s/%s%s%s %s%s%s\n",
		       (long long)json_integer_value(json_object_get(it, "id")), state,
		       json_string_value(json_object_get(it, "kind")),
		       json_string_value(json_object_get(it, "model")),
		       json_string_value(json_object_get(it, "version")),
		       json_string_value(json_object_get(it, "alias")) ? " " : "",
		       json_string_value(json_object_get(it, "alias"))
			       ? json_string_value(json_object_get(it, "alias"))
			       : "",
		       json_string_value(json_object_get(it, "tag"))
			       ? json_string_value(json_object_get(it, "tag"))
			       : "(tag name not chosen yet)",
		       err ? ": " : "", err ? err : "");
	}
	json_decref(items);
	json_decref(cfg);
	return gs.failed ? CLI_PROBLEMS : CLI_OK;
}

static int git_fail(int rc)
{
	fprintf(stderr, "modelfs git-sync: %s\n", cm_err_describe(rc));
	return CLI_ERROR;
}

int cli_git_sync(int argc, char **argv)
{
	struct git_cfg c = { 0 };
	struct reg_store *st = NULL;
	struct reg_git_config g;
	char name[256], email[256];
	const char *store;
	int writes;
	int rc;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		c.help = 1;
	/* STORE comes first; the options after it come from the table. */
	rc = c.help ? 0 : cm_config_parse(git_opts, N_GIT_OPTS, &c, argc - 1, argv + 1);
	if (rc < 0 || (!c.help && (argc < 2 || argv[1][0] == '-'))) {
		fprintf(stderr, "modelfs git-sync: %s\nusage: modelfs git-sync STORE [options] "
			"(see --help)\n", rc < 0 ? cm_err_msg() : "STORE is required");
		return CLI_ERROR;
	}
	if (c.help) {
		printf("usage: modelfs git-sync STORE [--repo DIR] [--run [--backfill] [--retry]] "
		       "[--status] [--disable]\n\n"
		       "Reads the repository's model tags back and compares them with the registry:\n"
		       "tags at another commit than their version's git_commit, tags for versions\n"
		       "the registry does not have, sealed versions without a tag. Exit 0 clean,\n"
		       "1 mismatches (or failed queue items with --status), 2 error.\n\n");
		cm_config_help(git_opts, N_GIT_OPTS, stdout);
		return CLI_OK;
	}
	store = argv[1];
	if ((c.backfill || c.retry) && !c.run) {
		fprintf(stderr, "modelfs git-sync: --backfill and --retry go with --run\n");
		return CLI_ERROR;
	}
	rc = config_from(&c.git, &g, name, email, sizeof(name));
	if (rc < 0)
		return git_fail(rc);
	writes = c.run || c.disable;
	/* Checks run beside a serving daemon; changes need the writer lock. */
	rc = reg_store_open(store, writes ? REG_OPEN_LOCK : REG_OPEN_READONLY, &st);
	if (rc < 0)
		return git_fail(rc);
	if (c.disable) {
		rc = reg_git_disable(st, &cli_actor);
		if (rc == 0)
			printf("git sync disabled for %s (queued tags are kept)\n", store);
		goto done;
	}
	if (c.status) {
		rc = print_status(st);
		reg_store_close(st);
		return rc < 0 ? git_fail(rc) : rc;
	}
	if (c.run) {
		struct reg_git_run_stats stats = { 0 };
		int64_t n = 0;

		if (g.repo && g.repo[0]) {
			rc = reg_git_configure(st, &cli_actor, &g);
			if (rc < 0)
				goto done;
		}
		if (c.retry) {
			rc = reg_git_retry(st, &cli_actor, 0, &n);
			if (rc < 0)
				goto done;
			printf("%lld failed item%s queued again\n", (long long)n, n == 1 ? "" : "s");
		}
		if (c.backfill) {
			rc = reg_git_backfill(st, &cli_actor, &n);
			if (rc < 0)
				goto done;
			printf("%lld version tag%s queued\n", (long long)n, n == 1 ? "" : "s");
		}
		rc = reg_git_sync_run(st, REG_GIT_RUN_NOW, print_report, NULL, &stats);
		if (rc < 0)
			goto done;
		printf("made %lld, pushed %lld, failed %lld, waiting %lld\n", (long long)stats.made,
		       (long long)stats.pushed, (long long)stats.failed, (long long)stats.retry);
	}
	/* After --run the stored configuration is the one to check against. */
	rc = reg_git_check(st, c.run || !g.repo ? NULL : &g, print_mismatch, NULL);
	if (rc >= 0)
		printf("%s: %d mismatch%s\n", rc ? "mismatches" : "clean", rc, rc == 1 ? "" : "es");
done:
	reg_store_close(st);
	if (rc < 0)
		return git_fail(rc);
	return rc > 0 ? CLI_PROBLEMS : CLI_OK;
}
