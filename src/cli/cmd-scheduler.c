/* cmd-scheduler.c: `treadle scheduler simulate|explain|view`. */
#include <getopt.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "../sched/sched-sim.h"
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
};

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

static int cmd_simulate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "generate", no_argument, NULL, 'g' },
		{ "mode", required_argument, NULL, 'm' },
		{ "out", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct sim_opts o = { .mode = SCHED_MODE_COMPAT };
	struct error err = ERROR_INIT;
	bool gen = false;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "gm:o:qr:h", opts, NULL)) >= 0) {
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
		case 'h':
			printf("usage: treadle scheduler simulate [--mode compat|improved] [--out OUTDIR] [--repeat N] DIR\n"
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

int cmd_scheduler(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("scheduler", "expected simulate, explain or view");
	if (strcmp(argv[1], "simulate") == 0)
		return cmd_simulate(argc - 1, argv + 1);
	return cli_usage_error("scheduler", "unknown subcommand '%s'", argv[1]);
}
