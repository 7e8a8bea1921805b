/* bench-net: costs of the net module on the real kernel, in a private netns.
 * Prints "net <what>: <figure>" lines (bench/net.sh builds and runs it). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../src/basic/fileio.h"
#include "../src/basic/util.h"
#include "../src/net/net.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	printf("net %s: p50 %.3f ms, p99 %.3f ms (n=%d)\n", what, v[n / 2], v[(n * 99) / 100], n);
}

#define EPS 3
struct box {
	struct net_container c;
	struct net_endpoint ep[EPS];
	char owner[32];
};

static void make_box(struct box *b, int i)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->owner, sizeof(b->owner), "proid.app#%d", i);
	b->c.owner = b->owner;
	b->c.vip.s_addr = htonl(0xc0a80000u + 1 + i);	/* 192.168.0.1 + i */
	b->c.env = i % 2 ? NET_ENV_NONPROD : NET_ENV_PROD;
	for (int e = 0; e < EPS; e++)
		b->ep[e] = (struct net_endpoint){ .proto = e == 2 ? IPPROTO_UDP : IPPROTO_TCP, .port = 8000 + e,
						  .real_port = (uint16_t)(32768 + i * EPS + e) };
	b->c.endpoints = b->ep;
	b->c.n_endpoints = EPS;
}

static void die(struct error *err)
{
	error_report(err);
	exit(1);
}

int main(int argc, char **argv)
{
	struct error err = ERROR_INIT;
	struct net_config cfg;
	struct in_addr ext;
	int iters = argc > 1 ? atoi(argv[1]) : 200;
	static struct box boxes[1001];
	static struct net_container cs[1001];
	double *t = calloc(iters > 100 ? iters : 100, sizeof(double)), *t2 = calloc(iters > 100 ? iters : 100, sizeof(double));
	const int sizes[] = { 0, 1, 100, 1000 };

	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare (needs root)");
		return 77;
	}
	(void)system("ip link set lo up");
	net_parse_ip("10.77.0.1", &ext);
	net_config_init(&cfg, "tlbench0", "treadle_bench", ext);
	for (int i = 0; i < 1001; i++) {
		make_box(&boxes[i], i);
		cs[i] = boxes[i].c;
	}

	/* one container's rules, with N containers' rules loaded */
	for (size_t s = 0; s < ELEMENTSOF(sizes); s++) {
		int n = sizes[s];

		if (net_fw_rebuild(&cfg, cs, n, false, &err) < 0)
			die(&err);
		for (int i = 0; i < iters; i++) {
			double a = now_ms();

			if (net_fw_add(&cfg, &boxes[1000].c, &err) < 0)
				die(&err);
			double b = now_ms();
			if (net_fw_remove(&cfg, &boxes[1000].c, &err) < 0)
				die(&err);
			t[i] = b - a;
			t2[i] = now_ms() - b;
		}
		char what[64];
		snprintf(what, sizeof(what), "fw add 1 container (%d loaded)", n);
		report(what, t, iters);
		snprintf(what, sizeof(what), "fw remove 1 container (%d loaded)", n);
		report(what, t2, iters);
	}
	/* full rebuild: 1,000 containers x 3 endpoints */
	for (int i = 0; i < 20; i++) {
		double a = now_ms();

		if (net_fw_rebuild(&cfg, cs, 1000, false, &err) < 0)
			die(&err);
		t[i] = now_ms() - a;
	}
	report("fw rebuild 1000 containers x 3 endpoints", t, 20);

	/* VIP allocation with ~1000 records present */
	char dir[] = "/tmp/treadle-bench-net.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	cfg.mtu = 1500;
	for (int i = 0; i < 1000; i++) {
		char o[32];
		struct in_addr a;

		snprintf(o, sizeof(o), "o%d", i);
		double b = now_ms();
		if (net_vip_allocate(&cfg, dir, o, &a, &err) < 0)
			die(&err);
		if (i >= 900)
			t[i - 900] = now_ms() - b;
	}
	report("vip allocate (900-1000 records)", t, 100);
	for (int i = 0; i < 100; i++) {
		struct in_addr a = { htonl(0xc0a80000u + 1 + i) };
		double b = now_ms();

		if (net_vip_release(dir, a, NULL, &err) < 0)
			die(&err);
		t[i] = now_ms() - b;
	}
	report("vip release (conntrack flush + unlink)", t, 100);
	rm_rf(dir);

	/* veth into a fresh netns, with addresses and routes; then teardown */
	if (net_bridge_setup(&cfg, true, &err) < 0)
		die(&err);
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int nsfd[100];
	double tns[100];
	for (int i = 0; i < 100; i++) {
		double a = now_ms();

		if (unshare(CLONE_NEWNET) < 0)
			return 1;
		nsfd[i] = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (setns(self, CLONE_NEWNET) < 0)
			return 1;
		tns[i] = now_ms() - a;
	}
	report("netns create (for comparison)", tns, 100);
	/* veth setup and teardown of one container with 0 / 100 / 1,000 containers'
	 * veths already in the bridge (each in its own netns, as in a node) */
	static const int levels[] = { 0, 100, 1000 };
	int loaded = 0;
	static int loaded_fd[1000];
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2048) {
		rl.rlim_cur = rl.rlim_max < 2048 ? rl.rlim_max : 2048;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t l = 0; l < ELEMENTSOF(levels); l++) {
		char what[96];
		double td[50];
		for (; loaded < levels[l]; loaded++) {
			char name[16];
			int fd;

			if (unshare(CLONE_NEWNET) < 0)
				return 1;
			fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
			if (setns(self, CLONE_NEWNET) < 0)
				return 1;
			snprintf(name, sizeof(name), "tll%d", loaded);
			if (net_container_setup(&cfg, NET_PRIVATE, name, fd, boxes[loaded].c.vip, &err) < 0)
				die(&err);
			loaded_fd[loaded] = fd; /* kept: a netns without a reference goes, with its veth */
		}
		for (int i = 0; i < 50; i++) {
			char name[16];
			double a = now_ms();

			snprintf(name, sizeof(name), "tlb%d", i);
			if (net_container_setup(&cfg, NET_PRIVATE, name, nsfd[i], boxes[1000].c.vip, &err) < 0)
				die(&err);
			t[i] = now_ms() - a;
			a = now_ms();
			if (net_container_teardown(&cfg, name, boxes[1000].c.vip, &err) < 0)
				die(&err);
			td[i] = now_ms() - a;
		}
		snprintf(what, sizeof(what), "veth + addresses + routes per container (%d loaded)", levels[l]);
		report(what, t, 50);
		snprintf(what, sizeof(what), "veth teardown per container (%d loaded)", levels[l]);
		report(what, td, 50);
	}
	/* the loaded veths go with their netns */
	for (int i = 0; i < 100; i++)
		close(nsfd[i]);
	for (int i = 0; i < loaded; i++)
		close(loaded_fd[i]);
	net_fw_teardown(&cfg, &err);
	net_bridge_remove(&cfg, &err);
	return 0;
}
