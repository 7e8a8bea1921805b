/* net-record.c: a container's firewall record as JSON (jansson), the on-disk
 * form from which the node rebuilds its table. */
#include <arpa/inet.h>
#include <string.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "net-internal.h"
#include "net.h"

static const char *mode_name(enum net_mode m)
{
	return m == NET_SHARED_IP ? "shared_ip" : m == NET_SHARED_NETWORK ? "shared_network" : "private";
}

int net_record_format(const struct net_container *c, const char *veth, enum net_mode mode, char **ret)
{
	_cleanup_json_ json_t *o = NULL, *eps = json_array(), *pts = json_array();
	char b[NET_IPSTR_MAX];
	char *s;

	if (!eps || !pts)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_endpoints; i++) {
		const struct net_endpoint *e = &c->endpoints[i];
		json_t *j = json_pack("{s:s, s:i, s:i, s:b}", "proto", e->proto == IPPROTO_UDP ? "udp" : "tcp", "port",
				      (int)e->port, "real_port", (int)e->real_port, "ephemeral", e->ephemeral);

		if (!j || (e->infra && json_object_set_new(j, "type", json_string("infra")) < 0) ||
		    json_array_append_new(eps, j) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < c->n_passthrough; i++)
		if (json_array_append_new(pts, json_string(net_ipstr(c->passthrough[i], b))) < 0)
			return -ENOMEM;
	o = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O}", "owner", c->owner ? c->owner : "", "vip",
		      net_ipstr(c->vip, b), "environment", c->env == NET_ENV_PROD ? "prod" : "dev", "mode",
		      mode_name(mode), "endpoints", eps, "passthrough", pts);
	if (!o || (veth && json_object_set_new(o, "veth", json_string(veth)) < 0))
		return -ENOMEM;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

void net_record_free(struct net_record *r)
{
	if (!r)
		return;
	free(r->owner);
	free(r->veth);
	free(r->endpoints);
	free(r->passthrough);
	free(r);
}

static void net_record_freep(struct net_record **r) { net_record_free(*r); }

static int bad(struct error *err, const char *field, const char *why)
{
	return error_set(err, ERR_PERM, EINVAL, "network: record: %s: %s", field, why);
}

int net_record_parse(const char *text, struct net_record **ret, struct error *err)
{
	_cleanup_json_ json_t *o = NULL;
	_cleanup_(net_record_freep) struct net_record *r = calloc(1, sizeof(*r));
	json_error_t je;
	json_t *v, *eps, *pts;
	const char *s;
	size_t i;

	if (!r)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!o || !json_is_object(o))
		return error_set(err, ERR_PERM, EINVAL, "network: record: not a JSON object%s%s", o ? "" : ": ",
				 o ? "" : je.text);
	s = json_string_value(json_object_get(o, "owner"));
	if (!s || !*s)
		return bad(err, "owner", "missing");
	if (!(r->owner = strdup(s)))
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	if (net_parse_ip(json_string_value(json_object_get(o, "vip")), &r->c.vip) < 0)
		return bad(err, "vip", "not an IPv4 address");
	if (net_env_parse(json_string_value(json_object_get(o, "environment")), &r->c.env) < 0)
		return bad(err, "environment", "not one of prod, uat, dev, qa");
	if ((v = json_object_get(o, "veth"))) {
		if (!json_is_string(v) || !net_ifname_valid(json_string_value(v)))
			return bad(err, "veth", "not an interface name");
		if (!(r->veth = strdup(json_string_value(v))))
			return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	}
	r->mode = NET_PRIVATE;
	if ((v = json_object_get(o, "mode"))) {
		s = json_string_value(v);
		if (s && strcmp(s, "shared_ip") == 0)
			r->mode = NET_SHARED_IP;
		else if (!s || strcmp(s, "private") != 0)
			return bad(err, "mode", "not private or shared_ip");
	}
	eps = json_object_get(o, "endpoints");
	if (eps && !json_is_array(eps))
		return bad(err, "endpoints", "not a list");
	r->endpoints = calloc(eps ? json_array_size(eps) + 1 : 1, sizeof(*r->endpoints));
	if (!r->endpoints)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	json_array_foreach(eps, i, v) {
		struct net_endpoint *e = &r->endpoints[i];
		json_t *port = json_object_get(v, "port"), *real = json_object_get(v, "real_port"), *t;
		char field[48];

		snprintf(field, sizeof(field), "endpoints[%zu]", i);
		s = json_string_value(json_object_get(v, "proto"));
		if (!s || (strcmp(s, "tcp") != 0 && strcmp(s, "udp") != 0))
			return bad(err, field, "proto not tcp or udp");
		e->proto = strcmp(s, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
		if (!json_is_integer(port) || json_integer_value(port) < 1 || json_integer_value(port) > 65535)
			return bad(err, field, "port not in 1..65535");
		if (!json_is_integer(real) || json_integer_value(real) < 1 || json_integer_value(real) > 65535)
			return bad(err, field, "real_port not in 1..65535");
		e->port = (uint16_t)json_integer_value(port);
		e->real_port = (uint16_t)json_integer_value(real);
		t = json_object_get(v, "type");
		e->infra = json_is_string(t) && strcmp(json_string_value(t), "infra") == 0;
		e->ephemeral = json_is_true(json_object_get(v, "ephemeral"));
		r->c.n_endpoints++;
	}
	pts = json_object_get(o, "passthrough");
	if (pts && !json_is_array(pts))
		return bad(err, "passthrough", "not a list");
	r->passthrough = calloc(pts ? json_array_size(pts) + 1 : 1, sizeof(*r->passthrough));
	if (!r->passthrough)
		return error_set(err, ERR_TEMP, ENOMEM, "network: out of memory");
	json_array_foreach(pts, i, v) {
		char field[48];

		snprintf(field, sizeof(field), "passthrough[%zu]", i);
		if (net_parse_ip(json_string_value(v), &r->passthrough[i]) < 0)
			return bad(err, field, "not an IPv4 address");
		r->c.n_passthrough++;
	}
	r->c.owner = r->owner;
	r->c.endpoints = r->endpoints;
	r->c.passthrough = r->passthrough;
	*ret = TAKE_PTR(r);
	return 0;
}
