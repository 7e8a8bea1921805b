/* Corpus replayer: runs every file of the directory given as argv[1] through
 * LLVMFuzzerTestOneInput, so `make test` replays each fuzzer's seed corpus
 * without libFuzzer.  Prints one TAP line per file.  Calls the fuzzer's
 * LLVMFuzzerInitialize first if it has one, as libFuzzer does; files are read
 * through a directory fd, so a fuzzer may chroot() there (fuzz-image). */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* Tells a fuzzer it runs its fixed corpus here, not libFuzzer's inputs. */
extern const int fuzz_replaying;
const int fuzz_replaying = 1;

int main(int argc, char **argv)
{
	_cleanup_strv_free_ char **files = NULL;
	_cleanup_close_ int dfd = -1;
	size_t n = 0;

	if (argc != 2 || dir_list(argv[1], 1, &files) < 0 ||
	    (dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (char **f = files; *f; f++) {
		_cleanup_free_ char *data = NULL;
		size_t len = 0;

		if (read_file_at(dfd, *f, &data, &len) < 0) {
			printf("not ok %zu - %s unreadable\n", ++n, *f);
			continue;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)data, len);
		printf("ok %zu - %s\n", ++n, *f);
	}
	printf("1..%zu\n", n);
	return 0;
}
