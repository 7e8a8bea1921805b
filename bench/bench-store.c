/* bench-store.c: store throughput and watch latency against any store URL.
 * usage: bench-store URL [N]   (built and run by bench/store.sh) */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../src/basic/util.h"
#include "../src/store/store.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_watch(struct store *s, enum store_event ev, const char *path, void *userdata)
{
	*(double *)userdata = now_s();
}

int main(int argc, char **argv)
{
	struct error err = ERROR_INIT;
	struct store *s, *w;
	int n = argc > 2 ? atoi(argv[2]) : 1000;
	char base[64], path[128];
	double t0, t, lat_sum = 0, lat_max = 0;
	const char *label;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-store URL [N]\n");
		return 2;
	}
	label = strncmp(argv[1], "zk://", 5) ? "store-fs" : "store-zk";
	if (store_open(argv[1], NULL, &s, &err) < 0 || store_open(argv[1], NULL, &w, &err) < 0)
		return error_report(&err);
	snprintf(base, sizeof(base), "/bench-%d", (int)getpid());
	if (store_create(s, base, NULL, 0, 0, NULL) < 0)
		return 111;

	t0 = now_s();
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/n%06d", base, i);
		if (store_create(s, path, "{\"state\": \"up\", \"since\": 1700000000}", 36, 0, NULL) < 0)
			return 111;
	}
	t = now_s() - t0;
	printf("%s create: %.0f ops/s (%d nodes, %.2f ms/op)\n", label, n / t, n, t * 1000 / n);

	t0 = now_s();
	for (int i = 0; i < n; i++) {
		char *d = NULL;
		snprintf(path, sizeof(path), "%s/n%06d", base, i);
		if (store_get(s, path, &d, NULL, NULL, NULL, NULL) < 0)
			return 111;
		free(d);
	}
	t = now_s() - t0;
	printf("%s get: %.0f ops/s\n", label, n / t);

	t0 = now_s();
	for (int i = 0; i < n; i++) {
		struct store_stat st;
		snprintf(path, sizeof(path), "%s/n%06d", base, i);
		if (store_get(s, path, NULL, NULL, &st, NULL, NULL) < 0)
			return 111;
	}
	t = now_s() - t0;
	printf("%s get+stat: %.0f ops/s\n", label, n / t);

	t0 = now_s();
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/n%06d", base, i);
		if (store_set(s, path, "{\"state\": \"down\"}", 17, -1, NULL) < 0)
			return 111;
	}
	t = now_s() - t0;
	printf("%s set: %.0f ops/s\n", label, n / t);

	t0 = now_s();
	for (int i = 0; i < 20; i++) {
		char **l = NULL;
		if (store_children(s, base, &l, NULL, NULL) < 0)
			return 111;
		strv_free(l);
	}
	t = now_s() - t0;
	printf("%s children: %.0f lists/s of %d names\n", label, 20 / t, n);

	/* watch latency: set on one handle, data watch on another */
	int rounds = n < 200 ? n : 200;
	for (int i = 0; i < rounds; i++) {
		double fired = 0, t1;
		snprintf(path, sizeof(path), "%s/n%06d", base, i);
		if (store_exists(w, path, NULL, on_watch, &fired) < 0)
			return 111;
		t1 = now_s();
		if (store_set(s, path, "x", 1, -1, NULL) < 0)
			return 111;
		while (fired == 0)
			if (store_wait(w, 5000) < 0)
				return 111;
		lat_sum += fired - t1;
		if (fired - t1 > lat_max)
			lat_max = fired - t1;
	}
	printf("%s watch latency: %.3f ms mean, %.3f ms max (set -> callback on another handle, %d rounds)\n", label,
	       lat_sum * 1000 / rounds, lat_max * 1000, rounds);

	t0 = now_s();
	if (store_delete_r(s, base) < 0)
		return 111;
	t = now_s() - t0;
	printf("%s delete_r: %.0f nodes/s\n", label, n / t);
	store_close(w);
	store_close(s);
	return 0;
}
