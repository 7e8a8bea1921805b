/* manifest.c: Treadmill app manifests: load, validate, schedule, runtime form. */
#include <pwd.h>
#include <regex.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "manifest-internal.h"
#include "manifest.h"

#define MIN_SIZE_BYTES (100ull << 20) /* the cell API's floor for memory and disk */
#define MAX_SIZE_BYTES (1ull << 60)   /* treadle's ceiling: sizes are byte counts in 64 bits */

#define OOM() error_set(err, ERR_TEMP, ENOMEM, "out of memory")

/* Set m[k] = v (reference stolen) unless m already has k. */
static int default_key(json_t *m, const char *k, json_t *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_get(m, k)) {
		json_decref(v);
		return 0;
	}
	return json_object_set_new(m, k, v) < 0 ? -ENOMEM : 0;
}

/* ---------------------------------------------------------------- problems */

struct vctx {
	char **problems;
	unsigned flags;
	bool oom;
};

static void problem(struct vctx *v, const char *path, const char *fmt, ...) _printf_(3, 4);
static void problem(struct vctx *v, const char *path, const char *fmt, ...)
{
	_cleanup_free_ char *m = NULL;
	char *line;
	va_list ap;

	va_start(ap, fmt);
	m = strdup_vprintf(fmt, ap);
	va_end(ap);
	line = m ? strdup_printf("%s: %s", path && *path ? path : "manifest", m) : NULL;
	if (!line || strv_push(&v->problems, line) < 0) {
		free(line);
		v->oom = true;
	}
}

static char *path_key(const char *parent, const char *key)
{
	return parent && *parent ? strdup_printf("%s.%s", parent, key) : strdup(key);
}

static char *path_index(const char *parent, size_t i)
{
	return strdup_printf("%s[%zu]", parent, i);
}

/* ------------------------------------------------------------------ rules */

static bool rx_match(const char *re, const char *s)
{
	regex_t rx;
	bool ok;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	ok = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

struct rule {
	const char *re;	  /* POSIX ERE */
	const char *desc; /* shown to the user, Treadmill's schema notation */
	size_t maxlen;	  /* 0 = none */
};

static const struct rule R_SIZE = { "^[0-9]+[KkMmGg]$", "^\\d+[KkMmGg]$", 0 };
static const struct rule R_CPU = { "^[0-9]+%$", "^\\d+%$", 0 };
static const struct rule R_SVC_NAME = { "^[A-Za-z0-9_.-]+$", "^[\\w\\-\\.]+$", 60 };
static const struct rule R_EP_NAME = { "^[A-Za-z0-9_-]+$", "^[\\w\\-]+$", 20 };
static const struct rule R_IMAGE = { "^(native:.*|docker://.+|http://.+|file://.+)$",
				     "^native:|docker://.+|http://.+|file://.+$", 4096 };
static const struct rule R_TICKET = { "^[A-Za-z0-9_-]+@[A-Za-z0-9_.]+$", "^[\\w\\-]+@[\\w\\.]+$", 0 };
static const struct rule R_KEYTAB = { "^([A-Za-z0-9_-]+#[A-Za-z0-9_.-]+@[A-Za-z0-9_.]+|[A-Za-z0-9_-]+:[^:]+)$",
				      "^[\\w\\-]+#[\\w\\-\\.]+@[\\w\\.]+$ or owner:principal", 128 };
static const struct rule R_FEATURE = { "^[A-Za-z0-9_-]+$", "^[\\w\\-]+$", 0 };
static const struct rule R_CELL = { "^[a-zA-Z0-9-]+$", "^[a-zA-Z0-9-]+$", 0 };
static const struct rule R_IDENTITY_GROUP = {
	"^([A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)+|[A-Za-z0-9_-]+@[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)+)$",
	"proid.name(.name)* or proid@name.name", 0
};
static const struct rule R_APP_ID = { "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_.@-]+$", "<proid>.<name>", 0 };
static const struct rule R_DURATION = { "^[0-9]+[SsMmHhDdYy]$", "^\\d+[SsMmHhDdMmYy]$", 0 };
static const struct rule R_HOST = {
	"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$",
	"a hostname or IPv4 address", 253
};
static const struct rule R_PROID = { "^[A-Za-z0-9_-]{1,32}$", "^[\\w\\-]{1,32}$", 0 };
static const struct rule R_ENV = { "^(dev|qa|uat|prod)$", "one of dev, qa, uat, prod", 0 };
static const struct rule R_TASK = { "^[0-9]{1,10}$", "at most 10 digits", 0 };
/* treadle's safety rules where Treadmill has none: what becomes an envdir file
 * name and a variable of the service's environment */
static const struct rule R_ENV_NAME = { "^[A-Za-z_][A-Za-z0-9_]*$", "^[A-Za-z_][A-Za-z0-9_]*$", 255 };
static const struct rule R_ANY = { NULL, NULL, 0 };

static bool string_ok(struct vctx *v, const char *path, json_t *x, const struct rule *r)
{
	const char *s;

	if (!json_is_string(x)) {
		problem(v, path, "must be a string");
		return false;
	}
	s = json_string_value(x);
	if (strlen(s) != json_string_length(x)) {
		problem(v, path, "must not contain NUL characters");
		return false;
	}
	if (r->maxlen && strlen(s) > r->maxlen) {
		problem(v, path, "must be at most %zu characters", r->maxlen);
		return false;
	}
	if (r->re && !rx_match(r->re, s)) {
		problem(v, path, r->desc[0] == '^' ? "must match %s" : "must be %s", r->desc);
		return false;
	}
	return true;
}

static void check_int(struct vctx *v, const char *path, json_t *x, json_int_t lo, json_int_t hi)
{
	if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi) {
		if (hi == INT64_MAX)
			problem(v, path, "must be an integer >= %lld", (long long)lo);
		else
			problem(v, path, "must be an integer %lld..%lld", (long long)lo, (long long)hi);
	}
}

static void check_bool(struct vctx *v, const char *path, json_t *x)
{
	if (!json_is_boolean(x))
		problem(v, path, "must be true or false");
}

static void check_string_list(struct vctx *v, const char *path, json_t *x, const struct rule *r)
{
	size_t i;
	json_t *e;

	if (!json_is_array(x)) {
		problem(v, path, "must be a list");
		return;
	}
	json_array_foreach(x, i, e) {
		_cleanup_free_ char *p = path_index(path, i);
		string_ok(v, p ? p : path, e, r);
	}
}

typedef void (*check_fn)(struct vctx *v, const char *path, json_t *x);

struct field {
	const char *name;
	check_fn check;
	bool required;
	unsigned only; /* flags needed for the field to be known (0 = always) */
};

#define V_SCHEDULED 1u /* proid, environment, task, placement data allowed */
#define V_LENIENT 2u   /* unknown fields are not problems (runtime input) */

static void check_object(struct vctx *v, const char *path, json_t *x, const struct field *fields, size_t n)
{
	const char *k;
	json_t *e;

	if (!json_is_object(x)) {
		problem(v, path, "must be a mapping");
		return;
	}
	json_object_foreach(x, k, e) {
		_cleanup_free_ char *p = path_key(path, k);
		const struct field *f = NULL;

		for (size_t i = 0; i < n; i++)
			if (strcmp(fields[i].name, k) == 0 && (fields[i].only & v->flags) == fields[i].only) {
				f = &fields[i];
				break;
			}
		if (f)
			f->check(v, p ? p : k, e);
		else if (!(v->flags & V_LENIENT))
			problem(v, p ? p : k, "unknown field");
	}
	for (size_t i = 0; i < n; i++)
		if (fields[i].required && (fields[i].only & v->flags) == fields[i].only && !json_object_get(x, fields[i].name)) {
			_cleanup_free_ char *p = path_key(path, fields[i].name);
			problem(v, p ? p : fields[i].name, "is required");
		}
}

static void c_size(struct vctx *v, const char *path, json_t *x)
{
	uint64_t b;

	if (!string_ok(v, path, x, &R_SIZE))
		return;
	if (parse_size(json_string_value(x), &b) < 0 || b > MAX_SIZE_BYTES)
		problem(v, path, "must be at most 1073741824G (2^60 bytes)");
	/* the floor is the cell API's (admission) rule, not the node's */
	else if (!(v->flags & V_LENIENT) && b < MIN_SIZE_BYTES)
		problem(v, path, "must be at least 100M");
}
static void c_cpu(struct vctx *v, const char *path, json_t *x)
{
	double d;

	if (!string_ok(v, path, x, &R_CPU))
		return;
	if (parse_cpu(json_string_value(x), 0, &d) < 0 || d < 1 || d > 100000)
		problem(v, path, "must be between 1%% and 100000%%");
}
static void c_string(struct vctx *v, const char *path, json_t *x) { string_ok(v, path, x, &R_ANY); }
static void c_string_or_null(struct vctx *v, const char *path, json_t *x)
{
	if (!json_is_null(x))
		string_ok(v, path, x, &R_ANY);
}
static void c_strings(struct vctx *v, const char *path, json_t *x) { check_string_list(v, path, x, &R_ANY); }
static void c_bool(struct vctx *v, const char *path, json_t *x) { check_bool(v, path, x); }
static void c_image(struct vctx *v, const char *path, json_t *x)
{
	/* the node has no docker runtime: refused here rather than aborted there */
	if (string_ok(v, path, x, &R_IMAGE) && !(v->flags & V_LENIENT) && startswith(json_string_value(x), "docker://"))
		problem(v, path, "docker images are not supported by the linux runtime");
}
static void c_svc_image(struct vctx *v, const char *path, json_t *x)
{
	if (string_ok(v, path, x, &R_ANY) && !(v->flags & V_LENIENT))
		problem(v, path, "service images (docker) are not supported by the linux runtime");
}
static void c_svc_name(struct vctx *v, const char *path, json_t *x)
{
	/* a service name is a directory name under /services, which s6-svscan
	 * ignores when it starts with a dot ('.' and '..' are not names at all) */
	if (string_ok(v, path, x, &R_SVC_NAME) && json_string_value(x)[0] == '.')
		problem(v, path, "must not start with '.'");
}
static void c_ep_name(struct vctx *v, const char *path, json_t *x) { string_ok(v, path, x, &R_EP_NAME); }
static void c_port(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 0, 65535); }
static void c_ep_type(struct vctx *v, const char *path, json_t *x)
{
	static const struct rule r = { "^infra$", "^infra$", 0 };
	if (!json_is_null(x))
		string_ok(v, path, x, &r);
}
static void c_proto(struct vctx *v, const char *path, json_t *x)
{
	static const struct rule r = { "^(tcp|udp)$", "tcp or udp", 0 };
	string_ok(v, path, x, &r);
}
static void c_limit(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 0, 10); }
static void c_interval(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 30, 600); }
static void c_ports_count(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 0, 1024); }
static void c_positive(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 1, INT64_MAX); }
static void c_priority(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 0, 100); }
static void c_tickets(struct vctx *v, const char *path, json_t *x)
{
	check_string_list(v, path, x, &R_TICKET);
	if (json_is_array(x) && json_array_size(x) > 32)
		problem(v, path, "must have at most 32 items");
}
static void c_keytabs(struct vctx *v, const char *path, json_t *x) { check_string_list(v, path, x, &R_KEYTAB); }
static void c_features(struct vctx *v, const char *path, json_t *x) { check_string_list(v, path, x, &R_FEATURE); }
static void c_passthrough(struct vctx *v, const char *path, json_t *x) { check_string_list(v, path, x, &R_HOST); }
static void c_identity_group(struct vctx *v, const char *path, json_t *x)
{
	if (!json_is_null(x))
		string_ok(v, path, x, &R_IDENTITY_GROUP);
}
static void c_affinity(struct vctx *v, const char *path, json_t *x) { string_ok(v, path, x, &R_APP_ID); }
static void c_duration(struct vctx *v, const char *path, json_t *x)
{
	if (!json_is_null(x) && string_ok(v, path, x, &R_DURATION) && strlen(json_string_value(x)) > 11)
		problem(v, path, "must have at most 10 digits");
}
static void c_archive(struct vctx *v, const char *path, json_t *x)
{
	if (!json_is_string(x))
		check_string_list(v, path, x, &R_ANY);
}
static void c_proid(struct vctx *v, const char *path, json_t *x) { string_ok(v, path, x, &R_PROID); }
static void c_env(struct vctx *v, const char *path, json_t *x) { string_ok(v, path, x, &R_ENV); }
static void c_task(struct vctx *v, const char *path, json_t *x) { string_ok(v, path, x, &R_TASK); }
static void c_int_or_null(struct vctx *v, const char *path, json_t *x)
{
	if (!json_is_null(x))
		check_int(v, path, x, 0, INT64_MAX);
}
static void c_number(struct vctx *v, const char *path, json_t *x)
{
	if (!json_is_number(x) && !json_is_null(x))
		problem(v, path, "must be a number");
}

static const struct field restart_fields[] = {
	{ "limit", c_limit, true, 0 },
	{ "interval", c_interval, false, 0 },
};
static void c_restart(struct vctx *v, const char *path, json_t *x)
{
	check_object(v, path, x, restart_fields, ELEMENTSOF(restart_fields));
}

/* Called for each object of a list after its fields are checked. */
typedef void (*item_fn)(struct vctx *v, const char *path, json_t *item);

/* A list of objects of `fields`; item (may be NULL) checks each object more;
 * with unique (a what, e.g. "service"), their "name"s must differ. */
static void check_object_list(struct vctx *v, const char *path, json_t *x, const struct field *fields, size_t n,
			      item_fn item, const char *unique)
{
	size_t i, j;
	json_t *e, *f;

	if (!json_is_array(x)) {
		problem(v, path, "must be a list");
		return;
	}
	json_array_foreach(x, i, e) {
		_cleanup_free_ char *p = path_index(path, i);
		const char *pp = p ? p : path, *name;

		check_object(v, pp, e, fields, n);
		if (!json_is_object(e))
			continue;
		if (item)
			item(v, pp, e);
		name = json_string_value(json_object_get(e, "name"));
		if (!unique || !name)
			continue;
		json_array_foreach(x, j, f) {
			const char *n2 = json_string_value(json_object_get(f, "name"));

			if (j >= i)
				break;
			if (n2 && strcmp(name, n2) == 0) {
				_cleanup_free_ char *q = path_key(pp, "name");
				problem(v, q ? q : pp, "duplicate %s name '%s'", unique, name);
				break;
			}
		}
	}
}

static void c_env_name(struct vctx *v, const char *path, json_t *x) { string_ok(v, path, x, &R_ENV_NAME); }
static const struct field environ_fields[] = {
	{ "name", c_env_name, true, 0 },
	{ "value", c_string, true, 0 },
};
static void c_environ(struct vctx *v, const char *path, json_t *x)
{
	check_object_list(v, path, x, environ_fields, ELEMENTSOF(environ_fields), NULL, NULL);
}

/* A service's readiness check (treadle's, not Treadmill's; MANIFEST.md "Readiness checks"). */
static void c_check_port(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 1, 65535); }
static void c_check_secs(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 1, 3600); }
static void c_check_failures(struct vctx *v, const char *path, json_t *x) { check_int(v, path, x, 1, 100); }
static void c_check_path(struct vctx *v, const char *path, json_t *x)
{
	static const struct rule r = { "^/[!-~]*$", "a path starting with '/', printable, no spaces", 1024 };
	string_ok(v, path, x, &r);
}
static void c_check_endpoints(struct vctx *v, const char *path, json_t *x) { check_string_list(v, path, x, &R_EP_NAME); }
static const struct field check_http_fields[] = {
	{ "port", c_check_port, true, 0 },
	{ "path", c_check_path, false, 0 },
};
static void c_check_http(struct vctx *v, const char *path, json_t *x)
{
	check_object(v, path, x, check_http_fields, ELEMENTSOF(check_http_fields));
}
static const struct field check_fields[] = {
	{ "tcp", c_check_port, false, 0 },
	{ "http", c_check_http, false, 0 },
	{ "command", c_string, false, 0 },
	{ "interval", c_check_secs, false, 0 },
	{ "timeout", c_check_secs, false, 0 },
	{ "failures", c_check_failures, false, 0 },
	{ "endpoints", c_check_endpoints, false, 0 },
};
static void c_check(struct vctx *v, const char *path, json_t *x)
{
	json_t *iv, *to;
	int kinds;

	check_object(v, path, x, check_fields, ELEMENTSOF(check_fields));
	if (!json_is_object(x))
		return;
	kinds = !!json_object_get(x, "tcp") + !!json_object_get(x, "http") + !!json_object_get(x, "command");
	if (kinds != 1)
		problem(v, path, "needs exactly one of tcp, http or command");
	iv = json_object_get(x, "interval");
	to = json_object_get(x, "timeout");
	/* only between values that are valid themselves (one message per mistake) */
	if ((json_is_integer(iv) || json_is_integer(to)) && (!iv || json_integer_value(iv) >= 1) &&
	    (json_is_integer(to) ? json_integer_value(to) : 2) > (json_is_integer(iv) ? json_integer_value(iv) : 10)) {
		_cleanup_free_ char *p = path_key(path, "timeout");
		problem(v, p ? p : path, "must not exceed interval");
	}
}

/* Every endpoint a check gates is one of the app's endpoints, gated by one check only. */
static void checks_endpoints(struct vctx *v, json_t *m)
{
	json_t *svcs = json_object_get(m, "services"), *svc, *ep, *e;
	size_t i, j, k;

	json_array_foreach(svcs, i, svc) {
		json_t *eps = json_object_get(json_object_get(svc, "check"), "endpoints");

		if (!json_is_array(eps))
			continue;
		json_array_foreach(eps, j, ep) {
			_cleanup_free_ char *p = NULL;
			const char *name = json_string_value(ep);
			bool found = false;

			if (!name)
				continue;
			json_array_foreach(json_object_get(m, "endpoints"), k, e)
				if (!strcmp(json_string_value(json_object_get(e, "name")) ?: "", name))
					found = true;
			p = strdup_printf("services[%zu].check.endpoints[%zu]", i, j);
			if (!found)
				problem(v, p ? p : "services", "no endpoint named '%s'", name);
			for (size_t i2 = 0; found && i2 < i; i2++) {
				json_t *o = json_object_get(json_object_get(json_array_get(svcs, i2), "check"), "endpoints"), *x;
				json_array_foreach(o, k, x)
					if (json_is_string(x) && !strcmp(json_string_value(x), name)) {
						problem(v, p ? p : "services", "endpoint '%s' is gated by services[%zu] already",
							name, i2);
						found = false;
						break;
					}
			}
		}
	}
}

static const struct field service_fields[] = {
	{ "name", c_svc_name, true, 0 },
	{ "command", c_string, false, 0 },
	{ "image", c_svc_image, false, 0 },
	{ "useshell", c_bool, false, 0 },
	{ "restart", c_restart, true, 0 },
	{ "root", c_bool, false, 0 },
	{ "environ", c_environ, false, 0 },
	{ "downed", c_bool, false, 0 },
	{ "logger", c_string, false, 0 },
	{ "check", c_check, false, 0 },
};
static void service_item(struct vctx *v, const char *path, json_t *e)
{
	if (!json_object_get(e, "command") && !json_object_get(e, "image"))
		problem(v, path, "needs a command or an image");
}
static void c_services(struct vctx *v, const char *path, json_t *x)
{
	check_object_list(v, path, x, service_fields, ELEMENTSOF(service_fields), service_item, "service");
}

static const struct field endpoint_fields[] = {
	{ "name", c_ep_name, true, 0 },
	{ "port", c_port, true, 0 },
	{ "type", c_ep_type, false, 0 },
	{ "proto", c_proto, false, 0 },
};
static void c_endpoints(struct vctx *v, const char *path, json_t *x)
{
	check_object_list(v, path, x, endpoint_fields, ELEMENTSOF(endpoint_fields), NULL, "endpoint");
}

static const struct field ephemeral_fields[] = {
	{ "tcp", c_ports_count, false, 0 },
	{ "udp", c_ports_count, false, 0 },
};
static void c_ephemeral(struct vctx *v, const char *path, json_t *x)
{
	check_object(v, path, x, ephemeral_fields, ELEMENTSOF(ephemeral_fields));
}

static const struct field affinity_limits_fields[] = {
	{ "bunker", c_positive, false, 0 },
	{ "pod", c_positive, false, 0 },
	{ "rack", c_positive, false, 0 },
	{ "server", c_positive, false, 0 },
};
static void c_affinity_limits(struct vctx *v, const char *path, json_t *x)
{
	check_object(v, path, x, affinity_limits_fields, ELEMENTSOF(affinity_limits_fields));
}

static void c_cells(struct vctx *v, const char *path, json_t *x) { check_string_list(v, path, x, &R_CELL); }
static void c_rule_endpoints(struct vctx *v, const char *path, json_t *x)
{
	check_string_list(v, path, x, &R_ANY);
	if (json_is_array(x) && json_array_size(x) < 1)
		problem(v, path, "must have at least 1 item");
}
static const struct field vring_rule_fields[] = {
	{ "endpoints", c_rule_endpoints, true, 0 },
	{ "pattern", c_string, true, 0 },
};
static void c_vring_rules(struct vctx *v, const char *path, json_t *x)
{
	check_object_list(v, path, x, vring_rule_fields, ELEMENTSOF(vring_rule_fields), NULL, NULL);
}
static const struct field vring_fields[] = {
	{ "cells", c_cells, false, 0 },
	{ "rules", c_vring_rules, false, 0 },
};
static void c_vring(struct vctx *v, const char *path, json_t *x)
{
	check_object(v, path, x, vring_fields, ELEMENTSOF(vring_fields));
}

static const struct field top_fields[] = {
	{ "memory", c_size, true, 0 },
	{ "cpu", c_cpu, true, 0 },
	{ "disk", c_size, true, 0 },
	{ "image", c_image, false, 0 },
	{ "services", c_services, false, 0 },
	{ "command", c_string_or_null, false, 0 },
	{ "args", c_strings, false, 0 },
	{ "endpoints", c_endpoints, false, 0 },
	{ "environ", c_environ, false, 0 },
	{ "ephemeral_ports", c_ephemeral, false, 0 },
	{ "tickets", c_tickets, false, 0 },
	{ "keytabs", c_keytabs, false, 0 },
	{ "features", c_features, false, 0 },
	{ "shared_ip", c_bool, false, 0 },
	{ "shared_network", c_bool, false, 0 },
	{ "schedule_once", c_bool, false, 0 },
	{ "passthrough", c_passthrough, false, 0 },
	{ "archive", c_archive, false, 0 },
	{ "vring", c_vring, false, 0 },
	{ "identity_group", c_identity_group, false, 0 },
	{ "affinity", c_affinity, false, 0 },
	{ "affinity_limits", c_affinity_limits, false, 0 },
	{ "data_retention_timeout", c_duration, false, 0 },
	{ "lease", c_duration, false, 0 },
	{ "traits", c_strings, false, 0 },
	{ "priority", c_priority, false, 0 },
	/* scheduled / cached manifests only */
	{ "proid", c_proid, true, V_SCHEDULED },
	{ "environment", c_env, true, V_SCHEDULED },
	{ "task", c_task, false, V_SCHEDULED },
	{ "identity", c_int_or_null, false, V_SCHEDULED },
	{ "identity_count", c_int_or_null, false, V_SCHEDULED },
	{ "expires", c_number, false, V_SCHEDULED },
};

/* Treadmill's vring routing: every endpoint a rule names must be one of the
 * app's own endpoints (its port and proto are the rule's well-known ones). */
static void vring_endpoints_check(struct vctx *v, json_t *m)
{
	json_t *rules = json_object_get(json_object_get(m, "vring"), "rules"), *rule, *ep, *own;
	size_t i, k, j;

	if (!json_is_array(rules))
		return;
	json_array_foreach(rules, i, rule) {
		json_array_foreach(json_object_get(rule, "endpoints"), k, ep) {
			const char *name = json_string_value(ep);
			bool found = false;

			if (!name)
				continue; /* reported by the field check */
			json_array_foreach(json_object_get(m, "endpoints"), j, own)
				if (json_is_string(json_object_get(own, "name")) &&
				    !strcmp(json_string_value(json_object_get(own, "name")), name))
					found = true;
			if (!found) {
				_cleanup_free_ char *p = strdup_printf("vring.rules[%zu].endpoints[%zu]", i, k);
				problem(v, p ? p : "vring.rules", "'%s' is not one of the app's endpoints", name);
			}
		}
	}
}

int manifest_vring_check_cell(const json_t *m, const char *cell, struct error *err)
{
	const json_t *vr = json_object_get(m, "vring"), *c;
	size_t i;

	if (!cell || !*cell || json_array_size(json_object_get(vr, "rules")) == 0)
		return 0;
	json_array_foreach(json_object_get(vr, "cells"), i, c)
		if (json_is_string(c) && !strcmp(json_string_value(c), cell))
			return 0;
	return error_set(err, ERR_PERM, 0, "vring.cells: must list this cell '%s' (the rules apply in the cells listed)",
			 cell);
}

static bool is_native_image(json_t *m)
{
	const char *img = json_string_value(json_object_get(m, "image"));
	return !img || startswith(img, "native:");
}

static int validate(json_t *m, unsigned flags, struct error *err)
{
	struct vctx v = { .problems = strv_new(), .flags = flags };
	_cleanup_strv_free_ char **l = NULL;
	size_t len = 0;
	char *msg, *o;

	if (!v.problems)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	check_object(&v, "", m, top_fields, ELEMENTSOF(top_fields));
	if (json_is_object(m)) {
		json_t *svcs = json_object_get(m, "services");

		if (!svcs && !json_object_get(m, "image"))
			problem(&v, "services", "is required (or an image)");
		else if (is_native_image(m) && json_is_array(svcs) && json_array_size(svcs) == 0)
			problem(&v, "services", "must have at least 1 item");
		else if (is_native_image(m) && !svcs)
			problem(&v, "services", "is required for a native image");
		checks_endpoints(&v, m);
	}
	if (json_is_object(m))
		vring_endpoints_check(&v, m);
	l = v.problems;
	if (v.oom)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	if (!l[0])
		return 0;
	for (char **p = l; *p; p++)
		len += strlen(*p) + 1;
	msg = malloc(len);
	if (!msg)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	o = msg;
	for (char **p = l; *p; p++) {
		size_t n = strlen(*p);
		memcpy(o, *p, n);
		o += n;
		*o++ = p[1] ? '\n' : '\0';
	}
	error_set(err, ERR_PERM, 0, "%s", msg);
	free(msg);
	return -EINVAL;
}

int manifest_validate(json_t *m, bool scheduled, struct error *err)
{
	return validate(m, scheduled ? V_SCHEDULED : 0, err);
}

int manifest_check_json_size(const json_t *m, const char *source, struct error *err)
{
	/* YAML aliases make JSON larger than its source; the scheduled form must fit a store node */
	size_t jl = json_dumpb(m, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));

	if (jl > MANIFEST_JSON_MAX)
		return error_set(err, ERR_PERM, 0, "%s: the manifest is %zu bytes as JSON, more than the maximum of %d (1000 KiB)",
				 source ? source : "<input>", jl, MANIFEST_JSON_MAX);
	return 0;
}

/* ------------------------------------------------------------------- load */

static enum manifest_format guess_format(const char *text, size_t len, const char *source)
{
	if (source && endswith(source, ".json"))
		return MANIFEST_JSON;
	if (source && (endswith(source, ".yml") || endswith(source, ".yaml")))
		return MANIFEST_YAML;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')
			continue;
		return text[i] == '{' ? MANIFEST_JSON : MANIFEST_YAML;
	}
	return MANIFEST_YAML;
}

int manifest_parse(const char *text, size_t len, enum manifest_format fmt, const char *source, json_t **ret,
		   struct error *err)
{
	json_t *m = NULL;
	int r;

	if (!source)
		source = "<input>";
	if (len > MANIFEST_SIZE_MAX)
		return error_set(err, ERR_PERM, 0, "%s: the manifest is %zu bytes, more than the maximum of %d (1 MiB)",
				 source, len, MANIFEST_SIZE_MAX);
	if (fmt == MANIFEST_AUTO)
		fmt = guess_format(text, len, source);
	if (fmt == MANIFEST_JSON) {
		json_error_t je;

		m = json_loadb(text, len, JSON_DECODE_ANY, &je);
		if (!m)
			return error_set(err, ERR_PERM, 0, "%s:%d:%d: %s", source, je.line, je.column, je.text);
	} else {
		r = manifest_yaml_to_json(text, len, source, &m, err);
		if (r < 0)
			return r;
	}
	if (!json_is_object(m)) {
		json_decref(m);
		return error_set(err, ERR_PERM, 0, "%s: the manifest must be a mapping", source);
	}
	*ret = m;
	return 0;
}

int manifest_load(const char *text, size_t len, enum manifest_format fmt, const char *source, json_t **ret,
		  struct error *err)
{
	json_t *m = NULL;
	int r;

	r = manifest_parse(text, len, fmt, source, &m, err);
	if (r < 0)
		return r;
	r = validate(m, 0, err);
	if (r >= 0)
		r = manifest_check_json_size(m, source, err);
	if (r < 0) {
		json_decref(m);
		return r;
	}
	*ret = m;
	return 0;
}

/* ------------------------------------------------------------ run -- CMD */

/* Append " <a>" (no space first), shell-quoted unless it is plain. */
static int append_quoted(char **buf, size_t *len, const char *a)
{
	const char *safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-";
	_cleanup_free_ char *q = *a && strspn(a, safe) == strlen(a) ? strdup(a) : shell_quote(a);
	size_t ql = q ? strlen(q) : 0;
	char *n = q ? realloc(*buf, *len + ql + 2) : NULL;

	if (!n)
		return -ENOMEM;
	*buf = n;
	if (*len)
		n[(*len)++] = ' ';
	memcpy(n + *len, q, ql + 1);
	*len += ql;
	return 0;
}

int manifest_add_command(json_t *m, const char *service, char *const *argv, struct error *err)
{
	_cleanup_free_ char *cmd = NULL, *name = NULL;
	size_t len = 0;
	json_t *svcs, *svc;

	if (!json_is_object(m) || !argv || !argv[0])
		return error_set(err, ERR_USAGE, 0, "run: a command is required");
	for (char *const *a = argv; *a; a++)
		if (append_quoted(&cmd, &len, *a) < 0)
			return OOM();
	if (!service) {
		const char *b = strrchr(argv[0], '/');
		service = b ? b + 1 : argv[0];
	}
	name = strdup(service);
	svcs = json_object_get(m, "services");
	if (!svcs) {
		svcs = json_array();
		if (!svcs || json_object_set_new(m, "services", svcs) < 0)
			return OOM();
	}
	if (!json_is_array(svcs))
		return error_set(err, ERR_PERM, 0, "services: must be a list");
	svc = json_pack("{s:s, s:s, s:{s:i, s:i}}", "name", name ? name : "", "command", cmd, "restart", "limit", 0,
			"interval", 60);
	if (!name || !svc || json_array_append_new(svcs, svc) < 0 ||
	    default_key(m, "memory", json_string("100M")) < 0 || default_key(m, "cpu", json_string("10%")) < 0 ||
	    default_key(m, "disk", json_string("100M")) < 0)
		return OOM();
	return 0;
}

/* --------------------------------------------------------------- app names */

int manifest_check_appname(const char *appname, bool check_user, struct error *err)
{
	static const struct rule name_rule = { "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_.-]+$", "", 0 };
	_cleanup_free_ char *proid = NULL;
	const char *dot;

	if (!appname || !*appname)
		return error_set(err, ERR_PERM, 0, "app name is empty");
	/* instance names "<app>#<10 digits>" go into trace event names, which
	 * are single path components (255 bytes) together with host and type */
	if (strlen(appname) > MANIFEST_APPNAME_MAX)
		return error_set(err, ERR_PERM, 0, "app name '%.40s...' is longer than %d characters", appname,
				 MANIFEST_APPNAME_MAX);
	if (!rx_match(name_rule.re, appname))
		return error_set(err, ERR_PERM, 0,
				 "app name '%s' must be <proid>.<name> (letters, digits, '_', '-', '.' in the name)",
				 appname);
	dot = strchr(appname, '.');
	proid = strndup(appname, (size_t)(dot - appname));
	if (!proid)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	if (strlen(proid) > 32)
		return error_set(err, ERR_PERM, 0, "app name '%s': proid '%s' is longer than 32 characters", appname,
				 proid);
	if (check_user) {
		struct passwd pw, *res = NULL;
		long bufsz = sysconf(_SC_GETPW_R_SIZE_MAX);
		_cleanup_free_ char *buf = NULL;
		int r;

		if (bufsz < 1024)
			bufsz = 16384;
		buf = malloc((size_t)bufsz);
		if (!buf)
			return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
		r = getpwnam_r(proid, &pw, buf, (size_t)bufsz, &res);
		if (r != 0 && r != ENOENT && r != ESRCH)
			return error_sys(err, r, "looking up user '%s'", proid);
		if (!res)
			return error_set(err, ERR_PERM, 0, "app name '%s': proid '%s' is not a user on this host", appname,
					 proid);
	}
	return 0;
}

/* ------------------------------------------------------------- scheduling */

static int set_new(json_t *o, const char *k, json_t *v)
{
	if (!v)
		return -ENOMEM;
	return json_object_set_new(o, k, v) < 0 ? -ENOMEM : 0;
}

int manifest_schedule(json_t *m, const char *appname, const char *environment, struct error *err)
{
	_cleanup_free_ char *proid = NULL, *affinity = NULL;
	const char *dot, *dot2;
	int r;

	if (!json_is_object(m))
		return error_set(err, ERR_PERM, 0, "the manifest must be a mapping");
	r = manifest_check_appname(appname, false, err);
	if (r < 0)
		return r;
	if (!environment)
		environment = "dev";
	if (!rx_match(R_ENV.re, environment))
		return error_set(err, ERR_PERM, 0, "environment '%s' must be one of dev, qa, uat, prod", environment);
	dot = strchr(appname, '.');
	proid = strndup(appname, (size_t)(dot - appname));
	dot2 = strchr(dot + 1, '.');
	affinity = dot2 ? strndup(appname, (size_t)(dot2 - appname)) : strdup(appname);
	if (!proid || !affinity)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	if (set_new(m, "proid", json_string(proid)) < 0 || set_new(m, "environment", json_string(environment)) < 0 ||
	    (!json_object_get(m, "affinity") && set_new(m, "affinity", json_string(affinity)) < 0) ||
	    (!json_object_get(m, "identity_group") && set_new(m, "identity_group", json_null()) < 0))
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	return 0;
}

/* ----------------------------------------------------------------- runtime */

static json_t *environ_concat(json_t *a, json_t *b)
{
	json_t *r = json_array();

	if (!r)
		return NULL;
	if ((json_is_array(a) && json_array_extend(r, a) < 0) || (json_is_array(b) && json_array_extend(r, b) < 0)) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static json_t *make_service(const char *name, const char *command, json_int_t limit, json_int_t interval, bool root,
			    const char *proid, bool downed, bool trace)
{
	return json_pack("{s:s, s:s, s:{s:I, s:I}, s:b, s:s, s:[], s:n, s:b, s:b}", "name", name, "command", command,
			 "restart", "limit", limit, "interval", interval, "root", root, "proid", proid, "environ",
			 "config", "downed", downed, "trace", trace);
}


static int runtime_services(json_t *m, const char *proid, struct error *err)
{
	json_t *svcs = json_object_get(m, "services"), *out = json_array(), *s;
	size_t i;

	if (!out)
		return OOM();
	json_array_foreach(svcs, i, s) {
		json_t *rs = json_object_get(s, "restart"), *ns;
		json_t *interval = json_object_get(rs, "interval");
		bool root = json_is_true(json_object_get(s, "root"));
		const char *logger = json_string_value(json_object_get(s, "logger"));
		json_t *env = json_object_get(s, "environ");

		if (json_object_get(s, "image")) {
			json_decref(out);
			return error_set(err, ERR_PERM, 0,
					 "services[%zu].image: service images (docker) are not supported by the linux runtime",
					 i);
		}
		ns = make_service(json_string_value(json_object_get(s, "name")),
				  json_string_value(json_object_get(s, "command")), json_integer_value(json_object_get(rs, "limit")),
				  interval ? json_integer_value(interval) : 60, root, root ? "root" : proid,
				  json_is_true(json_object_get(s, "downed")), true);
		if (!ns || set_new(ns, "logger", json_string(logger ? logger : "s6.app-logger.run")) < 0 ||
		    (json_is_array(env) && json_object_set(ns, "environ", env) < 0) ||
		    (json_object_get(s, "check") && json_object_set(ns, "check", json_object_get(s, "check")) < 0) ||
		    json_array_append_new(out, ns) < 0) {
			json_decref(ns);
			json_decref(out);
			return OOM();
		}
	}
	return set_new(m, "services", out) < 0 ? OOM() : 0;
}

int manifest_runtime(const json_t *cached, const struct manifest_runtime_ctx *ctx, json_t **ret,
		     struct error *err)
{
	json_t *m = NULL, *x, *eps, *neps, *svc, *sys;
	_cleanup_free_ char *app = NULL, *cdir = NULL, *data = NULL, *unique = NULL, *cmd = NULL;
	const char *proid, *image, *hash, *sshd;
	size_t i;
	int r;

	if (!ctx || !ctx->instance || !ctx->uniqueid || !ctx->cell)
		return error_set(err, ERR_USAGE, 0, "manifest_runtime: instance, uniqueid and cell are required");
	hash = strchr(ctx->instance, '#');
	if (!hash || !hash[1] || strspn(hash + 1, "0123456789") != strlen(hash + 1))
		return error_set(err, ERR_PERM, 0, "instance '%s' must be <app>#<digits>", ctx->instance);
	m = json_deep_copy(cached);
	if (!m)
		return OOM();
	r = validate(m, V_SCHEDULED | V_LENIENT, err);
	if (r < 0)
		goto fail;
	proid = json_string_value(json_object_get(m, "proid"));
	image = json_string_value(json_object_get(m, "image"));
	app = strndup(ctx->instance, (size_t)(hash - ctx->instance));
	if (!app)
		goto oom;

	/* Treadmill appcfg/manifest.py:load */
	if (set_new(m, "system_services", json_array()) < 0 || set_new(m, "name", json_string(ctx->instance)) < 0 ||
	    set_new(m, "app", json_string(app)) < 0 ||
	    set_new(m, "type", json_string(!image || startswith(image, "native:")	? "native"
					   : startswith(image, "docker://")	? "docker"
									: "tar")) < 0 ||
	    set_new(m, "uniqueid", json_string(ctx->uniqueid)) < 0 || set_new(m, "cell", json_string(ctx->cell)) < 0 ||
	    set_new(m, "zookeeper", ctx->store_url ? json_string(ctx->store_url) : json_null()) < 0 ||
	    default_key(m, "task", json_string(hash + 1)) < 0)
		goto oom;
	{
		const char *cpu = json_string_value(json_object_get(m, "cpu"));
		_cleanup_free_ char *d = strndup(cpu, strlen(cpu) - 1);
		int64_t n = 0;

		if (!d || safe_atoi64(d, &n) < 0 || set_new(m, "cpu", json_integer(n)) < 0)
			goto oom;
	}
	if (set_new(m, "shared_network", json_boolean(json_is_true(json_object_get(m, "shared_network")))) < 0 ||
	    set_new(m, "shared_ip", json_boolean(json_is_true(json_object_get(m, "shared_ip")))) < 0)
		goto oom;
	x = json_object_get(m, "archive");
	if (json_is_string(x)) {
		if (set_new(m, "archive", json_pack("[O]", x)) < 0)
			goto oom;
	} else if (!x || json_is_null(x)) {
		if (set_new(m, "archive", json_array()) < 0)
			goto oom;
	}
	if (default_key(m, "command", json_null()) < 0 || default_key(m, "args", json_array()) < 0 ||
	    default_key(m, "environ", json_array()) < 0 || default_key(m, "endpoints", json_array()) < 0 ||
	    default_key(m, "passthrough", json_array()) < 0 || default_key(m, "services", json_array()) < 0 ||
	    default_key(m, "vring", json_object()) < 0 || default_key(m, "identity_group", json_null()) < 0 ||
	    default_key(m, "identity_count", json_null()) < 0 || default_key(m, "identity", json_null()) < 0 ||
	    default_key(m, "data_retention_timeout", json_null()) < 0 || default_key(m, "lease", json_null()) < 0 ||
	    default_key(m, "keytabs", json_array()) < 0 ||
	    default_key(json_object_get(m, "vring"), "cells", json_array()) < 0)
		goto oom;

	/* endpoints: {name, port, type|null, proto|tcp} */
	eps = json_object_get(m, "endpoints");
	neps = json_array();
	if (!neps)
		goto oom;
	json_array_foreach(eps, i, x) {
		json_t *t = json_object_get(x, "type");
		const char *proto = json_string_value(json_object_get(x, "proto"));
		json_t *ne = json_pack("{s:O, s:O, s:O, s:s}", "name", json_object_get(x, "name"), "port",
				       json_object_get(x, "port"), "type", t ? t : json_null(), "proto",
				       proto ? proto : "tcp");
		if (!ne || json_array_append_new(neps, ne) < 0) {
			json_decref(neps);
			goto oom;
		}
	}
	if (set_new(m, "endpoints", neps) < 0)
		goto oom;
	x = json_object_get(m, "ephemeral_ports");
	if (set_new(m, "ephemeral_ports",
		    json_pack("{s:I, s:I}", "tcp", json_integer_value(json_object_get(x, "tcp")), "udp",
			      json_integer_value(json_object_get(x, "udp")))) < 0)
		goto oom;

	/* runtime/linux/_manifest.py:_transform_services */
	r = runtime_services(m, proid, err);
	if (r < 0)
		goto fail;

	/* system services: treadle's own, see docs/MANIFEST.md */
	cdir = !ctx->container_dir ? strdup_printf("%s/apps/%s-%s-%s", ctx->approot ? ctx->approot : "", app, hash + 1,
						   ctx->uniqueid)
	       : ctx->container_dir[0] == '/' || !ctx->approot ? strdup(ctx->container_dir)
							   : strdup_printf("%s/%s", ctx->approot, ctx->container_dir);
	if (!cdir)
		goto oom;
	{
		const char *b = strrchr(cdir, '/');
		unique = strdup(b ? b + 1 : cdir);
	}
	data = strdup_printf("%s/data", cdir);
	cmd = data && unique ? strdup_printf("cd %s && exec %s sproc run --root %s", cdir,
					     ctx->treadle_bin ? ctx->treadle_bin : "treadle", ctx->approot ? ctx->approot : "")
			     : NULL;
	if (!cmd)
		goto oom;
	sys = make_service("start_container", cmd, 0, 60, true, "root", true, false);
	if (sys)
		json_object_del(sys, "root"); /* Treadmill's system services have no "root" key */
	if (!sys || json_array_append_new(json_object_get(m, "system_services"), sys) < 0)
		goto oom;

	/* sshd, only when the node has one */
	sshd = ctx->sshd;
	if (!sshd) {
		struct stat st;
		sshd = stat("/usr/sbin/sshd", &st) == 0 && S_ISREG(st.st_mode) ? "/usr/sbin/sshd" : "";
	}
	if (*sshd) {
		_cleanup_free_ char *c = strdup_printf(
			"unset KRB5_KTNAME;unset KRB5CCNAME;exec %s -D -f /etc/ssh/sshd_config -p 22", sshd);
		if (!c)
			goto oom;
		svc = make_service("sshd", c, 5, 60, true, "root", false, false);
		if (!svc || json_array_append_new(json_object_get(m, "services"), svc) < 0 ||
		    json_array_append_new(json_object_get(m, "endpoints"),
					  json_pack("{s:s, s:i, s:s, s:s}", "name", "ssh", "port", 22, "proto", "tcp",
						    "type", "infra")) < 0)
			goto oom;
	}

	/* manifest environ prepended to every service's */
	json_array_foreach(json_object_get(m, "services"), i, svc) {
		json_t *e = environ_concat(json_object_get(m, "environ"), json_object_get(svc, "environ"));
		if (set_new(svc, "environ", e) < 0)
			goto oom;
	}
	*ret = m;
	return 0;
oom:
	OOM();
fail:
	json_decref(m);
	return -EINVAL;
}

char *manifest_dumps(const json_t *m)
{
	return json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}
