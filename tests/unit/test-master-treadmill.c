/* test-master-treadmill.c: Treadmill's tests/master_test.py (33 cases,
 * reference/treadmill-scheduler.md §5) against the master's scheduler loop
 * (src/master/msched.c) on the real embedded store.  Times passed to the
 * pass are the tests' clock; the cases of masterapi (the admin side) are
 * checked from the master's side of the store contract (docs/MASTER.md). */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <jansson.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/json.h"
#include "../../src/basic/util.h"
#include "../../src/cellns/cellns.h"
#include "../../src/master/master-internal.h"
#include "../../src/master/master.h"
#include "../../src/master/msched.h"
#include "../../src/sched/sched-loader.h"
/* sched_loader_resources, the resource parser production uses, is file-local: compiled in. */
#include "../../src/sched/sched-loader.c"
#include "../../src/sched/sched.h"
#include "../../src/store/store.h"
#include "../../src/trace/trace.h"

struct t {
	char *dir;
	struct store *s;
	struct msched *m;
};

static struct t *T;

static const char *alloc_name(const struct sched_cell *c, int alloc)
{
	struct sched_alloc_info ai;

	return sched_alloc_info(c, alloc, &ai) == 0 ? ai.name : NULL;
}

static const char *node_level(const struct sched_cell *c, int node)
{
	struct sched_node_info ni;

	return sched_node_info(c, node, &ni) == 0 ? ni.level : NULL;
}

static int setup(void **state)
{
	struct error err = ERROR_INIT;
	char tmpl[] = "/dev/shm/test-master-tm.XXXXXX"; /* tmpfs: fsyncs are free, the test is about the master */

	T = calloc(1, sizeof(*T));
	assert_non_null(mkdtemp(tmpl));
	T->dir = strdup(tmpl);
	if (store_open(T->dir, NULL, &T->s, &err) < 0)
		fail_msg("store_open: %s", err.msg);
	assert_int_equal(cellns_create_top(T->s, &err), 0);
	assert_int_equal(cellns_create_shards(T->s, &(unsigned){ 0 }, CELLNS_SHARDS, &err), 0);
	*state = T;
	return 0;
}

static int teardown(void **state)
{
	store_close(T->s);
	msched_free(T->m);
	rm_rf(T->dir);
	free(T->dir);
	free(T);
	return 0;
}

static void start(void)
{
	struct msched_options o = { .hostname = "master.xx.com", .down_grace = 0, .no_compact = true };

	assert_int_equal(msched_new(T->s, &o, &T->m), 0);
}

static struct msched_stats pass(double now)
{
	struct error err = ERROR_INIT;
	struct msched_stats st;

	if (!T->m)
		start();
	/* deliver the watches of what the test changed (as the master's loop does) */
	for (int i = 0; i < 50 && store_wait(T->s, 5) > 0; i++)
		;
	if (msched_pass(T->m, now, &st, &err) < 0)
		fail_msg("pass: %s", err.msg);
	return st;
}

static void put(const char *path, const char *json)
{
	int r = store_set(T->s, path, json, strlen(json), -1, NULL);

	if (r == -ENOENT) {
		_cleanup_free_ char *parent = strndup(path, (size_t)(strrchr(path, '/') - path));

		if (*parent)
			(void)store_create_p(T->s, parent);
		r = store_create(T->s, path, json, strlen(json), STORE_PERSISTENT, NULL);
	}
	assert_int_equal(r, 0);
}

static void del(const char *path)
{
	assert_int_equal(store_delete(T->s, path, -1), 0);
}

static bool exists(const char *path)
{
	return store_exists(T->s, path, NULL, NULL, NULL) == 0;
}

static json_t *getj(const char *path)
{
	_cleanup_free_ char *d = NULL;

	if (store_get(T->s, path, &d, NULL, NULL, NULL, NULL) < 0 || !d)
		return NULL;
	return json_loads(d, JSON_DECODE_ANY, NULL);
}

static void presence(const char *host, bool on)
{
	_cleanup_free_ char *p = strdup_printf("/server.presence/%s", host);

	if (on)
		assert_int_equal(store_create(T->s, p, "{\"seen\":false}", 14, STORE_EPHEMERAL, NULL), 0);
	else
		del(p);
}

static void server(const char *host, const char *parent, const char *mem, const char *cpu, const char *disk,
		   bool up)
{
	_cleanup_free_ char *p = strdup_printf("/servers/%s", host);
	_cleanup_free_ char *d = strdup_printf(
		"{\"parent\":%s%s%s,\"partition\":\"_default\",\"memory\":\"%s\",\"cpu\":\"%s\",\"disk\":\"%s\"}",
		parent ? "\"" : "", parent ? parent : "null", parent ? "\"" : "", mem, cpu, disk);

	put(p, d);
	if (up)
		presence(host, true);
}

/* Top-level servers of 10G, 1000%, 10G, one per name of the comma-separated list. */
static void servers(const char *names, bool up)
{
	_cleanup_free_ char *copy = strdup(names);
	char *p = copy, *name;

	assert_non_null(copy);
	while ((name = strsep(&p, ",")))
		server(name, NULL, "10G", "1000%", "10G", up);
}

static void app(const char *name, const char *json)
{
	_cleanup_free_ char *p = strdup_printf("/scheduled/%s", name);

	put(p, json);
}

static void event(const char *prio_res, const char *payload)
{
	_cleanup_free_ char *p = strdup_printf("/events/%s-", prio_res);

	assert_int_equal(store_create(T->s, p, payload, payload ? strlen(payload) : 0,
				      STORE_PERSISTENT | STORE_SEQUENTIAL, NULL), 0);
}

/* Server of an app from /placement/<server>/<app>; NULL if none; fails if on two. */
static char *where(const char *inst)
{
	_cleanup_strv_free_ char **servers = NULL;
	char *found = NULL;

	store_children(T->s, "/placement", &servers, NULL, NULL);
	for (char **s = servers; s && *s; s++) {
		_cleanup_free_ char *p = strdup_printf("/placement/%s/%s", *s, inst);

		if (exists(p)) {
			if (found)
				fail_msg("%s placed on %s and %s", inst, found, *s);
			found = strdup(*s);
		}
	}
	return found;
}

/* test1 and test2 (10G, 1000%, 10G), foo.app1#0000000001 placed at `now`:
 * where (owned). */
static char *one_app_two_servers(double now)
{
	server("test1.xx.com", NULL, "10G", "1000%", "10G", true);
	server("test2.xx.com", NULL, "10G", "1000%", "10G", true);
	app("foo.app1#0000000001", "{}");
	pass(now);
	return where("foo.app1#0000000001");
}

static void assert_where(const char *inst, const char *server)
{
	_cleanup_free_ char *w = where(inst);

	if (!server && w)
		fail_msg("%s placed on %s, expected pending", inst, w);
	if (server && (!w || strcmp(w, server) != 0))
		fail_msg("%s on %s, expected %s", inst, w ? w : "(none)", server);
}

static bool has_trace(const char *inst, enum trace_type type, const char *data)
{
	struct trace_event *ev = NULL;
	size_t n = 0;
	bool found = false;

	if (trace_read(T->s, inst, &ev, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == type && (!data || strcmp(ev[i].data ? ev[i].data : "", data) == 0))
			found = true;
		trace_event_clear(&ev[i]);
	}
	free(ev);
	return found;
}

/* A /server-trace node "<server>,<ts>,<host>,<type>,<data>" exists. */
static bool has_server_trace(const char *server, const char *type, const char *data)
{
	_cleanup_strv_free_ char **shards = NULL;
	_cleanup_free_ char *suffix = strdup_printf(",%s,%s", type, data);

	store_children(T->s, "/server-trace", &shards, NULL, NULL);
	for (char **sh = shards; sh && *sh; sh++) {
		_cleanup_free_ char *p = strdup_printf("/server-trace/%s", *sh);
		_cleanup_strv_free_ char **ev = NULL;

		store_children(T->s, p, &ev, NULL, NULL);
		for (char **e = ev; e && *e; e++)
			if (startswith(*e, server) && (*e)[strlen(server)] == ',' && endswith(*e, suffix))
				return true;
	}
	return false;
}

static int app_id(const char *name)
{
	int a = sched_app_find(T->m->cell, name);

	if (a < 0)
		fail_msg("%s not in the model", name);
	return a;
}

static struct sched_app_info info_of(const char *name)
{
	struct sched_app_info i;

	assert_int_equal(sched_app_info(T->m->cell, app_id(name), &i), 0);
	return i;
}

static const char *state_of(const char *host)
{
	_cleanup_free_ char *p = strdup_printf("/placement/%s", host);
	json_t *j = getj(p);
	static char buf[32];

	snprintf(buf, sizeof(buf), "%s", j ? json_string_value(json_object_get(j, "state")) : "(none)");
	json_decref(j);
	return buf;
}

static size_t children_count(const char *path)
{
	_cleanup_strv_free_ char **l = NULL;

	store_children(T->s, path, &l, NULL, NULL);
	return strv_length(l);
}

/* Three flat servers 1, 2, 3 (up), big enough. */
static void three_servers(void)
{
	servers("1,2,3", true);
}

/* ------------------------------------------------------------------ cases */

/* 1 */
static void test_resource_parsing(void **state)
{
	_cleanup_json_ json_t *none = json_loads("{}", 0, NULL);
	_cleanup_json_ json_t *mem = json_loads("{\"memory\":\"1M\"}", 0, NULL);
	_cleanup_json_ json_t *all = json_loads("{\"memory\":\"1M\",\"cpu\":\"10%\",\"disk\":\"1G\"}", 0, NULL);
	int64_t r[3];

	assert_int_equal(sched_loader_resources(none, 0, r), 0);
	assert_true(r[0] == 0 && r[1] == 0 && r[2] == 0);
	assert_int_equal(sched_loader_resources(mem, 0, r), 0);
	assert_true(r[0] == 1 && r[1] == 0 && r[2] == 0);
	assert_int_equal(sched_loader_resources(all, 0, r), 0);
	assert_true(r[0] == 1 && r[1] == 10 && r[2] == 1024);
}

/* 2 */
static void test_load_servers(void **state)
{
	struct sched_node_info ni;
	struct sched_cell *c;
	int s, rack;

	put("/cell/pod:pod1", "");
	put("/buckets/pod:pod1", "{\"parent\":null,\"traits\":null}");
	put("/buckets/rack:1234", "{\"parent\":\"pod:pod1\",\"traits\":null}");
	put("/buckets/rack:2345", "{\"parent\":\"pod:pod1\",\"traits\":null}");
	server("test.xx.com", "rack:1234", "16G", "400%", "128G", true);
	pass(100);
	c = T->m->cell;
	s = sched_node_find(c, "test.xx.com");
	assert_true(s >= 0);
	rack = sched_node_parent(c, s);
	assert_string_equal(sched_node_name(c, rack), "rack:1234");
	assert_string_equal(sched_node_name(c, sched_node_parent(c, rack)), "pod:pod1");
	assert_int_equal(sched_node_parent(c, sched_node_parent(c, rack)), SCHED_ROOT);
	assert_int_equal(sched_node_info(c, s, &ni), 0);
	assert_int_equal(ni.capacity[0], 16384);
	assert_int_equal(ni.capacity[1], 400);
	assert_int_equal(ni.capacity[2], 131072);
	/* parent change */
	server("test.xx.com", "rack:2345", "16G", "400%", "128G", false);
	event("000-servers", "[\"test.xx.com\"]");
	pass(110);
	c = T->m->cell;
	s = sched_node_find(c, "test.xx.com");
	assert_string_equal(sched_node_name(c, sched_node_parent(c, s)), "rack:2345");
	/* capacity change */
	server("test.xx.com", "rack:2345", "32G", "400%", "128G", false);
	event("000-servers", "[\"test.xx.com\"]");
	pass(120);
	c = T->m->cell;
	assert_int_equal(sched_node_info(c, sched_node_find(c, "test.xx.com"), &ni), 0);
	assert_int_equal(ni.capacity[0], 32768);
	/* deleted */
	del("/servers/test.xx.com");
	presence("test.xx.com", false);
	event("000-servers", "[\"test.xx.com\"]");
	pass(130);
	assert_true(sched_node_find(T->m->cell, "test.xx.com") < 0);
	assert_int_equal(children_count("/events"), 0);
}

/* 3 */
static void test_adjust_server_state(void **state)
{
	enum sched_state st;
	double since;
	json_t *j;

	server("test.xx.com", NULL, "1G", "100%", "1G", false);
	pass(100);
	sched_server_get_state(T->m->cell, sched_node_find(T->m->cell, "test.xx.com"), &st, &since);
	assert_int_equal(st, SCHED_DOWN);
	presence("test.xx.com", true);
	pass(200);
	sched_server_get_state(T->m->cell, sched_node_find(T->m->cell, "test.xx.com"), &st, &since);
	assert_int_equal(st, SCHED_UP);
	assert_true(since == 200);
	j = getj("/placement/test.xx.com");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "up");
	assert_true(json_number_value(json_object_get(j, "since")) == 200);
	json_decref(j);
	assert_true(has_server_trace("test.xx.com", "server_state", "up"));
}

static const char *allocs_json =
	"[{\"name\":\"treadmill/dev\",\"partition\":\"_default\",\"rank\":100,\"memory\":\"1G\",\"cpu\":\"100%\","
	"\"disk\":\"1G\",\"assignments\":[{\"pattern\":\"treadmlx.*\",\"priority\":10},"
	"{\"pattern\":\"treadmill-users.*\",\"priority\":42}]}]";

/* 4 */
static void test_load_allocations(void **state)
{
	struct sched_alloc_info ai;
	struct sched_app_info i;

	put("/allocations", allocs_json);
	three_servers();
	app("treadmlx.app#0000000001", "{\"memory\":\"1M\"}");
	app("treadmill-users.app#0000000002", "{\"memory\":\"1M\"}");
	pass(100);
	i = info_of("treadmlx.app#0000000001");
	assert_string_equal(alloc_name(T->m->cell, i.alloc), "treadmill/dev");
	assert_int_equal(i.priority, 10);
	assert_int_equal(sched_alloc_info(T->m->cell, i.alloc, &ai), 0);
	assert_int_equal(ai.rank, 100);
	assert_true(ai.reserved[0] == 1024 && ai.reserved[1] == 100 && ai.reserved[2] == 1024);
	assert_int_equal(info_of("treadmill-users.app#0000000002").priority, 42);
}

/* 5 */
static void test_load_apps_blacklist(void **state)
{
	put("/blackedout.apps", "{\"xxx.*\":{\"reason\":\"r\",\"when\":1},\"yyy.app3\":{\"reason\":\"r\",\"when\":1}}");
	three_servers();
	app("xxx.app1#0000000001", "{}");
	app("xxx.app2#0000000002", "{}");
	app("yyy.app3#0000000003", "{}");
	app("yyy.app4#0000000004", "{}");
	pass(100);
	assert_true(info_of("xxx.app1#0000000001").blacklisted);
	assert_true(info_of("xxx.app2#0000000002").blacklisted);
	assert_true(info_of("yyy.app3#0000000003").blacklisted);
	assert_false(info_of("yyy.app4#0000000004").blacklisted);
}

/* 6 */
static void test_load_apps(void **state)
{
	three_servers();
	app("foo.bar#0000000001", "{\"memory\":\"1M\"}");
	pass(100);
	assert_int_equal(info_of("foo.bar#0000000001").priority, 1);
	app("foo.bar#0000000001", "{\"memory\":\"1M\",\"priority\":5}");
	event("001-apps", "[\"foo.bar#0000000001\"]");
	pass(110);
	assert_int_equal(info_of("foo.bar#0000000001").priority, 5);
	assert_true(sched_app_next(T->m->cell, sched_app_next(T->m->cell, -1)) < 0);
}

/* 7 */
static void test_remove_app(void **state)
{
	_cleanup_free_ char *w = NULL;
	json_t *j;

	three_servers();
	app("foo.bar#0000000001", "{\"memory\":\"1M\"}");
	app("foo.bar#0000000002", "{\"memory\":\"1M\"}");
	pass(100);
	w = where("foo.bar#0000000001");
	assert_non_null(w);
	del("/scheduled/foo.bar#0000000001");
	put("/finished/foo.bar#0000000002", "{\"state\":\"finished\"}");
	del("/scheduled/foo.bar#0000000002");
	pass(110);
	assert_where("foo.bar#0000000001", NULL);
	assert_true(has_trace("foo.bar#0000000001", TRACE_DELETED, NULL));
	j = getj("/finished/foo.bar#0000000001");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "terminated");
	assert_string_equal(json_string_value(json_object_get(j, "host")), w);
	json_decref(j);
	j = getj("/finished/foo.bar#0000000002"); /* kept */
	assert_string_equal(json_string_value(json_object_get(j, "state")), "finished");
	json_decref(j);
}

/* 8 */
static void test_reschedule(void **state)
{
	_cleanup_free_ char *w1 = NULL, *w2 = NULL, *p = NULL, *w1b = NULL;
	json_t *j;

	three_servers();
	put("/identity-groups/ident", "{\"count\":1}");
	app("app1.x#0000000001", "{\"memory\":\"1M\",\"lease\":400}");
	app("app2.x#0000000002", "{\"memory\":\"1M\",\"identity_group\":\"ident\",\"lease\":400}");
	pass(100);
	w1 = where("app1.x#0000000001");
	w2 = where("app2.x#0000000002");
	assert_non_null(w1);
	assert_non_null(w2);
	p = strdup_printf("/placement/%s/app1.x#0000000001", w1);
	j = getj(p);
	assert_true(json_number_value(json_object_get(j, "expires")) == 500);
	assert_true(json_is_null(json_object_get(j, "identity")));
	assert_true(json_is_null(json_object_get(j, "identity_count")));
	json_decref(j);
	free(p);
	p = strdup_printf("/placement/%s/app2.x#0000000002", w2);
	j = getj(p);
	assert_int_equal(json_integer_value(json_object_get(j, "identity")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "identity_count")), 1);
	json_decref(j);
	/* app1's server goes down: it moves, the old node is deleted */
	presence(w1, false);
	pass(200);
	w1b = where("app1.x#0000000001");
	assert_non_null(w1b);
	assert_string_not_equal(w1b, w1);
	assert_where("app2.x#0000000002", w2);
	_cleanup_free_ char *why = strdup_printf("%s:%s:down", w1b, w1);
	assert_true(has_trace("app1.x#0000000001", TRACE_SCHEDULED, why));
}

/* 9 */
static void test_reschedule_maxutil(void **state)
{
	server("1", NULL, "1M", "1%", "1M", true);
	put("/allocations", "[{\"name\":\"a/b\",\"partition\":\"_default\",\"memory\":\"1M\",\"cpu\":\"1%\","
			    "\"disk\":\"1M\",\"max_utilization\":2,\"assignments\":[{\"pattern\":\"foo.*\","
			    "\"priority\":1}]}]");
	app("foo.app1#0000000001", "{\"memory\":\"1M\",\"cpu\":\"1%\",\"disk\":\"1M\"}");
	app("foo.app2#0000000002", "{\"memory\":\"1M\",\"cpu\":\"1%\",\"disk\":\"1M\"}");
	pass(100);
	assert_where("foo.app1#0000000001", "1");
	assert_where("foo.app2#0000000002", NULL);
	app("foo.app2#0000000002", "{\"memory\":\"1M\",\"cpu\":\"1%\",\"disk\":\"1M\",\"priority\":5}");
	event("001-apps", "[\"foo.app2#0000000002\"]");
	pass(110);
	assert_where("foo.app2#0000000002", "1");
	assert_where("foo.app1#0000000001", NULL);
	assert_true(has_trace("foo.app1#0000000001", TRACE_PENDING, "evicted"));
}

/* 10 */
static void test_reschedule_once(void **state)
{
	json_t *j;

	server("1", NULL, "1G", "100%", "1G", true);
	app("foo.once#0000000001", "{\"memory\":\"1M\",\"schedule_once\":true}");
	pass(100);
	assert_where("foo.once#0000000001", "1");
	presence("1", false);
	pass(200);
	assert_where("foo.once#0000000001", NULL);
	assert_false(exists("/scheduled/foo.once#0000000001"));
	j = getj("/finished/foo.once#0000000001");
	assert_string_equal(json_string_value(json_object_get(j, "data")), "schedule_once");
	json_decref(j);
}

/* 11 */
static void test_load_allocation(void **state)
{
	struct sched_alloc_info ai;
	int p, a;

	put("/partitions/p", "{}");
	put("/allocations", "[{\"name\":\"foo\",\"partition\":\"p\",\"rank\":100,\"rank_adjustment\":10,"
			    "\"max_utilization\":1.1}]");
	pass(100);
	p = sched_partition_get(T->m->cell, "p");
	a = sched_alloc_get_path(T->m->cell, p, "foo");
	assert_int_equal(sched_alloc_info(T->m->cell, a, &ai), 0);
	assert_int_equal(ai.rank, 100);
	assert_int_equal(ai.rank_adjustment, 10);
	assert_true(fabs(ai.max_utilization - 1.1) < 1e-9);
}

/* 12 (skipped upstream, flaky): a partition's reboot schedule decides its
 * servers' valid_until: here Saturdays 23:59:59 local time, within 21 days. */
static void test_load_partition(void **state)
{
	struct sched_node_info ni;
	struct tm tm;
	time_t t;

	put("/partitions/p", "{\"reboot-schedule\":{\"5\":[23,59,59]}}");
	put("/servers/s1", "{\"partition\":\"p\",\"memory\":\"1G\",\"cpu\":\"100%\",\"disk\":\"1G\"}");
	presence("s1", true);
	pass(1700000000);
	assert_int_equal(sched_node_info(T->m->cell, sched_node_find(T->m->cell, "s1"), &ni), 0);
	assert_true(ni.valid_until > 1700000000 + 86400 && ni.valid_until <= 1700000000 + 22 * 86400);
	t = (time_t)ni.valid_until;
	localtime_r(&t, &tm);
	assert_int_equal(tm.tm_wday, 6);
	assert_int_equal(tm.tm_hour, 23);
	assert_int_equal(tm.tm_min, 59);
}

/* 13 */
static void test_restore_placement(void **state)
{
	struct sched_app_info i;
	struct msched_stats st;
	json_t *j;

	put("/identity-groups/ident", "{\"count\":5}");
	servers("test1,test2,test3", false);
	app("foo.app1#0000000001", "{\"memory\":\"1M\",\"identity_group\":\"ident\",\"lease\":100}");
	app("foo.app2#0000000002", "{\"memory\":\"1M\",\"lease\":100}");
	app("foo.app3#0000000003", "{\"memory\":\"1M\",\"lease\":100}");
	app("foo.app4#0000000004", "{\"memory\":\"1M\",\"schedule_once\":true}");
	app("foo.app5#0000000005", "{\"memory\":\"1M\",\"schedule_once\":true}");
	/* test1's session is older than its placements; test2's is newer; test3 down */
	presence("test1", true);
	put("/placement/test1", "{\"state\":\"up\",\"since\":50}");
	put("/placement/test2", "{\"state\":\"up\",\"since\":50}");
	put("/placement/test3", "{\"state\":\"down\",\"since\":50}");
	usleep(5000);
	put("/placement/test1/foo.app1#0000000001", "{\"expires\":300,\"identity\":1,\"identity_count\":5}");
	put("/placement/test1/foo.app2#0000000002", "{\"expires\":300,\"identity\":null,\"identity_count\":null}");
	put("/placement/test2/foo.app3#0000000003", "{\"expires\":300,\"identity\":null,\"identity_count\":null}");
	put("/placement/test2/foo.app4#0000000004", "{\"expires\":null,\"identity\":null,\"identity_count\":null}");
	put("/placement/test3/foo.app5#0000000005", "{\"expires\":null,\"identity\":null,\"identity_count\":null}");
	usleep(5000);
	presence("test2", true);
	st = pass(123.34 - 100);
	(void)st;
	i = info_of("foo.app1#0000000001");
	assert_true(i.expiry == 300);
	assert_int_equal(i.identity, 1);
	assert_where("foo.app1#0000000001", "test1");
	i = info_of("foo.app2#0000000002");
	assert_true(i.expiry == 300);
	assert_where("foo.app2#0000000002", "test1");
	i = info_of("foo.app3#0000000003");
	assert_where("foo.app3#0000000003", "test2");
	assert_true(fabs(i.expiry - 123.34) < 1e-6); /* put again: now + lease */
	j = getj("/placement/test2/foo.app3#0000000003");
	assert_true(fabs(json_number_value(json_object_get(j, "expires")) - 123.34) < 1e-6);
	json_decref(j);
	for (int k = 4; k <= 5; k++) {
		_cleanup_free_ char *n = strdup_printf("foo.app%d#000000000%d", k, k);
		_cleanup_free_ char *f = strdup_printf("/finished/%s", n), *s = strdup_printf("/scheduled/%s", n);

		assert_true(sched_app_find(T->m->cell, n) < 0);
		assert_false(exists(s));
		j = getj(f);
		assert_string_equal(json_string_value(json_object_get(j, "data")), "schedule_once");
		json_decref(j);
		assert_where(n, NULL);
	}
	/* a later pass changes nothing */
	st = pass(24);
	assert_int_equal(st.changed, 0);
}

/* 14 */
static void test_restore_with_integrity_err(void **state)
{
	servers("test1,test2", true);
	app("foo.app1#0000000001", "{\"memory\":\"1M\"}");
	app("foo.app2#0000000002", "{\"memory\":\"1M\"}");
	put("/placement/test1/foo.app1#0000000001", "{\"expires\":null,\"identity\":null}");
	put("/placement/test2/foo.app1#0000000001", "{\"expires\":null,\"identity\":null}");
	put("/placement/test2/foo.app2#0000000002", "{\"expires\":null,\"identity\":null}");
	pass(100);
	_cleanup_free_ char *w = where("foo.app1#0000000001"); /* exactly one copy (fails on two) */
	assert_non_null(w);
	assert_where("foo.app2#0000000002", "test2");
	assert_true(has_trace("foo.app1#0000000001", TRACE_SCHEDULED, NULL)); /* re-placed as new */
}

/* 15 */
static void test_apps_blacklist_events(void **state)
{
	three_servers();
	app("xxx.app1#0000000001", "{}");
	app("yyy.app2#0000000002", "{}");
	pass(100);
	assert_false(info_of("xxx.app1#0000000001").blacklisted);
	put("/blackedout.apps", "{\"xxx.*\":{\"reason\":\"r\",\"when\":1}}");
	event("000-apps_blacklist", NULL);
	pass(110);
	assert_true(info_of("xxx.app1#0000000001").blacklisted);
	assert_false(info_of("yyy.app2#0000000002").blacklisted);
	assert_int_equal(children_count("/events"), 0);
}

/* 16 */
static void test_app_events(void **state)
{
	three_servers();
	app("treadmlx.app#0000000001", "{\"memory\":\"1M\"}");
	app("foo.bar#0000000002", "{\"memory\":\"1M\"}");
	pass(100);
	assert_string_equal(alloc_name(T->m->cell, info_of("treadmlx.app#0000000001").alloc),
			    "_default/treadmlx");
	put("/allocations", allocs_json);
	event("001-allocations", NULL);
	app("foo.bar#0000000002", "{\"memory\":\"1M\",\"priority\":7}");
	event("000-apps", "[\"foo.bar#0000000002\"]");
	pass(110);
	assert_string_equal(alloc_name(T->m->cell, info_of("treadmlx.app#0000000001").alloc),
			    "treadmill/dev");
	assert_int_equal(info_of("treadmlx.app#0000000001").priority, 10);
	assert_int_equal(info_of("foo.bar#0000000002").priority, 7);
}

/* 17 */
static void test_alloc_events(void **state)
{
	struct sched_alloc_info ai;

	three_servers();
	put("/allocations", allocs_json);
	app("treadmlx.app#0000000001", "{\"memory\":\"1M\"}");
	pass(100);
	put("/allocations", "[{\"name\":\"treadmill/dev\",\"partition\":\"_default\",\"rank\":50,"
			    "\"memory\":\"2G\",\"assignments\":[{\"pattern\":\"treadmlx.*\",\"priority\":20}]}]");
	event("001-allocations", NULL);
	pass(110);
	assert_int_equal(info_of("treadmlx.app#0000000001").priority, 20);
	sched_alloc_info(T->m->cell, info_of("treadmlx.app#0000000001").alloc, &ai);
	assert_int_equal(ai.rank, 50);
	assert_true(ai.reserved[0] == 2048);
}

/* 18 */
static void test_server_state_events(void **state)
{
	enum sched_state st;
	double since;
	int s;

	server("test.xx.com", NULL, "10G", "1000%", "10G", true);
	app("foo.app1#0000000001", "{\"memory\":\"1M\"}");
	app("foo.app2#0000000002", "{\"memory\":\"1M\"}");
	pass(100);
	assert_where("foo.app1#0000000001", "test.xx.com");
	event("000-server_state", "[\"test.xx.com\",\"frozen\",[\"foo.app1#0000000001\"]]");
	pass(200);
	s = sched_node_find(T->m->cell, "test.xx.com");
	sched_server_get_state(T->m->cell, s, &st, &since);
	assert_int_equal(st, SCHED_FROZEN);
	assert_true(since == 200);
	assert_string_equal(state_of("test.xx.com"), "frozen");
	assert_true(has_server_trace("test.xx.com", "server_state", "frozen"));
	assert_where("foo.app1#0000000001", NULL);
	assert_true(has_trace("foo.app1#0000000001", TRACE_PENDING, "test.xx.com:frozen"));
	assert_where("foo.app2#0000000002", "test.xx.com");
	event("000-server_state", "[\"test.xx.com\",\"up\",[]]");
	pass(300);
	assert_string_equal(state_of("test.xx.com"), "up");
	event("000-server_state", "[\"test.xx.com\",\"down\",[]]");
	pass(400);
	assert_string_equal(state_of("test.xx.com"), "down");
	assert_true(has_server_trace("test.xx.com", "server_state", "down"));
}

/* 19: the cell API creates /scheduled/<app># sequentially; the master places it. */
static void test_create_apps(void **state)
{
	_cleanup_free_ char *created = NULL;

	three_servers();
	assert_int_equal(store_create(T->s, "/scheduled/foo.bar#", "{}", 2, STORE_PERSISTENT | STORE_SEQUENTIAL,
				      &created),
			 0);
	pass(100);
	assert_true(has_trace(strrchr(created, '/') + 1, TRACE_SCHEDULED, NULL));
	_cleanup_free_ char *w = where(strrchr(created, '/') + 1);
	assert_non_null(w);
}

/* 20 */
static void test_delete_apps(void **state)
{
	three_servers();
	app("foo.bar#0000000012", "{}");
	pass(100);
	del("/scheduled/foo.bar#0000000012");
	pass(110);
	assert_where("foo.bar#0000000012", NULL);
	assert_true(has_trace("foo.bar#0000000012", TRACE_DELETED, ""));
	assert_true(sched_app_find(T->m->cell, "foo.bar#0000000012") < 0);
}

/* 21 */
static void test_update_app_priority(void **state)
{
	three_servers();
	app("foo.bar#0000000001", "{}");
	pass(100);
	app("foo.bar#0000000001", "{\"priority\":30}");
	event("001-apps", "[\"foo.bar#0000000001\"]");
	pass(110);
	assert_int_equal(info_of("foo.bar#0000000001").priority, 30);
	assert_int_equal(children_count("/events"), 0);
}

/* 22: no event, no reload: the master does not re-read a manifest. */
static void test_update_app_priority_noop(void **state)
{
	struct msched_stats st;

	three_servers();
	app("foo.bar#0000000001", "{}");
	pass(100);
	app("foo.bar#0000000001", "{\"priority\":30}");
	st = pass(110);
	assert_int_equal(info_of("foo.bar#0000000001").priority, 1);
	assert_int_equal(st.changed, 0);
}

/* 23 */
static void test_cell_insert_bucket(void **state)
{
	pass(100);
	assert_true(sched_node_find(T->m->cell, "pod:pod1") < 0);
	put("/buckets/pod:pod1", "{\"parent\":null,\"traits\":null}");
	put("/cell/pod:pod1", "");
	event("000-cell", NULL);
	pass(110);
	assert_int_equal(sched_node_parent(T->m->cell, sched_node_find(T->m->cell, "pod:pod1")),
			 SCHED_ROOT);
	assert_int_equal(children_count("/events"), 0);
}

/* 24 */
static void test_load_buckets(void **state)
{
	struct sched_cell *c;

	put("/cell/pod:pod1", "");
	put("/buckets/pod:pod1", "{\"parent\":null}");
	pass(100);
	put("/cell/pod:pod2", "");
	put("/buckets/pod:pod2", "{\"parent\":null}");
	put("/buckets/rack:4321", "{\"parent\":\"pod:pod2\"}");
	event("000-buckets", NULL);
	pass(110);
	c = T->m->cell;
	assert_string_equal(sched_node_name(c, sched_node_parent(c, sched_node_find(c, "rack:4321"))), "pod:pod2");
	assert_string_equal(node_level(c, sched_node_find(c, "rack:4321")), "rack");
}

/* 25 */
static void test_load_buckets_levels(void **state)
{
	struct sched_cell *c;
	int r;

	put("/cell/pod:pod1", "");
	put("/buckets/pod:pod1", "{\"parent\":null}");
	put("/buckets/podgroup:g1", "{\"parent\":\"pod:pod1\"}");
	put("/buckets/rack:4321", "{\"parent\":\"podgroup:g1\"}");
	event("000-buckets", NULL);
	pass(100);
	c = T->m->cell;
	r = sched_node_find(c, "rack:4321");
	assert_string_equal(node_level(c, sched_node_parent(c, r)), "podgroup");
	assert_string_equal(sched_node_name(c, sched_node_parent(c, sched_node_parent(c, r))), "pod:pod1");
}

/* 26: servers past their valid_until get /reboots/<server>, except one holding an app. */
static void test_check_reboot(void **state)
{
	struct sched_node_info ni;
	_cleanup_free_ char *w = NULL, *other = NULL, *p = NULL, *po = NULL;

	put("/partitions/_default", "{\"reboot-schedule\":{\"5\":[23,59,59]}}");
	w = one_app_two_servers(1000000);
	other = strdup(strcmp(w, "test1.xx.com") == 0 ? "test2.xx.com" : "test1.xx.com");
	assert_int_equal(sched_node_info(T->m->cell, sched_node_find(T->m->cell, other), &ni), 0);
	assert_true(ni.valid_until > 1000000 && ni.valid_until < 1000000 + 22 * 86400);
	msched_check_reboots(T->m, 1000000 + 1000);
	assert_int_equal(children_count("/reboots"), 0);
	msched_check_reboots(T->m, ni.valid_until + 1);
	p = strdup_printf("/reboots/%s", other);
	po = strdup_printf("/reboots/%s", w);
	assert_true(exists(p));
	assert_false(exists(po));
}

/* 27 */
static void test_placement_integrity(void **state)
{
	_cleanup_free_ char *w = NULL, *other = NULL, *p = NULL;

	servers("1,2", true);
	app("foo.app1#0000000001", "{}");
	pass(100);
	w = where("foo.app1#0000000001");
	other = strdup(strcmp(w, "1") == 0 ? "2" : "1");
	p = strdup_printf("/placement/%s/foo.app1#0000000001", other);
	put(p, "{}");
	event("000-cell", NULL); /* any reload re-checks the store */
	pass(110);
	free(w);
	w = where("foo.app1#0000000001"); /* fails if still on two */
	assert_non_null(w);
}

/* 28 */
static void test_create_server(void **state)
{
	struct sched_node_info ni;
	struct sched_cell *c;

	put("/cell/bucket0", "");
	put("/buckets/bucket0", "{\"parent\":null,\"level\":\"rack\"}");
	pass(100);
	put("/servers/foo", "{\"parent\":\"bucket0\",\"partition\":\"_default\"}");
	event("000-servers", "[\"foo\"]");
	pass(110);
	c = T->m->cell;
	assert_int_equal(sched_node_info(c, sched_node_find(c, "foo"), &ni), 0);
	assert_string_equal(sched_node_name(c, ni.parent), "bucket0");
	assert_string_equal(ni.partition, "_default");
}

/* 29 */
static void test_update_server_features(void **state)
{
	server("foo", NULL, "1G", "100%", "1G", true);
	pass(100);
	put("/servers/foo", "{\"partition\":\"_default\",\"memory\":\"1G\",\"cpu\":\"100%\",\"disk\":\"1G\","
			    "\"features\":[\"f1\"]}");
	event("000-servers", "[\"foo\"]");
	pass(110);
	assert_true(sched_node_find(T->m->cell, "foo") >= 0);
	assert_int_equal(children_count("/events"), 0);
}

/* 30: treadle has no read-only backend (a standby never writes: 65-master-election.sh);
 * here: a master restarted on an unchanged store (same node sessions) restores
 * everything and writes no placement. */
static void test_readonly_master(void **state)
{
	struct store_stat a, b, sa, sb;
	struct msched_stats st;
	_cleanup_free_ char *w = NULL, *p = NULL, *sp = NULL;

	three_servers();
	app("foo.app1#0000000001", "{\"lease\":100}");
	pass(1700000000);
	w = where("foo.app1#0000000001");
	p = strdup_printf("/placement/%s/foo.app1#0000000001", w);
	sp = strdup_printf("/placement/%s", w);
	assert_int_equal(store_exists(T->s, p, &a, NULL, NULL), 0);
	assert_int_equal(store_exists(T->s, sp, &sa, NULL, NULL), 0);
	msched_free(T->m);
	T->m = NULL;
	st = pass(1700000050);
	assert_true(st.reloaded);
	assert_int_equal(st.changed, 0);
	assert_int_equal(store_exists(T->s, p, &b, NULL, NULL), 0);
	assert_int_equal(store_exists(T->s, sp, &sb, NULL, NULL), 0);
	assert_true(a.mtime_ms == b.mtime_ms && a.version == b.version);
	assert_true(sa.version == sb.version);
	assert_true(info_of("foo.app1#0000000001").expiry == 1700000100);
}

/* 31 */
static void test_check_pending_start(void **state)
{
	enum sched_state st;
	double since;
	_cleanup_free_ char *w = NULL, *other = NULL, *why = NULL, *rp = NULL;

	w = one_app_two_servers(100);
	other = strdup(strcmp(w, "test1.xx.com") == 0 ? "test2.xx.com" : "test1.xx.com");
	T->m->need_check = true;
	pass(150); /* recorded: not running since 150 */
	T->m->need_check = true;
	pass(300); /* < 300 s: nothing */
	assert_where("foo.app1#0000000001", w);
	T->m->need_check = true;
	pass(451);
	sched_server_get_state(T->m->cell, sched_node_find(T->m->cell, w), &st, &since);
	assert_int_equal(st, SCHED_FROZEN);
	assert_true(since == 451);
	assert_string_equal(state_of(w), "frozen");
	assert_true(has_server_trace(w, "server_state", "frozen"));
	assert_where("foo.app1#0000000001", other);
	why = strdup_printf("%s:%s:frozen", other, w);
	assert_true(has_trace("foo.app1#0000000001", TRACE_SCHEDULED, why));
	/* running on the new server: never frozen */
	rp = strdup("/running/foo.app1#0000000001");
	put(rp, other);
	T->m->need_check = true;
	pass(500);
	T->m->need_check = true;
	pass(1000);
	assert_string_equal(state_of(other), "up");
	assert_where("foo.app1#0000000001", other);
}

/* 32 */
static void test_blacklisted_apps(void **state)
{
	three_servers();
	put("/blackedout.apps", "{\"xxx.*\":{\"reason\":\"r\",\"when\":1}}");
	app("xxx.app1#0000000001", "{}");
	app("zzz.app5#0000000005", "{}");
	pass(100);
	assert_where("xxx.app1#0000000001", NULL);
	_cleanup_free_ char *w = where("zzz.app5#0000000005");
	assert_non_null(w);
	put("/blackedout.apps", "{\"xxx.*\":{\"reason\":\"r\",\"when\":1},\"zzz.app5\":{\"reason\":\"r\",\"when\":1}}");
	put("/blackedout.apps", "{\"xxx.*\":{},\"zzz.app5*\":{}}");
	event("000-apps_blacklist", NULL);
	pass(110);
	assert_where("zzz.app5#0000000005", NULL);
	assert_true(has_trace("zzz.app5#0000000005", TRACE_PENDING, "blacklisted"));
	put("/blackedout.apps", "{}");
	event("000-apps_blacklist", NULL);
	pass(120);
	free(w);
	w = where("zzz.app5#0000000005");
	assert_non_null(w);
	_cleanup_free_ char *w1 = where("xxx.app1#0000000001");
	assert_non_null(w1);
}

/* 33 (plus treadle's rule: a blacked-out server's apps move) */
static void test_blacklisted_servers(void **state)
{
	_cleanup_free_ char *w = NULL, *p = NULL, *why = NULL, *w2 = NULL;

	w = one_app_two_servers(100);
	p = strdup_printf("/blackedout.servers/%s", w);
	put(p, "\"watchdog\"");
	pass(110);
	assert_true(has_server_trace(w, "server_blackout", ""));
	w2 = where("foo.app1#0000000001");
	assert_non_null(w2);
	assert_string_not_equal(w2, w);
	why = strdup_printf("%s:%s:down", w2, w);
	assert_true(has_trace("foo.app1#0000000001", TRACE_SCHEDULED, why));
	del(p);
	pass(120);
	assert_true(has_server_trace(w, "server_blackout_cleared", ""));
	assert_string_equal(state_of(w), "up");
}

/* Not Treadmill's (treadle issue 9): /scheduled data that cannot be a
 * manifest ends aborted (invalid_manifest) and unscheduled; a node the store
 * cannot read is skipped and counted, once; the rest is placed, also after a
 * reload. */
static void test_invalid_and_unreadable_apps(void **state)
{
	_cleanup_free_ char *node = strdup_printf("%s/tree/scheduled/foo.bad#0000000004/.node", T->dir);
	_cleanup_free_ char *w = NULL, *w2 = NULL;
	struct msched_stats st;

	three_servers();
	app("foo.arr#0000000001", "[1,2,3]");
	app("foo.txt#0000000002", "not json");
	app("foo.ok#0000000003", "{}");
	app("foo.bad#0000000004", "{}");
	assert_int_equal(write_file_atomic(node, "garbage\n", 8, 0644), 0);
	st = pass(100);
	assert_true(has_trace("foo.arr#0000000001", TRACE_ABORTED, "invalid_manifest"));
	assert_true(has_trace("foo.txt#0000000002", TRACE_ABORTED, "invalid_manifest"));
	assert_false(exists("/scheduled/foo.arr#0000000001"));
	assert_false(exists("/scheduled/foo.txt#0000000002"));
	assert_true(exists("/finished/foo.arr#0000000001"));
	assert_int_equal(st.unreadable, 1);
	w = where("foo.ok#0000000003");
	assert_non_null(w);
	assert_null(where("foo.bad#0000000004"));
	app("foo.ok2#0000000005", "{}");
	T->m->need_reload = true;
	st = pass(110);
	assert_int_equal(st.unreadable, 1);
	w2 = where("foo.ok2#0000000005");
	assert_non_null(w2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T_(test_resource_parsing),	 T_(test_load_servers),
		T_(test_adjust_server_state),	 T_(test_load_allocations),
		T_(test_load_apps_blacklist),	 T_(test_load_apps),
		T_(test_remove_app),		 T_(test_reschedule),
		T_(test_reschedule_maxutil),	 T_(test_reschedule_once),
		T_(test_load_allocation),	 T_(test_load_partition),
		T_(test_restore_placement),	 T_(test_restore_with_integrity_err),
		T_(test_apps_blacklist_events),	 T_(test_app_events),
		T_(test_alloc_events),		 T_(test_server_state_events),
		T_(test_create_apps),		 T_(test_delete_apps),
		T_(test_update_app_priority),	 T_(test_update_app_priority_noop),
		T_(test_cell_insert_bucket),	 T_(test_load_buckets),
		T_(test_load_buckets_levels),	 T_(test_check_reboot),
		T_(test_placement_integrity),	 T_(test_create_server),
		T_(test_update_server_features), T_(test_readonly_master),
		T_(test_check_pending_start),	 T_(test_blacklisted_apps),
		T_(test_blacklisted_servers),	 T_(test_invalid_and_unreadable_apps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
