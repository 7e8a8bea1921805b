/* api-internal.h: what the files of src/api/ share (api.c: the daemon, HTTP,
 * who may do what, event streams; api-routes.c: the REST resources and the
 * metrics, and the helpers both use; api.c calls api-routes.c, never the reverse). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

#include <stdint.h>
#include <stdio.h>

/* libmicrohttpd (and gnutls under it), loaded by api_run() before any daemon
 * starts, not linked: every treadle exec would pay for it (basic/dl.h).
 * Every MHD_x() of src/api/ is called as api_mhd.x(). */
struct api_mhd {
	bool loaded;
	enum MHD_Result (*add_response_header)(struct MHD_Response *, const char *, const char *);
	struct MHD_Response *(*create_response_from_buffer)(size_t, void *, enum MHD_ResponseMemoryMode);
	struct MHD_Response *(*create_response_from_callback)(uint64_t, size_t, MHD_ContentReaderCallback, void *,
							       MHD_ContentReaderFreeCallback);
	void (*destroy_response)(struct MHD_Response *);
	const union MHD_ConnectionInfo *(*get_connection_info)(struct MHD_Connection *, enum MHD_ConnectionInfoType, ...);
	int (*get_connection_values)(struct MHD_Connection *, enum MHD_ValueKind, MHD_KeyValueIterator, void *);
	const union MHD_DaemonInfo *(*get_daemon_info)(struct MHD_Daemon *, enum MHD_DaemonInfoType, ...);
	enum MHD_Result (*get_timeout)(struct MHD_Daemon *, MHD_UNSIGNED_LONG_LONG *);
	enum MHD_Result (*is_feature_supported)(enum MHD_FEATURE);
	const char *(*lookup_connection_value)(struct MHD_Connection *, enum MHD_ValueKind, const char *);
	enum MHD_Result (*queue_response)(struct MHD_Connection *, unsigned int, struct MHD_Response *);
	void (*resume_connection)(struct MHD_Connection *);
	enum MHD_Result (*run)(struct MHD_Daemon *);
	struct MHD_Daemon *(*start_daemon)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
					   MHD_AccessHandlerCallback, void *, ...);
	void (*stop_daemon)(struct MHD_Daemon *);
	void (*suspend_connection)(struct MHD_Connection *);
};
extern struct api_mhd api_mhd;

struct store;

enum api_role { API_ROLE_READER, API_ROLE_USER, API_ROLE_ROOT };

/* Who is asking: root, a user (may change instances of proid == user), or a reader. */
struct api_peer {
	enum api_role role;
	char *user; /* the user name (NULL for an anonymous reader) */
	bool tcp;
};

struct api_ctx {
	struct store *s;
	char host[256];	 /* this host: the source of the events run/stop post */
	const char *root; /* the cell's root: the node agent's directory is <root>/node */
	bool check_user; /* the proid must be a user here (single-machine cell) */
};

/* One request, its method, path split into components, body. */
struct api_request {
	struct MHD_Connection *conn;
	const char *method;
	char **parts; /* path components (non-empty), NULL-terminated */
	size_t n_parts;
	const char *body;
	size_t body_len;
	const struct api_peer *peer;
};

/* The answer: status and a JSON body (owned), or text (owned) with its type. */
struct api_reply {
	unsigned status;
	json_t *json;
	char *text;
	const char *content_type;
};

/* Fill rp with {"message": msg} (and "errors": one line each, when msg has several lines). */
void api_reply_error(struct api_reply *rp, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The REST resources (api-routes.c).  Streams are answered in api.c. */
void api_route(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp);
/* A query argument or NULL. */
const char *api_arg(const struct api_request *rq, const char *name);
/* Does name match a Treadmill filter (fnmatch; a pattern without '#' also as "<pattern>#*"). */
bool api_match(const char *pattern, const char *name);

/* The web UI's files (ui/), embedded at build time: build/gen/api-ui-assets.c, by scripts/embed-ui.sh. */
struct api_ui_asset {
	const char *name; /* "index.html", "app.js", ... */
	const unsigned char *data;
	size_t len;
};
extern const struct api_ui_asset api_ui_assets[]; /* ends with name == NULL */

/* GET /metrics, api-metrics.c: the node's part (its containers' cgroups; nothing when <root>/node has no
 * node agent) and the master's (election, placed count). */
void api_metrics_node(struct store *s, const char *root, FILE *f);
void api_metrics_master(struct store *s, const char *root, const char *host, size_t placed, FILE *f);

/* GET /local-app/... (api-logs.c): this server's containers (<root>/node) and their logs.  A log asked
 * with ?follow=1 also fills *ret_follow (follow, the open `current` at the end of what rp->text holds or
 * -1, the log directory, both the caller's): api.c streams what comes next. */
struct api_log_follow {
	bool follow;
	int fd;
	char *dir;
};
void api_local_app(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp,
		   struct api_log_follow *ret_follow);
