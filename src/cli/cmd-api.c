/* cmd-api.c: `treadle api` (the REST API daemon, src/api/) and the CLI's
 * client of it: run, stop, show and trace go through the API when given
 * --api URL or $TREADLE_API (a Unix socket path, http://host:port or
 * https://host:port, the CA file in $TREADLE_API_CACERT), with libcurl
 * (CURLOPT_UNIX_SOCKET_PATH for the socket). */
#include <getopt.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../api/api.h"
#include "../basic/dl.h"
#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../manifest/manifest.h"
#include "../manifest/merge.h"
#include "cli.h"

enum { OPT_SOCKET = 0x200, OPT_LISTEN, OPT_TOKENS, OPT_TLS_CERT, OPT_TLS_KEY };

const struct cli_option api_options[] = {
	{ "socket", OPT_SOCKET, "PATH", "the Unix socket (default <root>/api.sock)" },
	{ "listen", OPT_LISTEN, "HOST:PORT", "also serve TCP there (default: off)" },
	{ "tokens", OPT_TOKENS, "FILE", "bearer tokens for TCP: lines 'TOKEN root|reader' or 'TOKEN user NAME'" },
	{ "tls-cert", OPT_TLS_CERT, "FILE", "TCP is HTTPS with this PEM certificate (chain); needs --tls-key" },
	{ "tls-key", OPT_TLS_KEY, "FILE", "the certificate's PEM private key (mode 600)" },
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTIONS_END,
};

int cmd_api(int argc, char **argv)
{
	struct api_options o = { 0 };
	const char *root = NULL, *store_url = NULL;
	_cleanup_free_ char *url = NULL;
	struct error err = ERROR_INIT;
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, api_options, false)) >= 0) {
		switch (c) {
		case OPT_SOCKET: o.socket_path = optarg; break;
		case OPT_LISTEN: o.listen = optarg; break;
		case OPT_TOKENS: o.tokens_file = optarg; break;
		case OPT_TLS_CERT: o.tls_cert = optarg; break;
		case OPT_TLS_KEY: o.tls_key = optarg; break;
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		default: return cli_usage_error("api", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("api", "unexpected argument '%s'", argv[optind]);
	url = cli_store_url(root, store_url);
	if (!url)
		return EXIT_TEMP;
	o.root = cli_root(root);
	o.store_url = url;
	if (api_run(&o, &err) < 0)
		return error_report(&err);
	return EXIT_OK;
}

/* ------------------------------------------------------------ client */

const char *cli_api_url(const char *opt_api)
{
	const char *e = getenv("TREADLE_API");

	if (opt_api && *opt_api)
		return opt_api;
	return e && *e ? e : NULL;
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	char *p = realloc(b->p, b->n + n + 1);

	if (!p)
		return 0;
	memcpy(p + b->n, ptr, n);
	b->p = p;
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

/* libcurl (and the TLS stack under it) is loaded at the first API call, not
 * linked: every treadle exec would pay for it (basic/dl.h). */
static struct {
	bool loaded;
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} C;

static int curl_load(struct error *err)
{
#define S(f) DL_SYM(__typeof__(C), f, "curl_" #f)
	static const struct dl_sym syms[] = {
		S(easy_init), S(easy_setopt), S(easy_perform), S(easy_getinfo),
		S(easy_cleanup), S(easy_strerror), S(slist_append), S(slist_free_all),
	};
#undef S

	if (C.loaded)
		return 0;
	if (dl_load("libcurl.so.4", syms, ELEMENTSOF(syms), &C, err) < 0)
		return error_prefix(err, "api");
	C.loaded = true;
	return 0;
}

/* Point c at api + path (path starts with '/'): a URL, or a Unix socket; the CA file and the token. *hdrs gets
 * the Authorization header (the caller frees it after the transfer). */
static int api_setup(CURL *c, const char *api, const char *path, struct curl_slist **hdrs)
{
	_cleanup_free_ char *url = NULL, *auth = NULL;
	const char *tok = getenv("TREADLE_API_TOKEN"), *ca = getenv("TREADLE_API_CACERT");

	if (startswith(api, "http://") || startswith(api, "https://")) {
		url = strdup_printf("%s%s", api, path);
		if (ca && *ca)
			C.easy_setopt(c, CURLOPT_CAINFO, ca);
	} else {
		url = strdup_printf("http://localhost%s", path);
		C.easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, api);
	}
	if (!url)
		return -ENOMEM;
	C.easy_setopt(c, CURLOPT_URL, url); /* libcurl copies it */
	C.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (tok && *tok && (auth = strdup_printf("Authorization: Bearer %s", tok)))
		*hdrs = C.slist_append(*hdrs, auth);
	return 0;
}

/* Percent-encode every character a path component may not hold ('#', '/', '?', '%' ...). */
static char *escape(const char *s)
{
	_cleanup_free_ char *out = malloc(strlen(s) * 3 + 1);
	size_t k = 0;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~*", *p))
			out[k++] = (char)*p;
		else
			k += (size_t)snprintf(out + k, 4, "%%%02X", *p);
	}
	out[k] = 0;
	return TAKE_PTR(out);
}

char *cli_api_path(const char *resource, const char *id)
{
	_cleanup_free_ char *e = escape(id);

	return e ? strdup_printf("/%s/%s", resource, e) : NULL;
}

int cli_api_call(const char *api, const char *method, const char *path, const char *body, json_t **ret,
		 struct error *err)
{
	struct buf b = { NULL, 0 };
	struct curl_slist *hdrs = NULL;
	long status = 0;
	CURLcode cc;
	CURL *c;
	json_t *j;

	if (curl_load(err) < 0)
		return -1;
	c = C.easy_init();
	if (!c || api_setup(c, api, path, &hdrs) < 0) {
		C.easy_cleanup(c);
		return error_sys(err, ENOMEM, "api");
	}
	C.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	C.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	C.easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (body) {
		hdrs = C.slist_append(hdrs, "Content-Type: application/json");
		C.easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	C.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	cc = C.easy_perform(c);
	C.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	C.easy_cleanup(c);
	C.slist_free_all(hdrs);
	if (cc != CURLE_OK) {
		free(b.p);
		return error_set(err, ERR_TEMP, 0, "api %s: %s", api, C.easy_strerror(cc));
	}
	j = b.p ? json_loads(b.p, JSON_DECODE_ANY, NULL) : NULL;
	free(b.p);
	if (status >= 200 && status < 300) {
		*ret = j;
		return 0;
	}
	error_set(err, status >= 500 ? ERR_TEMP : ERR_PERM, 0, "%s",
		  json_string_value(json_object_get(j, "message")) ?: "api: unexpected answer");
	json_decref(j);
	return -1;
}

/* ------------------------------------------- run, stop, show, trace */

int cli_api_run(const char *api, const char *file, const struct manifest_run_flags *f, const char *app,
		const char *env, int64_t count)
{
	_cleanup_json_ json_t *m = NULL, *ans = NULL;
	_cleanup_free_ char *text = NULL, *body = NULL, *path = NULL, *eapp = escape(app), *eenv = env ? escape(env) : NULL;
	struct error err = ERROR_INIT;
	size_t len = 0, i;
	json_t *v;
	int r;

	if (file) {
		r = read_file(file, &text, &len);
		if (r < 0)
			return error_sys(&err, -r, "%s", file), error_report(&err);
		r = manifest_parse(text, len, MANIFEST_AUTO, file, &m, &err);
	} else {
		m = json_object();
		r = m ? 0 : error_sys(&err, ENOMEM, "run");
	}
	if (r >= 0)
		r = manifest_merge_run(m, f, &err);
	if (r >= 0)
		r = manifest_validate(m, false, &err);
	if (r < 0)
		return error_report(&err);
	body = manifest_dumps(m);
	path = eapp ? strdup_printf("/instance/%s?count=%lld%s%s", eapp, (long long)count, eenv ? "&env=" : "",
				    eenv ? eenv : "")
		    : NULL;
	if (!body || !path)
		return EXIT_TEMP;
	if (cli_api_call(api, "POST", path, body, &ans, &err) < 0)
		return error_report(&err);
	json_array_foreach(json_object_get(ans, "instances"), i, v)
		printf("%s\n", json_string_value(v));
	return EXIT_OK;
}

int cli_api_stop(const char *api, char **ids, int n)
{
	struct error err = ERROR_INIT;
	int rc = EXIT_OK;

	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = cli_api_path("instance", ids[i]);
		_cleanup_json_ json_t *ans = NULL;

		if (!path)
			return EXIT_TEMP;
		if (cli_api_call(api, "DELETE", path, NULL, &ans, &err) < 0)
			rc = error_report(&err);
	}
	return rc;
}

int cli_api_get(const char *api, const char *path, json_t **ret)
{
	struct error err = ERROR_INIT;

	if (cli_api_call(api, "GET", path, NULL, ret, &err) < 0)
		return -error_report(&err);
	return 0;
}

struct stream {
	int (*fn)(json_t *msg, void *ud);
	void *ud;
	char *buf;
	size_t n;
	bool stopped;
};

/* Whole events ("...\n\n") out of the buffer: each "data: " line to fn. */
static size_t on_stream(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct stream *st = ud;
	size_t n = size * nmemb;
	char *p = realloc(st->buf, st->n + n + 1), *end;

	if (!p)
		return 0;
	st->buf = p;
	memcpy(st->buf + st->n, ptr, n);
	st->n += n;
	st->buf[st->n] = 0;
	while ((end = strstr(st->buf, "\n\n"))) {
		*end = 0;
		for (char *line = st->buf, *nl; line; line = nl) {
			nl = strchr(line, '\n');
			if (nl)
				*nl++ = 0;
			if (startswith(line, "data: ")) {
				_cleanup_json_ json_t *m = json_loads(line + 6, 0, NULL);

				if (m && st->fn(m, st->ud)) {
					st->stopped = true;
					return 0;
				}
			}
		}
		st->n -= (size_t)(end + 2 - st->buf);
		memmove(st->buf, end + 2, st->n + 1);
	}
	return n;
}

/* libcurl calls it about once a second, data or not: fn(NULL) may end the stream. */
static int on_tick(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct stream *st = ud;

	if (st->fn(NULL, st->ud)) {
		st->stopped = true;
		return 1;
	}
	return 0;
}

int cli_api_stream(const char *api, const char *topic, const char *filter, int (*fn)(struct json_t *msg, void *ud),
		   void *ud, struct error *err)
{
	_cleanup_free_ char *ef = escape(filter), *path = NULL;
	struct stream st = { fn, ud, NULL, 0, false };
	struct curl_slist *hdrs = NULL;
	long status = 0;
	CURLcode cc;
	CURL *c;

	if (curl_load(err) < 0)
		return -1;
	path = ef ? strdup_printf("/stream/%s?filter=%s", topic, ef) : NULL;
	if (!path)
		return error_sys(err, ENOMEM, "api");
	c = C.easy_init();
	if (!c || api_setup(c, api, path, &hdrs) < 0) {
		C.easy_cleanup(c);
		return error_sys(err, ENOMEM, "api");
	}
	C.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	C.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
	C.easy_setopt(c, CURLOPT_WRITEDATA, &st);
	C.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_tick);
	C.easy_setopt(c, CURLOPT_XFERINFODATA, &st);
	C.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	cc = C.easy_perform(c);
	C.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	C.easy_cleanup(c);
	C.slist_free_all(hdrs);
	free(st.buf);
	if (st.stopped)
		return 0;
	if (cc != CURLE_OK)
		return error_set(err, ERR_TEMP, 0, "api %s: %s", api, C.easy_strerror(cc));
	if (status != 200)
		return error_set(err, status >= 500 ? ERR_TEMP : ERR_PERM, 0, "api %s: stream %s: HTTP %ld", api, topic, status);
	return 0;
}

/* ---------------------------------------------------------------- logs */

static size_t on_text(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = *(struct buf **)ud; /* the error body (small), or NULL once the answer is a 200 */
	size_t n = size * nmemb;

	if (!b)
		return fwrite(ptr, 1, n, stdout) == n && fflush(stdout) == 0 ? n : 0;
	return on_data(ptr, size, nmemb, b);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf **b = ud;

	if (nmemb * size > 9 && startswith(ptr, "HTTP/") && strstr(ptr, " 200"))
		*b = NULL; /* an OK answer: the body is the log, to stdout as it comes */
	return size * nmemb;
}

int cli_api_text(const char *api, const char *path, struct error *err)
{
	struct buf eb = { NULL, 0 }, *target = &eb;
	struct curl_slist *hdrs = NULL;
	long status = 0;
	CURLcode cc;
	CURL *c;
	json_t *j;

	if (curl_load(err) < 0)
		return -1;
	c = C.easy_init();
	if (!c || api_setup(c, api, path, &hdrs) < 0) {
		C.easy_cleanup(c);
		return error_sys(err, ENOMEM, "api");
	}
	C.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	C.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	C.easy_setopt(c, CURLOPT_HEADERDATA, &target);
	C.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_text);
	C.easy_setopt(c, CURLOPT_WRITEDATA, &target);
	cc = C.easy_perform(c);
	C.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	C.easy_cleanup(c);
	C.slist_free_all(hdrs);
	if (status == 200 && (cc == CURLE_OK || cc == CURLE_PARTIAL_FILE)) {
		free(eb.p);
		return 0;
	}
	if (cc != CURLE_OK && status == 0) {
		free(eb.p);
		return error_set(err, ERR_TEMP, 0, "api %s: %s", api, C.easy_strerror(cc));
	}
	j = eb.p ? json_loads(eb.p, 0, NULL) : NULL;
	free(eb.p);
	error_set(err, status >= 500 || status == 0 ? ERR_TEMP : ERR_PERM, 0, "%s",
		  json_string_value(json_object_get(j, "message")) ?: "api: unexpected answer");
	json_decref(j);
	return -1;
}
