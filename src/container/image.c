/* image.c: tar images from file:// and http:// URLs, `?sha256=<hex>`
 * verified, unpacked once into <node_root>/images/tar/<key>/rootfs and reused
 * (read-only lower layer of each container's overlay root).  <key> is the
 * sha256 given in the URL, else the sha256 of the URL itself. */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "../basic/dl.h"
#include "../basic/fileio.h"
#include "../basic/util.h"
#include "container-internal.h"


/* libcurl and libarchive are loaded with dlopen() on the first tar image:
 * linking them would make every treadle process (sproc run, exec-as in each
 * service start) load ~45 shared libraries, ~60-100 ms per exec on a busy
 * host (basic/dl.h). */
static struct {
	bool loaded;
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct archive *(*read_new)(void);
	int (*read_support_format_tar)(struct archive *);
	int (*read_support_format_gnutar)(struct archive *);
	int (*read_support_filter_all)(struct archive *);
	int (*read_open_filename)(struct archive *, const char *, size_t);
	int (*read_next_header)(struct archive *, struct archive_entry **);
	int (*read_data_block)(struct archive *, const void **, size_t *, la_int64_t *);
	int (*read_free)(struct archive *);
	struct archive *(*write_disk_new)(void);
	int (*write_disk_set_options)(struct archive *, int);
	int (*write_disk_set_standard_lookup)(struct archive *);
	int (*write_header)(struct archive *, struct archive_entry *);
	la_ssize_t (*write_data_block)(struct archive *, const void *, size_t, la_int64_t);
	int (*write_finish_entry)(struct archive *);
	int (*write_free)(struct archive *);
	const char *(*error_string)(struct archive *);
	const char *(*entry_pathname)(struct archive_entry *);
	const char *(*entry_hardlink)(struct archive_entry *);
	void (*entry_set_pathname)(struct archive_entry *, const char *);
	void (*entry_set_hardlink)(struct archive_entry *, const char *);
	la_int64_t (*entry_size)(struct archive_entry *);
	mode_t (*entry_filetype)(struct archive_entry *);
} L;

static int load_libs(struct error *err)
{
#define S(field, name) DL_SYM(__typeof__(L), field, name)
	static const struct dl_sym curl[] = {
		S(easy_init, "curl_easy_init"), S(easy_setopt, "curl_easy_setopt"),
		S(easy_perform, "curl_easy_perform"), S(easy_getinfo, "curl_easy_getinfo"),
		S(easy_cleanup, "curl_easy_cleanup"), S(easy_strerror, "curl_easy_strerror"),
	};
	static const struct dl_sym archive[] = {
		S(read_new, "archive_read_new"), S(read_support_format_tar, "archive_read_support_format_tar"),
		S(read_support_format_gnutar, "archive_read_support_format_gnutar"),
		S(read_support_filter_all, "archive_read_support_filter_all"),
		S(read_open_filename, "archive_read_open_filename"),
		S(read_next_header, "archive_read_next_header"), S(read_data_block, "archive_read_data_block"),
		S(read_free, "archive_read_free"), S(write_disk_new, "archive_write_disk_new"),
		S(write_disk_set_options, "archive_write_disk_set_options"),
		S(write_disk_set_standard_lookup, "archive_write_disk_set_standard_lookup"),
		S(write_header, "archive_write_header"), S(write_data_block, "archive_write_data_block"),
		S(write_finish_entry, "archive_write_finish_entry"), S(write_free, "archive_write_free"),
		S(error_string, "archive_error_string"), S(entry_pathname, "archive_entry_pathname"),
		S(entry_hardlink, "archive_entry_hardlink"), S(entry_set_pathname, "archive_entry_set_pathname"),
		S(entry_set_hardlink, "archive_entry_set_hardlink"), S(entry_size, "archive_entry_size"),
		S(entry_filetype, "archive_entry_filetype"),
	};
#undef S

	if (L.loaded)
		return 0;
	if (dl_load("libcurl.so.4", curl, ELEMENTSOF(curl), &L, err) < 0 ||
	    dl_load("libarchive.so.13", archive, ELEMENTSOF(archive), &L, err) < 0)
		return error_prefix(err, "image");
	L.loaded = true; /* the handles stay open for the life of the process */
	return 0;
}

struct fetch {
	int fd;
	struct sha256 sum;
	int werr;
};

static size_t curl_write(char *p, size_t size, size_t n, void *userdata)
{
	struct fetch *f = userdata;
	size_t len = size * n;

	if (write(f->fd, p, len) != (ssize_t)len) {
		f->werr = errno ? errno : EIO;
		return 0;
	}
	sha256_update(&f->sum, p, len);
	return len;
}

static int fetch_http(const char *url, uint64_t timeout_ms, struct fetch *f, struct error *err)
{
	CURL *h = L.easy_init();
	char ebuf[CURL_ERROR_SIZE] = "";
	long code = 0;
	CURLcode rc;

	if (!h)
		return error_sys(err, ENOMEM, "curl");
	L.easy_setopt(h, CURLOPT_URL, url);
	L.easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_write);
	L.easy_setopt(h, CURLOPT_WRITEDATA, f);
	L.easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	L.easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	L.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	L.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	L.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)MIN(timeout_ms, (uint64_t)600000));
	L.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	L.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	L.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	rc = L.easy_perform(h);
	L.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	L.easy_cleanup(h);
	if (f->werr)
		return error_sys(err, f->werr, "image %s: write", url);
	if (rc != CURLE_OK)
		return error_set(err, ERR_TEMP, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : 0,
				 "image %s: fetch failed: %s", url,
				 *ebuf ? ebuf : L.easy_strerror(rc));
	return 0;
}

static int fetch_file(const char *url, const char *path, struct fetch *f, struct error *err)
{
	_cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC);
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return error_sys(err, errno, "image %s", url);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (curl_write(buf, 1, (size_t)n, f) != (size_t)n)
			return error_sys(err, f->werr, "image %s: copy", url);
	if (n < 0)
		return error_sys(err, errno, "image %s: read", url);
	return 0;
}

/* A member path must stay inside the root: relative, no ".." component. */
static bool safe_member(const char *p)
{
	if (!p || p[0] == '/')
		return false;
	for (const char *s = p; s; s = strchr(s, '/'), s = s ? s + 1 : NULL)
		if (s[0] == '.' && s[1] == '.' && (s[2] == '/' || s[2] == 0))
			return false;
	return true;
}

/* Members are written at dir/<member>, checked by safe_member() (relative,
 * no ".."; libarchive's SECURE_NOABSOLUTEPATHS cannot be used since the
 * rewritten names are absolute); libarchive's SECURE_SYMLINKS refuses to write
 * through a symlink the archive planted, hard link targets included.  Device
 * nodes are refused: an image has no business carrying one. */
static int extract(const char *tarball, const char *dir, const char *url, struct error *err)
{
	struct archive *a = L.read_new(), *w = L.write_disk_new();
	struct archive_entry *e;
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_ACL |
		    ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
	int r = 0, ar, entries = 0;

	if (!a || !w) {
		r = error_sys(err, ENOMEM, "libarchive");
		goto out;
	}
	L.read_support_format_tar(a);
	L.read_support_format_gnutar(a);
	L.read_support_filter_all(a);
	L.write_disk_set_options(w, flags);
	L.write_disk_set_standard_lookup(w);
	if (L.read_open_filename(a, tarball, 65536) != ARCHIVE_OK) {
		r = error_set(err, ERR_PERM, 0, "image %s: not a tar archive: %s", url, L.error_string(a));
		goto out;
	}
	while ((ar = L.read_next_header(a, &e)) == ARCHIVE_OK) {
		_cleanup_free_ char *full = strdup_printf("%s/%s", dir, L.entry_pathname(e));
		const char *hl = L.entry_hardlink(e);
		_cleanup_free_ char *fullhl = hl ? strdup_printf("%s/%s", dir, hl) : NULL;

		if (!full || (hl && !fullhl)) {
			r = error_sys(err, ENOMEM, "image");
			goto out;
		}
		if (!safe_member(L.entry_pathname(e)) || (hl && !safe_member(hl))) {
			r = error_set(err, ERR_PERM, 0, "image %s: member '%s' escapes the root", url,
				      L.entry_pathname(e));
			goto out;
		}
		if (L.entry_filetype(e) == AE_IFCHR || L.entry_filetype(e) == AE_IFBLK) {
			r = error_set(err, ERR_PERM, 0, "image %s: member '%s' is a device node", url,
				      L.entry_pathname(e));
			goto out;
		}
		L.entry_set_pathname(e, full);
		if (fullhl)
			L.entry_set_hardlink(e, fullhl);
		if (L.write_header(w, e) != ARCHIVE_OK) {
			r = error_set(err, ERR_PERM, 0, "image %s: %s", url, L.error_string(w));
			goto out;
		}
		if (L.entry_size(e) > 0) {
			const void *buf;
			size_t size;
			la_int64_t off;
			while ((ar = L.read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
				if (L.write_data_block(w, buf, size, off) != ARCHIVE_OK) {
					r = error_set(err, ERR_TEMP, 0, "image %s: %s", url, L.error_string(w));
					goto out;
				}
			if (ar != ARCHIVE_EOF) {
				r = error_set(err, ERR_PERM, 0, "image %s: %s", url, L.error_string(a));
				goto out;
			}
		}
		L.write_finish_entry(w);
		entries++;
	}
	if (ar != ARCHIVE_EOF || entries == 0)
		r = error_set(err, ERR_PERM, 0, "image %s: not a tar archive: %s", url,
			      ar != ARCHIVE_EOF ? L.error_string(a) : "empty");
out:
	if (a)
		L.read_free(a);
	if (w)
		L.write_free(w);
	return r;
}

int image_get(const char *node_root, const char *url, uint64_t timeout_ms, char **ret, struct error *err)
{
	_cleanup_free_ char *base = NULL, *want = NULL, *key_dir = NULL, *tmp = NULL, *tarball = NULL, *rootfs = NULL;
	_cleanup_free_ char *location = NULL;
	struct fetch f = { .fd = -1 };
	char key[65], got[65];
	uint8_t d[32];
	const char *q;
	bool http;
	int r;

	if (startswith(url, "file://"))
		http = false;
	else if (startswith(url, "http://") || startswith(url, "https://"))
		http = true;
	else
		return error_set(err, ERR_PERM, 0, "image %s: unsupported URL (file://, http:// or native)", url);
	q = strstr(url, "?sha256=");
	location = q ? strndup(url, (size_t)(q - url)) : strdup(url);
	if (!location)
		return error_sys(err, ENOMEM, "image");
	if (q) {
		want = strdup(q + 8);
		if (!want)
			return error_sys(err, ENOMEM, "image");
		for (char *s = want; *s; s++)
			*s = (char)tolower((unsigned char)*s);
		if (strlen(want) != 64 || strspn(want, "0123456789abcdef") != 64)
			return error_set(err, ERR_PERM, 0, "image %s: sha256 must be 64 hex digits", url);
		memcpy(key, want, 65);
	} else {
		struct sha256 s;
		sha256_init(&s);
		sha256_update(&s, url, strlen(url));
		sha256_final(&s, d);
		sha256_hex(d, key);
	}
	base = strdup_printf("%s/images/tar", node_root);
	key_dir = strdup_printf("%s/images/tar/%s", node_root, key);
	rootfs = strdup_printf("%s/rootfs", key_dir ? key_dir : "");
	if (!base || !key_dir || !rootfs)
		return error_sys(err, ENOMEM, "image");
	if (access(rootfs, F_OK) == 0) { /* cached: unpacked by an earlier instance */
		*ret = TAKE_PTR(rootfs);
		return 0;
	}
	if (load_libs(err) < 0)
		return -1;
	if (mkdir_p(base, 0700) < 0)
		return error_sys(err, errno, "image cache %s", base);
	tmp = strdup_printf("%s/.tmp-XXXXXX", base);
	if (!tmp || !mkdtemp(tmp))
		return error_sys(err, tmp ? errno : ENOMEM, "image cache %s", base);
	tarball = strdup_printf("%s/image.tar", tmp);
	if (!tarball) {
		r = error_sys(err, ENOMEM, "image");
		goto out;
	}
	f.fd = open(tarball, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (f.fd < 0) {
		r = error_sys(err, errno, "image %s", tarball);
		goto out;
	}
	sha256_init(&f.sum);
	r = http ? fetch_http(location, timeout_ms, &f, err) : fetch_file(url, location + 7, &f, err);
	close(f.fd);
	if (r < 0)
		goto out;
	sha256_final(&f.sum, d);
	sha256_hex(d, got);
	if (want && strcmp(want, got) != 0) {
		r = error_set(err, ERR_PERM, 0, "image %s: sha256 mismatch: got %s", url, got);
		goto out;
	}
	{
		_cleanup_free_ char *unpack = strdup_printf("%s/rootfs", tmp);
		if (!unpack || mkdir(unpack, 0755) < 0) {
			r = error_sys(err, unpack ? errno : ENOMEM, "image");
			goto out;
		}
		r = extract(tarball, unpack, url, err);
		if (r < 0)
			goto out;
	}
	(void)unlink(tarball);
	if (rename(tmp, key_dir) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
		r = error_sys(err, errno, "image cache %s", key_dir);
		goto out;
	}
	*ret = TAKE_PTR(rootfs);
	r = 0;
out:
	(void)rm_rf(tmp); /* gone already when the rename won */
	return r;
}
