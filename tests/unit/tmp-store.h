/* tmp-store.h: a unit test's embedded store in a fresh temporary directory,
 * opened as a cmocka setup and removed as its teardown.  A test file includes
 * it, names the directory's prefix (TMP_STORE_TAG) and uses `tmp_store`. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/store/store.h"

#ifndef TMP_STORE_TAG
#define TMP_STORE_TAG "ut"
#endif

static char tmp_store_dir[64];
static struct store *tmp_store;

static int tmp_store_setup(void **state)
{
	struct error err = ERROR_INIT;
	_cleanup_free_ char *url = NULL;

	snprintf(tmp_store_dir, sizeof(tmp_store_dir), "/tmp/treadle-%s-ut-XXXXXX", TMP_STORE_TAG);
	if (!mkdtemp(tmp_store_dir))
		return -1;
	url = strdup_printf("file://%s/store", tmp_store_dir);
	if (!url || store_open(url, NULL, &tmp_store, &err) < 0) {
		error_clear(&err);
		return -1;
	}
	return 0;
}

static int tmp_store_teardown(void **state)
{
	store_close(tmp_store);
	tmp_store = NULL;
	rm_rf(tmp_store_dir);
	return 0;
}

/* A test run on a fresh temporary store. */
#define TMP_STORE_TEST(f) cmocka_unit_test_setup_teardown(f, tmp_store_setup, tmp_store_teardown)
