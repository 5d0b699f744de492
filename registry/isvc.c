/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KServe InferenceService a model's aliases call for, rendered once for
 * every caller: GET …/inferenceservice answers these bytes and the GitOps
 * adapter commits them, so the two can never disagree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reg_i.h"

/* KServe model formats by file extension (the predictor's modelFormat.name). */
static const struct {
	const char *ext;
	const char *format;
} formats[] = {
	{ ".pkl", "sklearn" },  { ".pickle", "sklearn" }, { ".joblib", "sklearn" },
	{ ".pt", "pytorch" },   { ".pth", "pytorch" },    { ".mar", "pytorch" },
	{ ".onnx", "onnx" },    { ".bst", "xgboost" },    { ".ubj", "xgboost" },
	{ ".h5", "tensorflow" }, { ".keras", "tensorflow" }, { ".pb", "tensorflow" },
};

/* The format of the version's top-level model file; NULL when none is recognised. */
static const char *format_of(const struct reg_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *dot = strrchr(files[i].path, '.');

		if (strchr(files[i].path, '/') || !dot)
			continue;
		for (size_t k = 0; k < sizeof(formats) / sizeof(formats[0]); k++)
			if (!strcmp(dot, formats[k].ext))
				return formats[k].format;
	}
	return NULL;
}

int reg_isvc_render(struct reg_store *st, const char *model, const struct reg_isvc_opts *o,
		    json_t **out)
{
	const char *pvc = o && o->pvc ? o->pvc : REG_ISVC_PVC_DEFAULT;
	const char *format = o ? o->model_format : NULL;
	struct reg_alias *a = NULL, *cur = NULL, *canary = NULL;
	struct reg_file *files = NULL;
	const char *served;
	size_t na = 0, nf = 0;
	json_t *isvc = NULL, *meta, *mod;
	char uri[512];
	int rc;

	rc = reg_alias_list(st, model, &a, &na);
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < na; i++) {
		if (!strcmp(a[i].name, "current"))
			cur = &a[i];
		else if (!strcmp(a[i].name, "canary"))
			canary = &a[i];
	}
	if (!cur) {
		rc = cm_err_set(-ENOENT, "model '%s' has no current version to serve", model);
		goto done;
	}
	/*
	 * KServe's canary: the spec names the new model and canaryTrafficPercent
	 * sends that share to it, while the last revision rolled out in full (the
	 * current version) keeps the rest. Versions are pinned, never `current`:
	 * a pvc:// mount resolves a symlink once, at container start.
	 */
	served = canary ? canary->version : cur->version;
	if (!format) {
		rc = reg_version_files(st, model, served, &files, &nf);
		if (rc < 0)
			goto done;
		format = format_of(files, nf);
		if (!format) {
			rc = cm_err_set(-EINVAL, "cannot tell the model format of %s/%s from its files; "
					"pass ?model_format=", model, served);
			goto done;
		}
	}
	snprintf(uri, sizeof(uri), "pvc://%s/%s/%s", pvc, model, served);
	meta = json_pack("{s:s s:{s:s} s:{s:s}}", "name", model, "labels",
			 "app.kubernetes.io/managed-by", "modelfs", "annotations",
			 "modelfs.io/current", cur->version);
	mod = json_pack("{s:{s:s} s:s}", "modelFormat", "name", format, "storageUri", uri);
	isvc = json_pack("{s:s s:s s:o s:{s:{s:o}}}", "apiVersion", "serving.kserve.io/v1beta1",
			 "kind", "InferenceService", "metadata", meta, "spec", "predictor", "model",
			 mod);
	if (!isvc) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (o && o->namespace_)
		json_object_set_new(meta, "namespace", json_string(o->namespace_));
	if (o && o->runtime)
		json_object_set_new(mod, "runtime", json_string(o->runtime));
	if (canary) {
		json_t *pred = json_object_get(json_object_get(isvc, "spec"), "predictor");

		json_object_set_new(json_object_get(meta, "annotations"), "modelfs.io/canary",
				    json_string(canary->version));
		json_object_set_new(pred, "canaryTrafficPercent",
				    json_integer(canary->percent >= 0 ? canary->percent : 0));
	}
	*out = isvc;
	isvc = NULL;
done:
	json_decref(isvc);
	reg_files_free(files, nf);
	free(a);
	return rc;
}

int reg_isvc_text(struct reg_store *st, const char *model, const struct reg_isvc_opts *o,
		  char **text, size_t *len)
{
	json_t *isvc = NULL;
	char *s, *t;
	size_t n;
	int rc = reg_isvc_render(st, model, o, &isvc);

	if (rc < 0)
		return rc;
	s = reg_json_dumps(isvc, JSON_COMPACT);
	json_decref(isvc);
	if (!s)
		return cm_err_set(-ENOMEM, "out of memory");
	n = strlen(s);
	t = realloc(s, n + 2);
	if (!t) {
		free(s);
		return cm_err_set(-ENOMEM, "out of memory");
	}
	t[n] = '\n';
	t[n + 1] = '\0';
	*text = t;
	*len = n + 1;
	return 0;
}
