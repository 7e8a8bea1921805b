#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/basic/util.h"
#include "../../src/basic/fileio.h"

static void test_parse_size(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("1K", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(parse_size("1KB", &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(parse_size("512m", &v), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(parse_size("2G", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(parse_size("12", &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(parse_size("1X", &v), -EINVAL);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("-1K", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999E", &v), -ERANGE);
}

static void test_parse_duration(void **state)
{
	uint64_t v;

	assert_int_equal(parse_duration("30m", &v), 0);
	assert_int_equal(v, 1800);
	assert_int_equal(parse_duration("1d", &v), 0);
	assert_int_equal(v, 86400);
	assert_int_equal(parse_duration("5", &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(parse_duration("5y", &v), -EINVAL);
}

static void test_strv(void **state)
{
	_cleanup_strv_free_ char **l = strv_new();

	assert_int_equal(strv_extend(&l, "b"), 0);
	assert_int_equal(strv_extend(&l, "a"), 0);
	strv_sort(l);
	assert_string_equal(l[0], "a");
	assert_true(strv_contains(l, "b"));
	assert_int_equal(strv_length(l), 2);
}

static void test_atomic_write(void **state)
{
	char dir[] = "/tmp/treadle-ut-XXXXXX";
	_cleanup_free_ char *p = NULL, *data = NULL;
	_cleanup_strv_free_ char **l = NULL;
	size_t len;

	assert_non_null(mkdtemp(dir));
	p = strdup_printf("%s/x/y/f", dir);
	{ _cleanup_free_ char *d = strndup(p, strlen(p) - 2); assert_int_equal(mkdir_p(d, 0755), 0); }
	assert_int_equal(write_file_atomic(p, "hello", 5, 0644), 0);
	assert_int_equal(read_file(p, &data, &len), 0);
	assert_int_equal(len, 5);
	assert_string_equal(data, "hello");
	{ _cleanup_free_ char *d = strndup(p, strlen(p) - 2); assert_int_equal(dir_list(d, 0, &l), 0); }
	assert_int_equal(strv_length(l), 1); /* no temp file left */
	assert_int_equal(rm_rf(dir), 0);
	assert_int_equal(access(dir, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_strv),
		cmocka_unit_test(test_atomic_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
