/* Unit tests of src/trace: encodings, spool files, shards, snapshots; and,
 * against the real embedded store, publish / read / compaction. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/trace/trace-internal.h"
#include "../../src/trace/trace.h"

static void test_type_names(void **state)
{
	for (int t = 0; t < _TRACE_TYPE_MAX; t++) {
		assert_non_null(trace_type_name(t));
		assert_int_equal(trace_type_from_name(trace_type_name(t)), t);
	}
	assert_string_equal(trace_type_name(TRACE_SERVICE_EXITED), "service_exited");
	assert_string_equal(trace_type_name(TRACE_PENDING_DELETE), "pending_delete");
	assert_int_equal(trace_type_from_name("bogus"), -EINVAL);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_shard),
		cmocka_unit_test(test_node_name_roundtrip),
		cmocka_unit_test(test_spool_file_roundtrip),
		cmocka_unit_test(test_snapshot_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
