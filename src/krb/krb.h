/* krb.h: Kerberos for treadle (docs/KERBEROS.md): the lockers' GSSAPI line
 * protocol (client and server ends), the ticket lockers' and keytab service's
 * daemon `treadle locker`, host tickets from a host keytab, keytabs through
 * kadm5, and the client operations the node and the CLI call (`treadle krb
 * forward`, fetching an instance's tickets and keytabs).
 *
 * Domain layer: includes basic/, store/, cellns/.  MIT krb5, GSSAPI and
 * kadm5clnt (Debian libkrb5-dev, krb5-multidev).
 *
 * Protocol (TCP): 4-byte big-endian length + bytes frames.  The client sends
 * GSSAPI context tokens (mutual authentication, target host/<locker host>)
 * until the context is established, then one gss_wrap'ed JSON request; the
 * server answers one gss_wrap'ed JSON reply {"ok": true, ...} or
 * {"ok": false, "error": "<why>"} and closes.  Requests:
 *   {"op":"forward"}                     with delegated credentials: stored as
 *                                        the client principal's ticket
 *   {"op":"tickets","instance":I}        from host/<h>: I placed on h; reply
 *                                        {"tickets": {princ: base64 ccache | ""}}
 *                                        for the manifest's `tickets`
 *   {"op":"keytab","instance":I}         from host/<h>: I placed on h; reply
 *                                        {"principal", "keytab": base64} of
 *                                        <proid>/<h> (created if missing)
 *   {"op":"keytabs","instance":I}        from host/<h>: the manifest's
 *                                        `keytabs`: {"keytabs": {spec: base64}}
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../basic/error.h"

/* ---- client ---- */

/* Every call below sends one request to a locker "host:port" as the principal
 * of ccache ("FILE:..." or a path; NULL: the default ccache), authenticated by
 * GSSAPI against host/<host>.  A refusal is ERR_PERM with the locker's reason,
 * a connection or Kerberos failure ERR_TEMP (the next locker is then tried). */

/* The lockers registered under /ticket-locker (keytabs: /keytab-locker) of
 * the store at url, as a NULL-terminated list of "host:port" (sorted). */
int krb_lockers(const char *store_url, bool keytabs, char ***ret, struct error *err);

/* Obtain the host's TGT (principal host/<hostname>) with the keytab and
 * store it in the FILE ccache at path (mode 0600, written atomically). */
int krb_host_ccache(const char *keytab, const char *hostname, const char *path, struct error *err);

/* Fetch the tickets of instance from the first locker that answers, into
 * dir/<principal> (owner uid:gid, mode 0600, atomically; an empty ticket is
 * not written).  *ret_missing (may be NULL) gets the number of the
 * manifest's tickets still not had (missing, or a TGT already expired),
 * *ret_end (may be NULL) the earliest end time of those written (0: none). */
int krb_tickets_fetch(char *const *lockers, const char *ccache, const char *instance, const char *dir, uid_t uid,
		      gid_t gid, unsigned *ret_missing, double *ret_end, struct error *err);

/* op "keytab": the keytab of <proid>/<host> into path; op "keytabs": the
 * manifest's keytabs into dir/<spec> ('/' of a spec as '#').  Owner uid:gid,
 * mode 0600, atomically; from the first locker that answers. */
int krb_keytab_fetch(char *const *lockers, const char *ccache, const char *instance, const char *path, uid_t uid,
		     gid_t gid, struct error *err);
int krb_keytabs_fetch(char *const *lockers, const char *ccache, const char *instance, const char *dir, uid_t uid,
		      gid_t gid, struct error *err);

/* `treadle krb forward`: the user's TGT (default ccache, forwardable)
 * delegated to every ticket locker of the store; *ret_n the number that
 * stored it.  Fails when none did. */
int krb_forward(const char *store_url, const char *ccache, unsigned *ret_n, struct error *err);

/* ---- the locker daemon (`treadle locker`) ---- */

struct krb_locker_options {
	const char *store_url;	       /* the cell's store: registration, placements, manifests */
	const char *listen;	       /* "host:port" to bind (port 0: any) */
	const char *hostname;	       /* the name registered and of its principal host/<hostname> */
	const char *keytab;	       /* acceptor keytab holding host/<hostname> */
	const char *dir;	       /* forwarded tickets: dir/<principal> */
	const char *kadmin_principal;  /* NULL: no keytab service */
	const char *kadmin_keytab;     /* that principal's keytab (kadm5 privileges "aie") */
};

/* Bind, register /ticket-locker/<hostname>:<port> (and /keytab-locker/...
 * with kadmin), then serve connections one at a time (each bounded by a
 * 10 s deadline) until SIGTERM/SIGINT (then 0: the store session, and
 * with it the registration, is closed).  -1 and err on failure. */
int krb_locker_run(const struct krb_locker_options *o, struct error *err);
