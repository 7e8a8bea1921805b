/* test-node-postmortem.c: watchdog leases (deadline = mtime, failed once
 * passed) and the postmortem bundle (a tar.gz `tar` reads, long member
 * names through pax records, the newest three kept).  The watcher and the
 * blackout are tested end to end by tests/integration/59. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
/* leases_failed and prune are file-local: the production files are compiled in. */
#include "../../src/node/postmortem.c"
#include "../../src/node/watchdog.c"

static char *root;

static int setup(void **state _unused_)
{
	char t[] = "/tmp/test-node-postmortem.XXXXXX";

	if (!mkdtemp(t))
		return -1;
	root = strdup(t);
	return root ? 0 : -1;
}

static int teardown(void **state _unused_)
{
	(void)rm_rf(root);
	free(root);
	return 0;
}

static void test_leases(void **state _unused_)
{
	_cleanup_strv_free_ char **failed = NULL;
	_cleanup_free_ char *p = strdup_printf("%s/watchdogs/agent", root), *text = NULL;
	double next = 0, now = now_realtime();
	struct stat st;

	assert_int_equal(node_lease_renew(root, "agent", 30), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(st.st_mtim.tv_sec >= (time_t)now + 29 && st.st_mtim.tv_sec <= (time_t)now + 31);
	assert_int_equal(read_file(p, &text, NULL), 0);
	assert_non_null(strstr(text, "timeout 30\n"));
	assert_int_equal(leases_failed(root, now, &failed, &next), 0);
	assert_null(failed[0]);
	assert_true(next > now + 29);
	strv_free(failed);
	failed = NULL;
	/* 40 s later the lease has failed */
	assert_int_equal(leases_failed(root, now + 40, &failed, &next), 0);
	assert_non_null(failed[0]);
	assert_string_equal(failed[0], "agent");
	assert_null(failed[1]);
	assert_true(next == 0);
	/* renewing moves the deadline; removing ends it */
	assert_int_equal(node_lease_renew(root, "agent", 60), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_mtim.tv_sec >= (time_t)now + 59);
	assert_int_equal(node_lease_remove(root, "agent"), 0);
	assert_int_equal(node_lease_remove(root, "agent"), 0);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_bundle(void **state _unused_)
{
	const char *longname = "proid.a-very-long-application-name-for-pax-0000000042-43GUdkub4tftX";
	_cleanup_free_ char *logd = strdup_printf("%s/apps/%s/data/services/service-with-a-long-name/data/log",
						  root, longname);
	_cleanup_free_ char *cur = strdup_printf("%s/current", logd), *path = NULL, *cmd = NULL, *out = NULL;
	struct node_postmortem_options o = { .root = root, .hostname = "h1", .cgroup_root = "no-such-cgroup",
					     .reason = "test" };
	struct error err = ERROR_INIT;
	char buf[4096];
	size_t n;
	FILE *f;

	assert_int_equal(mkdir_p(logd, 0755), 0);
	assert_int_equal(write_file_atomic(cur, "hello log\n", 10, 0644), 0);
	assert_int_equal(node_postmortem_write(&o, &path, &err), 0);
	assert_true(startswith(path, root));
	assert_non_null(strstr(path, "/postmortem/h1-"));
	assert_true(endswith(path, "UTC.tar.gz"));
	cmd = strdup_printf("tar xzOf '%s' 'apps/%s/data/services/service-with-a-long-name/data/log/current' "
			    "reason.txt", path, longname);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	assert_int_equal(pclose(f), 0);
	assert_string_equal(buf, "testhello log\n"); /* archive order: reason.txt first */
}

static void test_prune(void **state _unused_)
{
	_cleanup_free_ char *dir = strdup_printf("%s/postmortem", root);
	_cleanup_strv_free_ char **l = NULL;

	assert_int_equal(mkdir_p(dir, 0755), 0);
	for (int i = 0; i < 5; i++) {
		_cleanup_free_ char *p = strdup_printf("%s/h-2026010%d_000000UTC.tar.gz", dir, i);
		struct timespec ts[2] = { { 1000 + i, 0 }, { 1000 + i, 0 } };

		assert_int_equal(write_file_atomic(p, "x", 1, 0644), 0);
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	}
	prune(dir);
	assert_int_equal(dir_list(dir, 1, &l), 0);
	/* the bundle of test_bundle is the newest, then 4 and 3 */
	assert_int_equal(strv_length(l), 3);
	assert_true(strv_contains(l, "h-20260104_000000UTC.tar.gz"));
	assert_true(strv_contains(l, "h-20260103_000000UTC.tar.gz"));
	assert_false(strv_contains(l, "h-20260102_000000UTC.tar.gz"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leases),
		cmocka_unit_test(test_bundle),
		cmocka_unit_test(test_prune),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
