/* Unit tests of src/manifest/merge.c: `treadle run` flags over a manifest (Treadmill's cli/run.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/basic/util.h"
#include "../../src/manifest/manifest.h"
#include "../../src/manifest/merge.h"

static const char base[] = "memory: 100M\ncpu: 10%\ndisk: 100M\n"
			   "services:\n"
			   "- {name: S, command: sleep 1, restart: {limit: 1, interval: 60}, environ: [{name: A, value: b}]}\n"
			   "- {name: other, command: sleep 2, restart: {limit: 1, interval: 60}}\n"
			   "endpoints: [{name: http, port: 80, proto: tcp}]\n";

static json_t *parse(const char *text)
{
	struct error err = ERROR_INIT;
	json_t *m = NULL;

	assert_int_equal(manifest_parse(text, strlen(text), MANIFEST_YAML, "t.yml", &m, &err), 0);
	return m;
}

static const char *svc_str(json_t *m, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(m, "services"), i), key));
}

static json_int_t svc_restart(json_t *m, size_t i, const char *key)
{
	json_t *s = json_array_get(json_object_get(m, "services"), i);

	return json_integer_value(json_object_get(json_object_get(s, "restart"), key));
}

static void test_values_override(void **state)
{
	struct manifest_run_flags f = { .memory = "333M", .cpu = "50%", .restart_limit = -1, .restart_interval = -1 };
	struct error err = ERROR_INIT;
	json_t *m = parse(base);

	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	assert_string_equal(json_string_value(json_object_get(m, "memory")), "333M");
	assert_string_equal(json_string_value(json_object_get(m, "cpu")), "50%");
	assert_string_equal(json_string_value(json_object_get(m, "disk")), "100M"); /* kept */
	assert_int_equal(svc_restart(m, 0, "limit"), 1);			    /* untouched */
	assert_int_equal(manifest_validate(m, false, &err), 0);
	json_decref(m);
}

static void test_defaults_when_missing(void **state)
{
	struct manifest_run_flags f = { .restart_limit = -1, .restart_interval = -1 };
	struct error err = ERROR_INIT;
	json_t *m = parse("services: [{name: a, command: b, restart: {limit: 0}}]\n");

	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	assert_string_equal(json_string_value(json_object_get(m, "memory")), "100M");
	assert_string_equal(json_string_value(json_object_get(m, "cpu")), "10%");
	assert_string_equal(json_string_value(json_object_get(m, "disk")), "100M");
	json_decref(m);
}

static void test_restart_service_or_all(void **state)
{
	struct manifest_run_flags f = { .service = "other", .restart_limit = 4, .restart_interval = 30 };
	struct error err = ERROR_INIT;
	json_t *m = parse(base);

	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	assert_int_equal(svc_restart(m, 0, "limit"), 1);
	assert_int_equal(svc_restart(m, 1, "limit"), 4);
	assert_int_equal(svc_restart(m, 1, "interval"), 30);
	json_decref(m);

	f.service = NULL;
	f.restart_interval = -1;
	m = parse(base);
	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	assert_int_equal(svc_restart(m, 0, "limit"), 4);
	assert_int_equal(svc_restart(m, 1, "limit"), 4);
	assert_int_equal(svc_restart(m, 0, "interval"), 60);
	json_decref(m);
}

static void test_unknown_service(void **state)
{
	struct manifest_run_flags f = { .service = "nope", .restart_limit = 2, .restart_interval = -1 };
	struct error err = ERROR_INIT;
	json_t *m = parse(base);

	assert_true(manifest_merge_run(m, &f, &err) < 0);
	assert_int_equal(err.code, ERR_PERM);
	assert_non_null(strstr(err.msg, "--service nope"));
	error_clear(&err);
	json_decref(m);
}

static void test_command(void **state)
{
	char *cmd[] = { "/bin/echo", "a b", NULL };
	struct manifest_run_flags f = { .restart_limit = 3, .restart_interval = -1, .command = cmd };
	struct error err = ERROR_INIT;
	json_t *m = parse(base);

	/* a new service named after the command, restart from the flags */
	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	assert_int_equal(json_array_size(json_object_get(m, "services")), 3);
	assert_string_equal(svc_str(m, 2, "name"), "echo");
	assert_string_equal(svc_str(m, 2, "command"), "/bin/echo 'a b'");
	assert_int_equal(svc_restart(m, 2, "limit"), 3);
	assert_int_equal(svc_restart(m, 2, "interval"), 60);
	assert_int_equal(svc_restart(m, 0, "limit"), 1); /* only the command's service */
	json_decref(m);

	/* --service S: S keeps its other fields, gets the command */
	f.service = "S";
	f.restart_limit = -1;
	m = parse(base);
	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	assert_int_equal(json_array_size(json_object_get(m, "services")), 2);
	assert_string_equal(svc_str(m, 0, "command"), "/bin/echo 'a b'");
	assert_non_null(json_object_get(json_array_get(json_object_get(m, "services"), 0), "environ"));
	assert_int_equal(svc_restart(m, 0, "limit"), 1);
	json_decref(m);

	/* no manifest: Treadmill's run defaults */
	f.service = NULL;
	m = json_object();
	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	assert_string_equal(svc_str(m, 0, "name"), "echo");
	assert_int_equal(svc_restart(m, 0, "limit"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "memory")), "100M");
	assert_int_equal(manifest_validate(m, false, &err), 0);
	json_decref(m);
}

static void test_endpoints(void **state)
{
	json_t *eps = json_pack("[{s:s, s:i}, {s:s, s:i}]", "name", "http", "port", 8080, "name", "ssh", "port", 22);
	struct manifest_run_flags f = { .restart_limit = -1, .restart_interval = -1, .endpoints = eps };
	struct error err = ERROR_INIT;
	json_t *m = parse(base), *e;

	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	e = json_object_get(m, "endpoints");
	assert_int_equal(json_array_size(e), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 0), "port")), 8080);
	assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "proto")), "tcp"); /* kept */
	assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "name")), "ssh");
	json_decref(m);
	json_decref(eps);
}

static void test_merged_is_validated(void **state)
{
	struct manifest_run_flags f = { .memory = "33Q", .restart_limit = 99, .restart_interval = -1 };
	struct error err = ERROR_INIT;
	json_t *m = parse(base);

	assert_int_equal(manifest_merge_run(m, &f, &err), 0);
	assert_true(manifest_validate(m, false, &err) < 0);
	assert_non_null(strstr(err.msg, "memory:"));
	assert_non_null(strstr(err.msg, "services[1].restart.limit"));
	error_clear(&err);
	json_decref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_override), cmocka_unit_test(test_defaults_when_missing),
		cmocka_unit_test(test_restart_service_or_all), cmocka_unit_test(test_unknown_service),
		cmocka_unit_test(test_command), cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_merged_is_validated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
