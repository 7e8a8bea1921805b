/* Unit tests of sched_explain's naming of causes (src/sched/sched.c): down servers with their reason
 * (sched_server_set_down_reason), frozen servers, capacity; never a sentence ending in a colon. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/sched/sched.h"

static struct sched_cell *cell(int *s1, int *s2, int *app, int64_t memory)
{
	struct sched_cell *c = sched_cell_new("cell", 2, SCHED_MODE_COMPAT);
	int64_t cap[2] = { 1000, 100 }, demand[2] = { memory, 10 };
	struct sched_app_spec spec = { .name = "proid.app#0000000001", .demand = demand, .data_retention_timeout = -1 };
	int b;

	assert_non_null(c);
	b = sched_bucket_add(c, SCHED_ROOT, "pod:1", "pod", 0);
	assert_true(b > 0);
	*s1 = sched_server_add(c, b, "s1", cap, 0, NULL, 0, 0);
	*s2 = sched_server_add(c, b, "s2", cap, 0, NULL, 0, 0);
	assert_true(*s1 > 0 && *s2 > 0);
	*app = sched_app_add(c, sched_alloc_get_path(c, sched_partition_get(c, "_default"), ""), &spec);
	assert_true(*app >= 0);
	return c;
}

static char *explain(struct sched_cell *c, int app)
{
	char *why = NULL;

	assert_int_equal(sched_explain(c, app, 0, &why), 0);
	assert_non_null(why);
	assert_true(why[strlen(why) - 1] != ':');
	return why;
}

static void test_blacked_out_named(void **state)
{
	int s1, s2, app;
	struct sched_cell *c = cell(&s1, &s2, &app, 100);
	char *why;

	assert_int_equal(sched_server_set_state(c, s1, SCHED_DOWN, 0), 0);
	assert_int_equal(sched_server_set_state(c, s2, SCHED_DOWN, 0), 0);
	assert_int_equal(sched_server_set_down_reason(c, s2, "blacked out: disk swap"), 0);
	why = explain(c, app);
	/* the example is the server whose cause is known */
	assert_non_null(strstr(why, "2 down (e.g. s2, blacked out: disk swap)"));
	free(why);
	assert_int_equal(sched_server_set_down_reason(c, s2, NULL), 0);
	why = explain(c, app);
	assert_non_null(strstr(why, "2 down (e.g. s1, not present)"));
	free(why);
	assert_int_equal(sched_server_set_down_reason(c, SCHED_ROOT, "x"), -EINVAL);
	sched_cell_free(c);
}

static void test_frozen_and_capacity_named(void **state)
{
	int s1, s2, app;
	struct sched_cell *c = cell(&s1, &s2, &app, 5000);
	char *why;

	assert_int_equal(sched_server_set_state(c, s1, SCHED_FROZEN, 0), 0);
	why = explain(c, app);
	assert_non_null(strstr(why, "1 frozen (e.g. s1)"));
	assert_non_null(strstr(why, "capacity: memory (needs 5000 MB) short on 1"));
	free(why);
	sched_cell_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blacked_out_named),
		cmocka_unit_test(test_frozen_and_capacity_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
