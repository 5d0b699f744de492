// SPDX-License-Identifier: Apache-2.0
/*
 * The search filter language: a recursive-descent parser that compiles
 *
 *     expr   := term ("or" term)*
 *     term   := factor ("and" factor)*
 *     factor := "(" expr ")" | PATH OP VALUE
 *     OP     := = | != | < | <= | > | >=
 *     VALUE  := number | "string" | true | false
 *
 * into a SQL condition over versions v, models m and the leaf index
 * version_leaves. Values are never spliced into the SQL text: each becomes a
 * numbered parameter (?N) that the caller binds. The SQL text itself is made
 * only of fixed fragments chosen here, so it is safe to prepare; it is the
 * one place in registry/ that builds SQL at run time (with search.c's query
 * around it), and it stays portable (SQLite and PostgreSQL).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_i.h"

void flt_sql_free(struct flt_sql *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->np; i++)
		free(q->p[i].text);
	free(q->p);
	cm_buf_free(&q->sql);
	memset(q, 0, sizeof(*q));
}

int flt_sql_add(struct flt_sql *q, const char *text)
{
	if (cm_buf_append(&q->sql, text, strlen(text)) < 0)
		return cm_err_set(-ENOMEM, "out of memory building a query");
	return 0;
}

static int param_new(struct flt_sql *q, struct flt_param **out)
{
	if (q->np >= FLT_PARAMS_MAX)
		return cm_err_set(-E2BIG, "filter: too many comparisons (at most %d values)",
				  FLT_PARAMS_MAX);
	if (cm_grow(&q->p, &q->cap, q->np + 1, sizeof(*q->p), 16) < 0)
		return -ENOMEM;
	*out = &q->p[q->np++];
	memset(*out, 0, sizeof(**out));
	if (cm_buf_printf(&q->sql, "?%zu", q->np) < 0)
		return cm_err_set(-ENOMEM, "out of memory building a query");
	return 0;
}

int flt_param_text(struct flt_sql *q, const char *s)
{
	struct flt_param *p;
	char *copy = strdup(s);
	int rc;

	if (!copy)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = param_new(q, &p);
	if (rc < 0) {
		free(copy);
		return rc;
	}
	p->type = FLT_P_TEXT;
	p->text = copy;
	return 0;
}

int flt_param_real(struct flt_sql *q, double d)
{
	struct flt_param *p;
	int rc = param_new(q, &p);

	if (rc == 0) {
		p->type = FLT_P_REAL;
		p->real = d;
	}
	return rc;
}

int flt_param_int(struct flt_sql *q, int64_t i)
{
	struct flt_param *p;
	int rc = param_new(q, &p);

	if (rc == 0) {
		p->type = FLT_P_INT;
		p->i = i;
	}
	return rc;
}

int flt_path_ok(const char *path)
{
	size_t n = strlen(path), seg = 0;

	if (n == 0 || n > FLT_PATH_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)path[i];

		if (ch == '.') {
			if (seg == 0)
				return 0;
			seg = 0;
		} else if (isalnum(ch) || ch == '_' || ch == '-') {
			seg++;
		} else {
			return 0;
		}
	}
	return seg > 0;
}

/* ---- tokens ---- */

enum tok { T_END, T_LPAREN, T_RPAREN, T_AND, T_OR, T_PATH, T_OP, T_NUM, T_STR, T_BOOL };

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
static const char *const op_sql[] = { " = ", " <> ", " < ", " <= ", " > ", " >= " };
static const char *const op_text[] = { "=", "!=", "<", "<=", ">", ">=" };

struct lexer {
	const char *src;
	size_t pos;        /* next byte */
	/* the current token */
	enum tok t;
	size_t at;         /* its first byte */
	char *text;        /* path or string value (owned) */
	double num;
	int boolean;
	enum op op;
	int depth;
	struct flt_sql *q;
	int drive;            /* conjunct to compile as IN, or -1 */
	size_t nconj;         /* top-level leaf conjuncts seen so far */
	int in_top_term;      /* parsing a factor of the top-level term */
	struct flt_plan *plan;
};

static int lex_err(const struct lexer *l, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int lex_err(const struct lexer *l, size_t at, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	(void)l;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cm_err_set(-EINVAL, "filter: at position %zu: %s", at + 1, msg);
}

static const char *tok_word(enum tok t)
{
	switch (t) {
	case T_END:
		return "the end of the filter";
	case T_LPAREN:
		return "'('";
	case T_RPAREN:
		return "')'";
	case T_AND:
		return "'and'";
	case T_OR:
		return "'or'";
	case T_PATH:
		return "a field";
	case T_OP:
		return "an operator";
	case T_NUM:
		return "a number";
	case T_STR:
		return "a string";
	case T_BOOL:
		return "true/false";
	}
	return "?";
}

static int is_word(unsigned char ch)
{
	return isalnum(ch) || ch == '_' || ch == '-' || ch == '.';
}

/* Reads the next token into l. */
static int lex_next(struct lexer *l)
{
	const char *s = l->src;
	size_t i = l->pos;

	free(l->text);
	l->text = NULL;
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	l->at = i;
	if (!s[i]) {
		l->t = T_END;
	} else if (s[i] == '(' || s[i] == ')') {
		l->t = s[i] == '(' ? T_LPAREN : T_RPAREN;
		i++;
	} else if (strchr("=!<>", s[i])) {
		l->t = T_OP;
		if (s[i] == '=') {
			l->op = OP_EQ;
			i += s[i + 1] == '=' ? 2 : 1;
		} else if (s[i] == '!') {
			if (s[i + 1] != '=')
				return lex_err(l, i, "'!' must be followed by '=' (the operator is !=)");
			l->op = OP_NE;
			i += 2;
		} else if (s[i] == '<') {
			l->op = s[i + 1] == '=' ? OP_LE : OP_LT;
			i += s[i + 1] == '=' ? 2 : 1;
		} else {
			l->op = s[i + 1] == '=' ? OP_GE : OP_GT;
			i += s[i + 1] == '=' ? 2 : 1;
		}
	} else if (s[i] == '"') {
		struct cm_buf b = { 0 };

		for (i++;; i++) {
			char ch = s[i];

			if (!ch) {
				cm_buf_free(&b);
				return lex_err(l, l->at, "unterminated string (a closing \" is missing)");
			}
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (s[i + 1] != '"' && s[i + 1] != '\\') {
					cm_buf_free(&b);
					return lex_err(l, i, "only \\\" and \\\\ may be escaped in a string");
				}
				ch = s[++i];
			}
			if (cm_buf_append(&b, &ch, 1) < 0) {
				cm_buf_free(&b);
				return cm_err_set(-ENOMEM, "out of memory");
			}
		}
		i++;
		l->text = b.data ? b.data : strdup("");
		if (!l->text)
			return cm_err_set(-ENOMEM, "out of memory");
		l->t = T_STR;
	} else if (isdigit((unsigned char)s[i]) || ((s[i] == '-' || s[i] == '+' || s[i] == '.') &&
						    (isdigit((unsigned char)s[i + 1]) ||
						     (s[i + 1] == '.' && isdigit((unsigned char)s[i + 2]))))) {
		char *end;

		errno = 0;
		l->num = strtod(s + i, &end);
		if (end == s + i || errno == ERANGE || !isfinite(l->num))
			return lex_err(l, i, "not a number");
		if (is_word((unsigned char)*end) && *end != '.')
			return lex_err(l, i, "not a number: '%.*s'", (int)(end - (s + i) + 1), s + i);
		i = (size_t)(end - s);
		l->t = T_NUM;
	} else if (isalpha((unsigned char)s[i]) || s[i] == '_') {
		size_t start = i;

		while (is_word((unsigned char)s[i]))
			i++;
		l->text = strndup(s + start, i - start);
		if (!l->text)
			return cm_err_set(-ENOMEM, "out of memory");
		if (!strcmp(l->text, "and") || !strcmp(l->text, "AND")) {
			l->t = T_AND;
		} else if (!strcmp(l->text, "or") || !strcmp(l->text, "OR")) {
			l->t = T_OR;
		} else if (!strcmp(l->text, "true") || !strcmp(l->text, "false")) {
			l->t = T_BOOL;
			l->boolean = l->text[0] == 't';
		} else {
			if (!flt_path_ok(l->text))
				return lex_err(l, start, "'%s' is not a field or metadata path (dotted "
					       "names of letters, digits, '_' and '-')", l->text);
			l->t = T_PATH;
		}
	} else {
		return lex_err(l, i, "unexpected character '%c'", s[i]);
	}
	l->pos = i;
	return 0;
}

/* ---- fields ---- */

enum vtype { V_TEXT, V_NUM, V_TIME, V_BOOL, V_LEAF };

static const struct {
	const char *name;
	const char *column;
	enum vtype type;
} columns[] = {
	{ "name", "v.name", V_TEXT },
	{ "model", "m.name", V_TEXT },
	{ "state", "v.state", V_TEXT },
	{ "validation_status", "v.validation_status", V_TEXT },
	{ "git_commit", "v.git_commit", V_TEXT },
	{ "seq", "v.seq", V_NUM },
	{ "created_at", "v.created_at", V_TIME },
	{ "sealed_at", "v.sealed_at", V_TIME },
	{ "archived", NULL, V_BOOL },
};

static const char *value_word(enum tok t)
{
	return t == T_STR ? "a string" : t == T_NUM ? "a number" : "true/false";
}

/* PATH OP VALUE, the path already read (l->text, at path_at). */
static int comparison(struct lexer *l, char *path, size_t path_at)
{
	struct flt_sql *q = l->q;
	enum op op;
	size_t vat;
	int rc;

	rc = lex_next(l);
	if (rc < 0)
		return rc;
	if (l->t != T_OP)
		return lex_err(l, l->at, "expected an operator (= != < <= > >=) after '%s', found %s",
			       path, tok_word(l->t));
	op = l->op;
	rc = lex_next(l);
	if (rc < 0)
		return rc;
	vat = l->at;
	if (l->t != T_NUM && l->t != T_STR && l->t != T_BOOL)
		return lex_err(l, vat, "expected a value (a number, a \"string\" or true/false) after "
			       "'%s %s', found %s", path, op_text[op], tok_word(l->t));
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		if (strcmp(path, columns[i].name))
			continue;
		switch (columns[i].type) {
		case V_TEXT:
			if (l->t != T_STR)
				return lex_err(l, vat, "'%s' compares with a \"string\", not %s", path,
					       value_word(l->t));
			rc = flt_sql_add(q, "(");
			if (rc == 0)
				rc = flt_sql_add(q, columns[i].column);
			if (rc == 0)
				rc = flt_sql_add(q, op_sql[op]);
			if (rc == 0)
				rc = flt_param_text(q, l->text);
			return rc ? rc : flt_sql_add(q, ")");
		case V_NUM:
			if (l->t != T_NUM)
				return lex_err(l, vat, "'%s' compares with a number, not %s", path,
					       value_word(l->t));
			rc = flt_sql_add(q, "(");
			if (rc == 0)
				rc = flt_sql_add(q, columns[i].column);
			if (rc == 0)
				rc = flt_sql_add(q, op_sql[op]);
			if (rc == 0)
				rc = flt_param_real(q, l->num);
			return rc ? rc : flt_sql_add(q, ")");
		case V_TIME: {
			int64_t us;

			if (l->t != T_STR || cm_time_parse(l->text, &us) < 0)
				return lex_err(l, vat, "'%s' compares with an RFC 3339 time in quotes "
					       "(\"2026-01-31T12:00:00Z\")", path);
			rc = flt_sql_add(q, "(");
			if (rc == 0)
				rc = flt_sql_add(q, columns[i].column);
			if (rc == 0)
				rc = flt_sql_add(q, op_sql[op]);
			if (rc == 0)
				rc = flt_param_int(q, us);
			return rc ? rc : flt_sql_add(q, ")");
		}
		case V_BOOL:
			if (l->t != T_BOOL)
				return lex_err(l, vat, "'%s' compares with true or false, not %s", path,
					       value_word(l->t));
			if (op != OP_EQ && op != OP_NE)
				return lex_err(l, path_at, "'%s' takes = or !=, not %s", path,
					       op_text[op]);
			rc = flt_sql_add(q, "((CASE WHEN v.state = 'archived' THEN 1 ELSE 0 END)");
			if (rc == 0)
				rc = flt_sql_add(q, op_sql[op]);
			if (rc == 0)
				rc = flt_param_int(q, l->boolean);
			return rc ? rc : flt_sql_add(q, ")");
		case V_LEAF:
			break;
		}
	}
	/* A metadata leaf (tags.KEY, owner, description, performance_metrics.x, ...). */
	if (l->t == T_BOOL && op != OP_EQ && op != OP_NE)
		return lex_err(l, path_at, "true/false take = or !=, not %s", op_text[op]);
	if (l->t == T_NUM && (!strncmp(path, "tags.", 5) || !strcmp(path, "owner") ||
			      !strcmp(path, "description")))
		return lex_err(l, vat, "'%s' compares with a \"string\", not a number", path);
	{
		int drive = 0;

		if (l->depth == 0 && l->in_top_term) {
			drive = (int)l->nconj == l->drive;
			if (l->plan) {
				struct flt_conj *c;

				if (cm_grow(&l->plan->conj, &l->plan->cap, l->plan->n + 1,
					    sizeof(*c), 4) < 0)
					return -ENOMEM;
				c = &l->plan->conj[l->plan->n++];
				memset(c, 0, sizeof(*c));
				cm_strlcpy(c->path, path, sizeof(c->path));
				c->op = (int)op;
				c->is_num = l->t == T_NUM;
				c->num = l->num;
				c->text = l->t == T_NUM ? NULL
					  : strdup(l->t == T_BOOL ? (l->boolean ? "true" : "false")
								  : l->text);
				if (l->t != T_NUM && !c->text)
					return cm_err_set(-ENOMEM, "out of memory");
			}
			l->nconj++;
		}
		rc = flt_sql_add(q, drive ? "(v.id IN (SELECT version_id FROM version_leaves WHERE "
					    "path = "
					  : "(EXISTS (SELECT 1 FROM version_leaves l WHERE "
					    "l.version_id = v.id AND l.path = ");
	}
	if (rc == 0)
		rc = flt_param_text(q, path);
	if (rc == 0)
		rc = flt_sql_add(q, l->t == T_NUM ? " AND num" : " AND text");
	if (rc == 0)
		rc = flt_sql_add(q, op_sql[op]);
	if (rc == 0) {
		if (l->t == T_NUM)
			rc = flt_param_real(q, l->num);
		else if (l->t == T_BOOL)
			rc = flt_param_text(q, l->boolean ? "true" : "false");
		else
			rc = flt_param_text(q, l->text);
	}
	return rc ? rc : flt_sql_add(q, "))");
}

static int expr(struct lexer *l);

static int factor(struct lexer *l)
{
	int rc;

	if (l->t == T_LPAREN) {
		size_t open = l->at;

		if (++l->depth > 32)
			return lex_err(l, l->at, "parentheses nest too deep (at most 32)");
		rc = lex_next(l);
		if (rc == 0)
			rc = expr(l);
		if (rc < 0)
			return rc;
		if (l->t != T_RPAREN)
			return lex_err(l, l->at, "expected ')' to close the '(' at position %zu, found %s",
				       open + 1, tok_word(l->t));
		l->depth--;
		return lex_next(l);
	}
	if (l->t == T_PATH) {
		char *path = l->text;
		size_t at = l->at;

		l->text = NULL;
		rc = comparison(l, path, at);
		free(path);
		return rc < 0 ? rc : lex_next(l);
	}
	if (l->t == T_END)
		return lex_err(l, l->at, "expected a comparison (PATH OP VALUE) or '(', found the end "
			       "of the filter");
	return lex_err(l, l->at, "expected a comparison (PATH OP VALUE) or '(', found %s",
		       tok_word(l->t));
}

static int term(struct lexer *l)
{
	int rc = flt_sql_add(l->q, "(");

	if (rc == 0)
		rc = factor(l);
	while (rc == 0 && l->t == T_AND) {
		rc = flt_sql_add(l->q, " AND ");
		if (rc == 0)
			rc = lex_next(l);
		if (rc == 0)
			rc = factor(l);
	}
	return rc ? rc : flt_sql_add(l->q, ")");
}

static int expr(struct lexer *l)
{
	int top = l->depth == 0;
	int rc = flt_sql_add(l->q, "(");

	if (top)
		l->in_top_term = 1;
	if (rc == 0)
		rc = term(l);
	if (top)
		l->in_top_term = 0;
	while (rc == 0 && l->t == T_OR) {
		if (top && l->plan)
			l->plan->top_or = 1;
		rc = flt_sql_add(l->q, " OR ");
		if (rc == 0)
			rc = lex_next(l);
		if (rc == 0)
			rc = term(l);
	}
	return rc ? rc : flt_sql_add(l->q, ")");
}

void flt_plan_free(struct flt_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->conj[i].text);
	free(p->conj);
	memset(p, 0, sizeof(*p));
}

int flt_conj_count_sql(const struct flt_conj *c, int64_t cap, struct flt_sql *q)
{
	int rc = flt_sql_add(q, "SELECT count(*) FROM (SELECT 1 FROM version_leaves WHERE path = ");

	if (rc == 0)
		rc = flt_param_text(q, c->path);
	if (rc == 0)
		rc = flt_sql_add(q, c->is_num ? " AND num" : " AND text");
	if (rc == 0)
		rc = flt_sql_add(q, op_sql[c->op]);
	if (rc == 0)
		rc = c->is_num ? flt_param_real(q, c->num) : flt_param_text(q, c->text);
	if (rc == 0)
		rc = flt_sql_add(q, " LIMIT ");
	if (rc == 0)
		rc = flt_param_int(q, cap);
	return rc ? rc : flt_sql_add(q, ") x");
}

int flt_compile(const char *src, struct flt_sql *q, int drive, struct flt_plan *plan)
{
	struct lexer l = { .src = src, .q = q, .drive = drive, .plan = plan };
	int rc;

	if (strlen(src) > FLT_EXPR_MAX)
		return cm_err_set(-EINVAL, "filter: longer than %d bytes", FLT_EXPR_MAX);
	rc = lex_next(&l);
	if (rc == 0)
		rc = expr(&l);
	if (rc == 0 && l.t != T_END)
		rc = lex_err(&l, l.at, "expected 'and', 'or' or the end of the filter, found %s",
			     tok_word(l.t));
	free(l.text);
	return rc;
}

/* ---- sort ---- */

int flt_sort_parse(const char *sort, struct flt_sort *out)
{
	struct flt_sort s = { 0 };
	const char *name = sort;

	if (*name == '-') {
		s.desc = 1;
		name++;
	} else if (*name == '+') {
		name++;
	}
	if (!flt_path_ok(name))
		return cm_err_set(-EINVAL, "sort: '%s' is not a field or metadata path (a name like "
				  "created_at or performance_metrics.accuracy, '-' first for "
				  "descending)", sort);
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		if (strcmp(name, columns[i].name) || !columns[i].column)
			continue;
		s.column = columns[i].column;
		s.is_text = columns[i].type == V_TEXT;
		s.nullable = !strcmp(name, "sealed_at") || !strcmp(name, "validation_status") ||
			     !strcmp(name, "git_commit");
		*out = s;
		return 0;
	}
	if (!strcmp(name, "archived"))
		return cm_err_set(-EINVAL, "sort: 'archived' is not a sort key");
	cm_strlcpy(s.path, name, sizeof(s.path));
	s.leaf_text = !strncmp(name, "tags.", 5) || !strcmp(name, "owner") ||
		      !strcmp(name, "description");
	s.is_text = s.leaf_text;
	s.nullable = 1;
	*out = s;
	return 0;
}
