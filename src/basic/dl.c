/* dl.c: optional shared libraries loaded at first use (dl.h). */
#include <dlfcn.h>
#include <string.h>

#include "dl.h"

int dl_load(const char *lib, const struct dl_sym *syms, size_t n, void *table, struct error *err)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return error_set(err, ERR_TEMP, 0, "cannot load %s: %s", lib, dlerror());
	for (size_t i = 0; i < n; i++) {
		void *f = dlsym(h, syms[i].name);

		if (!f)
			return error_set(err, ERR_TEMP, 0, "%s: no symbol %s", lib, syms[i].name);
		memcpy((char *)table + syms[i].offset, &f, sizeof(f));
	}
	return 0;
}
