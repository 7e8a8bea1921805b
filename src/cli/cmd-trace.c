/* cmd-trace.c: treadle trace INSTANCE [--follow]
 *
 * Prints each event as "<UTC time>  <host>  <type>  <details>".  Exit codes
 * as Treadmill's `treadmill trace`: the service rc when the instance finished
 * (128+signal when killed by a signal), 101 aborted, 102 killed, 103 no trace
 * at all, 100 otherwise (not finished yet).  --json: one JSON object per line
 * {"timestamp","instance","source","type","data","payload"}. */
#include <getopt.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "cli.h"

#define RC_ABORTED 101
#define RC_KILLED 102
#define RC_NO_TRACE 103
#define RC_OTHER 100
#define FOLLOW_GRACE_MS 3000 /* after deletion, wait this long for the terminal event */

static void print_event_json(const struct trace_event *ev)
{
	_cleanup_json_ json_t *j =
		json_pack("{s:f, s:s, s:s, s:s, s:s, s:s?}", "timestamp", ev->timestamp, "instance", ev->instanceid,
			  "source", ev->source ? ev->source : "", "type", trace_type_name(ev->type), "data",
			  ev->data ? ev->data : "", "payload", ev->payload);
	_cleanup_free_ char *t = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	if (t)
		printf("%s\n", t);
	fflush(stdout);
}

static void print_event(const struct trace_event *ev)
{
	time_t t = (time_t)ev->timestamp;
	int ms = (int)((ev->timestamp - (double)t) * 1000);
	const char *d = ev->data ? ev->data : "";
	struct tm tm;
	char ts[32];
	_cleanup_free_ char *uniq = NULL, *svc = NULL, *details = NULL;
	int64_t rc, sig;

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	switch (ev->type) {
	case TRACE_PENDING:
		details = *d ? strdup_printf("pending (%s)", d) : strdup("pending");
		break;
	case TRACE_PENDING_DELETE:
		details = strdup_printf("delete requested (%s)", d);
		break;
	case TRACE_SCHEDULED: {
		const char *colon = strchr(d, ':');
		_cleanup_free_ char *where = colon ? strndup(d, (size_t)(colon - d)) : strdup(d);
		const char *why = colon ? colon + 1 : "";

		details = *why ? strdup_printf("scheduled on %s (%s)", where, why) : strdup_printf("scheduled on %s", where);
		break;
	}
	case TRACE_DELETED:
		details = strdup("deleted");
		break;
	case TRACE_CONFIGURED:
		details = strdup_printf("configured, uniqueid %s", d);
		break;
	case TRACE_SERVICE_RUNNING:
		if (trace_data_service(d, false, &uniq, &svc, &rc, &sig) >= 0)
			details = strdup_printf("%s/service/%s running", uniq, svc);
		break;
	case TRACE_SERVICE_EXITED:
		if (trace_data_service(d, true, &uniq, &svc, &rc, &sig) < 0)
			break;
		if (rc == 256 || (rc < 0 && sig > 0))
			details = strdup_printf("%s/service/%s killed, signal: %s", uniq, svc,
						sig > 0 ? sigabbrev_np((int)sig) ? sigabbrev_np((int)sig) : "?" : "?");
		else
			details = strdup_printf("%s/service/%s exited, return code: %lld", uniq, svc, (long long)rc);
		break;
	case TRACE_FINISHED:
		trace_data_exit(d, &rc, &sig);
		if (rc == 256 && sig > 0)
			details = strdup_printf("finished, killed by signal %lld", (long long)sig);
		else
			details = strdup_printf("finished, return code: %lld", (long long)rc);
		break;
	case TRACE_ABORTED:
		details = strdup_printf("aborted [reason: %s]", *d ? d : "unknown");
		break;
	case TRACE_KILLED:
		details = strdup(strcmp(d, "oom") == 0 ? "killed, out of memory" : "killed");
		break;
	default:
		details = strdup(d);
	}
	printf("%s.%03dZ  %-14s  %-15s  %s\n", ts, ms, ev->source ? ev->source : "-", trace_type_name(ev->type),
	       details ? details : d);
	if (ev->type == TRACE_ABORTED && ev->payload && *ev->payload)
		printf("    %s\n", ev->payload);
	fflush(stdout);
}

static int exit_code_of(const struct trace_event *ev)
{
	int64_t rc, sig;

	switch (ev->type) {
	case TRACE_ABORTED:
		return RC_ABORTED;
	case TRACE_KILLED:
		return RC_KILLED;
	case TRACE_FINISHED:
		trace_data_exit(ev->data, &rc, &sig);
		if (rc == 256 && sig > 0)
			return (int)MIN(128 + sig, 255);
		return rc >= 0 && rc < 256 ? (int)rc : RC_OTHER;
	default:
		return -1;
	}
}

static char *event_key(const struct trace_event *ev)
{
	return strdup_printf("%.3f,%s,%s,%s", ev->timestamp, ev->source ? ev->source : "", trace_type_name(ev->type),
			     ev->data ? ev->data : "");
}

struct follow {
	bool trace_armed, sched_armed;
};

static void on_trace(struct store *s _unused_, enum store_event e _unused_, const char *p _unused_, void *ud)
{
	((struct follow *)ud)->trace_armed = false;
}

static void on_sched(struct store *s _unused_, enum store_event e _unused_, const char *p _unused_, void *ud)
{
	((struct follow *)ud)->sched_armed = false;
}

/* One event of the API ({timestamp, instanceid, source, event_type, data, payload}); borrowed strings. */
static int event_from_json(const json_t *v, struct trace_event *ev)
{
	const char *type = json_string_value(json_object_get(v, "event_type"));

	*ev = (struct trace_event){
		.timestamp = json_number_value(json_object_get(v, "timestamp")),
		.source = (char *)json_string_value(json_object_get(v, "source")),
		.instanceid = (char *)json_string_value(json_object_get(v, "instanceid")),
		.data = (char *)json_string_value(json_object_get(v, "data")),
		.payload = (char *)json_string_value(json_object_get(v, "payload")),
		.type = _TRACE_TYPE_MAX,
	};
	for (int t = 0; t < _TRACE_TYPE_MAX; t++)
		if (type && strcmp(type, trace_type_name((enum trace_type)t)) == 0)
			ev->type = (enum trace_type)t;
	return ev->type == _TRACE_TYPE_MAX || !ev->instanceid ? -EINVAL : 0;
}

struct api_follow {
	const char *inst;
	bool json;
	char **printed;
	int rc;
	uint64_t deleted_at; /* the deleted event seen: wait FOLLOW_GRACE_MS for a terminal one */
};

/* Print an event once; non-zero when it is the terminal one. */
static int api_event(const json_t *v, struct api_follow *f)
{
	struct trace_event ev;
	_cleanup_free_ char *key = NULL;

	if (event_from_json(v, &ev) < 0 || strcmp(ev.instanceid, f->inst) != 0)
		return 0;
	key = event_key(&ev);
	if (!key || strv_contains(f->printed, key))
		return 0;
	if (f->json)
		print_event_json(&ev);
	else
		print_event(&ev);
	strv_push(&f->printed, TAKE_PTR(key));
	if (ev.type == TRACE_DELETED && !f->deleted_at)
		f->deleted_at = now_monotonic_ms();
	if (exit_code_of(&ev) >= 0)
		f->rc = exit_code_of(&ev);
	return f->rc >= 0;
}

static int on_stream_msg(json_t *msg, void *ud)
{
	struct api_follow *f = ud;
	json_t *ev = json_object_get(msg, "event");

	if (!msg) /* a tick: unscheduled for FOLLOW_GRACE_MS without a terminal event, as from the store */
		return f->deleted_at && now_monotonic_ms() - f->deleted_at > FOLLOW_GRACE_MS;
	return ev ? api_event(ev, f) : 0;
}

/* The events through the API (GET /trace/<instance>), printed and judged as from the store; with
 * follow, then the live ones from GET /stream/trace until the terminal one. */
static int trace_api(const char *api, const char *inst, bool json, bool follow)
{
	_cleanup_free_ char *path = cli_api_path("trace", inst);
	_cleanup_json_ json_t *ans = NULL;
	struct api_follow f = { inst, json, NULL, -1 };
	struct error err = ERROR_INIT;
	bool any;
	size_t i;
	json_t *v;

	if (!path)
		return EXIT_TEMP;
	if (cli_api_call(api, "GET", path, NULL, &ans, &err) < 0) {
		if (!(err.msg && endswith(err.msg, ": no trace")))
			return error_report(&err);
		error_clear(&err);
	}
	json_array_foreach(json_object_get(ans, "events"), i, v)
		api_event(v, &f);
	if (f.deleted_at)
		f.deleted_at = now_monotonic_ms(); /* the grace counts from now */
	if (follow && f.rc < 0 && cli_api_stream(api, "trace", inst, on_stream_msg, &f, &err) < 0) {
		strv_free(f.printed);
		return error_report(&err);
	}
	any = f.printed != NULL;
	strv_free(f.printed);
	if (f.rc >= 0)
		return f.rc;
	return any ? RC_OTHER : RC_NO_TRACE;
}

const struct cli_option trace_options[] = {
	{ "follow", 'f', NULL, "keep printing new events until a terminal one", true },
	{ "json", 'j', NULL, "one JSON object per event" },
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTION_API,
	CLI_OPTIONS_END,
};

int cmd_trace(int argc, char **argv)
{
	const char *root = NULL, *store_url = NULL, *api = NULL, *inst;
	_cleanup_store_ struct store *s = NULL;
	_cleanup_strv_free_ char **printed = NULL;
	_cleanup_free_ char *shard_path = NULL;
	struct error err = ERROR_INIT;
	struct follow fw = { false, false };
	bool follow = false, any = false, json = false;
	uint64_t gone_since = 0;
	int c, r, rc = -1;
	char shard[5];

	optind = 0;
	while ((c = cli_getopt(argc, argv, trace_options, false)) >= 0) {
		switch (c) {
		case 'f': follow = true; break;
		case 'j': json = true; break;
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		case CLI_OPT_API: api = optarg; break;
		default: return cli_usage_error("trace", "bad option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("trace", "expected one INSTANCE");
	inst = argv[optind];
	if (trace_shard(inst, shard) < 0)
		return cli_usage_error("trace", "'%s' is not an instance id (<proid>.<app>#<seq>)", inst);
	if (cli_api_url(api)) {
		return trace_api(cli_api_url(api), inst, json, follow);
	}
	shard_path = cellns_trace_shard_path(shard);
	if (!shard_path)
		return EXIT_TEMP;
	if (cli_store_open_ro(root, store_url, &s, &err) < 0)
		return error_report(&err);

	for (;;) {
		struct trace_event *evs = NULL;
		size_t n = 0;

		/* Arm watches before reading so nothing slips between read and wait. */
		if (follow && !fw.trace_armed) {
			_cleanup_strv_free_ char **kids = NULL;

			if (store_children(s, shard_path, &kids, on_trace, &fw) >= 0)
				fw.trace_armed = true;
		}
		if (follow && !fw.sched_armed) {
			cellns_scheduled_exists(s, inst, on_sched, &fw);
			fw.sched_armed = true;
		}
		r = trace_read(s, inst, &evs, &n);
		if (r < 0 && r != -ENOENT) {
			fprintf(stderr, "treadle: trace: reading events of %s: %s\n", inst, store_strerror(r));
			return EXIT_TEMP;
		}
		for (size_t i = 0; i < n; i++) {
			_cleanup_free_ char *key = event_key(&evs[i]);

			any = true;
			if (!key || strv_contains(printed, key))
				continue;
			if (json)
				print_event_json(&evs[i]);
			else
				print_event(&evs[i]);
			if (exit_code_of(&evs[i]) >= 0)
				rc = exit_code_of(&evs[i]);
			strv_push(&printed, TAKE_PTR(key));
		}
		trace_events_free(evs, n);
		if (!follow || rc >= 0)
			break;
		if (cellns_scheduled_exists(s, inst, NULL, NULL) == -ENOENT) {
			if (!gone_since)
				gone_since = now_monotonic_ms();
			else if (now_monotonic_ms() - gone_since > FOLLOW_GRACE_MS)
				break;
		}
		r = store_wait(s, gone_since ? 500 : 2000);
		if (r < 0 && r != -ETIMEDOUT && r != -EAGAIN) {
			fprintf(stderr, "treadle: trace: store: %s\n", store_strerror(r));
			return EXIT_TEMP;
		}
	}
	if (rc >= 0)
		return rc;
	return any ? RC_OTHER : RC_NO_TRACE;
}
