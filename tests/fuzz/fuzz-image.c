/* fuzz-image: tar image headers and members from untrusted bytes, through the
 * node's real entry point image_get() (file:// URL, libarchive extraction into
 * the image cache of a scratch node root).
 *
 * Containment: extraction runs as root with owners, modes and xattrs restored,
 * so the process first loads libarchive (one valid image), drops CAP_MKNOD
 * (no device node can be made, so none can be written through) and chroot()s
 * into its scratch directory under /dev/shm, keeping its working directory:
 * whatever an archive's symlinks or hardlinks point at resolves inside the
 * scratch directory, while libFuzzer and tests/fuzz/replay.c still read the
 * corpus and write crash files by paths relative to the working directory
 * (so give them relative paths).  It runs in its own mount namespace with a
 * read-only /proc bound in the chroot (LeakSanitizer reads it).
 * FUZZ_IMAGE_NO_CHROOT=1 skips the chroot, for a symbolized stack trace when
 * replaying one input. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/container/container-internal.h"
#include "scratch.h"

extern const int fuzz_replaying __attribute__((weak)); /* defined by replay.c */

static char *root;	   /* scratch dir, "" once chroot()ed into it */
static char *scratch;	   /* its path outside */
static int real_root = -1; /* "/" before the chroot */

/* At exit: back out of the chroot (LeakSanitizer's exit check runs after
 * this and needs the real /proc), then remove the scratch dir. */
static void cleanup(void)
{
	if (!scratch)
		return;
	if (real_root >= 0) {
		_cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cwd < 0 || fchdir(real_root) < 0 || chroot(".") < 0 || fchdir(cwd) < 0)
			return;
		_cleanup_free_ char *proc = strdup_printf("%s/proc", scratch);
		if (proc)
			umount2(proc, MNT_DETACH);
	}
	rm_rf(scratch);
}

/* Private mount namespace; the chroot gets a read-only /proc, which
 * LeakSanitizer needs to stop the world. */
static int proc_in(const char *dir)
{
	_cleanup_free_ char *p = strdup_printf("%s/proc", dir);

	if (!p || unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mkdir(p, 0555) < 0 || mount("/proc", p, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	return 0;
}

/* One image: data as <root>/img.tar, unpacked into <root>/node's cache. */
static int one(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *tar = strdup_printf("%s/img.tar", root), *node = strdup_printf("%s/node", root);
	_cleanup_free_ char *url = tar ? strdup_printf("file://%s", tar) : NULL, *rootfs = NULL;
	struct error err = { 0 };
	int fd, r;

	if (!url || !node)
		return -1;
	fd = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	r = image_get(node, url, 10000, &rootfs, &err);
	if (r == 0 && (!rootfs || !startswith(rootfs, node)))
		__builtin_trap(); /* the unpacked root must be in the node's cache */
	error_clear(&err);
	rm_rf(node);
	unlink(tar);
	return r;
}

/* A ustar image holding one empty file "f". */
static void tiny_tar(uint8_t t[1536])
{
	unsigned sum = 0;

	memset(t, 0, 1536);
	t[0] = 'f';
	memcpy(t + 100, "0000644", 8);
	memcpy(t + 108, "0000000", 8);
	memcpy(t + 116, "0000000", 8);
	memcpy(t + 124, "00000000000", 12);
	memcpy(t + 136, "00000000000", 12);
	memset(t + 148, ' ', 8);
	t[156] = '0';
	memcpy(t + 257, "ustar", 6);
	memcpy(t + 263, "00", 2);
	for (int i = 0; i < 512; i++)
		sum += t[i];
	snprintf((char *)t + 148, 8, "%06o", sum);
}

static int drop_mknod(void)
{
	cap_t caps = cap_get_proc();
	cap_value_t v = CAP_MKNOD;
	int r = -1;

	if (prctl(PR_CAPBSET_DROP, CAP_MKNOD) == 0 && caps && cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) == 0 &&
	    cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_CLEAR) == 0 &&
	    cap_set_flag(caps, CAP_INHERITABLE, 1, &v, CAP_CLEAR) == 0 && cap_set_proc(caps) == 0)
		r = 0;
	cap_free(caps);
	return r;
}

/* No CAP_MKNOD, chroot()ed into root with a read-only /proc. */
static int contain(void)
{
	if (drop_mknod() < 0)
		return -1;
	if (getenv("FUZZ_IMAGE_NO_CHROOT"))
		return 0;
	if (proc_in(root) < 0)
		return -1;
	real_root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (real_root < 0 || chroot(root) < 0)
		return -1;
	free(root);
	root = strdup("");
	if (!root)
		abort();
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t tar[1536];

	if (root)
		return 0;
	scratch = fuzz_scratch_dir("fuzz-image");
	root = strdup(scratch);
	if (!root)
		abort();
	atexit(cleanup);
	tiny_tar(tar);
	if (one(tar, sizeof(tar)) < 0) { /* loads libarchive before the chroot */
		fprintf(stderr, "fuzz-image: a valid image failed to unpack\n");
		abort();
	}
	if (geteuid() != 0 || contain() == 0)
		return 0;
	/* the replayer's fixed corpus may run uncontained, as the node runs
	 * image_get(); libFuzzer's mutated inputs may not */
	perror("fuzz-image: cannot contain the extraction");
	if (!&fuzz_replaying)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!root)
		LLVMFuzzerInitialize(NULL, NULL);
	one(data, size);
	return 0;
}
