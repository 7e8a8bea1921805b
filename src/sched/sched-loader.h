/* sched-loader.h: build a scheduler model from the cell store, the way
 * Treadmill's scheduler/loader.py load_model does (reference/treadmill-
 * scheduler.md §1.6, §2.7; store layout in docs/SCHEDULER.md "Store").
 *
 * This is the only part of src/sched that reads the store; the model
 * (sched.h) never does.  Domain layer: includes basic/, store/, sched/. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "../basic/error.h"
#include "../store/store.h"
#include "sched.h"

struct cellns_allocation;


/* Read traits, partitions, buckets (/cell, /buckets), servers (/servers,
 * /server.presence), allocations (/allocations), identity groups, apps
 * (/scheduled) and placements (/placement) into a new model.  `now` stamps
 * servers found down.  Malformed entries are skipped with a note in
 * *ret_warnings (one line each, owned by the caller, may be NULL). */
int sched_load_store(struct store *s, double now, struct sched_cell **ret, char **ret_warnings, struct error *err);


/* Treadmill's traits.encode over the trait names *names (code of names[i] =
 * 2^(i+1)): with add_new an unknown name gets the next bit (appended to
 * *names), with use_invalid bit 1 (no server has it); else it is dropped. */
uint64_t sched_loader_traits(char ***names, const json_t *list, bool add_new, bool use_invalid);

/* An assignment of /allocations: instances whose name matches `pattern` go to
 * allocation `alloc` of `partition` with `priority` (reference/treadmill-
 * scheduler.md §1.6). */
struct sched_assignment {
	char *pattern;		/* fnmatch pattern "<pattern>[#]<10 digits>" */
	char *partition;	/* "_default" when the entry has none */
	char *alloc;		/* the entry's allocation name */
	size_t entry;		/* index of the entry in the /allocations list */
	int priority;		/* default 1 */
	int id;			/* resolved allocation, SCHED_ASG_BY_NAME, or -1: skip */
};
#define SCHED_ASG_BY_NAME (-2)

/* The assignments of the /allocations entries (cellns_allocations_get):
 * every named entry's, in order (id = SCHED_ASG_BY_NAME).  -ENOMEM. */
int sched_assignments_parse(const struct cellns_allocation *allocs, size_t n_allocs, struct sched_assignment **ret,
			    size_t *ret_n);
void sched_assignments_free(struct sched_assignment *a, size_t n);
/* The allocation (created if need be) and priority of instance `name`: the
 * first matching assignment, else _default/<proid> with priority 1; a
 * manifest priority (j's "priority", not -1) wins.  Negative errno. */
int sched_assignment_match(struct sched_cell *c, const struct sched_assignment *a, size_t n, const char *name,
			   const json_t *j, int *ret_prio);

/* The spec of /scheduled/<name> from its manifest j: demand (into demand[3]),
 * affinity and limits (into lim[SCHED_LEVELS_MAX]), identity group,
 * schedule_once, retention, lease and creation order.  Strings are borrowed
 * from j; priority and traits are the caller's.  -EINVAL: bad resources. */
int sched_loader_app_spec(const char *name, const json_t *j, int64_t demand[3], struct sched_limit *lim,
			  struct sched_app_spec *ret);
