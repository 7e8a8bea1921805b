/* krb-internal.h: what krb.c (transport, client) and krb-locker.c (the daemon,
 * kadm5) share; not for use outside src/krb/. */
#pragma once

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <jansson.h>
#include <krb5.h>

#include <stdbool.h>

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

/* MIT krb5 and GSSAPI are loaded by krb_lib_load() at the start of every
 * public krb_* function that needs them, not linked: every treadle exec
 * (sproc run, exec-as per service start) would pay for them (basic/dl.h).
 * Every krb5_x()/gss_x() of src/krb/ is called as krb_lib.krb5_x(). */
struct krb_lib {
	bool loaded;
	__typeof__(krb5_cc_close) *krb5_cc_close;
	__typeof__(krb5_cc_end_seq_get) *krb5_cc_end_seq_get;
	__typeof__(krb5_cc_initialize) *krb5_cc_initialize;
	__typeof__(krb5_cc_next_cred) *krb5_cc_next_cred;
	__typeof__(krb5_cc_resolve) *krb5_cc_resolve;
	__typeof__(krb5_cc_start_seq_get) *krb5_cc_start_seq_get;
	__typeof__(krb5_cc_store_cred) *krb5_cc_store_cred;
	__typeof__(krb5_free_context) *krb5_free_context;
	__typeof__(krb5_free_cred_contents) *krb5_free_cred_contents;
	__typeof__(krb5_free_default_realm) *krb5_free_default_realm;
	__typeof__(krb5_free_error_message) *krb5_free_error_message;
	__typeof__(krb5_free_principal) *krb5_free_principal;
	__typeof__(krb5_free_unparsed_name) *krb5_free_unparsed_name;
	__typeof__(krb5_get_default_realm) *krb5_get_default_realm;
	__typeof__(krb5_get_error_message) *krb5_get_error_message;
	__typeof__(krb5_get_init_creds_keytab) *krb5_get_init_creds_keytab;
	__typeof__(krb5_get_init_creds_opt_alloc) *krb5_get_init_creds_opt_alloc;
	__typeof__(krb5_get_init_creds_opt_free) *krb5_get_init_creds_opt_free;
	__typeof__(krb5_init_context) *krb5_init_context;
	__typeof__(krb5_kt_add_entry) *krb5_kt_add_entry;
	__typeof__(krb5_kt_close) *krb5_kt_close;
	__typeof__(krb5_kt_resolve) *krb5_kt_resolve;
	__typeof__(krb5_parse_name) *krb5_parse_name;
	__typeof__(krb5_unparse_name) *krb5_unparse_name;
	__typeof__(gss_accept_sec_context) *gss_accept_sec_context;
	__typeof__(gss_acquire_cred_from) *gss_acquire_cred_from;
	__typeof__(gss_delete_sec_context) *gss_delete_sec_context;
	__typeof__(gss_display_name) *gss_display_name;
	__typeof__(gss_display_status) *gss_display_status;
	__typeof__(gss_import_name) *gss_import_name;
	__typeof__(gss_init_sec_context) *gss_init_sec_context;
	__typeof__(gss_release_buffer) *gss_release_buffer;
	__typeof__(gss_release_cred) *gss_release_cred;
	__typeof__(gss_release_name) *gss_release_name;
	__typeof__(gss_store_cred_into) *gss_store_cred_into;
	__typeof__(gss_unwrap) *gss_unwrap;
	__typeof__(gss_wrap) *gss_wrap;
	const gss_OID *gss_mech_krb5;		   /* data: the address of the library's variable */
	const gss_OID *GSS_KRB5_NT_PRINCIPAL_NAME; /* same */
};
extern struct krb_lib krb_lib;
/* Load libkrb5 and libgssapi_krb5 into krb_lib (once); ERR_TEMP "krb: cannot load <lib>: ..." if one cannot. */
int krb_lib_load(struct error *err);
