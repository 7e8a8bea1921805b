/* fuzz-node-spool: what the node agent parses from files others name: tombstone
 * names (written from inside containers), exit-history lines (data/exits/log,
 * through the restart policy) and unique names. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/node/layout.h"
#include "../../src/supervisor/supervisor.h"
/* sv_tombstone_name is file-local: the production file is compiled in. */
#include "../../src/supervisor/supervisor.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *id = NULL, *log = NULL, *inst;
	struct sv_exit e, now = { 1000.0, 1, 0 };
	int v;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (sv_tombstone_parse(s, &id, &e) == 0) {
		char *again = sv_tombstone_name(id, &e), *id2 = NULL;
		struct sv_exit e2;
		/* a formatted tombstone parses back to the same id */
		if (again && (sv_tombstone_parse(again, &id2, &e2) != 0 || strcmp(id, id2)))
			abort();
		free(again);
		free(id2);
		free(id);
	}
	(void)sv_exit_parse(s, &e);
	for (unsigned limit = 0; limit < 4; limit++) {
		v = sv_policy_decide(s, &now, limit, 60, &log);
		if (v != SV_RESTART && v != SV_FATAL)
			abort();
		if (limit && !log)
			abort();
		free(log);
		log = NULL;
	}
	inst = node_unique_instance(s);
	if (inst) {
		const char *uid = node_unique_id(s);
		char *u = uid ? node_unique_name(inst, uid) : NULL;
		/* unique -> instance -> unique round-trips */
		if (!u || strcmp(u, s))
			abort();
		free(u);
		free(inst);
	}
	free(s);
	return 0;
}
