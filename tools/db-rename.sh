#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Renames raw SQLite calls in registry code to the backend boundary of
# registry/db.h (struct db_stmt, db_bind_*, db_col_*, db_reset, ...).
# A pure text transformation, idempotent: run it over the files given
# (e.g. tools/db-rename.sh registry/*.c) any number of times.
# What it cannot rename (sqlite3_prepare_v2, sqlite3_exec, sqlite3_step, raw
# handles) is left as is and fails to compile: move that SQL into
# REG_SQL_LIST in registry/reg_i.h and use DB_STMT/db_step instead.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }
for f in "$@"; do
	case "$f" in
	*/db_sqlite.c) continue ;; # the SQLite backend itself
	esac
	perl -0pi -e '
		s/\bsqlite3_stmt\s*\*/struct db_stmt */g;
		s/\bsqlite3_stmt\b/struct db_stmt/g;
		s/\bsqlite3_bind_int64\(/db_bind_int64(/g;
		s/\bsqlite3_bind_int\(/db_bind_int(/g;
		s/\bsqlite3_bind_double\(/db_bind_double(/g;
		s/\bsqlite3_bind_null\(/db_bind_null(/g;
		s/\bsqlite3_column_int64\(/db_col_int64(/g;
		s/\bsqlite3_column_int\(/db_col_int(/g;
		s/\bsqlite3_column_double\(/db_col_double(/g;
		s/\bsqlite3_column_type\(([^()]*)\)\s*==\s*SQLITE_NULL\b/db_col_null($1)/g;
		s/\bsqlite3_column_type\(([^()]*)\)\s*!=\s*SQLITE_NULL\b/!db_col_null($1)/g;
		s/\(const char \*\)\s*sqlite3_column_text\(/db_col_str(/g;
		s/\bsqlite3_column_text\(/db_col_ustr(/g;
		s/\bsqlite3_reset\(/db_reset(/g;
		s/\bsqlite3_changes\((\w+)->db\)/db_changes($1)/g;
		s/\bsqlite3_changes\((\w+)\.db\)/db_changes(&$1)/g;
		s/\bsqlite3_last_insert_rowid\((\w+)->db\)/db_last_id($1)/g;
		s/\bsqlite3_last_insert_rowid\((\w+)\.db\)/db_last_id(&$1)/g;
		s/^#include <sqlite3\.h>\n//mg;
	' "$f"
done
