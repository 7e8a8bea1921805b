/* msched.h: the leader's scheduler model (src/sched) fed from the store.
 *
 * Treadmill's master loop (reference/treadmill-scheduler.md §4) on top of
 * the sched module: loads the model (sched_load_store), restores placements
 * after a restart (§2.7), follows /scheduled, /server.presence, /servers,
 * /events, /blackedout.servers and /running, runs sched_schedule() and
 * writes the changes to /placement (deletes before creates) with `scheduled`
 * / `pending` trace events.  The store contract is docs/MASTER.md.
 *
 * Daemon layer: includes basic/, store/, trace/, sched/. */
#pragma once

#include <stdbool.h>

#include "../basic/error.h"

struct store;
struct sched_cell;

#define MSCHED_PENDING_START_S 300.0	/* Treadmill's _check_pending_start threshold */
#define MSCHED_CHECK_INTERVAL_S 30.0	/* check_integrity timer */
#define MSCHED_COMPACT_INTERVAL_S 60.0	/* trace retention */
#define MSCHED_COMPACT_EXPIRE_S 300.0
#define MSCHED_TICK_INTERVAL_S 300.0	/* tick_reboots */
#define MSCHED_REBOOT_CHECK_INTERVAL_S 3600.0 /* check_reboot */

struct msched_options {
	const char *hostname;		/* trace source (borrowed) */
	double down_grace;		/* seconds a vanished presence keeps its server up */
	bool *wake;			/* set true by watches (may be NULL) */
	bool no_compact;		/* do not run trace retention (tests) */
};

struct msched_stats {
	size_t apps, placed, pending, changed, evictions;
	size_t unreadable;	/* /scheduled nodes skipped because the store cannot read them */
	bool full_pass, reloaded;
};

struct msched;

int msched_new(struct store *s, const struct msched_options *o, struct msched **ret);
void msched_free(struct msched *m);

/* One pass at realtime `now`: process what changed (first call: load and
 * restore), schedule, write.  Level-triggered on what the watches flagged. */
int msched_pass(struct msched *m, double now, struct msched_stats *stats, struct error *err);
/* Realtime of the next timer (retention expiry, presence grace, checks), INFINITY if none. */
double msched_next_deadline(const struct msched *m);
