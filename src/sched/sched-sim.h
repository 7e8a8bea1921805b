/* sched-sim.h: the scheduler conformance format (servers.tsv, allocations.tsv,
 * apps.tsv, placement_<pass>.tsv; docs/FORMATS.md "Scheduler") and the seeded
 * workload generator of reference/treadmill-scheduler.md §6.2.
 *
 * Works on in-memory buffers only; the caller reads and writes the files.
 * Domain layer: includes basic/ and sched/. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "../basic/error.h"
#include "sched.h"

/* The simulation clock: every server came up at this time (lease is 0 in
 * these workloads, so time only matters for data retention). */
#define SCHED_SIM_NOW 1700000000.0

/* Build a cell from the three files' contents, parsed in place (the buffers
 * are modified).  `names[3]` are the file names
 * used in error messages ("servers.tsv: line 4: field memory: ...").  On
 * error nothing is returned (no partial cell) and err is filled (ERR_PERM). */
int sched_sim_load(char *servers, char *allocations, char *apps, const char *const names[3],
		   enum sched_mode mode, struct sched_cell **ret, struct error *err);

/* The placement file: one line per app sorted by name:
 * "app\tserver-or--\tidentity-or--\n".  *ret owned by the caller. */
int sched_sim_placement(const struct sched_cell *c, char **ret, size_t *ret_len);

/* Generate the §6.2 workload: servers, apps_per_server, seed.  Returns the
 * three files' contents (owned by the caller). */
int sched_sim_generate(unsigned servers, unsigned apps_per_server, uint64_t seed, char **ret_servers,
		       char **ret_allocations, char **ret_apps);

