/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one mapping from -errno (as the registry and the api return them) to
 * an HTTP status and a stable error code, and the JSON error body
 * {"error": {"code", "message", "details"}} every failure is answered with.
 */
#include <errno.h>
#include <string.h>

#include "api_i.h"

/*
 * Registry conventions behind the choices: EPERM is a policy (gate)
 * refusal, ESTALE a failed compare-and-swap, EROFS a change to something
 * sealed, EINVAL input that is well-formed but not acceptable, EMLINK a
 * version an alias points at (no archive, no delete), ENOLINK an archived
 * version asked to be an alias target. EBADMSG is the api's own "request
 * malformed" (bad JSON, wrong field type, bad query), and ENOKEY a missing or
 * unknown token.
 */
static const struct api_status statuses[] = {
	{ EBADMSG, 400, "bad_request" },
	{ ENOKEY, 401, "unauthorized" },
	{ EACCES, 403, "forbidden" },
	{ ENOENT, 404, "not_found" },
	{ EOPNOTSUPP, 405, "method_not_allowed" },
	{ ETIMEDOUT, 408, "request_timeout" },
	{ EEXIST, 409, "already_exists" },
	{ EPERM, 409, "gate_refused" },
	{ ESTALE, 409, "conflict" },
	{ EROFS, 409, "read_only" },
	{ EBUSY, 409, "busy" },
	{ EMLINK, 409, "aliased" },
	{ ENOLINK, 409, "archived" },
	{ ENOTEMPTY, 409, "not_empty" },
	{ EISDIR, 409, "is_directory" },
	{ ENOTDIR, 409, "not_directory" },
	{ E2BIG, 413, "too_large" },
	{ EFBIG, 413, "too_large" },
	{ ENAMETOOLONG, 414, "too_long" },
	{ EMEDIUMTYPE, 415, "unsupported_media_type" },
	{ ERANGE, 416, "range_not_satisfiable" },
	{ EINVAL, 422, "invalid" },
	{ EBADE, 422, "digest_mismatch" },
	{ EPROTO, 500, "internal" },
	{ EIO, 500, "io_error" },
	{ ENOMEM, 503, "unavailable" },
	{ EAGAIN, 503, "unavailable" },
	{ ENOSPC, 507, "insufficient_storage" },
	{ EDQUOT, 507, "insufficient_storage" },
};

static const struct api_status internal = { 0, 500, "internal" };

const struct api_status *api_error_status(int rc)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].err == -rc)
			return &statuses[i];
	return &internal;
}

int api_error_errno(const char *code)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (!strcmp(statuses[i].code, code))
			return statuses[i].err;
	return EIO;
}

json_t *api_error_body(int rc, const char *message, json_t *details)
{
	const struct api_status *s = api_error_status(rc);
	json_t *e;

	if (!message || !message[0])
		message = strerror(rc < 0 ? -rc : rc);
	e = json_pack("{s:{s:s s:s s:o}}", "error", "code", s->code, "message", message, "details",
		      details ? details : json_null());
	return e;
}
