/* container.h: treadle's container runtime (Treadmill's linux runtime,
 * reference treadmill-architecture.md §1.4-§1.6, treadmill-node.md §3.4-§3.6).
 *
 * Domain layer: includes basic/ and cgroup/.
 *
 * container_run() is what `treadle sproc run` calls for one instance.  It
 * creates the cgroups, the local disk volume, the namespaces (mount, pid, uts,
 * ipc, and net unless shared_network) and the root filesystem, then makes
 * `s6-svscan /services` pid 1 of the container.  The calling process stays
 * outside as the container's parent: it forwards SIGTERM/SIGHUP/SIGINT/SIGQUIT
 * /SIGUSR1/SIGUSR2 to pid 1 and exits with its status, so from s6-supervise's
 * point of view the run script simply keeps running.  See docs/CONTAINER.md.
 *
 * Inside the container:
 *   /services          rw bind of cfg->services_dir (the s6 scan dir)
 *   /env               ro envdir: cfg->env ("TREADMILL_*" = values)
 *   CONTAINER_TREADLE  ro bind of cfg->treadle_bin
 *   /run/tm_cg/        the app cgroup's cgroup.procs files (exec-as joins them)
 *   cfg->binds         e.g. the node's control dir at /run/tm_ctl
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../basic/error.h"

/* Fixed path of the treadle binary inside every container: s6 run/finish
 * scripts call e.g. `/run/tm_bin/treadle container exec-as --user U -- CMD`. */
#define CONTAINER_TREADLE "/run/tm_bin/treadle"
/* Where the app cgroup's cgroup.procs files are bound inside the container. */
#define CONTAINER_CGROUP_DIR "/run/tm_cg"
/* Default setup timeout (ms) before the instance is aborted with `timeout`. */
#define CONTAINER_SETUP_TIMEOUT_MS 60000

struct container_bind {
	const char *source;	/* host path (file or dir) */
	const char *target;	/* absolute path inside the container */
	bool readonly;
};

struct container_config {
	const char *container_dir;	/* R/node/apps/<unique_name>: data/ under it */
	const char *services_dir;	/* s6 scan dir; NULL = <container_dir>/data/services */
	const char *instance;		/* "proid.app#0000000042" */
	const char *unique_name;	/* "proid.app-0000000042-<uniqueid>" (cgroup, volume names) */
	const char *uniqueid;		/* 13 chars */
	const char *hostname;		/* uts hostname; NULL = uniqueid */
	const char *proid;		/* user the services run as */
	bool root;			/* services may run as root: skip the proid check */
	uint64_t memory_bytes;		/* hard limit, 0 = none */
	uint64_t memory_soft_bytes;	/* soft limit, 0 = same as memory_bytes */
	unsigned cpu_percent;		/* % of one core, 0 = unlimited */
	uint64_t pids_max;		/* 0 = unlimited */
	uint64_t disk_bytes;		/* local volume size, 0 = tmpfs root (no volume) */
	uint64_t disk_read_bps, disk_write_bps; /* per-node io throttles, 0 = none */
	const char *image;		/* NULL/"native" = native; "file://..." or "http://..." tar (?sha256=) */
	bool shared_network;		/* share the host's network namespace */
	char *const *env;		/* "NAME=value" strings for /env, NULL-terminated (may be NULL) */
	const char *node_root;		/* node root: images/ and volumes/ live under it */
	const char *cgroup_root;	/* cgroup root name, NULL = "treadle" */
	const char *cgroup_fsroot;	/* NULL = /sys/fs/cgroup */
	const struct container_bind *binds;
	size_t n_binds;
	const char *treadle_bin;	/* host path of the treadle binary, NULL = /proc/self/exe */
	uint64_t setup_timeout_ms;	/* 0 = CONTAINER_SETUP_TIMEOUT_MS */
	/* Called in the parent right after the clone, with an fd of the
	 * container's network namespace, while the child prepares its root and
	 * waits for it before it execs pid 1 (NULL: none).  A failure aborts the
	 * container with reason CONTAINER_ABORT_NETWORK. */
	int (*net_setup)(void *ud, int netns_fd, struct error *err);
	void *net_ud;
	/* The host's address, for a private network: in the container's
	 * /etc/hosts the names the host maps to a loopback address (its own
	 * name on 127.0.1.1) map to it instead, so `<hostname>:<real_port>`
	 * reaches the endpoint from inside (NULL: a plain copy). */
	const char *hosts_host_ip;
};

/* Run the container.  Never returns on success: the caller's process becomes
 * the container's parent and _exit()s with pid 1's status (128+signal when it
 * was killed).  On a setup failure it writes <container_dir>/data/aborted
 * ({"why": reason, "payload": message}, Treadmill's format; reasons `image`,
 * `pid1`, `timeout`, `proid`, `disk`, `unknown`), tears down what it created
 * and returns < 0 with err set: the caller reports err and exits non-zero. */
int container_run(const struct container_config *cfg, struct error *err);

/* Release what container_run() left on the host for <unique_name>: kill and
 * remove its cgroups, detach its loop device if still attached, delete its
 * volume image.  Idempotent; for the node's cleanup. */
int container_cleanup(const char *node_root, const char *cgroup_root, const char *unique_name,
		      struct error *err);

/* Detach every loop device backed by a file under dir (`cell down`'s last
 * sweep of a cell root); returns how many. */
int container_loops_release(const char *dir);

/* Abort reasons (Treadmill's AppAbortedReason values plus `proid`, `disk`). */
#define CONTAINER_ABORT_IMAGE "image"
#define CONTAINER_ABORT_PID1 "pid1"
#define CONTAINER_ABORT_TIMEOUT "timeout"
#define CONTAINER_ABORT_PROID "proid"
#define CONTAINER_ABORT_DISK "disk"
#define CONTAINER_ABORT_UNKNOWN "unknown"
#define CONTAINER_ABORT_NETWORK "network"

/* `exec-as`: what a service's run script execs inside the container.  Joins
 * the app cgroup (CONTAINER_CGROUP_DIR), then unless as_root: switches to
 * `user` (initgroups, setgid, setuid), empties the capability bounding set,
 * sets no_new_privs; installs the default seccomp filter; execvp(argv).
 * Returns only on failure. */
int container_exec_as(const char *user, bool as_root, char *const *argv, struct error *err);

/* `treadle exec`: run argv (NULL = the user's login shell) in the namespaces and
 * root of the container whose parent dir is container_dir, as `user`
 * (NULL = the proid recorded at start) through exec-as.  Returns the command's
 * exit status (128+signal), or < 0 with err set. */
int container_exec(const char *container_dir, const char *user, bool as_root, char *const *argv,
		   struct error *err);

/* Load an s6 envdir into the environment (first line of each file; an empty
 * file unsets the variable). */
int container_load_envdir(const char *dir, struct error *err);
