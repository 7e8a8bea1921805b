/* api.h: `treadle api`, the cell's REST API daemon (Treadmill's cell/state/ws
 * APIs, reference treadmill-architecture.md §8.2-§8.3, docs/API.md).
 *
 * Daemon layer: includes basic/, store/, cellns/, admin/, trace/, manifest/,
 * sched/ and libmicrohttpd.  One epoll loop: the store's fd (watches back the
 * event streams), the HTTP daemons' epoll fds, a signalfd.  Who may do what:
 * peer credentials on the Unix socket, bearer tokens on TCP. */
#pragma once

#include "../basic/error.h"

struct api_options {
	const char *root;	 /* the cell's root (the socket's default place) */
	const char *store_url;	 /* the cell's store */
	const char *socket_path; /* NULL: <root>/api.sock */
	const char *listen;	 /* "HOST:PORT" for TCP, NULL: none */
	const char *tokens_file; /* bearer tokens for TCP (docs/API.md), NULL: TCP is read-only */
	const char *tls_cert;	 /* PEM certificate (chain) for TCP: HTTPS; NULL: plain HTTP */
	const char *tls_key;	 /* its PEM private key (not readable by others); both or neither */
};

/* Serve until SIGTERM or SIGINT (then 0).  Fails (err set) when the store,
 * the socket, the listener, the tokens file or the TLS files cannot be opened. */
int api_run(const struct api_options *o, struct error *err);
