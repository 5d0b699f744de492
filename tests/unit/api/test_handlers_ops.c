/* SPDX-License-Identifier: Apache-2.0 */
/* Health, metrics, the OpenAPI document and InferenceService rendering (api/handlers_ops.c). */
#include <errno.h>
#include <string.h>

#include "apifx.h"

static void health_and_openapi(void **state)
{
	struct fx *f = *state;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;
	json_t *doc;

	apifx_req(&q, &io, f->st, NULL);
	assert_int_equal(apifx_call(api_h_livez, &q, &r), 0);
	assert_string_equal(apifx_str(&r, "status", NULL), "ok");
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	assert_int_equal(apifx_call(api_h_readyz, &q, &r), 0);
	assert_string_equal(apifx_str(&r, "status", NULL), "ready");
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	assert_int_equal(apifx_call(api_h_openapi, &q, &r), 0);
	assert_int_equal(r.text_len, api_openapi_len);
	doc = json_loadb(r.ctext, r.text_len, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
	/* Every route's path is in the document. */
	for (size_t i = 0; i < api_routes_count; i++) {
		char path[256];
		const char *star = strstr(api_routes[i].pattern, "{path*}");

		cm_strlcpy(path, api_routes[i].pattern, sizeof(path));
		if (star)
			strcpy(path + (star - api_routes[i].pattern), "{path}");
		if (!json_object_get(json_object_get(doc, "paths"), path))
			fail_msg("openapi.json has no path %s", path);
	}
	json_decref(doc);
	api_resp_clear(&r);
}

/* The InferenceService is answered as the registry's rendered text: parse it for the checks. */
static void text_to_json(struct api_resp *r)
{
	assert_non_null(r->text);
	assert_int_equal(r->text[r->text_len - 1], '\n');
	r->json = json_loadb(r->text, r->text_len, 0, NULL);
	assert_non_null(r->json);
}

static void inferenceservice(void **state)
{
	struct fx *f = *state;
	struct api_config cfg;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;
	json_t *pred;

	api_config_default(&cfg);
	cfg.namespace_ = "ml";
	fx_version(f, "m", "v1", "model.joblib", "1", NULL);
	fx_pass(f, "m", "v1");
	fx_version(f, "m", "v2", "model.pt", "2", "extra/notes.txt", "n", NULL);
	fx_pass(f, "m", "v2");
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	assert_int_equal(apifx_call(api_h_inferenceservice, &q, &r), -ENOENT);
	api_resp_clear(&r);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.cfg = &cfg;
	assert_int_equal(apifx_call(api_h_inferenceservice, &q, &r), 0);
	text_to_json(&r);
	pred = json_object_get(json_object_get(r.json, "spec"), "predictor");
	assert_string_equal(json_string_value(json_object_get(json_object_get(pred, "model"), "storageUri")),
			    "pvc://model-storage-pvc/m/v1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(pred, "model"), "modelFormat"), "name")),
			    "sklearn");
	assert_null(json_object_get(pred, "canaryTrafficPercent"));
	assert_string_equal(apifx_str(&r, "metadata", "namespace"), "ml");
	api_resp_clear(&r);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "canary", "v2",
				       &(struct reg_alias_opts){ .percent = 30 }, NULL), 0);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "pvc", "models");
	apifx_arg(&io, "runtime", "kserve-torchserve");
	assert_int_equal(apifx_call(api_h_inferenceservice, &q, &r), 0);
	text_to_json(&r);
	pred = json_object_get(json_object_get(r.json, "spec"), "predictor");
	assert_int_equal(json_integer_value(json_object_get(pred, "canaryTrafficPercent")), 30);
	assert_string_equal(json_string_value(json_object_get(json_object_get(pred, "model"), "storageUri")),
			    "pvc://models/m/v2");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(pred, "model"), "modelFormat"), "name")),
			    "pytorch");
	assert_string_equal(json_string_value(json_object_get(json_object_get(pred, "model"), "runtime")),
			    "kserve-torchserve");
	assert_null(json_object_get(json_object_get(r.json, "metadata"), "namespace"));
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "namespace", "Not/A/Name");
	assert_int_equal(apifx_call(api_h_inferenceservice, &q, &r), -EBADMSG);
	api_resp_clear(&r);
}

static void git_sync(void **state)
{
	struct fx *f = *state;
	struct reg_git_config gc = { .repo = "/nonexistent/modelfs-git" };
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;
	json_t *items;

	apifx_req(&q, &io, f->st, NULL);
	assert_int_equal(apifx_call(api_h_git_get, &q, &r), 0);
	assert_true(json_is_false(json_object_get(r.json, "configured")));
	assert_true(json_is_null(json_object_get(r.json, "config")));
	api_resp_clear(&r);
	/* Configured, one version sealed, no repository: one item waits. */
	assert_int_equal(reg_git_configure(f->st, &fx_actor, &gc), 0);
	fx_version(f, "m", "v1", "model.pkl", "1", NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	apifx_req(&q, &io, f->st, NULL);
	assert_int_equal(apifx_call(api_h_git_get, &q, &r), 0);
	assert_true(json_is_true(json_object_get(r.json, "configured")));
	assert_string_equal(apifx_str(&r, "config", "repo"), "/nonexistent/modelfs-git");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "queue"),
							    "pending")), 1);
	items = json_object_get(r.json, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "tag")),
			    "model-m-v1");
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	apifx_arg(&io, "state", "done");
	assert_int_equal(apifx_call(api_h_git_get, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "items")), 0);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	apifx_arg(&io, "state", "bogus");
	assert_int_equal(apifx_call(api_h_git_get, &q, &r), -EBADMSG);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	apifx_arg(&io, "limit", "0");
	assert_int_not_equal(apifx_call(api_h_git_get, &q, &r), 0);
	api_resp_clear(&r);
}

static void metrics(void **state)
{
	struct fx *f = *state;
	struct api_server *s = NULL;
	struct api_config cfg;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;

	api_config_default(&cfg);
	cfg.listen = "127.0.0.1:0";
	assert_int_equal(api_server_new(f->st, &cfg, &s), 0);
	fx_version(f, "m", "v1", "model.pkl", "1", NULL);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	apifx_req(&q, &io, f->st, NULL);
	q.srv = s;
	assert_int_equal(apifx_call(api_h_metrics, &q, &r), 0);
	assert_non_null(strstr(r.text, "modelfs_promotions_total{model=\"m\"} 1\n"));
	assert_non_null(strstr(r.text, "modelfs_alias_info{model=\"m\",alias=\"current\",version=\"v1\"} 1\n"));
	assert_null(strstr(r.text, "modelfs_fuse_operations_total"));
	api_resp_clear(&r);
	/* Without a change the store's share is not rebuilt; after one it is. */
	assert_int_equal(reg_alias_rollback(f->st, &fx_actor, "m", "current", NULL, NULL), -ENOENT);
	fx_version(f, "m", "v2", "model.pkl", "2", NULL);
	fx_pass(f, "m", "v2");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v2", NULL, NULL), 0);
	apifx_req(&q, &io, f->st, NULL);
	q.srv = s;
	assert_int_equal(apifx_call(api_h_metrics, &q, &r), 0);
	assert_non_null(strstr(r.text, "modelfs_promotions_total{model=\"m\"} 1\n"));
	api_resp_clear(&r);
	api_on_change(s, NULL);
	apifx_req(&q, &io, f->st, NULL);
	q.srv = s;
	assert_int_equal(apifx_call(api_h_metrics, &q, &r), 0);
	assert_non_null(strstr(r.text, "modelfs_promotions_total{model=\"m\"} 2\n"));
	api_resp_clear(&r);
	api_server_free(s);
}

static void fs_stats(void *ctx, struct api_fs_stats *out)
{
	out->ops = 7;
	out->bytes_read = 4096;
}

static void metrics_fuse(void **state)
{
	struct fx *f = *state;
	struct api_server *s = NULL;
	struct api_config cfg;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;

	api_config_default(&cfg);
	cfg.listen = "127.0.0.1:0";
	cfg.fs_stats = fs_stats;
	assert_int_equal(api_server_new(f->st, &cfg, &s), 0);
	apifx_req(&q, &io, f->st, NULL);
	q.srv = s;
	assert_int_equal(apifx_call(api_h_metrics, &q, &r), 0);
	assert_non_null(strstr(r.text, "modelfs_fuse_operations_total 7\n"));
	assert_non_null(strstr(r.text, "modelfs_fuse_read_bytes_total 4096\n"));
	api_resp_clear(&r);
	api_server_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(health_and_openapi, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(inferenceservice, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(git_sync, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(metrics, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(metrics_fuse, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
