/* bench-master.c: the leader master's scheduler loop (src/master/msched.c)
 * on the embedded store: N apps in /scheduled on S servers (racks of 20),
 * the first pass (load + place + write every /placement node), a no-change
 * pass, and the cost of single events.  Prints "name: figure" lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../src/basic/error.h"
#include "../src/basic/util.h"
#include "../src/cellns/cellns.h"
#include "../src/master/master.h"
#include "../src/master/msched.h"
#include "../src/store/store.h"

static double t0;
static void tic(void) { t0 = now_realtime(); }
static double toc(void) { return now_realtime() - t0; }

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

static void pass(struct msched *m, const char *label, double now)
{
	struct error err = ERROR_INIT;
	struct msched_stats st;

	tic();
	if (msched_pass(m, now, &st, &err) < 0) {
		fprintf(stderr, "pass: %s\n", err.msg);
		exit(1);
	}
	printf("%s: %.3f s (%zu apps, %zu placed, %zu pending, %zu changed%s)\n", label, toc(), st.apps, st.placed,
	       st.pending, st.changed, st.reloaded ? ", model loaded" : "");
}

int main(int argc, char **argv)
{
	struct error err = ERROR_INIT;
	struct store *s;
	struct msched *m;
	struct msched_options o = { .hostname = "bench", .down_grace = 0, .no_compact = true };
	int napps = argc > 2 ? atoi(argv[2]) : 100000, nservers = argc > 3 ? atoi(argv[3]) : 1000;
	char path[256], data[256];
	struct rusage ru;
	double now = now_realtime();

	if (argc < 2 || store_open(argv[1], NULL, &s, &err) < 0 || cellns_create_top(s, &err) < 0 ||
	    cellns_create_shards(s, &(unsigned){ 0 }, CELLNS_SHARDS, &err) < 0) {
		fprintf(stderr, "usage: bench-master DIR [APPS] [SERVERS]: %s\n", err.msg);
		return 1;
	}
	tic();
	store_create_p(s, "/cell/pod:p1");
	store_create(s, "/buckets/pod:p1", "{\"parent\":null}", 15, 0, NULL);
	for (int r = 0; r < (nservers + 19) / 20; r++) {
		snprintf(path, sizeof(path), "/buckets/rack:%d", r);
		store_create(s, path, "{\"parent\":\"pod:p1\"}", 19, 0, NULL);
	}
	for (int i = 0; i < nservers; i++) {
		snprintf(path, sizeof(path), "/servers/s%05d", i);
		snprintf(data, sizeof(data),
			 "{\"parent\":\"rack:%d\",\"memory\":\"64G\",\"cpu\":\"3200%%\",\"disk\":\"1000G\"}", i / 20);
		store_create(s, path, data, strlen(data), 0, NULL);
		snprintf(path, sizeof(path), "/server.presence/s%05d", i);
		store_create(s, path, "{}", 2, STORE_EPHEMERAL, NULL);
	}
	for (int i = 0; i < napps; i++) {
		snprintf(path, sizeof(path), "/scheduled/proid%d.app%d#%010d", i % 50, i % 500, i);
		snprintf(data, sizeof(data),
			 "{\"memory\":\"%dM\",\"cpu\":\"%d%%\",\"disk\":\"%dM\",\"affinity_limits\":{\"server\":4}}",
			 64 + (i % 7) * 32, 5 + i % 20, 100 + (i % 5) * 100);
		store_create(s, path, data, strlen(data), 0, NULL);
	}
	printf("store setup (%d apps, %d servers, embedded store): %.1f s\n", napps, nservers, toc());
	printf("rss before the master: %ld KB\n", rss_kb());

	msched_new(s, &(struct msched_options){ .hostname = "bench", .down_grace = 0, .no_compact = true }, &m);
	(void)o;
	pass(m, "first pass (load, restore, place, write placements)", now);
	printf("rss after the first pass: %ld KB\n", rss_kb());
	pass(m, "no-change pass", now + 1);

	/* one new app */
	snprintf(path, sizeof(path), "/scheduled/proidx.new#%010d", napps + 1);
	store_create(s, path, "{\"memory\":\"100M\"}", 17, 0, NULL);
	while (store_wait(s, 0) > 0)
		;
	pass(m, "event: one app created", now + 2);
	store_delete(s, path, -1);
	while (store_wait(s, 0) > 0)
		;
	pass(m, "event: one app deleted", now + 3);
	store_delete(s, "/server.presence/s00007", -1);
	while (store_wait(s, 0) > 0)
		;
	pass(m, "event: one server down (its apps move)", now + 4);
	store_create(s, "/events/001-apps-", "[]", 2, STORE_SEQUENTIAL, NULL);
	while (store_wait(s, 0) > 0)
		;
	pass(m, "event: /events apps (empty)", now + 5);
	store_create(s, "/events/000-cell-", "null", 4, STORE_SEQUENTIAL, NULL);
	while (store_wait(s, 0) > 0)
		;
	pass(m, "event: reload (cell event: full model reload + restore)", now + 6);
	getrusage(RUSAGE_SELF, &ru);
	printf("leader master peak RSS (whole process, store included): %ld KB\n", ru.ru_maxrss);
	msched_free(m);
	store_close(s);
	return 0;
}
