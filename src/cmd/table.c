#include <string.h>

#include "cmd/commands.h"

const struct cmd_verb *cmd_find(const struct cmd_verb *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name))
            return &t[i];
    return NULL;
}

void cmd_print_verbs(FILE *f, const char *prefix, const struct cmd_verb *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!t[i].help)
            continue;
        char head[128];
        snprintf(head, sizeof(head), "%s%s%s%s", prefix, t[i].name, *t[i].args ? " " : "",
                 t[i].args);
        if (strlen(head) <= 26)
            fprintf(f, "  %-26s %s\n", head, t[i].help);
        else
            fprintf(f, "  %s\n  %-26s %s\n", head, "", t[i].help);
    }
}

void cmd_print_names(FILE *f, const struct cmd_verb *t, size_t n)
{
    const char *sep = "";
    for (size_t i = 0; i < n; i++) {
        if (!t[i].help || !strcmp(t[i].name, "help"))
            continue;
        fprintf(f, "%s%s", sep, t[i].name);
        sep = ", ";
    }
}
