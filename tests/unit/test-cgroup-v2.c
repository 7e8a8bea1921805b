/* cgroup v2 backend against a fake cgroupfs tree (this machine's cgroup2
 * mount has no resource controllers). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <signal.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/cgroup/cg.h"

static char tmpl[] = "/tmp/treadle-cgv2.XXXXXX";

static int setup(void **state)
{
	_cleanup_free_ char *p = NULL;

	if (!mkdtemp(tmpl))
		return -1;
	p = strdup_printf("%s/cgroup.controllers", tmpl);
	if (write_file_atomic(p, "cpuset cpu io memory hugetlb pids rdma misc\n", 44, 0644) < 0)
		return -1;
	free(p);
	p = strdup_printf("%s/cgroup.subtree_control", tmpl);
	return write_file_atomic(p, "", 0, 0644) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	rm_rf(tmpl);
	return 0;
}

static char *knob(const char *rel)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", tmpl, rel);
	char *t = NULL;

	if (read_file(p, &t, NULL) < 0)
		return NULL;
	t[strcspn(t, "\n")] = 0;
	return t;
}

#define assert_knob(rel, want)                           \
	do {                                             \
		_cleanup_free_ char *_v = knob(rel);     \
		assert_non_null(_v);                     \
		assert_string_equal(_v, want);           \
	} while (0)

static void test_detect_and_limits(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	struct cg_limits l = { .memory_max = 16 << 20, .memory_soft = 8 << 20, .cpu_percent = 20, .pids_max = 64,
			       .io_dev = makedev(7, 3), .io_write_bps = 1000000 };

	assert_int_equal(cg_open(tmpl, "tr-fake", CG_OPEN_FAKE, &cg, &err), 0);
	assert_int_equal(cg_version(cg), CG_V2);
	assert_int_equal(cg_create(cg, "apps/u1/services", &l, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u1/sys", NULL, &err), 0);
	assert_knob("tr-fake/apps/u1/services/memory.max", "16777216");
	assert_knob("tr-fake/apps/u1/services/memory.low", "8388608");
	assert_knob("tr-fake/apps/u1/services/memory.swap.max", "0");
	assert_knob("tr-fake/apps/u1/services/cpu.max", "20000 100000");
	assert_knob("tr-fake/apps/u1/services/cpu.weight", "20");
	assert_knob("tr-fake/apps/u1/services/pids.max", "64");
	assert_knob("tr-fake/apps/u1/services/io.max", "7:3 rbps=max wbps=1000000");
	/* controllers delegated down the tree: root, R, apps, u1 */
	{
		_cleanup_free_ char *sc = knob("cgroup.subtree_control"), *sc2 = knob("tr-fake/apps/u1/cgroup.subtree_control");
		assert_non_null(strstr(sc, "memory"));
		assert_non_null(strstr(sc, "pids"));
		assert_non_null(strstr(sc2, "cpu"));
		assert_null(strstr(sc2, "hugetlb"));
	}
	/* the sys group gets no limits */
	{
		_cleanup_free_ char *m = knob("tr-fake/apps/u1/sys/memory.max");
		assert_null(m);
	}
	assert_true(cg_exists(cg, "apps/u1/services"));
	assert_int_equal(cg_attach(cg, "apps/u1/services", 4242, &err), 0);
	assert_knob("tr-fake/apps/u1/services/cgroup.procs", "4242");
	cg_close(cg);
}

static void test_oom_and_stats(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	struct cg_stats st;
	uint64_t kills = 99;
	int fd = -1;
	_cleanup_free_ char *ev = strdup_printf("%s/tr-fake/apps/u1/services/memory.events", tmpl);
	_cleanup_free_ char *cur = strdup_printf("%s/tr-fake/apps/u1/services/memory.current", tmpl);
	struct pollfd p;

	assert_int_equal(cg_open(tmpl, "tr-fake", CG_OPEN_FAKE, &cg, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u1/services", NULL, &err), 0);
	assert_int_equal(cg_oom_check(cg, "apps/u1/services", &kills), 0);
	assert_int_equal(kills, 0);
	assert_int_equal(cg_oom_fd(cg, "apps/u1/services", &fd, &err), 0);
	p = (struct pollfd){ fd, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 0), 0);
	/* the kernel rewrites memory.events in place: modify, not replace */
	assert_int_equal(write_string_file(ev, "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n"), 0);
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(cg_oom_check(cg, "apps/u1/services", &kills), 0);
	assert_int_equal(kills, 2);
	close(fd);
	assert_int_equal(write_file_atomic(cur, "12345\n", 6, 0644), 0);
	assert_int_equal(cg_stats(cg, "apps/u1/services", &st), 0);
	assert_int_equal(st.memory_current, 12345);
	assert_int_equal(st.oom_kills, 2);
	cg_close(cg);
}

static void test_destroy(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;

	assert_int_equal(cg_open(tmpl, "tr-fake", CG_OPEN_FAKE, &cg, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u2/services", NULL, &err), 0);
	assert_int_equal(cg_destroy(cg, "apps/u2", &err), 0);
	assert_false(cg_exists(cg, "apps/u2/services"));
	assert_false(cg_exists(cg, "apps/u2"));
	assert_true(cg_exists(cg, "apps"));
	assert_int_equal(cg_destroy(cg, "apps/u2", &err), 0); /* idempotent */
	assert_int_not_equal(cg_destroy(cg, "../etc", &err), 0);
	error_clear(&err);
	cg_close(cg);
}

/* The real cgroup2 mount (hybrid hosts: /sys/fs/cgroup/unified, no resource
 * controllers): create, attach, stats, kill and remove through the v2 backend. */
static void test_real_unified(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	char root[64];
	pid_t pid;
	int status;
	struct cg_stats st;

	snprintf(root, sizeof(root), "treadle-ut-v2-%d", (int)getpid());
	if (geteuid() != 0 || cg_open("/sys/fs/cgroup/unified", root, 0, &cg, &err) < 0) {
		error_clear(&err);
		skip();
	}
	if (cg_version(cg) != CG_V2) {
		cg_close(cg);
		skip();
	}
	assert_int_equal(cg_create(cg, "apps/u/services", NULL, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u/sys", NULL, &err), 0);
	assert_true(cg_exists(cg, "apps/u/services"));
	pid = fork();
	if (pid == 0) {
		struct error e2 = ERROR_INIT;
		if (cg_attach(cg, "apps/u/services", 0, &e2) < 0)
			_exit(3);
		pause();
		_exit(0);
	}
	for (int i = 0; i < 200; i++) {
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		if (cg_pids(cg, "apps/u/services", &pids, &n) == 0 && n == 1)
			break;
		usleep(5000);
	}
	assert_int_equal(cg_stats(cg, "apps/u/services", &st), 0);
	assert_int_equal(cg_destroy(cg, "", &err), 0); /* cgroup.kill, then rmdir bottom-up */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_false(cg_exists(cg, "apps"));
	cg_close(cg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect_and_limits),
		cmocka_unit_test(test_oom_and_stats),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_real_unified),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
