#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

char **strv_new(void)
{
	return calloc(1, sizeof(char *));
}

int strv_push(char ***l, char *s)
{
	size_t n = *l ? strv_length(*l) : 0;
	char **t;

	if (!s)
		return -ENOMEM;
	t = realloc(*l, (n + 2) * sizeof(char *));
	if (!t) {
		free(s);
		return -ENOMEM;
	}
	t[n] = s;
	t[n + 1] = NULL;
	*l = t;
	return 0;
}

int strv_extend(char ***l, const char *s)
{
	return strv_push(l, strdup(s));
}

size_t strv_length(char *const *l)
{
	size_t n = 0;

	while (l && l[n])
		n++;
	return n;
}

bool strv_contains(char *const *l, const char *s)
{
	for (; l && *l; l++)
		if (strcmp(*l, s) == 0)
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **l)
{
	if (l)
		qsort(l, strv_length(l), sizeof(char *), cmp_str);
}

void strv_free(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
}

/* The strto*() of one number: s must start like a number (no space, and for
 * unsigned a digit: strtoull takes "-1"), the whole of s must be it. */
enum num_kind { NUM_U64, NUM_I64, NUM_DOUBLE };
static int parse_number(const char *s, enum num_kind kind, void *ret)
{
	char *end;
	union {
		unsigned long long u;
		long long i;
		double d;
	} v;

	if (!s || !*s || isspace((unsigned char)*s) || (kind == NUM_U64 && !isdigit((unsigned char)*s)))
		return -EINVAL;
	errno = 0;
	if (kind == NUM_U64)
		v.u = strtoull(s, &end, 10);
	else if (kind == NUM_I64)
		v.i = strtoll(s, &end, 10);
	else
		v.d = strtod(s, &end);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	if (kind == NUM_U64)
		*(uint64_t *)ret = v.u;
	else if (kind == NUM_I64)
		*(int64_t *)ret = v.i;
	else
		*(double *)ret = v.d;
	return 0;
}

int safe_atou64(const char *s, uint64_t *ret)
{
	return parse_number(s, NUM_U64, ret);
}

int safe_atoi64(const char *s, int64_t *ret)
{
	return parse_number(s, NUM_I64, ret);
}

int safe_atoi(const char *s, int *ret)
{
	int64_t v;
	int r = safe_atoi64(s, &v);

	if (r < 0)
		return r;
	if (v < INT32_MIN || v > INT32_MAX)
		return -ERANGE;
	*ret = (int)v;
	return 0;
}

int safe_atod(const char *s, double *ret)
{
	return parse_number(s, NUM_DOUBLE, ret);
}

int parse_timestamp(const char *s, double *ret)
{
	size_t i = s ? strspn(s, "0123456789") : 0, f = 0;

	if (i < 1 || i > TIMESTAMP_INT_DIGITS)
		return -EINVAL;
	if (s[i] == '.') {
		f = strspn(s + i + 1, "0123456789");
		if (f > TIMESTAMP_FRAC_DIGITS)
			return -EINVAL;
		f++;
	}
	if (s[i + f])
		return -EINVAL;
	return safe_atod(s, ret);
}

/* The decimal number at the start of *p (at least one digit), *p moved past it. */
static int parse_digits(const char **p, uint64_t *ret)
{
	uint64_t n = 0;

	if (!*p || !isdigit((unsigned char)**p))
		return -EINVAL;
	for (; isdigit((unsigned char)**p); (*p)++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		n = n * 10 + (uint64_t)(**p - '0');
	}
	*ret = n;
	return 0;
}

int parse_size(const char *s, uint64_t *ret_bytes)
{
	static const char units[] = "BKMGTPE";
	const char *p = s, *u;
	uint64_t n = 0, mult = 1, base = 1024;
	size_t i;
	int r;

	if ((r = parse_digits(&p, &n)) < 0)
		return r;
	if (*p) {
		u = strchr(units, toupper((unsigned char)*p));
		if (!u)
			return -EINVAL;
		p++;
		if (*u != 'B' && (*p == 'B' || *p == 'b')) {
			base = 1000;
			p++;
		}
		if (*p)
			return -EINVAL;
		for (i = 0; i < (size_t)(u - units); i++) {
			if (mult > UINT64_MAX / base)
				return -ERANGE;
			mult *= base;
		}
	}
	if (n && mult > UINT64_MAX / n)
		return -ERANGE;
	*ret_bytes = n * mult;
	return 0;
}

int parse_size_mib(const char *s, unsigned flags, uint64_t *ret_mib)
{
	uint64_t bytes;
	double d;
	int r;

	if ((flags & SIZE_MIB_BARE) && safe_atod(s, &d) == 0) {
		if (!(d >= 0) || d > 1e12)
			return -ERANGE;
		*ret_mib = (flags & SIZE_MIB_ROUND_UP) ? (uint64_t)ceil(d) : (uint64_t)d;
		return 0;
	}
	r = parse_size(s, &bytes);
	if (r < 0)
		return r;
	*ret_mib = (bytes >> 20) + ((flags & SIZE_MIB_ROUND_UP) && (bytes & ((1u << 20) - 1)));
	return 0;
}

int parse_cpu(const char *s, unsigned flags, double *ret_percent)
{
	_cleanup_free_ char *t = strdup(s ? s : "");
	size_t n;
	uint64_t u;
	double d;
	int r;

	if (!t)
		return -ENOMEM;
	n = strlen(t);
	if (n && t[n - 1] == '%')
		t[n - 1] = 0;
	if (flags & CPU_FRACTION) {
		r = safe_atod(t, &d);
		if (r < 0)
			return r;
		if (!(d >= 0))
			return -ERANGE;
	} else {
		r = safe_atou64(t, &u);
		if (r < 0)
			return r;
		d = (double)u;
	}
	*ret_percent = d;
	return 0;
}

int parse_duration(const char *s, uint64_t *ret_seconds)
{
	const char *p = s;
	uint64_t n = 0, mult = 1;
	int r;

	if ((r = parse_digits(&p, &n)) < 0)
		return r;
	if (*p) {
		switch (toupper((unsigned char)*p)) {
		case 'S': mult = 1; break;
		case 'M': mult = 60; break;
		case 'H': mult = 3600; break;
		case 'D': mult = 86400; break;
		default: return -EINVAL;
		}
		if (p[1])
			return -EINVAL;
	}
	if (n && mult > UINT64_MAX / n)
		return -ERANGE;
	*ret_seconds = n * mult;
	return 0;
}

double now_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t now_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *strdup_vprintf(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	return s;
}

char *strdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = strdup_vprintf(fmt, ap);
	va_end(ap);
	return s;
}

bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

char *shell_quote(const char *s)
{
	size_t n = 3;
	char *out, *o;

	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	out = malloc(n);
	if (!out)
		return NULL;
	o = out;
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else
			*o++ = *p;
	}
	*o++ = '\'';
	*o = 0;
	return out;
}

char *shell_quote_argv(char *const *argv)
{
	char *out = strdup("");

	for (char *const *a = argv; out && *a; a++) {
		_cleanup_free_ char *q = shell_quote(*a), *prev = out;

		out = q ? strdup_printf("%s%s%s", prev, a == argv ? "" : " ", q) : NULL;
	}
	return out;
}
