/* fuzz-trace: event names (spool file and store node forms) and history
 * snapshots (zlib + SQLite) from untrusted bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/trace/trace-internal.h"
#include "../../src/trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct trace_event ev;
	sqlite3 *db = NULL;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (trace_parse_file(s, s, &ev) == 0) {
		char *n;

		ev.source = strdup("h");
		n = trace_node_name(&ev, NULL);
		/* a parsed spool event must be publishable unless its data has a
		 * '/' or its id alone is too long for a name */
		if (!n && ev.source && (!ev.data || !strchr(ev.data, '/')) &&
		    strlen(ev.instanceid) + 40 < TRACE_NAME_MAX)
			__builtin_trap();
		if (n) {
			struct trace_event back;
			if (trace_parse_node(n, NULL, &back) != 0 || back.type != ev.type ||
			    strcmp(back.instanceid, ev.instanceid) != 0 || strncmp(back.data, ev.data, strlen(back.data)) != 0 ||
			    strlen(n) > TRACE_NAME_MAX)
				__builtin_trap();
			trace_event_clear(&back);
		}
		free(n);
		trace_event_clear(&ev);
	}
	if (trace_parse_node(s, NULL, &ev) == 0)
		trace_event_clear(&ev);
	if (trace_snapshot_open(data, size, &db) == 0) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(db, "SELECT name, data FROM trace WHERE name GLOB 'a*'", -1, &st, NULL) == SQLITE_OK)
			while (sqlite3_step(st) == SQLITE_ROW)
				;
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	free(s);
	return 0;
}
