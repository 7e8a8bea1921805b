/* krb.c: the lockers' protocol (frames, GSSAPI context, wrapped JSON), the
 * client operations (forward, tickets, keytabs) and host tickets.  See krb.h. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <string.h>
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

/* ---- frames and messages ---- */

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : negerrno();
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int krb_frame_send(int fd, const void *data, size_t len)
{
	uint32_t n = htonl((uint32_t)len);
	int r;

	if (len > KRB_FRAME_MAX)
		return -EMSGSIZE;
	r = write_all(fd, &n, sizeof(n));
	return r < 0 ? r : write_all(fd, data, len);
}

int krb_frame_recv(int fd, void **ret, size_t *ret_len)
{
	uint32_t n;
	void *buf;
	int r = read_full(fd, &n, sizeof(n));

	if (r < 0)
		return r;
	n = ntohl(n);
	if (n > KRB_FRAME_MAX)
		return -EMSGSIZE;
	buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	r = read_full(fd, buf, n);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = n;
	return 0;
}

struct krb_lib krb_lib;

int krb_lib_load(struct error *err)
{
#define S(f) DL_SYM(struct krb_lib, f, #f)
	static const struct dl_sym k5[] = {
		S(krb5_cc_close),
		S(krb5_cc_end_seq_get),
		S(krb5_cc_initialize),
		S(krb5_cc_next_cred),
		S(krb5_cc_resolve),
		S(krb5_cc_start_seq_get),
		S(krb5_cc_store_cred),
		S(krb5_free_context),
		S(krb5_free_cred_contents),
		S(krb5_free_default_realm),
		S(krb5_free_error_message),
		S(krb5_free_principal),
		S(krb5_free_unparsed_name),
		S(krb5_get_default_realm),
		S(krb5_get_error_message),
		S(krb5_get_init_creds_keytab),
		S(krb5_get_init_creds_opt_alloc),
		S(krb5_get_init_creds_opt_free),
		S(krb5_init_context),
		S(krb5_kt_add_entry),
		S(krb5_kt_close),
		S(krb5_kt_resolve),
		S(krb5_parse_name),
		S(krb5_unparse_name),
	};
	static const struct dl_sym gss[] = {
		S(gss_accept_sec_context),
		S(gss_acquire_cred_from),
		S(gss_delete_sec_context),
		S(gss_display_name),
		S(gss_display_status),
		S(gss_import_name),
		S(gss_init_sec_context),
		S(gss_release_buffer),
		S(gss_release_cred),
		S(gss_release_name),
		S(gss_store_cred_into),
		S(gss_unwrap),
		S(gss_wrap),
		S(gss_mech_krb5),
		S(GSS_KRB5_NT_PRINCIPAL_NAME),
	};
#undef S

	if (krb_lib.loaded)
		return 0;
	if (dl_load("libkrb5.so.3", k5, ELEMENTSOF(k5), &krb_lib, err) < 0 ||
	    dl_load("libgssapi_krb5.so.2", gss, ELEMENTSOF(gss), &krb_lib, err) < 0)
		return error_prefix(err, "krb");
	krb_lib.loaded = true;
	return 0;
}

int krb_gss_error(struct error *err, const char *what, OM_uint32 maj, OM_uint32 min)
{
	_cleanup_free_ char *m = strdup("");

	for (int t = 0; t < 2; t++) {
		OM_uint32 ctx = 0, mi;
		gss_buffer_desc b;

		do {
			if (GSS_ERROR(krb_lib.gss_display_status(&mi, t == 0 ? maj : min, t == 0 ? GSS_C_GSS_CODE : GSS_C_MECH_CODE,
							 GSS_C_NO_OID, &ctx, &b)))
				break;
			if (m && b.length) {
				char *n = strdup_printf("%s%s%.*s", m, *m ? ": " : "", (int)b.length, (char *)b.value);
				free(m);
				m = n;
			}
			krb_lib.gss_release_buffer(&mi, &b);
		} while (ctx);
		if (t == 0 && min == 0)
			break;
	}
	return error_set(err, ERR_TEMP, 0, "%s: %s", what, m && *m ? m : "GSSAPI failure");
}

int krb_krb5_error(struct error *err, krb5_context ctx, const char *what, krb5_error_code code)
{
	const char *m = krb_lib.krb5_get_error_message(ctx, code);
	int r = error_set(err, ERR_TEMP, 0, "%s: %s", what, m ? m : "Kerberos failure");

	krb_lib.krb5_free_error_message(ctx, m);
	return r;
}

int krb_msg_send(int fd, gss_ctx_id_t ctx, const json_t *msg, struct error *err)
{
	_cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
	gss_buffer_desc in, out = GSS_C_EMPTY_BUFFER;
	OM_uint32 maj, min;
	int conf = 0, r;

	if (!text)
		return error_sys(err, ENOMEM, "message");
	in.value = text;
	in.length = strlen(text);
	maj = krb_lib.gss_wrap(&min, ctx, 1, GSS_C_QOP_DEFAULT, &in, &conf, &out);
	if (GSS_ERROR(maj))
		return krb_gss_error(err, "gss_wrap", maj, min);
	r = krb_frame_send(fd, out.value, out.length);
	krb_lib.gss_release_buffer(&min, &out);
	return r < 0 ? error_sys(err, -r, "sending") : 0;
}

int krb_msg_recv(int fd, gss_ctx_id_t ctx, json_t **ret, struct error *err)
{
	_cleanup_free_ void *buf = NULL;
	gss_buffer_desc in, out = GSS_C_EMPTY_BUFFER;
	OM_uint32 maj, min;
	json_error_t je;
	int conf = 0, r;
	size_t len;

	r = krb_frame_recv(fd, &buf, &len);
	if (r < 0)
		return error_sys(err, -r, "receiving");
	in.value = buf;
	in.length = len;
	maj = krb_lib.gss_unwrap(&min, ctx, &in, &out, &conf, NULL);
	if (GSS_ERROR(maj))
		return krb_gss_error(err, "gss_unwrap", maj, min);
	if (!conf) {
		krb_lib.gss_release_buffer(&min, &out);
		return error_set(err, ERR_TEMP, 0, "message not encrypted");
	}
	*ret = json_loadb(out.value, out.length, 0, &je);
	krb_lib.gss_release_buffer(&min, &out);
	if (!json_is_object(*ret)) {
		json_decref(*ret);
		*ret = NULL;
		return error_set(err, ERR_TEMP, 0, "bad message: %s", je.text);
	}
	return 0;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *krb_b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);

		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*o = 0;
	return out;
}

static int krb_b64_decode(const char *s, void **ret, size_t *ret_len)
{
	size_t n = strlen(s), k = 0;
	unsigned char *out;
	uint32_t v = 0;
	int bits = 0;
	bool pad = false;

	if (n % 4)
		return -EINVAL;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *c;

		if (s[i] == '=') {
			if (i < n - 2)
				goto bad;
			pad = true;
			continue;
		}
		c = pad ? NULL : strchr(b64, s[i]);
		if (!c || !s[i])
			goto bad;
		v = v << 6 | (uint32_t)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (unsigned char)(v >> bits);
		}
	}
	*ret = out;
	*ret_len = k;
	return 0;
bad:
	free(out);
	return -EINVAL;
}

/* ---- client ---- */

static int tcp_connect(const char *hostport, char **ret_host, struct error *err)
{
	_cleanup_free_ char *host = strdup(hostport);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	struct timeval tv = { .tv_sec = KRB_IO_TIMEOUT_S };
	char *colon = host ? strrchr(host, ':') : NULL;
	int fd = -1, r;

	if (!host)
		return error_sys(err, ENOMEM, "connect");
	if (!colon || colon == host || !colon[1])
		return error_set(err, ERR_PERM, 0, "locker address '%s': expected host:port", hostport);
	*colon = 0;
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r != 0)
		return error_set(err, ERR_TEMP, 0, "locker %s: %s", hostport, gai_strerror(r));
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		r = errno;
		close(fd);
		fd = -1;
		errno = r;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return error_sys(err, errno, "connecting to locker %s", hostport);
	*ret_host = TAKE_PTR(host);
	return fd;
}

static char *ccache_name(const char *ccache)
{
	return strchr(ccache, ':') ? strdup(ccache) : strdup_printf("FILE:%s", ccache);
}

/* One request to one locker (see krb.h); *ret_reply is the reply object when
 * its "ok" is true; delegate: forward the TGT with it. */
static int krb_call(const char *hostport, const char *ccache, bool delegate, const json_t *req, json_t **ret_reply,
	     struct error *err)
{
	_cleanup_free_ char *host = NULL, *tname = NULL, *ccname = NULL;
	_cleanup_close_ int fd = -1;
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_name_t target = GSS_C_NO_NAME;
	gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out = GSS_C_EMPTY_BUFFER, nb;
	_cleanup_free_ void *inbuf = NULL;
	_cleanup_json_ json_t *reply = NULL;
	OM_uint32 maj, min;
	int r = -1;

	if (krb_lib_load(err) < 0)
		return -1;
	fd = tcp_connect(hostport, &host, err);
	if (fd < 0)
		return fd;
	tname = strdup_printf("host/%s", host);
	if (!tname)
		return error_sys(err, ENOMEM, "locker");
	nb.value = tname;
	nb.length = strlen(tname);
	maj = krb_lib.gss_import_name(&min, &nb, *krb_lib.GSS_KRB5_NT_PRINCIPAL_NAME, &target);
	if (GSS_ERROR(maj))
		return krb_gss_error(err, "locker name", maj, min);
	if (ccache) {
		gss_key_value_element_desc el = { "ccache", NULL };
		gss_key_value_set_desc cs = { 1, &el };

		ccname = ccache_name(ccache);
		if (!ccname) {
			r = error_sys(err, ENOMEM, "locker");
			goto out;
		}
		el.value = ccname;
		maj = krb_lib.gss_acquire_cred_from(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_INITIATE, &cs,
					    &cred, NULL, NULL);
		if (GSS_ERROR(maj)) {
			r = krb_gss_error(err, ccname, maj, min);
			goto out;
		}
	}
	for (;;) {
		maj = krb_lib.gss_init_sec_context(&min, cred, &ctx, target, (gss_OID)*krb_lib.gss_mech_krb5,
					   GSS_C_MUTUAL_FLAG | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG |
						   (delegate ? GSS_C_DELEG_FLAG : 0),
					   0, GSS_C_NO_CHANNEL_BINDINGS, &in, NULL, &out, NULL, NULL);
		if (out.length) {
			int s = krb_frame_send(fd, out.value, out.length);
			krb_lib.gss_release_buffer(&min, &out);
			if (s < 0) {
				r = error_sys(err, -s, "locker %s", hostport);
				goto out;
			}
		}
		if (GSS_ERROR(maj)) {
			r = krb_gss_error(err, "authenticating to the locker", maj, min);
			goto out;
		}
		if (!(maj & GSS_S_CONTINUE_NEEDED))
			break;
		free(inbuf);
		inbuf = NULL;
		r = krb_frame_recv(fd, &inbuf, &in.length);
		if (r < 0) {
			r = error_sys(err, -r, "locker %s", hostport);
			goto out;
		}
		in.value = inbuf;
	}
	if (krb_msg_send(fd, ctx, req, err) < 0 || krb_msg_recv(fd, ctx, &reply, err) < 0) {
		r = -1;
		goto out;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *why = json_string_value(json_object_get(reply, "error"));
		r = error_set(err, ERR_PERM, 0, "refused: %s", why ? why : "no reason given");
		goto out;
	}
	*ret_reply = TAKE_PTR(reply);
	r = 0;
out:
	if (r < 0)
		(void)error_prefix(err, "locker %s", hostport);
	krb_lib.gss_release_name(&min, &target);
	if (cred != GSS_C_NO_CREDENTIAL)
		krb_lib.gss_release_cred(&min, &cred);
	if (ctx != GSS_C_NO_CONTEXT)
		krb_lib.gss_delete_sec_context(&min, &ctx, GSS_C_NO_BUFFER);
	return r;
}

int krb_lockers(const char *store_url, bool keytabs, char ***ret, struct error *err)
{
	struct store_options so = { .read_only = true };
	struct store *s = NULL;
	char **l = NULL;
	int r;

	if (!store_url)
		return error_set(err, ERR_PERM, 0, "no store to find the lockers in");
	r = store_open(store_url, &so, &s, err);
	if (r < 0)
		return r;
	r = cellns_list(s, keytabs ? CELLNS_KEYTAB_LOCKER : CELLNS_TICKET_LOCKER, &l, NULL, NULL);
	store_close(s);
	if (r == -ENOENT)
		l = strv_new();
	else if (r < 0)
		return error_set(err, ERR_TEMP, -r, "listing %s: %s", keytabs ? "/keytab-locker" : "/ticket-locker",
				 store_strerror(r));
	if (!l)
		return error_sys(err, ENOMEM, "lockers");
	*ret = l;
	return 0;
}

/* Write data to dir/name (or path when name is NULL) atomically, owned by uid:gid, 0600. */
static int write_secret(const char *dir, const char *name, const void *data, size_t len, uid_t uid, gid_t gid)
{
	_cleanup_free_ char *path = name ? strdup_printf("%s/%s", dir, name) : strdup(dir);
	_cleanup_free_ char *tmp = path ? strdup_printf("%s.tmp%d", path, (int)getpid()) : NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (!tmp)
		return -ENOMEM;
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return negerrno();
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0600) < 0 || (r = write_all(fd, data, len)) < 0 || fsync(fd) < 0 ||
	    rename(tmp, path) < 0) {
		r = errno ? negerrno() : -EIO;
		(void)unlink(tmp);
		return r;
	}
	return 0;
}

/* The name of a principal or spec as a file name ('/' -> '#'). */
static char *file_name(const char *s)
{
	char *n = strdup(s);

	for (char *c = n; c && *c; c++)
		if (*c == '/')
			*c = '#';
	return n;
}

/* krb_call on each locker in turn until one answers (a refusal ends it). */
static int call_any(char *const *lockers, const char *ccache, const json_t *req, json_t **ret, struct error *err)
{
	int r = error_set(err, ERR_TEMP, 0, "no locker registered");

	for (size_t i = 0; lockers && lockers[i]; i++) {
		error_clear(err);
		r = krb_call(lockers[i], ccache, false, req, ret, err);
		if (r >= 0 || err->code == ERR_PERM)
			return r;
	}
	return r;
}

/* The end time (Unix seconds) of the TGT in the FILE ccache at path, or of
 * its first credential when it holds no TGT; -ENOENT when empty. */
static int krb_ccache_endtime(const char *path, double *ret)
{
	krb5_context ctx = NULL;
	krb5_ccache cc = NULL;
	krb5_cc_cursor cur;
	krb5_creds c;
	_cleanup_free_ char *name = ccache_name(path);
	double end = -1;
	int r = -ENOENT;

	if (!name)
		return -ENOMEM;
	if (krb_lib.krb5_init_context(&ctx))
		return -EIO;
	if (krb_lib.krb5_cc_resolve(ctx, name, &cc) || krb_lib.krb5_cc_start_seq_get(ctx, cc, &cur))
		goto out;
	while (krb_lib.krb5_cc_next_cred(ctx, cc, &cur, &c) == 0) {
		char *sn = NULL;
		bool tgt = krb_lib.krb5_unparse_name(ctx, c.server, &sn) == 0 && startswith(sn, "krbtgt/");

		if (end < 0 || tgt)
			end = (double)(uint32_t)c.times.endtime;
		krb_lib.krb5_free_unparsed_name(ctx, sn);
		krb_lib.krb5_free_cred_contents(ctx, &c);
		if (tgt)
			break;
	}
	krb_lib.krb5_cc_end_seq_get(ctx, cc, &cur);
	if (end >= 0) {
		*ret = end;
		r = 0;
	}
out:
	if (cc)
		krb_lib.krb5_cc_close(ctx, cc);
	krb_lib.krb5_free_context(ctx);
	return r;
}

int krb_tickets_fetch(char *const *lockers, const char *ccache, const char *instance, const char *dir, uid_t uid,
		      gid_t gid, unsigned *ret_missing, double *ret_end, struct error *err)
{
	double earliest = 0;
	_cleanup_json_ json_t *req = json_pack("{s:s, s:s}", "op", "tickets", "instance", instance), *reply = NULL;
	const char *princ;
	json_t *v;
	unsigned missing = 0;
	int r;

	if (!req)
		return error_sys(err, ENOMEM, "tickets");
	r = call_any(lockers, ccache, req, &reply, err);
	if (r < 0)
		return r;
	json_object_foreach(json_object_get(reply, "tickets"), princ, v) {
		_cleanup_free_ void *data = NULL;
		_cleanup_free_ char *fn = NULL, *path = NULL;
		const char *b = json_string_value(v);
		size_t len;
		double end;

		if (!b || !*b) {
			missing++;
			continue;
		}
		fn = file_name(princ);
		if (!fn || strchr(princ, '/') || *princ == '.')
			return error_set(err, ERR_PERM, 0, "locker sent a bad principal '%s'", princ);
		if (krb_b64_decode(b, &data, &len) < 0)
			return error_set(err, ERR_PERM, 0, "locker sent a bad ticket for %s", princ);
		r = write_secret(dir, fn, data, len, uid, gid);
		if (r < 0)
			return error_sys(err, -r, "writing %s/%s", dir, fn);
		path = strdup_printf("%s/%s", dir, fn);
		if (!path)
			return error_sys(err, ENOMEM, "tickets");
		if (krb_ccache_endtime(path, &end) < 0 || end <= now_realtime())
			missing++;
		else if (earliest == 0 || end < earliest)
			earliest = end;
	}
	if (ret_missing)
		*ret_missing = missing;
	if (ret_end)
		*ret_end = earliest;
	return 0;
}

static int write_b64_secret(const char *dir, const char *name, const char *b, uid_t uid, gid_t gid, struct error *err)
{
	_cleanup_free_ void *data = NULL;
	size_t len;
	int r;

	if (!b || krb_b64_decode(b, &data, &len) < 0)
		return error_set(err, ERR_PERM, 0, "locker sent a bad keytab for %s", name ? name : dir);
	r = write_secret(dir, name, data, len, uid, gid);
	return r < 0 ? error_sys(err, -r, "writing %s%s%s", dir, name ? "/" : "", name ? name : "") : 0;
}

int krb_keytab_fetch(char *const *lockers, const char *ccache, const char *instance, const char *path, uid_t uid,
		     gid_t gid, struct error *err)
{
	_cleanup_json_ json_t *req = json_pack("{s:s, s:s}", "op", "keytab", "instance", instance), *reply = NULL;
	int r;

	if (!req)
		return error_sys(err, ENOMEM, "keytab");
	r = call_any(lockers, ccache, req, &reply, err);
	if (r < 0)
		return r;
	return write_b64_secret(path, NULL, json_string_value(json_object_get(reply, "keytab")), uid, gid, err);
}

int krb_keytabs_fetch(char *const *lockers, const char *ccache, const char *instance, const char *dir, uid_t uid,
		      gid_t gid, struct error *err)
{
	_cleanup_json_ json_t *req = json_pack("{s:s, s:s}", "op", "keytabs", "instance", instance), *reply = NULL;
	const char *spec;
	json_t *v;
	int r;

	if (!req)
		return error_sys(err, ENOMEM, "keytabs");
	r = call_any(lockers, ccache, req, &reply, err);
	if (r < 0)
		return r;
	json_object_foreach(json_object_get(reply, "keytabs"), spec, v) {
		_cleanup_free_ char *fn = file_name(spec);

		if (!fn || !*fn || *fn == '.')
			return error_set(err, ERR_PERM, 0, "locker sent a bad keytab name '%s'", spec);
		r = write_b64_secret(dir, fn, json_string_value(v), uid, gid, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int krb_forward(const char *store_url, const char *ccache, unsigned *ret_n, struct error *err)
{
	_cleanup_strv_free_ char **l = NULL;
	_cleanup_json_ json_t *req = json_pack("{s:s}", "op", "forward");
	_cleanup_free_ char *last = NULL;
	unsigned n = 0;
	int r;

	if (!req)
		return error_sys(err, ENOMEM, "forward");
	r = krb_lockers(store_url, false, &l, err);
	if (r < 0)
		return r;
	for (char **p = l; *p; p++) {
		_cleanup_json_ json_t *reply = NULL;
		struct error e = ERROR_INIT;

		if (krb_call(*p, ccache, true, req, &reply, &e) < 0) {
			free(last);
			last = TAKE_PTR(e.msg);
			error_clear(&e);
			continue;
		}
		n++;
	}
	*ret_n = n;
	if (n == 0)
		return error_set(err, ERR_TEMP, 0, "no ticket locker took the ticket%s%s", last ? ": " : " (none registered)",
				 last ? last : "");
	return 0;
}

/* ---- host tickets ---- */

int krb_host_ccache(const char *keytab, const char *hostname, const char *path, struct error *err)
{
	krb5_context ctx = NULL;
	krb5_keytab kt = NULL;
	krb5_principal me = NULL;
	krb5_ccache cc = NULL;
	krb5_creds creds;
	krb5_get_init_creds_opt *opt = NULL;
	_cleanup_free_ char *pname = strdup_printf("host/%s", hostname), *tmp = strdup_printf("%s.tmp%d", path, (int)getpid()),
			    *ccn = tmp ? strdup_printf("FILE:%s", tmp) : NULL;
	bool have = false;
	krb5_error_code k;
	int r = -1;

	memset(&creds, 0, sizeof(creds));
	if (!pname || !ccn)
		return error_sys(err, ENOMEM, "host ticket");
	if (krb_lib_load(err) < 0)
		return -1;
	if (krb_lib.krb5_init_context(&ctx))
		return error_set(err, ERR_TEMP, 0, "host ticket: cannot initialise Kerberos (krb5.conf?)");
	if ((k = krb_lib.krb5_kt_resolve(ctx, keytab, &kt)) || (k = krb_lib.krb5_parse_name(ctx, pname, &me)) ||
	    (k = krb_lib.krb5_get_init_creds_opt_alloc(ctx, &opt))) {
		r = krb_krb5_error(err, ctx, pname, k);
		goto out;
	}
	k = krb_lib.krb5_get_init_creds_keytab(ctx, &creds, me, kt, 0, NULL, opt);
	if (k) {
		r = krb_krb5_error(err, ctx, "host ticket", k);
		goto out;
	}
	have = true;
	(void)unlink(tmp);
	if ((k = krb_lib.krb5_cc_resolve(ctx, ccn, &cc)) || (k = krb_lib.krb5_cc_initialize(ctx, cc, me)) ||
	    (k = krb_lib.krb5_cc_store_cred(ctx, cc, &creds))) {
		r = krb_krb5_error(err, ctx, path, k);
		goto out;
	}
	krb_lib.krb5_cc_close(ctx, cc);
	cc = NULL;
	if (chmod(tmp, 0600) < 0 || rename(tmp, path) < 0) {
		r = error_sys(err, errno, "writing %s", path);
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		(void)unlink(tmp);
	if (cc)
		krb_lib.krb5_cc_close(ctx, cc);
	if (have)
		krb_lib.krb5_free_cred_contents(ctx, &creds);
	if (opt)
		krb_lib.krb5_get_init_creds_opt_free(ctx, opt);
	if (me)
		krb_lib.krb5_free_principal(ctx, me);
	if (kt)
		krb_lib.krb5_kt_close(ctx, kt);
	krb_lib.krb5_free_context(ctx);
	return r;
}
