/* bench-trace.c: trace publish / compact / read figures against a store URL.
 * usage: bench-trace URL [N]   (built and run by bench/trace.sh) */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../src/basic/util.h"
#include "../src/store/store.h"
#include "../src/trace/trace.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct error err = ERROR_INIT;
	struct store *s;
	int64_t n = 5000;
	int apps = 50;
	double t0, t, base = 1e9;
	struct trace_event *evs = NULL;
	size_t ne = 0;
	char **hist = NULL;

	if (argc < 2 || (argc > 2 && safe_atoi64(argv[2], &n) < 0)) {
		fprintf(stderr, "usage: bench-trace URL [N]\n");
		return 2;
	}
	if (store_open(argv[1], NULL, &s, &err) < 0)
		return error_report(&err);
	t0 = now_s();
	for (int64_t i = 0; i < n; i++) {
		char inst[64], data[64];
		struct trace_event ev = { .timestamp = base + (double)i * 0.01, .instanceid = inst,
					  .type = i % 2 ? TRACE_SERVICE_EXITED : TRACE_SERVICE_RUNNING, .data = data };

		snprintf(inst, sizeof(inst), "bench.app#%010d", (int)(i % apps));
		snprintf(data, sizeof(data), i % 2 ? "0123456789abc.web.%d.0.0" : "0123456789abc.web.%d", (int)(i / 1000));
		if (trace_publish(s, &ev, "bench-host") < 0) {
			fprintf(stderr, "publish failed\n");
			return 111;
		}
	}
	t = now_s() - t0;
	printf("publish: %lld events in %.2f s = %.0f events/s\n", (long long)n, t, (double)n / t);

	t0 = now_s();
	if (trace_read(s, "bench.app#0000000007", &evs, &ne) < 0)
		return 111;
	printf("read (live): %zu events of one instance in %.1f ms\n", ne, (now_s() - t0) * 1000);
	trace_events_free(evs, ne);

	t0 = now_s();
	if (trace_compact(s, base + 1e6, 300, &err) < 0)
		return error_report(&err);
	printf("compact (prune + archive): %.2f s\n", now_s() - t0);
	if (store_children(s, "/trace.history", &hist, NULL, NULL) == 0) {
		for (char **h = hist; *h; h++) {
			char p[256];
			struct store_stat st;

			snprintf(p, sizeof(p), "/trace.history/%s", *h);
			if (store_exists(s, p, &st, NULL, NULL) == 0)
				printf("  snapshot %s: %d bytes\n", *h, st.data_length);
		}
		strv_free(hist);
	}
	t0 = now_s();
	if (trace_read(s, "bench.app#0000000007", &evs, &ne) < 0)
		return 111;
	printf("read (history): %zu events of one instance in %.1f ms\n", ne, (now_s() - t0) * 1000);
	trace_events_free(evs, ne);
	store_close(s);
	return 0;
}
