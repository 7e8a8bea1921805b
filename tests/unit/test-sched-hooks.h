/* test-sched-hooks.h: white-box helpers of the scheduler's unit tests, on the
 * model's internals (src/sched/sched-internal.h); production has no use for
 * them, so they live here. */
#pragma once

#include <errno.h>

#include "../../src/sched/sched-internal.h"

/* Treadmill's Bucket.put(app) from `bucket` down: 1 placed, 0 not. */
/* Membership in a pyset (production only adds, discards and iterates). */
static inline bool pyset_contains(const struct pyset *s, int64_t key)
{
	if (!s->st || key < 0)
		return false;
	for (size_t i = 0; i <= s->mask; i++)
		if (s->st[i] == 2 && s->keys[i] == key)
			return true;
	return false;
}

static inline int sched_bucket_put(struct sched_cell *c, int bucket, int app, double now)
{
	if (!valid_app(c, app) || !valid_node(c, bucket))
		return -EINVAL;
	if (c->apps[app].server >= 0)
		return -EEXIST;
	c->need_full = true;
	return sched_node_put(c, bucket, app, now) ? 1 : 0;
}

/* Treadmill's Node.size(label): the capacity of the partition's servers below `node`. */
static inline int sched_node_size_of(const struct sched_cell *c, int node, int partition, double *ret)
{
	if (!valid_node(c, node) || partition < 0 || partition >= c->nparts)
		return -EINVAL;
	sched_node_size(c, node, partition, ret);
	return 0;
}

static inline int sched_subtree_count(const struct sched_cell *c, int node, int aff)
{
	const struct sched_node *n = &c->nodes[node];
	int k = 0;

	if (n->server) {
		for (int a = n->app_head; a >= 0; a = c->apps[a].srv_next)
			k += c->apps[a].affinity == aff;
		return k;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			k += sched_subtree_count(c, n->children[i], aff);
	return k;
}

/* The affinity counter of a node (counted when the affinity has no limits). */
static inline int sched_node_affinity_count(const struct sched_cell *c, int node, const char *affinity)
{
	int aff = strmap_get(&c->aff_by_name, affinity);

	if (!valid_node(c, node))
		return -EINVAL;
	if (aff < 0)
		return 0;
	if (c->aff_limited[aff])
		return aff_count(c, node, aff);
	return sched_subtree_count(c, node, aff);
}

static inline const char *sched_app_shape(const struct sched_cell *c, int app)
{
	return c->shapes[c->apps[app].shape];
}

/* Treadmill's set_affinity_strategy (the master keeps the default spread). */
static inline int sched_bucket_set_strategy(struct sched_cell *c, int bucket, const char *affinity, enum sched_strategy s)
{
	struct nodeaff *e;
	int aff;

	if (!valid_node(c, bucket) || c->nodes[bucket].server || !affinity)
		return -EINVAL;
	aff = sched_intern(&c->affs, &c->naffs, &c->caffs, &c->aff_by_name, affinity);
	if (aff < 0)
		return aff;
	if (sched_ensure_aff_arrays(c) < 0)
		return -ENOMEM;
	e = sched_aff_get(c, aff, (uint32_t)bucket);
	if (!e)
		return -ENOMEM;
	e->cursor = 0; /* set_affinity_strategy creates a fresh strategy */
	for (size_t i = 0; i < c->npacks; i++)
		if (c->packs[i] == aff_key(bucket, aff))
			c->packs[i--] = c->packs[--c->npacks];
	if (s == SCHED_PACK) {
		if (GROW(c->packs, c->cpacks, c->npacks + 1) < 0)
			return -ENOMEM;
		c->packs[c->npacks++] = aff_key(bucket, aff);
	}
	return 0;
}
