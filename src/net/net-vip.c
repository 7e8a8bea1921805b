/* net-vip.c: VIP allocation with durable, crash-safe records, and conntrack
 * flushing through NFNL (libnetfilter_conntrack).
 *
 * A record is a symlink `<dir>/<a.b.c.d>` whose target is the owner's name.
 * symlink(2) creates it whole or not at all and fails with EEXIST when the VIP
 * is taken, which is the whole of the mutual exclusion: two allocators (the
 * agent, a `sproc`) racing for one VIP cannot both win, and a SIGKILL at any
 * point leaves no half-written record.  No fsync: a record must outlive the
 * process that wrote it, which the page cache gives; a machine crash ends every
 * container (their netns die with the kernel), so after a reboot reconcile with
 * no live owner frees them all anyway.  A killed allocator's record is found
 * again by its owner's next allocate (same VIP back, no leak) or freed by
 * reconcile when the owner is not live. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <string.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "net-internal.h"
#include "net.h"

static int net_conntrack_flush(struct in_addr ip, struct error *err);

#define OWNER_MAX 200

static bool owner_valid(const char *o)
{
	size_t n = o ? strlen(o) : 0;

	if (n == 0 || n > OWNER_MAX || o[0] == '.')
		return false;
	for (; *o; o++)
		if (!((*o >= 'a' && *o <= 'z') || (*o >= 'A' && *o <= 'Z') || (*o >= '0' && *o <= '9') ||
		      strchr("._#@:+-", *o)))
			return false;
	return true;
}

/* Is name a record (a canonical dotted quad)? */
static bool record_name(const char *name, struct in_addr *ret)
{
	char buf[NET_IPSTR_MAX];
	struct in_addr a;

	if (net_parse_ip(name, &a) < 0 || strcmp(net_ipstr(a, buf), name) != 0)
		return false;
	*ret = a;
	return true;
}

static int read_owner(int dfd, const char *name, char **ret)
{
	char buf[OWNER_MAX + 2];
	ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);

	if (n < 0)
		return negerrno();
	buf[n] = '\0';
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

static int cmp_record(const void *a, const void *b)
{
	uint32_t x = ntohl(((const struct net_vip_record *)a)->vip.s_addr);
	uint32_t y = ntohl(((const struct net_vip_record *)b)->vip.s_addr);

	return x < y ? -1 : x > y;
}

void net_vip_records_free(struct net_vip_record *r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++)
		free(r[i].owner);
	free(r);
}

static int list_at(int dfd, struct net_vip_record **ret, size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct net_vip_record *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r, fd = dup(dfd);

	if (fd < 0)
		return negerrno();
	r = dir_fdopen(fd, &d);
	if (r < 0)
		return r;
	while ((errno = 0, de = readdir(d))) {
		struct in_addr a;
		char *owner = NULL;

		if (!record_name(de->d_name, &a))
			continue;
		r = read_owner(dfd, de->d_name, &owner);
		if (r == -ENOENT)
			continue;	/* released meanwhile */
		if (r == -EINVAL)
			owner = strdup("");	/* not a symlink: nobody's */
		else if (r < 0) {
			net_vip_records_free(v, n);
			return r;
		}
		if (n == cap) {
			struct net_vip_record *nv = reallocarray(v, cap ? cap * 2 : 64, sizeof(*v));

			if (!nv) {
				free(owner);
				net_vip_records_free(v, n);
				return -ENOMEM;
			}
			v = nv;
			cap = cap ? cap * 2 : 64;
		}
		if (!owner) {
			net_vip_records_free(v, n);
			return -ENOMEM;
		}
		v[n++] = (struct net_vip_record){ .vip = a, .owner = owner };
	}
	if (errno) {
		net_vip_records_free(v, n);
		return negerrno();
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_record);
	*ret = v;
	*ret_n = n;
	return 0;
}

int net_vip_list(const char *dir, struct net_vip_record **ret, size_t *ret_n)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return negerrno();
	return list_at(dfd, ret, ret_n);
}

static int open_dir(const char *dir, struct error *err)
{
	int r, fd;

	r = mkdir_p(dir, 0755);
	if (r < 0)
		return error_sys(err, -r, "network: VIP records %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "network: VIP records %s", dir);
	return fd;
}

/* The hint directory: `.owners/<owner>` -> VIP, written before the record it
 * names, so whenever an owner's record exists its hint names it (a hint without
 * its record, left by a crash in between, is ignored and rewritten).  It spares
 * reading every record to find an owner's own. */
#define HINTS ".owners"

static int hint_read(int dfd, const char *owner, struct in_addr *ret)
{
	_cleanup_free_ char *ip = NULL, *cur = NULL;
	_cleanup_free_ char *path = strdup_printf(HINTS "/%s", owner);
	struct in_addr a;
	int r;

	if (!path)
		return -ENOMEM;
	r = read_owner(dfd, path, &ip);
	if (r < 0)
		return r;
	if (!record_name(ip, &a))
		return -ENOENT;
	r = read_owner(dfd, ip, &cur);
	if (r < 0)
		return r;
	if (strcmp(cur, owner) != 0)
		return -ENOENT;
	*ret = a;
	return 0;
}

static int hint_write(int dfd, const char *owner, const char *ip)
{
	_cleanup_free_ char *path = strdup_printf(HINTS "/%s", owner);

	if (!path)
		return -ENOMEM;
	/* No record names this owner yet (else hint_read would have found it), so a
	 * crash between the unlink and the symlink loses nothing. */
	if (unlinkat(dfd, path, 0) < 0 && errno != ENOENT)
		return negerrno();
	if (symlinkat(ip, dfd, path) == 0)
		return 0;
	if (errno != ENOENT || (mkdirat(dfd, HINTS, 0755) < 0 && errno != EEXIST))
		return negerrno();
	return symlinkat(ip, dfd, path) < 0 ? negerrno() : 0;
}

/* Drop the owner's hint if it names ip (or, with ip NULL, if it names no record of the owner). */
static void hint_drop(int dfd, const char *owner, const char *ip)
{
	_cleanup_free_ char *path = strdup_printf(HINTS "/%s", owner), *cur = NULL;
	struct in_addr a;

	if (!path || read_owner(dfd, path, &cur) < 0)
		return;
	if (ip ? strcmp(cur, ip) == 0 : hint_read(dfd, owner, &a) < 0)
		(void)unlinkat(dfd, path, 0);
}

int net_vip_allocate(const struct net_config *cfg, const char *dir, const char *owner, struct in_addr *ret,
		     struct error *err)
{
	_cleanup_close_ int dfd = -1;
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ uint8_t *taken = NULL;
	struct dirent *de;
	uint32_t net, size, gw;
	char buf[NET_IPSTR_MAX];
	int r, fd;

	r = net_config_check(cfg, err);
	if (r < 0)
		return r;
	if (!owner_valid(owner))
		return error_set(err, ERR_PERM, EINVAL, "network: VIP owner '%s' invalid", owner ? owner : "");
	dfd = open_dir(dir, err);
	if (dfd < 0)
		return dfd;
	/* Already ours (a retry after a crash): the same VIP again. */
	r = hint_read(dfd, owner, ret);
	if (r == 0)
		return 0;
	if (r != -ENOENT && r != -EINVAL)
		return error_sys(err, -r, "network: VIP records %s", dir);

	net = ntohl(cfg->network.s_addr);
	size = 1u << (32 - cfg->prefixlen);
	gw = ntohl(cfg->gateway.s_addr);
	taken = calloc((size + 7) / 8, 1);
	fd = dup(dfd);
	if (!taken || fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0 && !d)
			close(fd);
		return error_set(err, ERR_TEMP, ENOMEM, "network: VIP records %s: cannot read", dir);
	}
	/* Names only: one getdents per few hundred records, no readlink. */
	while ((de = readdir(d))) {
		struct in_addr a;
		uint32_t h;

		if (!record_name(de->d_name, &a))
			continue;
		h = ntohl(a.s_addr);
		if (h - net < size)
			taken[(h - net) / 8] |= 1u << ((h - net) % 8);
	}

	for (uint32_t off = 1; off < size - 1; off++) {
		struct in_addr a = { .s_addr = htonl(net + off) };

		if (net + off == gw || (taken[off / 8] & (1u << (off % 8))))
			continue;
		net_ipstr(a, buf);
		r = hint_write(dfd, owner, buf);
		if (r < 0)
			return error_sys(err, -r, "network: VIP records %s/" HINTS, dir);
		if (symlinkat(owner, dfd, buf) < 0) {
			if (errno == EEXIST)
				continue;	/* lost a race: the next one */
			return error_sys(err, errno, "network: VIP record %s/%s", dir, buf);
		}
		/* No flush here: every path that removes a record (release,
		 * reconcile) flushes the VIP's conntrack entries before the unlink. */
		*ret = a;
		return 0;
	}
	hint_drop(dfd, owner, NULL);
	return error_set(err, ERR_TEMP, ENOSPC, "network: VIP range %s/%u exhausted",
			 net_ipstr(cfg->network, buf), cfg->prefixlen);
}

static int release_at(int dfd, const char *dir, struct in_addr vip, const char *owner, struct error *err)
{
	_cleanup_free_ char *cur = NULL;
	char buf[NET_IPSTR_MAX];
	int r;

	net_ipstr(vip, buf);
	r = read_owner(dfd, buf, &cur);
	if (r == -ENOENT)
		return 0;
	if (r < 0 && r != -EINVAL)
		return error_sys(err, -r, "network: VIP record %s/%s", dir, buf);
	if (owner && (!cur || strcmp(cur, owner) != 0))
		return error_set(err, ERR_PERM, EPERM, "network: VIP %s is owned by '%s', not '%s'", buf,
				 cur ? cur : "", owner);
	/* Flush before freeing: once the record is gone the VIP may be handed out. */
	r = net_conntrack_flush(vip, err);
	if (r < 0 && r != -EPERM && r != -EPROTONOSUPPORT)
		return r;
	error_clear(err);
	if (unlinkat(dfd, buf, 0) < 0 && errno != ENOENT)
		return error_sys(err, errno, "network: VIP record %s/%s", dir, buf);
	if (cur && cur[0])
		hint_drop(dfd, cur, buf);
	return 1;
}

int net_vip_release(const char *dir, struct in_addr vip, const char *owner, struct error *err)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (dfd < 0)
		return errno == ENOENT ? 0 : error_sys(err, errno, "network: VIP records %s", dir);
	r = release_at(dfd, dir, vip, owner, err);
	return r < 0 ? r : 0;
}

int net_vip_reconcile(const char *dir, char *const *live, struct error *err)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct net_vip_record *recs = NULL;
	size_t n = 0;
	int r, freed = 0;

	if (dfd < 0)
		return errno == ENOENT ? 0 : error_sys(err, errno, "network: VIP records %s", dir);
	r = list_at(dfd, &recs, &n);
	if (r < 0)
		return error_sys(err, -r, "network: VIP records %s", dir);
	for (size_t i = 0; i < n; i++) {
		if (recs[i].owner[0] && live && strv_contains(live, recs[i].owner))
			continue;
		r = release_at(dfd, dir, recs[i].vip, recs[i].owner[0] ? recs[i].owner : NULL, err);
		if (r < 0) {
			net_vip_records_free(recs, n);
			return r;
		}
		freed += r;
	}
	net_vip_records_free(recs, n);
	/* Hints whose record is gone or not theirs (a crash between hint and record). */
	{
		_cleanup_free_ char *hdir = strdup_printf("%s/" HINTS, dir);
		_cleanup_strv_free_ char **hints = NULL;

		if (hdir && dir_list(hdir, 1, &hints) >= 0)
			for (size_t i = 0; hints[i]; i++)
				hint_drop(dfd, hints[i], NULL);
	}
	return freed;
}

/* ---- conntrack ---- */

struct flush_ctx {
	uint32_t ip;		/* network order */
	struct nf_conntrack **hits;
	size_t n, cap;
	int error;
};

static bool ct_has_ip(const struct nf_conntrack *ct, uint32_t ip)
{
	static const int attrs[] = { ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV4_DST };

	for (size_t i = 0; i < ELEMENTSOF(attrs); i++)
		if (nfct_attr_is_set(ct, attrs[i]) && nfct_get_attr_u32(ct, attrs[i]) == ip)
			return true;
	return false;
}

static int flush_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct flush_ctx *f = data;
	struct nf_conntrack *c;

	if (!ct_has_ip(ct, f->ip))
		return NFCT_CB_CONTINUE;
	if (f->n == f->cap) {
		struct nf_conntrack **nh = reallocarray(f->hits, f->cap ? f->cap * 2 : 16, sizeof(*nh));

		if (!nh) {
			f->error = -ENOMEM;
			return NFCT_CB_STOP;
		}
		f->hits = nh;
		f->cap = f->cap ? f->cap * 2 : 16;
	}
	c = nfct_clone(ct);
	if (!c) {
		f->error = -ENOMEM;
		return NFCT_CB_STOP;
	}
	f->hits[f->n++] = c;
	return NFCT_CB_CONTINUE;
}

static void nfct_handlep(struct nfct_handle **h) { if (*h) nfct_close(*h); }

static int net_conntrack_flush(struct in_addr ip, struct error *err)
{
	_cleanup_(nfct_handlep) struct nfct_handle *h = NULL;
	struct flush_ctx f = { .ip = ip.s_addr };
	uint32_t family = AF_INET;
	char buf[NET_IPSTR_MAX];
	int r, deleted = 0;

	h = nfct_open(CONNTRACK, 0);
	if (!h)
		return error_sys(err, errno ? errno : EPROTONOSUPPORT, "network: conntrack");
	nfct_callback_register(h, NFCT_T_ALL, flush_cb, &f);
	/* A dump, then deletes (the kernel cannot delete while it dumps on this socket). */
	r = nfct_query(h, NFCT_Q_DUMP, &family);
	if (r < 0 && !f.error)
		f.error = negerrno();
	for (size_t i = 0; i < f.n; i++) {
		if (!f.error && nfct_query(h, NFCT_Q_DESTROY, f.hits[i]) == 0)
			deleted++;
		else if (!f.error && errno != ENOENT)
			f.error = negerrno();
		nfct_destroy(f.hits[i]);
	}
	free(f.hits);
	if (f.error < 0)
		return error_sys(err, -f.error, "network: conntrack flush of %s", net_ipstr(ip, buf));
	return deleted;
}
