/* cellns.h: the cell namespace.  Every store path and record shape of a cell
 * (Treadmill's layout, docs/FORMATS.md) is spelled here and nowhere else:
 * the CLI, admin, trace, sched's loader, the master, the node agent and
 * `cell` build paths and read/write records through these calls.
 * Domain layer: includes basic/, store/ and jansson.
 *
 * Conventions:
 *  - Returns >= 0 or a negative errno, the store's codes (store.h) plus
 *    -ENOMEM, -EINVAL (a name that cannot be one path component: empty, '/',
 *    starting with '.'), -EBADMSG (a record that is not the JSON it should be).
 *  - Path builders return a malloc'ed string, NULL only on ENOMEM.
 *  - Records parsed into structs are released with the matching *_clear /
 *    *_free; returned strings, vectors and JSON values belong to the caller.
 *  - Writes of a record are compact JSON with sorted keys (as today).
 *  - "missing" is -ENOENT unless a call says otherwise.
 */
#pragma once

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../basic/error.h"
#include "../store/store.h"

/* ------------------------------------------------------------ the tree */

/* Every top-level node of the cell (Treadmill's root namespace), plus the
 * master's election directory. */
enum cellns_dir {
	CELLNS_ALLOCATIONS,	   /* /allocations: JSON list of allocations */
	CELLNS_APP_GROUPS,	   /* /app-groups */
	CELLNS_APP_MONITORS,	   /* /app-monitors */
	CELLNS_BLACKEDOUT_APPS,	   /* /blackedout.apps: {pattern: {reason, when}} */
	CELLNS_BLACKEDOUT_SERVERS, /* /blackedout.servers/<host> = reason */
	CELLNS_BUCKETS,		   /* /buckets/<bucket> {parent, traits, level} */
	CELLNS_CELL,		   /* /cell/<bucket>: top-level buckets (empty) */
	CELLNS_CRON_JOBS,	   /* /cron-jobs */
	CELLNS_DISCOVERY,	   /* /discovery */
	CELLNS_DISCOVERY_STATE,	   /* /discovery.state */
	CELLNS_ELECTION,	   /* /election */
	CELLNS_ELECTION_MASTER,	   /* /election/master/lock-<seq> = "<host>.<pid>" (ephemeral) */
	CELLNS_ENDPOINTS,	   /* /endpoints/<proid>/<app>#<n>:<proto>:<name> = "<host>:<port>" */
	CELLNS_ENDPOINTS_ROOT,	   /* /endpoints/root */
	CELLNS_EVENTS,		   /* /events/<prio %03d>-<resource>-<seq> = JSON payload */
	CELLNS_FINISHED,	   /* /finished/<instance> {data, host, state, when} */
	CELLNS_FINISHED_HISTORY,   /* /finished.history/finished.db.gzip-<seq> */
	CELLNS_IDENTITY_GROUPS,	   /* /identity-groups/<group> {count} */
	CELLNS_PARTITIONS,	   /* /partitions/<label> {partition, memory, cpu, disk, reboot-schedule} */
	CELLNS_PLACEMENT,	   /* /placement/<host> {state, since}; /placement/<host>/<instance> */
	CELLNS_REBOOTS,		   /* /reboots/<host> (empty) */
	CELLNS_RUNNING,		   /* /running/<instance> = "<host>" (ephemeral) */
	CELLNS_SCHEDULED,	   /* /scheduled/<proid>.<app>#<seq> = manifest JSON */
	CELLNS_SCHEDULED_STATS,	   /* /scheduled-stats {proid: count} */
	CELLNS_SCHEDULER,	   /* /scheduler {mode} */
	CELLNS_SERVER_PRESENCE,	   /* /server.presence/<host> {seen, valid_until} (ephemeral) */
	CELLNS_SERVER_TRACE,	   /* /server-trace/<shard>/<host>,<ts>,<master>,<type>,<data> */
	CELLNS_SERVER_TRACE_HISTORY, /* /server-trace.history */
	CELLNS_SERVERS,		   /* /servers/<host> {memory, cpu, disk, traits, parent, partition, up_since} */
	CELLNS_STRATEGIES,	   /* /strategies */
	CELLNS_TICKET_LOCKER,	   /* /ticket-locker/<host>:<port> (ephemeral): `treadle locker` (KERBEROS.md) */
	CELLNS_KEYTAB_LOCKER,	   /* /keytab-locker/<host>:<port> (ephemeral): a locker that serves keytabs */
	CELLNS_TRACE,		   /* /trace/<shard>/<instance>,<ts>,<host>,<type>,<data> = payload */
	CELLNS_TRACE_HISTORY,	   /* /trace.history/trace.db.gzip-<seq> */
	CELLNS_TRAITS,		   /* /traits: JSON list of trait names */
	CELLNS_VERSION,		   /* /version */
	CELLNS_VERSION_HISTORY,	   /* /version.history */
	CELLNS_VERSION_ID,	   /* /version-id */
	_CELLNS_DIR_MAX,
};

/* History snapshot names: <prefix><10-digit sequence> (sequential create). */
#define CELLNS_TRACE_SNAPSHOT_PREFIX "trace.db.gzip-"
#define CELLNS_FINISHED_SNAPSHOT_PREFIX "finished.db.gzip-"

/* "/scheduled" etc.; NULL for an out-of-range value.  Static storage. */
const char *cellns_dir(enum cellns_dir d);
/* "<dir>/<name>"; name NULL gives a copy of the directory. */
char *cellns_path(enum cellns_dir d, const char *name);
/* "<dir>/<a>/<b>"; b NULL gives "<dir>/<a>". */
char *cellns_path2(enum cellns_dir d, const char *a, const char *b);

/* Create every top-level node (idempotent).  err names the node that failed. */
int cellns_create_top(struct store *s, struct error *err);
/* Create up to `budget` of the 512 trace shards (/trace/0000../trace/00FF,
 * then /server-trace/...), continuing at *next (0..512; 512 = all done). */
#define CELLNS_SHARDS 512
int cellns_create_shards(struct store *s, unsigned *next, unsigned budget, struct error *err);
/* 0 if every shard exists (the last one created is there), else -ENOENT. */
int cellns_shards_complete(struct store *s);

/* Sorted child names of a directory (store_children semantics: -ENOENT when
 * the directory is missing, and then no watch is left). */
int cellns_list(struct store *s, enum cellns_dir d, char ***ret, store_watch_fn watch, void *userdata);
/* Like cellns_list, but a missing directory is created first (so the watch is
 * always armed); what the master's watched lists need. */
int cellns_list_ensure(struct store *s, enum cellns_dir d, char ***ret, store_watch_fn watch, void *userdata);

/* ------------------------------------------------- generic JSON records */

/* The bytes cellns_put_json writes for j (plain strings raw: blackout reasons). */
char *cellns_dumps(const json_t *j);

/* ------------------------------------------------------ scheduled apps */

/* Create /scheduled/<app>#<seq> (sequential) with the manifest JSON text;
 * the parent is created if missing.  *ret_instance = "<app>#<seq>". */
int cellns_scheduled_create(struct store *s, const char *app, const char *manifest_json, char **ret_instance);
/* The manifest of an instance: -ENOENT missing, -EBADMSG not a JSON object
 * (*ret stays NULL).  ret_stat may be NULL. */
int cellns_scheduled_get(struct store *s, const char *instance, json_t **ret, struct store_stat *ret_stat);
/* 0 scheduled, -ENOENT not; the watch is left either way. */
int cellns_scheduled_exists(struct store *s, const char *instance, store_watch_fn watch, void *userdata);
/* Unschedule; -ENOENT if it was not scheduled. */
int cellns_scheduled_delete(struct store *s, const char *instance);
/* Raw data of n instances at once (store_get_many_in semantics: NULL data
 * for a missing or unreadable node). */
int cellns_scheduled_get_many(struct store *s, char *const *instances, size_t n, char **ret_data);
/* /scheduled-stats = json text (set, else create). */
int cellns_scheduled_stats_put(struct store *s, const char *json_text);

/* ----------------------------------------------------------- placement */

enum cellns_server_state {
	CELLNS_STATE_UNKNOWN = -1, /* no /placement/<host> record */
	CELLNS_STATE_UP,
	CELLNS_STATE_DOWN,
	CELLNS_STATE_FROZEN,
};
const char *cellns_server_state_name(enum cellns_server_state st); /* "up" "down" "frozen", NULL */

/* /placement/<host>/<instance>: {"expires", "identity", "identity_count"}. */
struct cellns_placement {
	double expires;	    /* NAN: null */
	int identity;	    /* -1: null */
	int identity_count; /* -1: null */
};
#define CELLNS_PLACEMENT_INIT { .expires = NAN, .identity = -1, .identity_count = -1 }

/* The record's text (for store ops built by the caller). */
char *cellns_placement_format(const struct cellns_placement *p);
/* Parse a record text; missing keys read as null.  -EBADMSG if not an object. */
int cellns_placement_parse(const char *data, struct cellns_placement *ret);
/* Create, or replace when it exists; -ENOENT when /placement/<server> is
 * missing (the master writes the server's state record first). */
int cellns_placement_put(struct store *s, const char *server, const char *instance, const struct cellns_placement *p);
/* ret, ret_json (the whole record object, for keys carried as is), ret_stat
 * may each be NULL. */
int cellns_placement_get(struct store *s, const char *server, const char *instance, struct cellns_placement *ret,
			 json_t **ret_json, struct store_stat *ret_stat);
/* The instances placed on server (sorted). */
int cellns_placement_list(struct store *s, const char *server, char ***ret, store_watch_fn watch, void *userdata);
/* Every placement: instance -> server. */
struct cellns_placed {
	char *instance;
	char *server;
};
/* The number of placed instances (sum over servers). */
int cellns_placement_count(struct store *s, size_t *ret);
/* /placement/<host> = {"state", "since"}: the master's view of a server. */
int cellns_server_state_get(struct store *s, const char *server, enum cellns_server_state *ret_state,
			    double *ret_since);
int cellns_server_state_put(struct store *s, const char *server, enum cellns_server_state state, double since);
/* 0 when /placement/<host> exists, -ENOENT when not; the watch is left either
 * way (the node agent waits for the master to create it). */
int cellns_server_state_watch(struct store *s, const char *server, store_watch_fn watch, void *userdata);

/* ------------------------------------------------ running and endpoints */

/* /running/<instance> = host, ephemeral of this session; an existing node of
 * this same session counts as created.  The parent is created if missing. */
int cellns_running_publish(struct store *s, const char *instance, const char *host);
/* Missing is success. */
int cellns_running_delete(struct store *s, const char *instance);

/* One endpoint: instance "<proid>.<app>#<n>", its protocol and name, the
 * published "<host>:<port>". */
struct cellns_endpoint {
	char *instance;
	char *proto;
	char *name;
	char *address;
};
void cellns_endpoints_free(struct cellns_endpoint *e, size_t n);
/* Publish /endpoints/<proid>/<app>#<n>:<proto>:<name> = address, ephemeral
 * like /running (the proid is the instance's part before '.'); *ret_path
 * (may be NULL) receives the node's path, for cellns_endpoint_delete. */
int cellns_endpoint_publish(struct store *s, const char *instance, const char *proto, const char *name,
			    const char *address, char **ret_path);
/* Delete a published endpoint by the path cellns_endpoint_publish gave;
 * missing is success. */
int cellns_endpoint_delete(struct store *s, const char *path);
/* Every endpoint whose instance matches the fnmatch pattern (NULL: all), in
 * store order. */
int cellns_endpoints_list(struct store *s, const char *pattern, struct cellns_endpoint **ret, size_t *ret_n);

/* ------------------------------------------------------------ discovery */

/* Treadmill's discovery pattern (discovery.py, cli/discovery.py): pattern
 * "<proid>.<app glob>" gets "#*" appended unless it has a '#'; it is matched
 * (fnmatch, no escapes, '*' crosses '/' and ':') against the instance
 * "<proid>.<app>#<n>", proto_glob against the protocol and endpoint_glob
 * against the endpoint name (NULL globs: "*").  True on a match. */
bool cellns_discovery_match(const char *pattern, const char *proto_glob, const char *endpoint_glob,
			    const char *instance, const char *proto, const char *endpoint);
/* The full instance glob of a pattern ("#*" appended unless it has '#'). */
char *cellns_discovery_instance_glob(const char *pattern);
/* The proid part of a pattern (before the first '.', the whole pattern if
 * none): the /endpoints/<proid> directories to look in are those it matches. */
char *cellns_discovery_proid_glob(const char *pattern);
/* Split "PROTO:ENDPOINT" (or "ENDPOINT" = "*:ENDPOINT", NULL = "*:*") into its
 * two globs; -EINVAL if either part is empty or there is a second ':'. */
int cellns_discovery_split(const char *arg, char **ret_proto, char **ret_endpoint);

/* /discovery/<host> = the JSON list of "<instance>:<proto>:<endpoint>:<real_port>"
 * (sorted) of every endpoint of the host's running containers; ephemeral of
 * this session.  Published as given (the caller sorts; cellns_discovery_format
 * does).  An existing node of this session is overwritten; one of another
 * session (a previous agent's, not yet expired) is -EBUSY. */
char *cellns_discovery_format(char *const *entries, size_t n); /* sorts entries in place */
int cellns_discovery_publish(struct store *s, const char *host, const char *text);
/* /discovery.state/<host> = {"<real_port>": 0|1}: whether each endpoint's port
 * listens (docs/NODE.md "Discovery"); ephemeral like /discovery/<host>. */
char *cellns_discovery_state_format(const int *real_ports, const bool *up, size_t n);
int cellns_discovery_state_publish(struct store *s, const char *host, const char *text);
/* The state record of host as an object (-ENOENT missing, -EBADMSG not an
 * object); the watch (data) is left when it exists. */
int cellns_discovery_state_get(struct store *s, const char *host, json_t **ret, store_watch_fn watch,
			       void *userdata);
/* 1 up, 0 down, -ENOENT no entry for real_port in a state record. */
int cellns_discovery_state_port(const json_t *state, int real_port);

/* /identity-groups/<group>/<identity> = {"app": <instance>, "host": <host>},
 * the presence of the instance holding that identity, ephemeral of this
 * session.  -EBUSY while the node belongs to another instance or session
 * (Treadmill's presence waits for it to go). */
int cellns_identity_publish(struct store *s, const char *group, int identity, const char *instance,
			    const char *host);
/* Delete it if it is this instance's (missing, or another's, is success). */
int cellns_identity_unpublish(struct store *s, const char *group, int identity, const char *instance);

/* ------------------------------------------------------------ finished */

/* /finished/<instance>: {"data", "host", "state", "when"}. */
struct cellns_finished {
	char *state; /* finished aborted killed terminated; "finished" when absent */
	double when; /* "when" as a number or as "%.3f" text; 0 if neither */
	char *host;  /* NULL: null or absent */
	char *data;  /* NULL: null or absent */
};
/* A terminal trace event's record (trace_publish): "when" as "%.3f" text, data
 * "" when NULL; replaces an existing record (last write wins). */
int cellns_finished_publish(struct store *s, const char *instance, const char *state, double when,
			    const char *host, const char *data);
/* The master's record of an instance it ends itself (deleted, schedule_once):
 * state "terminated", "when" a number, host/data null when NULL; an existing
 * record is kept (-EEXIST is success). */
int cellns_finished_terminated(struct store *s, const char *instance, double when, const char *host,
			       const char *data);

/* Treadmill's state API, computed from the store: every instance in
 * /scheduled (when live) with its state, then (when finished) every
 * /finished record of an instance no longer scheduled (unreadable records
 * are left out). */
enum cellns_instance_state {
	CELLNS_INSTANCE_PENDING,   /* scheduled, not placed */
	CELLNS_INSTANCE_SCHEDULED, /* placed on host */
	CELLNS_INSTANCE_RUNNING,   /* in /running (host: where placed, may be NULL) */
	CELLNS_INSTANCE_FINISHED,  /* finished holds the record */
};
/* "pending", "scheduled", "running", "finished". */
const char *cellns_instance_state_name(enum cellns_instance_state s);
struct cellns_instance {
	char *name;
	enum cellns_instance_state state;
	char *host; /* the server it is placed on; NULL if none */
	struct cellns_finished finished;
};
int cellns_instances(struct store *s, bool live, bool finished, struct cellns_instance **ret, size_t *ret_n);
void cellns_instances_free(struct cellns_instance *v, size_t n);

/* Guarded unschedule of trace_publish: delete /scheduled/<instance> only if
 * /placement/<host>/<instance> exists (one multi).  Not placed there, or
 * already unscheduled, is success. */
int cellns_unschedule_if_placed(struct store *s, const char *host, const char *instance);

/* --------------------------------------------------------------- trace */

/* /trace/<shard> and /trace/<shard>/<name>. */
char *cellns_trace_shard_path(const char *shard);
/* Create /trace/<shard>/<name> = payload (creating the shard if missing);
 * -EEXIST when that exact event is there. */
int cellns_trace_create(struct store *s, const char *shard, const char *name, const char *payload);

int cellns_server_trace_post(struct store *s, const char *server, double ts, const char *source, const char *type,
			     const char *data);

/* ------------------------------------------------------------- servers */

/* /servers/<host>.  The whole record is kept in json for the keys read as is
 * (resources go to sched_loader_resources). */
struct cellns_server {
	char *parent;	 /* NULL: null/absent */
	char *partition; /* NULL: absent */
	double up_since; /* NAN: absent */
	json_t *json;	 /* the record object */
};
void cellns_server_clear(struct cellns_server *srv);
/* -EBADMSG if the data is not a JSON object (an empty record reads as {}). */
int cellns_server_get(struct store *s, const char *host, struct cellns_server *ret);
/* The node agent's registration: set memory, cpu, disk (strings as given)
 * and up_since, keeping every other key; creates the record if missing. */
int cellns_server_register(struct store *s, const char *host, const char *memory, const char *cpu,
			   const char *disk, double up_since);

/* /server.presence/<host> = {"seen": false}, ephemeral of this session;
 * -EEXIST when a node is there (this or a previous session's). */
int cellns_presence_create(struct store *s, const char *host);
/* 0 present (ret_stat filled, may be NULL), -ENOENT not; watch left either way. */
int cellns_presence_exists(struct store *s, const char *host, struct store_stat *ret_stat, store_watch_fn watch,
			   void *userdata);
int cellns_presence_delete(struct store *s, const char *host); /* missing is success */
/* A locker's ephemeral registration d/<host>:<port> (d: CELLNS_TICKET_LOCKER or
 * CELLNS_KEYTAB_LOCKER), its parent created when missing; list with cellns_list. */
int cellns_locker_register(struct store *s, enum cellns_dir d, const char *hostport);
/* The presence's "valid_until" (0 when absent or missing). */
int cellns_presence_valid_until(struct store *s, const char *host, double *ret);
/* Is host present: a presence named host, or Treadmill's "<host>#<seq>". */
int cellns_presence_find(struct store *s, const char *host, bool *ret_found);

/* /blackedout.servers/<host>: 0 blacked out, -ENOENT not; watch left either way. */
int cellns_blackout_server_exists(struct store *s, const char *host, store_watch_fn watch, void *userdata);
/* The reason (a JSON string's value, or the raw text; "" if empty). */
int cellns_blackout_server_reason(struct store *s, const char *host, char **ret_reason);
/* /blackedout.apps: the {pattern: {reason, when}} object ({} when missing or
 * not an object). */
int cellns_blackout_apps_get(struct store *s, json_t **ret);

/* ------------------------------------------------ buckets, cell, groups */

/* /buckets/<bucket>. */
struct cellns_bucket {
	char *parent; /* NULL: null/absent */
	char *level;  /* NULL: absent (derived from the name) */
	uint64_t traits;
};
void cellns_bucket_clear(struct cellns_bucket *b);
/* A missing or unparsable record reads as all-absent with -ENOENT / -EBADMSG. */
int cellns_bucket_get(struct store *s, const char *name, struct cellns_bucket *ret);

/* /identity-groups/<group> {"count"}: *ret = count, -1 when absent/invalid. */
int cellns_identity_group_count(struct store *s, const char *group, int *ret);

/* /partitions/<label>: the record object. */
int cellns_partition_get(struct store *s, const char *label, json_t **ret);

/* /allocations: one entry of the list. */
struct cellns_assignment {
	char *pattern;
	int priority; /* default 1 */
};
struct cellns_allocation {
	char *name;	 /* NULL: bad entry (kept so indexes match the list) */
	char *partition; /* NULL: absent ("_default") */
	int64_t rank;	 /* -1: absent */
	int64_t rank_adjustment;
	double max_utilization; /* 0: absent */
	struct cellns_assignment *assignments;
	size_t n_assignments;
	json_t *json;	 /* the entry (resources, traits) */
};
void cellns_allocations_free(struct cellns_allocation *a, size_t n);
/* The list (n = 0 when missing or not a list). */
int cellns_allocations_get(struct store *s, struct cellns_allocation **ret, size_t *ret_n);

/* /traits: the names (NULL/empty when missing). */
int cellns_traits_get(struct store *s, char ***ret);
/* /scheduler {"mode"}: the mode string (NULL when absent). */
int cellns_scheduler_mode(struct store *s, char **ret_mode);

/* /reboots/<host>: request (idempotent), and test. */
int cellns_reboot_request(struct store *s, const char *host);
int cellns_reboot_requested(struct store *s, const char *host); /* 0 yes, -ENOENT no */

/* -------------------------------------------------------------- events */

/* /events/<prio %03d>-<resource>-<seq>. */
struct cellns_event {
	const char *name; /* borrowed from the parsed name */
	int prio;
	int64_t seq;
	char resource[64];
};
/* Parse a child name of /events; -EINVAL if it is not an event name. */
int cellns_event_parse(const char *name, struct cellns_event *ret);
/* The sequential-create prefix "/events/<prio %03d>-<resource>-". */
char *cellns_event_prefix(int prio, const char *resource);
/* The payload of /events/<name> (NULL when empty). */
int cellns_event_get(struct store *s, const char *name, json_t **ret);
int cellns_event_delete(struct store *s, const char *name); /* missing is success */

/* ------------------------------------------------------------ election */

/* Join /election/master with data id ("<host>.<pid>"): ephemeral sequential
 * lock-<seq>; *ret_node is the full path. */
int cellns_election_join(struct store *s, const char *id, char **ret_node);
/* The data of every member, in name (= sequence) order; *ret NULL-terminated. */
int cellns_election_members(struct store *s, char ***ret);
/* The election of another cell daemon (e.g. "hostgroups"): /election/<role>,
 * and /election/<role>/<lock> when lock is not NULL. */
char *cellns_election_path(const char *role, const char *lock);
/* Join /election/<role> as cellns_election_join does /election/master. */
int cellns_election_join_role(struct store *s, const char *role, const char *id, char **ret_node);
