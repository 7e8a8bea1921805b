#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../src/basic/util.h"
#include "../../src/basic/fileio.h"

struct u64_case {
	const char *in;
	int r;
	uint64_t want;
};

static void check_u64(int (*parse)(const char *, uint64_t *), const struct u64_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;

		assert_int_equal(parse(c[i].in, &v), c[i].r);
		if (c[i].r == 0)
			assert_true(v == c[i].want);
	}
}

static void test_parse_size(void **state)
{
	static const struct u64_case c[] = {
		{ "1K", 0, 1024 },	  { "1KB", 0, 1000 },	 { "512m", 0, 512ull << 20 },
		{ "2G", 0, 2ull << 30 },  { "12", 0, 12 },	 { "1X", -EINVAL, 0 },
		{ "", -EINVAL, 0 },	  { "-1K", -EINVAL, 0 }, { "99999999999E", -ERANGE, 0 },
	};

	check_u64(parse_size, c, ELEMENTSOF(c));
}

static void test_parse_duration(void **state)
{
	static const struct u64_case c[] = {
		{ "30m", 0, 1800 }, { "1d", 0, 86400 }, { "5", 0, 5 }, { "5y", -EINVAL, 0 },
	};

	check_u64(parse_duration, c, ELEMENTSOF(c));
}

static void test_safe_ato(void **state)
{
	static const struct u64_case c[] = {
		{ "0", 0, 0 }, { "18446744073709551615", 0, UINT64_MAX }, { "18446744073709551616", -ERANGE, 0 },
		{ "-1", -EINVAL, 0 }, { " 1", -EINVAL, 0 }, { "1 ", -EINVAL, 0 }, { "", -EINVAL, 0 },
	};
	int64_t i;
	double d;

	check_u64(safe_atou64, c, ELEMENTSOF(c));
	assert_int_equal(safe_atoi64("-9223372036854775808", &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(safe_atoi64("9223372036854775808", &i), -ERANGE);
	assert_int_equal(safe_atoi64(" 1", &i), -EINVAL);
	assert_int_equal(safe_atoi64("1x", &i), -EINVAL);
	assert_int_equal(safe_atod("-1.5", &d), 0);
	assert_true(d == -1.5);
	assert_int_equal(safe_atod("1e999", &d), -ERANGE);
	assert_int_equal(safe_atod("1.5s", &d), -EINVAL);
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
	{
		/* dirfd-relative, with a given temporary name, from iovecs, without fsyncs */
		_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct iovec iov[2] = { { (void *)"ab", 2 }, { (void *)"cd", 2 } };
		_cleanup_free_ char *text = NULL;
		char target[16];
		ssize_t n;

		assert_true(dfd >= 0);
		assert_int_equal(write_file_atomic_full_at(dfd, "x/g", "x/.g.mine", iov, 2, 0600, NULL,
							   WRITE_ATOMIC_NO_SYNC | WRITE_ATOMIC_NO_DIR_SYNC), 0);
		assert_int_equal(read_file_at(dfd, "x/g", &text, NULL), 0);
		assert_string_equal(text, "abcd");
		assert_int_equal(faccessat(dfd, "x/.g.mine", F_OK, 0), -1);
		/* the temporary exists already: refused, the target untouched */
		assert_int_equal(write_file_new_at(dfd, "x/.g.mine", iov, 1, 0600, false), 0);
		assert_int_equal(write_file_atomic_full_at(dfd, "x/g", "x/.g.mine", iov, 1, 0600, NULL, 0), -EEXIST);
		/* symlinks replaced atomically, default and given temporary names */
		assert_int_equal(symlink_atomic_at("one", dfd, "x/l", NULL), 0);
		assert_int_equal(symlink_atomic_at("two", dfd, "x/l", "x/.l.tmp"), 0);
		n = readlinkat(dfd, "x/l", target, sizeof(target) - 1);
		assert_int_equal(n, 3);
		target[n] = 0;
		assert_string_equal(target, "two");
	}
	assert_int_equal(rm_rf(dir), 0);
	assert_int_equal(access(dir, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_safe_ato),
		cmocka_unit_test(test_strv),
		cmocka_unit_test(test_atomic_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
