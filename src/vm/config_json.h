/* struct vm_config <-> JSON, as recorded in a snapshot's manifest (so a
 * restore rebuilds the same machine) and shown by the API's "info". */
#ifndef VESSEL_VM_CONFIG_JSON_H
#define VESSEL_VM_CONFIG_JSON_H

#include <jansson.h>
#include "util/err.h"
#include "vm/config.h"

json_t *vm_config_to_json(const struct vm_config *c);
/* Fills c (initialised by the caller); every value is range-checked. */
int vm_config_from_json(const json_t *j, struct vm_config *c, vs_err *err);
/* The dynamic-resource keys (vm/config_resources.c), called by the two above. */
void vm_config_resources_to_json(const struct vm_config *c, json_t *o);
int vm_config_resources_from_json(const json_t *j, struct vm_config *c, vs_err *err);
/* A rate limit as {"bytes_per_s", "bytes_burst", "ops_per_s", "ops_burst"}
 * (NULL when it limits nothing), and back (absent or null: none). */
json_t *vm_rate_to_json(const struct vs_rate_config *r);
int vm_rate_from_json(const json_t *j, const char *what, struct vs_rate_config *r, vs_err *err);

#endif
