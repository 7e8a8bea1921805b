/* merge.h: Treadmill's `run` flags merged over a user manifest (cli/run.py).
 *
 * Domain layer (manifest module): includes basic/ only. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../basic/error.h"

struct manifest_run_flags {
	const char *memory, *cpu, *disk; /* NULL: keep the manifest's, default 100M, 10%, 100M */
	const char *service;		 /* the service a command runs as / the flags apply to; NULL: see below */
	int64_t restart_limit;		 /* < 0: not given */
	int64_t restart_interval;	 /* < 0: not given */
	const json_t *endpoints;	 /* array of {name, port} to add or replace (by name), or NULL */
	char *const *command;		 /* NULL-terminated argv, NULL or empty: none */
	const char *cell;		 /* this cell's name, for vring.cells (NULL: unknown, not checked) */
};

/* Merge run flags over the user manifest m (an object, possibly empty), in place:
 *  - with a command: it becomes the command of the service named `service` (default: basename of
 *    command[0]); a service of that name in m keeps its other fields, else it is appended with
 *    restart {limit 0, interval 60};
 *  - without a command, `service` must name a service of m (ERR_PERM otherwise);
 *  - restart_limit / restart_interval set the restart policy of that one service when a service was
 *    named or a command given, else of every service;
 *  - each endpoint replaces m's endpoint of the same name, or is appended;
 *  - memory, cpu, disk replace m's values; missing ones get Treadmill's defaults.
 * m is not validated: call manifest_validate(m, false, err) on the result. */
int manifest_merge_run(json_t *m, const struct manifest_run_flags *f, struct error *err);

/* `treadle run`'s manifest, validated before anything is written: the file's
 * (YAML or JSON; NULL: an empty one) with f merged over it, validated and
 * size-checked, appname checked (manifest_check_appname with check_user) and
 * scheduled (manifest_schedule with environment).  *ret is the scheduled
 * manifest's JSON text (manifest_dumps). */
int manifest_build_run(const char *file, const struct manifest_run_flags *f, const char *appname,
		       const char *environment, bool check_user, char **ret, struct error *err);
