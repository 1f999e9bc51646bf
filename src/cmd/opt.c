#include "cmd/opt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

static int add_pos(struct cmd_optparse *p, char *a, vs_err *err)
{
    if (p->npos >= p->maxpos)
        return vs_error(err, E2BIG, "%s: unexpected argument '%s'", p->verb, a);
    p->pos[p->npos++] = a;
    return 0;
}

static const struct cmd_opt *find_long(const struct cmd_optparse *p, const char *name, size_t nl)
{
    for (size_t k = 0; k < p->nopts; k++)
        if (strlen(p->opts[k].name) == nl && !strncmp(p->opts[k].name, name, nl))
            return &p->opts[k];
    return NULL;
}

static const struct cmd_opt *find_short(const struct cmd_optparse *p, char c)
{
    for (size_t k = 0; k < p->nopts; k++)
        if (p->opts[k].short_name && p->opts[k].short_name == c)
            return &p->opts[k];
    return NULL;
}

/* -tf: a run of short flags (only flags combine) */
static bool short_flags(const struct cmd_optparse *p, const char *a)
{
    for (const char *c = a + 1; *c; c++) {
        const struct cmd_opt *o = find_short(p, *c);
        if (!o || o->kind != CMD_OPT_FLAG)
            return false;
    }
    for (const char *c = a + 1; *c; c++)
        *(bool *)find_short(p, *c)->ptr = true;
    return true;
}

static int set_value(struct cmd_optparse *p, const struct cmd_opt *o, char *val, vs_err *err)
{
    switch (o->kind) {
    case CMD_OPT_STR:
        *(const char **)o->ptr = val;
        return 0;
    case CMD_OPT_INT: {
        char *end;
        long v = strtol(val, &end, 10);
        if (!*val || *end || v < 0 || v > 1 << 20)
            return vs_error(err, EINVAL, "%s: --%s: '%s' is not a valid number", p->verb, o->name,
                            val);
        *(int *)o->ptr = (int)v;
        return 0;
    }
    case CMD_OPT_LIST: {
        struct cmd_strlist *l = o->ptr;
        if (l->n >= ARRAY_SIZE(l->v))
            return vs_error(err, E2BIG, "%s: too many --%s", p->verb, o->name);
        l->v[l->n++] = val;
        return 0;
    }
    default:
        return 0;
    }
}

int cmd_opt_parse(struct cmd_optparse *p, int argc, char **argv, vs_err *err)
{
    p->npos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (p->rest_after_first && p->npos >= 1) {
            if (add_pos(p, a, err) < 0)
                return -1;
            continue;
        }
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++)
                if (add_pos(p, argv[i], err) < 0)
                    return -1;
            break;
        }
        if (a[0] != '-' || !a[1]) {
            if (add_pos(p, a, err) < 0)
                return -1;
            continue;
        }
        const struct cmd_opt *o = NULL;
        char *val = NULL;
        if (a[1] == '-' || p->single_dash_long) {
            char *name = a + (a[1] == '-' ? 2 : 1), *eq = strchr(name, '=');
            o = find_long(p, name, eq ? (size_t)(eq - name) : strlen(name));
            if (eq)
                val = eq + 1;
        }
        if (!o && a[1] != '-') {
            if (!a[2])
                o = find_short(p, a[1]);
            else if (short_flags(p, a))
                continue;
        }
        if (!o) {
            if (!strcmp(a, "--help") || !strcmp(a, "-h"))
                return CMD_OPT_HELP;
            return vs_error(err, EINVAL, "%s: unknown option '%s'%s", p->verb, a,
                            p->hint ? p->hint : "");
        }
        if (o->kind == CMD_OPT_FLAG) {
            if (val && strcmp(val, "true") && strcmp(val, "false"))
                return vs_error(err, EINVAL, "%s: --%s takes no value", p->verb, o->name);
            *(bool *)o->ptr = !val || !strcmp(val, "true");
            continue;
        }
        if (!val) {
            if (i + 1 >= argc)
                return vs_error(err, EINVAL, "%s: --%s needs a value", p->verb, o->name);
            val = argv[++i];
        }
        if (set_value(p, o, val, err) < 0)
            return -1;
    }
    return 0;
}
