/* trace.h: app and server trace events, Treadmill's encodings (reference
 * treadmill-architecture.md §3).  Domain layer: includes basic/, store/ and
 * cellns/ (which owns every store path).
 *
 * Event name grammar (store node under /trace/<SHARD>/):
 *   <instanceid>,<timestamp %.3f>,<source host>,<type>,<data>
 * SHARD = "%04X" of (instance sequence number % 256).
 * Node-local event file in appevents/: "<timestamp>,<instanceid>,<type>,<data>",
 * content = payload.  */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../basic/error.h"
#include "../store/store.h"

/* Longest event name (spool file or store node name: one path component).
 * Longer data is cut to fit; the payload carries the details. */
#define TRACE_NAME_MAX 255

enum trace_type {
	TRACE_PENDING,
	TRACE_PENDING_DELETE,
	TRACE_SCHEDULED,
	TRACE_DELETED,
	TRACE_CONFIGURED,
	TRACE_SERVICE_RUNNING,
	TRACE_SERVICE_EXITED,
	TRACE_FINISHED,
	TRACE_ABORTED,
	TRACE_KILLED,
	_TRACE_TYPE_MAX,
};

struct trace_event {
	double timestamp;
	char *source;	  /* publishing host */
	char *instanceid; /* "<proid>.<app>#<seq>" */
	enum trace_type type;
	char *data;	  /* event_data encoding of §3.1 */
	char *payload;	  /* may be NULL */
};

const char *trace_type_name(enum trace_type t);
bool trace_type_is_terminal(enum trace_type t); /* finished, aborted, killed */
void trace_event_clear(struct trace_event *ev);
void trace_events_free(struct trace_event *evs, size_t n);

/* The event data of finished: "<rc>.<signal>" (rc 256 = killed by a
 * signal); what is missing or not a number reads as -1. */
void trace_data_exit(const char *data, int64_t *ret_rc, int64_t *ret_signal);

struct cellns_instance;
/* One instance's state as `show --json` and the API's /state print it:
 * {name, state, host} or, finished, {name, state, host, when} with
 * exitcode + signal (finished) or data (+ aborted_reason, oom). */
json_t *trace_instance_json(const struct cellns_instance *in);
/* The event data of service_running "<uniqueid>.<service>" and, with exited,
 * of service_exited "<uniqueid>.<service>.<rc>.<signal>" (the service may
 * hold dots: the last two parts are rc and signal, -1 when missing).
 * *ret_uniqueid and *ret_service are malloc'ed; -ENOMEM. */
int trace_data_service(const char *data, bool exited, char **ret_uniqueid, char **ret_service, int64_t *ret_rc,
		       int64_t *ret_signal);

/* "%04X" shard of an instance id; -EINVAL if it has no "#<digits>". */
int trace_shard(const char *instanceid, char ret[5]);

/* Write a node-local event file into dir (atomic; name as above). */
int trace_post_file(const char *dir, double ts, const char *instanceid, enum trace_type type, const char *data,
		    const char *payload);
/* Parse an event file name (+ payload) into ev; -EINVAL if malformed. */
int trace_parse_file(const char *name, const char *payload, struct trace_event *ev);

/* Store node name of an event: "<instanceid>,<ts %.3f>,<host>,<type>,<data>"
 * with host = hostname, or ev->source when hostname is NULL.  NULL if a part
 * cannot be encoded (no '#<digits>' id, ',' or '/' in host, '/' in data,
 * or id + host alone longer than TRACE_NAME_MAX); data is cut to fit. */
char *trace_node_name(const struct trace_event *ev, const char *hostname);
/* Parse a store node name (+ data as payload, may be NULL); -EINVAL if malformed. */
int trace_parse_node(const char *name, const char *payload, struct trace_event *ev);

/* Publish to the store: /trace/<shard>/<name>; for terminal types also
 * /finished/<instance> = {"state","when","host","data"} and delete
 * /scheduled/<instance> only if /placement/<host>/<instance> exists. */
int trace_publish(struct store *s, const struct trace_event *ev, const char *hostname);

/* All events of one instance, live and from history snapshots, sorted by time. */
int trace_read(struct store *s, const char *instanceid, struct trace_event **ret, size_t *ret_n);

/* Prune as Treadmill does (10 evictions, 10 service events each), then compact
 * events of instances no longer scheduled and older than expire_s into SQLite
 * snapshots under /trace.history (and /finished into /finished.history). */
int trace_compact(struct store *s, double now, double expire_s, struct error *err);
