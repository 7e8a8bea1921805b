/* store-contract.h: the semantic contract of store.h, run against any backend.
 *
 * A test file sets `contract_url` (and optionally `contract_opts`) before
 * cmocka_run_group_tests(STORE_CONTRACT_TESTS ...), and calls
 * store_contract_child_main() first thing in main() so that the ephemeral
 * SIGKILL test can re-execute the binary as a separate session owner.
 * Every test works below its own unique base path and removes it after. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "../../src/basic/util.h"
#include "../../src/store/store.h"

static const char *contract_url;
static struct store_options contract_opts;
static int contract_event_timeout_ms = 15000; /* upper bound for an expected event */
static int contract_quiet_ms = 300;	      /* how long "no event" is observed */
static int contract_child_timeout_ms = 1000; /* session timeout of the SIGKILLed child */

#define CT_CHILD_ARG "--store-contract-child"

/* Child mode: argv = [self, CT_CHILD_ARG, url, path, timeout_ms].  Creates an
 * ephemeral node, prints its session id and waits to be killed. */
static int store_contract_child_main(int argc, char **argv)
{
	struct store_options o = { 0 };
	struct error err = ERROR_INIT;
	struct store *s;
	int r;

	if (argc < 5 || strcmp(argv[1], CT_CHILD_ARG))
		return -1;
	safe_atoi(argv[4], &o.session_timeout_ms);
	if (store_open(argv[2], &o, &s, &err) < 0)
		_exit(error_report(&err));
	r = store_create(s, argv[3], "child", 5, STORE_EPHEMERAL, NULL);
	if (r < 0)
		_exit(3);
	printf("%" PRId64 "\n", store_session_id(s));
	fflush(stdout);
	for (;;)
		store_wait(s, -1); /* keep the session alive (ZooKeeper pings) */
}

struct ct_rec {
	int n;
	enum store_event ev[32];
	char path[32][256];
};

static void ct_record(struct store *s, enum store_event ev, const char *path, void *userdata)
{
	struct ct_rec *r = userdata;

	if (r->n < 32) {
		r->ev[r->n] = ev;
		snprintf(r->path[r->n], sizeof(r->path[0]), "%s", path);
	}
	r->n++;
}

/* Dispatch until rec has at least `want` events or the timeout passes. */
static void ct_wait_events(struct store *s, struct ct_rec *rec, int want, int timeout_ms)
{
	uint64_t end = now_monotonic_ms() + (uint64_t)timeout_ms;

	while (rec->n < want) {
		uint64_t now = now_monotonic_ms();
		if (now >= end)
			break;
		assert_true(store_wait(s, (int)MIN(end - now, 100)) >= 0);
	}
}

/* Another session's write becomes visible to this one after at most a short
 * delay on a ZooKeeper ensemble (followers apply it asynchronously; only a
 * session's own writes are ordered for it).  Returns what exists returns. */
static int ct_wait_exists(struct store *s, const char *path, bool want, struct store_stat *st)
{
	uint64_t end = now_monotonic_ms() + (uint64_t)contract_event_timeout_ms;
	int r;

	for (;;) {
		r = store_exists(s, path, st, NULL, NULL);
		if ((r == 0) == want || now_monotonic_ms() >= end)
			return r;
		usleep(20000);
	}
}

static struct store *ct_open(void)
{
	struct error err = ERROR_INIT;
	struct store *s = NULL;

	if (store_open(contract_url, &contract_opts, &s, &err) < 0)
		fail_msg("store_open %s: %s", contract_url, err.msg);
	assert_int_equal(store_state(s), STORE_CONNECTED);
	return s;
}

struct ct {
	struct store *s;
	char base[128];
};

static int ct_setup(void **state)
{
	static unsigned counter;
	struct ct *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->s = ct_open();
	snprintf(c->base, sizeof(c->base), "/ct-%d-%u-%" PRIu64, (int)getpid(), counter++, now_monotonic_ms());
	assert_int_equal(store_create_p(c->s, c->base), 0);
	*state = c;
	return 0;
}

static int ct_teardown(void **state)
{
	struct ct *c = *state;
	int r;

	/* ZooKeeper may drop the connection under load (a slow ensemble member):
	 * that is a temporary state the contract allows, so the cleanup retries
	 * through it as every caller of the store does */
	for (int i = 0; (r = store_delete_r(c->s, c->base)) == -ENOTCONN && i < 100; i++)
		usleep(100 * 1000);
	assert_int_equal(r, 0);
	assert_int_equal(store_exists(c->s, c->base, NULL, NULL, NULL), -ENOENT);
	store_close(c->s);
	free(c);
	return 0;
}

static char *ct_path(struct ct *c, const char *rel)
{
	char *p = strdup_printf("%s/%s", c->base, rel);
	assert_non_null(p);
	return p;
}

static void ct_create_get(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *a = ct_path(c, "a"), *miss = ct_path(c, "missing/x"), *d = NULL, *ret = NULL;
	struct store_stat st;
	size_t len;

	assert_int_equal(store_create(c->s, a, "hello", 5, 0, &ret), 0);
	assert_string_equal(ret, a);
	assert_int_equal(store_get(c->s, a, &d, &len, &st, NULL, NULL), 0);
	assert_int_equal(len, 5);
	assert_string_equal(d, "hello");
	assert_int_equal(st.version, 0);
	assert_int_equal(st.data_length, 5);
	assert_int_equal(st.num_children, 0);
	assert_int_equal(st.ephemeral_owner, 0);
	assert_true(st.ctime_ms > 1500000000000LL);
	assert_true(st.mtime_ms == st.ctime_ms);
	assert_int_equal(store_create(c->s, a, "x", 1, 0, NULL), -EEXIST);
	assert_int_equal(store_create(c->s, miss, "x", 1, 0, NULL), -ENOENT);
	assert_int_equal(store_get(c->s, miss, NULL, NULL, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(store_exists(c->s, a, NULL, NULL, NULL), 0);
	assert_int_equal(store_exists(c->s, miss, NULL, NULL, NULL), -ENOENT);
	/* empty data */
	{
		_cleanup_free_ char *e = ct_path(c, "empty"), *ed = NULL;
		assert_int_equal(store_create(c->s, e, NULL, 0, 0, NULL), 0);
		assert_int_equal(store_get(c->s, e, &ed, &len, &st, NULL, NULL), 0);
		assert_int_equal(len, 0);
		assert_string_equal(ed, "");
		assert_int_equal(st.data_length, 0);
	}
	/* create_p: parents made, existing is fine */
	{
		_cleanup_free_ char *deep = ct_path(c, "p/q/r");
		assert_int_equal(store_create_p(c->s, deep), 0);
		assert_int_equal(store_create_p(c->s, deep), 0);
		assert_int_equal(store_exists(c->s, deep, NULL, NULL, NULL), 0);
	}
}

static void ct_set_versions(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *a = ct_path(c, "a"), *miss = ct_path(c, "nope"), *d = NULL;
	struct store_stat st, st0;

	assert_int_equal(store_create(c->s, a, "v0", 2, 0, NULL), 0);
	assert_int_equal(store_exists(c->s, a, &st0, NULL, NULL), 0);
	usleep(5000);
	assert_int_equal(store_set(c->s, a, "v1", 2, 0, &st), 0);
	assert_int_equal(st.version, 1);
	assert_true(st.mtime_ms >= st0.mtime_ms);
	assert_int_equal(st.ctime_ms, st0.ctime_ms);
	assert_int_equal(store_set(c->s, a, "vx", 2, 0, NULL), -ESTALE);
	assert_int_equal(store_set(c->s, a, "v2", 2, -1, NULL), 0);
	assert_int_equal(store_get(c->s, a, &d, NULL, &st, NULL, NULL), 0);
	assert_string_equal(d, "v2");
	assert_int_equal(st.version, 2);
	assert_int_equal(store_set(c->s, miss, "x", 1, -1, NULL), -ENOENT);
	assert_int_equal(store_delete(c->s, a, 1), -ESTALE);
	assert_int_equal(store_delete(c->s, miss, -1), -ENOENT);
	assert_int_equal(store_delete(c->s, a, 2), 0);
	assert_int_equal(store_exists(c->s, a, NULL, NULL, NULL), -ENOENT);
	/* recreated node starts again at version 0 */
	assert_int_equal(store_create(c->s, a, "n", 1, 0, NULL), 0);
	assert_int_equal(store_exists(c->s, a, &st, NULL, NULL), 0);
	assert_int_equal(st.version, 0);
}

static void ct_children_cversion(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *p = ct_path(c, "p"), *pb = ct_path(c, "p/b"), *pa = ct_path(c, "p/a"),
			    *pc = ct_path(c, "p/c"), *pca = ct_path(c, "p/c/a");
	_cleanup_strv_free_ char **l = NULL;
	struct store_stat st;

	assert_int_equal(store_create(c->s, p, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_exists(c->s, p, &st, NULL, NULL), 0);
	assert_int_equal(st.cversion, 0);
	assert_int_equal(store_create(c->s, pb, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(c->s, pc, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(c->s, pa, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(c->s, pca, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_children(c->s, p, &l, NULL, NULL), 0);
	assert_int_equal(strv_length(l), 3);
	assert_string_equal(l[0], "a");
	assert_string_equal(l[1], "b");
	assert_string_equal(l[2], "c");
	assert_int_equal(store_exists(c->s, p, &st, NULL, NULL), 0);
	assert_int_equal(st.num_children, 3);
	assert_int_equal(st.cversion, 3);
	assert_int_equal(store_delete(c->s, pc, -1), -ENOTEMPTY);
	assert_int_equal(store_delete(c->s, pb, -1), 0);
	assert_int_equal(store_exists(c->s, p, &st, NULL, NULL), 0);
	assert_int_equal(st.num_children, 2);
	assert_int_equal(st.cversion, 4);
	assert_int_equal(st.version, 0); /* child changes do not touch the data version */
	assert_int_equal(store_delete_r(c->s, pc), 0);
	assert_int_equal(store_delete_r(c->s, pc), 0); /* missing is success */
	assert_int_equal(store_children(c->s, pb, NULL, NULL, NULL), -ENOENT);
	{
		_cleanup_strv_free_ char **e = NULL;
		assert_int_equal(store_children(c->s, pa, &e, NULL, NULL), 0);
		assert_int_equal(strv_length(e), 0);
	}
}

static void ct_sequential(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *q = ct_path(c, "q"), *pfx = ct_path(c, "q/item-"), *last = NULL;
	_cleanup_strv_free_ char **l = NULL;

	assert_int_equal(store_create(c->s, q, NULL, 0, 0, NULL), 0);
	for (int i = 0; i < 12; i++) {
		_cleanup_free_ char *ret = NULL, *want = strdup_printf("%s%010d", pfx, i);
		assert_int_equal(store_create(c->s, pfx, "x", 1, STORE_SEQUENTIAL, &ret), 0);
		assert_string_equal(ret, want);
	}
	{
		_cleanup_free_ char *five = strdup_printf("%s%010d", pfx, 5);
		assert_int_equal(store_delete(c->s, five, -1), 0);
	}
	/* after a delete the counter never goes back (ZooKeeper 3.8 does not count deletes, the
	 * embedded store does: both only promise increasing names) */
	assert_int_equal(store_create(c->s, pfx, "x", 1, STORE_SEQUENTIAL, &last), 0);
	assert_int_equal(strlen(last), strlen(pfx) + 10);
	assert_true(strcmp(last, pfx) > 0);
	assert_int_equal(store_children(c->s, q, &l, NULL, NULL), 0);
	assert_int_equal(strv_length(l), 12);
	assert_string_equal(l[0], "item-0000000000");
	assert_string_equal(l[5], "item-0000000006");
	assert_string_equal(l[10], "item-0000000011");
	assert_string_equal(l[11], strrchr(last, '/') + 1);
	/* a name chosen by sequence that already exists is -EEXIST, like ZooKeeper */
	{
		_cleanup_free_ char *r = ct_path(c, "r"), *xp = ct_path(c, "r/x"), *taken = ct_path(c, "r/x0000000002");
		_cleanup_free_ char *first = NULL;
		assert_int_equal(store_create(c->s, r, NULL, 0, 0, NULL), 0);
		assert_int_equal(store_create(c->s, xp, NULL, 0, STORE_SEQUENTIAL, &first), 0);
		assert_true(endswith(first, "/x0000000000"));
		assert_int_equal(store_create(c->s, taken, NULL, 0, 0, NULL), 0);
		assert_int_equal(store_create(c->s, xp, NULL, 0, STORE_SEQUENTIAL, NULL), -EEXIST);
	}
	/* sequential + ephemeral */
	{
		_cleanup_free_ char *ret = NULL, *ep = ct_path(c, "q/e-");
		struct store_stat st;
		assert_int_equal(store_create(c->s, ep, NULL, 0, STORE_SEQUENTIAL | STORE_EPHEMERAL, &ret), 0);
		assert_true(startswith(ret, ep));
		assert_int_equal(strlen(ret), strlen(ep) + 10);
		assert_int_equal(store_exists(c->s, ret, &st, NULL, NULL), 0);
		assert_int_equal(st.ephemeral_owner, store_session_id(c->s));
	}
}

static void ct_ephemeral(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *e = ct_path(c, "eph"), *ec = ct_path(c, "eph/child"), *p = ct_path(c, "pers");
	struct store *s2 = ct_open();
	struct store_stat st;
	struct ct_rec rec = { 0 };

	assert_true(store_session_id(c->s) != 0);
	assert_true(store_session_id(s2) != store_session_id(c->s));
	assert_int_equal(store_create(c->s, p, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(s2, e, "mine", 4, STORE_EPHEMERAL, NULL), 0);
	assert_int_equal(ct_wait_exists(c->s, e, true, &st), 0);
	assert_int_equal(st.ephemeral_owner, store_session_id(s2));
	assert_int_equal(store_exists(c->s, p, &st, NULL, NULL), 0);
	assert_int_equal(st.ephemeral_owner, 0);
	assert_int_equal(store_create(c->s, ec, NULL, 0, 0, NULL), -EPERM);
	assert_int_equal(store_create(s2, ec, NULL, 0, 0, NULL), -EPERM);
	/* another session may delete or change it */
	assert_int_equal(store_set(c->s, e, "x", 1, -1, NULL), 0);
	assert_int_equal(store_exists(c->s, e, NULL, ct_record, &rec), 0);
	store_close(s2); /* closing the session removes its ephemerals */
	ct_wait_events(c->s, &rec, 1, contract_event_timeout_ms);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ev[0], STORE_EVENT_DELETED);
	assert_int_equal(store_exists(c->s, e, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(store_exists(c->s, p, NULL, NULL, NULL), 0);
}

static pid_t ct_spawn_child(const char *path, int *ret_fd)
{
	int pfd[2];
	pid_t pid;
	char tmo[32];

	snprintf(tmo, sizeof(tmo), "%d", contract_child_timeout_ms);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *args[] = { (char *)"self", (char *)CT_CHILD_ARG, (char *)contract_url, (char *)path, tmo, NULL };
		dup2(pfd[1], STDOUT_FILENO);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	close(pfd[1]);
	*ret_fd = pfd[0];
	return pid;
}

static void ct_ephemeral_sigkill(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *e = ct_path(c, "victim");
	struct ct_rec rec = { 0 };
	struct store_stat st;
	char buf[64] = "";
	int fd, status;
	ssize_t n;
	pid_t pid;
	uint64_t t0;

	pid = ct_spawn_child(e, &fd);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	assert_int_equal(ct_wait_exists(c->s, e, true, NULL), 0);
	assert_int_equal(store_exists(c->s, e, &st, ct_record, &rec), 0);
	assert_true(st.ephemeral_owner != 0);
	assert_true(st.ephemeral_owner != store_session_id(c->s));
	t0 = now_monotonic_ms();
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	ct_wait_events(c->s, &rec, 1, contract_event_timeout_ms);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ev[0], STORE_EVENT_DELETED);
	assert_string_equal(rec.path[0], e);
	assert_int_equal(store_exists(c->s, e, NULL, NULL, NULL), -ENOENT);
	print_message("# ephemeral of a SIGKILLed session gone after %" PRIu64 " ms\n", now_monotonic_ms() - t0);
}

static void ct_data_watch(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *a = ct_path(c, "w"), *d = NULL;
	struct ct_rec rec = { 0 };

	/* watch on a missing node fires on create */
	assert_int_equal(store_exists(c->s, a, NULL, ct_record, &rec), -ENOENT);
	assert_int_equal(store_create(c->s, a, "1", 1, 0, NULL), 0);
	ct_wait_events(c->s, &rec, 1, contract_event_timeout_ms);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ev[0], STORE_EVENT_CREATED);
	assert_string_equal(rec.path[0], a);
	/* one-shot: the next change without re-arming is not reported */
	assert_int_equal(store_set(c->s, a, "2", 1, -1, NULL), 0);
	ct_wait_events(c->s, &rec, 2, contract_quiet_ms);
	assert_int_equal(rec.n, 1);
	/* get with watch: change */
	assert_int_equal(store_get(c->s, a, &d, NULL, NULL, ct_record, &rec), 0);
	assert_string_equal(d, "2");
	assert_int_equal(store_set(c->s, a, "3", 1, -1, NULL), 0);
	assert_int_equal(store_set(c->s, a, "4", 1, -1, NULL), 0);
	ct_wait_events(c->s, &rec, 2, contract_event_timeout_ms);
	ct_wait_events(c->s, &rec, 3, contract_quiet_ms);
	assert_int_equal(rec.n, 2); /* two sets, one event */
	assert_int_equal(rec.ev[1], STORE_EVENT_CHANGED);
	/* the same watcher registered twice fires once */
	assert_int_equal(store_exists(c->s, a, NULL, ct_record, &rec), 0);
	assert_int_equal(store_get(c->s, a, NULL, NULL, NULL, ct_record, &rec), 0);
	assert_int_equal(store_delete(c->s, a, -1), 0);
	ct_wait_events(c->s, &rec, 3, contract_event_timeout_ms);
	ct_wait_events(c->s, &rec, 4, contract_quiet_ms);
	assert_int_equal(rec.n, 3);
	assert_int_equal(rec.ev[2], STORE_EVENT_DELETED);
	/* store_get on a missing node leaves a watch too */
	assert_int_equal(store_get(c->s, a, NULL, NULL, NULL, ct_record, &rec), -ENOENT);
	assert_int_equal(store_create(c->s, a, NULL, 0, 0, NULL), 0);
	ct_wait_events(c->s, &rec, 4, contract_event_timeout_ms);
	assert_int_equal(rec.n, 4);
	assert_int_equal(rec.ev[3], STORE_EVENT_CREATED);
}

static void ct_watch_other_session(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *a = ct_path(c, "x");
	struct store *s2 = ct_open();
	struct ct_rec rec = { 0 };

	assert_int_equal(store_exists(c->s, a, NULL, ct_record, &rec), -ENOENT);
	assert_int_equal(store_create(s2, a, "1", 1, 0, NULL), 0);
	ct_wait_events(c->s, &rec, 1, contract_event_timeout_ms);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ev[0], STORE_EVENT_CREATED);
	assert_int_equal(store_get(c->s, a, NULL, NULL, NULL, ct_record, &rec), 0);
	assert_int_equal(store_set(s2, a, "2", 1, 0, NULL), 0);
	ct_wait_events(c->s, &rec, 2, contract_event_timeout_ms);
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.ev[1], STORE_EVENT_CHANGED);
	store_close(s2);
}

static void ct_watch_deep_missing(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *z = ct_path(c, "x/y/z"), *y = ct_path(c, "x/y"), *x = ct_path(c, "x");
	struct ct_rec rec = { 0 };

	assert_int_equal(store_exists(c->s, z, NULL, ct_record, &rec), -ENOENT);
	assert_int_equal(store_create(c->s, x, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(c->s, y, NULL, 0, 0, NULL), 0);
	ct_wait_events(c->s, &rec, 1, contract_quiet_ms);
	assert_int_equal(rec.n, 0);
	assert_int_equal(store_delete(c->s, y, -1), 0);
	assert_int_equal(store_create(c->s, y, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(c->s, z, NULL, 0, 0, NULL), 0);
	ct_wait_events(c->s, &rec, 1, contract_event_timeout_ms);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ev[0], STORE_EVENT_CREATED);
	assert_string_equal(rec.path[0], z);
}

static void ct_child_watch(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *p = ct_path(c, "p"), *pa = ct_path(c, "p/a"), *miss = ct_path(c, "none");
	struct ct_rec rec = { 0 };
	_cleanup_strv_free_ char **l1 = NULL, **l2 = NULL, **l3 = NULL;
	struct ct_rec drec = { 0 };

	assert_int_equal(store_create(c->s, p, NULL, 0, 0, NULL), 0);
	assert_int_equal(store_children(c->s, p, &l1, ct_record, &rec), 0);
	/* a data change is not a child event */
	assert_int_equal(store_set(c->s, p, "d", 1, -1, NULL), 0);
	ct_wait_events(c->s, &rec, 1, contract_quiet_ms);
	assert_int_equal(rec.n, 0);
	assert_int_equal(store_create(c->s, pa, NULL, 0, 0, NULL), 0);
	ct_wait_events(c->s, &rec, 1, contract_event_timeout_ms);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ev[0], STORE_EVENT_CHILD);
	assert_string_equal(rec.path[0], p);
	/* delete of a child */
	assert_int_equal(store_children(c->s, p, &l2, ct_record, &rec), 0);
	assert_int_equal(strv_length(l2), 1);
	assert_int_equal(store_delete(c->s, pa, -1), 0);
	ct_wait_events(c->s, &rec, 2, contract_event_timeout_ms);
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.ev[1], STORE_EVENT_CHILD);
	/* deletion of the node itself */
	assert_int_equal(store_children(c->s, p, &l3, ct_record, &drec), 0);
	assert_int_equal(store_delete(c->s, p, -1), 0);
	ct_wait_events(c->s, &drec, 1, contract_event_timeout_ms);
	assert_int_equal(drec.n, 1);
	assert_int_equal(drec.ev[0], STORE_EVENT_DELETED);
	/* no child watch on a missing node */
	assert_int_equal(store_children(c->s, miss, NULL, ct_record, &rec), -ENOENT);
	assert_int_equal(store_create(c->s, miss, NULL, 0, 0, NULL), 0);
	ct_wait_events(c->s, &rec, 3, contract_quiet_ms);
	assert_int_equal(rec.n, 2);
}

static void ct_multi(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *a = ct_path(c, "a"), *ab = ct_path(c, "a/b"), *x = ct_path(c, "x"),
			    *y = ct_path(c, "y"), *d = NULL;
	struct store_stat st;
	size_t failed = 99;

	{
		struct store_op ops[] = {
			{ .type = STORE_OP_CREATE, .path = a, .data = "A", .len = 1 },
			{ .type = STORE_OP_CREATE, .path = ab, .data = "B", .len = 1 },
			{ .type = STORE_OP_SET, .path = a, .data = "A2", .len = 2, .version = 0 },
			{ .type = STORE_OP_CHECK, .path = a, .version = 1 },
		};
		assert_int_equal(store_multi(c->s, ops, ELEMENTSOF(ops), &failed), 0);
	}
	assert_int_equal(store_get(c->s, a, &d, NULL, &st, NULL, NULL), 0);
	assert_string_equal(d, "A2");
	assert_int_equal(st.version, 1);
	assert_int_equal(st.num_children, 1);
	assert_int_equal(store_exists(c->s, ab, NULL, NULL, NULL), 0);
	/* a failing op in the middle: nothing is applied */
	{
		struct store_op ops[] = {
			{ .type = STORE_OP_CREATE, .path = x, .data = "X", .len = 1 },
			{ .type = STORE_OP_SET, .path = a, .data = "A3", .len = 2, .version = -1 },
			{ .type = STORE_OP_CHECK, .path = ab, .version = 7 },
			{ .type = STORE_OP_DELETE, .path = ab, .version = -1 },
		};
		assert_int_equal(store_multi(c->s, ops, ELEMENTSOF(ops), &failed), -ESTALE);
		assert_int_equal(failed, 2);
	}
	assert_int_equal(store_exists(c->s, x, NULL, NULL, NULL), -ENOENT);
	free(d);
	d = NULL;
	assert_int_equal(store_get(c->s, a, &d, NULL, &st, NULL, NULL), 0);
	assert_string_equal(d, "A2");
	assert_int_equal(st.version, 1);
	assert_int_equal(store_exists(c->s, ab, NULL, NULL, NULL), 0);
	/* each error kind reports its index */
	{
		struct store_op ops[] = {
			{ .type = STORE_OP_CREATE, .path = y },
			{ .type = STORE_OP_CREATE, .path = a },
		};
		assert_int_equal(store_multi(c->s, ops, 2, &failed), -EEXIST);
		assert_int_equal(failed, 1);
		assert_int_equal(store_exists(c->s, y, NULL, NULL, NULL), -ENOENT);
	}
	{
		struct store_op ops[] = {
			{ .type = STORE_OP_SET, .path = a, .data = "z", .len = 1, .version = -1 },
			{ .type = STORE_OP_DELETE, .path = a, .version = -1 },
		};
		assert_int_equal(store_multi(c->s, ops, 2, &failed), -ENOTEMPTY);
		assert_int_equal(failed, 1);
	}
	/* delete child then parent, in order, in one multi */
	{
		struct store_op ops[] = {
			{ .type = STORE_OP_DELETE, .path = ab, .version = 0 },
			{ .type = STORE_OP_DELETE, .path = a, .version = 1 },
			{ .type = STORE_OP_CREATE, .path = y, .data = "Y", .len = 1 },
		};
		assert_int_equal(store_multi(c->s, ops, ELEMENTSOF(ops), &failed), 0);
	}
	assert_int_equal(store_exists(c->s, a, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(store_exists(c->s, y, NULL, NULL, NULL), 0);
	assert_int_equal(store_multi(c->s, NULL, 0, NULL), 0);
	/* store_multi_paths: a batch of sequential creates returns consecutive names */
	{
		_cleanup_free_ char *q = ct_path(c, "q"), *pre = ct_path(c, "q/i#");
		_cleanup_strv_free_ char **paths = NULL;
		struct store_op ops[] = {
			{ .type = STORE_OP_CREATE, .path = pre, .data = "1", .len = 1, .flags = STORE_SEQUENTIAL },
			{ .type = STORE_OP_CHECK, .path = y, .version = -1 },
			{ .type = STORE_OP_CREATE, .path = pre, .data = "2", .len = 1, .flags = STORE_SEQUENTIAL },
			{ .type = STORE_OP_CREATE, .path = pre, .data = "3", .len = 1, .flags = STORE_SEQUENTIAL },
		};
		assert_int_equal(store_create(c->s, q, NULL, 0, 0, NULL), 0);
		assert_int_equal(store_multi_paths(c->s, ops, ELEMENTSOF(ops), &failed, &paths), 0);
		assert_int_equal(strv_length(paths), 4);
		assert_string_equal(paths[1], "");
		for (int i = 0; i < 4; i++) {
			_cleanup_free_ char *want = strdup_printf("%s%010d", pre, i < 2 ? 0 : i - 1), *got = NULL;
			if (i == 1)
				continue;
			assert_string_equal(paths[i], want);
			assert_int_equal(store_get(c->s, want, &got, NULL, NULL, NULL, NULL), 0);
			assert_int_equal(got[0], i < 2 ? '1' : '0' + i);
		}
		/* nothing created, no paths, when one op fails */
		strv_free(paths);
		paths = NULL;
		ops[1].version = 99;
		assert_int_equal(store_multi_paths(c->s, ops, ELEMENTSOF(ops), &failed, &paths), -ESTALE);
		assert_int_equal(failed, 1);
		assert_null(paths);
	}
}

static void ct_big_data(void **state)
{
	struct ct *c = *state;
	_cleanup_free_ char *a = ct_path(c, "big"), *buf = malloc(STORE_MAX_DATA + 1), *d = NULL;
	size_t len;

	assert_non_null(buf);
	for (size_t i = 0; i < STORE_MAX_DATA + 1; i++)
		buf[i] = (char)(i * 7 + (i >> 9));
	buf[0] = 0; /* binary, with NULs and newlines */
	buf[1] = '\n';
	assert_int_equal(store_create(c->s, a, buf, STORE_MAX_DATA + 1, 0, NULL), -E2BIG);
	assert_int_equal(store_create(c->s, a, buf, STORE_MAX_DATA, 0, NULL), 0);
	assert_int_equal(store_get(c->s, a, &d, &len, NULL, NULL, NULL), 0);
	assert_int_equal(len, STORE_MAX_DATA);
	assert_memory_equal(d, buf, STORE_MAX_DATA);
	assert_int_equal(d[len], 0);
	assert_int_equal(store_set(c->s, a, buf, STORE_MAX_DATA + 1, -1, NULL), -E2BIG);
	assert_int_equal(store_set(c->s, a, buf + 1, 1000, -1, NULL), 0);
	free(d);
	d = NULL;
	assert_int_equal(store_get(c->s, a, &d, &len, NULL, NULL, NULL), 0);
	assert_int_equal(len, 1000);
	assert_memory_equal(d, buf + 1, 1000);
}

static void ct_names(void **state)
{
	struct ct *c = *state;
	static const char *const odd[] = { "proid.app#0000000042", "srv,1700000000.5,node,service_exited,x.0",
					   "a@b:c~d", "with space", "ünïcödé", "1:tcp:http", "x..y", "-" };
	static const char *const bad[] = { "", "a", "/a/", "//", "/a//b", "/.x", "/a/.b", "/a/..", "/a/./b" };
	_cleanup_strv_free_ char **l = NULL;

	for (size_t i = 0; i < ELEMENTSOF(odd); i++) {
		_cleanup_free_ char *p = ct_path(c, odd[i]), *d = NULL;
		assert_int_equal(store_create(c->s, p, odd[i], strlen(odd[i]), 0, NULL), 0);
		assert_int_equal(store_get(c->s, p, &d, NULL, NULL, NULL, NULL), 0);
		assert_string_equal(d, odd[i]);
	}
	assert_int_equal(store_children(c->s, c->base, &l, NULL, NULL), 0);
	assert_int_equal(strv_length(l), ELEMENTSOF(odd));
	for (size_t i = 0; i + 1 < strv_length(l); i++)
		assert_true(strcmp(l[i], l[i + 1]) < 0);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		assert_int_equal(store_create(c->s, bad[i], NULL, 0, 0, NULL), -EINVAL);
		assert_int_equal(store_get(c->s, bad[i], NULL, NULL, NULL, NULL, NULL), -EINVAL);
	}
	assert_int_equal(store_create(c->s, "/", NULL, 0, 0, NULL), -EINVAL);
	assert_int_equal(store_delete(c->s, "/", -1), -EINVAL);
	assert_int_equal(store_exists(c->s, "/", NULL, NULL, NULL), 0);
	assert_string_equal(store_strerror(-ENOENT), "no node");
	assert_string_equal(store_strerror(-ESTALE), "bad version");
}

/* store_get_many_in: many nodes of one directory in one call, missing ones
 * NULL, stats filled, big data whole, bad names refused before anything is read. */
static void ct_get_many(void **state)
{
	struct ct *c = *state;
	enum { N = 5000 };
	char **names = calloc(N + 2, sizeof(char *)), **data = calloc(N + 1, sizeof(char *));
	size_t *len = calloc(N + 1, sizeof(size_t));
	struct store_stat *st = calloc(N + 1, sizeof(*st));
	_cleanup_free_ char *big = malloc(STORE_MAX_DATA);
	char *bad[2];

	assert_non_null(names);
	assert_non_null(data);
	assert_non_null(len);
	assert_non_null(st);
	assert_non_null(big);
	memset(big, 'b', STORE_MAX_DATA);
	for (size_t i = 0; i < N; i++) {
		_cleanup_free_ char *path = NULL;
		char v[32];

		names[i] = strdup_printf("m%05zu", i);
		assert_non_null(names[i]);
		path = ct_path(c, names[i]);
		snprintf(v, sizeof(v), "v%zu", i);
		if (i % 7 == 3) /* missing */
			continue;
		if (i == 11)
			assert_int_equal(store_create(c->s, path, big, STORE_MAX_DATA, 0, NULL), 0);
		else
			assert_int_equal(store_create(c->s, path, v, strlen(v), 0, NULL), 0);
	}
	names[N] = strdup("last");
	{
		_cleanup_free_ char *last = ct_path(c, "last");
		assert_int_equal(store_create(c->s, last, NULL, 0, 0, NULL), 0);
	}
	assert_int_equal(store_get_many_in(c->s, c->base, names, N + 1, data, len, st), 0);
	for (size_t i = 0; i < N; i++) {
		char v[32];

		snprintf(v, sizeof(v), "v%zu", i);
		if (i % 7 == 3) {
			assert_null(data[i]);
		} else if (i == 11) {
			assert_int_equal(len[i], STORE_MAX_DATA);
			assert_memory_equal(data[i], big, STORE_MAX_DATA);
		} else {
			assert_string_equal(data[i], v);
			assert_int_equal(len[i], strlen(v));
			assert_int_equal(st[i].version, 0);
			assert_true(st[i].ctime_ms > 1500000000000LL);
		}
		free(data[i]);
	}
	assert_string_equal(data[N], "");
	assert_int_equal(len[N], 0);
	free(data[N]);
	/* without len and stat; none at all */
	assert_int_equal(store_get_many_in(c->s, c->base, names, 2, data, NULL, NULL), 0);
	assert_string_equal(data[0], "v0");
	free(data[0]);
	free(data[1]);
	assert_int_equal(store_get_many_in(c->s, c->base, NULL, 0, NULL, NULL, NULL), 0);
	bad[0] = names[0];
	bad[1] = (char *)".dot";
	assert_int_equal(store_get_many_in(c->s, c->base, bad, 2, data, NULL, NULL), -EINVAL);
	for (size_t i = 0; i <= N; i++)
		free(names[i]);
	free(names);
	free(data);
	free(len);
	free(st);
}

static void ct_session_basics(void **state)
{
	struct ct *c = *state;

	assert_true(store_fd(c->s) >= 0);
	assert_int_equal(store_state(c->s), STORE_CONNECTED);
	assert_true(store_dispatch(c->s) >= 0);
	assert_int_equal(store_wait(c->s, 0), 0);
	store_close(NULL);
}

#define CT_TEST(f) cmocka_unit_test_setup_teardown(f, ct_setup, ct_teardown)
#define STORE_CONTRACT_TESTS                                                                                  \
	CT_TEST(ct_create_get), CT_TEST(ct_set_versions), CT_TEST(ct_children_cversion), CT_TEST(ct_sequential), \
		CT_TEST(ct_ephemeral), CT_TEST(ct_ephemeral_sigkill), CT_TEST(ct_data_watch),                      \
		CT_TEST(ct_watch_other_session), CT_TEST(ct_watch_deep_missing), CT_TEST(ct_child_watch),         \
		CT_TEST(ct_multi), CT_TEST(ct_big_data), CT_TEST(ct_names), CT_TEST(ct_get_many),                 \
		CT_TEST(ct_session_basics)
