/* net.h: the node's container network: links and addresses (netlink), VIPs
 * (durable records), the firewall (nftables).  See docs/NETWORK.md.
 *
 * Domain layer: includes src/basic and external libraries (libnl-route-3,
 * libnftables, libnetfilter_conntrack) only.  Every call acts on the network
 * namespace of the calling thread ("the host"), except where a netns fd is
 * passed; no call forks or runs `ip`/`nft`.  Library code never prints:
 * failures fill `struct error` (ERR_PERM for bad input, ERR_TEMP otherwise)
 * and return a negative errno. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../basic/error.h"

/* Treadmill's defaults (treadmill-architecture.md §6.1). */
#define NET_DEFAULT_RANGE "192.168.0.0/16"
#define NET_DEFAULT_GATEWAY "192.168.254.254"
/* Source-port ranges of masqueraded container traffic (and of endpoints' real ports). */
#define NET_PROD_PORT_MIN 32768
#define NET_PROD_PORT_MAX 40959
#define NET_NONPROD_PORT_MIN 40960
#define NET_NONPROD_PORT_MAX 49151
/* The container-side interface. */
#define NET_CONTAINER_IFNAME "eth0"

/* One node's container network.  Strings are borrowed. */
struct net_config {
	const char *bridge;		/* bridge name (<= 15 chars), e.g. "tl0" */
	const char *table;		/* nft table (family ip), one per cell: [A-Za-z_][A-Za-z0-9_]*, <= 64 */
	struct in_addr network;		/* container range, e.g. 192.168.0.0 */
	unsigned prefixlen;		/* e.g. 16 (8..30) */
	struct in_addr gateway;		/* on the bridge, inside the range, never a VIP */
	struct in_addr external_ip;	/* the host's address: DNAT target key, SNAT source */
	unsigned mtu;			/* of the external interface (0: 1500) */
};

/* Fill cfg with Treadmill's range and gateway, the given names and host address, MTU 0. */
void net_config_init(struct net_config *cfg, const char *bridge, const char *table, struct in_addr external_ip);
/* Checks every field (range holds the gateway, names valid).  0 or -EINVAL with err naming the field. */
int net_config_check(const struct net_config *cfg, struct error *err);
/* "a.b.c.d/n" -> network (host bits must be 0) and prefix.  0 or -EINVAL. */
int net_parse_cidr(const char *s, struct in_addr *ret_net, unsigned *ret_prefixlen);
int net_parse_ip(const char *s, struct in_addr *ret);

/* ---- links and addresses (net-link.c, libnl-route-3) ---- */

/* First IPv4 address and the MTU of a host interface (to fill net_config). */
int net_iface_info(const char *ifname, struct in_addr *ret_ip, unsigned *ret_mtu, struct error *err);

/* The node's bridge: created if missing (fixed MAC derived from the gateway, so
 * containers' ARP entries survive ports coming and going), MTU, gateway/prefix
 * address, up; sysctls route_localnet=1 and forwarding=1 on it and, with
 * enable_ip_forward, net.ipv4.ip_forward=1 in this netns.  Idempotent. */
int net_bridge_setup(const struct net_config *cfg, bool enable_ip_forward, struct error *err);
/* Delete the bridge (missing is success). */
int net_bridge_remove(const struct net_config *cfg, struct error *err);
/* 1 if an IPv4 address of an interface other than the bridge (loopback aside)
 * lies in the range or holds it (another cell's bridge, the machine's own
 * network): *ret_desc (if not NULL) gets "a.b.c.d/n on IFNAME" (owned);
 * 0 if the range is free here. */
int net_range_conflict(const struct net_config *cfg, char **ret_desc, struct error *err);
/* Default names of a node's bridge ("tl" + 8 hex digits) and nft table
 * ("treadle_" + the same digits), from a hash of key (the node root): one per
 * node root, so two cells on one machine never share them. */
void net_node_names(const char *key, char ret_bridge[16], char ret_table[32]);
/* Names of the links enslaved to the bridge, sorted (for reconciling leaked veths). */
int net_bridge_ports(const struct net_config *cfg, char ***ret, struct error *err);

enum net_mode {
	NET_PRIVATE,		/* own netns, eth0 with <vip>/32 */
	NET_SHARED_IP,		/* own netns; eth0 also holds <external_ip>/32 scope host, traffic to the
				 * VIP is DNAT'd to it inside and leaves as the VIP (Treadmill shared_ip) */
	NET_SHARED_NETWORK,	/* the host's netns: nothing to set up, no VIP, no rules */
};

/* A container's link: one RTM_NEWLINK creates the veth pair with the host end
 * `host_ifname` (<= 15 chars) in the bridge, up, and the peer created directly
 * in the netns `netns_fd` as eth0 (IFLA_NET_NS_FD).  Then inside that netns:
 * lo up, arp_ignore=3, <vip>/32, route to the gateway, `default via gateway src
 * vip`, ip_local_port_range 49152-65535; NET_SHARED_IP as described above.  The
 * host's neighbour entry for the VIP is flushed first (a reused VIP would keep
 * the old MAC).  On failure the veth is deleted again. */
int net_container_setup(const struct net_config *cfg, enum net_mode mode, const char *host_ifname, int netns_fd,
			struct in_addr vip, struct error *err);
/* Delete the host end (and so the peer) and the neighbour entry of the VIP;
 * a missing link is success.  (Also happens by itself when the netns dies.) */
int net_container_teardown(const struct net_config *cfg, const char *host_ifname, struct in_addr vip,
			   struct error *err);

/* ---- VIPs (net-vip.c) ---- */

/* VIP records: one symlink per VIP, `<dir>/<a.b.c.d>` -> owner, created with one
 * symlink(2) (EEXIST = taken), so a SIGKILL at any instruction leaves either no
 * record or a complete one; never two owners of one VIP. */

/* The VIP owned by `owner` (returned again if it already has one: a retry after a
 * crash never leaks), else the lowest free host address of the range that is
 * neither network, broadcast nor gateway.  (Its old conntrack entries were
 * flushed when it was freed: release and reconcile flush before they unlink.)
 * Owner: [A-Za-z0-9._#@:+-], 1..200 chars.  -ENOSPC with err "network: VIP range
 * exhausted". */
int net_vip_allocate(const struct net_config *cfg, const char *dir, const char *owner, struct in_addr *ret,
		     struct error *err);
/* Free a VIP: conntrack entries flushed, then the record removed (only if owned by
 * `owner`, or by anyone when owner is NULL).  Missing is success. */
int net_vip_release(const char *dir, struct in_addr vip, const char *owner, struct error *err);
/* Free every VIP whose owner is not in `live` (NULL-terminated), and stale
 * owner hints (`<dir>/.owners/<owner>` -> VIP, an index written before each
 * record so an owner finds its own VIP without reading every record).
 * Returns the number freed. */
int net_vip_reconcile(const char *dir, char *const *live, struct error *err);
struct net_vip_record {
	struct in_addr vip;
	char *owner;
};
/* Every record of dir, sorted by address (*ret owned; free with net_vip_records_free). */
int net_vip_list(const char *dir, struct net_vip_record **ret, size_t *ret_n);
void net_vip_records_free(struct net_vip_record *r, size_t n);


/* ---- firewall (net-fw.c, libnftables) ---- */

enum net_env { NET_ENV_PROD, NET_ENV_NONPROD };

struct net_endpoint {
	uint8_t proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;		/* inside the container */
	uint16_t real_port;	/* on the host address; ephemeral ports have port == real_port */
	bool infra;		/* type: infra */
	bool ephemeral;		/* no reverse (SNAT) rule, as Treadmill */
};

/* One vring mapping of a container (docs/NETWORK.md "vring"): what it sends to
 * dst:port (proto) goes to to:to_port instead.  A peer: dst = the peer's host
 * address, port = the well-known port, to = dst, to_port = the peer's real
 * port; its own endpoint (reflective): dst = the host address, to = its VIP. */
struct net_vring_map {
	uint8_t proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	struct in_addr dst;
	uint16_t port;
	struct in_addr to;
	uint16_t to_port;
};

/* What the firewall holds for one container (all borrowed). */
struct net_container {
	const char *owner;
	struct in_addr vip;
	enum net_env env;
	const struct net_endpoint *endpoints;
	size_t n_endpoints;
	const struct in_addr *passthrough;	/* resolved passthrough sources */
	size_t n_passthrough;
	const struct net_vring_map *vring;	/* its vring mappings (net_fw_rebuild only; net_fw_add and
						 * net_fw_remove leave them to net_vring_*) */
	size_t n_vring;
};

/* "uat"/"prod" -> PROD, "dev"/"qa" -> NONPROD (Treadmill), else -EINVAL. */
int net_env_parse(const char *s, enum net_env *ret);


/* Replace the table by the rules of exactly these containers, in one kernel
 * transaction (agent start, repair).  Also creates the table the first time. */
int net_fw_rebuild(const struct net_config *cfg, const struct net_container *c, size_t n, bool blackout,
		   struct error *err);
/* One container's set/map elements added (removed) in one transaction; the cost
 * does not depend on the number of containers.  Remove is idempotent. */
int net_fw_add(const struct net_config *cfg, const struct net_container *c, struct error *err);
int net_fw_remove(const struct net_config *cfg, const struct net_container *c, struct error *err);
/* Blackout: drop everything forwarded to or from the bridge (and forwarding=0 on
 * it, as Treadmill); off restores both.  Idempotent. */
int net_fw_blackout(const struct net_config *cfg, bool on, struct error *err);
/* Delete the table (missing is success). */
int net_fw_teardown(const struct net_config *cfg, struct error *err);

/* ---- vring (net-vring.c): elements of map vring_dnat, keyed by the container's VIP ---- */

/* Order of mappings (by proto, dst, port: the map's key after the VIP). */
int net_vring_map_cmp(const struct net_vring_map *a, const struct net_vring_map *b);
/* One transaction: the mappings `del` of the container `vip` deleted (idempotent:
 * each is added first with its data, so a missing one is no error) and `add`
 * added.  A key the kernel holds with other data fails it (only after a crash
 * between a record and its kernel change): then net_vring_flush and add again. */
int net_vring_change(const struct net_config *cfg, struct in_addr vip, const struct net_vring_map *del,
		     size_t n_del, const struct net_vring_map *add, size_t n_add, struct error *err);
/* Every mapping of `vip`, whatever the records say: the map listed, its
 * elements keyed by vip deleted in one transaction.  Returns how many. */
int net_vring_flush(const struct net_config *cfg, struct in_addr vip, struct error *err);
/* The container's vring record (data/vring.json, written by the node agent):
 *   {"vip": "192.168.0.2", "maps": [{"proto": "tcp", "dst": "10.0.0.3", "port": 8000,
 *                                    "to": "10.0.0.3", "to_port": 41234}]}
 * *ret owned. */
int net_vring_record_format(struct in_addr vip, const struct net_vring_map *m, size_t n, char **ret);
/* *ret (free()) and *ret_n; bad input: -EINVAL with err naming the field. */
int net_vring_record_parse(const char *json, struct in_addr *ret_vip, struct net_vring_map **ret, size_t *ret_n,
			   struct error *err);

/* ---- the firewall record of a container (net-record.c) ---- */

/* What the node keeps on disk per container so a restarted agent can rebuild the
 * table (net_fw_rebuild) and undo what was set up.  JSON, one object:
 *   {"owner": "proid.app#0000000042", "vip": "192.168.0.2", "environment": "prod",
 *    "veth": "tl0000000042", "mode": "private",
 *    "endpoints": [{"proto": "tcp", "port": 8000, "real_port": 41234, "type": "infra",
 *                   "ephemeral": false}],
 *    "passthrough": ["10.0.0.9"]}
 * "veth", "mode" ("private", "shared_ip"), "type", "ephemeral" and "passthrough"
 * are optional.  `environment` reads Treadmill's prod/uat/dev/qa and is written as
 * "prod" or "dev" (all the firewall distinguishes). */
struct net_record {
	struct net_container c;		/* points into the fields below */
	char *owner;
	char *veth;			/* NULL if absent */
	enum net_mode mode;
	struct net_endpoint *endpoints;
	struct in_addr *passthrough;
};
/* Serialize (veth may be NULL).  *ret owned. */
int net_record_format(const struct net_container *c, const char *veth, enum net_mode mode, char **ret);
/* Parse; on bad input -EINVAL with err naming the field ("network: record: endpoints[1].port: ..."). */
int net_record_parse(const char *json, struct net_record **ret, struct error *err);
void net_record_free(struct net_record *r);
