/* test-sched.c: Treadmill's 48 scheduler tests (tests/scheduler_test.py of
 * morganstanley/treadmill, checklist in reference/treadmill-scheduler.md §5)
 * against treadle's scheduler in compatible mode, with the same
 * expectations.  Each test names the Treadmill test it mirrors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "test-sched-hooks.h"
#include "../../src/sched/sched.h"
/* The production files whose file-local functions these tests test directly
 * (sched_alloc_get, sched_partition_alloc, sched_utilization, sched_reboot_cost): compiled into
 * this test instead of their library objects. */
#include "../../src/sched/sched-cell.c"
#include "../../src/sched/sched-queue.c"
#include "../../src/sched/sched-reboot.c"

/* Bucket.remove_node */
static int detach(struct sched_cell *c, int id)
{
	struct sched_node *n = &c->nodes[id];
	int parent = n->parent;
	struct sched_node *p;

	if (parent < 0)
		return -EINVAL;
	p = &c->nodes[parent];
	for (int i = 0; i < p->nchildren; i++)
		if (p->children[i] == id) {
			p->children[i] = -1;
			if (p->seg) {
				seg_leaf(c, p, i);
				seg_pull(c, p, p->segleaves + (size_t)i);
			}
		}
	p->nlive--;
	recompute_traits_up(c, parent);
	subtree_affinity(c, id, parent, -1);
	subtree_sums(c, id, parent, -1);
	n->parent = -1;
	sched_adjust_capacity_down(c, parent, n->free);
	c->topo_dirty = true;
	c->need_full = true;
	return 0;
}

/* Remove a node (a server or an empty bucket); its apps keep their server id
 * until the next schedule, which treats them as evicted (Treadmill's
 * _fix_invalid_placements).  Production never removes a node from a model (the
 * master reloads the model when a server goes); Treadmill's tests of removal
 * are kept, on the model's own detach. */
static int sched_node_remove(struct sched_cell *c, int node)
{
	struct sched_node *n;
	int r;

	if (!valid_node(c, node) || node == SCHED_ROOT)
		return -EINVAL;
	n = &c->nodes[node];
	if (!n->server && n->nlive > 0)
		return -ENOTEMPTY;
	r = detach(c, node);
	if (r < 0)
		return r;
	n = &c->nodes[node];
	n->removed = true;
	c->removed_servers = true;
	strmap_del(&c->node_by_name, n->name);
	return 0;
}

/* ---- helpers mirroring the Python test helpers ----------------------------- */

static int64_t order_counter; /* Application.global_order: creation order */

struct appdef {
	char name[64];
	char affinity[64];
	int priority;
	int64_t demand[2];
	int64_t order;
	struct sched_limit limits[4];
	size_t nlimits;
	double retention, lease;
	const char *igroup;
	uint64_t traits;
	bool once;
	int id; /* after add */
};

static struct appdef mkapp(const char *name, int prio, int64_t d0, int64_t d1, const char *affinity)
{
	struct appdef a;

	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	snprintf(a.affinity, sizeof(a.affinity), "%s", affinity);
	a.priority = prio;
	a.demand[0] = d0;
	a.demand[1] = d1;
	a.order = order_counter++;
	a.retention = -1; /* Application(data_retention_timeout=0) is 0, loader's default None */
	a.id = -1;
	return a;
}

/* app_list(count, name, prio, demand, ...): names name-idx, affinity name */
static void app_list(struct appdef *out, int count, const char *name, int prio, int64_t d0, int64_t d1)
{
	for (int i = 0; i < count; i++) {
		char n[64];

		snprintf(n, sizeof(n), "%s-%d", name, i);
		out[i] = mkapp(n, prio, d0, d1, name);
	}
}

static void limits(struct appdef *a, int n, const char *l1, int v1, const char *l2, int v2, const char *l3, int v3)
{
	const char *ls[3] = { l1, l2, l3 };
	int vs[3] = { v1, v2, v3 };

	a->nlimits = 0;
	for (int i = 0; i < n; i++)
		a->limits[a->nlimits++] = (struct sched_limit){ ls[i], vs[i] };
}

static int add(struct sched_cell *c, int alloc, struct appdef *a)
{
	struct sched_app_spec s = {
		.name = a->name,
		.priority = a->priority,
		.demand = a->demand,
		.affinity = a->affinity,
		.limits = a->nlimits ? a->limits : NULL,
		.n_limits = a->nlimits,
		.data_retention_timeout = a->retention,
		.lease = a->lease,
		.identity_group = a->igroup,
		.traits = a->traits,
		.schedule_once = a->once,
		.global_order = a->order,
	};

	a->id = sched_app_add(c, alloc, &s);
	assert_true(a->id >= 0);
	return a->id;
}

static struct sched_cell *cell2(void)
{
	struct sched_cell *c = sched_cell_new("cell", 2, SCHED_MODE_COMPAT);

	assert_non_null(c);
	return c;
}

static int bucket(struct sched_cell *c, int parent, const char *name, const char *level, uint64_t traits)
{
	int b = sched_bucket_add(c, parent, name, level ? level : "bucket", traits);

	assert_true(b > 0);
	return b;
}

static int server(struct sched_cell *c, int parent, const char *name, int64_t a, int64_t b, uint64_t traits,
		  const char *label, double valid_until)
{
	int64_t cap[2] = { a, b };
	int s = sched_server_add(c, parent, name, cap, traits, label, 0, valid_until);

	assert_true(s > 0);
	return s;
}

/* Servers of capacity 10x10 valid until 500 under parent, one per name of
 * the comma-separated list (the topology most of Treadmill's tests build). */
static void servers(struct sched_cell *c, int parent, const char *names)
{
	_cleanup_free_ char *copy = strdup(names);
	char *p = copy, *name;

	assert_non_null(copy);
	while ((name = strsep(&p, ",")))
		server(c, parent, name, 10, 10, 0, NULL, 500);
}

static int root_alloc(struct sched_cell *c, const char *label)
{
	return sched_partition_alloc(c, sched_partition_get(c, label));
}

/* An app's placement, identity, expiry, eviction and renew flag. */
static struct sched_app_info info_of(const struct sched_cell *c, int app)
{
	struct sched_app_info ai;

	assert_int_equal(sched_app_info(c, app, &ai), 0);
	return ai;
}

static int server_of(const struct sched_cell *c, int app)
{
	return info_of(c, app).server;
}

static const char *server_name(const struct sched_cell *c, int app)
{
	int s = server_of(c, app);

	return s >= 0 ? sched_node_name(c, s) : NULL;
}

static void run(struct sched_cell *c, double now)
{
	assert_int_equal(sched_schedule(c, now, NULL, NULL, NULL), 0);
}

/* `count` apps "app#..." (priority 50, demand 1/1) with the same affinity
 * limits, added to `alloc` and scheduled at 0. */
static void add_limited(struct sched_cell *c, int alloc, struct appdef *apps, int count, int n, const char *l1,
			int v1, const char *l2, int v2, const char *l3, int v3)
{
	app_list(apps, count, "app", 50, 1, 1);
	for (int i = 0; i < count; i++) {
		limits(&apps[i], n, l1, v1, l2, v2, l3, v3);
		add(c, alloc, &apps[i]);
	}
	run(c, 0);
}

static void node_free(const struct sched_cell *c, int n, int64_t *out)
{
	struct sched_node_info ni;

	assert_int_equal(sched_node_info(c, n, &ni), 0);
	out[0] = ni.free[0];
	out[1] = ni.free[1];
}

#define assert_free(c, n, a, b)                       \
	do {                                          \
		int64_t _f[2];                        \
		node_free((c), (n), _f);              \
		assert_int_equal(_f[0], (a));         \
		assert_int_equal(_f[1], (b));         \
	} while (0)

static uint64_t trait_bits[32];
static const char *trait_names[32];
static int ntraits;

/* _trait2int: a new trait gets the next bit, from 2 on */
static uint64_t t2i(const char *t)
{
	for (int i = 0; i < ntraits; i++)
		if (strcmp(trait_names[i], t) == 0)
			return trait_bits[i];
	trait_names[ntraits] = t;
	trait_bits[ntraits] = 1ull << (ntraits + 1);
	return trait_bits[ntraits++];
}

static uint64_t node_traits(const struct sched_cell *c, int n)
{
	struct sched_node_info ni;

	sched_node_info(c, n, &ni);
	return ni.traits;
}

static bool has(uint64_t traits, uint64_t t)
{
	return (traits & t) == t;
}

/* ---- OpsTest ---------------------------------------------------------------------- */

/* 1 test_ops: capacity fits only if demand <= free in every dimension */
static void test_ops(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int s = server(c, SCHED_ROOT, "s", 2, 2, 0, NULL, 500);
	int alloc = root_alloc(c, NULL);
	struct appdef a = mkapp("a", 1, 3, 2, "a"), b = mkapp("b", 1, 2, 2, "b");

	add(c, alloc, &a);
	add(c, alloc, &b);
	assert_int_equal(sched_app_put(c, a.id, s, 0), -ENOSPC); /* _any_gt([3,2],[2,2]) */
	assert_int_equal(sched_app_put(c, b.id, s, 0), 0);	   /* not _any_gt([2,2],[2,2]) */
	{
		double d[2] = { 3, 3 }, r[2] = { 0, 0 }, v[2] = { 2, 1 };

		assert_true(sched_utilization(2, d, r, v) == 3.0);
	}
}

/* ---- AllocationTest -------------------------------------------------------------- */

static void queue_of(struct sched_cell *c, int alloc, double f0, double f1, struct sched_queue_entry **q, size_t *n)
{
	double free[2] = { f0, f1 };

	assert_int_equal(sched_alloc_queue(c, alloc, free, q, n), 0);
}

/* An allocation reserving `reserved` of each dimension (rank, rank
 * adjustment) and n apps app1..appN of priorities prio[], demand i+1 each,
 * affinity app1, added in order: the queue tests' setup. */
static void alloc_apps(struct sched_cell *c, int alloc, double reserved, int64_t rank, int64_t rank_adjustment,
		       struct appdef *apps, size_t n, const int *prio)
{
	double r[2] = { reserved, reserved };

	sched_alloc_update(c, alloc, r, rank, rank_adjustment, 0);
	for (size_t i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "app%zu", i + 1);
		apps[i] = mkapp(name, prio[i], (int64_t)i + 1, (int64_t)i + 1, "app1");
		add(c, alloc, &apps[i]);
	}
}

/* 2 test_utilization */
static void test_utilization(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	double r[2] = { 10, 10 };
	static const int prio[] = { 100, 100, 100 };
	struct appdef a[3];
	_cleanup_free_ struct sched_queue_entry *q = NULL, *q2 = NULL;
	size_t n;

	alloc_apps(c, alloc, 10, -1, 0, a, 3, prio);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(q[i].rank, 100);
	assert_true(q[0].util_before == -10 / (10. + 20));
	assert_true(q[0].util_after == -9 / (10. + 20));
	assert_true(q[1].util_before == -9 / (10. + 20));
	assert_true(q[1].util_after == -7 / (10. + 20));
	assert_true(q[2].util_before == -7 / (10. + 20));
	assert_true(q[2].util_after == -4 / (10. + 20));

	/* ordered by priority */
	{
		_cleanup_sched_cell_ struct sched_cell *c2 = cell2();
		int al2 = root_alloc(c2, NULL);
		struct appdef b1 = mkapp("app1", 10, 1, 1, "app1"), b2 = mkapp("app2", 50, 2, 2, "app1"),
			      b3 = mkapp("app3", 100, 3, 3, "app1");

		sched_alloc_update(c2, al2, r, -1, 0, 0);
		add(c2, al2, &b1);
		add(c2, al2, &b2);
		add(c2, al2, &b3);
		queue_of(c2, al2, 20, 20, &q2, &n);
		assert_int_equal(q2[0].app, b3.id);
		assert_true(q2[0].util_before == -10 / (10. + 20));
		assert_true(q2[0].util_after == -7 / (10. + 20));
		assert_true(q2[1].util_before == -7 / (10. + 20));
		assert_true(q2[1].util_after == -5 / (10. + 20));
		assert_true(q2[2].util_before == -5 / (10. + 20));
		assert_true(q2[2].util_after == -4 / (10. + 20));
	}
}

/* 3 test_running_order */
static void test_running_order(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	int s = server(c, SCHED_ROOT, "abc", 100, 100, 0, NULL, 500);
	static const int prio[] = { 5, 5, 5 };
	struct appdef a[3];
	struct sched_queue_entry *q;
	size_t n;

	alloc_apps(c, alloc, 10, -1, 0, a, 3, prio);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(q[0].app, a[0].id);
	free(q);
	assert_int_equal(sched_app_put(c, a[1].id, s, 0), 0);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(q[0].app, a[1].id);
	free(q);
}

/* 4 test_utilization_max: max_utilization changes ranks, never the queue length */
static void test_utilization_max(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	double r[2] = { 3, 3 };
	static const int prio[] = { 1, 1, 1 };
	struct appdef a[3];
	struct sched_queue_entry *q;
	size_t n;

	alloc_apps(c, alloc, 3, -1, 0, a, 3, prio);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(n, 3);
	free(q);
	sched_alloc_update(c, alloc, r, -1, 0, 1);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(n, 3);
	assert_int_equal(q[2].rank, SCHED_UNPLACED_RANK);
	free(q);
	sched_alloc_update(c, alloc, r, -1, 0, 0);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(n, 3);
	free(q);
}

/* 5 test_priority_zero */
static void test_priority_zero(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	double r[2] = { 3, 3 };
	static const int prio[] = { 1, 0 };
	struct appdef a[2];
	struct sched_queue_entry *q;
	size_t n;

	alloc_apps(c, alloc, 3, -1, 0, a, 2, prio);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(q[0].rank, 100);
	assert_int_equal(q[1].rank, 100);
	free(q);
	sched_alloc_update(c, alloc, r, -1, 0, 100);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(q[0].rank, 100);
	assert_int_equal(q[1].rank, SCHED_UNPLACED_RANK);
	free(q);
}

/* 6 test_rank_adjustment */
static void test_rank_adjustment(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	static const int prio[] = { 1, 1, 1 };
	struct appdef a[3];
	_cleanup_free_ struct sched_queue_entry *q = NULL;
	size_t n;

	alloc_apps(c, alloc, 3, 100, 10, a, 3, prio);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(q[0].rank, 90);
	assert_int_equal(q[1].rank, 90);
	assert_int_equal(q[2].rank, 100);
}

/* 7 test_zerovector */
static void test_zerovector(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	double r[2] = { 1, 0 };
	struct sched_alloc_info ai;

	sched_alloc_update(c, alloc, r, -1, 0, 0);
	sched_alloc_info(c, alloc, &ai);
	assert_true(ai.reserved[0] == 1.0);
	assert_true(ai.reserved[1] == 0.0);
	assert_int_equal(ai.rank, 100);
}

/* 8 test_utilization_no_reservation */
static void test_utilization_no_reservation(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef a1 = mkapp("app1", 1, 1, 1, "app1");
	_cleanup_free_ struct sched_queue_entry *q = NULL;
	size_t n;

	add(c, alloc, &a1);
	queue_of(c, alloc, 10, 10, &q, &n);
	assert_true(q[0].util_before == 0 / 10.);
	assert_true(q[0].util_after == 1 / 10.);
}

/* 9 test_duplicate */
static void test_duplicate(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef a1 = mkapp("app1", 0, 1, 1, "app1"), a1b = mkapp("app1", 0, 1, 1, "app1");
	struct sched_app_spec s = { .name = a1b.name, .demand = a1b.demand };
	_cleanup_free_ struct sched_queue_entry *q = NULL;
	size_t n;

	add(c, alloc, &a1);
	assert_int_equal(sched_app_add(c, alloc, &s), -EEXIST);
	queue_of(c, alloc, 5, 5, &q, &n);
	assert_int_equal(n, 1);
}

/* 10 test_sub_allocs */
static void test_sub_allocs(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL), sa, sb;
	double r3[2] = { 3, 3 }, r5[2] = { 5, 5 }, r10[2] = { 10, 10 };
	struct appdef a[3] = { mkapp("1a", 3, 2, 2, "app1"), mkapp("2a", 2, 3, 3, "app1"), mkapp("3a", 1, 5, 5, "app1") };
	struct appdef b[3] = { mkapp("1b", 3, 2, 2, "app1"), mkapp("2b", 2, 3, 3, "app1"), mkapp("3b", 1, 5, 5, "app1") };
	struct appdef z[3] = { mkapp("1-zero", 0, 2, 2, "app1"), mkapp("b-zero", 0, 5, 5, "app1"),
			       mkapp("a-zero", 0, 5, 5, "app1") };
	struct sched_queue_entry *q;
	size_t n;

	sched_alloc_update(c, alloc, r3, -1, 0, 0);
	sa = sched_alloc_get(c, alloc, "a1/a");
	sched_alloc_update(c, sa, r5, -1, 0, 0);
	for (int i = 0; i < 3; i++)
		add(c, sa, &a[i]);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(q[0].app, a[0].id);
	assert_true(q[0].util_after == (2 - (5 + 3)) / (20. + (5 + 3)));
	free(q);

	sb = sched_alloc_get(c, alloc, "a1/b");
	sched_alloc_update(c, sb, r10, -1, 0, 0);
	for (int i = 0; i < 3; i++)
		add(c, sb, &b[i]);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(n, 6);
	assert_int_equal(q[0].app, b[0].id);
	assert_true(q[0].util_after == (2 - 18) / (20. + 18));
	free(q);

	add(c, alloc, &z[0]);
	add(c, sb, &z[1]);
	add(c, sa, &z[2]);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(n, 9);
	for (size_t i = n - 3; i < n; i++) {
		assert_true(q[i].app == z[0].id || q[i].app == z[1].id || q[i].app == z[2].id);
		assert_true(isinf(q[i].util_before));
	}
	free(q);
}

/* 11 test_sub_alloc_reservation */
static void test_sub_alloc_reservation(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL), poor, rich;
	double r5[2] = { 5, 5 };
	struct appdef p1 = mkapp("p1", 1, 1, 1, "app1"), r1 = mkapp("r1", 1, 5, 5, "app1"),
		      r2 = mkapp("r2", 1, 5, 5, "app1");
	_cleanup_free_ struct sched_queue_entry *q = NULL;
	size_t n;

	poor = sched_alloc_get(c, alloc, "poor");
	add(c, poor, &p1);
	rich = sched_alloc_get(c, alloc, "rich");
	sched_alloc_update(c, rich, r5, -1, 0, 0);
	add(c, rich, &r1);
	add(c, rich, &r2);
	queue_of(c, alloc, 20, 20, &q, &n);
	assert_int_equal(q[0].app, r1.id);
	assert_int_equal(q[1].app, p1.id);
	assert_int_equal(q[2].app, r2.id);
}

/* 12 test_visitor: every entry is computed at every level (3 apps x 2 levels) */
static void test_visitor(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL), sa, sb;
	struct appdef a1 = mkapp("a1", 1, 1, 1, "app1"), b1 = mkapp("b1", 1, 5, 5, "app1"),
		      b2 = mkapp("b2", 1, 5, 5, "app1");
	size_t total = 0, n;
	struct sched_queue_entry *q;

	sa = sched_alloc_get(c, alloc, "a");
	add(c, sa, &a1);
	sb = sched_alloc_get(c, alloc, "b");
	add(c, sb, &b1);
	add(c, sb, &b2);
	queue_of(c, alloc, 20, 20, &q, &n);
	total += n;
	free(q);
	queue_of(c, sa, 20, 20, &q, &n);
	total += n;
	free(q);
	queue_of(c, sb, 20, 20, &q, &n);
	total += n;
	free(q);
	assert_int_equal(total, 6);
}

/* ---- TraitSetTest ------------------------------------------------------------------ */

/* 13 test_traits: a bucket's traits are its own OR its children's */
static void test_traits(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	uint64_t ta = 1, tx = 4, ty = 8, tz = 16;
	int a = bucket(c, SCHED_ROOT, "a", NULL, ta), xy, xz;

	assert_true(has(node_traits(c, a), ta));
	xy = bucket(c, a, "xy", NULL, tx | ty);
	assert_true(has(node_traits(c, a), ta) && has(node_traits(c, a), tx) && has(node_traits(c, a), ty));
	xz = bucket(c, a, "xz", NULL, tx | tz);
	assert_true(has(node_traits(c, a), tx) && has(node_traits(c, a), ty) && has(node_traits(c, a), tz));
	sched_node_remove(c, xy);
	assert_true(has(node_traits(c, a), tx));
	assert_false(has(node_traits(c, a), ty));
	assert_true(has(node_traits(c, a), tz));
	sched_node_remove(c, xz);
	assert_false(has(node_traits(c, a), tx) || has(node_traits(c, a), ty) || has(node_traits(c, a), tz));
}

/* ---- NodeTest ---------------------------------------------------------------------------- */

/* 14 test_bucket_capacity */
static void test_bucket_capacity(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int top = bucket(c, SCHED_ROOT, "top", NULL, 0), b = bucket(c, top, "b", NULL, 0);
	int n1, n3;

	n1 = server(c, b, "n1", 10, 5, 0, NULL, 500);
	assert_free(c, b, 10, 5);
	assert_free(c, top, 10, 5);
	server(c, b, "n2", 5, 10, 0, NULL, 500);
	assert_free(c, b, 10, 10);
	assert_free(c, top, 10, 10);
	n3 = server(c, b, "n3", 3, 3, 0, NULL, 500);
	assert_free(c, b, 10, 10);
	sched_node_remove(c, n3);
	assert_free(c, b, 10, 10);
	assert_free(c, top, 10, 10);
	sched_node_remove(c, n1);
	assert_free(c, b, 5, 10);
	assert_free(c, top, 5, 10);
}

/* 15 test_app_node_placement */
static void test_app_node_placement(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int top = bucket(c, SCHED_ROOT, "top", NULL, 0), b = bucket(c, top, "a_bucket", NULL, 0);
	int s1 = server(c, b, "n1", 10, 5, 0, NULL, 500), s2 = server(c, b, "n2", 10, 5, 0, NULL, 500);
	int alloc = root_alloc(c, NULL);
	struct appdef apps[10];
	double size[2];

	assert_free(c, b, 10, 5);
	assert_free(c, top, 10, 5);
	sched_node_size_of(c, b, sched_partition_get(c, NULL), size);
	assert_true(size[0] == 20 && size[1] == 10);
	app_list(apps, 10, "app", 50, 1, 2);
	for (int i = 0; i < 3; i++)
		add(c, alloc, &apps[i]);
	assert_int_equal(sched_app_put(c, apps[0].id, s1, 0), 0);
	assert_free(c, b, 10, 5);
	assert_free(c, top, 10, 5);
	assert_int_equal(sched_app_put(c, apps[1].id, s1, 0), 0);
	assert_int_equal(sched_app_put(c, apps[2].id, s2, 0), 0);
	assert_free(c, b, 9, 3);
	assert_free(c, top, 9, 3);
}

static int napps_on(const struct sched_cell *c, int s)
{
	struct sched_node_info ni;

	sched_node_info(c, s, &ni);
	return (int)ni.napps;
}

/* 16 test_bucket_placement */
static void test_bucket_placement(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int top = bucket(c, SCHED_ROOT, "top", NULL, 0);
	int a = bucket(c, top, "a_bucket", NULL, 0), b = bucket(c, top, "b_bucket", NULL, 0);
	int a1 = server(c, a, "a1_srv", 10, 10, 0, NULL, 500), a2 = server(c, a, "a2_srv", 10, 10, 0, NULL, 500);
	int b1 = server(c, b, "b1_srv", 10, 10, 0, NULL, 500), b2 = server(c, b, "b2_srv", 10, 10, 0, NULL, 500);
	int alloc = root_alloc(c, NULL);
	struct appdef apps1[10], apps2[10];

	app_list(apps1, 10, "app1", 50, 1, 1);
	app_list(apps2, 10, "app2", 50, 1, 1);
	for (int i = 0; i < 4; i++) {
		add(c, alloc, &apps1[i]);
		add(c, alloc, &apps2[i]);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(sched_bucket_put(c, top, apps1[i].id, 0), 1);
	assert_int_equal(napps_on(c, a1), 1);
	assert_int_equal(napps_on(c, a2), 1);
	assert_int_equal(napps_on(c, b1), 1);
	assert_int_equal(napps_on(c, b2), 1);
	assert_int_equal(sched_bucket_set_strategy(c, a, "app2", SCHED_PACK), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(sched_bucket_put(c, top, apps2[i].id, 0), 1);
	assert_int_equal(napps_on(c, b1), 2);
	assert_int_equal(napps_on(c, b2), 2);
	assert_int_not_equal(napps_on(c, a1), napps_on(c, a2));
}

static double valid_until(const struct sched_cell *c, int n)
{
	struct sched_node_info ni;

	sched_node_info(c, n, &ni);
	return ni.valid_until;
}

/* 17 test_valid_times */
static void test_valid_times(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int top = bucket(c, SCHED_ROOT, "top", NULL, 0);
	int left = bucket(c, top, "left", NULL, 0), right = bucket(c, top, "right", NULL, 0);
	int a = server(c, left, "a", 10, 10, 0, NULL, 1);
	int z;

	server(c, left, "b", 10, 10, 0, NULL, 2);
	server(c, right, "y", 10, 10, 0, NULL, 3);
	z = server(c, right, "z", 10, 10, 0, NULL, 4);
	assert_true(valid_until(c, top) == 4 && valid_until(c, left) == 2 && valid_until(c, right) == 4);
	sched_node_remove(c, a);
	assert_true(valid_until(c, top) == 4 && valid_until(c, left) == 2 && valid_until(c, right) == 4);
	sched_node_remove(c, z);
	assert_true(valid_until(c, top) == 3 && valid_until(c, left) == 2 && valid_until(c, right) == 3);
}

struct tree4 {
	int top, left, right, a, b, y, z;
};

static struct tree4 tree4(struct sched_cell *c, int root, int64_t cap)
{
	struct tree4 t;

	t.top = root >= 0 ? root : bucket(c, SCHED_ROOT, "top", NULL, t2i("top"));
	t.left = bucket(c, t.top, "left", NULL, t2i("left"));
	t.right = bucket(c, t.top, "right", NULL, t2i("right"));
	t.a = server(c, t.left, "a", cap, cap, t2i("a") | t2i("0"), NULL, 500);
	t.b = server(c, t.left, "b", cap, cap, t2i("b") | t2i("0"), NULL, 500);
	t.y = server(c, t.right, "y", cap, cap, t2i("y") | t2i("1"), NULL, 500);
	t.z = server(c, t.right, "z", cap, cap, t2i("z") | t2i("1"), NULL, 500);
	return t;
}

/* 18 test_node_traits */
static void test_node_traits(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	struct tree4 t = tree4(c, -1, 10);
	const char *all[] = { "a", "b", "0", "y", "z", "1" };

	for (size_t i = 0; i < ELEMENTSOF(all); i++)
		assert_true(has(node_traits(c, t.top), t2i(all[i])));
	assert_true(has(node_traits(c, t.left), t2i("a")) && has(node_traits(c, t.left), t2i("b")) &&
		    has(node_traits(c, t.left), t2i("0")));
	assert_false(has(node_traits(c, t.left), t2i("y")) || has(node_traits(c, t.left), t2i("z")) ||
		     has(node_traits(c, t.left), t2i("1")));
	sched_node_remove(c, t.a);
	assert_false(has(node_traits(c, t.left), t2i("a")));
	assert_true(has(node_traits(c, t.left), t2i("b")) && has(node_traits(c, t.left), t2i("0")));
	assert_false(has(node_traits(c, t.top), t2i("a")));
	assert_true(has(node_traits(c, t.top), t2i("b")) && has(node_traits(c, t.top), t2i("0")));
	sched_node_remove(c, t.b);
	assert_false(has(node_traits(c, t.left), t2i("b")) || has(node_traits(c, t.left), t2i("0")));
	assert_false(has(node_traits(c, t.top), t2i("b")) || has(node_traits(c, t.top), t2i("0")));
}

static bool on(const struct sched_cell *c, const struct appdef *a, const char *s1, const char *s2)
{
	const char *s = server_name(c, a->id);

	return s && ((s1 && !strcmp(s, s1)) || (s2 && !strcmp(s, s2)));
}

/* n apps `name` (demand d x d, traits when given) added to alloc and put one
 * by one from top: each put returns `want`, and lands on server `on_server`
 * when given. */
static void put_apps(struct sched_cell *c, int top, int alloc, struct appdef *apps, int n, const char *name, int64_t d,
		     const char *traits, int want, const char *on_server)
{
	app_list(apps, n, name, 50, d, d);
	for (int i = 0; i < n; i++) {
		if (traits)
			apps[i].traits = t2i(traits);
		add(c, alloc, &apps[i]);
		assert_int_equal(sched_bucket_put(c, top, apps[i].id, 0), want);
		if (on_server)
			assert_true(on(c, &apps[i], on_server, NULL));
	}
}

/* 19 test_app_trait_placement */
static void test_app_trait_placement(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	struct tree4 t = tree4(c, -1, 10);
	int root = root_alloc(c, NULL), alloc_a, alloc_0;
	struct appdef apps_a[2], apps_b[2], apps_ab[2], apps_0[2], apps_a0[2], none[4];

	alloc_a = sched_alloc_get(c, root, "alloc_a");
	sched_alloc_set_traits(c, alloc_a, t2i("a"));
	put_apps(c, t.top, alloc_a, apps_a, 2, "app_a", 2, NULL, 1, "a");
	put_apps(c, t.top, root, apps_b, 2, "app_b", 2, "b", 1, "b");
	put_apps(c, t.top, alloc_a, apps_ab, 2, "app_ab", 2, "b", 0, NULL);
	alloc_0 = sched_alloc_get(c, root, "alloc_0");
	sched_alloc_set_traits(c, alloc_0, t2i("0"));
	put_apps(c, t.top, alloc_0, apps_0, 2, "app_0", 2, NULL, 1, NULL);
	assert_true(on(c, &apps_0[0], "a", NULL));
	assert_true(on(c, &apps_0[1], "b", NULL));
	put_apps(c, t.top, alloc_0, apps_a0, 2, "app_a0", 2, "a", 1, "a");
	put_apps(c, t.top, root, none, 4, "apps_nothing", 1, NULL, 1, NULL);
	for (int i = 0; i < 4; i += 2)
		assert_true((on(c, &none[i], "a", "b") && on(c, &none[i + 1], "y", "z")) ||
			    (on(c, &none[i], "y", "z") && on(c, &none[i + 1], "a", "b")));
}

/* 20 test_size_and_members */
static void test_size_and_members(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	struct tree4 t = tree4(c, -1, 1);
	int p = sched_partition_get(c, NULL);
	double s[2];
	int n = 0, want[4] = { t.a, t.b, t.y, t.z };

	sched_node_size_of(c, t.a, p, s);
	assert_true(s[0] == 1 && s[1] == 1);
	sched_node_size_of(c, t.left, p, s);
	assert_true(s[0] == 2 && s[1] == 2);
	sched_node_size_of(c, t.top, p, s);
	assert_true(s[0] == 4 && s[1] == 4);
	for (int x = sched_server_next(c, -1); x >= 0; x = sched_server_next(c, x), n++)
		assert_int_equal(x, want[n]);
	assert_int_equal(n, 4);
}

/* 21 test_affinity_counters */
static void test_affinity_counters(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	struct tree4 t = tree4(c, -1, 10);
	int alloc = root_alloc(c, NULL);
	struct appdef apps[2];

	app_list(apps, 2, "app_a", 50, 1, 1);
	add(c, alloc, &apps[0]);
	add(c, alloc, &apps[1]);
	assert_int_equal(sched_app_put(c, apps[0].id, t.a, 0), 0);
	assert_int_equal(sched_node_affinity_count(c, t.a, "app_a"), 1);
	assert_int_equal(sched_node_affinity_count(c, t.left, "app_a"), 1);
	assert_int_equal(sched_node_affinity_count(c, t.top, "app_a"), 1);
	assert_int_equal(sched_app_put(c, apps[1].id, t.z, 0), 0);
	assert_int_equal(sched_node_affinity_count(c, t.z, "app_a"), 1);
	assert_int_equal(sched_node_affinity_count(c, t.left, "app_a"), 1);
	assert_int_equal(sched_node_affinity_count(c, t.top, "app_a"), 2);
	assert_int_equal(sched_app_unplace(c, apps[0].id), 0);
	assert_int_equal(sched_node_affinity_count(c, t.a, "app_a"), 0);
	assert_int_equal(sched_node_affinity_count(c, t.left, "app_a"), 0);
	assert_int_equal(sched_node_affinity_count(c, t.top, "app_a"), 1);
}

/* ---- CellTest -------------------------------------------------------------------------- */

/* 22 test_emtpy */
static void test_empty(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int b;

	bucket(c, SCHED_ROOT, "empty", NULL, 0);
	b = bucket(c, SCHED_ROOT, "bucket", NULL, 0);
	servers(c, b, "a");
	run(c, 0);
}

static struct tree4 cell4(struct sched_cell *c, const char *la, const char *lb, const char *ly, const char *lz,
			  const char *level)
{
	struct tree4 t;

	t.top = SCHED_ROOT;
	t.left = bucket(c, SCHED_ROOT, "left", level, 0);
	t.right = bucket(c, SCHED_ROOT, "right", level, 0);
	t.a = server(c, t.left, la, 10, 10, 0, strcmp(la, "a_xx") ? NULL : "xx", 500);
	t.b = server(c, t.left, lb, 10, 10, 0, NULL, 500);
	t.y = server(c, t.right, ly, 10, 10, 0, strcmp(ly, "y_xx") ? NULL : "xx", 500);
	t.z = server(c, t.right, lz, 10, 10, 0, NULL, 500);
	return t;
}

/* 23 test_labels */
static void test_labels(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	struct appdef a1 = mkapp("app1", 4, 1, 1, "app"), a2 = mkapp("app2", 3, 2, 2, "app"),
		      a3 = mkapp("app_xx_3", 2, 3, 3, "app"), a4 = mkapp("app_xx_4", 1, 4, 4, "app");

	cell4(c, "a_xx", "b", "y_xx", "z", NULL);
	add(c, root_alloc(c, NULL), &a1);
	add(c, root_alloc(c, NULL), &a2);
	add(c, root_alloc(c, "xx"), &a3);
	add(c, root_alloc(c, "xx"), &a4);
	run(c, 0);
	assert_true(on(c, &a1, "b", "z"));
	assert_true(on(c, &a2, "b", "z"));
	assert_true(on(c, &a3, "a_xx", "y_xx"));
	assert_true(on(c, &a4, "a_xx", "y_xx"));
}

/* 24 test_simple */
static void test_simple(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef a1 = mkapp("app1", 4, 1, 1, "app"), a2 = mkapp("app2", 3, 2, 2, "app"),
		      a3 = mkapp("app3", 2, 3, 3, "app"), a4 = mkapp("app4", 1, 4, 4, "app");
	struct appdef p50, p51, p49_1, p49_2;
	int s1, s2, s3, s4;

	cell4(c, "a", "b", "y", "z", NULL);
	add(c, alloc, &a1);
	add(c, alloc, &a2);
	add(c, alloc, &a3);
	add(c, alloc, &a4);
	run(c, 0);
	s1 = server_of(c, a1.id);
	s2 = server_of(c, a2.id);
	s3 = server_of(c, a3.id);
	s4 = server_of(c, a4.id);
	assert_true(s1 >= 0 && s2 >= 0 && s3 >= 0 && s4 >= 0);
	assert_true(s1 != s2 && s1 != s3 && s1 != s4 && s2 != s3 && s2 != s4 && s3 != s4);

	p50 = mkapp("prio50", 50, 10, 10, "app");
	add(c, alloc, &p50);
	run(c, 0);
	assert_int_equal(server_of(c, p50.id), s4);
	assert_int_equal(server_of(c, a4.id), s1);

	p51 = mkapp("prio51", 51, 10, 10, "app");
	add(c, alloc, &p51);
	run(c, 0);
	assert_int_equal(server_of(c, p51.id), s3);
	assert_int_equal(server_of(c, p50.id), s4);
	assert_int_equal(server_of(c, a4.id), s1);

	p49_1 = mkapp("prio49_1", 49, 10, 10, "app");
	p49_2 = mkapp("prio49_2", 49, 9, 9, "app");
	add(c, alloc, &p49_1);
	add(c, alloc, &p49_2);
	run(c, 0);
	assert_int_equal(server_of(c, p51.id), s3);
	assert_int_equal(server_of(c, p50.id), s4);
	assert_true((server_of(c, p49_1.id) == s1 && server_of(c, p49_2.id) == s2) ||
		    (server_of(c, p49_1.id) == s2 && server_of(c, p49_2.id) == s1));
	assert_true(server_of(c, a1.id) >= 0);
	assert_int_equal(server_of(c, a2.id), -1);
	assert_int_equal(server_of(c, a3.id), -1);
	assert_int_equal(server_of(c, a4.id), -1);
}

/* 25 test_max_utilization */
static void test_max_utilization(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	double r[2] = { 6, 6 };
	struct appdef a1 = mkapp("app1", 4, 1, 1, "app"), a2 = mkapp("app2", 3, 2, 2, "app"),
		      a3 = mkapp("app3", 2, 3, 3, "app"), a4 = mkapp("app4", 1, 4, 4, "app");

	cell4(c, "a", "b", "y", "z", NULL);
	add(c, alloc, &a1);
	add(c, alloc, &a2);
	add(c, alloc, &a3);
	add(c, alloc, &a4);
	sched_alloc_update(c, alloc, r, -1, 0, 1);
	run(c, 0);
	assert_true(server_of(c, a1.id) >= 0 && server_of(c, a2.id) >= 0 && server_of(c, a3.id) >= 0);
	assert_int_equal(server_of(c, a4.id), -1);
	sched_app_set_priority(c, a4.id, 5);
	run(c, 0);
	assert_true(server_of(c, a1.id) >= 0);
	assert_int_equal(server_of(c, a2.id), -1);
	assert_int_equal(server_of(c, a3.id), -1);
	assert_true(server_of(c, a4.id) >= 0);
}

static int placed(const struct sched_cell *c, const struct appdef *apps, int n)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += server_of(c, apps[i].id) >= 0;
	return k;
}

static void remove_all(struct sched_cell *c, const struct appdef *apps, int n)
{
	for (int i = 0; i < n; i++) {
		int id = sched_app_find(c, apps[i].name);

		if (id >= 0)
			sched_app_remove(c, id);
	}
}

/* One step of Treadmill's affinity-limit tests: `count` limited apps of
 * which the first `expect` get placed and the others not; removed after. */
struct limit_step {
	int count, expect, n;
	const char *l1;
	int v1;
	const char *l2;
	int v2;
	const char *l3;
	int v3;
};

static void limit_steps(struct sched_cell *c, int alloc, const struct limit_step *st, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct appdef apps[8];

		add_limited(c, alloc, apps, st[k].count, st[k].n, st[k].l1, st[k].v1, st[k].l2, st[k].v2, st[k].l3,
			    st[k].v3);
		assert_int_equal(placed(c, apps, st[k].expect), st[k].expect);
		assert_int_equal(placed(c, apps + st[k].expect, st[k].count - st[k].expect), 0);
		remove_all(c, apps, st[k].count);
	}
}

/* Buckets and servers, in the order given, from "b:level;b/c:level;c=s1,s2":
 * an entry without '=' is a path of buckets from the root (created when
 * missing; "name:level", no level = "bucket"), "bucket=names" adds its 10x10
 * servers (servers()). */
static void topology(struct sched_cell *c, const char *spec)
{
	_cleanup_free_ char *copy = strdup(spec);
	char *p = copy, *entry;

	assert_non_null(copy);
	while ((entry = strsep(&p, ";"))) {
		char *names = strchr(entry, '='), *path = entry, *comp;
		int parent = SCHED_ROOT;

		if (names)
			*names++ = 0;
		while ((comp = strsep(&path, "/"))) {
			char *level = strchr(comp, ':');
			int id;

			if (level)
				*level++ = 0;
			id = sched_node_find(c, comp);
			parent = id >= 0 ? id : bucket(c, parent, comp, level, 0);
		}
		if (names)
			servers(c, parent, names);
	}
}

/* Treadmill's affinity-limit tests: a topology and its steps. */
static const struct {
	const char *topology;
	struct limit_step steps[3];
	size_t n;
} affinity_cases[] = {
	/* 26 test_affinity_limits_bunker */
	{ "bunker1:bunker;bunker2:bunker;bunker1/b1_left:rack;bunker1/b1_right:rack;bunker2/b2:rack;"
	  "b1_left=a,b;b1_right=c;b2=y,z",
	  { { 4, 2, 2, "server", 1, "bunker", 1, NULL, 0 }, { 4, 3, 3, "server", 1, "rack", 1, "bunker", 2 } },
	  2 },
	/* 27 test_affinity_limits_levels */
	{ "group1;group2;group1/g1_left:rack;group1/g1_right:rack;group2/g2_left:rack;group2/g2_right:rack;"
	  "g1_left=a,b;g1_right=c;g2_left=x;g2_right=y,z",
	  { { 7, 6, 1, "server", 1, NULL, 0, NULL, 0 },
	    { 6, 4, 2, "server", 1, "rack", 1, NULL, 0 },
	    { 4, 3, 3, "server", 1, "rack", 2, "cell", 3 } },
	  3 },
	/* 28 test_affinity_limits (cell4's tree) */
	{ "left:rack;right:rack;left=a,b;right=y,z",
	  { { 5, 4, 1, "server", 1, NULL, 0, NULL, 0 },
	    { 4, 2, 2, "server", 1, "rack", 1, NULL, 0 },
	    { 4, 3, 3, "server", 1, "rack", 2, "cell", 3 } },
	  3 },
};

static void affinity_case(size_t k)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();

	topology(c, affinity_cases[k].topology);
	limit_steps(c, root_alloc(c, NULL), affinity_cases[k].steps, affinity_cases[k].n);
}

static void test_affinity_limits_bunker(void **state)
{
	affinity_case(0);
}

static void test_affinity_limits_levels(void **state)
{
	affinity_case(1);
}

static void test_affinity_limits(void **state)
{
	affinity_case(2);
}

/* The common start of Treadmill's data retention tests: `sticky` (retention
 * 30) and `unsticky` (none) land on one server at 100; it goes down: only the
 * sticky app stays, until 130.  Returns that first server. */
static int retention_steps(struct sched_cell *c, int alloc, struct appdef *sticky, struct appdef *unsticky)
{
	int first;

	unsticky->retention = 0;
	add(c, alloc, sticky);
	add(c, alloc, unsticky);
	run(c, 100);
	first = server_of(c, sticky->id);
	assert_int_equal(first, server_of(c, unsticky->id));

	sched_server_set_state(c, first, SCHED_DOWN, 100);
	run(c, 100);
	assert_int_equal(server_of(c, sticky->id), first);
	assert_int_not_equal(server_of(c, unsticky->id), first);
	assert_true(sched_next_event_at(c) == 130);
	run(c, 110);
	assert_int_equal(server_of(c, sticky->id), first);
	assert_true(sched_next_event_at(c) == 130);
	run(c, 130);
	assert_int_not_equal(server_of(c, sticky->id), first);
	assert_true(isinf(sched_next_event_at(c)));
	return first;
}

/* 29 test_data_retention_levels */
static void test_data_retention_levels(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef sticky[1], unsticky;
	int first;

	topology(c, "group1;group2;group1/g1_left:rack;group1/g1_right:rack;group2/g2:rack;g1_left=a,b;g1_right=c;g2=y,z");
	app_list(sticky, 1, "sticky", 50, 1, 1);
	limits(&sticky[0], 2, "server", 1, "rack", 1, NULL, 0);
	sticky[0].retention = 30;
	unsticky = mkapp("unsticky", 10, 1, 1, "unsticky");
	first = retention_steps(c, alloc, sticky, &unsticky);
	assert_int_not_equal(server_of(c, unsticky.id), first);
}

/* 30 test_data_retention */
static void test_data_retention(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef sticky[3], unsticky;
	int first, second;

	cell4(c, "a", "b", "y", "z", "rack");
	app_list(sticky, 3, "sticky", 50, 1, 1);
	for (int i = 0; i < 3; i++) {
		limits(&sticky[i], 2, "server", 1, "rack", 1, NULL, 0);
		sticky[i].retention = 30;
	}
	unsticky = mkapp("unsticky", 10, 1, 1, "unsticky");
	first = retention_steps(c, alloc, sticky, &unsticky);
	second = server_of(c, sticky[0].id);

	sched_server_set_state(c, first, SCHED_UP, 130);
	sched_server_set_state(c, second, SCHED_DOWN, 130);
	run(c, 130);
	assert_int_equal(server_of(c, sticky[0].id), second);
	assert_int_not_equal(server_of(c, unsticky.id), second);
	assert_true(sched_next_event_at(c) == 160);

	add(c, alloc, &sticky[1]);
	add(c, alloc, &sticky[2]);
	run(c, 135);
	assert_int_equal(server_of(c, sticky[0].id), second);
	assert_int_equal(server_of(c, sticky[2].id), -1);

	sched_server_set_state(c, second, SCHED_UP, 135);
	run(c, 135);
	assert_int_equal(server_of(c, sticky[0].id), second);
	assert_int_equal(server_of(c, sticky[2].id), -1);
}

/* 31 test_serialization (schedule runs; dumps/loads are not implemented upstream) */
static void test_serialization(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef apps[4];

	cell4(c, "a", "b", "y", "z", "rack");
	add_limited(c, alloc, apps, 4, 2, "server", 1, "rack", 1, NULL, 0);
	assert_int_equal(placed(c, apps, 4), 2);
}

static void flat10(struct sched_cell *c, int64_t cap)
{
	for (int i = 0; i < 10; i++) {
		char n[16];

		snprintf(n, sizeof(n), "%d", i);
		server(c, SCHED_ROOT, n, cap, cap, 0, NULL, 1000);
	}
}

/* 32 test_identity */
static void test_identity(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef apps[10];
	int n;

	flat10(c, 10);
	assert_int_equal(sched_identity_group_set(c, "ident1", 3), 0);
	app_list(apps, 10, "app", 50, 1, 1);
	for (int i = 0; i < 10; i++) {
		apps[i].igroup = "ident1";
		add(c, alloc, &apps[i]);
	}
	run(c, 0);
	assert_int_equal(info_of(c, apps[0].id).identity, 0);
	assert_int_equal(info_of(c, apps[1].id).identity, 1);
	assert_int_equal(info_of(c, apps[2].id).identity, 2);
	for (int i = 3; i < 10; i++)
		assert_int_equal(info_of(c, apps[i].id).identity, -1);

	sched_app_remove(c, apps[2].id);
	run(c, 0);
	assert_int_equal(info_of(c, apps[3].id).identity, 2);

	sched_identity_group_set(c, "ident1", 5);
	run(c, 0);
	n = 0;
	for (int i = 0; i < 10; i++)
		n += i != 2 && server_of(c, apps[i].id) >= 0;
	assert_int_equal(n, 5);

	sched_identity_group_set(c, "ident1", 3);
	run(c, 0);
	n = 0;
	for (int i = 0; i < 10; i++)
		n += i != 2 && server_of(c, apps[i].id) >= 0;
	assert_int_equal(n, 3);
}

/* 33 test_schedule_once */
static void test_schedule_once(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef apps[2];

	flat10(c, 10);
	app_list(apps, 2, "app", 50, 6, 6);
	for (int i = 0; i < 2; i++) {
		apps[i].once = true;
		add(c, alloc, &apps[i]);
	}
	run(c, 0);
	assert_int_not_equal(server_of(c, apps[0].id), server_of(c, apps[1].id));
	assert_false(info_of(c, apps[0].id).evicted);
	sched_server_set_state(c, server_of(c, apps[0].id), SCHED_DOWN, 0);
	sched_node_remove(c, server_of(c, apps[1].id));
	run(c, 0);
	assert_int_equal(server_of(c, apps[0].id), -1);
	assert_true(info_of(c, apps[0].id).evicted);
	assert_int_equal(server_of(c, apps[1].id), -1);
	assert_true(info_of(c, apps[1].id).evicted);
}

static void count_change(const struct sched_change *ch, void *ud)
{
	(*(int *)ud)++;
}

/* 34 test_schedule_once_eviction */
static void test_schedule_once_eviction(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL), changes = 0, ev_small = 0, ev_large = 0, on_small = 0, on_large = 0;
	struct appdef small[10], large[10], medium[1];

	flat10(c, 10);
	app_list(small, 10, "small", 50, 1, 1);
	app_list(large, 10, "large", 60, 8, 8);
	for (int i = 0; i < 10; i++) {
		small[i].once = true;
		add(c, alloc, &small[i]);
	}
	for (int i = 0; i < 10; i++) {
		large[i].once = true;
		add(c, alloc, &large[i]);
	}
	assert_int_equal(sched_schedule(c, 0, count_change, &changes, NULL), 0);
	assert_int_equal(changes, 20);

	app_list(medium, 1, "medium", 70, 5, 5);
	add(c, alloc, &medium[0]);
	for (int round = 0; round < 2; round++) {
		run(c, 0);
		ev_small = ev_large = on_small = on_large = 0;
		for (int i = 0; i < 10; i++) {
			ev_small += info_of(c, small[i].id).evicted;
			on_small += server_of(c, small[i].id) >= 0;
			ev_large += info_of(c, large[i].id).evicted;
			on_large += server_of(c, large[i].id) >= 0;
		}
		assert_int_equal(ev_small, 0);
		assert_int_equal(on_small, 10);
		assert_int_equal(ev_large, 1);
		assert_int_equal(on_large, 9);
		/* removing the medium app does not bring the evicted one back */
		sched_app_remove(c, medium[0].id);
	}
}

/* 35 test_eviction_server_down */
static void test_eviction_server_down(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	int large = server(c, SCHED_ROOT, "large", 10, 10, 0, NULL, 10000);
	struct appdef a1 = mkapp("a1", 100, 4, 4, "app"), a2 = mkapp("a2", 1, 4, 4, "app");

	server(c, SCHED_ROOT, "small", 3, 3, 0, NULL, 10000);
	a2.retention = 3000;
	add(c, alloc, &a1);
	add(c, alloc, &a2);
	run(c, 100);
	assert_int_equal(server_of(c, a1.id), large);
	assert_int_equal(server_of(c, a2.id), large);
	sched_server_set_state(c, large, SCHED_DOWN, 100);
	run(c, 100);
	assert_int_equal(server_of(c, a1.id), -1);
	assert_int_equal(server_of(c, a2.id), large);
}

/* 36 test_restore */
static void test_restore(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	int large = server(c, SCHED_ROOT, "large", 10, 10, 0, NULL, 200);
	struct appdef apps[1], nofit[1];

	server(c, SCHED_ROOT, "small", 3, 3, 0, NULL, 1000);
	app_list(apps, 1, "app", 50, 6, 6);
	apps[0].lease = 50;
	add(c, alloc, &apps[0]);
	run(c, 100);
	assert_int_equal(server_of(c, apps[0].id), large);
	app_list(nofit, 1, "app-not-fit", 90, 6, 6);
	nofit[0].lease = 50;
	add(c, alloc, &nofit[0]);
	run(c, 190);
	assert_int_equal(server_of(c, nofit[0].id), -1);
	assert_int_equal(server_of(c, apps[0].id), large);
}

/* Treadmill's app.renew = True (no production caller: the master renews by
 * re-placing). */
static void set_renew(struct sched_cell *c, int app)
{
	c->hot[app].renew = true;
	c->need_full = true;
}

/* 37 test_renew */
static void test_renew(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	int a = server(c, SCHED_ROOT, "a", 10, 10, 0, NULL, 1000), b;
	struct appdef apps[1];

	app_list(apps, 1, "app", 50, 6, 6);
	apps[0].lease = 50;
	add(c, alloc, &apps[0]);
	run(c, 10);
	assert_int_equal(server_of(c, apps[0].id), a);
	assert_true(info_of(c, apps[0].id).expiry == 60);
	run(c, 100);
	assert_true(info_of(c, apps[0].id).expiry == 60);

	set_renew(c, apps[0].id);
	run(c, 200);
	assert_int_equal(server_of(c, apps[0].id), a);
	assert_true(info_of(c, apps[0].id).expiry == 250);
	assert_false(info_of(c, apps[0].id).renew);

	b = server(c, SCHED_ROOT, "b", 10, 10, 0, NULL, 2000);
	set_renew(c, apps[0].id);
	run(c, 975);
	assert_int_equal(server_of(c, apps[0].id), b);
	assert_true(info_of(c, apps[0].id).expiry == 1025);
	assert_false(info_of(c, apps[0].id).renew);

	set_renew(c, apps[0].id);
	run(c, 1975);
	assert_int_equal(server_of(c, apps[0].id), b);
	assert_true(info_of(c, apps[0].id).expiry == 1025);
	assert_true(info_of(c, apps[0].id).renew);
}

struct before_after {
	int n, before_none, after_none;
};

static void record_change(const struct sched_change *ch, void *ud)
{
	struct before_after *ba = ud;

	ba->n++;
	ba->before_none += ch->before_server < 0;
	ba->after_none += ch->after_server < 0;
}

/* 38 test_partition_server_down */
static void test_partition_server_down(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int x1 = server(c, SCHED_ROOT, "s_x1", 10, 10, 0, "x", 500), x2 = server(c, SCHED_ROOT, "s_x2", 10, 10, 0, "x", 500);
	int y1 = server(c, SCHED_ROOT, "s_y1", 10, 10, 0, "y", 500), y2 = server(c, SCHED_ROOT, "s_y2", 10, 10, 0, "y", 500);
	struct appdef ax1 = mkapp("a_x1", 1, 1, 1, "app"), ax2 = mkapp("a_x2", 1, 1, 1, "app"),
		      ay1 = mkapp("a_y1", 1, 1, 1, "app"), ay2 = mkapp("a_y2", 1, 1, 1, "app");
	struct before_after ba = { 0 };

	add(c, root_alloc(c, "x"), &ax1);
	add(c, root_alloc(c, "x"), &ax2);
	add(c, root_alloc(c, "y"), &ay1);
	add(c, root_alloc(c, "y"), &ay2);
	assert_int_equal(sched_schedule(c, 0, record_change, &ba, NULL), 0);
	assert_int_equal(ba.n, 4);
	assert_int_equal(ba.before_none, 4);
	assert_int_equal(ba.after_none, 0);
	assert_int_equal(napps_on(c, x1), 1);
	assert_int_equal(napps_on(c, x2), 1);
	assert_int_equal(napps_on(c, y1), 1);
	assert_int_equal(napps_on(c, y2), 1);

	sched_server_set_state(c, x1, SCHED_DOWN, 0);
	sched_server_set_state(c, y1, SCHED_DOWN, 0);
	memset(&ba, 0, sizeof(ba));
	assert_int_equal(sched_schedule(c, 0, record_change, &ba, NULL), 0);
	assert_int_equal(ba.before_none, 0);
	assert_int_equal(ba.after_none, 0);
	assert_true(server_of(c, ax1.id) >= 0 && server_of(c, ax2.id) >= 0 && server_of(c, ay1.id) >= 0 &&
		    server_of(c, ay2.id) >= 0);
}

/* 39 test_placement_shortcut */
static void test_placement_shortcut(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, "x");
	struct appdef l1 = mkapp("large-1", 100, 7, 1, "app"), l2 = mkapp("large-2", 100, 1, 7, "app");
	struct appdef med[9];

	server(c, SCHED_ROOT, "s1", 10, 10, 0, "x", 500);
	server(c, SCHED_ROOT, "s2", 10, 10, 0, "x", 500);
	add(c, alloc, &l1);
	add(c, alloc, &l2);
	run(c, 0);
	assert_true(server_of(c, l1.id) >= 0 && server_of(c, l2.id) >= 0);
	for (int i = 0; i < 9; i++) {
		char n[32];

		snprintf(n, sizeof(n), "medium-%d", i + 1);
		med[i] = mkapp(n, 90, 4, 4, "app");
		add(c, alloc, &med[i]);
	}
	run(c, 0);
	assert_int_equal(placed(c, med, 9), 0);
}

/* ---- IdentityGroupTest ------------------------------------------------------------- */

/* 40 test_basic */
static void test_ident_basic(void **state)
{
	struct pyset s;

	assert_int_equal(pyset_init_range(&s, 3), 0);
	assert_int_equal(pyset_pop(&s), 0);
	assert_int_equal(pyset_pop(&s), 1);
	assert_int_equal(pyset_pop(&s), 2);
	assert_int_equal(pyset_pop(&s), -1);
	pyset_add(&s, 1);
	assert_int_equal(pyset_pop(&s), 1);
	pyset_free(&s);
}

static struct pyset *group_set(struct sched_cell *c, const char *name)
{
	return &c->igroups[strmap_get(&c->igroup_by_name, name)].avail;
}

/* 41 test_adjust */
static void test_ident_adjust(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	struct pyset *s;

	sched_identity_group_set(c, "g", 5);
	s = group_set(c, "g");
	pyset_discard(s, 0);
	pyset_discard(s, 2);
	pyset_discard(s, 4); /* available = {1, 3} */
	sched_identity_group_set(c, "g", 7);
	assert_int_equal(pyset_len(s), 4);
	assert_true(pyset_contains(s, 1) && pyset_contains(s, 3) && pyset_contains(s, 5) && pyset_contains(s, 6));
	sched_identity_group_set(c, "g", 3);
	assert_int_equal(pyset_len(s), 1);
	assert_true(pyset_contains(s, 1));
}

/* 42 test_adjust_relese: after shrinking, releasing an out-of-range identity is dropped */
static void test_ident_adjust_release(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int alloc = root_alloc(c, NULL);
	struct appdef a = mkapp("a#1", 50, 1, 1, "a");

	servers(c, SCHED_ROOT, "s");
	sched_identity_group_set(c, "g", 1);
	a.igroup = "g";
	add(c, alloc, &a);
	run(c, 0);
	assert_int_equal(info_of(c, a.id).identity, 0);
	assert_int_equal(pyset_len(group_set(c, "g")), 0);
	sched_identity_group_set(c, "g", 0);
	sched_app_remove(c, a.id); /* release(0) */
	assert_int_equal(pyset_len(group_set(c, "g")), 0);
}

/* ---- RebootSchedulerTest -------------------------------------------------------------- */

static double lt(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s,
			 .tm_isdst = -1 };

	return (double)mktime(&tm);
}

/* 43 test_bucket */
static void test_reboot_bucket(void **state)
{
	double ts = lt(2000, 1, 3, 0, 0, 0);

	assert_true(sched_reboot_cost(ts, 0, lt(2000, 1, 1, 0, 0, 0)) == 0);
	assert_true(sched_reboot_cost(ts, 1, lt(2000, 1, 1, 0, 0, 0)) == 1);
	assert_true(isinf(sched_reboot_cost(ts, 1, lt(1999, 1, 1, 0, 0, 0))));
	assert_true(isinf(sched_reboot_cost(ts, 1, lt(2000, 1, 2, 10, 0, 0))));
}

/* 44 test_reboots */
static void test_reboots(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = cell2();
	int p = sched_partition_get(c, NULL), s[4];
	int64_t cap[2] = { 10, 10 };
	double t0 = lt(2000, 1, 1, 0, 0, 0), ts;
	struct sched_node_info n1, n2, n3, n4;

	for (int i = 0; i < 4; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%d", i + 1);
		s[i] = sched_server_add(c, SCHED_ROOT, name, cap, 0, NULL, i < 3 ? t0 : lt(1999, 12, 24, 0, 0, 0), 0);
	}
	assert_int_equal(sched_partition_set_reboot_schedule(c, p, NULL, t0), 0);
	ts = c->parts[p].reboot->b[0].ts;
	sched_partition_add_server(c, p, s[0], ts);
	sched_node_info(c, s[0], &n1);
	assert_true(n1.valid_until == ts);
	sched_partition_add_server(c, p, s[1], ts + 600);
	sched_node_info(c, s[1], &n2);
	assert_true(n2.valid_until != ts + 600);
	sched_partition_add_server(c, p, s[2], 0);
	sched_node_info(c, s[2], &n3);
	assert_true(n3.valid_until != n2.valid_until);
	sched_partition_add_server(c, p, s[3], 0);
	sched_node_info(c, s[3], &n4);
	assert_true(n4.valid_until < lt(1999, 12, 24, 0, 0, 0) + SCHED_SERVER_UPTIME);
}

/* 45 test_reboot_dates */
static void test_reboot_dates(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = sched_cell_new("top", 3, SCHED_MODE_COMPAT);
	int p = sched_partition_get(c, NULL);
	const struct sched_reboot *r;

	/* the reboot buckets a schedule set on Monday 2018-01-01 gives */
	assert_int_equal(sched_partition_set_reboot_schedule(c, p, "sat,sun", lt(2018, 1, 1, 0, 0, 0)), 0);
	r = c->parts[p].reboot;
	assert_true(r->n >= 2);
	assert_true(r->b[0].ts == lt(2018, 1, 6, 23, 59, 59));
	assert_true(r->b[1].ts == lt(2018, 1, 7, 23, 59, 59));
	assert_int_equal(sched_partition_set_reboot_schedule(c, p, "sat,sun/10:30:00", lt(2018, 1, 1, 0, 0, 0)), 0);
	r = c->parts[p].reboot;
	assert_true(r->b[0].ts == lt(2018, 1, 6, 23, 59, 59));
	assert_true(r->b[1].ts == lt(2018, 1, 7, 10, 30, 0));
	assert_int_equal(sched_partition_set_reboot_schedule(c, p, "someday", lt(2018, 1, 1, 0, 0, 0)), -EINVAL);
}

/* ---- ShapeTest ------------------------------------------------------------------------- */

/* 46 test_affinity_constraints and 47 test_app_shape: the tracker key starts
 * with (affinity, *sorted(limit values), lease) */
static void test_affinity_constraints(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = sched_cell_new("top", 3, SCHED_MODE_COMPAT);
	int alloc = root_alloc(c, NULL);
	int64_t d[3] = { 1, 1, 1 };
	struct sched_app_spec s = { .name = "foo", .priority = 11, .demand = d, .affinity = "foo" };
	int a = sched_app_add(c, alloc, &s);

	assert_true(strncmp(sched_app_shape(c, a), "foo\x1f" "0\x1f", 6) == 0);
}

static void test_app_shape(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = sched_cell_new("top", 3, SCHED_MODE_COMPAT);
	int alloc = root_alloc(c, NULL);
	int64_t d[3] = { 1, 1, 1 };
	struct sched_limit lim[2] = { { "server", 1 }, { "rack", 2 } };
	struct sched_app_spec s = { .name = "foo", .priority = 11, .demand = d, .affinity = "bar" };
	int a, b, e;

	a = sched_app_add(c, alloc, &s);
	assert_true(strncmp(sched_app_shape(c, a), "bar\x1f" "0\x1f", 6) == 0);
	s.name = "foo2";
	s.lease = 5;
	b = sched_app_add(c, alloc, &s);
	assert_true(strncmp(sched_app_shape(c, b), "bar\x1f" "5\x1f", 6) == 0);
	s.name = "foo3";
	s.lease = 0;
	s.limits = lim;
	s.n_limits = 2;
	e = sched_app_add(c, alloc, &s);
	assert_true(strncmp(sched_app_shape(c, e), "bar\x1f" "1\x1f" "2\x1f" "0\x1f", 10) == 0);
}

/* 48 test_placement_tracker */
static void test_placement_tracker(void **state)
{
	_cleanup_sched_cell_ struct sched_cell *c = sched_cell_new("top", 3, SCHED_MODE_COMPAT);
	int alloc = root_alloc(c, NULL);
	int64_t d2[3] = { 2, 2, 2 }, d3[3] = { 3, 3, 3 }, d1[3] = { 1, 1, 1 }, d5[3] = { 5, 5, 5 };
	struct sched_app_spec s = { .name = "foo", .priority = 11, .demand = d2, .affinity = "bar" };
	int a2, a3, a1, o;

	a2 = sched_app_add(c, alloc, &s);
	s.name = "foo3";
	s.demand = d3;
	a3 = sched_app_add(c, alloc, &s);
	s.name = "foo1";
	s.demand = d1;
	a1 = sched_app_add(c, alloc, &s);
	s.name = "other";
	s.demand = d5;
	s.affinity = "bar1";
	o = sched_app_add(c, alloc, &s);
	c->tracker_gen++;
	sched_tracker_adjust(c, &c->apps[a2]);
	assert_false(sched_tracker_feasible(c, &c->apps[a2]));
	assert_false(sched_tracker_feasible(c, &c->apps[a3]));
	assert_true(sched_tracker_feasible(c, &c->apps[a1]));
	assert_true(sched_tracker_feasible(c, &c->apps[o]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_utilization),
		cmocka_unit_test(test_running_order),
		cmocka_unit_test(test_utilization_max),
		cmocka_unit_test(test_priority_zero),
		cmocka_unit_test(test_rank_adjustment),
		cmocka_unit_test(test_zerovector),
		cmocka_unit_test(test_utilization_no_reservation),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_sub_allocs),
		cmocka_unit_test(test_sub_alloc_reservation),
		cmocka_unit_test(test_visitor),
		cmocka_unit_test(test_traits),
		cmocka_unit_test(test_bucket_capacity),
		cmocka_unit_test(test_app_node_placement),
		cmocka_unit_test(test_bucket_placement),
		cmocka_unit_test(test_valid_times),
		cmocka_unit_test(test_node_traits),
		cmocka_unit_test(test_app_trait_placement),
		cmocka_unit_test(test_size_and_members),
		cmocka_unit_test(test_affinity_counters),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_max_utilization),
		cmocka_unit_test(test_affinity_limits_bunker),
		cmocka_unit_test(test_affinity_limits_levels),
		cmocka_unit_test(test_affinity_limits),
		cmocka_unit_test(test_data_retention_levels),
		cmocka_unit_test(test_data_retention),
		cmocka_unit_test(test_serialization),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_schedule_once),
		cmocka_unit_test(test_schedule_once_eviction),
		cmocka_unit_test(test_eviction_server_down),
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_renew),
		cmocka_unit_test(test_partition_server_down),
		cmocka_unit_test(test_placement_shortcut),
		cmocka_unit_test(test_ident_basic),
		cmocka_unit_test(test_ident_adjust),
		cmocka_unit_test(test_ident_adjust_release),
		cmocka_unit_test(test_reboot_bucket),
		cmocka_unit_test(test_reboots),
		cmocka_unit_test(test_reboot_dates),
		cmocka_unit_test(test_affinity_constraints),
		cmocka_unit_test(test_app_shape),
		cmocka_unit_test(test_placement_tracker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
