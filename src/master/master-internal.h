/* master-internal.h: the state of the leader's scheduler loop (struct
 * msched), shared by msched*.c and the white-box tests.  Not for use outside
 * src/master/ and tests/unit/test-master*.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "../cellns/cellns.h"
#include "../sched/sched-loader.h"
#include "../sched/sched.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "msched.h"

enum { W_SCHED, W_PRES, W_SERVERS, W_EVENTS, W_BLACK, _W_MAX };
extern const enum cellns_dir msched_wdir[_W_MAX]; /* the watched directories */

struct mwatch {
	struct msched *m;
	bool armed, dirty;
};

struct mchange {
	int app;
	char *name;
	char *before, *after;	/* server names, NULL none */
	double expiry;
	int identity;
	char *why;
};

struct msched {
	struct store *store;
	struct msched_options o;
	struct sched_cell *cell;
	bool need_reload, need_check;
	struct mwatch w[_W_MAX];
	char **blackedout;	/* sorted */
	bool black_loaded;
	json_t *app_blacklist;	/* {"pattern": {...}} */
	struct sched_assignment *asg;
	size_t nasg;
	char **traits;
	double *vanished;	/* per node id: realtime the presence vanished, 0 none */
	double *present;	/* per node id: 1 present at the last look, -1 absent, 0 unknown */
	size_t n_present;
	double next_tick, next_reboot_check;
	size_t n_vanished;
	double *notrun;		/* per app id: first seen placed but not in /running, 0 none */
	size_t n_notrun;
	double next_check, next_compact;
	char *last_stats;
	json_t *proid_counts;	/* {"<proid>": live apps}, kept per add/remove (NULL: recount) */
	bool presence_check;	/* a state changed under an absent presence: sync it next pass */
	double next_grace;	/* earliest end of a presence grace, INFINITY none */
	struct mchange *chg;
	size_t nchg, achg;
	int oom;
	char **unreadable;	/* /scheduled nodes the store cannot read, each reported once */
};

/* msched.c */
int msched_list_watched(struct msched *m, int which, char ***ret);
bool msched_sorted_contains(char *const *l, size_t n, const char *s);
void msched_warn(const char *fmt, ...) _printf_(1, 2);
struct trace_event msched_master_event(struct msched *m, const char *inst, enum trace_type type, const char *data);
void msched_post(struct msched *m, const char *inst, enum trace_type type, const char *data);
void msched_post_server(struct msched *m, const char *server, const char *type, const char *data);
double *msched_grow(double **arr, size_t *n, size_t want);
void msched_record_state(struct msched *m, const char *server, enum sched_state st, double since);
void msched_set_state(struct msched *m, int srv, enum sched_state st, double since);
int msched_delete_node(struct msched *m, const char *path);
int msched_delete_placement(struct msched *m, const char *server, const char *inst);
void msched_write_finished(struct msched *m, const char *inst, const char *host, const char *data);
void msched_unschedule_once(struct msched *m, int a, const char *name, const char *host);
bool msched_is_blackedout(struct msched *m, const char *server);
void msched_count_app(struct msched *m, const char *name, int delta);

/* msched-load.c */
void msched_asg_clear(struct msched *m);
int msched_load_app_data(struct msched *m, const char *name, const char *data, const char **ret_why);
int msched_load_app(struct msched *m, const char *name);
void msched_load_app_blacklist(struct msched *m);
void msched_check_reboots(struct msched *m, double now);
int msched_load_full(struct msched *m, double now, struct error *err);

/* msched-sync.c */
int msched_sync_presence(struct msched *m, double now);
int msched_sync_blackouts(struct msched *m, double now);
int msched_sync_scheduled(struct msched *m);
int msched_process_events(struct msched *m, double now);
int msched_check_pending_start(struct msched *m, double now);
