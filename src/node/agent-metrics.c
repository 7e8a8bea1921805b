/* agent-metrics.c: the node agent's loop latency histogram, written to N/agent-metrics.prom
 * (agent-metrics.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "agent-metrics.h"

static const double bounds[AGENT_LOOP_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 5 };

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void agent_loop_woke(struct agent_loop_metrics *m)
{
	if (!m->woke_us)
		m->woke_us = now_us();
}

static void metrics_write(const struct agent_loop_metrics *m, const char *root)
{
	_cleanup_free_ char *path = strdup_printf("%s/" AGENT_METRICS_FILE, root), *tmp = NULL, *text = NULL;
	size_t len = 0, k = 0;
	FILE *f;
	int fd;

	if (!path || !(tmp = strdup_printf("%s/.%s.tmp", root, AGENT_METRICS_FILE)))
		return;
	f = open_memstream(&text, &len);
	if (!f)
		return;
	fprintf(f, "# HELP treadle_node_agent_loop_seconds Time the node agent's loop takes to handle what woke it.\n"
		   "# TYPE treadle_node_agent_loop_seconds histogram\n");
	for (size_t i = 0; i < AGENT_LOOP_BUCKETS; i++) {
		k += m->buckets[i];
		fprintf(f, "treadle_node_agent_loop_seconds_bucket{le=\"%g\"} %llu\n", bounds[i], (unsigned long long)k);
	}
	fprintf(f, "treadle_node_agent_loop_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)m->rounds);
	fprintf(f, "treadle_node_agent_loop_seconds_sum %.6f\ntreadle_node_agent_loop_seconds_count %llu\n", m->sum_s,
		(unsigned long long)m->rounds);
	fprintf(f, "# HELP treadle_node_agent_loop_last_seconds The node agent's last loop round.\n"
		   "# TYPE treadle_node_agent_loop_last_seconds gauge\ntreadle_node_agent_loop_last_seconds %.6f\n",
		m->last_s);
	fprintf(f, "# HELP treadle_node_agent_loop_max_seconds The node agent's longest loop round since it started.\n"
		   "# TYPE treadle_node_agent_loop_max_seconds gauge\ntreadle_node_agent_loop_max_seconds %.6f\n",
		m->max_s);
	fprintf(f, "# HELP treadle_node_agent_metrics_written_seconds When the node agent wrote these (Unix time).\n"
		   "# TYPE treadle_node_agent_metrics_written_seconds gauge\n"
		   "treadle_node_agent_metrics_written_seconds %.3f\n",
		now_realtime());
	if (fclose(f) != 0 || !text)
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int w = write_all(fd, text, len);

	if (close(fd) < 0 || w < 0 || rename(tmp, path) < 0)
		unlink(tmp);
}

void agent_loop_done(struct agent_loop_metrics *m, const char *root)
{
	double s;
	size_t i;

	if (!m->woke_us)
		return;
	s = (double)(now_us() - m->woke_us) / 1e6;
	m->woke_us = 0;
	m->rounds++;
	m->sum_s += s;
	m->last_s = s;
	if (s > m->max_s)
		m->max_s = s;
	for (i = 0; i < AGENT_LOOP_BUCKETS && s > bounds[i]; i++)
		;
	if (i < AGENT_LOOP_BUCKETS)
		m->buckets[i]++;
	if (m->rounds <= 1 || now_monotonic_ms() - m->last_write_ms >= 1000) {
		m->last_write_ms = now_monotonic_ms();
		metrics_write(m, root);
	}
}
