/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_ui_store: builds the store the web UI benchmark (bench/ui.mjs, run by
 * `bench/run ui`) opens: one model with N sealed versions, each with a
 * metadata record (git commit, data hash, metrics, validation status), and
 * enough later changes (metadata patches, alias moves of `staging` and
 * `current`) for the model's history to hold E events in all. Everything
 * goes through the registry, as the daemon would do it.
 *
 * usage: bench_ui_store STORE [--versions N] [--events E]
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm.h"
#include "reg.h"

#define MODEL "bench-model"

static const struct reg_actor actor = { .channel = "api", .name = "bench" };

/* A deterministic generator, so two runs build the same store. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static double rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / (double)(1ULL << 53);
}

static unsigned char *passed; /* by version number: passes the default policy */

static json_t *record(unsigned k)
{
	char commit[16], hash[32];
	double acc = 0.78 + 0.2 * rnd();

	passed[k] = acc >= 0.85;
	snprintf(commit, sizeof(commit), "%07x", (k * 2654435761u) & 0xfffffffu);
	snprintf(hash, sizeof(hash), "sha256:%08x", (k / 7) * 40503u);
	return json_pack("{s:s s:s s:s s:{s:s s:s s:i} s:{s:i s:f} s:{s:f s:f s:f s:f} s:s}",
			 "git_commit", commit, "training_data_hash", hash,
			 "training_notebook", "notebooks/train_isolation_forest.ipynb",
			 "training_data", "start_date", "2026-10-01", "end_date", "2026-10-31",
			 "rows", 44640, "hyperparameters", "n_estimators", 100, "contamination",
			 0.05, "performance_metrics", "accuracy", acc, "precision", acc - 0.03,
			 "recall", acc - 0.05, "f1_score", acc - 0.04, "validation_status",
			 acc >= 0.85 ? "passed" : "failed");
}

static int fail(int rc, const char *what)
{
	fprintf(stderr, "bench_ui_store: %s: %s\n", what, cm_err_msg());
	return rc;
}

int main(int argc, char **argv)
{
	unsigned versions = 10000, events = 100000;
	struct reg_store *st = NULL;
	char name[32];
	int64_t have = 0;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_ui_store STORE [--versions N] [--events E]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--versions"))
			versions = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--events"))
			events = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	passed = calloc(versions + 1, 1);
	if (!passed)
		return 1;
	rc = reg_store_open(argv[1], REG_OPEN_CREATE | REG_OPEN_LOCK, &st);
	if (rc < 0)
		return fail(1, "open");
	rc = reg_model_create(st, &actor, MODEL, NULL);
	if (rc < 0 && rc != -EEXIST) {
		rc = fail(1, "model");
		goto done;
	}
	for (unsigned k = 1; k <= versions; k++) {
		json_t *rec = record(k);

		snprintf(name, sizeof(name), "v%u", k);
		rc = reg_version_create(st, &actor, MODEL, name, rec, NULL);
		json_decref(rec);
		if (rc == 0)
			rc = reg_version_seal(st, &actor, MODEL, name, NULL);
		if (rc < 0) {
			rc = fail(1, name);
			goto done;
		}
		have += 2;
	}
	have += 1;
	/* Later life: one alias move in five, the rest notes added by validation jobs. */
	for (unsigned i = 0; have < (int64_t)events; i++, have++) {
		unsigned k = 1 + (unsigned)(rnd() * versions);

		if (k > versions)
			k = versions;
		/* `current` is gated: it moves among versions that pass. */
		while (i % 10 == 0 && !passed[k])
			k = k % versions + 1;
		snprintf(name, sizeof(name), "v%u", k);
		if (i % 5 == 0) {
			struct reg_alias_opts o = { .percent = -1, .reason = "bench" };

			rc = reg_alias_set(st, &actor, MODEL, i % 10 ? "staging" : "current", name, &o,
					   NULL);
		} else {
			char note[48];
			json_t *patch;

			snprintf(note, sizeof(note), "re-validated by job %u", i);
			patch = json_pack("{s:s}", "notes", note);

			rc = reg_version_metadata_patch(st, &actor, MODEL, name, patch);
			json_decref(patch);
		}
		if (rc < 0) {
			rc = fail(1, "change");
			goto done;
		}
	}
	printf("store %s: model %s, %u versions, %lld events\n", argv[1], MODEL, versions,
	       (long long)have);
	rc = 0;
done:
	reg_store_close(st);
	free(passed);
	return rc;
}
