/* test-master.c: the master's placement seam (master_place) and resource
 * parsing, on an in-memory model (no store). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/basic/util.h"
#include "../../src/master/master-internal.h"

static struct master_app *app(const char *name, int prio, double mem, double cpu, double disk)
{
	struct master_app *a = calloc(1, sizeof(*a));

	assert_non_null(a);
	a->name = strdup(name);
	a->priority = prio;
	a->seq = strtoull(strchr(name, '#') + 1, NULL, 10);
	a->demand[MASTER_MEMORY] = mem;
	a->demand[MASTER_CPU] = cpu;
	a->demand[MASTER_DISK] = disk;
	return a;
}

static struct master_server *server(const char *name, bool up, double mem, double cpu, double disk)
{
	struct master_server *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->name = strdup(name);
	s->up = up;
	s->capacity[MASTER_MEMORY] = mem;
	s->capacity[MASTER_CPU] = cpu;
	s->capacity[MASTER_DISK] = disk;
	return s;
}

static void model_free(struct master *m)
{
	for (size_t i = 0; i < m->n_apps; i++) {
		free(m->apps[i]->name);
		free(m->apps[i]->server);
		free(m->apps[i]->why);
		free(m->apps[i]);
	}
	for (size_t i = 0; i < m->n_servers; i++) {
		free(m->servers[i]->name);
		free(m->servers[i]);
	}
	free(m->apps);
	free(m->servers);
}

static void test_parse_resources(void **state)
{
	double r[MASTER_DIMS];
	json_t *j = json_loads("{\"memory\": \"1G\", \"cpu\": \"150%\", \"disk\": \"100M\"}", 0, NULL);

	assert_int_equal(master_parse_resources(j, -1, r), 0);
	assert_true(r[MASTER_MEMORY] == 1024 && r[MASTER_CPU] == 150 && r[MASTER_DISK] == 100);
	json_decref(j);
	j = json_loads("{\"memory\": 512, \"cpu\": \"20\"}", 0, NULL);
	assert_int_equal(master_parse_resources(j, -1, r), 0);
	assert_true(r[MASTER_MEMORY] == 512 && r[MASTER_CPU] == 20 && r[MASTER_DISK] == -1);
	json_decref(j);
	j = json_loads("{\"memory\": \"lots\"}", 0, NULL);
	assert_int_equal(master_parse_resources(j, -1, r), -EINVAL);
	json_decref(j);
	j = json_loads("{\"cpu\": \"x%\"}", 0, NULL);
	assert_int_equal(master_parse_resources(j, -1, r), -EINVAL);
	json_decref(j);
}

static void test_place_capacity(void **state)
{
	struct master m = { 0 };
	struct error err = ERROR_INIT;

	m.servers = calloc(2, sizeof(*m.servers));
	m.servers[0] = server("a", true, 1000, 100, 1000);
	m.servers[1] = server("b", true, 300, 100, 1000);
	m.n_servers = 2;
	m.apps = calloc(4, sizeof(*m.apps));
	/* sorted by name, as the master keeps them */
	m.apps[0] = app("p.big#0000000001", 1, 900, 10, 100);
	m.apps[1] = app("p.huge#0000000002", 1, 5000, 10, 100);
	m.apps[2] = app("p.small#0000000003", 1, 200, 10, 100);
	m.apps[3] = app("p.small#0000000004", 1, 200, 95, 100);
	m.n_apps = 4;

	assert_int_equal(master_place(&m, 1000.0, &err), 0);
	assert_string_equal(m.apps[0]->server, "a");	/* only a fits 900 */
	assert_null(m.apps[1]->server);			/* fits nowhere: pending */
	assert_string_equal(m.apps[2]->server, "b");	/* b has the most free memory left (300 > 100) */
	assert_null(m.apps[3]->server);			/* cpu 95 fits nowhere (a:90, b:90 left) */
	assert_true(m.apps[0]->expires == 1000.0);

	/* placed apps stay put */
	assert_int_equal(master_place(&m, 2000.0, &err), 0);
	assert_string_equal(m.apps[0]->server, "a");
	assert_true(m.apps[0]->expires == 1000.0);
	model_free(&m);
}

static void test_place_server_down(void **state)
{
	struct master m = { 0 };
	struct error err = ERROR_INIT;

	m.servers = calloc(2, sizeof(*m.servers));
	m.servers[0] = server("a", false, -1, -1, -1); /* presence gone */
	m.servers[1] = server("b", true, -1, -1, -1);	/* unknown capacity: not limited */
	m.n_servers = 2;
	m.apps = calloc(1, sizeof(*m.apps));
	m.apps[0] = app("p.x#0000000007", 1, 100, 10, 100);
	m.apps[0]->server = strdup("a");
	m.n_apps = 1;
	assert_int_equal(master_place(&m, 0, &err), 0);
	assert_string_equal(m.apps[0]->server, "b");
	assert_string_equal(m.apps[0]->why, "a:down");

	/* no server up at all: pending with the reason */
	m.servers[1]->up = false;
	assert_int_equal(master_place(&m, 0, &err), 0);
	assert_null(m.apps[0]->server);
	assert_string_equal(m.apps[0]->why, "b:down");
	model_free(&m);
}

static void test_place_down_grace(void **state)
{
	struct master m = { .down_grace = 10 };
	struct error err = ERROR_INIT;

	m.servers = calloc(2, sizeof(*m.servers));
	m.servers[0] = server("a", false, -1, -1, -1);
	m.servers[0]->down_since = 100;
	m.servers[1] = server("b", true, -1, -1, -1);
	m.n_servers = 2;
	m.apps = calloc(1, sizeof(*m.apps));
	m.apps[0] = app("p.x#0000000007", 1, 100, 10, 100);
	m.apps[0]->server = strdup("a");
	m.n_apps = 1;
	assert_int_equal(master_place(&m, 105, &err), 0); /* 5 s into the grace: stays */
	assert_string_equal(m.apps[0]->server, "a");
	assert_null(m.apps[0]->why);
	assert_int_equal(master_place(&m, 111, &err), 0); /* grace over: moves */
	assert_string_equal(m.apps[0]->server, "b");
	assert_string_equal(m.apps[0]->why, "a:down");
	model_free(&m);
}

static void test_place_priority_order(void **state)
{
	struct master m = { 0 };
	struct error err = ERROR_INIT;

	m.servers = calloc(1, sizeof(*m.servers));
	m.servers[0] = server("a", true, 100, 100, 100);
	m.n_servers = 1;
	m.apps = calloc(3, sizeof(*m.apps));
	m.apps[0] = app("p.a#0000000001", 1, 60, 1, 1);
	m.apps[1] = app("p.b#0000000002", 50, 60, 1, 1); /* higher priority wins */
	m.apps[2] = app("p.c#0000000003", 1, 40, 1, 1);	 /* still fits after b */
	m.n_apps = 3;
	assert_int_equal(master_place(&m, 0, &err), 0);
	assert_null(m.apps[0]->server);
	assert_string_equal(m.apps[1]->server, "a");
	assert_string_equal(m.apps[2]->server, "a");
	model_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_resources),
		cmocka_unit_test(test_place_capacity),
		cmocka_unit_test(test_place_server_down),
		cmocka_unit_test(test_place_priority_order),
		cmocka_unit_test(test_place_down_grace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
