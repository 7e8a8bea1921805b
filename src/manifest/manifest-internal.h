/* manifest-internal.h: pieces shared by the manifest module's files. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "../basic/error.h"

/* Parse one YAML document (YAML 1.1 scalar typing as PyYAML's SafeLoader:
 * ints incl. 0x/0o/0b/sexagesimal and '_', floats, bools true/false/yes/no/
 * on/off, null/~/empty; quoted scalars stay strings; anchors, aliases and
 * '<<' merge keys).  Mapping keys become strings.  On failure ERR_PERM with
 * "<source>:<line>:<col>: <problem>".  An empty stream yields JSON null. */
int manifest_yaml_to_json(const char *text, size_t len, const char *source, json_t **ret, struct error *err);
