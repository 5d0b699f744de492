/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 digests of memory and of files, against published test vectors. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_448 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define SHA_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static void mem_vectors(void **state)
{
	char out[65];
	char *a;

	(void)state;
	assert_int_equal(reg_digest_mem("", 0, out), 0);
	assert_string_equal(out, SHA_EMPTY);
	assert_int_equal(reg_digest_mem("abc", 3, out), 0);
	assert_string_equal(out, SHA_ABC);
	assert_int_equal(reg_digest_mem("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out), 0);
	assert_string_equal(out, SHA_448);
	a = malloc(1000000);
	assert_non_null(a);
	memset(a, 'a', 1000000);
	assert_int_equal(reg_digest_mem(a, 1000000, out), 0);
	assert_string_equal(out, SHA_MILLION_A);
	free(a);
	/* Only len bytes count. */
	assert_int_equal(reg_digest_mem("abcdef", 3, out), 0);
	assert_string_equal(out, SHA_ABC);
}

/* A temp file in the fixture directory holding `len` bytes of data. */
static int temp_file(struct fx *f, const char *name, const void *data, size_t len)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static void fd_small_and_empty(void **state)
{
	struct fx *f = *state;
	char out[65];
	int64_t size = -1;
	int fd;

	fd = temp_file(f, "empty", "", 0);
	assert_int_equal(reg_digest_fd(fd, out, &size), 0);
	assert_string_equal(out, SHA_EMPTY);
	assert_int_equal(size, 0);
	close(fd);

	fd = temp_file(f, "abc", "abc", 3);
	/* The file offset is at the end after the write: hashing starts at 0 anyway. */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
	assert_int_equal(reg_digest_fd(fd, out, &size), 0);
	assert_string_equal(out, SHA_ABC);
	assert_int_equal(size, 3);
	/* size may be NULL. */
	memset(out, 0, sizeof(out));
	assert_int_equal(reg_digest_fd(fd, out, NULL), 0);
	assert_string_equal(out, SHA_ABC);
	close(fd);
}

/* Sizes around and past the 1 MiB read chunk. */
static void fd_large_matches_mem(void **state)
{
	static const size_t sizes[] = {
		1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 12345,
	};
	struct fx *f = *state;
	size_t max = sizes[sizeof(sizes) / sizeof(sizes[0]) - 1];
	unsigned char *data = malloc(max);
	uint32_t x = 2463534242u;

	assert_non_null(data);
	for (size_t i = 0; i < max; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (unsigned char)x;
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char want[65], got[65], name[32];
		int64_t size = -1;
		int fd;

		snprintf(name, sizeof(name), "big%zu", i);
		fd = temp_file(f, name, data, sizes[i]);
		assert_int_equal(reg_digest_mem(data, sizes[i], want), 0);
		assert_int_equal(reg_digest_fd(fd, got, &size), 0);
		assert_string_equal(got, want);
		assert_int_equal(size, (int64_t)sizes[i]);
		close(fd);
	}
	/* A one-byte change in the second chunk changes the digest. */
	{
		char a[65], b[65];
		int64_t size;
		int fd;

		fd = temp_file(f, "flip", data, max);
		assert_int_equal(reg_digest_fd(fd, a, &size), 0);
		data[1024 * 1024 + 7] ^= 1;
		assert_int_equal(pwrite(fd, data + 1024 * 1024 + 7, 1, 1024 * 1024 + 7), 1);
		assert_int_equal(reg_digest_fd(fd, b, &size), 0);
		assert_string_not_equal(a, b);
		assert_int_equal(reg_digest_mem(data, max, a), 0);
		assert_string_equal(a, b);
		close(fd);
	}
	free(data);
}

static void bad_fd(void **state)
{
	struct fx *f = *state;
	char out[65];
	int64_t size = 77;
	int fd;

	memset(out, 'x', sizeof(out));
	cm_err_clear();
	assert_int_equal(reg_digest_fd(-1, out, &size), -EBADF);
	assert_non_null(strstr(cm_err_msg(), "digest"));
	/* Nothing written on failure. */
	assert_int_equal(out[0], 'x');
	assert_int_equal(out[64], 'x');
	assert_int_equal(size, 77);

	/* A closed fd, and a write-only one, are just as bad. */
	fd = temp_file(f, "wo", "abc", 3);
	close(fd);
	assert_int_equal(reg_digest_fd(fd, out, &size), -EBADF);
	{
		char path[4200];

		snprintf(path, sizeof(path), "%s/wo", f->dir);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(reg_digest_fd(fd, out, &size), -EBADF);
		close(fd);
	}
	/* A directory cannot be read as content. */
	fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(reg_digest_fd(fd, out, &size), -EISDIR);
	close(fd);
	assert_int_equal(size, 77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mem_vectors),
		cmocka_unit_test_setup_teardown(fd_small_and_empty, fx_setup_empty, fx_teardown),
		cmocka_unit_test_setup_teardown(fd_large_matches_mem, fx_setup_empty, fx_teardown),
		cmocka_unit_test_setup_teardown(bad_fd, fx_setup_empty, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
