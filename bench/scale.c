/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_scale: the core scale benchmark. It builds a store of N models x M
 * versions through the registry (create, write files, seal, promote), then
 * times the calls that serving and daemon start-up depend on (version list,
 * alias resolve, promotion, close and reopen with its reconcile), each beside
 * a native baseline of the same tree made with plain mkdir/write/fsync, so
 * that ratios carry across machines where absolute numbers do not. Peak RSS
 * is measured in a fresh process (this binary re-run with --open-only).
 * Informational: the targets are printed as PASS/MISS and the exit code is 0
 * unless the benchmark itself could not run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cm.h"
#include "reg.h"

/* The targets from the scale issue. */
#define TARGET_LIST_P99_MS 20.0
#define TARGET_OPEN_S 1.0
#define TARGET_RSS_MB 64.0 /* MiB, as ru_maxrss counts */

#define LIST_CALLS 1000
#define ALIAS_GET_CALLS 10000
#define PROMOTE_CALLS 1000
#define OPEN_REPEATS 3
#define FSYNC_SAMPLES 100
#define PROMOTE_EVERY 10 /* `current` follows the latest version every this many */
#define MAX_MODELS 99999 /* names are model-%05u */
#define MAX_VERSIONS 1000000
#define TARGET_SEARCH_P99_MS 20.0
#define TARGET_SHOW_MS 50.0
#define SEARCH_CALLS 1000
#define SORTED_CALLS 20 /* a sort by a metadata path reads every match (see bench/README.md) */
#define SEARCH_PAGE 100  /* the API's default page */
#define SHOW_CALLS 200
#define SHOW_MODEL "big-model"

static const struct reg_actor bench_actor = { .channel = "cli", .name = "bench" };

struct bench_opts {
	unsigned models, versions, files;
	unsigned show_versions; /* versions of the model `show` is timed on */
	const char *dir;       /* NULL: a new directory under /tmp */
	const char *open_only; /* the --open-only store, or NULL */
	const char *search_only; /* the --search-only store, or NULL */
	int keep;
	int drop_caches;
	uint64_t seed;
};

struct bench_stats {
	double p50, p99, max, mean; /* microseconds */
	size_t n;
};

/* ---- small helpers ---- */

static int bench_err(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bench_err(int rc, const char *fmt, ...)
{
	va_list ap;

	fputs("bench_scale: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

/* Reports a failed registry call with the registry's own message. */
static int bench_reg_err(int rc, const char *call, const char *what)
{
	return bench_err(rc, "%s(%s): %s", call, what, cm_err_describe(rc));
}

static double bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* splitmix64: reproducible samples for a given --seed. */
static uint64_t bench_rng_state;

static uint64_t bench_rng(void)
{
	uint64_t z = (bench_rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned bench_rng_below(unsigned n)
{
	return (unsigned)(bench_rng() % n);
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v. */
static double bench_rank(const double *v, size_t n, double q)
{
	double want = q * (double)n;
	size_t r = (size_t)want;

	if ((double)r < want)
		r++;
	return v[r ? r - 1 : 0];
}

/* Sorts v in place and summarises it. */
static struct bench_stats bench_stats_of(double *v, size_t n)
{
	struct bench_stats s = { .n = n };
	double sum = 0;

	if (!n)
		return s;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	s.p50 = bench_rank(v, n, 0.50);
	s.p99 = bench_rank(v, n, 0.99);
	s.max = v[n - 1];
	s.mean = sum / (double)n;
	return s;
}

static void bench_print_stats(const char *label, const struct bench_stats *s)
{
	printf("  %-44s p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms  (n=%zu)\n", label, s->p50 / 1e3,
	       s->p99 / 1e3, s->max / 1e3, s->n);
}

static void bench_print_ratio(const char *label, double reg, double native)
{
	if (native > 0)
		printf("  %-44s %.2fx\n", label, reg / native);
	else
		printf("  %-44s n/a\n", label);
}

static int bench_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void bench_model_name(char out[REG_NAME_MAX], unsigned m)
{
	snprintf(out, REG_NAME_MAX, "model-%05u", m);
}

static void bench_version_name(char out[REG_NAME_MAX], unsigned k)
{
	snprintf(out, REG_NAME_MAX, "v%u", k);
}

/* File i of a version: model.pkl first, then extra-<i>.bin. */
static void bench_file_name(char out[REG_NAME_MAX], unsigned i)
{
	if (i == 0)
		snprintf(out, REG_NAME_MAX, "model.pkl");
	else
		snprintf(out, REG_NAME_MAX, "extra-%u.bin", i);
}

/* A few hundred bytes that differ per (model, version, file), so digests differ. */
static size_t bench_file_content(unsigned m, unsigned k, unsigned i, char *buf, size_t cap)
{
	uint64_t x = ((uint64_t)m << 40) ^ ((uint64_t)k << 8) ^ i ^ 0x5deece66dULL;
	size_t len = 200 + (size_t)(x * 2654435761u % 300);

	if (len > cap)
		len = cap;
	for (size_t j = 0; j < len; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[j] = (char)(x & 0xff);
	}
	return len;
}

/* A well-mixed 64-bit value from two inputs, for made-up commits and hashes. */
static uint64_t bench_mix(uint64_t a, uint64_t b)
{
	uint64_t z = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void bench_hex(char *out, size_t digits, uint64_t a, uint64_t b)
{
	for (size_t i = 0; i < digits; i += 16) {
		uint64_t x = bench_mix(a, b + i);

		for (size_t j = 0; j < 16 && i + j < digits; j++, x >>= 4)
			out[i + j] = "0123456789abcdef"[x & 0xf];
	}
	out[digits] = '\0';
}

/* Tag values spread over the versions: a tag filter keeps 1 in BENCH_TEAMS. */
#define BENCH_TEAMS 8
static const char *const bench_teams[BENCH_TEAMS] = { "sre", "fraud", "risk", "ads",
						      "search", "infra", "vision", "nlp" };

/* The version's metadata record: lineage, validation status, metrics, tags, owner. */
static json_t *bench_record(unsigned m, unsigned k)
{
	char commit[41], hash[65];

	bench_hex(commit, 40, m, k);
	bench_hex(hash, 64, m, (uint64_t)k << 32);
	return json_pack("{sssssss{sfsf}s{ssss}ss}", "git_commit", commit, "training_data_hash",
			 hash, "validation_status", "passed", "performance_metrics", "accuracy",
			 0.86 + (double)((m + k) % 100) / 1000.0, "f1_score",
			 0.80 + (double)(bench_mix(m, k) % 100) / 1000.0, "tags", "team",
			 bench_teams[bench_mix(k, m) % BENCH_TEAMS], "stage",
			 k % 2 ? "experiment" : "candidate", "owner", "ml-platform@example.com");
}

static const char *bench_fs_name(const char *path)
{
	static const struct {
		long type;
		const char *name;
	} types[] = {
		{ 0xEF53, "ext4" },          { 0x58465342, "xfs" },   { 0x01021994, "tmpfs" },
		{ 0x794c7630, "overlayfs" }, { 0x9123683E, "btrfs" }, { 0x6969, "nfs" },
		{ 0x65735546, "fuse" },      { 0x2fc12fc1, "zfs" },
	};
	struct statfs sf;

	if (statfs(path, &sf) < 0)
		return "unknown";
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if ((long)sf.f_type == types[i].type)
			return types[i].name;
	return "other";
}

static int64_t bench_file_size(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static void bench_print_db_size(const char *store, const char *when)
{
	char meta[PATH_MAX];
	int64_t db, wal;

	snprintf(meta, sizeof(meta), "%s/.modelfs", store);
	db = bench_file_size(meta, "registry.db");
	wal = bench_file_size(meta, "registry.db-wal");
	printf("  %-44s %.1f MiB (registry.db %.1f MiB + wal %.1f MiB)\n", when,
	       (double)(db + wal) / 1048576.0, (double)db / 1048576.0, (double)wal / 1048576.0);
}

static int bench_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

static void bench_rmrf(const char *path)
{
	nftw(path, bench_rm_one, 64, FTW_DEPTH | FTW_PHYS);
}

/* Median cost of a 1-byte write + fsync here: the unit everything below pays in. */
static double bench_fsync_cost(const char *dir)
{
	double v[FSYNC_SAMPLES];
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/fsync-probe", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	for (int i = 0; i < FSYNC_SAMPLES; i++) {
		double t0 = bench_now_us();

		if (pwrite(fd, "x", 1, i) != 1 || fsync(fd) < 0) {
			close(fd);
			unlink(path);
			return -1;
		}
		v[i] = bench_now_us() - t0;
	}
	close(fd);
	unlink(path);
	return bench_stats_of(v, FSYNC_SAMPLES).p50;
}

static int bench_drop_caches(void)
{
	int fd;
	int rc = 0;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "3\n", 2) != 2)
		rc = -errno;
	close(fd);
	return rc;
}

/* ---- native baseline ---- */

/* mkdir + every file written and fsynced + metadata.json + the two directory fsyncs. */
static int bench_native_version(int mfd, unsigned m, unsigned k, unsigned files, const char *meta)
{
	char vname[REG_NAME_MAX], fname[REG_NAME_MAX];
	char buf[512];
	int vfd = -1, fd = -1;
	int rc = 0;

	bench_version_name(vname, k);
	if (mkdirat(mfd, vname, 0755) < 0) {
		rc = bench_err(-errno, "native mkdir %s: %s", vname, strerror(errno));
		goto done;
	}
	vfd = openat(mfd, vname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (vfd < 0) {
		rc = bench_err(-errno, "native open %s: %s", vname, strerror(errno));
		goto done;
	}
	for (unsigned i = 0; i <= files; i++) {
		const char *data = meta;
		size_t len;

		if (i < files) {
			bench_file_name(fname, i);
			len = bench_file_content(m, k, i, buf, sizeof(buf));
			data = buf;
		} else {
			snprintf(fname, sizeof(fname), "metadata.json");
			len = strlen(meta);
		}
		fd = openat(vfd, fname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = bench_err(-errno, "native create %s/%s: %s", vname, fname, strerror(errno));
			goto done;
		}
		rc = bench_write_all(fd, data, len);
		if (rc == 0 && fsync(fd) < 0)
			rc = -errno;
		if (rc < 0) {
			rc = bench_err(rc, "native write %s/%s: %s", vname, fname, strerror(-rc));
			goto done;
		}
		close(fd);
		fd = -1;
	}
	if (fsync(vfd) < 0 || fsync(mfd) < 0)
		rc = bench_err(-errno, "native fsync %s: %s", vname, strerror(errno));
done:
	if (fd >= 0)
		close(fd);
	if (vfd >= 0)
		close(vfd);
	return rc;
}

/* What `ln -sfn vK current` does, made durable: temp symlink, rename, fsync the directory. */
static int bench_native_promote(int root, const char *model, const char *version)
{
	int mfd = openat(root, model, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (mfd < 0)
		return bench_err(-errno, "native open %s: %s", model, strerror(errno));
	if (symlinkat(version, mfd, ".current.tmp") < 0 ||
	    renameat(mfd, ".current.tmp", mfd, "current") < 0 || fsync(mfd) < 0)
		rc = bench_err(-errno, "native symlink %s/current: %s", model, strerror(errno));
	close(mfd);
	return rc;
}

struct bench_native {
	double build_us;     /* every version, mkdir to last fsync */
	double promote_us;   /* the symlink swaps during the build */
	unsigned promotions;
};

static int bench_native_build(const struct bench_opts *o, const char *dir, struct bench_native *out)
{
	char model[REG_NAME_MAX];
	unsigned step = o->versions >= 10 ? o->versions / 10 : 1;
	double start = bench_now_us();
	json_t *rec = NULL;
	char *meta = NULL;
	int *mfds = NULL;
	int root = -1;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	mfds = malloc(o->models * sizeof(*mfds));
	if (!mfds)
		return bench_err(-ENOMEM, "out of memory");
	for (unsigned m = 0; m < o->models; m++)
		mfds[m] = -1;
	root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		rc = bench_err(-errno, "open %s: %s", dir, strerror(errno));
		goto done;
	}
	for (unsigned m = 0; m < o->models; m++) {
		bench_model_name(model, m);
		if (mkdirat(root, model, 0755) < 0 ||
		    (mfds[m] = openat(root, model, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			rc = bench_err(-errno, "native model %s: %s", model, strerror(errno));
			goto done;
		}
	}
	fsync(root);
	/* Round-robin, as versions arrive in a real registry: every model gets v1, then v2... */
	for (unsigned k = 1; k <= o->versions; k++) {
		for (unsigned m = 0; m < o->models; m++) {
			double t0;

			rec = bench_record(m, k);
			meta = rec ? json_dumps(rec, JSON_INDENT(2)) : NULL;
			if (!meta) {
				rc = bench_err(-ENOMEM, "out of memory");
				goto done;
			}
			t0 = bench_now_us();
			rc = bench_native_version(mfds[m], m, k, o->files, meta);
			out->build_us += bench_now_us() - t0;
			free(meta);
			meta = NULL;
			json_decref(rec);
			rec = NULL;
			if (rc < 0)
				goto done;
			if (k % PROMOTE_EVERY == 0 || k == o->versions) {
				char vname[REG_NAME_MAX];

				bench_model_name(model, m);
				bench_version_name(vname, k);
				t0 = bench_now_us();
				rc = bench_native_promote(root, model, vname);
				out->promote_us += bench_now_us() - t0;
				out->promotions++;
				if (rc < 0)
					goto done;
			}
		}
		if (k % step == 0 || k == o->versions)
			fprintf(stderr, "bench_scale: native build: round %u/%u, %.1f s\n", k,
				o->versions, (bench_now_us() - start) / 1e6);
	}
done:
	free(meta);
	json_decref(rec);
	for (unsigned m = 0; m < o->models; m++)
		if (mfds[m] >= 0)
			close(mfds[m]);
	free(mfds);
	if (root >= 0)
		close(root);
	return rc;
}

/* opendir + readdir of one model directory: the native "list versions". */
static int bench_native_readdir(int root, const char *model, size_t *entries)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(root, model, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bench_err(-errno, "native open %s: %s", model, strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return bench_err(-errno, "native fdopendir %s: %s", model, strerror(errno));
	}
	*entries = 0;
	while ((de = readdir(d)) != NULL)
		(*entries)++;
	closedir(d);
	return 0;
}

/* ---- registry ---- */

struct bench_build {
	double *lat;        /* per-version register latency, round-robin order */
	double create_us, write_us, seal_us;
	double model_us;    /* reg_model_create, all models */
	double promote_us;  /* reg_alias_set during the build */
	unsigned promotions;
	double total_us;    /* the whole build, wall clock */
};

/* create + write files + seal, each phase timed into b. */
static int bench_register(struct reg_store *st, unsigned m, unsigned k, unsigned files,
			  struct bench_build *b, double *lat)
{
	char model[REG_NAME_MAX], vname[REG_NAME_MAX], fname[REG_NAME_MAX];
	char buf[512];
	json_t *rec = bench_record(m, k);
	int64_t vid = 0;
	int writing = 0;
	int vfd = -1, fd = -1;
	double t0, t1, t2, t3;
	int rc;

	bench_model_name(model, m);
	bench_version_name(vname, k);
	if (!rec)
		return bench_err(-ENOMEM, "out of memory");
	t0 = bench_now_us();
	rc = reg_version_create(st, &bench_actor, model, vname, rec, NULL);
	if (rc < 0) {
		bench_reg_err(rc, "reg_version_create", vname);
		goto done;
	}
	t1 = bench_now_us();
	rc = reg_write_begin(st, model, vname, &vid);
	if (rc < 0) {
		bench_reg_err(rc, "reg_write_begin", vname);
		goto done;
	}
	writing = 1;
	rc = reg_version_dir_open(st, model, vname, &vfd);
	if (rc < 0) {
		bench_reg_err(rc, "reg_version_dir_open", vname);
		goto done;
	}
	for (unsigned i = 0; i < files; i++) {
		size_t len = bench_file_content(m, k, i, buf, sizeof(buf));

		bench_file_name(fname, i);
		fd = openat(vfd, fname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = bench_err(-errno, "create %s/%s/%s: %s", model, vname, fname,
				       strerror(errno));
			goto done;
		}
		rc = bench_write_all(fd, buf, len);
		if (rc < 0) {
			bench_err(rc, "write %s/%s/%s: %s", model, vname, fname, strerror(-rc));
			goto done;
		}
		close(fd);
		fd = -1;
	}
	reg_write_end(st, vid);
	writing = 0;
	t2 = bench_now_us();
	rc = reg_version_seal(st, &bench_actor, model, vname, NULL);
	if (rc < 0) {
		bench_reg_err(rc, "reg_version_seal", vname);
		goto done;
	}
	t3 = bench_now_us();
	b->create_us += t1 - t0;
	b->write_us += t2 - t1;
	b->seal_us += t3 - t2;
	*lat = t3 - t0;
done:
	if (fd >= 0)
		close(fd);
	if (vfd >= 0)
		close(vfd);
	if (writing)
		reg_write_end(st, vid);
	json_decref(rec);
	return rc;
}

static int bench_registry_build(const struct bench_opts *o, struct reg_store *st,
				struct bench_build *b)
{
	char model[REG_NAME_MAX], vname[REG_NAME_MAX];
	unsigned step = o->versions >= 10 ? o->versions / 10 : 1;
	double start = bench_now_us();
	double t0;
	int rc = 0;

	t0 = bench_now_us();
	for (unsigned m = 0; m < o->models; m++) {
		bench_model_name(model, m);
		rc = reg_model_create(st, &bench_actor, model, NULL);
		if (rc < 0)
			return bench_reg_err(rc, "reg_model_create", model);
	}
	b->model_us = bench_now_us() - t0;
	for (unsigned k = 1; k <= o->versions; k++) {
		for (unsigned m = 0; m < o->models; m++) {
			size_t idx = (size_t)(k - 1) * o->models + m;

			rc = bench_register(st, m, k, o->files, b, &b->lat[idx]);
			if (rc < 0)
				return rc;
			if (k % PROMOTE_EVERY == 0 || k == o->versions) {
				bench_model_name(model, m);
				bench_version_name(vname, k);
				t0 = bench_now_us();
				rc = reg_alias_set(st, &bench_actor, model, "current", vname, NULL, NULL);
				b->promote_us += bench_now_us() - t0;
				b->promotions++;
				if (rc < 0)
					return bench_reg_err(rc, "reg_alias_set", vname);
			}
		}
		if (k % step == 0 || k == o->versions) {
			double el = (bench_now_us() - start) / 1e6;
			size_t done_n = (size_t)k * o->models;

			fprintf(stderr, "bench_scale: registry build: round %u/%u, %zu versions, %.1f s, "
				"%.2f ms/version so far\n", k, o->versions, done_n, el,
				el * 1e3 / (double)done_n);
		}
	}
	b->total_us = bench_now_us() - start;
	return 0;
}

/* ---- reads and promotions ---- */

static int bench_measure_list(struct reg_store *st, char (*names)[REG_NAME_MAX], size_t nm,
			      size_t expect, struct bench_stats *out)
{
	double *v = malloc(LIST_CALLS * sizeof(*v));
	int rc = 0;

	if (!v)
		return bench_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < LIST_CALLS; i++) {
		const char *model = names[bench_rng_below((unsigned)nm)];
		struct reg_version *vers = NULL;
		size_t n = 0;
		double t0 = bench_now_us();

		rc = reg_version_list(st, model, NULL, &vers, &n);
		v[i] = bench_now_us() - t0;
		free(vers);
		if (rc < 0) {
			bench_reg_err(rc, "reg_version_list", model);
			goto done;
		}
		if (expect && n != expect) {
			rc = bench_err(-EIO, "reg_version_list(%s) returned %zu versions, expected %zu",
				       model, n, expect);
			goto done;
		}
	}
	*out = bench_stats_of(v, LIST_CALLS);
done:
	free(v);
	return rc;
}

static int bench_measure_alias_get(struct reg_store *st, char (*names)[REG_NAME_MAX], size_t nm,
				   struct bench_stats *out)
{
	double *v = malloc(ALIAS_GET_CALLS * sizeof(*v));
	int rc = 0;

	if (!v)
		return bench_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < ALIAS_GET_CALLS; i++) {
		const char *model = names[bench_rng_below((unsigned)nm)];
		struct reg_alias a;
		double t0 = bench_now_us();

		rc = reg_alias_get(st, model, "current", &a);
		v[i] = bench_now_us() - t0;
		if (rc < 0) {
			bench_reg_err(rc, "reg_alias_get", model);
			goto done;
		}
	}
	*out = bench_stats_of(v, ALIAS_GET_CALLS);
done:
	free(v);
	return rc;
}

struct bench_reads {
	struct bench_stats list, alias_get, promote;
	struct bench_stats n_readdir, n_readlink, n_promote;
	int promoted; /* promotions measured (needs two versions) */
};

/* The warm measurements in the building process, registry and native side by side. */
static int bench_measure_all(const struct bench_opts *o, struct reg_store *st, const char *native,
			     char (*names)[REG_NAME_MAX], unsigned *current, struct bench_reads *r)
{
	double *v = malloc(ALIAS_GET_CALLS * sizeof(*v));
	char vname[REG_NAME_MAX];
	int root = -1;
	int rc;

	if (!v)
		return bench_err(-ENOMEM, "out of memory");
	rc = bench_measure_list(st, names, o->models, o->versions, &r->list);
	if (rc < 0)
		goto done;
	rc = bench_measure_alias_get(st, names, o->models, &r->alias_get);
	if (rc < 0)
		goto done;
	root = open(native, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		rc = bench_err(-errno, "open %s: %s", native, strerror(errno));
		goto done;
	}
	for (size_t i = 0; i < LIST_CALLS; i++) {
		size_t entries = 0;
		double t0 = bench_now_us();

		rc = bench_native_readdir(root, names[bench_rng_below(o->models)], &entries);
		v[i] = bench_now_us() - t0;
		if (rc < 0)
			goto done;
	}
	r->n_readdir = bench_stats_of(v, LIST_CALLS);
	for (size_t i = 0; i < ALIAS_GET_CALLS; i++) {
		char path[2 * REG_NAME_MAX + 16], target[REG_NAME_MAX];
		double t0;

		snprintf(path, sizeof(path), "%s/current", names[bench_rng_below(o->models)]);
		t0 = bench_now_us();
		if (readlinkat(root, path, target, sizeof(target)) < 0) {
			rc = bench_err(-errno, "native readlink %s: %s", path, strerror(errno));
			goto done;
		}
		v[i] = bench_now_us() - t0;
	}
	r->n_readlink = bench_stats_of(v, ALIAS_GET_CALLS);
	if (o->versions < 2)
		goto done; /* nothing to promote to */
	for (size_t i = 0; i < PROMOTE_CALLS; i++) {
		unsigned m = bench_rng_below(o->models);
		unsigned k = 1 + bench_rng_below(o->versions - 1);
		double t0;

		if (k >= current[m])
			k++; /* any sealed version but the current one */
		bench_version_name(vname, k);
		t0 = bench_now_us();
		rc = reg_alias_set(st, &bench_actor, names[m], "current", vname, NULL, NULL);
		v[i] = bench_now_us() - t0;
		if (rc < 0) {
			bench_reg_err(rc, "reg_alias_set", vname);
			goto done;
		}
		current[m] = k;
	}
	r->promote = bench_stats_of(v, PROMOTE_CALLS);
	for (size_t i = 0; i < PROMOTE_CALLS; i++) {
		unsigned m = bench_rng_below(o->models);
		double t0;

		bench_version_name(vname, 1 + bench_rng_below(o->versions));
		t0 = bench_now_us();
		rc = bench_native_promote(root, names[m], vname);
		v[i] = bench_now_us() - t0;
		if (rc < 0)
			goto done;
	}
	r->n_promote = bench_stats_of(v, PROMOTE_CALLS);
	r->promoted = 1;
done:
	if (root >= 0)
		close(root);
	free(v);
	return rc;
}

/* ---- search and show (descriptions, owners, tags and search) ---- */

struct bench_search {
	struct bench_stats both, metric, tag, sorted, show;
	double hits[4];        /* mean versions on the first page, per kind */
	size_t walk_matches;   /* every page of one metric+tag filter */
	size_t walk_pages;
	double walk_us;
	double show_build_us;  /* creating the show model's versions */
	int64_t show_count;
};

/* One cross-model search page; *hits gets its size. */
static int bench_search_page(struct reg_store *st, const char *filter, const char *sort,
			     const char *cursor, json_t **page)
{
	struct reg_search q = { .cross = 1, .filter = filter, .sort = sort, .cursor = cursor,
				.limit = SEARCH_PAGE };
	int rc = reg_version_search(st, &q, page);

	if (rc < 0)
		return bench_reg_err(rc, "reg_version_search", filter);
	return 0;
}

static int bench_measure_search(struct reg_store *st, struct bench_search *out)
{
	static const char *const kinds[] = { "metric and tag", "metric", "tag",
					     "metric and tag, sorted by metric" };
	struct bench_stats *stats[] = { &out->both, &out->metric, &out->tag, &out->sorted };
	double *v = malloc(SEARCH_CALLS * sizeof(*v));
	char filter[256];
	json_t *page = NULL;
	char *cursor = NULL;
	int rc = 0;

	if (!v)
		return bench_err(-ENOMEM, "out of memory");
	for (int k = 0; k < 4; k++) {
		size_t calls = k == 3 ? SORTED_CALLS : SEARCH_CALLS;
		double hits = 0;

		for (size_t i = 0; i < calls; i++) {
			double min = 0.90 + (double)bench_rng_below(6) / 100.0;
			const char *team = bench_teams[bench_rng_below(BENCH_TEAMS)];
			double t0;

			if (k == 1)
				snprintf(filter, sizeof(filter), "performance_metrics.accuracy >= %.2f",
					 min);
			else if (k == 2)
				snprintf(filter, sizeof(filter), "tags.team = \"%s\"", team);
			else
				snprintf(filter, sizeof(filter),
					 "performance_metrics.accuracy >= %.2f and tags.team = \"%s\"",
					 min, team);
			t0 = bench_now_us();
			rc = bench_search_page(st, filter, k == 3 ? "-performance_metrics.accuracy" : NULL,
					       NULL, &page);
			v[i] = bench_now_us() - t0;
			if (rc < 0)
				goto done;
			hits += (double)json_array_size(json_object_get(page, "versions"));
			json_decref(page);
			page = NULL;
		}
		*stats[k] = bench_stats_of(v, calls);
		out->hits[k] = hits / (double)calls;
		(void)kinds;
	}
	/* Every page of one filter, by cursor. */
	{
		double t0 = bench_now_us();

		for (;;) {
			const char *next;

			rc = bench_search_page(st, "performance_metrics.accuracy >= 0.93 and "
					       "tags.team = \"sre\"", NULL, cursor, &page);
			if (rc < 0)
				goto done;
			out->walk_pages++;
			out->walk_matches += json_array_size(json_object_get(page, "versions"));
			next = json_string_value(json_object_get(page, "next_cursor"));
			free(cursor);
			cursor = next ? strdup(next) : NULL;
			json_decref(page);
			page = NULL;
			if (!cursor)
				break;
		}
		out->walk_us = bench_now_us() - t0;
	}
done:
	json_decref(page);
	free(cursor);
	free(v);
	return rc;
}

/* What the API answers `modelfs show` with, as registry calls: model, one page of
 * versions newest first, each one's metadata, the last events. */
static int bench_show_once(struct reg_store *st, const char *model)
{
	struct reg_search q = { .model = model, .sort = "-seq", .limit = 5 };
	struct reg_event_filter ef = { .desc = 1, .limit = 6 };
	struct reg_model m;
	struct reg_alias *a = NULL;
	size_t na = 0;
	int64_t counts[3];
	char latest[REG_NAME_MAX];
	json_t *about = NULL, *page = NULL, *meta = NULL, *ev = NULL, *it;
	size_t i;
	int rc;

	rc = reg_model_get(st, model, &m);
	if (rc == 0)
		rc = reg_alias_list(st, model, &a, &na);
	if (rc == 0)
		rc = reg_version_counts(st, model, counts, latest);
	if (rc == 0)
		rc = reg_model_about(st, model, &about);
	if (rc == 0)
		rc = reg_version_search(st, &q, &page);
	json_array_foreach(json_object_get(page, "versions"), i, it) {
		if (rc < 0)
			break;
		rc = reg_version_metadata_get(st, model, json_string_value(json_object_get(it, "name")),
					      &meta);
		json_decref(meta);
		meta = NULL;
	}
	if (rc == 0)
		rc = reg_event_list(st, model, &ef, &ev);
	free(a);
	json_decref(about);
	json_decref(page);
	json_decref(ev);
	return rc < 0 ? bench_reg_err(rc, "show", model) : 0;
}

static int bench_measure_show(const struct bench_opts *o, struct reg_store *st,
			      struct bench_search *out)
{
	double *v = malloc(SHOW_CALLS * sizeof(*v));
	char vname[REG_NAME_MAX], latest[REG_NAME_MAX];
	unsigned want = o->show_versions;
	double t0;
	int rc;

	if (!v)
		return bench_err(-ENOMEM, "out of memory");
	t0 = bench_now_us();
	rc = reg_model_create(st, &bench_actor, SHOW_MODEL, NULL);
	if (rc == -EEXIST) { /* --search-only on a store a previous run built */
		want = 0;
		rc = 0;
	}
	for (unsigned k = 1; rc == 0 && k <= want; k++) {
		json_t *rec = bench_record(MAX_MODELS, k);

		bench_version_name(vname, k);
		rc = rec ? reg_version_create(st, &bench_actor, SHOW_MODEL, vname, rec, NULL)
			 : -ENOMEM;
		json_decref(rec);
		if (rc == 0 && k % 100 == 0)
			rc = reg_alias_set(st, &bench_actor, SHOW_MODEL, "current", vname, NULL, NULL);
	}
	if (rc < 0) {
		bench_reg_err(rc, "building the show model", SHOW_MODEL);
		goto done;
	}
	out->show_build_us = bench_now_us() - t0;
	{
		int64_t counts[3];

		rc = reg_version_counts(st, SHOW_MODEL, counts, latest);
		if (rc < 0)
			goto done;
		out->show_count = counts[0] + counts[1] + counts[2];
	}
	for (size_t i = 0; i < SHOW_CALLS; i++) {
		t0 = bench_now_us();
		rc = bench_show_once(st, SHOW_MODEL);
		v[i] = bench_now_us() - t0;
		if (rc < 0)
			goto done;
	}
	out->show = bench_stats_of(v, SHOW_CALLS);
done:
	free(v);
	return rc;
}

/* ---- --open-only: a fresh process, as the daemon starts ---- */

static int bench_open_only(const struct bench_opts *o)
{
	char (*names)[REG_NAME_MAX] = NULL;
	struct reg_store *st = NULL;
	struct reg_model *models = NULL;
	struct bench_stats list, aget;
	struct rusage ru;
	size_t nm = 0;
	double t0, open_us, close_us;
	int rc;

	t0 = bench_now_us();
	rc = reg_store_open(o->open_only, REG_OPEN_LOCK, &st);
	open_us = bench_now_us() - t0;
	if (rc < 0) {
		bench_reg_err(rc, "reg_store_open", o->open_only);
		goto done;
	}
	rc = reg_model_list(st, NULL, 0, &models, &nm);
	if (rc < 0) {
		bench_reg_err(rc, "reg_model_list", o->open_only);
		goto done;
	}
	if (!nm) {
		rc = bench_err(-ENOENT, "the store %s has no models", o->open_only);
		goto done;
	}
	names = malloc(nm * sizeof(*names));
	if (!names) {
		rc = bench_err(-ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nm; i++)
		memcpy(names[i], models[i].name, REG_NAME_MAX);
	rc = bench_measure_list(st, names, nm, 0, &list);
	if (rc == 0)
		rc = bench_measure_alias_get(st, names, nm, &aget);
	if (rc < 0)
		goto done;
	t0 = bench_now_us();
	reg_store_close(st);
	st = NULL;
	close_us = bench_now_us() - t0;
	getrusage(RUSAGE_SELF, &ru);
	printf("  %-44s %8.3f ms (%zu models)\n", "reg_store_open (LOCK, reconcile)", open_us / 1e3,
	       nm);
	bench_print_stats("reg_version_list", &list);
	bench_print_stats("reg_alias_get current", &aget);
	printf("  %-44s %8.3f ms\n", "reg_store_close", close_us / 1e3);
	printf("  %-44s %.1f MiB\n", "peak RSS (ru_maxrss)", (double)ru.ru_maxrss / 1024.0);
done:
	reg_store_close(st);
	free(models);
	free(names);
	return rc;
}

/* Runs this binary again in --open-only mode; *rss_kb gets the child's peak RSS. */
static int bench_spawn_open_only(const struct bench_opts *o, const char *store, long *rss_kb)
{
	char seed[32];
	struct rusage ru;
	int status = 0;
	pid_t pid;

	snprintf(seed, sizeof(seed), "%llu", (unsigned long long)(o->seed + 1));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return bench_err(-errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		char *argv[] = { "bench_scale", "--open-only", (char *)store, "--seed", seed, NULL };

		execv("/proc/self/exe", argv);
		fprintf(stderr, "bench_scale: exec /proc/self/exe: %s\n", strerror(errno));
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return bench_err(-errno, "wait4: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return bench_err(-EIO, "the --open-only process failed (status 0x%x)", status);
	*rss_kb = ru.ru_maxrss;
	return 0;
}

/* ---- the main run ---- */

static void bench_target(const char *label, double value, double limit, const char *unit)
{
	printf("  %-44s %10.3f %-3s (target <= %g %s)  %s\n", label, value, unit, limit, unit,
	       value <= limit ? "PASS" : "MISS");
}

/* --search-only STORE: the search and show measurements on a store built before. */
static int bench_search_only(const struct bench_opts *o)
{
	struct bench_search srch = { 0 };
	struct reg_store *st = NULL;
	int rc = reg_store_open(o->search_only, REG_OPEN_LOCK, &st);

	if (rc < 0)
		return bench_reg_err(rc, "reg_store_open", o->search_only);
	rc = bench_measure_search(st, &srch);
	if (rc == 0)
		rc = bench_measure_show(o, st, &srch);
	if (rc == 0) {
		printf("search (reg_version_search across models, first page of %d) in %s\n",
		       SEARCH_PAGE, o->search_only);
		bench_print_stats("filter: accuracy >= X and tags.team = T", &srch.both);
		printf("  %-44s %10.1f versions on the page (mean)\n", "", srch.hits[0]);
		bench_print_stats("filter: accuracy >= X", &srch.metric);
		bench_print_stats("filter: tags.team = T", &srch.tag);
		bench_print_stats("metric and tag, sort -accuracy", &srch.sorted);
		printf("  %-44s %zu versions in %zu pages, %.1f ms (%.3f ms/page)\n",
		       "every page of accuracy >= 0.93 and team sre", srch.walk_matches, srch.walk_pages,
		       srch.walk_us / 1e3, srch.walk_us / 1e3 / (double)srch.walk_pages);
		printf("show of a model with %lld versions\n", (long long)srch.show_count);
		bench_print_stats("show", &srch.show);
		bench_target("search metric and tag filter p99", srch.both.p99 / 1e3,
			     TARGET_SEARCH_P99_MS, "ms");
		bench_target("show p99", srch.show.p99 / 1e3, TARGET_SHOW_MS, "ms");
	}
	reg_store_close(st);
	return rc;
}

static int bench_run(const struct bench_opts *o)
{
	char base[PATH_MAX], store[PATH_MAX], native[PATH_MAX];
	char (*names)[REG_NAME_MAX] = NULL;
	unsigned *current = NULL;
	struct reg_store *st = NULL;
	struct bench_native nat;
	struct bench_build b = { 0 };
	struct bench_reads r = { 0 };
	struct bench_search srch = { 0 };
	struct bench_stats reg_stats;
	struct utsname un;
	struct rusage ru;
	size_t nv = (size_t)o->models * o->versions;
	double open_us[OPEN_REPEATS], cold_open_us = -1, close_us, fsync_us;
	double first_mean = 0, last_mean = 0;
	long child_rss_kb = 0;
	int made_base = 0, made_store = 0, made_native = 0;
	int64_t events = 0;
	char diskmsg[256] = "";
	int64_t disk_errors;
	unsigned tenth;
	int rc;

	if (o->dir) {
		snprintf(base, sizeof(base), "%s", o->dir);
		if (mkdir(base, 0755) == 0)
			made_base = 1;
		else if (errno != EEXIST)
			return bench_err(-errno, "mkdir %s: %s", base, strerror(errno));
	} else {
		snprintf(base, sizeof(base), "/tmp/modelfs-bench-XXXXXX");
		if (!mkdtemp(base))
			return bench_err(-errno, "mkdtemp: %s", strerror(errno));
		made_base = 1;
	}
	snprintf(store, sizeof(store), "%s/store", base);
	snprintf(native, sizeof(native), "%s/native", base);
	names = malloc(o->models * sizeof(*names));
	current = calloc(o->models, sizeof(*current));
	b.lat = malloc(nv * sizeof(*b.lat));
	if (!names || !current || !b.lat) {
		rc = bench_err(-ENOMEM, "out of memory");
		goto done;
	}
	for (unsigned m = 0; m < o->models; m++) {
		bench_model_name(names[m], m);
		current[m] = o->versions;
	}

	/* Never build into what is already there. */
	if (mkdir(native, 0755) < 0) {
		rc = bench_err(-errno, "mkdir %s: %s", native, strerror(errno));
		goto done;
	}
	made_native = 1;
	if (mkdir(store, 0755) < 0) {
		rc = bench_err(-errno, "mkdir %s: %s", store, strerror(errno));
		goto done;
	}
	made_store = 1;

	uname(&un);
	fsync_us = bench_fsync_cost(base);
	printf("modelfs bench_scale\n");
	printf("  %-20s %u models x %u versions x %u files (+ metadata.json) = %zu versions\n",
	       "size", o->models, o->versions, o->files, nv);
	printf("  %-20s %s (%s)\n", "directory", base, bench_fs_name(base));
	printf("  %-20s %ld CPUs, %s %s, %s build, seed %llu\n", "machine",
	       sysconf(_SC_NPROCESSORS_ONLN), un.sysname, un.release,
#ifdef __OPTIMIZE__
	       "optimized",
#else
	       "UNOPTIMIZED",
#endif
	       (unsigned long long)o->seed);
	printf("  %-20s p50 %.3f ms (1-byte write + fsync, %d samples)\n", "fsync", fsync_us / 1e3,
	       FSYNC_SAMPLES);
	fflush(stdout);

	/* Native first: the same tree with plain syscalls. */
	rc = bench_native_build(o, native, &nat);
	if (rc < 0)
		goto done;

	rc = reg_store_open(store, REG_OPEN_CREATE | REG_OPEN_LOCK, &st);
	if (rc < 0) {
		bench_reg_err(rc, "reg_store_open", store);
		goto done;
	}
	rc = bench_registry_build(o, st, &b);
	if (rc < 0)
		goto done;
	disk_errors = reg_store_disk_errors(st, diskmsg, sizeof(diskmsg));
	reg_event_count(st, &events);

	/* Per-version cost early vs late: growth with the number of versions per model. */
	tenth = o->versions >= 10 ? o->versions / 10 : 1;
	for (size_t i = 0; i < (size_t)tenth * o->models; i++) {
		first_mean += b.lat[i];
		last_mean += b.lat[nv - 1 - i];
	}
	first_mean /= (double)tenth * o->models;
	last_mean /= (double)tenth * o->models;
	reg_stats = bench_stats_of(b.lat, nv);

	printf("\nbuild (round-robin: every model gets v1, then v2, ...)\n");
	printf("  %-44s %10.1f s total, %8.3f ms/version\n",
	       "native mkdir + write + fsync", nat.build_us / 1e6, nat.build_us / 1e3 / (double)nv);
	printf("  %-44s %10.1f s total, %8.3f ms/version\n",
	       "registry create + write + seal", (b.create_us + b.write_us + b.seal_us) / 1e6,
	       reg_stats.mean / 1e3);
	bench_print_stats("registry per-version latency", &reg_stats);
	printf("  %-44s create %.3f, write %.3f, seal %.3f ms/version\n", "registry split (mean)",
	       b.create_us / 1e3 / (double)nv, b.write_us / 1e3 / (double)nv,
	       b.seal_us / 1e3 / (double)nv);
	printf("  %-44s first %u rounds %.3f ms, last %u rounds %.3f ms\n",
	       "registry mean ms/version by age", tenth, first_mean / 1e3, tenth, last_mean / 1e3);
	printf("  %-44s %10.3f ms/model (%u models)\n", "reg_model_create",
	       b.model_us / 1e3 / o->models, o->models);
	printf("  %-44s %10.3f ms mean (%u), native symlink swap %.3f ms\n",
	       "reg_alias_set current during build", b.promote_us / 1e3 / b.promotions, b.promotions,
	       nat.promotions ? nat.promote_us / 1e3 / nat.promotions : 0.0);
	printf("  %-44s %10.1f s (models, versions, promotions)\n", "registry build wall clock",
	       b.total_us / 1e6);
	printf("  %-44s %lld events, %lld disk errors%s%s\n", "registry state", (long long)events,
	       (long long)disk_errors, diskmsg[0] ? ": " : "", diskmsg);
	bench_print_ratio("ratio register / native write (per version)", reg_stats.mean,
			  nat.build_us / (double)nv);
	fflush(stdout);

	rc = bench_measure_all(o, st, native, names, current, &r);
	if (rc < 0)
		goto done;
	printf("\nreads and promotions (warm, in the building process)\n");
	bench_print_stats("reg_version_list (whole model)", &r.list);
	bench_print_stats("native readdir of the model directory", &r.n_readdir);
	bench_print_ratio("ratio list p99 / readdir p99", r.list.p99, r.n_readdir.p99);
	bench_print_stats("reg_alias_get current", &r.alias_get);
	bench_print_stats("native readlink current", &r.n_readlink);
	bench_print_ratio("ratio alias_get p99 / readlink p99", r.alias_get.p99, r.n_readlink.p99);
	if (r.promoted) {
		bench_print_stats("reg_alias_set current (promotion)", &r.promote);
		bench_print_stats("native symlink + rename + fsync dir", &r.n_promote);
		bench_print_ratio("ratio promotion p50 / native swap p50", r.promote.p50,
				  r.n_promote.p50);
	} else {
		printf("  %-44s skipped (needs 2 versions)\n", "reg_alias_set current (promotion)");
	}

	rc = bench_measure_search(st, &srch);
	if (rc == 0 && o->show_versions)
		rc = bench_measure_show(o, st, &srch);
	if (rc < 0)
		goto done;
	printf("\nsearch over %zu versions (reg_version_search across models, first page of %d)\n",
	       nv, SEARCH_PAGE);
	bench_print_stats("filter: accuracy >= X and tags.team = T", &srch.both);
	printf("  %-44s %10.1f versions on the page (mean)\n", "", srch.hits[0]);
	bench_print_stats("filter: accuracy >= X", &srch.metric);
	bench_print_stats("filter: tags.team = T", &srch.tag);
	bench_print_stats("metric and tag, sort -accuracy", &srch.sorted);
	printf("  %-44s %zu versions in %zu pages, %.1f ms (%.3f ms/page)\n",
	       "every page of accuracy >= 0.93 and team sre", srch.walk_matches, srch.walk_pages,
	       srch.walk_us / 1e3, srch.walk_us / 1e3 / (double)srch.walk_pages);
	if (o->show_versions) {
		printf("\nshow of a model with %lld versions (the registry calls behind the API calls "
		       "of modelfs show)\n", (long long)srch.show_count);
		printf("  %-44s %10.1f s (%.3f ms/version)\n", "building it (create with metadata)",
		       srch.show_build_us / 1e6, srch.show_build_us / 1e3 / o->show_versions);
		bench_print_stats("show", &srch.show);
	}
	fflush(stdout);

	printf("\nclose and reopen (reg_store_open with REG_OPEN_LOCK runs the reconcile)\n");
	bench_print_db_size(store, "db size while open");
	{
		double t0 = bench_now_us();

		reg_store_close(st);
		st = NULL;
		close_us = bench_now_us() - t0;
	}
	printf("  %-44s %10.3f ms\n", "reg_store_close (checkpoint)", close_us / 1e3);
	bench_print_db_size(store, "db size after close");
	for (int i = 0; i < OPEN_REPEATS; i++) {
		double t0 = bench_now_us();
		char label[64];

		rc = reg_store_open(store, REG_OPEN_LOCK, &st);
		open_us[i] = bench_now_us() - t0;
		if (rc < 0) {
			bench_reg_err(rc, "reg_store_open", store);
			goto done;
		}
		t0 = bench_now_us();
		reg_store_close(st);
		st = NULL;
		snprintf(label, sizeof(label), "reg_store_open, warm, run %d", i + 1);
		printf("  %-44s %10.3f ms (close %.3f ms)\n", label, open_us[i] / 1e3,
		       (bench_now_us() - t0) / 1e3);
	}
	if (o->drop_caches && geteuid() == 0) {
		rc = bench_drop_caches();
		if (rc < 0) {
			printf("  %-44s skipped: drop_caches: %s\n", "reg_store_open, cold", strerror(-rc));
		} else {
			double t0 = bench_now_us();

			rc = reg_store_open(store, REG_OPEN_LOCK, &st);
			cold_open_us = bench_now_us() - t0;
			if (rc < 0) {
				bench_reg_err(rc, "reg_store_open", store);
				goto done;
			}
			reg_store_close(st);
			st = NULL;
			printf("  %-44s %10.3f ms\n", "reg_store_open, cold (after drop_caches)",
			       cold_open_us / 1e3);
		}
		rc = 0;
	} else {
		printf("  %-44s skipped (needs --drop-caches and root)\n", "reg_store_open, cold");
	}

	printf("\nfresh process (%s --open-only %s)\n", "bench_scale", store);
	rc = bench_spawn_open_only(o, store, &child_rss_kb);
	if (rc < 0)
		goto done;
	getrusage(RUSAGE_SELF, &ru);
	printf("\nmemory\n");
	printf("  %-44s %.1f MiB\n", "peak RSS, fresh --open-only process",
	       (double)child_rss_kb / 1024.0);
	printf("  %-44s %.1f MiB (includes the build and its latency arrays)\n",
	       "peak RSS, building process", (double)ru.ru_maxrss / 1024.0);

	{
		double worst_open = 0;

		for (int i = 0; i < OPEN_REPEATS; i++)
			if (open_us[i] > worst_open)
				worst_open = open_us[i];
		printf("\ntargets (informational; %zu versions)\n", nv);
		bench_target("reg_version_list p99", r.list.p99 / 1e3, TARGET_LIST_P99_MS, "ms");
		bench_target("reg_store_open, worst warm run", worst_open / 1e3,
			     TARGET_OPEN_S * 1e3, "ms");
		if (cold_open_us >= 0)
			bench_target("reg_store_open, cold", cold_open_us / 1e3, TARGET_OPEN_S * 1e3,
				     "ms");
		bench_target("peak RSS, fresh --open-only process", (double)child_rss_kb / 1024.0,
			     TARGET_RSS_MB, "MiB");
		bench_target("search metric and tag filter p99", srch.both.p99 / 1e3,
			     TARGET_SEARCH_P99_MS, "ms");
		if (o->show_versions)
			bench_target("show, model of --show-versions, p99", srch.show.p99 / 1e3,
				     TARGET_SHOW_MS, "ms");
	}
done:
	reg_store_close(st);
	fflush(stdout);
	if (!o->keep) {
		if (made_store)
			bench_rmrf(store);
		if (made_native)
			bench_rmrf(native);
		if (made_base)
			rmdir(base);
	} else {
		fprintf(stderr, "bench_scale: kept %s\n", base);
	}
	free(b.lat);
	free(current);
	free(names);
	return rc;
}

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: bench_scale [--models N] [--versions M] [--files F] [--dir DIR] [--keep]\n"
		"                   [--drop-caches] [--seed S] [--show-versions K]\n"
		"       bench_scale --open-only STORE [--seed S]\n"
		"       bench_scale --search-only STORE [--show-versions K] [--seed S]\n"
		"\n"
		"Builds N models x M versions (default 1000 x 100) of F files (default 3) in\n"
		"DIR/store through the registry and the same tree in DIR/native with plain\n"
		"syscalls, then measures list, alias and open latencies against the native tree.\n"
		"DIR defaults to a new directory under /tmp; what was created is removed at the\n"
		"end unless --keep. --drop-caches (root only) adds a cold open. Then searches\n"
		"across every version with metric and tag filters, and times what `show` asks of\n"
		"a model of K versions (default 10000). --open-only opens\n"
		"an existing store, measures reads and prints its own peak RSS.\n");
}

/* Parses a positive integer option value into *out, within [1, max]. */
static int bench_parse_uint(const char *opt, const char *s, unsigned long long max,
			    unsigned long long *out)
{
	char *end = NULL;
	unsigned long long v;

	if (!s)
		return bench_err(-EINVAL, "%s needs a value", opt);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !end || *end || s[0] == '-' || v < 1 || v > max)
		return bench_err(-EINVAL, "%s: '%s' is not a number from 1 to %llu", opt, s, max);
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o = { .models = 1000, .versions = 100, .files = 3, .seed = 1,
				.show_versions = 10000 };
	int rc = 0;

	for (int i = 1; i < argc && rc == 0; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned long long v = 0;

		if (!strcmp(a, "--models")) {
			rc = bench_parse_uint(a, val, MAX_MODELS, &v);
			o.models = (unsigned)v;
			i++;
		} else if (!strcmp(a, "--versions")) {
			rc = bench_parse_uint(a, val, MAX_VERSIONS, &v);
			o.versions = (unsigned)v;
			i++;
		} else if (!strcmp(a, "--show-versions")) {
			rc = bench_parse_uint(a, val, MAX_VERSIONS, &v);
			o.show_versions = (unsigned)v;
			i++;
		} else if (!strcmp(a, "--files")) {
			rc = bench_parse_uint(a, val, 64, &v);
			o.files = (unsigned)v;
			i++;
		} else if (!strcmp(a, "--seed")) {
			rc = bench_parse_uint(a, val, UINT64_MAX, &v);
			o.seed = v;
			i++;
		} else if (!strcmp(a, "--dir") || !strcmp(a, "--open-only")) {
			if (!val || !val[0])
				rc = bench_err(-EINVAL, "%s needs a directory", a);
			else if (!strcmp(a, "--dir"))
				o.dir = val;
			else
				o.open_only = val;
			i++;
		} else if (!strcmp(a, "--search-only")) {
			if (!val || !val[0])
				rc = bench_err(-EINVAL, "%s needs a store", a);
			o.search_only = val;
			i++;
		} else if (!strcmp(a, "--keep")) {
			o.keep = 1;
		} else if (!strcmp(a, "--drop-caches")) {
			o.drop_caches = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			bench_usage(stdout);
			return 0;
		} else {
			bench_usage(stderr);
			return 2;
		}
	}
	if (rc < 0)
		return 2;
	bench_rng_state = o.seed;
	rc = o.open_only ? bench_open_only(&o) : o.search_only ? bench_search_only(&o) : bench_run(&o);
	return rc < 0 ? 1 : 0;
}
