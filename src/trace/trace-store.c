/* trace-store.c: trace events in the store: publish (with /finished and the
 * guarded unschedule), read (live + history), compaction into snapshots. */
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>

#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "trace-internal.h"
#include "trace.h"

/* ---------------------------------------------------------------- publish */

int trace_publish(struct store *s, const struct trace_event *ev, const char *hostname)
{
	_cleanup_free_ char *name = NULL;
	const char *host = hostname ? hostname : ev ? ev->source : NULL;
	char shard[5];
	int r;

	if (!s || !ev)
		return -EINVAL;
	name = trace_node_name(ev, host);
	if (!name || trace_shard(ev->instanceid, shard) < 0)
		return -EINVAL;
	r = cellns_trace_create(s, shard, name, ev->payload);
	if (r < 0 && r != -EEXIST)
		return r;
	if (!trace_type_is_terminal(ev->type))
		return 0;
	r = cellns_finished_publish(s, ev->instanceid, trace_type_name(ev->type), ev->timestamp, host, ev->data);
	if (r < 0)
		return r;
	/* an event from a stale placement must not unschedule the app */
	return cellns_unschedule_if_placed(s, host, ev->instanceid);
}

/* ------------------------------------------------------------------- read */

struct evvec {
	struct trace_event *v;
	size_t n, cap;
};

static int evvec_push(struct evvec *e, struct trace_event *ev)
{
	if (e->n == e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 16;
		struct trace_event *nv = realloc(e->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		e->v = nv;
		e->cap = nc;
	}
	e->v[e->n++] = *ev;
	*ev = (struct trace_event){ 0 };
	return 0;
}

static int cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

/* By time; ties by host, type, data: a total order for dedup. */
static int cmp_event(const void *a, const void *b)
{
	const struct trace_event *x = a, *y = b;
	int c;

	if (x->timestamp < y->timestamp)
		return -1;
	if (x->timestamp > y->timestamp)
		return 1;
	/* same millisecond: lifecycle order (the enum's) before the source */
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if ((c = cmp_str(x->source, y->source)) != 0)
		return c;
	return cmp_str(x->data, y->data);
}

/* A query on one history snapshot, hd/name: the snapshot opened as an SQLite
 * DB, sql prepared with arg bound to ?1.  1 with *ret_db and *ret_st set (the
 * caller finalizes and closes), 0 to skip it (gone meanwhile: removed by a
 * concurrent cap; not a snapshot: skipped rather than fail every reader), or a
 * negative errno when the store fails. */
static int snapshot_query(struct store *s, enum cellns_dir hd, const char *name, const char *sql, const char *arg,
			  sqlite3 **ret_db, sqlite3_stmt **ret_st)
{
	_cleanup_free_ char *p = cellns_path(hd, name), *data = NULL;
	size_t len;
	int r;

	if (!p)
		return -ENOMEM;
	r = store_get(s, p, &data, &len, NULL, NULL, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (trace_snapshot_open(data, len, ret_db) < 0)
		return 0;
	if (sqlite3_prepare_v2(*ret_db, sql, -1, ret_st, NULL) != SQLITE_OK) {
		sqlite3_close(*ret_db);
		*ret_db = NULL;
		*ret_st = NULL;
		return 0;
	}
	sqlite3_bind_text(*ret_st, 1, arg, -1, SQLITE_TRANSIENT);
	return 1;
}

static int read_history(struct store *s, const char *instanceid, struct evvec *out)
{
	_cleanup_strv_free_ char **snaps = NULL;
	_cleanup_free_ char *glob = strdup_printf("%s,*", instanceid);
	int r;

	if (!glob)
		return -ENOMEM;
	r = cellns_list(s, CELLNS_TRACE_HISTORY, &snaps, NULL, NULL);
	if (r == -ENOENT)
		return 0;
	for (char **sn = snaps; r >= 0 && *sn; sn++) {
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;

		r = snapshot_query(s, CELLNS_TRACE_HISTORY, *sn, "SELECT name, data FROM trace WHERE name GLOB ?", glob,
				   &db, &st);
		while (r > 0 && sqlite3_step(st) == SQLITE_ROW) {
			struct trace_event ev;
			const char *name = (const char *)sqlite3_column_text(st, 0);
			const char *payload = (const char *)sqlite3_column_text(st, 1);

			if (!name || trace_parse_node(name, payload, &ev) < 0)
				continue;
			if (evvec_push(out, &ev) < 0) {
				trace_event_clear(&ev);
				r = -ENOMEM;
			}
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	return r < 0 ? r : 0;
}

int trace_read(struct store *s, const char *instanceid, struct trace_event **ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *dir = NULL, *prefix = NULL;
	struct evvec out = { 0 };
	char shard[5];
	size_t k = 0;
	int r;

	if (!s || !ret || !ret_n || !trace_instanceid_ok(instanceid))
		return -EINVAL;
	trace_shard(instanceid, shard);
	dir = cellns_trace_shard_path(shard);
	prefix = strdup_printf("%s,", instanceid);
	if (!dir || !prefix)
		return -ENOMEM;
	r = store_children(s, dir, &names, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	for (char **n = names; n && *n; n++) {
		_cleanup_free_ char *p = NULL, *data = NULL;
		struct trace_event ev;

		if (!startswith(*n, prefix))
			continue;
		p = strdup_printf("%s/%s", dir, *n);
		if (!p) {
			r = -ENOMEM;
			goto fail;
		}
		r = store_get(s, p, &data, NULL, NULL, NULL, NULL);
		if (r == -ENOENT)
			continue; /* compacted meanwhile: read from history below */
		if (r == -EIO)
			continue; /* a corrupt event node: the others still read ('treadle store fsck' lists it) */
		if (r < 0)
			goto fail;
		if (trace_parse_node(*n, data, &ev) < 0)
			continue;
		r = evvec_push(&out, &ev);
		if (r < 0) {
			trace_event_clear(&ev);
			goto fail;
		}
	}
	/* Only instances gone from /scheduled are archived, and ids are never
	 * reused: if it is still scheduled now, it was while the live events
	 * were read, so no compaction could have moved any of them. */
	r = cellns_scheduled_exists(s, instanceid, NULL, NULL);
	if (r == -ENOENT)
		r = read_history(s, instanceid, &out);
	if (r < 0)
		goto fail;
	/* numeric time order (Treadmill sorts the name strings); drop
	 * duplicates (an event both live and in a snapshot after a crash) */
	if (out.n)
		qsort(out.v, out.n, sizeof(*out.v), cmp_event);
	for (size_t i = 0; i < out.n; i++) {
		if (k > 0 && cmp_event(&out.v[k - 1], &out.v[i]) == 0) {
			trace_event_clear(&out.v[i]);
			continue;
		}
		if (k != i)
			out.v[k] = out.v[i];
		k++;
	}
	*ret = out.v;
	*ret_n = k;
	return 0;
fail:
	trace_events_free(out.v, out.n);
	return r;
}

/* ---------------------------------------------------------------- compact */

#define COMPACT_BATCH 5000
#define HISTORY_KEEP 100

static int cmp_row(const void *a, const void *b)
{
	const struct trace_row *x = a, *y = b;

	if (x->timestamp != y->timestamp)
		return x->timestamp < y->timestamp ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Upload rows[0..n) as one or more snapshots under `hdir`/`prefix`NNNNNNNNNN,
 * each under STORE_MAX_DATA, deleting the live nodes of each uploaded part. */
static int upload_rows(struct store *s, const char *hdir, const char *prefix, const char *table, struct trace_row *rows,
		       size_t n, struct error *err)
{
	_cleanup_free_ unsigned char *blob = NULL;
	_cleanup_free_ char *base = NULL;
	size_t len = 0;
	int r;

	if (n == 0)
		return 0;
	r = trace_snapshot_build(table, rows, n, &blob, &len);
	if (r < 0)
		return error_sys(err, -r, "building %s snapshot", table);
	if (len > STORE_MAX_DATA) {
		size_t half = n / 2;

		if (n == 1)
			return error_set(err, ERR_PERM, E2BIG, "%s: a single event is larger than a store node", rows[0].path);
		free(TAKE_PTR(blob));
		r = upload_rows(s, hdir, prefix, table, rows, half, err);
		if (r < 0)
			return r;
		return upload_rows(s, hdir, prefix, table, rows + half, n - half, err);
	}
	base = strdup_printf("%s/%s", hdir, prefix);
	if (!base)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	r = store_create(s, base, blob, len, STORE_SEQUENTIAL, NULL);
	if (r == -ENOENT) {
		r = store_create_p(s, hdir);
		if (r < 0 && r != -EEXIST)
			return error_set(err, ERR_TEMP, -r, "creating %s: %s", hdir, store_strerror(r));
		r = store_create(s, base, blob, len, STORE_SEQUENTIAL, NULL);
	}
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "storing %s snapshot: %s", hdir, store_strerror(r));
	for (size_t i = 0; i < n; i++) {
		r = store_delete(s, rows[i].path, -1);
		if (r < 0 && r != -ENOENT)
			return error_set(err, ERR_TEMP, -r, "deleting %s: %s", rows[i].path, store_strerror(r));
	}
	return 0;
}

static int upload_all(struct store *s, const char *hdir, const char *prefix, const char *table, struct trace_row *rows,
		      size_t n, struct error *err)
{
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_row);
	for (size_t i = 0; i < n; i += COMPACT_BATCH) {
		int r = upload_rows(s, hdir, prefix, table, rows + i, MIN((size_t)COMPACT_BATCH, n - i), err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The children of dir; a missing dir is empty (*ret NULL). */
static int list_dir(struct store *s, const char *dir, char ***ret, struct error *err)
{
	int r = store_children(s, dir, ret, NULL, NULL);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	return r < 0 ? error_set(err, ERR_TEMP, -r, "listing %s: %s", dir, store_strerror(r)) : 0;
}

static int cap_history(struct store *s, enum cellns_dir hd, struct error *err)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n;
	int r;

	r = list_dir(s, cellns_dir(hd), &names, err);
	if (r < 0)
		return r;
	n = strv_length(names);
	/* sequential names sort by their 10-digit counter */
	for (size_t i = 0; n > HISTORY_KEEP && i < n - HISTORY_KEEP; i++) {
		_cleanup_free_ char *p = cellns_path(hd, names[i]);
		if (!p)
			return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
		r = store_delete(s, p, -1);
		if (r < 0 && r != -ENOENT)
			return error_set(err, ERR_TEMP, -r, "deleting %s: %s", p, store_strerror(r));
	}
	return 0;
}

struct rowvec {
	struct trace_row *v;
	size_t n, cap;
};

static int rowvec_add(struct rowvec *rv, const char *dir, const char *name, double ts, const char *data)
{
	struct trace_row *r;

	if (rv->n == rv->cap) {
		size_t nc = rv->cap ? rv->cap * 2 : 64;
		struct trace_row *nv = realloc(rv->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		rv->v = nv;
		rv->cap = nc;
	}
	r = &rv->v[rv->n];
	*r = (struct trace_row){
		.path = strdup_printf("%s/%s", dir, name),
		.timestamp = ts,
		.data = data ? strdup(data) : NULL,
		.directory = strdup(dir),
		.name = strdup(name),
	};
	rv->n++;
	if (!r->path || !r->directory || !r->name || (data && !r->data))
		return -ENOMEM;
	return 0;
}

/* Add dir/name to rv with timestamp ts, or with NAN its mtime when older than
 * cutoff.  Gone or corrupt nodes are skipped (EIO: left for fsck, the rest is
 * compacted). */
static int collect_row(struct store *s, const char *dir, const char *name, double ts, double cutoff, struct rowvec *rv,
		       struct error *err)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, name), *data = NULL;
	struct store_stat st;
	int r;

	if (!p)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	r = store_get(s, p, &data, NULL, &st, NULL, NULL);
	if (r == -ENOENT || r == -EIO)
		return 0;
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "reading %s: %s", p, store_strerror(r));
	if (isnan(ts)) {
		ts = (double)st.mtime_ms / 1000.0;
		if (ts >= cutoff)
			return 0;
	} else if (data && !*data) {
		free(TAKE_PTR(data)); /* an event without payload: NULL in the snapshot */
	}
	if (rowvec_add(rv, dir, name, ts, data) < 0)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	return 0;
}

/* Upload what was collected (unless r < 0) into the history directory hd. */
static int upload_collected(struct store *s, enum cellns_dir hd, const char *prefix, const char *table,
			    struct rowvec *rv, int r, struct error *err)
{
	if (r >= 0)
		r = upload_all(s, cellns_dir(hd), prefix, table, rv->v, rv->n, err);
	trace_rows_free(rv->v, rv->n);
	return r;
}

static int compact_trace(struct store *s, double cutoff, struct error *err)
{
	_cleanup_strv_free_ char **scheduled = NULL, **shards = NULL;
	struct rowvec rv = { 0 };
	int r;

	r = list_dir(s, cellns_dir(CELLNS_SCHEDULED), &scheduled, err);
	if (r >= 0)
		r = list_dir(s, cellns_dir(CELLNS_TRACE), &shards, err);
	if (r < 0)
		return r;
	for (char **sh = shards; sh && *sh && r >= 0; sh++) {
		_cleanup_strv_free_ char **names = NULL;
		_cleanup_free_ char *dir = cellns_trace_shard_path(*sh);

		r = dir ? list_dir(s, dir, &names, err) : error_set(err, ERR_TEMP, ENOMEM, "out of memory");
		for (char **n = names; n && *n && r >= 0; n++) {
			struct trace_event ev;
			double ts;
			bool keep;

			if (trace_parse_node(*n, NULL, &ev) < 0)
				continue; /* not ours: leave it */
			keep = ev.timestamp >= cutoff || (scheduled && strv_contains(scheduled, ev.instanceid));
			ts = ev.timestamp;
			trace_event_clear(&ev);
			if (!keep)
				r = collect_row(s, dir, *n, ts, cutoff, &rv, err);
		}
	}
	return upload_collected(s, CELLNS_TRACE_HISTORY, CELLNS_TRACE_SNAPSHOT_PREFIX, "trace", &rv, r, err);
}

static int compact_finished(struct store *s, double cutoff, struct error *err)
{
	_cleanup_strv_free_ char **names = NULL;
	struct rowvec rv = { 0 };
	const char *dir = cellns_dir(CELLNS_FINISHED);
	int r;

	r = list_dir(s, dir, &names, err);
	for (char **n = names; n && *n && r >= 0; n++)
		r = collect_row(s, dir, *n, NAN, cutoff, &rv, err);
	return upload_collected(s, CELLNS_FINISHED_HISTORY, CELLNS_FINISHED_SNAPSHOT_PREFIX, "finished", &rv, r,
				err);
}

/* ------------------------------------------------------------------ prune */

struct pev {
	char *name; /* node name */
	struct trace_event ev;
	char *svc;  /* "<uniqueid>.<service>" of service events, else NULL */
};

static bool is_eviction(const struct trace_event *ev)
{
	const char *d = ev->data ? ev->data : "";

	if (ev->type == TRACE_PENDING)
		return strcmp(d, "evicted") == 0;
	if (ev->type == TRACE_SCHEDULED) {
		const char *c = strrchr(d, ':');
		return c && strcmp(c + 1, "evicted") == 0;
	}
	return false;
}

/* By instance, then newest first. */
static int cmp_pev_inst(const void *a, const void *b)
{
	const struct pev *x = a, *y = b;
	int c = strcmp(x->ev.instanceid, y->ev.instanceid);

	if (c)
		return c;
	return x->ev.timestamp > y->ev.timestamp ? -1 : x->ev.timestamp < y->ev.timestamp ? 1 : strcmp(x->name, y->name);
}

/* By instance, service key, type, then newest first. */
static int cmp_pev_svc(const void *a, const void *b)
{
	const struct pev *x = a, *y = b;
	int c = strcmp(x->ev.instanceid, y->ev.instanceid);

	if (c)
		return c;
	if ((c = cmp_str(x->svc, y->svc)) != 0)
		return c;
	if (x->ev.type != y->ev.type)
		return x->ev.type < y->ev.type ? -1 : 1;
	return x->ev.timestamp > y->ev.timestamp ? -1 : x->ev.timestamp < y->ev.timestamp ? 1 : strcmp(x->name, y->name);
}

static int delete_event(struct store *s, const char *dir, const char *name, size_t *deleted, struct error *err)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
	int r;

	if (!p)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	r = store_delete(s, p, -1);
	if (r < 0 && r != -ENOENT)
		return error_set(err, ERR_TEMP, -r, "deleting %s: %s", p, store_strerror(r));
	(*deleted)++;
	return 0;
}

static int prune_shard(struct store *s, const char *dir, size_t max_evictions, size_t max_service, size_t *deleted,
		       struct error *err)
{
	_cleanup_strv_free_ char **names = NULL;
	struct pev *v = NULL;
	size_t n = 0, cap;
	int r;

	r = list_dir(s, dir, &names, err);
	if (r < 0 || !names)
		return r;
	cap = strv_length(names);
	v = calloc(cap ? cap : 1, sizeof(*v));
	if (!v)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	for (char **nm = names; *nm; nm++) {
		struct pev *e = &v[n];

		if (trace_parse_node(*nm, NULL, &e->ev) < 0)
			continue;
		e->name = *nm;
		if (e->ev.type == TRACE_SERVICE_RUNNING)
			e->svc = strdup(e->ev.data);
		else if (e->ev.type == TRACE_SERVICE_EXITED) {
			/* "<uniqueid>.<service>.<rc>.<signal>": the service may hold dots */
			char *d = strdup(e->ev.data), *dot;
			for (int k = 0; d && k < 2 && (dot = strrchr(d, '.')); k++)
				*dot = 0;
			e->svc = d;
		}
		n++;
	}
	r = 0;
	if (max_evictions) {
		size_t count = 0;

		qsort(v, n, sizeof(*v), cmp_pev_inst);
		for (size_t i = 0; i < n && r >= 0; i++) {
			if (i == 0 || strcmp(v[i].ev.instanceid, v[i - 1].ev.instanceid) != 0)
				count = 0;
			if (count >= max_evictions && !(v[i].ev.type == TRACE_PENDING && v[i].ev.data &&
							 strstr(v[i].ev.data, "created"))) {
				r = delete_event(s, dir, v[i].name, deleted, err);
				v[i].name = NULL; /* gone: not counted below */
				continue;
			}
			if (is_eviction(&v[i].ev))
				count++;
		}
	}
	if (max_service && r >= 0) {
		size_t count = 0;

		qsort(v, n, sizeof(*v), cmp_pev_svc);
		for (size_t i = 0; i < n && r >= 0; i++) {
			bool same = i > 0 && v[i - 1].svc && v[i].svc &&
				    strcmp(v[i].ev.instanceid, v[i - 1].ev.instanceid) == 0 &&
				    strcmp(v[i].svc, v[i - 1].svc) == 0 && v[i].ev.type == v[i - 1].ev.type;

			if (!same)
				count = 0;
			if (!v[i].svc || !v[i].name)
				continue;
			if (++count > max_service)
				r = delete_event(s, dir, v[i].name, deleted, err);
		}
	}
	for (size_t i = 0; i < n; i++) {
		trace_event_clear(&v[i].ev);
		free(v[i].svc);
	}
	free(v);
	return r;
}

/* Treadmill's prune_trace_evictions / prune_trace_service_events: per
 * instance, once max_evictions eviction events (pending "evicted",
 * scheduled "<host>:evicted") are counted newest first, delete every older
 * event except pending "...created"; keep only the newest
 * max_service_events service_running and service_exited events each per
 * (instance, uniqueid, service).  0 disables a rule.  Returns the number of
 * events deleted.  trace_compact runs it first with TRACE_PRUNE_MAX. */
#define TRACE_PRUNE_MAX 10
static int trace_prune(struct store *s, size_t max_evictions, size_t max_service_events, struct error *err)
{
	_cleanup_strv_free_ char **shards = NULL;
	size_t deleted = 0;
	int r;

	if (!s)
		return error_set(err, ERR_USAGE, EINVAL, "trace_prune: no store");
	r = list_dir(s, cellns_dir(CELLNS_TRACE), &shards, err);
	if (r < 0)
		return r;
	for (char **sh = shards; sh && *sh; sh++) {
		_cleanup_free_ char *dir = cellns_trace_shard_path(*sh);

		if (!dir)
			return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
		r = prune_shard(s, dir, max_evictions, max_service_events, &deleted, err);
		if (r < 0)
			return r;
	}
	return (int)MIN(deleted, (size_t)INT32_MAX);
}

int trace_compact(struct store *s, double now, double expire_s, struct error *err)
{
	double cutoff = now - expire_s;
	int r;

	if (!s)
		return error_set(err, ERR_USAGE, EINVAL, "trace_compact: no store");
	r = trace_prune(s, TRACE_PRUNE_MAX, TRACE_PRUNE_MAX, err);
	if (r < 0)
		return error_prefix(err, "pruning /trace");
	r = compact_trace(s, cutoff, err);
	if (r < 0)
		return error_prefix(err, "compacting /trace");
	r = compact_finished(s, cutoff, err);
	if (r < 0)
		return error_prefix(err, "compacting /finished");
	r = cap_history(s, CELLNS_TRACE_HISTORY, err);
	if (r < 0)
		return r;
	return cap_history(s, CELLNS_FINISHED_HISTORY, err);
}

json_t *trace_instance_json(const struct cellns_instance *in)
{
	const struct cellns_finished *f = &in->finished;
	int64_t rc, sig;
	json_t *e;

	if (in->state != CELLNS_INSTANCE_FINISHED)
		return json_pack("{s:s, s:s, s:s?}", "name", in->name, "state", cellns_instance_state_name(in->state), "host",
				 in->host);
	e = json_pack("{s:s, s:s, s:s?, s:f}", "name", in->name, "state", f->state, "host", f->host, "when", f->when);
	if (e && f->data && strcmp(f->state, "finished") == 0) {
		trace_data_exit(f->data, &rc, &sig);
		json_object_set_new(e, "exitcode", json_integer(rc));
		json_object_set_new(e, "signal", json_integer(sig));
	} else if (e && f->data) {
		json_object_set_new(e, "data", json_string(f->data));
		if (strcmp(f->state, "aborted") == 0)
			json_object_set_new(e, "aborted_reason", json_string(f->data));
		if (strcmp(f->state, "killed") == 0)
			json_object_set_new(e, "oom", json_boolean(strcmp(f->data, "oom") == 0));
	}
	return e;
}
