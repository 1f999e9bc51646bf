#include "util/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vs_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, vs_err *err)
{
    if (!s || !*s || !isdigit((unsigned char)*s))
        return vs_error(err, EINVAL, "'%s' is not a number", s ? s : "");
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return vs_error(err, EINVAL, "'%s' is not a number", s);
    if (v < min || v > max)
        return vs_error(err, ERANGE, "%s is out of range (%llu..%llu)", s, (unsigned long long)min,
                        (unsigned long long)max);
    *out = v;
    return 0;
}

int vs_parse_size(const char *s, uint64_t default_unit, uint64_t *out, vs_err *err)
{
    if (!s || !isdigit((unsigned char)*s))
        return vs_error(err, EINVAL, "'%s' is not a size (e.g. 256M, 2G)", s ? s : "");
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return vs_error(err, EINVAL, "'%s' is not a size (e.g. 256M, 2G)", s);
    uint64_t mul = default_unit ? default_unit : 1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'B':
            mul = 1;
            break;
        case 'K':
            mul = 1ULL << 10;
            break;
        case 'M':
            mul = 1ULL << 20;
            break;
        case 'G':
            mul = 1ULL << 30;
            break;
        case 'T':
            mul = 1ULL << 40;
            break;
        default:
            return vs_error(err, EINVAL, "'%s' has an unknown size unit", s);
        }
        end++;
        /* accept "256MiB" and "256MB" */
        if (*end == 'i' || *end == 'I')
            end++;
        if ((*end == 'B' || *end == 'b') && mul != 1)
            end++;
        if (*end)
            return vs_error(err, EINVAL, "'%s' is not a size (e.g. 256M, 2G)", s);
    }
    if (v && mul > UINT64_MAX / v)
        return vs_error(err, ERANGE, "size '%s' is too large", s);
    *out = v * mul;
    return 0;
}

int vs_optlist_parse(const char *s, struct vs_optlist *out, vs_err *err)
{
    memset(out, 0, sizeof(*out));
    out->buf = strdup(s ? s : "");
    if (!out->buf)
        return vs_error(err, ENOMEM, "out of memory");
    char *save = NULL;
    for (char *tok = strtok_r(out->buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (out->n == VS_MAX_OPTS) {
            vs_optlist_free(out);
            return vs_error(err, E2BIG, "too many options in '%s'", s);
        }
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = 0;
        if (!*tok) {
            vs_optlist_free(out);
            return vs_error(err, EINVAL, "empty option name in '%s'", s);
        }
        out->opts[out->n].key = tok;
        out->opts[out->n].value = eq ? eq + 1 : NULL;
        out->n++;
    }
    return 0;
}

void vs_optlist_free(struct vs_optlist *l)
{
    free(l->buf);
    l->buf = NULL;
    l->n = 0;
}

const char *vs_optlist_get(const struct vs_optlist *l, const char *key, bool *present)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->opts[i].key, key)) {
            if (present)
                *present = true;
            return l->opts[i].value;
        }
    }
    if (present)
        *present = false;
    return NULL;
}
