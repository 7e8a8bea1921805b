#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/supervisor/supervisor.h"
/* sv_tombstone_name and sv_envdir_write are file-local: compiled in. */
#include "../../src/supervisor/supervisor.c"

static struct sv_exit ex(double ts) { struct sv_exit e = { ts, 1, 0 }; return e; }

/* Feed a sequence of exit times through the policy, threading the log as the
 * finish script does; returns the index of the first fatal exit or -1. */
static int run_seq(const double *ts, size_t n, unsigned limit, unsigned interval)
{
	char *log = NULL;
	int fatal = -1;

	for (size_t i = 0; i < n; i++) {
		struct sv_exit e = ex(ts[i]);
		char *nl = NULL;
		int v = sv_policy_decide(log, &e, limit, interval, &nl);
		assert_true(v >= 0);
		free(log);
		log = nl;
		if (limit)
			assert_non_null(log);
		if (v == SV_FATAL) {
			fatal = (int)i;
			break;
		}
	}
	free(log);
	return fatal;
}

static void test_policy_limit0(void **state)
{
	struct sv_exit e = ex(100.0);
	char *nl = (char *)1;

	assert_int_equal(sv_policy_decide(NULL, &e, 0, 60, &nl), SV_FATAL);
	assert_null(nl);
	assert_int_equal(sv_policy_decide("0000000050.000,001,000\n", &e, 0, 60, &nl), SV_FATAL);
}

static void test_policy_window(void **state)
{
	/* limit 3 / 60 s: 4 exits within 60 s -> the 4th is fatal */
	double a[] = { 100, 101, 102, 103, 104 };
	assert_int_equal(run_seq(a, 5, 3, 60), 3);
	/* limit 1: second exit inside the window is fatal */
	double b[] = { 100, 159.999 };
	assert_int_equal(run_seq(b, 2, 1, 60), 1);
	/* exactly interval apart: NOW - LASTTIME >= INTERVAL -> restart */
	double c[] = { 100, 160 };
	assert_int_equal(run_seq(c, 2, 1, 60), -1);
	/* sliding: exits every 21 s with limit 2/60 never reach 3 in a window < 60 s?
	 * 100,121,142: 142-100=42 < 60 -> fatal at index 2 */
	double d[] = { 100, 121, 142 };
	assert_int_equal(run_seq(d, 3, 2, 60), 2);
	/* every 30 s with limit 2 / 60: third exit is 60 s after the first -> restart, forever */
	double f[] = { 0, 30, 60, 90, 120, 150, 180 };
	assert_int_equal(run_seq(f, 7, 2, 60), -1);
	/* a burst after a quiet period: old exits slide out */
	double g[] = { 0, 1, 100, 101, 102 };
	assert_int_equal(run_seq(g, 5, 2, 60), 4);
	/* limit 5 / 60, 5 quick exits fine, 6th fatal */
	double h[] = { 10, 10.1, 10.2, 10.3, 10.4, 10.5 };
	assert_int_equal(run_seq(h, 6, 5, 60), 5);
	assert_int_equal(run_seq(h, 5, 5, 60), -1);
}

static void test_policy_log_content(void **state)
{
	struct sv_exit e = { 1000.5, 256, 9 };
	char *nl = NULL;

	/* garbage lines ignored, only the last `limit` lines kept */
	assert_int_equal(sv_policy_decide("junk\n0000000990.000,001,000\n0000000995.000,002,000\n", &e, 2, 60, &nl),
			 SV_FATAL);
	assert_string_equal(nl, "0000000995.000,002,000\n0000001000.500,256,009\n");
	free(nl);
	assert_int_equal(sv_policy_decide("", &e, 2, 60, &nl), SV_RESTART);
	assert_string_equal(nl, "0000001000.500,256,009\n");
	free(nl);
}

static void test_policy_file(void **state)
{
	char tmpl[] = "/tmp/test-sv.XXXXXX";
	char *d = mkdtemp(tmpl);
	_cleanup_free_ char *p = strdup_printf("%s/data/exits/log", d), *c = NULL;
	struct sv_exit e1 = { 50, 1, 0 }, e2 = { 51, 1, 0 };

	assert_int_equal(sv_policy_apply(p, &e1, 1, 60), SV_RESTART);
	assert_int_equal(read_file(p, &c, NULL), 0);
	assert_string_equal(c, "0000000050.000,001,000\n");
	assert_int_equal(sv_policy_apply(p, &e2, 1, 60), SV_FATAL);
	free(c);
	assert_int_equal(read_file(p, &c, NULL), 0);
	assert_string_equal(c, "0000000051.000,001,000\n");
	rm_rf(d);
}

static void test_tombstone(void **state)
{
	struct sv_exit e = { 1600000000.1234, 256, 9 }, g;
	_cleanup_free_ char *n = sv_tombstone_name("proid.app-0000000001-abcdefghijklm,web", &e), *id = NULL;

	assert_string_equal(n, "proid.app-0000000001-abcdefghijklm,web,1600000000.123,256,009");
	assert_int_equal(sv_tombstone_parse(n, &id, &g), 0);
	assert_string_equal(id, "proid.app-0000000001-abcdefghijklm,web");
	assert_int_equal(g.rc, 256);
	assert_int_equal(g.sig, 9);
	assert_true(g.ts > 1600000000.12 && g.ts < 1600000000.13);
	free(id);
	id = NULL;
	assert_int_equal(sv_tombstone_parse("p.a#0000000001,0000000012.000,000,000", &id, &g), 0);
	assert_string_equal(id, "p.a#0000000001");
	free(id);
	id = NULL;
	assert_int_equal(sv_tombstone_parse("1.0,000,000", &id, &g), -EINVAL);
	assert_int_equal(sv_tombstone_parse("x,1.0,abc,000", &id, &g), -EINVAL);
	assert_int_equal(sv_tombstone_parse("nocommas", &id, &g), -EINVAL);
	assert_int_equal(sv_tombstone_parse("x,nan,001,000", &id, &g), -EINVAL);
	assert_int_equal(sv_tombstone_parse("x,inf,001,000", &id, &g), -EINVAL);
	/* timestamps are bounded (12 digits, 9 decimals): no 1e300, no 110 digits */
	assert_int_equal(sv_tombstone_parse("x,1e300,001,000", &id, &g), -EINVAL);
	assert_int_equal(sv_tombstone_parse("x,-1.0,001,000", &id, &g), -EINVAL);
	assert_int_equal(sv_tombstone_parse("x,1000000000000.000,001,000", &id, &g), -EINVAL);
	assert_int_equal(sv_tombstone_parse("x,99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999,001,000", &id, &g), -EINVAL);
	assert_int_equal(sv_tombstone_parse("x,999999999999.123456789,001,000", &id, &g), 0);
	free(id);
	id = NULL;
	{
		struct sv_exit x = { 5, 0, 0 };
		_cleanup_free_ char *s = sv_exit_format(&x);
		assert_string_equal(s, "0000000005.000,000,000");
	}
}

static void test_envdir(void **state)
{
	char tmpl[] = "/tmp/test-sv.XXXXXX";
	char *d = mkdtemp(tmpl);
	char *env[] = { "FOO=bar", "MULTI=a\nb", "EMPTY=", NULL };
	char *bad[] = { "1BAD=x", NULL };

	assert_int_equal(sv_envdir_write(d, env), 0);
	assert_int_equal(sv_envdir_write(d, bad), -EINVAL);
	setenv("EMPTY", "x", 1);
	assert_int_equal(sv_envdir_apply(d), 0);
	assert_string_equal(getenv("FOO"), "bar");
	assert_string_equal(getenv("MULTI"), "a\nb");
	/* "EMPTY=" is written as "\n": an empty value, not unset */
	assert_string_equal(getenv("EMPTY"), "");
	rm_rf(d);
}

static void wait_for(int (*f)(const char *), const char *dir, int want)
{
	for (int i = 0; i < 500; i++) {
		if (f(dir) == want)
			return;
		usleep(10000);
	}
	fail_msg("timeout waiting on %s", dir);
}

static int supervised(const char *d) { return sv_is_supervised(d); }

/* Real s6: write a service, supervise it, control it through the FIFOs. */
static void test_s6(void **state)
{
	char tmpl[] = "/tmp/test-sv.XXXXXX";
	char *d = mkdtemp(tmpl);
	_cleanup_free_ char *svc = strdup_printf("%s/scan/svc", d), *scan = strdup_printf("%s/scan", d);
	struct sv_service_spec spec = {
		.run = "#!/bin/sh\nexec sleep 100\n",
		.finish = NULL,
		.log_run = "#!/bin/sh\nexec s6-log -b n2 s10000 ../logdir\n",
		.notification_fd = 3,
		.timeout_finish_ms = 0,
		.down = false,
	};
	struct stat st;
	pid_t pid;
	int status;

	if (access("/usr/bin/s6-svscan", X_OK) != 0)
		skip();
	assert_int_equal(sv_service_write(svc, &spec), 0);
	assert_int_equal(stat(svc, &st), 0);
	assert_false(sv_is_supervised(svc));
	assert_int_equal(sv_control(svc, "d"), -ENOENT);
	assert_int_equal(sv_wait_unsupervised(svc, 100), 0); /* never supervised */
	assert_int_equal(sv_svscan_wait(scan, 100), -ETIMEDOUT);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("s6-svscan", "s6-svscan", scan, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(sv_svscan_wait(scan, 5000), 0);
	wait_for(supervised, svc, 1);
	wait_for(sv_is_up, svc, 1);
	{
		struct sv_status s;

		assert_int_equal(sv_status(svc, &s), 0);
		assert_true(s.up);
		assert_true(s.pid > 0);
		assert_true(s.since > 0 && s.since <= now_realtime() + 1);
	}
	assert_int_equal(sv_wait_unsupervised(svc, 200), -ETIMEDOUT); /* still supervised */
	assert_int_equal(sv_control(svc, "d"), 0);
	wait_for(sv_is_up, svc, 0);
	assert_int_equal(sv_control(svc, "u"), 0);
	wait_for(sv_is_up, svc, 1);
	{
		_cleanup_free_ char *log = strdup_printf("%s/log", svc);

		uint64_t t0 = now_monotonic_ms();

		/* s6-supervise asked to exit: its 'x' event ends the wait (at once,
		 * not at the timeout; s6-svscan may start a new one right after) */
		assert_int_equal(sv_control(svc, "dx"), 0);
		assert_int_equal(sv_wait_unsupervised(svc, 20000), 0);
		assert_true(now_monotonic_ms() - t0 < 10000);
		assert_true(sv_is_supervised(log));
	}
	assert_int_equal(sv_svscan_control(scan, "t"), 0); /* take the tree down, then exit */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(sv_is_supervised(svc));
	rm_rf(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_limit0),
		cmocka_unit_test(test_policy_window),
		cmocka_unit_test(test_policy_log_content),
		cmocka_unit_test(test_policy_file),
		cmocka_unit_test(test_tombstone),
		cmocka_unit_test(test_envdir),
		cmocka_unit_test(test_s6),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
