/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File transfer. Downloads answer with the file descriptor itself (the
 * server sends it with sendfile), with the recorded SHA-256 as a strong
 * ETag for sealed versions, If-None-Match and single-range Range. Uploads
 * stream into a draft through reg_upload (an unnamed temporary file moved
 * into place at the end) while SHA-256 is computed; a checksum header, when
 * given, must match or the upload is discarded. Nothing is held in memory.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_i.h"

int api_h_file_get(struct api_req *q, struct api_resp *r)
{
	struct reg_file info;
	char etag[72] = "";
	uint64_t off = 0, len;
	int fd = -1;
	int rc;

	rc = reg_authz_check(q->st, &q->who, REG_AUTHZ_FILE_READ,
			     &(struct reg_authz_target){ .model = q->model, .version = q->version,
							 .path = q->path });
	if (rc == 0)
		rc = reg_version_file_open(q->st, q->model, q->version, q->path, &fd, &info);
	if (rc < 0)
		return rc;
	len = (uint64_t)info.size;
	if (info.sha256[0]) {
		snprintf(etag, sizeof(etag), "\"%s\"", info.sha256);
		api_resp_header(r, "ETag", "%s", etag);
		api_resp_header(r, "X-Checksum-Sha256", "%s", info.sha256);
		/* Sealed content never changes: caches may keep it. */
		api_resp_header(r, "Cache-Control", "public, max-age=31536000, immutable");
	}
	if (etag[0] && api_etag_match(api_header(q, "If-None-Match"), etag)) {
		close(fd);
		r->status = 304;
		return 0;
	}
	api_resp_header(r, "Accept-Ranges", "bytes");
	{
		const char *if_range = api_header(q, "If-Range");
		int use_range = !if_range || (etag[0] && !strcmp(if_range, etag));

		rc = use_range ? api_range_parse(api_header(q, "Range"), len, &off, &len) : 1;
	}
	if (rc == -ERANGE) {
		close(fd);
		api_resp_header(r, "Content-Range", "bytes */%llu", (unsigned long long)info.size);
		return cm_err_set(-ERANGE, "the requested range is outside the file's %lld bytes",
				  (long long)info.size);
	}
	r->status = 200;
	if (rc == 0) {
		r->status = 206;
		api_resp_header(r, "Content-Range", "bytes %llu-%llu/%llu", (unsigned long long)off,
				(unsigned long long)(off + len - 1), (unsigned long long)info.size);
	}
	r->fd = fd;
	r->fd_off = off;
	r->fd_len = len;
	r->ctype = "application/octet-stream";
	return 0;
}

/* The route's handler is never called for uploads: the server streams them. */
int api_h_file_put(struct api_req *q, struct api_resp *r)
{
	return cm_err_set(-EIO, "uploads are streamed, not handled as a body");
}

struct api_upload {
	struct reg_upload *up;
	EVP_MD_CTX *md;
	char expect[65];   /* "" when the client sent no checksum */
	uint64_t max;      /* 0: no limit */
};

int api_upload_begin(struct api_req *q, struct api_upload **out)
{
	struct api_upload *u = calloc(1, sizeof(*u));
	const char *cl = api_header(q, "Content-Length");
	int rc;

	if (!u)
		return cm_err_set(-ENOMEM, "out of memory");
	u->max = q->cfg ? q->cfg->max_upload : 0;
	rc = api_digest_expected(api_header(q, "Digest"), api_header(q, "Content-Digest"),
				 api_header(q, "X-Checksum-Sha256"), u->expect);
	if (rc == 0)
		u->expect[0] = '\0';
	if (rc >= 0 && u->max && cl && strtoull(cl, NULL, 10) > u->max)
		rc = cm_err_set(-EFBIG, "the upload is %s bytes, more than the limit of %llu", cl,
				(unsigned long long)u->max);
	if (rc >= 0) {
		u->md = EVP_MD_CTX_new();
		if (!u->md || !EVP_DigestInit_ex(u->md, EVP_sha256(), NULL))
			rc = cm_err_set(-ENOMEM, "cannot start SHA-256");
	}
	if (rc >= 0)
		rc = reg_upload_begin(q->st, q->model, q->version, q->path, &u->up);
	if (rc < 0) {
		api_upload_abort(u);
		return rc;
	}
	*out = u;
	return 0;
}

int api_upload_feed(struct api_upload *u, const void *data, size_t len)
{
	if (u->max && (uint64_t)reg_upload_size(u->up) + len > u->max)
		return cm_err_set(-EFBIG, "the upload is larger than the limit of %llu bytes",
				  (unsigned long long)u->max);
	if (!EVP_DigestUpdate(u->md, data, len))
		return cm_err_set(-EIO, "SHA-256 failed");
	return reg_upload_write(u->up, data, len);
}

int api_upload_finish(struct api_upload *u, struct api_req *q, struct api_resp *r)
{
	unsigned char d[32];
	unsigned int n = 0;
	char hex[65];
	int64_t size = reg_upload_size(u->up);
	int rc = 0;

	if (!EVP_DigestFinal_ex(u->md, d, &n) || n != 32)
		rc = cm_err_set(-EIO, "SHA-256 failed");
	for (int i = 0; rc == 0 && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	if (rc == 0 && u->expect[0] && strcmp(u->expect, hex))
		rc = cm_err_set(-EBADE, "the upload's SHA-256 is %s but the request said %s; the "
				"upload was discarded", hex, u->expect);
	if (rc == 0)
		rc = reg_upload_commit(u->up);
	if (rc == 0)
		u->up = NULL; /* commit freed it */
	api_upload_abort(u);
	if (rc < 0)
		return rc;
	api_resp_header(r, "Location", "/v1/models/%s/versions/%s/files/%s", q->model, q->version,
			q->path);
	return api_resp_json(r, 201, json_pack("{s:s s:s s:s s:I s:s}", "model", q->model, "version",
					       q->version, "path", q->path, "size", (json_int_t)size,
					       "sha256", hex));
}

void api_upload_abort(struct api_upload *u)
{
	if (!u)
		return;
	reg_upload_abort(u->up);
	EVP_MD_CTX_free(u->md);
	free(u);
}
