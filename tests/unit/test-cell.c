/* test-cell.c: the cell's pure parts (roles). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/cell/cell.h"

static void test_roles_parse(void **state)
{
	unsigned r = 0;

	assert_int_equal(cell_roles_parse("master,node", &r), 0);
	assert_int_equal(r, CELL_ROLES_ALL);
	assert_int_equal(cell_roles_parse("node,master", &r), 0);
	assert_int_equal(r, CELL_ROLES_ALL);
	assert_int_equal(cell_roles_parse("node", &r), 0);
	assert_int_equal(r, CELL_ROLE_NODE);
	assert_int_equal(cell_roles_parse("master", &r), 0);
	assert_int_equal(r, CELL_ROLE_MASTER);
	r = 77;
	assert_int_equal(cell_roles_parse("", &r), -EINVAL);
	assert_int_equal(cell_roles_parse(",", &r), -EINVAL);
	assert_int_equal(cell_roles_parse("node,node", &r), -EINVAL);
	assert_int_equal(cell_roles_parse("nodes", &r), -EINVAL);
	assert_int_equal(cell_roles_parse("master,cook", &r), -EINVAL);
	assert_int_equal(r, 77); /* untouched on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
