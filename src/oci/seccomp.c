/* seccomp filter from linux.seccomp through libseccomp. */
#include "oci/linux.h"

#include <errno.h>
#include <string.h>
#include <seccomp.h>

#include "util/log.h"

static uint32_t arch_token(const char *name)
{
    static const struct {
        const char *n;
        uint32_t t;
    } a[] = {
        {"SCMP_ARCH_X86", SCMP_ARCH_X86},         {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
        {"SCMP_ARCH_X32", SCMP_ARCH_X32},         {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
        {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64}, {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
        {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE}, {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    };
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
        if (!strcmp(a[i].n, name))
            return a[i].t;
    return 0;
}

int oci_seccomp_load(const struct oci_seccomp *sc, bool no_new_privs, int *notify_fd, vs_err *err)
{
    *notify_fd = -1;
    scmp_filter_ctx ctx = seccomp_init(sc->default_action);
    if (!ctx)
        return vs_error(err, EINVAL, "seccomp: cannot create the filter");
    int rc;
    /* libseccomp sets no_new_privs when it loads a filter unless told not
     * to; the spec's process.noNewPrivileges decides, and without it the
     * load needs CAP_SYS_ADMIN (the caller is still privileged then) */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, no_new_privs ? 1 : 0);
    if (rc < 0) {
        seccomp_release(ctx);
        return vs_error(err, -rc, "seccomp: cannot set the no_new_privs attribute: %s",
                        strerror(-rc));
    }
    for (size_t i = 0; i < sc->n_archs; i++) {
        uint32_t t = arch_token(sc->archs[i]);
        if (!t) {
            vs_debug("seccomp: skipping unknown architecture %s", sc->archs[i]);
            continue;
        }
        rc = seccomp_arch_add(ctx, t);
        if (rc < 0 && rc != -EEXIST) {
            seccomp_release(ctx);
            return vs_error(err, -rc, "seccomp: cannot add architecture %s: %s", sc->archs[i],
                            strerror(-rc));
        }
    }
    for (size_t i = 0; i < sc->n_flags; i++) {
        if (!strcmp(sc->flags[i], "SECCOMP_FILTER_FLAG_LOG"))
            seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
        else if (!strcmp(sc->flags[i], "SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
            seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
    }
    for (size_t i = 0; i < sc->n_rules; i++) {
        const struct oci_seccomp_rule *r = &sc->rules[i];
        if (r->action == sc->default_action)
            continue;
        for (size_t k = 0; k < r->n_names; k++) {
            int nr = seccomp_syscall_resolve_name(r->names[k]);
            if (nr == __NR_SCMP_ERROR)
                continue; /* unknown on this kernel/arch: skip as runc does */
            struct scmp_arg_cmp cmp[6];
            bool dup_index = false;
            for (size_t a = 0; a < r->n_args; a++) {
                cmp[a] = (struct scmp_arg_cmp){r->args[a].index, (enum scmp_compare)r->args[a].op,
                                               r->args[a].value, r->args[a].value_two};
                for (size_t b = 0; b < a; b++)
                    if (r->args[b].index == r->args[a].index)
                        dup_index = true;
            }
            if (!dup_index) {
                rc = seccomp_rule_add_array(ctx, r->action, nr, (unsigned)r->n_args, cmp);
            } else {
                /* libseccomp refuses two comparisons of one argument in a
                 * rule; like runc, add one rule per comparison */
                rc = 0;
                for (size_t a = 0; a < r->n_args && rc == 0; a++)
                    rc = seccomp_rule_add_array(ctx, r->action, nr, 1, &cmp[a]);
            }
            if (rc < 0) {
                seccomp_release(ctx);
                return vs_error(err, -rc, "seccomp: cannot add a rule for %s: %s", r->names[k],
                                strerror(-rc));
            }
        }
    }
    rc = seccomp_load(ctx);
    if (rc < 0) {
        seccomp_release(ctx);
        return vs_error(err, -rc, "seccomp: cannot load the filter: %s", strerror(-rc));
    }
    if (sc->uses_notify)
        *notify_fd = seccomp_notify_fd(ctx);
    seccomp_release(ctx);
    return 0;
}
