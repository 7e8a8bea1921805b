/* node-internal.h: what the files of the node agent (agent*.c) and of the
 * sproc commands (sproc*.c) share; not for use outside src/node/. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>

#include "../basic/error.h"
#include "../cgroup/cg.h"
#include "../net/net.h"
#include "../store/store.h"
#include "agent.h"
#include "layout.h"
#include "sproc.h"

/* ---- sproc ---- */

#define SERVICE_LOG_RUN "#!/bin/sh\nexec s6-log -b n20 s1000000 ../data/log\n"
#define CONTAINER_LOG_RUN "#!/bin/sh\nexec s6-log -b n20 s1000000 T ../data/log\n"

static inline bool path_exists(const char *p)
{
	struct stat st;

	return p && lstat(p, &st) == 0;
}

/* sproc-services.c */
const char *sproc_jstr(const json_t *o, const char *k);
long long sproc_jint(const json_t *o, const char *k, long long dflt);
bool sproc_service_name_ok(const char *s);

/* sproc-check.c: readiness checks (docs/NODE.md "Readiness checks") */
#define SPROC_READY_REL "data/ready" /* <endpoint>: "up" or "down", for the discovery publisher */
/* data/ready emptied, then "down" for every endpoint a check gates; *ret_any: a service has a check. */
int sproc_ready_prepare(const char *cdir, const json_t *app, bool *ret_any);
/* The system services treadle adds to data/services beside the manifest's (check@<svc> per checked
 * service); one function, so other generators join here. */
int sproc_system_services_write(const char *cdir, const json_t *app, struct error *err);

/* sproc-aliases.c, sproc-preload.c: host aliases and the bind preload (docs/CONTAINER.md) */
#define SPROC_ALIASES_REL "data/overlay/run/host-aliases"
#define SPROC_PRELOAD_REL "data/overlay/etc/ld.so.preload"
#define SPROC_PRELOAD_IN "/run/tm_bin/treadle-bind.so" /* where the library is bound in the container */
/* data/overlay/run/host-aliases made (owned by the proid), and the host-side `sproc host-aliases`
 * started as a child that dies with this process (PR_SET_PDEATHSIG). */
int sproc_aliases_prepare(const struct node_settings *ns, const json_t *app, const char *cdir, struct error *err);
/* The library's host path (<treadle's dir>/../lib/treadle-bind.so) and data/overlay/etc/ld.so.preload
 * (the host's entries + the library); *ret_so NULL when the library is not installed. */
int sproc_preload_prepare(const struct node_settings *ns, const char *cdir, char **ret_so, struct error *err);

/* sproc-hooks.c: the hooks of N/node.json "hooks" (docs/HOOKS.md).  What they
 * add to a container, owned here: services (app.json service objects,
 * appended to the manifest's before the service dirs are written), env
 * ("NAME=value", into /env) and binds (host path -> path in its root). */
struct container_bind;
struct sproc_hooks {
	json_t *services;
	char **env;
	struct container_bind *binds;
	size_t n_binds;
	bool krb_ready; /* data/krb prepared (the Kerberos hooks share it) */
};
/* Run each hook's configure in order (cwd-independent: cdir absolute); on
 * failure *ret_why is the abort reason (e.g. "tickets", "keytabs"). */
int sproc_hooks_configure(const struct node_settings *ns, const char *cdir, const json_t *app, struct sproc_hooks *h,
			  const char **ret_why, struct error *err);
void sproc_hooks_clear(struct sproc_hooks *h);
/* sproc cleanup: each hook's cleanup (credentials removed before the archive). */
void sproc_hooks_cleanup(const struct node_settings *ns, const char *cdir);

/* sproc-net.c: a container's network (docs/NETWORK.md "Use by the node") */
#define SPROC_NET_RECORD_REL "data/network.json" /* its firewall record (net_record_format) */
#define SPROC_NET_VIPS_DIR "network/vips"	 /* under N: the VIP records (net_vip_*) */
#define SPROC_NET_BLACKOUT "network/blackout"	 /* under N: exists while the server is blacked out */
#define SPROC_NET_LOCK "network/lock"		 /* under N: flock'd around every record + kernel change */
#define SPROC_NET_VRING_REL "data/vring.json"	 /* its vring mappings (net_vring_record_format), by the agent */
struct sproc_net {
	bool on;	     /* the node has a network and this container takes part */
	bool shared_network; /* the host's netns: no VIP, no rules */
	enum net_mode mode;
	struct net_config cfg; /* borrows from the node_settings */
	struct in_addr vip;
	char veth[16]; /* host end: "tv" + uniqueid */
};
char *sproc_net_vips_dir(const char *root);
/* The node's network lock (N/network/lock, flock, blocking; a SIGKILL releases it),
 * held by sproc around VIP allocation, record + element add and cleanup, and by
 * the agent around its VIP reconcile + rebuild and blackout.  fd or -errno. */
int sproc_net_lock(const char *root);
void sproc_net_unlock(int *fd);
/* <cdir>/data/vring.json when it holds vip's mappings: 1 and *ret (free()), 0 if
 * missing or another VIP's, < 0 if unreadable or bad. */
int sproc_net_vring_load(const char *cdir, struct in_addr vip, struct net_vring_map **ret, size_t *ret_n);
/* Under the lock: the table replaced by the rules of the records of every
 * container dir under N/apps (bad records passed to warn and skipped), blackout
 * applied; the records handed back if ret_recs (free each, then the array). */
int sproc_net_rebuild(const char *root, const struct net_config *cfg, bool blackout, void (*warn)(const char *msg),
		      struct net_record ***ret_recs, size_t *ret_n, struct error *err);
/* sproc run, before the ports: the VIP, app.json "network" and "vip". */
int sproc_net_prepare(const struct node_settings *ns, json_t *app, const char *unique, struct sproc_net *st,
		      struct error *err);
/* sproc run, after the ports (cwd = container dir): record written, firewall elements added. */
int sproc_net_commit(const struct node_settings *ns, const json_t *app, const char *unique, struct sproc_net *st,
		     struct error *err);
/* container_config.net_setup: the veth into the container's netns, addresses, routes. */
int sproc_net_setup(void *ud, int netns_fd, struct error *err);
/* TREADMILL_HOST_IP, _CONTAINER_IP, _GATEWAY_IP, _SERVICE_IP (shared_ip). */
int sproc_net_env(const struct node_settings *ns, const struct sproc_net *st, char ***env);
/* sproc cleanup: firewall elements removed, veth deleted, VIP released (conntrack
 * flushed), record removed.  Idempotent. */
int sproc_net_cleanup(const struct node_settings *ns, const char *cdir, const char *unique, struct error *err);

/* ---- agent ---- */

extern char **environ;

#define TICK_MS 500
#define MAX_CLEANUPS 8
#define CLEANUP_RETRY_MS 2000
#define SVSCAN_WAIT_MS 5000 /* at start, for the s6-svscan of N/running (started beside us) */
#define RELEASED_REL "data/released" /* a container stopped by N/stop "release" */
#define DISCOVERY_SCAN_MS 5000		    /* the periodic endpoint state scan (docs/NODE.md) */
#define DISCOVERY_FAST_MS 10000		    /* after a container starts: a scan every tick */

/* What N/stop (written by `treadle cell down`) asks for. */
enum drain {
	DRAIN_NONE,
	DRAIN_FINISH,  /* "finish": containers stopped on purpose, their instances finish */
	DRAIN_RELEASE, /* "release": containers stopped, no terminal event: their instances stay scheduled */
};

enum { TAG_STORE = 1, TAG_SIGNAL, TAG_INOTIFY, TAG_TIMER, TAG_MAX_ };

struct cont {
	char *unique;
	char *instance;
	bool running;	    /* linked from running/ */
	bool started;	    /* its services started (data/started) */
	bool published;	    /* /running/<instance> created by this session */
	char **endpoints;   /* /endpoints/... nodes published with it */
	bool timed_out;
	double configured_at; /* realtime, data/app.json mtime */
	int oom_fd;
	bool oom_tried;
	pid_t cleanup_pid;
	uint64_t retry_at; /* monotonic ms */
	int wd_ctl[2];	   /* inotify on its spool dirs (appevents, tombstones) */
	bool d_ctl;
	struct cont_disc *disc; /* agent-discovery.c's cache of its endpoints and pid 1 */
	char *id_group;		/* /identity-groups/<id_group>/<identity> held (published) */
	int identity;
	bool id_waiting;	/* the identity is still another instance's (logged once) */
};

struct agent {
	const struct node_agent_options *o;
	struct node_settings ns;
	struct store *store;
	struct cg *cg; /* for OOM notifications; NULL if cgroups are unusable */
	int epfd, sigfd, inofd, tfd, lockfd;
	int wd_cache, wd_tr, wd_ts, wd_ev, wd_cleanup;
	bool d_placement, d_cache, d_tomb, d_cleanup, d_events, d_ctl;
	bool first_placement_sync, ready, placement_ok, presence_ok, stop, expired, blackout_logged;
	int last_list_err; /* last error listing our placements (0: none), to log each outage once */
	bool placement_retry; /* a placement could not be cached (disk full...): sync again on the tick */
	int last_cache_err;
	bool blackedout; /* /blackedout.servers/<host> exists: no presence, but placements still mirrored (removals stop apps) */
	struct cont **conts;
	size_t n_conts;
	unsigned n_cleanups;
	enum drain drain; /* N/stop: stop every container, start none */
	char *p_cache, *p_apps, *p_running, *p_cleanup, *p_tr, *p_ts, *p_ev, *p_archives, *p_ready, *p_stop;
	double started_at; /* realtime */
	double lease_next; /* realtime of the next watchdog lease renewal (watchdog.h) */
	/* the container network (agent-net.c); a->ns.net_* point into these */
	bool net_on, net_blackout;
	struct net_config net;
	char net_bridge[16], net_table[32], net_range[24], net_gateway[16], net_ext_ip[16];
	/* discovery (agent-discovery.c): the texts last published, the scan's clock */
	bool d_discovery, disc_retry, disc_full; /* disc_full: every container's sockets scanned again */
	char *disc_list, *disc_state;
	uint64_t disc_next_scan, disc_fast_until; /* monotonic ms */
	bool d_vring;		 /* the vring's inputs changed (agent-vring.c) */
	struct vring_state *vring; /* agent-vring.c's, NULL until its first sync */
};


#define LOG(fmt, ...) fprintf(stderr, "treadle node: " fmt "\n", ##__VA_ARGS__)

static inline bool exists(const char *p)
{
	return path_exists(p);
}

/* agent-conts.c */
struct cont *agent_cont_find(struct agent *a, const char *unique);
struct cont *agent_cont_get(struct agent *a, const char *unique);
void agent_cont_close_oom(struct agent *a, struct cont *c);
void agent_cont_watch(struct agent *a, struct cont *c);
void agent_ctl_sync(struct agent *a);
void agent_cont_remove(struct agent *a, struct cont *c);
void agent_running_unpublish(struct agent *a, struct cont *c);
void agent_running_publish(struct agent *a, struct cont *c);
void agent_placement_watch(struct store *s, enum store_event ev, const char *path, void *ud);
void agent_session_watch(struct store *s, enum store_event ev, const char *path, void *ud);
int agent_register_server(struct agent *a, struct error *err);
void agent_presence_ensure(struct agent *a);

/* agent-eventmgr.c */
void agent_eventmgr_sync(struct agent *a);

/* agent-appcfg.c */
int agent_to_cleanup(struct agent *a, const char *inst, const char *unique);
void agent_appcfg_sync(struct agent *a);

/* agent-monitor.c */
void agent_monitor_sync(struct agent *a);

/* agent-cleanup.c */
void agent_cleanup_sync(struct agent *a);
void agent_reap(struct agent *a);

/* agent-net.c: at start, after the agent's lock: range, bridge, VIP reconcile,
 * table rebuilt from the records, leaked veths removed.  0 also when the node
 * has no network (no external interface, --network none). */
int agent_net_init(struct agent *a, struct error *err);
/* Blackout of this server on or off (remembered in N/network/blackout for rebuilds). */
void agent_net_blackout(struct agent *a, bool on);

/* agent-discovery.c: /discovery/<host>, /discovery.state/<host> (synced when
 * d_discovery), identity presence (with /running, by agent-conts.c) */
void agent_discovery_sync(struct agent *a);
void agent_discovery_tick(struct agent *a);    /* from tick(): marks d_discovery when a scan is due */
void agent_discovery_changed(struct agent *a); /* a container started or stopped */
void agent_discovery_reset(struct agent *a);   /* a new store session: everything published again */
void agent_discovery_forget(struct cont *c);
/* 0 held (or nothing to hold), -EBUSY still another instance's, -errno */
int agent_identity_publish(struct agent *a, struct cont *c);
void agent_identity_unpublish(struct agent *a, struct cont *c);
/* agent-vring.c: the node's one vring watcher (docs/NETWORK.md "vring"): the
 * mappings of every running container with vring rules, from /endpoints
 * (store watches set a->d_vring), applied as net_vring_change under the lock. */
void agent_vring_sync(struct agent *a);
void agent_vring_free(struct agent *a);

/* agent-publisher.c */
void agent_publisher_sync(struct agent *a);
