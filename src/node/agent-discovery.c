/* agent-discovery.c: the node's discovery records and identity presence
 * (docs/NODE.md "Discovery"):
 *  - /discovery/<host>: the sorted list "<instance>:<proto>:<endpoint>:<real_port>"
 *    of every endpoint of the host's started containers (Treadmill's
 *    publish-endpoints);
 *  - /discovery.state/<host>: {"<real_port>": 0|1}, whether each endpoint is
 *    up: the readiness checker's verdict when it wrote one, else whether the
 *    endpoint's port listens inside the container's network namespace, read
 *    from the kernel (NETLINK_SOCK_DIAG), never by connecting (Treadmill's
 *    scan-endpoints);
 *  - /identity-groups/<group>/<identity> = {"app", "host"} while the instance
 *    runs (Treadmill's presence service).
 * Both records are rewritten only when their text changes. */
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <jansson.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../store/store.h"
#include "node-internal.h"

/* What the scan needs of a container, read once from its data/app.json and
 * data/container.json. */
struct disc_ep {
	char *name;
	bool udp;
	int port;      /* inside the container */
	int real_port; /* on the host, the published one */
};
/* A set of ports (a container has a handful of listening sockets). */
struct ports {
	int *v;
	size_t n, cap;
};

struct cont_disc {
	struct disc_ep *eps;
	size_t n;
	pid_t pid1; /* the container's pid 1 on the host; 0 unknown */
	bool udp;   /* some endpoint is udp */
	/* the last scan's listening ports, reused between the periodic scans
	 * (except while the container is new: scanned on every sync) */
	struct ports tcp, udps;
	bool scanned;
	uint64_t fast_until; /* monotonic ms */
	struct timespec cj_mtime; /* data/container.json when read: a new one is a new pid 1 */
	ino_t cj_ino;
};

static void ports_free(struct ports *p)
{
	free(p->v);
	*p = (struct ports){ 0 };
}

static bool ports_has(const struct ports *p, int port)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i] == port)
			return true;
	return false;
}

static int ports_add(struct ports *p, int port)
{
	if (ports_has(p, port))
		return 0;
	if (p->n == p->cap) {
		int *t = reallocarray(p->v, p->cap * 2 + 8, sizeof(int));

		if (!t)
			return -ENOMEM;
		p->v = t;
		p->cap = p->cap * 2 + 8;
	}
	p->v[p->n++] = port;
	return 0;
}

/* ---- the kernel's view: listening sockets of a network namespace ---- */

static bool loopback(const struct inet_diag_msg *m)
{
	if (m->idiag_family == AF_INET)
		return (ntohl(m->id.idiag_src[0]) >> 24) == 127;
	return m->id.idiag_src[0] == 0 && m->id.idiag_src[1] == 0 &&
	       ((m->id.idiag_src[2] == 0 && m->id.idiag_src[3] == htonl(1)) ||
		(m->id.idiag_src[2] == htonl(0xffff) && (ntohl(m->id.idiag_src[3]) >> 24) == 127));
}

/* The answer to one dump request on sk: the local ports of the sockets on a
 * non-loopback address (Treadmill's netstat skips loopback: such a socket
 * cannot be reached through the endpoint). */
static int diag_read(int sk, struct ports *out)
{
	long buf[4096]; /* 32 KiB, aligned for nlmsghdr */

	for (;;) {
		ssize_t n = recv(sk, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negerrno();
		}
		if (n == 0)
			return -EPROTO;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			const struct inet_diag_msg *m;

			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				/* a kernel without this family/protocol's diag module: nothing listens there */
				return e->error == -ENOENT ? 0 : e->error;
			}
			if ((h->nlmsg_type != SOCK_DIAG_BY_FAMILY && h->nlmsg_type != TCPDIAG_GETSOCK) ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			m = NLMSG_DATA(h);
			if (!loopback(m) && ports_add(out, ntohs(m->id.idiag_sport)) < 0)
				return -ENOMEM;
		}
	}
}

/* One inet_diag dump (family, protocol, states). */
static int diag_dump(int sk, int family, int protocol, uint32_t states, struct ports *out)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.r = { .sdiag_family = (uint8_t)family, .sdiag_protocol = (uint8_t)protocol, .idiag_states = states },
	};
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };

	if (sendto(sk, &req, sizeof(req), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
		return negerrno();
	return diag_read(sk, out);
}

/* The listening TCP sockets of both families in one dump: the older request
 * (TCPDIAG_GETSOCK, family AF_UNSPEC) that the kernel still answers; the
 * kernel walks its whole listening hash once per dump, so one dump instead of
 * two halves the cost.  -EOPNOTSUPP (remembered) when the kernel refuses it. */
static int tcp_listen_dump(int sk, struct ports *out)
{
	static bool refused;
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = TCPDIAG_GETSOCK,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 2 },
		.r = { .idiag_family = AF_UNSPEC, .idiag_states = 1u << TCP_LISTEN },
	};
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	int r;

	if (refused)
		return -EOPNOTSUPP;
	if (sendto(sk, &req, sizeof(req), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
		return negerrno();
	r = diag_read(sk, out);
	if (r == -EINVAL || r == -EOPNOTSUPP || r == -EPROTONOSUPPORT) {
		refused = true;
		return -EOPNOTSUPP;
	}
	return r;
}

/* A NETLINK_SOCK_DIAG socket of the network namespace of pid: the agent's
 * thread enters it (setns), makes the socket, and comes back to self_ns (the
 * socket stays in the namespace it was made in).  The agent is single
 * threaded and no fork happens in between.  fd or -errno. */
static int diag_socket(pid_t pid, int self_ns)
{
	_cleanup_free_ char *p = strdup_printf("/proc/%d/ns/net", (int)pid);
	_cleanup_close_ int ns = -1;
	struct stat a, b;
	int sk, e;

	if (!p)
		return -ENOMEM;
	ns = open(p, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return negerrno();
	if (fstat(ns, &a) < 0 || fstat(self_ns, &b) < 0)
		return negerrno();
	if (a.st_ino == b.st_ino && a.st_dev == b.st_dev) /* shared_network: the host's own, no setns */
		return -EAGAIN;
	if (setns(ns, CLONE_NEWNET) < 0)
		return negerrno();
	sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	e = errno;
	if (setns(self_ns, CLONE_NEWNET) < 0)
		abort(); /* the agent must not go on in a container's netns; s6 restarts it */
	return sk < 0 ? -e : sk;
}

/* The listening TCP ports (and, if udp, the bound UDP ports) of pid's
 * network namespace, IPv4 and IPv6. */
static int scan_netns(pid_t pid, int self_ns, bool udp, struct ports *tcp_out, struct ports *udp_out)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	_cleanup_close_ int sk = diag_socket(pid, self_ns);
	bool per_family;
	int r;

	if (sk == -EAGAIN) /* the host's netns: a plain socket */
		sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (sk < 0)
		return sk == -1 ? negerrno() : sk;
	r = tcp_listen_dump(sk, tcp_out);
	if (r < 0 && r != -EOPNOTSUPP)
		return r;
	per_family = r == -EOPNOTSUPP;
	for (size_t i = 0; i < ELEMENTSOF(fams); i++) {
		if (per_family && (r = diag_dump(sk, fams[i], IPPROTO_TCP, 1u << TCP_LISTEN, tcp_out)) < 0)
			return r;
		/* an unconnected UDP socket is in state CLOSE */
		if (udp && (r = diag_dump(sk, fams[i], IPPROTO_UDP, 1u << TCP_CLOSE, udp_out)) < 0)
			return r;
	}
	return 0;
}

/* ---- the state rule ---- */

/* Whether an endpoint is up.  The readiness checker (sproc) owns
 * <container dir>/data/ready/<endpoint name>, written atomically with "up" or
 * "down": when that file exists its word is the state; otherwise the state
 * is whether the endpoint's port listens in the container's netns.  This is
 * the one place the rule lives (docs/NODE.md, FORMATS.md). */
static bool endpoint_up(const char *cdir, const char *name, bool listening)
{
	_cleanup_free_ char *f = strdup_printf("%s/" SPROC_READY_REL "/%s", cdir, name), *text = NULL;

	if (!f || read_file(f, &text, NULL) < 0)
		return listening;
	text[strcspn(text, "\n")] = 0;
	if (!strcmp(text, "up"))
		return true;
	if (!strcmp(text, "down"))
		return false;
	return listening; /* neither word (being written by hand?): as if absent */
}

/* ---- per container ---- */

void agent_discovery_forget(struct cont *c)
{
	struct cont_disc *d = c->disc;

	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->eps[i].name);
	free(d->eps);
	ports_free(&d->tcp);
	ports_free(&d->udps);
	free(d);
	c->disc = NULL;
}

/* Read what the scan needs of c; 0, or -errno (retried next time). */
static int cont_load(struct agent *a, struct cont *c)
{
	_cleanup_free_ char *f = strdup_printf("%s/%s/data/app.json", a->p_apps, c->unique), *text = NULL;
	_cleanup_free_ char *cf = strdup_printf("%s/%s/data/container.json", a->p_apps, c->unique), *ctext = NULL;
	_cleanup_json_ json_t *app = NULL, *cj = NULL;
	struct cont_disc *d;
	struct stat st;
	json_t *ep, *pid;
	size_t i;

	if (!f || !cf)
		return -ENOMEM;
	/* the container started again in place (sproc run's restart): a new pid 1,
	 * maybe new ports in app.json: read both again */
	if (c->disc && stat(cf, &st) == 0 &&
	    (st.st_ino != c->disc->cj_ino || st.st_mtim.tv_sec != c->disc->cj_mtime.tv_sec ||
	     st.st_mtim.tv_nsec != c->disc->cj_mtime.tv_nsec))
		agent_discovery_forget(c);
	if (c->disc)
		return 0;
	if (read_file(f, &text, NULL) < 0 || !(app = json_loads(text, 0, NULL)))
		return -ENOENT;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	c->disc = d;
	d->fast_until = now_monotonic_ms() + DISCOVERY_FAST_MS;
	if (stat(cf, &st) == 0) {
		d->cj_mtime = st.st_mtim;
		d->cj_ino = st.st_ino;
	}
	if (read_file(cf, &ctext, NULL) == 0 && (cj = json_loads(ctext, 0, NULL)) &&
	    json_is_integer(pid = json_object_get(cj, "pid")))
		d->pid1 = (pid_t)json_integer_value(pid);
	d->eps = calloc(json_array_size(json_object_get(app, "endpoints")) + 1, sizeof(*d->eps));
	if (!d->eps)
		return -ENOMEM;
	json_array_foreach(json_object_get(app, "endpoints"), i, ep) {
		const char *name = json_string_value(json_object_get(ep, "name"));
		const char *proto = json_string_value(json_object_get(ep, "proto"));
		json_int_t rp = json_integer_value(json_object_get(ep, "real_port"));
		json_int_t p = json_integer_value(json_object_get(ep, "port"));

		if (!name || rp <= 0 || rp > 65535)
			continue;
		d->eps[d->n] = (struct disc_ep){ .name = strdup(name), .udp = proto && !strcmp(proto, "udp"),
						 .port = p > 0 && p <= 65535 ? (int)p : (int)rp, .real_port = (int)rp };
		if (!d->eps[d->n].name)
			return -ENOMEM;
		d->udp |= d->eps[d->n].udp;
		d->n++;
	}
	return 0;
}

/* ---- the records ---- */

struct disc_out {
	char **entries;
	size_t n_entries;
	int *real_ports;
	bool *up;
	size_t n, cap;
};

static int out_add(struct disc_out *o, char *entry, int real_port, bool up)
{
	if (o->n == o->cap) {
		size_t cap = o->cap * 2 + 16;
		char **e = reallocarray(o->entries, cap, sizeof(char *));
		int *p = e ? reallocarray(o->real_ports, cap, sizeof(int)) : NULL;
		bool *u = p ? reallocarray(o->up, cap, sizeof(bool)) : NULL;

		if (e)
			o->entries = e;
		if (p)
			o->real_ports = p;
		if (!u) {
			free(entry);
			return -ENOMEM;
		}
		o->up = u;
		o->cap = cap;
	}
	o->entries[o->n] = entry;
	o->real_ports[o->n] = real_port;
	o->up[o->n] = up;
	o->n++;
	return 0;
}

static void out_free(struct disc_out *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->entries[i]);
	free(o->entries);
	free(o->real_ports);
	free(o->up);
}

/* One container's entries and states into o: its sockets scanned when full
 * (the periodic scan) or while it is new, else the last scan's (scan failures
 * read as "not listening": a container whose pid 1 is gone has nothing
 * listening); the readiness verdicts are read every time. */
static int cont_scan(struct agent *a, struct cont *c, int self_ns, bool full, struct disc_out *o)
{
	_cleanup_free_ char *cdir = strdup_printf("%s/%s", a->p_apps, c->unique);
	struct cont_disc *d;
	int r;

	if (!cdir)
		return -ENOMEM;
	r = cont_load(a, c);
	if (r == -ENOMEM)
		return r;
	d = c->disc;
	if (!d || !d->n)
		return 0;
	if (full || !d->scanned || now_monotonic_ms() < d->fast_until) {
		d->tcp.n = d->udps.n = 0;
		if (d->pid1 > 0)
			(void)scan_netns(d->pid1, self_ns, d->udp, &d->tcp, &d->udps);
		d->scanned = true;
	}
	for (size_t i = 0; i < d->n; i++) {
		const struct disc_ep *e = &d->eps[i];
		char *entry = strdup_printf("%s:%s:%s:%d", c->instance, e->udp ? "udp" : "tcp", e->name, e->real_port);
		bool up;

		if (!entry) {
			r = -ENOMEM;
			break;
		}
		up = endpoint_up(cdir, e->name, ports_has(e->udp ? &d->udps : &d->tcp, e->port));
		r = out_add(o, entry, e->real_port, up);
		if (r < 0)
			break;
	}
	return r < 0 ? r : 0;
}

/* Publish text at the record if it differs from *last (updated on success). */
static void publish_if_changed(struct agent *a, int (*publish)(struct store *, const char *, const char *),
			       const char *what, char *text, char **last)
{
	int r;

	if (*last && !strcmp(*last, text)) {
		free(text);
		return;
	}
	r = publish(a->store, a->o->hostname, text);
	if (r < 0) {
		if (r != -EBUSY) /* -EBUSY: a previous agent's session still holds it; retried */
			LOG("publishing %s: %s (will retry)", what, store_strerror(r));
		free(text);
		a->disc_retry = true;
		return;
	}
	free(*last);
	*last = text;
}

void agent_discovery_sync(struct agent *a)
{
	_cleanup_close_ int self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	struct disc_out o = { 0 };
	bool full = a->disc_full;
	char *list, *state;

	a->disc_retry = a->disc_full = false;
	if (!a->store || self_ns < 0)
		return;
	for (size_t i = 0; i < a->n_conts; i++) {
		struct cont *c = a->conts[i];

		if (!c->published)
			continue;
		if (cont_scan(a, c, self_ns, full, &o) < 0) {
			out_free(&o);
			a->disc_retry = true;
			a->disc_full = full;
			return;
		}
	}
	/* the state record before the list is sorted (they share the index) */
	state = cellns_discovery_state_format(o.real_ports, o.up, o.n);
	list = cellns_discovery_format(o.entries, o.n);
	out_free(&o);
	if (!list || !state) {
		free(list);
		free(state);
		a->disc_retry = true;
		return;
	}
	publish_if_changed(a, cellns_discovery_publish, "/discovery", list, &a->disc_list);
	publish_if_changed(a, cellns_discovery_state_publish, "/discovery.state", state, &a->disc_state);
}

void agent_discovery_tick(struct agent *a)
{
	uint64_t now = now_monotonic_ms();

	/* every DISCOVERY_SCAN_MS, and every tick while a container is new (its
	 * app is likely still starting to listen) */
	if (a->disc_retry || now >= a->disc_next_scan || now < a->disc_fast_until) {
		a->d_discovery = true;
		if (now >= a->disc_next_scan) {
			a->disc_full = true;
			a->disc_next_scan = now + DISCOVERY_SCAN_MS;
		}
	}
}

void agent_discovery_changed(struct agent *a)
{
	a->d_discovery = true;
	a->disc_fast_until = now_monotonic_ms() + DISCOVERY_FAST_MS;
}

/* ---- identity groups ---- */

int agent_identity_publish(struct agent *a, struct cont *c)
{
	_cleanup_free_ char *f = NULL, *text = NULL;
	_cleanup_json_ json_t *app = NULL;
	const char *group;
	json_t *id;
	int r;

	if (c->id_group)
		return 0;
	/* another container of this instance (a re-placement here) still holds
	 * it: the node reads as this instance's, but it goes when that one stops */
	for (size_t i = 0; i < a->n_conts; i++)
		if (a->conts[i] != c && a->conts[i]->id_group && !strcmp(a->conts[i]->instance, c->instance))
			return -EBUSY;
	f = strdup_printf("%s/%s/data/app.json", a->p_apps, c->unique);
	if (!f)
		return -ENOMEM;
	if (read_file(f, &text, NULL) < 0 || !(app = json_loads(text, 0, NULL)))
		return 0;
	group = json_string_value(json_object_get(app, "identity_group"));
	id = json_object_get(app, "identity");
	if (!group || !json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX)
		return 0; /* no group, or no identity given by the master: nothing to hold */
	r = cellns_identity_publish(a->store, group, (int)json_integer_value(id), c->instance, a->o->hostname);
	if (r == -EBUSY) {
		if (!c->id_waiting)
			LOG("%s: identity %s/%lld still held by another instance: waiting for it to go", c->instance,
			    group, (long long)json_integer_value(id));
		c->id_waiting = true;
		return r;
	}
	if (r < 0)
		return r;
	c->id_waiting = false;
	c->identity = (int)json_integer_value(id);
	c->id_group = strdup(group);
	return c->id_group ? 0 : -ENOMEM;
}

void agent_identity_unpublish(struct agent *a, struct cont *c)
{
	if (!c->id_group)
		return;
	if (a->store)
		(void)cellns_identity_unpublish(a->store, c->id_group, c->identity, c->instance);
	free(c->id_group);
	c->id_group = NULL;
}

void agent_discovery_reset(struct agent *a)
{
	free(a->disc_list);
	free(a->disc_state);
	a->disc_list = a->disc_state = NULL;
	for (size_t i = 0; i < a->n_conts; i++) {
		free(a->conts[i]->id_group);
		a->conts[i]->id_group = NULL;
	}
	a->d_discovery = true;
}
