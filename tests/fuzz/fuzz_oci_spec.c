/* libFuzzer: config.json parsing (the spec is user input; a runtime must
 * refuse bad files cleanly, never crash). Also fuzzes the process and
 * resources sub-parsers that exec --process and update -r use. */
#include <stddef.h>
#include <stdint.h>

#include "oci/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vs_err err;
    struct oci_spec *s = oci_spec_parse((const char *)data, size, &err);
    oci_spec_free(s);
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (json_is_object(j)) {
        struct oci_arena a = {0};
        struct oci_process p;
        struct oci_resources r;
        oci_process_parse(j, &p, &a, &err);
        oci_resources_parse(j, &r, &a, &err);
        oci_arena_release(&a);
    }
    json_decref(j);
    return 0;
}
