/* test-store-zk.c: the store contract against a real ZooKeeper, plus failure
 * behaviour of an ensemble.  Needs servers started by tests/lib/zk.sh (see
 * tests/integration/30-store-zk.sh); without TREADLE_TEST_ZK_URL it reports a
 * TAP skip.
 *   TREADLE_TEST_ZK_URL    zk://hosts/chroot for the contract
 *   TREADLE_TEST_ZK_PIDS   "p1,p2,p3" server pids (ensemble only)
 *   TREADLE_TEST_ZK_PORTS  "port1,port2,port3" client ports (ensemble only)
 */
#include <inttypes.h>

#include "store-contract.h"

static int pids[3], ports[3];
static bool ensemble;

static void on_session(struct store *s, enum store_event ev, const char *path, void *userdata)
{
	int *seen = userdata;

	seen[store_state(s)]++;
}

static struct store *open_host(int i, struct store_options *o)
{
	struct error err = ERROR_INIT;
	struct store *s = NULL;
	const char *chroot = strchr(contract_url + 5, '/');
	_cleanup_free_ char *url = strdup_printf("zk://127.0.0.1:%d%s", ports[i], chroot ? chroot : "");

	if (store_open(url, o, &s, &err) < 0)
		fail_msg("store_open %s: %s", url, err.msg);
	return s;
}

/* A victim on server 0 (options vo) holding the ephemeral p, an observer on
 * server 1 watching it (events into rec). */
static void open_pair(struct store_options *vo, const char *p, struct store **victim, struct store **observer,
		      struct ct_rec *rec)
{
	*victim = open_host(0, vo);
	*observer = open_host(1, NULL);
	assert_int_equal(store_create(*victim, p, "e", 1, STORE_EPHEMERAL, NULL), 0);
	assert_int_equal(ct_wait_exists(*observer, p, true, NULL), 0); /* the observer's server may lag */
	assert_int_equal(store_exists(*observer, p, NULL, ct_record, rec), 0);
}

/* The client's only server freezes for less than the session timeout: the
 * client reports CONNECTING, then CONNECTED again with the same session, and
 * its ephemeral never went away. */
static void test_session_survives(void **state)
{
	int seen[3] = { 0 };
	struct store_options vo = { .session_timeout_ms = 9000, .session_cb = on_session, .session_userdata = seen };
	struct store *victim, *observer;
	struct ct_rec rec = { 0 };
	_cleanup_free_ char *p = strdup_printf("/survive-%d", (int)getpid());
	int64_t id;
	uint64_t end;

	open_pair(&vo, p, &victim, &observer, &rec);
	id = store_session_id(victim);
	assert_int_equal(kill(pids[0], SIGSTOP), 0);
	end = now_monotonic_ms() + 7000; /* > 2/3 of the timeout (the client gives up on the server), < timeout */
	while (now_monotonic_ms() < end)
		store_wait(victim, 50);
	assert_int_equal(kill(pids[0], SIGCONT), 0);
	assert_true(seen[STORE_CONNECTING] > 0);
	end = now_monotonic_ms() + 10000;
	while (store_state(victim) != STORE_CONNECTED && now_monotonic_ms() < end)
		store_wait(victim, 50);
	store_wait(victim, 50);
	assert_int_equal(store_state(victim), STORE_CONNECTED);
	assert_true(seen[STORE_CONNECTED] > 0);
	assert_int_equal(seen[STORE_EXPIRED], 0);
	assert_int_equal(store_session_id(victim), id);
	assert_int_equal(store_set(victim, p, "still", 5, -1, NULL), 0);
	store_wait(observer, 200);
	assert_int_equal(store_exists(observer, p, NULL, NULL, NULL), 0);
	assert_int_equal(rec.n == 0 || rec.ev[0] == STORE_EVENT_CHANGED, 1); /* never deleted */
	store_close(victim);
	store_close(observer);
}

/* A client attached to one server only: that server freezes for longer than
 * the session timeout, the ensemble expires the session (ephemerals go), and
 * when the server comes back the client learns STORE_EXPIRED. */
static void test_session_expiry(void **state)
{
	int seen[3] = { 0 };
	struct store_options vo = { .session_timeout_ms = 1000, .session_cb = on_session, .session_userdata = seen };
	struct store *victim, *observer;
	struct ct_rec rec = { 0 };
	_cleanup_free_ char *p = strdup_printf("/expiry-%d", (int)getpid());
	uint64_t end;

	open_pair(&vo, p, &victim, &observer, &rec);
	assert_int_equal(kill(pids[0], SIGSTOP), 0);
	ct_wait_events(observer, &rec, 1, 20000);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ev[0], STORE_EVENT_DELETED);
	assert_int_equal(store_exists(observer, p, NULL, NULL, NULL), -ENOENT);
	/* meanwhile the victim noticed the lost connection */
	end = now_monotonic_ms() + 10000;
	while (!seen[STORE_CONNECTING] && now_monotonic_ms() < end)
		store_wait(victim, 100);
	assert_true(seen[STORE_CONNECTING] > 0);
	assert_int_equal(kill(pids[0], SIGCONT), 0);
	end = now_monotonic_ms() + 30000;
	while (store_state(victim) != STORE_EXPIRED && now_monotonic_ms() < end)
		store_wait(victim, 100);
	store_wait(victim, 100);
	assert_int_equal(store_state(victim), STORE_EXPIRED);
	assert_true(seen[STORE_EXPIRED] > 0);
	assert_int_equal(store_create(victim, p, NULL, 0, 0, NULL), -ESHUTDOWN);
	store_close(victim);
	store_close(observer);
}

/* Killing one member of three: operations continue (after at most a short
 * -ENOTCONN period while the client moves to another server). */
static void test_member_killed(void **state)
{
	struct store *s;
	_cleanup_free_ char *p = strdup_printf("/kill-%d", (int)getpid());
	uint64_t end;
	int r, ok = 0;

	s = ct_open();
	assert_int_equal(store_create(s, p, NULL, 0, 0, NULL), 0);
	assert_int_equal(kill(pids[2], SIGKILL), 0);
	end = now_monotonic_ms() + 20000;
	for (int i = 0; i < 50 && now_monotonic_ms() < end;) {
		_cleanup_free_ char *c = strdup_printf("%s/n%d", p, i);
		r = store_create(s, c, NULL, 0, 0, NULL);
		if (r == -ENOTCONN || r == -EEXIST) { /* outcome unknown: retry (EEXIST: it had gone through) */
			if (r == -EEXIST)
				i++, ok++;
			else
				store_wait(s, 100);
			continue;
		}
		assert_int_equal(r, 0);
		ok++;
		i++;
	}
	assert_int_equal(ok, 50);
	{
		_cleanup_strv_free_ char **l = NULL;
		assert_int_equal(store_children(s, p, &l, NULL, NULL), 0);
		assert_int_equal(strv_length(l), 50);
	}
	assert_int_equal(store_delete_r(s, p), 0);
	store_close(s);
}

static void parse_list(const char *v, int *out)
{
	if (!v || sscanf(v, "%d,%d,%d", &out[0], &out[1], &out[2]) != 3)
		out[0] = out[1] = out[2] = 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest single[] = { STORE_CONTRACT_TESTS };
	const struct CMUnitTest ens[] = {
		STORE_CONTRACT_TESTS,
		cmocka_unit_test(test_session_survives),
		cmocka_unit_test(test_session_expiry),
		cmocka_unit_test(test_member_killed),
	};

	if (argc > 1 && !strcmp(argv[1], CT_CHILD_ARG))
		return store_contract_child_main(argc, argv);
	contract_url = getenv("TREADLE_TEST_ZK_URL");
	if (!contract_url || !*contract_url) {
		/* TAP skip (cmocka would print "not ok ... # SKIP"): the servers come from the integration test */
		printf("1..1\nok 1 # SKIP TREADLE_TEST_ZK_URL not set; run by tests/integration/30-store-zk.sh\n");
		return 0;
	}
	/* a long timeout for the test's own sessions (1 MiB writes on a loaded 3-server box take a
	 * while), a short one for the child whose ephemeral must vanish after SIGKILL */
	contract_opts.session_timeout_ms = 10000;
	contract_child_timeout_ms = 2000;
	if (getenv("TREADLE_TEST_ZK_PIDS")) {
		parse_list(getenv("TREADLE_TEST_ZK_PIDS"), pids);
		parse_list(getenv("TREADLE_TEST_ZK_PORTS"), ports);
		ensemble = pids[0] > 0 && pids[1] > 0 && pids[2] > 0 && ports[0] > 0 && ports[1] > 0;
	}
	if (ensemble)
		return cmocka_run_group_tests(ens, NULL, NULL);
	return cmocka_run_group_tests(single, NULL, NULL);
}
