/* master.c: leader election, root namespace, store sync and placement writes.
 *
 * One epoll loop: the store fd, a signalfd and one timerfd.  Watch callbacks
 * only mark the model dirty; the loop then runs one "pass" (debounced by
 * MASTER_DEBOUNCE_MS so bursts of submissions batch into one pass, as
 * Treadmill's 2 s scheduler interval does): msched (msched.h) updates the
 * sched model from the store, places, and writes the differences.  State
 * lives in the store, so a restarted master (or a standby taking over)
 * restores the placements and carries on (docs/MASTER.md). */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <jansson.h>

#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "master.h"
#include "msched.h"

#define MASTER_DEBOUNCE_MS 20
#define MASTER_RESYNC_MS 30000
#define MASTER_RETRY_MS 1000
/* ----------------------------------------------------------------- daemon */

struct mstate {
	struct store *store;
	char *hostname;		/* trace source, election id */
	double down_grace;	/* seconds a vanished server keeps its instances */
	int epfd, sigfd, timerfd;
	char *election_node;	/* full path of our lock node */
	char *election_watched; /* predecessor we watch */
	bool election_dirty;
	bool leader;
	bool dirty;
	bool rootns_done;	/* top-level nodes created */
	unsigned shards_next;	/* trace shards created so far (CELLNS_SHARDS = all) */
	bool pass_due;		/* debounce timer armed for a pass */
	bool pass_requested;	/* the next timer expiry runs a pass */
	double grace_deadline;	/* realtime when a down server's grace ends, 0 = none */
	struct msched *sched;	/* the leader's scheduler model */
	/* metrics (opts->metrics_file) */
	const char *metrics_file;
	uint64_t passes, pass_failures, store_events, pass_buckets[9];
	double pass_seconds;
	size_t last_placed, last_pending;
};

/* Upper bounds of the pass duration histogram's buckets (seconds); the last one is +Inf. */
static const double pass_bounds[8] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5 };

/* Rewrite the metrics file (tmp + rename, no fsync: it is re-made after every pass). */
static void metrics_write(const struct mstate *ms)
{
	_cleanup_free_ char *tmp = NULL;
	uint64_t cum = 0;
	FILE *f;

	if (!ms->metrics_file || !(tmp = strdup_printf("%s.tmp", ms->metrics_file)) || !(f = fopen(tmp, "we")))
		return;
	fprintf(f, "# HELP treadle_master_is_leader 1 if this master leads the cell, 0 if it stands by.\n"
		   "# TYPE treadle_master_is_leader gauge\ntreadle_master_is_leader %d\n", ms->leader);
	fprintf(f, "# HELP treadle_master_passes_total Scheduling passes run by this master.\n"
		   "# TYPE treadle_master_passes_total counter\ntreadle_master_passes_total %" PRIu64 "\n", ms->passes);
	fprintf(f, "# HELP treadle_master_pass_failures_total Scheduling passes that failed (retried).\n"
		   "# TYPE treadle_master_pass_failures_total counter\ntreadle_master_pass_failures_total %" PRIu64 "\n",
		ms->pass_failures);
	fprintf(f, "# HELP treadle_master_pass_duration_seconds Duration of the scheduling passes.\n"
		   "# TYPE treadle_master_pass_duration_seconds histogram\n");
	for (size_t i = 0; i < ELEMENTSOF(ms->pass_buckets); i++) {
		cum += ms->pass_buckets[i];
		if (i < ELEMENTSOF(pass_bounds))
			fprintf(f, "treadle_master_pass_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", pass_bounds[i], cum);
		else
			fprintf(f, "treadle_master_pass_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	fprintf(f, "treadle_master_pass_duration_seconds_sum %.6f\ntreadle_master_pass_duration_seconds_count %" PRIu64 "\n",
		ms->pass_seconds, ms->passes);
	fprintf(f, "# HELP treadle_master_store_events_total Store events (watches, session) processed by this master.\n"
		   "# TYPE treadle_master_store_events_total counter\ntreadle_master_store_events_total %" PRIu64 "\n",
		ms->store_events);
	fprintf(f, "# HELP treadle_master_last_pass_instances Instances in the last pass, by outcome.\n"
		   "# TYPE treadle_master_last_pass_instances gauge\n"
		   "treadle_master_last_pass_instances{outcome=\"placed\"} %zu\n"
		   "treadle_master_last_pass_instances{outcome=\"pending\"} %zu\n", ms->last_placed, ms->last_pending);
	if (fclose(f) != 0 || rename(tmp, ms->metrics_file) < 0)
		unlink(tmp);
}

static void on_election(struct store *s _unused_, enum store_event ev _unused_, const char *path _unused_,
			void *ud)
{
	struct mstate *ms = ud;

	ms->election_dirty = true;
}

static int arm_timer(struct mstate *ms, uint64_t ms_from_now)
{
	struct itimerspec its = { 0 };

	if (ms_from_now == 0)
		ms_from_now = 1;
	its.it_value.tv_sec = (time_t)(ms_from_now / 1000);
	its.it_value.tv_nsec = (long)(ms_from_now % 1000) * 1000000L;
	return timerfd_settime(ms->timerfd, 0, &its, NULL) < 0 ? negerrno() : 0;
}

/* Sequence number of "<anything><digits>": the trailing digits. */
static int64_t trailing_seq(const char *name)
{
	const char *p = name + strlen(name);
	uint64_t v;

	while (p > name && p[-1] >= '0' && p[-1] <= '9')
		p--;
	if (!*p || safe_atou64(p, &v) < 0 || v > INT64_MAX)
		return -1;
	return (int64_t)v;
}

/* --------------------------------------------------------------- election */

static int election_join(struct mstate *ms, struct error *err)
{
	_cleanup_free_ char *id = strdup_printf("%s.%d", ms->hostname, (int)getpid());
	int r;

	if (!id)
		return error_sys(err, ENOMEM, "election");
	r = cellns_election_join(ms->store, id, &ms->election_node);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "joining the election: %s", store_strerror(r));
	ms->election_dirty = true;
	return 0;
}

/* Re-evaluate the election: lowest sequence wins; else watch the predecessor. */
static int election_check(struct mstate *ms, struct error *err)
{
	_cleanup_strv_free_ char **kids = NULL;
	const char *mine = strrchr(ms->election_node, '/') + 1;
	int64_t my_seq = trailing_seq(mine), best = -1;
	const char *pred = NULL;
	bool found = false;
	int r;

	ms->election_dirty = false;
	for (;;) {
		r = cellns_list(ms->store, CELLNS_ELECTION_MASTER, &kids, NULL, NULL);
		if (r < 0)
			return error_set(err, ERR_TEMP, -r, "listing %s: %s", cellns_dir(CELLNS_ELECTION_MASTER),
					 store_strerror(r));
		found = false;
		pred = NULL;
		best = -1;
		for (char **k = kids; k && *k; k++) {
			int64_t seq = trailing_seq(*k);

			if (strcmp(*k, mine) == 0) {
				found = true;
				continue;
			}
			if (seq >= 0 && seq < my_seq && seq > best) {
				best = seq;
				pred = *k;
			}
		}
		if (!found)
			return error_set(err, ERR_TEMP, 0, "lost the election node %s (session ended)",
					 ms->election_node);
		if (!pred) {
			if (!ms->leader)
				fprintf(stderr, "treadle: master: %s leading (%s)\n", ms->hostname, mine);
			ms->leader = true;
			ms->dirty = true;
			return 0;
		}
		free(ms->election_watched);
		ms->election_watched = cellns_path(CELLNS_ELECTION_MASTER, pred);
		if (!ms->election_watched)
			return error_sys(err, ENOMEM, "election");
		r = store_exists(ms->store, ms->election_watched, NULL, on_election, ms);
		if (r == 0) {
			fprintf(stderr, "treadle: master: standing by behind %s\n", pred);
			return 0;
		}
		if (r != -ENOENT)
			return error_set(err, ERR_TEMP, -r, "watching %s: %s", ms->election_watched,
					 store_strerror(r));
		strv_free(kids);
		kids = NULL; /* predecessor vanished meanwhile: look again */
	}
}

/* ------------------------------------------------------------------- sync */

/* One pass: Treadmill's reschedule(), through the sched module (msched.c). */
static int master_pass(struct mstate *ms, struct error *err)
{
	struct msched_stats st;
	double now = now_realtime(), next;
	int r;

	ms->dirty = false;
	if (!ms->rootns_done) {
		/* Top-level nodes now; the 512 trace shards a few at a time
		 * between passes (trace_publish creates a missing shard itself),
		 * so a fresh cell places its first instances at once. */
		r = cellns_create_top(ms->store, err);
		if (r < 0)
			return r;
		if (cellns_shards_complete(ms->store) == 0)
			ms->shards_next = CELLNS_SHARDS;
		ms->rootns_done = true;
	}
	if (!ms->sched) {
		struct msched_options o = { .hostname = ms->hostname, .down_grace = ms->down_grace,
					    .wake = &ms->dirty };

		r = msched_new(ms->store, &o, &ms->sched);
		if (r < 0)
			return error_sys(err, -r, "master");
	}
	r = msched_pass(ms->sched, now, &st, err);
	if (r < 0)
		return r;
	ms->last_placed = st.placed;
	ms->last_pending = st.pending;
	if (st.changed || st.reloaded)
		fprintf(stderr, "treadle: master: pass: %zu apps, %zu placed, %zu pending, %zu changed%s%s%.0zu\n",
			st.apps, st.placed, st.pending, st.changed, st.reloaded ? " (model loaded)" : "",
			st.unreadable ? ", unreadable /scheduled nodes: " : "", st.unreadable);
	/* Wake up for the next timer: retention expiry, presence grace, checks. */
	next = msched_next_deadline(ms->sched);
	ms->grace_deadline = isfinite(next) ? MAX(next, now + 0.001) : 0;
	return 0;
}

/* ------------------------------------------------------------------- loop */

static void mstate_release(struct mstate *ms)
{
	free(ms->hostname);
	free(ms->election_node);
	free(ms->election_watched);
	store_close(ms->store); /* before the model: no watch fires into it */
	msched_free(ms->sched);
	if (ms->epfd >= 0)
		close(ms->epfd);
	if (ms->sigfd >= 0)
		close(ms->sigfd);
	if (ms->timerfd >= 0)
		close(ms->timerfd);
}

int master_run(const struct master_options *opts, struct error *err)
{
	struct mstate ms = { .epfd = -1, .sigfd = -1, .timerfd = -1 };
	struct epoll_event ev = { .events = EPOLLIN };
	struct store_options so = { 0 };
	char host[HOST_NAME_MAX + 1] = "";
	sigset_t mask;
	int r;


	if (!opts->hostname && gethostname(host, sizeof(host) - 1) < 0) {
		r = error_sys(err, errno, "gethostname");
		goto out;
	}
	ms.hostname = strdup(opts->hostname ? opts->hostname : host);
	ms.metrics_file = opts->metrics_file;
	ms.down_grace = opts->server_down_grace >= 0 ? opts->server_down_grace : MASTER_DOWN_GRACE_DEFAULT;
	if (!ms.hostname) {
		r = error_sys(err, ENOMEM, "master");
		goto out;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	ms.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ms.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ms.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ms.sigfd < 0 || ms.timerfd < 0 || ms.epfd < 0) {
		r = error_sys(err, errno, "master: event loop");
		goto out;
	}

	so.session_timeout_ms = opts->session_timeout_ms > 0 ? opts->session_timeout_ms : MASTER_SESSION_TIMEOUT_MS;
	r = store_open(opts->store_url, &so, &ms.store, err);
	if (r < 0) {
		error_prefix(err, "master");
		goto out;
	}
	r = election_join(&ms, err);
	if (r < 0)
		goto out;

	ev.data.fd = ms.sigfd;
	epoll_ctl(ms.epfd, EPOLL_CTL_ADD, ms.sigfd, &ev);
	ev.data.fd = ms.timerfd;
	epoll_ctl(ms.epfd, EPOLL_CTL_ADD, ms.timerfd, &ev);
	ev.data.fd = store_fd(ms.store);
	if (epoll_ctl(ms.epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		r = error_sys(err, errno, "master: epoll");
		goto out;
	}
	arm_timer(&ms, MASTER_RESYNC_MS);

	for (;;) {
		struct epoll_event evs[4];
		bool timer_fired = false;
		int n;

		if (ms.election_dirty) {
			bool was = ms.leader;

			r = election_check(&ms, err);
			if (r < 0)
				goto out;
			if (ms.leader != was || !ms.passes)
				metrics_write(&ms);
		}
		if (ms.leader && ms.dirty && !ms.pass_due) {
			arm_timer(&ms, MASTER_DEBOUNCE_MS);
			ms.pass_due = true;
			ms.pass_requested = true;
		}

		n = epoll_wait(ms.epfd, evs, ELEMENTSOF(evs), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = error_sys(err, errno, "master: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == ms.sigfd) {
				struct signalfd_siginfo si;

				if (read(ms.sigfd, &si, sizeof(si)) == sizeof(si)) {
					fprintf(stderr, "treadle: master: signal %u, exiting\n", si.ssi_signo);
					r = 0;
					goto out;
				}
			} else if (evs[i].data.fd != ms.timerfd) {
				ms.store_events++;
			} else {
				uint64_t x;

				if (read(ms.timerfd, &x, sizeof(x)) == sizeof(x)) {
					timer_fired = true;
					ms.pass_due = false;
				}
			}
		}
		r = store_dispatch(ms.store);
		if (r < 0 && r != -EAGAIN) {
			r = error_set(err, ERR_TEMP, -r, "master: store: %s", store_strerror(r));
			goto out;
		}
		if (store_state(ms.store) == STORE_EXPIRED) {
			r = error_set(err, ERR_TEMP, 0, "master: store session expired");
			goto out;
		}
		if (timer_fired && ms.leader && (ms.dirty || ms.pass_requested || ms.shards_next >= CELLNS_SHARDS)) {
			struct error perr = ERROR_INIT;

			/* dirty flags raised during the pass re-arm the debounce timer */
			struct timespec t0, t1;
			double took;
			size_t b = 0;

			ms.dirty = false;
			ms.pass_requested = false;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			r = master_pass(&ms, &perr);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
			while (b < ELEMENTSOF(pass_bounds) && took > pass_bounds[b])
				b++;
			ms.pass_buckets[b]++;
			ms.passes++;
			ms.pass_seconds += took;
			ms.pass_failures += r < 0;
			metrics_write(&ms);
			if (r < 0) {
				fprintf(stderr, "treadle: master: %s (retrying)\n", perr.msg);
				error_clear(&perr);
				arm_timer(&ms, MASTER_RETRY_MS);
				ms.pass_due = true;
				ms.pass_requested = true;
			} else if (ms.shards_next < CELLNS_SHARDS) {
				arm_timer(&ms, 1);
			} else if (!ms.dirty && ms.grace_deadline > 0) {
				double left = ms.grace_deadline - now_realtime();

				arm_timer(&ms, left > 0 ? (uint64_t)(left * 1000) + 10 : 1);
				ms.pass_requested = true;
			} else if (!ms.dirty) {
				arm_timer(&ms, MASTER_RESYNC_MS);
			}
		} else if (timer_fired && ms.leader) {
			struct error serr = ERROR_INIT;

			if (cellns_create_shards(ms.store, &ms.shards_next, 16, &serr) < 0) {
				fprintf(stderr, "treadle: master: %s (retrying)\n", serr.msg);
				error_clear(&serr);
			}
			arm_timer(&ms, ms.shards_next < CELLNS_SHARDS ? 1 : MASTER_RESYNC_MS);
		} else if (timer_fired) {
			arm_timer(&ms, MASTER_RESYNC_MS);
		}
	}
out:
	mstate_release(&ms);
	return r < 0 ? r : 0;
}
