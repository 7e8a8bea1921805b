/* sproc.h: what the s6 scripts of a node run (`treadle sproc ...`): the
 * container run (generate the in-container supervision tree, then become the
 * container), the restart-policy finish, the service exec wrapper, cleanup,
 * and event posting.  Daemon layer: basic/, supervisor/, cgroup/, container/,
 * trace/, node/layout.h.  One file per job (sproc-*.c), sharing node-internal.h;
 * the node's settings come from N/node.json (sproc_settings_read).
 * Formats: docs/FORMATS.md "Node layout".
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../basic/error.h"

/* Per-container spool dirs.  The in-container service scripts post events
 * and tombstones into <container>/data/services/.ctl/{appevents,tombstones}
 * (inside the container: /services/.ctl/...; s6-svscan ignores dot dirs).
 * The agent validates each file (it must name this container) and moves it
 * into N/appevents or N/tombstones/services: a container cannot post for
 * another one (Treadmill's UDS accepted anything from uid 0). */
#define SPROC_CTL_REL "data/services/.ctl"
#define SPROC_CTL_APPEVENTS "/services/.ctl/appevents"
#define SPROC_CTL_TOMBSTONES "/services/.ctl/tombstones"
/* A container stopped on purpose (`cell down`): the agent creates this flag
 * before `s6-svc -d`; a service's finish then takes its exit as final
 * whatever its restart policy, so the exit becomes the container's exitinfo
 * and its `finished` event (no restart, no lost instance).  Seen from the
 * service dir (finish's cwd) inside the container it is "../.stopped". */
#define SPROC_STOPPED_REL "data/services/.stopped"
#define SPROC_STOPPED_FROM_SERVICE "../.stopped"

/* Node-wide settings shared by the agent and the sproc commands. */
struct node_settings {
	const char *root;	 /* N, absolute */
	const char *treadle_bin; /* absolute path of the treadle binary */
	const char *cgroup_root; /* cgroup parent name of containers, e.g. "treadle" */
	const char *hostname;
	const char *cell;
	const char *store_url;
	unsigned setup_timeout_s; /* passed to container_run; 0 = its default */
	uint64_t pids_max;	  /* per-container pids limit; 0 = unlimited */
	uint64_t disk_read_bps, disk_write_bps; /* per-container volume throttles; 0 = none */
	/* The container network (docs/NETWORK.md), resolved by the agent at start;
	 * net_bridge NULL: off (containers with a private network have only lo). */
	const char *net_bridge, *net_table, *net_range, *net_gateway, *net_external_ip;
	unsigned net_mtu;
	/* Hooks at container configure and cleanup (docs/HOOKS.md), "a,b"; NULL: none.
	 * The Kerberos hooks' settings: the host keytab, the krb5.conf given to
	 * containers, how long an app waits for its tickets. */
	const char *hooks, *krb5_keytab, *krb5_config;
	unsigned tickets_wait_s;
};

/* N/node.json, the node's settings, written atomically by the agent once at
 * start and read by every `treadle sproc run` / `cleanup` (docs/FORMATS.md
 * "Node settings"): s6 run scripts then pass only what differs per container.
 * ns->root is not stored (the file's directory is the root). */
int sproc_settings_write(const struct node_settings *ns);
/* Read N/node.json into *ret (ret->root = root, borrowed); its strings are
 * owned by *ret_owner (json_decref it after the last use of *ret).  ERR_TEMP
 * if the file is missing or unreadable, ERR_PERM if a field is invalid. */
int sproc_settings_read(const char *root, struct node_settings *ret, json_t **ret_owner, struct error *err);

/* The hooks a node may enable (sproc-hooks.c, docs/HOOKS.md). */
#define SPROC_HOOKS_KNOWN "krb5keytab, tickets"
bool sproc_hook_known(const char *name);

/* Post an event file into appevents_dir: "<ts %.3f>,<instance>,<type>,<data>"
 * with payload (may be NULL), atomically.  type = Treadmill event type name. */
int sproc_event_post(const char *appevents_dir, const char *instance, const char *type, const char *data,
		     const char *payload);


/* The container service dir spec for apps/<unique> (run/finish/log scripts);
 * scripts are malloc'ed into *ret_run, *ret_finish, *ret_log. */
int sproc_container_scripts(const struct node_settings *ns, const char *instance, const char *unique,
			    char **ret_run, char **ret_finish, char **ret_log);

/* From data/app.json (app), write data/services/<svc>/ for every service of
 * the manifest into container_dir (removing stale ones, wiping exit
 * histories).  Returns 0 or fills err. */
int sproc_services_write(const struct node_settings *ns, const char *container_dir, const json_t *app,
			 struct error *err);

/* Create <container_dir>/data/services/.ctl/{appevents,tombstones}. */
int sproc_ctl_create(const char *container_dir);
/* Move the valid files of a container's spool dirs into N/appevents and
 * N/tombstones/services, drop the others (events must be for its instance and
 * of type service_running, service_exited or aborted; tombstones must name
 * "<unique>,<service>").  Returns the number of files moved, or -errno. */
int sproc_ctl_drain(const char *root, const char *unique);

/* Write data/aborted {"why","payload"} in container_dir unless present. */
int sproc_flag_aborted(const char *container_dir, const char *why, const char *payload);

/* N/exits/<instance>/<service>: the service's exit history on this node,
 * across its containers (data/exits/log format); malloc'ed. */
char *sproc_exits_history_path(const char *root, const char *instance, const char *service);

/* The container apps/<unique> exited (its tombstone in tombstones/running
 * says how: e).  Unless the exit was asked for (status 0) or already decided
 * (exitinfo, aborted, oom, terminated in data/), it is a death outside the
 * policy: every service of data/app.json that was not downed exited with it.
 * Each one gets a service_exited event "<uniqueid>.<svc>.<rc>.<sig>" (named
 * by e->ts, so posting again is the same event) and the exit is counted
 * against its restart policy, on the union of its history on this node and
 * the container's own data/exits/log; the histories are written durably.  A
 * policy exceeded writes data/exitinfo for that service (the instance then
 * finishes, as when a service exceeds its policy inside the container) and
 * *ret_service = its name.  Idempotent: an exit already in a history is not
 * counted again.  Returns SPROC_DEATH_* or -errno. */
enum { SPROC_DEATH_IGNORED, SPROC_DEATH_RESTART, SPROC_DEATH_FATAL };
struct sv_exit;
/* Create <cdir>/data/exitinfo {"return_code","service","signal","timestamp"}
 * exclusively and durably (Treadmill's container-down); 0 if it exists. */
int sproc_exitinfo_write(const char *cdir, const char *service, const struct sv_exit *e);
int sproc_container_died(const char *root, const char *unique, const struct sv_exit *e, char **ret_service);

/* `treadle sproc finish`: one exit of a supervised process.
 * Posts service_exited if appevents_dir is set, applies the restart policy on
 * data/exits/log (relative to cwd), writes the tombstone when fatal.
 * Returns the finish exit code: 0 (restart) or 125 (stay down), or -errno. */
struct sproc_finish_args {
	unsigned limit, interval;
	const char *tombstones; /* dir */
	const char *id;		/* tombstone id */
	const char *appevents;	/* NULL: no trace */
	const char *instance, *uniqueid, *service;
	int rc, sig;
};
int sproc_finish(const struct sproc_finish_args *a);

/* `treadle sproc service-exec`: post service_running, set up the
 * environment, drop to user (NULL/"root": stay root), exec /bin/sh ./app_start.
 * Returns only on failure (fills err). */
struct sproc_exec_args {
	const char *appevents, *instance, *uniqueid, *service, *user;
};
int sproc_service_exec(const struct sproc_exec_args *a, struct error *err);

/* `treadle sproc run --root N` (cwd = container dir): read N/node.json and data/app.json, write the
 * services, then container_run() (cgroups, volume, namespaces, root, pid 1 =
 * s6-svscan /services; it writes data/container.json once started).  Setup failures write data/aborted and return 0 so
 * the container's finish runs (Treadmill's behaviour); other errors -errno. */
int sproc_run(const char *root, struct error *err);

/* `treadle sproc check --service S`, inside the container: S's readiness check every interval, ready
 * files written, the service restarted through its supervise/control after `failures` failures.
 * Returns only on failure (fills err; ERR_PERM for a bad check). */
int sproc_check(const char *service, struct error *err);

/* `treadle sproc host-aliases` (cwd = container dir, host side): once the container runs, keeps
 * data/overlay/etc/hosts = its base + "<ip> <fqdn> <alias>" for every data/overlay/run/host-aliases/<alias>
 * -> <hostname>, resolved with the host's resolver, rewritten in place on every change, unresolved names
 * retried every SPROC_ALIASES_RETRY_S.  Returns only on failure. */
#define SPROC_ALIASES_RETRY_S 10
int sproc_host_aliases(struct error *err);

/* Container cgroup of the app's processes, relative to the cgroup root:
 * "apps/<unique>/services" (see src/cgroup/cg.h), malloc'ed. */
char *sproc_cgroup_path(const char *unique);

/* `treadle sproc cleanup <unique>`: wait until apps/<unique> is no longer
 * supervised, destroy its cgroup, archive its logs to archives/<unique>/,
 * post the terminal event (aborted > killed(oom) > none(terminated) >
 * finished(exitinfo)), remove the container dir and cleanup/<unique>.
 * Idempotent: safe to re-run after a crash at any point.  Settings from
 * N/node.json; cgroup_root (NULL: the file's) overrides its cgroup root. */
int sproc_cleanup(const char *root, const char *cgroup_root, const char *unique, struct error *err);

/* Total size kept under N/archives (Treadmill: 1 GiB, oldest deleted first). */
#define SPROC_ARCHIVES_CAP (1024ULL * 1024 * 1024)

