/* test-admin.c: admin changes on the embedded store: validation names the
 * field and writes nothing; a change lands with its /events entry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "../../src/admin/admin.h"
#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/store/store.h"

#define TMP_STORE_TAG "admin"
#include "tmp-store.h"


static size_t count_events(const char *resource)
{
	_cleanup_strv_free_ char **ev = NULL;
	_cleanup_free_ char *prefix = strdup_printf("000-%s-", resource);
	size_t n = 0;

	if (store_children(tmp_store, "/events", &ev, NULL, NULL) < 0)
		return 0;
	for (char **e = ev; *e; e++)
		if (startswith(*e, prefix))
			n++;
	return n;
}

static json_t *get_json(const char *path)
{
	_cleanup_free_ char *data = NULL;

	if (store_get(tmp_store, path, &data, NULL, NULL, NULL, NULL) < 0)
		return NULL;
	return json_loads(data, JSON_DECODE_ANY, NULL);
}

static void expect_perm(int r, struct error *err, const char *needle)
{
	assert_true(r < 0);
	assert_int_equal(err->code, ERR_PERM);
	assert_non_null(err->msg);
	if (!strstr(err->msg, needle))
		fail_msg("error '%s' does not name '%s'", err->msg, needle);
	assert_null(strchr(err->msg, '\n'));
	error_clear(err);
}

static void test_bucket_and_cell(void **state)
{
	struct error err = ERROR_INIT;

	assert_int_equal(admin_bucket_add(tmp_store, "pod:p1", NULL, NULL, -1, &err), 0);
	assert_int_equal(admin_bucket_add(tmp_store, "rack:r1", "pod:p1", NULL, 3, &err), 0);
	expect_perm(admin_bucket_add(tmp_store, "rack:r2", "pod:missing", NULL, -1, &err), &err, "parent");
	assert_int_equal(store_exists(tmp_store, "/buckets/rack:r2", NULL, NULL, NULL), -ENOENT);
	expect_perm(admin_bucket_add(tmp_store, "noprefix", NULL, NULL, -1, &err), &err, "level");
	assert_int_equal(count_events("buckets"), 2);

	json_t *b = get_json("/buckets/rack:r1");
	assert_string_equal(json_string_value(json_object_get(b, "parent")), "pod:p1");
	assert_int_equal(json_integer_value(json_object_get(b, "traits")), 3);
	json_decref(b);

	expect_perm(admin_cell_insert(tmp_store, "pod:none", &err), &err, "bucket");
	assert_int_equal(admin_cell_insert(tmp_store, "pod:p1", &err), 0);
	assert_int_equal(count_events("cell"), 1);
	expect_perm(admin_bucket_delete(tmp_store, "pod:p1", &err), &err, "rack:r1");
	assert_int_equal(admin_cell_remove(tmp_store, "pod:p1", &err), 0);
	expect_perm(admin_cell_remove(tmp_store, "pod:p1", &err), &err, "pod:p1");
	assert_int_equal(count_events("cell"), 2);
}

static void test_server(void **state)
{
	struct error err = ERROR_INIT;
	char *traits[] = { (char *)"ssd", NULL };
	struct admin_server srv = { .name = "h1", .parent = "rack:r1", .memory = "8G", .cpu = "400", .traits = traits };
	struct admin_server bad = { .name = "h2", .memory = "lots" };
	json_t *j, *payload;
	_cleanup_strv_free_ char **ev = NULL;

	assert_int_equal(admin_bucket_add(tmp_store, "rack:r1", NULL, NULL, -1, &err), 0);
	assert_int_equal(admin_server_add(tmp_store, &srv, &err), 0);
	j = get_json("/servers/h1");
	assert_string_equal(json_string_value(json_object_get(j, "memory")), "8192M");
	assert_string_equal(json_string_value(json_object_get(j, "cpu")), "400%");
	assert_string_equal(json_string_value(json_object_get(j, "partition")), "_default");
	json_decref(j);

	/* the node's keys survive an admin update */
	assert_int_equal(store_set(tmp_store, "/servers/h1", "{\"up_since\": 5, \"memory\": \"100M\"}", 33, -1, NULL), 0);
	struct admin_server upd = { .name = "h1", .parent = "rack:r1" };
	assert_int_equal(admin_server_add(tmp_store, &upd, &err), 0);
	j = get_json("/servers/h1");
	assert_int_equal(json_integer_value(json_object_get(j, "up_since")), 5);
	assert_string_equal(json_string_value(json_object_get(j, "parent")), "rack:r1");
	json_decref(j);

	expect_perm(admin_server_add(tmp_store, &bad, &err), &err, "memory");
	assert_int_equal(store_exists(tmp_store, "/servers/h2", NULL, NULL, NULL), -ENOENT);
	bad.memory = NULL;
	bad.name = "../x";
	expect_perm(admin_server_add(tmp_store, &bad, &err), &err, "server");
	bad.name = "h2";
	bad.partition = "nopart";
	expect_perm(admin_server_add(tmp_store, &bad, &err), &err, "partition");
	assert_int_equal(count_events("servers"), 2);

	char *apps[] = { (char *)"foo.bar#0000000001", NULL };
	assert_int_equal(admin_server_state(tmp_store, "h1", ADMIN_STATE_FROZEN, apps, &err), 0);
	expect_perm(admin_server_state(tmp_store, "nosuch", ADMIN_STATE_UP, NULL, &err), &err, "nosuch");
	assert_int_equal(count_events("server_state"), 1);
	assert_int_equal(store_children(tmp_store, "/events", &ev, NULL, NULL), 0);
	for (char **e = ev; *e; e++)
		if (startswith(*e, "000-server_state-")) {
			_cleanup_free_ char *p = strdup_printf("/events/%s", *e);
			payload = get_json(p);
			assert_string_equal(json_string_value(json_array_get(payload, 1)), "frozen");
			assert_string_equal(json_string_value(json_array_get(json_array_get(payload, 2), 0)),
					    "foo.bar#0000000001");
			json_decref(payload);
		}
	expect_perm(admin_bucket_delete(tmp_store, "rack:r1", &err), &err, "h1");
	assert_int_equal(admin_server_delete(tmp_store, "h1", &err), 0);
	expect_perm(admin_server_delete(tmp_store, "h1", &err), &err, "h1");
}

static void test_alloc(void **state)
{
	struct error err = ERROR_INIT;
	struct admin_alloc a = { .name = "tenant/dev", .memory = "1G", .rank = -1, .max_utilization = -1 };
	json_t *j;

	assert_int_equal(admin_alloc_set(tmp_store, &a, &err), 0);
	assert_int_equal(admin_alloc_assign(tmp_store, "tenant/dev", "foo.*", 10, &err), 0);
	expect_perm(admin_alloc_assign(tmp_store, "tenant/dev", "nodot", 10, &err), &err, "pattern");
	expect_perm(admin_alloc_assign(tmp_store, "tenant/dev", "foo.*", 101, &err), &err, "priority");
	expect_perm(admin_alloc_assign(tmp_store, "tenant/none", "foo.*", 1, &err), &err, "allocation");
	a.memory = "1X";
	expect_perm(admin_alloc_set(tmp_store, &a, &err), &err, "memory");
	a.memory = "2G";
	a.partition = "nopart";
	expect_perm(admin_alloc_set(tmp_store, &a, &err), &err, "partition");
	assert_int_equal(admin_partition_add(tmp_store, "nopart", NULL, NULL, NULL, "{\"5\": [23, 59, 59]}", &err), 0);
	assert_int_equal(admin_alloc_set(tmp_store, &a, &err), 0); /* replaces, keeps assignments */
	j = get_json("/allocations");
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "memory")), "2048M");
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "partition")), "nopart");
	assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0), "assignments")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "rank")), 100);
	json_decref(j);
	assert_int_equal(count_events("allocations"), 3);
	assert_int_equal(admin_alloc_unassign(tmp_store, "tenant/dev", "foo.*", &err), 0);
	expect_perm(admin_alloc_unassign(tmp_store, "tenant/dev", "foo.*", &err), &err, "pattern");
	assert_int_equal(admin_alloc_delete(tmp_store, "tenant/dev", &err), 0);
	expect_perm(admin_alloc_delete(tmp_store, "tenant/dev", &err), &err, "allocation");
	assert_int_equal(count_events("allocations"), 5);
}

static void test_identity_and_blackout(void **state)
{
	struct error err = ERROR_INIT;
	_cleanup_free_ char *reason = NULL;
	json_t *j;

	assert_int_equal(admin_identity_group_set(tmp_store, "ig", 3, &err), 0);
	expect_perm(admin_identity_group_set(tmp_store, "ig", -1, &err), &err, "count");
	j = get_json("/identity-groups/ig");
	assert_int_equal(json_integer_value(json_object_get(j, "count")), 3);
	json_decref(j);
	assert_int_equal(count_events("identity_groups"), 1);

	assert_int_equal(store_create_p(tmp_store, "/server.presence"), 0);
	assert_int_equal(store_create(tmp_store, "/server.presence/h9", "{}", 2, STORE_EPHEMERAL, NULL), 0);
	assert_int_equal(admin_blackout_server(tmp_store, "h9", true, "disk failed", &err), 0);
	assert_int_equal(store_get(tmp_store, "/blackedout.servers/h9", &reason, NULL, NULL, NULL, NULL), 0);
	assert_string_equal(reason, "disk failed");
	assert_int_equal(store_exists(tmp_store, "/server.presence/h9", NULL, NULL, NULL), -ENOENT);
	assert_int_equal(admin_blackout_server(tmp_store, "h9", false, NULL, &err), 0);
	expect_perm(admin_blackout_server(tmp_store, "h9", false, NULL, &err), &err, "h9");

	assert_int_equal(admin_blackout_app(tmp_store, "foo.bar*", true, "noisy", &err), 0);
	j = get_json("/blackedout.apps");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "foo.bar*"), "reason")), "noisy");
	json_decref(j);
	assert_int_equal(count_events("apps_blacklist"), 1);
	expect_perm(admin_blackout_app(tmp_store, "foo.other", false, NULL, &err), &err, "foo.other");
	assert_int_equal(admin_blackout_app(tmp_store, "foo.bar*", false, NULL, &err), 0);
	assert_int_equal(count_events("apps_blacklist"), 2);

	assert_int_equal(admin_list(tmp_store, "blackout", &j, &err), 0);
	assert_int_equal(json_object_size(json_object_get(j, "apps")), 0);
	json_decref(j);
	expect_perm(admin_list(tmp_store, "bogus", &j, &err), &err, "bogus");
}

static void test_schedule(void **state)
{
	struct error err = ERROR_INIT;
	_cleanup_free_ char *inst = NULL;
	_cleanup_strv_free_ char **ev = NULL;
	bool posted = false;
	char *data = NULL;

	assert_int_equal(admin_schedule(tmp_store, "proid.app", "{\"memory\":\"1G\"}", "h1", &inst, &posted, &err), 0);
	assert_string_equal(inst, "proid.app#0000000000");
	assert_true(posted);
	assert_int_equal(store_get(tmp_store, "/scheduled/proid.app#0000000000", &data, NULL, NULL, NULL, NULL), 0);
	assert_string_equal(data, "{\"memory\":\"1G\"}");
	free(data);
	assert_int_equal(store_children(tmp_store, "/trace/0000", &ev, NULL, NULL), 0);
	assert_int_equal(strv_length(ev), 1);
	assert_non_null(strstr(ev[0], ",h1,pending,created"));

	assert_int_equal(admin_unschedule(tmp_store, inst, "h1", &posted, &err), 0);
	assert_true(posted);
	assert_int_equal(store_exists(tmp_store, "/scheduled/proid.app#0000000000", NULL, NULL, NULL), -ENOENT);
	expect_perm(admin_unschedule(tmp_store, inst, "h1", &posted, &err), &err, "no such instance");
	expect_perm(admin_unschedule(tmp_store, "proid.app", "h1", &posted, &err), &err, "not an instance id");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TMP_STORE_TEST(test_bucket_and_cell),
		TMP_STORE_TEST(test_server),
		TMP_STORE_TEST(test_alloc),
		TMP_STORE_TEST(test_identity_and_blackout),
		TMP_STORE_TEST(test_schedule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
