/* net-link.c: bridge, veth pairs, addresses and routes through rtnetlink
 * (libnl-route-3).  No `ip` child process: one RTM_NEWLINK creates a
 * container's veth pair with its peer already inside the container's netns. */
#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_bridge.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <string.h>

#include "../basic/util.h"
#include "net-internal.h"
#include "net.h"

static void nl_sockp(struct nl_sock **s) { if (*s) nl_socket_free(*s); }
static void rtnl_linkp(struct rtnl_link **l) { if (*l) rtnl_link_put(*l); }
static void rtnl_addrp(struct rtnl_addr **a) { if (*a) rtnl_addr_put(*a); }
static void rtnl_routep(struct rtnl_route **r) { if (*r) rtnl_route_put(*r); }
static void rtnl_neighp(struct rtnl_neigh **n) { if (*n) rtnl_neigh_put(*n); }
static void nl_addrp(struct nl_addr **a) { if (*a) nl_addr_put(*a); }
static void nl_cachep(struct nl_cache **c) { if (*c) nl_cache_free(*c); }
#define _cleanup_nlsock_ _cleanup_(nl_sockp)
#define _cleanup_link_ _cleanup_(rtnl_linkp)
#define _cleanup_addr_ _cleanup_(rtnl_addrp)
#define _cleanup_route_ _cleanup_(rtnl_routep)
#define _cleanup_neigh_ _cleanup_(rtnl_neighp)
#define _cleanup_nladdr_ _cleanup_(nl_addrp)
#define _cleanup_cache_ _cleanup_(nl_cachep)

/* libnl's NLE_* -> -errno (the kernel's errno is folded into NLE codes). */
static int nle_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_EXIST: return -EEXIST;
	case NLE_NODEV:
	case NLE_OBJ_NOTFOUND: return -ENODEV;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_PERM:
	case NLE_NOACCESS: return -EPERM;
	case NLE_INVAL: return -EINVAL;
	case NLE_BUSY: return -EBUSY;
	case NLE_RANGE: return -ERANGE;
	case NLE_AF_NOSUPPORT:
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	default: return -EIO;
	}
}

static int nl_fail(struct error *err, int nle, const char *what, const char *name)
{
	int r = nle_errno(nle);

	error_set(err, ERR_TEMP, -r, "network: %s %s: %s", what, name, nl_geterror(nle));
	return r;
}

/* A connected NETLINK_ROUTE socket in the calling thread's current netns. */
static int rt_open(struct nl_sock **ret, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = nl_socket_alloc();
	int r;

	if (!s)
		return error_set(err, ERR_TEMP, ENOMEM, "network: netlink socket: out of memory");
	r = nl_connect(s, NETLINK_ROUTE);
	if (r < 0)
		return nl_fail(err, r, "netlink", "connect");
	*ret = TAKE_PTR(s);
	return 0;
}

static int addr4(struct in_addr a, unsigned prefixlen, struct nl_addr **ret)
{
	struct nl_addr *n = nl_addr_build(AF_INET, &a, sizeof(a));

	if (!n)
		return -ENOMEM;
	nl_addr_set_prefixlen(n, (int)prefixlen);
	*ret = n;
	return 0;
}

static int link_ifindex(struct nl_sock *s, const char *name, int *ret)
{
	_cleanup_link_ struct rtnl_link *l = NULL;
	int r = rtnl_link_get_kernel(s, 0, name, &l);

	if (r < 0)
		return nle_errno(r);
	*ret = rtnl_link_get_ifindex(l);
	return 0;
}

static int link_set_up(struct nl_sock *s, const char *name, unsigned mtu, struct error *err)
{
	_cleanup_link_ struct rtnl_link *cur = NULL, *chg = rtnl_link_alloc();
	int r;

	if (!chg)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = rtnl_link_get_kernel(s, 0, name, &cur);
	if (r < 0)
		return nl_fail(err, r, "link", name);
	rtnl_link_set_flags(chg, IFF_UP);
	if (mtu)
		rtnl_link_set_mtu(chg, mtu);
	r = rtnl_link_change(s, cur, chg, 0);
	if (r < 0)
		return nl_fail(err, r, "link up", name);
	return 0;
}

static int addr_add(struct nl_sock *s, int ifindex, struct in_addr a, unsigned prefixlen, int scope,
		    struct error *err)
{
	_cleanup_addr_ struct rtnl_addr *ra = rtnl_addr_alloc();
	_cleanup_nladdr_ struct nl_addr *local = NULL;
	char buf[NET_IPSTR_MAX];
	int r;

	if (!ra || addr4(a, prefixlen, &local) < 0)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_family(ra, AF_INET);
	r = rtnl_addr_set_local(ra, local);
	if (r >= 0) {
		rtnl_addr_set_prefixlen(ra, (int)prefixlen);
		rtnl_addr_set_scope(ra, scope);
		r = rtnl_addr_add(s, ra, NLM_F_REPLACE);
	}
	if (r < 0)
		return nl_fail(err, r, "address", net_ipstr(a, buf));
	return 0;
}

/* Route dst/prefixlen via gw (0: on-link) on ifindex with optional preferred source. */
static int route_add(struct nl_sock *s, int ifindex, struct in_addr dst, unsigned prefixlen, struct in_addr gw,
		     struct in_addr src, struct error *err)
{
	_cleanup_route_ struct rtnl_route *rt = rtnl_route_alloc();
	_cleanup_nladdr_ struct nl_addr *d = NULL, *g = NULL, *p = NULL;
	struct rtnl_nexthop *nh;
	char buf[NET_IPSTR_MAX];
	int r;

	if (!rt || addr4(dst, prefixlen, &d) < 0)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	rtnl_route_set_family(rt, AF_INET);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_protocol(rt, RTPROT_BOOT);
	rtnl_route_set_scope(rt, gw.s_addr ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
	rtnl_route_set_type(rt, RTN_UNICAST);
	if (rtnl_route_set_dst(rt, d) < 0)
		return error_set(err, ERR_TEMP, EINVAL, "network: route: bad destination");
	if (src.s_addr) {
		if (addr4(src, 32, &p) < 0 || rtnl_route_set_pref_src(rt, p) < 0)
			return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	}
	nh = rtnl_route_nh_alloc();
	if (!nh)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	rtnl_route_nh_set_ifindex(nh, ifindex);
	if (gw.s_addr) {
		if (addr4(gw, 32, &g) < 0) {
			rtnl_route_nh_free(nh);
			return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
		}
		rtnl_route_nh_set_gateway(nh, g);
	}
	rtnl_route_add_nexthop(rt, nh);
	r = rtnl_route_add(s, rt, NLM_F_CREATE | NLM_F_REPLACE);
	if (r < 0)
		return nl_fail(err, r, "route to", prefixlen ? net_ipstr(dst, buf) : "default");
	return 0;
}

int net_iface_info(const char *ifname, struct in_addr *ret_ip, unsigned *ret_mtu, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	_cleanup_link_ struct rtnl_link *l = NULL;
	_cleanup_cache_ struct nl_cache *addrs = NULL;
	struct in_addr found = { 0 };
	int r, ifindex;

	r = rt_open(&s, err);
	if (r < 0)
		return r;
	r = rtnl_link_get_kernel(s, 0, ifname, &l);
	if (r < 0)
		return nl_fail(err, r, "interface", ifname);
	ifindex = rtnl_link_get_ifindex(l);
	r = rtnl_addr_alloc_cache(s, &addrs);
	if (r < 0)
		return nl_fail(err, r, "addresses of", ifname);
	for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *local = rtnl_addr_get_local(a);

		if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != AF_INET || !local ||
		    nl_addr_get_len(local) != 4)
			continue;
		memcpy(&found, nl_addr_get_binary_addr(local), 4);
		break;
	}
	if (ret_ip) {
		if (!found.s_addr)
			return error_set(err, ERR_PERM, EADDRNOTAVAIL, "network: interface %s has no IPv4 address",
					 ifname);
		*ret_ip = found;
	}
	if (ret_mtu)
		*ret_mtu = rtnl_link_get_mtu(l);
	return 0;
}

int net_bridge_setup(const struct net_config *cfg, bool enable_ip_forward, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	_cleanup_link_ struct rtnl_link *br = NULL, *cur = NULL;
	_cleanup_nladdr_ struct nl_addr *mac = NULL;
	_cleanup_free_ char *p1 = NULL, *p2 = NULL;
	uint32_t gw = ntohl(cfg->gateway.s_addr);
	/* Locally administered, derived from the gateway: the same across restarts. */
	uint8_t hw[6] = { 0x02, 0x74, (uint8_t)(gw >> 24), (uint8_t)(gw >> 16), (uint8_t)(gw >> 8), (uint8_t)gw };
	int r, ifindex;

	r = net_config_check(cfg, err);
	if (r < 0)
		return r;
	r = rt_open(&s, err);
	if (r < 0)
		return r;
	br = rtnl_link_alloc();
	mac = nl_addr_build(AF_LLC, hw, sizeof(hw));
	if (!br || !mac)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = rtnl_link_set_type(br, "bridge");
	if (r < 0)
		return nl_fail(err, r, "bridge", cfg->bridge);
	rtnl_link_set_name(br, cfg->bridge);
	rtnl_link_set_addr(br, mac);
	rtnl_link_set_mtu(br, cfg->mtu ? cfg->mtu : 1500);
	rtnl_link_set_flags(br, IFF_UP);
	r = rtnl_link_add(s, br, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0 && nle_errno(r) != -EEXIST)
		return nl_fail(err, r, "create bridge", cfg->bridge);
	r = rtnl_link_get_kernel(s, 0, cfg->bridge, &cur);
	if (r < 0)
		return nl_fail(err, r, "bridge", cfg->bridge);
	if (!rtnl_link_get_type(cur) || strcmp(rtnl_link_get_type(cur), "bridge") != 0)
		return error_set(err, ERR_PERM, EEXIST, "network: bridge: %s exists and is not a bridge", cfg->bridge);
	ifindex = rtnl_link_get_ifindex(cur);
	r = link_set_up(s, cfg->bridge, cfg->mtu, err);
	if (r < 0)
		return r;
	r = addr_add(s, ifindex, cfg->gateway, cfg->prefixlen, RT_SCOPE_UNIVERSE, err);
	if (r < 0)
		return error_prefix(err, "bridge %s", cfg->bridge);
	p1 = strdup_printf("ipv4/conf/%s/route_localnet", cfg->bridge);
	p2 = strdup_printf("ipv4/conf/%s/forwarding", cfg->bridge);
	if (!p1 || !p2)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	/* route_localnet: replies to the host's 127.x connections DNAT'd to a container come back in here. */
	r = net_sysctl_write(p1, "1");
	if (r >= 0)
		r = net_sysctl_write(p2, "1");
	if (r >= 0 && enable_ip_forward)
		r = net_sysctl_write("ipv4/ip_forward", "1");
	if (r < 0)
		return error_sys(err, -r, "network: bridge %s: sysctl", cfg->bridge);
	return 0;
}

static int link_delete(struct nl_sock *s, const char *name, struct error *err)
{
	_cleanup_link_ struct rtnl_link *l = rtnl_link_alloc();
	int r;

	if (!l)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	rtnl_link_set_name(l, name);
	r = rtnl_link_delete(s, l);
	if (r < 0 && nle_errno(r) != -ENODEV)
		return nl_fail(err, r, "delete link", name);
	return 0;
}

int net_bridge_remove(const struct net_config *cfg, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	int r;

	if (!net_ifname_valid(cfg->bridge))
		return error_set(err, ERR_PERM, EINVAL, "network: bridge: invalid interface name");
	r = rt_open(&s, err);
	if (r < 0)
		return r;
	return link_delete(s, cfg->bridge, err);
}

int net_bridge_ports(const struct net_config *cfg, char ***ret, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	_cleanup_cache_ struct nl_cache *links = NULL;
	_cleanup_strv_free_ char **l = strv_new();
	int r, br;

	if (!l)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = rt_open(&s, err);
	if (r < 0)
		return r;
	r = link_ifindex(s, cfg->bridge, &br);
	if (r == -ENODEV) {
		*ret = TAKE_PTR(l);
		return 0;
	}
	if (r < 0)
		return error_sys(err, -r, "network: bridge %s", cfg->bridge);
	r = rtnl_link_alloc_cache(s, AF_UNSPEC, &links);
	if (r < 0)
		return nl_fail(err, r, "links", "list");
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *k = (struct rtnl_link *)o;

		if (rtnl_link_get_master(k) == br && strv_extend(&l, rtnl_link_get_name(k)) < 0)
			return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	}
	strv_sort(l);
	*ret = TAKE_PTR(l);
	return 0;
}

static int net_neigh_flush(const char *ifname, struct in_addr ip, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	_cleanup_neigh_ struct rtnl_neigh *n = rtnl_neigh_alloc();
	_cleanup_nladdr_ struct nl_addr *dst = NULL;
	int r, ifindex;

	if (!n || addr4(ip, 32, &dst) < 0)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = rt_open(&s, err);
	if (r < 0)
		return r;
	r = link_ifindex(s, ifname, &ifindex);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return error_sys(err, -r, "network: link %s", ifname);
	rtnl_neigh_set_ifindex(n, ifindex);
	rtnl_neigh_set_family(n, AF_INET);
	rtnl_neigh_set_dst(n, dst);
	r = rtnl_neigh_delete(s, n, 0);
	if (r < 0 && nle_errno(r) != -ENODEV)
		return nl_fail(err, r, "neighbour on", ifname);
	return 0;
}

/* Hairpin mode on a bridge port (RTM_SETLINK, AF_BRIDGE, IFLA_PROTINFO/IFLA_BRPORT_MODE).
 * With br_netfilter (bridge-nf-call-iptables=1, as on these machines and wherever
 * Docker runs), a packet DNAT'd in PREROUTING to an address behind the port it came
 * in on is delivered at layer 2 back out of that port, which the bridge refuses
 * unless the port is in hairpin mode: a container could not reach its own
 * endpoint through the host address. */
static int port_hairpin(struct nl_sock *s, int ifindex, struct error *err)
{
	struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = ifindex };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
	struct nlattr *pi;
	int r;

	if (!m)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	if (r >= 0 && !(pi = nla_nest_start(m, IFLA_PROTINFO | NLA_F_NESTED)))
		r = -NLE_NOMEM;
	if (r >= 0)
		r = nla_put_u8(m, IFLA_BRPORT_MODE, 1);
	if (r >= 0) {
		nla_nest_end(m, pi);
		r = nl_send_sync(s, m);	/* frees m */
	} else
		nlmsg_free(m);
	if (r < 0)
		return nl_fail(err, r, "hairpin on port", "veth");
	return 0;
}

/* Inside the container's netns (the thread has entered it). */
static int container_inside(const struct net_config *cfg, enum net_mode mode, struct in_addr vip, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	struct in_addr none = { 0 }, any = { 0 };
	int r, eth0;

	r = rt_open(&s, err);
	if (r < 0)
		return r;
	r = link_set_up(s, "lo", 0, err);
	if (r < 0)
		return r;
	r = link_ifindex(s, NET_CONTAINER_IFNAME, &eth0);
	if (r < 0)
		return error_sys(err, -r, "network: container %s", NET_CONTAINER_IFNAME);
	r = net_sysctl_write("ipv4/conf/" NET_CONTAINER_IFNAME "/arp_ignore", "3");
	if (r >= 0)
		r = net_sysctl_write("ipv4/ip_local_port_range", "49152 65535");
	if (r < 0)
		return error_sys(err, -r, "network: container sysctl");
	if (mode == NET_SHARED_IP) {
		r = addr_add(s, eth0, cfg->external_ip, 32, RT_SCOPE_HOST, err);
		if (r < 0)
			return r;
	}
	r = addr_add(s, eth0, vip, 32, RT_SCOPE_LINK, err);
	if (r < 0)
		return r;
	r = link_set_up(s, NET_CONTAINER_IFNAME, 0, err);
	if (r < 0)
		return r;
	r = route_add(s, eth0, cfg->gateway, 32, none, none, err);
	if (r < 0)
		return r;
	r = route_add(s, eth0, any, 0, cfg->gateway, mode == NET_SHARED_IP ? cfg->external_ip : vip, err);
	if (r < 0)
		return r;
	if (mode == NET_SHARED_IP) {
		/* Treadmill: traffic to the VIP is DNAT'd to the host address the app binds, and leaves as the VIP. */
		char e[NET_IPSTR_MAX], v[NET_IPSTR_MAX];
		/* A new netns: create only (a delete would make closing the socket wait for RCU). */
		_cleanup_free_ char *cmds = strdup_printf(
			"table ip treadle_shared_ip {\n"
			"\tchain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
			"\t\tiifname \"%s\" dnat ip to %s\n\t}\n"
			"\tchain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
			"\t\toifname \"%s\" snat ip to %s\n\t}\n}\n",
			NET_CONTAINER_IFNAME, net_ipstr(cfg->external_ip, e), NET_CONTAINER_IFNAME, net_ipstr(vip, v));

		if (!cmds)
			return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
		r = net_nft_run_once(cmds, err);
		if (r < 0)
			return error_prefix(err, "shared_ip");
	}
	return 0;
}

int net_container_setup(const struct net_config *cfg, enum net_mode mode, const char *host_ifname, int netns_fd,
			struct in_addr vip, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	_cleanup_link_ struct rtnl_link *veth = NULL;
	struct rtnl_link *peer;
	uint32_t v = ntohl(vip.s_addr), net = ntohl(cfg->network.s_addr), mask;
	char buf[NET_IPSTR_MAX];
	int r, br, port, saved = -1;

	if (mode == NET_SHARED_NETWORK)
		return 0;
	r = net_config_check(cfg, err);
	if (r < 0)
		return r;
	mask = ~0u << (32 - cfg->prefixlen);
	if ((v & mask) != net || v == net || v == (net | ~mask) || vip.s_addr == cfg->gateway.s_addr)
		return error_set(err, ERR_PERM, EINVAL, "network: vip %s: not a container address of the range",
				 net_ipstr(vip, buf));
	if (!net_ifname_valid(host_ifname))
		return error_set(err, ERR_PERM, EINVAL, "network: veth: invalid interface name '%s'",
				 host_ifname ? host_ifname : "");
	if (netns_fd < 0)
		return error_set(err, ERR_PERM, EBADF, "network: no network namespace given");
	r = rt_open(&s, err);
	if (r < 0)
		return r;
	r = link_ifindex(s, cfg->bridge, &br);
	if (r < 0)
		return error_sys(err, -r, "network: bridge %s", cfg->bridge);
	/* A reused VIP: the host's ARP entry still holds the previous container's MAC. */
	r = net_neigh_flush(cfg->bridge, vip, err);
	if (r < 0)
		return r;

	veth = rtnl_link_veth_alloc();
	if (!veth)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	peer = rtnl_link_veth_get_peer(veth);
	rtnl_link_set_name(veth, host_ifname);
	rtnl_link_set_mtu(veth, cfg->mtu ? cfg->mtu : 1500);
	rtnl_link_set_master(veth, br);
	rtnl_link_set_flags(veth, IFF_UP);
	rtnl_link_set_name(peer, NET_CONTAINER_IFNAME);
	rtnl_link_set_mtu(peer, cfg->mtu ? cfg->mtu : 1500);
	rtnl_link_set_ns_fd(peer, netns_fd);
	rtnl_link_put(peer);	/* get_peer took a reference */
	r = rtnl_link_add(s, veth, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0)
		return nl_fail(err, r, "create veth", host_ifname);
	r = link_ifindex(s, host_ifname, &port);
	if (r < 0)
		r = error_sys(err, -r, "network: veth %s", host_ifname);
	else
		r = port_hairpin(s, port, err);
	if (r < 0) {
		(void)link_delete(s, host_ifname, NULL);
		return r;
	}

	r = net_netns_enter(netns_fd, &saved);
	if (r < 0)
		error_sys(err, -r, "network: enter container netns");
	else
		r = container_inside(cfg, mode, vip, err);
	if (net_netns_leave(saved) < 0 && r >= 0)
		r = error_sys(err, errno, "network: return to host netns");
	if (r < 0) {
		(void)link_delete(s, host_ifname, NULL);
		return error_prefix(err, "container %s", host_ifname);
	}
	return 0;
}

int net_container_teardown(const struct net_config *cfg, const char *host_ifname, struct in_addr vip,
			   struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	int r;

	if (!net_ifname_valid(host_ifname))
		return error_set(err, ERR_PERM, EINVAL, "network: veth: invalid interface name");
	r = rt_open(&s, err);
	if (r < 0)
		return r;
	r = link_delete(s, host_ifname, err);
	if (r < 0)
		return r;
	if (vip.s_addr)
		return net_neigh_flush(cfg->bridge, vip, err);
	return 0;
}

int net_range_conflict(const struct net_config *cfg, char **ret_desc, struct error *err)
{
	_cleanup_nlsock_ struct nl_sock *s = NULL;
	_cleanup_cache_ struct nl_cache *addrs = NULL;
	uint32_t net = ntohl(cfg->network.s_addr);
	int r, br = 0;

	r = rt_open(&s, err);
	if (r < 0)
		return r;
	if (cfg->bridge)
		(void)link_ifindex(s, cfg->bridge, &br);
	r = rtnl_addr_alloc_cache(s, &addrs);
	if (r < 0)
		return nl_fail(err, r, "addresses", "list");
	for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *local = rtnl_addr_get_local(a);
		uint32_t ip, mask;
		unsigned plen;
		struct in_addr in;
		char ib[NET_IPSTR_MAX], name[IFNAMSIZ] = "?";

		if (rtnl_addr_get_family(a) != AF_INET || !local || nl_addr_get_len(local) != 4 ||
		    (br > 0 && rtnl_addr_get_ifindex(a) == br))
			continue;
		memcpy(&in, nl_addr_get_binary_addr(local), 4);
		ip = ntohl(in.s_addr);
		if ((ip >> 24) == 127)
			continue;
		plen = (unsigned)rtnl_addr_get_prefixlen(a);
		plen = MIN(plen, cfg->prefixlen);
		mask = plen ? ~0u << (32 - plen) : 0;
		if ((ip & mask) != (net & mask))
			continue;
		if (ret_desc) {
			_cleanup_link_ struct rtnl_link *l = NULL;

			if (rtnl_link_get_kernel(s, rtnl_addr_get_ifindex(a), NULL, &l) >= 0)
				snprintf(name, sizeof(name), "%s", rtnl_link_get_name(l));
			*ret_desc = strdup_printf("%s/%d on %s", net_ipstr(in, ib), rtnl_addr_get_prefixlen(a), name);
		}
		return 1;
	}
	return 0;
}
