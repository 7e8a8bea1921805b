/* fuzz-sched-sim: the scheduler workload parser (sched_sim_load) and a pass
 * over whatever it accepts.  Input: servers.tsv, allocations.tsv and
 * apps.tsv contents separated by lines "%%". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/sched/sched-sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *names[3] = { "servers.tsv", "allocations.tsv", "apps.tsv" };
	struct sched_cell *c = NULL;
	struct error err = ERROR_INIT;
	char *buf, *part[3] = { NULL, NULL, NULL };
	int n = 0;

	if (size > 1 << 20)
		return 0;
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	part[n++] = buf;
	for (char *p = buf; n < 3 && (p = strstr(p, "\n%%\n"));) {
		*p = 0;
		p += 4;
		part[n++] = p;
	}
	if (sched_sim_load(part[0], part[1], part[2], names, size % 2 ? SCHED_MODE_IMPROVED : SCHED_MODE_COMPAT, &c,
			   &err) == 0) {
		char *out = NULL;

		sched_schedule(c, SCHED_SIM_NOW, NULL, NULL, NULL);
		if (sched_sim_placement(c, &out, NULL) == 0)
			free(out);
		sched_cell_free(c);
	}
	error_clear(&err);
	free(buf);
	return 0;
}
