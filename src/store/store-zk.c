/* store-zk.c: the ZooKeeper backend (phase 2; not yet implemented). */
#include "store-internal.h"

static int zk_open(const char *where, const struct store_options *opts, struct store **ret, struct error *err)
{
	return error_set(err, ERR_PERM, ENOSYS, "store: ZooKeeper backend not implemented yet (zk://%s)", where);
}

const struct store_backend store_backend_zk = {
	.name = "zk",
	.open = zk_open,
};
