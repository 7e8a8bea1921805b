/* test-krb: the lockers' framing, base64 and the rules of who may have what
 * (the file-local functions are compiled in).  The protocol itself runs
 * against a real KDC in tests/integration/95-krb-tickets-keytabs.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "../../src/krb/krb.c"
#include "../../src/krb/krb-locker.c"

static void test_b64(void **state)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
		_cleanup_free_ char *e = krb_b64_encode(plain[i], strlen(plain[i]));
		_cleanup_free_ void *d = NULL;
		size_t len;

		assert_string_equal(e, enc[i]);
		assert_int_equal(krb_b64_decode(e, &d, &len), 0);
		assert_int_equal(len, strlen(plain[i]));
		assert_memory_equal(d, plain[i], len);
	}
	{
		void *d = NULL;
		size_t len;

		assert_int_equal(krb_b64_decode("Zm9", &d, &len), -EINVAL);
		assert_int_equal(krb_b64_decode("Zm=v", &d, &len), -EINVAL);
		assert_int_equal(krb_b64_decode("Zm9*", &d, &len), -EINVAL);
	}
}

static void test_frames(void **state)
{
	int sv[2];
	void *buf = NULL;
	size_t len;
	uint32_t big = htonl(KRB_FRAME_MAX + 1);

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(krb_frame_send(sv[0], "hello", 5), 0);
	assert_int_equal(krb_frame_recv(sv[1], &buf, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	free(buf);
	/* an oversized length is refused before anything is allocated */
	assert_int_equal(write(sv[0], &big, sizeof(big)), (ssize_t)sizeof(big));
	assert_int_equal(krb_frame_recv(sv[1], &buf, &len), -EMSGSIZE);
	/* a peer gone mid-frame */
	assert_int_equal(write(sv[0], "\0\0\0\x09" "abc", 7), 7);
	close(sv[0]);
	assert_int_equal(krb_frame_recv(sv[1], &buf, &len), -ECONNRESET);
	close(sv[1]);
}

static void test_client_host(void **state)
{
	struct krb_locker_options o = { 0 };
	struct locker l = { .o = &o, .realm = (char *)"EX.TEST" };
	_cleanup_free_ char *h = client_host(&l, "host/n1.ex@EX.TEST");

	(void)state;
	assert_string_equal(h, "n1.ex");
	assert_null(client_host(&l, "alice@EX.TEST"));	       /* a user */
	assert_null(client_host(&l, "host/n1@OTHER.TEST"));    /* another realm */
	assert_null(client_host(&l, "host/@EX.TEST"));	       /* no host */
	assert_null(client_host(&l, "host/a/b@EX.TEST"));      /* three components */
	assert_null(client_host(&l, "hostx/n1@EX.TEST"));
}

static void test_spec_principal(void **state)
{
	_cleanup_free_ char *a = spec_principal("nobody#svc@EX.TEST", "nobody"),
			    *b = spec_principal("nobody:nobody/web@EX.TEST", "nobody"),
			    *c = spec_principal("nobody:nobody@EX.TEST", "nobody");

	(void)state;
	assert_string_equal(a, "nobody/svc@EX.TEST");
	assert_string_equal(b, "nobody/web@EX.TEST");
	assert_string_equal(c, "nobody@EX.TEST");
	assert_null(spec_principal("other#svc@EX.TEST", "nobody"));	 /* another proid's */
	assert_null(spec_principal("nobodyx#svc@EX.TEST", "nobody"));
	assert_null(spec_principal("nobody:host/x@EX.TEST", "nobody")); /* owner ok, principal not its */
	assert_null(spec_principal("nobody:nobodyx/x@EX.TEST", "nobody"));
	assert_null(spec_principal("other:nobody/x@EX.TEST", "nobody"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_client_host),
		cmocka_unit_test(test_spec_principal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
