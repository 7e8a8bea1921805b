/* bench-master.c: the leader master's scheduler loop (src/master/msched.c)
 * on a store (embedded directory or zk://): N apps in /scheduled on S
 * servers (racks of 20), the first pass (load + place + write every
 * /placement node), a no-change pass, a new leader's first pass over the
 * placed cell, the cost of single events (median of several), and with
 * RATE > 0 a sustained submission load (submitters in child processes, the
 * master loop debounced as in master.c) with submit -> scheduled latency.
 *
 *   bench-master STORE APPS SERVERS [RATE SECONDS SUBMITTERS]
 *
 * Prints "name: figure" lines.  CPU figures are the process's CPU time
 * (CLOCK_PROCESS_CPUTIME_ID: the master and the in-process embedded store,
 * or the ZooKeeper client's threads), which the machine's load barely moves;
 * wall figures include fsyncs and waiting for the CPU. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../src/basic/error.h"
#include "../src/basic/util.h"
#include "../src/cellns/cellns.h"
#include "../src/master/master-internal.h"
#include "../src/master/master.h"
#include "../src/master/msched.h"
#include "../src/sched/sched.h"
#include "../src/store/store.h"

#define REPEAT 15
#define DEBOUNCE_S 0.020 /* master.c's MASTER_DEBOUNCE_MS */

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static bool woken;

/* Until the model's watches fired (ZooKeeper delivers them a round trip
 * later; the embedded store at once), 5 s at most, then whatever is queued. */
static void drain(struct store *s)
{
	double end = now_realtime() + 5;

	while (!woken && now_realtime() < end)
		store_wait(s, 20);
	while (store_wait(s, 0) > 0)
		;
	woken = false;
}

/* Let what is queued arrive (the pass's own writes may fire watches), then forget it. */
static void quiet(struct store *s)
{
	while (store_wait(s, 50) > 0)
		;
	woken = false;
}

struct fig {
	double wall, cpu;
	struct msched_stats st;
};

static struct fig pass(struct msched *m, double now)
{
	struct error err = ERROR_INIT;
	struct fig f;
	double w = now_realtime(), c = cpu_now();

	if (msched_pass(m, now, &f.st, &err) < 0) {
		fprintf(stderr, "pass: %s\n", err.msg);
		exit(1);
	}
	f.wall = now_realtime() - w;
	f.cpu = cpu_now() - c;
	return f;
}

static void print_pass(const char *label, struct fig f)
{
	printf("%s: %.3f s cpu, %.3f s wall (%zu apps, %zu placed, %zu pending, %zu changed%s)\n", label, f.cpu, f.wall,
	       f.st.apps, f.st.placed, f.st.pending, f.st.changed, f.st.reloaded ? ", model loaded" : "");
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return v[n / 2];
}

/* Creates in atomic multis of 256 (the setup is not what is measured). */
struct setup {
	struct store *s;
	struct store_op ops[256];
	char *own[512];
	size_t n;
};

static void setup_flush(struct setup *b)
{
	size_t bad = 0;
	int r = b->n ? store_multi(b->s, b->ops, b->n, &bad) : 0;

	if (r < 0) {
		fprintf(stderr, "setup: multi failed at %s: %s\n", b->ops[bad].path, store_strerror(r));
		exit(1);
	}
	for (size_t i = 0; i < 2 * b->n; i++)
		free(b->own[i]);
	b->n = 0;
}

static void setup_create(struct setup *b, char *path, const char *data, int flags)
{
	char *d = strdup(data);

	b->own[2 * b->n] = path;
	b->own[2 * b->n + 1] = d;
	b->ops[b->n++] = (struct store_op){ .type = STORE_OP_CREATE, .path = path, .data = d, .len = strlen(d),
					    .flags = flags, .version = -1 };
	if (b->n == 256)
		setup_flush(b);
}

static const char *app_data(int i)
{
	static char data[256];

	snprintf(data, sizeof(data),
		 "{\"memory\":\"%dM\",\"cpu\":\"%d%%\",\"disk\":\"%dM\",\"affinity_limits\":{\"server\":4}}",
		 64 + (i % 7) * 32, 5 + i % 20, 100 + (i % 5) * 100);
	return data;
}

static void build_cell(struct store *s, int napps, int nservers)
{
	struct error err = ERROR_INIT;
	struct setup b = { .s = s };
	char data[256];
	double t = now_realtime();

	if (cellns_create_top(s, &err) < 0 || cellns_create_shards(s, &(unsigned){ 0 }, CELLNS_SHARDS, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(1);
	}
	store_create_p(s, "/cell/pod:p1");
	store_create(s, "/buckets/pod:p1", "{\"parent\":null}", 15, 0, NULL);
	for (int r = 0; r < (nservers + 19) / 20; r++)
		setup_create(&b, strdup_printf("/buckets/rack:%d", r), "{\"parent\":\"pod:p1\"}", 0);
	setup_flush(&b);
	for (int i = 0; i < nservers; i++) {
		snprintf(data, sizeof(data),
			 "{\"parent\":\"rack:%d\",\"memory\":\"64G\",\"cpu\":\"3200%%\",\"disk\":\"1000G\"}", i / 20);
		setup_create(&b, strdup_printf("/servers/s%05d", i), data, 0);
	}
	setup_flush(&b);
	for (int i = 0; i < nservers; i++)
		setup_create(&b, strdup_printf("/server.presence/s%05d", i), "{}", STORE_EPHEMERAL);
	setup_flush(&b);
	for (int i = 0; i < napps; i++)
		setup_create(&b, strdup_printf("/scheduled/proid%d.app%d#%010d", i % 50, i % 500, i), app_data(i), 0);
	setup_flush(&b);
	printf("store setup (%d apps, %d servers, in multis of 256): %.1f s wall\n", napps, nservers, now_realtime() - t);
}

/* ---- sustained submissions ---------------------------------------------------- */

struct shared {
	volatile int published;	/* submissions created so far */
	volatile int stop;
	double submit[];	/* realtime of each create */
};

static void submitter(const char *url, struct shared *sh, int k, int nsub, double rate, double secs, int base)
{
	struct error err = ERROR_INIT;
	struct store *s;
	double t0 = now_realtime(), per = nsub / rate;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
	if (store_open(url, NULL, &s, &err) < 0)
		_exit(1);
	for (int i = k; i < (int)(rate * secs); i += nsub) {
		double due = t0 + (double)(i / nsub) * per, now = now_realtime();
		char path[128];

		if (due - t0 >= secs || sh->stop)
			break;
		if (due > now)
			usleep((useconds_t)((due - now) * 1e6));
		snprintf(path, sizeof(path), "/scheduled/proidt.load%d#%010d", i % 100, base + i);
		sh->submit[i] = now_realtime();
		if (store_create(s, path, app_data(i), strlen(app_data(i)), 0, NULL) < 0)
			sh->submit[i] = -1;
		__atomic_fetch_add(&sh->published, 1, __ATOMIC_RELEASE);
	}
	store_close(s);
	_exit(0);
}

static void load_run(const char *url, struct store *s, struct msched *m, double rate, double secs, int nsub, int base)
{
	size_t cap = (size_t)(rate * secs) + 16;
	struct shared *sh = mmap(NULL, sizeof(*sh) + cap * sizeof(double), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double *lat = calloc(cap, sizeof(double)), cpu0, w0, last_pass = 0, maxpass = 0;
	pid_t pids[64];
	size_t nlat = 0, passes = 0, lost = 0;
	int next = 0;
	bool wake = false;

	if (sh == MAP_FAILED || !lat)
		exit(1);
	m->o.wake = &wake;
	while (store_wait(s, 0) > 0)
		;
	for (int k = 0; k < nsub; k++) {
		pids[k] = fork();
		if (pids[k] == 0)
			submitter(url, sh, k, nsub, rate, secs, base);
	}
	cpu0 = cpu_now();
	w0 = now_realtime();
	for (;;) {
		double t = now_realtime();
		bool done = t - w0 > secs + 5 || (t - w0 > secs && next >= (int)(rate * secs) - nsub);

		if (done)
			break;
		store_wait(s, 10);
		if (!wake || t - last_pass < DEBOUNCE_S)
			continue;
		wake = false;
		{
			struct fig f = pass(m, now_realtime());
			double end = now_realtime();
			int pub = __atomic_load_n(&sh->published, __ATOMIC_ACQUIRE);

			passes++;
			maxpass = MAX(maxpass, f.wall);
			last_pass = end;
			/* submissions are numbered in order across submitters; those published are in the store */
			for (; next < (int)cap && next < pub + nsub; next++) {
				char name[128];
				struct sched_app_info info;
				int a;

				if (sh->submit[next] == 0)
					break; /* not yet created */
				snprintf(name, sizeof(name), "proidt.load%d#%010d", next % 100, base + next);
				a = sched_app_find(m->cell, name);
				if (sh->submit[next] < 0) {
					lost++;
					continue;
				}
				if (a < 0 || sched_app_info(m->cell, a, &info) < 0 || info.server < 0)
					break; /* created after the listing: next pass */
				lat[nlat++] = end - sh->submit[next];
			}
		}
	}
	sh->stop = 1;
	for (int k = 0; k < nsub; k++)
		waitpid(pids[k], NULL, 0);
	{
		double cpu = cpu_now() - cpu0, wall = now_realtime() - w0;
		int pub = sh->published;

		qsort(lat, nlat, sizeof(double), cmp_d);
		printf("load %.0f/s for %.0f s (%d submitters): %d submitted (%.0f/s achieved), %zu scheduled, "
		       "%zu failed creates; %zu passes (longest %.3f s wall); master cpu %.1f s of %.1f s wall (%.0f%%)\n",
		       rate, secs, nsub, pub, pub / secs, nlat, lost, passes, maxpass, cpu, wall, 100 * cpu / wall);
		if (nlat)
			printf("load %.0f/s: submit -> scheduled p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", rate,
			       1000 * lat[nlat / 2], 1000 * lat[(size_t)((double)nlat * 0.99)], 1000 * lat[nlat - 1]);
	}
	m->o.wake = &woken;
	munmap(sh, sizeof(*sh) + cap * sizeof(double));
	free(lat);
}

int main(int argc, char **argv)
{
	struct error err = ERROR_INIT;
	struct store *s, *s2;
	struct msched *m, *m2;
	struct msched_options o = { .hostname = "bench", .down_grace = 0, .no_compact = true, .wake = &woken };
	int napps = argc > 2 ? atoi(argv[2]) : 100000, nservers = argc > 3 ? atoi(argv[3]) : 1000;
	double rate = argc > 4 ? atof(argv[4]) : 0, secs = argc > 5 ? atof(argv[5]) : 60;
	int nsub = argc > 6 ? atoi(argv[6]) : 4;
	double c1[REPEAT], c2[REPEAT], c3[REPEAT], w1[REPEAT], w2[REPEAT], w3[REPEAT];
	char path[256];
	struct rusage ru;
	double now = now_realtime();
	struct fig f;

	if (argc < 2 || store_open(argv[1], NULL, &s, &err) < 0) {
		fprintf(stderr, "usage: bench-master STORE [APPS] [SERVERS] [RATE SECONDS SUBMITTERS]: %s\n", err.msg);
		return 1;
	}
	printf("== %d apps, %d servers\n", napps, nservers);
	build_cell(s, napps, nservers);
	printf("rss before the master: %ld KB\n", rss_kb());

	msched_new(s, &o, &m);
	print_pass("first pass (load, restore, place, write placements)", pass(m, now));
	printf("rss after the first pass: %ld KB\n", rss_kb());
	print_pass("no-change pass", pass(m, now + 1));

	for (int i = 0; i < REPEAT; i++) {
		snprintf(path, sizeof(path), "/scheduled/proidx.new#%010d", napps + 1 + i);
		quiet(s);
		store_create(s, path, "{\"memory\":\"100M\"}", 17, 0, NULL);
		drain(s);
		f = pass(m, now + 2);
		c1[i] = f.cpu, w1[i] = f.wall;
		quiet(s);
		store_delete(s, path, -1);
		drain(s);
		f = pass(m, now + 3);
		c2[i] = f.cpu, w2[i] = f.wall;
	}
	printf("event: one app created: %.2f ms cpu, %.2f ms wall (median of %d)\n", 1000 * median(c1, REPEAT),
	       1000 * median(w1, REPEAT), REPEAT);
	printf("event: one app deleted: %.2f ms cpu, %.2f ms wall (median of %d)\n", 1000 * median(c2, REPEAT),
	       1000 * median(w2, REPEAT), REPEAT);
	for (int i = 0; i < REPEAT; i++) {
		snprintf(path, sizeof(path), "/server.presence/s%05d", 7 + i);
		quiet(s);
		store_delete(s, path, -1);
		drain(s);
		f = pass(m, now + 4 + i);
		c3[i] = f.cpu, w3[i] = f.wall;
		if (i == 0)
			print_pass("  (one server down: first of them)", f);
	}
	printf("event: one server down (its ~%d apps move): %.2f ms cpu, %.2f ms wall (median of %d)\n",
	       napps / nservers, 1000 * median(c3, REPEAT), 1000 * median(w3, REPEAT), REPEAT);
	quiet(s);
	store_create(s, "/events/001-apps-", "[]", 2, STORE_SEQUENTIAL, NULL);
	drain(s);
	print_pass("event: /events apps (empty)", pass(m, now + 30));
	quiet(s);
	store_create(s, "/events/000-cell-", "null", 4, STORE_SEQUENTIAL, NULL);
	drain(s);
	print_pass("event: reload (cell event: full model reload + restore)", pass(m, now + 31));
	getrusage(RUSAGE_SELF, &ru);
	printf("leader master peak RSS (whole process, store included): %ld KB\n", ru.ru_maxrss);

	/* a new leader (its own store session) on the placed cell: nothing to move; the old
	 * model stays until the end (its watches point at it) */
	if (store_open(argv[1], NULL, &s2, &err) < 0) {
		fprintf(stderr, "second session: %s\n", err.msg);
		return 1;
	}
	msched_new(s2, &o, &m2);
	print_pass("new leader's first pass (placed cell, nothing to move)", pass(m2, now + 32));
	getrusage(RUSAGE_SELF, &ru);
	printf("peak RSS with both models (whole process): %ld KB\n", ru.ru_maxrss);
	if (rate > 0)
		load_run(argv[1], s2, m2, rate, secs, nsub, napps + 100);
	store_close(s2);
	msched_free(m2);
	store_close(s);
	msched_free(m);
	return 0;
}
