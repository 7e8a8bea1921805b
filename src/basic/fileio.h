/* fileio.h: whole-file reads, atomic writes, directory helpers.
 * All fds are O_CLOEXEC.  Returns >= 0 or -errno. */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "macro.h"

/* Read the whole file into a NUL-terminated buffer (*ret owned by caller). */
int read_file(const char *path, char **ret, size_t *ret_len);
int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len);
/* Write atomically: "<dir>/.<name>.tmpXXXXXX", fsync, rename over path, fsync dir. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* Same, with the file's mtime set to *mtime before it is renamed in place. */
int write_file_atomic_mtime_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			       const struct timespec *mtime);
/* Point link at target atomically: symlink "<dir>/.<name>.tmp", rename over
 * link (not fsync'ed: a link lost in a crash is made again at start-up). */
int symlink_atomic(const char *target, const char *link);
/* write(2) all of data, retrying on EINTR and short writes.  0 or -errno. */
int write_all(int fd, const void *data, size_t len);
/* Write to an existing file (cgroup/proc knobs): open O_WRONLY, one write. */
int write_string_file(const char *path, const char *s);
/* Create an empty file if missing (O_CREAT, no truncation) and bump its mtime. */
int touch(const char *path);
int mkdir_p(const char *path, mode_t mode);
/* Remove a tree; does not cross mount points; missing path is success. */
int rm_rf(const char *path);
/* Sorted list of entries of dir, skipping "." ".." and, if skip_dot, names starting with '.'. */
int dir_list(const char *path, int skip_dot, char ***ret);
