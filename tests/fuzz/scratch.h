/* scratch.h: the scratch directory of a fuzzer that works on files,
 * /dev/shm/<name>.<pid> (or /tmp/...).  A fuzzer that crashed leaves its own
 * behind: those of dead processes are removed when the next one starts. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"

/* Newly allocated path of a new empty scratch dir; aborts on failure. */
static inline char *fuzz_scratch_dir(const char *name)
{
	const char *t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *prefix = strdup_printf("%s.", name);
	char *dir;

	if (!prefix)
		abort();
	if (dir_list(t, 0, &names) == 0)
		for (char **n = names; *n; n++) {
			int pid;
			if (!startswith(*n, prefix) || safe_atoi(*n + strlen(prefix), &pid) < 0 || pid <= 0 ||
			    kill(pid, 0) == 0 || errno != ESRCH)
				continue;
			_cleanup_free_ char *p = strdup_printf("%s/%s", t, *n);
			if (p)
				rm_rf(p);
		}
	dir = strdup_printf("%s/%s%d", t, prefix, (int)getpid());
	if (!dir || mkdir(dir, 0700) < 0)
		abort();
	return dir;
}
