/* agent-net.c: the node's container network at agent start (docs/NETWORK.md
 * "Use by the node"): configuration, bridge and gateway, VIP reconcile, the
 * whole firewall table rebuilt from the live containers' records in one
 * transaction, leaked veths removed; blackout on and off. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../net/net.h"
#include "node-internal.h"

/* Taken while a node chooses its range and creates its bridge, so two agents
 * starting at once on one machine never pick the same free range. */
#define NET_LOCK_FILE "/run/treadle-net.lock"
/* Treadmill's host setting: the ephemeral ports of the host stay out of the
 * endpoints' and the masquerade's ranges (32768-49151). */
#define HOST_PORT_RANGE "49152 65535"
#define IFNAMSIZ_MAX 16

/* The interface of the IPv4 default route (/proc/net/route of our netns). */
static int default_iface(char ret[IFNAMSIZ_MAX])
{
	_cleanup_free_ char *text = NULL;
	char *save = NULL;

	if (read_file("/proc/net/route", &text, NULL) < 0)
		return -ENOENT;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char ifn[64];
		unsigned dst;

		size_t n;

		if (sscanf(l, "%63s %x", ifn, &dst) == 2 && dst == 0 && (n = strlen(ifn)) < IFNAMSIZ_MAX) {
			memcpy(ret, ifn, n + 1);
			return 0;
		}
	}
	return -ENOENT;
}

static void ipstr(struct in_addr a, char *buf)
{
	if (!inet_ntop(AF_INET, &a, buf, 16))
		snprintf(buf, 16, "0.0.0.0");
}

/* The range this root used last (its old N/node.json), to keep its VIPs valid. */
static int previous_range(const char *root, const char *bridge, struct net_config *cfg)
{
	_cleanup_free_ char *p = node_path(root, NODE_SETTINGS_FILE), *text = NULL;
	_cleanup_json_ json_t *j = NULL;
	const json_t *n;
	const char *b, *range, *gw;

	if (!p || read_file(p, &text, NULL) < 0 || !(j = json_loads(text, 0, NULL)))
		return -ENOENT;
	n = json_object_get(j, "network");
	b = json_string_value(json_object_get(n, "bridge"));
	range = json_string_value(json_object_get(n, "range"));
	gw = json_string_value(json_object_get(n, "gateway"));
	if (!b || strcmp(b, bridge) || !range || !gw || net_parse_cidr(range, &cfg->network, &cfg->prefixlen) < 0 ||
	    net_parse_ip(gw, &cfg->gateway) < 0)
		return -ENOENT;
	return 0;
}

/* The default gateway of a range: Treadmill's for Treadmill's range, else its last host address. */
static void default_gateway(struct net_config *cfg)
{
	struct in_addr tnet;
	unsigned tlen;

	if (net_parse_cidr(NET_DEFAULT_RANGE, &tnet, &tlen) == 0 && tnet.s_addr == cfg->network.s_addr &&
	    tlen == cfg->prefixlen) {
		(void)net_parse_ip(NET_DEFAULT_GATEWAY, &cfg->gateway);
		return;
	}
	cfg->gateway.s_addr = htonl((ntohl(cfg->network.s_addr) | ~(~0u << (32 - cfg->prefixlen))) - 1);
}

/* Choose the range (under NET_LOCK_FILE): given, else the last one, else the first free 192.168.<k>.0/24. */
static int choose_range(struct agent *a, struct error *err)
{
	const struct node_agent_options *o = a->o;
	struct net_config *cfg = &a->net;
	_cleanup_free_ char *desc = NULL;
	int r;

	if (o->net_range) {
		if (net_parse_cidr(o->net_range, &cfg->network, &cfg->prefixlen) < 0)
			return error_set(err, ERR_USAGE, EINVAL, "--network: expected a.b.c.d/n (host bits 0), got '%s'",
					 o->net_range);
		if (o->net_gateway) {
			if (net_parse_ip(o->net_gateway, &cfg->gateway) < 0)
				return error_set(err, ERR_USAGE, EINVAL, "--gateway: expected an address, got '%s'",
						 o->net_gateway);
		} else
			default_gateway(cfg);
		r = net_config_check(cfg, err);
		if (r < 0)
			return r;
		r = net_range_conflict(cfg, &desc, err);
		if (r < 0)
			return r;
		if (r > 0)
			return error_set(err, ERR_PERM, EADDRINUSE,
					 "network: range %s overlaps %s (another cell on this machine?): choose another with --network",
					 o->net_range, desc ? desc : "an address here");
		return 0;
	}
	if (previous_range(o->root, cfg->bridge, cfg) == 0 && net_config_check(cfg, NULL) == 0 &&
	    net_range_conflict(cfg, NULL, NULL) == 0)
		return 0;
	for (unsigned k = 0; k < 254; k++) {
		cfg->network.s_addr = htonl((192u << 24) | (168u << 16) | (k << 8));
		cfg->prefixlen = 24;
		default_gateway(cfg);
		r = net_range_conflict(cfg, NULL, err);
		if (r < 0)
			return r;
		if (r == 0)
			return 0;
	}
	return error_set(err, ERR_TEMP, EADDRINUSE, "network: no free 192.168.<k>.0/24 range here: give one with --network");
}

/* Veths in our bridge that no live record names (a crash between the veth and
 * the record, or a record already gone). */
static void veths_sweep(struct agent *a, struct net_record **recs, size_t n)
{
	_cleanup_strv_free_ char **ports = NULL;
	struct error e = ERROR_INIT;

	if (net_bridge_ports(&a->net, &ports, &e) < 0) {
		LOG("network: %s", e.msg ? e.msg : "listing the bridge ports failed");
		error_clear(&e);
		return;
	}
	for (char **p = ports; *p; p++) {
		bool owned = false;

		for (size_t i = 0; i < n && !owned; i++)
			owned = recs[i]->veth && !strcmp(recs[i]->veth, *p);
		if (owned)
			continue;
		if (net_container_teardown(&a->net, *p, (struct in_addr){ 0 }, &e) < 0)
			LOG("network: %s", e.msg ? e.msg : "veth teardown failed");
		else
			LOG("network: removed %s (no live container owns it)", *p);
		error_clear(&e);
	}
}

static void warn_log(const char *msg)
{
	LOG("%s", msg);
}

/* VIP records of containers gone, then the whole table from the records of the
 * live ones, all under the node's network lock: a `sproc run` or cleanup
 * changes records and elements either before or after, never in between. */
static int reconcile(struct agent *a, struct error *err)
{
	_cleanup_free_ char *apps = node_path(a->o->root, NODE_DIR_APPS), *vips = sproc_net_vips_dir(a->o->root);
	_cleanup_strv_free_ char **live = NULL;
	struct net_record **recs = NULL;
	size_t n = 0;
	int r, freed, lock;

	if (!apps || !vips)
		return error_sys(err, ENOMEM, "network");
	if (mkdir_p(vips, 0755) < 0)
		return error_sys(err, errno, "network: %s", vips);
	lock = sproc_net_lock(a->o->root);
	if (lock < 0)
		return error_sys(err, -lock, "network: lock");
	r = dir_list(apps, 1, &live);
	if (r < 0) {
		sproc_net_unlock(&lock);
		return error_sys(err, -r, "network: listing %s", apps);
	}
	freed = net_vip_reconcile(vips, live, err);
	if (freed < 0) {
		sproc_net_unlock(&lock);
		return freed;
	}
	if (freed > 0)
		LOG("network: released %d VIP(s) of containers gone", freed);
	r = sproc_net_rebuild(a->o->root, &a->net, a->net_blackout, warn_log, &recs, &n, err);
	if (r >= 0)
		veths_sweep(a, recs, n);
	sproc_net_unlock(&lock);
	for (size_t i = 0; i < n; i++)
		net_record_free(recs[i]);
	free(recs);
	if (r >= 0)
		LOG("network: bridge %s, range %s, table %s rebuilt for %zu container(s)%s", a->net.bridge,
		    a->ns.net_range, a->net.table, n, a->net_blackout ? " (blacked out)" : "");
	return r;
}

int agent_net_init(struct agent *a, struct error *err)
{
	const struct node_agent_options *o = a->o;
	char ifn[IFNAMSIZ_MAX];
	const char *ext = o->net_ext_dev;
	struct in_addr ip;
	unsigned mtu;
	_cleanup_free_ char *bo = node_path(o->root, SPROC_NET_BLACKOUT);
	_cleanup_close_ int lock = -1;
	int r;

	if (o->net_range && !strcmp(o->net_range, "none"))
		return 0;
	if (!ext) {
		if (default_iface(ifn) < 0) {
			LOG("network: no default route, no external interface: containers get no network");
			return 0;
		}
		ext = ifn;
	}
	r = net_iface_info(ext, &ip, &mtu, err);
	if (r < 0) {
		if (o->net_ext_dev)
			return r;
		LOG("network: %s: containers get no network", err->msg ? err->msg : ext);
		error_clear(err);
		return 0;
	}
	net_node_names(o->root, a->net_bridge, a->net_table);
	net_config_init(&a->net, a->net_bridge, a->net_table, ip);
	a->net.mtu = mtu;
	lock = open(NET_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock >= 0)
		(void)flock(lock, LOCK_EX);
	r = choose_range(a, err);
	if (r >= 0)
		r = net_bridge_setup(&a->net, true, err);
	if (r < 0)
		return r;
	if (lock >= 0)
		close(TAKE_FD(lock));
	snprintf(a->net_range, sizeof(a->net_range), "%s/%u", inet_ntoa(a->net.network), a->net.prefixlen);
	ipstr(a->net.gateway, a->net_gateway);
	ipstr(a->net.external_ip, a->net_ext_ip);
	a->ns.net_bridge = a->net_bridge;
	a->ns.net_table = a->net_table;
	a->ns.net_range = a->net_range;
	a->ns.net_gateway = a->net_gateway;
	a->ns.net_external_ip = a->net_ext_ip;
	a->ns.net_mtu = mtu;
	a->net_on = true;
	r = write_string_file("/proc/sys/net/ipv4/ip_local_port_range", HOST_PORT_RANGE);
	if (r < 0)
		LOG("network: ip_local_port_range: %s", strerror(-r));
	a->net_blackout = bo && path_exists(bo);
	return reconcile(a, err);
}

void agent_net_blackout(struct agent *a, bool on)
{
	_cleanup_free_ char *bo = node_path(a->o->root, SPROC_NET_BLACKOUT);
	struct error e = ERROR_INIT;
	int lock;

	if (!a->net_on || a->net_blackout == on || !bo)
		return;
	lock = sproc_net_lock(a->o->root); /* a sproc's rebuild reads the state file */
	/* the state first: a rebuild after a crash applies it */
	if (on)
		(void)touch(bo);
	else
		(void)unlink(bo);
	if (net_fw_blackout(&a->net, on, &e) < 0)
		LOG("network: blackout %s: %s", on ? "on" : "off", e.msg ? e.msg : "failed");
	else
		LOG("network: blackout %s", on ? "on: forwarding off" : "off");
	sproc_net_unlock(&lock);
	error_clear(&e);
	a->net_blackout = on;
}
