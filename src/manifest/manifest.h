/* manifest.h: Treadmill app manifests: parse, validate, normalise.
 *
 * Domain layer: includes basic/ only; uses jansson objects as the in-memory form
 * (json_t, owned by the caller, released with json_decref).
 *
 * Three shapes, as in Treadmill (reference treadmill-architecture.md §2):
 *  - user manifest: what a user writes (YAML or JSON), schema of §2.1;
 *  - scheduled manifest: user manifest + proid, environment, affinity defaults,
 *    stored as JSON in /scheduled/<proid>.<app>#<seq> (§2.3);
 *  - runtime manifest: data/app.json written by the node (§2.2, §2.4).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "../basic/error.h"

enum manifest_format { MANIFEST_AUTO, MANIFEST_YAML, MANIFEST_JSON };

/* Size limits (docs/MANIFEST.md): the text as written, and the manifest as
 * compact JSON (the scheduled form adds < 300 bytes and must fit a store
 * node, STORE_MAX_DATA, just under ZooKeeper's 1 MiB). */
#define MANIFEST_SIZE_MAX (1024 * 1024)
#define MANIFEST_JSON_MAX (1000 * 1024)

/* Parse and validate a user manifest.  `source` names the input in messages
 * (a file name).  Text longer than MANIFEST_SIZE_MAX, or a manifest longer
 * than MANIFEST_JSON_MAX as JSON, is refused.  On failure err->code = ERR_PERM and err->msg holds one line
 * per problem ("services[1].restart.limit: must be an integer 0..10"), lines
 * joined by '\n'; syntax errors name "<source>:<line>:<col>". */
int manifest_load(const char *text, size_t len, enum manifest_format fmt, const char *source, json_t **ret,
		  struct error *err);
/* `treadle manifest check|convert FILE` (FILE "-": stdin).  convert: the
 * document as typed JSON (JSON when FILE ends in .json, else YAML with PyYAML's
 * typing), not validated.  Otherwise the validated manifest, and with appname
 * (may be NULL) checked (manifest_check_appname with check_user) and turned
 * into its scheduled form (manifest_schedule with environment). */
int manifest_check_file(const char *file, bool convert, const char *appname, const char *environment,
			bool check_user, json_t **ret, struct error *err);
/* The parsing half of manifest_load: syntax checked, a mapping, not validated. */
int manifest_parse(const char *text, size_t len, enum manifest_format fmt, const char *source, json_t **ret,
		   struct error *err);

/* Validate a manifest already in memory (same messages as manifest_load).
 * With scheduled, it is a scheduled/cached manifest: proid and environment
 * are required and task, identity, identity_count, expires are allowed. */
int manifest_validate(json_t *m, bool scheduled, struct error *err);
/* A manifest with vring rules must list `cell` (this cell's name; NULL or "":
 * unknown, not checked) in vring.cells: ERR_PERM "vring.cells: ...". */
int manifest_vring_check_cell(const json_t *m, const char *cell, struct error *err);
/* Refuses a manifest larger than MANIFEST_JSON_MAX as compact JSON (ERR_PERM, naming SOURCE). */
int manifest_check_json_size(const json_t *m, const char *source, struct error *err);

/* The `run APP -- CMD...` form (Treadmill cli/run.py): add a service named
 * `service` (NULL: basename of argv[0]) running argv (joined by spaces, each
 * argument shell-quoted when needed) with restart {limit 0, interval 60}, and
 * default memory 100M, cpu 10%, disk 100M when m lacks them.  m may be an
 * empty object.  Call manifest_validate(m, false, err) afterwards. */
int manifest_add_command(json_t *m, const char *service, char *const *argv, struct error *err);

/* Validate an app name "<proid>.<name>" (Treadmill: proid = first dot
 * component; name chars [\w.-]; at most MANIFEST_APPNAME_MAX chars); when check_user, the proid must be a user on
 * this host.  ERR_PERM with a one-line message on failure. */
#define MANIFEST_APPNAME_MAX 120
int manifest_check_appname(const char *appname, bool check_user, struct error *err);

/* Turn a validated user manifest into the scheduled manifest for `appname`:
 * sets proid (first component of appname), environment (dev|qa|uat|prod, NULL
 * = dev), affinity default "<proid>.<app>", identity_group default null.
 * Modifies m in place. */
int manifest_schedule(json_t *m, const char *appname, const char *environment, struct error *err);

struct manifest_runtime_ctx {
	const char *instance;	/* "<proid>.<app>#<10 digits>" */
	const char *uniqueid;	/* 13 chars base62 */
	const char *cell;	/* cell name */
	const char *store_url;	/* "zookeeper" field */
	const char *approot;	/* node root, for system service commands */
	const char *container_dir; /* apps/<unique_name> */
	const char *treadle_bin;   /* path of the treadle binary */
	const char *sshd;	   /* sshd binary for the ssh service: NULL = /usr/sbin/sshd
				    * if it exists on this node, "" = no ssh service */
};

/* Normalise a cached manifest (scheduled manifest + task + placement data)
 * into the runtime manifest (app.json), as Treadmill's load_runtime_manifest. */
int manifest_runtime(const json_t *cached, const struct manifest_runtime_ctx *ctx, json_t **ret,
		     struct error *err);

/* Serialise as Treadmill does for files and store nodes: sorted keys, compact. */
char *manifest_dumps(const json_t *m);
