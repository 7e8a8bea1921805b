/* sched-mem.c: memory helpers (growable and huge-page arrays), interned names and
 * the (node, affinity) maps of the cell model.
 *
 * Function names follow Treadmill's scheduler/__init__.py where the code
 * mirrors it, so the two can be read side by side (docs/SCHEDULER.md). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sched-internal.h"

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

/* The capacity an array of `cap` grows to for `need` elements: doubling from 16. */
static size_t grown_cap(size_t cap, size_t need)
{
	size_t n = cap ? cap : 16;

	while (n < need)
		n *= 2;
	return n;
}

int sched_grow_array(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n;
	void *q;

	if (need <= *cap)
		return 0;
	n = grown_cap(*cap, need);
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	if (n * elem >= (4u << 20))
		hint_huge(q, n * elem);
	*p = q;
	*cap = n;
	return 0;
}

/* Arrays a pass sweeps through (apps, hot lines, queues) live in their own
 * mappings with transparent huge pages asked for before the first touch:
 * in a VM a 4 KiB first-touch fault costs tens of microseconds, and a 100k
 * app cell touches thousands of them in its first pass.  Freed with
 * sched_huge_free(p, cap * elem). */
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
void sched_huge_free(void *p, size_t len)
{
	if (!p)
		return;
	if (len >= HUGE_ALIGN)
		munmap(p, (len + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1));
	else
		free(p);
}

int sched_huge_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n;
	void *q;

	if (need <= *cap)
		return 0;
	n = grown_cap(*cap, need);
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
		sched_huge_free(*p, *cap * elem);
	}
	*p = q;
	*cap = n;
	return 0;
}

char *sched_xstrdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

/* ---- interned names --------------------------------------------------------------- */

int sched_intern(char ***arr, size_t *n, size_t *cap, struct strmap *m, const char *s)
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
int sched_ensure_aff_arrays(struct sched_cell *c)
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

int sched_level_id(struct sched_cell *c, const char *name)
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

void sched_affpool_free(struct affpool *p, struct nodeaff *e, size_t cap)
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

void sched_affpool_destroy(struct affpool *p)
{
	for (size_t i = 0; i < p->nblocks; i++)
		sched_huge_free(p->blocks[i], AFFPOOL_BLOCK);
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
	sched_affpool_free(p, m->e, m->cap);
	*m = n;
	return 0;
}

/* A bucket's "cursor 1" bit for an affinity, cleared: returns the cursor it stood for. */
static int one_take(struct sched_cell *c, int node, int aff)
{
	uint64_t bit, *w = one_word(c, node, aff, &bit);

	if (!w || !(*w & bit))
		return 0;
	*w &= ~bit;
	return 1;
}

/* Room for affinity `aff`'s row and for one more column (when `col`). */
int sched_one_grow(struct sched_cell *c, size_t rows, bool col)
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

struct nodeaff *sched_aff_get(struct sched_cell *c, int aff, uint32_t key)
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

/* Counter.update / Counter.subtract from `node` up to the root.  Counters are
 * only consulted for apps with affinity limits, so they are only kept for
 * affinities that have such an app (rebuilt when the first one arrives). */
int sched_aff_add_up(struct sched_cell *c, int node, int aff, int delta)
{
	if (!c->aff_limited[aff])
		return 0;
	for (; node >= 0; node = c->nodes[node].parent) {
		struct nodeaff *e = sched_aff_get(c, aff, (uint32_t)node);

		if (!e)
			return -ENOMEM;
		e->count += delta;
	}
	return 0;
}
