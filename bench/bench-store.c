/* bench-store.c: store throughput and watch latency against any store URL.
 * usage: bench-store URL [N] [BIG]   (built and run by bench/store.sh)
 * N nodes for the single-writer figures; BIG creates (default 100000) for the
 * group-commit figures: concurrent writers (threads of one process, each
 * with its own handle; processes) and batches (store_multi of 1000).  With
 * BIG > 0 the nodes made are left in the store (use a scratch store). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
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

struct writer {
	const char *url, *base;
	int id, n, err;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	struct error err = ERROR_INIT;
	struct store *s;
	char path[160];

	if (store_open(w->url, NULL, &s, &err) < 0) {
		w->err = 1;
		error_clear(&err);
		return NULL;
	}
	for (int i = 0; i < w->n && !w->err; i++) {
		snprintf(path, sizeof(path), "%s/w%02d-%07d", w->base, w->id, i);
		if (store_create(s, path, "{\"state\": \"up\", \"since\": 1700000000}", 36, 0, NULL) < 0)
			w->err = 1;
	}
	store_close(s);
	return NULL;
}

/* total creates under a new node base/<what> by k writers: threads of this
 * process, or processes (fork, each opens its own handle).  Seconds, < 0 on error. */
static double concurrent(const char *url, struct store *s, const char *base, const char *what, int k, int total,
			 bool procs)
{
	char dir[128];
	struct writer w[64];
	pthread_t th[64];
	pid_t pid[64];
	double t0;
	int bad = 0;

	snprintf(dir, sizeof(dir), "%s/%s", base, what);
	if (k > 64 || store_create(s, dir, NULL, 0, 0, NULL) < 0)
		return -1;
	t0 = now_s();
	for (int i = 0; i < k; i++) {
		w[i] = (struct writer){ .url = url, .base = dir, .id = i, .n = total / k + (i < total % k) };
		if (procs) {
			pid[i] = fork();
			if (pid[i] == 0) {
				writer_run(&w[i]);
				_exit(w[i].err);
			}
			bad |= pid[i] < 0;
		} else if (pthread_create(&th[i], NULL, writer_run, &w[i]) != 0)
			return -1;
	}
	for (int i = 0; i < k; i++) {
		if (procs) {
			int st;
			bad |= pid[i] > 0 && (waitpid(pid[i], &st, 0) != pid[i] || !WIFEXITED(st) || WEXITSTATUS(st));
		} else {
			pthread_join(th[i], NULL);
			bad |= w[i].err;
		}
	}
	return bad ? -1 : now_s() - t0;
}

/* total creates under base/<what> in store_multi batches of b.  Seconds. */
static double batched(struct store *s, const char *base, const char *what, int total, int b)
{
	char dir[128];
	struct store_op *ops = calloc((size_t)b, sizeof(*ops));
	char **paths = calloc((size_t)b, sizeof(*paths));
	double t0;

	snprintf(dir, sizeof(dir), "%s/%s", base, what);
	if (!ops || !paths || store_create(s, dir, NULL, 0, 0, NULL) < 0)
		return -1;
	for (int j = 0; j < b; j++)
		paths[j] = malloc(160);
	t0 = now_s();
	for (int i = 0; i < total; i += b) {
		int k = total - i < b ? total - i : b;
		for (int j = 0; j < k; j++) {
			snprintf(paths[j], 160, "%s/b%07d", dir, i + j);
			ops[j] = (struct store_op){ .type = STORE_OP_CREATE, .path = paths[j],
						    .data = "{\"state\": \"up\", \"since\": 1700000000}", .len = 36 };
		}
		if (store_multi(s, ops, (size_t)k, NULL) < 0)
			return -1;
	}
	t0 = now_s() - t0;
	for (int j = 0; j < b; j++)
		free(paths[j]);
	free(paths);
	free(ops);
	return t0;
}

int main(int argc, char **argv)
{
	struct error err = ERROR_INIT;
	struct store *s, *w;
	int n = argc > 2 ? atoi(argv[2]) : 1000, big = argc > 3 ? atoi(argv[3]) : 100000;
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
	fflush(stdout);

	/* group commit: concurrent writers and batches */
	if (store_create(s, base, NULL, 0, 0, NULL) < 0)
		return 111;
	{
		int small = n * 4;
		const int ks[] = { 4, 16 };
		for (size_t i = 0; i < ELEMENTSOF(ks); i++) {
			char what[32];
			snprintf(what, sizeof(what), "thr%d", ks[i]);
			t = concurrent(argv[1], s, base, what, ks[i], small, false);
			if (t < 0)
				return 111;
			printf("%s create, %d threads: %.0f ops/s (%d nodes)\n", label, ks[i], small / t, small);
			if (strcmp(label, "store-fs")) /* no fork() next to the ZooKeeper client's threads */
				continue;
			snprintf(what, sizeof(what), "proc%d", ks[i]);
			t = concurrent(argv[1], s, base, what, ks[i], small, true);
			if (t < 0)
				return 111;
			printf("%s create, %d processes: %.0f ops/s (%d nodes)\n", label, ks[i], small / t, small);
			fflush(stdout);
		}
		t = batched(s, base, "multi100", small, 100);
		if (t < 0)
			return 111;
		printf("%s create, multi of 100: %.0f ops/s (%d nodes)\n", label, small / t, small);
		fflush(stdout);
		if (big > 0) {
			t = batched(s, base, "big-multi", big, 1000);
			if (t < 0)
				return 111;
			printf("%s %d creates, multi of 1000: %.2f s (%.0f ops/s)\n", label, big, t, big / t);
			fflush(stdout);
			t = concurrent(argv[1], s, base, "big-thr", 32, big, false);
			if (t < 0)
				return 111;
			printf("%s %d creates, 32 threads: %.2f s (%.0f ops/s)\n", label, big, t, big / t);
			fflush(stdout);
		}
	}
	/* what the big runs made is left: deleting it node by node would take longer than
	 * making it (bench/store.sh removes its temporary store and ZooKeeper) */
	if (big <= 0 && store_delete_r(s, base) < 0)
		return 111;
	store_close(w);
	store_close(s);
	return 0;
}
