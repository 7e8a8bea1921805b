/* yaml.c: YAML (libyaml events) -> jansson, typed as PyYAML's SafeLoader does. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#include "../basic/util.h"
#include "manifest-internal.h"

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 200000 /* budget against alias expansion ("billion laughs") */

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_INT "tag:yaml.org,2002:int"
#define TAG_FLOAT "tag:yaml.org,2002:float"
#define TAG_BOOL "tag:yaml.org,2002:bool"
#define TAG_NULL "tag:yaml.org,2002:null"
#define TAG_SEQ "tag:yaml.org,2002:seq"
#define TAG_MAP "tag:yaml.org,2002:map"

struct anchor {
	char *name;
	json_t *value;
};

struct yconv {
	yaml_parser_t parser;
	const char *source;
	struct anchor *anchors;
	size_t n_anchors;
	size_t nodes;
	struct error *err;
};

static int yerr_at(struct yconv *c, yaml_mark_t m, const char *what)
{
	return error_set(c->err, ERR_PERM, 0, "%s:%zu:%zu: %s", c->source, (size_t)m.line + 1, (size_t)m.column + 1,
			 what);
}

static int next_event(struct yconv *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev)) {
		const char *p = c->parser.problem ? c->parser.problem : "invalid YAML";

		if (c->parser.context) {
			_cleanup_free_ char *m = strdup_printf("%s %s", c->parser.context, p);
			return yerr_at(c, c->parser.problem_mark, m ? m : p);
		}
		return yerr_at(c, c->parser.problem_mark, p);
	}
	return 0;
}

static bool is_one_of(const char *s, const char *const *l)
{
	for (; *l; l++)
		if (strcmp(s, *l) == 0)
			return true;
	return false;
}

static const char *const yaml_true[] = { "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL };
static const char *const yaml_false[] = { "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL };
static const char *const yaml_null[] = { "~", "null", "Null", "NULL", "", NULL };

/* Copy s without '_' (PyYAML strips them from numbers). */
static char *strip_underscores(const char *s)
{
	char *r = malloc(strlen(s) + 1), *o = r;

	if (!r)
		return NULL;
	for (; *s; s++)
		if (*s != '_')
			*o++ = *s;
	*o = 0;
	return r;
}

static bool all_in(const char *s, const char *set)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(set, *s))
			return false;
	return true;
}

/* Sexagesimal "a:b:c" (parts after the first: 1-2 digits, < 60; with
 * allow_frac the last part may have a fraction).  False if not that form. */
static bool parse_sexagesimal(const char *s, bool allow_frac, double *ret)
{
	const char *p = s;
	double v = 0;
	bool first = true;

	for (;;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		_cleanup_free_ char *part = strndup(p, n);
		char *end;
		double x;

		if (!part || n == 0)
			return false;
		if (!all_in(part, (!colon && allow_frac && !first) ? "0123456789." : "0123456789"))
			return false;
		if (!first && (strcspn(part, ".") > 2 || (!colon && allow_frac && !strchr(part, '.'))))
			return false;
		x = strtod(part, &end);
		if (*end || (!first && x >= 60))
			return false;
		v = first ? x : v * 60 + x;
		first = false;
		if (!colon)
			break;
		p = colon + 1;
	}
	if (first)
		return false;
	*ret = v;
	return true;
}

/* PyYAML int resolver + constructor.  Returns 1 if s is an int (value in *ret
 * or *ret_real when it overflows int64), 0 if not. */
static int resolve_int(const char *s, json_t **ret)
{
	const char *p = s;
	bool neg = false;
	_cleanup_free_ char *d = NULL;
	const char *digits;
	int base = 10;
	uint64_t u = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!*p || !(*p >= '0' && *p <= '9'))
		return 0;
	if (p[0] == '0' && p[1] == 'b') {
		if (!all_in(p + 2, "01_"))
			return 0;
		base = 2;
		digits = p + 2;
	} else if (p[0] == '0' && p[1] == 'x') {
		if (!all_in(p + 2, "0123456789abcdefABCDEF_"))
			return 0;
		base = 16;
		digits = p + 2;
	} else if (p[0] == '0' && p[1]) {
		if (!all_in(p + 1, "01234567_"))
			return 0;
		base = 8;
		digits = p + 1;
	} else if (p[0] == '0') {
		*ret = json_integer(0);
		return 1;
	} else if (strchr(p, ':')) {
		double v;

		if (!all_in(p, "0123456789_:"))
			return 0;
		_cleanup_free_ char *q = strip_underscores(p);
		if (!q || !parse_sexagesimal(q, false, &v))
			return 0;
		if (v > 9.2e18)
			*ret = json_real(neg ? -v : v);
		else
			*ret = json_integer(neg ? -(json_int_t)v : (json_int_t)v);
		return 1;
	} else {
		if (!all_in(p, "0123456789_"))
			return 0;
		digits = p;
	}
	d = strip_underscores(digits);
	if (!d || !*d)
		return 0; /* "0b_": PyYAML itself fails here; keep the text */
	for (const char *q = d; *q; q++) {
		int dv = *q <= '9' ? *q - '0' : (*q | 0x20) - 'a' + 10;

		if (u > (UINT64_MAX - (uint64_t)dv) / (uint64_t)base) {
			/* beyond 64 bits: PyYAML has bignums, JSON gets a float */
			double r = strtod(d, NULL);
			*ret = json_real(neg ? -r : r);
			return 1;
		}
		u = u * (uint64_t)base + (uint64_t)dv;
	}
	if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
		*ret = json_real(neg ? -(double)u : (double)u);
	else
		*ret = json_integer(neg ? (json_int_t)(0 - u) : (json_int_t)u);
	return 1;
}

/* PyYAML float resolver: [-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)? (with the
 * digit-before-dot or digit-after-dot rules), sexagesimal with a fraction;
 * .inf/.nan cannot be JSON and stay strings. */
static int resolve_float(const char *s, json_t **ret)
{
	const char *p = s;
	bool neg = false;
	_cleanup_free_ char *d = NULL;
	double v;
	char *end;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!strchr(p, '.'))
		return 0;
	if (strchr(p, ':')) {
		if (!(*p >= '0' && *p <= '9') || !all_in(p, "0123456789_:."))
			return 0;
		d = strip_underscores(p);
		if (!d || !parse_sexagesimal(d, true, &v))
			return 0;
		*ret = json_real(neg ? -v : v);
		return 1;
	}
	/* mantissa */
	const char *q = p;
	bool lead = false;
	if (*q >= '0' && *q <= '9') {
		lead = true;
		while ((*q >= '0' && *q <= '9') || *q == '_')
			q++;
	}
	if (*q != '.')
		return 0;
	q++;
	if (!lead) {
		/* "\.[0-9_]+" form, no sign allowed by PyYAML */
		if (p != s || !(*q >= '0' && *q <= '9') )
			return 0;
	}
	while ((*q >= '0' && *q <= '9') || *q == '_')
		q++;
	if (*q == 'e' || *q == 'E') {
		q++;
		if (*q != '-' && *q != '+')
			return 0;
		q++;
		if (!(*q >= '0' && *q <= '9'))
			return 0;
		while (*q >= '0' && *q <= '9')
			q++;
	}
	if (*q)
		return 0;
	d = strip_underscores(p);
	if (!d)
		return 0;
	errno = 0;
	v = strtod(d, &end);
	if (*end || !isfinite(v))
		return 0;
	*ret = json_real(neg ? -v : v);
	return 1;
}

/* Resolve a plain scalar to a typed JSON value (NULL on allocation failure). */
static json_t *resolve_plain(const char *s, size_t len)
{
	json_t *v = NULL;

	if (strlen(s) != len)
		return json_stringn(s, len);
	if (is_one_of(s, yaml_null))
		return json_null();
	if (is_one_of(s, yaml_true))
		return json_true();
	if (is_one_of(s, yaml_false))
		return json_false();
	if (resolve_int(s, &v))
		return v;
	if (resolve_float(s, &v))
		return v;
	return json_stringn(s, len);
}

static int count_nodes(json_t *v, size_t *n)
{
	const char *k;
	json_t *x;
	size_t i;

	(*n)++;
	if (*n > YAML_MAX_NODES)
		return -E2BIG;
	if (json_is_object(v)) {
		json_object_foreach(v, k, x)
			if (count_nodes(x, n) < 0)
				return -E2BIG;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (count_nodes(x, n) < 0)
				return -E2BIG;
	}
	return 0;
}

static int add_anchor(struct yconv *c, const yaml_char_t *name, json_t *v)
{
	struct anchor *a;
	char *n;

	if (!name)
		return 0;
	/* a redefined anchor shadows the old one */
	for (size_t i = 0; i < c->n_anchors; i++)
		if (strcmp(c->anchors[i].name, (const char *)name) == 0) {
			json_decref(c->anchors[i].value);
			c->anchors[i].value = json_incref(v);
			return 0;
		}
	n = strdup((const char *)name);
	a = realloc(c->anchors, (c->n_anchors + 1) * sizeof(*a));
	if (!n || !a) {
		free(n);
		if (a)
			c->anchors = a;
		return error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
	}
	c->anchors = a;
	a[c->n_anchors].name = n;
	a[c->n_anchors].value = json_incref(v);
	c->n_anchors++;
	return 0;
}

static int convert(struct yconv *c, yaml_event_t *ev, int depth, json_t **ret);

static int convert_scalar(struct yconv *c, yaml_event_t *ev, json_t **ret)
{
	const char *val = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	json_t *v;

	if (tag && strcmp(tag, "!") != 0) {
		_cleanup_free_ char *s = strndup(val, len);
		if (!s)
			return error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
		if (strcmp(tag, TAG_STR) == 0)
			v = json_stringn(val, len);
		else if (strcmp(tag, TAG_INT) == 0 || strcmp(tag, TAG_FLOAT) == 0 || strcmp(tag, TAG_BOOL) == 0 ||
			 strcmp(tag, TAG_NULL) == 0) {
			v = resolve_plain(s, len);
			if (v && !((strcmp(tag, TAG_INT) == 0 && json_is_integer(v)) ||
				   (strcmp(tag, TAG_FLOAT) == 0 && json_is_number(v)) ||
				   (strcmp(tag, TAG_BOOL) == 0 && json_is_boolean(v)) ||
				   (strcmp(tag, TAG_NULL) == 0 && json_is_null(v)))) {
				json_decref(v);
				_cleanup_free_ char *m = strdup_printf("invalid value for tag %s", tag);
				return yerr_at(c, ev->start_mark, m ? m : "invalid tagged value");
			}
			if (v && strcmp(tag, TAG_FLOAT) == 0 && json_is_integer(v)) {
				json_t *r = json_real((double)json_integer_value(v));
				json_decref(v);
				v = r;
			}
		} else {
			_cleanup_free_ char *m = strdup_printf("could not determine a constructor for the tag %s", tag);
			return yerr_at(c, ev->start_mark, m ? m : "unknown tag");
		}
	} else if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag) {
		_cleanup_free_ char *s = strndup(val, len);
		if (!s)
			return error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
		v = resolve_plain(s, len);
	} else
		v = json_stringn(val, len);
	if (!v)
		return yerr_at(c, ev->start_mark, "scalar is not valid UTF-8");
	if (add_anchor(c, ev->data.scalar.anchor, v) < 0) {
		json_decref(v);
		return -1;
	}
	*ret = v;
	return 0;
}

static int convert_alias(struct yconv *c, yaml_event_t *ev, json_t **ret)
{
	const char *name = (const char *)ev->data.alias.anchor;

	for (size_t i = c->n_anchors; i > 0; i--)
		if (strcmp(c->anchors[i - 1].name, name) == 0) {
			size_t n = c->nodes;
			json_t *v;

			if (count_nodes(c->anchors[i - 1].value, &n) < 0)
				return yerr_at(c, ev->start_mark, "document too large (alias expansion)");
			c->nodes = n;
			/* a deep copy: callers modify manifests in place */
			v = json_deep_copy(c->anchors[i - 1].value);
			if (!v)
				return error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
			*ret = v;
			return 0;
		}
	_cleanup_free_ char *m = strdup_printf("found undefined alias %s", name);
	return yerr_at(c, ev->start_mark, m ? m : "found undefined alias");
}

static int check_collection_tag(struct yconv *c, yaml_event_t *ev, const yaml_char_t *tag, const char *want)
{
	if (!tag || strcmp((const char *)tag, want) == 0 || strcmp((const char *)tag, "!") == 0)
		return 0;
	_cleanup_free_ char *m = strdup_printf("could not determine a constructor for the tag %s", (const char *)tag);
	return yerr_at(c, ev->start_mark, m ? m : "unknown tag");
}

static int convert_sequence(struct yconv *c, yaml_event_t *start, int depth, json_t **ret)
{
	json_t *arr = json_array();

	if (!arr)
		return error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
	if (check_collection_tag(c, start, start->data.sequence_start.tag, TAG_SEQ) < 0)
		goto fail;
	for (;;) {
		yaml_event_t ev;
		json_t *v = NULL;
		int r;

		if (next_event(c, &ev) < 0)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		r = convert(c, &ev, depth + 1, &v);
		yaml_event_delete(&ev);
		if (r < 0)
			goto fail;
		if (json_array_append_new(arr, v) < 0) {
			error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (add_anchor(c, start->data.sequence_start.anchor, arr) < 0)
		goto fail;
	*ret = arr;
	return 0;
fail:
	json_decref(arr);
	return -1;
}

/* Apply a '<<' merge value: mapping, or sequence of mappings (earlier wins). */
static int merge_into(json_t *merges, json_t *v)
{
	size_t i;
	json_t *x;

	if (json_is_object(v))
		return json_array_append(merges, v);
	if (!json_is_array(v))
		return -EINVAL;
	json_array_foreach(v, i, x) {
		if (!json_is_object(x))
			return -EINVAL;
		if (json_array_append(merges, x) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int convert_mapping(struct yconv *c, yaml_event_t *start, int depth, json_t **ret)
{
	json_t *obj = json_object(), *merges = json_array();
	json_t *x;
	size_t i;

	if (!obj || !merges) {
		error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
		goto fail;
	}
	if (check_collection_tag(c, start, start->data.mapping_start.tag, TAG_MAP) < 0)
		goto fail;
	for (;;) {
		yaml_event_t kev, vev;
		json_t *k = NULL, *v = NULL;
		yaml_mark_t kmark;
		bool is_merge;
		int r;

		if (next_event(c, &kev) < 0)
			goto fail;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			break;
		}
		kmark = kev.start_mark;
		is_merge = kev.type == YAML_SCALAR_EVENT && kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			   !kev.data.scalar.tag && strcmp((const char *)kev.data.scalar.value, "<<") == 0;
		if (kev.type == YAML_SCALAR_EVENT) {
			/* keys are kept as their text: JSON keys are strings */
			k = json_stringn((const char *)kev.data.scalar.value, kev.data.scalar.length);
			if (k && add_anchor(c, kev.data.scalar.anchor, k) < 0) {
				json_decref(k);
				yaml_event_delete(&kev);
				goto fail;
			}
			r = k ? 0 : yerr_at(c, kmark, "mapping key is not valid UTF-8");
		} else if (kev.type == YAML_ALIAS_EVENT) {
			r = convert_alias(c, &kev, &k);
			if (r == 0 && !json_is_string(k))
				r = yerr_at(c, kmark, "mapping keys must be scalars");
		} else
			r = yerr_at(c, kmark, "mapping keys must be scalars");
		yaml_event_delete(&kev);
		if (r < 0) {
			json_decref(k);
			goto fail;
		}
		if (strlen(json_string_value(k)) != json_string_length(k)) {
			json_decref(k);
			yerr_at(c, kmark, "mapping key contains a NUL character");
			goto fail;
		}
		if (next_event(c, &vev) < 0) {
			json_decref(k);
			goto fail;
		}
		r = convert(c, &vev, depth + 1, &v);
		yaml_event_delete(&vev);
		if (r < 0) {
			json_decref(k);
			goto fail;
		}
		if (is_merge) {
			json_decref(k);
			r = merge_into(merges, v);
			json_decref(v);
			if (r < 0) {
				yerr_at(c, kmark, "expected a mapping or list of mappings for merging");
				goto fail;
			}
			continue;
		}
		r = json_object_set_new(obj, json_string_value(k), v);
		json_decref(k);
		if (r < 0) {
			error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
			goto fail;
		}
	}
	json_array_foreach(merges, i, x)
		if (json_object_update_missing(obj, x) < 0) {
			error_set(c->err, ERR_TEMP, ENOMEM, "out of memory");
			goto fail;
		}
	json_decref(merges);
	if (add_anchor(c, start->data.mapping_start.anchor, obj) < 0) {
		json_decref(obj);
		return -1;
	}
	*ret = obj;
	return 0;
fail:
	json_decref(merges);
	json_decref(obj);
	return -1;
}

static int convert(struct yconv *c, yaml_event_t *ev, int depth, json_t **ret)
{
	if (depth > YAML_MAX_DEPTH)
		return yerr_at(c, ev->start_mark, "document nested too deeply");
	if (++c->nodes > YAML_MAX_NODES)
		return yerr_at(c, ev->start_mark, "document too large");
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return convert_scalar(c, ev, ret);
	case YAML_ALIAS_EVENT:
		return convert_alias(c, ev, ret);
	case YAML_SEQUENCE_START_EVENT:
		return convert_sequence(c, ev, depth, ret);
	case YAML_MAPPING_START_EVENT:
		return convert_mapping(c, ev, depth, ret);
	default:
		return yerr_at(c, ev->start_mark, "unexpected YAML event");
	}
}

int manifest_yaml_to_json(const char *text, size_t len, const char *source, json_t **ret, struct error *err)
{
	struct yconv c = { .source = source ? source : "<input>", .err = err };
	json_t *doc = NULL;
	bool in_doc = false, done = false;
	int r = 0;

	if (!yaml_parser_initialize(&c.parser))
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
	while (!done) {
		yaml_event_t ev;

		r = next_event(&c, &ev);
		if (r < 0)
			break;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (doc || in_doc)
				r = yerr_at(&c, ev.start_mark, "expected a single document in the stream");
			in_doc = true;
			break;
		case YAML_DOCUMENT_END_EVENT:
			break;
		default:
			r = convert(&c, &ev, 0, &doc);
			break;
		}
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	for (size_t i = 0; i < c.n_anchors; i++) {
		free(c.anchors[i].name);
		json_decref(c.anchors[i].value);
	}
	free(c.anchors);
	yaml_parser_delete(&c.parser);
	if (r < 0) {
		json_decref(doc);
		if (!error_isset(err))
			error_set(err, ERR_PERM, 0, "%s: invalid YAML", c.source);
		return r < 0 ? r : -EINVAL;
	}
	*ret = doc ? doc : json_null();
	return 0;
}
