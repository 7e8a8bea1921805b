/* sched-explain.c: why an app is pending (sched_explain) and the queue listing
 * (sched_partition_queue).
 *
 * Function names follow Treadmill's scheduler/__init__.py where the code
 * mirrors it, so the two can be read side by side (docs/SCHEDULER.md). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched-internal.h"

/* ---- explain ------------------------------------------------------------------------- */

enum why {
	WHY_LEASE,
	WHY_TRAITS,
	WHY_LIMIT,
	WHY_CAP0, /* + dimension */
	WHY_MAX = WHY_CAP0 + SCHED_DIMS_MAX,
};

static const char *const dim_name[SCHED_DIMS_MAX] = { "memory", "cpu", "disk", "dim3" };
static const char *const dim_unit[SCHED_DIMS_MAX] = { "MB", "%", "MB", "" };

/* The first constraint server s (and its ancestors) fails for app a, or -1. */
static int first_failure(const struct sched_cell *c, int s, const struct sched_app *a, double now, int *ret_node)
{
	uint64_t t = app_traits(c, a);

	*ret_node = s;
	if (!check_app_lifetime(&c->nodes[s], a, now))
		return WHY_LEASE;
	if (t && (c->nodes[s].traits & t) != t)
		return WHY_TRAITS;
	for (int n = s; n >= 0; n = c->nodes[n].parent) {
		int32_t lim = app_limit(c, a, c->nodes[n].level);

		if (lim != SCHED_NO_LIMIT && aff_count(c, n, a->affinity) >= lim) {
			*ret_node = n;
			return WHY_LIMIT;
		}
	}
	for (int d = 0; d < ND(c); d++)
		if (a->demand[d] > c->nodes[s].free[d])
			return WHY_CAP0 + d;
	return -1;
}

int sched_server_set_down_reason(struct sched_cell *c, int server, const char *why)
{
	char *w = NULL;

	if (!valid_node(c, server) || !c->nodes[server].server)
		return -EINVAL;
	if (why && !(w = strdup(why)))
		return -ENOMEM;
	free(c->nodes[server].down_why);
	c->nodes[server].down_why = w;
	return 0;
}

int sched_explain(struct sched_cell *c, int app, double now, char **ret)
{
	const struct sched_app *a;
	struct sched_app_info ai;
	size_t count[WHY_MAX] = { 0 }, down = 0, frozen = 0, other_part = 0, total = 0, fits = 0;
	int example[WHY_MAX], down_example = -1, frozen_example = -1;
	int part, r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	r = sched_app_queue_info(c, app, &ai);
	if (r < 0)
		return r;
	if (sched_refresh_topology(c) < 0)
		return -ENOMEM;
	a = &c->apps[app];
	part = c->allocs[a->alloc].partition;
	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	if (a->server >= 0) {
		int p = c->nodes[a->server].parent;

		fprintf(f, "%s: placed on %s", a->name, c->nodes[a->server].name);
		for (; p > SCHED_ROOT; p = c->nodes[p].parent)
			fprintf(f, " (%s %s)", c->levels[c->nodes[p].level], c->nodes[p].name);
		if (c->nodes[a->server].state != SCHED_UP)
			fprintf(f, "; the server is %s",
				c->nodes[a->server].state == SCHED_DOWN ? "down (data retention keeps it there)" : "frozen");
		if (ai.queue_pos >= 0)
			fprintf(f, "; queue position %d in partition %s", ai.queue_pos, c->parts[part].label);
		goto done;
	}
	fprintf(f, "%s: pending: ", a->name);
	if (c->hot[app].blacklisted) {
		fprintf(f, "blacklisted");
		goto done;
	}
	if (a->schedule_once && a->evicted) {
		fprintf(f, "schedule_once and it lost its server: never placed again");
		goto done;
	}
	if (ai.queue_pos >= 0 && ai.final_rank == SCHED_UNPLACED_RANK) {
		fprintf(f, "allocation %s is over its max_utilization (%g)", c->allocs[a->alloc].name,
			c->allocs[a->alloc].max_util);
		goto done;
	}
	if (a->igroup >= 0 && a->identity < 0 && pyset_len(&c->igroups[a->igroup].avail) == 0) {
		fprintf(f, "identity group %s has no free identity (count %d)", c->igroups[a->igroup].name,
			c->igroups[a->igroup].count);
		goto done;
	}
	for (size_t i = 0; i < c->nsrv_order; i++) {
		int s = c->srv_order[i], node, w;

		if (c->nodes[s].partition != part) {
			other_part++;
			continue;
		}
		total++;
		if (c->nodes[s].state == SCHED_DOWN) {
			/* the example: a server whose reason is known, else the first */
			if (!down++ || (!c->nodes[down_example].down_why && c->nodes[s].down_why))
				down_example = s;
			continue;
		}
		if (c->nodes[s].state == SCHED_FROZEN) {
			if (!frozen++)
				frozen_example = s;
			continue;
		}
		w = first_failure(c, s, a, now, &node);
		if (w < 0) {
			fits++;
			continue;
		}
		if (!count[w]++)
			example[w] = node;
	}
	if (total == 0) {
		fprintf(f, "partition %s has no server (%zu servers in other partitions)", c->parts[part].label,
			other_part);
		goto done;
	}
	if (fits) {
		fprintf(f, "%zu server(s) of partition %s could take it now; it waits for the next pass, or "
			   "higher-ranked apps took the room in the last one",
			fits, c->parts[part].label);
		goto done;
	}
	/* Every refusal is named: down and frozen servers too (a blacked-out server is down). */
	fprintf(f, "no server of partition %s fits (%zu servers):", c->parts[part].label, total);
	if (down) {
		const struct sched_node *n = &c->nodes[down_example];

		fprintf(f, " %zu down (e.g. %s, %s);", down, n->name, n->down_why ? n->down_why : "not present");
	}
	if (frozen)
		fprintf(f, " %zu frozen (e.g. %s);", frozen, c->nodes[frozen_example].name);
	for (int w = 0; w < WHY_MAX; w++) {
		int n;

		if (!count[w])
			continue;
		n = example[w];
		if (w == WHY_LEASE)
			fprintf(f, " lease %gs ends after the server's reboot on %zu;", a->lease, count[w]);
		else if (w == WHY_TRAITS)
			fprintf(f, " traits 0x%llx missing on %zu;", (unsigned long long)app_traits(c, a), count[w]);
		else if (w == WHY_LIMIT)
			fprintf(f, " affinity limit %s=%d for %s reached at %s (e.g. %s) on %zu;",
				c->levels[c->nodes[n].level], app_limit(c, a, c->nodes[n].level), c->affs[a->affinity],
				c->levels[c->nodes[n].level], c->nodes[n].name, count[w]);
		else
			fprintf(f, " capacity: %s (needs %lld %s) short on %zu;", dim_name[w - WHY_CAP0],
				(long long)a->demand[w - WHY_CAP0], dim_unit[w - WHY_CAP0], count[w]);
	}
	len = 0;
done:
	if (fclose(f) != 0 || !buf) {
		free(buf);
		return -ENOMEM;
	}
	/* drop a trailing ';' */
	if (*buf && buf[strlen(buf) - 1] == ';')
		buf[strlen(buf) - 1] = 0;
	*ret = buf;
	return 0;
}

int sched_partition_queue(struct sched_cell *c, int partition, struct sched_queue_entry **ret, size_t *ret_n)
{
	double size[SCHED_DIMS_MAX];

	if (partition < 0 || partition >= c->nparts)
		return -EINVAL;
	sched_node_size(c, SCHED_ROOT, partition, size);
	return sched_alloc_queue(c, c->parts[partition].alloc, size, ret, ret_n);
}
