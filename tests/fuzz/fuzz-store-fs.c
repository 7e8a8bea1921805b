/* fuzz-store-fs: the embedded store's on-disk files as read back (a `.node`
 * header + data, `.cversion`, the intent journal, `next-session`, `format`, a
 * session's `.eph` index), from untrusted bytes, through the public store API.
 *
 * The input is up to 7 parts separated by a line "%%"; part i, unless empty,
 * becomes file i of a fresh store directory (an empty part = no such file):
 *   0 tree/a/.node     1 tree/a/.cversion ("L:<target>" = a symlink)
 *   2 tree/a/b/.node   3 journal   4 next-session   5 format
 *   6 sessions/7.eph   (an index whose session is gone: reaped at open)
 * Then the store is opened and read and written; whatever it answers, it must
 * not crash, and data it acknowledged writing reads back as written. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/store/store.h"
#include "scratch.h"

#define N_PARTS 7
static const char *const part_file[N_PARTS] = {
	"tree/a/.node", "tree/a/.cversion", "tree/a/b/.node", "journal", "next-session", "format", "sessions/7.eph",
};

static char *base;

static void cleanup(void)
{
	if (base)
		rm_rf(base);
}

static int put(const char *dir, const char *rel, const uint8_t *data, size_t len)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, rel);
	FILE *f;

	if (!p)
		return -1;
	if (len >= 2 && !memcmp(data, "L:", 2)) {
		_cleanup_free_ char *t = strndup((const char *)data + 2, len - 2);
		return t && symlink(t, p) == 0 ? 0 : -1;
	}
	f = fopen(p, "we");
	if (!f)
		return -1;
	if (len && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

static void exercise(struct store *s)
{
	static const char *const paths[] = { "/", "/a", "/a/b" };
	char *data = NULL, *created = NULL, **names = NULL;
	struct store_stat st;
	size_t len = 0;
	struct store_op ops[2] = {
		{ .type = STORE_OP_CREATE, .path = "/a/m", .data = "m", .len = 1 },
		{ .type = STORE_OP_SET, .path = "/a/b", .data = "multi", .len = 5, .version = -1 },
	};

	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		if (store_get(s, paths[i], &data, &len, &st, NULL, NULL) == 0) {
			if (len > STORE_MAX_DATA || st.data_length < 0 || (size_t)st.data_length != len ||
			    st.num_children < 0)
				__builtin_trap();
			free(data);
			data = NULL;
		}
		store_exists(s, paths[i], &st, NULL, NULL);
		if (store_children(s, paths[i], &names, NULL, NULL) == 0) {
			strv_free(names);
			names = NULL;
		}
	}
	if (store_create(s, "/a/seq-", "x", 1, STORE_SEQUENTIAL, &created) == 0) {
		/* a sequential name is the prefix and 10 digits */
		if (strlen(created) != strlen("/a/seq-") + 10 || strspn(created + 7, "0123456789") != 10)
			__builtin_trap();
		free(created);
	}
	if (store_set(s, "/a/b", "hello", 5, -1, NULL) == 0) {
		if (store_get(s, "/a/b", &data, &len, NULL, NULL, NULL) != 0 || len != 5 || memcmp(data, "hello", 5))
			__builtin_trap(); /* acknowledged, then lost */
		free(data);
		data = NULL;
	}
	if (store_multi(s, ops, ELEMENTSOF(ops), NULL) == 0) {
		if (store_get(s, "/a/b", &data, &len, NULL, NULL, NULL) != 0 || len != 5 || memcmp(data, "multi", 5))
			__builtin_trap();
		free(data);
	}
	store_delete_r(s, "/a");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *dir = NULL, *url = NULL;
	struct store *s = NULL;
	struct error err = { 0 };
	static unsigned seq;
	size_t off = 0;

	if (!base) {
		base = fuzz_scratch_dir("fuzz-store-fs");
		atexit(cleanup);
	}
	dir = strdup_printf("%s/%u", base, seq++);
	url = dir ? strdup_printf("file://%s", dir) : NULL;
	if (!url)
		return 0;
	if (mkdir(dir, 0700) < 0)
		abort();
	{
		_cleanup_free_ char *b = strdup_printf("%s/tree/a/b", dir), *ss = strdup_printf("%s/sessions", dir);
		if (!b || !ss || mkdir_p(b, 0755) < 0 || mkdir(ss, 0755) < 0)
			abort();
	}
	for (int i = 0; i < N_PARTS && off <= size; i++) {
		const uint8_t *p = data + off, *end = NULL;
		size_t len = size - off;

		for (size_t k = 0; k + 4 <= len; k++)
			if (!memcmp(p + k, "\n%%\n", 4)) {
				end = p + k;
				break;
			}
		if (end)
			len = (size_t)(end - p);
		if (len)
			put(dir, part_file[i], p, len);
		off += len + 4;
	}
	if (store_open(url, NULL, &s, &err) == 0) {
		exercise(s);
		store_close(s);
	}
	error_clear(&err);
	rm_rf(dir);
	return 0;
}
