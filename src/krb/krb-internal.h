/* krb-internal.h: what krb.c (transport, client) and krb-locker.c (the daemon,
 * kadm5) share; not for use outside src/krb/. */
#pragma once

#include <gssapi/gssapi.h>
#include <jansson.h>
#include <krb5.h>

#include "../basic/error.h"

#define KRB_FRAME_MAX (1024 * 1024)
#define KRB_IO_TIMEOUT_S 10

/* One frame: 4-byte big-endian length + bytes. */
int krb_frame_send(int fd, const void *data, size_t len);
/* *ret malloc'ed (gss buffers are not), *ret_len its length. */
int krb_frame_recv(int fd, void **ret, size_t *ret_len);
/* JSON text gss_wrap'ed (confidentiality) in one frame, and back. */
int krb_msg_send(int fd, gss_ctx_id_t ctx, const json_t *msg, struct error *err);
int krb_msg_recv(int fd, gss_ctx_id_t ctx, json_t **ret, struct error *err);
/* "<what>: <GSSAPI major>: <minor>" into err (ERR_TEMP). */
int krb_gss_error(struct error *err, const char *what, OM_uint32 maj, OM_uint32 min);
/* "<what>: <krb5 message>" (ERR_TEMP). */
int krb_krb5_error(struct error *err, krb5_context ctx, const char *what, krb5_error_code code);
/* Base64 (RFC 4648), malloc'ed (krb.c also decodes, for itself). */
char *krb_b64_encode(const void *data, size_t len);
