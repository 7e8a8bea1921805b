/* util.h: string vectors, checked number/size/duration parsing, time.
 * Basic layer: no project dependencies beyond macro.h. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* NULL-terminated vectors of owned strings. */
char **strv_new(void);
/* Append a copy of s (strv_push takes ownership of s instead).  -ENOMEM on failure. */
int strv_extend(char ***l, const char *s);
int strv_push(char ***l, char *s);
size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
void strv_sort(char **l);
void strv_free(char **l);
static inline void strv_freep(char ***l) { strv_free(*l); }
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Checked conversions: whole string must parse, no sign for unsigned, no overflow.
 * Return 0 or -EINVAL / -ERANGE. */
int safe_atou64(const char *s, uint64_t *ret);
int safe_atoi64(const char *s, int64_t *ret);
int safe_atoi(const char *s, int *ret);
int safe_atod(const char *s, double *ret);
/* An epoch timestamp as the node's files carry it ("1546300800.123",
 * "%014.3f"): digits, at most TIMESTAMP_INT_DIGITS before an optional '.' and
 * at most TIMESTAMP_FRAC_DIGITS after it.  0 or -EINVAL. */
#define TIMESTAMP_INT_DIGITS 12
#define TIMESTAMP_FRAC_DIGITS 9
int parse_timestamp(const char *s, double *ret);

/* Treadmill's utils.size_to_bytes: "1K" = 1024, "1KB" = 1000, suffixes B K M G T P E,
 * case-insensitive; a bare number is bytes.  -EINVAL / -ERANGE. */
int parse_size(const char *s, uint64_t *ret_bytes);
/* The one parser of resource strings (Treadmill's utils.megabytes and
 * utils.cpu_units), for the scheduler's loader, admin and manifests.
 * parse_size_mib: a memory/disk size in MiB.  Units as parse_size; a bare
 * number is bytes, or with SIZE_MIB_BARE a (possibly fractional) number of
 * MiB, 0..1e12.  Rounded down to whole MiB, up with SIZE_MIB_ROUND_UP.
 * parse_cpu: "400%" or "400" in percent of one core; whole numbers only,
 * or with CPU_FRACTION any non-negative number.  -EINVAL / -ERANGE. */
#define SIZE_MIB_BARE 1u
#define SIZE_MIB_ROUND_UP 2u
int parse_size_mib(const char *s, unsigned flags, uint64_t *ret_mib);
#define CPU_FRACTION 1u
int parse_cpu(const char *s, unsigned flags, double *ret_percent);
/* Treadmill's utils.to_seconds: "<N>[SMHD]" (case-insensitive), bare number = seconds. */
int parse_duration(const char *s, uint64_t *ret_seconds);

/* Wall clock in seconds with sub-second precision, and monotonic milliseconds. */
double now_realtime(void);
uint64_t now_monotonic_ms(void);

/* asprintf that returns NULL on failure instead of leaving the pointer undefined. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
char *strdup_vprintf(const char *fmt, va_list ap) _printf_(1, 0);
bool startswith(const char *s, const char *prefix);
/* s quoted for /bin/sh: 'it'\''s' (always quoted; NULL on ENOMEM). */
char *shell_quote(const char *s);
/* The words of argv (NULL-terminated) quoted and joined by spaces; malloc'ed. */
char *shell_quote_argv(char *const *argv);
bool endswith(const char *s, const char *suffix);
