/* Capabilities through libcap: bounding set first (needs CAP_SETPCAP, which
 * the later capset may drop), then the three process sets, then ambient. */
#include "oci/linux.h"

#include <errno.h>
#include <sys/capability.h>
#include <sys/prctl.h>

int oci_caps_drop_bounding(const struct oci_caps *c, vs_err *err)
{
    int last = oci_cap_last();
    for (int i = 0; i <= last && i < 64; i++) {
        if (c->bounding & (1ULL << i))
            continue;
        if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
            return vs_error_errno(err, "cannot drop capability %s from the bounding set",
                                  oci_cap_name(i));
    }
    return 0;
}

int oci_caps_apply(const struct oci_caps *c, vs_err *err)
{
    int last = oci_cap_last();
    cap_t caps = cap_init();
    if (!caps)
        return vs_error_errno(err, "cap_init");
    for (int i = 0; i <= last && i < 64; i++) {
        cap_value_t v = i;
        if (c->effective & (1ULL << i))
            cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_SET);
        if (c->permitted & (1ULL << i))
            cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_SET);
        if (c->inheritable & (1ULL << i))
            cap_set_flag(caps, CAP_INHERITABLE, 1, &v, CAP_SET);
    }
    int r = cap_set_proc(caps);
    cap_free(caps);
    if (r < 0)
        return vs_error_errno(err, "cannot set capabilities");
    /* one prctl, where libcap's cap_reset_ambient asks about every
     * capability first */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return vs_error_errno(err, "cannot reset ambient capabilities");
    for (int i = 0; i <= last && i < 64; i++) {
        if (!(c->ambient & (1ULL << i)))
            continue;
        /* ambient needs the capability in permitted and inheritable;
         * runc and crun skip the others silently */
        if (!(c->permitted & c->inheritable & (1ULL << i)))
            continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0)
            return vs_error_errno(err, "cannot raise ambient capability %s", oci_cap_name(i));
    }
    return 0;
}
