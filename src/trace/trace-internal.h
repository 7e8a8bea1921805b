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

int trace_type_from_name(const char *s); /* -EINVAL if unknown */

/* Treadmill's prune_trace_evictions / prune_trace_service_events: per
 * instance, once max_evictions eviction events (pending "evicted",
 * scheduled "<host>:evicted") are counted newest first, delete every older
 * event except pending "...created"; keep only the newest
 * max_service_events service_running and service_exited events each per
 * (instance, uniqueid, service).  0 disables a rule.  Returns the number of
 * events deleted.  trace_compact runs it first with TRACE_PRUNE_MAX. */
#define TRACE_PRUNE_MAX 10
int trace_prune(struct store *s, size_t max_evictions, size_t max_service_events, struct error *err);
