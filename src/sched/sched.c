/* sched.c: the cell model and Treadmill's placement algorithm.
 *
 * Function names follow Treadmill's scheduler/__init__.py where the code
 * mirrors it (put, remove, adjust_capacity_up/down, utilization_queue,
 * _find_placements, ...), so the two can be read side by side.  See
 * docs/SCHEDULER.md for the improved mode. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sched-internal.h"

#define ND(c) ((c)->ndims)

/* ---- small helpers ------------------------------------------------------------ */

/* Ask for transparent huge pages on the 2 MiB-aligned interior of a large
 * array: first-touch page faults dominate building a big model otherwise. */
static void hint_huge(void *p, size_t len)
{
	const uintptr_t huge = 2u << 20;
	uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + len) & ~(huge - 1);

	if (e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
}

static int grow_array(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n;
	void *q;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	if (n * elem >= (4u << 20))
		hint_huge(q, n * elem);
	*p = q;
	*cap = n;
	return 0;
}
#define GROW(p, cap, need) grow_array((void **)&(p), &(cap), (need), sizeof(*(p)))

/* Arrays a pass sweeps through (apps, hot lines, queues) live in their own
 * mappings with transparent huge pages asked for before the first touch:
 * in a VM a 4 KiB first-touch fault costs tens of microseconds, and a 100k
 * app cell touches thousands of them in its first pass.  Freed with
 * huge_free(p, cap * elem). */
#define HUGE_ALIGN ((size_t)2 << 20)

static void *huge_map(size_t len)
{
	size_t want = (len + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
	uint8_t *p = mmap(NULL, want + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((void *)(a + want), (uintptr_t)p + want + HUGE_ALIGN - (a + want));
	(void)madvise((void *)a, want, MADV_HUGEPAGE);
	return (void *)a;
}

/* Below one huge page an array is plain malloc'ed memory. */
static void huge_free(void *p, size_t len)
{
	if (!p)
		return;
	if (len >= HUGE_ALIGN)
		munmap(p, (len + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1));
	else
		free(p);
}

static int huge_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n;
	void *q;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	if (n * elem < HUGE_ALIGN) {
		q = realloc(*p, n * elem);
		if (!q)
			return -ENOMEM;
		*p = q;
		*cap = n;
		return 0;
	}
	/* whole huge pages: use them up */
	n = ((n * elem + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1)) / elem;
	q = huge_map(n * elem);
	if (!q)
		return -ENOMEM;
	if (*p) {
		memcpy(q, *p, *cap * elem);
		huge_free(*p, *cap * elem);
	}
	*p = q;
	*cap = n;
	return 0;
}
#define HGROW(p, cap, need) huge_grow((void **)&(p), &(cap), (need), sizeof(*(p)))

static char *xstrdup_printf(const char *fmt, ...) _printf_(1, 2);
static char *xstrdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

static void mark_dirty(struct sched_cell *c, int id);
static void pend_add(struct sched_cell *c, int id);

static bool same_expiry(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return a == b;
}

/* ---- interned names --------------------------------------------------------------- */

static int intern(char ***arr, size_t *n, size_t *cap, struct strmap *m, const char *s)
{
	int id = strmap_get(m, s);
	char *d;

	if (id >= 0)
		return id;
	if (GROW(*arr, *cap, *n + 1) < 0)
		return -ENOMEM;
	d = strdup(s);
	if (!d)
		return -ENOMEM;
	(*arr)[*n] = d;
	if (strmap_put(m, d, (int)*n) < 0) {
		free(d);
		return -ENOMEM;
	}
	return (int)(*n)++;
}

/* Per-affinity arrays follow the interned affinity table. */
static int ensure_aff_arrays(struct sched_cell *c)
{
	size_t old_l = c->caff_limited, old_p = c->caff_placed, old_t = c->cafft;

	if (GROW(c->aff_limited, c->caff_limited, c->naffs + 1) < 0 ||
	    GROW(c->aff_placed, c->caff_placed, c->naffs + 1) < 0 || GROW(c->afft, c->cafft, c->naffs + 1) < 0)
		return -ENOMEM;
	if (c->cafft > old_t)
		memset(c->afft + old_t, 0, (c->cafft - old_t) * sizeof(*c->afft));
	if (c->caff_limited > old_l)
		memset(c->aff_limited + old_l, 0, (c->caff_limited - old_l) * sizeof(*c->aff_limited));
	if (c->caff_placed > old_p)
		memset(c->aff_placed + old_p, 0, (c->caff_placed - old_p) * sizeof(*c->aff_placed));
	return 0;
}

static int level_id(struct sched_cell *c, const char *name)
{
	char *d;

	for (int i = 0; i < c->nlevels; i++)
		if (strcmp(c->levels[i], name) == 0)
			return i;
	if (c->nlevels >= SCHED_LEVELS_MAX)
		return -E2BIG;
	d = strdup(name);
	if (!d)
		return -ENOMEM;
	c->levels[c->nlevels] = d;
	return c->nlevels++;
}

/* ---- (node, affinity) map ---------------------------------------------------------- */

#define AFF_EMPTY UINT32_MAX

static inline uint64_t aff_key(int node, int aff)
{
	return ((uint64_t)(uint32_t)node << 32) | (uint32_t)aff;
}

static inline size_t aff_slot(uint32_t k, size_t cap)
{
	uint64_t h = (uint64_t)k * 0x9E3779B97F4A7C15ull;

	return (size_t)(h >> 32) & (cap - 1);
}

static struct nodeaff *aff_find(const struct affmap *m, uint32_t key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = aff_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->e[i].key == key)
			return &m->e[i];
		if (m->e[i].key == AFF_EMPTY)
			return NULL;
	}
}

static int affpool_class(size_t cap)
{
	int k = 0;

	while (((size_t)4 << k) < cap)
		k++;
	return k < AFFPOOL_CLASSES && ((size_t)4 << k) == cap ? k : -1;
}

static struct nodeaff *affpool_alloc(struct affpool *p, size_t cap)
{
	int k = affpool_class(cap);
	size_t len = cap * sizeof(struct nodeaff);
	void *e;

	if (k < 0)
		return malloc(len);
	if (p->free[k]) {
		e = p->free[k];
		memcpy(&p->free[k], e, sizeof(void *));
		return e;
	}
	if (p->left < len) {
		uint8_t *b;

		if (GROW(p->blocks, p->cblocks, p->nblocks + 1) < 0)
			return NULL;
		b = huge_map(AFFPOOL_BLOCK);
		if (!b)
			return NULL;
		p->blocks[p->nblocks++] = b;
		p->cur = b;
		p->left = AFFPOOL_BLOCK;
	}
	e = p->cur;
	p->cur += len;
	p->left -= len;
	return e;
}

static void affpool_free(struct affpool *p, struct nodeaff *e, size_t cap)
{
	int k = affpool_class(cap);

	if (!e)
		return;
	if (k < 0) {
		free(e);
		return;
	}
	memcpy(e, &p->free[k], sizeof(void *));
	p->free[k] = e;
}

static void affpool_destroy(struct affpool *p)
{
	for (size_t i = 0; i < p->nblocks; i++)
		huge_free(p->blocks[i], AFFPOOL_BLOCK);
	free(p->blocks);
	*p = (struct affpool){};
}

static int aff_rehash(struct affpool *p, struct affmap *m, size_t cap)
{
	struct affmap n;
	size_t i;

	n.cap = cap;
	n.used = m->used;
	n.gen = m->gen + 1;
	n.e = affpool_alloc(p, n.cap);
	if (!n.e)
		return -ENOMEM;
	if (n.cap * sizeof(*n.e) >= (4u << 20))
		hint_huge(n.e, n.cap * sizeof(*n.e));
	for (i = 0; i < n.cap; i++)
		n.e[i].key = AFF_EMPTY;
	for (i = 0; i < m->cap; i++) {
		size_t j;

		if (m->e[i].key == AFF_EMPTY)
			continue;
		for (j = aff_slot(m->e[i].key, n.cap); n.e[j].key != AFF_EMPTY; j = (j + 1) & (n.cap - 1))
			;
		n.e[j] = m->e[i];
	}
	affpool_free(p, m->e, m->cap);
	*m = n;
	return 0;
}

/* A bucket's "cursor 1" bit for an affinity, cleared: returns the cursor it stood for. */
static inline uint64_t *one_word(const struct sched_cell *c, int node, int aff, uint64_t *bit)
{
	int slot = c->nodes[node].one_slot;

	if (slot < 0 || (size_t)aff >= c->one_rows)
		return NULL;
	*bit = 1ull << (slot % 64);
	return &c->one[(size_t)aff * c->one_w + (size_t)slot / 64];
}

static int one_take(struct sched_cell *c, int node, int aff)
{
	uint64_t bit, *w = one_word(c, node, aff, &bit);

	if (!w || !(*w & bit))
		return 0;
	*w &= ~bit;
	return 1;
}

/* Room for affinity `aff`'s row and for one more column (when `col`). */
static int one_grow(struct sched_cell *c, size_t rows, bool col)
{
	size_t w = c->one_w, nrows = MAX(c->one_rows, rows);
	uint64_t *m;

	/* widening copies every row: start at up to 512 columns */
	if (col && c->one_slots + 1 > w * 64)
		w = w ? w * 2 : MIN((size_t)8, (c->nnodes + 63) / 64);
	if (nrows > c->one_rows)
		nrows = MAX(nrows, MAX(c->caffs, c->one_rows * 2));
	if (w == c->one_w && nrows == c->one_rows)
		return 0;
	m = calloc(nrows * w, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (size_t r = 0; r < c->one_rows; r++)
		memcpy(m + r * w, c->one + r * c->one_w, c->one_w * sizeof(*m));
	free(c->one);
	c->one = m;
	c->one_w = w;
	c->one_rows = nrows;
	return 0;
}

static struct nodeaff *aff_get(struct sched_cell *c, int aff, uint32_t key)
{
	struct affmap *m = &c->afft[aff];
	struct nodeaff *e = aff_find(m, key);
	size_t i;

	if (e)
		return e;
	if ((m->used + 1) * 4 >= m->cap * 3) {
		if (aff_rehash(&c->affpool, m, m->cap ? m->cap * 2 : 4) < 0)
			return NULL;
	}
	for (i = aff_slot(key, m->cap); m->e[i].key != AFF_EMPTY; i = (i + 1) & (m->cap - 1))
		;
	m->e[i] = (struct nodeaff){ .key = key, .cursor = one_take(c, (int)key, aff) };
	m->used++;
	return &m->e[i];
}

static inline int32_t aff_count(const struct sched_cell *c, int node, int aff)
{
	const struct nodeaff *e = aff_find(&c->afft[aff], (uint32_t)node);

	return e ? e->count : 0;
}

/* Counter.update / Counter.subtract from `node` up to the root.  Counters are
 * only consulted for apps with affinity limits, so they are only kept for
 * affinities that have such an app (rebuilt when the first one arrives). */
static int aff_add_up(struct sched_cell *c, int node, int aff, int delta)
{
	if (!c->aff_limited[aff])
		return 0;
	for (; node >= 0; node = c->nodes[node].parent) {
		struct nodeaff *e = aff_get(c, aff, (uint32_t)node);

		if (!e)
			return -ENOMEM;
		e->count += delta;
	}
	return 0;
}

/* ---- cell ------------------------------------------------------------------------------ */

static struct sched_node *node_new(struct sched_cell *c, const char *name, int *ret_id)
{
	struct sched_node *n;

	if (GROW(c->nodes, c->cnodes, c->nnodes + 1) < 0)
		return NULL;
	n = &c->nodes[c->nnodes];
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	if (!n->name)
		return NULL;
	if (strmap_put(&c->node_by_name, n->name, (int)c->nnodes) < 0) {
		free(n->name);
		return NULL;
	}
	n->parent = -1;
	n->one_slot = -1;
	n->partition = -1;
	n->app_head = n->app_tail = -1;
	n->state = SCHED_UP;
	*ret_id = (int)c->nnodes++;
	return n;
}

struct sched_cell *sched_cell_new(const char *name, int ndims, enum sched_mode mode)
{
	struct sched_cell *c;
	struct sched_node *root;
	int id;

	if (ndims < 1 || ndims > SCHED_DIMS_MAX)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->mode = mode;
	c->ndims = ndims;
	c->levels = calloc(SCHED_LEVELS_MAX, sizeof(char *));
	c->parts = calloc(SCHED_PARTITIONS_MAX, sizeof(*c->parts));
	c->next_event_at = INFINITY;
	c->need_full = true;
	c->topo_dirty = true;
	if (!c->levels || !c->parts || level_id(c, "cell") != 0 || level_id(c, "server") != 1)
		goto fail;
	root = node_new(c, name ? name : "cell", &id);
	if (!root)
		goto fail;
	root->level = 0;
	return c;
fail:
	sched_cell_free(c);
	return NULL;
}

void sched_cell_free(struct sched_cell *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nnodes; i++) {
		free(c->nodes[i].name);
		free(c->nodes[i].down_why);
		free(c->nodes[i].children);
		free(c->nodes[i].seg);
	}
	free(c->nodes);
	strmap_free(&c->node_by_name);
	if (c->levels)
		for (int l = 0; l < c->nlevels; l++)
			free(c->levels[l]);
	free(c->levels);
	if (c->parts)
		for (int p = 0; p < c->nparts; p++) {
			free(c->parts[p].label);
			sched_reboot_free(c->parts[p].reboot);
		}
	free(c->parts);
	for (i = 0; i < c->nallocs; i++) {
		free(c->allocs[i].name);
		free(c->allocs[i].leaf);
		free(c->allocs[i].subs);
		free(c->allocs[i].ids);
		huge_free(c->allocs[i].q, c->allocs[i].qcap * sizeof(*c->allocs[i].q));
		free(c->allocs[i].h);
		huge_free(c->allocs[i].pq, c->allocs[i].pqcap * sizeof(*c->allocs[i].pq));
	}
	free(c->allocs);
	for (i = 0; i < c->napps; i++)
		free(c->apps[i].name);
	huge_free(c->apps, c->capps * sizeof(*c->apps));
	huge_free(c->hot, c->chot * sizeof(*c->hot));
	huge_free(c->touched, c->ctouched * sizeof(*c->touched));
	free(c->dirty);
	free(c->pend);
	free(c->srv_changed);
	free(c->scr);
	free(c->room);
	free(c->room_gen);
	strmap_free(&c->app_by_name);
	for (i = 0; i < c->naffs; i++)
		free(c->affs[i]);
	free(c->affs);
	strmap_free(&c->aff_by_name);
	for (i = 0; i < c->nshapes; i++)
		free(c->shapes[i]);
	free(c->shapes);
	free(c->tracker);
	strmap_free(&c->shape_by_key);
	for (i = 0; i < c->nlimitsets; i++)
		free(c->limitkeys[i]);
	free(c->limitkeys);
	free(c->limitsets);
	strmap_free(&c->limit_by_key);
	for (i = 0; i < c->nigroups; i++) {
		free(c->igroups[i].name);
		pyset_free(&c->igroups[i].avail);
	}
	free(c->igroups);
	strmap_free(&c->igroup_by_name);
	for (i = 0; i < c->naffs && c->afft; i++)
		affpool_free(&c->affpool, c->afft[i].e, c->afft[i].cap);

	free(c->afft);
	affpool_destroy(&c->affpool);
	free(c->one);
	free(c->packs);
	free(c->aff_limited);
	free(c->aff_placed);
	free(c->srv_order);
	huge_free(c->queue, c->cqueue * sizeof(*c->queue));
	huge_free(c->placed_pos, c->cplaced_pos * sizeof(*c->placed_pos));
	free(c);
}

/* ---- topology ---------------------------------------------------------------------------- */

static bool valid_node(const struct sched_cell *c, int n)
{
	return n >= 0 && (size_t)n < c->nnodes && !c->nodes[n].removed;
}

/* ---- per-bucket max trees: skip children that cannot take a demand ---------
 * A child that fails check_app_constraints is skipped by Bucket.put with no
 * side effect (no cursor of its own is touched), so jumping over runs of
 * children whose free capacity is too small gives the same placements,
 * in O(log children) instead of O(children). */

#define SD SCHED_DIMS_MAX
#define SEG(n, p, k) ((n)->seg + (((size_t)(p) * 2 * (n)->segleaves + (k)) * SD))

static void seg_pull(struct sched_cell *c, struct sched_node *n, size_t leaf)
{
	for (int p = 0; p < n->segparts; p++)
		for (size_t k = leaf >> 1; k >= 1; k >>= 1) {
			int64_t *t = SEG(n, p, k), *l = SEG(n, p, 2 * k), *r = SEG(n, p, 2 * k + 1);

			for (int d = 0; d < ND(c); d++)
				t[d] = MAX(l[d], r[d]);
		}
}

static void seg_leaf(struct sched_cell *c, struct sched_node *n, int i)
{
	int ch;

	if (!n->seg)
		return;
	ch = n->children[i];
	for (int p = 0; p < n->segparts; p++) {
		int64_t *t = SEG(n, p, n->segleaves + (size_t)i);
		bool ok = ch >= 0 && c->nodes[ch].state == SCHED_UP && (c->nodes[ch].labels & (1ull << p));

		for (int d = 0; d < ND(c); d++)
			t[d] = ok ? c->nodes[ch].free[d] : INT64_MIN;
	}
}

/* A child's free, state or labels changed: update its parent's trees. */
static void seg_update(struct sched_cell *c, int child)
{
	int p = c->nodes[child].parent;
	struct sched_node *n;

	if (p < 0 || c->mode != SCHED_MODE_COMPAT)
		return;
	n = &c->nodes[p];
	if (!n->seg)
		return;
	seg_leaf(c, n, c->nodes[child].pos);
	seg_pull(c, n, n->segleaves + (size_t)c->nodes[child].pos);
}

static int seg_rebuild(struct sched_cell *c, int b)
{
	struct sched_node *n = &c->nodes[b];
	size_t leaves = 1, total;
	int parts = MAX(c->nparts, 1);
	int64_t *seg;

	if (c->mode != SCHED_MODE_COMPAT)
		return 0;

	while (leaves < (size_t)n->nchildren)
		leaves *= 2;
	total = (size_t)parts * 2 * leaves * SD;
	if (leaves != n->segleaves || parts != n->segparts || !n->seg) {
		seg = malloc(total * sizeof(int64_t));
		if (!seg)
			return -ENOMEM;
		free(n->seg);
		n->seg = seg;
		n->segleaves = leaves;
		n->segparts = parts;
	}
	for (size_t k = 0; k < total; k++)
		n->seg[k] = INT64_MIN;
	for (int i = 0; i < n->nchildren; i++)
		seg_leaf(c, n, i);
	for (int p = 0; p < parts; p++)
		for (size_t k = leaves - 1; k >= 1; k--) {
			int64_t *t = SEG(n, p, k), *l = SEG(n, p, 2 * k), *r = SEG(n, p, 2 * k + 1);

			for (int d = 0; d < ND(c); d++)
				t[d] = MAX(l[d], r[d]);
		}
	return 0;
}

static inline bool seg_fits(const struct sched_cell *c, const int64_t *t, const int64_t *dem)
{
	for (int d = 0; d < ND(c); d++)
		if (t[d] < dem[d])
			return false;
	return true;
}

/* First child index in [lo, hi) that is up, of partition p, with free >= dem,
 * or -1.  Bottom-up from leaf lo: an in-order walk of the subtrees right of
 * it, entering those whose maxima fit (per dimension, so a subtree may fit
 * and hold no leaf that does: the walk then moves on to its right). */
static int seg_find(const struct sched_cell *c, const struct sched_node *n, int p, size_t lo, size_t hi,
		    const int64_t *dem)
{
	const size_t leaves = n->segleaves;
	const int logl = __builtin_ctzll(leaves);
	size_t k;

	if (lo >= hi)
		return -1;
	k = leaves + lo;
	for (;;) {
		if (seg_fits(c, SEG(n, p, k), dem)) {
			if (k >= leaves)
				return k - leaves < hi ? (int)(k - leaves) : -1;
			k *= 2;
			continue;
		}
		while (k & 1)
			k >>= 1;
		if (k == 0)
			return -1;
		k++;
		/* the leftmost leaf under k */
		if ((k << (logl - (63 - __builtin_clzll(k)))) - leaves >= hi)
			return -1;
	}
}

static void adjust_capacity_up(struct sched_cell *c, int b, const int64_t *cap)
{
	int d;

	for (; b >= 0; b = c->nodes[b].parent) {
		struct sched_node *n = &c->nodes[b];

		bool changed = false;

		for (d = 0; d < ND(c); d++)
			if (cap[d] > n->free[d]) {
				n->free[d] = cap[d];
				changed = true;
			}
		if (changed)
			seg_update(c, b);
		cap = n->free;
	}
}

/* Improved mode's load totals: add (sign +1) or remove a server's free and
 * capacity from its ancestors' sums. */
static void sums_add(struct sched_cell *c, int from, const int64_t *free, const int64_t *cap, int sign)
{
	if (c->mode != SCHED_MODE_IMPROVED)
		return;
	for (int b = from; b >= 0; b = c->nodes[b].parent)
		for (int d = 0; d < ND(c); d++) {
			c->nodes[b].sum_free[d] += sign * free[d];
			if (cap)
				c->nodes[b].sum_cap[d] += sign * cap[d];
		}
}

/* Sums of every up server under `node` into `from` and its ancestors. */
static void subtree_sums(struct sched_cell *c, int node, int from, int sign)
{
	struct sched_node *n = &c->nodes[node];

	if (n->server) {
		if (n->state == SCHED_UP)
			sums_add(c, from, n->free, n->cap, sign);
		return;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			subtree_sums(c, n->children[i], from, sign);
}

static void adjust_capacity_down(struct sched_cell *c, int b, const int64_t *prev_in)
{
	int64_t bufs[2][SCHED_DIMS_MAX];
	int64_t prev[SCHED_DIMS_MAX];
	bool have_prev = prev_in != NULL;
	int which = 0, d;

	if (have_prev)
		memcpy(prev, prev_in, sizeof(prev));
	while (b >= 0) {
		struct sched_node *n = &c->nodes[b];
		int64_t *f = bufs[which];
		bool lt;

		if (n->nlive == 0) {
			memset(n->free, 0, sizeof(n->free));
			seg_update(c, b);
			b = n->parent;
			have_prev = false;
			continue;
		}
		if (have_prev) {
			bool all_lt = true;

			for (d = 0; d < ND(c); d++)
				if (!(prev[d] < n->free[d])) {
					all_lt = false;
					break;
				}
			if (all_lt)
				return;
		}
		memset(f, 0, sizeof(bufs[0]));
		for (int i = 0; i < n->nchildren; i++) {
			int ch = n->children[i];
			const struct sched_node *cn;

			if (ch < 0)
				continue;
			cn = &c->nodes[ch];
			if (cn->state != SCHED_UP)
				continue;
			for (d = 0; d < ND(c); d++)
				if (cn->free[d] > f[d])
					f[d] = cn->free[d];
		}
		lt = false;
		for (d = 0; d < ND(c); d++)
			if (f[d] < n->free[d]) {
				lt = true;
				break;
			}
		if (!lt)
			return;
		memcpy(prev, n->free, sizeof(prev));
		have_prev = true;
		memcpy(n->free, f, sizeof(n->free));
		seg_update(c, b);
		b = n->parent;
		which ^= 1;
	}
}

static void recompute_traits_up(struct sched_cell *c, int b)
{
	for (; b >= 0; b = c->nodes[b].parent) {
		struct sched_node *n = &c->nodes[b];
		uint64_t t = n->traits_self;

		for (int i = 0; i < n->nchildren; i++)
			if (n->children[i] >= 0)
				t |= c->nodes[n->children[i]].traits;
		n->traits = t;
	}
}

/* Add or subtract the affinity counters of every app under `node` to `from` and its ancestors. */
static int subtree_affinity(struct sched_cell *c, int node, int from, int delta)
{
	struct sched_node *n = &c->nodes[node];
	int r;

	if (n->server) {
		for (int a = n->app_head; a >= 0; a = c->apps[a].srv_next) {
			r = aff_add_up(c, from, c->apps[a].affinity, delta);
			if (r < 0)
				return r;
		}
		return 0;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0) {
			r = subtree_affinity(c, n->children[i], from, delta);
			if (r < 0)
				return r;
		}
	return 0;
}

/* Bucket.add_node */
static int attach(struct sched_cell *c, int parent, int id)
{
	struct sched_node *p = &c->nodes[parent];
	struct sched_node *n = &c->nodes[id];
	uint64_t labels;

	if (GROW(p->children, p->cchildren, (size_t)p->nchildren + 1) < 0)
		return -ENOMEM;
	n->pos = p->nchildren;
	p->children[p->nchildren++] = id;
	p->nlive++;
	n->parent = parent;
	if (seg_rebuild(c, parent) < 0)
		return -ENOMEM;
	recompute_traits_up(c, parent);
	if (subtree_affinity(c, id, parent, +1) < 0)
		return -ENOMEM;
	labels = n->labels;
	seg_update(c, id);
	for (int b = parent; b >= 0; b = c->nodes[b].parent) {
		uint64_t old = c->nodes[b].labels;

		c->nodes[b].labels |= labels;
		labels = c->nodes[b].labels;
		if (labels != old)
			seg_update(c, b);
	}
	adjust_capacity_up(c, parent, c->nodes[id].free);
	subtree_sums(c, id, parent, +1);
	c->topo_dirty = true;
	c->need_full = true;
	return 0;
}

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
	adjust_capacity_down(c, parent, n->free);
	c->topo_dirty = true;
	c->need_full = true;
	return 0;
}

int sched_bucket_add(struct sched_cell *c, int parent, const char *name, const char *level, uint64_t traits)
{
	struct sched_node *n;
	_cleanup_free_ char *lv = NULL;
	int id, lid, r;

	if (!name || !*name || !valid_node(c, parent) || c->nodes[parent].server)
		return -EINVAL;
	if (strmap_get(&c->node_by_name, name) >= 0)
		return -EEXIST;
	if (!level) {
		const char *colon = strchr(name, ':');

		lv = colon ? strndup(name, (size_t)(colon - name)) : strdup(name);
		if (!lv)
			return -ENOMEM;
		level = lv;
	}
	lid = level_id(c, level);
	if (lid < 0)
		return lid;
	n = node_new(c, name, &id);
	if (!n)
		return -ENOMEM;
	n->level = lid;
	n->traits_self = n->traits = traits;
	r = attach(c, parent, id);
	return r < 0 ? r : id;
}

int sched_server_add(struct sched_cell *c, int parent, const char *name, const int64_t *capacity, uint64_t traits,
		     const char *partition, double up_since, double valid_until)
{
	struct sched_node *n;
	int id, part, r;

	if (!name || !*name || !capacity || !valid_node(c, parent) || c->nodes[parent].server)
		return -EINVAL;
	for (int d = 0; d < ND(c); d++)
		if (capacity[d] < 0)
			return -EINVAL;
	if (strmap_get(&c->node_by_name, name) >= 0)
		return -EEXIST;
	part = sched_partition_get(c, partition ? partition : "_default");
	if (part < 0)
		return part;
	n = node_new(c, name, &id);
	if (!n)
		return -ENOMEM;
	n->level = 1;
	n->server = true;
	n->traits_self = n->traits = traits;
	n->labels = 1ull << part;
	n->partition = part;
	memcpy(n->cap, capacity, sizeof(int64_t) * (size_t)ND(c));
	memcpy(n->free, capacity, sizeof(int64_t) * (size_t)ND(c));
	memcpy(n->sum_free, capacity, sizeof(int64_t) * (size_t)ND(c));
	memcpy(n->sum_cap, capacity, sizeof(int64_t) * (size_t)ND(c));
	n->up_since = up_since;
	n->valid_until = valid_until;
	n->since = up_since;
	r = attach(c, parent, id);
	return r < 0 ? r : id;
}

int sched_node_remove(struct sched_cell *c, int node)
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

int sched_node_find(const struct sched_cell *c, const char *name)
{
	return strmap_get(&c->node_by_name, name);
}

const char *sched_node_name(const struct sched_cell *c, int node)
{
	return node >= 0 && (size_t)node < c->nnodes ? c->nodes[node].name : NULL;
}

int sched_node_parent(const struct sched_cell *c, int node)
{
	return valid_node(c, node) ? c->nodes[node].parent : -ENOENT;
}

bool sched_node_is_server(const struct sched_cell *c, int node)
{
	return valid_node(c, node) && c->nodes[node].server;
}

int sched_server_set_state(struct sched_cell *c, int server, enum sched_state st, double since)
{
	struct sched_node *n;
	bool was_up;

	if (!valid_node(c, server) || !c->nodes[server].server || st > SCHED_FROZEN)
		return -EINVAL;
	n = &c->nodes[server];
	if (n->state == st)
		return 0;
	was_up = n->state == SCHED_UP;
	n->state = st;
	n->since = since;
	seg_update(c, server);
	if (n->parent >= 0) {
		if (st == SCHED_UP)
			adjust_capacity_up(c, n->parent, n->free);
		else
			adjust_capacity_down(c, n->parent, n->free);
		if (was_up != (st == SCHED_UP))
			sums_add(c, n->parent, n->free, n->cap, st == SCHED_UP ? +1 : -1);
	}
	if (c->mode == SCHED_MODE_IMPROVED) {
		if (GROW(c->srv_changed, c->csrv_changed, c->nsrv_changed + 1) < 0)
			c->need_full = true;
		else
			c->srv_changed[c->nsrv_changed++] = server;
	} else {
		c->need_full = true;
	}
	return 0;
}

int sched_server_get_state(const struct sched_cell *c, int server, enum sched_state *ret_state, double *ret_since)
{
	if (!valid_node(c, server) || !c->nodes[server].server)
		return -EINVAL;
	if (ret_state)
		*ret_state = c->nodes[server].state;
	if (ret_since)
		*ret_since = c->nodes[server].since;
	return 0;
}

int sched_bucket_set_strategy(struct sched_cell *c, int bucket, const char *affinity, enum sched_strategy s)
{
	struct nodeaff *e;
	int aff;

	if (!valid_node(c, bucket) || c->nodes[bucket].server || !affinity)
		return -EINVAL;
	aff = intern(&c->affs, &c->naffs, &c->caffs, &c->aff_by_name, affinity);
	if (aff < 0)
		return aff;
	if (ensure_aff_arrays(c) < 0)
		return -ENOMEM;
	e = aff_get(c, aff, (uint32_t)bucket);
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

/* members(): servers in depth-first order. */
static void collect_servers(struct sched_cell *c, int node)
{
	struct sched_node *n = &c->nodes[node];

	if (n->server) {
		n->order_pos = (int)c->nsrv_order;
		c->srv_order[c->nsrv_order++] = node;
		return;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			collect_servers(c, n->children[i]);
}

static int refresh_topology(struct sched_cell *c)
{
	if (!c->topo_dirty)
		return 0;
	if (GROW(c->srv_order, c->csrv_order, c->nnodes) < 0)
		return -ENOMEM;
	c->nsrv_order = 0;
	collect_servers(c, SCHED_ROOT);
	c->topo_dirty = false;
	return 0;
}

static bool server_in_tree(const struct sched_cell *c, int s)
{
	if (s < 0 || (size_t)s >= c->nnodes || c->nodes[s].removed)
		return false;
	for (; s != SCHED_ROOT; s = c->nodes[s].parent)
		if (s < 0)
			return false;
	return true;
}

/* ---- partitions and allocations ------------------------------------------------------ */

static int alloc_new(struct sched_cell *c, int parent, int partition, const char *leaf)
{
	struct sched_alloc *a;
	int id;

	if (GROW(c->allocs, c->callocs, c->nallocs + 1) < 0)
		return -ENOMEM;
	id = (int)c->nallocs;
	a = &c->allocs[id];
	memset(a, 0, sizeof(*a));
	a->parent = parent;
	a->partition = partition;
	a->label = partition;
	a->rank = SCHED_DEFAULT_RANK;
	a->max_util = INFINITY;
	a->leaf = strdup(leaf);
	if (parent < 0) {
		a->name = strdup("");
		a->cons_label = partition; /* Allocation(partition=label) */
	} else {
		const char *pn = c->allocs[parent].name;

		a->name = *pn ? xstrdup_printf("%s/%s", pn, leaf) : strdup(leaf);
		a->cons_label = -1; /* Allocation() in get_sub_alloc: (None, 0) */
	}
	if (!a->leaf || !a->name) {
		free(a->leaf);
		free(a->name);
		return -ENOMEM;
	}
	if (parent >= 0) {
		struct sched_alloc *p = &c->allocs[parent];

		if (GROW(p->subs, p->csubs, (size_t)p->nsubs + 1) < 0) {
			free(a->leaf);
			free(a->name);
			return -ENOMEM;
		}
		p->subs[p->nsubs++] = id;
	}
	c->nallocs++;
	return id;
}

int sched_partition_get(struct sched_cell *c, const char *label)
{
	int a;

	if (!label)
		label = "_default";
	for (int p = 0; p < c->nparts; p++)
		if (strcmp(c->parts[p].label, label) == 0)
			return p;
	if (c->nparts >= SCHED_PARTITIONS_MAX)
		return -E2BIG;
	c->parts[c->nparts].label = strdup(label);
	if (!c->parts[c->nparts].label)
		return -ENOMEM;
	a = alloc_new(c, -1, c->nparts, "");
	if (a < 0) {
		free(c->parts[c->nparts].label);
		return a;
	}
	c->parts[c->nparts].alloc = a;
	c->need_full = true;
	return c->nparts++;
}

int sched_partition_alloc(const struct sched_cell *c, int partition)
{
	if (partition < 0 || partition >= c->nparts)
		return -ENOENT;
	return c->parts[partition].alloc;
}

const char *sched_partition_label(const struct sched_cell *c, int partition)
{
	return partition >= 0 && partition < c->nparts ? c->parts[partition].label : NULL;
}

int sched_partition_count(const struct sched_cell *c)
{
	return c->nparts;
}

int sched_alloc_get(struct sched_cell *c, int parent, const char *name)
{
	struct sched_alloc *p;

	if (parent < 0 || (size_t)parent >= c->nallocs || !name || !*name)
		return -EINVAL;
	p = &c->allocs[parent];
	for (int i = 0; i < p->nsubs; i++)
		if (strcmp(c->allocs[p->subs[i]].leaf, name) == 0)
			return p->subs[i];
	c->need_full = true;
	return alloc_new(c, parent, c->allocs[parent].partition, name);
}

int sched_alloc_get_path(struct sched_cell *c, int partition, const char *path)
{
	int a = sched_partition_alloc(c, partition);
	const char *s = path;

	if (a < 0 || !path)
		return -EINVAL;
	while (a >= 0 && *s) {
		size_t len = strcspn(s, "/:");
		_cleanup_free_ char *comp = strndup(s, len);

		if (!comp)
			return -ENOMEM;
		if (len == 0)
			return -EINVAL;
		a = sched_alloc_get(c, a, comp);
		s += len;
		if (*s)
			s++;
	}
	return a;
}

int sched_alloc_update(struct sched_cell *c, int alloc, const double *reserved, int64_t rank, int64_t rank_adjustment,
		       double max_utilization)
{
	struct sched_alloc *a;

	if (alloc < 0 || (size_t)alloc >= c->nallocs)
		return -EINVAL;
	a = &c->allocs[alloc];
	a->rank = rank < 0 ? SCHED_DEFAULT_RANK : rank;
	a->rank_adj = rank_adjustment;
	for (int d = 0; d < SCHED_DIMS_MAX; d++)
		a->reserved[d] = reserved && d < ND(c) ? reserved[d] : 0.0;
	a->max_util = max_utilization > 0 ? max_utilization : INFINITY;
	c->need_full = true;
	return 0;
}

int sched_alloc_set_traits(struct sched_cell *c, int alloc, uint64_t traits)
{
	if (alloc < 0 || (size_t)alloc >= c->nallocs)
		return -EINVAL;
	c->allocs[alloc].traits = traits;
	c->need_full = true;
	return 0;
}

int sched_alloc_count(const struct sched_cell *c)
{
	return (int)c->nallocs;
}

/* ---- identity groups --------------------------------------------------------------- */

static int igroup_lookup(struct sched_cell *c, const char *name, bool create)
{
	struct sched_igroup *g;
	int id = strmap_get(&c->igroup_by_name, name);

	if (id >= 0 || !create)
		return id;
	if (GROW(c->igroups, c->cigroups, c->nigroups + 1) < 0)
		return -ENOMEM;
	g = &c->igroups[c->nigroups];
	memset(g, 0, sizeof(*g));
	g->name = strdup(name);
	if (!g->name || pyset_init_range(&g->avail, 0) < 0) {
		free(g->name);
		pyset_free(&g->avail);
		return -ENOMEM;
	}
	if (strmap_put(&c->igroup_by_name, g->name, (int)c->nigroups) < 0) {
		free(g->name);
		pyset_free(&g->avail);
		return -ENOMEM;
	}
	return (int)c->nigroups++;
}

static int igroup_adjust(struct sched_igroup *g, int count)
{
	int r;

	if (count >= g->count)
		r = pyset_symdiff_range(&g->avail, g->count, count);
	else
		r = pyset_difference_range(&g->avail, count, g->count);
	if (r < 0)
		return r;
	g->count = count;
	return 0;
}

int sched_identity_group_set(struct sched_cell *c, const char *name, int count)
{
	int id, r;

	if (!name || count < 0)
		return -EINVAL;
	id = strmap_get(&c->igroup_by_name, name);
	if (id < 0) {
		id = igroup_lookup(c, name, true);
		if (id < 0)
			return id;
		pyset_free(&c->igroups[id].avail);
		r = pyset_init_range(&c->igroups[id].avail, count);
		if (r < 0)
			return r;
		c->igroups[id].count = count;
	} else {
		r = igroup_adjust(&c->igroups[id], count);
		if (r < 0)
			return r;
	}
	c->identities_dirty = true;
	c->need_full = true;
	return 0;
}

static bool acquire_identity(struct sched_cell *c, struct sched_app *a)
{
	if (a->igroup < 0)
		return true;
	if (a->identity < 0)
		a->identity = (int)pyset_pop(&c->igroups[a->igroup].avail);
	return a->identity >= 0;
}

static void release_identity(struct sched_cell *c, struct sched_app *a)
{
	struct sched_igroup *g;

	if (a->igroup < 0 || a->identity < 0)
		return;
	g = &c->igroups[a->igroup];
	if (a->identity < g->count)
		pyset_add(&g->avail, a->identity);
	a->identity = -1;
}

/* ---- apps ------------------------------------------------------------------------ */

static bool valid_app(const struct sched_cell *c, int a)
{
	return a >= 0 && (size_t)a < c->napps && c->apps[a].alive;
}

static int fifo_cmp(const struct sched_app *x, const struct sched_app *y)
{
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Allocation apps are kept in FIFO order (global_order, name), so each pass
 * only has to group them by (priority, pending). */
static int alloc_link(struct sched_cell *c, int alloc, int id)
{
	struct sched_alloc *al = &c->allocs[alloc];
	const struct sched_app *a = &c->apps[id];
	size_t lo = 0, hi = al->napps;

	if (GROW(al->ids, al->cids, al->napps + 1) < 0)
		return -ENOMEM;
	if (hi > 0 && fifo_cmp(&c->apps[al->ids[hi - 1]], a) < 0)
		lo = hi; /* the usual case: newest app */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (fifo_cmp(&c->apps[al->ids[mid]], a) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(al->ids + lo + 1, al->ids + lo, (al->napps - lo) * sizeof(int));
	al->ids[lo] = id;
	al->napps++;
	c->apps[id].alloc = alloc;
	return 0;
}

static void alloc_unlink(struct sched_cell *c, int id)
{
	struct sched_alloc *al = &c->allocs[c->apps[id].alloc];
	size_t lo = 0, hi = al->napps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (fifo_cmp(&c->apps[al->ids[mid]], &c->apps[id]) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < al->napps && al->ids[lo] == id) {
		memmove(al->ids + lo, al->ids + lo + 1, (al->napps - lo - 1) * sizeof(int));
		al->napps--;
	}
}

static void fmt_num(char *buf, size_t n, double v)
{
	if (isinf(v))
		snprintf(buf, n, "inf");
	else
		snprintf(buf, n, "%.17g", v);
}

static int cmp_i32(const void *x, const void *y)
{
	int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;

	return a < b ? -1 : a > b;
}

/* Tracker key: Treadmill's shape()[0], (affinity, *sorted(limits), lease, *alloc.constraints). */
static int app_shape(struct sched_cell *c, struct sched_app *a, const struct sched_limit *limits, size_t n)
{
	const struct sched_alloc *al = &c->allocs[a->alloc];
	int32_t vals[SCHED_LEVELS_MAX * 2];
	char buf[64];
	char *key = NULL;
	size_t len = 0;
	FILE *f;
	int id;

	f = open_memstream(&key, &len);
	if (!f)
		return -ENOMEM;
	fputs(c->affs[a->affinity], f);
	for (size_t i = 0; i < n && i < ELEMENTSOF(vals); i++)
		vals[i] = limits[i].limit;
	qsort(vals, MIN(n, ELEMENTSOF(vals)), sizeof(int32_t), cmp_i32);
	for (size_t i = 0; i < n && i < ELEMENTSOF(vals); i++)
		fprintf(f, "\x1f%d", vals[i]);
	fmt_num(buf, sizeof(buf), a->lease);
	fprintf(f, "\x1f%s\x1f%d\x1f%llu", buf, al->cons_label, (unsigned long long)al->cons_traits);
	if (fclose(f) != 0 || !key) {
		free(key);
		return -ENOMEM;
	}
	id = intern(&c->shapes, &c->nshapes, &c->cshapes, &c->shape_by_key, key);
	free(key);
	if (id < 0)
		return id;
	if (GROW(c->tracker, c->ctracker, c->nshapes) < 0)
		return -ENOMEM;
	if ((size_t)id == c->nshapes - 1)
		memset(&c->tracker[id], 0, sizeof(c->tracker[id]));
	return id;
}

static int app_limits(struct sched_cell *c, const struct sched_limit *limits, size_t n)
{
	int32_t set[SCHED_LEVELS_MAX];
	char key[SCHED_LEVELS_MAX * 16];
	size_t kl = 0;
	int id;

	if (!n)
		return -1;
	for (int l = 0; l < SCHED_LEVELS_MAX; l++)
		set[l] = SCHED_NO_LIMIT;
	for (size_t i = 0; i < n; i++) {
		int l;

		if (!limits[i].level || limits[i].limit < 0)
			return -EINVAL;
		l = level_id(c, limits[i].level);
		if (l < 0)
			return l;
		set[l] = limits[i].limit;
	}
	for (int l = 0; l < SCHED_LEVELS_MAX; l++)
		kl += (size_t)snprintf(key + kl, sizeof(key) - kl, "%d,", set[l]);
	id = strmap_get(&c->limit_by_key, key);
	if (id >= 0)
		return id;
	if (GROW(c->limitkeys, c->climitsets, c->nlimitsets + 1) < 0)
		return -ENOMEM;
	{
		size_t cap = c->climitsets;
		int32_t *ls = realloc(c->limitsets, cap * SCHED_LEVELS_MAX * sizeof(int32_t));

		if (!ls)
			return -ENOMEM;
		c->limitsets = ls;
	}
	c->limitkeys[c->nlimitsets] = strdup(key);
	if (!c->limitkeys[c->nlimitsets])
		return -ENOMEM;
	memcpy(c->limitsets + c->nlimitsets * SCHED_LEVELS_MAX, set, sizeof(set));
	if (strmap_put(&c->limit_by_key, c->limitkeys[c->nlimitsets], (int)c->nlimitsets) < 0)
		return -ENOMEM;
	return (int)c->nlimitsets++;
}

static inline int32_t app_limit(const struct sched_cell *c, const struct sched_app *a, int level)
{
	if (a->limits < 0)
		return SCHED_NO_LIMIT;
	return c->limitsets[(size_t)a->limits * SCHED_LEVELS_MAX + (size_t)level];
}

int sched_app_add(struct sched_cell *c, int alloc, const struct sched_app_spec *spec)
{
	struct sched_app *a;
	_cleanup_free_ char *affname = NULL;
	int id, r;

	if (!spec || !spec->name || !*spec->name || !spec->demand || alloc < 0 || (size_t)alloc >= c->nallocs)
		return -EINVAL;
	for (int d = 0; d < ND(c); d++)
		if (spec->demand[d] < 0 || spec->demand[d] > INT32_MAX)
			return -EINVAL;
	if (strmap_get(&c->app_by_name, spec->name) >= 0)
		return -EEXIST;
	if (HGROW(c->apps, c->capps, c->napps + 1) < 0 || HGROW(c->hot, c->chot, c->napps + 1) < 0)
		return -ENOMEM;
	id = (int)c->napps;
	a = &c->apps[id];
	memset(a, 0, sizeof(*a));
	a->server = a->ev_server = a->before_server = -1;
	a->identity = -1;
	a->igroup = -1;
	a->srv_prev = a->srv_next = -1;
	a->expiry = NAN;
	if (spec->affinity)
		affname = strdup(spec->affinity);
	else
		affname = strndup(spec->name, strcspn(spec->name, "#"));
	if (!affname)
		return -ENOMEM;
	r = intern(&c->affs, &c->naffs, &c->caffs, &c->aff_by_name, affname);
	if (r < 0)
		return r;
	a->affinity = r;
	if (ensure_aff_arrays(c) < 0)
		return -ENOMEM;
	r = app_limits(c, spec->limits, spec->n_limits);
	if (r < -1)
		return r;
	a->limits = r;
	if (r >= 0 && !c->aff_limited[a->affinity]) {
		c->aff_limited[a->affinity] = true;
		if (c->aff_placed[a->affinity] > 0)
			for (size_t x = 0; x < c->napps; x++) {
				const struct sched_app *o = &c->apps[x];

				if (o->alive && o->affinity == a->affinity && o->server >= 0 &&
				    server_in_tree(c, o->server) && aff_add_up(c, o->server, o->affinity, +1) < 0)
					return -ENOMEM;
			}
	}
	if (spec->identity_group) {
		r = igroup_lookup(c, spec->identity_group, true); /* defaultdict: count 0 */
		if (r < 0)
			return r;
		a->igroup = r;
	}
	a->name = strdup(spec->name);
	if (!a->name)
		return -ENOMEM;
	memcpy(a->demand, spec->demand, sizeof(int64_t) * (size_t)ND(c));
	a->priority = spec->priority;
	a->retention = spec->data_retention_timeout;
	a->lease = spec->lease;
	a->traits = spec->traits;
	a->schedule_once = spec->schedule_once;
	a->order = spec->global_order;
	a->alloc = alloc;
	r = app_shape(c, a, spec->limits, spec->n_limits);
	if (r < 0) {
		free(a->name);
		return r;
	}
	a->shape = r;
	if (strmap_put(&c->app_by_name, a->name, id) < 0) {
		free(a->name);
		return -ENOMEM;
	}
	if (alloc_link(c, alloc, id) < 0) {
		strmap_del(&c->app_by_name, a->name);
		free(a->name);
		return -ENOMEM;
	}
	memset(&c->hot[id], 0, sizeof(c->hot[id]));
	for (int d = 0; d < ND(c); d++)
		c->hot[id].demand[d] = (double)a->demand[d];
	c->hot[id].priority = a->priority;
	c->hot[id].server = -1;
	c->hot[id].order = a->order;
	a->alive = true;
	a->pend_idx = -1;
	c->napps++;
	c->live_apps++;
	pend_add(c, id);
	mark_dirty(c, id);
	a->fresh = true;
	return id;
}

int sched_app_find(const struct sched_cell *c, const char *name)
{
	return strmap_get(&c->app_by_name, name);
}

int sched_app_next(const struct sched_cell *c, int app)
{
	for (size_t a = (size_t)(app + 1); a < c->napps; a++)
		if (c->apps[a].alive)
			return (int)a;
	return -ENOENT;
}

int sched_server_next(const struct sched_cell *c, int server)
{
	struct sched_cell *mc = (struct sched_cell *)c; /* the order is a cache */
	size_t i = 0;

	if (refresh_topology(mc) < 0)
		return -ENOMEM;
	if (server >= 0) {
		if (!valid_node(c, server) || !c->nodes[server].server)
			return -EINVAL;
		i = (size_t)c->nodes[server].order_pos + 1;
	}
	return i < c->nsrv_order ? c->srv_order[i] : -ENOENT;
}

/* ---- Node.check_app_constraints, Server.put / remove --------------------------------- */

static inline uint64_t app_traits(const struct sched_cell *c, const struct sched_app *a)
{
	return a->traits | c->allocs[a->alloc].traits;
}

static inline bool check_app_constraints(const struct sched_cell *c, int node, const struct sched_app *a)
{
	const struct sched_node *n = &c->nodes[node];
	uint64_t t;
	int32_t lim;

	if (!(n->labels & (1ull << c->allocs[a->alloc].label)))
		return false;
	t = app_traits(c, a);
	if (t && (n->traits & t) != t)
		return false;
	lim = app_limit(c, a, n->level);
	if (lim != SCHED_NO_LIMIT && aff_count(c, node, a->affinity) >= lim)
		return false;
	for (int d = 0; d < ND(c); d++)
		if (a->demand[d] > n->free[d])
			return false;
	return true;
}

static inline bool check_app_lifetime(const struct sched_node *s, const struct sched_app *a, double now)
{
	if (a->lease == 0)
		return true;
	return now + a->lease < s->valid_until;
}

/* Improved mode: queue an app for a placement attempt by the next pass. */
static void mark_dirty(struct sched_cell *c, int id)
{
	struct sched_app *a = &c->apps[id];

	if (a->dirty)
		return;
	if (GROW(c->dirty, c->cdirty, c->ndirty + 1) < 0) {
		c->need_full = true;
		return;
	}
	a->dirty = true;
	c->dirty[c->ndirty++] = id;
}

/* Remember an app's placement before the pass first changes it. */
static void touch(struct sched_cell *c, int id)
{
	struct sched_app *a = &c->apps[id];

	if (!c->in_pass || a->touch_gen == c->pass_gen)
		return;
	if (HGROW(c->touched, c->ctouched, c->ntouched + 1) < 0) {
		c->need_full = true; /* reported changes may be incomplete; rare */
		return;
	}
	a->touch_gen = c->pass_gen;
	a->before_server = a->server;
	a->before_expiry = a->expiry;
	c->touched[c->ntouched++] = id;
}

static void pend_add(struct sched_cell *c, int id)
{
	if (c->apps[id].pend_idx >= 0 || GROW(c->pend, c->cpend, c->npend + 1) < 0)
		return;
	c->apps[id].pend_idx = (int)c->npend;
	c->pend[c->npend++] = id;
}

static void pend_del(struct sched_cell *c, int id)
{
	int i = c->apps[id].pend_idx;

	if (i < 0)
		return;
	c->pend[i] = c->pend[--c->npend];
	c->apps[c->pend[i]].pend_idx = i;
	c->apps[id].pend_idx = -1;
}

static void set_server(struct sched_cell *c, int id, int s)
{
	struct sched_app *a = &c->apps[id];

	if ((a->server >= 0) != (s >= 0)) {
		c->nplaced += s >= 0 ? 1 : (size_t)-1;
		if (s >= 0)
			pend_del(c, id);
		else
			pend_add(c, id);
	}
	a->server = s;
	c->hot[id].server = s;
}

static void set_expiry(struct sched_cell *c, int id, double expiry)
{
	touch(c, id);
	c->apps[id].expiry = expiry;
}

static void server_link(struct sched_cell *c, int s, int id)
{
	struct sched_node *n = &c->nodes[s];
	struct sched_app *a = &c->apps[id];

	a->srv_prev = n->app_tail;
	a->srv_next = -1;
	if (n->app_tail >= 0)
		c->apps[n->app_tail].srv_next = id;
	else
		n->app_head = id;
	n->app_tail = id;
	n->napps++;
}

static void server_unlink(struct sched_cell *c, int s, int id)
{
	struct sched_node *n = &c->nodes[s];
	struct sched_app *a = &c->apps[id];

	if (a->srv_prev >= 0)
		c->apps[a->srv_prev].srv_next = a->srv_next;
	else
		n->app_head = a->srv_next;
	if (a->srv_next >= 0)
		c->apps[a->srv_next].srv_prev = a->srv_prev;
	else
		n->app_tail = a->srv_prev;
	n->napps--;
	a->srv_prev = a->srv_next = -1;
}

/* The placement half of Server.put, after the checks. */
static void server_place(struct sched_cell *c, int s, int id, double now)
{
	struct sched_node *n = &c->nodes[s];
	struct sched_app *a = &c->apps[id];
	int64_t prev[SCHED_DIMS_MAX];

	touch(c, id);
	memcpy(prev, n->free, sizeof(prev));
	for (int d = 0; d < ND(c); d++)
		n->free[d] -= a->demand[d];
	if (n->state == SCHED_UP) {
		int64_t neg[SCHED_DIMS_MAX];

		for (int d = 0; d < ND(c); d++)
			neg[d] = -a->demand[d];
		sums_add(c, s, neg, NULL, +1);
	}
	seg_update(c, s);
	server_link(c, s, id);
	c->aff_placed[a->affinity]++;
	aff_add_up(c, s, a->affinity, +1);
	set_server(c, id, s);
	if (n->parent >= 0)
		adjust_capacity_down(c, n->parent, prev);
	if (isnan(a->expiry))
		a->expiry = now + a->lease;
}

static bool server_put(struct sched_cell *c, int s, int id, double now)
{
	const struct sched_app *a = &c->apps[id];

	if (!check_app_lifetime(&c->nodes[s], a, now))
		return false;
	if (!check_app_constraints(c, s, a))
		return false;
	server_place(c, s, id, now);
	return true;
}

/* Server.restore: put with the lease ignored, then set the expiry anyway. */
static bool server_restore(struct sched_cell *c, int s, int id, double expiry, double now)
{
	struct sched_app *a = &c->apps[id];
	double lease = a->lease;
	bool ok;

	if (isnan(expiry))
		expiry = a->expiry;
	a->lease = 0;
	ok = server_put(c, s, id, now);
	a->lease = lease;
	set_expiry(c, id, expiry);
	return ok;
}

/* Server.remove */
static void server_remove(struct sched_cell *c, int s, int id)
{
	struct sched_node *n = &c->nodes[s];
	struct sched_app *a = &c->apps[id];

	touch(c, id);
	c->nfloors = 0; /* room freed: what failed before may fit now */
	server_unlink(c, s, id);
	c->aff_placed[a->affinity]--;
	set_server(c, id, -1);
	a->evicted = true;
	a->unschedule = false;
	a->expiry = NAN;
	for (int d = 0; d < ND(c); d++)
		n->free[d] += a->demand[d];
	if (n->state == SCHED_UP)
		sums_add(c, s, a->demand, NULL, +1);
	seg_update(c, s);
	aff_add_up(c, s, a->affinity, -1);
	if (n->parent >= 0)
		adjust_capacity_up(c, n->parent, n->free);
}

/* ---- Bucket.put with Spread/Pack strategies ------------------------------------------ */

/* Treadmill keeps one strategy object per (bucket, affinity) that ever tried
 * to place there; its only state is a cursor.  A 1M-app cell has 24M of them,
 * 96 % at cursor 1 (one failed visit from a fresh strategy, or a success at
 * child 0) on buckets that many affinities visit.  So a strategy lives in the
 * (node, affinity) map, except that "cursor 1, no counter" is one bit of a
 * per-bucket bitset once that bucket has enough strategies for the bitset to
 * be the smaller; no strategy at all means cursor 0. */
static int cursor_load(struct sched_cell *c, int b, int aff)
{
	const struct nodeaff *e;
	uint64_t bit, *w = one_word(c, b, aff, &bit);

	if (w && (*w & bit))
		return 1; /* a set bit means no map entry */
	e = aff_find(&c->afft[aff], (uint32_t)b);
	return e ? e->cursor : 0;
}

static int cursor_store(struct sched_cell *c, int b, int aff, int cursor)
{
	struct nodeaff *e;
	struct sched_node *n = &c->nodes[b];
	uint64_t bit, *w = one_word(c, b, aff, &bit);

	if (w && (*w & bit)) {
		if (cursor == 1)
			return 0;
		*w &= ~bit; /* to the map */
		e = NULL;
	} else {
		e = aff_find(&c->afft[aff], (uint32_t)b);
	}
	if (e) {
		e->cursor = cursor;
		return 0;
	}
	if (cursor == 1 && n->one_slot >= 0) {
		if ((size_t)aff >= c->one_rows && one_grow(c, (size_t)aff + 1, false) < 0)
			return -ENOMEM;
		w = one_word(c, b, aff, &bit);
		*w |= bit;
		return 0;
	}
	/* here no bit is set for (b, aff): it was tested (or cleared) above */
	if (cursor == 0)
		return 0;
	e = aff_get(c, aff, (uint32_t)b);
	if (!e)
		return -ENOMEM;
	e->cursor = cursor;
	/* a map entry costs about 24 bytes (12, at a load of one half) against
	 * one bit per affinity for the bitset */
	if (n->one_slot < 0 && ++n->ncur >= 64 && (size_t)n->ncur * 24 * 8 >= c->naffs &&
	    one_grow(c, c->naffs, true) == 0) /* out of memory: stays in the maps */
		n->one_slot = (int)c->one_slots++;
	return 0;
}

/* SpreadStrategy.suggested_node (== next_node) and PackStrategy.suggested_node. */
static bool is_pack(const struct sched_cell *c, int b, int aff)
{
	for (size_t i = 0; i < c->npacks; i++)
		if (c->packs[i] == aff_key(b, aff))
			return true;
	return false;
}

static int strategy_suggest(struct sched_cell *c, int b, int *cursor, bool pack)
{
	const struct sched_node *n = &c->nodes[b];
	int len = n->nchildren;

	if (!pack) {
		for (int k = 0; k < len; k++) {
			int ch;

			if (*cursor == len)
				*cursor = 0;
			ch = n->children[*cursor];
			(*cursor)++;
			if (ch >= 0)
				return ch;
		}
		return -1;
	}
	for (int k = 0; k < len; k++) {
		if (*cursor == len)
			*cursor = 0;
		if (n->children[*cursor] >= 0)
			return n->children[*cursor];
	}
	return -1;
}

static int strategy_next(struct sched_cell *c, int b, int *cursor, bool pack)
{
	if (pack)
		(*cursor)++;
	return strategy_suggest(c, b, cursor, pack);
}

static bool node_put(struct sched_cell *c, int node, int id, double now);

/* Improved mode: one round-robin cursor per bucket shared by every app, so
 * consecutive placements go to different children whatever their affinity. */
/* Load score of a node: its most constrained dimension's free fraction. */
static double load_score(const struct sched_cell *c, int node)
{
	const struct sched_node *n = &c->nodes[node];
	const int64_t *free = n->server ? n->free : n->sum_free, *cap = n->server ? n->cap : n->sum_cap;
	double m = INFINITY;

	for (int d = 0; d < ND(c); d++)
		if (cap[d] > 0)
			m = MIN(m, (double)free[d] / (double)cap[d]);
	return m;
}

static bool bucket_put_improved(struct sched_cell *c, int b, int id, double now)
{
	size_t base = c->nscr;
	int len = c->nodes[b].nchildren;
	bool ok = false;
	bool pack = c->parts[c->allocs[c->apps[id].alloc].label].pack;
	bool wide = len > SCHED_WINDOW;
	int start = wide ? c->nodes[b].rr % len : 0;

	if (GROW(c->scr, c->cscr, base + (size_t)len + 1) < 0)
		return false;
	if (wide)
		c->nodes[b].rr = (c->nodes[b].rr + 1) % len;
	/* Wide buckets: first a window of SCHED_WINDOW children that rotates one
	 * step per placement (every child gets its turn), best score first; then,
	 * only if none of them took the app, every other child, best first. */
	for (int pass = wide ? 0 : 1; pass < 2 && !ok; pass++) {
		size_t k = 0;

		/* the window's children are visited directly (a wide bucket has
		 * hundreds); the rest only when the window failed */
		int n = pass == 0 ? SCHED_WINDOW : len;

		for (int x = 0; x < n; x++) {
			int j = pass == 0 ? (start + x) % len : x;
			int ch = c->nodes[b].children[j];

			if (wide && pass == 1 && (j - start + len) % len < SCHED_WINDOW)
				continue;
			if (ch < 0 || c->nodes[ch].state != SCHED_UP || !check_app_constraints(c, ch, &c->apps[id]))
				continue;
			c->scr[base + k].node = ch;
			c->scr[base + k].score = pack ? 2.0 - load_score(c, ch) : load_score(c, ch);
			k++;
		}
		c->nscr = base + k;
		for (;;) {
			size_t best = SIZE_MAX;

			/* best score; ties to the first child */
			for (size_t i = base; i < base + k; i++)
				if (c->scr[i].score > -INFINITY &&
				    (best == SIZE_MAX || c->scr[i].score > c->scr[best].score ||
				     (c->scr[i].score == c->scr[best].score &&
				      c->nodes[c->scr[i].node].pos < c->nodes[c->scr[best].node].pos)))
					best = i;
			if (best == SIZE_MAX)
				break;
			c->scr[best].score = -INFINITY;
			if (node_put(c, c->scr[best].node, id, now)) {
				ok = true;
				break;
			}
		}
		c->nscr = base;
	}
	return ok;
}

/* Spread strategy without holes: the children tried are s0, s0+1, ...
 * (cyclic) from the cursor; the cursor ends one past the child that took
 * the app, or one past s0 when none did.  Children whose free capacity is
 * too small are skipped through the max tree. */
static bool bucket_put_fast(struct sched_cell *c, int b, int id, int *cursor, double now)
{
	const int64_t *dem = c->apps[id].demand;
	int part = c->allocs[c->apps[id].alloc].label;
	int len = c->nodes[b].nchildren;
	int s0 = *cursor >= len ? 0 : *cursor;

	for (int pass = 0; pass < 2; pass++) {
		size_t lo = pass == 0 ? (size_t)s0 : 0, hi = pass == 0 ? (size_t)len : (size_t)s0;

		for (;;) {
			int k = seg_find(c, &c->nodes[b], part, lo, hi, dem);

			if (k < 0)
				break;
			if (node_put(c, c->nodes[b].children[k], id, now)) {
				*cursor = k + 1;
				return true;
			}
			lo = (size_t)k + 1;
		}
	}
	*cursor = s0 + 1;
	return false;
}

static bool bucket_put(struct sched_cell *c, int b, int id, double now)
{
	int aff = c->apps[id].affinity;
	int node, first, cursor;
	bool pack, ok = false;

	if (!check_app_constraints(c, b, &c->apps[id]))
		return false;
	if (c->mode == SCHED_MODE_IMPROVED)
		return bucket_put_improved(c, b, id, now);
	pack = is_pack(c, b, aff);
	/* the cursor is this bucket's own: the recursion below only moves the
	 * children's, so it is kept here and stored once */
	cursor = cursor_load(c, b, aff);
	if (!pack && c->nodes[b].seg && c->nodes[b].nlive == c->nodes[b].nchildren && c->nodes[b].nchildren > 0) {
		if (c->nodes[b].segparts < c->nparts && seg_rebuild(c, b) < 0)
			return false;
		ok = bucket_put_fast(c, b, id, &cursor, now);
		(void)cursor_store(c, b, aff, cursor); /* out of memory: the cursor stays behind */
		return ok;
	}
	node = strategy_suggest(c, b, &cursor, pack);
	first = node;
	for (bool isfirst = true; node >= 0; isfirst = false) {
		if (!isfirst && node == first)
			break;
		if (c->nodes[node].state == SCHED_UP && node_put(c, node, id, now)) {
			ok = true;
			break;
		}
		node = strategy_next(c, b, &cursor, pack);
	}
	(void)cursor_store(c, b, aff, cursor);
	return ok;
}

static bool node_put(struct sched_cell *c, int node, int id, double now)
{
	if (c->nodes[node].server)
		return server_put(c, node, id, now);
	return bucket_put(c, node, id, now);
}

/* ---- utilization queue ---------------------------------------------------------------- */

double sched_utilization(int ndims, const double *demand, const double *allocated, const double *available)
{
	double m = -INFINITY;

	for (int d = 0; d < ndims; d++) {
		double v = (demand[d] - allocated[d]) / available[d];

		if (v > m || d == 0)
			m = v;
	}
	return m;
}

static void total_reserved(struct sched_cell *c, int alloc)
{
	struct sched_alloc *a = &c->allocs[alloc];

	memcpy(a->total, a->reserved, sizeof(a->total));
	for (int i = 0; i < a->nsubs; i++) {
		struct sched_alloc *s = &c->allocs[a->subs[i]];

		total_reserved(c, a->subs[i]);
		for (int d = 0; d < ND(c); d++)
			a->total[d] = a->total[d] + s->total[d];
	}
}

/* Leaf order: (-priority, pending, global_order, name).  The allocation's
 * list is already in (global_order, name) order, so a stable grouping by
 * (priority, pending) is enough. */
static int priv_order(struct sched_cell *c, int alloc, int *out)
{
	const struct sched_alloc *al = &c->allocs[alloc];
	const struct sched_hot *hot = c->hot;
	int minp = INT32_MAX, maxp = INT32_MIN;
	int cnt[256 + 1];
	size_t nb, n = al->napps;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int p = hot[al->ids[i]].priority;

		minp = MIN(minp, p);
		maxp = MAX(maxp, p);
	}
	nb = ((size_t)((int64_t)maxp - minp) + 1) * 2;
	if (nb > 256) {
		/* sparse priorities: stable insertion by key (rare) */
		for (size_t i = 0; i < n; i++) {
			int x = al->ids[i];
			size_t j = i;

			while (j > 0) {
				const struct sched_hot *b = &hot[out[j - 1]], *a = &hot[x];

				if (b->priority > a->priority ||
				    (b->priority == a->priority && (b->server >= 0) >= (a->server >= 0)))
					break;
				out[j] = out[j - 1];
				j--;
			}
			out[j] = x;
		}
		return (int)n;
	}
	memset(cnt, 0, (nb + 1) * sizeof(int));
	for (size_t i = 0; i < n; i++) {
		const struct sched_hot *a = &hot[al->ids[i]];

		cnt[(size_t)(maxp - a->priority) * 2 + (a->server >= 0 ? 0 : 1) + 1]++;
	}
	for (size_t k = 1; k <= nb; k++)
		cnt[k] += cnt[k - 1];
	for (size_t i = 0; i < n; i++) {
		int x = al->ids[i];
		const struct sched_hot *a = &hot[x];

		out[cnt[(size_t)(maxp - a->priority) * 2 + (a->server >= 0 ? 0 : 1)]++] = x;
	}
	return (int)n;
}

/* Allocation.priv_utilization_queue */
/* Allocation.priv_utilization_queue into al->pq.  For an allocation without
 * sub-allocations (free != NULL) its utilization_queue is the same order
 * with utilization recomputed against reserved + free: both are computed in
 * one sweep straight into al->q. */
static int priv_queue(struct sched_cell *c, int alloc, const double *free)
{
	struct sched_alloc *al = &c->allocs[alloc];
	double acc[SCHED_DIMS_MAX] = { 0 }, avail[SCHED_DIMS_MAX], avail2[SCHED_DIMS_MAX], zero[SCHED_DIMS_MAX] = { 0 };
	double ub, ua, ub2 = 0, ua2;
	struct sched_queue_entry *out;
	int n;

	if (HGROW(c->queue, c->cqueue, al->napps + 1) < 0)
		return -ENOMEM;
	if (free ? HGROW(al->q, al->qcap, al->napps + 1) < 0 : HGROW(al->pq, al->pqcap, al->napps + 1) < 0)
		return -ENOMEM;
	out = free ? al->q : al->pq;
	n = priv_order(c, alloc, c->queue);
	if (n < 0)
		return n;
	for (int d = 0; d < ND(c); d++) {
		avail[d] = al->reserved[d] + SCHED_EPS;
		if (free)
			avail2[d] = al->total[d] + free[d] + SCHED_EPS;
	}
	ub = sched_utilization(ND(c), zero, al->reserved, avail);
	if (free)
		ub2 = sched_utilization(ND(c), zero, al->total, avail2);
	for (int i = 0; i < n; i++) {
		int x = c->queue[i];
		const struct sched_hot *a = &c->hot[x];
		struct sched_queue_entry *e = &out[i];
		int64_t rank;

		for (int d = 0; d < ND(c); d++)
			acc[d] = acc[d] + a->demand[d];
		ua = sched_utilization(ND(c), acc, al->reserved, avail);
		if (a->priority == 0)
			ub = ua = INFINITY;
		if (ua <= al->max_util - 1) {
			rank = al->rank;
			if (ub < 0)
				rank -= al->rank_adj;
		} else {
			rank = SCHED_UNPLACED_RANK;
		}
		*e = (struct sched_queue_entry){ rank, ub, ua, x, a->server >= 0 ? 0 : 1, a->priority == 0, { 0 } };
		for (int d = 0; d < ND(c); d++)
			e->demand[d] = (int32_t)a->demand[d];
		ub = ua;
		if (free) {
			ua2 = sched_utilization(ND(c), acc, al->total, avail2);
			if (a->priority == 0)
				ub2 = ua2 = INFINITY;
			e->util_before = ub2;
			e->util_after = ua2;
			ub2 = ua2;
		}
	}
	if (free) {
		al->qn = (size_t)n;
		al->pqn = 0;
	} else {
		al->pqn = (size_t)n;
	}
	return 0;
}

static inline bool entry_lt(const struct heap_item *x, const struct heap_item *y)
{
	const struct sched_queue_entry *a = x->cur, *b = y->cur;

	if (a->rank != b->rank)
		return a->rank < b->rank;
	if (a->util_before != b->util_before)
		return a->util_before < b->util_before;
	if (a->util_after != b->util_after)
		return a->util_after < b->util_after;
	if (a->pending != b->pending)
		return a->pending < b->pending;
	if (x->hot[a->app].order != x->hot[b->app].order)
		return x->hot[a->app].order < x->hot[b->app].order;
	/* Python would compare Application objects here (TypeError); the
	 * iterable index keeps the merge total. */
	return x->idx < y->idx;
}

static void heap_siftdown(struct heap_item *h, int startpos, int pos)
{
	struct heap_item newitem = h[pos];

	while (pos > startpos) {
		int parentpos = (pos - 1) >> 1;

		if (entry_lt(&newitem, &h[parentpos])) {
			h[pos] = h[parentpos];
			pos = parentpos;
			continue;
		}
		break;
	}
	h[pos] = newitem;
}

static void heap_siftup(struct heap_item *h, int n, int pos)
{
	int startpos = pos, childpos = 2 * pos + 1;
	struct heap_item newitem = h[pos];

	while (childpos < n) {
		int rightpos = childpos + 1;

		if (rightpos < n && !entry_lt(&h[childpos], &h[rightpos]))
			childpos = rightpos;
		h[pos] = h[childpos];
		pos = childpos;
		childpos = 2 * pos + 1;
	}
	h[pos] = newitem;
	heap_siftdown(h, startpos, pos);
}

static int merge_open(struct sched_cell *c, int alloc, const double *free);

/* The next entry of a merged allocation's utilization_queue into al->head;
 * false when it is exhausted. */
static bool merge_next(struct sched_cell *c, int alloc)
{
	struct sched_alloc *al = &c->allocs[alloc];
	struct heap_item *h = al->h;
	const struct sched_queue_entry *e;
	double ua;
	bool more;

	if (al->nh == 0)
		return false;
	e = h[0].cur;
	for (int d = 0; d < ND(c); d++)
		al->m_acc[d] = al->m_acc[d] + (double)e->demand[d];
	ua = sched_utilization(ND(c), al->m_acc, al->total, al->m_avail);
	if (e->prio0)
		al->m_ub = ua = INFINITY;
	al->head = *e;
	al->head.util_before = al->m_ub;
	al->head.util_after = ua;
	al->m_ub = ua;
	/* advance the iterable the entry came from (a lazy one refills its head) */
	if (h[0].lazy >= 0)
		more = merge_next(c, h[0].lazy);
	else
		more = ++h[0].cur != h[0].end;
	if (!more) {
		h[0] = h[--al->nh];
		if (al->nh > 0)
			heap_siftup(h, al->nh, 0);
	} else if (al->nh > 1) {
		heap_siftup(h, al->nh, 0);
	}
	return true;
}

/* Start the merge of an allocation with sub-allocations: the sub-allocations
 * with sub-allocations of their own are merged on demand too, the others'
 * queues (and every private queue) are computed now. */
static int merge_open(struct sched_cell *c, int alloc, const double *free)
{
	struct sched_alloc *al = &c->allocs[alloc];
	double zero[SCHED_DIMS_MAX] = { 0 };
	int r, nh = 0;

	for (int i = 0; i < al->nsubs; i++) {
		int sub = al->subs[i];

		r = c->allocs[sub].nsubs ? merge_open(c, sub, free) : priv_queue(c, sub, free);
		if (r < 0)
			return r;
	}
	r = priv_queue(c, alloc, NULL);
	if (r < 0)
		return r;
	al = &c->allocs[alloc];
	if (GROW(al->h, al->hcap, (size_t)al->nsubs + 1) < 0)
		return -ENOMEM;
	for (int i = 0; i <= al->nsubs; i++) {
		int sub = i < al->nsubs ? al->subs[i] : -1;
		struct sched_alloc *s = sub >= 0 ? &c->allocs[sub] : al;

		if (sub >= 0 && s->nsubs) {
			if (merge_next(c, sub))
				al->h[nh++] = (struct heap_item){ &s->head, NULL, c->hot, i, sub };
			continue;
		}
		{
			const struct sched_queue_entry *q = sub >= 0 ? s->q : s->pq;
			size_t qn = sub >= 0 ? s->qn : s->pqn;

			if (qn)
				al->h[nh++] = (struct heap_item){ q, q + qn, c->hot, i, -1 };
		}
	}
	al->nh = nh;
	for (int i = nh / 2 - 1; i >= 0; i--)
		heap_siftup(al->h, nh, i);
	for (int d = 0; d < ND(c); d++) {
		al->m_acc[d] = 0;
		al->m_avail[d] = al->total[d] + free[d] + SCHED_EPS;
	}
	al->m_ub = sched_utilization(ND(c), zero, al->total, al->m_avail);
	return 0;
}

static size_t apps_below(const struct sched_cell *c, int alloc)
{
	const struct sched_alloc *al = &c->allocs[alloc];
	size_t n = al->napps;

	for (int i = 0; i < al->nsubs; i++)
		n += apps_below(c, al->subs[i]);
	return n;
}

/* Allocation.utilization_queue(free) into al->q: merged queue of the
 * sub-allocations and own apps. */
static int alloc_queue(struct sched_cell *c, int alloc, const double *free)
{
	struct sched_alloc *al = &c->allocs[alloc];
	size_t out = 0;
	int r;

	if (al->nsubs == 0)
		return priv_queue(c, alloc, free);
	r = merge_open(c, alloc, free);
	if (r < 0)
		return r;
	al = &c->allocs[alloc];
	if (HGROW(al->q, al->qcap, apps_below(c, alloc) + 1) < 0)
		return -ENOMEM;
	while (merge_next(c, alloc))
		al->q[out++] = al->head;
	al->qn = out;
	return 0;
}

int sched_alloc_queue(struct sched_cell *c, int alloc, const double *free, struct sched_queue_entry **ret,
		      size_t *ret_n)
{
	struct sched_alloc *al;
	int r;

	if (alloc < 0 || (size_t)alloc >= c->nallocs || !free)
		return -EINVAL;
	total_reserved(c, alloc);
	r = alloc_queue(c, alloc, free);
	if (r < 0)
		return r;
	al = &c->allocs[alloc];
	*ret = malloc((al->qn + 1) * sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, al->q, al->qn * sizeof(**ret));
	*ret_n = al->qn;
	return 0;
}

/* Node.size(label) */
static void node_size(const struct sched_cell *c, int node, int part, double *out)
{
	const struct sched_node *n = &c->nodes[node];
	bool first = true;

	if (n->server) {
		for (int d = 0; d < ND(c); d++)
			out[d] = n->partition == part ? (double)n->cap[d] : SCHED_EPS;
		return;
	}
	if (n->nlive == 0 || !(n->labels & (1ull << part))) {
		for (int d = 0; d < ND(c); d++)
			out[d] = SCHED_EPS;
		return;
	}
	for (int i = 0; i < n->nchildren; i++) {
		double s[SCHED_DIMS_MAX];

		if (n->children[i] < 0)
			continue;
		node_size(c, n->children[i], part, s);
		for (int d = 0; d < ND(c); d++)
			out[d] = first ? s[d] : out[d] + s[d];
		first = false;
	}
}

int sched_node_size(const struct sched_cell *c, int node, int partition, double *ret)
{
	if (!valid_node(c, node) || partition < 0 || partition >= c->nparts)
		return -EINVAL;
	node_size(c, node, partition, ret);
	return 0;
}

static int subtree_count(const struct sched_cell *c, int node, int aff)
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
			k += subtree_count(c, n->children[i], aff);
	return k;
}

int sched_node_affinity_count(const struct sched_cell *c, int node, const char *affinity)
{
	int aff = strmap_get(&c->aff_by_name, affinity);

	if (!valid_node(c, node))
		return -EINVAL;
	if (aff < 0)
		return 0;
	if (c->aff_limited[aff])
		return aff_count(c, node, aff);
	return subtree_count(c, node, aff);
}

/* ---- PlacementFeasibilityTracker ------------------------------------------------------ */

static bool tracker_feasible(const struct sched_cell *c, const struct sched_app *a)
{
	const struct sched_tracker *t = &c->tracker[a->shape];

	if (t->gen != c->tracker_gen)
		return true;
	for (int d = 0; d < ND(c); d++)
		if (!(a->demand[d] >= t->demand[d]))
			return true;
	return false;
}

static void tracker_adjust(struct sched_cell *c, const struct sched_app *a)
{
	struct sched_tracker *t = &c->tracker[a->shape];

	if (t->gen == c->tracker_gen) {
		for (int d = 0; d < ND(c); d++)
			if (!(a->demand[d] <= t->demand[d]))
				return;
	}
	t->gen = c->tracker_gen;
	memcpy(t->demand, a->demand, sizeof(t->demand));
}

/* ---- the pass ----------------------------------------------------------------------- */

/* Improved-mode eviction: pick one server (scanning victims from the tail)
 * where removing lower-ranked apps makes room while every constraint up the
 * tree still holds, and evict only there. */
static bool evict_for(struct sched_cell *c, const int *queue, size_t pos, size_t qn, int id, double now);

/* Improved mode: a put has no side effect when it fails, so an app with no
 * affinity limits and no lease that asks at least as much as one that found
 * no server (same traits and partition, this pass) cannot fit either. */
static bool floor_applies(const struct sched_app *a)
{
	return a->limits < 0 && a->lease == 0;
}

static bool doomed(const struct sched_cell *c, const struct sched_app *a)
{
	uint64_t t = app_traits(c, a);

	if (!floor_applies(a))
		return false;
	for (int i = 0; i < c->nfloors; i++) {
		bool ge = true;

		if (c->floors[i].traits != t)
			continue;
		for (int d = 0; d < ND(c); d++)
			if (a->demand[d] < c->floors[i].demand[d])
				ge = false;
		if (ge)
			return true;
	}
	return false;
}

static void floor_adjust(struct sched_cell *c, const struct sched_app *a)
{
	uint64_t t = app_traits(c, a);
	int i;

	if (!floor_applies(a))
		return;
	for (i = 0; i < c->nfloors; i++)
		if (c->floors[i].traits == t)
			break;
	if (i == c->nfloors) {
		if (c->nfloors == (int)ELEMENTSOF(c->floors))
			return;
		c->nfloors++;
	} else {
		for (int d = 0; d < ND(c); d++)
			if (a->demand[d] > c->floors[i].demand[d])
				return; /* keep the smaller one (elementwise) */
	}
	c->floors[i].traits = t;
	memcpy(c->floors[i].demand, a->demand, sizeof(c->floors[i].demand));
}

static void find_placements(struct sched_cell *c, const struct sched_queue_entry *q, const int *queue, size_t qn,
			    double now)
{
	c->nfloors = 0; /* one partition per call */
	c->tracker_gen++;
	c->ev_gen++;
	c->nplaced_pos = 0;
	if (HGROW(c->placed_pos, c->cplaced_pos, qn + 1) < 0)
		return;
	for (size_t i = 0; i < qn; i++)
		if (c->hot[queue[i]].server >= 0)
			c->placed_pos[c->nplaced_pos++] = (int)i;
	for (size_t qi = 0; qi < qn; qi++) {
		int id = queue[qi];
		struct sched_hot *h = &c->hot[id];
		struct sched_app *a;
		int restore_server = -1;
		double restore_expiry = NAN;

		if (h->blacklisted)
			continue;
		if (q[qi].rank == SCHED_UNPLACED_RANK) {
			if (h->server >= 0) {
				server_remove(c, h->server, id);
				release_identity(c, &c->apps[id]);
			}
			continue;
		}
		if (!h->renew && h->server >= 0)
			continue; /* the common case: placed, stays */
		a = &c->apps[id];
		if (h->renew && a->server >= 0) {
			struct sched_node *s = &c->nodes[a->server];

			if (check_app_lifetime(s, a, now)) {
				set_expiry(c, id, now + a->lease);
			} else {
				restore_server = a->server;
				restore_expiry = a->expiry;
				server_remove(c, a->server, id);
			}
		}
		h->renew = false;
		if (a->server >= 0)
			continue;
		if (!acquire_identity(c, a))
			continue;
		if (a->ev_gen == c->ev_gen) {
			a->ev_gen = 0;
			if (server_restore(c, a->ev_server, id, a->ev_expiry, now)) {
				a->evicted = false;
				continue;
			}
		}
		if (a->schedule_once && a->evicted)
			continue;
		if (!tracker_feasible(c, a))
			continue;
		if (!(c->mode == SCHED_MODE_IMPROVED && doomed(c, a)) && !node_put(c, SCHED_ROOT, id, now)) {
			if (c->mode == SCHED_MODE_IMPROVED) {
				evict_for(c, queue, qi, qn, id, now);
			} else {
				/* from the tail toward the app; only apps placed when the
				 * pass started can be placed behind it */
				for (size_t j = c->nplaced_pos; j-- > 0 && (size_t)c->placed_pos[j] > qi;) {
					int vid = queue[c->placed_pos[j]];
					struct sched_app *v = &c->apps[vid];
					int vs;

					if (v->server < 0)
						continue;
					vs = v->server;
					if (c->nodes[vs].state != SCHED_UP)
						continue;
					v->ev_gen = c->ev_gen;
					v->ev_server = vs;
					v->ev_expiry = v->expiry;
					server_remove(c, vs, vid);
					c->stat_evictions++;
					if (server_put(c, vs, id, now))
						break;
				}
			}
		}
		if (a->server < 0) {
			if (restore_server >= 0) {
				server_restore(c, restore_server, id, restore_expiry, now);
				h->renew = true;
			} else {
				release_identity(c, a);
				tracker_adjust(c, a);
				if (c->mode == SCHED_MODE_IMPROVED)
					floor_adjust(c, a);
			}
		}
	}
}

/* Would `id` fit on server s with every constraint on the path to the root? */
static bool fits_path(const struct sched_cell *c, int s, const struct sched_app *a, double now)
{
	if (!check_app_lifetime(&c->nodes[s], a, now))
		return false;
	for (int n = s; n >= 0; n = c->nodes[n].parent) {
		const struct sched_node *nd = &c->nodes[n];
		uint64_t t = app_traits(c, a);
		int32_t lim = app_limit(c, a, nd->level);

		if (!(nd->labels & (1ull << c->allocs[a->alloc].label)))
			return false;
		if (t && (nd->traits & t) != t)
			return false;
		if (lim != SCHED_NO_LIMIT && aff_count(c, n, a->affinity) >= lim)
			return false;
	}
	return true;
}

static bool evict_for(struct sched_cell *c, const int *queue, size_t pos, size_t qn, int id, double now)
{
	const struct sched_app *a = &c->apps[id];
	int chosen = -1;

	if (GROW(c->room, c->croom, c->nnodes) < 0 || GROW(c->room_gen, c->croom_gen, c->nnodes) < 0)
		return false;
	if (c->croom_gen > c->nnodes) /* fresh tail of the stamp array */
		for (size_t i = c->nnodes; i < c->croom_gen; i++)
			c->room_gen[i] = 0;
	c->ev_room_gen++;
	/* One pass over the apps queued after `id`, from the tail: accumulate
	 * on each up server what its lower-ranked apps hold; the first server
	 * where that plus its free room covers the demand, and where every
	 * other constraint up the tree holds, is the one to evict from. */
	for (size_t j = c->nplaced_pos; j-- > 0 && (size_t)c->placed_pos[j] > pos;) {
		const struct sched_app *v = &c->apps[queue[c->placed_pos[j]]];
		int s = v->server;
		bool ok = true;

		if (s < 0 || c->nodes[s].state != SCHED_UP)
			continue;
		if (c->room_gen[s] != c->ev_room_gen) {
			c->room_gen[s] = c->ev_room_gen;
			memcpy(c->room[s], c->nodes[s].free, sizeof(c->room[s]));
		}
		for (int d = 0; d < ND(c); d++) {
			c->room[s][d] += v->demand[d];
			if (a->demand[d] > c->room[s][d])
				ok = false;
		}
		if (ok && fits_path(c, s, a, now)) {
			chosen = s;
			break;
		}
	}
	if (chosen < 0)
		return false;
	/* evict on that server only, from the tail, until the app fits */
	for (size_t j = c->nplaced_pos; j-- > 0 && (size_t)c->placed_pos[j] > pos;) {
		int wid = queue[c->placed_pos[j]];
		struct sched_app *w = &c->apps[wid];
		bool fits = true;

		for (int d = 0; d < ND(c); d++)
			if (a->demand[d] > c->nodes[chosen].free[d])
				fits = false;
		if (fits)
			break;
		if (w->server != chosen)
			continue;
		w->ev_gen = c->ev_gen;
		w->ev_server = chosen;
		w->ev_expiry = w->expiry;
		server_remove(c, chosen, wid);
		c->stat_evictions++;
	}
	return server_put(c, chosen, id, now);
}

static void handle_inactive_servers(struct sched_cell *c, double now)
{
	c->next_event_at = INFINITY;
	for (size_t i = 0; i < c->nsrv_order; i++) {
		int s = c->srv_order[i];
		struct sched_node *n = &c->nodes[s];
		int next;

		if (n->state == SCHED_DOWN) {
			for (int x = n->app_head; x >= 0; x = next) {
				struct sched_app *a = &c->apps[x];
				double expires_at = a->retention < 0 ? 0 : n->since + a->retention;

				next = a->srv_next;
				if (!(expires_at <= now) && expires_at < c->next_event_at)
					c->next_event_at = expires_at;
			}
			for (int x = n->app_head; x >= 0; x = next) {
				struct sched_app *a = &c->apps[x];
				double expires_at = a->retention < 0 ? 0 : n->since + a->retention;

				next = a->srv_next;
				if (expires_at <= now) {
					server_remove(c, s, x);
					release_identity(c, a);
				}
			}
		} else if (n->state == SCHED_FROZEN) {
			for (int x = n->app_head; x >= 0; x = next) {
				struct sched_app *a = &c->apps[x];

				next = a->srv_next;
				if (a->unschedule) {
					server_remove(c, s, x);
					release_identity(c, a);
				}
			}
		}
	}
}

static int schedule_partition(struct sched_cell *c, int p, double now)
{
	int alloc = c->parts[p].alloc;
	double size[SCHED_DIMS_MAX];
	struct sched_alloc *al;
	int r;

	c->allocs[alloc].label = p;
	node_size(c, SCHED_ROOT, p, size);
	total_reserved(c, alloc);
	r = alloc_queue(c, alloc, size);
	if (r < 0)
		return r;
	al = &c->allocs[alloc];
	if (HGROW(c->queue, c->cqueue, al->qn + 1) < 0)
		return -ENOMEM;
	{
		double dem[SCHED_DIMS_MAX] = { 0 };
		bool pack = false;

		for (size_t i = 0; i < al->qn; i++) {
			c->queue[i] = al->q[i].app;
			for (int d = 0; d < ND(c); d++)
				dem[d] += c->hot[al->q[i].app].demand[d];
		}
		/* improved mode: spread while the partition has room to spare; when
		 * its apps ask for more than SCHED_PACK_AT of its capacity, spreading
		 * would fragment it, so servers are filled best-fit instead */
		for (int d = 0; d < ND(c); d++)
			if (size[d] > 1 && dem[d] > SCHED_PACK_AT * size[d])
				pack = true;
		c->parts[p].pack = pack;
	}
	/* _record_rank_and_util: the root queue stays in al->q until the next
	 * pass; sched_app_info() reads rank and utilization from it */
	find_placements(c, al->q, c->queue, al->qn, now);
	return 0;
}

static int full_pass(struct sched_cell *c, double now)
{
	int r;

	r = refresh_topology(c);
	if (r < 0)
		return r;
	/* _fix_invalid_placements: only servers removed from the tree matter */
	if (c->removed_servers) {
		for (size_t x = 0; x < c->napps; x++) {
			struct sched_app *a = &c->apps[x];

			if (!a->alive || a->server < 0 || server_in_tree(c, a->server))
				continue;
			touch(c, (int)x);
			server_unlink(c, a->server, (int)x);
			c->aff_placed[a->affinity]--;
			set_server(c, (int)x, -1);
			a->evicted = true;
			release_identity(c, a);
		}
		c->removed_servers = false;
	}
	handle_inactive_servers(c, now);
	/* _handle_blacklisted_apps: only placed blacklisted apps matter, and
	 * apps only get placed with the flag set through the restore/put API */
	if (c->blacklist_dirty) {
		for (size_t x = 0; x < c->napps; x++) {
			struct sched_app *a = &c->apps[x];

			if (a->alive && c->hot[x].blacklisted && a->server >= 0) {
				server_remove(c, a->server, (int)x);
				release_identity(c, a);
			}
		}
		c->blacklist_dirty = false;
	}
	/* _fix_invalid_identities: only after a group shrank or a restore */
	if (c->identities_dirty) {
		for (size_t x = 0; x < c->napps; x++) {
			struct sched_app *a = &c->apps[x];

			if (!a->alive || a->identity < 0 || a->igroup < 0)
				continue;
			if (a->identity >= c->igroups[a->igroup].count) {
				a->identity = -1;
				if (a->server >= 0)
					server_remove(c, a->server, (int)x);
			}
		}
		c->identities_dirty = false;
	}
	for (int p = 0; p < c->nparts; p++) {
		r = schedule_partition(c, p, now);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Improved mode: place only the apps that need it, without eviction; fall
 * back to a full pass when one of them does not fit. */
/* Improved mode: take apps off a down server whose retention is over (or
 * that have none), and unscheduled apps off a frozen one. */
static void vacate(struct sched_cell *c, int s, double now)
{
	struct sched_node *n = &c->nodes[s];
	int next;

	for (int x = n->app_head; x >= 0; x = next) {
		struct sched_app *a = &c->apps[x];
		bool go;

		next = a->srv_next;
		if (n->state == SCHED_DOWN) {
			double expires_at = a->retention < 0 ? 0 : n->since + a->retention;

			go = expires_at <= now;
			if (!go && expires_at < c->next_event_at)
				c->next_event_at = expires_at;
		} else {
			go = n->state == SCHED_FROZEN && a->unschedule;
		}
		if (go) {
			server_remove(c, s, x);
			release_identity(c, a);
			mark_dirty(c, x);
			a->fresh = true;
		}
	}
}

static int cmp_dirty(const void *x, const void *y, void *ud)
{
	const struct sched_cell *c = ud;
	const struct sched_app *a = &c->apps[*(const int *)x], *b = &c->apps[*(const int *)y];

	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return fifo_cmp(a, b);
}

/* Improved mode: handle only what changed since the last pass (servers that
 * changed state, retention that expired, apps added, room freed), placing
 * the affected apps without eviction.  A new or displaced app that does not
 * fit asks for a full pass (which may evict for it). */
static int incremental_pass(struct sched_cell *c, double now, bool *ret_full)
{
	*ret_full = false;
	for (size_t i = 0; i < c->nsrv_changed; i++) {
		int s = c->srv_changed[i];

		if (!valid_node(c, s))
			continue;
		if (c->nodes[s].state == SCHED_UP)
			c->room_freed = true;
		else
			vacate(c, s, now);
	}
	c->nsrv_changed = 0;
	if (now >= c->next_event_at) {
		c->next_event_at = INFINITY;
		for (size_t i = 0; i < c->nsrv_order; i++)
			if (c->nodes[c->srv_order[i]].state == SCHED_DOWN)
				vacate(c, c->srv_order[i], now);
	}
	if (c->room_freed) {
		for (size_t i = 0; i < c->npend; i++)
			if (!c->hot[c->pend[i]].blacklisted)
				mark_dirty(c, c->pend[i]);
		c->room_freed = false;
	}
	if (c->ndirty > 1) /* dirty is NULL when nothing was marked (UBSan: qsort_r(NULL, 0)) */
		qsort_r(c->dirty, c->ndirty, sizeof(int), cmp_dirty, c);
	c->tracker_gen++;
	for (size_t i = 0; i < c->ndirty; i++) {
		int x = c->dirty[i];
		struct sched_app *a = &c->apps[x];

		if (!a->alive || !a->dirty)
			continue;
		a->dirty = false;
		if (a->server >= 0 || c->hot[x].blacklisted || (a->schedule_once && a->evicted))
			continue;
		if (acquire_identity(c, a) && tracker_feasible(c, a) && node_put(c, SCHED_ROOT, x, now)) {
			a->fresh = false;
			continue;
		}
		release_identity(c, a);
		tracker_adjust(c, a);
		if (a->fresh)
			*ret_full = true;
	}
	c->ndirty = 0;
	return 0;
}

int sched_schedule(struct sched_cell *c, double now, sched_change_fn cb, void *userdata, struct sched_stats *stats)
{
	bool full = true;
	size_t changed = 0;
	int r = 0;

	c->pass_gen++;
	c->ntouched = 0;
	c->in_pass = true;
	c->stat_evictions = 0;
	if (c->mode == SCHED_MODE_IMPROVED && c->ever_scheduled && !c->need_full) {
		r = incremental_pass(c, now, &full);
		if (r < 0)
			goto out;
	}
	if (full) {
		r = full_pass(c, now);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < c->ndirty; i++) {
			c->apps[c->dirty[i]].dirty = false;
			c->apps[c->dirty[i]].fresh = false;
		}
		c->ndirty = 0;
		c->nsrv_changed = 0;
		c->room_freed = false;
		c->need_full = false;
		c->ever_scheduled = true;
	}
	for (size_t i = 0; i < c->ntouched; i++) {
		int x = c->touched[i];
		const struct sched_app *a = &c->apps[x];

		if (a->before_server == a->server && same_expiry(a->before_expiry, a->expiry))
			continue;
		changed++;
		if (cb) {
			struct sched_change ch = {
				.app = x,
				.name = a->name,
				.before_server = a->before_server,
				.after_server = a->server,
				.before_expiry = a->before_expiry,
				.after_expiry = a->expiry,
				.identity = a->identity,
			};

			cb(&ch, userdata);
		}
	}
	if (stats) {
		memset(stats, 0, sizeof(*stats));
		stats->apps = c->live_apps;
		stats->placed = c->nplaced;
		stats->pending = c->live_apps - c->nplaced;
		stats->changed = changed;
		stats->full_pass = full;
		stats->evictions = c->stat_evictions;
	}
out:
	c->in_pass = false;
	return r;
}

void sched_invalidate(struct sched_cell *c)
{
	c->need_full = true;
}

double sched_next_event_at(const struct sched_cell *c)
{
	return c->next_event_at;
}

/* ---- app updates ---------------------------------------------------------------------- */

int sched_app_remove(struct sched_cell *c, int app)
{
	struct sched_app *a;

	if (!valid_app(c, app))
		return -ENOENT;
	a = &c->apps[app];
	if (a->server >= 0) {
		if (server_in_tree(c, a->server)) {
			server_remove(c, a->server, app);
		} else {
			server_unlink(c, a->server, app);
			c->aff_placed[a->affinity]--;
			set_server(c, app, -1);
		}
		c->room_freed = true;
	}
	alloc_unlink(c, app);
	release_identity(c, a);
	pend_del(c, app);
	strmap_del(&c->app_by_name, a->name);
	a->alive = false;
	c->live_apps--;
	return 0;
}

int sched_app_set_priority(struct sched_cell *c, int app, int priority)
{
	if (!valid_app(c, app))
		return -ENOENT;
	if (c->apps[app].priority != priority)
		c->need_full = true;
	c->apps[app].priority = priority;
	c->hot[app].priority = priority;
	return 0;
}

int sched_app_set_retention(struct sched_cell *c, int app, double data_retention_timeout)
{
	if (!valid_app(c, app))
		return -ENOENT;
	c->apps[app].retention = data_retention_timeout;
	c->need_full = true;
	return 0;
}

int sched_app_move(struct sched_cell *c, int app, int alloc)
{
	if (!valid_app(c, app) || alloc < 0 || (size_t)alloc >= c->nallocs)
		return -EINVAL;
	if (c->apps[app].alloc == alloc)
		return 0;
	alloc_unlink(c, app);
	alloc_link(c, alloc, app);
	c->need_full = true;
	return 0;
}

int sched_app_set_blacklisted(struct sched_cell *c, int app, bool blacklisted)
{
	if (!valid_app(c, app))
		return -ENOENT;
	if (c->hot[app].blacklisted != blacklisted) {
		c->need_full = true;
		c->blacklist_dirty = true;
	}
	c->hot[app].blacklisted = blacklisted;
	return 0;
}

int sched_app_set_unschedule(struct sched_cell *c, int app, bool unschedule)
{
	if (!valid_app(c, app))
		return -ENOENT;
	c->apps[app].unschedule = unschedule;
	c->need_full = true;
	return 0;
}

int sched_app_restore(struct sched_cell *c, int app, int server, double expiry, int identity)
{
	struct sched_app *a;

	if (!valid_app(c, app) || !valid_node(c, server) || !c->nodes[server].server)
		return -EINVAL;
	a = &c->apps[app];
	if (a->server >= 0)
		return -EEXIST;
	if (!server_restore(c, server, app, expiry, 0))
		return -ENOSPC;
	c->blacklist_dirty = true;
	c->identities_dirty = true;
	if (identity >= 0 && a->igroup >= 0) {
		/* force_set_identity */
		a->identity = identity;
		pyset_discard(&c->igroups[a->igroup].avail, identity);
	}
	c->need_full = true;
	return 0;
}

int sched_app_put(struct sched_cell *c, int app, int server, double now)
{
	if (!valid_app(c, app) || !valid_node(c, server) || !c->nodes[server].server)
		return -EINVAL;
	if (c->apps[app].server >= 0)
		return -EEXIST;
	if (!server_put(c, server, app, now))
		return -ENOSPC;
	c->blacklist_dirty = true;
	c->need_full = true;
	return 0;
}

/* Position of an app in its partition's queue of the last pass (-1). */
static int queue_position(const struct sched_cell *c, int app)
{
	const struct sched_app *a = &c->apps[app];
	const struct sched_alloc *root = &c->allocs[c->parts[c->allocs[a->alloc].partition].alloc];

	for (size_t i = 0; i < root->qn; i++)
		if (root->q[i].app == app)
			return (int)i;
	return -1;
}

int sched_app_info(const struct sched_cell *c, int app, struct sched_app_info *ret)
{
	const struct sched_app *a;

	if (!valid_app(c, app))
		return -ENOENT;
	a = &c->apps[app];
	*ret = (struct sched_app_info){
		.name = a->name,
		.alloc = a->alloc,
		.server = a->server,
		.identity = a->identity,
		.expiry = a->expiry,
		.priority = a->priority,
		.evicted = a->evicted,
		.schedule_once = a->schedule_once,
		.renew = c->hot[app].renew,
		.blacklisted = c->hot[app].blacklisted,
		.final_rank = SCHED_DEFAULT_RANK,
		.final_util = NAN,
		.queue_pos = -1,
	};
	return 0;
}

int sched_app_queue_info(const struct sched_cell *c, int app, struct sched_app_info *ret)
{
	const struct sched_alloc *root;
	int r = sched_app_info(c, app, ret);

	if (r < 0)
		return r;
	ret->queue_pos = queue_position(c, app);
	if (ret->queue_pos >= 0) {
		root = &c->allocs[c->parts[c->allocs[c->apps[app].alloc].partition].alloc];
		ret->final_rank = root->q[ret->queue_pos].rank;
		ret->final_util = root->q[ret->queue_pos].util_before;
	}
	return 0;
}

/* ---- inspection ------------------------------------------------------------------------ */

static void subtree_capacity(const struct sched_cell *c, int node, int64_t *cap)
{
	const struct sched_node *n = &c->nodes[node];

	if (n->server) {
		for (int d = 0; d < ND(c); d++)
			cap[d] += n->cap[d];
		return;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			subtree_capacity(c, n->children[i], cap);
}

/* Node.valid_until: a bucket's is the max over its children. */
static double node_valid_until(const struct sched_cell *c, int node)
{
	const struct sched_node *n = &c->nodes[node];
	double v = 0;

	if (n->server)
		return n->valid_until;
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			v = MAX(v, node_valid_until(c, n->children[i]));
	return v;
}

int sched_node_info(const struct sched_cell *c, int node, struct sched_node_info *ret)
{
	const struct sched_node *n;

	if (!valid_node(c, node))
		return -ENOENT;
	n = &c->nodes[node];
	memset(ret, 0, sizeof(*ret));
	ret->name = n->name;
	ret->level = c->levels[n->level];
	ret->partition = n->server ? c->parts[n->partition].label : NULL;
	ret->parent = n->parent;
	ret->server = n->server;
	ret->state = n->state;
	ret->traits = n->traits;
	subtree_capacity(c, node, ret->capacity);
	memcpy(ret->free, n->free, sizeof(ret->free));
	ret->napps = (size_t)n->napps;
	ret->valid_until = node_valid_until(c, node);
	return 0;
}

int sched_alloc_info(const struct sched_cell *c, int alloc, struct sched_alloc_info *ret)
{
	const struct sched_alloc *al;

	if (alloc < 0 || (size_t)alloc >= c->nallocs)
		return -ENOENT;
	al = &c->allocs[alloc];
	memset(ret, 0, sizeof(*ret));
	ret->name = al->name;
	ret->partition = al->partition;
	ret->parent = al->parent;
	memcpy(ret->reserved, al->reserved, sizeof(ret->reserved));
	ret->rank = al->rank;
	ret->rank_adjustment = al->rank_adj;
	ret->max_utilization = al->max_util;
	ret->traits = al->traits;
	ret->napps = (size_t)al->napps;
	for (size_t i = 0; i < al->napps; i++) {
		const struct sched_app *a = &c->apps[al->ids[i]];

		if (a->server < 0)
			continue;
		ret->placed++;
		for (int d = 0; d < ND(c); d++)
			ret->used[d] += a->demand[d];
	}
	return 0;
}

int sched_bucket_put(struct sched_cell *c, int bucket, int app, double now)
{
	if (!valid_app(c, app) || !valid_node(c, bucket))
		return -EINVAL;
	if (c->apps[app].server >= 0)
		return -EEXIST;
	c->need_full = true;
	return node_put(c, bucket, app, now) ? 1 : 0;
}

int sched_app_unplace(struct sched_cell *c, int app)
{
	if (!valid_app(c, app))
		return -EINVAL;
	if (c->apps[app].server < 0)
		return -ENOENT;
	server_remove(c, c->apps[app].server, app);
	c->need_full = true;
	return 0;
}

bool sched__tracker_feasible(struct sched_cell *c, int app)
{
	return tracker_feasible(c, &c->apps[app]);
}

void sched__tracker_adjust(struct sched_cell *c, int app)
{
	tracker_adjust(c, &c->apps[app]);
}

void sched__tracker_reset(struct sched_cell *c)
{
	c->tracker_gen++;
}

const char *sched__app_shape(const struct sched_cell *c, int app)
{
	return c->shapes[c->apps[app].shape];
}

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
	if (refresh_topology(c) < 0)
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
	node_size(c, SCHED_ROOT, partition, size);
	return sched_alloc_queue(c, c->parts[partition].alloc, size, ret, ret_n);
}
