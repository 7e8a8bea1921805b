/* bench-zk-load.c: create N scheduled apps fast (ZooKeeper multi batches of
 * 200 sequential creates), as `treadle run` would write them.
 * usage: bench-zk-load URL N   (built and run by bench/zk-cell.sh) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/basic/util.h"
#include "../src/store/store.h"

int main(int argc, char **argv)
{
	static const char manifest[] = "{\"proid\":\"nobody\",\"environment\":\"dev\",\"memory\":\"100M\",\"cpu\":\"1%\","
				       "\"disk\":\"100M\",\"services\":[{\"name\":\"s\",\"command\":\"sleep 1\","
				       "\"restart\":{\"limit\":0,\"interval\":60}}]}";
	struct error err = ERROR_INIT;
	struct store_op ops[200];
	struct store *s;
	long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	int r;

	if (argc < 2 || store_open(argv[1], NULL, &s, &err) < 0) {
		fprintf(stderr, "bench-zk-load: %s\n", err.msg ? err.msg : "usage: bench-zk-load URL N");
		return 1;
	}
	store_create_p(s, "/scheduled");
	for (size_t i = 0; i < 200; i++)
		ops[i] = (struct store_op){ .type = STORE_OP_CREATE, .path = "/scheduled/nobody.bulk#", .data = manifest,
					    .len = strlen(manifest), .flags = STORE_SEQUENTIAL };
	for (long done = 0; done < n;) {
		size_t k = (size_t)(n - done < 200 ? n - done : 200);

		r = store_multi(s, ops, k, NULL);
		if (r < 0) {
			fprintf(stderr, "bench-zk-load: multi: %s\n", store_strerror(r));
			store_close(s);
			return 1;
		}
		done += (long)k;
	}
	store_close(s);
	return 0;
}
