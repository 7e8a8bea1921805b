/* krb-locker.c: `treadle locker`: the cell's ticket locker and keytab
 * service (krb.h, docs/KERBEROS.md).  One connection at a time, each bounded
 * by KRB_IO_TIMEOUT_S per read/write. */
/* kadm5/admin.h defines MIN and MAX: basic/macro.h's win */
#include <kadm5/admin.h>
#undef MIN
#undef MAX
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>

#include "../basic/dl.h"
#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../store/store.h"
#include "krb-internal.h"
#include "krb.h"

struct locker {
	const struct krb_locker_options *o;
	struct store *store;
	gss_cred_id_t cred;
	krb5_context kctx;
	char *realm;
};

/* libkadm5clnt (the keytab service), loaded by krb_locker_run() as krb_lib (krb-internal.h). */
static struct {
	bool loaded;
	__typeof__(kadm5_create_principal) *kadm5_create_principal;
	__typeof__(kadm5_destroy) *kadm5_destroy;
	__typeof__(kadm5_free_kadm5_key_data) *kadm5_free_kadm5_key_data;
	__typeof__(kadm5_free_principal_ent) *kadm5_free_principal_ent;
	__typeof__(kadm5_get_principal) *kadm5_get_principal;
	__typeof__(kadm5_get_principal_keys) *kadm5_get_principal_keys;
	__typeof__(kadm5_init_with_skey) *kadm5_init_with_skey;
	__typeof__(kadm5_randkey_principal) *kadm5_randkey_principal;
} kadm;

static int kadm_load(struct error *err)
{
#define S(f) DL_SYM(__typeof__(kadm), f, #f)
	static const struct dl_sym syms[] = {
		S(kadm5_create_principal),
		S(kadm5_destroy),
		S(kadm5_free_kadm5_key_data),
		S(kadm5_free_principal_ent),
		S(kadm5_get_principal),
		S(kadm5_get_principal_keys),
		S(kadm5_init_with_skey),
		S(kadm5_randkey_principal),
	};
#undef S

	if (kadm.loaded)
		return 0;
	if (dl_load("libkadm5clnt_mit.so.12", syms, ELEMENTSOF(syms), &kadm, err) < 0)
		return error_prefix(err, "krb");
	kadm.loaded = true;
	return 0;
}

static json_t *refuse(const char *fmt, ...) _printf_(1, 2);
static json_t *refuse(const char *fmt, ...)
{
	_cleanup_free_ char *m = NULL;
	va_list ap;

	va_start(ap, fmt);
	m = strdup_vprintf(fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", m ? m : "refused");
}

/* "host/<h>@<our realm>" -> h (malloc'ed), else NULL. */
static char *client_host(const struct locker *l, const char *client)
{
	const char *at = strrchr(client, '@');

	if (!startswith(client, "host/") || !at || strcmp(at + 1, l->realm) || at == client + 5 ||
	    memchr(client + 5, '/', (size_t)(at - client - 5)))
		return NULL;
	return strndup(client + 5, (size_t)(at - client - 5));
}

/* The instance, placed on host, and its manifest; a refusal reply otherwise. */
static json_t *check_placed(struct locker *l, const char *client, const json_t *req, char **ret_host, char **ret_proid,
			    json_t **ret_manifest)
{
	const char *inst = json_string_value(json_object_get(req, "instance"));
	_cleanup_free_ char *host = client_host(l, client);
	struct cellns_placement p = CELLNS_PLACEMENT_INIT;
	const char *dot;
	int r;

	if (!host)
		return refuse("%s is not a host principal of realm %s", client, l->realm);
	if (!inst || !(dot = strchr(inst, '.')) || dot == inst)
		return refuse("request without a valid instance");
	r = cellns_placement_get(l->store, host, inst, &p, NULL, NULL);
	if (r == -ENOENT || r == -EINVAL)
		return refuse("%s is not placed on %s", inst, host);
	if (r < 0)
		return refuse("reading the placement of %s: %s", inst, store_strerror(r));
	r = cellns_scheduled_get(l->store, inst, ret_manifest, NULL);
	if (r < 0)
		return refuse("reading the manifest of %s: %s", inst, store_strerror(r));
	*ret_proid = strndup(inst, (size_t)(dot - inst));
	*ret_host = TAKE_PTR(host);
	return NULL;
}

static char *ticket_path(const struct locker *l, const char *princ)
{
	_cleanup_free_ char *n = strdup(princ);

	for (char *c = n; c && *c; c++)
		if (*c == '/')
			*c = '#';
	return n ? strdup_printf("%s/%s", l->o->dir, n) : NULL;
}

static json_t *op_forward(struct locker *l, const char *client, gss_cred_id_t deleg)
{
	_cleanup_free_ char *path = ticket_path(l, client), *ccn = path ? strdup_printf("FILE:%s.new", path) : NULL,
			    *tmp = path ? strdup_printf("%s.new", path) : NULL;
	gss_key_value_element_desc el = { "ccache", ccn };
	gss_key_value_set_desc cs = { 1, &el };
	struct error e = ERROR_INIT;
	OM_uint32 maj, min;
	json_t *j;

	if (!ccn || !tmp)
		return NULL;
	if (deleg == GSS_C_NO_CREDENTIAL)
		return refuse("no forwardable ticket was delegated (kinit -f)");
	(void)unlink(tmp);
	maj = krb_lib.gss_store_cred_into(&min, deleg, GSS_C_INITIATE, (gss_OID)*krb_lib.gss_mech_krb5, 1, 0, &cs, NULL, NULL);
	if (GSS_ERROR(maj)) {
		(void)krb_gss_error(&e, "storing the ticket", maj, min);
		j = refuse("%s", e.msg);
		error_clear(&e);
		return j;
	}
	if (chmod(tmp, 0600) < 0 || rename(tmp, path) < 0)
		return refuse("storing the ticket: %s", strerror(errno));
	fprintf(stderr, "treadle locker: stored the ticket of %s\n", client);
	return json_pack("{s:b, s:s}", "ok", 1, "principal", client);
}

static json_t *op_tickets(struct locker *l, const char *client, const json_t *req)
{
	_cleanup_free_ char *host = NULL, *proid = NULL;
	_cleanup_json_ json_t *m = NULL, *out = json_object();
	const json_t *t;
	json_t *refusal;
	size_t i;

	if (!out)
		return NULL;
	refusal = check_placed(l, client, req, &host, &proid, &m);
	if (refusal)
		return refusal;
	json_array_foreach(json_object_get(m, "tickets"), i, t) {
		const char *princ = json_string_value(t);
		_cleanup_free_ char *path = princ ? ticket_path(l, princ) : NULL, *data = NULL, *b = NULL;
		size_t len = 0;

		if (!path)
			continue;
		if (read_file(path, &data, &len) == 0)
			b = krb_b64_encode(data, len);
		if (json_object_set_new(out, princ, json_string(b ? b : "")) < 0)
			return NULL;
	}
	fprintf(stderr, "treadle locker: %zu ticket(s) of %s for %s\n", json_object_size(out),
		json_string_value(json_object_get(req, "instance")), client);
	return json_pack("{s:b, s:O}", "ok", 1, "tickets", out);
}

/* ---- keytabs through kadm5 ---- */

/* The keytab of principal pname (created with a random key when missing and
 * create), base64 in *ret. */
static int kadm_keytab(struct locker *l, const char *pname, bool create, char **ret, struct error *err)
{
	void *h = NULL;
	krb5_principal p = NULL;
	krb5_keytab kt = NULL;
	kadm5_key_data *kd = NULL;
	int nkd = 0, r = -1;
	kadm5_ret_t k;
	kadm5_config_params params;
	kadm5_principal_ent_rec ent;
	char tdir[] = "/tmp/treadle-kt.XXXXXX";
	_cleanup_free_ char *ktpath = NULL, *ktname = NULL, *data = NULL;
	size_t len;

	memset(&params, 0, sizeof(params));
	if (!mkdtemp(tdir))
		return error_sys(err, errno, "keytab");
	ktpath = strdup_printf("%s/kt", tdir);
	ktname = ktpath ? strdup_printf("FILE:%s", ktpath) : NULL;
	if (!ktname) {
		r = error_sys(err, ENOMEM, "keytab");
		goto out;
	}
	k = kadm.kadm5_init_with_skey(l->kctx, (char *)l->o->kadmin_principal, (char *)l->o->kadmin_keytab,
				 (char *)KADM5_ADMIN_SERVICE, &params, KADM5_STRUCT_VERSION, KADM5_API_VERSION_4, NULL, &h);
	if (k) {
		r = krb_krb5_error(err, l->kctx, "kadm5", k);
		goto out;
	}
	if ((k = krb_lib.krb5_parse_name(l->kctx, pname, &p))) {
		r = krb_krb5_error(err, l->kctx, pname, k);
		goto out;
	}
	memset(&ent, 0, sizeof(ent));
	k = kadm.kadm5_get_principal(h, p, &ent, KADM5_PRINCIPAL_NORMAL_MASK);
	if (k == KADM5_UNK_PRINC && create) {
		char pw[33];
		unsigned char rnd[16];
		_cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

		if (fd < 0 || read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
			r = error_sys(err, errno ? errno : EIO, "random");
			goto out;
		}
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
		memset(&ent, 0, sizeof(ent));
		ent.principal = p;
		k = kadm.kadm5_create_principal(h, &ent, KADM5_PRINCIPAL, pw);
		if (!k)
			k = kadm.kadm5_randkey_principal(h, p, NULL, NULL);
		if (k) {
			r = krb_krb5_error(err, l->kctx, "creating the principal", k);
			goto out;
		}
		fprintf(stderr, "treadle locker: created principal %s\n", pname);
	} else if (k) {
		r = krb_krb5_error(err, l->kctx, pname, k);
		goto out;
	} else
		kadm.kadm5_free_principal_ent(h, &ent);
	k = kadm.kadm5_get_principal_keys(h, p, 0, &kd, &nkd);
	if (k) {
		r = krb_krb5_error(err, l->kctx, "extracting the keys", k);
		goto out;
	}
	if ((k = krb_lib.krb5_kt_resolve(l->kctx, ktname, &kt))) {
		r = krb_krb5_error(err, l->kctx, "keytab", k);
		goto out;
	}
	for (int i = 0; i < nkd; i++) {
		krb5_keytab_entry e;

		memset(&e, 0, sizeof(e));
		e.principal = p;
		e.vno = kd[i].kvno;
		e.key = kd[i].key;
		if ((k = krb_lib.krb5_kt_add_entry(l->kctx, kt, &e))) {
			r = krb_krb5_error(err, l->kctx, "keytab", k);
			goto out;
		}
	}
	krb_lib.krb5_kt_close(l->kctx, kt);
	kt = NULL;
	if (nkd == 0 || read_file(ktpath, &data, &len) < 0) {
		r = error_set(err, ERR_TEMP, 0, "%s has no keys", pname);
		goto out;
	}
	*ret = krb_b64_encode(data, len);
	r = *ret ? 0 : error_sys(err, ENOMEM, "keytab");
out:
	if (data)
		explicit_bzero(data, len);
	if (kt)
		krb_lib.krb5_kt_close(l->kctx, kt);
	if (ktpath)
		(void)unlink(ktpath);
	(void)rmdir(tdir);
	if (kd)
		kadm.kadm5_free_kadm5_key_data(l->kctx, nkd, kd);
	if (p)
		krb_lib.krb5_free_principal(l->kctx, p);
	if (h)
		kadm.kadm5_destroy(h);
	return r;
}

static json_t *op_keytab(struct locker *l, const char *client, const json_t *req)
{
	_cleanup_free_ char *host = NULL, *proid = NULL, *pname = NULL, *b = NULL;
	_cleanup_json_ json_t *m = NULL;
	struct error e = ERROR_INIT;
	json_t *refusal, *j;

	if (!l->o->kadmin_principal)
		return refuse("this locker serves no keytabs");
	refusal = check_placed(l, client, req, &host, &proid, &m);
	if (refusal)
		return refusal;
	if (!strcmp(proid, "root") || !strcmp(proid, "host") || !strcmp(proid, "admin") || !strcmp(proid, "krbtgt") ||
	    !strcmp(proid, "kadmin"))
		return refuse("no keytab for proid %s", proid);
	pname = strdup_printf("%s/%s", proid, host);
	if (!pname)
		return NULL;
	if (kadm_keytab(l, pname, true, &b, &e) < 0) {
		j = refuse("%s", e.msg);
		error_clear(&e);
		return j;
	}
	fprintf(stderr, "treadle locker: keytab of %s for %s\n", pname, client);
	return json_pack("{s:b, s:s, s:s}", "ok", 1, "principal", pname, "keytab", b);
}

/* A manifest keytab spec as a principal: "A#B@R" -> "A/B@R" (A the
 * proid), "owner:princ" -> princ (owner the proid, princ's first component
 * too); NULL when the proid may not have it. */
static char *spec_principal(const char *spec, const char *proid)
{
	const char *colon = strchr(spec, ':'), *hash = strchr(spec, '#');
	size_t n = strlen(proid);
	char *p;

	if (colon) {
		if ((size_t)(colon - spec) != n || strncmp(spec, proid, n))
			return NULL;
		spec = colon + 1;
		if (strncmp(spec, proid, n) || (spec[n] != '/' && spec[n] != '@' && spec[n] != 0))
			return NULL;
		return strdup(spec);
	}
	if (!hash || (size_t)(hash - spec) != n || strncmp(spec, proid, n))
		return NULL;
	p = strdup(spec);
	if (p)
		p[n] = '/';
	return p;
}

static json_t *op_keytabs(struct locker *l, const char *client, const json_t *req)
{
	_cleanup_free_ char *host = NULL, *proid = NULL;
	_cleanup_json_ json_t *m = NULL, *out = json_object();
	const json_t *t;
	json_t *refusal;
	size_t i;

	if (!out)
		return NULL;
	if (!l->o->kadmin_principal)
		return refuse("this locker serves no keytabs");
	refusal = check_placed(l, client, req, &host, &proid, &m);
	if (refusal)
		return refusal;
	json_array_foreach(json_object_get(m, "keytabs"), i, t) {
		const char *spec = json_string_value(t);
		_cleanup_free_ char *pname = spec ? spec_principal(spec, proid) : NULL, *b = NULL;
		struct error e = ERROR_INIT;
		json_t *j;

		if (!pname)
			return refuse("keytab %s does not belong to proid %s", spec ? spec : "?", proid);
		if (kadm_keytab(l, pname, true, &b, &e) < 0) {
			j = refuse("keytab %s: %s", spec, e.msg);
			error_clear(&e);
			return j;
		}
		if (json_object_set_new(out, spec, json_string(b)) < 0)
			return NULL;
	}
	return json_pack("{s:b, s:O}", "ok", 1, "keytabs", out);
}

/* ---- connections ---- */

static void serve(struct locker *l, int fd)
{
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_name_t client = GSS_C_NO_NAME;
	gss_cred_id_t deleg = GSS_C_NO_CREDENTIAL;
	gss_buffer_desc in, out = GSS_C_EMPTY_BUFFER, nb = GSS_C_EMPTY_BUFFER;
	_cleanup_json_ json_t *req = NULL, *reply = NULL;
	_cleanup_free_ char *cname = NULL;
	struct error e = ERROR_INIT;
	OM_uint32 maj, min;
	const char *op;

	for (;;) {
		_cleanup_free_ void *buf = NULL;
		int r = krb_frame_recv(fd, &buf, &in.length);

		if (r < 0)
			goto out;
		in.value = buf;
		maj = krb_lib.gss_accept_sec_context(&min, &ctx, l->cred, &in, GSS_C_NO_CHANNEL_BINDINGS, &client, NULL, &out,
					     NULL, NULL, &deleg);
		if (out.length) {
			(void)krb_frame_send(fd, out.value, out.length);
			krb_lib.gss_release_buffer(&min, &out);
		}
		if (GSS_ERROR(maj)) {
			(void)krb_gss_error(&e, "accepting a client", maj, min);
			fprintf(stderr, "treadle locker: %s\n", e.msg);
			goto out;
		}
		if (!(maj & GSS_S_CONTINUE_NEEDED))
			break;
	}
	maj = krb_lib.gss_display_name(&min, client, &nb, NULL);
	if (GSS_ERROR(maj))
		goto out;
	cname = strndup(nb.value, nb.length);
	krb_lib.gss_release_buffer(&min, &nb);
	if (!cname || krb_msg_recv(fd, ctx, &req, &e) < 0)
		goto out;
	op = json_string_value(json_object_get(req, "op"));
	if (op && !strcmp(op, "forward"))
		reply = op_forward(l, cname, deleg);
	else if (op && !strcmp(op, "tickets"))
		reply = op_tickets(l, cname, req);
	else if (op && !strcmp(op, "keytab"))
		reply = op_keytab(l, cname, req);
	else if (op && !strcmp(op, "keytabs"))
		reply = op_keytabs(l, cname, req);
	else
		reply = refuse("unknown op '%s'", op ? op : "");
	if (!reply)
		reply = refuse("out of memory");
	if (reply && !json_is_true(json_object_get(reply, "ok")))
		fprintf(stderr, "treadle locker: refused %s (%s): %s\n", cname, op ? op : "?",
			json_string_value(json_object_get(reply, "error")));
	if (reply)
		(void)krb_msg_send(fd, ctx, reply, &e);
out:
	if (error_isset(&e))
		error_clear(&e);
	if (client != GSS_C_NO_NAME)
		krb_lib.gss_release_name(&min, &client);
	if (deleg != GSS_C_NO_CREDENTIAL)
		krb_lib.gss_release_cred(&min, &deleg);
	if (ctx != GSS_C_NO_CONTEXT)
		krb_lib.gss_delete_sec_context(&min, &ctx, GSS_C_NO_BUFFER);
}

static int listen_on(const char *hostport, int *ret_port, struct error *err)
{
	_cleanup_free_ char *host = strdup(hostport);
	char *colon = host ? strrchr(host, ':') : NULL;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, one = 1, r;

	if (!colon)
		return error_set(err, ERR_USAGE, 0, "--listen: expected host:port, got '%s'", hostport);
	*colon = 0;
	r = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &ai);
	if (r != 0)
		return error_set(err, ERR_USAGE, 0, "--listen %s: %s", hostport, gai_strerror(r));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		r = errno;
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return error_sys(err, r, "listening on %s", hostport);
	}
	freeaddrinfo(ai);
	*ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

int krb_locker_run(const struct krb_locker_options *o, struct error *err)
{
	struct locker l = { .o = o, .cred = GSS_C_NO_CREDENTIAL };
	_cleanup_free_ char *me = strdup_printf("host/%s", o->hostname), *hp = NULL;
	gss_key_value_element_desc el = { "keytab", o->keytab };
	gss_key_value_set_desc cs = { 1, &el };
	gss_buffer_desc nb;
	gss_name_t name = GSS_C_NO_NAME;
	_cleanup_close_ int lfd = -1, sfd = -1;
	OM_uint32 maj, min;
	sigset_t mask;
	int port = 0, r;

	if (!me)
		return error_sys(err, ENOMEM, "locker");
	if (krb_lib_load(err) < 0 || kadm_load(err) < 0)
		return -1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0)
		return error_sys(err, errno, "locker: signalfd");
	r = mkdir_p(o->dir, 0700);
	if (r < 0 || chmod(o->dir, 0700) < 0)
		return error_sys(err, r < 0 ? -r : errno, "mkdir %s", o->dir);
	if (krb_lib.krb5_init_context(&l.kctx) || krb_lib.krb5_get_default_realm(l.kctx, &l.realm))
		return error_set(err, ERR_PERM, 0, "locker: no default realm (krb5.conf, KRB5_CONFIG)");
	nb.value = me;
	nb.length = strlen(me);
	maj = krb_lib.gss_import_name(&min, &nb, *krb_lib.GSS_KRB5_NT_PRINCIPAL_NAME, &name);
	if (!GSS_ERROR(maj))
		maj = krb_lib.gss_acquire_cred_from(&min, name, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_ACCEPT, &cs, &l.cred,
					    NULL, NULL);
	krb_lib.gss_release_name(&min, &name);
	if (GSS_ERROR(maj)) {
		r = krb_gss_error(err, o->keytab, maj, min);
		goto out;
	}
	lfd = listen_on(o->listen, &port, err);
	if (lfd < 0) {
		r = lfd;
		goto out;
	}
	r = store_open(o->store_url, NULL, &l.store, err);
	if (r < 0)
		goto out;
	hp = strdup_printf("%s:%d", o->hostname, port);
	if (!hp) {
		r = error_sys(err, ENOMEM, "locker");
		goto out;
	}
	r = cellns_locker_register(l.store, CELLNS_TICKET_LOCKER, hp);
	if (r >= 0 && o->kadmin_principal)
		r = cellns_locker_register(l.store, CELLNS_KEYTAB_LOCKER, hp);
	if (r < 0) {
		r = error_set(err, ERR_TEMP, -r, "registering %s: %s", hp, store_strerror(r));
		goto out;
	}
	fprintf(stderr, "treadle locker: serving %s as %s@%s%s\n", hp, me, l.realm,
		o->kadmin_principal ? " (tickets and keytabs)" : " (tickets)");
	(void)signal(SIGPIPE, SIG_IGN);
	for (;;) {
		struct timeval tv = { .tv_sec = KRB_IO_TIMEOUT_S };
		struct pollfd pfd[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		int c;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = error_sys(err, errno, "poll");
			goto out;
		}
		if (pfd[1].revents) { /* SIGTERM/SIGINT: the registration goes with the session */
			fprintf(stderr, "treadle locker: stopping\n");
			r = 0;
			goto out;
		}
		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
				continue;
			r = error_sys(err, errno, "accept");
			goto out;
		}
		(void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		serve(&l, c);
		close(c);
	}
out:
	store_close(l.store);
	if (l.cred != GSS_C_NO_CREDENTIAL)
		krb_lib.gss_release_cred(&min, &l.cred);
	krb_lib.krb5_free_default_realm(l.kctx, l.realm);
	krb_lib.krb5_free_context(l.kctx);
	return r;
}
