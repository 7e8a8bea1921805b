/* cgroup v1 backend on this machine's real cgroupfs (skipped elsewhere or
 * when not root), plus the keyed-file parsing both backends share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/cgroup/cg.h"
#include "../../src/cgroup/cgroup-internal.h"
#include "cgroup-test.h"

static char root_name[64];

static void test_keyed(void **state)
{
	char dir[] = "/tmp/treadle-ut-keyed-XXXXXX";
	_cleanup_free_ char *f = NULL;
	uint64_t v;

	assert_non_null(mkdtemp(dir));
	f = strdup_printf("%s/k", dir);
	assert_int_equal(write_file_atomic(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 42, 0644), 0);
	assert_int_equal(cg_read_keyed(dir, "k", "oom_kill", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(write_file_atomic(f, "low 0\nmax max\n", 14, 0644), 0);
	assert_int_equal(cg_read_keyed(dir, "k", "max", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(write_file_atomic(f, "oom 1\n", 6, 0644), 0);
	assert_int_equal(cg_read_keyed(dir, "k", "oom_kill", &v), -ENOENT);
	assert_int_equal(cg_read_keyed(dir, "missing", "oom_kill", &v), -ENOENT);
	assert_int_equal(rm_rf(dir), 0);
}

static struct cg *open_real(void)
{
	return cgt_open(NULL, root_name, CG_V1);
}

static char *knob(const char *ctrl, const char *rel)
{
	_cleanup_free_ char *p = strdup_printf("/sys/fs/cgroup/%s/%s/%s", ctrl, root_name, rel);
	char *t = NULL;

	if (read_file(p, &t, NULL) < 0)
		return NULL;
	t[strcspn(t, "\n")] = 0;
	return t;
}

static void test_v1_limits(void **state)
{
	_cleanup_cg_ struct cg *cg = open_real();
	struct error err = ERROR_INIT;
	struct cg_limits l = { .memory_max = 32 << 20, .cpu_percent = 20, .pids_max = 50 };
	_cleanup_free_ char *mem = NULL, *quota = NULL, *shares = NULL, *pids = NULL, *soft = NULL;

	if (!cg)
		skip();
	assert_int_equal(cg_create(cg, "apps/u1/services", &l, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u1/services", &l, &err), 0); /* idempotent */
	mem = knob("memory", "apps/u1/services/memory.limit_in_bytes");
	soft = knob("memory", "apps/u1/services/memory.soft_limit_in_bytes");
	quota = knob("cpu", "apps/u1/services/cpu.cfs_quota_us");
	shares = knob("cpu", "apps/u1/services/cpu.shares");
	pids = knob("pids", "apps/u1/services/pids.max");
	assert_string_equal(mem, "33554432");
	assert_string_equal(soft, "33554432");
	assert_string_equal(quota, "20000");
	assert_string_equal(shares, "204");
	assert_string_equal(pids, "50");
	assert_int_equal(cg_destroy(cg, "", &err), 0);
	assert_false(cg_exists(cg, ""));
}

/* A child over the memory limit is OOM-killed; the OOM fd fires and the
 * kill is counted; destroy removes everything and is idempotent. */
static void test_v1_oom(void **state)
{
	_cleanup_cg_ struct cg *cg = open_real();
	struct error err = ERROR_INIT;
	struct cg_limits l = { .memory_max = 16 << 20 };
	uint64_t kills = 0;
	int fd = -1, status;
	pid_t pid;
	struct pollfd p;

	if (!cg)
		skip();
	assert_int_equal(cg_create(cg, "apps/oom/services", &l, &err), 0);
	assert_int_equal(cg_oom_fd(cg, "apps/oom/services", &fd, &err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct error e2 = ERROR_INIT;
		if (cg_attach(cg, "apps/oom/services", 0, &e2) < 0)
			_exit(3);
		for (int i = 0; i < 256; i++) {
			char *m = malloc(1 << 20);
			if (!m)
				_exit(2);
			memset(m, 1, 1 << 20);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	p = (struct pollfd){ fd, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 5000), 1);
	close(fd);
	assert_int_equal(cg_oom_check(cg, "apps/oom/services", &kills), 0);
	assert_true(kills >= 1);
	{ /* cg_stats sees the same kills, the limit, the memory and CPU the child used */
		struct cg_stats st;

		assert_int_equal(cg_stats(cg, "apps/oom/services", &st), 0);
		assert_int_equal(st.oom_kills, kills);
		assert_int_equal(st.memory_limit, 16 << 20);
		assert_true(st.cpu_usec > 0);
		assert_int_equal(cg_stats(cg, "apps/none/services", &st), -ENOENT);
	}
	assert_int_equal(cg_destroy(cg, "", &err), 0);
	assert_int_equal(cg_destroy(cg, "", &err), 0);
}

/* cg_destroy kills what is left inside. */
static void test_v1_destroy_kills(void **state)
{
	_cleanup_cg_ struct cg *cg = open_real();
	struct error err = ERROR_INIT;
	pid_t pid;
	int status;

	if (!cg)
		skip();
	assert_int_equal(cg_create(cg, "apps/k/services", NULL, &err), 0);
	pid = fork();
	if (pid == 0) {
		struct error e2 = ERROR_INIT;
		if (cg_attach(cg, "apps/k/services", 0, &e2) < 0)
			_exit(3);
		pause();
		_exit(0);
	}
	cgt_wait_procs(cg, "apps/k/services", 1);
	assert_int_equal(cg_destroy(cg, "", &err), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_false(cg_exists(cg, "apps/k"));
}

static int teardown(void **state)
{
	_cleanup_cg_ struct cg *cg = open_real();
	struct error err = ERROR_INIT;

	if (cg)
		cg_destroy(cg, "", &err);
	error_clear(&err);
	return 0;
}

/* The devices controller: the container allowlist replaces everything, then
 * lifting it opens every device again. */
static char *devices_list(const char *rel)
{
	_cleanup_free_ char *dir = strdup_printf("/sys/fs/cgroup/devices/%s/%s", root_name, rel);

	return dir ? cgt_read(dir, "devices.list", false) : NULL;
}

static void test_v1_devices(void **state)
{
	_cleanup_cg_ struct cg *cg = open_real();
	struct error err = ERROR_INIT;
	_cleanup_free_ char *list = NULL, *want = NULL;

	if (!cg || access("/sys/fs/cgroup/devices", F_OK) < 0)
		skip();
	assert_int_equal(cg_create(cg, "apps/d/services", NULL, &err), 0);
	assert_int_equal(cg_set_devices(cg, "apps/d/services", cg_devices_container, cg_devices_container_n, &err), 0);
	list = devices_list("apps/d/services");
	assert_int_equal(cg_devices_format(cg_devices_container, cg_devices_container_n, &want), 0);
	assert_string_equal(list, want);
	assert_int_equal(cgt_devices_verdict(cg, "apps/d/services"), 4); /* zero is allowed here */
	/* again (a restart re-applies): same list */
	assert_int_equal(cg_set_devices(cg, "apps/d/services", cg_devices_container, cg_devices_container_n, &err), 0);
	free(list);
	list = devices_list("apps/d/services");
	assert_string_equal(list, want);
	assert_int_equal(cg_set_devices(cg, "apps/d/services", NULL, 0, &err), 0);
	free(list);
	list = devices_list("apps/d/services");
	assert_string_equal(list, "a *:* rwm\n");
	assert_int_equal(cgt_devices_verdict(cg, "apps/d/services"), 2 | 4 | 8);
	/* a group with children cannot take "a": the error says which */
	assert_true(cg_set_devices(cg, "apps/d", cg_devices_container, cg_devices_container_n, &err) < 0);
	assert_non_null(strstr(err.msg, "devices.deny"));
	error_clear(&err);
	assert_int_equal(cg_destroy(cg, "", &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyed),
		cmocka_unit_test_teardown(test_v1_limits, teardown),
		cmocka_unit_test_teardown(test_v1_oom, teardown),
		cmocka_unit_test_teardown(test_v1_destroy_kills, teardown),
		cmocka_unit_test_teardown(test_v1_devices, teardown),
	};
	snprintf(root_name, sizeof(root_name), "treadle-ut-%d", (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
