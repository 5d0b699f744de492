/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The route table and its matcher. Every route of the API is one row here:
 * methods, path pattern, handler, the least role it needs, and flags; the
 * server, /metrics labels and the OpenAPI test all read this one table.
 * Patterns are literal segments and {name} parameters (one segment each);
 * {path*} takes the rest of the path.
 */
#include <errno.h>
#include <string.h>

#include "api_i.h"

#define R_GET (API_GET | API_HEAD)
#define V "/v1/models/{model}/versions/{version}"

const struct api_route api_routes[] = {
	{ R_GET, "/livez", api_h_livez, API_ROLE_NONE, API_R_OPEN, "liveness" },
	{ R_GET, "/readyz", api_h_readyz, API_ROLE_NONE, API_R_OPEN, "readiness" },
	{ R_GET, "/metrics", api_h_metrics, API_ROLE_READER, API_R_RAW, "Prometheus metrics" },
	{ R_GET, "/openapi.json", api_h_openapi, API_ROLE_NONE, API_R_OPEN | API_R_RAW,
	  "this API's OpenAPI document" },
	{ R_GET, "/v1/models", api_h_models_list, API_ROLE_READER, API_R_CACHE, "list models" },
	{ API_POST, "/v1/models", api_h_model_create, API_ROLE_WRITER, 0, "create a model" },
	{ R_GET, "/v1/models/{model}", api_h_model_get, API_ROLE_READER, API_R_CACHE,
	  "a model, its aliases and a version summary" },
	{ API_DELETE, "/v1/models/{model}", api_h_model_delete, API_ROLE_ADMIN, 0,
	  "delete a model with all its versions ({\"reason\"}; without one: only an empty model)" },
	{ API_PATCH, "/v1/models/{model}", api_h_model_patch, API_ROLE_WRITER, 0,
	  "set a model's description, owner and tags" },
	{ R_GET, "/v1/models/{model}/versions", api_h_versions_list, API_ROLE_READER, 0,
	  "list versions" },
	{ API_POST, "/v1/models/{model}/versions", api_h_version_create, API_ROLE_WRITER, 0,
	  "create a draft version" },
	{ R_GET, V, api_h_version_get, API_ROLE_READER, API_R_CACHE, "one version" },
	{ R_GET, V "/metadata", api_h_metadata_get, API_ROLE_READER, 0, "a version's metadata" },
	{ API_PATCH, V "/metadata", api_h_metadata_patch, API_ROLE_WRITER, 0,
	  "merge-patch a version's metadata" },
	{ R_GET, V "/files/{path*}", api_h_file_get, API_ROLE_READER, API_R_RAW, "download a file" },
	{ API_PUT, V "/files/{path*}", api_h_file_put, API_ROLE_WRITER, API_R_UPLOAD,
	  "upload a file into a draft" },
	{ API_POST, V "/seal", api_h_version_seal, API_ROLE_WRITER, 0, "seal a version" },
	{ API_POST, V "/verify", api_h_version_verify, API_ROLE_READER, 0,
	  "re-hash a sealed version" },
	{ API_POST, V "/archive", api_h_version_archive, API_ROLE_WRITER, 0,
	  "archive a sealed version (hidden from listings, still readable)" },
	{ API_POST, V "/unarchive", api_h_version_unarchive, API_ROLE_WRITER, 0,
	  "unarchive a version" },
	{ API_DELETE, V, api_h_version_delete, API_ROLE_ADMIN, 0,
	  "delete an unaliased version and its bytes ({\"reason\"})" },
	{ R_GET, V "/lineage", api_h_lineage_get, API_ROLE_READER, 0, "a version's lineage" },
	{ R_GET, V "/observations", api_h_observations_list, API_ROLE_READER, 0,
	  "observed production metrics" },
	{ API_POST, V "/observations", api_h_observation_add, API_ROLE_WRITER, 0,
	  "record an observed production metric" },
	{ R_GET, "/v1/models/{model}/aliases", api_h_aliases_list, API_ROLE_READER, 0,
	  "list aliases" },
	{ R_GET, "/v1/models/{model}/aliases/{alias}", api_h_alias_get, API_ROLE_READER, 0,
	  "an alias, now or at a time" },
	{ API_PUT, "/v1/models/{model}/aliases/{alias}", api_h_alias_put, API_ROLE_WRITER, 0,
	  "point an alias at a version" },
	{ API_DELETE, "/v1/models/{model}/aliases/{alias}", api_h_alias_delete, API_ROLE_WRITER,
	  0, "remove an alias" },
	{ API_POST, "/v1/models/{model}/promote", api_h_promote, API_ROLE_ADMIN, 0,
	  "set current" },
	{ API_POST, "/v1/models/{model}/rollback", api_h_rollback, API_ROLE_ADMIN, 0,
	  "current back to its previous version" },
	{ API_PUT, "/v1/models/{model}/canary", api_h_canary_put, API_ROLE_ADMIN, 0,
	  "set the canary and its traffic percent" },
	{ API_POST, "/v1/models/{model}/canary/promote", api_h_canary_promote, API_ROLE_ADMIN, 0,
	  "canary becomes current" },
	{ API_DELETE, "/v1/models/{model}/canary", api_h_canary_delete, API_ROLE_ADMIN, 0,
	  "abort the canary" },
	{ R_GET, "/v1/models/{model}/policy", api_h_policy_get, API_ROLE_READER, 0,
	  "the promotion policy" },
	{ API_PUT, "/v1/models/{model}/policy", api_h_policy_put, API_ROLE_ADMIN, 0,
	  "replace the promotion policy" },
	{ R_GET, "/v1/models/{model}/history", api_h_history, API_ROLE_READER, 0,
	  "the model's event history" },
	{ R_GET, "/v1/models/{model}/diff", api_h_diff, API_ROLE_READER, 0,
	  "diff two versions' metadata" },
	{ R_GET, "/v1/models/{model}/inferenceservice", api_h_inferenceservice, API_ROLE_READER, 0,
	  "the KServe InferenceService for the model" },
	{ R_GET, "/v1/search", api_h_search, API_ROLE_READER, 0,
	  "versions of every model matching a filter" },
	{ R_GET, "/v1/lineage", api_h_lineage_find, API_ROLE_READER, 0,
	  "versions by git commit or training data hash" },
	{ R_GET, "/v1/refusals", api_h_refusals, API_ROLE_READER, 0,
	  "recent refused operations, newest first (what modelfs why shows)" },
	{ R_GET, "/v1/git", api_h_git_get, API_ROLE_READER, 0,
	  "git-tag sync: configuration and queue" },
	{ API_POST, "/v1/gc", api_h_gc, API_ROLE_ADMIN, 0,
	  "apply the models' retention policies (dry_run lists what would go)" },
	/* The web UI (ui.c): static files, no data; the pages ask the API above. */
	{ R_GET, "/", api_h_ui_root, API_ROLE_NONE, API_R_OPEN | API_R_RAW, "redirects to /ui/" },
	{ R_GET, "/ui/", api_h_ui_page, API_ROLE_NONE, API_R_OPEN | API_R_RAW, "the web UI" },
	{ R_GET, "/ui/models/{model}", api_h_ui_page, API_ROLE_NONE, API_R_OPEN | API_R_RAW,
	  "the web UI: a model's page" },
	{ R_GET, "/ui/models/{model}/versions/{version}", api_h_ui_page, API_ROLE_NONE,
	  API_R_OPEN | API_R_RAW, "the web UI: a version's page" },
	{ R_GET, "/ui/assets/{path*}", api_h_ui_asset, API_ROLE_NONE, API_R_OPEN | API_R_RAW,
	  "the web UI's scripts, styles and images" },
	{ R_GET, "/v1/models/{model}/triggers", api_h_triggers_get, API_ROLE_READER, 0,
	  "the model's retraining triggers and their episode" },
	{ API_PUT, "/v1/models/{model}/triggers", api_h_triggers_put, API_ROLE_ADMIN, 0,
	  "replace the model's retraining triggers" },
	{ R_GET, "/v1/outbox", api_h_outbox_get, API_ROLE_READER, 0,
	  "delivery state per subscriber (git tags, GitOps, webhooks)" },
	{ R_GET, "/v1/webhooks", api_h_webhooks_list, API_ROLE_ADMIN, 0, "webhook subscriptions" },
	{ API_POST, "/v1/webhooks", api_h_webhook_create, API_ROLE_ADMIN, 0,
	  "subscribe a URL to events" },
	{ R_GET, "/v1/webhooks/{id}", api_h_webhook_get, API_ROLE_ADMIN, 0,
	  "a webhook subscription, its state and delivery log" },
	{ API_DELETE, "/v1/webhooks/{id}", api_h_webhook_delete, API_ROLE_ADMIN, 0,
	  "delete a webhook subscription" },
};

const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);

/*
 * The query parameters each handler reads, space-separated; a route whose
 * handler is not here takes none. Anything else is refused with a 400 naming
 * it, before the handler runs, so a misspelt filter is never silently
 * dropped. /openapi.json lists the same parameters (a unit test compares).
 */
static const struct {
	api_handler fn;
	const char *names;
} route_query[] = {
	{ api_h_models_list, "limit cursor" },
	{ api_h_versions_list, "state validation_status filter sort archived limit cursor" },
	{ api_h_search, "filter model state validation_status archived sort limit cursor" },
	{ api_h_observations_list, "metric limit" },
	{ api_h_aliases_list, "at" },
	{ api_h_alias_get, "at" },
	{ api_h_alias_delete, "expected_version" },
	{ api_h_canary_delete, "expected_version" },
	{ api_h_history, "kind since until order limit cursor" },
	{ api_h_diff, "from to" },
	{ api_h_inferenceservice, "pvc namespace runtime model_format" },
	{ api_h_lineage_find, "git_commit training_data_hash" },
	{ api_h_git_get, "state limit" },
	{ api_h_refusals, "model uid token limit cursor" },
	{ api_h_outbox_get, "subscriber state limit" },
	{ api_h_webhook_get, "state limit" },
};

const char *api_route_query(const struct api_route *rt)
{
	for (size_t i = 0; i < sizeof(route_query) / sizeof(route_query[0]); i++)
		if (route_query[i].fn == rt->fn)
			return route_query[i].names;
	return "";
}

int api_query_arg(struct api_query *qs, const char *name)
{
	const char *list = api_route_query(qs->rt), *p = list;
	size_t len = name ? strlen(name) : 0;
	unsigned bit = 1;

	if (qs->rc < 0)
		return qs->rc;
	while (*p) {
		size_t n = strcspn(p, " ");

		if (n == len && !memcmp(p, name, n)) {
			if (qs->seen & bit)
				return qs->rc = cm_err_set(-EBADMSG, "query parameter '%s' is given "
							   "more than once", name);
			qs->seen |= bit;
			return 0;
		}
		p += n + (p[n] == ' ');
		bit <<= 1;
	}
	if (!list[0])
		return qs->rc = cm_err_set(-EBADMSG, "unknown query parameter '%.64s': %s takes none",
					   name ? name : "", qs->rt->pattern);
	return qs->rc = cm_err_set(-EBADMSG, "unknown query parameter '%.64s' (%s takes: %s)",
				   name ? name : "", qs->rt->pattern, list);
}

/* Where a {name} parameter goes. */
static const char **param_slot(struct api_match *m, const char *name, size_t len)
{
	static const struct {
		const char *name;
		size_t off;
	} slots[] = {
		{ "model", offsetof(struct api_match, model) },
		{ "version", offsetof(struct api_match, version) },
		{ "alias", offsetof(struct api_match, alias) },
		{ "path", offsetof(struct api_match, path) },
		{ "id", offsetof(struct api_match, id) },
	};

	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		if (strlen(slots[i].name) == len && !memcmp(slots[i].name, name, len))
			return (const char **)((char *)m + slots[i].off);
	return NULL;
}

/*
 * Matches one pattern; parameters are copied into buf (advancing *used).
 * Returns 1 on a match.
 */
static int pattern_match(const char *pat, const char *path, char *buf, size_t bufsz,
			 size_t *used, struct api_match *m)
{
	const char *p = pat, *s = path;

	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return 0;
		p++;
		s++;
		const char *pe = strchr(p, '/');
		const char *se = strchr(s, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t slen = se ? (size_t)(se - s) : strlen(s);

		if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
			int rest = plen >= 3 && p[plen - 2] == '*';
			size_t nlen = plen - 2 - (size_t)rest;
			const char **slot = param_slot(m, p + 1, nlen);

			if (rest)
				slen = strlen(s);
			if (slen == 0 || !slot || *used + slen + 1 > bufsz)
				return 0;
			memcpy(buf + *used, s, slen);
			buf[*used + slen] = '\0';
			*slot = buf + *used;
			*used += slen + 1;
		} else if (plen != slen || memcmp(p, s, plen)) {
			return 0;
		}
		p += plen;
		s += slen;
	}
	return !*p && !*s;
}

int api_route_match(const char *path, unsigned method, char *buf, size_t bufsz,
		    struct api_match *m, unsigned *allow)
{
	unsigned methods = 0;
	int found = -1;

	if (strlen(path) + 1 > bufsz)
		return cm_err_set(-ENAMETOOLONG, "the request path is longer than %zu bytes", bufsz - 1);
	for (size_t i = 0; i < api_routes_count; i++) {
		struct api_match t = { .index = (int)i };
		size_t used = 0;

		if (!pattern_match(api_routes[i].pattern, path, buf, bufsz, &used, &t))
			continue;
		methods |= api_routes[i].methods;
		if (api_routes[i].methods & method) {
			found = (int)i;
			*m = t;
			break;
		}
	}
	if (found >= 0)
		return 0;
	if (allow)
		*allow = methods;
	if (methods)
		return cm_err_set(-EOPNOTSUPP, "%s is not allowed on %s", api_method_name(method), path);
	return cm_err_set(-ENOENT, "no route for %s", path);
}
