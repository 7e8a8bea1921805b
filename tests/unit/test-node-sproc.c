#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/json.h"
#include "../../src/basic/util.h"
#include "../../src/container/container.h"
#include "../../src/node/sproc.h"
#include "../../src/supervisor/supervisor.h"
/* sproc_terminal_event and sproc_archives_prune are file-local: compiled in. */
#include "../../src/node/sproc-cleanup.c"

#define CONTAINER_BIN_FOR_TEST CONTAINER_TREADLE

static char *mktmp(void)
{
	char *t = strdup("/tmp/test-node-sproc.XXXXXX");
	assert_non_null(mkdtemp(t));
	return t;
}

static void put(const char *dir, const char *name, const char *content)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
	assert_int_equal(write_file_atomic(p, content, strlen(content), 0644), 0);
}

static void expect_event(const char *data_dir, const char *type, const char *data, const char *payload)
{
	char *t = NULL, *d = NULL, *p = NULL;

	assert_int_equal(sproc_terminal_event(data_dir, &t, &d, &p), 0);
	if (!type) {
		assert_null(t);
	} else {
		assert_string_equal(t, type);
		assert_string_equal(d, data);
		if (payload)
			assert_string_equal(p, payload);
		else
			assert_null(p);
	}
	free(t);
	free(d);
	free(p);
}

/* aborted > oom (killed) > terminated (no event) > exitinfo (finished) */
static void test_terminal_precedence(void **state)
{
	_cleanup_free_ char *d = mktmp();
	_cleanup_free_ char *p = NULL;

	expect_event(d, NULL, NULL, NULL);
	put(d, "exitinfo", "{\"return_code\":3,\"service\":\"web\",\"signal\":0,\"timestamp\":1.5}");
	expect_event(d, "finished", "3.0", "{\"return_code\":3,\"service\":\"web\",\"signal\":0,\"timestamp\":1.5}");
	put(d, "terminated", "");
	expect_event(d, NULL, NULL, NULL);
	put(d, "oom", "");
	expect_event(d, "killed", "oom", NULL);
	put(d, "aborted", "{\"why\":\"timeout\",\"payload\":\"not running after 3 s\"}");
	expect_event(d, "aborted", "timeout", "not running after 3 s");
	put(d, "aborted", "not json");
	expect_event(d, "aborted", "unknown", NULL);
	put(d, "aborted", "{\"why\":\"a,b\"}");
	expect_event(d, "aborted", "unknown", NULL); /* would break the event name grammar */
	p = strdup_printf("%s/aborted", d);
	unlink(p);
	free(p);
	p = strdup_printf("%s/oom", d);
	unlink(p);
	free(p);
	p = strdup_printf("%s/terminated", d);
	unlink(p);
	put(d, "exitinfo", "{\"service\":\"web\"}");
	expect_event(d, "finished", "256.256", "{\"service\":\"web\"}"); /* Treadmill's defaults */
	rm_rf(d);
}

static void test_shell_quote(void **state)
{
	_cleanup_free_ char *a = shell_quote("plain"), *b = shell_quote("it's $x"), *c = shell_quote("");

	assert_string_equal(a, "'plain'");
	assert_string_equal(b, "'it'\\''s $x'");
	assert_string_equal(c, "''");
}

static void test_event_post(void **state)
{
	_cleanup_free_ char *d = mktmp(), *payload = NULL, *path = NULL;
	_cleanup_strv_free_ char **l = NULL;
	char *c1;

	assert_int_equal(sproc_event_post(d, "p.a#0000000001", "configured", "abcdefghijklm", NULL), 0);
	assert_int_equal(sproc_event_post(d, "p.a#0000000001", "aborted", "timeout", "why"), 0);
	assert_int_equal(sproc_event_post(d, "p.a#0000000001", "aborted", "a/b", NULL), -EINVAL);
	assert_int_equal(dir_list(d, 0, &l), 0);
	assert_int_equal(strv_length(l), 2);
	/* "<ts %.3f>,<instance>,<type>,<data>" */
	c1 = strchr(l[0], ',');
	assert_non_null(c1);
	assert_int_equal(c1 - l[0] > 4 && l[0][c1 - l[0] - 4] == '.', 1);
	assert_true(endswith(l[0], ",p.a#0000000001,aborted,timeout") || endswith(l[0], ",p.a#0000000001,configured,abcdefghijklm"));
	for (size_t i = 0; i < 2; i++)
		if (endswith(l[i], "aborted,timeout")) {
			path = strdup_printf("%s/%s", d, l[i]);
			assert_int_equal(read_file(path, &payload, NULL), 0);
			assert_string_equal(payload, "why");
		}
	assert_non_null(payload);
	rm_rf(d);
}

static bool file_contains(const char *path, const char *needle)
{
	_cleanup_free_ char *s = NULL;

	return read_file(path, &s, NULL) == 0 && strstr(s, needle);
}

static void test_services_write(void **state)
{
	_cleanup_free_ char *d = mktmp(), *p = NULL, *stale = NULL, *exits = NULL;
	struct node_settings ns = { .root = "/N", .treadle_bin = "/usr/bin/treadle", .cgroup_root = "treadle" };
	struct error err = ERROR_INIT;
	_cleanup_json_ json_t *app = json_loads("{\"name\":\"p.a#0000000042\",\"uniqueid\":\"abcdefghijklm\",\"services\":["
				 "{\"name\":\"web\",\"command\":\"exec web --port 80\",\"proid\":\"p\",\"root\":false,"
				 "\"restart\":{\"limit\":5,\"interval\":60},\"environ\":[{\"name\":\"A\",\"value\":\"1\"},"
				 "{\"name\":\"A\",\"value\":\"2\"}],\"downed\":true},"
				 "{\"name\":\"adm\",\"command\":\"true\",\"proid\":\"root\",\"root\":true,\"trace\":false,"
				 "\"restart\":{\"limit\":0,\"interval\":30}}]}",
				 0, NULL);
	struct stat st;

	assert_non_null(app);
	stale = strdup_printf("%s/data/services/old", d);
	assert_int_equal(mkdir_p(stale, 0755), 0);
	exits = strdup_printf("%s/data/services/web/data/exits", d);
	assert_int_equal(mkdir_p(exits, 0755), 0);
	put(exits, "log", "0000000001.000,001,000\n");
	assert_int_equal(sproc_services_write(&ns, d, app, &err), 0);
	assert_int_equal(stat(stale, &st), -1); /* stale service removed */
	{
		/* data/services/<file> contains <text> */
		static const struct {
			const char *file, *text;
		} want[] = {
			{ "web/run", "exec '" CONTAINER_BIN_FOR_TEST "' sproc service-exec --appevents '/services/.ctl/appevents' --instance 'p.a#0000000042' --uniqueid 'abcdefghijklm' --service 'web' --user 'p'" },
			{ "web/finish", "sproc finish --limit 5 --interval 60 --tombstones '/services/.ctl/tombstones' --id 'p.a-0000000042-abcdefghijklm,web'" },
			{ "web/finish", "-- \"$1\" \"$2\"" },
			{ "web/app_start", "exec web --port 80\n" },
			{ "web/env/A", "2\n" }, /* later entries (the service's own) win */
			{ "web/notification-fd", "3\n" },
			{ "web/log/run", "s6-log -b n20 s1000000 ../data/log" },
		};

		for (size_t i = 0; i < ELEMENTSOF(want); i++) {
			_cleanup_free_ char *f = strdup_printf("%s/data/services/%s", d, want[i].file);
			assert_true(file_contains(f, want[i].text));
		}
	}
	p = strdup_printf("%s/data/services/web/down", d);
	assert_int_equal(stat(p, &st), 0);
	free(p);
	p = strdup_printf("%s/log", exits);
	assert_int_equal(stat(p, &st), -1); /* exit history wiped */
	free(p);
	p = strdup_printf("%s/data/services/adm/run", d);
	assert_false(file_contains(p, "--user"));
	assert_false(file_contains(p, "--appevents")); /* trace: false */
	free(p);
	p = strdup_printf("%s/data/services/adm/finish", d);
	assert_true(file_contains(p, "--limit 0 --interval 30"));

	/* invalid service names are refused */
	{
		_cleanup_json_ json_t *bad = json_loads("{\"name\":\"p.a#0000000042\",\"uniqueid\":\"abcdefghijklm\",\"services\":["
							"{\"name\":\"../x\",\"command\":\"true\"}]}", 0, NULL);
		assert_true(sproc_services_write(&ns, d, bad, &err) < 0);
		assert_non_null(err.msg);
		error_clear(&err);
	}
	rm_rf(d);
}

/* a container's death outside the policy: traced, counted across containers
 * (history + the container's own log), idempotent, fatal past the limit */
/* Readiness checks: data/ready/<endpoint> "down" for gated endpoints only (stale files gone), and one
 * check@<svc> companion service per checked service. */
static void test_checks_prepare(void **state)
{
	_cleanup_free_ char *d = mktmp(), *p = NULL, *text = NULL;
	struct error err = ERROR_INIT;
	_cleanup_json_ json_t *app = json_loads(
		"{\"services\":[{\"name\":\"web\",\"check\":{\"tcp\":8000,\"endpoints\":[\"http\",\"a/b\"]}},"
		"{\"name\":\"plain\"}]}", 0, NULL);
	_cleanup_json_ json_t *none = json_loads("{\"services\":[{\"name\":\"plain\"}]}", 0, NULL);
	bool any = false;
	struct stat st;

	assert_non_null(app);
	p = strdup_printf("%s/data/ready", d);
	assert_int_equal(mkdir_p(p, 0755), 0);
	put(p, "old", "up");
	assert_int_equal(sproc_ready_prepare(d, app, &any), 0);
	assert_true(any);
	free(p);
	p = strdup_printf("%s/data/ready/http", d);
	assert_int_equal(read_file(p, &text, NULL), 0);
	assert_string_equal(text, "down");
	free(p);
	p = strdup_printf("%s/data/ready/old", d);
	assert_int_equal(stat(p, &st), -1);
	assert_int_equal(sproc_system_services_write(d, app, &err), 0);
	free(p);
	free(text);
	p = strdup_printf("%s/data/services/check@web/run", d);
	assert_int_equal(read_file(p, &text, NULL), 0);
	assert_non_null(strstr(text, "/run/tm_bin/treadle")); /* shell-quoted */
	assert_non_null(strstr(text, " sproc check --service "));
	assert_non_null(strstr(text, "web"));
	free(p);
	p = strdup_printf("%s/data/services/check@plain", d);
	assert_int_equal(stat(p, &st), -1);
	/* no check: no data/ready at all */
	assert_int_equal(sproc_ready_prepare(d, none, &any), 0);
	assert_false(any);
	free(p);
	p = strdup_printf("%s/data/ready", d);
	assert_int_equal(stat(p, &st), -1);
	(void)rm_rf(d);
}

static void test_container_died(void **state)
{
	_cleanup_free_ char *root = mktmp(), *cdir = NULL, *data = NULL, *ev = NULL, *hist = NULL, *p = NULL;
	_cleanup_free_ char *text = NULL, *svc = NULL, *cdir2 = NULL;
	const char *u = "p.a-0000000042-abcdefghijklm";
	const char *appjson = "{\"name\":\"p.a#0000000042\",\"uniqueid\":\"abcdefghijklm\",\"services\":["
			      "{\"name\":\"web\",\"restart\":{\"limit\":2,\"interval\":60}},"
			      "{\"name\":\"adm\",\"restart\":{\"limit\":0,\"interval\":60},\"downed\":true},"
			      "{\"name\":\"one\",\"restart\":{\"limit\":5,\"interval\":60}}]}";
	struct node_settings ns = { .root = root, .treadle_bin = "/usr/bin/treadle", .cgroup_root = "treadle" };
	struct sv_exit e1 = { 1000.0, 256, 9 }, e2 = { 1010.0, 256, 9 }, stop = { 1020.0, 0, 0 };
	struct error err = ERROR_INIT;
	_cleanup_strv_free_ char **l = NULL;
	struct stat st;
	_cleanup_json_ json_t *app = NULL;

	(void)state;
	cdir = strdup_printf("%s/apps/%s", root, u);
	data = strdup_printf("%s/data", cdir);
	ev = strdup_printf("%s/appevents", root);
	hist = strdup_printf("%s/exits/p.a#0000000042/web", root);
	assert_int_equal(mkdir_p(data, 0755), 0);
	assert_int_equal(mkdir_p(ev, 0755), 0);
	put(data, "app.json", appjson);

	/* a requested stop (status 0) is not counted */
	assert_int_equal(sproc_container_died(root, u, &stop, &svc), SPROC_DEATH_IGNORED);
	assert_int_equal(stat(hist, &st), -1);

	/* death 1: restart; service_exited for web and one (adm was down) */
	assert_int_equal(sproc_container_died(root, u, &e1, &svc), SPROC_DEATH_RESTART);
	assert_null(svc);
	assert_int_equal(read_file(hist, &text, NULL), 0);
	assert_string_equal(text, "0000001000.000,256,009\n");
	free(text);
	text = NULL;
	assert_int_equal(dir_list(ev, 1, &l), 0);
	assert_int_equal(strv_length(l), 2);
	assert_true(strv_contains(l, "1000.000,p.a#0000000042,service_exited,abcdefghijklm.web.256.9"));
	assert_true(strv_contains(l, "1000.000,p.a#0000000042,service_exited,abcdefghijklm.one.256.9"));
	strv_free(l);
	l = NULL;
	/* the same tombstone again (the agent died before removing it): not counted twice */
	assert_int_equal(sproc_container_died(root, u, &e1, &svc), SPROC_DEATH_IGNORED);
	assert_int_equal(read_file(hist, &text, NULL), 0);
	assert_string_equal(text, "0000001000.000,256,009\n");
	free(text);
	text = NULL;

	/* the next container starts its exits log from the history */
	cdir2 = strdup_printf("%s/apps/p.a-0000000042-bcdefghijklmn", root);
	app = json_loads("{\"name\":\"p.a#0000000042\",\"uniqueid\":\"bcdefghijklmn\",\"services\":["
			 "{\"name\":\"web\",\"command\":\"true\",\"restart\":{\"limit\":2,\"interval\":60}}]}",
			 0, NULL);
	assert_non_null(app);
	assert_int_equal(sproc_services_write(&ns, cdir2, app, &err), 0);
	p = strdup_printf("%s/data/services/web/data/exits/log", cdir2);
	assert_int_equal(read_file(p, &text, NULL), 0);
	assert_string_equal(text, "0000001000.000,256,009\n");
	free(text);
	text = NULL;
	free(p);

	/* an exit inside the container (its own log) counts too: 1000, 1005 and
	 * now 1010 are three exits within 60 s, limit 2 -> fatal */
	p = strdup_printf("%s/services/web/data/exits", data);
	assert_int_equal(mkdir_p(p, 0755), 0);
	put(p, "log", "0000001000.000,256,009\n0000001005.000,001,000\n");
	assert_int_equal(sproc_container_died(root, u, &e2, &svc), SPROC_DEATH_FATAL);
	assert_string_equal(svc, "web");
	free(p);
	p = strdup_printf("%s/exitinfo", data);
	assert_int_equal(read_file(p, &text, NULL), 0);
	assert_string_equal(text, "{\"return_code\":256,\"service\":\"web\",\"signal\":9,\"timestamp\":1010.0}");
	free(text);
	text = NULL;
	/* the cleanup then finishes the instance, as for a policy inside */
	expect_event(data, "finished", "256.9", "{\"return_code\":256,\"service\":\"web\",\"signal\":9,\"timestamp\":1010.0}");
	assert_int_equal(read_file(hist, &text, NULL), 0);
	assert_string_equal(text, "0000001005.000,001,000\n0000001010.000,256,009\n");
	free(text);
	text = NULL;
	/* decided: later tombstones of this container change nothing */
	free(svc);
	svc = NULL;
	assert_int_equal(sproc_container_died(root, u, &e2, &svc), SPROC_DEATH_IGNORED);
	rm_rf(root);
}

static void test_finish(void **state)
{
	_cleanup_free_ char *d = mktmp(), *old = getcwd(NULL, 0), *tomb = NULL, *ev = NULL;
	_cleanup_strv_free_ char **t = NULL, **e = NULL;
	struct sproc_finish_args a = { .limit = 2, .interval = 60, .id = "p.a-0000000001-abcdefghijklm,web",
				       .instance = "p.a#0000000001", .uniqueid = "abcdefghijklm", .service = "web",
				       .rc = 256, .sig = 9 };

	tomb = strdup_printf("%s/tomb", d);
	ev = strdup_printf("%s/ev", d);
	assert_int_equal(mkdir_p(tomb, 0755), 0);
	assert_int_equal(mkdir_p(ev, 0755), 0);
	a.tombstones = tomb;
	a.appevents = ev;
	assert_int_equal(chdir(d), 0);
	assert_int_equal(sproc_finish(&a), 0);
	assert_int_equal(sproc_finish(&a), 0);
	assert_int_equal(sproc_finish(&a), 125);
	assert_int_equal(chdir(old), 0);
	assert_int_equal(dir_list(tomb, 1, &t), 0);
	assert_int_equal(strv_length(t), 1);
	assert_true(startswith(t[0], "p.a-0000000001-abcdefghijklm,web,"));
	assert_true(endswith(t[0], ",256,009"));
	assert_int_equal(dir_list(ev, 1, &e), 0);
	assert_int_equal(strv_length(e), 3);
	assert_true(endswith(e[0], ",p.a#0000000001,service_exited,abcdefghijklm.web.256.9"));
	rm_rf(d);
}

/* A container stopped on purpose (services/.stopped, seen as ../.stopped from
 * the service dir): the first exit is final whatever the restart policy. */
static void test_finish_stopped(void **state)
{
	_cleanup_free_ char *d = mktmp(), *old = getcwd(NULL, 0), *tomb = NULL, *svc = NULL, *flag = NULL;
	_cleanup_strv_free_ char **t = NULL;
	struct sproc_finish_args a = { .limit = 5, .interval = 60, .id = "p.a-0000000001-abcdefghijklm,web",
				       .rc = 256, .sig = 15 };

	tomb = strdup_printf("%s/tomb", d);
	svc = strdup_printf("%s/services/web", d);
	flag = strdup_printf("%s/services/.stopped", d);
	assert_int_equal(mkdir_p(tomb, 0755), 0);
	assert_int_equal(mkdir_p(svc, 0755), 0);
	a.tombstones = tomb;
	assert_int_equal(chdir(svc), 0);
	assert_int_equal(sproc_finish(&a), 0); /* not stopped: restarted (limit 5) */
	assert_int_equal(touch(flag), 0);
	assert_int_equal(sproc_finish(&a), 125); /* stopped: final */
	assert_int_equal(chdir(old), 0);
	assert_int_equal(dir_list(tomb, 1, &t), 0);
	assert_int_equal(strv_length(t), 1);
	assert_true(endswith(t[0], ",256,015"));
	rm_rf(d);
}

static void test_archives_prune(void **state)
{
	_cleanup_free_ char *d = mktmp(), *a = NULL, *b = NULL, *big = NULL;
	struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };
	char buf[65536];
	struct stat st;

	memset(buf, 'x', sizeof(buf));
	a = strdup_printf("%s/archives/p.a-0000000001-aaaaaaaaaaaaa", d);
	b = strdup_printf("%s/archives/p.a-0000000002-bbbbbbbbbbbbb", d);
	assert_int_equal(mkdir_p(a, 0755), 0);
	assert_int_equal(mkdir_p(b, 0755), 0);
	big = strdup_printf("%s/big", a);
	assert_int_equal(write_file_atomic(big, buf, sizeof(buf), 0644), 0);
	free(big);
	big = strdup_printf("%s/big", b);
	assert_int_equal(write_file_atomic(big, buf, sizeof(buf), 0644), 0);
	assert_int_equal(utimensat(AT_FDCWD, a, old, 0), 0); /* a is the oldest */
	assert_int_equal(sproc_archives_prune(d, 1ULL << 30), 0);
	assert_int_equal(sproc_archives_prune(d, 100000), 1);
	assert_int_equal(stat(a, &st), -1);
	assert_int_equal(stat(b, &st), 0);
	assert_int_equal(sproc_archives_prune(d, 0), 1);
	assert_int_equal(stat(b, &st), -1);
	rm_rf(d);
}

/* A container may only post its own events and tombstones. */
static void test_ctl_drain(void **state)
{
	_cleanup_free_ char *d = mktmp(), *c = NULL, *ev = NULL, *ts = NULL, *nev = NULL, *nts = NULL;
	_cleanup_strv_free_ char **l1 = NULL, **l2 = NULL, **l3 = NULL;
	const char *u = "p.a-0000000042-abcdefghijklm";

	c = strdup_printf("%s/apps/%s", d, u);
	assert_int_equal(sproc_ctl_create(c), 0);
	ev = strdup_printf("%s/" SPROC_CTL_REL "/appevents", c);
	ts = strdup_printf("%s/" SPROC_CTL_REL "/tombstones", c);
	nev = strdup_printf("%s/appevents", d);
	nts = strdup_printf("%s/tombstones/services", d);
	assert_int_equal(mkdir_p(nev, 0755), 0);
	assert_int_equal(mkdir_p(nts, 0755), 0);
	put(ev, "1.000,p.a#0000000042,service_running,abcdefghijklm.web", "");
	put(ev, "1.001,p.a#0000000042,service_exited,abcdefghijklm.web.1.0", "");
	put(ev, "1.002,p.a#0000000043,service_exited,x.web.1.0", "");	/* another instance */
	put(ev, "1.003,p.a#0000000042,finished,0.0", "");		/* not for containers */
	put(ev, "garbage", "");
	put(ts, "p.a-0000000042-abcdefghijklm,web,0000000001.000,001,000", "");
	put(ts, "p.a-0000000099-zzzzzzzzzzzzz,web,0000000001.000,001,000", "");	/* another container */
	put(ts, "p.a-0000000042-abcdefghijklm,web,x,0000000001.000,001,000", "");	/* bad id */
	assert_int_equal(sproc_ctl_drain(d, u), 3);
	assert_int_equal(dir_list(nev, 1, &l1), 0);
	assert_int_equal(strv_length(l1), 2);
	assert_int_equal(dir_list(nts, 1, &l2), 0);
	assert_int_equal(strv_length(l2), 1);
	assert_string_equal(l2[0], "p.a-0000000042-abcdefghijklm,web,0000000001.000,001,000");
	assert_int_equal(dir_list(ev, 1, &l3), 0);
	assert_int_equal(strv_length(l3), 0); /* the rest was dropped */
	rm_rf(d);
}

/* N/node.json: what the agent writes is what sproc reads; bad fields are refused */
static void test_settings(void **state)
{
	_cleanup_free_ char *root = mktmp(), *p = NULL;
	struct node_settings ns = { .root = root, .treadle_bin = "/usr/bin/treadle", .cgroup_root = "tcg",
				    .hostname = "h1", .cell = "c1", .store_url = "file:///s", .setup_timeout_s = 60,
				    .pids_max = 4096, .disk_read_bps = 1000, .disk_write_bps = 2000 };
	struct node_settings got;
	struct error err = ERROR_INIT;

	(void)state;
	assert_int_equal(sproc_settings_write(&ns), 0);
	{
		_cleanup_json_ json_t *owner = NULL;

		assert_int_equal(sproc_settings_read(root, &got, &owner, &err), 0);
		assert_string_equal(got.root, root);
		assert_string_equal(got.treadle_bin, "/usr/bin/treadle");
		assert_string_equal(got.cgroup_root, "tcg");
		assert_string_equal(got.cell, "c1");
		assert_int_equal(got.setup_timeout_s, 60);
		assert_int_equal(got.pids_max, 4096);
		assert_int_equal(got.disk_read_bps, 1000);
		assert_int_equal(got.disk_write_bps, 2000);
		assert_null(got.net_bridge); /* no network: no "network" object */
	}
	/* the network, resolved by the agent, round trip; a field missing names itself */
	ns.net_bridge = "tl01234567";
	ns.net_table = "treadle_01234567";
	ns.net_range = "192.168.3.0/24";
	ns.net_gateway = "192.168.3.254";
	ns.net_external_ip = "10.1.2.3";
	ns.net_mtu = 1450;
	assert_int_equal(sproc_settings_write(&ns), 0);
	{
		_cleanup_json_ json_t *owner = NULL;

		assert_int_equal(sproc_settings_read(root, &got, &owner, &err), 0);
		assert_string_equal(got.net_bridge, "tl01234567");
		assert_string_equal(got.net_table, "treadle_01234567");
		assert_string_equal(got.net_range, "192.168.3.0/24");
		assert_string_equal(got.net_gateway, "192.168.3.254");
		assert_string_equal(got.net_external_ip, "10.1.2.3");
		assert_int_equal(got.net_mtu, 1450);
		assert_null(got.hooks); /* no hooks: no "hooks" nor "krb5" */
	}
	/* the hooks and the Kerberos hooks' settings (docs/HOOKS.md) */
	ns.hooks = "krb5keytab,tickets";
	ns.krb5_keytab = "/k/host.kt";
	ns.krb5_config = "/k/krb5.conf";
	ns.tickets_wait_s = 7;
	assert_int_equal(sproc_settings_write(&ns), 0);
	{
		_cleanup_json_ json_t *owner = NULL;

		assert_int_equal(sproc_settings_read(root, &got, &owner, &err), 0);
		assert_string_equal(got.hooks, "krb5keytab,tickets");
		assert_string_equal(got.krb5_keytab, "/k/host.kt");
		assert_string_equal(got.krb5_config, "/k/krb5.conf");
		assert_int_equal(got.tickets_wait_s, 7);
	}
	assert_true(sproc_hook_known("tickets") && sproc_hook_known("krb5keytab") && !sproc_hook_known("nosuch"));
	put(root, "node.json", "{\"treadle\":\"/t\",\"cgroup_root\":\"x\",\"hooks\":[\"tickets\"]}");
	{
		_cleanup_json_ json_t *owner = NULL;

		assert_true(sproc_settings_read(root, &got, &owner, &err) < 0);
		assert_int_equal(err.code, ERR_PERM);
		assert_non_null(strstr(err.msg, "hooks"));
		error_clear(&err);
	}
	put(root, "node.json", "{\"treadle\":\"/t\",\"cgroup_root\":\"x\",\"network\":{\"bridge\":\"tl0\"}}");
	{
		_cleanup_json_ json_t *owner = NULL;

		assert_true(sproc_settings_read(root, &got, &owner, &err) < 0);
		assert_int_equal(err.code, ERR_PERM);
		assert_non_null(strstr(err.msg, "network.table"));
		error_clear(&err);
	}
	p = strdup_printf("%s/node.json", root);
	put(root, "node.json", "{\"treadle\":\"/t\",\"cgroup_root\":\"x\",\"pids_max\":-1}");
	{
		_cleanup_json_ json_t *owner = NULL;

		assert_true(sproc_settings_read(root, &got, &owner, &err) < 0);
		assert_int_equal(err.code, ERR_PERM);
		assert_non_null(strstr(err.msg, "pids_max"));
		error_clear(&err);
	}
	assert_int_equal(unlink(p), 0);
	{
		_cleanup_json_ json_t *owner = NULL;

		assert_true(sproc_settings_read(root, &got, &owner, &err) < 0);
		assert_int_equal(err.code, ERR_TEMP);
		error_clear(&err);
	}
	rm_rf(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_terminal_precedence), cmocka_unit_test(test_shell_quote),
		cmocka_unit_test(test_event_post),	    cmocka_unit_test(test_services_write),
		cmocka_unit_test(test_finish),		    cmocka_unit_test(test_archives_prune),
		cmocka_unit_test(test_ctl_drain),	    cmocka_unit_test(test_finish_stopped),
		cmocka_unit_test(test_container_died),	    cmocka_unit_test(test_settings),
		cmocka_unit_test(test_checks_prepare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
