/* cgroup-internal.h: what cg.c shares with its v1 and v2 backends. */
#pragma once

#include "cg.h"

struct cg_hier {
	char *name;	/* controller name(s) as mounted: "memory", "cpu,cpuacct"; "" for v2 */
	char *mount;	/* absolute mount point */
	bool has_memory, has_cpu, has_cpuacct, has_pids, has_cpuset, has_blkio, has_devices;
	int root_fd;	/* O_PATH fd of <mount>/R, opened by cg_stats() and kept; -1: not yet */
};

struct cg_backend {
	enum cg_version version;
	/* Prepare a freshly made directory dir (absolute) whose parent is parent_dir. */
	int (*init_group)(struct cg *cg, const struct cg_hier *h, const char *parent_dir, const char *dir,
			  bool existed); /* existed: made by someone else, maybe not initialised yet */
	/* Apply limits to the group at dir in hierarchy h. */
	int (*set_limits)(struct cg *cg, const struct cg_hier *h, const char *dir, const struct cg_limits *l,
			  struct error *err);
	int (*oom_fd)(struct cg *cg, const char *memdir, int *ret_fd, struct error *err);
	int (*oom_check)(struct cg *cg, const char *memdir, uint64_t *ret);
	/* Restrict the devices of the group at dir (cg_set_devices()); hierarchies
	 * without the devices controller are not passed (v1). */
	int (*set_devices)(struct cg *cg, const struct cg_hier *h, const char *dir, const struct cg_device *allow,
			   size_t n, struct error *err);
	/* Kill everything in dir at once if the kernel can (v2 cgroup.kill); -EOPNOTSUPP otherwise. */
	int (*kill)(struct cg *cg, const char *dir);
};

struct cg {
	const struct cg_backend *ops;
	char *fsroot;
	char *root_name;
	unsigned flags;
	struct cg_hier *hiers;
	size_t n_hiers;
};

extern const struct cg_backend cg_backend_v1;
extern const struct cg_backend cg_backend_v2;

/* Write s to dir/knob (created in CG_OPEN_FAKE mode). */
int cg_write_knob(const struct cg *cg, const char *dir, const char *knob, const char *s);
/* Read dir/knob into *ret (owned). */
int cg_read_knob(const char *dir, const char *knob, char **ret);
/* The value of "key value" in the flat keyed file dir/knob ("max" = UINT64_MAX); -ENOENT if absent. */
int cg_read_keyed(const char *dir, const char *knob, const char *key, uint64_t *ret);

