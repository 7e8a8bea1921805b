/* trace.c: app trace events: types, name encodings, shards, node-local spool
 * files and the SQLite+zlib history snapshot format (no store access). */
#include <math.h>
#include <sqlite3.h>
#include <string.h>
#include <zlib.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "trace-internal.h"
#include "trace.h"

static const char *const type_names[_TRACE_TYPE_MAX] = {
	[TRACE_PENDING] = "pending",
	[TRACE_PENDING_DELETE] = "pending_delete",
	[TRACE_SCHEDULED] = "scheduled",
	[TRACE_DELETED] = "deleted",
	[TRACE_CONFIGURED] = "configured",
	[TRACE_SERVICE_RUNNING] = "service_running",
	[TRACE_SERVICE_EXITED] = "service_exited",
	[TRACE_FINISHED] = "finished",
	[TRACE_ABORTED] = "aborted",
	[TRACE_KILLED] = "killed",
};

const char *trace_type_name(enum trace_type t)
{
	return (unsigned)t < _TRACE_TYPE_MAX ? type_names[t] : NULL;
}

static int trace_type_from_name(const char *s)
{
	if (!s)
		return -EINVAL;
	for (int i = 0; i < _TRACE_TYPE_MAX; i++)
		if (strcmp(type_names[i], s) == 0)
			return i;
	return -EINVAL;
}

bool trace_type_is_terminal(enum trace_type t)
{
	return t == TRACE_FINISHED || t == TRACE_ABORTED || t == TRACE_KILLED;
}

void trace_event_clear(struct trace_event *ev)
{
	if (!ev)
		return;
	free(ev->source);
	free(ev->instanceid);
	free(ev->data);
	free(ev->payload);
	*ev = (struct trace_event){ 0 };
}

void trace_events_free(struct trace_event *evs, size_t n)
{
	if (!evs)
		return;
	for (size_t i = 0; i < n; i++)
		trace_event_clear(&evs[i]);
	free(evs);
}

void trace_data_exit(const char *data, int64_t *ret_rc, int64_t *ret_signal)
{
	const char *dot = data ? strchr(data, '.') : NULL;
	_cleanup_free_ char *rc = data ? strndup(data, dot ? (size_t)(dot - data) : strlen(data)) : NULL;

	*ret_rc = *ret_signal = -1;
	if (!rc || safe_atoi64(rc, ret_rc) < 0)
		*ret_rc = -1;
	if (dot && safe_atoi64(dot + 1, ret_signal) < 0)
		*ret_signal = -1;
}

int trace_data_service(const char *data, bool exited, char **ret_uniqueid, char **ret_service, int64_t *ret_rc,
		       int64_t *ret_signal)
{
	const char *dot = strchr(data, '.');
	_cleanup_free_ char *uniq = dot ? strndup(data, (size_t)(dot - data)) : strdup(data);
	_cleanup_free_ char *rest = strdup(dot ? dot + 1 : "");

	if (!uniq || !rest)
		return -ENOMEM;
	*ret_rc = *ret_signal = -1;
	if (exited) {
		char *p2 = strrchr(rest, '.'), *p1;

		if (p2) {
			*p2 = 0;
			if (safe_atoi64(p2 + 1, ret_signal) < 0)
				*ret_signal = -1;
			p1 = strrchr(rest, '.');
			if (p1) {
				*p1 = 0;
				if (safe_atoi64(p1 + 1, ret_rc) < 0)
					*ret_rc = -1;
			}
		}
	}
	*ret_uniqueid = TAKE_PTR(uniq);
	*ret_service = TAKE_PTR(rest);
	return 0;
}

int trace_shard(const char *instanceid, char ret[5])
{
	const char *h = instanceid ? strrchr(instanceid, '#') : NULL;
	unsigned m = 0;

	if (!h || !h[1] || strspn(h + 1, "0123456789") != strlen(h + 1))
		return -EINVAL;
	/* int(seq) % 256 without overflow for any number of digits */
	for (const char *p = h + 1; *p; p++)
		m = (m * 10 + (unsigned)(*p - '0')) % 256;
	snprintf(ret, 5, "%04X", m);
	return 0;
}

/* An instance id usable in names: "<app>#<digits>", no ',' or '/'. */
bool trace_instanceid_ok(const char *s)
{
	char shard[5];

	return s && *s && !strpbrk(s, ",/") && s[0] != '.' && trace_shard(s, shard) == 0;
}

static bool data_ok(const char *s)
{
	return !s || !strchr(s, '/');
}

/* ------------------------------------------------------------ spool files */

int trace_post_file(const char *dir, double ts, const char *instanceid, enum trace_type type, const char *data,
		    const char *payload)
{
	_cleanup_free_ char *path = NULL;
	const char *tn = trace_type_name(type);

	if (!dir || !tn || !trace_instanceid_ok(instanceid) || !data_ok(data) || !isfinite(ts) || ts < 0)
		return -EINVAL;
	{
		_cleanup_free_ char *prefix = strdup_printf("%.3f,%s,%s,", ts, instanceid, tn);
		int room;

		if (!prefix)
			return -ENOMEM;
		room = TRACE_NAME_MAX - (int)strlen(prefix);
		if (room < 0)
			return -ENAMETOOLONG;
		/* a name is one path component: cut the data, the payload keeps details */
		path = strdup_printf("%s/%s%.*s", dir, prefix, room, data ? data : "");
		if (!path)
			return -ENOMEM;
	}
	return write_file_atomic(path, payload ? payload : "", payload ? strlen(payload) : 0, 0644);
}

/* Split s at the first n-1 commas into parts[0..n-1] (copies). */
static int split_commas(const char *s, char **parts, size_t n)
{
	const char *p = s;

	for (size_t i = 0; i < n; i++) {
		const char *c = i + 1 < n ? strchr(p, ',') : NULL;

		if (i + 1 < n && !c)
			goto fail;
		parts[i] = c ? strndup(p, (size_t)(c - p)) : strdup(p);
		if (!parts[i])
			goto fail;
		if (c)
			p = c + 1;
	}
	return 0;
fail:
	for (size_t i = 0; i < n; i++) {
		free(parts[i]);
		parts[i] = NULL;
	}
	return -EINVAL;
}

static int parse_ts(const char *s, double *ret)
{
	double d;

	/* bounded: a timestamp of any length would not fit an event name */
	if (parse_timestamp(s, &d) < 0)
		return -EINVAL;
	*ret = d;
	return 0;
}

int trace_parse_file(const char *name, const char *payload, struct trace_event *ev)
{
	char *parts[4] = { 0 };
	struct trace_event e = { 0 };
	int t;

	if (!name || !ev || split_commas(name, parts, 4) < 0)
		return -EINVAL;
	t = trace_type_from_name(parts[2]);
	if (t < 0 || parse_ts(parts[0], &e.timestamp) < 0 || !trace_instanceid_ok(parts[1]))
		goto fail;
	e.instanceid = parts[1];
	e.type = (enum trace_type)t;
	e.data = parts[3];
	e.payload = payload && *payload ? strdup(payload) : NULL;
	if (payload && *payload && !e.payload)
		goto fail;
	free(parts[0]);
	free(parts[2]);
	*ev = e;
	return 0;
fail:
	for (size_t i = 0; i < 4; i++)
		free(parts[i]);
	return -EINVAL;
}

char *trace_node_name(const struct trace_event *ev, const char *hostname)
{
	const char *tn = ev ? trace_type_name(ev->type) : NULL;
	const char *host = hostname ? hostname : ev ? ev->source : NULL;

	if (!tn || !trace_instanceid_ok(ev->instanceid) || !host || !*host || strpbrk(host, ",/") || !data_ok(ev->data) ||
	    !isfinite(ev->timestamp) || ev->timestamp < 0)
		return NULL;
	_cleanup_free_ char *prefix = strdup_printf("%s,%.3f,%s,%s,", ev->instanceid, ev->timestamp, host, tn);
	int room;

	if (!prefix)
		return NULL;
	room = TRACE_NAME_MAX - (int)strlen(prefix);
	if (room < 0)
		return NULL;
	return strdup_printf("%s%.*s", prefix, room, ev->data ? ev->data : "");
}

int trace_parse_node(const char *name, const char *payload, struct trace_event *ev)
{
	char *parts[5] = { 0 };
	struct trace_event e = { 0 };
	int t;

	if (!name || !ev || split_commas(name, parts, 5) < 0)
		return -EINVAL;
	t = trace_type_from_name(parts[3]);
	if (t < 0 || !trace_instanceid_ok(parts[0]) || parse_ts(parts[1], &e.timestamp) < 0 || !*parts[2])
		goto fail;
	e.instanceid = parts[0];
	e.source = parts[2];
	e.type = (enum trace_type)t;
	e.data = parts[4];
	e.payload = payload && *payload ? strdup(payload) : NULL;
	if (payload && *payload && !e.payload)
		goto fail;
	free(parts[1]);
	free(parts[3]);
	*ev = e;
	return 0;
fail:
	for (size_t i = 0; i < 5; i++)
		free(parts[i]);
	return -EINVAL;
}

/* ------------------------------------------------------- sqlite snapshots */

#define SNAPSHOT_SCHEMA                                                                                         \
	"CREATE TABLE %s (path text, timestamp real, data text, directory text, name text);"                    \
	"CREATE INDEX name_idx ON %s (name);"                                                                   \
	"CREATE INDEX path_idx ON %s (path);"

void trace_rows_free(struct trace_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		free(rows[i].path);
		free(rows[i].data);
		free(rows[i].directory);
		free(rows[i].name);
	}
	free(rows);
}

int trace_snapshot_build(const char *table, const struct trace_row *rows, size_t n, unsigned char **ret, size_t *ret_len)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	_cleanup_free_ char *schema = NULL, *ins = NULL;
	unsigned char *raw = NULL, *out = NULL;
	sqlite3_int64 rawlen = 0;
	uLongf outlen;
	int r = -EIO;

	schema = strdup_printf(SNAPSHOT_SCHEMA, table, table, table);
	ins = strdup_printf("INSERT INTO %s (path, timestamp, data, directory, name) VALUES (?, ?, ?, ?, ?)", table);
	if (!schema || !ins)
		return -ENOMEM;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, ins, -1, &st, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, rows[i].path, -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 2, rows[i].timestamp);
		if (rows[i].data)
			sqlite3_bind_text(st, 3, rows[i].data, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 3);
		sqlite3_bind_text(st, 4, rows[i].directory, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, rows[i].name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	raw = sqlite3_serialize(db, "main", &rawlen, 0);
	if (!raw || rawlen <= 0)
		goto out;
	outlen = compressBound((uLong)rawlen);
	out = malloc(outlen);
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	if (compress2(out, &outlen, raw, (uLong)rawlen, Z_BEST_COMPRESSION) != Z_OK)
		goto out;
	*ret = TAKE_PTR(out);
	*ret_len = outlen;
	r = 0;
out:
	free(out);
	sqlite3_free(raw);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

int trace_snapshot_open(const void *data, size_t len, sqlite3 **ret)
{
	z_stream zs = { 0 };
	unsigned char *buf = NULL;
	size_t cap = len * 4 + 4096, used = 0;
	sqlite3 *db = NULL;
	int zr;

	if (inflateInit(&zs) != Z_OK)
		return -ENOMEM;
	zs.next_in = (unsigned char *)data;
	zs.avail_in = (uInt)len;
	for (;;) {
		unsigned char *nb;

		if (cap > (size_t)1 << 31) {
			zr = Z_MEM_ERROR;
			break;
		}
		nb = sqlite3_realloc64(buf, cap);
		if (!nb) {
			zr = Z_MEM_ERROR;
			break;
		}
		buf = nb;
		zs.next_out = buf + used;
		zs.avail_out = (uInt)(cap - used);
		zr = inflate(&zs, Z_NO_FLUSH);
		used = cap - zs.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			break;
		if (zr == Z_BUF_ERROR && zs.avail_in == 0)
			break; /* truncated */
		cap *= 2;
	}
	inflateEnd(&zs);
	if (zr != Z_STREAM_END || used == 0) {
		sqlite3_free(buf);
		return -EBADMSG;
	}
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		sqlite3_free(buf);
		sqlite3_close(db);
		return -ENOMEM;
	}
	if (sqlite3_deserialize(db, "main", buf, (sqlite3_int64)used, (sqlite3_int64)cap,
				SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) != SQLITE_OK) {
		sqlite3_close(db);
		return -EBADMSG;
	}
	*ret = db;
	return 0;
}

