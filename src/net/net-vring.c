/* net-vring.c: a container's vring (Treadmill's vring_cmd, treadmill-architecture.md
 * §6.3) as elements of the cell table's map
 *
 *   map vring_dnat   vip . dst . proto . port : to . to_port
 *
 * read by one rule of nat_prerouting (net-fw.c): what a container sends to
 * dst:port goes to to:to_port.  Every element is keyed by the container's VIP,
 * so a container's mappings are its own and no two containers' collide.  The
 * node agent (src/node/agent-vring.c) computes them from discovery and applies
 * the difference; `sproc cleanup` flushes the VIP's elements; a rebuild
 * (net_fw_rebuild) takes them from the containers' records. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "net-internal.h"
#include "net.h"

int net_vring_map_cmp(const struct net_vring_map *a, const struct net_vring_map *b)
{
	uint32_t x = ntohl(a->dst.s_addr), y = ntohl(b->dst.s_addr);

	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (x != y)
		return x < y ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return 0;
}

static bool map_ok(const struct net_vring_map *m)
{
	return (m->proto == IPPROTO_TCP || m->proto == IPPROTO_UDP) && m->port && m->to_port && m->dst.s_addr &&
	       m->to.s_addr;
}

/* "<verb> element ip T vring_dnat { k : v, ... }\n" (keys only when !with_data). */
static void emit(FILE *o, const struct net_config *cfg, const char *verb, struct in_addr vip,
		 const struct net_vring_map *m, size_t n, bool with_data)
{
	char v[NET_IPSTR_MAX], d[NET_IPSTR_MAX], t[NET_IPSTR_MAX];

	if (!n)
		return;
	net_ipstr(vip, v);
	fprintf(o, "%s element ip %s vring_dnat { ", verb, cfg->table);
	for (size_t i = 0; i < n; i++) {
		fprintf(o, "%s%s . %s . %u . %u", i ? ", " : "", v, net_ipstr(m[i].dst, d), m[i].proto, m[i].port);
		if (with_data)
			fprintf(o, " : %s . %u", net_ipstr(m[i].to, t), m[i].to_port);
	}
	fputs(" }\n", o);
}

static int check(const struct net_config *cfg, struct in_addr vip, const struct net_vring_map *m, size_t n,
		 struct error *err)
{
	char b[NET_IPSTR_MAX];

	if (!vip.s_addr)
		return error_set(err, ERR_PERM, EINVAL, "network: vring: no VIP");
	for (size_t i = 0; i < n; i++)
		if (!map_ok(&m[i]))
			return error_set(err, ERR_PERM, EINVAL, "network: vring of %s: mapping %zu: bad proto, address or port",
					 net_ipstr(vip, b), i);
	return net_config_check(cfg, err);
}

static int change(const struct net_config *cfg, struct in_addr vip, const struct net_vring_map *del, size_t n_del,
		  const struct net_vring_map *add, size_t n_add, struct error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	FILE *o;

	if (!n_del && !n_add)
		return 0;
	o = open_memstream(&buf, &len);
	if (!o)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	/* delete = add (with the recorded data) then delete: a missing element is no error */
	emit(o, cfg, "add", vip, del, n_del, true);
	emit(o, cfg, "delete", vip, del, n_del, false);
	emit(o, cfg, "add", vip, add, n_add, true);
	if (fclose(o) != 0)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	return net_nft_run(buf, NULL, err);
}

int net_vring_change(const struct net_config *cfg, struct in_addr vip, const struct net_vring_map *del,
		     size_t n_del, const struct net_vring_map *add, size_t n_add, struct error *err)
{
	char b[NET_IPSTR_MAX];
	int r;

	r = check(cfg, vip, del, n_del, err);
	if (r >= 0)
		r = check(cfg, vip, add, n_add, err);
	if (r < 0)
		return r;
	r = change(cfg, vip, del, n_del, add, n_add, err);
	if (r >= 0)
		return 0;
	/* the kernel holds other data than `del` says (a crash between a record and its
	 * change): drop whatever the VIP has, then add the new ones */
	error_clear(err);
	r = net_vring_flush(cfg, vip, err);
	if (r >= 0)
		r = change(cfg, vip, NULL, 0, add, n_add, err);
	if (r < 0)
		return error_prefix(err, "vring of %s", net_ipstr(vip, b));
	return 0;
}

/* The text of a key part of `nft -j` output: a string as is, a number as digits. */
static int key_part(const json_t *x, char *buf, size_t size)
{
	if (json_is_string(x))
		return snprintf(buf, size, "%s", json_string_value(x)) < (int)size ? 0 : -EINVAL;
	if (json_is_integer(x))
		return snprintf(buf, size, "%lld", (long long)json_integer_value(x)) < (int)size ? 0 : -EINVAL;
	return -EINVAL;
}

int net_vring_flush(const struct net_config *cfg, struct in_addr vip, struct error *err)
{
	_cleanup_free_ char *cmd = NULL, *out = NULL, *buf = NULL;
	_cleanup_json_ json_t *j = NULL;
	char v[NET_IPSTR_MAX];
	json_t *item, *elems = NULL, *e;
	size_t i, len = 0;
	int n = 0, r;
	FILE *o;

	r = net_config_check(cfg, err);
	if (r < 0)
		return r;
	net_ipstr(vip, v);
	cmd = strdup_printf("list map ip %s vring_dnat", cfg->table);
	if (!cmd)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = net_nft_run(cmd, &out, err);
	if (r < 0) {
		/* no table or no map (a table of an older treadle): nothing to flush */
		error_clear(err);
		return 0;
	}
	j = json_loads(out, 0, NULL);
	json_array_foreach(json_object_get(j, "nftables"), i, item) {
		json_t *m = json_object_get(item, "map");

		if (m)
			elems = json_object_get(m, "elem");
	}
	o = open_memstream(&buf, &len);
	if (!o)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	json_array_foreach(elems, i, e) {
		json_t *key = json_object_get(json_array_get(e, 0), "concat");
		char k[4][64];
		bool ok = json_array_size(key) == 4;

		for (size_t p = 0; ok && p < 4; p++)
			ok = key_part(json_array_get(key, p), k[p], sizeof(k[p])) == 0;
		if (!ok || strcmp(k[0], v) != 0)
			continue;
		fprintf(o, "%s%s . %s . %s . %s", n ? ", " : "", k[0], k[1], k[2], k[3]);
		n++;
	}
	if (fclose(o) != 0)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	if (!n)
		return 0;
	free(cmd);
	cmd = strdup_printf("delete element ip %s vring_dnat { %s }\n", cfg->table, buf);
	if (!cmd)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	r = net_nft_run(cmd, NULL, err);
	if (r < 0)
		return error_prefix(err, "vring of %s: flush", v);
	return n;
}

int net_vring_record_format(struct in_addr vip, const struct net_vring_map *m, size_t n, char **ret)
{
	_cleanup_json_ json_t *o = NULL, *maps = json_array();
	char b[NET_IPSTR_MAX], d[NET_IPSTR_MAX], t[NET_IPSTR_MAX];
	char *s;

	if (!maps)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_pack("{s:s, s:s, s:i, s:s, s:i}", "proto", m[i].proto == IPPROTO_UDP ? "udp" : "tcp",
				      "dst", net_ipstr(m[i].dst, d), "port", (int)m[i].port, "to",
				      net_ipstr(m[i].to, t), "to_port", (int)m[i].to_port);

		if (!x || json_array_append_new(maps, x) < 0)
			return -ENOMEM;
	}
	o = json_pack("{s:s, s:O}", "vip", net_ipstr(vip, b), "maps", maps);
	if (!o)
		return -ENOMEM;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static int port_of(const json_t *x, uint16_t *ret)
{
	json_int_t v = json_integer_value(x);

	if (!json_is_integer(x) || v < 1 || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

int net_vring_record_parse(const char *json, struct in_addr *ret_vip, struct net_vring_map **ret, size_t *ret_n,
			   struct error *err)
{
	_cleanup_json_ json_t *o = json_loads(json, 0, NULL);
	_cleanup_free_ struct net_vring_map *v = NULL;
	json_t *maps = json_object_get(o, "maps"), *x;
	struct in_addr vip;
	size_t i;

	if (!json_is_object(o))
		return error_set(err, ERR_PERM, EINVAL, "network: vring record: not a JSON object");
	if (net_parse_ip(json_string_value(json_object_get(o, "vip")) ?: "", &vip) < 0)
		return error_set(err, ERR_PERM, EINVAL, "network: vring record: vip: not an address");
	if (!json_is_array(maps))
		return error_set(err, ERR_PERM, EINVAL, "network: vring record: maps: not a list");
	if (json_array_size(maps) && !(v = calloc(json_array_size(maps), sizeof(*v))))
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	json_array_foreach(maps, i, x) {
		const char *proto = json_string_value(json_object_get(x, "proto"));

		v[i].proto = proto && !strcmp(proto, "udp") ? IPPROTO_UDP : proto && !strcmp(proto, "tcp") ? IPPROTO_TCP : 0;
		if (!v[i].proto)
			return error_set(err, ERR_PERM, EINVAL, "network: vring record: maps[%zu].proto: tcp or udp", i);
		if (net_parse_ip(json_string_value(json_object_get(x, "dst")) ?: "", &v[i].dst) < 0 ||
		    net_parse_ip(json_string_value(json_object_get(x, "to")) ?: "", &v[i].to) < 0)
			return error_set(err, ERR_PERM, EINVAL, "network: vring record: maps[%zu]: dst/to: not an address", i);
		if (port_of(json_object_get(x, "port"), &v[i].port) < 0 ||
		    port_of(json_object_get(x, "to_port"), &v[i].to_port) < 0)
			return error_set(err, ERR_PERM, EINVAL, "network: vring record: maps[%zu]: port/to_port: 1..65535", i);
	}
	*ret_vip = vip;
	*ret_n = json_array_size(maps);
	*ret = TAKE_PTR(v);
	return 0;
}
