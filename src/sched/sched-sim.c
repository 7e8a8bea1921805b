/* sched-sim.c: conformance workload format and the §6.2 generator. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "sched-sim.h"

/* ---- line/field splitting ------------------------------------------------------------ */

#define MAXF 16

struct tsv {
	char *buf;	/* owned copy */
	char *pos;
	const char *file;
	unsigned line;
	char *f[MAXF];
	int nf;
};

static void tsv_init(struct tsv *t, char *text, const char *file)
{
	static char empty[1];

	t->buf = text ? text : empty;
	t->pos = t->buf;
	t->file = file;
	t->line = 0;
}

/* Next non-comment, non-empty line split on tabs; 0 at end, 1 with a line. */
static int tsv_next(struct tsv *t)
{
	while (*t->pos) {
		char *l = t->pos, *nl = strchr(l, '\n'), *p;

		if (nl) {
			*nl = 0;
			t->pos = nl + 1;
		} else {
			t->pos = l + strlen(l);
		}
		t->line++;
		if (*l && l[strlen(l) - 1] == '\r')
			l[strlen(l) - 1] = 0;
		if (*l == '#' || *l == 0)
			continue;
		t->nf = 0;
		for (p = l;;) {
			char *tab = strchr(p, '\t');

			if (t->nf < MAXF)
				t->f[t->nf] = p;
			t->nf++;
			if (!tab)
				break;
			*tab = 0;
			p = tab + 1;
		}
		return 1;
	}
	return 0;
}

static int tsv_err(const struct tsv *t, struct error *err, const char *field, const char *fmt, const char *arg)
{
	_cleanup_free_ char *m = strdup_printf(fmt, arg);

	if (field)
		return error_set(err, ERR_PERM, 0, "%s: line %u: field %s: %s", t->file, t->line, field,
				 m ? m : "invalid");
	return error_set(err, ERR_PERM, 0, "%s: line %u: %s", t->file, t->line, m ? m : "invalid");
}

static int field_i64(const struct tsv *t, int i, const char *name, int64_t min, int64_t *ret, struct error *err)
{
	if (safe_atoi64(t->f[i], ret) < 0 || *ret < min)
		return tsv_err(t, err, name, "not a valid integer: '%s'", t->f[i]);
	return 0;
}

static int field_dbl(const struct tsv *t, int i, const char *name, double *ret, struct error *err)
{
	if (safe_atod(t->f[i], ret) < 0 || !isfinite(*ret) || *ret < 0)
		return tsv_err(t, err, name, "not a valid number: '%s'", t->f[i]);
	return 0;
}

static int check_nf(const struct tsv *t, int want, struct error *err)
{
	char buf[64];

	if (t->nf == want)
		return 0;
	snprintf(buf, sizeof(buf), "%d fields, got %d", want, t->nf);
	return tsv_err(t, err, NULL, "expected %s", buf);
}

/* ---- loading ------------------------------------------------------------------------- */

static const char *const dim_names[] = { "memory", "cpu", "disk" };

static int load_servers(struct sched_cell *c, char *text, const char *file, struct error *err)
{
	struct tsv t;
	int r = 0;

	tsv_init(&t, text, file);
	while (r == 0 && tsv_next(&t)) {
		int64_t cap[3], traits;
		int pod, rack, srv;

		if ((r = check_nf(&t, 8, err)) < 0)
			break;
		if (!*t.f[0]) {
			r = tsv_err(&t, err, "name", "empty%s", "");
			break;
		}
		if ((r = field_i64(&t, 4, "traits", 0, &traits, err)) < 0)
			break;
		for (int d = 0; d < 3 && r == 0; d++)
			r = field_i64(&t, 5 + d, dim_names[d], 0, &cap[d], err);
		if (r < 0)
			break;
		if (!*t.f[1] || !*t.f[2] || !*t.f[3]) {
			r = tsv_err(&t, err, !*t.f[1] ? "rack" : !*t.f[2] ? "pod" : "partition", "empty%s", "");
			break;
		}
		pod = sched_node_find(c, t.f[2]);
		if (pod < 0)
			pod = sched_bucket_add(c, SCHED_ROOT, t.f[2], NULL, 0);
		else if (sched_node_is_server(c, pod) || sched_node_parent(c, pod) != SCHED_ROOT) {
			r = tsv_err(&t, err, "pod", "'%s' is not a pod", t.f[2]);
			break;
		}
		if (pod < 0) {
			r = tsv_err(&t, err, "pod", "cannot add '%s'", t.f[2]);
			break;
		}
		rack = sched_node_find(c, t.f[1]);
		if (rack < 0)
			rack = sched_bucket_add(c, pod, t.f[1], NULL, 0);
		else if (sched_node_is_server(c, rack) || sched_node_parent(c, rack) != pod) {
			r = tsv_err(&t, err, "rack", "'%s' is not a rack of this pod", t.f[1]);
			break;
		}
		if (rack < 0) {
			r = tsv_err(&t, err, "rack", "cannot add '%s'", t.f[1]);
			break;
		}
		srv = sched_server_add(c, rack, t.f[0], cap, (uint64_t)traits, t.f[3], SCHED_SIM_NOW,
				       SCHED_SIM_NOW + 21 * 86400);
		if (srv == -EEXIST)
			r = tsv_err(&t, err, "name", "duplicate name '%s'", t.f[0]);
		else if (srv == -E2BIG)
			r = tsv_err(&t, err, "partition", "too many partitions at '%s'", t.f[3]);
		else if (srv < 0)
			r = tsv_err(&t, err, "name", "cannot add server '%s'", t.f[0]);
	}
	return r;
}

static int load_allocations(struct sched_cell *c, char *text, const char *file, struct error *err)
{
	struct tsv t;
	int r = 0;

	tsv_init(&t, text, file);
	while (r == 0 && tsv_next(&t)) {
		int64_t rank, adj;
		double res[3];
		int part, alloc;

		if ((r = check_nf(&t, 7, err)) < 0)
			break;
		if (!*t.f[0]) {
			r = tsv_err(&t, err, "partition", "empty%s", "");
			break;
		}
		if ((r = field_i64(&t, 2, "rank", 0, &rank, err)) < 0 ||
		    (r = field_i64(&t, 3, "rank_adjustment", INT32_MIN, &adj, err)) < 0)
			break;
		for (int d = 0; d < 3 && r == 0; d++) {
			_cleanup_free_ char *fname = strdup_printf("reserved_%s", dim_names[d]);

			r = field_dbl(&t, 4 + d, fname ? fname : "reserved", &res[d], err);
		}
		if (r < 0)
			break;
		part = sched_partition_get(c, t.f[0]);
		if (part < 0) {
			r = tsv_err(&t, err, "partition", "too many partitions at '%s'", t.f[0]);
			break;
		}
		alloc = sched_alloc_get_path(c, part, t.f[1]);
		if (alloc < 0 || !*t.f[1]) {
			r = tsv_err(&t, err, "path", "invalid allocation path '%s'", t.f[1]);
			break;
		}
		sched_alloc_update(c, alloc, res, rank, adj, INFINITY);
	}
	return r;
}

static int parse_limits(const char *s, struct sched_limit *lim, size_t *n, char ***names)
{
	_cleanup_json_ json_t *j = json_loads(s, 0, NULL);
	const char *k;
	json_t *v;
	int r = 0;

	*n = 0;
	if (!json_is_object(j))
		return -EINVAL;
	json_object_foreach(j, k, v) {
		json_int_t x;

		if (*n >= SCHED_LEVELS_MAX || !json_is_integer(v) || (x = json_integer_value(v)) < 0 ||
		    x > INT32_MAX || !*k) {
			r = -EINVAL;
			break;
		}
		if (strv_extend(names, k) < 0) {
			r = -ENOMEM;
			break;
		}
		lim[*n].limit = (int32_t)x;
		(*n)++;
	}
	for (size_t i = 0; r == 0 && i < *n; i++)
		lim[i].level = (*names)[i];
	return r;
}

/* Identity groups first ("created with identity_count ids before the apps
 * are added"), reading the two last fields of each line without splitting. */
static int load_identity_groups(struct sched_cell *c, const char *text, const char *file, struct error *err)
{
	unsigned line = 0;

	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n'), *end = nl ? nl : l + strlen(l);
		const char *f13 = NULL, *p = l;
		int nf = 0;

		line++;
		if (*l != '#' && end > l) {
			for (; p < end && nf < 13; p++)
				if (*p == '\t' && ++nf == 13)
					f13 = p + 1;
			if (f13 && strncmp(f13, "-\t", 2) != 0) {
				const char *tab = memchr(f13, '\t', (size_t)(end - f13));
				_cleanup_free_ char *name = tab ? strndup(f13, (size_t)(tab - f13)) : NULL;
				_cleanup_free_ char *cnt = tab ? strndup(tab + 1, (size_t)(end - tab - 1)) : NULL;
				int64_t n;

				if (cnt && *cnt && cnt[strlen(cnt) - 1] == '\r')
					cnt[strlen(cnt) - 1] = 0;
				if (!name || !cnt || memchr(cnt, '\t', strlen(cnt)))
					return error_set(err, ERR_PERM, 0, "%s: line %u: expected 15 fields", file, line);
				if (safe_atoi64(cnt, &n) < 0 || n < 0 || n > INT32_MAX)
					return error_set(err, ERR_PERM, 0,
							 "%s: line %u: field identity_count: not a valid count: '%s'",
							 file, line, cnt);
				if (sched_identity_group_set(c, name, (int)n) < 0)
					return error_set(err, ERR_PERM, 0,
							 "%s: line %u: field identity_group: cannot create '%s'", file,
							 line, name);
			}
		}
		l = nl ? nl + 1 : end;
	}
	return 0;
}

static int load_apps(struct sched_cell *c, char *text, const char *file, struct error *err)
{
	struct tsv t;
	int r;

	r = load_identity_groups(c, text, file, err);
	if (r < 0)
		return r;
	tsv_init(&t, text, file);
	while (r == 0 && tsv_next(&t)) {
		struct sched_limit lim[SCHED_LEVELS_MAX];
		_cleanup_strv_free_ char **limnames = NULL;
		struct sched_app_spec spec = { 0 };
		int64_t order, prio, dem[3], traits;
		int part, alloc, id;

		if ((r = check_nf(&t, 15, err)) < 0 ||
		    (r = field_i64(&t, 0, "global_order", INT64_MIN, &order, err)) < 0)
			break;
		if (!*t.f[1]) {
			r = tsv_err(&t, err, "name", "empty%s", "");
			break;
		}
		if ((r = field_i64(&t, 4, "priority", 0, &prio, err)) < 0)
			break;
		if (prio > 100) {
			r = tsv_err(&t, err, "priority", "out of range 0..100: %s", t.f[4]);
			break;
		}
		for (int d = 0; d < 3 && r == 0; d++)
			r = field_i64(&t, 5 + d, dim_names[d], 0, &dem[d], err);
		if (r < 0)
			break;
		if ((r = field_i64(&t, 12, "traits", 0, &traits, err)) < 0)
			break;
		spec.name = t.f[1];
		spec.priority = (int)prio;
		spec.demand = dem;
		spec.affinity = *t.f[8] && strcmp(t.f[8], "-") ? t.f[8] : NULL;
		spec.global_order = order;
		spec.traits = (uint64_t)traits;
		if (strcmp(t.f[9], "-") != 0) {
			int pr = parse_limits(t.f[9], lim, &spec.n_limits, &limnames);

			if (pr == -ENOMEM) {
				r = error_set(err, ERR_TEMP, ENOMEM, "out of memory");
				break;
			}
			if (pr < 0) {
				r = tsv_err(&t, err, "affinity_limits", "not a JSON object of level: count: '%s'",
					    t.f[9]);
				break;
			}
			spec.limits = lim;
		}
		spec.data_retention_timeout = -1;
		if (strcmp(t.f[10], "-") != 0 &&
		    (r = field_dbl(&t, 10, "data_retention_timeout", &spec.data_retention_timeout, err)) < 0)
			break;
		if (strcmp(t.f[11], "0") && strcmp(t.f[11], "1")) {
			r = tsv_err(&t, err, "schedule_once", "not 0 or 1: '%s'", t.f[11]);
			break;
		}
		spec.schedule_once = t.f[11][0] == '1';
		spec.identity_group = strcmp(t.f[13], "-") ? t.f[13] : NULL;
		part = sched_partition_get(c, t.f[2]);
		if (part < 0) {
			r = tsv_err(&t, err, "partition", "too many partitions at '%s'", t.f[2]);
			break;
		}
		alloc = sched_alloc_get_path(c, part, t.f[3]);
		if (alloc < 0 || !*t.f[3]) {
			r = tsv_err(&t, err, "alloc", "invalid allocation path '%s'", t.f[3]);
			break;
		}
		id = sched_app_add(c, alloc, &spec);
		if (id == -EEXIST)
			r = tsv_err(&t, err, "name", "duplicate app '%s'", t.f[1]);
		else if (id == -E2BIG)
			r = tsv_err(&t, err, "affinity_limits", "too many levels in '%s'", t.f[9]);
		else if (id < 0)
			r = tsv_err(&t, err, "name", "cannot add app '%s'", t.f[1]);
	}
	return r;
}

int sched_sim_load(char *servers, char *allocations, char *apps, const char *const names[3],
		   enum sched_mode mode, struct sched_cell **ret, struct error *err)
{
	_cleanup_sched_cell_ struct sched_cell *c = sched_cell_new("cell", 3, mode);
	int r;

	if (!c)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	/* "Partitions are created in the order _default, part1" */
	if (sched_partition_get(c, "_default") < 0)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	r = load_servers(c, servers, names[0], err);
	if (r < 0)
		return r;
	r = load_allocations(c, allocations, names[1], err);
	if (r < 0)
		return r;
	r = load_apps(c, apps, names[2], err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}

/* ---- placement file ------------------------------------------------------------------- */

struct name_id {
	const char *name;
	int id;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct name_id *)a)->name, ((const struct name_id *)b)->name);
}

int sched_sim_placement(const struct sched_cell *c, char **ret, size_t *ret_len)
{
	_cleanup_free_ struct name_id *v = NULL;
	size_t n = 0, cap = 1024;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (int a = sched_app_next(c, -1); a >= 0; a = sched_app_next(c, a)) {
		struct sched_app_info ai;

		if (n == cap) {
			struct name_id *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv)
				return -ENOMEM;
			v = nv;
			cap *= 2;
		}
		sched_app_info(c, a, &ai);
		v[n++] = (struct name_id){ ai.name, a };
	}
	qsort(v, n, sizeof(*v), cmp_name);
	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct sched_app_info ai;

		sched_app_info(c, v[i].id, &ai);
		fputs(ai.name, f);
		fputc('\t', f);
		fputs(ai.server >= 0 ? sched_node_name(c, ai.server) : "-", f);
		if (ai.identity >= 0)
			fprintf(f, "\t%d\n", ai.identity);
		else
			fputs("\t-\n", f);
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	if (ret_len)
		*ret_len = len;
	return 0;
}

/* ---- Python float repr ---------------------------------------------------------------- */

static int sched_sim_repr_double(double v, char *buf, size_t n)
{
	char tmp[64], digits[32];
	int prec, e, nd = 0;
	char *p;

	if (isnan(v))
		return snprintf(buf, n, "nan");
	if (isinf(v))
		return snprintf(buf, n, v > 0 ? "inf" : "-inf");
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* tmp: [-]d[.ddd]e[+-]xx */
	p = tmp;
	if (*p == '-')
		p++;
	for (; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	digits[nd] = 0;
	e = atoi(p + 1); /* NOLINT: well-formed printf output */
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = 0;
	{
		char out[64];
		size_t o = 0;

		if (v < 0 || (v == 0 && signbit(v)))
			out[o++] = '-';
		if (e >= -4 && e < 16) {
			if (e >= 0) {
				for (int i = 0; i <= e; i++)
					out[o++] = i < nd ? digits[i] : '0';
				out[o++] = '.';
				if (nd > e + 1)
					for (int i = e + 1; i < nd; i++)
						out[o++] = digits[i];
				else
					out[o++] = '0';
			} else {
				out[o++] = '0';
				out[o++] = '.';
				for (int i = 0; i < -e - 1; i++)
					out[o++] = '0';
				for (int i = 0; i < nd; i++)
					out[o++] = digits[i];
			}
			out[o] = 0;
		} else {
			out[o++] = digits[0];
			if (nd > 1) {
				out[o++] = '.';
				for (int i = 1; i < nd; i++)
					out[o++] = digits[i];
			}
			o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%02d", e < 0 ? '-' : '+', abs(e));
		}
		return snprintf(buf, n, "%s", out);
	}
}

/* ---- generator (§6.2) ---------------------------------------------------------------- */

enum { F_COUNT = 1, F_PART, F_TENANT, F_ENV, F_SHAPE, F_PRIO, F_AFF, F_RET, F_ONCE, F_TRAIT, F_IDENT, F_UNASSIGNED };

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static unsigned pick(uint64_t seed, uint64_t e, uint64_t f, unsigned n)
{
	return (unsigned)(mix64(seed + e * 0x9E3779B97F4A7C15ull + f * 0xD1B54A32D192ED03ull) % n);
}

static int table(unsigned v, const unsigned *bounds, const int *vals, int n)
{
	for (int i = 0; i < n; i++)
		if (v < bounds[i])
			return vals[i];
	return vals[n - 1];
}

int sched_sim_generate(unsigned servers, unsigned aps, uint64_t seed, char **ret_servers, char **ret_allocations,
		       char **ret_apps)
{
	static const int64_t cap[3] = { 262144, 3200, 2097152 };
	static const int64_t shapes[4][3] = {
		{ 1024, 25, 1024 }, { 4096, 100, 10240 }, { 16384, 200, 51200 }, { 65536, 800, 204800 }
	};
	static const unsigned count_b[] = { 40, 65, 80, 90, 97, 100 };
	static const int count_v[] = { 1, 2, 4, 8, 16, 32 };
	static const unsigned shape_b[] = { 40, 70, 90, 100 };
	static const int shape_v[] = { 0, 1, 2, 3 };
	static const unsigned prio_b[] = { 5, 35, 65, 90, 100 };
	static const int prio_v[] = { 0, 1, 10, 50, 100 };
	char *sb = NULL, *ab = NULL, *pb = NULL;
	size_t sl, al, pl;
	FILE *sf, *af, *pf;
	uint64_t nparts[2] = { 0, 0 }, total = 0, n = (uint64_t)servers * aps;

	sf = open_memstream(&sb, &sl);
	af = open_memstream(&ab, &al);
	pf = open_memstream(&pb, &pl);
	if (!sf || !af || !pf) {
		if (sf)
			fclose(sf);
		if (af)
			fclose(af);
		if (pf)
			fclose(pf);
		free(sb);
		free(ab);
		free(pb);
		return -ENOMEM;
	}
	fputs("#name\track\tpod\tpartition\ttraits\tmemory\tcpu\tdisk\n", sf);
	for (unsigned i = 0; i < servers; i++) {
		unsigned r = i / 20, p = r / 10;
		int part1 = r % 5 == 4;

		nparts[part1]++;
		fprintf(sf, "srv%05u\track:rack%04u\tpod:pod%03u\t%s\t%d\t%lld\t%lld\t%lld\n", i, r, p,
			part1 ? "part1" : "_default", r % 2 == 0 ? 6 : 2, (long long)cap[0], (long long)cap[1],
			(long long)cap[2]);
	}
	fputs("#partition\tpath\trank\trank_adjustment\treserved_memory\treserved_cpu\treserved_disk\n", af);
	for (int t = 0; t < 8; t++)
		for (int env = 0; env < 2; env++) {
			double pct = env == 0 ? 3.5 : 1.5;

			fprintf(af, "_default\ttenant%02d/%s\t100\t%d", t, env == 0 ? "prod" : "dev", env == 0 ? 3 : 0);
			for (int d = 0; d < 3; d++) {
				char num[64];

				sched_sim_repr_double((double)(cap[d] * (int64_t)nparts[0]) * pct / 100.0, num,
						      sizeof(num));
				fprintf(af, "\t%s", num);
			}
			fputc('\n', af);
		}
	for (int t = 0; t < 2; t++) {
		fprintf(af, "part1\tbtenant%d/prod\t100\t3", t);
		for (int d = 0; d < 3; d++) {
			char num[64];

			sched_sim_repr_double((double)(cap[d] * (int64_t)nparts[1]) * 20.0 / 100.0, num, sizeof(num));
			fprintf(af, "\t%s", num);
		}
		fputc('\n', af);
	}
	fputs("#global_order\tname\tpartition\talloc\tpriority\tmemory\tcpu\tdisk\taffinity\taffinity_limits\t"
	      "data_retention_timeout\tschedule_once\ttraits\tidentity_group\tidentity_count\n",
	      pf);
	for (uint64_t g = 0; total < n; g++) {
		uint64_t count = (uint64_t)table(pick(seed, g, F_COUNT, 100), count_b, count_v, 6);
		int part1 = pick(seed, g, F_PART, 100) < 20;
		int unassigned = 0, prio = 1, shape, a;
		char proid[32], alloc[48], affinity[64];
		const char *limits = "-";
		int ret, once, traits, ident;

		if (count > n - total)
			count = n - total;
		if (!part1 && pick(seed, g, F_UNASSIGNED, 100) < 10) {
			unsigned k = pick(seed, g, F_TENANT, 4);

			unassigned = 1;
			snprintf(proid, sizeof(proid), "unassigned%u", k);
			snprintf(alloc, sizeof(alloc), "_default/unassigned%u", k);
		} else if (part1) {
			unsigned t = pick(seed, g, F_TENANT, 2);

			snprintf(proid, sizeof(proid), "bproid%u", t);
			snprintf(alloc, sizeof(alloc), "btenant%u/prod", t);
		} else {
			unsigned t = pick(seed, g, F_TENANT, 8);
			const char *env = pick(seed, g, F_ENV, 100) < 60 ? "prod" : "dev";

			snprintf(proid, sizeof(proid), "proid%02u", t);
			snprintf(alloc, sizeof(alloc), "tenant%02u/%s", t, env);
		}
		shape = table(pick(seed, g, F_SHAPE, 100), shape_b, shape_v, 4);
		if (!unassigned)
			prio = table(pick(seed, g, F_PRIO, 100), prio_b, prio_v, 5);
		a = (int)pick(seed, g, F_AFF, 100);
		if (a < 30 && count <= 16)
			limits = "{\"server\": 1}";
		else if (a < 40 && count <= 16 && !part1)
			limits = "{\"rack\": 8, \"server\": 1}";
		ret = pick(seed, g, F_RET, 100) < 10;
		once = pick(seed, g, F_ONCE, 100) < 5;
		traits = pick(seed, g, F_TRAIT, 100) < 10 ? 4 : 0;
		ident = pick(seed, g, F_IDENT, 100) < 2;
		snprintf(affinity, sizeof(affinity), "%s.app%06llu", proid, (unsigned long long)g);
		for (uint64_t i = 0; i < count; i++, total++) {
			fprintf(pf, "%llu\t%s#%010llu\t%s\t%s\t%d\t%lld\t%lld\t%lld\t%s\t%s\t%s\t%d\t%d\t",
				(unsigned long long)total, affinity, (unsigned long long)total,
				part1 ? "part1" : "_default", alloc, prio, (long long)shapes[shape][0],
				(long long)shapes[shape][1], (long long)shapes[shape][2], affinity, limits,
				ret ? "3600" : "-", once, traits);
			if (ident)
				fprintf(pf, "%s\t%llu\n", affinity, (unsigned long long)count);
			else
				fputs("-\t-\n", pf);
		}
	}
	if (fclose(sf) | fclose(af) | fclose(pf)) {
		free(sb);
		free(ab);
		free(pb);
		return -ENOMEM;
	}
	*ret_servers = sb;
	*ret_allocations = ab;
	*ret_apps = pb;
	return 0;
}
