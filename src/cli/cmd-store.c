/* cmd-store.c: `treadle store ...`, a debugging window onto the cell store.
 *
 *   treadle store get PATH [--stat]
 *   treadle store set PATH DATA|- [--version N]
 *   treadle store create PATH [DATA|-] [-e] [-s] [-p] [--hold]
 *   treadle store delete PATH [-r] [--version N]
 *   treadle store ls PATH
 *   treadle store tree [PATH] [--data]
 *   --json with get, ls, tree: data as JSON (node data as a string, null if not UTF-8)
 *   treadle store exists PATH              (exit 1 if missing)
 *   treadle store wait PATH [--timeout SEC] [--gone]   wait until PATH exists (or is gone)
 *   treadle store watch PATH [--timeout SEC]  print data and child events of PATH as they come
 *   treadle store fsck [--repair]          check the embedded store's files (exit 1: problems left)
 * get, exists, ls and tree fall back to a read-only open (no session) when a
 * session cannot be written (full disk, read-only mount).
 * The store URL comes from --store, $TREADLE_STORE, or file://ROOT/store with
 * ROOT from --root / $TREADLE_ROOT / /var/lib/treadle. */
#include <getopt.h>
#include <jansson.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../store/store.h"
#include "cli.h"

struct store_args {
	const char *url, *root;
	bool ephemeral, sequential, parents, recursive, stat, data, hold, gone, json, repair;
	int64_t version;
	int timeout_s;
};

static int fail(const char *what, const char *path, int r)
{
	fprintf(stderr, "treadle: store %s %s: %s\n", what, path, store_strerror(r));
	return store_error_code(r);
}

static int read_stdin(char **ret, size_t *ret_len)
{
	return read_file_at(STDIN_FILENO, "/dev/stdin", ret, ret_len);
}

static void print_stat(const struct store_stat *st)
{
	printf("version %" PRId64 "\ncversion %" PRId64 "\nctime_ms %" PRId64 "\nmtime_ms %" PRId64
	       "\nephemeral_owner %" PRId64 "\nnum_children %d\ndata_length %d\n",
	       st->version, st->cversion, st->ctime_ms, st->mtime_ms, st->ephemeral_owner, st->num_children,
	       st->data_length);
}

static json_t *stat_json(const struct store_stat *st)
{
	return json_pack("{sIsIsIsIsIsisi}", "version", (json_int_t)st->version, "cversion", (json_int_t)st->cversion,
			 "ctime_ms", (json_int_t)st->ctime_ms, "mtime_ms", (json_int_t)st->mtime_ms, "ephemeral_owner",
			 (json_int_t)st->ephemeral_owner, "num_children", st->num_children, "data_length",
			 st->data_length);
}

/* {"path", "data" (null if not UTF-8 text), "stat"}; with children: "children": [...] */
static json_t *node_json(struct store *s, const char *path, bool recursive, int *ret)
{
	_cleanup_free_ char *d = NULL;
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_json_ json_t *o = NULL;
	struct store_stat st;
	size_t len;
	json_t *data, *kids;
	int r;

	r = store_get(s, path, &d, &len, &st, NULL, NULL);
	if (r < 0) {
		*ret = r;
		return NULL;
	}
	data = json_stringn(d, len); /* NULL when not valid UTF-8 */
	o = json_pack("{sssoso}", "path", path, "data", data ? data : json_null(), "stat", stat_json(&st));
	if (!o || !recursive)
		return TAKE_PTR(o);
	r = store_children(s, path, &names, NULL, NULL);
	if (r == -ENOENT)
		return TAKE_PTR(o);
	if (r < 0) {
		*ret = r;
		return NULL;
	}
	kids = json_array();
	json_object_set_new(o, "children", kids);
	for (char **n = names; *n; n++) {
		_cleanup_free_ char *c = strdup_printf("%s/%s", strcmp(path, "/") ? path : "", *n);
		json_t *k;

		if (!c) {
			*ret = -ENOMEM;
			return NULL;
		}
		k = node_json(s, c, true, ret);
		if (!k && *ret != -ENOENT)
			return NULL;
		if (k)
			json_array_append_new(kids, k);
	}
	return TAKE_PTR(o);
}

/* Print o (taken). */
static int print_json(json_t *o)
{
	_cleanup_json_ json_t *j = o;

	if (!j)
		return -ENOMEM;
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
	return 0;
}

static int print_tree(struct store *s, const char *path, bool data)
{
	_cleanup_strv_free_ char **names = NULL;
	int r;

	if (data) {
		_cleanup_free_ char *d = NULL;
		size_t len;
		r = store_get(s, path, &d, &len, NULL, NULL, NULL);
		if (r == -ENOENT)
			return 0; /* deleted meanwhile */
		if (r < 0)
			return r;
		printf("%s", path);
		if (len) {
			printf(" = ");
			for (size_t i = 0; i < len; i++)
				putchar(d[i] == '\n' ? ' ' : d[i]);
		}
		putchar('\n');
	} else
		printf("%s\n", path);
	r = store_children(s, path, &names, NULL, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (char **n = names; *n; n++) {
		_cleanup_free_ char *c = strdup_printf("%s/%s", strcmp(path, "/") ? path : "", *n);
		if (!c)
			return -ENOMEM;
		r = print_tree(s, c, data);
		if (r < 0)
			return r;
	}
	return 0;
}

static void on_watch(struct store *s, enum store_event ev, const char *path, void *userdata)
{
	*(bool *)userdata = true;
}

static int wait_for(struct store *s, const char *path, bool gone, int timeout_s)
{
	uint64_t deadline = now_monotonic_ms() + (uint64_t)(timeout_s > 0 ? timeout_s : 0) * 1000;

	for (;;) {
		bool fired = false;
		int r = store_exists(s, path, NULL, on_watch, &fired);
		if (r < 0 && r != -ENOENT)
			return r;
		if ((r == 0) != gone)
			return 0;
		while (!fired) {
			int left = -1;
			if (timeout_s > 0) {
				uint64_t now = now_monotonic_ms();
				if (now >= deadline)
					return -ETIMEDOUT;
				left = (int)(deadline - now);
			}
			r = store_wait(s, left);
			if (r < 0)
				return r;
		}
	}
}

static const char *event_name(enum store_event ev)
{
	switch (ev) {
	case STORE_EVENT_CREATED:
		return "created";
	case STORE_EVENT_DELETED:
		return "deleted";
	case STORE_EVENT_CHANGED:
		return "changed";
	case STORE_EVENT_CHILD:
		return "child";
	case STORE_EVENT_SESSION:
		return "session";
	}
	return "?";
}

static void on_print(struct store *s, enum store_event ev, const char *path, void *userdata)
{
	int *armed = userdata;

	printf("%s %s\n", event_name(ev), path);
	fflush(stdout);
	*armed = 0;
}

/* Print every event on path (data and children), re-arming after each. */
static int watch_print(struct store *s, const char *path, int timeout_s)
{
	uint64_t deadline = now_monotonic_ms() + (uint64_t)timeout_s * 1000;
	int data_armed = 0, child_armed = 0, r;

	for (;;) {
		if (!data_armed) {
			r = store_exists(s, path, NULL, on_print, &data_armed);
			if (r < 0 && r != -ENOENT)
				return r;
			data_armed = 1;
		}
		if (!child_armed) {
			r = store_children(s, path, NULL, on_print, &child_armed);
			if (r < 0 && r != -ENOENT)
				return r;
			child_armed = r == 0;
		}
		uint64_t now = now_monotonic_ms();
		if (timeout_s > 0 && now >= deadline)
			return 0;
		r = store_wait(s, timeout_s > 0 ? (int)(deadline - now) : 1000);
		if (r < 0)
			return r;
		if (store_state(s) == STORE_EXPIRED)
			return -ESHUTDOWN;
	}
}

const struct cli_option store_options[] = {
	{ "store", 'S', "URL", "the cell's store (default $TREADLE_STORE, else file://<root>/store)" },
	{ "root", 'R', "DIR", "the cell's root (default $TREADLE_ROOT, else /var/lib/treadle)" },
	{ "ephemeral", 'e', NULL, "create: an ephemeral node (gone with this session; see --hold)", true },
	{ "sequential", 's', NULL, "create: a sequential node (a 10-digit suffix)", true },
	{ "parents", 'p', NULL, "create: create missing parents", true },
	{ "recursive", 'r', NULL, "delete: with every child", true },
	{ "version", 'V', "N", "set, delete: only if the node has this version" },
	{ "stat", 't', NULL, "get: print the node's stat too" },
	{ "data", 'd', NULL, "tree: print each node's data", true },
	{ "hold", 'H', NULL, "create -e: keep the session (and the node) until killed" },
	{ "timeout", 'T', "SEC", "wait, watch: give up after SEC seconds" },
	{ "gone", 'g', NULL, "wait: until PATH is gone" },
	{ "json", 'j', NULL, "get, ls, tree: print JSON" },
	{ "repair", 'F', NULL, "fsck: repair what it can (bad nodes to lost+found, journal set aside, counters)" },
	CLI_OPTIONS_END,
};

int cmd_store(int argc, char **argv)
{
	struct store_args a = { .version = -1 };
	struct error err = ERROR_INIT;
	_cleanup_store_ struct store *s = NULL;
	_cleanup_free_ char *url_buf = NULL, *data = NULL;
	const char *verb, *path;
	size_t len = 0;
	int c, r;

	optind = 1;
	while ((c = cli_getopt(argc, argv, store_options, false)) >= 0) {
		switch (c) {
		case 'S':
			a.url = optarg;
			break;
		case 'R':
			a.root = optarg;
			break;
		case 'e':
			a.ephemeral = true;
			break;
		case 's':
			a.sequential = true;
			break;
		case 'p':
			a.parents = true;
			break;
		case 'r':
			a.recursive = true;
			break;
		case 'V':
			if (safe_atoi64(optarg, &a.version) < 0 || a.version < -1)
				return cli_usage_error("store", "bad --version '%s'", optarg);
			break;
		case 't':
			a.stat = true;
			break;
		case 'd':
			a.data = true;
			break;
		case 'H':
			a.hold = true;
			break;
		case 'g':
			a.gone = true;
			break;
		case 'j':
			a.json = true;
			break;
		case 'F':
			a.repair = true;
			break;
		case 'T':
			if (safe_atoi(optarg, &a.timeout_s) < 0 || a.timeout_s < 0)
				return cli_usage_error("store", "bad --timeout '%s'", optarg);
			break;
		default:
			return cli_usage_error("store", "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("store", "missing verb (get, set, create, delete, ls, tree, exists, wait, watch, fsck)");
	verb = argv[optind++];
	if (a.repair && strcmp(verb, "fsck"))
		return cli_usage_error("store", "--repair goes with fsck");
	path = optind < argc ? argv[optind++] : (!strcmp(verb, "tree") || !strcmp(verb, "fsck") ? "/" : NULL);
	if (!path)
		return cli_usage_error("store", "%s: missing PATH", verb);
	if (optind < argc) {
		if (strcmp(verb, "set") && strcmp(verb, "create"))
			return cli_usage_error("store", "%s: unexpected argument '%s'", verb, argv[optind]);
		if (!strcmp(argv[optind], "-")) {
			r = read_stdin(&data, &len);
			if (r < 0)
				return fail("read stdin for", path, r);
		} else {
			data = strdup(argv[optind]);
			if (!data)
				return EXIT_TEMP;
			len = strlen(data);
		}
		if (++optind < argc)
			return cli_usage_error("store", "too many arguments");
	} else if (!strcmp(verb, "set"))
		return cli_usage_error("store", "set: missing DATA (or - for stdin)");

	if (!a.url)
		a.url = getenv("TREADLE_STORE");
	if (!a.url || !*a.url) {
		url_buf = strdup_printf("file://%s/store", cli_root(a.root));
		if (!url_buf)
			return EXIT_TEMP;
		a.url = url_buf;
	}
	if (!strcmp(verb, "fsck")) {
		struct store_fsck_result res;
		if (strcmp(path, "/"))
			return cli_usage_error("store", "fsck: unexpected argument '%s'", path);
		r = store_fsck(a.url, a.repair, &res, &err);
		if (r < 0)
			return error_report(&err);
		for (char **l = res.lines; l && *l; l++)
			printf("%s\n", *l);
		printf("%zu problem%s found, %zu repaired\n", res.found, res.found == 1 ? "" : "s", res.repaired);
		strv_free(res.lines);
		return res.found > res.repaired ? EXIT_NO : EXIT_OK;
	}
	r = store_open(a.url, NULL, &s, &err);
	if (r < 0 && (!strcmp(verb, "get") || !strcmp(verb, "exists") || !strcmp(verb, "ls") || !strcmp(verb, "tree")) &&
	    (r == -EROFS || r == -ENOSPC || r == -EDQUOT || r == -EACCES || r == -EPERM)) {
		/* cannot write a session (full disk, read-only mount): read without one */
		struct store_options so = { .read_only = true };

		error_clear(&err);
		r = store_open(a.url, &so, &s, &err);
	}
	if (r < 0)
		return error_report(&err);

	if (a.json && (!strcmp(verb, "get") || !strcmp(verb, "tree"))) {
		int e = 0;
		json_t *o = node_json(s, path, !strcmp(verb, "tree"), &e);
		if (!o)
			return fail(verb, path, e ? e : -ENOMEM);
		return print_json(o) < 0 ? EXIT_TEMP : EXIT_OK;
	}
	if (!strcmp(verb, "get")) {
		struct store_stat st;
		_cleanup_free_ char *d = NULL;
		r = store_get(s, path, &d, &len, &st, NULL, NULL);
		if (r < 0)
			return fail("get", path, r);
		if (a.stat)
			print_stat(&st);
		else
			fwrite(d, 1, len, stdout);
		return EXIT_OK;
	}
	if (!strcmp(verb, "exists")) {
		r = store_exists(s, path, NULL, NULL, NULL);
		if (r == -ENOENT)
			return EXIT_NO;
		return r < 0 ? fail("exists", path, r) : EXIT_OK;
	}
	if (!strcmp(verb, "set")) {
		r = store_set(s, path, data, len, a.version, NULL);
		return r < 0 ? fail("set", path, r) : EXIT_OK;
	}
	if (!strcmp(verb, "create")) {
		_cleanup_free_ char *created = NULL;
		int flags = (a.ephemeral ? STORE_EPHEMERAL : 0) | (a.sequential ? STORE_SEQUENTIAL : 0);
		if (a.parents) {
			_cleanup_free_ char *parent = strdup(path);
			char *slash = parent ? strrchr(parent, '/') : NULL;
			if (!parent)
				return EXIT_TEMP;
			if (slash && slash != parent) {
				*slash = 0;
				r = store_create_p(s, parent);
				if (r < 0)
					return fail("create", parent, r);
			}
		}
		r = store_create(s, path, data, len, flags, &created);
		if (r < 0)
			return fail("create", path, r);
		printf("%s\n", created);
		fflush(stdout);
		if (a.hold) /* keep the session (and its ephemerals) until killed */
			for (;;)
				pause();
		return EXIT_OK;
	}
	if (!strcmp(verb, "delete")) {
		r = a.recursive ? store_delete_r(s, path) : store_delete(s, path, a.version);
		return r < 0 ? fail("delete", path, r) : EXIT_OK;
	}
	if (!strcmp(verb, "ls")) {
		_cleanup_strv_free_ char **names = NULL;
		r = store_children(s, path, &names, NULL, NULL);
		if (r < 0)
			return fail("ls", path, r);
		if (a.json) {
			json_t *arr = json_array();
			for (char **n = names; arr && *n; n++)
				json_array_append_new(arr, json_string(*n));
			return print_json(arr) < 0 ? EXIT_TEMP : EXIT_OK;
		}
		for (char **n = names; *n; n++)
			printf("%s\n", *n);
		return EXIT_OK;
	}
	if (!strcmp(verb, "tree")) {
		r = print_tree(s, path, a.data);
		return r < 0 ? fail("tree", path, r) : EXIT_OK;
	}
	if (!strcmp(verb, "wait")) {
		r = wait_for(s, path, a.gone, a.timeout_s);
		if (r == -ETIMEDOUT)
			return EXIT_NO;
		return r < 0 ? fail("wait", path, r) : EXIT_OK;
	}
	if (!strcmp(verb, "watch")) {
		r = watch_print(s, path, a.timeout_s);
		return r < 0 ? fail("watch", path, r) : EXIT_OK;
	}
	return cli_usage_error("store", "unknown verb '%s'", verb);
}
