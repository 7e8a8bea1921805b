/* cgroup-test.h: helpers shared by test-cgroup.c (v1) and test-cgroup-v2.c.
 * Header-only, included once per test program after cmocka.h and cg.h. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/cgroup/cg.h"
#include "../../src/cgroup/cgroup-internal.h"

/* The real cgroups under fsroot (NULL = the host's) with root R: NULL when
 * not root or not of version v (the caller skips). */
static inline struct cg *cgt_open(const char *fsroot, const char *root, enum cg_version v)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;

	if (geteuid() != 0 || cg_open(fsroot, root, 0, &cg, &err) < 0) {
		error_clear(&err);
		return NULL;
	}
	if (cg->ops->version != v) {
		cg_close(cg);
		return NULL;
	}
	return cg;
}

/* cgt_open of the cgroup2 mount with a root unique to this process (root: 64 bytes). */
static inline struct cg *cgt_open_unified(const char *prefix, char *root)
{
	snprintf(root, 64, "%s-%d", prefix, (int)getpid());
	return cgt_open("/sys/fs/cgroup/unified", root, CG_V2);
}

/* The text of file <dir>/<rel> (owned), NULL if unreadable; with `line`, only its first line. */
static inline char *cgt_read(const char *dir, const char *rel, bool line)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, rel);
	char *t = NULL;

	if (!p || read_file(p, &t, NULL) < 0)
		return NULL;
	if (line)
		t[strcspn(t, "\n")] = 0;
	return t;
}

/* Number of pids in R/<path> (its first cgroup.procs file), -1 if unreadable. */
static inline int cgt_count_procs(struct cg *cg, const char *path)
{
	_cleanup_strv_free_ char **files = NULL;
	_cleanup_free_ char *text = NULL;
	int n = 0;

	if (cg_procs_files(cg, path, &files) < 0 || !files || !files[0] || read_file(files[0], &text, NULL) < 0)
		return -1;
	for (char *s = text; *s; s++)
		n += *s == '\n';
	return n;
}

/* Wait (up to 1 s) until R/<path> holds n processes. */
static inline void cgt_wait_procs(struct cg *cg, const char *path, int n)
{
	for (int i = 0; i < 200 && cgt_count_procs(cg, path) != n; i++)
		usleep(5000);
}

/* In a child moved into R/<path>: bit 0 /dev/null does not open read-write,
 * bit 1 /dev/kmsg is not refused with EPERM, bit 2 /dev/zero is not refused,
 * bit 3 mknod of a null device is not refused with EPERM. */
static inline int cgt_devices_verdict(struct cg *cg, const char *path)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		struct error e = ERROR_INIT;
		char node[64];
		int fd, r = 0;
		if (cg_attach(cg, path, 0, &e) < 0)
			_exit(100);
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		r |= fd < 0 ? 1 : 0;
		fd = open("/dev/kmsg", O_RDONLY | O_CLOEXEC);
		r |= fd >= 0 || errno != EPERM ? 2 : 0;
		fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		r |= fd >= 0 || errno != EPERM ? 4 : 0;
		snprintf(node, sizeof(node), "/tmp/treadle-ut-null-%d", (int)getpid());
		if (mknod(node, S_IFCHR | 0600, makedev(1, 3)) == 0) {
			unlink(node);
			r |= 8;
		} else if (errno != EPERM)
			r |= 8;
		_exit(r);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}
