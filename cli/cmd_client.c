/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client commands (modelfs models, show, promote, ...): each is one row
 * of the command table below, which drives dispatch, argument counts, the
 * options a command takes and --help. Every command makes its REST calls
 * through client.c and prints either aligned tables (the default) or, with
 * --json, the API's JSON. Exit statuses are in client.h.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "reg_json.h"

#define TOKEN_FILE_MAX 4096
#define POLICY_MAX (1024 * 1024)
#define PAGE 1000
#define SHOW_VERSIONS_S "5"
#define SHOW_EVENTS_S "5"

struct client_cfg {
	const char *url;
	const char *token_file;
	long long timeout;
	int json;
	int help;
	const char *state;
	long long limit;
	const char *reason;
	long long percent;
	const char *since;
	const char *kind;
	int dry_run;
	const char *filter;
	const char *sort;
	int reverse;
	const char *description;
	const char *owner;
	const char *tag;   /* the last --tag; every one is read from the arguments */
	const char *untag; /* the same for --untag */
	const char *model;
};

/* Options a command may take beyond the common ones (bits of client_cmd.opts). */
enum { O_STATE = 1, O_LIMIT = 2, O_REASON = 4, O_PERCENT = 8, O_SINCE = 16, O_KIND = 32,
       O_DRY_RUN = 64, O_FILTER = 128, O_SORT = 256, O_REVERSE = 512, O_DESCRIPTION = 1024,
       O_OWNER = 2048, O_TAG = 4096, O_UNTAG = 8192, O_MODEL = 16384 };
#define N_COMMON 5

#define OPT(name, env, type, field, def, min, max, metavar, help) \
	{ name, env, type, offsetof(struct client_cfg, field), def, min, max, metavar, help }

static const struct cm_opt client_opts[] = {
	/* the common ones, first N_COMMON */
	OPT("url", "MODELFS_URL", CM_OPT_STRING, url, "http://127.0.0.1:8080", 0, 0, "URL",
	    "the modelfs REST API"),
	OPT("token-file", "MODELFS_TOKEN_FILE", CM_OPT_STRING, token_file, NULL, 0, 0, "FILE",
	    "a file holding the bearer token (one line); $MODELFS_TOKEN holds the token itself"),
	OPT("timeout", "MODELFS_TIMEOUT", CM_OPT_INT, timeout, "30", 1, 3600, "SECONDS",
	    "give up on a call after this long (exit 5)"),
	OPT("json", "MODELFS_JSON", CM_OPT_BOOL, json, "false", 0, 0, NULL,
	    "print the API's JSON instead of tables"),
	OPT("help", NULL, CM_OPT_BOOL, help, "false", 0, 0, NULL, "print this help"),
	/* in the order of the O_* bits */
	OPT("state", NULL, CM_OPT_STRING, state, NULL, 0, 0, "STATE", "draft, sealed or archived"),
	OPT("limit", NULL, CM_OPT_INT, limit, NULL, 1, 1000, "N", "at most N entries (1..1000)"),
	OPT("reason", NULL, CM_OPT_STRING, reason, NULL, 0, 0, "TEXT", "why, kept in the event"),
	OPT("percent", NULL, CM_OPT_INT, percent, NULL, 0, 100, "N", "traffic percent of the canary"),
	OPT("since", NULL, CM_OPT_STRING, since, NULL, 0, 0, "TIME",
	    "events at or after this RFC 3339 time"),
	OPT("kind", NULL, CM_OPT_STRING, kind, NULL, 0, 0, "KIND",
	    "events whose kind starts with KIND (alias., version.seal)"),
	OPT("dry-run", NULL, CM_OPT_BOOL, dry_run, "false", 0, 0, NULL,
	    "only list what would go, and why"),
	OPT("filter", NULL, CM_OPT_STRING, filter, NULL, 0, 0, "EXPR",
	    "only versions matching EXPR (performance_metrics.accuracy >= 0.9 and tags.team = \"sre\")"),
	OPT("sort", NULL, CM_OPT_STRING, sort, NULL, 0, 0, "FIELD",
	    "order by a field or metadata path, '-' first for descending"),
	OPT("reverse", NULL, CM_OPT_BOOL, reverse, "false", 0, 0, NULL, "newest first"),
	OPT("description", NULL, CM_OPT_STRING, description, NULL, 0, 0, "TEXT",
	    "set the description (\"\" removes it)"),
	OPT("owner", NULL, CM_OPT_STRING, owner, NULL, 0, 0, "OWNER", "set the owner (\"\" removes it)"),
	OPT("tag", NULL, CM_OPT_STRING, tag, NULL, 0, 0, "KEY=VALUE", "set a tag (repeatable)"),
	OPT("untag", NULL, CM_OPT_STRING, untag, NULL, 0, 0, "KEY", "remove a tag (repeatable)"),
	OPT("model", NULL, CM_OPT_STRING, model, NULL, 0, 0, "MODEL",
	    "only this model (gc), only this model's versions (search)"),
};
#define N_OPTS (sizeof(client_opts) / sizeof(client_opts[0]))

struct client_ctx {
	struct client_cfg cfg;
	struct cli_conn *conn;
	char **optv; /* the options as given (for repeatable ones) */
	int optc;
	char **pos; /* positional arguments after the command (and its subcommand) */
	int npos;
};

struct client_cmd {
	const char *name;
	const char *sub; /* "promote" for "canary promote", or NULL */
	int nmin, nmax;  /* positional arguments */
	unsigned opts;
	int (*run)(struct client_ctx *x);
	const char *args;
	const char *help;
};

/* ---- small helpers ---- */

/* Prints a JSON value to stdout, indented, or the body of an empty answer as nothing. */
static void json_print(const json_t *v)
{
	if (!v)
		return;
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY | reg_json_real_flags(v));
	fputc('\n', stdout);
}

static int path_add(struct cm_buf *b, const char *literal, const char *segment)
{
	if (cm_buf_printf(b, "%s", literal) < 0)
		return cm_err_set(-ENOMEM, "out of memory");
	return segment ? cli_buf_escape(b, segment) : 0;
}

/* "/v1/models/<model><suffix>", the model escaped; -ENOMEM with detail. */
static int model_path(struct cm_buf *b, const char *model, const char *suffix)
{
	int rc = path_add(b, "/v1/models/", model);

	return rc < 0 ? rc : path_add(b, suffix, NULL);
}

/* "&key=value" (or "?" first) when value is set. */
static int query_add(struct cm_buf *b, const char *key, const char *value)
{
	if (!value)
		return 0;
	if (cm_buf_printf(b, "%s%s=", strchr(b->data, '?') ? "&" : "?", key) < 0)
		return cm_err_set(-ENOMEM, "out of memory");
	return cli_buf_escape(b, value);
}

/*
 * One call; on an error answer prints the server's message and returns the
 * exit status; on a transport failure prints it and returns CLI_C_SERVER.
 * 0 with *a filled on a 2xx.
 */
static int call(struct client_ctx *x, const char *method, const char *path, const json_t *body,
		struct cli_answer *a)
{
	char msg[1024];
	int rc = cli_conn_call(x->conn, method, path, body, a);

	if (rc < 0) {
		fprintf(stderr, "modelfs: %s\n", cli_esc(msg, sizeof(msg), cm_err_describe(rc)));
		return CLI_C_SERVER;
	}
	if (a->status < 200 || a->status >= 300) {
		rc = cli_answer_fail(a, stderr);
		cli_answer_clear(a);
		return rc ? rc : CLI_C_SERVER;
	}
	return CLI_C_OK;
}

/* GET every page of a list (next_cursor) into one array under `key`. */
static int get_all(struct client_ctx *x, const char *path, const char *key, json_t **out)
{
	json_t *all = json_array();
	char *cursor = NULL;
	int rc = CLI_C_OK;

	if (!all)
		return CLI_C_SERVER;
	for (;;) {
		struct cm_buf p = { 0 };
		struct cli_answer a = { 0 };
		char lim[16];
		const char *next;

		snprintf(lim, sizeof(lim), "%d", PAGE);
		if (path_add(&p, path, NULL) < 0 || query_add(&p, "limit", lim) < 0 ||
		    query_add(&p, "cursor", cursor) < 0) {
			cm_buf_free(&p);
			rc = CLI_C_SERVER;
			break;
		}
		rc = call(x, "GET", p.data, NULL, &a);
		cm_buf_free(&p);
		if (rc)
			break;
		json_array_extend(all, json_object_get(a.body, key));
		next = json_string_value(json_object_get(a.body, "next_cursor"));
		free(cursor);
		cursor = next ? strdup(next) : NULL;
		cli_answer_clear(&a);
		if (!cursor)
			break;
	}
	free(cursor);
	if (rc) {
		json_decref(all);
		return rc;
	}
	*out = all;
	return CLI_C_OK;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* An alias change's answer: "<model>: current -> v2 (10%)". */
static int print_alias(struct client_ctx *x, const json_t *v)
{
	char m[512], al[256], ver[256];
	json_t *pct = json_object_get(v, "percent");

	if (x->cfg.json) {
		json_print(v);
		return CLI_C_OK;
	}
	printf("%s: %s -> %s", cli_esc(m, sizeof(m), jstr(v, "model")),
	       cli_esc(al, sizeof(al), jstr(v, "alias")), cli_esc(ver, sizeof(ver), jstr(v, "version")));
	if (json_is_integer(pct))
		printf(" (%lld%%)", (long long)json_integer_value(pct));
	putchar('\n');
	return CLI_C_OK;
}

/* Shared by the commands that change an alias and answer with it. */
static int alias_call(struct client_ctx *x, const char *method, struct cm_buf *p, json_t *body)
{
	struct cli_answer a = { 0 };
	int rc = CLI_C_SERVER;

	if (p->data)
		rc = call(x, method, p->data, body, &a);
	if (rc == CLI_C_OK)
		rc = print_alias(x, a.body);
	cli_answer_clear(&a);
	cm_buf_free(p);
	json_decref(body);
	return rc;
}

static json_t *reason_body(const struct client_ctx *x)
{
	json_t *b = json_object();

	if (b && x->cfg.reason)
		json_object_set_new(b, "reason", json_string(x->cfg.reason));
	return b;
}

/* ---- the commands ---- */

static int c_models(struct client_ctx *x)
{
	struct cli_table t;
	json_t *all = NULL, *m;
	size_t i;
	int rc = get_all(x, "/v1/models", "models", &all);

	if (rc)
		return rc;
	if (x->cfg.json) {
		json_t *o = json_pack("{s:O s:n}", "models", all, "next_cursor");

		json_print(o);
		json_decref(o);
		json_decref(all);
		return CLI_C_OK;
	}
	cli_table_init(&t, 2, (const char *const[]){ "MODEL", "CREATED" });
	json_array_foreach(all, i, m)
		cli_table_add(&t, (const char *const[]){ jstr(m, "name"), jstr(m, "created_at") });
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_decref(all);
	return CLI_C_OK;
}

/* "a,b,c" of a JSON array of strings, or of an object's "k=v" pairs; "-" when empty. */
static char *list_text(const json_t *v)
{
	struct cm_buf b = { 0 };
	const char *k;
	json_t *e;
	size_t i;
	char *s;

	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			cm_buf_printf(&b, "%s%s", i ? "," : "", json_string_value(e) ?
				      json_string_value(e) : "?");
	} else {
		json_object_foreach((json_t *)v, k, e) {
			char *t = json_is_string(e) ? strdup(json_string_value(e)) : cli_json_text(e);

			cm_buf_printf(&b, "%s%s=%s", b.len ? "," : "", k, t ? t : "?");
			free(t);
		}
	}
	s = strdup(b.data && b.data[0] ? b.data : "-");
	cm_buf_free(&b);
	return s;
}

/* Version summaries as a table; with_model for search results. */
static int versions_table(const json_t *list, int with_model)
{
	struct cli_table t;
	size_t i;
	json_t *v;

	if (with_model)
		cli_table_init(&t, 8, (const char *const[]){ "MODEL", "VERSION", "STATE", "VALIDATION",
							     "ALIASES", "METRICS", "TAGS", "CREATED" });
	else
		cli_table_init(&t, 7, (const char *const[]){ "VERSION", "STATE", "VALIDATION",
							     "ALIASES", "METRICS", "TAGS", "CREATED" });
	json_array_foreach(list, i, v) {
		char *aliases = list_text(json_object_get(v, "aliases"));
		char *metrics = list_text(json_object_get(v, "metrics"));
		char *tags = list_text(json_object_get(v, "tags"));

		if (with_model)
			cli_table_add(&t, (const char *const[]){ jstr(v, "model"), jstr(v, "name"),
								 jstr(v, "state"),
								 jstr(v, "validation_status"), aliases,
								 metrics, tags, jstr(v, "created_at") });
		else
			cli_table_add(&t, (const char *const[]){ jstr(v, "name"), jstr(v, "state"),
								 jstr(v, "validation_status"), aliases,
								 metrics, tags, jstr(v, "created_at") });
		free(aliases);
		free(metrics);
		free(tags);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	return CLI_C_OK;
}

/* versions and search: one page with --limit, else every page; a table or the JSON. */
static int version_list(struct client_ctx *x, struct cm_buf *p, const char *model)
{
	struct cli_answer a = { 0 };
	json_t *all = NULL;
	int rc = CLI_C_SERVER;

	if (query_add(p, "state", x->cfg.state) < 0 || query_add(p, "filter", x->cfg.filter) < 0 ||
	    query_add(p, "sort", x->cfg.sort) < 0)
		goto done;
	if (x->cfg.limit > 0) {
		char lim[24];

		snprintf(lim, sizeof(lim), "%lld", x->cfg.limit);
		if (query_add(p, "limit", lim) < 0)
			goto done;
		rc = call(x, "GET", p->data, NULL, &a);
		if (rc)
			goto done;
		all = json_incref(json_object_get(a.body, "versions"));
	} else {
		rc = get_all(x, p->data, "versions", &all);
		if (rc)
			goto done;
	}
	if (x->cfg.json) {
		if (a.body) {
			json_print(a.body);
		} else {
			json_t *o = model ? json_pack("{s:s s:O s:n}", "model", model, "versions", all,
						      "next_cursor")
					  : json_pack("{s:O s:n}", "versions", all, "next_cursor");

			json_print(o);
			json_decref(o);
		}
	} else {
		versions_table(all, !model);
	}
done:
	json_decref(all);
	cli_answer_clear(&a);
	return rc;
}

static int c_versions(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	int rc = CLI_C_SERVER;

	if (model_path(&p, x->pos[0], "/versions") == 0)
		rc = version_list(x, &p, x->pos[0]);
	cm_buf_free(&p);
	return rc;
}

static int c_search(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	int rc = CLI_C_SERVER;

	x->cfg.filter = x->pos[0];
	if (path_add(&p, "/v1/search", NULL) == 0 && query_add(&p, "model", x->cfg.model) == 0)
		rc = version_list(x, &p, NULL);
	cm_buf_free(&p);
	return rc;
}

/* The values of every --NAME VALUE / --NAME=VALUE given, in order. */
static size_t flag_values(const struct client_ctx *x, const char *name, const char **out,
			  size_t cap)
{
	size_t n = 0, l = strlen(name);

	for (int i = 1; i < x->optc && n < cap; i++) {
		const char *a = x->optv[i];

		if (strncmp(a, "--", 2) || strncmp(a + 2, name, l))
			continue;
		if (a[2 + l] == '=')
			out[n++] = a + 3 + l;
		else if (!a[2 + l] && i + 1 < x->optc)
			out[n++] = x->optv[++i];
	}
	return n;
}

static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

static int c_describe(struct client_ctx *x)
{
	const char *tags[64], *untags[64];
	size_t nt = flag_values(x, "tag", tags, 64), nu = flag_values(x, "untag", untags, 64);
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	json_t *body = json_object(), *tj = NULL, *shown;
	int rc = CLI_C_SERVER;
	char m[512];

	if (!body)
		goto done;
	for (size_t i = 0; i < nt; i++) {
		const char *eq = strchr(tags[i], '=');
		char key[128];

		if (!eq || eq == tags[i] || (size_t)(eq - tags[i]) >= sizeof(key)) {
			fprintf(stderr, "modelfs describe: --tag takes KEY=VALUE, not '%s'\n",
				cli_esc(m, sizeof(m), tags[i]));
			rc = CLI_C_USAGE;
			goto done;
		}
		memcpy(key, tags[i], (size_t)(eq - tags[i]));
		key[eq - tags[i]] = '\0';
		if (!tj)
			tj = json_object();
		json_object_set_new(tj, key, json_string(eq + 1));
	}
	for (size_t i = 0; i < nu; i++) {
		if (!tj)
			tj = json_object();
		json_object_set_new(tj, untags[i], json_null());
	}
	if (tj)
		json_object_set(body, "tags", tj);
	if (x->cfg.description)
		json_object_set_new(body, "description", str_or_null(x->cfg.description));
	if (x->cfg.owner)
		json_object_set_new(body, "owner", str_or_null(x->cfg.owner));
	if (model_path(&p, x->pos[0], "") < 0)
		goto done;
	if (x->npos > 1 && (path_add(&p, "/versions/", x->pos[1]) < 0 ||
			    path_add(&p, "/metadata", NULL) < 0))
		goto done;
	rc = call(x, json_object_size(body) ? "PATCH" : "GET", p.data,
		  json_object_size(body) ? body : NULL, &a);
	if (rc)
		goto done;
	shown = json_pack("{s:s s:O? s:O? s:O?}", "model", x->pos[0], "description",
			  json_object_get(a.body, "description"), "owner",
			  json_object_get(a.body, "owner"), "tags", json_object_get(a.body, "tags"));
	if (x->npos > 1)
		json_object_set_new(shown, "version", json_string(x->pos[1]));
	if (!json_object_get(shown, "description"))
		json_object_set_new(shown, "description", json_null());
	if (!json_object_get(shown, "owner"))
		json_object_set_new(shown, "owner", json_null());
	if (!json_object_get(shown, "tags"))
		json_object_set_new(shown, "tags", json_object());
	if (x->cfg.json) {
		json_print(shown);
	} else {
		char *t = list_text(json_object_get(shown, "tags"));
		struct cli_table tb;

		cli_table_init(&tb, 2, (const char *const[]){ "FIELD", "VALUE" });
		cli_table_add(&tb, (const char *const[]){ "description",
							  jstr(shown, "description") ?
							  jstr(shown, "description") : "-" });
		cli_table_add(&tb, (const char *const[]){ "owner", jstr(shown, "owner") ?
							  jstr(shown, "owner") : "-" });
		cli_table_add(&tb, (const char *const[]){ "tags", t });
		cli_table_print(&tb, stdout);
		cli_table_free(&tb);
		free(t);
	}
	json_decref(shown);
done:
	json_decref(body);
	json_decref(tj);
	cli_answer_clear(&a);
	cm_buf_free(&p);
	return rc;
}

static int c_show(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	struct cli_answer model = { 0 }, vpage = { 0 }, epage = { 0 };
	json_t *versions = NULL, *events = NULL, *latest = NULL, *out = NULL, *v, *al;
	struct cli_table t;
	const char *k;
	size_t i, n;
	int rc = CLI_C_SERVER;

	if (path_add(&p, "/v1/models/", x->pos[0]) < 0)
		goto done;
	rc = call(x, "GET", p.data, NULL, &model);
	if (rc)
		goto done;
	cm_buf_reset(&p);
	rc = CLI_C_SERVER;
	/* One page each, newest first: a model with many versions costs no more to show. */
	if (model_path(&p, x->pos[0], "/versions?sort=-seq&limit=" SHOW_VERSIONS_S) < 0)
		goto done;
	rc = call(x, "GET", p.data, NULL, &vpage);
	if (rc)
		goto done;
	versions = json_incref(json_object_get(vpage.body, "versions"));
	/* The latest few, newest first, each with its metadata. */
	latest = json_array();
	n = json_array_size(versions);
	for (i = 0; latest && i < n; i++) {
		struct cli_answer meta = { 0 };

		v = json_array_get(versions, i);
		cm_buf_reset(&p);
		if (path_add(&p, "/v1/models/", x->pos[0]) < 0 ||
		    path_add(&p, "/versions/", jstr(v, "name")) < 0 ||
		    path_add(&p, "/metadata", NULL) < 0) {
			rc = CLI_C_SERVER;
			goto done;
		}
		rc = call(x, "GET", p.data, NULL, &meta);
		if (rc)
			goto done;
		v = json_deep_copy(v);
		json_object_set_new(v, "metadata", meta.body);
		json_array_append_new(latest, v);
	}
	cm_buf_reset(&p);
	if (model_path(&p, x->pos[0], "/history?order=desc&limit=" SHOW_EVENTS_S) < 0) {
		rc = CLI_C_SERVER;
		goto done;
	}
	rc = call(x, "GET", p.data, NULL, &epage);
	if (rc)
		goto done;
	/* Oldest first, as history prints them. */
	events = json_array();
	n = json_array_size(json_object_get(epage.body, "events"));
	for (i = n; events && i > 0; i--)
		json_array_append(events, json_array_get(json_object_get(epage.body, "events"), i - 1));
	if (x->cfg.json) {
		out = json_pack("{s:O s:O s:O}", "model", model.body, "latest_versions", latest,
				"recent_events", events);
		json_print(out);
		goto done;
	}
	{
		json_t *vs = json_object_get(model.body, "versions");
		char name[512], lv[256];

		printf("model     %s\ncreated   %s\nversions  %lld (%lld draft, %lld sealed, %lld "
		       "archived), latest %s\n\n",
		       cli_esc(name, sizeof(name), jstr(model.body, "name")),
		       jstr(model.body, "created_at") ? jstr(model.body, "created_at") : "-",
		       (long long)json_integer_value(json_object_get(vs, "count")),
		       (long long)json_integer_value(json_object_get(vs, "draft")),
		       (long long)json_integer_value(json_object_get(vs, "sealed")),
		       (long long)json_integer_value(json_object_get(vs, "archived")),
		       cli_esc(lv, sizeof(lv), jstr(vs, "latest") ? jstr(vs, "latest") : "-"));
	}
	cli_table_init(&t, 4, (const char *const[]){ "ALIAS", "VERSION", "PERCENT", "UPDATED" });
	json_object_foreach(json_object_get(model.body, "aliases"), k, al) {
		char pct[16] = "-";
		json_t *pj = json_object_get(al, "percent");

		if (json_is_integer(pj))
			snprintf(pct, sizeof(pct), "%lld%%", (long long)json_integer_value(pj));
		cli_table_add(&t, (const char *const[]){ k, jstr(al, "version"), pct,
							 jstr(al, "updated_at") });
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	putchar('\n');
	versions_table(latest, 0);
	putchar('\n');
	cli_table_init(&t, 4, (const char *const[]){ "TIME", "KIND", "ACTOR", "WHAT" });
	json_array_foreach(events, i, v) {
		char *what = NULL;

		if (jstr(v, "alias")) {
			char *b = cli_json_text(json_object_get(v, "before"));
			char *af = cli_json_text(json_object_get(v, "after"));

			if (asprintf(&what, "%s %s -> %s", jstr(v, "alias"), b ? b : "-",
				     af ? af : "-") < 0)
				what = NULL;
			free(b);
			free(af);
		} else if (jstr(v, "version")) {
			what = strdup(jstr(v, "version"));
		}
		cli_table_add(&t, (const char *const[]){ jstr(v, "ts"), jstr(v, "kind"),
							 jstr(v, "actor"), what });
		free(what);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	rc = CLI_C_OK;
done:
	json_decref(out);
	json_decref(versions);
	json_decref(latest);
	json_decref(events);
	cli_answer_clear(&model);
	cli_answer_clear(&vpage);
	cli_answer_clear(&epage);
	cm_buf_free(&p);
	return rc;
}

static int c_promote(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	json_t *b = reason_body(x);

	if (b)
		json_object_set_new(b, "version", json_string(x->pos[1]));
	if (model_path(&p, x->pos[0], "/promote") < 0)
		cm_buf_free(&p);
	return alias_call(x, "POST", &p, b);
}

static int c_rollback(struct client_ctx *x)
{
	struct cm_buf p = { 0 };

	if (model_path(&p, x->pos[0], "/rollback") < 0)
		cm_buf_free(&p);
	return alias_call(x, "POST", &p, reason_body(x));
}

static int c_canary(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	json_t *b = reason_body(x);

	if (b) {
		json_object_set_new(b, "version", json_string(x->pos[1]));
		if (x->cfg.percent >= 0)
			json_object_set_new(b, "percent", json_integer(x->cfg.percent));
	}
	if (model_path(&p, x->pos[0], "/canary") < 0)
		cm_buf_free(&p);
	return alias_call(x, "PUT", &p, b);
}

static int c_canary_promote(struct client_ctx *x)
{
	struct cm_buf p = { 0 };

	if (model_path(&p, x->pos[0], "/canary/promote") < 0)
		cm_buf_free(&p);
	return alias_call(x, "POST", &p, reason_body(x));
}

/* A DELETE answered 204: prints what went, or {} with --json. */
static int delete_call(struct client_ctx *x, struct cm_buf *p, const char *what)
{
	struct cli_answer a = { 0 };
	int rc = CLI_C_SERVER;

	if (p->data)
		rc = call(x, "DELETE", p->data, NULL, &a);
	if (rc == CLI_C_OK) {
		char m[512];

		if (x->cfg.json)
			printf("{}\n");
		else
			printf("%s: %s removed\n", cli_esc(m, sizeof(m), x->pos[0]), what);
	}
	cli_answer_clear(&a);
	cm_buf_free(p);
	return rc;
}

static int c_canary_abort(struct client_ctx *x)
{
	struct cm_buf p = { 0 };

	if (model_path(&p, x->pos[0], "/canary") < 0)
		cm_buf_free(&p);
	return delete_call(x, &p, "canary");
}

static int alias_path(struct client_ctx *x, struct cm_buf *p)
{
	if (path_add(p, "/v1/models/", x->pos[0]) < 0 || path_add(p, "/aliases/", x->pos[1]) < 0) {
		cm_buf_free(p);
		return -ENOMEM;
	}
	return 0;
}

static int c_alias_set(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	json_t *b = reason_body(x);

	if (b)
		json_object_set_new(b, "version", json_string(x->pos[2]));
	alias_path(x, &p);
	return alias_call(x, "PUT", &p, b);
}

static int c_alias_rm(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	char what[300];

	alias_path(x, &p);
	snprintf(what, sizeof(what), "alias %s", x->pos[1]);
	return delete_call(x, &p, what);
}

static int c_as_of(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	int rc = CLI_C_SERVER;

	if (alias_path(x, &p) == 0 && query_add(&p, "at", x->pos[2]) == 0)
		rc = call(x, "GET", p.data, NULL, &a);
	if (rc == CLI_C_OK) {
		char m[512], al[256], v[256];

		if (x->cfg.json)
			json_print(a.body);
		else
			printf("%s: %s was %s at %s\n", cli_esc(m, sizeof(m), jstr(a.body, "model")),
			       cli_esc(al, sizeof(al), jstr(a.body, "alias")),
			       cli_esc(v, sizeof(v), jstr(a.body, "version")), x->pos[2]);
	}
	cli_answer_clear(&a);
	cm_buf_free(&p);
	return rc;
}

/*
 * An event's detail as "key=value ...": strings bare, lists of strings joined
 * with "; ", other values as JSON. A refusal's message repeats its gates: left
 * out when they are there. NULL for no detail.
 */
static char *detail_text(const json_t *d)
{
	struct cm_buf b = { 0 };
	const char *k;
	json_t *v;
	char *s = NULL;

	json_object_foreach((json_t *)d, k, v) {
		size_t i;
		json_t *g;

		if (!strcmp(k, "message") && json_object_get(d, "gates"))
			continue;
		cm_buf_printf(&b, "%s%s=", b.len ? " " : "", k);
		if (json_is_array(v) && json_array_size(v) && json_is_string(json_array_get(v, 0))) {
			json_array_foreach(v, i, g) {
				char *t = cli_json_text(g);

				cm_buf_printf(&b, "%s%s", i ? "; " : "", t ? t : "?");
				free(t);
			}
		} else {
			char *t = cli_json_text(v);

			cm_buf_printf(&b, "%s", t ? t : "?");
			free(t);
		}
	}
	if (b.data)
		s = strdup(b.data);
	cm_buf_free(&b);
	return s;
}

static int c_history(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	json_t *events = NULL, *e;
	struct cli_table t;
	size_t i;
	int rc = CLI_C_SERVER;

	if (model_path(&p, x->pos[0], "/history") < 0 ||
	    query_add(&p, "since", x->cfg.since) < 0 || query_add(&p, "kind", x->cfg.kind) < 0 ||
	    query_add(&p, "order", x->cfg.reverse ? "desc" : NULL) < 0)
		goto done;
	if (x->cfg.limit > 0) {
		char lim[24];

		snprintf(lim, sizeof(lim), "%lld", x->cfg.limit);
		if (query_add(&p, "limit", lim) < 0)
			goto done;
		rc = call(x, "GET", p.data, NULL, &a);
		if (rc)
			goto done;
		events = json_incref(json_object_get(a.body, "events"));
	} else {
		rc = get_all(x, p.data, "events", &events);
		if (rc)
			goto done;
	}
	if (x->cfg.json) {
		if (a.body) {
			json_print(a.body);
		} else {
			json_t *o = json_pack("{s:s s:O s:n}", "model", x->pos[0], "events", events,
					      "next_cursor");

			json_print(o);
			json_decref(o);
		}
		goto done;
	}
	cli_table_init(&t, 8, (const char *const[]){ "TIME", "KIND", "VERSION", "ALIAS", "BEFORE",
						     "AFTER", "ACTOR", "DETAIL" });
	json_array_foreach(events, i, e) {
		char *b = cli_json_text(json_object_get(e, "before"));
		char *af = cli_json_text(json_object_get(e, "after"));
		char *dt = detail_text(json_object_get(e, "detail"));

		cli_table_add(&t, (const char *const[]){ jstr(e, "ts"), jstr(e, "kind"),
							 jstr(e, "version"), jstr(e, "alias"), b, af,
							 jstr(e, "actor"), dt });
		free(b);
		free(af);
		free(dt);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
done:
	json_decref(events);
	cli_answer_clear(&a);
	cm_buf_free(&p);
	return rc;
}

/* key: value lines of an object, nested values as compact JSON. */
static void object_print(const json_t *o)
{
	struct cli_table t;
	const char *k;
	json_t *v;

	cli_table_init(&t, 2, (const char *const[]){ "FIELD", "VALUE" });
	json_object_foreach((json_t *)o, k, v) {
		char *s = cli_json_text(v);

		cli_table_add(&t, (const char *const[]){ k, s });
		free(s);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
}

static int c_lineage(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	int rc = CLI_C_SERVER;

	if (path_add(&p, "/v1/models/", x->pos[0]) == 0 &&
	    path_add(&p, "/versions/", x->pos[1]) == 0 && path_add(&p, "/lineage", NULL) == 0)
		rc = call(x, "GET", p.data, NULL, &a);
	if (rc == CLI_C_OK) {
		if (x->cfg.json)
			json_print(a.body);
		else
			object_print(a.body);
	}
	cli_answer_clear(&a);
	cm_buf_free(&p);
	return rc;
}

static int c_diff(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	int rc = CLI_C_SERVER;

	if (model_path(&p, x->pos[0], "/diff") == 0 &&
	    query_add(&p, "from", x->pos[1]) == 0 && query_add(&p, "to", x->pos[2]) == 0)
		rc = call(x, "GET", p.data, NULL, &a);
	if (rc == CLI_C_OK && x->cfg.json) {
		json_print(a.body);
	} else if (rc == CLI_C_OK) {
		struct cli_table t;
		size_t i;
		json_t *c;

		cli_table_init(&t, 4, (const char *const[]){ "FIELD", "CHANGE", x->pos[1], x->pos[2] });
		json_array_foreach(json_object_get(a.body, "changes"), i, c) {
			char *f = cli_json_text(json_object_get(c, "from"));
			char *to = cli_json_text(json_object_get(c, "to"));

			cli_table_add(&t, (const char *const[]){ jstr(c, "path"), jstr(c, "op"), f,
								 to });
			free(f);
			free(to);
		}
		cli_table_print(&t, stdout);
		cli_table_free(&t);
	}
	cli_answer_clear(&a);
	cm_buf_free(&p);
	return rc;
}

static int c_policy_get(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	int rc = CLI_C_SERVER;

	if (model_path(&p, x->pos[0], "/policy") == 0)
		rc = call(x, "GET", p.data, NULL, &a);
	if (rc == CLI_C_OK)
		json_print(a.body); /* a policy is JSON either way */
	cli_answer_clear(&a);
	cm_buf_free(&p);
	return rc;
}

static int c_policy_set(struct client_ctx *x)
{
	const char *file = x->npos > 1 ? x->pos[1] : "-";
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	json_error_t jerr;
	json_t *policy = NULL;
	FILE *f = NULL;
	int rc = CLI_C_USAGE;
	char m[512];

	f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!f) {
		fprintf(stderr, "modelfs: policy set: %s: %s\n", cli_esc(m, sizeof(m), file),
			strerror(errno));
		goto done;
	}
	policy = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	if (!policy) {
		fprintf(stderr, "modelfs: policy set: %s: line %d: %s\n",
			cli_esc(m, sizeof(m), file), jerr.line, jerr.text);
		goto done;
	}
	rc = CLI_C_SERVER;
	if (model_path(&p, x->pos[0], "/policy") == 0)
		rc = call(x, "PUT", p.data, policy, &a);
	if (rc == CLI_C_OK)
		json_print(a.body);
done:
	if (f && f != stdin)
		fclose(f);
	json_decref(policy);
	cli_answer_clear(&a);
	cm_buf_free(&p);
	return rc;
}

/* ---- lifecycle: archive, unarchive, delete, gc ---- */

/* POST .../archive or .../unarchive; prints "<model>/<version> archived". */
static int archive_call(struct client_ctx *x, const char *what)
{
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	json_t *b = reason_body(x);
	char m[256], v[256];
	int rc = CLI_C_SERVER;

	if (b && model_path(&p, x->pos[0], "/versions/") == 0 && cli_buf_escape(&p, x->pos[1]) == 0 &&
	    path_add(&p, what, NULL) == 0)
		rc = call(x, "POST", p.data, b, &a);
	if (rc == CLI_C_OK && x->cfg.json)
		json_print(a.body);
	else if (rc == CLI_C_OK)
		printf("%s/%s %s\n", cli_esc(m, sizeof(m), x->pos[0]),
		       cli_esc(v, sizeof(v), jstr(a.body, "name")),
		       json_is_true(json_object_get(a.body, "archived")) ? "archived" : "not archived");
	cli_answer_clear(&a);
	cm_buf_free(&p);
	json_decref(b);
	return rc;
}

static int c_archive(struct client_ctx *x)
{
	return archive_call(x, "/archive");
}

static int c_unarchive(struct client_ctx *x)
{
	return archive_call(x, "/unarchive");
}

/* "a, b" of a JSON array of strings, or "none". */
static void print_list(const char *label, const json_t *arr)
{
	char e[256];
	size_t i;
	json_t *s;

	printf("%s", label);
	if (!json_array_size(arr))
		printf(" none");
	json_array_foreach(arr, i, s)
		printf("%s %s", i ? "," : "", cli_esc(e, sizeof(e), json_string_value(s)));
	putchar('\n');
}

static int c_delete(struct client_ctx *x)
{
	struct cm_buf p = { 0 };
	struct cli_answer a = { 0 };
	json_t *b;
	char m[256], v[256];
	int rc = CLI_C_SERVER;

	if (!x->cfg.reason || !x->cfg.reason[0]) {
		fprintf(stderr, "modelfs delete: say why with --reason (it is kept in the event)\n");
		return CLI_C_USAGE;
	}
	b = reason_body(x);
	if (b && model_path(&p, x->pos[0], x->npos > 1 ? "/versions/" : "") == 0 &&
	    (x->npos < 2 || cli_buf_escape(&p, x->pos[1]) == 0))
		rc = call(x, "DELETE", p.data, b, &a);
	if (rc == CLI_C_OK && x->cfg.json) {
		json_print(a.body);
	} else if (rc == CLI_C_OK) {
		if (x->npos > 1) {
			printf("deleted %s/%s\n", cli_esc(m, sizeof(m), x->pos[0]),
			       cli_esc(v, sizeof(v), x->pos[1]));
		} else {
			printf("deleted model %s\n", cli_esc(m, sizeof(m), x->pos[0]));
			print_list("versions deleted:", json_object_get(a.body, "versions"));
		}
		print_list("git tags left in the repository:", json_object_get(a.body, "git_tags"));
	}
	cli_answer_clear(&a);
	cm_buf_free(&p);
	json_decref(b);
	return rc;
}

/* gc's answer, as a table: what goes (or would), what stays, and why. */
static void gc_print(const json_t *res)
{
	int dry = json_is_true(json_object_get(res, "dry_run"));
	struct cli_table t;
	size_t i;
	json_t *e;

	cli_table_init(&t, 4, (const char *const[]){ "MODEL", "VERSION", "ACTION", "WHY" });
	json_array_foreach(json_object_get(res, "removed"), i, e)
		cli_table_add(&t, (const char *const[]){ jstr(e, "model"), jstr(e, "version"),
							 dry ? "would remove" : "removed",
							 jstr(e, "why") });
	json_array_foreach(json_object_get(res, "kept"), i, e)
		cli_table_add(&t, (const char *const[]){ jstr(e, "model"), jstr(e, "version"), "kept",
							 jstr(e, "why") });
	cli_table_print(&t, stdout);
	cli_table_free(&t);
}

static int c_gc(struct client_ctx *x)
{
	struct cli_answer a = { 0 };
	json_t *res = NULL, *b;
	int rc = CLI_C_SERVER;

	if (x->npos == 1) {
		/* Offline, on the store itself (the daemon must not be running). */
		struct cli_gc_opts o = { .store = x->pos[0], .model = x->cfg.model,
					 .reason = x->cfg.reason, .dry_run = x->cfg.dry_run };

		rc = cli_gc_offline(&o, &res);
		if (rc < 0) {
			char m[512];

			fprintf(stderr, "modelfs gc: %s\n", cli_esc(m, sizeof(m), cm_err_msg()));
			return rc == -EBUSY ? CLI_C_REFUSED : CLI_C_USAGE;
		}
	} else {
		b = json_pack("{s:b}", "dry_run", x->cfg.dry_run);
		if (b && x->cfg.model)
			json_object_set_new(b, "model", json_string(x->cfg.model));
		if (b && x->cfg.reason)
			json_object_set_new(b, "reason", json_string(x->cfg.reason));
		if (b)
			rc = call(x, "POST", "/v1/gc", b, &a);
		json_decref(b);
		if (rc != CLI_C_OK)
			return rc;
		res = json_incref(a.body);
		cli_answer_clear(&a);
	}
	if (x->cfg.json)
		json_print(res);
	else
		gc_print(res);
	json_decref(res);
	return CLI_C_OK;
}

/*
 * What each rule of a refusal means and what to do about it: `why` prints
 * the line; the README's troubleshooting table says the same, row by row.
 */
static const struct {
	const char *rule, *means, *todo;
} why_rules[] = {
	{ "gate", "a gate of the model's promotion policy refused the version",
	  "fix what the failed gates name (modelfs policy get MODEL), then try again; an admin "
	  "may force with a reason" },
	{ "name", "a name breaks the naming rule",
	  "models: lowercase letters, digits and '-', at most 63; versions and aliases: letters, "
	  "digits, '.', '_', '-', starting with a letter or digit" },
	{ "name_taken", "the name is already taken in the model directory (a version, an alias "
			"or a file)", "choose another name, or move the thing in the way" },
	{ "aliased", "the version is the target of an alias, so it cannot go",
	  "point the alias elsewhere (ln -sfn OTHER ALIAS) or remove it first" },
	{ "sealed", "the version is sealed: its files never change",
	  "write a new version (mkdir MODEL/vN) instead" },
	{ "sealing", "the version is being sealed right now", "wait for the seal, then look again" },
	{ "busy", "the version is busy (being written or sealed)",
	  "close the files open in it and try again" },
	{ "authority", "the caller lacks the authority (role, owner or admin group)",
	  "ask an admin, or use a token with the role the message names" },
	{ "not_empty", "the directory is not empty", "remove what is in it first (rm -r)" },
	{ "layout", "the tree has a fixed shape: models hold versions and aliases, versions "
		    "hold files", "see the README's FUSE table for what goes where" },
	{ "invalid", "the value is not acceptable", "see the message" },
	{ "compare_and_swap", "the alias changed since it was read",
	  "read it again (modelfs show MODEL) and retry" },
	{ "request", "the request is malformed", "see the message" },
	{ "size", "something is larger than its limit", "see the message" },
};

static int c_why(struct client_ctx *x)
{
	struct cli_answer a = { 0 };
	struct cm_buf p = { 0 };
	char uid[24], lim[16];
	json_t *list, *e;
	size_t i;
	int rc = CLI_C_SERVER;

	snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
	snprintf(lim, sizeof(lim), "%lld", x->cfg.limit ? x->cfg.limit : 5);
	if (path_add(&p, "/v1/refusals", NULL) < 0 || query_add(&p, "uid", uid) < 0 ||
	    query_add(&p, "token", "me") < 0 || query_add(&p, "limit", lim) < 0 ||
	    query_add(&p, "model", x->npos ? x->pos[0] : NULL) < 0)
		goto done;
	rc = call(x, "GET", p.data, NULL, &a);
	if (rc)
		goto done;
	if (x->cfg.json) {
		json_print(a.body);
		goto done;
	}
	list = json_object_get(a.body, "refusals");
	if (json_array_size(list) == 0)
		printf("no refusals recorded for you (uid %s, or your token)%s%s\n", uid,
		       x->npos ? " on " : "", x->npos ? x->pos[0] : "");
	json_array_foreach(list, i, e) {
		char b1[512], b2[256], b3[256], b4[256], b5[1024];
		const char *rule = jstr(e, "rule"), *ch = jstr(e, "channel");
		json_t *st = json_object_get(e, "status"), *g;
		size_t k;

		if (i)
			putchar('\n');
		printf("%s  %s", jstr(e, "ts"), cli_esc(b1, sizeof(b1), jstr(e, "op")));
		if (jstr(e, "model"))
			printf(" %s%s%s", cli_esc(b2, sizeof(b2), jstr(e, "model")),
			       jstr(e, "version") ? "/" : "",
			       jstr(e, "version") ? cli_esc(b3, sizeof(b3), jstr(e, "version")) : "");
		if (jstr(e, "alias"))
			printf(" alias %s", cli_esc(b4, sizeof(b4), jstr(e, "alias")));
		if (json_is_integer(st))
			printf(": HTTP %lld %s (%s)\n", (long long)json_integer_value(st),
			       jstr(e, "code") ? jstr(e, "code") : "", jstr(e, "errno"));
		else
			printf(": %s (%s)\n", jstr(e, "errno"),
			       ch && !strcmp(ch, "fs") ? "through the mount" : ch ? ch : "?");
		printf("  rule:    %s", rule ? rule : "?");
		for (k = 0; rule && k < sizeof(why_rules) / sizeof(why_rules[0]); k++)
			if (!strcmp(why_rules[k].rule, rule))
				break;
		if (rule && k < sizeof(why_rules) / sizeof(why_rules[0]))
			printf(" (%s)", why_rules[k].means);
		printf("\n  message: %s\n", cli_esc(b5, sizeof(b5), jstr(e, "message")));
		json_array_foreach(json_object_get(e, "failed_gates"), k, g)
			printf("  failed:  %s\n", cli_esc(b5, sizeof(b5), json_string_value(g)));
		for (k = 0; rule && k < sizeof(why_rules) / sizeof(why_rules[0]); k++)
			if (!strcmp(why_rules[k].rule, rule))
				printf("  to do:   %s\n", why_rules[k].todo);
	}
done:
	cli_answer_clear(&a);
	cm_buf_free(&p);
	return rc;
}

static const struct client_cmd cmds[] = {
	{ "models", NULL, 0, 0, 0, c_models, "", "list the models" },
	{ "show", NULL, 1, 1, 0, c_show, "MODEL",
	  "a model: aliases, the latest versions with validation and key metrics, recent events" },
	{ "versions", NULL, 1, 1, O_STATE | O_LIMIT | O_FILTER | O_SORT, c_versions,
	  "MODEL [--filter EXPR] [--sort F] [--state S] [--limit N]",
	  "list a model's versions (oldest first unless sorted) with aliases, metrics and tags" },
	{ "search", NULL, 1, 1, O_MODEL | O_STATE | O_LIMIT | O_SORT, c_search,
	  "EXPR [--model M] [--sort F] [--state S] [--limit N]",
	  "versions of every model matching EXPR (performance_metrics.accuracy >= 0.9 and "
	  "tags.team = \"sre\")" },
	{ "describe", NULL, 1, 2, O_DESCRIPTION | O_OWNER | O_TAG | O_UNTAG, c_describe,
	  "MODEL [VERSION] [--description D] [--owner O] [--tag K=V]... [--untag K]...",
	  "show or set the description, owner and tags of a model or a version (writer)" },
	{ "promote", NULL, 2, 2, O_REASON, c_promote, "MODEL VERSION [--reason R]",
	  "point current at VERSION, through the model's policy (admin)" },
	{ "rollback", NULL, 1, 1, O_REASON, c_rollback, "MODEL [--reason R]",
	  "current back to the version it held before (admin)" },
	{ "canary", "promote", 1, 1, O_REASON, c_canary_promote, "promote MODEL [--reason R]",
	  "the canary becomes current; the canary goes (admin)" },
	{ "canary", "abort", 1, 1, 0, c_canary_abort, "abort MODEL", "remove the canary (admin)" },
	{ "canary", NULL, 2, 2, O_PERCENT | O_REASON, c_canary, "MODEL VERSION [--percent N]",
	  "start a canary, or change its version or traffic percent (admin)" },
	{ "alias", "set", 3, 3, O_REASON, c_alias_set, "set MODEL ALIAS VERSION [--reason R]",
	  "point ALIAS at VERSION (current and canary: admin)" },
	{ "alias", "rm", 2, 2, 0, c_alias_rm, "rm MODEL ALIAS", "remove ALIAS" },
	{ "history", NULL, 1, 1, O_SINCE | O_KIND | O_LIMIT | O_REVERSE, c_history,
	  "MODEL [--since T] [--kind K] [--limit N] [--reverse]",
	  "the model's events, oldest first (newest first with --reverse)" },
	{ "as-of", NULL, 3, 3, 0, c_as_of, "MODEL ALIAS TIME",
	  "the version ALIAS pointed at, at TIME (RFC 3339)" },
	{ "lineage", NULL, 2, 2, 0, c_lineage, "MODEL VERSION",
	  "a version's lineage: commit, data, metrics, where it is deployed" },
	{ "diff", NULL, 3, 3, 0, c_diff, "MODEL FROM TO", "what differs between two versions' metadata" },
	{ "why", NULL, 0, 1, O_LIMIT, c_why, "[MODEL] [--limit N]",
	  "your most recent refusals (by uid through the mount, by token over HTTP) and the rule "
	  "that refused each" },
	{ "policy", "get", 1, 1, 0, c_policy_get, "get MODEL", "print the promotion policy (JSON)" },
	{ "policy", "set", 1, 2, 0, c_policy_set, "set MODEL [FILE]",
	  "change the gates FILE's JSON (or stdin's) names; null removes one, and removing "
	  "or loosening needs \"force\" and a \"reason\" in it (admin)" },
	{ "archive", NULL, 2, 2, O_REASON, c_archive, "MODEL VERSION [--reason R]",
	  "hide a sealed version from listings and the mount's ls; still readable by path" },
	{ "unarchive", NULL, 2, 2, O_REASON, c_unarchive, "MODEL VERSION [--reason R]",
	  "make an archived version sealed (listed, aliasable) again" },
	{ "delete", NULL, 1, 2, O_REASON, c_delete, "MODEL [VERSION] --reason R",
	  "delete an unaliased version, or a model without aliases with all its versions, and "
	  "their bytes; git tags stay (admin)" },
	{ "gc", NULL, 0, 1, O_DRY_RUN | O_MODEL | O_REASON, c_gc,
	  "[STORE] [--dry-run] [--model M] [--reason R]",
	  "apply the models' retention policies: through the daemon (admin), or offline on "
	  "STORE while no daemon runs" },
};
#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static const char exit_help[] =
	"Exit status: 0 done; 1 refused by the server (a policy gate, a conflict, an invalid\n"
	"value: HTTP 409, 422; the failed gates are printed); 2 usage error or unreadable input\n"
	"(HTTP 400, 413); 3 not found (404); 4 no token, a wrong one or too low a role (401,\n"
	"403); 5 no connection, a timeout, a server error (5xx) or an answer that is not the\n"
	"API's.\n";

int cli_client_is(const char *name)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (!strcmp(cmds[i].name, name))
			return 1;
	return 0;
}

void cli_client_usage(FILE *out)
{
	for (size_t i = 0; i < N_CMDS; i++) {
		char u[128];

		snprintf(u, sizeof(u), "%s %s", cmds[i].name, cmds[i].args);
		if (strlen(u) > 36)
			fprintf(out, "  modelfs %s\n  %-44s %s\n", u, "", cmds[i].help);
		else
			fprintf(out, "  modelfs %-36s %s\n", u, cmds[i].help);
	}
}

static size_t cmd_opts(const struct client_cmd *c, struct cm_opt *out);

/* Text into roff: '-' and '\\' escaped, a line never starts as a request. */
static void roff(FILE *out, const char *s)
{
	int bol = 1;

	for (; *s; s++) {
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", out);
		bol = *s == '\n';
		if (*s == '-')
			fputs("\\-", out);
		else if (*s == '\\')
			fputs("\\e", out);
		else
			fputc(*s, out);
	}
}

void cli_client_man(FILE *out, const char *version, const char *const *usages,
		    const char *const *helps, size_t n_others)
{
	struct cm_opt opts[N_OPTS];
	size_t n;

	fprintf(out, ".TH MODELFS 1 \"\" \"modelfs %s\" \"modelfs\"\n.SH NAME\nmodelfs \\- a model "
		     "registry that lives on the model volume\n.SH SYNOPSIS\n.B modelfs\n.I COMMAND\n"
		     "[\\fIARGS\\fR]\n.SH COMMANDS\n", version);
	for (size_t i = 0; i < n_others; i++) {
		fputs(".TP\n.B ", out);
		roff(out, usages[i]);
		fputc('\n', out);
		roff(out, helps[i]);
		fputc('\n', out);
	}
	fputs(".SH CLIENT COMMANDS\nOver the REST API; tables by default, the API's JSON with "
	      "\\fB\\-\\-json\\fR.\n", out);
	for (size_t i = 0; i < N_CMDS; i++) {
		char u[160];

		snprintf(u, sizeof(u), "%s%s%s", cmds[i].name, cmds[i].args[0] ? " " : "", cmds[i].args);
		fputs(".TP\n.B ", out);
		roff(out, u);
		fputc('\n', out);
		roff(out, cmds[i].help);
		fputc('\n', out);
	}
	fputs(".SH CLIENT OPTIONS\n", out);
	n = cmd_opts(&(struct client_cmd){ .opts = ~0u }, opts);
	for (size_t i = 0; i < n; i++) {
		fputs(".TP\n.B ", out);
		fprintf(out, "\\-\\-");
		roff(out, opts[i].name);
		if (opts[i].metavar) {
			fputs(" \\fI", out);
			roff(out, opts[i].metavar);
			fputs("\\fR", out);
		}
		fputc('\n', out);
		roff(out, opts[i].help);
		if (opts[i].def && opts[i].def[0]) {
			fputs(" (default ", out);
			roff(out, opts[i].def);
			fputc(')', out);
		}
		if (opts[i].env)
			fprintf(out, " [\\fB$%s\\fR]", opts[i].env);
		fputc('\n', out);
	}
	fputs(".SH ENVIRONMENT\n.TP\n.B MODELFS_TOKEN\n", out);
	roff(out, "the bearer token itself; a --token-file flag wins over it, and it wins over "
		  "$MODELFS_TOKEN_FILE.");
	fputs("\n.SH EXIT STATUS\n", out);
	roff(out, exit_help);
	fputs(".SH SEE ALSO\nREADME.md in the source; \\fBmodelfs serve \\-\\-help\\fR.\n", out);
}

/*
 * A bash completion script from the command table: command names (the
 * client's and `others`), subcommands, each command's options, and model
 * names from `modelfs models` (two seconds at most, nothing when the API is
 * out of reach).
 */
void cli_client_completion(FILE *out, const char *const *others, size_t n_others)
{
	fprintf(out, "# bash completion for modelfs: eval \"$(modelfs completion)\"\n"
		     "_modelfs_models() {\n"
		     "\tmodelfs models --timeout 2 2>/dev/null | tail -n +2 | cut -d' ' -f1\n"
		     "}\n"
		     "_modelfs() {\n"
		     "\tlocal cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} words=''\n"
		     "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n\t\twords='--help --version");
	for (size_t i = 0; i < n_others; i++)
		fprintf(out, " %s", others[i]);
	for (size_t i = 0; i < N_CMDS; i++)
		if (i == 0 || strcmp(cmds[i].name, cmds[i - 1].name))
			fprintf(out, " %s", cmds[i].name);
	fprintf(out, "'\n\telif [[ $cur == -* ]]; then\n\t\tcase \"$cmd\" in\n");
	for (size_t i = 0; i < N_CMDS; i++) {
		struct cm_opt opts[N_OPTS];
		unsigned all = 0;
		size_t n;

		if (i > 0 && !strcmp(cmds[i].name, cmds[i - 1].name))
			continue;
		for (size_t k = i; k < N_CMDS && !strcmp(cmds[k].name, cmds[i].name); k++)
			all |= cmds[k].opts;
		n = cmd_opts(&(struct client_cmd){ .opts = all }, opts);
		fprintf(out, "\t\t%s) words='", cmds[i].name);
		for (size_t k = 0; k < n; k++)
			fprintf(out, "%s--%s", k ? " " : "", opts[k].name);
		fprintf(out, "' ;;\n");
	}
	fprintf(out, "\t\tesac\n\telse\n\t\tcase \"$cmd\" in\n");
	for (size_t i = 0; i < N_CMDS; i++) {
		int has_sub = 0, has_plain = 0;

		if (i > 0 && !strcmp(cmds[i].name, cmds[i - 1].name))
			continue;
		for (size_t k = i; k < N_CMDS && !strcmp(cmds[k].name, cmds[i].name); k++) {
			has_sub |= cmds[k].sub != NULL;
			has_plain |= cmds[k].sub == NULL;
		}
		fprintf(out, "\t\t%s)\n", cmds[i].name);
		if (has_sub) {
			/* the subcommand first (or, for canary, a model); then a model */
			fprintf(out, "\t\t\tif [ \"$COMP_CWORD\" -eq 2 ]; then words='");
			for (size_t k = i; k < N_CMDS && !strcmp(cmds[k].name, cmds[i].name); k++)
				if (cmds[k].sub)
					fprintf(out, "%s%s", k > i ? " " : "", cmds[k].sub);
			fprintf(out, "'%s\n", has_plain ? "\" $(_modelfs_models)\"" : "");
			fprintf(out, "\t\t\telif [ \"$COMP_CWORD\" -eq 3 ]; then\n"
				     "\t\t\t\tcase \"${COMP_WORDS[2]}\" in ");
			for (size_t k = i, first = 1; k < N_CMDS && !strcmp(cmds[k].name, cmds[i].name); k++)
				if (cmds[k].sub) {
					fprintf(out, "%s%s", first ? "" : "|", cmds[k].sub);
					first = 0;
				}
			fprintf(out, ") words=$(_modelfs_models) ;; esac\n\t\t\tfi ;;\n");
		} else if (cmds[i].nmax > 0) {
			fprintf(out, "\t\t\t[ \"$COMP_CWORD\" -eq 2 ] && words=$(_modelfs_models) ;;\n");
		} else {
			fprintf(out, "\t\t\t;;\n");
		}
	}
	fprintf(out, "\t\tesac\n\tfi\n"
		     "\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
		     "}\n"
		     "complete -o default -F _modelfs modelfs\n");
}

/* The options of one command: the common ones and those its bits name. */
static size_t cmd_opts(const struct client_cmd *c, struct cm_opt *out)
{
	size_t n = 0;

	for (size_t i = 0; i < N_OPTS; i++)
		if (i < N_COMMON || (c->opts & (1u << (i - N_COMMON))))
			out[n++] = client_opts[i];
	return n;
}

static void cmd_help(const char *name, FILE *out)
{
	struct cm_opt opts[N_OPTS];
	unsigned all = 0;

	for (size_t i = 0; i < N_CMDS; i++) {
		if (strcmp(cmds[i].name, name))
			continue;
		fprintf(out, "usage: modelfs %s %s\n  %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
		all |= cmds[i].opts;
	}
	{
		struct client_cmd any = { .opts = all };
		size_t n = cmd_opts(&any, opts);

		fprintf(out, "\noptions:\n");
		cm_config_help(opts, n, out);
	}
	fprintf(out, "\nThe token: --token-file (or $MODELFS_TOKEN_FILE) names a file whose one line\n"
		     "is the secret; $MODELFS_TOKEN holds the secret itself. A --token-file flag\n"
		     "wins over $MODELFS_TOKEN, which wins over $MODELFS_TOKEN_FILE.\n\n%s",
		exit_help);
}

/* The first non-comment line of the token file, trimmed; one word. */
static int token_read(const char *path, char *out, size_t cap)
{
	char buf[TOKEN_FILE_MAX + 1], m[512];
	FILE *f = fopen(path, "r");
	size_t n;
	char *line, *save = NULL;

	if (!f)
		return cm_err_set(-errno, "--token-file: %s: %s", cli_esc(m, sizeof(m), path),
				  strerror(errno));
	n = fread(buf, 1, TOKEN_FILE_MAX + 1, f);
	fclose(f);
	if (n > TOKEN_FILE_MAX)
		return cm_err_set(-E2BIG, "--token-file: %s is larger than %d bytes",
				  cli_esc(m, sizeof(m), path), TOKEN_FILE_MAX);
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s = line, *e;

		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (!*s || *s == '#')
			continue;
		if (strpbrk(s, " \t")) {
			explicit_bzero(buf, sizeof(buf));
			return cm_err_set(-EINVAL, "--token-file: %s holds more than one word a line: "
					  "the daemon's token file ('NAME ROLE SECRET')? The client's "
					  "holds the secret alone", cli_esc(m, sizeof(m), path));
		}
		cm_strlcpy(out, s, cap);
		explicit_bzero(buf, sizeof(buf));
		return 0;
	}
	return cm_err_set(-EINVAL, "--token-file: %s holds no token", cli_esc(m, sizeof(m), path));
}

static int flag_given(int argc, char **argv, const char *flag)
{
	size_t n = strlen(flag);

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strncmp(argv[i], flag, n) && (argv[i][n] == '\0' || argv[i][n] == '='))
			return 1;
	}
	return 0;
}

/*
 * Splits argv (argv[0] the command, sub already skipped by the caller) into
 * options, handed to cm_config_parse, and positional arguments. An option
 * that takes a value takes the next argument unless written --opt=value.
 */
static int args_split(const struct cm_opt *opts, size_t nopts, int argc, char **argv,
		      char **optv, int *optc, char **pos, int *npos)
{
	int dashdash = 0;

	*optc = 1;
	*npos = 0;
	optv[0] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct cm_opt *o = NULL;

		if (!dashdash && !strcmp(a, "-h"))
			a = "--help";
		if (dashdash || strncmp(a, "--", 2) || !a[2]) {
			if (!dashdash && !strcmp(a, "--")) {
				dashdash = 1;
				continue;
			}
			pos[(*npos)++] = argv[i];
			continue;
		}
		for (size_t k = 0; k < nopts && !o; k++) {
			size_t l = strlen(opts[k].name);

			if (!strncmp(a + 2, opts[k].name, l) && (a[2 + l] == '\0' || a[2 + l] == '='))
				o = &opts[k];
		}
		optv[(*optc)++] = (char *)a;
		if (o && o->type != CM_OPT_BOOL && !strchr(a, '=') && i + 1 < argc)
			optv[(*optc)++] = argv[++i];
	}
	return 0;
}

int cli_client(int argc, char **argv)
{
	struct client_ctx x = { 0 };
	const struct client_cmd *c = NULL;
	struct cm_opt opts[N_OPTS];
	char **optv = NULL, **pos = NULL;
	char token[TOKEN_FILE_MAX + 1] = "";
	const char *tok = NULL;
	int optc = 0, skip = 1, rc = CLI_C_USAGE;
	size_t nopts;
	char m[512];

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		cmd_help(argv[0], stdout);
		return CLI_C_OK;
	}
	for (size_t i = 0; i < N_CMDS && !c; i++) {
		if (strcmp(cmds[i].name, argv[0]))
			continue;
		if (!cmds[i].sub) {
			c = &cmds[i];
		} else if (argc > 1 && !strcmp(cmds[i].sub, argv[1])) {
			c = &cmds[i];
			skip = 2;
		}
	}
	if (!c) {
		fprintf(stderr, "modelfs %s: say which (see 'modelfs %s --help')\n", argv[0], argv[0]);
		return CLI_C_USAGE;
	}
	argc -= skip - 1;
	argv += skip - 1;
	nopts = cmd_opts(c, opts);
	optv = calloc((size_t)argc + 1, sizeof(*optv));
	pos = calloc((size_t)argc + 1, sizeof(*pos));
	if (!optv || !pos) {
		fprintf(stderr, "modelfs: out of memory\n");
		goto done;
	}
	args_split(opts, nopts, argc, argv, optv, &optc, pos, &x.npos);
	x.optv = optv;
	x.optc = optc;
	x.cfg.percent = -1; /* unset: the options without a default keep these */
	if (cm_config_parse(opts, nopts, &x.cfg, optc, optv) < 0) {
		fprintf(stderr, "modelfs %s: %s\n", c->name, cli_esc(m, sizeof(m), cm_err_msg()));
		goto done;
	}
	if (x.cfg.help) {
		cmd_help(c->name, stdout);
		rc = CLI_C_OK;
		goto done;
	}
	if (x.npos < c->nmin || x.npos > c->nmax) {
		fprintf(stderr, "usage: modelfs %s %s\n", c->name, c->args);
		goto done;
	}
	x.pos = pos;
	if (flag_given(optc, optv, "--token-file") || !getenv("MODELFS_TOKEN")) {
		if (x.cfg.token_file) {
			if (token_read(x.cfg.token_file, token, sizeof(token)) < 0) {
				fprintf(stderr, "modelfs: %s\n", cm_err_msg());
				goto done;
			}
			tok = token;
		}
	} else {
		tok = getenv("MODELFS_TOKEN");
	}
	if (cli_conn_open(x.cfg.url, tok, (long)x.cfg.timeout, &x.conn) < 0) {
		fprintf(stderr, "modelfs: %s\n", cli_esc(m, sizeof(m), cm_err_msg()));
		goto done;
	}
	rc = c->run(&x);
	if (fflush(stdout) != 0 && rc == CLI_C_OK) {
		fprintf(stderr, "modelfs: writing the output failed: %s\n", strerror(errno));
		rc = CLI_C_SERVER;
	}
done:
	explicit_bzero(token, sizeof(token));
	cli_conn_close(x.conn);
	free(optv);
	free(pos);
	return rc;
}
