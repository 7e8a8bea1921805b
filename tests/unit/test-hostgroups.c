/* test-hostgroups.c: the DN patterns of the LDAP host groups daemon (which
 * DNs are its own, how values are escaped) and its option checks; the
 * daemon itself is tested against a real slapd (tests/integration/96). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* dn_escape, dn_fill, dn_match are file-local: the production file is compiled in. */
#include "../../src/hostgroups/hostgroups.c"

#define G "cn={proid},ou=groups,dc=example,dc=org"
#define S "cn={host},ou=servers,dc=example,dc=org"

static void test_escape(void **state _unused_)
{
	_cleanup_free_ char *a = dn_escape("plain-proid_1"), *b = dn_escape("a,b+c=d\"e\\f;g<h>"),
			   *c = dn_escape("#lead"), *d = dn_escape(" sp "), *f = dn_fill(S, "{host}", "h,1");

	assert_string_equal(a, "plain-proid_1");
	assert_string_equal(b, "a\\,b\\+c\\=d\\\"e\\\\f\\;g\\<h\\>");
	assert_string_equal(c, "\\#lead");
	assert_string_equal(d, "\\ sp\\ ");
	assert_string_equal(f, "cn=h\\,1,ou=servers,dc=example,dc=org");
}

static void test_match(void **state _unused_)
{
	static const struct {
		const char *pattern, *token, *dn, *want;
	} cases[] = {
		{ G, "{proid}", "cn=proid1,ou=groups,dc=example,dc=org", "proid1" },
		{ G, "{proid}", "CN=Proid1, OU=Groups, DC=Example, DC=Org", "Proid1" }, /* case and spacing */
		{ G, "{proid}", "cn=proid1,ou=people,dc=example,dc=org", NULL },	/* another parent */
		{ G, "{proid}", "cn=proid1,ou=sub,ou=groups,dc=example,dc=org", NULL },
		{ G, "{proid}", "uid=proid1,ou=groups,dc=example,dc=org", NULL },	/* another attribute */
		{ S, "{host}", "cn=h\\,1,ou=servers,dc=example,dc=org", "h,1" },	/* escaped value */
		{ S, "{host}", "cn=placeholder,dc=example,dc=org", NULL },
		{ S, "{host}", "not a dn", NULL },
		{ "cn=tm-{proid}-g,ou=groups,dc=x", "{proid}", "cn=tm-web-g,ou=groups,dc=x", "web" },
		{ "cn=tm-{proid}-g,ou=groups,dc=x", "{proid}", "cn=web-g,ou=groups,dc=x", NULL },
		{ "cn=tm-{proid}-g,ou=groups,dc=x", "{proid}", "cn=tm--g,ou=groups,dc=x", NULL }, /* empty */
	};

	assert_int_equal(ldap_load(NULL), 0); /* hostgroups_check() loads libldap before the daemon matches DNs */
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *got = dn_match(cases[i].pattern, cases[i].token, cases[i].dn);

		if (cases[i].want) {
			assert_non_null(got);
			assert_string_equal(got, cases[i].want);
		} else
			assert_null(got);
	}
}

static void test_check(void **state _unused_)
{
	struct hostgroups_options o = { .ldap_url = "ldap://127.0.0.1:389", .group_dn = G, .server_dn = S };
	struct error err = ERROR_INIT;

	assert_int_equal(hostgroups_check(&o, &err), 0);
	o.ldap_url = "http://x";
	assert_true(hostgroups_check(&o, &err) < 0);
	assert_int_equal(err.code, ERR_USAGE);
	assert_non_null(strstr(err.msg, "--ldap-url"));
	error_clear(&err);
	o.ldap_url = "ldapi:///";
	o.group_dn = "ou=groups,cn={proid},dc=x"; /* not in the first RDN */
	assert_true(hostgroups_check(&o, &err) < 0);
	assert_non_null(strstr(err.msg, "--ldap-group-dn"));
	error_clear(&err);
	o.group_dn = "cn={proid}"; /* no parent to search */
	assert_true(hostgroups_check(&o, &err) < 0);
	error_clear(&err);
	o.group_dn = G;
	o.server_dn = "cn={proid},ou=servers,dc=x"; /* wrong token */
	assert_true(hostgroups_check(&o, &err) < 0);
	assert_non_null(strstr(err.msg, "--ldap-server-dn"));
	error_clear(&err);
	o.server_dn = S;
	o.password_file = "/dev/null"; /* without a bind DN */
	assert_true(hostgroups_check(&o, &err) < 0);
	error_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
