/* test-sched-loader.c: the resource parser production uses
 * (sched_loader_resources, over parse_size_mib / parse_cpu in basic/util). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "../../src/basic/json.h"
#include "../../src/basic/util.h"
#include "../../src/sched/sched-loader.h"
/* sched_loader_resources, the resource parser production uses, is file-local: compiled in. */
#include "../../src/sched/sched-loader.c"

static int parse(const char *text, int64_t missing, int64_t r[3])
{
	_cleanup_json_ json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return sched_loader_resources(j, missing, r);
}

static void test_resources(void **state)
{
	int64_t r[3];

	assert_int_equal(parse("{\"memory\": \"1G\", \"cpu\": \"150%\", \"disk\": \"100M\"}", -1, r), 0);
	assert_true(r[0] == 1024 && r[1] == 150 && r[2] == 100);
	/* numbers are MB / percent; a bare cpu string is percent; absent = missing */
	assert_int_equal(parse("{\"memory\": 512, \"cpu\": \"20\"}", -1, r), 0);
	assert_true(r[0] == 512 && r[1] == 20 && r[2] == -1);
	assert_int_equal(parse("{\"memory\": null}", 7, r), 0);
	assert_true(r[0] == 7 && r[1] == 7 && r[2] == 7);
	assert_int_equal(sched_loader_resources(NULL, 3, r), 0);
	assert_true(r[0] == 3 && r[1] == 3 && r[2] == 3);
	/* rounded up to whole MB */
	assert_int_equal(parse("{\"memory\": \"1K\", \"disk\": 1.5}", 0, r), 0);
	assert_true(r[0] == 1 && r[1] == 0 && r[2] == 2);
	assert_int_equal(parse("{\"memory\": \"1025K\"}", 0, r), 0);
	assert_int_equal(r[0], 2);
	/* malformed */
	assert_int_equal(parse("{\"memory\": \"lots\"}", -1, r), -EINVAL);
	assert_int_equal(parse("{\"cpu\": \"x%\"}", -1, r), -EINVAL);
	assert_int_equal(parse("{\"cpu\": \"1.5%\"}", -1, r), -EINVAL);
	assert_int_equal(parse("{\"disk\": -1}", -1, r), -EINVAL);
	assert_int_equal(parse("{\"disk\": true}", -1, r), -EINVAL);
}

static void test_util_parsers(void **state)
{
	uint64_t mib;
	double d;

	assert_int_equal(parse_size_mib("1536K", 0, &mib), 0);
	assert_int_equal(mib, 1);
	assert_int_equal(parse_size_mib("1536K", SIZE_MIB_ROUND_UP, &mib), 0);
	assert_int_equal(mib, 2);
	assert_int_equal(parse_size_mib("1024", 0, &mib), 0); /* bare = bytes */
	assert_int_equal(mib, 0);
	assert_int_equal(parse_size_mib("1024", SIZE_MIB_BARE, &mib), 0); /* bare = MiB */
	assert_int_equal(mib, 1024);
	assert_int_equal(parse_size_mib("-1", SIZE_MIB_BARE, &mib), -ERANGE);
	assert_int_equal(parse_size_mib("8G", SIZE_MIB_BARE, &mib), 0);
	assert_int_equal(mib, 8192);
	assert_int_equal(parse_cpu("400%", 0, &d), 0);
	assert_true(d == 400);
	assert_int_equal(parse_cpu("12.5%", 0, &d), -EINVAL);
	assert_int_equal(parse_cpu("12.5%", CPU_FRACTION, &d), 0);
	assert_true(d == 12.5);
	assert_int_equal(parse_cpu("-1", CPU_FRACTION, &d), -ERANGE);
	assert_int_equal(parse_cpu("%", 0, &d), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resources),
		cmocka_unit_test(test_util_parsers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
