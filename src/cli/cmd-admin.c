/* cmd-admin.c: treadle admin OBJECT VERB ... (Treadmill's admin CLI over the
 * cell store; every change goes through src/admin/ with its master event). */
#include <getopt.h>
#include <string.h>

#include <jansson.h>

#include "../admin/admin.h"
#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../store/store.h"
#include "../node/postmortem.h"
#include "cli.h"

enum {
	OPT_PARENT = 0x200, OPT_PARTITION, OPT_MEMORY, OPT_CPU, OPT_DISK, OPT_TRAITS, OPT_LEVEL, OPT_RANK,
	OPT_RANK_ADJ, OPT_MAXUTIL, OPT_COUNT, OPT_REASON, OPT_APPS, OPT_REBOOT, OPT_JSON,
};

struct admin_args {
	const char *parent, *partition, *memory, *cpu, *disk, *traits, *level, *rank, *rank_adj, *maxutil, *count,
		*reason, *apps, *reboot;
	bool json;
};

static char **split_list(const char *v)
{
	char **l = strv_new();
	const char *p = v;

	while (l && p && *p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char *t = strndup(p, n);

		if (!t || (n && strv_push(&l, t) < 0) || (!n && (free(t), 0))) {
			strv_free(l);
			return NULL;
		}
		p = e ? e + 1 : NULL;
	}
	return l;
}

static int want_args(int n, int have, const char *what)
{
	if (have != n)
		return cli_usage_error("admin", "%s: expected %d argument%s, got %d", what, n, n == 1 ? "" : "s",
				       have);
	return 0;
}

static int print_list(struct store *s, const char *what, bool json)
{
	struct error err = ERROR_INIT;
	_cleanup_json_ json_t *j = NULL;

	if (admin_list(s, what, &j, &err) < 0)
		return error_report(&err);
	if (!json && json_is_object(j) && strcmp(what, "blackout") != 0) {
		const char *k;
		json_t *v;

		json_object_foreach(j, k, v) {
			_cleanup_free_ char *d = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

			printf("%-30s %s\n", k, d ? d : "");
		}
	} else if (!json && json_is_array(j) && strcmp(what, "cell") == 0) {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v)
			printf("%s\n", json_string_value(v));
	} else {
		_cleanup_free_ char *t = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

		if (t)
			printf("%s\n", t);
	}
	return EXIT_OK;
}

static int parse_int(const char *field, const char *v, int64_t def, int64_t *ret, struct error *err)
{
	if (!v) {
		*ret = def;
		return 0;
	}
	if (safe_atoi64(v, ret) < 0)
		return error_set(err, ERR_PERM, 0, "%s '%s': not an integer", field, v);
	return 0;
}

/* Runs one admin verb; returns the exit code. */
static int run(struct store *s, int n, char **a, const struct admin_args *o)
{
	struct error err = ERROR_INIT;
	_cleanup_strv_free_ char **traits = o->traits ? split_list(o->traits) : NULL;
	_cleanup_strv_free_ char **apps = o->apps ? split_list(o->apps) : NULL;
	const char *obj = a[0], *verb = n > 1 ? a[1] : "list";
	int r = 0;

	if ((o->traits && !traits) || (o->apps && !apps))
		return EXIT_TEMP;
	n -= 2;
	a += 2;
	if (strcmp(verb, "list") == 0) {
		static const struct { const char *obj, *what; } map[] = {
			{ "server", "servers" }, { "bucket", "buckets" }, { "cell", "cell" },
			{ "partition", "partitions" }, { "alloc", "allocations" },
			{ "identity-group", "identity-groups" }, { "blackout", "blackout" },
		};
		for (size_t i = 0; i < ELEMENTSOF(map); i++)
			if (strcmp(obj, map[i].obj) == 0)
				return print_list(s, map[i].what, o->json);
		return cli_usage_error("admin", "unknown object '%s'", obj);
	}
	if (strcmp(obj, "server") == 0) {
		if (n != 1)
			return want_args(1, n, "server");
		if (strcmp(verb, "add") == 0) {
			struct admin_server srv = { .name = a[0], .parent = o->parent, .partition = o->partition,
						    .memory = o->memory, .cpu = o->cpu, .disk = o->disk,
						    .traits = traits };
			r = admin_server_add(s, &srv, &err);
		} else if (strcmp(verb, "delete") == 0)
			r = admin_server_delete(s, a[0], &err);
		else if (strcmp(verb, "up") == 0)
			r = admin_server_state(s, a[0], ADMIN_STATE_UP, apps, &err);
		else if (strcmp(verb, "down") == 0)
			r = admin_server_state(s, a[0], ADMIN_STATE_DOWN, apps, &err);
		else if (strcmp(verb, "freeze") == 0)
			r = admin_server_state(s, a[0], ADMIN_STATE_FROZEN, apps, &err);
		else
			return cli_usage_error("admin", "server: unknown verb '%s'", verb);
	} else if (strcmp(obj, "bucket") == 0) {
		int64_t t;

		if (n != 1)
			return want_args(1, n, "bucket");
		if (strcmp(verb, "add") == 0)
			r = parse_int("traits", o->traits, -1, &t, &err) < 0
				    ? -1
				    : admin_bucket_add(s, a[0], o->parent, o->level, t, &err);
		else if (strcmp(verb, "delete") == 0)
			r = admin_bucket_delete(s, a[0], &err);
		else
			return cli_usage_error("admin", "bucket: unknown verb '%s'", verb);
	} else if (strcmp(obj, "cell") == 0) {
		if (n != 1)
			return want_args(1, n, "cell");
		if (strcmp(verb, "insert") == 0)
			r = admin_cell_insert(s, a[0], &err);
		else if (strcmp(verb, "remove") == 0)
			r = admin_cell_remove(s, a[0], &err);
		else
			return cli_usage_error("admin", "cell: unknown verb '%s'", verb);
	} else if (strcmp(obj, "partition") == 0) {
		if (n != 1)
			return want_args(1, n, "partition");
		if (strcmp(verb, "add") == 0)
			r = admin_partition_add(s, a[0], o->memory, o->cpu, o->disk, o->reboot, &err);
		else if (strcmp(verb, "delete") == 0)
			r = admin_partition_delete(s, a[0], &err);
		else
			return cli_usage_error("admin", "partition: unknown verb '%s'", verb);
	} else if (strcmp(obj, "alloc") == 0) {
		if (strcmp(verb, "set") == 0) {
			struct admin_alloc al = { .name = n > 0 ? a[0] : NULL, .partition = o->partition,
						  .memory = o->memory, .cpu = o->cpu, .disk = o->disk,
						  .traits = traits, .max_utilization = -1 };

			if (n != 1)
				return want_args(1, n, "alloc set");
			if (parse_int("rank", o->rank, -1, &al.rank, &err) < 0 ||
			    parse_int("rank-adjustment", o->rank_adj, 0, &al.rank_adjustment, &err) < 0)
				r = -1;
			else if (o->maxutil && safe_atod(o->maxutil, &al.max_utilization) < 0)
				r = error_set(&err, ERR_PERM, 0, "max-utilization '%s': not a number", o->maxutil);
			else
				r = admin_alloc_set(s, &al, &err);
		} else if (strcmp(verb, "delete") == 0) {
			if (n != 1)
				return want_args(1, n, "alloc delete");
			r = admin_alloc_delete(s, a[0], &err);
		} else if (strcmp(verb, "assign") == 0) {
			int64_t prio;

			if (n != 3)
				return want_args(3, n, "alloc assign ALLOC PATTERN PRIORITY");
			r = parse_int("priority", a[2], 0, &prio, &err) < 0
				    ? -1
				    : admin_alloc_assign(s, a[0], a[1], prio, &err);
		} else if (strcmp(verb, "unassign") == 0) {
			if (n != 2)
				return want_args(2, n, "alloc unassign ALLOC PATTERN");
			r = admin_alloc_unassign(s, a[0], a[1], &err);
		} else
			return cli_usage_error("admin", "alloc: unknown verb '%s'", verb);
	} else if (strcmp(obj, "identity-group") == 0) {
		int64_t count;

		if (n != 1)
			return want_args(1, n, "identity-group");
		if (strcmp(verb, "set") == 0) {
			if (!o->count)
				return cli_usage_error("admin", "identity-group set: --count N is required");
			r = parse_int("count", o->count, 0, &count, &err) < 0
				    ? -1
				    : admin_identity_group_set(s, a[0], count, &err);
		} else if (strcmp(verb, "delete") == 0)
			r = admin_identity_group_delete(s, a[0], &err);
		else
			return cli_usage_error("admin", "identity-group: unknown verb '%s'", verb);
	} else if (strcmp(obj, "blackout") == 0) {
		bool on;

		if (strcmp(verb, "set") == 0)
			on = true;
		else if (strcmp(verb, "clear") == 0)
			on = false;
		else
			return cli_usage_error("admin", "blackout: unknown verb '%s' (set, clear, list)", verb);
		if (n != 2)
			return want_args(2, n, "blackout set|clear server|app NAME");
		if (strcmp(a[0], "server") == 0)
			r = admin_blackout_server(s, a[1], on, o->reason, &err);
		else if (strcmp(a[0], "app") == 0)
			r = admin_blackout_app(s, a[1], on, o->reason, &err);
		else
			return cli_usage_error("admin", "blackout: '%s' is neither 'server' nor 'app'", a[0]);
	} else
		return cli_usage_error("admin", "unknown object '%s'", obj);
	return r < 0 ? error_report(&err) : EXIT_OK;
}

const struct cli_option admin_options[] = {
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	{ "parent", OPT_PARENT, "B", "server, bucket add: the parent bucket" },
	{ "partition", OPT_PARTITION, "P", "server add, alloc set: the partition" },
	{ "memory", OPT_MEMORY, "SIZE", "capacity or reservation: memory" },
	{ "cpu", OPT_CPU, "PCT", "capacity or reservation: cpu" },
	{ "disk", OPT_DISK, "SIZE", "capacity or reservation: disk" },
	{ "traits", OPT_TRAITS, "a,b", "server, bucket add: traits" },
	{ "level", OPT_LEVEL, "L", "bucket add: its level" },
	{ "rank", OPT_RANK, "N", "alloc set: rank" },
	{ "rank-adjustment", OPT_RANK_ADJ, "N", "alloc set: rank adjustment" },
	{ "max-utilization", OPT_MAXUTIL, "F", "alloc set: max utilization" },
	{ "count", OPT_COUNT, "N", "identity-group set: members" },
	{ "reason", OPT_REASON, "R", "blackout set: the reason" },
	{ "apps", OPT_APPS, "a,b", "alloc assign: the apps (patterns)" },
	{ "reboot-schedule", OPT_REBOOT, "JSON", "partition add: {weekday: [h,m,s]}" },
	{ "json", OPT_JSON, NULL, "list: print JSON" },
	CLI_OPTIONS_END,
};

/* `admin postmortem`: a bundle of this server's node now (R/cell.json names
 * its hostname and cgroup root; docs/NODE.md "Watchdogs and postmortem"). */
static int postmortem(const char *root_opt)
{
	const char *root = cli_root(root_opt);
	_cleanup_free_ char *cfg = strdup_printf("%s/cell.json", root), *text = NULL, *node = NULL, *logd = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ json_t *j = NULL;
	struct node_postmortem_options po = { .reason = "on demand (treadle admin postmortem)" };
	struct error err = ERROR_INIT;

	node = strdup_printf("%s/node", root);
	logd = strdup_printf("%s/log", root);
	if (!cfg || !node || !logd)
		return EXIT_TEMP;
	if (read_file(cfg, &text, NULL) < 0 || !(j = json_loads(text, 0, NULL)) ||
	    !json_is_string(json_object_get(j, "hostname"))) {
		fprintf(stderr, "treadle: admin postmortem: %s: no cell server here (missing or unreadable)\n", cfg);
		return EXIT_PERM;
	}
	po.root = node;
	po.log_dir = logd;
	po.hostname = json_string_value(json_object_get(j, "hostname"));
	po.cgroup_root = json_string_value(json_object_get(j, "cgroup_root"));
	if (node_postmortem_write(&po, &path, &err) < 0)
		return error_report(&err);
	printf("%s\n", path);
	return EXIT_OK;
}

int cmd_admin(int argc, char **argv)
{
	struct admin_args o = {};
	const char *root = NULL, *store_url = NULL;
	_cleanup_store_ struct store *s = NULL;
	struct error err = ERROR_INIT;
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, admin_options, false)) >= 0) {
		switch (c) {
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		case OPT_PARENT: o.parent = optarg; break;
		case OPT_PARTITION: o.partition = optarg; break;
		case OPT_MEMORY: o.memory = optarg; break;
		case OPT_CPU: o.cpu = optarg; break;
		case OPT_DISK: o.disk = optarg; break;
		case OPT_TRAITS: o.traits = optarg; break;
		case OPT_LEVEL: o.level = optarg; break;
		case OPT_RANK: o.rank = optarg; break;
		case OPT_RANK_ADJ: o.rank_adj = optarg; break;
		case OPT_MAXUTIL: o.maxutil = optarg; break;
		case OPT_COUNT: o.count = optarg; break;
		case OPT_REASON: o.reason = optarg; break;
		case OPT_APPS: o.apps = optarg; break;
		case OPT_REBOOT: o.reboot = optarg; break;
		case OPT_JSON: o.json = true; break;
		default: return cli_usage_error("admin", "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("admin", "missing object (server, bucket, cell, partition, alloc, "
						"identity-group, blackout, postmortem)");
	if (strcmp(argv[optind], "postmortem") == 0)
		return optind + 1 == argc ? postmortem(root)
					  : cli_usage_error("admin", "postmortem: unexpected argument '%s'", argv[optind + 1]);
	if (cli_store_open(root, store_url, &s, &err) < 0)
		return error_report(&err);
	return run(s, argc - optind, argv + optind, &o);
}
