/* SPDX-License-Identifier: Apache-2.0 */
/* The route table and its matcher (api/router.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apifx.h"

static void params(void **state)
{
	char buf[512];
	struct api_match m;
	unsigned allow = 0;

	assert_int_equal(api_route_match("/v1/models/anomaly-detector/versions/v2/files/sub/dir/model.pkl",
					 API_PUT, buf, sizeof(buf), &m, &allow), 0);
	assert_string_equal(api_routes[m.index].pattern,
			    "/v1/models/{model}/versions/{version}/files/{path*}");
	assert_string_equal(m.model, "anomaly-detector");
	assert_string_equal(m.version, "v2");
	assert_string_equal(m.path, "sub/dir/model.pkl");
	assert_null(m.alias);
	assert_int_equal(api_route_match("/v1/models/m/aliases/canary", API_DELETE, buf, sizeof(buf),
					 &m, &allow), 0);
	assert_string_equal(m.alias, "canary");
	assert_ptr_equal(api_routes[m.index].fn, api_h_alias_delete);
	/* Literal routes win over parameters where both could match. */
	assert_int_equal(api_route_match("/v1/models/m/canary/promote", API_POST, buf, sizeof(buf), &m,
					 &allow), 0);
	assert_ptr_equal(api_routes[m.index].fn, api_h_canary_promote);
	/* HEAD goes where GET goes. */
	assert_int_equal(api_route_match("/v1/models/m", API_HEAD, buf, sizeof(buf), &m, &allow), 0);
	assert_ptr_equal(api_routes[m.index].fn, api_h_model_get);
}

static void not_found_and_not_allowed(void **state)
{
	char buf[512];
	struct api_match m;
	unsigned allow = 0;

	assert_int_equal(api_route_match("/v1/models", API_DELETE, buf, sizeof(buf), &m, &allow),
			 -EOPNOTSUPP);
	assert_int_equal(allow, API_GET | API_HEAD | API_POST);
	assert_non_null(strstr(cm_err_msg(), "DELETE"));
	assert_int_equal(api_route_match("/nope", API_GET, buf, sizeof(buf), &m, &allow), -ENOENT);
	assert_int_equal(api_route_match("/v1/models/", API_GET, buf, sizeof(buf), &m, &allow), -ENOENT);
	assert_int_equal(api_route_match("/v1/models//versions", API_GET, buf, sizeof(buf), &m, &allow),
			 -ENOENT);
	assert_int_equal(api_route_match("/v1/models/m/versions/v1/files/", API_GET, buf, sizeof(buf),
					 &m, &allow), -ENOENT);
	assert_int_equal(api_route_match("", API_GET, buf, sizeof(buf), &m, &allow), -ENOENT);
	assert_int_equal(api_route_match("v1/models", API_GET, buf, sizeof(buf), &m, &allow), -ENOENT);
	assert_int_equal(api_route_match("/v1/models/abcdefghijklmnop", API_GET, buf, 16, &m, &allow),
			 -ENAMETOOLONG);
}

/* Every route matches its own pattern with sample values, and only itself for its methods. */
static void every_route_reachable(void **state)
{
	for (size_t i = 0; i < api_routes_count; i++) {
		const char *p = api_routes[i].pattern;
		char path[256] = "", buf[512];
		struct api_match m;
		unsigned allow;
		size_t n = 0;

		while (*p) {
			if (*p == '{') {
				const char *end = strchr(p, '}');

				n += (size_t)snprintf(path + n, sizeof(path) - n, "%s",
						      end[-1] == '*' ? "a/b.pkl" : "x1");
				p = end + 1;
			} else {
				path[n++] = *p++;
				path[n] = '\0';
			}
		}
		for (unsigned bit = API_GET; bit <= API_DELETE; bit <<= 1) {
			if (!(api_routes[i].methods & bit))
				continue;
			assert_int_equal(api_route_match(path, bit, buf, sizeof(buf), &m, &allow), 0);
			if ((size_t)m.index != i)
				fail_msg("%s %s matched %s", api_method_name(bit), path,
					 api_routes[m.index].pattern);
		}
		assert_non_null(api_routes[i].fn);
		assert_non_null(api_routes[i].summary);
	}
}

/* Unknown, repeated and declared query parameters, per route. */
static void query_declared(void **state)
{
	const struct api_route *history = NULL, *livez = NULL;

	(void)state;
	for (size_t i = 0; i < api_routes_count; i++) {
		if (api_routes[i].fn == api_h_history)
			history = &api_routes[i];
		if (api_routes[i].fn == api_h_livez)
			livez = &api_routes[i];
	}
	assert_non_null(history);
	assert_non_null(livez);
	{
		struct api_query qs = { .rt = history };

		assert_int_equal(api_query_arg(&qs, "kind"), 0);
		assert_int_equal(api_query_arg(&qs, "since"), 0);
		assert_int_equal(api_query_arg(&qs, "cursor"), 0);
	}
	{
		struct api_query qs = { .rt = history };

		assert_int_equal(api_query_arg(&qs, "knd"), -EBADMSG);
		assert_non_null(strstr(cm_err_msg(), "unknown query parameter 'knd'"));
		assert_non_null(strstr(cm_err_msg(), "kind since until order limit cursor"));
		/* The first failure stays. */
		assert_int_equal(api_query_arg(&qs, "kind"), -EBADMSG);
	}
	{
		struct api_query qs = { .rt = history };

		assert_int_equal(api_query_arg(&qs, "kind"), 0);
		assert_int_equal(api_query_arg(&qs, "kind"), -EBADMSG);
		assert_non_null(strstr(cm_err_msg(), "more than once"));
	}
	{
		struct api_query qs = { .rt = history };

		assert_int_equal(api_query_arg(&qs, ""), -EBADMSG);
		qs = (struct api_query){ .rt = history };
		assert_int_equal(api_query_arg(&qs, "kin"), -EBADMSG);
		qs = (struct api_query){ .rt = history };
		assert_int_equal(api_query_arg(&qs, "kinds"), -EBADMSG);
	}
	{
		struct api_query qs = { .rt = livez };

		assert_int_equal(api_query_arg(&qs, "x"), -EBADMSG);
		assert_non_null(strstr(cm_err_msg(), "takes none"));
	}
}

/* The names in a space-separated list, sorted into one string. */
static void sorted_names(const char *list, char *out, size_t n)
{
	char copy[256], *v[16], *save = NULL;
	size_t k = 0;

	cm_strlcpy(copy, list, sizeof(copy));
	for (char *t = strtok_r(copy, " ", &save); t && k < 16; t = strtok_r(NULL, " ", &save))
		v[k++] = t;
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
			char *x = v[j];

			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	out[0] = '\0';
	for (size_t i = 0; i < k; i++) {
		strncat(out, v[i], n - strlen(out) - 1);
		if (i + 1 < k)
			strncat(out, " ", n - strlen(out) - 1);
	}
}

/* Every route's query parameters are the ones /openapi.json lists for it. */
static void query_matches_openapi(void **state)
{
	json_t *doc = json_loadb((const char *)api_openapi, api_openapi_len, 0, NULL);
	json_t *comp;

	(void)state;
	assert_non_null(doc);
	comp = json_object_get(json_object_get(doc, "components"), "parameters");
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct api_route *rt = &api_routes[i];
		char path[256], want[256], got[256] = "";
		const char *star = strstr(rt->pattern, "{path*}");
		json_t *item, *op, *p;
		size_t k;

		cm_strlcpy(path, rt->pattern, sizeof(path));
		if (star)
			strcpy(path + (star - rt->pattern), "{path}");
		item = json_object_get(json_object_get(doc, "paths"), path);
		if (!item)
			fail_msg("%s is not in openapi.json", path);
		for (unsigned bit = API_GET; bit <= API_DELETE; bit <<= 1) {
			char m[8], list[256] = "";

			if (!(rt->methods & bit) || bit == API_HEAD)
				continue;
			for (k = 0; api_method_name(bit)[k]; k++)
				m[k] = (char)(api_method_name(bit)[k] - 'A' + 'a');
			m[k] = '\0';
			op = json_object_get(item, m);
			if (!op)
				fail_msg("%s %s is not in openapi.json", m, path);
			json_array_foreach(json_object_get(op, "parameters"), k, p) {
				const char *ref = json_string_value(json_object_get(p, "$ref"));

				if (ref && !strncmp(ref, "#/components/parameters/", 24))
					p = json_object_get(comp, ref + 24);
				if (!strcmp(json_string_value(json_object_get(p, "in")), "query")) {
					if (list[0])
						strcat(list, " ");
					strcat(list, json_string_value(json_object_get(p, "name")));
				}
			}
			sorted_names(list, got, sizeof(got));
			sorted_names(api_route_query(rt), want, sizeof(want));
			if (strcmp(got, want))
				fail_msg("%s %s: openapi.json lists query parameters '%s', the route "
					 "table '%s'", m, path, got, want);
		}
	}
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(params),
		cmocka_unit_test(not_found_and_not_allowed),
		cmocka_unit_test(every_route_reachable),
		cmocka_unit_test(query_declared),
		cmocka_unit_test(query_matches_openapi),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
