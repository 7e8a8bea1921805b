/* test-net: the net module.  Pure parts (parsing, the nft text) and, as root,
 * the real kernel in a private network namespace (unshared at start, so it dies
 * with the process and nothing leaks): VIP records under concurrency and
 * SIGKILL, conntrack flushing, bridge/veth/addresses/routes by netlink, nft
 * tables.  Traffic through the DNAT/SNAT rules is tested by
 * tests/integration/48-net-kernel.sh, which drives this binary:
 *   test-net drive <command> ...   (see drive_usage below) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/net/net.h"
/* the file-internal firewall, neighbour and conntrack calls are tested as production runs them */
#include "../../src/net/net-fw.c"
#include "../../src/net/net-link.c"
#include "../../src/net/net-vip.c"
#include "../../src/net/net-vring.c"

static bool in_netns;	/* the process runs in a private netns (root) */

static struct in_addr ip(const char *s)
{
	struct in_addr a = { 0 };

	assert_int_equal(net_parse_ip(s, &a), 0);
	return a;
}

static void cfg_test(struct net_config *cfg, const char *range, const char *gw)
{
	net_config_init(cfg, "tlt0", "treadle_unit", ip("10.77.0.1"));
	assert_int_equal(net_parse_cidr(range, &cfg->network, &cfg->prefixlen), 0);
	cfg->gateway = ip(gw);
}

/* ---- pure ---- */

static void test_parse(void **state)
{
	struct in_addr a;
	unsigned p;

	assert_int_equal(net_parse_cidr("192.168.0.0/16", &a, &p), 0);
	assert_int_equal(p, 16);
	assert_int_equal(net_parse_cidr("192.168.0.1/16", &a, &p), -EINVAL);	/* host bits */
	assert_int_equal(net_parse_cidr("192.168.0.0/33", &a, &p), -EINVAL);
	assert_int_equal(net_parse_cidr("192.168.0.0", &a, &p), -EINVAL);
	assert_int_equal(net_parse_cidr("192.168.0.0/+8", &a, &p), -EINVAL);
	assert_int_equal(net_parse_ip("1.2.3", &a), -EINVAL);

	enum net_env e;
	assert_int_equal(net_env_parse("uat", &e), 0);
	assert_int_equal(e, NET_ENV_PROD);
	assert_int_equal(net_env_parse("qa", &e), 0);
	assert_int_equal(e, NET_ENV_NONPROD);
	assert_int_equal(net_env_parse("staging", &e), -EINVAL);
}

/* Per node root: valid, stable names that differ between roots. */
static void test_node_names(void **state)
{
	char b1[16], t1[32], b2[16], t2[32];
	struct net_config cfg;
	struct error err = ERROR_INIT;

	(void)state;
	net_node_names("/tmp/a/node", b1, t1);
	net_node_names("/tmp/b/node", b2, t2);
	assert_int_equal(strlen(b1), 10);
	assert_memory_equal(b1, "tl", 2);
	assert_memory_equal(t1, "treadle_", 8);
	assert_string_equal(b1 + 2, t1 + 8);
	assert_string_not_equal(b1, b2);
	net_node_names("/tmp/a/node", b2, t2);
	assert_string_equal(b1, b2);
	net_config_init(&cfg, b1, t1, (struct in_addr){ htonl(0x0a000001) });
	assert_int_equal(net_config_check(&cfg, &err), 0);
}

static void test_config_check(void **state)
{
	struct error err = ERROR_INIT;
	struct net_config cfg;

	net_config_init(&cfg, "tl0", "treadle_x", ip("10.0.0.1"));
	assert_int_equal(net_config_check(&cfg, &err), 0);
	assert_int_equal(ntohl(cfg.gateway.s_addr), 0xc0a8fefe);	/* 192.168.254.254 */
	cfg.gateway = ip("10.0.0.254");
	assert_true(net_config_check(&cfg, &err) < 0);
	assert_non_null(strstr(err.msg, "gateway"));
	assert_int_equal(err.code, ERR_PERM);
	error_clear(&err);
	net_config_init(&cfg, "a-very-long-bridge-name", "treadle_x", ip("10.0.0.1"));
	assert_true(net_config_check(&cfg, &err) < 0);
	assert_non_null(strstr(err.msg, "bridge"));
	error_clear(&err);
	net_config_init(&cfg, "tl0", "treadle x; flush ruleset", ip("10.0.0.1"));
	assert_true(net_config_check(&cfg, &err) < 0);
	assert_non_null(strstr(err.msg, "table"));
	error_clear(&err);
}

static const struct net_endpoint EPS[] = {
	{ .proto = IPPROTO_TCP, .port = 8000, .real_port = 41234 },
	{ .proto = IPPROTO_UDP, .port = 53, .real_port = 41235, .infra = true },
	{ .proto = IPPROTO_TCP, .port = 41236, .real_port = 41236, .ephemeral = true },
};

static void test_fw_text(void **state)
{
	struct net_config cfg;
	struct in_addr pt = ip("10.77.0.9");
	struct net_container c = { .owner = "app#1", .vip = ip("192.168.0.2"), .env = NET_ENV_NONPROD,
				   .endpoints = EPS, .n_endpoints = 3, .passthrough = &pt, .n_passthrough = 1 };
	_cleanup_free_ char *add = NULL, *del = NULL, *all = NULL;

	net_config_init(&cfg, "tl0", "treadle_t", ip("10.77.0.1"));
	assert_int_equal(net_fw_container_cmds(&cfg, &c, true, &add), 0);
	assert_string_equal(add,
			    "add element ip treadle_t nonprod { 192.168.0.2 }\n"
			    "add element ip treadle_t ep_dnat { 6 . 41234 : 192.168.0.2 . 8000, 17 . 41235 : 192.168.0.2 . 53, "
			    "6 . 41236 : 192.168.0.2 . 41236 }\n"
			    "add element ip treadle_t ep_snat { 192.168.0.2 . 6 . 8000 : 10.77.0.1 . 41234, "
			    "192.168.0.2 . 17 . 53 : 10.77.0.1 . 41235 }\n"
			    "add element ip treadle_t passthrough { 10.77.0.9 : 192.168.0.2 }\n"
			    "add element ip treadle_t passthrough_src { 10.77.0.9 }\n"
			    "add element ip treadle_t infra { 192.168.0.2 . 17 . 53, 192.168.0.2 . 6 . 41236 }\n");
	assert_int_equal(net_fw_container_cmds(&cfg, &c, false, &del), 0);
	assert_non_null(strstr(del, "delete element ip treadle_t ep_dnat { 6 . 41234, 17 . 41235, 6 . 41236 }\n"));
	assert_true(startswith(del, add));	/* remove = add + delete: idempotent */
	assert_int_equal(net_fw_ruleset(&cfg, &c, 1, true, &all), 0);
	assert_true(startswith(all, "add table ip treadle_t\ndelete table ip treadle_t\ntable ip treadle_t {\n"));
	assert_non_null(strstr(all, "elements = { \"tl0\" }"));
	assert_non_null(strstr(all, "snat ip to 10.77.0.1:40960-49151"));
	assert_non_null(strstr(all, "ip daddr { 10.77.0.1, 127.0.0.0/8 }"));
}

static void test_record(void **state)
{
	struct error err = ERROR_INIT;
	struct in_addr pt = ip("10.77.0.9");
	struct net_container c = { .owner = "proid.app#0000000042", .vip = ip("192.168.0.2"), .env = NET_ENV_NONPROD,
				   .endpoints = EPS, .n_endpoints = 3, .passthrough = &pt, .n_passthrough = 1 };
	_cleanup_free_ char *j = NULL, *j2 = NULL;
	struct net_record *r = NULL;

	assert_int_equal(net_record_format(&c, "tl42", NET_SHARED_IP, &j), 0);
	assert_int_equal(net_record_parse(j, &r, &err), 0);
	assert_string_equal(r->c.owner, c.owner);
	assert_string_equal(r->veth, "tl42");
	assert_int_equal(r->mode, NET_SHARED_IP);
	assert_int_equal(r->c.vip.s_addr, c.vip.s_addr);
	assert_int_equal(r->c.env, NET_ENV_NONPROD);
	assert_int_equal(r->c.n_endpoints, 3);
	assert_memory_equal(r->c.endpoints, EPS, sizeof(EPS));
	assert_int_equal(r->c.n_passthrough, 1);
	assert_int_equal(r->c.passthrough[0].s_addr, pt.s_addr);
	assert_int_equal(net_record_format(&r->c, r->veth, r->mode, &j2), 0);
	assert_string_equal(j, j2);
	net_record_free(r);
	r = NULL;
	static const struct { const char *json, *field; } bads[] = {
		{ "[]", "not a JSON object" },
		{ "{\"vip\":\"192.168.0.2\",\"environment\":\"prod\"}", "owner" },
		{ "{\"owner\":\"a\",\"vip\":\"192.168.0\",\"environment\":\"prod\"}", "vip" },
		{ "{\"owner\":\"a\",\"vip\":\"192.168.0.2\",\"environment\":\"live\"}", "environment" },
		{ "{\"owner\":\"a\",\"vip\":\"192.168.0.2\",\"environment\":\"prod\",\"endpoints\":[{\"proto\":\"tcp\",\"port\":1,\"real_port\":1},"
		  "{\"proto\":\"tcp\",\"port\":70000,\"real_port\":1}]}", "endpoints[1]: port" },
		{ "{\"owner\":\"a\",\"vip\":\"192.168.0.2\",\"environment\":\"prod\",\"passthrough\":[\"x\"]}", "passthrough[0]" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bads); i++) {
		assert_int_equal(net_record_parse(bads[i].json, &r, &err), -EINVAL);
		assert_non_null(strstr(err.msg, bads[i].field));
		assert_int_equal(err.code, ERR_PERM);
		error_clear(&err);
	}
}

/* ---- kernel: VIPs ---- */

static char *tmpdir(void)
{
	char *d = strdup("/tmp/treadle-test-net.XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void test_vip_allocate(void **state)
{
	struct error err = ERROR_INIT;
	_cleanup_free_ char *d = tmpdir();
	struct net_config cfg;
	struct in_addr a, got[6];
	char b[16];

	if (!in_netns)
		skip();
	/* 10.99.0.0/29: hosts .1-.6, gateway .6 (last): VIPs .1-.5 */
	cfg_test(&cfg, "10.99.0.0/29", "10.99.0.6");
	for (int i = 0; i < 5; i++) {
		char owner[16];

		snprintf(owner, sizeof(owner), "o%d", i);
		assert_int_equal(net_vip_allocate(&cfg, d, owner, &got[i], &err), 0);
		assert_int_equal(ntohl(got[i].s_addr), 0x0a630001 + i);
	}
	assert_int_equal(net_vip_allocate(&cfg, d, "o9", &a, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "exhausted"));
	error_clear(&err);
	/* the same owner gets its VIP back */
	assert_int_equal(net_vip_allocate(&cfg, d, "o3", &a, &err), 0);
	assert_int_equal(a.s_addr, got[3].s_addr);
	/* release checks the owner; lowest free is reused at once */
	assert_int_equal(net_vip_release(d, got[1], "o2", &err), -EPERM);
	error_clear(&err);
	assert_int_equal(net_vip_release(d, got[1], "o1", &err), 0);
	assert_int_equal(net_vip_release(d, got[1], "o1", &err), 0);	/* missing: success */
	assert_int_equal(net_vip_allocate(&cfg, d, "o7", &a, &err), 0);
	assert_string_equal(inet_ntop(AF_INET, &a, b, sizeof(b)), "10.99.0.2");
	/* reconcile: only o0 and o7 live */
	char *live[] = { "o0", "o7", NULL };
	assert_int_equal(net_vip_reconcile(d, live, &err), 3);
	struct net_vip_record *r;
	size_t n;
	assert_int_equal(net_vip_list(d, &r, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].owner, "o0");
	assert_string_equal(r[1].owner, "o7");
	net_vip_records_free(r, n);
	/* a crash between the owner's hint and its record, the VIP since taken by o0:
	 * the hint is ignored (never o0's VIP) and rewritten */
	_cleanup_free_ char *hint = strdup_printf("%s/.owners/crashed", d);
	assert_int_equal(symlink("10.99.0.1", hint), 0);
	assert_int_equal(net_vip_allocate(&cfg, d, "crashed", &a, &err), 0);
	assert_string_equal(inet_ntop(AF_INET, &a, b, sizeof(b)), "10.99.0.3");
	char hb[32] = "";
	assert_true(readlink(hint, hb, sizeof(hb) - 1) > 0);
	assert_string_equal(hb, "10.99.0.3");
	assert_int_equal(net_vip_release(d, a, "crashed", &err), 0);
	assert_int_equal(access(hint, F_OK), -1);	/* the hint goes with the record */
	/* bad owner */
	assert_int_equal(net_vip_allocate(&cfg, d, "../x", &a, &err), -EINVAL);
	error_clear(&err);
	/* gateway first in the range: never handed out */
	_cleanup_free_ char *d2 = tmpdir();
	cfg_test(&cfg, "10.98.0.0/30", "10.98.0.1");
	assert_int_equal(net_vip_allocate(&cfg, d2, "x", &a, &err), 0);
	assert_string_equal(inet_ntop(AF_INET, &a, b, sizeof(b)), "10.98.0.2");
	assert_int_equal(net_vip_allocate(&cfg, d2, "y", &a, &err), -ENOSPC);
	error_clear(&err);
	rm_rf(d);
	rm_rf(d2);
}

/* Children allocate for owners "c<k>-<i>" and report "owner vip" lines on a pipe
 * after each allocation; the parent SIGKILLs them at random moments, twice over,
 * with concurrency.  Invariants: every reported VIP is in the records with that
 * owner, no VIP has two owners (one file per VIP: checked as distinct owners ->
 * distinct VIPs), an owner's retry gets the same VIP, reconcile frees the rest. */
static void test_vip_crash(void **state)
{
	struct error err = ERROR_INIT;
	_cleanup_free_ char *d = tmpdir();
	struct net_config cfg;
	enum { KIDS = 4, PER = 60 };
	int fds[2];

	if (!in_netns)
		skip();
	cfg_test(&cfg, "10.97.0.0/22", "10.97.3.254");
	srand((unsigned)time(NULL));
	for (int round = 0; round < 3; round++) {
		pid_t kids[KIDS];

		assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
		for (int k = 0; k < KIDS; k++) {
			kids[k] = fork();
			assert_true(kids[k] >= 0);
			if (kids[k] == 0) {
				close(fds[0]);
				for (int i = 0; i < PER; i++) {
					char owner[32], line[64], b[16];
					struct in_addr a;

					snprintf(owner, sizeof(owner), "c%d-%d", k, i);
					if (net_vip_allocate(&cfg, d, owner, &a, NULL) < 0)
						_exit(1);
					int n = snprintf(line, sizeof(line), "%s %s\n", owner,
							 inet_ntop(AF_INET, &a, b, sizeof(b)));
					if (write(fds[1], line, n) != n)
						_exit(1);
				}
				_exit(0);
			}
		}
		close(fds[1]);
		struct timespec ts = { 0, (rand() % 100) * 1000000L };
		nanosleep(&ts, NULL);
		for (int k = 0; k < KIDS; k++)
			kill(kids[k], SIGKILL);
		for (int k = 0; k < KIDS; k++)
			waitpid(kids[k], NULL, 0);
		/* reported allocations must match the records */
		_cleanup_free_ char *out = NULL;
		size_t len = 0;
		FILE *f = fdopen(fds[0], "r");
		char owner[32], vip[16];
		int reported = 0;
		assert_non_null(f);
		while (fscanf(f, "%31s %15s", owner, vip) == 2) {
			char target[64];
			_cleanup_free_ char *p = strdup_printf("%s/%s", d, vip);
			ssize_t n = readlink(p, target, sizeof(target) - 1);

			assert_true(n > 0);
			target[n] = '\0';
			assert_string_equal(target, owner);
			reported++;
		}
		fclose(f);
		(void)out;
		(void)len;
		/* an owner's retry returns its VIP; distinct owners, distinct VIPs */
		struct net_vip_record *r;
		size_t n;
		assert_int_equal(net_vip_list(d, &r, &n), 0);
		assert_true(n >= (size_t)reported);
		for (size_t i = 0; i < n; i++) {
			struct in_addr a;

			assert_int_equal(net_vip_allocate(&cfg, d, r[i].owner, &a, &err), 0);
			assert_int_equal(a.s_addr, r[i].vip.s_addr);
			for (size_t j = 0; j < i; j++)
				assert_string_not_equal(r[i].owner, r[j].owner);
		}
		printf("# round %d: %d reported, %zu records after SIGKILL\n", round, reported, n);
		net_vip_records_free(r, n);
	}
	/* reconcile with owners c0-* live only */
	_cleanup_strv_free_ char **live = strv_new();
	for (int i = 0; i < PER; i++) {
		_cleanup_free_ char *o = strdup_printf("c0-%d", i);
		assert_int_equal(strv_extend(&live, o), 0);
	}
	assert_true(net_vip_reconcile(d, live, &err) >= 0);
	struct net_vip_record *r;
	size_t n;
	assert_int_equal(net_vip_list(d, &r, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(startswith(r[i].owner, "c0-"));
	net_vip_records_free(r, n);
	rm_rf(d);
}

/* ---- kernel: conntrack ---- */

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void udp_send(const char *dst, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr = ip(dst);
	assert_true(sendto(fd, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) == 1);
	close(fd);
}

static void test_conntrack_flush(void **state)
{
	struct error err = ERROR_INIT;
	int r;

	if (!in_netns)
		skip();
	/* conntrack tracks in this netns once a table uses it */
	assert_int_equal(net_nft_run("add table ip treadle_unit_ct\n"
				     "add chain ip treadle_unit_ct out { type filter hook output priority 0; }\n"
				     "add rule ip treadle_unit_ct out ct state new counter\n",
				     NULL, &err),
			 0);
	udp_send("127.0.0.2", 9);
	udp_send("127.0.0.2", 10);
	udp_send("127.0.0.3", 9);
	assert_int_equal(run("conntrack -L -d 127.0.0.2 2>/dev/null | grep -q 127.0.0.2"), 0);
	r = net_conntrack_flush(ip("127.0.0.2"), &err);
	assert_int_equal(r, 2);
	assert_int_not_equal(run("conntrack -L -d 127.0.0.2 2>/dev/null | grep -q 127.0.0.2"), 0);
	assert_int_equal(net_conntrack_flush(ip("127.0.0.2"), &err), 0);
	assert_int_equal(net_conntrack_flush(ip("127.0.0.3"), &err), 1);
	/* release of a VIP flushes its entries */
	_cleanup_free_ char *d = tmpdir();
	struct net_config cfg;
	struct in_addr a;
	cfg_test(&cfg, "127.0.5.0/29", "127.0.5.6");
	assert_int_equal(net_vip_allocate(&cfg, d, "ct", &a, &err), 0);
	udp_send("127.0.5.1", 9);
	assert_int_equal(run("conntrack -L -d 127.0.5.1 2>/dev/null | grep -q 127.0.5.1"), 0);
	assert_int_equal(net_vip_release(d, a, "ct", &err), 0);
	assert_int_not_equal(run("conntrack -L -d 127.0.5.1 2>/dev/null | grep -q 127.0.5.1"), 0);
	assert_int_equal(net_fw_teardown(&(struct net_config){ .bridge = "x", .table = "treadle_unit_ct",
								 .network = ip("10.0.0.0"), .prefixlen = 8,
								 .gateway = ip("10.0.0.1"), .external_ip = ip("10.0.0.2") },
				  &err),
			 0);
	rm_rf(d);
}

/* ---- kernel: links and firewall ---- */

static int netns_new(void)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), fd;

	assert_true(self >= 0);
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
	assert_true(fd >= 0);
	return fd;
}

/* Output of a shell command run inside netns fd (forked, setns, sh -c). */
static char *in_ns(int fd, const char *cmd)
{
	int p[2];
	pid_t pid;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int c;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		if (setns(fd, CLONE_NEWNET) < 0)
			_exit(1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	f = open_memstream(&buf, &len);
	FILE *in = fdopen(p[0], "r");
	while ((c = fgetc(in)) != EOF)
		fputc(c, f);
	fclose(in);
	fclose(f);
	waitpid(pid, NULL, 0);
	return buf;
}

/* 0 if a TCP connection from netns fd to dst:7777 reaches a listener here. */
static int tcp_probe(int fd, const char *dst)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7777), .sin_addr = ip(dst) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), st;
	pid_t pid;

	assert_true(l >= 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	pid = fork();
	if (pid == 0) {
		int s;

		if (setns(fd, CLONE_NEWNET) < 0 || (s = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			_exit(2);
		alarm(5);
		_exit(connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	close(l);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_links(void **state)
{
	struct error err = ERROR_INIT;
	struct net_config cfg;
	int c1;
	_cleanup_strv_free_ char **ports = NULL;

	if (!in_netns)
		skip();
	cfg_test(&cfg, "192.168.0.0/16", "192.168.254.254");
	cfg.mtu = 1400;
	assert_int_equal(net_bridge_setup(&cfg, true, &err), 0);
	assert_int_equal(net_bridge_setup(&cfg, true, &err), 0);	/* idempotent */
	c1 = netns_new();
	assert_int_equal(net_container_setup(&cfg, NET_PRIVATE, "tlv-c1", c1, ip("192.168.0.1"), &err), 0);
	/* same name again: refused, the first untouched */
	assert_true(net_container_setup(&cfg, NET_PRIVATE, "tlv-c1", c1, ip("192.168.0.2"), &err) < 0);
	error_clear(&err);
	/* the gateway is not a VIP */
	assert_int_equal(net_container_setup(&cfg, NET_PRIVATE, "tlv-c2", c1, cfg.gateway, &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(net_bridge_ports(&cfg, &ports, &err), 0);
	assert_int_equal(strv_length(ports), 1);
	assert_string_equal(ports[0], "tlv-c1");
	assert_int_equal(run("bridge -d link show dev tlv-c1 | grep -q 'hairpin on'"), 0);

	_cleanup_free_ char *addrs = in_ns(c1, "ip -o -4 addr show; ip route show; ip -o link show eth0");
	printf("# %s", addrs);
	assert_non_null(strstr(addrs, "lo    inet 127.0.0.1/8"));
	assert_non_null(strstr(addrs, "eth0    inet 192.168.0.1/32 scope link"));
	assert_non_null(strstr(addrs, "default via 192.168.254.254 dev eth0 src 192.168.0.1"));
	assert_non_null(strstr(addrs, "192.168.254.254 dev eth0 scope link"));
	assert_non_null(strstr(addrs, "mtu 1400"));
	/* the container reaches the host at the gateway */
	assert_int_equal(tcp_probe(c1, "192.168.254.254"), 0);

	assert_int_equal(net_container_teardown(&cfg, "tlv-c1", ip("192.168.0.1"), &err), 0);
	assert_int_equal(net_container_teardown(&cfg, "tlv-c1", ip("192.168.0.1"), &err), 0);
	strv_free(ports);
	ports = NULL;
	assert_int_equal(net_bridge_ports(&cfg, &ports, &err), 0);
	assert_int_equal(strv_length(ports), 0);
	_cleanup_free_ char *gone = in_ns(c1, "ip -o link show");
	assert_null(strstr(gone, "eth0"));

	/* shared_ip: the host address too, scope host, and the nat table inside */
	assert_int_equal(net_container_setup(&cfg, NET_SHARED_IP, "tlv-c1", c1, ip("192.168.0.1"), &err), 0);
	_cleanup_free_ char *sh = in_ns(c1, "ip -o -4 addr show eth0; ip route show default; nft list ruleset");
	assert_non_null(strstr(sh, "inet 10.77.0.1/32 scope host"));
	assert_non_null(strstr(sh, "src 10.77.0.1"));
	assert_non_null(strstr(sh, "dnat to 10.77.0.1"));
	assert_non_null(strstr(sh, "snat to 192.168.0.1"));
	/* shared_network: nothing */
	assert_int_equal(net_container_setup(&cfg, NET_SHARED_NETWORK, "tlv-c9", -1, ip("0.0.0.0"), &err), 0);
	close(c1);	/* the netns dies, and the veth with it */
	assert_int_equal(net_bridge_remove(&cfg, &err), 0);
	assert_int_equal(net_bridge_remove(&cfg, &err), 0);
}

static void test_fw_kernel(void **state)
{
	struct error err = ERROR_INIT;
	struct net_config cfg, other;
	struct in_addr pt = ip("10.77.0.9");
	struct net_container c[2] = {
		{ .owner = "a#1", .vip = ip("192.168.0.1"), .env = NET_ENV_PROD, .endpoints = EPS, .n_endpoints = 2 },
		{ .owner = "b#2", .vip = ip("192.168.0.2"), .env = NET_ENV_NONPROD, .endpoints = EPS + 2,
		  .n_endpoints = 1, .passthrough = &pt, .n_passthrough = 1 },
	};

	if (!in_netns)
		skip();
	cfg_test(&cfg, "192.168.0.0/16", "192.168.254.254");
	other = cfg;
	other.table = "treadle_unit_other";
	assert_int_equal(net_fw_rebuild(&other, &c[1], 1, false, &err), 0);
	assert_int_equal(net_fw_rebuild(&cfg, NULL, 0, false, &err), 0);
	assert_int_equal(net_fw_add(&cfg, &c[0], &err), 0);
	assert_int_equal(net_fw_add(&cfg, &c[0], &err), 0);	/* same again: no change, no error */
	assert_int_equal(net_fw_add(&cfg, &c[1], &err), 0);
	/* a key held by another container: refused, whole transaction */
	struct net_endpoint clash = { .proto = IPPROTO_TCP, .port = 9, .real_port = 41234 };
	struct net_container x = { .owner = "x#3", .vip = ip("192.168.0.3"), .env = NET_ENV_PROD, .endpoints = &clash,
				   .n_endpoints = 1 };
	assert_true(net_fw_add(&cfg, &x, &err) < 0);
	assert_non_null(strstr(err.msg, "x#3"));
	error_clear(&err);
	_cleanup_free_ char *out = NULL;
	assert_int_equal(net_nft_run("list set ip treadle_unit prod", &out, &err), 0);
	assert_null(strstr(out, "192.168.0.3"));
	free(out);
	out = NULL;
	/* remove is idempotent */
	assert_int_equal(net_fw_remove(&cfg, &c[0], &err), 0);
	assert_int_equal(net_fw_remove(&cfg, &c[0], &err), 0);
	assert_int_equal(net_nft_run("list map ip treadle_unit ep_dnat", &out, &err), 0);
	assert_null(strstr(out, "41234"));
	assert_non_null(strstr(out, "41236"));
	free(out);
	out = NULL;
	/* blackout on/off, idempotent */
	assert_int_equal(net_fw_blackout(&cfg, true, &err), 0);
	assert_int_equal(net_fw_blackout(&cfg, true, &err), 0);
	assert_int_equal(net_nft_run("list set ip treadle_unit blackout", &out, &err), 0);
	assert_non_null(strstr(out, "tlt0"));
	free(out);
	out = NULL;
	assert_int_equal(net_fw_blackout(&cfg, false, &err), 0);
	assert_int_equal(net_fw_blackout(&cfg, false, &err), 0);
	/* the other cell's table is untouched by all of it */
	assert_int_equal(net_nft_run("list map ip treadle_unit_other ep_dnat", &out, &err), 0);
	assert_non_null(strstr(out, "41236"));
	free(out);
	out = NULL;
	/* rebuild from scratch over a damaged table */
	assert_int_equal(net_nft_run("flush chain ip treadle_unit nat_prerouting", NULL, &err), 0);
	assert_int_equal(net_fw_rebuild(&cfg, c, 2, false, &err), 0);
	assert_int_equal(net_nft_run("list chain ip treadle_unit nat_prerouting", &out, &err), 0);
	assert_non_null(strstr(out, "@ep_dnat"));
	assert_int_equal(net_fw_teardown(&cfg, &err), 0);
	assert_int_equal(net_fw_teardown(&cfg, &err), 0);
	assert_int_equal(net_fw_teardown(&other, &err), 0);
	free(out);
	out = NULL;
	assert_int_equal(net_nft_run("list tables", &out, &err), 0);
	assert_null(strstr(out, "treadle_unit"));
	/* the kept nft socket is close-on-exec (a container must not inherit it) */
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int netfilter = 0;
	assert_non_null(d);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name), dom = 0, proto = 0;
		socklen_t l = sizeof(int);

		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 || dom != AF_NETLINK)
			continue;
		l = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0 && proto == 12 /* NETLINK_NETFILTER */) {
			netfilter++;
			assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		}
	}
	closedir(d);
	assert_true(netfilter >= 1);
	/* a forked child gets its own context; the parent's still works after */
	pid_t pid = fork();
	if (pid == 0)
		_exit(net_nft_run("add table ip treadle_unit_child\ndelete table ip treadle_unit_child\n", NULL, NULL) == 0 ? 0 : 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(net_nft_run("add table ip treadle_unit_p\ndelete table ip treadle_unit_p\n", NULL, &err), 0);
}

/* ---- driver for tests/integration/48-net-kernel.sh and bench ---- */

static const char drive_usage[] =
	"usage: test-net drive <command> [args]   (environment: NET_BRIDGE NET_TABLE NET_EXT_IP NET_RANGE NET_GW NET_MTU)\n"
	"  bridge-up | bridge-down | ports\n"
	"  link-up <host-if> <netns-path> <vip> [private|shared_ip] | link-down <host-if> <vip>\n"
	"  vip-alloc <dir> <owner> | vip-release <dir> <vip> [owner] | vip-reconcile <dir> [live-owner...]\n"
	"  fw-add <spec> | fw-remove <spec> | fw-rebuild [spec...] | fw-blackout on|off | fw-teardown\n"
	"  conntrack-flush <ip>\n"
	"spec: owner,vip,prod|nonprod[,ep=tcp|udp:port:real_port[:infra|:eph]]...[,pt=ip]...\n";

struct spec {
	struct net_container c;
	struct net_endpoint ep[32];
	struct in_addr pt[8];
	char owner[128];
};

static int parse_spec(const char *s, struct spec *sp)
{
	_cleanup_free_ char *copy = strdup(s);
	char *save = NULL, *tok;
	int field = 0;

	memset(sp, 0, sizeof(*sp));
	if (!copy)
		return -ENOMEM;
	sp->c.endpoints = sp->ep;
	sp->c.passthrough = sp->pt;
	sp->c.owner = sp->owner;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), field++) {
		if (field == 0)
			snprintf(sp->owner, sizeof(sp->owner), "%s", tok);
		else if (field == 1) {
			if (net_parse_ip(tok, &sp->c.vip) < 0)
				return -EINVAL;
		} else if (field == 2)
			sp->c.env = strcmp(tok, "prod") == 0 ? NET_ENV_PROD : NET_ENV_NONPROD;
		else if (startswith(tok, "ep=") && sp->c.n_endpoints < 32) {
			struct net_endpoint *e = &sp->ep[sp->c.n_endpoints++];
			char proto[4], flag[8] = "";
			unsigned port, real;

			if (sscanf(tok + 3, "%3[a-z]:%u:%u:%7s", proto, &port, &real, flag) < 3)
				return -EINVAL;
			e->proto = strcmp(proto, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
			e->port = port;
			e->real_port = real;
			e->infra = strcmp(flag, "infra") == 0;
			e->ephemeral = strcmp(flag, "eph") == 0;
		} else if (startswith(tok, "pt=") && sp->c.n_passthrough < 8) {
			if (net_parse_ip(tok + 3, &sp->pt[sp->c.n_passthrough++]) < 0)
				return -EINVAL;
		} else
			return -EINVAL;
	}
	return field >= 3 ? 0 : -EINVAL;
}

static int drive(int argc, char **argv)
{
	struct error err = ERROR_INIT;
	struct net_config cfg;
	struct in_addr ext = { 0 }, a;
	const char *cmd = argc > 2 ? argv[2] : "";
	int r = 0;
	char b[16];

	if (net_parse_ip(getenv("NET_EXT_IP"), &ext) < 0) {
		fputs(drive_usage, stderr);
		return 2;
	}
	net_config_init(&cfg, getenv("NET_BRIDGE") ?: "tl0", getenv("NET_TABLE") ?: "treadle_test", ext);
	if (getenv("NET_RANGE") && net_parse_cidr(getenv("NET_RANGE"), &cfg.network, &cfg.prefixlen) < 0)
		return 2;
	if (getenv("NET_GW") && net_parse_ip(getenv("NET_GW"), &cfg.gateway) < 0)
		return 2;
	if (getenv("NET_MTU"))
		cfg.mtu = (unsigned)atol(getenv("NET_MTU"));

	if (strcmp(cmd, "bridge-up") == 0)
		r = net_bridge_setup(&cfg, true, &err);
	else if (strcmp(cmd, "bridge-down") == 0)
		r = net_bridge_remove(&cfg, &err);
	else if (strcmp(cmd, "ports") == 0) {
		_cleanup_strv_free_ char **l = NULL;

		r = net_bridge_ports(&cfg, &l, &err);
		for (size_t i = 0; r >= 0 && l[i]; i++)
			puts(l[i]);
	} else if (strcmp(cmd, "link-up") == 0 && argc >= 6) {
		_cleanup_close_ int fd = open(argv[4], O_RDONLY | O_CLOEXEC);
		enum net_mode m = argc > 6 && strcmp(argv[6], "shared_ip") == 0 ? NET_SHARED_IP : NET_PRIVATE;

		if (fd < 0 || net_parse_ip(argv[5], &a) < 0)
			return 2;
		r = net_container_setup(&cfg, m, argv[3], fd, a, &err);
	} else if (strcmp(cmd, "link-down") == 0 && argc >= 5) {
		if (net_parse_ip(argv[4], &a) < 0)
			return 2;
		r = net_container_teardown(&cfg, argv[3], a, &err);
	} else if (strcmp(cmd, "vip-alloc") == 0 && argc >= 5) {
		r = net_vip_allocate(&cfg, argv[3], argv[4], &a, &err);
		if (r >= 0)
			puts(inet_ntop(AF_INET, &a, b, sizeof(b)));
	} else if (strcmp(cmd, "vip-release") == 0 && argc >= 5) {
		if (net_parse_ip(argv[4], &a) < 0)
			return 2;
		r = net_vip_release(argv[3], a, argc > 5 ? argv[5] : NULL, &err);
	} else if (strcmp(cmd, "vip-reconcile") == 0 && argc >= 4) {
		r = net_vip_reconcile(argv[3], argv + 4, &err);
		if (r >= 0)
			printf("%d\n", r);
	} else if ((strcmp(cmd, "fw-add") == 0 || strcmp(cmd, "fw-remove") == 0) && argc >= 4) {
		struct spec sp;

		if (parse_spec(argv[3], &sp) < 0) {
			fprintf(stderr, "bad spec: %s\n", argv[3]);
			return 2;
		}
		r = cmd[3] == 'a' ? net_fw_add(&cfg, &sp.c, &err) : net_fw_remove(&cfg, &sp.c, &err);
	} else if (strcmp(cmd, "fw-rebuild") == 0) {
		size_t n = argc > 3 ? (size_t)argc - 3 : 0;
		struct spec *sp = calloc(n ? n : 1, sizeof(*sp));
		struct net_container *c = calloc(n ? n : 1, sizeof(*c));

		if (!sp || !c)
			return 111;
		for (size_t i = 0; i < n; i++) {
			if (parse_spec(argv[3 + i], &sp[i]) < 0) {
				fprintf(stderr, "bad spec: %s\n", argv[3 + i]);
				return 2;
			}
			c[i] = sp[i].c;
		}
		r = net_fw_rebuild(&cfg, c, n, false, &err);
		free(sp);
		free(c);
	} else if (strcmp(cmd, "fw-blackout") == 0 && argc >= 4)
		r = net_fw_blackout(&cfg, strcmp(argv[3], "on") == 0, &err);
	else if (strcmp(cmd, "fw-teardown") == 0)
		r = net_fw_teardown(&cfg, &err);
	else if (strcmp(cmd, "conntrack-flush") == 0 && argc >= 4) {
		if (net_parse_ip(argv[3], &a) < 0)
			return 2;
		r = net_conntrack_flush(a, &err);
		if (r >= 0)
			printf("%d\n", r);
	} else {
		fputs(drive_usage, stderr);
		return 2;
	}
	if (r < 0)
		return error_report(&err);
	return 0;
}

/* ---- vring ---- */

static void test_vring_record(void **state)
{
	struct net_vring_map m[2] = {
		{ .proto = IPPROTO_TCP, .dst = ip("10.0.0.3"), .port = 7001, .to = ip("10.0.0.3"), .to_port = 41234 },
		{ .proto = IPPROTO_UDP, .dst = ip("10.0.0.1"), .port = 53, .to = ip("192.168.0.2"), .to_port = 53 },
	};
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ struct net_vring_map *back = NULL;
	struct error err = ERROR_INIT;
	struct in_addr vip;
	size_t n = 0;

	assert_int_equal(net_vring_record_format(ip("192.168.0.2"), m, 2, &text), 0);
	assert_int_equal(net_vring_record_parse(text, &vip, &back, &n, &err), 0);
	assert_int_equal(vip.s_addr, ip("192.168.0.2").s_addr);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(net_vring_map_cmp(&back[i], &m[i]), 0);
		assert_int_equal(back[i].to.s_addr, m[i].to.s_addr);
		assert_int_equal(back[i].to_port, m[i].to_port);
	}
	assert_true(net_vring_map_cmp(&m[0], &m[1]) < 0); /* tcp (6) < udp (17): proto first */
	assert_int_equal(net_vring_map_cmp(&m[0], &m[0]), 0);
	assert_true(net_vring_record_parse("{\"vip\": \"192.168.0.2\", \"maps\": [{\"proto\": \"sctp\"}]}", &vip,
					   &back, &n, &err) < 0);
	assert_non_null(strstr(err.msg, "maps[0].proto"));
	error_clear(&err);
	assert_true(net_vring_record_parse("{\"vip\": \"x\", \"maps\": []}", &vip, &back, &n, &err) < 0);
	assert_non_null(strstr(err.msg, "vip"));
	error_clear(&err);
	assert_true(net_vring_record_parse("[]", &vip, &back, &n, &err) < 0);
	error_clear(&err);
}

static int count_elems(const char *out, const char *needle)
{
	int n = 0;

	for (const char *p = out; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_vring_kernel(void **state)
{
	struct error err = ERROR_INIT;
	struct net_config cfg;
	struct net_vring_map a[2] = {
		{ .proto = IPPROTO_TCP, .dst = ip("10.77.0.1"), .port = 7000, .to = ip("192.168.0.1"), .to_port = 7000 },
		{ .proto = IPPROTO_TCP, .dst = ip("10.77.0.3"), .port = 7001, .to = ip("10.77.0.3"), .to_port = 41234 },
	};
	struct net_vring_map moved = { .proto = IPPROTO_TCP, .dst = ip("10.77.0.4"), .port = 7001, .to = ip("10.77.0.4"),
				       .to_port = 41240 };
	struct net_vring_map b = { .proto = IPPROTO_UDP, .dst = ip("10.77.0.3"), .port = 53, .to = ip("10.77.0.3"),
				   .to_port = 41300 };
	struct net_container c[2] = {
		{ .owner = "a#1", .vip = ip("192.168.0.1"), .env = NET_ENV_PROD, .vring = a, .n_vring = 2 },
		{ .owner = "b#2", .vip = ip("192.168.0.2"), .env = NET_ENV_NONPROD, .vring = &b, .n_vring = 1 },
	};
	_cleanup_free_ char *out = NULL;

	if (!in_netns)
		skip();
	cfg_test(&cfg, "192.168.0.0/16", "192.168.254.254");
	/* a rebuild puts the recorded mappings in, and the rule that reads them */
	assert_int_equal(net_fw_rebuild(&cfg, c, 2, false, &err), 0);
	assert_int_equal(net_nft_run("list table ip treadle_unit", &out, &err), 0);
	assert_int_equal(count_elems(out, "\"192.168.0.1\", \"10.77.0."), 2);
	assert_int_equal(count_elems(out, "\"192.168.0.2\", \"10.77.0.3\""), 1);
	assert_non_null(strstr(out, "vring_dnat"));
	free(out);
	out = NULL;
	/* net_fw_add/remove leave them alone */
	assert_int_equal(net_fw_remove(&cfg, &c[0], &err), 0);
	assert_int_equal(net_nft_run("list map ip treadle_unit vring_dnat", &out, &err), 0);
	assert_int_equal(count_elems(out, "\"192.168.0.1\", \"10.77.0."), 2);
	free(out);
	out = NULL;
	/* a peer moves: one element out, one in; again: no error (idempotent delete) */
	assert_int_equal(net_vring_change(&cfg, c[0].vip, &a[1], 1, &moved, 1, &err), 0);
	assert_int_equal(net_vring_change(&cfg, c[0].vip, &a[1], 1, &moved, 1, &err), 0);
	assert_int_equal(net_nft_run("list map ip treadle_unit vring_dnat", &out, &err), 0);
	assert_null(strstr(out, "41234"));
	assert_non_null(strstr(out, "41240"));
	free(out);
	out = NULL;
	/* a delete whose data is not what the kernel holds (a crash between record and kernel):
	 * the VIP's elements are flushed and the wanted ones added */
	struct net_vring_map stale = moved;
	stale.to_port = 1;
	struct net_vring_map again = moved;
	again.to_port = 41250;
	assert_int_equal(net_vring_change(&cfg, c[0].vip, &stale, 1, &again, 1, &err), 0);
	assert_int_equal(net_nft_run("list map ip treadle_unit vring_dnat", &out, &err), 0);
	assert_int_equal(count_elems(out, "\"192.168.0.1\", \"10.77.0."), 1); /* the reflective one went too */
	assert_non_null(strstr(out, "41250"));
	assert_non_null(strstr(out, "41300")); /* the other VIP's stays */
	free(out);
	out = NULL;
	/* flush by VIP: only that VIP's, whatever the records say */
	assert_int_equal(net_vring_flush(&cfg, c[0].vip, &err), 1);
	assert_int_equal(net_vring_flush(&cfg, c[0].vip, &err), 0);
	assert_int_equal(net_nft_run("list map ip treadle_unit vring_dnat", &out, &err), 0);
	assert_null(strstr(out, "192.168.0.1"));
	assert_non_null(strstr(out, "41300"));
	/* bad input is refused before the kernel */
	struct net_vring_map bad = { .proto = 1, .dst = ip("10.77.0.3"), .port = 1, .to = ip("10.77.0.3"), .to_port = 1 };
	assert_true(net_vring_change(&cfg, c[0].vip, NULL, 0, &bad, 1, &err) < 0);
	error_clear(&err);
	assert_int_equal(net_fw_teardown(&cfg, &err), 0);
	/* no table: nothing to flush */
	assert_int_equal(net_vring_flush(&cfg, c[1].vip, &err), 0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "drive") == 0)
		return drive(argc, argv);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_config_check), cmocka_unit_test(test_node_names),
		cmocka_unit_test(test_fw_text),
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_vip_allocate),
		cmocka_unit_test(test_vip_crash),
		cmocka_unit_test(test_conntrack_flush),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_fw_kernel),
		cmocka_unit_test(test_vring_record),
		cmocka_unit_test(test_vring_kernel),
	};
	/* Everything that touches the kernel runs in a private netns: it dies with us. */
	in_netns = geteuid() == 0 && unshare(CLONE_NEWNET) == 0;
	if (in_netns)
		(void)system("ip link set lo up");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
