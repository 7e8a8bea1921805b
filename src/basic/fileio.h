/* fileio.h: whole-file reads, atomic writes, directory helpers.
 * All fds are O_CLOEXEC.  Returns >= 0 or -errno. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "macro.h"

/* Read the whole file into a NUL-terminated buffer (*ret owned by caller). */
int read_file(const char *path, char **ret, size_t *ret_len);
int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len);
/* Create a new file (O_EXCL) holding the iovecs, fsync'd unless !sync; on
 * failure the file is removed.  The building block of the atomic writers. */
struct iovec;
int write_file_new_at(int dirfd, const char *name, const struct iovec *iov, size_t n_iov, mode_t mode, bool sync);
/* Write atomically: "<dir>/.<name>.tmpXXXXXXXX", fsync, rename over path, fsync dir. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* Same, with the file's mtime set to *mtime before it is renamed in place. */
int write_file_atomic_mtime_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			       const struct timespec *mtime);
/* The one atomic writer behind the others.  tmp: the temporary name (relative
 * to dirfd like name; NULL = "<dir>/.<name>.tmpXXXXXXXX"); mtime may be NULL.
 * Flags skip the file's and the directory's fsync for callers whose
 * durability is covered otherwise (the store's journal); a failed fsync is
 * an error (the file is in place then, its durability unknown). */
enum {
	WRITE_ATOMIC_NO_SYNC = 1 << 0,	   /* no fsync of the file before the rename */
	WRITE_ATOMIC_NO_DIR_SYNC = 1 << 1, /* no fsync of the directory after it */
};
int write_file_atomic_full_at(int dirfd, const char *name, const char *tmp, const struct iovec *iov, size_t n_iov,
			      mode_t mode, const struct timespec *mtime, unsigned flags);
/* Point the symlink name (relative to dirfd) at target atomically: a symlink
 * made under tmp (NULL = "<dir>/.<name>.tmpXXXXXXXX") is renamed over name.
 * No fsync: a caller needing durability fsyncs the directory. */
int symlink_atomic_at(const char *target, int dirfd, const char *name, const char *tmp);
/* symlink_atomic_at() for a path (tmp "<dir>/.<name>.tmpXXXXXXXX"). */
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
/* fdopendir() that owns fd either way: on failure fd is closed.  0 or -errno. */
int dir_fdopen(int fd, DIR **ret);
int dir_list(const char *path, int skip_dot, char ***ret);
int dir_list_at(int dirfd, const char *path, int skip_dot, char ***ret);
