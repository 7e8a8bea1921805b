/* container-internal.h: what the container module's files share. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../basic/error.h"
#include "../cgroup/cg.h"
#include "container.h"

/* Setup failure: reason (CONTAINER_ABORT_*) plus err. */
struct setup_error {
	const char *why;
	struct error err;
};

/* What the parent prepared for the child that builds the root. */
struct container_ctx {
	const struct container_config *cfg;
	char *data_dir;		/* <container_dir>/data */
	char *services_dir;
	char *vol_dir;		/* data/vol: volume (or tmpfs) mount point */
	char *root_dir;		/* data/root: the container's root */
	char *image_rootfs;	/* tar image cache dir (lower layer), NULL = native */
	char *loop_dev;		/* /dev/loopN or NULL */
	char *treadle_bin;
	char **cg_procs;	/* cgroup.procs files of the app cgroup */
	char *mask_file;	/* data/overlay/empty: bound over host secret files */
	char *mask_dir;		/* data/overlay/empty.d: ... and secret directories */
	int loop_fd;
	uint64_t start_unix_us;	/* CLOCK_REALTIME at container_run entry (container.json, benchmarks) */
};

/* rootfs.c: in the child (new mount/pid/uts/ipc[/net] namespaces): build the
 * root and pivot into it. */
int rootfs_setup(const struct container_ctx *c, struct error *err);
/* Write the files the root binds from data/: env/, overlay/etc/{hosts,resolv.conf},
 * the empty masks overlay/empty and overlay/empty.d. */
int rootfs_prepare_data(const struct container_ctx *c, struct error *err);

/* Atomic (temporary file + rename) but not fsync'd: for files that every
 * container start rewrites (env/, overlay/, container.json). */
int container_write_file(const char *path, const void *data, size_t len);

/* image.c: tar image cache.  Returns in *ret the unpacked rootfs dir in
 * <node_root>/images/tar/<key>/rootfs, fetching and unpacking it once.  An
 * HTTP fetch longer than timeout_ms fails with err->errnum = ETIMEDOUT. */
int image_get(const char *node_root, const char *url, uint64_t timeout_ms, char **ret, struct error *err);

/* volume.c: <node_root>/volumes/<unique>.img, ext4, attached to a loop
 * device with autoclear; *ret_fd keeps it attached until mounted. */
int volume_attach(const char *node_root, const char *unique, uint64_t bytes, char **ret_dev, int *ret_fd,
		  dev_t *ret_devnum, struct error *err);
int volume_release(const char *node_root, const char *unique, struct error *err);
/* Whether volume_attach would spawn mkfs.ext4 (no volume of that size, no template yet). */
bool volume_needs_mkfs(const char *node_root, const char *unique, uint64_t bytes);


/* sha256.c */
struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t n;
};
void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);
void sha256_hex(const uint8_t d[32], char out[65]);
