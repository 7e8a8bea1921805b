/* agent-vring.c: the node's one vring watcher (Treadmill's vring_cmd, one
 * process per container there; treadmill-architecture.md §6.3, docs/NETWORK.md
 * "vring").
 *
 * For every running container whose manifest has vring rules (and lists this
 * cell, when the node knows its name): its own rule endpoints reflectively
 * (<host address>:<port> -> <vip>:<port>) and every discovered instance that
 * matches a rule, on another host, at <peer host address>:<well-known port>
 * (the port of that endpoint in the peer's manifest) -> <peer host
 * address>:<real port>.  Discovery is /endpoints/<proid>/<app>#<n>:<proto>:<name>
 * = "<host>:<port>"; every list and record read here leaves a store watch that
 * marks the vring dirty, so a change is applied one watch round trip later.
 *
 * Each sync recomputes every container's mappings and applies the difference
 * with what it applied before: under the node's network lock, data/vring.json
 * written (what a rebuild puts back) and one nft transaction.  At the first
 * sync the "applied" state is read from those records (the agent's start
 * rebuilt the table from them), so a restarted agent only applies what changed
 * meanwhile. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <jansson.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../net/net.h"
#include "node-internal.h"

struct vring_cont {
	char *unique;
	bool loaded;		    /* app and vip read (once: a container's never change) */
	json_t *app;		    /* its manifest, NULL when it has no vring rules */
	struct in_addr vip;
	struct net_vring_map *maps; /* applied, sorted by key */
	size_t n;
	bool seen;
};

/* A peer endpoint's well-known port (from its manifest), by "<instance>:<proto>:<name>". */
struct peer_port {
	char *key;
	uint16_t port;
	bool seen;
};

/* What the store said, kept until a watch on it fires: a sync reads again only
 * what changed (a list of /endpoints/<proid>, or one endpoint record). */
struct store_cache {
	char *path;
	bool children;	/* a child list (else a record's data) */
	char **list;	/* children (NULL: none / missing) */
	char *data;	/* data (NULL: missing) */
	bool seen;
};

struct vring_state {
	struct vring_cont *c;
	size_t n;
	struct peer_port *pp;
	size_t n_pp;
	struct store_cache *sc;
	size_t n_sc;
	struct store *store; /* the session the cache and its watches belong to */
};

/* What one sync resolves once for all containers. */
struct sync_cache {
	char **hosts;	       /* resolved host names */
	struct in_addr *addrs; /* parallel to hosts (0: unresolved) */
};

static void store_cache_clear(struct store_cache *c)
{
	free(c->path);
	strv_free(c->list);
	free(c->data);
}

static void vring_watch(struct store *s, enum store_event ev, const char *path, void *ud)
{
	struct agent *a = ud;
	struct vring_state *st = a->vring;

	a->d_vring = true;
	/* forget what the store said there: read again at the sync */
	for (size_t i = 0; st && i < st->n_sc;)
		if (!strcmp(st->sc[i].path, path)) {
			store_cache_clear(&st->sc[i]);
			st->sc[i] = st->sc[--st->n_sc];
		} else
			i++;
}

static void vcont_clear(struct vring_cont *v)
{
	free(v->unique);
	free(v->maps);
	json_decref(v->app);
}

void agent_vring_free(struct agent *a)
{
	struct vring_state *st = a->vring;

	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		vcont_clear(&st->c[i]);
	for (size_t i = 0; i < st->n_pp; i++)
		free(st->pp[i].key);
	for (size_t i = 0; i < st->n_sc; i++)
		store_cache_clear(&st->sc[i]);
	free(st->c);
	free(st->pp);
	free(st->sc);
	free(st);
	a->vring = NULL;
}

static void cache_free(struct sync_cache *sc)
{
	strv_free(sc->hosts);
	free(sc->addrs);
}

/* The children (children) or data of path, from the cache or read with a watch
 * that drops the cache entry when it fires.  NULL: missing (or no memory). */
static struct store_cache *cached(struct agent *a, const char *path, bool children)
{
	struct vring_state *st = a->vring;
	struct store_cache *n, c = { .children = children };

	for (size_t i = 0; i < st->n_sc; i++)
		if (st->sc[i].children == children && !strcmp(st->sc[i].path, path)) {
			st->sc[i].seen = true;
			return &st->sc[i];
		}
	if (children) {
		/* a missing directory leaves no child watch: watch for its creation */
		if (store_children(a->store, path, &c.list, vring_watch, a) < 0 &&
		    store_exists(a->store, path, NULL, vring_watch, a) == 0) {
			a->d_vring = true; /* created meanwhile: list it at the next round */
			return NULL;
		}
	} else if (store_get(a->store, path, &c.data, NULL, NULL, vring_watch, a) < 0)
		c.data = NULL; /* missing: the watch is for its creation */
	n = realloc(st->sc, (st->n_sc + 1) * sizeof(*n));
	c.path = strdup(path);
	if (!n || !c.path) {
		if (n)
			st->sc = n;
		store_cache_clear(&c);
		return NULL;
	}
	st->sc = n;
	c.seen = true;
	st->sc[st->n_sc] = c;
	return &st->sc[st->n_sc++];
}

/* IPv4 address of a host name (the hosts file or DNS), once per sync. */
static struct in_addr host_addr(struct sync_cache *sc, const char *host)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	struct in_addr ip = { 0 };
	size_t n = strv_length(sc->hosts);
	struct in_addr *na;

	for (size_t i = 0; i < n; i++)
		if (!strcmp(sc->hosts[i], host))
			return sc->addrs[i];
	if (inet_pton(AF_INET, host, &ip) != 1 && getaddrinfo(host, NULL, &hints, &res) == 0 && res) {
		ip = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
		freeaddrinfo(res);
	}
	na = realloc(sc->addrs, (n + 1) * sizeof(*na));
	if (!na)
		return ip;
	sc->addrs = na;
	if ((!sc->hosts && !(sc->hosts = strv_new())) || strv_extend(&sc->hosts, host) < 0)
		return ip;
	sc->addrs[n] = ip;
	return ip;
}

/* The port of endpoint `name` (proto) in instance's manifest (/scheduled), cached;
 * 0 if it cannot be read. */
static uint16_t peer_port(struct agent *a, const char *instance, const char *proto, const char *name)
{
	struct vring_state *st = a->vring;
	_cleanup_free_ char *key = strdup_printf("%s:%s:%s", instance, proto, name);
	_cleanup_json_ json_t *m = NULL;
	struct peer_port *np;
	json_t *ep;
	uint16_t port = 0;
	size_t i;

	if (!key)
		return 0;
	for (i = 0; i < st->n_pp; i++)
		if (!strcmp(st->pp[i].key, key)) {
			st->pp[i].seen = true;
			return st->pp[i].port;
		}
	/* (a manifest that cannot be read is remembered as 0: the instance is gone) */
	if (cellns_scheduled_get(a->store, instance, &m, NULL) < 0)
		m = NULL;
	json_array_foreach(json_object_get(m, "endpoints"), i, ep) {
		const char *n = json_string_value(json_object_get(ep, "name"));
		const char *p = json_string_value(json_object_get(ep, "proto"));
		json_int_t v = json_integer_value(json_object_get(ep, "port"));

		if (n && !strcmp(n, name) && !strcmp(p ? p : "tcp", proto) && v > 0 && v < 65536)
			port = (uint16_t)v;
	}
	np = realloc(st->pp, (st->n_pp + 1) * sizeof(*np));
	if (!np)
		return port;
	st->pp = np;
	st->pp[st->n_pp++] = (struct peer_port){ .key = TAKE_PTR(key), .port = port, .seen = true };
	return port;
}

static int proto_num(const char *p)
{
	return !p || !strcmp(p, "tcp") ? IPPROTO_TCP : !strcmp(p, "udp") ? IPPROTO_UDP : 0;
}

static int push(struct net_vring_map **v, size_t *n, struct net_vring_map m)
{
	struct net_vring_map *nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[(*n)++] = m;
	return 0;
}

static int map_full_cmp(const void *x, const void *y)
{
	const struct net_vring_map *a = x, *b = y;
	int r = net_vring_map_cmp(a, b);

	if (r)
		return r;
	if (a->to.s_addr != b->to.s_addr)
		return ntohl(a->to.s_addr) < ntohl(b->to.s_addr) ? -1 : 1;
	return a->to_port < b->to_port ? -1 : a->to_port > b->to_port;
}

/* Is the own endpoint `name` in app's endpoints: its proto and port. */
static bool own_endpoint(const json_t *app, const char *name, int *ret_proto, uint16_t *ret_port)
{
	const json_t *ep;
	size_t i;

	json_array_foreach(json_object_get(app, "endpoints"), i, ep) {
		const char *n = json_string_value(json_object_get(ep, "name"));
		json_int_t port = json_integer_value(json_object_get(ep, "port"));

		if (n && !strcmp(n, name) && port > 0 && port < 65536) {
			*ret_proto = proto_num(json_string_value(json_object_get(ep, "proto")));
			*ret_port = (uint16_t)port;
			return *ret_proto != 0;
		}
	}
	return false;
}

/* The discovered peers of one rule endpoint. */
static int rule_peers(struct agent *a, struct sync_cache *sc, const char *pattern, const char *epname,
		      uint16_t own_port, struct net_vring_map **v, size_t *n)
{
	_cleanup_free_ char *proid = NULL, *glob = NULL;
	const char *dot = strchr(pattern, '.');
	_cleanup_free_ char *dir = NULL;
	_cleanup_strv_free_ char **children = NULL;
	struct store_cache *ce;

	if (!dot || dot == pattern)
		return 0;
	proid = strndup(pattern, (size_t)(dot - pattern));
	glob = strdup_printf("%s#*:*:%s", pattern, epname);
	dir = proid ? cellns_path(CELLNS_ENDPOINTS, proid) : NULL;
	if (!proid || !glob || !dir)
		return -ENOMEM;
	/* a copy: reading the records below may drop cache entries */
	ce = cached(a, dir, true);
	if (ce && ce->list) {
		children = strv_new();
		for (char **c = ce->list; children && *c; c++)
			if (strv_extend(&children, *c) < 0)
				return -ENOMEM;
		if (!children)
			return -ENOMEM;
	}
	for (char **c = children; c && *c; c++) {
		_cleanup_free_ char *full = strdup_printf("%s.%s", proid, *c), *path = NULL, *data = NULL;
		char *proto, *name, *host, *colon;
		struct net_vring_map m = { 0 };
		uint64_t real;

		if (!full)
			return -ENOMEM;
		if (fnmatch(glob, full, 0) != 0)
			continue;
		path = cellns_path2(CELLNS_ENDPOINTS, proid, *c);
		if (!path)
			return -ENOMEM;
		/* the record's data watch: a move (new host:port) or its end */
		ce = cached(a, path, false);
		if (!ce || !ce->data)
			continue;
		data = strdup(ce->data);
		if (!data)
			return -ENOMEM;
		/* full = <instance>:<proto>:<name> */
		name = strrchr(full, ':');
		*name++ = 0;
		proto = strrchr(full, ':');
		if (!proto)
			continue;
		*proto++ = 0;
		colon = strrchr(data, ':');
		if (!colon || safe_atou64(colon + 1, &real) < 0 || !real || real > 65535)
			continue;
		*colon = 0;
		host = data;
		m.proto = (uint8_t)proto_num(proto);
		if (!m.proto || !strcmp(host, a->o->hostname))
			continue; /* the local host's address is the container's own endpoints' (Treadmill skips it) */
		m.dst = m.to = host_addr(sc, host);
		if (!m.dst.s_addr || m.dst.s_addr == a->net.external_ip.s_addr)
			continue;
		/* the peer's manifest's port; Treadmill's (the app's own port of that name)
		 * when the peer's manifest cannot be read (unscheduled meanwhile) */
		m.port = peer_port(a, full, proto, name);
		if (!m.port)
			m.port = own_port;
		m.to_port = (uint16_t)real;
		if (m.port && push(v, n, m) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* The mappings a container should have now (sorted, one per key). */
static int desired(struct agent *a, struct sync_cache *sc, const json_t *app, struct in_addr vip,
		   struct net_vring_map **ret, size_t *ret_n)
{
	const json_t *vr = json_object_get(app, "vring"), *rule, *ep, *c;
	const char *cell = a->o->cell;
	struct net_vring_map *v = NULL;
	size_t n = 0, i, k, w;
	bool listed = !cell || !*cell;

	json_array_foreach(json_object_get(vr, "cells"), i, c)
		if (cell && json_is_string(c) && !strcmp(json_string_value(c), cell))
			listed = true;
	json_array_foreach(json_object_get(vr, "rules"), i, rule) {
		const char *pattern = json_string_value(json_object_get(rule, "pattern"));

		if (!listed || !pattern)
			break;
		json_array_foreach(json_object_get(rule, "endpoints"), k, ep) {
			const char *name = json_string_value(ep);
			struct net_vring_map self = { .dst = a->net.external_ip, .to = vip };
			int proto;

			if (!name || !own_endpoint(app, name, &proto, &self.port))
				continue;
			self.proto = (uint8_t)proto;
			self.to_port = self.port;
			if (push(&v, &n, self) < 0 || rule_peers(a, sc, pattern, name, self.port, &v, &n) < 0) {
				free(v);
				return -ENOMEM;
			}
		}
	}
	/* one mapping per key: the lowest target (two instances on one host at one
	 * well-known port cannot both be reached there) */
	if (n)
		qsort(v, n, sizeof(*v), map_full_cmp);
	for (i = 0, w = 0; i < n; i++)
		if (!w || net_vring_map_cmp(&v[w - 1], &v[i]) != 0)
			v[w++] = v[i];
	*ret = v;
	*ret_n = w;
	return 0;
}

static struct vring_cont *vcont_get(struct vring_state *st, const char *unique)
{
	struct vring_cont *nc;

	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->c[i].unique, unique))
			return &st->c[i];
	nc = realloc(st->c, (st->n + 1) * sizeof(*nc));
	if (!nc)
		return NULL;
	st->c = nc;
	nc = &st->c[st->n];
	*nc = (struct vring_cont){ .unique = strdup(unique) };
	if (!nc->unique)
		return NULL;
	st->n++;
	return nc;
}

/* The difference of two sorted lists: in `a` and not (with the same data) in `b`. */
static size_t minus(const struct net_vring_map *x, size_t nx, const struct net_vring_map *y, size_t ny,
		    struct net_vring_map *out)
{
	size_t n = 0;

	for (size_t i = 0; i < nx; i++) {
		bool same = false;

		for (size_t j = 0; j < ny && !same; j++)
			same = map_full_cmp(&x[i], &y[j]) == 0;
		if (!same)
			out[n++] = x[i];
	}
	return n;
}

/* Apply one container's new mappings: record + kernel under the network lock,
 * only while its network record is there (sproc cleanup removes it, and the
 * VIP's elements, under the same lock: none may come back after). */
static int apply(struct agent *a, const char *cdir, struct vring_cont *vc, struct net_vring_map *want, size_t n_want,
		 struct error *err)
{
	_cleanup_free_ char *rec = strdup_printf("%s/" SPROC_NET_RECORD_REL, cdir);
	_cleanup_free_ char *vrec = strdup_printf("%s/" SPROC_NET_VRING_REL, cdir), *text = NULL;
	_cleanup_free_ struct net_vring_map *del = NULL, *add = NULL;
	size_t n_del, n_add;
	int lock, r;

	del = calloc(vc->n + 1, sizeof(*del));
	add = calloc(n_want + 1, sizeof(*add));
	if (!rec || !vrec || !del || !add || net_vring_record_format(vc->vip, want, n_want, &text) < 0)
		return error_sys(err, ENOMEM, "vring");
	n_del = minus(vc->maps, vc->n, want, n_want, del);
	n_add = minus(want, n_want, vc->maps, vc->n, add);
	if (!n_del && !n_add)
		return 0;
	lock = sproc_net_lock(a->o->root);
	if (lock < 0)
		return error_sys(err, -lock, "network: lock");
	if (!exists(rec)) {
		sproc_net_unlock(&lock);
		return 0; /* being cleaned up */
	}
	/* no fsync (as the VIP records): it must outlive the agent, which the page cache
	 * gives; a machine crash ends every container and their mappings with them */
	{
		struct iovec iov = { .iov_base = text, .iov_len = strlen(text) };

		r = write_file_atomic_full_at(AT_FDCWD, vrec, NULL, &iov, 1, 0644, NULL,
					      WRITE_ATOMIC_NO_SYNC | WRITE_ATOMIC_NO_DIR_SYNC);
	}
	if (r < 0)
		r = error_sys(err, -r, "writing %s", vrec);
	else
		r = net_vring_change(&a->net, vc->vip, del, n_del, add, n_add, err);
	sproc_net_unlock(&lock);
	return r;
}

static void sync_cont(struct agent *a, struct sync_cache *sc, struct cont *c)
{
	_cleanup_free_ char *cdir = node_app_dir(a->o->root, c->unique);
	_cleanup_free_ struct net_vring_map *want = NULL;
	struct error err = ERROR_INIT;
	struct vring_cont *vc;
	size_t n_want = 0;

	vc = cdir ? vcont_get(a->vring, c->unique) : NULL;
	if (!vc)
		return;
	vc->seen = true;
	if (!vc->loaded) {
		_cleanup_free_ char *f = strdup_printf("%s/data/app.json", cdir), *text = NULL, *ntext = NULL;
		_cleanup_free_ char *nf = strdup_printf("%s/" SPROC_NET_RECORD_REL, cdir);
		_cleanup_json_ json_t *app = NULL;
		struct net_record *nr = NULL;

		if (!f || !nf || read_file(f, &text, NULL) < 0 || !(app = json_loads(text, 0, NULL)))
			return;
		if (!json_array_size(json_object_get(json_object_get(app, "vring"), "rules"))) {
			vc->loaded = true; /* no vring: nothing to do for it, ever */
			return;
		}
		if (read_file(nf, &ntext, NULL) < 0 || net_record_parse(ntext, &nr, &err) < 0) {
			error_clear(&err);
			return; /* not set up yet (sproc run), or no network of its own (shared_network) */
		}
		vc->vip = nr->c.vip;
		net_record_free(nr);
		vc->app = TAKE_PTR(app);
		vc->loaded = true;
		/* what its record (and so the table's rebuild at the agent's start) holds */
		if (sproc_net_vring_load(cdir, vc->vip, &vc->maps, &vc->n) <= 0) {
			vc->maps = NULL;
			vc->n = 0;
		}
	}
	if (!vc->app)
		return;
	if (desired(a, sc, vc->app, vc->vip, &want, &n_want) < 0)
		return;
	if (apply(a, cdir, vc, want, n_want, &err) < 0) {
		LOG("%s: vring: %s", c->unique, err.msg ? err.msg : "?");
		error_clear(&err);
		a->d_vring = true; /* again at the next wake-up */
		return;
	}
	free(vc->maps);
	vc->maps = TAKE_PTR(want);
	vc->n = n_want;
}

void agent_vring_sync(struct agent *a)
{
	struct sync_cache sc = { 0 };
	struct vring_state *st;
	size_t w;

	if (!a->net_on || !a->store)
		return;
	if (!a->vring && !(a->vring = calloc(1, sizeof(*a->vring))))
		return;
	st = a->vring;
	if (st->store != a->store) { /* a new session: the watches were the old one's */
		for (size_t i = 0; i < st->n_sc; i++)
			store_cache_clear(&st->sc[i]);
		st->n_sc = 0;
		st->store = a->store;
	}
	for (size_t i = 0; i < st->n_sc; i++)
		st->sc[i].seen = false;
	for (size_t i = 0; i < st->n; i++)
		st->c[i].seen = false;
	for (size_t i = 0; i < st->n_pp; i++)
		st->pp[i].seen = false;
	for (size_t i = 0; i < a->n_conts; i++)
		if (a->conts[i]->running) /* (sync_cont skips one whose network is not set up yet) */
			sync_cont(a, &sc, a->conts[i]);
	cache_free(&sc);
	/* containers gone (their cleanup flushed their elements), peers' ports no longer seen */
	w = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (st->c[i].seen)
			st->c[w++] = st->c[i];
		else
			vcont_clear(&st->c[i]);
	}
	st->n = w;
	w = 0;
	for (size_t i = 0; i < st->n_pp; i++) {
		if (st->pp[i].seen)
			st->pp[w++] = st->pp[i];
		else
			free(st->pp[i].key);
	}
	st->n_pp = w;
	/* what no rule reads any more (its watch may still fire: a harmless sync) */
	w = 0;
	for (size_t i = 0; i < st->n_sc; i++) {
		if (st->sc[i].seen)
			st->sc[w++] = st->sc[i];
		else
			store_cache_clear(&st->sc[i]);
	}
	st->n_sc = w;
}
