/* hostgroups.h: LDAP host groups (`treadle hostgroups`), Treadmill's GMSA
 * daemon (ad/gmsa.py) on OpenLDAP's libldap.
 *
 * A leader-elected cell daemon (/election/hostgroups, the master's scheme):
 * for every proid with instances placed on a server, the server's directory
 * object (server_dn with {host}) is a `member` of the proid's group (group_dn
 * with {proid}); added on the proid's first placement there, removed on its
 * last.  Driven by store watches on /placement and /placement/<host>; at
 * start (and after any directory failure) it reconciles: the groups under the
 * group pattern's parent are searched and every member that names a server is
 * compared with the placements, extra ones removed, missing ones added.
 * Members that do not match the server pattern are never touched.  "Value
 * exists"/"already exists" on add and "no such attribute" on delete count as
 * success, as in Treadmill.  docs/CELL.md "LDAP host groups".
 * Daemon layer: basic/, store/, cellns/.
 */
#pragma once

#include "../basic/error.h"

struct hostgroups_options {
	const char *store_url;
	const char *hostname;	   /* election id */
	const char *ldap_url;	   /* ldap://host:port, ldaps://, ldapi:// */
	const char *group_dn;	   /* pattern, {proid} in its first RDN: cn={proid},ou=groups,dc=example,dc=org */
	const char *server_dn;	   /* pattern, {host} in its first RDN: cn={host},ou=servers,dc=example,dc=org */
	const char *bind_dn;	   /* simple bind; NULL: anonymous */
	const char *password_file; /* the bind password (one line); NULL: none */
};

/* Check the patterns and URL (ERR_USAGE naming the option). */
int hostgroups_check(const struct hostgroups_options *o, struct error *err);

/* Run until SIGTERM/SIGINT (0) or a fatal store error (the session ended):
 * s6 restarts it and it reconciles again. */
int hostgroups_run(const struct hostgroups_options *o, struct error *err);
