/* api-internal.h: what the files of src/api/ share (api.c: the daemon, HTTP,
 * who may do what, event streams; api-routes.c: the REST resources and the
 * metrics, and the helpers both use; api.c calls api-routes.c, never the reverse). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

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
