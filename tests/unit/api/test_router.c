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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(params),
		cmocka_unit_test(not_found_and_not_allowed),
		cmocka_unit_test(every_route_reachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
