/* sched-util.c: the scheduler's containers: a string map, and an exact
 * emulation of CPython's set of small ints, because Treadmill hands out
 * identities with set.pop() and treadle must hand out the same ones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched-internal.h"

/* ---- strmap --------------------------------------------------------------- */

static const char strmap_tomb_mark;
#define STRMAP_TOMB (&strmap_tomb_mark)

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

/* The slot of `key`, or of the empty slot that ends its probe (*ret_found
 * false).  m->cap > 0. */
static size_t strmap_slot(const struct strmap *m, const char *key, bool *ret_found)
{
	size_t i;

	for (i = str_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		const char *k = m->keys[i];

		if (!k || (k != STRMAP_TOMB && strcmp(k, key) == 0)) {
			*ret_found = k != NULL;
			return i;
		}
	}
}

int strmap_get(const struct strmap *m, const char *key)
{
	bool found;
	size_t i;

	if (!m->cap)
		return -ENOENT;
	i = strmap_slot(m, key, &found);
	return found ? m->vals[i] : -ENOENT;
}

static int strmap_grow(struct strmap *m)
{
	struct strmap n = { 0 };
	size_t i;

	n.cap = m->cap ? m->cap * 2 : 64;
	if ((m->used - m->tombs) * 4 < m->cap)
		n.cap = m->cap; /* mostly tombstones: rehash in place size */
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = calloc(n.cap, sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	for (i = 0; i < m->cap; i++) {
		const char *k = m->keys[i];
		size_t j;

		if (!k || k == STRMAP_TOMB)
			continue;
		for (j = str_hash(k) & (n.cap - 1); n.keys[j]; j = (j + 1) & (n.cap - 1))
			;
		n.keys[j] = k;
		n.vals[j] = m->vals[i];
		n.used++;
	}
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, int val)
{
	bool found;
	size_t i;
	int r;

	if ((m->used + 1) * 10 >= m->cap * 7) {
		r = strmap_grow(m);
		if (r < 0)
			return r;
	}
	i = strmap_slot(m, key, &found);
	m->keys[i] = key;
	m->vals[i] = val;
	if (!found)
		m->used++;
	return 0;
}

void strmap_del(struct strmap *m, const char *key)
{
	bool found;
	size_t i;

	if (!m->cap)
		return;
	i = strmap_slot(m, key, &found);
	if (found) {
		m->keys[i] = STRMAP_TOMB;
		m->tombs++;
	}
}

void strmap_free(struct strmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- pyset: CPython 3.11 setobject.c for int keys (hash(k) == k) ------------ */

#define PY_MINSIZE 8
#define LINEAR_PROBES 9
#define PERTURB_SHIFT 5

enum { SLOT_UNUSED = 0, SLOT_DUMMY = 1, SLOT_ACTIVE = 2 };

static int pyset_alloc(struct pyset *s, size_t size)
{
	s->keys = calloc(size, sizeof(*s->keys));
	s->st = calloc(size, 1);
	if (!s->keys || !s->st) {
		free(s->keys);
		free(s->st);
		s->keys = NULL;
		s->st = NULL;
		return -ENOMEM;
	}
	s->mask = size - 1;
	return 0;
}

static void insert_clean(int64_t *keys, uint8_t *st, size_t mask, int64_t key)
{
	size_t perturb = (size_t)key, i = (size_t)key & mask, j, e;

	for (;;) {
		e = i;
		if (st[e] == SLOT_UNUSED)
			goto found;
		if (i + LINEAR_PROBES <= mask)
			for (j = 0; j < LINEAR_PROBES; j++) {
				e++;
				if (st[e] == SLOT_UNUSED)
					goto found;
			}
		perturb >>= PERTURB_SHIFT;
		i = (i * 5 + 1 + perturb) & mask;
	}
found:
	keys[e] = key;
	st[e] = SLOT_ACTIVE;
}

static int pyset_resize(struct pyset *s, size_t minused)
{
	size_t newsize = PY_MINSIZE, i, oldmask = s->mask;
	int64_t *ok = s->keys;
	uint8_t *ost = s->st;

	while (newsize <= minused)
		newsize <<= 1;
	if (pyset_alloc(s, newsize) < 0) {
		s->keys = ok;
		s->st = ost;
		s->mask = oldmask;
		return -ENOMEM;
	}
	s->fill = s->used;
	for (i = 0; i <= oldmask; i++)
		if (ost[i] == SLOT_ACTIVE)
			insert_clean(s->keys, s->st, s->mask, ok[i]);
	free(ok);
	free(ost);
	return 0;
}

/* CPython's set probe (set_lookkey): the slot holding key, or -1 with
 * *ret_free (when not NULL) the slot an insert takes: the first dummy seen on
 * the way, else the unused slot that ended the probe. */
static long pyset_probe(const struct pyset *s, int64_t key, long *ret_free)
{
	size_t mask = s->mask, i = (size_t)key & mask, perturb = (size_t)key, e;
	long freeslot = -1;
	int probes;

	for (;;) {
		e = i;
		probes = (i + LINEAR_PROBES <= mask) ? LINEAR_PROBES : 0;
		do {
			if (s->st[e] == SLOT_UNUSED) {
				if (ret_free)
					*ret_free = freeslot >= 0 ? freeslot : (long)e;
				return -1;
			}
			if (s->st[e] == SLOT_ACTIVE && s->keys[e] == key)
				return (long)e;
			if (s->st[e] == SLOT_DUMMY && freeslot < 0)
				freeslot = (long)e;
			e++;
		} while (probes--);
		perturb >>= PERTURB_SHIFT;
		i = (i * 5 + 1 + perturb) & mask;
	}
}

int pyset_add(struct pyset *s, int64_t key)
{
	long slot;
	bool fresh;

	if (pyset_probe(s, key, &slot) >= 0)
		return 0;
	fresh = s->st[slot] == SLOT_UNUSED; /* a reused dummy neither fills nor resizes */
	s->used++;
	s->keys[slot] = key;
	s->st[slot] = SLOT_ACTIVE;
	if (!fresh)
		return 0;
	s->fill++;
	if (s->fill * 5 < s->mask * 3)
		return 0;
	return pyset_resize(s, s->used > 50000 ? s->used * 2 : s->used * 4);
}

bool pyset_discard(struct pyset *s, int64_t key)
{
	long e = pyset_probe(s, key, NULL);

	if (e < 0)
		return false;
	s->st[e] = SLOT_DUMMY;
	s->used--;
	return true;
}

int64_t pyset_pop(struct pyset *s)
{
	size_t e;
	int64_t key;

	if (!s->used)
		return -1;
	e = s->finger & s->mask;
	while (s->st[e] != SLOT_ACTIVE) {
		e++;
		if (e > s->mask)
			e = 0;
	}
	key = s->keys[e];
	s->st[e] = SLOT_DUMMY;
	s->used--;
	s->finger = e + 1;
	return key;
}

size_t pyset_len(const struct pyset *s)
{
	return s->used;
}

int pyset_init_range(struct pyset *s, int64_t n)
{
	int r;

	memset(s, 0, sizeof(*s));
	r = pyset_alloc(s, PY_MINSIZE);
	if (r < 0)
		return r;
	for (int64_t k = 0; k < n; k++) {
		r = pyset_add(s, k);
		if (r < 0)
			return r;
	}
	return 0;
}

void pyset_free(struct pyset *s)
{
	free(s->keys);
	free(s->st);
	memset(s, 0, sizeof(*s));
}

/* self ^= set(range(from, to)): iterate the other set in its table order. */
int pyset_symdiff_range(struct pyset *s, int64_t from, int64_t to)
{
	struct pyset o;
	int r = 0;

	memset(&o, 0, sizeof(o));
	if (pyset_alloc(&o, PY_MINSIZE) < 0)
		return -ENOMEM;
	for (int64_t k = from; k < to && r >= 0; k++)
		r = pyset_add(&o, k);
	for (size_t i = 0; r >= 0 && i <= o.mask; i++) {
		if (o.st[i] != SLOT_ACTIVE)
			continue;
		if (!pyset_discard(s, o.keys[i]))
			r = pyset_add(s, o.keys[i]);
	}
	pyset_free(&o);
	return r;
}

/* self -= set(range(from, to)), then resize away dummies like CPython. */
int pyset_difference_range(struct pyset *s, int64_t from, int64_t to)
{
	for (int64_t k = from; k < to; k++)
		pyset_discard(s, k);
	if (s->fill - s->used <= s->mask / 4)
		return 0;
	return pyset_resize(s, s->used > 50000 ? s->used * 2 : s->used * 4);
}
