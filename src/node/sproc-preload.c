/* sproc-preload.c: the bind preload's /etc/ld.so.preload of a private-network container
 * (docs/CONTAINER.md "Bind preload"; Treadmill's _prepare_ldpreload). */
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "node-internal.h"

#define HOST_PRELOAD "/etc/ld.so.preload"

int sproc_preload_prepare(const struct node_settings *ns, const char *cdir, char **ret_so, struct error *err)
{
	_cleanup_free_ char *bin = strdup(ns->treadle_bin), *so = NULL, *host = NULL, *out = NULL, *path = NULL;
	struct stat st;
	int r, fd;

	*ret_so = NULL;
	if (!bin)
		return error_sys(err, ENOMEM, "preload");
	/* installed: PREFIX/bin/treadle and PREFIX/lib/treadle-bind.so; built: build/treadle, build/lib/ */
	const char *dir = dirname(bin);

	for (int i = 0; i < 2 && !so; i++) {
		so = strdup_printf("%s/%slib/treadle-bind.so", dir, i ? "" : "../");
		if (!so)
			return error_sys(err, ENOMEM, "preload");
		if (stat(so, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(so);
			so = NULL;
		}
	}
	if (!so)
		return 0; /* not built or not installed: no preload (sproc run says so) */
	/* A native root shows the host's /etc read-only: the bind needs a file there to cover.  An empty
	 * /etc/ld.so.preload preloads nothing, so creating one changes nothing on the host. */
	fd = open(HOST_PRELOAD, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	else if (errno != EEXIST)
		return error_sys(err, errno, "creating an empty %s", HOST_PRELOAD);
	/* the host's entries first (Treadmill's order), then ours once */
	if (read_file(HOST_PRELOAD, &host, NULL) < 0 && !(host = strdup("")))
		return error_sys(err, ENOMEM, "preload");
	{
		size_t len = 0;
		FILE *f = open_memstream(&out, &len);
		char *save = NULL;

		if (!f)
			return error_sys(err, ENOMEM, "preload");
		for (char *l = strtok_r(host, " \t\n:", &save); l; l = strtok_r(NULL, " \t\n:", &save))
			if (strcmp(l, SPROC_PRELOAD_IN))
				fprintf(f, "%s\n", l);
		fprintf(f, "%s\n", SPROC_PRELOAD_IN);
		if (fclose(f) != 0)
			return error_sys(err, ENOMEM, "preload");
	}
	path = strdup_printf("%s/data/overlay/etc", cdir);
	if (!path)
		return error_sys(err, ENOMEM, "preload");
	r = mkdir_p(path, 0755);
	free(path);
	path = strdup_printf("%s/" SPROC_PRELOAD_REL, cdir);
	if (r >= 0 && !path)
		return error_sys(err, ENOMEM, "preload");
	if (r < 0 || (r = write_file_atomic(path, out, strlen(out), 0644)) < 0)
		return error_sys(err, -r, "writing %s", path);
	*ret_so = TAKE_PTR(so);
	return 0;
}
