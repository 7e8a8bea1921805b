/* cg.h: cgroups for treadle containers, v1 (one hierarchy per controller) and
 * v2 (unified) behind one interface; the backend is chosen by cg_open().
 *
 * Domain layer: includes basic/ only.
 *
 * Layout (docs/CONTAINER.md "cgroups"), under the root name R (default
 * "treadle") in every controller used:
 *   R/apps/<unique>/sys        the node's helpers for one container: the
 *                              sproc-run parent, s6-svscan (pid 1), every
 *                              s6-supervise and s6-log.  No memory limit.
 *   R/apps/<unique>/services   the user's processes (moved there by
 *                              `treadle container exec-as`): memory, cpu,
 *                              pids and io limits apply here.
 * Siblings rather than parent/child so that v2's "no internal processes" rule
 * holds and the helpers are never charged to the app.
 *
 * Paths passed to the functions below are relative to R ("apps/<u>/services").
 * Every function returns >= 0 or a negative errno; those taking `err` fill it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../basic/error.h"

enum cg_version { CG_V1 = 1, CG_V2 = 2 };

#define CG_DEFAULT_ROOT "treadle"
#define CG_DEFAULT_FSROOT "/sys/fs/cgroup"

/* Limits applied by cg_create(); 0 means "leave unlimited / default". */
struct cg_limits {
	uint64_t memory_max;	/* bytes: v1 memory.limit_in_bytes (+memsw), v2 memory.max */
	uint64_t memory_soft;	/* bytes: v1 memory.soft_limit_in_bytes, v2 memory.low */
	unsigned cpu_percent;	/* % of one core: weight (v1 shares = pct*1024/100, v2 weight = pct)
				 * and CFS quota pct*1000us per 100000us */
	uint64_t pids_max;	/* pids.max */
	dev_t io_dev;		/* block device for the io throttles (0 = none) */
	uint64_t io_read_bps, io_write_bps; /* v1 blkio.throttle.*_bps_device, v2 io.max */
};

/* A device a group may use (docs/CONTAINER.md "Devices").  Access bits are
 * those of the v2 BPF context (BPF_DEVCG_ACC_*). */
enum { CG_DEV_MKNOD = 1, CG_DEV_READ = 2, CG_DEV_WRITE = 4 };
struct cg_device {
	char type;		/* 'c' character, 'b' block, 'a' either */
	int major, minor;	/* -1 = any */
	unsigned access;	/* CG_DEV_* */
};

/* What every container may use: null zero full random urandom tty, the
 * devpts multiplexer (5:2, /dev/pts/ptmx) and the ptys (136:*), read and
 * write; mknod of none. */
extern const struct cg_device cg_devices_container[];
extern const size_t cg_devices_container_n;

struct cg;

enum {
	CG_OPEN_FAKE = 1 << 0, /* tests: fsroot is a plain directory tree imitating
				* cgroupfs; knob files are created when written */
};

/* Open the cgroup filesystem at fsroot (NULL = /sys/fs/cgroup), detect v1 or v2
 * and choose the backend.  root_name NULL = "treadle".  *ret owned by caller. */
int cg_open(const char *fsroot, const char *root_name, unsigned flags, struct cg **ret, struct error *err);
void cg_close(struct cg *cg);
static inline void cg_closep(struct cg **cg) { if (*cg) cg_close(*cg); }
#define _cleanup_cg_ _cleanup_(cg_closep)


/* Create R/<path> (and missing parents) in every controller, apply limits
 * (NULL = none).  Idempotent: an existing group gets the limits re-applied. */
int cg_create(struct cg *cg, const char *path, const struct cg_limits *limits, struct error *err);
/* Move pid (0 = the caller) into R/<path> in every controller. */
int cg_attach(struct cg *cg, const char *path, pid_t pid, struct error *err);
/* Kill every task in R/<path> and its descendants (SIGKILL), wait for them to
 * leave and remove the groups bottom-up.  A missing group is success. */
int cg_destroy(struct cg *cg, const char *path, struct error *err);
/* Remove the whole tree R in every controller as cg_destroy() does (`cell
 * down`'s last sweep); *ret_busy (may be NULL) = groups that still held
 * processes.  A missing tree is success. */
int cg_sweep(struct cg *cg, int *ret_busy, struct error *err);
/* Deny every device to the tasks of R/<path> except allow[0..n); allow NULL
 * lifts the restriction.  Replaces the group's earlier list.  v1: the devices
 * controller ("a" to devices.deny, then one devices.allow line per entry; the
 * group must have no children); v2: a BPF_PROG_TYPE_CGROUP_DEVICE program
 * attached to the group (BPF_F_ALLOW_MULTI) and the earlier one detached.
 * Fails with EOPNOTSUPP when v1 has no devices hierarchy. */
int cg_set_devices(struct cg *cg, const char *path, const struct cg_device *allow, size_t n, struct error *err);
/* One line per entry as v1's devices.allow takes it ("c 1:3 rw"); *ret owned. */
int cg_devices_format(const struct cg_device *allow, size_t n, char **ret);
/* True if R/<path> exists (in the memory controller / unified tree). */
bool cg_exists(struct cg *cg, const char *path);

/* An fd (owned by caller, O_CLOEXEC) that polls readable (POLLIN) when the
 * memory controller of R/<path> reports an OOM event: v1 an eventfd registered
 * on memory.oom_control, v2 an inotify fd on memory.events.  Read and discard
 * what it returns, then call cg_oom_check(). */
int cg_oom_fd(struct cg *cg, const char *path, int *ret_fd, struct error *err);
/* Number of OOM kills recorded for R/<path> (v1 memory.oom_control oom_kill,
 * v2 memory.events oom_kill). */
int cg_oom_check(struct cg *cg, const char *path, uint64_t *ret_kills);

/* Absolute paths of the cgroup.procs files of R/<path> in every controller
 * (the container binds them at /run/tm_cg/ so `exec-as` can join). */
int cg_procs_files(struct cg *cg, const char *path, char ***ret);

/* What the kernel counts for R/<path>, for metrics (cg_stats()); a counter a controller does not have
 * stays 0. */
struct cg_stats {
	bool found;			/* the group exists in some hierarchy */
	uint64_t memory_bytes;		/* v1 memory.usage_in_bytes, v2 memory.current */
	uint64_t memory_limit;		/* v1 memory.limit_in_bytes, v2 memory.max; UINT64_MAX: none */
	uint64_t cpu_usec;		/* CPU time: v1 cpuacct.usage, v2 cpu.stat usage_usec */
	uint64_t cpu_periods, cpu_throttled, cpu_throttled_usec; /* CFS: cpu.stat */
	uint64_t io_read_bytes, io_write_bytes; /* v1 blkio.throttle.io_service_bytes, v2 io.stat */
	uint64_t oom_kills;		/* v1 memory.oom_control, v2 memory.events oom_kill */
};
/* Read the statistics of R/<path>: 0, -ENOENT when the group exists nowhere, -EINVAL for a path that is
 * absolute or has "..".  Each group directory is opened once and its files read relative to it, each
 * once; cg keeps an O_PATH fd of R in each hierarchy between calls (closed by cg_close()). */
int cg_stats(struct cg *cg, const char *path, struct cg_stats *ret);
