/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 content digests through OpenSSL's EVP interface. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reg_i.h"

#define DIGEST_CHUNK (1024 * 1024)

static void to_hex(const unsigned char *md, unsigned len, char out[65])
{
	static const char hex[] = "0123456789abcdef";

	for (unsigned i = 0; i < len && i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

int reg_digest_fd(int fd, char out[65], int64_t *size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	int64_t total = 0;
	off_t off = 0;
	int rc = 0;

	ctx = EVP_MD_CTX_new();
	buf = malloc(DIGEST_CHUNK);
	if (!ctx || !buf) {
		rc = cm_err_set(-ENOMEM, "out of memory hashing");
		goto done;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = cm_err_set(-EIO, "SHA-256 is not available from libcrypto");
		goto done;
	}
	for (;;) {
		ssize_t r = pread(fd, buf, DIGEST_CHUNK, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = cm_err_set(-errno, "reading for the digest: %s", strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		off += r;
		total += r;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	to_hex(md, mdlen, out);
	if (size)
		*size = total;
done:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int reg_digest_mem(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return cm_err_set(-EIO, "SHA-256 failed");
	to_hex(md, mdlen, out);
	return 0;
}
