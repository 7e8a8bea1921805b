/* layout.c: node root layout, unique ids and log lookup (see layout.h). */
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "layout.h"

static const char *const layout_dirs[] = {
	NODE_DIR_CACHE,	       NODE_DIR_APPS,	       NODE_DIR_RUNNING,   NODE_DIR_CLEANUP,
	NODE_DIR_TOMB_RUNNING, NODE_DIR_TOMB_SERVICES, NODE_DIR_APPEVENTS, NODE_DIR_ARCHIVES,
};

int node_layout_create(const char *root)
{
	int r = mkdir_p(root, 0755);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(layout_dirs); i++) {
		_cleanup_free_ char *p = node_path(root, layout_dirs[i]);
		if (!p)
			return -ENOMEM;
		r = mkdir_p(p, 0755);
		if (r < 0)
			return r;
	}
	return 0;
}

char *node_path(const char *root, const char *sub)
{
	return strdup_printf("%s/%s", root, sub);
}

char *node_cache_file(const char *root, const char *instance)
{
	return strdup_printf("%s/" NODE_DIR_CACHE "/%s", root, instance);
}

char *node_app_dir(const char *root, const char *unique)
{
	return strdup_printf("%s/" NODE_DIR_APPS "/%s", root, unique);
}

char *node_running_link(const char *root, const char *instance)
{
	return strdup_printf("%s/" NODE_DIR_RUNNING "/%s", root, instance);
}

char *node_cleanup_link(const char *root, const char *unique)
{
	return strdup_printf("%s/" NODE_DIR_CLEANUP "/%s", root, unique);
}

char *node_archive_dir(const char *root, const char *unique)
{
	return strdup_printf("%s/" NODE_DIR_ARCHIVES "/%s", root, unique);
}

static const char base62_alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Base62 (0-9a-zA-Z) of a 77-bit seed given as high 13 bits and low 64 bits,
 * left-padded with '0' to 13 chars. */
static void base62(uint64_t seed_hi, uint64_t seed_lo, char ret[NODE_UNIQUEID_LEN + 1])
{
	unsigned __int128 v = ((unsigned __int128)(seed_hi & 0x1fff) << 64) | seed_lo;

	for (int i = NODE_UNIQUEID_LEN - 1; i >= 0; i--) {
		ret[i] = base62_alphabet[(unsigned)(v % 62)];
		v /= 62;
	}
	ret[NODE_UNIQUEID_LEN] = 0;
}

/* Sequence number after '#': "proid.app#0000000042" -> 42. */
static int instance_seq(const char *instance, uint64_t *ret)
{
	const char *h = strrchr(instance, '#');

	if (!h || !h[1])
		return -EINVAL;
	for (const char *p = h + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	return safe_atou64(h + 1, ret);
}

/* Treadmill's gen_uniqueid (architecture §1.0): from stat() of the cache
 * file and the instance's sequence number.  ret gets 13 base62 chars + NUL.
 * -EINVAL if instance has no "#<digits>". */
static int node_uniqueid(const struct stat *st, const char *instance, char ret[NODE_UNIQUEID_LEN + 1])
{
	uint64_t seq, ctime_us, d;
	double ctime_f;
	int r;

	r = instance_seq(instance, &seq);
	if (r < 0)
		return r;
	/* Python: st_ctime = sec + nsec * 1e-9 (double); int(st_ctime * 10**6). */
	ctime_f = (double)st->st_ctim.tv_sec + (double)st->st_ctim.tv_nsec * 1e-9;
	ctime_us = (uint64_t)(ctime_f * 1000000.0);
	d = (uint64_t)st->st_ino ^ (seq << 31);
	base62(ctime_us, d, ret);
	return 0;
}

char *node_unique_name(const char *instance, const char *uniqueid)
{
	char *s = strdup_printf("%s-%s", instance, uniqueid);
	char *h;

	if (!s)
		return NULL;
	h = strrchr(s, '#');
	if (h)
		*h = '-';
	return s;
}

const char *node_unique_id(const char *unique)
{
	const char *d = strrchr(unique, '-');

	if (!d || strlen(d + 1) != NODE_UNIQUEID_LEN)
		return NULL;
	for (const char *p = d + 1; *p; p++)
		if (!strchr(base62_alphabet, *p))
			return NULL;
	return d + 1;
}

char *node_unique_instance(const char *unique)
{
	const char *id = node_unique_id(unique);
	char *s, *d;

	if (!id || id == unique + 1) {
		errno = EINVAL;
		return NULL;
	}
	s = strndup(unique, (size_t)(id - 1 - unique));
	if (!s)
		return NULL;
	d = strrchr(s, '-');
	if (!d || !d[1] || d == s || strchr(s, '#')) {
		free(s);
		errno = EINVAL;
		return NULL;
	}
	for (const char *p = d + 1; *p; p++)
		if (*p < '0' || *p > '9') { /* the sequence number */
			free(s);
			errno = EINVAL;
			return NULL;
		}
	*d = '#';
	return s;
}

int node_cache_unique_name(const char *root, const char *instance, char **ret)
{
	_cleanup_free_ char *p = node_cache_file(root, instance);
	char id[NODE_UNIQUEID_LEN + 1];
	struct stat st;
	int r;

	if (!p)
		return -ENOMEM;
	if (stat(p, &st) < 0)
		return negerrno();
	r = node_uniqueid(&st, instance, id);
	if (r < 0)
		return r;
	*ret = node_unique_name(instance, id);
	return *ret ? 0 : -ENOMEM;
}

char *node_link_base(const char *link)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);
	const char *b;

	if (n <= 0)
		return NULL;
	buf[n] = 0;
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	b = strrchr(buf, '/');
	return strdup(b ? b + 1 : buf);
}

/* Does unique name u belong to instance? */
static bool unique_of(const char *u, const char *instance)
{
	_cleanup_free_ char *inst = node_unique_instance(u);

	return inst && strcmp(inst, instance) == 0;
}

struct uentry {
	char *u;
	int64_t key;
};

static int uentry_cmp(const void *a, const void *b)
{
	const struct uentry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return strcmp(x->u, y->u);
}

/* All unique names known for an instance, oldest first (by uniqueid time is
 * not recoverable, so: archived ones sorted by archive mtime, then the live
 * ones).  *ret is a NULL-terminated strv; 0 or -errno. */
static int node_instance_uniques(const char *root, const char *instance, char ***ret)
{
	static const char *const dirs[] = { NODE_DIR_ARCHIVES, NODE_DIR_APPS };
	_cleanup_strv_free_ char **out = strv_new();
	struct uentry *ents = NULL;
	size_t n = 0;
	int r = 0;

	if (!out)
		return -ENOMEM;
	for (size_t d = 0; d < ELEMENTSOF(dirs); d++) {
		_cleanup_free_ char *dir = node_path(root, dirs[d]);
		_cleanup_strv_free_ char **l = NULL;

		if (!dir)
			return -ENOMEM;
		if (dir_list(dir, 1, &l) < 0)
			continue;
		for (char **p = l; *p; p++) {
			_cleanup_free_ char *full = NULL;
			struct stat st;
			struct uentry *t;

			if (!unique_of(*p, instance))
				continue;
			full = strdup_printf("%s/%s", dir, *p);
			if (!full || stat(full, &st) < 0)
				continue;
			t = realloc(ents, (n + 1) * sizeof(*ents));
			if (!t) {
				r = -ENOMEM;
				goto out;
			}
			ents = t;
			ents[n].u = strdup(*p);
			/* archived first (by mtime), live after */
			ents[n].key = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 +
				      (d == 1 ? INT64_C(1) << 60 : 0);
			if (!ents[n].u) {
				r = -ENOMEM;
				goto out;
			}
			n++;
		}
	}
	if (n)
		qsort(ents, n, sizeof(*ents), uentry_cmp);
	for (size_t i = 0; i < n; i++) {
		if (out && !strv_contains(out, ents[i].u) && strv_extend(&out, ents[i].u) < 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	*ret = TAKE_PTR(out);
out:
	for (size_t i = 0; i < n; i++)
		free(ents[i].u);
	free(ents);
	return r;
}

static bool is_dir(const char *p)
{
	struct stat st;

	return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Log dir of one unique (live or archived), NULL if absent. */
static char *log_dir_of(const char *root, const char *u, const char *service)
{
	bool svc = service && *service;

	/* live: apps/<u>/data[/services/<s>/data]/log; archived: archives/<u>[/services/<s>]/log */
	for (int archived = 0; archived < 2; archived++) {
		char *p = strdup_printf("%s/%s/%s%s%s%s%s/log", root, archived ? NODE_DIR_ARCHIVES : NODE_DIR_APPS, u,
					archived ? "" : "/data", svc ? "/services/" : "", svc ? service : "",
					svc && !archived ? "/data" : "");

		if (is_dir(p))
			return p;
		free(p);
	}
	return NULL;
}

char *node_service_log_dir(const char *root, const char *instance, const char *service, const char *uniqueid)
{
	_cleanup_strv_free_ char **l = NULL;
	size_t n;

	if (uniqueid && *uniqueid) {
		_cleanup_free_ char *u = node_unique_name(instance, uniqueid);
		char *p;

		if (!u)
			return NULL;
		p = log_dir_of(root, u, service);
		if (!p)
			errno = ENOENT;
		return p;
	}
	if (node_instance_uniques(root, instance, &l) < 0) {
		errno = ENOENT;
		return NULL;
	}
	/* newest first: the live container if any, else the latest archive */
	for (n = strv_length(l); n > 0; n--) {
		char *p = log_dir_of(root, l[n - 1], service);
		if (p)
			return p;
	}
	errno = ENOENT;
	return NULL;
}
