/* fuzz-manifest: user manifests (YAML and JSON) through load, schedule,
 * runtime and serialisation.  Must never crash, leak or hit UB. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/manifest/manifest.h"

static void one(const uint8_t *data, size_t size, enum manifest_format fmt)
{
	struct error err = ERROR_INIT;
	json_t *m = NULL, *rt = NULL;
	struct manifest_runtime_ctx ctx = {
		.instance = "proid.fuzz#0000000001",
		.uniqueid = "0000000000000",
		.cell = "fuzz",
		.store_url = "file:///nonexistent",
		.approot = "/nonexistent",
		.treadle_bin = "/bin/false",
		.sshd = "",
	};
	char *s;

	if (manifest_load((const char *)data, size, fmt, fmt == MANIFEST_JSON ? "f.json" : "f.yml", &m, &err) < 0) {
		/* a failure always explains itself */
		if (!err.msg || !*err.msg)
			__builtin_trap();
		error_clear(&err);
		return;
	}
	if (manifest_schedule(m, "proid.fuzz", NULL, &err) < 0 ||
	    json_object_update_new(m, json_pack("{s:s, s:n, s:n, s:f}", "task", "0000000001", "identity",
						"identity_count", "expires", 1.0)) < 0 ||
	    manifest_runtime(m, &ctx, &rt, &err) < 0) {
		error_clear(&err);
		json_decref(m);
		return;
	}
	s = manifest_dumps(rt);
	if (!s)
		__builtin_trap();
	free(s);
	json_decref(rt);
	json_decref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, MANIFEST_YAML);
	one(data, size, MANIFEST_JSON);
	one(data, size, MANIFEST_AUTO);
	return 0;
}
