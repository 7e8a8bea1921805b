/* cmd-show.c: treadle show [running|pending|scheduled|finished|all] [--json]
 * (Treadmill's state API computed straight from the store), and
 * treadle show endpoints [PATTERN] [--json] (Treadmill's show endpoints). */
#include <fnmatch.h>
#include <getopt.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../sched/sched-loader.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "cli.h"

enum show_what { SHOW_RUNNING, SHOW_PENDING, SHOW_SCHEDULED, SHOW_FINISHED, SHOW_ALL };

/* Why each pending instance of list waits: the scheduler's explanation (scheduler explain), from the
 * same model of the cell, loaded once and only when something is pending. */
static void add_pending_reasons(struct store *s, json_t *list)
{
	_cleanup_sched_cell_ struct sched_cell *c = NULL;
	struct error err = ERROR_INIT;
	double now = now_realtime();
	size_t i, pending = 0;
	json_t *e;

	json_array_foreach(list, i, e)
		pending += strcmp(json_string_value(json_object_get(e, "state")), "pending") == 0;
	if (!pending)
		return;
	if (sched_load_store(s, now, &c, NULL, &err) < 0) {
		error_clear(&err); /* the list stands without its reasons */
		return;
	}
	json_array_foreach(list, i, e) {
		_cleanup_free_ char *why = NULL;
		const char *name = json_string_value(json_object_get(e, "name")), *p;
		int app;

		if (strcmp(json_string_value(json_object_get(e, "state")), "pending") != 0)
			continue;
		app = sched_app_find(c, name);
		if (app < 0 || sched_explain(c, app, now, &why) < 0)
			continue;
		p = strstr(why, ": pending: ");
		json_object_set_new(e, "why", json_string(p ? p + strlen(": pending: ") : why));
	}
}

static void print_table(json_t *list)
{
	size_t i, w = strlen("INSTANCE");
	json_t *e;

	json_array_foreach(list, i, e)
		w = MAX(w, strlen(json_string_value(json_object_get(e, "name"))));
	printf("%-*s  %-10s  %-20s  %s\n", (int)w, "INSTANCE", "STATE", "HOST", "INFO");
	json_array_foreach(list, i, e) {
		const char *host = json_string_value(json_object_get(e, "host"));
		json_t *when = json_object_get(e, "when");
		char info[128] = "";

		if (when) {
			time_t t = (time_t)json_number_value(when);
			struct tm tm;
			char ts[32];
			json_t *rc = json_object_get(e, "exitcode"), *d = json_object_get(e, "data");

			gmtime_r(&t, &tm);
			strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
			if (rc)
				snprintf(info, sizeof(info), "%s rc=%" JSON_INTEGER_FORMAT " signal=%" JSON_INTEGER_FORMAT,
					 ts, json_integer_value(rc), json_integer_value(json_object_get(e, "signal")));
			else if (d && *json_string_value(d))
				snprintf(info, sizeof(info), "%s %s", ts, json_string_value(d));
			else
				snprintf(info, sizeof(info), "%s", ts);
		}
		printf("%-*s  %-10s  %-20s  %s\n", (int)w, json_string_value(json_object_get(e, "name")),
		       json_string_value(json_object_get(e, "state")), host ? host : "-",
		       json_object_get(e, "why") ? json_string_value(json_object_get(e, "why")) : info);
	}
}

/* /endpoints/<proid>/<app>#<n>:<proto>:<endpoint> = "<host>:<port>", the
 * instances matching PATTERN (Treadmill's: "<proid>.<glob>", "#*" added when
 * it names no instance; default every instance). */
static int show_endpoints(struct store *s, const char *pattern, bool json)
{
	_cleanup_free_ char *pat = NULL;
	_cleanup_json_ json_t *list = json_array();
	struct cellns_endpoint *eps = NULL;
	size_t n = 0;
	int r;

	pat = !pattern ? strdup("*") : strchr(pattern, '#') ? strdup(pattern) : strdup_printf("%s#*", pattern);
	if (!list || !pat)
		return EXIT_TEMP;
	r = cellns_endpoints_list(s, pat, &eps, &n);
	if (r < 0) {
		fprintf(stderr, "treadle: show endpoints: reading %s: %s\n", cellns_dir(CELLNS_ENDPOINTS), store_strerror(r));
		return EXIT_TEMP;
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "name", eps[i].instance, "proto",
						      eps[i].proto, "endpoint", eps[i].name, "address", eps[i].address));
	cellns_endpoints_free(eps, n);
	if (json) {
		_cleanup_free_ char *t = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (t)
			printf("%s\n", t);
	} else {
		size_t i;
		json_t *e;

		printf("%-30s  %-5s  %-12s  %s\n", "INSTANCE", "PROTO", "ENDPOINT", "ADDRESS");
		json_array_foreach(list, i, e)
			printf("%-30s  %-5s  %-12s  %s\n", json_string_value(json_object_get(e, "name")),
			       json_string_value(json_object_get(e, "proto")),
			       json_string_value(json_object_get(e, "endpoint")),
			       json_string_value(json_object_get(e, "address")));
	}
	return EXIT_OK;
}

/* The same through the API: GET /endpoint/<pattern>, printed as above. */
static int show_endpoints_api(const char *api, const char *pattern, bool json)
{
	_cleanup_free_ char *path = cli_api_path("endpoint", pattern ? pattern : "*");
	_cleanup_json_ json_t *ans = NULL;
	size_t i;
	json_t *v;
	int r;

	if (!path)
		return EXIT_TEMP;
	r = cli_api_get(api, path, &ans);
	if (r < 0)
		return -r;
	json_array_foreach(ans, i, v) {
		_cleanup_free_ char *a = strdup_printf("%s:%" JSON_INTEGER_FORMAT, json_string_value(json_object_get(v, "host")),
						       json_integer_value(json_object_get(v, "port")));
		json_object_set_new(v, "address", json_string(a ? a : ""));
		json_object_del(v, "host");
		json_object_del(v, "port");
	}
	if (json) {
		_cleanup_free_ char *t = json_dumps(ans, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (t)
			printf("%s\n", t);
		return EXIT_OK;
	}
	printf("%-30s  %-5s  %-12s  %s\n", "INSTANCE", "PROTO", "ENDPOINT", "ADDRESS");
	json_array_foreach(ans, i, v)
		printf("%-30s  %-5s  %-12s  %s\n", json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "proto")), json_string_value(json_object_get(v, "endpoint")),
		       json_string_value(json_object_get(v, "address")));
	return EXIT_OK;
}

/* The state list through the API (GET /state/), filtered as the store's; NULL with *ret_rc on failure. */
/* The same reasons over the API: GET /scheduler/explain/<instance> for each pending instance. */
static void add_pending_reasons_api(const char *api, json_t *list)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		_cleanup_json_ json_t *ans = NULL;
		_cleanup_free_ char *path = NULL;
		struct error err = ERROR_INIT;
		const char *name = json_string_value(json_object_get(e, "name")), *why, *p;

		if (!name || strcmp(json_string_value(json_object_get(e, "state")) ?: "", "pending") != 0)
			continue;
		path = cli_api_path("scheduler/explain", name);
		if (!path || cli_api_call(api, "GET", path, NULL, &ans, &err) < 0) {
			error_clear(&err); /* the instance went meanwhile: no reason shown */
			continue;
		}
		why = json_string_value(json_object_get(ans, "explain"));
		if (!why)
			continue;
		p = strstr(why, ": pending: ");
		json_object_set_new(e, "why", json_string(p ? p + strlen(": pending: ") : why));
	}
}

static json_t *show_state_api(const char *api, enum show_what what, int *ret_rc)
{
	json_t *ans = NULL, *list = json_array(), *v;
	size_t i;
	int r;

	r = cli_api_get(api, what == SHOW_FINISHED || what == SHOW_ALL ? "/state/?finished=1" : "/state/", &ans);
	if (r < 0 || !list) {
		json_decref(list);
		*ret_rc = r < 0 ? -r : EXIT_TEMP;
		return NULL;
	}
	json_array_foreach(ans, i, v) {
		const char *st = json_string_value(json_object_get(v, "state"));
		bool live = st && (strcmp(st, "pending") == 0 || strcmp(st, "scheduled") == 0 || strcmp(st, "running") == 0);

		if ((what == SHOW_RUNNING && strcmp(st, "running") != 0) ||
		    (what == SHOW_PENDING && json_object_get(v, "host") && !json_is_null(json_object_get(v, "host"))) ||
		    (what == SHOW_FINISHED && live))
			continue;
		json_array_append(list, v);
	}
	json_decref(ans);
	return list;
}

const struct cli_option show_options[] = {
	{ "json", 'j', NULL, "print JSON" },
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTION_API,
	CLI_OPTIONS_END,
};

int cmd_show(int argc, char **argv)
{
	static const char *const names[] = { "running", "pending", "scheduled", "finished", "all" };
	const char *root = NULL, *store_url = NULL, *api = NULL;
	_cleanup_store_ struct store *s = NULL;
	_cleanup_json_ json_t *list = json_array();
	struct cellns_instance *insts = NULL;
	struct error err = ERROR_INIT;
	enum show_what what = SHOW_ALL;
	bool json = false;
	size_t n = 0;
	int c, r;

	optind = 0;
	while ((c = cli_getopt(argc, argv, show_options, false)) >= 0) {
		switch (c) {
		case 'j': json = true; break;
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		case CLI_OPT_API: api = optarg; break;
		default: return cli_usage_error("show", "bad option");
		}
	}
	if (optind < argc && strcmp(argv[optind], "endpoints") == 0) {
		const char *pattern = optind + 1 < argc ? argv[optind + 1] : NULL;

		if (optind + 2 < argc)
			return cli_usage_error("show", "unexpected argument '%s'", argv[optind + 2]);
		if (cli_api_url(api))
			return show_endpoints_api(cli_api_url(api), pattern, json);
		if (cli_store_open_ro(root, store_url, &s, &err) < 0)
			return error_report(&err);
		return show_endpoints(s, pattern, json);
	}
	if (optind < argc) {
		size_t i;

		for (i = 0; i < ELEMENTSOF(names); i++)
			if (strcmp(argv[optind], names[i]) == 0)
				break;
		if (i == ELEMENTSOF(names))
			return cli_usage_error("show", "unknown state '%s'", argv[optind]);
		what = (enum show_what)i;
		if (++optind < argc)
			return cli_usage_error("show", "unexpected argument '%s'", argv[optind]);
	}
	if (cli_api_url(api)) {
		json_decref(list);
		list = show_state_api(cli_api_url(api), what, &r);
		if (!list)
			return r;
		if (what != SHOW_FINISHED)
			add_pending_reasons_api(cli_api_url(api), list);
		goto print;
	}
	if (cli_store_open_ro(root, store_url, &s, &err) < 0)
		return error_report(&err);
	if (!list)
		return EXIT_TEMP;
	r = cellns_instances(s, what != SHOW_FINISHED, what == SHOW_FINISHED || what == SHOW_ALL, &insts, &n);
	if (r < 0) {
		fprintf(stderr, "treadle: show: reading the store: %s\n", store_strerror(r));
		return EXIT_TEMP;
	}
	for (size_t i = 0; i < n; i++) {
		enum cellns_instance_state st = insts[i].state;

		if ((what == SHOW_RUNNING && st != CELLNS_INSTANCE_RUNNING) || (what == SHOW_PENDING && insts[i].host))
			continue;
		json_array_append_new(list, trace_instance_json(&insts[i]));
	}
	cellns_instances_free(insts, n);
	if (what != SHOW_FINISHED)
		add_pending_reasons(s, list);
print:
	if (json) {
		_cleanup_free_ char *t = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (t)
			printf("%s\n", t);
	} else
		print_table(list);
	return EXIT_OK;
}
