/* net-internal.h: helpers shared by the net module's files (not exported). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>

#include "net.h"

/* Dotted quad of a (static buffer per call site is avoided: the caller gives 16 bytes). */
#define NET_IPSTR_MAX 16
const char *net_ipstr(struct in_addr a, char buf[static NET_IPSTR_MAX]);
bool net_ifname_valid(const char *s);
/* Write a sysctl under /proc/sys/net of the calling thread's netns. */
int net_sysctl_write(const char *path, const char *value);
/* Enter the netns fd; *ret_saved is an fd of the previous one for net_netns_leave. */
int net_netns_enter(int netns_fd, int *ret_saved);
int net_netns_leave(int saved);
/* One buffer of nft commands (one transaction) on the process's cached context;
 * with ret_output, the output as JSON (owned). */
int net_nft_run(const char *cmds, char **ret_output, struct error *err);
/* net_nft_run with a context of its own, freed after (another netns than the cached one). */
int net_nft_run_once(const char *cmds, struct error *err);
