/* json.h: _cleanup_ for jansson values, shared by every layer that holds JSON.
 * Basic layer: libc and jansson only. */
#pragma once

#include <jansson.h>

#include "macro.h"

static inline void json_freep(json_t **j)
{
	json_decref(*j);
}
#define _cleanup_json_ _cleanup_(json_freep)
