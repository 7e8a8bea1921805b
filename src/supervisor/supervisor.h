/* supervisor.h: s6 service dirs, scan dirs, Treadmill's restart policy and
 * tombstones, and s6 control without forking (the supervise/control FIFOs).
 *
 * Domain layer: includes basic/ only.  Formats in docs/FORMATS.md ("Service
 * dir", "Restart policy"); reference treadmill-architecture.md §1.7, §1.10.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <sys/types.h>

/* Write a file atomically (temporary ".<name>.tmpXXXXXX" + rename) but not
 * durably: no fsync.  For files that are rewritten or regenerated after a
 * crash (service dirs, exit histories, spool files): an fsync costs ~10 ms
 * here, and a node that loses power restarts its containers anyway.
 * 0 or -errno. */
int sv_write_file(const char *path, const void *data, size_t len, mode_t mode);

/* One exit of a supervised process, as s6 reports it to finish: rc is the
 * exit code, or 256 when killed by signal sig (sig 0 otherwise). */
struct sv_exit {
	double ts; /* epoch seconds */
	int rc;
	int sig;
};

/* "%014.3f,%03d,%03d" of an exit (Treadmill's EXITINFO); malloc'ed. */
char *sv_exit_format(const struct sv_exit *e);
/* Parse one "ts,rc,sig" line (no newline).  0 or -EINVAL. */
int sv_exit_parse(const char *line, struct sv_exit *ret);

enum sv_verdict {
	SV_RESTART, /* finish exits 0: s6 restarts the service */
	SV_FATAL,   /* tombstone + finish exits 125: the service stays down */
};

/* The restart policy of Treadmill's s6.finish, as a pure function.
 *   log:   current content of data/exits/log (NULL or "" if none); lines that
 *          do not parse are ignored;
 *   now:   this exit;  limit, interval: the service's restart policy.
 * limit == 0: SV_FATAL, *ret_log = NULL (the log is not used).
 * Otherwise the exit is appended; with n lines now, n <= limit -> SV_RESTART;
 * else oldest = first line's ts, only the last `limit` lines are kept, and
 * now->ts - oldest >= interval -> SV_RESTART, else SV_FATAL.
 * *ret_log (malloc'ed) is the new file content.  Returns the verdict or
 * -ENOMEM. */
int sv_policy_decide(const char *log, const struct sv_exit *now, unsigned limit, unsigned interval,
		     char **ret_log);
/* The same on a file (missing = empty), which is rewritten atomically. */
int sv_policy_apply(const char *exits_log_path, const struct sv_exit *now, unsigned limit, unsigned interval);

/* Parse with rsplit(',', 3); *ret_id malloc'ed (may contain commas).
 * 0 or -EINVAL / -ENOMEM. */
int sv_tombstone_parse(const char *name, char **ret_id, struct sv_exit *ret);
/* Create the empty tombstone file dir/<name> (atomically). */
int sv_tombstone_write(const char *dir, const char *id, const struct sv_exit *e);

/* A longrun service dir.  Strings are script bodies written verbatim with
 * mode 0755; NULL = file not written. */
struct sv_service_spec {
	const char *run;
	const char *finish;
	const char *log_run;	 /* log/run: a logger subservice */
	int notification_fd;	 /* < 0: none */
	int timeout_finish_ms;	 /* < 0: s6 default */
	bool down;		 /* write `down` */
	char *const *env;	 /* "NAME=VALUE" list written to env/ (envdir), may be NULL */
};

/* Create dir (and parents) and write the service files; idempotent (files
 * are replaced atomically, a stale `down` is removed).  0 or -errno. */
int sv_service_write(const char *dir, const struct sv_service_spec *spec);

/* Apply an envdir to the current environment (setenv; empty file = unset). */
int sv_envdir_apply(const char *dir);

/* Send s6-svc commands (e.g. "d", "u", "x", "k", "dx") by writing to
 * dir/supervise/control.  -ENXIO if no s6-supervise is running for dir
 * (s6-svc's exit 100), -ENOENT if it was never supervised. */
int sv_control(const char *dir, const char *cmds);
/* s6-svscanctl: write cmds (e.g. "an") to scandir/.s6-svscan/control. */
int sv_svscan_control(const char *scandir, const char *cmds);
/* s6-svok: is an s6-supervise running for dir? */
bool sv_is_supervised(const char *dir);
/* s6-svstat: is the service process up (supervise/status)?  1 up, 0 down,
 * -errno if unknown (not supervised yet, unreadable). */
int sv_is_up(const char *dir);

/* supervise/status decoded. */
struct sv_status {
	bool up;      /* the service process runs (s6-svstat's "up") */
	pid_t pid;    /* its pid, 0 if down */
	double since; /* epoch seconds of the last up/down change (0 unknown) */
};
int sv_status(const char *dir, struct sv_status *ret);

/* Wait until no s6-supervise runs for dir, at most timeout_ms: waits on the
 * service's event fifodir (s6-ftrig-listen's FIFO; s6-supervise's 'x' event)
 * and on supervise/lock, which s6-supervise holds locked while it lives; no polling.
 * 0 when none runs (or dir was never supervised), -ETIMEDOUT, or -errno. */
int sv_wait_unsupervised(const char *dir, int timeout_ms);

/* Wait until an s6-svscan reads scandir/.s6-svscan/control, at most
 * timeout_ms (inotify on the scan dir).  0, -ETIMEDOUT or -errno. */
int sv_svscan_wait(const char *scandir, int timeout_ms);