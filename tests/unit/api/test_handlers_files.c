/* SPDX-License-Identifier: Apache-2.0 */
/* Downloads and streamed uploads (api/handlers_files.c), without HTTP. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apifx.h"

/* SHA-256 of "hello world". */
#define HELLO_SHA "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"

static int get(struct fx *f, const char *path, const char *range, const char *inm,
	       struct api_resp *r)
{
	struct api_req q;
	struct apifx_io io;

	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v1";
	q.path = path;
	if (range)
		apifx_header(&io, "Range", range);
	if (inm)
		apifx_header(&io, "If-None-Match", inm);
	return apifx_call(api_h_file_get, &q, r);
}

static void download(void **state)
{
	struct fx *f = *state;
	struct api_resp r;
	char buf[32] = "";

	fx_version(f, "m", "v1", "model.pkl", "hello world", NULL);
	assert_int_equal(get(f, "model.pkl", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(r.fd >= 0);
	assert_int_equal(r.fd_len, 11);
	assert_null(apifx_header_value(&r, "ETag"));
	api_resp_clear(&r);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	assert_int_equal(get(f, "model.pkl", "bytes=6-", NULL, &r), 0);
	assert_int_equal(r.status, 206);
	assert_int_equal(r.fd_off, 6);
	assert_int_equal(r.fd_len, 5);
	assert_int_equal(pread(r.fd, buf, r.fd_len, (off_t)r.fd_off), 5);
	assert_string_equal(buf, "world");
	assert_string_equal(apifx_header_value(&r, "Content-Range"), "bytes 6-10/11");
	assert_string_equal(apifx_header_value(&r, "ETag"), "\"" HELLO_SHA "\"");
	api_resp_clear(&r);
	assert_int_equal(get(f, "model.pkl", NULL, "\"" HELLO_SHA "\"", &r), 0);
	assert_int_equal(r.status, 304);
	assert_int_equal(r.fd, -1);
	api_resp_clear(&r);
	assert_int_equal(get(f, "model.pkl", "bytes=11-", NULL, &r), -ERANGE);
	assert_int_equal(r.status, 416);
	assert_string_equal(apifx_header_value(&r, "Content-Range"), "bytes */11");
	api_resp_clear(&r);
	assert_int_equal(get(f, "nope", NULL, NULL, &r), -ENOENT);
	api_resp_clear(&r);
}

static int upload(struct fx *f, const char *version, const char *path, const char *data,
		  const char *xsum, struct api_config *cfg, struct api_resp *r)
{
	struct api_upload *u = NULL;
	struct api_req q;
	struct apifx_io io;
	int rc;

	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = version;
	q.path = path;
	q.cfg = cfg;
	if (xsum)
		apifx_header(&io, "X-Checksum-Sha256", xsum);
	api_resp_init(r);
	rc = api_upload_begin(&q, &u);
	/* Fed in two pieces, as the server does as data arrives. */
	if (rc == 0)
		rc = api_upload_feed(u, data, strlen(data) / 2);
	if (rc == 0)
		rc = api_upload_feed(u, data + strlen(data) / 2, strlen(data) - strlen(data) / 2);
	if (rc == 0)
		return api_upload_finish(u, &q, r);
	api_upload_abort(u);
	return rc;
}

static void uploads(void **state)
{
	struct fx *f = *state;
	struct api_config cfg;
	struct api_resp r;
	char p[4200];
	struct stat sb;

	api_config_default(&cfg);
	fx_version(f, "m", "v1", NULL);
	assert_int_equal(upload(f, "v1", "sub/model.pkl", "hello world", HELLO_SHA, &cfg, &r), 0);
	assert_int_equal(r.status, 201);
	assert_string_equal(apifx_str(&r, "sha256", NULL), HELLO_SHA);
	assert_int_equal(json_integer_value(json_object_get(r.json, "size")), 11);
	assert_string_equal(fx_read(f->dir, "m/v1/sub/model.pkl"), "hello world");
	api_resp_clear(&r);
	/* A wrong checksum discards the upload and the directory it made. */
	assert_int_equal(upload(f, "v1", "new/x.pkl", "hello world!", HELLO_SHA, &cfg, &r), -EBADE);
	snprintf(p, sizeof(p), "%s/m/v1/new", f->dir);
	assert_int_equal(stat(p, &sb), -1);
	assert_int_equal(upload(f, "v1", "x.pkl", "x", "nothex", &cfg, &r), -EBADMSG);
	/* Limits. */
	cfg.max_upload = 5;
	assert_int_equal(upload(f, "v1", "big.pkl", "hello world", NULL, &cfg, &r), -EFBIG);
	snprintf(p, sizeof(p), "%s/m/v1/big.pkl", f->dir);
	assert_int_equal(stat(p, &sb), -1);
	cfg.max_upload = 0;
	/* Sealed versions refuse. */
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	assert_int_equal(upload(f, "v1", "late.pkl", "x", NULL, &cfg, &r), -EROFS);
	assert_int_equal(upload(f, "v9", "x.pkl", "x", NULL, &cfg, &r), -ENOENT);
	/* The route's handler never takes a body: uploads are streamed. */
	{
		struct api_req q;
		struct apifx_io io;

		apifx_req(&q, &io, f->st, NULL);
		assert_int_equal(apifx_call(api_h_file_put, &q, &r), -EIO);
		api_resp_clear(&r);
	}
	api_upload_abort(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(download, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(uploads, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
