/* Unit tests of src/manifest: YAML typing, validation messages, scheduling,
 * app names, and the golden files under tests/manifest/ (valid inputs ->
 * expected runtime manifests, invalid inputs -> expected messages).
 * TREADLE_GOLDEN_UPDATE=1 rewrites the expected files instead of comparing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/manifest/manifest.h"
#include "../../src/manifest/manifest-internal.h"

static json_t *yaml(const char *text)
{
	struct error err = ERROR_INIT;
	json_t *m = NULL;
	char *all = strdup_printf("memory: 100M\ncpu: 10%%\ndisk: 100M\nservices: [{name: a, command: b, restart: {limit: 0}}]\n%s", text);

	assert_non_null(all);
	if (manifest_load(all, strlen(all), MANIFEST_YAML, "t.yml", &m, &err) < 0) {
		print_error("%s\n", err.msg);
		fail();
	}
	free(all);
	return m;
}

static char *load_err(const char *text, enum manifest_format fmt)
{
	struct error err = ERROR_INIT;
	json_t *m = NULL;
	int r = manifest_load(text, strlen(text), fmt, "t.yml", &m, &err);

	assert_true(r < 0);
	assert_null(m);
	assert_int_equal(err.code, ERR_PERM);
	return err.msg;
}

static json_t *raw(const char *text)
{
	struct error err = ERROR_INIT;
	json_t *v = NULL;

	if (manifest_yaml_to_json(text, strlen(text), "raw.yml", &v, &err) < 0) {
		print_error("%s\n", err.msg);
		fail();
	}
	return v;
}

static void test_yaml_scalar_types(void **state)
{
	json_t *v = raw("[1, '1', 0x1F, 010, 1_000, '1:30', 1:30, -5, +7, 1.5, '1.5', yes, 'yes', No, on, OFF, ~, null, "
			"'', \"x\", 1e5, 1.0e+2, .5, 2018-01-01, !!str 12, 0, 00, !!float 3, 0b101, 99999999999999999999, "
			"190:20:30.15, True, y, .inf]");
	_cleanup_free_ char *d = json_dumps(v, JSON_COMPACT);

	/* as PyYAML 5 SafeLoader (bignum -> float; .inf cannot be JSON -> text) */
	assert_string_equal(d, "[1,\"1\",31,8,1000,\"1:30\",90,-5,7,1.5,\"1.5\",true,\"yes\",false,true,false,null,null,"
			       "\"\",\"x\",\"1e5\",100.0,0.5,\"2018-01-01\",\"12\",0,0,3.0,5,1e20,"
			       "685230.15000000002,true,\"y\",\".inf\"]");
	json_decref(v);
}

static void test_yaml_anchor_merge(void **state)
{
	json_t *v = raw("base: &b {limit: 2, interval: 30}\nsvc:\n  <<: *b\n  limit: 5\nlist: [*b, *b]\n'<<': quoted\n");
	json_t *svc = json_object_get(v, "svc"), *l = json_object_get(v, "list");

	assert_int_equal(json_integer_value(json_object_get(svc, "limit")), 5);
	assert_int_equal(json_integer_value(json_object_get(svc, "interval")), 30);
	/* aliases are copies: changing one leaves the others */
	json_object_set_new(json_array_get(l, 0), "limit", json_integer(9));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 1), "limit")), 2);
	assert_string_equal(json_string_value(json_object_get(v, "<<")), "quoted");
	json_decref(v);

	/* billion laughs is refused, not expanded */
	struct error err = ERROR_INIT;
	const char *bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
			   "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
			   "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
	v = NULL;
	assert_true(manifest_yaml_to_json(bomb, strlen(bomb), "bomb.yml", &v, &err) < 0);
	assert_non_null(strstr(err.msg, "too large"));
	error_clear(&err);
}

/* The typing test loads through an unvalidated field: 'args' is a string list,
 * so use JSON-invalid error text to see each type by its message. */
static void test_yaml_types_via_errors(void **state)
{
	_cleanup_free_ char *msg = load_err("memory: 100M\ncpu: 10%\ndisk: 100M\nservices: [{name: a, command: b, "
					    "restart: {limit: 0}}]\nargs: [1, '1', yes, 'no', ~, '', 1.5, x]\n",
					    MANIFEST_YAML);
	assert_string_equal(msg, "args[0]: must be a string\n"
				 "args[2]: must be a string\n"
				 "args[4]: must be a string\n"
				 "args[6]: must be a string");
}

static void test_yaml_numbers(void **state)
{
	json_t *m = yaml("ephemeral_ports: {tcp: 0x10, udp: 010}\nservices: [{name: a, command: b, restart: {limit: "
			 "0b11, interval: 1:00}}]\npriority: 1_0\n");
	json_t *s0 = json_array_get(json_object_get(m, "services"), 0);

	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "ephemeral_ports"), "tcp")), 16);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "ephemeral_ports"), "udp")), 8);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(s0, "restart"), "limit")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(s0, "restart"), "interval")), 60);
	assert_int_equal(json_integer_value(json_object_get(m, "priority")), 10);
	json_decref(m);
}

static void test_yaml_bools_strings(void **state)
{
	json_t *m = yaml("shared_ip: yes\nshared_network: Off\nschedule_once: true\ncommand: '123'\n"
			 "args:\n- 'yes'\n- \"1.5\"\n- !!str 7\n- |\n  block\n");
	json_t *a = json_object_get(m, "args");

	assert_true(json_is_true(json_object_get(m, "shared_ip")));
	assert_true(json_is_false(json_object_get(m, "shared_network")));
	assert_true(json_is_true(json_object_get(m, "schedule_once")));
	assert_string_equal(json_string_value(json_object_get(m, "command")), "123");
	assert_string_equal(json_string_value(json_array_get(a, 0)), "yes");
	assert_string_equal(json_string_value(json_array_get(a, 1)), "1.5");
	assert_string_equal(json_string_value(json_array_get(a, 2)), "7");
	assert_string_equal(json_string_value(json_array_get(a, 3)), "block\n");
	json_decref(m);
}

static void test_yaml_syntax_error(void **state)
{
	_cleanup_free_ char *msg = load_err("memory: 100M\ncpu: [10%\n", MANIFEST_YAML);

	assert_true(startswith(msg, "t.yml:3:1: "));
	free(load_err("a: 1\n---\nb: 2\n", MANIFEST_YAML));
	free(load_err("- 1\n", MANIFEST_YAML));
	free(load_err("", MANIFEST_YAML));
	free(load_err("a: *nope\n", MANIFEST_YAML));
}

static void test_json_syntax_error(void **state)
{
	_cleanup_free_ char *msg = load_err("{\"memory\": \"100M\",\n \"cpu\" 1}", MANIFEST_JSON);

	assert_true(startswith(msg, "t.yml:2:"));
}

static void test_collects_all_problems(void **state)
{
	_cleanup_free_ char *msg = load_err("memory: 5M\ncpu: 10\nservices:\n- {name: a, command: b, restart: {limit: 0}}\n"
					    "- {name: 'b c', command: x, restart: {limit: 11}, extra: 1}\nbogus: 1\n",
					    MANIFEST_YAML);
	assert_string_equal(msg, "memory: must be at least 100M\n"
				 "cpu: must be a string\n"
				 "services[1].name: must match ^[\\w\\-\\.]+$\n"
				 "services[1].restart.limit: must be an integer 0..10\n"
				 "services[1].extra: unknown field\n"
				 "bogus: unknown field\n"
				 "disk: is required");
}

static void test_appname(void **state)
{
	struct error err = ERROR_INIT;

	assert_int_equal(manifest_check_appname("root.app", true, &err), 0);
	assert_int_equal(manifest_check_appname("root.app.x-y_z", true, &err), 0);
	assert_true(manifest_check_appname("root", false, &err) < 0);
	assert_int_equal(err.code, ERR_PERM);
	error_clear(&err);
	assert_true(manifest_check_appname("root.a#1", false, &err) < 0);
	error_clear(&err);
	assert_true(manifest_check_appname(".app", false, &err) < 0);
	error_clear(&err);
	assert_true(manifest_check_appname("no-such-user-xq.app", true, &err) < 0);
	assert_non_null(strstr(err.msg, "not a user"));
	error_clear(&err);
	assert_int_equal(manifest_check_appname("no-such-user-xq.app", false, &err), 0);
	{
		char longname[MANIFEST_APPNAME_MAX + 2];
		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = 0;
		longname[4] = '.';
		assert_true(manifest_check_appname(longname, false, &err) < 0);
		error_clear(&err);
		longname[sizeof(longname) - 2] = 0;
		assert_int_equal(manifest_check_appname(longname, false, &err), 0);
	}
}

static void test_schedule(void **state)
{
	struct error err = ERROR_INIT;
	json_t *m = yaml("");

	assert_int_equal(manifest_schedule(m, "root.web.x", NULL, &err), 0);
	assert_string_equal(json_string_value(json_object_get(m, "proid")), "root");
	assert_string_equal(json_string_value(json_object_get(m, "environment")), "dev");
	assert_string_equal(json_string_value(json_object_get(m, "affinity")), "root.web");
	assert_true(json_is_null(json_object_get(m, "identity_group")));
	assert_int_equal(manifest_validate(m, true, &err), 0);
	assert_true(manifest_schedule(m, "root.web", "staging", &err) < 0);
	assert_int_equal(err.code, ERR_PERM);
	error_clear(&err);
	assert_int_equal(manifest_schedule(m, "root.web", "prod", &err), 0);
	assert_string_equal(json_string_value(json_object_get(m, "environment")), "prod");
	/* a user manifest may not carry proid itself */
	assert_true(manifest_validate(m, false, &err) < 0);
	assert_non_null(strstr(err.msg, "proid: unknown field"));
	error_clear(&err);
	json_decref(m);
}

static void test_add_command(void **state)
{
	struct error err = ERROR_INIT;
	json_t *m = json_object();
	char *argv[] = { "/bin/sh", "-c", "sleep 1; echo 'hi'", NULL };
	json_t *s0;

	assert_int_equal(manifest_add_command(m, NULL, argv, &err), 0);
	assert_int_equal(manifest_validate(m, false, &err), 0);
	s0 = json_array_get(json_object_get(m, "services"), 0);
	assert_string_equal(json_string_value(json_object_get(s0, "name")), "sh");
	assert_string_equal(json_string_value(json_object_get(s0, "command")), "/bin/sh -c 'sleep 1; echo '\\''hi'\\'''");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(s0, "restart"), "limit")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(s0, "restart"), "interval")), 60);
	assert_string_equal(json_string_value(json_object_get(m, "memory")), "100M");
	assert_string_equal(json_string_value(json_object_get(m, "cpu")), "10%");
	json_decref(m);
}

/* the documented maximum (1 MiB as written, 1000 KiB as JSON) is a
 * permanent error naming the size, for text, aliases and files alike */
static void test_size_limits(void **state)
{
	const char *head = "memory: 100M\ncpu: 10%\ndisk: 100M\nservices: [{name: a, command: b, restart: {limit: 0}}]\n#";
	size_t n = MANIFEST_SIZE_MAX + 1;
	char *big = malloc(n + 1), *msg, *path;
	struct error err = ERROR_INIT;
	json_t *m = NULL;
	char *alias;
	size_t off;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', n);
	memcpy(big, head, strlen(head));
	big[n - 1] = '\n';
	big[n] = 0;
	msg = load_err(big, MANIFEST_YAML);
	assert_string_equal(msg, "t.yml: the manifest is 1048577 bytes, more than the maximum of 1048576 (1 MiB)");
	free(msg);
	/* one byte less is accepted */
	big[n - 2] = '\n';
	big[n - 1] = 0;
	assert_int_equal(manifest_load(big, n - 1, MANIFEST_YAML, "t.yml", &m, &err), 0);
	json_decref(m);
	m = NULL;
	/* a file: refused before it is read */
	path = strdup("/tmp/treadle-test-manifest.XXXXXX");
	assert_non_null(path);
	{
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		big[n - 1] = '\n';
		assert_int_equal(write(fd, big, n), (ssize_t)n);
		close(fd);
	}
	assert_true(manifest_check_file(path, false, NULL, NULL, false, &m, &err) < 0);
	assert_null(m);
	assert_int_equal(err.code, ERR_PERM);
	assert_non_null(strstr(err.msg, ": the manifest is 1048577 bytes, more than the maximum of 1048576 (1 MiB)"));
	error_clear(&err);
	unlink(path);
	free(path);
	free(big);
	/* small text, large JSON: 1100 aliases of a 1000-character string */
	alias = malloc(64 * 1024);
	assert_non_null(alias);
	off = (size_t)snprintf(alias, 64 * 1024, "memory: 100M\ncpu: 10%%\ndisk: 100M\nservices: [{name: a, command: b, restart: {limit: 0}}]\ntraits: [&x ");
	memset(alias + off, 'y', 1000);
	off += 1000;
	for (int i = 0; i < 1100; i++)
		off += (size_t)snprintf(alias + off, 64 * 1024 - off, ", *x");
	snprintf(alias + off, 64 * 1024 - off, "]\n");
	msg = load_err(alias, MANIFEST_YAML);
	assert_non_null(strstr(msg, "t.yml: the manifest is "));
	assert_non_null(strstr(msg, " bytes as JSON, more than the maximum of 1024000 (1000 KiB)"));
	free(msg);
	free(alias);
}

static void test_runtime_lenient(void **state)
{
	struct error err = ERROR_INIT;
	struct manifest_runtime_ctx ctx = { .instance = "root.x#0000000300", .uniqueid = "abc", .cell = "c",
					    .approot = "/r", .sshd = "" };
	json_t *rt = NULL;
	json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:{s:i}}], s:s}", "proid", "root",
			      "environment", "dev", "memory", "64M", "cpu", "5%", "disk", "10M", "services", "name",
			      "a", "command", "true", "restart", "limit", 2, "added_by_someone", "x");

	/* the node accepts what the API's floor would refuse and unknown keys */
	assert_int_equal(manifest_runtime(m, &ctx, &rt, &err), 0);
	assert_string_equal(json_string_value(json_object_get(rt, "task")), "0000000300");
	assert_string_equal(json_string_value(json_object_get(rt, "added_by_someone")), "x");
	assert_int_equal(json_array_size(json_object_get(rt, "endpoints")), 0);
	json_decref(rt);
	/* but not a broken one */
	json_object_del(m, "proid");
	json_object_set_new(m, "cpu", json_integer(5));
	assert_true(manifest_runtime(m, &ctx, &rt, &err) < 0);
	assert_string_equal(err.msg, "cpu: must be a string\nproid: is required");
	error_clear(&err);
	json_decref(m);
}

/* ------------------------------------------------------------- golden files */

static const char *src_dir(void)
{
	const char *s = getenv("TREADLE_SRC");
	return s && *s ? s : ".";
}

static bool updating(void)
{
	const char *u = getenv("TREADLE_GOLDEN_UPDATE");
	return u && *u == '1';
}

static char *stem(const char *name)
{
	const char *suffixes[] = { ".scheduled.json", ".scheduled.yml", ".yml", ".yaml", ".json" };

	for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
		if (endswith(name, suffixes[i]))
			return strndup(name, strlen(name) - strlen(suffixes[i]));
	return NULL;
}

static void golden_valid_one(const char *dir, const char *name)
{
	_cleanup_free_ char *st = stem(name), *path = strdup_printf("%s/%s", dir, name);
	_cleanup_free_ char *ctxp = strdup_printf("%s/%s.ctx.json", dir, st), *expp = strdup_printf("%s/%s.app.json", dir, st);
	_cleanup_free_ char *text = NULL, *ctxtext = NULL, *dump = NULL;
	struct error err = ERROR_INIT;
	json_t *m = NULL, *ctxj = NULL, *rt = NULL, *exp = NULL;
	const char *appname = "proid.myapp", *env = "dev";
	struct manifest_runtime_ctx ctx = {
		.instance = "proid.myapp#0000000042",
		.uniqueid = "0f7rp3bsjtzxx",
		.cell = "mycell",
		.store_url = "zookeeper://treadmld@zk1.example.com:2181,zk2.example.com:2181/treadmill/mycell",
		.approot = "/var/tmp/treadmill",
		.container_dir = "apps/proid.myapp-0000000042-0f7rp3bsjtzxx",
		.treadle_bin = "/opt/treadle/bin/treadle",
		.sshd = "/usr/sbin/sshd",
	};
	size_t len;

	assert_non_null(st);
	assert_int_equal(read_file(path, &text, &len), 0);
	if (read_file(ctxp, &ctxtext, NULL) == 0) {
		ctxj = json_loads(ctxtext, 0, NULL);
		assert_non_null(ctxj);
		if (json_object_get(ctxj, "appname"))
			appname = json_string_value(json_object_get(ctxj, "appname"));
		if (json_object_get(ctxj, "environment"))
			env = json_string_value(json_object_get(ctxj, "environment"));
		if (json_object_get(ctxj, "instance")) {
			ctx.instance = json_string_value(json_object_get(ctxj, "instance"));
			ctx.container_dir = NULL; /* derived: <approot>/apps/<app>-<seq>-<uniqueid> */
		}
		if (json_object_get(ctxj, "sshd"))
			ctx.sshd = json_string_value(json_object_get(ctxj, "sshd"));
	}
	if (endswith(name, ".scheduled.json") || endswith(name, ".scheduled.yml")) {
		if (endswith(name, ".json"))
			m = json_loads(text, 0, NULL);
		else
			assert_int_equal(manifest_yaml_to_json(text, len, name, &m, &err), 0);
		assert_non_null(m);
		if (manifest_validate(m, true, &err) < 0) {
			print_error("%s: %s\n", name, err.msg);
			fail();
		}
	} else {
		if (manifest_load(text, len, MANIFEST_AUTO, name, &m, &err) < 0 ||
		    manifest_schedule(m, appname, env, &err) < 0) {
			print_error("%s: %s\n", name, err.msg);
			fail();
		}
	}
	/* eventmgr: task + placement data */
	if (json_object_get(ctxj, "placement"))
		assert_int_equal(json_object_update(m, json_object_get(ctxj, "placement")), 0);
	else
		assert_int_equal(json_object_update_new(m, json_pack("{s:s, s:n, s:n, s:f}", "task", strchr(ctx.instance, '#') + 1,
								     "identity", "identity_count", "expires",
								     1546300800.0)),
				 0);
	if (manifest_runtime(m, &ctx, &rt, &err) < 0) {
		print_error("%s: runtime: %s\n", name, err.msg);
		fail();
	}
	dump = manifest_dumps(rt);
	assert_non_null(dump);
	if (updating()) {
		_cleanup_free_ char *pretty = json_dumps(rt, JSON_SORT_KEYS | JSON_INDENT(1));
		_cleanup_free_ char *withnl = strdup_printf("%s\n", pretty);
		assert_int_equal(write_file_atomic(expp, withnl, strlen(withnl), 0644), 0);
	} else {
		json_error_t je;
		exp = json_load_file(expp, 0, &je);
		if (!exp) {
			print_error("%s: %s\n", expp, je.text);
			fail();
		}
		if (!json_equal(exp, rt)) {
			_cleanup_free_ char *e = manifest_dumps(exp);
			print_error("%s: runtime manifest differs\n got: %s\nwant: %s\n", name, dump, e);
			fail();
		}
	}
	/* the serialised form is what the node stores; it must read back equal */
	{
		json_t *back = json_loads(dump, 0, NULL);
		assert_true(json_equal(back, rt));
		json_decref(back);
	}
	json_decref(exp);
	json_decref(rt);
	json_decref(m);
	json_decref(ctxj);
}

static void golden_invalid_one(const char *dir, const char *name)
{
	_cleanup_free_ char *st = stem(name), *path = strdup_printf("%s/%s", dir, name);
	_cleanup_free_ char *errp = strdup_printf("%s/%s.err", dir, st ? st : "");
	_cleanup_free_ char *text = NULL, *want = NULL;
	struct error err = ERROR_INIT;
	json_t *m = NULL;
	size_t len;

	assert_non_null(st);
	assert_int_equal(read_file(path, &text, &len), 0);
	if (manifest_load(text, len, MANIFEST_AUTO, name, &m, &err) == 0) {
		print_error("%s: accepted\n", name);
		fail();
	}
	assert_null(m);
	assert_int_equal(err.code, ERR_PERM);
	if (updating()) {
		_cleanup_free_ char *withnl = strdup_printf("%s\n", err.msg);
		assert_int_equal(write_file_atomic(errp, withnl, strlen(withnl), 0644), 0);
	} else {
		assert_int_equal(read_file(errp, &want, &len), 0);
		while (len > 0 && want[len - 1] == '\n')
			want[--len] = 0;
		if (strcmp(want, err.msg) != 0) {
			print_error("%s:\n got: %s\nwant: %s\n", name, err.msg, want);
			fail();
		}
	}
	error_clear(&err);
}

/* one() on each file of tests/manifest/<sub> but those ending in a skip[]
 * suffix; the number of files tested. */
static int golden_each(const char *sub, void (*one)(const char *dir, const char *name), const char *const *skip)
{
	_cleanup_free_ char *dir = strdup_printf("%s/tests/manifest/%s", src_dir(), sub);
	_cleanup_strv_free_ char **files = NULL;
	int n = 0;

	assert_int_equal(dir_list(dir, 1, &files), 0);
	for (char **f = files; *f; f++) {
		bool skipped = false;

		for (const char *const *x = skip; *x; x++)
			skipped = skipped || endswith(*f, *x);
		if (!skipped) {
			one(dir, *f);
			n++;
		}
	}
	return n;
}

static void test_golden_valid(void **state)
{
	static const char *const skip[] = { ".app.json", ".ctx.json", NULL };

	assert_true(golden_each("valid", golden_valid_one, skip) >= 5);
}

static void test_golden_invalid(void **state)
{
	static const char *const skip[] = { ".err", NULL };

	assert_true(golden_each("invalid", golden_invalid_one, skip) >= 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_scalar_types),
		cmocka_unit_test(test_yaml_types_via_errors),
		cmocka_unit_test(test_yaml_numbers),
		cmocka_unit_test(test_yaml_bools_strings),
		cmocka_unit_test(test_yaml_anchor_merge),
		cmocka_unit_test(test_yaml_syntax_error),
		cmocka_unit_test(test_json_syntax_error),
		cmocka_unit_test(test_collects_all_problems),
		cmocka_unit_test(test_appname),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_add_command),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_runtime_lenient),
		cmocka_unit_test(test_golden_valid),
		cmocka_unit_test(test_golden_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
