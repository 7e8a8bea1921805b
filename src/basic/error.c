#include <stdarg.h>
#include <string.h>

#include "error.h"

static int ret_of(const struct error *err)
{
	return err && err->errnum > 0 ? -err->errnum : -1;
}

static void error_vset(struct error *err, int code, int errnum, const char *fmt, va_list ap)
{
	char *m = NULL;

	if (!err)
		return;
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	free(err->msg);
	err->msg = m ? m : strdup("out of memory");
	err->code = code;
	err->errnum = errnum;
}

int error_set(struct error *err, int code, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(err, code, errnum, fmt, ap);
	va_end(ap);
	return errnum > 0 ? -errnum : -1;
}

int error_sys(struct error *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	if (errnum < 0)
		errnum = -errnum;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	error_set(err, ERR_TEMP, errnum, "%s: %s", m ? m : "?", strerror(errnum));
	free(m);
	return errnum > 0 ? -errnum : -1;
}

int error_prefix(struct error *err, const char *fmt, ...)
{
	va_list ap;
	char *p = NULL, *n = NULL;

	if (!err)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		p = NULL;
	va_end(ap);
	if (p && asprintf(&n, "%s: %s", p, err->msg ? err->msg : "unknown error") >= 0) {
		free(err->msg);
		err->msg = n;
	}
	free(p);
	if (!err->code)
		err->code = ERR_TEMP;
	return ret_of(err);
}

void error_clear(struct error *err)
{
	if (!err)
		return;
	free(err->msg);
	err->msg = NULL;
	err->code = 0;
	err->errnum = 0;
}

int error_report(struct error *err)
{
	int code = err && err->code ? err->code : ERR_TEMP;

	fprintf(stderr, "treadle: %s\n", err && err->msg ? err->msg : "unknown error");
	error_clear(err);
	return code;
}
