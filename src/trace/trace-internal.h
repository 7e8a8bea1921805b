/* trace-internal.h: shared by src/trace/ files and its unit test. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "trace.h"

/* One row of a history snapshot, table trace or finished:
 * (path text, timestamp real, data text, directory text, name text). */
struct trace_row {
	char *path;
	double timestamp;
	char *data; /* payload (trace) or record JSON (finished); may be NULL */
	char *directory;
	char *name;
};

void trace_rows_free(struct trace_row *rows, size_t n);

/* "<app>#<digits>" with no ',' or '/'. */
bool trace_instanceid_ok(const char *s);

/* Build an SQLite DB with table `table` (+ name_idx, path_idx) holding
 * rows[0..n) and return it zlib-compressed (Python's zlib.compress format);
 * *ret is malloc'ed. */
int trace_snapshot_build(const char *table, const struct trace_row *rows, size_t n, unsigned char **ret,
			 size_t *ret_len);
/* Decompress a snapshot into an in-memory SQLite DB (close with sqlite3_close). */
int trace_snapshot_open(const void *data, size_t len, sqlite3 **ret);
