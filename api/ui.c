/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web UI's files: ui/ embedded at build time (tools/embed.py --assets),
 * index.html for every page route (the app routes in the browser), the rest
 * under /ui/assets/. The pages hold no data and need no token: they call the
 * REST API like any client. Only these answers carry the browser security
 * headers, so no other answer grows by a byte.
 */
#include <errno.h>
#include <string.h>

#include "api_i.h"

/*
 * Scripts, styles, images and API calls from this origin only; no inline
 * script or style, no plugins, no framing, forms post nowhere.
 */
#define UI_CSP                                                                              \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "   \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "      \
	"frame-ancestors 'none'"

static const struct {
	const char *ext;
	const char *ctype;
} ui_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
};

/* The index of the embedded file `name`; -ENOENT when there is none. */
static int ui_asset_find(const char *name)
{
	for (unsigned i = 0; i < api_ui_count; i++)
		if (!strcmp(api_ui_names[i], name))
			return (int)i;
	return cm_err_set(-ENOENT, "no web UI file '%.64s'", name);
}

/* Answers embedded file i: 304 when the browser has it (If-None-Match), else 200. */
static int ui_send(struct api_req *q, struct api_resp *r, int i)
{
	const char *inm = api_header(q, "If-None-Match");
	const char *dot = strrchr(api_ui_names[i], '.');

	api_resp_header(r, "Content-Security-Policy", "%s", UI_CSP);
	api_resp_header(r, "X-Content-Type-Options", "nosniff");
	api_resp_header(r, "Referrer-Policy", "no-referrer");
	api_resp_header(r, "X-Frame-Options", "DENY");
	api_resp_header(r, "ETag", "%s", api_ui_etags[i]);
	/* File names carry no hash: the browser asks again and usually gets a 304. */
	api_resp_header(r, "Cache-Control", "no-cache");
	if (inm && strstr(inm, api_ui_etags[i])) {
		r->status = 304;
		return 0;
	}
	r->status = 200;
	r->ctext = (const char *)api_ui_data[i];
	r->text_len = api_ui_len[i];
	r->ctype = "application/octet-stream";
	for (size_t k = 0; dot && k < sizeof(ui_types) / sizeof(ui_types[0]); k++)
		if (!strcmp(dot, ui_types[k].ext))
			r->ctype = ui_types[k].ctype;
	return 0;
}

int api_h_ui_root(struct api_req *q, struct api_resp *r)
{
	r->status = 302;
	api_resp_header(r, "Location", "/ui/");
	return 0;
}

int api_h_ui_page(struct api_req *q, struct api_resp *r)
{
	int i = ui_asset_find("index.html");

	return i < 0 ? i : ui_send(q, r, i);
}

int api_h_ui_asset(struct api_req *q, struct api_resp *r)
{
	int i;

	/* Flat: a name with a slash, or index.html itself, is not an asset. */
	if (strchr(q->path, '/') || !strcmp(q->path, "index.html"))
		return cm_err_set(-ENOENT, "no web UI file '%.64s'", q->path);
	i = ui_asset_find(q->path);
	return i < 0 ? i : ui_send(q, r, i);
}
