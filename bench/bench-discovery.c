/* bench-discovery: the node's endpoint state scan (src/node/agent-discovery.c) over N network
 * namespaces, each standing for a container: a child process per namespace (unshare(CLONE_NEWNET))
 * holding what an app would: two listening TCP sockets, one bound UDP socket, a TCP socket on
 * loopback.  The scan of one container is what the agent does for it every period: enter its netns,
 * make a NETLINK_SOCK_DIAG socket, come back, dump the TCP LISTEN sockets (and, for a container with a
 * udp endpoint, the UDP ones), apply the readiness rule per endpoint; measured with and without a udp
 * endpoint.  Prints "discovery scan ..." lines (bench/discovery.sh builds and runs
 * it); not a test.  usage: bench-discovery [NETNS] [ROUNDS] */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* the agent's file itself: its scan is static (docs/ARCHITECTURE.md, tests include .c files) */
#include "../src/node/agent-discovery.c"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int sock(int type, uint32_t addr, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(addr) };
	int fd = socket(AF_INET, type, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (type == SOCK_STREAM && listen(fd, 8) < 0))
		_exit(1);
	return fd;
}

/* A "container": its own netns with an app's sockets; lives until killed (or the parent dies). */
static pid_t container(int ready_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET) < 0)
		_exit(1);
	(void)sock(SOCK_STREAM, INADDR_ANY, 8000);    /* endpoint http: listens */
	(void)sock(SOCK_STREAM, INADDR_ANY, 8443);    /* another listening endpoint */
	(void)sock(SOCK_DGRAM, INADDR_ANY, 5353);     /* a udp endpoint */
	(void)sock(SOCK_STREAM, INADDR_LOOPBACK, 9000); /* loopback only: counts as down */
	if (write(ready_fd, "x", 1) != 1)
		_exit(1);
	pause();
	_exit(0);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200, rounds = argc > 2 ? atoi(argv[2]) : 50;
	struct disc_ep eps[] = { { "http", false, 8000, 40001 }, { "https", false, 8443, 40002 },
				 { "dns", true, 5353, 40003 }, { "admin", false, 9000, 40004 },
				 { "idle", false, 7000, 40005 } };
	int self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), p[2], ups = 0;
	pid_t *pids = calloc((size_t)n, sizeof(pid_t));
	char dir[] = "/tmp/treadle-bench-disc.XXXXXX", c;
	double t0, c0, wall, cpu;

	if (n <= 0 || rounds <= 0 || !pids || self_ns < 0 || pipe(p) < 0 || !mkdtemp(dir))
		return 1;
	for (int i = 0; i < n; i++) {
		pids[i] = container(p[1]);
		if (pids[i] < 0 || read(p[0], &c, 1) != 1) {
			fprintf(stderr, "bench-discovery: cannot make netns %d\n", i);
			return 1;
		}
	}
	printf("discovery scan: %d containers (netns, 4 sockets each: 2 tcp listening, 1 udp, 1 tcp on loopback), %d rounds\n",
	       n, rounds);
	/* with a udp endpoint (tcp and udp dumps), then tcp endpoints only (the common case) */
	for (int with_udp = 1; with_udp >= 0; with_udp--) {
		int want = with_udp ? 3 : 2;

		ups = 0;
		t0 = now_ms();
		c0 = cpu_ms();
		for (int r = 0; r < rounds; r++)
			for (int i = 0; i < n; i++) {
				struct ports tcp = { 0 }, udp = { 0 };

				if (scan_netns(pids[i], self_ns, with_udp, &tcp, &udp) < 0) {
					fprintf(stderr, "bench-discovery: scan of %d failed\n", (int)pids[i]);
					rmdir(dir);
					return 1;
				}
				for (size_t k = 0; k < ELEMENTSOF(eps); k++)
					if (with_udp || !eps[k].udp)
						ups += endpoint_up(dir, eps[k].name,
								   ports_has(eps[k].udp ? &udp : &tcp, eps[k].port));
				ports_free(&tcp);
				ports_free(&udp);
			}
		wall = now_ms() - t0;
		cpu = cpu_ms() - c0;
		if (ups != rounds * n * want) {
			fprintf(stderr, "bench-discovery: %d endpoints up, expected %d\n", ups, rounds * n * want);
			rmdir(dir);
			return 1;
		}
		printf("discovery scan (%s): CPU per scan of all %d: %.2f ms (%.1f us per container); wall %.2f ms; "
		       "at one scan per %d s: %.2f%% of a CPU\n",
		       with_udp ? "5 endpoints, one udp" : "4 tcp endpoints", n, cpu / rounds, cpu * 1e3 / rounds / n,
		       wall / rounds, DISCOVERY_SCAN_MS / 1000, cpu / rounds / DISCOVERY_SCAN_MS * 100);
	}
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	while (wait(NULL) > 0)
		;
	rmdir(dir);
	return 0;
}
