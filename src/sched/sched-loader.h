/* sched-loader.h: build a scheduler model from the cell store, the way
 * Treadmill's scheduler/loader.py load_model does (reference/treadmill-
 * scheduler.md §1.6, §2.7; store layout in docs/SCHEDULER.md "Store").
 *
 * This is the only part of src/sched that reads the store; the model
 * (sched.h) never does.  Domain layer: includes basic/, store/, sched/. */
#pragma once

#include <jansson.h>

#include "../basic/error.h"
#include "../store/store.h"
#include "sched.h"

/* The cell's scheduler mode from /scheduler {"mode": "compatible"|"improved"}
 * (absent: improved, the default for new cells). */
enum sched_mode sched_load_mode(struct store *s);

/* Read traits, partitions, buckets (/cell, /buckets), servers (/servers,
 * /server.presence), allocations (/allocations), identity groups, apps
 * (/scheduled) and placements (/placement) into a new model.  `now` stamps
 * servers found down.  Malformed entries are skipped with a note in
 * *ret_warnings (one line each, owned by the caller, may be NULL). */
int sched_load_store(struct store *s, double now, struct sched_cell **ret, char **ret_warnings, struct error *err);

/* Resource vector [memory MB, cpu %, disk MB] of a JSON object's "memory",
 * "cpu", "disk" ("1G" or MB numbers, "150%" or numbers); absent keys get
 * `missing`.  -EINVAL on a malformed value. */
int sched_loader_resources(const json_t *o, int64_t missing, int64_t ret[3]);
