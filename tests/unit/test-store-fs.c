/* test-store-fs.c: the store contract on the embedded backend, plus what only
 * the embedded backend has: several processes on one directory, crash
 * recovery of store_multi, sweeping of dead sessions, the on-disk layout. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>

#include "store-contract.h"
#include "../../src/basic/fileio.h"

static char tmpdir[] = "/tmp/treadle-store-ut-XXXXXX";
static char *url;

static int group_setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	url = strdup_printf("file://%s/store", tmpdir);
	contract_url = url;
	return url ? 0 : -1;
}

static int group_teardown(void **state)
{
	rm_rf(tmpdir);
	free(url);
	return 0;
}

/* fork() with a pipe from child to parent (pfd[1] to pfd[0]). */
static pid_t fork_piped(int pfd[2])
{
	pid_t pid;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	return pid;
}

static struct store *open_dir(const char *dir)
{
	struct error err = ERROR_INIT;
	struct store *s = NULL;

	if (store_open(dir, NULL, &s, &err) < 0)
		fail_msg("store_open %s: %s", dir, err.msg);
	return s;
}

/* Several processes create sequential nodes under one parent at once. */
static void test_concurrent_sequential(void **state)
{
	enum { PROCS = 4, EACH = 40 };
	_cleanup_free_ char *dir = strdup_printf("%s/conc", tmpdir);
	_cleanup_strv_free_ char **l = NULL;
	struct store *s;
	pid_t pids[PROCS];

	s = open_dir(dir);
	assert_int_equal(store_create(s, "/q", NULL, 0, 0, NULL), 0);
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			struct error err = ERROR_INIT;
			struct store *c;
			if (store_open(dir, NULL, &c, &err) < 0)
				_exit(2);
			for (int i = 0; i < EACH; i++) {
				char data[32];
				int n = snprintf(data, sizeof(data), "%d.%d", p, i);
				if (store_create(c, "/q/n-", data, (size_t)n, STORE_SEQUENTIAL, NULL) < 0)
					_exit(3);
			}
			store_close(c);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int status;
		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(store_children(s, "/q", &l, NULL, NULL), 0);
	assert_int_equal(strv_length(l), PROCS * EACH);
	for (int i = 0; i < PROCS * EACH; i++) {
		char want[32];
		snprintf(want, sizeof(want), "n-%010d", i);
		assert_string_equal(l[i], want); /* sorted, no gap, no duplicate */
	}
	/* every process's writes are all there, in its own order */
	for (int p = 0; p < PROCS; p++) {
		int next = 0;
		for (char **n = l; *n; n++) {
			_cleanup_free_ char *path = strdup_printf("/q/%s", *n), *d = NULL;
			int pp, ii;
			assert_int_equal(store_get(s, path, &d, NULL, NULL, NULL, NULL), 0);
			assert_int_equal(sscanf(d, "%d.%d", &pp, &ii), 2);
			if (pp == p) {
				assert_int_equal(ii, next);
				next++;
			}
		}
		assert_int_equal(next, EACH);
	}
	store_close(s);
}

/* A multi interrupted after its wal record was made durable (while its
 * leader applied it) is completed by the next writer; one interrupted
 * before leaves no trace. */
static void test_multi_crash_recovery(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/crash", tmpdir);
	struct store *s;

	s = open_dir(dir);
	assert_int_equal(store_create(s, "/a", "old", 3, 0, NULL), 0);
	assert_int_equal(store_create(s, "/gone", NULL, 0, 0, NULL), 0);
	for (int point = 0; point <= 4; point++) {
		pid_t pid = fork();
		int status;
		assert_true(pid >= 0);
		if (pid == 0) {
			char v[16];
			struct error err = ERROR_INIT;
			struct store *c;
			_cleanup_free_ char *np = strdup_printf("/new%d", point), *npc = strdup_printf("/new%d/c", point);
			struct store_op ops[] = {
				{ .type = STORE_OP_CREATE, .path = np, .data = "N", .len = 1 },
				{ .type = STORE_OP_CREATE, .path = npc, .data = "C", .len = 1 },
				{ .type = STORE_OP_SET, .path = "/a", .data = np, .len = strlen(np), .version = -1 },
				{ .type = STORE_OP_DELETE, .path = "/gone", .version = -1 },
				{ .type = STORE_OP_CREATE, .path = "/gone" },
			};
			if (store_open(dir, NULL, &c, &err) < 0)
				_exit(2);
			snprintf(v, sizeof(v), "%d", point * 2);
			setenv("TREADLE_STORE_CRASH_AFTER_STEPS", v, 1);
			store_multi(c, ops, ELEMENTSOF(ops), NULL);
			_exit(0); /* not reached: the crash point _exit(99)s */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 99);
		if (point == 0) { /* durable in the wal, not applied yet: readers do not see it */
			_cleanup_free_ char *np = strdup_printf("/new%d", point);
			assert_int_equal(store_exists(s, np, NULL, NULL, NULL), -ENOENT);
		}
		/* the next mutation (any handle) completes it */
		{
			_cleanup_free_ char *np = strdup_printf("/new%d", point), *npc = strdup_printf("/new%d/c", point);
			_cleanup_free_ char *d = NULL;
			assert_int_equal(store_create(s, "/unrelated", NULL, 0, 0, NULL), 0);
			assert_int_equal(store_delete(s, "/unrelated", -1), 0);
			assert_int_equal(store_exists(s, np, NULL, NULL, NULL), 0);
			assert_int_equal(store_exists(s, npc, NULL, NULL, NULL), 0);
			assert_int_equal(store_get(s, "/a", &d, NULL, NULL, NULL, NULL), 0);
			assert_string_equal(d, np);
			assert_int_equal(store_exists(s, "/gone", NULL, NULL, NULL), 0);
		}
	}
	store_close(s);
}

/* A session file left by a dead process (its lock gone) is swept by the next
 * store_open, with its ephemerals. */
static void test_sweep_on_open(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/sweep", tmpdir), *sessions = NULL;
	_cleanup_strv_free_ char **l = NULL;
	struct store *s;
	pid_t pid;
	int status, pfd[2];
	char c;

	s = open_dir(dir);
	store_close(s);
	pid = fork_piped(pfd);
	if (pid == 0) {
		struct error err = ERROR_INIT;
		struct store *cs;
		if (store_open(dir, NULL, &cs, &err) < 0 || store_create(cs, "/e", NULL, 0, STORE_EPHEMERAL, NULL) < 0)
			_exit(2);
		if (write(pfd[1], "x", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* nobody was watching: the ephemeral is still on disk until the next open */
	sessions = strdup_printf("%s/tree/e", dir);
	assert_int_equal(access(sessions, F_OK), 0);
	s = open_dir(dir);
	assert_int_equal(store_exists(s, "/e", NULL, NULL, NULL), -ENOENT);
	free(sessions);
	sessions = strdup_printf("%s/sessions", dir);
	assert_int_equal(dir_list(sessions, 0, &l), 0);
	assert_int_equal(strv_length(l), 1); /* only ours */
	store_close(s);
	strv_free(l);
	l = NULL;
	assert_int_equal(dir_list(sessions, 0, &l), 0);
	assert_int_equal(strv_length(l), 0); /* close removes it */
}

/* Data survives reopening; no temporary files are left in the tree. */
static void test_persistence_layout(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/persist", tmpdir), *d = NULL, *tree = NULL;
	_cleanup_strv_free_ char **l = NULL;
	struct store *s;
	struct store_stat st;

	s = open_dir(dir);
	assert_int_equal(store_create(s, "/k", "v", 1, 0, NULL), 0);
	assert_int_equal(store_set(s, "/k", "w", 1, 0, NULL), 0);
	assert_int_equal(store_create(s, "/k/c", NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(s, "/k/e", NULL, 0, STORE_EPHEMERAL, NULL), 0);
	store_close(s);
	s = open_dir(dir);
	assert_int_equal(store_get(s, "/k", &d, NULL, &st, NULL, NULL), 0);
	assert_string_equal(d, "w");
	assert_int_equal(st.version, 1);
	assert_int_equal(st.cversion, 3); /* c, e created, e deleted at close */
	assert_int_equal(st.num_children, 1);
	tree = strdup_printf("%s/tree/k", dir);
	assert_int_equal(dir_list(tree, 0, &l), 0);
	assert_int_equal(strv_length(l), 3);
	assert_string_equal(l[0], ".cversion");
	assert_string_equal(l[1], ".node");
	assert_string_equal(l[2], "c");
	store_close(s);
}

/* Every node directory holds a valid .node: no half node anywhere. */
static void check_tree(const char *fsdir, int *nodes)
{
	_cleanup_strv_free_ char **l = NULL;
	_cleanup_free_ char *node = strdup_printf("%s/.node", fsdir), *d = NULL;

	assert_int_equal(read_file(node, &d, NULL), 0);
	assert_true(startswith(d, "N1 "));
	(*nodes)++;
	{
		_cleanup_strv_free_ char **all = NULL;
		assert_int_equal(dir_list(fsdir, 0, &all), 0);
		for (char **n = all; *n; n++) /* nothing but the node's files and its children */
			if ((*n)[0] == '.' && strcmp(*n, ".node") && strcmp(*n, ".cversion") && strcmp(*n, ".cseq"))
				fail_msg("leftover %s/%s", fsdir, *n);
	}
	assert_int_equal(dir_list(fsdir, 1, &l), 0);
	for (char **n = l; *n; n++) {
		_cleanup_free_ char *c = strdup_printf("%s/%s", fsdir, *n);
		check_tree(c, nodes);
	}
}

/* SIGKILL a writer at random points, many times: every write it reported
 * done is there, multis are whole, and the tree has no half node. */
static void test_crash_fuzz(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/fuzz", tmpdir), *tree = strdup_printf("%s/fuzz/tree", tmpdir);
	struct store *s;
	int acked_total = 0;

	s = open_dir(dir);
	assert_int_equal(store_create(s, "/acked", NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(s, "/pairs", NULL, 0, 0, NULL), 0);
	store_close(s);
	srandom((unsigned)getpid());
	for (int round = 0; round < 15; round++) {
		int pfd[2], status, acked = -1;
		pid_t pid;
		char buf[4096];
		ssize_t n;
		size_t got = 0;

		pid = fork_piped(pfd);
		if (pid == 0) {
			struct error err = ERROR_INIT;
			struct store *c;
			close(pfd[0]);
			if (store_open(dir, NULL, &c, &err) < 0)
				_exit(2);
			for (int i = 0;; i++) {
				_cleanup_free_ char *p = strdup_printf("/acked/r%02d-%05d", round, i);
				_cleanup_free_ char *a = strdup_printf("/pairs/r%02d-%05d-a", round, i);
				_cleanup_free_ char *b = strdup_printf("/pairs/r%02d-%05d-b", round, i);
				struct store_op ops[] = {
					{ .type = STORE_OP_CREATE, .path = a, .data = "a", .len = 1 },
					{ .type = STORE_OP_CREATE, .path = b, .data = "b", .len = 1 },
				};
				if (store_create(c, p, "v", 1, 0, NULL) < 0 || store_set(c, p, "w", 1, 0, NULL) < 0 ||
				    store_create(c, "/acked/s-", NULL, 0, STORE_SEQUENTIAL | STORE_EPHEMERAL, NULL) < 0 ||
				    store_multi(c, ops, 2, NULL) < 0)
					_exit(3);
				if (write(pfd[1], &i, sizeof(i)) != sizeof(i))
					_exit(4);
			}
		}
		close(pfd[1]);
		if (round % 3 == 0) { /* some rounds kill only after a first acknowledgement, however slow */
			assert_int_equal(read(pfd[0], &acked, sizeof(acked)), sizeof(acked));
		}
		usleep((useconds_t)(5000 + random() % 80000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		while ((n = read(pfd[0], buf + got % sizeof(buf), sizeof(int))) > 0) {
			memcpy(&acked, buf + got % sizeof(buf), sizeof(int));
			got += (size_t)n;
		}
		close(pfd[0]);
		assert_true(WIFSIGNALED(status));
		/* the next open replays any journal and reaps the dead session */
		s = open_dir(dir);
		for (int i = 0; i <= acked; i++) {
			_cleanup_free_ char *p = strdup_printf("/acked/r%02d-%05d", round, i), *d = NULL;
			assert_int_equal(store_get(s, p, &d, NULL, NULL, NULL, NULL), 0);
			assert_string_equal(d, "w");
		}
		{
			_cleanup_strv_free_ char **l = NULL;
			assert_int_equal(store_children(s, "/pairs", &l, NULL, NULL), 0);
			for (char **p = l; *p; p++) { /* multis are whole: -a and -b come in pairs */
				_cleanup_free_ char *other = strdup(*p);
				other[strlen(other) - 1] = other[strlen(other) - 1] == 'a' ? 'b' : 'a';
				assert_true(strv_contains(l, other));
			}
			_cleanup_strv_free_ char **e = NULL;
			assert_int_equal(store_children(s, "/acked", &e, NULL, NULL), 0);
			for (char **p = e; *p; p++)
				assert_false(startswith(*p, "s-")); /* its ephemerals went with it */
		}
		{
			int nodes = 0;
			check_tree(tree, &nodes);
			assert_true(nodes >= 3);
		}
		store_close(s);
		acked_total += acked + 1;
	}
	print_message("# %d acknowledged write groups survived 15 SIGKILLs\n", acked_total);
	assert_true(acked_total > 0);
}

/* Group commit under SIGKILL: four writer processes at once, each acknowledging
 * single creates and batches of 20 (store_multi) through a pipe, all killed
 * mid-stream.  Every acknowledged write is there, every batch is whole or
 * absent, no half node. */
#define GC_WRITERS 4
#define GC_BATCH 20
static void test_group_commit_crash(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/gcrash", tmpdir), *tree = strdup_printf("%s/gcrash/tree", tmpdir);
	struct store *s;
	int total = 0;

	s = open_dir(dir);
	assert_int_equal(store_create(s, "/one", NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(s, "/batch", NULL, 0, 0, NULL), 0);
	store_close(s);
	for (int round = 0; round < 4; round++) {
		int pfd[GC_WRITERS][2], acked[GC_WRITERS];
		pid_t pid[GC_WRITERS];

		for (int w = 0; w < GC_WRITERS; w++) {
			pid[w] = fork_piped(pfd[w]);
			acked[w] = -1;
			if (pid[w] == 0) {
				struct error err = ERROR_INIT;
				struct store *c;
				close(pfd[w][0]);
				if (store_open(dir, NULL, &c, &err) < 0)
					_exit(2);
				for (int i = 0;; i++) {
					_cleanup_free_ char *p = strdup_printf("/one/r%d-w%d-%05d", round, w, i);
					struct store_op ops[GC_BATCH];
					char *paths[GC_BATCH];
					for (int k = 0; k < GC_BATCH; k++) {
						paths[k] = strdup_printf("/batch/r%d-w%d-%05d-%02d", round, w, i, k);
						ops[k] = (struct store_op){ .type = STORE_OP_CREATE, .path = paths[k],
									    .data = "b", .len = 1 };
					}
					if (store_create(c, p, "v", 1, 0, NULL) < 0 || store_multi(c, ops, GC_BATCH, NULL) < 0)
						_exit(3);
					for (int k = 0; k < GC_BATCH; k++)
						free(paths[k]);
					if (write(pfd[w][1], &i, sizeof(i)) != sizeof(i))
						_exit(4);
				}
			}
			close(pfd[w][1]);
		}
		for (int w = 0; w < GC_WRITERS; w++) /* each has acknowledged once, however slow the machine */
			assert_int_equal(read(pfd[w][0], &acked[w], sizeof(acked[w])), sizeof(acked[w]));
		usleep((useconds_t)(20000 + random() % 150000));
		for (int w = 0; w < GC_WRITERS; w++)
			kill(pid[w], SIGKILL);
		for (int w = 0; w < GC_WRITERS; w++) {
			int status, v;
			assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
			assert_true(WIFSIGNALED(status));
			while (read(pfd[w][0], &v, sizeof(v)) == sizeof(v))
				acked[w] = v;
			close(pfd[w][0]);
		}
		s = open_dir(dir);
		for (int w = 0; w < GC_WRITERS; w++)
			for (int i = 0; i <= acked[w]; i++) {
				_cleanup_free_ char *p = strdup_printf("/one/r%d-w%d-%05d", round, w, i), *d = NULL;
				assert_int_equal(store_get(s, p, &d, NULL, NULL, NULL, NULL), 0);
				assert_string_equal(d, "v");
				for (int k = 0; k < GC_BATCH; k++) {
					_cleanup_free_ char *b = strdup_printf("/batch/r%d-w%d-%05d-%02d", round, w, i, k);
					assert_int_equal(store_exists(s, b, NULL, NULL, NULL), 0);
				}
				total++;
			}
		{
			_cleanup_strv_free_ char **l = NULL;
			assert_int_equal(store_children(s, "/batch", &l, NULL, NULL), 0);
			for (char **p = l; *p; p++) { /* a batch present is whole */
				size_t n = 0, len = strlen(*p) - 2;
				for (char **q = l; *q; q++)
					n += strncmp(*p, *q, len) == 0;
				assert_int_equal(n, GC_BATCH);
			}
		}
		{
			int nodes = 0;
			check_tree(tree, &nodes);
		}
		store_close(s);
	}
	print_message("# %d acknowledged single+batch writes of %d concurrent writers survived 4 SIGKILLs\n", total,
		      GC_WRITERS);
	assert_true(total > 0);
}

/* A power loss: the tree's unsynced applies may be lost (a .node left empty,
 * a node missing), the wal is durable.  The first open after the reboot (the
 * boot id in DIR/lock differs) replays the wal and restores them. */
static void test_replay_after_reboot(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/reboot", tmpdir), *lock = strdup_printf("%s/reboot/lock", tmpdir);
	_cleanup_free_ char *n3 = strdup_printf("%s/reboot/tree/r/n3/.node", tmpdir);
	_cleanup_free_ char *n5 = strdup_printf("%s/reboot/tree/r/n5", tmpdir);
	struct store *s;
	int fd;

	s = open_dir(dir);
	assert_int_equal(store_create(s, "/r", NULL, 0, 0, NULL), 0);
	for (int i = 0; i < 8; i++) {
		_cleanup_free_ char *p = strdup_printf("/r/n%d", i), *v = strdup_printf("value %d", i);
		assert_int_equal(store_create(s, p, v, strlen(v), 0, NULL), 0);
	}
	assert_int_equal(store_set(s, "/r/n3", "new", 3, 0, NULL), 0);
	store_close(s);
	/* what a power loss can do to writes that were not flushed yet */
	assert_int_equal(truncate(n3, 0), 0);
	assert_int_equal(rm_rf(n5), 0);
	fd = open(lock, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "another-boot", 12, 8), 12); /* the boot id field */
	close(fd);
	s = open_dir(dir);
	for (int i = 0; i < 8; i++) {
		_cleanup_free_ char *p = strdup_printf("/r/n%d", i), *v = strdup_printf("value %d", i), *d = NULL;
		struct store_stat st;
		assert_int_equal(store_get(s, p, &d, NULL, &st, NULL, NULL), 0);
		assert_string_equal(d, i == 3 ? "new" : v);
		assert_int_equal(st.version, i == 3 ? 1 : 0);
	}
	{
		struct store_stat st;
		assert_int_equal(store_exists(s, "/r", &st, NULL, NULL), 0);
		assert_int_equal(st.cversion, 8);
		assert_int_equal(st.num_children, 8);
	}
	store_close(s);
}

struct thr {
	const char *dir;
	int id, done;
};

static void *thr_writer(void *arg)
{
	struct thr *t = arg;
	struct error err = ERROR_INIT;
	struct store *s;

	if (store_open(t->dir, NULL, &s, &err) < 0)
		return NULL;
	for (int i = 0; i < 50; i++) {
		_cleanup_free_ char *p = strdup_printf("/t/%d-%03d", t->id, i);
		if (store_create(s, p, "x", 1, 0, NULL) < 0 ||
		    store_create(s, "/t/seq-", NULL, 0, STORE_SEQUENTIAL, NULL) < 0)
			break;
		t->done++;
	}
	store_close(s);
	return NULL;
}

/* Writers in threads of one process (a handle each) are group-committed
 * together: all writes land, sequential names are unique. */
static void test_group_commit_threads(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/threads", tmpdir);
	_cleanup_strv_free_ char **l = NULL;
	pthread_t th[4];
	struct thr t[4];
	struct store *s = open_dir(dir);

	assert_int_equal(store_create(s, "/t", NULL, 0, 0, NULL), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ .dir = dir, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, thr_writer, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(t[i].done, 50);
	}
	assert_int_equal(store_children(s, "/t", &l, NULL, NULL), 0);
	assert_int_equal(strv_length(l), 400);
	{
		struct store_stat st;
		assert_int_equal(store_exists(s, "/t", &st, NULL, NULL), 0);
		assert_int_equal(st.cversion, 400);
	}
	store_close(s);
}

static void on_session_state(struct store *s, enum store_event ev, const char *path, void *userdata)
{
	if (ev == STORE_EVENT_SESSION && store_state(s) == STORE_EXPIRED)
		(*(int *)userdata)++;
}

/* A session whose file disappears (store removed, or wrongly reaped) is
 * reported EXPIRED through session_cb, like a ZooKeeper expiry, and refuses
 * further calls with -ESHUTDOWN. */
static void test_expiry(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/expire", tmpdir), *sessions = NULL;
	_cleanup_strv_free_ char **l = NULL;
	int expired = 0;
	struct store_options o = { .session_cb = on_session_state, .session_userdata = &expired };
	struct error err = ERROR_INIT;
	struct store *s = NULL;
	uint64_t end;

	assert_int_equal(store_open(dir, &o, &s, &err), 0);
	assert_true(store_fd(s) >= 0);
	assert_int_equal(store_create(s, "/x", NULL, 0, 0, NULL), 0);
	assert_int_equal(store_state(s), STORE_CONNECTED);
	sessions = strdup_printf("%s/sessions", dir);
	assert_int_equal(dir_list(sessions, 0, &l), 0);
	assert_int_equal(strv_length(l), 1);
	{
		_cleanup_free_ char *f = strdup_printf("%s/%s", sessions, l[0]);
		assert_int_equal(unlink(f), 0);
	}
	end = now_monotonic_ms() + 5000;
	while (!expired && now_monotonic_ms() < end)
		assert_true(store_wait(s, 100) >= 0);
	assert_int_equal(expired, 1);
	assert_int_equal(store_state(s), STORE_EXPIRED);
	assert_int_equal(store_create(s, "/y", NULL, 0, 0, NULL), -ESHUTDOWN);
	assert_int_equal(store_get(s, "/x", NULL, NULL, NULL, NULL, NULL), -ESHUTDOWN);
	store_close(s);
	/* a fresh session works */
	s = open_dir(dir);
	assert_int_equal(store_exists(s, "/x", NULL, NULL, NULL), 0);
	store_close(s);
}

/* A bad URL is a permanent error. */
static void test_bad_url(void **state)
{
	struct error err = ERROR_INIT;
	struct store *s = NULL;

	assert_true(store_open("http://x", NULL, &s, &err) < 0);
	assert_int_equal(err.code, ERR_PERM);
	error_clear(&err);
	assert_true(store_open("file://relative", NULL, &s, &err) < 0);
	assert_int_equal(err.code, ERR_PERM);
	error_clear(&err);
}


/* ---- corrupt files (issue 9): isolated, reported, recoverable ---- */

static void put_file(const char *dir, const char *rel, const char *data)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, rel);

	assert_non_null(p);
	(void)unlink(p);
	assert_int_equal(write_file_atomic(p, data, strlen(data), 0644), 0);
}

static void fsck(const char *dir, bool repair, size_t found, size_t repaired)
{
	struct store_fsck_result res;
	struct error err = ERROR_INIT;

	if (store_fsck(dir, repair, &res, &err) < 0)
		fail_msg("store_fsck %s: %s", dir, err.msg);
	for (char **l = res.lines; l && *l; l++)
		print_message("# fsck: %s\n", *l);
	assert_int_equal(res.found, found);
	assert_int_equal(res.repaired, repaired);
	strv_free(res.lines);
}

/* A corrupt .node: that node reads -EIO, the others are fine (also in
 * get_many), fsck lists it and --repair moves it to lost+found. */
static void test_corrupt_node(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/badnode", tmpdir);
	_cleanup_strv_free_ char **l = NULL, **lf = NULL;
	_cleanup_free_ char *lost = strdup_printf("%s/lost+found", dir);
	char *names[] = { "x", "y", "gone" };
	char *data[3] = { 0 };
	struct store *s = open_dir(dir);

	assert_int_equal(store_create(s, "/a", NULL, 0, 0, NULL), 0);
	assert_int_equal(store_create(s, "/a/x", "X", 1, 0, NULL), 0);
	assert_int_equal(store_create(s, "/a/x/kid", "K", 1, 0, NULL), 0);
	assert_int_equal(store_create(s, "/a/y", "Y", 1, 0, NULL), 0);
	put_file(dir, "tree/a/x/.node", "garbage\n");
	assert_int_equal(store_get(s, "/a/x", NULL, NULL, NULL, NULL, NULL), -EIO);
	assert_int_equal(store_get_many_in(s, "/a", names, 3, data, NULL, NULL), 0);
	assert_null(data[0]);
	assert_string_equal(data[1], "Y");
	assert_null(data[2]);
	free(data[1]);
	assert_int_equal(store_set(s, "/a/x", "Z", 1, -1, NULL), -EIO); /* not -ENOMEM */
	assert_int_equal(store_delete(s, "/a/x", -1), -EIO);
	assert_int_equal(store_create(s, "/a/z", "Z", 1, 0, NULL), 0); /* the rest works */
	store_close(s);

	fsck(dir, false, 1, 0); /* reported, nothing changed */
	s = open_dir(dir);
	assert_int_equal(store_get(s, "/a/x", NULL, NULL, NULL, NULL, NULL), -EIO);
	store_close(s);
	fsck(dir, true, 1, 1);
	fsck(dir, false, 0, 0);
	s = open_dir(dir);
	assert_int_equal(store_children(s, "/a", &l, NULL, NULL), 0);
	assert_int_equal(strv_length(l), 2);
	assert_string_equal(l[0], "y");
	assert_string_equal(l[1], "z");
	store_close(s);
	assert_int_equal(dir_list(lost, 0, &lf), 0); /* kept for a human, with its child */
	assert_int_equal(strv_length(lf), 1);
}

/* A journal that does not parse: open refuses with a clear permanent error
 * naming the file; fsck --repair sets it aside. */
static void test_garbage_journal(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/badjournal", tmpdir);
	_cleanup_strv_free_ char **files = NULL;
	struct error err = ERROR_INIT;
	struct store *s = open_dir(dir);
	bool aside = false;

	assert_int_equal(store_create(s, "/keep", "k", 1, 0, NULL), 0);
	store_close(s);
	put_file(dir, "journal", "TJ1 2\nP 3 0 0 0 0 0 0\n/ab");
	s = NULL;
	assert_true(store_open(dir, NULL, &s, &err) < 0);
	assert_null(s);
	assert_int_equal(err.code, ERR_PERM);
	assert_non_null(strstr(err.msg, "/badjournal/journal: not a valid intent journal"));
	error_clear(&err);
	fsck(dir, false, 1, 0);
	fsck(dir, true, 1, 1);
	s = open_dir(dir);
	assert_int_equal(store_exists(s, "/keep", NULL, NULL, NULL), 0);
	store_close(s);
	assert_int_equal(dir_list(dir, 0, &files), 0);
	for (char **f = files; *f; f++)
		aside |= startswith(*f, "journal.corrupt-");
	assert_true(aside);
}

/* A wal without its header: refused (permanent) until fsck --repair sets it
 * aside; a torn last record (a crash while appending) is dropped on replay. */
static void test_garbage_wal(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/badwal", tmpdir), *wal = strdup_printf("%s/badwal/wal", tmpdir);
	_cleanup_free_ char *lock = strdup_printf("%s/badwal/lock", tmpdir);
	_cleanup_strv_free_ char **files = NULL;
	struct error err = ERROR_INIT;
	struct store *s = open_dir(dir);
	bool aside = false;
	int fd;

	assert_int_equal(store_create(s, "/keep", "k", 1, 0, NULL), 0);
	store_close(s);
	/* a torn record at the end, then a "reboot": the replay keeps /keep, drops the tail */
	fd = open(wal, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "R 999 0123", 10), 10);
	close(fd);
	fd = open(lock, O_WRONLY | O_CLOEXEC);
	assert_int_equal(pwrite(fd, "another-boot", 12, 8), 12);
	close(fd);
	s = open_dir(dir);
	assert_int_equal(store_exists(s, "/keep", NULL, NULL, NULL), 0);
	assert_int_equal(store_create(s, "/after", NULL, 0, 0, NULL), 0);
	store_close(s);
	put_file(dir, "wal", "garbage, not a wal");
	s = NULL;
	assert_true(store_open(dir, NULL, &s, &err) < 0);
	assert_null(s);
	assert_int_equal(err.code, ERR_PERM);
	assert_non_null(strstr(err.msg, "/badwal/wal: not a write-ahead log"));
	error_clear(&err);
	fsck(dir, false, 1, 0);
	fsck(dir, true, 1, 1);
	s = open_dir(dir);
	assert_int_equal(store_exists(s, "/keep", NULL, NULL, NULL), 0);
	assert_int_equal(store_exists(s, "/after", NULL, NULL, NULL), 0);
	assert_int_equal(store_create(s, "/later", "l", 1, 0, NULL), 0);
	store_close(s);
	/* the new wal starts at its header: a replay after a reboot finds /later's record */
	{
		_cleanup_free_ char *later = strdup_printf("%s/badwal/tree/later", tmpdir);
		assert_int_equal(rm_rf(later), 0);
		fd = open(lock, O_WRONLY | O_CLOEXEC);
		assert_int_equal(pwrite(fd, "boot-three", 10, 8), 10);
		close(fd);
		s = open_dir(dir);
		assert_int_equal(store_exists(s, "/later", NULL, NULL, NULL), 0);
		store_close(s);
	}
	assert_int_equal(dir_list(dir, 0, &files), 0);
	for (char **f = files; *f; f++)
		aside |= startswith(*f, "wal.corrupt-");
	assert_true(aside);
}

/* A garbage next-session: recovered above every session id in use, so an
 * ephemeral of a live session never gets a second owner. */
static void test_garbage_next_session(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/badsession", tmpdir), *d = NULL;
	struct store *s1 = open_dir(dir), *s2;
	struct store_stat st;

	assert_int_equal(store_create(s1, "/e", NULL, 0, STORE_EPHEMERAL, NULL), 0);
	put_file(dir, "next-session", "x7\n");
	fsck(dir, false, 1, 0);
	s2 = open_dir(dir);
	assert_true(store_session_id(s2) > store_session_id(s1));
	assert_int_equal(store_exists(s2, "/e", &st, NULL, NULL), 0);
	assert_int_equal(st.ephemeral_owner, store_session_id(s1));
	store_close(s2);
	assert_int_equal(store_exists(s1, "/e", NULL, NULL, NULL), 0); /* s2 took nothing of s1's */
	fsck(dir, false, 0, 0);
	put_file(dir, "next-session", "");
	fsck(dir, true, 1, 1);
	store_close(s1);
}

static void seq_create(struct store *s, const char *want)
{
	_cleanup_free_ char *got = NULL;

	assert_int_equal(store_create(s, "/q/n-", NULL, 0, STORE_SEQUENTIAL, &got), 0);
	assert_string_equal(got, want);
}

/* A corrupt (or lowered) .cversion never makes a sequence number go back
 * nor grow an 11th digit: .cseq and the children recover it. */
static void test_corrupt_cversion(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/badcver", tmpdir), *cv = strdup_printf("%s/tree/q/.cversion", dir);
	_cleanup_free_ char *cseq = strdup_printf("%s/tree/q/.cseq", dir);
	struct store *s = open_dir(dir);
	struct store_stat st;
	char name[32];

	assert_int_equal(store_create(s, "/q", NULL, 0, 0, NULL), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "/q/n-%010d", i);
		seq_create(s, name);
	}
	for (int i = 2; i < 5; i++) { /* the newest finished */
		snprintf(name, sizeof(name), "/q/n-%010d", i);
		assert_int_equal(store_delete(s, name, -1), 0);
	}
	/* garbage: recovered from .cseq (5), not from the children (2) */
	assert_int_equal(unlink(cv), 0);
	assert_int_equal(symlink("garbage", cv), 0);
	assert_int_equal(store_exists(s, "/q", &st, NULL, NULL), 0);
	assert_true(st.cversion >= 5);
	fsck(dir, false, 1, 0);
	seq_create(s, "/q/n-0000000005"); /* after the highest ever handed out */
	/* lowered to 0 (a valid number): never below the high-water mark */
	assert_int_equal(unlink(cv), 0);
	assert_int_equal(symlink("0", cv), 0);
	seq_create(s, "/q/n-0000000006");
	/* 11 digits: corrupt, not an 11-digit name */
	assert_int_equal(unlink(cv), 0);
	assert_int_equal(symlink("99999999999", cv), 0);
	seq_create(s, "/q/n-0000000007");
	/* both counters gone bad: the children's largest sequence + 1 */
	assert_int_equal(unlink(cv), 0);
	assert_int_equal(symlink("-3", cv), 0);
	assert_int_equal(unlink(cseq), 0);
	assert_int_equal(write_file_atomic(cseq, "x\n", 2, 0644), 0);
	fsck(dir, false, 1, 0);
	fsck(dir, true, 1, 1);
	fsck(dir, false, 0, 0);
	seq_create(s, "/q/n-0000000008");
	/* the last number: then -EOVERFLOW, never 11 digits */
	assert_int_equal(unlink(cv), 0);
	assert_int_equal(symlink("9999999999", cv), 0);
	seq_create(s, "/q/n-9999999999");
	assert_int_equal(store_create(s, "/q/n-", NULL, 0, STORE_SEQUENTIAL, NULL), -EOVERFLOW);
	store_close(s);
}

/* An unknown format: every open (and fsck) refuses it, naming the file and
 * both versions, as a permanent error; nothing is written. */
static void test_unknown_format(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/badformat", tmpdir), *ns = strdup_printf("%s/next-session", dir);
	_cleanup_free_ char *before = NULL, *after = NULL;
	struct store_options ro = { .read_only = true };
	struct store_fsck_result res;
	struct error err = ERROR_INIT;
	struct store *s = open_dir(dir);

	store_close(s);
	put_file(dir, "format", "treadle-store 2\n");
	assert_int_equal(read_file(ns, &before, NULL), 0);
	s = NULL;
	assert_true(store_open(dir, NULL, &s, &err) < 0);
	assert_int_equal(err.code, ERR_PERM);
	assert_non_null(strstr(err.msg, "/badformat/format: unknown store format 'treadle-store 2' (expected 'treadle-store 1')"));
	error_clear(&err);
	assert_true(store_open(dir, &ro, &s, &err) < 0);
	assert_int_equal(err.code, ERR_PERM);
	error_clear(&err);
	assert_true(store_fsck(dir, true, &res, &err) < 0);
	assert_int_equal(err.code, ERR_PERM);
	error_clear(&err);
	assert_int_equal(read_file(ns, &after, NULL), 0);
	assert_string_equal(before, after);
	/* a store older than the format file gets one */
	put_file(dir, "format", "treadle-store 1\n");
	s = open_dir(dir);
	store_close(s);
}

/* read_only: no session, nothing written; reads and watches work; writes
 * fail with -EROFS. */
static void test_read_only(void **state)
{
	_cleanup_free_ char *dir = strdup_printf("%s/ro", tmpdir), *ns = strdup_printf("%s/ro/next-session", tmpdir);
	_cleanup_free_ char *sess = strdup_printf("%s/ro/sessions", tmpdir), *before = NULL, *after = NULL, *d = NULL;
	_cleanup_strv_free_ char **s_before = NULL, **s_after = NULL;
	struct store_options ro = { .read_only = true };
	struct error err = ERROR_INIT;
	struct store *w = open_dir(dir), *r = NULL;
	struct ct_rec rec = { 0 };

	assert_int_equal(store_create(w, "/x", "1", 1, 0, NULL), 0);
	assert_int_equal(read_file(ns, &before, NULL), 0);
	assert_int_equal(dir_list(sess, 0, &s_before), 0);
	if (store_open(dir, &ro, &r, &err) < 0)
		fail_msg("read-only open: %s", err.msg);
	assert_int_equal(store_get(r, "/x", &d, NULL, NULL, NULL, NULL), 0);
	assert_string_equal(d, "1");
	assert_int_equal(store_create(r, "/y", NULL, 0, 0, NULL), -EROFS);
	assert_int_equal(store_set(r, "/x", "2", 1, -1, NULL), -EROFS);
	assert_int_equal(store_exists(r, "/x", NULL, ct_record, &rec), 0);
	assert_int_equal(store_set(w, "/x", "2", 1, -1, NULL), 0);
	ct_wait_events(r, &rec, 1, 2000);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ev[0], STORE_EVENT_CHANGED);
	assert_int_equal(read_file(ns, &after, NULL), 0);
	assert_string_equal(before, after);
	assert_int_equal(dir_list(sess, 0, &s_after), 0);
	assert_int_equal(strv_length(s_before), strv_length(s_after));
	store_close(r);
	store_close(w);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		STORE_CONTRACT_TESTS,
		cmocka_unit_test(test_concurrent_sequential),
		cmocka_unit_test(test_multi_crash_recovery),
		cmocka_unit_test(test_sweep_on_open),
		cmocka_unit_test(test_persistence_layout),
		cmocka_unit_test(test_crash_fuzz),
		cmocka_unit_test(test_group_commit_crash),
		cmocka_unit_test(test_replay_after_reboot),
		cmocka_unit_test(test_group_commit_threads),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_bad_url),
		cmocka_unit_test(test_corrupt_node),
		cmocka_unit_test(test_garbage_journal),
		cmocka_unit_test(test_garbage_wal),
		cmocka_unit_test(test_garbage_next_session),
		cmocka_unit_test(test_corrupt_cversion),
		cmocka_unit_test(test_unknown_format),
		cmocka_unit_test(test_read_only),
	};

	if (argc > 1 && !strcmp(argv[1], CT_CHILD_ARG))
		return store_contract_child_main(argc, argv);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
