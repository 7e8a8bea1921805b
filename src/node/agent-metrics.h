/* agent-metrics.h: the node agent's loop latency, for `treadle api`'s /metrics (docs/API.md "Metrics").
 *
 * The agent calls agent_loop_woke() when epoll_wait returns and agent_loop_done() when its work is done and
 * it waits again; the time between the two (how long an event waits to be handled, once seen) goes into a
 * histogram that is written, at most once a second, to N/agent-metrics.prom (Prometheus text, replaced
 * atomically by a rename; not fsynced: it is a gauge of now, not a record).  The API appends the file. */
#pragma once

#include <stdint.h>

#define AGENT_METRICS_FILE "agent-metrics.prom"
#define AGENT_LOOP_BUCKETS 10

struct agent_loop_metrics {
	uint64_t woke_us;      /* 0: not in a round */
	uint64_t last_write_ms;
	uint64_t rounds;
	double sum_s, last_s, max_s;
	uint64_t buckets[AGENT_LOOP_BUCKETS]; /* cumulative counts come at write time */
};

void agent_loop_woke(struct agent_loop_metrics *m);
/* root: the node root N (the file's directory). */
void agent_loop_done(struct agent_loop_metrics *m, const char *root);
