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
#include <string.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "container-internal.h"

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

static int fetch_http(const char *url, struct fetch *f, struct error *err)
{
	CURL *h = curl_easy_init();
	char ebuf[CURL_ERROR_SIZE] = "";
	long code = 0;
	CURLcode rc;

	if (!h)
		return error_sys(err, ENOMEM, "curl");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (f->werr)
		return error_sys(err, f->werr, "image %s: write", url);
	if (rc != CURLE_OK)
		return error_set(err, ERR_TEMP, 0, "image %s: fetch failed: %s", url,
				 *ebuf ? ebuf : curl_easy_strerror(rc));
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

/* Members are written at dir/<member>, checked by safe_member(); libarchive's
 * SECURE_SYMLINKS refuses to write through a symlink the archive planted. */
static int extract(const char *tarball, const char *dir, const char *url, struct error *err)
{
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	struct archive_entry *e;
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_ACL |
		    ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
	int r = 0, ar, entries = 0;

	if (!a || !w) {
		r = error_sys(err, ENOMEM, "libarchive");
		goto out;
	}
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_filter_all(a);
	archive_write_disk_set_options(w, flags);
	archive_write_disk_set_standard_lookup(w);
	if (archive_read_open_filename(a, tarball, 65536) != ARCHIVE_OK) {
		r = error_set(err, ERR_PERM, 0, "image %s: not a tar archive: %s", url, archive_error_string(a));
		goto out;
	}
	while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		_cleanup_free_ char *full = strdup_printf("%s/%s", dir, archive_entry_pathname(e));
		const char *hl = archive_entry_hardlink(e);
		_cleanup_free_ char *fullhl = hl ? strdup_printf("%s/%s", dir, hl) : NULL;

		if (!full || (hl && !fullhl)) {
			r = error_sys(err, ENOMEM, "image");
			goto out;
		}
		if (!safe_member(archive_entry_pathname(e)) || (hl && !safe_member(hl))) {
			r = error_set(err, ERR_PERM, 0, "image %s: member '%s' escapes the root", url,
				      archive_entry_pathname(e));
			goto out;
		}
		archive_entry_set_pathname(e, full);
		if (fullhl)
			archive_entry_set_hardlink(e, fullhl);
		if (archive_write_header(w, e) != ARCHIVE_OK) {
			r = error_set(err, ERR_PERM, 0, "image %s: %s", url, archive_error_string(w));
			goto out;
		}
		if (archive_entry_size(e) > 0) {
			const void *buf;
			size_t size;
			la_int64_t off;
			while ((ar = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
				if (archive_write_data_block(w, buf, size, off) != ARCHIVE_OK) {
					r = error_set(err, ERR_TEMP, 0, "image %s: %s", url, archive_error_string(w));
					goto out;
				}
			if (ar != ARCHIVE_EOF) {
				r = error_set(err, ERR_PERM, 0, "image %s: %s", url, archive_error_string(a));
				goto out;
			}
		}
		archive_write_finish_entry(w);
		entries++;
	}
	if (ar != ARCHIVE_EOF || entries == 0)
		r = error_set(err, ERR_PERM, 0, "image %s: not a tar archive: %s", url,
			      ar != ARCHIVE_EOF ? archive_error_string(a) : "empty");
out:
	if (a)
		archive_read_free(a);
	if (w)
		archive_write_free(w);
	return r;
}

int image_get(const char *node_root, const char *url, char **ret, struct error *err)
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
	r = http ? fetch_http(location, &f, err) : fetch_file(url, location + 7, &f, err);
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
