/* sproc-hooks.c: the hooks run at a container's configure (`sproc run`,
 * before the services are written) and cleanup (`sproc cleanup`), Treadmill's
 * features/apphooks: a small registry of C functions selected by name per
 * node (N/node.json "hooks", from `cell up --hooks`).  A hook may add system
 * services to the container, files to its root (host paths bound in) and
 * environment (/env).  docs/HOOKS.md; the Kerberos hooks: docs/KERBEROS.md. */
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../container/container.h"
#include "../krb/krb.h"
#include "node-internal.h"

/* Inside every container the Kerberos hooks use: */
#define KRB_DIR_IN "/run/tm_krb"		/* data/krb: krb5.conf, the host's ticket (ro) */
#define KRB_HOST_CC_IN KRB_DIR_IN "/krb5cc_host"
#define KEYTABS_IN "/var/spool/keytabs"		/* data/keytabs (rw: krb5keytab writes there) */
#define TICKETS_IN "/var/spool/tickets"		/* data/tickets (rw: the refresher writes there) */
#define TICKETS_REFRESH_S 3600			/* a forwarded TGT lives hours: refreshed well before */

static int hook_add_service(struct sproc_hooks *h, const char *name, const char *cmd)
{
	json_t *svc = json_pack("{s:s, s:s, s:s, s:b, s:b, s:{s:i, s:i}, s:[]}", "name", name, "command", cmd, "proid",
				"root", "root", 1, "trace", 0, "restart", "limit", 5, "interval", 60, "environ");

	return svc && json_array_append_new(h->services, svc) == 0 ? 0 : -ENOMEM;
}

static int hook_add_bind(struct sproc_hooks *h, const char *src, const char *target, bool ro)
{
	struct container_bind *b = reallocarray(h->binds, h->n_binds + 1, sizeof(*b));
	char *s = strdup(src);

	if (!b || !s) {
		free(s);
		if (b)
			h->binds = b;
		return -ENOMEM;
	}
	h->binds = b;
	b[h->n_binds++] = (struct container_bind){ .source = s, .target = target, .readonly = ro };
	return 0;
}

static int hook_add_env(struct sproc_hooks *h, const char *name, const char *value)
{
	char *s = strdup_printf("%s=%s", name, value);

	return s && strv_push(&h->env, s) == 0 ? 0 : -ENOMEM;
}

/* ---- Kerberos (docs/KERBEROS.md) ---- */

/* data/krb: the node's krb5.conf and a fresh host ticket, bound at
 * /run/tm_krb, KRB5_CONFIG pointing there.  Once per container run. */
static int krb_prepare(const struct node_settings *ns, const char *cdir, struct sproc_hooks *h, struct error *err)
{
	_cleanup_free_ char *dir = strdup_printf("%s/data/krb", cdir), *conf = NULL, *cc = NULL, *text = NULL;
	int r;

	if (h->krb_ready)
		return 0;
	if (!dir)
		return error_sys(err, ENOMEM, "krb");
	(void)rm_rf(dir);
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return error_sys(err, -r, "mkdir %s", dir);
	conf = strdup_printf("%s/krb5.conf", dir);
	cc = strdup_printf("%s/krb5cc_host", dir);
	if (!conf || !cc)
		return error_sys(err, ENOMEM, "krb");
	if (ns->krb5_config && read_file(ns->krb5_config, &text, NULL) == 0 &&
	    (r = write_file_atomic(conf, text, strlen(text), 0644)) < 0)
		return error_sys(err, -r, "writing %s", conf);
	if (!ns->hostname)
		return error_set(err, ERR_PERM, 0, "the node has no hostname for its host principal");
	r = krb_host_ccache(ns->krb5_keytab ? ns->krb5_keytab : "/etc/krb5.keytab", ns->hostname, cc, err);
	if (r < 0)
		return error_prefix(err, "host ticket of %s", ns->hostname);
	if (hook_add_bind(h, dir, KRB_DIR_IN, true) < 0 ||
	    (text && hook_add_env(h, "KRB5_CONFIG", KRB_DIR_IN "/krb5.conf") < 0))
		return error_sys(err, ENOMEM, "krb");
	h->krb_ready = true;
	return 0;
}

static int proid_ids(const json_t *app, uid_t *uid, gid_t *gid, struct error *err)
{
	const char *proid = sproc_jstr(app, "proid");
	struct passwd *pw = proid ? getpwnam(proid) : NULL;

	if (!pw)
		return error_set(err, ERR_PERM, 0, "proid '%s' is no user of this host", proid ? proid : "");
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static char *lockers_arg(char *const *l)
{
	char *s = strdup("");

	for (size_t i = 0; s && l[i]; i++) {
		char *n = strdup_printf("%s%s%s", s, *s ? "," : "", l[i]);
		free(s);
		s = n;
	}
	return s;
}

/* Mirrors Treadmill-aws's krb5keytab: a root system service (5 in 60 s)
 * fetching the keytab of <proid>/<host> into /var/spool/keytabs/<proid>,
 * then sleeping; the manifest's `keytabs` are fetched before the start. */
static int hook_krb5keytab(const struct node_settings *ns, const char *cdir, const json_t *app, struct sproc_hooks *h,
			   struct error *err)
{
	const char *proid = sproc_jstr(app, "proid"), *inst = sproc_jstr(app, "name");
	_cleanup_free_ char *dir = strdup_printf("%s/data/keytabs", cdir), *cc = strdup_printf("%s/data/krb/krb5cc_host", cdir),
			    *la = NULL, *cmd = NULL, *qi = NULL, *ql = NULL, *qp = NULL, *out = NULL, *qo = NULL;
	_cleanup_strv_free_ char **l = NULL;
	uid_t uid;
	gid_t gid;
	int r;

	if (!dir || !cc || !proid || !inst)
		return error_sys(err, ENOMEM, "krb5keytab");
	if (proid_ids(app, &uid, &gid, err) < 0 || krb_prepare(ns, cdir, h, err) < 0)
		return -1;
	r = krb_lockers(ns->store_url, true, &l, err);
	if (r < 0)
		return r;
	if (!l[0])
		return error_set(err, ERR_TEMP, 0, "no keytab locker registered (/keytab-locker)");
	(void)rm_rf(dir);
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return error_sys(err, -r, "mkdir %s", dir);
	if (json_array_size(json_object_get(app, "keytabs")) > 0 &&
	    (r = krb_keytabs_fetch(l, cc, inst, dir, uid, gid, err)) < 0)
		return error_prefix(err, "keytabs");
	la = lockers_arg(l);
	out = strdup_printf(KEYTABS_IN "/%s", proid);
	if (!la || !out || !(qi = shell_quote(inst)) || !(ql = shell_quote(la)) || !(qp = shell_quote(proid)) ||
	    !(qo = shell_quote(out)))
		return error_sys(err, ENOMEM, "krb5keytab");
	cmd = strdup_printf("exec " CONTAINER_TREADLE " krb keytab --ccache " KRB_HOST_CC_IN
			    " --instance %s --lockers %s --owner %s --out %s --sleep",
			    qi, ql, qp, qo);
	if (!cmd || hook_add_service(h, "krb5keytab", cmd) < 0 || hook_add_bind(h, dir, KEYTABS_IN, false) < 0)
		return error_sys(err, ENOMEM, "krb5keytab");
	return 0;
}

/* Treadmill's register: the manifest's tickets from the lockers before the
 * app starts (waiting up to tickets_wait_s), then a refresher. */
static int hook_tickets(const struct node_settings *ns, const char *cdir, const json_t *app, struct sproc_hooks *h,
			struct error *err)
{
	const json_t *tickets = json_object_get(app, "tickets");
	const char *inst = sproc_jstr(app, "name"), *first = json_string_value(json_array_get(tickets, 0));
	_cleanup_free_ char *dir = strdup_printf("%s/data/tickets", cdir), *cc = strdup_printf("%s/data/krb/krb5cc_host", cdir),
			    *la = NULL, *cmd = NULL, *qi = NULL, *ql = NULL, *qp = NULL, *ccenv = NULL;
	_cleanup_strv_free_ char **l = NULL;
	uint64_t deadline = now_monotonic_ms() + (uint64_t)(ns->tickets_wait_s ? ns->tickets_wait_s : 60) * 1000;
	unsigned missing = 0;
	uid_t uid;
	gid_t gid;
	int r;

	if (!first)
		return 0; /* no tickets asked for */
	if (!dir || !cc || !inst)
		return error_sys(err, ENOMEM, "tickets");
	if (proid_ids(app, &uid, &gid, err) < 0 || krb_prepare(ns, cdir, h, err) < 0)
		return -1;
	(void)rm_rf(dir);
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return error_sys(err, -r, "mkdir %s", dir);
	for (;;) {
		strv_free(l);
		l = NULL;
		error_clear(err);
		r = krb_lockers(ns->store_url, false, &l, err);
		if (r >= 0)
			r = krb_tickets_fetch(l, cc, inst, dir, uid, gid, &missing, NULL, err);
		if (r >= 0 && missing == 0)
			break;
		if (r >= 0)
			(void)error_set(err, ERR_TEMP, 0, "%u of %zu tickets not in any locker", missing,
					json_array_size(tickets));
		if (now_monotonic_ms() >= deadline)
			return error_prefix(err, "tickets not had within %u s", ns->tickets_wait_s);
		if (r < 0 && err->code == ERR_PERM)
			return -1; /* refused: waiting does not help */
		sleep(1);
	}
	la = lockers_arg(l);
	ccenv = strdup_printf("FILE:" TICKETS_IN "/%s", first);
	if (!la || !ccenv || !(qi = shell_quote(inst)) || !(ql = shell_quote(la)) ||
	    !(qp = shell_quote(sproc_jstr(app, "proid"))))
		return error_sys(err, ENOMEM, "tickets");
	cmd = strdup_printf("exec " CONTAINER_TREADLE " krb tickets --ccache " KRB_HOST_CC_IN
			    " --instance %s --lockers %s --owner %s --out " TICKETS_IN " --refresh %d",
			    qi, ql, qp, TICKETS_REFRESH_S);
	if (!cmd || hook_add_service(h, "tickets", cmd) < 0 || hook_add_bind(h, dir, TICKETS_IN, false) < 0 ||
	    hook_add_env(h, "KRB5CCNAME", ccenv) < 0)
		return error_sys(err, ENOMEM, "tickets");
	return 0;
}

/* Credentials never outlive the container nor reach its archive. */
static void hook_krb_cleanup(const char *cdir)
{
	static const char *const dirs[] = { "data/krb", "data/tickets", "data/keytabs" };

	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", cdir, dirs[i]);
		if (p)
			(void)rm_rf(p);
	}
}

/* ---- the registry ---- */

static const struct hook {
	const char *name;
	const char *why; /* the abort reason when configure fails (Treadmill's) */
	int (*configure)(const struct node_settings *ns, const char *cdir, const json_t *app, struct sproc_hooks *h,
			 struct error *err);
	void (*cleanup)(const char *cdir);
} hooks[] = {
	{ "krb5keytab", "keytabs", hook_krb5keytab, hook_krb_cleanup },
	{ "tickets", "tickets", hook_tickets, hook_krb_cleanup },
};

static const struct hook *hook_find(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(hooks); i++)
		if (!strcmp(hooks[i].name, name))
			return &hooks[i];
	return NULL;
}

bool sproc_hook_known(const char *name)
{
	return name && hook_find(name);
}

int sproc_hooks_configure(const struct node_settings *ns, const char *cdir, const json_t *app, struct sproc_hooks *h,
			  const char **ret_why, struct error *err)
{
	_cleanup_free_ char *list = ns->hooks ? strdup(ns->hooks) : NULL;

	*h = (struct sproc_hooks){ .services = json_array(), .env = strv_new() };
	if (!h->services || !h->env || (ns->hooks && !list))
		return error_sys(err, ENOMEM, "hooks");
	for (char *s = list, *t; s && (t = strsep(&s, ","));) {
		const struct hook *k = hook_find(t);

		if (!*t)
			continue;
		if (!k)
			return error_set(err, ERR_PERM, 0, "unknown hook '%s' in node.json", t);
		if (k->configure(ns, cdir, app, h, err) < 0) {
			*ret_why = k->why;
			return error_prefix(err, "hook %s", k->name);
		}
	}
	return 0;
}

void sproc_hooks_clear(struct sproc_hooks *h)
{
	json_decref(h->services);
	strv_free(h->env);
	for (size_t i = 0; i < h->n_binds; i++)
		free((char *)h->binds[i].source);
	free(h->binds);
	*h = (struct sproc_hooks){ 0 };
}

void sproc_hooks_cleanup(const struct node_settings *ns, const char *cdir)
{
	_cleanup_free_ char *list = ns->hooks ? strdup(ns->hooks) : NULL;

	for (char *s = list, *t; s && (t = strsep(&s, ","));) {
		const struct hook *k = hook_find(t);

		if (k && k->cleanup)
			k->cleanup(cdir);
	}
}
