/* net.c: the net module's configuration, parsing and small shared helpers. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "net-internal.h"
#include "net.h"

const char *net_ipstr(struct in_addr a, char buf[static NET_IPSTR_MAX])
{
	if (!inet_ntop(AF_INET, &a, buf, NET_IPSTR_MAX))
		buf[0] = '\0';
	return buf;
}

bool net_ifname_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s > '~')
			return false;
	return true;
}

int net_sysctl_write(const char *path, const char *value)
{
	_cleanup_free_ char *p = strdup_printf("/proc/sys/net/%s", path);

	if (!p)
		return -ENOMEM;
	return write_string_file(p, value);
}

int net_netns_enter(int netns_fd, int *ret_saved)
{
	_cleanup_close_ int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (saved < 0)
		return negerrno();
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return negerrno();
	*ret_saved = TAKE_FD(saved);
	return 0;
}

int net_netns_leave(int saved)
{
	int r = 0;

	if (saved < 0)
		return 0;
	if (setns(saved, CLONE_NEWNET) < 0)
		r = negerrno();
	close(saved);
	return r;
}

int net_parse_ip(const char *s, struct in_addr *ret)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ret = a;
	return 0;
}

int net_parse_cidr(const char *s, struct in_addr *ret_net, unsigned *ret_prefixlen)
{
	_cleanup_free_ char *ip = NULL;
	const char *slash;
	struct in_addr a;
	int64_t n;

	if (!s || !(slash = strchr(s, '/')))
		return -EINVAL;
	ip = strndup(s, slash - s);
	if (!ip)
		return -ENOMEM;
	if (net_parse_ip(ip, &a) < 0 || safe_atoi64(slash + 1, &n) < 0 || n < 0 || n > 32 || slash[1] == '+')
		return -EINVAL;
	uint32_t mask = n == 0 ? 0 : ~0u << (32 - n);
	if (ntohl(a.s_addr) & ~mask)
		return -EINVAL;
	*ret_net = a;
	*ret_prefixlen = (unsigned)n;
	return 0;
}

void net_config_init(struct net_config *cfg, const char *bridge, const char *table, struct in_addr external_ip)
{
	*cfg = (struct net_config){ .bridge = bridge, .table = table, .external_ip = external_ip };
	(void)net_parse_cidr(NET_DEFAULT_RANGE, &cfg->network, &cfg->prefixlen);
	(void)net_parse_ip(NET_DEFAULT_GATEWAY, &cfg->gateway);
}

static bool table_valid(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n == 0 || n > 64 || !((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z') || t[0] == '_'))
		return false;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') || *t == '_'))
			return false;
	return true;
}

int net_config_check(const struct net_config *cfg, struct error *err)
{
	uint32_t net = ntohl(cfg->network.s_addr), gw = ntohl(cfg->gateway.s_addr), mask;

	if (!net_ifname_valid(cfg->bridge))
		return error_set(err, ERR_PERM, EINVAL, "network: bridge: invalid interface name '%s'",
				 cfg->bridge ? cfg->bridge : "");
	if (!table_valid(cfg->table))
		return error_set(err, ERR_PERM, EINVAL, "network: table: invalid nft table name '%s'",
				 cfg->table ? cfg->table : "");
	if (cfg->prefixlen < 8 || cfg->prefixlen > 30)
		return error_set(err, ERR_PERM, EINVAL, "network: range: prefix /%u not in 8..30", cfg->prefixlen);
	mask = ~0u << (32 - cfg->prefixlen);
	if (net & ~mask)
		return error_set(err, ERR_PERM, EINVAL, "network: range: host bits set");
	if ((gw & mask) != net || gw == net || gw == (net | ~mask))
		return error_set(err, ERR_PERM, EINVAL, "network: gateway: not a host address of the range");
	if (cfg->external_ip.s_addr == 0)
		return error_set(err, ERR_PERM, EINVAL, "network: external_ip: unset");
	if (cfg->mtu && (cfg->mtu < 576 || cfg->mtu > 65535))
		return error_set(err, ERR_PERM, EINVAL, "network: mtu: %u out of range", cfg->mtu);
	return 0;
}

int net_env_parse(const char *s, enum net_env *ret)
{
	if (!s)
		return -EINVAL;
	if (strcmp(s, "prod") == 0 || strcmp(s, "uat") == 0)
		*ret = NET_ENV_PROD;
	else if (strcmp(s, "dev") == 0 || strcmp(s, "qa") == 0)
		*ret = NET_ENV_NONPROD;
	else
		return -EINVAL;
	return 0;
}

void net_node_names(const char *key, char ret_bridge[16], char ret_table[32])
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = key ? key : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(ret_bridge, 16, "tl%08x", h);
	snprintf(ret_table, 32, "treadle_%08x", h);
}
