#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/node/layout.h"
/* node_uniqueid and node_instance_uniques are file-local: the production file is compiled in. */
#include "../../src/node/layout.c"

static void uid_case(long sec, long nsec, uint64_t ino, const char *inst, const char *want)
{
	struct stat st = { 0 };
	char id[NODE_UNIQUEID_LEN + 1];

	st.st_ctim.tv_sec = sec;
	st.st_ctim.tv_nsec = nsec;
	st.st_ino = ino;
	assert_int_equal(node_uniqueid(&st, inst, id), 0);
	assert_string_equal(id, want);
}

/* Expected values computed with Treadmill's gen_uniqueid formula in Python. */
static void test_uniqueid(void **state)
{
	struct stat st = { 0 };
	char id[NODE_UNIQUEID_LEN + 1];

	uid_case(1600000000, 123456789, 1234567, "proid.myapp#0000000042", "3ibKPkDNJAown");
	uid_case(1700000000, 999999999, (1ull << 40) + 5, "p.a#0000000001", "3ibKPkVBNaqGh");
	uid_case(0, 0, 0, "p.a#0000000000", "0000000000000");
	uid_case(1764000000, 500000, 98765, "treadle.web#0000001234", "2RfmZNdwjob1P");
	assert_int_equal(node_uniqueid(&st, "proid.myapp", id), -EINVAL);
	assert_int_equal(node_uniqueid(&st, "proid.myapp#12a", id), -EINVAL);
}

static void test_unique_name(void **state)
{
	_cleanup_free_ char *u = node_unique_name("proid.myapp#0000000042", "0f7rp3bsjtzxx");
	_cleanup_free_ char *i = NULL;

	assert_string_equal(u, "proid.myapp-0000000042-0f7rp3bsjtzxx");
	i = node_unique_instance(u);
	assert_string_equal(i, "proid.myapp#0000000042");
	assert_string_equal(node_unique_id(u), "0f7rp3bsjtzxx");
	assert_null(node_unique_instance("proid.myapp-0000000042-short"));
	assert_null(node_unique_instance("nodash"));
	assert_null(node_unique_id("a-b"));
	assert_null(node_unique_instance("ab0-#000001-abcdefghijklm")); /* '#' inside */
	assert_null(node_unique_instance("proid.app-00x0000042-0f7rp3bsjtzxx")); /* seq not digits */
	assert_null(node_unique_id("proid.app-0000000042-0f7rp3bsj_zxx"));
}

static void test_paths(void **state)
{
	char tmpl[] = "/tmp/test-node-layout.XXXXXX";
	char *root = mkdtemp(tmpl);
	_cleanup_free_ char *p = NULL, *q = NULL, *cd = NULL, *ld = NULL, *a = NULL, *l = NULL, *u = NULL;
	_cleanup_strv_free_ char **us = NULL;
	const char *inst = "proid.web#0000000007";
	struct stat st;

	assert_non_null(root);
	assert_int_equal(node_layout_create(root), 0);
	p = node_path(root, NODE_DIR_TOMB_SERVICES);
	assert_int_equal(stat(p, &st), 0);
	free(p);
	p = node_cache_file(root, inst);
	assert_int_equal(write_file_atomic(p, "{}", 2, 0644), 0);
	assert_int_equal(node_cache_unique_name(root, inst, &u), 0);
	assert_true(startswith(u, "proid.web-0000000007-"));
	assert_int_equal(strlen(u), strlen("proid.web-0000000007-") + 13);

	/* nothing live, nothing archived */
	assert_null(node_service_log_dir(root, inst, "web", NULL));

	/* an archived one */
	a = strdup_printf("%s/archives/proid.web-0000000007-0000000000001/services/web/log", root);
	assert_int_equal(mkdir_p(a, 0755), 0);
	ld = node_service_log_dir(root, inst, "web", NULL);
	assert_string_equal(ld, a);
	free(ld);

	/* a live one, linked from running/ */
	q = node_app_dir(root, u);
	free(p);
	p = strdup_printf("%s/data/services/web/data/log", q);
	assert_int_equal(mkdir_p(p, 0755), 0);
	l = node_running_link(root, inst);
	assert_int_equal(symlink(q, l), 0);
	ld = node_service_log_dir(root, inst, "web", NULL);
	assert_string_equal(ld, p);
	free(ld);
	ld = node_service_log_dir(root, inst, "web", "0000000000001");
	assert_string_equal(ld, a);
	free(ld);
	ld = node_service_log_dir(root, inst, "nosuch", NULL);
	assert_null(ld);

	assert_int_equal(node_instance_uniques(root, inst, &us), 0);
	assert_int_equal(strv_length(us), 2);
	assert_string_equal(us[0], "proid.web-0000000007-0000000000001");
	assert_string_equal(us[1], u);

	/* moved to cleanup/: still found */
	free(cd);
	p = (free(p), node_cleanup_link(root, u));
	assert_int_equal(rename(l, p), 0);
	assert_int_equal(rm_rf(root), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uniqueid),
		cmocka_unit_test(test_unique_name),
		cmocka_unit_test(test_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
