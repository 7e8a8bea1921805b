/* dl.h: load an optional shared library with dlopen() at first use.
 *
 * Libraries only a few commands need (libcurl, libmicrohttpd, libldap, krb5)
 * are not linked: every treadle exec (sproc run, exec-as in each service
 * start) would pay their loading (~10 ms CPU, docs/ARCHITECTURE.md,
 * Decisions).  The module keeps a struct of function pointers and fills it
 * from a table of (symbol, offset) pairs. */
#pragma once

#include <stddef.h>

#include "error.h"

struct dl_sym {
	const char *name;	/* symbol in the library */
	size_t offset;		/* offset of the function pointer in the table */
};

/* One table entry: the field of struct `type` that receives symbol `name`. */
#define DL_SYM(type, field, name) { name, offsetof(type, field) }

/* dlopen(lib) (kept open for the life of the process) and store each
 * symbol's address at table + syms[i].offset.  On failure: ERR_TEMP,
 * "cannot load <lib>: <dlerror>" or "<lib>: no symbol <name>" (the table may then be
 * partly filled: callers mark it loaded only on success). */
int dl_load(const char *lib, const struct dl_sym *syms, size_t n, void *table, struct error *err);
