/* sproc-net.c: a container's network (docs/NETWORK.md "Use by the node"):
 * VIP, firewall record and rules at `sproc run`, the veth set up from the
 * parent once the container's netns exists, undone at `sproc cleanup`. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../net/net.h"
#include "node-internal.h"

/* 1 and *cfg filled if the node has a network, 0 if off, < 0 on bad settings. */
static int sproc_net_config(const struct node_settings *ns, struct net_config *cfg, struct error *err)
{
	struct in_addr ext;

	if (!ns->net_bridge)
		return 0;
	if (net_parse_ip(ns->net_external_ip, &ext) < 0)
		return error_set(err, ERR_PERM, EINVAL, "node.json: network.external_ip: not an address");
	net_config_init(cfg, ns->net_bridge, ns->net_table, ext);
	if (net_parse_cidr(ns->net_range, &cfg->network, &cfg->prefixlen) < 0 ||
	    net_parse_ip(ns->net_gateway, &cfg->gateway) < 0)
		return error_set(err, ERR_PERM, EINVAL, "node.json: network.range/gateway: invalid");
	cfg->mtu = ns->net_mtu;
	if (net_config_check(cfg, err) < 0)
		return -EINVAL;
	return 1;
}

char *sproc_net_vips_dir(const char *root)
{
	return node_path(root, SPROC_NET_VIPS_DIR);
}

/* <cdir>/data/network.json: 1 and *ret, 0 if missing, < 0 (err) if unreadable or bad. */
static int sproc_net_record_load(const char *cdir, struct net_record **ret, struct error *err)
{
	_cleanup_free_ char *p = strdup_printf("%s/" SPROC_NET_RECORD_REL, cdir), *text = NULL;
	int r;

	if (!p)
		return error_sys(err, ENOMEM, "network record");
	r = read_file(p, &text, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return error_sys(err, -r, "reading %s", p);
	r = net_record_parse(text, ret, err);
	if (r < 0)
		return error_prefix(err, "%s", p);
	return 1;
}

int sproc_net_vring_load(const char *cdir, struct in_addr vip, struct net_vring_map **ret, size_t *ret_n)
{
	_cleanup_free_ char *p = strdup_printf("%s/" SPROC_NET_VRING_REL, cdir), *text = NULL;
	struct error e = ERROR_INIT;
	struct in_addr rvip;
	int r;

	if (!p)
		return -ENOMEM;
	r = read_file(p, &text, NULL);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	r = net_vring_record_parse(text, &rvip, ret, ret_n, &e);
	error_clear(&e);
	if (r >= 0 && rvip.s_addr != vip.s_addr) { /* another VIP's: not this container's any more */
		free(*ret);
		*ret = NULL;
		return 0;
	}
	return r < 0 ? r : 1;
}

int sproc_net_lock(const char *root)
{
	_cleanup_free_ char *p = node_path(root, SPROC_NET_LOCK), *dir = node_path(root, SPROC_NET_VIPS_DIR);
	int fd;

	if (!p || !dir)
		return -ENOMEM;
	if (mkdir_p(dir, 0755) < 0)
		return -errno;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return -e;
		}
	return fd;
}

void sproc_net_unlock(int *fd)
{
	if (*fd >= 0)
		close(*fd); /* releases the flock */
	*fd = -1;
}

int sproc_net_rebuild(const char *root, const struct net_config *cfg, bool blackout, void (*warn)(const char *msg),
		      struct net_record ***ret_recs, size_t *ret_n, struct error *err)
{
	_cleanup_free_ char *apps = node_path(root, NODE_DIR_APPS);
	_cleanup_strv_free_ char **live = NULL;
	_cleanup_free_ struct net_container *cs = NULL;
	_cleanup_free_ struct net_vring_map **vr = NULL;
	struct net_record **recs = NULL;
	size_t n = 0;
	int r;

	if (!apps)
		return error_sys(err, ENOMEM, "network");
	r = dir_list(apps, 1, &live);
	if (r < 0)
		return error_sys(err, -r, "network: listing %s", apps);
	recs = calloc(strv_length(live) + 1, sizeof(*recs));
	cs = calloc(strv_length(live) + 1, sizeof(*cs));
	if (!recs || !cs) {
		free(recs);
		return error_sys(err, ENOMEM, "network");
	}
	vr = calloc(strv_length(live) + 1, sizeof(*vr));
	if (!vr) {
		free(recs);
		return error_sys(err, ENOMEM, "network");
	}
	for (char **u = live; *u; u++) {
		_cleanup_free_ char *cdir = node_app_dir(root, *u);
		struct error e = ERROR_INIT;

		r = cdir ? sproc_net_record_load(cdir, &recs[n], &e) : error_sys(&e, ENOMEM, "network");
		if (r < 0 && warn) {
			_cleanup_free_ char *m = strdup_printf("network: %s: ignored", e.msg ? e.msg : *u);
			warn(m ? m : *u);
		} else if (r > 0) {
			cs[n] = recs[n]->c;
			/* the vring mappings the agent recorded (data/vring.json) stay in the new table */
			if (sproc_net_vring_load(cdir, recs[n]->c.vip, &vr[n], &cs[n].n_vring) > 0)
				cs[n].vring = vr[n];
			n++;
		}
		error_clear(&e);
	}
	r = net_fw_rebuild(cfg, cs, n, blackout, err);
	for (size_t i = 0; i < n; i++)
		free(vr[i]);
	if (r >= 0 && blackout)
		r = net_fw_blackout(cfg, true, err);
	if (r >= 0 && ret_recs) {
		*ret_recs = recs;
		*ret_n = n;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		net_record_free(recs[i]);
	free(recs);
	return r < 0 ? r : 0;
}

static int ipstr(struct in_addr a, char buf[static 16])
{
	return inet_ntop(AF_INET, &a, buf, 16) ? 0 : -errno;
}

/* Resolve the manifest's passthrough hosts (IPv4 only, as Treadmill). */
static int passthrough_resolve(const json_t *app, struct in_addr **ret, size_t *ret_n, struct error *err)
{
	const json_t *list = json_object_get(app, "passthrough"), *h;
	_cleanup_free_ struct in_addr *v = NULL;
	size_t i, n = 0;

	if (json_array_size(list) && !(v = calloc(json_array_size(list), sizeof(*v))))
		return error_sys(err, ENOMEM, "passthrough");
	json_array_foreach(list, i, h) {
		struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
		const char *name = json_string_value(h);
		int g;

		if (!name || !*name)
			return error_set(err, ERR_PERM, EINVAL, "passthrough[%zu]: expected a host name", i);
		g = getaddrinfo(name, NULL, &hints, &res);
		if (g != 0 || !res)
			return error_set(err, ERR_PERM, EINVAL, "passthrough[%zu]: cannot resolve '%s': %s", i, name,
					 gai_strerror(g));
		v[n++] = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
		freeaddrinfo(res);
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

int sproc_net_prepare(const struct node_settings *ns, json_t *app, const char *unique, struct sproc_net *st,
		      struct error *err)
{
	_cleanup_free_ char *dir = NULL;
	const char *uid = node_unique_id(unique);
	char vb[16], gb[16];
	int r, lock;

	st->on = false;
	r = sproc_net_config(ns, &st->cfg, err);
	if (r <= 0)
		return r;
	st->shared_network = json_is_true(json_object_get(app, "shared_network"));
	st->mode = json_is_true(json_object_get(app, "shared_ip")) ? NET_SHARED_IP : NET_PRIVATE;
	if (st->shared_network) {
		st->on = true;
		return 0;
	}
	if (!uid)
		return error_set(err, ERR_PERM, EINVAL, "network: bad container name %s", unique);
	snprintf(st->veth, sizeof(st->veth), "tv%s", uid);
	dir = sproc_net_vips_dir(ns->root);
	if (!dir || mkdir_p(dir, 0755) < 0)
		return error_sys(err, dir ? errno : ENOMEM, "network: %s", dir ? dir : "vips");
	/* under the node's network lock: an agent's VIP reconcile either saw this
	 * container's dir (it was made before sproc run) or runs after this */
	lock = sproc_net_lock(ns->root);
	if (lock < 0)
		return error_sys(err, -lock, "network: lock");
	r = net_vip_allocate(&st->cfg, dir, unique, &st->vip, err);
	sproc_net_unlock(&lock);
	if (r < 0)
		return r;
	st->on = true;
	(void)ipstr(st->vip, vb);
	(void)ipstr(st->cfg.gateway, gb);
	/* state.json's (Treadmill): network {vip, veth, gateway, external_ip}, vip {ip0 gateway, ip1 vip} */
	if (json_object_set_new(app, "network",
				json_pack("{s:s, s:s, s:s, s:s}", "vip", vb, "veth", st->veth, "gateway", gb,
					  "external_ip", ns->net_external_ip)) < 0 ||
	    json_object_set_new(app, "vip", json_pack("{s:s, s:s}", "ip0", gb, "ip1", vb)) < 0)
		return error_sys(err, ENOMEM, "network");
	return 0;
}

int sproc_net_commit(const struct node_settings *ns, const json_t *app, const char *unique, struct sproc_net *st,
		     struct error *err)
{
	const json_t *eps = json_object_get(app, "endpoints"), *ep, *eph = json_object_get(app, "ephemeral_ports");
	_cleanup_free_ struct net_endpoint *v = NULL;
	_cleanup_free_ struct in_addr *pt = NULL;
	_cleanup_free_ char *text = NULL, *path = NULL;
	struct net_container c = { .owner = unique, .vip = st->vip };
	size_t i, n = 0, npt = 0, cap;
	int r, lock;

	if (!st->on || st->shared_network)
		return 0;
	if (net_env_parse(sproc_jstr(app, "environment"), &c.env) < 0)
		c.env = NET_ENV_NONPROD;
	cap = json_array_size(eps) + json_array_size(json_object_get(eph, "tcp")) +
	      json_array_size(json_object_get(eph, "udp"));
	if (cap && !(v = calloc(cap, sizeof(*v))))
		return error_sys(err, ENOMEM, "network");
	json_array_foreach(eps, i, ep) {
		const char *proto = sproc_jstr(ep, "proto"), *type = sproc_jstr(ep, "type");

		v[n].proto = proto && !strcmp(proto, "udp") ? IPPROTO_UDP : IPPROTO_TCP;
		v[n].port = (uint16_t)json_integer_value(json_object_get(ep, "port"));
		v[n].real_port = (uint16_t)json_integer_value(json_object_get(ep, "real_port"));
		v[n].infra = type && !strcmp(type, "infra");
		n++;
	}
	for (int t = 0; t < 2; t++) {
		const json_t *x;

		json_array_foreach(json_object_get(eph, t == 0 ? "tcp" : "udp"), i, x) {
			v[n].proto = t == 0 ? IPPROTO_TCP : IPPROTO_UDP;
			v[n].port = v[n].real_port = (uint16_t)json_integer_value(x);
			v[n].ephemeral = true;
			n++;
		}
	}
	c.endpoints = v;
	c.n_endpoints = n;
	r = passthrough_resolve(app, &pt, &npt, err);
	if (r < 0)
		return r;
	c.passthrough = pt;
	c.n_passthrough = npt;
	r = net_record_format(&c, st->veth, st->mode, &text);
	path = strdup(SPROC_NET_RECORD_REL); /* cwd: the container dir */
	if (r < 0 || !path)
		return error_sys(err, ENOMEM, "network record");
	/* Record and elements under the node's network lock, which an agent's
	 * rebuild holds while it reads the records and replaces the table: the
	 * rebuild either sees this record or runs after the add (docs/NETWORK.md
	 * "Ordering"). */
	lock = sproc_net_lock(ns->root);
	if (lock < 0)
		return error_sys(err, -lock, "network: lock");
	r = write_file_atomic(path, text, strlen(text), 0644);
	if (r < 0) {
		sproc_net_unlock(&lock);
		return error_sys(err, -r, "network: writing %s", path);
	}
	r = net_fw_add(&st->cfg, &c, err);
	if (r < 0) {
		/* the table may be missing or stale (deleted by hand, an agent that
		 * died mid-start): rebuild it from the records, this one included */
		_cleanup_free_ char *bo = node_path(ns->root, SPROC_NET_BLACKOUT);
		struct error e2 = ERROR_INIT;

		printf("treadle sproc run: %s: %s: rebuilding the table from the records\n", unique,
		       err->msg ? err->msg : "network: adding the firewall elements failed");
		fflush(stdout);
		r = sproc_net_rebuild(ns->root, &st->cfg, bo && path_exists(bo), NULL, NULL, NULL, &e2);
		if (r < 0) {
			_cleanup_free_ char *m = strdup(err->msg ? err->msg : "network: adding the firewall elements failed");
			int code = err->code ? err->code : ERR_TEMP;

			error_clear(err);
			r = error_set(err, code, -r, "%s; rebuilding the table: %s", m ? m : "network",
				      e2.msg ? e2.msg : "failed");
		} else
			error_clear(err);
		error_clear(&e2);
	}
	sproc_net_unlock(&lock);
	return r < 0 ? r : 0;
}

int sproc_net_setup(void *ud, int netns_fd, struct error *err)
{
	struct sproc_net *st = ud;

	return net_container_setup(&st->cfg, st->mode, st->veth, netns_fd, st->vip, err);
}

int sproc_net_env(const struct node_settings *ns, const struct sproc_net *st, char ***env)
{
	char vb[16], gb[16];
	const char *ip = NULL;
	char *s;

	if (!st->on)
		return 0;
	if (st->shared_network)
		ip = ns->net_external_ip;
	else if (ipstr(st->vip, vb) == 0)
		ip = vb;
	(void)ipstr(st->cfg.gateway, gb);
	if ((s = strdup_printf("TREADMILL_HOST_IP=%s", ns->net_external_ip)) == NULL || strv_push(env, s) < 0)
		return -ENOMEM;
	if (ip && ((s = strdup_printf("TREADMILL_CONTAINER_IP=%s", ip)) == NULL || strv_push(env, s) < 0))
		return -ENOMEM;
	if (!st->shared_network &&
	    ((s = strdup_printf("TREADMILL_GATEWAY_IP=%s", gb)) == NULL || strv_push(env, s) < 0))
		return -ENOMEM;
	if (st->mode == NET_SHARED_IP && !st->shared_network &&
	    ((s = strdup_printf("TREADMILL_SERVICE_IP=%s", ns->net_external_ip)) == NULL || strv_push(env, s) < 0))
		return -ENOMEM;
	return 0;
}

/* Release the VIP of owner unique when no record names it (a crash between
 * allocation and record): found among the records. */
static int vip_release_owner(const char *dir, const char *unique, struct error *err)
{
	struct net_vip_record *v = NULL;
	size_t n = 0;
	int r = net_vip_list(dir, &v, &n);

	if (r < 0)
		return r == -ENOENT ? 0 : error_sys(err, -r, "network: listing %s", dir);
	for (size_t i = 0; i < n && r >= 0; i++)
		if (v[i].owner && !strcmp(v[i].owner, unique))
			r = net_vip_release(dir, v[i].vip, unique, err);
	net_vip_records_free(v, n);
	return r < 0 ? r : 0;
}

int sproc_net_cleanup(const struct node_settings *ns, const char *cdir, const char *unique, struct error *err)
{
	_cleanup_free_ char *dir = sproc_net_vips_dir(ns->root), *rec = strdup_printf("%s/" SPROC_NET_RECORD_REL, cdir);
	_cleanup_free_ char *vrec = strdup_printf("%s/" SPROC_NET_VRING_REL, cdir);
	struct net_record *nr = NULL;
	struct net_config cfg;
	int r, lock = -1;

	if (!dir || !rec)
		return error_sys(err, ENOMEM, "network cleanup");
	r = sproc_net_config(ns, &cfg, err);
	if (r < 0)
		return r;
	/* elements, VIP and record go together under the lock (see sproc_net_commit) */
	if (r > 0 || path_exists(rec)) {
		lock = sproc_net_lock(ns->root);
		if (lock < 0)
			return error_sys(err, -lock, "network: lock");
	}
	r = sproc_net_record_load(cdir, &nr, err);
	if (r < 0) {
		/* a record that does not parse names nothing we can remove: the
		 * next agent start rebuilds the table without it */
		error_clear(err);
		r = 0;
	}
	if (r > 0 && cfg.bridge) {
		r = net_fw_remove(&cfg, &nr->c, err);
		/* its vring mappings, whatever data/vring.json says (the agent may have died
		 * between a record and its change) */
		if (r >= 0)
			r = net_vring_flush(&cfg, nr->c.vip, err);
		if (r >= 0 && nr->veth)
			r = net_container_teardown(&cfg, nr->veth, nr->c.vip, err);
	}
	if (r >= 0 && nr)
		r = net_vip_release(dir, nr->c.vip, unique, err);
	else if (r >= 0)
		r = vip_release_owner(dir, unique, err);
	net_record_free(nr);
	if (r >= 0 && unlink(rec) < 0 && errno != ENOENT)
		r = error_sys(err, errno, "unlink %s", rec);
	if (r >= 0 && vrec && unlink(vrec) < 0 && errno != ENOENT)
		r = error_sys(err, errno, "unlink %s", vrec);
	sproc_net_unlock(&lock);
	return r < 0 ? r : 0;
}
