/* error.h: the error out-parameter carried up to main().
 *
 * Functions that need context take `struct error *err` and fill it only on
 * failure; callers add context with error_prefix() on the way up; the top
 * (CLI main, daemon loop) reports it once.  `code` is the process exit code
 * class the failure maps to: ERR_USAGE (2), ERR_PERM (100, permanent: bad
 * input, missing object) or ERR_TEMP (111, temporary or system failure). */
#pragma once

#include "macro.h"

enum {
	ERR_OK = 0,
	ERR_FALSE = 1,	/* a "no" answer, not a failure */
	ERR_USAGE = 2,
	ERR_PERM = 100,
	ERR_TEMP = 111,
};

struct error {
	int code;	/* exit-code class, 0 when unset */
	int errnum;	/* errno if the failure came from the system, else 0 */
	char *msg;	/* owned */
};

#define ERROR_INIT { 0, 0, NULL }

/* Set err (replacing any previous message); returns -1 (or -errnum when
 * errnum > 0) so callers can `return error_set(...)`.  err may be NULL. */
int error_set(struct error *err, int code, int errnum, const char *fmt, ...) _printf_(4, 5);
/* Same, with ERR_TEMP and strerror(errnum) appended: "<msg>: <strerror>". */
int error_sys(struct error *err, int errnum, const char *fmt, ...) _printf_(3, 4);
/* Prepend "<context>: " to the message; returns the same value as error_set. */
int error_prefix(struct error *err, const char *fmt, ...) _printf_(2, 3);
void error_clear(struct error *err);
/* Print "treadle: <msg>" to stderr, clear err (the message is freed) and
 * return its code (ERR_TEMP if unset), so `return error_report(&err);` is whole. */
int error_report(struct error *err);
static inline int error_isset(const struct error *err) { return err && err->msg; }
