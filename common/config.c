/* SPDX-License-Identifier: Apache-2.0 */
/* Table-driven configuration: flags, environment variables, defaults, help. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm.h"

static int set_value(const struct cm_opt *o, void *cfg, const char *v, const char *from)
{
	char *field = (char *)cfg + o->offset;
	char *end = NULL;
	long long x;

	switch (o->type) {
	case CM_OPT_STRING:
		*(const char **)field = v;
		return 0;
	case CM_OPT_BOOL:
		if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
			*(int *)field = 1;
		else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") ||
			 !strcmp(v, "off") || !v[0])
			*(int *)field = 0;
		else
			return cm_err_set(-EINVAL, "%s: '%s' is not a boolean (use true or false)", from, v);
		return 0;
	case CM_OPT_INT:
		errno = 0;
		x = strtoll(v, &end, 10);
		if (errno || end == v || *end)
			return cm_err_set(-EINVAL, "%s: '%s' is not a whole number", from, v);
		if (x < o->min || x > o->max)
			return cm_err_set(-EINVAL, "%s: %lld is outside %lld..%lld", from, x, o->min, o->max);
		*(long long *)field = x;
		return 0;
	}
	return cm_err_set(-EINVAL, "%s: bad option type", from);
}

int cm_config_parse(const struct cm_opt *opts, size_t n, void *cfg, int argc, char **argv)
{
	char from[128];
	int rc;

	for (size_t i = 0; i < n; i++) {
		const char *env = opts[i].env ? getenv(opts[i].env) : NULL;

		if (opts[i].def) {
			snprintf(from, sizeof(from), "default of --%s", opts[i].name);
			rc = set_value(&opts[i], cfg, opts[i].def, from);
			if (rc < 0)
				return rc;
		}
		if (env) {
			snprintf(from, sizeof(from), "%s", opts[i].env);
			rc = set_value(&opts[i], cfg, env, from);
			if (rc < 0)
				return rc;
		}
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a];
		const char *eq;
		const struct cm_opt *o = NULL;
		size_t len;

		if (strncmp(arg, "--", 2))
			return cm_err_set(-EINVAL, "unexpected argument '%s'", arg);
		arg += 2;
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		for (size_t i = 0; i < n && !o; i++)
			if (strlen(opts[i].name) == len && !strncmp(opts[i].name, arg, len))
				o = &opts[i];
		if (!o)
			return cm_err_set(-EINVAL, "unknown option '--%.*s' (see --help)", (int)len, arg);
		snprintf(from, sizeof(from), "--%s", o->name);
		if (o->type == CM_OPT_BOOL && !eq) {
			rc = set_value(o, cfg, "true", from);
		} else if (eq) {
			rc = set_value(o, cfg, eq + 1, from);
		} else {
			if (a + 1 >= argc)
				return cm_err_set(-EINVAL, "--%s needs a value (%s)", o->name,
						  o->metavar ? o->metavar : "VALUE");
			rc = set_value(o, cfg, argv[++a], from);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

void cm_config_help(const struct cm_opt *opts, size_t n, void *out_file)
{
	FILE *out = out_file;

	for (size_t i = 0; i < n; i++) {
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
			 opts[i].metavar ? opts[i].metavar : "");
		fprintf(out, "  %-28s %s", flag, opts[i].help);
		if (opts[i].def && opts[i].def[0])
			fprintf(out, " (default %s)", opts[i].def);
		if (opts[i].env)
			fprintf(out, " [$%s]", opts[i].env);
		fputc('\n', out);
	}
}

void cm_config_dump(const struct cm_opt *opts, size_t n, const void *cfg, void *out_file)
{
	FILE *out = out_file;

	for (size_t i = 0; i < n; i++) {
		const char *field = (const char *)cfg + opts[i].offset;

		switch (opts[i].type) {
		case CM_OPT_STRING: {
			const char *v = *(const char *const *)field;

			fprintf(out, "%s=%s\n", opts[i].name, v ? v : "");
			break;
		}
		case CM_OPT_BOOL:
			fprintf(out, "%s=%s\n", opts[i].name, *(const int *)field ? "true" : "false");
			break;
		case CM_OPT_INT:
			fprintf(out, "%s=%lld\n", opts[i].name, *(const long long *)field);
			break;
		}
	}
}
