/* test-store-mirror.c: mirror of store subtrees into a directory (zk2fs), on
 * the embedded store: --once layout, then live updates driven by watches. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/store/store-mirror.h"
#include "../../src/store/store.h"

static char tmpdir[] = "/tmp/treadle-mirror-ut-XXXXXX";

static char *P(const char *rel)
{
	char *p = strdup_printf("%s/%s", tmpdir, rel);
	assert_non_null(p);
	return p;
}

static char *slurp(const char *rel)
{
	_cleanup_free_ char *p = P(rel);
	char *d = NULL;

	if (read_file(p, &d, NULL) < 0)
		return NULL;
	return d;
}

static bool exists(const char *rel)
{
	_cleanup_free_ char *p = P(rel);
	return access(p, F_OK) == 0;
}

static bool isdir(const char *rel)
{
	_cleanup_free_ char *p = P(rel);
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static struct store *open_store(void)
{
	_cleanup_free_ char *url = strdup_printf("file://%s/store", tmpdir);
	struct error err = ERROR_INIT;
	struct store *s = NULL;

	if (store_open(url, NULL, &s, &err) < 0)
		fail_msg("%s", err.msg);
	return s;
}

static void populate(struct store *s)
{
	assert_int_equal(store_create_p(s, "/running"), 0);
	assert_int_equal(store_create(s, "/running/a", "h1", 2, 0, NULL), 0);
	assert_int_equal(store_create(s, "/running/b#0000000001", "h2", 2, 0, NULL), 0);
	assert_int_equal(store_create_p(s, "/servers/s1"), 0);
	assert_int_equal(store_set(s, "/servers/s1", "meta", 4, -1, NULL), 0);
	assert_int_equal(store_create(s, "/servers/s1/x", "X", 1, 0, NULL), 0);
	assert_int_equal(store_create(s, "/other", "not mirrored", 12, 0, NULL), 0);
}

static void test_once(void **state)
{
	_cleanup_free_ char *dir = P("once"), *a = NULL, *meta = NULL, *x = NULL, *ap = P("once/running/a");
	struct store *s = open_store();
	struct store_mirror *m = NULL;
	struct error err = ERROR_INIT;
	char *paths[] = { (char *)"/running", (char *)"/servers", NULL };
	struct store_stat st;
	struct stat fst;

	populate(s);
	assert_int_equal(store_mirror_new(s, dir, paths, false, &m, &err), 0);
	assert_int_equal(store_mirror_sync(m, &err), 0);
	a = slurp("once/running/a");
	assert_string_equal(a, "h1");
	assert_true(exists("once/running/b#0000000001"));
	assert_true(isdir("once/servers/s1"));
	meta = slurp("once/servers/s1/.data");
	assert_string_equal(meta, "meta");
	x = slurp("once/servers/s1/x");
	assert_string_equal(x, "X");
	assert_false(exists("once/other"));
	assert_true(exists("once/.modified"));
	assert_true(exists("once/running/.done"));
	assert_true(exists("once/servers/s1/.done"));
	/* mtime of a file is the node's mtime */
	assert_int_equal(store_exists(s, "/running/a", &st, NULL, NULL), 0);
	assert_int_equal(stat(ap, &fst), 0);
	assert_int_equal((int64_t)fst.st_mtim.tv_sec * 1000 + fst.st_mtim.tv_nsec / 1000000, st.mtime_ms);
	store_close(s);
	store_mirror_free(m);
	/* a second run removes what is gone */
	s = open_store();
	assert_int_equal(store_delete(s, "/running/a", -1), 0);
	assert_int_equal(store_mirror_new(s, dir, paths, false, &m, &err), 0);
	assert_int_equal(store_mirror_sync(m, &err), 0);
	assert_false(exists("once/running/a"));
	assert_true(exists("once/running/b#0000000001"));
	store_close(s);
	store_mirror_free(m);
}

/* Dispatch until cond() holds or 5 s pass. */
static bool wait_for(struct store *s, bool (*cond)(void))
{
	uint64_t end = now_monotonic_ms() + 5000;

	while (!cond() && now_monotonic_ms() < end)
		assert_true(store_wait(s, 50) >= 0);
	return cond();
}

static bool a_is_h3(void)
{
	_cleanup_free_ char *d = slurp("live/running/a");
	return d && !strcmp(d, "h3");
}
static bool c_appeared(void) { return exists("live/running/c"); }
static bool b_gone(void) { return !exists("live/running/b#0000000001"); }
static bool a_is_dir(void) { return isdir("live/running/a") && exists("live/running/a/child"); }
static bool a_is_file(void) { return exists("live/running/a") && !isdir("live/running/a"); }
static bool s1_gone(void) { return !exists("live/servers/s1"); }
static bool newsrv(void) { return exists("live/servers/s2/y"); }

static void test_live(void **state)
{
	_cleanup_free_ char *dir = P("live"), *mod = P("live/.modified"), *d = NULL;
	struct store *s = open_store();
	struct store_mirror *m = NULL;
	struct error err = ERROR_INIT;
	char *paths[] = { (char *)"/running", (char *)"/servers", NULL };

	assert_int_equal(store_delete_r(s, "/running"), 0);
	assert_int_equal(store_delete_r(s, "/servers"), 0);
	assert_int_equal(store_delete_r(s, "/other"), 0);
	populate(s);
	assert_int_equal(store_mirror_new(s, dir, paths, true, &m, &err), 0);
	assert_int_equal(store_mirror_sync(m, &err), 0);
	assert_false(exists("live/running/.done")); /* watched: never done */
	assert_int_equal(store_set(s, "/running/a", "h3", 2, -1, NULL), 0);
	assert_true(wait_for(s, a_is_h3));
	assert_int_equal(store_create(s, "/running/c", "C", 1, 0, NULL), 0);
	assert_true(wait_for(s, c_appeared));
	assert_int_equal(store_delete(s, "/running/b#0000000001", -1), 0);
	assert_true(wait_for(s, b_gone));
	/* a leaf that gets a child becomes a directory with .data, and back */
	assert_int_equal(store_create(s, "/running/a/child", "k", 1, 0, NULL), 0);
	assert_true(wait_for(s, a_is_dir));
	d = slurp("live/running/a/.data");
	assert_string_equal(d, "h3");
	assert_int_equal(store_delete(s, "/running/a/child", -1), 0);
	assert_true(wait_for(s, a_is_file));
	/* subtrees come and go */
	assert_int_equal(store_delete_r(s, "/servers/s1"), 0);
	assert_true(wait_for(s, s1_gone));
	assert_int_equal(store_create_p(s, "/servers/s2/y"), 0);
	assert_true(wait_for(s, newsrv));
	assert_true(exists("live/.modified"));
	assert_int_equal(store_mirror_error(m), 0);
	store_close(s);
	store_mirror_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_live),
	};
	int r;

	if (!mkdtemp(tmpdir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	rm_rf(tmpdir);
	return r;
}
