/* fuzz-store-journal: the embedded store's intent journal parser (replayed on
 * open after a crash) and the store path rules, from untrusted bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/store/store-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	store_fs_journal_check(data, size);
	if (store_path_valid(s) && strcmp(s, "/")) {
		char *p = store_path_parent(s);
		if (p && !store_path_valid(p))
			abort(); /* the parent of a valid path is valid */
		free(p);
	}
	free(s);
	return 0;
}
