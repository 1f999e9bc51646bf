/* libFuzzer: what a vesseld client sends that the daemon parses itself
 * (bodies are jansson's): the URL router with its {param} segment, instance
 * names, and container command lines split like a shell. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    static const char *const patterns[] = {
        "/1.0", "/1.0/instances/{name}", "/1.0/instances/{name}/state",
        "/1.0/instances/{name}/snapshots/{snap}/restore", "/1.0/operations/{id}/wait"};
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        struct route_params p;
        if (!http_route_match(patterns[i], s, &p))
            continue;
        for (unsigned j = 0; j < p.n; j++)
            if (!p.v[j][0] || strchr(p.v[j], '/'))
                abort(); /* a parameter is one whole, non-empty segment */
    }
    vs_err err;
    instance_validate_name(s, &err);
    json_t *words = json_array();
    if (daemon_split_command(s, words, &err) == 0 && json_array_size(words) == 0)
        abort(); /* success means at least one word */
    json_decref(words);
    free(s);
    return 0;
}
