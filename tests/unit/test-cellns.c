/* test-cellns.c: the cell namespace on the embedded store: each call writes
 * the path and the bytes docs/FORMATS.md gives, and reads back what the
 * other components write.  Paths are spelled literally here on purpose: the
 * test pins the layout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/json.h"
#include "../../src/basic/util.h"
#include "../../src/cellns/cellns.h"
/* Some record helpers are file-local (their callers are in cellns.c): the
 * production file is compiled in. */
#include "../../src/cellns/cellns.c"
#include "../../src/store/store.h"

#define TMP_STORE_TAG "cellns"
#include "tmp-store.h"


/* The data of path, or NULL if missing. */
static char *get(const char *path)
{
	char *data = NULL;

	if (store_get(tmp_store, path, &data, NULL, NULL, NULL, NULL) < 0)
		return NULL;
	return data;
}

static void assert_data(const char *path, const char *want)
{
	_cleanup_free_ char *d = get(path);

	if (!d)
		fail_msg("%s: missing", path);
	if (strcmp(d, want) != 0)
		fail_msg("%s: '%s', want '%s'", path, d, want);
}

static void put(const char *path, const char *data)
{
	assert_true(store_create_p(tmp_store, path) >= 0);
	assert_int_equal(store_set(tmp_store, path, data, strlen(data), -1, NULL), 0);
}

static void test_paths(void **state)
{
	_cleanup_free_ char *a = cellns_path(CELLNS_SCHEDULED, "p.a#0000000001");
	_cleanup_free_ char *b = cellns_path2(CELLNS_PLACEMENT, "h1", "p.a#0000000001");
	_cleanup_free_ char *c = cellns_path(CELLNS_SERVER_PRESENCE, NULL);
	_cleanup_free_ char *t = cellns_trace_path("002A", "p.a#0000000042,1.000,h,pending,created");
	_cleanup_free_ char *e = cellns_event_prefix(0, "servers");
	_cleanup_free_ char *st1 = cellns_server_trace_path("h1", 12.5, "m", "server_state", "up");

	assert_string_equal(a, "/scheduled/p.a#0000000001");
	assert_string_equal(b, "/placement/h1/p.a#0000000001");
	assert_string_equal(c, "/server.presence");
	assert_string_equal(t, "/trace/002A/p.a#0000000042,1.000,h,pending,created");
	assert_string_equal(e, "/events/000-servers-");
	assert_true(startswith(st1, "/server-trace/"));
	assert_true(strstr(st1, "/h1,12.500,m,server_state,up") != NULL);
	assert_string_equal(cellns_dir(CELLNS_ELECTION_MASTER), "/election/master");
	assert_string_equal(cellns_dir(CELLNS_BLACKEDOUT_SERVERS), "/blackedout.servers");
	assert_null(cellns_dir(_CELLNS_DIR_MAX));
	assert_null(cellns_trace_path("00/1", "x"));
	{
		_cleanup_free_ char *ed = cellns_election_path("hostgroups", NULL);
		_cleanup_free_ char *el = cellns_election_path("hostgroups", "lock-0000000003");
		assert_string_equal(ed, "/election/hostgroups");
		assert_string_equal(el, "/election/hostgroups/lock-0000000003");
		assert_null(cellns_election_path("a/b", NULL));
		assert_null(cellns_election_path("", NULL));
	}
}

static void test_rootns(void **state)
{
	struct error err = ERROR_INIT;
	unsigned next = 0;

	assert_int_equal(cellns_create_top(tmp_store, &err), 0);
	assert_int_equal(cellns_create_top(tmp_store, &err), 0);
	for (int d = 0; d < _CELLNS_DIR_MAX; d++)
		assert_int_equal(store_exists(tmp_store, cellns_dir((enum cellns_dir)d), NULL, NULL, NULL), 0);
	assert_int_equal(cellns_shards_complete(tmp_store), -ENOENT);
	assert_int_equal(cellns_create_shards(tmp_store, &next, 300, &err), 0);
	assert_int_equal(next, 300);
	assert_int_equal(store_exists(tmp_store, "/trace/00FF", NULL, NULL, NULL), 0);
	assert_int_equal(store_exists(tmp_store, "/server-trace/002B", NULL, NULL, NULL), 0);
	assert_int_equal(store_exists(tmp_store, "/server-trace/002C", NULL, NULL, NULL), -ENOENT);
	assert_int_equal(cellns_create_shards(tmp_store, &next, 1000, &err), 0);
	assert_int_equal(next, CELLNS_SHARDS);
	assert_int_equal(cellns_shards_complete(tmp_store), 0);
}

static void test_scheduled(void **state)
{
	_cleanup_free_ char *inst = NULL, *inst2 = NULL, *path = NULL;
	_cleanup_json_ json_t *m = NULL;
	_cleanup_strv_free_ char **names = NULL;
	char *data[3] = { NULL };
	char *list[3];

	assert_int_equal(cellns_scheduled_create(tmp_store, "p.app", "{\"memory\":\"1G\"}", &inst), 0);
	assert_int_equal(cellns_scheduled_create(tmp_store, "p.app", "[1]", &inst2), 0);
	assert_string_equal(inst, "p.app#0000000000");
	assert_string_equal(inst2, "p.app#0000000001");
	assert_data("/scheduled/p.app#0000000000", "{\"memory\":\"1G\"}");
	assert_int_equal(cellns_scheduled_get(tmp_store, inst, &m, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(m, "memory")), "1G");
	json_decref(TAKE_PTR(m));
	assert_int_equal(cellns_scheduled_get(tmp_store, inst2, &m, NULL), -EBADMSG);
	assert_null(m);
	assert_int_equal(cellns_scheduled_get(tmp_store, "p.app#0000000009", &m, NULL), -ENOENT);
	assert_int_equal(cellns_scheduled_exists(tmp_store, inst, NULL, NULL), 0);
	assert_int_equal(cellns_list(tmp_store, CELLNS_SCHEDULED, &names, NULL, NULL), 0);
	assert_int_equal(strv_length(names), 2);
	list[0] = inst;
	list[1] = "p.app#0000000009";
	list[2] = inst2;
	assert_int_equal(cellns_scheduled_get_many(tmp_store, list, 3, data), 0);
	assert_string_equal(data[0], "{\"memory\":\"1G\"}");
	assert_null(data[1]);
	assert_string_equal(data[2], "[1]");
	for (int i = 0; i < 3; i++)
		free(data[i]);
	assert_int_equal(cellns_scheduled_delete(tmp_store, inst2), 0);
	assert_int_equal(cellns_scheduled_delete(tmp_store, inst2), -ENOENT);
	assert_int_equal(cellns_scheduled_exists(tmp_store, inst2, NULL, NULL), -ENOENT);
	assert_int_equal(cellns_scheduled_create(tmp_store, "a/b", "{}", NULL), -EINVAL);
	assert_int_equal(cellns_scheduled_stats_put(tmp_store, "{\"p\":1}"), 0);
	assert_int_equal(cellns_scheduled_stats_put(tmp_store, "{\"p\":2}"), 0);
	assert_data("/scheduled-stats", "{\"p\":2}");
}

static void test_placement(void **state)
{
	struct cellns_placement p = CELLNS_PLACEMENT_INIT, q;
	_cleanup_json_ json_t *j = NULL;
	struct cellns_placed *all = NULL;
	enum cellns_server_state ss;
	size_t n = 0;
	double since;

	assert_int_equal(cellns_placement_put(tmp_store, "h1", "p.a#0000000001", &p), -ENOENT);
	put("/placement/h1", "");
	put("/placement/h2", "");
	assert_int_equal(cellns_placement_put(tmp_store, "h1", "p.a#0000000001", &p), 0);
	assert_data("/placement/h1/p.a#0000000001", "{\"expires\":null,\"identity\":null,\"identity_count\":null}");
	p.expires = 10.5;
	p.identity = 2;
	p.identity_count = 3;
	assert_int_equal(cellns_placement_put(tmp_store, "h1", "p.a#0000000001", &p), 0);
	assert_data("/placement/h1/p.a#0000000001", "{\"expires\":10.5,\"identity\":2,\"identity_count\":3}");
	assert_int_equal(cellns_placement_get(tmp_store, "h1", "p.a#0000000001", &q, &j, NULL), 0);
	assert_true(q.expires == 10.5);
	assert_int_equal(q.identity, 2);
	assert_int_equal(q.identity_count, 3);
	assert_int_equal(json_integer_value(json_object_get(j, "identity")), 2);
	assert_int_equal(cellns_placement_parse("{}", &q), 0);
	assert_true(isnan(q.expires));
	assert_int_equal(q.identity, -1);
	assert_int_equal(cellns_placement_parse("[]", &q), -EBADMSG);

	assert_int_equal(cellns_placement_put(tmp_store, "h2", "p.b#0000000002", &p), 0);
	assert_int_equal(cellns_placement_all(tmp_store, &all, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].instance, "p.a#0000000001");
	assert_string_equal(all[0].server, "h1");
	assert_string_equal(all[1].server, "h2");
	cellns_placed_free(all, n);
	assert_int_equal(cellns_placement_count(tmp_store, &n), 0);
	assert_int_equal(n, 2);

	assert_int_equal(cellns_server_state_get(tmp_store, "h1", &ss, &since), 0);
	assert_int_equal(ss, CELLNS_STATE_UNKNOWN);
	assert_int_equal(cellns_server_state_get(tmp_store, "h8", &ss, &since), -ENOENT);
	assert_int_equal(cellns_server_state_put(tmp_store, "h1", CELLNS_STATE_FROZEN, 5.0), 0);
	assert_data("/placement/h1", "{\"since\":5.0,\"state\":\"frozen\"}");
	assert_int_equal(cellns_server_state_get(tmp_store, "h1", &ss, &since), 0);
	assert_int_equal(ss, CELLNS_STATE_FROZEN);
	assert_true(since == 5.0);
	assert_int_equal(cellns_server_state_put(tmp_store, "h9", CELLNS_STATE_DOWN, 1.0), 0);
	assert_data("/placement/h9", "{\"since\":1.0,\"state\":\"down\"}");

	{
		_cleanup_free_ char *path = cellns_path2(CELLNS_PLACEMENT, "h1", "p.a#0000000001");

		assert_int_equal(store_delete(tmp_store, path, -1), 0); /* as the master's batches delete it */
	}
	assert_int_equal(cellns_placement_get(tmp_store, "h1", "p.a#0000000001", NULL, NULL, NULL), -ENOENT);
}

static void test_running_endpoints(void **state)
{
	_cleanup_free_ char *ep = NULL;
	struct cellns_endpoint *e = NULL;
	size_t n = 0;

	assert_int_equal(cellns_running_publish(tmp_store, "p.a#0000000001", "h1"), 0);
	assert_int_equal(cellns_running_publish(tmp_store, "p.a#0000000001", "h1"), 0); /* this session's: ok */
	assert_data("/running/p.a#0000000001", "h1");
	assert_int_equal(cellns_endpoint_publish(tmp_store, "p.a#0000000001", "tcp", "http", "h1:8000", &ep), 0);
	assert_string_equal(ep, "/endpoints/p/a#0000000001:tcp:http");
	assert_data("/endpoints/p/a#0000000001:tcp:http", "h1:8000");
	assert_int_equal(cellns_endpoint_publish(tmp_store, "q.b#0000000002", "udp", "dns", "h2:53", NULL), 0);
	assert_int_equal(cellns_endpoints_list(tmp_store, NULL, &e, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(e[0].instance, "p.a#0000000001");
	assert_string_equal(e[0].proto, "tcp");
	assert_string_equal(e[0].name, "http");
	assert_string_equal(e[0].address, "h1:8000");
	cellns_endpoints_free(e, n);
	assert_int_equal(cellns_endpoints_list(tmp_store, "q.*", &e, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].instance, "q.b#0000000002");
	cellns_endpoints_free(e, n);
	assert_int_equal(cellns_endpoint_delete(tmp_store, ep), 0);
	assert_int_equal(cellns_endpoint_delete(tmp_store, ep), 0);
	assert_int_equal(cellns_endpoint_delete(tmp_store, "/running/x"), -EINVAL);
	assert_int_equal(cellns_running_delete(tmp_store, "p.a#0000000001"), 0);
	assert_int_equal(store_exists(tmp_store, "/running/p.a#0000000001", NULL, NULL, NULL), -ENOENT);
}

static void test_finished(void **state)
{
	struct cellns_finished f;

	assert_int_equal(cellns_finished_publish(tmp_store, "p.a#0000000001", "finished", 12.25, "h1", "0.0"), 0);
	assert_data("/finished/p.a#0000000001",
		    "{\"data\":\"0.0\",\"host\":\"h1\",\"state\":\"finished\",\"when\":\"12.250\"}");
	assert_int_equal(cellns_finished_publish(tmp_store, "p.a#0000000001", "aborted", 13, "h1", NULL), 0);
	assert_data("/finished/p.a#0000000001", "{\"data\":\"\",\"host\":\"h1\",\"state\":\"aborted\",\"when\":\"13.000\"}");
	assert_int_equal(cellns_finished_get(tmp_store, "p.a#0000000001", &f), 0);
	assert_string_equal(f.state, "aborted");
	assert_true(f.when == 13.0);
	assert_string_equal(f.host, "h1");
	assert_string_equal(f.data, "");
	cellns_finished_clear(&f);

	assert_int_equal(cellns_finished_terminated(tmp_store, "p.b#0000000002", 14.5, NULL, "schedule_once"), 0);
	assert_data("/finished/p.b#0000000002",
		    "{\"data\":\"schedule_once\",\"host\":null,\"state\":\"terminated\",\"when\":14.5}");
	assert_int_equal(cellns_finished_terminated(tmp_store, "p.b#0000000002", 99, "h", NULL), 0); /* kept */
	assert_int_equal(cellns_finished_get(tmp_store, "p.b#0000000002", &f), 0);
	assert_string_equal(f.state, "terminated");
	assert_true(f.when == 14.5);
	assert_null(f.host);
	cellns_finished_clear(&f);
	assert_int_equal(cellns_finished_parse("{\"when\":\"x\"}", &f), 0);
	assert_string_equal(f.state, "finished");
	assert_true(f.when == 0);
	cellns_finished_clear(&f);
	assert_int_equal(cellns_finished_parse("1", &f), -EBADMSG);
	assert_int_equal(cellns_finished_get(tmp_store, "p.z#0000000009", &f), -ENOENT);
}

static void test_unschedule_if_placed(void **state)
{
	struct cellns_placement p = CELLNS_PLACEMENT_INIT;
	_cleanup_free_ char *inst = NULL;

	assert_int_equal(cellns_scheduled_create(tmp_store, "p.u", "{}", &inst), 0);
	assert_int_equal(cellns_unschedule_if_placed(tmp_store, "h1", inst), 0); /* not placed: kept */
	assert_int_equal(cellns_scheduled_exists(tmp_store, inst, NULL, NULL), 0);
	put("/placement/h1", "");
	assert_int_equal(cellns_placement_put(tmp_store, "h1", inst, &p), 0);
	assert_int_equal(cellns_unschedule_if_placed(tmp_store, "h2", inst), 0); /* elsewhere: kept */
	assert_int_equal(cellns_scheduled_exists(tmp_store, inst, NULL, NULL), 0);
	assert_int_equal(cellns_unschedule_if_placed(tmp_store, "h1", inst), 0);
	assert_int_equal(cellns_scheduled_exists(tmp_store, inst, NULL, NULL), -ENOENT);
	assert_int_equal(cellns_unschedule_if_placed(tmp_store, "h1", inst), 0);
}

static void test_instances(void **state)
{
	struct cellns_placement p = CELLNS_PLACEMENT_INIT;
	struct cellns_instance *v = NULL;
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
	size_t n = 0;

	assert_int_equal(cellns_instances(tmp_store, true, true, &v, &n), 0); /* an empty store */
	assert_int_equal(n, 0);
	cellns_instances_free(v, n);
	assert_int_equal(cellns_scheduled_create(tmp_store, "p.a", "{}", &a), 0);
	assert_int_equal(cellns_scheduled_create(tmp_store, "p.a", "{}", &b), 0);
	assert_int_equal(cellns_scheduled_create(tmp_store, "p.a", "{}", &c), 0);
	put("/placement/h1", "");
	assert_int_equal(cellns_placement_put(tmp_store, "h1", b, &p), 0);
	assert_int_equal(cellns_placement_put(tmp_store, "h1", c, &p), 0);
	assert_int_equal(cellns_running_publish(tmp_store, c, "h1"), 0);
	assert_int_equal(cellns_finished_publish(tmp_store, "p.z#0000000009", "finished", 3, "h2", "0.0"), 0);
	assert_int_equal(cellns_finished_publish(tmp_store, c, "finished", 4, "h1", "0.0"), 0); /* still scheduled: live */
	put("/finished/p.y#0000000008", "not json");

	assert_int_equal(cellns_instances(tmp_store, true, true, &v, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(v[0].name, a);
	assert_int_equal(v[0].state, CELLNS_INSTANCE_PENDING);
	assert_null(v[0].host);
	assert_int_equal(v[1].state, CELLNS_INSTANCE_SCHEDULED);
	assert_string_equal(v[1].host, "h1");
	assert_int_equal(v[2].state, CELLNS_INSTANCE_RUNNING);
	assert_string_equal(v[3].name, "p.z#0000000009");
	assert_int_equal(v[3].state, CELLNS_INSTANCE_FINISHED);
	assert_string_equal(v[3].finished.host, "h2");
	assert_true(v[3].finished.when == 3);
	cellns_instances_free(v, n);

	assert_int_equal(cellns_instances(tmp_store, false, true, &v, &n), 0);
	assert_int_equal(n, 1);
	cellns_instances_free(v, n);
	assert_int_equal(cellns_instances(tmp_store, true, false, &v, &n), 0);
	assert_int_equal(n, 3);
	cellns_instances_free(v, n);
}

static void test_trace(void **state)
{
	_cleanup_strv_free_ char **kids = NULL;

	assert_int_equal(cellns_trace_create(tmp_store, "0001", "p.a#0000000001,1.000,h,pending,created", "pl"), 0);
	assert_int_equal(cellns_trace_create(tmp_store, "0001", "p.a#0000000001,1.000,h,pending,created", "pl"), -EEXIST);
	assert_data("/trace/0001/p.a#0000000001,1.000,h,pending,created", "pl");
	assert_int_equal(cellns_server_trace_post(tmp_store, "h1", 2.0, "m", "server_blackout", NULL), 0);
	{
		_cleanup_free_ char *p = cellns_server_trace_path("h1", 2.0, "m", "server_blackout", NULL);

		assert_data(p, "");
		assert_true(endswith(p, "/h1,2.000,m,server_blackout,"));
	}
}

static void test_servers(void **state)
{
	struct cellns_server srv;
	_cleanup_free_ char *reason = NULL;
	_cleanup_json_ json_t *apps = NULL;
	bool found;
	double vu;

	put("/servers/h1", "{\"parent\":\"rack:1\",\"traits\":[\"ssd\"]}");
	assert_int_equal(cellns_server_register(tmp_store, "h1", "100M", "200%", "300M", 7.0), 0);
	assert_data("/servers/h1", "{\"cpu\":\"200%\",\"disk\":\"300M\",\"memory\":\"100M\",\"parent\":\"rack:1\","
				   "\"traits\":[\"ssd\"],\"up_since\":7.0}");
	assert_int_equal(cellns_server_register(tmp_store, "h2", "1M", "100%", "2M", 1.5), 0);
	assert_data("/servers/h2", "{\"cpu\":\"100%\",\"disk\":\"2M\",\"memory\":\"1M\",\"up_since\":1.5}");
	assert_int_equal(cellns_server_get(tmp_store, "h1", &srv), 0);
	assert_string_equal(srv.parent, "rack:1");
	assert_null(srv.partition);
	assert_true(srv.up_since == 7.0);
	assert_string_equal(json_string_value(json_object_get(srv.json, "cpu")), "200%");
	cellns_server_clear(&srv);
	put("/servers/h3", "");
	assert_int_equal(cellns_server_get(tmp_store, "h3", &srv), 0);
	assert_true(json_is_object(srv.json));
	cellns_server_clear(&srv);
	put("/servers/h4", "[1]");
	assert_int_equal(cellns_server_get(tmp_store, "h4", &srv), -EBADMSG);
	assert_int_equal(cellns_server_get(tmp_store, "h5", &srv), -ENOENT);

	assert_int_equal(cellns_presence_create(tmp_store, "h1"), 0);
	assert_int_equal(cellns_presence_create(tmp_store, "h1"), -EEXIST);
	assert_data("/server.presence/h1", "{\"seen\":false}");
	assert_int_equal(cellns_presence_exists(tmp_store, "h1", NULL, NULL, NULL), 0);
	assert_int_equal(cellns_presence_find(tmp_store, "h1", &found), 0);
	assert_true(found);
	assert_int_equal(cellns_presence_find(tmp_store, "h", &found), 0);
	assert_false(found);
	assert_int_equal(cellns_presence_valid_until(tmp_store, "h1", &vu), 0);
	assert_true(vu == 0);
	put("/server.presence/h7#0000000001", "{\"valid_until\":42.5}");
	assert_int_equal(cellns_presence_find(tmp_store, "h7", &found), 0);
	assert_true(found);
	assert_int_equal(cellns_presence_valid_until(tmp_store, "h7#0000000001", &vu), 0);
	assert_true(vu == 42.5);
	assert_int_equal(cellns_presence_delete(tmp_store, "h1"), 0);
	assert_int_equal(cellns_presence_delete(tmp_store, "h1"), 0);
	assert_int_equal(cellns_presence_exists(tmp_store, "h1", NULL, NULL, NULL), -ENOENT);

	assert_int_equal(cellns_blackout_server_exists(tmp_store, "h1", NULL, NULL), -ENOENT);
	put("/blackedout.servers/h1", "\"disk failed\"");
	put("/blackedout.servers/h2", "raw text");
	assert_int_equal(cellns_blackout_server_exists(tmp_store, "h1", NULL, NULL), 0);
	assert_int_equal(cellns_blackout_server_reason(tmp_store, "h1", &reason), 0);
	assert_string_equal(reason, "disk failed");
	free(reason);
	assert_int_equal(cellns_blackout_server_reason(tmp_store, "h2", &reason), 0);
	assert_string_equal(reason, "raw text");
	assert_int_equal(cellns_blackout_apps_get(tmp_store, &apps), 0);
	assert_int_equal(json_object_size(apps), 0);
	json_decref(TAKE_PTR(apps));
	put("/blackedout.apps", "{\"p.*\":{\"reason\":\"x\",\"when\":1}}");
	assert_int_equal(cellns_blackout_apps_get(tmp_store, &apps), 0);
	assert_non_null(json_object_get(apps, "p.*"));
}

static void test_model_records(void **state)
{
	struct cellns_bucket b;
	struct cellns_allocation *a = NULL;
	_cleanup_strv_free_ char **traits = NULL;
	_cleanup_free_ char *mode = NULL;
	_cleanup_json_ json_t *part = NULL;
	size_t n = 0;
	int cnt;

	put("/buckets/rack:1", "{\"parent\":\"pod:1\",\"traits\":6,\"level\":\"rack\"}");
	assert_int_equal(cellns_bucket_get(tmp_store, "rack:1", &b), 0);
	assert_string_equal(b.parent, "pod:1");
	assert_string_equal(b.level, "rack");
	assert_int_equal(b.traits, 6);
	cellns_bucket_clear(&b);
	put("/buckets/pod:1", "{\"parent\":null,\"traits\":null}");
	assert_int_equal(cellns_bucket_get(tmp_store, "pod:1", &b), 0);
	assert_null(b.parent);
	assert_null(b.level);
	assert_int_equal(b.traits, 0);
	cellns_bucket_clear(&b);
	assert_int_equal(cellns_bucket_get(tmp_store, "nope", &b), -ENOENT);

	put("/identity-groups/g", "{\"count\":3}");
	assert_int_equal(cellns_identity_group_count(tmp_store, "g", &cnt), 0);
	assert_int_equal(cnt, 3);
	put("/identity-groups/h", "{}");
	assert_int_equal(cellns_identity_group_count(tmp_store, "h", &cnt), 0);
	assert_int_equal(cnt, -1);

	put("/partitions/p1", "{\"reboot-schedule\":{\"1\":[1,2,3]}}");
	assert_int_equal(cellns_partition_get(tmp_store, "p1", &part), 0);
	assert_non_null(json_object_get(part, "reboot-schedule"));

	assert_int_equal(cellns_allocations_get(tmp_store, &a, &n), -0);
	assert_int_equal(n, 0);
	put("/allocations", "[{\"name\":\"t/a\",\"partition\":\"p1\",\"rank\":10,\"memory\":\"1G\","
			    "\"assignments\":[{\"pattern\":\"p.*\",\"priority\":5},{\"pattern\":\"q.*\"},{}]},"
			    "{\"rank_adjustment\":2}]");
	assert_int_equal(cellns_allocations_get(tmp_store, &a, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(a[0].name, "t/a");
	assert_string_equal(a[0].partition, "p1");
	assert_int_equal(a[0].rank, 10);
	assert_int_equal(a[0].n_assignments, 2);
	assert_string_equal(a[0].assignments[0].pattern, "p.*");
	assert_int_equal(a[0].assignments[0].priority, 5);
	assert_int_equal(a[0].assignments[1].priority, 1);
	assert_string_equal(json_string_value(json_object_get(a[0].json, "memory")), "1G");
	assert_null(a[1].name);
	assert_int_equal(a[1].rank, -1);
	assert_int_equal(a[1].rank_adjustment, 2);
	cellns_allocations_free(a, n);

	put("/traits", "[\"ssd\",1,\"gpu\"]");
	assert_int_equal(cellns_traits_get(tmp_store, &traits), 0);
	assert_int_equal(strv_length(traits), 2);
	assert_string_equal(traits[1], "gpu");
	assert_int_equal(cellns_scheduler_mode(tmp_store, &mode), 0);
	assert_null(mode);
	put("/scheduler", "{\"mode\":\"compatible\"}");
	assert_int_equal(cellns_scheduler_mode(tmp_store, &mode), 0);
	assert_string_equal(mode, "compatible");

	assert_int_equal(cellns_reboot_requested(tmp_store, "h1"), -ENOENT);
	assert_int_equal(cellns_reboot_request(tmp_store, "h1"), 0);
	assert_int_equal(cellns_reboot_request(tmp_store, "h1"), 0);
	assert_int_equal(cellns_reboot_requested(tmp_store, "h1"), 0);
}

/* An event as admin posts it: a sequential node under cellns_event_prefix. */
static void event_post(int prio, const char *resource, const json_t *payload)
{
	_cleanup_free_ char *prefix = cellns_event_prefix(prio, resource);
	_cleanup_free_ char *d = payload ? cellns_dumps(payload) : strdup("null");

	assert_non_null(prefix);
	(void)store_create_p(tmp_store, cellns_dir(CELLNS_EVENTS)); /* the cell's layout has it */
	assert_int_equal(store_create(tmp_store, prefix, d, strlen(d), STORE_SEQUENTIAL, NULL), 0);
}

static void test_events(void **state)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_json_ json_t *pl = NULL, *got = NULL;
	struct cellns_event ev;

	pl = json_pack("[s]", "h1");
	event_post(0, "servers", pl);
	event_post(5, "allocations", NULL);
	assert_int_equal(cellns_list(tmp_store, CELLNS_EVENTS, &names, NULL, NULL), 0);
	assert_int_equal(strv_length(names), 2);
	assert_string_equal(names[0], "000-servers-0000000000");
	assert_string_equal(names[1], "005-allocations-0000000001");
	assert_int_equal(cellns_event_parse(names[1], &ev), 0);
	assert_int_equal(ev.prio, 5);
	assert_int_equal(ev.seq, 1);
	assert_string_equal(ev.resource, "allocations");
	assert_int_equal(cellns_event_get(tmp_store, names[0], &got), 0);
	assert_true(json_equal(got, pl));
	assert_data("/events/005-allocations-0000000001", "null");
	assert_int_equal(cellns_event_parse("x-servers-1", &ev), -EINVAL);
	assert_int_equal(cellns_event_parse("000-ser/vers-1", &ev), -EINVAL);
	assert_int_equal(cellns_event_parse("000-servers-", &ev), -EINVAL);
	assert_int_equal(cellns_event_delete(tmp_store, names[0]), 0);
	assert_int_equal(cellns_event_delete(tmp_store, names[0]), 0);
}

static void test_election(void **state)
{
	_cleanup_free_ char *node1 = NULL, *node2 = NULL;
	_cleanup_strv_free_ char **m = NULL;

	assert_int_equal(cellns_election_join(tmp_store, "h1.10", &node1), 0);
	assert_int_equal(cellns_election_join(tmp_store, "h2.20", &node2), 0);
	assert_string_equal(node1, "/election/master/lock-0000000000");
	assert_int_equal(cellns_election_members(tmp_store, &m), 0);
	assert_int_equal(strv_length(m), 2);
	assert_string_equal(m[0], "h1.10");
	assert_string_equal(m[1], "h2.20");
}

static void test_json_helpers(void **state)
{
	_cleanup_json_ json_t *o = json_pack("{s:i, s:s}", "b", 1, "a", "x"), *s = json_string("why"), *got = NULL;
	struct store_stat ss;

	assert_int_equal(cellns_put_json(tmp_store, "/new/parent/node", o), 0);
	assert_data("/new/parent/node", "{\"a\":\"x\",\"b\":1}");
	assert_int_equal(cellns_put_json(tmp_store, "/new/parent/node", s), 0);
	assert_data("/new/parent/node", "why"); /* strings raw */
	put("/new/bad", "not json");
	assert_int_equal(cellns_get_json(tmp_store, "/new/bad", &got, &ss), 0);
	assert_null(got);
	assert_int_equal(cellns_get_json(tmp_store, "/new/none", &got, NULL), -ENOENT);
	{
		_cleanup_strv_free_ char **l = NULL;

		assert_int_equal(cellns_list_ensure(tmp_store, CELLNS_REBOOTS, &l, NULL, NULL), 0);
		assert_int_equal(strv_length(l), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		TMP_STORE_TEST(test_rootns),
		TMP_STORE_TEST(test_scheduled),
		TMP_STORE_TEST(test_placement),
		TMP_STORE_TEST(test_running_endpoints),
		TMP_STORE_TEST(test_finished),
		TMP_STORE_TEST(test_unschedule_if_placed),
		TMP_STORE_TEST(test_instances),
		TMP_STORE_TEST(test_trace),
		TMP_STORE_TEST(test_servers),
		TMP_STORE_TEST(test_model_records),
		TMP_STORE_TEST(test_events),
		TMP_STORE_TEST(test_election),
		TMP_STORE_TEST(test_json_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
