/* Unit tests of src/trace: encodings, spool files, shards, snapshots; and,
 * against the real embedded store, publish / read / compaction. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/trace/trace-internal.h"
#include "../../src/trace/trace.h"

/* The /finished record of an instance in the newest /finished.history
 * snapshot (the JSON text), as FORMATS.md gives the table. */
static int finished_history(struct store *s, const char *inst, char **ret)
{
	_cleanup_strv_free_ char **snaps = NULL;
	_cleanup_free_ char *p = NULL, *data = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t len;
	int r = store_children(s, "/finished.history", &snaps, NULL, NULL);

	if (r < 0 || !snaps[0])
		return -ENOENT;
	p = strdup_printf("/finished.history/%s", snaps[strv_length(snaps) - 1]);
	if (!p || store_get(s, p, &data, &len, NULL, NULL, NULL) < 0 || trace_snapshot_open(data, len, &db) < 0)
		return -EIO;
	r = -ENOENT;
	if (sqlite3_prepare_v2(db, "SELECT data FROM finished WHERE name = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, inst, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
			*ret = strdup((const char *)sqlite3_column_text(st, 0));
			r = *ret ? 0 : -ENOMEM;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

static void test_type_names(void **state)
{
	for (int t = 0; t < _TRACE_TYPE_MAX; t++) {
		struct trace_event ev = { .timestamp = 1, .instanceid = "p.a#0000000001", .type = t, .data = "" }, out;
		_cleanup_free_ char *name = trace_node_name(&ev, "h");

		assert_non_null(trace_type_name(t));
		assert_int_equal(trace_parse_node(name, NULL, &out), 0); /* the type read back from its name */
		assert_int_equal(out.type, t);
		trace_event_clear(&out);
	}
	assert_string_equal(trace_type_name(TRACE_SERVICE_EXITED), "service_exited");
	assert_string_equal(trace_type_name(TRACE_PENDING_DELETE), "pending_delete");
	{
		struct trace_event out;

		assert_int_equal(trace_parse_node("p.a#0000000001,1.000,h,bogus,", NULL, &out), -EINVAL);
	}
	assert_null(trace_type_name(_TRACE_TYPE_MAX));
	assert_true(trace_type_is_terminal(TRACE_FINISHED));
	assert_true(trace_type_is_terminal(TRACE_ABORTED));
	assert_true(trace_type_is_terminal(TRACE_KILLED));
	assert_false(trace_type_is_terminal(TRACE_SERVICE_EXITED));
	assert_false(trace_type_is_terminal(TRACE_DELETED));
}

static void test_shard(void **state)
{
	char s[5];

	assert_int_equal(trace_shard("proid.app#0000000042", s), 0);
	assert_string_equal(s, "002A");
	assert_int_equal(trace_shard("proid.app#0000000256", s), 0);
	assert_string_equal(s, "0000");
	assert_int_equal(trace_shard("proid.app#255", s), 0);
	assert_string_equal(s, "00FF");
	/* longer than 64 bits: int(seq) % 256 still right (10^30 % 256 = 0) */
	assert_int_equal(trace_shard("p.a#1000000000000000000000000000001", s), 0);
	assert_string_equal(s, "0001");
	assert_int_equal(trace_shard("proid.app", s), -EINVAL);
	assert_int_equal(trace_shard("proid.app#", s), -EINVAL);
	assert_int_equal(trace_shard("proid.app#12a", s), -EINVAL);
}

static void test_node_name_roundtrip(void **state)
{
	struct trace_event ev = {
		.timestamp = 1546300800.125,
		.instanceid = "proid.my.app#0000000042",
		.type = TRACE_SERVICE_EXITED,
		/* service names may contain dots; data may contain commas */
		.data = "0f7rp3bsjtzxx.web.front.1.0",
		.payload = NULL,
	};
	struct trace_event back;
	_cleanup_free_ char *n = trace_node_name(&ev, "node1.example.com");

	assert_non_null(n);
	assert_string_equal(n, "proid.my.app#0000000042,1546300800.125,node1.example.com,service_exited,"
			       "0f7rp3bsjtzxx.web.front.1.0");
	assert_int_equal(trace_parse_node(n, "pay,load", &back), 0);
	assert_string_equal(back.instanceid, ev.instanceid);
	assert_string_equal(back.source, "node1.example.com");
	assert_int_equal(back.type, TRACE_SERVICE_EXITED);
	assert_string_equal(back.data, ev.data);
	assert_string_equal(back.payload, "pay,load");
	assert_true(back.timestamp > 1546300800.124 && back.timestamp < 1546300800.126);
	trace_event_clear(&back);

	ev.type = TRACE_ABORTED;
	ev.data = "why,with,commas";
	free(n);
	n = trace_node_name(&ev, "h");
	assert_int_equal(trace_parse_node(n, "", &back), 0);
	assert_string_equal(back.data, "why,with,commas");
	assert_null(back.payload);
	trace_event_clear(&back);

	/* unencodable */
	ev.data = "a/b";
	assert_null(trace_node_name(&ev, "h"));
	ev.data = "";
	assert_null(trace_node_name(&ev, "h,x"));
	ev.instanceid = "noseq";
	assert_null(trace_node_name(&ev, "h"));

	/* long data is cut so the name stays one path component */
	{
		char longdata[400], inst[220];
		_cleanup_free_ char *ln = NULL;

		memset(longdata, 'd', sizeof(longdata) - 1);
		longdata[sizeof(longdata) - 1] = 0;
		ev.instanceid = "proid.app#0000000001";
		ev.data = longdata;
		ln = trace_node_name(&ev, "h");
		assert_non_null(ln);
		assert_int_equal(strlen(ln), TRACE_NAME_MAX);
		assert_int_equal(trace_parse_node(ln, NULL, &back), 0);
		assert_true(startswith(longdata, back.data));
		trace_event_clear(&back);
		memset(inst, 'a', 190);
		memcpy(inst + 190, ".b#0000000001", 14);
		ev.instanceid = inst;
		ev.data = "";
		assert_null(trace_node_name(&ev, "host-with-a-rather-long-name.example.com.very.long.domain.name"));
	}

	/* malformed names */
	assert_int_equal(trace_parse_node("p.a#1,1.0,h,nosuchtype,", NULL, &back), -EINVAL);
	assert_int_equal(trace_parse_node("p.a#1,xx,h,pending,", NULL, &back), -EINVAL);
	assert_int_equal(trace_parse_node("p.a#1,1.0,h", NULL, &back), -EINVAL);
	assert_int_equal(trace_parse_node("p.a,1.0,h,pending,", NULL, &back), -EINVAL);
	assert_int_equal(trace_parse_node("p.a#1,1.0,,pending,", NULL, &back), -EINVAL);
}

static void test_spool_file_roundtrip(void **state)
{
	char dir[] = "/tmp/treadle-ut-trace-XXXXXX";
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *path = NULL, *payload = NULL;
	struct trace_event ev;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(trace_post_file(dir, 1600000000.5, "proid.app#0000000007", TRACE_SERVICE_RUNNING,
					 "0f7rp3bsjtzxx.svc.with.dots", NULL),
			 0);
	assert_int_equal(trace_post_file(dir, 1600000001.0, "proid.app#0000000007", TRACE_ABORTED, "pivot_root",
					 "Traceback:\n  boom\n"),
			 0);
	assert_int_equal(trace_post_file(dir, 1.0, "bad", TRACE_ABORTED, "", NULL), -EINVAL);
	assert_int_equal(trace_post_file(dir, 1.0, "p.a#1", TRACE_ABORTED, "a/b", NULL), -EINVAL);
	assert_int_equal(dir_list(dir, 1, &names), 0);
	assert_int_equal(strv_length(names), 2);
	assert_string_equal(names[0], "1600000000.500,proid.app#0000000007,service_running,0f7rp3bsjtzxx.svc.with.dots");
	assert_string_equal(names[1], "1600000001.000,proid.app#0000000007,aborted,pivot_root");

	assert_int_equal(trace_parse_file(names[0], "", &ev), 0);
	assert_string_equal(ev.instanceid, "proid.app#0000000007");
	assert_int_equal(ev.type, TRACE_SERVICE_RUNNING);
	assert_string_equal(ev.data, "0f7rp3bsjtzxx.svc.with.dots");
	assert_null(ev.source);
	assert_null(ev.payload);
	trace_event_clear(&ev);

	path = strdup_printf("%s/%s", dir, names[1]);
	assert_int_equal(read_file(path, &payload, NULL), 0);
	assert_int_equal(trace_parse_file(names[1], payload, &ev), 0);
	assert_int_equal(ev.type, TRACE_ABORTED);
	assert_string_equal(ev.payload, "Traceback:\n  boom\n");
	assert_true(ev.timestamp == 1600000001.0);
	trace_event_clear(&ev);

	/* the UDS form written by s6 run/finish scripts: "%014.3f,..." */
	assert_int_equal(trace_parse_file("1600000002.250,p.a#3,service_exited,u.s.1.0", NULL, &ev), 0);
	assert_int_equal(ev.type, TRACE_SERVICE_EXITED);
	trace_event_clear(&ev);
	assert_int_equal(trace_parse_file("1600000002.250,p.a#3,bogus,x", NULL, &ev), -EINVAL);
	assert_int_equal(trace_parse_file("nots,p.a#3,pending,x", NULL, &ev), -EINVAL);
	assert_int_equal(trace_parse_file("1.0,p.a#3", NULL, &ev), -EINVAL);
	assert_int_equal(rm_rf(dir), 0);
}

static void test_spool_timestamp_bounds(void **state)
{
	static const char *const good[] = { "0", "1600000002", "1600000002.250", "0000000100.000",
					     "999999999999.123456789", "1600000002." };
	static const char *const bad[] = { "", ".5", "1.2.3", "-1", "1e5", "inf", "nan", " 1", "1 ",
					   "1000000000000", "1600000002.1234567890", "0x10", "+1" };
	struct trace_event ev;
	char *name, *longts;

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(good); i++) {
		name = strdup_printf("%s,p.a#3,pending,x", good[i]);
		assert_non_null(name);
		assert_int_equal(trace_parse_file(name, NULL, &ev), 0);
		/* what parses can be published: its node name fits one component */
		ev.source = strdup("host");
		{
			char *n = trace_node_name(&ev, NULL);
			assert_non_null(n);
			free(n);
		}
		trace_event_clear(&ev);
		free(name);
		name = strdup_printf("p.a#3,%s,host,pending,x", good[i]);
		assert_non_null(name);
		assert_int_equal(trace_parse_node(name, NULL, &ev), 0);
		trace_event_clear(&ev);
		free(name);
	}
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		name = strdup_printf("%s,p.a#3,pending,x", bad[i]);
		assert_non_null(name);
		assert_int_equal(trace_parse_file(name, NULL, &ev), -EINVAL);
		free(name);
		name = strdup_printf("p.a#3,%s,host,pending,x", bad[i]);
		assert_non_null(name);
		assert_int_equal(trace_parse_node(name, NULL, &ev), -EINVAL);
		free(name);
	}
	/* what the fuzzer found: a 110-digit timestamp */
	longts = malloc(111);
	assert_non_null(longts);
	memset(longts, '9', 110);
	longts[110] = 0;
	name = strdup_printf("%s,p.a#3,pending,x", longts);
	assert_non_null(name);
	assert_int_equal(trace_parse_file(name, NULL, &ev), -EINVAL);
	free(name);
	free(longts);
}

static void test_snapshot_roundtrip(void **state)
{
	struct trace_row rows[] = {
		{ "/trace/002A/p.a#42,1.000,h,pending,created", 1.0, NULL, "/trace/002A", "p.a#42,1.000,h,pending,created" },
		{ "/trace/002A/p.a#42,2.000,h,aborted,x", 2.0, "traceback", "/trace/002A", "p.a#42,2.000,h,aborted,x" },
	};
	_cleanup_free_ unsigned char *blob = NULL;
	size_t len = 0;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = 0;

	assert_int_equal(trace_snapshot_build("trace", rows, 2, &blob, &len), 0);
	assert_true(len > 2);
	assert_int_equal(blob[0], 0x78); /* zlib header, as Python's zlib.compress */
	assert_int_equal(trace_snapshot_open(blob, len, &db), 0);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT path, timestamp, data, directory, name FROM trace WHERE name GLOB "
					    "'p.a#42,*' ORDER BY timestamp",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_string_equal((const char *)sqlite3_column_text(st, 0), rows[n].path);
		assert_true(sqlite3_column_double(st, 1) == rows[n].timestamp);
		if (rows[n].data)
			assert_string_equal((const char *)sqlite3_column_text(st, 2), rows[n].data);
		else
			assert_int_equal(sqlite3_column_type(st, 2), SQLITE_NULL);
		assert_string_equal((const char *)sqlite3_column_text(st, 3), rows[n].directory);
		n++;
	}
	assert_int_equal(n, 2);
	sqlite3_finalize(st);
	/* the indexes Treadmill's readers rely on */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name IN "
						"('name_idx','path_idx')",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* garbage is refused, not crashed on */
	assert_true(trace_snapshot_open("garbage", 7, &db) < 0);
	blob[len / 2] ^= 0xff;
	if (trace_snapshot_open(blob, len, &db) == 0)
		sqlite3_close(db); /* a flipped byte may still inflate; must not crash */
}

/* ---------------------------------------------------- against the store */

struct fixture {
	char dir[64];
	struct store *s;
};

static int store_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct error err = ERROR_INIT;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/treadle-ut-trace-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (store_open(f->dir, NULL, &f->s, &err) < 0) {
		print_error("store_open: %s\n", err.msg);
		error_clear(&err);
		return -1;
	}
	*state = f;
	return 0;
}

static int store_teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->s);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void publish(struct store *s, double ts, const char *inst, enum trace_type t, const char *data,
		    const char *payload, const char *host)
{
	struct trace_event ev = {
		.timestamp = ts,
		.instanceid = (char *)inst,
		.type = t,
		.data = (char *)data,
		.payload = (char *)payload,
	};
	assert_int_equal(trace_publish(s, &ev, host), 0);
}

static void test_publish_read_order(void **state)
{
	struct fixture *f = *state;
	struct trace_event *evs = NULL;
	size_t n = 0;
	_cleanup_strv_free_ char **names = NULL;

	/* "10.000" sorts before "9.500" as text: the reader must sort by number */
	publish(f->s, 10.0, "proid.app#0000000042", TRACE_SERVICE_EXITED, "uniq.web.front.1.0", NULL, "h1");
	publish(f->s, 9.5, "proid.app#0000000042", TRACE_SERVICE_RUNNING, "uniq.web.front", NULL, "h1");
	publish(f->s, 100.25, "proid.app#0000000042", TRACE_CONFIGURED, "uniq", "payload", "h1");
	publish(f->s, 8.0, "proid.app#0000000042", TRACE_PENDING, "created", NULL, "master");
	/* same shard (298 % 256 = 42), other instance: must not be mixed in */
	publish(f->s, 9.0, "proid.app#0000000298", TRACE_PENDING, "created", NULL, "master");
	/* publishing the same event twice is harmless */
	publish(f->s, 8.0, "proid.app#0000000042", TRACE_PENDING, "created", NULL, "master");

	assert_int_equal(store_children(f->s, "/trace/002A", &names, NULL, NULL), 0);
	assert_int_equal(strv_length(names), 5);
	assert_true(strv_contains(names, "proid.app#0000000042,9.500,h1,service_running,uniq.web.front"));

	assert_int_equal(trace_read(f->s, "proid.app#0000000042", &evs, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(evs[0].type, TRACE_PENDING);
	assert_string_equal(evs[0].source, "master");
	assert_int_equal(evs[1].type, TRACE_SERVICE_RUNNING);
	assert_string_equal(evs[1].data, "uniq.web.front");
	assert_int_equal(evs[2].type, TRACE_SERVICE_EXITED);
	assert_int_equal(evs[3].type, TRACE_CONFIGURED);
	assert_string_equal(evs[3].payload, "payload");
	trace_events_free(evs, n);

	assert_int_equal(trace_read(f->s, "proid.other#0000000001", &evs, &n), 0);
	assert_int_equal(n, 0);
	trace_events_free(evs, n);
}

static void test_finished_guarded_unschedule(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *data = NULL;
	json_t *j;

	assert_int_equal(store_create_p(f->s, "/scheduled"), 0);
	assert_int_equal(store_create(f->s, "/scheduled/proid.app#0000000001", "{}", 2, 0, NULL), 0);
	assert_int_equal(store_create_p(f->s, "/placement/h2/proid.app#0000000001"), 0);

	/* a stale event from h1 (instance now placed on h2): /finished is
	 * written, but the app stays scheduled */
	publish(f->s, 50.0, "proid.app#0000000001", TRACE_KILLED, "oom", NULL, "h1");
	assert_int_equal(store_get(f->s, "/finished/proid.app#0000000001", &data, NULL, NULL, NULL, NULL), 0);
	j = json_loads(data, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "killed");
	assert_string_equal(json_string_value(json_object_get(j, "host")), "h1");
	assert_string_equal(json_string_value(json_object_get(j, "data")), "oom");
	assert_string_equal(json_string_value(json_object_get(j, "when")), "50.000");
	json_decref(j);
	assert_int_equal(store_exists(f->s, "/scheduled/proid.app#0000000001", NULL, NULL, NULL), 0);

	/* the same from the host it is placed on: unscheduled */
	publish(f->s, 51.0, "proid.app#0000000001", TRACE_FINISHED, "0.0", "rc: 0\n", "h2");
	assert_int_equal(store_exists(f->s, "/scheduled/proid.app#0000000001", NULL, NULL, NULL), -ENOENT);
	free(data);
	data = NULL;
	assert_int_equal(store_get(f->s, "/finished/proid.app#0000000001", &data, NULL, NULL, NULL, NULL), 0);
	j = json_loads(data, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "finished");
	assert_string_equal(json_string_value(json_object_get(j, "data")), "0.0");
	assert_string_equal(json_string_value(json_object_get(j, "host")), "h2");
	json_decref(j);

	/* again, already unscheduled: still fine */
	publish(f->s, 52.0, "proid.app#0000000001", TRACE_ABORTED, "unknown", NULL, "h2");
	/* non-terminal events do not touch /finished */
	publish(f->s, 53.0, "proid.app#0000000002", TRACE_SCHEDULED, "h2:", NULL, "master");
	assert_int_equal(store_exists(f->s, "/finished/proid.app#0000000002", NULL, NULL, NULL), -ENOENT);
}

static size_t count_children(struct store *s, const char *path)
{
	_cleanup_strv_free_ char **names = NULL;

	if (store_children(s, path, &names, NULL, NULL) < 0)
		return 0;
	return strv_length(names);
}

static void test_compact_then_read(void **state)
{
	struct fixture *f = *state;
	struct error err = ERROR_INIT;
	struct trace_event *before = NULL, *after = NULL;
	size_t nb = 0, na = 0;
	double now = now_realtime();
	_cleanup_free_ char *fin = NULL;

	/* A: finished long ago, not scheduled -> archived */
	publish(f->s, now - 1000, "proid.a#0000000001", TRACE_PENDING, "created", NULL, "master");
	publish(f->s, now - 990, "proid.a#0000000001", TRACE_SCHEDULED, "h1:None", NULL, "master");
	publish(f->s, now - 980, "proid.a#0000000001", TRACE_SERVICE_EXITED, "u.s.v.1.0", NULL, "h1");
	publish(f->s, now - 970, "proid.a#0000000001", TRACE_ABORTED, "image", "trace\nback", "h1");
	/* B: old but still scheduled -> kept live */
	assert_int_equal(store_create_p(f->s, "/scheduled/proid.b#0000000002"), 0);
	publish(f->s, now - 1000, "proid.b#0000000002", TRACE_PENDING, "created", NULL, "master");
	/* C: not scheduled but recent -> kept live */
	publish(f->s, now - 10, "proid.c#0000000003", TRACE_PENDING, "created", NULL, "master");

	assert_int_equal(trace_read(f->s, "proid.a#0000000001", &before, &nb), 0);
	assert_int_equal(nb, 4);

	/* /finished of A is fresh (mtime now): compacting with now+1000 makes it old */
	if (trace_compact(f->s, now, 300, &err) < 0) {
		print_error("%s\n", err.msg);
		fail();
	}
	assert_int_equal(count_children(f->s, "/trace/0001"), 0);
	assert_int_equal(count_children(f->s, "/trace/0002"), 1);
	assert_int_equal(count_children(f->s, "/trace/0003"), 1);
	assert_int_equal(count_children(f->s, "/trace.history"), 1);
	assert_int_equal(count_children(f->s, "/finished"), 1); /* not old yet */

	assert_int_equal(trace_read(f->s, "proid.a#0000000001", &after, &na), 0);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_true(after[i].timestamp == before[i].timestamp);
		assert_int_equal(after[i].type, before[i].type);
		assert_string_equal(after[i].data, before[i].data);
		assert_string_equal(after[i].source, before[i].source);
		if (before[i].payload)
			assert_string_equal(after[i].payload, before[i].payload);
		else
			assert_null(after[i].payload);
	}
	trace_events_free(after, na);

	/* later: /finished/A is old now -> /finished.history, readable */
	assert_int_equal(trace_compact(f->s, now + 1000, 300, &err), 0);
	assert_int_equal(count_children(f->s, "/finished"), 0);
	assert_int_equal(count_children(f->s, "/finished.history"), 1);
	assert_int_equal(finished_history(f->s, "proid.a#0000000001", &fin), 0);
	assert_non_null(strstr(fin, "\"state\":\"aborted\""));
	/* C is archived too now, B stays (scheduled) */
	assert_int_equal(count_children(f->s, "/trace/0003"), 0);
	assert_int_equal(count_children(f->s, "/trace/0002"), 1);
	assert_int_equal(count_children(f->s, "/trace.history"), 2);

	/* B (scheduled) reads its live event */
	assert_int_equal(trace_read(f->s, "proid.b#0000000002", &after, &na), 0);
	assert_int_equal(na, 1);
	trace_events_free(after, na);

	/* and A still reads the same from the first snapshot */
	assert_int_equal(trace_read(f->s, "proid.a#0000000001", &after, &na), 0);
	assert_int_equal(na, nb);
	trace_events_free(after, na);
	trace_events_free(before, nb);
}

static void test_compact_splits_large_batches(void **state)
{
	struct fixture *f = *state;
	struct error err = ERROR_INIT;
	_cleanup_strv_free_ char **hist = NULL;
	struct trace_event *evs = NULL;
	size_t n = 0, plen = 200 * 1024, count = 12;
	char *payload = malloc(plen + 1);
	unsigned seed = 12345;

	assert_non_null(payload);
	for (size_t k = 0; k < count; k++) {
		/* incompressible text so the whole batch is > STORE_MAX_DATA */
		for (size_t i = 0; i < plen; i++) {
			seed = seed * 1103515245u + 12345u;
			payload[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"[(seed >> 16) & 63];
		}
		payload[plen] = 0;
		publish(f->s, 1000.0 + (double)k, "proid.big#0000000009", TRACE_ABORTED, "x", payload, "h1");
	}
	free(payload);
	assert_int_equal(trace_compact(f->s, 100000.0, 300, &err), 0);
	assert_int_equal(count_children(f->s, "/trace/0009"), 0);
	assert_int_equal(store_children(f->s, "/trace.history", &hist, NULL, NULL), 0);
	assert_true(strv_length(hist) >= 2);
	for (char **h = hist; *h; h++) {
		_cleanup_free_ char *p = strdup_printf("/trace.history/%s", *h);
		struct store_stat st;

		assert_true(startswith(*h, "trace.db.gzip-"));
		assert_int_equal(strlen(*h), strlen("trace.db.gzip-") + 10);
		assert_int_equal(store_exists(f->s, p, &st, NULL, NULL), 0);
		assert_true(st.data_length <= STORE_MAX_DATA);
	}
	assert_int_equal(trace_read(f->s, "proid.big#0000000009", &evs, &n), 0);
	assert_int_equal(n, count);
	for (size_t k = 0; k < n; k++) {
		assert_true(evs[k].timestamp == 1000.0 + (double)k);
		assert_int_equal(strlen(evs[k].payload), plen);
	}
	trace_events_free(evs, n);
}

static void test_history_capped(void **state)
{
	struct fixture *f = *state;
	struct error err = ERROR_INIT;
	_cleanup_strv_free_ char **hist = NULL;

	assert_int_equal(store_create_p(f->s, "/trace.history"), 0);
	for (int i = 0; i < 104; i++)
		assert_int_equal(store_create(f->s, "/trace.history/trace.db.gzip-", "x", 1, STORE_SEQUENTIAL, NULL), 0);
	publish(f->s, 1.0, "proid.a#0000000001", TRACE_PENDING, "created", NULL, "master");
	assert_int_equal(trace_compact(f->s, 1000.0, 300, &err), 0);
	assert_int_equal(store_children(f->s, "/trace.history", &hist, NULL, NULL), 0);
	assert_int_equal(strv_length(hist), 100);
	/* the oldest went, the new snapshot (105th) stayed */
	assert_string_equal(hist[0], "trace.db.gzip-0000000005");
	assert_string_equal(hist[99], "trace.db.gzip-0000000104");
}

static void test_prune(void **state)
{
	struct fixture *f = *state;
	struct error err = ERROR_INIT;
	struct trace_event *evs = NULL;
	size_t n = 0, running = 0, exited = 0, other = 0, before;

	publish(f->s, 1.0, "proid.x#0000000005", TRACE_PENDING, "created", NULL, "master");
	publish(f->s, 50.0, "proid.x#0000000005", TRACE_PENDING, "", NULL, "master");
	publish(f->s, 60.0, "proid.x#0000000005", TRACE_CONFIGURED, "u", NULL, "h1");
	for (int i = 0; i < 12; i++) {
		publish(f->s, 100.0 + i * 10, "proid.x#0000000005", TRACE_PENDING, "evicted", NULL, "master");
		publish(f->s, 105.0 + i * 10, "proid.x#0000000005", TRACE_SCHEDULED, "h1:evicted", NULL, "master");
	}
	for (int i = 0; i < 15; i++) {
		publish(f->s, 1000.0 + i * 10, "proid.y#0000000005", TRACE_SERVICE_RUNNING, "u.svc.dotted", NULL, "h1");
		publish(f->s, 1005.0 + i * 10, "proid.y#0000000005", TRACE_SERVICE_EXITED, "u.svc.dotted.1.0", NULL, "h1");
	}
	for (int i = 0; i < 3; i++)
		publish(f->s, 2000.0 + i, "proid.y#0000000005", TRACE_SERVICE_RUNNING, "u.other", NULL, "h1");

	/* compaction with nothing old enough to archive (now 0, no expiry): the pruning alone */
	before = count_children(f->s, "/trace/0005");
	assert_int_equal(trace_compact(f->s, 0, 0, &err), 0);
	assert_int_equal(before - count_children(f->s, "/trace/0005"), (14 + 2) + (5 + 5));

	assert_int_equal(trace_read(f->s, "proid.x#0000000005", &evs, &n), 0);
	assert_int_equal(n, 11);
	assert_int_equal(evs[0].type, TRACE_PENDING);
	assert_string_equal(evs[0].data, "created");
	assert_true(evs[1].timestamp == 170.0); /* the 10 newest evictions */
	assert_true(evs[10].timestamp == 215.0);
	trace_events_free(evs, n);

	assert_int_equal(trace_read(f->s, "proid.y#0000000005", &evs, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(evs[i].data, "u.other") == 0)
			other++;
		else if (evs[i].type == TRACE_SERVICE_RUNNING)
			running++;
		else
			exited++;
	}
	assert_int_equal(running, 10);
	assert_int_equal(exited, 10);
	assert_int_equal(other, 3);
	assert_true(evs[0].timestamp == 1050.0); /* oldest kept running event */
	trace_events_free(evs, n);

	/* idempotent */
	before = count_children(f->s, "/trace/0005");
	assert_int_equal(trace_compact(f->s, 0, 0, &err), 0);
	assert_int_equal(count_children(f->s, "/trace/0005"), before);
}

static void test_data_parsers(void **state)
{
	_cleanup_free_ char *u = NULL, *svc = NULL;
	int64_t rc, sig;

	trace_data_exit("256.9", &rc, &sig);
	assert_int_equal(rc, 256);
	assert_int_equal(sig, 9);
	trace_data_exit("3", &rc, &sig);
	assert_int_equal(rc, 3);
	assert_int_equal(sig, -1);
	trace_data_exit("x.y", &rc, &sig);
	assert_int_equal(rc, -1);
	assert_int_equal(sig, -1);
	trace_data_exit(NULL, &rc, &sig);
	assert_int_equal(rc, -1);

	assert_int_equal(trace_data_service("abc.web.srv.1.0", true, &u, &svc, &rc, &sig), 0);
	assert_string_equal(u, "abc");
	assert_string_equal(svc, "web.srv"); /* a service name may hold dots */
	assert_int_equal(rc, 1);
	assert_int_equal(sig, 0);
	free(TAKE_PTR(u));
	free(TAKE_PTR(svc));
	assert_int_equal(trace_data_service("abc.web.srv", false, &u, &svc, &rc, &sig), 0);
	assert_string_equal(svc, "web.srv");
	assert_int_equal(rc, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_parsers),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_shard),
		cmocka_unit_test(test_node_name_roundtrip),
		cmocka_unit_test(test_spool_file_roundtrip),
		cmocka_unit_test(test_spool_timestamp_bounds),
		cmocka_unit_test(test_snapshot_roundtrip),
		cmocka_unit_test_setup_teardown(test_publish_read_order, store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_finished_guarded_unschedule, store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_compact_then_read, store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_compact_splits_large_batches, store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_history_capped, store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_prune, store_setup, store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
