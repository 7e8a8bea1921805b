/* test-sched-improved.c: each fix of the improved mode (docs/SCHEDULER.md
 * "Improved mode") shown against the same input in compatible mode. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/sched/sched-sim.h"
#include "../../src/sched/sched.h"
#include "test-sched-hooks.h"


/* Add a copy of spec s named `name`, created `order`-th. */
static int add_as(struct sched_cell *c, int alloc, struct sched_app_spec *s, const char *name, int64_t order)
{
	s->name = name;
	s->global_order = order;
	return sched_app_add(c, alloc, s);
}

static struct sched_cell *generated(enum sched_mode mode, unsigned servers, unsigned aps)
{
	_cleanup_free_ char *s = NULL, *a = NULL, *p = NULL;
	const char *names[3] = { "servers.tsv", "allocations.tsv", "apps.tsv" };
	struct error err = ERROR_INIT;
	struct sched_cell *c = NULL;

	assert_int_equal(sched_sim_generate(servers, aps, 42, &s, &a, &p), 0);
	assert_int_equal(sched_sim_load(s, a, p, names, mode, &c, &err), 0);
	return c;
}

static void empty_and_max(struct sched_cell *c, int *ret_empty, int *ret_max)
{
	*ret_empty = 0;
	*ret_max = 0;
	for (int s = sched_server_next(c, -1); s >= 0; s = sched_server_next(c, s)) {
		struct sched_node_info ni;

		sched_node_info(c, s, &ni);
		*ret_empty += ni.napps == 0;
		*ret_max = (int)(ni.napps > (size_t)*ret_max ? ni.napps : (size_t)*ret_max);
	}
}

/* Fix 1: spread really spreads (Treadmill fills servers first-fit and leaves
 * about half of them empty). */
static void test_spread(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *compat = generated(SCHED_MODE_COMPAT, 200, 10);
	_cleanup_sched_cell_ struct sched_cell *improved = generated(SCHED_MODE_IMPROVED, 200, 10);
	struct sched_stats a, b;
	int ce, cm, ie, im;

	assert_int_equal(sched_schedule(compat, SCHED_SIM_NOW, NULL, NULL, &a), 0);
	assert_int_equal(sched_schedule(improved, SCHED_SIM_NOW, NULL, NULL, &b), 0);
	assert_true(a.pending <= 1); /* first-fit leaves one big app out */
	assert_int_equal(b.pending, 0);
	empty_and_max(compat, &ce, &cm);
	empty_and_max(improved, &ie, &im);
	print_message("# compat: %d empty, max %d apps; improved: %d empty, max %d\n", ce, cm, ie, im);
	assert_true(ce > 40);	/* ~25-50 % empty */
	assert_int_equal(ie, 0);
	assert_true(im < cm);
}

struct cellx {
	struct sched_cell *c;
	int alloc, s1, s2, x1, x2, f1, f2;
};

/* One rack with two servers full of low-priority fillers, two instances of
 * a high-priority app limited to one per rack. */
static struct cellx rack_limit_cell(enum sched_mode mode)
{
	struct cellx x;
	int64_t cap[2] = { 10, 10 }, big[2] = { 10, 10 }, half[2] = { 5, 5 };
	struct sched_limit lim[1] = { { "rack", 1 } };
	struct sched_app_spec f = { .priority = 1, .demand = big, .data_retention_timeout = -1 };
	struct sched_app_spec a = { .priority = 100, .demand = half, .affinity = "x", .limits = lim, .n_limits = 1,
				    .data_retention_timeout = -1 };
	int rack;

	x.c = sched_cell_new("cell", 2, mode);
	assert_non_null(x.c);
	x.alloc = sched_alloc_get_path(x.c, sched_partition_get(x.c, NULL), "");
	rack = sched_bucket_add(x.c, SCHED_ROOT, "rack:r1", NULL, 0);
	x.s1 = sched_server_add(x.c, rack, "s1", cap, 0, NULL, 0, 0);
	x.s2 = sched_server_add(x.c, rack, "s2", cap, 0, NULL, 0, 0);
	x.f1 = add_as(x.c, x.alloc, &f, "filler#1", 1);
	x.f2 = add_as(x.c, x.alloc, &f, "filler#2", 2);
	assert_int_equal(sched_schedule(x.c, 0, NULL, NULL, NULL), 0);
	x.x1 = add_as(x.c, x.alloc, &a, "x#3", 3);
	x.x2 = add_as(x.c, x.alloc, &a, "x#4", 4);
	return x;
}

static int srv(const struct sched_cell *c, int app)
{
	struct sched_app_info ai;

	sched_app_info(c, app, &ai);
	return ai.server;
}

/* Fix 2: eviction honours affinity limits at every level (Treadmill's
 * eviction only checks the server, so both instances end up in one rack). */
static void test_eviction_limits(void **state)
{
	struct cellx compat = rack_limit_cell(SCHED_MODE_COMPAT), improved = rack_limit_cell(SCHED_MODE_IMPROVED);

	assert_int_equal(sched_schedule(compat.c, 0, NULL, NULL, NULL), 0);
	assert_int_equal(sched_schedule(improved.c, 0, NULL, NULL, NULL), 0);
	/* Treadmill: rack limit 1 violated */
	assert_true(srv(compat.c, compat.x1) >= 0 && srv(compat.c, compat.x2) >= 0);
	assert_int_equal(sched_node_affinity_count(compat.c, sched_node_find(compat.c, "rack:r1"), "x"), 2);
	/* improved: one instance in the rack, the other pending, one filler kept */
	assert_true(srv(improved.c, improved.x1) >= 0);
	assert_int_equal(srv(improved.c, improved.x2), -1);
	assert_int_equal(sched_node_affinity_count(improved.c, sched_node_find(improved.c, "rack:r1"), "x"), 1);
	assert_true(srv(improved.c, improved.f1) >= 0 || srv(improved.c, improved.f2) >= 0);
	sched_cell_free(compat.c);
	sched_cell_free(improved.c);
}

/* 10 servers each with a small and a large app; one medium high-priority app. */
static struct sched_cell *eviction_cell(enum sched_mode mode, int *ret_medium)
{
	struct sched_cell *c = sched_cell_new("cell", 2, mode);
	int64_t cap[2] = { 10, 10 }, small[2] = { 1, 1 }, large[2] = { 8, 8 }, medium[2] = { 5, 5 };
	int alloc = sched_alloc_get_path(c, sched_partition_get(c, NULL), "");
	int64_t order = 0;

	for (int i = 0; i < 10; i++) {
		char n[16];

		snprintf(n, sizeof(n), "%d", i);
		sched_server_add(c, SCHED_ROOT, n, cap, 0, NULL, 0, 0);
	}
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 10; i++) {
			char n[32];
			struct sched_app_spec s = { .name = n, .priority = k ? 60 : 50, .demand = k ? large : small,
						    .affinity = k ? "large" : "small", .data_retention_timeout = -1,
						    .global_order = order++ };

			snprintf(n, sizeof(n), "%s-%d", k ? "large" : "small", i);
			assert_true(sched_app_add(c, alloc, &s) >= 0);
		}
	assert_int_equal(sched_schedule(c, 0, NULL, NULL, NULL), 0);
	{
		struct sched_app_spec s = { .name = "medium-0", .priority = 70, .demand = medium, .affinity = "medium",
					    .data_retention_timeout = -1, .global_order = order++ };

		*ret_medium = sched_app_add(c, alloc, &s);
	}
	return c;
}

/* Fix 3: no mass eviction: Treadmill evicts every app behind the failing one
 * until one server has room (11 here, all but one put back); improved evicts
 * only on the one server it picks. */
static void test_eviction_cost(void **state)
{
	int mc, mi;
	_cleanup_sched_cell_ struct sched_cell *compat = eviction_cell(SCHED_MODE_COMPAT, &mc);
	_cleanup_sched_cell_ struct sched_cell *improved = eviction_cell(SCHED_MODE_IMPROVED, &mi);
	struct sched_stats a, b;

	assert_int_equal(sched_schedule(compat, 0, NULL, NULL, &a), 0);
	assert_int_equal(sched_schedule(improved, 0, NULL, NULL, &b), 0);
	print_message("# evictions: compat %zu, improved %zu\n", a.evictions, b.evictions);
	assert_true(srv(compat, mc) >= 0);
	assert_true(srv(improved, mi) >= 0);
	assert_int_equal(a.evictions, 11);
	assert_true(b.evictions <= 2);
	assert_int_equal(b.pending, 1); /* the large app it displaced */
}

/* Fix 4: a pass handles what changed, not every app. */
static void test_event_driven(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = generated(SCHED_MODE_IMPROVED, 100, 10);
	int64_t d[3] = { 1024, 25, 1024 };
	struct sched_app_spec s = { .name = "new.app#9999999999", .priority = 10, .demand = d,
				    .data_retention_timeout = -1, .global_order = 9999999999 };
	struct sched_stats st;
	int id, srv0;

	assert_int_equal(sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st), 0);
	assert_true(st.full_pass);
	/* nothing changed: nothing done */
	assert_int_equal(sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st), 0);
	assert_false(st.full_pass);
	assert_int_equal(st.changed, 0);
	/* one new app */
	id = sched_app_add(c, sched_alloc_get_path(c, sched_partition_get(c, "_default"), "tenant00/prod"), &s);
	assert_int_equal(sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st), 0);
	assert_false(st.full_pass);
	assert_int_equal(st.changed, 1);
	srv0 = srv(c, id);
	assert_true(srv0 >= 0);
	/* its server goes down: it moves, without a full pass */
	sched_server_set_state(c, srv0, SCHED_DOWN, SCHED_SIM_NOW);
	assert_int_equal(sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st), 0);
	assert_false(st.full_pass);
	assert_true(srv(c, id) >= 0 && srv(c, id) != srv0);
	/* removal */
	assert_int_equal(sched_app_remove(c, id), 0);
	assert_int_equal(sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st), 0);
	assert_false(st.full_pass);
}

/* Fix 5: retention expiry is acted on at its time, without another event. */
static void test_retention_timer(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = sched_cell_new("cell", 2, SCHED_MODE_IMPROVED);
	int64_t cap[2] = { 10, 10 }, d[2] = { 1, 1 };
	int alloc = sched_alloc_get_path(c, sched_partition_get(c, NULL), "");
	struct sched_app_spec s = { .name = "sticky#1", .priority = 50, .demand = d, .data_retention_timeout = 30 };
	struct sched_stats st;
	int a, s1;

	sched_server_add(c, SCHED_ROOT, "a", cap, 0, NULL, 0, 0);
	sched_server_add(c, SCHED_ROOT, "b", cap, 0, NULL, 0, 0);
	a = sched_app_add(c, alloc, &s);
	assert_int_equal(sched_schedule(c, 100, NULL, NULL, NULL), 0);
	s1 = srv(c, a);
	sched_server_set_state(c, s1, SCHED_DOWN, 100);
	assert_int_equal(sched_schedule(c, 100, NULL, NULL, &st), 0);
	assert_int_equal(srv(c, a), s1);
	assert_true(sched_next_event_at(c) == 130);
	assert_int_equal(sched_schedule(c, 129, NULL, NULL, &st), 0);
	assert_int_equal(srv(c, a), s1);
	assert_int_equal(sched_schedule(c, 130, NULL, NULL, &st), 0);
	assert_false(st.full_pass);
	assert_true(srv(c, a) >= 0 && srv(c, a) != s1);
	assert_true(isinf(sched_next_event_at(c)));
}

/* Spreading a nearly full partition would fragment it: past 90 % demand it is
 * packed, and leaves about as many apps pending as Treadmill's first-fit. */
static void test_pack_when_full(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *compat = generated(SCHED_MODE_COMPAT, 200, 20);
	_cleanup_sched_cell_ struct sched_cell *improved = generated(SCHED_MODE_IMPROVED, 200, 20);
	struct sched_stats a, b;

	assert_int_equal(sched_schedule(compat, SCHED_SIM_NOW, NULL, NULL, &a), 0);
	assert_int_equal(sched_schedule(improved, SCHED_SIM_NOW, NULL, NULL, &b), 0);
	print_message("# oversubscribed: pending compat %zu, improved %zu\n", a.pending, b.pending);
	assert_true(a.pending > 0);
	assert_true(b.pending <= 2 * a.pending); /* pure spreading: about 3 times as many */
}

/* A wide bucket compares a window of children first; when every child of
 * the window passes the bucket-level check but none can take the app, the
 * others must still be tried. */
static void test_window_fallback(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = sched_cell_new("cell", 2, SCHED_MODE_IMPROVED);
	int64_t cap[2] = { 10, 10 }, d[2] = { 1, 1 };
	struct sched_limit lim[1] = { { "server", 1 } };
	int alloc = sched_alloc_get_path(c, sched_partition_get(c, NULL), "");
	int servers[40], id;

	for (int i = 0; i < 40; i++) {
		char n[32];

		snprintf(n, sizeof(n), "pod:p%02d", i);
		servers[i] = sched_bucket_add(c, SCHED_ROOT, n, NULL, 0);
		snprintf(n, sizeof(n), "s%02d", i);
		servers[i] = sched_server_add(c, servers[i], n, cap, 0, NULL, 0, 0);
	}
	/* one instance of x on each server of the first window */
	for (int i = 0; i < SCHED_WINDOW; i++) {
		char n[32];
		struct sched_app_spec s = { .name = n, .priority = 50, .demand = d, .affinity = "x", .limits = lim,
					    .n_limits = 1, .data_retention_timeout = -1, .global_order = i };

		snprintf(n, sizeof(n), "x#%010d", i);
		id = sched_app_add(c, alloc, &s);
		assert_int_equal(sched_app_put(c, id, servers[i], 0), 0);
	}
	{
		struct sched_app_spec s = { .name = "x#0000000099", .priority = 50, .demand = d, .affinity = "x",
					    .limits = lim, .n_limits = 1, .data_retention_timeout = -1,
					    .global_order = 99 };

		id = sched_app_add(c, alloc, &s);
	}
	assert_int_equal(sched_schedule(c, 0, NULL, NULL, NULL), 0);
	assert_true(srv(c, id) >= servers[SCHED_WINDOW]);
}

/* Same inputs, same outputs. */
static void test_deterministic(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *a = generated(SCHED_MODE_IMPROVED, 100, 10);
	_cleanup_sched_cell_ struct sched_cell *b = generated(SCHED_MODE_IMPROVED, 100, 10);
	_cleanup_free_ char *pa = NULL, *pb = NULL;

	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(sched_schedule(a, SCHED_SIM_NOW, NULL, NULL, NULL), 0);
		assert_int_equal(sched_schedule(b, SCHED_SIM_NOW, NULL, NULL, NULL), 0);
	}
	assert_int_equal(sched_sim_placement(a, &pa, NULL), 0);
	assert_int_equal(sched_sim_placement(b, &pb, NULL), 0);
	assert_string_equal(pa, pb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spread),
		cmocka_unit_test(test_eviction_limits),
		cmocka_unit_test(test_eviction_cost),
		cmocka_unit_test(test_event_driven),
		cmocka_unit_test(test_retention_timer),
		cmocka_unit_test(test_pack_when_full),
		cmocka_unit_test(test_window_fallback),
		cmocka_unit_test(test_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
