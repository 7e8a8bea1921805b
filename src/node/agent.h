/* agent.h: the node agent daemon (`treadle node`).
 *
 * One single-threaded epoll loop (signalfd, inotify, timerfd, store_fd, OOM
 * eventfds) doing what Treadmill spreads over eventmgr, appcfgmgr, monitor,
 * events-publisher and the cleanup watcher.  See docs/NODE.md for the
 * pipeline and docs/FORMATS.md for the layout under the node root.
 * Daemon layer: basic/, store/, cellns/, manifest/, trace/, supervisor/,
 * cgroup/, node/.  One file per manager (agent-*.c), sharing node-internal.h.
 */
#pragma once

#include <stdint.h>

#include "../basic/error.h"

/* Default pids limit of a container (a fork bomb stops there). */
#define NODE_DEFAULT_PIDS_MAX 4096
/* ZooKeeper session of the agent: longer than the master's, so a stall of
 * the node (swap, a frozen VM) does not drop its presence and move its apps
 * (docs/MASTER.md "Session timeouts"); $TREADLE_ZK_SESSION_TIMEOUT overrides. */
#define NODE_SESSION_TIMEOUT_MS 10000

struct node_agent_options {
	const char *store_url;	 /* store URL (store_open) */
	const char *root;	 /* node root N (made absolute by the caller) */
	const char *hostname;	 /* this server's name in the cell */
	const char *cell;	 /* cell name, for app.json; may be NULL */
	const char *cgroup_root; /* parent cgroup of containers; NULL = "treadle" */
	const char *treadle_bin; /* absolute path of the treadle binary */
	unsigned setup_timeout_s; /* configured -> services started deadline; 0 = 120 */
	uint64_t pids_max;	  /* per-container pids limit; 0 = NODE_DEFAULT_PIDS_MAX */
	uint64_t disk_read_bps, disk_write_bps; /* per-container volume throttles (bytes/s); 0 = none */
	/* Container network (docs/NETWORK.md "The node's configuration"): range
	 * "a.b.c.d/n" (NULL: the one this root used last, else the first free
	 * 192.168.<k>.0/24), "none" = off; gateway NULL = the range's last host
	 * address; ext_dev NULL = the interface of the default route. */
	const char *net_range, *net_gateway, *net_ext_dev;
	/* Hooks (docs/HOOKS.md): "a,b" of sproc_hook_known() names, NULL: none;
	 * the Kerberos hooks' host keytab (NULL: /etc/krb5.keytab), the krb5.conf
	 * given to containers (NULL: $KRB5_CONFIG's first file, else
	 * /etc/krb5.conf) and the tickets wait (0: 60 s). */
	const char *hooks, *krb5_keytab, *krb5_config;
	unsigned tickets_wait_s;
};

/* Run until SIGTERM/SIGINT (returns 0) or a fatal error (fills err).
 * Restartable at any instruction: start-up reconciles N with the store. */
int node_agent_run(const struct node_agent_options *o, struct error *err);
