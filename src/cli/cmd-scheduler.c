/* cmd-scheduler.c: `treadle scheduler simulate|explain|view`. */
#include <getopt.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../sched/sched-loader.h"
#include "../sched/sched-sim.h"
#include "../store/store.h"
#include "../sched/sched.h"
#include "cli.h"

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *mfree(void *p)
{
	free(p);
	return NULL;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_in(const char *dir, const char *name, const char *data, size_t len, struct error *err)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
	int r;

	if (!p)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	r = write_file_atomic(p, data, len, 0644);
	if (r < 0)
		return error_sys(err, -r, "cannot write %s", p);
	return 0;
}

static int read_in(const char *dir, const char *name, char **ret, struct error *err)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
	int r;

	if (!p)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	r = read_file(p, ret, NULL);
	if (r == -ENOENT)
		return error_set(err, ERR_PERM, ENOENT, "%s: no such file", p);
	if (r < 0)
		return error_sys(err, -r, "cannot read %s", p);
	return 0;
}

struct sim_opts {
	const char *dir, *out;
	enum sched_mode mode;
	bool quiet;
	unsigned repeat; /* extra steady passes, min time reported */
	unsigned events; /* single-app / single-server events to time after the passes */
};

/* Time N one-app and one-server events (each followed by a schedule call). */
static int time_events(struct sched_cell *c, unsigned n, struct error *err)
{
	int64_t d[3] = { 1024, 25, 1024 };
	int part = sched_partition_get(c, "_default");
	int alloc = sched_alloc_get_path(c, part, "_default/bench");
	double t_add = 0, t_rm = 0, t_down = 0, t_up = 0;
	size_t full = 0;
	int srv = sched_server_next(c, -1);

	for (unsigned i = 0; i < n; i++) {
		char name[64];
		struct sched_app_spec spec = { .name = name, .priority = 50, .demand = d, .data_retention_timeout = -1,
					       .global_order = INT64_MAX / 2 + i };
		struct sched_stats st;
		double t;
		int id;

		snprintf(name, sizeof(name), "bench.event#%010u", i);
		id = sched_app_add(c, alloc, &spec);
		if (id < 0)
			return error_sys(err, -id, "event app");
		t = cpu_s();
		sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st);
		t_add += cpu_s() - t;
		full += st.full_pass;
		sched_app_remove(c, id);
		t = cpu_s();
		sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st);
		t_rm += cpu_s() - t;
		full += st.full_pass;
		if (srv >= 0) {
			sched_server_set_state(c, srv, SCHED_DOWN, SCHED_SIM_NOW);
			t = cpu_s();
			sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st);
			t_down += cpu_s() - t;
			full += st.full_pass;
			sched_server_set_state(c, srv, SCHED_UP, SCHED_SIM_NOW);
			t = cpu_s();
			sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st);
			t_up += cpu_s() - t;
			full += st.full_pass;
			srv = sched_server_next(c, srv);
			if (srv < 0)
				srv = sched_server_next(c, -1);
		}
	}
	printf("events\t%u\tadd %.1f us\tremove %.1f us\tserver-down %.1f us\tserver-up %.1f us\tfull passes %zu\n", n,
	       1e6 * t_add / n, 1e6 * t_rm / n, 1e6 * t_down / n, 1e6 * t_up / n, full);
	return 0;
}

static int simulate(const struct sim_opts *o, struct error *err)
{
	static const char *const passes[] = { "init", "steady", "down", "up" };
	_cleanup_free_ char *servers = NULL, *allocs = NULL, *apps = NULL;
	_cleanup_sched_cell_ struct sched_cell *c = NULL;
	const char *names[3] = { "servers.tsv", "allocations.tsv", "apps.tsv" };
	_cleanup_free_ int *down = NULL;
	size_t ndown = 0, nsrv = 0;
	double t0;
	int r;

	if (read_in(o->dir, names[0], &servers, err) < 0 || read_in(o->dir, names[1], &allocs, err) < 0 ||
	    read_in(o->dir, names[2], &apps, err) < 0)
		return -1;
	t0 = mono_s();
	r = sched_sim_load(servers, allocs, apps, names, o->mode, &c, err);
	if (r < 0)
		return error_prefix(err, "%s", o->dir);
	if (!o->quiet)
		printf("load\t%.6f s\n", mono_s() - t0);
	/* the model holds copies of what it needs */
	servers = mfree(servers);
	allocs = mfree(allocs);
	apps = mfree(apps);
	for (int s = sched_server_next(c, -1); s >= 0; s = sched_server_next(c, s))
		nsrv++;
	down = calloc(nsrv + 1, sizeof(int));
	if (!down)
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	/* servers.tsv order is topology order for this format */
	{
		size_t i = 0;

		for (int s = sched_server_next(c, -1); s >= 0; s = sched_server_next(c, s), i++)
			if (i % 100 == 50)
				down[ndown++] = s;
	}
	for (size_t p = 0; p < ELEMENTSOF(passes); p++) {
		struct sched_stats st;
		_cleanup_free_ char *out = NULL, *fname = NULL;
		size_t len;
		double t, tc;

		if (p == 2 || p == 3)
			for (size_t i = 0; i < ndown; i++)
				sched_server_set_state(c, down[i], p == 2 ? SCHED_DOWN : SCHED_UP, SCHED_SIM_NOW);
		t = mono_s();
		tc = cpu_s();
		r = sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st);
		t = mono_s() - t;
		tc = cpu_s() - tc;
		if (r < 0)
			return error_sys(err, -r, "schedule");
		if (!o->quiet)
			printf("%s\t%.6f s\tcpu %.6f s\tplaced %zu\tpending %zu\tchanged %zu\tevictions %zu\n",
			       passes[p], t, tc, st.placed, st.pending, st.changed, st.evictions);
		r = sched_sim_placement(c, &out, &len);
		if (r < 0)
			return error_sys(err, -r, "placement");
		fname = strdup_printf("placement_%s.tsv", passes[p]);
		if (!fname)
			return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
		if (write_in(o->out, fname, out, len, err) < 0)
			return -1;
		if (p == 1 && o->repeat) {
			double best = INFINITY;

			for (unsigned k = 0; k < o->repeat; k++) {
				t = mono_s();
				r = sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, &st);
				t = mono_s() - t;
				if (r < 0)
					return error_sys(err, -r, "schedule");
				best = MIN(best, t);
			}
			printf("steady-min\t%.6f s\t(%u passes)\n", best, o->repeat);
		}
	}
	if (o->events)
		return time_events(c, o->events, err);
	return 0;
}

static int generate(unsigned servers, unsigned aps, uint64_t seed, const char *dir, struct error *err)
{
	_cleanup_free_ char *s = NULL, *a = NULL, *p = NULL;
	int r;

	r = mkdir_p(dir, 0755);
	if (r < 0)
		return error_sys(err, -r, "cannot create %s", dir);
	r = sched_sim_generate(servers, aps, seed, &s, &a, &p);
	if (r < 0)
		return error_sys(err, -r, "generate");
	if (write_in(dir, "servers.tsv", s, strlen(s), err) < 0 ||
	    write_in(dir, "allocations.tsv", a, strlen(a), err) < 0 || write_in(dir, "apps.tsv", p, strlen(p), err) < 0)
		return -1;
	return 0;
}

static int parse_mode(const char *s, enum sched_mode *m)
{
	if (strcmp(s, "compat") == 0 || strcmp(s, "compatible") == 0)
		*m = SCHED_MODE_COMPAT;
	else if (strcmp(s, "improved") == 0)
		*m = SCHED_MODE_IMPROVED;
	else
		return -EINVAL;
	return 0;
}

const struct cli_option scheduler_options[] = {
	CLI_SECTION("simulate"),
	{ "generate", 'g', NULL, "generate the input cell", true },
	{ "mode", 'm', "MODE", "compat (default) or improved", true },
	{ "out", 'o', "FILE", "write the results to FILE", true },
	{ "quiet", 'q', NULL, "print only the summary", true },
	{ "repeat", 'r', "N", "run N times", true },
	{ "events", 'e', "FILE", "replay these events", true },
	{ "help", 'h', NULL, "print this help", true },
	CLI_SECTION("explain, view"),
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	{ "json", 'j', NULL, "print JSON" },
	CLI_OPTIONS_END,
};

static int cmd_simulate(int argc, char **argv)
{
	struct sim_opts o = { .mode = SCHED_MODE_COMPAT };
	struct error err = ERROR_INIT;
	bool gen = false;
	int ch, r;

	optind = 1;
	while ((ch = cli_getopt(argc, argv, cli_section(scheduler_options, "simulate"), false)) >= 0) {
		switch (ch) {
		case 'g':
			gen = true;
			break;
		case 'm':
			if (parse_mode(optarg, &o.mode) < 0)
				return cli_usage_error("scheduler simulate", "unknown mode '%s' (compat or improved)",
						       optarg);
			break;
		case 'o':
			o.out = optarg;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'r':
			if (safe_atoi(optarg, &ch) < 0 || ch < 0)
				return cli_usage_error("scheduler simulate", "--repeat needs a count");
			o.repeat = (unsigned)ch;
			break;
		case 'e':
			if (safe_atoi(optarg, &ch) < 0 || ch < 0)
				return cli_usage_error("scheduler simulate", "--events needs a count");
			o.events = (unsigned)ch;
			break;
		case 'h':
			printf("usage: treadle scheduler simulate [--mode compat|improved] [--out OUTDIR] [--repeat N] [--events N] DIR\n"
			       "       treadle scheduler simulate --generate SERVERS APPS_PER_SERVER SEED DIR\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (gen) {
		uint64_t s, a, seed;

		if (argc - optind != 4)
			return cli_usage_error("scheduler simulate", "--generate needs SERVERS APPS_PER_SERVER SEED DIR");
		if (safe_atou64(argv[optind], &s) < 0 || s == 0 || s > 10000000 ||
		    safe_atou64(argv[optind + 1], &a) < 0 || a == 0 || a > 1000 ||
		    safe_atou64(argv[optind + 2], &seed) < 0)
			return cli_usage_error("scheduler simulate", "SERVERS, APPS_PER_SERVER and SEED are numbers");
		r = generate((unsigned)s, (unsigned)a, seed, argv[optind + 3], &err);
		if (r < 0)
			goto fail;
		o.dir = argv[optind + 3];
	} else {
		if (argc - optind != 1)
			return cli_usage_error("scheduler simulate", "expected one DIR");
		o.dir = argv[optind];
	}
	if (!o.out)
		o.out = o.dir;
	r = simulate(&o, &err);
	if (r < 0)
		goto fail;
	return EXIT_OK;
fail:
	r = error_report(&err);
	error_clear(&err);
	return r;
}

/* ---- explain / view: the cell as the store holds it ------------------------------- */

struct store_opts {
	const char *root, *store;
	bool json;
	int argc;
	char **argv; /* positional arguments */
};

static int parse_store_opts(const char *cmd, int argc, char **argv, struct store_opts *o)
{
	int ch;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((ch = cli_getopt(argc, argv, cli_section(scheduler_options, "explain, view"), false)) >= 0) {
		switch (ch) {
		case CLI_OPT_ROOT:
			o->root = optarg;
			break;
		case CLI_OPT_STORE:
			o->store = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		default:
			return cli_usage_error(cmd, "unknown option");
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	return 0;
}

static int load_cell(const struct store_opts *o, struct sched_cell **ret, struct error *err)
{
	_cleanup_(store_closep) struct store *s = NULL;
	_cleanup_free_ char *warnings = NULL;
	int r;

	r = cli_store_open(o->root, o->store, &s, err);
	if (r < 0)
		return r;
	r = sched_load_store(s, now_realtime(), ret, &warnings, err);
	if (r < 0)
		return error_prefix(err, "loading the cell");
	if (warnings && *warnings && !o->json)
		fprintf(stderr, "%s", warnings);
	return 0;
}

static int cmd_explain(int argc, char **argv)
{
	_cleanup_sched_cell_ struct sched_cell *c = NULL;
	_cleanup_free_ char *why = NULL;
	struct error err = ERROR_INIT;
	struct store_opts o;
	int r, app;

	r = parse_store_opts("scheduler explain", argc, argv, &o);
	if (r)
		return r;
	if (o.argc != 1)
		return cli_usage_error("scheduler explain", "expected one INSTANCE");
	if (load_cell(&o, &c, &err) < 0)
		goto fail;
	app = sched_app_find(c, o.argv[0]);
	if (app < 0) {
		error_set(&err, ERR_PERM, ENOENT, "%s: no such scheduled instance", o.argv[0]);
		goto fail;
	}
	r = sched_explain(c, app, now_realtime(), &why);
	if (r < 0) {
		error_sys(&err, -r, "explain");
		goto fail;
	}
	if (o.json) {
		struct sched_app_info ai;
		json_t *j;
		char *out;

		sched_app_info(c, app, &ai);
		j = json_pack("{s:s, s:s?, s:s}", "instance", ai.name,
			      "server", ai.server >= 0 ? sched_node_name(c, ai.server) : NULL, "why", why);
		out = j ? json_dumps(j, JSON_COMPACT) : NULL;
		if (out)
			printf("%s\n", out);
		free(out);
		json_decref(j);
	} else {
		printf("%s\n", why);
	}
	return EXIT_OK;
fail:
	r = error_report(&err);
	error_clear(&err);
	return r;
}

static double pct(int64_t used, int64_t cap)
{
	return cap > 0 ? 100.0 * (double)used / (double)cap : 0;
}

static void emit(json_t *arr, bool as_json, const char *line)
{
	if (!as_json)
		printf("%s\n", line);
	(void)arr;
}

/* The end of a view: with as_json, the rows collected in arr as one compact
 * JSON line.  Takes arr. */
static int print_views(json_t *arr, bool as_json)
{
	_cleanup_json_ json_t *a = arr;
	_cleanup_free_ char *out = as_json ? json_dumps(a, JSON_COMPACT) : NULL;

	if (out)
		printf("%s\n", out);
	return 0;
}

static int view_servers(struct sched_cell *c, bool as_json)
{
	json_t *arr = json_array();

	if (!as_json)
		printf("%-24s %-12s %-7s %10s %10s %8s %8s %10s %10s %6s %5s\n", "SERVER", "PARTITION", "STATE",
		       "MEM", "MEM_FREE", "CPU", "CPU_FREE", "DISK", "DISK_FREE", "UTIL%", "APPS");
	for (int s = sched_server_next(c, -1); s >= 0; s = sched_server_next(c, s)) {
		struct sched_node_info ni;
		static const char *const st[] = { "up", "down", "frozen" };
		double util = 0;
		char line[512];

		sched_node_info(c, s, &ni);
		for (int d = 0; d < 3; d++)
			util = MAX(util, pct(ni.capacity[d] - ni.free[d], ni.capacity[d]));
		if (as_json) {
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:s, s:[I,I,I], s:[I,I,I], s:f, s:I}", "name", ni.name,
					       "partition", ni.partition, "state", st[ni.state], "capacity",
					       (json_int_t)ni.capacity[0], (json_int_t)ni.capacity[1],
					       (json_int_t)ni.capacity[2], "free", (json_int_t)ni.free[0],
					       (json_int_t)ni.free[1], (json_int_t)ni.free[2], "utilization", util,
					       "apps", (json_int_t)ni.napps));
			continue;
		}
		snprintf(line, sizeof(line), "%-24s %-12s %-7s %10lld %10lld %8lld %8lld %10lld %10lld %6.1f %5zu",
			 ni.name, ni.partition, st[ni.state], (long long)ni.capacity[0], (long long)ni.free[0],
			 (long long)ni.capacity[1], (long long)ni.free[1], (long long)ni.capacity[2],
			 (long long)ni.free[2], util, ni.napps);
		emit(arr, as_json, line);
	}
	return print_views(arr, as_json);
}

static int view_allocs(struct sched_cell *c, bool as_json)
{
	json_t *arr = json_array();

	if (!as_json)
		printf("%-12s %-32s %5s %5s %12s %12s %12s %8s %6s\n", "PARTITION", "ALLOCATION", "RANK", "ADJ",
		       "RESERVED_MEM", "USED_MEM", "USED_CPU", "UTIL%", "APPS");
	for (int a = 0; a < sched_alloc_count(c); a++) {
		struct sched_alloc_info ai;
		double util = 0;

		sched_alloc_info(c, a, &ai);
		for (int d = 0; d < 3; d++)
			if (ai.reserved[d] > 0)
				util = MAX(util, 100.0 * (double)ai.used[d] / ai.reserved[d]);
		if (as_json) {
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:I, s:I, s:[f,f,f], s:[I,I,I], s:f, s:I, s:I}", "partition",
					       sched_partition_label(c, ai.partition), "name", ai.name, "rank",
					       (json_int_t)ai.rank, "rank_adjustment", (json_int_t)ai.rank_adjustment,
					       "reserved", ai.reserved[0], ai.reserved[1], ai.reserved[2], "used",
					       (json_int_t)ai.used[0], (json_int_t)ai.used[1], (json_int_t)ai.used[2],
					       "utilization", util, "apps", (json_int_t)ai.napps, "placed",
					       (json_int_t)ai.placed));
			continue;
		}
		printf("%-12s %-32s %5lld %5lld %12.0f %12lld %12lld %8.1f %3zu/%-3zu\n",
		       sched_partition_label(c, ai.partition), *ai.name ? ai.name : "(root)", (long long)ai.rank,
		       (long long)ai.rank_adjustment, ai.reserved[0], (long long)ai.used[0], (long long)ai.used[1], util,
		       ai.placed, ai.napps);
	}
	return print_views(arr, as_json);
}

static int view_apps(struct sched_cell *c, bool as_json)
{
	json_t *arr = json_array();

	if (!as_json)
		printf("%-12s %5s %-40s %4s %8s %10s %-24s\n", "PARTITION", "POS", "INSTANCE", "PRIO", "RANK",
		       "UTIL", "SERVER");
	for (int p = 0; p < sched_partition_count(c); p++) {
		_cleanup_free_ struct sched_queue_entry *q = NULL;
		size_t n = 0;

		if (sched_partition_queue(c, p, &q, &n) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			struct sched_app_info ai;
			char rank[32];

			sched_app_info(c, q[i].app, &ai);
			if (q[i].rank == SCHED_UNPLACED_RANK)
				snprintf(rank, sizeof(rank), "unplaced");
			else
				snprintf(rank, sizeof(rank), "%lld", (long long)q[i].rank);
			if (as_json) {
				json_array_append_new(
					arr, json_pack("{s:s, s:I, s:s, s:i, s:s, s:f, s:s?, s:i}", "partition",
						       sched_partition_label(c, p), "position", (json_int_t)i, "instance",
						       ai.name, "priority", ai.priority, "rank", rank, "utilization",
						       isinf(q[i].util_before) ? 1e308 : q[i].util_before, "server",
						       ai.server >= 0 ? sched_node_name(c, ai.server) : NULL, "identity",
						       ai.identity));
				continue;
			}
			printf("%-12s %5zu %-40s %4d %8s %10.4f %-24s\n", sched_partition_label(c, p), i, ai.name,
			       ai.priority, rank, q[i].util_before,
			       ai.server >= 0 ? sched_node_name(c, ai.server) : "-");
		}
	}
	return print_views(arr, as_json);
}

static int cmd_view(int argc, char **argv)
{
	_cleanup_sched_cell_ struct sched_cell *c = NULL;
	struct error err = ERROR_INIT;
	struct store_opts o;
	int r;

	r = parse_store_opts("scheduler view", argc, argv, &o);
	if (r)
		return r;
	if (o.argc != 1 || (strcmp(o.argv[0], "servers") && strcmp(o.argv[0], "allocs") && strcmp(o.argv[0], "apps")))
		return cli_usage_error("scheduler view", "expected servers, allocs or apps");
	if (load_cell(&o, &c, &err) < 0) {
		r = error_report(&err);
		error_clear(&err);
		return r;
	}
	if (!strcmp(o.argv[0], "servers"))
		r = view_servers(c, o.json);
	else if (!strcmp(o.argv[0], "allocs"))
		r = view_allocs(c, o.json);
	else
		r = view_apps(c, o.json);
	return r < 0 ? EXIT_TEMP : EXIT_OK;
}

int cmd_scheduler(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("scheduler", "expected simulate, explain or view");
	if (strcmp(argv[1], "simulate") == 0)
		return cmd_simulate(argc - 1, argv + 1);
	if (strcmp(argv[1], "explain") == 0)
		return cmd_explain(argc - 1, argv + 1);
	if (strcmp(argv[1], "view") == 0)
		return cmd_view(argc - 1, argv + 1);
	return cli_usage_error("scheduler", "unknown subcommand '%s'", argv[1]);
}
