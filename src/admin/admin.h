/* admin.h: cell administration (Treadmill's masterapi + admin CLI).
 *
 * Every change is validated first (a bad value fails with ERR_PERM and a
 * message naming the field, nothing written), then written together with its
 * master event `/events/<prio %03d>-<resource>-<seq>` in ONE store_multi, so a
 * change is either wholly there with its event or not at all.  Writes of
 * shared nodes (/allocations, /blackedout.apps, /servers/<h>) are guarded by
 * the version read and retried on a race.  Missing namespace parents are
 * created first (empty persistent nodes; harmless).  Domain layer above
 * store/: includes basic/, store/, cellns/ (every path) and trace/ (the
 * events of run and stop).
 *
 * Store contract (see docs/ADMIN.md):
 *   server add     /servers/<h> {parent, partition, traits, memory, cpu, disk}
 *                  (keys not given are kept; node-written keys kept)   event 000-servers- [h]
 *   server delete  /servers/<h> deleted                                event 000-servers- [h]
 *   server up|down|freeze   no data change                             event 000-server_state- [h, state, [apps]]
 *   bucket add     /buckets/<b> {parent, traits, level}                event 000-buckets- [b]
 *   cell insert    /cell/<b> (empty)                                   event 000-cell- [b]
 *   partition add  /partitions/<p> {partition, memory, cpu, disk, reboot-schedule}  event 000-cell- [p] (the master reloads partitions on `cell`)
 *   alloc set      /allocations list entry {name, partition, rank, rank_adjustment,
 *                  max_utilization, memory, cpu, disk, traits, assignments}  event 000-allocations- null
 *   identity-group /identity-groups/<g> {count}                        event 000-identity_groups- [g]
 *   blackout server  /blackedout.servers/<h> = reason; presence deleted  event 000-servers- [h]
 *   blackout app     /blackedout.apps {pattern: {reason, when}}         event 000-apps_blacklist- null
 *   schedule       /scheduled/<app>#<seq> = manifest       trace event pending "created"
 *   unschedule     /scheduled/<instance> deleted           trace event pending_delete "deleted" (first)
 *   (schedule_many / unschedule_many: the same nodes and events, written in batches)
 * Sizes are stored as "<MiB>M", cpu as "<N>%". */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "../basic/error.h"

#include <jansson.h>

struct store;

struct admin_server {
	const char *name;
	const char *parent;    /* bucket, NULL = keep */
	const char *partition; /* NULL = keep (new servers: "_default") */
	const char *memory, *cpu, *disk; /* NULL = keep */
	char **traits;	       /* NULL = keep */
};

struct admin_alloc {
	const char *name;      /* "tenant/alloc" (':' accepted too) */
	const char *partition; /* default "_default" */
	const char *memory, *cpu, *disk; /* reserved; NULL = 0 */
	int64_t rank;	       /* < 0: default 100 */
	int64_t rank_adjustment;
	double max_utilization; /* < 0: unlimited (null) */
	char **traits;
};

enum admin_server_state { ADMIN_STATE_UP, ADMIN_STATE_DOWN, ADMIN_STATE_FROZEN };

int admin_server_add(struct store *s, const struct admin_server *srv, struct error *err);
int admin_server_delete(struct store *s, const char *name, struct error *err);
/* Ask the master to set a server's state; apps (may be NULL) are unscheduled on freeze. */
int admin_server_state(struct store *s, const char *name, enum admin_server_state state, char **apps,
		       struct error *err);

/* traits < 0: null. level NULL: derived from the name prefix by the master. */
int admin_bucket_add(struct store *s, const char *name, const char *parent, const char *level, int64_t traits,
		     struct error *err);
int admin_bucket_delete(struct store *s, const char *name, struct error *err);
int admin_cell_insert(struct store *s, const char *bucket, struct error *err);
int admin_cell_remove(struct store *s, const char *bucket, struct error *err);

/* reboot_schedule: JSON object {"<weekday 0-6>": [h, m, s]} or NULL. */
int admin_partition_add(struct store *s, const char *name, const char *memory, const char *cpu, const char *disk,
			const char *reboot_schedule, struct error *err);
int admin_partition_delete(struct store *s, const char *name, struct error *err);

int admin_alloc_set(struct store *s, const struct admin_alloc *a, struct error *err);
int admin_alloc_delete(struct store *s, const char *name, struct error *err);
int admin_alloc_assign(struct store *s, const char *name, const char *pattern, int64_t priority, struct error *err);
int admin_alloc_unassign(struct store *s, const char *name, const char *pattern, struct error *err);

int admin_identity_group_set(struct store *s, const char *name, int64_t count, struct error *err);
int admin_identity_group_delete(struct store *s, const char *name, struct error *err);

int admin_blackout_server(struct store *s, const char *host, bool on, const char *reason, struct error *err);
int admin_blackout_app(struct store *s, const char *pattern, bool on, const char *reason, struct error *err);

/* What: "servers", "buckets", "cell", "partitions", "allocations", "identity-groups", "blackout".
 * *ret is a new JSON value (array or object) owned by the caller. */
int admin_list(struct store *s, const char *what, json_t **ret, struct error *err);

/* Treadmill's create_apps for one instance (`treadle run`): create
 * /scheduled/<app>#<seq> with the scheduled manifest (JSON text, validated by
 * the caller: manifest_build_run) and post its `pending created` trace event
 * as host.  *ret_instance = "<app>#<seq>".  A failed event post does not undo
 * the instance: *ret_posted says whether it was posted. */
int admin_schedule(struct store *s, const char *app, const char *manifest_json, const char *host,
		   char **ret_instance, bool *ret_posted, struct error *err);
/* Treadmill's delete_apps for one instance (`treadle stop`): post
 * `pending_delete deleted` as host (*ret_posted: whether it was), then delete
 * /scheduled/<instance>.  ERR_PERM "<instance>: not an instance id ..." or
 * "<instance>: no such instance"; ERR_TEMP for a store failure. */
int admin_unschedule(struct store *s, const char *instance, const char *host, bool *ret_posted,
		     struct error *err);

/* admin_schedule for count instances at once (`treadle run --count N`): the
 * sequential creates go in batches (store_multi_paths: one commit per batch
 * of up to 500 instances or 512 KiB, under ZooKeeper's request limit), then
 * their `pending created` events in batches (a batch that fails is posted
 * one by one).  Instance names, sequence numbers, data and events are those
 * of count admin_schedule calls.  *ret_instances (always set, strv_free it)
 * holds the instances created, also when a later batch failed (then the
 * error is returned); *ret_unposted counts the events not posted. */
int admin_schedule_many(struct store *s, const char *app, const char *manifest_json, const char *host, size_t count,
			char ***ret_instances, size_t *ret_unposted, struct error *err);
/* admin_unschedule for n instances (`treadle stop I...`): every existing
 * instance gets its `pending_delete deleted` event, then is deleted, both in
 * batches.  For each i, errs[i] (n entries, ERROR_INIT) is filled as
 * admin_unschedule would fill it and ret_posted[i] says whether the event was
 * posted.  Returns the number of instances that failed. */
int admin_unschedule_many(struct store *s, char *const *instances, size_t n, const char *host, bool *ret_posted,
			  struct error *errs);
