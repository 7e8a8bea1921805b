/* net-fw.c: the node's firewall as one nftables table per cell, written only
 * by treadle, through libnftables.  Treadmill's per-endpoint iptables rules
 * (treadmill-architecture.md §6.2) become set and map elements, so adding or
 * removing a container is one transaction of a few elements whatever the
 * number of containers, and the chains never change after the table is built.
 *
 *   set prod, nonprod         container VIPs by environment
 *   map ep_dnat               proto . real_port -> vip . port  (on the host address; ephemeral: same port)
 *   map ep_snat               vip . proto . port -> host . real_port  (new flows from an endpoint port)
 *   map passthrough           source -> vip      (all traffic from source to the host address)
 *   set passthrough_src       the same sources  (containers reach them as the host, no port range)
 *   set infra                 vip . proto . port of `type: infra` endpoints
 *   set blackout              the bridge while the server is blacked out
 *   map vring_dnat            vip . dst . proto . port -> to . to_port  (vring: net-vring.c writes it)
 *
 * The DNAT key leaves out the host address (Treadmill: `-d external_ip`): the
 * address is a constant of the chains' rules instead, which is what lets the
 * OUTPUT chain also match 127.0.0.0/8 (a hostname that resolves to loopback)
 * with the same map; nft cannot put a constant in a concatenated lookup key. */
#include <arpa/inet.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>

#include "../basic/util.h"
#include "net-internal.h"
#include "net.h"

/* One nft context per process, reused while the thread stays in the same netns.
 * Not only to save its setup: the kernel flushes nf_tables' deferred destroy work
 * (an RCU grace period, ~10 ms here) when an nfnetlink socket that deleted
 * elements is closed, so a context per call made every remove cost that. */
static struct {
	struct nft_ctx *ctx;
	dev_t dev;
	ino_t ino;
	pid_t pid;	/* a forked child makes its own (never shares the parent's socket) */
	bool sealed;	/* its netlink socket made close-on-exec */
} nft_cache;

/* libmnl opens the context's socket without SOCK_CLOEXEC and libnftables does not
 * expose it: mark every NETLINK_NETFILTER socket of the process close-on-exec, or
 * a container started by this process would inherit a handle on the host's
 * firewall. */
static void seal_netfilter_sockets(void)
{
	_cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd, dom = 0, proto = 0, fl;
		socklen_t l = sizeof(int);

		if (safe_atoi(de->d_name, &fd) < 0 || fd == dirfd(d))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 || dom != AF_NETLINK)
			continue;
		l = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) < 0 || proto != NETLINK_NETFILTER)
			continue;
		fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
}

static struct nft_ctx *nft_get(void)
{
	struct stat st;

	if (stat("/proc/thread-self/ns/net", &st) < 0)
		return NULL;
	if (nft_cache.ctx && nft_cache.dev == st.st_dev && nft_cache.ino == st.st_ino && nft_cache.pid == getpid())
		return nft_cache.ctx;
	if (nft_cache.ctx)
		nft_ctx_free(nft_cache.ctx);	/* in a child: closes only the child's copy */
	nft_cache.ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft_cache.ctx)
		return NULL;
	if (nft_ctx_buffer_output(nft_cache.ctx) < 0 || nft_ctx_buffer_error(nft_cache.ctx) < 0) {
		nft_ctx_free(nft_cache.ctx);
		nft_cache.ctx = NULL;
		return NULL;
	}
	nft_cache.dev = st.st_dev;
	nft_cache.ino = st.st_ino;
	nft_cache.pid = getpid();
	nft_cache.sealed = false;
	return nft_cache.ctx;
}

static int nft_run_in(struct nft_ctx *ctx, const char *cmds, char **ret_output, struct error *err);

int net_nft_run_once(const char *cmds, struct error *err)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int r;

	if (!ctx || nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
		if (ctx)
			nft_ctx_free(ctx);
		return error_set(err, ERR_TEMP, ENOMEM, "network: nftables: cannot create context");
	}
	r = nft_run_in(ctx, cmds, NULL, err);
	nft_ctx_free(ctx);
	return r;
}

int net_nft_run(const char *cmds, char **ret_output, struct error *err)
{
	return nft_run_in(nft_get(), cmds, ret_output, err);
}

static int nft_run_in(struct nft_ctx *ctx, const char *cmds, char **ret_output, struct error *err)
{
	const char *e, *out;
	size_t n;
	int r;

	if (!ctx)
		return error_set(err, ERR_TEMP, ENOMEM, "network: nftables: cannot create context");
	nft_ctx_output_set_flags(ctx, ret_output ? NFT_CTX_OUTPUT_JSON : 0);
	r = nft_run_cmd_from_buffer(ctx, cmds);
	if (!nft_cache.sealed) {
		seal_netfilter_sockets();
		nft_cache.sealed = true;
	}
	/* Reading a buffer also empties it for the next command. */
	e = nft_ctx_get_error_buffer(ctx);
	out = nft_ctx_get_output_buffer(ctx);
	if (r != 0) {
		/* First line of nft's message: "Error: Could not process rule: File exists". */
		e = e ? e : "";
		n = strcspn(e, "\n");
		return error_set(err, ERR_TEMP, EIO, "network: nftables: %.*s", (int)n, n ? e : "failed");
	}
	if (ret_output) {
		*ret_output = strdup(out ? out : "");
		if (!*ret_output)
			return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	}
	return 0;
}

static const char *set_of(enum net_env env)
{
	return env == NET_ENV_PROD ? "prod" : "nonprod";
}

static int check_container(const struct net_container *c, struct error *err)
{
	char b[NET_IPSTR_MAX];

	if (!c->vip.s_addr)
		return error_set(err, ERR_PERM, EINVAL, "network: container %s: no VIP", c->owner ? c->owner : "?");
	for (size_t i = 0; i < c->n_endpoints; i++) {
		const struct net_endpoint *e = &c->endpoints[i];

		if ((e->proto != IPPROTO_TCP && e->proto != IPPROTO_UDP) || !e->port || !e->real_port)
			return error_set(err, ERR_PERM, EINVAL, "network: container %s (%s): endpoint %zu: bad %s",
					 c->owner ? c->owner : "?", net_ipstr(c->vip, b), i,
					 e->proto != IPPROTO_TCP && e->proto != IPPROTO_UDP ? "proto" : "port");
	}
	for (size_t i = 0; i < c->n_passthrough; i++)
		if (!c->passthrough[i].s_addr || c->passthrough[i].s_addr == htonl(INADDR_BROADCAST))
			return error_set(err, ERR_PERM, EINVAL, "network: container %s: passthrough %zu: bad address",
					 c->owner ? c->owner : "?", i);
	return 0;
}

/* The element lists of one container, each "elem, elem" into its own stream.
 * `keys_only` leaves out map values (for deletes). */
struct elems {
	char *buf[7];
	size_t len[7];
	FILE *f[7];
	bool any[7];
};
enum { E_ENV, E_DNAT, E_SNAT, E_PT, E_PTSRC, E_INFRA, E_VRING, E__N };
static const char *const elem_target[E__N] = { NULL,	    "ep_dnat", "ep_snat",   "passthrough",
					       "passthrough_src", "infra",   "vring_dnat" };

static void elems_close(struct elems *e)
{
	for (int i = 0; i < E__N; i++) {
		if (e->f[i])
			fclose(e->f[i]);
		e->f[i] = NULL;
	}
}

static void elems_free(struct elems *e)
{
	elems_close(e);
	for (int i = 0; i < E__N; i++)
		free(e->buf[i]);
}

static int elems_open(struct elems *e)
{
	*e = (struct elems){ 0 };
	for (int i = 0; i < E__N; i++)
		if (!(e->f[i] = open_memstream(&e->buf[i], &e->len[i])))
			return -ENOMEM;
	return 0;
}

static void elem(struct elems *e, int which, const char *fmt, ...) _printf_(3, 4);
static void elem(struct elems *e, int which, const char *fmt, ...)
{
	va_list ap;

	if (e->any[which])
		fputs(", ", e->f[which]);
	e->any[which] = true;
	va_start(ap, fmt);
	vfprintf(e->f[which], fmt, ap);
	va_end(ap);
}

static void container_elems(const struct net_config *cfg, const struct net_container *c, struct elems *e,
			    bool keys_only)
{
	char v[NET_IPSTR_MAX], x[NET_IPSTR_MAX], p[NET_IPSTR_MAX];

	net_ipstr(c->vip, v);
	net_ipstr(cfg->external_ip, x);
	elem(e, E_ENV, "%s", v);
	for (size_t i = 0; i < c->n_endpoints; i++) {
		const struct net_endpoint *ep = &c->endpoints[i];
		unsigned port = ep->ephemeral ? ep->real_port : ep->port;

		if (keys_only)
			elem(e, E_DNAT, "%u . %u", ep->proto, ep->real_port);
		else
			elem(e, E_DNAT, "%u . %u : %s . %u", ep->proto, ep->real_port, v, port);
		if (!ep->ephemeral) {
			if (keys_only)
				elem(e, E_SNAT, "%s . %u . %u", v, ep->proto, port);
			else
				elem(e, E_SNAT, "%s . %u . %u : %s . %u", v, ep->proto, port, x, ep->real_port);
		}
		if (ep->infra || ep->ephemeral)
			elem(e, E_INFRA, "%s . %u . %u", v, ep->proto, port);
	}
	for (size_t i = 0; i < c->n_passthrough; i++) {
		net_ipstr(c->passthrough[i], p);
		if (keys_only)
			elem(e, E_PT, "%s", p);
		else
			elem(e, E_PT, "%s : %s", p, v);
		elem(e, E_PTSRC, "%s", p);
	}
	for (size_t i = 0; i < c->n_vring; i++) {
		const struct net_vring_map *m = &c->vring[i];
		char d[NET_IPSTR_MAX], t[NET_IPSTR_MAX];

		if (keys_only)
			elem(e, E_VRING, "%s . %s . %u . %u", v, net_ipstr(m->dst, d), m->proto, m->port);
		else
			elem(e, E_VRING, "%s . %s . %u . %u : %s . %u", v, net_ipstr(m->dst, d), m->proto, m->port,
			     net_ipstr(m->to, t), m->to_port);
	}
}

/* "<verb> element ip T <set> { ... }\n" for every non-empty list of e. */
static void emit_cmds(FILE *out, const struct net_config *cfg, const struct net_container *c, struct elems *e,
		      const char *verb)
{
	for (int i = 0; i < E__N; i++)
		if (e->any[i])
			fprintf(out, "%s element ip %s %s { %s }\n", verb, cfg->table,
				i == E_ENV ? set_of(c->env) : elem_target[i], e->buf[i]);
}

static int net_fw_container_cmds(const struct net_config *cfg, const struct net_container *c, bool add, char **ret)
{
	struct elems full, keys;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;
	int r = -ENOMEM;

	if (elems_open(&full) < 0 || elems_open(&keys) < 0)
		goto fail;
	container_elems(cfg, c, &full, false);
	container_elems(cfg, c, &keys, true);
	elems_close(&full);
	elems_close(&keys);
	out = open_memstream(&buf, &len);
	if (!out)
		goto fail;
	/* Remove = add then delete in the same transaction: idempotent (deleting a
	 * missing element fails the transaction; adding an identical one does not),
	 * and a key now held by another container with other data fails it. */
	emit_cmds(out, cfg, c, &full, "add");
	if (!add)
		emit_cmds(out, cfg, c, &keys, "delete");
	if (fclose(out) != 0) {
		free(buf);
		goto fail;
	}
	*ret = buf;
	r = 0;
fail:
	elems_free(&full);
	elems_free(&keys);
	return r;
}

static int net_fw_ruleset(const struct net_config *cfg, const struct net_container *c, size_t n, bool blackout, char **ret)
{
	char x[NET_IPSTR_MAX], rng[NET_IPSTR_MAX];
	struct elems prod, nonprod;
	char *buf = NULL;
	size_t len = 0;
	FILE *o;
	int r = -ENOMEM;
	const char *T = cfg->table;

	if (elems_open(&prod) < 0 || elems_open(&nonprod) < 0)
		goto fail;
	/* All containers' elements into two accumulators (one per env for the env sets). */
	for (size_t i = 0; i < n; i++) {
		struct elems *e = c[i].env == NET_ENV_PROD ? &prod : &nonprod;

		container_elems(cfg, &c[i], e, false);
	}
	elems_close(&prod);
	elems_close(&nonprod);
	net_ipstr(cfg->external_ip, x);
	net_ipstr(cfg->network, rng);
	o = open_memstream(&buf, &len);
	if (!o)
		goto fail;

#define ELEMS(i)                                                                                                   \
	do {                                                                                                       \
		if (prod.any[i] || nonprod.any[i])                                                                 \
			fprintf(o, "\t\telements = { %s%s%s }\n", prod.any[i] ? prod.buf[i] : "",                  \
				prod.any[i] && nonprod.any[i] ? ", " : "", nonprod.any[i] ? nonprod.buf[i] : "");    \
	} while (0)

	/* add + delete + define: one transaction that replaces whatever the table held. */
	fprintf(o, "add table ip %s\ndelete table ip %s\ntable ip %s {\n", T, T, T);
	fprintf(o, "\tset prod {\n\t\ttype ipv4_addr\n");
	if (prod.any[E_ENV])
		fprintf(o, "\t\telements = { %s }\n", prod.buf[E_ENV]);
	fprintf(o, "\t}\n\tset nonprod {\n\t\ttype ipv4_addr\n");
	if (nonprod.any[E_ENV])
		fprintf(o, "\t\telements = { %s }\n", nonprod.buf[E_ENV]);
	fprintf(o, "\t}\n\tmap ep_dnat {\n\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n");
	ELEMS(E_DNAT);
	fprintf(o, "\t}\n\tmap ep_snat {\n\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service\n");
	ELEMS(E_SNAT);
	fprintf(o, "\t}\n\tmap passthrough {\n\t\ttype ipv4_addr : ipv4_addr\n");
	ELEMS(E_PT);
	fprintf(o, "\t}\n\tset passthrough_src {\n\t\ttype ipv4_addr\n");
	ELEMS(E_PTSRC);
	fprintf(o, "\t}\n\tset infra {\n\t\ttype ipv4_addr . inet_proto . inet_service\n");
	ELEMS(E_INFRA);
	fprintf(o, "\t}\n\tmap vring_dnat {\n\t\ttype ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . "
		   "inet_service\n");
	ELEMS(E_VRING);
	fprintf(o, "\t}\n\tset blackout {\n\t\ttype ifname\n");
	if (blackout)
		fprintf(o, "\t\telements = { \"%s\" }\n", cfg->bridge);
	fprintf(o, "\t}\n");
#undef ELEMS

	/* vring first (a container's own flows to a peer's well-known port, or to its own endpoint on the
	 * host address: keyed by its VIP); DNAT of endpoints on the host address, from anywhere (other
	 * hosts, containers: hairpin); passthrough sources first: everything they send to the host goes to
	 * their container. */
	fprintf(o,
		"\tchain nat_prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
		"\t\tmeta l4proto { tcp, udp } dnat ip to ip saddr . ip daddr . meta l4proto . th dport map @vring_dnat\n"
		"\t\tip daddr %s dnat ip to ip saddr map @passthrough\n"
		"\t\tip daddr %s meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport map @ep_dnat\n"
		"\t}\n",
		x, x);
	/* The host itself, by its address or by a name that resolves to loopback. */
	fprintf(o,
		"\tchain nat_output {\n\t\ttype nat hook output priority -100; policy accept;\n"
		"\t\tip daddr { %s, 127.0.0.0/8 } meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport map @ep_dnat\n"
		"\t}\n",
		x);
	/* Leaving: loopback-sourced DNAT'd flows take the host address (route_localnet lets the
	 * replies in); container flows: to a passthrough source as the host, from an endpoint port
	 * as host:real_port, else as the host with the environment's port range by conntrack mark. */
	fprintf(o,
		"\tchain nat_postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		"\t\tip saddr 127.0.0.0/8 oifname \"%s\" snat ip to %s\n"
		"\t\tct mark { 0x1, 0x2 } ip daddr @passthrough_src snat ip to %s\n"
		"\t\tct mark { 0x1, 0x2 } meta l4proto { tcp, udp } snat ip to ip saddr . meta l4proto . th sport map @ep_snat\n"
		"\t\tct mark 0x1 meta l4proto { tcp, udp } snat ip to %s:%u-%u\n"
		"\t\tct mark 0x2 meta l4proto { tcp, udp } snat ip to %s:%u-%u\n"
		"\t\tct mark { 0x1, 0x2 } snat ip to %s\n"
		"\t}\n",
		cfg->bridge, x, x, x, NET_PROD_PORT_MIN, NET_PROD_PORT_MAX, x, NET_NONPROD_PORT_MIN,
		NET_NONPROD_PORT_MAX, x);
	/* Forward: blackout; mark new container flows by environment (Treadmill's TM_MARK);
	 * new nonprod -> prod connections refused and logged (Treadmill defines but never applies it).
	 * ICMP, not a TCP reset: conntrack translates an ICMP error back through the DNAT of a
	 * hairpinned flow (host:real_port), a locally made reset would leave with the VIP. */
	fprintf(o,
		"\tchain filter_forward {\n\t\ttype filter hook forward priority mangle; policy accept;\n"
		"\t\tiifname @blackout drop\n"
		"\t\toifname @blackout drop\n"
		"\t\tct state new ip saddr @prod ct mark set 0x1\n"
		"\t\tct state new ip saddr @nonprod ct mark set 0x2\n"
		"\t\tct state new ip saddr @nonprod ip daddr @prod counter log prefix \"%s nonprod->prod: \" reject with icmp type port-unreachable\n"
		"\t}\n}\n",
		T);
	if (fclose(o) != 0) {
		free(buf);
		goto fail;
	}
	*ret = buf;
	r = 0;
fail:
	elems_free(&prod);
	elems_free(&nonprod);
	return r;
}

static int fw_prepare(const struct net_config *cfg, const struct net_container *c, size_t n, struct error *err)
{
	int r = net_config_check(cfg, err);

	for (size_t i = 0; r >= 0 && i < n; i++)
		r = check_container(&c[i], err);
	return r;
}

int net_fw_rebuild(const struct net_config *cfg, const struct net_container *c, size_t n, bool blackout,
		   struct error *err)
{
	_cleanup_free_ char *cmds = NULL;
	int r;

	r = fw_prepare(cfg, c, n, err);
	if (r < 0)
		return r;
	if (net_fw_ruleset(cfg, c, n, blackout, &cmds) < 0)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = net_nft_run(cmds, NULL, err);
	if (r < 0)
		return error_prefix(err, "rebuild of table %s", cfg->table);
	return 0;
}

static int fw_change(const struct net_config *cfg, const struct net_container *c_in, bool add, struct error *err)
{
	_cleanup_free_ char *cmds = NULL;
	struct net_container cc = *c_in, *c = &cc;
	char b[NET_IPSTR_MAX];
	int r;

	cc.n_vring = 0; /* the agent's (net_vring_change, net_vring_flush) */
	r = fw_prepare(cfg, c, 1, err);
	if (r < 0)
		return r;
	if (net_fw_container_cmds(cfg, c, add, &cmds) < 0)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = net_nft_run(cmds, NULL, err);
	if (r < 0)
		return error_prefix(err, "%s rules of %s (%s)", add ? "add" : "remove", c->owner ? c->owner : "?",
				    net_ipstr(c->vip, b));
	return 0;
}

int net_fw_add(const struct net_config *cfg, const struct net_container *c, struct error *err)
{
	return fw_change(cfg, c, true, err);
}

int net_fw_remove(const struct net_config *cfg, const struct net_container *c, struct error *err)
{
	return fw_change(cfg, c, false, err);
}

int net_fw_blackout(const struct net_config *cfg, bool on, struct error *err)
{
	_cleanup_free_ char *cmds = NULL, *sysctl = NULL;
	int r;

	r = net_config_check(cfg, err);
	if (r < 0)
		return r;
	cmds = strdup_printf("add element ip %s blackout { \"%s\" }\n%s", cfg->table, cfg->bridge,
			     on ? "" : "delete element ip ");
	if (cmds && !on) {
		char *full = strdup_printf("%s%s blackout { \"%s\" }\n", cmds, cfg->table, cfg->bridge);

		free(cmds);
		cmds = full;
	}
	sysctl = strdup_printf("ipv4/conf/%s/forwarding", cfg->bridge);
	if (!cmds || !sysctl)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = net_nft_run(cmds, NULL, err);
	if (r < 0)
		return error_prefix(err, "blackout %s", on ? "on" : "off");
	r = net_sysctl_write(sysctl, on ? "0" : "1");
	if (r < 0 && r != -ENOENT)
		return error_sys(err, -r, "network: blackout: %s forwarding", cfg->bridge);
	return 0;
}

int net_fw_teardown(const struct net_config *cfg, struct error *err)
{
	_cleanup_free_ char *cmds = NULL;
	int r;

	r = net_config_check(cfg, err);
	if (r < 0)
		return r;
	cmds = strdup_printf("add table ip %s\ndelete table ip %s\n", cfg->table, cfg->table);
	if (!cmds)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = net_nft_run(cmds, NULL, err);
	if (r < 0)
		return error_prefix(err, "delete table %s", cfg->table);
	return 0;
}
