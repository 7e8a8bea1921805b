/* load.c: manifests read from files, as the CLI needs them: `treadle manifest
 * check|convert` (manifest_check_file) and `treadle run` (manifest_build_run,
 * the flags merged over the file). */
#include <string.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "manifest-internal.h"
#include "manifest.h"
#include "merge.h"

/* The text of a manifest file, refused above MANIFEST_SIZE_MAX; messages name
 * source.  ERR_PERM when missing, unreadable or a directory, else ERR_TEMP. */
static int read_manifest_file(const char *path, const char *source, char **ret_text, size_t *ret_len, struct error *err)
{
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > MANIFEST_SIZE_MAX)
		return error_set(err, ERR_PERM, 0, "%s: the manifest is %lld bytes, more than the maximum of %d (1 MiB)",
				 source, (long long)st.st_size, MANIFEST_SIZE_MAX);
	r = read_file(path, ret_text, ret_len);
	if (r < 0)
		return error_set(err, r == -ENOENT || r == -EACCES || r == -EISDIR ? ERR_PERM : ERR_TEMP, -r, "%s: %s",
				 source, strerror(-r));
	return 0;
}

int manifest_check_file(const char *file, bool convert, const char *appname, const char *environment,
			bool check_user, json_t **ret, struct error *err)
{
	bool stdin_ = strcmp(file, "-") == 0;
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_t *m = NULL;
	size_t len = 0;
	int r;

	r = read_manifest_file(stdin_ ? "/dev/stdin" : file, file, &text, &len, err);
	if (r < 0)
		return r;
	if (convert && endswith(file, ".json")) {
		json_error_t je;

		m = json_loadb(text, len, JSON_DECODE_ANY, &je);
		if (!m)
			return error_set(err, ERR_PERM, 0, "%s:%d:%d: %s", file, je.line, je.column, je.text);
	} else if (convert) {
		r = manifest_yaml_to_json(text, len, file, &m, err);
	} else {
		r = manifest_load(text, len, MANIFEST_AUTO, stdin_ ? "<stdin>" : file, &m, err);
		if (r >= 0 && appname)
			r = manifest_check_appname(appname, check_user, err);
		if (r >= 0 && appname)
			r = manifest_schedule(m, appname, environment, err);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(m);
	return 0;
}

int manifest_build_run(const char *file, const struct manifest_run_flags *f, const char *appname,
		       const char *environment, bool check_user, char **ret, struct error *err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_t *m = NULL;
	size_t len;
	int r;

	if (file) {
		r = read_manifest_file(file, file, &text, &len, err);
		if (r >= 0)
			r = manifest_parse(text, len, MANIFEST_AUTO, file, &m, err);
	} else {
		m = json_object();
		r = m ? 0 : error_sys(err, ENOMEM, "run");
	}
	if (r >= 0)
		r = manifest_merge_run(m, f, err);
	if (r >= 0)
		r = manifest_validate(m, false, err);
	if (r >= 0)
		r = manifest_vring_check_cell(m, f->cell, err);
	if (r >= 0)
		r = manifest_check_json_size(m, file ? file : "the manifest", err);
	if (r >= 0)
		r = manifest_check_appname(appname, check_user, err);
	if (r >= 0)
		r = manifest_schedule(m, appname, environment, err);
	if (r < 0)
		return r;
	*ret = manifest_dumps(m);
	return *ret ? 0 : error_sys(err, ENOMEM, "run");
}
