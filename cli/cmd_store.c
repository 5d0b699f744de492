/* SPDX-License-Identifier: Apache-2.0 */
/* Offline store commands: init, import, fsck, verify. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "cm.h"
#include "reg.h"


static int fail(const char *what, int rc)
{
	fprintf(stderr, "modelfs %s: %s\n", what, cm_err_describe(rc));
	return CLI_ERROR;
}

static void summary(struct reg_store *st)
{
	struct reg_model *models = NULL;
	size_t n = 0;

	if (reg_model_list(st, NULL, 0, &models, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct reg_version *v = NULL;
		struct reg_alias *a = NULL;
		size_t nv = 0, na = 0;

		reg_version_list(st, models[i].name, NULL, &v, &nv);
		reg_alias_list(st, models[i].name, &a, &na);
		printf("%s: %zu version%s", models[i].name, nv, nv == 1 ? "" : "s");
		for (size_t j = 0; j < na; j++)
			printf(", %s -> %s", a[j].name, a[j].version);
		printf("\n");
		free(v);
		free(a);
	}
	free(models);
}

/* Room for a path of 4096 bytes escaped (\xHH: four bytes each, at worst). */
#define ESC_MAX (4 * 4096 + 1)

static void print_problem(void *ctx, enum reg_fsck_kind kind, const char *where,
			  const char *detail, int repaired)
{
	char w[ESC_MAX], d[ESC_MAX];
	int *count = ctx;

	(*count)++;
	/* Both may hold file names from the volume: escaped, one problem a line. */
	cm_esc(w, sizeof(w), where);
	cm_esc(d, sizeof(d), detail ? detail : "");
	printf("%-22s %s%s%s%s\n", reg_fsck_kind_name(kind), w, detail ? ": " : "", d,
	       repaired ? " (repaired)" : "");
}

int cli_init(int argc, char **argv)
{
	struct reg_store *st = NULL;
	int count = 0;
	int exists;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: modelfs init STORE\n");
		return CLI_ERROR;
	}
	exists = reg_store_exists(argv[1]);
	if (exists < 0)
		return fail("init", exists);
	rc = reg_store_open(argv[1], REG_OPEN_CREATE | REG_OPEN_LOCK, &st);
	if (rc < 0)
		return fail("init", rc);
	printf("%s store %s\n", exists ? "opened existing" : "initialised", argv[1]);
	summary(st);
	/* What adoption left as it was (and why it is not in the registry) is said, never dropped. */
	if (reg_store_fsck(st, 0, 0, print_problem, &count) > 0)
		printf("left as it was (see 'modelfs fsck %s'): %d entr%s above\n", argv[1], count,
		       count == 1 ? "y" : "ies");
	reg_store_close(st);
	return CLI_OK;
}

int cli_import(int argc, char **argv)
{
	struct reg_store *st = NULL;
	int count = 0;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: modelfs import STORE\n");
		return CLI_ERROR;
	}
	rc = reg_store_open(argv[1], REG_OPEN_CREATE | REG_OPEN_LOCK, &st);
	if (rc < 0)
		return fail("import", rc);
	rc = reg_store_fsck(st, 1, 0, print_problem, &count);
	if (rc < 0) {
		reg_store_close(st);
		return fail("import", rc);
	}
	summary(st);
	reg_store_close(st);
	return rc > 0 ? CLI_PROBLEMS : CLI_OK;
}

int cli_fsck(int argc, char **argv)
{
	struct reg_store *st = NULL;
	const char *path = NULL;
	int repair = 0, hash = 1;
	int count = 0;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--repair"))
			repair = 1;
		else if (!strcmp(argv[i], "--no-hash"))
			hash = 0;
		else if (argv[i][0] == '-' || path) {
			fprintf(stderr, "usage: modelfs fsck STORE [--repair] [--no-hash]\n");
			return CLI_ERROR;
		} else
			path = argv[i];
	}
	if (!path) {
		fprintf(stderr, "usage: modelfs fsck STORE [--repair] [--no-hash]\n");
		return CLI_ERROR;
	}
	/* Read-only checks run beside a serving daemon; repairs need the lock. */
	/* Without the open's own reconcile, so that what --repair fixes is reported. */
	rc = reg_store_open(path, repair ? REG_OPEN_LOCK | REG_OPEN_NO_RECONCILE : REG_OPEN_READONLY,
			    &st);
	if (rc < 0)
		return fail("fsck", rc);
	rc = reg_store_fsck(st, repair, hash, print_problem, &count);
	reg_store_close(st);
	if (rc < 0)
		return fail("fsck", rc);
	if (rc == 0)
		printf("clean: %d problem%s found%s\n", count, count == 1 ? "" : "s",
		       count ? ", all repaired" : "");
	else
		printf("%d problem%s left\n", rc, rc == 1 ? "" : "s");
	return rc > 0 ? CLI_PROBLEMS : CLI_OK;
}

struct progress {
	int tty;
	int64_t total;
	int64_t base;
	int bad;
};

static void verify_cb(void *ctx, const char *model, const char *version, const struct reg_file *f,
		      int ok, int64_t bytes_done)
{
	struct progress *p = ctx;
	char path[ESC_MAX];

	/* A file name is anyone's choice: a newline or an escape sequence is printed escaped. */
	cm_esc(path, sizeof(path), f->path);
	if (!ok) {
		if (p->tty)
			fprintf(stderr, "\r\033[K");
		printf("MISMATCH %s/%s/%s\n", model, version, path);
		p->bad++;
	} else if (!p->tty) {
		printf("ok %s/%s/%s %s\n", model, version, path, f->sha256);
	}
	if (p->tty && p->total > 0) {
		int64_t done = p->base + bytes_done;
		int pct = (int)(done * 100 / p->total);
		int bar = pct * 30 / 100;

		fprintf(stderr, "\r[%.*s%*s] %3d%% %s/%s", bar, "==============================",
			30 - bar, "", pct, model, version);
	}
}

/* Collects (model, version) pairs to verify. */
static int verify_targets(struct reg_store *st, const char *spec, char (**out)[2][64], size_t *n)
{
	struct reg_model *models = NULL;
	size_t nm = 0, cnt = 0, cap = 0;
	char (*t)[2][64] = NULL;
	char model[64] = "", version[64] = "";
	int rc = 0;

	if (spec) {
		const char *slash = strchr(spec, '/');

		if (slash) {
			snprintf(model, sizeof(model), "%.*s", (int)(slash - spec), spec);
			snprintf(version, sizeof(version), "%s", slash + 1);
		} else {
			snprintf(model, sizeof(model), "%s", spec);
		}
	}
	if (model[0]) {
		nm = 1;
		models = calloc(1, sizeof(*models));
		if (!models)
			return -ENOMEM;
		rc = reg_model_get(st, model, &models[0]);
	} else {
		rc = reg_model_list(st, NULL, 0, &models, &nm);
	}
	for (size_t i = 0; rc == 0 && i < nm; i++) {
		struct reg_version *v = NULL;
		size_t nv = 0;

		if (version[0]) {
			v = calloc(1, sizeof(*v));
			nv = 1;
			rc = v ? reg_version_get(st, models[i].name, version, v) : -ENOMEM;
		} else {
			struct reg_version_filter f = { .state = REG_SEALED };

			rc = reg_version_list(st, models[i].name, &f, &v, &nv);
		}
		for (size_t j = 0; rc == 0 && j < nv; j++) {
			rc = cm_grow(&t, &cap, cnt + 1, sizeof(*t), 64);
			if (rc < 0)
				break;
			snprintf(t[cnt][0], 64, "%s", models[i].name);
			snprintf(t[cnt][1], 64, "%s", v[j].name);
			cnt++;
		}
		free(v);
	}
	free(models);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*out = t;
	*n = cnt;
	return 0;
}

int cli_verify(int argc, char **argv)
{
	struct progress p = { .tty = isatty(STDERR_FILENO) };
	struct reg_store *st = NULL;
	char (*targets)[2][64] = NULL;
	size_t n = 0;
	int rc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: modelfs verify STORE [MODEL[/VERSION]]\n");
		return CLI_ERROR;
	}
	rc = reg_store_open(argv[1], REG_OPEN_READONLY, &st);
	if (rc < 0)
		return fail("verify", rc);
	rc = verify_targets(st, argc == 3 ? argv[2] : NULL, &targets, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct reg_version v;

		if (reg_version_get(st, targets[i][0], targets[i][1], &v) == 0)
			p.total += v.total_size;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct reg_version v;

		rc = reg_version_get(st, targets[i][0], targets[i][1], &v);
		if (rc == 0)
			rc = reg_version_verify(st, targets[i][0], targets[i][1], verify_cb, &p);
		if (rc > 0)
			rc = 0; /* counted by the callback */
		p.base += v.total_size;
	}
	if (p.tty)
		fprintf(stderr, "\r\033[K");
	free(targets);
	reg_store_close(st);
	if (rc < 0)
		return fail("verify", rc);
	printf("%zu version%s verified, %d mismatch%s\n", n, n == 1 ? "" : "s", p.bad,
	       p.bad == 1 ? "" : "es");
	return p.bad ? CLI_PROBLEMS : CLI_OK;
}

int cli_gc_offline(const struct cli_gc_opts *o, json_t **out)
{
	struct reg_actor who = { .channel = "cli", .name = "gc" };
	struct reg_gc_opts g = { .model = o->model, .dry_run = o->dry_run, .reason = o->reason };
	struct reg_store *st = NULL;
	int rc;

	cli_test_hooks_install();
	/* A dry run writes nothing, but reads a store no daemon is changing either. */
	rc = reg_store_open(o->store, REG_OPEN_LOCK, &st);
	if (rc == -EBUSY)
		cm_err_wrap(rc, "%s (stop the daemon, or run gc through it: modelfs gc --url URL)",
			    cm_err_msg());
	if (rc == 0)
		rc = reg_gc_run(st, &who, &g, out);
	reg_store_close(st);
	return rc;
}

int cli_migrate(int argc, char **argv)
{
	const char *path = NULL, *to = NULL;
	json_t *report = NULL;
	char *text;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--to") && i + 1 < argc)
			to = argv[++i];
		else if (!strncmp(argv[i], "--to=", 5))
			to = argv[i] + 5;
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else
			path = to = NULL, i = argc;
	}
	if (!path || !to) {
		fprintf(stderr, "usage: modelfs migrate STORE --to postgresql://...|sqlite "
				"[--db URL: where the metadata is now]\n");
		return CLI_ERROR;
	}
	rc = reg_store_migrate(path, to, &report);
	if (rc < 0)
		return fail("migrate", rc);
	text = json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS);
	printf("moved %s's metadata from %s to %s: %s\n", path,
	       json_string_value(json_object_get(report, "from")),
	       json_string_value(json_object_get(report, "to")), text ? text : "");
	free(text);
	json_decref(report);
	return CLI_OK;
}
