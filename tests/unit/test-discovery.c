/* test-discovery.c: Treadmill's discovery matching (cellns_discovery_*: the pattern, "#*" added,
 * the proto:endpoint argument) and the /discovery, /discovery.state record texts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/cellns/cellns.h"
#define TMP_STORE_TAG "disc"
#include "tmp-store.h"

static char *get(const char *path)
{
	char *data = NULL;

	return store_get(tmp_store, path, &data, NULL, NULL, NULL, NULL) < 0 ? NULL : data;
}

struct match_case {
	const char *pattern, *proto, *endpoint; /* proto/endpoint NULL: "*" */
	const char *inst, *iproto, *iname;
	bool want;
};

static void test_match(void **state)
{
	static const struct match_case c[] = {
		/* "#*" appended: every instance of the app, not other apps with that prefix... */
		{ "proid.web", NULL, NULL, "proid.web#0000000001", "tcp", "http", true },
		{ "proid.web", NULL, NULL, "proid.webx#0000000001", "tcp", "http", false },
		{ "proid.web", NULL, NULL, "proid.web", "tcp", "http", false },
		/* ...unless the pattern globs them */
		{ "proid.web*", NULL, NULL, "proid.webx#0000000001", "tcp", "http", true },
		{ "proid.*", NULL, NULL, "proid.a.b#0000000007", "udp", "dns", true },
		{ "proid.*", NULL, NULL, "other.a#0000000007", "tcp", "x", false },
		/* a pattern naming instances keeps its '#' part */
		{ "proid.web#0000000001", NULL, NULL, "proid.web#0000000001", "tcp", "http", true },
		{ "proid.web#0000000001", NULL, NULL, "proid.web#0000000011", "tcp", "http", false },
		{ "proid.web#*1", NULL, NULL, "proid.web#0000000011", "tcp", "http", true },
		{ "proid.web#000000000[12]", NULL, NULL, "proid.web#0000000002", "tcp", "http", true },
		{ "proid.web#000000000[!12]", NULL, NULL, "proid.web#0000000002", "tcp", "http", false },
		{ "proid.w?b", NULL, NULL, "proid.wab#0000000002", "tcp", "http", true },
		/* endpoint and proto globs */
		{ "proid.web", "tcp", "http", "proid.web#1", "tcp", "http", true },
		{ "proid.web", "udp", "http", "proid.web#1", "tcp", "http", false },
		{ "proid.web", "*", "ht*", "proid.web#1", "tcp", "http", true },
		{ "proid.web", "*", "ssh", "proid.web#1", "tcp", "http", false },
		{ "proid.web", "t?p", "*", "proid.web#1", "tcp", "ssh", true },
		/* no escapes (Python's fnmatch): a backslash is a character */
		{ "proid.a\\*", NULL, NULL, "proid.a\\x#1", "tcp", "e", true },
		{ "proid.a\\*", NULL, NULL, "proid.a*#1", "tcp", "e", false },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		bool got = cellns_discovery_match(c[i].pattern, c[i].proto, c[i].endpoint, c[i].inst, c[i].iproto,
						  c[i].iname);

		if (got != c[i].want)
			fail_msg("case %zu: %s %s:%s vs %s:%s:%s: got %d", i, c[i].pattern, c[i].proto ? c[i].proto : "*",
				 c[i].endpoint ? c[i].endpoint : "*", c[i].inst, c[i].iproto, c[i].iname, got);
	}
	assert_false(cellns_discovery_match("p.a", NULL, NULL, NULL, "tcp", "x"));
}

static void test_globs(void **state)
{
	char *g;

	g = cellns_discovery_instance_glob("proid.web");
	assert_string_equal(g, "proid.web#*");
	free(g);
	g = cellns_discovery_instance_glob("proid.web#3");
	assert_string_equal(g, "proid.web#3");
	free(g);
	g = cellns_discovery_proid_glob("proid.web*");
	assert_string_equal(g, "proid");
	free(g);
	g = cellns_discovery_proid_glob("pro*");
	assert_string_equal(g, "pro*");
	free(g);
	g = cellns_discovery_proid_glob("pro#1");
	assert_string_equal(g, "pro");
	free(g);
}

static void test_split(void **state)
{
	static const struct {
		const char *in, *proto, *ep;
		int r;
	} c[] = {
		{ NULL, "*", "*", 0 },	    { "http", "*", "http", 0 }, { "tcp:http", "tcp", "http", 0 },
		{ "*:*", "*", "*", 0 },	    { "udp:d*", "udp", "d*", 0 }, { ":http", NULL, NULL, -EINVAL },
		{ "tcp:", NULL, NULL, -EINVAL }, { "a:b:c", NULL, NULL, -EINVAL }, { "", NULL, NULL, -EINVAL },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *p = NULL, *e = NULL;

		assert_int_equal(cellns_discovery_split(c[i].in, &p, &e), c[i].r);
		if (c[i].r == 0) {
			assert_string_equal(p, c[i].proto);
			assert_string_equal(e, c[i].ep);
		}
		free(p);
		free(e);
	}
}

static void test_records(void **state)
{
	char *entries[] = { strdup("p.b#0000000002:tcp:http:40002"), strdup("p.a#0000000001:udp:dns:40001"),
			    strdup("p.a#0000000001:tcp:ssh:40003") };
	int ports[] = { 40002, 40001, 40003 };
	bool up[] = { true, false, true };
	char *t = cellns_discovery_format(entries, 3);
	json_t *j;

	/* Treadmill's: the sorted list of "<instance>:<proto>:<endpoint>:<real_port>" */
	assert_string_equal(t, "[\"p.a#0000000001:tcp:ssh:40003\",\"p.a#0000000001:udp:dns:40001\","
			       "\"p.b#0000000002:tcp:http:40002\"]");
	free(t);
	t = cellns_discovery_format(NULL, 0);
	assert_string_equal(t, "[]");
	free(t);
	t = cellns_discovery_state_format(ports, up, 3);
	assert_string_equal(t, "{\"40001\":0,\"40002\":1,\"40003\":1}");
	j = json_loads(t, 0, NULL);
	assert_int_equal(cellns_discovery_state_port(j, 40002), 1);
	assert_int_equal(cellns_discovery_state_port(j, 40001), 0);
	assert_int_equal(cellns_discovery_state_port(j, 40009), -ENOENT);
	json_decref(j);
	free(t);
	for (size_t i = 0; i < 3; i++)
		free(entries[i]);
}

/* The records in the store: ephemeral, rewritten in place by the same session. */
static void test_publish(void **state)
{
	struct store_stat st;
	json_t *j = NULL;
	char *d;

	assert_int_equal(cellns_discovery_publish(tmp_store, "h1", "[\"a.b#1:tcp:x:40001\"]"), 0);
	assert_int_equal(cellns_discovery_publish(tmp_store, "h1", "[]"), 0);
	d = get("/discovery/h1");
	assert_string_equal(d, "[]");
	free(d);
	assert_int_equal(store_exists(tmp_store, "/discovery/h1", &st, NULL, NULL), 0);
	assert_true(st.ephemeral_owner == store_session_id(tmp_store));
	assert_int_equal(cellns_discovery_state_publish(tmp_store, "h1", "{\"40001\":1}"), 0);
	assert_int_equal(cellns_discovery_state_get(tmp_store, "h1", &j, NULL, NULL), 0);
	assert_int_equal(cellns_discovery_state_port(j, 40001), 1);
	json_decref(j);
	assert_int_equal(cellns_discovery_state_get(tmp_store, "h9", &j, NULL, NULL), -ENOENT);
	assert_int_equal(cellns_discovery_publish(tmp_store, "a/b", "[]"), -EINVAL);
}

/* /identity-groups/<g>/<n> = {"app","host"}: held by one instance at a time. */
static void test_identity(void **state)
{
	char *d;

	assert_int_equal(cellns_identity_publish(tmp_store, "p.grp", 0, "p.a#1", "h1"), 0);
	d = get("/identity-groups/p.grp/0");
	assert_string_equal(d, "{\"app\":\"p.a#1\",\"host\":\"h1\"}");
	free(d);
	/* the same instance again: it holds it; another: busy until it goes */
	assert_int_equal(cellns_identity_publish(tmp_store, "p.grp", 0, "p.a#1", "h1"), 0);
	assert_int_equal(cellns_identity_publish(tmp_store, "p.grp", 0, "p.a#2", "h2"), -EBUSY);
	/* only its holder removes it */
	assert_int_equal(cellns_identity_unpublish(tmp_store, "p.grp", 0, "p.a#2"), 0);
	assert_int_equal(store_exists(tmp_store, "/identity-groups/p.grp/0", NULL, NULL, NULL), 0);
	assert_int_equal(cellns_identity_unpublish(tmp_store, "p.grp", 0, "p.a#1"), 0);
	assert_int_equal(store_exists(tmp_store, "/identity-groups/p.grp/0", NULL, NULL, NULL), -ENOENT);
	assert_int_equal(cellns_identity_publish(tmp_store, "p.grp", 0, "p.a#2", "h2"), 0);
	assert_int_equal(cellns_identity_unpublish(tmp_store, "p.grp", 5, "p.a#2"), 0); /* missing */
	assert_int_equal(cellns_identity_publish(tmp_store, "p.grp", -1, "p.a#2", "h2"), -EINVAL);
	assert_int_equal(cellns_identity_publish(tmp_store, ".grp", 1, "p.a#2", "h2"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_globs),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_records),
		cmocka_unit_test_setup_teardown(test_publish, tmp_store_setup, tmp_store_teardown),
		cmocka_unit_test_setup_teardown(test_identity, tmp_store_setup, tmp_store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
