#include "util/thread_role.h"

static vs_thread_role_hook g_hook;

void vs_thread_role_set_hook(vs_thread_role_hook hook)
{
    __atomic_store_n(&g_hook, hook, __ATOMIC_RELEASE);
}

void vs_thread_role_enter(enum vs_thread_role role, const char *name)
{
    vs_thread_role_hook h = __atomic_load_n(&g_hook, __ATOMIC_ACQUIRE);
    if (h)
        h(role, name);
}

const char *vs_thread_role_name(enum vs_thread_role role)
{
    static const char *const names[VS_THREAD_NROLES] = {"main", "vcpu", "io", "api"};
    return role < VS_THREAD_NROLES ? names[role] : "?";
}
