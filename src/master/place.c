/* place.c: the master's placement policy, behind one function (master_place)
 * so the sched module can replace it.  Until then: a capacity check. */
#include <math.h>
#include <string.h>

#include "../basic/util.h"
#include "master-internal.h"

int master_parse_resources(const json_t *obj, double missing, double ret[MASTER_DIMS])
{
	static const char *const keys[MASTER_DIMS] = { "memory", "cpu", "disk" };

	for (int i = 0; i < MASTER_DIMS; i++) {
		const json_t *v = obj ? json_object_get(obj, keys[i]) : NULL;
		const char *s;
		_cleanup_free_ char *t = NULL;
		uint64_t u;
		size_t len;

		ret[i] = missing;
		if (!v || json_is_null(v))
			continue;
		if (json_is_number(v)) {
			if (json_number_value(v) < 0)
				return -EINVAL;
			ret[i] = json_number_value(v);
			continue;
		}
		if (!json_is_string(v))
			return -EINVAL;
		s = json_string_value(v);
		len = strlen(s);
		if (i == MASTER_CPU) {
			/* Treadmill's cpu_units: "10%" = 10 */
			t = strndup(s, len && s[len - 1] == '%' ? len - 1 : len);
			if (!t)
				return -ENOMEM;
			if (safe_atou64(t, &u) < 0)
				return -EINVAL;
			ret[i] = (double)u;
		} else {
			if (parse_size(s, &u) < 0)
				return -EINVAL;
			ret[i] = (double)u / (1024.0 * 1024.0);
		}
	}
	return 0;
}

static int cmp_pending(const void *a, const void *b)
{
	const struct master_app *x = *(struct master_app *const *)a, *y = *(struct master_app *const *)b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool fits(const double *free_cap, const double *demand)
{
	for (int i = 0; i < MASTER_DIMS; i++)
		if (free_cap[i] >= 0 && demand[i] > free_cap[i] + 1e-9)
			return false;
	return true;
}

int master_place(struct master *m, double now, struct error *err)
{
	_cleanup_free_ double *free_cap = NULL;
	_cleanup_free_ struct master_app **pending = NULL;
	size_t n_pending = 0;

	free_cap = calloc(m->n_servers ? m->n_servers * MASTER_DIMS : 1, sizeof(double));
	pending = calloc(m->n_apps ? m->n_apps : 1, sizeof(*pending));
	if (!free_cap || !pending)
		return error_sys(err, ENOMEM, "placing");

	for (size_t s = 0; s < m->n_servers; s++)
		memcpy(&free_cap[s * MASTER_DIMS], m->servers[s]->capacity, sizeof(double) * MASTER_DIMS);

	/* Apps on a server that is gone or down go back to pending (Treadmill:
	 * immediately when data_retention_timeout is unset). */
	for (size_t a = 0; a < m->n_apps; a++) {
		struct master_app *app = m->apps[a];
		struct master_server *srv = app->server ? master_find_server(m, app->server) : NULL;

		if (app->server && srv && !srv->up && srv->down_since > 0 && now - srv->down_since < m->down_grace) {
			continue; /* within the grace: keep it (nothing new goes to a down server) */
		}
		if (app->server && (!srv || !srv->up)) {
			free(app->why);
			app->why = strdup_printf("%s:down", app->server);
			free(app->server);
			app->server = NULL;
		}
		if (!app->server) {
			pending[n_pending++] = app;
			continue;
		}
		for (size_t s = 0; s < m->n_servers; s++)
			if (m->servers[s] == srv)
				for (int i = 0; i < MASTER_DIMS; i++)
					if (free_cap[s * MASTER_DIMS + i] >= 0)
						free_cap[s * MASTER_DIMS + i] -= app->demand[i];
	}

	if (n_pending > 1)
		qsort(pending, n_pending, sizeof(*pending), cmp_pending);
	for (size_t p = 0; p < n_pending; p++) {
		struct master_app *app = pending[p];
		ssize_t best = -1;

		for (size_t s = 0; s < m->n_servers; s++) {
			double *fc = &free_cap[s * MASTER_DIMS];

			if (!m->servers[s]->up || !fits(fc, app->demand))
				continue;
			if (best < 0)
				best = (ssize_t)s;
			else {
				double a = fc[MASTER_MEMORY], b = free_cap[best * MASTER_DIMS + MASTER_MEMORY];
				if (a < 0)
					a = INFINITY;
				if (b < 0)
					b = INFINITY;
				if (a > b)
					best = (ssize_t)s;
			}
		}
		if (best < 0)
			continue;
		app->server = strdup(m->servers[best]->name);
		if (!app->server)
			return error_sys(err, ENOMEM, "placing %s", app->name);
		app->expires = now + app->lease;
		for (int i = 0; i < MASTER_DIMS; i++)
			if (free_cap[best * MASTER_DIMS + i] >= 0)
				free_cap[best * MASTER_DIMS + i] -= app->demand[i];
	}
	return 0;
}
