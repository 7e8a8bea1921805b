/* hostgroups.c: LDAP host groups (see hostgroups.h).
 *
 * State: `want` is the store's view (host -> proids placed there), refreshed
 * host by host as watches fire; `have` is what this process knows to be in
 * the directory ("proid\thost" pairs), filled by the reconciling search and
 * kept by each successful change.  A host whose placements changed is synced
 * by the difference of the two.  Any directory failure drops the connection
 * and schedules a full reconcile (after RETRY_MS, doubling while it fails;
 * the only timer). */
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <ldap.h>

#include "../basic/dl.h"
#include "../basic/fileio.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../store/store.h"
#include "hostgroups.h"

#define HLOG(fmt, ...) fprintf(stderr, "treadle hostgroups: " fmt "\n", ##__VA_ARGS__)
#define ROLE "hostgroups"
#define RETRY_MS 2000	 /* first retry after a failure, doubling up to RETRY_MAX_MS */
#define RETRY_MAX_MS 60000
#define LDAP_TIMEOUT_S 10

struct want {
	char *host;
	char **proids; /* sorted, unique */
};

struct hg {
	const struct hostgroups_options *o;
	struct store *store;
	LDAP *ld;
	char *password;
	int epfd, sigfd, tfd;
	char *election_node;
	bool leader, d_election, d_servers, reconcile, waiting;
	unsigned retry_ms; /* the next retry's delay */
	char **dirty;	  /* hosts whose placements changed */
	struct want *want;
	size_t n_want;
	char **have;	  /* "proid\thost" */
};

/* ------------------------------------------------------------ DN patterns */

/* RFC 4514 escaping of an attribute value. */
/* libldap is loaded by hostgroups_check() (the first thing every caller does),
 * not linked: every treadle exec would pay for it (basic/dl.h). */
static struct {
	bool loaded;
	__typeof__(ldap_dn_normalize) *dn_normalize;
	__typeof__(ldap_dnfree) *dnfree;
	__typeof__(ldap_err2string) *err2string;
	__typeof__(ldap_first_entry) *first_entry;
	__typeof__(ldap_get_dn) *get_dn;
	__typeof__(ldap_get_values_len) *get_values_len;
	__typeof__(ldap_initialize) *initialize;
	__typeof__(ldap_is_ldap_url) *is_ldap_url;
	__typeof__(ldap_is_ldapi_url) *is_ldapi_url;
	__typeof__(ldap_is_ldaps_url) *is_ldaps_url;
	__typeof__(ldap_memfree) *memfree;
	__typeof__(ldap_modify_ext_s) *modify_ext_s;
	__typeof__(ldap_msgfree) *msgfree;
	__typeof__(ldap_next_entry) *next_entry;
	__typeof__(ldap_sasl_bind_s) *sasl_bind_s;
	__typeof__(ldap_search_ext_s) *search_ext_s;
	__typeof__(ldap_set_option) *set_option;
	__typeof__(ldap_str2dn) *str2dn;
	__typeof__(ldap_unbind_ext_s) *unbind_ext_s;
	__typeof__(ldap_value_free_len) *value_free_len;
} LD;

static int ldap_load(struct error *err)
{
#define S(f) DL_SYM(__typeof__(LD), f, "ldap_" #f)
	static const struct dl_sym syms[] = {
		S(dn_normalize), S(dnfree), S(err2string), S(first_entry), S(get_dn),
		S(get_values_len), S(initialize), S(is_ldap_url), S(is_ldapi_url), S(is_ldaps_url),
		S(memfree), S(modify_ext_s), S(msgfree), S(next_entry), S(sasl_bind_s),
		S(search_ext_s), S(set_option), S(str2dn), S(unbind_ext_s), S(value_free_len),
	};
#undef S

	if (LD.loaded)
		return 0;
	if (dl_load("libldap-2.5.so.0", syms, ELEMENTSOF(syms), &LD, err) < 0)
		return error_prefix(err, "hostgroups");
	LD.loaded = true;
	return 0;
}

static char *dn_escape(const char *v)
{
	size_t n = strlen(v);
	char *out = malloc(3 * n + 1), *p = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (strchr(",+\"\\<>;=", c) || (i == 0 && (c == '#' || c == ' ')) || (i == n - 1 && c == ' ')) {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			p += sprintf(p, "\\%02x", c);
		} else
			*p++ = (char)c;
	}
	*p = 0;
	return out;
}

static char *dn_fill(const char *pattern, const char *token, const char *value)
{
	const char *t = strstr(pattern, token);
	_cleanup_free_ char *esc = dn_escape(value);

	if (!t || !esc)
		return NULL;
	return strdup_printf("%.*s%s%s", (int)(t - pattern), pattern, esc, t + strlen(token));
}

/* Normalized form for comparisons (spacing, escaping); NULL if not a DN. */
static char *dn_norm(const char *dn)
{
	char *out = NULL, *copy;

	if (LD.dn_normalize(dn, LDAP_DN_FORMAT_LDAP, &out, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || !out)
		return NULL;
	copy = strdup(out);
	LD.memfree(out);
	return copy;
}

/* The value the pattern's token stands for in dn, or NULL if dn is not an
 * instance of the pattern. */
static char *dn_match(const char *pattern, const char *token, const char *dn)
{
	const char *t = strstr(pattern, token), *eq = strchr(pattern, '=');
	const char *post = t + strlen(token), *comma = strchr(post, ',');
	size_t pre_len = eq && eq < t ? (size_t)(t - eq - 1) : 0;
	size_t post_len = comma ? (size_t)(comma - post) : strlen(post);
	LDAPDN ldn = NULL;
	_cleanup_free_ char *val = NULL, *cand = NULL, *rebuilt = NULL, *a = NULL, *b = NULL;

	if (LD.str2dn(dn, &ldn, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS || !ldn || !ldn[0] || !ldn[0][0])
		goto out;
	val = strndup(ldn[0][0]->la_value.bv_val, ldn[0][0]->la_value.bv_len);
	if (!val || strlen(val) < pre_len + post_len || strncasecmp(val, eq + 1, pre_len) != 0 ||
	    strncasecmp(val + strlen(val) - post_len, post, post_len) != 0)
		goto out;
	cand = strndup(val + pre_len, strlen(val) - pre_len - post_len);
	rebuilt = cand && *cand ? dn_fill(pattern, token, cand) : NULL;
	a = rebuilt ? dn_norm(rebuilt) : NULL;
	b = a ? dn_norm(dn) : NULL;
	if (!b || strcasecmp(a, b) != 0) {
		free(cand);
		cand = NULL;
	}
out:
	if (ldn)
		LD.dnfree(ldn);
	return TAKE_PTR(cand);
}

static int pattern_check(const char *pattern, const char *token, const char *opt, struct error *err)
{
	const char *t = pattern ? strstr(pattern, token) : NULL, *eq = pattern ? strchr(pattern, '=') : NULL;
	_cleanup_free_ char *sample = NULL, *norm = NULL;

	if (!pattern || !*pattern)
		return error_set(err, ERR_USAGE, 0, "--%s is required", opt);
	if (!t || !eq || eq > t || memchr(pattern, ',', (size_t)(t - pattern)) || strstr(t + 1, token) ||
	    !strchr(t, ','))
		return error_set(err, ERR_USAGE, 0, "--%s '%s': expected %s once in the first RDN, e.g. cn=%s,ou=...",
				 opt, pattern, token, token);
	sample = dn_fill(pattern, token, "x");
	norm = sample ? dn_norm(sample) : NULL;
	if (!norm)
		return error_set(err, ERR_USAGE, 0, "--%s '%s': not a DN", opt, pattern);
	return 0;
}

int hostgroups_check(const struct hostgroups_options *o, struct error *err)
{
	if (ldap_load(err) < 0)
		return -1;
	if (!o->ldap_url || LD.is_ldap_url(o->ldap_url) + LD.is_ldaps_url(o->ldap_url) +
					 LD.is_ldapi_url(o->ldap_url) == 0)
		return error_set(err, ERR_USAGE, 0, "--ldap-url '%s': expected ldap://, ldaps:// or ldapi://",
				 o->ldap_url ? o->ldap_url : "");
	if (pattern_check(o->group_dn, "{proid}", "ldap-group-dn", err) < 0 ||
	    pattern_check(o->server_dn, "{host}", "ldap-server-dn", err) < 0)
		return -EINVAL;
	if (o->password_file && !o->bind_dn)
		return error_set(err, ERR_USAGE, 0, "--ldap-password-file needs --ldap-bind-dn");
	return 0;
}

/* ---------------------------------------------------------------- LDAP */

static bool dir_conn_error(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE ||
	       rc == LDAP_BUSY || rc == LDAP_LOCAL_ERROR || rc == LDAP_NO_MEMORY || rc == LDAP_OTHER;
}

static void dir_drop(struct hg *h)
{
	if (h->ld)
		LD.unbind_ext_s(h->ld, NULL, NULL);
	h->ld = NULL;
}

static int dir_connect(struct hg *h)
{
	struct timeval tv = { LDAP_TIMEOUT_S, 0 };
	struct berval cred = { 0, NULL };
	int v3 = LDAP_VERSION3, rc;

	if (h->ld)
		return 0;
	rc = LD.initialize(&h->ld, h->o->ldap_url);
	if (rc != LDAP_SUCCESS) {
		HLOG("%s: %s", h->o->ldap_url, LD.err2string(rc));
		h->ld = NULL;
		return -EIO;
	}
	(void)LD.set_option(h->ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	(void)LD.set_option(h->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	(void)LD.set_option(h->ld, LDAP_OPT_TIMEOUT, &tv);
	(void)LD.set_option(h->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (h->password) {
		cred.bv_val = h->password;
		cred.bv_len = strlen(h->password);
	}
	rc = LD.sasl_bind_s(h->ld, h->o->bind_dn ? h->o->bind_dn : "", LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		HLOG("binding to %s as %s: %s", h->o->ldap_url, h->o->bind_dn ? h->o->bind_dn : "anonymous",
		     LD.err2string(rc));
		dir_drop(h);
		return -EIO;
	}
	HLOG("bound to %s as %s", h->o->ldap_url, h->o->bind_dn ? h->o->bind_dn : "anonymous");
	return 0;
}

/* Add (or delete) host's object to (from) proid's group.  0 done (or already
 * so), 1 refused for a reason a retry will not fix (logged), -EIO the
 * connection failed. */
static int member_change(struct hg *h, const char *proid, const char *host, bool add)
{
	_cleanup_free_ char *group = dn_fill(h->o->group_dn, "{proid}", proid);
	_cleanup_free_ char *server = dn_fill(h->o->server_dn, "{host}", host);
	char *vals[2] = { server, NULL };
	LDAPMod mod = { .mod_op = add ? LDAP_MOD_ADD : LDAP_MOD_DELETE, .mod_type = "member", .mod_values = vals };
	LDAPMod *mods[2] = { &mod, NULL };
	int rc;

	if (!group || !server)
		return -ENOMEM;
	rc = LD.modify_ext_s(h->ld, group, mods, NULL, NULL);
	if (rc == LDAP_SUCCESS || (add && (rc == LDAP_TYPE_OR_VALUE_EXISTS || rc == LDAP_ALREADY_EXISTS)) ||
	    (!add && rc == LDAP_NO_SUCH_ATTRIBUTE)) {
		HLOG("%s %s %s %s", add ? "added" : "removed", server, add ? "to" : "from", group);
		return 0;
	}
	HLOG("%s %s %s %s: %s", add ? "adding" : "removing", server, add ? "to" : "from", group, LD.err2string(rc));
	if (dir_conn_error(rc) || rc < 0) {
		dir_drop(h);
		return -EIO;
	}
	return 1;
}

/* The managed members in the directory: every group under the group
 * pattern's parent whose DN is an instance of it, each member an instance
 * of the server pattern.  *ret "proid\thost" pairs. */
static int directory_read(struct hg *h, char ***ret)
{
	const char *base = strchr(strstr(h->o->group_dn, "{proid}"), ',') + 1;
	char *attrs[] = { "member", NULL };
	struct timeval tv = { LDAP_TIMEOUT_S, 0 };
	_cleanup_strv_free_ char **pairs = strv_new();
	LDAPMessage *res = NULL;
	int rc;

	if (!pairs)
		return -ENOMEM;
	rc = LD.search_ext_s(h->ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 0,
			       &res);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		HLOG("searching %s: %s", base, LD.err2string(rc));
		if (res)
			LD.msgfree(res);
		dir_drop(h);
		return -EIO;
	}
	for (LDAPMessage *e = LD.first_entry(h->ld, res); e; e = LD.next_entry(h->ld, e)) {
		char *dn = LD.get_dn(h->ld, e);
		_cleanup_free_ char *proid = dn ? dn_match(h->o->group_dn, "{proid}", dn) : NULL;
		struct berval **vals = proid ? LD.get_values_len(h->ld, e, "member") : NULL;

		for (size_t i = 0; vals && vals[i]; i++) {
			_cleanup_free_ char *m = strndup(vals[i]->bv_val, vals[i]->bv_len);
			_cleanup_free_ char *host = m ? dn_match(h->o->server_dn, "{host}", m) : NULL;
			char *pair = host ? strdup_printf("%s\t%s", proid, host) : NULL;

			if (pair && strv_push(&pairs, pair) < 0)
				free(pair);
		}
		if (vals)
			LD.value_free_len(vals);
		if (dn)
			LD.memfree(dn);
	}
	LD.msgfree(res);
	*ret = TAKE_PTR(pairs);
	return 0;
}

/* -------------------------------------------------------------- placements */

static void on_placement(struct store *s _unused_, enum store_event ev _unused_, const char *path, void *ud)
{
	struct hg *h = ud;
	_cleanup_free_ char *top = cellns_path(CELLNS_PLACEMENT, NULL);
	const char *host;

	if (!top || strcmp(path, top) == 0 || !startswith(path, top) || path[strlen(top)] != '/') {
		h->d_servers = true;
		return;
	}
	host = path + strlen(top) + 1;
	if (!strchr(host, '/') && !strv_contains(h->dirty, host))
		(void)strv_extend(&h->dirty, host);
}

static struct want *want_find(struct hg *h, const char *host)
{
	for (size_t i = 0; i < h->n_want; i++)
		if (strcmp(h->want[i].host, host) == 0)
			return &h->want[i];
	return NULL;
}

/* Re-read /placement/<host> (watch set) into want.  Missing: nothing placed. */
static int want_read(struct hg *h, const char *host)
{
	_cleanup_strv_free_ char **insts = NULL, **proids = strv_new();
	struct want *w = want_find(h, host);
	int r;

	if (!proids)
		return -ENOMEM;
	r = cellns_placement_list(h->store, host, &insts, on_placement, h);
	if (r < 0 && r != -ENOENT)
		return r;
	for (char **i = insts; i && *i; i++) {
		const char *dot = strchr(*i, '.');
		_cleanup_free_ char *p = dot ? strndup(*i, (size_t)(dot - *i)) : NULL;

		if (p && *p && !strv_contains(proids, p) && (r = strv_extend(&proids, p)) < 0)
			return r;
	}
	strv_sort(proids);
	if (!w) {
		struct want *nw = realloc(h->want, (h->n_want + 1) * sizeof(*nw));
		if (!nw)
			return -ENOMEM;
		h->want = nw;
		w = &h->want[h->n_want];
		w->host = strdup(host);
		w->proids = NULL;
		if (!w->host)
			return -ENOMEM;
		h->n_want++;
	}
	strv_free(w->proids);
	w->proids = TAKE_PTR(proids);
	return 0;
}

static bool have_has(struct hg *h, const char *proid, const char *host)
{
	_cleanup_free_ char *k = strdup_printf("%s\t%s", proid, host);

	return k && strv_contains(h->have, k);
}

static void have_set(struct hg *h, const char *proid, const char *host, bool on)
{
	_cleanup_free_ char *k = strdup_printf("%s\t%s", proid, host);
	size_t n = 0;

	if (!k)
		return;
	if (on) {
		if (!strv_contains(h->have, k))
			(void)strv_extend(&h->have, k);
		return;
	}
	for (char **p = h->have; p && *p; p++) {
		if (strcmp(*p, k) == 0)
			free(*p);
		else
			h->have[n++] = *p;
	}
	if (h->have)
		h->have[n] = NULL;
}

/* Make the directory agree with want for one host.  -EIO: connection lost. */
static int host_sync(struct hg *h, const char *host)
{
	struct want *w = want_find(h, host);
	_cleanup_strv_free_ char **extra = strv_new();
	int r;

	if (!extra)
		return -ENOMEM;
	for (char **p = w ? w->proids : NULL; p && *p; p++)
		if (!have_has(h, *p, host)) {
			r = member_change(h, *p, host, true);
			if (r < 0)
				return r;
			if (r == 0)
				have_set(h, *p, host, true);
		}
	for (char **k = h->have; k && *k; k++) {
		const char *tab = strchr(*k, '\t');
		_cleanup_free_ char *proid = tab ? strndup(*k, (size_t)(tab - *k)) : NULL;

		if (proid && strcmp(tab + 1, host) == 0 && !(w && strv_contains(w->proids, proid)) &&
		    strv_extend(&extra, proid) < 0)
			return -ENOMEM;
	}
	for (char **p = extra; *p; p++) {
		r = member_change(h, *p, host, false);
		if (r < 0)
			return r;
		have_set(h, *p, host, false); /* refused: not ours to retry forever */
	}
	return 0;
}

static int servers_read(struct hg *h, char ***ret)
{
	int r = cellns_list(h->store, CELLNS_PLACEMENT, ret, on_placement, h);

	if (r == -ENOENT) {
		/* no /placement yet (a new cell): its creation wakes us */
		_cleanup_free_ char *top = cellns_path(CELLNS_PLACEMENT, NULL);
		if (!top)
			return -ENOMEM;
		r = store_exists(h->store, top, NULL, on_placement, h);
		if (r == 0) /* created meanwhile */
			return cellns_list(h->store, CELLNS_PLACEMENT, ret, on_placement, h);
		if (r != -ENOENT)
			return r;
		*ret = strv_new();
		return *ret ? 0 : -ENOMEM;
	}
	return r;
}

/* Full pass: the store's placements and the directory's members, compared. */
static int reconcile(struct hg *h)
{
	_cleanup_strv_free_ char **servers = NULL, **found = NULL, **hosts = NULL;
	int r;

	if ((r = dir_connect(h)) < 0)
		return r;
	if ((r = servers_read(h, &servers)) < 0)
		return r;
	for (size_t i = 0; i < h->n_want; i++) {
		free(h->want[i].host);
		strv_free(h->want[i].proids);
	}
	h->n_want = 0;
	strv_free(h->dirty);
	h->dirty = NULL;
	h->d_servers = false;
	for (char **s = servers; *s; s++)
		if ((r = want_read(h, *s)) < 0)
			return r;
	if ((r = directory_read(h, &found)) < 0)
		return r;
	strv_free(h->have);
	h->have = TAKE_PTR(found);
	hosts = strv_new();
	for (char **s = servers; hosts && *s; s++)
		if ((r = strv_extend(&hosts, *s)) < 0)
			return r;
	if (!hosts)
		return -ENOMEM;
	for (char **k = h->have; *k; k++) {
		_cleanup_free_ char *host = strdup(strchr(*k, '\t') + 1);
		if (host && !strv_contains(hosts, host) && (r = strv_extend(&hosts, host)) < 0)
			return r;
	}
	HLOG("reconciling: %zu servers placed, %zu memberships in the directory", strv_length(servers),
	     strv_length(h->have));
	for (char **s = hosts; *s; s++)
		if ((r = host_sync(h, *s)) < 0)
			return r;
	return 0;
}

/* The hosts that changed since the last pass. */
static int incremental(struct hg *h)
{
	_cleanup_strv_free_ char **dirty = TAKE_PTR(h->dirty);
	int r;

	if (h->d_servers) {
		_cleanup_strv_free_ char **servers = NULL;

		h->d_servers = false;
		if ((r = servers_read(h, &servers)) < 0)
			return r;
		/* new servers, and servers gone (their placements with them) */
		for (char **s = servers; *s; s++)
			if (!want_find(h, *s) && !strv_contains(dirty, *s) && (r = strv_extend(&dirty, *s)) < 0)
				return r;
		for (size_t i = 0; i < h->n_want; i++)
			if (!strv_contains(servers, h->want[i].host) && !strv_contains(dirty, h->want[i].host) &&
			    (r = strv_extend(&dirty, h->want[i].host)) < 0)
				return r;
	}
	if ((r = dir_connect(h)) < 0)
		return r;
	for (char **d = dirty; d && *d; d++)
		if ((r = want_read(h, *d)) < 0 || (r = host_sync(h, *d)) < 0)
			return r;
	return 0;
}

/* ------------------------------------------------------------- election */

static void on_election(struct store *s _unused_, enum store_event ev _unused_, const char *path _unused_, void *ud)
{
	((struct hg *)ud)->d_election = true;
}

static int64_t trailing_seq(const char *name)
{
	const char *p = name + strlen(name);
	uint64_t v;

	while (p > name && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return *p && safe_atou64(p, &v) == 0 && v <= INT64_MAX ? (int64_t)v : -1;
}

/* Lowest sequence leads; the others watch their predecessor. */
static int election_check(struct hg *h, struct error *err)
{
	_cleanup_free_ char *dir = cellns_election_path(ROLE, NULL);
	const char *mine = strrchr(h->election_node, '/') + 1;
	int64_t my_seq = trailing_seq(mine);

	h->d_election = false;
	if (!dir)
		return error_sys(err, ENOMEM, "election");
	for (;;) {
		_cleanup_strv_free_ char **kids = NULL;
		_cleanup_free_ char *watched = NULL;
		const char *pred = NULL;
		int64_t best = -1;
		bool found = false;
		int r = store_children(h->store, dir, &kids, NULL, NULL);

		if (r < 0)
			return error_set(err, ERR_TEMP, -r, "listing %s: %s", dir, store_strerror(r));
		for (char **k = kids; *k; k++) {
			int64_t seq = trailing_seq(*k);

			if (strcmp(*k, mine) == 0)
				found = true;
			else if (seq >= 0 && seq < my_seq && seq > best) {
				best = seq;
				pred = *k;
			}
		}
		if (!found)
			return error_set(err, ERR_TEMP, 0, "lost the election node %s (session ended)", h->election_node);
		if (!pred) {
			if (!h->leader) {
				HLOG("%s leading (%s)", h->o->hostname, mine);
				h->leader = true;
				h->reconcile = true;
			}
			return 0;
		}
		watched = cellns_election_path(ROLE, pred);
		if (!watched)
			return error_sys(err, ENOMEM, "election");
		r = store_exists(h->store, watched, NULL, on_election, h);
		if (r == 0) {
			HLOG("standing by behind %s", pred);
			return 0;
		}
		if (r != -ENOENT)
			return error_set(err, ERR_TEMP, -r, "watching %s: %s", watched, store_strerror(r));
	}
}

/* ------------------------------------------------------------------ loop */

static void hg_release(struct hg *h)
{
	int fds[] = { h->epfd, h->sigfd, h->tfd };

	dir_drop(h);
	if (h->store)
		store_close(h->store);
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (size_t i = 0; i < h->n_want; i++) {
		free(h->want[i].host);
		strv_free(h->want[i].proids);
	}
	free(h->want);
	strv_free(h->dirty);
	strv_free(h->have);
	free(h->election_node);
	if (h->password)
		explicit_bzero(h->password, strlen(h->password));
	free(h->password);
}

static int retry_later(struct hg *h)
{
	unsigned ms = h->retry_ms ? h->retry_ms : RETRY_MS;
	struct itimerspec its = { .it_value = { ms / 1000, (long)(ms % 1000) * 1000000L } };

	h->retry_ms = ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : ms * 2;
	h->reconcile = true;
	h->waiting = true;
	return timerfd_settime(h->tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

int hostgroups_run(const struct hostgroups_options *o, struct error *err)
{
	struct hg h = { .o = o, .epfd = -1, .sigfd = -1, .tfd = -1 };
	struct epoll_event ev = { .events = EPOLLIN };
	_cleanup_free_ char *id = NULL;
	sigset_t mask;
	int r;

	if (hostgroups_check(o, err) < 0)
		return -EINVAL;
	if (o->password_file) {
		size_t n;
		r = read_file(o->password_file, &h.password, &n);
		if (r < 0)
			return error_sys(err, -r, "--ldap-password-file %s", o->password_file);
		while (n > 0 && (h.password[n - 1] == '\n' || h.password[n - 1] == '\r'))
			h.password[--n] = 0;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	h.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	h.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	h.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h.sigfd < 0 || h.tfd < 0 || h.epfd < 0) {
		r = error_sys(err, errno, "hostgroups: event loop");
		goto out;
	}
	r = store_open(o->store_url, NULL, &h.store, err);
	if (r < 0) {
		error_prefix(err, "hostgroups");
		goto out;
	}
	id = strdup_printf("%s.%d", o->hostname, (int)getpid());
	r = id ? cellns_election_join_role(h.store, ROLE, id, &h.election_node) : -ENOMEM;
	if (r < 0) {
		r = error_set(err, ERR_TEMP, -r, "hostgroups: joining the election: %s", store_strerror(r));
		goto out;
	}
	h.d_election = true;
	ev.data.fd = h.sigfd;
	epoll_ctl(h.epfd, EPOLL_CTL_ADD, h.sigfd, &ev);
	ev.data.fd = h.tfd;
	epoll_ctl(h.epfd, EPOLL_CTL_ADD, h.tfd, &ev);
	ev.data.fd = store_fd(h.store);
	if (epoll_ctl(h.epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		r = error_sys(err, errno, "hostgroups: epoll");
		goto out;
	}
	for (;;) {
		struct epoll_event evs[4];
		int n;

		if (h.d_election && (r = election_check(&h, err)) < 0)
			goto out;
		if (h.leader && !h.waiting) {
			if (h.reconcile) {
				h.reconcile = false;
				r = reconcile(&h);
			} else if (h.d_servers || h.dirty)
				r = incremental(&h);
			else
				r = 0;
			if (r == 0)
				h.retry_ms = 0;
			if (r < 0 && r != -EIO)
				HLOG("store: %s (retrying)", store_strerror(r));
			if (r < 0 && (r = retry_later(&h)) < 0) {
				r = error_sys(err, -r, "hostgroups: timerfd");
				goto out;
			}
		}
		n = epoll_wait(h.epfd, evs, ELEMENTSOF(evs), -1);
		if (n < 0 && errno != EINTR) {
			r = error_sys(err, errno, "hostgroups: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == h.sigfd) {
				struct signalfd_siginfo si;

				if (read(h.sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						h.reconcile = true; /* an operator's full pass */
						continue;
					}
					HLOG("signal %u, exiting", si.ssi_signo);
					r = 0;
					goto out;
				}
			} else if (evs[i].data.fd == h.tfd) {
				uint64_t x;

				if (read(h.tfd, &x, sizeof(x)) == sizeof(x))
					h.waiting = false;
			}
		}
		r = store_dispatch(h.store);
		if (r < 0 && r != -EAGAIN) {
			r = error_set(err, ERR_TEMP, -r, "hostgroups: store: %s", store_strerror(r));
			goto out;
		}
		if (store_state(h.store) == STORE_EXPIRED) {
			r = error_set(err, ERR_TEMP, 0, "hostgroups: store session expired");
			goto out;
		}
	}
out:
	hg_release(&h);
	return r < 0 ? r : 0;
}
