/* cmd-show.c: treadle show [running|pending|scheduled|finished|all] [--json]
 * (Treadmill's state API computed straight from the store), and
 * treadle show endpoints [PATTERN] [--json] (Treadmill's show endpoints). */
#include <fnmatch.h>
#include <getopt.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../basic/util.h"
#include "../sched/sched-loader.h"
#include "../store/store.h"
#include "cli.h"

enum show_what { SHOW_RUNNING, SHOW_PENDING, SHOW_SCHEDULED, SHOW_FINISHED, SHOW_ALL };

/* Instance -> server map from /placement/<server>/<instance>. */
static int load_placements(struct store *s, json_t *map)
{
	_cleanup_strv_free_ char **servers = NULL;
	int r;

	r = store_children(s, "/placement", &servers, NULL, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (char **srv = servers; *srv; srv++) {
		_cleanup_strv_free_ char **insts = NULL;
		_cleanup_free_ char *path = strdup_printf("/placement/%s", *srv);

		if (!path)
			return -ENOMEM;
		r = store_children(s, path, &insts, NULL, NULL);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		for (char **k = insts; *k; k++)
			json_object_set_new(map, *k, json_string(*srv));
	}
	return 0;
}

static json_t *finished_entry(struct store *s, const char *name)
{
	_cleanup_free_ char *path = strdup_printf("/finished/%s", name), *data = NULL;
	json_t *j, *e;
	const char *state, *d;

	if (!path || store_get(s, path, &data, NULL, NULL, NULL, NULL) < 0)
		return NULL;
	j = json_loads(data, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	state = json_string_value(json_object_get(j, "state"));
	e = json_pack("{s:s, s:s, s:O}", "name", name, "state", state ? state : "finished", "host",
		      json_object_get(j, "host") ? json_object_get(j, "host") : json_null());
	if (e) {
		json_t *w = json_object_get(j, "when");
		double when = json_is_number(w) ? json_number_value(w) : 0;

		if (json_is_string(w))
			safe_atod(json_string_value(w), &when);
		json_object_set_new(e, "when", json_real(when));
		d = json_string_value(json_object_get(j, "data"));
		if (d && state && strcmp(state, "finished") == 0) {
			int64_t rc = -1, sig = -1;
			_cleanup_free_ char *t = strdup(d);
			char *dot = t ? strchr(t, '.') : NULL;

			if (dot) {
				*dot = 0;
				safe_atoi64(t, &rc);
				safe_atoi64(dot + 1, &sig);
			}
			json_object_set_new(e, "exitcode", json_integer(rc));
			json_object_set_new(e, "signal", json_integer(sig));
		} else if (d) {
			json_object_set_new(e, "data", json_string(d));
		}
	}
	json_decref(j);
	return e;
}

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
	_cleanup_strv_free_ char **proids = NULL;
	_cleanup_free_ char *pat = NULL;
	json_t *list = json_array();
	int r, rc = EXIT_OK;

	if (!list)
		return EXIT_TEMP;
	pat = !pattern ? strdup("*") : strchr(pattern, '#') ? strdup(pattern) : strdup_printf("%s#*", pattern);
	r = store_children(s, "/endpoints", &proids, NULL, NULL);
	if (!pat || (r < 0 && r != -ENOENT)) {
		fprintf(stderr, "treadle: show endpoints: reading /endpoints: %s\n", store_strerror(pat ? r : -ENOMEM));
		json_decref(list);
		return EXIT_TEMP;
	}
	for (char **p = proids; p && *p; p++) {
		_cleanup_free_ char *dir = strdup_printf("/endpoints/%s", *p);
		_cleanup_strv_free_ char **names = NULL;
		_cleanup_free_ char **data = NULL;
		size_t n;

		if (!dir || store_children(s, dir, &names, NULL, NULL) < 0)
			continue;
		n = strv_length(names);
		data = calloc(n + 1, sizeof(char *));
		if (!data) {
			rc = EXIT_TEMP;
			break;
		}
		if (store_get_many_in(s, dir, names, n, data, NULL, NULL) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			/* <app>#<n>:<proto>:<endpoint> */
			char *ep = strrchr(names[i], ':'), *proto;
			_cleanup_free_ char *inst = NULL;

			if (ep && data[i]) {
				*ep++ = 0;
				proto = strrchr(names[i], ':');
				if (proto) {
					*proto++ = 0;
					inst = strdup_printf("%s.%s", *p, names[i]);
					if (inst && fnmatch(pat, inst, 0) == 0)
						json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "name", inst,
										      "proto", proto, "endpoint", ep,
										      "address", data[i]));
				}
			}
			free(data[i]);
		}
	}
	if (json) {
		char *t = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (t)
			printf("%s\n", t);
		free(t);
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
	json_decref(list);
	return rc;
}

const struct cli_option show_options[] = {
	{ "json", 'j', NULL, "print JSON" },
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTIONS_END,
};

int cmd_show(int argc, char **argv)
{
	static const char *const names[] = { "running", "pending", "scheduled", "finished", "all" };
	const char *root = NULL, *store_url = NULL;
	_cleanup_store_ struct store *s = NULL;
	_cleanup_strv_free_ char **sched = NULL, **running = NULL, **finished = NULL;
	struct error err = ERROR_INIT;
	enum show_what what = SHOW_ALL;
	json_t *placed = NULL, *list = NULL;
	bool json = false;
	int c, r, rc = EXIT_OK;

	optind = 0;
	while ((c = cli_getopt(argc, argv, show_options, false)) >= 0) {
		switch (c) {
		case 'j': json = true; break;
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		default: return cli_usage_error("show", "bad option");
		}
	}
	if (optind < argc && strcmp(argv[optind], "endpoints") == 0) {
		const char *pattern = optind + 1 < argc ? argv[optind + 1] : NULL;

		if (optind + 2 < argc)
			return cli_usage_error("show", "unexpected argument '%s'", argv[optind + 2]);
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
	if (cli_store_open_ro(root, store_url, &s, &err) < 0)
		return error_report(&err);

	placed = json_object();
	list = json_array();
	if (!placed || !list) {
		rc = EXIT_TEMP;
		goto out;
	}
	r = store_children(s, "/scheduled", &sched, NULL, NULL);
	if (r >= 0 || r == -ENOENT)
		r = store_children(s, "/running", &running, NULL, NULL);
	if (r >= 0 || r == -ENOENT)
		r = load_placements(s, placed);
	if ((r >= 0 || r == -ENOENT) && (what == SHOW_FINISHED || what == SHOW_ALL))
		r = store_children(s, "/finished", &finished, NULL, NULL);
	if (r < 0 && r != -ENOENT) {
		fprintf(stderr, "treadle: show: reading the store: %s\n", store_strerror(r));
		rc = EXIT_TEMP;
		goto out;
	}
	if (what != SHOW_FINISHED)
		for (char **k = sched; k && *k; k++) {
			const char *host = json_string_value(json_object_get(placed, *k));
			bool run = strv_contains(running, *k);
			const char *state = run ? "running" : host ? "scheduled" : "pending";

			if ((what == SHOW_RUNNING && !run) || (what == SHOW_PENDING && host))
				continue;
			json_array_append_new(list, json_pack("{s:s, s:s, s:s?}", "name", *k, "state", state, "host",
							      host));
		}
	if (what == SHOW_FINISHED || what == SHOW_ALL)
		for (char **k = finished; k && *k; k++) {
			json_t *e;

			if (strv_contains(sched, *k))
				continue;
			e = finished_entry(s, *k);
			if (e)
				json_array_append_new(list, e);
		}
	if (what != SHOW_FINISHED)
		add_pending_reasons(s, list);
	if (what != SHOW_FINISHED)
		add_pending_reasons(s, list);
	if (json) {
		char *t = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (t)
			printf("%s\n", t);
		free(t);
	} else
		print_table(list);
out:
	json_decref(placed);
	json_decref(list);
	return rc;
}
