/* container module units: sha256, the tar image cache (file:// URLs),
 * member path checks, envdir loading, the seccomp filter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <archive.h>
#include <archive_entry.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/container/container-internal.h"
/* container_seccomp_apply is file-local (exec-as calls it after dropping
 * privileges): the production file is compiled in. */
#include "../../src/container/security.c"

static char dir[] = "/tmp/treadle-ctu.XXXXXX";

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	rm_rf(dir);
	return 0;
}

static void hex_of(const char *s, size_t n, char out[65])
{
	struct sha256 h;
	uint8_t d[32];

	sha256_init(&h);
	sha256_update(&h, s, n);
	sha256_final(&h, d);
	sha256_hex(d, out);
}

static void test_sha256(void **state)
{
	char out[65];
	char big[1000];

	hex_of("", 0, out);
	assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hex_of("abc", 3, out);
	assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
	assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	memset(big, 'a', sizeof(big));
	hex_of(big, sizeof(big), out);
	assert_string_equal(out, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

/* Write a tar with the given (name, content) members. */
static void make_tar(const char *path, const char *const *members)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (; members[0]; members += 2) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, members[0]);
		archive_entry_set_size(e, (la_int64_t)strlen(members[1]));
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_write_header(a, e);
		archive_write_data(a, members[1], strlen(members[1]));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static char *file_sha(const char *path)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	char *out = malloc(65);
	struct sha256 h;
	uint8_t d[32];

	assert_int_equal(read_file(path, &text, &len), 0);
	sha256_init(&h);
	sha256_update(&h, text, len);
	sha256_final(&h, d);
	sha256_hex(d, out);
	return out;
}

static void test_image_cache(void **state)
{
	static const char *const members[] = { "opt/app/hello.txt", "hello\n", NULL };
	_cleanup_free_ char *tar = strdup_printf("%s/app.tar", dir), *node = strdup_printf("%s/node", dir);
	_cleanup_free_ char *sum = NULL, *url = NULL, *rootfs = NULL, *rootfs2 = NULL, *hello = NULL, *text = NULL;
	struct error err = ERROR_INIT;

	make_tar(tar, members);
	sum = file_sha(tar);
	url = strdup_printf("file://%s?sha256=%s", tar, sum);
	assert_int_equal(image_get(node, url, 10000, &rootfs, &err), 0);
	hello = strdup_printf("%s/opt/app/hello.txt", rootfs);
	assert_int_equal(read_file(hello, &text, NULL), 0);
	assert_string_equal(text, "hello\n");
	assert_non_null(strstr(rootfs, sum));
	/* reused: the source is gone, the cache answers */
	assert_int_equal(unlink(tar), 0);
	assert_int_equal(image_get(node, url, 10000, &rootfs2, &err), 0);
	assert_string_equal(rootfs, rootfs2);
}

static void test_image_errors(void **state)
{
	static const char *const members[] = { "a", "x", NULL };
	static const char *const evil[] = { "ok", "x", "../../escape", "boom", NULL };
	_cleanup_free_ char *tar = strdup_printf("%s/b.tar", dir), *node = strdup_printf("%s/node2", dir);
	_cleanup_free_ char *url = NULL, *rootfs = NULL, *esc = strdup_printf("%s/escape", dir);
	struct error err = ERROR_INIT;
	char zero[65];

	make_tar(tar, members);
	memset(zero, '0', 64);
	zero[64] = 0;
	url = strdup_printf("file://%s?sha256=%s", tar, zero);
	assert_true(image_get(node, url, 10000, &rootfs, &err) < 0);
	assert_non_null(strstr(err.msg, "sha256 mismatch"));
	error_clear(&err);
	free(url);
	url = strdup_printf("file://%s?sha256=abc", tar);
	assert_true(image_get(node, url, 10000, &rootfs, &err) < 0);
	error_clear(&err);
	assert_true(image_get(node, "ftp://x/y.tar", 10000, &rootfs, &err) < 0);
	error_clear(&err);
	free(url);
	make_tar(tar, evil);
	url = strdup_printf("file://%s", tar);
	assert_true(image_get(node, url, 10000, &rootfs, &err) < 0);
	assert_non_null(strstr(err.msg, "escapes"));
	error_clear(&err);
	assert_int_equal(access(esc, F_OK), -1);
	/* nothing half-unpacked is left in the cache */
	{
		_cleanup_free_ char *cache = strdup_printf("%s/images/tar", node);
		_cleanup_strv_free_ char **l = NULL;
		assert_int_equal(dir_list(cache, 0, &l), 0);
		assert_int_equal(strv_length(l), 0);
	}
}

static void test_envdir(void **state)
{
	_cleanup_free_ char *env = strdup_printf("%s/env", dir), *a = NULL, *b = NULL;
	struct error err = ERROR_INIT;

	mkdir_p(env, 0755);
	a = strdup_printf("%s/TREADMILL_APP", env);
	b = strdup_printf("%s/GONE", env);
	write_file_atomic(a, "proid.app\nignored", 17, 0644);
	write_file_atomic(b, "", 0, 0644);
	setenv("GONE", "x", 1);
	assert_int_equal(container_load_envdir(env, &err), 0);
	assert_string_equal(getenv("TREADMILL_APP"), "proid.app");
	assert_null(getenv("GONE"));
}

static void test_seccomp(void **state)
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid == 0) {
		struct error err = ERROR_INIT;
		if (container_seccomp_apply(&err) < 0)
			_exit(10);
		if (mount("none", "/", NULL, MS_REMOUNT, NULL) == 0 || errno != EPERM)
			_exit(11);
		if (syscall(SYS_kexec_load, 0, 0, NULL, 0) == 0 || errno != EPERM)
			_exit(12);
		if (unshare(CLONE_NEWNS) == 0 || errno != EPERM)
			_exit(13);
		if (syscall(SYS_clone3, NULL, 0) == 0 || errno != ENOSYS)
			_exit(14);
		if (getpid() <= 0) /* ordinary calls still work */
			_exit(15);
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		if (c < 0 || waitpid(c, NULL, 0) != c)
			_exit(16);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* container_cleanup releases the container's volume image and nothing else
 * (another container's image and the templates stay). */
static void test_cleanup_volume(void **state)
{
	_cleanup_free_ char *node = strdup_printf("%s/node3", dir), *vols = strdup_printf("%s/node3/volumes", dir);
	_cleanup_free_ char *a = strdup_printf("%s/keep.img", vols), *b = strdup_printf("%s/stale.img", vols);
	_cleanup_free_ char *t = strdup_printf("%s/.templates", vols);
	struct error err = ERROR_INIT;

	if (geteuid() != 0)
		skip();
	assert_int_equal(mkdir_p(t, 0700), 0);
	assert_int_equal(touch(a), 0);
	assert_int_equal(touch(b), 0);
	assert_int_equal(container_cleanup(node, "treadle-ut-sync", "stale", &err), 0);
	assert_int_equal(access(a, F_OK), 0);
	assert_int_equal(access(b, F_OK), -1);
	assert_int_equal(access(t, F_OK), 0);
	assert_int_equal(container_cleanup(node, "treadle-ut-sync", "stale", &err), 0); /* idempotent */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_image_cache),
		cmocka_unit_test(test_image_errors),
		cmocka_unit_test(test_envdir),
		cmocka_unit_test(test_seccomp),
		cmocka_unit_test(test_cleanup_volume),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
