/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_fuse_meta: the tight syscall loops of the FUSE benchmark (bench/fuse.py),
 * in C so that interpreter overhead does not flatten the native-vs-mount
 * ratios. Each subcommand prints one line per round, "ns <elapsed> ops <n>",
 * and the caller takes the median.
 *
 *   bench_fuse_meta stat DIR ROUNDS       stat(2) every entry of DIR by full path
 *   bench_fuse_meta readlink PATH N ROUNDS  readlink(2) PATH N times a round
 *   bench_fuse_meta read FILE BS          one sequential pass with BS-byte reads
 *   bench_fuse_meta mmap FILE seq|rand PAGES SEED
 *                                         map FILE and touch one byte of each page in
 *                                         order (seq, PAGES ignored), or of PAGES pages
 *                                         picked at random (rand): a model loader's pattern
 *   bench_fuse_meta firstbyte DIR ROUNDS  open each file of DIR, read its first byte,
 *                                         close; one line "lat <ns>" per open, then the
 *                                         round's "ns ... ops ..." line
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int die(const char *what, const char *path)
{
	fprintf(stderr, "bench_fuse_meta: %s %s: %s\n", what, path, strerror(errno));
	return 1;
}

/* Full paths of DIR's entries (not . and ..), read once before timing. */
static int names_load(const char *dir, char ***out, size_t *n_out)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nv;

			cap = cap ? cap * 2 : 1024;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		if (asprintf(&v[n], "%s/%s", dir, de->d_name) < 0)
			break;
		n++;
	}
	closedir(d);
	*out = v;
	*n_out = n;
	return 0;
}

static int cmd_stat(const char *dir, int rounds)
{
	char **names = NULL;
	size_t n = 0;
	struct stat sb;

	if (names_load(dir, &names, &n) < 0)
		return die("opendir", dir);
	for (int r = 0; r < rounds; r++) {
		long long t0 = now_ns();

		for (size_t i = 0; i < n; i++)
			if (stat(names[i], &sb) < 0)
				return die("stat", names[i]);
		printf("ns %lld ops %zu\n", now_ns() - t0, n);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}

static int cmd_readlink(const char *path, long count, int rounds)
{
	char buf[PATH_MAX];

	for (int r = 0; r < rounds; r++) {
		long long t0 = now_ns();

		for (long i = 0; i < count; i++)
			if (readlink(path, buf, sizeof(buf)) < 0)
				return die("readlink", path);
		printf("ns %lld ops %ld\n", now_ns() - t0, count);
	}
	return 0;
}

static int cmd_read(const char *path, size_t bs)
{
	char *buf = aligned_alloc(4096, bs);
	long long total = 0, t0;
	ssize_t got;
	int fd;

	if (!buf)
		return die("allocating", "buffer");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die("open", path);
	t0 = now_ns();
	while ((got = read(fd, buf, bs)) > 0)
		total += got;
	if (got < 0)
		return die("read", path);
	printf("ns %lld ops %lld\n", now_ns() - t0, total);
	close(fd);
	free(buf);
	return 0;
}

/* xorshift64*: the same page order for the native file and the mount. */
static unsigned long long rnd_next(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static int cmd_mmap(const char *path, const char *how, long pages, unsigned long long seed)
{
	long psz = sysconf(_SC_PAGESIZE);
	volatile unsigned char sink = 0;
	unsigned long long s = seed ? seed : 1;
	const unsigned char *p;
	long long t0, touched = 0;
	struct stat sb;
	long npages;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die("open", path);
	if (fstat(fd, &sb) < 0 || sb.st_size == 0)
		return die("fstat", path);
	npages = (long)((sb.st_size + psz - 1) / psz);
	t0 = now_ns();
	p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return die("mmap", path);
	if (!strcmp(how, "seq")) {
		for (long i = 0; i < npages; i++)
			sink ^= p[i * psz];
		touched = npages;
	} else {
		for (long i = 0; i < pages; i++)
			sink ^= p[(long)(rnd_next(&s) % (unsigned long long)npages) * psz];
		touched = pages;
	}
	munmap((void *)p, (size_t)sb.st_size);
	printf("ns %lld ops %lld\n", now_ns() - t0, touched);
	close(fd);
	(void)sink;
	return 0;
}

static int cmd_firstbyte(const char *dir, int rounds)
{
	char **names = NULL;
	size_t n = 0;
	char c;

	if (names_load(dir, &names, &n) < 0)
		return die("opendir", dir);
	for (int r = 0; r < rounds; r++) {
		long long t0 = now_ns();

		for (size_t i = 0; i < n; i++) {
			long long t1 = now_ns();
			int fd = open(names[i], O_RDONLY | O_CLOEXEC);

			if (fd < 0)
				return die("open", names[i]);
			if (read(fd, &c, 1) < 0)
				return die("read", names[i]);
			printf("lat %lld\n", now_ns() - t1);
			close(fd);
		}
		printf("ns %lld ops %zu\n", now_ns() - t0, n);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "stat"))
		return cmd_stat(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "readlink"))
		return cmd_readlink(argv[2], atol(argv[3]), atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "read"))
		return cmd_read(argv[2], (size_t)atol(argv[3]));
	if (argc == 6 && !strcmp(argv[1], "mmap"))
		return cmd_mmap(argv[2], argv[3], atol(argv[4]), strtoull(argv[5], NULL, 10));
	if (argc == 4 && !strcmp(argv[1], "firstbyte"))
		return cmd_firstbyte(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: bench_fuse_meta stat DIR ROUNDS | readlink PATH N ROUNDS | "
		"read FILE BS | mmap FILE seq|rand PAGES SEED | firstbyte DIR ROUNDS\n");
	return 2;
}
