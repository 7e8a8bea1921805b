/* master.h: the cell master: leader election, root namespace, placement loop.
 *
 * Daemon layer: includes basic/, store/, trace/, manifest/.
 *
 * Several masters may run against one store; they elect a leader with
 * ephemeral sequential nodes under /election/master (lowest wins, each standby
 * watches its predecessor).  The leader creates the root namespace, watches
 * /scheduled, /servers, /server.presence and /placement, and writes
 * /placement/<server>/<instance> for every instance it can place, posting
 * `scheduled` / `pending` / `deleted` trace events as Treadmill's master does.
 */
#pragma once

#include "../basic/error.h"

struct store;

struct master_options {
	const char *store_url;	/* required */
	const char *cell;	/* cell name, may be NULL */
	const char *hostname;	/* trace source; NULL = gethostname() */
	double server_down_grace; /* seconds; < 0 = MASTER_DOWN_GRACE_DEFAULT */
	int session_timeout_ms;	  /* ZooKeeper session; 0 = MASTER_SESSION_TIMEOUT_MS */
	const char *metrics_file; /* Prometheus text (docs/API.md "Metrics") rewritten after each pass and
				   * election change; NULL: none */
};

#define MASTER_DOWN_GRACE_DEFAULT 10.0
/* A dead leader is replaced when its session expires: short, for failover
 * within 5 s (docs/MASTER.md "Session timeouts"); $TREADLE_ZK_SESSION_TIMEOUT
 * overrides it. */
#define MASTER_SESSION_TIMEOUT_MS 3000

/* Run until SIGTERM/SIGINT (returns 0) or a fatal error (fills err).  Blocks
 * SIGTERM/SIGINT/SIGPIPE and takes them through a signalfd. */
int master_run(const struct master_options *opts, struct error *err);
